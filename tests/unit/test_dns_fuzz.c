/*
 * Mutation test of the DNS listener's parser of received messages
 * (dns_answer_new and dns_answer_next): corrupted variants of a few seed
 * messages (queries, AXFR, a TSIG-signed IXFR, NOTIFY), generated from a
 * fixed seed and sent as if over UDP and over TCP, must each be dropped
 * (DNS_EFORMAT) or answered with messages ldns parses back, never crash,
 * hang or leak (the sanitizer build checks the last two). Built with
 * -DREGSIGN_LIBFUZZER the same entry point serves libFuzzer.
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
#include "signer/dns_tsig.h"
#include "test_dns_support.h"
#include "zonesigner/zone_ldns.h"

#define K1 "c2VjcmV0LWtleS1udW1iZXItb25lLWZvci10ZXN0cyE="

struct target {
	struct tds_zone tz;
	struct dns_journal journal;
	struct dns_acl *acl;
	struct dns_keyring *keys;
	struct dns_answer_env env;
};

static int target_init(struct target *t)
{
	memset(t, 0, sizeof(*t));
	if (tds_zone_init(&t->tz, NULL, 10) != 0 || tds_zone_add(&t->tz, 2) != 0 ||
	    dns_acl_new(&t->acl) != 0 || dns_acl_add(t->acl, "127.0.0.1", NULL) != 0 ||
	    dns_keyring_new(&t->keys) != 0 ||
	    dns_keyring_add(t->keys, "k1", "hmac-sha256", K1) != 0)
		return -1;
	t->journal = dns_journal_mem_ops(t->tz.journal);
	t->env.zone = t->tz.z;
	t->env.journal = &t->journal;
	t->env.acl = t->acl;
	t->env.keys = t->keys;
	t->env.msg_size = 1024;
	return 0;
}

static void target_free(struct target *t)
{
	tds_zone_free(&t->tz);
	dns_acl_free(t->acl);
	dns_keyring_free(t->keys);
}

/* One input through the responder; aborts on anything but a clean outcome. */
static void fuzz_one(struct target *t, const uint8_t *data, size_t len, bool tcp)
{
	struct sockaddr_storage sa;
	struct dns_answer *a = NULL;
	int r;

	if (dns_addr_parse("127.0.0.1:4000", 0, &sa) != 0)
		abort();
	r = dns_answer_new(&t->env, data, len, (struct sockaddr *)&sa, tcp, (int64_t)time(NULL),
			   &a);
	if (r == DNS_EFORMAT)
		return;
	if (r != 0) {
		fprintf(stderr, "dns_answer_new: %s\n", dns_strerror(r));
		abort();
	}
	for (int n = 0; n < 100000; n++) {
		uint8_t *msg = NULL;
		size_t ml = 0;
		ldns_pkt *p = NULL;
		r = dns_answer_next(a, &msg, &ml);
		if (r != 0) {
			fprintf(stderr, "dns_answer_next: %s\n", dns_strerror(r));
			abort();
		}
		if (msg == NULL)
			break;
		if (ldns_wire2pkt(&p, msg, ml) != LDNS_STATUS_OK || ml > 65535 ||
		    (!tcp && ml > 1232)) {
			fprintf(stderr, "unparseable or oversized answer (%zu bytes)\n", ml);
			abort();
		}
		ldns_pkt_free(p);
		free(msg);
	}
	dns_answer_free(a);
}

#ifdef REGSIGN_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	/* libFuzzer calls this repeatedly: one target for the whole run. */
	static struct target t;
	static int ready;

	if (!ready) {
		if (target_init(&t) != 0)
			abort();
		ready = 1;
	}
	if (len > 0)
		fuzz_one(&t, data + 1, len - 1, data[0] & 1);
	return 0;
}
#endif

static size_t seed_wire(int which, uint8_t *out, size_t cap)
{
	static const struct { const char *name; ldns_rr_type t; } q[] = {
		{ "iotregistry.test.", LDNS_RR_TYPE_SOA },
		{ "iotregistry.test.", LDNS_RR_TYPE_AXFR },
		{ "iotregistry.test.", LDNS_RR_TYPE_IXFR },
		{ "nosuch.iotregistry.test.", LDNS_RR_TYPE_ANY },
		{ "iotregistry.test.", LDNS_RR_TYPE_SOA },
	};
	ldns_pkt *p = NULL;
	uint8_t *w = NULL;
	size_t wl = 0;

	assert_int_equal(ldns_pkt_query_new_frm_str(&p, q[which].name, q[which].t,
						    LDNS_RR_CLASS_IN, 0),
			 LDNS_STATUS_OK);
	ldns_pkt_set_id(p, (uint16_t)which);
	if (q[which].t == LDNS_RR_TYPE_IXFR) {
		ldns_rr *soa = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&soa, "iotregistry.test. 0 IN SOA . . 2 0 0 0 0",
						     0, NULL, NULL),
				 LDNS_STATUS_OK);
		ldns_pkt_push_rr(p, LDNS_SECTION_AUTHORITY, soa);
		assert_int_equal(ldns_pkt_tsig_sign(p, "k1.", K1, 300, "hmac-sha256.", NULL),
				 LDNS_STATUS_OK);
	}
	if (which == 3) {
		ldns_pkt_set_edns_udp_size(p, 4096);
		ldns_pkt_set_edns_do(p, true);
	}
	if (which == 4)
		ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
	assert_int_equal(ldns_pkt2wire(&w, p, &wl), LDNS_STATUS_OK);
	assert_true(wl <= cap);
	memcpy(out, w, wl);
	free(w);
	ldns_pkt_free(p);
	return wl;
}

static void test_mutations(void **state)
{
	struct target t;
	uint8_t seed[5][512], buf[600];
	size_t slen[5];
	unsigned rnd = 20261127;

	(void)state;
	assert_int_equal(target_init(&t), 0);
	for (int i = 0; i < 5; i++) {
		slen[i] = seed_wire(i, seed[i], sizeof(seed[i]));
		/* The seeds themselves are answered. */
		fuzz_one(&t, seed[i], slen[i], true);
		fuzz_one(&t, seed[i], slen[i], false);
	}
	for (int i = 0; i < 20000; i++) {
		int s = i % 5;
		size_t len = slen[s];
		memcpy(buf, seed[s], len);
		switch (rand_r(&rnd) % 4) {
		case 0: /* a few random bytes */
			for (int k = 0; k < 1 + i % 4; k++)
				buf[rand_r(&rnd) % len] = (uint8_t)rand_r(&rnd);
			break;
		case 1: /* a count field of the header */
			buf[4 + rand_r(&rnd) % 8] = (uint8_t)rand_r(&rnd);
			break;
		case 2: /* truncated */
			len = (size_t)rand_r(&rnd) % (len + 1);
			break;
		default: /* trailing garbage */
			for (size_t k = 0; k < 16; k++)
				buf[len + k] = (uint8_t)rand_r(&rnd);
			len += 1 + (size_t)rand_r(&rnd) % 16;
			break;
		}
		fuzz_one(&t, buf, len, (i / 5) % 2 == 0);
	}
	target_free(&t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
