/*
 * Tests of the background verification (zone_verify_slice,
 * zone_verify_mark_due): a zone built with the commit's own verification off
 * and a signer that spoils exactly one signature (of a CERT RRset, or of an
 * NSEC) carries one bad RRSIG among good ones; a full pass in slices of 1,
 * 2 and 7 names finds exactly that owner and type once, visits every name
 * once and wraps; a clean zone, an apex-only zone and an empty zone behave;
 * and marking the bad RRset due lets the ordinary re-signing replace it, so
 * that the next pass is clean.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_zone_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_diff.h"
#include "zonesigner/zone_ldns.h"

/* A signer that spoils the n-th signature (counted across batches) over an
 * RRset of one type, and remembers whose it was. */
struct bad_signer {
	struct tzs_signer *s;
	uint16_t type;        /* type covered to spoil; 0: spoil nothing */
	size_t nth;           /* which one of that type (0-based) */
	size_t seen;
	char victim[1100];    /* "<owner> <TYPE>" as ldns prints them */
};

static int bad_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	struct bad_signer *b = ctx;
	int r = tzs_sign(b->s, reqs, n);

	for (size_t i = 0; r == 0 && i < n; i++) {
		const uint8_t *d = reqs[i].data;
		uint16_t covered = (uint16_t)(d[0] << 8 | d[1]);
		size_t signer_len, off = 18;
		ldns_rdf *owner;
		char *name, *type;

		if (b->type == 0 || covered != b->type || b->seen++ != b->nth)
			continue;
		reqs[i].sig[17] ^= 0x5a;
		/* RRSIG data: 18 fixed bytes, the signer's name, then the RRset's
		 * RRs, each starting with its owner (uncompressed, RFC 4034 3.1.8.1). */
		while (d[off] != 0)
			off += 1 + d[off];
		signer_len = off + 1 - 18;
		off = 18 + signer_len;
		{
			size_t o = off;
			while (d[o] != 0)
				o += 1 + d[o];
			owner = ldns_dname_new_frm_data(o + 1 - off, d + off);
		}
		assert_non_null(owner);
		name = ldns_rdf2str(owner);
		type = ldns_rr_type2str((ldns_rr_type)covered);
		snprintf(b->victim, sizeof(b->victim), "%s %s", name, type);
		free(name);
		free(type);
		ldns_rdf_deep_free(owner);
	}
	return r;
}

/* A zone with the commit's verification off (so a bad signature goes in),
 * its apex, and @p n devices signed through @p b. */
static void build_zone(struct tzs_fix *f, size_t n, struct bad_signer *b)
{
	struct zone_params p;
	struct zone_change *c = NULL;

	zone_params_init(&p);
	assert_int_equal(zone_dnskey_from_pkey(f->s.ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(f->s.zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk), 0);
	p.verify = false;
	zone_free(f->z);
	f->z = NULL;
	assert_int_equal(zone_new(&p, &f->z), 0);
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, NULL), 0);
	zone_change_free(c);
	if (n == 0)
		return;
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	for (size_t i = 0; i < n; i++) {
		char id[32];
		uint8_t h[32];
		struct zone_device d = { 0 };
		snprintf(id, sizeof(id), "c0ffee%04zx", i);
		memset(h, (int)i + 1, sizeof(h));
		d.id = id;
		d.index = 1;
		d.styles = ZONE_STYLE_SEED;
		d.cert_sha256 = h;
		assert_int_equal(zone_change_device_add(c, &d), 0);
	}
	assert_int_equal(zone_change_commit(c, f->now, bad_sign, b, NULL), 0);
	zone_change_free(c);
}

struct pass {
	size_t slices, names, sigs, failures, nfail;
	char first[1100];
	struct zone_verify_fail fail;
};

/* One full pass from the apex in slices of @p step names; every slice's
 * bounds are checked, and the pass must wrap exactly at its end. */
