/*
 * ops_publish.c - PUBLISH and UNPUBLISH: one record of the registry zone
 * outside the device namespace, under policy.
 *
 * On the loop: the owner (absolute, or relative to the apex; "@" is the
 * apex), the type and the RDATA are parsed with ldns, and the policy decides
 * (the caller's publish subtrees; never the device namespace, a wildcard or a
 * type regsign manages or that moves trust). The INTENT record commits, then
 * the zone adds or removes the RR (signing the RRset, its NSEC and the SOA)
 * and the RESULT record commits in the zone's transaction. The reply carries
 * the serial that holds the change.
 *
 * PUBLISH of an RR that is already there succeeds without a change (the
 * current serial); UNPUBLISH with empty RDATA removes the whole RRset, and
 * of something absent gets NOT_FOUND.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "signer/ops_zone.h"
#include "zonesigner/zone_file.h"

/* An UNPUBLISH of a whole RRset removes at most this many RRs in one change. */
#define RRSET_MAX 1024

struct publish_state {
	struct ops_zreq z;
	int publish;                   /* PUBLISH, else UNPUBLISH */
	char owner[PROTO_MAX_DNAME + 2];
	char type[PROTO_MAX_RRTYPE + 1];
	ldns_rr **rrs;
	size_t n;
	struct zonepub_op *ops;
	char detail[PROTO_MAX_DNAME + 64];
	uint32_t zone_serial;
};

static void
publish_state_free(void *p)
{
	struct publish_state *s = p;

	if (s == NULL)
		return;
	for (size_t i = 0; i < s->n; i++)
		ldns_rr_free(s->rrs[i]);
	free(s->rrs);
	free(s->ops);
	free(s);
}

static void
text_of(struct proto_bytes b, char *out, size_t cap)
{
	size_t n = b.len < cap - 1 ? b.len : cap - 1;

	memcpy(out, b.ptr ? (const char *)b.ptr : "", n);
	out[n] = '\0';
}

/* The owner in absolute, lowercase presentation form; -1 if it does not parse. */
static int
owner_absolute(const char *in, const char *zone, char *out, size_t cap)
{
	ldns_rdf *d = NULL;
	char *s;
	int r = -1;

	if (strcmp(in, "@") == 0)
		snprintf(out, cap, "%s", zone);
	else if (in[0] != '\0' && in[strlen(in) - 1] == '.')
		snprintf(out, cap, "%s", in);
	else if (in[0] != '\0')
		snprintf(out, cap, "%s.%s", in, zone);
	else
		return -1;
	if (ldns_str2rdf_dname(&d, out) != LDNS_STATUS_OK)
		return -1;
	ldns_dname2canonical(d);
	if ((s = ldns_rdf2str(d)) != NULL && strlen(s) < cap) {
		snprintf(out, cap, "%s", s);
		r = 0;
	}
	free(s);
	ldns_rdf_deep_free(d);
	return r;
}

static int
push_rr(struct publish_state *s, ldns_rr *rr)
{
	ldns_rr **v = realloc(s->rrs, (s->n + 1) * sizeof(*v));

	if (v == NULL)
		return -1;
	s->rrs = v;
	s->rrs[s->n++] = rr;
	return 0;
}

/* The RR of a PUBLISH, or of an UNPUBLISH with RDATA; 0, or -1 (refusal recorded). */
static int
parse_rr(struct ops_req *r, struct publish_state *s, const char *rdata, uint32_t ttl)
{
	const char *zone = policy_zone(r->pol->pol)->name;
	ldns_rdf *origin = NULL;
	ldns_rr *rr = NULL;
	char *line;
	size_t len = strlen(s->owner) + strlen(s->type) + strlen(rdata) + 32;
	ldns_status st;
	int quoted = 0;

	/*
	 * One RR on one line: no control character may start another. ldns
	 * closes an unterminated quoted string by itself; such RDATA is refused
	 * here rather than published as something the caller did not write.
	 */
	for (const char *p = rdata; *p; p++) {
		if ((unsigned char)*p < 0x20 && *p != '\t') {
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.dns-syntax",
				       "rdata holds a control character");
			return -1;
		}
		if (*p == '\\' && p[1] != '\0')
			p++;
		else if (*p == '"')
			quoted = !quoted;
	}
	if (quoted) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.dns-syntax",
			       "rdata has an unterminated quoted string");
		return -1;
	}
	if ((line = malloc(len)) == NULL) {
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.memory", "out of memory");
		return -1;
	}
	snprintf(line, len, "%s %u IN %s %s", s->owner, (unsigned)ttl, s->type, rdata);
	(void)ldns_str2rdf_dname(&origin, zone);
	st = ldns_rr_new_frm_str(&rr, line, ttl, origin, NULL);
	free(line);
	ldns_rdf_deep_free(origin);
	if (st != LDNS_STATUS_OK || rr == NULL ||
	    ldns_rr_get_type(rr) != ldns_get_rr_type_by_name(s->type) ||
	    ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
		ldns_rr_free(rr);
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.dns-syntax",
			       "%s RDATA does not parse: %s", s->type,
			       st != LDNS_STATUS_OK ? ldns_get_errorstr_by_id(st) : "type mismatch");
		return -1;
	}
	if (push_rr(s, rr) != 0) {
		ldns_rr_free(rr);
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.memory", "out of memory");
		return -1;
	}
	return 0;
}

