/*
 * Unit tests of signer/audit (the log): hash chain, intent and result in
 * one transaction, rollback, abandoned intents at reopen, signed
 * checkpoints, re-export after a crash, torn line cut, rotation (also within
 * one transaction).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signer/audit.h"
#include "signer/audit_record.h"
#include "signer/audit_verify.h"
#include "signer/store.h"
#include "tests/unit/test_audit_util.h"

static int
setup(void **state)
{
	struct tu_audit_fx *f = tu_audit_fx_new();

	tu_audit_fx_open(f);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	tu_audit_fx_free(*state);
	return 0;
}

static const struct audit_caller CALLER = { 1000, 1000, 4242, "frontend" };

static uint64_t
log_request(struct tu_audit_fx *f, int allow, const char *device, uint32_t index)
{
	unsigned char csr[32];
	struct audit_input in = { "csr", csr };
	unsigned char pol[32];
	struct audit_request rq = {
		.caller = CALLER, .op = "issue", .device = device, .index = index,
		.inputs = &in, .n_inputs = 1, .allow = allow,
		.rule = allow ? "callers.frontend.issue" : "rate-limit", .policy_sha256 = pol,
		.detail = allow ? NULL : "rate limit \"5/min\" exceeded",
	};
	uint64_t seq = 0;
	memset(csr, 0xc5, sizeof(csr));
	memset(pol, 0x9a, sizeof(pol));
	assert_int_equal(audit_request(f->a, &rq, &seq), 0);
	assert_true(seq > 0);
	return seq;
}

static void
log_result(struct tu_audit_fx *f, uint64_t intent)
{
	unsigned char serial[16], cert[32];
	struct audit_result rs = {
		.op = "issue", .device = "8912230200031010008f", .index = 1, .error = 0,
		.serial = serial, .serial_len = sizeof(serial), .cert_sha256 = cert,
		.has_zone_serial = 1, .zone_serial = 2024112701,
	};
	memset(serial, 0x5e, sizeof(serial));
	memset(cert, 0xce, sizeof(cert));
	assert_int_equal(audit_result(f->a, intent, &rs), 0);
}

static void
verify_ok(struct tu_audit_fx *f, const char *head, uint64_t want_records)
{
	const char *files[] = { f->log };
	struct audit_verify_summary sum;
	char err[600];
	int r = audit_verify_files(files, 1, f->key, head, 0, err, sizeof(err), &sum);
	if (r != 0)
		fail_msg("verify: %s (%s)", err, audit_strerror(r));
	if (want_records)
		assert_int_equal(sum.records, want_records);
}

struct cmp {
	const char *data;
	size_t len, line;
};

/* The file holds exactly the store's lines, in order. */
static int
cmp_cb(void *ctx, uint64_t seq, const char *line, size_t len)
{
	struct cmp *c = ctx;
	size_t off, llen;
	assert_int_equal(seq, c->line);
	assert_int_equal(tu_line(c->data, c->len, c->line, &off, &llen), 0);
	assert_int_equal(llen, len);
	assert_memory_equal(c->data + off, line, len);
	c->line++;
	return 0;
}

static void
file_matches_store(struct tu_audit_fx *f)
{
	size_t len;
	char *data = tu_read(f->log, &len);
	struct cmp c = { data, len, 1 };
	assert_int_equal(store_audit_foreach(f->st, 1, cmp_cb, &c), 0);
	assert_int_equal(tu_count_lines(data, len), c.line - 1);
	free(data);
}

static void
test_chain(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_record rec;
	char prev[65], why[200];
	size_t len, off, llen;
	char *data;

	assert_int_equal(audit_event(f->a, "start", "regsignd 0.1.0"), 0);
	log_request(f, 0, "8912230200031010008f", 1);
	log_result(f, log_request(f, 1, "8912230200031010008f", 1));
	assert_int_equal(audit_event(f->a, "reload", "policy\nwith \"odd\" \x01 text \xff"), 0);
	assert_int_equal(audit_last_seq(f->a), 5);

	data = tu_read(f->log, &len);
	assert_int_equal(tu_count_lines(data, len), 5);
	memset(prev, '0', 64);
	prev[64] = '\0';
	for (size_t n = 1; n <= 5; n++) {
		assert_int_equal(tu_line(data, len, n, &off, &llen), 0);
		if (audit_record_parse(data + off, llen, &rec, why, sizeof(why)) != 0)
			fail_msg("line %zu: %s", n, why);
		assert_int_equal(rec.seq, n);
		assert_string_equal(rec.prev, prev);
		audit_line_hash(data + off, llen, prev);
	}
	/* Free text is sanitised: the invalid byte became '?'. */
	assert_string_equal(rec.detail, "policy\nwith \"odd\" \x01 text ?");
	free(data);
	file_matches_store(f);
	verify_ok(f, NULL, 5);

	/* Bad identifiers are refused and leave no record. */
	assert_int_equal(audit_event(f->a, "Start Now", NULL), AUDIT_EINVAL);
	assert_int_equal(audit_last_seq(f->a), 5);
}

