/*
 * regsignd's durable state on SQLite. See store.h for the contract.
 *
 * Every statement is prepared once per connection (SQLITE_PREPARE_PERSISTENT)
 * and kept in a table indexed by enum stmt_id, because the daemon runs the
 * same few statements thousands of times a second under group commit.
 */
#include "signer/store.h"

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* 'RGS1': tells a regsign database from any other SQLite file. */
#define STORE_APPLICATION_ID 0x52475331

enum stmt_id {
	S_BEGIN, S_COMMIT, S_ROLLBACK,
	S_CERT_INSERT, S_DEVICE_BUMP, S_CERT_BY_INDEX, S_CERT_BY_SERIAL, S_SERIAL_EXISTS,
	S_DEVICE_INFO, S_DEVICE_LIVE, S_CERT_BY_DEVICE, S_CERT_REVOKE, S_REVOKED,
	S_CRL_NEXT, S_CRL_SAVE, S_CRL_LOAD,
	S_META_SET, S_META_GET,
	S_AUDIT_APPEND, S_AUDIT_LAST, S_AUDIT_COUNT, S_AUDIT_FROM,
	S_INTENT_OPEN, S_INTENT_CLOSE, S_INTENTS,
	S_ZONE_PUT, S_ZONE_DEL, S_ZONE_ALL, S_ZMETA_SET, S_ZMETA_GET,
	S_JOURNAL_ADD, S_JOURNAL_ALL, S_JOURNAL_TRIM,
	S_COUNT
};

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
	[S_JOURNAL_TRIM] = "DELETE FROM ixfr_journal WHERE id <= "
		"(SELECT id FROM ixfr_journal ORDER BY id DESC LIMIT 1 OFFSET ?1)",
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
};

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	int in_txn;
	int readonly;
	void (*on_commit)(void *ctx);
	void (*on_rollback)(void *ctx);
	void *hook_ctx;
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
static int
map_rc(int rc)
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

static int
stmt_get(store_t *st, enum stmt_id id, sqlite3_stmt **out)
{
	if (st->stmt[id] == NULL) {
		int rc = sqlite3_prepare_v3(st->db, stmt_sql[id], -1, SQLITE_PREPARE_PERSISTENT,
		                            &st->stmt[id], NULL);
		if (rc != SQLITE_OK)
			return map_rc(sqlite3_extended_errcode(st->db));
	}
	*out = st->stmt[id];
	return 0;
}

static void
stmt_done(sqlite3_stmt *s)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

/* Run a statement that returns no rows, binding nothing more. */
static int
step_done(store_t *st, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
	return r;
}

