/*
 * Tests of dns_answer/dns_xfr (signer/dns_answer.h): queries built with ldns
 * go through the responder without sockets, and its messages are parsed back
 * with ldns. Checked: SOA and ordinary queries, refusals, AXFR (SOA first and
 * last, every RR of the zone exactly once, bounded messages), IXFR (the diff
 * chain applied to the old AXFR gives the new AXFR), IXFR fallback and
 * up-to-date answers, UDP rules, the allow-list, TSIG (signed multi-message
 * AXFR verified message by message with ldns, BADKEY/BADSIG), an AXFR
 * abandoned when the zone changes, UDP truncation. (Corrupted input:
 * test_dns_fuzz.c.)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "signer/dns_acl.h"
#include "signer/dns_answer.h"
#include "signer/dns_journal.h"
#include "signer/dns_tsig.h"
#include "test_dns_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_file.h"
#include "zonesigner/zone_ldns.h"

#define K1 "c2VjcmV0LWtleS1udW1iZXItb25lLWZvci10ZXN0cyE="
#define K2 "YW5vdGhlci1zZWNyZXQta2V5LWZvci10aGUtdGVzdHM="

struct fix {
	struct tds_zone tz;
	struct dns_journal journal;
	struct dns_acl *acl;
	struct dns_keyring *keys;
	struct dns_answer_env env;
};

struct msgs {
	ldns_pkt *p[4096];
	uint8_t *w[4096];
	size_t len[4096];
	size_t n;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(tds_zone_init(&f->tz, NULL, 50), 0);
	f->journal = dns_journal_mem_ops(f->tz.journal);
	assert_int_equal(dns_acl_new(&f->acl), 0);
	assert_int_equal(dns_acl_add(f->acl, "127.0.0.1", NULL), 0);
	assert_int_equal(dns_acl_add(f->acl, "10.0.0.0/8", "k1"), 0);
	assert_int_equal(dns_keyring_new(&f->keys), 0);
	assert_int_equal(dns_keyring_add(f->keys, "k1", "hmac-sha256", K1), 0);
	assert_int_equal(dns_keyring_add(f->keys, "k2.", "hmac-sha512", K2), 0);
	f->env.zone = f->tz.z;
	f->env.journal = &f->journal;
	f->env.acl = f->acl;
	f->env.keys = f->keys;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	tds_zone_free(&f->tz);
	dns_acl_free(f->acl);
	dns_keyring_free(f->keys);
	free(f);
	return 0;
}

static void msgs_free(struct msgs *m)
{
	for (size_t i = 0; i < m->n; i++) {
		ldns_pkt_free(m->p[i]);
		free(m->w[i]);
	}
	free(m);
}

static ldns_pkt *query(const char *name, ldns_rr_type t, ldns_rr_class c)
{
	ldns_pkt *q = NULL;

	assert_int_equal(ldns_pkt_query_new_frm_str(&q, name, t, c, 0), LDNS_STATUS_OK);
	ldns_pkt_set_id(q, 4242);
	return q;
}

static ldns_pkt *ixfr_query(uint32_t serial)
{
	ldns_pkt *q = query("iotregistry.test.", LDNS_RR_TYPE_IXFR, LDNS_RR_CLASS_IN);
	ldns_rr *soa = NULL;
	char buf[128];

	snprintf(buf, sizeof(buf), "iotregistry.test. 0 IN SOA . . %u 0 0 0 0", serial);
	assert_int_equal(ldns_rr_new_frm_str(&soa, buf, 0, NULL, NULL), LDNS_STATUS_OK);
	assert_true(ldns_pkt_push_rr(q, LDNS_SECTION_AUTHORITY, soa));
	return q;
}

static void sign(ldns_pkt *q, const char *name, const char *secret, const char *alg)
{
	assert_int_equal(ldns_pkt_tsig_sign(q, name, secret, 300, alg, NULL), LDNS_STATUS_OK);
}

/* Run one message through the responder; collects every answer message. */
static int run_wire(struct fix *f, const uint8_t *w, size_t wl, bool tcp, const char *from,
		    struct msgs **out, struct dns_answer_info *info)
{
	struct sockaddr_storage sa;
	struct dns_answer *a = NULL;
	struct msgs *m = calloc(1, sizeof(*m));
	int r;