static void
test_intent_result_one_transaction(void **state)
{
	struct tu_audit_fx *f = *state;
	struct store_cert c, got;
	unsigned char der[8] = { 0x30, 0x06, 1, 2, 3, 4, 5, 6 };
	uint64_t intent, *open = NULL, cnt;
	size_t nopen;

	intent = log_request(f, 1, "8912230200031010008f", 1);
	/* The intent is committed (and exported) before the HSM is asked. */
	assert_int_equal(audit_intents_open(f->a, &open, &nopen), 0);
	assert_int_equal(nopen, 1);
	assert_int_equal(open[0], intent);
	free(open);
	file_matches_store(f);

	/* The change and its result commit together. */
	memset(&c, 0, sizeof(c));
	snprintf(c.device, sizeof(c.device), "8912230200031010008f");
	c.index = 1;
	memset(c.serial, 0x5e, 16);
	c.serial_len = 16;
	c.der = der;
	c.der_len = sizeof(der);
	snprintf(c.profile, sizeof(c.profile), "device");
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	log_result(f, intent);
	/* Not exported before the commit. */
	{
		size_t len;
		char *d = tu_read(f->log, &len);
		assert_int_equal(tu_count_lines(d, len), 1);
		free(d);
	}
	assert_int_equal(store_txn_commit(f->st), 0);
	file_matches_store(f);
	assert_int_equal(audit_intents_open(f->a, &open, &nopen), 0);
	assert_int_equal(nopen, 0);
	free(open);

	/* A rolled-back change takes its result record with it. */
	intent = log_request(f, 1, "8912230200031010008f", 2);
	c.index = 2;
	memset(c.serial, 0x5f, 16);
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	log_result(f, intent);
	assert_int_equal(audit_last_seq(f->a), 3); /* committed ones only */
	assert_int_equal(store_txn_rollback(f->st), 0);
	assert_int_equal(store_cert_get_by_index(f->st, c.device, 2, &got), STORE_ENOTFOUND);
	assert_int_equal(store_audit_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 3);
	assert_int_equal(audit_intents_open(f->a, &open, &nopen), 0);
	assert_int_equal(nopen, 1);
	free(open);
	/* The chain continues from the last committed record. */
	log_result(f, intent);
	assert_int_equal(audit_last_seq(f->a), 4);
	file_matches_store(f);
	verify_ok(f, NULL, 4);

	/* Results only for open intents: not twice, not for a refusal. */
	unsigned char s[1] = { 1 };
	struct audit_result rs = { .op = "issue", .serial = s, .serial_len = 1 };
	assert_int_equal(audit_result(f->a, intent, &rs), AUDIT_ENOINTENT);
	assert_int_equal(audit_result(f->a, log_request(f, 0, NULL, 0), &rs), AUDIT_ENOINTENT);
	assert_int_equal(audit_result(f->a, 999, &rs), AUDIT_ENOINTENT);
	verify_ok(f, NULL, 5);
}

static void
test_abandoned_at_reopen(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_record rec;
	uint64_t i1, i2, *open = NULL;
	size_t nopen, len, off, llen;
	char *data;

	i1 = log_request(f, 1, "00aa", 1);
	i2 = log_request(f, 1, "00bb", 1);
	log_result(f, i1);
	tu_audit_fx_close(f); /* the daemon died with i2 at the HSM */
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 1);
	assert_int_equal(f->rep.torn_bytes, 0);
	assert_int_equal(f->rep.reexported, 0);
	assert_int_equal(audit_intents_open(f->a, &open, &nopen), 0);
	assert_int_equal(nopen, 0);
	free(open);

	data = tu_read(f->log, &len);
	assert_int_equal(tu_count_lines(data, len), 4);
	assert_int_equal(tu_line(data, len, 4, &off, &llen), 0);
	assert_int_equal(audit_record_parse(data + off, llen, &rec, NULL, 0), 0);
	assert_int_equal(rec.type, AUDIT_T_ABANDONED);
	assert_int_equal(rec.ref, i2);
	free(data);
	verify_ok(f, NULL, 4);

	/* Nothing more to abandon the next time. */
	tu_audit_fx_close(f);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 0);
	assert_int_equal(audit_last_seq(f->a), 4);
}

