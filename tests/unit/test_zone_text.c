/*
 * zone_text.h against ldns: every line the zone's own formatter writes must
 * be the line ldns_rr2str (no comments) writes for the same RR, since the
 * zone file used to be written by ldns and operators' tools read it. Random
 * RRs of each type the module formats (owner names with every byte value a
 * label may hold), RDATA it must leave to ldns, and a whole signed zone
 * written by zone_file_write() compared with ldns's rendering of it.
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

#include "tests/unit/test_zone_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_file.h"
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_text.h"

static uint32_t rnd_state = 0x2545f491;

static uint32_t rnd(void)
{
	rnd_state ^= rnd_state << 13;
	rnd_state ^= rnd_state >> 17;
	rnd_state ^= rnd_state << 5;
	return rnd_state;
}

/* A random wire name: 0-4 labels of 1-12 bytes; one name in four uses any byte. */
static size_t rnd_name(uint8_t *w)
{
	size_t len = 0, labels = rnd() % 5;
	int wild = rnd() % 4 == 0;
	static const char plain[] = "abcdefghijklmnopqrstuvwxyz0123456789-_.;()\\\"@$ ";

	for (size_t i = 0; i < labels; i++) {
		size_t ll = 1 + rnd() % 12;
		w[len++] = (uint8_t)ll;
		for (size_t k = 0; k < ll; k++)
			w[len++] = wild ? (uint8_t)rnd() : (uint8_t)plain[rnd() % (sizeof(plain) - 1)];
	}
	w[len++] = 0;
	return len;
}

static size_t rnd_bytes(uint8_t *p, size_t min, size_t max)
{
	size_t n = min + rnd() % (max - min + 1);

	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rnd();
	return n;
}

/* An RRSIG time well away from the point where serial arithmetic flips. */
static uint32_t rnd_time(int64_t now)
{
	return (uint32_t)now + (uint32_t)(rnd() % 0x7ff00000u) - 0x3ff80000u;
}

static size_t rnd_rdata(uint16_t type, uint8_t *rd, int64_t now)
{
	size_t n = 0;
	static const uint16_t covered[] = { ZONE_RRTYPE_SOA, ZONE_RRTYPE_NS, ZONE_RRTYPE_CERT,
					    ZONE_RRTYPE_TLSA, ZONE_RRTYPE_NSEC, ZONE_RRTYPE_DNSKEY };

	switch (type) {
	case ZONE_RRTYPE_NS:
		return rnd_name(rd);
	case ZONE_RRTYPE_SOA:
		n = rnd_name(rd);
		n += rnd_name(rd + n);
		return n + rnd_bytes(rd + n, 20, 20);
	case ZONE_RRTYPE_DNSKEY:
		n = rnd_bytes(rd, 4, 4);
		return n + rnd_bytes(rd + n, 1, 140);
	case ZONE_RRTYPE_CERT:
		n = rnd_bytes(rd, 5, 5);
		zone_put16(rd, 1);
		return n + rnd_bytes(rd + n, 1, 900);
	case ZONE_RRTYPE_TLSA:
		n = rnd_bytes(rd, 3, 3);
		return n + rnd_bytes(rd + n, 1, 80);
	case ZONE_RRTYPE_NSEC: {
		uint16_t types[8];
		size_t nt = 1 + rnd() % 5;
		for (size_t i = 0; i < nt; i++)
			types[i] = covered[rnd() % 6];
		types[nt++] = ZONE_RRTYPE_RRSIG;
		/* Sorted and unique, as zone_nsec_bitmap() wants them. */
		for (size_t i = 0; i < nt; i++)
			for (size_t k = i + 1; k < nt; k++)
				if (types[k] < types[i]) {
					uint16_t t = types[i];
					types[i] = types[k];
					types[k] = t;
				}
		size_t u = 0;
		for (size_t i = 0; i < nt; i++)
			if (u == 0 || types[u - 1] != types[i])
				types[u++] = types[i];
		n = rnd_name(rd);
		return n + zone_nsec_bitmap(types, u, rd + n);
	}
	case ZONE_RRTYPE_RRSIG:
		zone_put16(rd, covered[rnd() % 6]);
		rd[2] = (uint8_t)rnd();
		rd[3] = (uint8_t)rnd();
		zone_put32(rd + 4, rnd());
		zone_put32(rd + 8, rnd_time(now));
		zone_put32(rd + 12, rnd_time(now));
		zone_put16(rd + 16, (uint16_t)rnd());
		n = 18 + rnd_name(rd + 18);
		return n + rnd_bytes(rd + n, 1, 100);
	}
	return 0;
}

