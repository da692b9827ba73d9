/*
 * Committing a change: new SOA serial, NSEC records whose next name or
 * bitmap changed, one signing batch, the IXFR diff, the swap into the tree,
 * the self-check of what was touched (undone on failure). Nothing in the
 * zone changes before the signatures are in hand, and the swap itself only
 * moves pointers, so every failure leaves the zone as it was.
 */
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_change_int.h"
#include "zonesigner/zone_diff.h"
#include "zonesigner/zone_time.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct target {
	struct chg_entry *e;
	size_t sigoff;   /* offset of the signature in e->node->data */
	uint32_t inception, expiration;
	uint16_t tag;
	uint16_t type;   /* of the RRset signed */
};

struct batch {
	struct zone_sigreq *reqs;
	struct target *tg;
	size_t n;
};

static void batch_clear(struct batch *b)
{
	for (size_t i = 0; i < b->n; i++)
		free((void *)b->reqs[i].data);
	free(b->reqs);
	free(b->tg);
	memset(b, 0, sizeof(*b));
}

/* The new SOA: the apex of a new zone, or the serial bumped. */
static int prepare_soa(struct zone_change *c, uint32_t serial)
{
	struct zone *z = c->z;
	struct chg_entry *e;
	struct zone_eset *s;
	uint8_t *rd;
	size_t len;
	int r = zone_chg_get(c, NULL, 0, &e);

	if (r != 0)
		return r;
	if (z->state == ZONE_STATE_EMPTY)
		return zone_apex_edit(z, serial, &e->edit);
	s = zone_edit_set(&e->edit, ZONE_RRTYPE_SOA, false, 0, 0, NULL);
	if (s == NULL || s->nrr != 1 || s->rr[0].len < 22)
		return ZONE_ECHECK;
	len = s->rr[0].len;
	rd = malloc(len);
	if (rd == NULL)
		return ZONE_ENOMEM;
	memcpy(rd, s->rr[0].data, len);
	zone_put32(rd + len - 20, serial);
	zone_eset_del(s, s->rr[0].data, len);
	r = zone_eset_add(s, rd, len);
	free(rd);
	s->dirty = true;
	return r < 0 ? r : 0;
}

/* A node's tree successor, wrapping to the apex (the first name). */
static const struct zone_node *tree_next(const struct zone_tree *t, const uint8_t *key,
					 size_t keylen)
{
	const struct zone_node *n = zone_tree_succ(t, key, keylen);

	return n ? n : zone_tree_first(t);
}

/* The greatest name below key after the change: tree names not deleted by
 * the change, or entries that exist after it. NULL only if nothing is less. */
static const uint8_t *new_pred(const struct zone_change *c, const uint8_t *key, size_t keylen,
			       size_t *plen)
{
	const struct zone_tree *t = &c->z->tree;
	const struct zone_node *a = zone_tree_pred(t, key, keylen);
	const struct chg_entry *b = NULL, *ae;
	bool found;
	size_t i = zone_chg_find(c, key, keylen, &found);

	while (a != NULL && (ae = zone_chg_lookup(c, zone_node_key(a), a->keylen)) != NULL &&
	       !ae->exists)
		a = zone_tree_pred(t, zone_node_key(a), a->keylen);
	while (i-- > 0) {
		if (c->v[i]->exists) {
			b = c->v[i];
			break;
		}
	}
	if (b != NULL && (a == NULL || zone_name_key_cmp(b->key, b->keylen, zone_node_key(a),
							   a->keylen) > 0)) {
		*plen = b->keylen;
		return b->key;
	}
	if (a == NULL)
		return NULL;
	*plen = a->keylen;
	return zone_node_key(a);
}

