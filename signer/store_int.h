/*
 * Internals shared by the store's source files (store.c: open, schema,
 * transactions; store_cert.c: certificates and CRL; store_rows.c: metadata,
 * audit rows, zone tables; store_read.c: readers and snapshots). Not part of
 * the API: include only from these.
 */
#ifndef REGSIGN_SIGNER_STORE_INT_H
#define REGSIGN_SIGNER_STORE_INT_H

#include <sqlite3.h>

#include "signer/store.h"

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

/* Chunk sizes of store_audit_append_rows(): 2^0 .. 2^6 rows. */
#define STORE__AUDIT_ROWS_SIZES 7

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[S_COUNT];
	int in_txn;
	int in_read;   /* store_read_begin() (store_read.c) */
	int readonly;
	/* store_audit_append_rows(): INSERTs of 1, 2, 4, ... 64 rows. */
	sqlite3_stmt *audit_rows[STORE__AUDIT_ROWS_SIZES];
	int (*pre_commit)(void *ctx);
	void *pre_commit_ctx;
	void (*on_commit)(void *ctx);
	void (*on_rollback)(void *ctx);
	void *hook_ctx;
	/* store_wal_hook_set() (store_ckpt.c). */
	store_wal_fn wal_fn;
	void *wal_arg;
};

/* Map an extended SQLite result code to enum store_error. */
int store__map_rc(int rc);
/* The prepared statement @p id of this connection (prepared on first use). */
int store__stmt_get(store_t *st, enum stmt_id id, sqlite3_stmt **out);
/* Reset a statement and clear its bindings after use. */
void store__stmt_done(sqlite3_stmt *s);
/* Step a statement that returns no rows, then reset it. */
int store__step_done(store_t *st, sqlite3_stmt *s);
/* A write outside an explicit transaction runs in its own (see store.c). */
int store__wr_begin(store_t *st, int *own);
int store__wr_end(store_t *st, int own, int r);
/* Non-empty text of at most @p max bytes. */
int store__text_ok(const char *s, size_t max);
/* Copy a blob column into a malloc'ed buffer with a NUL after its end. */
int store__dup_column(sqlite3_stmt *s, int col, unsigned char **out, size_t *len);

#endif /* REGSIGN_SIGNER_STORE_INT_H */