static int
sign_fails(void *ctx, const unsigned char *data, size_t len, unsigned char sig[64])
{
	(void)ctx, (void)data, (void)len, (void)sig;
	return -1;
}

static void
test_checkpoint(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_role_count counts[] = { { "issuing-ca", 3 }, { "zsk", 12 }, { "audit", 1 } };
	char head[65], head2[65], hash[65];
	uint64_t hseq;
	size_t len, off, llen;
	char *data;

	assert_int_equal(audit_head_get(f->a, head, &hseq), AUDIT_ENOTFOUND);
	assert_int_equal(audit_event(f->a, "start", NULL), 0);
	log_result(f, log_request(f, 1, "00aa", 1));
	assert_int_equal(audit_checkpoint(f->a, counts, 3, tu_sign, f->key, head), 0);
	assert_int_equal(audit_head_get(f->a, head2, &hseq), 0);
	assert_string_equal(head, head2);
	assert_int_equal(hseq, 4);

	/* The head is the hash of the checkpoint's exact line. */
	data = tu_read(f->log, &len);
	assert_int_equal(tu_line(data, len, 4, &off, &llen), 0);
	audit_line_hash(data + off, llen, hash);
	assert_string_equal(hash, head);
	assert_non_null(strstr(data + off, "\"sigs\":[{\"role\":\"issuing-ca\",\"count\":3}"));
	free(data);
	verify_ok(f, head, 4);

	/* A failing signer leaves nothing behind. */
	assert_int_equal(audit_checkpoint(f->a, counts, 3, sign_fails, NULL, NULL), AUDIT_ESIGN);
	assert_int_equal(audit_last_seq(f->a), 4);
	/* Not inside a transaction (it commits and fsyncs on its own). */
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(audit_checkpoint(f->a, counts, 3, tu_sign, f->key, NULL), AUDIT_EINVAL);
	assert_int_equal(store_txn_rollback(f->st), 0);

	/* Two-step form for an asynchronous signer. */
	{
		audit_checkpoint_pending_t *cp = NULL;
		const unsigned char *msg;
		unsigned char sig[64];
		size_t mlen;
		assert_int_equal(audit_checkpoint_begin(f->a, counts, 1, &cp, &msg, &mlen), 0);
		assert_int_equal(tu_sign(f->key, msg, mlen, sig), 0);
		/* A record committed meanwhile makes the checkpoint stale. */
		assert_int_equal(audit_event(f->a, "hsm-lost", NULL), 0);
		assert_int_equal(audit_checkpoint_end(f->a, cp, sig, NULL), AUDIT_ESTALE);
		assert_int_equal(audit_last_seq(f->a), 5);
		assert_int_equal(audit_checkpoint_begin(f->a, counts, 1, &cp, &msg, &mlen), 0);
		assert_int_equal(tu_sign(f->key, msg, mlen, sig), 0);
		assert_int_equal(audit_checkpoint_end(f->a, cp, sig, head), 0);
		assert_int_equal(audit_last_seq(f->a), 6);
		verify_ok(f, head, 6);
		assert_int_equal(audit_checkpoint_begin(f->a, counts, 1, &cp, &msg, &mlen), 0);
		audit_checkpoint_abort(cp);
		audit_checkpoint_abort(NULL);
	}

	/* The head survives a restart. */
	tu_audit_fx_close(f);
	tu_audit_fx_open(f);
	assert_int_equal(audit_head_get(f->a, head2, &hseq), 0);
	assert_string_equal(head, head2);
	assert_int_equal(audit_event(f->a, "stop", NULL), 0);
	assert_int_equal(audit_checkpoint(f->a, counts, 0, tu_sign, f->key, head2), 0);
	assert_string_not_equal(head, head2);
	verify_ok(f, head, 8); /* the older head is still reached */
	verify_ok(f, head2, 8);
}

