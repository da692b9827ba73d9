/*
 * ops_audit.c - signed audit checkpoints.
 *
 * A checkpoint records the head of the audit chain, the record count and the
 * signatures made per key role, signed by the audit key through the HSM
 * process (kind CHECKPOINT: the HSM process lets the audit key sign nothing
 * else). It runs on the writer thread outside any transaction, as an item of
 * its own: the writer builds it (audit_checkpoint_begin), hands the bytes to
 * the loop and waits while the loop asks the HSM process, then stores it
 * (audit_checkpoint_end). Waiting keeps other commits out between begin and
 * end, so the checkpoint is never stale; the wait is one HSM round trip.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/ops_ctx.h"

/* cp_state values. */
enum {
	CP_IDLE = 0,
	CP_ASKED = 1,   /* the writer has bytes to sign */
	CP_SENT = 2,    /* the loop sent them to the HSM process */
	CP_SIGNED = 3,  /* cp_sig holds the signature */
	CP_FAILED = -1,
};

struct cp_job {
	struct commit_item item;
	struct ops_ctx *ctx;
	struct audit_role_count counts[AUDIT_ROLES_MAX];
	char roles[AUDIT_ROLES_MAX][HSMPROTO_MAX_ROLE + 1];
	size_t n;
	char head[65];
	int err;       /* audit error, 0 when written */
	int skipped;   /* nothing new since the last checkpoint */
	void (*done)(struct ops_ctx *ctx, int status);
};

static void
cp_signal(struct ops_ctx *ctx, int state, const unsigned char *sig)
{
	uv_mutex_lock(&ctx->cp_mu);
	if (sig)
		memcpy(ctx->cp_sig, sig, 64);
	ctx->cp_state = state;
	uv_cond_signal(&ctx->cp_cv);
	uv_mutex_unlock(&ctx->cp_mu);
}

static void
cp_sign_cb(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct ops_ctx *ctx = arg;

	if (n == 1 && res[0].status == HSMPROTO_ST_OK && res[0].value_len == 64) {
		cp_signal(ctx, CP_SIGNED, res[0].value);
	} else {
		ops_log(ctx, OPS_LOG_ERR, "the HSM did not sign the audit checkpoint: %s %s",
			n == 1 ? hsmproto_status_name(res[0].status) : "?", n == 1 ? res[0].reason : "");
		cp_signal(ctx, CP_FAILED, NULL);
	}
}

/* Loop: the writer waits for a signature of cp_msg. */
static void
cp_async_cb(uv_async_t *a)
{
	struct ops_ctx *ctx = a->data;
	struct hsmlink_sign_req q;
	int asked;

	uv_mutex_lock(&ctx->cp_mu);
	asked = ctx->cp_state == CP_ASKED;
	if (asked) {
		ctx->cp_state = CP_SENT;
		q.role = "audit";
		q.kind = HSMPROTO_KIND_CHECKPOINT;
		q.format = HSMPROTO_FORMAT_RAW;
		q.data = ctx->cp_msg;
		q.len = ctx->cp_len;
	}
	uv_mutex_unlock(&ctx->cp_mu);
	/* hsmlink copies the bytes before it returns; the writer keeps them till then. */
	if (asked && hsmlink_sign(ctx->hsm, &q, 1, cp_sign_cb, ctx) != HSMLINK_OK)
		cp_signal(ctx, CP_FAILED, NULL);
}

/* Writer thread: gets the loop to sign, and waits. */
static int
cp_sign_wait(struct ops_ctx *ctx, const unsigned char *msg, size_t len, unsigned char sig[64])
{
	int state;

	uv_mutex_lock(&ctx->cp_mu);
	ctx->cp_msg = msg;
	ctx->cp_len = len;
	ctx->cp_state = CP_ASKED;
	uv_mutex_unlock(&ctx->cp_mu);
	uv_async_send(&ctx->cp_async);
	uv_mutex_lock(&ctx->cp_mu);
	while (ctx->cp_state == CP_ASKED || ctx->cp_state == CP_SENT)
		uv_cond_wait(&ctx->cp_cv, &ctx->cp_mu);
	state = ctx->cp_state;
	if (state == CP_SIGNED)
		memcpy(sig, ctx->cp_sig, 64);
	ctx->cp_state = CP_IDLE;
	ctx->cp_msg = NULL;
	uv_mutex_unlock(&ctx->cp_mu);
	return state == CP_SIGNED ? 0 : -1;
}

