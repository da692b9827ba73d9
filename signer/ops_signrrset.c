/*
 * ops_signrrset.c - SIGN_RRSET: an RRSIG over an RRset of another zone the
 * policy lets the caller sign for, by that zone's own key from the ceremony
 * (HSM role "<zone>/zsk", or "<zone>/ksk" for its DNSKEY RRset). Never the
 * registry zone: policy_check_sign_rrset refuses it, and the HSM process's
 * limits would refuse its keys for any other signer name.
 *
 * On the loop: the RRs are parsed with ldns and must form one RRset (same
 * owner, class IN, type and TTL, no duplicate); the policy bounds the zone,
 * the owner and the validity. The RRSIG data (RFC 4034 section 3.1.8.1: the
 * RRSIG RDATA without its signature, then the RRset in canonical form and
 * order) is built here; the INTENT record commits; the HSM process signs it
 * (raw r||s, algorithm 13) under its per-role limits; the RESULT record
 * commits; the reply carries the RRSIG RR in wire form.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/ops_zone.h"
#include "signer/x509.h"

/* At most this many RRs in one RRset. */
#define RRSET_MAX 4096

struct sign_state {
	char zone[PROTO_MAX_DNAME + 2];
	char owner[PROTO_MAX_DNAME + 2];
	char role[HSMPROTO_MAX_ROLE + 1];
	ldns_rr_list *rrset;           /* canonical, sorted */
	uint8_t signer[LDNS_MAX_DOMAINLEN]; /* the zone's name, canonical wire form */
	size_t signer_len;
	/* The RRSIG RDATA up to its signature (RFC 4034 3.1: type covered ...
	 * signer's name), then the signature from the HSM: written by hand
	 * rather than through an ldns_rr, whose dozen allocated fields cost
	 * more than the rest of the request's DNS work. */
	uint8_t pre[18 + LDNS_MAX_DOMAINLEN];
	size_t pre_len;
	uint8_t sig[64];
	uint8_t *data;                 /* RRSIG data to sign: pre, then the RRset */
	size_t len;
	char detail[2 * PROTO_MAX_DNAME + 64];
};

static void
sign_state_free(void *p)
{
	struct sign_state *s = p;

	if (s == NULL)
		return;
	ldns_rr_list_deep_free(s->rrset);
	free(s->data);
	free(s);
}

/* A 32-bit RRSIG time read with serial arithmetic around @p now (RFC 4034 3.1.5). */
static int64_t
time_near(uint32_t t, int64_t now)
{
	return now + (int32_t)(t - (uint32_t)now);
}

/*
 * Lowercase presentation form of a domain name rdf, escaped exactly as
 * ldns_rdf2str() prints the canonical name ('.', ';', '(', ')' and '\\'
 * after a backslash, bytes outside the printable ASCII range as \DDD, a dot
 * after every label, "." for the root). Written out here because ldns makes
 * a copy of the name and prints it one character per printf call: about
 * 7,000 instructions per name, two names per request.
 */
