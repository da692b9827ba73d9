/*
 * ops_zone.c - the registry zone inside regsignd: start-up (DNSKEYs from the
 * HSM process, parameters from the policy and the configuration, zonepub
 * loaded from the store, the DNS listener, NOTIFY), the zone requests of the
 * handlers, the zone file on demand, and the way down. See ops_zone.h.
 */
#include "signer/ops_zone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signer/dns_acl.h"
#include "signer/dns_notify.h"
#include "signer/dns_server.h"
#include "signer/dns_tsig.h"

static void zone_ready(struct ops_zone *z);
static void close_all(struct ops_zone *z);

/* ---- logging ---- */

static void
zonepub_log(void *arg, int level, const char *msg)
{
	struct ops_zone *z = arg;

	ops_log(z->ctx, level, "zone: %s", msg);
}

/* ---- zonepub's callbacks ---- */

static void
on_published(void *arg, uint32_t serial)
{
	struct ops_zone *z = arg;

	z->notifies++;
	z->last_published = (int64_t)time(NULL);
	if (commit_trace_on(z->ctx->commit)) {
		/* Stage trace (µs, the commit_now_ns() clock): the HSM's part of
		 * the latest signing batch, which is this serial's when one
		 * version is made at a time. */
		ops_log(z->ctx, OPS_LOG_DEBUG, "trace hsm serial=%u sent=%llu answered=%llu n=%zu",
			(unsigned)serial, (unsigned long long)(z->hsm.t_sent / 1000),
			(unsigned long long)(z->hsm.t_answered / 1000), z->hsm.last_n);
	}
	ops_log(z->ctx, OPS_LOG_DEBUG, "zone serial %u published", (unsigned)serial);
	if (z->notify != NULL)
		(void)dns_notify_send(z->notify);
}

static void
on_fatal(void *arg, int err)
{
	struct ops_zone *z = arg;
	char why[160];

	snprintf(why, sizeof(why), "the served zone no longer matches the store (%s)",
		 zonepub_strerror(err));
	ops_die(z->ctx, 1, why);
}

/* ---- the gate's scope ---- */

static void
inside_add(struct ops_zone *z, struct ops_zreq *q)
{
	q->in_next = NULL;
	q->in_prev = z->in_tail;
	if (z->in_tail)
		z->in_tail->in_next = q;
	else
		z->in_head = q;
	z->in_tail = q;
	z->n_inside++;
	q->inside = true;
}

static void
inside_del(struct ops_zone *z, struct ops_zreq *q)
{
	if (!q->inside)
		return;
	if (q->in_prev)
		q->in_prev->in_next = q->in_next;
	else
		z->in_head = q->in_next;
	if (q->in_next)
		q->in_next->in_prev = q->in_prev;
	else
		z->in_tail = q->in_prev;
	q->in_prev = q->in_next = NULL;
	z->n_inside--;
	q->inside = false;
}

/*
 * Which requests the version being signed may hold: zonepub's groups take
 * requests in the order they were submitted, so every request inside except
 * those still in its queue (the newest, zonepub_queued() of them) is in the
 * version on the zone thread or in one already signed. A foreign request
 * (the NS change) may be among the queued: those counted as queued are
 * fewer by as many, so that no request of the version is left out.
 */
static void
gate_scope(void *arg, bool *held, bool *cancelled)
{
	struct ops_zone *z = arg;
	size_t queued = zonepub_queued(z->zp), front;

	queued = queued > z->foreign ? queued - z->foreign : 0;
	front = z->n_inside > queued ? z->n_inside - queued : 0;
	*held = *cancelled = false;
	for (struct ops_zreq *q = z->in_head; q != NULL && front > 0; q = q->in_next, front--) {
		*held = *held || q->held;
		*cancelled = *cancelled || q->cancelled;
	}
}

/* ---- start-up ---- */

static void
opened(void *arg, int status)
{
	struct ops_zone *z = arg;

	if (z->closing)
		return;
	if (status != 0) {
		ops_log(z->ctx, OPS_LOG_ERR, "the zone cannot be loaded from %s: %s",
			z->ctx->cfg->state.database, zonepub_strerror(status));
		z->started(z->ctx, -1);
		return;
	}
	z->open = true;
	zonepub_gate_scope_set(&z->gate, gate_scope, z);
	if (ops_zone_listen(z) != 0) {
		z->started(z->ctx, -1);
		return;
	}
	ops_log(z->ctx, OPS_LOG_NOTICE, "zone %s loaded at serial %u (%zu names)",
		z->params.origin, (unsigned)zone_serial(zonepub_zone(z->zp)),
		zone_names(zonepub_zone(z->zp)));
	/* The NS change is the one request that does not come through
	 * ops_zone_submit(): the gate's scope counts it as possibly queued. */
	{
		size_t before = zonepub_queued(z->zp);

		ops_zone_ns_apply(z);
		z->foreign += zonepub_queued(z->zp) - before;
	}
	z->started(z->ctx, 0);
}

