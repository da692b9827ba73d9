/*
 * zonepub: group commit of zone changes, persistence and restart, failures
 * that leave the served zone and the store as they were, the scheduler
 * (expiry, re-signing), the zone file and bulk import. A real store in a
 * temporary directory, the real commit pipeline, an asynchronous in-memory
 * signer and a libuv loop (test_zonepub_fx.c).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signer/dns_err.h"
#include "test_zonepub_fx.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

static struct zone_diff *journal_diff(struct fx *fx, uint32_t from)
{
	struct dns_journal j = zonepub_journal(fx->zp);
	struct zone_diff *d = NULL;

	assert_int_equal(j.diff_from(j.ctx, from, &d), 0);
	return d;
}

static bool journal_has(struct fx *fx, uint32_t from)
{
	struct dns_journal j = zonepub_journal(fx->zp);
	struct zone_diff *d = NULL;
	int r = j.diff_from(j.ctx, from, &d);

	zone_diff_free(d);
	assert_true(r == 0 || r == DNS_ENOENT);
	return r == 0;
}

/* A fresh store gets the apex, signed once, as serial 1. */
static void test_apex(void **state)
{
	struct fx *fx = *state;
	struct zonepub_status st;
	ldns_rr_list *l = NULL;

	fx_start(fx);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), 1);
	assert_int_equal(fx->published, 1);
	assert_int_equal(fx->sg.batches, 1);
	assert_int_equal(fx_store_serial(fx), 1);
	assert_int_equal(zone_name_rrs(zonepub_zone(fx->zp), "iotregistry.test.", &l), 0);
	/* SOA, NS, DNSKEY x2, CERT, NSEC and their RRSIGs. */
	assert_true(ldns_rr_list_rr_count(l) >= 11);
	ldns_rr_list_deep_free(l);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.serial, 1);
	assert_false(st.margin_failure);
	assert_false(st.expired);
	assert_int_equal(st.last_error, 0);
}

/* Requests that arrive together: one serial, one SOA signature, one batch,
 * one journal entry; and the listener never sees the serial before commit. */
static void test_group_one_serial(void **state)
{
	struct fx *fx = *state;
	enum { N = 24 };
	struct treq t[N];
	struct zone_diff *d;
	size_t batches, rows;
	uint32_t s0;

	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	batches = fx->sg.batches;
	rows = fx_store_journal_rows(fx);
	for (unsigned i = 0; i < N; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	/* Nothing happens inside submit. */
	for (unsigned i = 0; i < N; i++)
		assert_false(t[i].done);
	fx_run_idle(fx);
	for (unsigned i = 0; i < N; i++) {
		assert_true(t[i].done);
		assert_int_equal(t[i].status, 0);
		assert_int_equal(t[i].serial, s0 + 1);
		assert_int_equal(t[i].store_runs, 1);
		assert_int_equal(t[i].served_at_store, s0);
		assert_true(fx_has_device(fx, i + 1, 1));
	}
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0 + 1);
	assert_int_equal(fx->sg.batches, batches + 1);
	assert_int_equal(fx_store_journal_rows(fx), rows + 1);
	assert_int_equal(fx_store_serial(fx), s0 + 1);
	d = journal_diff(fx, s0);
	assert_int_equal(zone_diff_serial_to(d), s0 + 1);
	assert_int_equal(fx_diff_rrsigs(d, LDNS_RR_TYPE_SOA), 1);
	assert_int_equal(zone_diff_signatures(d), fx->sg.last);
	/* Each device: its CERT and its NSEC; plus the SOA and the apex NSEC. */
	assert_int_equal(fx->sg.last, 2 * N + 2);
	zone_diff_free(d);
	assert_false(journal_has(fx, s0 + 1));
}

/* Groups are bounded; what arrives while one is signed forms the next. */
static void test_group_bound(void **state)
{
	struct fx *fx = *state;
	enum { N = 10 };
	struct treq t[N];
	uint32_t s0;

	fx->opts.group_max = 4;
	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	for (unsigned i = 0; i < N; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_run_idle(fx);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(t[i].status, 0);
		assert_int_equal(t[i].serial, s0 + 1 + i / 4);
	}
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0 + 3);
	assert_true(journal_has(fx, s0));
	assert_true(journal_has(fx, s0 + 1));
	assert_true(journal_has(fx, s0 + 2));
}

