/*
 * x509.c - errors, names, serials, digests and small helpers of
 * libregsign-x509. Certificate TBS building is in x509_cert.c, CRLs in
 * x509_crl.c, signature assembly in x509_sig.c, TBS checks in x509_check.c.
 */
#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "signer/x509.h"
#include "signer/x509_int.h"

const char *
x509_strerror(int err)
{
	switch ((enum x509_err)err) {
	case X509_OK: return "success";
	case X509_ERR_INVALID: return "invalid argument";
	case X509_ERR_NOMEM: return "out of memory";
	case X509_ERR_CRYPTO: return "OpenSSL operation failed";
	case X509_ERR_RANDOM: return "random number generator failed";
	case X509_ERR_NAME: return "malformed name, zone or device id";
	case X509_ERR_KEY: return "key is not an EC P-256 named-curve key";
	case X509_ERR_ISSUER: return "issuer certificate unusable";
	case X509_ERR_SIGN: return "signing failed";
	case X509_ERR_SIG_FORMAT: return "signature is not a DER ECDSA P-256 signature";
	case X509_ERR_SIG_VERIFY: return "signature does not verify with the issuer key";
	case X509_ERR_ASSEMBLY: return "assembled object does not parse back to what was signed";
	case X509_ERR_CSR_TOO_LARGE: return "CSR too large";
	case X509_ERR_CSR_PARSE: return "not a PKCS#10 certification request";
	case X509_ERR_CSR_TRAILING: return "trailing bytes after the CSR";
	case X509_ERR_CSR_NOT_DER: return "CSR is not DER encoded";
	case X509_ERR_CSR_SIGNATURE: return "CSR signature does not verify";
	case X509_ERR_CSR_KEY_RSA: return "CSR key is RSA; only EC P-256 is allowed";
	case X509_ERR_CSR_KEY_EDDSA: return "CSR key is EdDSA; only EC P-256 is allowed";
	case X509_ERR_CSR_KEY_CURVE: return "CSR key is on a curve other than P-256";
	case X509_ERR_CSR_KEY_EXPLICIT: return "CSR key has explicit curve parameters; a named curve is required";
	case X509_ERR_CSR_KEY_TYPE: return "CSR key type not allowed";
	case X509_ERR_TBS_PARSE: return "not a canonical DER TBS structure";
	case X509_ERR_TBS_SIGALG: return "signature algorithm is not ecdsa-with-SHA256";
	case X509_ERR_TBS_VERSION: return "wrong version";
	case X509_ERR_TBS_ISSUER: return "issuer name is not the CA's subject";
	case X509_ERR_TBS_VALIDITY: return "validity period not allowed";
	case X509_ERR_TBS_CA: return "basicConstraints missing or CA:true";
	case X509_ERR_TBS_KEY_USAGE: return "keyUsage missing or not allowed";
	case X509_ERR_TBS_EKU: return "extendedKeyUsage is not exactly clientAuth";
	case X509_ERR_TBS_NAME: return "name outside the registry zone or malformed";
	case X509_ERR_TBS_NAME_CONSTRAINTS: return "nameConstraints not allowed";
	case X509_ERR_TBS_EXTENSION: return "unexpected, duplicate or malformed extension";
	case X509_ERR_TBS_SERIAL: return "serial number not allowed";
	case X509_ERR_TBS_KEY: return "subject key is not an EC P-256 named-curve key";
	}
	return "unknown error";
}

void
x509__detail(char *buf, size_t size, const char *fmt, ...)
{
	va_list ap;

	if (buf == NULL || size == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, size, fmt, ap);
	va_end(ap);
}

int
x509__der_take(unsigned char *ossl, int len, unsigned char **out, size_t *outlen)
{
	unsigned char *p = NULL;
	int r = X509_ERR_CRYPTO;

	if (ossl == NULL || len <= 0)
		goto out;
	r = X509_ERR_NOMEM;
	if ((p = malloc((size_t)len)) == NULL)
		goto out;
	memcpy(p, ossl, (size_t)len);
	*out = p;
	*outlen = (size_t)len;
	r = X509_OK;
out:
	OPENSSL_free(ossl);
	return r;
}

int
x509_serial_random(unsigned char serial[X509_SERIAL_LEN])
{
	if (serial == NULL)
		return X509_ERR_INVALID;
	if (RAND_priv_bytes(serial, X509_SERIAL_LEN) != 1)
		return X509_ERR_RANDOM;
	x509_serial_normalize(serial);
	return X509_OK;
}

