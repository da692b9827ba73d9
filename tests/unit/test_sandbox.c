/*
 * Sandbox attack tests (normal build only: sanitizer builds switch the filters
 * off). Each case runs a hook program (tests/sandbox/) that applies the same
 * sandbox as a regsignd process and then tries one thing: an attack must end
 * in SIGSYS during that very call (seccomp) or in EACCES/EPERM (Landlock), and
 * the control run with the sandbox off must see the same call succeed, so that
 * the filter and not file permissions or missing privileges refused it. Real
 * work under each profile (a libuv front with SQLite; SoftHSM signing) proves
 * the allow-lists are enough.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "signer/sandbox.h"
#include "tests/fixture/softhsm.h"
#include "tests/sandbox/hook.h"

/* What a run must end in. */
enum expect {
	OK,     /* exit 0: the call worked */
	KILLED, /* SIGSYS while trying the action */
	DENIED, /* exit HOOK_EXIT_DENIED: EACCES or EPERM */
	FAILED, /* exit HOOK_EXIT_ERRNO: the work failed */
	CHECK,  /* exit HOOK_EXIT_CHECK: a status check did not hold (control run of "status") */
};

struct env {
	char dir[PATH_MAX];
	char rw[PATH_MAX], ro[PATH_MAX], out[PATH_MAX];
	char secret[PATH_MAX], ro_file[PATH_MAX], log[PATH_MAX];
};