/* The least name above key after the change, wrapping to the apex. */
static const uint8_t *new_succ(const struct zone_change *c, const uint8_t *key, size_t keylen,
			       size_t *slen)
{
	const struct zone_tree *t = &c->z->tree;
	const struct zone_node *a = zone_tree_succ(t, key, keylen);
	const struct chg_entry *b = NULL, *ae;
	bool found;
	size_t i = zone_chg_find(c, key, keylen, &found);

	while (a != NULL && (ae = zone_chg_lookup(c, zone_node_key(a), a->keylen)) != NULL &&
	       !ae->exists)
		a = zone_tree_succ(t, zone_node_key(a), a->keylen);
	for (i += found ? 1 : 0; i < c->n; i++) {
		if (c->v[i]->exists) {
			b = c->v[i];
			break;
		}
	}
	if (b != NULL && (a == NULL || zone_name_key_cmp(b->key, b->keylen, zone_node_key(a),
							   a->keylen) < 0)) {
		*slen = b->keylen;
		return b->key;
	}
	if (a == NULL) {
		*slen = 0;
		return (const uint8_t *)"";
	}
	*slen = a->keylen;
	return zone_node_key(a);
}

static bool types_differ(const struct zone_node *old, const struct zone_edit *e)
{
	size_t pos = 0, i = 0;
	struct zone_rrset s;

	while (zone_node_rrset_next(old, &pos, &s) == 1) {
		if (i >= e->n || e->sets[i].type != s.type)
			return true;
		i++;
	}
	return i != e->n;
}

/* Work out existence, the predecessors whose NSEC must change, every new
 * next name, and which NSEC records need a new signature. */
static int plan_nsec(struct zone_change *c)
{
	struct zone *z = c->z;
	uint8_t (*keys)[ZONE_KEY_MAX] = NULL;
	size_t *lens = NULL, nk = 0, n0 = c->n;
	int r = ZONE_ENOMEM;

	for (size_t i = 0; i < c->n; i++) {
		c->v[i]->exists = zone_edit_has_data(&c->v[i]->edit);
		if (!c->v[i]->exists)
			zone_edit_clear(&c->v[i]->edit);
	}
	keys = malloc((n0 ? n0 : 1) * sizeof(*keys));
	lens = malloc((n0 ? n0 : 1) * sizeof(*lens));
	if (keys == NULL || lens == NULL)
		goto out;
	for (size_t i = 0; i < n0; i++) {
		struct chg_entry *e = c->v[i];
		const uint8_t *p;
		if ((e->old != NULL) == e->exists)
			continue;  /* neither inserted nor removed */
		p = new_pred(c, e->key, e->keylen, &lens[nk]);
		if (p == NULL)
			continue;  /* the apex itself */
		memcpy(keys[nk], p, lens[nk]);
		nk++;
	}
	for (size_t i = 0; i < nk; i++) {
		struct chg_entry *e;
		if (zone_chg_lookup(c, keys[i], lens[i]) != NULL)
			continue;
		r = zone_chg_get(c, keys[i], lens[i], &e);
		if (r != 0)
			goto out;
		e->exists = zone_edit_has_data(&e->edit);
	}
	for (size_t i = 0; i < c->n; i++) {
		struct chg_entry *e = c->v[i];
		struct zone_eset *s;
		const uint8_t *nx;
		bool dirty;
		int err = 0;

		if (!e->exists)
			continue;
		nx = new_succ(c, e->key, e->keylen, &e->nextlen);
		memcpy(e->next, nx, e->nextlen);
		dirty = e->old == NULL || types_differ(e->old, &e->edit);
		if (!dirty) {
			const struct zone_node *on = tree_next(&z->tree, e->key, e->keylen);
			dirty = zone_name_key_cmp(zone_node_key(on), on->keylen, e->next,
						  e->nextlen) != 0;
		}
		s = zone_edit_set(&e->edit, ZONE_RRTYPE_NSEC, true, z->nsec_ttl, 0, &err);
		r = err ? err : ZONE_ENOMEM;
		if (s == NULL)
			goto out;
		if (dirty || s->ttl != z->nsec_ttl) {
			s->ttl = z->nsec_ttl;
			s->dirty = true;
		}
	}
	r = 0;
out:
	free(keys);
	free(lens);
	return r;
}

