/*
 * ops_life.c - regsignd's life: start-up driven by the HSM process's answers
 * (HELLO, the issuing-ca public key, the zone loaded and its DNS listener
 * up, the "start" record, a first signed checkpoint, then the socket),
 * periodic checkpoints and HSM state polling, and the way down (SIGTERM:
 * requests in flight finish, the zone file is written and the zone closed,
 * "stop", a final checkpoint; HSM process or store lost: in-flight requests
 * answered, the zone closed, exit 1).
 */
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signer/ops_ctx.h"
#include "signer/ops_zone.h"

/* How often the HSM's state is polled for lost/recovered events. */
#define HSM_POLL_MS 2000

static void shutdown_begin(struct ops_ctx *ctx);

/* ---- lifecycle ---- */

void
ops_life_hsm_closed(void *arg)
{
	(void)arg;
}

static void
server_closed(void *arg)
{
	struct ops_ctx *ctx = arg;

	ctx->server = NULL;
}

/* Everything is finished: release it all; uv_run returns when the handles are closed. */
static void
final_close(struct ops_ctx *ctx)
{
	if (ctx->closed)
		return;
	ctx->closed = 1;
	commit_close(ctx->commit);
	ctx->commit = NULL;
	ops_inflight_clear(&ctx->writer);
	audit_log_close(ctx->writer.audit);
	ctx->writer.audit = NULL;
	store_close(ctx->writer.st);
	ctx->writer.st = NULL;
	ops_checkpoint_close(ctx);
	ops_sha256_free(ctx);
	cpu_latency_close(ctx->cpu_latency);
	ctx->cpu_latency = NULL;
	hsmlink_close(ctx->hsm, ops_life_hsm_closed, ctx);
	if (ctx->server)
		server_close(ctx->server, server_closed, ctx);
	ops_crl_clear(ctx);
	uv_close((uv_handle_t *)&ctx->cp_timer, NULL);
	uv_close((uv_handle_t *)&ctx->hsm_timer, NULL);
	uv_close((uv_handle_t *)&ctx->finish_timer, NULL);
	uv_close((uv_handle_t *)&ctx->sig_term, NULL);
	uv_close((uv_handle_t *)&ctx->sig_int, NULL);
	uv_close((uv_handle_t *)&ctx->sig_hup, NULL);
	uv_close((uv_handle_t *)&ctx->sig_usr1, NULL);
	ops_log(ctx, OPS_LOG_NOTICE, "stopped (exit status %d)", ctx->exit_code);
}

static void
final_checkpoint_done(struct ops_ctx *ctx, int status)
{
	ctx->checkpointing = 0;
	if (status != 0 && ctx->exit_code == 0)
		ctx->exit_code = 1;
	ctx->stop_finished = 1;
	ops_maybe_finish(ctx);
}

static void
stop_event_done(struct ops_ctx *ctx, int status)
{
	if (status != COMMIT_OK || ctx->dying) {
		if (ctx->exit_code == 0)
			ctx->exit_code = 1;
		ctx->stop_finished = 1;
		ops_maybe_finish(ctx);
		return;
	}
	ctx->checkpointing = 1;
	ops_checkpoint(ctx, final_checkpoint_done);
}

static void
zone_closed(struct ops_ctx *ctx)
{
	ctx->zone_closed = 1;
	ops_maybe_finish(ctx);
}

/*
 * Shutdown goes on once no request is in flight, no checkpoint or reload is on
 * its way, and (before closing) the writer has nothing left: the zone closes
 * first (its file written, its version in progress finished), then SIGTERM
 * records "stop" and a final checkpoint, which thus count every signature of
 * the zone; a dying daemon, or one that never got ready, just closes. Called
 * after each request and by a short timer.
 */
void
ops_maybe_finish(struct ops_ctx *ctx)
{
	if (!(ctx->stopping || ctx->dying) || ctx->closed)
		return;
	if (ctx->inflight > 0 || ctx->checkpointing || ctx->reloading)
		return;
	if (!ctx->zone_closed) {
		if (!ctx->zone_closing) {
			ctx->zone_closing = 1;
			ops_zone_close(ctx, zone_closed);
		}
		return;
	}
	if (!ctx->dying && ctx->ready && !ctx->stop_submitted) {
		ctx->stop_submitted = 1;
		if (ops_event(ctx, "stop", "SIGTERM: requests in flight finished", stop_event_done) != 0)
			ctx->stop_finished = 1;
		return;
	}
	if (!ctx->dying && ctx->ready && !ctx->stop_finished)
		return;
	if (commit_pending(ctx->commit) == 0)
		final_close(ctx);
}

static void
finish_tick(uv_timer_t *t)
{
	ops_maybe_finish(t->data);
}

