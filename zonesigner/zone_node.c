/*
 * Nodes: one allocation per owner name holding its key and RRsets (layout in
 * zone_node.h), and the mutable "edit" form a change works on before it is
 * encoded back into a fresh node.
 */
#include "zonesigner/zone_node.h"
#include "zonesigner/zone_err.h"
#include "zonesigner/zone_name.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define SLAB_POISON(p, n) ASAN_POISON_MEMORY_REGION((p), (n))
#define SLAB_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define SLAB_POISON(p, n) ((void)(p), (void)(n))
#define SLAB_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define NODE_MAX_LEN (1u << 24)   /* far above any legitimate name's data */
/* Slabs start small (a test zone of ten names should not cost megabytes) and
 * double up to SLAB_MAX, which keeps the waste at the end of the newest slab
 * small against a large zone. A node larger than a quarter of SLAB_MAX is
 * malloc'd on its own. */
#define SLAB_MIN (16u << 10)
#define SLAB_MAX (4u << 20)

int zone_rd_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

int zone_node_rrset_next(const struct zone_node *n, size_t *pos, struct zone_rrset *out)
{
	size_t p = *pos ? *pos : n->keylen;
	size_t end = n->len, q;
	struct zone_rrset s;

	if (p >= end)
		return 0;
	if (end - p < ZONE_SET_HDR)
		return ZONE_EFORMAT;
	s.type = zone_get16(n->data + p);
	s.flags = n->data[p + 2];
	s.ttl = zone_get32(n->data + p + 3);
	s.nrr = zone_get16(n->data + p + 7);
	p += ZONE_SET_HDR;
	q = p;
	for (unsigned i = 0; i < s.nrr; i++) {
		if (end - q < 2)
			return ZONE_EFORMAT;
		size_t l = zone_get16(n->data + q);
		if (end - q - 2 < l)
			return ZONE_EFORMAT;
		q += 2 + l;
	}
	if (end - q < ZONE_SIG_LEN)
		return ZONE_EFORMAT;
	s.rrs = n->data + p;
	s.rrslen = q - p;
	s.sig = (uint8_t *)n->data + q;
	*pos = q + ZONE_SIG_LEN;
	*out = s;
	return 1;
}

int zone_node_rrset_find(const struct zone_node *n, uint16_t type, struct zone_rrset *out)
{
	size_t pos = 0;
	int r;

	while ((r = zone_node_rrset_next(n, &pos, out)) == 1)
		if (out->type == type)
			return 1;
	return 0;
}

void zone_sig_get(const uint8_t *sig, struct zone_sig *out)
{
	out->inception = zone_get32(sig);
	out->expiration = zone_get32(sig + 4);
	out->key_tag = zone_get16(sig + 8);
	out->rs = sig + 10;
}

void zone_sig_put(uint8_t *sig, uint32_t inception, uint32_t expiration, uint16_t tag,
		  const uint8_t rs[64])
{
	zone_put32(sig, inception);
	zone_put32(sig + 4, expiration);
	zone_put16(sig + 8, tag);
	memcpy(sig + 10, rs, 64);
}

int zone_node_validate(const struct zone_node *n)
{
	size_t pos = 0;
	struct zone_rrset s;
	int r, have_nsec = 0, have_data = 0;
	long last = -1;

	if (zone_name_key_labels(zone_node_key(n), n->keylen) < 0)
		return ZONE_EFORMAT;
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		if ((long)s.type <= last || s.type == 0 || s.type == ZONE_RRTYPE_RRSIG)
			return ZONE_EFORMAT;
		last = s.type;
		if (s.type == ZONE_RRTYPE_NSEC) {
			if (s.nrr != 0)
				return ZONE_EFORMAT;
			have_nsec = 1;
			continue;
		}
		if (s.nrr == 0)
			return ZONE_EFORMAT;
		have_data = 1;
		const uint8_t *prev = NULL;
		size_t plen = 0, q = 0;
		for (unsigned i = 0; i < s.nrr; i++) {
			size_t l = zone_get16(s.rrs + q);
			const uint8_t *d = s.rrs + q + 2;
			if (prev != NULL && zone_rd_cmp(prev, plen, d, l) >= 0)
				return ZONE_EFORMAT;
			prev = d;
			plen = l;
			q += 2 + l;
		}
	}
	if (r < 0 || !have_nsec || !have_data)
		return ZONE_EFORMAT;
	return 0;
}

