/**
 * @file store.h
 * @brief regsignd's durable state: an embedded SQLite database.
 *
 * The front process keeps everything it must not lose in one SQLite file
 * opened in WAL mode with synchronous=FULL: issued certificates and their
 * revocations, the CRL counter and the last CRL, the audit records (see
 * signer/audit.h, which owns their format), key/value metadata, and the
 * zone's records, metadata and IXFR journal (tables created now, filled by
 * the zone code later).
 *
 * Threading: a store_t is one SQLite connection. It may be used from one
 * thread at a time (the daemon's writer thread). Readers on other threads
 * open their own read-only handle with store_open() and
 * STORE_OPEN_READONLY; WAL lets them read while the writer writes.
 *
 * Transactions: store_txn_begin() / store_txn_commit() group any number of
 * writes into one durable commit (group commit: the daemon batches several
 * requests). A write made outside a transaction commits on its own. A
 * reply may be sent only after store_txn_commit() returned 0.
 *
 * Errors: every function returns 0 or a negative enum store_error value.
 * STORE_EFSYNC and STORE_EIO mean the state on disk is unknown: the daemon
 * must exit and never retry (store_error_is_fatal()).
 */
#ifndef REGSIGN_SIGNER_STORE_H
#define REGSIGN_SIGNER_STORE_H

#include <stddef.h>
#include <stdint.h>

/** Schema version kept in PRAGMA user_version. */
#define STORE_SCHEMA_VERSION 2

/** Longest device id accepted (an EID is 32 hex digits). */
#define STORE_DEVICE_MAX 64
/** Longest profile or caller name accepted. */
#define STORE_NAME_MAX 64
/** Longest certificate serial number, in bytes (RFC 5280 §4.1.2.2). */
#define STORE_SERIAL_MAX 20

/** Errors of the store library; 0 is success. */
enum store_error {
	STORE_OK = 0,
	STORE_ENOMEM = -1,    /**< out of memory */
	STORE_EINVAL = -2,    /**< bad argument (NULL, too long, empty) */
	STORE_ENOTFOUND = -3, /**< no such row */
	STORE_EEXISTS = -4,   /**< unique value taken: serial, (device, index), audit seq */
	STORE_ECONFLICT = -5, /**< (device, index) taken by a certificate of another CSR */
	STORE_EALREADY = -6,  /**< the certificate was already revoked (row returned) */
	STORE_ETXN = -7,      /**< transaction misuse: nested begin, commit without begin */
	STORE_ESCHEMA = -8,   /**< not a regsign database, or one from a newer version */
	STORE_ECORRUPT = -9,  /**< SQLite reports a malformed database */
	STORE_EFULL = -10,    /**< disk or database full */
	STORE_EBUSY = -11,    /**< database locked by another process */
	STORE_EREADONLY = -12, /**< write on a read-only handle */
	STORE_EFSYNC = -13,   /**< fsync failed: durability unknown; exit, never retry */
	STORE_EIO = -14,      /**< other I/O error: state unknown; exit */
	STORE_ESQL = -15,     /**< any other SQLite error */
	STORE_EDURABILITY = -16, /**< WAL or synchronous=FULL could not be set */
};

/** Static English text for an error code; never NULL. */
const char *store_strerror(int err);

/** Non-zero when @p err leaves the on-disk state unknown (EFSYNC, EIO, ECORRUPT). */
int store_error_is_fatal(int err);

typedef struct store store_t;

/** Flags for store_open(). */
enum store_open_flags {
	STORE_OPEN_READONLY = 1 << 0, /**< reader connection: no schema changes, no writes */
};

/** Options for store_open(); a NULL pointer means all defaults. */
struct store_open_opts {
	unsigned flags;          /**< enum store_open_flags */
	const char *vfs;         /**< SQLite VFS name, NULL for the default (tests inject faults) */
	int busy_timeout_ms;     /**< wait this long for another connection's lock; 0 = 5000 */
};

/**
 * Open (creating if needed) the database at @p path.
 *
 * A new file gets the current schema; an older schema is migrated in one
 * transaction; a newer one or a foreign SQLite file is refused
 * (STORE_ESCHEMA). Sets journal_mode=WAL and synchronous=FULL and checks
 * that both took effect (STORE_EDURABILITY otherwise).
 *
 * @param out receives the handle, owned by the caller (store_close()).
 */
int store_open(store_t **out, const char *path, const struct store_open_opts *opts);

/** Close the connection. Rolls back an open transaction. NULL is a no-op. */
void store_close(store_t *st);

