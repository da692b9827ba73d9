/*
 * Unit tests of signer/proto: round trips of every request and reply,
 * refusal of truncated, oversized, lying, trailing and unknown frames, text
 * checks, encoder guarantees, and the examples of docs/PROTOCOL.md.
 *
 * Run with --vectors, the program instead prints one JSON line per sample
 * message (its fields and its encoding); tests/python/test_codec.py checks
 * the independent Python codec against them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "signer/proto.h"

/* ---- sample messages ---- */

static const uint8_t csr[] = { 0x30, 0x82, 0x01, 0x00, 0xde, 0xad, 0x00, 0xbe, 0xef };
static const uint8_t cert[] = { 0x30, 0x03, 0x02, 0x01, 0x07 };
static const uint8_t ca1[] = { 0x30, 0x01, 0xaa };
static const uint8_t ca2[] = { 0x30, 0x02, 0xbb, 0xcc };
static const uint8_t rrset[] = { 0x03, 'w', 'w', 'w', 0x00, 0x00, 0x10, 0x00, 0x01,
				 0x00, 0x00, 0x0e, 0x10, 0x00, 0x02, 0x01, 'x' };

static struct proto_bytes B(const void *p, size_t n)
{
	struct proto_bytes b = { p, n };

	return b;
}

#define S(s) proto_bytes_str(s)
#define BA(a) B(a, sizeof(a))

/* Fills a sample request of type op (every field non-default). */
static void sample_request(uint8_t op, struct proto_request *q)
{
	memset(q, 0, sizeof(*q));
	q->op = op;
	q->id = 0x01000000u + op;
	switch (op) {
	case PROTO_OP_HELLO:
		q->u.hello.min_version = 1;
		q->u.hello.max_version = 3;
		q->u.hello.client = S("frontend/1.0 \xc3\xa9t\xc3\xa9");
		break;
	case PROTO_OP_ISSUE:
		q->u.issue.device_id = S("8912230200031010008f");
		q->u.issue.index = 2;
		q->u.issue.profile = S("device");
		q->u.issue.csr_der = BA(csr);
		break;
	case PROTO_OP_REVOKE:
		q->u.revoke.device_id = S("8912230200031010008f");
		q->u.revoke.index = 0;
		q->u.revoke.serial_hex = S("0A1b2c");
		q->u.revoke.reason = S("keyCompromise");
		break;
	case PROTO_OP_REISSUE:
		q->u.reissue.device_id = S("89049032000001000000000000000001");
		q->u.reissue.old_index = 4294967295u;
		q->u.reissue.profile = S("");
		q->u.reissue.csr_der = BA(csr);
		break;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_UNPUBLISH:
		q->u.rr.owner = S("_x._asp.iotregistry.test.");
		q->u.rr.rrtype = S("TXT");
		q->u.rr.ttl = op == PROTO_OP_PUBLISH ? 300 : 0;
		q->u.rr.rdata = S("\"hello world\"");
		break;
	case PROTO_OP_SIGN_RRSET:
		q->u.sign_rrset.zone = S("asp.test.");
		q->u.sign_rrset.rrset_wire = BA(rrset);
		q->u.sign_rrset.inception = 1700000000u;
		q->u.sign_rrset.expiration = 4000000000u;
		break;
	case PROTO_OP_IMPORT:
		q->u.import.import_id = 0x7fffffffu;
		q->u.import.seq = 3;
		q->u.import.flags = PROTO_IMPORT_FINAL;
		q->u.import.idle_timeout = 600;
		q->u.import.records = BA(rrset); /* the request decoder does not look inside */
		break;
	default:
		break;
	}
}

/* Fills a sample OK reply to op, or an ERROR when op == 0. */
static void sample_reply(uint8_t op, struct proto_reply *p)
{
	memset(p, 0, sizeof(*p));
	p->type = op == 0 ? PROTO_REPLY_ERROR : PROTO_REPLY_OK;
	p->id = 0x02000000u + op;
	p->op = op;
	switch (op) {
	case 0:
		p->u.error.code = PROTO_CODE_DENIED;
		p->u.error.message = S("rule callers[0].profiles: profile \"x\" not allowed");
		break;
	case PROTO_OP_HELLO:
		p->u.hello.version = 1;
		p->u.hello.max_frame = PROTO_REQUEST_MAX;
		p->u.hello.server = S("regsignd 0.1.0");
		break;
	case PROTO_OP_ISSUE:
	case PROTO_OP_REISSUE:
		p->u.cert.cert_der = BA(cert);
		p->u.cert.chain.count = 2;
		p->u.cert.chain.der[0] = BA(ca1);
		p->u.cert.chain.der[1] = BA(ca2);
		p->u.cert.serial_hex = S("5f0e1d2c3b4a59687766554433221100");
		p->u.cert.zone_serial = 2024061501u;
		p->u.cert.index = op == PROTO_OP_ISSUE ? 1 : 7;
		break;
	case PROTO_OP_REVOKE:
		p->u.revoke.serial_hex = S("a1b2c");
		p->u.revoke.revoked_at = 0x0000000123456789ULL;
		p->u.revoke.zone_serial = 77;
		break;
	case PROTO_OP_CRL:
		p->u.crl_der = BA(cert);
		break;
	case PROTO_OP_CHAIN:
		p->u.chain.count = 1;
		p->u.chain.der[0] = BA(ca1);
		break;
	case PROTO_OP_STATUS:
	case PROTO_OP_ZONE_STATUS:
		p->u.json = S("{\"version\":\"0.1.0\",\"names\":[1,2]}");
		break;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_UNPUBLISH:
		p->u.zone_serial = 0xfffffffeu;
		break;
	case PROTO_OP_IMPORT:
		p->u.import.records = 1000000;
		p->u.import.zone_serial = 0xfffffffdu;
		break;
	case PROTO_OP_SIGN_RRSET:
		p->u.rrsig_wire = BA(rrset);
		break;
	}
}