/* A refused request does not spoil its group; a REISSUE is all or nothing. */
static void test_refusals_in_group(void **state)
{
	struct fx *fx = *state;
	struct treq a, dup, re, gone, ok, pre;
	uint32_t s0;

	fx_start(fx);
	fx_issue(fx, &pre, 50, 1, 0);
	zonepub_submit(fx->zp, &pre.rq);
	fx_run_idle(fx);
	assert_int_equal(pre.status, 0);
	s0 = zone_serial(zonepub_zone(fx->zp));

	fx_issue(fx, &a, 1, 1, 0);
	fx_issue(fx, &dup, 1, 1, 0);
	/* Its removal would work, its addition collides with device 50: neither. */
	fx_reissue(fx, &re, 1, 1, 50, 1);
	fx_revoke(fx, &gone, 7, 3);
	fx_issue(fx, &ok, 2, 1, 0);
	zonepub_submit(fx->zp, &a.rq);
	zonepub_submit(fx->zp, &dup.rq);
	zonepub_submit(fx->zp, &re.rq);
	zonepub_submit(fx->zp, &gone.rq);
	zonepub_submit(fx->zp, &ok.rq);
	fx_run_idle(fx);
	assert_int_equal(a.status, 0);
	assert_int_equal(dup.status, ZONEPUB_EEXIST);
	assert_int_equal(re.status, ZONEPUB_EEXIST);
	assert_int_equal(gone.status, ZONEPUB_ENOENT);
	assert_int_equal(ok.status, 0);
	assert_int_equal(a.serial, s0 + 1);
	assert_int_equal(ok.serial, s0 + 1);
	assert_int_equal(dup.store_runs + re.store_runs + gone.store_runs, 0);
	assert_true(fx_has_device(fx, 1, 1));
	assert_true(fx_has_device(fx, 50, 1));
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0 + 1);

	/* A REISSUE that can happen: old index gone, new one there, one serial. */
	fx_reissue(fx, &re, 1, 1, 1, 2);
	zonepub_submit(fx->zp, &re.rq);
	fx_run_idle(fx);
	assert_int_equal(re.status, 0);
	assert_int_equal(re.serial, s0 + 2);
	assert_false(fx_has_device(fx, 1, 1));
	assert_true(fx_has_device(fx, 1, 2));
}

/* A revocation re-signs the predecessor's NSEC and the SOA: 2 signatures. */
static void test_revoke_two_signatures(void **state)
{
	struct fx *fx = *state;
	struct treq t[3], rv;
	struct zone_diff *d;
	uint32_t s0;

	fx_start(fx);
	for (unsigned i = 0; i < 3; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_run_idle(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	fx_revoke(fx, &rv, 2, 1);
	zonepub_submit(fx->zp, &rv.rq);
	fx_run_idle(fx);
	assert_int_equal(rv.status, 0);
	assert_int_equal(rv.serial, s0 + 1);
	assert_int_equal(fx->sg.last, 2);
	assert_false(fx_has_device(fx, 2, 1));
	assert_true(fx_has_device(fx, 1, 1));
	d = journal_diff(fx, s0);
	assert_int_equal(zone_diff_signatures(d), 2);
	assert_int_equal(fx_diff_rrsigs(d, LDNS_RR_TYPE_SOA), 1);
	assert_int_equal(fx_diff_rrsigs(d, LDNS_RR_TYPE_NSEC), 1);
	zone_diff_free(d);
}

/* Close and reopen: same serial, byte-identical zone, no signature made. */
static void test_restart(void **state)
{
	struct fx *fx = *state;
	struct treq t[5], rr, rv, after;
	char *before, *again;
	uint32_t s;
	size_t sigs;

	fx_start(fx);
	for (unsigned i = 0; i < 5; i++) {
		fx_issue(fx, &t[i], i + 1, 1, fx->now + 86400);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_rr(fx, &rr, true, "_asp.iotregistry.test. 600 IN TXT \"hello\"");
	zonepub_submit(fx->zp, &rr.rq);
	fx_run_idle(fx);
	fx_revoke(fx, &rv, 3, 1);
	zonepub_submit(fx->zp, &rv.rq);
	fx_run_idle(fx);
	assert_int_equal(rv.status, 0);
	s = zone_serial(zonepub_zone(fx->zp));
	before = tzs_zone_text(zonepub_zone(fx->zp));
	fx_stop(fx);
	fx_treq_clear(&rr);

	sigs = fx->sg.sigs;
	fx_start(fx);
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s);
	again = tzs_zone_text(zonepub_zone(fx->zp));
	assert_string_equal(before, again);
	assert_int_equal(fx->sg.sigs, sigs);
	/* The journal came back too: IXFR from the version before. */
	assert_true(journal_has(fx, s - 1));
	/* And the working zone goes on from there. */
	fx_issue(fx, &after, 9, 1, 0);
	zonepub_submit(fx->zp, &after.rq);
	fx_run_idle(fx);
	assert_int_equal(after.status, 0);
	assert_int_equal(after.serial, s + 1);
	free(before);
	free(again);
}

/* A failing signer: each request gets the error, the zone, the journal the
 * listener reads and the store keep the previous serial; then all is well. */
static void test_sign_failure(void **state)
{
	struct fx *fx = *state;
	struct treq a, b, c;
	struct zonepub_status st;
	char *before, *after;
	size_t rows;
	uint32_t s0;

	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	rows = fx_store_journal_rows(fx);
	before = tzs_zone_text(zonepub_zone(fx->zp));
	fx->sg.fail = 1;
	fx_issue(fx, &a, 1, 1, 0);
	fx_issue(fx, &b, 2, 1, 0);
	zonepub_submit(fx->zp, &a.rq);
	zonepub_submit(fx->zp, &b.rq);
	fx_run_idle(fx);
	assert_int_equal(a.status, ZONEPUB_ESIGN);
	assert_int_equal(b.status, ZONEPUB_ESIGN);
	assert_int_equal(a.serial, s0);
	assert_int_equal(a.store_runs + b.store_runs, 0);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0);
	after = tzs_zone_text(zonepub_zone(fx->zp));
	assert_string_equal(before, after);
	assert_false(journal_has(fx, s0));
	assert_int_equal(fx_store_journal_rows(fx), rows);
	assert_int_equal(fx_store_serial(fx), s0);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.last_error, ZONEPUB_ESIGN);
	assert_int_equal(st.failures, 1);
	assert_int_equal(st.serial, s0);

	fx_issue(fx, &c, 1, 1, 0);
	zonepub_submit(fx->zp, &c.rq);
	fx_run_idle(fx);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.serial, s0 + 1);
	assert_int_equal(fx_store_serial(fx), s0 + 1);
	free(before);
	free(after);
}

