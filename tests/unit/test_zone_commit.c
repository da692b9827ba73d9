/*
 * Tests of the commit's self-check of its own fresh signatures
 * (zonesigner/zone_commit.c): with verification on (sampled: one signature
 * per key per group) a batch of bad signatures from the "HSM" fails the
 * first group and leaves the zone as it was; a single bad signature fails
 * the group exactly when the sample falls on it and is otherwise caught by
 * the full check (zone_check with verification); with verification off only
 * the full check catches it. Kept NSEC records are compared with what their
 * signature was made over, across insertions and removals, and the result
 * passes ldns-verify-zone and dnssec-verify.
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

/* A signer that corrupts chosen signatures of the batches it signs. */
struct bad_signer {
	struct tzs_signer *s;
	bool all;          /* corrupt every signature of the batch */
	size_t index;      /* else only this one (SIZE_MAX: none) */
	size_t last;       /* size of the last batch */
};

static int bad_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	struct bad_signer *b = ctx;
	int r = tzs_sign(b->s, reqs, n);

	b->last = n;
	for (size_t i = 0; r == 0 && i < n; i++)
		if (b->all || i == b->index)
			reqs[i].sig[17] ^= 0x5a;
	return r;
}

static struct zone *zone_with(struct tzs_signer *s, bool verify, bool verify_all)
{
	struct zone_params p;
	struct zone *z = NULL;

	zone_params_init(&p);
	assert_int_equal(zone_dnskey_from_pkey(s->ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(s->zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk), 0);
	p.verify = verify;
	p.verify_all = verify_all;
	assert_int_equal(zone_new(&p, &z), 0);
	return z;
}

/* A fresh zone at serial 1 (its apex signed correctly); @p verify_all: every
 * fresh signature verified (zone.verify-signatures: all). */
static void fresh_zone_mode(struct tzs_fix *f, bool verify, bool verify_all)
{
	struct zone_change *c = NULL;

	zone_free(f->z);
	f->z = zone_with(&f->s, verify, verify_all);
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, NULL), 0);
	zone_change_free(c);
	assert_int_equal(zone_serial(f->z), 1);
}

static void fresh_zone(struct tzs_fix *f, bool verify)
{
	fresh_zone_mode(f, verify, false);
}

/* One change adding @p n devices; the commit's result. */
static int add_devices(struct tzs_fix *f, const char *prefix, size_t n, zone_sign_fn sign,
		       void *ctx)
{
	struct zone_change *c = NULL;
	int r;

	assert_int_equal(zone_change_begin(f->z, &c), 0);
	for (size_t i = 0; i < n; i++) {
		char id[32];
		uint8_t h[32];
		struct zone_device d = { 0 };
		snprintf(id, sizeof(id), "%s%04zx", prefix, i);
		memset(h, (int)i, sizeof(h));
		d.id = id;
		d.index = 1;
		d.styles = ZONE_STYLE_SEED;
		d.cert_sha256 = h;
		assert_int_equal(zone_change_device_add(c, &d), 0);
	}
	r = zone_change_commit(c, f->now, sign, ctx, NULL);
	zone_change_free(c);
	return r;
}

/* Every signature of a group bad: the first group fails, nothing changes. */
static void test_sampled_catches_bad_batch(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, true, SIZE_MAX, 0 };

	fresh_zone(f, true);
	assert_int_equal(add_devices(f, "a1b2c3d4e5f60718", 4, bad_sign, &b), ZONE_ECHECK);
	assert_true(b.last > 4);
	assert_int_equal(zone_serial(f->z), 1);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	/* The zone still takes the same change from a good signer. */
	assert_int_equal(add_devices(f, "a1b2c3d4e5f60718", 4, tzs_sign, &f->s), 0);
	assert_int_equal(zone_serial(f->z), 2);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
}

/*
 * One bad signature at each position of the same group in turn: the commit
 * refuses it exactly when it is the one sampled for its key (once per key
 * among the positions), and otherwise publishes it, where the full check
 * finds it. This is the trade-off of `sampled`, stated as a test.
 */
