/*
 * libFuzzer target of signer/hsmproto and signer/hsmlimits: every decoder over arbitrary
 * frames. The input is a header and a body; each decoder whose type matches must either
 * refuse it or decode items that stay inside the body, and what decodes must encode
 * again. The items of a SIGN frame then go through the hard limits exactly as the HSM
 * process would check them (fixed public keys, so that key tags are stable and the
 * fuzzer can learn them).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signer/hsmlimits.h"
#include "signer/hsmproto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Two P-256 public keys (SPKI DER) for the ZSK and the KSK. */
static const uint8_t zsk_spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00, 0x04, 0xb5, 0x10, 0x52, 0x8e, 0x2a, 0xec, 0xbe, 0xfd, 0x7a,
	0xbf, 0x1d, 0x3b, 0xf2, 0x8e, 0xd0, 0x4c, 0xa7, 0x12, 0x79, 0xd0, 0x84,
	0xa4, 0x4d, 0xaf, 0x24, 0x2a, 0x79, 0x16, 0x23, 0x96, 0x8b, 0x0f, 0x97,
	0x5d, 0x84, 0xe8, 0x64, 0xf4, 0x71, 0x53, 0x1e, 0xb6, 0x54, 0xe0, 0xbd,
	0xb4, 0xeb, 0x02, 0x53, 0x97, 0xed, 0xf7, 0xbb, 0xb2, 0x1e, 0xb8, 0x19,
	0x7d, 0x79, 0xce, 0x79, 0x01, 0x87, 0x4d,
};
static const uint8_t ksk_spki[] = {
	0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02,
	0x01, 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03,
	0x42, 0x00, 0x04, 0xf5, 0xd5, 0x74, 0x0c, 0x88, 0x04, 0xa9, 0x11, 0x43,
	0x42, 0x54, 0x49, 0xa7, 0xc9, 0xff, 0x54, 0x43, 0x0c, 0x3d, 0x56, 0x4e,
	0x0d, 0xa0, 0x54, 0x02, 0x4b, 0xb8, 0x28, 0x8e, 0x69, 0xe1, 0x06, 0x94,
	0x70, 0xd6, 0x46, 0xca, 0x85, 0xf6, 0xb2, 0xb6, 0x13, 0x13, 0x9f, 0xc2,
	0x88, 0x9d, 0x01, 0x45, 0x59, 0x01, 0x0a, 0xdb, 0xd8, 0xaa, 0x41, 0xce,
	0x13, 0xdd, 0xb5, 0xc5, 0xa3, 0x7c, 0xc9,
};
/* Name "CN=Fuzz CA". */
static const uint8_t issuer[] = {
	0x30, 0x12, 0x31, 0x10, 0x30, 0x0e, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x07,
	'F', 'u', 'z', 'z', ' ', 'C', 'A',
};

/* The limits, built once: a fuzz target may keep state across inputs. */
static hsmlimits_t *limits(void)
{
	static hsmlimits_t *l;
	struct hsmlimits_config cfg = { "iotregistry.test.", issuer, sizeof(issuer), 398 * 86400 };

	if (l != NULL)
		return l;
	if (hsmlimits_new(&cfg, &l) != 0 || hsmlimits_zone_add(l, "asp.test.") != 0 ||
	    hsmlimits_key_set(l, "zsk", zsk_spki, sizeof(zsk_spki)) != 0 ||
	    hsmlimits_key_set(l, "ksk", ksk_spki, sizeof(ksk_spki)) != 0 ||
	    hsmlimits_key_set(l, "asp.test./zsk", zsk_spki, sizeof(zsk_spki)) != 0)
		abort();
	return l;
}

static void check_limits(const struct hsmproto_sign_req *q)
{
	char reason[HSMPROTO_MAX_REASON + 1];
	int r = hsmlimits_check(limits(), q->role, q->kind, q->format, q->data, q->len, reason,
	                        sizeof(reason));

	if (r != HSMLIMITS_OK && r != HSMLIMITS_REFUSED && r != HSMLIMITS_ERR_NOMEM)
		abort();
	if (r == HSMLIMITS_REFUSED && (reason[0] == '\0' || strlen(reason) >= sizeof(reason)))
		abort();
}

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
			for (uint32_t i = 0; i < h.count; i++) {
				check_inside(q[i].data, q[i].len, body, len);
				check_limits(&q[i]);
			}
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