	assert_non_null(m);
	assert_int_equal(dns_addr_parse(from, 5300, &sa), 0);
	r = dns_answer_new(&f->env, w, wl, (struct sockaddr *)&sa, tcp, (int64_t)time(NULL), &a);
	if (r != 0) {
		free(m);
		*out = NULL;
		return r;
	}
	for (;;) {
		uint8_t *msg = NULL;
		size_t len = 0;
		r = dns_answer_next(a, &msg, &len);
		if (r != 0 || msg == NULL)
			break;
		assert_true(m->n < 4096);
		assert_int_equal(ldns_wire2pkt(&m->p[m->n], msg, len), LDNS_STATUS_OK);
		m->w[m->n] = msg;
		m->len[m->n] = len;
		m->n++;
	}
	if (info != NULL)
		*info = *dns_answer_info(a);
	dns_answer_free(a);
	*out = m;
	return r;
}

static struct msgs *run(struct fix *f, ldns_pkt *q, bool tcp, const char *from,
			struct dns_answer_info *info)
{
	uint8_t *w = NULL;
	size_t wl = 0;
	struct msgs *m = NULL;

	assert_int_equal(ldns_pkt2wire(&w, q, &wl), LDNS_STATUS_OK);
	assert_int_equal(run_wire(f, w, wl, tcp, from, &m, info), 0);
	free(w);
	ldns_pkt_free(q);
	return m;
}

/* ---- Sets of RRs as sorted presentation lines ---- */

struct lines {
	char **v;
	size_t n, cap;
};

static void lines_add(struct lines *l, const ldns_rr *rr)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 256;
		l->v = realloc(l->v, l->cap * sizeof(*l->v));
		assert_non_null(l->v);
	}
	l->v[l->n] = ldns_rr2str_fmt(ldns_output_format_nocomments, rr);
	assert_non_null(l->v[l->n]);
	l->n++;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void lines_sort(struct lines *l)
{
	qsort(l->v, l->n, sizeof(*l->v), cmp_str);
}

static void lines_free(struct lines *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static void lines_equal(struct lines *a, struct lines *b)
{
	lines_sort(a);
	lines_sort(b);
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++)
		assert_string_equal(a->v[i], b->v[i]);
}

static void lines_remove(struct lines *l, const ldns_rr *rr)
{
	char *s = ldns_rr2str_fmt(ldns_output_format_nocomments, rr);

	for (size_t i = 0; i < l->n; i++) {
		if (strcmp(l->v[i], s) == 0) {
			free(l->v[i]);
			l->v[i] = l->v[--l->n];
			free(s);
			return;
		}
	}
	fail_msg("IXFR removes an RR that is not there: %s", s);
}

static int zone_cb(void *ctx, const ldns_rr *rr)
{
	lines_add(ctx, rr);
	return 0;
}

/* The RRs of an AXFR answer without the final SOA. */
static void axfr_lines(struct msgs *m, struct lines *l)
{
	size_t total = 0, k = 0;

	for (size_t i = 0; i < m->n; i++)
		total += ldns_pkt_ancount(m->p[i]);
	for (size_t i = 0; i < m->n; i++) {
		const ldns_rr_list *an = ldns_pkt_answer(m->p[i]);
		for (size_t j = 0; j < ldns_rr_list_rr_count(an); j++, k++)
			if (k + 1 < total)
				lines_add(l, ldns_rr_list_rr(an, j));
	}
}

static const ldns_rr *nth_rr(struct msgs *m, size_t k)
{
	for (size_t i = 0; i < m->n; i++) {
		size_t c = ldns_pkt_ancount(m->p[i]);
		if (k < c)
			return ldns_rr_list_rr(ldns_pkt_answer(m->p[i]), k);
		k -= c;
	}
	return NULL;
}

static size_t total_rrs(struct msgs *m)
{
	size_t t = 0;

	for (size_t i = 0; i < m->n; i++)
		t += ldns_pkt_ancount(m->p[i]);
	return t;
}

static uint32_t soa_serial(const ldns_rr *rr)
{
	assert_non_null(rr);
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_SOA);
	return ldns_rdf2native_int32(ldns_rr_rdf(rr, 2));
}

