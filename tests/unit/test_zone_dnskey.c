/* Tests of zonesigner/zone_dnskey: DNSKEY and DS records of P-256 keys. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include "zonesigner/zone_ldns.h"
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "test_zone_support.h"
#include "zonesigner/zone_dnskey.h"
#include "zonesigner/zone_err.h"

/* RFC 6605 section 6.1: a KSK of example.net. and its SHA-256 DS. */
static const char rfc6605_key_b64[] =
	"GojIhhXUN/u4v54ZQqGSnyhWJwaubCvTmeexv7bR6edbkrSqQpF64cYbcB7wNcP+e+MAnLr+Wi9xMWyQLc8NAA==";
static const char rfc6605_ds_hex[] =
	"b4c8c1fe2e7477127b27115656ad6256f424625bf5c1e2770ce6d6e37df61d17";

static size_t spki_of(EVP_PKEY *k, uint8_t **der)
{
	int n = i2d_PUBKEY(k, der);

	assert_true(n > 0);
	return (size_t)n;
}

/* Collapse runs of blanks so that tab- and space-separated records compare. */
static void squeeze(char *s)
{
	char *w = s;
	int blank = 0;

	for (char *p = s; *p; p++) {
		if (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r') {
			blank = 1;
			continue;
		}
		if (blank && w != s)
			*w++ = ' ';
		blank = 0;
		*w++ = (char)(*p >= 'A' && *p <= 'Z' ? *p - 'A' + 'a' : *p);
	}
	*w = '\0';
}

static void test_rfc6605_vector(void **state)
{
	uint8_t rd[ZONE_DNSKEY_RDATA_LEN] = { 0x01, 0x01, 3, 13 };
	struct zone_dnskey k;
	uint8_t dig[32];
	char hex[65];
	size_t n = 0;

	(void)state;
	assert_int_equal(EVP_DecodeBlock(rd + 4, (const unsigned char *)rfc6605_key_b64,
					 (int)strlen(rfc6605_key_b64)), 66);
	n = 68;
	assert_int_equal(zone_dnskey_from_rdata(rd, n, &k), 0);
	assert_int_equal(k.flags, 257);
	assert_int_equal(k.key_tag, 55648);
	assert_int_equal(zone_dnskey_ds_digest(&k, "example.net.", dig), 0);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", dig[i]);
	assert_string_equal(hex, rfc6605_ds_hex);
	/* The owner name is case-insensitive: the digest uses its canonical form. */
	assert_int_equal(zone_dnskey_ds_digest(&k, "EXAMPLE.Net.", dig), 0);
	for (int i = 0; i < 32; i++)
		sprintf(hex + 2 * i, "%02x", dig[i]);
	assert_string_equal(hex, rfc6605_ds_hex);
	/* Wrong protocol, algorithm or length are refused. */
	rd[3] = 8;
	assert_int_equal(zone_dnskey_from_rdata(rd, 68, &k), ZONE_EFORMAT);
	rd[3] = 13;
	rd[2] = 2;
	assert_int_equal(zone_dnskey_from_rdata(rd, 68, &k), ZONE_EFORMAT);
	rd[2] = 3;
	assert_int_equal(zone_dnskey_from_rdata(rd, 67, &k), ZONE_EFORMAT);
}

static void test_spki_pkey_agree(void **state)
{
	EVP_PKEY *key = tzs_p256_new();
	uint8_t *der = NULL;
	size_t len = spki_of(key, &der);
	struct zone_dnskey a, b;
	uint8_t rd[68];
	char *text = NULL;
	ldns_rr *rr = NULL;

	(void)state;
	assert_int_equal(zone_dnskey_from_spki(der, len, 256, &a), 0);
	assert_int_equal(zone_dnskey_from_pkey(key, 256, &b), 0);
	assert_memory_equal(&a, &b, sizeof(a));
	zone_dnskey_rdata(&a, rd);
	assert_int_equal(rd[0] << 8 | rd[1], 256);
	/* The text form parses back with ldns to the same key and key tag. */
	assert_int_equal(zone_dnskey_rr_text(&a, "iotregistry.test.", 3600, &text), 0);
	assert_int_equal(ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL), LDNS_STATUS_OK);
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_DNSKEY);
	assert_int_equal(ldns_calc_keytag(rr), a.key_tag);
	assert_int_equal(ldns_rr_ttl(rr), 3600);
	assert_int_equal(ldns_rdf_size(ldns_rr_rdf(rr, 3)), 64);
	assert_memory_equal(ldns_rdf_data(ldns_rr_rdf(rr, 3)), a.pubkey, 64);
	ldns_rr_free(rr);
	free(text);
	OPENSSL_free(der);
	EVP_PKEY_free(key);
}

