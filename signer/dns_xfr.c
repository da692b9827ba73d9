/* AXFR and IXFR as RR streams (see dns_xfr.h). */
#include "signer/dns_xfr.h"

#include <stdlib.h>
#include <string.h>

#include "signer/dns_netdiff.h"
#include "signer/dns_wire_xfr.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

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
int dns_xfr__follow(struct dns_xfr *x)
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
int dns_xfr__peek(struct dns_xfr *x, const ldns_rr **rr)
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
void dns_xfr__take(struct dns_xfr *x)
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
	    (r = dns_xfr__follow(x)) != 0)
		return r;
	if ((r = dns_xfr__peek(x, rr)) != 0 || *rr == NULL)
		return r;
	dns_xfr__take(x);
	return 0;
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
