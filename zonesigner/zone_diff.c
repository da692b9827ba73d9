/*
 * The IXFR diff of one version: removed and added RRs (SOA first in each),
 * the names whose stored rows changed, and a compact serialisation for the
 * daemon's journal.
 */
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_diff.h"
#include "zonesigner/zone_internal.h"

#include <stdlib.h>
#include <string.h>

#define DIFF_MAGIC0 'Z'
#define DIFF_MAGIC1 'D'
#define DIFF_VERSION 1
#define DIFF_HDR 23
#define DIFF_MAX_RRS 100000000u

int zone_diff_new(uint32_t from, uint32_t to, struct zone_diff **out)
{
	struct zone_diff *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return ZONE_ENOMEM;
	d->from = from;
	d->to = to;
	d->removed = ldns_rr_list_new();
	d->added = ldns_rr_list_new();
	if (d->removed == NULL || d->added == NULL) {
		zone_diff_free(d);
		return ZONE_ENOMEM;
	}
	*out = d;
	return 0;
}

void zone_diff_free(struct zone_diff *d)
{
	if (d == NULL)
		return;
	ldns_rr_list_deep_free(d->removed);
	ldns_rr_list_deep_free(d->added);
	for (size_t i = 0; i < d->nkeys; i++)
		free(d->keys[i]);
	free(d->keys);
	free(d->keylens);
	free(d);
}

int zone_diff_add_name(struct zone_diff *d, const uint8_t *key, size_t keylen)
{
	uint8_t **nk;
	size_t *nl;
	uint8_t *copy;

	nk = realloc(d->keys, (d->nkeys + 1) * sizeof(*nk));
	if (nk == NULL)
		return ZONE_ENOMEM;
	d->keys = nk;
	nl = realloc(d->keylens, (d->nkeys + 1) * sizeof(*nl));
	if (nl == NULL)
		return ZONE_ENOMEM;
	d->keylens = nl;
	copy = malloc(keylen ? keylen : 1);
	if (copy == NULL)
		return ZONE_ENOMEM;
	if (keylen)
		memcpy(copy, key, keylen);
	d->keys[d->nkeys] = copy;
	d->keylens[d->nkeys] = keylen;
	d->nkeys++;
	return 0;
}

static bool rr_same(const ldns_rr *a, const ldns_rr *b)
{
	return ldns_rr_ttl(a) == ldns_rr_ttl(b) && ldns_rr_compare(a, b) == 0;
}

static bool in_list(const ldns_rr_list *l, const ldns_rr *rr)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		if (rr_same(ldns_rr_list_rr(l, i), rr))
			return true;
	return false;
}

/* Move the RRs of @p from that are not in @p other to @p to (SOA in front). */
static int move_missing(ldns_rr_list *from, const ldns_rr_list *other, ldns_rr_list *to)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(from); i++) {
		ldns_rr *rr = ldns_rr_list_rr(from, i);
		if (in_list(other, rr))
			continue;
		ldns_rr *c = ldns_rr_clone(rr);
		if (c == NULL || !ldns_rr_list_push_rr(to, c)) {
			ldns_rr_free(c);
			return ZONE_ENOMEM;
		}
		if (ldns_rr_get_type(c) == LDNS_RR_TYPE_SOA) {
			/* Keep the SOA first: swap it to the front. */
			size_t n = ldns_rr_list_rr_count(to);
			ldns_rr *first = ldns_rr_list_rr(to, 0);
			ldns_rr_list_set_rr(to, c, 0);
			ldns_rr_list_set_rr(to, first, n - 1);
		}
	}
	return 0;
}

int zone_diff_add_rrs(struct zone_diff *d, ldns_rr_list *old, ldns_rr_list *new)
{
	int r = move_missing(old, new, d->removed);

	if (r == 0)
		r = move_missing(new, old, d->added);
	return r;
}

uint32_t zone_diff_serial_from(const struct zone_diff *d)
{
	return d->from;
}

uint32_t zone_diff_serial_to(const struct zone_diff *d)
{
	return d->to;
}

const ldns_rr_list *zone_diff_removed(const struct zone_diff *d)
{
	return d->removed;
}

const ldns_rr_list *zone_diff_added(const struct zone_diff *d)
{
	return d->added;
}

size_t zone_diff_signatures(const struct zone_diff *d)
{
	return d->nsigs;
}

