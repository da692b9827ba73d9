/*
 * server.c - the signing socket: accept, check the peer, frame, write replies.
 *
 * A connection's bytes collect in one buffer that grows only as far as the
 * frame being read needs (its length was checked first) plus one read's
 * worth; whole frames are handed on as soon as they are there.
 *
 * Replies are gathered per connection for the rest of the loop iteration
 * that made them and written once per connection before the loop blocks
 * again (a prepare and a check handle, like hsmlink's requests): under
 * pipelined load the daemon finishes requests in batches (a group commit,
 * a batch of HSM results), and a write system call per reply, or per
 * connection twice per batch, cost more than the replies themselves.
 */
#include "signer/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "signer/buf.h"
#include "signer/proto.h"

/* Bytes offered to each read beyond what the current frame needs. */
#define SERVER_READ_CHUNK 65536

struct server {
	uv_loop_t *loop;
	uv_pipe_t listener;
	int listening;
	int reading_stopped;
	char *path;
	struct server_options opts;
	struct server_callbacks cb;
	void *arg;
	struct server_conn *conns; /* open connections, doubly linked */
	size_t n_conns;
	size_t n_alive;            /* connection structs not yet freed */
	int closing;
	void (*close_cb)(void *arg);
	void *close_arg;
	int listener_closed;
	uv_timer_t drain;          /* bounds how long closing waits for replies */
	int drain_closed;
	uv_timer_t tick;           /* idle and write time-outs, once a second */
	int tick_closed;
	uv_idle_t wake;            /* server_wake: the wake callback on the next iteration */
	int wake_closed;
	/* Connections with replies gathered and not yet handed to a write, each
	 * holding a reference; written before the loop blocks again. */
	struct server_conn *dirty;
	uv_prepare_t flush_prepare; /* before the loop polls: replies made by timers */
	uv_check_t flush_check;     /* after it polls: replies made by I/O callbacks */
	int flush_closed;          /* both flush handles closed (counts 2 down) */
	int flush_open;
};

/* How often the time-outs are checked. */
#define SERVER_TICK_MS 1000

/* How long server_close lets connections finish writing their replies. */
#define SERVER_DRAIN_MS 5000

struct server_conn {
	uv_pipe_t pipe;
	server_t *srv;
	struct server_conn *prev, *next;
	struct server_peer peer;
	void *data;
	unsigned refs;     /* the handle's own reference + one per holder */
	int closing;       /* uv_close called or about to be */
	int read_on;       /* uv_read_start in effect */
	int no_more_reads; /* framing broken or shutdown: never read again */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	size_t expect;     /* size of the frame being gathered, 0 if unknown */
	uint32_t pending;  /* requests delivered and not yet answered */
	size_t wbytes;     /* reply bytes queued (in c->out or in uv_write), not yet written */
	uint8_t *out;      /* replies gathered while a write is on its way or while corked */
	size_t out_len, out_cap;
	int writing;       /* a uv_write is on its way */
	int dirty;         /* on the server's list of connections to write */
	struct server_conn *dirty_next;
	int close_after;   /* close when the writes drain */
	int in_frames;     /* conn_frames is running (no re-entry) */
	int accepted;      /* the accept callback kept it: closed callback due */
	uint64_t last_read;  /* uv_now of the last bytes read (or of the accept) */
	uint64_t last_write; /* uv_now of the last write done, or of the first
			      * reply queued after the writes had drained */
	uint64_t rx_since;   /* uv_now when a partial frame started to gather */
};

