/*
 * Tests of the wire-form zone transfer (signer/dns_xfr.h dns_xfr_fill, with
 * zonesigner's zone_wire_iter and signer/dns_wire.h) against the ldns path
 * it replaced (dns_xfr_next, built on zone_name_rrs): on zones of a few
 * thousand names (devices, revoked devices, extra apex NS, names with other
 * types and odd bytes, after changes), the RR streams must be equal RR by RR
 * in canonical wire form, for message sizes from small to 64 KiB, also when
 * the zone changes while both transfers are under way (names added and
 * removed before and after the position, a name split across two messages,
 * several versions), and for IXFR. The messages themselves must be valid:
 * ldns parses them, each stays within its size, and TSIG-signed transfers
 * through dns_answer verify message by message with dns_tsig_verify().
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
#include "signer/dns_wire.h"
#include "signer/dns_xfr.h"
#include "test_dns_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_ldns.h"

#define NDEV 3000
#define KEY "c2VjcmV0LWtleS1udW1iZXItb25lLWZvci10ZXN0cyE="

/* A transfer as a list of RRs in canonical wire form. */
struct rr {
	uint8_t *w;
	size_t len;
};

struct rrs {
	struct rr *v;
	size_t n, cap;
};

struct fix {
	struct tds_zone tz;
	struct dns_journal journal;
};

static void rrs_push(struct rrs *v, const ldns_rr *rr)
{
	ldns_rr *c = ldns_rr_clone(rr);
	uint8_t *w = NULL;
	size_t len = 0;

	assert_non_null(c);
	ldns_rr2canonical(c);
	assert_int_equal(ldns_rr2wire(&w, c, LDNS_SECTION_ANSWER, &len), LDNS_STATUS_OK);
	ldns_rr_free(c);
	if (v->n == v->cap) {
		v->cap = v->cap ? 2 * v->cap : 1024;
		v->v = realloc(v->v, v->cap * sizeof(*v->v));
		assert_non_null(v->v);
	}
	v->v[v->n].w = w;
	v->v[v->n++].len = len;
}

static void rrs_free(struct rrs *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].w);
	free(v->v);
	memset(v, 0, sizeof(*v));
}

static void rrs_equal(const struct rrs *a, const struct rrs *b)
{
	assert_int_equal(a->n, b->n);
	for (size_t i = 0; i < a->n; i++) {
		if (a->v[i].len != b->v[i].len || memcmp(a->v[i].w, b->v[i].w, a->v[i].len) != 0)
			fail_msg("RR %zu of %zu differs", i, a->n);
	}
}

/* Length of the owner name at the start of a canonical RR. */
static size_t owner_len(const uint8_t *w, size_t len)
{
	size_t p = 0;

	while (p < len && w[p] != 0)
		p += 1 + (size_t)w[p];
	assert_true(p < len);
	return p + 1;
}

static int rr_cmp(const void *pa, const void *pb)
{
	const struct rr *a = pa, *b = pb;

	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->w, b->w, a->len);
}

/*
 * Once the zone moved on, the RRs of a name are its live RRs with the
 * net difference reverted, so their order inside the name depends on when
 * each path read it; the names, their order and each name's RRs may not.
 * Sort the RRs inside each run of one owner.
 */
static void rrs_norm(struct rrs *v)
{
	for (size_t i = 0; i < v->n;) {
		size_t ol = owner_len(v->v[i].w, v->v[i].len), e = i + 1;
		while (e < v->n && owner_len(v->v[e].w, v->v[e].len) == ol &&
		       memcmp(v->v[e].w, v->v[i].w, ol) == 0)
			e++;
		qsort(v->v + i, e - i, sizeof(*v->v), rr_cmp);
		i = e;
	}
}

/* Some RRs of the old path's stream (all when @p max is 0). */
static void pull_old(struct dns_xfr *x, struct rrs *v, size_t max)
{
	const ldns_rr *rr;

	for (size_t i = 0; max == 0 || i < max; i++) {
		assert_int_equal(dns_xfr_next(x, &rr), 0);
		if (rr == NULL)
			return;
		rrs_push(v, rr);
	}
}

/* Some messages of the wire path (all when @p max is 0): each is parsed by
 * ldns, holds at least one RR and stays within @p limit. Returns whether
 * the transfer ended. */
