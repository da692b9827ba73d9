/*
 * Unit tests of the audit log's open intents without a table of them in the
 * store: kept in memory (a rollback undoes its opens and closes), found at
 * open in the records from "audit.open_from" on (which a checkpoint moves to
 * its lowest open intent), and, for a database written by an older version,
 * in its audit_open table, which is honoured once and emptied. Commits move
 * the mark too, every few thousand records.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/audit.h"
#include "signer/audit_record.h"
#include "signer/audit_verify.h"
#include "signer/store.h"
#include "tests/unit/test_audit_util.h"

static int
setup(void **state)
{
	struct tu_audit_fx *f = tu_audit_fx_new();

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
intent(struct tu_audit_fx *f)
{
	unsigned char h[32];
	struct audit_input in = { "rrset", h };
	struct audit_request rq = {
		.caller = CALLER, .op = "sign-rrset", .inputs = &in, .n_inputs = 1, .allow = 1,
		.rule = "extra-zones[asp.test.]",
		/* Markers the scan looks for, in free text: they must not count. */
		.detail = "a.asp.test. TXT \"type\":\"result\",\"ref\":1,\"decision\":\"allow\"",
	};
	uint64_t seq = 0;

	memset(h, 0x11, sizeof(h));
	assert_int_equal(audit_request(f->a, &rq, &seq), 0);
	assert_true(seq > 0);
	return seq;
}

static void
result(struct tu_audit_fx *f, uint64_t seq)
{
	struct audit_result rs = { .op = "sign-rrset", .detail = "\"type\":\"request\"" };

	assert_int_equal(audit_result(f->a, seq, &rs), 0);
}

/* The open intents are exactly @p want (ascending, @p n of them). */
static void
open_are(struct tu_audit_fx *f, const uint64_t *want, size_t n)
{
	uint64_t *v = NULL;
	size_t k = 0;

	assert_int_equal(audit_intents_open(f->a, &v, &k), 0);
	assert_int_equal(k, n);
	for (size_t i = 0; i < n; i++)
		assert_int_equal(v[i], want[i]);
	free(v);
}

static void
verify_ok(struct tu_audit_fx *f, uint64_t want_records)
{
	const char *files[] = { f->log };
	struct audit_verify_summary sum;
	char err[600];
	int r = audit_verify_files(files, 1, f->key, NULL, 0, err, sizeof(err), &sum);

	if (r != 0)
		fail_msg("verify: %s (%s)", err, audit_strerror(r));
	assert_int_equal(sum.records, want_records);
}

/* The "abandoned" records at the end of the file refer to @p refs, in order. */
static void
abandoned_are(struct tu_audit_fx *f, const uint64_t *refs, size_t n)
{
	struct audit_record rec;
	size_t len, off, llen, lines;
	char *data = tu_read(f->log, &len);

	lines = tu_count_lines(data, len);
	assert_true(lines >= n);
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(tu_line(data, len, lines - n + 1 + i, &off, &llen), 0);
		assert_int_equal(audit_record_parse(data + off, llen, &rec, NULL, 0), 0);
		assert_int_equal(rec.type, AUDIT_T_ABANDONED);
		assert_int_equal(rec.ref, refs[i]);
	}
	free(data);
}

static void
test_rollback_undoes(void **state)
{
	struct tu_audit_fx *f = *state;
	uint64_t i1, i2, i3;

	tu_audit_fx_open(f);
	i1 = intent(f);
	/* An intent opened and one closed in a transaction that rolls back. */
	assert_int_equal(store_txn_begin(f->st), 0);
	i2 = intent(f);
	result(f, i1);
	{
		const uint64_t w[] = { i2 };
		open_are(f, w, 1);
	}
	assert_int_equal(store_txn_rollback(f->st), 0);
	{
		const uint64_t w[] = { i1 };
		open_are(f, w, 1);
	}
	/* The rolled-back intent's seq is reused by the next record. */
	i3 = intent(f);
	assert_int_equal(i3, i2);
	/* Opened and closed in one transaction, then rolled back. */
	assert_int_equal(store_txn_begin(f->st), 0);
	result(f, i3);
	{
		uint64_t i4 = intent(f);
		result(f, i4);
	}
	assert_int_equal(store_txn_rollback(f->st), 0);
	{
		const uint64_t w[] = { i1, i3 };
		open_are(f, w, 2);
	}
	struct audit_result rs = { .op = "sign-rrset" };
	assert_int_equal(audit_result(f->a, i3 + 1, &rs), AUDIT_ENOINTENT);
	result(f, i1);
	result(f, i3);
	assert_int_equal(audit_result(f->a, i1, &rs), AUDIT_ENOINTENT);
	open_are(f, NULL, 0);
	verify_ok(f, 4);
}

static void
test_many_open_and_closed(void **state)
{
	struct tu_audit_fx *f = *state;
	uint64_t seqs[600], want[300];
	size_t n = 0;

	/* Enough to grow the set and compact it several times. */
	tu_audit_fx_open(f);
	for (size_t i = 0; i < 600; i++)
		seqs[i] = intent(f);
	for (size_t i = 0; i < 600; i++) {
		if (i % 2 == 0)
			result(f, seqs[i]);
		else
			want[n++] = seqs[i];
	}
	open_are(f, want, n);
	tu_audit_fx_close(f);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 300);
	open_are(f, NULL, 0);
	abandoned_are(f, want, n);
	verify_ok(f, 600 + 300 + 300);
}