struct server_write {
	uv_write_t req;
	server_conn_t *conn;
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* A gathering buffer up to this size is kept for the next replies after its
 * write; a larger one (a burst) is given back. */
#define SERVER_OUT_KEEP 65536

static void conn_maybe_read(server_conn_t *c);
static void conn_begin_close(server_conn_t *c);

const char *
server_strerror(int err)
{
	switch (err) {
	case SERVER_OK: return "success";
	case SERVER_ERR_NOMEM: return "out of memory";
	case SERVER_ERR_ARG: return "invalid argument";
	case SERVER_ERR_IN_USE: return "another process answers on the socket path";
	case SERVER_ERR_SOCKET: return "cannot bind or listen on the socket path";
	default: return "unknown server error";
	}
}

static void
server_maybe_done(server_t *s)
{
	if (!s->closing || s->n_alive > 0 || !s->listener_closed || !s->drain_closed ||
	    !s->tick_closed || !s->wake_closed || s->flush_open > 0)
		return;
	void (*cb)(void *) = s->close_cb;
	void *arg = s->close_arg;

	free(s->path);
	free(s);
	if (cb)
		cb(arg);
}

static void
conn_free(server_conn_t *c)
{
	server_t *s = c->srv;

	free(c->rx);
	free(c->out);
	free(c);
	s->n_alive--;
	server_maybe_done(s);
}

void
server_conn_ref(server_conn_t *c)
{
	c->refs++;
}

void
server_conn_unref(server_conn_t *c)
{
	if (c == NULL)
		return;
	if (--c->refs == 0)
		conn_free(c);
}

static void
conn_close_cb(uv_handle_t *h)
{
	server_conn_unref(h->data);
}

static void drain_closed_cb(uv_handle_t *h);

/* Once a closing server has no connection left, its drain timer goes too. */
static void
drain_maybe_close(server_t *s)
{
	if (s->closing && s->conns == NULL && !uv_is_closing((uv_handle_t *)&s->drain))
		uv_close((uv_handle_t *)&s->drain, drain_closed_cb);
}

static void
conn_begin_close(server_conn_t *c)
{
	server_t *s = c->srv;

	if (c->closing)
		return;
	c->closing = 1;
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	c->prev = c->next = NULL;
	s->n_conns--;
	if (c->accepted && s->cb.closed)
		s->cb.closed(s->arg, c);
	uv_close((uv_handle_t *)&c->pipe, conn_close_cb);
	drain_maybe_close(s);
}

void
server_conn_close(server_conn_t *c)
{
	if (c)
		conn_begin_close(c);
}

int
server_conn_closed(const server_conn_t *c)
{
	return c->closing;
}

const struct server_peer *
server_conn_peer(const server_conn_t *c)
{
	return &c->peer;
}

void
server_conn_set_data(server_conn_t *c, void *data)
{
	c->data = data;
}

void *
server_conn_data(const server_conn_t *c)
{
	return c->data;
}

size_t
server_max_conns(const server_t *s)
{
	return s->opts.max_conns;
}

size_t
server_conn_count(const server_t *s)
{
	return s->n_conns;
}

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
		conn_begin_close(c);
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
		conn_maybe_read(c);
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
		conn_begin_close(c); /* out of memory: the peer loses its replies */
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
		conn_begin_close(c);
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
static void
server_flush_all(server_t *s)
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
	server_flush_all(h->data);
}

static void
flush_check_cb(uv_check_t *h)
{
	server_flush_all(h->data);
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
				conn_begin_close(c);
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
		conn_maybe_read(c);
	/* Backpressure: a peer that does not read its replies stops being read. */
	if (c->wbytes > c->srv->opts.write_high_water)
		conn_maybe_read(c);
}

void
server_conn_reply(server_conn_t *c, uint8_t *data, size_t len, int close_after)
{
	if (c->pending > 0)
		c->pending--;
	conn_write(c, data, len, close_after);
}

/* Answers an error with id 0 (or the request's id) without the daemon. */
static void
conn_error(server_conn_t *c, uint32_t id, uint32_t code, const char *msg, int close_after)
{
	struct buf_writer w;
	uint8_t *data = NULL;
	size_t len = 0;

	buf_writer_init(&w, PROTO_REPLY_MAX);
	if (proto_error_encode(&w, id, code, msg) != PROTO_OK ||
	    buf_writer_take(&w, &data, &len) != BUF_OK) {
		buf_writer_release(&w);
		conn_begin_close(c);
		return;
	}
	buf_writer_release(&w);
	conn_write(c, data, len, close_after);
}

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

			conn_error(c, 0, proto_err_code(e),
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
			conn_error(c, h.id, PROTO_CODE_BUSY, "too many requests waiting on this connection", 0);
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
		conn_begin_close(c);
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
		conn_maybe_read(c);
	server_conn_unref(c);
}

/*
 * Starts or stops reading according to the connection's state; before it
 * starts again, it hands on the frames backpressure held in the buffer.
 * The caller holds a reference on c.
 */
static void
conn_maybe_read(server_conn_t *c)
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

static int
peer_creds(uv_pipe_t *p, struct server_peer *peer)
{
	struct ucred cr;
	socklen_t len = sizeof(cr);
	uv_os_fd_t fd;

	if (uv_fileno((uv_handle_t *)p, &fd) != 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 || len != sizeof(cr))
		return -1;
	peer->uid = cr.uid;
	peer->gid = cr.gid;
	peer->pid = cr.pid;
	return 0;
}

