/*
 * Sandbox hook of the front process (see hook.h). Its own action:
 *
 *   work DIR   what the front process does, under its sandbox: a libuv loop
 *              with thread-pool jobs (threads started after the filter), an
 *              echo over a Unix socket bound in DIR (its mode set as the
 *              daemon sets its signing socket's), over TCP and over UDP on
 *              127.0.0.1, a signal handled by the loop, an atomically replaced
 *              file in DIR and a SQLite database in WAL mode in DIR. Exit 0
 *              when everything worked and the loop closed cleanly.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>
#include <uv.h>

#include "tests/sandbox/hook.h"

#define JOBS 8

struct front {
	uv_loop_t loop;
	uv_pipe_t pipe_srv, pipe_cli;
	uv_tcp_t tcp_srv, tcp_cli;
	uv_udp_t udp;
	uv_signal_t sig;
	uv_connect_t pipe_conn, tcp_conn;
	uv_work_t jobs[JOBS];
	uv_udp_send_t udp_send;
	int jobs_done, echoes, udp_got, signals, failures;
	int pending; /* completions still to come, failed or not */
	char dir[4096];
};

struct conn {
	uv_stream_t *stream; /* a uv_pipe_t or uv_tcp_t */
	uv_write_t wr;
	char buf[64];
};

static void on_alloc(uv_handle_t *h, size_t want, uv_buf_t *b)
{
	static char slab[65536];

	(void)h;
	*b = uv_buf_init(slab, want < sizeof(slab) ? (unsigned)want : sizeof(slab));
}

/* Once every job, echo, datagram and signal came back, the listeners close
 * and uv_run returns. */
static void front_done_one(struct front *f)
{
	if (--f->pending == 0) {
		uv_close((uv_handle_t *)&f->pipe_srv, NULL);
		uv_close((uv_handle_t *)&f->tcp_srv, NULL);
	}
}

static void on_close_free(uv_handle_t *h)
{
	free(h->data);
	free(h);
}

static void srv_on_write(uv_write_t *w, int status)
{
	struct conn *c = w->data;

	(void)status;
	uv_close((uv_handle_t *)c->stream, on_close_free);
}

/* Server side: echo the first chunk back, then close. */
static void srv_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct conn *c = s->data;
	uv_buf_t out;

	if (n <= 0) {
		if (n < 0)
			uv_close((uv_handle_t *)s, on_close_free);
		return;
	}
	uv_read_stop(s);
	memcpy(c->buf, b->base, (size_t)n < sizeof(c->buf) ? (size_t)n : sizeof(c->buf));
	out = uv_buf_init(c->buf, (size_t)n < sizeof(c->buf) ? (unsigned)n : sizeof(c->buf));
	c->wr.data = c;
	if (uv_write(&c->wr, s, &out, 1, srv_on_write) != 0)
		uv_close((uv_handle_t *)s, on_close_free);
}

static void srv_on_connection(uv_stream_t *srv, int status)
{
	struct front *f = srv->data;
	struct conn *c;
	uv_stream_t *s;

	if (status != 0) {
		f->failures++;
		return;
	}
	c = calloc(1, sizeof(*c));
	s = srv->type == UV_NAMED_PIPE ? malloc(sizeof(uv_pipe_t)) : malloc(sizeof(uv_tcp_t));
	if (c == NULL || s == NULL)
		abort();
	if (srv->type == UV_NAMED_PIPE)
		uv_pipe_init(&f->loop, (uv_pipe_t *)s, 0);
	else
		uv_tcp_init(&f->loop, (uv_tcp_t *)s);
	c->stream = s;
	s->data = c;
	if (uv_accept(srv, s) != 0 || uv_read_start(s, on_alloc, srv_on_read) != 0) {
		f->failures++;
		uv_close((uv_handle_t *)s, on_close_free);
	}
}

static void cli_on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *b)
{
	struct front *f = s->loop->data;

	if (n == 0)
		return;
	if (n == 4 && memcmp(b->base, "ping", 4) == 0)
		f->echoes++;
	else
		f->failures++;
	uv_close((uv_handle_t *)s, NULL);
	front_done_one(f);
}

