/* AXFR and IXFR as RR streams (see dns_xfr.h). */
#include "signer/dns_xfr.h"

#include <stdlib.h>
#include <string.h>

#include "signer/dns_netdiff.h"
#include "signer/dns_wire.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

/* The RRs of a name still to be sent, copied out of the zone. */
struct xfr_held {
	uint8_t owner[255];
	size_t ownerlen;
	struct zone_wire_rr *rr;
	size_t nrr, idx, cap;
	uint8_t *data;
	size_t datacap;
};

enum xfr_phase {
	XFR_FIRST_SOA,
	XFR_BODY,
	XFR_LAST_SOA,
	XFR_DONE,
};

struct dns_xfr {
	bool ixfr;
	enum xfr_phase phase;
	uint32_t serial;
	size_t count;
	unsigned followed;     /* AXFR: versions the zone moved through meanwhile */
	ldns_rr *soa;          /* the SOA the transfer starts and ends with */

	/* AXFR: the live zone, walked one owner name at a time. */
	const struct zone *z;
	ldns_rdf *origin;
	ldns_rr_list *cur;     /* RRs of the current name (our copy) */
	size_t idx;
	bool at_apex;
	ldns_rdf *next;        /* next owner name, from the current name's NSEC */
	const struct dns_journal *j;
	struct dns_netdiff *nd; /* live zone -> the version being sent, once it moved */

	/* AXFR in wire form (dns_xfr_fill) while the zone is still the version
	 * being sent: its nodes read in place, and the rest of a name that did
	 * not fit into a message copied (the zone may change before the next). */
	bool in_place;
	struct zone_wire_iter *wi;
	struct xfr_held held;
	uint8_t nextw[255];    /* the NSEC next name of the last name read */
	size_t nextwlen;
	ldns_buffer *rdbuf;    /* RDATA of an ldns RR being written */

	/* IXFR: the chain of diffs, fetched when the transfer starts. */
	struct zone_diff **diffs;
	size_t ndiffs, di;
	int part;              /* 0: removed list, 1: added list */
};

/* Serial a is newer than b (RFC 1982 with 32-bit serials). */
static bool serial_gt(uint32_t a, uint32_t b)
{
	return a != b && (uint32_t)(a - b) < 0x80000000u;
}

int dns_zone_rrs(const struct zone *z, const ldns_rdf *name, ldns_rr_list **out)
{
	char *s = ldns_rdf2str(name);
	int zr;

	*out = NULL;
	if (s == NULL)
		return DNS_ENOMEM;
	zr = zone_name_rrs(z, s, out);
	free(s);
	if (zr == ZONE_ENOMEM)
		return DNS_ENOMEM;
	return zr == 0 ? 0 : DNS_EZONE;
}

int dns_zone_soa(const struct zone *z, ldns_rr **soa, ldns_rr_list **sigs)
{
	ldns_rr_list *all = NULL, *rs = NULL;
	ldns_rr *s = NULL;
	int r = DNS_EZONE;

	*soa = NULL;
	if (sigs != NULL)
		*sigs = NULL;
	if (z == NULL || zone_serial(z) == 0)
		goto out;
	if (zone_name_rrs(z, zone_origin(z), &all) != 0)
		goto out;
	if (sigs != NULL && (rs = ldns_rr_list_new()) == NULL) {
		r = DNS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(all); i++) {
		ldns_rr *rr = ldns_rr_list_rr(all, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && s == NULL) {
			s = ldns_rr_clone(rr);
			if (s == NULL) {
				r = DNS_ENOMEM;
				goto out;
			}
		} else if (rs != NULL && ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG &&
			   ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) == LDNS_RR_TYPE_SOA) {
			ldns_rr *c = ldns_rr_clone(rr);
			if (c == NULL || !ldns_rr_list_push_rr(rs, c)) {
				ldns_rr_free(c);
				r = DNS_ENOMEM;
				goto out;
			}
		}
	}
	if (s == NULL)
		goto out;
	*soa = s;
	s = NULL;
	if (sigs != NULL) {
		*sigs = rs;
		rs = NULL;
	}
	r = 0;
out:
	ldns_rr_free(s);
	ldns_rr_list_deep_free(rs);
	ldns_rr_list_deep_free(all);
	return r;
}

