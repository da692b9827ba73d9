/*
 * hsmlink: the front process's client of the HSM process (see hsmlink.h).
 *
 * Bookkeeping: a "call" is one request of the caller (a sign batch, a pubkey, random or
 * status request) and owns the results handed to its callback. A "msg" is one frame
 * sent to the HSM process; each of its items points back at (call, index). A sign call
 * may span several msgs and a msg may carry items of several calls (coalescing), so a
 * call counts its missing results and runs its callback when the count reaches zero.
 */
#include "signer/hsmlink.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "signer/hsmd.h"

/* How long hsmlink_close waits for the HSM process to exit before SIGKILL. */
#define HSMLINK_KILL_MS 5000
/* Flush the coalescing message before its body gets this large. */
#define HSMLINK_FLUSH_BYTES (HSMPROTO_MAX_BODY / 2)
#define HSMLINK_READ_CHUNK 65536
/* After SIGCHLD, how long EOF may take before the link is declared dead anyway. */
#define HSMLINK_EOF_WAIT_MS 1000

static const char reason_gone[] = "HSM process gone";

/* A result value up to this size (every ECDSA signature, raw or DER) is kept in the
 * call's own memory instead of a malloc of its own. */
#define HSMLINK_SMALL_VALUE 72

/*
 * A call and its n results are one allocation: the struct, then res[n], owned[2n] and
 * small[n]; a sign request costs one malloc here instead of three plus one per value.
 */
struct call {
	uint8_t type; /* HSMPROTO_SIGN, _PUBKEY, _RANDOM, _STATUS */
	size_t n;
	size_t missing;
	struct hsmlink_result *res;
	void **owned; /* 2 per result: reason copy, value copy (when not small) */
	uint8_t (*small)[HSMLINK_SMALL_VALUE];
	union {
		hsmlink_sign_cb sign;
		hsmlink_value_cb value;
		hsmlink_status_cb status;
	} cb;
	void *arg;
};

struct item {
	struct call *call;
	size_t idx;
	size_t off; /* while pending: where the request's data sits in pending.data */
};

struct msg {
	struct msg *next;
	uint32_t id;
	uint8_t type;
	size_t n;
	struct item *items;
};

/*
 * The SIGN message being coalesced: requests with copies of their data, all in one
 * buffer (bounded by HSMLINK_FLUSH_BYTES, kept between messages) rather than a malloc
 * each; reqs[i].data is pointed into it when the message is encoded.
 */
struct pending {
	struct hsmproto_sign_req *reqs;
	struct item *items;
	size_t n;
	size_t cap;
	size_t bytes;
	uint8_t *data;
	size_t data_len, data_cap;
};

struct write_req {
	uv_write_t req;
	struct hsmproto_buf buf;
};

struct hsmlink {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t pipe;
	uv_prepare_t prepare;
	uv_check_t check;
	uv_timer_t timer;
	int open_handles;

	struct hsmlink_options opts;
	int pid;
	int exited;
	int dead;
	int closing;
	int ready_seen;
	int reported;
	int64_t exit_status;
	int term_signal;
	void (*close_cb)(void *arg);
	void *close_arg;

	uint32_t next_id;
	uint64_t frames_sent;
	struct msg *inflight; /* sent, awaiting reply (newest first) */
	struct pending pending;

	uint8_t *in;    /* bytes read but not yet parsed */
	size_t in_len;
	size_t in_cap;
};

const char *hsmlink_strerror(int err)
{
	switch (err) {
	case HSMLINK_OK: return "success";
	case HSMLINK_ERR_NOMEM: return "out of memory";
	case HSMLINK_ERR_ARG: return "invalid argument";
	case HSMLINK_ERR_SPAWN: return "cannot start the HSM process";
	case HSMLINK_ERR_DEAD: return "HSM process gone";
	}
	return "unknown hsmlink error";
}

/* ---- calls ------------------------------------------------------------------------- */

static struct call *call_new(uint8_t type, size_t n, void *arg)
{
	struct call *c;
	size_t size;