static void cli_on_write(uv_write_t *w, int status)
{
	free(w);
	(void)status;
}

static void cli_on_connect(uv_connect_t *req, int status)
{
	struct front *f = req->handle->loop->data;
	uv_write_t *w = malloc(sizeof(*w));
	uv_buf_t b = uv_buf_init((char *)"ping", 4);

	if (status != 0 || w == NULL || uv_write(w, req->handle, &b, 1, cli_on_write) != 0 ||
	    uv_read_start(req->handle, on_alloc, cli_on_read) != 0) {
		fprintf(stderr, "hook: connect: %s\n", uv_strerror(status));
		f->failures++;
		free(w);
		uv_close((uv_handle_t *)req->handle, NULL);
		front_done_one(f);
	}
}

static void job_work(uv_work_t *w)
{
	struct front *f = w->loop->data;
	char path[4200];
	int fd;

	snprintf(path, sizeof(path), "%s/job-%d", f->dir, (int)(w - f->jobs));
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0 || write(fd, "job\n", 4) != 4 || fsync(fd) != 0)
		w->data = (void *)1;
	if (fd >= 0)
		close(fd);
}

static void job_after(uv_work_t *w, int status)
{
	struct front *f = w->loop->data;

	if (status != 0 || w->data != NULL)
		f->failures++;
	f->jobs_done++;
	front_done_one(f);
}

static void udp_on_recv(uv_udp_t *u, ssize_t n, const uv_buf_t *b, const struct sockaddr *from,
			unsigned flags)
{
	struct front *f = u->loop->data;

	(void)from;
	(void)flags;
	if (n == 0)
		return;
	if (n == 5 && memcmp(b->base, "query", 5) == 0)
		f->udp_got++;
	else
		f->failures++;
	uv_close((uv_handle_t *)u, NULL);
	front_done_one(f);
}

static void on_signal(uv_signal_t *s, int signum)
{
	struct front *f = s->loop->data;

	(void)signum;
	f->signals++;
	uv_close((uv_handle_t *)s, NULL);
	front_done_one(f);
}

/* The listeners: a Unix socket in DIR, TCP and UDP on 127.0.0.1, port 0. */
static int front_listen(struct front *f)
{
	struct sockaddr_in lo;
	struct sockaddr_storage bound;
	int len = sizeof(bound);
	char path[4200];
	uv_buf_t q = uv_buf_init((char *)"query", 5);

	snprintf(path, sizeof(path), "%s/front.sock", f->dir);
	uv_ip4_addr("127.0.0.1", 0, &lo);
	if (uv_pipe_init(&f->loop, &f->pipe_srv, 0) || uv_pipe_bind(&f->pipe_srv, path) ||
	    uv_pipe_chmod(&f->pipe_srv, UV_READABLE | UV_WRITABLE) ||
	    uv_listen((uv_stream_t *)&f->pipe_srv, 8, srv_on_connection) ||
	    uv_pipe_init(&f->loop, &f->pipe_cli, 0))
		return -1;
	uv_pipe_connect(&f->pipe_conn, &f->pipe_cli, path, cli_on_connect);
	if (uv_tcp_init(&f->loop, &f->tcp_srv) || uv_tcp_bind(&f->tcp_srv, (void *)&lo, 0) ||
	    uv_listen((uv_stream_t *)&f->tcp_srv, 8, srv_on_connection) ||
	    uv_tcp_getsockname(&f->tcp_srv, (void *)&bound, &len) || uv_tcp_init(&f->loop, &f->tcp_cli) ||
	    uv_tcp_connect(&f->tcp_conn, &f->tcp_cli, (void *)&bound, cli_on_connect))
		return -1;
	len = sizeof(bound);
	if (uv_udp_init(&f->loop, &f->udp) || uv_udp_bind(&f->udp, (void *)&lo, 0) ||
	    uv_udp_getsockname(&f->udp, (void *)&bound, &len) ||
	    uv_udp_recv_start(&f->udp, on_alloc, udp_on_recv) ||
	    uv_udp_send(&f->udp_send, &f->udp, &q, 1, (void *)&bound, NULL))
		return -1;
	f->pipe_srv.data = f;
	f->tcp_srv.data = f;
	return 0;
}

