/*
 * Unit tests of signer/server: the peer check before any read, frames
 * gathered across reads, TOO_LARGE / short length answered with id 0 and the
 * connection closed, BUSY past the queue depth, reading stopped while replies
 * pile up (backpressure), the socket's mode, a live socket never taken
 * over, idle / unfinished-frame / unread-reply time-outs, the closed callback
 * once per kept connection, and server_wake. The loop runs on the test's main thread; a client thread does plain
 * blocking socket calls.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>
#include <uv.h>

#include "signer/buf.h"
#include "signer/proto.h"
#include "signer/server.h"

#define HELD_MAX 16

struct fx {
	char dir[64];
	char path[128];
	uv_loop_t loop;
	server_t *srv;
	struct server_options opts;
	uv_mutex_t mu;
	/* loop side, read by the client under mu */
	int accept_verdict;
	struct server_peer peer;
	int accepts, frames, frame_errors, busy, conns_closed, wakes;
	int last_err;
	uint32_t last_length;
	size_t reply_size;           /* 0: hold the request; else reply with this many bytes */
	server_conn_t *held[HELD_MAX];
	uint32_t held_id[HELD_MAX];
	int n_held;
	int release;                 /* client asks the loop to answer the held requests */
	int close_now;               /* client asks the loop to close the server */
	/* client */
	void (*scenario)(struct fx *f);
	int client_done;
	int client_fail_line;       /* first failed check in the client thread */
	const char *client_fail_what;
	int closed;
};

/*
 * The client thread must not use cmocka's asserts (they longjmp into the
 * main thread's stack): it records the first failure, which the main thread
 * then asserts on.
 */
#define CCHECK(f, cond)                                                   \
	do {                                                              \
		if (!(cond)) {                                            \
			uv_mutex_lock(&(f)->mu);                          \
			if ((f)->client_fail_line == 0) {                 \
				(f)->client_fail_line = __LINE__;         \
				(f)->client_fail_what = #cond;            \
			}                                                 \
			uv_mutex_unlock(&(f)->mu);                        \
			return;                                           \
		}                                                         \
	} while (0)

static int
get(struct fx *f, int *p)
{
	int v;

	uv_mutex_lock(&f->mu);
	v = *p;
	uv_mutex_unlock(&f->mu);
	return v;
}

static int
on_accept(void *arg, server_conn_t *c, const struct server_peer *peer)
{
	struct fx *f = arg;

	(void)c;
	uv_mutex_lock(&f->mu);
	f->accepts++;
	f->peer = *peer;
	uv_mutex_unlock(&f->mu);
	return f->accept_verdict;
}

static void
reply(server_conn_t *c, uint32_t id, size_t size)
{
	struct buf_writer w;
	uint8_t *data = NULL;
	size_t len = 0;
	char *msg = malloc(size + 1);

	assert_non_null(msg);
	memset(msg, 'x', size);
	msg[size] = '\0';
	buf_writer_init(&w, PROTO_REPLY_MAX);
	/* ERROR messages are cut at 1024 bytes: pad with a raw frame instead. */
	assert_int_equal(buf_writer_put_u32(&w, (uint32_t)(5 + 4 + 4 + size)), 0);
	assert_int_equal(buf_writer_put_u8(&w, PROTO_REPLY_ERROR), 0);
	assert_int_equal(buf_writer_put_u32(&w, id), 0);
	assert_int_equal(buf_writer_put_u32(&w, PROTO_CODE_INTERNAL), 0);
	assert_int_equal(buf_writer_put_string(&w, msg, size), 0);
	assert_int_equal(buf_writer_take(&w, &data, &len), 0);
	buf_writer_release(&w);
	free(msg);
	server_conn_reply(c, data, len, 0);
}

