/*
 * ops_revoke.c - REVOKE: mark a certificate revoked and remove its name from
 * the zone, under policy.
 *
 * The certificate is named by device and index, or device and serial, or
 * both (then they must agree). The policy decides with the name of the caller
 * the certificate was issued to (revoke: own | any) and the reason. A
 * certificate revoked already is answered as the first time (same time, no
 * new record): REVOKE is idempotent. First pass: the decision and the INTENT
 * record commit. Then the zone removes <index>.<device> (the NSEC chain now
 * proves it gone) and the revocation and the RESULT record commit in the
 * zone's transaction; the reply carries that serial. A certificate whose
 * name is not in the zone (its record expired, or it was issued before the
 * zone existed) is revoked in the store alone. The next CRL request signs a
 * new CRL.
 *
 * A request that names the index (the usual case) hands its zone change to
 * the zone at once, beside the first pass: the zone thread finds the name
 * and its NSEC neighbours and builds the change while the INTENT commits,
 * and only its signing waits (ops_zone_submit_held()): the HSM is asked
 * once the INTENT is durable, never before, and never for a request whose
 * first pass refused it or failed (the change is then dropped unsigned and
 * the reply waits until the zone gave the request back). A request named
 * by serial alone learns its index in the first pass, so its change starts
 * after it.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/ops_ctx.h"
#include "signer/ops_zone.h"

enum revoke_outcome {
	REVOKE_REFUSED = 1,
	REVOKE_REPEAT,
	REVOKE_ZONE,   /* intent committed: the zone removes the name next */
	REVOKE_DONE,
};

struct revoke_state {
	struct ops_zreq z;
	int reason;
	unsigned char serial[STORE_SERIAL_MAX]; /* from the request, if given */
	size_t serial_len;
	int outcome;
	unsigned char row_serial[STORE_SERIAL_MAX]; /* of the certificate revoked */
	size_t row_serial_len;
	int64_t revoked_at;
	char serial_hex[2 * STORE_SERIAL_MAX + 1];
	int hash_only;                /* an IMPORT record known by its hash only */
	uint32_t zone_serial;
	bool published;               /* zone_serial is the version that removed the name */
	/* The zone change started beside the first pass (see the file comment). */
	bool early;
	bool intent_finished;         /* the first pass's done ran: intent_status */
	int intent_status;
	bool intent_ok;               /* it committed the INTENT: the zone may go on */
	bool zone_finished;           /* the zone gave the request back first */
	int zone_status_early;
	uint32_t zone_serial_early;
	/* Stage trace (commit_now_ns(); 0 when the pipeline does not trace). */
	uint64_t t_start;             /* ops_revoke */
	uint64_t t_intent[COMMIT_T_DURABLE + 1]; /* the first pass's commit stages */
	uint64_t t_intent_done;       /* its done callback (loop) */
	uint64_t t_zone_done;         /* the zone's done callback (loop) */
};

/*
 * Debug: the stage times of one revocation in µs since ops_revoke (the
 * zone's own stages are on the "trace zone" line of the same serial).
 */
static void
trace_log(struct ops_ctx *ctx, const struct revoke_state *s, uint64_t t_replied)
{
	uint64_t t0 = s->t_start;

#define US(x) ((x) >= t0 ? (unsigned long long)(((x) - t0) / 1000) : 0ULL)
	ops_log(ctx, OPS_LOG_DEBUG,
		"trace revoke serial=%u published=%d early=%d t0=%llu isub=%llu irun=%llu icommit=%llu "
		"idurable=%llu idone=%llu zdone=%llu replied=%llu",
		(unsigned)s->zone_serial, (int)s->published, (int)s->early, (unsigned long long)(t0 / 1000),
		US(s->t_intent[COMMIT_T_SUBMIT]), US(s->t_intent[COMMIT_T_RUN]),
		US(s->t_intent[COMMIT_T_COMMIT]), US(s->t_intent[COMMIT_T_DURABLE]),
		US(s->t_intent_done), US(s->t_zone_done), US(t_replied));
#undef US
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i = 0, o = 0;

	while (i + 1 < n && p[i] == 0)
		i++; /* normalised: no leading zeros */
	for (; i < n; i++) {
		if (o > 0 || p[i] >> 4)
			out[o++] = digits[p[i] >> 4];
		out[o++] = digits[p[i] & 15];
	}
	out[o] = '\0';
}

static int
unhex(const char *s, unsigned char *out, size_t cap, size_t *len)
{
	size_t n = strlen(s), o = 0, i = 0;

	if ((n + 1) / 2 > cap)
		return -1;
	if (n % 2) {
		out[o++] = (unsigned char)(isdigit((unsigned char)s[0]) ? s[0] - '0' : s[0] - 'a' + 10);
		i = 1;
	}
	for (; i < n; i += 2) {
		int hi = isdigit((unsigned char)s[i]) ? s[i] - '0' : s[i] - 'a' + 10;
		int lo = isdigit((unsigned char)s[i + 1]) ? s[i + 1] - '0' : s[i + 1] - 'a' + 10;

		out[o++] = (unsigned char)(hi << 4 | lo);
	}
	*len = o;
	return 0;
}