static void test_refusals(void **state)
{
	EVP_PKEY *p384 = EVP_EC_gen("P-384");
	EVP_PKEY *ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	EVP_PKEY *p256 = tzs_p256_new();
	uint8_t *der = NULL, junk[3] = { 0x30, 0x01, 0x00 };
	size_t len;
	struct zone_dnskey k;
	char *s = NULL;

	(void)state;
	assert_non_null(p384);
	assert_non_null(ed);
	assert_int_equal(zone_dnskey_from_pkey(p384, 257, &k), ZONE_EKEY);
	assert_int_equal(zone_dnskey_from_pkey(ed, 257, &k), ZONE_EKEY);
	assert_int_equal(zone_dnskey_from_pkey(p256, 258, &k), ZONE_EINVAL);
	assert_int_equal(zone_dnskey_from_pkey(p256, 0, &k), ZONE_EINVAL);
	assert_int_equal(zone_dnskey_from_spki(junk, sizeof(junk), 257, &k), ZONE_EINVAL);
	len = spki_of(p256, &der);
	/* Truncated and trailing-garbage DER are refused. */
	assert_int_equal(zone_dnskey_from_spki(der, len - 1, 257, &k), ZONE_EINVAL);
	der = OPENSSL_realloc(der, len + 1);
	der[len] = 0;
	assert_int_equal(zone_dnskey_from_spki(der, len + 1, 257, &k), ZONE_EINVAL);
	assert_int_equal(zone_dnskey_from_spki(der, len, 257, &k), 0);
	assert_int_equal(zone_dnskey_rr_text(&k, "relative", 3600, &s), ZONE_EINVAL);
	assert_null(s);
	assert_int_equal(zone_dnskey_ds_text(&k, "a..b.", 3600, &s), ZONE_EINVAL);
	assert_null(s);
	OPENSSL_free(der);
	EVP_PKEY_free(p384);
	EVP_PKEY_free(ed);
	EVP_PKEY_free(p256);
}

/* The DS we make must be what ldns-key2ds and BIND's dnssec-dsfromkey make. */
static void test_ds_against_tools(void **state)
{
	char *dir = tzs_tmpdir();
	char *path = NULL, *cmd = NULL, *out = NULL, *dnskey = NULL, *ds = NULL;
	FILE *f;
	struct zone_dnskey k;
	EVP_PKEY *key;

	(void)state;
	tzs_require_tool("ldns-key2ds");
	tzs_require_tool("dnssec-dsfromkey");
	for (int round = 0; round < 4; round++) {
		key = tzs_p256_new();
		assert_int_equal(zone_dnskey_from_pkey(key, round % 2 ? 256 : 257, &k), 0);
		assert_int_equal(zone_dnskey_rr_text(&k, "IoTRegistry.test.", 3600, &dnskey), 0);
		assert_int_equal(zone_dnskey_ds_text(&k, "IoTRegistry.test.", 3600, &ds), 0);
		assert_true(asprintf(&path, "%s/K%d.key", dir, round) > 0);
		f = fopen(path, "w");
		assert_non_null(f);
		fputs(dnskey, f);
		fclose(f);

		assert_true(asprintf(&cmd, "ldns-key2ds -f -n -2 '%s'", path) > 0);
		assert_int_equal(tzs_run(cmd, &out), 0);
		squeeze(out);
		squeeze(ds);
		assert_string_equal(out, ds);
		free(cmd);
		free(out);

		assert_true(asprintf(&cmd, "dnssec-dsfromkey -A -2 -f '%s' iotregistry.test.", path) > 0);
		assert_int_equal(tzs_run(cmd, &out), 0);
		squeeze(out);
		/* BIND prints no TTL: compare everything after the owner name. */
		char want[512];
		const char *rest = strstr(ds, " in ds ");
		assert_non_null(rest);
		snprintf(want, sizeof(want), "iotregistry.test.%s", rest);
		assert_string_equal(out, want);
		free(cmd);
		free(out);
		free(path);
		free(dnskey);
		free(ds);
		EVP_PKEY_free(key);
	}
	tzs_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc6605_vector),
		cmocka_unit_test(test_spki_pkey_agree),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_ds_against_tools),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
