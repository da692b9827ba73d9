#include "tests/unit/test_hsm_support.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/core_names.h>

uint16_t ths_key_tag(EVP_PKEY *k, uint16_t flags)
{
	uint8_t rd[3 + 65]; /* DNSKEY RDATA: 4 bytes, then x||y (64) */
	size_t n = 0;
	uint32_t ac = 0;

	assert_true(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                            rd + 3, 65, &n));
	assert_int_equal(n, 65);
	rd[0] = (uint8_t)(flags >> 8);
	rd[1] = (uint8_t)flags;
	rd[2] = 3;
	rd[3] = 13;
	for (size_t i = 0; i < sizeof(rd); i++)
		ac += (i & 1) ? rd[i] : (uint32_t)rd[i] << 8;
	ac += ac >> 16;
	return (uint16_t)ac;
}

size_t ths_name_wire(const char *name, uint8_t *out)
{
	size_t n = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t ll = dot ? (size_t)(dot - name) : strlen(name);

		out[n++] = (uint8_t)ll;
		memcpy(out + n, name, ll);
		n += ll;
		name += ll + (dot ? 1 : 0);
	}
	out[n++] = 0;
	return n;
}

/* The return value is checked, which is also what keeps -Wformat-truncation
 * quiet in -O0 builds. */
void ths_path_in(char *out, size_t size, const char *dir, const char *name)
{
	int n = snprintf(out, size, "%s/%s", dir, name);

	assert_true(n > 0 && (size_t)n < size);
}

static void on_timeout(uv_timer_t *t)
{
	fail_msg("timed out waiting on %s", (const char *)t->data);
}

void ths_run_until(uv_loop_t *loop, const int *flag, int want, const char *what)
{
	uv_timer_t timer;

	uv_timer_init(loop, &timer);
	timer.data = (void *)what;
	uv_timer_start(&timer, on_timeout, 120000, 0);
	while (*flag < want)
		uv_run(loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
}
