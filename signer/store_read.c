/*
 * store_read.c - a reader of its own for another thread, and consistent
 * snapshots on it.
 *
 * In WAL mode a read transaction sees the database as it was committed when
 * its first read ran, however long it lasts, while the writer connection
 * goes on committing: the zone file writer reads the zone's serial and every
 * name row of that serial this way, without stopping the commit pipeline.
 * (A long read keeps the WAL from being reset past its snapshot, so
 * checkpoints copy less until it ends; they never wait for it.)
 */
#include <stdlib.h>
#include <string.h>

#include "signer/store_int.h"

int
store_reader_open(store_t *st, store_t **out)
{
	struct store_open_opts o = { STORE_OPEN_READONLY, NULL, 0 };
	sqlite3_vfs *vfs = NULL;
	const char *path;

	if (out == NULL)
		return STORE_EINVAL;
	*out = NULL;
	if (st == NULL)
		return STORE_EINVAL;
	path = sqlite3_db_filename(st->db, "main");
	if (path == NULL || *path == '\0')
		return 0; /* in memory: no other connection can see it */
	/* The same VFS as the store's, so that a test's fault injection
	 * reaches the reader too. */
	(void)sqlite3_file_control(st->db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs);
	o.vfs = vfs ? vfs->zName : NULL;
	return store_open(out, path, &o);
}

static int
exec_plain(store_t *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store__map_rc(sqlite3_extended_errcode(st->db));
	return 0;
}

int
store_read_begin(store_t *st)
{
	int r;

	if (st == NULL)
		return STORE_EINVAL;
	if (st->in_txn || st->in_read)
		return STORE_ETXN;
	/* BEGIN alone takes no lock; the read of the schema cookie right after
	 * it starts the read transaction, so the snapshot is this moment's. */
	if ((r = exec_plain(st, "BEGIN DEFERRED")) != 0)
		return r;
	if ((r = exec_plain(st, "PRAGMA schema_version")) != 0) {
		(void)exec_plain(st, "ROLLBACK");
		return r;
	}
	st->in_read = 1;
	return 0;
}

int
store_read_end(store_t *st)
{
	if (st == NULL)
		return STORE_EINVAL;
	if (!st->in_read)
		return STORE_ETXN;
	st->in_read = 0;
	/* Nothing was written: a rollback ends the read at no cost. */
	return exec_plain(st, "ROLLBACK");
}

int
store_zone_foreach_prefix(store_t *st, const void *prefix, size_t plen, store_blob_cb cb,
                          void *ctx)
{
	/* The keys with the prefix are one range of the primary key: from the
	 * prefix up to (not including) the prefix with its last byte below 0xff
	 * raised by one; a prefix of 0xff bytes only has no upper end. */
	static const char sql_range[] = "SELECT key, data FROM zone_names "
	                                "WHERE key >= ?1 AND key < ?2 ORDER BY key";
	static const char sql_open[] = "SELECT key, data FROM zone_names "
	                               "WHERE key >= ?1 ORDER BY key";
	const unsigned char *p = prefix;
	unsigned char *hi = NULL;
	size_t hlen = plen;
	sqlite3_stmt *s = NULL;
	int r, rc;

	if (st == NULL || cb == NULL || prefix == NULL || plen == 0 || plen > INT32_MAX)
		return STORE_EINVAL;
	while (hlen > 0 && p[hlen - 1] == 0xff)
		hlen--;
	if (hlen > 0) {
		if ((hi = malloc(hlen)) == NULL)
			return STORE_ENOMEM;
		memcpy(hi, p, hlen);
		hi[hlen - 1]++;
	}
	if (sqlite3_prepare_v2(st->db, hi ? sql_range : sql_open, -1, &s, NULL) != SQLITE_OK) {
		r = store__map_rc(sqlite3_extended_errcode(st->db));
		goto out;
	}
	sqlite3_bind_blob(s, 1, prefix, (int)plen, SQLITE_STATIC);
	if (hi)
		sqlite3_bind_blob(s, 2, hi, (int)hlen, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		/* Keys are unique; a key equal to the prefix is in the range. */
		r = cb(ctx, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0),
		       sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1));
		if (r != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
out:
	sqlite3_finalize(s);
	free(hi);
	return r;
}
