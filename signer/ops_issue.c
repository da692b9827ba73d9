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
 * certificate is assembled around exactly the TBS that was signed and the
 * HSM's signature is verified, then it goes to the zone: its record is added
 * (REISSUE: the old index's name removed) and signed, and the certificate row
 * and the RESULT record commit in the zone's transaction, so the reply's zone
 * serial holds the record and a certificate is never issued without it. Then
 * the reply.
 *
 * The CPU-heavy X.509 work (CSR signature check, TBS encoding, assembly and
 * its signature check) runs on libuv's threadpool, neither on the loop nor on
 * the writer thread, which both serialise everything else.
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
#include "signer/ops_issue.h"
#include "zonesigner/zone_file.h"

static void
issue_state_free(void *p)
{
	struct issue_state *s = p;

	if (s == NULL)
		return;
	EVP_PKEY_free(s->key);
	free(s->spki);
	free(s->tbs);
	free(s->cert);
	free(s);
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
	rep.u.cert.zone_serial = s->zone_serial;
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
			ops_reply_failed_commit(f, status);
		} else if (s->outcome == ISSUE_DONE) {
			fs->cert = malloc(s->cert_len);
			if (fs->cert == NULL) {
				ops_reply_error(f, PROTO_CODE_INTERNAL, "out of memory");
			} else {
				memcpy(fs->cert, s->cert, s->cert_len);
				fs->cert_len = s->cert_len;
				memcpy(fs->serial_hex, s->serial_hex, sizeof(fs->serial_hex));
				fs->zone_serial = s->zone_serial;
				f->index = r->index;
				reply_cert(f, fs, f->req.id);
			}
		} else {
			ops_reply_error(f, r->err_code ? r->err_code : PROTO_CODE_INTERNAL, r->msg);
		}
		f = next;
	}
	if (status != COMMIT_OK) {
		ops_reply_failed_commit(r, status);
	} else if (s->outcome == ISSUE_DONE || s->outcome == ISSUE_REPEAT) {
		if (s->outcome == ISSUE_REPEAT)
			s->zone_serial = ops_zone_serial(r->ctx); /* no change: the current one */
		reply_cert(r, s, r->req.id);
	}
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

/* ---- after the first pass: TBS, HSM, assembly (loop and threadpool) ---- */

/* The second pass without a zone change: a failure's RESULT record. */
static void
second_pass_failed(struct ops_req *r)
{
	memset(&r->item, 0, sizeof(r->item));
	r->item.run = ops_issue_run2;
	r->item.done = issue_done2;
	commit_submit(r->ctx->commit, &r->item);
}

/* Loop: the zone change and the certificate committed in one serial, or neither. */
static void
zone_done(struct ops_req *r, int status, uint32_t serial)
{
	struct issue_state *s = r->op_state;

	if (status == 0) {
		s->zone_serial = serial;
		issue_done2(&r->item, COMMIT_OK);
		return;
	}
	if (status == ZONEPUB_EFATAL) {
		issue_answer(r, COMMIT_ERR_FATAL);
		return;
	}
	/* Nothing of it is in the store or the zone: record why, then answer. */
	ops_log(r->ctx, OPS_LOG_WARNING, "%u.%s not published: %s", (unsigned)r->index,
		r->device, zonepub_strerror(status));
	if (status == ZONEPUB_ENOENT && s->reissue)
		ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.zone",
			       "certificate %u of device %s left the zone meanwhile (revoked?)",
			       (unsigned)s->old_index, r->device);
	else
		ops_req_refuse(r, ops_zone_wire_code(status), "builtin.zone",
			       "the zone change failed: %s", zonepub_strerror(status));
	s->outcome = ISSUE_SIGN;
	second_pass_failed(r);
}

/* True if <index>.<device> has records in the served zone. */
static int
published(struct ops_req *r, uint32_t index)
{
	const struct zone *z = ops_zone_served(r->ctx);
	ldns_rr_list *l = NULL;
	char owner[512];
	int yes;

	if (z == NULL || zone_device_owner(z, r->device, index, owner, sizeof(owner)) != 0 ||
	    zone_name_rrs(z, owner, &l) != 0)
		return 0;
	yes = ldns_rr_list_rr_count(l) > 0;
	ldns_rr_list_deep_free(l);
	return yes;
}

/*
 * Second pass: the certificate is published with its row in one serial
 * (REISSUE: the old name leaves in the same serial). A failure of the
 * signing or X.509 work only records its RESULT.
 */
