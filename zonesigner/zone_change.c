/*
 * Change sets. A change keeps one entry per touched owner name, sorted by
 * key: the name's current node in the tree (if any) and its new content in
 * mutable form. The tree is not touched until the commit has every new node
 * encoded and signed; then the swap is pointer work that cannot fail, and
 * can be undone if the self-check objects. See zone_change.h.
 */
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_change_int.h"
#include "zonesigner/zone_diff.h"
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_time.h"

#include <stdlib.h>
#include <string.h>

void zone_chg_entry_free(struct zone *z, struct chg_entry *e)
{
	if (e == NULL)
		return;
	zone_edit_clear(&e->edit);
	zone_node_release(&z->tree.slabs, e->node);
	free(e->key);
	free(e);
}

int zone_change_begin(struct zone *z, struct zone_change **out)
{
	struct zone_change *c;

	if (z->change_open || z->state == ZONE_STATE_LOADING || z->state == ZONE_STATE_BROKEN)
		return ZONE_ESTATE;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return ZONE_ENOMEM;
	c->z = z;
	z->change_open = true;
	*out = c;
	return 0;
}

void zone_change_free(struct zone_change *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++)
		zone_chg_entry_free(c->z, c->v[i]);
	free(c->v);
	c->z->change_open = false;
	free(c);
}

size_t zone_change_size(const struct zone_change *c)
{
	return c->n;
}