void
x509_serial_normalize(unsigned char serial[X509_SERIAL_LEN])
{
	/*
	 * Top bit clear keeps the DER INTEGER positive without a leading 0x00;
	 * the next bit set keeps the first byte non-zero, so every serial is
	 * exactly 16 bytes and no minimal-encoding rule ever shortens it.
	 */
	serial[0] = (unsigned char)((serial[0] & 0x3f) | 0x40);
}

int
x509_name_parse(const char *text, X509_NAME **out)
{
	X509_NAME *name = NULL;
	char *buf = NULL, *attr, *val, *w;
	const char *p;
	int r = X509_ERR_INVALID;

	if (text == NULL || out == NULL)
		goto out;
	r = X509_ERR_NAME;
	if (text[0] != '/')
		goto out;
	r = X509_ERR_NOMEM;
	/* Unescaping only shrinks, so a copy of the text's size is enough. */
	if ((buf = malloc(strlen(text) + 1)) == NULL || (name = X509_NAME_new()) == NULL)
		goto out;
	p = text;
	while (*p == '/') {
		p++;
		w = attr = buf;
		while (*p != '\0' && *p != '=' && *p != '/')
			*w++ = *p++;
		*w++ = '\0';
		r = X509_ERR_NAME;
		if (*p != '=' || attr[0] == '\0')
			goto out;
		p++;
		val = w;
		while (*p != '\0' && *p != '/') {
			if (*p == '\\') {
				if (p[1] == '\0')
					goto out;
				p++;
			}
			*w++ = *p++;
		}
		*w = '\0';
		if (val[0] == '\0')
			goto out;
		if (X509_NAME_add_entry_by_txt(name, attr, MBSTRING_UTF8,
		    (const unsigned char *)val, -1, -1, 0) != 1)
			goto out;
	}
	if (*p != '\0' || X509_NAME_entry_count(name) == 0)
		goto out;
	*out = name;
	name = NULL;
	r = X509_OK;
out:
	X509_NAME_free(name);
	free(buf);
	return r;
}

int
x509_name_der(const X509_NAME *name, unsigned char **der, size_t *len)
{
	unsigned char *p = NULL;
	int n;

	if (name == NULL || der == NULL || len == NULL)
		return X509_ERR_INVALID;
	n = i2d_X509_NAME(name, &p);
	return x509__der_take(p, n, der, len);
}

int
x509__hostname_valid(const char *name, size_t len)
{
	size_t i, label = 0;

	if (len == 0 || len > 253)
		return 0;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (c == '.') {
			/* Labels are non-empty and do not end with a hyphen. */
			if (label == 0 || name[i - 1] == '-')
				return 0;
			label = 0;
			continue;
		}
		if (!(isalnum(c) || (c == '-' && label > 0)) || c > 127)
			return 0;
		if (++label > 63)
			return 0;
	}
	return label > 0 && name[len - 1] != '-';
}

int
x509__name_below_zone(const char *name, size_t len, const char *zone)
{
	size_t zlen = strlen(zone);

	if (len <= zlen + 1 || name[len - zlen - 1] != '.')
		return 0;
	return strncasecmp(name + len - zlen, zone, zlen) == 0;
}

int
x509__zone_normalize(const char *zone, char *buf, size_t size)
{
	size_t len, i;

	if (zone == NULL)
		return X509_ERR_NAME;
	len = strlen(zone);
	if (len > 0 && zone[len - 1] == '.')
		len--;
	if (len + 1 > size || !x509__hostname_valid(zone, len))
		return X509_ERR_NAME;
	for (i = 0; i < len; i++)
		buf[i] = (char)tolower((unsigned char)zone[i]);
	buf[len] = '\0';
	return X509_OK;
}

int
x509_owner_name(uint64_t index, const char *device_id, const char *zone,
		char *buf, size_t size)
{
	char z[X509_OWNER_NAME_SIZE];
	/* Room for the longest index and id; the 253 limit is checked after. */
	char tmp[X509_OWNER_NAME_SIZE + 96];
	size_t i, idlen;
	int n, r;

	if (buf == NULL)
		return X509_ERR_INVALID;
	if (index == 0 || device_id == NULL)
		return X509_ERR_NAME;
	idlen = strlen(device_id);
	if (idlen == 0 || idlen > 63)
		return X509_ERR_NAME;
	for (i = 0; i < idlen; i++)
		if (!isdigit((unsigned char)device_id[i]) &&
		    !(device_id[i] >= 'a' && device_id[i] <= 'f'))
			return X509_ERR_NAME;
	if ((r = x509__zone_normalize(zone, z, sizeof(z))) != X509_OK)
		return r;
	n = snprintf(tmp, sizeof(tmp), "%" PRIu64 ".%s.%s", index, device_id, z);
	if (n < 0 || (size_t)n >= sizeof(tmp) || n > 253)
		return X509_ERR_NAME;
	if ((size_t)n >= size)
		return X509_ERR_INVALID;
	memcpy(buf, tmp, (size_t)n + 1);
	return X509_OK;
}

