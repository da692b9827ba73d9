/*
 * ops_reload.c - SIGHUP: the policy file is loaded again on libuv's
 * threadpool (file I/O never on the loop). A file that does not load, or
 * that names another registry zone (the HSM process's hard limits were built
 * on the zone at start), is refused and the old policy stays; either way the
 * outcome is logged and audited ("reload" or "reload-refused"). Requests keep
 * the policy they started under (reference-counted); rate buckets keep their
 * tokens across the swap.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/ops_ctx.h"

struct reload_job {
	uv_work_t work;
	struct ops_ctx *ctx;
	char path[PATH_MAX];
	struct policy *pol;
	char err[512];
};

static void
reload_work(uv_work_t *w)
{
	struct reload_job *j = w->data;

	if (policy_load(j->path, &j->pol, j->err, sizeof(j->err)) != 0)
		j->pol = NULL;
}

static void
reload_event_done(struct ops_ctx *ctx, int status)
{
	(void)status;
	ctx->reloading = 0;
	ops_maybe_finish(ctx);
}

static void
reload_after(uv_work_t *w, int status)
{
	struct reload_job *j = w->data;
	struct ops_ctx *ctx = j->ctx;
	const char *old_zone = policy_zone(ctx->policy->pol)->name;
	char detail[600];

	if (status != 0 && j->pol == NULL)
		snprintf(j->err, sizeof(j->err), "reload cancelled");
	if (j->pol && strcmp(policy_zone(j->pol)->name, old_zone) != 0) {
		snprintf(j->err, sizeof(j->err), "%.200s: zone.name changed from %.100s to %.100s; the registry "
			 "zone changes only with a restart", j->path, old_zone,
			 policy_zone(j->pol)->name);
		policy_free(j->pol);
		j->pol = NULL;
	}
	if (j->pol && ctx->closed == 0 &&
	    ops_policy_install(ctx, j->pol) != 0) {
		snprintf(j->err, sizeof(j->err), "out of memory installing the new policy");
		policy_free(j->pol);
		j->pol = NULL;
	}
	if (j->pol) {
		snprintf(detail, sizeof(detail), "policy %.400s sha256 %s", j->path,
			 policy_sha256_hex(j->pol));
		ops_log(ctx, OPS_LOG_NOTICE, "SIGHUP: %s loaded", detail);
		if (ops_event(ctx, "reload", detail, reload_event_done) != 0)
			ctx->reloading = 0;
	} else {
		ops_log(ctx, OPS_LOG_ERR, "SIGHUP: policy refused, the old one stays: %s", j->err);
		snprintf(detail, sizeof(detail), "kept %s: %s",
			 policy_sha256_hex(ctx->policy->pol), j->err);
		if (ops_event(ctx, "reload-refused", detail, reload_event_done) != 0)
			ctx->reloading = 0;
	}
	free(j);
}

void
ops_reload_sighup(uv_signal_t *h, int signum)
{
	struct ops_ctx *ctx = h->data;
	struct reload_job *j;

	(void)signum;
	if (!ctx->ready || ctx->stopping || ctx->dying || ctx->reloading)
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->ctx = ctx;
	j->work.data = j;
	snprintf(j->path, sizeof(j->path), "%s", ctx->cfg->policy);
	ctx->reloading = 1;
	if (uv_queue_work(ctx->loop, &j->work, reload_work, reload_after) != 0) {
		ctx->reloading = 0;
		free(j);
	}
}