static bool pull_new(struct dns_xfr *x, struct rrs *v, size_t limit, size_t max)
{
	for (size_t i = 0; max == 0 || i < max; i++) {
		struct dns_wire_msg m;
		ldns_pkt *p = NULL;
		uint8_t *w = NULL;
		size_t len = 0;
		bool end = false;

		assert_int_equal(dns_wire_msg_init(&m, 77, 0x8400, limit), 0);
		assert_int_equal(dns_xfr_fill(x, &m, &end), 0);
		if (m.an == 0) {
			assert_true(end);
			dns_wire_msg_clear(&m);
			return true;
		}
		dns_wire_msg_take(&m, &w, &len);
		assert_true(len <= limit);
		assert_int_equal(ldns_wire2pkt(&p, w, len), LDNS_STATUS_OK);
		assert_int_equal(ldns_pkt_id(p), 77);
		assert_true(ldns_pkt_ancount(p) > 0);
		for (size_t k = 0; k < ldns_pkt_ancount(p); k++)
			rrs_push(v, ldns_rr_list_rr(ldns_pkt_answer(p), k));
		ldns_pkt_free(p);
		free(w);
		if (end)
			return true;
	}
	return false;
}

static void stream_old_axfr(struct fix *f, struct rrs *v)
{
	struct dns_xfr *x = NULL;

	assert_int_equal(dns_xfr_axfr_new(f->tz.z, &f->journal, &x), 0);
	pull_old(x, v, 0);
	dns_xfr_free(x);
}

static void stream_new_axfr(struct fix *f, struct rrs *v, size_t limit)
{
	struct dns_xfr *x = NULL;

	assert_int_equal(dns_xfr_axfr_new(f->tz.z, &f->journal, &x), 0);
	assert_true(pull_new(x, v, limit, 0));
	assert_int_equal(dns_xfr_count(x), v->n);
	dns_xfr_free(x);
}

/* Names that are not devices: other types, an extra NS at the apex, odd
 * bytes in a label (an escaped dot, a zero byte, upper case folded). */
static const char *const extra[] = {
	"iotregistry.test. 3600 IN NS ns2.example.net.",
	"iotregistry.test. 3600 IN TXT \"registry apex\"",
	"www.iotregistry.test. 3600 IN A 192.0.2.10",
	"www.iotregistry.test. 3600 IN AAAA 2001:db8::10",
	"www.iotregistry.test. 3600 IN TXT \"hello\" \"world\"",
	"mail.iotregistry.test. 3600 IN MX 10 mx.Example.NET.",
	"alias.iotregistry.test. 600 IN CNAME www.iotregistry.test.",
	"a.b.c.deep.iotregistry.test. 60 IN A 192.0.2.77",
	"we\\.ird.iotregistry.test. 60 IN TXT \"dot in a label\"",
	"\\000z.IOTREGISTRY.test. 60 IN TXT \"zero byte\"",
	"zz.iotregistry.test. 60 IN TXT \"last name\"",
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	assert_int_equal(tds_zone_init(&f->tz, NULL, NDEV), 0);
	f->journal = dns_journal_mem_ops(f->tz.journal);
	/* After changes: other names and types, revoked devices, new ones. */
	assert_int_equal(tds_zone_rrs(&f->tz, extra, sizeof(extra) / sizeof(extra[0]), NULL, 0),
			 0);
	for (uint32_t i = 0; i < NDEV; i += 97)
		assert_int_equal(tds_zone_remove(&f->tz, i), 0);
	assert_int_equal(tds_zone_add(&f->tz, 40), 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	tds_zone_free(&f->tz);
	free(f);
	return 0;
}

static void test_axfr_equal(void **state)
{
	struct fix *f = *state;
	struct rrs old = { 0 };
	static const size_t sizes[] = { 700, 1500, 16384, 65535 };

	stream_old_axfr(f, &old);
	/* Apex: SOA, 2 NS, TXT, 2 DNSKEY, NSEC, 5 RRSIGs; each device 4 RRs;
	 * www 8 RRs and the 6 other names 4 each; the SOA again. */
	assert_int_equal(old.n, 12 + (NDEV - 31 + 40) * 4 + 8 + 6 * 4 + 1);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		struct rrs got = { 0 };
		stream_new_axfr(f, &got, sizes[i]);
		rrs_equal(&got, &old);
		rrs_free(&got);
	}
	rrs_free(&old);
}