static int bytes_same(struct proto_bytes a, struct proto_bytes b)
{
	return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

/* Encodes into a fresh writer; the caller releases it. */
static void encode_req(struct buf_writer *w, const struct proto_request *q)
{
	buf_writer_init(w, 64u << 20);
	assert_int_equal(proto_request_encode(w, q), PROTO_OK);
}

static void encode_rep(struct buf_writer *w, const struct proto_reply *p)
{
	buf_writer_init(w, 64u << 20);
	assert_int_equal(proto_reply_encode(w, p), PROTO_OK);
}

/* ---- round trips ---- */

static void test_request_roundtrip(void **state)
{
	(void)state;
	for (uint8_t op = PROTO_OP_HELLO; op <= PROTO_OP_MAX; op++) {
		struct proto_request q, d;
		struct buf_writer w, w2;

		sample_request(op, &q);
		encode_req(&w, &q);
		assert_int_equal(proto_request_decode(buf_writer_data(&w), buf_writer_len(&w),
						      PROTO_REQUEST_MAX, &d),
				 PROTO_OK);
		assert_int_equal(d.op, op);
		assert_int_equal(d.id, q.id);
		/* Decoded strings point into the frame (zero-copy). */
		if (op == PROTO_OP_ISSUE) {
			assert_true(d.u.issue.csr_der.ptr > buf_writer_data(&w));
			assert_true(bytes_same(d.u.issue.device_id, q.u.issue.device_id));
			assert_int_equal(d.u.issue.index, 2);
			assert_true(bytes_same(d.u.issue.profile, q.u.issue.profile));
			assert_true(bytes_same(d.u.issue.csr_der, q.u.issue.csr_der));
		}
		if (op == PROTO_OP_REVOKE) {
			assert_true(bytes_same(d.u.revoke.serial_hex, S("0A1b2c")));
			assert_true(bytes_same(d.u.revoke.reason, S("keyCompromise")));
		}
		if (op == PROTO_OP_REISSUE)
			assert_int_equal(d.u.reissue.old_index, 4294967295u);
		if (op == PROTO_OP_PUBLISH) {
			assert_true(bytes_same(d.u.rr.rdata, S("\"hello world\"")));
			assert_int_equal(d.u.rr.ttl, 300);
		}
		if (op == PROTO_OP_SIGN_RRSET) {
			assert_true(bytes_same(d.u.sign_rrset.rrset_wire, BA(rrset)));
			assert_int_equal(d.u.sign_rrset.expiration, 4000000000u);
		}
		if (op == PROTO_OP_HELLO)
			assert_int_equal(d.u.hello.max_version, 3);
		if (op == PROTO_OP_IMPORT) {
			assert_int_equal(d.u.import.import_id, 0x7fffffffu);
			assert_int_equal(d.u.import.seq, 3);
			assert_int_equal(d.u.import.flags, PROTO_IMPORT_FINAL);
			assert_int_equal(d.u.import.idle_timeout, 600);
			assert_true(bytes_same(d.u.import.records, BA(rrset)));
		}
		/* Re-encoding what was decoded gives the same bytes. */
		encode_req(&w2, &d);
		assert_int_equal(buf_writer_len(&w2), buf_writer_len(&w));
		assert_memory_equal(buf_writer_data(&w2), buf_writer_data(&w), buf_writer_len(&w));
		buf_writer_release(&w);
		buf_writer_release(&w2);
	}
}

static void test_reply_roundtrip(void **state)
{
	(void)state;
	for (uint8_t op = 0; op <= PROTO_OP_MAX; op++) {
		struct proto_reply p, d;
		struct buf_writer w, w2;

		sample_reply(op, &p);
		encode_rep(&w, &p);
		assert_int_equal(proto_reply_decode(buf_writer_data(&w), buf_writer_len(&w),
						    PROTO_REPLY_MAX, &d),
				 PROTO_OK);
		assert_int_equal(d.type, p.type);
		assert_int_equal(d.id, p.id);
		assert_int_equal(d.op, op);
		if (op == 0) {
			assert_int_equal(d.u.error.code, PROTO_CODE_DENIED);
			assert_true(bytes_same(d.u.error.message, p.u.error.message));
		}
		if (op == PROTO_OP_ISSUE || op == PROTO_OP_REISSUE) {
			assert_true(bytes_same(d.u.cert.cert_der, BA(cert)));
			assert_int_equal(d.u.cert.chain.count, 2);
			assert_true(bytes_same(d.u.cert.chain.der[1], BA(ca2)));
			assert_int_equal(d.u.cert.zone_serial, 2024061501u);
			assert_int_equal(d.u.cert.index, p.u.cert.index);
		}
		if (op == PROTO_OP_REVOKE)
			assert_true(d.u.revoke.revoked_at == 0x0000000123456789ULL);
		if (op == PROTO_OP_PUBLISH)
			assert_int_equal(d.u.zone_serial, 0xfffffffeu);
		if (op == PROTO_OP_STATUS)
			assert_true(bytes_same(d.u.json, p.u.json));
		if (op == PROTO_OP_IMPORT) {
			assert_int_equal(d.u.import.records, 1000000);
			assert_int_equal(d.u.import.zone_serial, 0xfffffffdu);
		}
		encode_rep(&w2, &d);
		assert_int_equal(buf_writer_len(&w2), buf_writer_len(&w));
		assert_memory_equal(buf_writer_data(&w2), buf_writer_data(&w), buf_writer_len(&w));
		buf_writer_release(&w);
		buf_writer_release(&w2);
	}
}

static void test_pipelined_frames(void **state)
{
	struct buf_writer w;
	struct proto_request q, d;
	size_t off = 0, size;
	int n = 0;

	(void)state;
	buf_writer_init(&w, 1 << 20);
	for (uint8_t op = PROTO_OP_HELLO; op <= PROTO_OP_MAX; op++) {
		sample_request(op, &q);
		assert_int_equal(proto_request_encode(&w, &q), PROTO_OK);
	}
	/* Split the stream with peek as a server would, frame by frame. */
	while (off < buf_writer_len(&w)) {
		assert_int_equal(proto_frame_peek(buf_writer_data(&w) + off,
						  buf_writer_len(&w) - off, PROTO_REQUEST_MAX,
						  &size),
				 PROTO_OK);
		assert_int_equal(proto_request_decode(buf_writer_data(&w) + off, size,
						      PROTO_REQUEST_MAX, &d),
				 PROTO_OK);
		assert_int_equal(d.op, PROTO_OP_HELLO + n);
		off += size;
		n++;
	}
	assert_int_equal(n, PROTO_OP_MAX);
	buf_writer_release(&w);
}

/* ---- refusals ---- */

static void test_truncated(void **state)
{
	(void)state;
	for (uint8_t op = PROTO_OP_HELLO; op <= PROTO_OP_MAX; op++) {
		struct proto_request q, d;
		struct buf_writer w;
		uint8_t *copy;
		size_t len;

		sample_request(op, &q);
		encode_req(&w, &q);
		len = buf_writer_len(&w);
		copy = malloc(len);
		assert_non_null(copy);
		for (size_t cut = 1; cut < len; cut++) {
			/* Buffer shorter than the length field says. */
			assert_int_equal(proto_request_decode(buf_writer_data(&w), len - cut,
							      PROTO_REQUEST_MAX, &d),
					 PROTO_ERR_BAD_FRAME);
			/* Length field patched to the shorter size: the inner
			 * fields now lie about what is there. */
			if (len - cut >= PROTO_HEADER_SIZE) {
				uint32_t l = (uint32_t)(len - cut - 4);

				memcpy(copy, buf_writer_data(&w), len - cut);
				copy[0] = (uint8_t)(l >> 24);
				copy[1] = (uint8_t)(l >> 16);
				copy[2] = (uint8_t)(l >> 8);
				copy[3] = (uint8_t)l;
				if (op == PROTO_OP_CRL || op == PROTO_OP_CHAIN ||
				    op == PROTO_OP_STATUS || op == PROTO_OP_ZONE_STATUS)
					continue; /* no fields: nothing to cut */
				assert_int_not_equal(proto_request_decode(copy, len - cut,
									  PROTO_REQUEST_MAX, &d),
						     PROTO_OK);
				/* The id is known even though the frame failed. */
				assert_int_equal(d.id, q.id);
			}
		}
		free(copy);
		buf_writer_release(&w);
	}
}

static void test_trailing(void **state)
{
	struct proto_request q, d;
	struct proto_reply p, e;
	struct buf_writer w;
	uint8_t *f;
	size_t len;

	(void)state;
	sample_request(PROTO_OP_ISSUE, &q);
	encode_req(&w, &q);
	len = buf_writer_len(&w);
	f = malloc(len + 1);
	assert_non_null(f);
	memcpy(f, buf_writer_data(&w), len);
	f[len] = 0;
	/* One byte after the frame in the buffer. */
	assert_int_equal(proto_request_decode(f, len + 1, PROTO_REQUEST_MAX, &d),
			 PROTO_ERR_BAD_FRAME);
	/* The byte counted by the length field: garbage after the last field. */
	f[3]++;
	assert_int_equal(proto_request_decode(f, len + 1, PROTO_REQUEST_MAX, &d),
			 PROTO_ERR_BAD_FRAME);
	assert_int_equal(d.op, PROTO_OP_ISSUE);
	free(f);
	buf_writer_release(&w);

	/* Same for a field-less request and for a reply. */
	{
		static const uint8_t crl_extra[] = { 0, 0, 0, 6, PROTO_OP_CRL, 0, 0, 0, 9, 0 };

		assert_int_equal(proto_request_decode(crl_extra, sizeof(crl_extra),
						      PROTO_REQUEST_MAX, &d),
				 PROTO_ERR_BAD_FRAME);
		assert_int_equal(d.id, 9);
	}
	sample_reply(PROTO_OP_PUBLISH, &p);
	encode_rep(&w, &p);
	len = buf_writer_len(&w);
	f = malloc(len + 2);
	assert_non_null(f);
	memcpy(f, buf_writer_data(&w), len);
	f[len] = f[len + 1] = 0;
	f[3] += 2;
	assert_int_equal(proto_reply_decode(f, len + 2, PROTO_REPLY_MAX, &e), PROTO_ERR_BAD_FRAME);
	free(f);
	buf_writer_release(&w);
}

static void test_oversized(void **state)
{
	/* Only the length prefix has arrived, claiming 256 KiB + 1. */
	static const uint8_t big[] = { 0x00, 0x04, 0x00, 0x01 };
	static const uint8_t huge[] = { 0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 1 };
	static const uint8_t tiny[] = { 0x00, 0x00, 0x00, 0x04, 1, 0, 0, 0 };
	static const uint8_t crl_req[] = { 0, 0, 0, 5, PROTO_OP_CRL, 0, 0, 0, 1 };
	struct proto_request d;
	struct proto_reply e;
	struct proto_header h;
	size_t size = 123;

	(void)state;
	assert_int_equal(proto_frame_peek(big, sizeof(big), PROTO_REQUEST_MAX, &size),
			 PROTO_ERR_TOO_LARGE);
	assert_int_equal(size, 0);
	assert_int_equal(proto_frame_peek(big, sizeof(big), PROTO_REPLY_MAX, &size), PROTO_OK);
	assert_int_equal(size, 4 + 0x40001);
	assert_int_equal(proto_frame_peek(big, 3, PROTO_REQUEST_MAX, &size), PROTO_ERR_SHORT);
	assert_int_equal(proto_frame_peek(huge, sizeof(huge), PROTO_REPLY_MAX, &size),
			 PROTO_ERR_TOO_LARGE);
	assert_int_equal(proto_request_decode(huge, sizeof(huge), PROTO_REQUEST_MAX, &d),
			 PROTO_ERR_TOO_LARGE);
	assert_int_equal(proto_reply_decode(huge, sizeof(huge), PROTO_REPLY_MAX, &e),
			 PROTO_ERR_TOO_LARGE);
	assert_int_equal(proto_header_parse(huge, sizeof(huge), PROTO_REQUEST_MAX, &h),
			 PROTO_ERR_TOO_LARGE);
	/* A length below type + id is malformed. */
	assert_int_equal(proto_frame_peek(tiny, sizeof(tiny), PROTO_REQUEST_MAX, &size),
			 PROTO_ERR_BAD_FRAME);
	assert_int_equal(proto_request_decode(tiny, sizeof(tiny), PROTO_REQUEST_MAX, &d),
			 PROTO_ERR_BAD_FRAME);
	/* A configured limit below the hard one is honoured. */
	assert_int_equal(proto_request_decode(crl_req, sizeof(crl_req), 5, &d), PROTO_OK);
	assert_int_equal(proto_request_decode(crl_req, sizeof(crl_req), 4, &d),
			 PROTO_ERR_TOO_LARGE);
	assert_int_equal(proto_header_parse(crl_req, sizeof(crl_req), PROTO_REQUEST_MAX, &h),
			 PROTO_OK);
	assert_int_equal(h.length, 5);
	assert_int_equal(h.type, PROTO_OP_CRL);
	assert_int_equal(h.id, 1);
	assert_int_equal(proto_header_parse(crl_req, 8, PROTO_REQUEST_MAX, &h), PROTO_ERR_SHORT);
	/* Id 0 is reserved for the server: a request with it is malformed. */
	{
		static const uint8_t id0[] = { 0, 0, 0, 5, PROTO_OP_CRL, 0, 0, 0, 0 };

		assert_int_equal(proto_request_decode(id0, sizeof(id0), PROTO_REQUEST_MAX, &d),
				 PROTO_ERR_BAD_FRAME);
		assert_int_equal(d.op, PROTO_OP_CRL);
	}
	assert_int_equal(proto_err_code(PROTO_ERR_TOO_LARGE), PROTO_CODE_TOO_LARGE);
}

static void test_lying_lengths(void **state)
{
	/* ISSUE whose device_id claims 0x10 bytes but the frame has 3. */
	static const uint8_t lie[] = { 0, 0, 0, 12, PROTO_OP_ISSUE, 0, 0, 0, 5,
				       0, 0, 0, 0x10, 'a', 'b', 'c' };
	/* ISSUE whose device_id claims 65 bytes (over its maximum of 64),
	 * followed by that many bytes: refused as over the field limit. */
	uint8_t over[4 + 5 + 4 + 65 + 4 + 4 + 4];
	/* CHAIN reply with count 9, and one with count 2 but one certificate. */
	static const uint8_t chain9[] = { 0, 0, 0, 10, 0x80, 0, 0, 0, 1, PROTO_OP_CHAIN,
					  0, 0, 0, 9 };
	static const uint8_t chain2[] = { 0, 0, 0, 15, 0x80, 0, 0, 0, 1, PROTO_OP_CHAIN,
					  0, 0, 0, 2, 0, 0, 0, 1, 0x30 };
	struct proto_request d;
	struct proto_reply e;

	(void)state;
	assert_int_equal(proto_request_decode(lie, sizeof(lie), PROTO_REQUEST_MAX, &d),
			 PROTO_ERR_BAD_FRAME);
	assert_int_equal(d.id, 5);
	assert_null(d.u.issue.device_id.ptr);

	memset(over, 0, sizeof(over));
	over[3] = (uint8_t)(sizeof(over) - 4);
	over[4] = PROTO_OP_ISSUE;
	over[8] = 6;
	over[12] = 65;
	memset(over + 13, 'a', 65);
	assert_int_equal(proto_request_decode(over, sizeof(over), PROTO_REQUEST_MAX, &d),
			 PROTO_ERR_FIELD_LIMIT);
	assert_int_equal(proto_err_code(PROTO_ERR_FIELD_LIMIT), PROTO_CODE_BAD_FRAME);
	/* At 64 bytes the same frame is fine (the remaining fields are zero). */
	over[3]--;
	over[12] = 64;
	assert_int_equal(proto_request_decode(over, sizeof(over) - 1, PROTO_REQUEST_MAX, &d),
			 PROTO_OK);
	assert_int_equal(d.u.issue.device_id.len, 64);

	assert_int_equal(proto_reply_decode(chain9, sizeof(chain9), PROTO_REPLY_MAX, &e),
			 PROTO_ERR_FIELD_LIMIT);
	assert_int_equal(proto_reply_decode(chain2, sizeof(chain2), PROTO_REPLY_MAX, &e),
			 PROTO_ERR_BAD_FRAME);
}

static void test_unknown_type(void **state)
{
	uint8_t f[] = { 0, 0, 0, 5, 0, 0, 0, 0, 42 };
	static const uint8_t ok99[] = { 0, 0, 0, 6, 0x80, 0, 0, 0, 3, 99 };
	static const uint8_t ok0[] = { 0, 0, 0, 6, 0x80, 0, 0, 0, 3, 0 };
	static const uint8_t ok_noop[] = { 0, 0, 0, 5, 0x80, 0, 0, 0, 3 };
	static const uint8_t err_unknown_code[] = { 0, 0, 0, 13, 0x81, 0, 0, 0, 3,
						    0, 0, 0x10, 0, 0, 0, 0, 0 };
	static const uint8_t types[] = { 0, PROTO_OP_MAX + 1, 0x7f, 0x80, 0x81, 0xff };
	struct proto_request d;
	struct proto_reply e;

	(void)state;
	for (size_t i = 0; i < sizeof(types); i++) {
		f[4] = types[i];
		assert_int_equal(proto_request_decode(f, sizeof(f), PROTO_REQUEST_MAX, &d),
				 PROTO_ERR_UNKNOWN_TYPE);
		assert_int_equal(d.op, types[i]);
		assert_int_equal(d.id, 42);
		if (types[i] != 0x80 && types[i] != 0x81)
			assert_int_equal(proto_reply_decode(f, sizeof(f), PROTO_REPLY_MAX, &e),
					 PROTO_ERR_UNKNOWN_TYPE);
	}
	assert_int_equal(proto_err_code(PROTO_ERR_UNKNOWN_TYPE), PROTO_CODE_UNKNOWN_OP);
	assert_int_equal(proto_reply_decode(ok99, sizeof(ok99), PROTO_REPLY_MAX, &e),
			 PROTO_ERR_UNKNOWN_TYPE);
	assert_int_equal(e.op, 99);
	assert_int_equal(proto_reply_decode(ok0, sizeof(ok0), PROTO_REPLY_MAX, &e),
			 PROTO_ERR_UNKNOWN_TYPE);
	assert_int_equal(proto_reply_decode(ok_noop, sizeof(ok_noop), PROTO_REPLY_MAX, &e),
			 PROTO_ERR_BAD_FRAME);
	/* An error code this version does not know is still a valid ERROR. */
	assert_int_equal(proto_reply_decode(err_unknown_code, sizeof(err_unknown_code),
					    PROTO_REPLY_MAX, &e),
			 PROTO_OK);
	assert_int_equal(e.u.error.code, 0x1000);
	assert_null(proto_code_name(0x1000));
	assert_false(proto_code_retryable(0x1000));
}

static void test_text_fields(void **state)
{
	static const char *const bad[] = {
		"a\0b",         /* NUL (length 3 below) */
		"\xc3",         /* truncated sequence */
		"\xc0\xaf",     /* overlong '/' */
		"\xed\xa0\x80", /* surrogate */
		"\xf4\x90\x80\x80", /* above U+10FFFF */
		"\xff",
		"\x80",
	};
	static const size_t badlen[] = { 3, 1, 2, 3, 4, 1, 1 };
	struct proto_request q, d;
	struct buf_writer w;

	(void)state;
	buf_writer_init(&w, 1 << 20);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t frame[64];
		size_t n;

		sample_request(PROTO_OP_REVOKE, &q);
		q.u.revoke.reason = B(bad[i], badlen[i]);
		/* The encoder refuses it and leaves nothing behind. */
		assert_int_equal(proto_request_encode(&w, &q), PROTO_ERR_BAD_TEXT);
		assert_int_equal(buf_writer_len(&w), 0);
		/* Hand-built frame: the decoder refuses it too. */
		n = 0;
		memcpy(frame, "\0\0\0\0\x03\0\0\0\x01", 9);
		n = 9;
		memcpy(frame + n, "\0\0\0\0", 4); /* device_id "" */
		n += 4;
		memcpy(frame + n, "\0\0\0\0", 4); /* index 0 */
		n += 4;
		memcpy(frame + n, "\0\0\0\0", 4); /* serial "" */
		n += 4;
		frame[n++] = 0, frame[n++] = 0, frame[n++] = 0, frame[n++] = (uint8_t)badlen[i];
		memcpy(frame + n, bad[i], badlen[i]);
		n += badlen[i];
		frame[3] = (uint8_t)(n - 4);
		assert_int_equal(proto_request_decode(frame, n, PROTO_REQUEST_MAX, &d),
				 PROTO_ERR_BAD_TEXT);
	}
	/* Binary fields may hold anything, NUL included (csr sample has one). */
	sample_request(PROTO_OP_ISSUE, &q);
	assert_int_equal(proto_request_encode(&w, &q), PROTO_OK);
	/* Valid multi-byte UTF-8 passes (HELLO sample has é). */
	sample_request(PROTO_OP_HELLO, &q);
	assert_int_equal(proto_request_encode(&w, &q), PROTO_OK);
	buf_writer_release(&w);
}