/** What the connection really runs with, read back with PRAGMA queries. */
struct store_durability {
	char journal_mode[16];   /**< "wal" expected */
	int synchronous;         /**< 2 = FULL expected */
	int user_version;        /**< schema version */
};

/** Read the durability settings back from SQLite. */
int store_durability_get(store_t *st, struct store_durability *out);

/* ---- Transactions --------------------------------------------------- */

/** Start a write transaction (BEGIN IMMEDIATE). STORE_ETXN if one is open. */
int store_txn_begin(store_t *st);

/**
 * Commit the open transaction durably. On success the registered commit
 * hook runs (see store_txn_hooks_set()). On failure the transaction is
 * rolled back when SQLite allows it; a fatal error means the daemon exits.
 */
int store_txn_commit(store_t *st);

/** Roll the open transaction back; the rollback hook runs. STORE_ETXN if none. */
int store_txn_rollback(store_t *st);

/** Non-zero while a transaction opened by store_txn_begin() is open. */
int store_txn_active(const store_t *st);

/**
 * Register functions called after every successful commit and after every
 * rollback (of explicit transactions, and of the implicit one a single
 * write outside a transaction is). The audit log uses them to export only
 * committed records. One pair per handle; NULLs unregister. The hooks must
 * not start or end transactions.
 */
void store_txn_hooks_set(store_t *st, void (*on_commit)(void *ctx),
                         void (*on_rollback)(void *ctx), void *ctx);

/* ---- Certificates ------------------------------------------------- */

enum store_cert_status {
	STORE_CERT_VALID = 0,
	STORE_CERT_REVOKED = 1,
};

/**
 * One issued certificate. As input of store_cert_insert() every pointer is
 * borrowed. As output of a lookup, @c der is allocated for the caller:
 * release it with store_cert_clear().
 */
struct store_cert {
	char device[STORE_DEVICE_MAX + 1];  /**< device id, lowercase hex */
	uint32_t index;                     /**< certificate index, >= 1 */
	unsigned char serial[STORE_SERIAL_MAX];
	size_t serial_len;
	int status;                         /**< enum store_cert_status */
	int64_t revoked_at;                 /**< Unix time; 0 while valid */
	int reason;                         /**< RFC 5280 CRLReason code when revoked */
	uint32_t caller_uid;
	char caller_name[STORE_NAME_MAX + 1];
	unsigned char *der;                 /**< the certificate, DER */
	size_t der_len;
	unsigned char csr_sha256[32];       /**< SHA-256 of the CSR's DER */
	char profile[STORE_NAME_MAX + 1];
	int64_t not_before;                 /**< Unix time */
	int64_t not_after;                  /**< Unix time */
	int64_t issued_at;                  /**< Unix time */
};

/** Free the DER of a looked-up certificate and zero the struct. NULL is a no-op. */
void store_cert_clear(struct store_cert *c);

/**
 * Record a newly issued certificate (status is taken as VALID).
 * @return STORE_EEXISTS if the serial or (device, index) is already used
 *         (indexes are never reused, even after revocation); STORE_EINVAL
 *         for an empty device id, index 0, or an empty serial or DER.
 */
int store_cert_insert(store_t *st, const struct store_cert *c);

/** Look up by (device, index). STORE_ENOTFOUND if never issued. */
int store_cert_get_by_index(store_t *st, const char *device, uint32_t index,
                            struct store_cert *out);

/** Look up by serial number bytes. STORE_ENOTFOUND if unknown. */
int store_cert_get_by_serial(store_t *st, const unsigned char *serial, size_t serial_len,
                             struct store_cert *out);

/**
 * Idempotency check before issuing. Returns 0 and fills @p out when
 * (device, index) already holds a certificate made from the same CSR (the
 * request is a repeat: answer with it); STORE_ECONFLICT (out untouched)
 * when the index holds a certificate of another CSR; STORE_ENOTFOUND when
 * the index was never used.
 */
int store_cert_find_repeat(store_t *st, const char *device, uint32_t index,
                           const unsigned char csr_sha256[32], struct store_cert *out);

/** 1 if a certificate with this serial exists, 0 if not, or a negative error. */
int store_serial_exists(store_t *st, const unsigned char *serial, size_t serial_len);

/** Per-device counters. */
struct store_device_info {
	uint32_t live;          /**< valid (not revoked) and not expired at @c now */
	uint32_t total;         /**< certificates ever issued to the device */
	uint32_t highest_index; /**< highest index ever used; 0 if none */
};

/** Counters for @p device at Unix time @p now (all zero for an unknown device). */
int store_device_info_get(store_t *st, const char *device, int64_t now,
                          struct store_device_info *out);

