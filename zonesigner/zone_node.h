/**
 * @file zone_node.h
 * @brief One owner name of the zone in one allocation (internal module).
 *
 * A node holds the name's canonical key (zone_name.h) followed by its RRsets
 * in wire form, sorted by type:
 *
 *     type(2) flags(1) ttl(4) nrr(2) { rdlen(2) rdata }*nrr  signature(74)
 *     signature = inception(4) expiration(4) key_tag(2) r||s(64)
 *
 * all integers big-endian, so the bytes after the key are also the per-name
 * export the daemon stores (zone.h). The NSEC RRset is kept as an entry with
 * no RDATA: its next name and type bitmap follow from the tree and the types
 * present, and only its signature is stored. The rest of the RRSIG RDATA is
 * implied (algorithm 13, labels from the owner, original TTL = the RRset's,
 * signer = the apex). The node also carries the links of the AVL tree that
 * orders the zone (zone_tree.h). RDATA inside an RRset is kept sorted in
 * canonical order (RFC 4034 section 6.3) without duplicates.
 */
#ifndef REGSIGN_ZONE_NODE_H
#define REGSIGN_ZONE_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ZONE_SIG_LEN 74        /**< stored signature: times, key tag, r||s */
#define ZONE_SET_HDR 9         /**< type, flags, ttl, nrr */
#define ZONE_SET_DEVICE 0x01   /**< device record: short validity */
#define ZONE_RRTYPE_NSEC 47
#define ZONE_RRTYPE_RRSIG 46
#define ZONE_RRTYPE_SOA 6
#define ZONE_RRTYPE_NS 2
#define ZONE_RRTYPE_DNSKEY 48
#define ZONE_RRTYPE_CERT 37
#define ZONE_RRTYPE_TLSA 52

struct zone_node {
	struct zone_node *left, *right; /* AVL links */
	uint32_t subdue;  /* earliest re-sign due time in this subtree (serial) */
	uint32_t subexp;  /* earliest expiration in this subtree (serial) */
	uint32_t len;     /* bytes of data[] */
	uint16_t keylen;  /* the key is data[0 .. keylen) */
	uint8_t height;   /* AVL height, leaf = 1 */
	uint8_t flags;    /* ZONE_NODE_* */
	uint8_t data[];
};

/** The node lives in a slab (struct zone_slab): never passed to free(). */
#define ZONE_NODE_IN_SLAB 0x01

/**
 * A block that holds many nodes back to back, for the zones built in one
 * pass (a load from the store or from the served zone, a bulk import): at a
 * million names the per-allocation header and rounding of malloc is about
 * 3% of the zone, and the nodes of one pass sit together in memory. The
 * slabs of a tree are freed with the tree's zone.
 *
 * A tree's nodes are replaced one by one afterwards (every change, every
 * re-signing), so the space of a replaced node must be used again or the
 * zone would grow to twice its size over one re-signing cycle: a node given
 * back with zone_node_release() goes on a free list of its size class, and
 * the next node of that size the tree's changes allocate takes it (device
 * names all have about the same size). zone_node_free() without the pool
 * leaves a slab node's space dead until its slab goes.
 */
struct zone_slab {
	struct zone_slab *next;
	size_t used, cap;  /* bytes of mem[] */
	_Alignas(8) uint8_t mem[];
};

/** Size classes of reusable slab space: 8, 16, ... 8 * ZONE_SLAB_CLASSES bytes. */
#define ZONE_SLAB_CLASSES 64

/** A tree's slabs (newest first) and the free lists of released slab nodes. */
struct zone_slabs {
	struct zone_slab *chain;
	struct zone_node *free[ZONE_SLAB_CLASSES];  /* linked through ->left */
	size_t free_bytes;                          /* on the free lists */
};

/** A view of one stored RRset; pointers into the node. */
struct zone_rrset {
	uint16_t type;
	uint8_t flags;
	uint32_t ttl;
	uint16_t nrr;
	const uint8_t *rrs;   /* nrr times rdlen(2) + rdata */
	size_t rrslen;
	uint8_t *sig;         /* ZONE_SIG_LEN bytes inside the node */
};

/** A stored signature, decoded. */
struct zone_sig {
	uint32_t inception, expiration;
	uint16_t key_tag;
	const uint8_t *rs;    /* 64 bytes */
};

static inline const uint8_t *zone_node_key(const struct zone_node *n)
{
	return n->data;
}

/**
 * @brief Walk the RRsets of a node (bounds-checked: nodes may come from the
 * store). Start with *pos = 0.
 * @return 1 with @p out filled, 0 at the end, ZONE_EFORMAT when malformed.
 */
int zone_node_rrset_next(const struct zone_node *n, size_t *pos, struct zone_rrset *out);

/** @brief Find the RRset of @p type; 1 found, 0 absent. */
int zone_node_rrset_find(const struct zone_node *n, uint16_t type, struct zone_rrset *out);

/** @brief Decode a stored signature. */
void zone_sig_get(const uint8_t *sig, struct zone_sig *out);

/** @brief Store a signature (times, tag, r||s) into ZONE_SIG_LEN bytes. */
void zone_sig_put(uint8_t *sig, uint32_t inception, uint32_t expiration, uint16_t tag,
		  const uint8_t rs[64]);