int dns_xfr_axfr_new(const struct zone *z, const struct dns_journal *j, struct dns_xfr **out)
{
	struct dns_xfr *x = NULL;
	int r = DNS_ENOMEM;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		goto out;
	x->z = z;
	x->j = j;
	x->serial = zone_serial(z);
	x->in_place = true;
	if ((x->rdbuf = ldns_buffer_new(1024)) == NULL)
		goto out;
	if ((r = dns_zone_soa(z, &x->soa, NULL)) != 0)
		goto out;
	if (ldns_str2rdf_dname(&x->origin, zone_origin(z)) != LDNS_STATUS_OK) {
		r = DNS_EZONE;
		goto out;
	}
	x->phase = XFR_FIRST_SOA;
	*out = x;
	x = NULL;
	r = 0;
out:
	dns_xfr_free(x);
	return r;
}

int dns_xfr_ixfr_new(const struct zone *z, const struct dns_journal *j, uint32_t from,
		     size_t max_diffs, struct dns_xfr **out)
{
	struct dns_xfr *x = NULL;
	uint32_t cur = zone_serial(z);
	int r = DNS_ENOMEM;

	*out = NULL;
	x = calloc(1, sizeof(*x));
	if (x == NULL)
		goto out;
	x->ixfr = true;
	x->serial = cur;
	if ((x->rdbuf = ldns_buffer_new(1024)) == NULL)
		goto out;
	if (cur == 0) {
		r = DNS_EZONE;
		goto out;
	}
	/* Up to date (or ahead of us): no diffs, the answer is our SOA alone. */
	if (serial_gt(cur, from) &&
	    (r = dns_journal_chain(j, from, cur, max_diffs, &x->diffs, &x->ndiffs)) != 0)
		goto out;
	if (x->ndiffs > 0) {
		const ldns_rr_list *add = zone_diff_added(x->diffs[x->ndiffs - 1]);
		x->soa = ldns_rr_clone(ldns_rr_list_rr(add, 0));
		if (x->soa == NULL) {
			r = DNS_ENOMEM;
			goto out;
		}
	} else if ((r = dns_zone_soa(z, &x->soa, NULL)) != 0) {
		goto out;
	}
	x->phase = XFR_FIRST_SOA;
	*out = x;
	x = NULL;
	r = 0;
out:
	dns_xfr_free(x);
	return r;
}

/* Load the RRs of the next owner name of an AXFR; false at the apex again. */
static int axfr_load_next(struct dns_xfr *x, bool *more)
{
	ldns_rr_list *l = NULL;
	ldns_rdf *nx = NULL;
	int r;

	*more = false;
	if (x->cur != NULL && (x->next == NULL || ldns_dname_compare(x->next, x->origin) == 0))
		return 0;
	r = dns_zone_rrs(x->z, x->cur == NULL ? x->origin : x->next, &l);
	/* Read from a newer version: back to the one being sent. */
	if (r == 0 && x->nd != NULL)
		r = dns_netdiff_revert(x->nd, x->cur == NULL ? x->origin : x->next, l);
	if (r != 0) {
		ldns_rr_list_deep_free(l);
		return r;
	}
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC && nx == NULL)
			nx = ldns_rdf_clone(ldns_rr_rdf(rr, 0));
	}
	/* Every stored name has an NSEC; a name without one means the chain
	 * cannot be followed, which the zone's self-check should have caught. */
	if (ldns_rr_list_rr_count(l) == 0 || nx == NULL) {
		ldns_rr_list_deep_free(l);
		ldns_rdf_deep_free(nx);
		return DNS_EZONE;
	}
	x->at_apex = x->cur == NULL;
	ldns_rr_list_deep_free(x->cur);
	ldns_rdf_deep_free(x->next);
	x->cur = l;
	x->next = nx;
	x->idx = 0;
	*more = true;
	return 0;
}

/* The next RR of an AXFR read through ldns, without taking it; NULL when
 * the walk is back at the apex. */
static int axfr_peek(struct dns_xfr *x, const ldns_rr **rr)
{
	bool more;
	int r;

	*rr = NULL;
	for (;;) {
		while (x->cur != NULL && x->idx < ldns_rr_list_rr_count(x->cur)) {
			const ldns_rr *c = ldns_rr_list_rr(x->cur, x->idx);
			/* The apex SOA opens and closes the transfer only. */
			if (x->at_apex && ldns_rr_get_type(c) == LDNS_RR_TYPE_SOA) {
				x->idx++;
				continue;
			}
			*rr = c;
			return 0;
		}
		if ((r = axfr_load_next(x, &more)) != 0)
			return r;
		if (!more)
			return 0;
	}
}

