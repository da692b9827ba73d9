/*
 * The zone's ordered index (zonesigner/zone_tree.c) and the load that builds
 * it bottom-up (zone_persist.c): a tree built in O(n) from sorted nodes must
 * be the same index as one built by AVL insertions (same in-order walk, the
 * same answers to find/pred/succ/first/last for present and absent keys,
 * the AVL invariant, the subtree re-sign minima), for sizes 0, 1, 2, 3 and
 * 2^k +- 1; later inserts and removals keep it balanced. And a load through
 * zone_load_name gives the same zone whether the rows come in key order or
 * not, and still refuses a damaged row, a duplicate, a missing apex. Two
 * copies of a zone exchange their names (zone_swap_names) and go on. Nodes
 * carved out of slabs keep their bytes apart, a too-large one is malloc'd,
 * and a freed slab node is poisoned under ASan.
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

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#endif

#include "test_zone_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_diff.h"
#include "zonesigner/zone_err.h"
#include "zonesigner/zone_name.h"
#include "zonesigner/zone_node.h"
#include "zonesigner/zone_tree.h"

static uint32_t rng = 12345;

static uint32_t rnd(uint32_t n)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 8) % n;
}

/* A node with one A RRset whose signature expires at @p exp. */
static struct zone_node *mknode(const uint8_t *key, size_t keylen, uint32_t exp)
{
	uint8_t sets[ZONE_SET_HDR + 2 + 4 + ZONE_SIG_LEN] = { 0 };
	struct zone_node *n = NULL;

	zone_put16(sets, 1);
	zone_put32(sets + 3, 300);
	zone_put16(sets + 7, 1);
	zone_put16(sets + 9, 4);
	zone_put32(sets + 15, exp - 1000);
	zone_put32(sets + 19, exp);
	assert_int_equal(zone_node_new(key, keylen, sets, sizeof(sets), &n), 0);
	return n;
}

/* A random key of one or two labels (random lengths, so prefixes occur). */
static size_t mkkey(uint8_t *key)
{
	size_t k = 0;
	unsigned labels = 1 + rnd(2);

	for (unsigned i = 0; i < labels; i++) {
		uint8_t lab[8];
		size_t l = 1 + rnd(4);
		for (size_t j = 0; j < l; j++)
			lab[j] = (uint8_t)('a' + rnd(3));
		assert_int_equal(zone_name_key_push(key, &k, lab, l), 0);
	}
	return k;
}

static int cmp_nodes(const void *a, const void *b)
{
	const struct zone_node *x = *(struct zone_node *const *)a, *y = *(struct zone_node *const *)b;

	return zone_name_key_cmp(zone_node_key(x), x->keylen, zone_node_key(y), y->keylen);
}

/* AVL invariant, heights and subtree minima; returns the height. */
static int check_sub(const struct zone_tree *t, const struct zone_node *n)
{
	uint32_t due, exp;
	int hl, hr;

	if (n == NULL)
		return 0;
	hl = check_sub(t, n->left);
	hr = check_sub(t, n->right);
	assert_true(hl - hr <= 1 && hr - hl <= 1);
	assert_int_equal(n->height, (hl > hr ? hl : hr) + 1);
	assert_true(zone_tree_node_times(t, n, &due, &exp));
	if (n->left && (int32_t)(n->left->subdue - due) < 0)
		due = n->left->subdue;
	if (n->right && (int32_t)(n->right->subdue - due) < 0)
		due = n->right->subdue;
	if (n->left && (int32_t)(n->left->subexp - exp) < 0)
		exp = n->left->subexp;
	if (n->right && (int32_t)(n->right->subexp - exp) < 0)
		exp = n->right->subexp;
	assert_int_equal(n->subdue, due);
	assert_int_equal(n->subexp, exp);
	return (hl > hr ? hl : hr) + 1;
}