/* Old and new transfer started at one serial, the zone changed under both. */
static void test_axfr_changes(void **state)
{
	struct fix *f = *state;
	struct dns_xfr *xo = NULL, *xn = NULL;
	struct rrs snap = { 0 }, old = { 0 }, got = { 0 };
	uint32_t s0 = zone_serial(f->tz.z);
	const char *const www[] = { "www.iotregistry.test. 3600 IN A 192.0.2.10" };
	const char *const www2[] = { "www.iotregistry.test. 3600 IN A 192.0.2.11" };

	stream_old_axfr(f, &snap);
	assert_int_equal(dns_xfr_axfr_new(f->tz.z, &f->journal, &xo), 0);
	assert_int_equal(dns_xfr_axfr_new(f->tz.z, &f->journal, &xn), 0);
	/* Odd message sizes split names across messages. */
	assert_false(pull_new(xn, &got, 1000, 7));
	pull_old(xo, &old, 500);
	assert_int_equal(tds_zone_add(&f->tz, 25), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 1), 0);
	assert_int_equal(tds_zone_remove(&f->tz, NDEV - 2), 0);
	assert_false(pull_new(xn, &got, 1300, 40));
	pull_old(xo, &old, 3000);
	assert_int_equal(tds_zone_rrs(&f->tz, www2, 1, www, 1), 0);
	assert_int_equal(tds_zone_remove(&f->tz, NDEV + 45), 0); /* added since it began */
	assert_int_equal(tds_zone_add(&f->tz, 3), 0);
	assert_true(pull_new(xn, &got, 2000, 0));
	pull_old(xo, &old, 0);
	assert_int_equal(zone_serial(f->tz.z), s0 + 6);
	assert_int_equal(dns_xfr_followed(xn), 2);
	assert_int_equal(dns_xfr_followed(xo), 2);
	/* The first and last RR are the SOA of the version that was started. */
	assert_int_equal(got.v[0].len, snap.v[0].len);
	assert_memory_equal(got.v[0].w, snap.v[0].w, snap.v[0].len);
	assert_int_equal(got.v[got.n - 1].len, snap.v[0].len);
	assert_memory_equal(got.v[got.n - 1].w, snap.v[0].w, snap.v[0].len);
	rrs_norm(&got);
	rrs_norm(&old);
	rrs_norm(&snap);
	rrs_equal(&got, &snap);
	rrs_equal(&old, &snap);
	dns_xfr_free(xo);
	dns_xfr_free(xn);
	rrs_free(&old);
	rrs_free(&got);
	rrs_free(&snap);

	/* A change before the first message: the whole walk goes through the
	 * journal and is still the version the transfer started with. */
	stream_old_axfr(f, &snap);
	assert_int_equal(dns_xfr_axfr_new(f->tz.z, &f->journal, &xn), 0);
	assert_int_equal(tds_zone_add(&f->tz, 2), 0);
	assert_true(pull_new(xn, &got, 65535, 0));
	assert_int_equal(dns_xfr_followed(xn), 1);
	rrs_norm(&got);
	rrs_norm(&snap);
	rrs_equal(&got, &snap);
	dns_xfr_free(xn);
	rrs_free(&got);
	rrs_free(&snap);

	/* Without the journal's diffs it cannot go on mixing two versions. */
	assert_int_equal(dns_xfr_axfr_new(f->tz.z, &f->journal, &xn), 0);
	assert_false(pull_new(xn, &got, 1000, 2));
	assert_int_equal(tds_zone_add(&f->tz, 1), 0);
	dns_journal_mem_reset(f->tz.journal);
	{
		struct dns_wire_msg m;
		bool end;
		assert_int_equal(dns_wire_msg_init(&m, 1, 0x8400, 1000), 0);
		assert_int_equal(dns_xfr_fill(xn, &m, &end), DNS_ECHANGED);
		dns_wire_msg_clear(&m);
	}
	dns_xfr_free(xn);
	rrs_free(&got);
}

static void test_ixfr_equal(void **state)
{
	struct fix *f = *state;
	struct dns_xfr *xo = NULL, *xn = NULL;
	struct rrs old = { 0 }, got = { 0 };
	uint32_t s = zone_serial(f->tz.z);

	assert_int_equal(tds_zone_add(&f->tz, 5), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 3), 0);
	for (uint32_t from = s - 2; from != s + 3; from++) {
		assert_int_equal(dns_xfr_ixfr_new(f->tz.z, &f->journal, from, 0, &xo), 0);
		assert_int_equal(dns_xfr_ixfr_new(f->tz.z, &f->journal, from, 0, &xn), 0);
		pull_old(xo, &old, 0);
		assert_true(pull_new(xn, &got, 900, 0));
		assert_true(old.n >= (from == s + 2 ? 1u : 5u));
		rrs_equal(&got, &old);
		dns_xfr_free(xo);
		dns_xfr_free(xn);
		rrs_free(&old);
		rrs_free(&got);
	}
}

