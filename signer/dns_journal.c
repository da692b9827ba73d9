/*
 * The in-memory IXFR journal (see dns_journal.h). Diffs are kept in the
 * same wire form the daemon stores (zone_diff_to_wire), so every read goes
 * through zone_diff_from_wire as it does with the store, and a reader owns
 * what it gets even if the journal trims meanwhile.
 */
#include "signer/dns_journal.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "zonesigner/zone_change.h"
#include "zonesigner/zone_ldns.h"

struct jentry {
	uint32_t from, to;
	uint8_t *wire;
	size_t len;
};

struct dns_journal_mem {
	struct jentry *v;   /* ring of max entries, oldest at head */
	size_t max, head, n;
};

int dns_journal_mem_new(size_t max_diffs, struct dns_journal_mem **out)
{
	struct dns_journal_mem *j = calloc(1, sizeof(*j));

	*out = NULL;
	if (j == NULL)
		return DNS_ENOMEM;
	j->max = max_diffs ? max_diffs : 1000;
	j->v = calloc(j->max, sizeof(*j->v));
	if (j->v == NULL) {
		free(j);
		return DNS_ENOMEM;
	}
	*out = j;
	return 0;
}

void dns_journal_mem_reset(struct dns_journal_mem *j)
{
	for (size_t i = 0; i < j->n; i++) {
		struct jentry *e = &j->v[(j->head + i) % j->max];
		free(e->wire);
		memset(e, 0, sizeof(*e));
	}
	j->head = j->n = 0;
}

void dns_journal_mem_free(struct dns_journal_mem *j)
{
	if (j == NULL)
		return;
	dns_journal_mem_reset(j);
	free(j->v);
	free(j);
}

int dns_journal_mem_add(struct dns_journal_mem *j, const struct zone_diff *d)
{
	struct jentry e = { 0 };
	int zr;

	zr = zone_diff_to_wire(d, &e.wire, &e.len);
	if (zr == ZONE_ENOMEM)
		return DNS_ENOMEM;
	if (zr != 0)
		return DNS_EFORMAT;
	e.from = zone_diff_serial_from(d);
	e.to = zone_diff_serial_to(d);
	if (j->n > 0 && j->v[(j->head + j->n - 1) % j->max].to != e.from)
		dns_journal_mem_reset(j);
	if (j->n == j->max) {
		free(j->v[j->head].wire);
		j->head = (j->head + 1) % j->max;
		j->n--;
	}
	j->v[(j->head + j->n) % j->max] = e;
	j->n++;
	return 0;
}

size_t dns_journal_mem_count(const struct dns_journal_mem *j)
{
	return j->n;
}

static int mem_diff_from(void *ctx, uint32_t from, struct zone_diff **out)
{
	struct dns_journal_mem *j = ctx;
	int zr;

	*out = NULL;
	for (size_t i = 0; i < j->n; i++) {
		const struct jentry *e = &j->v[(j->head + i) % j->max];
		if (e->from != from)
			continue;
		zr = zone_diff_from_wire(e->wire, e->len, out);
		if (zr == 0)
			return 0;
		return zr == ZONE_ENOMEM ? DNS_ENOMEM : DNS_EFORMAT;
	}
	return DNS_ENOENT;
}

struct dns_journal dns_journal_mem_ops(struct dns_journal_mem *j)
{
	struct dns_journal ops = { mem_diff_from, j };

	return ops;
}

/* Serial a is newer than b (RFC 1982 with 32-bit serials). */
static bool serial_gt(uint32_t a, uint32_t b)
{
	return a != b && (uint32_t)(a - b) < 0x80000000u;
}

/* A diff is one IXFR step: its lists start with the old and the new SOA. */
static bool diff_ok(const struct zone_diff *d)
{
	const ldns_rr_list *rm = zone_diff_removed(d), *add = zone_diff_added(d);

	return rm != NULL && add != NULL && ldns_rr_list_rr_count(rm) > 0 &&
	       ldns_rr_list_rr_count(add) > 0 &&
	       ldns_rr_get_type(ldns_rr_list_rr(rm, 0)) == LDNS_RR_TYPE_SOA &&
	       ldns_rr_get_type(ldns_rr_list_rr(add, 0)) == LDNS_RR_TYPE_SOA &&
	       ldns_rdf2native_int32(ldns_rr_rdf(ldns_rr_list_rr(add, 0), 2)) ==
		       zone_diff_serial_to(d);
}

int dns_journal_chain(const struct dns_journal *j, uint32_t from, uint32_t to, size_t max,
		      struct zone_diff ***diffs, size_t *n)
{
	struct zone_diff **v = NULL;
	size_t cnt = 0, cap = 0;
	uint32_t s = from;
	int r = 0;

	*diffs = NULL;
	*n = 0;
	if (max == 0)
		max = 10000;
	while (serial_gt(to, s)) {
		struct zone_diff *d = NULL;
		if (j == NULL || j->diff_from == NULL) {
			r = DNS_ENOENT;
			goto out;
		}
		if (cnt == max) {
			r = DNS_ERANGE;
			goto out;
		}
		if (cnt == cap) {
			size_t c = cap ? cap * 2 : 8;
			struct zone_diff **nv = realloc(v, c * sizeof(*nv));
			if (nv == NULL) {
				r = DNS_ENOMEM;
				goto out;
			}
			v = nv;
			cap = c;
		}
		if ((r = j->diff_from(j->ctx, s, &d)) != 0)
			goto out;
		v[cnt++] = d;
		/* Each step must move forward, or a bad journal could loop. */
		if (zone_diff_serial_from(d) != s || !serial_gt(zone_diff_serial_to(d), s) ||
		    serial_gt(zone_diff_serial_to(d), to) || !diff_ok(d)) {
			r = DNS_EFORMAT;
			goto out;
		}
		s = zone_diff_serial_to(d);
	}
	if (s != to) {
		r = DNS_EFORMAT;
		goto out;
	}
	*diffs = v;
	*n = cnt;
	v = NULL;
	cnt = 0;
out:
	for (size_t i = 0; i < cnt; i++)
		zone_diff_free(v[i]);
	free(v);
	return r;
}