/* Room for @p size bytes (a multiple of 8): a released node of that size,
 * else the newest slab, adding one when it is full; NULL when the size is
 * for malloc or memory ran out. */
static void *slab_take(struct zone_slabs *pool, size_t size)
{
	struct zone_slab *s = pool->chain;
	void *p;

	if (size > SLAB_MAX / 4)
		return NULL;
	if (size / 8 - 1 < ZONE_SLAB_CLASSES && pool->free[size / 8 - 1] != NULL) {
		struct zone_node *n = pool->free[size / 8 - 1];
		pool->free[size / 8 - 1] = n->left;
		pool->free_bytes -= size;
		SLAB_UNPOISON(n, size);
		return n;
	}
	if (s == NULL || s->cap - s->used < size) {
		size_t cap = s ? s->cap * 2 : SLAB_MIN;
		struct zone_slab *ns;

		if (cap > SLAB_MAX)
			cap = SLAB_MAX;
		if ((ns = malloc(sizeof(*ns) + cap)) == NULL)
			return NULL;
		ns->next = s;
		ns->used = 0;
		ns->cap = cap;
		/* Unused slab space is poisoned too: a read past a node's end
		 * into it is reported as it would be past a malloc'd node. */
		SLAB_POISON(ns->mem, cap);
		pool->chain = s = ns;
	}
	p = s->mem + s->used;
	s->used += size;
	SLAB_UNPOISON(p, size);
	return p;
}

/* Allocate a node of @p len data bytes, zeroed header, flags set. */
static struct zone_node *node_alloc(struct zone_slabs *slabs, size_t len)
{
	size_t size = sizeof(struct zone_node) + len;
	struct zone_node *n = NULL;
	uint8_t flags = 0;

	if (slabs != NULL && (n = slab_take(slabs, (size + 7) & ~(size_t)7)) != NULL)
		flags = ZONE_NODE_IN_SLAB;
	if (n == NULL && (n = malloc(size)) == NULL)
		return NULL;
	memset(n, 0, sizeof(*n));
	n->flags = flags;
	return n;
}

void zone_node_free(struct zone_node *n)
{
	if (n == NULL)
		return;
	if (n->flags & ZONE_NODE_IN_SLAB)
		SLAB_POISON(n, (sizeof(*n) + n->len + 7) & ~(size_t)7);
	else
		free(n);
}

void zone_node_release(struct zone_slabs *slabs, struct zone_node *n)
{
	size_t size;

	if (n == NULL)
		return;
	size = (sizeof(*n) + n->len + 7) & ~(size_t)7;
	if (!(n->flags & ZONE_NODE_IN_SLAB) || size / 8 - 1 >= ZONE_SLAB_CLASSES) {
		zone_node_free(n);
		return;
	}
	n->left = slabs->free[size / 8 - 1];
	slabs->free[size / 8 - 1] = n;
	slabs->free_bytes += size;
	/* All but the link: a use of the released node is reported. */
	SLAB_POISON((uint8_t *)n + sizeof(n->left), size - sizeof(n->left));
}

void zone_slabs_free(struct zone_slabs *slabs)
{
	struct zone_slab *s = slabs->chain, *next;

	for (; s != NULL; s = next) {
		next = s->next;
		SLAB_UNPOISON(s->mem, s->cap);
		free(s);
	}
	memset(slabs, 0, sizeof(*slabs));
}

size_t zone_slabs_bytes(const struct zone_slabs *slabs)
{
	size_t b = 0;

	for (const struct zone_slab *s = slabs->chain; s != NULL; s = s->next)
		b += sizeof(*s) + s->cap;
	return b;
}

size_t zone_node_bytes(const struct zone_node *n)
{
	if (n->flags & ZONE_NODE_IN_SLAB)
		return (sizeof(*n) + n->len + 7) & ~(size_t)7;
	return malloc_usable_size((void *)n);
}