static void test_encoder_refusals(void **state)
{
	struct proto_request q;
	struct proto_reply p;
	struct buf_writer w;
	uint8_t *big;
	size_t before;

	(void)state;
	buf_writer_init(&w, 64u << 20);
	sample_request(PROTO_OP_CRL, &q);
	assert_int_equal(proto_request_encode(&w, &q), PROTO_OK);
	before = buf_writer_len(&w);

	q.id = 0;
	assert_int_equal(proto_request_encode(&w, &q), PROTO_ERR_INVALID);
	q.id = 1;
	q.op = PROTO_OP_MAX + 1;
	assert_int_equal(proto_request_encode(&w, &q), PROTO_ERR_INVALID);

	sample_request(PROTO_OP_ISSUE, &q);
	q.u.issue.profile.len = PROTO_MAX_PROFILE + 1;
	q.u.issue.profile.ptr = (const uint8_t *)"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
						 "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx";
	assert_int_equal(proto_request_encode(&w, &q), PROTO_ERR_FIELD_LIMIT);
	q.u.issue.profile = B(NULL, 3);
	assert_int_equal(proto_request_encode(&w, &q), PROTO_ERR_INVALID);

	/* A frame over the request maximum is refused whole. */
	big = calloc(1, PROTO_REQUEST_MAX);
	assert_non_null(big);
	sample_request(PROTO_OP_SIGN_RRSET, &q);
	q.u.sign_rrset.rrset_wire = B(big, PROTO_REQUEST_MAX);
	assert_int_equal(proto_request_encode(&w, &q), PROTO_ERR_TOO_LARGE);
	/* The largest legal rrset fits exactly. */
	q.u.sign_rrset.rrset_wire.len = PROTO_REQUEST_MAX - 5 - 4 - 9 - 4 - 4 - 4;
	assert_int_equal(proto_request_encode(&w, &q), PROTO_OK);
	assert_int_equal(buf_writer_len(&w), before + 4 + PROTO_REQUEST_MAX);
	buf_writer_truncate(&w, before);

	sample_reply(PROTO_OP_CHAIN, &p);
	p.u.chain.count = PROTO_MAX_CHAIN + 1;
	assert_int_equal(proto_reply_encode(&w, &p), PROTO_ERR_FIELD_LIMIT);
	p.type = 0x42;
	assert_int_equal(proto_reply_encode(&w, &p), PROTO_ERR_INVALID);

	/* None of the refusals left bytes behind. */
	assert_int_equal(buf_writer_len(&w), before);
	assert_int_equal(buf_writer_error(&w), BUF_OK);

	/* A writer too small for the frame reports NOMEM and keeps nothing. */
	{
		struct buf_writer small;

		buf_writer_init(&small, 8);
		sample_request(PROTO_OP_ISSUE, &q);
		assert_int_equal(proto_request_encode(&small, &q), PROTO_ERR_NOMEM);
		assert_int_equal(buf_writer_len(&small), 0);
		buf_writer_release(&small);
	}
	free(big);
	buf_writer_release(&w);
}

