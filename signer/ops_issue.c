/*
 * ops_issue.c - ISSUE and REISSUE: a device certificate from a CSR, under
 * policy.
 *
 * On the loop: the CSR is parsed and its signature checked, and the policy is
 * asked everything it can answer without the store (caller, profile, device
 * id, index, key type). First pass on the writer thread: is this a repeat
 * (same device, index and CSR: answer with the certificate already issued) or
 * a conflict (another CSR at the index), how many live certificates the device
 * has, the full policy decision, a serial unique in the store, the TBS built
 * from the policy, and the INTENT audit record — committed before the HSM is
 * asked. The HSM process signs (role issuing-ca). Second pass: the
 * certificate is assembled and checked to parse back to exactly the TBS that
 * was signed, and the certificate row and the RESULT record commit together.
 * Then the reply.
 *
 * Certificates being issued are reserved in memory by (device, index) from the
 * first pass to the second, so that the same request arriving twice at once
 * waits for the first (and gets its answer) instead of signing twice, and
 * live-certificate counts and REISSUE's new index see them.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/csr.h"
#include "signer/ops_ctx.h"
#include "signer/x509.h"

/* RFC 5280 CRLReason superseded. */
#define REASON_SUPERSEDED 4

enum issue_outcome {
	ISSUE_REFUSED = 1, /* r->err_code says why */
	ISSUE_REPEAT,      /* answered from the store */
	ISSUE_FOLLOW,      /* the same request is in flight: answered with it */
	ISSUE_SIGN,        /* intent committed: the HSM signs next */
	ISSUE_DONE,        /* certificate committed */
};

struct issue_state {
	struct ops_req *r;
	int reissue;
	uint32_t old_index;
	char profile[PROTO_MAX_PROFILE + 1];
	EVP_PKEY *key;                 /* the CSR's public key */
	int outcome;
	/* first pass */
	const struct policy_profile *prof;
	unsigned char serial[X509_SERIAL_LEN];
	int64_t not_before, not_after;
	unsigned char *tbs;
	size_t tbs_len;
	uint64_t intent;
	struct ops_inflight *resv;     /* our reservation, while in flight */
	unsigned char old_serial[STORE_SERIAL_MAX];
	size_t old_serial_len;
	/* HSM */
	int sign_status;
	char sign_reason[HSMPROTO_MAX_REASON + 1];
	unsigned char sig[X509_ECDSA_SIG_MAX];
	size_t sig_len;
	/* result */
	unsigned char *cert;
	size_t cert_len;
	char serial_hex[2 * STORE_SERIAL_MAX + 1];
	struct ops_req *leader;        /* FOLLOW: the request doing the work */
	struct ops_req *followers;     /* requests waiting for this one's answer */
};

static void
issue_state_free(void *p)
{
	struct issue_state *s = p;

	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s->tbs);
	free(s->cert);
	free(s);
}

static void
hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

/* ---- in-flight reservations (writer thread) ---- */