static void
shutdown_begin(struct ops_ctx *ctx)
{
	if (ctx->server) {
		server_stop_accepting(ctx->server);
		server_stop_reading(ctx->server);
	}
	uv_timer_stop(&ctx->cp_timer);
	uv_timer_stop(&ctx->hsm_timer);
	uv_timer_start(&ctx->finish_timer, finish_tick, 20, 20);
	ops_maybe_finish(ctx);
}

void
ops_die(struct ops_ctx *ctx, int exit_code, const char *why)
{
	if (ctx->dying || ctx->closed)
		return;
	ctx->dying = 1;
	ctx->exit_code = exit_code;
	ops_log(ctx, OPS_LOG_ERR, "going down: %s", why);
	shutdown_begin(ctx);
}

void
ops_life_signal(uv_signal_t *h, int signum)
{
	struct ops_ctx *ctx = h->data;

	if (ctx->stopping || ctx->dying)
		return;
	ops_log(ctx, OPS_LOG_NOTICE, "%s: finishing requests in flight, then stopping",
		strsignal(signum));
	ctx->stopping = 1;
	if (!ctx->ready && ctx->exit_code == 0)
		ctx->exit_code = 1; /* stopped before it was ready */
	shutdown_begin(ctx);
}

void
ops_life_store_fatal(void *arg, int err)
{
	struct ops_ctx *ctx = arg;
	char why[128];

	snprintf(why, sizeof(why), "the state database failed: %s", store_strerror(err));
	ops_die(ctx, 1, why);
}

/* ---- periodic work ---- */

static void
periodic_checkpoint_done(struct ops_ctx *ctx, int status)
{
	(void)status;
	ctx->checkpointing = 0;
	ops_maybe_finish(ctx);
}

static void
cp_tick(uv_timer_t *t)
{
	struct ops_ctx *ctx = t->data;

	if (!ctx->ready || ctx->stopping || ctx->dying || ctx->checkpointing)
		return;
	ctx->checkpointing = 1;
	ops_checkpoint(ctx, periodic_checkpoint_done);
}

/* Records the HSM going away and coming back (recovery inside the HSM process). */
static void
hsm_poll_cb(void *arg, int status, const struct hsmproto_status *st)
{
	struct ops_ctx *ctx = arg;
	int state = status == HSMPROTO_ST_OK && st ? st->state : HSMPROTO_STATE_DOWN;

	if (ctx->closed || ctx->dying)
		return;
	if (state == HSMPROTO_STATE_UP && ctx->hsm_state == HSMPROTO_STATE_UP && st &&
	    st->recoveries > ctx->hsm_recoveries) {
		/* Lost and recovered between two polls: still a loss, and audited as one. */
		char detail[96];

		snprintf(detail, sizeof(detail), "lost and recovered between two polls "
			 "(recoveries %llu -> %llu)", (unsigned long long)ctx->hsm_recoveries,
			 (unsigned long long)st->recoveries);
		ops_log(ctx, OPS_LOG_WARNING, "the HSM was %s", detail);
		ops_event(ctx, "hsm-lost", detail, NULL);
		ops_event(ctx, "hsm-recovered", detail, NULL);
	} else if (state != HSMPROTO_STATE_UP && ctx->hsm_state == HSMPROTO_STATE_UP) {
		ops_log(ctx, OPS_LOG_WARNING, "the HSM is %s", state == HSMPROTO_STATE_RECOVERING ?
			"being recovered" : "down");
		ops_event(ctx, "hsm-lost", state == HSMPROTO_STATE_RECOVERING ? "recovering" : "down",
			  NULL);
	} else if (state == HSMPROTO_STATE_UP && ctx->hsm_state != HSMPROTO_STATE_UP) {
		ops_log(ctx, OPS_LOG_NOTICE, "the HSM is back");
		ops_event(ctx, "hsm-recovered", NULL, NULL);
	}
	ctx->hsm_state = state;
	if (st != NULL)
		ctx->hsm_recoveries = st->recoveries;
}

static void
hsm_tick(uv_timer_t *t)
{
	struct ops_ctx *ctx = t->data;

	if (ctx->ready && !ctx->dying && !ctx->stopping)
		(void)hsmlink_status(ctx->hsm, hsm_poll_cb, ctx);
}

/* ---- start-up, driven by the HSM process's answers ---- */