/* UNPUBLISH without RDATA: every RR of the type at the owner, as served now. */
static int
whole_rrset(struct ops_req *r, struct publish_state *s, ldns_rr_type t)
{
	const struct zone *zone = ops_zone_served(r->ctx);
	ldns_rr_list *l = NULL;
	int e = 0;

	if (zone == NULL || zone_name_rrs(zone, s->owner, &l) != 0) {
		ops_req_refuse(r, PROTO_CODE_UNAVAILABLE, "builtin.zone", "the zone is not loaded");
		return -1;
	}
	for (size_t i = 0; e == 0 && i < ldns_rr_list_rr_count(l); i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i), *c;

		if (ldns_rr_get_type(rr) != t)
			continue;
		if (s->n == RRSET_MAX || (c = ldns_rr_clone(rr)) == NULL || push_rr(s, c) != 0) {
			ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.memory",
				       "the RRset is too large to remove at once");
			e = -1;
		}
	}
	ldns_rr_list_deep_free(l);
	if (e == 0 && s->n == 0) {
		ops_req_refuse(r, PROTO_CODE_NOT_FOUND, "builtin.record",
			       "no %s RRset at %s", s->type, s->owner);
		e = -1;
	}
	return e;
}

/* ---- after the decision ---- */

static void
reply_serial(struct ops_req *r, uint32_t serial)
{
	struct proto_reply rep;

	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = r->req.op;
	rep.u.zone_serial = serial;
	ops_reply(r, &rep);
}

/* Loop: the RESULT of a request the zone did not change committed. */
static void
result_done(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct publish_state *s = r->op_state;

	if (status != COMMIT_OK)
		ops_reply_failed_commit(r, status);
	else if (r->err_code != 0)
		ops_reply_refusal(r);
	else
		reply_serial(r, s->zone_serial);
}

static int
zone_store(struct ops_req *r, struct ops_writer *w, uint32_t serial)
{
	return ops_result_write(w, r, ((struct publish_state *)r->op_state)->detail, serial);
}

static void
zone_done(struct ops_req *r, int status, uint32_t serial)
{
	struct publish_state *s = r->op_state;

	if (status == 0) {
		ops_log(r->ctx, OPS_LOG_INFO, "%s for %s, zone serial %u", s->detail,
			ops_req_caller_name(r), (unsigned)serial);
		reply_serial(r, serial);
		return;
	}
	if (status == ZONEPUB_EFATAL) {
		ops_reply_failed_commit(r, COMMIT_ERR_FATAL);
		return;
	}
	s->zone_serial = serial;
	if (status == ZONEPUB_EEXIST && s->publish) {
		/* Idempotent: the record is there already; the current serial holds it. */
		snprintf(s->detail + strlen(s->detail), sizeof(s->detail) - strlen(s->detail),
			 " (present already)");
	} else if (status == ZONEPUB_ERESERVED) {
		ops_req_refuse(r, PROTO_CODE_DENIED, "builtin.zone",
			       "the zone manages %s records at %s itself", s->type, s->owner);
	} else if (status == ZONEPUB_ENOENT) {
		ops_req_refuse(r, PROTO_CODE_NOT_FOUND, "builtin.record",
			       "no such %s record at %s", s->type, s->owner);
	} else {
		ops_req_refuse(r, ops_zone_wire_code(status), "builtin.zone",
			       "the zone change failed: %s", zonepub_strerror(status));
	}
	ops_result_submit(r, s->detail, result_done);
}

static int
intent_run(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;

	return ops_audit_intent(env, r, ((struct publish_state *)r->op_state)->detail);
}