static struct ops_inflight **
inflight_bucket(struct ops_writer *w, const char *device)
{
	uint32_t h = 2166136261u;

	for (const char *p = device; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return &w->inflight[h % OPS_INFLIGHT_BUCKETS];
}

/* Counts a device's certificates in flight, their highest index, and finds
 * the one at @p index and a reissue of @p old_index (either may be 0). */
static void
inflight_scan(struct ops_writer *w, const char *device, uint32_t index, uint32_t old_index,
	      uint32_t *count, uint32_t *highest, struct ops_inflight **at,
	      struct ops_inflight **reissuing)
{
	*count = *highest = 0;
	*at = *reissuing = NULL;
	for (struct ops_inflight *f = *inflight_bucket(w, device); f; f = f->next) {
		if (strcmp(f->device, device) != 0)
			continue;
		(*count)++;
		if (f->index > *highest)
			*highest = f->index;
		if (index && f->index == index)
			*at = f;
		if (old_index && f->old_index == old_index)
			*reissuing = f;
	}
}

void
ops_inflight_forget(struct ops_writer *w, struct ops_req *r)
{
	struct issue_state *s = r->op_state;
	struct ops_inflight **pp;

	if (s == NULL || s->resv == NULL)
		return;
	for (pp = inflight_bucket(w, s->resv->device); *pp; pp = &(*pp)->next) {
		if (*pp == s->resv) {
			*pp = s->resv->next;
			break;
		}
	}
	free(s->resv);
	s->resv = NULL;
}

static int
inflight_add(struct ops_writer *w, struct ops_req *r)
{
	struct issue_state *s = r->op_state;
	struct ops_inflight *f = calloc(1, sizeof(*f)), **b;

	if (f == NULL)
		return -1;
	snprintf(f->device, sizeof(f->device), "%s", r->device);
	f->index = r->index;
	f->old_index = s->reissue ? s->old_index : 0;
	memcpy(f->csr_sha256, r->input_sha256, 32);
	f->leader = r;
	b = inflight_bucket(w, r->device);
	f->next = *b;
	*b = f;
	s->resv = f;
	return 0;
}

/* ---- first pass (writer thread) ---- */

/* Refuses with an audit record in the group's transaction. */
static int
refuse(struct ops_writer *w, struct ops_req *r)
{
	((struct issue_state *)r->op_state)->outcome = ISSUE_REFUSED;
	return ops_audit_deny(w, r);
}

static int
refuse_decision(struct ops_writer *w, struct ops_req *r, const struct policy_decision *d)
{
	ops_req_refuse_decision(r, ops_policy_wire_code(d->code), d);
	return refuse(w, r);
}

/* Loads a certificate row into the state for the reply. */
static int
take_row(struct issue_state *s, struct store_cert *c)
{
	s->cert = c->der;
	s->cert_len = c->der_len;
	c->der = NULL;
	hex(c->serial, c->serial_len, s->serial_hex);
	s->r->index = c->index;
	return 0;
}

/* ISSUE: a repeat, a conflict, or a request in flight at the same index. */
static int
issue_lookup(struct ops_writer *w, struct ops_req *r, int *settled)
{
	struct issue_state *s = r->op_state;
	struct ops_inflight *at, *re;
	struct store_cert c;
	uint32_t n, hi;
	int e;

	*settled = 1;
	inflight_scan(w, r->device, r->index, 0, &n, &hi, &at, &re);
	if (at != NULL) {
		if (memcmp(at->csr_sha256, r->input_sha256, 32) != 0) {
			ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.index-taken",
				       "index %u of device %s is being issued for another CSR",
				       (unsigned)r->index, r->device);
			return refuse(w, r);
		}
		struct issue_state *ls = at->leader->op_state;

		s->outcome = ISSUE_FOLLOW;
		s->leader = at->leader;
		r->next = ls->followers;
		ls->followers = r;
		return COMMIT_OK;
	}
	memset(&c, 0, sizeof(c));
	e = store_cert_find_repeat(w->st, r->device, r->index, r->input_sha256, &c);
	if (e == 0) {
		s->outcome = ISSUE_REPEAT;
		take_row(s, &c);
		store_cert_clear(&c);
		return COMMIT_OK;
	}
	if (e == STORE_ECONFLICT) {
		ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.index-taken",
			       "index %u of device %s holds a certificate for another CSR "
			       "(indexes are never reused)", (unsigned)r->index, r->device);
		return refuse(w, r);
	}
	if (e != STORE_ENOTFOUND)
		return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
	*settled = 0;
	return COMMIT_OK;
}

/* REISSUE: the certificate replaced must be live and not being replaced already. */
static int
reissue_lookup(struct ops_writer *w, struct ops_req *r, char *issued_to, size_t len, int *settled)
{
	struct issue_state *s = r->op_state;
	struct ops_inflight *at, *re;
	struct store_cert c;
	uint32_t n, hi;
	int e;

	*settled = 1;
	inflight_scan(w, r->device, 0, s->old_index, &n, &hi, &at, &re);
	if (re != NULL) {
		ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.reissue-in-flight",
			       "certificate %u of device %s is being reissued already",
			       (unsigned)s->old_index, r->device);
		return refuse(w, r);
	}
	memset(&c, 0, sizeof(c));
	e = store_cert_get_by_index(w->st, r->device, s->old_index, &c);
	if (e == STORE_ENOTFOUND || (e == 0 && (c.status != STORE_CERT_VALID || c.not_after <= r->now))) {
		store_cert_clear(&c);
		ops_req_refuse(r, PROTO_CODE_NOT_FOUND, "builtin.reissue-live",
			       "device %s has no live certificate at index %u", r->device,
			       (unsigned)s->old_index);
		return refuse(w, r);
	}
	if (e != 0)
		return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
	snprintf(issued_to, len, "%s", c.caller_name);
	memcpy(s->old_serial, c.serial, c.serial_len);
	s->old_serial_len = c.serial_len;
	store_cert_clear(&c);
	*settled = 0;
	return COMMIT_OK;
}