/* A store transaction that fails: the whole group fails, nothing changes,
 * the working zone is rebuilt and the next request gets the next serial. */
static void test_store_failure(void **state)
{
	struct fx *fx = *state;
	struct treq a, b, c;
	char *before, *after;
	uint32_t s0;

	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	before = tzs_zone_text(zonepub_zone(fx->zp));
	fx_issue(fx, &a, 1, 1, 0);
	fx_issue(fx, &b, 2, 1, 0);
	b.store_ret = COMMIT_ERR_STORAGE;
	zonepub_submit(fx->zp, &a.rq);
	zonepub_submit(fx->zp, &b.rq);
	fx_run_idle(fx);
	assert_int_equal(a.status, ZONEPUB_ESTORE);
	assert_int_equal(b.status, ZONEPUB_ESTORE);
	assert_int_equal(a.undone, 1);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0);
	after = tzs_zone_text(zonepub_zone(fx->zp));
	assert_string_equal(before, after);
	assert_false(journal_has(fx, s0));
	assert_int_equal(fx_store_serial(fx), s0);
	assert_int_equal(fx->fatal, 0);

	fx_issue(fx, &c, 1, 1, 0);
	zonepub_submit(fx->zp, &c.rq);
	fx_run_idle(fx);
	assert_int_equal(c.status, 0);
	assert_int_equal(c.serial, s0 + 1);
	assert_false(fx_has_device(fx, 2, 1));

	/* What is on disk is what is served. */
	free(after);
	after = tzs_zone_text(zonepub_zone(fx->zp));
	fx_stop(fx);
	fx_start(fx);
	free(before);
	before = tzs_zone_text(zonepub_zone(fx->zp));
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/*
 * Pipelined groups: with groups of one, the second version is made on top of
 * the first while the first commits. When the first commit fails, the
 * second must not reach the store either (it would leave a hole in the
 * chain): both fail, served zone and store stay at the same serial, and
 * after the working zone is rebuilt the next request commits on top.
 */
static void test_pipelined_failure(void **state)
{
	struct fx *fx = *state;
	struct treq a, b, c, d;
	char *before, *after;
	uint32_t s0, s1;

	fx->opts.group_max = 1;
	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	fx_issue(fx, &a, 1, 1, 0);
	fx_issue(fx, &b, 2, 1, 0);
	fx_issue(fx, &c, 3, 1, 0);
	a.store_ret = COMMIT_ERR_STORAGE;
	zonepub_submit(fx->zp, &a.rq);
	zonepub_submit(fx->zp, &b.rq);
	zonepub_submit(fx->zp, &c.rq);
	fx_run_idle(fx);
	assert_int_equal(a.status, ZONEPUB_ESTORE);
	assert_false(fx_has_device(fx, 1, 1));
	/*
	 * b and c were made on top of a before a's commit came back (and fail
	 * with it), or after the rebuild (and commit, in order, on top of the
	 * served zone): which depends on the threads' timing. Either way no
	 * version may have been stored without the one before it.
	 */
	s1 = s0;
	if (b.status == 0) {
		assert_int_equal(b.serial, ++s1);
		assert_true(fx_has_device(fx, 2, 1));
	} else {
		assert_int_equal(b.status, ZONEPUB_ESTORE);
		assert_false(fx_has_device(fx, 2, 1));
	}
	if (c.status == 0) {
		assert_int_equal(c.serial, ++s1);
		assert_true(fx_has_device(fx, 3, 1));
	} else {
		assert_int_equal(c.status, ZONEPUB_ESTORE);
		assert_false(fx_has_device(fx, 3, 1));
	}
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s1);
	assert_int_equal(fx_store_serial(fx), s1);
	assert_int_equal(fx->fatal, 0);

	fx_issue(fx, &d, 4, 1, 0);
	zonepub_submit(fx->zp, &d.rq);
	fx_run_idle(fx);
	assert_int_equal(d.status, 0);
	assert_int_equal(d.serial, s1 + 1);
	assert_int_equal(fx_store_serial(fx), s1 + 1);

	/* What is on disk is what is served. */
	after = tzs_zone_text(zonepub_zone(fx->zp));
	fx_stop(fx);
	fx_start(fx);
	before = tzs_zone_text(zonepub_zone(fx->zp));
	assert_string_equal(before, after);
	free(before);
	free(after);
}

/* Pipelined groups that all commit: one serial each, in order, each in the
 * journal, and the store at the last. */
static void test_pipelined_groups(void **state)
{
	struct fx *fx = *state;
	enum { N = 6 };
	struct treq t[N];
	uint32_t s0;

	fx->opts.group_max = 1;
	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	for (unsigned i = 0; i < N; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_run_idle(fx);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(t[i].status, 0);
		assert_int_equal(t[i].serial, s0 + 1 + i);
		assert_true(journal_has(fx, s0 + i));
		assert_true(fx_has_device(fx, i + 1, 1));
	}
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0 + N);
	assert_int_equal(fx_store_serial(fx), s0 + N);
}

