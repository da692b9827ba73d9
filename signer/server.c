/*
 * server.c - the signing socket: the listener, each connection's life
 * (accept, the peer check, references, time-outs, close) and the wake.
 * Reading and framing live in server_read.c, the reply queue and its
 * flush in server_reply.c (server_int.h is what they share).
 */
#include "signer/server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "signer/proto.h"
#include "signer/server_int.h"

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

void
server__conn_close_now(server_conn_t *c)
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
		server__conn_close_now(c);
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
		server__conn_close_now(c);
		return;
	}
	/* Each connection costs buffers: past the cap, new ones are turned away. */
	if (s->n_conns > s->opts.max_conns) {
		server__conn_close_now(c);
		return;
	}
	/* Who is it? Decided before a single byte is read. */
	if (peer_creds(&c->pipe, &c->peer) != 0 || s->cb.accept(s->arg, c, &c->peer) != 0) {
		server__conn_close_now(c);
		return;
	}
	c->accepted = 1;
	c->last_read = c->last_write = c->rx_since = uv_now(s->loop);
	server__conn_maybe_read(c);
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
			server__conn_close_now(c);
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
		server__conn_maybe_read(c);
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
		server__conn_close_now(s->conns); /* the last one closes the timer */
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
		server__flush_all(s);
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
			server__conn_close_now(c);
		} else {
			c->no_more_reads = 1;
			c->close_after = 1;
			server__conn_maybe_read(c);
		}
	}
	if (s->conns)
		uv_timer_start(&s->drain, drain_cb, SERVER_DRAIN_MS, 0);
	drain_maybe_close(s);
	server_maybe_done(s);
}