static int
exec_id(store_t *st, enum stmt_id id)
{
	sqlite3_stmt *s;
	int r = stmt_get(st, id, &s);
	if (r == 0)
		r = step_done(st, s);
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
	if ((r = exec_id(st, S_COMMIT)) != 0) {
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

/*
 * A write outside an explicit transaction runs in one of its own, so that
 * the commit hooks see it like any other and multi-statement writes stay
 * atomic.
 */
static int
wr_begin(store_t *st, int *own)
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

static int
wr_end(store_t *st, int own, int r)
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
		r = map_rc(sqlite3_extended_errcode(st->db));
	if (r == 0 && s == NULL)
		r = STORE_ESQL;
	sqlite3_finalize(s);
	return r;
}

static int
exec_sql(store_t *st, const char *sql)
{
	if (sqlite3_exec(st->db, sql, NULL, NULL, NULL) != SQLITE_OK)
		return map_rc(sqlite3_extended_errcode(st->db));
	return 0;
}

/* Create or migrate the schema inside one IMMEDIATE transaction, so two
 * processes opening a new file at once cannot both create it. */
static int
schema_prepare(store_t *st)
{
	int r, version = 0, appid = 0, tables = 0;
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
	return r;
}

static int
schema_check_readonly(store_t *st)
{
	int r, version = 0, appid = 0;
	if ((r = pragma_int(st, "PRAGMA user_version", &version)) != 0 ||
	    (r = pragma_int(st, "PRAGMA application_id", &appid)) != 0)
		return r;
	if (appid != STORE_APPLICATION_ID || version != STORE_SCHEMA_VERSION)
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
		r = map_rc(sqlite3_extended_errcode(st->db));
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
		r = st->db ? map_rc(sqlite3_extended_errcode(st->db)) : STORE_ENOMEM;
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
	if ((r = exec_sql(st, "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON")) != 0)
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
	sqlite3_close(st->db);
	free(st);
}

/* ---- Certificates ------------------------------------------------------ */

static int
text_ok(const char *s, size_t max)
{
	return s != NULL && *s != '\0' && strlen(s) <= max;
}

static void
copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void
copy_blob(unsigned char *dst, size_t cap, size_t *len, sqlite3_stmt *s, int col)
{
	size_t n = (size_t)sqlite3_column_bytes(s, col);
	const void *p = sqlite3_column_blob(s, col);
	if (n > cap)
		n = cap;
	if (p != NULL && n > 0)
		memcpy(dst, p, n);
	if (len)
		*len = n;
}

/* Fill @c from a row of CERT_COLS. With @p copy_der the DER is duplicated
 * for the caller, else it points into SQLite's row (callbacks only). */
static int
cert_from_row(sqlite3_stmt *s, struct store_cert *c, int copy_der)
{
	const void *der = sqlite3_column_blob(s, 8);
	size_t der_len = (size_t)sqlite3_column_bytes(s, 8);

	memset(c, 0, sizeof(*c));
	copy_text(c->device, sizeof(c->device), s, 0);
	c->index = (uint32_t)sqlite3_column_int64(s, 1);
	copy_blob(c->serial, sizeof(c->serial), &c->serial_len, s, 2);
	c->status = sqlite3_column_int(s, 3);
	c->revoked_at = sqlite3_column_int64(s, 4);
	c->reason = sqlite3_column_int(s, 5);
	c->caller_uid = (uint32_t)sqlite3_column_int64(s, 6);
	copy_text(c->caller_name, sizeof(c->caller_name), s, 7);
	copy_blob(c->csr_sha256, sizeof(c->csr_sha256), NULL, s, 9);
	copy_text(c->profile, sizeof(c->profile), s, 10);
	c->not_before = sqlite3_column_int64(s, 11);
	c->not_after = sqlite3_column_int64(s, 12);
	c->issued_at = sqlite3_column_int64(s, 13);
	c->der_len = der_len;
	if (!copy_der) {
		c->der = (unsigned char *)der;
		return 0;
	}
	if ((c->der = malloc(der_len ? der_len : 1)) == NULL)
		return STORE_ENOMEM;
	if (der_len)
		memcpy(c->der, der, der_len);
	return 0;
}

void
store_cert_clear(struct store_cert *c)
{
	if (c == NULL)
		return;
	free(c->der);
	memset(c, 0, sizeof(*c));
}

int
store_cert_insert(store_t *st, const struct store_cert *c)
{
	sqlite3_stmt *s;
	int own, r;

	if (st == NULL || c == NULL || !text_ok(c->device, STORE_DEVICE_MAX) || c->index == 0 ||
	    c->serial_len == 0 || c->serial_len > STORE_SERIAL_MAX || c->der == NULL ||
	    c->der_len == 0 || strlen(c->caller_name) > STORE_NAME_MAX ||
	    !text_ok(c->profile, STORE_NAME_MAX))
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	/* Certificate rows are never deleted, so a used (device, index) is
	 * always found here, revoked or not: indexes are never reused. */
	if ((r = store_cert_get_by_index(st, c->device, c->index, NULL)) != STORE_ENOTFOUND) {
		r = r == 0 ? STORE_EEXISTS : r;
		goto out;
	}
	if ((r = stmt_get(st, S_CERT_INSERT, &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, c->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, c->index);
	sqlite3_bind_blob(s, 3, c->serial, (int)c->serial_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, c->caller_uid);
	sqlite3_bind_text(s, 5, c->caller_name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 6, c->der, (int)c->der_len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 7, c->csr_sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, c->profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 9, c->not_before);
	sqlite3_bind_int64(s, 10, c->not_after);
	sqlite3_bind_int64(s, 11, c->issued_at);
	if ((r = step_done(st, s)) != 0)
		goto out;
	if ((r = stmt_get(st, S_DEVICE_BUMP, &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, c->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, c->index);
	r = step_done(st, s);
out:
	return wr_end(st, own, r);
}

/* Run a one-row certificate query; @p out may be NULL (existence check). */
static int
cert_query_one(store_t *st, sqlite3_stmt *s, struct store_cert *out)
{
	int rc = sqlite3_step(s), r;
	if (rc == SQLITE_ROW)
		r = out ? cert_from_row(s, out, 1) : 0;
	else if (rc == SQLITE_DONE)
		r = STORE_ENOTFOUND;
	else
		r = map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
	return r;
}

int
store_cert_get_by_index(store_t *st, const char *device, uint32_t index, struct store_cert *out)
{
	sqlite3_stmt *s;
	int r;
	if (st == NULL || !text_ok(device, STORE_DEVICE_MAX))
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_CERT_BY_INDEX, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, index);
	return cert_query_one(st, s, out);
}

int
store_cert_get_by_serial(store_t *st, const unsigned char *serial, size_t serial_len,
                         struct store_cert *out)
{
	sqlite3_stmt *s;
	int r;
	if (st == NULL || serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_CERT_BY_SERIAL, &s)) != 0)
		return r;
	sqlite3_bind_blob(s, 1, serial, (int)serial_len, SQLITE_STATIC);
	return cert_query_one(st, s, out);
}

int
store_cert_find_repeat(store_t *st, const char *device, uint32_t index,
                       const unsigned char csr_sha256[32], struct store_cert *out)
{
	struct store_cert c;
	int r;
	if (csr_sha256 == NULL || out == NULL)
		return STORE_EINVAL;
	if ((r = store_cert_get_by_index(st, device, index, &c)) != 0)
		return r;
	if (memcmp(c.csr_sha256, csr_sha256, 32) != 0) {
		store_cert_clear(&c);
		return STORE_ECONFLICT;
	}
	*out = c;
	return 0;
}

int
store_serial_exists(store_t *st, const unsigned char *serial, size_t serial_len)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_SERIAL_EXISTS, &s)) != 0)
		return r;
	sqlite3_bind_blob(s, 1, serial, (int)serial_len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
	return r;
}

