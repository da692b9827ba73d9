/*
 * server_reply.c - the reply side of a signing socket connection: replies
 * queued, gathered and written.
 *
 * Replies are gathered per connection for the rest of the loop iteration
 * that made them and written once per connection before the loop blocks
 * again (a prepare and a check handle, like hsmlink's requests): under
 * pipelined load the daemon finishes requests in batches (a group commit,
 * a batch of HSM results), and a write system call per reply, or per
 * connection twice per batch, cost more than the replies themselves. The
 * buffer a write took is kept to gather the next replies, so a steady
 * stream of replies costs no allocation per write.
 */
#include <stdlib.h>
#include <string.h>

#include "signer/buf.h"
#include "signer/proto.h"
#include "signer/server_int.h"

static void conn_flush(server_conn_t *c);

static void
write_cb(uv_write_t *req, int status)
{
	struct server_write *w = (struct server_write *)req;
	server_conn_t *c = w->conn;

	c->wbytes -= w->len;
	c->writing = 0;
	c->last_write = uv_now(c->srv->loop);
	if (status < 0 || (c->close_after && c->wbytes == 0))
		server__conn_close_now(c);
	if (c->out == NULL && !c->closing && w->cap <= SERVER_OUT_KEEP) {
		/* The written buffer gathers the next replies: no malloc per write. */
		c->out = w->data;
		c->out_cap = w->cap;
		c->out_len = 0;
	} else {
		free(w->data);
	}
	free(w);
	if (!c->closing) {
		conn_flush(c); /* what gathered meanwhile goes in one write */
		server__conn_maybe_read(c);
	}
	server_conn_unref(c);
}

/* Hands @p data (owned, @p cap bytes allocated, counted in wbytes) to one uv_write. */
static void
conn_start_write(server_conn_t *c, uint8_t *data, size_t len, size_t cap)
{
	struct server_write *w = calloc(1, sizeof(*w));
	uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);

	if (w == NULL) {
		free(data);
		server__conn_close_now(c); /* out of memory: the peer loses its replies */
		return;
	}
	w->conn = c;
	w->data = data;
	w->len = len;
	w->cap = cap;
	server_conn_ref(c);
	if (uv_write(&w->req, (uv_stream_t *)&c->pipe, &b, 1, write_cb) != 0) {
		free(data);
		free(w);
		server__conn_close_now(c);
		server_conn_unref(c);
		return;
	}
	c->writing = 1;
}

/* Writes the gathered replies, if no write is on its way. */
static void
conn_flush(server_conn_t *c)
{
	uint8_t *data = c->out;
	size_t len = c->out_len, cap = c->out_cap;

	if (c->closing || c->writing || len == 0)
		return;
	c->out = NULL;
	c->out_len = c->out_cap = 0;
	conn_start_write(c, data, len, cap);
}

/* Writes every connection's gathered replies: the end of a loop iteration. */
void
server__flush_all(server_t *s)
{
	server_conn_t *c = s->dirty;

	uv_prepare_stop(&s->flush_prepare);
	uv_check_stop(&s->flush_check);
	s->dirty = NULL;
	while (c != NULL) {
		server_conn_t *next = c->dirty_next;

		c->dirty = 0;
		c->dirty_next = NULL;
		conn_flush(c); /* (a write still on its way takes them in write_cb) */
		server_conn_unref(c);
		c = next;
	}
}

static void
flush_prepare_cb(uv_prepare_t *h)
{
	server__flush_all(h->data);
}

static void
flush_check_cb(uv_check_t *h)
{
	server__flush_all(h->data);
}

/* Puts c on the list written before the loop blocks again. */
static void
conn_schedule(server_conn_t *c)
{
	server_t *s = c->srv;

	if (c->dirty || c->closing)
		return;
	c->dirty = 1;
	server_conn_ref(c);
	c->dirty_next = s->dirty;
	if (s->dirty == NULL) {
		uv_prepare_start(&s->flush_prepare, flush_prepare_cb);
		uv_check_start(&s->flush_check, flush_check_cb);
	}
	s->dirty = c;
}

/*
 * Queues bytes for the peer; takes ownership of data. They are gathered with
 * the connection's other replies and written at the end of the loop
 * iteration (or, while a write is on its way, when it is done); a closing
 * server, which has no flush handles any more, writes at once.
 */
static void
conn_write(server_conn_t *c, uint8_t *data, size_t len, int close_after)
{
	if (c->closing) {
		free(data);
		return;
	}
	if (c->wbytes == 0)
		c->last_write = uv_now(c->srv->loop); /* the write time-out starts now */
	c->wbytes += len;
	if (close_after) {
		c->close_after = 1;
		c->no_more_reads = 1;
	}
	{
		if (c->out_len + len > c->out_cap) {
			size_t cap = c->out_cap ? c->out_cap : 4096;
			uint8_t *p;

			while (cap < c->out_len + len)
				cap *= 2;
			if ((p = realloc(c->out, cap)) == NULL) {
				free(data);
				server__conn_close_now(c);
				return;
			}
			c->out = p;
			c->out_cap = cap;
		}
		memcpy(c->out + c->out_len, data, len);
		c->out_len += len;
		free(data);
	}
	if (c->srv->closing)
		conn_flush(c);
	else
		conn_schedule(c);
	if (c->closing)
		return;
	if (close_after)
		server__conn_maybe_read(c);
	/* Backpressure: a peer that does not read its replies stops being read. */
	if (c->wbytes > c->srv->opts.write_high_water)
		server__conn_maybe_read(c);
}

void
server_conn_reply(server_conn_t *c, uint8_t *data, size_t len, int close_after)
{
	if (c->pending > 0)
		c->pending--;
	conn_write(c, data, len, close_after);
}

/* Answers an error with id 0 (or the request's id) without the daemon. */
void
server__conn_error(server_conn_t *c, uint32_t id, uint32_t code, const char *msg, int close_after)
{
	struct buf_writer w;
	uint8_t *data = NULL;
	size_t len = 0;

	buf_writer_init(&w, PROTO_REPLY_MAX);
	if (proto_error_encode(&w, id, code, msg) != PROTO_OK ||
	    buf_writer_take(&w, &data, &len) != BUF_OK) {
		buf_writer_release(&w);
		server__conn_close_now(c);
		return;
	}
	buf_writer_release(&w);
	conn_write(c, data, len, close_after);
}