static void
connection_cb(uv_stream_t *listener, int status)
{
	server_t *s = listener->data;
	server_conn_t *c;

	if (status < 0 || s->closing)
		return;
	if ((c = calloc(1, sizeof(*c))) == NULL)
		return;
	c->srv = s;
	c->refs = 1;
	s->n_alive++;
	if (uv_pipe_init(s->loop, &c->pipe, 0) != 0) {
		free(c);
		s->n_alive--;
		return;
	}
	c->pipe.data = c;
	c->next = s->conns;
	if (s->conns)
		s->conns->prev = c;
	s->conns = c;
	s->n_conns++;
	if (uv_accept(listener, (uv_stream_t *)&c->pipe) != 0) {
		conn_begin_close(c);
		return;
	}
	/* Each connection costs buffers: past the cap, new ones are turned away. */
	if (s->n_conns > s->opts.max_conns) {
		conn_begin_close(c);
		return;
	}
	/* Who is it? Decided before a single byte is read. */
	if (peer_creds(&c->pipe, &c->peer) != 0 || s->cb.accept(s->arg, c, &c->peer) != 0) {
		conn_begin_close(c);
		return;
	}
	c->accepted = 1;
	c->last_read = c->last_write = c->rx_since = uv_now(s->loop);
	conn_maybe_read(c);
}

/*
 * Why a connection has outstayed its welcome, or NULL. A reader that takes
 * none of its replies, a sender that never finishes a frame and a connection
 * with nothing going on are each given a time-out; a request the daemon is
 * still working on keeps an otherwise quiet connection open.
 */
static const char *
conn_timed_out(const server_conn_t *c, uint64_t now)
{
	const struct server_options *o = &c->srv->opts;

	if (c->wbytes > 0)
		return now - c->last_write >= o->write_timeout_ms ? "replies not read" : NULL;
	if (c->rx_len > 0 && now - c->rx_since >= o->write_timeout_ms)
		return "frame not finished";
	if (c->pending == 0 && now - c->last_read >= o->idle_timeout_ms)
		return "idle";
	return NULL;
}

static void
tick_cb(uv_timer_t *t)
{
	server_t *s = t->data;
	uint64_t now = uv_now(s->loop);
	server_conn_t *c, *next;

	for (c = s->conns; c; c = next) {
		next = c->next;
		if (conn_timed_out(c, now) != NULL)
			conn_begin_close(c);
	}
}

static void
wake_cb(uv_idle_t *h)
{
	server_t *s = h->data;

	uv_idle_stop(h);
	if (s->cb.wake && !s->closing)
		s->cb.wake(s->arg);
}

void
server_wake(server_t *s)
{
	if (s == NULL || s->closing || uv_is_active((uv_handle_t *)&s->wake))
		return;
	uv_idle_start(&s->wake, wake_cb);
}

/* 1 if a process accepts connections on the socket at path. */
static int
socket_answers(const char *path)
{
	struct sockaddr_un sa;
	int fd, r;

	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path))
		return 0;
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0)
		return 0;
	r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return r;
}

int
server_open(uv_loop_t *loop, const struct server_options *opts,
	    const struct server_callbacks *cb, void *arg, server_t **out)
{
	server_t *s = NULL;
	struct stat sb;
	mode_t old;
	int r = SERVER_ERR_ARG, e;

	if (loop == NULL || opts == NULL || opts->path == NULL || cb == NULL ||
	    cb->accept == NULL || cb->frame == NULL || opts->max_frame < PROTO_BODY_MIN ||
	    opts->max_frame > PROTO_REQUEST_MAX || opts->queue_depth == 0 || out == NULL)
		goto out;
	r = SERVER_ERR_NOMEM;
	if ((s = calloc(1, sizeof(*s))) == NULL || (s->path = strdup(opts->path)) == NULL)
		goto out;
	s->loop = loop;
	s->opts = *opts;
	s->opts.path = s->path;
	if (s->opts.write_high_water == 0)
		s->opts.write_high_water = 1u << 20;
	if (s->opts.max_conns == 0)
		s->opts.max_conns = 1024;
	if (s->opts.idle_timeout_ms == 0)
		s->opts.idle_timeout_ms = SERVER_IDLE_TIMEOUT_MS;
	if (s->opts.write_timeout_ms == 0)
		s->opts.write_timeout_ms = SERVER_WRITE_TIMEOUT_MS;
	s->cb = *cb;
	s->arg = arg;

	/* A socket file left by a dead daemon is removed; a live one is not. */
	r = SERVER_ERR_IN_USE;
	if (lstat(s->path, &sb) == 0) {
		if (!S_ISSOCK(sb.st_mode) || socket_answers(s->path))
			goto out;
		unlink(s->path);
	}
	r = SERVER_ERR_SOCKET;
	if (uv_pipe_init(loop, &s->listener, 0) != 0)
		goto out;
	s->listener.data = s;
	s->listening = 1;
	uv_timer_init(loop, &s->drain);
	s->drain.data = s;
	uv_timer_init(loop, &s->tick);
	s->tick.data = s;
	uv_idle_init(loop, &s->wake);
	s->wake.data = s;
	uv_prepare_init(loop, &s->flush_prepare);
	s->flush_prepare.data = s;
	uv_check_init(loop, &s->flush_check);
	s->flush_check.data = s;
	s->flush_open = 2;
	old = umask(0777 & ~(mode_t)opts->mode);
	e = uv_pipe_bind(&s->listener, s->path);
	umask(old);
	if (e != 0 || chmod(s->path, (mode_t)opts->mode) != 0 ||
	    uv_listen((uv_stream_t *)&s->listener, 128, connection_cb) != 0)
		goto out;
	uv_timer_start(&s->tick, tick_cb, SERVER_TICK_MS, SERVER_TICK_MS);
	*out = s;
	s = NULL;
	r = SERVER_OK;
out:
	if (s) {
		if (s->listening) {
			/* The handles must be closed through the loop; free the rest then. */
			s->closing = 1;
			s->listening = 0;
			uv_close((uv_handle_t *)&s->listener, NULL);
			uv_close((uv_handle_t *)&s->drain, NULL);
			uv_close((uv_handle_t *)&s->tick, NULL);
			uv_close((uv_handle_t *)&s->wake, NULL);
			uv_close((uv_handle_t *)&s->flush_prepare, NULL);
			uv_close((uv_handle_t *)&s->flush_check, NULL);
			uv_run(loop, UV_RUN_NOWAIT);
		}
		free(s->path);
		free(s);
	}
	return r;
}

