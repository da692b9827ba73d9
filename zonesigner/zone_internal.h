/**
 * @file zone_internal.h
 * @brief The zone object and the helpers its modules share (not public).
 */
#ifndef REGSIGN_ZONE_INTERNAL_H
#define REGSIGN_ZONE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "zonesigner/zone.h"
#include "zonesigner/zone_ldns.h"
#include "zonesigner/zone_name.h"
#include "zonesigner/zone_node.h"
#include "zonesigner/zone_tree.h"

enum zone_state {
	ZONE_STATE_EMPTY = 0,   /* no names: the first commit makes the apex */
	ZONE_STATE_LOADING,     /* names being loaded from the store */
	ZONE_STATE_READY,
	ZONE_STATE_BROKEN,      /* a load failed its check */
};

struct zone {
	struct zone_tree tree;
	enum zone_state state;
	bool change_open;
	uint32_t serial;
	char *origin;                 /* presentation, lowercase */
	uint8_t apex[ZONE_WIRE_MAX];  /* wire, lowercase */
	size_t apexlen;
	int apex_labels;
	/* Parameters (strings turned into wire form where the zone uses them). */
	uint8_t soa_mname[ZONE_WIRE_MAX], soa_rname[ZONE_WIRE_MAX];
	size_t soa_mname_len, soa_rname_len;
	uint32_t soa_refresh, soa_retry, soa_expire, soa_minimum;
	uint8_t (*ns)[ZONE_WIRE_MAX];
	size_t *ns_len;
	size_t n_ns;
	uint32_t ttl, device_ttl;
	uint32_t nsec_ttl;            /* min(SOA TTL, SOA minimum), RFC 9077 */
	uint32_t device_validity, device_refresh, validity, refresh, inception_offset;
	uint8_t dance_prefix[63];
	size_t dance_prefix_len;
	enum zone_serial_policy serial_policy;
	uint32_t initial_serial;
	uint8_t *ca_der;
	size_t ca_len;
	struct zone_dnskey ksk, zsk;
	EVP_PKEY *ksk_pkey, *zsk_pkey;  /* public halves, for self-check verification */
	/* Verification contexts of those keys (EVP_PKEY_verify_init done) and
	 * SHA-256, made once: setting up a verification and fetching the digest
	 * cost about a fifth of each verification otherwise. A context serves
	 * one verification at a time, like the zone itself: only the thread
	 * working on the zone uses them. */
	EVP_PKEY_CTX *ksk_vctx, *zsk_vctx;
	EVP_MD *sha256;
	bool verify;
	bool verify_all;  /* every fresh signature, not a sample (zone_params) */
	/* While a load's keys arrive strictly increasing (the store reads its
	 * rows in key order), the nodes are only chained here through their
	 * right links and zone_load_finish() builds the balanced tree from them
	 * in O(n), with no per-name rebalancing. The first key out of order
	 * moves them into the tree, and the rest of the load inserts one by
	 * one. */
	struct zone_node *loadhead, *loadtail;
	size_t loadn;
};

/* ---- zone.c ---- */

/** Whether a key lies in the device namespace (first label all hex digits). */
bool zone_key_is_device_ns(const uint8_t *key, size_t keylen);

/** Build the key of <index>.<id> (id folded to lowercase); 0 or ZONE_EINVAL. */
int zone_device_key(const char *id, uint32_t index, uint8_t *key, size_t *keylen);

/** The apex RRsets of a new zone (SOA with serial, NS, DNSKEY, CERT). */
int zone_apex_edit(const struct zone *z, uint32_t serial, struct zone_edit *e);

/** The device edits of @p d: one or two (key, edit) pairs; *n receives the count. */
struct zone_devname {
	uint8_t key[ZONE_KEY_MAX];
	size_t keylen;
	struct zone_edit edit;
};
int zone_device_edits(const struct zone *z, const struct zone_device *d,
		      struct zone_devname out[2], size_t *n);

/** Add one RDATA to the RRset @p type of @p e (created, dirty); 0 or ZONE_ENOMEM. */
int zone_edit_add_rd(struct zone_edit *e, uint16_t type, uint32_t ttl, uint8_t flags,
		     const uint8_t *rd, size_t len);

/** RRSIG flags of an RRset at @p key: device lifetime or not. */
uint8_t zone_set_flags(const uint8_t *key, size_t keylen, uint16_t type);

/* ---- zone_sign.c ---- */

