/*
 * x509_cert.c - TBSCertificate building for the root CA, the issuing CA and
 * device certificates. Every extension is built from its OpenSSL structure
 * (never from configuration strings) so that what is encoded is exactly what
 * the profile says; nothing is ever copied from a CSR but the public key.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "signer/x509.h"
#include "signer/x509_int.h"

/* A new GENERAL_NAME of @p type (GEN_DNS, GEN_URI) holding IA5 text @p s. */
static GENERAL_NAME *
gn_ia5_new(int type, const char *s)
{
	GENERAL_NAME *gn = NULL;
	ASN1_IA5STRING *ia5 = NULL;

	if ((gn = GENERAL_NAME_new()) == NULL || (ia5 = ASN1_IA5STRING_new()) == NULL ||
	    ASN1_STRING_set(ia5, s, -1) != 1) {
		ASN1_IA5STRING_free(ia5);
		GENERAL_NAME_free(gn);
		return NULL;
	}
	GENERAL_NAME_set0_value(gn, type, ia5);
	return gn;
}

/* A new GENERAL_NAMES holding one IA5 name. */
static GENERAL_NAMES *
gens_one_new(int type, const char *s)
{
	GENERAL_NAMES *gens = NULL;
	GENERAL_NAME *gn = NULL;

	if ((gens = GENERAL_NAMES_new()) == NULL || (gn = gn_ia5_new(type, s)) == NULL ||
	    !sk_GENERAL_NAME_push(gens, gn)) {
		GENERAL_NAME_free(gn);
		GENERAL_NAMES_free(gens);
		return NULL;
	}
	return gens;
}

/* Adds extension @p nid with the value of OpenSSL structure @p value
 * (still the caller's); X509_ERR_CRYPTO if OpenSSL cannot encode it. */
static int
add_ext(X509 *x, int nid, void *value, int critical)
{
	if (X509_add1_ext_i2d(x, nid, value, critical, X509V3_ADD_DEFAULT) != 1)
		return X509_ERR_CRYPTO;
	return X509_OK;
}

static int
add_basic_constraints(X509 *x, int ca, int pathlen)
{
	BASIC_CONSTRAINTS *bc = NULL;
	int r = X509_ERR_NOMEM;

	if ((bc = BASIC_CONSTRAINTS_new()) == NULL)
		goto out;
	/* DER encodes cA TRUE as 0xff; FALSE is the DEFAULT and is omitted. */
	bc->ca = ca ? 0xff : 0;
	if (pathlen >= 0 && ((bc->pathlen = ASN1_INTEGER_new()) == NULL ||
	    ASN1_INTEGER_set(bc->pathlen, pathlen) != 1))
		goto out;
	r = add_ext(x, NID_basic_constraints, bc, 1);
out:
	BASIC_CONSTRAINTS_free(bc);
	return r;
}

/* keyUsage, always critical; @p bits lists bit numbers, ended by -1. */
static int
add_key_usage(X509 *x, const int *bits)
{
	ASN1_BIT_STRING *ku = NULL;
	int r = X509_ERR_NOMEM;

	if ((ku = ASN1_BIT_STRING_new()) == NULL)
		goto out;
	for (; *bits >= 0; bits++)
		if (ASN1_BIT_STRING_set_bit(ku, *bits, 1) != 1)
			goto out;
	r = add_ext(x, NID_key_usage, ku, 1);
out:
	ASN1_BIT_STRING_free(ku);
	return r;
}

/*
 * SKI per RFC 7093 §2 method 1: the leftmost 160 bits of SHA-256 of the
 * subjectPublicKey bits; it avoids SHA-1 and is as unique in practice. The
 * value goes to *@p out as well (for a root's AKI): reading it back from
 * @p x would make OpenSSL cache extensions of an unsigned certificate.
 */