static void pathf(char *buf, const char *dir, const char *name)
{
	assert_true(snprintf(buf, PATH_MAX, "%s/%s", dir, name) < PATH_MAX);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	strcpy(e->dir, "/tmp/regsign-sandbox-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	/* Others must be able to reach the tree for the run as nobody. */
	assert_int_equal(chmod(e->dir, 0755), 0);
	pathf(e->rw, e->dir, "rw");
	pathf(e->ro, e->dir, "ro");
	pathf(e->out, e->dir, "outside");
	pathf(e->log, e->dir, "hook.log");
	assert_int_equal(mkdir(e->rw, 0777), 0);
	assert_int_equal(chmod(e->rw, 0777), 0);
	assert_int_equal(mkdir(e->ro, 0777), 0);
	assert_int_equal(chmod(e->ro, 0777), 0);
	assert_int_equal(mkdir(e->out, 0777), 0);
	assert_int_equal(chmod(e->out, 0777), 0);
	/* A readable "shadow" file outside the allowed paths: only Landlock can
	 * keep the sandboxed hook from reading it. */
	pathf(e->secret, e->out, "shadow");
	write_file(e->secret, "root:secret-hash:19000::::::\n", 0644);
	pathf(e->ro_file, e->ro, "config");
	write_file(e->ro_file, "setting: 1\n", 0644);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char *const argv[] = { (char *)"rm", (char *)"-rf", e->dir, NULL };

	fixture_run(argv);
	free(e);
	return 0;
}

/*
 * Runs @p prog with the NULL-terminated arguments, stderr into e->log, and
 * returns its wait status. A run longer than 60 s is killed and fails.
 */
static int run(const struct env *e, const char *prog, const char *const *args)
{
	const char *argv[64];
	struct timespec ts = { 0, 20 * 1000 * 1000 };
	int n = 0, st = 0, fd;
	pid_t pid, w;

	argv[n++] = prog;
	for (; args[n - 1] != NULL && n < 63; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		fd = open(e->log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (fd < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(prog, (char *const *)argv);
		_exit(127);
	}
	for (int i = 0; i < 3000; i++) {
		w = waitpid(pid, &st, WNOHANG);
		if (w == pid)
			return st;
		nanosleep(&ts, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	fail_msg("%s %s did not finish in 60 s", prog, args[0]);
	return -1;
}

static void read_log(const struct env *e, char *buf, size_t len)
{
	FILE *f = fopen(e->log, "r");
	size_t n;

	assert_non_null(f);
	n = fread(buf, 1, len - 1, f);
	buf[n] = '\0';
	fclose(f);
}

/* Checks a wait status against @p want; @p action names the attempted action. */
static void check(const struct env *e, int st, enum expect want, const char *action,
		  const char *what)
{
	char log[8192], returned[128];

	read_log(e, log, sizeof(log));
	snprintf(returned, sizeof(returned), "hook: %s returned", action);
	switch (want) {
	case KILLED:
		if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
			fail_msg("%s: want SIGSYS, got status 0x%x\n%s", what, st, log);
		/* Killed during the action itself, not before or after it. */
		if (strstr(log, "hook: trying ") == NULL || strstr(log, returned) != NULL)
			fail_msg("%s: SIGSYS outside the action\n%s", what, log);
		break;
	case OK:
	case DENIED:
	case FAILED:
	case CHECK: {
		int code = want == OK ? 0 : want == DENIED ? HOOK_EXIT_DENIED :
			   want == FAILED ? HOOK_EXIT_ERRNO : HOOK_EXIT_CHECK;

		if (!WIFEXITED(st) || WEXITSTATUS(st) != code)
			fail_msg("%s: want exit %d, got status 0x%x\n%s", what, code, st, log);
		if (strstr(log, returned) == NULL)
			fail_msg("%s: the action did not run\n%s", what, log);
		break;
	}
	}
}

/* One attack: sandboxed it ends as @p want, with --off it succeeds (@p control). */
struct attack {
	const char *args[6];
	enum expect want, control;
};

/* Runs @p hook with @p opts (NULL-terminated) + the attack, on and off. */
static void attack(const struct env *e, const char *hook, const char *const *opts,
		   const struct attack *a)
{
	const char *args[40];
	char what[256];
	int n = 0;

	for (int pass = 0; pass < 2; pass++) {
		n = 0;
		if (pass == 1)
			args[n++] = "--off";
		for (int i = 0; opts[i] != NULL; i++)
			args[n++] = opts[i];
		for (int i = 0; a->args[i] != NULL; i++)
			args[n++] = a->args[i];
		args[n] = NULL;
		snprintf(what, sizeof(what), "%s %s%s %s", strrchr(hook, '/') + 1,
			 pass ? "(off) " : "", a->args[0], a->args[1] ? a->args[1] : "");
		check(e, run(e, hook, args), pass ? a->control : a->want, a->args[0], what);
	}
}

static void test_front_attacks(void **state)
{
	struct env *e = *state;
	char out_x[PATH_MAX], ro_new[PATH_MAX], out_sock[PATH_MAX];
	const char *opts[] = { "--rw", e->rw, "--ro", e->ro, NULL };

	pathf(out_x, e->out, "x");
	pathf(ro_new, e->ro, "new");
	pathf(out_sock, e->out, "front.sock");
	{
		const struct attack attacks[] = {
			{ { "execve", NULL }, KILLED, OK },
			{ { "fork", NULL }, KILLED, OK },
			{ { "ptrace-traceme", NULL }, KILLED, OK },
			{ { "ptrace-attach", NULL }, KILLED, OK },
			{ { "socket", "netlink", NULL }, KILLED, OK },
			/* AF_PACKET needs CAP_NET_RAW even without a sandbox. */
			{ { "socket", "packet", NULL }, KILLED, geteuid() == 0 ? OK : DENIED },
			{ { "write-file", out_x, NULL }, DENIED, OK },
			{ { "read-file", e->secret, NULL }, DENIED, OK },
			{ { "write-file", ro_new, NULL }, DENIED, OK },
			{ { "listen-unix", out_sock, NULL }, DENIED, OK },
		};

		for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
			unlink(out_x);
			unlink(ro_new);
			unlink(out_sock);
			attack(e, SANDBOX_HOOK_FRONT, opts, &attacks[i]);
		}
	}
}

static void test_front_work(void **state)
{
	struct env *e = *state;
	char rw_file[PATH_MAX];
	const char *opts[] = { "--rw", e->rw, "--ro", e->ro, NULL };
	const struct attack allowed[] = {
		{ { "read-file", e->ro_file, NULL }, OK, OK },
		{ { "write-file", rw_file, NULL }, OK, OK },
		/* NO_NEW_PRIVS, a seccomp filter and no core files only with the sandbox. */
		{ { "status", NULL }, OK, CHECK },
		{ { "work", e->rw, NULL }, OK, OK },
	};

	pathf(rw_file, e->rw, "file");
	for (size_t i = 0; i < sizeof(allowed) / sizeof(allowed[0]); i++) {
		char sock[PATH_MAX];

		pathf(sock, e->rw, "front.sock");
		unlink(sock);
		attack(e, SANDBOX_HOOK_FRONT, opts, &allowed[i]);
	}
}

/* A listening Unix socket at @p path, for the HSM's connect-only case. */
static int listen_unix(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	strcpy(sa.sun_path, path);
	unlink(path);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	return fd;
}

static void test_hsm_attacks(void **state)
{
	struct env *e = *state;
	char out_x[PATH_MAX], rw_sock[PATH_MAX], p11_sock[PATH_MAX];
	const char *plain[] = { "--rw", e->rw, "--ro", e->ro, NULL };
	const char *net[] = { "--rw", e->rw, "--ro", e->ro, "--net", "both", NULL };
	const char *unix_only[] = { "--rw", e->rw, "--ro", e->ro, "--net", "unix", NULL };
	int srv;

	pathf(out_x, e->out, "x");
	pathf(rw_sock, e->rw, "hsm.sock");
	pathf(p11_sock, e->dir, "p11-kit.sock");
	{
		const struct attack attacks[] = {
			{ { "execve", NULL }, KILLED, OK },
			{ { "fork", NULL }, KILLED, OK },
			{ { "ptrace-traceme", NULL }, KILLED, OK },
			{ { "ptrace-attach", NULL }, KILLED, OK },
			/* Without sandbox_net_allow(), no new socket at all: the
			 * filter answers EACCES for Unix and inet sockets (a
			 * module's syslog() must not kill the process) and kills
			 * for the other families. */
			{ { "socket", "unix", NULL }, DENIED, OK },
			{ { "socket", "inet", NULL }, DENIED, OK },
			{ { "socket", "netlink", NULL }, KILLED, OK },
			{ { "write-file", out_x, NULL }, DENIED, OK },
			{ { "read-file", e->secret, NULL }, DENIED, OK },
		};

		for (size_t i = 0; i < sizeof(attacks) / sizeof(attacks[0]); i++) {
			unlink(out_x);
			attack(e, SANDBOX_HOOK_HSM, plain, &attacks[i]);
		}
	}
	{
		/* Even allowed to connect out, it may never listen: bind kills it,
		 * in a directory where it may write. */
		const struct attack listens[] = {
			{ { "listen-unix", rw_sock, NULL }, KILLED, OK },
			{ { "listen-inet", NULL }, KILLED, OK },
			{ { "socket", "netlink", NULL }, KILLED, OK },
		};

		for (size_t i = 0; i < sizeof(listens) / sizeof(listens[0]); i++) {
			unlink(rw_sock);
			attack(e, SANDBOX_HOOK_HSM, net, &listens[i]);
		}
	}
	/* p11-kit-client's case: connecting a Unix socket works; inet stays shut. */
	srv = listen_unix(p11_sock);
	{
		const struct attack connects[] = {
			{ { "connect-unix", p11_sock, NULL }, OK, OK },
			{ { "socket", "inet", NULL }, DENIED, OK },
		};

		for (size_t i = 0; i < sizeof(connects) / sizeof(connects[0]); i++)
			attack(e, SANDBOX_HOOK_HSM, unix_only, &connects[i]);
	}
	close(srv);
}

static void test_hsm_sign(void **state)
{
	struct env *e = *state;
	struct fixture_token tok;
	const char *with_token[] = { "--ro", NULL, "--ro", NULL, "--rw", NULL, "sign",
				     NULL, NULL, NULL, NULL };
	int st;

	assert_int_equal(fixture_token_new(&tok, "sandbox"), 0);
	with_token[1] = tok.conf;
	with_token[3] = tok.pin_file;
	with_token[5] = tok.tokendir;
	with_token[7] = tok.module;
	with_token[8] = tok.uri;
	with_token[9] = tok.pin_file;
	st = run(e, SANDBOX_HOOK_HSM, with_token);
	check(e, st, OK, "sign", "HSM profile signs with SoftHSM");

	/* The same with the token directory read-only: the module can no longer
	 * write its token store, so Landlock really stands between the process
	 * and its files. */
	with_token[4] = "--ro";
	st = run(e, SANDBOX_HOOK_HSM, with_token);
	check(e, st, FAILED, "sign", "HSM profile without its token directory");
	fixture_token_free(&tok);
}

/*
 * A regsignd.yaml for the fixture token with everything under the test's
 * directories: state and socket in rw/, policy and certificates in ro/.
 */
static void write_config(const struct env *e, const struct fixture_token *tok, char *path)
{
	char dir[PATH_MAX], file[PATH_MAX];
	static char text[65536];
	const char *empty[] = { "root.pem", "issuing.pem", "policy.yaml" };

	pathf(dir, e->rw, "state");
	assert_int_equal(mkdir(dir, 0777), 0);
	pathf(dir, e->rw, "run");
	assert_int_equal(mkdir(dir, 0777), 0);
	for (size_t i = 0; i < sizeof(empty) / sizeof(empty[0]); i++) {
		pathf(file, e->ro, empty[i]);
		write_file(file, "\n", 0644);
	}
	assert_true(snprintf(text, sizeof(text),
		 "version: 1\n"
		 "hsm:\n  module: %s\n  token: \"%s\"\n  pin-file: %s\n"
		 "  environment:\n    SOFTHSM2_CONF: %s\n"
		 "keys:\n  issuing-ca: \"%s;object=ca\"\n  ksk: \"%s;object=ksk\"\n"
		 "  zsk: \"%s;object=zsk\"\n  audit: \"%s;object=audit\"\n"
		 "ca:\n  root-certificate: %s/root.pem\n  issuing-certificate: %s/issuing.pem\n"
		 "socket:\n  path: %s/run/regsignd.sock\n"
		 "policy: %s/policy.yaml\n"
		 "state:\n  database: %s/state/regsign.db\n  audit-log: %s/state/audit.jsonl\n"
		 "  zone-file: %s/state/zone.db\n"
		 "dns:\n  listen: [\"127.0.0.1:5353\"]\n",
		 tok->module, tok->uri, tok->pin_file, tok->conf, tok->uri, tok->uri, tok->uri,
		 tok->uri, e->ro, e->ro, e->rw, e->ro, e->rw, e->rw, e->rw) < (int)sizeof(text));
	pathf(path, e->dir, "regsignd.yaml");
	write_file(path, text, 0644);
}

/*
 * sandbox_config_paths(): each process gets exactly what its configuration
 * names. The HSM process signs with SoftHSM but cannot touch the state; the
 * front works in its state directory but cannot read the PIN.
 */
static void test_config_paths(void **state)
{
	struct env *e = *state;
	struct fixture_token tok;
	char cfg[PATH_MAX], state_dir[PATH_MAX], state_file[PATH_MAX];

	assert_int_equal(fixture_token_new(&tok, "sandbox-cfg"), 0);
	write_config(e, &tok, cfg);
	pathf(state_dir, e->rw, "state");
	pathf(state_file, state_dir, "regsign.db");
	{
		const char *opts[] = { "--config", cfg, NULL };
		const struct attack hsm[] = {
			{ { "sign", tok.module, tok.uri, tok.pin_file, NULL }, OK, OK },
			{ { "write-file", state_file, NULL }, DENIED, OK },
			{ { "read-file", e->ro_file, NULL }, DENIED, OK },
		};
		const struct attack front[] = {
			{ { "work", state_dir, NULL }, OK, OK },
			{ { "read-file", tok.pin_file, NULL }, DENIED, OK },
			{ { "read-file", tok.conf, NULL }, DENIED, OK },
		};

		for (size_t i = 0; i < sizeof(hsm) / sizeof(hsm[0]); i++) {
			unlink(state_file);
			attack(e, SANDBOX_HOOK_HSM, opts, &hsm[i]);
		}
		for (size_t i = 0; i < sizeof(front) / sizeof(front[0]); i++) {
			char sock[PATH_MAX];

			pathf(sock, state_dir, "front.sock");
			unlink(sock);
			attack(e, SANDBOX_HOOK_FRONT, opts, &front[i]);
		}
	}
	fixture_token_free(&tok);
}

/* As root: the user change to nobody, checked from inside; otherwise the ids stay. */
static void test_privdrop(void **state)
{
	struct env *e = *state;
	struct passwd *pw = getpwnam("nobody");
	char uid[32], gid[32], mine[PATH_MAX];
	const char *ids[] = { "--user", "nobody", "ids", uid, gid, NULL };
	const char *status[] = { "--user", "nobody", "status", NULL };
	const char *work[] = { "--user", "nobody", "--rw", e->rw, "work", e->rw, NULL };
	const char *secret[] = { "--user", "nobody", "--ro", e->ro, "read-file", mine, NULL };
	int st;

	assert_non_null(pw);
	if (geteuid() != 0) {
		snprintf(uid, sizeof(uid), "%u", (unsigned)getuid());
		snprintf(gid, sizeof(gid), "%u", (unsigned)getgid());
		check(e, run(e, SANDBOX_HOOK_FRONT, ids), OK, "ids",
		      "not root: ids unchanged");
		return;
	}
	snprintf(uid, sizeof(uid), "%u", (unsigned)pw->pw_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)pw->pw_gid);
	check(e, run(e, SANDBOX_HOOK_FRONT, ids), OK, "ids", "front drops to nobody");
	check(e, run(e, SANDBOX_HOOK_HSM, ids), OK, "ids", "HSM process drops to nobody");
	/* Not dumpable: /proc/self belongs to root while the process is nobody. */
	check(e, run(e, SANDBOX_HOOK_FRONT, status), OK, "status", "nobody, not dumpable");
	/* The front's work as nobody in a directory nobody owns. */
	{
		char sock[PATH_MAX];
		char *const chown_argv[] = { (char *)"chown", (char *)"-R", (char *)"nobody", e->rw, NULL };

		pathf(sock, e->rw, "front.sock");
		unlink(sock);
		assert_int_equal(fixture_run(chown_argv), 0);
		check(e, run(e, SANDBOX_HOOK_FRONT, work), OK, "work", "front works as nobody");
	}
	/* Root's own file in an allowed directory: the user change, not Landlock, refuses. */
	pathf(mine, e->ro, "root-only");
	write_file(mine, "root\n", 0600);
	st = run(e, SANDBOX_HOOK_FRONT, secret);
	check(e, st, DENIED, "read-file", "nobody cannot read root's 0600 file");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_front_attacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_front_work, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_attacks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_sign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_config_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_privdrop, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