int
store_device_info_get(store_t *st, const char *device, int64_t now, struct store_device_info *out)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || out == NULL || !text_ok(device, STORE_DEVICE_MAX))
		return STORE_EINVAL;
	memset(out, 0, sizeof(*out));
	if ((r = stmt_get(st, S_DEVICE_INFO, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->highest_index = (uint32_t)sqlite3_column_int64(s, 0);
		out->total = (uint32_t)sqlite3_column_int64(s, 1);
	}
	r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
	if (r != 0 || out->total == 0)
		return r;
	if ((r = stmt_get(st, S_DEVICE_LIVE, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		out->live = (uint32_t)sqlite3_column_int64(s, 0);
	r = rc == SQLITE_ROW ? 0 : map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
	return r;
}

int
store_cert_foreach_device(store_t *st, const char *device, store_cert_cb cb, void *ctx)
{
	struct store_cert c;
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || cb == NULL || !text_ok(device, STORE_DEVICE_MAX))
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_CERT_BY_DEVICE, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		cert_from_row(s, &c, 0);
		if ((r = cb(ctx, &c)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
out:
	stmt_done(s);
	return r;
}

int
store_cert_revoke(store_t *st, const unsigned char *serial, size_t serial_len, int64_t when,
                  int reason, struct store_cert *out)
{
	struct store_cert c;
	sqlite3_stmt *s;
	int own, r;

	memset(&c, 0, sizeof(c));
	if (st == NULL || serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = store_cert_get_by_serial(st, serial, serial_len, &c)) != 0)
		goto out;
	if (c.status == STORE_CERT_REVOKED) {
		r = STORE_EALREADY;
		goto out;
	}
	if ((r = stmt_get(st, S_CERT_REVOKE, &s)) != 0)
		goto out;
	sqlite3_bind_blob(s, 1, serial, (int)serial_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, when);
	sqlite3_bind_int(s, 3, reason);
	if ((r = step_done(st, s)) != 0)
		goto out;
	c.status = STORE_CERT_REVOKED;
	c.revoked_at = when;
	c.reason = reason;
out:
	if (r == STORE_EALREADY) {
		/* Nothing changed; an own transaction just ends. */
		int e = wr_end(st, own, 0);
		r = e != 0 ? e : STORE_EALREADY;
	} else {
		r = wr_end(st, own, r);
	}
	if ((r == 0 || r == STORE_EALREADY) && out != NULL) {
		*out = c;
		memset(&c, 0, sizeof(c));
	}
	store_cert_clear(&c);
	return r;
}

int
store_revoked_foreach(store_t *st, store_revoked_cb cb, void *ctx)
{
	struct store_revoked e;
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || cb == NULL)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_REVOKED, &s)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		e.serial = sqlite3_column_blob(s, 0);
		e.serial_len = (size_t)sqlite3_column_bytes(s, 0);
		e.revoked_at = sqlite3_column_int64(s, 1);
		e.reason = sqlite3_column_int(s, 2);
		if ((r = cb(ctx, &e)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
out:
	stmt_done(s);
	return r;
}

/* ---- CRL ------------------------------------------------------------------ */

int
store_crl_number_next(store_t *st, uint64_t *out)
{
	sqlite3_stmt *s;
	int own, r, rc;
	if (st == NULL || out == NULL)
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, S_CRL_NEXT, &s)) != 0)
		goto out;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = (uint64_t)sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s);
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
out:
	return wr_end(st, own, r);
}