static int
cp_run(struct commit_item *it, void *env)
{
	struct cp_job *j = (struct cp_job *)it;
	struct ops_writer *w = env;
	audit_checkpoint_pending_t *p = NULL;
	const unsigned char *msg = NULL;
	unsigned char sig[64];
	uint64_t head_seq = 0;
	size_t len = 0;
	int e;

	if (audit_head_get(w->audit, NULL, &head_seq) == 0 && head_seq == audit_last_seq(w->audit)) {
		j->skipped = 1; /* the latest record is a checkpoint already */
		return COMMIT_OK;
	}
	e = audit_checkpoint_begin(w->audit, j->counts, j->n, &p, &msg, &len);
	if (e == 0) {
		if (cp_sign_wait(w->ctx, msg, len, sig) == 0) {
			e = audit_checkpoint_end(w->audit, p, sig, j->head);
		} else {
			audit_checkpoint_abort(p);
			e = AUDIT_ESIGN;
		}
	}
	j->err = e;
	return audit_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_OK;
}

static void
cp_done(struct commit_item *it, int status)
{
	struct cp_job *j = (struct cp_job *)it;
	struct ops_ctx *ctx = j->ctx;
	int r = status != COMMIT_OK ? status : j->err;

	if (r == 0 && !j->skipped) {
		memcpy(ctx->audit_head, j->head, sizeof(ctx->audit_head));
		ops_log(ctx, OPS_LOG_INFO, "audit checkpoint %s", j->head);
	} else if (r != 0) {
		ops_log(ctx, OPS_LOG_ERR, "audit checkpoint failed: %s",
			status != COMMIT_OK ? "store failure" : audit_strerror(j->err));
	}
	if (j->done)
		j->done(ctx, r);
	free(j);
}

static void
cp_submit(struct cp_job *j)
{
	j->item.run = cp_run;
	j->item.done = cp_done;
	j->item.flags = COMMIT_ALONE;
	commit_submit(j->ctx->commit, &j->item);
}

/* Counts per role from the HSM process, under the HSM's own role names. */
static void
cp_status_cb(void *arg, int status, const struct hsmproto_status *st)
{
	struct cp_job *j = arg;

	for (size_t i = 0; status == HSMPROTO_ST_OK && st && i < st->n_roles && j->n < AUDIT_ROLES_MAX;
	     i++) {
		snprintf(j->roles[j->n], sizeof(j->roles[j->n]), "%s", st->roles[i].role);
		j->counts[j->n].role = j->roles[j->n];
		j->counts[j->n].count = st->roles[i].signatures;
		j->n++;
	}
	cp_submit(j);
}

void
ops_checkpoint(struct ops_ctx *ctx, void (*done)(struct ops_ctx *ctx, int status))
{
	struct cp_job *j = calloc(1, sizeof(*j));

	if (j == NULL) {
		if (done)
			done(ctx, AUDIT_ENOMEM);
		return;
	}
	j->ctx = ctx;
	j->done = done;
	if (hsmlink_status(ctx->hsm, cp_status_cb, j) != HSMLINK_OK)
		cp_submit(j); /* no counts: the signature will fail and say why */
}

int
ops_checkpoint_init(struct ops_ctx *ctx)
{
	if (uv_mutex_init(&ctx->cp_mu) != 0)
		return -1;
	if (uv_cond_init(&ctx->cp_cv) != 0) {
		uv_mutex_destroy(&ctx->cp_mu);
		return -1;
	}
	if (uv_async_init(ctx->loop, &ctx->cp_async, cp_async_cb) != 0) {
		uv_cond_destroy(&ctx->cp_cv);
		uv_mutex_destroy(&ctx->cp_mu);
		return -1;
	}
	ctx->cp_async.data = ctx;
	return 0;
}

static void
cp_async_closed(uv_handle_t *h)
{
	struct ops_ctx *ctx = h->data;

	uv_cond_destroy(&ctx->cp_cv);
	uv_mutex_destroy(&ctx->cp_mu);
}

void
ops_checkpoint_close(struct ops_ctx *ctx)
{
	uv_close((uv_handle_t *)&ctx->cp_async, cp_async_closed);
}
