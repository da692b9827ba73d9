/*
 * libFuzzer target of signer/hsmproto: every decoder over arbitrary frames. The input
 * is a header and a body; each decoder whose type matches must either refuse it or
 * decode items that stay inside the body, and what decodes must encode again.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signer/hsmproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_inside(const uint8_t *p, size_t n, const uint8_t *body, size_t len)
{
	if (n > 0 && (p < body || p + n > body + len))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct hsmproto_header h;
	struct hsmproto_buf b = { 0 };
	uint8_t *body;
	size_t len;

	if (size < HSMPROTO_HEADER_LEN || hsmproto_header_decode(data, &h) != HSMPROTO_OK)
		return 0;
	len = size - HSMPROTO_HEADER_LEN;
	/* Make the header's length true so that the decoders see a whole frame. */
	if (h.length != len)
		return 0;
	/* A copy of exactly the body, so that ASan sees any read past it. */
	body = malloc(len ? len : 1);
	if (body == NULL)
		return 0;
	memcpy(body, data + HSMPROTO_HEADER_LEN, len);

	switch (h.type) {
	case HSMPROTO_SIGN: {
		struct hsmproto_sign_req *q = NULL;

		if (hsmproto_sign_req_decode(&h, body, &q) == HSMPROTO_OK) {
			for (uint32_t i = 0; i < h.count; i++)
				check_inside(q[i].data, q[i].len, body, len);
			if (hsmproto_sign_req_encode(&b, h.id, q, h.count) != HSMPROTO_OK ||
			    b.len != size || memcmp(b.data, data, size) != 0)
				abort();
			free(q);
		}
		break;
	}
	case HSMPROTO_HELLO:
	case HSMPROTO_SIGN_REPLY:
	case HSMPROTO_PUBKEY_REPLY:
	case HSMPROTO_RANDOM_REPLY: {
		struct hsmproto_result *x = NULL;

		if (hsmproto_results_decode(&h, body, &x) == HSMPROTO_OK) {
			for (uint32_t i = 0; i < h.count; i++)
				check_inside(x[i].value, x[i].value_len, body, len);
			if (hsmproto_results_encode(&b, h.type, h.id, x, h.count) != HSMPROTO_OK ||
			    b.len != size || memcmp(b.data, data, size) != 0)
				abort();
			free(x);
		}
		break;
	}
	case HSMPROTO_PUBKEY: {
		char role[HSMPROTO_MAX_ROLE + 1];

		(void)hsmproto_pubkey_req_decode(&h, body, role);
		break;
	}
	case HSMPROTO_RANDOM: {
		uint32_t n;

		(void)hsmproto_random_req_decode(&h, body, &n);
		break;
	}
	case HSMPROTO_STATUS:
		(void)hsmproto_status_req_decode(&h, body);
		break;
	case HSMPROTO_STATUS_REPLY: {
		struct hsmproto_status st;

		if (hsmproto_status_decode(&h, body, &st) == HSMPROTO_OK) {
			if (hsmproto_status_encode(&b, h.id, &st) != HSMPROTO_OK ||
			    b.len != size || memcmp(b.data, data, size) != 0)
				abort();
			hsmproto_status_clear(&st);
		}
		break;
	}
	}
	hsmproto_buf_free(&b);
	free(body);
	return 0;
}
