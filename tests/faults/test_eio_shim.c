/*
 * The storage-fault shim (eio_shim.c) as the daemon tests will use it: a small
 * program (eio_probe) run with the shim preloaded gets EIO or ENOSPC exactly
 * where the environment says: which calls, which path, after how many calls,
 * how many times; and SQLite's commit fails when its syncs fail.
 */
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/fixture/softhsm.h"

static char dir[] = "/tmp/regsign-eio-XXXXXX";

/*
 * Runs eio_probe with the shim preloaded, the NULL-terminated "NAME=VALUE"
 * settings @p env added to the environment and the probe arguments @p ops
 * (each "OP:NAME", NAME relative to the test directory). Returns its stdout.
 */
static char *probe(const char *const *env, const char *const *ops)
{
	static char out[4096];
	char *argv[32];
	int pipefd[2], st, n = 0;
	size_t len = 0;
	ssize_t got;
	pid_t pid;

	assert_int_equal(pipe(pipefd), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		argv[n++] = (char *)EIO_PROBE;
		for (int i = 0; ops[i] != NULL && n < 31; i++) {
			const char *c = strchr(ops[i], ':');
			char *a = malloc(strlen(ops[i]) + strlen(dir) + 2);

			if (c == NULL || a == NULL)
				_exit(126);
			sprintf(a, "%.*s:%s/%s", (int)(c - ops[i]), ops[i], dir, c + 1);
			argv[n++] = a;
		}
		argv[n] = NULL;
		for (int i = 0; env != NULL && env[i] != NULL; i++)
			putenv((char *)env[i]);
		setenv("LD_PRELOAD", EIO_SHIM_LIB, 1);
		/* In the sanitizer build the probe has ASan, which wants to be
		 * first in the library list; the shim has no sanitizer itself. */
		setenv("ASAN_OPTIONS", "verify_asan_link_order=0:detect_leaks=0", 1);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		execv(EIO_PROBE, argv);
		_exit(127);
	}
	close(pipefd[1]);
	while ((got = read(pipefd[0], out + len, sizeof(out) - 1 - len)) > 0)
		len += (size_t)got;
	out[len] = '\0';
	close(pipefd[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	return out;
}

/* The result word printed for op number @p i. */
static const char *result(const char *out, int i, char *buf, size_t len)
{
	const char *line = out;

	for (int k = 0; k < i && line != NULL; k++) {
		line = strchr(line, '\n');
		if (line != NULL)
			line++;
	}
	assert_non_null(line);
	{
		const char *sp = strchr(line, ' '), *nl = strchr(line, '\n');

		assert_non_null(sp);
		assert_non_null(nl);
		snprintf(buf, len, "%.*s", (int)(nl - sp - 1), sp + 1);
	}
	return buf;
}

#define RESULT(out, i) result(out, i, (char[64]){ 0 }, 64)

static void test_no_env_passes(void **state)
{
	const char *ops[] = { "write:a", "pwrite:a", "fsync:a", "fdatasync:a", NULL };
	char *out;

	(void)state;
	out = probe(NULL, ops);
	for (int i = 0; i < 4; i++)
		assert_string_equal(RESULT(out, i), "ok");
}

static void test_fsync_only(void **state)
{
	const char *env[] = { "EIO_SHIM_PATH=target", "EIO_SHIM_CALLS=fsync", NULL };
	const char *ops[] = { "write:target.db", "pwrite:target.db", "fsync:target.db",
			      "fdatasync:target.db", "fsync:other.db", NULL };
	char *out;

	(void)state;
	out = probe(env, ops);
	assert_string_equal(RESULT(out, 0), "ok");
	assert_string_equal(RESULT(out, 1), "ok");
	assert_string_equal(RESULT(out, 2), "EIO");
	assert_string_equal(RESULT(out, 3), "ok");
	/* Another path is never touched. */
	assert_string_equal(RESULT(out, 4), "ok");
}

static void test_every_call_and_enospc(void **state)
{
	const char *env[] = { "EIO_SHIM_PATH=full", "EIO_SHIM_ERRNO=ENOSPC", NULL };
	const char *ops[] = { "write:full", "pwrite:full", "fsync:full", "fdatasync:full",
			      "write:empty", NULL };
	char *out;

	(void)state;
	out = probe(env, ops);
	for (int i = 0; i < 4; i++)
		assert_string_equal(RESULT(out, i), "ENOSPC");
	assert_string_equal(RESULT(out, 4), "ok");
}

static void test_after_and_count(void **state)
{
	const char *after[] = { "EIO_SHIM_PATH=f", "EIO_SHIM_CALLS=fdatasync",
				"EIO_SHIM_AFTER=2", NULL };
	const char *once[] = { "EIO_SHIM_PATH=f", "EIO_SHIM_CALLS=write,pwrite",
			       "EIO_SHIM_AFTER=1", "EIO_SHIM_COUNT=1", NULL };
	const char *four[] = { "fdatasync:f", "fdatasync:f", "fdatasync:f", "fdatasync:f", NULL };
	const char *writes[] = { "write:f", "pwrite:f", "write:f", "fsync:f", NULL };
	char *out;

	(void)state;
	out = probe(after, four);
	assert_string_equal(RESULT(out, 0), "ok");
	assert_string_equal(RESULT(out, 1), "ok");
	assert_string_equal(RESULT(out, 2), "EIO");
	assert_string_equal(RESULT(out, 3), "EIO");
	out = probe(once, writes);
	assert_string_equal(RESULT(out, 0), "ok");
	assert_string_equal(RESULT(out, 1), "EIO");
	assert_string_equal(RESULT(out, 2), "ok");
	assert_string_equal(RESULT(out, 3), "ok");
}

/* SQLite syncs with fdatasync: a failed sync fails the commit. */
static void test_sqlite_commit_fails(void **state)
{
	const char *env[] = { "EIO_SHIM_PATH=fail.db", "EIO_SHIM_CALLS=fsync,fdatasync", NULL };
	const char *ops[] = { "sqlite:fail.db", "sqlite:fine.db", NULL };
	char *out;

	(void)state;
	out = probe(env, ops);
	assert_string_equal(RESULT(out, 0), "disk I/O error");
	assert_string_equal(RESULT(out, 1), "ok");
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	char *const argv[] = { (char *)"rm", (char *)"-rf", dir, NULL };

	(void)state;
	fixture_run(argv);
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_env_passes),
		cmocka_unit_test(test_fsync_only),
		cmocka_unit_test(test_every_call_and_enospc),
		cmocka_unit_test(test_after_and_count),
		cmocka_unit_test(test_sqlite_commit_fails),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