static void
test_crash_after_checkpoint(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_role_count counts[] = { { "audit", 1 } };
	uint64_t i1, i2, i3, i5, from = 0;

	tu_audit_fx_open(f);
	i1 = intent(f);
	i2 = intent(f);
	result(f, i1);
	assert_int_equal(audit_checkpoint(f->a, counts, 1, tu_sign, f->key, NULL), 0);
	/* The next start looks from the lowest open intent on. */
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), 0);
	assert_int_equal(from, i2);
	result(f, i2);   /* closed after the checkpoint: must not be reported */
	i3 = intent(f);  /* open at the crash */
	i5 = intent(f);
	result(f, i5);
	tu_audit_fx_close(f);

	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 1);
	{
		const uint64_t w[] = { i3 };
		abandoned_are(f, w, 1);
	}
	open_are(f, NULL, 0);
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), 0);
	assert_int_equal(from, audit_last_seq(f->a) + 1);
	verify_ok(f, 9);

	/* Nothing is left for the next start. */
	tu_audit_fx_close(f);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 0);
	assert_int_equal(audit_last_seq(f->a), 9);

	/* A checkpoint with nothing open moves the mark past itself. */
	assert_int_equal(audit_checkpoint(f->a, counts, 1, tu_sign, f->key, NULL), 0);
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), 0);
	assert_int_equal(from, 11);
}

/* @p pairs intents with their results, 100 pairs per transaction. */
static void
pairs(struct tu_audit_fx *f, size_t n)
{
	for (size_t i = 0; i < n; i += 100) {
		assert_int_equal(store_txn_begin(f->st), 0);
		for (size_t j = i; j < n && j < i + 100; j++)
			result(f, intent(f));
		assert_int_equal(store_txn_commit(f->st), 0);
	}
}

static void
test_mark_moves_between_checkpoints(void **state)
{
	struct tu_audit_fx *f = *state;
	uint64_t i0, ix, from = 0;

	/* Without checkpoints the commits move the mark every few thousand
	 * records, to the lowest intent still open. */
	tu_audit_fx_open(f);
	i0 = intent(f);
	pairs(f, 2100);
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), 0);
	assert_int_equal(from, i0);
	result(f, i0);
	pairs(f, 2100);
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), 0);
	assert_true(from > 8000);
	assert_true(from <= audit_last_seq(f->a) + 1);
	/* What is open after the mark is still found. */
	ix = intent(f);
	pairs(f, 10);
	tu_audit_fx_close(f);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 1);
	{
		const uint64_t w[] = { ix };
		abandoned_are(f, w, 1);
	}
	verify_ok(f, audit_last_seq(f->a));
}

/* A record line as an older daemon wrote it, stored with its seq. */
static void
old_record(store_t *st, struct audit_record *r, uint64_t seq, char prev[65])
{
	char line[AUDIT_LINE_MAX + 1];
	size_t len;

	r->seq = seq;
	memcpy(r->prev, prev, 65);
	audit_time_now(r->time);
	assert_int_equal(audit_record_format(r, 0, line, sizeof(line), &len), 0);
	assert_int_equal(store_audit_append(st, seq, line, len), 0);
	audit_line_hash(line, len, prev);
}

static void
test_old_database_table(void **state)
{
	struct tu_audit_fx *f = *state;
	struct audit_record rq, rs;
	char prev[65];
	uint64_t *v = NULL, from = 0;
	size_t n = 0;

	/* An older version's database: intents 1 and 2, 2's result, and its
	 * table holding intent 1, the one left open; no "audit.open_from". */
	memset(prev, '0', 64);
	prev[64] = '\0';
	memset(&rq, 0, sizeof(rq));
	rq.type = AUDIT_T_REQUEST;
	snprintf(rq.op, sizeof(rq.op), "issue");
	rq.allow = 1;
	snprintf(rq.rule, sizeof(rq.rule), "callers.frontend.issue");
	memset(&rs, 0, sizeof(rs));
	rs.type = AUDIT_T_RESULT;
	snprintf(rs.op, sizeof(rs.op), "issue");
	rs.ref = 2;
	assert_int_equal(store_open(&f->st, f->db, NULL), 0);
	assert_int_equal(store_txn_begin(f->st), 0);
	old_record(f->st, &rq, 1, prev);
	assert_int_equal(store_audit_intent_open(f->st, 1), 0);
	old_record(f->st, &rq, 2, prev);
	old_record(f->st, &rs, 3, prev);
	assert_int_equal(store_txn_commit(f->st), 0);
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), STORE_ENOTFOUND);

	assert_int_equal(audit_log_open(&f->a, f->st, &f->opts, &f->rep), 0);
	assert_int_equal(f->rep.abandoned, 1);
	assert_int_equal(f->rep.reexported, 3);
	{
		const uint64_t w[] = { 1 };
		abandoned_are(f, w, 1);
	}
	/* The table is emptied and the mark set past the new records. */
	assert_int_equal(store_audit_intents_open(f->st, &v, &n), 0);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), 0);
	assert_int_equal(from, audit_last_seq(f->a) + 1);
	verify_ok(f, audit_last_seq(f->a));
	tu_audit_fx_close(f);

	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 0);
	assert_int_equal(f->rep.reexported, 0);
}

static void
test_fresh_database_mark(void **state)
{
	struct tu_audit_fx *f = *state;
	uint64_t from = 0;

	/* The first open of an empty database sets the mark (nothing to scan). */
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 0);
	assert_int_equal(store_meta_get_u64(f->st, "audit.open_from", &from), 0);
	assert_int_equal(from, 1);
	assert_int_equal(audit_last_seq(f->a), 0);
	intent(f);
	tu_audit_fx_close(f);
	tu_audit_fx_open(f);
	assert_int_equal(f->rep.abandoned, 1);
	{
		const uint64_t w[] = { 1 };
		abandoned_are(f, w, 1);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rollback_undoes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_open_and_closed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_after_checkpoint, setup, teardown),
		cmocka_unit_test_setup_teardown(test_mark_moves_between_checkpoints, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_database_table, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_database_mark, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
