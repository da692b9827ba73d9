/*
 * hsmlink: the front process's client of the HSM process (see hsmlink.h).
 *
 * Bookkeeping: a "call" is one request of the caller (a sign batch, a pubkey, random or
 * status request) and owns the results handed to its callback. A "msg" is one frame
 * sent to the HSM process; each of its items points back at (call, index). A sign call
 * may span several msgs and a msg may carry items of several calls (coalescing), so a
 * call counts its missing results and runs its callback when the count reaches zero.
 *
 * This file carries that traffic; the HSM process's life (spawn, exit, the link's death
 * and closing) is in hsmlink_proc.c, and what both use in hsmlink_int.h.
 */
#include "signer/hsmlink.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "signer/hsmlink_int.h"

static const char reason_gone[] = "HSM process gone";

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
void hsmlink__fail_all(struct hsmlink *l)
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

static void on_write(uv_write_t *req, int status)
{
	struct write_req *w = (struct write_req *)req;
	struct hsmlink *l = req->data;

	hsmproto_buf_free(&w->buf);
	free(w);
	/* A request that cannot be delivered means the link is lost (cancelled: closing). */
	if (status < 0 && status != UV_ECANCELED)
		hsmlink__on_dead(l, 1);
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
		hsmlink__dead_later(l);
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
		hsmlink__dead_later(l);
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
		hsmlink__dead_later(l);
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
			hsmlink__on_dead(l, 1);
			return;
		}
		if (l->in_len - off - HSMPROTO_HEADER_LEN < h.length)
			break;
		if (handle_frame(l, &h, l->in + off + HSMPROTO_HEADER_LEN) != 0) {
			hsmlink__on_dead(l, 1);
			return;
		}
		off += HSMPROTO_HEADER_LEN + h.length;
	}
	if (l->dead || l->closing)
		return;
	memmove(l->in, l->in + off, l->in_len - off);
	l->in_len -= off;
}

void hsmlink__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
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

void hsmlink__on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct hsmlink *l = s->data;

	(void)buf;
	if (nread < 0) {
		/* EOF, a read error, or no memory for the input (UV_ENOBUFS): link lost. */
		hsmlink__on_dead(l, 0);
		return;
	}
	l->in_len += (size_t)nread;
	parse_input(l);
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