int zone_node_new(const uint8_t *key, size_t keylen, const uint8_t *sets, size_t setslen,
		  struct zone_node **out)
{
	return zone_node_new_in(NULL, key, keylen, sets, setslen, out);
}

int zone_node_new_in(struct zone_slabs *slabs, const uint8_t *key, size_t keylen,
		     const uint8_t *sets, size_t setslen, struct zone_node **out)
{
	struct zone_node *n;

	if (keylen > ZONE_KEY_MAX || setslen > NODE_MAX_LEN)
		return ZONE_ERANGE;
	n = node_alloc(slabs, keylen + setslen);
	if (n == NULL)
		return ZONE_ENOMEM;
	n->keylen = (uint16_t)keylen;
	n->len = (uint32_t)(keylen + setslen);
	if (keylen)
		memcpy(n->data, key, keylen);
	if (setslen)
		memcpy(n->data + keylen, sets, setslen);
	*out = n;
	return 0;
}

struct zone_node *zone_node_dup(const struct zone_node *n)
{
	struct zone_node *c = malloc(sizeof(*n) + n->len);

	if (c == NULL)
		return NULL;
	memcpy(c, n, sizeof(*n) + n->len);
	c->left = c->right = NULL;
	c->height = 1;
	c->flags = 0;
	return c;
}

void zone_edit_clear(struct zone_edit *e)
{
	for (size_t i = 0; i < e->n; i++) {
		for (size_t j = 0; j < e->sets[i].nrr; j++)
			free(e->sets[i].rr[j].data);
		free(e->sets[i].rr);
	}
	free(e->sets);
	memset(e, 0, sizeof(*e));
}

struct zone_eset *zone_edit_set(struct zone_edit *e, uint16_t type, bool create,
				uint32_t ttl, uint8_t flags, int *err)
{
	size_t i;

	if (err)
		*err = 0;
	for (i = 0; i < e->n && e->sets[i].type < type; i++)
		;
	if (i < e->n && e->sets[i].type == type)
		return &e->sets[i];
	if (!create)
		return NULL;
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 4;
		struct zone_eset *ns = realloc(e->sets, cap * sizeof(*ns));
		if (ns == NULL) {
			if (err)
				*err = ZONE_ENOMEM;
			return NULL;
		}
		e->sets = ns;
		e->cap = cap;
	}
	memmove(&e->sets[i + 1], &e->sets[i], (e->n - i) * sizeof(*e->sets));
	memset(&e->sets[i], 0, sizeof(e->sets[i]));
	e->sets[i].type = type;
	e->sets[i].ttl = ttl;
	e->sets[i].flags = flags;
	e->sets[i].dirty = true;
	e->n++;
	return &e->sets[i];
}

int zone_edit_del_set(struct zone_edit *e, uint16_t type)
{
	for (size_t i = 0; i < e->n; i++) {
		if (e->sets[i].type != type)
			continue;
		for (size_t j = 0; j < e->sets[i].nrr; j++)
			free(e->sets[i].rr[j].data);
		free(e->sets[i].rr);
		memmove(&e->sets[i], &e->sets[i + 1], (e->n - i - 1) * sizeof(*e->sets));
		e->n--;
		return 1;
	}
	return 0;
}

