/*
 * Bulk import: a zone of N devices built in one pass, its signatures
 * requested in batches, verified by ldns-verify-zone and dnssec-verify;
 * refusals leave the zone unchanged; and the memory the zone keeps per
 * device record (with its RRSIG and its NSEC + RRSIG) at 1,000,000 devices,
 * which must stay at or under 600 bytes. A copy loaded from a bulk-built
 * zone (as the daemon rebuilds its working copy: both in slabs) is equal
 * name by name, takes changes, verifies, and frees cleanly under ASan.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <malloc.h>

#include <cmocka.h>

#include "test_zone_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

struct fix {
	struct tzs_signer s;
	struct zone *z;
	char *dir;
	int64_t now;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	tzs_signer_init(&f->s);
	f->z = tzs_zone_new(&f->s, NULL, 0);
	f->dir = tzs_tmpdir();
	f->now = (int64_t)time(NULL);
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

struct devs {
	struct zone_device *d;
	char (*id)[40];
	uint8_t (*h)[32];
	size_t n;
};

static void devs_make(struct devs *v, size_t n, uint64_t seed, bool mixed)
{
	uint64_t x = seed;

	v->n = n;
	v->d = calloc(n, sizeof(*v->d));
	v->id = calloc(n, sizeof(*v->id));
	v->h = calloc(n, sizeof(*v->h));
	assert_non_null(v->d);
	for (size_t i = 0; i < n; i++) {
		x = x * 6364136223846793005ull + 1442695040888963407ull;
		/* 20 hex digits like an ICCID; the index makes them unique. */
		snprintf(v->id[i], sizeof(v->id[i]), "%012llx%08zx",
			 (unsigned long long)(x >> 16) & 0xffffffffffffull, i);
		memcpy(v->h[i], &x, sizeof(x));
		v->d[i].id = v->id[i];
		v->d[i].index = 1;
		v->d[i].styles = ZONE_STYLE_SEED;
		if (mixed && i % 5 == 1)
			v->d[i].styles = ZONE_STYLE_SEED | ZONE_STYLE_DANCE;
		if (mixed && i % 5 == 2)
			v->d[i].styles = ZONE_STYLE_DANCE;
		v->d[i].cert_sha256 = v->h[i];
		v->d[i].spki_sha256 = v->h[i];
	}
}

static void devs_free(struct devs *v)
{
	free(v->d);
	free(v->id);
	free(v->h);
}

static void test_bulk_small(void **state)
{
	struct fix *f = *state;
	struct devs v;
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	char *before;

	devs_make(&v, 500, 42, true);
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, tzs_sign, &f->s, 64), 0);
	/* 300 seed-only/seed+dance CERT names, 200 TLSA names; a data RRset and
	 * an NSEC each; the apex's SOA, NS, DNSKEY and NSEC. */
	size_t names = 400 + 200;
	assert_int_equal(zone_names(f->z), names + 1);
	assert_int_equal(f->s.sigs, 2 * names + 4);
	assert_int_equal(f->s.calls, (2 * names + 4 + 63) / 64);
	assert_int_equal(zone_serial(f->z), 1);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, f->dir, "bulk.zone");
	/* Incremental changes carry on from there. */
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_device_remove(c, v.id[7], 1), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	assert_int_equal(zone_diff_signatures(d), 2);
	zone_change_free(c);
	zone_diff_free(d);
	/* A second import into a zone with devices is refused, unchanged. */
	before = tzs_zone_text(f->z);
	assert_int_equal(zone_bulk_import(f->z, v.d, 3, f->now, tzs_sign, &f->s, 0), ZONE_ESTATE);
	char *after = tzs_zone_text(f->z);
	assert_string_equal(before, after);
	free(before);
	free(after);
	devs_free(&v);
}

