/*
 * dns_xfr_fill (see dns_xfr.h): a transfer written straight into wire-form
 * messages. While the zone is still the version being sent, each name's RRs
 * come from zone_wire_iter (the nodes read in place) and are copied into the
 * message; the rest of a name that does not fit is copied out, since the
 * zone may change before the next message. Once the zone has moved on, and
 * for IXFR, the RRs come from the ldns walk of dns_xfr.c and are written
 * from their ldns form.
 */
#include "signer/dns_wire_xfr.h"

#include <stdlib.h>
#include <string.h>

#include "signer/dns_wire.h"

/* One RR into the message: DNS_ERANGE when it does not fit. */
static int put_rr(struct dns_wire_msg *m, const uint8_t *owner, size_t ownerlen,
		  const struct zone_wire_rr *rr)
{
	return dns_wire_msg_add_rr(m, owner, ownerlen, rr->type, LDNS_RR_CLASS_IN, rr->ttl,
				   rr->rdata, rr->rdlen);
}

static int put_ldns(struct dns_xfr *x, struct dns_wire_msg *m, const ldns_rr *rr)
{
	const ldns_rdf *o = ldns_rr_owner(rr);

	ldns_buffer_clear(x->rdbuf);
	if (ldns_rr_rdata2buffer_wire(x->rdbuf, rr) != LDNS_STATUS_OK ||
	    !ldns_buffer_status_ok(x->rdbuf))
		return DNS_ENOMEM;
	return dns_wire_msg_add_rr(m, ldns_rdf_data(o), ldns_rdf_size(o),
				   (uint16_t)ldns_rr_get_type(rr), (uint16_t)ldns_rr_get_class(rr),
				   ldns_rr_ttl(rr), ldns_buffer_begin(x->rdbuf),
				   ldns_buffer_position(x->rdbuf));
}

static bool skipped(const struct zone_wire_name *nm, size_t i)
{
	/* The apex SOA opens and closes the transfer only. */
	return nm->apex && nm->rr[i].type == LDNS_RR_TYPE_SOA;
}

/* Copy the RRs of @p nm from @p from on: the message is full and the zone
 * may change before the next one. */
static int hold(struct dns_xfr *x, const struct zone_wire_name *nm, size_t from)
{
	struct xfr_held *h = &x->held;
	size_t n = 0, bytes = 0, off = 0;

	for (size_t i = from; i < nm->nrr; i++) {
		n += !skipped(nm, i);
		bytes += nm->rr[i].rdlen;
	}
	if (n > h->cap) {
		struct zone_wire_rr *v = realloc(h->rr, n * sizeof(*v));
		if (v == NULL)
			return DNS_ENOMEM;
		h->rr = v;
		h->cap = n;
	}
	if (bytes > h->datacap) {
		uint8_t *d = realloc(h->data, bytes);
		if (d == NULL)
			return DNS_ENOMEM;
		h->data = d;
		h->datacap = bytes;
	}
	memcpy(h->owner, nm->owner, nm->ownerlen);
	h->ownerlen = nm->ownerlen;
	h->nrr = h->idx = 0;
	for (size_t i = from; i < nm->nrr; i++) {
		if (skipped(nm, i))
			continue;
		h->rr[h->nrr] = nm->rr[i];
		memcpy(h->data + off, nm->rr[i].rdata, nm->rr[i].rdlen);
		h->rr[h->nrr++].rdata = h->data + off;
		off += nm->rr[i].rdlen;
	}
	return 0;
}

/* Remember the next name of @p nm's NSEC: where the walk goes on through
 * ldns if the zone moves on. */
static int note_next(struct dns_xfr *x, const struct zone_wire_name *nm)
{
	for (size_t i = 0; i < nm->nrr; i++) {
		const uint8_t *d = nm->rr[i].rdata;
		size_t p = 0, n = nm->rr[i].rdlen;
		if (nm->rr[i].type != LDNS_RR_TYPE_NSEC)
			continue;
		while (p < n && d[p] != 0 && d[p] <= 63)
			p += 1 + (size_t)d[p];
		if (p >= n || d[p] != 0 || p + 1 > sizeof(x->nextw))
			return DNS_EZONE;
		memcpy(x->nextw, d, p + 1);
		x->nextwlen = p + 1;
		return 0;
	}
	/* Every stored name has an NSEC (as in axfr_load_next()). */
	return DNS_EZONE;
}

