/*
 * The zone as wire-form RRs, one owner name at a time (see zone.h). A zone
 * transfer of a million names spends its time here, so nothing goes through
 * ldns or text: the RDATA of the stored RRsets is handed out in place, and
 * only the NSEC RDATA (next name from the tree, types from the node) and the
 * RRSIG RDATA (the stored times, tag and r||s behind the implied fields) are
 * built, then kept in the iterator's scratch buffer. The RRs come from
 * zone_node_expand() (zone_file.h), which the zone file and zone_name_rrs()
 * use too, so that a transfer built from either is the same stream.
 */
#include "zonesigner/zone_file.h"
#include "zonesigner/zone_internal.h"

#include <stdlib.h>
#include <string.h>

struct zone_wire_iter {
	const struct zone *z;
	struct zone_tree_iter ti;
	bool started;
	uint8_t lastkey[ZONE_KEY_MAX];  /* key of the last name returned */
	size_t lastlen;
	struct zone_wire_name name;
	struct zone_wire_rr *rr;        /* the name's RRs */
	size_t rrcap;
	uint8_t *scratch;               /* NSEC and RRSIG RDATA of the name */
	size_t scratchcap, used;
};

int zone_wire_iter_new(const struct zone *z, struct zone_wire_iter **out)
{
	struct zone_wire_iter *it;

	*out = NULL;
	if (z->tree.root == NULL)
		return ZONE_ESTATE;
	it = calloc(1, sizeof(*it));
	if (it == NULL)
		return ZONE_ENOMEM;
	it->z = z;
	zone_tree_iter_init(&it->ti, &z->tree);
	*out = it;
	return 0;
}

void zone_wire_iter_free(struct zone_wire_iter *it)
{
	if (it == NULL)
		return;
	free(it->rr);
	free(it->scratch);
	free(it);
}

void zone_wire_iter_resume(struct zone_wire_iter *it)
{
	struct zone_node *n = it->z->tree.root;

	if (!it->started) {
		zone_tree_iter_init(&it->ti, &it->z->tree);
		return;
	}
	/* The stack of an in-order walk standing just after lastkey: every
	 * node on the search path whose key is greater (where the path turns
	 * left), the nearest on top. */
	it->ti.sp = 0;
	while (n != NULL) {
		if (zone_name_key_cmp(zone_node_key(n), n->keylen, it->lastkey, it->lastlen) > 0) {
			it->ti.stack[it->ti.sp++] = n;
			n = n->left;
		} else {
			n = n->right;
		}
	}
}

/* Room for @p nrr RRs and @p scratch bytes of built RDATA. */
static int reserve(struct zone_wire_iter *it, size_t nrr, size_t scratch)
{
	if (nrr > it->rrcap) {
		struct zone_wire_rr *v = realloc(it->rr, nrr * sizeof(*v));
		if (v == NULL)
			return ZONE_ENOMEM;
		it->rr = v;
		it->rrcap = nrr;
	}
	if (scratch > it->scratchcap) {
		uint8_t *b = realloc(it->scratch, scratch);
		if (b == NULL)
			return ZONE_ENOMEM;
		it->scratch = b;
		it->scratchcap = scratch;
	}
	return 0;
}

/* The sink of zone_node_expand(): stored RDATA is handed out in place,
 * built RDATA (NSEC, RRSIG) is kept in the scratch for the name's life. */
static int add(void *ctx, const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
	       const uint8_t *rd, size_t len, bool built)
{
	struct zone_wire_iter *it = ctx;
	struct zone_wire_rr *r;

	(void)owner;
	(void)ownerlen;
	if (it->name.nrr == it->rrcap || (built && len > it->scratchcap - it->used))
		return ZONE_ERANGE;
	if (built) {
		memcpy(it->scratch + it->used, rd, len);
		rd = it->scratch + it->used;
		it->used += len;
	}
	r = &it->rr[it->name.nrr++];
	r->type = type;
	r->ttl = ttl;
	r->rdata = rd;
	r->rdlen = (uint16_t)len;
	return 0;
}

/* Every RR of node @p n, whose NSEC points to @p nextkey. */
static int fill(struct zone_wire_iter *it, const struct zone_node *n, const uint8_t *nextkey,
		size_t nextlen)
{
	struct zone_rrset s;
	size_t pos = 0, nrr = 0, nsets = 0;
	int r;

	/* Count first: the scratch must not move once RDATA points into it. */
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		nrr += (s.type == ZONE_RRTYPE_NSEC ? 1 : s.nrr) + 1;
		nsets++;
	}
	if (r < 0)
		return r;
	if ((r = reserve(it, nrr, ZONE_NSEC_MAX + nsets * ZONE_FILE_RRSIG_MAX)) != 0)
		return r;
	it->name.apex = n->keylen == 0;
	it->name.nrr = 0;
	it->name.rr = it->rr;
	it->used = 0;
	return zone_node_expand(it->z, n, nextkey, nextlen, it->name.owner, &it->name.ownerlen,
				add, it);
}

int zone_wire_iter_next(struct zone_wire_iter *it, const struct zone_wire_name **out)
{
	const struct zone_node *n, *nx;
	int r;

	*out = NULL;
	n = zone_tree_iter_next(&it->ti);
	if (n == NULL)
		return 0;
	/* The NSEC of the last name wraps around to the apex. */
	nx = it->ti.sp > 0 ? it->ti.stack[it->ti.sp - 1] : zone_tree_first(&it->z->tree);
	if ((r = fill(it, n, zone_node_key(nx), nx->keylen)) != 0)
		return r;
	memcpy(it->lastkey, zone_node_key(n), n->keylen);
	it->lastlen = n->keylen;
	it->started = true;
	*out = &it->name;
	return 1;
}
