/*
 * ops_dispatch.c - from the socket to the handlers: the caller check at
 * connect time, decoding, the operation and rate checks every request passes,
 * and the table of handlers. Refusals made here are audited like any other.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/ops_ctx.h"

/* The policy's name of a request type, or NULL for HELLO and unknown types. */
static int
policy_op_of(uint8_t op)
{
	switch (op) {
	case PROTO_OP_ISSUE: return POLICY_OP_ISSUE;
	case PROTO_OP_REVOKE: return POLICY_OP_REVOKE;
	case PROTO_OP_REISSUE: return POLICY_OP_REISSUE;
	case PROTO_OP_CRL: return POLICY_OP_CRL;
	case PROTO_OP_CHAIN: return POLICY_OP_CHAIN;
	case PROTO_OP_STATUS: return POLICY_OP_STATUS;
	case PROTO_OP_PUBLISH: return POLICY_OP_PUBLISH;
	case PROTO_OP_UNPUBLISH: return POLICY_OP_UNPUBLISH;
	case PROTO_OP_SIGN_RRSET: return POLICY_OP_SIGN_RRSET;
	case PROTO_OP_ZONE_STATUS: return POLICY_OP_ZONE_STATUS;
	case PROTO_OP_IMPORT: return POLICY_OP_IMPORT;
	default: return -1;
	}
}

/* Drops a request's connection: it is audited but nobody gets its reply. */
static void
req_detach(struct ops_req *r)
{
	server_conn_unref(r->conn);
	r->conn = NULL;
}

static int
on_accept(void *arg, server_conn_t *c, const struct server_peer *peer)
{
	struct ops_ctx *ctx = arg;
	const struct policy_caller *caller = NULL;
	struct policy_decision d;
	struct ops_req *r;

	if (!ctx->ready || ctx->stopping || ctx->dying)
		return -1;
	if (policy_caller_find(ctx->policy->pol, peer->uid, peer->gid, &caller, &d) == POLICY_ALLOW) {
		ops_log(ctx, OPS_LOG_DEBUG, "connection from uid %u gid %u pid %d (caller %s)",
			(unsigned)peer->uid, (unsigned)peer->gid, (int)peer->pid, caller->name);
		return 0;
	}
	/* Unknown peer: one audit line, then the connection is closed unread. */
	ops_log(ctx, OPS_LOG_NOTICE, "refused connection from uid %u gid %u pid %d: %s",
		(unsigned)peer->uid, (unsigned)peer->gid, (int)peer->pid, d.message);
	if ((r = ops_req_new(ctx, c, NULL, 0)) != NULL) {
		req_detach(r);
		r->audit_op = "connect";
		ops_req_refuse_decision(r, PROTO_CODE_DENIED, &d);
		ops_deny(r);
	}
	return -1;
}

static void
on_frame_error(void *arg, server_conn_t *c, int err, uint32_t length)
{
	struct ops_ctx *ctx = arg;
	struct ops_req *r = ops_req_new(ctx, c, NULL, 0);

	if (r == NULL)
		return;
	req_detach(r); /* the server answered it with id 0 and closes */
	policy_caller_find(r->pol->pol, r->peer.uid, r->peer.gid, &r->caller, &(struct policy_decision){0});
	r->audit_op = "frame";
	if (err == PROTO_ERR_TOO_LARGE)
		ops_req_refuse(r, PROTO_CODE_TOO_LARGE, "builtin.protocol.max-frame",
			       "frame length %u above the maximum %u; connection closed",
			       (unsigned)length, (unsigned)ctx->cfg->socket.max_frame);
	else
		ops_req_refuse(r, PROTO_CODE_BAD_FRAME, "builtin.protocol.framing",
			       "frame length %u below 5; connection closed", (unsigned)length);
	ops_log(ctx, OPS_LOG_NOTICE, "uid %u: %s", (unsigned)r->peer.uid, r->msg);
	ops_deny(r);
}

static void
reply_hello(struct ops_req *r)
{
	const struct proto_hello *h = &r->req.u.hello;
	struct proto_reply rep;

	if (h->min_version > PROTO_VERSION || h->max_version < PROTO_VERSION ||
	    h->min_version > h->max_version) {
		ops_reply_error(r, PROTO_CODE_VERSION, "this server speaks protocol version 1 only");
		return;
	}
	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = PROTO_OP_HELLO;
	rep.u.hello.version = PROTO_VERSION;
	rep.u.hello.max_frame = r->ctx->cfg->socket.max_frame;
	rep.u.hello.server = proto_bytes_str(OPS_SERVER_NAME);
	ops_reply(r, &rep);
}