/**
 * Callback for iterations: return 0 to continue, anything else to stop;
 * the iteration then returns that value. The struct and its buffers are
 * valid only during the call.
 */
typedef int (*store_cert_cb)(void *ctx, const struct store_cert *c);

/** Every certificate of @p device, by index. */
int store_cert_foreach_device(store_t *st, const char *device, store_cert_cb cb, void *ctx);

/**
 * Mark the certificate with this serial revoked at @p when for @p reason.
 * @param out if not NULL, receives the row after the call (caller clears it).
 * @return STORE_ENOTFOUND for an unknown serial; STORE_EALREADY when it was
 *         already revoked: nothing changes and @p out holds the first
 *         revocation's time and reason (revoking again answers as the first time).
 */
int store_cert_revoke(store_t *st, const unsigned char *serial, size_t serial_len,
                      int64_t when, int reason, struct store_cert *out);

/** One CRL entry. Valid only during the callback. */
struct store_revoked {
	const unsigned char *serial;
	size_t serial_len;
	int64_t revoked_at;
	int reason;
};

typedef int (*store_revoked_cb)(void *ctx, const struct store_revoked *r);

/** Every revoked certificate, ordered by revocation time then serial (for the CRL). */
int store_revoked_foreach(store_t *st, store_revoked_cb cb, void *ctx);

/* ---- CRL -------------------------------------------------------------- */

/** Increment the CRL number and return the new value (the first is 1). */
int store_crl_number_next(store_t *st, uint64_t *out);

/** Keep the last signed CRL (replaces the previous one). */
int store_crl_save(store_t *st, uint64_t number, int64_t this_update,
                   const unsigned char *der, size_t der_len);

/**
 * Load the last signed CRL. @p der is allocated for the caller (free()).
 * Any output pointer may be NULL. STORE_ENOTFOUND if none was saved.
 */
int store_crl_load(store_t *st, uint64_t *number, int64_t *this_update,
                   unsigned char **der, size_t *der_len);

/* ---- Key/value metadata ------------------------------------------------ */

/** Set @p key (a short ASCII name) to a byte value, replacing any old one. */
int store_meta_set(store_t *st, const char *key, const void *val, size_t len);

/**
 * Get @p key's value into a malloc'ed buffer (NUL-terminated one byte past
 * @p len, so text values can be used as strings). STORE_ENOTFOUND if unset.
 */
int store_meta_get(store_t *st, const char *key, unsigned char **val, size_t *len);

/** Integer convenience forms of the two above. */
int store_meta_set_u64(store_t *st, const char *key, uint64_t v);
int store_meta_get_u64(store_t *st, const char *key, uint64_t *v);

/* ---- Audit records (format owned by signer/audit.h) ----------------------- */

/** Append one audit line with sequence number @p seq. STORE_EEXISTS if seq is taken. */
int store_audit_append(store_t *st, uint64_t seq, const char *line, size_t len);

/**
 * The latest audit record: its seq and a malloc'ed NUL-terminated copy of
 * its line (either output may be NULL). STORE_ENOTFOUND when there is none.
 */
int store_audit_last(store_t *st, uint64_t *seq, char **line, size_t *len);

/** Number of audit records. */
int store_audit_count(store_t *st, uint64_t *out);

typedef int (*store_audit_cb)(void *ctx, uint64_t seq, const char *line, size_t len);

/** Audit records with seq >= @p from_seq, in order. */
int store_audit_foreach(store_t *st, uint64_t from_seq, store_audit_cb cb, void *ctx);

/** Mark the record @p seq as an intent still waiting for its result. */
int store_audit_intent_open(store_t *st, uint64_t seq);

/** The intent @p seq got its result (or was abandoned). STORE_ENOTFOUND if not open. */
int store_audit_intent_close(store_t *st, uint64_t seq);

/**
 * The open intents' seqs, ascending, in a malloc'ed array (NULL when
 * none) that the caller frees.
 */
int store_audit_intents_open(store_t *st, uint64_t **seqs, size_t *n);

/* ---- Zone (used by the zone code later) ----------------------------------- */

/** Insert or replace the zone entry @p key. */
int store_zone_put(store_t *st, const void *key, size_t klen, const void *data, size_t dlen);

/** Delete the zone entry @p key. STORE_ENOTFOUND if absent. */
int store_zone_delete(store_t *st, const void *key, size_t klen);

typedef int (*store_blob_cb)(void *ctx, const void *key, size_t klen,
                             const void *data, size_t dlen);