	/* n is bounded by what a caller can hold in memory already; check anyway. */
	if (n > SIZE_MAX / 2 / (sizeof(struct hsmlink_result) + 2 * sizeof(void *) +
	                        HSMLINK_SMALL_VALUE))
		return NULL;
	size = sizeof(*c) + n * (sizeof(*c->res) + 2 * sizeof(*c->owned) + HSMLINK_SMALL_VALUE);
	if ((c = calloc(1, size)) == NULL)
		return NULL;
	/* The struct and each array are multiples of the pointer size: aligned. */
	c->res = (struct hsmlink_result *)(c + 1);
	c->owned = (void **)(c->res + n);
	c->small = (uint8_t (*)[HSMLINK_SMALL_VALUE])(c->owned + 2 * n);
	c->type = type;
	c->n = n;
	c->missing = n;
	c->arg = arg;
	return c;
}

static void call_free(struct call *c)
{
	for (size_t i = 0; i < 2 * c->n; i++)
		free(c->owned[i]);
	free(c);
}

/* Runs the callback once every result is in, then frees the call. */
static void call_finish(struct call *c, const struct hsmproto_status *st)
{
	switch (c->type) {
	case HSMPROTO_SIGN:
		c->cb.sign(c->arg, c->res, c->n);
		break;
	case HSMPROTO_PUBKEY:
	case HSMPROTO_RANDOM:
		c->cb.value(c->arg, &c->res[0]);
		break;
	case HSMPROTO_STATUS:
		c->cb.status(c->arg, st ? HSMPROTO_ST_OK : c->res[0].status, st);
		break;
	}
	call_free(c);
}

/* Stores one result (copying reason and value) and finishes the call if it was last. */
static void call_put(struct call *c, size_t i, const struct hsmproto_result *x)
{
	struct hsmlink_result *r = &c->res[i];

	r->status = x->status;
	r->reason = "";
	r->value = NULL;
	r->value_len = 0;
	if (x->reason[0] != '\0' && (c->owned[2 * i] = strdup(x->reason)) != NULL)
		r->reason = c->owned[2 * i];
	if (x->value_len > 0 && x->value_len <= HSMLINK_SMALL_VALUE) {
		memcpy(c->small[i], x->value, x->value_len);
		r->value = c->small[i];
		r->value_len = x->value_len;
	} else if (x->value_len > 0 && (c->owned[2 * i + 1] = malloc(x->value_len)) != NULL) {
		memcpy(c->owned[2 * i + 1], x->value, x->value_len);
		r->value = c->owned[2 * i + 1];
		r->value_len = x->value_len;
	} else if (x->value_len > 0) {
		r->status = HSMPROTO_ST_ERROR;
		r->reason = "out of memory";
	}
	if (--c->missing == 0)
		call_finish(c, NULL);
}

static void call_put_gone(struct call *c, size_t i)
{
	struct hsmproto_result x;

	memset(&x, 0, sizeof(x));
	x.status = HSMPROTO_ST_UNAVAILABLE;
	snprintf(x.reason, sizeof(x.reason), "%s", reason_gone);
	call_put(c, i, &x);
}

/* ---- messages ---------------------------------------------------------------------- */

static void msg_fail(struct msg *m)
{
	for (size_t i = 0; i < m->n; i++)
		call_put_gone(m->items[i].call, m->items[i].idx);
	free(m->items);
	free(m);
}

static void pending_clear(struct pending *p)
{
	p->n = 0;
	p->bytes = 0;
	p->data_len = 0;
}

/* Every request queued or in flight gets UNAVAILABLE. */
static void fail_all(struct hsmlink *l)
{
	struct pending *p = &l->pending;
	struct item *items = p->items;
	size_t n = p->n;

	pending_clear(p);
	for (size_t i = 0; i < n; i++)
		call_put_gone(items[i].call, items[i].idx);
	while (l->inflight != NULL) {
		struct msg *m = l->inflight;

		l->inflight = m->next;
		msg_fail(m);
	}
}

static void on_dead(struct hsmlink *l, int kill_now);

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct hsmlink *l = req->data;

	hsmproto_buf_free(&w->buf);
	free(w);
	/* A request that cannot be delivered means the link is lost (cancelled: closing). */
	if (status < 0 && status != UV_ECANCELED)
		on_dead(l, 1);
}

static void on_timer(uv_timer_t *t);

/*
 * Declares the link dead from the loop rather than now: the caller may be inside
 * hsmlink_sign and no callback may run from there.
 */
static void dead_later(struct hsmlink *l)
{
	if (!l->dead && !l->closing)
		uv_timer_start(&l->timer, on_timer, 0, 0);
}