int
x509_sha256(const void *data, size_t len, unsigned char out[X509_DIGEST_LEN])
{
	unsigned int n = 0;

	if ((data == NULL && len > 0) || out == NULL)
		return X509_ERR_INVALID;
	if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 ||
	    n != X509_DIGEST_LEN)
		return X509_ERR_CRYPTO;
	return X509_OK;
}

int
x509_sha256_hex(const void *data, size_t len, char out[X509_HEX_SIZE])
{
	static const char hex[] = "0123456789abcdef";
	unsigned char md[X509_DIGEST_LEN];
	size_t i;
	int r;

	if (out == NULL)
		return X509_ERR_INVALID;
	if ((r = x509_sha256(data, len, md)) != X509_OK)
		return r;
	for (i = 0; i < X509_DIGEST_LEN; i++) {
		out[2 * i] = hex[md[i] >> 4];
		out[2 * i + 1] = hex[md[i] & 0x0f];
	}
	out[2 * X509_DIGEST_LEN] = '\0';
	return X509_OK;
}

/* Hex SHA-256 of an OpenSSL encoding that i2d just produced into @p der. */
static int
hex_of_encoding(unsigned char *der, int len, char out[X509_HEX_SIZE])
{
	int r = X509_ERR_CRYPTO;

	if (der != NULL && len > 0)
		r = x509_sha256_hex(der, (size_t)len, out);
	OPENSSL_free(der);
	return r;
}

int
x509_cert_fingerprint(const X509 *cert, char out[X509_HEX_SIZE])
{
	unsigned char *der = NULL;
	int n;

	if (cert == NULL || out == NULL)
		return X509_ERR_INVALID;
	n = i2d_X509(cert, &der);
	return hex_of_encoding(der, n, out);
}

int
x509_cert_spki_fingerprint(const X509 *cert, char out[X509_HEX_SIZE])
{
	unsigned char *der = NULL;
	int n;

	if (cert == NULL || out == NULL)
		return X509_ERR_INVALID;
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(cert), &der);
	return hex_of_encoding(der, n, out);
}

int
x509_pkey_spki_fingerprint(const EVP_PKEY *key, char out[X509_HEX_SIZE])
{
	unsigned char *der = NULL;
	int n;

	if (key == NULL || out == NULL)
		return X509_ERR_INVALID;
	n = i2d_PUBKEY(key, &der);
	return hex_of_encoding(der, n, out);
}

int
x509_cert_der(const X509 *cert, unsigned char **der, size_t *len)
{
	unsigned char *p = NULL;
	int n;

	if (cert == NULL || der == NULL || len == NULL)
		return X509_ERR_INVALID;
	n = i2d_X509(cert, &p);
	return x509__der_take(p, n, der, len);
}

int
x509_crl_der(const X509_CRL *crl, unsigned char **der, size_t *len)
{
	unsigned char *p = NULL;
	int n;

	if (crl == NULL || der == NULL || len == NULL)
		return X509_ERR_INVALID;
	n = i2d_X509_CRL(crl, &p);
	return x509__der_take(p, n, der, len);
}

int
x509__key_check_p256(const EVP_PKEY *key)
{
	char group[64], enc[64];

	if (key == NULL || !EVP_PKEY_is_a(key, "EC"))
		return X509_ERR_KEY;
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
	    group, sizeof(group), NULL) != 1 ||
	    strcmp(group, SN_X9_62_prime256v1) != 0)
		return X509_ERR_KEY;
	/*
	 * A key decoded from explicit parameters that happen to be P-256 still
	 * reports the group name; its encoding says what a certificate would
	 * carry, and RFC 5480 requires the named curve.
	 */
	if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_EC_ENCODING,
	    enc, sizeof(enc), NULL) == 1 &&
	    strcmp(enc, OSSL_PKEY_EC_ENCODING_GROUP) != 0)
		return X509_ERR_KEY;
	return X509_OK;
}

