/*
 * ops_dispatch.c - from the socket to the handlers: the caller check at
 * connect time, decoding, the operation and rate checks every request passes,
 * each caller's share of the daemon, fair service between callers, and the
 * table of handlers. Refusals made here are audited like any other.
 *
 * Where requests wait, and why there: a request's cost is spread over the
 * loop (decoding, X.509, DNS), the writer thread (INTENT and RESULT commits,
 * each group one fsync) and the HSM process, and which of them is the
 * bottleneck changes with the operation and the machine; all of them serve
 * their queues in arrival order. Rather than make each of them fair, the
 * dispatch lets only a window of requests (OPS_SERVICE_WINDOW) into them at
 * a time and keeps the rest here, one FIFO per caller, let in round robin
 * between callers. A caller's request then waits behind at most a window's
 * worth of work, whoever floods, and the window is wide enough to keep the
 * HSM link's batches and the commit groups full. Round robin counts
 * requests, not their cost: the costly operations (ISSUE, SIGN_RRSET,
 * REVOKE) are within a few times of each other, and a caller's share is
 * bounded anyway by its own limits.
 *
 * Admission: a caller may hold at most its max-queued requests in the daemon
 * (waiting or in service); and when the daemon as a whole holds more than
 * max_inflight, a caller holding its fair share of that (max_inflight divided
 * by the callers with requests in) or more gets BUSY while the others are
 * still admitted. Connections are counted per caller at connect time against
 * max-connections.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/buf.h"
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

static void dispatch(struct ops_req *r);
static void service_enqueue(struct ops_req *r);
static void service_pump(struct ops_ctx *ctx);

/* ---- callers' shares ---- */

/* Finds or makes the load record of caller @p name, with a reference. */
static struct ops_caller_load *
load_get(struct ops_ctx *ctx, const char *name)
{
	struct ops_caller_load *l;

	for (l = ctx->loads; l; l = l->next)
		if (strcmp(l->name, name) == 0)
			break;
	if (l == NULL) {
		if (strlen(name) >= sizeof(l->name) || (l = calloc(1, sizeof(*l))) == NULL)
			return NULL;
		strcpy(l->name, name);
		l->next = ctx->loads;
		ctx->loads = l;
	}
	l->refs++;
	return l;
}

static void
load_unref(struct ops_ctx *ctx, struct ops_caller_load *l)
{
	struct ops_caller_load **pp;

	if (l == NULL || --l->refs > 0)
		return;
	for (pp = &ctx->loads; *pp != l; pp = &(*pp)->next)
		;
	*pp = l->next;
	free(l);
}

/* A caller's limits: its own, or derived from the daemon's global caps. */
static uint64_t
caller_max_connections(const struct ops_ctx *ctx, const struct policy_caller *c)
{
	size_t cap = ctx->server ? server_max_conns(ctx->server) : 1024;

	if (c->max_connections > 0)
		return (uint64_t)c->max_connections;
	return cap / 2 > 0 ? cap / 2 : 1;
}

static uint64_t
caller_max_queued(const struct ops_ctx *ctx, const struct policy_caller *c)
{
	if (c->max_queued > 0)
		return (uint64_t)c->max_queued;
	return ctx->max_inflight / 2 > 0 ? ctx->max_inflight / 2 : 1;
}

/*
 * Counts @p r against its connection's caller, or refuses it (BUSY, with the
 * message in @p msg): over the caller's max-queued, or over its fair share
 * while the daemon is past its cap. @return 0 if admitted.
 */
static int
over_share(struct ops_ctx *ctx, struct ops_caller_load *l, uint64_t limit, char *msg,
	   size_t msglen)
{
	uint64_t callers, share;

	if (l->count >= limit) {
		snprintf(msg, msglen, "caller %s has %llu requests in the daemon, its max-queued; "
			 "retry later", l->name, (unsigned long long)l->count);
		return -1;
	}
	if (ctx->inflight > ctx->max_inflight) {
		callers = ctx->loaded_callers + (l->count == 0);
		share = ctx->max_inflight / (callers ? callers : 1);
		if (l->count >= share) {
			snprintf(msg, msglen, "the daemon is loaded and caller %s holds its fair "
				 "share (%llu requests); retry later", l->name,
				 (unsigned long long)l->count);
			return -1;
		}
	}
	return 0;
}

