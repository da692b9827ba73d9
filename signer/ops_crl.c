/*
 * ops_crl.c - CRL: the issuing CA's current CRL, signed when needed, not per
 * request.
 *
 * The last CRL is kept in memory. A request is answered from it while it is
 * fresh: it covers every revocation committed so far and less than half of
 * its validity (policy crl.next-update) has passed. Otherwise the requests
 * wait together for one new CRL: first pass on the writer thread takes the
 * next crlNumber (the number grows even if the signing then fails) and the
 * revoked certificates, builds the TBSCertList and records the INTENT; the
 * HSM process signs it (role issuing-ca, which may sign only CRLs of its own
 * issuer name); second pass assembles and checks it, keeps it in the store
 * and records the RESULT. The first CRL after a start is always new, so a
 * revocation committed just before a crash is never missing from it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signer/ops_ctx.h"
#include "signer/x509.h"

struct crl_job {
	struct commit_item item;
	struct ops_ctx *ctx;
	struct ops_policy *pol;
	struct server_peer peer;
	char caller[STORE_NAME_MAX + 1];
	uint64_t gen;                 /* the revocations it covers */
	int64_t this_update, next_update;
	uint64_t number;
	size_t entries;
	unsigned char *tbs;
	size_t tbs_len;
	uint64_t intent;
	int sign_status;
	char reason[HSMPROTO_MAX_REASON + 1];
	unsigned char sig[X509_ECDSA_SIG_MAX];
	size_t sig_len;
	unsigned char *der;
	size_t der_len;
	uint32_t err_code;            /* 0: signed and kept */
	char msg[HSMPROTO_MAX_REASON + 128];
};

/* Collects the revoked certificates for the TBSCertList. */
struct revoked_list {
	struct x509_crl_entry *e;
	unsigned char *serials;
	size_t n, cap;
};

static int
collect(void *arg, const struct store_revoked *rv)
{
	struct revoked_list *l = arg;

	if (rv->serial_len > STORE_SERIAL_MAX)
		return -1;
	/* A record imported by its hash only: no certificate serial to list. */
	if (store_import_serial_is_synthetic(rv->serial, rv->serial_len))
		return 0;
	if (l->n == l->cap) {
		size_t cap = l->cap ? 2 * l->cap : 64;
		struct x509_crl_entry *e = realloc(l->e, cap * sizeof(*e));
		unsigned char *s;

		if (e == NULL)
			return -1;
		l->e = e;
		if ((s = realloc(l->serials, cap * STORE_SERIAL_MAX)) == NULL)
			return -1;
		l->serials = s;
		l->cap = cap;
	}
	memcpy(l->serials + l->n * STORE_SERIAL_MAX, rv->serial, rv->serial_len);
	l->e[l->n].serial_len = rv->serial_len;
	l->e[l->n].revoked_at = rv->revoked_at;
	l->e[l->n].reason = rv->reason;
	l->n++;
	return 0;
}

static void
job_free(struct crl_job *j)
{
	ops_policy_unref(j->pol);
	free(j->tbs);
	free(j->der);
	free(j);
}

static int
crl_run1(struct commit_item *it, void *env)
{
	struct crl_job *j = (struct crl_job *)it;
	struct ops_writer *w = env;
	struct revoked_list l;
	struct x509_crl_spec spec;
	struct audit_request a;
	char detail[128];
	int e, r = COMMIT_OK;

	memset(&l, 0, sizeof(l));
	if ((e = store_crl_number_next(w->st, &j->number)) != 0 ||
	    (e = store_revoked_foreach(w->st, collect, &l)) != 0) {
		r = store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
		goto out;
	}
	for (size_t i = 0; i < l.n; i++)
		l.e[i].serial = l.serials + i * STORE_SERIAL_MAX;
	memset(&spec, 0, sizeof(spec));
	spec.issuer = w->ctx->issuing;
	spec.this_update = j->this_update;
	spec.next_update = j->next_update;
	spec.number = j->number;
	spec.entries = l.e;
	spec.n_entries = l.n;
	j->entries = l.n;
	if ((e = x509_crl_tbs_build(&spec, &j->tbs, &j->tbs_len)) != X509_OK) {
		j->err_code = PROTO_CODE_INTERNAL;
		snprintf(j->msg, sizeof(j->msg), "the CRL cannot be built: %s", x509_strerror(e));
		goto out;
	}
	memset(&a, 0, sizeof(a));
	a.caller.uid = j->peer.uid;
	a.caller.gid = j->peer.gid;
	a.caller.pid = j->peer.pid;
	a.caller.name = j->caller;
	a.op = "crl";
	a.allow = 1;
	a.rule = "crl.next-update";
	a.policy_sha256 = policy_sha256(j->pol->pol);
	snprintf(detail, sizeof(detail), "CRL number %llu with %zu revoked certificates",
		 (unsigned long long)j->number, l.n);
	a.detail = detail;
	r = ops_audit_status(audit_request(w->audit, &a, &j->intent));
out:
	free(l.e);
	free(l.serials);
	return r;
}

