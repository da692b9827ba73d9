/*
 * Tests of signer/hsmproto: round trips of every message, and refusals of truncated,
 * oversized, lying and unknown input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signer/hsmproto.h"

/* Decodes the header at the start of b and returns a pointer to the body. */
static const uint8_t *split(const struct hsmproto_buf *b, struct hsmproto_header *h)
{
	assert_true(b->len >= HSMPROTO_HEADER_LEN);
	assert_int_equal(hsmproto_header_decode(b->data, h), HSMPROTO_OK);
	assert_int_equal(b->len, HSMPROTO_HEADER_LEN + h->length);
	return b->data + HSMPROTO_HEADER_LEN;
}

static void put32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void test_sign_roundtrip(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_sign_req in[3], *out = NULL;
	struct hsmproto_header h;
	const uint8_t *body;
	uint8_t big[1000];

	(void)state;
	memset(in, 0, sizeof(in));
	memset(big, 0xab, sizeof(big));
	strcpy(in[0].role, "zsk");
	in[0].kind = HSMPROTO_KIND_RRSIG_DATA;
	in[0].format = HSMPROTO_FORMAT_RAW;
	in[0].data = (const uint8_t *)"abc";
	in[0].len = 3;
	strcpy(in[1].role, "issuing-ca");
	in[1].kind = HSMPROTO_KIND_TBS_CERT;
	in[1].format = HSMPROTO_FORMAT_DER;
	in[1].data = big;
	in[1].len = sizeof(big);
	strcpy(in[2].role, "asp.test./ksk");
	in[2].kind = HSMPROTO_KIND_CHECKPOINT;
	in[2].format = HSMPROTO_FORMAT_RAW;
	in[2].data = (const uint8_t *)"x";
	in[2].len = 1;
	assert_int_equal(hsmproto_sign_req_encode(&b, 77, in, 3), HSMPROTO_OK);
	body = split(&b, &h);
	assert_int_equal(h.type, HSMPROTO_SIGN);
	assert_int_equal(h.id, 77);
	assert_int_equal(h.count, 3);
	assert_int_equal(hsmproto_sign_req_decode(&h, body, &out), HSMPROTO_OK);
	for (int i = 0; i < 3; i++) {
		assert_string_equal(out[i].role, in[i].role);
		assert_int_equal(out[i].kind, in[i].kind);
		assert_int_equal(out[i].format, in[i].format);
		assert_int_equal(out[i].len, in[i].len);
		assert_memory_equal(out[i].data, in[i].data, in[i].len);
		/* Zero copy: data points into the body. */
		assert_true(out[i].data >= body && out[i].data < body + h.length);
	}
	free(out);
	hsmproto_buf_free(&b);
}

static void test_results_roundtrip(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_result in[3], *out = NULL;
	struct hsmproto_header h;
	const uint8_t *body;
	uint8_t sig[64];

	(void)state;
	memset(in, 0, sizeof(in));
	memset(sig, 7, sizeof(sig));
	in[0].status = HSMPROTO_ST_OK;
	in[0].value = sig;
	in[0].value_len = sizeof(sig);
	in[1].status = HSMPROTO_ST_REFUSED;
	strcpy(in[1].reason, "role zsk (a ZSK) may not sign the DNSKEY RRset");
	in[2].status = HSMPROTO_ST_UNAVAILABLE;
	strcpy(in[2].reason, "HSM down");
	assert_int_equal(hsmproto_results_encode(&b, HSMPROTO_SIGN_REPLY, 5, in, 3), HSMPROTO_OK);
	body = split(&b, &h);
	assert_int_equal(h.type, HSMPROTO_SIGN_REPLY);
	assert_int_equal(hsmproto_results_decode(&h, body, &out), HSMPROTO_OK);
	assert_int_equal(out[0].status, HSMPROTO_ST_OK);
	assert_int_equal(out[0].value_len, 64);
	assert_memory_equal(out[0].value, sig, 64);
	assert_string_equal(out[0].reason, "");
	assert_int_equal(out[1].status, HSMPROTO_ST_REFUSED);
	assert_string_equal(out[1].reason, in[1].reason);
	assert_int_equal(out[1].value_len, 0);
	assert_int_equal(out[2].status, HSMPROTO_ST_UNAVAILABLE);
	assert_string_equal(out[2].reason, "HSM down");
	free(out);
	hsmproto_buf_free(&b);

	/* A failure carrying a value is refused at encode time. */
	in[1].value = sig;
	in[1].value_len = 3;
	assert_int_equal(hsmproto_results_encode(&b, HSMPROTO_SIGN_REPLY, 5, in, 3),
	                 HSMPROTO_ERR_ARG);
	assert_int_equal(b.len, 0);
	hsmproto_buf_free(&b);
}

