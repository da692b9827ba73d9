/*
 * The audit log verifier. See audit_verify.h.
 *
 * It reads any chunking of the files through a line buffer bounded by
 * AUDIT_LINE_MAX, so a hostile file costs at most that much memory plus
 * the set of open intents (one integer each).
 */
#include "signer/audit_verify.h"
#include "signer/audit_record.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct audit_verifier {
	EVP_PKEY *key;
	char head[65];
	unsigned flags;
	char *file;
	unsigned long lineno;
	char *line;               /* AUDIT_LINE_MAX + 1 bytes */
	size_t len;
	int too_long;             /* the current line passed AUDIT_LINE_MAX */
	uint64_t next_seq;        /* 0 before the first record */
	char prev[65];
	uint64_t *open;           /* open intents, ascending */
	size_t nopen, capopen;
	struct audit_verify_summary sum;
	struct audit_record rec;
	char err[512];
	int failed;
};

static int
fail(audit_verifier_t *v, const char *fmt, ...)
{
	char what[400];
	va_list ap;
	if (v->failed)
		return AUDIT_EBADLOG;
	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	snprintf(v->err, sizeof(v->err), "%s:%lu: %s", v->file ? v->file : "-", v->lineno, what);
	v->failed = 1;
	return AUDIT_EBADLOG;
}

int
audit_verifier_new(audit_verifier_t **out, EVP_PKEY *key, const char *head, unsigned flags)
{
	audit_verifier_t *v;
	if (out == NULL || (head && (strlen(head) != 64 || strspn(head, "0123456789abcdef") != 64)))
		return AUDIT_EINVAL;
	if ((v = calloc(1, sizeof(*v))) == NULL || (v->line = malloc(AUDIT_LINE_MAX + 1)) == NULL) {
		free(v);
		return AUDIT_ENOMEM;
	}
	if (key && EVP_PKEY_up_ref(key) == 1)
		v->key = key;
	else if (key) {
		audit_verifier_free(v);
		return AUDIT_EKEY;
	}
	if (head)
		memcpy(v->head, head, 65);
	v->flags = flags;
	v->sum.signatures_checked = key != NULL;
	*out = v;
	return 0;
}

void
audit_verifier_free(audit_verifier_t *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_free(v->key);
	free(v->file);
	free(v->line);
	free(v->open);
	free(v);
}

const char *
audit_verifier_error(const audit_verifier_t *v)
{
	return v && v->failed ? v->err : NULL;
}

void
audit_verifier_summary(const audit_verifier_t *v, struct audit_verify_summary *out)
{
	*out = v->sum;
}

/* ---- Open intents ----------------------------------------------------------- */

static int
intent_add(audit_verifier_t *v, uint64_t seq)
{
	if (v->nopen == v->capopen) {
		size_t cap = v->capopen ? v->capopen * 2 : 64;
		uint64_t *n = realloc(v->open, cap * sizeof(*n));
		if (n == NULL)
			return AUDIT_ENOMEM;
		v->open = n;
		v->capopen = cap;
	}
	v->open[v->nopen++] = seq; /* seqs grow, so the array stays sorted */
	return 0;
}

/* Remove @p seq from the open intents; 0 if it was open. */
static int
intent_close(audit_verifier_t *v, uint64_t seq)
{
	size_t lo = 0, hi = v->nopen;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (v->open[mid] < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo == v->nopen || v->open[lo] != seq)
		return -1;
	memmove(v->open + lo, v->open + lo + 1, (v->nopen - lo - 1) * sizeof(*v->open));
	v->nopen--;
	return 0;
}

/* ---- Checkpoint signatures ------------------------------------------------------ */

