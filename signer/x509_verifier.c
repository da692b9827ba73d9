/*
 * x509_verifier.c - ECDSA-with-SHA256 checks by one P-256 key, set up once.
 *
 * OpenSSL 3.0 sets up a verification per call: EVP_PKEY_CTX_new looks up
 * the key's provider operation, EVP_PKEY_verify_init makes the signature
 * context and setting the digest fetches SHA-256 by name; EVP_Digest with
 * EVP_sha256() fetches it again. For the issuing CA's key, which checks
 * every certificate the HSM signs, that is ~25,000 instructions of ~860,000
 * per check (callgrind, OpenSSL 3.0.x). Here the context is made once, with
 * its digest, and each check works on a duplicate of it (about a thousand
 * instructions): the verification itself is the same call on the same key.
 *
 * The set-up context is never used for an operation, only duplicated, so
 * any number of threads may check at once.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>

#include "signer/x509.h"

struct x509_verifier {
	EVP_PKEY *key;     /* a reference of its own */
	EVP_PKEY_CTX *ctx; /* verify_init'd, SHA-256 set; only ever duplicated */
	EVP_MD *sha256;    /* fetched once */
};

/* Is @p k an EC key on the named curve P-256? */
static int
key_is_p256(const EVP_PKEY *k)
{
	char name[64];
	size_t n = 0;

	return EVP_PKEY_is_a(k, "EC") &&
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name,
	    sizeof(name), &n) == 1 && strcmp(name, SN_X9_62_prime256v1) == 0;
}

int
x509_verifier_new(const EVP_PKEY *key, x509_verifier_t **out)
{
	x509_verifier_t *v = NULL;
	int r = X509_ERR_INVALID;

	if (key == NULL || out == NULL)
		goto out;
	r = X509_ERR_KEY;
	if (!key_is_p256(key))
		goto out;
	r = X509_ERR_NOMEM;
	if ((v = calloc(1, sizeof(*v))) == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	if (EVP_PKEY_up_ref((EVP_PKEY *)key) != 1)
		goto out;
	v->key = (EVP_PKEY *)key;
	if ((v->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (v->ctx = EVP_PKEY_CTX_new(v->key, NULL)) == NULL ||
	    EVP_PKEY_verify_init(v->ctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(v->ctx, v->sha256) != 1)
		goto out;
	*out = v;
	v = NULL;
	r = X509_OK;
out:
	x509_verifier_free(v);
	return r;
}

void
x509_verifier_free(x509_verifier_t *v)
{
	if (v == NULL)
		return;
	EVP_PKEY_CTX_free(v->ctx);
	EVP_MD_free(v->sha256);
	EVP_PKEY_free(v->key);
	free(v);
}

const EVP_PKEY *
x509_verifier_key(const x509_verifier_t *v)
{
	return v != NULL ? v->key : NULL;
}

int
x509_verifier_check(const x509_verifier_t *v, const unsigned char *data, size_t len,
		    const unsigned char *sig, size_t siglen)
{
	unsigned char md[X509_DIGEST_LEN];
	unsigned int mdlen = 0;
	EVP_PKEY_CTX *c = NULL;
	int r = X509_ERR_INVALID;

	if (v == NULL || (data == NULL && len > 0) || sig == NULL || siglen == 0)
		goto out;
	r = X509_ERR_CRYPTO;
	if (EVP_Digest(data != NULL ? data : (const unsigned char *)"", len, md, &mdlen,
	    v->sha256, NULL) != 1 || mdlen != sizeof(md) ||
	    (c = EVP_PKEY_CTX_dup(v->ctx)) == NULL)
		goto out;
	/* 1 is valid; 0 is a wrong signature, -1 one OpenSSL cannot decode. */
	r = EVP_PKEY_verify(c, sig, siglen, md, sizeof(md)) == 1 ? X509_OK : X509_ERR_SIG_VERIFY;
out:
	EVP_PKEY_CTX_free(c);
	return r;
}