/* Position of rd in the sorted set, or where it would go; *found tells. */
static size_t eset_search(const struct zone_eset *s, const uint8_t *rd, size_t len, int *found)
{
	size_t lo = 0, hi = s->nrr;

	*found = 0;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = zone_rd_cmp(s->rr[mid].data, s->rr[mid].len, rd, len);
		if (c == 0) {
			*found = 1;
			return mid;
		}
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int zone_eset_add(struct zone_eset *s, const uint8_t *rd, size_t len)
{
	int found;
	size_t i = eset_search(s, rd, len, &found);
	uint8_t *copy;

	if (found)
		return 0;
	if (len > 65535 || s->nrr >= 65535)
		return ZONE_ERANGE;
	if (s->nrr == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 2;
		struct zone_rd *nr = realloc(s->rr, cap * sizeof(*nr));
		if (nr == NULL)
			return ZONE_ENOMEM;
		s->rr = nr;
		s->cap = cap;
	}
	copy = malloc(len ? len : 1);
	if (copy == NULL)
		return ZONE_ENOMEM;
	if (len)
		memcpy(copy, rd, len);
	memmove(&s->rr[i + 1], &s->rr[i], (s->nrr - i) * sizeof(*s->rr));
	s->rr[i].len = (uint16_t)len;
	s->rr[i].data = copy;
	s->nrr++;
	return 1;
}

int zone_eset_del(struct zone_eset *s, const uint8_t *rd, size_t len)
{
	int found;
	size_t i = eset_search(s, rd, len, &found);

	if (!found)
		return 0;
	free(s->rr[i].data);
	memmove(&s->rr[i], &s->rr[i + 1], (s->nrr - i - 1) * sizeof(*s->rr));
	s->nrr--;
	return 1;
}

bool zone_edit_has_data(const struct zone_edit *e)
{
	for (size_t i = 0; i < e->n; i++)
		if (e->sets[i].type != ZONE_RRTYPE_NSEC && e->sets[i].nrr > 0)
			return true;
	return false;
}

int zone_edit_from_node(const struct zone_node *n, struct zone_edit *e)
{
	int r;
	size_t pos = 0;
	struct zone_rrset s;

	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		int err = 0;
		struct zone_eset *es = zone_edit_set(e, s.type, true, s.ttl, s.flags, &err);
		if (es == NULL) {
			r = err ? err : ZONE_EFORMAT;
			goto out;
		}
		es->dirty = false;
		memcpy(es->sig, s.sig, ZONE_SIG_LEN);
		size_t q = 0;
		for (unsigned i = 0; i < s.nrr; i++) {
			size_t l = zone_get16(s.rrs + q);
			r = zone_eset_add(es, s.rrs + q + 2, l);
			if (r < 0)
				goto out;
			q += 2 + l;
		}
	}
out:
	if (r < 0)
		zone_edit_clear(e);
	return r < 0 ? r : 0;
}

int zone_node_encode(const uint8_t *key, size_t keylen, const struct zone_edit *e,
		     struct zone_node **out)
{
	return zone_node_encode_in(NULL, key, keylen, e, out);
}

int zone_node_encode_in(struct zone_slabs *slabs, const uint8_t *key, size_t keylen,
			const struct zone_edit *e, struct zone_node **out)
{
	size_t len = 0, p;
	struct zone_node *n = NULL;

	/* The size first, so that the node is allocated once at its size. */
	for (size_t i = 0; i < e->n; i++) {
		len += ZONE_SET_HDR + ZONE_SIG_LEN;
		for (size_t j = 0; j < e->sets[i].nrr; j++)
			len += 2 + e->sets[i].rr[j].len;
	}
	if (keylen > ZONE_KEY_MAX || len > NODE_MAX_LEN)
		return ZONE_ERANGE;
	if ((n = node_alloc(slabs, keylen + len)) == NULL)
		return ZONE_ENOMEM;
	n->keylen = (uint16_t)keylen;
	if (keylen)
		memcpy(n->data, key, keylen);
	p = keylen;
	for (size_t i = 0; i < e->n; i++) {
		const struct zone_eset *s = &e->sets[i];
		zone_put16(n->data + p, s->type);
		n->data[p + 2] = s->flags;
		zone_put32(n->data + p + 3, s->ttl);
		zone_put16(n->data + p + 7, (uint16_t)s->nrr);
		p += ZONE_SET_HDR;
		for (size_t j = 0; j < s->nrr; j++) {
			zone_put16(n->data + p, s->rr[j].len);
			memcpy(n->data + p + 2, s->rr[j].data, s->rr[j].len);
			p += 2 + s->rr[j].len;
		}
		memcpy(n->data + p, s->sig, ZONE_SIG_LEN);
		p += ZONE_SIG_LEN;
	}
	n->len = (uint32_t)(keylen + len);
	*out = n;
	return 0;
}
