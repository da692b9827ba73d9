/*
 * regsignd's durable state on SQLite. See store.h for the contract.
 *
 * Every statement is prepared once per connection (SQLITE_PREPARE_PERSISTENT)
 * and kept in a table indexed by enum stmt_id, because the daemon runs the
 * same few statements thousands of times a second under group commit.
 */
#include "signer/store.h"
#include "signer/store_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 'RGS1': tells a regsign database from any other SQLite file. */
#define STORE_APPLICATION_ID 0x52475331

#define CERT_COLS "device, idx, serial, status, revoked_at, reason, caller_uid, " \
	"caller_name, der, csr_sha256, profile, not_before, not_after, issued_at"

static const char *const stmt_sql[S_COUNT] = {
	[S_BEGIN] = "BEGIN IMMEDIATE",
	[S_COMMIT] = "COMMIT",
	[S_ROLLBACK] = "ROLLBACK",
	[S_CERT_INSERT] = "INSERT INTO certs(" CERT_COLS ") "
		"VALUES(?1,?2,?3,0,0,0,?4,?5,?6,?7,?8,?9,?10,?11)",
	[S_DEVICE_BUMP] = "INSERT INTO devices(device, highest_index, total) VALUES(?1,?2,1) "
		"ON CONFLICT(device) DO UPDATE SET "
		"highest_index = max(highest_index, excluded.highest_index), total = total + 1",
	[S_CERT_BY_INDEX] = "SELECT " CERT_COLS " FROM certs WHERE device = ?1 AND idx = ?2",
	[S_CERT_BY_SERIAL] = "SELECT " CERT_COLS " FROM certs WHERE serial = ?1",
	[S_SERIAL_EXISTS] = "SELECT 1 FROM certs WHERE serial = ?1",
	[S_DEVICE_INFO] = "SELECT highest_index, total FROM devices WHERE device = ?1",
	[S_DEVICE_LIVE] = "SELECT count(*) FROM certs WHERE device = ?1 AND status = 0 "
		"AND not_after > ?2",
	[S_CERT_BY_DEVICE] = "SELECT " CERT_COLS " FROM certs WHERE device = ?1 ORDER BY idx",
	[S_CERT_REVOKE] = "UPDATE certs SET status = 1, revoked_at = ?2, reason = ?3 "
		"WHERE serial = ?1 AND status = 0",
	[S_REVOKED] = "SELECT serial, revoked_at, reason FROM certs WHERE status = 1 "
		"ORDER BY revoked_at, serial",
	[S_CRL_NEXT] = "INSERT INTO meta(key, value) VALUES('crl.number', 1) "
		"ON CONFLICT(key) DO UPDATE SET value = value + 1 RETURNING value",
	[S_CRL_SAVE] = "INSERT OR REPLACE INTO crl(id, number, this_update, der) VALUES(1,?1,?2,?3)",
	[S_CRL_LOAD] = "SELECT number, this_update, der FROM crl WHERE id = 1",
	[S_META_SET] = "INSERT OR REPLACE INTO meta(key, value) VALUES(?1, ?2)",
	[S_META_GET] = "SELECT value FROM meta WHERE key = ?1",
	[S_AUDIT_APPEND] = "INSERT INTO audit(seq, line) VALUES(?1, ?2)",
	[S_AUDIT_LAST] = "SELECT seq, line FROM audit ORDER BY seq DESC LIMIT 1",
	[S_AUDIT_COUNT] = "SELECT count(*) FROM audit",
	[S_AUDIT_FROM] = "SELECT seq, line FROM audit WHERE seq >= ?1 ORDER BY seq",
	[S_INTENT_OPEN] = "INSERT INTO audit_open(seq) VALUES(?1)",
	[S_INTENT_CLOSE] = "DELETE FROM audit_open WHERE seq = ?1",
	[S_INTENTS] = "SELECT seq FROM audit_open ORDER BY seq",
	[S_ZONE_PUT] = "INSERT OR REPLACE INTO zone_names(key, data) VALUES(?1, ?2)",
	[S_ZONE_DEL] = "DELETE FROM zone_names WHERE key = ?1",
	[S_ZONE_ALL] = "SELECT key, data FROM zone_names ORDER BY key",
	[S_ZMETA_SET] = "INSERT OR REPLACE INTO zone_meta(key, value) VALUES(?1, ?2)",
	[S_ZMETA_GET] = "SELECT value FROM zone_meta WHERE key = ?1",
	[S_JOURNAL_ADD] = "INSERT INTO ixfr_journal(serial_from, serial_to, diff, time) "
		"VALUES(?1, ?2, ?3, ?4)",
	[S_JOURNAL_ALL] = "SELECT serial_from, serial_to, diff, time FROM ixfr_journal ORDER BY id",
	/* The ids of the journal are one contiguous range: AUTOINCREMENT only
	 * grows (a rolled-back append gives its id back with the transaction) and
	 * only the oldest rows are deleted. So the newest ?1 rows are the ids
	 * above max(id) - ?1, found in the rowid b-tree at once. Counting them
	 * off with OFFSET instead walked the rows, diffs included: ~1.4 ms per
	 * zone commit at 1,400 entries, growing with the journal. */
	[S_JOURNAL_TRIM] = "DELETE FROM ixfr_journal WHERE id <= "
		"(SELECT max(id) FROM ixfr_journal) - ?1",
};

