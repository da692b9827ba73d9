/*
 * libFuzzer target for the signing-socket codec (signer/proto, signer/buf).
 *
 * Every input is decoded as a request and as a reply, whole and as a stream
 * of frames split with proto_frame_peek(). Whatever decodes must re-encode to
 * exactly the same bytes: the decoder accepts only canonical frames, so a
 * difference means decoder and encoder disagree. Crashes and sanitizer
 * reports are the other findings.
 *
 * Build: configure with CC=clang; the target fuzz_proto is added then.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "signer/proto.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_same(const struct buf_writer *w, const uint8_t *data, size_t size)
{
	if (buf_writer_len(w) != size || memcmp(buf_writer_data(w), data, size) != 0)
		abort();
}

static void one_frame(const uint8_t *data, size_t size)
{
	struct proto_request q;
	struct proto_reply p;
	struct buf_writer w;

	buf_writer_init(&w, 2u * PROTO_REPLY_MAX);
	if (proto_request_decode(data, size, PROTO_REQUEST_MAX, &q) == PROTO_OK) {
		if (proto_request_encode(&w, &q) != PROTO_OK)
			abort();
		check_same(&w, data, size);
		buf_writer_reset(&w);
	}
	if (proto_reply_decode(data, size, PROTO_REPLY_MAX, &p) == PROTO_OK) {
		if (proto_reply_encode(&w, &p) != PROTO_OK)
			abort();
		check_same(&w, data, size);
		/* Text fields of a decoded reply are safe C strings once copied. */
		if (p.type == PROTO_REPLY_ERROR) {
			char *m = proto_bytes_strdup(p.u.error.message);

			if (m != NULL && strlen(m) != p.u.error.message.len)
				abort();
			free(m);
		}
	}
	buf_writer_release(&w);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t off = 0, frame;
	struct proto_header h;
	char serial[PROTO_MAX_SERIAL_HEX + 1];

	one_frame(data, size);
	(void)proto_header_parse(data, size, PROTO_REQUEST_MAX, &h);
	/* As a server reads a stream: peek, then decode each whole frame. */
	while (proto_frame_peek(data + off, size - off, PROTO_REQUEST_MAX, &frame) == PROTO_OK &&
	       frame <= size - off) {
		one_frame(data + off, frame);
		off += frame;
	}
	{
		struct proto_bytes b = { data, size };

		(void)proto_serial_normalize(b, serial);
	}
	return 0;
}