static void
listener_close_cb(uv_handle_t *h)
{
	server_t *s = h->data;

	s->listener_closed = 1;
	server_maybe_done(s);
}

void
server_stop_accepting(server_t *s)
{
	if (s == NULL || !s->listening)
		return;
	s->listening = 0;
	unlink(s->path);
	uv_close((uv_handle_t *)&s->listener, listener_close_cb);
}

void
server_stop_reading(server_t *s)
{
	if (s == NULL)
		return;
	s->reading_stopped = 1;
	for (server_conn_t *c = s->conns; c; c = c->next)
		conn_maybe_read(c);
}

static void
drain_closed_cb(uv_handle_t *h)
{
	server_t *s = h->data;

	s->drain_closed = 1;
	server_maybe_done(s);
}

static void
tick_closed_cb(uv_handle_t *h)
{
	server_t *s = h->data;

	s->tick_closed = 1;
	server_maybe_done(s);
}

static void
wake_closed_cb(uv_handle_t *h)
{
	server_t *s = h->data;

	s->wake_closed = 1;
	server_maybe_done(s);
}

static void
flush_closed_cb(uv_handle_t *h)
{
	server_t *s = h->data;

	s->flush_open--;
	server_maybe_done(s);
}

/* The drain time is over: close whatever still has replies queued. */
static void
drain_cb(uv_timer_t *t)
{
	server_t *s = t->data;

	while (s->conns)
		conn_begin_close(s->conns); /* the last one closes the timer */
}

void
server_close(server_t *s, void (*close_cb)(void *arg), void *arg)
{
	server_conn_t *c, *next;

	if (s == NULL)
		return;
	s->close_cb = close_cb;
	s->close_arg = arg;
	if (s->listening)
		server_stop_accepting(s);
	/* Gathered replies start on their way now; later ones are written at once. */
	if (!s->closing)
		server_flush_all(s);
	s->closing = 1;
	if (!uv_is_closing((uv_handle_t *)&s->flush_prepare))
		uv_close((uv_handle_t *)&s->flush_prepare, flush_closed_cb);
	if (!uv_is_closing((uv_handle_t *)&s->flush_check))
		uv_close((uv_handle_t *)&s->flush_check, flush_closed_cb);
	if (!uv_is_closing((uv_handle_t *)&s->tick))
		uv_close((uv_handle_t *)&s->tick, tick_closed_cb);
	if (!uv_is_closing((uv_handle_t *)&s->wake))
		uv_close((uv_handle_t *)&s->wake, wake_closed_cb);
	/* Replies already queued still reach their peers (for a while). */
	for (c = s->conns; c; c = next) {
		next = c->next;
		if (c->wbytes == 0) {
			conn_begin_close(c);
		} else {
			c->no_more_reads = 1;
			c->close_after = 1;
			conn_maybe_read(c);
		}
	}
	if (s->conns)
		uv_timer_start(&s->drain, drain_cb, SERVER_DRAIN_MS, 0);
	drain_maybe_close(s);
	server_maybe_done(s);
}
