/*
 * libregsign-sandbox: the handle, the change of user, the process limits, the
 * order of the steps, and the PKCS#11 module allow-list. Landlock is in
 * sandbox_landlock.c, the seccomp tables in sandbox_seccomp.c.
 */
#include <dirent.h>
#include <errno.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signer/sandbox_int.h"

const char *sandbox_strerror(int err)
{
	switch (err) {
	case SANDBOX_OK: return "success";
	case SANDBOX_ERR_ARG: return "invalid argument";
	case SANDBOX_ERR_NOMEM: return "out of memory";
	case SANDBOX_ERR_USER: return "unknown or unusable user or group";
	case SANDBOX_ERR_PRIVDROP: return "cannot change to the configured user";
	case SANDBOX_ERR_LIMITS: return "cannot set process limits";
	case SANDBOX_ERR_PATH: return "cannot open an allowed path";
	case SANDBOX_ERR_LANDLOCK: return "Landlock unavailable or refused the rules";
	case SANDBOX_ERR_SECCOMP: return "cannot install the seccomp filter";
	case SANDBOX_ERR_THREADS: return "process is not single-threaded";
	case SANDBOX_ERR_APPLIED: return "sandbox already applied";
	case SANDBOX_ERR_MODULE_PATH: return "PKCS#11 module path not allowed";
	}
	return "unknown sandbox error";
}

int sandbox__fail(int err, char *detail, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (detail != NULL && size > 0) {
		va_start(ap, fmt);
		vsnprintf(detail, size, fmt, ap);
		va_end(ap);
	}
	return err;
}

/*
 * What every process needs to run at all, whatever the caller adds: shared
 * libraries (a PKCS#11 module may be loaded or reloaded after the sandbox is
 * on), the loader's cache, time zones for log time stamps, OpenSSL's
 * configuration (read at its first use), the null device and the kernel's
 * random device. None of them holds a secret of this project.
 */
static const struct {
	const char *path;
	unsigned access;
} sandbox_base_paths[] = {
	{ "/usr/lib", SANDBOX_READ },
	{ "/usr/lib64", SANDBOX_READ },
	{ "/usr/local/lib", SANDBOX_READ },
	{ "/lib", SANDBOX_READ },
	{ "/lib64", SANDBOX_READ },
	{ "/etc/ld.so.cache", SANDBOX_READ },
	{ "/etc/localtime", SANDBOX_READ },
	{ "/usr/share/zoneinfo", SANDBOX_READ },
	{ "/etc/ssl/openssl.cnf", SANDBOX_READ },
	{ "/sys/devices/system/cpu/online", SANDBOX_READ },
	{ "/dev/urandom", SANDBOX_READ },
	{ "/dev/null", SANDBOX_WRITE },
};

int sandbox__path_push(struct sandbox *sb, const char *path, unsigned access,
		       bool optional)
{
	struct sandbox_path *p;
	char *copy;

	for (size_t i = 0; i < sb->n_paths; i++) {
		if (strcmp(sb->paths[i].path, path) == 0) {
			sb->paths[i].access |= access;
			sb->paths[i].optional = sb->paths[i].optional && optional;
			return SANDBOX_OK;
		}
	}
	if (sb->n_paths == sb->cap_paths) {
		size_t cap = sb->cap_paths ? 2 * sb->cap_paths : 32;

		p = realloc(sb->paths, cap * sizeof(*p));
		if (p == NULL)
			return SANDBOX_ERR_NOMEM;
		sb->paths = p;
		sb->cap_paths = cap;
	}
	copy = strdup(path);
	if (copy == NULL)
		return SANDBOX_ERR_NOMEM;
	sb->paths[sb->n_paths++] = (struct sandbox_path){ copy, access, optional };
	return SANDBOX_OK;
}