static int request(struct zone_change *c, struct chg_entry *e, const struct zone_rrset *s,
		   int64_t now, struct batch *b)
{
	struct zone *z = c->z;
	uint8_t owner[ZONE_WIRE_MAX], nsec[ZONE_NSEC_MAX + 2];
	size_t ownerlen, nlen;
	struct zone_rrview v = { s->type, s->ttl, s->nrr, s->rrs, s->rrslen };
	struct zone_sigreq *q = &b->reqs[b->n];
	struct target *t = &b->tg[b->n];
	int labels, r;
	uint8_t *data = NULL;
	size_t dlen;

	r = zone_name_key_to_wire(e->key, e->keylen, z->apex, z->apexlen, owner, &ownerlen);
	if (r != 0)
		return r;
	labels = zone_owner_labels(z, e->key, e->keylen);
	if (labels < 0)
		return labels;
	if (s->type == ZONE_RRTYPE_NSEC) {
		r = zone_nsec_rdata(z, e->node, e->next, e->nextlen, nsec + 2, &nlen);
		if (r != 0)
			return r;
		zone_put16(nsec, (uint16_t)nlen);
		v.nrr = 1;
		v.rrs = nsec;
		v.rrslen = nlen + 2;
	}
	memset(q, 0, sizeof(*q));
	t->e = e;
	t->type = s->type;
	t->sigoff = (size_t)(s->sig - e->node->data);
	zone_sign_times(z, e->key, e->keylen, s->type, s->flags, now, &t->inception,
			&t->expiration);
	zone_sign_key_for(z, s->type, &q->role, &t->tag);
	q->key_tag = t->tag;
	r = zone_sign_data(z, owner, ownerlen, labels, &v, t->inception, t->expiration, t->tag,
			   &data, &dlen);
	if (r != 0)
		return r;
	q->data = data;
	q->len = dlen;
	b->n++;
	return 0;
}

/* Encode the new nodes and build one request per RRset to sign. */
static int encode(struct zone_change *c, int64_t now, struct batch *b)
{
	size_t total = 0;
	int r;

	for (size_t i = 0; i < c->n; i++) {
		struct chg_entry *e = c->v[i];
		size_t dirty = 0;
		if (!e->exists) {
			e->op = e->old ? OP_REMOVE : OP_NONE;
			continue;
		}
		for (size_t j = 0; j < e->edit.n; j++)
			dirty += e->edit.sets[j].dirty;
		if (dirty == 0) {
			e->op = OP_NONE;
			continue;
		}
		e->op = e->old ? OP_REPLACE : OP_INSERT;
		/* In the space of a node the tree gave back, if one of the size is there. */
		r = zone_node_encode_in(&c->z->tree.slabs, e->key, e->keylen, &e->edit, &e->node);
		if (r != 0)
			return r;
		total += dirty;
	}
	b->reqs = calloc(total ? total : 1, sizeof(*b->reqs));
	b->tg = calloc(total ? total : 1, sizeof(*b->tg));
	if (b->reqs == NULL || b->tg == NULL)
		return ZONE_ENOMEM;
	for (size_t i = 0; i < c->n; i++) {
		struct chg_entry *e = c->v[i];
		size_t pos = 0, j = 0;
		struct zone_rrset s;
		if (e->node == NULL)
			continue;
		while ((r = zone_node_rrset_next(e->node, &pos, &s)) == 1) {
			if (e->edit.sets[j++].dirty && (r = request(c, e, &s, now, b)) != 0)
				return r;
		}
		if (r < 0)
			return r;
	}
	return 0;
}

/*
 * The types whose RRset is the same in both nodes: type, flags, TTL, every
 * RDATA and the signature byte for byte (NSEC aside: its RDATA is not stored
 * but made from the next name). Such an RRset and its RRSIG would be
 * emitted identically for both, and the diff leaves them out; dropping them
 * first spares the diff its pairwise comparisons (ldns_rr_compare renders
 * both RRs to canonical wire each time), most of its cost on a device
 * neighbour or the apex, where one RRset of several changed.
 */
