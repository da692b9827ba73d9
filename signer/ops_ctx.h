/**
 * @file ops_ctx.h
 * @brief The front process's state and the request object shared by the
 * operation handlers (signer/ops_*.c). Internal to regsignd.
 *
 * Threads: everything here belongs to the libuv loop's thread except the
 * struct ops_writer, which belongs to the writer thread of signer/commit.h
 * (store, audit log, in-flight reservations). What both threads read — the
 * configuration, the CA certificates, a policy object a request holds a
 * reference on — is immutable while they do.
 *
 * A request (struct ops_req) is made for each frame, holds a reference on its
 * connection and on the policy in force when it arrived, and is freed after
 * its one reply. Requests that change state or must be audited go through the
 * commit pipeline; the others are answered on the loop.
 */
#ifndef REGSIGN_SIGNER_OPS_CTX_H
#define REGSIGN_SIGNER_OPS_CTX_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "policy/policy.h"
#include "policy/ratelimit.h"
#include "signer/audit.h"
#include "signer/commit.h"
#include "signer/config.h"
#include "signer/cpu_latency.h"
#include "signer/hsmlink.h"
#include "signer/proto.h"
#include "signer/server.h"
#include "signer/store.h"

/** The software name and version reported by HELLO and STATUS. */
#define OPS_SERVER_NAME "regsignd 0.1.0"

/** Log levels (syslog's order). */
enum ops_log_level {
	OPS_LOG_ERR = 3,
	OPS_LOG_WARNING = 4,
	OPS_LOG_NOTICE = 5,
	OPS_LOG_INFO = 6,
	OPS_LOG_DEBUG = 7,
};

struct buf_writer;
struct ops_zone;

/** A policy object shared by the requests that started under it. */
struct ops_policy {
	struct policy *pol;
	unsigned refs;        /* loop thread only */
};

/** A caller's token bucket; kept across reloads by caller name. */
struct ops_bucket {
	char *name;
	struct policy_ratelimit *rl; /* NULL: the caller has no limit */
};

/**
 * One caller's share of the daemon (ops_dispatch.c): its connections, its
 * requests inside the daemon, and those waiting for service in arrival order.
 * Found by caller name; lives while a connection or a request holds it, so
 * it outlasts a policy reload and is gone when the caller has nothing left.
 */
struct ops_caller_load {
	char name[72];
	unsigned refs;                 /* connections + requests counted */
	uint64_t conns;                /* open connections */
	uint64_t count;                /* requests admitted and not yet freed */
	uint64_t active;               /* of which in service */
	uint64_t last_seen;            /* uv_now of the last request admitted or finished */
	uint64_t max_queued;           /* its max-queued as last looked up */
	struct ops_req *q_head, *q_tail; /* admitted, waiting for service */
	struct ops_caller_load *ring_next; /* in the round robin of waiting callers */
	int in_ring;
	struct ops_caller_load *next;  /* ctx->loads */
};

/** One certificate being issued (first pass committed, result not yet). */
struct ops_inflight {
	char device[STORE_DEVICE_MAX + 1];
	uint32_t index;
	uint32_t old_index;            /* REISSUE: the certificate it replaces */
	unsigned char csr_sha256[32];
	struct ops_req *leader;        /* the request doing the work */
	struct ops_inflight *next;     /* hash chain */
};

#define OPS_INFLIGHT_BUCKETS 4096

/** The writer thread's state (env of the commit pipeline). */
struct ops_writer {
	struct ops_ctx *ctx;
	store_t *st;
	audit_log_t *audit;
	struct ops_inflight *inflight[OPS_INFLIGHT_BUCKETS];
};

/** The CRL cache and the requests waiting for a new CRL. */
struct ops_crl_state {
	uint8_t *der;          /* the cached CRL, NULL until one is signed */
	size_t len;
	int64_t this_update;
	int64_t next_update;
	uint64_t gen;          /* grows with each revocation */
	uint64_t built_gen;    /* gen the cached CRL covers */
	int building;          /* a new one is being made */
	struct ops_req *waiters;
};