/* ---- Tests ---- */

static void test_soa_query(void **state)
{
	struct fix *f = *state;
	struct dns_answer_info info;
	struct msgs *m;
	ldns_pkt *q;

	m = run(f, query("IOTregistry.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN), false,
		"192.0.2.7", &info);
	assert_int_equal(m->n, 1);
	assert_true(ldns_pkt_qr(m->p[0]) && ldns_pkt_aa(m->p[0]));
	assert_int_equal(ldns_pkt_id(m->p[0]), 4242);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(m->p[0]), 1);
	assert_int_equal(soa_serial(nth_rr(m, 0)), zone_serial(f->tz.z));
	assert_int_equal(info.kind, DNS_ANSWER_QUERY);
	msgs_free(m);

	/* With DO the RRSIG comes too, and the answer carries EDNS. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN);
	ldns_pkt_set_edns_udp_size(q, 1232);
	ldns_pkt_set_edns_do(q, true);
	m = run(f, q, false, "192.0.2.7", NULL);
	assert_int_equal(ldns_pkt_ancount(m->p[0]), 2);
	assert_int_equal(ldns_rr_get_type(nth_rr(m, 1)), LDNS_RR_TYPE_RRSIG);
	assert_true(ldns_pkt_edns(m->p[0]) && ldns_pkt_edns_do(m->p[0]));
	msgs_free(m);
}

static void test_other_queries(void **state)
{
	struct fix *f = *state;
	struct msgs *m;
	char owner[128], id[21];
	ldns_pkt *q;

	tds_device_id(3, id);
	snprintf(owner, sizeof(owner), "1.%s.iotregistry.test.", id);
	m = run(f, query(owner, LDNS_RR_TYPE_CERT, LDNS_RR_CLASS_IN), false, "::1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(m->p[0]), 1);
	assert_int_equal(ldns_rr_get_type(nth_rr(m, 0)), LDNS_RR_TYPE_CERT);
	msgs_free(m);

	/* NODATA: NOERROR, no answer, the SOA (TTL = its minimum) in authority. */
	m = run(f, query(owner, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN), false, "::1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NOERROR);
	assert_int_equal(ldns_pkt_ancount(m->p[0]), 0);
	assert_int_equal(ldns_pkt_nscount(m->p[0]), 1);
	assert_int_equal(ldns_rr_ttl(ldns_rr_list_rr(ldns_pkt_authority(m->p[0]), 0)), 300);
	msgs_free(m);

	/* NODATA with DO: SOA, its RRSIG, the name's NSEC and its RRSIG. */
	q = query(owner, LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN);
	ldns_pkt_set_edns_udp_size(q, 1232);
	ldns_pkt_set_edns_do(q, true);
	m = run(f, q, false, "::1", NULL);
	assert_int_equal(ldns_pkt_nscount(m->p[0]), 4);
	msgs_free(m);

	m = run(f, query("nosuch.iotregistry.test.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN), false,
		"::1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NXDOMAIN);
	assert_true(ldns_pkt_aa(m->p[0]));
	msgs_free(m);

	/* Not our zone, not our class. */
	m = run(f, query("example.com.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN), false, "::1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_REFUSED);
	msgs_free(m);
	m = run(f, query("test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN), false, "::1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_REFUSED);
	msgs_free(m);
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_CH), false, "::1",
		NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_REFUSED);
	msgs_free(m);

	/* Other opcodes are not implemented. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN);
	ldns_pkt_set_opcode(q, LDNS_PACKET_UPDATE);
	m = run(f, q, false, "::1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NOTIMPL);
	msgs_free(m);
}

static void test_malformed(void **state)
{
	struct fix *f = *state;
	struct msgs *m = NULL;
	uint8_t w[64] = { 0x12, 0x34, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0, 0x05 };

	/* Shorter than a header, or a response: nothing goes back. */
	assert_int_equal(run_wire(f, w, 11, false, "::1", &m, NULL), DNS_EFORMAT);
	w[2] = 0x81;
	assert_int_equal(run_wire(f, w, 20, false, "::1", &m, NULL), DNS_EFORMAT);
	/* A header with a truncated question: FORMERR with the same ID. */
	w[2] = 0x01;
	assert_int_equal(run_wire(f, w, 14, false, "::1", &m, NULL), 0);
	assert_int_equal(m->n, 1);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_FORMERR);
	assert_int_equal(ldns_pkt_id(m->p[0]), 0x1234);
	assert_int_equal(ldns_pkt_qdcount(m->p[0]), 0);
	msgs_free(m);
	/* No question at all. */
	w[5] = 0;
	assert_int_equal(run_wire(f, w, 12, false, "::1", &m, NULL), 0);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_FORMERR);
	msgs_free(m);
}

static void test_axfr(void **state)
{
	struct fix *f = *state;
	struct dns_answer_info info;
	struct lines got = { 0 }, want = { 0 };
	struct msgs *m;
	size_t total;

	f->env.msg_size = 2048;
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.1", &info);
	assert_int_equal(info.kind, DNS_ANSWER_AXFR);
	assert_true(m->n > 5);
	total = total_rrs(m);
	assert_int_equal(info.rrs, total);
	assert_int_equal(info.messages, m->n);
	assert_int_equal(soa_serial(nth_rr(m, 0)), zone_serial(f->tz.z));
	assert_int_equal(soa_serial(nth_rr(m, total - 1)), zone_serial(f->tz.z));
	for (size_t i = 0; i < m->n; i++) {
		/* Bounded messages; the question only in the first. */
		assert_true(m->len[i] <= 2048);
		assert_int_equal(ldns_pkt_qdcount(m->p[i]), i == 0 ? 1 : 0);
		assert_true(ldns_pkt_aa(m->p[i]));
		assert_int_equal(ldns_pkt_id(m->p[i]), 4242);
	}
	/* Exactly the zone's RRs, each once, and only one SOA inside. */
	axfr_lines(m, &got);
	assert_int_equal(zone_foreach_rr(f->tz.z, zone_cb, &want), 0);
	lines_equal(&got, &want);
	for (size_t k = 1; k + 1 < total; k++)
		assert_int_not_equal(ldns_rr_get_type(nth_rr(m, k)), LDNS_RR_TYPE_SOA);
	lines_free(&got);
	lines_free(&want);
	msgs_free(m);
}

static void test_xfr_refusals(void **state)
{
	struct fix *f = *state;
	struct dns_answer_info info;
	struct msgs *m;

	/* AXFR over UDP is a format error. */
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), false,
		"127.0.0.1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_FORMERR);
	msgs_free(m);
	/* Not in the allow-list. */
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.2", &info);
	assert_int_equal(m->n, 1);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_REFUSED);
	assert_int_equal(ldns_pkt_ancount(m->p[0]), 0);
	assert_int_equal(info.kind, DNS_ANSWER_REFUSED_XFR);
	msgs_free(m);
	m = run(f, ixfr_query(1), true, "[::1]:53", &info);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_REFUSED);
	msgs_free(m);
	/* An allowed network whose entry needs a key: refused unsigned. */
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"10.1.2.3", &info);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_REFUSED);
	msgs_free(m);
	/* Only the apex can be transferred. */
	m = run(f, query("x.iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NOTAUTH);
	msgs_free(m);
	/* IXFR without the secondary's SOA. */
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_IXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.1", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_FORMERR);
	msgs_free(m);
}

static void test_ixfr(void **state)
{
	struct fix *f = *state;
	struct dns_answer_info info;
	struct lines old = { 0 }, cur = { 0 };
	struct msgs *m;
	uint32_t s0 = zone_serial(f->tz.z);
	size_t total, k;

	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.1", NULL);
	axfr_lines(m, &old);
	msgs_free(m);
	assert_int_equal(tds_zone_add(&f->tz, 3), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 7), 0);
	assert_int_equal(tds_zone_add(&f->tz, 1), 0);
	assert_int_equal(zone_serial(f->tz.z), s0 + 3);

	f->env.msg_size = 1024;
	m = run(f, ixfr_query(s0), true, "127.0.0.1", &info);
	assert_int_equal(info.kind, DNS_ANSWER_IXFR);
	assert_false(info.fallback);
	assert_int_equal(info.ixfr_from, s0);
	assert_true(m->n > 1);
	total = total_rrs(m);
	/* New SOA, then (old SOA, removed..., new SOA, added...) per version,
	 * then the new SOA: apply each step to the old zone. */
	assert_int_equal(soa_serial(nth_rr(m, 0)), s0 + 3);
	assert_int_equal(soa_serial(nth_rr(m, total - 1)), s0 + 3);
	k = 1;
	for (uint32_t v = s0; v < s0 + 3; v++) {
		assert_int_equal(soa_serial(nth_rr(m, k)), v);
		lines_remove(&old, nth_rr(m, k++));
		for (; ldns_rr_get_type(nth_rr(m, k)) != LDNS_RR_TYPE_SOA; k++)
			lines_remove(&old, nth_rr(m, k));
		assert_int_equal(soa_serial(nth_rr(m, k)), v + 1);
		lines_add(&old, nth_rr(m, k++));
		for (; k < total - 1 && ldns_rr_get_type(nth_rr(m, k)) != LDNS_RR_TYPE_SOA; k++)
			lines_add(&old, nth_rr(m, k));
	}
	assert_int_equal(k, total - 1);
	msgs_free(m);
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.1", NULL);
	axfr_lines(m, &cur);
	msgs_free(m);
	lines_equal(&old, &cur);
	lines_free(&old);
	lines_free(&cur);

	/* From the middle of the chain. */
	m = run(f, ixfr_query(s0 + 2), true, "127.0.0.1", &info);
	assert_false(info.fallback);
	assert_int_equal(soa_serial(nth_rr(m, 1)), s0 + 2);
	msgs_free(m);
}