static void test_error_encode(void **state)
{
	char longmsg[PROTO_MAX_MESSAGE + 10];
	struct buf_writer w;
	struct proto_reply e;

	(void)state;
	buf_writer_init(&w, 1 << 20);
	assert_int_equal(proto_error_encode(&w, 7, PROTO_CODE_BUSY, "busy"), PROTO_OK);
	assert_int_equal(proto_reply_decode(buf_writer_data(&w), buf_writer_len(&w),
					    PROTO_REPLY_MAX, &e),
			 PROTO_OK);
	assert_int_equal(e.type, PROTO_REPLY_ERROR);
	assert_int_equal(e.id, 7);
	assert_int_equal(e.u.error.code, PROTO_CODE_BUSY);
	assert_true(proto_bytes_eq(e.u.error.message, "busy"));
	buf_writer_reset(&w);

	/* Control characters and broken UTF-8 become '?'. */
	assert_int_equal(proto_error_encode(&w, 0, PROTO_CODE_BAD_FRAME, "a\nb\xff\xc3\xa9"),
			 PROTO_OK);
	assert_int_equal(proto_reply_decode(buf_writer_data(&w), buf_writer_len(&w),
					    PROTO_REPLY_MAX, &e),
			 PROTO_OK);
	assert_true(proto_bytes_eq(e.u.error.message, "a?b?\xc3\xa9"));
	buf_writer_reset(&w);

	/* Too long: cut to the maximum without splitting the final 'é'. */
	memset(longmsg, 'x', sizeof(longmsg));
	longmsg[PROTO_MAX_MESSAGE - 1] = '\xc3';
	longmsg[PROTO_MAX_MESSAGE] = '\xa9';
	longmsg[sizeof(longmsg) - 1] = 0;
	assert_int_equal(proto_error_encode(&w, 1, PROTO_CODE_INTERNAL, longmsg), PROTO_OK);
	assert_int_equal(proto_reply_decode(buf_writer_data(&w), buf_writer_len(&w),
					    PROTO_REPLY_MAX, &e),
			 PROTO_OK);
	assert_int_equal(e.u.error.message.len, PROTO_MAX_MESSAGE - 1);
	buf_writer_reset(&w);
	assert_int_equal(proto_error_encode(&w, 1, PROTO_CODE_INTERNAL, NULL), PROTO_OK);
	buf_writer_release(&w);
}

