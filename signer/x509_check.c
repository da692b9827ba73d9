/*
 * x509_check.c - what the issuing-CA key may sign, decided by the HSM process
 * from the TBS bytes alone.
 *
 * A TBSCertificate is decoded with the library's own template (x509_asn1.c:
 * OpenSSL's types for every field, the public key left undecoded, because
 * OpenSSL 3.0's key decoding would cost more than the signature). A
 * TBSCertList is wrapped in a CertificateList with a placeholder signature
 * and handed to d2i_X509_CRL, which decodes no key. Either way the TBS must
 * re-encode to exactly the bytes given, so that nothing a parser skipped or
 * normalized (BER lengths, odd encodings) can hide in what gets signed.
 * Every rule here is a hard limit of the role, independent of policy.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "signer/x509.h"
#include "signer/x509_int.h"

/* A syntactically valid ECDSA-Sig-Value; it is never verified. */
static const unsigned char placeholder_sig[] = {
	0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01
};

static X509_CRL *
tbs_crl_parse(const unsigned char *tbs, size_t len)
{
	unsigned char *wrapped = NULL, *re = NULL;
	const unsigned char *p;
	size_t wlen = 0;
	X509_CRL *crl = NULL;
	int n;

	if (!x509__is_one_sequence(tbs, len) ||
	    x509__signed_wrap(tbs, len, placeholder_sig, sizeof(placeholder_sig),
	    &wrapped, &wlen) != X509_OK)
		goto out;
	p = wrapped;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)wlen)) == NULL || p != wrapped + wlen)
		goto bad;
	if ((n = i2d_re_X509_CRL_tbs(crl, &re)) <= 0 || (size_t)n != len ||
	    memcmp(re, tbs, len) != 0)
		goto bad;
	goto out;
bad:
	X509_CRL_free(crl);
	crl = NULL;
out:
	OPENSSL_free(re);
	OPENSSL_free(wrapped);
	return crl;
}

/*
 * X509_CRL has no getter for the TBS's own AlgorithmIdentifier, so read it
 * from the TBS: in a v2 TBSCertList it is the second element.
 */
static int
crl_tbs_sigalg_ok(const unsigned char *tbs, size_t len)
{
	ASN1_SEQUENCE_ANY *seq = NULL;
	const ASN1_TYPE *t;
	X509_ALGOR *alg = NULL;
	const unsigned char *p = tbs;
	int ok = 0;

	if ((seq = d2i_ASN1_SEQUENCE_ANY(NULL, &p, (long)len)) == NULL ||
	    sk_ASN1_TYPE_num(seq) < 2)
		goto out;
	t = sk_ASN1_TYPE_value(seq, 1);
	if (ASN1_TYPE_get(t) != V_ASN1_SEQUENCE)
		goto out;
	p = ASN1_STRING_get0_data(t->value.sequence);
	alg = d2i_X509_ALGOR(NULL, &p, ASN1_STRING_length(t->value.sequence));
	ok = x509__algid_is_ecdsa_sha256(alg);
out:
	X509_ALGOR_free(alg);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return ok;
}

static int
name_is(const X509_NAME *name, const unsigned char *der, size_t len)
{
	unsigned char *enc = NULL;
	int n, eq;

	n = i2d_X509_NAME(name, &enc);
	eq = n > 0 && (size_t)n == len && memcmp(enc, der, len) == 0;
	OPENSSL_free(enc);
	return eq;
}

/* Seconds of @p t, provided it is written exactly as RFC 5280 asks
 * (UTCTime to 2049, GeneralizedTime after, whole seconds, "Z"). */
static int
time_canonical(const ASN1_TIME *t, int64_t *out)
{
	ASN1_TIME *again = NULL;
	int ok;

	if (t == NULL || x509__time_get(t, out) != X509_OK)
		return 0;
	again = x509__time_new(*out);
	ok = again != NULL && ASN1_STRING_type(again) == ASN1_STRING_type(t) &&
	    ASN1_STRING_cmp(again, t) == 0;
	ASN1_TIME_free(again);
	return ok;
}

