/* Net difference between two zone versions (see dns_netdiff.h). */
#include "signer/dns_netdiff.h"

#include <stdbool.h>
#include <stdlib.h>

#include "zonesigner/zone_change.h"

/* One RR event of the chain: removed or added by the diff at position seq. */
struct event {
	const ldns_rr *rr;   /* borrowed from the diffs */
	size_t seq;
	bool added;
};

struct dns_netdiff {
	uint32_t to;
	ldns_rr **removed, **added;  /* copies, sorted by owner (canonical order) */
	size_t nremoved, nadded;
};

/* The same RR: owner, class, type, RDATA and TTL (a TTL change is a change). */
static int rr_cmp(const ldns_rr *a, const ldns_rr *b)
{
	int c = ldns_rr_compare(a, b);

	if (c != 0)
		return c;
	if (ldns_rr_ttl(a) != ldns_rr_ttl(b))
		return ldns_rr_ttl(a) < ldns_rr_ttl(b) ? -1 : 1;
	return 0;
}

static int event_cmp(const void *pa, const void *pb)
{
	const struct event *a = pa, *b = pb;
	int c = rr_cmp(a->rr, b->rr);

	if (c != 0)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int owner_cmp(const void *pa, const void *pb)
{
	const ldns_rr *a = *(ldns_rr *const *)pa, *b = *(ldns_rr *const *)pb;

	return ldns_dname_compare(ldns_rr_owner(a), ldns_rr_owner(b));
}

static int push_copy(ldns_rr ***v, size_t *n, const ldns_rr *rr)
{
	ldns_rr *c = ldns_rr_clone(rr);

	if (c == NULL)
		return DNS_ENOMEM;
	(*v)[(*n)++] = c;
	return 0;
}

/* Sort the chain's events so that the history of each RR is contiguous and
 * in order; the first event says whether it was in the old version (it was
 * removed first), the last whether it is in the new one (added last). */
static int compose(struct dns_netdiff *nd, struct zone_diff **diffs, size_t n, size_t max_rrs)
{
	struct event *ev = NULL;
	size_t total = 0, k = 0;
	int r = DNS_ENOMEM;

	for (size_t i = 0; i < n; i++)
		total += ldns_rr_list_rr_count(zone_diff_removed(diffs[i])) +
			 ldns_rr_list_rr_count(zone_diff_added(diffs[i]));
	if (total > max_rrs)
		return DNS_ERANGE;
	ev = calloc(total ? total : 1, sizeof(*ev));
	nd->removed = calloc(total ? total : 1, sizeof(*nd->removed));
	nd->added = calloc(total ? total : 1, sizeof(*nd->added));
	if (ev == NULL || nd->removed == NULL || nd->added == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		for (int part = 0; part < 2; part++) {
			const ldns_rr_list *l = part ? zone_diff_added(diffs[i])
						     : zone_diff_removed(diffs[i]);
			for (size_t j = 0; j < ldns_rr_list_rr_count(l); j++) {
				ev[k].rr = ldns_rr_list_rr(l, j);
				ev[k].seq = 2 * i + (size_t)part;
				ev[k].added = part == 1;
				k++;
			}
		}
	}
	qsort(ev, total, sizeof(*ev), event_cmp);
	for (size_t i = 0; i < total;) {
		size_t e = i;
		while (e + 1 < total && rr_cmp(ev[e + 1].rr, ev[i].rr) == 0)
			e++;
		bool in_old = !ev[i].added, in_new = ev[e].added;
		if (in_old && !in_new && (r = push_copy(&nd->removed, &nd->nremoved, ev[i].rr)) != 0)
			goto out;
		if (!in_old && in_new && (r = push_copy(&nd->added, &nd->nadded, ev[i].rr)) != 0)
			goto out;
		i = e + 1;
	}
	qsort(nd->removed, nd->nremoved, sizeof(*nd->removed), owner_cmp);
	qsort(nd->added, nd->nadded, sizeof(*nd->added), owner_cmp);
	r = 0;
out:
	free(ev);
	return r;
}

int dns_netdiff_new(const struct dns_journal *j, uint32_t from, uint32_t to, size_t max_rrs,
		    struct dns_netdiff **out)
{
	struct dns_netdiff *nd = NULL;
	struct zone_diff **diffs = NULL;
	size_t n = 0;
	int r;

	*out = NULL;
	if (max_rrs == 0)
		max_rrs = 1000000;
	if ((r = dns_journal_chain(j, from, to, 0, &diffs, &n)) != 0)
		goto out;
	nd = calloc(1, sizeof(*nd));
	if (nd == NULL) {
		r = DNS_ENOMEM;
		goto out;
	}
	nd->to = to;
	if ((r = compose(nd, diffs, n, max_rrs)) != 0)
		goto out;
	*out = nd;
	nd = NULL;
out:
	for (size_t i = 0; i < n; i++)
		zone_diff_free(diffs[i]);
	free(diffs);
	dns_netdiff_free(nd);
	return r;
}

uint32_t dns_netdiff_to(const struct dns_netdiff *nd)
{
	return nd->to;
}

/* First index in @p v (sorted by owner) whose owner is not before @p owner. */
static size_t lower_bound(ldns_rr *const *v, size_t n, const ldns_rdf *owner)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ldns_dname_compare(ldns_rr_owner(v[mid]), owner) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int dns_netdiff_revert(const struct dns_netdiff *nd, const ldns_rdf *owner, ldns_rr_list *rrs)
{
	size_t i;

	/* Drop what was added since: rebuild the list without those RRs. */
	i = lower_bound(nd->added, nd->nadded, owner);
	if (i < nd->nadded && ldns_dname_compare(ldns_rr_owner(nd->added[i]), owner) == 0) {
		size_t n = ldns_rr_list_rr_count(rrs), keep = 0;
		for (size_t a = 0; a < n; a++) {
			ldns_rr *rr = ldns_rr_list_rr(rrs, a);
			bool drop = false;
			for (size_t k = i; k < nd->nadded && !drop &&
			     ldns_dname_compare(ldns_rr_owner(nd->added[k]), owner) == 0; k++)
				drop = rr_cmp(rr, nd->added[k]) == 0;
			if (drop)
				ldns_rr_free(rr);
			else
				ldns_rr_list_set_rr(rrs, rr, keep++);
		}
		ldns_rr_list_set_rr_count(rrs, keep);
	}
	/* Put back what was removed since. */
	for (i = lower_bound(nd->removed, nd->nremoved, owner);
	     i < nd->nremoved && ldns_dname_compare(ldns_rr_owner(nd->removed[i]), owner) == 0;
	     i++) {
		ldns_rr *c = ldns_rr_clone(nd->removed[i]);
		if (c == NULL || !ldns_rr_list_push_rr(rrs, c)) {
			ldns_rr_free(c);
			return DNS_ENOMEM;
		}
	}
	return 0;
}

void dns_netdiff_free(struct dns_netdiff *nd)
{
	if (nd == NULL)
		return;
	for (size_t i = 0; i < nd->nremoved; i++)
		ldns_rr_free(nd->removed[i]);
	for (size_t i = 0; i < nd->nadded; i++)
		ldns_rr_free(nd->added[i]);
	free(nd->removed);
	free(nd->added);
	free(nd);
}
