/*
 * libregsign-hsm against a fresh SoftHSM token per test: opening and its
 * refusals, the PIN file, key generation and lookup, the key attribute policy,
 * signatures in both formats checked with OpenSSL, random bytes, status.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "pkcs11/hsm.h"
#include "pkcs11/hsm_uri.h"
#include "tests/fixture/softhsm.h"
#include "tests/unit/test_hsm_util.h"

static int setup(void **state)
{
	struct fixture_token *t = calloc(1, sizeof(*t));

	if (t == NULL || fixture_token_new(t, "hsm-test") != 0)
		return -1;
	*state = t;
	return 0;
}

static int teardown(void **state)
{
	fixture_token_free(*state);
	free(*state);
	return 0;
}

static void write_text(const char *path, const char *text, mode_t mode)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(chmod(path, mode), 0);
}

static void test_open_and_sign(void **state)
{
	struct fixture_token *t = *state;
	unsigned char id[16], digest[32], sig[HSM_SIG_MAX], *spki = NULL;
	const unsigned char *p;
	char uri[512];
	size_t siglen, spki_len;
	struct hsm_key_info info;
	struct hsm_status st;
	EVP_PKEY *pkey;
	hsm_t *h = NULL;
	int k = -1, k2 = -1;

	assert_int_equal(hsmt_open(t, NULL, 2, 1000, &h), 0);
	assert_int_equal(hsm_keygen_ec(h, "zsk", id), 0);
	hsmt_key_uri(t, "zsk", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "zsk", uri, &k), 0);
	assert_int_equal(k, 0);
	assert_int_equal(hsm_key_find(h, "zsk", &k2), 0);
	assert_int_equal(k2, k);
	assert_int_equal(hsm_key_find(h, "ksk", &k2), HSM_ERR_KEY_NOT_FOUND);
	/* A role is registered once. */
	assert_int_equal(hsm_key_add(h, "zsk", uri, &k2), HSM_ERR_ARG);

	assert_int_equal(hsm_key_info(h, k, &info), 0);
	assert_string_equal(info.role, "zsk");
	assert_string_equal(info.label, "zsk");
	assert_int_equal(info.id_len, 16);
	assert_memory_equal(info.id, id, 16);
	assert_int_equal(info.curve_bits, 256);
	assert_int_equal(info.digest_len, 32);
	assert_int_equal(info.raw_sig_len, 64);

	assert_int_equal(hsm_key_public(h, k, &spki, &spki_len), 0);
	p = spki;
	pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	assert_non_null(pkey);
	assert_true(EVP_PKEY_is_a(pkey, "EC"));
	assert_int_equal(EVP_PKEY_get_bits(pkey), 256);
	EVP_PKEY_free(pkey);

	hsmt_sign_check(h, k);

	/* A signature over one digest does not verify over another: the
	 * verification above can fail. */
	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	siglen = sizeof(sig);
	assert_int_equal(hsm_sign(h, k, digest, 32, HSM_SIG_RAW, sig, &siglen), 0);
	digest[0] ^= 1;
	assert_false(hsmt_verify(spki, spki_len, digest, 32, sig, siglen, true));
	digest[0] ^= 1;
	sig[10] ^= 0x40;
	assert_false(hsmt_verify(spki, spki_len, digest, 32, sig, siglen, true));

	/* Wrong digest length, unknown key, short buffer. */
	siglen = sizeof(sig);
	assert_int_equal(hsm_sign(h, k, digest, 20, HSM_SIG_RAW, sig, &siglen), HSM_ERR_ARG);
	assert_non_null(strstr(hsm_last_error(h), "digest"));
	assert_int_equal(hsm_sign(h, 5, digest, 32, HSM_SIG_RAW, sig, &siglen), HSM_ERR_ARG);
	assert_int_equal(hsm_sign(h, -1, digest, 32, HSM_SIG_RAW, sig, &siglen), HSM_ERR_ARG);
	siglen = 10;
	assert_int_equal(hsm_sign(h, k, digest, 32, HSM_SIG_RAW, sig, &siglen), HSM_ERR_ARG);
	siglen = 10;
	assert_int_equal(hsm_sign(h, k, digest, 32, HSM_SIG_DER, sig, &siglen), HSM_ERR_ARG);

	assert_int_equal(hsm_status_get(h, &st), 0);
	assert_int_equal(st.state, HSM_STATE_UP);
	assert_int_equal(st.nkeys, 1);
	assert_int_equal(st.sessions, 2);
	assert_int_equal(st.recoveries, 0);
	assert_int_equal(st.signatures[k], 3); /* two in sign_check, one above */
	assert_string_equal(hsm_state_name(st.state), "up");
	free(spki);
	hsm_close(h);
	hsm_close(NULL);
}

