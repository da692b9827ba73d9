/*
 * Signature lifetimes: re-signing what enters its refresh window (bounded by
 * a budget, in one batch and one serial), status figures, deterministic
 * jitter, and the whole cycle around the 32-bit wraps of 2038 (signed) and
 * 2106 (unsigned), checked by the zone's own verification and by
 * ldns-verify-zone at those times.
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
#include "zonesigner/zone_file.h"

#define H 3600
#define D 86400

struct fix {
	struct tzs_signer s;
	struct zone *z;
	char *dir;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	tzs_signer_init(&f->s);
	f->z = tzs_zone_new(&f->s, NULL, 0);
	f->dir = tzs_tmpdir();
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	zone_free(f->z);
	tzs_signer_free(&f->s);
	tzs_rmtree(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void change(struct fix *f, int64_t now, int add, int del)
{
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	struct zone_device dev = { 0 };
	uint8_t h[32] = { 1, 2, 3 };
	char id[32];

	assert_int_equal(zone_change_begin(f->z, &c), 0);
	for (int i = 0; i < add; i++) {
		snprintf(id, sizeof(id), "%016llx%04x", (unsigned long long)now, i);
		dev.id = id;
		dev.index = 1;
		dev.styles = ZONE_STYLE_SEED;
		dev.cert_sha256 = h;
		assert_int_equal(zone_change_device_add(c, &dev), 0);
	}
	(void)del;
	assert_int_equal(zone_change_commit(c, now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);
}

/* Re-sign until nothing is due; returns the RRsets re-signed (SOA excluded). */
static size_t resign_all(struct fix *f, int64_t now, size_t budget)
{
	size_t total = 0;
	struct zone_diff *d = NULL;

	for (int guard = 0; guard < 100000; guard++) {
		assert_int_equal(zone_resign_due(f->z, now, budget, tzs_sign, &f->s, &d), 0);
		if (d == NULL)
			return total;
		/* At most the budget, plus the SOA that every version re-signs. */
		assert_true(zone_diff_signatures(d) <= budget + 1);
		total += zone_diff_signatures(d) - 1;
		zone_diff_free(d);
	}
	fail_msg("re-signing does not converge");
	return 0;
}

static void ldns_verify_at(struct fix *f, int64_t when)
{
	char path[512], cmd[1024], stamp[32];
	char *out = NULL;
	struct tm tm;
	time_t t = (time_t)when;
	int st;

	tzs_require_tool("ldns-verify-zone");
	snprintf(path, sizeof(path), "%s/t.zone", f->dir);
	assert_int_equal(zone_file_write(f->z, path), 0);
	gmtime_r(&t, &tm);
	strftime(stamp, sizeof(stamp), "%Y%m%d%H%M%S", &tm);
	snprintf(cmd, sizeof(cmd), "ldns-verify-zone -V 2 -t %s '%s'", stamp, path);
	st = tzs_run(cmd, &out);
	if (st != 0)
		fail_msg("%s failed (%d):\n%s", cmd, st, out);
	free(out);
}

static int collect(void *ctx, const ldns_rr *rr)
{
	assert_true(ldns_rr_list_push_rr(ctx, ldns_rr_clone(rr)));
	return 0;
}

static bool serial_le(uint32_t a, uint32_t b)
{
	return a == b || (int32_t)(b - a) > 0;
}

/*
 * An independent check for times when ldns's zone-file tools cannot help
 * (their text form of RRSIG times and their timestamp checks break near the
 * 32-bit wraps): ldns's library rebuilds each RRset's signed data itself and
 * verifies the signature against the DNSKEYs, and the validity window is
 * checked here with serial arithmetic.
 */
static void ldns_verify_inproc(struct fix *f, int64_t when)
{
	ldns_rr_list *all = ldns_rr_list_new(), *keys = ldns_rr_list_new();
	size_t n, sigs = 0;
	uint32_t now32 = (uint32_t)when;

	assert_int_equal(zone_foreach_rr(f->z, collect, all), 0);
	n = ldns_rr_list_rr_count(all);
	for (size_t i = 0; i < n; i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(all, i)) == LDNS_RR_TYPE_DNSKEY)
			ldns_rr_list_push_rr(keys, ldns_rr_list_rr(all, i));
	assert_int_equal(ldns_rr_list_rr_count(keys), 2);
	for (size_t i = 0; i < n; i++) {
		ldns_rr *sig = ldns_rr_list_rr(all, i);
		if (ldns_rr_get_type(sig) != LDNS_RR_TYPE_RRSIG)
			continue;
		ldns_rr_type covered = ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(sig));
		ldns_rr_list *set = ldns_rr_list_new();
		for (size_t j = 0; j < n; j++) {
			ldns_rr *rr = ldns_rr_list_rr(all, j);
			if (ldns_rr_get_type(rr) == covered &&
			    ldns_dname_compare(ldns_rr_owner(rr), ldns_rr_owner(sig)) == 0)
				ldns_rr_list_push_rr(set, rr);
		}
		assert_true(ldns_rr_list_rr_count(set) > 0);
		ldns_rr_list *good = ldns_rr_list_new();
		ldns_status st = ldns_verify_rrsig_keylist_notime(set, sig, keys, good);
		if (st != LDNS_STATUS_OK)
			fail_msg("ldns: %s", ldns_get_errorstr_by_id(st));
		uint32_t inc = ldns_rdf2native_time_t(ldns_rr_rrsig_inception(sig));
		uint32_t exp = ldns_rdf2native_time_t(ldns_rr_rrsig_expiration(sig));
		assert_true(serial_le(inc, now32));
		assert_true(serial_le(now32, exp) && exp != now32);
		ldns_rr_list_free(good);
		ldns_rr_list_free(set);
		sigs++;
	}
	assert_true(sigs >= 5);
	ldns_rr_list_free(keys);
	ldns_rr_list_deep_free(all);
}