/* Signatures that do not verify fail the self-check: previous serial kept. */
static void test_check_failure(void **state)
{
	struct fx *fx = *state;
	struct treq a, b;
	struct zonepub_status st;
	uint32_t s0;

	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	fx->sg.garbage = 1;
	fx_issue(fx, &a, 1, 1, 0);
	zonepub_submit(fx->zp, &a.rq);
	fx_run_idle(fx);
	assert_int_equal(a.status, ZONEPUB_ECHECK);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0);
	assert_false(fx_has_device(fx, 1, 1));
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.check_failures, 1);
	assert_int_equal(st.last_error, ZONEPUB_ECHECK);
	fx_issue(fx, &b, 1, 1, 0);
	zonepub_submit(fx->zp, &b.rq);
	fx_run_idle(fx);
	assert_int_equal(b.status, 0);
	assert_int_equal(b.serial, s0 + 1);
}

/* Records of an expired certificate go by themselves, also after a restart. */
static void test_expiry(void **state)
{
	struct fx *fx = *state;
	struct treq a, b, c;
	struct zonepub_status st;
	int64_t t0;
	uint32_t s;

	fx_start(fx);
	t0 = fx->now;
	fx_issue(fx, &a, 1, 1, t0 + 100);
	fx_issue(fx, &b, 2, 1, t0 + 1000);
	fx_issue(fx, &c, 3, 1, 0);
	zonepub_submit(fx->zp, &a.rq);
	zonepub_submit(fx->zp, &b.rq);
	zonepub_submit(fx->zp, &c.rq);
	fx_run_idle(fx);
	s = zone_serial(zonepub_zone(fx->zp));

	fx->now = t0 + 99;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_true(fx_has_device(fx, 1, 1));
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s);

	fx->now = t0 + 101;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_false(fx_has_device(fx, 1, 1));
	assert_true(fx_has_device(fx, 2, 1));
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s + 1);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.expired_removed, 1);

	/* The expiry index is in the store. */
	fx_stop(fx);
	fx_start(fx);
	fx->now = t0 + 1001;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_false(fx_has_device(fx, 2, 1));
	assert_true(fx_has_device(fx, 3, 1));
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s + 2);
}

/* A revoked device's expiry finds nothing to remove: no new serial. */
static void test_expiry_after_revoke(void **state)
{
	struct fx *fx = *state;
	struct treq a, rv;
	uint32_t s;

	fx_start(fx);
	fx_issue(fx, &a, 1, 1, fx->now + 100);
	zonepub_submit(fx->zp, &a.rq);
	fx_run_idle(fx);
	fx_revoke(fx, &rv, 1, 1);
	zonepub_submit(fx->zp, &rv.rq);
	fx_run_idle(fx);
	assert_int_equal(rv.status, 0);
	s = zone_serial(zonepub_zone(fx->zp));
	fx->now += 200;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s);
}

/* The RRSIG of an RRset of the served zone, as text ("" when none). */
static char *rrsig_text(struct fx *fx, const char *owner, uint16_t type)
{
	ldns_rr_list *l = NULL;
	char *s = NULL;

	assert_int_equal(zone_name_rrs(zonepub_zone(fx->zp), owner, &l), 0);
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG &&
		    ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) == type)
			s = ldns_rr2str(rr);
	}
	ldns_rr_list_deep_free(l);
	return s ? s : strdup("");
}

/* Issues devices 1..n (one index each) in one round and waits for the zone. */
static void issue_devices(struct fx *fx, struct treq *t, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_run_idle(fx);
}

/* The CERT RRSIG of each of devices 1..n, as text, into out[] (to free). */
static void device_cert_rrsigs(struct fx *fx, unsigned n, char **out)
{
	char owner[256], id[64];

	for (unsigned i = 0; i < n; i++) {
		fx_device_id(i + 1, id, sizeof(id));
		assert_int_equal(zone_device_owner(zonepub_zone(fx->zp), id, 1, owner, sizeof(owner)), 0);
		out[i] = rrsig_text(fx, owner, LDNS_RR_TYPE_CERT);
	}
}

/* Each of devices 1..n (n <= 16) has a CERT RRSIG other than before[i];
 * frees before[]. */
static void assert_cert_rrsigs_renewed(struct fx *fx, unsigned n, char **before)
{
	char *now[16];

	assert_true(n <= 16);
	device_cert_rrsigs(fx, n, now);
	for (unsigned i = 0; i < n; i++) {
		assert_string_not_equal(now[i], before[i]);
		free(now[i]);
		free(before[i]);
	}
}

/* The re-sign tick renews only what entered its refresh window, in bounded
 * steps, and STATUS reports a signature left in its margin. */