static int
add_ski(X509 *x, ASN1_OCTET_STRING **out)
{
	ASN1_OCTET_STRING *ski = NULL;
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int r = X509_ERR_CRYPTO;

	if (X509_pubkey_digest(x, EVP_sha256(), md, &mdlen) != 1 || mdlen < 20)
		goto out;
	r = X509_ERR_NOMEM;
	if ((ski = ASN1_OCTET_STRING_new()) == NULL || ASN1_OCTET_STRING_set(ski, md, 20) != 1)
		goto out;
	if ((r = add_ext(x, NID_subject_key_identifier, ski, 0)) != X509_OK)
		goto out;
	if (out != NULL) {
		*out = ski;
		ski = NULL;
	}
	r = X509_OK;
out:
	ASN1_OCTET_STRING_free(ski);
	return r;
}

/* AKI with keyIdentifier only (RFC 5280 §4.2.1.1), non-critical. */
static int
add_aki(X509 *x, const ASN1_OCTET_STRING *keyid)
{
	AUTHORITY_KEYID *akid = NULL;
	int r = X509_ERR_NOMEM;

	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(keyid)) == NULL)
		goto out;
	r = add_ext(x, NID_authority_key_identifier, akid, 0);
out:
	AUTHORITY_KEYID_free(akid);
	return r;
}

/* A subtree holding an iPAddress of @p len zero bytes: address and mask 0,
 * i.e. every IPv4 (8 bytes) or IPv6 (32 bytes) address. */
static GENERAL_SUBTREE *
subtree_all_ip_new(int len)
{
	static const unsigned char zero[32];
	GENERAL_SUBTREE *st = NULL;
	ASN1_OCTET_STRING *ip = NULL;

	if ((st = GENERAL_SUBTREE_new()) == NULL || (ip = ASN1_OCTET_STRING_new()) == NULL ||
	    ASN1_OCTET_STRING_set(ip, zero, len) != 1) {
		ASN1_OCTET_STRING_free(ip);
		GENERAL_SUBTREE_free(st);
		return NULL;
	}
	GENERAL_NAME_set0_value(st->base, GEN_IPADD, ip);
	return st;
}

/*
 * nameConstraints, critical: permitted dNSName @p zone (the zone and every
 * name below it), excluded every IP address. Without the exclusions an
 * iPAddress SAN would be unconstrained, and the issuing CA is meant to vouch
 * for registry names only.
 */
static int
add_name_constraints(X509 *x, const char *zone)
{
	NAME_CONSTRAINTS *nc = NULL;
	GENERAL_SUBTREE *st = NULL;
	int r = X509_ERR_NOMEM;

	if ((nc = NAME_CONSTRAINTS_new()) == NULL ||
	    (nc->permittedSubtrees = sk_GENERAL_SUBTREE_new_null()) == NULL ||
	    (nc->excludedSubtrees = sk_GENERAL_SUBTREE_new_null()) == NULL)
		goto out;
	if ((st = GENERAL_SUBTREE_new()) == NULL)
		goto out;
	GENERAL_NAME_free(st->base);
	if ((st->base = gn_ia5_new(GEN_DNS, zone)) == NULL ||
	    !sk_GENERAL_SUBTREE_push(nc->permittedSubtrees, st))
		goto out;
	if ((st = subtree_all_ip_new(8)) == NULL ||
	    !sk_GENERAL_SUBTREE_push(nc->excludedSubtrees, st))
		goto out;
	if ((st = subtree_all_ip_new(32)) == NULL ||
	    !sk_GENERAL_SUBTREE_push(nc->excludedSubtrees, st))
		goto out;
	st = NULL;
	r = add_ext(x, NID_name_constraints, nc, 1);
out:
	GENERAL_SUBTREE_free(st);
	NAME_CONSTRAINTS_free(nc);
	return r;
}