static size_t same_sets(const struct zone_node *a, const struct zone_node *b, uint16_t *types,
			size_t max)
{
	size_t pa = 0, pb = 0, n = 0;
	struct zone_rrset x, y;
	int ra = zone_node_rrset_next(a, &pa, &x), rb = zone_node_rrset_next(b, &pb, &y);

	while (ra == 1 && rb == 1) {
		if (x.type < y.type) {
			ra = zone_node_rrset_next(a, &pa, &x);
			continue;
		}
		if (y.type < x.type) {
			rb = zone_node_rrset_next(b, &pb, &y);
			continue;
		}
		if (x.type != ZONE_RRTYPE_NSEC && x.flags == y.flags && x.ttl == y.ttl &&
		    x.nrr == y.nrr && x.rrslen == y.rrslen &&
		    memcmp(x.rrs, y.rrs, x.rrslen) == 0 && memcmp(x.sig, y.sig, ZONE_SIG_LEN) == 0 &&
		    n < max)
			types[n++] = x.type;
		ra = zone_node_rrset_next(a, &pa, &x);
		rb = zone_node_rrset_next(b, &pb, &y);
	}
	return n;
}

/* The RRs of @p list not of the @p nt types (RRSIGs by the type they cover). */
static int drop_types(ldns_rr_list **list, const uint16_t *types, size_t nt)
{
	ldns_rr_list *in = *list, *out;
	size_t count = ldns_rr_list_rr_count(in);

	if (nt == 0)
		return 0;
	if ((out = ldns_rr_list_new()) == NULL)
		return ZONE_ENOMEM;
	/* First the pointers of the RRs kept, so that a failure leaves @p in whole. */
	for (size_t i = 0; i < count; i++) {
		ldns_rr *rr = ldns_rr_list_rr(in, i);
		uint16_t t = (uint16_t)ldns_rr_get_type(rr);
		bool drop = false;
		if (t == LDNS_RR_TYPE_RRSIG && ldns_rr_rrsig_typecovered(rr) != NULL)
			t = (uint16_t)ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr));
		for (size_t k = 0; k < nt && !drop; k++)
			drop = types[k] == t;
		if (!drop && !ldns_rr_list_push_rr(out, rr)) {
			ldns_rr_list_free(out);
			return ZONE_ENOMEM;
		}
	}
	for (size_t i = 0, j = 0; i < count; i++) {
		ldns_rr *rr = ldns_rr_list_rr(in, i);
		if (j < ldns_rr_list_rr_count(out) && ldns_rr_list_rr(out, j) == rr)
			j++;
		else
			ldns_rr_free(rr);
	}
	ldns_rr_list_free(in);
	*list = out;
	return 0;
}