/* Names read in place from the zone until the message is full (*full) or
 * the walk is back at the apex (then the closing SOA is next). */
static int fill_nodes(struct dns_xfr *x, struct dns_wire_msg *m, bool *full)
{
	const struct zone_wire_name *nm;
	int r;

	if (x->wi == NULL && (r = zone_wire_iter_new(x->z, &x->wi)) != 0)
		return r == ZONE_ENOMEM ? DNS_ENOMEM : DNS_EZONE;
	for (;;) {
		r = zone_wire_iter_next(x->wi, &nm);
		if (r == 0) {
			x->phase = XFR_LAST_SOA;
			return 0;
		}
		if (r < 0)
			return r == ZONE_ENOMEM ? DNS_ENOMEM : DNS_EZONE;
		if ((r = note_next(x, nm)) != 0)
			return r;
		for (size_t i = 0; i < nm->nrr; i++) {
			if (skipped(nm, i))
				continue;
			r = put_rr(m, nm->owner, nm->ownerlen, &nm->rr[i]);
			if (r == DNS_ERANGE) {
				/* Held either way: an RR too large for an empty
				 * message is not lost, the caller may offer a
				 * larger one. */
				int e = hold(x, nm, i);
				if (e != 0 || m->an == 0)
					return e != 0 ? e : DNS_ERANGE;
				*full = true;
				return 0;
			}
			if (r != 0)
				return r;
			x->count++;
		}
	}
}

/* The rest of a name held from the previous message. */
static int fill_held(struct dns_xfr *x, struct dns_wire_msg *m, bool *full)
{
	struct xfr_held *h = &x->held;
	int r;

	while (h->idx < h->nrr) {
		r = put_rr(m, h->owner, h->ownerlen, &h->rr[h->idx]);
		if (r == DNS_ERANGE && m->an > 0) {
			*full = true;
			return 0;
		}
		if (r != 0)
			return r;
		h->idx++;
		x->count++;
	}
	return 0;
}

/* The zone moved on: the rest of the walk goes through ldns and the net
 * difference, from the NSEC next name of the last name read in place. */
static int leave_nodes(struct dns_xfr *x)
{
	zone_wire_iter_free(x->wi);
	x->wi = NULL;
	if (x->nextwlen == 0)
		return 0;    /* not one name read yet: the ldns walk starts at the apex */
	x->next = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, x->nextwlen, x->nextw);
	x->cur = ldns_rr_list_new();
	if (x->next == NULL || x->cur == NULL)
		return DNS_ENOMEM;
	x->idx = 0;
	x->at_apex = false;
	return 0;
}

int dns_xfr_fill(struct dns_xfr *x, struct dns_wire_msg *m, bool *end)
{
	const ldns_rr *rr;
	bool full = false;
	int r;

	*end = false;
	if (!x->ixfr && x->phase != XFR_DONE && zone_serial(x->z) != x->serial) {
		if ((r = dns_xfr__follow(x)) != 0)
			return r;
		if (x->in_place && (r = leave_nodes(x)) != 0)
			return r;
		x->in_place = false;
	}
	if (x->wi != NULL)
		zone_wire_iter_resume(x->wi);
	if ((r = fill_held(x, m, &full)) != 0 || full)
		return r;
	for (;;) {
		if (x->phase == XFR_BODY && x->in_place) {
			if ((r = fill_nodes(x, m, &full)) != 0 || full)
				return r;
			continue;
		}
		if ((r = dns_xfr__peek(x, &rr)) != 0)
			return r;
		if (rr == NULL) {
			*end = true;
			return 0;
		}
		r = put_ldns(x, m, rr);
		if (r == DNS_ERANGE && m->an > 0)
			return 0;
		if (r != 0)
			return r;
		dns_xfr__take(x);
	}
}