static void
test_reexport_after_crash(void **state)
{
	struct tu_audit_fx *f = *state;
	size_t len, off, llen;
	char *data;

	for (int i = 0; i < 6; i++)
		assert_int_equal(audit_event(f->a, "hsm-lost", "test"), 0);
	tu_audit_fx_close(f);
	/* The file lost its last two lines (written, never fsync'd). */
	data = tu_read(f->log, &len);
	assert_int_equal(tu_line(data, len, 5, &off, &llen), 0);
	tu_write(f->log, data, off);
	free(data);

	tu_audit_fx_open(f);
	assert_int_equal(f->rep.reexported, 2);
	assert_int_equal(f->rep.torn_bytes, 0);
	assert_int_equal(audit_last_seq(f->a), 7); /* + the export-resync event */
	file_matches_store(f);
	verify_ok(f, NULL, 7);

	/* A lost file is rebuilt from the store. */
	tu_audit_fx_close(f);
	assert_int_equal(unlink(f->log), 0);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.reexported, 7);
	file_matches_store(f);
	verify_ok(f, NULL, 8);
}

static void
test_torn_line_cut(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_record rec;
	const char torn[] = "{\"seq\":4,\"time\":\"2025-";
	size_t len, off, llen;
	char *data;
	FILE *fp;

	for (int i = 0; i < 3; i++)
		assert_int_equal(audit_event(f->a, "start", NULL), 0);
	tu_audit_fx_close(f);
	fp = fopen(f->log, "a");
	assert_non_null(fp);
	fputs(torn, fp);
	fclose(fp);

	tu_audit_fx_open(f);
	assert_int_equal(f->rep.torn_bytes, strlen(torn));
	assert_int_equal(f->rep.reexported, 0);
	data = tu_read(f->log, &len);
	assert_int_equal(tu_count_lines(data, len), 4);
	assert_int_equal(data[len - 1], '\n');
	assert_int_equal(tu_line(data, len, 4, &off, &llen), 0);
	assert_int_equal(audit_record_parse(data + off, llen, &rec, NULL, 0), 0);
	assert_int_equal(rec.type, AUDIT_T_EVENT);
	assert_string_equal(rec.event, "torn-line-cut");
	free(data);
	verify_ok(f, NULL, 4);

	/* A complete last line that is no record (zeros after a crash) too. */
	tu_audit_fx_close(f);
	fp = fopen(f->log, "a");
	assert_non_null(fp);
	fwrite("\0\0\0\0\n", 1, 5, fp);
	fclose(fp);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.torn_bytes, 5);
	file_matches_store(f);
	verify_ok(f, NULL, 5);
}

static void
test_file_disagrees(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_record rec;
	char line[AUDIT_LINE_MAX + 1], other_db[160];
	size_t len, off, llen, n;
	char *data, *out;
	audit_log_t *a = NULL;
	store_t *st = NULL;

	for (int i = 0; i < 3; i++)
		assert_int_equal(audit_event(f->a, "start", "one"), 0);
	tu_audit_fx_close(f);

	/* The last line is a valid record but not the store's: evidence, not a
	 * torn write, so the log refuses to open rather than "repair" it. */
	data = tu_read(f->log, &len);
	assert_int_equal(tu_line(data, len, 3, &off, &llen), 0);
	assert_int_equal(audit_record_parse(data + off, llen, &rec, NULL, 0), 0);
	snprintf(rec.detail, sizeof(rec.detail), "two");
	assert_int_equal(audit_record_format(&rec, 0, line, sizeof(line), &n), 0);
	out = malloc(off + n + 1);
	assert_non_null(out);
	memcpy(out, data, off);
	memcpy(out + off, line, n);
	out[off + n] = '\n';
	tu_write(f->log, out, off + n + 1);
	assert_int_equal(store_open(&st, f->db, NULL), 0);
	assert_int_equal(audit_log_open(&a, st, &f->opts, NULL), AUDIT_EEXPORT);
	assert_null(a);
	store_close(st);
	st = NULL;
	/* Nothing was changed. */
	{
		size_t l2;
		char *again = tu_read(f->log, &l2);
		assert_int_equal(l2, off + n + 1);
		assert_memory_equal(again, out, l2);
		free(again);
	}

	/* A file ahead of the store (e.g. the database was lost) is refused. */
	tu_write(f->log, data, len);
	snprintf(other_db, sizeof(other_db), "%s/other.db", f->dir);
	assert_int_equal(store_open(&st, other_db, NULL), 0);
	assert_int_equal(audit_log_open(&a, st, &f->opts, NULL), AUDIT_EEXPORT);
	store_close(st);
	free(out);
	free(data);
	tu_audit_fx_open(f);
}