/* An RR too large for the message: an error, not an endless loop. */
static void test_too_small(void **state)
{
	struct fix *f = *state;
	struct dns_xfr *x = NULL;
	struct dns_wire_msg m;
	bool end;

	assert_int_equal(dns_xfr_axfr_new(f->tz.z, &f->journal, &x), 0);
	assert_int_equal(dns_wire_msg_init(&m, 1, 0x8400, 60), 0);
	assert_int_equal(dns_xfr_fill(x, &m, &end), DNS_ERANGE);
	assert_int_equal(m.an, 0);
	dns_wire_msg_clear(&m);
	dns_xfr_free(x);
}

/*
 * An AXFR through dns_answer with TSIG and EDNS, messages of up to
 * @p msg_size bytes (0: the default, 64 KiB): each message parses, stays
 * within the size, carries the question only in the first, and verifies
 * with dns_tsig_verify() chained from the request MAC. Its RRs go to @p got;
 * returns the number of messages.
 */
static size_t answer_axfr_over(struct fix *f, size_t msg_size, struct rrs *got, size_t *over)
{
	struct dns_answer_env env = { 0 };
	struct dns_keyring *kr = NULL;
	struct dns_acl *acl = NULL;
	struct dns_answer *a = NULL;
	struct sockaddr_storage sa;
	ldns_pkt *q = NULL;
	ldns_rdf *mac = NULL;
	uint8_t *w = NULL;
	size_t wl, msgs = 0, limit = msg_size ? msg_size : DNS_WIRE_MAX;

	assert_int_equal(dns_keyring_new(&kr), 0);
	assert_int_equal(dns_keyring_add(kr, "xfr.key", "hmac-sha512", KEY), 0);
	assert_int_equal(dns_acl_new(&acl), 0);
	assert_int_equal(dns_acl_add(acl, "127.0.0.1", "xfr.key"), 0);
	env.zone = f->tz.z;
	env.journal = &f->journal;
	env.acl = acl;
	env.keys = kr;
	env.msg_size = msg_size;
	assert_int_equal(ldns_pkt_query_new_frm_str(&q, "IotRegistry.test.", LDNS_RR_TYPE_AXFR,
						    LDNS_RR_CLASS_IN, 0), LDNS_STATUS_OK);
	ldns_pkt_set_id(q, 999);
	ldns_pkt_set_edns_udp_size(q, 1232);
	assert_int_equal(ldns_pkt_tsig_sign(q, "xfr.key.", KEY, 300, "hmac-sha512.", NULL),
			 LDNS_STATUS_OK);
	mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(q), 3));
	assert_int_equal(ldns_pkt2wire(&w, q, &wl), LDNS_STATUS_OK);
	assert_int_equal(dns_addr_parse("127.0.0.1", 1, &sa), 0);
	assert_int_equal(dns_answer_new(&env, w, wl, (struct sockaddr *)&sa, true,
					(int64_t)time(NULL), &a), 0);
	free(w);
	for (;;) {
		const struct dns_tsig_key *k = NULL;
		ldns_rdf *next = NULL;
		ldns_pkt *p = NULL;
		uint8_t *msg = NULL;
		size_t len;

		assert_int_equal(dns_answer_next(a, &msg, &len), 0);
		if (msg == NULL)
			break;
		assert_int_equal(ldns_wire2pkt(&p, msg, len), LDNS_STATUS_OK);
		if (len > limit) {
			/* Only for an RR that does not fit the size by itself. */
			size_t largest = 0;
			for (size_t i = 0; i < ldns_pkt_ancount(p); i++) {
				size_t n = ldns_rr_uncompressed_size(ldns_rr_list_rr(ldns_pkt_answer(p), i));
				largest = n > largest ? n : largest;
			}
			if (over == NULL || largest < limit - 256)
				fail_msg("message %zu has %zu bytes, more than %zu (largest RR %zu)",
					 msgs, len, limit, largest);
			(*over)++;
		}
		assert_int_equal(ldns_pkt_qdcount(p), msgs == 0 ? 1 : 0);
		assert_true(ldns_pkt_ancount(p) > 0);
		assert_true(ldns_pkt_aa(p));
		assert_true(ldns_pkt_edns(p));
		/* The first message covers the request MAC and every variable
		 * (the daemon's own check), each later one the prior MAC and the
		 * timers only (RFC 8945 section 5.3.1). */
		if (msgs == 0) {
			assert_int_equal(dns_tsig_verify(kr, p, msg, len, mac, (int64_t)time(NULL),
							 &k, NULL), DNS_TSIG_OK);
		} else {
			assert_true(ldns_pkt_tsig_verify_next(p, msg, len, "xfr.key.", KEY, mac, 1));
			assert_false(ldns_pkt_tsig_verify_next(p, msg, len, "xfr.key.", KEY, mac, 0));
		}
		next = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(p), 3));
		for (size_t i = 0; i < ldns_pkt_ancount(p); i++)
			rrs_push(got, ldns_rr_list_rr(ldns_pkt_answer(p), i));
		ldns_rdf_deep_free(mac);
		mac = next;
		ldns_pkt_free(p);
		free(msg);
		msgs++;
	}
	assert_int_equal(dns_answer_info(a)->messages, msgs);
	assert_int_equal(dns_answer_info(a)->rrs, got->n);
	ldns_rdf_deep_free(mac);
	ldns_pkt_free(q);
	dns_answer_free(a);
	dns_acl_free(acl);
	dns_keyring_free(kr);
	return msgs;
}