static int
dname_text(const ldns_rdf *d, char *out, size_t cap)
{
	const uint8_t *p = ldns_rdf_data(d);
	size_t n = ldns_rdf_size(d), i = 0, o = 0;

	if (p == NULL || n == 0 || n > LDNS_MAX_DOMAINLEN || cap < 2)
		return -1;
	if (n == 1) {
		out[0] = '.';
		out[1] = '\0';
		return 0;
	}
	while (i < n && p[i] != 0) {
		size_t len = p[i++];

		if (len > n - i)
			return -1;
		for (size_t k = 0; k < len; k++, i++) {
			uint8_t c = p[i];
			int esc = c == '.' || c == ';' || c == '(' || c == ')' || c == '\\';
			int ddd = c < 0x21 || c > 0x7e;

			if (c >= 'A' && c <= 'Z')
				c = (uint8_t)(c - 'A' + 'a');
			/* This character's form and room for the NUL after it. */
			if (o + (ddd ? 4 : esc ? 2 : 1) + 1 > cap)
				return -1;
			if (esc) {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else if (ddd) {
				out[o++] = '\\';
				out[o++] = (char)('0' + c / 100);
				out[o++] = (char)('0' + c / 10 % 10);
				out[o++] = (char)('0' + c % 10);
			} else {
				out[o++] = (char)c;
			}
		}
		if (i < n) {
			if (o + 2 > cap)
				return -1;
			out[o++] = '.';
		}
	}
	out[o] = '\0';
	return 0;
}

/*
 * The type's mnemonic as ldns_rr_type2str() writes it, without its malloc:
 * the descriptor's name, except for the meta types, which ldns names apart,
 * and the types it has no name for ("TYPE%u"), left to ldns.
 */
static void
type_text(ldns_rr_type t, char *out, size_t cap)
{
	const ldns_rr_descriptor *d = ldns_rr_descript(t);
	char *tn;

	if (d != NULL && d->_name != NULL && t != LDNS_RR_TYPE_IXFR && t != LDNS_RR_TYPE_AXFR &&
	    t != LDNS_RR_TYPE_MAILA && t != LDNS_RR_TYPE_MAILB && t != LDNS_RR_TYPE_ANY &&
	    strlen(d->_name) < cap) {
		memcpy(out, d->_name, strlen(d->_name) + 1);
		return;
	}
	tn = ldns_rr_type2str(t);
	snprintf(out, cap, "%s", tn ? tn : "?");
	free(tn);
}

/* Parses the RRs and checks they form one RRset; 0 or -1 (refusal recorded). */
static int
parse_rrset(struct ops_req *r, struct sign_state *s)
{
	const struct proto_bytes *wire = &r->req.u.sign_rrset.rrset_wire;
	size_t pos = 0;
	ldns_rr *first = NULL;

	if ((s->rrset = ldns_rr_list_new()) == NULL)
		goto nomem;
	while (pos < wire->len) {
		ldns_rr *rr = NULL;
		ldns_status st = ldns_wire2rr(&rr, wire->ptr, wire->len, &pos, LDNS_SECTION_ANSWER);

		if (st != LDNS_STATUS_OK) {
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.dns-syntax",
				       "rrset_wire: %s", ldns_get_errorstr_by_id(st));
			return -1;
		}
		if (ldns_rr_list_rr_count(s->rrset) == RRSET_MAX) {
			ldns_rr_free(rr);
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.rrset",
				       "more than %d RRs", RRSET_MAX);
			return -1;
		}
		if (first != NULL &&
		    (ldns_dname_compare(ldns_rr_owner(rr), ldns_rr_owner(first)) != 0 ||
		     ldns_rr_get_type(rr) != ldns_rr_get_type(first) ||
		     ldns_rr_ttl(rr) != ldns_rr_ttl(first))) {
			ldns_rr_free(rr);
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.rrset",
				       "the RRs do not share owner, type and TTL: not one RRset");
			return -1;
		}
		if (ldns_rr_get_class(rr) != LDNS_RR_CLASS_IN) {
			ldns_rr_free(rr);
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.rrset", "class is not IN");
			return -1;
		}
		ldns_rr2canonical(rr);
		if (!ldns_rr_list_push_rr(s->rrset, rr)) {
			ldns_rr_free(rr);
			goto nomem;
		}
		first = ldns_rr_list_rr(s->rrset, 0);
	}
	if (first == NULL) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.rrset", "no RR");
		return -1;
	}
	switch (ldns_rr_get_type(first)) {
	case LDNS_RR_TYPE_RRSIG:
	case LDNS_RR_TYPE_OPT:
	case LDNS_RR_TYPE_TSIG:
	case LDNS_RR_TYPE_NSEC3:
		/* Never signed (RRSIG, meta types) or signed only with its zone (NSEC3). */
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.rrset",
			       "an RRset of this type is not signed on request");
		return -1;
	default:
		break;
	}
	ldns_rr_list_sort(s->rrset);
	for (size_t i = 1; i < ldns_rr_list_rr_count(s->rrset); i++) {
		if (ldns_rr_compare(ldns_rr_list_rr(s->rrset, i - 1),
				    ldns_rr_list_rr(s->rrset, i)) == 0) {
			ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.rrset",
				       "the RRset holds the same RR twice");
			return -1;
		}
	}
	if (dname_text(ldns_rr_owner(first), s->owner, sizeof(s->owner)) != 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.rrset", "owner name too long");
		return -1;
	}
	return 0;
nomem:
	ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.memory", "out of memory");
	return -1;
}

