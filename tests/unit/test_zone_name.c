/*
 * Tests of zonesigner/zone_name (canonical-order keys) and zone_tree (the
 * AVL index): the key order must be exactly ldns_dname_compare's on tricky
 * names, and the tree must behave like a sorted array under random
 * insertions and removals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "zonesigner/zone_err.h"
#include "zonesigner/zone_ldns.h"
#include "zonesigner/zone_name.h"
#include "zonesigner/zone_node.h"
#include "zonesigner/zone_time.h"
#include "zonesigner/zone_tree.h"

static const uint8_t apex[] = "\x0biotregistry\x04test";  /* + the final 0 of the literal */
#define APEXLEN sizeof(apex)

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

/* A label from an alphabet chosen to hit the corner cases: case, 0x00 and
 * 0xff bytes, digits, characters around 'A'-'Z' and 'a'-'z'. */
static size_t rand_label(uint8_t *out, const uint8_t *prev, size_t prevlen)
{
	static const uint8_t alpha[] = { 0x00, 0x01, '0', '9', '@', 'A', 'Z', '[', '_', '`',
					 'a', 'z', '{', 0x7f, 0x80, 0xfe, 0xff, '-' };
	size_t len;

	if (prev != NULL && rnd(3) == 0) {
		/* A prefix or an extension of the previous label. */
		len = rnd(2) ? (prevlen > 1 ? prevlen - 1 : 1) : (prevlen < 63 ? prevlen + 1 : 63);
		for (size_t i = 0; i < len; i++)
			out[i] = i < prevlen ? prev[i] : alpha[rnd(sizeof(alpha))];
		if (rnd(2) && len > 0) {
			uint8_t c = out[len - 1];
			if (c >= 'a' && c <= 'z')
				out[len - 1] = (uint8_t)(c - 32);
		}
		return len;
	}
	len = rnd(8) == 0 ? 63 - rnd(3) : 1 + rnd(4);
	for (size_t i = 0; i < len; i++)
		out[i] = alpha[rnd(sizeof(alpha))];
	return len;
}

/* A random wire name below the apex (1..4 labels). */
static size_t rand_name(uint8_t *wire, const uint8_t *prev)
{
	size_t p = 0, n = 1 + rnd(4);
	uint8_t lab[63];

	for (size_t i = 0; i < n; i++) {
		const uint8_t *pl = NULL;
		size_t plen = 0;
		if (prev != NULL && prev[0] != 0) {
			pl = prev + 1;
			plen = prev[0];
		}
		size_t l = rand_label(lab, i == 0 ? pl : NULL, plen);
		wire[p++] = (uint8_t)l;
		memcpy(wire + p, lab, l);
		p += l;
	}
	memcpy(wire + p, apex, APEXLEN);
	return p + APEXLEN;
}

static int sgn(int x)
{
	return (x > 0) - (x < 0);
}

static void test_key_order_matches_ldns(void **state)
{
	enum { N = 3000 };
	static uint8_t wire[N][ZONE_WIRE_MAX], key[N][ZONE_KEY_MAX];
	static size_t wlen[N], klen[N];
	ldns_rdf *rdf[N];

	(void)state;
	for (int i = 0; i < N; i++) {
		wlen[i] = rand_name(wire[i], i ? wire[i - 1] : NULL);
		assert_int_equal(zone_name_key_from_wire(wire[i], wlen[i], apex, APEXLEN, key[i],
							 &klen[i]), 0);
		rdf[i] = ldns_dname_new_frm_data((uint16_t)wlen[i], wire[i]);
		assert_non_null(rdf[i]);
	}
	for (int t = 0; t < 200000; t++) {
		int a = (int)rnd(N), b = rnd(4) == 0 ? (a + 1) % N : (int)rnd(N);
		int want = sgn(ldns_dname_compare(rdf[a], rdf[b]));
		int got = sgn(zone_name_key_cmp(key[a], klen[a], key[b], klen[b]));
		if (want != got)
			fail_msg("order differs for names %d and %d: ldns %d, key %d", a, b, want, got);
	}
	/* Round trip: the key gives back the lowercased wire name. */
	for (int i = 0; i < N; i++) {
		uint8_t back[ZONE_WIRE_MAX];
		size_t blen;
		assert_int_equal(zone_name_key_to_wire(key[i], klen[i], apex, APEXLEN, back, &blen),
				 0);
		assert_int_equal(blen, wlen[i]);
		ldns_rdf *lo = ldns_rdf_clone(rdf[i]);
		ldns_dname2canonical(lo);
		assert_memory_equal(back, ldns_rdf_data(lo), blen);
		ldns_rdf_deep_free(lo);
		ldns_rdf_deep_free(rdf[i]);
	}
}