int sandbox_new(enum sandbox_profile profile, sandbox_t **out)
{
	struct sandbox *sb = NULL;
	int r = SANDBOX_ERR_ARG;

	if (out == NULL || (profile != SANDBOX_PROFILE_FRONT && profile != SANDBOX_PROFILE_HSM))
		goto out;
	r = SANDBOX_ERR_NOMEM;
	sb = calloc(1, sizeof(*sb));
	if (sb == NULL)
		goto out;
	sb->profile = profile;
	for (size_t i = 0; i < sizeof(sandbox_base_paths) / sizeof(sandbox_base_paths[0]); i++) {
		r = sandbox__path_push(sb, sandbox_base_paths[i].path,
				       sandbox_base_paths[i].access, true);
		if (r != SANDBOX_OK)
			goto out;
	}
	*out = sb;
	sb = NULL;
	r = SANDBOX_OK;
out:
	sandbox_free(sb);
	return r;
}

void sandbox_free(sandbox_t *sb)
{
	if (sb == NULL)
		return;
	for (size_t i = 0; i < sb->n_paths; i++)
		free(sb->paths[i].path);
	free(sb->paths);
	free(sb);
}

/* Size for the getpwnam_r/getgrnam_r buffers; the sysconf hint may be -1. */
static size_t sandbox_nss_bufsize(int name)
{
	long n = sysconf(name);

	return n > 0 && n < (1L << 20) ? (size_t)n : 16384;
}

int sandbox_user_set(sandbox_t *sb, const char *user, const char *group)
{
	struct passwd pw, *pwp = NULL;
	struct group gr, *grp = NULL;
	char *buf = NULL;
	size_t len;
	int r = SANDBOX_ERR_ARG;

	if (sb == NULL || user == NULL || user[0] == '\0' || (group != NULL && group[0] == '\0'))
		goto out;
	r = SANDBOX_ERR_NOMEM;
	len = sandbox_nss_bufsize(_SC_GETPW_R_SIZE_MAX);
	if (len < sandbox_nss_bufsize(_SC_GETGR_R_SIZE_MAX))
		len = sandbox_nss_bufsize(_SC_GETGR_R_SIZE_MAX);
	buf = malloc(len);
	if (buf == NULL)
		goto out;
	r = SANDBOX_ERR_USER;
	if (getpwnam_r(user, &pw, buf, len, &pwp) != 0 || pwp == NULL)
		goto out;
	/* Dropping "to root" would be a silent no-op that looks like a sandbox. */
	if (pw.pw_uid == 0)
		goto out;
	sb->uid = pw.pw_uid;
	sb->gid = pw.pw_gid;
	if (group != NULL) {
		if (getgrnam_r(group, &gr, buf, len, &grp) != 0 || grp == NULL)
			goto out;
		if (gr.gr_gid == 0)
			goto out;
		sb->gid = gr.gr_gid;
	}
	if (sb->gid == 0)
		goto out;
	sb->has_user = true;
	r = SANDBOX_OK;
out:
	free(buf);
	return r;
}

int sandbox_path_add(sandbox_t *sb, const char *path, enum sandbox_access access)
{
	if (sb == NULL || path == NULL || path[0] != '/' ||
	    (access != SANDBOX_READ && access != SANDBOX_WRITE))
		return SANDBOX_ERR_ARG;
	return sandbox__path_push(sb, path, (unsigned)access, false);
}

int sandbox_net_allow(sandbox_t *sb, unsigned flags)
{
	if (sb == NULL || sb->profile != SANDBOX_PROFILE_HSM ||
	    (flags & ~(unsigned)(SANDBOX_NET_UNIX | SANDBOX_NET_INET)) != 0)
		return SANDBOX_ERR_ARG;
	sb->net |= flags;
	return SANDBOX_OK;
}

int sandbox_options_set(sandbox_t *sb, unsigned options)
{
	if (sb == NULL ||
	    (options & ~(unsigned)(SANDBOX_LANDLOCK_BEST_EFFORT | SANDBOX_KEEP_NET_BIND)) != 0 ||
	    ((options & SANDBOX_KEEP_NET_BIND) && sb->profile != SANDBOX_PROFILE_FRONT))
		return SANDBOX_ERR_ARG;
	sb->options |= options;
	return SANDBOX_OK;
}

bool sandbox_filters_enabled(void)
{
#ifdef REGSIGN_SANITIZE
	return false;
#else
	return true;
#endif
}