static int
serial_ok(const ASN1_INTEGER *serial)
{
	const unsigned char *d;
	int i, n;

	if (serial == NULL || ASN1_STRING_type(serial) != V_ASN1_INTEGER)
		return 0;
	n = ASN1_STRING_length(serial);
	d = ASN1_STRING_get0_data(serial);
	if (n <= 0 || n > 20)
		return 0;
	for (i = 0; i < n; i++)
		if (d[i] != 0)
			return 1;
	return 0;
}

/*
 * Every extension's NID must be in @p allowed (ended by NID_undef) and occur
 * once. nameConstraints gets its own error because it is the one extension
 * that would turn a leaf into a CA-like object in a reader's eyes.
 */
static int
extensions_check(const STACK_OF(X509_EXTENSION) *exts, const int *allowed,
		 char *detail, size_t size)
{
	int seen[16] = { 0 }, i, j, nid;
	char oid[80];

	for (i = 0; i < sk_X509_EXTENSION_num(exts); i++) {
		X509_EXTENSION *ext = sk_X509_EXTENSION_value(exts, i);

		nid = OBJ_obj2nid(X509_EXTENSION_get_object(ext));
		if (nid == NID_name_constraints) {
			x509__detail(detail, size, "nameConstraints present");
			return X509_ERR_TBS_NAME_CONSTRAINTS;
		}
		for (j = 0; allowed[j] != NID_undef && allowed[j] != nid; j++)
			;
		if (allowed[j] == NID_undef || nid == NID_undef || ++seen[j] > 1) {
			OBJ_obj2txt(oid, sizeof(oid), X509_EXTENSION_get_object(ext), 1);
			x509__detail(detail, size, "extension %s %s", oid,
			    allowed[j] == NID_undef ? "not allowed" : "appears twice");
			return X509_ERR_TBS_EXTENSION;
		}
	}
	return X509_OK;
}

/* Is the ASN.1 string @p s a host name strictly below @p zone? */
static int
string_below_zone(const ASN1_STRING *s, const char *zone)
{
	const char *d = (const char *)ASN1_STRING_get0_data(s);
	int n = ASN1_STRING_length(s);

	return n > 0 && x509__hostname_valid(d, (size_t)n) &&
	    x509__name_below_zone(d, (size_t)n, zone);
}

/* Subject empty or a single CN below the zone; SAN dNSNames only, below
 * the zone, critical when the subject is empty. */
static int
names_check(const X509__TBS *t, const char *zone, char *detail, size_t size)
{
	const X509_NAME *subject = t->subject;
	GENERAL_NAMES *san = NULL;
	int crit = -1, i, n, r = X509_ERR_TBS_NAME;

	n = X509_NAME_entry_count(subject);
	if (n > 1 || (n == 1 &&
	    (OBJ_obj2nid(X509_NAME_ENTRY_get_object(X509_NAME_get_entry(subject, 0))) != NID_commonName ||
	    !string_below_zone(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, 0)), zone)))) {
		x509__detail(detail, size, "subject must be empty or one CN below %s", zone);
		goto out;
	}
	if ((san = X509V3_get_d2i(t->extensions, NID_subject_alt_name, &crit, NULL)) == NULL ||
	    sk_GENERAL_NAME_num(san) == 0) {
		x509__detail(detail, size, "subjectAltName missing or malformed");
		goto out;
	}
	if (n == 0 && crit != 1) {
		x509__detail(detail, size, "empty subject needs a critical subjectAltName");
		goto out;
	}
	for (i = 0; i < sk_GENERAL_NAME_num(san); i++) {
		const GENERAL_NAME *gn = sk_GENERAL_NAME_value(san, i);
		int type = -1;
		const void *v = GENERAL_NAME_get0_value(gn, &type);

		if (type != GEN_DNS || !string_below_zone(v, zone)) {
			x509__detail(detail, size, "subjectAltName entry %d is not a dNSName below %s",
			    i, zone);
			goto out;
		}
	}
	r = X509_OK;