/* Index of key in the sorted entries, or where it would go. */
size_t zone_chg_find(const struct zone_change *c, const uint8_t *key, size_t keylen, bool *found)
{
	size_t lo = 0, hi = c->n;

	*found = false;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int r = zone_name_key_cmp(c->v[mid]->key, c->v[mid]->keylen, key, keylen);
		if (r == 0) {
			*found = true;
			return mid;
		}
		if (r < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* The entry of a key, created from the tree's node when new. */
int zone_chg_get(struct zone_change *c, const uint8_t *key, size_t keylen, struct chg_entry **out)
{
	bool found;
	size_t i = zone_chg_find(c, key, keylen, &found);
	struct chg_entry *e;
	int r;

	if (found) {
		*out = c->v[i];
		return 0;
	}
	if (c->n == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 16;
		struct chg_entry **nv = realloc(c->v, cap * sizeof(*nv));
		if (nv == NULL)
			return ZONE_ENOMEM;
		c->v = nv;
		c->cap = cap;
	}
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return ZONE_ENOMEM;
	e->key = malloc(keylen ? keylen : 1);
	if (e->key == NULL) {
		free(e);
		return ZONE_ENOMEM;
	}
	if (keylen)
		memcpy(e->key, key, keylen);
	e->keylen = keylen;
	e->old = zone_tree_find(&c->z->tree, key, keylen);
	if (e->old != NULL && (r = zone_edit_from_node(e->old, &e->edit)) != 0) {
		zone_chg_entry_free(c->z, e);
		return r;
	}
	memmove(&c->v[i + 1], &c->v[i], (c->n - i) * sizeof(*c->v));
	c->v[i] = e;
	c->n++;
	*out = e;
	return 0;
}

struct chg_entry *zone_chg_lookup(const struct zone_change *c, const uint8_t *key, size_t keylen)
{
	bool found;
	size_t i = zone_chg_find(c, key, keylen, &found);

	return found ? c->v[i] : NULL;
}

/* Whether a name has data in the change's view (entry if any, else tree). */
static bool has_data(const struct zone_change *c, const uint8_t *key, size_t keylen)
{
	const struct chg_entry *e = zone_chg_lookup(c, key, keylen);

	if (e != NULL)
		return zone_edit_has_data(&e->edit);
	return zone_tree_find(&c->z->tree, key, keylen) != NULL;
}

/* Whether any name at or below key has data in the change's view. */
static bool subtree_has_data(const struct zone_change *c, const uint8_t *key, size_t keylen)
{
	const struct zone_tree *t = &c->z->tree;
	const struct zone_node *n = zone_tree_find(t, key, keylen);
	bool found;

	if (n == NULL)
		n = zone_tree_succ(t, key, keylen);
	for (; n != NULL && zone_name_key_is_below(zone_node_key(n), n->keylen, key, keylen);
	     n = zone_tree_succ(t, zone_node_key(n), n->keylen))
		if (has_data(c, zone_node_key(n), n->keylen))
			return true;
	for (size_t i = zone_chg_find(c, key, keylen, &found); i < c->n; i++) {
		if (!zone_name_key_is_below(c->v[i]->key, c->v[i]->keylen, key, keylen))
			break;
		if (zone_edit_has_data(&c->v[i]->edit))
			return true;
	}
	return false;
}

int zone_change_device_add(struct zone_change *c, const struct zone_device *d)
{
	struct zone_devname dn[2];
	uint8_t key[ZONE_KEY_MAX];
	size_t n = 0, keylen;
	struct chg_entry *e;
	int r;

	if (c->done || d == NULL)
		return ZONE_EINVAL;
	r = zone_device_edits(c->z, d, dn, &n);
	if (r != 0)
		return r;
	/* The device's whole subtree (<index>.<id> and below) must be free: a
	 * DANCE-only device leaves <index>.<id> itself empty. Checked before
	 * anything is touched, so a refusal has no effect at all. */
	r = zone_device_key(d->id, d->index, key, &keylen);
	if (r != 0)
		goto out;
	if (subtree_has_data(c, key, keylen)) {
		r = ZONE_EEXIST;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		r = zone_chg_get(c, dn[i].key, dn[i].keylen, &e);
		if (r != 0)
			goto out;
		zone_edit_clear(&e->edit);
		e->edit = dn[i].edit;
		memset(&dn[i].edit, 0, sizeof(dn[i].edit));
	}
	r = 0;
out:
	for (size_t i = 0; i < n; i++)
		zone_edit_clear(&dn[i].edit);
	return r;
}

int zone_change_device_remove(struct zone_change *c, const char *id, uint32_t index)
{
	uint8_t key[ZONE_KEY_MAX];
	size_t keylen, count = 0;
	struct zone_node *n;
	struct chg_entry *e;
	int r;

	if (c->done)
		return ZONE_EINVAL;
	r = zone_device_key(id, index, key, &keylen);
	if (r != 0)
		return r;
	/* First every tree name at or below the key gets an entry... */
	n = zone_tree_find(&c->z->tree, key, keylen);
	if (n == NULL)
		n = zone_tree_succ(&c->z->tree, key, keylen);
	while (n != NULL && zone_name_key_is_below(zone_node_key(n), n->keylen, key, keylen)) {
		r = zone_chg_get(c, zone_node_key(n), n->keylen, &e);
		if (r != 0)
			return r;
		n = zone_tree_succ(&c->z->tree, zone_node_key(n), n->keylen);
	}
	/* ...then every entry at or below it (tree names and ones this change
	 * added) loses its data. */
	bool found;
	for (size_t i = zone_chg_find(c, key, keylen, &found); i < c->n; i++) {
		e = c->v[i];
		if (!zone_name_key_is_below(e->key, e->keylen, key, keylen))
			break;
		if (zone_edit_has_data(&e->edit))
			count++;
		zone_edit_clear(&e->edit);
	}
	return count ? 0 : ZONE_ENOENT;
}

/* Owner key, canonical RDATA and checks shared by PUBLISH and UNPUBLISH. */
static int rr_prepare(struct zone_change *c, const ldns_rr *rr, uint8_t *key, size_t *keylen,
		      uint8_t **rd, size_t *rdlen)
{
	int r = ZONE_EINVAL;
	ldns_rr *cr = NULL;
	ldns_buffer *b = NULL;
	uint16_t type;

	if (c->done || rr == NULL || ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN ||
	    ldns_rr_owner(rr) == NULL)
		goto out;
	type = (uint16_t)ldns_rr_get_type(rr);
	if (type == ZONE_RRTYPE_SOA || type == ZONE_RRTYPE_RRSIG || type == ZONE_RRTYPE_NSEC ||
	    type == LDNS_RR_TYPE_NSEC3 || type == LDNS_RR_TYPE_NSEC3PARAM || type == 0 ||
	    type == LDNS_RR_TYPE_ANY || type == LDNS_RR_TYPE_AXFR || type == LDNS_RR_TYPE_IXFR)
		goto out;
	cr = ldns_rr_clone(rr);
	r = ZONE_ENOMEM;
	if (cr == NULL)
		goto out;
	ldns_rr2canonical(cr);
	r = ZONE_EINVAL;
	if (zone_name_key_from_wire(ldns_rdf_data(ldns_rr_owner(cr)),
				    ldns_rdf_size(ldns_rr_owner(cr)), c->z->apex, c->z->apexlen,
				    key, keylen) != 0)
		goto out;
	if (zone_key_is_device_ns(key, *keylen)) {
		r = ZONE_ERESERVED;
		goto out;
	}
	/* Delegations would need unsigned NS and glue handling: not supported. */
	if ((type == ZONE_RRTYPE_NS || type == LDNS_RR_TYPE_DS) && *keylen != 0)
		goto out;
	if (type == LDNS_RR_TYPE_DS || (type == LDNS_RR_TYPE_CNAME && *keylen == 0))
		goto out;
	r = ZONE_ENOMEM;
	b = ldns_buffer_new(512);
	if (b == NULL)
		goto out;
	r = ZONE_EINVAL;
	if (ldns_rr_rdata2buffer_wire(b, cr) != LDNS_STATUS_OK || ldns_buffer_position(b) > 65535)
		goto out;
	r = ZONE_ENOMEM;
	*rdlen = ldns_buffer_position(b);
	*rd = malloc(*rdlen ? *rdlen : 1);
	if (*rd == NULL)
		goto out;
	memcpy(*rd, ldns_buffer_begin(b), *rdlen);
	r = 0;
out:
	ldns_buffer_free(b);
	ldns_rr_free(cr);
	return r;
}

int zone_change_rr_add(struct zone_change *c, const ldns_rr *rr)
{
	uint8_t key[ZONE_KEY_MAX], *rd = NULL;
	size_t keylen, rdlen;
	struct chg_entry *e;
	struct zone_eset *s;
	uint16_t type;
	bool created = false;
	int r, err = 0;

	r = rr_prepare(c, rr, key, &keylen, &rd, &rdlen);
	if (r != 0)
		goto out;
	type = (uint16_t)ldns_rr_get_type(rr);
	r = zone_chg_get(c, key, keylen, &e);
	if (r != 0)
		goto out;
	/* CNAME stands alone at its name (RFC 2181 section 10.1). */
	r = ZONE_EINVAL;
	for (size_t i = 0; i < e->edit.n; i++) {
		uint16_t t = e->edit.sets[i].type;
		if (t == ZONE_RRTYPE_NSEC || t == type)
			continue;
		if (type == LDNS_RR_TYPE_CNAME || t == LDNS_RR_TYPE_CNAME)
			goto out;
	}
	s = zone_edit_set(&e->edit, type, false, 0, 0, NULL);
	if (s == NULL) {
		s = zone_edit_set(&e->edit, type, true, ldns_rr_ttl(rr),
				  zone_set_flags(key, keylen, type), &err);
		r = err ? err : ZONE_ENOMEM;
		if (s == NULL)
			goto out;
		created = true;
	}
	r = zone_eset_add(s, rd, rdlen);
	if (r == 0 && s->ttl == ldns_rr_ttl(rr))
		r = ZONE_EEXIST;
	if (r < 0) {
		if (created)
			zone_edit_del_set(&e->edit, type);
		goto out;
	}
	s->ttl = ldns_rr_ttl(rr);
	s->dirty = true;
	r = 0;
out:
	free(rd);
	return r;
}

int zone_change_rr_remove(struct zone_change *c, const ldns_rr *rr)
{
	uint8_t key[ZONE_KEY_MAX], *rd = NULL, own[ZONE_DNSKEY_RDATA_LEN];
	size_t keylen, rdlen;
	struct chg_entry *e;
	struct zone_eset *s;
	uint16_t type;
	int r;

	r = rr_prepare(c, rr, key, &keylen, &rd, &rdlen);
	if (r != 0)
		goto out;
	type = (uint16_t)ldns_rr_get_type(rr);
	r = ZONE_ENOENT;
	if (!has_data(c, key, keylen))
		goto out;
	r = zone_chg_get(c, key, keylen, &e);
	if (r != 0)
		goto out;
	r = ZONE_ENOENT;
	s = zone_edit_set(&e->edit, type, false, 0, 0, NULL);
	if (s == NULL)
		goto out;
	r = ZONE_EINVAL;
	if (type == ZONE_RRTYPE_NS && keylen == 0 && s->nrr == 1)
		goto out;
	if (type == ZONE_RRTYPE_DNSKEY && rdlen == ZONE_DNSKEY_RDATA_LEN) {
		zone_dnskey_rdata(&c->z->ksk, own);
		if (memcmp(own, rd, rdlen) == 0)
			goto out;
		zone_dnskey_rdata(&c->z->zsk, own);
		if (memcmp(own, rd, rdlen) == 0)
			goto out;
	}
	r = ZONE_ENOENT;
	if (zone_eset_del(s, rd, rdlen) != 1)
		goto out;
	s->dirty = true;
	if (s->nrr == 0)
		zone_edit_del_set(&e->edit, type);
	r = 0;
out:
	free(rd);
	return r;
}

/* Mark RRsets of a tree node whose signatures are due as needing a new one. */
static int mark_due(struct zone_change *c, const struct zone_node *n, uint32_t now32,
		    size_t *budget)
{
	struct chg_entry *e;
	int r = zone_chg_get(c, zone_node_key(n), n->keylen, &e);

	if (r != 0)
		return r;
	for (size_t i = 0; i < e->edit.n && *budget > 0; i++) {
		struct zone_eset *s = &e->edit.sets[i];
		uint32_t exp = zone_get32(s->sig + 4);
		uint32_t ref = (s->flags & ZONE_SET_DEVICE) ? c->z->device_refresh : c->z->refresh;
		if (zone_serial_le(exp - ref, now32)) {
			s->dirty = true;
			(*budget)--;
		}
	}
	return 0;
}

int zone_resign_due(struct zone *z, int64_t now, size_t budget, zone_sign_fn sign, void *ctx,
		    struct zone_diff **diff)
{
	struct zone_change *c = NULL;
	struct zone_node **due = NULL;
	size_t n, left = budget;
	int r;

	*diff = NULL;
	if (z->state != ZONE_STATE_READY)
		return ZONE_ESTATE;
	if (budget == 0 || z->tree.root == NULL ||
	    !zone_serial_le(z->tree.root->subdue, zone_time32(now)))
		return 0;
	due = malloc(budget * sizeof(*due));
	if (due == NULL)
		return ZONE_ENOMEM;
	n = zone_tree_collect_due(&z->tree, zone_time32(now), due, budget);
	r = zone_change_begin(z, &c);
	for (size_t i = 0; r == 0 && i < n && left > 0; i++)
		r = mark_due(c, due[i], zone_time32(now), &left);
	if (r == 0)
		r = zone_change_commit(c, now, sign, ctx, diff);
	zone_change_free(c);
	free(due);
	return r;
}