static void
first_checkpoint_done(struct ops_ctx *ctx, int status)
{
	struct server_options so;
	int e;

	ctx->checkpointing = 0;
	if (ctx->dying || ctx->stopping || ctx->closed) {
		ops_maybe_finish(ctx);
		return;
	}
	if (status != 0) {
		ops_die(ctx, 1, "the first audit checkpoint could not be written");
		return;
	}
	memset(&so, 0, sizeof(so));
	so.path = ctx->cfg->socket.path;
	so.mode = ctx->cfg->socket.mode;
	so.max_frame = ctx->cfg->socket.max_frame;
	so.queue_depth = ctx->cfg->socket.queue_depth;
	so.write_high_water = 1u << 20;
	so.max_conns = 1024;
	/* socket.queue-depth bounds each connection; the daemon as a whole takes a
	 * few connections' worth (memory and latency stay bounded under a flood). */
	ctx->max_inflight = 4 * (uint64_t)ctx->cfg->socket.queue_depth;
	if (ctx->max_inflight < 4096)
		ctx->max_inflight = 4096;
	if ((e = server_open(ctx->loop, &so, &ops_server_callbacks, ctx, &ctx->server)) != 0) {
		char why[PATH_MAX + 64];

		snprintf(why, sizeof(why), "socket %s: %s", so.path, server_strerror(e));
		ops_die(ctx, 1, why);
		return;
	}
	ctx->ready = 1;
	ctx->hsm_state = HSMPROTO_STATE_UP;
	uv_timer_start(&ctx->cp_timer, cp_tick, ctx->checkpoint_ms, ctx->checkpoint_ms);
	uv_timer_start(&ctx->hsm_timer, hsm_tick, HSM_POLL_MS, HSM_POLL_MS);
	ops_log(ctx, OPS_LOG_NOTICE, "ready on %s (policy %s)", so.path,
		policy_sha256_hex(ctx->policy->pol));
}

static void
start_event_done(struct ops_ctx *ctx, int status)
{
	if (ctx->dying || ctx->stopping || ctx->closed) {
		ops_maybe_finish(ctx);
		return;
	}
	if (status != COMMIT_OK) {
		ops_die(ctx, 1, "the audit log cannot be written");
		return;
	}
	ctx->checkpointing = 1;
	ops_checkpoint(ctx, first_checkpoint_done);
}

/* The zone is loaded and served: record "start". */
static void
zone_started(struct ops_ctx *ctx, int status)
{
	char detail[256];

	if (ctx->dying || ctx->stopping || ctx->closed) {
		ops_maybe_finish(ctx);
		return;
	}
	if (status != 0) {
		ops_event(ctx, "start-refused", "the zone could not be loaded or served", NULL);
		ops_die(ctx, 1, "the zone could not be loaded or served");
		return;
	}
	snprintf(detail, sizeof(detail), "%s pid %ld, HSM process pid %d, policy sha256 %s, "
		 "zone serial %u", OPS_SERVER_NAME, (long)getpid(), hsmlink_pid(ctx->hsm),
		 policy_sha256_hex(ctx->policy->pol), (unsigned)ops_zone_serial(ctx));
	if (ops_event(ctx, "start", detail, start_event_done) != 0)
		ops_die(ctx, 1, "out of memory");
}

static void
pubkey_cb(void *arg, const struct hsmlink_result *res)
{
	struct ops_ctx *ctx = arg;
	unsigned char *mine = NULL;
	char detail[256];
	int n;

	if (ctx->dying || ctx->stopping || ctx->closed)
		return;
	if (res->status != HSMPROTO_ST_OK) {
		snprintf(detail, sizeof(detail), "the HSM process has no issuing-ca key: %s",
			 res->reason);
		ops_die(ctx, 1, detail);
		return;
	}
	/* The certificate handed out as the chain must certify the key that signs. */
	n = i2d_PUBKEY(ctx->issuing_key, &mine);
	if (n <= 0 || (size_t)n != res->value_len || memcmp(mine, res->value, (size_t)n) != 0) {
		OPENSSL_free(mine);
		ops_event(ctx, "start-refused", "the issuing CA certificate's key is not the HSM's "
			  "issuing-ca key", NULL);
		ops_die(ctx, 1, "the issuing CA certificate's public key differs from the HSM's "
			"issuing-ca key");
		return;
	}
	OPENSSL_free(mine);
	if (ops_zone_start(ctx, zone_started) != 0)
		ops_die(ctx, 1, "the zone cannot be started");
}

void
ops_life_hsm_ready(hsmlink_t *link, int status, const char *reason, void *arg)
{
	struct ops_ctx *ctx = arg;

	if (status != HSMPROTO_ST_OK) {
		char why[HSMPROTO_MAX_REASON + 64];

		snprintf(why, sizeof(why), "the HSM process could not start: %s", reason);
		ops_event(ctx, "start-refused", why, NULL);
		ops_die(ctx, 1, why);
		return;
	}
	ops_log(ctx, OPS_LOG_INFO, "HSM process %d ready", hsmlink_pid(link));
	if (hsmlink_pubkey(link, "issuing-ca", pubkey_cb, ctx) != HSMLINK_OK)
		ops_die(ctx, 1, "the HSM process is gone");
}

void
ops_life_hsm_death(hsmlink_t *link, int64_t exit_status, int term_signal, void *arg)
{
	struct ops_ctx *ctx = arg;
	char why[128];

	(void)link;
	snprintf(why, sizeof(why), "the HSM process died (exit status %lld, signal %d)",
		 (long long)exit_status, term_signal);
	if (ctx->ready && !ctx->closed)
		ops_event(ctx, "hsm-lost", why, NULL);
	ops_die(ctx, 1, why);
}

