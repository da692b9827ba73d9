/*
 * Tests of TSIG keys and checks (signer/dns_tsig.h), against ldns's own
 * signing: keyring rules (algorithms, secret length, base64, duplicates),
 * a valid request, tampering, unknown keys, algorithm substitution, the time
 * window, error RRs, the MAC chain of a multi-message answer checked with
 * ldns_pkt_tsig_verify_next, and the signer's output equal to ldns's own.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "signer/dns_tsig.h"

#define S256 "c2VjcmV0LWtleS1udW1iZXItb25lLWZvci10ZXN0cyE="
#define S512 "YW5vdGhlci1zZWNyZXQta2V5LWZvci10aGUtdGVzdHM="

static struct dns_keyring *ring(void)
{
	struct dns_keyring *kr = NULL;

	assert_int_equal(dns_keyring_new(&kr), 0);
	assert_int_equal(dns_keyring_add(kr, "Key-One", "hmac-sha256", S256), 0);
	assert_int_equal(dns_keyring_add_spec(kr, "hmac-sha512.:key-two.:" S512), 0);
	return kr;
}

static ldns_pkt *signed_query(const char *key, const char *secret, const char *alg,
			      uint8_t **wire, size_t *len)
{
	ldns_pkt *q = NULL, *p = NULL;

	assert_int_equal(ldns_pkt_query_new_frm_str(&q, "iotregistry.test.", LDNS_RR_TYPE_SOA,
						    LDNS_RR_CLASS_IN, 0),
			 LDNS_STATUS_OK);
	ldns_pkt_set_id(q, 99);
	if (key != NULL)
		assert_int_equal(ldns_pkt_tsig_sign(q, key, secret, 300, alg, NULL), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt2wire(wire, q, len), LDNS_STATUS_OK);
	ldns_pkt_free(q);
	/* Check what a server would see: the message as parsed from the wire. */
	assert_int_equal(ldns_wire2pkt(&p, *wire, *len), LDNS_STATUS_OK);
	return p;
}

static void test_keyring(void **state)
{
	struct dns_keyring *kr = ring();
	const struct dns_tsig_key *k;

	(void)state;
	k = dns_keyring_find(kr, "KEY-ONE");
	assert_non_null(k);
	assert_string_equal(k->name, "key-one.");
	assert_string_equal(k->alg, "hmac-sha256.");
	assert_ptr_equal(dns_keyring_find(kr, "key-one."), k);
	assert_string_equal(dns_keyring_find(kr, "key-two")->alg, "hmac-sha512.");
	assert_null(dns_keyring_find(kr, "key-three"));
	assert_null(dns_keyring_find(kr, "key-on"));
	assert_null(dns_keyring_find(NULL, "key-one"));

	assert_int_equal(dns_keyring_add(kr, "key-one.", "hmac-sha256", S256), DNS_EINVAL);
	assert_int_equal(dns_keyring_add(kr, "k3", "hmac-md5", S256), DNS_EINVAL);
	assert_int_equal(dns_keyring_add(kr, "k3", "hmac-sha1", S256), DNS_EINVAL);
	/* ldns 1.8.3 cannot do hmac-sha384: refused rather than failing later. */
	assert_int_equal(dns_keyring_add(kr, "k3", "hmac-sha384", S256), DNS_EINVAL);
	assert_int_equal(dns_keyring_add(kr, "k3", "hmac-sha256", "c2hvcnQ="), DNS_EINVAL);
	assert_int_equal(dns_keyring_add(kr, "k3", "hmac-sha256", "not base64!"), DNS_EINVAL);
	assert_int_equal(dns_keyring_add(kr, "", "hmac-sha256", S256), DNS_EINVAL);
	assert_int_equal(dns_keyring_add_spec(kr, "hmac-sha256:k3"), DNS_EINVAL);
	assert_int_equal(dns_keyring_add_spec(kr, "k3"), DNS_EINVAL);
	assert_int_equal(dns_keyring_add_spec(kr, "hmac-sha256:k3:" S256), 0);
	dns_keyring_free(kr);
	dns_keyring_free(NULL);
}

