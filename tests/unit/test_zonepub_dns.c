/*
 * zonepub with the DNS listener's responder (signer/dns_answer.h) reading
 * what zonepub gives it: the served zone and the journal. While a version's
 * store transaction is open, SOA queries still answer the previous serial;
 * afterwards the new one. IXFR is answered from zonepub's journal (the
 * chain of committed diffs, also after a restart), and falls back to AXFR
 * once a bulk import reset it or pruning dropped the diffs.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "signer/dns_acl.h"
#include "signer/dns_answer.h"
#include "test_zonepub_fx.h"
#include "zonesigner/zone_change.h"

struct answer {
	int kind;
	bool fallback;
	uint32_t serial;     /* of the first SOA in the first message */
	size_t messages;
	size_t rrs;
};

/* Ask the responder one question about zonepub's zone, from 127.0.0.1 over TCP. */
static void ask(struct fx *fx, ldns_pkt *q, struct answer *out)
{
	struct dns_acl *acl = NULL;
	struct dns_journal j = zonepub_journal(fx->zp);
	struct dns_answer_env env;
	struct sockaddr_storage sa;
	struct dns_answer *a = NULL;
	uint8_t *w = NULL;
	size_t wl = 0;

	memset(out, 0, sizeof(*out));
	assert_int_equal(dns_acl_new(&acl), 0);
	assert_int_equal(dns_acl_add(acl, "127.0.0.1", NULL), 0);
	memset(&env, 0, sizeof(env));
	env.zone = zonepub_zone(fx->zp);
	env.journal = &j;
	env.acl = acl;
	assert_int_equal(ldns_pkt2wire(&w, q, &wl), LDNS_STATUS_OK);
	assert_int_equal(dns_addr_parse("127.0.0.1", 5300, &sa), 0);
	assert_int_equal(dns_answer_new(&env, w, wl, (struct sockaddr *)&sa, true, fx->now, &a), 0);
	for (;;) {
		uint8_t *msg = NULL;
		size_t len = 0;
		ldns_pkt *p = NULL;
		assert_int_equal(dns_answer_next(a, &msg, &len), 0);
		if (msg == NULL)
			break;
		assert_int_equal(ldns_wire2pkt(&p, msg, len), LDNS_STATUS_OK);
		if (out->messages == 0) {
			ldns_rr_list *an = ldns_pkt_answer(p);
			assert_true(ldns_rr_list_rr_count(an) > 0);
			assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(an, 0)), LDNS_RR_TYPE_SOA);
			out->serial = ldns_rdf2native_int32(ldns_rr_rdf(ldns_rr_list_rr(an, 0), 2));
		}
		out->rrs += ldns_rr_list_rr_count(ldns_pkt_answer(p));
		out->messages++;
		ldns_pkt_free(p);
		free(msg);
	}
	out->kind = (int)dns_answer_info(a)->kind;
	out->fallback = dns_answer_info(a)->fallback;
	dns_answer_free(a);
	dns_acl_free(acl);
	free(w);
	ldns_pkt_free(q);
}

static ldns_pkt *query(ldns_rr_type t)
{
	ldns_pkt *q = NULL;

	assert_int_equal(ldns_pkt_query_new_frm_str(&q, "iotregistry.test.", t, LDNS_RR_CLASS_IN,
						    0), LDNS_STATUS_OK);
	ldns_pkt_set_id(q, 77);
	return q;
}

static ldns_pkt *ixfr_query(uint32_t serial)
{
	ldns_pkt *q = query(LDNS_RR_TYPE_IXFR);
	ldns_rr *soa = NULL;
	char buf[128];

	snprintf(buf, sizeof(buf), "iotregistry.test. 0 IN SOA . . %u 0 0 0 0", serial);
	assert_int_equal(ldns_rr_new_frm_str(&soa, buf, 0, NULL, NULL), LDNS_STATUS_OK);
	assert_true(ldns_pkt_push_rr(q, LDNS_SECTION_AUTHORITY, soa));
	return q;
}

static uint32_t soa_serial(struct fx *fx)
{
	struct answer a;

	ask(fx, query(LDNS_RR_TYPE_SOA), &a);
	assert_int_equal(a.kind, DNS_ANSWER_QUERY);
	return a.serial;
}

/* ---- A request whose store transaction waits for the test ---- */

struct slow {
	struct treq t;
	atomic_int in_store;
	uv_sem_t release;
};

static int slow_store(struct zonepub_req *rq, void *env)
{
	struct slow *s = (struct slow *)rq;

	(void)env;
	atomic_store(&s->in_store, 1);
	uv_sem_wait(&s->release);
	return COMMIT_OK;
}