static void test_keygen_attributes(void **state)
{
	struct fixture_token *t = *state;
	unsigned char id1[16], id2[16], buf[64];
	unsigned char p256[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	struct hsmt_raw raw;
	CK_OBJECT_HANDLE priv, pub;
	CK_ATTRIBUTE a;
	bool exists = true;
	hsm_t *h = NULL;

	assert_int_equal(hsmt_open(t, NULL, 1, 1000, &h), 0);
	assert_int_equal(hsm_object_exists(h, "ksk", &exists), 0);
	assert_false(exists);
	assert_int_equal(hsm_keygen_ec(h, "ksk", id1), 0);
	assert_int_equal(hsm_object_exists(h, "ksk", &exists), 0);
	assert_true(exists);
	assert_int_equal(hsm_keygen_ec(h, "ksk", id2), HSM_ERR_KEY_EXISTS);
	assert_int_equal(hsm_keygen_ec(h, "ksk2", id2), 0);
	assert_memory_not_equal(id1, id2, 16);
	hsm_close(h);

	hsmt_raw_open(&raw, t);
	priv = hsmt_raw_find(&raw, CKO_PRIVATE_KEY, "ksk");
	pub = hsmt_raw_find(&raw, CKO_PUBLIC_KEY, "ksk");
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_TOKEN), CK_TRUE);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_PRIVATE), CK_TRUE);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_SENSITIVE), CK_TRUE);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_ALWAYS_SENSITIVE), CK_TRUE);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_EXTRACTABLE), CK_FALSE);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_NEVER_EXTRACTABLE), CK_TRUE);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_SIGN), CK_TRUE);
	assert_int_equal(hsmt_raw_bool(&raw, pub, CKA_TOKEN), CK_TRUE);
	assert_int_equal(hsmt_raw_bool(&raw, pub, CKA_VERIFY), CK_TRUE);
	a = (CK_ATTRIBUTE){ CKA_ID, buf, sizeof(buf) };
	assert_int_equal(raw.f->C_GetAttributeValue(raw.s, priv, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 16);
	assert_memory_equal(buf, id1, 16);
	a = (CK_ATTRIBUTE){ CKA_ID, buf, sizeof(buf) };
	assert_int_equal(raw.f->C_GetAttributeValue(raw.s, pub, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, 16);
	assert_memory_equal(buf, id1, 16);
	a = (CK_ATTRIBUTE){ CKA_EC_PARAMS, buf, sizeof(buf) };
	assert_int_equal(raw.f->C_GetAttributeValue(raw.s, pub, &a, 1), CKR_OK);
	assert_int_equal(a.ulValueLen, sizeof(p256));
	assert_memory_equal(buf, p256, sizeof(p256));
	/* The private value stays inside: the token refuses to give it out. */
	a = (CK_ATTRIBUTE){ CKA_VALUE, buf, sizeof(buf) };
	assert_int_equal(raw.f->C_GetAttributeValue(raw.s, priv, &a, 1),
	                 CKR_ATTRIBUTE_SENSITIVE);
	hsmt_raw_close(&raw);
}

static void test_key_lookup(void **state)
{
	struct fixture_token *t = *state;
	unsigned char ida[2] = { 0xa1, 0x01 }, idb[2] = { 0xb2, 0x02 };
	char uri[512];
	struct hsmt_raw raw;
	hsm_t *h = NULL;
	int k = -1;

	hsmt_raw_open(&raw, t);
	hsmt_raw_keypair(&raw, "twin", ida, 2, true, false, NULL, NULL);
	hsmt_raw_keypair(&raw, "twin", idb, 2, true, false, NULL, NULL);
	hsmt_raw_keypair(&raw, "solo", idb, 1, true, false, NULL, NULL);
	hsmt_raw_close(&raw);

	assert_int_equal(hsmt_open(t, NULL, 1, 1000, &h), 0);
	/* Two private keys share the label: which one is meant is unknown. */
	hsmt_key_uri(t, "twin", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "a", uri, &k), HSM_ERR_KEY_AMBIGUOUS);
	assert_non_null(strstr(hsm_last_error(h), "more than one"));
	/* Label and id together pick one; so does the id alone. */
	hsmt_key_uri(t, "twin", ida, 2, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "a", uri, &k), 0);
	hsmt_sign_check(h, k);
	hsmt_key_uri(t, NULL, idb, 2, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "b", uri, &k), 0);
	hsmt_sign_check(h, k);
	/* Label plus type=private. */
	assert_int_equal(fixture_token_key_uri(t, "solo", uri, sizeof(uri)), 0);
	strcat(uri, ";type=private");
	assert_int_equal(hsm_key_add(h, "c", uri, &k), 0);
	hsmt_sign_check(h, k);
	/* Nothing matches. */
	hsmt_key_uri(t, "nobody", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "d", uri, &k), HSM_ERR_KEY_NOT_FOUND);
	hsmt_key_uri(t, "twin", (const unsigned char *)"\x77", 1, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "d", uri, &k), HSM_ERR_KEY_NOT_FOUND);
	/* Key URIs are checked: PIN in the URI, another token, public type. */
	assert_int_equal(hsm_key_add(h, "d", "pkcs11:token=hsm-test;object=solo?pin-value=1234",
	                             &k), HSM_ERR_URI);
	assert_null(strstr(hsm_last_error(h), "1234"));
	assert_int_equal(hsm_key_add(h, "d", "pkcs11:token=other;object=solo", &k),
	                 HSM_ERR_URI);
	assert_int_equal(hsm_key_add(h, "d", "pkcs11:token=hsm-test;object=solo;type=public",
	                             &k), HSM_ERR_URI);
	assert_int_equal(hsm_key_add(h, "d", "pkcs11:token=hsm-test", &k), HSM_ERR_URI);
	hsm_close(h);
}

