/**
 * @file zone.h
 * @brief libregsign-zone: the registry zone, kept signed incrementally.
 *
 * A zone holds every owner name in canonical order in a compact form
 * (zone_node.h), maintains the NSEC chain as names come and go, and signs
 * through a callback it is given: it builds the RRSIG data (RFC 4034 section
 * 3.1.8.1) and the caller returns raw ECDSA P-256 signatures (r||s) over
 * SHA-256 of it, typically from the HSM process. The library never touches
 * PKCS#11, never prints and holds no global state. A zone is not thread-safe:
 * one thread at a time.
 *
 * Life of a zone: zone_new() with its parameters, then either a first change
 * (zone_change.h: its commit creates and signs the apex SOA, NS, DNSKEY and
 * the issuing-CA CERT), a bulk import, or a reload from the daemon's store
 * (zone_load_name() for each stored name, then zone_load_finish(), which
 * re-signs nothing).
 *
 * Times are 64-bit seconds since the epoch; RRSIG times and serials are
 * compared with RFC 1982 serial arithmetic on their 32-bit values.
 */
#ifndef REGSIGN_ZONE_H
#define REGSIGN_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonesigner/zone_dnskey.h"
#include "zonesigner/zone_err.h"

struct zone;
struct zone_diff;

/** Which key must make a signature: the KSK signs only the DNSKEY RRset. */
enum zone_key_role {
	ZONE_KEY_KSK = 1,
	ZONE_KEY_ZSK = 2,
};

/**
 * One signature to make. @c data is owned by the zone and valid during the
 * callback only; the callback writes the 64-byte r||s ECDSA P-256 signature
 * of SHA-256(data) into @c sig.
 */
struct zone_sigreq {
	enum zone_key_role role;
	uint16_t key_tag;       /**< tag of the key that must sign (in the data too) */
	const uint8_t *data;    /**< RRSIG RDATA without signature + canonical RRset */
	size_t len;
	uint8_t sig[64];        /**< out: r || s, 32 bytes each, big-endian */
};

/**
 * Sign a batch: called once per commit with every request of it (bulk
 * import: once per batch). Return 0 when every sig[] is filled, or a
 * negative value: the zone then stays exactly as it was.
 */
typedef int (*zone_sign_fn)(void *ctx, struct zone_sigreq *reqs, size_t n);

/** How a new SOA serial is chosen at each commit. */
enum zone_serial_policy {
	ZONE_SERIAL_INCREMENT = 0,  /**< old + 1 (RFC 1982), 0 skipped */
	ZONE_SERIAL_UNIXTIME = 1,   /**< now if greater than old, else old + 1 */
};

/** Zone parameters; zone_params_init() sets the defaults shown. */
struct zone_params {
	const char *origin;          /**< "iotregistry.test." (absolute) */
	const char *soa_mname;       /**< "ns1.<origin>" when NULL */
	const char *soa_rname;       /**< "hostmaster.<origin>" when NULL */
	uint32_t soa_refresh, soa_retry, soa_expire; /**< 3600, 900, 1209600 */
	uint32_t soa_minimum;        /**< 300; also the NSEC TTL (RFC 9077) */
	const char *const *ns;       /**< NS targets; {"ns1.<origin>"} when NULL */
	size_t n_ns;
	uint32_t ttl;                /**< apex and other records: 3600 */
	uint32_t device_ttl;         /**< CERT/TLSA device records: 300 */
	uint32_t device_validity;    /**< 6 h */
	uint32_t device_refresh;     /**< re-sign when less than 3 h is left */
	uint32_t validity;           /**< everything else: 14 d */
	uint32_t refresh;            /**< 5 d */
	uint32_t inception_offset;   /**< inception = now - 1 h */
	const char *dance_prefix;    /**< "_device" */
	enum zone_serial_policy serial_policy;
	uint32_t initial_serial;     /**< serial of the first version: 1 */
	const uint8_t *ca_der;       /**< issuing-CA certificate (DER) for the apex CERT, optional */
	size_t ca_len;
	struct zone_dnskey ksk;      /**< flags 257 */
	struct zone_dnskey zsk;      /**< flags 256 */
	bool verify;                 /**< self-check verifies new signatures (default true) */
	bool verify_all;             /**< with verify: every new signature, not one per key per group */
};

/** Record styles of a device (DESIGN.md "Names and records"). */
enum zone_style {
	ZONE_STYLE_SEED = 1,       /**< CERT 1 0 0 <SHA-256 of the certificate> */
	ZONE_STYLE_CERT_PKIX = 2,  /**< CERT 1 0 0 <the whole DER certificate> */
	ZONE_STYLE_DANCE = 4,      /**< TLSA 3 1 1 <SHA-256 of the SPKI> at <prefix>.<n>.<id> */
};