struct ops_ctx {
	uv_loop_t *loop;
	const struct config *cfg;
	const char *exe_path;
	const char *const *module_dirs;
	int log_syslog;
	int log_level;

	struct ops_policy *policy; /* in force */
	struct ops_bucket *buckets;
	size_t n_buckets;

	X509 *issuing;             /* issuing CA certificate */
	X509 *root;                /* root CA certificate */
	EVP_PKEY *issuing_key;     /* borrowed from issuing */
	/* Checks each certificate signature the HSM returns against
	 * issuing_key, its OpenSSL context set up once (owned). */
	struct x509_verifier *issuing_verifier;
	uint8_t *chain_der[2];     /* issuing CA first, then the root */
	size_t chain_len[2];

	hsmlink_t *hsm;
	commit_t *commit;
	server_t *server;
	struct ops_writer writer;

	struct ops_crl_state crl;

	/* Audit checkpoint signing: the writer waits while the loop asks the HSM. */
	uv_async_t cp_async;
	uv_mutex_t cp_mu;
	uv_cond_t cp_cv;
	const unsigned char *cp_msg;  /* under cp_mu: to sign, set by the writer */
	size_t cp_len;
	int cp_state;                 /* 0 idle, 1 asked, 2 asked and sent, 3 signed, -1 failed */
	unsigned char cp_sig[64];
	int checkpointing;            /* loop: a checkpoint is on its way */
	uint64_t checkpoint_ms;       /* interval of periodic checkpoints */
	uv_timer_t cp_timer;
	char audit_head[65];          /* latest checkpoint's hash, "" before the first */

	/* HSM state as last seen by STATUS polling, for lost/recovered events. */
	int hsm_state;
	uint64_t hsm_recoveries;      /* the HSM process's recovery count at the last poll */
	uv_timer_t hsm_timer;

	/* Lifecycle. */
	int64_t started;              /* Unix time */
	uint64_t started_ms;          /* uv_now at start */
	int ready;                    /* serving requests */
	int stopping;                 /* SIGTERM: finish in-flight work, then stop */
	int dying;                    /* HSM process lost or store failed: exit non-zero */
	int stop_submitted;           /* "stop" recorded or on its way */
	int stop_finished;            /* "stop" and the final checkpoint are done */
	int closed;                   /* final_close ran */
	uv_timer_t finish_timer;      /* polls for the end of a shutdown */
	int exit_code;
	uint64_t inflight;            /* requests not yet answered */
	uint64_t max_inflight;        /* past it, callers over their share get BUSY */

	/* Fair service between callers (ops_dispatch.c). */
	struct ops_caller_load *loads;    /* every caller with a connection or request */
	struct ops_caller_load *ring_head, *ring_tail; /* callers with requests waiting */
	uint64_t loaded_callers;      /* callers with count > 0 */
	uint64_t service_active;      /* requests in service */
	uint64_t service_window;      /* 0: the defaults below; else both windows */
	uint64_t service_done;        /* requests out of service since service_t0 */
	uint64_t service_t0;          /* uv_now the count started */
	uint64_t service_rate;        /* requests out of service per second (smoothed) */
	int pumping;                  /* ops_service_pump is running */
	uint64_t requests;            /* requests served since start */
	uv_signal_t sig_term, sig_int, sig_hup, sig_usr1;
	int reloading;

	/* The registry zone and its DNS listener (ops_zone.c). */
	struct ops_zone *zone;        /* NULL until the start-up makes it */
	int zone_closing;             /* ops_zone_close is on its way */
	int zone_closed;              /* ... and finished */

	/* A bulk import being received (ops_import.c); NULL when none. */
	struct ops_import *import;

	/* The CPU wake-up latency limit held while requests are in (NULL: off). */
	cpu_latency_t *cpu_latency;
	int cpu_latency_warned;       /* a refused write was logged once */