static void test_key_attribute_refusals(void **state)
{
	struct fixture_token *t = *state;
	unsigned char id[1];
	char uri[512];
	struct hsmt_raw raw;
	CK_OBJECT_HANDLE priv;
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE a = { CKA_EXTRACTABLE, &no, sizeof(no) };
	hsm_t *h = NULL;
	int k = -1;

	hsmt_raw_open(&raw, t);
	id[0] = 1;
	hsmt_raw_keypair(&raw, "extractable", id, 1, true, true, NULL, NULL);
	id[0] = 2;
	hsmt_raw_keypair(&raw, "plain", id, 1, false, false, NULL, NULL);
	/* Extractable once, then made unextractable: CKA_NEVER_EXTRACTABLE
	 * stays false, because the key may have been copied out meanwhile. */
	id[0] = 3;
	hsmt_raw_keypair(&raw, "was-extractable", id, 1, true, true, NULL, &priv);
	assert_int_equal(raw.f->C_SetAttributeValue(raw.s, priv, &a, 1), CKR_OK);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_EXTRACTABLE), CK_FALSE);
	assert_int_equal(hsmt_raw_bool(&raw, priv, CKA_NEVER_EXTRACTABLE), CK_FALSE);
	id[0] = 4;
	hsmt_raw_keypair(&raw, "good", id, 1, true, false, NULL, NULL);
	hsmt_raw_close(&raw);

	assert_int_equal(hsmt_open(t, NULL, 1, 1000, &h), 0);
	hsmt_key_uri(t, "extractable", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "x", uri, &k), HSM_ERR_KEY_ATTRS);
	assert_non_null(strstr(hsm_last_error(h), "CKA_EXTRACTABLE is true"));
	hsmt_key_uri(t, "plain", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "x", uri, &k), HSM_ERR_KEY_ATTRS);
	assert_non_null(strstr(hsm_last_error(h), "CKA_SENSITIVE is false"));
	hsmt_key_uri(t, "was-extractable", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "x", uri, &k), HSM_ERR_KEY_ATTRS);
	assert_non_null(strstr(hsm_last_error(h), "CKA_NEVER_EXTRACTABLE is false"));
	/* The refusals left no key behind, and a good key is still accepted. */
	hsmt_key_uri(t, "good", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "x", uri, &k), 0);
	assert_int_equal(k, 0);
	hsm_close(h);
}