static void
on_frame(void *arg, server_conn_t *c, const uint8_t *frame, size_t len)
{
	struct fx *f = arg;
	struct proto_header h;

	assert_int_equal(proto_header_parse(frame, len, f->opts.max_frame, &h), PROTO_OK);
	assert_int_equal(len, 4 + (size_t)h.length);
	uv_mutex_lock(&f->mu);
	f->frames++;
	if (f->reply_size == 0 && f->n_held < HELD_MAX) {
		server_conn_ref(c);
		f->held[f->n_held] = c;
		f->held_id[f->n_held++] = h.id;
		uv_mutex_unlock(&f->mu);
		return;
	}
	uv_mutex_unlock(&f->mu);
	reply(c, h.id, f->reply_size);
}

static void
on_frame_error(void *arg, server_conn_t *c, int err, uint32_t length)
{
	struct fx *f = arg;

	(void)c;
	uv_mutex_lock(&f->mu);
	f->frame_errors++;
	f->last_err = err;
	f->last_length = length;
	uv_mutex_unlock(&f->mu);
}

static void
on_busy(void *arg, server_conn_t *c, uint32_t id)
{
	struct fx *f = arg;

	(void)c;
	(void)id;
	uv_mutex_lock(&f->mu);
	f->busy++;
	uv_mutex_unlock(&f->mu);
}

static void
on_closed(void *arg, server_conn_t *c)
{
	struct fx *f = arg;

	(void)c;
	uv_mutex_lock(&f->mu);
	f->conns_closed++;
	uv_mutex_unlock(&f->mu);
}

static void
on_wake(void *arg)
{
	((struct fx *)arg)->wakes++;
}

static const struct server_callbacks cbs = {
	.accept = on_accept, .frame = on_frame, .frame_error = on_frame_error, .busy = on_busy,
	.closed = on_closed, .wake = on_wake,
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/regsign-server-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(uv_mutex_init(&f->mu), 0);
	f->opts.path = f->path;
	f->opts.mode = 0660;
	f->opts.max_frame = 1024;
	f->opts.queue_depth = 4;
	f->opts.write_high_water = 64 * 1024;
	f->reply_size = 8;
	assert_int_equal(server_open(&f->loop, &f->opts, &cbs, f, &f->srv), SERVER_OK);
	*state = f;
	return 0;
}