/* Loop: the INTENT committed; the zone makes the change. */
static void
intent_done(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct publish_state *s = r->op_state;

	if (status != COMMIT_OK) {
		ops_reply_failed_commit(r, status);
		return;
	}
	if ((s->ops = calloc(s->n, sizeof(*s->ops))) == NULL) {
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.memory", "out of memory");
		ops_result_submit(r, NULL, result_done);
		return;
	}
	for (size_t i = 0; i < s->n; i++) {
		s->ops[i].kind = s->publish ? ZONEPUB_OP_RR_ADD : ZONEPUB_OP_RR_REMOVE;
		s->ops[i].rr = s->rrs[i];
	}
	memset(&s->z, 0, sizeof(s->z));
	s->z.zr.ops = s->ops;
	s->z.zr.n_ops = s->n;
	s->z.r = r;
	s->z.store = zone_store;
	s->z.done = zone_done;
	ops_zone_submit(r->ctx, &s->z);
}

void
ops_publish(struct ops_req *r)
{
	const struct proto_rr_change *q = &r->req.u.rr;
	struct publish_state *s = calloc(1, sizeof(*s));
	struct policy_decision d;
	char owner_in[PROTO_MAX_DNAME + 1], *rdata = NULL;
	ldns_rr_type t;

	if (s == NULL) {
		ops_reply_error(r, PROTO_CODE_INTERNAL, "out of memory");
		return;
	}
	r->op_state = s;
	r->op_free = publish_state_free;
	s->publish = r->req.op == PROTO_OP_PUBLISH;
	text_of(q->owner, owner_in, sizeof(owner_in));
	text_of(q->rrtype, s->type, sizeof(s->type));
	if ((rdata = malloc(q->rdata.len + 1)) == NULL) {
		ops_reply_error(r, PROTO_CODE_INTERNAL, "out of memory");
		return;
	}
	text_of(q->rdata, rdata, q->rdata.len + 1);
	/* The input hash covers the request's own words: owner, type, TTL, RDATA. */
	{
		EVP_MD_CTX *md = EVP_MD_CTX_new();
		unsigned char ttl[4] = { (unsigned char)(q->ttl >> 24), (unsigned char)(q->ttl >> 16),
					 (unsigned char)(q->ttl >> 8), (unsigned char)q->ttl };

		if (md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
		    EVP_DigestUpdate(md, owner_in, strlen(owner_in) + 1) == 1 &&
		    EVP_DigestUpdate(md, s->type, strlen(s->type) + 1) == 1 &&
		    EVP_DigestUpdate(md, ttl, 4) == 1 &&
		    EVP_DigestUpdate(md, rdata, strlen(rdata)) == 1 &&
		    EVP_DigestFinal_ex(md, r->input_sha256, NULL) == 1)
			r->input_name = "rr";
		EVP_MD_CTX_free(md);
	}
	if (owner_absolute(owner_in, policy_zone(r->pol->pol)->name, s->owner,
			   sizeof(s->owner)) != 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.dns-syntax",
			       "owner is not a domain name");
		goto deny;
	}
	if ((t = ldns_get_rr_type_by_name(s->type)) == 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.dns-syntax",
			       "unknown RR type '%.16s'", s->type);
		goto deny;
	}
	if (!s->publish && q->ttl != 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.arguments",
			       "UNPUBLISH takes TTL 0");
		goto deny;
	}
	if (policy_check_publish(r->pol->pol, r->caller,
				 s->publish ? POLICY_OP_PUBLISH : POLICY_OP_UNPUBLISH, s->owner,
				 s->type, &d) != POLICY_ALLOW) {
		ops_req_refuse_decision(r, ops_policy_wire_code(d.code), &d);
		goto deny;
	}
	if (s->publish || rdata[0] != '\0') {
		uint32_t ttl = q->ttl ? q->ttl : (uint32_t)policy_zone(r->pol->pol)->ttl;

		if (parse_rr(r, s, rdata, ttl) != 0)
			goto deny;
	} else if (whole_rrset(r, s, t) != 0) {
		goto deny;
	}
	free(rdata);
	snprintf(s->detail, sizeof(s->detail), "%s %s %s%s", s->publish ? "published" : "unpublished",
		 s->owner, s->type, !s->publish && q->rdata.len == 0 ? " RRset" : "");
	snprintf(r->rule, sizeof(r->rule), "%s", d.rule);
	r->item.run = intent_run;
	r->item.undo = ops_audit_intent_undo;
	r->item.done = intent_done;
	commit_submit(r->ctx->commit, &r->item);
	return;
deny:
	free(rdata);
	ops_deny(r);
}
