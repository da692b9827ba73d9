/*
 * test_csr.c - csr_parse: what a device CSR must be, and each refusal with
 * its own error. CSRs are made here with OpenSSL from fresh keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "signer/csr.h"
#include "signer/x509.h"

static unsigned char *
make_csr(EVP_PKEY *key, const EVP_MD *md, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int n;

	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"device", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	assert_true(X509_REQ_sign(req, key, md) > 0);
	n = i2d_X509_REQ(req, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	X509_NAME_free(name);
	X509_REQ_free(req);
	return der;
}

/* P-256 as explicit parameters: the same curve, the wrong encoding. */
static EVP_PKEY *
explicit_p256_key(void)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	OSSL_PARAM params[3];
	EVP_PKEY *k = NULL;

	assert_non_null(ctx);
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    (char *)"P-256", 0);
	params[1] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_EC_ENCODING,
	    (char *)OSSL_PKEY_EC_ENCODING_EXPLICIT, 0);
	params[2] = OSSL_PARAM_construct_end();
	assert_int_equal(EVP_PKEY_keygen_init(ctx), 1);
	assert_int_equal(EVP_PKEY_CTX_set_params(ctx, params), 1);
	assert_int_equal(EVP_PKEY_keygen(ctx, &k), 1);
	EVP_PKEY_CTX_free(ctx);
	return k;
}

static int
parse(const unsigned char *der, size_t len, char *detail)
{
	EVP_PKEY *k = NULL;
	unsigned char *spki = NULL;
	size_t spki_len = 0;
	int r;

	r = csr_parse(der, len, &k, &spki, &spki_len, detail, X509_DETAIL_SIZE);
	if (r != X509_OK) {
		/* Nothing is handed out on failure, and the reason is given. */
		assert_null(k);
		assert_null(spki);
		assert_true(detail[0] != '\0');
	}
	EVP_PKEY_free(k);
	free(spki);
	return r;
}

static void
test_good(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-256"), *got = NULL;
	unsigned char *der, *spki = NULL, *want = NULL;
	size_t len, spki_len = 0;
	char detail[X509_DETAIL_SIZE];
	int n;

	(void)state;
	der = make_csr(key, EVP_sha256(), &len);
	assert_int_equal(csr_parse(der, len, &got, &spki, &spki_len, detail,
	    sizeof(detail)), X509_OK);
	assert_non_null(got);
	assert_int_equal(EVP_PKEY_eq(got, key), 1);
	n = i2d_PUBKEY(key, &want);
	assert_int_equal((size_t)n, spki_len);
	assert_memory_equal(spki, want, spki_len);
	/* Outputs are optional. */
	assert_int_equal(csr_parse(der, len, NULL, NULL, NULL, NULL, 0), X509_OK);
	OPENSSL_free(want);
	free(spki);
	EVP_PKEY_free(got);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void
test_key_types(void **state)
{
	EVP_PKEY *rsa = EVP_RSA_gen(2048);
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *expl = explicit_p256_key();
	unsigned char *der;
	size_t len;
	char detail[X509_DETAIL_SIZE];

	(void)state;
	assert_non_null(rsa);
	assert_non_null(p384);
	assert_non_null(ed);

	der = make_csr(rsa, EVP_sha256(), &len);
	assert_int_equal(parse(der, len, detail), X509_ERR_CSR_KEY_RSA);
	assert_non_null(strstr(detail, "RSA"));
	OPENSSL_free(der);

	der = make_csr(p384, EVP_sha256(), &len);
	assert_int_equal(parse(der, len, detail), X509_ERR_CSR_KEY_CURVE);
	assert_non_null(strstr(detail, "secp384r1"));
	OPENSSL_free(der);

	der = make_csr(ed, NULL, &len);
	assert_int_equal(parse(der, len, detail), X509_ERR_CSR_KEY_EDDSA);
	assert_non_null(strstr(detail, "ED25519"));
	OPENSSL_free(der);

	/* The CSR is otherwise valid: OpenSSL itself accepts its signature. */
	der = make_csr(expl, EVP_sha256(), &len);
	{
		const unsigned char *p = der;
		X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);

		assert_non_null(req);
		assert_int_equal(X509_REQ_verify(req, X509_REQ_get0_pubkey(req)), 1);
		X509_REQ_free(req);
	}
	assert_int_equal(parse(der, len, detail), X509_ERR_CSR_KEY_EXPLICIT);
	assert_non_null(strstr(detail, "explicit"));
	OPENSSL_free(der);

	EVP_PKEY_free(rsa);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(expl);
}