/* The byte examples of docs/PROTOCOL.md §9, checked both ways. */
static void test_document_examples(void **state)
{
	static const uint8_t hello[] = { 0, 0, 0, 0x13, 1, 0, 0, 0, 1, 0, 0, 0, 1,
					 0, 0, 0, 1, 0, 0, 0, 2, 'f', 'e' };
	static const uint8_t hello_ok[] = { 0, 0, 0, 0x1a, 0x80, 0, 0, 0, 1, 1, 0, 0, 0, 1,
					    0, 4, 0, 0, 0, 0, 0, 8, 'r', 'e', 'g', 's',
					    'i', 'g', 'n', 'd' };
	static const uint8_t crl[] = { 0, 0, 0, 5, 5, 0, 0, 0, 7 };
	static const uint8_t busy[] = { 0, 0, 0, 0x11, 0x81, 0, 0, 0, 7, 0, 0, 0, 9,
					0, 0, 0, 4, 'b', 'u', 's', 'y' };
	struct proto_request q;
	struct proto_reply p;
	struct buf_writer w;

	(void)state;
	buf_writer_init(&w, 1024);
	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_HELLO;
	q.id = 1;
	q.u.hello.min_version = q.u.hello.max_version = 1;
	q.u.hello.client = S("fe");
	assert_int_equal(proto_request_encode(&w, &q), PROTO_OK);
	assert_int_equal(buf_writer_len(&w), sizeof(hello));
	assert_memory_equal(buf_writer_data(&w), hello, sizeof(hello));
	buf_writer_reset(&w);

	memset(&p, 0, sizeof(p));
	p.type = PROTO_REPLY_OK;
	p.id = 1;
	p.op = PROTO_OP_HELLO;
	p.u.hello.version = 1;
	p.u.hello.max_frame = PROTO_REQUEST_MAX;
	p.u.hello.server = S("regsignd");
	assert_int_equal(proto_reply_encode(&w, &p), PROTO_OK);
	assert_int_equal(buf_writer_len(&w), sizeof(hello_ok));
	assert_memory_equal(buf_writer_data(&w), hello_ok, sizeof(hello_ok));
	buf_writer_reset(&w);

	memset(&q, 0, sizeof(q));
	q.op = PROTO_OP_CRL;
	q.id = 7;
	assert_int_equal(proto_request_encode(&w, &q), PROTO_OK);
	assert_memory_equal(buf_writer_data(&w), crl, sizeof(crl));
	buf_writer_reset(&w);

	assert_int_equal(proto_error_encode(&w, 7, PROTO_CODE_BUSY, "busy"), PROTO_OK);
	assert_int_equal(buf_writer_len(&w), sizeof(busy));
	assert_memory_equal(buf_writer_data(&w), busy, sizeof(busy));
	buf_writer_release(&w);

	assert_int_equal(proto_request_decode(hello, sizeof(hello), PROTO_REQUEST_MAX, &q),
			 PROTO_OK);
	assert_true(proto_bytes_eq(q.u.hello.client, "fe"));
	assert_int_equal(proto_reply_decode(hello_ok, sizeof(hello_ok), PROTO_REPLY_MAX, &p),
			 PROTO_OK);
	assert_int_equal(p.u.hello.max_frame, 262144);
}

