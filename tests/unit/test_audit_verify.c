/*
 * Unit tests of signer/audit_verify and the `regsign audit` subcommand
 * body: a genuine log verifies; a flipped byte (every byte of the file in
 * turn), a deleted line, two lines swapped, truncation before the head, a
 * bad checkpoint signature, a wrong key, a torn or non-canonical line are
 * each caught and the first bad line named; rotation across files.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signer/audit.h"
#include "signer/audit_record.h"
#include "signer/audit_verify.h"
#include "signer/store.h"
#include "tests/unit/test_audit_util.h"

int cli_audit(int argc, char **argv);

struct fx {
	char dir[64];
	char log[128];
	char bad[128];
	char pub[128];
	char other_pub[128];
	EVP_PKEY *key, *other;
	char head[65];
	char *data;      /* the genuine log */
	size_t len;
	size_t lines;
	size_t cp_line;  /* line number of the first checkpoint */
};

static void
make_log(struct fx *f)
{
	struct audit_role_count counts[] = { { "issuing-ca", 2 }, { "zsk", 5 } };
	struct audit_opts o = { .path = f->log };
	unsigned char h[32], serial[16];
	struct audit_input in = { "csr", h };
	struct audit_caller who = { 1001, 1001, 77, "registry-frontend" };
	char db[128];
	store_t *st = NULL;
	audit_log_t *a = NULL;
	uint64_t seq;

	snprintf(db, sizeof(db), "%s/state.db", f->dir);
	memset(h, 0x42, sizeof(h));
	memset(serial, 0x17, sizeof(serial));
	assert_int_equal(store_open(&st, db, NULL), 0);
	assert_int_equal(audit_log_open(&a, st, &o, NULL), 0);
	assert_int_equal(audit_event(a, "start", "regsignd test"), 0);
	for (uint32_t i = 1; i <= 3; i++) {
		struct audit_request rq = { .caller = who, .op = "issue",
			.device = "8912230200031010008f", .index = i, .inputs = &in, .n_inputs = 1,
			.allow = 1, .rule = "frontend-issue", .policy_sha256 = h };
		struct audit_result rs = { .op = "issue", .device = "8912230200031010008f",
			.index = i, .serial = serial, .serial_len = 16, .cert_sha256 = h,
			.has_zone_serial = 1, .zone_serial = 100 + i };
		assert_int_equal(audit_request(a, &rq, &seq), 0);
		assert_int_equal(store_txn_begin(st), 0);
		assert_int_equal(audit_result(a, seq, &rs), 0);
		assert_int_equal(store_txn_commit(st), 0);
	}
	assert_int_equal(audit_checkpoint(a, counts, 2, tu_sign, f->key, NULL), 0);
	f->cp_line = audit_last_seq(a);
	struct audit_request deny = { .caller = who, .op = "issue", .device = "XYZ", .index = 1,
		.allow = 0, .rule = "device-id-format", .detail = "device id is not lowercase hex" };
	assert_int_equal(audit_request(a, &deny, NULL), 0);
	struct audit_request rv = { .caller = who, .op = "revoke", .device = "8912230200031010008f",
		.index = 2, .allow = 1, .rule = "frontend-revoke", .policy_sha256 = h };
	assert_int_equal(audit_request(a, &rv, &seq), 0);
	struct audit_result rr = { .op = "revoke", .device = "8912230200031010008f", .index = 2,
		.serial = serial, .serial_len = 16, .has_zone_serial = 1, .zone_serial = 104 };
	assert_int_equal(audit_result(a, seq, &rr), 0);
	assert_int_equal(audit_event(a, "stop", NULL), 0);
	assert_int_equal(audit_checkpoint(a, counts, 2, tu_sign, f->key, f->head), 0);
	audit_log_close(a);
	store_close(st);
	f->data = tu_read(f->log, &f->len);
	f->lines = tu_count_lines(f->data, f->len);
	assert_int_equal(f->lines, 13);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	tu_tmpdir(f->dir);
	snprintf(f->log, sizeof(f->log), "%s/audit.jsonl", f->dir);
	snprintf(f->bad, sizeof(f->bad), "%s/tampered.jsonl", f->dir);
	snprintf(f->pub, sizeof(f->pub), "%s/audit.pub", f->dir);
	snprintf(f->other_pub, sizeof(f->other_pub), "%s/other.pub", f->dir);
	f->key = tu_key_new();
	f->other = tu_key_new();
	tu_key_write_pub(f->key, f->pub);
	tu_key_write_pub(f->other, f->other_pub);
	make_log(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	EVP_PKEY_free(f->key);
	EVP_PKEY_free(f->other);
	free(f->data);
	tu_rmdir(f->dir);
	free(f);
	return 0;
}

/* Verify @p data as file f->bad; returns the error text ("" if it verified). */
static int
verify_data(struct fx *f, const char *data, size_t len, EVP_PKEY *key, const char *head,
            char *err, size_t errlen)
{
	const char *files[] = { f->bad };
	tu_write(f->bad, data, len);
	return audit_verify_files(files, 1, key, head, 0, err, errlen, NULL);
}

static void
expect_bad(struct fx *f, const char *data, size_t len, EVP_PKEY *key, const char *head,
           unsigned long line, const char *what)
{
	char err[600], want[160];
	int r = verify_data(f, data, len, key, head, err, sizeof(err));
	if (r != AUDIT_EBADLOG)
		fail_msg("expected a failure at line %lu (%s), got %d: %s", line, what, r, err);
	snprintf(want, sizeof(want), "%s:%lu: ", f->bad, line);
	if (strncmp(err, want, strlen(want)) != 0 || strstr(err, what) == NULL)
		fail_msg("expected \"%s...%s\", got \"%s\"", want, what, err);
}

static void
test_genuine_log_verifies(void **state)
{
	struct fx *f = *state;
	struct audit_verify_summary sum;
	const char *files[] = { f->log };
	EVP_PKEY *k = NULL;
	char err[600];

	assert_int_equal(audit_verify_key_load(f->pub, &k), 0);
	int r = audit_verify_files(files, 1, k, f->head, 0, err, sizeof(err), &sum);
	if (r != 0)
		fail_msg("%s", err);
	assert_int_equal(sum.records, 13);
	assert_int_equal(sum.checkpoints, 2);
	assert_int_equal(sum.first_seq, 1);
	assert_int_equal(sum.last_seq, 13);
	assert_string_equal(sum.last_checkpoint, f->head);
	assert_true(sum.head_reached);
	assert_true(sum.signatures_checked);
	EVP_PKEY_free(k);

	/* A key file that is not a P-256 public key is refused. */
	assert_int_equal(audit_verify_key_load(f->log, &k), AUDIT_EKEY);
}

static void
test_every_flipped_byte_is_caught(void **state)
{
	struct fx *f = *state;
	char *copy = malloc(f->len);
	char err[600];
	assert_non_null(copy);
	/* With the key and the head, no byte of the log can change unseen. */
	for (size_t i = 0; i < f->len; i++) {
		audit_verifier_t *v = NULL;
		int r;
		memcpy(copy, f->data, f->len);
		copy[i] ^= 0x01;
		assert_int_equal(audit_verifier_new(&v, f->key, f->head, 0), 0);
		if ((r = audit_verifier_file_begin(v, "flipped")) == 0 &&
		    (r = audit_verifier_feed(v, copy, f->len)) == 0 &&
		    (r = audit_verifier_file_end(v)) == 0)
			r = audit_verifier_finish(v);
		if (r != AUDIT_EBADLOG || audit_verifier_error(v) == NULL)
			fail_msg("flipping byte %zu ('%c') went unnoticed", i, f->data[i]);
		audit_verifier_free(v);
	}
	/* The same through the file interface for one flip. */
	memcpy(copy, f->data, f->len);
	copy[f->len / 3] ^= 0x01;
	assert_int_equal(verify_data(f, copy, f->len, f->key, f->head, err, sizeof(err)),
	                 AUDIT_EBADLOG);
	free(copy);
}

static void
test_flip_names_first_bad_line(void **state)
{
	struct fx *f = *state;
	char *copy = malloc(f->len);
	size_t off, llen;
	assert_non_null(copy);

	/* A broken structure is caught on its own line. */
	assert_int_equal(tu_line(f->data, f->len, 5, &off, &llen), 0);
	memcpy(copy, f->data, f->len);
	copy[off] = '[';
	expect_bad(f, copy, f->len, f->key, f->head, 5, "not a canonical audit record");

	/* A still-canonical change (a digit of the time) shows on the next line,
	 * whose prev no longer matches. */
	memcpy(copy, f->data, f->len);
	char *t = strstr(copy + off, "\"time\":\"") + 8 + 3; /* last digit of the year */
	*t = *t == '9' ? '8' : (char)(*t + 1);
	expect_bad(f, copy, f->len, f->key, f->head, 6, "hash chain broken");
	free(copy);
}

static void
test_deleted_line(void **state)
{
	struct fx *f = *state;
	size_t off, llen;
	char *copy = malloc(f->len);
	assert_non_null(copy);
	assert_int_equal(tu_line(f->data, f->len, 8, &off, &llen), 0);
	memcpy(copy, f->data, off);
	memcpy(copy + off, f->data + off + llen + 1, f->len - off - llen - 1);
	expect_bad(f, copy, f->len - llen - 1, f->key, f->head, 8, "seq 9 where 8 was expected");
	free(copy);
}

static void
test_swapped_lines(void **state)
{
	struct fx *f = *state;
	size_t o8, l8, o9, l9;
	char *copy = malloc(f->len);
	assert_non_null(copy);
	assert_int_equal(tu_line(f->data, f->len, 8, &o8, &l8), 0);
	assert_int_equal(tu_line(f->data, f->len, 9, &o9, &l9), 0);
	memcpy(copy, f->data, f->len);
	memcpy(copy + o8, f->data + o9, l9);
	copy[o8 + l9] = '\n';
	memcpy(copy + o8 + l9 + 1, f->data + o8, l8);
	expect_bad(f, copy, f->len, f->key, f->head, 8, "seq 9 where 8 was expected");
	free(copy);
}

static void
test_truncation_before_head(void **state)
{
	struct fx *f = *state;
	size_t off, llen;
	char err[600];
	/* Cut after line 11: whole lines, a clean-looking shorter log. */
	assert_int_equal(tu_line(f->data, f->len, 11, &off, &llen), 0);
	size_t cut = off + llen + 1;
	/* Without the head it looks complete — this is what --head is for. */
	assert_int_equal(verify_data(f, f->data, cut, f->key, NULL, err, sizeof(err)), 0);
	expect_bad(f, f->data, cut, f->key, f->head, 12, "log ends before the checkpoint");
	/* Cut before the first checkpoint too. */
	assert_int_equal(tu_line(f->data, f->len, f->cp_line - 1, &off, &llen), 0);
	expect_bad(f, f->data, off + llen + 1, f->key, f->head, f->cp_line, "log ends before");
	/* A log cut in the middle of a line is torn. */
	expect_bad(f, f->data, f->len - 10, f->key, NULL, 13, "torn last line");
}

static void
test_bad_signature_and_wrong_key(void **state)
{
	struct fx *f = *state;
	size_t o1, l1, o2, l2;
	char *copy = malloc(f->len);
	assert_non_null(copy);

	/* Put the final checkpoint's (valid-looking) signature on the first. */
	assert_int_equal(tu_line(f->data, f->len, f->cp_line, &o1, &l1), 0);
	assert_int_equal(tu_line(f->data, f->len, 13, &o2, &l2), 0);
	memcpy(copy, f->data, f->len);
	const char *s1 = strstr(f->data + o1, "\"sig\":\"") + 7;
	const char *s2 = strstr(f->data + o2, "\"sig\":\"") + 7;
	memcpy(copy + (s1 - f->data), s2, 88);
	assert_memory_not_equal(copy, f->data, f->len);
	expect_bad(f, copy, f->len, f->key, f->head, f->cp_line, "signature does not verify");
	/* Without a key that is not seen at this line (the next prev is). */
	expect_bad(f, copy, f->len, NULL, NULL, f->cp_line + 1, "hash chain broken");

	/* The genuine log with another key fails at the first checkpoint. */
	expect_bad(f, f->data, f->len, f->other, NULL, f->cp_line, "signature does not verify");
	free(copy);
}

static void
test_non_canonical_and_chain_start(void **state)
{
	struct fx *f = *state;
	size_t off, llen;
	char *copy = malloc(f->len + 8);
	assert_non_null(copy);

	/* A space after the first comma of line 3. */
	assert_int_equal(tu_line(f->data, f->len, 3, &off, &llen), 0);
	const char *comma = memchr(f->data + off, ',', llen);
	size_t at = (size_t)(comma - f->data) + 1;
	memcpy(copy, f->data, at);
	copy[at] = ' ';
	memcpy(copy + at + 1, f->data + at, f->len - at);
	expect_bad(f, copy, f->len + 1, NULL, NULL, 3, "not a canonical audit record");

	/* An empty line. */
	memcpy(copy, f->data, off);
	copy[off] = '\n';
	memcpy(copy + off + 1, f->data + off, f->len - off);
	expect_bad(f, copy, f->len + 1, NULL, NULL, 3, "not a canonical audit record");

	/* A log whose first line is gone does not start at 1. */
	assert_int_equal(tu_line(f->data, f->len, 1, &off, &llen), 0);
	expect_bad(f, f->data + llen + 1, f->len - llen - 1, NULL, NULL, 1, "not 1");
	/* Empty input. */
	expect_bad(f, "", 0, NULL, NULL, 1, "no audit records");
	free(copy);
}

static void
test_rotation_two_files(void **state)
{
	struct fx *f = *state;
	char a[160], b[160], err[600];
	size_t off, llen;
	assert_int_equal(tu_line(f->data, f->len, 6, &off, &llen), 0);
	snprintf(a, sizeof(a), "%s/audit.jsonl.000000000001", f->dir);
	snprintf(b, sizeof(b), "%s/audit.jsonl.000000000007", f->dir);
	tu_write(a, f->data, off + llen + 1);
	tu_write(b, f->data + off + llen + 1, f->len - off - llen - 1);
	const char *files[] = { a, b }, *reversed[] = { b, a };
	int r = audit_verify_files(files, 2, f->key, f->head, 0, err, sizeof(err), NULL);
	if (r != 0)
		fail_msg("%s", err);
	assert_int_equal(audit_verify_files(reversed, 2, f->key, f->head, 0, err, sizeof(err),
	                                    NULL), AUDIT_EBADLOG);
	/* The line numbers restart per file in messages. */
	assert_non_null(strstr(err, b));
	assert_non_null(strstr(err, ":1: "));
}

static void
test_streaming_any_chunking(void **state)
{
	struct fx *f = *state;
	/* The verifier's result does not depend on how the bytes arrive. */
	for (size_t chunk = 1; chunk < 200; chunk += 37) {
		audit_verifier_t *v = NULL;
		assert_int_equal(audit_verifier_new(&v, f->key, f->head, 0), 0);
		assert_int_equal(audit_verifier_file_begin(v, "x"), 0);
		for (size_t i = 0; i < f->len; i += chunk) {
			size_t n = f->len - i < chunk ? f->len - i : chunk;
			assert_int_equal(audit_verifier_feed(v, f->data + i, n), 0);
		}
		assert_int_equal(audit_verifier_file_end(v), 0);
		assert_int_equal(audit_verifier_finish(v), 0);
		assert_null(audit_verifier_error(v));
		audit_verifier_free(v);
	}
	audit_verifier_t *v = NULL;
	assert_int_equal(audit_verifier_new(&v, NULL, "XYZ", 0), AUDIT_EINVAL);
	audit_verifier_free(NULL);
}

static int
run_cli(int quiet, ...)
{
	char *argv[16];
	int argc = 0, rc, saved_out = -1, saved_err = -1;
	va_list ap;
	va_start(ap, quiet);
	while (argc < 15 && (argv[argc] = va_arg(ap, char *)) != NULL)
		argc++;
	va_end(ap);
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	if (quiet) {
		saved_out = dup(1);
		saved_err = dup(2);
		assert_non_null(freopen("/dev/null", "w", stdout));
		assert_true(dup2(1, 2) >= 0);
	}
	rc = cli_audit(argc, argv);
	fflush(stdout);
	fflush(stderr);
	if (quiet) {
		dup2(saved_out, 1);
		dup2(saved_err, 2);
		close(saved_out);
		close(saved_err);
	}
	return rc;
}

static void
test_cli_audit(void **state)
{
	struct fx *f = *state;
	char *copy = malloc(f->len);
	assert_non_null(copy);

	assert_int_equal(run_cli(0, "audit", "verify", "--key", f->pub, "--head", f->head, f->log,
	                         (char *)NULL), 0);
	assert_int_equal(run_cli(1, "audit", "verify", f->log, (char *)NULL), 0);
	/* The wrong key, a tampered file, a truncation: exit 1. */
	assert_int_equal(run_cli(1, "audit", "verify", "--key", f->other_pub, f->log, (char *)NULL),
	                 1);
	memcpy(copy, f->data, f->len);
	copy[f->len / 2] ^= 0x20;
	tu_write(f->bad, copy, f->len);
	assert_int_equal(run_cli(1, "audit", "verify", "--key", f->pub, f->bad, (char *)NULL), 1);
	size_t off, llen;
	assert_int_equal(tu_line(f->data, f->len, 12, &off, &llen), 0);
	tu_write(f->bad, f->data, off);
	assert_int_equal(run_cli(1, "audit", "verify", "--head", f->head, f->bad, (char *)NULL), 1);
	/* Usage errors and unreadable input: exit 2. */
	assert_int_equal(run_cli(1, "audit", "verify", (char *)NULL), 2);
	assert_int_equal(run_cli(1, "audit", "verify", "--head", "abc", f->log, (char *)NULL), 2);
	assert_int_equal(run_cli(1, "audit", "verify", "--key", f->log, f->log, (char *)NULL), 2);
	assert_int_equal(run_cli(1, "audit", "verify", "/nonexistent/audit.jsonl", (char *)NULL), 2);
	assert_int_equal(run_cli(1, "audit", "frobnicate", (char *)NULL), 2);
	assert_int_equal(run_cli(1, "audit", (char *)NULL), 2);

	/* show prints the table; filters work; bad lines make it exit 1. */
	assert_int_equal(run_cli(0, "audit", "show", f->log, (char *)NULL), 0);
	assert_int_equal(run_cli(0, "audit", "show", "--device", "XYZ", "--since", "2000-01-01",
	                         f->log, (char *)NULL), 0);
	memcpy(copy, f->data, f->len);
	copy[0] = 'x';
	tu_write(f->bad, copy, f->len);
	assert_int_equal(run_cli(1, "audit", "show", f->bad, (char *)NULL), 1);
	assert_int_equal(run_cli(1, "audit", "show", "/nonexistent", (char *)NULL), 2);
	free(copy);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_genuine_log_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_flipped_byte_is_caught, setup, teardown),
		cmocka_unit_test_setup_teardown(test_flip_names_first_bad_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_deleted_line, setup, teardown),
		cmocka_unit_test_setup_teardown(test_swapped_lines, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncation_before_head, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_signature_and_wrong_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_canonical_and_chain_start, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_two_files, setup, teardown),
		cmocka_unit_test_setup_teardown(test_streaming_any_chunking, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cli_audit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
