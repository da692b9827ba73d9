/**
 * @file zone_change.h
 * @brief Change sets: group several device and PUBLISH changes into one
 * signed version of the zone with one serial and one IXFR diff.
 *
 * zone_change_begin() opens the (single) change of a zone; the add/remove
 * calls each either take effect in the change or fail without effect, so a
 * refused request does not spoil the others of a group commit. The zone
 * itself does not change until zone_change_commit(), which:
 *   - works out the NSEC records whose next name or type bitmap changed,
 *   - asks the signing callback ONCE for every new signature (changed RRsets,
 *     changed NSEC records, the new SOA),
 *   - runs the structural self-check on the touched names and neighbours,
 *   - then swaps the new names in and returns the IXFR diff.
 * If signing or the check fails the zone is exactly as before.
 */
#ifndef REGSIGN_ZONE_CHANGE_H
#define REGSIGN_ZONE_CHANGE_H

#include "zonesigner/zone.h"
#include "zonesigner/zone_ldns.h"

struct zone_change;

/**
 * @brief Open a change on @p z. Only one change may be open at a time.
 * @return 0, ZONE_ESTATE (a change is open, or the zone is being loaded), ZONE_ENOMEM.
 */
int zone_change_begin(struct zone *z, struct zone_change **out);

/**
 * @brief Publish a device's records at <index>.<id> (and, for DANCE, at
 * <prefix>.<index>.<id>).
 * @return 0, ZONE_EINVAL (bad id, index, styles or missing hash/certificate),
 *         ZONE_EEXIST (the name has records already), ZONE_ENOMEM.
 */
int zone_change_device_add(struct zone_change *c, const struct zone_device *d);

/**
 * @brief Remove <index>.<id> and every name below it (revocation).
 * @return 0, ZONE_EINVAL, ZONE_ENOENT (nothing published there), ZONE_ENOMEM.
 */
int zone_change_device_remove(struct zone_change *c, const char *id, uint32_t index);

/**
 * @brief PUBLISH: add one RR (class IN) to its RRset; the RRset's TTL
 * becomes this RR's. Refused: names outside the zone or in the device
 * namespace (first label under the apex all hex digits), DNSSEC-managed
 * types (SOA, RRSIG, NSEC, NSEC3, NSEC3PARAM), NS below the apex
 * (delegations are not supported), CNAME next to other data.
 * @return 0, ZONE_EINVAL, ZONE_ERESERVED, ZONE_EEXIST (already present), ZONE_ENOMEM.
 */
int zone_change_rr_add(struct zone_change *c, const ldns_rr *rr);

/**
 * @brief UNPUBLISH: remove one RR (matched by owner, type and RDATA; the TTL
 * is ignored). Same refusals as zone_change_rr_add(); also the last NS or a
 * DNSKEY of the zone's own KSK/ZSK.
 * @return 0, ZONE_EINVAL, ZONE_ERESERVED, ZONE_ENOENT, ZONE_ENOMEM.
 */
int zone_change_rr_remove(struct zone_change *c, const ldns_rr *rr);

/** @brief Number of names the change touches so far (for batching decisions). */
size_t zone_change_size(const struct zone_change *c);

/**
 * @brief Sign and apply the change (see the file comment). The change is
 * consumed whatever the result: do not use it again, zone_change_free() it.
 * @param diff receives the IXFR diff of this version (free with zone_diff_free()).
 * @return 0, ZONE_ESIGN, ZONE_ECHECK, ZONE_ENOMEM, ZONE_ESTATE (already committed);
 *         on error the zone is unchanged.
 */
int zone_change_commit(struct zone_change *c, int64_t now, zone_sign_fn sign, void *ctx,
		       struct zone_diff **diff);

/** @brief Close a change (abandons it if not committed); NULL is a no-op. */
void zone_change_free(struct zone_change *c);

/* ---- The IXFR diff of one version ---- */

/** @brief Serial before the change (0 for the first version). */
uint32_t zone_diff_serial_from(const struct zone_diff *d);
/** @brief Serial after the change. */
uint32_t zone_diff_serial_to(const struct zone_diff *d);
/**
 * @brief RRs removed, the old SOA first (empty list for the first version),
 * with the RRSIGs that went with them. Owned by the diff.
 */
const ldns_rr_list *zone_diff_removed(const struct zone_diff *d);
/** @brief RRs added, the new SOA first, with the new RRSIGs. Owned by the diff. */
const ldns_rr_list *zone_diff_added(const struct zone_diff *d);
/** @brief Signatures that were made for this version. */
size_t zone_diff_signatures(const struct zone_diff *d);
/** @brief Number of names whose stored row changed (export or delete them). */
size_t zone_diff_names(const struct zone_diff *d);
/** @brief Key of the i-th changed name (borrowed); for zone_export_name(). */
void zone_diff_name(const struct zone_diff *d, size_t i, const uint8_t **key, size_t *keylen);

/**
 * @brief Serialise as the IXFR sequence (RFC 1995): old SOA, removed RRs,
 * new SOA, added RRs, each an uncompressed wire RR. @p buf is malloc'd.
 * @return 0, ZONE_ENOMEM, ZONE_ELDNS.
 */
int zone_diff_to_wire(const struct zone_diff *d, uint8_t **buf, size_t *len);

/**
 * @brief Parse what zone_diff_to_wire() produced (from the journal).
 * @return 0, ZONE_EFORMAT, ZONE_ENOMEM.
 */
int zone_diff_from_wire(const uint8_t *buf, size_t len, struct zone_diff **out);

/** @brief Free a diff; NULL is a no-op. */
void zone_diff_free(struct zone_diff *d);

#endif
