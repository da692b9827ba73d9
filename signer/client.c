/*
 * libregsign-client: the connection, the window of outstanding requests
 * and the framing. See client.h for the API and docs/PROTOCOL.md for the
 * protocol; the messages (requests built, replies copied, one call per
 * operation) are in client_msg.c.
 *
 * The socket is non-blocking and every wait is a poll() with the caller's
 * timeout. Writing and reading are interleaved: while queued requests are
 * written, replies that arrive are read into the receive buffer, because a
 * server that applies backpressure stops reading a client that does not read
 * its replies, and a client that only wrote would then block forever.
 *
 * Outstanding requests live in a table of `window` slots indexed by
 * id & (window - 1). Ids are handed out in sequence, skipping those whose
 * slot is still taken by a request that has not been answered yet.
 */
#include "signer/client.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "signer/buf.h"
#include "signer/client_int.h"
#include "signer/proto.h"

/* The public header repeats the protocol's numbers; keep them equal. */
_Static_assert(REGSIGN_PROTOCOL_VERSION == PROTO_VERSION, "version");
_Static_assert((int)REGSIGN_OP_ZONE_STATUS == (int)PROTO_OP_ZONE_STATUS, "ops");
_Static_assert((int)REGSIGN_OP_IMPORT == (int)PROTO_OP_IMPORT, "ops");
_Static_assert(REGSIGN_IMPORT_FINAL == PROTO_IMPORT_FINAL, "import flags");
_Static_assert((int)REGSIGN_OP_HELLO == (int)PROTO_OP_HELLO, "ops");
_Static_assert((int)REGSIGN_CODE_VERSION == (int)PROTO_CODE_VERSION, "codes");
_Static_assert((int)REGSIGN_CODE_BAD_FRAME == (int)PROTO_CODE_BAD_FRAME, "codes");

#define DEFAULT_TIMEOUT_MS 30000
#define DEFAULT_WINDOW 1024
#define MAX_WINDOW 65536
/* Queued request bytes are written once they pass this. */
#define TX_FLUSH_AT (64 * 1024)
/* The queue never holds more than the threshold plus one frame. */
#define TX_MAX (TX_FLUSH_AT + PROTO_REQUEST_MAX + PROTO_LEN_SIZE)
#define RX_CHUNK (64 * 1024)

struct regsign_client {
	int fd;
	int timeout_ms;
	uint32_t window; /* power of two */
	uint32_t next_id;
	uint32_t outstanding;
	uint8_t *slot_op;  /* window entries; 0 = free */
	uint32_t *slot_id; /* window entries */
	struct buf_writer tx;
	size_t tx_off; /* bytes of tx already written */
	uint8_t *rx;
	size_t rx_off, rx_len, rx_cap;
	int eof; /* the server closed its side */
	char errmsg[256];
};