static int
cmpstr(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The rotated files and the current one, oldest first. */
static size_t
log_files(struct tu_audit_fx *f, char **files, size_t max)
{
	DIR *d = opendir(f->dir);
	struct dirent *de;
	size_t n = 0;
	assert_non_null(d);
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "audit.jsonl.", 12) != 0)
			continue;
		assert_true(n < max - 1);
		assert_true(asprintf(&files[n++], "%s/%s", f->dir, de->d_name) > 0);
	}
	closedir(d);
	qsort(files, n, sizeof(*files), cmpstr);
	assert_true(asprintf(&files[n++], "%s", f->log) > 0);
	return n;
}

static void
test_rotation(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_verify_summary sum;
	char *files[64], err[600];
	size_t n, len;
	int r;

	tu_audit_fx_close(f);
	f->opts.rotate_bytes = 1500;
	tu_audit_fx_open(f);
	for (int i = 0; i < 30; i++)
		assert_int_equal(audit_event(f->a, "reload", "a reload with some text to fill"), 0);
	n = log_files(f, files, 64);
	assert_true(n >= 3);
	for (size_t i = 0; i + 1 < n; i++) {
		char *d = tu_read(files[i], &len);
		assert_true(len <= 1500);
		free(d);
	}
	r = audit_verify_files((const char *const *)files, n, NULL, NULL, 0, err, sizeof(err), &sum);
	if (r != 0)
		fail_msg("%s", err);
	assert_int_equal(sum.records, 30);

	/* The newest file alone: its start is not seq 1 ... */
	r = audit_verify_files((const char *const *)&files[n - 1], 1, NULL, NULL, 0, err,
	                       sizeof(err), NULL);
	assert_int_equal(r, AUDIT_EBADLOG);
	assert_non_null(strstr(err, "not 1"));
	/* ... which --partial accepts. */
	assert_int_equal(audit_verify_files((const char *const *)&files[n - 1], 1, NULL, NULL,
	                                    AUDIT_VERIFY_PARTIAL, err, sizeof(err), NULL), 0);
	/* Files out of order do not verify. */
	char *swapped[2] = { files[1], files[0] };
	assert_int_equal(audit_verify_files((const char *const *)swapped, 2, NULL, NULL, 0, err,
	                                    sizeof(err), NULL), AUDIT_EBADLOG);

	/* Crash just after a rotation: the new file is empty; the chain resumes
	 * from the newest rotated file. */
	tu_audit_fx_close(f);
	tu_write(f->log, "", 0);
	tu_audit_fx_open(f);
	assert_true(f->rep.reexported > 0);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
	n = log_files(f, files, 64);
	r = audit_verify_files((const char *const *)files, n, NULL, NULL, 0, err, sizeof(err), &sum);
	if (r != 0)
		fail_msg("%s", err);
	assert_int_equal(sum.records, 31); /* + export-resync */
	for (size_t i = 0; i < n; i++)
		free(files[i]);
}

/*
 * A commit's lines are written to the file together: many records in one
 * transaction (more than the first export buffer holds) still rotate where
 * one write per line rotated, every file but the last stays within the
 * limit, and the files hold exactly the store's lines. A rolled-back
 * transaction's lines never reach the file, and the next commit's do.
 */