static void
keys_done(struct ops_zone *z)
{
	if (--z->pending_keys > 0)
		return;
	if (z->closing) {
		close_all(z);
		return;
	}
	if (z->keys_status != 0) {
		z->started(z->ctx, -1);
		return;
	}
	zone_ready(z);
}

static void
registry_keys_cb(void *arg, int status, const struct zone_dnskey *ksk,
		 const struct zone_dnskey *zsk)
{
	struct ops_zone *z = arg;

	if (status != 0) {
		ops_log(z->ctx, OPS_LOG_ERR, "the HSM process gave no KSK/ZSK public key: %s (%s)",
			zonepub_strerror(status), z->hsm.last_reason);
		z->keys_status = -1;
	} else {
		z->params.ksk = *ksk;
		z->params.zsk = *zsk;
	}
	keys_done(z);
}

struct extra_ask {
	struct ops_zone *z;
	struct ops_extra_key *k;
};

static void
extra_key_cb(void *arg, const struct hsmlink_result *res)
{
	struct extra_ask *a = arg;
	struct ops_extra_key *k = a->k;
	uint16_t flags = strstr(k->role, "/ksk") ? ZONE_DNSKEY_FLAGS_KSK : ZONE_DNSKEY_FLAGS_ZSK;

	if (res->status == HSMPROTO_ST_OK &&
	    zone_dnskey_from_spki(res->value, res->value_len, flags, &k->key) == 0)
		k->have = true;
	else
		ops_log(a->z->ctx, OPS_LOG_WARNING, "no public key for role %s (%s): SIGN_RRSET "
			"with it is refused", k->role, res->reason ? res->reason : "not EC P-256");
	keys_done(a->z);
	free(a);
}

static int
extra_keys_ask(struct ops_zone *z)
{
	const struct config *cfg = z->ctx->cfg;

	if (cfg->n_extra_zones == 0)
		return 0;
	if ((z->extra = calloc(2 * cfg->n_extra_zones, sizeof(*z->extra))) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_extra_zones; i++) {
		for (int ksk = 1; ksk >= 0; ksk--) {
			struct ops_extra_key *k = &z->extra[z->n_extra];
			struct extra_ask *a;

			if (ksk && cfg->extra_zones[i].ksk == NULL)
				continue;
			snprintf(k->role, sizeof(k->role), "%s/%s", cfg->extra_zones[i].name,
				 ksk ? "ksk" : "zsk");
			z->n_extra++;
			if ((a = calloc(1, sizeof(*a))) == NULL)
				return -1;
			a->z = z;
			a->k = k;
			z->pending_keys++;
			if (hsmlink_pubkey(z->ctx->hsm, k->role, extra_key_cb, a) != HSMLINK_OK) {
				z->pending_keys--;
				free(a);
				return -1;
			}
		}
	}
	return 0;
}

/* Both registry keys are known: the zone's parameters, then zonepub. */
static void
zone_ready(struct ops_zone *z)
{
	struct ops_ctx *ctx = z->ctx;
	const struct policy_zone *pz = policy_zone(ctx->policy->pol);
	struct zone_params p = z->params;
	struct zonepub_opts o;
	int e;

	if (zonepub_params_from_policy(pz, &z->params) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "the policy's zone settings do not fit the zone");
		z->started(ctx, -1);
		return;
	}
	if (snprintf(z->origin, sizeof(z->origin), "%s", z->params.origin) >= (int)sizeof(z->origin) ||
	    (z->params.dance_prefix != NULL &&
	     snprintf(z->dance_prefix, sizeof(z->dance_prefix), "%s", z->params.dance_prefix) >=
		     (int)sizeof(z->dance_prefix))) {
		ops_log(ctx, OPS_LOG_ERR, "the policy's zone name or DANCE prefix is too long");
		z->started(ctx, -1);
		return;
	}
	z->params.origin = z->origin;
	if (z->params.dance_prefix != NULL)
		z->params.dance_prefix = z->dance_prefix;
	z->params.ksk = p.ksk;
	z->params.zsk = p.zsk;
	z->params.ca_der = ctx->chain_der[0];
	z->params.ca_len = ctx->chain_len[0];
	z->styles = zonepub_styles_from_policy(pz);
	if (ops_zone_ns_check(z) != 0) {
		z->started(ctx, -1);
		return;
	}
	/* At log level debug every commit item and zone version carries its
	 * stage times, and requests log them (see commit_trace_set()). */
	commit_trace_set(ctx->commit, ctx->log_level >= OPS_LOG_DEBUG);
	memset(&o, 0, sizeof(o));
	o.params = &z->params;
	zonepub_gate_init(&z->gate, zonepub_hsm_signer(&z->hsm));
	o.signer = zonepub_gate_signer(&z->gate);
	o.zone_file = ctx->cfg->state.zone_file;
	o.zone_file_interval = ctx->cfg->state.zone_file_interval;
	o.published = on_published;
	o.fatal = on_fatal;
	o.log = zonepub_log;
	o.arg = z;
	if ((e = zonepub_new(ctx->loop, &o, &z->zp)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "zone %s: %s", z->params.origin, zonepub_strerror(e));
		z->started(ctx, -1);
		return;
	}
	if ((e = zonepub_open(z->zp, ctx->writer.st, ctx->commit, opened, z)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "zone %s: %s", z->params.origin, zonepub_strerror(e));
		z->started(ctx, -1);
	}
}