static void full_pass(const struct tzs_fix *f, size_t step, struct pass *p)
{
	struct zone_verify_slice *sl = malloc(sizeof(*sl));
	uint8_t from[ZONE_VERIFY_KEY_MAX];
	size_t from_len = 0, total = zone_names(f->z);

	assert_non_null(sl);
	memset(p, 0, sizeof(*p));
	for (;;) {
		assert_int_equal(zone_verify_slice(f->z, from_len ? from : NULL, from_len, step,
						   f->now, sl), 0);
		p->slices++;
		assert_true(sl->names >= 1 && sl->names <= step);
		p->names += sl->names;
		p->sigs += sl->sigs;
		if (sl->failures > 0 && p->failures == 0) {
			snprintf(p->first, sizeof(p->first), "%s", sl->first_failure);
			assert_true(sl->nfail >= 1);
			p->fail = sl->fail[0];
		}
		p->failures += sl->failures;
		p->nfail += sl->nfail;
		assert_true(p->slices <= total + 1);
		if (sl->wrapped) {
			assert_int_equal(sl->next_len, 0);
			break;
		}
		/* Not wrapped: exactly a full slice, and more names follow. */
		assert_int_equal(sl->names, step);
		assert_true(sl->next_len > 0);
		memcpy(from, sl->next_key, sl->next_len);
		from_len = sl->next_len;
	}
	assert_int_equal(p->names, total);
	assert_int_equal(p->slices, (total + step - 1) / step);
	free(sl);
}

/* Every name carries at least its data and NSEC signatures. */
static void assert_one_failure(struct tzs_fix *f, const struct bad_signer *b, uint16_t type)
{
	const size_t steps[] = { 1, 2, 7 };

	assert_true(b->victim[0] != '\0');
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct pass p;
		full_pass(f, steps[i], &p);
		assert_int_equal(p.failures, 1);
		assert_int_equal(p.nfail, 1);
		assert_string_equal(p.first, b->victim);
		assert_int_equal(p.fail.type, type);
		assert_true(p.sigs >= 2 * p.names);
	}
	/* The commit's own full check agrees that the zone is not clean. */
	assert_int_equal(zone_check(f->z, f->now, true), ZONE_ECHECK);
}

static void test_clean_zone(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, 0, 0, 0, "" };
	struct pass p;

	build_zone(f, 20, &b);
	assert_int_equal(zone_names(f->z), 21);
	full_pass(f, 7, &p);
	assert_int_equal(p.failures, 0);
	assert_int_equal(p.nfail, 0);
	assert_string_equal(p.first, "");
	/* Apex: SOA, NS, DNSKEY, NSEC; each device: CERT and NSEC. */
	assert_int_equal(p.sigs, 4 + 20 * 2);
}

static void test_bad_cert_found(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, 37, 5, 0, "" };

	build_zone(f, 20, &b);
	assert_int_equal(zone_names(f->z), 21);
	assert_non_null(strstr(b.victim, "CERT"));
	assert_one_failure(f, &b, 37);
}

static void test_bad_nsec_found(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, 47, 11, 0, "" };

	build_zone(f, 20, &b);
	assert_one_failure(f, &b, 47);
}