static void test_resign(void **state)
{
	struct fx *fx = *state;
	enum { N = 6 };
	struct treq t[N];
	struct zonepub_status st;
	char *dnskey0, *dnskey1, *cert0[N];
	size_t batches;
	int64_t t0;
	uint32_t s;

	fx->opts.resign_budget = 4;
	fx_start(fx);
	t0 = fx->now;
	issue_devices(fx, t, N);
	device_cert_rrsigs(fx, N, cert0);
	dnskey0 = rrsig_text(fx, "iotregistry.test.", LDNS_RR_TYPE_DNSKEY);

	/* Early: nothing is due, no signature is made. */
	fx->now = t0 + 600;
	batches = fx->sg.batches;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_int_equal(fx->sg.batches, batches);

	/* Past the device records' refresh point (6 h validity, 3 h refresh). */
	fx->now = t0 + 3 * 3600 + 600;
	zonepub_status_get(fx->zp, &st);
	assert_true(st.margin_failure);
	s = zone_serial(zonepub_zone(fx->zp));
	for (int k = 0; k < 20; k++) {
		zonepub_status_get(fx->zp, &st);
		if (!st.margin_failure && st.next_due > fx->now)
			break;
		batches = fx->sg.batches;
		fx->now += 10;
		zonepub_tick(fx->zp);
		fx_run_idle(fx);
		assert_int_equal(fx->sg.batches, batches + 1);
		/* At most the budget, plus the SOA. */
		assert_true(fx->sg.last <= 4 + 1);
		assert_true(fx->sg.last >= 2);
	}
	zonepub_status_get(fx->zp, &st);
	assert_false(st.margin_failure);
	assert_true(zone_serial(zonepub_zone(fx->zp)) > s + 1);  /* took several ticks */
	assert_cert_rrsigs_renewed(fx, N, cert0);
	dnskey1 = rrsig_text(fx, "iotregistry.test.", LDNS_RR_TYPE_DNSKEY);
	assert_string_equal(dnskey0, dnskey1);
	free(dnskey0);
	free(dnskey1);
}

/*
 * The wall clock steps back (an operator, NTP) in the middle of re-signing:
 * the tick after the step goes on re-signing at once instead of waiting for
 * the clock to pass the last re-sign's time again (an hour later) while the
 * device signatures made before the forward step run out.
 */
static void test_resign_after_clock_steps_back(void **state)
{
	struct fx *fx = *state;
	enum { N = 6 };
	struct treq t[N];
	struct zonepub_status st;
	char *cert0[N];
	size_t batches;
	int64_t t0;
	int ticks = 0;

	fx->opts.resign_budget = 2;
	fx_start(fx);
	t0 = fx->now;
	issue_devices(fx, t, N);
	device_cert_rrsigs(fx, N, cert0);
	/* A day forward: every device signature (6 h) has run out; one tick
	 * re-signs the budget's worth. */
	fx->now = t0 + 86400;
	batches = fx->sg.batches;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_int_equal(fx->sg.batches, batches + 1);
	/* An hour back: the next tick re-signs again, and the rest follow. */
	fx->now = t0 + 86400 - 3600;
	batches = fx->sg.batches;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_int_equal(fx->sg.batches, batches + 1);
	for (;;) {
		zonepub_status_get(fx->zp, &st);
		if (!st.margin_failure && st.next_due > fx->now)
			break;
		assert_true(++ticks < 10);
		fx->now += 10;
		zonepub_tick(fx->zp);
		fx_run_idle(fx);
	}
	assert_cert_rrsigs_renewed(fx, N, cert0);
}

static void file_done(void *arg, int status, uint32_t serial)
{
	int *out = arg;

	out[0] = 1;
	out[1] = status;
	out[2] = (int)serial;
}

/* The zone file, on demand and every N seconds, passes ldns-verify-zone. */
static void test_zone_file(void **state)
{
	struct fx *fx = *state;
	struct treq t[4], rv;
	struct zonepub_status st;
	int res[3] = { 0, 0, 0 };
	char *text;

	fx->opts.zone_file = fx->zone_file;
	fx->opts.zone_file_interval = 60;
	fx_start(fx);
	for (unsigned i = 0; i < 4; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_run_idle(fx);
	assert_int_equal(zonepub_zone_file_write(fx->zp, file_done, res), 0);
	fx_run_idle(fx);
	assert_int_equal(res[0], 1);
	assert_int_equal(res[1], 0);
	assert_int_equal((uint32_t)res[2], zone_serial(zonepub_zone(fx->zp)));
	tzs_verify_zone_file(fx->zone_file);
	text = tzs_slurp(fx->zone_file);
	assert_non_null(text);
	assert_non_null(strstr(text, "CERT"));
	free(text);

	/* Periodic: after a change and the interval. */
	fx_revoke(fx, &rv, 2, 1);
	zonepub_submit(fx->zp, &rv.rq);
	fx_run_idle(fx);
	fx->now += 61;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.zone_file_serial, zone_serial(zonepub_zone(fx->zp)));
	assert_int_equal(st.zone_file_time, fx->now);
	tzs_verify_zone_file(fx->zone_file);
}

static void bulk_done(struct zonepub_bulk *b, int status, uint32_t serial)
{
	int *res = (int *)((char *)b + sizeof(*b));

	res[0] = 1;
	res[1] = status;
	res[2] = (int)serial;
}