static void free_olds(ldns_rr_list **olds, size_t n)
{
	if (olds == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		ldns_rr_list_deep_free(olds[i]);
	free(olds);
}

/*
 * The RRs every changed name has before the change, one list per entry
 * (NULL for an entry that does not change or had no node). They depend on
 * nothing the signer returns, so zone_change_commit() emits them before it
 * asks for the signatures: the HSM round trip is time the zone thread
 * spends waiting, while whatever it does after the answer delays the
 * version (a revocation's reply). The tree is not touched between here and
 * build_diff(), which takes the lists over.
 */
static int emit_olds(struct zone_change *c, ldns_rr_list ***out)
{
	struct zone *z = c->z;
	ldns_rr_list **olds = calloc(c->n ? c->n : 1, sizeof(*olds));
	int r = 0;

	*out = NULL;
	if (olds == NULL)
		return ZONE_ENOMEM;
	for (size_t i = 0; r == 0 && i < c->n; i++) {
		struct chg_entry *e = c->v[i];
		const struct zone_node *on;
		if (e->op == OP_NONE || e->old == NULL)
			continue;
		if ((olds[i] = ldns_rr_list_new()) == NULL) {
			r = ZONE_ENOMEM;
			break;
		}
		on = tree_next(&z->tree, e->key, e->keylen);
		r = zone_node_emit(z, e->old, zone_node_key(on), on->keylen, olds[i]);
	}
	if (r != 0) {
		free_olds(olds, c->n);
		return r;
	}
	*out = olds;
	return 0;
}

/* The diff of the change; @p olds (from emit_olds()) gives each entry's old
 * RRs, and every list taken from it is freed here (its slot set to NULL). */
static int build_diff(struct zone_change *c, struct zone_diff *d, ldns_rr_list **olds)
{
	struct zone *z = c->z;
	int r = 0;

	for (size_t i = 0; r == 0 && i < c->n; i++) {
		struct chg_entry *e = c->v[i];
		ldns_rr_list *ol, *nl;
		uint16_t same[64];
		size_t nsame = 0;
		if (e->op == OP_NONE)
			continue;
		ol = olds[i] != NULL ? olds[i] : ldns_rr_list_new();
		olds[i] = NULL;
		nl = ldns_rr_list_new();
		r = (ol && nl) ? 0 : ZONE_ENOMEM;
		if (r == 0 && e->node != NULL)
			r = zone_node_emit(z, e->node, e->next, e->nextlen, nl);
		if (r == 0 && e->old != NULL && e->node != NULL)
			nsame = same_sets(e->old, e->node, same, sizeof(same) / sizeof(same[0]));
		if (r == 0)
			r = drop_types(&ol, same, nsame);
		if (r == 0)
			r = drop_types(&nl, same, nsame);
		if (r == 0)
			r = zone_diff_add_rrs(d, ol, nl);
		if (r == 0)
			r = zone_diff_add_name(d, e->key, e->keylen);
		ldns_rr_list_deep_free(ol);
		ldns_rr_list_deep_free(nl);
	}
	return r;
}

static void undo(struct zone_change *c, size_t applied)
{
	struct zone_tree *t = &c->z->tree;

	while (applied-- > 0) {
		struct chg_entry *e = c->v[applied];
		switch (e->op) {
		case OP_INSERT:
			zone_tree_remove(t, e->key, e->keylen);
			break;
		case OP_REPLACE:
			zone_tree_replace(t, e->old);
			break;
		case OP_REMOVE:
			zone_tree_insert(t, e->old);
			break;
		case OP_NONE:
			break;
		}
	}
}

/* Swap the new nodes in; returns how many entries were applied. */
static int apply(struct zone_change *c, size_t *applied)
{
	struct zone_tree *t = &c->z->tree;

	for (*applied = 0; *applied < c->n; (*applied)++) {
		struct chg_entry *e = c->v[*applied];
		switch (e->op) {
		case OP_INSERT:
			if (zone_tree_insert(t, e->node) != 0)
				return ZONE_ECHECK;
			break;
		case OP_REPLACE:
			if (zone_tree_replace(t, e->node) != e->old)
				return ZONE_ECHECK;
			break;
		case OP_REMOVE:
			if (zone_tree_remove(t, e->key, e->keylen) != e->old)
				return ZONE_ECHECK;
			break;
		case OP_NONE:
			break;
		}
	}
	return 0;
}

/*
 * How much of its own fresh signing the self-check verifies. The zone's
 * `verify` parameter chooses between VERIFY_NONE and VERIFY_SAMPLED today;
 * VERIFY_ALL is what the check did before (every signature of the batch and
 * every kept NSEC verified with OpenSSL, about 90 us of CPU each) and is
 * chosen once the zone carries the policy's `verify-signatures` setting
 * (docs/CONFIG.md).
 */
enum verify_mode { VERIFY_NONE = 0, VERIFY_SAMPLED, VERIFY_ALL };

static enum verify_mode verify_mode_of(const struct zone *z)
{
	return !z->verify ? VERIFY_NONE : z->verify_all ? VERIFY_ALL : VERIFY_SAMPLED;
}

/* Whether the batch re-signed the NSEC of @p n. */
static bool nsec_in_batch(const struct batch *b, const struct zone_node *n)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->tg[i].type == ZONE_RRTYPE_NSEC && b->tg[i].e->node == n)
			return true;
	return false;
}