static void test_small_messages(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_header h;
	const uint8_t *body;
	char role[HSMPROTO_MAX_ROLE + 1];
	uint32_t n;

	(void)state;
	assert_int_equal(hsmproto_pubkey_req_encode(&b, 9, "audit"), HSMPROTO_OK);
	body = split(&b, &h);
	assert_int_equal(hsmproto_pubkey_req_decode(&h, body, role), HSMPROTO_OK);
	assert_string_equal(role, "audit");
	/* The wrong decoder for the type is refused. */
	assert_int_equal(hsmproto_random_req_decode(&h, body, &n), HSMPROTO_ERR_TYPE);
	hsmproto_buf_free(&b);

	assert_int_equal(hsmproto_random_req_encode(&b, 10, 32), HSMPROTO_OK);
	body = split(&b, &h);
	assert_int_equal(hsmproto_random_req_decode(&h, body, &n), HSMPROTO_OK);
	assert_int_equal(n, 32);
	hsmproto_buf_free(&b);
	assert_int_equal(hsmproto_random_req_encode(&b, 10, HSMPROTO_MAX_RANDOM + 1),
	                 HSMPROTO_ERR_ARG);
	hsmproto_buf_free(&b);

	assert_int_equal(hsmproto_status_req_encode(&b, 11), HSMPROTO_OK);
	body = split(&b, &h);
	assert_int_equal(h.length, 0);
	assert_int_equal(hsmproto_status_req_decode(&h, body), HSMPROTO_OK);
	hsmproto_buf_free(&b);

	/* Bad roles are refused by the encoder: upper case, empty, too long. */
	assert_int_equal(hsmproto_pubkey_req_encode(&b, 1, "ZSK"), HSMPROTO_ERR_ARG);
	hsmproto_buf_free(&b);
	assert_int_equal(hsmproto_pubkey_req_encode(&b, 1, ""), HSMPROTO_ERR_ARG);
	hsmproto_buf_free(&b);
	memset(role, 'a', HSMPROTO_MAX_ROLE);
	role[HSMPROTO_MAX_ROLE] = '\0';
	assert_true(hsmproto_role_valid(role));
	{
		char longer[HSMPROTO_MAX_ROLE + 2];

		memset(longer, 'a', HSMPROTO_MAX_ROLE + 1);
		longer[HSMPROTO_MAX_ROLE + 1] = '\0';
		assert_false(hsmproto_role_valid(longer));
	}
}

static void test_status_roundtrip(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_role_status roles[2];
	struct hsmproto_status in = { 0 }, out;
	struct hsmproto_header h;
	const uint8_t *body;

	(void)state;
	memset(roles, 0, sizeof(roles));
	strcpy(roles[0].role, "zsk");
	roles[0].signatures = 123456789012ull;
	roles[0].refused = 3;
	memset(roles[0].fingerprint, 0x11, 32);
	strcpy(roles[1].role, "issuing-ca");
	roles[1].signatures = 1;
	memset(roles[1].fingerprint, 0x22, 32);
	in.state = HSMPROTO_STATE_RECOVERING;
	in.recoveries = 4;
	in.key_copies = 6;
	in.key_copies_refused = 0x100000002ull;
	in.sign_prepared = 0x300000004ull;
	in.n_roles = 2;
	in.roles = roles;
	assert_int_equal(hsmproto_status_encode(&b, 3, &in), HSMPROTO_OK);
	body = split(&b, &h);
	assert_int_equal(hsmproto_status_decode(&h, body, &out), HSMPROTO_OK);
	assert_int_equal(out.state, HSMPROTO_STATE_RECOVERING);
	assert_int_equal(out.recoveries, 4);
	assert_int_equal(out.key_copies, 6);
	assert_int_equal(out.key_copies_refused, 0x100000002ull);
	assert_int_equal(out.sign_prepared, 0x300000004ull);
	assert_int_equal(out.n_roles, 2);
	assert_string_equal(out.roles[0].role, "zsk");
	assert_int_equal(out.roles[0].signatures, 123456789012ull);
	assert_int_equal(out.roles[0].refused, 3);
	assert_memory_equal(out.roles[1].fingerprint, roles[1].fingerprint, 32);
	hsmproto_status_clear(&out);
	hsmproto_status_clear(NULL);
	hsmproto_buf_free(&b);
}

