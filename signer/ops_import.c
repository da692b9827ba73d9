/*
 * ops_import.c - IMPORT: bulk import of device records for registries
 * migrating in (docs/PROTOCOL.md, "IMPORT").
 *
 * An import arrives in chunks {import id, sequence number, final flag,
 * records} on one connection. Each chunk is checked completely when it
 * arrives (record syntax, device id and index as for ISSUE, duplicates within
 * the import, hash lengths, what the zone's record styles need, and each
 * certificate: it parses, the issuing CA signed it, it names
 * <index>.<device>.<zone> and has not expired). A refused chunk is audited
 * as a denied request, answered with the record at fault, and leaves the
 * import as it was, so the client may send it again. Accepted records
 * accumulate compactly in ctx->import: a packed array of struct zone_device
 * whose strings and hashes live in a few large blocks (no allocation per
 * record), a parallel array of notAfter times, and a chained hash of
 * (device, index) for duplicates.
 *
 * One import at a time. Another connection gets BUSY; the same connection
 * with another import id or out of sequence gets CONFLICT. An import is
 * discarded and audited ("import-abandoned") when its connection closes, when
 * no chunk came for its idle timeout, or when the daemon stops. While one is
 * open it counts as a request in flight, so a shutdown waits for its timer
 * to discard it.
 *
 * The final chunk commits (ops_import_commit.c).
 */
#include <ctype.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "signer/ops_ctx.h"
#include "signer/ops_import_int.h"
#include "signer/ops_zone.h"
#include "signer/x509.h"

/* Seconds without a chunk before an import is discarded, unless the client chose. */
#define IMPORT_IDLE_DEFAULT 300
/* Bytes per arena block: strings, hashes and certificates of the records. */
#define IMPORT_BLOCK (1u << 20)

struct imp_block {
	struct imp_block *prev;
	size_t used, cap;
	unsigned char data[];
};

/* Where the arena stood before a chunk: a refused chunk goes back there. */
struct imp_mark {
	struct imp_block *block;
	size_t used;
	size_t n, n_certs;
};


/* ---- memory ---- */

static void *
arena_alloc(struct ops_import *im, size_t len)
{
	struct imp_block *b = im->arena;
	void *p;

	if (b == NULL || b->cap - b->used < len) {
		size_t cap = len > IMPORT_BLOCK ? len : IMPORT_BLOCK;

		if ((b = malloc(sizeof(*b) + cap)) == NULL)
			return NULL;
		b->prev = im->arena;
		b->used = 0;
		b->cap = cap;
		im->arena = b;
	}
	p = b->data + b->used;
	b->used += len;
	return p;
}

static void
arena_mark(const struct ops_import *im, struct imp_mark *m)
{
	m->block = im->arena;
	m->used = im->arena ? im->arena->used : 0;
	m->n = im->n;
	m->n_certs = im->n_certs;
}

static void
arena_free_to(struct ops_import *im, struct imp_block *keep)
{
	while (im->arena != keep) {
		struct imp_block *b = im->arena;

		im->arena = b->prev;
		free(b);
	}
}

static uint32_t
rec_hash(const char *id, uint32_t index)
{
	uint32_t h = 2166136261u ^ index;

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return (h ^ (h >> 15)) * 2246822519u;
}

static int
buckets_grow(struct ops_import *im, size_t want)
{
	size_t nb = im->nbuckets ? im->nbuckets : 4096;
	uint32_t *b;

	while (nb < 2 * want)
		nb *= 2;
	if (nb == im->nbuckets)
		return 0;
	if ((b = calloc(nb, sizeof(*b))) == NULL)
		return -1;
	free(im->buckets);
	im->buckets = b;
	im->nbuckets = nb;
	for (size_t i = 0; i < im->n; i++) {
		uint32_t h = rec_hash(im->devs[i].id, im->devs[i].index) & (uint32_t)(nb - 1);

		im->chain[i] = b[h];
		b[h] = (uint32_t)i + 1;
	}
	return 0;
}

