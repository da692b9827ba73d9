/*
 * AVL tree over nodes with embedded links and subtree minima of the re-sign
 * due times and expirations (see zone_tree.h). Recursion depth is the tree
 * height, at most about 1.44 log2(n) (under 45 for 2^30 names).
 */
#include "zonesigner/zone_tree.h"
#include "zonesigner/zone_err.h"
#include "zonesigner/zone_name.h"
#include "zonesigner/zone_time.h"

#include <stddef.h>

static int cmp_node(const uint8_t *key, size_t keylen, const struct zone_node *n)
{
	return zone_name_key_cmp(key, keylen, zone_node_key(n), n->keylen);
}

static uint32_t smin(uint32_t a, uint32_t b)
{
	return zone_serial_lt(b, a) ? b : a;
}

static int height(const struct zone_node *n)
{
	return n ? n->height : 0;
}

bool zone_tree_node_times(const struct zone_tree *t, const struct zone_node *n,
			  uint32_t *due, uint32_t *exp)
{
	size_t pos = 0;
	struct zone_rrset s;
	bool any = false;

	while (zone_node_rrset_next(n, &pos, &s) == 1) {
		uint32_t e = zone_get32(s.sig + 4);
		uint32_t d = e - ((s.flags & ZONE_SET_DEVICE) ? t->refresh_device
							     : t->refresh_other);
		if (!any) {
			*due = d;
			*exp = e;
			any = true;
		} else {
			*due = smin(*due, d);
			*exp = smin(*exp, e);
		}
	}
	return any;
}

/* Recompute height and subtree minima of n from its children. */
static void fix(const struct zone_tree *t, struct zone_node *n)
{
	int hl = height(n->left), hr = height(n->right);
	uint32_t due = 0, exp = 0;

	n->height = (uint8_t)((hl > hr ? hl : hr) + 1);
	if (!zone_tree_node_times(t, n, &due, &exp)) {
		/* A node without RRsets never exists in a committed zone; give it
		 * neutral values from a child so it does not distort the minima. */
		const struct zone_node *c = n->left ? n->left : n->right;
		due = c ? c->subdue : 0;
		exp = c ? c->subexp : 0;
	}
	if (n->left) {
		due = smin(due, n->left->subdue);
		exp = smin(exp, n->left->subexp);
	}
	if (n->right) {
		due = smin(due, n->right->subdue);
		exp = smin(exp, n->right->subexp);
	}
	n->subdue = due;
	n->subexp = exp;
}

static struct zone_node *rot_right(const struct zone_tree *t, struct zone_node *n)
{
	struct zone_node *l = n->left;

	n->left = l->right;
	l->right = n;
	fix(t, n);
	fix(t, l);
	return l;
}

static struct zone_node *rot_left(const struct zone_tree *t, struct zone_node *n)
{
	struct zone_node *r = n->right;

	n->right = r->left;
	r->left = n;
	fix(t, n);
	fix(t, r);
	return r;
}

static struct zone_node *balance(const struct zone_tree *t, struct zone_node *n)
{
	int b;

	fix(t, n);
	b = height(n->left) - height(n->right);
	if (b > 1) {
		if (height(n->left->left) < height(n->left->right))
			n->left = rot_left(t, n->left);
		return rot_right(t, n);
	}
	if (b < -1) {
		if (height(n->right->right) < height(n->right->left))
			n->right = rot_right(t, n->right);
		return rot_left(t, n);
	}
	return n;
}

struct zone_node *zone_tree_find(const struct zone_tree *t, const uint8_t *key, size_t keylen)
{
	struct zone_node *n = t->root;

	while (n) {
		int c = cmp_node(key, keylen, n);
		if (c == 0)
			return n;
		n = c < 0 ? n->left : n->right;
	}
	return NULL;
}

struct zone_node *zone_tree_pred(const struct zone_tree *t, const uint8_t *key, size_t keylen)
{
	struct zone_node *n = t->root, *best = NULL;

	while (n) {
		if (cmp_node(key, keylen, n) > 0) {
			best = n;
			n = n->right;
		} else {
			n = n->left;
		}
	}
	return best;
}

struct zone_node *zone_tree_succ(const struct zone_tree *t, const uint8_t *key, size_t keylen)
{
	struct zone_node *n = t->root, *best = NULL;