int
store_crl_save(store_t *st, uint64_t number, int64_t this_update, const unsigned char *der,
               size_t der_len)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || der == NULL || der_len == 0 || number > INT64_MAX)
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, S_CRL_SAVE, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)number);
		sqlite3_bind_int64(s, 2, this_update);
		sqlite3_bind_blob(s, 3, der, (int)der_len, SQLITE_STATIC);
		r = step_done(st, s);
	}
	return wr_end(st, own, r);
}

/* Copy a blob column into a fresh buffer with a NUL after its end. */
static int
dup_column(sqlite3_stmt *s, int col, unsigned char **out, size_t *len)
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
store_crl_load(store_t *st, uint64_t *number, int64_t *this_update, unsigned char **der,
               size_t *der_len)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_CRL_LOAD, &s)) != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r = 0;
		if (number)
			*number = (uint64_t)sqlite3_column_int64(s, 0);
		if (this_update)
			*this_update = sqlite3_column_int64(s, 1);
		if (der)
			r = dup_column(s, 2, der, der_len);
	} else {
		r = rc == SQLITE_DONE ? STORE_ENOTFOUND : map_rc(sqlite3_extended_errcode(st->db));
	}
	stmt_done(s);
	return r;
}

/* ---- Key/value tables ---------------------------------------------------------- */

static int
kv_set(store_t *st, enum stmt_id id, const char *key, const void *val, size_t len)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || !text_ok(key, 128) || (val == NULL && len != 0))
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, id, &s)) == 0) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, len ? val : "", (int)len, SQLITE_STATIC);
		r = step_done(st, s);
	}
	return wr_end(st, own, r);
}