static void
put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void
put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* The RRSIG RDATA without its signature, and the data its signature covers. */
static int
build_rrsig(struct ops_req *r, struct sign_state *s, uint16_t tag)
{
	const struct proto_sign_rrset *q = &r->req.u.sign_rrset;
	const ldns_rr *first = ldns_rr_list_rr(s->rrset, 0);
	ldns_buffer *b = NULL;
	uint8_t labels = ldns_dname_label_count(ldns_rr_owner(first));
	uint8_t *p = s->pre;
	int rc = -1;

	if (ldns_dname_is_wildcard(ldns_rr_owner(first)))
		labels--; /* RFC 4034 3.1.3: the '*' label is not counted */
	put16(p, (uint16_t)ldns_rr_get_type(first));
	p[2] = ZONE_DNSKEY_ALG;
	p[3] = labels;
	put32(p + 4, ldns_rr_ttl(first));
	put32(p + 8, q->expiration);
	put32(p + 12, q->inception);
	put16(p + 16, tag);
	memcpy(p + 18, s->signer, s->signer_len);
	s->pre_len = 18 + s->signer_len;
	if ((b = ldns_buffer_new(512)) == NULL || !ldns_buffer_reserve(b, s->pre_len))
		goto out;
	ldns_buffer_write(b, s->pre, s->pre_len);
	if (ldns_rr_list2buffer_wire(b, s->rrset) != LDNS_STATUS_OK)
		goto out;
	s->len = ldns_buffer_position(b);
	/* The buffer's bytes become ours (no copy); ldns allocates with malloc. */
	s->data = ldns_buffer_export(b);
	rc = s->data != NULL ? 0 : -1;
out:
	ldns_buffer_free(b);
	if (rc != 0)
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.memory",
			       "the RRSIG data could not be built");
	return rc;
}

/* ---- after the decision: INTENT, the HSM, RESULT, reply ---- */

static void
result_done(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct sign_state *s = r->op_state;
	struct proto_reply rep;
	const ldns_rr *first;
	const ldns_rdf *owner;
	uint8_t wire[LDNS_MAX_DOMAINLEN + 10 + sizeof(s->pre) + sizeof(s->sig)];
	size_t on, len;

	if (status != COMMIT_OK) {
		ops_reply_failed_commit(r, status);
		return;
	}
	if (r->err_code != 0) {
		ops_reply_refusal(r);
		return;
	}
	/* The RRSIG RR in wire form, names uncompressed: the RRset's owner
	 * (canonical), type, class, TTL, RDATA length, RDATA. */
	first = ldns_rr_list_rr(s->rrset, 0);
	owner = ldns_rr_owner(first);
	on = ldns_rdf_size(owner);
	if (on > LDNS_MAX_DOMAINLEN) {
		ops_reply_error(r, PROTO_CODE_INTERNAL, "the RRSIG could not be encoded");
		return;
	}
	memcpy(wire, ldns_rdf_data(owner), on);
	put16(wire + on, LDNS_RR_TYPE_RRSIG);
	put16(wire + on + 2, LDNS_RR_CLASS_IN);
	put32(wire + on + 4, ldns_rr_ttl(first));
	put16(wire + on + 8, (uint16_t)(s->pre_len + sizeof(s->sig)));
	memcpy(wire + on + 10, s->pre, s->pre_len);
	memcpy(wire + on + 10 + s->pre_len, s->sig, sizeof(s->sig));
	len = on + 10 + s->pre_len + sizeof(s->sig);
	/* The audit record has it; a line per signature would cost as much as
	 * the front's whole share of the work (formatting, a write each). */
	ops_log(r->ctx, OPS_LOG_DEBUG, "signed %s for %s", s->detail, ops_req_caller_name(r));
	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = PROTO_OP_SIGN_RRSET;
	rep.u.rrsig_wire.ptr = wire;
	rep.u.rrsig_wire.len = len;
	ops_reply(r, &rep);
}

static void
signed_cb(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct ops_req *r = arg;
	struct sign_state *s = r->op_state;
	int st = n == 1 ? res[0].status : HSMPROTO_ST_ERROR;

	if (st == HSMPROTO_ST_OK && res[0].value_len == sizeof(s->sig)) {
		memcpy(s->sig, res[0].value, sizeof(s->sig));
	} else {
		ops_log(r->ctx, OPS_LOG_WARNING, "HSM did not sign %s: %s %s", s->detail,
			hsmproto_status_name(st), n == 1 ? res[0].reason : "");
		ops_req_refuse(r, st == HSMPROTO_ST_UNAVAILABLE ? PROTO_CODE_UNAVAILABLE
								: PROTO_CODE_INTERNAL,
			       "builtin.hsm", "the HSM did not sign (%s: %s)",
			       hsmproto_status_name(st), n == 1 ? res[0].reason : "");
	}
	ops_result_submit(r, s->detail, result_done);
}

static int
intent_run(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;

	return ops_audit_intent(env, r, ((struct sign_state *)r->op_state)->detail);
}