/* Room for one more record in the parallel arrays. */
static int
records_reserve(struct ops_import *im)
{
	size_t cap;
	void *p;

	if (im->n < im->cap)
		return 0;
	if (im->cap >= UINT32_MAX - 1)
		return -1;
	cap = im->cap ? im->cap + im->cap / 2 : 4096;
	if ((p = realloc(im->devs, cap * sizeof(*im->devs))) == NULL)
		return -1;
	im->devs = p;
	if ((p = realloc(im->not_after, cap * sizeof(*im->not_after))) == NULL)
		return -1;
	im->not_after = p;
	if ((p = realloc(im->chain, cap * sizeof(*im->chain))) == NULL)
		return -1;
	im->chain = p;
	im->cap = cap;
	return 0;
}

/* The record equal to (id, index), or -1. */
static long
records_find(const struct ops_import *im, const char *id, uint32_t index)
{
	uint32_t h;

	if (im->nbuckets == 0)
		return -1;
	h = rec_hash(id, index) & (uint32_t)(im->nbuckets - 1);
	for (uint32_t k = im->buckets[h]; k != 0; k = im->chain[k - 1])
		if (im->devs[k - 1].index == index && strcmp(im->devs[k - 1].id, id) == 0)
			return (long)k - 1;
	return -1;
}

/* Undoes the records added since @p m (a refused chunk), newest first. */
static void
records_rollback(struct ops_import *im, const struct imp_mark *m)
{
	while (im->n > m->n) {
		size_t i = --im->n;
		uint32_t h = rec_hash(im->devs[i].id, im->devs[i].index) &
			     (uint32_t)(im->nbuckets - 1);

		/* The newest record of a bucket is its head. */
		im->buckets[h] = im->chain[i];
	}
	im->n_certs = m->n_certs;
	arena_free_to(im, m->block);
	if (im->arena)
		im->arena->used = m->used;
}

/* Frees the records (all of them): after the commit, or when discarded. */
static void
records_free(struct ops_import *im)
{
	arena_free_to(im, NULL);
	free(im->devs);
	free(im->not_after);
	free(im->chain);
	free(im->buckets);
	im->devs = NULL;
	im->not_after = NULL;
	im->chain = NULL;
	im->buckets = NULL;
	im->n = im->cap = im->nbuckets = 0;
}

static void
import_closed(uv_handle_t *h)
{
	struct ops_import *im = h->data;

	records_free(im);
	EVP_MD_CTX_free(im->md);
	free(im);
}

/* See ops_import_int.h. */
void
ops_import__discard(struct ops_import *im, const char *why)
{
	struct ops_ctx *ctx = im->ctx;
	char detail[256];

	if (why != NULL) {
		snprintf(detail, sizeof(detail), "import %u of caller %s: %zu records discarded: %s",
			 (unsigned)im->id, im->caller, im->n, why);
		ops_log(ctx, OPS_LOG_NOTICE, "%s", detail);
		(void)ops_event(ctx, "import-abandoned", detail, NULL);
	}
	records_free(im);
#ifdef __GLIBC__
	/* The records of a large import (about 100 bytes per device, in the
	 * loop thread's arena) go back to the system now rather than staying
	 * resident beside the zone thread's copy of the zone, which it builds
	 * in its own arena at the next change. */
	malloc_trim(0);
#endif
	server_conn_unref(im->conn);
	im->conn = NULL;
	if (ctx->import == im)
		ctx->import = NULL;
	uv_close((uv_handle_t *)&im->timer, import_closed);
	ctx->inflight--;
	ops_maybe_finish(ctx);
}

static void
import_tick(uv_timer_t *t)
{
	struct ops_import *im = t->data;
	struct ops_ctx *ctx = im->ctx;
	char why[64];

	if (im->committing)
		return; /* the final chunk finishes what it started */
	if (ctx->stopping || ctx->dying) {
		ops_import__discard(im, "the daemon is stopping");
		return;
	}
	if (server_conn_closed(im->conn)) {
		ops_import__discard(im, "its connection closed");
		return;
	}
	if (uv_now(ctx->loop) - im->last_ms >= (uint64_t)im->idle_timeout * 1000) {
		snprintf(why, sizeof(why), "no chunk for %u seconds", (unsigned)im->idle_timeout);
		ops_import__discard(im, why);
	}
}