/* The slice after the last name and a key between names. */
static void test_cursor(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, 0, 0, 0, "" };
	struct zone_verify_slice *sl = malloc(sizeof(*sl));
	const uint8_t past[] = { 0xff, 0xff, 0x00, 0x00 };
	uint8_t first_key[ZONE_VERIFY_KEY_MAX], between[ZONE_VERIFY_KEY_MAX];
	size_t first_len;

	assert_non_null(sl);
	build_zone(f, 5, &b);
	assert_int_equal(zone_verify_slice(f->z, NULL, 0, 0, f->now, sl), ZONE_EINVAL);
	/* A key after every name: nothing verified, wrapped. */
	assert_int_equal(zone_verify_slice(f->z, past, sizeof(past), 3, f->now, sl), 0);
	assert_int_equal(sl->names, 0);
	assert_true(sl->wrapped);
	/* The apex alone, then the cursor names the first device. */
	assert_int_equal(zone_verify_slice(f->z, NULL, 0, 1, f->now, sl), 0);
	assert_int_equal(sl->names, 1);
	assert_false(sl->wrapped);
	assert_true(sl->next_len > 0);
	memcpy(first_key, sl->next_key, sl->next_len);
	first_len = sl->next_len;
	/* A key just below the first device's (its last byte one less) starts there. */
	memcpy(between, first_key, first_len);
	between[first_len - 3]--;
	assert_int_equal(zone_verify_slice(f->z, between, first_len, 1, f->now, sl), 0);
	assert_int_equal(sl->names, 1);
	assert_int_equal(zone_verify_slice(f->z, first_key, first_len, 10, f->now, sl), 0);
	assert_int_equal(sl->names, 5);
	assert_true(sl->wrapped);
	assert_int_equal(sl->failures, 0);
	free(sl);
}

static void test_apex_only_and_empty(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, 0, 0, 0, "" };
	struct zone_verify_slice *sl = malloc(sizeof(*sl));
	struct zone *empty = tzs_zone_new(&f->s, NULL, 0);

	assert_non_null(sl);
	/* Empty: there is nothing complete to verify yet. */
	assert_int_equal(zone_verify_slice(empty, NULL, 0, 64, f->now, sl), ZONE_ESTATE);
	assert_int_equal(zone_verify_mark_due(empty, NULL, 0, 6, f->now), ZONE_ESTATE);
	zone_free(empty);
	build_zone(f, 0, &b);
	assert_int_equal(zone_names(f->z), 1);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(zone_verify_slice(f->z, NULL, 0, i ? 64 : 1, f->now, sl), 0);
		assert_int_equal(sl->names, 1);
		assert_true(sl->wrapped);
		assert_int_equal(sl->next_len, 0);
		assert_int_equal(sl->sigs, 4);
		assert_int_equal(sl->failures, 0);
	}
	free(sl);
}

/* Marking the bad RRset due makes the ordinary re-signing renew exactly it. */
static void test_mark_due_repairs(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, 37, 3, 0, "" };
	struct zone_diff *d = NULL;
	struct zone_verify_slice *sl = malloc(sizeof(*sl));
	uint32_t serial;
	struct pass p;

	assert_non_null(sl);
	build_zone(f, 12, &b);
	assert_int_equal(zone_verify_slice(f->z, NULL, 0, 100, f->now, sl), 0);
	assert_int_equal(sl->failures, 1);
	/* Nothing is due before the mark. */
	assert_int_equal(zone_resign_due(f->z, f->now, 1000, tzs_sign, &f->s, &d), 0);
	assert_null(d);
	assert_int_equal(zone_verify_mark_due(f->z, sl->fail[0].key, sl->fail[0].keylen, 6,
					      f->now), ZONE_ENOENT);
	assert_int_equal(zone_verify_mark_due(f->z, sl->fail[0].key, sl->fail[0].keylen,
					      sl->fail[0].type, f->now), 0);
	serial = zone_serial(f->z);
	assert_int_equal(zone_resign_due(f->z, f->now, 1000, tzs_sign, &f->s, &d), 0);
	assert_non_null(d);
	/* The one RRset and the SOA. */
	assert_int_equal(zone_diff_signatures(d), 2);
	zone_diff_free(d);
	assert_int_equal(zone_serial(f->z), serial + 1);
	full_pass(f, 2, &p);
	assert_int_equal(p.failures, 0);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	free(sl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_clean_zone, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_bad_cert_found, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_bad_nsec_found, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_cursor, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_apex_only_and_empty, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_mark_due_repairs, tzs_fix_setup, tzs_fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