static void test_resign_due(void **state)
{
	struct fix *f = *state;
	int64_t t0 = (int64_t)time(NULL);
	struct zone_status st;
	struct zone_diff *d = NULL;

	change(f, t0, 40, 0);
	zone_status_get(f->z, t0, &st);
	assert_int_equal(st.names, 41);
	assert_true(st.bytes > 41 * 100);
	assert_false(st.resign_overdue);
	/* Device records: 6 h validity minus up to 1.5 h jitter, due 3 h earlier. */
	assert_true(st.next_due >= t0 + 90 * 60 && st.next_due <= t0 + 3 * H);
	assert_true(st.earliest_expiration >= t0 + 270 * 60 && st.earliest_expiration <= t0 + 6 * H);
	/* Nothing is due yet: no new version. */
	assert_int_equal(zone_resign_due(f->z, t0, 100, tzs_sign, &f->s, &d), 0);
	assert_null(d);
	assert_int_equal(zone_serial(f->z), 1);
	/* The jitter spreads them: at the earliest due time only some are due. */
	zone_status_get(f->z, st.next_due, &st);
	assert_true(st.resign_overdue);
	size_t early = resign_all(f, st.next_due, 1000);
	assert_true(early >= 1 && early < 40);
	/* Three hours on, every device CERT is due; five at a time. */
	int64_t t1 = t0 + 3 * H + 1;
	size_t n = resign_all(f, t1, 5);
	assert_int_equal(n, 40 - early);
	assert_int_equal(zone_check(f->z, t1, true), 0);
	zone_status_get(f->z, t1, &st);
	assert_false(st.resign_overdue);
	assert_true(st.next_due > t1);
	ldns_verify_at(f, t1);
	ldns_verify_inproc(f, t1);
	/* Ten days on everything has expired: the zone is not valid until re-signed. */
	int64_t t2 = t0 + 10 * D;
	assert_int_equal(zone_check(f->z, t2, false), ZONE_ECHECK);
	n = resign_all(f, t2, 7);
	/* 40 CERTs + 41 NSECs + NS + DNSKEY (SOA is re-signed with each version). */
	assert_int_equal(n, 40 + 41 + 2);
	assert_int_equal(zone_check(f->z, t2, true), 0);
	ldns_verify_at(f, t2);
}

/* Run a zone through days of changes and re-signing around a point in time. */
static void cycle_around(struct fix *f, int64_t start, int64_t wrap)
{
	int64_t t = start;

	change(f, t, 10, 0);
	assert_int_equal(zone_check(f->z, t, true), 0);
	for (int i = 0; i < 40; i++) {
		t += 2 * H + 17;
		resign_all(f, t, 1000);
		change(f, t, 1, 0);
		assert_int_equal(zone_check(f->z, t, true), 0);
		struct zone_status st;
		zone_status_get(f->z, t, &st);
		assert_false(st.resign_overdue);
		assert_true(st.earliest_expiration > t);
		assert_true(st.next_due > t);
		if (i % 10 == 0 || (t > wrap - 3 * H && t < wrap + 3 * H))
			ldns_verify_inproc(f, t);
	}
	assert_true(t > wrap);
	assert_int_equal(zone_names(f->z), 1 + 10 + 40);
}

static void test_wrap_2038(void **state)
{
	const int64_t wrap = 0x80000000ll;  /* 2038-01-19T03:14:08Z */

	cycle_around(*state, wrap - 2 * D, wrap);
}

static void test_wrap_2106(void **state)
{
	const int64_t wrap = 0x100000000ll;  /* 2106-02-07T06:28:16Z */

	cycle_around(*state, wrap - 2 * D, wrap);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_resign_due, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_2038, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_2106, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