static struct ops_import *
import_new(struct ops_req *r, uint32_t id)
{
	struct ops_ctx *ctx = r->ctx;
	struct ops_import *im = calloc(1, sizeof(*im));

	if (im == NULL)
		return NULL;
	if ((im->md = EVP_MD_CTX_new()) == NULL ||
	    EVP_DigestInit_ex(im->md, EVP_sha256(), NULL) != 1 ||
	    uv_timer_init(ctx->loop, &im->timer) != 0) {
		EVP_MD_CTX_free(im->md);
		free(im);
		return NULL;
	}
	im->timer.data = im;
	im->ctx = ctx;
	im->id = id;
	im->next_seq = 1;
	im->conn = r->conn;
	server_conn_ref(im->conn);
	snprintf(im->caller, sizeof(im->caller), "%s", r->caller->name);
	im->caller_uid = r->peer.uid;
	im->last_ms = uv_now(ctx->loop);
	uv_timer_start(&im->timer, import_tick, 1000, 1000);
	ctx->inflight++;
	ctx->import = im;
	return im;
}

/* ---- checking one record ---- */

struct rec_check {
	struct ops_req *r;
	struct ops_import *im;
	uint32_t seq, k;             /* chunk, record number in the chunk */
	unsigned styles;
	const char *zone;
	const struct policy_device_id *rules;
	int64_t now;
};

static void __attribute__((format(printf, 3, 4)))
rec_refuse(struct rec_check *c, const char *id, const char *fmt, ...)
{
	char what[300];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	ops_req_refuse(c->r, PROTO_CODE_BAD_REQUEST, "builtin.import",
		       "chunk %u record %u (import record %zu%s%s): %s", (unsigned)c->seq,
		       (unsigned)c->k, c->im->n + 1, id && id[0] ? ", device " : "", id ? id : "",
		       what);
}

/* The certificate of a record: parsed, issued by our CA, naming the owner. 0 or -1 (refused). */
static int
check_cert(struct rec_check *c, const char *id, uint32_t index, struct proto_bytes der,
	   unsigned char sha[32], int64_t *not_after)
{
	struct ops_ctx *ctx = c->r->ctx;
	const unsigned char *p = der.ptr;
	char owner[300];
	X509 *x = NULL;
	ASN1_TIME *na;
	struct tm tm;
	int r = -1;

	if ((x = d2i_X509(NULL, &p, (long)der.len)) == NULL || p != der.ptr + der.len) {
		rec_refuse(c, id, "the certificate does not parse as one DER X.509 certificate");
		goto out;
	}
	if (X509_check_issued(ctx->issuing, x) != X509_V_OK ||
	    X509_verify(x, ctx->issuing_key) != 1) {
		rec_refuse(c, id, "the certificate was not issued by this registry's issuing CA");
		goto out;
	}
	if (x509_owner_name(index, id, c->zone, owner, sizeof(owner)) != X509_OK ||
	    X509_check_host(x, owner, 0, X509_CHECK_FLAG_NO_WILDCARDS, NULL) != 1) {
		rec_refuse(c, id, "the certificate does not name %u.%s.%s", (unsigned)index, id,
			   c->zone);
		goto out;
	}
	na = (ASN1_TIME *)X509_get0_notAfter(x);
	if (na == NULL || ASN1_TIME_to_tm(na, &tm) != 1) {
		rec_refuse(c, id, "the certificate's notAfter is unreadable");
		goto out;
	}
	*not_after = (int64_t)timegm(&tm);
	if (*not_after <= c->now) {
		rec_refuse(c, id, "the certificate has expired");
		goto out;
	}
	if (X509_get0_serialNumber(x)->length < 1 ||
	    X509_get0_serialNumber(x)->length > STORE_SERIAL_MAX ||
	    (X509_get0_serialNumber(x)->type & V_ASN1_NEG)) {
		rec_refuse(c, id, "the certificate's serial number is not 1 to 20 positive octets");
		goto out;
	}
	if (x509_sha256(der.ptr, der.len, sha) != X509_OK) {
		rec_refuse(c, id, "the certificate could not be hashed");
		goto out;
	}
	r = 0;
out:
	X509_free(x);
	return r;
}