static int
kv_get(store_t *st, enum stmt_id id, const char *key, unsigned char **val, size_t *len)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || val == NULL || !text_ok(key, 128))
		return STORE_EINVAL;
	if ((r = stmt_get(st, id, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = dup_column(s, 0, val, len);
	else
		r = rc == SQLITE_DONE ? STORE_ENOTFOUND : map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
	return r;
}

int
store_meta_set(store_t *st, const char *key, const void *val, size_t len)
{
	return kv_set(st, S_META_SET, key, val, len);
}

int
store_meta_get(store_t *st, const char *key, unsigned char **val, size_t *len)
{
	return kv_get(st, S_META_GET, key, val, len);
}

int
store_zone_meta_set(store_t *st, const char *key, const void *val, size_t len)
{
	return kv_set(st, S_ZMETA_SET, key, val, len);
}

int
store_zone_meta_get(store_t *st, const char *key, unsigned char **val, size_t *len)
{
	return kv_get(st, S_ZMETA_GET, key, val, len);
}

/* Integers are kept as decimal text so that every meta value reads back
 * the same way whatever wrote it. */
int
store_meta_set_u64(store_t *st, const char *key, uint64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return store_meta_set(st, key, buf, (size_t)n);
}

int
store_meta_get_u64(store_t *st, const char *key, uint64_t *v)
{
	unsigned char *val = NULL;
	unsigned long long x;
	char *end;
	size_t len;
	int r;
	if (v == NULL)
		return STORE_EINVAL;
	if ((r = store_meta_get(st, key, &val, &len)) != 0)
		return r;
	r = STORE_ECORRUPT;
	if (len == 0 || val[0] < '0' || val[0] > '9')
		goto out;
	x = strtoull((const char *)val, &end, 10);
	if ((size_t)(end - (char *)val) != len)
		goto out;
	*v = x;
	r = 0;
out:
	free(val);
	return r;
}

/* ---- Audit rows ------------------------------------------------------------------ */

static int
exec_seq(store_t *st, enum stmt_id id, uint64_t seq, int want_change)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || seq == 0 || seq > INT64_MAX)
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, id, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)seq);
		r = step_done(st, s);
		if (r == 0 && want_change && sqlite3_changes(st->db) == 0)
			r = STORE_ENOTFOUND;
	}
	return wr_end(st, own, r);
}

int
store_audit_append(store_t *st, uint64_t seq, const char *line, size_t len)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || line == NULL || len == 0 || len > INT32_MAX || seq == 0 ||
	    seq > INT64_MAX)
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, S_AUDIT_APPEND, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)seq);
		sqlite3_bind_text(s, 2, line, (int)len, SQLITE_STATIC);
		r = step_done(st, s);
	}
	return wr_end(st, own, r);
}

int
store_audit_last(store_t *st, uint64_t *seq, char **line, size_t *len)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_AUDIT_LAST, &s)) != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r = 0;
		if (seq)
			*seq = (uint64_t)sqlite3_column_int64(s, 0);
		if (line)
			r = dup_column(s, 1, (unsigned char **)line, len);
	} else {
		r = rc == SQLITE_DONE ? STORE_ENOTFOUND : map_rc(sqlite3_extended_errcode(st->db));
	}
	stmt_done(s);
	return r;
}

int
store_audit_count(store_t *st, uint64_t *out)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || out == NULL)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_AUDIT_COUNT, &s)) != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(s, 0);
	r = rc == SQLITE_ROW ? 0 : map_rc(sqlite3_extended_errcode(st->db));
	stmt_done(s);
	return r;
}