static int
refuse(struct ops_writer *w, struct ops_req *r)
{
	((struct revoke_state *)r->op_state)->outcome = REVOKE_REFUSED;
	return ops_audit_deny(w, r);
}

static int
store_status(int e)
{
	return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
}

/* Finds the certificate the request names; 1 if refused (recorded in r). */
static int
find_cert(struct ops_writer *w, struct ops_req *r, struct store_cert *c, int *refused)
{
	struct revoke_state *s = r->op_state;
	struct store_cert other;
	int e;

	*refused = 1;
	if (r->index) {
		e = store_cert_get_by_index(w->st, r->device, r->index, c);
		if (e == STORE_ENOTFOUND) {
			ops_req_refuse(r, PROTO_CODE_NOT_FOUND, "builtin.certificate",
				       "device %s has no certificate at index %u", r->device,
				       (unsigned)r->index);
			return COMMIT_OK;
		}
		if (e != 0)
			return store_status(e);
	}
	if (s->serial_len) {
		memset(&other, 0, sizeof(other));
		e = store_cert_get_by_serial(w->st, s->serial, s->serial_len, &other);
		if (e != 0 && e != STORE_ENOTFOUND)
			return store_status(e);
		if (e == STORE_ENOTFOUND || strcmp(other.device, r->device) != 0) {
			store_cert_clear(&other);
			ops_req_refuse(r, PROTO_CODE_NOT_FOUND, "builtin.certificate",
				       "device %s has no certificate with that serial", r->device);
			return COMMIT_OK;
		}
		if (r->index && other.index != r->index) {
			store_cert_clear(&other);
			ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.certificate",
				       "index %u and the serial name different certificates",
				       (unsigned)r->index);
			return COMMIT_OK;
		}
		if (!r->index)
			*c = other; /* takes its DER */
		else
			store_cert_clear(&other);
	}
	r->index = c->index;
	*refused = 0;
	return COMMIT_OK;
}

static int
revoke_run(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;
	struct ops_writer *w = env;
	struct revoke_state *s = r->op_state;
	struct policy_decision d;
	struct audit_request a;
	struct store_cert c;
	int e, refused = 0;

	memset(&c, 0, sizeof(c));
	if ((e = find_cert(w, r, &c, &refused)) != COMMIT_OK || refused) {
		store_cert_clear(&c);
		return e != COMMIT_OK ? e : refuse(w, r);
	}
	memcpy(s->row_serial, c.serial, c.serial_len);
	s->row_serial_len = c.serial_len;
	/*
	 * A record imported by its hash only has a synthetic serial that no
	 * certificate carries: the revocation removes its name and is audited,
	 * but no CRL can list it and the reply names no certificate serial.
	 */
	s->hash_only = store_import_serial_is_synthetic(c.serial, c.serial_len);
	if (s->hash_only)
		s->serial_hex[0] = '\0';
	else
		hex(c.serial, c.serial_len, s->serial_hex);
	if (policy_check_revoke(r->pol->pol, r->caller, c.caller_name, s->reason, &d) != POLICY_ALLOW) {
		store_cert_clear(&c);
		ops_req_refuse_decision(r, ops_policy_wire_code(d.code), &d);
		return refuse(w, r);
	}
	if (c.status == STORE_CERT_REVOKED) {
		/* Revoked already: the first revocation's answer, nothing new. */
		s->revoked_at = c.revoked_at;
		s->outcome = REVOKE_REPEAT;
		store_cert_clear(&c);
		return COMMIT_OK;
	}
	store_cert_clear(&c);
	memset(&a, 0, sizeof(a));
	ops_req_audit_caller(r, &a.caller);
	a.op = r->audit_op;
	a.device = r->device;
	a.index = r->index;
	a.allow = 1;
	a.rule = d.rule;
	a.policy_sha256 = policy_sha256(r->pol->pol);
	a.detail = d.message;
	if ((e = audit_request(w->audit, &a, &r->intent)) != 0)
		return ops_audit_status(e);
	s->outcome = REVOKE_ZONE;
	return COMMIT_OK;
}

static void
revoke_undo(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;

	(void)env;
	r->intent = 0;
	((struct revoke_state *)r->op_state)->outcome = 0;
}

/*
 * Writer thread: the revocation and its RESULT, in the zone's transaction
 * (naming its @p serial) or alone (@p serial 0: the zone did not change).
 */