const char *regsign_client_strerror(int err)
{
	switch (err) {
	case REGSIGN_CLIENT_OK:
		return "success";
	case REGSIGN_CLIENT_ERR_REFUSED:
		return "refused by the server";
	case REGSIGN_CLIENT_ERR_CONNECT:
		return "cannot connect";
	case REGSIGN_CLIENT_ERR_IO:
		return "connection failed";
	case REGSIGN_CLIENT_ERR_TIMEOUT:
		return "timed out";
	case REGSIGN_CLIENT_ERR_PROTOCOL:
		return "malformed reply from the server";
	case REGSIGN_CLIENT_ERR_INVALID:
		return "invalid argument";
	case REGSIGN_CLIENT_ERR_WINDOW:
		return "too many requests outstanding";
	case REGSIGN_CLIENT_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown error";
}

static void set_err(regsign_client *c, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void set_err(regsign_client *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->errmsg, sizeof(c->errmsg), fmt, ap);
	va_end(ap);
}

int regsign_client_new(regsign_client **out)
{
	regsign_client *c;

	*out = NULL;
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return REGSIGN_CLIENT_ERR_NOMEM;
	c->fd = -1;
	c->timeout_ms = DEFAULT_TIMEOUT_MS;
	c->window = DEFAULT_WINDOW;
	c->next_id = 1;
	buf_writer_init(&c->tx, TX_MAX);
	*out = c;
	return REGSIGN_CLIENT_OK;
}

/* Drops the connection; buffered replies stay readable by recv. */
static void conn_close(regsign_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	buf_writer_reset(&c->tx);
	c->tx_off = 0;
}

void regsign_client_free(regsign_client *c)
{
	if (c == NULL)
		return;
	conn_close(c);
	buf_writer_release(&c->tx);
	free(c->slot_op);
	free(c->slot_id);
	free(c->rx);
	free(c);
}

void regsign_client_set_timeout(regsign_client *c, int timeout_ms)
{
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : -1;
}

int regsign_client_set_window(regsign_client *c, uint32_t window)
{
	uint32_t w = 1;

	if (c->fd >= 0 || c->slot_op != NULL || window == 0 || window > MAX_WINDOW) {
		set_err(c, "window must be 1..%d and set before connecting", MAX_WINDOW);
		return REGSIGN_CLIENT_ERR_INVALID;
	}
	while (w < window)
		w <<= 1;
	c->window = w;
	return REGSIGN_CLIENT_OK;
}

const char *regsign_client_errmsg(const regsign_client *c)
{
	return c->errmsg;
}

int regsign_client_fd(const regsign_client *c)
{
	return c->fd;
}

uint32_t regsign_client_outstanding(const regsign_client *c)
{
	return c->outstanding;
}

int regsign_client_connect(regsign_client *c, const char *path)
{
	struct sockaddr_un sa;
	int fd = -1, flags;
	int r = REGSIGN_CLIENT_ERR_CONNECT;

	if (c->fd >= 0 || c->slot_op != NULL) {
		set_err(c, "already connected");
		return REGSIGN_CLIENT_ERR_INVALID;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (path == NULL || strlen(path) >= sizeof(sa.sun_path) || path[0] == '\0') {
		set_err(c, "socket path empty or longer than %zu bytes", sizeof(sa.sun_path) - 1);
		return REGSIGN_CLIENT_ERR_INVALID;
	}
	memcpy(sa.sun_path, path, strlen(path));
	c->slot_op = calloc(c->window, sizeof(*c->slot_op));
	c->slot_id = calloc(c->window, sizeof(*c->slot_id));
	if (c->slot_op == NULL || c->slot_id == NULL) {
		r = REGSIGN_CLIENT_ERR_NOMEM;
		set_err(c, "out of memory");
		goto out;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		set_err(c, "socket: %s", strerror(errno));
		goto out;
	}
	/* Connect blocking (a Unix socket connects at once or fails), then
	 * switch to non-blocking for the poll loop. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		set_err(c, "connect %s: %s", path, strerror(errno));
		goto out;
	}
	flags = fcntl(fd, F_GETFL);
	if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
		set_err(c, "fcntl: %s", strerror(errno));
		goto out;
	}
	c->fd = fd;
	fd = -1;
	c->eof = 0;
	c->errmsg[0] = '\0';
	r = REGSIGN_CLIENT_OK;
out:
	if (fd >= 0)
		close(fd);
	if (r != REGSIGN_CLIENT_OK) {
		free(c->slot_op);
		free(c->slot_id);
		c->slot_op = NULL;
		c->slot_id = NULL;
	}
	return r;
}

/* Fails the connection: closes it and records why. */
static int conn_fail(regsign_client *c, int err, const char *what)
{
	set_err(c, "%s", what);
	conn_close(c);
	return err;
}

/*
 * Reads whatever is available without blocking. Returns OK (possibly
 * having read nothing), or ERR_IO / ERR_NOMEM after failing the connection.
 */
static int rx_fill(regsign_client *c)
{
	for (;;) {
		size_t space;
		ssize_t n;

		if (c->rx_off > 0 && c->rx_off == c->rx_len)
			c->rx_off = c->rx_len = 0;
		if (c->rx_cap - c->rx_len < RX_CHUNK) {
			/* Compact first; grow only when that does not free a chunk. */
			if (c->rx_off > 0) {
				memmove(c->rx, c->rx + c->rx_off, c->rx_len - c->rx_off);
				c->rx_len -= c->rx_off;
				c->rx_off = 0;
			}
			if (c->rx_cap - c->rx_len < RX_CHUNK) {
				size_t cap = c->rx_cap ? c->rx_cap * 2 : 2 * RX_CHUNK;
				uint8_t *p = realloc(c->rx, cap);

				if (p == NULL)
					return conn_fail(c, REGSIGN_CLIENT_ERR_NOMEM, "out of memory");
				c->rx = p;
				c->rx_cap = cap;
			}
		}
		space = c->rx_cap - c->rx_len;
		n = recv(c->fd, c->rx + c->rx_len, space, MSG_DONTWAIT);
		if (n > 0) {
			c->rx_len += (size_t)n;
			/* Less than asked for: the socket had no more just now (a
			 * stream socket hands over what it holds); asking again
			 * would only be told EAGAIN. */
			if ((size_t)n < space)
				return REGSIGN_CLIENT_OK;
			continue;
		}
		if (n == 0) {
			c->eof = 1;
			return REGSIGN_CLIENT_OK;
		}
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return REGSIGN_CLIENT_OK;
		if (errno == EINTR)
			continue;
		set_err(c, "read: %s", strerror(errno));
		conn_close(c);
		return REGSIGN_CLIENT_ERR_IO;
	}
}

/* Waits for the socket; returns OK, ERR_TIMEOUT or ERR_IO. */
static int conn_wait(regsign_client *c, short events, short *revents)
{
	struct pollfd p = { .fd = c->fd, .events = events };
	int n;

	do
		n = poll(&p, 1, c->timeout_ms);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return conn_fail(c, REGSIGN_CLIENT_ERR_IO, "poll failed");
	if (n == 0)
		return conn_fail(c, REGSIGN_CLIENT_ERR_TIMEOUT, "timed out waiting for the server");
	*revents = p.revents;
	return REGSIGN_CLIENT_OK;
}

int regsign_client_flush(regsign_client *c)
{
	int r = REGSIGN_CLIENT_OK;

	while (r == REGSIGN_CLIENT_OK && c->tx_off < buf_writer_len(&c->tx)) {
		const uint8_t *p = buf_writer_data(&c->tx) + c->tx_off;
		size_t left = buf_writer_len(&c->tx) - c->tx_off;
		ssize_t n;
		short ev = 0;

		if (c->fd < 0)
			return REGSIGN_CLIENT_ERR_IO;
		n = send(c->fd, p, left, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			c->tx_off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			/* Keep what was received: the server may have said why
			 * it closed (e.g. TOO_LARGE) before doing so. */
			rx_fill(c);
			set_err(c, "write: %s", strerror(errno));
			conn_close(c);
			return REGSIGN_CLIENT_ERR_IO;
		}
		/* After the server's EOF, POLLIN would stay ready forever. */
		r = conn_wait(c, POLLOUT | (c->eof ? 0 : POLLIN), &ev);
		if (r == REGSIGN_CLIENT_OK && !c->eof && (ev & (POLLIN | POLLHUP | POLLERR)))
			r = rx_fill(c);
	}
	if (r == REGSIGN_CLIENT_OK) {
		buf_writer_reset(&c->tx);
		c->tx_off = 0;
	}
	return r;
}

int regsign_client_send(regsign_client *c, const struct regsign_request *req, uint32_t *id)
{
	struct proto_request q;
	uint32_t slot, rid;
	int e;

	if (id != NULL)
		*id = 0;
	if (c->fd < 0) {
		set_err(c, "not connected");
		return REGSIGN_CLIENT_ERR_IO;
	}
	if (req->op < REGSIGN_OP_HELLO || req->op > REGSIGN_OP_IMPORT) {
		set_err(c, "unknown operation %d", (int)req->op);
		return REGSIGN_CLIENT_ERR_INVALID;
	}
	if (c->outstanding >= c->window) {
		set_err(c, "%u requests outstanding", c->outstanding);
		return REGSIGN_CLIENT_ERR_WINDOW;
	}
	/* Replies come back out of order, so the slot of the next id in
	 * sequence may still be taken: skip to the next free one (there is
	 * one, since fewer than window requests are outstanding). */
	rid = c->next_id;
	while (c->slot_op[rid & (c->window - 1)] != 0)
		rid = rid == UINT32_MAX ? 1 : rid + 1;
	slot = rid & (c->window - 1);
	client__request_build(req, rid, &q);
	e = proto_request_encode(&c->tx, &q);
	if (e == PROTO_ERR_NOMEM)
		return conn_fail(c, REGSIGN_CLIENT_ERR_NOMEM, "out of memory");
	if (e != PROTO_OK) {
		set_err(c, "cannot encode %s: %s", proto_op_name(q.op), proto_strerror(e));
		return REGSIGN_CLIENT_ERR_INVALID;
	}
	c->slot_op[slot] = q.op;
	c->slot_id[slot] = rid;
	c->outstanding++;
	c->next_id = rid == UINT32_MAX ? 1 : rid + 1;
	if (id != NULL)
		*id = rid;
	if (buf_writer_len(&c->tx) - c->tx_off >= TX_FLUSH_AT)
		return regsign_client_flush(c);
	return REGSIGN_CLIENT_OK;
}

/*
 * Takes one complete frame from the receive buffer if there is one.
 * Returns 1 and fills *rep's result in *res when a reply was taken, 0 when
 * more bytes are needed, or a negative error.
 */
static int rx_take(regsign_client *c, struct regsign_reply *rep, int *res)
{
	const uint8_t *f = c->rx + c->rx_off;
	size_t avail = c->rx_len - c->rx_off, size;
	struct proto_reply p;
	uint32_t slot;
	int e;

	e = proto_frame_peek(f, avail, PROTO_REPLY_MAX, &size);
	if (e == PROTO_ERR_SHORT)
		return 0;
	if (e != PROTO_OK)
		return conn_fail(c, REGSIGN_CLIENT_ERR_PROTOCOL, "reply frame length out of range");
	if (avail < size) {
		/* Make sure the buffer can hold the whole frame (bounded by
		 * the peek above) before reading on. */
		if (c->rx_cap - c->rx_off < size) {
			uint8_t *n;

			memmove(c->rx, f, avail);
			c->rx_off = 0;
			c->rx_len = avail;
			if (c->rx_cap < size + RX_CHUNK) {
				n = realloc(c->rx, size + RX_CHUNK);
				if (n == NULL)
					return conn_fail(c, REGSIGN_CLIENT_ERR_NOMEM, "out of memory");
				c->rx = n;
				c->rx_cap = size + RX_CHUNK;
			}
		}
		return 0;
	}
	e = proto_reply_decode(f, size, PROTO_REPLY_MAX, &p);
	if (e != PROTO_OK) {
		set_err(c, "bad reply: %s", proto_strerror(e));
		conn_close(c);
		return REGSIGN_CLIENT_ERR_PROTOCOL;
	}
	if (p.type == PROTO_REPLY_ERROR && p.id == 0) {
		/* The server could not tell which request failed and closes
		 * the connection after such an error (PROTOCOL.md §5). */
		conn_close(c);
	} else {
		/* Only an id we sent, answered with the operation we sent. */
		slot = p.id & (c->window - 1);
		if (c->slot_op[slot] == 0 || c->slot_id[slot] != p.id ||
		    (p.type == PROTO_REPLY_OK && p.op != c->slot_op[slot])) {
			set_err(c, "reply to an unknown request id %u", p.id);
			conn_close(c);
			return REGSIGN_CLIENT_ERR_PROTOCOL;
		}
		if (p.type == PROTO_REPLY_ERROR)
			p.op = c->slot_op[slot];
		c->slot_op[slot] = 0;
		c->outstanding--;
	}
	if (client__reply_copy(&p, rep) != 0) {
		regsign_reply_clear(rep);
		c->rx_off += size;
		set_err(c, "out of memory");
		*res = REGSIGN_CLIENT_ERR_NOMEM;
		return 1;
	}
	if (p.type == PROTO_REPLY_ERROR) {
		set_err(c, "%s: %s", regsign_code_name(rep->code), rep->message);
		*res = REGSIGN_CLIENT_ERR_REFUSED;
	} else {
		*res = REGSIGN_CLIENT_OK;
	}
	c->rx_off += size;
	return 1;
}

int regsign_client_recv(regsign_client *c, struct regsign_reply *rep)
{
	int flush_r, r;

	memset(rep, 0, sizeof(*rep));
	if (c->outstanding == 0) {
		set_err(c, "no request outstanding");
		return REGSIGN_CLIENT_ERR_INVALID;
	}
	/* A failed flush still lets us hand out replies already received. */
	flush_r = regsign_client_flush(c);
	if (flush_r == REGSIGN_CLIENT_ERR_TIMEOUT)
		return flush_r;
	for (;;) {
		int res = REGSIGN_CLIENT_OK;
		short ev;

		r = c->rx != NULL ? rx_take(c, rep, &res) : 0;
		if (r < 0)
			return r;
		if (r == 1)
			return res;
		if (flush_r != REGSIGN_CLIENT_OK)
			return flush_r;
		if (c->fd < 0)
			return REGSIGN_CLIENT_ERR_IO;
		if (c->eof)
			return conn_fail(c, REGSIGN_CLIENT_ERR_IO, "connection closed by the server");
		r = conn_wait(c, POLLIN, &ev);
		if (r != REGSIGN_CLIENT_OK)
			return r;
		r = rx_fill(c);
		if (r != REGSIGN_CLIENT_OK)
			return r;
	}
}

int regsign_client_take(regsign_client *c, struct regsign_reply *rep, int *res)
{
	memset(rep, 0, sizeof(*rep));
	*res = REGSIGN_CLIENT_OK;
	if (c->rx == NULL || c->rx_off >= c->rx_len)
		return 0;
	return rx_take(c, rep, res);
}

int regsign_client_call(regsign_client *c, const struct regsign_request *req,
			struct regsign_reply *rep)
{
	int r;

	memset(rep, 0, sizeof(*rep));
	if (c->fd < 0) {
		set_err(c, "not connected");
		return REGSIGN_CLIENT_ERR_IO;
	}
	if (c->outstanding != 0) {
		set_err(c, "pipelined requests outstanding");
		return REGSIGN_CLIENT_ERR_INVALID;
	}
	r = regsign_client_send(c, req, NULL);
	if (r != REGSIGN_CLIENT_OK && c->outstanding == 0)
		return r;
	return regsign_client_recv(c, rep);
}