/* Bulk import: one pass, one serial, persisted, journal reset. */
static void test_bulk(void **state)
{
	struct fx *fx = *state;
	enum { N = 300 };
	struct {
		struct zonepub_bulk b;
		int res[3];
	} bk;
	struct zone_device *devs = calloc(N, sizeof(*devs));
	char (*ids)[64] = calloc(N, 64);
	uint8_t (*hash)[32] = calloc(N, 32);
	int64_t *na = calloc(N, sizeof(*na));
	char *before, *after;
	uint32_t s0;

	assert_non_null(devs);
	assert_non_null(ids);
	assert_non_null(hash);
	assert_non_null(na);
	fx->opts.zone_file = fx->zone_file;
	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	for (unsigned i = 0; i < N; i++) {
		fx_device_id(1000 + i, ids[i], 64);
		for (int k = 0; k < 32; k++)
			hash[i][k] = (uint8_t)(i + k);
		devs[i].id = ids[i];
		devs[i].index = 1;
		devs[i].styles = ZONE_STYLE_SEED;
		devs[i].cert_sha256 = hash[i];
		na[i] = i == 0 ? fx->now + 50 : 0;
	}
	memset(&bk, 0, sizeof(bk));
	bk.b.devs = devs;
	bk.b.n = N;
	bk.b.not_after = na;
	bk.b.batch = 128;
	bk.b.done = bulk_done;
	zonepub_bulk_import(fx->zp, &bk.b);
	fx_run_idle(fx);
	assert_int_equal(bk.res[0], 1);
	assert_int_equal(bk.res[1], 0);
	assert_int_equal((uint32_t)bk.res[2], s0 + 1);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0 + 1);
	assert_true(zone_names(zonepub_zone(fx->zp)) >= N + 1);
	assert_true(fx->sg.batches >= 1 + (2 * N) / 128);
	assert_false(journal_has(fx, s0));
	assert_int_equal(fx_store_journal_rows(fx), 0);
	before = tzs_zone_text(zonepub_zone(fx->zp));
	{
		int res[3] = { 0, 0, 0 };
		assert_int_equal(zonepub_zone_file_write(fx->zp, file_done, res), 0);
		fx_run_idle(fx);
		assert_int_equal(res[1], 0);
		tzs_verify_zone_file(fx->zone_file);
	}
	fx_stop(fx);
	fx_start(fx);
	after = tzs_zone_text(zonepub_zone(fx->zp));
	assert_string_equal(before, after);
	/* Imported devices expire like the others. */
	fx->now += 51;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_false(fx_has_device(fx, 1000, 1));
	assert_true(fx_has_device(fx, 1001, 1));
	free(before);
	free(after);
	free(devs);
	free(ids);
	free(hash);
	free(na);
}

/* PUBLISH and UNPUBLISH of other records; the device namespace is refused. */
static void test_publish(void **state)
{
	struct fx *fx = *state;
	struct treq add, dev, del;
	ldns_rr_list *l = NULL;

	fx_start(fx);
	fx_rr(fx, &add, true, "_asp.iotregistry.test. 600 IN TXT \"hello\"");
	fx_rr(fx, &dev, true, "1.8912230200031010008f.iotregistry.test. 600 IN TXT \"x\"");
	zonepub_submit(fx->zp, &add.rq);
	zonepub_submit(fx->zp, &dev.rq);
	fx_run_idle(fx);
	assert_int_equal(add.status, 0);
	assert_int_equal(dev.status, ZONEPUB_ERESERVED);
	assert_int_equal(zone_name_rrs(zonepub_zone(fx->zp), "_asp.iotregistry.test.", &l), 0);
	assert_true(ldns_rr_list_rr_count(l) > 0);
	ldns_rr_list_deep_free(l);
	fx_rr(fx, &del, false, "_asp.iotregistry.test. 600 IN TXT \"hello\"");
	zonepub_submit(fx->zp, &del.rq);
	fx_run_idle(fx);
	assert_int_equal(del.status, 0);
	assert_int_equal(zone_name_rrs(zonepub_zone(fx->zp), "_asp.iotregistry.test.", &l), 0);
	assert_int_equal(ldns_rr_list_rr_count(l), 0);
	ldns_rr_list_deep_free(l);
	fx_treq_clear(&add);
	fx_treq_clear(&dev);
	fx_treq_clear(&del);
}

/* A signer that answers inside its sign call, and many requests in a row:
 * every one is published, in groups no larger than group_max. */
static void test_sync_signer_many(void **state)
{
	struct fx *fx = *state;
	enum { N = 1500 };
	struct treq *t = calloc(N, sizeof(*t));
	struct zonepub_status st;
	uint32_t s0;

	assert_non_null(t);
	fx->sg.sync = true;
	fx->opts.group_max = 200;
	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	for (unsigned i = 0; i < N; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_run_idle(fx);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(t[i].status, 0);
		assert_int_equal(t[i].serial, s0 + 1 + i / 200);
	}
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.serial, s0 + (N + 199) / 200);
	assert_int_equal(st.changes, N);
	assert_true(st.names >= N + 1);
	assert_int_equal(zone_check(zonepub_zone(fx->zp), fx->now, true), 0);
	free(t);
}

static void test_opened(void *arg, int status)
{
	struct fx *fx = arg;

	fx->opened = true;
	fx->open_status = status;
}

/* Closing: requests still queued get ZONEPUB_ECLOSED, none is lost. */
static void test_close_queued(void **state)
{
	struct fx *fx = *state;
	struct treq a, b;

	fx_start(fx);
	fx_issue(fx, &a, 1, 1, 0);
	fx_issue(fx, &b, 2, 1, 0);
	zonepub_submit(fx->zp, &a.rq);
	zonepub_submit(fx->zp, &b.rq);
	fx_stop(fx);
	assert_true(a.done);
	assert_true(b.done);
	assert_int_equal(a.status, ZONEPUB_ECLOSED);
	assert_int_equal(b.status, ZONEPUB_ECLOSED);
}

