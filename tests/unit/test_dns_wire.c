/*
 * Tests of the wire-form message writer (signer/dns_wire.h): what it writes
 * parses back with ldns to the same question, owners, types, TTLs and RDATA;
 * owners are compressed (a repeated owner costs a pointer, a new name under
 * the same origin its own labels and a pointer) and pointers never aim past
 * the 14 bits they have, even in a 64 KiB message; the size limit is exact
 * and a refused RR leaves the message unchanged; malformed names are
 * refused; the OPT RR carries size and DO. TSIG: a chain of messages signed
 * in wire form verifies with the daemon's own check (dns_tsig_verify) for
 * the first and with ldns for the later ones (timers only), for both
 * algorithms, and fails with another secret or the wrong prior MAC.
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

#include "signer/dns_tsig.h"
#include "signer/dns_wire.h"
#include "zonesigner/zone_ldns.h"

#define K1 "c2VjcmV0LWtleS1udW1iZXItb25lLWZvci10ZXN0cyE="
#define K2 "YW5vdGhlci1zZWNyZXQta2V5LWZvci10aGUtdGVzdHM="

static ldns_rdf *dname(const char *s)
{
	ldns_rdf *d = NULL;

	assert_int_equal(ldns_str2rdf_dname(&d, s), LDNS_STATUS_OK);
	return d;
}

/* Add an RR with owner @p name and @p rdlen bytes of RDATA filled with @p c. */
static int add(struct dns_wire_msg *m, const char *name, uint16_t type, size_t rdlen, int c)
{
	ldns_rdf *d = dname(name);
	uint8_t rd[1024];
	int r;

	memset(rd, c, sizeof(rd));
	r = dns_wire_msg_add_rr(m, ldns_rdf_data(d), ldns_rdf_size(d), type, 1, 3600, rd, rdlen);
	ldns_rdf_deep_free(d);
	return r;
}

static ldns_pkt *parse(struct dns_wire_msg *m, uint8_t **w, size_t *len)
{
	ldns_pkt *p = NULL;

	dns_wire_msg_take(m, w, len);
	assert_int_equal(ldns_wire2pkt(&p, *w, *len), LDNS_STATUS_OK);
	return p;
}

static void check_rr(const ldns_pkt *p, size_t i, const char *owner, uint16_t type,
		     size_t rdlen)
{
	const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), i);
	ldns_rdf *d = dname(owner);

	assert_non_null(rr);
	assert_int_equal(ldns_rdf_size(ldns_rr_owner(rr)), ldns_rdf_size(d));
	assert_memory_equal(ldns_rdf_data(ldns_rr_owner(rr)), ldns_rdf_data(d), ldns_rdf_size(d));
	assert_int_equal(ldns_rr_get_type(rr), type);
	assert_int_equal(ldns_rr_ttl(rr), 3600);
	assert_int_equal(ldns_rr_get_class(rr), LDNS_RR_CLASS_IN);
	/* Unknown types keep their RDATA as one blob. */
	if (rdlen > 0) {
		assert_int_equal(ldns_rr_rd_count(rr), 1);
		assert_int_equal(ldns_rdf_size(ldns_rr_rdf(rr, 0)), rdlen);
	}
	ldns_rdf_deep_free(d);
}

static void test_compression(void **state)
{
	struct dns_wire_msg m;
	ldns_rdf *q = dname("iotregistry.test.");
	ldns_pkt *p;
	uint8_t *w = NULL;
	size_t len, before;

	(void)state;
	assert_int_equal(dns_wire_msg_init(&m, 4242, 0x8400, DNS_WIRE_MAX), 0);
	assert_int_equal(dns_wire_msg_question(&m, ldns_rdf_data(q), ldns_rdf_size(q), 252, 1), 0);
	/* The apex: all of it a pointer to the question. */
	before = m.len;
	assert_int_equal(add(&m, "iotregistry.test.", 65280, 4, 1), 0);
	assert_int_equal(m.len - before, 2 + 10 + 4);
	/* A new name: its own labels and a pointer. */
	before = m.len;
	assert_int_equal(add(&m, "1.8912230200031010008f.iotregistry.test.", 65281, 8, 2), 0);
	assert_int_equal(m.len - before, 2 + 21 + 2 + 10 + 8);
	/* The same name again: a pointer. */
	before = m.len;
	assert_int_equal(add(&m, "1.8912230200031010008f.iotregistry.test.", 65282, 8, 3), 0);
	assert_int_equal(m.len - before, 2 + 10 + 8);
	/* A name below it: one label and a pointer. */
	before = m.len;
	assert_int_equal(add(&m, "_device.1.8912230200031010008f.iotregistry.test.", 65283, 3, 4),
			 0);
	assert_int_equal(m.len - before, 8 + 2 + 10 + 3);
	/* Unrelated names, the root, upper case (not the same bytes). */
	assert_int_equal(add(&m, "www.example.net.", 65284, 5, 5), 0);
	assert_int_equal(add(&m, ".", 65285, 0, 6), 0);
	assert_int_equal(add(&m, "IOTREGISTRY.test.", 65286, 1, 7), 0);
	assert_int_equal(add(&m, "x.iotregistry.test.", 65287, 1, 8), 0);
	assert_int_equal(m.an, 8);
	assert_int_equal(dns_wire_msg_add_opt(&m, 1232, true), 0);
	p = parse(&m, &w, &len);
	assert_int_equal(ldns_pkt_id(p), 4242);
	assert_true(ldns_pkt_qr(p));
	assert_true(ldns_pkt_aa(p));
	assert_int_equal(ldns_pkt_qdcount(p), 1);
	assert_int_equal(ldns_pkt_ancount(p), 8);
	assert_true(ldns_pkt_edns(p));
	assert_int_equal(ldns_pkt_edns_udp_size(p), 1232);
	assert_true(ldns_pkt_edns_do(p));
	check_rr(p, 0, "iotregistry.test.", 65280, 4);
	check_rr(p, 1, "1.8912230200031010008f.iotregistry.test.", 65281, 8);
	check_rr(p, 2, "1.8912230200031010008f.iotregistry.test.", 65282, 8);
	check_rr(p, 3, "_device.1.8912230200031010008f.iotregistry.test.", 65283, 3);
	check_rr(p, 4, "www.example.net.", 65284, 5);
	check_rr(p, 5, ".", 65285, 0);
	check_rr(p, 7, "x.iotregistry.test.", 65287, 1);
	/* The upper-case owner keeps its bytes. */
	assert_int_equal(ldns_rdf_data(ldns_rr_owner(ldns_rr_list_rr(ldns_pkt_answer(p), 6)))[1],
			 'I');
	ldns_pkt_free(p);
	free(w);
	ldns_rdf_deep_free(q);
}