static void test_key_pairing(void **state)
{
	struct fixture_token *t = *state;
	unsigned char ida[1] = { 0x0a }, idb[1] = { 0x0b };
	char uri[512];
	struct hsmt_raw raw;
	CK_OBJECT_HANDLE puba, pubb, pubc;
	CK_ATTRIBUTE a = { CKA_ID, ida, 1 };
	hsm_t *h = NULL;
	int k = -1;

	/* Key a's public key object is replaced by key b's public key under
	 * a's id: the token pairs them, the signature check must not. */
	hsmt_raw_open(&raw, t);
	hsmt_raw_keypair(&raw, "a", ida, 1, true, false, &puba, NULL);
	hsmt_raw_keypair(&raw, "b", idb, 1, true, false, &pubb, NULL);
	hsmt_raw_keypair(&raw, "nopub", (const unsigned char *)"\x0c", 1, true, false,
	                 &pubc, NULL);
	assert_int_equal(raw.f->C_DestroyObject(raw.s, pubc), CKR_OK);
	assert_int_equal(raw.f->C_DestroyObject(raw.s, puba), CKR_OK);
	assert_int_equal(raw.f->C_SetAttributeValue(raw.s, pubb, &a, 1), CKR_OK);
	hsmt_raw_close(&raw);

	assert_int_equal(hsmt_open(t, NULL, 1, 1000, &h), 0);
	hsmt_key_uri(t, "a", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "a", uri, &k), HSM_ERR_KEY_MISMATCH);
	assert_non_null(strstr(hsm_last_error(h), "does not match"));
	hsmt_key_uri(t, "nopub", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(h, "n", uri, &k), HSM_ERR_KEY_NOT_FOUND);
	assert_non_null(strstr(hsm_last_error(h), "public key"));
	hsm_close(h);
}

static void test_pin_file(void **state)
{
	struct fixture_token *t = *state;
	char good[64], path[PATH_MAX + 16], err[256];
	struct hsm_config cfg = {
		.module_path = t->module, .token_uri = t->uri, .pin_file = path,
		.sessions = 1, .recover_timeout_ms = 100, .errbuf = err,
		.errbuf_len = sizeof(err),
	};
	hsm_t *h = NULL;

	snprintf(path, sizeof(path), "%s/pin2", t->dir);
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_PIN_FILE); /* missing */
	assert_null(h);
	assert_non_null(strstr(err, "pin2"));
	write_text(path, "", 0600);
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_PIN_FILE); /* empty */
	assert_non_null(strstr(err, "empty"));
	write_text(path, "\n", 0600);
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_PIN_FILE); /* only a newline */
	snprintf(good, sizeof(good), "%s\n", t->pin);
	write_text(path, good, 0644);
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_PIN_FILE); /* readable by all */
	assert_non_null(strstr(err, "others"));
	assert_null(strstr(err, t->pin));
	{
		char big[400];
		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		write_text(path, big, 0600);
		assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_PIN_FILE); /* too long */
	}
	/* With a final newline (as editors write it) the PIN works. */
	write_text(path, good, 0640);
	assert_int_equal(hsm_open(&cfg, &h), 0);
	hsm_close(h);
}