/*
 * Schema steps: entry v turns a version-v database into version v+1. A
 * future version appends an entry; existing entries never change, so a
 * database of any older version can be brought forward in one transaction.
 */
static const char *const schema_steps[STORE_SCHEMA_VERSION] = {
	"CREATE TABLE meta(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE certs("
	" serial BLOB PRIMARY KEY, device TEXT NOT NULL,"
	" idx INTEGER NOT NULL CHECK(idx >= 1),"
	" status INTEGER NOT NULL CHECK(status IN (0, 1)),"
	" revoked_at INTEGER NOT NULL, reason INTEGER NOT NULL,"
	" caller_uid INTEGER NOT NULL, caller_name TEXT NOT NULL,"
	" der BLOB NOT NULL, csr_sha256 BLOB NOT NULL CHECK(length(csr_sha256) = 32),"
	" profile TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	" issued_at INTEGER NOT NULL, UNIQUE(device, idx)) WITHOUT ROWID;"
	"CREATE INDEX certs_revoked ON certs(revoked_at, serial) WHERE status = 1;"
	/* Kept apart from certs so that 'indexes are never reused' holds even
	 * if old certificate rows are ever purged. */
	"CREATE TABLE devices(device TEXT PRIMARY KEY, highest_index INTEGER NOT NULL,"
	" total INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE crl(id INTEGER PRIMARY KEY CHECK(id = 1), number INTEGER NOT NULL,"
	" this_update INTEGER NOT NULL, der BLOB NOT NULL);"
	"CREATE TABLE audit(seq INTEGER PRIMARY KEY CHECK(seq >= 1), line TEXT NOT NULL);"
	"CREATE TABLE audit_open(seq INTEGER PRIMARY KEY);"
	"CREATE TABLE zone_names(key BLOB PRIMARY KEY, data BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE zone_meta(key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;"
	"CREATE TABLE ixfr_journal(id INTEGER PRIMARY KEY AUTOINCREMENT,"
	" serial_from INTEGER NOT NULL, serial_to INTEGER NOT NULL,"
	" diff BLOB NOT NULL, time INTEGER NOT NULL);",
	/*
	 * Version 2: certs becomes a rowid table with the serial a UNIQUE key.
	 * Keyed by the (random) serial itself, every certificate's ~700-byte
	 * row went to a random leaf holding five or six rows, so each issuance
	 * dirtied (and often split) a page of its own, which the WAL then
	 * carried and the checkpointer copied again: 4.8 pages per issuance
	 * for certs and devices at 100,000 certificates, 3.0 this way, where
	 * the rows fill the last page in issuing order and only the small
	 * serial and (device, idx) index entries land at random. The same
	 * columns and constraints, so every statement reads both versions.
	 */
	"CREATE TABLE certs_v2("
	" serial BLOB NOT NULL UNIQUE, device TEXT NOT NULL,"
	" idx INTEGER NOT NULL CHECK(idx >= 1),"
	" status INTEGER NOT NULL CHECK(status IN (0, 1)),"
	" revoked_at INTEGER NOT NULL, reason INTEGER NOT NULL,"
	" caller_uid INTEGER NOT NULL, caller_name TEXT NOT NULL,"
	" der BLOB NOT NULL, csr_sha256 BLOB NOT NULL CHECK(length(csr_sha256) = 32),"
	" profile TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
	" issued_at INTEGER NOT NULL, UNIQUE(device, idx));"
	"INSERT INTO certs_v2(serial, device, idx, status, revoked_at, reason, caller_uid,"
	" caller_name, der, csr_sha256, profile, not_before, not_after, issued_at)"
	" SELECT serial, device, idx, status, revoked_at, reason, caller_uid, caller_name,"
	" der, csr_sha256, profile, not_before, not_after, issued_at FROM certs"
	" ORDER BY issued_at, serial;"
	"DROP TABLE certs;"
	"ALTER TABLE certs_v2 RENAME TO certs;"
	"CREATE INDEX certs_revoked ON certs(revoked_at, serial) WHERE status = 1;",
};

