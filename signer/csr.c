/*
 * csr.c - bounded, strict parsing of device CSRs.
 *
 * The order of checks matters for the error a caller sees: size before any
 * parsing, structure before key, key type before signature. The key type is
 * read from the SubjectPublicKeyInfo's AlgorithmIdentifier itself, not from
 * a decoded EVP_PKEY, because OpenSSL decodes explicit parameters that
 * describe P-256 into a key that looks like any other P-256 key, and RFC 5480
 * requires the named curve.
 *
 * The request is decoded with the library's own template (x509_asn1.c), not
 * d2i_X509_REQ: OpenSSL 3.0 would decode the public key through its decoder
 * framework, which alone costs more CPU than the rest of issuing a
 * certificate. The key is instead imported from its point with
 * EVP_PKEY_fromdata (which refuses a point not on the curve), and the
 * self-signature is checked the way X509_REQ_verify does: the signature
 * algorithm's digest of the DER CertificationRequestInfo, verified with
 * that key.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "signer/csr.h"
#include "signer/x509.h"
#include "signer/x509_int.h"

/* Decode exactly @p len bytes of canonical DER into a request. */
static int
request_decode(const unsigned char *der, size_t len, X509__CSR **out,
	       char *detail, size_t size)
{
	const ASN1_ITEM *it = x509__csr_item();
	const unsigned char *p = der;
	unsigned char *re = NULL;
	X509__CSR *req = NULL;
	int n, r = X509_ERR_CSR_PARSE;

	if ((req = (X509__CSR *)ASN1_item_d2i(NULL, &p, (long)len, it)) == NULL) {
		x509__detail(detail, size, "DER does not decode as a CertificationRequest");
		goto out;
	}
	r = X509_ERR_CSR_TRAILING;
	if (p != der + len) {
		x509__detail(detail, size, "%zu bytes after the CSR", (size_t)(der + len - p));
		goto out;
	}
	/* The template keeps no received encoding: i2d re-encodes every field. */
	r = X509_ERR_CSR_NOT_DER;
	if ((n = ASN1_item_i2d((ASN1_VALUE *)req, &re, it)) <= 0 || (size_t)n != len ||
	    memcmp(re, der, len) != 0) {
		x509__detail(detail, size, "CSR is BER: it does not re-encode to the same bytes");
		goto out;
	}
	r = X509_ERR_CSR_PARSE;
	if (ASN1_INTEGER_get(req->info->version) != X509_REQ_VERSION_1) {
		x509__detail(detail, size, "CSR version %ld, expected v1 (0)",
		    ASN1_INTEGER_get(req->info->version));
		goto out;
	}
	*out = req;
	req = NULL;
	r = X509_OK;
out:
	OPENSSL_free(re);
	ASN1_item_free((ASN1_VALUE *)req, it);
	return r;
}

/*
 * The P-256 public key whose encoded point is @p key's bits, made from its
 * curve's name: OpenSSL 3.0 builds the curve afresh for it, which costs
 * about a fifth of a signature check.
 */
static int
key_import_by_name(const ASN1_BIT_STRING *key, EVP_PKEY **out, char *detail, size_t size)
{
	EVP_PKEY_CTX *ctx = NULL;
	OSSL_PARAM params[4];
	const unsigned char *pt = ASN1_STRING_get0_data(key);
	size_t ptlen = (size_t)ASN1_STRING_length(key);
	int r = X509_ERR_CRYPTO;

	/* Keep a compressed point compressed, as d2i would: the certificate
	 * then carries the device's SubjectPublicKeyInfo byte for byte. */
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    (char *)SN_X9_62_prime256v1, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY,
	    (void *)pt, ptlen);
	params[2] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    (char *)(pt[0] == 0x04 ? OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED :
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), 0);
	params[3] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1)
		goto out;
	r = X509_ERR_CSR_PARSE;
	if (EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		x509__detail(detail, size, "EC P-256 public key is not a point on the curve");
		goto out;
	}
	r = X509_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

/* Is @p k an EC key on the named curve P-256 (whose parameters can be copied)? */
static int
is_p256(const EVP_PKEY *k)
{
	char name[64];
	size_t n = 0;

	return k != NULL && EVP_PKEY_is_a(k, "EC") &&
	    EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, name,
	    sizeof(name), &n) == 1 && strcmp(name, SN_X9_62_prime256v1) == 0;
}

/*
 * The same key with the curve copied from @p like, a P-256 key: five times
 * cheaper than by name. Setting the encoded point checks that it is on the
 * curve and keeps its format (compressed stays compressed).
 */