/* A file replaced atomically, as the daemon writes its zone file and CRL. */
static int front_atomic_file(const struct front *f)
{
	char tmp[4200], dst[4200];
	int fd, dfd;

	snprintf(tmp, sizeof(tmp), "%s/zone.tmp", f->dir);
	snprintf(dst, sizeof(dst), "%s/zone.db", f->dir);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0 || write(fd, "zone\n", 5) != 5 || fsync(fd) != 0 || close(fd) != 0 ||
	    rename(tmp, dst) != 0)
		return hook_errno("atomic file", errno);
	dfd = open(f->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0 || fsync(dfd) != 0)
		return hook_errno("directory fsync", errno);
	close(dfd);
	return 0;
}

static int front_sqlite(const struct front *f)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	char path[4200];
	int r = HOOK_EXIT_ERRNO;

	snprintf(path, sizeof(path), "%s/state.db", f->dir);
	unlink(path);
	for (const char *const *x = (const char *const[]){ "-wal", "-shm", NULL }; *x; x++) {
		char side[4300];

		snprintf(side, sizeof(side), "%s%s", path, *x);
		unlink(side);
	}
	if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK ||
	    sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
			 "CREATE TABLE t(x INTEGER); BEGIN;"
			 "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM c WHERE i<500)"
			 " INSERT INTO t SELECT i FROM c; COMMIT;", NULL, NULL, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(db, "SELECT sum(x) FROM t", -1, &st, NULL) != SQLITE_OK ||
	    sqlite3_step(st) != SQLITE_ROW || sqlite3_column_int64(st, 0) != 125250)
		fprintf(stderr, "hook: sqlite: %s\n", db ? sqlite3_errmsg(db) : "open");
	else
		r = 0;
	sqlite3_finalize(st);
	if (sqlite3_close(db) != SQLITE_OK)
		r = HOOK_EXIT_ERRNO;
	return r;
}

static int front_work(const char *dir)
{
	struct front *f = calloc(1, sizeof(*f));
	int r = HOOK_EXIT_ERRNO;

	if (f == NULL || strlen(dir) >= sizeof(f->dir))
		return HOOK_EXIT_SETUP;
	strcpy(f->dir, dir);
	if (uv_loop_init(&f->loop) != 0)
		goto out;
	f->loop.data = f;
	f->pending = JOBS + 2 + 1 + 1;
	for (int i = 0; i < JOBS; i++)
		if (uv_queue_work(&f->loop, &f->jobs[i], job_work, job_after) != 0)
			goto out;
	if (front_listen(f) != 0 || uv_signal_init(&f->loop, &f->sig) != 0 ||
	    uv_signal_start(&f->sig, on_signal, SIGHUP) != 0 || uv_kill(getpid(), SIGHUP) != 0) {
		fprintf(stderr, "hook: libuv setup failed\n");
		goto out;
	}
	if (uv_run(&f->loop, UV_RUN_DEFAULT) != 0)
		goto out;
	fprintf(stderr, "hook: jobs %d, echoes %d, udp %d, signals %d, failures %d\n",
		f->jobs_done, f->echoes, f->udp_got, f->signals, f->failures);
	if (f->jobs_done != JOBS || f->echoes != 2 || f->udp_got != 1 || f->signals != 1 ||
	    f->failures != 0 || uv_loop_close(&f->loop) != 0)
		goto out;
	r = front_atomic_file(f);
	if (r == 0)
		r = front_sqlite(f);
out:
	free(f);
	return r;
}

static int front_action(const char *action, int argc, char **argv)
{
	if (strcmp(action, "work") == 0 && argc == 1)
		return front_work(argv[0]);
	return -1;
}

int main(int argc, char **argv)
{
	return hook_main(argc, argv, SANDBOX_PROFILE_FRONT, front_action);
}