static int
admit(struct ops_req *r, char *msg, size_t msglen)
{
	struct ops_ctx *ctx = r->ctx;
	struct ops_caller_load *l = r->conn ? server_conn_data(r->conn) : NULL;

	if (l == NULL)
		return 0; /* not a counted connection (cannot happen after on_accept) */
	l->max_queued = caller_max_queued(ctx, r->caller);
	if (over_share(ctx, l, l->max_queued, msg, msglen) != 0)
		return -1;
	if (l->count++ == 0)
		ctx->loaded_callers++;
	l->last_seen = uv_now(ctx->loop);
	l->refs++;
	r->load = l;
	return 0;
}

/* Drops a request's connection: it is audited but nobody gets its reply. */
static void
req_detach(struct ops_req *r)
{
	server_conn_unref(r->conn);
	r->conn = NULL;
}

/* A known caller at its max-connections: audited, and the connection closed unread. */
static void
refuse_connection(struct ops_ctx *ctx, server_conn_t *c, const struct policy_caller *caller,
		  uint64_t limit)
{
	const struct server_peer *peer = server_conn_peer(c);
	struct ops_req *r;
	char rule[POLICY_RULE_MAX];

	ops_log(ctx, OPS_LOG_NOTICE, "refused connection from uid %u gid %u pid %d: caller %s "
		"has %llu connections open", (unsigned)peer->uid, (unsigned)peer->gid,
		(int)peer->pid, caller->name, (unsigned long long)limit);
	if ((r = ops_req_new(ctx, c, NULL, 0)) == NULL)
		return;
	req_detach(r);
	r->caller = caller;
	r->audit_op = "connect";
	snprintf(rule, sizeof(rule), "callers.%s.max-connections", caller->name);
	ops_req_refuse(r, PROTO_CODE_BUSY, rule, "caller %s has %llu connections open, its "
		       "max-connections; connection closed", caller->name,
		       (unsigned long long)limit);
	ops_deny(r);
}