const char *
store_strerror(int err)
{
	switch (err) {
	case STORE_OK: return "success";
	case STORE_ENOMEM: return "out of memory";
	case STORE_EINVAL: return "invalid argument";
	case STORE_ENOTFOUND: return "not found";
	case STORE_EEXISTS: return "already exists";
	case STORE_ECONFLICT: return "index taken by a certificate of another CSR";
	case STORE_EALREADY: return "certificate already revoked";
	case STORE_ETXN: return "transaction misuse";
	case STORE_ESCHEMA: return "not a regsign database or an unsupported schema version";
	case STORE_ECORRUPT: return "database is corrupt";
	case STORE_EFULL: return "disk or database full";
	case STORE_EBUSY: return "database is locked";
	case STORE_EREADONLY: return "read-only store";
	case STORE_EFSYNC: return "fsync failed; on-disk state unknown";
	case STORE_EIO: return "I/O error; on-disk state unknown";
	case STORE_ESQL: return "SQLite error";
	case STORE_EDURABILITY: return "WAL mode or synchronous=FULL could not be set";
	default: return "unknown store error";
	}
}

int
store_error_is_fatal(int err)
{
	return err == STORE_EFSYNC || err == STORE_EIO || err == STORE_ECORRUPT;
}

/* Map an extended SQLite result code to our errors. fsync failures are
 * told apart from other I/O errors because the daemon must never retry
 * after one (the kernel may have dropped the dirty pages). */
int
store__map_rc(int rc)
{
	switch (rc) {
	case SQLITE_OK: case SQLITE_DONE: case SQLITE_ROW: return STORE_OK;
	case SQLITE_IOERR_FSYNC: case SQLITE_IOERR_DIR_FSYNC: return STORE_EFSYNC;
	case SQLITE_IOERR_NOMEM: return STORE_ENOMEM;
	case SQLITE_CONSTRAINT_CHECK: case SQLITE_CONSTRAINT_NOTNULL: return STORE_EINVAL;
	default: break;
	}
	switch (rc & 0xff) {
	case SQLITE_NOMEM: return STORE_ENOMEM;
	case SQLITE_IOERR: return STORE_EIO;
	case SQLITE_FULL: return STORE_EFULL;
	case SQLITE_CORRUPT: return STORE_ECORRUPT;
	case SQLITE_NOTADB: return STORE_ESCHEMA;
	case SQLITE_BUSY: case SQLITE_LOCKED: return STORE_EBUSY;
	case SQLITE_READONLY: return STORE_EREADONLY;
	case SQLITE_CONSTRAINT: return STORE_EEXISTS;
	default: return STORE_ESQL;
	}
}

int
store__stmt_get(store_t *st, enum stmt_id id, sqlite3_stmt **out)
{
	if (st->stmt[id] == NULL) {
		int rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		                            &st->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return store__map_rc(sqlite3_extended_errcode(st->db));
	}
	*out = st->stmt[id];
	return 0;
}

void
store__stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a statement that returns no rows, binding nothing more. */
int
store__step_done(store_t *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
	return r;
}

static int
exec_id(store_t *st, enum stmt_id id)
{
	sqlite3_stmt *s = NULL;
	int r = store__stmt_get(st, id, &s);
	if (r == 0)
		r = store__step_done(st, s);
	return r;
}

int
store_txn_begin(store_t *st)
{
	int r;
	if (st == NULL)
		return STORE_EINVAL;
	if (st->in_txn)
		return STORE_ETXN;
	if (st->readonly)
		return STORE_EREADONLY;
	if ((r = exec_id(st, S_BEGIN)) == 0)
		st->in_txn = 1;
	return r;
}

static void
txn_abort(store_t *st)
{
	/* After a failed COMMIT, SQLite may already have rolled back. */
	if (!sqlite3_get_autocommit(st->db))
		(void)exec_id(st, S_ROLLBACK);
	st->in_txn = 0;
	if (st->on_rollback)
		st->on_rollback(st->hook_ctx);
}