/* "<device> <index> <hex sha256>\n" into @p out; returns its length. */
static size_t
audit_line(char *out, const char *id, size_t idlen, uint32_t index, const unsigned char sha[32])
{
	static const char digits[] = "0123456789abcdef";
	char num[11];
	size_t n = 0, k = 0;

	memcpy(out, id, idlen);
	n = idlen;
	out[n++] = ' ';
	do
		num[k++] = (char)('0' + index % 10);
	while ((index /= 10) != 0);
	while (k > 0)
		out[n++] = num[--k];
	out[n++] = ' ';
	for (int i = 0; i < 32; i++) {
		out[n++] = digits[sha[i] >> 4];
		out[n++] = digits[sha[i] & 15];
	}
	out[n++] = '\n';
	return n;
}

/*
 * Checks a record and appends it. 0, or -1 with the refusal recorded in the
 * request (or out of memory, also recorded).
 */
static int
record_add(struct rec_check *c, const struct proto_import_record *q)
{
	struct ops_import *im = c->im;
	struct zone_device *d;
	char id[STORE_DEVICE_MAX + 1], line[STORE_DEVICE_MAX + 80];
	unsigned char sha[32], *p;
	int64_t not_after = 0;
	size_t idlen = q->device_id.len;
	long dup;

	memcpy(id, q->device_id.ptr ? (const char *)q->device_id.ptr : "", idlen);
	id[idlen] = '\0';
	for (size_t i = 0; i < idlen; i++) {
		if (!isxdigit((unsigned char)id[i])) {
			rec_refuse(c, NULL, "device id '%s' may hold only hex digits", id);
			return -1;
		}
		id[i] = (char)tolower((unsigned char)id[i]);
	}
	if ((int64_t)idlen < c->rules->min_length || (int64_t)idlen > c->rules->max_length ||
	    idlen > POLICY_DEVICE_ID_MAX) {
		rec_refuse(c, id, "a device id has %lld to %lld hex digits",
			   (long long)c->rules->min_length, (long long)c->rules->max_length);
		return -1;
	}
	if (q->index < 1 || (int64_t)q->index > c->rules->max_index) {
		rec_refuse(c, id, "index %u is not in 1..%lld", (unsigned)q->index,
			   (long long)c->rules->max_index);
		return -1;
	}
	if ((dup = records_find(im, id, q->index)) >= 0) {
		rec_refuse(c, id, "index %u duplicates import record %ld", (unsigned)q->index,
			   dup + 1);
		return -1;
	}
	if (q->cert_der.len > 0) {
		if (q->spki_sha256.len != 0) {
			/* The certificate holds its key: a second, unchecked copy has no use. */
			rec_refuse(c, id, "spki_sha256 goes only with a record without certificate");
			return -1;
		}
		if (check_cert(c, id, q->index, q->cert_der, sha, &not_after) != 0)
			return -1;
		if (q->cert_sha256.len == 32 && memcmp(q->cert_sha256.ptr, sha, 32) != 0) {
			rec_refuse(c, id, "cert_sha256 is not the SHA-256 of the certificate");
			return -1;
		}
	} else {
		if (q->cert_sha256.len != 32) {
			rec_refuse(c, id, "the record has neither a certificate nor its SHA-256");
			return -1;
		}
		if (c->styles & ZONE_STYLE_CERT_PKIX) {
			rec_refuse(c, id, "the zone's record style cert-pkix needs the certificate");
			return -1;
		}
		if ((c->styles & ZONE_STYLE_DANCE) && q->spki_sha256.len != 32) {
			rec_refuse(c, id, "the zone's record style dance needs the certificate or "
				   "spki_sha256");
			return -1;
		}
		memcpy(sha, q->cert_sha256.ptr, 32);
	}
	if (records_reserve(im) != 0 || buckets_grow(im, im->n + 1) != 0 ||
	    (p = arena_alloc(im, idlen + 1 + 32 + (q->spki_sha256.len ? 32 : 0) +
				 q->cert_der.len)) == NULL) {
		ops_req_refuse(c->r, PROTO_CODE_INTERNAL, "builtin.memory",
			       "out of memory at import record %zu", im->n + 1);
		return -1;
	}
	d = &im->devs[im->n];
	memset(d, 0, sizeof(*d));
	d->id = memcpy(p, id, idlen + 1);
	p += idlen + 1;
	d->index = q->index;
	d->styles = c->styles;
	d->cert_sha256 = memcpy(p, sha, 32);
	p += 32;
	if (q->spki_sha256.len) {
		d->spki_sha256 = memcpy(p, q->spki_sha256.ptr, 32);
		p += 32;
	}
	if (q->cert_der.len) {
		d->cert_der = memcpy(p, q->cert_der.ptr, q->cert_der.len);
		d->cert_len = q->cert_der.len;
		im->n_certs++;
	}
	im->not_after[im->n] = not_after;
	{
		uint32_t h = rec_hash(d->id, d->index) & (uint32_t)(im->nbuckets - 1);

		im->chain[im->n] = im->buckets[h];
		im->buckets[h] = (uint32_t)im->n + 1;
	}
	im->n++;
	EVP_DigestUpdate(im->md, line, audit_line(line, id, idlen, q->index, sha));
	return 0;
}

