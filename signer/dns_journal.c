/*
 * The in-memory IXFR journal (see dns_journal.h). Diffs are kept in the
 * same wire form the daemon stores (zone_diff_to_wire), so every read goes
 * through zone_diff_from_wire as it does with the store, and a reader owns
 * what it gets even if the journal trims meanwhile.
 */
#include "signer/dns_journal.h"

#include <stdlib.h>
#include <string.h>

#include "zonesigner/zone_change.h"

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