int
store_txn_commit(store_t *st)
{
	int r;
	if (st == NULL)
		return STORE_EINVAL;
	if (!st->in_txn)
		return STORE_ETXN;
	if ((st->pre_commit && (r = st->pre_commit(st->pre_commit_ctx)) != 0) ||
	    (r = exec_id(st, S_COMMIT)) != 0) {
		txn_abort(st);
		return r;
	}
	st->in_txn = 0;
	if (st->on_commit)
		st->on_commit(st->hook_ctx);
	return 0;
}

int
store_txn_rollback(store_t *st)
{
	if (st == NULL)
		return STORE_EINVAL;
	if (!st->in_txn)
		return STORE_ETXN;
	txn_abort(st);
	return 0;
}

int
store_txn_active(const store_t *st)
{
	return st != NULL && st->in_txn;
}

void
store_txn_hooks_set(store_t *st, void (*on_commit)(void *), void (*on_rollback)(void *),
                    void *ctx)
{
	st->on_commit = on_commit;
	st->on_rollback = on_rollback;
	st->hook_ctx = ctx;
}

void
store_txn_precommit_set(store_t *st, int (*pre_commit)(void *), void *ctx)
{
	st->pre_commit = pre_commit;
	st->pre_commit_ctx = ctx;
}

/*
 * The INSERT of 2^k audit rows, prepared on first use. One statement for a
 * commit group's rows instead of one per row: each statement run costs
 * SQLite a VDBE start and halt and a b-tree seek, more than the row itself
 * when the rows are appended at the end of the table.
 */
static int
audit_rows_stmt(store_t *st, unsigned k, sqlite3_stmt **out)
{
	char sql[64 + 6 * (1u << (STORE__AUDIT_ROWS_SIZES - 1))];
	size_t n = (size_t)1 << k, o;

	if (st->audit_rows[k] == NULL) {
		o = (size_t)snprintf(sql, sizeof(sql), "INSERT INTO audit(seq, line) VALUES");
		for (size_t i = 0; i < n; i++) {
			memcpy(sql + o, i ? ",(?,?)" : "(?,?)", i ? 6 : 5);
			o += i ? 6 : 5;
		}
		sql[o] = '\0';
		if (sqlite3_prepare_v3(st->db, sql, (int)o, SQLITE_PREPARE_PERSISTENT,
		                       &st->audit_rows[k], NULL) != SQLITE_OK)
			return store__map_rc(sqlite3_extended_errcode(st->db));
	}
	*out = st->audit_rows[k];
	return 0;
}

int
store_audit_append_rows(store_t *st, const struct store_audit_row *rows, size_t n)
{
	int own = 0, r;

	if (st == NULL || (n && rows == NULL))
		return STORE_EINVAL;
	for (size_t i = 0; i < n; i++)
		if (rows[i].line == NULL || rows[i].len == 0 || rows[i].len > INT32_MAX ||
		    rows[i].seq == 0 || rows[i].seq > INT64_MAX)
			return STORE_EINVAL;
	if (n == 0)
		return 0;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	for (size_t i = 0; r == 0 && i < n;) {
		unsigned k = STORE__AUDIT_ROWS_SIZES - 1;
		sqlite3_stmt *s = NULL;
		size_t m;
		int rc;

		while (((size_t)1 << k) > n - i)
			k--;
		m = (size_t)1 << k;
		if ((r = audit_rows_stmt(st, k, &s)) != 0)
			break;
		for (size_t j = 0; j < m; j++) {
			sqlite3_bind_int64(s, (int)(2 * j + 1), (int64_t)rows[i + j].seq);
			sqlite3_bind_text(s, (int)(2 * j + 2), rows[i + j].line, (int)rows[i + j].len,
			                  SQLITE_STATIC);
		}
		/* Every parameter is bound again before the next run: a reset is
		 * enough (no sqlite3_clear_bindings()). */
		rc = sqlite3_step(s);
		r = rc == SQLITE_DONE ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
		sqlite3_reset(s);
		i += m;
	}
	return store__wr_end(st, own, r);
}

/*
 * A write outside an explicit transaction runs in one of its own, so that
 * the commit hooks see it like any other and multi-statement writes stay
 * atomic.
 */
int
store__wr_begin(store_t *st, int *own)
{
	int r;
	*own = 0;
	if (st->readonly)
		return STORE_EREADONLY;
	if (st->in_txn)
		return 0;
	if ((r = store_txn_begin(st)) == 0)
		*own = 1;
	return r;
}