static void
second_pass(struct ops_req *r)
{
	struct issue_state *s = r->op_state;
	struct zonepub_op *op = s->z.ops;
	size_t n = 0;

	if (r->err_code != 0) {
		second_pass_failed(r);
		return;
	}
	memset(&s->z, 0, sizeof(s->z));
	/* A certificate issued before the zone existed has no name to remove. */
	if (s->reissue && published(r, s->old_index)) {
		op[n].kind = ZONEPUB_OP_DEVICE_REMOVE;
		op[n].dev.id = r->device;
		op[n].dev.index = s->old_index;
		n++;
	}
	op[n].kind = ZONEPUB_OP_DEVICE_ADD;
	op[n].dev.id = r->device;
	op[n].dev.index = r->index;
	op[n].dev.styles = zonepub_styles_from_policy(policy_zone(r->pol->pol));
	op[n].dev.cert_der = s->cert;
	op[n].dev.cert_len = s->cert_len;
	op[n].not_after = s->not_after;
	n++;
	s->z.zr.n_ops = n;
	s->z.r = r;
	s->z.store = ops_issue_zone_store;
	s->z.done = zone_done;
	ops_zone_submit(r->ctx, &s->z);
}

/*
 * Threadpool: assemble the certificate around the TBS signed, verbatim, and
 * check the HSM's signature over it. The TBS is our own canonical encoding
 * (x509_cert_tbs_build) and the HSM process checked it before signing, so it
 * is not decoded a third time, and the signature is checked with the
 * issuer's verifier, set up once at start: x509_cert_assemble_verified.
 */
static void
assemble_work(uv_work_t *w)
{
	struct ops_req *r = w->data;
	struct issue_state *s = r->op_state;

	s->x509_err = x509_cert_assemble_verified(s->tbs, s->tbs_len, s->sig, s->sig_len,
						  r->ctx->issuing_verifier, &s->cert,
						  &s->cert_len);
}

static void
assemble_done(uv_work_t *w, int status)
{
	struct ops_req *r = w->data;
	struct issue_state *s = r->op_state;

	if (status != 0 || s->x509_err != X509_OK)
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.assembly",
			       "the signed certificate does not check: %s",
			       status != 0 ? "cancelled" : x509_strerror(s->x509_err));
	second_pass(r);
}

static void
sign_cb(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct ops_req *r = arg;
	struct issue_state *s = r->op_state;
	int st = n == 1 ? res[0].status : HSMPROTO_ST_ERROR;

	if (st == HSMPROTO_ST_OK && res[0].value_len <= sizeof(s->sig)) {
		memcpy(s->sig, res[0].value, res[0].value_len);
		s->sig_len = res[0].value_len;
		s->work.data = r;
		if (uv_queue_work(r->ctx->loop, &s->work, assemble_work, assemble_done) == 0)
			return;
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.assembly", "threadpool unavailable");
	} else {
		ops_log(r->ctx, OPS_LOG_WARNING, "HSM did not sign %u.%s: %s %s", (unsigned)r->index,
			r->device, hsmproto_status_name(st), n == 1 ? res[0].reason : "");
		ops_req_refuse(r, st == HSMPROTO_ST_UNAVAILABLE ? PROTO_CODE_UNAVAILABLE
								: PROTO_CODE_INTERNAL,
			       "builtin.hsm", "the HSM did not sign (%s: %s)",
			       hsmproto_status_name(st), n == 1 ? res[0].reason : "");
	}
	second_pass(r);
}

/* Threadpool: the TBS, from the policy's decision; only the CSR's key is used. */
static void
tbs_work(uv_work_t *w)
{
	struct ops_req *r = w->data;
	struct issue_state *s = r->op_state;
	struct x509_cert_spec spec;

	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_DEVICE;
	memcpy(spec.serial, s->serial, X509_SERIAL_LEN);
	spec.not_before = s->not_before;
	spec.not_after = s->not_after;
	spec.subject_key = s->key;
	/* The point from the request's SPKI: exporting it from the key costs
	 * OpenSSL 3.0 more than the rest of the TBS. */
	spec.subject_spki = s->spki;
	spec.subject_spki_len = s->spki_len;
	spec.issuer = r->ctx->issuing;
	spec.zone = s->zone;
	spec.index = r->index;
	spec.device_id = r->device;
	spec.crl_uri = s->prof->crl_distribution_point;
	s->x509_err = x509_cert_tbs_build(&spec, &s->tbs, &s->tbs_len);
}