static int
add_eku_client_auth(X509 *x)
{
	EXTENDED_KEY_USAGE *eku = NULL;
	ASN1_OBJECT *obj;
	int r = X509_ERR_NOMEM;

	if ((eku = sk_ASN1_OBJECT_new_null()) == NULL ||
	    (obj = OBJ_nid2obj(NID_client_auth)) == NULL || !sk_ASN1_OBJECT_push(eku, obj))
		goto out;
	r = add_ext(x, NID_ext_key_usage, eku, 0);
out:
	/* The object is OpenSSL's static one: free the stack only. */
	sk_ASN1_OBJECT_free(eku);
	return r;
}

static int
add_san_dns(X509 *x, const char *name, int critical)
{
	GENERAL_NAMES *gens;
	int r = X509_ERR_NOMEM;

	if ((gens = gens_one_new(GEN_DNS, name)) == NULL)
		goto out;
	r = add_ext(x, NID_subject_alt_name, gens, critical);
out:
	GENERAL_NAMES_free(gens);
	return r;
}

static int
add_crl_dp(X509 *x, const char *uri)
{
	CRL_DIST_POINTS *cdp = NULL;
	DIST_POINT *dp = NULL;
	int r = X509_ERR_NOMEM;

	if ((cdp = sk_DIST_POINT_new_null()) == NULL || (dp = DIST_POINT_new()) == NULL ||
	    (dp->distpoint = DIST_POINT_NAME_new()) == NULL)
		goto out;
	dp->distpoint->type = 0;	/* fullName */
	if ((dp->distpoint->name.fullname = gens_one_new(GEN_URI, uri)) == NULL ||
	    !sk_DIST_POINT_push(cdp, dp))
		goto out;
	dp = NULL;
	r = add_ext(x, NID_crl_distribution_points, cdp, 0);
out:
	DIST_POINT_free(dp);
	CRL_DIST_POINTS_free(cdp);
	return r;
}

/* Is @p s a URI we are willing to put in a certificate (printable ASCII)? */
static int
uri_valid(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 1024 || strstr(s, "://") == NULL)
		return 0;
	for (; *s != '\0'; s++)
		if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
			return 0;
	return 1;
}

/*
 * The SubjectPublicKeyInfo of @p key (EC P-256, checked by the caller), set
 * from its point. X509_set_pubkey would do the same through OpenSSL 3.0's
 * encoder and decoder framework, at the cost of several signatures. The
 * "pub" parameter (unlike "encoded-pub-key", always uncompressed in 3.0)
 * keeps the key's point format, so a device's compressed point stays as
 * its CSR had it, as i2d would write it.
 */
static int
set_spki(X509 *x, const EVP_PKEY *key)
{
	unsigned char buf[133], *pt = NULL;
	size_t ptlen = 0;
	int r = X509_ERR_CRYPTO;

	/* One query into a buffer big enough for any point (P-521
	 * uncompressed: 133 bytes): asking for the size first costs as much
	 * again. */
	if (EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY,
	    buf, sizeof(buf), &ptlen) != 1 || ptlen == 0 || ptlen > sizeof(buf))
		goto out;
	r = X509_ERR_NOMEM;
	if ((pt = OPENSSL_memdup(buf, ptlen)) == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	/* On success the point buffer belongs to the certificate. */
	if (X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(x),
	    OBJ_nid2obj(NID_X9_62_id_ecPublicKey), V_ASN1_OBJECT,
	    OBJ_nid2obj(NID_X9_62_prime256v1), pt, (int)ptlen) != 1)
		goto out;
	pt = NULL;
	r = X509_OK;
out:
	OPENSSL_free(pt);
	return r;
}

/* Fields common to every profile: version, serial, validity, key, names.
 * @p subject NULL: the subject is already in @p x (written in place, which
 * spares a copy through its encoding). */