static int
key_import(const ASN1_BIT_STRING *key, const EVP_PKEY *like, EVP_PKEY **out,
	   char *detail, size_t size)
{
	EVP_PKEY *k = NULL;
	int r = X509_ERR_NOMEM;

	if (like == NULL || !is_p256(like))
		return key_import_by_name(key, out, detail, size);
	if ((k = EVP_PKEY_new()) == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	if (EVP_PKEY_copy_parameters(k, like) != 1)
		goto out;
	r = X509_ERR_CSR_PARSE;
	if (EVP_PKEY_set1_encoded_public_key(k, ASN1_STRING_get0_data(key),
	    (size_t)ASN1_STRING_length(key)) != 1) {
		x509__detail(detail, size, "EC P-256 public key is not a point on the curve");
		goto out;
	}
	*out = k;
	k = NULL;
	r = X509_OK;
out:
	EVP_PKEY_free(k);
	return r;
}

/*
 * Steps over the TLV at *@p p (before @p end), or into it when @p enter;
 * its whole encoding to *@p tlv / *@p tlvlen. 0 if the header is malformed.
 */
static int
tlv_step(const unsigned char **p, const unsigned char *end, int enter,
	 const unsigned char **tlv, size_t *tlvlen)
{
	const unsigned char *q = *p;
	long len = 0;
	int tag = 0, xclass = 0, ret;

	if (end <= q)
		return 0;
	ret = ASN1_get_object(&q, &len, &tag, &xclass, (long)(end - q));
	if ((ret & 0x80) != 0 || ret == 0x21 || len > end - q)
		return 0;
	if (tlv != NULL) {
		*tlv = *p;
		*tlvlen = (size_t)(q + len - *p);
	}
	*p = enter ? q : q + len;
	return 1;
}

/*
 * The DER of the CertificationRequestInfo and of its SubjectPublicKeyInfo,
 * taken from the request itself: request_decode has checked that the whole
 * request re-encodes to the same bytes, so these are exactly what encoding
 * the decoded fields would give, without doing it again.
 */
static int
request_parts(const unsigned char *der, size_t len, const unsigned char **info,
	      size_t *info_len, const unsigned char **spki, size_t *spki_len)
{
	const unsigned char *p = der, *end = der + len;

	return tlv_step(&p, end, 1, NULL, NULL) &&	/* CertificationRequest */
	    tlv_step(&p, end, 1, info, info_len) &&	/* its info, entered */
	    tlv_step(&p, end, 0, NULL, NULL) &&		/* version */
	    tlv_step(&p, end, 0, NULL, NULL) &&		/* subject */
	    tlv_step(&p, end, 0, spki, spki_len);	/* subjectPKInfo */
}

/* Proof of possession: an ECDSA-with-SHA-2 signature by the request's key
 * over the DER of its CertificationRequestInfo (@p info). The digest is
 * made here and the signature checked over it, as EVP_DigestVerify would,
 * without that function's per-call set-up of a digest-and-verify context. */
static int
signature_check(const X509__CSR *req, const unsigned char *info, size_t info_len,
		EVP_PKEY *key, char *detail, size_t size)
{
	const ASN1_OBJECT *obj = NULL;
	const EVP_MD *md;
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char dgst[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;
	int ptype = 0, nid, r = X509_ERR_CSR_SIGNATURE;

	X509_ALGOR_get0(&obj, &ptype, NULL, req->alg);
	nid = OBJ_obj2nid(obj);
	md = nid == NID_ecdsa_with_SHA256 ? EVP_sha256() :
	    nid == NID_ecdsa_with_SHA384 ? EVP_sha384() :
	    nid == NID_ecdsa_with_SHA512 ? EVP_sha512() : NULL;
	/* RFC 5758 §3.2: the parameters are absent. */
	if (md == NULL || ptype != V_ASN1_UNDEF) {
		x509__detail(detail, size, "CSR signature algorithm %s not allowed",
		    nid == NID_undef ? "unknown" : OBJ_nid2sn(nid));
		goto out;
	}
	if ((req->sig->flags & 0x07) != 0) {
		x509__detail(detail, size, "CSR signature has unused bits");
		goto out;
	}
	r = X509_ERR_CRYPTO;
	if (EVP_Digest(info, info_len, dgst, &dlen, md, NULL) != 1 ||
	    (ctx = EVP_PKEY_CTX_new(key, NULL)) == NULL ||
	    EVP_PKEY_verify_init(ctx) != 1)
		goto out;
	r = X509_ERR_CSR_SIGNATURE;
	if (EVP_PKEY_verify(ctx, ASN1_STRING_get0_data(req->sig),
	    (size_t)ASN1_STRING_length(req->sig), dgst, dlen) != 1) {
		x509__detail(detail, size, "CSR self-signature does not verify");
		goto out;
	}
	r = X509_OK;
out:
	EVP_PKEY_CTX_free(ctx);
	return r;
}

int
csr_parse(const unsigned char *der, size_t len, EVP_PKEY **key,
	  unsigned char **spki, size_t *spki_len, char *detail, size_t detail_size)
{
	return csr_parse_like(der, len, NULL, key, spki, spki_len, detail, detail_size);
}

int
csr_parse_like(const unsigned char *der, size_t len, const EVP_PKEY *like,
	       EVP_PKEY **key, unsigned char **spki, size_t *spki_len,
	       char *detail, size_t detail_size)
{
	X509__CSR *req = NULL;
	EVP_PKEY *pk = NULL;
	const unsigned char *info = NULL, *spki_der = NULL;
	unsigned char *spki_copy = NULL;
	size_t info_len = 0, spki_der_len = 0;
	int r = X509_ERR_INVALID;

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
	r = X509_ERR_CSR_PARSE;
	if (!request_parts(der, len, &info, &info_len, &spki_der, &spki_der_len)) {
		x509__detail(detail, detail_size, "CSR structure not as decoded");
		goto out;
	}
	if ((r = x509__spki_check_p256(req->info->spki->alg, req->info->spki->key,
	    detail, detail_size)) != X509_OK ||
	    (r = key_import(req->info->spki->key, like, &pk, detail, detail_size)) != X509_OK ||
	    (r = signature_check(req, info, info_len, pk, detail, detail_size)) != X509_OK)
		goto out;
	if (spki != NULL) {
		r = X509_ERR_NOMEM;
		if ((spki_copy = malloc(spki_der_len)) == NULL)
			goto out;
		memcpy(spki_copy, spki_der, spki_der_len);
		*spki = spki_copy;
		*spki_len = spki_der_len;
	}
	if (key != NULL) {
		*key = pk;
		pk = NULL;
	}
	r = X509_OK;
out:
	if (r != X509_OK && detail != NULL && detail_size > 0 && detail[0] == '\0')
		x509__detail(detail, detail_size, "%s", x509_strerror(r));
	EVP_PKEY_free(pk);
	ASN1_item_free((ASN1_VALUE *)req, x509__csr_item());
	return r;
}