static void test_wrong_pin_one_login(void **state)
{
	struct fixture_token *t = *state;
	char control[PATH_MAX + 32], err[256];
	struct hsm_config cfg = {
		.module_path = hsmt_fault_module(), .token_uri = t->uri,
		.pin_file = t->pin_file, .sessions = 3, .recover_timeout_ms = 2000,
		.errbuf = err, .errbuf_len = sizeof(err),
	};
	hsm_t *h = NULL;
	unsigned long before;

	hsmt_fault_setup(t, control, sizeof(control));
	write_text(t->pin_file, "0000", 0600);
	before = hsmt_fault_stat(control, "C_Login");
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_PIN);
	assert_null(h);
	assert_non_null(strstr(err, "CKR_PIN_INCORRECT"));
	/* Exactly one attempt: a retried wrong PIN walks towards a lock. */
	assert_int_equal(hsmt_fault_stat(control, "C_Login") - before, 1);
	/* A locked PIN is an HSM_ERR_PIN as well, after one attempt. */
	write_text(t->pin_file, t->pin, 0600);
	hsmt_fault_write(control, "count *\nC_Login CKR_PIN_LOCKED 1\n");
	before = hsmt_fault_stat(control, "C_Login");
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_PIN);
	assert_int_equal(hsmt_fault_stat(control, "C_Login") - before, 1);
	/* The right PIN: one login for the whole pool of three sessions. */
	before = hsmt_fault_stat(control, "C_Login");
	assert_int_equal(hsm_open(&cfg, &h), 0);
	assert_int_equal(hsmt_fault_stat(control, "C_Login") - before, 1);
	hsm_close(h);
}

static void test_open_refusals(void **state)
{
	struct fixture_token *t = *state;
	char err[256];
	struct hsm_config cfg = {
		.module_path = t->module, .token_uri = t->uri, .pin_file = t->pin_file,
		.sessions = 1, .recover_timeout_ms = 100, .errbuf = err,
		.errbuf_len = sizeof(err),
	};
	hsm_t *h = NULL;

	cfg.token_uri = "pkcs11:token=no-such-token";
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_TOKEN);
	assert_non_null(strstr(err, "no token"));
	cfg.token_uri = "pkcs11:token=hsm-test?pin-value=1234";
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_URI);
	assert_null(strstr(err, "1234"));
	cfg.token_uri = "pkcs11:token=hsm-test;object=foo";
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_URI);
	cfg.token_uri = "file:///etc/passwd";
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_URI);
	/* "pkcs11:" names every token: SoftHSM also shows its empty slot, but
	 * only initialised tokens count, so the one token is found. */
	cfg.token_uri = "pkcs11:";
	assert_int_equal(hsm_open(&cfg, &h), 0);
	hsm_close(h);
	h = NULL;
	cfg.token_uri = t->uri;
	cfg.module_path = "libsofthsm2.so";
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_MODULE);
	cfg.module_path = "/nonexistent/module.so";
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_MODULE);
	cfg.module_path = t->module;
	cfg.sessions = 0;
	assert_int_equal(hsm_open(&cfg, &h), HSM_ERR_ARG);
	assert_int_equal(hsm_open(NULL, &h), HSM_ERR_ARG);
	assert_null(h);
}

static void test_random(void **state)
{
	struct fixture_token *t = *state;
	unsigned char a[32], b[32], zero[32];
	hsm_t *h = NULL;

	memset(a, 0, sizeof(a));
	memset(b, 0, sizeof(b));
	memset(zero, 0, sizeof(zero));
	assert_int_equal(hsmt_open(t, NULL, 1, 1000, &h), 0);
	assert_int_equal(hsm_random(h, a, sizeof(a)), 0);
	assert_int_equal(hsm_random(h, b, sizeof(b)), 0);
	assert_memory_not_equal(a, zero, sizeof(a));
	assert_memory_not_equal(a, b, sizeof(a));
	assert_int_equal(hsm_random(h, a, 0), HSM_ERR_ARG);
	hsm_close(h);
}

static void test_strerror(void **state)
{
	(void)state;
	for (int e = HSM_OK; e >= HSM_ERR_FULL; e--)
		assert_string_not_equal(hsm_strerror(e), "unknown error");
	assert_string_equal(hsm_strerror(-1000), "unknown error");
	assert_string_equal(hsm_strerror(HSM_ERR_PIN), "PIN refused by the token");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_and_sign, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keygen_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_attribute_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_pairing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_pin_one_login, setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random, setup, teardown),
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