/*
 * Sends an encoded frame (taking buf's memory) and records what it carries. It cannot
 * fail: when the frame cannot be written the message still waits in flight and the link
 * is declared dead from the loop, which fails it like every other.
 */
static void send_msg(struct hsmlink *l, struct hsmproto_buf *buf, struct msg *m)
{
	struct write_req *w = calloc(1, sizeof(*w));
	uv_buf_t ub;

	m->next = l->inflight;
	l->inflight = m;
	if (w == NULL || buf->err != 0) {
		free(w);
		hsmproto_buf_free(buf);
		dead_later(l);
		return;
	}
	w->buf = *buf;
	memset(buf, 0, sizeof(*buf));
	w->req.data = l;
	l->frames_sent++;
	ub = uv_buf_init((char *)w->buf.data, (unsigned)w->buf.len);
	if (uv_write(&w->req, (uv_stream_t *)&l->pipe, &ub, 1, on_write) != 0) {
		hsmproto_buf_free(&w->buf);
		free(w);
		dead_later(l);
	}
}

/* Sends the coalesced SIGN message, if any. */
static void flush(struct hsmlink *l)
{
	struct pending *p = &l->pending;
	struct hsmproto_buf buf = { 0 };
	struct msg *m;

	uv_prepare_stop(&l->prepare);
	uv_check_stop(&l->check);
	if (p->n == 0 || l->dead || l->closing)
		return;
	m = calloc(1, sizeof(*m));
	if (m == NULL || (m->items = malloc(p->n * sizeof(*m->items))) == NULL) {
		/* The pending requests stay queued and fail with the link. */
		free(m);
		dead_later(l);
		return;
	}
	m->id = l->next_id++;
	if (l->next_id == 0)
		l->next_id = 1;
	m->type = HSMPROTO_SIGN;
	m->n = p->n;
	memcpy(m->items, p->items, p->n * sizeof(*m->items));
	for (size_t i = 0; i < p->n; i++)
		p->reqs[i].data = p->data + p->items[i].off;
	hsmproto_sign_req_encode(&buf, m->id, p->reqs, p->n);
	pending_clear(p);
	send_msg(l, &buf, m);
}

static void on_prepare(uv_prepare_t *h)
{
	flush(h->data);
}

static void on_check(uv_check_t *h)
{
	flush(h->data);
}

/* Adds one request to the coalescing message, flushing first when it is full. */
static int pending_add(struct hsmlink *l, const struct hsmlink_sign_req *q, struct call *c,
                       size_t idx)
{
	struct pending *p = &l->pending;
	struct hsmproto_sign_req *q2;

	if (p->n == HSMPROTO_MAX_ITEMS || p->bytes + q->len + 80 > HSMLINK_FLUSH_BYTES)
		flush(l);
	if (p->n == p->cap) {
		size_t cap = p->cap ? 2 * p->cap : 64;
		struct hsmproto_sign_req *r = realloc(p->reqs, cap * sizeof(*r));
		struct item *it;

		if (r == NULL)
			return HSMLINK_ERR_NOMEM;
		p->reqs = r;
		it = realloc(p->items, cap * sizeof(*it));
		if (it == NULL)
			return HSMLINK_ERR_NOMEM;
		p->items = it;
		p->cap = cap;
	}
	if (p->data_len + q->len > p->data_cap) {
		/* Bounded: a message is flushed before its data pass HSMLINK_FLUSH_BYTES. */
		size_t cap = p->data_cap ? p->data_cap : 16384;
		uint8_t *d;

		while (cap < p->data_len + q->len)
			cap *= 2;
		if ((d = realloc(p->data, cap)) == NULL)
			return HSMLINK_ERR_NOMEM;
		p->data = d;
		p->data_cap = cap;
	}
	memcpy(p->data + p->data_len, q->data, q->len);
	q2 = &p->reqs[p->n];
	/* (req_valid has bounded the role's length: no format to parse per item.) */
	memcpy(q2->role, q->role, strlen(q->role) + 1);
	q2->kind = q->kind;
	q2->format = q->format;
	q2->data = NULL; /* set at flush: the buffer may move until then */
	q2->len = q->len;
	p->items[p->n].call = c;
	p->items[p->n].idx = idx;
	p->items[p->n].off = p->data_len;
	p->data_len += q->len;
	p->n++;
	p->bytes += q->len + 80;
	/* Sent before the loop blocks again: after this poll phase, or before the next. */
	uv_prepare_start(&l->prepare, on_prepare);
	uv_check_start(&l->check, on_check);
	return HSMLINK_OK;
}