	/* SHA-256 of request inputs on the loop (ops_sha256()): fetched once
	 * and its context reused, since OpenSSL 3 looks the digest up again on
	 * every one-shot call. NULL until first used; freed by final_close. */
	EVP_MD *sha256;
	EVP_MD_CTX *sha256_ctx;
};

/** A request from a client (or an audit-only item when conn is NULL). */
struct ops_req {
	struct commit_item item;       /* first: commit items are ops_reqs */
	struct ops_ctx *ctx;
	server_conn_t *conn;           /* referenced; NULL: nobody to answer */
	struct server_peer peer;
	uint8_t *frame;                /* owned copy of the frame */
	size_t frame_len;
	struct proto_request req;      /* decoded; points into frame */
	int decode_err;                /* proto_request_decode's result */
	struct ops_policy *pol;        /* referenced */
	const struct policy_caller *caller; /* from pol; NULL if not a caller any more */
	int64_t now;                   /* Unix time at arrival */

	/* What the audit record says; filled as the handler learns it. */
	const char *audit_op;          /* e.g. "issue"; NULL: not audited */
	char device[STORE_DEVICE_MAX + 1];
	uint32_t index;
	unsigned char input_sha256[32];
	const char *input_name;        /* NULL: no input hash */
	uint64_t intent;               /* the INTENT record of an allowed request, 0: none */
	const char *result_detail;     /* ops_result_submit's detail (borrowed) */

	/* A refusal: wire code, the rule that decided and a message. */
	uint32_t err_code;             /* 0: not refused */
	char rule[POLICY_RULE_MAX];
	char msg[POLICY_MESSAGE_MAX + POLICY_RULE_MAX + 8];

	struct ops_caller_load *load;  /* counted against this caller (referenced), or NULL */
	int in_service;                /* took a service slot */
	struct ops_req *q_next;        /* in its caller's waiting queue */

	void *op_state;                /* the handler's own data */
	void (*op_free)(void *op_state);
	struct ops_req *next;          /* in waiting lists (CRL) */
	uint64_t gen;                  /* CRL: the revocation generation it must see */
};

/* ---- ops_ctx.c: logging, policy, requests, replies ---- */