/**
 * @brief Validate the RRset area of a node from outside (the store): every
 * length in bounds, types strictly increasing, an NSEC entry without RDATA,
 * RDATA sorted without duplicates.
 * @return 0 or ZONE_EFORMAT.
 */
int zone_node_validate(const struct zone_node *n);

/**
 * @brief Allocate a node from a key and an RRset area (copied).
 * @return 0, ZONE_ENOMEM, ZONE_ERANGE.
 */
int zone_node_new(const uint8_t *key, size_t keylen, const uint8_t *sets, size_t setslen,
		  struct zone_node **out);

/**
 * @brief As zone_node_new(), but the node is carved out of the slab chain
 * @p slabs (a new slab is added when the newest is full; a node too large
 * for a slab is malloc'd as by zone_node_new()). @p slabs NULL: plain malloc.
 * @return 0, ZONE_ENOMEM, ZONE_ERANGE.
 */
int zone_node_new_in(struct zone_slabs *slabs, const uint8_t *key, size_t keylen,
		     const uint8_t *sets, size_t setslen, struct zone_node **out);

/** @brief Copy of a node (links cleared, malloc'd). NULL on allocation failure. */
struct zone_node *zone_node_dup(const struct zone_node *n);

/**
 * @brief Free a node: free() for a malloc'd one; a node in a slab only counts
 * as dead (and, in a sanitizer build, becomes poisoned so that a use after
 * this call is reported). NULL is a no-op.
 */
void zone_node_free(struct zone_node *n);

/**
 * @brief Give a node back to the pool of the tree it belonged to: a slab
 * node of a pooled size goes on its free list for reuse (poisoned under
 * ASan but for its link), any other node is freed as by zone_node_free().
 * The node must come from @p slabs' slabs or from malloc. NULL is a no-op.
 */
void zone_node_release(struct zone_slabs *slabs, struct zone_node *n);

/** @brief Free every slab of a pool (their nodes must not be used after) and empty it. */
void zone_slabs_free(struct zone_slabs *slabs);

/** @brief Bytes the slabs of a pool hold (capacity, headers included). */
size_t zone_slabs_bytes(const struct zone_slabs *slabs);

/** @brief Heap bytes of one node: usable size if malloc'd, its slab share if not. */
size_t zone_node_bytes(const struct zone_node *n);

/* ---- Mutable form used while a change is prepared. ---- */

struct zone_rd {
	uint16_t len;
	uint8_t *data;   /* owned */
};

struct zone_eset {
	uint16_t type;
	uint8_t flags;
	uint32_t ttl;
	bool dirty;      /* must be (re)signed */
	size_t nrr, cap;
	struct zone_rd *rr;   /* sorted canonical, no duplicates */
	uint8_t sig[ZONE_SIG_LEN];
};

struct zone_edit {
	size_t n, cap;
	struct zone_eset *sets;  /* sorted by type */
};

/** @brief Decode a node's RRsets into @p e (which must be empty). 0, ZONE_ENOMEM, ZONE_EFORMAT. */
int zone_edit_from_node(const struct zone_node *n, struct zone_edit *e);

/** @brief Free everything an edit owns and make it empty. */
void zone_edit_clear(struct zone_edit *e);

/**
 * @brief The RRset of @p type, created empty (with @p ttl and @p flags,
 * dirty) when absent and @p create. NULL when absent and not created, or on
 * allocation failure (then *err is ZONE_ENOMEM).
 */
struct zone_eset *zone_edit_set(struct zone_edit *e, uint16_t type, bool create,
				uint32_t ttl, uint8_t flags, int *err);

/** @brief Remove the RRset of @p type; 1 removed, 0 absent. */
int zone_edit_del_set(struct zone_edit *e, uint16_t type);

/** @brief Add RDATA to a set (kept sorted): 1 added, 0 already there, ZONE_ENOMEM. */
int zone_eset_add(struct zone_eset *s, const uint8_t *rd, size_t len);

/** @brief Remove RDATA from a set: 1 removed, 0 absent. */
int zone_eset_del(struct zone_eset *s, const uint8_t *rd, size_t len);

/** @brief Whether the edit has data other than its NSEC entry. */
bool zone_edit_has_data(const struct zone_edit *e);

/**
 * @brief Encode key + edit into a new node (signatures copied as they are).
 * @return 0, ZONE_ENOMEM, ZONE_ERANGE.
 */
int zone_node_encode(const uint8_t *key, size_t keylen, const struct zone_edit *e,
		     struct zone_node **out);

/** @brief zone_node_encode() into the slab chain @p slabs (see zone_node_new_in()). */
int zone_node_encode_in(struct zone_slabs *slabs, const uint8_t *key, size_t keylen,
			const struct zone_edit *e, struct zone_node **out);

/** @brief Canonical RDATA order (RFC 4034 6.3): memcmp, shorter first on a tie. */
int zone_rd_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

static inline uint16_t zone_get16(const uint8_t *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static inline uint32_t zone_get32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline void zone_put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static inline void zone_put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

#endif
