/*
 * Unit tests of signer/buf: bounds, sticky errors, string maxima, writer
 * growth and limits.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signer/buf.h"

static void test_reader_integers(void **state)
{
	static const uint8_t in[] = { 0x7f, 0x01, 0x02, 0x03, 0x04, 0x80, 0x00,
				      0x00, 0x00, 0x00, 0x00, 0x00, 0x2a };
	struct buf_reader r;
	uint8_t a;
	uint32_t b;
	uint64_t c;

	(void)state;
	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_reader_get_u8(&r, &a), BUF_OK);
	assert_int_equal(a, 0x7f);
	assert_int_equal(buf_reader_get_u32(&r, &b), BUF_OK);
	assert_int_equal(b, 0x01020304u);
	assert_int_equal(buf_reader_get_u64(&r, &c), BUF_OK);
	assert_true(c == 0x800000000000002aULL);
	assert_int_equal(buf_reader_remaining(&r), 0);
	assert_int_equal(buf_reader_end(&r), BUF_OK);
}

static void test_reader_sticky(void **state)
{
	static const uint8_t in[] = { 1, 2, 3, 4, 5, 6 };
	struct buf_reader r;
	uint32_t v = 99;
	uint8_t b = 99;
	const uint8_t *p = in;

	(void)state;
	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_reader_get_u32(&r, &v), BUF_OK);
	/* Two bytes remain: a u32 cannot be read, and after that even a u8
	 * that would fit must fail, with the first error kept. */
	assert_int_equal(buf_reader_get_u32(&r, &v), BUF_ERR_SHORT);
	assert_int_equal(v, 0);
	assert_int_equal(buf_reader_get_u8(&r, &b), BUF_ERR_SHORT);
	assert_int_equal(b, 0);
	assert_int_equal(buf_reader_get_bytes(&r, 0, &p), BUF_ERR_SHORT);
	assert_null(p);
	assert_int_equal(buf_reader_error(&r), BUF_ERR_SHORT);
	assert_int_equal(buf_reader_remaining(&r), 0);
	assert_int_equal(buf_reader_end(&r), BUF_ERR_SHORT);
}

static void test_reader_string_max(void **state)
{
	/* "abc" with a correct length, then a string claiming 5 bytes. */
	static const uint8_t in[] = { 0, 0, 0, 3, 'a', 'b', 'c', 0, 0, 0, 5, 'x', 'y' };
	struct buf_reader r;
	const uint8_t *p;
	size_t n;

	(void)state;
	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_reader_get_string(&r, 3, &p, &n), BUF_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(p, "abc", 3);
	assert_ptr_equal(p, in + 4); /* zero-copy */
	/* The length exceeds what remains: SHORT, and nothing handed out. */
	assert_int_equal(buf_reader_get_string(&r, 100, &p, &n), BUF_ERR_SHORT);
	assert_null(p);
	assert_int_equal(n, 0);

	/* Same input, maximum 2: the first string is refused as too long. */
	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_reader_get_string(&r, 2, &p, &n), BUF_ERR_TOO_LONG);
	assert_int_equal(buf_reader_get_string(&r, 100, &p, &n), BUF_ERR_TOO_LONG);
	assert_null(p);
}

static void test_reader_huge_length(void **state)
{
	/* A length of 4 GiB - 1 must be refused without touching memory. */
	static const uint8_t in[] = { 0xff, 0xff, 0xff, 0xff, 'z' };
	struct buf_reader r;
	const uint8_t *p;
	size_t n;

	(void)state;
	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_reader_get_string(&r, SIZE_MAX, &p, &n), BUF_ERR_SHORT);
	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_reader_get_string(&r, 1024, &p, &n), BUF_ERR_TOO_LONG);
}

static void test_reader_trailing(void **state)
{
	static const uint8_t in[] = { 0, 0, 0, 0, 0, 9 };
	struct buf_reader r;
	const uint8_t *p;
	size_t n;

	(void)state;
	buf_reader_init(&r, in, sizeof(in));
	assert_int_equal(buf_reader_get_string(&r, 10, &p, &n), BUF_OK);
	assert_int_equal(n, 0);
	assert_int_equal(buf_reader_remaining(&r), 2);
	assert_int_equal(buf_reader_end(&r), BUF_ERR_TRAILING);
	/* TRAILING is sticky too. */
	assert_int_equal(buf_reader_error(&r), BUF_ERR_TRAILING);
	assert_int_equal(buf_reader_get_bytes(&r, 1, &p), BUF_ERR_TRAILING);
}

