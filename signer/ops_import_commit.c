/*
 * ops_import_commit.c - IMPORT's final chunk: the commit of the records that
 * ops_import.c accumulated and checked.
 *
 * The first pass (writer thread) checks every record against the store (an
 * index ever used, a serial known) and writes the INTENT record, which names
 * the SHA-256 over the import's audit lines
 * "<device> <index> <hex SHA-256 of the certificate>\n" so that an auditor
 * can tie the import to its input. Then zonepub signs everything in one pass
 * (zonepub_bulk_import: the zone must hold no device yet) and, in the zone's
 * transaction, the certificate rows and one RESULT record with the count,
 * the serial and the same hash are written. The reply carries the serial
 * after it is committed. The accumulated records are freed right after.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "signer/ops_ctx.h"
#include "signer/ops_import_int.h"
#include "signer/ops_zone.h"

/* Signatures per batch of the bulk signing (zonepub_bulk::batch). */
#define IMPORT_SIGN_BATCH 4096

static struct ops_import *
bulk_import_of(struct zonepub_bulk *b)
{
	return (struct ops_import *)(void *)((char *)b - offsetof(struct ops_import, bulk));
}

int
ops_import__store_status(int e)
{
	return store_error_is_fatal(e) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
}

/* Writer thread: no record may collide with the store; then the INTENT record. */
static int
import_run1(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;
	struct ops_writer *w = env;
	struct ops_import *im = r->ctx->import;
	unsigned char synth[STORE_IMPORT_SERIAL_LEN];
	store_import_t *h = NULL;
	int e;

	if ((e = store_import_begin(w->st, &h)) != 0)
		return ops_import__store_status(e);
	for (size_t i = 0; i < im->n; i++) {
		const struct zone_device *d = &im->devs[i];
		const unsigned char *serial = synth;
		size_t serial_len = sizeof(synth);
		const unsigned char *dp = d->cert_der;
		X509 *x = NULL;

		if (d->cert_der != NULL) {
			/* Checked when its chunk came: it parses. */
			x = d2i_X509(NULL, &dp, (long)d->cert_len);
			serial = x ? X509_get0_serialNumber(x)->data : synth;
			serial_len = x ? (size_t)X509_get0_serialNumber(x)->length : sizeof(synth);
		} else {
			store_import_synthetic_serial(d->id, d->index, synth);
		}
		e = store_import_conflict(h, d->id, d->index, serial, serial_len);
		X509_free(x);
		if (e < 0) {
			store_import_end(h);
			return ops_import__store_status(e);
		}
		if (e > 0) {
			store_import_end(h);
			ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.import",
				       "import record %zu (device %s index %u): %s; the import is "
				       "discarded", i + 1, d->id, (unsigned)d->index,
				       e == 1 ? "the store already holds this index (indexes are "
						"never reused)"
					      : "the store already holds a certificate with this serial");
			return ops_audit_deny(w, r);
		}
	}
	store_import_end(h);
	return ops_audit_intent(w, r, im->detail);
}

/* Writer thread, in the zone's transaction: the certificate rows and the RESULT. */
static int
import_store_run(struct zonepub_bulk *b, void *env)
{
	struct ops_import *im = bulk_import_of(b);
	struct ops_writer *w = env;
	struct ops_req *r = im->final;
	unsigned char synth[STORE_IMPORT_SERIAL_LEN], *sv = NULL;
	struct store_import_row row;
	store_import_t *h = NULL;
	uint32_t serial = 0;
	size_t sl = 0;
	char detail[sizeof(im->detail) + 32];
	int e, status = COMMIT_OK;

	/* zonepub wrote the new serial before calling us, in this transaction. */
	if ((e = store_zone_meta_get(w->st, "serial", &sv, &sl)) != 0)
		return ops_import__store_status(e);
	if (sl == 4)
		serial = (uint32_t)sv[0] << 24 | (uint32_t)sv[1] << 16 | (uint32_t)sv[2] << 8 | sv[3];
	free(sv);
	if ((e = store_import_begin(w->st, &h)) != 0)
		return ops_import__store_status(e);
	for (size_t i = 0; status == COMMIT_OK && i < im->n; i++) {
		const struct zone_device *d = &im->devs[i];
		const unsigned char *dp = d->cert_der;
		X509 *x = NULL;

		memset(&row, 0, sizeof(row));
		row.device = d->id;
		row.index = d->index;
		row.cert_sha256 = d->cert_sha256;
		row.issued_at = r->now;
		row.caller_uid = im->caller_uid;
		row.caller_name = im->caller;
		if (d->cert_der != NULL && (x = d2i_X509(NULL, &dp, (long)d->cert_len)) != NULL) {
			const ASN1_INTEGER *sn = X509_get0_serialNumber(x);
			struct tm tm;

			row.serial = sn->data;
			row.serial_len = (size_t)sn->length;
			row.der = d->cert_der;
			row.der_len = d->cert_len;
			if (ASN1_TIME_to_tm(X509_get0_notBefore(x), &tm) == 1)
				row.not_before = (int64_t)timegm(&tm);
			row.not_after = im->not_after ? im->not_after[i] : 0;
		} else {
			store_import_synthetic_serial(d->id, d->index, synth);
			row.serial = synth;
			row.serial_len = sizeof(synth);
			row.not_after = STORE_IMPORT_NO_EXPIRY;
		}
		if (d->cert_der != NULL && x == NULL)
			status = COMMIT_ERR_STORAGE; /* parsed when it came: memory */
		else if ((e = store_import_insert(h, &row)) != 0)
			status = ops_import__store_status(e);
		X509_free(x);
	}
	store_import_end(h);
	if (status != COMMIT_OK)
		return status;
	snprintf(detail, sizeof(detail), "%s, serial %u", im->detail, (unsigned)serial);
	return ops_result_write(w, r, detail, serial);
}