/* ldns's line for the RR, or NULL when ldns refuses the wire form. */
static char *ldns_line(const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
		       const uint8_t *rd, size_t rdlen)
{
	ldns_rr *rr = NULL;
	char *s;

	if (zone_rr_make(owner, ownerlen, type, ttl, rd, rdlen, &rr) != 0)
		return NULL;
	s = ldns_rr2str_fmt(ldns_output_format_nocomments, rr);
	ldns_rr_free(rr);
	return s;
}

static void test_random_rrs_match_ldns(void **state)
{
	static const uint16_t types[] = { ZONE_RRTYPE_NS, ZONE_RRTYPE_SOA, ZONE_RRTYPE_DNSKEY,
					  ZONE_RRTYPE_CERT, ZONE_RRTYPE_TLSA, ZONE_RRTYPE_NSEC,
					  ZONE_RRTYPE_RRSIG };
	static char line[ZONE_TEXT_MAX];
	uint8_t owner[ZONE_WIRE_MAX], rd[2048];
	size_t compared = 0;
	(void)state;

	for (int i = 0; i < 20000; i++) {
		uint16_t type = types[i % 7];
		size_t ownerlen = rnd_name(owner), len;
		int64_t now = (int64_t)time(NULL);
		size_t rdlen = rnd_rdata(type, rd, now);
		uint32_t ttl = rnd();
		char *want = ldns_line(owner, ownerlen, type, ttl, rd, rdlen);
		int r = zone_text_rr(owner, ownerlen, type, ttl, rd, rdlen, now, line, &len);

		assert_non_null(want);
		if (r == ZONE_TEXT_OTHER && type == ZONE_RRTYPE_NSEC) {
			/* Only for a bitmap naming a type it has no name for: none here. */
			fail_msg("NSEC left to ldns: %s", want);
		}
		assert_int_equal(r, 0);
		if (len != strlen(want) || memcmp(line, want, len) != 0)
			fail_msg("type %u differs:\n ours: %.*s ldns: %s", type, (int)len, line, want);
		free(want);
		compared++;
	}
	assert_int_equal(compared, 20000);
}

