/*
 * ops_ctx.c - what every operation handler of regsignd shares: logging, the
 * policy in force and the callers' rate buckets, the request object, replies,
 * and audit records of refusals and daemon events.
 */
#include "signer/ops_ctx.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "signer/buf.h"

void
ops_log(struct ops_ctx *ctx, int level, const char *fmt, ...)
{
	static const char *const names[] = {
		[OPS_LOG_ERR] = "error", [OPS_LOG_WARNING] = "warning",
		[OPS_LOG_NOTICE] = "notice", [OPS_LOG_INFO] = "info", [OPS_LOG_DEBUG] = "debug",
	};
	char line[1024];
	va_list ap;

	if (level > ctx->log_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (ctx->log_syslog) {
		syslog(level, "%s", line);
	} else {
		char ts[32];
		struct timespec t;
		struct tm tm;

		clock_gettime(CLOCK_REALTIME, &t);
		gmtime_r(&t.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		fprintf(stderr, "%s.%03ldZ regsignd[%ld]: %s: %s\n", ts, t.tv_nsec / 1000000,
			(long)getpid(), names[level], line);
	}
}

/* ---- requests ---- */

/* The CPU latency limit follows the requests in; a write the kernel refuses
 * is logged once (the limit is then tried again at the next request). */
static void
cpu_latency_track(struct ops_ctx *ctx)
{
	int e = cpu_latency_note(ctx->cpu_latency, ctx->inflight);

	if (e != 0 && !ctx->cpu_latency_warned) {
		ctx->cpu_latency_warned = 1;
		ops_log(ctx, OPS_LOG_WARNING, "cpu-latency: cannot set the limit: %s", strerror(-e));
	}
}

struct ops_req *
ops_req_new(struct ops_ctx *ctx, server_conn_t *conn, const uint8_t *frame, size_t len)
{
	struct ops_req *r = calloc(1, sizeof(*r));

	if (r == NULL)
		return NULL;
	if (len > 0) {
		if ((r->frame = malloc(len)) == NULL) {
			free(r);
			return NULL;
		}
		memcpy(r->frame, frame, len);
		r->frame_len = len;
	}
	r->ctx = ctx;
	if (conn) {
		r->conn = conn;
		server_conn_ref(conn);
		r->peer = *server_conn_peer(conn);
	}
	r->pol = ops_policy_ref(ctx->policy);
	r->now = (int64_t)time(NULL);
	ctx->inflight++;
	cpu_latency_track(ctx);
	return r;
}

void
ops_req_free(struct ops_req *r)
{
	struct ops_ctx *ctx;

	if (r == NULL)
		return;
	ctx = r->ctx;
	ops_service_release(r);
	if (r->op_free)
		r->op_free(r->op_state);
	server_conn_unref(r->conn);
	ops_policy_unref(r->pol);
	free(r->frame);
	free(r);
	ctx->inflight--;
	cpu_latency_track(ctx);
	ops_maybe_finish(ctx);
}

void
ops_req_refuse(struct ops_req *r, uint32_t code, const char *rule, const char *fmt, ...)
{
	va_list ap;

	r->err_code = code;
	snprintf(r->rule, sizeof(r->rule), "%s", rule);
	va_start(ap, fmt);
	vsnprintf(r->msg, sizeof(r->msg), fmt, ap);
	va_end(ap);
}

uint32_t
ops_policy_wire_code(enum policy_code code)
{
	switch (code) {
	case POLICY_DENY_DEVICE_ID:
	case POLICY_DENY_INDEX:
	case POLICY_DENY_KEY_ALGORITHM:
	case POLICY_DENY_ARGUMENT:
		return PROTO_CODE_BAD_REQUEST;
	case POLICY_DENY_RATE:
		return PROTO_CODE_RATE_LIMITED;
	default:
		return PROTO_CODE_DENIED;
	}
}

void
ops_req_refuse_decision(struct ops_req *r, uint32_t code, const struct policy_decision *d)
{
	r->err_code = code;
	snprintf(r->rule, sizeof(r->rule), "%s", d->rule);
	snprintf(r->msg, sizeof(r->msg), "%s (%s)", d->message, d->rule);
}

const char *
ops_req_caller_name(const struct ops_req *r)
{
	return r->caller ? r->caller->name : "";
}

void
ops_req_audit_caller(const struct ops_req *r, struct audit_caller *c)
{
	c->uid = r->peer.uid;
	c->gid = r->peer.gid;
	c->pid = r->peer.pid;
	c->name = ops_req_caller_name(r);
}

/* Encodes and sends a reply frame (a failure to encode becomes INTERNAL). */
static void
send_frame(struct ops_req *r, const struct proto_reply *rep)
{
	struct buf_writer w;
	uint8_t *data = NULL;
	size_t len = 0;
	int e;

	if (r->conn == NULL)
		return;
	buf_writer_init(&w, PROTO_REPLY_MAX + PROTO_LEN_SIZE);
	e = proto_reply_encode(&w, rep);
	if (e != PROTO_OK) {
		ops_log(r->ctx, OPS_LOG_ERR, "cannot encode a reply to request %u: %s",
			(unsigned)rep->id, proto_strerror(e));
		buf_writer_reset(&w);
		e = proto_error_encode(&w, rep->id, PROTO_CODE_INTERNAL, "reply could not be encoded");
	}
	if (e != PROTO_OK || buf_writer_take(&w, &data, &len) != BUF_OK) {
		buf_writer_release(&w);
		server_conn_close(r->conn);
		return;
	}
	buf_writer_release(&w);
	server_conn_reply(r->conn, data, len, 0);
}

void
ops_reply(struct ops_req *r, const struct proto_reply *rep)
{
	send_frame(r, rep);
	r->ctx->requests++;
	ops_req_free(r);
}

void
ops_reply_error(struct ops_req *r, uint32_t code, const char *msg)
{
	/* proto_error_encode cleans the text (request bytes may appear in it). */
	if (r->conn) {
		struct buf_writer w;
		uint8_t *data = NULL;
		size_t len = 0;

		buf_writer_init(&w, PROTO_REPLY_MAX + PROTO_LEN_SIZE);
		if (proto_error_encode(&w, r->req.id, code, msg) == PROTO_OK &&
		    buf_writer_take(&w, &data, &len) == BUF_OK)
			server_conn_reply(r->conn, data, len, 0);
		else
			server_conn_close(r->conn);
		buf_writer_release(&w);
	}
	r->ctx->requests++;
	ops_req_free(r);
}

void
ops_reply_failed_commit(struct ops_req *r, int status)
{
	if (status == COMMIT_ERR_FATAL) {
		if (r->conn)
			server_conn_close(r->conn);
		ops_req_free(r);
		return;
	}
	ops_reply_error(r, PROTO_CODE_STORAGE, "the state database or audit log cannot be "
			"written; nothing was changed");
}

void
ops_reply_refusal(struct ops_req *r)
{
	ops_reply_error(r, r->err_code ? r->err_code : PROTO_CODE_INTERNAL, r->msg);
}

/* ---- audit of refusals and events ---- */

int
ops_audit_status(int audit_err)
{
	if (audit_err == 0)
		return COMMIT_OK;
	return audit_error_is_fatal(audit_err) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
}

int
ops_audit_intent(struct ops_writer *w, struct ops_req *r, const char *detail)
{
	struct audit_request a;
	struct audit_input in;

	memset(&a, 0, sizeof(a));
	ops_req_audit_caller(r, &a.caller);
	a.op = r->audit_op;
	in.name = r->input_name;
	in.sha256 = r->input_sha256;
	a.inputs = &in;
	a.n_inputs = 1;
	a.allow = 1;
	a.rule = r->rule;
	a.policy_sha256 = policy_sha256(r->pol->pol);
	a.detail = detail;
	return ops_audit_status(audit_request(w->audit, &a, &r->intent));
}

void
ops_audit_intent_undo(struct commit_item *it, void *env)
{
	(void)env;
	((struct ops_req *)it)->intent = 0;
}

int
ops_audit_deny(struct ops_writer *w, struct ops_req *r)
{
	struct audit_request a;
	struct audit_input in;
	int e;

	memset(&a, 0, sizeof(a));
	ops_req_audit_caller(r, &a.caller);
	a.op = r->audit_op ? r->audit_op : "request";
	a.device = r->device[0] ? r->device : NULL;
	a.index = r->index;
	if (r->input_name) {
		in.name = r->input_name;
		in.sha256 = r->input_sha256;
		a.inputs = &in;
		a.n_inputs = 1;
	}
	a.allow = 0;
	a.rule = r->rule[0] ? r->rule : "builtin";
	a.policy_sha256 = r->pol ? policy_sha256(r->pol->pol) : NULL;
	a.detail = r->msg;
	e = audit_request(w->audit, &a, NULL);
	if (e == AUDIT_EINVAL) {
		/* A record the audit code refuses (e.g. odd text) must not stop the daemon. */
		ops_log(w->ctx, OPS_LOG_ERR, "audit record of a refusal failed: %s", audit_strerror(e));
		a.device = NULL;
		a.detail = "refusal (details could not be recorded)";
		e = audit_request(w->audit, &a, NULL);
	}
	return ops_audit_status(e);
}

static int
deny_run(struct commit_item *it, void *env)
{
	return ops_audit_deny(env, (struct ops_req *)it);
}

static void
deny_done(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;

	if (status != COMMIT_OK)
		ops_reply_failed_commit(r, status);
	else
		ops_reply_refusal(r);
}

void
ops_deny(struct ops_req *r)
{
	memset(&r->item, 0, sizeof(r->item));
	r->item.run = deny_run;
	r->item.done = deny_done;
	commit_submit(r->ctx->commit, &r->item);
}

int
ops_result_write(struct ops_writer *w, struct ops_req *r, const char *detail,
		 uint32_t zone_serial)
{
	struct audit_result res;

	memset(&res, 0, sizeof(res));
	res.op = r->audit_op;
	res.device = r->device[0] ? r->device : NULL;
	res.index = r->index;
	res.error = (int32_t)r->err_code;
	res.detail = r->err_code ? r->msg : detail;
	res.has_zone_serial = zone_serial != 0;
	res.zone_serial = zone_serial;
	return ops_audit_status(audit_result(w->audit, r->intent, &res));
}

static int
result_run(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;

	return ops_result_write(env, r, r->result_detail, 0);
}

void
ops_result_submit(struct ops_req *r, const char *detail,
		  void (*done)(struct commit_item *it, int status))
{
	memset(&r->item, 0, sizeof(r->item));
	r->result_detail = detail;
	r->item.run = result_run;
	r->item.done = done;
	commit_submit(r->ctx->commit, &r->item);
}

struct ops_event_item {
	struct commit_item item;
	struct ops_ctx *ctx;
	char event[33];
	char detail[512];
	void (*done)(struct ops_ctx *ctx, int status);
};

static int
event_run(struct commit_item *it, void *env)
{
	struct ops_event_item *e = (struct ops_event_item *)it;
	struct ops_writer *w = env;

	return ops_audit_status(audit_event(w->audit, e->event, e->detail[0] ? e->detail : NULL));
}

static void
event_done(struct commit_item *it, int status)
{
	struct ops_event_item *e = (struct ops_event_item *)it;

	if (status != COMMIT_OK)
		ops_log(e->ctx, OPS_LOG_ERR, "audit event '%s' not recorded", e->event);
	if (e->done)
		e->done(e->ctx, status);
	free(e);
}

int
ops_event(struct ops_ctx *ctx, const char *event, const char *detail,
	  void (*done)(struct ops_ctx *ctx, int status))
{
	struct ops_event_item *e = calloc(1, sizeof(*e));

	if (e == NULL)
		return -1;
	e->ctx = ctx;
	snprintf(e->event, sizeof(e->event), "%s", event);
	snprintf(e->detail, sizeof(e->detail), "%s", detail ? detail : "");
	e->done = done;
	e->item.run = event_run;
	e->item.done = event_done;
	commit_submit(ctx->commit, &e->item);
	return 0;
}

int
ops_sha256(struct ops_ctx *ctx, const void *data, size_t len, unsigned char out[32])
{
	unsigned int n = 0;

	if (ctx->sha256 == NULL && (ctx->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		return -1;
	if (ctx->sha256_ctx == NULL && (ctx->sha256_ctx = EVP_MD_CTX_new()) == NULL)
		return -1;
	if (EVP_DigestInit_ex2(ctx->sha256_ctx, ctx->sha256, NULL) != 1 ||
	    EVP_DigestUpdate(ctx->sha256_ctx, data, len) != 1 ||
	    EVP_DigestFinal_ex(ctx->sha256_ctx, out, &n) != 1 || n != 32)
		return -1;
	return 0;
}

void
ops_sha256_free(struct ops_ctx *ctx)
{
	EVP_MD_CTX_free(ctx->sha256_ctx);
	ctx->sha256_ctx = NULL;
	EVP_MD_free(ctx->sha256);
	ctx->sha256 = NULL;
}

void
ops_chain_fill(struct ops_ctx *ctx, struct proto_chain *chain)
{
	chain->count = 0;
	for (size_t i = 0; i < 2; i++) {
		if (ctx->chain_der[i] == NULL)
			continue;
		chain->der[chain->count].ptr = ctx->chain_der[i];
		chain->der[chain->count].len = ctx->chain_len[i];
		chain->count++;
	}
}