static void test_verify(void **state)
{
	struct dns_keyring *kr = ring();
	const struct dns_tsig_key *k = NULL;
	ldns_rdf *mac = NULL;
	uint8_t *w = NULL;
	size_t wl;
	ldns_pkt *p;
	int64_t now = (int64_t)time(NULL);

	(void)state;
	p = signed_query(NULL, NULL, NULL, &w, &wl);
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now, &k, &mac), DNS_TSIG_UNSIGNED);
	assert_null(k);
	ldns_pkt_free(p);
	free(w);

	p = signed_query("key-one.", S256, "hmac-sha256.", &w, &wl);
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now, &k, &mac), DNS_TSIG_OK);
	assert_string_equal(k->name, "key-one.");
	assert_non_null(mac);
	assert_int_equal(ldns_rdf_compare(mac, ldns_rr_rdf(ldns_pkt_tsig(p), 3)), 0);
	ldns_rdf_deep_free(mac);
	/* Outside the 300 s window either way. */
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now + 400, &k, NULL),
			 DNS_TSIG_BADTIME);
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now - 400, &k, NULL),
			 DNS_TSIG_BADTIME);
	/* The error RR echoes the request, with an empty MAC. */
	ldns_pkt *resp = ldns_pkt_new();
	assert_int_equal(dns_tsig_error_rr(resp, p, DNS_TSIG_BADTIME), 0);
	assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(ldns_pkt_tsig(resp), 5)), 18);
	assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(ldns_pkt_tsig(resp), 4)), 99);
	assert_int_equal(ldns_rdf_size(ldns_rr_rdf(ldns_pkt_tsig(resp), 3)), 2);
	/* Replacing it does not leak the first. */
	assert_int_equal(dns_tsig_error_rr(resp, p, DNS_TSIG_BADSIG), 0);
	ldns_pkt_free(resp);
	/* One changed byte in the signed part (a letter of the question's
	 * name changes case: the same name, but not the same bytes). */
	w[14] ^= 0x20;
	ldns_pkt_free(p);
	assert_int_equal(ldns_wire2pkt(&p, w, wl), LDNS_STATUS_OK);
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now, &k, NULL), DNS_TSIG_BADSIG);
	ldns_pkt_free(p);
	free(w);

	/* Wrong secret, unknown key, another algorithm than the key's. */
	p = signed_query("key-one.", S512, "hmac-sha256.", &w, &wl);
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now, &k, NULL), DNS_TSIG_BADSIG);
	ldns_pkt_free(p);
	free(w);
	p = signed_query("key-nine.", S256, "hmac-sha256.", &w, &wl);
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now, &k, NULL), DNS_TSIG_BADKEY);
	assert_int_equal(dns_tsig_verify(NULL, p, w, wl, NULL, now, &k, NULL), DNS_TSIG_BADKEY);
	ldns_pkt_free(p);
	free(w);
	p = signed_query("key-one.", S256, "hmac-sha512.", &w, &wl);
	assert_int_equal(dns_tsig_verify(kr, p, w, wl, NULL, now, &k, NULL), DNS_TSIG_BADKEY);
	/* The message still has its TSIG RR after a refusal (no ldns leak). */
	assert_non_null(ldns_pkt_tsig(p));
	ldns_pkt_free(p);
	free(w);
	dns_keyring_free(kr);
}

static void test_signer_chain(void **state)
{
	struct dns_keyring *kr = ring();
	const struct dns_tsig_key *k = dns_keyring_find(kr, "key-two");
	struct dns_tsig_signer *s = NULL;
	ldns_rdf *prior;
	uint8_t *w = NULL;
	size_t wl;
	ldns_pkt *q = signed_query("key-two.", S512, "hmac-sha512.", &w, &wl);

	(void)state;
	free(w);
	prior = ldns_rdf_clone(ldns_rr_rdf(ldns_pkt_tsig(q), 3));
	assert_int_equal(dns_tsig_signer_new(k, prior, &s), 0);
	assert_null(dns_tsig_signer_mac(s));
	for (int i = 0; i < 4; i++) {
		ldns_pkt *m = ldns_pkt_new(), *back = NULL;
		ldns_rr *rr = NULL;
		ldns_pkt_set_id(m, 99);
		ldns_pkt_set_qr(m, true);
		assert_int_equal(ldns_rr_new_frm_str(&rr, "a.iotregistry.test. 60 IN TXT \"x\"", 0,
						     NULL, NULL),
				 LDNS_STATUS_OK);
		ldns_pkt_push_rr(m, LDNS_SECTION_ANSWER, rr);
		assert_int_equal(dns_tsig_signer_sign(s, m), 0);
		/* A message carrying a TSIG already is refused. */
		assert_int_equal(dns_tsig_signer_sign(s, m), DNS_EINVAL);
		assert_int_equal(ldns_pkt2wire(&w, m, &wl), LDNS_STATUS_OK);
		assert_int_equal(ldns_wire2pkt(&back, w, wl), LDNS_STATUS_OK);
		assert_true(ldns_pkt_tsig_verify_next(back, w, wl, "key-two.", S512, prior, i > 0));
		ldns_rdf_deep_free(prior);
		prior = ldns_rdf_clone(dns_tsig_signer_mac(s));
		assert_int_equal(ldns_rdf_compare(prior, ldns_rr_rdf(ldns_pkt_tsig(back), 3)), 0);
		ldns_pkt_free(back);
		ldns_pkt_free(m);
		free(w);
	}
	ldns_rdf_deep_free(prior);
	dns_tsig_signer_free(s);
	dns_tsig_signer_free(NULL);
	ldns_pkt_free(q);
	dns_keyring_free(kr);
}

