/*
 * libregsign-sandbox: file access with Landlock. glibc has no wrappers for the
 * Landlock syscalls, so they are called with syscall(2). Only the rights of
 * ABI 1 and 2 are handled (Debian 12's kernel 6.1 has ABI 2); rights a newer
 * kernel adds (truncate, ioctl on devices, network ports) stay unrestricted by
 * Landlock, and the seccomp filter covers what matters of them.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "signer/sandbox_int.h"

/* Every filesystem right of ABI 1: all of them are handled, so none is granted
 * anywhere except through a rule below. */
#define SANDBOX_LL_ABI1 (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR |                  \
	LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |              \
	LANDLOCK_ACCESS_FS_MAKE_CHAR | LANDLOCK_ACCESS_FS_MAKE_DIR |                  \
	LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |                  \
	LANDLOCK_ACCESS_FS_MAKE_FIFO | LANDLOCK_ACCESS_FS_MAKE_BLOCK |                \
	LANDLOCK_ACCESS_FS_MAKE_SYM)

/* Reading: open for reading, list directories. Never execute (seccomp forbids
 * execve anyway; this also covers a kernel where it would not). */
#define SANDBOX_LL_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)

/* Writing adds what a SQLite database, an atomically replaced file, a token
 * store and a listening Unix socket need; no device nodes, FIFOs or links. */
#define SANDBOX_LL_WRITE (SANDBOX_LL_READ | LANDLOCK_ACCESS_FS_WRITE_FILE |      \
	LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |              \
	LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG |                   \
	LANDLOCK_ACCESS_FS_MAKE_SOCK)

/* The rights that make sense on a file rather than a directory. */
#define SANDBOX_LL_FILE (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | \
	LANDLOCK_ACCESS_FS_READ_FILE)

#ifndef LANDLOCK_ACCESS_FS_REFER
#define LANDLOCK_ACCESS_FS_REFER (1ULL << 13)
#endif

static int sandbox_ll_abi(void)
{
	long abi = syscall(SYS_landlock_create_ruleset, NULL, 0,
			   LANDLOCK_CREATE_RULESET_VERSION);

	return abi < 0 ? -errno : (int)abi;
}

/* One rule: @p path and everything beneath it get @p rights. */
static int sandbox_ll_rule(int ruleset, const struct sandbox_path *p, uint64_t handled,
			   char *detail, size_t size)
{
	struct landlock_path_beneath_attr attr;
	uint64_t rights = 0;
	struct stat st;
	int fd, r = SANDBOX_OK;

	fd = open(p->path, O_PATH | O_CLOEXEC);
	if (fd < 0) {
		if (p->optional)
			return SANDBOX_OK;
		return sandbox__fail(SANDBOX_ERR_PATH, detail, size, "allowed path %s: %s",
				     p->path, strerror(errno));
	}
	if (fstat(fd, &st) != 0) {
		r = sandbox__fail(SANDBOX_ERR_PATH, detail, size, "allowed path %s: %s",
				  p->path, strerror(errno));
		goto out;
	}
	if (p->access & SANDBOX_WRITE)
		rights |= SANDBOX_LL_WRITE | (handled & LANDLOCK_ACCESS_FS_REFER);
	if (p->access & SANDBOX_READ)
		rights |= SANDBOX_LL_READ;
	if (!S_ISDIR(st.st_mode))
		rights &= SANDBOX_LL_FILE;
	memset(&attr, 0, sizeof(attr));
	attr.allowed_access = rights & handled;
	attr.parent_fd = fd;
	if (syscall(SYS_landlock_add_rule, ruleset, LANDLOCK_RULE_PATH_BENEATH, &attr, 0) != 0)
		r = sandbox__fail(SANDBOX_ERR_LANDLOCK, detail, size,
				  "landlock_add_rule %s: %s", p->path, strerror(errno));
out:
	close(fd);
	return r;
}

int sandbox__landlock_prepare(const struct sandbox *sb, int *ruleset_out, char *detail,
			      size_t size)
{
	struct landlock_ruleset_attr ra;
	int abi = sandbox_ll_abi(), ruleset = -1, r;

	*ruleset_out = -1;
	if (abi < 1) {
		if (sb->options & SANDBOX_LANDLOCK_BEST_EFFORT)
			return SANDBOX_OK;
		return sandbox__fail(SANDBOX_ERR_LANDLOCK, detail, size,
				     "Landlock is not available: %s (kernel without it, or "
				     "not in the lsm= boot list)", strerror(-abi));
	}
	memset(&ra, 0, sizeof(ra));
	/* REFER (ABI 2) must be handled, or moving files between directories
	 * could carry them out of the rule set's reach. */
	ra.handled_access_fs = SANDBOX_LL_ABI1 | (abi >= 2 ? LANDLOCK_ACCESS_FS_REFER : 0);
	ruleset = (int)syscall(SYS_landlock_create_ruleset, &ra, sizeof(ra), 0);
	if (ruleset < 0)
		return sandbox__fail(SANDBOX_ERR_LANDLOCK, detail, size,
				     "landlock_create_ruleset: %s", strerror(errno));
	for (size_t i = 0; i < sb->n_paths; i++) {
		r = sandbox_ll_rule(ruleset, &sb->paths[i], ra.handled_access_fs, detail, size);
		if (r != SANDBOX_OK)
			goto out;
	}
	*ruleset_out = ruleset;
	ruleset = -1;
	r = SANDBOX_OK;
out:
	if (ruleset >= 0)
		close(ruleset);
	return r;
}

int sandbox__landlock_restrict(int ruleset, char *detail, size_t size)
{
	if (ruleset < 0)
		return SANDBOX_OK;
	/* PR_SET_NO_NEW_PRIVS is already set (sandbox.c), as Landlock requires. */
	if (syscall(SYS_landlock_restrict_self, ruleset, 0) != 0)
		return sandbox__fail(SANDBOX_ERR_LANDLOCK, detail, size,
				     "landlock_restrict_self: %s", strerror(errno));
	return SANDBOX_OK;
}
