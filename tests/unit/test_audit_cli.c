/*
 * `regsign audit verify|show` through the real CLI binary: a log written
 * by signer/audit verifies with the key and head; a tampered copy, a
 * truncated copy and the wrong key exit 1 and name the bad line.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "signer/audit.h"
#include "signer/store.h"
#include "tests/unit/test_audit_util.h"

#ifndef REGSIGN_BIN_DIR
#define REGSIGN_BIN_DIR "bin"
#endif

struct fx {
	char dir[64];
	char log[128], bad[128], pub[128], other_pub[128], out[128];
	char head[65];
	char bin[512];
	char *data;
	size_t len;
};

static int
setup(void **state)
{
	struct audit_role_count counts[] = { { "issuing-ca", 1 } };
	struct fx *f = calloc(1, sizeof(*f));
	const char *bindir = getenv("REGSIGN_BIN_DIR");
	EVP_PKEY *key, *other;
	store_t *st = NULL;
	audit_log_t *a = NULL;
	char db[128];

	assert_non_null(f);
	if (bindir == NULL)
		bindir = REGSIGN_BIN_DIR;
	snprintf(f->bin, sizeof(f->bin), "%s/regsign", bindir);
	if (access(f->bin, X_OK) != 0)
		fail_msg("the regsign CLI is not built at %s", f->bin);
	tu_tmpdir(f->dir);
	snprintf(f->log, sizeof(f->log), "%s/audit.jsonl", f->dir);
	snprintf(f->bad, sizeof(f->bad), "%s/bad.jsonl", f->dir);
	snprintf(f->pub, sizeof(f->pub), "%s/audit.pub", f->dir);
	snprintf(f->other_pub, sizeof(f->other_pub), "%s/other.pub", f->dir);
	snprintf(f->out, sizeof(f->out), "%s/out.txt", f->dir);
	snprintf(db, sizeof(db), "%s/state.db", f->dir);
	key = tu_key_new();
	other = tu_key_new();
	tu_key_write_pub(key, f->pub);
	tu_key_write_pub(other, f->other_pub);

	struct audit_opts o = { .path = f->log };
	assert_int_equal(store_open(&st, db, NULL), 0);
	assert_int_equal(audit_log_open(&a, st, &o, NULL), 0);
	assert_int_equal(audit_event(a, "start", NULL), 0);
	for (int i = 0; i < 5; i++)
		assert_int_equal(audit_event(a, "reload", "policy v2"), 0);
	assert_int_equal(audit_checkpoint(a, counts, 1, tu_sign, key, NULL), 0);
	assert_int_equal(audit_event(a, "stop", NULL), 0);
	assert_int_equal(audit_checkpoint(a, counts, 1, tu_sign, key, f->head), 0);
	audit_log_close(a);
	store_close(st);
	EVP_PKEY_free(key);
	EVP_PKEY_free(other);
	f->data = tu_read(f->log, &f->len);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	free(f->data);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

/* Run the CLI with stdout and stderr into f->out; return its exit status. */
static int
run(struct fx *f, ...)
{
	char *argv[16];
	int argc = 0, status;
	va_list ap;
	pid_t pid;

	argv[argc++] = f->bin;
	va_start(ap, f);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int fd = open(f->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
			_exit(127);
		execv(f->bin, argv);
		_exit(127);
	}
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	return WEXITSTATUS(status);
}

static int
out_has(struct fx *f, const char *s)
{
	size_t n;
	char *o = tu_read(f->out, &n);
	int found = strstr(o, s) != NULL;
	if (!found)
		print_message("output was:\n%s\n", o);
	free(o);
	return found;
}

static void
test_cli_verify(void **state)
{
	struct fx *f = *state;
	char want[200];
	size_t off, llen;
	char *copy = malloc(f->len);
	assert_non_null(copy);

	assert_int_equal(run(f, "audit", "verify", "--key", f->pub, "--head", f->head, f->log,
	                     (char *)NULL), 0);
	assert_true(out_has(f, "OK: 9 records"));
	assert_true(out_has(f, f->head));

	/* One changed byte in line 4's detail: line 5's prev no longer matches. */
	memcpy(copy, f->data, f->len);
	assert_int_equal(tu_line(f->data, f->len, 4, &off, &llen), 0);
	char *v2 = strstr(copy + off, "policy v2");
	assert_non_null(v2);
	v2[8] = '3';
	tu_write(f->bad, copy, f->len);
	assert_int_equal(run(f, "audit", "verify", "--key", f->pub, f->bad, (char *)NULL), 1);
	snprintf(want, sizeof(want), "%s:5: ", f->bad);
	assert_true(out_has(f, want));

	/* Truncated before the head: only --head tells. */
	assert_int_equal(tu_line(f->data, f->len, 8, &off, &llen), 0);
	tu_write(f->bad, f->data, off + llen + 1);
	assert_int_equal(run(f, "audit", "verify", "--key", f->pub, f->bad, (char *)NULL), 0);
	assert_int_equal(run(f, "audit", "verify", "--key", f->pub, "--head", f->head, f->bad,
	                     (char *)NULL), 1);
	assert_true(out_has(f, "log ends before the checkpoint"));

	/* The wrong key. */
	assert_int_equal(run(f, "audit", "verify", "--key", f->other_pub, f->log, (char *)NULL), 1);
	snprintf(want, sizeof(want), "%s:7: checkpoint signature does not verify", f->log);
	assert_true(out_has(f, want));

	/* show prints one row per record. */
	assert_int_equal(run(f, "audit", "show", f->log, (char *)NULL), 0);
	assert_true(out_has(f, "event:reload"));
	assert_true(out_has(f, "checkpoint"));
	free(copy);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cli_verify, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