int
store__wr_end(store_t *st, int own, int r)
{
	if (!own)
		return r;
	if (r != 0) {
		(void)store_txn_rollback(st);
		return r;
	}
	return store_txn_commit(st);
}

/* ---- Open / schema ---------------------------------------------------- */

static int
pragma_int(store_t *st, const char *sql, int *out)
{
	sqlite3_stmt *s = NULL;
	int r = STORE_ESQL;
	if (sqlite3_prepare_v2(st->db, sql, -1, &s, NULL) != SQLITE_OK)
		goto out;
	if (sqlite3_step(s) != SQLITE_ROW)
		goto out;
	*out = sqlite3_column_int(s, 0);
	r = 0;
out:
	if (r != 0)
		r = store__map_rc(sqlite3_extended_errcode(st->db));
	if (r == 0 && s == NULL)
		r = STORE_ESQL;
	sqlite3_finalize(s);
	return r;
}

static int
exec_sql(store_t *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return store__map_rc(sqlite3_extended_errcode(st->db));
	return 0;
}

/*
 * Around a migration from an older version: SQLite as Debian builds it zeroes
 * every freed page (secure_delete on), and the steps drop whole tables whose
 * rows live on, byte for byte, in the tables that replace them, so zeroing
 * protects nothing and doubles the WAL (a 1M-certificate migration: 39 s and
 * a 1.4 GB WAL with it, 17.5 s and 0.7 GB with FAST). After the commit the WAL
 * is copied back and truncated, so the upgrade leaves no WAL of that size
 * allocated. Both are best effort: a failure here loses nothing.
 */
static const char *const secure_delete_modes[] = { "OFF", "ON", "FAST" };

static int
migration_begin(store_t *st)
{
	int mode = 1;
	if (pragma_int(st, "PRAGMA secure_delete", &mode) != 0 || mode < 0 || mode > 2)
		mode = 1;
	(void)exec_sql(st, "PRAGMA secure_delete = FAST");
	return mode;
}

static void
migration_end(store_t *st, int mode, int committed)
{
	char sql[48];
	snprintf(sql, sizeof(sql), "PRAGMA secure_delete = %s", secure_delete_modes[mode]);
	(void)exec_sql(st, sql);
	if (committed)
		(void)sqlite3_wal_checkpoint_v2(st->db, "main", SQLITE_CHECKPOINT_TRUNCATE,
		                                NULL, NULL);
}

/* Create or migrate the schema inside one IMMEDIATE transaction, so two
 * processes opening a new file at once cannot both create it. */
static int
schema_prepare(store_t *st)
{
	int r, version = 0, appid = 0, tables = 0, secure = -1;
	char sql[96];

	if ((r = exec_sql(st, "BEGIN IMMEDIATE")) != 0)
		return r;
	if ((r = pragma_int(st, "PRAGMA user_version", &version)) != 0 ||
	    (r = pragma_int(st, "PRAGMA application_id", &appid)) != 0 ||
	    (r = pragma_int(st, "SELECT count(*) FROM sqlite_schema", &tables)) != 0)
		goto out;
	r = STORE_ESCHEMA;
	if (version == 0 && (tables != 0 || appid != 0))
		goto out; /* someone else's database */
	if (version != 0 && appid != STORE_APPLICATION_ID)
		goto out;
	if (version > STORE_SCHEMA_VERSION)
		goto out; /* written by a newer regsign: do not touch it */
	if (version >= 1 && version < STORE_SCHEMA_VERSION)
		secure = migration_begin(st);
	for (int v = version; v < STORE_SCHEMA_VERSION; v++)
		if ((r = exec_sql(st, schema_steps[v])) != 0)
			goto out;
	snprintf(sql, sizeof(sql), "PRAGMA application_id = %d; PRAGMA user_version = %d",
	         STORE_APPLICATION_ID, STORE_SCHEMA_VERSION);
	if ((r = exec_sql(st, sql)) != 0)
		goto out;
	r = exec_sql(st, "COMMIT");
out:
	if (r != 0 && !sqlite3_get_autocommit(st->db))
		(void)exec_sql(st, "ROLLBACK");
	if (secure >= 0)
		migration_end(st, secure, r == 0);
	return r;
}