static void test_other_rdata_left_to_ldns(void **state)
{
	static char line[ZONE_TEXT_MAX];
	uint8_t owner[] = { 1, 'x', 4, 't', 'e', 's', 't', 0 };
	uint8_t rd[64] = { 0 };
	size_t len = 99;
	int64_t now = (int64_t)time(NULL);
	(void)state;

	/* A type it does not know (A), a CERT that is not PKIX, RDATA too short
	 * for its type, a name running past its RDATA, an empty key. */
	assert_int_equal(zone_text_rr(owner, sizeof(owner), 1, 60, rd, 4, now, line, &len),
			 ZONE_TEXT_OTHER);
	assert_int_equal(len, 0);
	zone_put16(rd, 2);
	assert_int_equal(zone_text_rr(owner, sizeof(owner), ZONE_RRTYPE_CERT, 60, rd, 9, now,
				      line, &len), ZONE_TEXT_OTHER);
	assert_int_equal(zone_text_rr(owner, sizeof(owner), ZONE_RRTYPE_SOA, 60, rd, 10, now,
				      line, &len), ZONE_TEXT_OTHER);
	rd[0] = 9;
	assert_int_equal(zone_text_rr(owner, sizeof(owner), ZONE_RRTYPE_NS, 60, rd, 4, now, line,
				      &len), ZONE_TEXT_OTHER);
	assert_int_equal(zone_text_rr(owner, sizeof(owner), ZONE_RRTYPE_DNSKEY, 60, rd, 4, now,
				      line, &len), ZONE_TEXT_OTHER);
	/* An NSEC whose bitmap names a type outside its table (A). */
	rd[0] = 0;
	rd[1] = 0;
	rd[2] = 1;
	rd[3] = 0x40;
	assert_int_equal(zone_text_rr(owner, sizeof(owner), ZONE_RRTYPE_NSEC, 60, rd, 4, now,
				      line, &len), ZONE_TEXT_OTHER);
	/* A malformed owner is an error, not a fallback. */
	owner[0] = 5;
	assert_int_equal(zone_text_rr(owner, sizeof(owner), ZONE_RRTYPE_NS, 60, rd, 1, now, line,
				      &len), ZONE_EFORMAT);
}

static int collect_ldns(void *ctx, const ldns_rr *rr)
{
	FILE *f = ctx;
	char *s = ldns_rr2str_fmt(ldns_output_format_nocomments, rr);

	if (s == NULL)
		return ZONE_ENOMEM;
	fputs(s, f);
	free(s);
	return 0;
}

static int fake_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	(void)ctx;
	for (size_t i = 0; i < n; i++)
		memset(reqs[i].sig, (int)(i & 0xff), 64);
	return 0;
}

/* A signed zone with every style (CERT, TLSA) and the apex: the file
 * zone_file_write() writes is, byte for byte, ldns's rendering of the RRs. */
static void test_zone_file_matches_ldns(void **state)
{
	struct tzs_fix *fx = *state;
	enum { N = 3000 };
	static struct zone_device d[N];
	static char ids[N][24];
	static uint8_t h[N][32];
	char *dir = tzs_tmpdir(), path[512], *ours, *theirs = NULL;
	size_t theirs_len = 0;
	FILE *f;

	fx->z = tzs_zone_new(&fx->s, NULL, 0);
	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%018zx", i * 7919);
		memset(h[i], (int)i, 32);
		d[i].id = ids[i];
		d[i].index = 1 + (uint32_t)(i % 3);
		d[i].styles = ZONE_STYLE_SEED | (i % 2 ? ZONE_STYLE_DANCE : 0);
		d[i].cert_sha256 = h[i];
		d[i].spki_sha256 = h[i];
	}
	assert_int_equal(zone_bulk_import(fx->z, d, N, fx->now, fake_sign, NULL, 512), 0);
	snprintf(path, sizeof(path), "%s/z.zone", dir);
	assert_int_equal(zone_file_write(fx->z, path), 0);
	ours = tzs_slurp(path);
	assert_non_null(ours);
	f = open_memstream(&theirs, &theirs_len);
	assert_non_null(f);
	assert_int_equal(zone_foreach_rr(fx->z, collect_ldns, f), 0);
	fclose(f);
	assert_true(strlen(ours) > (size_t)N * 4 * 60);
	assert_true(strstr(ours, "\tTLSA\t") != NULL && strstr(ours, "\tCERT\t") != NULL);
	if (strcmp(ours, theirs) != 0) {
		size_t i = 0;
		while (ours[i] == theirs[i])
			i++;
		fail_msg("zone file differs from ldns at byte %zu: ours \"%.80s\" ldns \"%.80s\"",
			 i, ours + i, theirs + i);
	}
	free(ours);
	free(theirs);
	tzs_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_random_rrs_match_ldns),
		cmocka_unit_test(test_other_rdata_left_to_ldns),
		cmocka_unit_test_setup_teardown(test_zone_file_matches_ldns, tzs_fix_setup,
						tzs_fix_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