/* ---- death and closing ------------------------------------------------------------- */

static void maybe_free(struct hsmlink *l)
{
	void (*cb)(void *) = l->close_cb;
	void *arg = l->close_arg;

	if (l->open_handles > 0 || !l->closing)
		return;
	fail_all(l);
	free(l->pending.reqs);
	free(l->pending.items);
	free(l->pending.data);
	free(l->in);
	free(l);
	if (cb)
		cb(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct hsmlink *l = h->data;

	l->open_handles--;
	maybe_free(l);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_handle_closed);
}

/* Tells the owner, once, that the HSM process is gone and how it ended. */
static void report_death(struct hsmlink *l)
{
	if (l->reported || l->closing)
		return;
	l->reported = 1;
	uv_timer_stop(&l->timer);
	if (l->opts.death_cb)
		l->opts.death_cb(l, l->exit_status, l->term_signal, l->opts.arg);
}

/*
 * The link is lost (EOF, read or write error, a malformed reply): nothing more will come
 * from it, so every request fails now. The death is reported once the process has been
 * reaped, so that the owner learns its exit status; one that lingers is killed.
 */
static void on_dead(struct hsmlink *l, int kill_now)
{
	if (l->dead || l->closing)
		return;
	l->dead = 1;
	uv_read_stop((uv_stream_t *)&l->pipe);
	if (kill_now && !l->exited)
		uv_process_kill(&l->proc, SIGKILL);
	fail_all(l);
	if (l->exited)
		report_death(l);
	else
		uv_timer_start(&l->timer, on_timer, HSMLINK_EOF_WAIT_MS, 0);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct hsmlink *l = p->data;

	l->exited = 1;
	l->pid = 0;
	l->exit_status = exit_status;
	l->term_signal = term_signal;
	if (l->closing) {
		uv_timer_stop(&l->timer);
		close_handle((uv_handle_t *)&l->timer);
		close_handle((uv_handle_t *)&l->proc);
		return;
	}
	if (l->dead) {
		report_death(l);
		return;
	}
	/*
	 * What the process wrote before it exited (a HELLO saying why, replies) may still
	 * be unread; EOF follows it and then reports the death. The timer only covers an
	 * EOF that never comes.
	 */
	uv_timer_start(&l->timer, on_timer, HSMLINK_EOF_WAIT_MS, 0);
}

/*
 * Closing: the HSM process did not exit in time. Link alive: declare it lost (a write
 * failed, or the process exited and EOF never came). Link lost: the process did not
 * exit in time after it.
 */
static void on_timer(uv_timer_t *t)
{
	struct hsmlink *l = t->data;

	if (l->closing) {
		if (!l->exited)
			uv_process_kill(&l->proc, SIGKILL);
		return;
	}
	if (!l->dead) {
		on_dead(l, 1);
		return;
	}
	if (!l->exited)
		uv_process_kill(&l->proc, SIGKILL);
	report_death(l);
}

void hsmlink_close(hsmlink_t *l, void (*close_cb)(void *arg), void *arg)
{
	if (l == NULL || l->closing)
		return;
	l->close_cb = close_cb;
	l->close_arg = arg;
	fail_all(l); /* their callbacks run before the link is marked closing */
	l->closing = 1;
	uv_read_stop((uv_stream_t *)&l->pipe);
	close_handle((uv_handle_t *)&l->pipe); /* the HSM process sees EOF and exits */
	close_handle((uv_handle_t *)&l->prepare);
	close_handle((uv_handle_t *)&l->check);
	if (l->exited) {
		close_handle((uv_handle_t *)&l->timer);
		close_handle((uv_handle_t *)&l->proc);
	} else {
		uv_timer_start(&l->timer, on_timer, HSMLINK_KILL_MS, 0);
	}
}

/* ---- replies ----------------------------------------------------------------------- */

static struct msg *msg_take(struct hsmlink *l, uint32_t id)
{
	for (struct msg **pp = &l->inflight; *pp != NULL; pp = &(*pp)->next) {
		struct msg *m = *pp;

		if (m->id == id) {
			*pp = m->next;
			return m;
		}
	}
	return NULL;
}

static uint8_t request_type(uint8_t reply)
{
	return reply & 0x7f;
}

