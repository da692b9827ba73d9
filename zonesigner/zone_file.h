/**
 * @file zone_file.h
 * @brief The zone as RRs: canonical-order iteration (AXFR) and the zone file.
 */
#ifndef REGSIGN_ZONE_FILE_H
#define REGSIGN_ZONE_FILE_H

#include "zonesigner/zone.h"
#include "zonesigner/zone_ldns.h"

/**
 * @brief Visit every RR of the zone in canonical order, each RRset followed
 * by its RRSIG, SOA first. The RR is borrowed for the call. Stops at the
 * first non-zero return of @p cb and returns it.
 * @return 0, the callback's value, ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_foreach_rr(const struct zone *z, int (*cb)(void *ctx, const ldns_rr *rr), void *ctx);

/**
 * @brief All RRs of one owner name (presentation form, e.g. for a query
 * answer or a test). @p out is a new list the caller frees with
 * ldns_rr_list_deep_free(); empty when the name does not exist.
 * @return 0, ZONE_EINVAL (not in the zone), ZONE_ENOMEM.
 */
int zone_name_rrs(const struct zone *z, const char *owner, ldns_rr_list **out);

/**
 * @brief Write the zone file atomically: a temporary file next to @p path,
 * fsync, rename over @p path, fsync of the directory. Presentation form by
 * ldns, one RR per line, no comments.
 * @return 0, ZONE_EIO (errno kept), ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_file_write(const struct zone *z, const char *path);

#endif