static void test_bulk_refusals(void **state)
{
	struct fix *f = *state;
	struct devs v;
	char *before, *after;
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	ldns_rr *rr = NULL;

	/* A zone with an apex and a published name first. */
	assert_int_equal(ldns_rr_new_frm_str(&rr, "www.iotregistry.test. 60 IN A 192.0.2.1", 0,
					     NULL, NULL), LDNS_STATUS_OK);
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_rr_add(c, rr), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);
	ldns_rr_free(rr);
	before = tzs_zone_text(f->z);
	devs_make(&v, 300, 7, false);
	/* A duplicate in the input. */
	v.d[10].id = v.id[20];
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, tzs_sign, &f->s, 0), ZONE_EEXIST);
	v.d[10].id = v.id[10];
	/* A bad device. */
	v.d[3].index = 0;
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, tzs_sign, &f->s, 0), ZONE_EINVAL);
	v.d[3].index = 1;
	/* Signing fails in the middle (the second batch). */
	size_t calls = f->s.calls;
	f->s.fail = 0;
	struct tzs_signer *s = &f->s;
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, tzs_sign, &(struct tzs_signer){
		.ksk = s->ksk, .zsk = s->zsk, .ksk_tag = s->ksk_tag, .zsk_tag = s->zsk_tag,
		.fail = 1 }, 100), ZONE_ESIGN);
	(void)calls;
	after = tzs_zone_text(f->z);
	assert_string_equal(before, after);
	free(after);
	/* Then it works, keeping the published name, with a new serial. */
	uint32_t serial = zone_serial(f->z);
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, tzs_sign, &f->s, 100), 0);
	assert_int_equal(zone_serial(f->z), serial + 1);
	assert_int_equal(zone_names(f->z), 2 + 300);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, f->dir, "bulk2.zone");
	free(before);
	devs_free(&v);
}

/* A signer that does no cryptography: the memory test measures the zone. */
static int fake_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	size_t *count = ctx;

	for (size_t i = 0; i < n; i++)
		memset(reqs[i].sig, (int)(i & 0xff), 64);
	*count += n;
	return 0;
}

static int reload_row(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *blob,
		      size_t len)
{
	return zone_load_name(ctx, key, keylen, blob, len);
}

