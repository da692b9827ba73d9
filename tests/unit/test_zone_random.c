/*
 * Randomised add/remove sequences on the zone. After every step the NSEC
 * chain must equal one rebuilt from scratch with ldns's own canonical
 * ordering (not the zone's key comparator), the number of signatures must be
 * exactly what changed, and the IXFR diff applied to the old zone must give
 * the new one. Every few steps the whole zone goes through ldns-verify-zone
 * (and now and then BIND's dnssec-verify), and midway the zone is exported
 * and reloaded into a fresh zone object that carries on.
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

#define NIDS 24
#define NIDX 3

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* Ids chosen so that names sort next to each other and to the apex's
 * other names: common prefixes, digits against letters, short and long. */
static const char *ids[NIDS] = {
	"0", "00", "000", "0000000000000000000000000000000000000000000000000000000000000ff",
	"1", "10", "1a", "1A", "1b", "9", "99", "a", "A0", "a0", "a00", "aa", "abc", "ABC",
	"f", "ff", "fff", "ffffffffffffffffffff", "8912230200031010008f", "8912230200031010008e",
};

struct fix {
	struct tzs_signer s;
	struct zone *z;
	char *dir;
	int64_t now;
	unsigned present[NIDS][NIDX + 1];  /* styles published per (id, index), by lowercase id */
	uint8_t *cert;
	size_t certlen;
};

/* Index of the lowercase form of ids[i] (ids that differ by case share state). */
static int canon(int i)
{
	for (int j = 0; j < NIDS; j++)
		if (strcasecmp(ids[i], ids[j]) == 0)
			return j;
	return i;
}

static int cmp_rdf(const void *a, const void *b)
{
	return ldns_dname_compare(*(ldns_rdf *const *)a, *(ldns_rdf *const *)b);
}

static int collect(void *ctx, const ldns_rr *rr)
{
	ldns_rr_list *l = ctx;
	ldns_rr *c = ldns_rr_clone(rr);

	assert_non_null(c);
	assert_true(ldns_rr_list_push_rr(l, c));
	return 0;
}

static ldns_rr_list *zone_rrs(const struct zone *z)
{
	ldns_rr_list *l = ldns_rr_list_new();

	assert_int_equal(zone_foreach_rr(z, collect, l), 0);
	return l;
}

/* Rebuild the NSEC chain with ldns's ordering and compare with the zone's. */
static void check_chain(const struct zone *z)
{
	ldns_rr_list *all = zone_rrs(z);
	size_t n = ldns_rr_list_rr_count(all), nown = 0, nnsec = 0;
	ldns_rdf **own = calloc(n, sizeof(*own));

	for (size_t i = 0; i < n; i++) {
		ldns_rr *rr = ldns_rr_list_rr(all, i);
		ldns_rr_type t = ldns_rr_get_type(rr);
		if (t == LDNS_RR_TYPE_NSEC)
			nnsec++;
		if (t == LDNS_RR_TYPE_NSEC || t == LDNS_RR_TYPE_RRSIG)
			continue;
		bool seen = false;
		for (size_t j = 0; j < nown && !seen; j++)
			seen = ldns_dname_compare(own[j], ldns_rr_owner(rr)) == 0;
		if (!seen)
			own[nown++] = ldns_rr_owner(rr);
	}
	qsort(own, nown, sizeof(*own), cmp_rdf);
	assert_int_equal(nnsec, nown);
	for (size_t i = 0; i < nown; i++) {
		ldns_rr_type types[64];
		size_t nt = 0;
		ldns_rr *nsec = NULL;
		for (size_t j = 0; j < n; j++) {
			ldns_rr *rr = ldns_rr_list_rr(all, j);
			if (ldns_dname_compare(ldns_rr_owner(rr), own[i]) != 0)
				continue;
			ldns_rr_type t = ldns_rr_get_type(rr);
			if (t == LDNS_RR_TYPE_NSEC)
				nsec = rr;
			if (t == LDNS_RR_TYPE_RRSIG || t == LDNS_RR_TYPE_NSEC)
				continue;
			bool dup = false;
			for (size_t k = 0; k < nt; k++)
				dup |= types[k] == t;
			if (!dup)
				types[nt++] = t;
		}
		types[nt++] = LDNS_RR_TYPE_NSEC;
		types[nt++] = LDNS_RR_TYPE_RRSIG;
		assert_non_null(nsec);
		assert_int_equal(ldns_dname_compare(ldns_rr_rdf(nsec, 0), own[(i + 1) % nown]), 0);
		ldns_rdf *bm = ldns_dnssec_create_nsec_bitmap(types, nt, LDNS_RR_TYPE_NSEC);
		assert_non_null(bm);
		assert_int_equal(ldns_rdf_compare(bm, ldns_rr_rdf(nsec, 1)), 0);
		ldns_rdf_deep_free(bm);
	}
	free(own);
	ldns_rr_list_deep_free(all);
}