/** Logs a line to stderr or syslog if @p level is enabled. */
void ops_log(struct ops_ctx *ctx, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* ---- ops_policy.c: the policy in force ---- */

/** Takes / drops a reference on a policy (loop thread). */
struct ops_policy *ops_policy_ref(struct ops_policy *p);
void ops_policy_unref(struct ops_policy *p);

/**
 * Installs @p pol as the policy in force (taking it over), updating the
 * callers' rate buckets.
 * @return 0 or -1 (out of memory; nothing changed, nothing taken over).
 */
int ops_policy_install(struct ops_ctx *ctx, struct policy *pol);

/** The profile an empty ISSUE profile means for @p c, or NULL if none. */
const char *ops_policy_default_profile(const struct ops_policy *p,
				       const struct policy_caller *c);

/** The rate bucket of a caller (NULL when it has no limit). */
struct policy_ratelimit *ops_bucket_find(struct ops_ctx *ctx, const char *name);

/** Frees the rate buckets. */
void ops_buckets_free(struct ops_ctx *ctx);

/** Makes a request for a frame (copied) from @p conn. NULL on memory shortage. */
struct ops_req *ops_req_new(struct ops_ctx *ctx, server_conn_t *conn,
			    const uint8_t *frame, size_t len);

/** Frees a request, dropping its references. */
void ops_req_free(struct ops_req *r);

/** Records a refusal in @p r (code, rule, printf message). */
void ops_req_refuse(struct ops_req *r, uint32_t code, const char *rule, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/**
 * The wire code a policy refusal is answered with: malformed input (device id,
 * index, key type, arguments) is BAD_REQUEST, the rate limit RATE_LIMITED,
 * everything else DENIED.
 */
uint32_t ops_policy_wire_code(enum policy_code code);

/** Records a policy decision's refusal with wire code @p code. */
void ops_req_refuse_decision(struct ops_req *r, uint32_t code, const struct policy_decision *d);

/** Sends @p rep as the request's reply and frees the request. */
void ops_reply(struct ops_req *r, const struct proto_reply *rep);

/**
 * Answers a request whose group did not commit. COMMIT_ERR_STORAGE and the
 * like: the transaction was rolled back, so STORAGE ("nothing was changed")
 * is true. COMMIT_ERR_FATAL: the state on disk is unknown (an fsync or I/O
 * failure) and no answer would be true, so there is none: the request's
 * connection is closed and the daemon exits. Frees the request.
 */
void ops_reply_failed_commit(struct ops_req *r, int status);

/** Sends the request's recorded refusal (r->err_code) and frees the request. */
void ops_reply_refusal(struct ops_req *r);

/** Sends an ERROR reply and frees the request. */
void ops_reply_error(struct ops_req *r, uint32_t code, const char *msg);

/**
 * Audits the refusal recorded in @p r (through the commit pipeline), then
 * replies with it and frees the request.
 */
void ops_deny(struct ops_req *r);

/** Writer thread: records r's refusal as a denied request (in the current transaction). */
int ops_audit_deny(struct ops_writer *w, struct ops_req *r);

/**
 * Writer thread: the allowing INTENT record of a request that names one input
 * and no device (PUBLISH, UNPUBLISH, SIGN_RRSET); sets r->intent.
 */
int ops_audit_intent(struct ops_writer *w, struct ops_req *r, const char *detail);

/** Writer thread: commit undo of an INTENT item; forgets r->intent. */
void ops_audit_intent_undo(struct commit_item *it, void *env);

/** Writer thread: maps an audit or store error to a commit status. */
int ops_audit_status(int audit_err);

/** The caller name of a request for audit records ("" when not a caller). */
const char *ops_req_caller_name(const struct ops_req *r);

/** Fills an audit caller from a request. */
void ops_req_audit_caller(const struct ops_req *r, struct audit_caller *c);

/**
 * Writes the RESULT record of @p r's INTENT (r->intent) through the commit
 * pipeline: a failure when r->err_code is set (with r->msg), else success
 * with @p detail (may be NULL). Then @p done runs on the loop with the
 * commit status (the request is still the caller's).
 */
void ops_result_submit(struct ops_req *r, const char *detail,
		       void (*done)(struct commit_item *it, int status));

/**
 * Writer thread: the RESULT record described for ops_result_submit(), naming
 * @p zone_serial when it is not 0 (the serial that holds the change).
 */
int ops_result_write(struct ops_writer *w, struct ops_req *r, const char *detail,
		     uint32_t zone_serial);

/** Submits an audit event ("start", "reload", ...); @p done may be NULL. */
int ops_event(struct ops_ctx *ctx, const char *event, const char *detail,
	      void (*done)(struct ops_ctx *ctx, int status));

/**
 * Loop thread: SHA-256 of @p len bytes at @p data into @p out, with the
 * context's digest (fetched on first use). 0, or -1 when OpenSSL fails.
 */
int ops_sha256(struct ops_ctx *ctx, const void *data, size_t len, unsigned char out[32]);

/** Releases what ops_sha256() fetched (at the end; a later call fetches again). */
void ops_sha256_free(struct ops_ctx *ctx);

/** Appends the CA chain to a reply's chain member. */
void ops_chain_fill(struct ops_ctx *ctx, struct proto_chain *chain);

/* ---- ops_life.c: start-up, periodic work, the way down ---- */

/** The process is going down (fatal store error, HSM lost): stop and exit non-zero. */
void ops_die(struct ops_ctx *ctx, int exit_code, const char *why);

/** Called whenever a request finished; may complete a pending shutdown. */
void ops_maybe_finish(struct ops_ctx *ctx);

/** hsmlink callbacks (arg is the ctx): HELLO starts the start-up; death ends the daemon. */
void ops_life_hsm_ready(hsmlink_t *link, int status, const char *reason, void *arg);
void ops_life_hsm_death(hsmlink_t *link, int64_t exit_status, int term_signal, void *arg);

/** hsmlink_close's callback (nothing to do). */
void ops_life_hsm_closed(void *arg);

/** SIGTERM / SIGINT: finish the requests in flight, then stop with exit status 0. */
void ops_life_signal(uv_signal_t *h, int signum);

/** The commit pipeline's fatal callback (arg is the ctx). */
void ops_life_store_fatal(void *arg, int store_err);

/** SIGHUP: reload the policy (ops_reload.c). */
void ops_reload_sighup(uv_signal_t *h, int signum);

/* ---- ops_dispatch.c: frames to handlers ---- */

/** The server's callbacks, with ctx as their argument. */
extern const struct server_callbacks ops_server_callbacks;

/**
 * Requests in service at most, all callers together: the rest wait in their
 * caller's queue. While one caller alone sends, the window is what the daemon
 * serves in OPS_ALONE_WAIT_MS at its present rate (wide, so that commit
 * groups and HSM batches stay full), at least OPS_SERVICE_WINDOW_MIN and at
 * most OPS_SERVICE_WINDOW.
 */
#define OPS_SERVICE_WINDOW 256
#define OPS_ALONE_WAIT_MS 500

/**
 * The window while several callers had requests in within OPS_SHARED_MS:
 * requests are let in round robin between callers but then wait in the
 * daemon's own FIFO queues (the commit pipeline, the HSM link), so a
 * caller's request waits behind the whole window, whoever floods. The window
 * is then what the daemon serves in OPS_SHARED_WAIT_MS at its present rate,
 * at least OPS_SERVICE_WINDOW_MIN (so that groups and batches still form)
 * and at most OPS_SERVICE_WINDOW.
 */
#define OPS_SHARED_MS 1000
#define OPS_SHARED_WAIT_MS 50
#define OPS_SERVICE_WINDOW_MIN 8

/**
 * ops_req_free's part: gives back @p r's service slot and its count against
 * its caller, and lets the next waiting request in (on the next iteration).
 */
void ops_service_release(struct ops_req *r);

/* ---- handlers (each answers the request exactly once) ---- */

void ops_issue(struct ops_req *r);     /* ops_issue.c: ISSUE and REISSUE */
void ops_revoke(struct ops_req *r);    /* ops_revoke.c */
void ops_crl(struct ops_req *r);       /* ops_crl.c */

/** A revocation committed: the next CRL request signs a new CRL (ops_crl.c). */
void ops_crl_changed(struct ops_ctx *ctx);

/** Frees the CRL cache; waiting requests get UNAVAILABLE (ops_crl.c). */
void ops_crl_clear(struct ops_ctx *ctx);
void ops_status(struct ops_req *r);    /* ops_info.c */
void ops_zone_status(struct ops_req *r); /* ops_info.c: ZONE_STATUS */
void ops_publish(struct ops_req *r);   /* ops_publish.c: PUBLISH and UNPUBLISH */
void ops_sign_rrset(struct ops_req *r); /* ops_signrrset.c */
void ops_import(struct ops_req *r);    /* ops_import.c: IMPORT (bulk import) */

/** Writer thread: forgets in-flight reservations of a request (ops_issue.c). */
void ops_inflight_forget(struct ops_writer *w, struct ops_req *r);

/**
 * Frees every reservation left (after the writer thread stopped): requests
 * whose group failed fatally never ran their second pass to forget theirs.
 */
void ops_inflight_clear(struct ops_writer *w);

/* ---- ops_audit.c: checkpoints ---- */

/** Prepares checkpoint signing (cp_async etc.). @return 0 or -1. */
int ops_checkpoint_init(struct ops_ctx *ctx);

/** Closes what ops_checkpoint_init opened. */
void ops_checkpoint_close(struct ops_ctx *ctx);

/**
 * Writes a signed checkpoint (HSM status for the counts, then the signature
 * through the HSM process). @p done (may be NULL) gets 0 or an error.
 */
void ops_checkpoint(struct ops_ctx *ctx, void (*done)(struct ops_ctx *ctx, int status));

#endif
