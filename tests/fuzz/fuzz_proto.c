/*
 * libFuzzer target for the signing-socket codec (signer/proto, signer/buf).
 *
 * Every input is decoded as a request and as a reply, whole and as a stream
 * of frames split with proto_frame_peek(). Whatever decodes must re-encode to
 * exactly the same bytes: the decoder accepts only canonical frames, so a
 * difference means decoder and encoder disagree. The packed records of an
 * IMPORT chunk (and the whole input, read as such records) get the same
 * round trip through proto_import_iter_next() and proto_import_record_encode().
 * Crashes and sanitizer reports are the other findings.
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
	if (buf_writer_len(w) != size)
		abort();
	if (size != 0 && memcmp(buf_writer_data(w), data, size) != 0)
		abort();
}

/* Reads @p records as IMPORT records; the records read re-encode to their bytes. */
static void import_records(struct proto_bytes records)
{
	struct proto_import_iter it;
	struct proto_import_record rec;
	struct buf_writer w;
	int r;

	buf_writer_init(&w, 2u * PROTO_REQUEST_MAX);
	proto_import_iter_init(&it, records);
	while ((r = proto_import_iter_next(&it, &rec)) == 1)
		if (proto_import_record_encode(&w, &rec) != PROTO_OK)
			abort();
	/* After an error the iterator stays failed. */
	if (r != 0 && proto_import_iter_next(&it, &rec) != r)
		abort();
	if (r == 0)
		check_same(&w, records.ptr, records.len);
	buf_writer_release(&w);
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
		if (q.op == PROTO_OP_IMPORT)
			import_records(q.u.import.records);
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
		import_records(b);
	}
	return 0;
}