/* Closing while a version is being signed lets it finish first. */
static void test_close_in_flight(void **state)
{
	struct fx *fx = *state;
	struct treq a;
	uint32_t s0;

	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	fx_issue(fx, &a, 1, 1, 0);
	fx->sg.hold = true;
	zonepub_submit(fx->zp, &a.rq);
	/* Run until the signer holds the batch. */
	while (!fx->sg.busy)
		uv_run(&fx->loop, UV_RUN_ONCE);
	fx_close_begin(fx);
	for (int i = 0; i < 5; i++)
		uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_false(fx->closed);
	assert_false(a.done);
	fx_signer_release(fx);
	fx_stop(fx);
	assert_true(a.done);
	assert_int_equal(a.status, 0);
	assert_int_equal(a.serial, s0 + 1);
	fx_start(fx);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s0 + 1);
	assert_true(fx_has_device(fx, 1, 1));
}

/* Stored rows that do not form the zone are refused at load. */
static void test_load_refuses_bad_rows(void **state)
{
	struct fx *fx = *state;
	struct zonepub *zp = NULL;
	store_t *st = NULL;

	fx_start(fx);
	fx_stop(fx);
	assert_int_equal(store_open(&st, fx->db, NULL), 0);
	assert_int_equal(store_zone_put(st, "\x05zzzzz", 6, "junk", 4), 0);
	fx->opts.params = &fx->params;
	assert_int_equal(zonepub_new(&fx->loop, &fx->opts, &zp), 0);
	assert_int_equal(zonepub_load(zp, st), ZONEPUB_EFORMAT);
	zonepub_close(zp, NULL, NULL);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	zonepub_free(zp);
	store_close(st);
}

/* zonepub_open(): the load goes through the running commit pipeline, and
 * requests submitted before it wait for it. */
static void test_open_through_pipeline(void **state)
{
	struct fx *fx = *state;
	struct treq a, b;
	struct store_open_opts ro = { STORE_OPEN_READONLY, NULL, 0 };
	char *before, *after;
	uint32_t s;

	fx->use_open = true;
	fx_start(fx);
	fx_issue(fx, &a, 1, 1, fx->now + 10);
	zonepub_submit(fx->zp, &a.rq);
	fx_run_idle(fx);
	assert_int_equal(a.status, 0);
	s = zone_serial(zonepub_zone(fx->zp));
	before = tzs_zone_text(zonepub_zone(fx->zp));
	fx_stop(fx);

	/* By hand, with a request waiting before the load. */
	assert_int_equal(store_open(&fx->st, fx->db, NULL), 0);
	assert_int_equal(zonepub_new(&fx->loop, &fx->opts, &fx->zp), 0);
	assert_int_equal(commit_new(&fx->loop, fx->st, fx, NULL, NULL, &fx->commit), 0);
	fx_issue(fx, &b, 2, 1, 0);
	zonepub_submit(fx->zp, &b.rq);
	fx->opened = false;
	assert_int_equal(zonepub_open(fx->zp, fx->st, fx->commit, test_opened, fx), 0);
	assert_int_equal(zonepub_open(fx->zp, fx->st, fx->commit, test_opened, fx),
			 ZONEPUB_ESTATE);
	fx_run_idle(fx);
	assert_true(fx->opened);
	assert_int_equal(fx->open_status, 0);
	assert_int_equal(b.status, 0);
	assert_int_equal(b.serial, s + 1);
	assert_int_equal(store_open(&fx->ro, fx->db, &ro), 0);
	/* The expiry index came back through the pipeline too. */
	fx->now += 11;
	zonepub_tick(fx->zp);
	fx_run_idle(fx);
	assert_false(fx_has_device(fx, 1, 1));
	assert_true(fx_has_device(fx, 2, 1));
	after = tzs_zone_text(zonepub_zone(fx->zp));
	assert_string_not_equal(before, after);
	free(before);
	free(after);
}

/* Closing while the load is in the pipeline: open reports ECLOSED, close ends. */
static void test_close_while_opening(void **state)
{
	struct fx *fx = *state;
	struct treq a;

	fx->opts.params = &fx->params;
	fx->opts.signer.sign = NULL;
	assert_int_equal(zonepub_new(&fx->loop, &fx->opts, &fx->zp), ZONEPUB_EINVAL);
	assert_null(fx->zp);
	fx_start(fx);   /* a store with its apex */
	fx_stop(fx);
	assert_int_equal(store_open(&fx->st, fx->db, NULL), 0);
	assert_int_equal(zonepub_new(&fx->loop, &fx->opts, &fx->zp), 0);
	assert_int_equal(commit_new(&fx->loop, fx->st, fx, NULL, NULL, &fx->commit), 0);
	fx->opened = false;
	assert_int_equal(zonepub_open(fx->zp, fx->st, fx->commit, test_opened, fx), 0);
	fx_issue(fx, &a, 1, 1, 0);
	zonepub_submit(fx->zp, &a.rq);
	fx_close_begin(fx);
	assert_true(a.done);
	assert_int_equal(a.status, ZONEPUB_ECLOSED);
	fx_stop(fx);
	assert_true(fx->opened);
	assert_int_equal(fx->open_status, ZONEPUB_ECLOSED);
}