static int
sig_verify(EVP_PKEY *key, const struct audit_record *r)
{
	unsigned char raw[70], digest[32], *der = NULL, *msg = NULL;
	char again[89];
	ECDSA_SIG *sig = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	size_t mlen;
	int dlen, ok = 0;

	/* The base64 must be the one spelling of these 64 bytes. */
	if (EVP_DecodeBlock(raw, (const unsigned char *)r->sig, 88) != 66)
		goto out;
	EVP_EncodeBlock((unsigned char *)again, raw, 64);
	if (strcmp(again, r->sig) != 0)
		goto out;
	if (audit_checkpoint_message(r, &msg, &mlen) != 0)
		goto out;
	SHA256(msg, mlen, digest);
	if ((sig = ECDSA_SIG_new()) == NULL || (br = BN_bin2bn(raw, 32, NULL)) == NULL ||
	    (bs = BN_bin2bn(raw + 32, 32, NULL)) == NULL || !ECDSA_SIG_set0(sig, br, bs))
		goto out;
	br = bs = NULL;
	if ((dlen = i2d_ECDSA_SIG(sig, &der)) <= 0)
		goto out;
	if ((ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL || EVP_PKEY_verify_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(ctx, EVP_sha256()) != 1)
		goto out;
	ok = EVP_PKEY_verify(ctx, der, (size_t)dlen, digest, sizeof(digest)) == 1;
out:
	EVP_PKEY_CTX_free(ctx);
	OPENSSL_free(der);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(sig);
	free(msg);
	return ok;
}

int
audit_verify_key_load(const char *pem_path, EVP_PKEY **out)
{
	char group[64];
	EVP_PKEY *key = NULL;
	BIO *bio;
	int r = AUDIT_EKEY;

	if (pem_path == NULL || out == NULL)
		return AUDIT_EINVAL;
	if ((bio = BIO_new_file(pem_path, "r")) == NULL)
		return AUDIT_EKEY;
	key = PEM_read_bio_PUBKEY(bio, NULL, NULL, NULL);
	BIO_free(bio);
	if (key == NULL || !EVP_PKEY_is_a(key, "EC") ||
	    EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group,
	                                   sizeof(group), NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0)
		goto out;
	*out = key;
	key = NULL;
	r = 0;
out:
	EVP_PKEY_free(key);
	return r;
}

/* ---- Lines ----------------------------------------------------------------------- */

static int
check_line(audit_verifier_t *v, const char *line, size_t len)
{
	struct audit_record *r = &v->rec;
	char why[200], hash[65];
	int rc;

	if (v->too_long)
		return fail(v, "line longer than %d bytes", AUDIT_LINE_MAX);
	if ((rc = audit_record_parse(line, len, r, why, sizeof(why))) != 0)
		return rc == AUDIT_ENOMEM ? rc : fail(v, "not a canonical audit record: %s", why);
	if (v->next_seq == 0) {
		if (!(v->flags & AUDIT_VERIFY_PARTIAL) && r->seq != 1)
			return fail(v, "log starts at seq %llu, not 1 (earlier files missing?)",
			            (unsigned long long)r->seq);
		if (r->seq == 1 && strspn(r->prev, "0") != 64)
			return fail(v, "first record's prev is not 64 zeros");
		v->sum.first_seq = r->seq;
	} else {
		if (r->seq != v->next_seq)
			return fail(v, "seq %llu where %llu was expected (line deleted, added or moved)",
			            (unsigned long long)r->seq, (unsigned long long)v->next_seq);
		if (strcmp(r->prev, v->prev) != 0)
			return fail(v, "prev is not the hash of the previous line (hash chain broken)");
	}
	audit_line_hash(line, len, hash);

	switch (r->type) {
	case AUDIT_T_REQUEST:
		if (r->allow && (rc = intent_add(v, r->seq)) != 0)
			return rc;
		break;
	case AUDIT_T_RESULT:
	case AUDIT_T_ABANDONED:
		if (intent_close(v, r->ref) != 0 &&
		    !((v->flags & AUDIT_VERIFY_PARTIAL) && r->ref < v->sum.first_seq))
			return fail(v, "%s refers to record %llu, which is not an open intent",
			            audit_type_name(r->type), (unsigned long long)r->ref);
		break;
	case AUDIT_T_CHECKPOINT:
		if (strcmp(r->head, r->prev) != 0)
			return fail(v, "checkpoint head is not the hash of the previous line");
		if (r->count != r->seq)
			return fail(v, "checkpoint count %llu does not match its seq %llu",
			            (unsigned long long)r->count, (unsigned long long)r->seq);
		if (v->key && !sig_verify(v->key, r))
			return fail(v, "checkpoint signature does not verify with the audit key");
		v->sum.checkpoints++;
		memcpy(v->sum.last_checkpoint, hash, sizeof(hash));
		if (v->head[0] && strcmp(hash, v->head) == 0)
			v->sum.head_reached = 1;
		break;
	}
	memcpy(v->prev, hash, sizeof(hash));
	v->next_seq = r->seq + 1;
	v->sum.last_seq = r->seq;
	v->sum.records++;
	return 0;
}

int
audit_verifier_file_begin(audit_verifier_t *v, const char *name)
{
	if (v == NULL || name == NULL)
		return AUDIT_EINVAL;
	if (v->failed)
		return AUDIT_EBADLOG;
	free(v->file);
	if ((v->file = strdup(name)) == NULL)
		return AUDIT_ENOMEM;
	v->lineno = 1;
	v->len = 0;
	v->too_long = 0;
	return 0;
}

int
audit_verifier_feed(audit_verifier_t *v, const char *data, size_t len)
{
	int rc;
	if (v == NULL || (data == NULL && len))
		return AUDIT_EINVAL;
	while (len > 0 && !v->failed) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		if (!v->too_long && take <= AUDIT_LINE_MAX - v->len) {
			memcpy(v->line + v->len, data, take);
			v->len += take;
		} else {
			v->too_long = 1;
		}
		if (nl == NULL)
			break;
		if ((rc = check_line(v, v->line, v->len)) != 0)
			return rc;
		v->lineno++;
		v->len = 0;
		data = nl + 1;
		len -= take + 1;
	}
	return v->failed ? AUDIT_EBADLOG : 0;
}

