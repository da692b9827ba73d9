/*
 * Bulk import: the fast path for a registry migrating in. Every device name
 * is encoded once, the whole set is sorted once, the NSEC chain is the sorted
 * order itself, signatures are requested in batches as the sorted array is
 * walked, and the tree is built balanced in one pass at the end. Nothing in
 * the zone changes until the last batch is signed.
 */
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_time.h"

#include <stdlib.h>
#include <string.h>

#define BULK_DEFAULT_BATCH 4096

struct bulk {
	struct zone *z;
	struct zone_node **v;
	struct zone_slabs slabs;  /* the new nodes: the tree's slabs once swapped in */
	uint8_t *all;        /* per node: 1 = sign every RRset, 0 = NSEC (and SOA) only */
	size_t n, cap;
	struct zone_sigreq *reqs;
	uint8_t **sigs;      /* where each request's signature goes */
	uint32_t *times;     /* inception, expiration per request */
	size_t nreq, batch;
	size_t total;
};

static int push_node(struct bulk *b, struct zone_node *n, uint8_t all)
{
	if (b->n == b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 1024;
		struct zone_node **nv = realloc(b->v, cap * sizeof(*nv));
		uint8_t *na;
		if (nv == NULL)
			return ZONE_ENOMEM;
		b->v = nv;
		na = realloc(b->all, cap);
		if (na == NULL)
			return ZONE_ENOMEM;
		b->all = na;
		b->cap = cap;
	}
	b->v[b->n] = n;
	b->all[b->n] = all;
	b->n++;
	return 0;
}

/* Encode an edit (plus its NSEC entry) as a node and keep it. */
static int push_edit(struct bulk *b, const uint8_t *key, size_t keylen, struct zone_edit *e,
		     uint8_t all)
{
	struct zone_node *n = NULL;
	int err = 0;
	int r;

	if (zone_edit_set(e, ZONE_RRTYPE_NSEC, true, b->z->nsec_ttl, 0, &err) == NULL)
		return err ? err : ZONE_ENOMEM;
	r = zone_node_encode_in(&b->slabs, key, keylen, e, &n);
	if (r == 0 && (r = push_node(b, n, all)) != 0)
		zone_node_free(n);
	return r;
}

static int cmp_nodes(const void *a, const void *b)
{
	const struct zone_node *x = *(const struct zone_node *const *)a;
	const struct zone_node *y = *(const struct zone_node *const *)b;

	return zone_name_key_cmp(zone_node_key(x), x->keylen, zone_node_key(y), y->keylen);
}

static int flush(struct bulk *b, zone_sign_fn sign, void *ctx)
{
	int r = 0;

	if (b->nreq == 0)
		return 0;
	if (sign(ctx, b->reqs, b->nreq) != 0)
		r = ZONE_ESIGN;
	for (size_t i = 0; i < b->nreq; i++) {
		if (r == 0)
			zone_sig_put(b->sigs[i], b->times[2 * i], b->times[2 * i + 1],
				     b->reqs[i].key_tag, b->reqs[i].sig);
		free((void *)b->reqs[i].data);
		b->reqs[i].data = NULL;
	}
	b->total += b->nreq;
	b->nreq = 0;
	return r;
}

static int sign_node(struct bulk *b, struct zone_node *n, const struct zone_node *next,
		     int64_t now, zone_sign_fn sign, void *ctx, uint8_t all)
{
	struct zone *z = b->z;
	uint8_t owner[ZONE_WIRE_MAX], nsec[ZONE_NSEC_MAX + 2];
	size_t ownerlen, pos = 0, nlen;
	struct zone_rrset s;
	int labels, r;

	r = zone_name_key_to_wire(zone_node_key(n), n->keylen, z->apex, z->apexlen, owner,
				  &ownerlen);
	if (r != 0)
		return r;
	labels = zone_owner_labels(z, zone_node_key(n), n->keylen);
	if (labels < 0)
		return labels;
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		struct zone_rrview v = { s.type, s.ttl, s.nrr, s.rrs, s.rrslen };
		struct zone_sigreq *q = &b->reqs[b->nreq];
		uint32_t *t = &b->times[2 * b->nreq];
		uint8_t *data = NULL;
		size_t dlen;

		if (!all && s.type != ZONE_RRTYPE_NSEC &&
		    !(s.type == ZONE_RRTYPE_SOA && n->keylen == 0))
			continue;
		if (s.type == ZONE_RRTYPE_NSEC) {
			r = zone_nsec_rdata(z, n, zone_node_key(next), next->keylen, nsec + 2,
					    &nlen);
			if (r != 0)
				return r;
			zone_put16(nsec, (uint16_t)nlen);
			v.nrr = 1;
			v.rrs = nsec;
			v.rrslen = nlen + 2;
		}
		memset(q, 0, sizeof(*q));
		zone_sign_times(z, zone_node_key(n), n->keylen, s.type, s.flags, now, &t[0], &t[1]);
		zone_sign_key_for(z, s.type, &q->role, &q->key_tag);
		r = zone_sign_data(z, owner, ownerlen, labels, &v, t[0], t[1], q->key_tag, &data,
				   &dlen);
		if (r != 0)
			return r;
		q->data = data;
		q->len = dlen;
		b->sigs[b->nreq++] = s.sig;
		if (b->nreq == b->batch && (r = flush(b, sign, ctx)) != 0)
			return r;
	}
	return r < 0 ? r : 0;
}