/*
 * Verify the NSEC signature @p n kept against the NSEC its place in the tree
 * gives it now: a next name or bitmap that changed without a new signature
 * (a planning mistake) shows up here.
 */
static int verify_kept_nsec(const struct zone *z, const struct zone_node *n,
			    const uint8_t *nextkey, size_t nextlen)
{
	uint8_t owner[ZONE_WIRE_MAX], nsec[ZONE_NSEC_MAX + 2];
	size_t ownerlen, nlen, dlen;
	struct zone_rrset s;
	struct zone_sig sig;
	struct zone_rrview v;
	uint8_t *data = NULL;
	int labels, ok;

	if (zone_node_rrset_find(n, ZONE_RRTYPE_NSEC, &s) != 1)
		return ZONE_ECHECK;
	zone_sig_get(s.sig, &sig);
	if (zone_name_key_to_wire(zone_node_key(n), n->keylen, z->apex, z->apexlen, owner,
				  &ownerlen) != 0 ||
	    (labels = zone_owner_labels(z, zone_node_key(n), n->keylen)) < 0 ||
	    zone_nsec_rdata(z, n, nextkey, nextlen, nsec + 2, &nlen) != 0)
		return ZONE_ECHECK;
	zone_put16(nsec, (uint16_t)nlen);
	v = (struct zone_rrview){ s.type, s.ttl, 1, nsec, nlen + 2 };
	if (zone_sign_data(z, owner, ownerlen, labels, &v, sig.inception, sig.expiration,
			   sig.key_tag, &data, &dlen) != 0)
		return ZONE_ECHECK;
	ok = zone_sign_verify(z, sig.key_tag, data, dlen, sig.rs);
	free(data);
	return ok ? 0 : ZONE_ECHECK;
}

/*
 * The same question as verify_kept_nsec() without the ECDSA verification:
 * the NSEC of @p n kept its signature, so it must be the very NSEC that
 * signature was made over, which the name had before the change: same TTL,
 * same signature bytes, and the same RDATA (next name and type bitmap)
 * computed from the old node and its old successor @p oldnx as from the new
 * node and its successor @p nx. The old signature was checked when it was
 * made. @p e is the change's entry of the name (the planner makes one for
 * every name whose NSEC it had to consider); none means a planning mistake.
 */
static int same_kept_nsec(const struct zone *z, const struct chg_entry *e,
			  const struct zone_node *oldnx, const struct zone_node *n,
			  const struct zone_node *nx)
{
	uint8_t a[ZONE_NSEC_MAX], b[ZONE_NSEC_MAX];
	size_t alen, blen;
	struct zone_rrset os, ns;

	if (e == NULL || e->old == NULL || oldnx == NULL ||
	    zone_node_rrset_find(e->old, ZONE_RRTYPE_NSEC, &os) != 1 ||
	    zone_node_rrset_find(n, ZONE_RRTYPE_NSEC, &ns) != 1 || os.ttl != ns.ttl ||
	    memcmp(os.sig, ns.sig, ZONE_SIG_LEN) != 0)
		return ZONE_ECHECK;
	if (zone_nsec_rdata(z, e->old, zone_node_key(oldnx), oldnx->keylen, a, &alen) != 0 ||
	    zone_nsec_rdata(z, n, zone_node_key(nx), nx->keylen, b, &blen) != 0 ||
	    alen != blen || memcmp(a, b, alen) != 0)
		return ZONE_ECHECK;
	return 0;
}

/*
 * The old successor of every entry that had a node, taken from the tree
 * before the swap (the nodes stay allocated until the change is published),
 * for same_kept_nsec(). NULL where the entry had no node.
 */
static int old_successors(const struct zone_change *c, const struct zone_node ***out)
{
	const struct zone_node **v = calloc(c->n ? c->n : 1, sizeof(*v));

	if (v == NULL)
		return ZONE_ENOMEM;
	for (size_t i = 0; i < c->n; i++)
		if (c->v[i]->old != NULL)
			v[i] = tree_next(&c->z->tree, c->v[i]->key, c->v[i]->keylen);
	*out = v;
	return 0;
}