static void
intent_done(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct sign_state *s = r->op_state;
	struct hsmlink_sign_req q;

	if (status != COMMIT_OK) {
		ops_reply_failed_commit(r, status);
		return;
	}
	q.role = s->role;
	q.kind = HSMPROTO_KIND_RRSIG_DATA;
	q.format = HSMPROTO_FORMAT_RAW;
	q.data = s->data;
	q.len = s->len;
	if (hsmlink_sign(r->ctx->hsm, &q, 1, signed_cb, r) != HSMLINK_OK) {
		struct hsmlink_result res = { .status = HSMPROTO_ST_UNAVAILABLE,
					      .reason = "the HSM process is gone" };

		signed_cb(r, &res, 1);
	}
}

void
ops_sign_rrset(struct ops_req *r)
{
	const struct proto_sign_rrset *q = &r->req.u.sign_rrset;
	/* Not calloc: clearing the name and text buffers cost more than the
	 * rest of the allocation; every member is set before it is read. */
	struct sign_state *s = malloc(sizeof(*s));
	const struct zone_dnskey *key;
	struct policy_decision d;
	char zin[PROTO_MAX_DNAME + 2];
	size_t zl = q->zone.len < PROTO_MAX_DNAME ? q->zone.len : PROTO_MAX_DNAME;
	ldns_rdf *zd = NULL;

	if (s == NULL) {
		ops_reply_error(r, PROTO_CODE_INTERNAL, "out of memory");
		return;
	}
	s->zone[0] = s->owner[0] = s->role[0] = s->detail[0] = '\0';
	s->rrset = NULL;
	s->signer_len = s->pre_len = 0;
	s->data = NULL;
	s->len = 0;
	r->op_state = s;
	r->op_free = sign_state_free;
	(void)ops_sha256(r->ctx, q->rrset_wire.ptr ? q->rrset_wire.ptr : (const uint8_t *)"",
			 q->rrset_wire.len, r->input_sha256);
	r->input_name = "rrset";
	memcpy(zin, q->zone.ptr ? (const char *)q->zone.ptr : "", zl);
	zin[zl] = '\0';
	if (zl > 0 && zin[zl - 1] != '.')
		strcat(zin, ".");
	if (ldns_str2rdf_dname(&zd, zin) != LDNS_STATUS_OK ||
	    dname_text(zd, s->zone, sizeof(s->zone)) != 0 ||
	    ldns_rdf_size(zd) > sizeof(s->signer)) {
		ldns_rdf_deep_free(zd);
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.dns-syntax",
			       "zone is not a domain name");
		ops_deny(r);
		return;
	}
	/* The RRSIG's signer: the zone's name in canonical (lowercase) form. */
	ldns_dname2canonical(zd);
	s->signer_len = ldns_rdf_size(zd);
	memcpy(s->signer, ldns_rdf_data(zd), s->signer_len);
	ldns_rdf_deep_free(zd);
	if (parse_rrset(r, s) != 0) {
		ops_deny(r);
		return;
	}
	{
		char tn[32];

		type_text(ldns_rr_get_type(ldns_rr_list_rr(s->rrset, 0)), tn, sizeof(tn));
		policy_text_join(s->detail, sizeof(s->detail), s->owner, " ", tn, " in zone ",
				 s->zone);
	}
	/* Only the rule of an allow is recorded: its message is not made. */
	if (policy_check_sign_rrset_rule(r->pol->pol, r->caller, s->zone, s->owner,
					 time_near(q->inception, r->now),
					 time_near(q->expiration, r->now), r->now, &d) != POLICY_ALLOW) {
		ops_req_refuse_decision(r, ops_policy_wire_code(d.code), &d);
		ops_deny(r);
		return;
	}
	/* The role: "<zone>/ksk" signs the zone's DNSKEY RRset, "<zone>/zsk" the rest. */
	key = NULL;
	if (strlen(s->zone) + 4 < sizeof(s->role)) {
		size_t zlen = strlen(s->zone);

		memcpy(s->role, s->zone, zlen);
		memcpy(s->role + zlen, ldns_rr_get_type(ldns_rr_list_rr(s->rrset, 0)) ==
				       LDNS_RR_TYPE_DNSKEY ? "/ksk" : "/zsk", 5);
		key = ops_zone_extra_key(r->ctx, s->role);
	}
	if (key == NULL) {
		ops_req_refuse(r, PROTO_CODE_DENIED, "builtin.extra-zone-key",
			       "zone %s has no key of role %s in this daemon", s->zone, s->role);
		ops_deny(r);
		return;
	}
	if (build_rrsig(r, s, key->key_tag) != 0) {
		ops_deny(r);
		return;
	}
	policy_text_join(r->rule, sizeof(r->rule), d.rule, NULL, NULL, NULL, NULL);
	r->item.run = intent_run;
	r->item.undo = ops_audit_intent_undo;
	r->item.done = intent_done;
	commit_submit(r->ctx->commit, &r->item);
}