int
store_audit_foreach(store_t *st, uint64_t from_seq, store_audit_cb cb, void *ctx)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || cb == NULL || from_seq > INT64_MAX)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_AUDIT_FROM, &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)from_seq);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *line = (const char *)sqlite3_column_text(s, 1);
		size_t len = (size_t)sqlite3_column_bytes(s, 1);
		if ((r = cb(ctx, (uint64_t)sqlite3_column_int64(s, 0), line ? line : "", len)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
out:
	stmt_done(s);
	return r;
}

int
store_audit_intent_open(store_t *st, uint64_t seq)
{
	return exec_seq(st, S_INTENT_OPEN, seq, 0);
}

int
store_audit_intent_close(store_t *st, uint64_t seq)
{
	return exec_seq(st, S_INTENT_CLOSE, seq, 1);
}

int
store_audit_intents_open(store_t *st, uint64_t **seqs, size_t *n)
{
	uint64_t *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || seqs == NULL || n == NULL)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_INTENTS, &s)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				r = STORE_ENOMEM;
				goto out;
			}
			v = nv;
		}
		v[cnt++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
out:
	stmt_done(s);
	if (r != 0) {
		free(v);
		return r;
	}
	*seqs = v;
	*n = cnt;
	return 0;
}

/* ---- Zone and journal ---------------------------------------------------------- */

int
store_zone_put(store_t *st, const void *key, size_t klen, const void *data, size_t dlen)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || key == NULL || klen == 0 || klen > INT32_MAX || dlen > INT32_MAX ||
	    (data == NULL && dlen != 0))
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, S_ZONE_PUT, &s)) == 0) {
		sqlite3_bind_blob(s, 1, key, (int)klen, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, dlen ? data : "", (int)dlen, SQLITE_STATIC);
		r = step_done(st, s);
	}
	return wr_end(st, own, r);
}

int
store_zone_delete(store_t *st, const void *key, size_t klen)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || key == NULL || klen == 0 || klen > INT32_MAX)
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, S_ZONE_DEL, &s)) == 0) {
		sqlite3_bind_blob(s, 1, key, (int)klen, SQLITE_STATIC);
		r = step_done(st, s);
		if (r == 0 && sqlite3_changes(st->db) == 0)
			r = STORE_ENOTFOUND;
	}
	return wr_end(st, own, r);
}

int
store_zone_foreach(store_t *st, store_blob_cb cb, void *ctx)
{
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || cb == NULL)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_ZONE_ALL, &s)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		r = cb(ctx, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0),
		       sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1));
		if (r != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
out:
	stmt_done(s);
	return r;
}

int
store_journal_append(store_t *st, uint32_t serial_from, uint32_t serial_to, int64_t when,
                     const void *diff, size_t len)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || len > INT32_MAX || (diff == NULL && len != 0))
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, S_JOURNAL_ADD, &s)) == 0) {
		sqlite3_bind_int64(s, 1, serial_from);
		sqlite3_bind_int64(s, 2, serial_to);
		sqlite3_bind_blob(s, 3, len ? diff : "", (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, when);
		r = step_done(st, s);
	}
	return wr_end(st, own, r);
}

int
store_journal_foreach(store_t *st, store_journal_cb cb, void *ctx)
{
	struct store_journal_entry e;
	sqlite3_stmt *s;
	int r, rc;
	if (st == NULL || cb == NULL)
		return STORE_EINVAL;
	if ((r = stmt_get(st, S_JOURNAL_ALL, &s)) != 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		e.serial_from = (uint32_t)sqlite3_column_int64(s, 0);
		e.serial_to = (uint32_t)sqlite3_column_int64(s, 1);
		e.diff = sqlite3_column_blob(s, 2);
		e.len = (size_t)sqlite3_column_bytes(s, 2);
		e.when = sqlite3_column_int64(s, 3);
		if ((r = cb(ctx, &e)) != 0)
			goto out;
	}
	r = rc == SQLITE_DONE ? 0 : map_rc(sqlite3_extended_errcode(st->db));
out:
	stmt_done(s);
	return r;
}

int
store_journal_trim(store_t *st, size_t keep)
{
	sqlite3_stmt *s;
	int own, r;
	if (st == NULL || keep > INT64_MAX)
		return STORE_EINVAL;
	if ((r = wr_begin(st, &own)) != 0)
		return r;
	if ((r = stmt_get(st, S_JOURNAL_TRIM, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)keep);
		r = step_done(st, s);
	}
	return wr_end(st, own, r);
}
