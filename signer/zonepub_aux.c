/*
 * zonepub's small parts: error texts, the deep copy of the zone parameters,
 * the journal copy the DNS listener reads and the expiry heap. The zone file
 * writer's thread is in zonepub_file.c.
 */
#include "signer/zonepub_int.h"

#include <stdlib.h>
#include <string.h>

#include "signer/dns_err.h"
#include "zonesigner/zone_change.h"

const char *zonepub_strerror(int err)
{
	switch (err) {
	case ZONEPUB_OK: return "success";
	case ZONEPUB_ENOMEM: return "out of memory";
	case ZONEPUB_EINVAL: return "invalid argument or change";
	case ZONEPUB_EEXIST: return "already published";
	case ZONEPUB_ENOENT: return "nothing published there";
	case ZONEPUB_ERESERVED: return "reserved name or managed record type";
	case ZONEPUB_ESIGN: return "signing failed; the zone is unchanged";
	case ZONEPUB_ECHECK: return "the zone's self-check failed; the previous serial stays";
	case ZONEPUB_ESTORE: return "the store transaction failed and was rolled back";
	case ZONEPUB_EFATAL: return "state on disk unknown or diverged from memory";
	case ZONEPUB_ESTATE: return "not in a state that allows this";
	case ZONEPUB_ECLOSED: return "closed before the request ran";
	case ZONEPUB_EIO: return "the zone file could not be written";
	case ZONEPUB_EFORMAT: return "stored zone data is malformed or inconsistent";
	case ZONEPUB_EZONE: return "zone library error";
	case ZONEPUB_EWITHDRAWN: return "withdrawn before signing: a request's intent did not commit";
	}
	return "unknown zonepub error";
}

int zonepub_err_from_zone(int zone_err)
{
	switch (zone_err) {
	case ZONE_OK: return ZONEPUB_OK;
	case ZONE_ENOMEM: return ZONEPUB_ENOMEM;
	case ZONE_EINVAL: return ZONEPUB_EINVAL;
	case ZONE_EEXIST: return ZONEPUB_EEXIST;
	case ZONE_ENOENT: return ZONEPUB_ENOENT;
	case ZONE_ESIGN: return ZONEPUB_ESIGN;
	case ZONE_ECHECK: return ZONEPUB_ECHECK;
	case ZONE_EIO: return ZONEPUB_EIO;
	case ZONE_ERESERVED: return ZONEPUB_ERESERVED;
	case ZONE_ESTATE: return ZONEPUB_ESTATE;
	case ZONE_EFORMAT: return ZONEPUB_EFORMAT;
	}
	return ZONEPUB_EZONE;
}

/* ---- Parameters ---- */

/* Sizes a string copy in the arena (0 for NULL). */
static size_t str_room(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *str_put(char **at, const char *s)
{
	char *p = *at;

	if (s == NULL)
		return NULL;
	memcpy(p, s, strlen(s) + 1);
	*at += strlen(s) + 1;
	return p;
}

/*
 * One allocation holds every string, the NS array and the CA certificate, so
 * that the copy outlives the daemon's configuration and policy objects (a
 * SIGHUP reload frees those).
 */
int zp_params_copy(const struct zone_params *p, struct zone_params *out, void **mem)
{
	size_t room = 0;
	char *at, **ns;
	void *m;

	room += p->n_ns * sizeof(char *);
	room += str_room(p->origin) + str_room(p->soa_mname) + str_room(p->soa_rname) +
		str_room(p->dance_prefix) + p->ca_len;
	for (size_t i = 0; i < p->n_ns; i++)
		room += str_room(p->ns[i]);
	if ((m = calloc(1, room ? room : 1)) == NULL)
		return ZONEPUB_ENOMEM;
	*out = *p;
	ns = m;
	at = (char *)m + p->n_ns * sizeof(char *);
	for (size_t i = 0; i < p->n_ns; i++)
		ns[i] = (char *)str_put(&at, p->ns[i]);
	out->ns = p->n_ns ? (const char *const *)ns : NULL;
	out->origin = str_put(&at, p->origin);
	out->soa_mname = str_put(&at, p->soa_mname);
	out->soa_rname = str_put(&at, p->soa_rname);
	out->dance_prefix = str_put(&at, p->dance_prefix);
	if (p->ca_der != NULL && p->ca_len > 0) {
		memcpy(at, p->ca_der, p->ca_len);
		out->ca_der = (const uint8_t *)at;
	} else {
		out->ca_der = NULL;
		out->ca_len = 0;
	}
	*mem = m;
	return 0;
}

/* ---- The journal the listener reads ---- */

void zp_journal_clear(struct zp_journal *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->v[i].wire);
	j->n = 0;
	j->bytes = 0;
}