static void test_sampled_single_bad_signature(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, false, SIZE_MAX, 0 };
	size_t n, refused = 0;

	fresh_zone(f, true);
	assert_int_equal(add_devices(f, "b1b2c3d4e5f60718", 3, bad_sign, &b), 0);
	n = b.last;
	/* SOA, three CERT sets, three new NSEC and the apex's NSEC. */
	assert_int_equal(n, 8);
	for (size_t i = 0; i < n; i++) {
		int r;
		fresh_zone(f, true);
		b.index = i;
		r = add_devices(f, "b1b2c3d4e5f60718", 3, bad_sign, &b);
		assert_int_equal(b.last, n);
		if (r == ZONE_ECHECK) {
			refused++;
			assert_int_equal(zone_serial(f->z), 1);
			assert_int_equal(zone_check(f->z, f->now, true), 0);
		} else {
			assert_int_equal(r, 0);
			assert_int_equal(zone_serial(f->z), 2);
			assert_int_equal(zone_check(f->z, f->now, false), 0);
			assert_int_equal(zone_check(f->z, f->now, true), ZONE_ECHECK);
		}
	}
	/* Every signature of this group is the ZSK's: one sampled. */
	assert_int_equal(refused, 1);
}

/* Under `all`, a single bad signature at any position is refused at commit. */
static void test_all_refuses_any_bad_signature(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, false, SIZE_MAX, 0 };

	for (size_t i = 0; i < 8; i++) {
		fresh_zone_mode(f, true, true);
		b.index = i;
		assert_int_equal(add_devices(f, "c1b2c3d4e5f60718", 3, bad_sign, &b), ZONE_ECHECK);
		assert_int_equal(b.last, 8);
		assert_int_equal(zone_serial(f->z), 1);
		assert_int_equal(zone_check(f->z, f->now, true), 0);
	}
	/* And the same change from a good signer passes. */
	fresh_zone_mode(f, true, true);
	assert_int_equal(add_devices(f, "c1b2c3d4e5f60718", 3, tzs_sign, &f->s), 0);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
}

/* Verification off: only the structure is checked at commit. */
static void test_verify_off(void **state)
{
	struct tzs_fix *f = *state;
	struct bad_signer b = { &f->s, true, SIZE_MAX, 0 };

	fresh_zone(f, false);
	assert_int_equal(add_devices(f, "c1b2c3d4e5f60718", 2, bad_sign, &b), 0);
	assert_int_equal(zone_serial(f->z), 2);
	assert_int_equal(zone_check(f->z, f->now, false), 0);
	assert_int_equal(zone_check(f->z, f->now, true), ZONE_ECHECK);
}

/*
 * Kept NSEC records under sampling: names added between, after and before
 * existing ones and removed again, in groups; every commit's byte comparison
 * of kept NSECs passes, and the zone verifies in full and with the tools.
 */
static void test_sampled_kept_nsec(void **state)
{
	struct tzs_fix *f = *state;
	struct zone_change *c = NULL;
	char *dir = tzs_tmpdir();

	fresh_zone(f, true);
	assert_int_equal(add_devices(f, "d1b2c3d4e5f60718", 6, tzs_sign, &f->s), 0);
	assert_int_equal(add_devices(f, "d1b2c3d4e5f6071", 3, tzs_sign, &f->s), 0);
	assert_int_equal(add_devices(f, "e1b2c3d4e5f60718", 2, tzs_sign, &f->s), 0);
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_device_remove(c, "d1b2c3d4e5f607180002", 1), 0);
	assert_int_equal(zone_change_device_remove(c, "e1b2c3d4e5f607180001", 1), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, NULL), 0);
	zone_change_free(c);
	assert_int_equal(zone_serial(f->z), 5);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, dir, "kept.zone");
	tzs_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_sampled_catches_bad_batch, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_sampled_single_bad_signature, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_all_refuses_any_bad_signature, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_verify_off, tzs_fix_setup, tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_sampled_kept_nsec, tzs_fix_setup, tzs_fix_teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