/* Handles one complete frame. @return 0, or -1 for a protocol error (peer is broken). */
static int handle_frame(struct hsmlink *l, const struct hsmproto_header *h, const uint8_t *body)
{
	struct hsmproto_result *res = NULL;
	struct hsmproto_status st;
	struct msg *m;
	int e;

	if (h->type == HSMPROTO_HELLO) {
		if (l->ready_seen || hsmproto_results_decode(h, body, &res) != HSMPROTO_OK)
			return -1;
		l->ready_seen = 1;
		if (l->opts.ready_cb)
			l->opts.ready_cb(l, res[0].status, res[0].reason, l->opts.arg);
		free(res);
		return 0;
	}
	m = msg_take(l, h->id);
	if (m == NULL || request_type(h->type) != m->type || !(h->type & 0x80) ||
	    (h->type != HSMPROTO_STATUS_REPLY && h->count != m->n)) {
		if (m != NULL)
			msg_fail(m);
		return -1;
	}
	if (h->type == HSMPROTO_STATUS_REPLY) {
		e = hsmproto_status_decode(h, body, &st);
		if (e != HSMPROTO_OK) {
			msg_fail(m);
			return -1;
		}
		m->items[0].call->missing = 0;
		call_finish(m->items[0].call, &st);
		hsmproto_status_clear(&st);
		free(m->items);
		free(m);
		return 0;
	}
	e = hsmproto_results_decode(h, body, &res);
	if (e != HSMPROTO_OK) {
		msg_fail(m);
		return -1;
	}
	for (size_t i = 0; i < m->n; i++)
		call_put(m->items[i].call, m->items[i].idx, &res[i]);
	free(res);
	free(m->items);
	free(m);
	return 0;
}

/* Parses every complete frame in the input buffer. */
static void parse_input(struct hsmlink *l)
{
	size_t off = 0;

	while (!l->dead && !l->closing && l->in_len - off >= HSMPROTO_HEADER_LEN) {
		struct hsmproto_header h;

		if (hsmproto_header_decode(l->in + off, &h) != HSMPROTO_OK) {
			on_dead(l, 1);
			return;
		}
		if (l->in_len - off - HSMPROTO_HEADER_LEN < h.length)
			break;
		if (handle_frame(l, &h, l->in + off + HSMPROTO_HEADER_LEN) != 0) {
			on_dead(l, 1);
			return;
		}
		off += HSMPROTO_HEADER_LEN + h.length;
	}
	if (l->dead || l->closing)
		return;
	memmove(l->in, l->in + off, l->in_len - off);
	l->in_len -= off;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct hsmlink *l = h->data;
	size_t want = l->in_len + HSMLINK_READ_CHUNK;

	(void)suggested;
	buf->base = NULL;
	buf->len = 0;
	/* Never more than one maximal frame plus a chunk: the header bounds the body. */
	if (want > l->in_cap && want <= HSMPROTO_HEADER_LEN + HSMPROTO_MAX_BODY + HSMLINK_READ_CHUNK) {
		uint8_t *p = realloc(l->in, want);

		if (p == NULL)
			return;
		l->in = p;
		l->in_cap = want;
	}
	if (l->in_cap > l->in_len) {
		buf->base = (char *)l->in + l->in_len;
		buf->len = l->in_cap - l->in_len;
	}
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hsmlink *l = s->data;

	(void)buf;
	if (nread < 0) {
		/* EOF, a read error, or no memory for the input (UV_ENOBUFS): link lost. */
		on_dead(l, 0);
		return;
	}
	l->in_len += (size_t)nread;
	parse_input(l);
}

/* ---- spawn ------------------------------------------------------------------------- */