/*
 * A serial no certificate in the store has (16 CSPRNG bytes, top bit clear).
 * Returns 0, 1 if none was found (CSPRNG failure, or eight collisions in a
 * 126-bit space), or a store error.
 */
static int
pick_serial(struct ops_writer *w, struct issue_state *s)
{
	for (int tries = 0; tries < 8; tries++) {
		int e;

		if (x509_serial_random(s->serial) != X509_OK)
			return 1;
		e = store_serial_exists(w->st, s->serial, X509_SERIAL_LEN);
		if (e == 0)
			return 0;
		if (e < 0)
			return e;
	}
	return 1;
}

static int
issue_run1(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;
	struct ops_writer *w = env;
	struct issue_state *s = r->op_state;
	struct policy_issue_request pr;
	struct policy_issue_grant g;
	struct policy_decision d;
	struct store_device_info info;
	struct x509_cert_spec spec;
	struct audit_request a;
	struct audit_input in;
	struct ops_inflight *at, *re;
	char issued_to[STORE_NAME_MAX + 1] = "";
	uint32_t n_flight, hi_flight;
	int settled = 0, e;

	e = s->reissue ? reissue_lookup(w, r, issued_to, sizeof(issued_to), &settled)
		       : issue_lookup(w, r, &settled);
	if (e != COMMIT_OK || settled)
		return e;
	if ((e = store_device_info_get(w->st, r->device, r->now, &info)) != 0)
		return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
	inflight_scan(w, r->device, 0, 0, &n_flight, &hi_flight, &at, &re);
	memset(&pr, 0, sizeof(pr));
	pr.profile = s->profile;
	pr.device_id = r->device;
	pr.key_algorithm = "ec-p256"; /* csr_parse accepted nothing else */
	pr.live_certificates = (int64_t)info.live + n_flight;
	if (s->reissue) {
		/* One above the highest index the device ever had; the old one goes. */
		uint32_t hi = info.highest_index > hi_flight ? info.highest_index : hi_flight;

		r->index = hi + 1;
		pr.index = r->index;
		pr.live_certificates--;
		e = policy_check_reissue(r->pol->pol, r->caller, issued_to, &pr, &g, &d);
	} else {
		pr.index = r->index;
		e = policy_check_issue(r->pol->pol, r->caller, &pr, &g, &d);
	}
	if (e != POLICY_ALLOW)
		return refuse_decision(w, r, &d);
	s->prof = g.profile;

	if ((e = pick_serial(w, s)) != 0) {
		if (e < 0)
			return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.serial", "no unique serial number");
		return refuse(w, r);
	}
	/* The certificate is the policy's: only the CSR's public key is used. */
	s->not_before = r->now - s->prof->backdate;
	s->not_after = r->now + s->prof->validity;
	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_DEVICE;
	memcpy(spec.serial, s->serial, X509_SERIAL_LEN);
	spec.not_before = s->not_before;
	spec.not_after = s->not_after;
	spec.subject_key = s->key;
	spec.issuer = w->ctx->issuing;
	spec.zone = policy_zone(r->pol->pol)->name;
	spec.index = r->index;
	spec.device_id = r->device;
	spec.crl_uri = s->prof->crl_distribution_point;
	if ((e = x509_cert_tbs_build(&spec, &s->tbs, &s->tbs_len)) != X509_OK) {
		ops_req_refuse(r, e == X509_ERR_NAME ? PROTO_CODE_BAD_REQUEST : PROTO_CODE_INTERNAL,
			       "builtin.tbs", "the certificate cannot be built: %s", x509_strerror(e));
		return refuse(w, r);
	}
	/* INTENT: committed with this group, before the HSM is asked. */
	memset(&a, 0, sizeof(a));
	ops_req_audit_caller(r, &a.caller);
	a.op = r->audit_op;
	a.device = r->device;
	a.index = r->index;
	in.name = "csr";
	in.sha256 = r->input_sha256;
	a.inputs = &in;
	a.n_inputs = 1;
	a.allow = 1;
	a.rule = d.rule;
	a.policy_sha256 = policy_sha256(r->pol->pol);
	a.detail = d.message;
	if ((e = audit_request(w->audit, &a, &s->intent)) != 0)
		return ops_audit_status(e);
	if (inflight_add(w, r) != 0)
		return COMMIT_ERR_STORAGE;
	s->outcome = ISSUE_SIGN;
	return COMMIT_OK;
}

