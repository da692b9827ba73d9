/*
 * Internals shared by the audit library's source files (audit.c: records,
 * hooks, checkpoints; audit_export.c: the file and audit_log_open();
 * audit_record.c / audit_parse.c: the record codec). Not part of the API.
 */
#ifndef REGSIGN_SIGNER_AUDIT_INT_H
#define REGSIGN_SIGNER_AUDIT_INT_H

#include <stddef.h>
#include <stdint.h>

#include "signer/audit.h"

/* prev of the first record. */
#define AUDIT__ZERO_HASH "0000000000000000000000000000000000000000000000000000000000000000"

struct pending {
	char *line;
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
	int sticky;                /* export failure: returned by every later call */
	char *buf;                 /* AUDIT_LINE_MAX + 1 bytes of scratch */
};

/* Map a store error to the audit library's. */
int audit__from_store(int r);
/* fsync, AUDIT_EFSYNC on failure. */
int audit__fsync_fd(int fd);
/* Append one line (and its newline) to the file, rotating first if due. */
int audit__file_append(audit_log_t *a, uint64_t seq, const char *line, size_t len);
/* Forget the open transaction's records. */
void audit__pending_clear(audit_log_t *a);
/* The store's commit and rollback hooks. */
void audit__on_commit(void *ctx);
void audit__on_rollback(void *ctx);
/* Join the caller's transaction, or run one of our own. */
int audit__txn_enter(audit_log_t *a, int *own);
int audit__txn_leave(audit_log_t *a, int own, int r);
/* Record that the intent @p intent_seq will get no result. */
int audit__abandon(audit_log_t *a, uint64_t intent_seq);
/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0. */
size_t audit__utf8_len(const unsigned char *s, size_t n);
/* printf into @p why if it is not NULL. */
void audit__why_set(char *why, size_t whylen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif /* REGSIGN_SIGNER_AUDIT_INT_H */