size_t zone_diff_names(const struct zone_diff *d)
{
	return d->nkeys;
}

void zone_diff_name(const struct zone_diff *d, size_t i, const uint8_t **key, size_t *keylen)
{
	*key = d->keys[i];
	*keylen = d->keylens[i];
}

static int append(uint8_t **buf, size_t *len, size_t *cap, const uint8_t *p, size_t n)
{
	if (*len + n > *cap) {
		size_t nc = (*len + n) * 2;
		uint8_t *nb = realloc(*buf, nc);
		if (nb == NULL)
			return ZONE_ENOMEM;
		*buf = nb;
		*cap = nc;
	}
	memcpy(*buf + *len, p, n);
	*len += n;
	return 0;
}

static int append_list(const ldns_rr_list *l, uint8_t **buf, size_t *len, size_t *cap)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		uint8_t *w = NULL;
		size_t wl = 0;
		if (ldns_rr2wire(&w, ldns_rr_list_rr(l, i), LDNS_SECTION_ANSWER, &wl) !=
		    LDNS_STATUS_OK)
			return ZONE_ELDNS;
		int r = append(buf, len, cap, w, wl);
		free(w);
		if (r != 0)
			return r;
	}
	return 0;
}

int zone_diff_to_wire(const struct zone_diff *d, uint8_t **out, size_t *outlen)
{
	uint8_t hdr[DIFF_HDR], *buf = NULL;
	size_t len = 0, cap = 0;
	int r;

	hdr[0] = DIFF_MAGIC0;
	hdr[1] = DIFF_MAGIC1;
	hdr[2] = DIFF_VERSION;
	zone_put32(hdr + 3, d->from);
	zone_put32(hdr + 7, d->to);
	zone_put32(hdr + 11, (uint32_t)d->nsigs);
	zone_put32(hdr + 15, (uint32_t)ldns_rr_list_rr_count(d->removed));
	zone_put32(hdr + 19, (uint32_t)ldns_rr_list_rr_count(d->added));
	r = append(&buf, &len, &cap, hdr, sizeof(hdr));
	if (r == 0)
		r = append_list(d->removed, &buf, &len, &cap);
	if (r == 0)
		r = append_list(d->added, &buf, &len, &cap);
	if (r != 0) {
		free(buf);
		return r;
	}
	*out = buf;
	*outlen = len;
	return 0;
}

static int read_list(const uint8_t *buf, size_t len, size_t *pos, uint32_t n, ldns_rr_list *l)
{
	for (uint32_t i = 0; i < n; i++) {
		ldns_rr *rr = NULL;
		if (*pos >= len ||
		    ldns_wire2rr(&rr, buf, len, pos, LDNS_SECTION_ANSWER) != LDNS_STATUS_OK)
			return ZONE_EFORMAT;
		if (!ldns_rr_list_push_rr(l, rr)) {
			ldns_rr_free(rr);
			return ZONE_ENOMEM;
		}
	}
	return 0;
}

int zone_diff_from_wire(const uint8_t *buf, size_t len, struct zone_diff **out)
{
	struct zone_diff *d = NULL;
	size_t pos = DIFF_HDR;
	uint32_t nrem, nadd;
	int r = ZONE_EFORMAT;

	if (buf == NULL || len < DIFF_HDR || buf[0] != DIFF_MAGIC0 || buf[1] != DIFF_MAGIC1 ||
	    buf[2] != DIFF_VERSION)
		goto out;
	nrem = zone_get32(buf + 15);
	nadd = zone_get32(buf + 19);
	/* Every RR takes at least 11 bytes: bound the counts before reading. */
	if (nrem > DIFF_MAX_RRS || nadd > DIFF_MAX_RRS ||
	    ((uint64_t)nrem + nadd) * 11 > len - DIFF_HDR)
		goto out;
	r = zone_diff_new(zone_get32(buf + 3), zone_get32(buf + 7), &d);
	if (r != 0)
		goto out;
	d->nsigs = zone_get32(buf + 11);
	r = read_list(buf, len, &pos, nrem, d->removed);
	if (r == 0)
		r = read_list(buf, len, &pos, nadd, d->added);
	if (r == 0 && pos != len)
		r = ZONE_EFORMAT;
	if (r != 0)
		goto out;
	*out = d;
	d = NULL;
out:
	zone_diff_free(d);
	return r;
}
