/*
 * libregsign-sandbox without applying a sandbox to the test process: the
 * PKCS#11 module path allow-list (symbolic links, "..", prefixes, writable
 * files), argument checks, error strings, and sandbox_apply() refusing a
 * process that already has threads (in a child, so the test process stays
 * free). Runs in both builds.
 */
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "signer/sandbox.h"
#include "tests/fixture/softhsm.h"

struct tree {
	char dir[PATH_MAX];
	char allowed[PATH_MAX], outside[PATH_MAX], lookalike[PATH_MAX];
	char mod[PATH_MAX], evil[PATH_MAX];
};

static void pathf(char *buf, const char *dir, const char *name)
{
	assert_true(snprintf(buf, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

static void touch(const char *path, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

/*
 * dir/allowed/mod.so                the module
 * dir/allowed/escape.so -> ../outside/evil.so
 * dir/outside/evil.so
 * dir/outside/in.so -> ../allowed/mod.so
 * dir/allowed-lookalike/mod.so      shares the allowed directory's prefix
 * dir/allowed/gw.so                 group-writable
 * dir/allowed/sub/                  a directory
 */
static int setup(void **state)
{
	struct tree *t = calloc(1, sizeof(*t));
	char p[PATH_MAX];

	assert_non_null(t);
	strcpy(t->dir, "/tmp/regsign-sbpath-XXXXXX");
	assert_non_null(mkdtemp(t->dir));
	pathf(t->allowed, t->dir, "allowed");
	pathf(t->outside, t->dir, "outside");
	pathf(t->lookalike, t->dir, "allowed-lookalike");
	assert_int_equal(mkdir(t->allowed, 0755), 0);
	assert_int_equal(mkdir(t->outside, 0755), 0);
	assert_int_equal(mkdir(t->lookalike, 0755), 0);
	pathf(t->mod, t->allowed, "mod.so");
	pathf(t->evil, t->outside, "evil.so");
	touch(t->mod, 0644);
	touch(t->evil, 0644);
	pathf(p, t->lookalike, "mod.so");
	touch(p, 0644);
	pathf(p, t->allowed, "gw.so");
	touch(p, 0664);
	pathf(p, t->allowed, "escape.so");
	assert_int_equal(symlink("../outside/evil.so", p), 0);
	pathf(p, t->outside, "in.so");
	assert_int_equal(symlink("../allowed/mod.so", p), 0);
	pathf(p, t->allowed, "sub");
	assert_int_equal(mkdir(p, 0755), 0);
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	struct tree *t = *state;
	char *const argv[] = { (char *)"rm", (char *)"-rf", t->dir, NULL };

	fixture_run(argv);
	free(t);
	return 0;
}

static int allowed(const char *path, const char *entry, char *resolved, size_t len)
{
	const char *list[] = { "/nonexistent/regsign-dir", entry, NULL };

	return sandbox_module_path_allowed(path, list, resolved, len);
}

static void test_module_paths(void **state)
{
	struct tree *t = *state;
	char p[PATH_MAX], res[PATH_MAX], real[PATH_MAX];

	/* Inside the allowed directory, by its own name and through a link. */
	assert_int_equal(allowed(t->mod, t->allowed, res, sizeof(res)), SANDBOX_OK);
	assert_non_null(realpath(t->mod, real));
	assert_string_equal(res, real);
	pathf(p, t->outside, "in.so");
	memset(res, 0, sizeof(res));
	assert_int_equal(allowed(p, t->allowed, res, sizeof(res)), SANDBOX_OK);
	assert_string_equal(res, real);
	/* An allow-list entry naming the file itself. */
	assert_int_equal(allowed(t->mod, t->mod, NULL, 0), SANDBOX_OK);

	/* Refused: a link leading out, "..", a look-alike prefix, the outside. */
	pathf(p, t->allowed, "escape.so");
	assert_int_equal(allowed(p, t->allowed, res, sizeof(res)), SANDBOX_ERR_MODULE_PATH);
	pathf(p, t->allowed, "../outside/evil.so");
	assert_int_equal(allowed(p, t->allowed, NULL, 0), SANDBOX_ERR_MODULE_PATH);
	pathf(p, t->lookalike, "mod.so");
	assert_int_equal(allowed(p, t->allowed, NULL, 0), SANDBOX_ERR_MODULE_PATH);
	assert_int_equal(allowed(t->evil, t->allowed, NULL, 0), SANDBOX_ERR_MODULE_PATH);
	/* Refused: missing, a directory, group-writable. */
	pathf(p, t->allowed, "missing.so");
	assert_int_equal(allowed(p, t->allowed, NULL, 0), SANDBOX_ERR_MODULE_PATH);
	pathf(p, t->allowed, "sub");
	assert_int_equal(allowed(p, t->allowed, NULL, 0), SANDBOX_ERR_MODULE_PATH);
	pathf(p, t->allowed, "gw.so");
	assert_int_equal(allowed(p, t->allowed, NULL, 0), SANDBOX_ERR_MODULE_PATH);
	/* An empty list allows nothing. */
	{
		const char *none[] = { NULL };

		assert_int_equal(sandbox_module_path_allowed(t->mod, none, NULL, 0),
				 SANDBOX_ERR_MODULE_PATH);
	}
}

static void test_module_path_args(void **state)
{
	struct tree *t = *state;
	const char *rel[] = { "usr/lib", NULL };
	char small[8];

	assert_int_equal(allowed(NULL, t->allowed, NULL, 0), SANDBOX_ERR_ARG);
	assert_int_equal(allowed("mod.so", t->allowed, NULL, 0), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_module_path_allowed(t->mod, NULL, NULL, 0), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_module_path_allowed(t->mod, rel, NULL, 0), SANDBOX_ERR_ARG);
	assert_int_equal(allowed(t->mod, t->allowed, small, 0), SANDBOX_ERR_ARG);
	assert_int_equal(allowed(t->mod, t->allowed, small, sizeof(small)), SANDBOX_ERR_ARG);
}

/* Debian's SoftHSM module is allowed by the daemon's default directories. */
static void test_softhsm_default_dirs(void **state)
{
	const char *dirs[] = { "/usr/lib", "/usr/lib64", "/usr/local/lib", NULL };
	char res[PATH_MAX];

	(void)state;
	if (access(REGSIGN_SOFTHSM_MODULE, R_OK) != 0)
		fail_msg("SoftHSM module %s missing: install softhsm2", REGSIGN_SOFTHSM_MODULE);
	assert_int_equal(sandbox_module_path_allowed(REGSIGN_SOFTHSM_MODULE, dirs, res,
						     sizeof(res)), SANDBOX_OK);
	assert_int_equal(strncmp(res, "/usr/lib/", 9), 0);
}

static void test_arguments(void **state)
{
	sandbox_t *sb = NULL;

	(void)state;
	sandbox_free(NULL);
	assert_int_equal(sandbox_new((enum sandbox_profile)7, &sb), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_new(SANDBOX_PROFILE_FRONT, NULL), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_new(SANDBOX_PROFILE_FRONT, &sb), SANDBOX_OK);
	assert_int_equal(sandbox_path_add(sb, "relative/dir", SANDBOX_READ), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_path_add(sb, "/tmp", (enum sandbox_access)3), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_path_add(sb, "/tmp", SANDBOX_READ), SANDBOX_OK);
	assert_int_equal(sandbox_path_add(sb, "/tmp", SANDBOX_WRITE), SANDBOX_OK);
	/* The front always has its sockets; only the HSM profile takes flags. */
	assert_int_equal(sandbox_net_allow(sb, SANDBOX_NET_UNIX), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_options_set(sb, 1u << 7), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_options_set(sb, SANDBOX_LANDLOCK_BEST_EFFORT), SANDBOX_OK);
	assert_int_equal(sandbox_user_set(sb, "no-such-user-regsign", NULL), SANDBOX_ERR_USER);
	assert_int_equal(sandbox_user_set(sb, "nobody", "no-such-group-regsign"),
			 SANDBOX_ERR_USER);
	/* Becoming root is not a sandbox. */
	assert_int_equal(sandbox_user_set(sb, "root", NULL), SANDBOX_ERR_USER);
	assert_int_equal(sandbox_user_set(sb, "nobody", NULL), SANDBOX_OK);
	assert_int_equal(sandbox_user_set(sb, "", NULL), SANDBOX_ERR_ARG);
	sandbox_free(sb);

	sb = NULL;
	assert_int_equal(sandbox_new(SANDBOX_PROFILE_HSM, &sb), SANDBOX_OK);
	assert_int_equal(sandbox_net_allow(sb, 1u << 5), SANDBOX_ERR_ARG);
	assert_int_equal(sandbox_net_allow(sb, SANDBOX_NET_UNIX | SANDBOX_NET_INET), SANDBOX_OK);
	sandbox_free(sb);
	assert_int_equal(sandbox_apply(NULL, NULL, 0), SANDBOX_ERR_ARG);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = SANDBOX_OK; e >= SANDBOX_ERR_MODULE_PATH; e--) {
		assert_non_null(sandbox_strerror(e));
		assert_string_not_equal(sandbox_strerror(e), "unknown sandbox error");
	}
	assert_string_equal(sandbox_strerror(-999), "unknown sandbox error");
	assert_string_equal(sandbox_strerror(SANDBOX_ERR_MODULE_PATH),
			    "PKCS#11 module path not allowed");
}

static void *idle_thread(void *arg)
{
	(void)arg;
	pause();
	return NULL;
}

/*
 * A second thread would escape Landlock: sandbox_apply() must refuse before
 * changing anything. In a child, so that the test process is never sandboxed.
 */
static void test_refuses_threads(void **state)
{
	pid_t pid;
	int st;

	(void)state;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		sandbox_t *sb = NULL;
		pthread_t th;
		char why[256] = "";
		int r;

		if (pthread_create(&th, NULL, idle_thread, NULL) != 0 ||
		    sandbox_new(SANDBOX_PROFILE_FRONT, &sb) != SANDBOX_OK)
			_exit(100);
		r = sandbox_apply(sb, why, sizeof(why));
		if (r != SANDBOX_ERR_THREADS || strstr(why, "2 threads") == NULL)
			_exit(101);
		/* One try per handle, even a failed one. */
		if (sandbox_apply(sb, why, sizeof(why)) != SANDBOX_ERR_APPLIED)
			_exit(102);
		_exit(0);
	}
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_filters_enabled(void **state)
{
	(void)state;
#ifdef REGSIGN_SANITIZE
	assert_false(sandbox_filters_enabled());
#else
	assert_true(sandbox_filters_enabled());
#endif
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_module_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_module_path_args, setup, teardown),
		cmocka_unit_test(test_softhsm_default_dirs),
		cmocka_unit_test(test_arguments),
		cmocka_unit_test(test_strerror),
		cmocka_unit_test(test_refuses_threads),
		cmocka_unit_test(test_filters_enabled),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