static void check_tree(const struct zone_tree *t, size_t n)
{
	struct zone_tree_iter it;
	const struct zone_node *x, *prev = NULL;
	size_t count = 0;

	(void)check_sub(t, t->root);
	assert_int_equal(t->count, n);
	zone_tree_iter_init(&it, t);
	while ((x = zone_tree_iter_next(&it)) != NULL) {
		if (prev)
			assert_true(cmp_nodes(&prev, &x) < 0);
		prev = x;
		count++;
	}
	assert_int_equal(count, n);
}

/* Two answers agree: both none, or nodes of the same key and records. */
static void same_node(const struct zone_node *x, const struct zone_node *y)
{
	assert_true((x == NULL) == (y == NULL));
	if (x)
		assert_int_equal(cmp_nodes(&x, &y), 0);
}

/* Both trees answer every question alike (nodes differ, keys must agree). */
static void same_answers(const struct zone_tree *a, const struct zone_tree *b,
			 const uint8_t *key, size_t keylen)
{
	same_node(zone_tree_find(a, key, keylen), zone_tree_find(b, key, keylen));
	same_node(zone_tree_pred(a, key, keylen), zone_tree_pred(b, key, keylen));
	same_node(zone_tree_succ(a, key, keylen), zone_tree_succ(b, key, keylen));
}

/*
 * Walks @p a and @p b in order: node by node the same key and records, in
 * separate copies. With @p answers, the lookups of each key must agree too.
 */
static void same_walk(const struct zone_tree *a, const struct zone_tree *b, int answers)
{
	struct zone_tree_iter ia, ib;
	const struct zone_node *x, *y;

	zone_tree_iter_init(&ia, a);
	zone_tree_iter_init(&ib, b);
	do {
		x = zone_tree_iter_next(&ia);
		y = zone_tree_iter_next(&ib);
		same_node(x, y);
		assert_true(x == NULL || x != y);
		if (x != NULL && answers)
			same_answers(a, b, zone_node_key(x), x->keylen);
	} while (x != NULL);
}

static void free_tree(struct zone_tree *t)
{
	struct zone_tree_iter it;
	struct zone_node *n, *prev = NULL;

	zone_tree_iter_init(&it, t);
	while ((n = zone_tree_iter_next(&it)) != NULL) {
		free(prev);
		prev = n;
	}
	free(prev);
	t->root = NULL;
	t->count = 0;
}

static void one_size(size_t n)
{
	struct zone_tree ins = { .refresh_device = 100, .refresh_other = 500 };
	struct zone_tree bld = ins;
	struct zone_node **v = calloc(n + 1, sizeof(*v));
	size_t k = 0;

	/* n distinct random keys, inserted in random order into one tree. */
	while (k < n) {
		uint8_t key[ZONE_KEY_MAX];
		size_t kl = mkkey(key);
		uint32_t exp = 1000000 + rnd(100000);
		struct zone_node *a = mknode(key, kl, exp);
		if (zone_tree_insert(&ins, a) == ZONE_EEXIST) {
			free(a);
			continue;
		}
		v[k++] = mknode(key, kl, exp);
	}
	qsort(v, n, sizeof(*v), cmp_nodes);
	/* The same nodes' copies chained in order through their right links. */
	struct zone_tree lst = ins;
	struct zone_node *head = NULL, **tail = &head;
	for (size_t i = 0; i < n; i++) {
		struct zone_node *c = zone_node_dup(v[i]);
		assert_non_null(c);
		*tail = c;
		tail = &c->right;
	}
	*tail = NULL;
	zone_tree_build_list(&lst, head, n);
	zone_tree_build(&bld, v, n);
	check_tree(&ins, n);
	check_tree(&bld, n);
	check_tree(&lst, n);
	same_walk(&lst, &bld, 0);
	free_tree(&lst);
	same_walk(&ins, &bld, 1);
	for (int i = 0; i < 200; i++) {
		uint8_t key[ZONE_KEY_MAX];
		size_t kl = mkkey(key);
		same_answers(&ins, &bld, key, kl);
	}
	same_answers(&ins, &bld, NULL, 0);
	same_node(zone_tree_first(&ins), zone_tree_first(&bld));
	same_node(zone_tree_last(&ins), zone_tree_last(&bld));
	if (n > 0) {
		assert_int_equal(ins.root->subdue, bld.root->subdue);
		assert_int_equal(ins.root->subexp, bld.root->subexp);
	}
	/* The built tree goes on as an AVL tree: removals and inserts. */
	for (int i = 0; i < 50; i++) {
		uint8_t key[ZONE_KEY_MAX];
		size_t kl = mkkey(key);
		struct zone_node *g = zone_tree_remove(&bld, key, kl);
		size_t before = bld.count;
		if (g != NULL) {
			free(g);
			continue;
		}
		g = mknode(key, kl, 1000000 + rnd(100000));
		assert_int_equal(zone_tree_insert(&bld, g), 0);
		assert_int_equal(bld.count, before + 1);
	}
	check_tree(&bld, bld.count);
	free_tree(&ins);
	free_tree(&bld);
	free(v);
}