static void
reply_chain(struct ops_req *r)
{
	struct proto_reply rep;

	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = PROTO_OP_CHAIN;
	ops_chain_fill(r->ctx, &rep.u.chain);
	ops_reply(r, &rep);
}

static void
on_frame(void *arg, server_conn_t *c, const uint8_t *frame, size_t len)
{
	struct ops_ctx *ctx = arg;
	struct policy_decision d;
	struct ops_req *r;
	int pop;

	if ((r = ops_req_new(ctx, c, frame, len)) == NULL) {
		server_conn_close(c); /* out of memory: cannot even answer */
		return;
	}
	r->decode_err = proto_request_decode(r->frame, r->frame_len, ctx->cfg->socket.max_frame,
					     &r->req);
	if (ctx->dying) {
		ops_reply_error(r, PROTO_CODE_UNAVAILABLE, "the daemon is going down (HSM process lost)");
		return;
	}
	if (ctx->stopping) {
		ops_reply_error(r, PROTO_CODE_BUSY, "the daemon is shutting down");
		return;
	}
	/* Every connection has its queue depth; all of them together have this. */
	if (ctx->inflight > ctx->max_inflight) {
		ops_reply_error(r, PROTO_CODE_BUSY, "too many requests in the daemon; retry later");
		return;
	}
	policy_caller_find(r->pol->pol, r->peer.uid, r->peer.gid, &r->caller, &d);
	pop = policy_op_of(r->req.op);
	r->audit_op = pop >= 0 ? policy_op_name((enum policy_op)pop)
			       : r->req.op == PROTO_OP_HELLO ? "hello" : "frame";
	if (r->decode_err != PROTO_OK) {
		if (r->decode_err == PROTO_ERR_UNKNOWN_TYPE)
			ops_req_refuse(r, PROTO_CODE_UNKNOWN_OP, "builtin.protocol.operation",
				       "unknown request type %u", (unsigned)r->req.op);
		else
			ops_req_refuse(r, proto_err_code(r->decode_err), "builtin.protocol.frame",
				       "malformed %s request: %s",
				       proto_op_name(r->req.op) ? proto_op_name(r->req.op) : "unknown",
				       proto_strerror(r->decode_err));
		ops_deny(r);
		return;
	}
	if (r->caller == NULL) {
		/* The caller was in the policy at connect time but a reload removed it. */
		ops_req_refuse_decision(r, PROTO_CODE_DENIED, &d);
		ops_deny(r);
		return;
	}
	if (r->req.op == PROTO_OP_HELLO) {
		reply_hello(r);
		return;
	}
	if (policy_check_operation(r->pol->pol, r->caller, (enum policy_op)pop, &d) != POLICY_ALLOW) {
		ops_req_refuse_decision(r, PROTO_CODE_DENIED, &d);
		ops_deny(r);
		return;
	}
	if (policy_ratelimit_check(ops_bucket_find(ctx, r->caller->name), r->caller->name,
				   uv_now(ctx->loop), 1, &d) != POLICY_ALLOW) {
		ops_req_refuse_decision(r, PROTO_CODE_RATE_LIMITED, &d);
		ops_deny(r);
		return;
	}
	switch (r->req.op) {
	case PROTO_OP_ISSUE:
	case PROTO_OP_REISSUE:
		ops_issue(r);
		break;
	case PROTO_OP_REVOKE:
		ops_revoke(r);
		break;
	case PROTO_OP_CRL:
		ops_crl(r);
		break;
	case PROTO_OP_CHAIN:
		reply_chain(r);
		break;
	case PROTO_OP_STATUS:
		ops_status(r);
		break;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_UNPUBLISH:
		ops_publish(r);
		break;
	case PROTO_OP_SIGN_RRSET:
		ops_sign_rrset(r);
		break;
	case PROTO_OP_ZONE_STATUS:
		ops_zone_status(r);
		break;
	case PROTO_OP_IMPORT:
		ops_import(r);
		break;
	default:
		ops_req_refuse(r, PROTO_CODE_UNKNOWN_OP, "builtin.not-served",
			       "%s is not served by this version of regsignd",
			       proto_op_name(r->req.op));
		ops_deny(r);
		break;
	}
}

static void
on_busy(void *arg, server_conn_t *c, uint32_t id)
{
	struct ops_ctx *ctx = arg;

	ops_log(ctx, OPS_LOG_DEBUG, "uid %u: request %u answered BUSY (queue depth)",
		(unsigned)server_conn_peer(c)->uid, (unsigned)id);
}

const struct server_callbacks ops_server_callbacks = {
	.accept = on_accept,
	.frame = on_frame,
	.frame_error = on_frame_error,
	.busy = on_busy,
};