static void
final_reply_ok(struct ops_import *im, uint32_t serial)
{
	struct ops_req *r = im->final;
	struct proto_reply rep;

	ops_log(im->ctx, OPS_LOG_NOTICE, "import %u of caller %s: %zu devices in serial %u",
		(unsigned)im->id, im->caller, im->n, (unsigned)serial);
	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = PROTO_OP_IMPORT;
	rep.u.import.records = (uint32_t)im->n;
	rep.u.import.zone_serial = serial;
	im->final = NULL;
	ops_import__discard(im, NULL);
	ops_reply(r, &rep);
}

/*
 * Ends the import whose final chunk is @p r (if it still is), then answers
 * @p r: its commit's failure @p status, or, when that committed, the
 * refusal @p r recorded.
 */
static void
final_fail(struct ops_import *im, struct ops_req *r, int status)
{
	if (im != NULL && im->final == r) {
		im->final = NULL;
		ops_import__discard(im, NULL);
	}
	if (status != COMMIT_OK)
		ops_reply_failed_commit(r, status);
	else
		ops_reply_refusal(r);
}

/* Loop: the failure RESULT is committed (or not); answer and end the import. */
static void
import_failed_done(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;

	final_fail(r->ctx->import, r, status);
}

/* Loop: the zone published the import, or failed (nothing changed). */
static void
import_bulk_done(struct zonepub_bulk *b, int status, uint32_t serial)
{
	struct ops_import *im = bulk_import_of(b);
	struct ops_req *r = im->final;

	if (status == 0) {
		final_reply_ok(im, serial);
		return;
	}
	if (status == ZONEPUB_EFATAL) {
		final_fail(im, r, COMMIT_ERR_FATAL);
		return;
	}
	if (status == ZONEPUB_ESTATE || status == ZONEPUB_EEXIST)
		ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.import",
			       "the zone already holds device records: IMPORT needs a zone "
			       "without devices; the import is discarded");
	else
		ops_req_refuse(r, ops_zone_wire_code(status), "builtin.zone",
			       "the zone could not take the import: %s; the import is discarded",
			       zonepub_strerror(status));
	ops_log(im->ctx, OPS_LOG_WARNING, "import %u: %s", (unsigned)im->id, r->msg);
	ops_result_submit(r, NULL, import_failed_done);
}

/* Loop: the first pass of the final chunk committed. */
static void
import_done1(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;
	struct ops_import *im = r->ctx->import;

	if (status != COMMIT_OK || r->err_code != 0 || r->intent == 0) {
		final_fail(im, r, status);
		return;
	}
	memset(&im->bulk, 0, sizeof(im->bulk));
	im->bulk.devs = im->devs;
	im->bulk.not_after = im->not_after;
	im->bulk.n = im->n;
	im->bulk.batch = IMPORT_SIGN_BATCH;
	im->bulk.store_run = import_store_run;
	im->bulk.done = import_bulk_done;
	zonepub_bulk_import(r->ctx->zone->zp, &im->bulk);
}

void
ops_import__commit(struct ops_req *r, struct ops_import *im)
{
	unsigned int len = 0;

	im->committing = 1;
	im->final = r;
	/* The hash set is not needed any more, nor the growth room of the arrays,
	 * nor notAfter times when no record has one: free them before the zone
	 * is built twice (working and served copy). */
	free(im->buckets);
	free(im->chain);
	im->buckets = im->chain = NULL;
	im->nbuckets = 0;
	if (im->n_certs == 0) {
		free(im->not_after);
		im->not_after = NULL;
	}
	if (im->n < im->cap) {
		void *p = realloc(im->devs, im->n * sizeof(*im->devs));

		if (p != NULL)
			im->devs = p;
		if (im->not_after != NULL &&
		    (p = realloc(im->not_after, im->n * sizeof(*im->not_after))) != NULL)
			im->not_after = p;
		im->cap = im->n;
	}
	EVP_DigestFinal_ex(im->md, im->sha256, &len);
	for (int i = 0; i < 32; i++)
		snprintf(im->sha_hex + 2 * i, 3, "%02x", im->sha256[i]);
	snprintf(im->detail, sizeof(im->detail),
		 "import %u: %zu devices (%zu with certificate, %zu hash only), records sha256 %s",
		 (unsigned)im->id, im->n, im->n_certs, im->n - im->n_certs, im->sha_hex);
	memcpy(r->input_sha256, im->sha256, 32);
	r->input_name = "records";
	snprintf(r->rule, sizeof(r->rule), "%s", "callers.operations");
	memset(&r->item, 0, sizeof(r->item));
	r->item.run = import_run1;
	r->item.undo = ops_audit_intent_undo;
	r->item.done = import_done1;
	commit_submit(r->ctx->commit, &r->item);
}