static void test_names_and_helpers(void **state)
{
	char out[PROTO_MAX_SERIAL_HEX + 1];
	char *dup;

	(void)state;
	assert_string_equal(proto_op_name(PROTO_OP_SIGN_RRSET), "SIGN_RRSET");
	assert_string_equal(proto_op_name(PROTO_REPLY_ERROR), "ERROR");
	assert_null(proto_op_name(0));
	assert_string_equal(proto_code_name(PROTO_CODE_CONFLICT), "CONFLICT");
	assert_string_equal(proto_code_name(PROTO_CODE_VERSION), "VERSION");
	assert_null(proto_code_name(0));
	assert_true(proto_code_retryable(PROTO_CODE_BUSY));
	assert_true(proto_code_retryable(PROTO_CODE_UNAVAILABLE));
	assert_true(proto_code_retryable(PROTO_CODE_RATE_LIMITED));
	assert_false(proto_code_retryable(PROTO_CODE_DENIED));
	assert_false(proto_code_retryable(PROTO_CODE_INTERNAL));
	assert_string_not_equal(proto_strerror(PROTO_ERR_BAD_TEXT), proto_strerror(-99));

	assert_int_equal(proto_serial_normalize(S("000A1b2C"), out), PROTO_OK);
	assert_string_equal(out, "a1b2c");
	assert_int_equal(proto_serial_normalize(S("0000"), out), PROTO_ERR_INVALID);
	assert_int_equal(proto_serial_normalize(S(""), out), PROTO_ERR_INVALID);
	assert_int_equal(proto_serial_normalize(S("12g4"), out), PROTO_ERR_INVALID);
	assert_int_equal(proto_serial_normalize(S("0x12"), out), PROTO_ERR_INVALID);
	assert_int_equal(proto_serial_normalize(S("1234567890123456789012345678901234567890"),
						out),
			 PROTO_OK);
	assert_int_equal(proto_serial_normalize(S("12345678901234567890123456789012345678901"),
						out),
			 PROTO_ERR_INVALID);

	dup = proto_bytes_strdup(B("abc", 2));
	assert_string_equal(dup, "ab");
	free(dup);
	assert_true(proto_bytes_eq(S("x"), "x"));
	assert_false(proto_bytes_eq(S("x"), "xy"));
	assert_true(proto_bytes_eq(B(NULL, 0), ""));
}

