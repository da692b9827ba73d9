/*
 * Denial of existence: which NSEC records prove a negative answer (see
 * zone_lookup_denial() in zone.h). Everything happens on canonical keys, so
 * the order is the zone's own (the unit test checks it against ldns's).
 */
#include <string.h>

#include "zonesigner/zone_internal.h"

/* Whether @p key names something in the zone: a node, or an empty
 * non-terminal (a node lies below it). */
static bool key_exists(const struct zone *z, const uint8_t *key, size_t keylen)
{
	const struct zone_node *n;

	if (zone_tree_find(&z->tree, key, keylen) != NULL)
		return true;
	n = zone_tree_succ(&z->tree, key, keylen);
	return n != NULL && zone_name_key_is_below(zone_node_key(n), n->keylen, key, keylen);
}

/* The canonical predecessor of @p key; before every name (impossible while
 * the apex exists, since its empty key sorts first) it wraps to the last. */
static const struct zone_node *pred_wrap(const struct zone *z, const uint8_t *key,
					 size_t keylen)
{
	const struct zone_node *n = zone_tree_pred(&z->tree, key, keylen);

	return n != NULL ? n : zone_tree_last(&z->tree);
}

static int to_wire(const struct zone *z, const uint8_t *key, size_t keylen, uint8_t *wire,
		   size_t *wlen)
{
	int r = zone_name_key_to_wire(key, keylen, z->apex, z->apexlen, wire, wlen);

	/* Keys come from the tree or from a valid name: a failure is a bug. */
	return r == 0 ? 0 : ZONE_EFORMAT;
}

/* NXDOMAIN (or a wildcard match): find the closest encloser, the longest
 * ancestor of the name that exists, and what covers its wildcard. */
static int nxdomain(const struct zone *z, const uint8_t *key, size_t keylen,
		    struct zone_lookup *out)
{
	size_t ends[128], pos = 0, llen, cel = 0, wkl;
	uint8_t label[63], wkey[ZONE_KEY_MAX];
	const struct zone_node *n;
	int nl = 0, r;

	/* ends[i] is the key length of the ancestor with i + 1 labels. */
	while ((r = zone_name_key_label(key, keylen, &pos, label, &llen)) == 1) {
		if (nl >= (int)(sizeof(ends) / sizeof(ends[0])))
			return ZONE_EINVAL;
		ends[nl++] = pos;
	}
	if (r < 0)
		return ZONE_EINVAL;
	/* The apex always exists, so the walk ends there at the latest. */
	for (int i = nl - 2; i >= 0; i--) {
		if (key_exists(z, key, ends[i])) {
			cel = ends[i];
			break;
		}
	}
	if ((r = to_wire(z, key, cel, out->encloser, &out->encloser_len)) != 0)
		return r;
	memcpy(wkey, key, cel);
	wkl = cel;
	if (zone_name_key_push(wkey, &wkl, (const uint8_t *)"*", 1) != 0)
		return ZONE_EINVAL;
	n = zone_tree_find(&z->tree, wkey, wkl);
	if (n != NULL) {
		out->kind = ZONE_LOOKUP_WILDCARD;
	} else {
		out->kind = ZONE_LOOKUP_NXDOMAIN;
		n = pred_wrap(z, wkey, wkl);
	}
	if ((r = to_wire(z, zone_node_key(n), n->keylen, out->wildcard, &out->wildcard_len)) != 0)
		return r;
	out->same = out->wildcard_len == out->nsec_len &&
		    memcmp(out->wildcard, out->nsec, out->nsec_len) == 0;
	return 0;
}

int zone_lookup_denial(const struct zone *z, const uint8_t *wire, size_t wlen,
		       struct zone_lookup *out)
{
	uint8_t key[ZONE_KEY_MAX];
	size_t keylen;
	const struct zone_node *n, *succ;
	int r;

	memset(out, 0, sizeof(*out));
	if (z->tree.root == NULL)
		return ZONE_ESTATE;
	if (zone_name_key_from_wire(wire, wlen, z->apex, z->apexlen, key, &keylen) != 0)
		return ZONE_EINVAL;
	n = zone_tree_find(&z->tree, key, keylen);
	if (n != NULL) {
		out->kind = ZONE_LOOKUP_NAME;
		return to_wire(z, key, keylen, out->nsec, &out->nsec_len);
	}
	n = pred_wrap(z, key, keylen);
	if ((r = to_wire(z, zone_node_key(n), n->keylen, out->nsec, &out->nsec_len)) != 0)
		return r;
	/* An empty non-terminal: the next name after it lies below it, so the
	 * predecessor's NSEC shows that nothing is at the name itself. */
	succ = zone_tree_succ(&z->tree, key, keylen);
	if (succ != NULL && zone_name_key_is_below(zone_node_key(succ), succ->keylen, key, keylen)) {
		out->kind = ZONE_LOOKUP_ENT;
		return 0;
	}
	return nxdomain(z, key, keylen, out);
}
