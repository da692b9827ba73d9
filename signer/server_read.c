/*
 * server_read.c - the read side of a signing socket connection: bytes
 * gathered, whole frames handed on, reading stopped and started again for
 * backpressure.
 *
 * A connection's bytes collect in one buffer that grows only as far as the
 * frame being read needs (its length was checked first) plus one read's
 * worth; whole frames are handed on as soon as they are there.
 */
#include <stdlib.h>
#include <string.h>

#include "signer/proto.h"
#include "signer/server_int.h"

static void
alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	server_conn_t *c = h->data;
	size_t want = c->rx_len + SERVER_READ_CHUNK;

	(void)suggested;
	/* c->expect was checked against max_frame before it was set. */
	if (c->expect > want)
		want = c->expect;
	if (want > c->rx_cap) {
		uint8_t *p = realloc(c->rx, want);

		if (p == NULL) {
			*buf = uv_buf_init(NULL, 0); /* libuv reports UV_ENOBUFS */
			return;
		}
		c->rx = p;
		c->rx_cap = want;
	}
	*buf = uv_buf_init((char *)c->rx + c->rx_len, (unsigned)(c->rx_cap - c->rx_len));
}

/* Hands on every whole frame in the buffer; returns 0, or -1 if framing broke. */
static int
conn_frames(server_conn_t *c)
{
	server_t *s = c->srv;
	size_t off = 0;
	int r = 0;

	c->expect = 0;
	/* Frames already read wait in the buffer while replies pile up. */
	while (!c->closing && !c->no_more_reads && c->rx_len > off &&
	       c->wbytes <= s->opts.write_high_water) {
		size_t fsize = 0;
		int e = proto_frame_peek(c->rx + off, c->rx_len - off, s->opts.max_frame, &fsize);

		if (e == PROTO_ERR_SHORT)
			break;
		if (e != PROTO_OK) {
			uint32_t length = ((uint32_t)c->rx[off] << 24) | ((uint32_t)c->rx[off + 1] << 16) |
					  ((uint32_t)c->rx[off + 2] << 8) | c->rx[off + 3];

			server__conn_error(c, 0, proto_err_code(e),
				   e == PROTO_ERR_TOO_LARGE ? "frame length above the server's maximum"
							    : "frame length below 5", 1);
			if (s->cb.frame_error)
				s->cb.frame_error(s->arg, c, e, length);
			r = -1;
			break;
		}
		if (c->rx_len - off < fsize) {
			c->expect = fsize;
			break;
		}
		if (c->pending >= s->opts.queue_depth) {
			struct proto_header h;

			(void)proto_header_parse(c->rx + off, fsize, s->opts.max_frame, &h);
			server__conn_error(c, h.id, PROTO_CODE_BUSY, "too many requests waiting on this connection", 0);
			if (s->cb.busy)
				s->cb.busy(s->arg, c, h.id);
		} else {
			c->pending++;
			s->cb.frame(s->arg, c, c->rx + off, fsize);
		}
		off += fsize;
	}
	if (off > 0) {
		memmove(c->rx, c->rx + off, c->rx_len - off);
		c->rx_len -= off; /* c->expect still holds: its frame now starts at 0 */
		c->rx_since = uv_now(s->loop); /* what is left is a new frame */
	}
	/* Give back a large buffer once its frame is done. */
	if (c->rx_len == 0 && c->rx_cap > 2 * SERVER_READ_CHUNK) {
		free(c->rx);
		c->rx = NULL;
		c->rx_cap = 0;
	}
	return r;
}

static void
read_cb(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf)
{
	server_conn_t *c = st->data;

	(void)buf;
	if (nread < 0) {
		server__conn_close_now(c);
		return;
	}
	if (nread > 0) {
		c->last_read = uv_now(c->srv->loop);
		if (c->rx_len == 0)
			c->rx_since = c->last_read;
	}
	c->rx_len += (size_t)nread;
	server_conn_ref(c);
	c->in_frames = 1;
	(void)conn_frames(c);
	c->in_frames = 0;
	if (!c->closing)
		server__conn_maybe_read(c);
	server_conn_unref(c);
}

/*
 * Starts or stops reading according to the connection's state; before it
 * starts again, it hands on the frames backpressure held in the buffer.
 * The caller holds a reference on c.
 */
void
server__conn_maybe_read(server_conn_t *c)
{
	size_t hw = c->srv->opts.write_high_water;
	int want;

	if (c->closing)
		return;
	if (c->no_more_reads || c->srv->reading_stopped)
		want = 0;
	else if (c->read_on)
		want = c->wbytes <= hw;
	else
		want = c->wbytes <= hw / 2;
	if (want && !c->read_on && c->rx_len > 0 && !c->in_frames) {
		/* Frames held back by backpressure go first. (Every caller holds a
		 * reference on c, so the frame callback cannot free it here.) */
		c->in_frames = 1;
		(void)conn_frames(c);
		c->in_frames = 0;
		want = !c->closing && !c->no_more_reads && c->wbytes <= hw;
	}
	if (want && !c->read_on) {
		if (uv_read_start((uv_stream_t *)&c->pipe, alloc_cb, read_cb) == 0)
			c->read_on = 1;
	} else if (!want && c->read_on) {
		uv_read_stop((uv_stream_t *)&c->pipe);
		c->read_on = 0;
	}
}