/* The zone's current names, copied: apex with a new serial, NSEC to re-sign. */
static int take_existing(struct bulk *b, uint32_t serial)
{
	struct zone *z = b->z;
	struct zone_tree_iter it;
	struct zone_node *n;
	struct zone_edit e = { 0 };
	int r = 0;

	if (z->state == ZONE_STATE_EMPTY) {
		r = zone_apex_edit(z, serial, &e);
		if (r == 0)
			r = push_edit(b, NULL, 0, &e, 1);
		zone_edit_clear(&e);
		return r;
	}
	zone_tree_iter_init(&it, &z->tree);
	while (r == 0 && (n = zone_tree_iter_next(&it)) != NULL) {
		if (zone_key_is_device_ns(zone_node_key(n), n->keylen))
			return ZONE_ESTATE;
		r = zone_edit_from_node(n, &e);
		if (r == 0 && n->keylen == 0) {
			struct zone_eset *s = zone_edit_set(&e, ZONE_RRTYPE_SOA, false, 0, 0, NULL);
			if (s == NULL || s->nrr != 1 || s->rr[0].len < 22)
				r = ZONE_ECHECK;
			else
				zone_put32(s->rr[0].data + s->rr[0].len - 20, serial);
		}
		if (r == 0)
			r = push_edit(b, zone_node_key(n), n->keylen, &e, 0);
		zone_edit_clear(&e);
	}
	return r;
}

static int take_devices(struct bulk *b, const struct zone_device *devs, size_t n)
{
	struct zone_devname dn[2];
	size_t k = 0;
	int r = 0;

	memset(dn, 0, sizeof(dn));

	for (size_t i = 0; r == 0 && i < n; i++) {
		r = zone_device_edits(b->z, &devs[i], dn, &k);
		for (size_t j = 0; r == 0 && j < k; j++)
			r = push_edit(b, dn[j].key, dn[j].keylen, &dn[j].edit, 1);
		zone_edit_clear(&dn[0].edit);
		zone_edit_clear(&dn[1].edit);
	}
	return r;
}

int zone_bulk_import(struct zone *z, const struct zone_device *devs, size_t n, int64_t now,
		     zone_sign_fn sign, void *ctx, size_t batch)
{
	struct bulk b = { 0 };
	struct zone_tree_iter it;
	struct zone_node *old, *prev = NULL;
	uint32_t serial;
	int r = ZONE_ESTATE;

	if (z->change_open || sign == NULL ||
	    (z->state != ZONE_STATE_EMPTY && z->state != ZONE_STATE_READY))
		goto out;
	r = ZONE_EINVAL;
	if (n > 0 && devs == NULL)
		goto out;
	b.z = z;
	b.batch = batch ? batch : BULK_DEFAULT_BATCH;
	r = ZONE_ENOMEM;
	b.reqs = calloc(b.batch, sizeof(*b.reqs));
	b.sigs = calloc(b.batch, sizeof(*b.sigs));
	b.times = calloc(2 * b.batch, sizeof(*b.times));
	if (b.reqs == NULL || b.sigs == NULL || b.times == NULL)
		goto out;
	serial = z->state == ZONE_STATE_EMPTY
			 ? z->initial_serial
			 : zone_serial_next(z->serial, z->serial_policy == ZONE_SERIAL_UNIXTIME, now);
	r = take_existing(&b, serial);
	if (r == 0)
		r = take_devices(&b, devs, n);
	if (r != 0)
		goto out;
	qsort(b.v, b.n, sizeof(*b.v), cmp_nodes);
	/* The per-node "all" flags were pushed in input order: recompute them
	 * after sorting from the node itself (device namespace = new). */
	for (size_t i = 0; i < b.n; i++) {
		if (i > 0 && cmp_nodes(&b.v[i - 1], &b.v[i]) == 0) {
			r = ZONE_EEXIST;
			goto out;
		}
		b.all[i] = z->state == ZONE_STATE_EMPTY ||
			   zone_key_is_device_ns(zone_node_key(b.v[i]), b.v[i]->keylen);
	}
	for (size_t i = 0; i < b.n; i++) {
		r = sign_node(&b, b.v[i], b.v[i + 1 < b.n ? i + 1 : 0], now, sign, ctx, b.all[i]);
		if (r != 0)
			goto out;
	}
	r = flush(&b, sign, ctx);
	if (r != 0)
		goto out;
	/* Swap: the old nodes go, the sorted array becomes the tree. Every
	 * node in the old slabs was in the old tree or dead already, so the
	 * slabs go with them and the new nodes' slabs take their place. */
	zone_tree_iter_init(&it, &z->tree);
	while ((old = zone_tree_iter_next(&it)) != NULL) {
		zone_node_free(prev);
		prev = old;
	}
	zone_node_free(prev);
	zone_slabs_free(&z->tree.slabs);
	zone_tree_build(&z->tree, b.v, b.n);
	z->tree.slabs = b.slabs;
	memset(&b.slabs, 0, sizeof(b.slabs));
	b.n = 0;
	z->serial = serial;
	z->state = ZONE_STATE_READY;
	r = 0;
out:
	for (size_t i = 0; i < b.nreq; i++)
		free((void *)b.reqs[i].data);
	for (size_t i = 0; i < b.n; i++)
		zone_node_free(b.v[i]);
	zone_slabs_free(&b.slabs);
	free(b.v);
	free(b.all);
	free(b.reqs);
	free(b.sigs);
	free(b.times);
	return r;
}