/*
 * The background verification: each tick verifies a slice of the working
 * zone (at least 64 names) and moves the cursor, a pass wraps and is
 * counted; with the commit's own verification off, a version whose
 * signatures are all bad is published, the next slice finds it, STATUS
 * counts it and fails, the RRsets are re-signed in a new serial at once,
 * and the next clean pass clears the failure.
 */
static void test_verify_background(void **state)
{
	struct fx *fx = *state;
	enum { N = 70 };
	struct treq t[N], bad;
	struct zonepub_status st;
	uint32_t s;

	fx->params.verify = false;
	fx_start(fx);
	for (unsigned i = 0; i < N; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
	}
	fx_run_idle(fx);
	for (unsigned i = 0; i < N; i++)
		assert_int_equal(t[i].status, 0);
	assert_int_equal(zone_names(zonepub_zone(fx->zp)), N + 1);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.verify_failures, 0);
	assert_false(st.verify_failing);

	/* 71 names: a pass is two slices (64 + 7), one per tick. */
	{
		uint64_t passes = st.verify_passes, names = st.verify_names;
		uint64_t sigs = st.verify_signatures;
		/* Start from the apex: finish a pass the timer may have begun. */
		for (int k = 0; k < 3 && st.verify_names % (N + 1) != 0; k++) {
			zonepub_tick(fx->zp);
			fx_run_idle(fx);
			zonepub_status_get(fx->zp, &st);
		}
		assert_int_equal(st.verify_names % (N + 1), 0);
		passes = st.verify_passes;
		names = st.verify_names;
		sigs = st.verify_signatures;
		fx->now += 1;
		zonepub_tick(fx->zp);
		fx_run_idle(fx);
		zonepub_status_get(fx->zp, &st);
		assert_int_equal(st.verify_names, names + 64);
		assert_int_equal(st.verify_passes, passes);
		assert_int_equal(st.verify_pass_started, fx->now);
		zonepub_tick(fx->zp);
		fx_run_idle(fx);
		zonepub_status_get(fx->zp, &st);
		assert_int_equal(st.verify_names, names + N + 1);
		assert_int_equal(st.verify_passes, passes + 1);
		/* Apex SOA, NS, DNSKEY, CERT, NSEC; each device CERT, NSEC. */
		assert_int_equal(st.verify_signatures, sigs + 5 + 2 * N);
		assert_int_equal(st.verify_failures, 0);
		assert_false(st.verify_failing);
	}

	/* A version with every signature bad: published, as nothing verifies it. */
	s = zone_serial(zonepub_zone(fx->zp));
	fx->sg.garbage = 1;
	fx_issue(fx, &bad, 500, 1, 0);
	zonepub_submit(fx->zp, &bad.rq);
	fx_run_idle(fx);
	assert_int_equal(bad.status, 0);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s + 1);
	assert_int_equal(zone_check(zonepub_zone(fx->zp), fx->now, true), ZONE_ECHECK);

	/* The pass finds it within its two slices, and re-signing follows at once. */
	fx->now += 10;
	for (int k = 0; k < 2; k++) {
		zonepub_tick(fx->zp);
		fx_run_idle(fx);
	}
	zonepub_status_get(fx->zp, &st);
	/* The new CERT, its NSEC, the predecessor's NSEC and the SOA. */
	assert_int_equal(st.verify_failures, 4);
	assert_non_null(strstr(st.verify_last_failure, " NSEC"));
	assert_int_equal(st.verify_repairs, 4);
	assert_true(st.verify_failing);
	assert_true(st.verify_last_failure[0] != '\0');
	assert_non_null(strstr(st.verify_last_failure, "iotregistry.test."));
	assert_int_equal(st.verify_last_failure_time, fx->now);
	/* One re-signed version per slice that found something: the SOA in the
	 * first (apex), the device's CERT and NSEC and its predecessor's NSEC
	 * in the second. */
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s + 3);
	assert_int_equal(st.resigned, 2);
	assert_int_equal(zone_check(zonepub_zone(fx->zp), fx->now, true), 0);
	assert_int_equal(fx_store_serial(fx), s + 3);

	/* A complete clean pass clears the failure. */
	for (int k = 0; k < 4; k++) {
		fx->now += 1;
		zonepub_tick(fx->zp);
		fx_run_idle(fx);
	}
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.verify_failures, 4);
	assert_false(st.verify_failing);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s + 3);

	/* The repaired zone reloads from the store and verifies in full. */
	fx_stop(fx);
	fx_start(fx);
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), s + 3);
	assert_int_equal(zone_check(zonepub_zone(fx->zp), fx->now, true), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_apex, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_group_one_serial, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_group_bound, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refusals_in_group, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_revoke_two_signatures, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_restart, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sign_failure, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_store_failure, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_failure, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_pipelined_groups, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_check_failure, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_expiry, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_expiry_after_revoke, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_resign, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_resign_after_clock_steps_back, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_zone_file, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bulk, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_publish, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_close_queued, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_close_in_flight, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_load_refuses_bad_rows, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_open_through_pipeline, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_sync_signer_many, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_close_while_opening, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_verify_background, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