static int
crl_run2(struct commit_item *it, void *env)
{
	struct crl_job *j = (struct crl_job *)it;
	struct ops_writer *w = env;
	struct audit_result res;
	X509_CRL *crl = NULL;
	char detail[64];
	int e;

	memset(&res, 0, sizeof(res));
	res.op = "crl";
	if (j->sign_status != HSMPROTO_ST_OK) {
		j->err_code = j->sign_status == HSMPROTO_ST_UNAVAILABLE ? PROTO_CODE_UNAVAILABLE
									 : PROTO_CODE_INTERNAL;
		snprintf(j->msg, sizeof(j->msg), "the HSM did not sign the CRL (%s: %s)",
			 hsmproto_status_name(j->sign_status), j->reason);
	} else if ((e = x509_crl_assemble(j->tbs, j->tbs_len, j->sig, j->sig_len,
					  w->ctx->issuing_key, &crl)) != X509_OK ||
		   (e = x509_crl_der(crl, &j->der, &j->der_len)) != X509_OK) {
		j->err_code = PROTO_CODE_INTERNAL;
		snprintf(j->msg, sizeof(j->msg), "the signed CRL does not check: %s", x509_strerror(e));
	}
	X509_CRL_free(crl);
	if (j->err_code == 0) {
		e = store_crl_save(w->st, j->number, j->this_update, j->der, j->der_len);
		if (e != 0)
			return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
		snprintf(detail, sizeof(detail), "CRL number %llu", (unsigned long long)j->number);
		res.detail = detail;
	} else {
		res.error = (int32_t)j->err_code;
		res.detail = j->msg;
	}
	return ops_audit_status(audit_result(w->audit, j->intent, &res));
}

static void
reply_crl(struct ops_req *r)
{
	struct proto_reply rep;

	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = PROTO_OP_CRL;
	rep.u.crl_der.ptr = r->ctx->crl.der;
	rep.u.crl_der.len = r->ctx->crl.len;
	ops_reply(r, &rep);
}

static void crl_build(struct ops_ctx *ctx, struct ops_req *trigger);

/*
 * Answers the waiters the finished job covers; starts another job for the
 * rest. @p status is the commit status (a failed commit answers as
 * ops_reply_failed_commit says), else @p code 0 means the new CRL.
 */
static void
crl_finish(struct crl_job *j, int status, uint32_t code, const char *msg)
{
	struct ops_ctx *ctx = j->ctx;
	struct ops_req *w = ctx->crl.waiters, *later = NULL;

	ctx->crl.waiters = NULL;
	ctx->crl.building = 0;
	while (w) {
		struct ops_req *next = w->next;

		if (w->gen > j->gen && status == COMMIT_OK) {
			w->next = later;
			later = w;
		} else if (status != COMMIT_OK) {
			ops_reply_failed_commit(w, status);
		} else if (code) {
			ops_reply_error(w, code, msg);
		} else {
			reply_crl(w);
		}
		w = next;
	}
	ctx->crl.waiters = later;
	if (later)
		crl_build(ctx, later);
	job_free(j);
}

static void
crl_done2(struct commit_item *it, int status)
{
	struct crl_job *j = (struct crl_job *)it;
	struct ops_ctx *ctx = j->ctx;

	if (status != COMMIT_OK) {
		crl_finish(j, status, 0, NULL);
		return;
	}
	if (j->err_code) {
		ops_log(ctx, OPS_LOG_ERR, "%s", j->msg);
		crl_finish(j, COMMIT_OK, j->err_code, j->msg);
		return;
	}
	free(ctx->crl.der);
	ctx->crl.der = j->der;
	ctx->crl.len = j->der_len;
	j->der = NULL;
	ctx->crl.this_update = j->this_update;
	ctx->crl.next_update = j->next_update;
	ctx->crl.built_gen = j->gen;
	ops_log(ctx, OPS_LOG_INFO, "signed CRL number %llu (%zu revoked)",
		(unsigned long long)j->number, j->entries);
	crl_finish(j, COMMIT_OK, 0, NULL);
}