static int
revoke_store(struct ops_req *r, struct ops_writer *w, uint32_t serial)
{
	struct revoke_state *s = r->op_state;
	struct audit_result res;
	struct store_cert after;
	char detail[96];
	int e;

	memset(&after, 0, sizeof(after));
	e = store_cert_revoke(w->st, s->row_serial, s->row_serial_len, r->now, s->reason, &after);
	if (e != 0 && e != STORE_EALREADY)
		return store_status(e);
	s->revoked_at = after.revoked_at;
	store_cert_clear(&after);
	memset(&res, 0, sizeof(res));
	res.op = r->audit_op;
	res.device = r->device;
	res.index = r->index;
	res.serial = s->row_serial;
	res.serial_len = s->row_serial_len;
	if (s->hash_only) {
		snprintf(detail, sizeof(detail), "%s; imported by hash only: no CRL entry",
			 policy_reason_name(s->reason));
		res.detail = detail;
	} else {
		res.detail = policy_reason_name(s->reason);
	}
	res.has_zone_serial = serial != 0;
	res.zone_serial = serial;
	if ((e = audit_result(w->audit, r->intent, &res)) != 0)
		return ops_audit_status(e);
	s->outcome = REVOKE_DONE;
	return COMMIT_OK;
}

static int
revoke_store_run(struct commit_item *it, void *env)
{
	return revoke_store((struct ops_req *)it, env, 0);
}

/* The final answer, once the revocation (or the refusal) is committed. */
static void
revoke_reply(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct revoke_state *s = r->op_state;
	struct proto_reply rep;

	if (status != COMMIT_OK) {
		ops_reply_failed_commit(r, status);
		return;
	}
	if (s->outcome == REVOKE_REFUSED || r->err_code != 0) {
		ops_reply_refusal(r);
		return;
	}
	if (s->zone_serial == 0)
		s->zone_serial = ops_zone_serial(r->ctx); /* no zone change: the current one */
	if (s->outcome == REVOKE_DONE)
		ops_crl_changed(r->ctx);
	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = PROTO_OP_REVOKE;
	rep.u.revoke.serial_hex = proto_bytes_str(s->serial_hex);
	rep.u.revoke.revoked_at = (uint64_t)s->revoked_at;
	rep.u.revoke.zone_serial = s->zone_serial;
	if (s->outcome == REVOKE_DONE || s->t_start) {
		/*
		 * ops_reply frees the request and its state: what the log line
		 * and the trace need is kept, and they are written after the
		 * reply (a write to the log is not the caller's to wait for;
		 * the audit record is already durable).
		 */
		struct revoke_state copy = *s;
		struct ops_ctx *ctx = r->ctx;
		char device[sizeof(r->device)], caller[128];
		unsigned index = (unsigned)r->index;

		memcpy(device, r->device, sizeof(device));
		snprintf(caller, sizeof(caller), "%s", ops_req_caller_name(r));
		ops_reply(r, &rep);
		if (copy.outcome == REVOKE_DONE)
			ops_log(ctx, OPS_LOG_INFO, "revoked %u.%s serial %s (%s) for %s", index,
				device, copy.serial_hex, policy_reason_name(copy.reason), caller);
		if (copy.t_start)
			trace_log(ctx, &copy, commit_now_ns());
		return;
	}
	ops_reply(r, &rep);
}

/* Loop: the zone's answer, once the first pass committed too. */
static void
revoke_zone_result(struct ops_req *r, int status, uint32_t serial)
{
	struct revoke_state *s = r->op_state;

	if (s->early && !s->intent_ok) {
		/* Refused, repeated or failed in the first pass: its change was
		 * never signed nor published; the answer is the first pass's. */
		revoke_reply(&r->item, s->intent_status);
		return;
	}
	if (status == 0) {
		s->zone_serial = serial;
		s->published = true;
		revoke_reply(&r->item, COMMIT_OK);
		return;
	}
	if (status == ZONEPUB_EFATAL) {
		ops_reply_failed_commit(r, COMMIT_ERR_FATAL);
		return;
	}
	memset(&r->item, 0, sizeof(r->item));
	r->item.done = revoke_reply;
	if (status == ZONEPUB_ENOENT) {
		/* No name to remove (expired, or issued before the zone): the store alone. */
		r->item.run = revoke_store_run;
		commit_submit(r->ctx->commit, &r->item);
		return;
	}
	ops_log(r->ctx, OPS_LOG_WARNING, "revocation of %u.%s not published: %s",
		(unsigned)r->index, r->device, zonepub_strerror(status));
	ops_req_refuse(r, ops_zone_wire_code(status), "builtin.zone",
		       "the zone change failed: %s", zonepub_strerror(status));
	ops_result_submit(r, NULL, revoke_reply);
}