static void test_ixfr_special(void **state)
{
	struct fix *f = *state;
	struct dns_answer_info info;
	struct lines a = { 0 }, b = { 0 };
	struct msgs *m;
	uint32_t s0 = zone_serial(f->tz.z);

	assert_int_equal(tds_zone_add(&f->tz, 1), 0);
	/* The journal starts after the bulk import: older serials get an AXFR. */
	m = run(f, ixfr_query(s0 - 1), true, "127.0.0.1", &info);
	assert_int_equal(info.kind, DNS_ANSWER_IXFR);
	assert_true(info.fallback);
	assert_int_not_equal(ldns_rr_get_type(nth_rr(m, 1)), LDNS_RR_TYPE_SOA);
	axfr_lines(m, &a);
	msgs_free(m);
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.1", NULL);
	axfr_lines(m, &b);
	msgs_free(m);
	lines_equal(&a, &b);
	lines_free(&a);
	lines_free(&b);
	/* Without a journal, likewise. */
	f->env.journal = NULL;
	m = run(f, ixfr_query(s0), true, "127.0.0.1", &info);
	assert_true(info.fallback);
	msgs_free(m);
	f->env.journal = &f->journal;

	/* Up to date, or even ahead: the current SOA alone. */
	for (uint32_t d = 0; d < 6; d += 5) {
		m = run(f, ixfr_query(s0 + 1 + d), true, "127.0.0.1", &info);
		assert_int_equal(m->n, 1);
		assert_int_equal(ldns_pkt_ancount(m->p[0]), 1);
		assert_int_equal(soa_serial(nth_rr(m, 0)), s0 + 1);
		assert_false(info.fallback);
		msgs_free(m);
	}
	/* Over UDP: the current SOA alone, whatever the serial. */
	m = run(f, ixfr_query(s0), false, "127.0.0.1", &info);
	assert_int_equal(m->n, 1);
	assert_int_equal(ldns_pkt_ancount(m->p[0]), 1);
	assert_int_equal(soa_serial(nth_rr(m, 0)), s0 + 1);
	msgs_free(m);
}