/** Every zone entry in key order (memcmp order of the keys). */
int store_zone_foreach(store_t *st, store_blob_cb cb, void *ctx);

/** Zone metadata (e.g. the serial): same contract as store_meta_set/get. */
int store_zone_meta_set(store_t *st, const char *key, const void *val, size_t len);
int store_zone_meta_get(store_t *st, const char *key, unsigned char **val, size_t *len);

/** Append one IXFR journal entry (the diff from @p serial_from to @p serial_to). */
int store_journal_append(store_t *st, uint32_t serial_from, uint32_t serial_to,
                         int64_t when, const void *diff, size_t len);

/** One journal entry; valid during the callback only. */
struct store_journal_entry {
	uint32_t serial_from;
	uint32_t serial_to;
	int64_t when;
	const void *diff;
	size_t len;
};

typedef int (*store_journal_cb)(void *ctx, const struct store_journal_entry *e);

/** Journal entries in the order they were appended. */
int store_journal_foreach(store_t *st, store_journal_cb cb, void *ctx);

/** Drop all but the newest @p keep journal entries. */
int store_journal_trim(store_t *st, size_t keep);

/* ---- Bulk import (signer/store_import.c) ---------------------------------- */

/**
 * Imported devices (IMPORT) are rows of the same certs and devices tables
 * as issued certificates, so lookups by device and index, the highest index
 * ever used and per-device counts include them. Their profile is
 * STORE_IMPORT_PROFILE and csr_sha256 holds the certificate's SHA-256 (there
 * was no CSR). A record imported with its certificate's hash only has no
 * DER (der_len 0), notBefore 0, notAfter STORE_IMPORT_NO_EXPIRY and a
 * synthetic serial of STORE_IMPORT_SERIAL_LEN bytes that no certificate can
 * carry (it starts 0x00 0x01, not a DER INTEGER): revoking it marks the row
 * revoked like any other, but a CRL must leave it out.
 */
#define STORE_IMPORT_PROFILE "import"
#define STORE_IMPORT_SERIAL_LEN 18
/** 9999-12-31T23:59:59Z (RFC 5280's "no well-defined expiration date"). */
#define STORE_IMPORT_NO_EXPIRY INT64_C(253402300799)

/** One imported device; every pointer is borrowed. */
struct store_import_row {
	const char *device;                 /**< lowercase hex */
	uint32_t index;                     /**< >= 1 */
	const unsigned char *serial;        /**< the certificate's, or the synthetic one */
	size_t serial_len;
	const unsigned char *cert_sha256;   /**< 32 bytes */
	const unsigned char *der;           /**< the certificate, or NULL (hash only) */
	size_t der_len;
	int64_t not_before, not_after;      /**< Unix time */
	int64_t issued_at;                  /**< when it was imported */
	uint32_t caller_uid;
	const char *caller_name;            /**< the importing caller */
};

/** Prepared statements of one import; one thread at a time, like its store. */
typedef struct store_import store_import_t;

/** The synthetic serial of the hash-only record (@p device, @p index). */
void store_import_synthetic_serial(const char *device, uint32_t index,
                                   unsigned char out[STORE_IMPORT_SERIAL_LEN]);

/** 1 if @p serial is a synthetic serial (a hash-only import: no CRL entry), else 0. */
int store_import_serial_is_synthetic(const unsigned char *serial, size_t len);

/**
 * Prepares an import on @p st (the writer's connection). *@p out is freed
 * with store_import_end() before the store is closed.
 */
int store_import_begin(store_t *st, store_import_t **out);

/** Frees what store_import_begin() made; NULL is a no-op. */
void store_import_end(store_import_t *h);

/**
 * Would this row collide? 0: no; 1: (device, index) was used already (indexes
 * are never reused, revoked or not); 2: the serial is taken; or an error.
 */
int store_import_conflict(store_import_t *h, const char *device, uint32_t index,
                          const unsigned char *serial, size_t serial_len);

/**
 * Inserts one imported device (status valid) and raises the device's highest
 * index. Only inside an open transaction (STORE_ETXN otherwise).
 * @return 0, STORE_EINVAL, STORE_ETXN, STORE_EEXISTS (collision), or another error.
 */
int store_import_insert(store_import_t *h, const struct store_import_row *row);

/**
 * 1 if some certificate (issued or imported) is valid and unexpired at
 * @p now, i.e. the zone may hold device records; 0 if none; or an error.
 */
int store_import_live_any(store_t *st, int64_t now);

/* ---- Batched audit rows and the pre-commit hook (appended) ---------------- */