/*
 * Which signatures of the batch a sampled check verifies: one per key,
 * rotating with the serial over that key's signatures of the batch, so that
 * a wrong key, mechanism or encoding from the HSM fails the first group it
 * touches while successive groups sample different RRsets. @p pick receives
 * a flag per request.
 */
static void sample_pick(const struct batch *b, uint32_t serial, bool *pick)
{
	uint16_t tags[2] = { 0, 0 };
	size_t count[2] = { 0, 0 }, nt = 0;

	for (size_t i = 0; i < b->n; i++) {
		size_t k = 0;
		while (k < nt && tags[k] != b->tg[i].tag)
			k++;
		if (k == nt && nt < 2)
			tags[nt++] = b->tg[i].tag;
		if (k < nt)
			count[k]++;
	}
	for (size_t k = 0; k < nt; k++)
		count[k] = serial % count[k];
	for (size_t i = 0; i < b->n; i++) {
		size_t k = 0;
		pick[i] = false;
		while (k < nt && tags[k] != b->tg[i].tag)
			k++;
		/* A third key cannot happen (zone_sign_key_for has two): verify it. */
		if (k == nt) {
			pick[i] = true;
			continue;
		}
		pick[i] = count[k] == 0;
		count[k] = count[k] == 0 ? SIZE_MAX : count[k] - 1;
	}
}

/*
 * The self-check of the touched names and their neighbours, in the tree.
 * What is checked is what this change could have got wrong: the new
 * signatures (over the very data the signer was given) and the NSEC of every
 * checked node that kept its old signature. The other RRsets of a checked
 * node kept both their data and their signature, which were checked when
 * they were made; verifying them again cost about three quarters of a
 * revocation's verifications and found nothing new.
 *
 * VERIFY_ALL verifies every new signature and every kept NSEC with OpenSSL.
 * VERIFY_SAMPLED verifies one new signature per key (sample_pick) and
 * compares each kept NSEC with the one its signature was made over
 * (same_kept_nsec): an online signer trusts its own HSM's signatures, as
 * Knot, OpenDNSSEC and BIND's inline signing do, but still catches a wrong
 * key or mechanism at the first group. VERIFY_NONE does the structural
 * checks only.
 */
static int check(struct zone_change *c, int64_t now, uint32_t serial, const struct batch *b,
		 const struct zone_node *const *oldnx)
{
	struct zone *z = c->z;
	const struct zone_tree *t = &z->tree;
	enum verify_mode mode = verify_mode_of(z);
	bool *pick = NULL;
	int r = ZONE_ECHECK;

	if (zone_check_apex(z, zone_tree_first(t)) != 0)
		goto out;
	if (mode == VERIFY_SAMPLED) {
		if ((pick = malloc((b->n ? b->n : 1) * sizeof(*pick))) == NULL) {
			r = ZONE_ENOMEM;
			goto out;
		}
		sample_pick(b, serial, pick);
	}
	for (size_t i = 0; i < b->n; i++) {
		if (!zone_serial_le(b->tg[i].inception, zone_time32(now)) ||
		    !zone_serial_lt(zone_time32(now), b->tg[i].expiration))
			goto out;
		if ((mode == VERIFY_ALL || (mode == VERIFY_SAMPLED && pick[i])) &&
		    !zone_sign_verify(z, b->tg[i].tag, b->reqs[i].data, b->reqs[i].len,
				      b->reqs[i].sig))
			goto out;
	}
	for (size_t i = 0; i < c->n; i++) {
		struct chg_entry *e = c->v[i];
		const struct zone_node *n, *nx;
		if (e->exists) {
			n = zone_tree_find(t, e->key, e->keylen);
			/* The chain computed before the swap must be the tree's. */
			nx = tree_next(t, e->key, e->keylen);
			if (n == NULL || zone_name_key_cmp(zone_node_key(nx), nx->keylen, e->next,
							   e->nextlen) != 0)
				goto out;
		} else {
			if (zone_tree_find(t, e->key, e->keylen) != NULL)
				goto out;
			if (e->op == OP_NONE)
				continue;
			n = zone_tree_pred(t, e->key, e->keylen);
			if (n == NULL)
				goto out;
			nx = tree_next(t, zone_node_key(n), n->keylen);
		}
		if (e->op == OP_NONE && e->exists)
			continue;
		if (zone_check_node(z, n, zone_node_key(nx), nx->keylen, now, false, true) != 0)
			goto out;
		if (mode == VERIFY_NONE || nsec_in_batch(b, n))
			continue;
		if (mode == VERIFY_ALL) {
			if (verify_kept_nsec(z, n, zone_node_key(nx), nx->keylen) != 0)
				goto out;
		} else {
			bool found;
			size_t k = zone_chg_find(c, zone_node_key(n), n->keylen, &found);
			if (!found || same_kept_nsec(z, c->v[k], oldnx[k], n, nx) != 0)
				goto out;
		}
	}
	r = 0;
out:
	free(pick);
	return r;
}