static void test_tsig_axfr(void **state)
{
	struct fix *f = *state;
	struct dns_answer_info info;
	struct msgs *m;
	ldns_pkt *q;
	ldns_rdf *mac = NULL;
	uint8_t *w = NULL;
	size_t wl;

	f->env.msg_size = 1500;
	q = query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN);
	sign(q, "k1.", K1, "hmac-sha256.");
	mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(q), 3));
	m = run(f, q, true, "10.9.8.7", &info);
	assert_true(info.tsig);
	assert_int_equal(info.kind, DNS_ANSWER_AXFR);
	assert_true(m->n > 3);
	/* Every message signed; the first covers the request MAC, each later
	 * one the prior MAC and the timers only (RFC 8945 section 5.3.1). */
	for (size_t i = 0; i < m->n; i++) {
		ldns_rdf *next;
		assert_non_null(ldns_pkt_tsig(m->p[i]));
		assert_true(ldns_pkt_tsig_verify_next(m->p[i], m->w[i], m->len[i], "k1.", K1, mac,
						      i > 0));
		next = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(m->p[i]), 3));
		ldns_rdf_deep_free(mac);
		mac = next;
	}
	/* The chain really is a chain: a message checked against the wrong
	 * prior MAC fails. */
	assert_false(ldns_pkt_tsig_verify_next(m->p[2], m->w[2], m->len[2], "k1.", K1, mac, 1));
	ldns_rdf_deep_free(mac);
	msgs_free(m);

	/* A known key, but not the one the allow-list wants there: refused, signed. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN);
	sign(q, "k2.", K2, "hmac-sha512.");
	m = run(f, q, true, "10.9.8.7", &info);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_REFUSED);
	assert_non_null(ldns_pkt_tsig(m->p[0]));
	msgs_free(m);

	/* A wrong secret: NOTAUTH, TSIG error BADSIG, empty MAC. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN);
	sign(q, "k1.", K2, "hmac-sha256.");
	m = run(f, q, true, "10.9.8.7", &info);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NOTAUTH);
	assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(ldns_pkt_tsig(m->p[0]), 5)),
			 DNS_TSIG_BADSIG);
	assert_int_equal(ldns_rdf_size(ldns_rr_rdf(ldns_pkt_tsig(m->p[0]), 3)), 2);
	assert_int_equal(info.tsig_error, DNS_TSIG_BADSIG);
	msgs_free(m);

	/* An unknown key, or the right name with another algorithm: BADKEY. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN);
	sign(q, "k3.", K1, "hmac-sha256.");
	m = run(f, q, false, "10.9.8.7", NULL);
	assert_int_equal(ldns_pkt_get_rcode(m->p[0]), LDNS_RCODE_NOTAUTH);
	assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(ldns_pkt_tsig(m->p[0]), 5)),
			 DNS_TSIG_BADKEY);
	msgs_free(m);
	q = query("iotregistry.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN);
	sign(q, "k1.", K1, "hmac-sha512.");
	m = run(f, q, false, "10.9.8.7", NULL);
	assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(ldns_pkt_tsig(m->p[0]), 5)),
			 DNS_TSIG_BADKEY);
	msgs_free(m);

	/* A signed SOA query over UDP: a signed answer. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_SOA, LDNS_RR_CLASS_IN);
	sign(q, "k2.", K2, "hmac-sha512.");
	mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(q), 3));
	assert_int_equal(ldns_pkt2wire(&w, q, &wl), LDNS_STATUS_OK);
	free(w);
	m = run(f, q, false, "192.0.2.1", NULL);
	assert_true(ldns_pkt_tsig_verify(m->p[0], m->w[0], m->len[0], "k2.", K2, mac));
	ldns_rdf_deep_free(mac);
	msgs_free(m);
}

/* Start an AXFR and take its first message. */
static struct dns_answer *axfr_start(struct fix *f, struct msgs *m)
{
	struct sockaddr_storage sa;
	struct dns_answer *a = NULL;
	ldns_pkt *q = query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN);
	uint8_t *w = NULL, *msg = NULL;
	size_t wl, len;

	assert_int_equal(ldns_pkt2wire(&w, q, &wl), LDNS_STATUS_OK);
	assert_int_equal(dns_addr_parse("127.0.0.1", 1, &sa), 0);
	assert_int_equal(dns_answer_new(&f->env, w, wl, (struct sockaddr *)&sa, true,
					(int64_t)time(NULL), &a), 0);
	assert_int_equal(dns_answer_next(a, &msg, &len), 0);
	assert_non_null(msg);
	assert_int_equal(ldns_wire2pkt(&m->p[m->n], msg, len), LDNS_STATUS_OK);
	m->w[m->n] = msg;
	m->len[m->n++] = len;
	ldns_pkt_free(q);
	free(w);
	return a;
}

