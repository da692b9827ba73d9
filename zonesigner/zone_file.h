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

/* ---- The RRs of one name, in the order every writer gives them ---- */

struct zone_node;

/** Largest RRSIG RDATA zone_node_expand() builds: fixed part, signer, r||s. */
#define ZONE_FILE_RRSIG_MAX (18 + ZONE_WIRE_MAX + 64)

/**
 * Receives one RR of a node from zone_node_expand(). @p owner is the
 * caller's buffer. With @p built false, @p rdata is the RDATA stored in the
 * node (valid while the zone is unchanged); with @p built true it was built
 * for the call (the NSEC, an RRSIG, at most ZONE_NSEC_MAX or
 * ZONE_FILE_RRSIG_MAX bytes) and lasts only for it. Non-zero stops the walk.
 */
typedef int (*zone_rr_sink)(void *ctx, const uint8_t *owner, size_t ownerlen, uint16_t type,
			    uint32_t ttl, const uint8_t *rdata, size_t rdlen, bool built);

/**
 * @brief Hand every RR of node @p n of @p z to @p sink in the order of the
 * zone file, zone_name_rrs() and an AXFR (zone_wire.c): at the apex the SOA
 * first, then the RRsets as the node stores them, each followed by its
 * RRSIG; the NSEC points at @p nextkey. The node's owner name is written to
 * @p owner (ZONE_WIRE_MAX bytes) first.
 * @return 0, the sink's non-zero value, ZONE_EFORMAT.
 */
int zone_node_expand(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		     size_t nextlen, uint8_t *owner, size_t *ownerlen, zone_rr_sink sink,
		     void *ctx);

/* ---- Streaming a zone file name by name (zone_file_write(), zone_rows.h) ---- */

struct zone_file_out;

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