static size_t answer_axfr(struct fix *f, size_t msg_size, struct rrs *got)
{
	return answer_axfr_over(f, msg_size, got, NULL);
}

/* Through dns_answer with its default 64 KiB messages and TSIG: several
 * messages, each verified, and the stream equal to the ldns path's. */
static void test_answer_tsig(void **state)
{
	struct fix *f = *state;
	struct rrs old = { 0 }, got = { 0 };

	assert_true(answer_axfr(f, 0, &got) >= 3);
	stream_old_axfr(f, &old);
	rrs_equal(&got, &old);
	rrs_free(&got);
	rrs_free(&old);
}

/*
 * A smaller transfer message size (regsignd.yaml dns.transfer-message-size,
 * whose least value is 4096): the same zone, RR for RR, in more messages,
 * each within the size with its OPT and TSIG RRs; the largest size gives
 * the default's messages.
 */
static void test_answer_msg_size(void **state)
{
	struct fix *f = *state;
	struct rrs old = { 0 }, big = { 0 }, dflt = { 0 }, small = { 0 }, mid = { 0 };
	size_t n_big, n_dflt, n_small, n_mid;

	n_dflt = answer_axfr(f, 0, &dflt);
	n_big = answer_axfr(f, 65535, &big);
	n_mid = answer_axfr(f, 16384, &mid);
	n_small = answer_axfr(f, 4096, &small);
	assert_int_equal(n_big, n_dflt);
	/* The zone is over a megabyte (19 messages of 64 KiB, 67 of 16 KiB, 275
	 * of 4 KiB): the number of messages follows the size. */
	assert_true(n_mid >= 3 * n_big);
	assert_true(n_small >= 3 * n_mid);
	stream_old_axfr(f, &old);
	rrs_equal(&dflt, &old);
	rrs_equal(&big, &old);
	rrs_equal(&mid, &old);
	rrs_equal(&small, &old);
	rrs_free(&old);
	rrs_free(&dflt);
	rrs_free(&big);
	rrs_free(&mid);
	rrs_free(&small);
}

/*
 * An RR larger than the transfer message size (a published TXT of ~5 KB at
 * a size of 4096) does not stop the transfer: it goes in one message of up
 * to 64 KiB, every other message keeps the size, and the zone is the same
 * RR for RR. At the default size nothing is over it.
 */
static void test_answer_big_rr(void **state)
{
	struct fix *f = *state;
	struct rrs old = { 0 }, small = { 0 }, dflt = { 0 };
	char txt[6000];
	const char *const add[] = { txt };
	size_t over = 0, p;

	p = (size_t)snprintf(txt, sizeof(txt), "big.iotregistry.test. 60 IN TXT");
	for (int i = 0; i < 20; i++) {
		p += (size_t)snprintf(txt + p, sizeof(txt) - p, " \"");
		memset(txt + p, 'a' + i, 250);
		p += 250;
		p += (size_t)snprintf(txt + p, sizeof(txt) - p, "\"");
	}
	assert_int_equal(tds_zone_rrs(&f->tz, add, 1, NULL, 0), 0);
	answer_axfr_over(f, 4096, &small, &over);
	assert_int_equal(over, 1);
	over = 0;
	answer_axfr_over(f, 0, &dflt, &over);
	assert_int_equal(over, 0);
	stream_old_axfr(f, &old);
	rrs_equal(&small, &old);
	rrs_equal(&dflt, &old);
	rrs_free(&old);
	rrs_free(&small);
	rrs_free(&dflt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_axfr_equal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_axfr_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ixfr_equal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_tsig, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_msg_size, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answer_big_rr, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