static void
issue_undo1(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;
	struct issue_state *s = r->op_state;

	ops_inflight_forget(env, r);
	if (s->outcome == ISSUE_FOLLOW && s->leader) {
		struct issue_state *ls = s->leader->op_state;

		for (struct ops_req **pp = &ls->followers; *pp; pp = &(*pp)->next) {
			if (*pp == r) {
				*pp = r->next;
				break;
			}
		}
		s->leader = NULL;
	}
	s->outcome = 0;
}

/* ---- second pass (writer thread) ---- */

static int
issue_run2(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;
	struct ops_writer *w = env;
	struct issue_state *s = r->op_state;
	struct audit_result res;
	struct store_cert c;
	unsigned char cert_sha[32];
	char detail[HSMPROTO_MAX_REASON + 64] = "";
	int e;

	memset(&res, 0, sizeof(res));
	res.op = r->audit_op;
	res.device = r->device;
	res.index = r->index;
	if (s->sign_status != HSMPROTO_ST_OK) {
		ops_req_refuse(r, s->sign_status == HSMPROTO_ST_UNAVAILABLE ? PROTO_CODE_UNAVAILABLE
									    : PROTO_CODE_INTERNAL,
			       "builtin.hsm", "the HSM did not sign (%s: %s)",
			       hsmproto_status_name(s->sign_status), s->sign_reason);
		goto failed;
	}
	e = x509_cert_assemble_der(s->tbs, s->tbs_len, s->sig, s->sig_len, w->ctx->issuing_key,
				   &s->cert, &s->cert_len);
	if (e != X509_OK) {
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.assembly",
			       "the signed certificate does not check: %s", x509_strerror(e));
		goto failed;
	}
	memset(&c, 0, sizeof(c));
	snprintf(c.device, sizeof(c.device), "%s", r->device);
	c.index = r->index;
	memcpy(c.serial, s->serial, X509_SERIAL_LEN);
	c.serial_len = X509_SERIAL_LEN;
	c.caller_uid = r->peer.uid;
	snprintf(c.caller_name, sizeof(c.caller_name), "%s", ops_req_caller_name(r));
	c.der = s->cert;
	c.der_len = s->cert_len;
	memcpy(c.csr_sha256, r->input_sha256, 32);
	snprintf(c.profile, sizeof(c.profile), "%s", s->prof->name);
	c.not_before = s->not_before;
	c.not_after = s->not_after;
	c.issued_at = r->now;
	if ((e = store_cert_insert(w->st, &c)) != 0) {
		if (e != STORE_EEXISTS)
			return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.store",
			       "serial or index taken after the decision");
		goto failed;
	}
	if (s->reissue) {
		e = store_cert_revoke(w->st, s->old_serial, s->old_serial_len, r->now,
				      REASON_SUPERSEDED, NULL);
		if (e != 0 && e != STORE_EALREADY)
			return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
		snprintf(detail, sizeof(detail), "index %u revoked (superseded)",
			 (unsigned)s->old_index);
		res.detail = detail;
	}
	hex(s->serial, X509_SERIAL_LEN, s->serial_hex);
	(void)x509_sha256(s->cert, s->cert_len, cert_sha);
	res.serial = s->serial;
	res.serial_len = X509_SERIAL_LEN;
	res.cert_sha256 = cert_sha;
	if ((e = audit_result(w->audit, s->intent, &res)) != 0)
		return ops_audit_status(e);
	ops_inflight_forget(w, r);
	s->outcome = ISSUE_DONE;
	return COMMIT_OK;
failed:
	res.error = (int32_t)r->err_code;
	res.detail = r->msg;
	if ((e = audit_result(w->audit, s->intent, &res)) != 0)
		return ops_audit_status(e);
	ops_inflight_forget(w, r);
	s->outcome = ISSUE_REFUSED;
	return COMMIT_OK;
}

/* ---- replies (loop) ---- */