/* ---- IMPORT records ---- */

static void test_import_records(void **state)
{
	static const uint8_t h1[32] = { 1, 2, 3 }, h2[32] = { 9 };
	struct proto_import_record in[3], out;
	struct proto_import_iter it;
	struct buf_writer w;
	uint8_t *copy;
	size_t len;
	int n = 0, e;

	(void)state;
	memset(in, 0, sizeof(in));
	in[0].device_id = S("8912230200031010008f");
	in[0].index = 1;
	in[0].cert_sha256 = BA(h1);
	in[1].device_id = S("89049032000001000000000000000001");
	in[1].index = 4294967295u;
	in[1].cert_der = BA(cert);
	in[2].device_id = S("ab");
	in[2].index = 7;
	in[2].cert_sha256 = BA(h1);
	in[2].spki_sha256 = BA(h2);
	buf_writer_init(&w, 1 << 20);
	for (int i = 0; i < 3; i++)
		assert_int_equal(proto_import_record_encode(&w, &in[i]), PROTO_OK);
	/* 4 + 20 + 4 + 4 + 32 + 4 + 4: a hash-only record with an ICCID is 72 bytes. */
	proto_import_iter_init(&it, B(buf_writer_data(&w), buf_writer_len(&w)));
	while ((e = proto_import_iter_next(&it, &out)) == 1) {
		assert_true(bytes_same(out.device_id, in[n].device_id));
		assert_int_equal(out.index, in[n].index);
		assert_true(bytes_same(out.cert_sha256, in[n].cert_sha256));
		assert_true(bytes_same(out.spki_sha256, in[n].spki_sha256));
		assert_true(bytes_same(out.cert_der, in[n].cert_der));
		n++;
	}
	assert_int_equal(e, 0);
	assert_int_equal(n, 3);
	assert_int_equal(it.n, 3);

	/* Every cut inside the last record is refused, and stays refused. */
	len = buf_writer_len(&w);
	for (size_t cut = 1; cut < 4 + 2 + 4 + 4 + 32 + 4 + 32 + 4; cut++) {
		proto_import_iter_init(&it, B(buf_writer_data(&w), len - cut));
		assert_int_equal(proto_import_iter_next(&it, &out), 1);
		assert_int_equal(proto_import_iter_next(&it, &out), 1);
		assert_int_equal(proto_import_iter_next(&it, &out), PROTO_ERR_BAD_FRAME);
		assert_int_equal(proto_import_iter_next(&it, &out), PROTO_ERR_BAD_FRAME);
	}
	/* A hash of another length, an id above its maximum, a NUL in the id. */
	copy = malloc(len);
	assert_non_null(copy);
	memcpy(copy, buf_writer_data(&w), len);
	copy[4 + 20 + 4 + 3] = 31; /* first record's cert_sha256 length */
	proto_import_iter_init(&it, B(copy, len));
	assert_int_equal(proto_import_iter_next(&it, &out), PROTO_ERR_FIELD_LIMIT);
	memcpy(copy, buf_writer_data(&w), len);
	copy[4] = 0;
	proto_import_iter_init(&it, B(copy, len));
	assert_int_equal(proto_import_iter_next(&it, &out), PROTO_ERR_BAD_TEXT);
	free(copy);

	/* The encoder refuses what the reader would. */
	buf_writer_reset(&w);
	in[0].cert_sha256 = B(h1, 31);
	assert_int_equal(proto_import_record_encode(&w, &in[0]), PROTO_ERR_FIELD_LIMIT);
	in[0].cert_sha256 = BA(h1);
	in[0].device_id = B("0123456789012345678901234567890123456789012345678901234567890123456789", 65);
	assert_int_equal(proto_import_record_encode(&w, &in[0]), PROTO_ERR_FIELD_LIMIT);
	assert_int_equal(buf_writer_len(&w), 0);
	buf_writer_release(&w);
}

/* ---- --vectors mode ---- */

static void print_hex(const uint8_t *p, size_t n)
{
	putchar('"');
	for (size_t i = 0; i < n; i++)
		printf("%02x", p[i]);
	putchar('"');
}

/* Text samples are ASCII or UTF-8 without quotes needing escapes except '"'. */
static void print_text(struct proto_bytes b)
{
	putchar('"');
	for (size_t i = 0; i < b.len; i++) {
		if (b.ptr[i] == '"' || b.ptr[i] == '\\')
			putchar('\\');
		putchar(b.ptr[i]);
	}
	putchar('"');
}

static void kv_u(const char *k, uint64_t v, int *first)
{
	printf("%s\"%s\":%llu", *first ? "" : ",", k, (unsigned long long)v);
	*first = 0;
}

static void kv_t(const char *k, struct proto_bytes b, int *first)
{
	printf("%s\"%s\":", *first ? "" : ",", k);
	print_text(b);
	*first = 0;
}

static void kv_b(const char *k, struct proto_bytes b, int *first)
{
	printf("%s\"%s\":", *first ? "" : ",", k);
	print_hex(b.ptr, b.len);
	*first = 0;
}

static void kv_chain(const char *k, const struct proto_chain *c, int *first)
{
	printf("%s\"%s\":[", *first ? "" : ",", k);
	for (uint32_t i = 0; i < c->count; i++) {
		if (i)
			putchar(',');
		print_hex(c->der[i].ptr, c->der[i].len);
	}
	putchar(']');
	*first = 0;
}

