/*
 * Internals shared by the audit library's source files (audit.c: records,
 * hooks, checkpoints; audit_export.c: the file and audit_log_open();
 * audit_record.c / audit_parse.c: the record codec). Not part of the API.
 */
#ifndef REGSIGN_SIGNER_AUDIT_INT_H
#define REGSIGN_SIGNER_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "signer/audit.h"
#include "signer/audit_record.h"

/* prev of the first record. */
#define AUDIT__ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

/* A line of the open transaction: at pbuf + off, len bytes, then its newline. */
struct pending {
	size_t off;
	size_t len;
	uint64_t seq;
};

struct audit_log {
	store_t *st;
	char *path;
	uint64_t rotate_bytes;
	unsigned flags;
	int fd;
	uint64_t file_size;
	uint64_t file_first_seq;   /* seq of the current file's first line, 0 if empty */
	/* committed */
	uint64_t seq;
	char prev[65];
	int has_head;
	char head[65];
	uint64_t head_seq;
	/* added by the open transaction */
	uint64_t pend_seq;
	char pend_prev[65];
	int pend_has_head;
	char pend_head[65];
	uint64_t pend_head_seq;
	struct pending *pend;
	size_t npend, cappend;
	/* The open transaction's lines, each with its newline, back to back:
	 * formatted here in place, stored from here, and written to the file
	 * from here in one write() per commit (no copy, no malloc per record). */
	char *pbuf;
	size_t plen, pcap;
	/* The rows handed to the store at the commit (a->pend's lines). */
	struct store_audit_row *rows;
	size_t caprows;
	/* The record being built by audit_request() and its siblings. */
	struct audit_record rec;
	/* audit_time_now()'s text up to the seconds, for the second it names:
	 * gmtime_r() and strftime() run once a second instead of per record. */
	int64_t time_sec;
	char time_prefix[20];
	/* The open intents, committed and pending, in ascending seq order (a
	 * new intent always has the highest seq). A closed one keeps its place
	 * with AUDIT__CLOSED set until a commit compacts the array, so that a
	 * rollback can reopen it. This replaces a table of open intents in the
	 * store: an INSERT and a DELETE per request. After a crash the set is
	 * rebuilt from the records themselves (audit_export.c), from the seq
	 * kept in the meta key "audit.open_from", which each checkpoint moves to
	 * its lowest open intent. */
	uint64_t *open;
	size_t nopen, capopen, nclosed;
	/* The open transaction's changes to a->open, for a rollback to undo in
	 * reverse: a seq with AUDIT__UNDO_OPEN was opened, else it was closed. */
	uint64_t *undo;
	size_t nundo, capundo;
	/* The seq up to which "audit.open_from" was last moved on: a commit
	 * moves it again once AUDIT__MARK_EVERY records have passed, so the
	 * scan after a crash stays short between checkpoints too. */
	uint64_t mark_at;
	int sticky;                /* export failure: returned by every later call */
	char *buf;                 /* AUDIT_LINE_MAX + 1 bytes of scratch */
	/* SHA-256 fetched once: OpenSSL 3 looks the digest up again on every
	 * one-shot SHA256() call, which cost as much as hashing a record. */
	EVP_MD *sha256;
	EVP_MD_CTX *mdctx;
};

/* Flag bits on the seqs of a->open and a->undo (seqs stay below 2^62). */
#define AUDIT__CLOSED (UINT64_C(1) << 63)
#define AUDIT__UNDO_OPEN (UINT64_C(1) << 63)

/* Records between moves of "audit.open_from" by the pre-commit hook. */
#define AUDIT__MARK_EVERY 4096

/* Meta key: every intent below this seq has its result or abandoned record. */
#define AUDIT__OPEN_FROM_KEY "audit.open_from"

/* Mark @p seq (above every seq in the set) an open intent; undone by a rollback. */
int audit__open_add(audit_log_t *a, uint64_t seq);
/* Close the open intent @p seq; AUDIT_ENOINTENT if it is not open. */
int audit__open_close(audit_log_t *a, uint64_t seq);
/* The lowest open intent, or 0 if there is none. */
uint64_t audit__open_lowest(const audit_log_t *a);
/* Map a store error to the audit library's. */
int audit__from_store(int r);
/* fsync, AUDIT_EFSYNC on failure. */
int audit__fsync_fd(int fd);
/* Append one line (and its newline) to the file, rotating first if due. */
int audit__file_append(audit_log_t *a, uint64_t seq, const char *line, size_t len);
/* Append the open transaction's lines (a->pend, a->pbuf) to the file, in as
 * few writes as rotation allows. */
int audit__file_append_pending(audit_log_t *a);
/* audit_time_now() with the handle's per-second cache (same output). */
void audit__time_now(audit_log_t *a, char out[25]);
/* Forget the open transaction's records. */
void audit__pending_clear(audit_log_t *a);
/* The store's commit and rollback hooks. */
void audit__on_commit(void *ctx);
void audit__on_rollback(void *ctx);
/* The store's pre-commit hook: the transaction's records in one INSERT. */
int audit__pre_commit(void *ctx);
/* Join the caller's transaction, or run one of our own. */
int audit__txn_enter(audit_log_t *a, int *own);
int audit__txn_leave(audit_log_t *a, int own, int r);
/* Record that the intent @p intent_seq will get no result. */
int audit__abandon(audit_log_t *a, uint64_t intent_seq);
/* audit_line_hash() with the handle's digest and context (same output). */
void audit__line_hash(audit_log_t *a, const char *line, size_t len, char hex[65]);
/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0. */
size_t audit__utf8_len(const unsigned char *s, size_t n);
/* printf into @p why if it is not NULL. */
void audit__why_set(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* REGSIGN_SIGNER_AUDIT_INT_H */