int zone_change_commit(struct zone_change *c, int64_t now, zone_sign_fn sign, void *ctx,
		       struct zone_diff **diff)
{
	struct zone *z = c->z;
	struct batch b = { 0 };
	struct zone_diff *d = NULL;
	const struct zone_node **oldnx = NULL;
	ldns_rr_list **olds = NULL;
	uint32_t serial;
	size_t applied = 0;
	int r = ZONE_ESTATE;

	if (diff != NULL)
		*diff = NULL;
	if (c->done || sign == NULL)
		goto out;
	c->done = true;
	if (z->state == ZONE_STATE_EMPTY)
		serial = z->initial_serial;
	else if (z->state == ZONE_STATE_READY)
		serial = zone_serial_next(z->serial, z->serial_policy == ZONE_SERIAL_UNIXTIME, now);
	else
		goto out;
	r = prepare_soa(c, serial);
	if (r == 0)
		r = plan_nsec(c);
	if (r == 0)
		r = encode(c, now, &b);
	/* Without a place for the diff, none is built (see below). */
	if (r == 0 && diff != NULL)
		r = emit_olds(c, &olds);
	if (r != 0)
		goto out;
	if (sign(ctx, b.reqs, b.n) != 0) {
		r = ZONE_ESIGN;
		goto out;
	}
	for (size_t i = 0; i < b.n; i++)
		zone_sig_put(b.tg[i].e->node->data + b.tg[i].sigoff, b.tg[i].inception,
			     b.tg[i].expiration, b.tg[i].tag, b.reqs[i].sig);
	/* Without a place for the diff (a replica replaying a version whose diff
	 * was made elsewhere), none is built: it is most of the work after signing. */
	if (diff != NULL) {
		r = zone_diff_new(z->state == ZONE_STATE_EMPTY ? 0 : z->serial, serial, &d);
		if (r == 0)
			r = build_diff(c, d, olds);
		if (r != 0)
			goto out;
		d->nsigs = b.n;
	}
	r = old_successors(c, &oldnx);
	if (r != 0)
		goto out;
	r = apply(c, &applied);
	if (r == 0)
		r = check(c, now, serial, &b, oldnx);
	if (r != 0) {
		undo(c, applied);
		goto out;
	}
	/* Published: the old nodes go, the new ones belong to the tree. */
	for (size_t i = 0; i < c->n; i++) {
		struct chg_entry *e = c->v[i];
		if (e->op == OP_REPLACE || e->op == OP_REMOVE)
			zone_node_release(&c->z->tree.slabs, e->old);
		if (e->op != OP_NONE) {
			e->old = NULL;
			e->node = NULL;
		}
	}
	z->serial = serial;
	z->state = ZONE_STATE_READY;
	if (diff != NULL)
		*diff = d;
	d = NULL;
	r = 0;
out:
	free_olds(olds, c->n);
	free(oldnx);
	batch_clear(&b);
	zone_diff_free(d);
	return r;
}