/* The next RR of an IXFR without taking it; NULL at the end of the chain. */
static const ldns_rr *ixfr_peek(struct dns_xfr *x)
{
	while (x->di < x->ndiffs) {
		const struct zone_diff *d = x->diffs[x->di];
		const ldns_rr_list *l = x->part == 0 ? zone_diff_removed(d) : zone_diff_added(d);
		if (x->idx < ldns_rr_list_rr_count(l))
			return ldns_rr_list_rr(l, x->idx);
		x->idx = 0;
		if (x->part == 0) {
			x->part = 1;
		} else {
			x->part = 0;
			x->di++;
		}
	}
	return NULL;
}

/* The zone moved on during an AXFR: get the net difference from the
 * version being sent to the live one, or give up if the journal lacks it. */
static int axfr_follow(struct dns_xfr *x)
{
	uint32_t live = zone_serial(x->z);

	if (x->nd != NULL && dns_netdiff_to(x->nd) == live)
		return 0;
	dns_netdiff_free(x->nd);
	x->nd = NULL;
	if (dns_netdiff_new(x->j, x->serial, live, 0, &x->nd) != 0)
		return DNS_ECHANGED;
	x->followed++;
	return 0;
}

/* The next RR of the stream (ldns form) without taking it; NULL after the
 * closing SOA. */
static int peek(struct dns_xfr *x, const ldns_rr **rr)
{
	int r;

	*rr = NULL;
	switch (x->phase) {
	case XFR_FIRST_SOA:
		*rr = x->soa;
		return 0;
	case XFR_BODY:
		if (x->ixfr) {
			*rr = ixfr_peek(x);
		} else if ((r = axfr_peek(x, rr)) != 0) {
			return r;
		}
		if (*rr == NULL) {
			*rr = x->soa;
			x->phase = XFR_LAST_SOA;
		}
		return 0;
	case XFR_LAST_SOA:
		*rr = x->soa;
		return 0;
	case XFR_DONE:
		return 0;
	}
	return 0;
}

/* Take the RR peek() gave. */
static void take(struct dns_xfr *x)
{
	switch (x->phase) {
	case XFR_FIRST_SOA:
		/* An up-to-date IXFR is the SOA alone. */
		x->phase = (x->ixfr && x->ndiffs == 0) ? XFR_DONE : XFR_BODY;
		break;
	case XFR_BODY:
		x->idx++;
		break;
	case XFR_LAST_SOA:
		x->phase = XFR_DONE;
		break;
	case XFR_DONE:
		return;
	}
	x->count++;
}

int dns_xfr_next(struct dns_xfr *x, const ldns_rr **rr)
{
	int r;

	*rr = NULL;
	if (!x->ixfr && x->phase != XFR_DONE && zone_serial(x->z) != x->serial &&
	    (r = axfr_follow(x)) != 0)
		return r;
	if ((r = peek(x, rr)) != 0 || *rr == NULL)
		return r;
	take(x);
	return 0;
}

/* ---- The wire path (dns_xfr_fill) ---- */

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
			if (r == DNS_ERANGE && m->an > 0) {
				*full = true;
				return hold(x, nm, i);
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
		if ((r = axfr_follow(x)) != 0)
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
		if ((r = peek(x, &rr)) != 0)
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
		take(x);
	}
}

bool dns_xfr_is_ixfr(const struct dns_xfr *x)
{
	return x->ixfr;
}

uint32_t dns_xfr_serial(const struct dns_xfr *x)
{
	return x->serial;
}

size_t dns_xfr_count(const struct dns_xfr *x)
{
	return x->count;
}

unsigned dns_xfr_followed(const struct dns_xfr *x)
{
	return x->followed;
}

void dns_xfr_free(struct dns_xfr *x)
{
	if (x == NULL)
		return;
	ldns_rr_free(x->soa);
	ldns_rdf_deep_free(x->origin);
	ldns_rr_list_deep_free(x->cur);
	ldns_rdf_deep_free(x->next);
	dns_netdiff_free(x->nd);
	zone_wire_iter_free(x->wi);
	free(x->held.rr);
	free(x->held.data);
	ldns_buffer_free(x->rdbuf);
	for (size_t i = 0; i < x->ndiffs; i++)
		zone_diff_free(x->diffs[i]);
	free(x->diffs);
	free(x);
}