static void
closed_cb(void *arg)
{
	((struct fx *)arg)->closed = 1;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	for (int i = 0; i < f->n_held; i++)
		server_conn_unref(f->held[i]);
	server_close(f->srv, closed_cb, f);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(f->closed, 1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	uv_mutex_destroy(&f->mu);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

static void
client_main(void *arg)
{
	struct fx *f = arg;

	f->scenario(f);
	uv_mutex_lock(&f->mu);
	f->client_done = 1;
	uv_mutex_unlock(&f->mu);
}

/* Runs the loop while the scenario runs in a client thread. */
static void
run_scenario(struct fx *f, void (*scenario)(struct fx *f))
{
	uv_thread_t t;

	f->scenario = scenario;
	assert_int_equal(uv_thread_create(&t, client_main, f), 0);
	for (int k = 0; k < 30000 && !get(f, &f->client_done); k++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		uv_mutex_lock(&f->mu);
		if (f->close_now) {
			f->close_now = 0;
			uv_mutex_unlock(&f->mu);
			server_close(f->srv, closed_cb, f);
			f->srv = NULL;
			uv_mutex_lock(&f->mu);
		}
		if (f->release) {
			f->release = 0;
			for (int i = 0; i < f->n_held; i++) {
				server_conn_t *c = f->held[i];

				uv_mutex_unlock(&f->mu);
				reply(c, f->held_id[i], 8);
				server_conn_unref(c);
				uv_mutex_lock(&f->mu);
			}
			f->n_held = 0;
		}
		uv_mutex_unlock(&f->mu);
		usleep(1000);
	}
	assert_int_equal(uv_thread_join(&t), 0);
	assert_int_equal(f->client_done, 1);
	if (f->client_fail_line)
		fail_msg("client check failed at line %d: %s", f->client_fail_line,
			 f->client_fail_what);
}

static int
client_connect(struct fx *f)
{
	struct sockaddr_un sa;
	struct timeval tv = { .tv_sec = 20 };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	if (fd < 0)
		return -1;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, f->path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		close(fd);
		return -1;
	}
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void
frame_hdr(uint8_t *p, uint32_t length, uint8_t type, uint32_t id)
{
	p[0] = (uint8_t)(length >> 24);
	p[1] = (uint8_t)(length >> 16);
	p[2] = (uint8_t)(length >> 8);
	p[3] = (uint8_t)length;
	p[4] = type;
	p[5] = (uint8_t)(id >> 24);
	p[6] = (uint8_t)(id >> 16);
	p[7] = (uint8_t)(id >> 8);
	p[8] = (uint8_t)id;
}

/* Reads one reply frame; returns its id and code (ERROR) or -1 on EOF. */
static int
read_reply(int fd, uint32_t *id, uint32_t *code)
{
	uint8_t hdr[13], skip[4096];
	size_t got = 0, len;

	while (got < sizeof(hdr)) {
		ssize_t n = read(fd, hdr + got, sizeof(hdr) - got);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	len = ((size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 | (size_t)hdr[2] << 8 | hdr[3]) + 4;
	*id = (uint32_t)hdr[5] << 24 | (uint32_t)hdr[6] << 16 | (uint32_t)hdr[7] << 8 | hdr[8];
	*code = (uint32_t)hdr[9] << 24 | (uint32_t)hdr[10] << 16 | (uint32_t)hdr[11] << 8 | hdr[12];
	for (got = sizeof(hdr); got < len;) {
		size_t want = len - got < sizeof(skip) ? len - got : sizeof(skip);
		ssize_t n = read(fd, skip, want);

		if (n <= 0)
			return -1;
		got += (size_t)n;
	}
	return 0;
}

static int
at_eof(int fd)
{
	char b;
	ssize_t n = read(fd, &b, 1);

	return n == 0 || (n < 0 && errno == ECONNRESET);
}

/* ---- scenarios ---- */

static void
sc_refused(struct fx *f)
{
	uint8_t fr[9];
	int fd = client_connect(f);

	CCHECK(f, fd >= 0);
	frame_hdr(fr, 5, PROTO_OP_CRL, 1);
	(void)!write(fd, fr, sizeof(fr));
	CCHECK(f, at_eof(fd));
	close(fd);
}

static void
test_peer_checked_before_reading(void **state)
{
	struct fx *f = *state;
	struct stat sb;

	assert_int_equal(stat(f->path, &sb), 0);
	assert_int_equal(sb.st_mode & 0777, 0660);
	f->accept_verdict = -1;
	run_scenario(f, sc_refused);
	assert_int_equal(f->accepts, 1);
	assert_int_equal(f->frames, 0);
	assert_int_equal(f->peer.uid, getuid());
	assert_int_equal(f->peer.gid, getgid());
	assert_int_equal(f->peer.pid, getpid());
	assert_int_equal(f->conns_closed, 0); /* refused: never kept, no closed callback */
}

static void
sc_split(struct fx *f)
{
	uint8_t buf[3 * 13];
	uint32_t id, code;
	int fd = client_connect(f);

	CCHECK(f, fd >= 0);
	for (int i = 0; i < 3; i++) {
		frame_hdr(buf + 13 * i, 9, PROTO_OP_STATUS, (uint32_t)(100 + i));
		memset(buf + 13 * i + 9, 0, 4);
	}
	for (size_t i = 0; i < sizeof(buf); i++) {
		CCHECK(f, write(fd, buf + i, 1) == 1);
		usleep(200);
	}
	for (int i = 0; i < 3; i++) {
		CCHECK(f, read_reply(fd, &id, &code) == 0);
		CCHECK(f, id == (uint32_t)(100 + i));
	}
	close(fd);
}

static void
test_frames_gathered(void **state)
{
	struct fx *f = *state;

	run_scenario(f, sc_split);
	assert_int_equal(f->frames, 3);
	for (int k = 0; k < 1000 && get(f, &f->conns_closed) == 0; k++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f->conns_closed, 1); /* the peer closed it */
}

static void
sc_too_large(struct fx *f)
{
	uint8_t fr[9];
	uint32_t id, code;
	int fd = client_connect(f);

	CCHECK(f, fd >= 0);
	frame_hdr(fr, 1025, PROTO_OP_ISSUE, 5); /* above max_frame 1024; no body follows */
	CCHECK(f, write(fd, fr, sizeof(fr)) == (ssize_t)sizeof(fr));
	CCHECK(f, read_reply(fd, &id, &code) == 0);
	CCHECK(f, (id) == (0));
	CCHECK(f, (code) == (PROTO_CODE_TOO_LARGE));
	CCHECK(f, at_eof(fd));
	close(fd);

	fd = client_connect(f);
	CCHECK(f, fd >= 0);
	frame_hdr(fr, 3, PROTO_OP_ISSUE, 5);
	CCHECK(f, write(fd, fr, 7) == 7);
	CCHECK(f, read_reply(fd, &id, &code) == 0);
	CCHECK(f, (id) == (0));
	CCHECK(f, (code) == (PROTO_CODE_BAD_FRAME));
	CCHECK(f, at_eof(fd));
	close(fd);
}

static void
test_bad_lengths_close(void **state)
{
	struct fx *f = *state;

	run_scenario(f, sc_too_large);
	assert_int_equal(f->frames, 0);
	assert_int_equal(f->frame_errors, 2);
	assert_int_equal(f->last_err, PROTO_ERR_BAD_FRAME);
	assert_int_equal(f->last_length, 3);
}

static void
sc_queue(struct fx *f)
{
	uint8_t fr[6 * 9];
	uint32_t id, code;
	int fd = client_connect(f), busy = 0, ok = 0;

	CCHECK(f, fd >= 0);
	for (int i = 0; i < 6; i++)
		frame_hdr(fr + 9 * i, 5, PROTO_OP_CRL, (uint32_t)(i + 1));
	CCHECK(f, write(fd, fr, sizeof(fr)) == (ssize_t)sizeof(fr));
	/* Requests 5 and 6 are past the depth of 4: BUSY, with their ids. */
	for (int i = 0; i < 2; i++) {
		CCHECK(f, read_reply(fd, &id, &code) == 0);
		CCHECK(f, (code) == (PROTO_CODE_BUSY));
		CCHECK(f, id == 5 || id == 6);
		busy++;
	}
	uv_mutex_lock(&f->mu);
	f->release = 1;
	uv_mutex_unlock(&f->mu);
	for (int i = 0; i < 4; i++) {
		CCHECK(f, read_reply(fd, &id, &code) == 0);
		CCHECK(f, id >= 1 && id <= 4);
		CCHECK(f, (code) == (PROTO_CODE_INTERNAL));
		ok++;
	}
	CCHECK(f, (busy + ok) == (6));
	close(fd);
}

static void
test_queue_depth_busy(void **state)
{
	struct fx *f = *state;

	f->reply_size = 0; /* hold requests */
	run_scenario(f, sc_queue);
	assert_int_equal(f->frames, 4);
	assert_int_equal(f->busy, 2);
}

static void
sc_backpressure(struct fx *f)
{
	enum { N = 300 };
	uint8_t fr[N * 9];
	uint32_t id, code;
	int fd = client_connect(f), stalled_at;

	CCHECK(f, fd >= 0);
	for (int i = 0; i < N; i++)
		frame_hdr(fr + 9 * i, 5, PROTO_OP_CHAIN, (uint32_t)(i + 1));
	/* Small requests all fit the kernel's buffers: the write returns at once. */
	CCHECK(f, write(fd, fr, sizeof(fr)) == (ssize_t)sizeof(fr));
	usleep(500 * 1000);
	stalled_at = get(f, &f->frames);
	/* Each reply is 32 KiB, the high-water mark 64 KiB: the server stops
	 * reading long before it has all 300 requests. */
	CCHECK(f, stalled_at < N);
	usleep(300 * 1000);
	CCHECK(f, get(f, &f->frames) == stalled_at);
	for (int i = 0; i < N; i++) {
		CCHECK(f, read_reply(fd, &id, &code) == 0);
		CCHECK(f, (id) == ((uint32_t)(i + 1)));
	}
	close(fd);
}

static void
test_backpressure(void **state)
{
	struct fx *f = *state;

	f->reply_size = 32 * 1024;
	f->opts.queue_depth = 1000;
	/* Reopen with the larger queue depth. */
	server_close(f->srv, NULL, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(server_open(&f->loop, &f->opts, &cbs, f, &f->srv), SERVER_OK);
	run_scenario(f, sc_backpressure);
	assert_int_equal(f->frames, 300);
}

static void
sc_drain(struct fx *f)
{
	uint8_t fr[9];
	uint32_t id, code;
	int fd = client_connect(f);

	CCHECK(f, fd >= 0);
	frame_hdr(fr, 5, PROTO_OP_CRL, 42);
	CCHECK(f, write(fd, fr, sizeof(fr)) == (ssize_t)sizeof(fr));
	usleep(300 * 1000); /* the 1 MiB reply is queued, most of it unwritten */
	uv_mutex_lock(&f->mu);
	f->close_now = 1;
	uv_mutex_unlock(&f->mu);
	usleep(300 * 1000);
	/* The whole reply still arrives, then the connection ends. */
	CCHECK(f, read_reply(fd, &id, &code) == 0);
	CCHECK(f, id == 42);
	CCHECK(f, at_eof(fd));
	close(fd);
}

static void
test_close_drains_replies(void **state)
{
	struct fx *f = *state;

	f->reply_size = 1024 * 1024;
	run_scenario(f, sc_drain);
	for (int k = 0; k < 1000 && !f->closed; k++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f->closed, 1);
	assert_int_equal(access(f->path, F_OK), -1); /* the socket file is gone */
}

static void
sc_max_conns(struct fx *f)
{
	uint8_t fr[9];
	uint32_t id, code;
	int a = client_connect(f), b = client_connect(f), c;

	CCHECK(f, a >= 0 && b >= 0);
	usleep(200 * 1000); /* both accepted */
	c = client_connect(f);
	CCHECK(f, c >= 0);
	CCHECK(f, at_eof(c)); /* the third is over the cap */
	close(c);
	frame_hdr(fr, 5, PROTO_OP_CRL, 3);
	CCHECK(f, write(a, fr, sizeof(fr)) == (ssize_t)sizeof(fr));
	CCHECK(f, read_reply(a, &id, &code) == 0 && id == 3); /* the others still work */
	close(a);
	close(b);
}

static void
test_max_conns(void **state)
{
	struct fx *f = *state;

	f->opts.max_conns = 2;
	server_close(f->srv, NULL, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(server_open(&f->loop, &f->opts, &cbs, f, &f->srv), SERVER_OK);
	run_scenario(f, sc_max_conns);
	assert_int_equal(f->accepts, 2);
}

/* Reopens the fixture's server with short time-outs. */
static void
reopen_with_timeouts(struct fx *f)
{
	f->opts.idle_timeout_ms = 300;
	f->opts.write_timeout_ms = 300;
	server_close(f->srv, NULL, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(server_open(&f->loop, &f->opts, &cbs, f, &f->srv), SERVER_OK);
}

/* 1 if fd reaches EOF within @p ms (a read time-out of 5 s is set separately). */
static int
eof_within(int fd, int ms)
{
	struct timeval tv = { .tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000 };

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return at_eof(fd);
}

static void
sc_idle(struct fx *f)
{
	uint8_t fr[9];
	uint32_t id, code;
	int quiet = client_connect(f), busy = client_connect(f), partial = client_connect(f);

	CCHECK(f, quiet >= 0 && busy >= 0 && partial >= 0);
	/* One request the daemon holds: a connection waiting for its answer is not idle. */
	frame_hdr(fr, 5, PROTO_OP_CRL, 9);
	CCHECK(f, write(busy, fr, sizeof(fr)) == (ssize_t)sizeof(fr));
	/* Half a header, never finished. */
	CCHECK(f, write(partial, fr, 3) == 3);
	/* The quiet and the unfinished connections are cut within a few ticks. */
	CCHECK(f, eof_within(quiet, 4000));
	CCHECK(f, eof_within(partial, 4000));
	/* The one with a request in flight stays; its answer still comes. */
	uv_mutex_lock(&f->mu);
	f->release = 1;
	uv_mutex_unlock(&f->mu);
	CCHECK(f, read_reply(busy, &id, &code) == 0 && id == 9);
	/* Then it is quiet too, and goes. */
	CCHECK(f, eof_within(busy, 4000));
	close(quiet);
	close(busy);
	close(partial);
}

static void
test_idle_timeout(void **state)
{
	struct fx *f = *state;

	reopen_with_timeouts(f);
	f->reply_size = 0; /* hold requests */
	run_scenario(f, sc_idle);
	assert_int_equal(f->frames, 1);
	assert_int_equal(f->conns_closed, 3);
	assert_int_equal(server_conn_count(f->srv), 0);
}

static void
sc_unread(struct fx *f)
{
	uint8_t fr[9];
	uint32_t id, code;
	int fd = client_connect(f);

	CCHECK(f, fd >= 0);
	frame_hdr(fr, 5, PROTO_OP_CRL, 7);
	CCHECK(f, write(fd, fr, sizeof(fr)) == (ssize_t)sizeof(fr));
	/* The 4 MiB reply does not fit the socket: the server waits for a reader
	 * that never comes, then cuts the connection. */
	usleep(2500 * 1000);
	CCHECK(f, get(f, &f->conns_closed) == 1);
	/* What was written before the cut is readable, then EOF: never the whole. */
	CCHECK(f, read_reply(fd, &id, &code) == -1);
	close(fd);
}

static void
test_write_timeout(void **state)
{
	struct fx *f = *state;

	reopen_with_timeouts(f);
	f->reply_size = 4 * 1024 * 1024;
	run_scenario(f, sc_unread);
	assert_int_equal(f->conns_closed, 1);
}

static void
test_wake_coalesces(void **state)
{
	struct fx *f = *state;

	server_wake(f->srv);
	server_wake(f->srv);
	assert_int_equal(f->wakes, 0); /* never from inside the call */
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->wakes, 1);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->wakes, 1);
	server_wake(f->srv);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	assert_int_equal(f->wakes, 2);
	assert_int_equal(server_max_conns(f->srv), 1024);
}

static void
test_live_socket_kept(void **state)
{
	struct fx *f = *state;
	server_t *other = NULL;
	struct sockaddr_un sa;
	char stale[160];
	int fd;

	/* A server answers on the path: a second one must not take it over. */
	assert_int_equal(server_open(&f->loop, &f->opts, &cbs, f, &other), SERVER_ERR_IN_USE);
	/* A socket file nobody listens on is stale and replaced. */
	snprintf(stale, sizeof(stale), "%s/stale.sock", f->dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	strcpy(sa.sun_path, stale);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	f->opts.path = stale;
	assert_int_equal(server_open(&f->loop, &f->opts, &cbs, f, &other), SERVER_OK);
	server_close(other, NULL, NULL);
	uv_run(&f->loop, UV_RUN_NOWAIT);
	f->opts.path = f->path;
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_peer_checked_before_reading, setup, teardown),
		cmocka_unit_test_setup_teardown(test_frames_gathered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_lengths_close, setup, teardown),
		cmocka_unit_test_setup_teardown(test_queue_depth_busy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_live_socket_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_drains_replies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_max_conns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_timeout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wake_coalesces, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
