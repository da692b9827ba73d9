/*
 * ops_issue_store.c - the writer-thread passes of ISSUE and REISSUE (see
 * signer/ops_issue.c for the whole path) and the in-flight reservations.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/ops_issue.h"

void
ops_hex(const unsigned char *p, size_t n, char *out)
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

void
ops_inflight_clear(struct ops_writer *w)
{
	for (size_t b = 0; b < OPS_INFLIGHT_BUCKETS; b++) {
		while (w->inflight[b]) {
			struct ops_inflight *f = w->inflight[b];

			w->inflight[b] = f->next;
			free(f);
		}
	}
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
	ops_hex(c->serial, c->serial_len, s->serial_hex);
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

int
ops_issue_run1(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;
	struct ops_writer *w = env;
	struct issue_state *s = r->op_state;
	struct policy_issue_request pr;
	struct policy_issue_grant g;
	struct policy_decision d;
	struct store_device_info info;
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
	/* The validity is decided here; the TBS is built off this thread. */
	s->not_before = r->now - s->prof->backdate;
	s->not_after = r->now + s->prof->validity;
	s->zone = policy_zone(r->pol->pol)->name;
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

void
ops_issue_undo1(struct commit_item *it, void *env)
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
store2(struct ops_req *r, struct ops_writer *w, int in_zone, uint32_t zone_serial)
{
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
	if (r->err_code != 0)
		goto failed; /* signing or the X.509 work failed: say so in the RESULT */
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
		if (e != STORE_EEXISTS || in_zone)
			return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.store",
			       "serial or index taken after the decision");
		goto failed;
	}
	if (s->reissue) {
		e = store_cert_revoke(w->st, s->old_serial, s->old_serial_len, r->now,
				      OPS_REASON_SUPERSEDED, NULL);
		if (e != 0 && e != STORE_EALREADY)
			return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
		snprintf(detail, sizeof(detail), "index %u revoked (superseded)",
			 (unsigned)s->old_index);
		res.detail = detail;
	}
	ops_hex(s->serial, X509_SERIAL_LEN, s->serial_hex);
	(void)x509_sha256(s->cert, s->cert_len, cert_sha);
	res.serial = s->serial;
	res.serial_len = X509_SERIAL_LEN;
	res.cert_sha256 = cert_sha;
	res.has_zone_serial = in_zone;
	res.zone_serial = zone_serial;
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


int
ops_issue_run2(struct commit_item *it, void *env)
{
	return store2((struct ops_req *)it, env, 0, 0);
}

int
ops_issue_zone_store(struct ops_req *r, struct ops_writer *w, uint32_t serial)
{
	return store2(r, w, 1, serial);
}
