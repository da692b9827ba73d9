/**
 * @file zone_rows.h
 * @brief The zone file written from stored rows instead of a zone in memory.
 *
 * The daemon keeps one row per owner name (zone_export_foreach(): the
 * name's canonical key and its RRset area behind a version byte). Rows read
 * in key order are the zone in canonical order (zone_name.h: memcmp order of
 * the keys is RFC 4034 order), the apex (empty key) first; each name's NSEC
 * points at the next row's name and the last one's at the apex, exactly as
 * the tree would give them. So a thread that reads a consistent snapshot of
 * the rows (one read transaction) can write the zone file of that serial
 * without touching any zone that another thread changes, one row in memory
 * at a time: the output is byte for byte what zone_file_write() writes for
 * a zone holding the same names (both stream through zone_file_out_node()).
 *
 * Usage: zone_rows_open(), zone_rows_add() for each row in key order,
 * zone_rows_finish() (fsync, rename, fsync of the directory), or
 * zone_rows_free() to abandon (the file at the path stays as it was).
 * A handle is used by one thread at a time.
 */
#ifndef REGSIGN_ZONE_ROWS_H
#define REGSIGN_ZONE_ROWS_H

#include <stddef.h>
#include <stdint.h>

#include "zonesigner/zone.h"

struct zone_rows;
struct zone_node;

/** Room for zone_rows_error()'s text. */
#define ZONE_ROWS_ERR_MAX 384

/**
 * @brief Start writing the zone file @p path (a temporary file next to it).
 * @param shape a zone with the zone's parameters (only its origin is read;
 *        an empty zone from zone_new() will do). It must stay unchanged and
 *        alive until the handle is freed; it may be read by other threads.
 * @return 0, ZONE_EIO (errno kept), ZONE_ENOMEM.
 */
int zone_rows_open(const struct zone *shape, const char *path, struct zone_rows **out);

/**
 * @brief The next stored row: @p key is the zone key of the name (the apex:
 * empty), @p blob the stored form. Rows must come in strictly increasing key
 * order, the apex first. The row's RRs go to the file when the next row
 * (which gives its NSEC's next name) arrives.
 * @return 0; ZONE_EFORMAT (a row that does not parse, out of order, or a
 *         first row that is not the apex with its SOA: zone_rows_error()
 *         names it), ZONE_EIO, ZONE_ENOMEM. After an error only
 *         zone_rows_free() may follow.
 */
int zone_rows_add(struct zone_rows *w, const uint8_t *key, size_t keylen, const uint8_t *blob,
		  size_t len);

/** @brief The SOA serial of the apex row (0 before it was added). */
uint32_t zone_rows_serial(const struct zone_rows *w);

/** @brief Rows added so far. */
size_t zone_rows_count(const struct zone_rows *w);

/**
 * @brief Write the last row (its NSEC points at the apex), flush, fsync,
 * rename over the path and fsync the directory. @p w stays to be freed.
 * @return 0, ZONE_EFORMAT (no rows), ZONE_EIO (errno kept), ZONE_ENOMEM.
 */
int zone_rows_finish(struct zone_rows *w);

/**
 * @brief What went wrong, naming the row ("row 12 (1.abc.zone.): ..."), or
 * "" when nothing did. Valid until the handle is freed.
 */
const char *zone_rows_error(const struct zone_rows *w);

/** @brief Free the handle; an unfinished file is removed. NULL is a no-op. */
void zone_rows_free(struct zone_rows *w);

/* ---- Inside libregsign-zone (zone_persist.c, for zone_rows.c) ---- */

/**
 * @brief A node from one stored row, checked as a load checks it: canonical
 * key below @p z's apex, version byte, RRset area valid. Malloc'd; free with
 * zone_node_free().
 * @return 0, ZONE_EFORMAT, ZONE_ENOMEM, ZONE_ERANGE.
 */
int zone_row_node(const struct zone *z, const uint8_t *key, size_t keylen, const uint8_t *blob,
		  size_t len, struct zone_node **out);

#endif