static void test_build_equals_inserts(void **state)
{
	(void)state;
	static const size_t sizes[] = { 0, 1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33,
					63, 64, 65, 127, 128, 129, 255, 256, 257, 511, 1023, 1025 };

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++)
		for (int rep = 0; rep < 3; rep++)
			one_size(sizes[i]);
}

/* ---- The load ---- */

struct rows {
	size_t n;
	struct row {
		uint8_t *key, *blob;
		size_t keylen, len;
	} v[64];
};

static int take(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *blob, size_t len)
{
	struct rows *r = ctx;
	struct row *w = &r->v[r->n++];

	assert_true(r->n <= 64);
	w->key = malloc(keylen + 1);
	w->blob = malloc(len);
	memcpy(w->key, key, keylen);
	memcpy(w->blob, blob, len);
	w->keylen = keylen;
	w->len = len;
	return 0;
}

static struct zone *make_zone(struct tzs_signer *s, int64_t now)
{
	struct zone *z = tzs_zone_new(s, NULL, 0);
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	uint8_t h[32];
	char id[32];

	assert_int_equal(zone_change_begin(z, &c), 0);
	for (int i = 0; i < 20; i++) {
		memset(h, i, sizeof(h));
		snprintf(id, sizeof(id), "%020x", (unsigned)(i * 7919));
		struct zone_device dev = { .id = id, .index = 1 + (uint32_t)i,
					   .styles = ZONE_STYLE_SEED, .cert_sha256 = h,
					   .spki_sha256 = h };
		assert_int_equal(zone_change_device_add(c, &dev), 0);
	}
	assert_int_equal(zone_change_commit(c, now, tzs_sign, s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);
	return z;
}

static struct zone *load(struct tzs_signer *s, const struct rows *rows, const size_t *order,
			 int64_t now, int want_finish)
{
	struct zone *y = tzs_zone_new(s, NULL, 0);

	for (size_t i = 0; i < rows->n; i++) {
		const struct row *w = &rows->v[order[i]];
		assert_int_equal(zone_load_name(y, w->key, w->keylen, w->blob, w->len), 0);
	}
	assert_int_equal(zone_names(y), rows->n);
	assert_int_equal(zone_load_finish(y, now, true), want_finish);
	return y;
}

static void test_load_any_order(void **state)
{
	struct tzs_signer s;
	int64_t now = (int64_t)time(NULL);
	struct rows rows = { 0 };
	size_t order[64];
	char *want, *got;
	struct zone *z, *y;

	(void)state;
	tzs_signer_init(&s);
	z = make_zone(&s, now);
	assert_int_equal(zone_export_foreach(z, take, &rows), 0);
	want = tzs_zone_text(z);
	/* In key order, reversed, and shuffled: the same zone. */
	for (int pass = 0; pass < 6; pass++) {
		for (size_t i = 0; i < rows.n; i++)
			order[i] = pass == 1 ? rows.n - 1 - i : i;
		if (pass >= 2) {
			for (size_t i = rows.n; i > 1; i--) {
				size_t j = rnd((uint32_t)i), t = order[i - 1];
				order[i - 1] = order[j];
				order[j] = t;
			}
		}
		y = load(&s, &rows, order, now, 0);
		got = tzs_zone_text(y);
		assert_string_equal(want, got);
		assert_int_equal(zone_serial(y), zone_serial(z));
		assert_int_equal(zone_check(y, now, true), 0);
		free(got);
		zone_free(y);
	}
	/* A duplicate is refused whether it comes in order or after a jump back. */
	y = tzs_zone_new(&s, NULL, 0);
	assert_int_equal(zone_load_name(y, rows.v[0].key, rows.v[0].keylen, rows.v[0].blob,
					rows.v[0].len), 0);
	assert_int_equal(zone_load_name(y, rows.v[1].key, rows.v[1].keylen, rows.v[1].blob,
					rows.v[1].len), 0);
	assert_int_equal(zone_load_name(y, rows.v[1].key, rows.v[1].keylen, rows.v[1].blob,
					rows.v[1].len), ZONE_EEXIST);
	assert_int_equal(zone_load_name(y, rows.v[0].key, rows.v[0].keylen, rows.v[0].blob,
					rows.v[0].len), ZONE_EEXIST);
	assert_int_equal(zone_names(y), 2);
	zone_free(y);
	/* A load abandoned half-way frees what it collected (ASan checks). */
	y = tzs_zone_new(&s, NULL, 0);
	for (size_t i = 0; i < rows.n / 2; i++)
		assert_int_equal(zone_load_name(y, rows.v[i].key, rows.v[i].keylen,
						rows.v[i].blob, rows.v[i].len), 0);
	zone_free(y);
	/* Without the apex (the first row), the load is refused at finish. */
	for (size_t i = 0; i + 1 < rows.n; i++)
		order[i] = i + 1;
	rows.n--;
	y = load(&s, &rows, order, now, ZONE_ECHECK);
	zone_free(y);
	rows.n++;
	/* A lost device name: structure fine, the NSEC chain's signatures are not. */
	for (size_t i = 0; i < rows.n; i++)
		order[i] = i < 5 ? i : i + 1;
	rows.n--;
	y = tzs_zone_new(&s, NULL, 0);
	for (size_t i = 0; i < rows.n; i++) {
		const struct row *w = &rows.v[order[i]];
		assert_int_equal(zone_load_name(y, w->key, w->keylen, w->blob, w->len), 0);
	}
	assert_int_equal(zone_load_finish(y, now, true), ZONE_ECHECK);
	zone_free(y);
	rows.n++;
	/* A torn row is refused at once. */
	y = tzs_zone_new(&s, NULL, 0);
	assert_int_equal(zone_load_name(y, rows.v[0].key, rows.v[0].keylen, rows.v[0].blob,
					rows.v[0].len), 0);
	assert_int_equal(zone_load_name(y, rows.v[3].key, rows.v[3].keylen, rows.v[3].blob,
					rows.v[3].len - 3), ZONE_EFORMAT);
	zone_free(y);
	for (size_t i = 0; i < rows.n; i++) {
		free(rows.v[i].key);
		free(rows.v[i].blob);
	}
	free(want);
	zone_free(z);
	tzs_signer_free(&s);
}

/* Two copies exchange their names: each then is what the other was. */
static void test_swap_names(void **state)
{
	struct tzs_signer s, other;
	int64_t now = (int64_t)time(NULL);
	struct zone *a, *b, *c;
	struct zone_change *ch = NULL;
	struct zone_diff *d = NULL;
	char *ta, *tb;
	uint32_t sa;

	(void)state;
	tzs_signer_init(&s);
	tzs_signer_init(&other);
	a = make_zone(&s, now);
	b = tzs_zone_new(&s, NULL, 0);
	ta = tzs_zone_text(a);
	sa = zone_serial(a);
	assert_int_equal(zone_swap_names(a, b), 0);
	assert_int_equal(zone_names(a), 0);
	assert_int_equal(zone_serial(a), 0);
	assert_int_equal(zone_serial(b), sa);
	tb = tzs_zone_text(b);
	assert_string_equal(ta, tb);
	free(tb);
	assert_int_equal(zone_check(b, now, true), 0);
	/* Both go on: the empty one makes a fresh apex, the other a new serial. */
	assert_int_equal(zone_change_begin(b, &ch), 0);
	assert_int_equal(zone_change_commit(ch, now, tzs_sign, &s, &d), 0);
	zone_change_free(ch);
	zone_diff_free(d);
	d = NULL;
	assert_int_equal(zone_check(b, now, true), 0);
	assert_true(zone_serial(b) != sa);
	assert_int_equal(zone_change_begin(a, &ch), 0);
	assert_int_equal(zone_change_commit(ch, now, tzs_sign, &s, &d), 0);
	zone_change_free(ch);
	zone_diff_free(d);
	assert_int_equal(zone_check(a, now, true), 0);
	assert_int_equal(zone_names(a), 1);
	/* Refused: a change open on either side, or another zone's keys. */
	assert_int_equal(zone_change_begin(a, &ch), 0);
	assert_int_equal(zone_swap_names(a, b), ZONE_ESTATE);
	assert_int_equal(zone_swap_names(b, a), ZONE_ESTATE);
	zone_change_free(ch);
	c = tzs_zone_new(&other, NULL, 0);
	assert_int_equal(zone_swap_names(a, c), ZONE_ESTATE);
	assert_int_equal(zone_names(a), 1);
	zone_free(c);
	/* Swapped back, each holds its own names again. */
	assert_int_equal(zone_swap_names(a, b), 0);
	assert_int_equal(zone_names(b), 1);
	assert_int_equal(zone_names(a), 1 + 20);
	assert_int_equal(zone_check(a, now, true), 0);
	assert_int_equal(zone_check(b, now, true), 0);
	free(ta);
	zone_free(a);
	zone_free(b);
	tzs_signer_free(&s);
	tzs_signer_free(&other);
}

/*
 * Nodes in slabs: many of them (several slabs, sizes growing), each holding
 * its own bytes after all were made; 8-byte aligned; a node too large for a
 * slab malloc'd instead (flag clear) and freed by zone_node_free(); a dup
 * of a slab node is an ordinary node. Freeing a slab node leaves its
 * neighbours intact and, under ASan, poisons it.
 */
static void test_slab_nodes(void **state)
{
	enum { N = 5000 };
	struct zone_slabs slabs = { 0 };
	struct zone_node **v = calloc(N, sizeof(*v));
	uint8_t key[ZONE_KEY_MAX], sets[600];
	size_t total = 0;

	(void)state;
	assert_non_null(v);
	for (size_t i = 0; i < N; i++) {
		size_t keylen = 1 + i % 60, setslen = i % 600;
		memset(key, (int)(i & 0xff), keylen);
		memset(sets, (int)((i * 7) & 0xff), setslen);
		assert_int_equal(zone_node_new_in(&slabs, key, keylen, sets, setslen, &v[i]), 0);
		assert_true(v[i]->flags & ZONE_NODE_IN_SLAB);
		assert_int_equal((uintptr_t)v[i] % 8, 0);
		assert_int_equal(zone_node_bytes(v[i]) % 8, 0);
		assert_true(zone_node_bytes(v[i]) >= sizeof(struct zone_node) + keylen + setslen);
		total += zone_node_bytes(v[i]);
	}
	assert_non_null(slabs.chain->next);  /* more than one slab */
	assert_true(zone_slabs_bytes(&slabs) >= total);
	for (size_t i = 0; i < N; i += 2)
		zone_node_free(v[i]);
	for (size_t i = 1; i < N; i += 2) {
		size_t keylen = 1 + i % 60, setslen = i % 600;
		assert_int_equal(v[i]->keylen, keylen);
		assert_int_equal(v[i]->len, keylen + setslen);
		for (size_t j = 0; j < keylen; j++)
			assert_int_equal(v[i]->data[j], i & 0xff);
		for (size_t j = 0; j < setslen; j++)
			assert_int_equal(v[i]->data[keylen + j], (i * 7) & 0xff);
	}
#if defined(__SANITIZE_ADDRESS__)
	assert_true(__asan_address_is_poisoned(v[0]));
	assert_true(__asan_address_is_poisoned(v[2]->data));
	assert_false(__asan_address_is_poisoned(v[1]->data));
#endif
	/* A copy of a slab node is malloc'd: freeing it frees it. */
	struct zone_node *c = zone_node_dup(v[1]);
	assert_non_null(c);
	assert_int_equal(c->flags & ZONE_NODE_IN_SLAB, 0);
	assert_memory_equal(c->data, v[1]->data, v[1]->len);
	zone_node_free(c);
	/* Too large for a slab: malloc'd, the slabs unchanged. */
	size_t before = zone_slabs_bytes(&slabs);
	uint8_t *big = calloc(1, 2u << 20);
	struct zone_node *b = NULL;
	assert_non_null(big);
	assert_int_equal(zone_node_new_in(&slabs, key, 3, big, 2u << 20, &b), 0);
	assert_int_equal(b->flags & ZONE_NODE_IN_SLAB, 0);
	assert_int_equal(zone_slabs_bytes(&slabs), before);
	zone_node_free(b);
	free(big);
	zone_node_free(NULL);
	zone_node_release(&slabs, NULL);
	/* Released nodes are reused by size: a node of v[1]'s size released
	 * and one of the same size made again takes its place, the slabs
	 * unchanged; a malloc'd node released is simply freed. */
	before = zone_slabs_bytes(&slabs);
	struct zone_node *r1 = v[1], *again = NULL;
	size_t k1 = r1->keylen, s1 = r1->len - r1->keylen;
	zone_node_release(&slabs, r1);
	assert_int_equal(slabs.free_bytes, ((sizeof(*r1) + k1 + s1 + 7) & ~(size_t)7));
#if defined(__SANITIZE_ADDRESS__)
	assert_true(__asan_address_is_poisoned((uint8_t *)r1 + sizeof(void *)));
	assert_false(__asan_address_is_poisoned(r1));
#endif
	memset(key, 0x5a, k1);
	memset(sets, 0xa5, s1);
	assert_int_equal(zone_node_new_in(&slabs, key, k1, sets, s1, &again), 0);
	assert_ptr_equal(again, r1);
	assert_int_equal(slabs.free_bytes, 0);
	assert_int_equal(zone_slabs_bytes(&slabs), before);
	assert_null(again->left);
	assert_true(again->flags & ZONE_NODE_IN_SLAB);
	assert_int_equal(again->data[0], 0x5a);
	assert_int_equal(again->data[k1], 0xa5);
	c = zone_node_dup(again);
	assert_non_null(c);
	zone_node_release(&slabs, c);  /* malloc'd: freed (ASan would report a leak) */
	assert_int_equal(slabs.free_bytes, 0);
	zone_slabs_free(&slabs);
	assert_null(slabs.chain);
	zone_slabs_free(&slabs);
	free(v);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_build_equals_inserts),
		cmocka_unit_test(test_load_any_order),
		cmocka_unit_test(test_swap_names),
		cmocka_unit_test(test_slab_nodes),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
