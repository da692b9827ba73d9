/*
 * x509_sig.c - attaching an external ECDSA signature to a TBS.
 *
 * OpenSSL has no public call that takes a signature computed elsewhere and
 * puts it into an X509 or X509_CRL. We therefore build the outer
 * SEQUENCE { tbs, AlgorithmIdentifier, BIT STRING } with OpenSSL's generic
 * ASN.1 (ASN1_SEQUENCE_ANY of three ASN1_TYPEs, the first two holding
 * complete DER encodings, which OpenSSL writes verbatim), and then let
 * d2i_X509 / d2i_X509_CRL decide whether the result is a certificate. The
 * parsed object must re-encode its TBS to exactly the bytes that were signed,
 * which is what makes "the certificate says what was decided" true.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>

#include "signer/x509.h"
#include "signer/x509_int.h"

int
x509__algid_set(X509_ALGOR *alg)
{
	/* RFC 5758 §3.2: ecdsa-with-SHA256 has its parameters absent. */
	if (X509_ALGOR_set0(alg, OBJ_nid2obj(NID_ecdsa_with_SHA256),
	    V_ASN1_UNDEF, NULL) != 1)
		return X509_ERR_CRYPTO;
	return X509_OK;
}

int
x509__algid_is_ecdsa_sha256(const X509_ALGOR *alg)
{
	const ASN1_OBJECT *obj = NULL;
	const void *pval = NULL;
	int ptype = 0;

	if (alg == NULL)
		return 0;
	X509_ALGOR_get0(&obj, &ptype, &pval, alg);
	return obj != NULL && OBJ_obj2nid(obj) == NID_ecdsa_with_SHA256 &&
	    ptype == V_ASN1_UNDEF;
}

int
x509__is_one_sequence(const unsigned char *tbs, size_t tbslen)
{
	const unsigned char *p = tbs;
	long plen = 0;
	int tag = 0, xclass = 0, ret;

	if (tbs == NULL || tbslen < 2 || tbslen > 0x7fffffff)
		return 0;
	ret = ASN1_get_object(&p, &plen, &tag, &xclass, (long)tbslen);
	/* 0x80 is an error, 0x21 an indefinite length: neither is DER. */
	if ((ret & 0x80) != 0 || ret != V_ASN1_CONSTRUCTED ||
	    tag != V_ASN1_SEQUENCE || xclass != V_ASN1_UNIVERSAL)
		return 0;
	return (size_t)(p - tbs) + (size_t)plen == tbslen;
}

/* An ASN1_TYPE holding the complete DER SEQUENCE @p der, copied. */
static ASN1_TYPE *
type_sequence_new(const unsigned char *der, size_t len)
{
	ASN1_TYPE *t = NULL;
	ASN1_STRING *s = NULL;

	if (len > 0x7fffffff || (t = ASN1_TYPE_new()) == NULL ||
	    (s = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) == NULL ||
	    ASN1_STRING_set(s, der, (int)len) != 1) {
		ASN1_STRING_free(s);
		ASN1_TYPE_free(t);
		return NULL;
	}
	ASN1_TYPE_set(t, V_ASN1_SEQUENCE, s);
	return t;
}