static void test_key_fixed_cases(void **state)
{
	/* Pairs in canonical order (RFC 4034 section 6.1's example and more). */
	static const char *ordered[] = {
		"iotregistry.test.", "a.iotregistry.test.", "yljkjljk.a.iotregistry.test.",
		"Z.a.iotregistry.test.", "zABC.a.iotregistry.test.", "z.iotregistry.test.",
		"\\001.z.iotregistry.test.", "*.z.iotregistry.test.", "\\200.z.iotregistry.test.",
	};
	uint8_t k1[ZONE_KEY_MAX], k2[ZONE_KEY_MAX], w[ZONE_WIRE_MAX];
	size_t l1, l2, wl;

	(void)state;
	for (size_t i = 0; i + 1 < sizeof(ordered) / sizeof(ordered[0]); i++) {
		ldns_rdf *a = ldns_dname_new_frm_str(ordered[i]);
		ldns_rdf *b = ldns_dname_new_frm_str(ordered[i + 1]);
		assert_int_equal(zone_name_key_from_wire(ldns_rdf_data(a), ldns_rdf_size(a), apex,
							 APEXLEN, k1, &l1), 0);
		assert_int_equal(zone_name_key_from_wire(ldns_rdf_data(b), ldns_rdf_size(b), apex,
							 APEXLEN, k2, &l2), 0);
		assert_true(zone_name_key_cmp(k1, l1, k2, l2) < 0);
		assert_true(ldns_dname_compare(a, b) < 0);
		ldns_rdf_deep_free(a);
		ldns_rdf_deep_free(b);
	}
	/* The apex is the empty key; names outside the zone are refused. */
	assert_int_equal(zone_name_key_from_wire(apex, APEXLEN, apex, APEXLEN, k1, &l1), 0);
	assert_int_equal(l1, 0);
	ldns_rdf *o = ldns_dname_new_frm_str("www.example.test.");
	assert_int_equal(zone_name_key_from_wire(ldns_rdf_data(o), ldns_rdf_size(o), apex, APEXLEN,
						 k1, &l1), ZONE_EINVAL);
	ldns_rdf_deep_free(o);
	o = ldns_dname_new_frm_str("xiotregistry.test.");
	assert_int_equal(zone_name_key_from_wire(ldns_rdf_data(o), ldns_rdf_size(o), apex, APEXLEN,
						 k1, &l1), ZONE_EINVAL);
	ldns_rdf_deep_free(o);
	/* Malformed keys are refused, not read past. */
	static const uint8_t bad1[] = { 'a', 0 }, bad2[] = { 0, 0 }, bad3[] = { 'a', 0, 7 };
	assert_true(zone_name_key_to_wire(bad1, sizeof(bad1), apex, APEXLEN, w, &wl) < 0);
	assert_true(zone_name_key_to_wire(bad2, sizeof(bad2), apex, APEXLEN, w, &wl) < 0);
	assert_true(zone_name_key_to_wire(bad3, sizeof(bad3), apex, APEXLEN, w, &wl) < 0);
	assert_true(zone_name_key_labels(bad1, sizeof(bad1)) < 0);
	/* is_below works on label boundaries only. */
	uint8_t ka[ZONE_KEY_MAX], kb[ZONE_KEY_MAX];
	size_t la = 0, lb = 0;
	assert_int_equal(zone_name_key_push(ka, &la, (const uint8_t *)"ab", 2), 0);
	assert_int_equal(zone_name_key_push(kb, &lb, (const uint8_t *)"abc", 3), 0);
	assert_false(zone_name_key_is_below(kb, lb, ka, la));
	assert_int_equal(zone_name_key_push(ka, &la, (const uint8_t *)"x", 1), 0);
	assert_true(zone_name_key_is_below(ka, la, ka, la - 3));
}

/* ---- The tree against a sorted array ---- */