static void
crl_sign_cb(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct crl_job *j = arg;

	j->sign_status = n == 1 ? res[0].status : HSMPROTO_ST_ERROR;
	snprintf(j->reason, sizeof(j->reason), "%s", n == 1 ? res[0].reason : "");
	if (j->sign_status == HSMPROTO_ST_OK) {
		if (res[0].value_len > sizeof(j->sig)) {
			j->sign_status = HSMPROTO_ST_ERROR;
		} else {
			memcpy(j->sig, res[0].value, res[0].value_len);
			j->sig_len = res[0].value_len;
		}
	}
	memset(&j->item, 0, sizeof(j->item));
	j->item.run = crl_run2;
	j->item.done = crl_done2;
	commit_submit(j->ctx->commit, &j->item);
}

static void
crl_done1(struct commit_item *it, int status)
{
	struct crl_job *j = (struct crl_job *)it;
	struct hsmlink_sign_req q;

	if (status != COMMIT_OK) {
		crl_finish(j, status, 0, NULL);
		return;
	}
	if (j->err_code) {
		crl_finish(j, COMMIT_OK, j->err_code, j->msg);
		return;
	}
	q.role = "issuing-ca";
	q.kind = HSMPROTO_KIND_TBS_CRL;
	q.format = HSMPROTO_FORMAT_DER;
	q.data = j->tbs;
	q.len = j->tbs_len;
	if (hsmlink_sign(j->ctx->hsm, &q, 1, crl_sign_cb, j) != HSMLINK_OK) {
		struct hsmlink_result res = { .status = HSMPROTO_ST_UNAVAILABLE,
					      .reason = "the HSM process is gone" };

		crl_sign_cb(j, &res, 1);
	}
}

/* Starts signing a new CRL on behalf of the waiting requests. */
static void
crl_build(struct ops_ctx *ctx, struct ops_req *trigger)
{
	struct crl_job *j = calloc(1, sizeof(*j));
	int64_t now = (int64_t)time(NULL);

	if (j == NULL) {
		struct ops_req *w = ctx->crl.waiters;

		ctx->crl.waiters = NULL;
		while (w) {
			struct ops_req *next = w->next;

			ops_reply_error(w, PROTO_CODE_INTERNAL, "out of memory");
			w = next;
		}
		return;
	}
	ctx->crl.building = 1;
	j->ctx = ctx;
	j->pol = ops_policy_ref(ctx->policy);
	j->peer = trigger->peer;
	snprintf(j->caller, sizeof(j->caller), "%s", ops_req_caller_name(trigger));
	j->gen = ctx->crl.gen;
	j->this_update = now;
	j->next_update = now + policy_crl_next_update(j->pol->pol);
	j->item.run = crl_run1;
	j->item.done = crl_done1;
	commit_submit(ctx->commit, &j->item);
}

void
ops_crl(struct ops_req *r)
{
	struct ops_ctx *ctx = r->ctx;
	struct ops_crl_state *c = &ctx->crl;
	int64_t now = (int64_t)time(NULL);

	if (c->der && c->built_gen == c->gen && !ctx->dying &&
	    now < c->this_update + (c->next_update - c->this_update) / 2) {
		reply_crl(r); /* a plain read: not audited */
		return;
	}
	r->gen = c->gen;
	r->next = c->waiters;
	c->waiters = r;
	if (!c->building)
		crl_build(ctx, r);
}

void
ops_crl_changed(struct ops_ctx *ctx)
{
	ctx->crl.gen++;
}

void
ops_crl_clear(struct ops_ctx *ctx)
{
	struct ops_req *w = ctx->crl.waiters;

	ctx->crl.waiters = NULL;
	while (w) {
		struct ops_req *next = w->next;

		ops_reply_error(w, PROTO_CODE_UNAVAILABLE, "the daemon is stopping");
		w = next;
	}
	free(ctx->crl.der);
	ctx->crl.der = NULL;
}
