/*
 * x509_crl.c - TBSCertList building.
 *
 * OpenSSL 3.0 can set every field of an X509_CRL except the TBS signature
 * AlgorithmIdentifier, which only X509_CRL_sign fills in (with a key it
 * holds), and it refuses to encode a TBSCertList without one. So we seed the
 * CRL from a minimal parsed one: a skeleton TBSCertList (version, algorithm,
 * issuer, thisUpdate) is encoded with OpenSSL's generic ASN.1, wrapped with a
 * placeholder signature and parsed by d2i_X509_CRL; the rest is set through
 * the ordinary X509_CRL API and the TBS is re-encoded with
 * i2d_re_X509_CRL_tbs. The placeholder signature is never part of the TBS.
 */
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1.h>
#include <openssl/objects.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "signer/x509.h"
#include "signer/x509_int.h"

/* Append to @p seq an ASN1_TYPE of @p type holding @p value (taken over). */
static int
seq_push(ASN1_SEQUENCE_ANY *seq, int type, void *value)
{
	ASN1_TYPE *t;

	if ((t = ASN1_TYPE_new()) == NULL)
		return X509_ERR_NOMEM;
	ASN1_TYPE_set(t, type, value);
	if (!sk_ASN1_TYPE_push(seq, t)) {
		ASN1_TYPE_free(t);
		return X509_ERR_NOMEM;
	}
	return X509_OK;
}

/* Append a complete DER SEQUENCE (copied) to @p seq. */
static int
seq_push_der(ASN1_SEQUENCE_ANY *seq, unsigned char *der, int len)
{
	ASN1_STRING *s;
	int r;

	if (len <= 0)
		return X509_ERR_CRYPTO;
	if ((s = ASN1_STRING_type_new(V_ASN1_SEQUENCE)) == NULL ||
	    ASN1_STRING_set(s, der, len) != 1) {
		ASN1_STRING_free(s);
		return X509_ERR_NOMEM;
	}
	if ((r = seq_push(seq, V_ASN1_SEQUENCE, s)) != X509_OK)
		ASN1_STRING_free(s);
	return r;
}

/* A parsed v2 CRL with algorithm, @p issuer and thisUpdate @p t set. */
static int
crl_skeleton_new(const X509_NAME *issuer, int64_t t, X509_CRL **out)
{
	static const unsigned char placeholder[] = { 0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01 };
	ASN1_SEQUENCE_ANY *seq = NULL;
	ASN1_INTEGER *version = NULL;
	ASN1_TIME *tu = NULL;
	X509_ALGOR *alg = NULL;
	X509_CRL *crl = NULL;
	unsigned char *der = NULL, *tbs = NULL, *wrapped = NULL;
	const unsigned char *p;
	size_t wlen = 0;
	int n, r = X509_ERR_NOMEM;

	if ((seq = sk_ASN1_TYPE_new_null()) == NULL || (version = ASN1_INTEGER_new()) == NULL ||
	    (alg = X509_ALGOR_new()) == NULL)
		goto out;
	r = X509_ERR_INVALID;
	if ((tu = x509__time_new(t)) == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	if (ASN1_INTEGER_set(version, 1) != 1 || x509__algid_set(alg) != X509_OK)
		goto out;
	if ((r = seq_push(seq, V_ASN1_INTEGER, version)) != X509_OK)
		goto out;
	version = NULL;
	n = i2d_X509_ALGOR(alg, &der);
	if ((r = seq_push_der(seq, der, n)) != X509_OK)
		goto out;
	OPENSSL_free(der);
	der = NULL;
	n = i2d_X509_NAME(issuer, &der);
	if ((r = seq_push_der(seq, der, n)) != X509_OK)
		goto out;
	if ((r = seq_push(seq, ASN1_STRING_type(tu), tu)) != X509_OK)
		goto out;
	tu = NULL;

	r = X509_ERR_CRYPTO;
	if ((n = i2d_ASN1_SEQUENCE_ANY(seq, &tbs)) <= 0)
		goto out;
	if ((r = x509__signed_wrap(tbs, (size_t)n, placeholder, sizeof(placeholder),
	    &wrapped, &wlen)) != X509_OK)
		goto out;
	r = X509_ERR_CRYPTO;
	p = wrapped;
	if ((crl = d2i_X509_CRL(NULL, &p, (long)wlen)) == NULL)
		goto out;
	*out = crl;
	r = X509_OK;
out:
	OPENSSL_free(wrapped);
	OPENSSL_free(tbs);
	OPENSSL_free(der);
	X509_ALGOR_free(alg);
	ASN1_TIME_free(tu);
	ASN1_INTEGER_free(version);
	sk_ASN1_TYPE_pop_free(seq, ASN1_TYPE_free);
	return r;
}

/* RFC 5280 §5.3.1 reason codes we write; 7 is unused, 0 is left out. */
static int
reason_valid(int reason)
{
	return (reason >= 1 && reason <= 10 && reason != 7);
}

static int
add_entry(X509_CRL *crl, const struct x509_crl_entry *e)
{
	X509_REVOKED *rev = NULL;
	ASN1_INTEGER *serial = NULL;
	ASN1_TIME *when = NULL;
	ASN1_ENUMERATED *reason = NULL;
	int r = X509_ERR_INVALID;

	if (e->serial == NULL || e->serial_len == 0 || e->serial_len > 20 ||
	    (e->serial[0] & 0x80) != 0 || (e->reason > 0 && !reason_valid(e->reason)) ||
	    e->reason < -1)
		goto out;
	if ((serial = x509__integer_new(e->serial, e->serial_len)) == NULL ||
	    (when = x509__time_new(e->revoked_at)) == NULL)
		goto out;
	r = X509_ERR_NOMEM;
	if ((rev = X509_REVOKED_new()) == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	if (X509_REVOKED_set_serialNumber(rev, serial) != 1 ||
	    X509_REVOKED_set_revocationDate(rev, when) != 1)
		goto out;
	if (e->reason > 0) {
		if ((reason = ASN1_ENUMERATED_new()) == NULL ||
		    ASN1_ENUMERATED_set(reason, e->reason) != 1 ||
		    X509_REVOKED_add1_ext_i2d(rev, NID_crl_reason, reason, 0,
		    X509V3_ADD_DEFAULT) != 1)
			goto out;
	}
	if (X509_CRL_add0_revoked(crl, rev) != 1)
		goto out;
	rev = NULL;
	r = X509_OK;
out:
	ASN1_ENUMERATED_free(reason);
	ASN1_TIME_free(when);
	ASN1_INTEGER_free(serial);
	X509_REVOKED_free(rev);
	return r;
}

/* After sorting, two entries with one serial would be a contradiction. */
static int
entries_unique(const X509_CRL *crl)
{
	STACK_OF(X509_REVOKED) *revs = X509_CRL_get_REVOKED((X509_CRL *)crl);
	int i;

	for (i = 1; i < sk_X509_REVOKED_num(revs); i++)
		if (ASN1_INTEGER_cmp(X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i - 1)),
		    X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revs, i))) == 0)
			return 0;
	return 1;
}