/* A point off the curve (y changed) and a compressed point. */
static void
test_points(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-256"), *got = NULL;
	unsigned char *der, *hit, pt[65], *spki = NULL, *want = NULL;
	size_t len, ptlen = 0, spki_len = 0;
	char detail[X509_DETAIL_SIZE];
	int n;

	(void)state;
	der = make_csr(key, EVP_sha256(), &len);
	assert_int_equal(EVP_PKEY_get_octet_string_param(key,
	    OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, pt, sizeof(pt), &ptlen), 1);
	assert_int_equal(ptlen, 65);
	assert_non_null(hit = memmem(der, len, pt, ptlen));
	hit[64] ^= 0x01;
	assert_int_equal(parse(der, len, detail), X509_ERR_CSR_PARSE);
	assert_non_null(strstr(detail, "not a point on the curve"));
	OPENSSL_free(der);

	assert_int_equal(EVP_PKEY_set_utf8_string_param(key,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), 1);
	der = make_csr(key, EVP_sha256(), &len);
	assert_int_equal(csr_parse(der, len, &got, &spki, &spki_len, detail,
	    sizeof(detail)), X509_OK);
	assert_int_equal(EVP_PKEY_eq(got, key), 1);
	/* The compressed SubjectPublicKeyInfo is returned, and kept by the key. */
	n = i2d_PUBKEY(key, &want);
	assert_int_equal((size_t)n, spki_len);
	assert_true(spki_len < 65);
	assert_memory_equal(spki, want, spki_len);
	OPENSSL_free(want);
	want = NULL;
	n = i2d_PUBKEY(got, &want);
	assert_int_equal((size_t)n, spki_len);
	assert_memory_equal(spki, want, spki_len);
	OPENSSL_free(want);
	free(spki);
	EVP_PKEY_free(got);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void
test_bad_signature(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	unsigned char *der;
	size_t len;
	char detail[X509_DETAIL_SIZE];

	(void)state;
	der = make_csr(key, EVP_sha256(), &len);
	/* The last byte is inside s of the signature: flipping it keeps DER. */
	der[len - 1] ^= 0x01;
	assert_int_equal(parse(der, len, detail), X509_ERR_CSR_SIGNATURE);
	OPENSSL_free(der);
	/* A valid ECDSA-with-SHA1 signature is refused too. */
	der = make_csr(key, EVP_sha1(), &len);
	assert_int_equal(parse(der, len, detail), X509_ERR_CSR_SIGNATURE);
	assert_non_null(strstr(detail, "algorithm"));
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

/* Write at @p p the header of a SEQUENCE of @p len content bytes, minimal
 * (for len < 65536) unless @p pad, and return the header's size. */
static size_t
seq_header(unsigned char *p, size_t len, int pad)
{
	p[0] = 0x30;
	if (pad) {
		/* Three length bytes where at most two are needed. */
		p[1] = 0x83;
		p[2] = (unsigned char)(len >> 16);
		p[3] = (unsigned char)(len >> 8);
		p[4] = (unsigned char)len;
		return 5;
	}
	if (len < 128) {
		p[1] = (unsigned char)len;
		return 2;
	}
	if (len < 256) {
		p[1] = 0x81;
		p[2] = (unsigned char)len;
		return 3;
	}
	p[1] = 0x82;
	p[2] = (unsigned char)(len >> 8);
	p[3] = (unsigned char)len;
	return 4;
}

/* Size of the DER header at @p p (short or long form). */
static size_t
header_size(const unsigned char *p)
{
	return (p[1] & 0x80) ? 2 + (size_t)(p[1] & 0x7f) : 2;
}

/* Content length of the DER TLV at @p p (short form or up to 2 bytes). */
static size_t
content_size(const unsigned char *p)
{
	if (!(p[1] & 0x80))
		return p[1];
	if (p[1] == 0x81)
		return p[2];
	assert_int_equal(p[1], 0x82);
	return ((size_t)p[2] << 8) | p[3];
}

static void
test_encoding(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-256");
	unsigned char *der, *buf;
	const unsigned char *body;
	size_t len, oh, ih, ilen, rest, n;
	char detail[X509_DETAIL_SIZE];

	(void)state;
	der = make_csr(key, EVP_sha256(), &len);
	buf = calloc(1, CSR_DER_MAX + 16);
	assert_non_null(buf);

	/* Trailing garbage. */
	memcpy(buf, der, len);
	buf[len] = 0x00;
	assert_int_equal(parse(buf, len + 1, detail), X509_ERR_CSR_TRAILING);

	/* Oversized, checked before anything is parsed. */
	memcpy(buf, der, len);
	assert_int_equal(parse(buf, CSR_DER_MAX + 1, detail), X509_ERR_CSR_TOO_LARGE);

	/* Not a CSR at all, and a truncated one. */
	assert_int_equal(parse((const unsigned char *)"hello", 5, detail), X509_ERR_CSR_PARSE);
	assert_int_equal(parse(der, len - 1, detail), X509_ERR_CSR_PARSE);

	/* BER: the outer SEQUENCE with a non-minimal length. */
	oh = header_size(der);
	n = seq_header(buf, len - oh, 1);
	memcpy(buf + n, der + oh, len - oh);
	assert_int_equal(parse(buf, n + len - oh, detail), X509_ERR_CSR_NOT_DER);
	assert_non_null(strstr(detail, "BER"));

	/* BER inside: the request info with a non-minimal length, the outer
	 * length correct. The signature no longer matters: DER comes first. */
	body = der + oh;
	ih = header_size(body);
	ilen = content_size(body);
	rest = (len - oh) - ih - ilen;	/* algorithm and signature */
	n = seq_header(buf, 5 + ilen + rest, 0);
	n += seq_header(buf + n, ilen, 1);
	memcpy(buf + n, body + ih, ilen + rest);
	assert_int_equal(parse(buf, n + ilen + rest, detail), X509_ERR_CSR_NOT_DER);

	assert_int_equal(csr_parse(NULL, 0, NULL, NULL, NULL, detail, sizeof(detail)),
	    X509_ERR_INVALID);
	free(buf);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

/* A small deterministic generator, so that a failure can be replayed. */
static uint32_t
next_rand(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

/*
 * CSRs come from outside: thousands of damaged ones must each get a defined
 * answer (under ASan: no memory error). Damage anywhere but in unused bits
 * breaks either the DER or the signature, so none may be accepted unless the
 * key it returns is still the original one.
 */
static void
test_mutations(void **state)
{
	EVP_PKEY *key = EVP_EC_gen("P-256"), *got;
	unsigned char *der, *buf;
	size_t len, n, pos;
	uint32_t st = 0x2545f491;
	int i, r;

	(void)state;
	der = make_csr(key, EVP_sha256(), &len);
	assert_non_null(buf = malloc(len + 1));
	for (i = 0; i < 5000; i++) {
		pos = next_rand(&st) % len;
		memcpy(buf, der, len);
		n = len;
		switch (next_rand(&st) % 3) {
		case 0:
			buf[pos] = (unsigned char)next_rand(&st);
			break;
		case 1:
			n = pos;
			break;
		default:
			memmove(buf + pos + 1, buf + pos, len - pos);
			buf[pos] = (unsigned char)next_rand(&st);
			n = len + 1;
			break;
		}
		got = NULL;
		r = csr_parse(buf, n, &got, NULL, NULL, NULL, 0);
		if (r == X509_OK) {
			/* Only a no-op change (same byte written) can pass. */
			assert_int_equal(n, len);
			assert_memory_equal(buf, der, len);
			assert_int_equal(EVP_PKEY_eq(got, key), 1);
		} else {
			/* A CSR refusal, or "invalid" for zero bytes. */
			if (!(r <= X509_ERR_CSR_TOO_LARGE && r >= X509_ERR_CSR_KEY_TYPE) &&
			    !(n == 0 && r == X509_ERR_INVALID))
				fail_msg("mutation %d (len %zu): %s", i, n, x509_strerror(r));
			assert_null(got);
		}
		EVP_PKEY_free(got);
	}
	free(buf);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_points),
		cmocka_unit_test(test_bad_signature),
		cmocka_unit_test(test_encoding),
		cmocka_unit_test(test_mutations),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
