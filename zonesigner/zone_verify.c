/*
 * The repair half of the background verification: a signature that
 * zone_verify_slice() found bad is made due, so that the ordinary re-signing
 * (zone_resign_due) replaces it. Re-signing finds its work through the
 * expirations stored with each signature and the subtree minima of the tree,
 * so bringing the stored expiration forward is all it takes; no second list
 * of RRsets to renew has to be kept in step with the tree.
 */
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_time.h"

/* Bring one stored signature's expiration forward to now + the refresh of
 * its class (due now), keeping an earlier one. */
static void mark_set(const struct zone *z, const struct zone_rrset *s, uint32_t now32)
{
	struct zone_sig sig;
	uint32_t ref = (s->flags & ZONE_SET_DEVICE) ? z->device_refresh : z->refresh;
	uint32_t exp = now32 + ref, inc;

	zone_sig_get(s->sig, &sig);
	if (zone_serial_lt(sig.expiration, exp))
		exp = sig.expiration;
	/* The window must stay well formed for the structural check; the
	 * signature is invalid whatever its times say. */
	inc = zone_serial_lt(sig.inception, exp) ? sig.inception : exp - 1;
	zone_sig_put(s->sig, inc, exp, sig.key_tag, sig.rs);
}

int zone_verify_mark_due(struct zone *z, const uint8_t *key, size_t keylen, uint16_t type,
			 int64_t now)
{
	struct zone_node *n;
	struct zone_rrset s;
	size_t pos = 0;
	int r;

	if (z == NULL || (key == NULL && keylen > 0) || keylen > ZONE_KEY_MAX)
		return ZONE_EINVAL;
	if (z->state != ZONE_STATE_READY || z->change_open)
		return ZONE_ESTATE;
	n = zone_tree_find(&z->tree, key, keylen);
	if (n == NULL)
		return ZONE_ENOENT;
	if (type != 0) {
		if (zone_node_rrset_find(n, type, &s) != 1)
			return ZONE_ENOENT;
		mark_set(z, &s, zone_time32(now));
	} else {
		while ((r = zone_node_rrset_next(n, &pos, &s)) == 1)
			mark_set(z, &s, zone_time32(now));
		if (r != 0)
			return ZONE_ENOENT;
	}
	/* The subtree minima above the node include its old times. */
	zone_tree_touch(&z->tree, key, keylen);
	return 0;
}
