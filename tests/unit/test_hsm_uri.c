/*
 * pkcs11/hsm_uri: RFC 7512 URIs as regsign accepts them. No token needed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>
#include <p11-kit/uri.h>

#include "pkcs11/hsm.h"
#include "pkcs11/hsm_uri.h"

static void test_token_uris(void **state)
{
	char err[256];

	(void)state;
	assert_int_equal(hsm_uri_check("pkcs11:token=regsign", HSM_URI_TOKEN, err,
	                               sizeof(err)), 0);
	assert_string_equal(err, "");
	assert_int_equal(hsm_uri_check("pkcs11:token=regsign;manufacturer=SoftHSM%20project;"
	                               "serial=0123;model=SoftHSM%20v2", HSM_URI_TOKEN,
	                               err, sizeof(err)), 0);
	assert_int_equal(hsm_uri_check("pkcs11:slot-id=3;token=a", HSM_URI_TOKEN, NULL, 0), 0);
	assert_int_equal(hsm_uri_check("pkcs11:library-manufacturer=SoftHSM;token=a",
	                               HSM_URI_TOKEN, NULL, 0), 0);

	/* Refusals, each with a reason that never repeats the PIN. */
	assert_int_equal(hsm_uri_check("pkcs11:token=a?pin-value=s3cret", HSM_URI_TOKEN,
	                               err, sizeof(err)), HSM_ERR_URI);
	assert_non_null(strstr(err, "pin-value"));
	assert_null(strstr(err, "s3cret"));
	assert_int_equal(hsm_uri_check("pkcs11:token=a?pin-source=file:/etc/pin",
	                               HSM_URI_TOKEN, err, sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:token=a?module-path=/tmp/evil.so",
	                               HSM_URI_TOKEN, err, sizeof(err)), HSM_ERR_URI);
	assert_non_null(strstr(err, "module"));
	assert_int_equal(hsm_uri_check("pkcs11:token=a?module-name=evil", HSM_URI_TOKEN,
	                               err, sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:token=a;object=k", HSM_URI_TOKEN, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:token=a;bogus=1", HSM_URI_TOKEN, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:token=a%zz", HSM_URI_TOKEN, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("http://example.test/", HSM_URI_TOKEN, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("", HSM_URI_TOKEN, err, sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check(NULL, HSM_URI_TOKEN, err, sizeof(err)), HSM_ERR_ARG);
}

static void test_key_uris(void **state)
{
	struct hsm_uri *u = NULL;
	const unsigned char *id;
	size_t len = 99;
	char err[256];

	(void)state;
	assert_int_equal(hsm_uri_parse("pkcs11:token=regsign;object=regsign-zsk;"
	                               "id=%01%ab;type=private", HSM_URI_KEY, &u, err,
	                               sizeof(err)), 0);
	assert_string_equal(hsm_uri_label(u), "regsign-zsk");
	id = hsm_uri_id(u, &len);
	assert_int_equal(len, 2);
	assert_memory_equal(id, "\x01\xab", 2);
	hsm_uri_free(u);
	u = NULL;

	assert_int_equal(hsm_uri_parse("pkcs11:object=a%20b", HSM_URI_KEY, &u, err,
	                               sizeof(err)), 0);
	assert_string_equal(hsm_uri_label(u), "a b");
	assert_null(hsm_uri_id(u, &len));
	assert_int_equal(len, 0);
	hsm_uri_free(u);
	u = NULL;
	hsm_uri_free(NULL);

	assert_int_equal(hsm_uri_check("pkcs11:id=%02", HSM_URI_KEY, err, sizeof(err)), 0);
	/* No object named, a public or secret key, a PIN, an empty label. */
	assert_int_equal(hsm_uri_check("pkcs11:token=a", HSM_URI_KEY, err, sizeof(err)),
	                 HSM_ERR_URI);
	assert_non_null(strstr(err, "object"));
	assert_int_equal(hsm_uri_check("pkcs11:object=k;type=public", HSM_URI_KEY, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:object=k;type=secret-key", HSM_URI_KEY, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:object=k?pin-value=1", HSM_URI_KEY, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:object=", HSM_URI_KEY, err, sizeof(err)),
	                 HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:object=a%00b", HSM_URI_KEY, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_check("pkcs11:object=k;nonsense=1", HSM_URI_KEY, err,
	                               sizeof(err)), HSM_ERR_URI);
	assert_int_equal(hsm_uri_parse("pkcs11:object=k", 7, &u, err, sizeof(err)),
	                 HSM_ERR_ARG);
	assert_null(u);
}

static void test_match_token(void **state)
{
	struct hsm_uri *u = NULL;
	CK_INFO mi;
	CK_SLOT_INFO si;
	CK_TOKEN_INFO ti;

	(void)state;
	memset(&mi, ' ', sizeof(mi));
	memset(&si, ' ', sizeof(si));
	memset(&ti, ' ', sizeof(ti));
	memcpy(ti.label, "regsign", 7);
	memcpy(ti.serialNumber, "42", 2);
	assert_int_equal(hsm_uri_parse("pkcs11:token=regsign", HSM_URI_TOKEN, &u, NULL, 0), 0);
	assert_true(hsm_uri_match_token(u, &mi, 5, &si, &ti));
	memcpy(ti.label, "regsigX", 7);
	assert_false(hsm_uri_match_token(u, &mi, 5, &si, &ti));
	memcpy(ti.label, "regsign", 7);
	hsm_uri_free(u);
	u = NULL;
	assert_int_equal(hsm_uri_parse("pkcs11:token=regsign;serial=43", HSM_URI_TOKEN, &u,
	                               NULL, 0), 0);
	assert_false(hsm_uri_match_token(u, &mi, 5, &si, &ti));
	hsm_uri_free(u);
	u = NULL;
	assert_int_equal(hsm_uri_parse("pkcs11:slot-id=5", HSM_URI_TOKEN, &u, NULL, 0), 0);
	assert_true(hsm_uri_match_token(u, &mi, 5, &si, &ti));
	assert_false(hsm_uri_match_token(u, &mi, 6, &si, &ti));
	hsm_uri_free(u);
}

static void test_build(void **state)
{
	unsigned char id[3] = { 0x00, 0x7f, 0xff };
	struct hsm_uri *u = NULL;
	const unsigned char *got;
	size_t len = 0;
	char *s;

	(void)state;
	s = hsm_uri_key_build("regsign dev", "regsign;zsk", id, sizeof(id));
	assert_non_null(s);
	/* What it builds, it parses back to the same names. */
	assert_int_equal(hsm_uri_parse(s, HSM_URI_KEY, &u, NULL, 0), 0);
	assert_string_equal(hsm_uri_label(u), "regsign;zsk");
	got = hsm_uri_id(u, &len);
	assert_int_equal(len, 3);
	assert_memory_equal(got, id, 3);
	assert_non_null(strstr(s, "token=regsign%20dev"));
	assert_non_null(strstr(s, "type=private"));
	hsm_uri_free(u);
	free(s);
	s = hsm_uri_key_build(NULL, "zsk", NULL, 0);
	assert_non_null(s);
	assert_null(strstr(s, "token="));
	assert_null(strstr(s, "id="));
	free(s);
	assert_null(hsm_uri_key_build("t", "", NULL, 0));
	assert_null(hsm_uri_key_build("0123456789012345678901234567890123", "k", NULL, 0));
}

/* Mutated URIs (random bytes, cut, spliced) never crash the parser, and
 * whatever it accepts keeps regsign's rules: a key URI names an object, and
 * no accepted URI carries a PIN. Run under ASan in CI, this is the parser's
 * small in-tree fuzz test. */
static void test_mutations(void **state)
{
	static const char *const seeds[] = {
		"pkcs11:token=regsign;object=regsign-zsk;id=%01%02;type=private",
		"pkcs11:token=a?pin-value=1234",
		"pkcs11:object=k?pin-source=file:/p",
		"pkcs11:slot-id=1;library-version=2.40;token=x",
		"pkcs11:id=%ff",
	};
	char buf[128];
	unsigned char rnd[8];

	(void)state;
	for (int i = 0; i < 20000; i++) {
		const char *seed = seeds[i % 5];
		size_t len = strlen(seed);
		struct hsm_uri *u = NULL;
		enum hsm_uri_kind kind = (i / 5) % 2 ? HSM_URI_KEY : HSM_URI_TOKEN;

		assert_int_equal(RAND_bytes(rnd, sizeof(rnd)), 1);
		memcpy(buf, seed, len + 1);
		switch (rnd[0] % 4) {
		case 0: /* flip one byte to anything but NUL */
			buf[rnd[1] % len] = (char)(rnd[2] | 1);
			break;
		case 1: /* cut */
			buf[rnd[1] % (len + 1)] = '\0';
			break;
		case 2: /* splice another seed's tail */
			snprintf(buf + rnd[1] % len, sizeof(buf) - rnd[1] % len, "%s",
			         seeds[rnd[2] % 5] + rnd[3] % 8);
			break;
		default: /* three random bytes */
			for (int k = 0; k < 3; k++)
				buf[rnd[1 + k] % len] = (char)(rnd[4 + k] | 1);
			break;
		}
		if (hsm_uri_parse(buf, kind, &u, NULL, 0) == 0) {
			/* p11-kit itself, asked directly, finds no PIN in it
			 * ("pin-value=" may well be part of a label). */
			P11KitUri *raw = p11_kit_uri_new();
			assert_int_equal(p11_kit_uri_parse(buf, P11_KIT_URI_FOR_ANY, raw),
			                 P11_KIT_URI_OK);
			if (p11_kit_uri_get_pin_value(raw) != NULL ||
			    p11_kit_uri_get_pin_source(raw) != NULL)
				fail_msg("accepted a URI with a PIN: %s", buf);
			p11_kit_uri_free(raw);
			if (kind == HSM_URI_KEY) {
				size_t idl;
				assert_true(hsm_uri_label(u) != NULL ||
				            hsm_uri_id(u, &idl) != NULL);
			}
		}
		hsm_uri_free(u);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_token_uris),
		cmocka_unit_test(test_key_uris),
		cmocka_unit_test(test_match_token),
		cmocka_unit_test(test_build),
		cmocka_unit_test(test_mutations),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