static int
on_accept(void *arg, server_conn_t *c, const struct server_peer *peer)
{
	struct ops_ctx *ctx = arg;
	const struct policy_caller *caller = NULL;
	struct ops_caller_load *l;
	struct policy_decision d;
	struct ops_req *r;
	uint64_t limit;

	if (!ctx->ready || ctx->stopping || ctx->dying)
		return -1;
	if (policy_caller_find(ctx->policy->pol, peer->uid, peer->gid, &caller, &d) == POLICY_ALLOW) {
		if ((l = load_get(ctx, caller->name)) == NULL)
			return -1; /* out of memory */
		limit = caller_max_connections(ctx, caller);
		if (l->conns >= limit) {
			load_unref(ctx, l);
			refuse_connection(ctx, c, caller, limit);
			return -1;
		}
		l->conns++;
		l->max_queued = caller_max_queued(ctx, caller);
		server_conn_set_data(c, l); /* the connection's reference */
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

/* ---- fair service ---- */

/* Puts an admitted request in its caller's queue (the caller in the round robin). */
static void
service_enqueue(struct ops_req *r)
{
	struct ops_ctx *ctx = r->ctx;
	struct ops_caller_load *l = r->load;

	if (l == NULL) {
		/* Not counted (no connection data): served at once, outside the window. */
		dispatch(r);
		return;
	}
	r->q_next = NULL;
	if (l->q_tail)
		l->q_tail->q_next = r;
	else
		l->q_head = r;
	l->q_tail = r;
	if (!l->in_ring) {
		l->in_ring = 1;
		l->ring_next = NULL;
		if (ctx->ring_tail)
			ctx->ring_tail->ring_next = l;
		else
			ctx->ring_head = l;
		ctx->ring_tail = l;
	}
}

/*
 * Lets waiting requests into service while the window has room, one per
 * caller in turn. Handlers may answer at once (and so free a slot) or call
 * back into here: the loop runs once and picks those up.
 */
/*
 * The window in force: narrow while more than one caller has had requests in
 * lately (a caller that sends one request now and then counts between its
 * requests too, or the flood would refill the wide window behind its back),
 * sized by the rate requests leave service (smoothed over quarter seconds).
 * Alone, a caller gets what the daemon serves in OPS_ALONE_WAIT_MS: enough to
 * keep every stage busy, and what a caller that comes along waits for once.
 */
static uint64_t
service_window(struct ops_ctx *ctx)
{
	uint64_t now = uv_now(ctx->loop), w;
	unsigned n = 0;

	if (now - ctx->service_t0 >= 250) {
		uint64_t rate = ctx->service_done * 1000 / (now - ctx->service_t0);

		/* Up at once (a burst needs its window now), down slowly. */
		ctx->service_rate = rate >= ctx->service_rate || ctx->service_t0 == 0
					    ? rate : (3 * ctx->service_rate + rate) / 4;
		ctx->service_done = 0;
		ctx->service_t0 = now;
	}
	if (ctx->service_window)
		return ctx->service_window;
	for (struct ops_caller_load *l = ctx->loads; l && n < 2; l = l->next)
		if (l->count > 0 || (l->last_seen && now - l->last_seen < OPS_SHARED_MS))
			n++;
	w = ctx->service_rate * (n < 2 ? OPS_ALONE_WAIT_MS : OPS_SHARED_WAIT_MS) / 1000;
	return w < OPS_SERVICE_WINDOW_MIN ? OPS_SERVICE_WINDOW_MIN
	       : w > OPS_SERVICE_WINDOW ? OPS_SERVICE_WINDOW : w;
}

static void
service_pump(struct ops_ctx *ctx)
{
	uint64_t window;

	if (ctx->pumping)
		return;
	ctx->pumping = 1;
	window = service_window(ctx);
	while (ctx->ring_head && ctx->service_active < window) {
		struct ops_caller_load *l = ctx->ring_head;
		struct ops_req *r = l->q_head;

		ctx->ring_head = l->ring_next;
		if (ctx->ring_head == NULL)
			ctx->ring_tail = NULL;
		l->ring_next = NULL;
		l->in_ring = 0;
		l->q_head = r->q_next;
		if (l->q_head == NULL)
			l->q_tail = NULL;
		r->q_next = NULL;
		if (l->q_head) {
			/* Still waiting: to the back of the round robin. */
			l->in_ring = 1;
			if (ctx->ring_tail)
				ctx->ring_tail->ring_next = l;
			else
				ctx->ring_head = l;
			ctx->ring_tail = l;
		}
		r->in_service = 1;
		l->active++;
		ctx->service_active++;
		if (ctx->dying)
			ops_reply_error(r, PROTO_CODE_UNAVAILABLE,
					"the daemon is going down (HSM process lost)");
		else
			dispatch(r);
	}
	ctx->pumping = 0;
}

void
ops_service_release(struct ops_req *r)
{
	struct ops_ctx *ctx = r->ctx;
	struct ops_caller_load *l = r->load;

	if (r->in_service) {
		r->in_service = 0;
		l->active--;
		ctx->service_active--;
		/* Answered inside its own dispatch (CHAIN, a refusal): no queue held
		 * it, and counting it would size the window by the cheapest work. */
		if (!ctx->pumping)
			ctx->service_done++;
		/* Not from here: this runs deep inside whatever finished the request. */
		if (ctx->ring_head && !ctx->pumping)
			server_wake(ctx->server);
	}
	if (l) {
		if (--l->count == 0)
			ctx->loaded_callers--;
		l->last_seen = uv_now(ctx->loop);
		r->load = NULL;
		load_unref(ctx, l);
	}
}

/*
 * A flood is answered BUSY before anything is set aside for it: with the
 * limit its caller had at its last admitted request (admit() checks again
 * with the policy in force). @return 1 if answered.
 */
static int
busy_early(struct ops_ctx *ctx, server_conn_t *c, const uint8_t *frame, size_t len)
{
	struct ops_caller_load *l = server_conn_data(c);
	struct proto_header h;
	struct buf_writer w;
	char msg[POLICY_MESSAGE_MAX];
	uint8_t *data = NULL;
	size_t n = 0;

	if (l == NULL || ctx->stopping || ctx->dying ||
	    over_share(ctx, l, l->max_queued, msg, sizeof(msg)) == 0 ||
	    proto_header_parse(frame, len, ctx->cfg->socket.max_frame, &h) != PROTO_OK ||
	    h.type == PROTO_OP_HELLO)
		return 0;
	buf_writer_init(&w, PROTO_REPLY_MAX);
	if (proto_error_encode(&w, h.id, PROTO_CODE_BUSY, msg) != PROTO_OK ||
	    buf_writer_take(&w, &data, &n) != BUF_OK) {
		buf_writer_release(&w);
		return 0; /* the long way answers it */
	}
	buf_writer_release(&w);
	server_conn_reply(c, data, n, 0);
	return 1;
}

static void
on_frame(void *arg, server_conn_t *c, const uint8_t *frame, size_t len)
{
	struct ops_ctx *ctx = arg;
	struct policy_decision d;
	struct policy_ratelimit *rl;
	struct ops_req *r;
	char busy[POLICY_MESSAGE_MAX];
	int pop;

	if (busy_early(ctx, c, frame, len))
		return;
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
	/* The decisions' texts are made only for a refusal: an allowed request
	 * records the rule of the operation's own check alone. */
	r->caller = policy_caller_lookup(r->pol->pol, r->peer.uid, r->peer.gid);
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
		policy_caller_find(r->pol->pol, r->peer.uid, r->peer.gid, &r->caller, &d);
		ops_req_refuse_decision(r, PROTO_CODE_DENIED, &d);
		ops_deny(r);
		return;
	}
	if (r->req.op == PROTO_OP_HELLO) {
		reply_hello(r);
		return;
	}
	/* Before the checks that audit: a refusal here costs nothing durable. */
	if (admit(r, busy, sizeof(busy)) != 0) {
		ops_log(ctx, OPS_LOG_DEBUG, "uid %u: request %u answered BUSY: %s",
			(unsigned)r->peer.uid, (unsigned)r->req.id, busy);
		ops_reply_error(r, PROTO_CODE_BUSY, busy);
		return;
	}
	if (!policy_caller_may(r->caller, (enum policy_op)pop) &&
	    policy_check_operation(r->pol->pol, r->caller, (enum policy_op)pop, &d) != POLICY_ALLOW) {
		ops_req_refuse_decision(r, PROTO_CODE_DENIED, &d);
		ops_deny(r);
		return;
	}
	/* No bucket: no rate limit, allowed (policy_ratelimit_check would say so). */
	if ((rl = ops_bucket_find(ctx, r->caller->name)) != NULL &&
	    policy_ratelimit_check(rl, r->caller->name, uv_now(ctx->loop), 1, &d) != POLICY_ALLOW) {
		ops_req_refuse_decision(r, PROTO_CODE_RATE_LIMITED, &d);
		ops_deny(r);
		return;
	}
	service_enqueue(r);
	service_pump(ctx);
}

/* Hands an admitted request to its handler. */
static void
dispatch(struct ops_req *r)
{
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

static void
on_closed(void *arg, server_conn_t *c)
{
	struct ops_caller_load *l = server_conn_data(c);

	if (l == NULL)
		return;
	l->conns--;
	server_conn_set_data(c, NULL);
	load_unref(arg, l);
}

static void
on_wake(void *arg)
{
	service_pump(arg);
}

const struct server_callbacks ops_server_callbacks = {
	.accept = on_accept,
	.frame = on_frame,
	.frame_error = on_frame_error,
	.busy = on_busy,
	.closed = on_closed,
	.wake = on_wake,
};