int hsmlink_spawn(uv_loop_t *loop, const struct hsmlink_options *opts, hsmlink_t **out)
{
	struct hsmlink *l = NULL;
	uv_process_options_t po;
	uv_stdio_container_t stdio[4];
	char **args = NULL;
	size_t n_dirs = 0, a = 0;
	int sv[2] = { -1, -1 }, r = HSMLINK_ERR_ARG;

	*out = NULL;
	if (loop == NULL || opts == NULL || opts->exe_path == NULL || opts->config_path == NULL)
		return HSMLINK_ERR_ARG;
	while (opts->module_dirs && opts->module_dirs[n_dirs])
		n_dirs++;
	r = HSMLINK_ERR_NOMEM;
	l = calloc(1, sizeof(*l));
	args = calloc(7 + 2 * n_dirs, sizeof(*args));
	if (l == NULL || args == NULL)
		goto fail;
	l->loop = loop;
	l->opts = *opts;
	l->next_id = 1;
	l->exit_status = -1;
	l->term_signal = -1;
	args[a++] = (char *)opts->exe_path;
	args[a++] = (char *)HSMD_OPTION;
	args[a++] = (char *)"--fd";
	args[a++] = (char *)"3";
	args[a++] = (char *)"-c";
	args[a++] = (char *)opts->config_path;
	for (size_t i = 0; i < n_dirs; i++) {
		args[a++] = (char *)"--module-dir";
		args[a++] = (char *)opts->module_dirs[i];
	}
	r = HSMLINK_ERR_SPAWN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		goto fail;
	uv_pipe_init(loop, &l->pipe, 0);
	uv_prepare_init(loop, &l->prepare);
	uv_check_init(loop, &l->check);
	uv_timer_init(loop, &l->timer);
	l->pipe.data = l->prepare.data = l->check.data = l->timer.data = l->proc.data = l;
	l->open_handles = 5;
	memset(&po, 0, sizeof(po));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = 1;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = sv[1];
	po.file = opts->exe_path;
	po.args = args;
	po.exit_cb = on_exit_cb;
	po.stdio = stdio;
	po.stdio_count = 4;
	if (uv_spawn(loop, &l->proc, &po) != 0) {
		/* The handles exist now: close them; the memory goes in their callbacks. */
		close(sv[0]);
		close(sv[1]);
		l->exited = 1;
		l->closing = 1;
		close_handle((uv_handle_t *)&l->pipe);
		close_handle((uv_handle_t *)&l->prepare);
		close_handle((uv_handle_t *)&l->check);
		close_handle((uv_handle_t *)&l->timer);
		close_handle((uv_handle_t *)&l->proc);
		free(args);
		return HSMLINK_ERR_SPAWN;
	}
	l->pid = l->proc.pid;
	close(sv[1]);
	sv[1] = -1;
	if (uv_pipe_open(&l->pipe, sv[0]) != 0) {
		close(sv[0]);
		free(args);
		*out = l;
		on_dead(l, 1);
		return HSMLINK_OK; /* the caller sees death_cb and closes the link */
	}
	sv[0] = -1;
	uv_read_start((uv_stream_t *)&l->pipe, on_alloc, on_read);
	free(args);
	*out = l;
	return HSMLINK_OK;
fail:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(args);
	free(l);
	return r;
}

int hsmlink_pid(const hsmlink_t *l)
{
	return l ? l->pid : 0;
}

int hsmlink_alive(const hsmlink_t *l)
{
	return l && !l->dead && !l->closing;
}

uint64_t hsmlink_frames_sent(const hsmlink_t *l)
{
	return l ? l->frames_sent : 0;
}

/* ---- requests ---------------------------------------------------------------------- */

static int req_valid(const struct hsmlink_sign_req *q)
{
	return q->role != NULL && hsmproto_role_valid(q->role) &&
	       q->kind >= HSMPROTO_KIND_TBS_CERT && q->kind <= HSMPROTO_KIND_CHECKPOINT &&
	       (q->format == HSMPROTO_FORMAT_RAW || q->format == HSMPROTO_FORMAT_DER) &&
	       q->data != NULL && q->len > 0 && q->len <= HSMPROTO_MAX_DATA;
}

int hsmlink_sign(hsmlink_t *l, const struct hsmlink_sign_req *reqs, size_t n,
                 hsmlink_sign_cb cb, void *arg)
{
	struct call *c;
	int e;

	if (l == NULL || reqs == NULL || n == 0 || cb == NULL)
		return HSMLINK_ERR_ARG;
	if (!hsmlink_alive(l))
		return HSMLINK_ERR_DEAD;
	for (size_t i = 0; i < n; i++) {
		if (!req_valid(&reqs[i]))
			return HSMLINK_ERR_ARG;
	}
	c = call_new(HSMPROTO_SIGN, n, arg);
	if (c == NULL)
		return HSMLINK_ERR_NOMEM;
	c->cb.sign = cb;
	/*
	 * One extra count keeps the call alive while its items are queued, so that a flush
	 * failing half way (the link dies) cannot finish it under our feet.
	 */
	c->missing++;
	for (size_t i = 0; i < n; i++) {
		e = pending_add(l, &reqs[i], c, i);
		if (e != HSMLINK_OK) {
			/* Items already queued stay queued; the rest fail with the error. */
			for (size_t j = i; j < n; j++) {
				c->res[j].status = HSMPROTO_ST_ERROR;
				c->res[j].reason = "out of memory";
				c->missing--;
			}
			if (i == 0) {
				/* Nothing was queued: say so instead of calling back. */
				call_free(c);
				return e;
			}
			break;
		}
	}
	/* Drop the extra count; results only come from the loop, so it cannot be zero. */
	c->missing--;
	return HSMLINK_OK;
}