static struct zone_node *mknode(uint32_t v, uint32_t expiration)
{
	uint8_t key[ZONE_KEY_MAX], lab[16], sets[ZONE_SET_HDR + ZONE_SIG_LEN];
	size_t keylen = 0;
	struct zone_node *n = NULL;

	/* Keys from numbers, varying lengths so prefixes occur. */
	int l = snprintf((char *)lab, sizeof(lab), "%x", v);
	assert_int_equal(zone_name_key_push(key, &keylen, lab, (size_t)l), 0);
	if (v % 3 == 0)
		assert_int_equal(zone_name_key_push(key, &keylen, (const uint8_t *)"s", 1), 0);
	memset(sets, 0, sizeof(sets));
	zone_put16(sets, ZONE_RRTYPE_NSEC);
	zone_put32(sets + ZONE_SET_HDR + 4, expiration);
	assert_int_equal(zone_node_new(key, keylen, sets, sizeof(sets), &n), 0);
	return n;
}

static int cmp_nodes(const void *a, const void *b)
{
	const struct zone_node *x = *(struct zone_node *const *)a, *y = *(struct zone_node *const *)b;

	return zone_name_key_cmp(zone_node_key(x), x->keylen, zone_node_key(y), y->keylen);
}

static int height(const struct zone_node *n)
{
	if (n == NULL)
		return 0;
	int l = height(n->left), r = height(n->right);
	assert_true(l - r <= 1 && r - l <= 1);
	assert_int_equal(n->height, (l > r ? l : r) + 1);
	return n->height;
}

static void test_tree_random(void **state)
{
	enum { M = 4000 };
	struct zone_tree t = { .refresh_device = 100, .refresh_other = 1000 };
	struct zone_node *ref[M];
	size_t nref = 0;
	const uint32_t base = 0xfffff000u;  /* expirations straddle the 2^32 wrap */

	(void)state;
	for (int step = 0; step < 30000; step++) {
		uint32_t v = rnd(6000);
		struct zone_node *n = mknode(v, base + rnd(0x2000));
		struct zone_node *f = zone_tree_find(&t, zone_node_key(n), n->keylen);
		if (f == NULL && nref < M && rnd(3) != 0) {
			assert_int_equal(zone_tree_insert(&t, n), 0);
			ref[nref++] = n;
			qsort(ref, nref, sizeof(*ref), cmp_nodes);
		} else if (f != NULL && rnd(2) == 0) {
			assert_ptr_equal(zone_tree_remove(&t, zone_node_key(n), n->keylen), f);
			for (size_t i = 0; i < nref; i++)
				if (ref[i] == f) {
					memmove(&ref[i], &ref[i + 1], (nref - i - 1) * sizeof(*ref));
					nref--;
					break;
				}
			free(f);
			free(n);
		} else if (f != NULL) {
			/* Replace in place; the old node comes back. */
			assert_ptr_equal(zone_tree_replace(&t, n), f);
			for (size_t i = 0; i < nref; i++)
				if (ref[i] == f)
					ref[i] = n;
			free(f);
		} else {
			assert_int_equal(zone_tree_remove(&t, zone_node_key(n), n->keylen), NULL);
			free(n);
		}
		assert_int_equal(t.count, nref);
		if (step % 500 != 0)
			continue;
		/* Full comparison: order, pred/succ, balance, subtree minima. */
		struct zone_tree_iter it;
		zone_tree_iter_init(&it, &t);
		uint32_t mindue = 0, minexp = 0;
		for (size_t i = 0; i < nref; i++) {
			assert_ptr_equal(zone_tree_iter_next(&it), ref[i]);
			const uint8_t *k = zone_node_key(ref[i]);
			assert_ptr_equal(zone_tree_pred(&t, k, ref[i]->keylen), i ? ref[i - 1] : NULL);
			assert_ptr_equal(zone_tree_succ(&t, k, ref[i]->keylen),
					 i + 1 < nref ? ref[i + 1] : NULL);
			uint32_t e = zone_get32(ref[i]->data + ref[i]->keylen + ZONE_SET_HDR + 4);
			if (i == 0 || zone_serial_lt(e, minexp))
				minexp = e;
			if (i == 0 || zone_serial_lt(e - 1000, mindue))
				mindue = e - 1000;
		}
		assert_null(zone_tree_iter_next(&it));
		if (nref > 0) {
			assert_ptr_equal(zone_tree_first(&t), ref[0]);
			assert_ptr_equal(zone_tree_last(&t), ref[nref - 1]);
			assert_int_equal(t.root->subexp, minexp);
			assert_int_equal(t.root->subdue, mindue);
			/* Everything due by a time is found, nothing else. */
			struct zone_node *due[M];
			uint32_t when = base + 0x1000 - 1000;
			size_t k = zone_tree_collect_due(&t, when, due, M), want = 0;
			for (size_t i = 0; i < nref; i++) {
				uint32_t e = zone_get32(ref[i]->data + ref[i]->keylen + ZONE_SET_HDR + 4);
				want += zone_serial_le(e - 1000, when);
			}
			assert_int_equal(k, want);
		}
		int h = height(t.root);
		/* AVL: height < 1.45 log2(n + 2). */
		int lg = 64 - __builtin_clzll((unsigned long long)nref + 2);
		assert_true(h * 100 <= 145 * lg + 100);
	}
	/* Build from a sorted array gives the same order, balanced. */
	struct zone_tree t2 = { .refresh_device = 100, .refresh_other = 1000 };
	struct zone_tree_iter it;
	struct zone_node *n;
	zone_tree_iter_init(&it, &t);
	size_t k = 0;
	struct zone_node **all = malloc((nref + 1) * sizeof(*all));
	while ((n = zone_tree_iter_next(&it)) != NULL)
		all[k++] = n;
	zone_tree_build(&t2, all, k);
	assert_int_equal(t2.count, nref);
	height(t2.root);
	zone_tree_iter_init(&it, &t2);
	for (size_t i = 0; i < nref; i++)
		assert_ptr_equal(zone_tree_iter_next(&it), ref[i]);
	for (size_t i = 0; i < nref; i++)
		free(ref[i]);
	free(all);
}