/* Checks and appends every record of a chunk; on a refusal nothing of it stays. */
static int
chunk_add(struct ops_req *r, struct ops_import *im, const struct proto_import *q)
{
	struct ops_ctx *ctx = r->ctx;
	struct proto_import_iter it;
	struct proto_import_record rec;
	struct rec_check c;
	struct imp_mark m;
	EVP_MD_CTX *saved = EVP_MD_CTX_new();
	int e;

	if (saved == NULL || EVP_MD_CTX_copy_ex(saved, im->md) != 1) {
		EVP_MD_CTX_free(saved);
		ops_req_refuse(r, PROTO_CODE_INTERNAL, "builtin.memory", "out of memory");
		return -1;
	}
	memset(&c, 0, sizeof(c));
	c.r = r;
	c.im = im;
	c.seq = q->seq;
	c.styles = ctx->zone->styles;
	/* The policy's name, not the zone parameters': those may borrow an older policy. */
	c.zone = policy_zone(r->pol->pol)->name;
	c.rules = policy_device_id(r->pol->pol);
	c.now = r->now;
	arena_mark(im, &m);
	proto_import_iter_init(&it, q->records);
	for (c.k = 1; (e = proto_import_iter_next(&it, &rec)) == 1; c.k++)
		if (record_add(&c, &rec) != 0)
			break;
	if (e < 0)
		rec_refuse(&c, NULL, "malformed record: %s", proto_strerror(e));
	if (e != 0) {
		records_rollback(im, &m);
		EVP_MD_CTX_copy_ex(im->md, saved);
	}
	EVP_MD_CTX_free(saved);
	return e != 0 ? -1 : 0;
}

/* ---- the handler ---- */

/* op_state of a first chunk whose zone check passed (ops_import runs again). */
static char zone_checked;

/*
 * Writer thread: a first chunk. An import needs a zone without devices; a
 * store with a valid certificate means the zone has some, so say it now
 * rather than after the last chunk (which checks again, exactly).
 */
static int
import_run0(struct commit_item *it, void *env)
{
	struct ops_req *r = (struct ops_req *)it;
	struct ops_writer *w = env;
	int e = store_import_live_any(w->st, r->now);

	if (e < 0)
		return ops_import__store_status(e);
	if (e == 0)
		return COMMIT_OK;
	ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.import",
		       "the registry holds valid certificates, so the zone holds device records: "
		       "IMPORT needs a zone without devices");
	return ops_audit_deny(w, r);
}

