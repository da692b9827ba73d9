/*
 * NSEC RDATA (RFC 4034 section 4): the next owner name and the type bitmap.
 * The zone stores neither; both follow from the tree and the node's types,
 * which is what keeps the chain exact as names come and go.
 */
#include "zonesigner/zone_internal.h"

#include <string.h>

size_t zone_nsec_bitmap(const uint16_t *types, size_t n, uint8_t *out)
{
	size_t p = 0, i = 0;

	/* One window block per high byte that has types: window, length in
	 * bytes up to the last set bit, then the bits (type 0 = MSB of byte 0). */
	while (i < n) {
		uint8_t win = (uint8_t)(types[i] >> 8);
		uint8_t bits[32];
		size_t maxb = 0;

		memset(bits, 0, sizeof(bits));
		for (; i < n && (types[i] >> 8) == win; i++) {
			uint8_t lo = (uint8_t)types[i];
			bits[lo / 8] |= (uint8_t)(0x80 >> (lo % 8));
			if ((size_t)lo / 8 + 1 > maxb)
				maxb = (size_t)lo / 8 + 1;
		}
		out[p++] = win;
		out[p++] = (uint8_t)maxb;
		memcpy(out + p, bits, maxb);
		p += maxb;
	}
	return p;
}

int zone_nsec_rdata(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		    size_t nextlen, uint8_t *out, size_t *outlen)
{
	uint16_t types[512];
	size_t nt = 0, pos = 0, wlen;
	struct zone_rrset s;
	int r;
	bool rrsig_done = false;

	r = zone_name_key_to_wire(nextkey, nextlen, z->apex, z->apexlen, out, &wlen);
	if (r != 0)
		return r;
	/* Stored types are sorted and NSEC is among them; RRSIG (46) is added
	 * in its place because every RRset here is signed. */
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		if (nt + 2 > sizeof(types) / sizeof(types[0]))
			return ZONE_ERANGE;
		if (!rrsig_done && s.type > ZONE_RRTYPE_RRSIG) {
			types[nt++] = ZONE_RRTYPE_RRSIG;
			rrsig_done = true;
		}
		types[nt++] = s.type;
	}
	if (r < 0)
		return r;
	if (!rrsig_done)
		types[nt++] = ZONE_RRTYPE_RRSIG;
	*outlen = wlen + zone_nsec_bitmap(types, nt, out + wlen);
	return 0;
}