int
ops_zone_start(struct ops_ctx *ctx, void (*started)(struct ops_ctx *ctx, int status))
{
	struct ops_zone *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return -1;
	z->ctx = ctx;
	z->started = started;
	ctx->zone = z;
	zonepub_hsm_init(&z->hsm, ctx->hsm);
	z->pending_keys = 1;
	if (zonepub_hsm_keys(&z->hsm, registry_keys_cb, z) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "cannot ask the HSM process for the zone's keys");
		z->pending_keys = 0;
		return -1;
	}
	if (extra_keys_ask(z) != 0) {
		/* The answers on their way still arrive; they then find the failure. */
		ops_log(ctx, OPS_LOG_ERR, "cannot ask the HSM process for the extra zones' keys");
		z->keys_status = -1;
	}
	return 0;
}

/* ---- requests ---- */

static int
zreq_store(struct zonepub_req *rq, void *env)
{
	struct ops_zreq *q = (struct ops_zreq *)rq;

	return q->store ? q->store(q->r, env, rq->serial) : COMMIT_OK;
}

static void
zreq_done(struct zonepub_req *rq, int status, uint32_t serial)
{
	struct ops_zreq *q = (struct ops_zreq *)rq;
	struct ops_zone *z = q->r->ctx->zone;
	bool held = q->held, cancelled = q->cancelled;

	inside_del(z, q);
	if (status == ZONEPUB_EWITHDRAWN && !cancelled && z->open && !z->closing &&
	    zonepub_gate_failures(&z->gate) != q->gate_epoch) {
		/* The gate failed this group for the sake of another request,
		 * whose intent did not commit: the zone is unchanged, try again. */
		q->gate_epoch = zonepub_gate_failures(&z->gate);
		inside_add(z, q);
		zonepub_submit(z->zp, &q->zr);
		return;
	}
	q->held = false;
	q->cancelled = false;
	if (held || cancelled)
		zonepub_gate_left(&z->gate, held, cancelled);
	q->done(q->r, status, serial);
}

/* Submits @p q; q->held is set already. */
static void
submit(struct ops_ctx *ctx, struct ops_zreq *q)
{
	if (q->zr.ops == NULL)
		q->zr.ops = q->ops;
	q->zr.store_run = zreq_store;
	q->zr.store_undo = NULL;
	q->zr.done = zreq_done;
	if (ctx->zone == NULL || !ctx->zone->open || ctx->zone->closing) {
		q->held = false;
		q->done(q->r, ZONEPUB_ESTATE, ops_zone_serial(ctx));
		return;
	}
	q->cancelled = false;
	q->gate_epoch = zonepub_gate_failures(&ctx->zone->gate);
	inside_add(ctx->zone, q);
	zonepub_submit(ctx->zone->zp, &q->zr);
}

void
ops_zone_submit(struct ops_ctx *ctx, struct ops_zreq *q)
{
	q->held = false;
	submit(ctx, q);
}

void
ops_zone_submit_held(struct ops_ctx *ctx, struct ops_zreq *q)
{
	q->held = false;
	if (ctx->zone != NULL && ctx->zone->open && !ctx->zone->closing) {
		q->held = true;
		zonepub_gate_hold(&ctx->zone->gate);
	}
	submit(ctx, q);
}

void
ops_zone_release(struct ops_ctx *ctx, struct ops_zreq *q, bool ok)
{
	/* Not held: it never was, or it left zonepub already (its hold went). */
	if (!q->held || ctx->zone == NULL)
		return;
	q->held = false;
	q->cancelled = !ok && q->inside;
	zonepub_gate_release(&ctx->zone->gate, ok, q->inside);
}