static void test_header_refusals(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_header h;
	uint8_t hdr[HSMPROTO_HEADER_LEN];

	(void)state;
	assert_int_equal(hsmproto_status_req_encode(&b, 1), HSMPROTO_OK);
	memcpy(hdr, b.data, sizeof(hdr));
	hsmproto_buf_free(&b);
	assert_int_equal(hsmproto_header_decode(hdr, &h), HSMPROTO_OK);

	hdr[0] = 2; /* version */
	assert_int_equal(hsmproto_header_decode(hdr, &h), HSMPROTO_ERR_VERSION);
	hdr[0] = HSMPROTO_VERSION;
	hdr[1] = 0x42; /* unknown type */
	assert_int_equal(hsmproto_header_decode(hdr, &h), HSMPROTO_ERR_TYPE);
	hdr[1] = HSMPROTO_STATUS;
	hdr[3] = 1; /* reserved bits */
	assert_int_equal(hsmproto_header_decode(hdr, &h), HSMPROTO_ERR_VALUE);
	hdr[3] = 0;
	put32(hdr + 12, HSMPROTO_MAX_BODY + 1); /* oversized body, refused before allocating */
	assert_int_equal(hsmproto_header_decode(hdr, &h), HSMPROTO_ERR_TOO_BIG);
	put32(hdr + 12, 0);
	put32(hdr + 8, HSMPROTO_MAX_ITEMS + 1); /* too many items */
	assert_int_equal(hsmproto_header_decode(hdr, &h), HSMPROTO_ERR_TOO_BIG);
}

/* Encodes a two-item SIGN request for the body tests below. */
static void sign_frame(struct hsmproto_buf *b)
{
	struct hsmproto_sign_req in[2];

	memset(in, 0, sizeof(in));
	for (int i = 0; i < 2; i++) {
		strcpy(in[i].role, "zsk");
		in[i].kind = HSMPROTO_KIND_RRSIG_DATA;
		in[i].format = HSMPROTO_FORMAT_RAW;
		in[i].data = (const uint8_t *)"0123456789";
		in[i].len = 10;
	}
	assert_int_equal(hsmproto_sign_req_encode(b, 1, in, 2), HSMPROTO_OK);
}

static void test_body_refusals(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_sign_req *out = NULL;
	struct hsmproto_header h, h2;
	const uint8_t *body;
	uint8_t *copy;

	(void)state;
	sign_frame(&b);
	body = split(&b, &h);
	copy = malloc(h.length + 8);
	assert_non_null(copy);

	/* Truncated: every shorter body fails, and never reads past its end. */
	for (uint32_t len = 0; len < h.length; len++) {
		uint8_t *t = malloc(len ? len : 1);

		assert_non_null(t);
		memcpy(t, body, len);
		h2 = h;
		h2.length = len;
		assert_int_not_equal(hsmproto_sign_req_decode(&h2, t, &out), HSMPROTO_OK);
		assert_null(out);
		free(t);
	}

	/* Bytes left over after the last item: the header's length lies. */
	memcpy(copy, body, h.length);
	memset(copy + h.length, 0, 8);
	h2 = h;
	h2.length = h.length + 8;
	assert_int_equal(hsmproto_sign_req_decode(&h2, copy, &out), HSMPROTO_ERR_LENGTH);

	/* A count above what is there. */
	h2 = h;
	h2.count = 3;
	assert_int_not_equal(hsmproto_sign_req_decode(&h2, body, &out), HSMPROTO_OK);
	/* A count below: the rest is left over. */
	h2.count = 1;
	assert_int_equal(hsmproto_sign_req_decode(&h2, body, &out), HSMPROTO_ERR_LENGTH);
	h2.count = 0;
	assert_int_equal(hsmproto_sign_req_decode(&h2, body, &out), HSMPROTO_ERR_LENGTH);

	/* An item's data length that lies (larger than the body). Layout: role str8 "zsk"
	 * (4 bytes), kind, format, then the u32 length at offset 6. */
	memcpy(copy, body, h.length);
	put32(copy + 6, 11);
	assert_int_not_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_OK);
	put32(copy + 6, 0xffffffffu);
	assert_int_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_ERR_TOO_BIG);
	put32(copy + 6, 0);
	assert_int_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);

	/* Unknown kind, unknown format, bad role characters. */
	memcpy(copy, body, h.length);
	copy[4] = 9;
	assert_int_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);
	memcpy(copy, body, h.length);
	copy[5] = 0;
	assert_int_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);
	memcpy(copy, body, h.length);
	copy[1] = 'Z';
	assert_int_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);
	memcpy(copy, body, h.length);
	copy[2] = 0; /* "z\0k": a NUL inside the role */
	assert_int_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);
	memcpy(copy, body, h.length);
	copy[0] = 0; /* empty role */
	assert_int_not_equal(hsmproto_sign_req_decode(&h, copy, &out), HSMPROTO_OK);
	assert_null(out);

	/* The decoder of another type refuses the frame. */
	{
		struct hsmproto_result *res = NULL;

		assert_int_equal(hsmproto_results_decode(&h, body, &res), HSMPROTO_ERR_TYPE);
		assert_null(res);
	}
	free(copy);
	hsmproto_buf_free(&b);
}