/*
 * Landlock restricts only the thread that asks, and a thread started before
 * the seccomp filter would also miss the Landlock domain: so the sandbox must
 * go on while there is one thread. /proc/self/task has one entry per thread.
 */
static int sandbox_check_single_thread(char *detail, size_t size)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	if (d == NULL)
		return sandbox__fail(SANDBOX_ERR_THREADS, detail, size,
				     "cannot count threads: /proc/self/task: %s", strerror(errno));
	while ((e = readdir(d)) != NULL)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	if (n != 1)
		return sandbox__fail(SANDBOX_ERR_THREADS, detail, size,
				     "process has %d threads; apply the sandbox before starting any", n);
	return SANDBOX_OK;
}

/*
 * After setresuid with PR_SET_KEEPCAPS: effective and permitted become exactly
 * CAP_NET_BIND_SERVICE, inheritable nothing (raw capset: one capability does
 * not justify libcap). KEEPCAPS is switched off again.
 */
static int sandbox_caps_net_bind_only(char *detail, size_t size)
{
	struct __user_cap_header_struct hdr = { _LINUX_CAPABILITY_VERSION_3, 0 };
	struct __user_cap_data_struct data[2];

	memset(data, 0, sizeof(data));
	data[0].effective = data[0].permitted = 1u << CAP_NET_BIND_SERVICE;
	if (syscall(SYS_capset, &hdr, data) != 0)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size,
				     "capset(CAP_NET_BIND_SERVICE): %s", strerror(errno));
	if (prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0) != 0)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size, "PR_SET_KEEPCAPS: %s",
				     strerror(errno));
	return SANDBOX_OK;
}

/*
 * setgroups first (it needs CAP_SETGID, which setresuid takes away), then the
 * group, then the user; then check every id, because a partial change that
 * returned 0 would leave root's saved set-user-ID able to come back.
 */
static int sandbox_user_change(const struct sandbox *sb, char *detail, size_t size)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[2];
	int n;

	if (!sb->has_user || geteuid() != 0)
		return SANDBOX_OK;
	if (setgroups(1, &sb->gid) != 0)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size, "setgroups: %s",
				     strerror(errno));
	if (setresgid(sb->gid, sb->gid, sb->gid) != 0)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size, "setresgid(%u): %s",
				     (unsigned)sb->gid, strerror(errno));
	/* Keep the permitted set across setresuid only to cut it down to
	 * CAP_NET_BIND_SERVICE right after. */
	if ((sb->options & SANDBOX_KEEP_NET_BIND) && prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0) != 0)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size, "PR_SET_KEEPCAPS: %s",
				     strerror(errno));
	if (setresuid(sb->uid, sb->uid, sb->uid) != 0)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size, "setresuid(%u): %s",
				     (unsigned)sb->uid, strerror(errno));
	if (sb->options & SANDBOX_KEEP_NET_BIND) {
		int r = sandbox_caps_net_bind_only(detail, size);

		if (r != SANDBOX_OK)
			return r;
	}
	if (getresuid(&ru, &eu, &su) != 0 || ru != sb->uid || eu != sb->uid || su != sb->uid)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size,
				     "user ids not all %u after setresuid", (unsigned)sb->uid);
	if (getresgid(&rg, &eg, &sg) != 0 || rg != sb->gid || eg != sb->gid || sg != sb->gid)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size,
				     "group ids not all %u after setresgid", (unsigned)sb->gid);
	n = getgroups(2, groups);
	if (n < 0 || n > 1 || (n == 1 && groups[0] != sb->gid))
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size,
				     "supplementary groups not exactly %u", (unsigned)sb->gid);
	if (setuid(0) == 0 || setgid(0) == 0)
		return sandbox__fail(SANDBOX_ERR_PRIVDROP, detail, size,
				     "root privileges could be regained");
	return SANDBOX_OK;
}