static void
import_done0(struct commit_item *it, int status)
{
	struct ops_req *r = (struct ops_req *)it;

	if (status != COMMIT_OK) {
		ops_reply_failed_commit(r, status);
		return;
	}
	if (r->err_code != 0) {
		ops_reply_refusal(r);
		return;
	}
	r->op_state = &zone_checked;
	ops_import(r);
}

static void
reply_accepted(struct ops_req *r, struct ops_import *im)
{
	struct proto_reply rep;

	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_OK;
	rep.id = r->req.id;
	rep.op = PROTO_OP_IMPORT;
	rep.u.import.records = (uint32_t)im->n;
	ops_reply(r, &rep);
}

void
ops_import(struct ops_req *r)
{
	struct ops_ctx *ctx = r->ctx;
	const struct proto_import *q = &r->req.u.import;
	struct ops_import *im = ctx->import;
	int created = 0;

	if (q->import_id == 0 || q->seq == 0 || (q->flags & ~PROTO_IMPORT_FINAL) != 0 ||
	    q->idle_timeout > PROTO_MAX_IMPORT_TIMEOUT) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.arguments",
			       "import_id and seq must be at least 1, flags only FINAL (1), "
			       "idle_timeout at most %u seconds", PROTO_MAX_IMPORT_TIMEOUT);
		ops_deny(r);
		return;
	}
	if (ctx->zone == NULL || !ctx->zone->open || ctx->zone->zp == NULL) {
		ops_req_refuse(r, PROTO_CODE_UNAVAILABLE, "builtin.zone", "the zone is not open");
		ops_deny(r);
		return;
	}
	if (im != NULL && !im->committing && server_conn_closed(im->conn)) {
		/* Its timer would notice within a second: do not make this caller wait. */
		ops_import__discard(im, "its connection closed");
		im = NULL;
	}
	if (im != NULL && im->conn != r->conn) {
		ops_req_refuse(r, PROTO_CODE_BUSY, "builtin.import",
			       "import %u of caller %s is in progress (%zu records); one import at "
			       "a time", (unsigned)im->id, im->caller, im->n);
		ops_deny(r);
		return;
	}
	if (im != NULL && (im->id != q->import_id || im->committing)) {
		ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.import",
			       im->committing ? "import %u is being committed"
					      : "import %u is in progress on this connection",
			       (unsigned)im->id);
		ops_deny(r);
		return;
	}
	if ((im == NULL && q->seq != 1) || (im != NULL && q->seq != im->next_seq)) {
		ops_req_refuse(r, PROTO_CODE_CONFLICT, "builtin.import",
			       "chunk %u of import %u is out of sequence: expected %u",
			       (unsigned)q->seq, (unsigned)q->import_id,
			       (unsigned)(im ? im->next_seq : 1));
		ops_deny(r);
		return;
	}
	if (im == NULL && r->op_state != &zone_checked) {
		memset(&r->item, 0, sizeof(r->item));
		r->item.run = import_run0;
		r->item.done = import_done0;
		commit_submit(ctx->commit, &r->item);
		return;
	}
	if (im == NULL) {
		if ((im = import_new(r, q->import_id)) == NULL) {
			ops_reply_error(r, PROTO_CODE_INTERNAL, "out of memory");
			return;
		}
		created = 1;
	}
	if (chunk_add(r, im, q) != 0) {
		/* A refused first chunk leaves no import behind. */
		if (created)
			ops_import__discard(im, NULL);
		ops_deny(r);
		return;
	}
	im->next_seq++;
	im->idle_timeout = q->idle_timeout ? q->idle_timeout : IMPORT_IDLE_DEFAULT;
	im->last_ms = uv_now(ctx->loop);
	if (!(q->flags & PROTO_IMPORT_FINAL)) {
		reply_accepted(r, im);
		return;
	}
	if (im->n == 0) {
		ops_req_refuse(r, PROTO_CODE_BAD_REQUEST, "builtin.import",
			       "import %u has no record; the import is discarded", (unsigned)im->id);
		ops_import__discard(im, NULL);
		ops_deny(r);
		return;
	}
	ops_import__commit(r, im);
}
