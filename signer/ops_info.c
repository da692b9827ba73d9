/*
 * ops_info.c - STATUS: what the daemon is doing, as a JSON document.
 *
 * The HSM process is asked for its state, recoveries and per-role counters
 * and key fingerprints (hsmlink_status, answered asynchronously); the rest is
 * the front's own: version, uptime, the audit head (hash of the latest signed
 * checkpoint, for `regsign audit verify --head`), the policy in force, and
 * counters of requests and group commits, and the zone's health (a
 * signature inside its refresh margin, an expired one, or a version that
 * failed to publish is a failure). A plain read: not audited.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signer/buf.h"
#include "signer/json.h"
#include "signer/ops_ctx.h"
#include "signer/ops_json.h"
#include "signer/ops_zone.h"

/* A small JSON writer over buf_writer; strings are escaped by json.h. */
void
ops_json_put(struct buf_writer *w, const char *s)
{
	buf_writer_put_bytes(w, s, strlen(s));
}

void
ops_json_putf(struct buf_writer *w, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n > 0)
		buf_writer_put_bytes(w, tmp, (size_t)n < sizeof(tmp) ? (size_t)n : sizeof(tmp) - 1);
}

static void
put_buf(void *ctx, const void *p, size_t n)
{
	buf_writer_put_bytes(ctx, p, n);
}

void
ops_json_str(struct buf_writer *w, const char *s)
{
	json_string_write(s, put_buf, w);
}

void
ops_json_kstr(struct buf_writer *w, const char *key, const char *val, int comma)
{
	ops_json_str(w, key);
	ops_json_put(w, ":");
	ops_json_str(w, val);
	if (comma)
		ops_json_put(w, ",");
}

void
ops_json_time(struct buf_writer *w, const char *key, int64_t t)
{
	char buf[32];
	time_t tt = (time_t)t;
	struct tm tm;

	gmtime_r(&tt, &tm);
	strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	ops_json_kstr(w, key, buf, 1);
}

void
ops_json_reply(struct ops_req *r, uint8_t op, struct buf_writer *w, const char *what)
{
	struct proto_reply rep;
	char msg[96];

	if (buf_writer_error(w) != BUF_OK) {
		buf_writer_release(w);
		snprintf(msg, sizeof(msg), "%s too large", what);
		ops_reply_error(r, PROTO_CODE_INTERNAL, msg);
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = op;
	rep.u.json.ptr = buf_writer_data(w);
	rep.u.json.len = buf_writer_len(w);
	ops_reply(r, &rep);
	buf_writer_release(w);
}

/* Short local names for the writer above. */
#define put ops_json_put
#define putf ops_json_putf
#define put_str ops_json_str
#define put_kstr ops_json_kstr
#define put_time ops_json_time

static const char *
state_name(int state)
{
	switch (state) {
	case HSMPROTO_STATE_UP: return "up";
	case HSMPROTO_STATE_RECOVERING: return "recovering";
	case HSMPROTO_STATE_DOWN: return "down";
	default: return "lost";
	}
}

static void
status_cb(void *arg, int status, const struct hsmproto_status *st)
{
	struct ops_req *r = arg;
	struct ops_ctx *ctx = r->ctx;
	struct commit_stats cs;
	struct buf_writer w;
	const char *hstate = st ? state_name(st->state) : "lost";
	char hex[65];
	int failures = 0;

	buf_writer_init(&w, PROTO_REPLY_MAX - 64);
	put(&w, "{");
	put_kstr(&w, "version", OPS_SERVER_NAME, 1);
	putf(&w, "\"protocol\":%d,", PROTO_VERSION);
	put_time(&w, "started", ctx->started);
	putf(&w, "\"uptime\":%llu,",
	     (unsigned long long)((uv_now(ctx->loop) - ctx->started_ms) / 1000));
	putf(&w, "\"hsm\":{\"state\":\"%s\",\"pid\":%d,\"recoveries\":%llu,"
	     "\"key_copies\":%u,\"key_copies_refused\":%llu,\"sign_prepared\":%llu},", hstate,
	     hsmlink_pid(ctx->hsm), st ? (unsigned long long)st->recoveries : 0ULL,
	     st ? (unsigned)st->key_copies : 0U,
	     st ? (unsigned long long)st->key_copies_refused : 0ULL,
	     st ? (unsigned long long)st->sign_prepared : 0ULL);
	put(&w, "\"keys\":[");
	for (size_t i = 0; st && status == HSMPROTO_ST_OK && i < st->n_roles; i++) {
		const struct hsmproto_role_status *k = &st->roles[i];

		for (size_t b = 0; b < 32; b++)
			snprintf(hex + 2 * b, 3, "%02x", k->fingerprint[b]);
		put(&w, i ? ",{" : "{");
		put_kstr(&w, "role", k->role, 1);
		put_kstr(&w, "fingerprint", hex, 1);
		putf(&w, "\"signatures\":%llu,\"refused\":%llu,",
		     (unsigned long long)k->signatures, (unsigned long long)k->refused);
		put_kstr(&w, "health", st->state == HSMPROTO_STATE_UP ? "ok" : hstate, 0);
		put(&w, "}");
	}
	put(&w, "],");
	put(&w, "\"audit\":{");
	put_kstr(&w, "head", ctx->audit_head, 1);
	put_kstr(&w, "log", ctx->cfg->state.audit_log, 0);
	put(&w, "},\"policy\":{");
	put_kstr(&w, "file", policy_file(ctx->policy->pol), 1);
	put_kstr(&w, "sha256", policy_sha256_hex(ctx->policy->pol), 1);
	put_kstr(&w, "zone", policy_zone(ctx->policy->pol)->name, 0);
	commit_stats_get(ctx->commit, &cs);
	putf(&w, "},\"requests\":{\"served\":%llu,\"in_flight\":%llu,\"connections\":%zu},",
	     (unsigned long long)ctx->requests, (unsigned long long)ctx->inflight,
	     server_conn_count(ctx->server));
	if (ctx->cpu_latency != NULL) {
		struct cpu_latency_stats ls;

		cpu_latency_stats_get(ctx->cpu_latency, &ls);
		putf(&w, "\"cpu_latency\":{\"limit_us\":%d,\"hold_ms\":%llu,\"held\":%s,"
		     "\"holds\":%llu},", (int)ls.limit_us, (unsigned long long)ls.hold_ms,
		     ls.held ? "true" : "false", (unsigned long long)ls.holds);
	}
	putf(&w, "\"commit\":{\"transactions\":%llu,\"items\":%llu,\"largest\":%llu,"
	     "\"failures\":%llu},", (unsigned long long)cs.groups, (unsigned long long)cs.items,
	     (unsigned long long)cs.largest, (unsigned long long)cs.failures);
	put(&w, "\"crl\":{");
	if (ctx->crl.der)
		put_time(&w, "this_update", ctx->crl.this_update);
	putf(&w, "\"current\":%s},", ctx->crl.der && ctx->crl.built_gen == ctx->crl.gen ? "true" : "false");
	/* The zone's health: a failure there is a failure of the daemon. */
	put(&w, "\"zone\":{");
	ops_zone_json(ctx, &w, false, &failures);
	putf(&w, "},\"health\":\"%s\"}", failures == 0 && st && st->state == HSMPROTO_STATE_UP
						? "ok" : "failing");
	ops_json_reply(r, PROTO_OP_STATUS, &w, "status document");
}

void
ops_status(struct ops_req *r)
{
	if (hsmlink_status(r->ctx->hsm, status_cb, r) != HSMLINK_OK)
		status_cb(r, HSMPROTO_ST_UNAVAILABLE, NULL);
}