static void test_serial_arithmetic(void **state)
{
	(void)state;
	assert_true(zone_serial_lt(0xffffffffu, 0));
	assert_true(zone_serial_lt(0xfffffff0u, 5));
	assert_false(zone_serial_lt(5, 0xfffffff0u));
	assert_true(zone_serial_lt(1, 0x7fffffffu));
	/* Distance exactly 2^31 is undefined: neither is less. */
	assert_false(zone_serial_lt(0, 0x80000000u));
	assert_false(zone_serial_lt(0x80000000u, 0));
	assert_int_equal(zone_serial_next(0xffffffffu, false, 0), 1);  /* 0 skipped */
	assert_int_equal(zone_serial_next(41, false, 0), 42);
	assert_int_equal(zone_serial_next(41, true, 1000), 1000);
	assert_int_equal(zone_serial_next(5000, true, 1000), 5001);
	/* Unixtime serials past 2106 wrap and still increase. */
	int64_t t2106 = (int64_t)1 << 32;
	assert_int_equal(zone_serial_next(0xfffffff0u, true, t2106 + 10), 10);
	assert_true(zone_serial_lt(0xfffffff0u, 10));
	/* 64-bit times from 32-bit ones, near 2038 and 2106. */
	int64_t t2038 = 0x7fffffffll;
	assert_int_equal(zone_time64(zone_time32(t2038 + 100), t2038), t2038 + 100);
	assert_int_equal(zone_time64(zone_time32(t2106 + 100), t2106 - 100), t2106 + 100);
	assert_int_equal(zone_time64(zone_time32(t2106 - 100), t2106 + 100), t2106 - 100);
	/* Jitter is deterministic and in range. */
	assert_int_equal(zone_time_jitter((const uint8_t *)"ab", 2, 37, 1000),
			 zone_time_jitter((const uint8_t *)"ab", 2, 37, 1000));
	for (uint16_t ty = 0; ty < 100; ty++)
		assert_true(zone_time_jitter((const uint8_t *)"ab", 2, ty, 10) < 10);
	assert_int_equal(zone_time_jitter((const uint8_t *)"ab", 2, 1, 0), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_order_matches_ldns),
		cmocka_unit_test(test_key_fixed_cases),
		cmocka_unit_test(test_tree_random),
		cmocka_unit_test(test_serial_arithmetic),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