static void test_result_refusals(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_result in, *out = NULL;
	struct hsmproto_header h, h2;
	const uint8_t *body;
	uint8_t copy[64];

	(void)state;
	memset(&in, 0, sizeof(in));
	in.status = HSMPROTO_ST_OK;
	in.value = (const uint8_t *)"sig";
	in.value_len = 3;
	assert_int_equal(hsmproto_results_encode(&b, HSMPROTO_PUBKEY_REPLY, 1, &in, 1), 0);
	body = split(&b, &h);
	assert_true(h.length <= sizeof(copy));
	/* Layout: status, reason str8 (0), u16 value length, value. */
	memcpy(copy, body, h.length);
	copy[0] = 4; /* unknown status */
	assert_int_equal(hsmproto_results_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);
	memcpy(copy, body, h.length);
	copy[0] = HSMPROTO_ST_ERROR; /* a failure with a value */
	assert_int_equal(hsmproto_results_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);
	memcpy(copy, body, h.length);
	copy[3] = 200; /* value length past the end */
	assert_int_equal(hsmproto_results_decode(&h, copy, &out), HSMPROTO_ERR_TRUNCATED);
	/* PUBKEY replies hold exactly one result. */
	h2 = h;
	h2.count = 2;
	assert_int_equal(hsmproto_results_decode(&h2, body, &out), HSMPROTO_ERR_LENGTH);
	assert_null(out);
	hsmproto_buf_free(&b);

	/* A reason with a control character is refused (it ends up in logs). */
	in.status = HSMPROTO_ST_REFUSED;
	in.value = NULL;
	in.value_len = 0;
	strcpy(in.reason, "ab");
	assert_int_equal(hsmproto_results_encode(&b, HSMPROTO_SIGN_REPLY, 1, &in, 1), 0);
	body = split(&b, &h);
	memcpy(copy, body, h.length);
	copy[2] = '\n';
	assert_int_equal(hsmproto_results_decode(&h, copy, &out), HSMPROTO_ERR_VALUE);
	hsmproto_buf_free(&b);
}

static void test_limits(void **state)
{
	struct hsmproto_buf b = { 0 };
	struct hsmproto_sign_req *in, one;
	size_t n = HSMPROTO_MAX_ITEMS;

	(void)state;
	/* Data above the per-item maximum is refused by the encoder. */
	memset(&one, 0, sizeof(one));
	strcpy(one.role, "zsk");
	one.kind = HSMPROTO_KIND_RRSIG_DATA;
	one.format = HSMPROTO_FORMAT_RAW;
	one.data = (const uint8_t *)"x";
	one.len = HSMPROTO_MAX_DATA + 1;
	assert_int_equal(hsmproto_sign_req_encode(&b, 1, &one, 1), HSMPROTO_ERR_ARG);
	hsmproto_buf_free(&b);

	/* The most items allowed encode and decode; one more does not encode. */
	in = calloc(n + 1, sizeof(*in));
	assert_non_null(in);
	for (size_t i = 0; i <= n; i++) {
		in[i] = one;
		in[i].len = 1;
	}
	assert_int_equal(hsmproto_sign_req_encode(&b, 1, in, n), HSMPROTO_OK);
	{
		struct hsmproto_header h;
		struct hsmproto_sign_req *out = NULL;
		const uint8_t *body = split(&b, &h);

		assert_int_equal(hsmproto_sign_req_decode(&h, body, &out), HSMPROTO_OK);
		free(out);
	}
	hsmproto_buf_free(&b);
	assert_int_equal(hsmproto_sign_req_encode(&b, 1, in, n + 1), HSMPROTO_ERR_ARG);
	hsmproto_buf_free(&b);
	free(in);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_roundtrip),
		cmocka_unit_test(test_results_roundtrip),
		cmocka_unit_test(test_small_messages),
		cmocka_unit_test(test_status_roundtrip),
		cmocka_unit_test(test_header_refusals),
		cmocka_unit_test(test_body_refusals),
		cmocka_unit_test(test_result_refusals),
		cmocka_unit_test(test_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