/** A device record set to publish. */
struct zone_device {
	const char *id;              /**< hex digits (upper case is folded), at most 63 */
	uint32_t index;              /**< certificate index, >= 1 */
	unsigned styles;             /**< ZONE_STYLE_* bits; SEED and CERT_PKIX exclude each other */
	const uint8_t *cert_der;     /**< the certificate; required for CERT_PKIX */
	size_t cert_len;
	const uint8_t *cert_sha256;  /**< 32 bytes; used when cert_der is NULL (SEED) */
	const uint8_t *spki_sha256;  /**< 32 bytes; DANCE, else taken from cert_der */
};

/** What STATUS reports about the zone. */
struct zone_status {
	uint32_t serial;
	size_t names;                 /**< owner names, apex included */
	size_t bytes;                 /**< heap bytes held by the names (usable sizes) */
	int64_t next_due;             /**< earliest time an RRset enters its refresh window */
	int64_t earliest_expiration;  /**< earliest RRSIG expiration in the zone */
	bool resign_overdue;          /**< some RRset is inside its refresh window now */
};

/** @brief Fill @p p with the defaults (origin "iotregistry.test."; keys zeroed). */
void zone_params_init(struct zone_params *p);

/**
 * @brief Create an empty zone (no names yet). Strings and the CA certificate
 * are copied.
 * @return 0, ZONE_EINVAL (bad origin, names, lifetimes or key flags), ZONE_ENOMEM.
 */
int zone_new(const struct zone_params *p, struct zone **out);

/** @brief Free a zone; NULL is a no-op. Must not have an open change. */
void zone_free(struct zone *z);

/** @brief The current SOA serial (0 before the first version). */
uint32_t zone_serial(const struct zone *z);

/** @brief The zone's origin in presentation form (owned by the zone). */
const char *zone_origin(const struct zone *z);

/** @brief Number of owner names (apex included). */
size_t zone_names(const struct zone *z);

/** @brief Status figures for STATUS (see struct zone_status). */
void zone_status_get(const struct zone *z, int64_t now, struct zone_status *st);

/**
 * @brief Owner name of a device record in presentation form:
 * "<index>.<id>.<origin>" (lowercase).
 * @return 0, ZONE_EINVAL (bad id or index), ZONE_ERANGE (buffer too small).
 */
int zone_device_owner(const struct zone *z, const char *id, uint32_t index, char *buf,
		      size_t len);

/**
 * @brief Re-sign RRsets whose signatures entered their refresh window, at
 * most @p budget RRsets (plus the SOA), in one batch and one new serial.
 * @param diff receives the IXFR diff (NULL when nothing was due); free with
 *        zone_diff_free().
 * @return 0, ZONE_ESIGN (zone unchanged), ZONE_ENOMEM, ZONE_ESTATE, ZONE_ECHECK.
 */
int zone_resign_due(struct zone *z, int64_t now, size_t budget, zone_sign_fn sign, void *ctx,
		    struct zone_diff **diff);

/**
 * @brief Full structural check: every name valid and in order, no empty
 * non-terminal stored, apex SOA/NS/DNSKEY with both keys, every RRset signed
 * by the right key with a window containing @p now; with @p verify every
 * signature is also verified against the DNSKEYs (slow for big zones).
 * @return 0 or ZONE_ECHECK.
 */
int zone_check(const struct zone *z, int64_t now, bool verify);

/* ---- Persistence: the daemon stores one row per owner name. ---- */

/**
 * @brief Visit every name in canonical order with its key and stored form
 * (both borrowed for the duration of the call). Stops at the first non-zero
 * return of @p cb and returns it.
 */
int zone_export_foreach(const struct zone *z,
			int (*cb)(void *ctx, const uint8_t *key, size_t keylen,
				  const uint8_t *blob, size_t len),
			void *ctx);

/**
 * @brief The stored form of one name (key as given by a diff). @p blob is a
 * malloc'd copy the caller frees.
 * @return 0, ZONE_ENOENT (the name is gone: delete its row), ZONE_ENOMEM.
 */
int zone_export_name(const struct zone *z, const uint8_t *key, size_t keylen, uint8_t **blob,
		     size_t *len);

/**
 * @brief Insert one stored name with its signatures, without signing.
 * Only on a zone that has no names yet or is being loaded.
 * @return 0, ZONE_EFORMAT (malformed key or blob), ZONE_EEXIST, ZONE_ESTATE, ZONE_ENOMEM.
 */
int zone_load_name(struct zone *z, const uint8_t *key, size_t keylen, const uint8_t *blob,
		   size_t len);