static int
add_extensions(X509_CRL *crl, const ASN1_OCTET_STRING *keyid, uint64_t number)
{
	AUTHORITY_KEYID *akid = NULL;
	ASN1_INTEGER *num = NULL;
	int r = X509_ERR_NOMEM;

	if ((akid = AUTHORITY_KEYID_new()) == NULL ||
	    (akid->keyid = ASN1_OCTET_STRING_dup(keyid)) == NULL ||
	    (num = ASN1_INTEGER_new()) == NULL)
		goto out;
	r = X509_ERR_CRYPTO;
	if (ASN1_INTEGER_set_uint64(num, number) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0,
	    X509V3_ADD_DEFAULT) != 1 ||
	    X509_CRL_add1_ext_i2d(crl, NID_crl_number, num, 0, X509V3_ADD_DEFAULT) != 1)
		goto out;
	r = X509_OK;
out:
	ASN1_INTEGER_free(num);
	AUTHORITY_KEYID_free(akid);
	return r;
}

int
x509_crl_tbs_build(const struct x509_crl_spec *spec, unsigned char **tbs,
		   size_t *tbslen)
{
	const ASN1_OCTET_STRING *keyid = NULL;
	X509_CRL *crl = NULL;
	ASN1_TIME *nu = NULL;
	unsigned char *der = NULL;
	size_t i;
	int n, r = X509_ERR_INVALID;

	if (spec == NULL || tbs == NULL || tbslen == NULL ||
	    (spec->entries == NULL && spec->n_entries > 0) ||
	    spec->next_update <= spec->this_update ||
	    (nu = x509__time_new(spec->next_update)) == NULL)
		goto out;
	if ((r = x509__issuer_keyid(spec->issuer, &keyid)) != X509_OK ||
	    (r = crl_skeleton_new(X509_get_subject_name(spec->issuer),
	    spec->this_update, &crl)) != X509_OK)
		goto out;
	r = X509_ERR_CRYPTO;
	if (X509_CRL_set1_nextUpdate(crl, nu) != 1)
		goto out;
	for (i = 0; i < spec->n_entries; i++)
		if ((r = add_entry(crl, &spec->entries[i])) != X509_OK)
			goto out;
	r = X509_ERR_CRYPTO;
	if (X509_CRL_sort(crl) != 1)
		goto out;
	r = X509_ERR_INVALID;
	if (!entries_unique(crl))
		goto out;
	if ((r = add_extensions(crl, keyid, spec->number)) != X509_OK)
		goto out;
	n = i2d_re_X509_CRL_tbs(crl, &der);
	r = x509__der_take(der, n, tbs, tbslen);
out:
	ASN1_TIME_free(nu);
	X509_CRL_free(crl);
	return r;
}