static int cmp_rr(const void *a, const void *b)
{
	const ldns_rr *x = *(ldns_rr *const *)a, *y = *(ldns_rr *const *)b;
	int c = ldns_rr_compare(x, y);

	if (c == 0)
		c = (ldns_rr_ttl(x) > ldns_rr_ttl(y)) - (ldns_rr_ttl(x) < ldns_rr_ttl(y));
	return c;
}

static int rr_eq(const ldns_rr *x, const ldns_rr *y)
{
	return cmp_rr(&x, &y) == 0;
}

static void sort_list(ldns_rr_list *l)
{
	/* ldns_rr_list has no public sort with a comparator: sort a copy of
	 * the pointers and put them back. */
	size_t n = ldns_rr_list_rr_count(l);
	ldns_rr **v = malloc((n ? n : 1) * sizeof(*v));

	for (size_t i = 0; i < n; i++)
		v[i] = ldns_rr_list_rr(l, i);
	qsort(v, n, sizeof(*v), cmp_rr);
	for (size_t i = 0; i < n; i++)
		ldns_rr_list_set_rr(l, v[i], i);
	free(v);
}

/* Apply the diff to the old zone's RRs and compare with the new zone. */
static void check_ixfr(ldns_rr_list *old, const struct zone_diff *d, const struct zone *z)
{
	const ldns_rr_list *rem = zone_diff_removed(d), *add = zone_diff_added(d);
	ldns_rr_list *now = zone_rrs(z), *res = ldns_rr_list_new();
	size_t n = ldns_rr_list_rr_count(old);
	bool *gone = calloc(n + 1, sizeof(*gone));

	/* The old SOA leads the removals, the new SOA the additions. */
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(rem, 0)), LDNS_RR_TYPE_SOA);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(add, 0)), LDNS_RR_TYPE_SOA);
	for (size_t i = 0; i < ldns_rr_list_rr_count(rem); i++) {
		size_t j;
		for (j = 0; j < n; j++)
			if (!gone[j] && rr_eq(ldns_rr_list_rr(old, j), ldns_rr_list_rr(rem, i)))
				break;
		if (j == n)
			fail_msg("IXFR removes an RR that is not in the old zone");
		gone[j] = true;
	}
	for (size_t j = 0; j < n; j++)
		if (!gone[j])
			assert_true(ldns_rr_list_push_rr(res, ldns_rr_clone(ldns_rr_list_rr(old, j))));
	for (size_t i = 0; i < ldns_rr_list_rr_count(add); i++)
		assert_true(ldns_rr_list_push_rr(res, ldns_rr_clone(ldns_rr_list_rr(add, i))));
	sort_list(res);
	sort_list(now);
	assert_int_equal(ldns_rr_list_rr_count(res), ldns_rr_list_rr_count(now));
	for (size_t i = 0; i < ldns_rr_list_rr_count(now); i++)
		assert_true(rr_eq(ldns_rr_list_rr(res, i), ldns_rr_list_rr(now, i)));
	free(gone);
	ldns_rr_list_deep_free(res);
	ldns_rr_list_deep_free(now);
}

/* The journal form round-trips. */
static void check_wire(const struct zone_diff *d)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	struct zone_diff *back = NULL;

	assert_int_equal(zone_diff_to_wire(d, &buf, &len), 0);
	assert_int_equal(zone_diff_from_wire(buf, len, &back), 0);
	assert_int_equal(zone_diff_serial_from(back), zone_diff_serial_from(d));
	assert_int_equal(zone_diff_serial_to(back), zone_diff_serial_to(d));
	assert_int_equal(zone_diff_signatures(back), zone_diff_signatures(d));
	assert_int_equal(ldns_rr_list_compare(zone_diff_removed(back), zone_diff_removed(d)), 0);
	assert_int_equal(ldns_rr_list_compare(zone_diff_added(back), zone_diff_added(d)), 0);
	/* Truncated or padded journals are refused. */
	struct zone_diff *bad = NULL;
	assert_int_equal(zone_diff_from_wire(buf, len - 1, &bad), ZONE_EFORMAT);
	buf = realloc(buf, len + 1);
	buf[len] = 0;
	assert_int_equal(zone_diff_from_wire(buf, len + 1, &bad), ZONE_EFORMAT);
	assert_null(bad);
	free(buf);
	zone_diff_free(back);
}