/**
 * @brief End a load: takes the serial from the apex SOA and runs the full
 * structural check. With @p verify every signature is also verified, which
 * is the only way to notice a lost row (the NSEC next names are derived from
 * the names present, so only the signatures remember the old chain); it
 * costs one ECDSA verification per RRset (about two per device). Expired
 * signatures are not an error here: they are due, and zone_resign_due()
 * renews them first.
 * @return 0, ZONE_ECHECK (the zone stays unusable), ZONE_ESTATE.
 */
int zone_load_finish(struct zone *z, int64_t now, bool verify);

/* ---- Bulk import ---- */

/**
 * @brief Add @p n devices at once to a zone without device names: sorted,
 * NSEC chain linked once, signatures requested in batches of @p batch (0 =
 * 4096), one new serial. Creates the apex first if the zone is empty. On any
 * error the zone is unchanged. No IXFR diff is produced: secondaries must
 * AXFR the result (the daemon resets its journal).
 * @return 0, ZONE_EINVAL, ZONE_EEXIST (duplicate name), ZONE_ESTATE, ZONE_ESIGN, ZONE_ENOMEM.
 */
int zone_bulk_import(struct zone *z, const struct zone_device *devs, size_t n, int64_t now,
		     zone_sign_fn sign, void *ctx, size_t batch);


/* ---- Denial of existence: which NSEC records prove an answer (zone_lookup.c) ---- */

/** What a name is in the zone, for a negative answer (RFC 4035 section 3.1.3). */
enum zone_lookup_kind {
	ZONE_LOOKUP_NAME = 1,      /**< the name owns RRsets: its own NSEC lists its types */
	ZONE_LOOKUP_ENT,           /**< an empty non-terminal: NODATA, proven by the NSEC
				    *   of its canonical predecessor (next name below it) */
	ZONE_LOOKUP_NXDOMAIN,      /**< no such name: a covering NSEC plus one that
				    *   covers the wildcard at the closest encloser */
	ZONE_LOOKUP_WILDCARD,      /**< no such name, but *.<closest encloser> exists:
				    *   an answer would be synthesized from it; regsignd
				    *   never publishes wildcards, so no proof is given */
};

/** The owners of the NSEC records that prove a negative answer (wire, lowercase). */
struct zone_lookup {
	enum zone_lookup_kind kind;
	uint8_t nsec[255];         /**< NAME: the name; ENT and NXDOMAIN: the canonical
				    *   predecessor of the name (its NSEC covers it) */
	size_t nsec_len;
	uint8_t encloser[255];     /**< NXDOMAIN, WILDCARD: the closest encloser */
	size_t encloser_len;
	uint8_t wildcard[255];     /**< NXDOMAIN: owner of the NSEC covering
				    *   *.<closest encloser>; WILDCARD: that wildcard */
	size_t wildcard_len;
	bool same;                 /**< NXDOMAIN: one NSEC does both (wildcard == nsec) */
};

/**
 * @brief Find which NSEC records prove that @p wire (an uncompressed wire
 * name at or below the origin, any case) has no data or does not exist.
 * The predecessor is the canonical one of RFC 4034 section 6.1; a name after
 * the last one is covered by the last NSEC, whose next name wraps to the
 * apex. Costs O(labels x log n).
 * @return 0, ZONE_EINVAL (malformed or outside the zone), ZONE_ESTATE (no names yet).
 */
int zone_lookup_denial(const struct zone *z, const uint8_t *wire, size_t wlen,
		       struct zone_lookup *out);

/**
 * @brief Exchange the names and serials of two zones of the same origin and
 * keys: afterwards @p a holds what @p b held and the other way round. No
 * node is copied or freed, so it cannot fail half-way. It lets a caller that
 * keeps two copies of a zone (one served, one being changed) make the
 * changed one the served one without building it a second time; the other
 * copy then holds the old version and is typically rebuilt or freed.
 * Neither zone may have a change open or a load in progress.
 * @return 0, ZONE_ESTATE (a change open, a load in progress, or zones of
 *         different origins or keys).
 */
int zone_swap_names(struct zone *a, struct zone *b);

/* ---- Background verification of every signature (zone_check.c, zone_verify.c) ---- */

/** Failing RRsets a slice reports by key, for repair (the count goes on). */
#define ZONE_VERIFY_FAIL_MAX 8
/** Room for a zone key (as zone_name.h's ZONE_KEY_MAX). */
#define ZONE_VERIFY_KEY_MAX 512

/** One RRset whose signature did not verify (type 0: the name itself is malformed). */
struct zone_verify_fail {
	uint8_t key[ZONE_VERIFY_KEY_MAX];
	size_t keylen;
	uint16_t type;
};