out:
	GENERAL_NAMES_free(san);
	return r;
}

static int
usage_check(const X509__TBS *t, char *detail, size_t size)
{
	BASIC_CONSTRAINTS *bc = NULL;
	ASN1_BIT_STRING *ku = NULL;
	EXTENDED_KEY_USAGE *eku = NULL;
	int r;

	r = X509_ERR_TBS_CA;
	if ((bc = X509V3_get_d2i(t->extensions, NID_basic_constraints, NULL, NULL)) == NULL ||
	    bc->ca != 0 || bc->pathlen != NULL) {
		x509__detail(detail, size, "basicConstraints %s", bc == NULL ?
		    "missing or malformed" : "is not CA:false");
		goto out;
	}
	r = X509_ERR_TBS_KEY_USAGE;
	if ((ku = X509V3_get_d2i(t->extensions, NID_key_usage, NULL, NULL)) == NULL ||
	    ASN1_BIT_STRING_get_bit(ku, 5) || ASN1_BIT_STRING_get_bit(ku, 6)) {
		x509__detail(detail, size, "keyUsage %s", ku == NULL ?
		    "missing or malformed" : "allows keyCertSign or cRLSign");
		goto out;
	}
	r = X509_ERR_TBS_EKU;
	if ((eku = X509V3_get_d2i(t->extensions, NID_ext_key_usage, NULL, NULL)) == NULL ||
	    sk_ASN1_OBJECT_num(eku) != 1 ||
	    OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)) != NID_client_auth) {
		x509__detail(detail, size, "extendedKeyUsage must be exactly clientAuth");
		goto out;
	}
	r = X509_OK;
out:
	BASIC_CONSTRAINTS_free(bc);
	ASN1_BIT_STRING_free(ku);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
	return r;
}

int
x509_tbs_cert_check_device(const unsigned char *tbs, size_t len,
			   const unsigned char *issuer_name_der,
			   size_t issuer_name_len, const char *zone,
			   int64_t max_validity_seconds,
			   char *detail, size_t detail_size)
{
	static const int allowed[] = {
		NID_basic_constraints, NID_key_usage, NID_ext_key_usage,
		NID_subject_alt_name, NID_subject_key_identifier,
		NID_authority_key_identifier, NID_crl_distribution_points, NID_undef
	};
	char z[X509_OWNER_NAME_SIZE];
	int64_t nb = 0, na = 0;
	X509__TBS *t = NULL;
	int r = X509_ERR_INVALID;

	x509__detail(detail, detail_size, "%s", "");
	if (tbs == NULL || issuer_name_der == NULL || max_validity_seconds <= 0 ||
	    x509__zone_normalize(zone, z, sizeof(z)) != X509_OK)
		goto out;
	r = X509_ERR_TBS_PARSE;
	if ((t = x509__tbs_decode(tbs, len)) == NULL) {
		x509__detail(detail, detail_size, "not one canonical DER TBSCertificate");
		goto out;
	}
	if (t->issuer_uid != NULL || t->subject_uid != NULL) {
		x509__detail(detail, detail_size, "unique identifiers present");
		goto out;
	}
	r = X509_ERR_TBS_VERSION;
	if (t->version == NULL || ASN1_INTEGER_get(t->version) != X509_VERSION_3)
		goto out;
	r = X509_ERR_TBS_SIGALG;
	if (!x509__algid_is_ecdsa_sha256(t->sigalg))
		goto out;
	r = X509_ERR_TBS_SERIAL;
	if (!serial_ok(t->serial))
		goto out;
	r = X509_ERR_TBS_ISSUER;
	if (!name_is(t->issuer, issuer_name_der, issuer_name_len))
		goto out;
	r = X509_ERR_TBS_VALIDITY;
	if (!time_canonical(t->validity->notBefore, &nb) ||
	    !time_canonical(t->validity->notAfter, &na) || na <= nb ||
	    na - nb > max_validity_seconds) {
		x509__detail(detail, detail_size, "validity of %lld s, cap %lld s",
		    (long long)(na - nb), (long long)max_validity_seconds);
		goto out;
	}
	/* The only device key type. */
	r = X509_ERR_TBS_KEY;
	if (x509__spki_check_p256(t->spki->alg, t->spki->key, detail, detail_size) != X509_OK)
		goto out;
	if ((r = extensions_check(t->extensions, allowed, detail, detail_size)) != X509_OK ||
	    (r = usage_check(t, detail, detail_size)) != X509_OK ||
	    (r = names_check(t, z, detail, detail_size)) != X509_OK)
		goto out;
	r = X509_OK;
out:
	if (r != X509_OK && detail != NULL && detail_size > 0 && detail[0] == '\0')
		x509__detail(detail, detail_size, "%s", x509_strerror(r));
	x509__tbs_free(t);
	return r;
}

