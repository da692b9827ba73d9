/*
 * The SoftHSM fixture itself: a token is made in a private directory, the pin
 * file is private, SOFTHSM2_CONF points at it, and free removes everything.
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

#include "tests/fixture/softhsm.h"

static void test_fixture_token(void **state)
{
	struct fixture_token t;
	struct stat st;
	char dir[PATH_MAX], pin[64];
	FILE *f;

	(void)state;
	assert_int_equal(fixture_token_new(&t, "fixture-test"), 0);
	assert_string_equal(getenv("SOFTHSM2_CONF"), t.conf);
	assert_int_equal(stat(t.pin_file, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(t.pin_file, "r");
	assert_non_null(f);
	assert_non_null(fgets(pin, sizeof(pin), f));
	fclose(f);
	assert_string_equal(pin, t.pin);
	assert_int_equal(strlen(t.pin), 16);
	assert_string_equal(t.uri, "pkcs11:token=fixture-test");

	/* The token exists: softhsm2-util finds it by label (exit 0), and an
	 * unknown label is refused (exit non-zero), so the check can fail. */
	{
		char *ok[] = { "softhsm2-util", "--show-slots", NULL };
		assert_int_equal(fixture_run(ok), 0);
	}
	{
		char *ok[] = { "pkcs11-tool", "--module", t.module, "--token-label",
		               "fixture-test", "--login", "--pin", t.pin,
		               "--list-objects", NULL };
		char *bad[] = { "pkcs11-tool", "--module", t.module, "--token-label",
		                "no-such-token", "--list-objects", NULL };
		assert_int_equal(fixture_run(ok), 0);
		assert_int_not_equal(fixture_run(bad), 0);
	}
	{
		char uri[256];
		assert_int_equal(fixture_token_key_uri(&t, "a b", uri, sizeof(uri)), 0);
		assert_string_equal(uri, "pkcs11:token=fixture-test;object=a%20b");
	}

	snprintf(dir, sizeof(dir), "%s", t.dir);
	fixture_token_free(&t);
	assert_int_not_equal(stat(dir, &st), 0);
	assert_null(getenv("SOFTHSM2_CONF"));
	fixture_token_free(&t); /* a freed fixture is a no-op */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fixture_token),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
