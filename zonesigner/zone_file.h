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

struct zone_cursor;

/**
 * @brief Start a resumable walk of the zone in canonical order (AXFR served
 * in pieces from an event loop). The cursor remembers the last name given
 * and the serial it started at; it holds no pointer into the zone.
 * @return 0, ZONE_ENOMEM.
 */
int zone_cursor_new(const struct zone *z, struct zone_cursor **out);

/**
 * @brief Append the RRs of up to @p max_names further names to @p out
 * (each RRset followed by its RRSIG, SOA first). *done becomes true after
 * the last name.
 * @return 0, ZONE_ESTATE (the zone got a new serial since the cursor
 *         started: restart the transfer), ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_cursor_next(struct zone_cursor *cur, const struct zone *z, size_t max_names,
		     ldns_rr_list *out, bool *done);

/** @brief Free a cursor; NULL is a no-op. */
void zone_cursor_free(struct zone_cursor *cur);

/**
 * @brief All RRs of one owner name (presentation form, e.g. for a query
 * answer or a test). @p out is a new list the caller frees with
 * ldns_rr_list_deep_free(); empty when the name does not exist.
 * @return 0, ZONE_EINVAL (not in the zone), ZONE_ENOMEM.
 */
int zone_name_rrs(const struct zone *z, const char *owner, ldns_rr_list **out);

/**
 * @brief Write the zone file atomically: a temporary file next to @p path,
 * fsync, rename over @p path, fsync of the directory. Presentation form as
 * ldns writes it (no comments), one RR per line: the zone's own types are
 * formatted by zone_text.h, any other by ldns.
 * @return 0, ZONE_EIO (errno kept), ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_file_write(const struct zone *z, const char *path);

#endif