int
x509__signed_wrap(const unsigned char *tbs, size_t tbslen,
		  const unsigned char *sig, size_t siglen,
		  unsigned char **out, size_t *outlen)
{
	ASN1_SEQUENCE_ANY *seq = NULL;
	ASN1_TYPE *t = NULL;
	ASN1_BIT_STRING *bits = NULL;
	X509_ALGOR *alg = NULL;
	unsigned char *algder = NULL, *der = NULL;
	int alglen, n, r = X509_ERR_NOMEM;

	if ((seq = sk_ASN1_TYPE_new_null()) == NULL)
		goto out;
	if ((t = type_sequence_new(tbs, tbslen)) == NULL || !sk_ASN1_TYPE_push(seq, t))
		goto out;
	t = NULL;

	if ((alg = X509_ALGOR_new()) == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	if (x509__algid_set(alg) != X509_OK ||
	    (alglen = i2d_X509_ALGOR(alg, &algder)) <= 0)
		goto out;
	r = X509_ERR_NOMEM;
	if ((t = type_sequence_new(algder, (size_t)alglen)) == NULL ||
	    !sk_ASN1_TYPE_push(seq, t))
		goto out;
	t = NULL;

	if (siglen > X509_ECDSA_SIG_MAX || (bits = ASN1_BIT_STRING_new()) == NULL ||
	    ASN1_STRING_set(bits, sig, (int)siglen) != 1)
		goto out;
	/*
	 * Without this flag OpenSSL treats the BIT STRING as a named-bit list
	 * and drops trailing zero bits, which would corrupt a signature whose
	 * last byte ends in zeros. X509_sign sets the same flag internally.
	 */
	bits->flags &= ~(ASN1_STRING_FLAG_BITS_LEFT | 0x07);
	bits->flags |= ASN1_STRING_FLAG_BITS_LEFT;
	if ((t = ASN1_TYPE_new()) == NULL)
		goto out;
	ASN1_TYPE_set(t, V_ASN1_BIT_STRING, bits);
	bits = NULL;
	if (!sk_ASN1_TYPE_push(seq, t))
		goto out;
	t = NULL;

	r = X509_ERR_CRYPTO;
	if ((n = i2d_ASN1_SEQUENCE_ANY(seq, &der)) <= 0)
		goto out;
	*out = der;
	*outlen = (size_t)n;
	der = NULL;
	r = X509_OK;
out:
	OPENSSL_free(der);
	OPENSSL_free(algder);
	X509_ALGOR_free(alg);
	ASN1_BIT_STRING_free(bits);
	ASN1_TYPE_free(t);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return r;
}

int
x509_ecdsa_sig_check(const unsigned char *der, size_t len)
{
	ECDSA_SIG *es = NULL;
	const unsigned char *p = der;
	const BIGNUM *br = NULL, *bs = NULL;
	unsigned char *re = NULL;
	int n, r = X509_ERR_SIG_FORMAT;

	if (der == NULL || len == 0 || len > X509_ECDSA_SIG_MAX)
		goto out;
	if ((es = d2i_ECDSA_SIG(NULL, &p, (long)len)) == NULL || p != der + len)
		goto out;
	/* Exactly DER: the value must re-encode to the same bytes. */
	if ((n = i2d_ECDSA_SIG(es, &re)) <= 0 || (size_t)n != len ||
	    memcmp(re, der, len) != 0)
		goto out;
	ECDSA_SIG_get0(es, &br, &bs);
	if (BN_is_zero(br) || BN_is_zero(bs) || BN_is_negative(br) ||
	    BN_is_negative(bs) || BN_num_bits(br) > 256 || BN_num_bits(bs) > 256)
		goto out;
	r = X509_OK;
out:
	OPENSSL_free(re);
	ECDSA_SIG_free(es);
	return r;
}

int
x509_ecdsa_sig_from_raw(const unsigned char *rs, size_t rslen,
			unsigned char *der, size_t *derlen)
{
	ECDSA_SIG *es = NULL;
	BIGNUM *br = NULL, *bs = NULL;
	unsigned char *enc = NULL;
	int n, r = X509_ERR_INVALID;

	if (rs == NULL || rslen != 64 || der == NULL || derlen == NULL)
		goto out;
	r = X509_ERR_NOMEM;
	if ((es = ECDSA_SIG_new()) == NULL || (br = BN_bin2bn(rs, 32, NULL)) == NULL ||
	    (bs = BN_bin2bn(rs + 32, 32, NULL)) == NULL)
		goto out;
	r = X509_ERR_SIG_FORMAT;
	if (BN_is_zero(br) || BN_is_zero(bs))
		goto out;
	r = X509_ERR_CRYPTO;
	if (ECDSA_SIG_set0(es, br, bs) != 1)
		goto out;
	br = bs = NULL;
	if ((n = i2d_ECDSA_SIG(es, &enc)) <= 0)
		goto out;
	r = X509_ERR_INVALID;
	if ((size_t)n > *derlen)
		goto out;
	memcpy(der, enc, (size_t)n);
	*derlen = (size_t)n;
	r = X509_OK;
out:
	OPENSSL_free(enc);
	BN_free(br);
	BN_free(bs);
	ECDSA_SIG_free(es);
	return r;
}

int
x509_sign_with_pkey(void *ctx, const unsigned char digest[X509_DIGEST_LEN],
		    unsigned char *sig, size_t *siglen)
{
	EVP_PKEY_CTX *pctx = NULL;
	int r = X509_ERR_SIGN;

	if (ctx == NULL || digest == NULL || sig == NULL || siglen == NULL)
		return X509_ERR_INVALID;
	if ((pctx = EVP_PKEY_CTX_new((EVP_PKEY *)ctx, NULL)) == NULL ||
	    EVP_PKEY_sign_init(pctx) != 1 ||
	    EVP_PKEY_CTX_set_signature_md(pctx, EVP_sha256()) != 1 ||
	    EVP_PKEY_sign(pctx, sig, siglen, digest, X509_DIGEST_LEN) != 1)
		goto out;
	r = X509_OK;
out:
	EVP_PKEY_CTX_free(pctx);
	return r;
}

/* Are the bits of @p bits exactly the bytes @p sig, with no unused bits? */
static int
bits_equal(const ASN1_BIT_STRING *bits, const unsigned char *sig, size_t siglen)
{
	return bits != NULL && (size_t)ASN1_STRING_length(bits) == siglen &&
	    (bits->flags & 0x07) == 0 &&
	    memcmp(ASN1_STRING_get0_data(bits), sig, siglen) == 0;
}

/* Common argument and signature checks, then the outer encoding. */
static int
assemble_prepare(const unsigned char *tbs, size_t tbslen,
		 const unsigned char *sig, size_t siglen, const EVP_PKEY *key,
		 const void *out, unsigned char **der, size_t *derlen)
{
	int r;

	if (tbs == NULL || sig == NULL || key == NULL || out == NULL ||
	    !x509__is_one_sequence(tbs, tbslen))
		return X509_ERR_INVALID;
	if ((r = x509_ecdsa_sig_check(sig, siglen)) != X509_OK)
		return r;
	return x509__signed_wrap(tbs, tbslen, sig, siglen, der, derlen);
}

/* Does ECDSA-with-SHA256 signature @p sig over @p data verify with @p key?
 * Through a verifier made for this one check, so that every signature check
 * here is x509_verifier_check; a key that is not P-256 verifies nothing. */
static int
signature_valid(const unsigned char *data, size_t len, const unsigned char *sig,
		size_t siglen, const EVP_PKEY *key)
{
	x509_verifier_t *v = NULL;
	int ok;

	if (x509_verifier_new(key, &v) != X509_OK)
		return 0;
	ok = x509_verifier_check(v, data, len, sig, siglen) == X509_OK;
	x509_verifier_free(v);
	return ok;
}

int
x509_cert_assemble_der(const unsigned char *tbs, size_t tbslen,
		       const unsigned char *sig, size_t siglen,
		       const EVP_PKEY *issuer_key, unsigned char **der,
		       size_t *derlen)
{
	X509__CERT *c = NULL;
	unsigned char *enc = NULL;
	size_t enclen = 0;
	int r;

	if (derlen == NULL)
		return X509_ERR_INVALID;
	if ((r = assemble_prepare(tbs, tbslen, sig, siglen, issuer_key, der,
	    &enc, &enclen)) != X509_OK)
		goto out;
	/*
	 * The whole certificate decodes and re-encodes to the same bytes, and
	 * the wrapper put @p tbs first, verbatim: so the certificate's TBS is
	 * exactly what was signed, and it is canonical DER.
	 */
	r = X509_ERR_ASSEMBLY;
	if ((c = x509__cert_decode(enc, enclen)) == NULL ||
	    !x509__algid_is_ecdsa_sha256(c->alg) ||
	    X509_ALGOR_cmp(c->alg, c->tbs->sigalg) != 0 ||
	    !bits_equal(c->sig, sig, siglen))
		goto out;
	r = X509_ERR_SIG_VERIFY;
	if (!signature_valid(tbs, tbslen, sig, siglen, issuer_key))
		goto out;
	r = x509__der_take(enc, (int)enclen, der, derlen);
	enc = NULL;
out:
	OPENSSL_free(enc);
	x509__cert_free(c);
	return r;
}

/* The DER of ecdsa-with-SHA256's AlgorithmIdentifier (parameters absent). */
static const unsigned char ecdsa_sha256_der[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };

/* Steps over one TLV at *@p p (before @p end); its tag to *@p tag. */
static int
tlv_skip(const unsigned char **p, const unsigned char *end, int *tag, int *xclass)
{
	const unsigned char *q = *p;
	long len = 0;
	int ret = ASN1_get_object(&q, &len, tag, xclass, (long)(end - *p));

	if ((ret & 0x80) != 0 || ret == 0x21 || len > end - q)
		return 0;
	*p = q + len;
	return 1;
}

/* Is @p tbs's signature AlgorithmIdentifier (after the optional [0] version
 * and the serial) ecdsa-with-SHA256, byte for byte? */
static int
tbs_sigalg_is_ecdsa_sha256(const unsigned char *tbs, size_t tbslen)
{
	const unsigned char *p = tbs, *end = tbs + tbslen;
	long len = 0;
	int tag = 0, xclass = 0, ret;

	ret = ASN1_get_object(&p, &len, &tag, &xclass, (long)tbslen);
	if ((ret & 0x80) != 0 || ret == 0x21)
		return 0;
	if (!tlv_skip(&p, end, &tag, &xclass))
		return 0;
	if (xclass == V_ASN1_CONTEXT_SPECIFIC && tag == 0 &&
	    !tlv_skip(&p, end, &tag, &xclass))
		return 0;
	if (xclass != V_ASN1_UNIVERSAL || tag != V_ASN1_INTEGER)
		return 0;
	return (size_t)(end - p) >= sizeof(ecdsa_sha256_der) &&
	    memcmp(p, ecdsa_sha256_der, sizeof(ecdsa_sha256_der)) == 0;
}

/* A DER length of @p n at @p out (NULL: only counted); returns its size. */
static size_t
der_len(unsigned char *out, size_t n)
{
	unsigned char b[sizeof(size_t)];
	size_t k = 0;

	if (n < 0x80) {
		if (out)
			out[0] = (unsigned char)n;
		return 1;
	}
	for (; n > 0; n >>= 8)
		b[k++] = (unsigned char)n;
	if (out) {
		out[0] = (unsigned char)(0x80 | k);
		for (size_t i = 0; i < k; i++)
			out[1 + i] = b[k - 1 - i];
	}
	return 1 + k;
}

/* x509_cert_assemble_verified, which x509_cert_assemble_built also is. */
static int
assemble_built(const unsigned char *tbs, size_t tbslen, const unsigned char *sig,
	       size_t siglen, const x509_verifier_t *v, unsigned char **der, size_t *derlen)
{
	unsigned char *out = NULL, *w;
	size_t bits, body, total;
	int r;

	if (tbs == NULL || sig == NULL || v == NULL || der == NULL ||
	    derlen == NULL || !x509__is_one_sequence(tbs, tbslen))
		return X509_ERR_INVALID;
	if ((r = x509_ecdsa_sig_check(sig, siglen)) != X509_OK)
		return r;
	if (!tbs_sigalg_is_ecdsa_sha256(tbs, tbslen))
		return X509_ERR_ASSEMBLY;
	if ((r = x509_verifier_check(v, tbs, tbslen, sig, siglen)) != X509_OK)
		return r;
	/* SEQUENCE { tbs, ecdsa-with-SHA256, BIT STRING { 0 unused, sig } },
	 * written as x509__signed_wrap would. */
	bits = 1 + siglen;
	body = tbslen + sizeof(ecdsa_sha256_der) + 1 + der_len(NULL, bits) + bits;
	total = 1 + der_len(NULL, body) + body;
	if ((out = malloc(total)) == NULL)
		return X509_ERR_NOMEM;
	w = out;
	*w++ = 0x30;
	w += der_len(w, body);
	memcpy(w, tbs, tbslen);
	w += tbslen;
	memcpy(w, ecdsa_sha256_der, sizeof(ecdsa_sha256_der));
	w += sizeof(ecdsa_sha256_der);
	*w++ = V_ASN1_BIT_STRING;
	w += der_len(w, bits);
	*w++ = 0;
	memcpy(w, sig, siglen);
	*der = out;
	*derlen = total;
	return X509_OK;
}

int
x509_cert_assemble_built(const unsigned char *tbs, size_t tbslen,
			 const unsigned char *sig, size_t siglen,
			 const EVP_PKEY *issuer_key, unsigned char **der,
			 size_t *derlen)
{
	x509_verifier_t *v = NULL;
	int r;

	if (issuer_key == NULL)
		return X509_ERR_INVALID;
	/* A verifier for one certificate: the check is the daemon's own path. */
	if ((r = x509_verifier_new(issuer_key, &v)) != X509_OK)
		return r == X509_ERR_KEY ? X509_ERR_SIG_VERIFY : r;
	r = assemble_built(tbs, tbslen, sig, siglen, v, der, derlen);
	x509_verifier_free(v);
	return r;
}

int
x509_cert_assemble_verified(const unsigned char *tbs, size_t tbslen,
			    const unsigned char *sig, size_t siglen,
			    const x509_verifier_t *v, unsigned char **der,
			    size_t *derlen)
{
	if (v == NULL)
		return X509_ERR_INVALID;
	return assemble_built(tbs, tbslen, sig, siglen, v, der, derlen);
}

int
x509_cert_assemble(const unsigned char *tbs, size_t tbslen,
		   const unsigned char *sig, size_t siglen,
		   const EVP_PKEY *issuer_key, X509 **cert)
{
	X509 *x = NULL;
	unsigned char *der = NULL, *re = NULL;
	const unsigned char *p;
	size_t derlen = 0;
	int n, r;

	if (cert == NULL)
		return X509_ERR_INVALID;
	if ((r = x509_cert_assemble_der(tbs, tbslen, sig, siglen, issuer_key,
	    &der, &derlen)) != X509_OK)
		goto out;
	/* And OpenSSL itself agrees that this is that certificate. */
	r = X509_ERR_ASSEMBLY;
	p = der;
	if ((x = d2i_X509(NULL, &p, (long)derlen)) == NULL || p != der + derlen)
		goto out;
	if ((n = i2d_re_X509_tbs(x, &re)) <= 0 || (size_t)n != tbslen ||
	    memcmp(re, tbs, tbslen) != 0)
		goto out;
	*cert = x;
	x = NULL;
	r = X509_OK;
out:
	OPENSSL_free(re);
	free(der);
	X509_free(x);
	return r;
}

int
x509_crl_assemble(const unsigned char *tbs, size_t tbslen,
		  const unsigned char *sig, size_t siglen,
		  const EVP_PKEY *issuer_key, X509_CRL **crl)
{
	X509_CRL *c = NULL;
	unsigned char *der = NULL, *re = NULL;
	const unsigned char *p;
	const ASN1_BIT_STRING *bits = NULL;
	const X509_ALGOR *alg = NULL;
	size_t derlen = 0;
	int n, r;

	if ((r = assemble_prepare(tbs, tbslen, sig, siglen, issuer_key, crl,
	    &der, &derlen)) != X509_OK)
		goto out;
	r = X509_ERR_ASSEMBLY;
	p = der;
	if ((c = d2i_X509_CRL(NULL, &p, (long)derlen)) == NULL || p != der + derlen)
		goto out;
	if ((n = i2d_re_X509_CRL_tbs(c, &re)) <= 0 || (size_t)n != tbslen ||
	    memcmp(re, tbs, tbslen) != 0)
		goto out;
	X509_CRL_get0_signature(c, &bits, &alg);
	if (!x509__algid_is_ecdsa_sha256(alg) || !bits_equal(bits, sig, siglen))
		goto out;
	/* X509_CRL_verify also refuses an inner algorithm unlike the outer. */
	r = X509_ERR_SIG_VERIFY;
	if (X509_CRL_verify(c, (EVP_PKEY *)issuer_key) != 1)
		goto out;
	*crl = c;
	c = NULL;
	r = X509_OK;
out:
	OPENSSL_free(re);
	OPENSSL_free(der);
	X509_CRL_free(c);
	return r;
}

/* Digest @p tbs and have @p sign sign it into @p sig / *@p siglen. */
static int
sign_tbs(const unsigned char *tbs, size_t tbslen, x509_sign_fn sign, void *ctx,
	 unsigned char *sig, size_t *siglen)
{
	unsigned char md[X509_DIGEST_LEN];
	int r;

	if ((r = x509_sha256(tbs, tbslen, md)) != X509_OK)
		return r;
	if (sign(ctx, md, sig, siglen) != 0)
		return X509_ERR_SIGN;
	return X509_OK;
}

int
x509_cert_create(const struct x509_cert_spec *spec, x509_sign_fn sign,
		 void *ctx, X509 **cert)
{
	unsigned char *tbs = NULL, sig[2 * X509_ECDSA_SIG_MAX];
	size_t tbslen = 0, siglen = sizeof(sig);
	const EVP_PKEY *key;
	int r = X509_ERR_INVALID;

	if (spec == NULL || sign == NULL || cert == NULL)
		goto out;
	key = spec->profile == X509_PROFILE_ROOT ? spec->subject_key :
	    spec->issuer != NULL ? X509_get0_pubkey(spec->issuer) : NULL;
	if (key == NULL)
		goto out;
	if ((r = x509_cert_tbs_build(spec, &tbs, &tbslen)) != X509_OK ||
	    (r = sign_tbs(tbs, tbslen, sign, ctx, sig, &siglen)) != X509_OK)
		goto out;
	r = x509_cert_assemble(tbs, tbslen, sig, siglen, key, cert);
out:
	free(tbs);
	return r;
}

int
x509_crl_create(const struct x509_crl_spec *spec, x509_sign_fn sign,
		void *ctx, X509_CRL **crl)
{
	unsigned char *tbs = NULL, sig[2 * X509_ECDSA_SIG_MAX];
	size_t tbslen = 0, siglen = sizeof(sig);
	const EVP_PKEY *key;
	int r = X509_ERR_INVALID;

	if (spec == NULL || sign == NULL || crl == NULL || spec->issuer == NULL ||
	    (key = X509_get0_pubkey(spec->issuer)) == NULL)
		goto out;
	if ((r = x509_crl_tbs_build(spec, &tbs, &tbslen)) != X509_OK ||
	    (r = sign_tbs(tbs, tbslen, sign, ctx, sig, &siglen)) != X509_OK)
		goto out;
	r = x509_crl_assemble(tbs, tbslen, sig, siglen, key, crl);
out:
	free(tbs);
	return r;
}