static void make_device(struct fix *f, int i, uint32_t idx, unsigned styles,
			struct zone_device *d, uint8_t h[32])
{
	char s[80];

	snprintf(s, sizeof(s), "%s/%u", ids[canon(i)], idx);
	unsigned int n = 0;
	EVP_Digest(s, strlen(s), h, &n, EVP_sha256(), NULL);
	memset(d, 0, sizeof(*d));
	d->id = ids[i];
	d->index = idx;
	d->styles = styles;
	if (styles & ZONE_STYLE_CERT_PKIX) {
		d->cert_der = f->cert;
		d->cert_len = f->certlen;
	} else {
		d->cert_sha256 = h;
	}
	d->spki_sha256 = (styles & ZONE_STYLE_DANCE) && rnd(2) ? h : NULL;
	if (d->spki_sha256 == NULL && (styles & ZONE_STYLE_DANCE)) {
		d->cert_der = f->cert;
		d->cert_len = f->certlen;
	}
}

static size_t names_of(unsigned styles)
{
	return ((styles & (ZONE_STYLE_SEED | ZONE_STYLE_CERT_PKIX)) ? 1 : 0) +
	       ((styles & ZONE_STYLE_DANCE) ? 1 : 0);
}

static void reload(struct fix *f);

static void run(struct fix *f, int steps, int group_every)
{
	static const unsigned style_set[] = {
		ZONE_STYLE_SEED, ZONE_STYLE_SEED, ZONE_STYLE_CERT_PKIX, ZONE_STYLE_DANCE,
		ZONE_STYLE_SEED | ZONE_STYLE_DANCE, ZONE_STYLE_CERT_PKIX | ZONE_STYLE_DANCE,
	};
	for (int step = 1; step <= steps; step++) {
		struct zone_change *c = NULL;
		struct zone_diff *d = NULL;
		ldns_rr_list *old = zone_rrs(f->z);
		int ops = (group_every && step % group_every == 0) ? 2 + (int)rnd(5) : 1;
		size_t want = 1;  /* the SOA */
		bool exact = ops == 1;
		int done = 0;

		assert_int_equal(zone_change_begin(f->z, &c), 0);
		for (int k = 0; k < ops; k++) {
			int i = (int)rnd(NIDS), ci = canon(i);
			uint32_t idx = 1 + rnd(NIDX);
			if (f->present[ci][idx] && rnd(2)) {
				assert_int_equal(zone_change_device_remove(c, ids[i], idx), 0);
				f->present[ci][idx] = 0;
				want += 1;  /* the predecessor's NSEC */
				done++;
			} else if (!f->present[ci][idx]) {
				struct zone_device dev;
				uint8_t h[32];
				unsigned st = style_set[rnd(6)];
				make_device(f, i, idx, st, &dev, h);
				assert_int_equal(zone_change_device_add(c, &dev), 0);
				f->present[ci][idx] = st;
				want += 2 * names_of(st) + 1;
				done++;
			} else {
				/* Publishing again what is there is refused and changes nothing. */
				struct zone_device dev;
				uint8_t h[32];
				make_device(f, i, idx, ZONE_STYLE_SEED, &dev, h);
				assert_int_equal(zone_change_device_add(c, &dev), ZONE_EEXIST);
			}
		}
		assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
		zone_change_free(c);
		if (exact && done)
			assert_int_equal(zone_diff_signatures(d), want);
		if (!done)
			assert_int_equal(zone_diff_signatures(d), 1);
		check_chain(f->z);
		check_ixfr(old, d, f->z);
		check_wire(d);
		zone_diff_free(d);
		ldns_rr_list_deep_free(old);
		if (step % 15 == 0) {
			assert_int_equal(zone_check(f->z, f->now, true), 0);
			tzs_verify_zone(f->z, f->dir, "random.zone");
		}
		if (step % 97 == 0)
			reload(f);
	}
}

struct loader {
	struct zone *z;
	size_t n;
};

static int load_one(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *blob,
		    size_t len)
{
	struct loader *l = ctx;

	l->n++;
	return zone_load_name(l->z, key, keylen, blob, len);
}

