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
 * @brief Write the zone file atomically: a temporary file next to @p path
 * (put on disk in 1 MiB steps as it grows, so that other writers of the
 * disk never wait for one large flush), fsync, rename over @p path, fsync
 * of the directory. Presentation form as
 * ldns writes it (no comments), one RR per line: the zone's own types are
 * formatted by zone_text.h, any other by ldns.
 * @return 0, ZONE_EIO (errno kept), ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_file_write(const struct zone *z, const char *path);

/* ---- Streaming a zone file name by name (zone_file_write(), zone_rows.h) ---- */

struct zone_file_out;
struct zone_node;

/**
 * @brief Start a zone file: a temporary file next to @p path (same
 * directory, so that the rename is atomic). The caller ends it with
 * zone_file_out_commit() or zone_file_out_free().
 * @return 0, ZONE_EIO (errno kept), ZONE_ENOMEM.
 */
int zone_file_out_open(const char *path, struct zone_file_out **out);

/**
 * @brief Append every RR of node @p n of a zone shaped like @p z (only its
 * apex is read: @p z may be an empty zone with the same parameters), its
 * NSEC pointing at @p nextkey, in the form zone_file_write() writes.
 * @return 0, ZONE_EIO, ZONE_ENOMEM, ZONE_EFORMAT.
 */
int zone_file_out_node(struct zone_file_out *fo, const struct zone *z,
		       const struct zone_node *n, const uint8_t *nextkey, size_t nextlen);

/**
 * @brief Finish: flush, fsync, rename over the path, fsync of the
 * directory. @p fo is freed whatever the result; on an error the file at
 * the path is unchanged (or, after the rename, replaced but perhaps not
 * durable yet).
 * @return 0, ZONE_EIO (errno kept).
 */
int zone_file_out_commit(struct zone_file_out *fo);

/** @brief Abandon a file being written (the temporary file goes); NULL is a no-op. */
void zone_file_out_free(struct zone_file_out *fo);

#endif