ASN1_TIME *
x509__time_new(int64_t t)
{
	/* RFC 5280 times run from 1950 to 9999; before 1970 is never needed. */
	if (t < 0 || t > INT64_C(253402300799))
		return NULL;
	return ASN1_TIME_set(NULL, (time_t)t);
}

int
x509__time_get(const ASN1_TIME *t, int64_t *out)
{
	struct tm tm;
	time_t s;

	memset(&tm, 0, sizeof(tm));
	if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
		return X509_ERR_CRYPTO;
	if ((s = timegm(&tm)) == (time_t)-1)
		return X509_ERR_CRYPTO;
	*out = (int64_t)s;
	return X509_OK;
}

ASN1_INTEGER *
x509__integer_new(const unsigned char *b, size_t len)
{
	ASN1_INTEGER *ai = NULL;
	BIGNUM *bn;

	if (b == NULL || len == 0 || len > 20)
		return NULL;
	if ((bn = BN_bin2bn(b, (int)len, NULL)) == NULL)
		return NULL;
	if (!BN_is_zero(bn))
		ai = BN_to_ASN1_INTEGER(bn, NULL);
	BN_free(bn);
	return ai;
}

int
x509__issuer_keyid(const X509 *issuer, const ASN1_OCTET_STRING **keyid)
{
	if (issuer == NULL)
		return X509_ERR_INVALID;
	if (x509__key_check_p256(X509_get0_pubkey(issuer)) != X509_OK)
		return X509_ERR_ISSUER;
	/* The getter caches extensions and so takes a non-const X509. */
	if ((*keyid = X509_get0_subject_key_id((X509 *)issuer)) == NULL)
		return X509_ERR_ISSUER;
	return X509_OK;
}

int
x509__spki_check_p256(const X509_ALGOR *palg, const ASN1_BIT_STRING *key,
		      char *detail, size_t size)
{
	const ASN1_OBJECT *alg = NULL, *curve;
	const void *pval = NULL;
	const unsigned char *d;
	char oid[80];
	int nid, ptype = 0, n;

	if (palg == NULL) {
		x509__detail(detail, size, "no subject public key");
		return X509_ERR_CSR_PARSE;
	}
	X509_ALGOR_get0(&alg, &ptype, &pval, palg);
	switch ((nid = OBJ_obj2nid(alg))) {
	case NID_rsaEncryption:
	case NID_rsassaPss:
		x509__detail(detail, size, "RSA key; only EC P-256 is allowed");
		return X509_ERR_CSR_KEY_RSA;
	case NID_ED25519:
	case NID_ED448:
		x509__detail(detail, size, "%s key; only EC P-256 is allowed", OBJ_nid2sn(nid));
		return X509_ERR_CSR_KEY_EDDSA;
	case NID_X9_62_id_ecPublicKey:
		break;
	default:
		OBJ_obj2txt(oid, sizeof(oid), alg, 1);
		x509__detail(detail, size, "key algorithm %s; only EC P-256 is allowed", oid);
		return X509_ERR_CSR_KEY_TYPE;
	}
	if (ptype == V_ASN1_SEQUENCE) {
		x509__detail(detail, size, "EC key with explicit curve parameters; "
		    "the named curve P-256 is required");
		return X509_ERR_CSR_KEY_EXPLICIT;
	}
	if (ptype != V_ASN1_OBJECT) {
		x509__detail(detail, size, "EC key without a named curve");
		return X509_ERR_CSR_KEY_CURVE;
	}
	curve = pval;
	if (OBJ_obj2nid(curve) != NID_X9_62_prime256v1) {
		OBJ_obj2txt(oid, sizeof(oid), curve, 0);
		x509__detail(detail, size, "EC key on curve %s; only P-256 is allowed", oid);
		return X509_ERR_CSR_KEY_CURVE;
	}
	if (key == NULL)
		return X509_OK;
	n = ASN1_STRING_length(key);
	d = ASN1_STRING_get0_data(key);
	if ((key->flags & ASN1_STRING_FLAG_BITS_LEFT) != 0 && (key->flags & 0x07) != 0)
		n = -1;
	if (!((n == 65 && d[0] == 0x04) || (n == 33 && (d[0] == 0x02 || d[0] == 0x03)))) {
		x509__detail(detail, size, "not a P-256 point encoding");
		return X509_ERR_CSR_PARSE;
	}
	return X509_OK;
}
