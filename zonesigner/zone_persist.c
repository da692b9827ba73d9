/*
 * Persistence: the daemon stores one row per owner name (its key and the
 * node's RRset area behind a version byte) and rebuilds the zone from those
 * rows at start, without signing anything.
 */
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_rows.h"

#include <stdlib.h>
#include <string.h>

#define EXPORT_VERSION 1

int zone_export_foreach(const struct zone *z,
			int (*cb)(void *ctx, const uint8_t *key, size_t keylen,
				  const uint8_t *blob, size_t len),
			void *ctx)
{
	struct zone_tree_iter it;
	struct zone_node *n;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int r = 0;

	zone_tree_iter_init(&it, &z->tree);
	while ((n = zone_tree_iter_next(&it)) != NULL) {
		size_t len = 1 + n->len - n->keylen;
		if (len > cap) {
			uint8_t *nb = realloc(buf, len);
			if (nb == NULL) {
				r = ZONE_ENOMEM;
				break;
			}
			buf = nb;
			cap = len;
		}
		buf[0] = EXPORT_VERSION;
		memcpy(buf + 1, n->data + n->keylen, len - 1);
		r = cb(ctx, zone_node_key(n), n->keylen, buf, len);
		if (r != 0)
			break;
	}
	free(buf);
	return r;
}

int zone_export_name(const struct zone *z, const uint8_t *key, size_t keylen, uint8_t **blob,
		     size_t *len)
{
	const struct zone_node *n = zone_tree_find(&z->tree, key, keylen);
	uint8_t *b;

	if (n == NULL)
		return ZONE_ENOENT;
	b = malloc(1 + n->len - n->keylen);
	if (b == NULL)
		return ZONE_ENOMEM;
	b[0] = EXPORT_VERSION;
	memcpy(b + 1, n->data + n->keylen, n->len - n->keylen);
	*blob = b;
	*len = 1 + n->len - n->keylen;
	return 0;
}

/*
 * A stored key must be exactly what zone_name would produce for its labels
 * (zone_name.h): every label 1..63 bytes, no upper-case letter, a zero byte
 * only as the escape 00 FF, each label closed by 00 00; and the name it
 * stands for, below an apex of @p apexlen bytes, must fit in a wire name.
 * One pass over the bytes: a load checks a million keys before it serves.
 */
static int key_canonical(const uint8_t *key, size_t keylen, size_t apexlen)
{
	size_t p = 0, l = 0, wire = apexlen;

	while (p < keylen) {
		uint8_t c = key[p];

		if (c != 0) {
			if (c >= 'A' && c <= 'Z')
				return 0;
			l++;
			p++;
		} else if (p + 1 < keylen && key[p + 1] == 0xff) {
			l++;
			p += 2;
		} else if (p + 1 < keylen && key[p + 1] == 0 && l > 0) {
			wire += 1 + l;
			l = 0;
			p += 2;
			continue;
		} else {
			return 0;
		}
		if (l > 63)
			return 0;
	}
	return l == 0 && wire <= ZONE_WIRE_MAX;
}

/* The framing of a stored row: a canonical key, a blob of this version. */
static bool row_ok(const struct zone *z, const uint8_t *key, size_t keylen, const uint8_t *blob,
		   size_t len)
{
	return keylen <= ZONE_KEY_MAX && blob != NULL && len >= 1 && blob[0] == EXPORT_VERSION &&
	       key_canonical(key, keylen, z->apexlen);
}

int zone_row_node(const struct zone *z, const uint8_t *key, size_t keylen, const uint8_t *blob,
		  size_t len, struct zone_node **out)
{
	struct zone_node *n = NULL;
	int r = ZONE_EFORMAT;

	*out = NULL;
	if (!row_ok(z, key, keylen, blob, len))
		goto out;
	if ((r = zone_node_new(key, keylen, blob + 1, len - 1, &n)) != 0)
		goto out;
	if ((r = zone_node_validate(n)) != 0)
		goto out;
	*out = n;
	n = NULL;
out:
	zone_node_free(n);
	return r;
}

/*
 * Collect a loaded node: appended while the keys arrive strictly increasing,
 * inserted into the tree once one did not (see struct zone's loadhead).
 */
static int load_add(struct zone *z, struct zone_node *n)
{
	if (z->tree.count == 0) {
		int c = -1;

		if (z->loadn > 0) {
			const struct zone_node *last = z->loadtail;
			c = zone_name_key_cmp(zone_node_key(last), last->keylen, zone_node_key(n),
					      n->keylen);
		}
		if (c == 0)
			return ZONE_EEXIST;
		if (c < 0) {
			n->left = n->right = NULL;
			if (z->loadtail != NULL)
				z->loadtail->right = n;
			else
				z->loadhead = n;
			z->loadtail = n;
			z->loadn++;
			return 0;
		}
		/* Out of order: what was collected becomes the tree. */
		zone_tree_build_list(&z->tree, z->loadhead, z->loadn);
		z->loadhead = z->loadtail = NULL;
		z->loadn = 0;
	}
	return zone_tree_insert(&z->tree, n);
}

int zone_load_name(struct zone *z, const uint8_t *key, size_t keylen, const uint8_t *blob,
		   size_t len)
{
	int r = ZONE_ESTATE;
	struct zone_node *n = NULL;

	if (z->change_open || (z->state != ZONE_STATE_EMPTY && z->state != ZONE_STATE_LOADING))
		goto out;
	r = ZONE_EFORMAT;
	if (!row_ok(z, key, keylen, blob, len))
		goto out;
	/* A load builds the whole zone in one pass: its nodes go into slabs. */
	r = zone_node_new_in(&z->tree.slabs, key, keylen, blob + 1, len - 1, &n);
	if (r != 0)
		goto out;
	r = zone_node_validate(n);
	if (r != 0)
		goto out;
	r = load_add(z, n);
	if (r != 0)
		goto out;
	n = NULL;
	z->state = ZONE_STATE_LOADING;
out:
	zone_node_free(n);
	return r;
}

int zone_load_finish(struct zone *z, int64_t now, bool verify)
{
	const struct zone_node *apex;
	struct zone_rrset soa;

	if (z->state != ZONE_STATE_LOADING || z->change_open)
		return ZONE_ESTATE;
	if (z->loadn > 0) {
		zone_tree_build_list(&z->tree, z->loadhead, z->loadn);
		z->loadhead = z->loadtail = NULL;
		z->loadn = 0;
	}
	apex = zone_tree_find(&z->tree, NULL, 0);
	z->state = ZONE_STATE_BROKEN;
	if (apex == NULL || zone_node_rrset_find(apex, ZONE_RRTYPE_SOA, &soa) != 1 ||
	    soa.nrr != 1 || zone_get16(soa.rrs) < 22)
		return ZONE_ECHECK;
	z->serial = zone_get32(soa.rrs + 2 + zone_get16(soa.rrs) - 20);
	z->state = ZONE_STATE_READY;
	if (zone_check_loaded(z, now, verify) != 0) {
		z->state = ZONE_STATE_BROKEN;
		return ZONE_ECHECK;
	}
	return 0;
}