/* Pointers can only reach the first 16 KiB: a full 64 KiB message of
 * alternating names must still decode to the right owners. */
static void test_far_pointers(void **state)
{
	static const char *const names[] = {
		"a.example.test.", "b.a.example.test.", "b.a.example.test.", "c.example.test.",
		"example.test.", "d.c.example.test.",
	};
	struct dns_wire_msg m;
	ldns_pkt *p;
	uint8_t *w = NULL;
	size_t len, n = 0;

	(void)state;
	assert_int_equal(dns_wire_msg_init(&m, 1, 0x8400, DNS_WIRE_MAX), 0);
	while (add(&m, names[n % 6], (uint16_t)(65280 + n % 6), 100 + n % 7, (int)n) == 0)
		n++;
	assert_true(n > 500);
	assert_int_equal(m.an, n);
	assert_true(m.len <= DNS_WIRE_MAX);
	assert_true(m.len + 10 + 100 + 20 > DNS_WIRE_MAX);
	/* A refused RR left nothing behind. */
	len = m.len;
	assert_int_equal(add(&m, "z.example.test.", 65280, 1000, 0), DNS_ERANGE);
	assert_int_equal(m.len, len);
	p = parse(&m, &w, &len);
	assert_int_equal(ldns_pkt_ancount(p), n);
	for (size_t i = 0; i < n; i++)
		check_rr(p, i, names[i % 6], (uint16_t)(65280 + i % 6), 100 + i % 7);
	ldns_pkt_free(p);
	free(w);
}

static void test_limits(void **state)
{
	struct dns_wire_msg m;
	const uint8_t bad[] = { 3, 'a', 'b', 0 }, longlabel[] = { 64 };
	uint8_t *w = NULL;
	size_t len;

	(void)state;
	assert_int_equal(dns_wire_msg_init(&m, 1, 0, 11), DNS_EINVAL);
	assert_int_equal(dns_wire_msg_init(&m, 1, 0, DNS_WIRE_MAX + 1), DNS_EINVAL);
	assert_int_equal(dns_wire_msg_init(&m, 1, 0x8400, 12 + 18 + 10 + 5), 0);
	assert_int_equal(dns_wire_msg_add_rr(&m, bad, sizeof(bad), 1, 1, 0, NULL, 0), DNS_EINVAL);
	assert_int_equal(dns_wire_msg_add_rr(&m, longlabel, sizeof(longlabel), 1, 1, 0, NULL, 0),
			 DNS_EINVAL);
	assert_int_equal(dns_wire_msg_add_rr(&m, bad, sizeof(bad), 1, 1, 0, bad, 70000),
			 DNS_EINVAL);
	/* Exactly the limit fits, one byte more does not. */
	assert_int_equal(add(&m, "abcdefgh.example.", 65280, 6, 0), DNS_ERANGE);
	assert_int_equal(m.len, 12);
	assert_int_equal(add(&m, "abcdefgh.example.", 65280, 5, 0), 0);
	assert_int_equal(m.len, 12 + 18 + 10 + 5);
	assert_int_equal(dns_wire_msg_add_opt(&m, 512, false), 0);
	/* Nothing goes into the answer section after the OPT RR. */
	assert_int_equal(add(&m, ".", 65280, 0, 0), DNS_EINVAL);
	dns_wire_msg_take(&m, &w, &len);
	assert_int_equal(len, 12 + 18 + 10 + 5 + DNS_WIRE_OPT_LEN);
	assert_int_equal(w[7], 1);   /* ANCOUNT */
	assert_int_equal(w[11], 1);  /* ARCOUNT */
	free(w);
	dns_wire_msg_clear(&m);
}