static void print_request_fields(const struct proto_request *q)
{
	int f = 1;

	switch (q->op) {
	case PROTO_OP_HELLO:
		kv_u("min_version", q->u.hello.min_version, &f);
		kv_u("max_version", q->u.hello.max_version, &f);
		kv_t("client", q->u.hello.client, &f);
		break;
	case PROTO_OP_ISSUE:
		kv_t("device_id", q->u.issue.device_id, &f);
		kv_u("index", q->u.issue.index, &f);
		kv_t("profile", q->u.issue.profile, &f);
		kv_b("csr_der", q->u.issue.csr_der, &f);
		break;
	case PROTO_OP_REVOKE:
		kv_t("device_id", q->u.revoke.device_id, &f);
		kv_u("index", q->u.revoke.index, &f);
		kv_t("serial_hex", q->u.revoke.serial_hex, &f);
		kv_t("reason", q->u.revoke.reason, &f);
		break;
	case PROTO_OP_REISSUE:
		kv_t("device_id", q->u.reissue.device_id, &f);
		kv_u("old_index", q->u.reissue.old_index, &f);
		kv_t("profile", q->u.reissue.profile, &f);
		kv_b("csr_der", q->u.reissue.csr_der, &f);
		break;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_UNPUBLISH:
		kv_t("owner", q->u.rr.owner, &f);
		kv_t("rrtype", q->u.rr.rrtype, &f);
		kv_u("ttl", q->u.rr.ttl, &f);
		kv_t("rdata", q->u.rr.rdata, &f);
		break;
	case PROTO_OP_SIGN_RRSET:
		kv_t("zone", q->u.sign_rrset.zone, &f);
		kv_b("rrset_wire", q->u.sign_rrset.rrset_wire, &f);
		kv_u("inception", q->u.sign_rrset.inception, &f);
		kv_u("expiration", q->u.sign_rrset.expiration, &f);
		break;
	case PROTO_OP_IMPORT:
		kv_u("import_id", q->u.import.import_id, &f);
		kv_u("seq", q->u.import.seq, &f);
		kv_u("flags", q->u.import.flags, &f);
		kv_u("idle_timeout", q->u.import.idle_timeout, &f);
		kv_b("records", q->u.import.records, &f);
		break;
	}
}

static void print_reply_fields(const struct proto_reply *p)
{
	int f = 1;

	if (p->type == PROTO_REPLY_ERROR) {
		kv_u("code", p->u.error.code, &f);
		kv_t("message", p->u.error.message, &f);
		return;
	}
	switch (p->op) {
	case PROTO_OP_HELLO:
		kv_u("version", p->u.hello.version, &f);
		kv_u("max_frame", p->u.hello.max_frame, &f);
		kv_t("server", p->u.hello.server, &f);
		break;
	case PROTO_OP_ISSUE:
	case PROTO_OP_REISSUE:
		kv_b("cert_der", p->u.cert.cert_der, &f);
		kv_chain("chain", &p->u.cert.chain, &f);
		kv_t("serial_hex", p->u.cert.serial_hex, &f);
		kv_u("zone_serial", p->u.cert.zone_serial, &f);
		kv_u("index", p->u.cert.index, &f);
		break;
	case PROTO_OP_REVOKE:
		kv_t("serial_hex", p->u.revoke.serial_hex, &f);
		kv_u("revoked_at", p->u.revoke.revoked_at, &f);
		kv_u("zone_serial", p->u.revoke.zone_serial, &f);
		break;
	case PROTO_OP_CRL:
		kv_b("crl_der", p->u.crl_der, &f);
		break;
	case PROTO_OP_CHAIN:
		kv_chain("chain", &p->u.chain, &f);
		break;
	case PROTO_OP_STATUS:
	case PROTO_OP_ZONE_STATUS:
		kv_t("json", p->u.json, &f);
		break;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_UNPUBLISH:
		kv_u("zone_serial", p->u.zone_serial, &f);
		break;
	case PROTO_OP_IMPORT:
		kv_u("records", p->u.import.records, &f);
		kv_u("zone_serial", p->u.import.zone_serial, &f);
		break;
	case PROTO_OP_SIGN_RRSET:
		kv_b("rrsig_wire", p->u.rrsig_wire, &f);
		break;
	}
}

static int print_vectors(void)
{
	struct buf_writer w;

	buf_writer_init(&w, 1 << 20);
	for (uint8_t op = PROTO_OP_HELLO; op <= PROTO_OP_MAX; op++) {
		struct proto_request q;

		sample_request(op, &q);
		buf_writer_reset(&w);
		if (proto_request_encode(&w, &q) != PROTO_OK)
			return 1;
		printf("{\"kind\":\"request\",\"op\":%u,\"id\":%u,\"fields\":{", op, q.id);
		print_request_fields(&q);
		printf("},\"frame\":");
		print_hex(buf_writer_data(&w), buf_writer_len(&w));
		printf("}\n");
	}
	for (uint8_t op = 0; op <= PROTO_OP_MAX; op++) {
		struct proto_reply p;

		sample_reply(op, &p);
		buf_writer_reset(&w);
		if (proto_reply_encode(&w, &p) != PROTO_OK)
			return 1;
		printf("{\"kind\":\"%s\",\"op\":%u,\"id\":%u,\"fields\":{",
		       op == 0 ? "error" : "reply", op, p.id);
		print_reply_fields(&p);
		printf("},\"frame\":");
		print_hex(buf_writer_data(&w), buf_writer_len(&w));
		printf("}\n");
	}
	buf_writer_release(&w);
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_request_roundtrip),
		cmocka_unit_test(test_reply_roundtrip),
		cmocka_unit_test(test_pipelined_frames),
		cmocka_unit_test(test_truncated),
		cmocka_unit_test(test_trailing),
		cmocka_unit_test(test_oversized),
		cmocka_unit_test(test_lying_lengths),
		cmocka_unit_test(test_unknown_type),
		cmocka_unit_test(test_text_fields),
		cmocka_unit_test(test_encoder_refusals),
		cmocka_unit_test(test_error_encode),
		cmocka_unit_test(test_document_examples),
		cmocka_unit_test(test_names_and_helpers),
		cmocka_unit_test(test_import_records),
	};

	if (argc == 2 && strcmp(argv[1], "--vectors") == 0)
		return print_vectors();
	return cmocka_run_group_tests(tests, NULL, NULL);
}