/* Pull up to @p k more messages; returns the last result. */
static int axfr_pull(struct dns_answer *a, struct msgs *m, size_t k)
{
	for (size_t i = 0; i < k; i++) {
		uint8_t *msg = NULL;
		size_t len;
		int r = dns_answer_next(a, &msg, &len);
		if (r != 0 || msg == NULL)
			return r;
		assert_int_equal(ldns_wire2pkt(&m->p[m->n], msg, len), LDNS_STATUS_OK);
		m->w[m->n] = msg;
		m->len[m->n++] = len;
	}
	return 0;
}

static void test_axfr_zone_changes(void **state)
{
	struct fix *f = *state;
	struct lines before = { 0 }, got = { 0 };
	struct msgs *m;
	struct dns_answer *a;
	uint32_t s0 = zone_serial(f->tz.z);

	f->env.msg_size = 1024;
	m = run(f, query("iotregistry.test.", LDNS_RR_TYPE_AXFR, LDNS_RR_CLASS_IN), true,
		"127.0.0.1", NULL);
	axfr_lines(m, &before);
	msgs_free(m);

	/* Commits while the transfer is under way: names added and removed
	 * before and after its position, several versions. The AXFR must stay
	 * exactly the version it started with. */
	m = calloc(1, sizeof(*m));
	assert_non_null(m);
	a = axfr_start(f, m);
	assert_int_equal(axfr_pull(a, m, 3), 0);
	assert_int_equal(tds_zone_add(&f->tz, 5), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 0), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 49), 0);
	assert_int_equal(axfr_pull(a, m, 4), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 25), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 51), 0);   /* added since it began */
	assert_int_equal(tds_zone_add(&f->tz, 3), 0);
	assert_int_equal(axfr_pull(a, m, 100000), 0);
	assert_int_equal(zone_serial(f->tz.z), s0 + 6);
	assert_int_equal(dns_answer_info(a)->followed, 2);
	assert_int_equal(soa_serial(nth_rr(m, 0)), s0);
	assert_int_equal(soa_serial(nth_rr(m, total_rrs(m) - 1)), s0);
	axfr_lines(m, &got);
	lines_equal(&got, &before);
	lines_free(&got);
	lines_free(&before);
	dns_answer_free(a);
	msgs_free(m);

	/* Without the journal's diffs it cannot go on mixing two versions. */
	m = calloc(1, sizeof(*m));
	assert_non_null(m);
	a = axfr_start(f, m);
	assert_int_equal(tds_zone_add(&f->tz, 1), 0);
	dns_journal_mem_reset(f->tz.journal);
	assert_int_equal(axfr_pull(a, m, 1), DNS_ECHANGED);
	dns_answer_free(a);
	msgs_free(m);
}