int zp_journal_add(struct zp_journal *j, uint32_t from, uint32_t to, int64_t when,
		   uint8_t *wire, size_t len)
{
	/* A diff that does not continue the chain makes the older ones useless:
	 * a secondary could not get from them to the current serial. */
	if (j->n > 0 && j->v[j->n - 1].to != from)
		zp_journal_clear(j);
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		struct zp_jentry *v = realloc(j->v, cap * sizeof(*v));
		if (v == NULL) {
			free(wire);
			return ZONEPUB_ENOMEM;
		}
		j->v = v;
		j->cap = cap;
	}
	j->v[j->n].from = from;
	j->v[j->n].to = to;
	j->v[j->n].when = when;
	j->v[j->n].wire = wire;
	j->v[j->n].len = len;
	j->n++;
	j->bytes += len;
	return 0;
}

size_t zp_journal_keep(const struct zonepub *zp, const struct zp_journal *j, int64_t now,
		       size_t extra_entries, size_t extra_bytes, int64_t extra_when)
{
	size_t n = j->n + extra_entries, bytes = j->bytes + extra_bytes, drop = 0;

	/* Drop from the oldest while a bound is exceeded. The new entry (if
	 * any) is the newest and is dropped last. */
	while (drop < n) {
		const struct zp_jentry *e = drop < j->n ? &j->v[drop] : NULL;
		int64_t when = e ? e->when : extra_when;
		size_t len = e ? e->len : extra_bytes;

		if (n - drop <= zp->o.journal_max_diffs && bytes <= zp->o.journal_max_bytes &&
		    now - when <= (int64_t)zp->o.journal_max_age)
			break;
		bytes -= len;
		drop++;
	}
	return n - drop;
}

void zp_journal_trim(struct zp_journal *j, size_t keep)
{
	size_t drop;

	if (keep >= j->n)
		return;
	drop = j->n - keep;
	for (size_t i = 0; i < drop; i++) {
		j->bytes -= j->v[i].len;
		free(j->v[i].wire);
	}
	memmove(j->v, j->v + drop, keep * sizeof(*j->v));
	j->n = keep;
}

/* The listener asks for the diff that starts at @p from. Serials only grow
 * along the chain, so a binary search would do; the chain is short enough
 * (bounded by journal_max_diffs) for a scan from the newest end. */
static int journal_diff_from(void *ctx, uint32_t from, struct zone_diff **out)
{
	const struct zonepub *zp = ctx;
	const struct zp_journal *j = &zp->jr;
	int zr;

	*out = NULL;
	for (size_t i = j->n; i-- > 0;) {
		if (j->v[i].from != from)
			continue;
		zr = zone_diff_from_wire(j->v[i].wire, j->v[i].len, out);
		if (zr == ZONE_ENOMEM)
			return DNS_ENOMEM;
		return zr == 0 ? 0 : DNS_EFORMAT;
	}
	return DNS_ENOENT;
}

struct dns_journal zp_journal_ops(struct zonepub *zp)
{
	struct dns_journal j = { journal_diff_from, zp };

	return j;
}

/* ---- Expiry heap (min-heap on not_after) ---- */

static void heap_swap(struct zp_expiry *a, struct zp_expiry *b)
{
	struct zp_expiry t = *a;

	*a = *b;
	*b = t;
}

int zp_heap_push(struct zonepub *zp, const struct zp_expiry *e)
{
	size_t i;

	if (zp->nheap == zp->capheap) {
		size_t cap = zp->capheap ? zp->capheap * 2 : 64;
		struct zp_expiry *h = realloc(zp->heap, cap * sizeof(*h));
		if (h == NULL)
			return ZONEPUB_ENOMEM;
		zp->heap = h;
		zp->capheap = cap;
	}
	i = zp->nheap++;
	zp->heap[i] = *e;
	while (i > 0 && zp->heap[(i - 1) / 2].not_after > zp->heap[i].not_after) {
		heap_swap(&zp->heap[(i - 1) / 2], &zp->heap[i]);
		i = (i - 1) / 2;
	}
	return 0;
}

const struct zp_expiry *zp_heap_top(const struct zonepub *zp)
{
	return zp->nheap ? &zp->heap[0] : NULL;
}

void zp_heap_pop(struct zonepub *zp)
{
	size_t i = 0;

	if (zp->nheap == 0)
		return;
	zp->heap[0] = zp->heap[--zp->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < zp->nheap && zp->heap[l].not_after < zp->heap[m].not_after)
			m = l;
		if (r < zp->nheap && zp->heap[r].not_after < zp->heap[m].not_after)
			m = r;
		if (m == i)
			break;
		heap_swap(&zp->heap[i], &zp->heap[m]);
		i = m;
	}
}