/** Inception and expiration for an RRset signed at @p now (jittered per owner+type). */
void zone_sign_times(const struct zone *z, const uint8_t *key, size_t keylen, uint16_t type,
		     uint8_t flags, int64_t now, uint32_t *inception, uint32_t *expiration);

/** The RRs of an RRset about to be signed or emitted, in stored form. */
struct zone_rrview {
	uint16_t type;
	uint32_t ttl;
	uint16_t nrr;
	const uint8_t *rrs;   /* nrr x (rdlen(2) rdata) */
	size_t rrslen;
};

/**
 * The RRSIG RDATA without signature (18 bytes + signer) into @p out (at
 * least 18 + ZONE_WIRE_MAX bytes); returns its length.
 */
size_t zone_sign_rrsig_prefix(const struct zone *z, int labels, uint16_t type, uint32_t ttl,
			      uint32_t inception, uint32_t expiration, uint16_t tag,
			      uint8_t *out);

/**
 * The RRSIG data of an RRset (prefix + canonical RRset) as a malloc'd buffer.
 * @return 0, ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_sign_data(const struct zone *z, const uint8_t *owner, size_t ownerlen, int labels,
		   const struct zone_rrview *v, uint32_t inception, uint32_t expiration,
		   uint16_t tag, uint8_t **data, size_t *len);

/** The key (role, tag) that signs RRsets of @p type. */
void zone_sign_key_for(const struct zone *z, uint16_t type, enum zone_key_role *role,
		       uint16_t *tag);

/** Verify r||s over SHA-256(data) with the key of @p tag; 1 valid, 0 not. */
int zone_sign_verify(const struct zone *z, uint16_t tag, const uint8_t *data, size_t len,
		     const uint8_t rs[64]);

/** Make the public EVP_PKEY of a DNSKEY (for verification). */
EVP_PKEY *zone_sign_pkey(const struct zone_dnskey *k);
/* A verification context of @p pkey (EVP_PKEY_verify_init done), or NULL. */
EVP_PKEY_CTX *zone_sign_verify_ctx(EVP_PKEY *pkey);

/** Labels of an owner for the RRSIG labels field (root and a leading '*' not counted). */
int zone_owner_labels(const struct zone *z, const uint8_t *key, size_t keylen);

/* ---- zone_nsec.c ---- */

/**
 * The NSEC RDATA of a node whose next name is @p nextkey: next owner (wire)
 * then the type bitmap of the node's types plus NSEC and RRSIG. @p out has
 * room for ZONE_NSEC_MAX bytes.
 */
#define ZONE_NSEC_MAX (ZONE_WIRE_MAX + 256 * 34)
int zone_nsec_rdata(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		    size_t nextlen, uint8_t *out, size_t *outlen);

/** Encode a type bitmap (types sorted, unique) per RFC 4034 4.1.2. */
size_t zone_nsec_bitmap(const uint16_t *types, size_t n, uint8_t *out);

/* ---- zone_file.c (RR emission shared with the diff) ---- */

/**
 * Append every RR of node @p n (data, NSEC with next @p nextkey, RRSIGs) to
 * @p list as ldns_rr. @return 0, ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_node_emit(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		   size_t nextlen, ldns_rr_list *list);

/** One RR from wire pieces. */
int zone_rr_make(const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
		 const uint8_t *rdata, size_t rdlen, ldns_rr **out);

/* ---- zone_check.c ---- */

/**
 * Check one node in place: valid, in the device namespace only device
 * records, every RRset signed by the right key with now inside the window
 * (or only structurally when @p expired_ok), with @p verify the signatures
 * too (the NSEC against @p nextkey). @return 0 or ZONE_ECHECK.
 */
int zone_check_node(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		    size_t nextlen, int64_t now, bool verify, bool expired_ok);

/** The full check of zone_check(), optionally accepting expired signatures. */
int zone_check_all(const struct zone *z, int64_t now, bool verify, bool expired_ok);

/**
 * The check at the end of a load (zone_load_finish): with @p verify the full
 * zone_check_all() accepting expired signatures; without, the structural
 * rules of zone_check_node() on nodes zone_load_name() already validated,
 * in one pass over each key, plus order, count and apex.
 * @return 0 or ZONE_ECHECK.
 */
int zone_check_loaded(const struct zone *z, int64_t now, bool verify);

/** Check the apex node: SOA, NS, DNSKEY with both keys. */
int zone_check_apex(const struct zone *z, const struct zone_node *apex);

#endif