static void test_reader_empty(void **state)
{
	struct buf_reader r;
	uint8_t b;

	(void)state;
	buf_reader_init(&r, NULL, 10);
	assert_int_equal(buf_reader_remaining(&r), 0);
	assert_int_equal(buf_reader_get_u8(&r, &b), BUF_ERR_SHORT);
}

static void test_writer_basic(void **state)
{
	static const uint8_t want[] = { 0x11, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 0, 0, 0, 1, 0,
					0, 0, 0, 2, 'h', 'i' };
	struct buf_writer w;
	uint8_t *out;
	size_t len;

	(void)state;
	buf_writer_init(&w, 1024);
	assert_null(buf_writer_data(&w));
	assert_int_equal(buf_writer_put_u8(&w, 0x11), BUF_OK);
	assert_int_equal(buf_writer_put_u32(&w, 0xdeadbeef), BUF_OK);
	assert_int_equal(buf_writer_put_u64(&w, 256), BUF_OK);
	assert_int_equal(buf_writer_put_string(&w, "hi", 2), BUF_OK);
	assert_int_equal(buf_writer_len(&w), sizeof(want));
	assert_memory_equal(buf_writer_data(&w), want, sizeof(want));

	assert_int_equal(buf_writer_patch_u32(&w, 1, 0x01020304), BUF_OK);
	assert_int_equal(buf_writer_data(&w)[1], 1);
	assert_int_equal(buf_writer_data(&w)[4], 4);
	/* A patch that would reach past the end is refused. */
	assert_int_equal(buf_writer_patch_u32(&w, sizeof(want) - 3, 0), BUF_ERR_SHORT);

	assert_int_equal(buf_writer_take(&w, &out, &len), BUF_OK);
	assert_int_equal(len, sizeof(want));
	assert_int_equal(out[0], 0x11);
	assert_int_equal(buf_writer_len(&w), 0);
	free(out);
	buf_writer_release(&w);
}

static void test_writer_limit_sticky(void **state)
{
	struct buf_writer w;
	uint8_t *out;
	size_t len;

	(void)state;
	buf_writer_init(&w, 8);
	assert_int_equal(buf_writer_put_u32(&w, 1), BUF_OK);
	assert_int_equal(buf_writer_put_u32(&w, 2), BUF_OK);
	assert_int_equal(buf_writer_put_u8(&w, 3), BUF_ERR_LIMIT);
	assert_int_equal(buf_writer_len(&w), 8);
	/* Sticky: even an empty put fails, and nothing is handed over. */
	assert_int_equal(buf_writer_put_bytes(&w, NULL, 0), BUF_ERR_LIMIT);
	assert_int_equal(buf_writer_take(&w, &out, &len), BUF_ERR_LIMIT);
	assert_null(out);
	buf_writer_reset(&w);
	assert_int_equal(buf_writer_error(&w), BUF_OK);
	assert_int_equal(buf_writer_len(&w), 0);
	assert_int_equal(buf_writer_put_u8(&w, 3), BUF_OK);
	buf_writer_release(&w);
}

static void test_writer_growth_truncate(void **state)
{
	struct buf_writer w;
	uint8_t block[1000];

	(void)state;
	memset(block, 0xa5, sizeof(block));
	buf_writer_init(&w, 1 << 20);
	for (int i = 0; i < 500; i++)
		assert_int_equal(buf_writer_put_bytes(&w, block, sizeof(block)), BUF_OK);
	assert_int_equal(buf_writer_len(&w), 500000);
	assert_int_equal(buf_writer_data(&w)[499999], 0xa5);
	buf_writer_truncate(&w, 10);
	assert_int_equal(buf_writer_len(&w), 10);
	buf_writer_truncate(&w, 20); /* never grows */
	assert_int_equal(buf_writer_len(&w), 10);
	buf_writer_release(&w);
	buf_writer_release(&w); /* twice is harmless */
}

static void test_strerror(void **state)
{
	(void)state;
	assert_string_equal(buf_strerror(BUF_OK), "success");
	assert_string_not_equal(buf_strerror(BUF_ERR_SHORT), buf_strerror(BUF_ERR_TOO_LONG));
	assert_non_null(buf_strerror(-1000));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reader_integers),
		cmocka_unit_test(test_reader_sticky),
		cmocka_unit_test(test_reader_string_max),
		cmocka_unit_test(test_reader_huge_length),
		cmocka_unit_test(test_reader_trailing),
		cmocka_unit_test(test_reader_empty),
		cmocka_unit_test(test_writer_basic),
		cmocka_unit_test(test_writer_limit_sticky),
		cmocka_unit_test(test_writer_growth_truncate),
		cmocka_unit_test(test_strerror),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