static void test_udp_truncation(void **state)
{
	struct fix *f = *state;
	struct msgs *m;
	ldns_pkt *q;

	/* The apex with every RRSIG is far more than 512 bytes. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_IN);
	ldns_pkt_set_edns_udp_size(q, 512);
	ldns_pkt_set_edns_do(q, true);
	m = run(f, q, false, "192.0.2.1", NULL);
	assert_true(ldns_pkt_tc(m->p[0]));
	assert_int_equal(ldns_pkt_ancount(m->p[0]), 0);
	assert_true(m->len[0] <= 512);
	msgs_free(m);
	/* Over TCP it all comes. */
	q = query("iotregistry.test.", LDNS_RR_TYPE_ANY, LDNS_RR_CLASS_IN);
	ldns_pkt_set_edns_udp_size(q, 4096);
	ldns_pkt_set_edns_do(q, true);
	m = run(f, q, true, "192.0.2.1", NULL);
	assert_false(ldns_pkt_tc(m->p[0]));
	assert_true(ldns_pkt_ancount(m->p[0]) >= 8);
	msgs_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_soa_query, setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_queries, setup, teardown),
		cmocka_unit_test_setup_teardown(test_malformed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_axfr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_xfr_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ixfr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ixfr_special, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tsig_axfr, setup, teardown),
		cmocka_unit_test_setup_teardown(test_axfr_zone_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_udp_truncation, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