/* Export every name, load into a fresh zone (no signing), carry on with it. */
static void reload(struct fix *f)
{
	struct loader l = { NULL, 0 };
	char *before = tzs_zone_text(f->z), *after;
	size_t sigs = f->s.sigs;
	struct zone_change *c = NULL;

	l.z = tzs_zone_new(&f->s, NULL, 0);
	assert_int_equal(zone_export_foreach(f->z, load_one, &l), 0);
	assert_int_equal(l.n, zone_names(f->z));
	/* Changes wait for the load to finish. */
	assert_int_equal(zone_change_begin(l.z, &c), ZONE_ESTATE);
	assert_int_equal(zone_load_finish(l.z, f->now, (zone_serial(f->z) & 1) != 0), 0);
	assert_int_equal(f->s.sigs, sigs);
	assert_int_equal(zone_serial(l.z), zone_serial(f->z));
	after = tzs_zone_text(l.z);
	assert_string_equal(before, after);
	free(before);
	free(after);
	/* Per-name export agrees with the bulk export. */
	uint8_t *blob = NULL;
	size_t len;
	assert_int_equal(zone_export_name(l.z, (const uint8_t *)"", 0, &blob, &len), 0);
	assert_int_equal(zone_load_name(l.z, (const uint8_t *)"", 0, blob, len), ZONE_ESTATE);
	free(blob);
	zone_free(f->z);
	f->z = l.z;
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;

	tzs_signer_init(&f->s);
	f->z = tzs_zone_new(&f->s, NULL, 0);
	f->dir = tzs_tmpdir();
	f->now = (int64_t)time(NULL);
	f->cert = tzs_cert_new("1.abc.iotregistry.test", &f->certlen);
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);
	/* Names before and after the device namespace in canonical order. */
	static const char *extra[] = {
		"_dmarc.iotregistry.test. 3600 IN TXT \"v=DMARC1\"",
		"ns1.iotregistry.test. 3600 IN A 127.0.0.1",
		"zz.iotregistry.test. 3600 IN TXT \"last\"",
	};
	for (size_t i = 0; i < 3; i++) {
		ldns_rr *rr = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&rr, extra[i], 3600, NULL, NULL), LDNS_STATUS_OK);
		assert_int_equal(zone_change_begin(f->z, &c), 0);
		assert_int_equal(zone_change_rr_add(c, rr), 0);
		assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
		zone_change_free(c);
		zone_diff_free(d);
		ldns_rr_free(rr);
	}
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
	OPENSSL_free(f->cert);
	free(f);
	return 0;
}

static void test_random_single_changes(void **state)
{
	run(*state, 300, 0);
}

static void test_random_group_changes(void **state)
{
	run(*state, 200, 3);
}

/* Load refuses damaged rows instead of trusting them. */
static void test_load_refuses_bad_rows(void **state)
{
	struct fix *f = *state;
	struct zone *z = tzs_zone_new(&f->s, NULL, 0);
	uint8_t *blob = NULL;
	size_t len;

	assert_int_equal(zone_export_name(f->z, (const uint8_t *)"", 0, &blob, &len), 0);
	assert_int_equal(zone_load_name(z, (const uint8_t *)"", 0, blob, len - 1), ZONE_EFORMAT);
	blob[0] = 9;  /* unknown version */
	assert_int_equal(zone_load_name(z, (const uint8_t *)"", 0, blob, len), ZONE_EFORMAT);
	blob[0] = 1;
	/* An upper-case key is not canonical. */
	uint8_t key[] = { 'N', 'S', '1', 0, 0 };
	assert_int_equal(zone_load_name(z, key, sizeof(key), blob, len), ZONE_EFORMAT);
	assert_int_equal(zone_load_name(z, (const uint8_t *)"", 0, blob, len), 0);
	assert_int_equal(zone_load_name(z, (const uint8_t *)"", 0, blob, len), ZONE_EEXIST);
	/* The apex alone misses the names its NSEC chain was signed over: only
	 * verification notices, and the zone then refuses changes. */
	assert_int_equal(zone_load_finish(z, f->now, true), ZONE_ECHECK);
	struct zone_change *c = NULL;
	assert_int_equal(zone_change_begin(z, &c), ZONE_ESTATE);
	assert_int_equal(zone_check(z, f->now, false), ZONE_ECHECK);
	free(blob);
	zone_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_random_single_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_group_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_load_refuses_bad_rows, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