/* The listener sees a serial only once its transaction has committed. */
static void test_no_uncommitted_serial(void **state)
{
	struct fx *fx = *state;
	struct slow s;
	struct answer a;
	time_t deadline = time(NULL) + 60;
	uint32_t s0;

	fx_start(fx);
	s0 = soa_serial(fx);
	assert_int_equal(s0, zone_serial(zonepub_zone(fx->zp)));
	memset(&s, 0, sizeof(s));
	fx_issue(fx, &s.t, 1, 1, 0);
	s.t.rq.store_run = slow_store;
	assert_int_equal(uv_sem_init(&s.release, 0), 0);
	zonepub_submit(fx->zp, &s.t.rq);
	/* The writer thread now holds the transaction open; the loop goes on. */
	while (!atomic_load(&s.in_store)) {
		if (time(NULL) > deadline)
			fail_msg("the store transaction did not start");
		uv_run(&fx->loop, UV_RUN_ONCE);
	}
	for (int i = 0; i < 5; i++)
		uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(soa_serial(fx), s0);
	ask(fx, ixfr_query(s0), &a);
	assert_int_equal(a.serial, s0);   /* up to date: nothing newer exists yet */
	assert_false(fx_has_device(fx, 1, 1));
	assert_false(s.t.done);
	uv_sem_post(&s.release);
	fx_run_idle(fx);
	assert_int_equal(s.t.status, 0);
	assert_int_equal(s.t.serial, s0 + 1);
	assert_int_equal(soa_serial(fx), s0 + 1);
	assert_true(fx_has_device(fx, 1, 1));
	uv_sem_destroy(&s.release);
}

/* IXFR from zonepub's journal, across a restart; AXFR after a bulk import. */
static void test_ixfr_chain(void **state)
{
	struct fx *fx = *state;
	struct treq t[3];
	struct answer a, full;
	uint32_t s0;

	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	for (unsigned i = 0; i < 3; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
		fx_run_idle(fx);
	}
	ask(fx, ixfr_query(s0), &a);
	assert_int_equal(a.kind, DNS_ANSWER_IXFR);
	assert_false(a.fallback);
	assert_int_equal(a.serial, s0 + 3);
	ask(fx, query(LDNS_RR_TYPE_AXFR), &full);
	assert_int_equal(full.kind, DNS_ANSWER_AXFR);
	assert_int_equal(full.serial, s0 + 3);

	fx_stop(fx);
	fx_start(fx);
	ask(fx, ixfr_query(s0 + 1), &a);
	assert_int_equal(a.kind, DNS_ANSWER_IXFR);
	assert_false(a.fallback);
	assert_int_equal(a.serial, s0 + 3);
}

/* The journal is pruned by count, bytes and age, the store's with it. */
static void test_journal_pruning(void **state)
{
	struct fx *fx = *state;
	struct treq t[6], late;
	struct zonepub_status st;
	struct answer a;
	uint32_t s0;

	fx->opts.journal_max_diffs = 3;
	fx->opts.journal_max_age = 3600;
	fx_start(fx);
	s0 = zone_serial(zonepub_zone(fx->zp));
	for (unsigned i = 0; i < 6; i++) {
		fx_issue(fx, &t[i], i + 1, 1, 0);
		zonepub_submit(fx->zp, &t[i].rq);
		fx_run_idle(fx);
	}
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.journal_diffs, 3);
	assert_int_equal(fx_store_journal_rows(fx), 3);
	ask(fx, ixfr_query(s0 + 3), &a);
	assert_false(a.fallback);
	ask(fx, ixfr_query(s0 + 2), &a);
	assert_true(a.fallback);

	/* Two hours later every older diff is too old: only the new one stays. */
	fx->now += 7200;
	fx_issue(fx, &late, 99, 1, 0);
	zonepub_submit(fx->zp, &late.rq);
	fx_run_idle(fx);
	assert_int_equal(late.status, 0);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.journal_diffs, 1);
	assert_int_equal(fx_store_journal_rows(fx), 1);

	/* And bytes: a bound smaller than one diff keeps none. */
	fx_stop(fx);
	fx->opts.journal_max_bytes = 10;
	fx_start(fx);
	fx_issue(fx, &late, 100, 1, 0);
	zonepub_submit(fx->zp, &late.rq);
	fx_run_idle(fx);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.journal_diffs, 0);
	assert_int_equal(fx_store_journal_rows(fx), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_uncommitted_serial, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_ixfr_chain, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_journal_pruning, fx_setup, fx_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