	while (n) {
		if (cmp_node(key, keylen, n) < 0) {
			best = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
	return best;
}

struct zone_node *zone_tree_first(const struct zone_tree *t)
{
	struct zone_node *n = t->root;

	while (n && n->left)
		n = n->left;
	return n;
}

struct zone_node *zone_tree_last(const struct zone_tree *t)
{
	struct zone_node *n = t->root;

	while (n && n->right)
		n = n->right;
	return n;
}

static struct zone_node *ins(struct zone_tree *t, struct zone_node *root, struct zone_node *n,
			     int *r)
{
	int c;

	if (root == NULL) {
		n->left = n->right = NULL;
		fix(t, n);
		return n;
	}
	c = cmp_node(zone_node_key(n), n->keylen, root);
	if (c == 0) {
		*r = ZONE_EEXIST;
		return root;
	}
	if (c < 0)
		root->left = ins(t, root->left, n, r);
	else
		root->right = ins(t, root->right, n, r);
	return *r ? root : balance(t, root);
}

int zone_tree_insert(struct zone_tree *t, struct zone_node *n)
{
	int r = 0;

	t->root = ins(t, t->root, n, &r);
	if (r == 0)
		t->count++;
	return r;
}

static struct zone_node *take_min(struct zone_tree *t, struct zone_node *root,
				  struct zone_node **min)
{
	if (root->left == NULL) {
		*min = root;
		return root->right;
	}
	root->left = take_min(t, root->left, min);
	return balance(t, root);
}

static struct zone_node *del(struct zone_tree *t, struct zone_node *root, const uint8_t *key,
			     size_t keylen, struct zone_node **gone)
{
	int c;

	if (root == NULL)
		return NULL;
	c = cmp_node(key, keylen, root);
	if (c < 0) {
		root->left = del(t, root->left, key, keylen, gone);
	} else if (c > 0) {
		root->right = del(t, root->right, key, keylen, gone);
	} else {
		struct zone_node *l = root->left, *r = root->right, *m = NULL;

		*gone = root;
		root->left = root->right = NULL;
		if (r == NULL)
			return l;
		r = take_min(t, r, &m);
		m->left = l;
		m->right = r;
		return balance(t, m);
	}
	return *gone ? balance(t, root) : root;
}

struct zone_node *zone_tree_remove(struct zone_tree *t, const uint8_t *key, size_t keylen)
{
	struct zone_node *gone = NULL;

	t->root = del(t, t->root, key, keylen, &gone);
	if (gone)
		t->count--;
	return gone;
}

static struct zone_node *repl(const struct zone_tree *t, struct zone_node *root,
			      struct zone_node *n, struct zone_node **old)
{
	int c;

	if (root == NULL)
		return NULL;
	c = cmp_node(zone_node_key(n), n->keylen, root);
	if (c == 0) {
		*old = root;
		n->left = root->left;
		n->right = root->right;
		root->left = root->right = NULL;
		fix(t, n);
		return n;
	}
	if (c < 0)
		root->left = repl(t, root->left, n, old);
	else
		root->right = repl(t, root->right, n, old);
	if (*old)
		fix(t, root);
	return root;
}

struct zone_node *zone_tree_replace(struct zone_tree *t, struct zone_node *n)
{
	struct zone_node *old = NULL;

	t->root = repl(t, t->root, n, &old);
	return old;
}

static void touch(const struct zone_tree *t, struct zone_node *root, const uint8_t *key,
		  size_t keylen)
{
	int c;

	if (root == NULL)
		return;
	c = cmp_node(key, keylen, root);
	if (c < 0)
		touch(t, root->left, key, keylen);
	else if (c > 0)
		touch(t, root->right, key, keylen);
	fix(t, root);
}

void zone_tree_touch(struct zone_tree *t, const uint8_t *key, size_t keylen)
{
	touch(t, t->root, key, keylen);
}

static struct zone_node *build(const struct zone_tree *t, struct zone_node **v, size_t n)
{
	size_t mid;
	struct zone_node *root;

	if (n == 0)
		return NULL;
	mid = n / 2;
	root = v[mid];
	root->left = build(t, v, mid);
	root->right = build(t, v + mid + 1, n - mid - 1);
	fix(t, root);
	return root;
}

void zone_tree_build(struct zone_tree *t, struct zone_node **sorted, size_t n)
{
	t->root = build(t, sorted, n);
	t->count = n;
}

/* In order: the left subtree takes the first half of the chain, then the
 * root, then the right subtree the rest. A node's right link (its successor
 * in the chain) is read when the node is taken, before it is overwritten. */
static struct zone_node *build_list(const struct zone_tree *t, struct zone_node **cur,
				    size_t n)
{
	struct zone_node *left, *root;

	if (n == 0)
		return NULL;
	left = build_list(t, cur, n / 2);
	root = *cur;
	*cur = root->right;
	root->left = left;
	root->right = build_list(t, cur, n - n / 2 - 1);
	fix(t, root);
	return root;
}

void zone_tree_build_list(struct zone_tree *t, struct zone_node *head, size_t n)
{
	t->root = build_list(t, &head, n);
	t->count = n;
}

void zone_tree_iter_init(struct zone_tree_iter *it, const struct zone_tree *t)
{
	struct zone_node *n = t->root;

	it->sp = 0;
	while (n) {
		it->stack[it->sp++] = n;
		n = n->left;
	}
}

struct zone_node *zone_tree_iter_next(struct zone_tree_iter *it)
{
	struct zone_node *n, *c;

	if (it->sp == 0)
		return NULL;
	n = it->stack[--it->sp];
	for (c = n->right; c; c = c->left)
		it->stack[it->sp++] = c;
	return n;
}

static void collect(const struct zone_tree *t, struct zone_node *n, uint32_t now,
		    struct zone_node **out, size_t max, size_t *k)
{
	uint32_t due, exp;

	if (n == NULL || *k >= max || !zone_serial_le(n->subdue, now))
		return;
	collect(t, n->left, now, out, max, k);
	if (*k < max && zone_tree_node_times(t, n, &due, &exp) && zone_serial_le(due, now))
		out[(*k)++] = n;
	collect(t, n->right, now, out, max, k);
}

size_t zone_tree_collect_due(const struct zone_tree *t, uint32_t now, struct zone_node **out,
			     size_t max)
{
	size_t k = 0;

	collect(t, t->root, now, out, max, &k);
	return k;
}
