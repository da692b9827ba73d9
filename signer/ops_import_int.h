/*
 * ops_import_int.h - what the two halves of IMPORT share: the import being
 * received (ops_import.c: its chunks, checked and accumulated) and the
 * commit of its final chunk (ops_import_commit.c). Internal to regsignd.
 */
#ifndef REGSIGN_OPS_IMPORT_INT_H
#define REGSIGN_OPS_IMPORT_INT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "signer/ops_ctx.h"
#include "signer/zonepub.h"

struct imp_block;

struct ops_import {
	struct ops_ctx *ctx;
	server_conn_t *conn;            /* the connection it belongs to (referenced) */
	char caller[STORE_NAME_MAX + 1];
	uint32_t caller_uid;
	uint32_t id;
	uint32_t next_seq;
	uint32_t idle_timeout;          /* seconds */
	uint64_t last_ms;               /* uv_now() of the last accepted chunk */
	uv_timer_t timer;
	int committing;                 /* the final chunk is being committed */

	struct zone_device *devs;       /* n records, cap allocated */
	int64_t *not_after;             /* parallel: certificate notAfter, 0 for hash-only */
	uint32_t *chain;                /* parallel: next record + 1 in its hash bucket */
	size_t n, cap, n_certs;
	uint32_t *buckets;              /* record + 1, 0 = empty; nbuckets a power of two */
	size_t nbuckets;
	struct imp_block *arena;
	EVP_MD_CTX *md;                 /* over the accepted records' audit lines */

	struct ops_req *final;          /* the final chunk's request, while committing */
	struct zonepub_bulk bulk;
	unsigned char sha256[32];
	char sha_hex[65];
	char detail[200];
};

/*
 * Ends the import: its records are freed, ctx->import is cleared and the
 * request-in-flight it held is released. @p why (may be NULL) is audited as
 * an "import-abandoned" event.
 */
void ops_import__discard(struct ops_import *im, const char *why);

/* The commit status of store error @p e: fatal or a plain storage failure. */
int ops_import__store_status(int e);

/* Commits the final chunk @p r of @p im, whose records are all accepted;
 * @p r is answered when the zone has published them (or failed). */
void ops_import__commit(struct ops_req *r, struct ops_import *im);

#endif