/*
 * The signer computes its MACs with the wire-form signer (dns_wire.h); what
 * it sets on a packet must go out byte for byte as ldns's own signing would
 * make it: a key whose name shares the zone's suffix (ldns may compress the
 * TSIG owner), with and without EDNS, request and chained response.
 */
static void test_signer_as_ldns(void **state)
{
	struct dns_keyring *kr = NULL;
	const struct dns_tsig_key *k;

	(void)state;
	assert_int_equal(dns_keyring_new(&kr), 0);
	assert_int_equal(dns_keyring_add(kr, "xfr.iotregistry.test", "hmac-sha256", S256), 0);
	k = dns_keyring_find(kr, "xfr.iotregistry.test.");
	assert_non_null(k);
	for (int edns = 0; edns < 2; edns++) {
		for (int chained = 0; chained < 2; chained++) {
			bool same_second = false;
			/* Both sign at the current second: try again across a tick. */
			for (int tries = 0; tries < 5 && !same_second; tries++) {
				struct dns_tsig_signer *s = NULL;
				ldns_pkt *a = NULL, *b;
				ldns_rr *rr = NULL;
				ldns_rdf *req = NULL;
				uint8_t *wa = NULL, *wb = NULL;
				size_t la, lb;

				assert_int_equal(ldns_pkt_query_new_frm_str(
							 &a, "a.iotregistry.test.", LDNS_RR_TYPE_CNAME,
							 LDNS_RR_CLASS_IN, 0), LDNS_STATUS_OK);
				assert_int_equal(ldns_rr_new_frm_str(
							 &rr, "a.iotregistry.test. 60 IN CNAME "
							 "b.iotregistry.test.", 0, NULL, NULL),
						 LDNS_STATUS_OK);
				ldns_pkt_push_rr(a, LDNS_SECTION_ANSWER, rr);
				if (edns) {
					ldns_pkt_set_edns_udp_size(a, 1232);
					ldns_pkt_set_edns_do(a, true);
				}
				if (chained) {
					uint8_t mac[34] = { 0, 32, 1, 2, 3 };
					req = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_INT16_DATA,
								    sizeof(mac), mac);
					assert_non_null(req);
				}
				b = ldns_pkt_clone(a);
				assert_non_null(b);
				assert_int_equal(dns_tsig_signer_new(k, req, &s), 0);
				assert_int_equal(dns_tsig_signer_sign(s, a), 0);
				assert_int_equal(ldns_pkt_tsig_sign_next(b, k->name, k->secret, k->fudge,
									 k->alg, req, 0),
						 LDNS_STATUS_OK);
				same_second = ldns_rdf_compare(ldns_rr_rdf(ldns_pkt_tsig(a), 1),
							       ldns_rr_rdf(ldns_pkt_tsig(b), 1)) == 0;
				assert_int_equal(ldns_pkt2wire(&wa, a, &la), LDNS_STATUS_OK);
				assert_int_equal(ldns_pkt2wire(&wb, b, &lb), LDNS_STATUS_OK);
				if (same_second) {
					assert_int_equal(la, lb);
					assert_memory_equal(wa, wb, la);
				}
				free(wa);
				free(wb);
				ldns_rdf_deep_free(req);
				ldns_pkt_free(a);
				ldns_pkt_free(b);
				dns_tsig_signer_free(s);
			}
			assert_true(same_second);
		}
	}
	dns_keyring_free(kr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_keyring),
		cmocka_unit_test(test_verify),
		cmocka_unit_test(test_signer_chain),
		cmocka_unit_test(test_signer_as_ldns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