uint32_t
ops_zone_wire_code(int zerr)
{
	switch (zerr) {
	case ZONEPUB_EINVAL: return PROTO_CODE_BAD_REQUEST;
	case ZONEPUB_EEXIST: return PROTO_CODE_CONFLICT;
	case ZONEPUB_ENOENT: return PROTO_CODE_NOT_FOUND;
	case ZONEPUB_ERESERVED: return PROTO_CODE_DENIED;
	case ZONEPUB_ESIGN: return PROTO_CODE_UNAVAILABLE;
	case ZONEPUB_EWITHDRAWN: return PROTO_CODE_UNAVAILABLE;
	case ZONEPUB_ESTORE: return PROTO_CODE_STORAGE;
	case ZONEPUB_ECLOSED: return PROTO_CODE_BUSY;
	case ZONEPUB_ESTATE: return PROTO_CODE_UNAVAILABLE;
	default: return PROTO_CODE_INTERNAL;
	}
}

uint32_t
ops_zone_serial(const struct ops_ctx *ctx)
{
	const struct zone *z = ops_zone_served(ctx);

	return z ? zone_serial(z) : 0;
}

const struct zone *
ops_zone_served(const struct ops_ctx *ctx)
{
	return ctx->zone && ctx->zone->open ? zonepub_zone(ctx->zone->zp) : NULL;
}

const struct zone_dnskey *
ops_zone_extra_key(const struct ops_ctx *ctx, const char *role)
{
	for (size_t i = 0; ctx->zone && i < ctx->zone->n_extra; i++)
		if (ctx->zone->extra[i].have && strcmp(ctx->zone->extra[i].role, role) == 0)
			return &ctx->zone->extra[i].key;
	return NULL;
}

/* ---- the zone file on demand ---- */

static void
file_written(void *arg, int status, uint32_t serial)
{
	struct ops_zone *z = arg;

	if (status == 0)
		ops_log(z->ctx, OPS_LOG_NOTICE, "zone file %s written at serial %u",
			z->ctx->cfg->state.zone_file, (unsigned)serial);
	else
		ops_log(z->ctx, OPS_LOG_ERR, "zone file %s not written: %s",
			z->ctx->cfg->state.zone_file, zonepub_strerror(status));
	if (z->closing)
		close_all(z);
}

void
ops_zone_sigusr1(uv_signal_t *h, int signum)
{
	struct ops_ctx *ctx = h->data;
	int e;

	(void)signum;
	if (ctx->zone == NULL || !ctx->zone->open || ctx->zone->closing)
		return;
	if ((e = zonepub_zone_file_write(ctx->zone->zp, file_written, ctx->zone)) != 0)
		ops_log(ctx, OPS_LOG_ERR, "SIGUSR1: zone file: %s", zonepub_strerror(e));
}

/* ---- the way down ---- */

static void
one_closed(void *arg)
{
	struct ops_zone *z = arg;

	if (--z->closes == 0 && z->closed)
		z->closed(z->ctx);
}

static void
close_all(struct ops_zone *z)
{
	/* Answers to requests for public keys still come; close after them. */
	if (z->pending_keys > 0 || z->closes > 0)
		return;
	z->closes = 1; /* held until every close is started */
	if (z->zp) {
		z->closes++;
		zonepub_close(z->zp, one_closed, z);
	}
	if (z->server) {
		z->closes++;
		dns_server_close(z->server, one_closed, z);
	}
	if (z->notify) {
		z->closes++;
		dns_notify_close(z->notify, one_closed, z);
	}
	one_closed(z);
}

void
ops_zone_close(struct ops_ctx *ctx, void (*closed)(struct ops_ctx *ctx))
{
	struct ops_zone *z = ctx->zone;
	struct zonepub_status st;

	if (z == NULL) {
		closed(ctx);
		return;
	}
	if (z->closing)
		return;
	z->closing = true;
	z->closed = closed;
	if (z->open && ctx->cfg->state.zone_file) {
		/* The zone file reflects the last serial when the daemon stops. */
		zonepub_status_get(z->zp, &st);
		if (st.serial != 0 && st.zone_file_serial != st.serial &&
		    zonepub_zone_file_write(z->zp, file_written, z) == 0)
			return;
	}
	close_all(z);
}

void
ops_zone_free(struct ops_ctx *ctx)
{
	struct ops_zone *z = ctx->zone;

	if (z == NULL)
		return;
	zonepub_free(z->zp);
	dns_server_free(z->server);
	dns_notify_free(z->notify);
	dns_acl_free(z->acl);
	dns_keyring_free(z->keys);
	free(z->extra);
	free(z->ns);
	free(z);
	ctx->zone = NULL;
}