static int
schema_check_readonly(store_t *st)
{
	int r, version = 0, appid = 0;
	if ((r = pragma_int(st, "PRAGMA user_version", &version)) != 0 ||
	    (r = pragma_int(st, "PRAGMA application_id", &appid)) != 0)
		return r;
	/* Every statement reads every version since 1 (their tables differ in
	 * layout, not in columns): a read-only reader need not wait for the
	 * daemon to migrate the file. */
	if (appid != STORE_APPLICATION_ID || version < 1 || version > STORE_SCHEMA_VERSION)
		return STORE_ESCHEMA;
	return 0;
}

int
store_durability_get(store_t *st, struct store_durability *out)
{
	sqlite3_stmt *s = NULL;
	int r;
	memset(out, 0, sizeof(*out));
	if (sqlite3_prepare_v2(st->db, "PRAGMA journal_mode", -1, &s, NULL) != SQLITE_OK ||
	    sqlite3_step(s) != SQLITE_ROW) {
		r = store__map_rc(sqlite3_extended_errcode(st->db));
		sqlite3_finalize(s);
		return r ? r : STORE_ESQL;
	}
	snprintf(out->journal_mode, sizeof(out->journal_mode), "%s",
	         (const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	if ((r = pragma_int(st, "PRAGMA synchronous", &out->synchronous)) != 0)
		return r;
	return pragma_int(st, "PRAGMA user_version", &out->user_version);
}

int
store_open(store_t **out, const char *path, const struct store_open_opts *opts)
{
	struct store_open_opts defaults = { 0 };
	struct store_durability d;
	store_t *st = NULL;
	int r = STORE_EINVAL, flags;

	if (out == NULL || path == NULL || *path == '\0')
		return STORE_EINVAL;
	*out = NULL;
	if (opts == NULL)
		opts = &defaults;
	if ((st = calloc(1, sizeof(*st))) == NULL)
		return STORE_ENOMEM;
	st->readonly = (opts->flags & STORE_OPEN_READONLY) != 0;
	flags = SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE |
	        (st->readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	if (sqlite3_open_v2(path, &st->db, flags, opts->vfs) != SQLITE_OK) {
		r = st->db ? store__map_rc(sqlite3_extended_errcode(st->db)) : STORE_ENOMEM;
		goto out;
	}
	sqlite3_extended_result_codes(st->db, 1);
	sqlite3_busy_timeout(st->db, opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 5000);

	if (!st->readonly) {
		if ((r = exec_sql(st, "PRAGMA journal_mode = WAL")) != 0)
			goto out;
	}
	/* FULL: the WAL is fsync'd at every commit, so a reply sent after a
	 * commit survives a power loss, not only a process crash. */
	/* A page cache of 8 MiB keeps the upper levels of the certificate,
	 * zone and audit indexes of a large registry in memory (at a million
	 * devices they are a few MiB); a leaf page missed is one pread from the
	 * OS page cache. The cache fills to its limit during a bulk import (one
	 * transaction of a row per name) and never shrinks, so all of it counts
	 * in the daemon's peak: 64 MiB was 67 bytes per device at a million,
	 * more than a tenth of the 600-byte budget. */
	if ((r = exec_sql(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; "
	                      "PRAGMA cache_size = -8192")) != 0)
		goto out;
	r = st->readonly ? schema_check_readonly(st) : schema_prepare(st);
	if (r != 0)
		goto out;
	if ((r = store_durability_get(st, &d)) != 0)
		goto out;
	if (strcmp(d.journal_mode, "wal") != 0 || d.synchronous != 2) {
		r = STORE_EDURABILITY;
		goto out;
	}
	*out = st;
	st = NULL;
	r = 0;
out:
	store_close(st);
	return r;
}

void
store_close(store_t *st)
{
	if (st == NULL)
		return;
	if (st->in_txn)
		(void)store_txn_rollback(st);
	for (int i = 0; i < S_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	for (int i = 0; i < STORE__AUDIT_ROWS_SIZES; i++)
		sqlite3_finalize(st->audit_rows[i]);
	sqlite3_close(st->db);
	free(st);
}

/* Copy a blob column into a fresh buffer with a NUL after its end. */
int
store__dup_column(sqlite3_stmt *s, int col, unsigned char **out, size_t *len)
{
	size_t n = (size_t)sqlite3_column_bytes(s, col);
	const void *p = sqlite3_column_blob(s, col);
	unsigned char *b = malloc(n + 1);
	if (b == NULL)
		return STORE_ENOMEM;
	if (n)
		memcpy(b, p, n);
	b[n] = 0;
	*out = b;
	if (len)
		*len = n;
	return 0;
}

int
store__text_ok(const char *s, size_t max)
{
	return s != NULL && *s != '\0' && strlen(s) <= max;
}