/* Sign a chain of three messages with @p alg and check each. */
static void tsig_chain(const char *alg, const char *secret, const char *other)
{
	struct dns_keyring *kr = NULL;
	const struct dns_tsig_key *key, *k = NULL;
	struct dns_wire_tsig *t = NULL;
	ldns_pkt *q = NULL;
	ldns_rdf *mac;
	int64_t now = (int64_t)time(NULL);

	assert_int_equal(dns_keyring_new(&kr), 0);
	assert_int_equal(dns_keyring_add(kr, "Xfr.Key", alg, secret), 0);
	key = dns_keyring_find(kr, "xfr.key.");
	assert_non_null(key);
	/* The request the chain starts from. */
	assert_int_equal(ldns_pkt_query_new_frm_str(&q, "iotregistry.test.", LDNS_RR_TYPE_AXFR,
						    LDNS_RR_CLASS_IN, 0), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_tsig_sign(q, key->name, secret, 300, key->alg, NULL),
			 LDNS_STATUS_OK);
	mac = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(q), 3));
	assert_int_equal(dns_wire_tsig_new(key, ldns_rdf_data(mac) + 2, ldns_rdf_size(mac) - 2,
					   &t), 0);
	for (int i = 0; i < 3; i++) {
		struct dns_wire_msg m;
		ldns_pkt *p = NULL;
		ldns_rdf *next;
		uint8_t *w = NULL, *bad;
		size_t len, signed_len;

		assert_int_equal(dns_wire_msg_init(&m, 31337, 0x8400, 4000), 0);
		for (int k2 = 0; k2 < 20; k2++)
			assert_int_equal(add(&m, "n.iotregistry.test.", 65280, 50, i + k2), 0);
		dns_wire_msg_take(&m, &w, &len);
		signed_len = len;
		assert_int_equal(dns_wire_tsig_sign(t, w, &signed_len, DNS_WIRE_MAX, now), 0);
		assert_int_equal(signed_len, len + dns_wire_tsig_len(t));
		assert_int_equal(ldns_wire2pkt(&p, w, signed_len), LDNS_STATUS_OK);
		assert_non_null(ldns_pkt_tsig(p));
		assert_int_equal(ldns_pkt_arcount(p), 0);   /* ldns keeps the TSIG apart */
		if (i == 0) {
			assert_int_equal(dns_tsig_verify(kr, p, w, signed_len, mac, now, &k, NULL),
					 DNS_TSIG_OK);
			assert_ptr_equal(k, key);
		} else {
			assert_true(ldns_pkt_tsig_verify_next(p, w, signed_len, key->name, secret,
							      mac, 1));
		}
		/* Another secret, or one flipped bit of the message: no. */
		assert_false(ldns_pkt_tsig_verify_next(p, w, signed_len, key->name,
						       other, mac, i > 0));
		bad = malloc(signed_len);
		assert_non_null(bad);
		memcpy(bad, w, signed_len);
		bad[40] ^= 1;
		assert_false(ldns_pkt_tsig_verify_next(p, bad, signed_len, key->name, secret, mac,
						       i > 0));
		free(bad);
		next = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(p), 3));
		/* The chain is a chain: the request MAC does not do for later ones. */
		if (i > 0)
			assert_false(ldns_pkt_tsig_verify_next(p, w, signed_len, key->name, secret,
							       next, 1));
		ldns_rdf_deep_free(mac);
		mac = next;
		ldns_pkt_free(p);
		free(w);
	}
	ldns_rdf_deep_free(mac);
	ldns_pkt_free(q);
	dns_wire_tsig_free(t);
	dns_keyring_free(kr);
}

static void test_tsig(void **state)
{
	(void)state;
	tsig_chain("hmac-sha256", K1, K2);
	tsig_chain("hmac-sha512", K2, K1);
}

static void test_tsig_room(void **state)
{
	struct dns_keyring *kr = NULL;
	struct dns_wire_tsig *t = NULL;
	uint8_t msg[64] = { 0 };
	size_t len = 12;

	(void)state;
	assert_int_equal(dns_keyring_new(&kr), 0);
	assert_int_equal(dns_keyring_add(kr, "k", "hmac-sha256", K1), 0);
	assert_int_equal(dns_wire_tsig_new(dns_keyring_find(kr, "k"), NULL, 0, &t), 0);
	assert_int_equal(dns_wire_tsig_sign(t, msg, &len, sizeof(msg), 0), DNS_ERANGE);
	assert_int_equal(len, 12);
	len = 5;
	assert_int_equal(dns_wire_tsig_sign(t, msg, &len, sizeof(msg), 0), DNS_EFORMAT);
	dns_wire_tsig_free(t);
	dns_wire_tsig_free(NULL);
	dns_keyring_free(kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compression),
		cmocka_unit_test(test_far_pointers),
		cmocka_unit_test(test_limits),
		cmocka_unit_test(test_tsig),
		cmocka_unit_test(test_tsig_room),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