static int sandbox_limits(char *detail, size_t size)
{
	struct rlimit none = { 0, 0 };

	if (setrlimit(RLIMIT_CORE, &none) != 0)
		return sandbox__fail(SANDBOX_ERR_LIMITS, detail, size, "RLIMIT_CORE: %s",
				     strerror(errno));
#ifndef REGSIGN_SANITIZE
	/* After the user change, which resets the flag to fs.suid_dumpable. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0)
		return sandbox__fail(SANDBOX_ERR_LIMITS, detail, size, "PR_SET_DUMPABLE: %s",
				     strerror(errno));
#endif
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0)
		return sandbox__fail(SANDBOX_ERR_LIMITS, detail, size, "PR_SET_NO_NEW_PRIVS: %s",
				     strerror(errno));
	return SANDBOX_OK;
}

int sandbox_apply(sandbox_t *sb, char *detail, size_t detail_size)
{
	int r, ruleset = -1;

	if (detail != NULL && detail_size > 0)
		detail[0] = '\0';
	if (sb == NULL)
		return sandbox__fail(SANDBOX_ERR_ARG, detail, detail_size, "no sandbox handle");
	if (sb->applied)
		return sandbox__fail(SANDBOX_ERR_APPLIED, detail, detail_size,
				     "sandbox_apply called twice");
	sb->applied = true;
	r = sandbox_check_single_thread(detail, detail_size);
#ifndef REGSIGN_SANITIZE
	/* The allowed paths are opened while still root: the new user may not
	 * be able to reach them (a 0700 directory on the way), yet the process
	 * may use what it already holds or what the rules and file modes allow. */
	if (r == SANDBOX_OK)
		r = sandbox__landlock_prepare(sb, &ruleset, detail, detail_size);
#endif
	if (r == SANDBOX_OK)
		r = sandbox_user_change(sb, detail, detail_size);
	if (r == SANDBOX_OK)
		r = sandbox_limits(detail, detail_size);
#ifndef REGSIGN_SANITIZE
	if (r == SANDBOX_OK)
		r = sandbox__landlock_restrict(ruleset, detail, detail_size);
	if (r == SANDBOX_OK)
		r = sandbox__seccomp_apply(sb, detail, detail_size);
#endif
	if (ruleset >= 0)
		close(ruleset);
	return r;
}

/* realpath into a PATH_MAX buffer; false when the path does not resolve. */
static bool sandbox_real(const char *path, char out[PATH_MAX])
{
	return realpath(path, out) != NULL;
}

/* Whether the real path @p real is @p dir itself or beneath it. */
static bool sandbox_beneath(const char *real, const char *dir)
{
	size_t n = strlen(dir);

	if (strncmp(real, dir, n) != 0)
		return false;
	if (real[n] == '\0')
		return true;
	/* "/" as an entry: everything is beneath it. */
	return real[n] == '/' || (n > 0 && dir[n - 1] == '/');
}

int sandbox_module_path_allowed(const char *path, const char *const *allowlist,
				char *resolved, size_t resolved_size)
{
	char real[PATH_MAX], entry[PATH_MAX];
	struct stat st;
	bool ok = false;

	if (path == NULL || path[0] != '/' || allowlist == NULL ||
	    (resolved != NULL && resolved_size == 0))
		return SANDBOX_ERR_ARG;
	for (size_t i = 0; allowlist[i] != NULL; i++)
		if (allowlist[i][0] != '/')
			return SANDBOX_ERR_ARG;
	if (!sandbox_real(path, real) || stat(real, &st) != 0 || !S_ISREG(st.st_mode))
		return SANDBOX_ERR_MODULE_PATH;
	/* Code anyone but its owner may rewrite is no better than code from anywhere. */
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0)
		return SANDBOX_ERR_MODULE_PATH;
	for (size_t i = 0; !ok && allowlist[i] != NULL; i++)
		ok = sandbox_real(allowlist[i], entry) && sandbox_beneath(real, entry);
	if (!ok)
		return SANDBOX_ERR_MODULE_PATH;
	if (resolved != NULL) {
		if (strlen(real) >= resolved_size)
			return SANDBOX_ERR_ARG;
		memcpy(resolved, real, strlen(real) + 1);
	}
	return SANDBOX_OK;
}