static void
test_rotation_within_transaction(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_verify_summary sum;
	char *files[256], err[600], detail[400];
	size_t n, len, total_lines = 0;
	uint64_t seq = 1;
	int r;

	tu_audit_fx_close(f);
	f->opts.rotate_bytes = 8000;
	tu_audit_fx_open(f);
	memset(detail, 'x', sizeof(detail) - 1);
	detail[sizeof(detail) - 1] = '\0';

	/* Rolled back: nothing of it may reach the file. */
	assert_int_equal(store_txn_begin(f->st), 0);
	for (int i = 0; i < 50; i++)
		assert_int_equal(audit_event(f->a, "rolled-back", detail), 0);
	assert_int_equal(store_txn_rollback(f->st), 0);
	assert_int_equal(audit_last_seq(f->a), 0);

	/* 300 records of ~560 bytes: ~170 kB in one commit, ~21 files. */
	assert_int_equal(store_txn_begin(f->st), 0);
	for (int i = 0; i < 300; i++)
		assert_int_equal(audit_event(f->a, "reload", detail), 0);
	assert_int_equal(store_txn_commit(f->st), 0);
	assert_int_equal(audit_event(f->a, "after", NULL), 0);
	assert_int_equal(audit_last_seq(f->a), 301);

	n = log_files(f, files, 256);
	assert_true(n >= 15);
	for (size_t i = 0; i < n; i++) {
		char *d = tu_read(files[i], &len);
		struct audit_record rec;
		size_t off, llen, lines = tu_count_lines(d, len);
		if (i + 1 < n)
			assert_true(len <= 8000);
		assert_true(lines > 0);
		/* Lines follow each other across files, and none was rolled back. */
		for (size_t k = 1; k <= lines; k++) {
			assert_int_equal(tu_line(d, len, k, &off, &llen), 0);
			assert_int_equal(audit_record_parse(d + off, llen, &rec, NULL, 0), 0);
			assert_int_equal(rec.seq, seq++);
			assert_string_not_equal(rec.event, "rolled-back");
		}
		total_lines += lines;
		free(d);
	}
	assert_int_equal(total_lines, 301);
	r = audit_verify_files((const char *const *)files, n, NULL, NULL, 0, err, sizeof(err), &sum);
	if (r != 0)
		fail_msg("%s", err);
	assert_int_equal(sum.records, 301);
	for (size_t i = 0; i < n; i++)
		free(files[i]);
}

/* The descriptor this process has open on @p path, or -1. */
static int
fd_of(const char *path)
{
	char link[64], target[256];
	for (int fd = 3; fd < 1024; fd++) {
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		ssize_t n = readlink(link, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strcmp(target, path) == 0)
			return fd;
	}
	return -1;
}

static void
test_export_failure_is_sticky(void **state)
{
	struct tu_audit_fx *f = *state;
	int fd, ro;

	assert_int_equal(audit_event(f->a, "start", NULL), 0);
	/* Swap the log's descriptor for a read-only one: the next export fails. */
	fd = fd_of(f->log);
	assert_true(fd >= 0);
	ro = open("/dev/null", O_RDONLY);
	assert_true(ro >= 0);
	assert_true(dup2(ro, fd) == fd);
	close(ro);

	/* The record is committed in the store; the failed export is reported
	 * and sticks to every later call (the daemon then exits). */
	int r = audit_event(f->a, "reload", NULL);
	assert_int_equal(r, AUDIT_EIO);
	assert_true(audit_error_is_fatal(r));
	assert_int_equal(audit_event(f->a, "reload", NULL), AUDIT_EIO);
	assert_int_equal(audit_log_flush(f->a), AUDIT_EIO);
	assert_int_equal(audit_request(f->a, &(struct audit_request){ .caller = CALLER,
	                 .op = "issue", .rule = "r" }, NULL), AUDIT_EIO);
	assert_int_equal(audit_last_seq(f->a), 2);

	/* After a restart the file catches up from the store. */
	tu_audit_fx_close(f);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.reexported, 1);
	file_matches_store(f);
	verify_ok(f, NULL, 3);
}

static void
test_no_file_and_strerror(void **state)
{
	(void)state;
	char dir[64], db[128];
	store_t *st = NULL;
	audit_log_t *a = NULL;

	tu_tmpdir(dir);
	snprintf(db, sizeof(db), "%s/s.db", dir);
	assert_int_equal(store_open(&st, db, NULL), 0);
	assert_int_equal(audit_log_open(&a, st, NULL, NULL), 0);
	assert_int_equal(audit_event(a, "start", NULL), 0);
	assert_int_equal(audit_log_flush(a), 0);
	assert_int_equal(audit_last_seq(a), 1);
	audit_log_close(a);
	/* One log per store: the hooks are gone after close. */
	assert_int_equal(store_meta_set(st, "x", "y", 1), 0);
	store_close(st);
	tu_rmdir(dir);

	for (int e = 0; e >= AUDIT_ESTALE; e--)
		assert_string_not_equal(audit_strerror(e), "unknown audit error");
	assert_true(audit_error_is_fatal(AUDIT_EFSYNC));
	assert_false(audit_error_is_fatal(AUDIT_EINVAL));
	audit_log_close(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_intent_result_one_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_abandoned_at_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reexport_after_crash, setup, teardown),
		cmocka_unit_test_setup_teardown(test_torn_line_cut, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_disagrees, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_within_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_export_failure_is_sticky, setup, teardown),
		cmocka_unit_test(test_no_file_and_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