/* Loop: the name left the zone with the revocation committed, or not. */
static void
revoke_zone_done(struct ops_req *r, int status, uint32_t serial)
{
	struct revoke_state *s = r->op_state;

	if (s->t_start)
		s->t_zone_done = commit_now_ns();
	if (s->early && !s->intent_finished) {
		/* Back before the first pass (no name to remove, the zone is
		 * closing): it never reached the signer; wait for the first pass. */
		s->zone_finished = true;
		s->zone_status_early = status;
		s->zone_serial_early = serial;
		return;
	}
	revoke_zone_result(r, status, serial);
}

/* The zone change of @p r (the device's name goes). */
static void
zone_prepare(struct ops_req *r, struct revoke_state *s)
{
	memset(&s->z, 0, sizeof(s->z));
	s->z.ops[0].kind = ZONEPUB_OP_DEVICE_REMOVE;
	s->z.ops[0].dev.id = r->device;
	s->z.ops[0].dev.index = r->index;
	s->z.zr.n_ops = 1;
	s->z.r = r;
	s->z.store = revoke_store;
	s->z.done = revoke_zone_done;
}

/* Loop: the first pass committed. */
static void
revoke_done(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct revoke_state *s = r->op_state;

	if (s->t_start) {
		memcpy(s->t_intent, it->trace, sizeof(s->t_intent));
		s->t_intent_done = commit_now_ns();
	}
	if (s->early) {
		/* The INTENT is durable now (or will never be): the zone may ask
		 * the HSM for this change, or must drop it. */
		s->intent_finished = true;
		s->intent_status = status;
		s->intent_ok = status == COMMIT_OK && s->outcome == REVOKE_ZONE;
		ops_zone_release(r->ctx, &s->z, s->intent_ok);
		if (s->zone_finished)
			revoke_zone_result(r, s->zone_status_early, s->zone_serial_early);
		return;
	}
	if (status != COMMIT_OK || s->outcome != REVOKE_ZONE) {
		revoke_reply(it, status);
		return;
	}
	zone_prepare(r, s);
	ops_zone_submit(r->ctx, &s->z);
}

void
ops_revoke(struct ops_req *r)
{
	const struct proto_revoke *q = &r->req.u.revoke;
	const struct policy_device_id *rules = policy_device_id(r->pol->pol);
	struct revoke_state *s = calloc(1, sizeof(*s));
	char reason[PROTO_MAX_REASON + 1], serial[PROTO_MAX_SERIAL_HEX + 1];

	if (s == NULL) {
		ops_reply_error(r, PROTO_CODE_INTERNAL, "out of memory");
		return;
	}
	r->op_state = s;
	r->op_free = free;
	if (commit_trace_on(r->ctx->commit))
		s->t_start = commit_now_ns();
	memcpy(r->device, q->device_id.ptr ? (const char *)q->device_id.ptr : "", q->device_id.len);
	r->device[q->device_id.len] = '\0';
	r->index = q->index;
	for (size_t i = 0; i < q->device_id.len; i++) {
		if (!isxdigit((unsigned char)r->device[i])) {
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "device-id",
				       "device id may hold only hex digits");
			r->device[0] = '\0';
			ops_deny(r);
			return;
		}
		r->device[i] = (char)tolower((unsigned char)r->device[i]);
	}
	if ((int64_t)q->device_id.len < rules->min_length ||
	    (int64_t)q->device_id.len > rules->max_length) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "device-id",
			       "device id must have %lld to %lld hex digits",
			       (long long)rules->min_length, (long long)rules->max_length);
		ops_deny(r);
		return;
	}
	if (q->serial_hex.len) {
		if (proto_serial_normalize(q->serial_hex, serial) != PROTO_OK ||
		    unhex(serial, s->serial, sizeof(s->serial), &s->serial_len) != 0) {
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.serial",
				       "serial_hex is not a certificate serial number in hex");
			ops_deny(r);
			return;
		}
	}
	if (!r->index && !s->serial_len) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.arguments",
			       "name the certificate by index or serial");
		ops_deny(r);
		return;
	}
	memcpy(reason, q->reason.ptr ? (const char *)q->reason.ptr : "", q->reason.len);
	reason[q->reason.len] = '\0';
	if ((s->reason = policy_reason_from_name(reason)) < 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "revocation.reasons",
			       "'%.32s' is not an RFC 5280 revocation reason", reason);
		ops_deny(r);
		return;
	}
	r->item.run = revoke_run;
	r->item.undo = revoke_undo;
	r->item.done = revoke_done;
	commit_submit(r->ctx->commit, &r->item);
	if (r->index && ops_zone_served(r->ctx) != NULL) {
		/* The zone builds the change while the INTENT commits. */
		s->early = true;
		zone_prepare(r, s);
		ops_zone_submit_held(r->ctx, &s->z);
	}
}