int
audit_verifier_file_end(audit_verifier_t *v)
{
	if (v == NULL)
		return AUDIT_EINVAL;
	if (v->failed)
		return AUDIT_EBADLOG;
	if (v->len > 0 || v->too_long)
		return fail(v, "torn last line (no newline at the end of the file)");
	return 0;
}

int
audit_verifier_finish(audit_verifier_t *v)
{
	if (v == NULL)
		return AUDIT_EINVAL;
	if (v->failed)
		return AUDIT_EBADLOG;
	if (v->sum.records == 0)
		return fail(v, "no audit records");
	if (v->head[0] && !v->sum.head_reached)
		return fail(v, "log ends before the checkpoint %s given as head (truncated?)", v->head);
	return 0;
}

int
audit_verify_files(const char *const *paths, size_t n, EVP_PKEY *key, const char *head,
                   unsigned flags, char *err, size_t errlen, struct audit_verify_summary *sum)
{
	audit_verifier_t *v = NULL;
	char *buf = NULL;
	int fd = -1, r;

	if (err && errlen)
		err[0] = '\0';
	if ((r = audit_verifier_new(&v, key, head, flags)) != 0)
		return r;
	if ((buf = malloc(65536)) == NULL) {
		r = AUDIT_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if ((r = audit_verifier_file_begin(v, paths[i])) != 0)
			goto out;
		if ((fd = open(paths[i], O_RDONLY | O_CLOEXEC)) < 0) {
			if (err)
				snprintf(err, errlen, "%s: %s", paths[i], strerror(errno));
			r = AUDIT_EIO;
			goto out;
		}
		for (;;) {
			ssize_t got = read(fd, buf, 65536);
			if (got < 0 && errno == EINTR)
				continue;
			if (got < 0) {
				if (err)
					snprintf(err, errlen, "%s: %s", paths[i], strerror(errno));
				r = AUDIT_EIO;
				goto out;
			}
			if (got == 0)
				break;
			if ((r = audit_verifier_feed(v, buf, (size_t)got)) != 0)
				goto out;
		}
		close(fd);
		fd = -1;
		if ((r = audit_verifier_file_end(v)) != 0)
			goto out;
	}
	r = audit_verifier_finish(v);
out:
	if (r != 0 && err && audit_verifier_error(v))
		snprintf(err, errlen, "%s", audit_verifier_error(v));
	if (sum && v)
		audit_verifier_summary(v, sum);
	if (fd >= 0)
		close(fd);
	free(buf);
	audit_verifier_free(v);
	return r;
}