static void
reply_cert(struct ops_req *r, struct issue_state *s, uint32_t id)
{
	struct proto_reply rep;

	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = id;
	rep.op = r->req.op;
	rep.u.cert.cert_der.ptr = s->cert;
	rep.u.cert.cert_der.len = s->cert_len;
	ops_chain_fill(r->ctx, &rep.u.cert.chain);
	rep.u.cert.serial_hex = proto_bytes_str(s->serial_hex);
	rep.u.cert.zone_serial = 0; /* the zone joins with the zone issue */
	rep.u.cert.index = r->index;
	ops_reply(r, &rep);
}

/* Answers the request and every follower the same way. */
static void
issue_answer(struct ops_req *r, int status)
{
	struct issue_state *s = r->op_state;
	struct ops_req *f = s->followers;

	s->followers = NULL;
	while (f) {
		struct ops_req *next = f->next;
		struct issue_state *fs = f->op_state;

		if (status != COMMIT_OK) {
			ops_reply_error(f, PROTO_CODE_STORAGE, "the state database cannot be written");
		} else if (s->outcome == ISSUE_DONE) {
			fs->cert = malloc(s->cert_len);
			if (fs->cert == NULL) {
				ops_reply_error(f, PROTO_CODE_INTERNAL, "out of memory");
			} else {
				memcpy(fs->cert, s->cert, s->cert_len);
				fs->cert_len = s->cert_len;
				memcpy(fs->serial_hex, s->serial_hex, sizeof(fs->serial_hex));
				f->index = r->index;
				reply_cert(f, fs, f->req.id);
			}
		} else {
			ops_reply_error(f, r->err_code ? r->err_code : PROTO_CODE_INTERNAL, r->msg);
		}
		f = next;
	}
	if (status != COMMIT_OK)
		ops_reply_error(r, PROTO_CODE_STORAGE, "the state database cannot be written");
	else if (s->outcome == ISSUE_DONE || s->outcome == ISSUE_REPEAT)
		reply_cert(r, s, r->req.id);
	else
		ops_reply_refusal(r);
}

static void
issue_done2(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct issue_state *s = r->op_state;

	if (status == COMMIT_OK && s->outcome == ISSUE_DONE) {
		ops_log(r->ctx, OPS_LOG_INFO, "issued %u.%s serial %s to %s", (unsigned)r->index,
			r->device, s->serial_hex, ops_req_caller_name(r));
		if (s->reissue)
			ops_crl_changed(r->ctx);
	}
	issue_answer(r, status);
}

static void
sign_cb(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct ops_req *r = arg;
	struct issue_state *s = r->op_state;

	s->sign_status = n == 1 ? res[0].status : HSMPROTO_ST_ERROR;
	snprintf(s->sign_reason, sizeof(s->sign_reason), "%s", n == 1 ? res[0].reason : "");
	if (s->sign_status == HSMPROTO_ST_OK) {
		if (res[0].value_len > sizeof(s->sig)) {
			s->sign_status = HSMPROTO_ST_ERROR;
			snprintf(s->sign_reason, sizeof(s->sign_reason), "signature too long");
		} else {
			memcpy(s->sig, res[0].value, res[0].value_len);
			s->sig_len = res[0].value_len;
		}
	} else {
		ops_log(r->ctx, OPS_LOG_WARNING, "HSM did not sign %u.%s: %s %s", (unsigned)r->index,
			r->device, hsmproto_status_name(s->sign_status), s->sign_reason);
	}
	memset(&r->item, 0, sizeof(r->item));
	r->item.run = issue_run2;
	r->item.done = issue_done2;
	commit_submit(r->ctx->commit, &r->item);
}

static void
issue_done1(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct issue_state *s = r->op_state;
	struct hsmlink_sign_req q;

	if (status != COMMIT_OK || s->outcome != ISSUE_SIGN) {
		if (s->outcome == ISSUE_FOLLOW && status == COMMIT_OK)
			return; /* answered with its leader */
		issue_answer(r, status);
		return;
	}
	q.role = "issuing-ca";
	q.kind = HSMPROTO_KIND_TBS_CERT;
	q.format = HSMPROTO_FORMAT_DER;
	q.data = s->tbs;
	q.len = s->tbs_len;
	if (hsmlink_sign(r->ctx->hsm, &q, 1, sign_cb, r) != HSMLINK_OK) {
		struct hsmlink_result res = { .status = HSMPROTO_ST_UNAVAILABLE,
					      .reason = "the HSM process is gone" };

		sign_cb(r, &res, 1);
	}
}

/* ---- the request (loop) ---- */

