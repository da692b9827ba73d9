/* signer/json.c: the JSON string escaper of regsignd's replies and the CLI. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signer/json.h"

struct sink {
	char buf[512];
	size_t len;
	unsigned calls;
};

static void put(void *ctx, const void *p, size_t n)
{
	struct sink *s = ctx;

	assert_true(s->len + n < sizeof(s->buf));
	memcpy(s->buf + s->len, p, n);
	s->len += n;
	s->buf[s->len] = '\0';
	s->calls++;
}

/* @p in written through the callback must give exactly @p want. */
static void expect(const char *in, const char *want)
{
	struct sink s = { .len = 0 };

	json_string_write(in, put, &s);
	assert_string_equal(s.buf, want);
}

static void test_escapes(void **state)
{
	(void)state;
	expect("", "\"\"");
	expect("plain text", "\"plain text\"");
	expect("a\"b", "\"a\\\"b\"");
	expect("back\\slash", "\"back\\\\slash\"");
	/* Controls take the long form, lower-case hex, never \n or \t. */
	expect("l1\nl2\tx\r", "\"l1\\u000al2\\u0009x\\u000d\"");
	expect("\x01\x1f", "\"\\u0001\\u001f\"");
	/* 0x7f and UTF-8 are copied as they are. */
	expect("\x7f" "caf\xc3\xa9", "\"\x7f" "caf\xc3\xa9\"");
}

static void test_runs(void **state)
{
	struct sink s = { .len = 0 };

	(void)state;
	/* Quote, one run, escape, one run, quote: five calls, not one a byte. */
	json_string_write("abcdef\"ghijkl", put, &s);
	assert_string_equal(s.buf, "\"abcdef\\\"ghijkl\"");
	assert_int_equal(s.calls, 5);
}

static void test_fput(void **state)
{
	const char *in = "x\"y\\z\n\xe2\x82\xac";
	struct sink s = { .len = 0 };
	char *mem = NULL;
	size_t memlen = 0;
	FILE *f = open_memstream(&mem, &memlen);

	(void)state;
	assert_non_null(f);
	json_string_fput(in, f);
	assert_int_equal(fclose(f), 0);
	/* The stream gets the same bytes as the callback. */
	json_string_write(in, put, &s);
	assert_int_equal(memlen, s.len);
	assert_memory_equal(mem, s.buf, s.len);
	free(mem);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escapes),
		cmocka_unit_test(test_runs),
		cmocka_unit_test(test_fput),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