int
x509_tbs_crl_check(const unsigned char *tbs, size_t len,
		   const unsigned char *issuer_name_der, size_t issuer_name_len,
		   char *detail, size_t detail_size)
{
	static const int allowed[] = {
		NID_authority_key_identifier, NID_crl_number, NID_undef
	};
	static const int entry_allowed[] = { NID_crl_reason, NID_undef };
	STACK_OF(X509_REVOKED) *revs;
	ASN1_INTEGER *number = NULL;
	X509_CRL *crl = NULL;
	int64_t tu = 0, nu = 0;
	int i, r = X509_ERR_INVALID;

	x509__detail(detail, detail_size, "%s", "");
	if (tbs == NULL || issuer_name_der == NULL)
		goto out;
	r = X509_ERR_TBS_PARSE;
	if ((crl = tbs_crl_parse(tbs, len)) == NULL) {
		x509__detail(detail, detail_size, "not one canonical DER TBSCertList");
		goto out;
	}
	r = X509_ERR_TBS_VERSION;
	if (X509_CRL_get_version(crl) != X509_CRL_VERSION_2)
		goto out;
	r = X509_ERR_TBS_SIGALG;
	if (!crl_tbs_sigalg_ok(tbs, len))
		goto out;
	r = X509_ERR_TBS_ISSUER;
	if (!name_is(X509_CRL_get_issuer(crl), issuer_name_der, issuer_name_len))
		goto out;
	r = X509_ERR_TBS_VALIDITY;
	if (!time_canonical(X509_CRL_get0_lastUpdate(crl), &tu) ||
	    !time_canonical(X509_CRL_get0_nextUpdate(crl), &nu) || nu <= tu) {
		x509__detail(detail, detail_size, "thisUpdate/nextUpdate missing or not increasing");
		goto out;
	}
	if ((r = extensions_check(X509_CRL_get0_extensions(crl), allowed, detail,
	    detail_size)) != X509_OK)
		goto out;
	r = X509_ERR_TBS_EXTENSION;
	if ((number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL)) == NULL) {
		x509__detail(detail, detail_size, "cRLNumber missing or malformed");
		goto out;
	}
	revs = X509_CRL_get_REVOKED(crl);
	for (i = 0; i < sk_X509_REVOKED_num(revs); i++) {
		const X509_REVOKED *rev = sk_X509_REVOKED_value(revs, i);

		r = X509_ERR_TBS_SERIAL;
		if (!serial_ok(X509_REVOKED_get0_serialNumber(rev)))
			goto out;
		if ((r = extensions_check(X509_REVOKED_get0_extensions(rev),
		    entry_allowed, detail, detail_size)) != X509_OK)
			goto out;
	}
	r = X509_OK;
out:
	if (r != X509_OK && detail != NULL && detail_size > 0 && detail[0] == '\0')
		x509__detail(detail, detail_size, "%s", x509_strerror(r));
	ASN1_INTEGER_free(number);
	X509_CRL_free(crl);
	return r;
}