/* The policy's name for a key type csr_parse refused, or NULL for other errors. */
static const char *
key_algorithm_of(int csr_err)
{
	switch (csr_err) {
	case X509_OK: return "ec-p256";
	case X509_ERR_CSR_KEY_RSA: return "rsa";
	case X509_ERR_CSR_KEY_EDDSA: return "eddsa";
	case X509_ERR_CSR_KEY_CURVE: return "ec-other-curve";
	case X509_ERR_CSR_KEY_EXPLICIT: return "ec-explicit";
	case X509_ERR_CSR_KEY_TYPE: return "other";
	default: return NULL;
	}
}

void
ops_issue(struct ops_req *r)
{
	struct issue_state *s = calloc(1, sizeof(*s));
	struct proto_bytes dev, prof, csr;
	struct policy_issue_request pr;
	struct policy_issue_grant g;
	struct policy_decision d;
	char detail[X509_DETAIL_SIZE] = "";
	const char *alg;
	int e, csr_err;

	if (s == NULL) {
		ops_reply_error(r, PROTO_CODE_INTERNAL, "out of memory");
		return;
	}
	s->r = r;
	r->op_state = s;
	r->op_free = issue_state_free;
	if (r->req.op == PROTO_OP_REISSUE) {
		s->reissue = 1;
		s->old_index = r->req.u.reissue.old_index;
		dev = r->req.u.reissue.device_id;
		prof = r->req.u.reissue.profile;
		csr = r->req.u.reissue.csr_der;
	} else {
		dev = r->req.u.issue.device_id;
		prof = r->req.u.issue.profile;
		csr = r->req.u.issue.csr_der;
		r->index = r->req.u.issue.index ? r->req.u.issue.index : 1;
	}
	/* Decoded text holds no NUL and fits the buffers (proto field maxima). */
	memcpy(r->device, dev.ptr ? (const char *)dev.ptr : "", dev.len);
	r->device[dev.len] = '\0';
	memcpy(s->profile, prof.ptr ? (const char *)prof.ptr : "", prof.len);
	s->profile[prof.len] = '\0';
	r->input_name = "csr";
	(void)x509_sha256(csr.ptr ? csr.ptr : (const uint8_t *)"", csr.len, r->input_sha256);

	if (s->reissue && s->old_index == 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.index", "old_index must be at least 1");
		ops_deny(r);
		return;
	}
	if (s->profile[0] == '\0') {
		/* The policy library does not list a caller's profiles (yet). */
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.profile",
			       "a profile must be named (no default profile is known)");
		ops_deny(r);
		return;
	}
	csr_err = csr_parse(csr.ptr, csr.len, &s->key, NULL, NULL, detail, sizeof(detail));
	if ((alg = key_algorithm_of(csr_err)) == NULL) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.csr", "CSR refused: %s%s%s",
			       x509_strerror(csr_err), detail[0] ? ": " : "", detail);
		ops_deny(r);
		return;
	}
	/* Everything the policy can say without the store, key type included. */
	memset(&pr, 0, sizeof(pr));
	pr.profile = s->profile;
	pr.device_id = r->device;
	pr.index = s->reissue ? 1 : r->index;
	pr.key_algorithm = alg;
	if (s->reissue)
		e = policy_check_reissue(r->pol->pol, r->caller, r->caller->name, &pr, &g, &d);
	else
		e = policy_check_issue(r->pol->pol, r->caller, &pr, &g, &d);
	if (e == POLICY_ALLOW && strcmp(alg, "ec-p256") != 0) {
		/* csr_parse refused the key although the policy would take it. */
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.csr", "CSR refused: %s%s%s",
			       x509_strerror(csr_err), detail[0] ? ": " : "", detail);
		ops_deny(r);
		return;
	}
	if (e != POLICY_ALLOW) {
		ops_req_refuse_decision(r, ops_policy_wire_code(d.code), &d);
		if (d.code == POLICY_DENY_KEY_ALGORITHM && detail[0])
			snprintf(r->msg + strlen(r->msg), sizeof(r->msg) - strlen(r->msg),
				 ": %s", detail);
		ops_deny(r);
		return;
	}
	snprintf(r->device, sizeof(r->device), "%s", g.device_id); /* folded to lowercase */
	r->item.run = issue_run1;
	r->item.undo = issue_undo1;
	r->item.done = issue_done1;
	commit_submit(r->ctx->commit, &r->item);
}
