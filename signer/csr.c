/*
 * csr.c - bounded, strict parsing of device CSRs.
 *
 * The order of checks matters for the error a caller sees: size before any
 * parsing, structure before key, key type before signature. The key type is
 * read from the SubjectPublicKeyInfo's AlgorithmIdentifier itself, not from
 * the decoded EVP_PKEY, because OpenSSL decodes explicit parameters that
 * describe P-256 into a key that looks like any other P-256 key, and RFC 5480
 * requires the named curve.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "signer/csr.h"
#include "signer/x509.h"
#include "signer/x509_int.h"

/* Parse exactly @p len bytes of canonical DER into a request. */
static int
request_decode(const unsigned char *der, size_t len, X509_REQ **out,
	       char *detail, size_t size)
{
	X509_REQ *req = NULL;
	const unsigned char *p = der;
	unsigned char *re = NULL, *tbs = NULL;
	int n, r = X509_ERR_CSR_PARSE;

	if ((req = d2i_X509_REQ(NULL, &p, (long)len)) == NULL) {
		x509__detail(detail, size, "DER does not decode as a CertificationRequest");
		goto out;
	}
	r = X509_ERR_CSR_TRAILING;
	if (p != der + len) {
		x509__detail(detail, size, "%zu bytes after the CSR", (size_t)(der + len - p));
		goto out;
	}
	/*
	 * d2i keeps the received encoding of the request info and i2d would
	 * just write it back; i2d_re_X509_REQ_tbs forces a fresh encoding, so
	 * the whole request below is re-encoded from its fields.
	 */
	r = X509_ERR_CRYPTO;
	if (i2d_re_X509_REQ_tbs(req, &tbs) <= 0)
		goto out;
	r = X509_ERR_CSR_NOT_DER;
	if ((n = i2d_X509_REQ(req, &re)) <= 0 || (size_t)n != len ||
	    memcmp(re, der, len) != 0) {
		x509__detail(detail, size, "CSR is BER: it does not re-encode to the same bytes");
		goto out;
	}
	r = X509_ERR_CSR_PARSE;
	if (X509_REQ_get_version(req) != X509_REQ_VERSION_1) {
		x509__detail(detail, size, "CSR version %ld, expected v1 (0)",
		    X509_REQ_get_version(req));
		goto out;
	}
	*out = req;
	req = NULL;
	r = X509_OK;
out:
	OPENSSL_free(re);
	OPENSSL_free(tbs);
	X509_REQ_free(req);
	return r;
}

/* Proof of possession: an ECDSA-with-SHA-2 signature by the request's key. */
static int
signature_check(X509_REQ *req, EVP_PKEY *key, char *detail, size_t size)
{
	const ASN1_BIT_STRING *sig = NULL;
	const X509_ALGOR *alg = NULL;
	const ASN1_OBJECT *obj = NULL;
	int nid;

	X509_REQ_get0_signature(req, &sig, &alg);
	X509_ALGOR_get0(&obj, NULL, NULL, alg);
	nid = OBJ_obj2nid(obj);
	if (nid != NID_ecdsa_with_SHA256 && nid != NID_ecdsa_with_SHA384 &&
	    nid != NID_ecdsa_with_SHA512) {
		x509__detail(detail, size, "CSR signature algorithm %s not allowed",
		    nid == NID_undef ? "unknown" : OBJ_nid2sn(nid));
		return X509_ERR_CSR_SIGNATURE;
	}
	if (X509_REQ_verify(req, key) != 1) {
		x509__detail(detail, size, "CSR self-signature does not verify");
		return X509_ERR_CSR_SIGNATURE;
	}
	return X509_OK;
}

int
csr_parse(const unsigned char *der, size_t len, EVP_PKEY **key,
	  unsigned char **spki, size_t *spki_len, char *detail, size_t detail_size)
{
	X509_REQ *req = NULL;
	X509_PUBKEY *xpk;
	X509_ALGOR *palg = NULL;
	EVP_PKEY *pk;
	unsigned char *enc = NULL, *spki_copy = NULL;
	size_t spki_copy_len = 0;
	int n, r = X509_ERR_INVALID;

	x509__detail(detail, detail_size, "%s", "");
	if (der == NULL || len == 0 || (spki != NULL && spki_len == NULL))
		goto out;
	r = X509_ERR_CSR_TOO_LARGE;
	if (len > CSR_DER_MAX) {
		x509__detail(detail, detail_size, "CSR of %zu bytes, limit %d", len, CSR_DER_MAX);
		goto out;
	}
	if ((r = request_decode(der, len, &req, detail, detail_size)) != X509_OK)
		goto out;
	xpk = X509_REQ_get_X509_PUBKEY(req);
	r = X509_ERR_CSR_PARSE;
	if (xpk == NULL || X509_PUBKEY_get0_param(NULL, NULL, NULL, &palg, xpk) != 1) {
		x509__detail(detail, detail_size, "no subject public key");
		goto out;
	}
	if ((r = x509__spki_check_p256(palg, NULL, detail, detail_size)) != X509_OK)
		goto out;
	r = X509_ERR_CSR_PARSE;
	if ((pk = X509_REQ_get0_pubkey(req)) == NULL || x509__key_check_p256(pk) != X509_OK) {
		x509__detail(detail, detail_size, "EC P-256 public key does not decode");
		goto out;
	}
	if ((r = signature_check(req, pk, detail, detail_size)) != X509_OK)
		goto out;
	if (spki != NULL) {
		n = i2d_X509_PUBKEY(xpk, &enc);
		if ((r = x509__der_take(enc, n, &spki_copy, &spki_copy_len)) != X509_OK)
			goto out;
	}
	r = X509_ERR_CRYPTO;
	if (key != NULL) {
		if (EVP_PKEY_up_ref(pk) != 1)
			goto out;
		*key = pk;
	}
	if (spki != NULL) {
		*spki = spki_copy;
		*spki_len = spki_copy_len;
		spki_copy = NULL;
	}
	r = X509_OK;
out:
	if (r != X509_OK && detail != NULL && detail_size > 0 && detail[0] == '\0')
		x509__detail(detail, detail_size, "%s", x509_strerror(r));
	free(spki_copy);
	X509_REQ_free(req);
	return r;
}