static int
set_common(X509 *x, const struct x509_cert_spec *spec, const X509_NAME *subject)
{
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *nb = NULL, *na = NULL;
	const X509_NAME *issuer;
	int r = X509_ERR_INVALID;

	if (spec->not_after <= spec->not_before ||
	    (nb = x509__time_new(spec->not_before)) == NULL ||
	    (na = x509__time_new(spec->not_after)) == NULL)
		goto out;
	if ((spec->serial[0] & 0x80) != 0 || spec->serial[0] == 0 ||
	    (serial = x509__integer_new(spec->serial, X509_SERIAL_LEN)) == NULL)
		goto out;
	if ((r = x509__key_check_p256(spec->subject_key)) != X509_OK)
		goto out;
	issuer = spec->issuer != NULL ? X509_get_subject_name(spec->issuer) : subject;
	r = X509_ERR_INVALID;
	if (issuer == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	if (X509_set_version(x, X509_VERSION_3) != 1 ||
	    X509_set_serialNumber(x, serial) != 1 ||
	    X509_set1_notBefore(x, nb) != 1 || X509_set1_notAfter(x, na) != 1 ||
	    (subject != NULL && X509_set_subject_name(x, subject) != 1) ||
	    X509_set_issuer_name(x, issuer) != 1 ||
	    (r = set_spki(x, spec->subject_key)) != X509_OK)
		goto out;
	/*
	 * OpenSSL 3.0 has no setter for the TBS signature AlgorithmIdentifier
	 * other than signing with a key it holds. The object belongs to @p x and
	 * is written to the TBS encoding, so we fill it in place.
	 */
	if ((r = x509__algid_set((X509_ALGOR *)X509_get0_tbs_sigalg(x))) != X509_OK)
		goto out;
	r = X509_OK;
out:
	ASN1_INTEGER_free(serial);
	ASN1_TIME_free(nb);
	ASN1_TIME_free(na);
	return r;
}

static int
build_ca(X509 *x, const struct x509_cert_spec *spec)
{
	static const int ku[] = { 5 /* keyCertSign */, 6 /* cRLSign */, -1 };
	const ASN1_OCTET_STRING *keyid = NULL;
	ASN1_OCTET_STRING *own = NULL;
	char zone[X509_OWNER_NAME_SIZE];
	int root = spec->profile == X509_PROFILE_ROOT, r;

	if (spec->subject == NULL || X509_NAME_entry_count(spec->subject) == 0 ||
	    spec->device_id != NULL || spec->index != 0 || spec->crl_uri != NULL ||
	    (root && (spec->issuer != NULL || spec->zone != NULL)))
		return X509_ERR_INVALID;
	if (!root && ((r = x509__issuer_keyid(spec->issuer, &keyid)) != X509_OK ||
	    (r = x509__zone_normalize(spec->zone, zone, sizeof(zone))) != X509_OK))
		return r;
	if ((r = set_common(x, spec, spec->subject)) != X509_OK ||
	    (r = add_basic_constraints(x, 1, root ? -1 : 0)) != X509_OK ||
	    (r = add_key_usage(x, ku)) != X509_OK)
		return r;
	if (!root && (r = add_name_constraints(x, zone)) != X509_OK)
		return r;
	if ((r = add_ski(x, root ? &own : NULL)) != X509_OK)
		return r;
	/* A self-signed root names its own key as the authority key. */
	r = add_aki(x, root ? own : keyid);
	ASN1_OCTET_STRING_free(own);
	return r;
}

/*
 * What both device builders check first, in one order so that they refuse
 * a spec alike: no subject, a usable CRL URI, the issuer's key id (to
 * *@p keyid, borrowed) and the owner name (to @p owner).
 */
static int
device_check(const struct x509_cert_spec *spec, const ASN1_OCTET_STRING **keyid,
	     char owner[X509_OWNER_NAME_SIZE])
{
	int r;

	if (spec->subject != NULL)
		return X509_ERR_INVALID;
	if (spec->crl_uri != NULL && !uri_valid(spec->crl_uri))
		return X509_ERR_INVALID;
	if ((r = x509__issuer_keyid(spec->issuer, keyid)) != X509_OK)
		return r;
	return x509_owner_name(spec->index, spec->device_id, spec->zone, owner,
			       X509_OWNER_NAME_SIZE);
}

static int
build_device(X509 *x, const struct x509_cert_spec *spec)
{
	static const int ku[] = { 0 /* digitalSignature */, -1 };
	const ASN1_OCTET_STRING *keyid = NULL;
	char owner[X509_OWNER_NAME_SIZE];
	int cn, r;

	if ((r = device_check(spec, &keyid, owner)) != X509_OK)
		return r;
	/* RFC 5280 §4.2.1.6: an empty subject needs a critical SAN. */
	cn = strlen(owner) <= X509_CN_MAX;
	/* The subject is written into the certificate's own (empty) name. */
	r = X509_ERR_CRYPTO;
	if (cn && X509_NAME_add_entry_by_NID(X509_get_subject_name(x), NID_commonName,
	    MBSTRING_UTF8, (const unsigned char *)owner, -1, -1, 0) != 1)
		goto out;
	if ((r = set_common(x, spec, NULL)) != X509_OK ||
	    (r = add_basic_constraints(x, 0, -1)) != X509_OK ||
	    (r = add_key_usage(x, ku)) != X509_OK ||
	    (r = add_eku_client_auth(x)) != X509_OK ||
	    (r = add_san_dns(x, owner, !cn)) != X509_OK ||
	    (r = add_ski(x, NULL)) != X509_OK ||
	    (r = add_aki(x, keyid)) != X509_OK)
		goto out;
	if (spec->crl_uri != NULL && (r = add_crl_dp(x, spec->crl_uri)) != X509_OK)
		goto out;
	r = X509_OK;
out:
	return r;
}

/*
 * ---- The device TBS, written directly as DER ----
 *
 * Building a device TBS through OpenSSL's X509 object costs about a quarter
 * of a signature check (every extension is encoded, copied and encoded
 * again). Its layout is fixed, so it is written here field by field, inner
 * parts first: each constructed value is closed by moving its contents
 * behind the header once their length is known. The OpenSSL construction
 * above stays as x509__cert_tbs_build_ossl, and the unit tests require both
 * to give the same bytes for every kind of device spec.
 */

/* A growing DER buffer; err sticks once set, so calls can be chained. */
struct der {
	unsigned char *b;
	size_t len, cap;
	int err;
};

static void
der_reserve(struct der *d, size_t more)
{
	unsigned char *nb;
	size_t cap;

	if (d->err != X509_OK || d->len + more <= d->cap)
		return;
	cap = d->cap ? d->cap : 512;
	while (cap < d->len + more)
		cap *= 2;
	if ((nb = realloc(d->b, cap)) == NULL) {
		d->err = X509_ERR_NOMEM;
		return;
	}
	d->b = nb;
	d->cap = cap;
}

static void
der_bytes(struct der *d, const void *p, size_t n)
{
	der_reserve(d, n);
	if (d->err != X509_OK)
		return;
	memcpy(d->b + d->len, p, n);
	d->len += n;
}

/* Closes the value whose contents start at @p start: tag and length go in
 * front of them (lengths below 64 KiB: a TBS is far smaller). */
static void
der_close(struct der *d, unsigned char tag, size_t start)
{
	unsigned char h[4];
	size_t n, hl = 0;

	if (d->err != X509_OK)
		return;
	n = d->len - start;
	h[hl++] = tag;
	if (n < 0x80) {
		h[hl++] = (unsigned char)n;
	} else if (n < 0x100) {
		h[hl++] = 0x81;
		h[hl++] = (unsigned char)n;
	} else if (n < 0x10000) {
		h[hl++] = 0x82;
		h[hl++] = (unsigned char)(n >> 8);
		h[hl++] = (unsigned char)n;
	} else {
		d->err = X509_ERR_INVALID;
		return;
	}
	der_reserve(d, hl);
	if (d->err != X509_OK)
		return;
	memmove(d->b + start + hl, d->b + start, n);
	memcpy(d->b + start, h, hl);
	d->len += hl;
}

/* A primitive value: tag, length, contents. */
static void
der_prim(struct der *d, unsigned char tag, const void *p, size_t n)
{
	size_t start = d->len;

	der_bytes(d, p, n);
	der_close(d, tag, start);
}

/* An OpenSSL encoding of one value (i2d output, -1 on error). */
static void
der_i2d(struct der *d, unsigned char *enc, int n)
{
	if (n <= 0 && d->err == X509_OK)
		d->err = X509_ERR_CRYPTO;
	if (n > 0)
		der_bytes(d, enc, (size_t)n);
	OPENSSL_free(enc);
}

#define DER_SEQ 0x30
#define DER_SET 0x31
#define DER_OCTETS 0x04

/* The encoded values of the fixed parts (X.690 DER, RFC 5280 and 5480). */
static const unsigned char der_version3[] = { 0xa0, 0x03, 0x02, 0x01, 0x02 };
static const unsigned char der_ecdsa_sha256[] = {
	0x30, 0x0a, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
static const unsigned char der_ec_p256_alg[] = {
	0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01,
	0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
static const unsigned char der_oid_cn[] = { 0x06, 0x03, 0x55, 0x04, 0x03 };
static const unsigned char der_critical[] = { 0x01, 0x01, 0xff };
/* basicConstraints (critical) cA FALSE; keyUsage (critical) digitalSignature;
 * extKeyUsage clientAuth. */
static const unsigned char der_ext_bc_ku_eku[] = {
	0x30, 0x0c, 0x06, 0x03, 0x55, 0x1d, 0x13, 0x01, 0x01, 0xff,
	0x04, 0x02, 0x30, 0x00,
	0x30, 0x0e, 0x06, 0x03, 0x55, 0x1d, 0x0f, 0x01, 0x01, 0xff,
	0x04, 0x04, 0x03, 0x02, 0x07, 0x80,
	0x30, 0x13, 0x06, 0x03, 0x55, 0x1d, 0x25,
	0x04, 0x0c, 0x30, 0x0a, 0x06, 0x08, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02 };
static const unsigned char der_oid_san[] = { 0x06, 0x03, 0x55, 0x1d, 0x11 };
static const unsigned char der_oid_ski[] = { 0x06, 0x03, 0x55, 0x1d, 0x0e };
static const unsigned char der_oid_aki[] = { 0x06, 0x03, 0x55, 0x1d, 0x23 };
static const unsigned char der_oid_cdp[] = { 0x06, 0x03, 0x55, 0x1d, 0x1f };

/* One extension: SEQUENCE { OID, [critical TRUE,] OCTET STRING { value } },
 * where the value is one primitive of @p tag, nested in the constructed
 * tags of @p wrap (outermost first, ended by 0). */
static void
der_ext(struct der *d, const unsigned char *oid, int critical, const unsigned char *wrap,
	unsigned char tag, const void *p, size_t n)
{
	size_t ext = d->len, starts[8], k = 0, oct;

	der_bytes(d, oid, 5);
	if (critical)
		der_bytes(d, der_critical, sizeof(der_critical));
	oct = d->len;
	for (; wrap[k] != 0 && k < 8; k++)
		starts[k] = d->len;
	der_prim(d, tag, p, n);
	while (k-- > 0)
		der_close(d, wrap[k], starts[k]);
	der_close(d, DER_OCTETS, oct);
	der_close(d, DER_SEQ, ext);
}

/* A validity time as ASN1_TIME_set chose it (UTCTime to 2049). */
static void
der_time(struct der *d, const ASN1_TIME *t)
{
	unsigned char *enc = NULL;
	int n = i2d_ASN1_TIME(t, &enc);

	der_i2d(d, enc, n);
}

/*
 * The point of a P-256 SubjectPublicKeyInfo as csr_parse_like gives it:
 * SEQUENCE { the algorithm exactly as a TBS writes it, BIT STRING with no
 * unused bits of an uncompressed (65) or compressed (33) point }.
 */
static int
spki_point(const unsigned char *spki, size_t len, unsigned char *pt, size_t *ptlen)
{
	size_t alg = sizeof(der_ec_p256_alg), n;

	if (spki == NULL || len < 2 + alg + 3 || spki[0] != DER_SEQ || spki[1] != len - 2 ||
	    memcmp(spki + 2, der_ec_p256_alg, alg) != 0 || spki[2 + alg] != V_ASN1_BIT_STRING)
		return X509_ERR_KEY;
	n = spki[3 + alg];
	if (n != len - 4 - alg || spki[4 + alg] != 0)
		return X509_ERR_KEY;
	n--;
	spki += 5 + alg;
	if (!(n == 65 && spki[0] == 0x04) && !(n == 33 && (spki[0] == 0x02 || spki[0] == 0x03)))
		return X509_ERR_KEY;
	memcpy(pt, spki, n);
	*ptlen = n;
	return X509_OK;
}

static int
build_device_der(const struct x509_cert_spec *spec, unsigned char **tbs, size_t *tbslen)
{
	static const unsigned char w_seq[] = { DER_SEQ, 0 };
	static const unsigned char w_aki[] = { DER_SEQ, 0 };
	static const unsigned char w_cdp[] = { DER_SEQ, DER_SEQ, 0xa0, 0xa0, 0 };
	const ASN1_OCTET_STRING *keyid = NULL;
	ASN1_TIME *nb = NULL, *na = NULL;
	unsigned char pt[133], md[X509_DIGEST_LEN], *enc = NULL;
	char owner[X509_OWNER_NAME_SIZE];
	struct der d = { NULL, 0, 0, X509_OK };
	size_t ptlen = 0, olen, start, sub;
	int cn, n, r;

	if ((r = device_check(spec, &keyid, owner)) != X509_OK)
		return r;
	/* The checks of set_common, in its order. */
	r = X509_ERR_INVALID;
	if (spec->not_after <= spec->not_before ||
	    (nb = x509__time_new(spec->not_before)) == NULL ||
	    (na = x509__time_new(spec->not_after)) == NULL ||
	    (spec->serial[0] & 0x80) != 0 || spec->serial[0] == 0)
		goto out;
	/* The point as the key holds it (compressed stays compressed), and
	 * the SKI from it (RFC 7093 §2 method 1, as add_ski). The request's
	 * SPKI, when given, holds the same point the key was made from. */
	if (spec->subject_spki != NULL) {
		if ((r = spki_point(spec->subject_spki, spec->subject_spki_len, pt,
		    &ptlen)) != X509_OK)
			goto out;
	} else {
		if ((r = x509__key_check_p256(spec->subject_key)) != X509_OK)
			goto out;
		r = X509_ERR_CRYPTO;
		if (EVP_PKEY_get_octet_string_param(spec->subject_key,
		    OSSL_PKEY_PARAM_PUB_KEY, pt, sizeof(pt) - 1, &ptlen) != 1 ||
		    ptlen == 0 || ptlen >= sizeof(pt))
			goto out;
	}
	r = X509_ERR_CRYPTO;
	if (x509_sha256(pt, ptlen, md) != X509_OK)
		goto out;
	olen = strlen(owner);
	/* RFC 5280 §4.2.1.6: an empty subject needs a critical SAN. */
	cn = olen <= X509_CN_MAX;

	der_bytes(&d, der_version3, sizeof(der_version3));
	der_prim(&d, V_ASN1_INTEGER, spec->serial, X509_SERIAL_LEN);
	der_bytes(&d, der_ecdsa_sha256, sizeof(der_ecdsa_sha256));
	n = i2d_X509_NAME(X509_get_subject_name(spec->issuer), &enc);
	der_i2d(&d, enc, n);
	start = d.len;
	der_time(&d, nb);
	der_time(&d, na);
	der_close(&d, DER_SEQ, start);
	/* Subject: SEQUENCE { SET { SEQUENCE { id-at-commonName, UTF8String } } }. */
	sub = d.len;
	if (cn) {
		size_t set = d.len, atv = d.len;
		der_bytes(&d, der_oid_cn, sizeof(der_oid_cn));
		der_prim(&d, V_ASN1_UTF8STRING, owner, olen);
		der_close(&d, DER_SEQ, atv);
		der_close(&d, DER_SET, set);
	}
	der_close(&d, DER_SEQ, sub);
	/* SubjectPublicKeyInfo: the algorithm, then the point with no unused bits. */
	start = d.len;
	der_bytes(&d, der_ec_p256_alg, sizeof(der_ec_p256_alg));
	{
		size_t bits = d.len;
		static const unsigned char zero = 0;
		der_bytes(&d, &zero, 1);
		der_bytes(&d, pt, ptlen);
		der_close(&d, V_ASN1_BIT_STRING, bits);
	}
	der_close(&d, DER_SEQ, start);
	/* [3] EXPLICIT Extensions, in build_device's order. */
	start = d.len;
	der_bytes(&d, der_ext_bc_ku_eku, sizeof(der_ext_bc_ku_eku));
	der_ext(&d, der_oid_san, !cn, w_seq, 0x82, owner, olen);
	der_ext(&d, der_oid_ski, 0, (const unsigned char *)"", DER_OCTETS, md, 20);
	der_ext(&d, der_oid_aki, 0, w_aki, 0x80, ASN1_STRING_get0_data(keyid),
		(size_t)ASN1_STRING_length(keyid));
	if (spec->crl_uri != NULL)
		der_ext(&d, der_oid_cdp, 0, w_cdp, 0x86, spec->crl_uri, strlen(spec->crl_uri));
	der_close(&d, DER_SEQ, start);
	der_close(&d, 0xa3, start);
	der_close(&d, DER_SEQ, 0);
	if ((r = d.err) != X509_OK)
		goto out;
	*tbs = d.b;
	*tbslen = d.len;
	d.b = NULL;
	r = X509_OK;
out:
	free(d.b);
	ASN1_TIME_free(nb);
	ASN1_TIME_free(na);
	return r;
}

int
x509__cert_tbs_build_ossl(const struct x509_cert_spec *spec, unsigned char **tbs,
			  size_t *tbslen)
{
	X509 *x = NULL;
	unsigned char *der = NULL;
	int n, r = X509_ERR_INVALID;

	if (spec == NULL || tbs == NULL || tbslen == NULL)
		goto out;
	r = X509_ERR_NOMEM;
	if ((x = X509_new()) == NULL)
		goto out;
	switch (spec->profile) {
	case X509_PROFILE_ROOT:
	case X509_PROFILE_ISSUING:
		r = build_ca(x, spec);
		break;
	case X509_PROFILE_DEVICE:
		r = build_device(x, spec);
		break;
	default:
		r = X509_ERR_INVALID;
		break;
	}
	if (r != X509_OK)
		goto out;
	n = i2d_re_X509_tbs(x, &der);
	r = x509__der_take(der, n, tbs, tbslen);
out:
	X509_free(x);
	return r;
}

int
x509_cert_tbs_build(const struct x509_cert_spec *spec, unsigned char **tbs,
		    size_t *tbslen)
{
	if (spec == NULL || tbs == NULL || tbslen == NULL)
		return X509_ERR_INVALID;
	if (spec->profile == X509_PROFILE_DEVICE)
		return build_device_der(spec, tbs, tbslen);
	return x509__cert_tbs_build_ossl(spec, tbs, tbslen);
}