/** What one slice of a verification pass found. */
struct zone_verify_slice {
	uint8_t next_key[ZONE_VERIFY_KEY_MAX]; /**< where the next slice starts */
	size_t next_len;             /**< 0 with @c wrapped: start again at the apex */
	bool wrapped;                /**< the slice reached the last name of the zone */
	size_t names;                /**< names verified */
	size_t sigs;                 /**< signatures verified (NSEC included) */
	size_t failures;             /**< RRsets whose signature failed */
	char first_failure[1100];    /**< "<owner> <TYPE>" of the first one, "" if none */
	size_t nfail;                /**< entries of fail[] (at most ZONE_VERIFY_FAIL_MAX) */
	struct zone_verify_fail fail[ZONE_VERIFY_FAIL_MAX];
};

/**
 * @brief Verify every RRSIG of up to @p max_names names, starting at the
 * first name whose key is >= @p from_key (NULL or @p from_len 0: the apex),
 * in canonical order: the rules of the self-check (right key, sane window,
 * flags, NSEC TTL; an expired signature is not a failure here, re-signing
 * renews it) and the signature over its RRset as signed, the NSEC over the
 * next name and type bitmap the tree gives. A failure does not stop the
 * slice. A background pass calls it repeatedly with the returned next key
 * until @c wrapped, so that every signature of the zone is verified over
 * time at a bounded cost per call (one ECDSA verification per RRset).
 * @p out is overwritten.
 * @return 0 (failures are reported in @p out, not as an error),
 *         ZONE_EINVAL (@p max_names 0 or a key too long), ZONE_ESTATE (no
 *         complete zone: empty, loading, broken, or a change open).
 */
int zone_verify_slice(const struct zone *z, const uint8_t *from_key, size_t from_len,
		      size_t max_names, int64_t now, struct zone_verify_slice *out);

/**
 * @brief Make the RRset @p type at the name @p key (type 0: every RRset of
 * the name) due for re-signing now, so that the next zone_resign_due()
 * replaces its signature: its stored expiration is brought forward to
 * @p now plus the refresh margin of its class (never later than it was).
 * Used after zone_verify_slice() found a signature that does not verify.
 * The served RRSIG changes too, but it was invalid anyway. A caller that
 * keeps two copies of the zone in step (zonepub) must mark both.
 * @return 0, ZONE_ENOENT (no such name or RRset), ZONE_ESTATE (not ready
 *         or a change open), ZONE_EINVAL.
 */
int zone_verify_mark_due(struct zone *z, const uint8_t *key, size_t keylen, uint16_t type,
			 int64_t now);

/* ---- The zone as wire-form RRs, one owner name at a time (zone_wire.c) ---- */

/** One RR as a zone transfer sends it (class IN); @c rdata is borrowed. */
struct zone_wire_rr {
	uint16_t type;
	uint16_t rdlen;
	uint32_t ttl;
	const uint8_t *rdata;   /**< uncompressed RDATA */
};

/**
 * An owner name and all its RRs, in the order zone_name_rrs() gives them:
 * at the apex the SOA and its RRSIG first, then every RRset by type, each
 * followed by its RRSIG, the NSEC among them. Borrowed from the iterator.
 */
struct zone_wire_name {
	uint8_t owner[255];     /**< lowercase uncompressed wire name */
	size_t ownerlen;
	bool apex;              /**< the zone's apex (first name of a walk) */
	size_t nrr;
	const struct zone_wire_rr *rr;
};

struct zone_wire_iter;

/**
 * @brief An iterator over the names of @p z in canonical order (the NSEC
 * chain's), positioned before the apex. It builds each name's RRs straight
 * from the stored form: no ldns object, no text. @p z must outlive it.
 * @return 0, ZONE_ESTATE (the zone has no names), ZONE_ENOMEM.
 */
int zone_wire_iter_new(const struct zone *z, struct zone_wire_iter **out);

/**
 * @brief The next name and its RRs, borrowed until the next call on @p it
 * and only while the zone does not change.
 * @return 1 with *out set, 0 after the last name, ZONE_EFORMAT (a stored
 *         name is malformed), ZONE_ERANGE, ZONE_ENOMEM.
 */
int zone_wire_iter_next(struct zone_wire_iter *it, const struct zone_wire_name **out);

/**
 * @brief Find the iterator's place again after the zone may have changed
 * (the caller went back to its event loop): the walk goes on after the last
 * name returned, looked up by its key in O(log n). Without this call the
 * iterator keeps pointers into the tree, which a change may free.
 */
void zone_wire_iter_resume(struct zone_wire_iter *it);

/** @brief Free an iterator; NULL is a no-op. */
void zone_wire_iter_free(struct zone_wire_iter *it);

#endif
