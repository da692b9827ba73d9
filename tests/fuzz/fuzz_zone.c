/*
 * libFuzzer target for what libregsign-zone reads from outside: a stored
 * name row (zone_load_name) and a journal diff (zone_diff_from_wire).
 *
 * The first input byte picks the parser. A row is split into key and blob
 * by the second byte; an accepted load is finished, iterated, exported and
 * re-signed (with a fake signer) so that accepted data is exercised too.
 * Findings are crashes and sanitizer reports.
 *
 * Build: configure with CC=clang; the target fuzz_zone is added then.
 * Run: build/bin/fuzz/fuzz_zone -max_total_time=60
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fake_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++)
		memset(reqs[i].sig, 0x5a, sizeof(reqs[i].sig));
	return 0;
}

static int count_rr(void *ctx, const ldns_rr *rr)
{
	(void)rr;
	(*(size_t *)ctx)++;
	return 0;
}

static struct zone *new_zone(void)
{
	/* Two fixed public keys: any valid P-256 points will do. */
	static EVP_PKEY *k1, *k2;
	struct zone_params p;
	struct zone *z = NULL;

	if (k1 == NULL) {
		k1 = EVP_EC_gen("P-256");
		k2 = EVP_EC_gen("P-256");
	}
	zone_params_init(&p);
	p.verify = false;
	if (zone_dnskey_from_pkey(k1, ZONE_DNSKEY_FLAGS_KSK, &p.ksk) != 0 ||
	    zone_dnskey_from_pkey(k2, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk) != 0 ||
	    zone_new(&p, &z) != 0)
		abort();
	return z;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	if (data[0] & 1) {
		struct zone_diff *d = NULL;
		if (zone_diff_from_wire(data + 1, size - 1, &d) == 0) {
			uint8_t *w = NULL;
			size_t wl = 0;
			if (zone_diff_to_wire(d, &w, &wl) != 0)
				abort();
			free(w);
		}
		zone_diff_free(d);
		return 0;
	}
	size_t keylen = data[1] <= size - 2 ? data[1] : size - 2;
	const uint8_t *key = data + 2, *blob = key + keylen;
	size_t bloblen = size - 2 - keylen;
	struct zone *z = new_zone();
	if (zone_load_name(z, key, keylen, blob, bloblen) == 0 &&
	    zone_load_finish(z, 1700000000, false) == 0) {
		size_t n = 0;
		struct zone_diff *d = NULL;
		struct zone_status st;
		(void)zone_foreach_rr(z, count_rr, &n);
		zone_status_get(z, 1700000000, &st);
		(void)zone_resign_due(z, 1800000000, 100, fake_sign, NULL, &d);
		zone_diff_free(d);
	}
	zone_free(z);
	return 0;
}