/* Sends a one-item request (PUBKEY, RANDOM, STATUS) for call c. */
static int send_single(struct hsmlink *l, struct hsmproto_buf *buf, uint8_t type, uint32_t id,
                       struct call *c)
{
	struct msg *m = calloc(1, sizeof(*m));

	if (m == NULL || (m->items = calloc(1, sizeof(*m->items))) == NULL) {
		free(m);
		hsmproto_buf_free(buf);
		call_free(c);
		return HSMLINK_ERR_NOMEM;
	}
	m->id = id;
	m->type = type;
	m->n = 1;
	m->items[0].call = c;
	send_msg(l, buf, m);
	return HSMLINK_OK;
}

static uint32_t take_id(struct hsmlink *l)
{
	uint32_t id = l->next_id++;

	if (l->next_id == 0)
		l->next_id = 1;
	return id;
}

int hsmlink_pubkey(hsmlink_t *l, const char *role, hsmlink_value_cb cb, void *arg)
{
	struct hsmproto_buf buf = { 0 };
	struct call *c;
	uint32_t id;

	if (l == NULL || role == NULL || !hsmproto_role_valid(role) || cb == NULL)
		return HSMLINK_ERR_ARG;
	if (!hsmlink_alive(l))
		return HSMLINK_ERR_DEAD;
	c = call_new(HSMPROTO_PUBKEY, 1, arg);
	if (c == NULL)
		return HSMLINK_ERR_NOMEM;
	c->cb.value = cb;
	id = take_id(l);
	if (hsmproto_pubkey_req_encode(&buf, id, role) != HSMPROTO_OK) {
		hsmproto_buf_free(&buf);
		call_free(c);
		return HSMLINK_ERR_NOMEM;
	}
	return send_single(l, &buf, HSMPROTO_PUBKEY, id, c);
}

int hsmlink_random(hsmlink_t *l, uint32_t n, hsmlink_value_cb cb, void *arg)
{
	struct hsmproto_buf buf = { 0 };
	struct call *c;
	uint32_t id;

	if (l == NULL || n == 0 || n > HSMPROTO_MAX_RANDOM || cb == NULL)
		return HSMLINK_ERR_ARG;
	if (!hsmlink_alive(l))
		return HSMLINK_ERR_DEAD;
	c = call_new(HSMPROTO_RANDOM, 1, arg);
	if (c == NULL)
		return HSMLINK_ERR_NOMEM;
	c->cb.value = cb;
	id = take_id(l);
	if (hsmproto_random_req_encode(&buf, id, n) != HSMPROTO_OK) {
		hsmproto_buf_free(&buf);
		call_free(c);
		return HSMLINK_ERR_NOMEM;
	}
	return send_single(l, &buf, HSMPROTO_RANDOM, id, c);
}

int hsmlink_status(hsmlink_t *l, hsmlink_status_cb cb, void *arg)
{
	struct hsmproto_buf buf = { 0 };
	struct call *c;
	uint32_t id;

	if (l == NULL || cb == NULL)
		return HSMLINK_ERR_ARG;
	if (!hsmlink_alive(l))
		return HSMLINK_ERR_DEAD;
	c = call_new(HSMPROTO_STATUS, 1, arg);
	if (c == NULL)
		return HSMLINK_ERR_NOMEM;
	c->cb.status = cb;
	id = take_id(l);
	if (hsmproto_status_req_encode(&buf, id) != HSMPROTO_OK) {
		hsmproto_buf_free(&buf);
		call_free(c);
		return HSMLINK_ERR_NOMEM;
	}
	return send_single(l, &buf, HSMPROTO_STATUS, id, c);
}