static void test_bulk_memory(void **state)
{
	struct fix *f = *state;
	const char *env = getenv("REGSIGN_ZONE_BULK_N");
	size_t n = env ? strtoul(env, NULL, 10) : 1000000;
	struct devs v;
	size_t sigs = 0;
	struct zone_status st;
	struct timespec a, b;

	zone_free(f->z);
	devs_make(&v, n, 99, false);
	malloc_trim(0);
	struct mallinfo2 m0 = mallinfo2();
	/* The signatures are fake: the self-check must not verify them. */
	struct zone_params p;
	zone_params_init(&p);
	assert_int_equal(zone_dnskey_from_pkey(f->s.ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(f->s.zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk), 0);
	p.verify = false;
	assert_int_equal(zone_new(&p, &f->z), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, fake_sign, &sigs, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	malloc_trim(0);
	struct mallinfo2 m1 = mallinfo2();
	assert_int_equal(sigs, 2 * n + 4);
	assert_int_equal(zone_names(f->z), n + 1);
	zone_status_get(f->z, f->now, &st);
	double usable = (double)st.bytes / (double)n;
	/* Large slabs are mmap'd chunks: hblkhd, not uordblks. */
	double heap = (double)((m1.uordblks + m1.hblkhd) - (m0.uordblks + m0.hblkhd)) / (double)n;
	print_message("bulk import of %zu devices: %.2f s; zone heap %.1f bytes/device "
		      "(usable sizes %.1f), %zu signatures requested\n", n,
		      (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9, heap,
		      usable, sigs);
	assert_true(usable <= 600.0);
#ifndef REGSIGN_SANITIZE
	/* mallinfo2 counts glibc's own chunk overhead; sanitizers replace malloc. */
	assert_true(heap <= 600.0);
	assert_true(heap >= usable);
#endif
	/* The restart path: every row exported and loaded into a fresh zone. */
	struct zone *y = NULL;
	assert_int_equal(zone_new(&p, &y), 0);
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(zone_export_foreach(f->z, reload_row, y), 0);
	assert_int_equal(zone_load_finish(y, f->now, false), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(zone_names(y), n + 1);
	assert_int_equal(zone_serial(y), zone_serial(f->z));
	print_message("export + reload of %zu names (structural check, no signing): %.2f s\n",
		      n + 1, (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9);
	zone_free(y);
	/* One incremental device on the big zone. */
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	struct zone_device dev = { .id = "ffffffffffffffffffff", .index = 1,
				   .styles = ZONE_STYLE_SEED, .cert_sha256 = v.h[0] };
	clock_gettime(CLOCK_MONOTONIC, &a);
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_device_add(c, &dev), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	clock_gettime(CLOCK_MONOTONIC, &b);
	assert_int_equal(zone_diff_signatures(d), 4);
	print_message("one device added to the %zu-device zone in %.3f ms (4 real signatures)\n",
		      n, ((double)(b.tv_sec - a.tv_sec) * 1e3 +
			  (double)(b.tv_nsec - a.tv_nsec) / 1e6));
	zone_change_free(c);
	zone_diff_free(d);
	devs_free(&v);
}

/* Every row of a zone, kept for comparison with another copy. */
struct rows {
	uint8_t **key, **blob;
	size_t *klen, *blen;
	size_t n, cap;
};

static int rows_add(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *blob,
		    size_t len)
{
	struct rows *r = ctx;

	if (r->n == r->cap) {
		r->cap = r->cap ? 2 * r->cap : 256;
		r->key = realloc(r->key, r->cap * sizeof(*r->key));
		r->blob = realloc(r->blob, r->cap * sizeof(*r->blob));
		r->klen = realloc(r->klen, r->cap * sizeof(*r->klen));
		r->blen = realloc(r->blen, r->cap * sizeof(*r->blen));
		assert_non_null(r->key);
		assert_non_null(r->blob);
		assert_non_null(r->klen);
		assert_non_null(r->blen);
	}
	r->key[r->n] = malloc(keylen + 1);
	r->blob[r->n] = malloc(len);
	assert_non_null(r->key[r->n]);
	assert_non_null(r->blob[r->n]);
	memcpy(r->key[r->n], key, keylen);
	memcpy(r->blob[r->n], blob, len);
	r->klen[r->n] = keylen;
	r->blen[r->n] = len;
	r->n++;
	return 0;
}

static void rows_free(struct rows *r)
{
	for (size_t i = 0; i < r->n; i++) {
		free(r->key[i]);
		free(r->blob[i]);
	}
	free(r->key);
	free(r->blob);
	free(r->klen);
	free(r->blen);
	memset(r, 0, sizeof(*r));
}

/* Zero the r||s of every signature of a stored name (version byte, then
 * per RRset: type(2) flags(1) ttl(4) nrr(2) {rdlen(2) rdata}* times(8)
 * tag(2) r||s(64)): ECDSA signatures of the same data differ. */
static void mask_rs(uint8_t *b, size_t len)
{
	size_t p = 1;

	while (p < len) {
		assert_true(len - p >= 9);
		unsigned nrr = (unsigned)(b[p + 7] << 8 | b[p + 8]);
		p += 9;
		for (unsigned i = 0; i < nrr; i++) {
			assert_true(len - p >= 2);
			p += 2 + (size_t)(b[p] << 8 | b[p + 1]);
		}
		assert_true(len - p >= 74);
		memset(b + p + 10, 0, 64);
		p += 74;
	}
	assert_int_equal(p, len);
}

/* Every name of @p want has the same stored form in @p z (with @p mask, up
 * to the r||s of signatures), and @p z has no other. */
static void assert_same_names(const struct zone *z, const struct rows *want, bool mask)
{
	assert_int_equal(zone_names(z), want->n);
	for (size_t i = 0; i < want->n; i++) {
		uint8_t *blob = NULL;
		size_t len = 0;
		assert_int_equal(zone_export_name(z, want->key[i], want->klen[i], &blob, &len), 0);
		assert_int_equal(len, want->blen[i]);
		if (mask) {
			mask_rs(blob, len);
			mask_rs(want->blob[i], len);
		}
		assert_memory_equal(blob, want->blob[i], len);
		free(blob);
	}
}

/*
 * The daemon's working copy after a bulk adoption: loaded name by name from
 * the bulk-built zone (both copies' nodes in slabs). It must equal the
 * original name by name, take changes that replace and remove slab nodes
 * (the old ones freed into their slab, poisoned under ASan) and add new
 * ones, pass the full check and the external verifiers, and the original
 * must take the same changes to the same result.
 */
static void test_bulk_slab_copy(void **state)
{
	struct fix *f = *state;
	struct devs v;
	struct rows orig = { 0 }, after = { 0 };
	struct zone *y = NULL;
	struct zone_status st;

	devs_make(&v, 3000, 7, true);
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, tzs_sign, &f->s, 512), 0);
	assert_int_equal(zone_export_foreach(f->z, rows_add, &orig), 0);
	assert_int_equal(orig.n, zone_names(f->z));
	y = tzs_zone_new(&f->s, NULL, 0);
	assert_int_equal(zone_export_foreach(f->z, reload_row, y), 0);
	assert_int_equal(zone_load_finish(y, f->now, true), 0);
	assert_int_equal(zone_serial(y), zone_serial(f->z));
	assert_same_names(y, &orig, false);
	/* STATUS counts slab bytes, not malloc_usable_size of slab nodes. */
	zone_status_get(y, f->now, &st);
	assert_true(st.bytes >= 200 * orig.n);
	assert_true(st.bytes <= 400 * orig.n);
	/* The same changes on both copies: removals, additions, a re-issue. */
	for (int round = 0; round < 2; round++) {
		struct zone *z = round == 0 ? y : f->z;
		struct zone_change *c = NULL;
		struct zone_diff *d = NULL;
		struct zone_device add = { .id = "ffffffffffffffffff01", .index = 1,
					   .styles = ZONE_STYLE_SEED, .cert_sha256 = v.h[0] };
		assert_int_equal(zone_change_begin(z, &c), 0);
		for (size_t i = 0; i < v.n; i += 97)
			assert_int_equal(zone_change_device_remove(c, v.id[i], 1), 0);
		assert_int_equal(zone_change_device_add(c, &add), 0);
		struct zone_device re = v.d[5];
		re.index = 2;
		assert_int_equal(zone_change_device_remove(c, v.id[5], 1), 0);
		assert_int_equal(zone_change_device_add(c, &re), 0);
		assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
		zone_change_free(c);
		zone_diff_free(d);
		assert_int_equal(zone_check(z, f->now, true), 0);
	}
	assert_int_equal(zone_export_foreach(f->z, rows_add, &after), 0);
	assert_int_equal(after.n, zone_names(f->z));
	assert_true(after.n < orig.n - 30);
	assert_same_names(y, &after, true);
	tzs_verify_zone(y, f->dir, "slabcopy.zone");
	zone_free(y);
	rows_free(&orig);
	rows_free(&after);
	devs_free(&v);
}

/*
 * Device records are re-signed every few hours, each time into a new node:
 * over several full re-signing cycles of a bulk-built zone (nodes in slabs)
 * the zone's heap must stay about what it was, because each replaced node's
 * slab space is taken by the next node of its size (without reuse it would
 * double: dead slab space plus a malloc'd copy of every name).
 */
static void test_bulk_churn(void **state)
{
	struct fix *f = *state;
	struct devs v;
	size_t sigs = 0, n = 20000;
	struct zone_status st;
	struct zone_params p;

	zone_free(f->z);
	devs_make(&v, n, 5, false);
	zone_params_init(&p);
	assert_int_equal(zone_dnskey_from_pkey(f->s.ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(f->s.zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk), 0);
	p.verify = false;
	assert_int_equal(zone_new(&p, &f->z), 0);
	assert_int_equal(zone_bulk_import(f->z, v.d, v.n, f->now, fake_sign, &sigs, 0), 0);
	zone_status_get(f->z, f->now, &st);
	size_t bytes0 = st.bytes;
	for (int cycle = 1; cycle <= 3; cycle++) {
		int64_t t = f->now + (int64_t)cycle * (int64_t)p.device_validity;
		size_t before = sigs;
		for (;;) {
			struct zone_diff *d = NULL;
			size_t s0 = sigs;
			assert_int_equal(zone_resign_due(f->z, t, 4096, fake_sign, &sigs, &d), 0);
			zone_diff_free(d);
			if (sigs == s0)
				break;
		}
		/* Every device name's record was re-signed: every node replaced. */
		assert_true(sigs - before >= n);
		zone_status_get(f->z, t, &st);
		print_message("re-signing cycle %d: zone heap %.1f bytes/name (%.1f after the import)\n",
			      cycle, (double)st.bytes / (double)(n + 1), (double)bytes0 / (double)(n + 1));
		assert_true(st.bytes <= bytes0 + bytes0 / 10);
	}
	assert_int_equal(zone_names(f->z), n + 1);
	devs_free(&v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_bulk_small, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_slab_copy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_churn, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bulk_memory, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