/** One audit row for store_audit_append_rows(); the line is borrowed. */
struct store_audit_row {
	uint64_t seq;
	const char *line;
	size_t len;
};

/**
 * Append @p n audit rows in as few INSERT statements as possible (one per
 * power-of-two chunk of at most 64 rows, each statement prepared once), in
 * the open transaction or in one of its own. Same checks and errors as
 * store_audit_append(); on an error none of the rows of the failed chunk
 * is written, earlier chunks are (the caller rolls back).
 */
int store_audit_append_rows(store_t *st, const struct store_audit_row *rows, size_t n);

/**
 * Register a function called just before every COMMIT of a transaction
 * opened by store_txn_begin() (the audit log writes its rows there, in one
 * batch per transaction). A non-zero return, a store error, rolls the
 * transaction back and store_txn_commit() returns it. It may write, but must
 * not start or end transactions. NULL unregisters. One per handle.
 */
void store_txn_precommit_set(store_t *st, int (*pre_commit)(void *ctx), void *ctx);


/* ---- WAL checkpoints (appended; store_ckpt.c) ----------------------------- */

/**
 * A connection of its own to a store's database file that only copies WAL
 * frames into the database (a checkpoint), so that another thread can do it
 * while the store's owner keeps writing. Opaque.
 */
typedef struct store_ckpt store_ckpt_t;

/**
 * Open a checkpoint connection to the file of @p st (same path, same VFS).
 * Sets @p *out to NULL and returns 0 when there is nothing to checkpoint
 * (a database in memory, or one not in WAL mode). Call from the thread that
 * owns @p st, before handing @p *out to another thread; the caller frees
 * @p *out with store_ckpt_close().
 * @return 0, STORE_ENOMEM, or the SQLite error mapped (opening, reading).
 */
int store_ckpt_open(store_t *st, store_ckpt_t **out);

/** Close a checkpoint connection; NULL is a no-op. */
void store_ckpt_close(store_ckpt_t *ck);

/**
 * A PASSIVE checkpoint on @p ck: copies the frames no reader needs without
 * waiting for or blocking a writer. @p done (may be NULL) gets the number of
 * WAL frames checkpointed now in all.
 * @return 0; STORE_EBUSY when another checkpoint or a lock was in the way
 *         (try later); any other error as store_error_is_fatal() classifies
 *         it (an I/O error leaves the database file in an unknown state).
 */
int store_ckpt_run(store_ckpt_t *ck, int *done);

/** The same PASSIVE checkpoint on the store's own connection (its thread). */
int store_checkpoint(store_t *st, int *done);

/**
 * Called on the store's thread after every COMMIT that wrote the WAL, with
 * the frames now in it. It may call store_checkpoint() on the same handle.
 */
typedef void (*store_wal_fn)(void *arg, int frames);

/**
 * Replace SQLite's automatic checkpoint of @p st with @p fn (the caller then
 * checkpoints). @p fn NULL gives the automatic checkpoint back (SQLite's
 * default threshold of 1000 frames).
 */
void store_wal_hook_set(store_t *st, store_wal_fn fn, void *arg);

/* ---- Readers and snapshots (appended; store_read.c) ----------------------- */

/**
 * Open a read-only connection to the database file of @p st (same path, same
 * VFS), for a thread other than the one that owns @p st. Sets @p *out to
 * NULL and returns 0 when @p st is a database in memory (no other connection
 * can see it). Call from the thread that owns @p st; the caller closes
 * @p *out with store_close().
 * @return 0, STORE_ENOMEM, or an error of store_open().
 */
int store_reader_open(store_t *st, store_t **out);

/**
 * Begin a read transaction on @p st: every read until store_read_end() sees
 * the database as committed at this call, whatever other connections commit
 * meanwhile (WAL). Works on a read-only handle.
 * @return 0, STORE_ETXN (a transaction or read is open), or the error mapped.
 */
int store_read_begin(store_t *st);

/** End the read transaction of store_read_begin(). STORE_ETXN if none. */
int store_read_end(store_t *st);

/**
 * Every zone entry whose key starts with @p prefix (@p plen >= 1 bytes), in
 * key order (memcmp order), without reading the others. Stops at the first
 * non-zero return of @p cb and returns it.
 * @return 0, the callback's value, STORE_EINVAL, STORE_ENOMEM, or the error mapped.
 */
int store_zone_foreach_prefix(store_t *st, const void *prefix, size_t plen, store_blob_cb cb,
                              void *ctx);

#endif /* REGSIGN_SIGNER_STORE_H */