static void
tbs_done(uv_work_t *w, int status)
{
	struct ops_req *r = w->data;
	struct issue_state *s = r->op_state;
	struct hsmlink_sign_req q;

	if (status != 0 || s->x509_err != X509_OK) {
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.tbs",
			       "the certificate cannot be built: %s",
			       status != 0 ? "cancelled" : x509_strerror(s->x509_err));
		second_pass(r);
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

static void
issue_done1(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct issue_state *s = r->op_state;

	if (status != COMMIT_OK || s->outcome != ISSUE_SIGN) {
		if (s->outcome == ISSUE_FOLLOW && status == COMMIT_OK)
			return; /* answered with its leader */
		issue_answer(r, status);
		return;
	}
	s->work.data = r;
	if (uv_queue_work(r->ctx->loop, &s->work, tbs_work, tbs_done) != 0)
		tbs_done(&s->work, UV_ENOMEM);
}

/* ---- the request (loop, and the CSR check on the threadpool) ---- */

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

/* Threadpool: parse the CSR and check its signature (proof of possession). */
static void
csr_work(uv_work_t *w)
{
	struct ops_req *r = w->data;
	struct issue_state *s = r->op_state;
	struct proto_bytes csr = r->req.op == PROTO_OP_REISSUE ? r->req.u.reissue.csr_der
							       : r->req.u.issue.csr_der;

	(void)x509_sha256(csr.ptr ? csr.ptr : (const uint8_t *)"", csr.len, r->input_sha256);
	/* The key is made from the issuing key's curve (P-256 too): cheaper. */
	s->csr_err = csr_parse_like(csr.ptr, csr.len, r->ctx->issuing_key, &s->key, &s->spki,
				    &s->spki_len, s->detail, sizeof(s->detail));
}

/* Loop: everything the policy can say without the store, key type included. */
static void
csr_done(uv_work_t *w, int status)
{
	struct ops_req *r = w->data;
	struct issue_state *s = r->op_state;
	struct policy_issue_request pr;
	struct policy_issue_grant g;
	struct policy_decision d;
	const char *alg = status == 0 ? key_algorithm_of(s->csr_err) : NULL;
	int e;

	r->input_name = "csr";
	if (alg == NULL) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.csr", "CSR refused: %s%s%s",
			       status != 0 ? "cancelled" : x509_strerror(s->csr_err),
			       s->detail[0] ? ": " : "", s->detail);
		ops_deny(r);
		return;
	}
	memset(&pr, 0, sizeof(pr));
	pr.profile = s->profile;
	pr.device_id = r->device;
	pr.index = s->reissue ? 1 : r->index;
	pr.key_algorithm = alg;
	if (s->reissue)
		e = policy_check_reissue(r->pol->pol, r->caller, r->caller->name, &pr, &g, &d);
	else
		e = policy_check_issue(r->pol->pol, r->caller, &pr, &g, &d);
	if (e == POLICY_ALLOW && s->csr_err != X509_OK) {
		/* csr_parse refused the key although the policy would take it. */
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.csr", "CSR refused: %s%s%s",
			       x509_strerror(s->csr_err), s->detail[0] ? ": " : "", s->detail);
		ops_deny(r);
		return;
	}
	if (e != POLICY_ALLOW) {
		ops_req_refuse_decision(r, ops_policy_wire_code(d.code), &d);
		if (d.code == POLICY_DENY_KEY_ALGORITHM && s->detail[0])
			snprintf(r->msg + strlen(r->msg), sizeof(r->msg) - strlen(r->msg),
				 ": %s", s->detail);
		ops_deny(r);
		return;
	}
	snprintf(r->device, sizeof(r->device), "%s", g.device_id); /* folded to lowercase */
	r->item.run = ops_issue_run1;
	r->item.undo = ops_issue_undo1;
	r->item.done = issue_done1;
	commit_submit(r->ctx->commit, &r->item);
}

void
ops_issue(struct ops_req *r)
{
	struct issue_state *s = calloc(1, sizeof(*s));
	struct proto_bytes dev, prof;

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
	} else {
		dev = r->req.u.issue.device_id;
		prof = r->req.u.issue.profile;
		r->index = r->req.u.issue.index ? r->req.u.issue.index : 1;
	}
	/* Decoded text holds no NUL and fits the buffers (proto field maxima). */
	memcpy(r->device, dev.ptr ? (const char *)dev.ptr : "", dev.len);
	r->device[dev.len] = '\0';
	memcpy(s->profile, prof.ptr ? (const char *)prof.ptr : "", prof.len);
	s->profile[prof.len] = '\0';

	if (s->reissue && s->old_index == 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.index", "old_index must be at least 1");
		ops_deny(r);
		return;
	}
	if (s->profile[0] == '\0') {
		/* An empty profile means the first the policy lists for the caller. */
		const char *first = ops_policy_default_profile(r->pol, r->caller);

		if (first == NULL) {
			ops_req_refuse(r, PROTO_CODE_DENIED, "callers.profiles",
				       "caller '%s' has no profile to issue under",
				       r->caller->name);
			ops_deny(r);
			return;
		}
		snprintf(s->profile, sizeof(s->profile), "%s", first);
	}
	s->work.data = r;
	if (uv_queue_work(r->ctx->loop, &s->work, csr_work, csr_done) != 0)
		csr_done(&s->work, UV_ENOMEM);
}
