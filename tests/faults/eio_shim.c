/*
 * eio_shim: an LD_PRELOAD library that makes storage fail on purpose, for the
 * daemon's storage-fault tests. It wraps write, pwrite, pwrite64, fsync and
 * fdatasync; for a descriptor whose path (readlink of /proc/self/fd/N)
 * contains a given substring it lets a number of calls through and then
 * fails them with EIO or ENOSPC without touching the file.
 *
 * Environment (read once, at load):
 *   EIO_SHIM_PATH    substring of the path to hit; unset or empty: the shim does nothing
 *   EIO_SHIM_CALLS   comma-separated subset of write,pwrite,fsync,fdatasync (default all;
 *                    "pwrite" covers pwrite and pwrite64)
 *   EIO_SHIM_AFTER   matching calls that still succeed before the first failure (default 0)
 *   EIO_SHIM_COUNT   failures to inject, then calls succeed again (default 0: fail forever)
 *   EIO_SHIM_ERRNO   EIO (default) or ENOSPC
 *   EIO_SHIM_VERBOSE 1: one line on stderr per injected failure
 *
 * Like a real disk error, an injected write failure writes nothing and an
 * injected fsync failure syncs nothing. A test shim, so global state is
 * allowed here (STYLE.md rule 8): an LD_PRELOAD library has no other place to
 * keep it. Counters are atomic; any thread may call.
 */
#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum shim_call {
	SHIM_WRITE = 1u << 0,
	SHIM_PWRITE = 1u << 1,
	SHIM_FSYNC = 1u << 2,
	SHIM_FDATASYNC = 1u << 3,
};

static struct {
	char path[1024];
	unsigned calls;
	unsigned long after, count;
	int err;
	bool verbose;
	atomic_ulong matched; /* matching calls seen so far */
} shim;

typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef int (*sync_fn)(int);

/* The next definition of @p name (libc's, or a sanitizer's interceptor),
 * looked up once per symbol and kept in @p slot. */
static void *shim_next_cached(_Atomic(void *) *slot, const char *name)
{
	void *p = atomic_load_explicit(slot, memory_order_acquire);

	if (p == NULL) {
		p = dlsym(RTLD_NEXT, name);
		if (p == NULL)
			abort();
		atomic_store_explicit(slot, p, memory_order_release);
	}
	return p;
}

#define shim_next(name) ({ static _Atomic(void *) slot_; shim_next_cached(&slot_, name); })

static unsigned long shim_env_ulong(const char *name)
{
	const char *v = getenv(name);

	return v != NULL && *v != '\0' ? strtoul(v, NULL, 10) : 0;
}

__attribute__((constructor)) static void shim_init(void)
{
	const char *v = getenv("EIO_SHIM_PATH");

	if (v == NULL || *v == '\0' || strlen(v) >= sizeof(shim.path))
		return;
	strcpy(shim.path, v);
	shim.calls = SHIM_WRITE | SHIM_PWRITE | SHIM_FSYNC | SHIM_FDATASYNC;
	v = getenv("EIO_SHIM_CALLS");
	if (v != NULL && *v != '\0') {
		char list[128], *save = NULL;

		snprintf(list, sizeof(list), "%s", v);
		shim.calls = 0;
		for (char *t = strtok_r(list, ",", &save); t != NULL; t = strtok_r(NULL, ",", &save))
			shim.calls |= strcmp(t, "write") == 0 ? SHIM_WRITE :
				      strcmp(t, "pwrite") == 0 ? SHIM_PWRITE :
				      strcmp(t, "fsync") == 0 ? SHIM_FSYNC :
				      strcmp(t, "fdatasync") == 0 ? SHIM_FDATASYNC : 0;
	}
	shim.after = shim_env_ulong("EIO_SHIM_AFTER");
	shim.count = shim_env_ulong("EIO_SHIM_COUNT");
	v = getenv("EIO_SHIM_ERRNO");
	shim.err = v != NULL && strcmp(v, "ENOSPC") == 0 ? ENOSPC : EIO;
	v = getenv("EIO_SHIM_VERBOSE");
	shim.verbose = v != NULL && strcmp(v, "1") == 0;
}

/* Whether this call on @p fd is to fail; counts it when it matches. */
static bool shim_hit(int fd, enum shim_call call, const char *name)
{
	char link[64], target[4096];
	unsigned long n;
	ssize_t len;

	if (shim.path[0] == '\0' || (shim.calls & call) == 0 || fd < 0)
		return false;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	len = readlink(link, target, sizeof(target) - 1);
	if (len <= 0)
		return false;
	target[len] = '\0';
	if (strstr(target, shim.path) == NULL)
		return false;
	n = atomic_fetch_add(&shim.matched, 1);
	if (n < shim.after || (shim.count != 0 && n >= shim.after + shim.count))
		return false;
	if (shim.verbose) {
		char msg[4300];
		int m = snprintf(msg, sizeof(msg), "eio_shim: %s(%d %s) -> %s\n", name, fd, target,
				 shim.err == ENOSPC ? "ENOSPC" : "EIO");
		write_fn real = (write_fn)shim_next("write");

		if (m > 0)
			(void)real(2, msg, (size_t)m < sizeof(msg) ? (size_t)m : sizeof(msg) - 1);
	}
	return true;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	if (fd != 2 && shim_hit(fd, SHIM_WRITE, "write")) {
		errno = shim.err;
		return -1;
	}
	return ((write_fn)shim_next("write"))(fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (shim_hit(fd, SHIM_PWRITE, "pwrite")) {
		errno = shim.err;
		return -1;
	}
	return ((pwrite_fn)shim_next("pwrite"))(fd, buf, len, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	if (shim_hit(fd, SHIM_PWRITE, "pwrite64")) {
		errno = shim.err;
		return -1;
	}
	return ((pwrite_fn)shim_next("pwrite64"))(fd, buf, len, off);
}

int fsync(int fd)
{
	if (shim_hit(fd, SHIM_FSYNC, "fsync")) {
		errno = shim.err;
		return -1;
	}
	return ((sync_fn)shim_next("fsync"))(fd);
}

int fdatasync(int fd)
{
	if (shim_hit(fd, SHIM_FDATASYNC, "fdatasync")) {
		errno = shim.err;
		return -1;
	}
	return ((sync_fn)shim_next("fdatasync"))(fd);
}
