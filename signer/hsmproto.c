/*
 * hsmproto: encoder and decoder of the front <-> HSM process protocol (see hsmproto.h).
 *
 * Both sides distrust each other a little: the HSM process must never act on a request
 * it has not fully checked, and the front must never read past a reply. So every byte
 * goes through a bounded reader with a sticky error, every length is checked against its
 * hard maximum before it is used, and a body must be consumed exactly.
 */
#include "signer/hsmproto.h"

#include <stdlib.h>
#include <string.h>

/* ---- bounded reader ------------------------------------------------------------ */

struct rd {
	const uint8_t *p;
	size_t left;
	int err;
};

static void rd_fail(struct rd *r, int err)
{
	if (r->err == 0)
		r->err = err;
	r->left = 0;
}

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->err != 0)
		return NULL;
	if (n > r->left) {
		rd_fail(r, HSMPROTO_ERR_TRUNCATED);
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static uint8_t rd_u8(struct rd *r)
{
	const uint8_t *p = rd_take(r, 1);

	return p ? p[0] : 0;
}

static uint16_t rd_u16(struct rd *r)
{
	const uint8_t *p = rd_take(r, 2);

	return p ? (uint16_t)(p[0] << 8 | p[1]) : 0;
}

static uint32_t rd_u32(struct rd *r)
{
	const uint8_t *p = rd_take(r, 4);

	return p ? (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3]
	         : 0;
}

static uint64_t rd_u64(struct rd *r)
{
	uint64_t hi = rd_u32(r);

	return hi << 32 | rd_u32(r);
}

/* A role name: str8 of 1..HSMPROTO_MAX_ROLE characters of the role alphabet. */
static void rd_role(struct rd *r, char out[HSMPROTO_MAX_ROLE + 1])
{
	uint8_t n = rd_u8(r);
	const uint8_t *p;

	out[0] = '\0';
	if (r->err != 0)
		return;
	if (n == 0 || n > HSMPROTO_MAX_ROLE) {
		rd_fail(r, n == 0 ? HSMPROTO_ERR_VALUE : HSMPROTO_ERR_TOO_BIG);
		return;
	}
	p = rd_take(r, n);
	if (p == NULL)
		return;
	memcpy(out, p, n);
	out[n] = '\0';
	/* An embedded NUL would make the role read shorter than it was sent. */
	if (memchr(p, 0, n) != NULL || !hsmproto_role_valid(out)) {
		out[0] = '\0';
		rd_fail(r, HSMPROTO_ERR_VALUE);
	}
}

/* A reason: str8 of printable ASCII (it ends up in logs and audit records). */
static void rd_reason(struct rd *r, char out[HSMPROTO_MAX_REASON + 1])
{
	uint8_t n = rd_u8(r);
	const uint8_t *p = rd_take(r, n);

	out[0] = '\0';
	if (p == NULL)
		return;
	for (size_t i = 0; i < n; i++) {
		if (p[i] < 0x20 || p[i] > 0x7e) {
			rd_fail(r, HSMPROTO_ERR_VALUE);
			return;
		}
	}
	memcpy(out, p, n);
	out[n] = '\0';
}

/* ---- growable writer --------------------------------------------------------------- */

static void wr_fail(struct hsmproto_buf *b, int err)
{
	if (b->err == 0)
		b->err = err;
}

static uint8_t *wr_room(struct hsmproto_buf *b, size_t n)
{
	size_t cap;
	uint8_t *p;

	if (b->err != 0)
		return NULL;
	if (n > SIZE_MAX - b->len) {
		wr_fail(b, HSMPROTO_ERR_TOO_BIG);
		return NULL;
	}
	if (b->len + n > b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap < b->len + n)
			cap *= 2;
		p = realloc(b->data, cap);
		if (p == NULL) {
			wr_fail(b, HSMPROTO_ERR_NOMEM);
			return NULL;
		}
		b->data = p;
		b->cap = cap;
	}
	p = b->data + b->len;
	b->len += n;
	return p;
}

static void put_u32_at(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

static void wr_u8(struct hsmproto_buf *b, uint8_t v)
{
	uint8_t *p = wr_room(b, 1);

	if (p)
		p[0] = v;
}

static void wr_u16(struct hsmproto_buf *b, uint16_t v)
{
	uint8_t *p = wr_room(b, 2);

	if (p) {
		p[0] = (uint8_t)(v >> 8);
		p[1] = (uint8_t)v;
	}
}

static void wr_u32(struct hsmproto_buf *b, uint32_t v)
{
	uint8_t *p = wr_room(b, 4);

	if (p)
		put_u32_at(p, v);
}

static void wr_u64(struct hsmproto_buf *b, uint64_t v)
{
	wr_u32(b, (uint32_t)(v >> 32));
	wr_u32(b, (uint32_t)v);
}

static void wr_bytes(struct hsmproto_buf *b, const void *src, size_t n)
{
	uint8_t *p = wr_room(b, n);

	if (p && n > 0)
		memcpy(p, src, n);
}

static void wr_role(struct hsmproto_buf *b, const char *role)
{
	if (role == NULL || !hsmproto_role_valid(role)) {
		wr_fail(b, HSMPROTO_ERR_ARG);
		return;
	}
	wr_u8(b, (uint8_t)strlen(role));
	wr_bytes(b, role, strlen(role));
}

/*
 * A frame is written header first with a zero length; frame_end patches the length in
 * once the body is known, or rolls the buffer back to where the frame began on error so
 * a failed encode never leaves half a frame behind.
 */
static size_t frame_begin(struct hsmproto_buf *b, uint8_t type, uint32_t id, uint32_t count)
{
	size_t start = b->len;

	wr_u8(b, HSMPROTO_VERSION);
	wr_u8(b, type);
	wr_u16(b, 0);
	wr_u32(b, id);
	wr_u32(b, count);
	wr_u32(b, 0);
	return start;
}

static int frame_end(struct hsmproto_buf *b, size_t start)
{
	size_t body;

	if (b->err == 0) {
		body = b->len - start - HSMPROTO_HEADER_LEN;
		if (body > HSMPROTO_MAX_BODY)
			wr_fail(b, HSMPROTO_ERR_TOO_BIG);
		else
			put_u32_at(b->data + start + 12, (uint32_t)body);
	}
	if (b->err != 0 && b->len >= start)
		b->len = start;
	return b->err;
}

/* ---- public ------------------------------------------------------------------------ */

const char *hsmproto_strerror(int err)
{
	switch (err) {
	case HSMPROTO_OK: return "success";
	case HSMPROTO_ERR_NOMEM: return "out of memory";
	case HSMPROTO_ERR_ARG: return "invalid argument";
	case HSMPROTO_ERR_TRUNCATED: return "message truncated";
	case HSMPROTO_ERR_TOO_BIG: return "length above its maximum";
	case HSMPROTO_ERR_LENGTH: return "lengths disagree";
	case HSMPROTO_ERR_VERSION: return "unknown protocol version";
	case HSMPROTO_ERR_TYPE: return "unknown or unexpected message type";
	case HSMPROTO_ERR_VALUE: return "invalid value in message";
	}
	return "unknown hsmproto error";
}

const char *hsmproto_status_name(int status)
{
	switch (status) {
	case HSMPROTO_ST_OK: return "OK";
	case HSMPROTO_ST_REFUSED: return "REFUSED";
	case HSMPROTO_ST_UNAVAILABLE: return "UNAVAILABLE";
	case HSMPROTO_ST_ERROR: return "ERROR";
	}
	return "UNKNOWN";
}

void hsmproto_buf_free(struct hsmproto_buf *b)
{
	if (b == NULL)
		return;
	free(b->data);
	memset(b, 0, sizeof(*b));
}

int hsmproto_role_valid(const char *role)
{
	size_t n = 0;

	for (; role[n] != '\0'; n++) {
		char c = role[n];

		if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '-' || c == '_' || c == '/' || c == '@'))
			return 0;
		if (n >= HSMPROTO_MAX_ROLE)
			return 0;
	}
	return n > 0;
}

static int type_known(uint8_t type)
{
	switch (type) {
	case HSMPROTO_HELLO: case HSMPROTO_SIGN: case HSMPROTO_PUBKEY: case HSMPROTO_RANDOM:
	case HSMPROTO_STATUS: case HSMPROTO_SIGN_REPLY: case HSMPROTO_PUBKEY_REPLY:
	case HSMPROTO_RANDOM_REPLY: case HSMPROTO_STATUS_REPLY:
		return 1;
	}
	return 0;
}

int hsmproto_header_decode(const uint8_t buf[HSMPROTO_HEADER_LEN], struct hsmproto_header *h)
{
	struct rd r = { buf, HSMPROTO_HEADER_LEN, 0 };
	uint16_t reserved;
	uint32_t max_count;

	memset(h, 0, sizeof(*h));
	h->version = rd_u8(&r);
	h->type = rd_u8(&r);
	reserved = rd_u16(&r);
	h->id = rd_u32(&r);
	h->count = rd_u32(&r);
	h->length = rd_u32(&r);
	if (h->version != HSMPROTO_VERSION)
		return HSMPROTO_ERR_VERSION;
	if (!type_known(h->type))
		return HSMPROTO_ERR_TYPE;
	if (reserved != 0)
		return HSMPROTO_ERR_VALUE;
	if (h->length > HSMPROTO_MAX_BODY)
		return HSMPROTO_ERR_TOO_BIG;
	max_count = h->type == HSMPROTO_STATUS_REPLY ? HSMPROTO_MAX_ROLES : HSMPROTO_MAX_ITEMS;
	if (h->count > max_count)
		return HSMPROTO_ERR_TOO_BIG;
	return HSMPROTO_OK;
}

/* Checks the type, and the count where the type fixes it. */
static int expect(const struct hsmproto_header *h, const uint8_t *body, uint8_t type,
                  long count)
{
	if (h == NULL || (body == NULL && h->length > 0))
		return HSMPROTO_ERR_ARG;
	if (h->type != type)
		return HSMPROTO_ERR_TYPE;
	if (count >= 0 && h->count != (uint32_t)count)
		return HSMPROTO_ERR_LENGTH;
	return HSMPROTO_OK;
}

/* Ends a decode: a sticky error wins, then bytes left over are a lying length. */
static int rd_end(struct rd *r)
{
	if (r->err != 0)
		return r->err;
	return r->left != 0 ? HSMPROTO_ERR_LENGTH : HSMPROTO_OK;
}

int hsmproto_sign_req_encode(struct hsmproto_buf *b, uint32_t id,
                             const struct hsmproto_sign_req *reqs, size_t n)
{
	size_t start;

	if (b == NULL)
		return HSMPROTO_ERR_ARG;
	if (reqs == NULL || n == 0 || n > HSMPROTO_MAX_ITEMS) {
		wr_fail(b, HSMPROTO_ERR_ARG);
		return b->err;
	}
	start = frame_begin(b, HSMPROTO_SIGN, id, (uint32_t)n);
	for (size_t i = 0; i < n && b->err == 0; i++) {
		const struct hsmproto_sign_req *q = &reqs[i];

		if (q->kind < HSMPROTO_KIND_TBS_CERT || q->kind > HSMPROTO_KIND_CHECKPOINT ||
		    (q->format != HSMPROTO_FORMAT_RAW && q->format != HSMPROTO_FORMAT_DER) ||
		    q->len == 0 || q->len > HSMPROTO_MAX_DATA || q->data == NULL) {
			wr_fail(b, HSMPROTO_ERR_ARG);
			break;
		}
		wr_role(b, q->role);
		wr_u8(b, q->kind);
		wr_u8(b, q->format);
		wr_u32(b, (uint32_t)q->len);
		wr_bytes(b, q->data, q->len);
	}
	return frame_end(b, start);
}

int hsmproto_sign_req_decode(const struct hsmproto_header *h, const uint8_t *body,
                             struct hsmproto_sign_req **reqs)
{
	struct hsmproto_sign_req *q = NULL;
	struct rd r;
	int e;

	*reqs = NULL;
	e = expect(h, body, HSMPROTO_SIGN, -1);
	if (e != 0)
		return e;
	/* The smallest item is 8 bytes: check the count against the body before calloc. */
	if (h->count == 0 || h->count > h->length / 8)
		return HSMPROTO_ERR_LENGTH;
	q = calloc(h->count, sizeof(*q));
	if (q == NULL)
		return HSMPROTO_ERR_NOMEM;
	r = (struct rd){ body, h->length, 0 };
	for (uint32_t i = 0; i < h->count && r.err == 0; i++) {
		uint32_t len;

		rd_role(&r, q[i].role);
		q[i].kind = rd_u8(&r);
		q[i].format = rd_u8(&r);
		len = rd_u32(&r);
		if (r.err != 0)
			break;
		if (q[i].kind < HSMPROTO_KIND_TBS_CERT || q[i].kind > HSMPROTO_KIND_CHECKPOINT ||
		    (q[i].format != HSMPROTO_FORMAT_RAW && q[i].format != HSMPROTO_FORMAT_DER) ||
		    len == 0) {
			rd_fail(&r, HSMPROTO_ERR_VALUE);
			break;
		}
		if (len > HSMPROTO_MAX_DATA) {
			rd_fail(&r, HSMPROTO_ERR_TOO_BIG);
			break;
		}
		q[i].data = rd_take(&r, len);
		q[i].len = len;
	}
	e = rd_end(&r);
	if (e != 0) {
		free(q);
		return e;
	}
	*reqs = q;
	return HSMPROTO_OK;
}

static int reply_type_ok(uint8_t type)
{
	return type == HSMPROTO_SIGN_REPLY || type == HSMPROTO_PUBKEY_REPLY ||
	       type == HSMPROTO_RANDOM_REPLY || type == HSMPROTO_HELLO;
}

int hsmproto_results_encode(struct hsmproto_buf *b, uint8_t type, uint32_t id,
                            const struct hsmproto_result *res, size_t n)
{
	size_t start;

	if (b == NULL)
		return HSMPROTO_ERR_ARG;
	if (!reply_type_ok(type) || res == NULL || n == 0 || n > HSMPROTO_MAX_ITEMS ||
	    (type != HSMPROTO_SIGN_REPLY && n != 1)) {
		wr_fail(b, HSMPROTO_ERR_ARG);
		return b->err;
	}
	start = frame_begin(b, type, id, (uint32_t)n);
	for (size_t i = 0; i < n && b->err == 0; i++) {
		const struct hsmproto_result *x = &res[i];
		size_t rlen = strnlen(x->reason, sizeof(x->reason));
		int ok = x->status == HSMPROTO_ST_OK;

		if (x->status > HSMPROTO_ST_ERROR || rlen > HSMPROTO_MAX_REASON ||
		    x->value_len > HSMPROTO_MAX_VALUE || (x->value_len > 0 && x->value == NULL) ||
		    (!ok && x->value_len != 0)) {
			wr_fail(b, HSMPROTO_ERR_ARG);
			break;
		}
		wr_u8(b, x->status);
		/* A reason only travels with a failure; OK results carry none. */
		wr_u8(b, ok ? 0 : (uint8_t)rlen);
		if (!ok)
			wr_bytes(b, x->reason, rlen);
		wr_u16(b, (uint16_t)x->value_len);
		wr_bytes(b, x->value, x->value_len);
	}
	return frame_end(b, start);
}

int hsmproto_results_decode(const struct hsmproto_header *h, const uint8_t *body,
                            struct hsmproto_result **res)
{
	struct hsmproto_result *x = NULL;
	struct rd r;
	int e;

	*res = NULL;
	if (h == NULL || !reply_type_ok(h->type))
		return h == NULL ? HSMPROTO_ERR_ARG : HSMPROTO_ERR_TYPE;
	e = expect(h, body, h->type, h->type == HSMPROTO_SIGN_REPLY ? -1 : 1);
	if (e != 0)
		return e;
	/* The smallest result is 4 bytes. */
	if (h->count == 0 || h->count > h->length / 4)
		return HSMPROTO_ERR_LENGTH;
	x = calloc(h->count, sizeof(*x));
	if (x == NULL)
		return HSMPROTO_ERR_NOMEM;
	r = (struct rd){ body, h->length, 0 };
	for (uint32_t i = 0; i < h->count && r.err == 0; i++) {
		x[i].status = rd_u8(&r);
		rd_reason(&r, x[i].reason);
		x[i].value_len = rd_u16(&r);
		if (r.err != 0)
			break;
		if (x[i].status > HSMPROTO_ST_ERROR ||
		    (x[i].status != HSMPROTO_ST_OK && x[i].value_len != 0) ||
		    (x[i].status == HSMPROTO_ST_OK && x[i].reason[0] != '\0')) {
			rd_fail(&r, HSMPROTO_ERR_VALUE);
			break;
		}
		if (x[i].value_len > HSMPROTO_MAX_VALUE) {
			rd_fail(&r, HSMPROTO_ERR_TOO_BIG);
			break;
		}
		x[i].value = rd_take(&r, x[i].value_len);
		if (x[i].value_len == 0)
			x[i].value = NULL;
	}
	e = rd_end(&r);
	if (e != 0) {
		free(x);
		return e;
	}
	*res = x;
	return HSMPROTO_OK;
}

int hsmproto_pubkey_req_encode(struct hsmproto_buf *b, uint32_t id, const char *role)
{
	size_t start;

	if (b == NULL)
		return HSMPROTO_ERR_ARG;
	start = frame_begin(b, HSMPROTO_PUBKEY, id, 1);
	wr_role(b, role);
	return frame_end(b, start);
}

int hsmproto_pubkey_req_decode(const struct hsmproto_header *h, const uint8_t *body,
                               char role[HSMPROTO_MAX_ROLE + 1])
{
	struct rd r;
	int e;

	role[0] = '\0';
	e = expect(h, body, HSMPROTO_PUBKEY, 1);
	if (e != 0)
		return e;
	r = (struct rd){ body, h->length, 0 };
	rd_role(&r, role);
	e = rd_end(&r);
	if (e != 0)
		role[0] = '\0';
	return e;
}

int hsmproto_random_req_encode(struct hsmproto_buf *b, uint32_t id, uint32_t n)
{
	size_t start;

	if (b == NULL)
		return HSMPROTO_ERR_ARG;
	if (n == 0 || n > HSMPROTO_MAX_RANDOM) {
		wr_fail(b, HSMPROTO_ERR_ARG);
		return b->err;
	}
	start = frame_begin(b, HSMPROTO_RANDOM, id, 1);
	wr_u32(b, n);
	return frame_end(b, start);
}

int hsmproto_random_req_decode(const struct hsmproto_header *h, const uint8_t *body,
                               uint32_t *n)
{
	struct rd r;
	int e;

	*n = 0;
	e = expect(h, body, HSMPROTO_RANDOM, 1);
	if (e != 0)
		return e;
	r = (struct rd){ body, h->length, 0 };
	*n = rd_u32(&r);
	e = rd_end(&r);
	if (e == 0 && (*n == 0 || *n > HSMPROTO_MAX_RANDOM))
		e = *n == 0 ? HSMPROTO_ERR_VALUE : HSMPROTO_ERR_TOO_BIG;
	if (e != 0)
		*n = 0;
	return e;
}

int hsmproto_status_req_encode(struct hsmproto_buf *b, uint32_t id)
{
	size_t start;

	if (b == NULL)
		return HSMPROTO_ERR_ARG;
	start = frame_begin(b, HSMPROTO_STATUS, id, 0);
	return frame_end(b, start);
}

int hsmproto_status_req_decode(const struct hsmproto_header *h, const uint8_t *body)
{
	int e = expect(h, body, HSMPROTO_STATUS, 0);

	if (e != 0)
		return e;
	return h->length == 0 ? HSMPROTO_OK : HSMPROTO_ERR_LENGTH;
}

int hsmproto_status_encode(struct hsmproto_buf *b, uint32_t id, const struct hsmproto_status *st)
{
	size_t start;

	if (b == NULL)
		return HSMPROTO_ERR_ARG;
	if (st == NULL || st->n_roles > HSMPROTO_MAX_ROLES || st->state > HSMPROTO_STATE_DOWN ||
	    (st->n_roles > 0 && st->roles == NULL)) {
		wr_fail(b, HSMPROTO_ERR_ARG);
		return b->err;
	}
	start = frame_begin(b, HSMPROTO_STATUS_REPLY, id, (uint32_t)st->n_roles);
	wr_u8(b, st->state);
	wr_u64(b, st->recoveries);
	wr_u32(b, st->key_copies);
	wr_u64(b, st->key_copies_refused);
	wr_u64(b, st->sign_prepared);
	for (size_t i = 0; i < st->n_roles; i++) {
		wr_role(b, st->roles[i].role);
		wr_u64(b, st->roles[i].signatures);
		wr_u64(b, st->roles[i].refused);
		wr_bytes(b, st->roles[i].fingerprint, sizeof(st->roles[i].fingerprint));
	}
	return frame_end(b, start);
}

int hsmproto_status_decode(const struct hsmproto_header *h, const uint8_t *body,
                           struct hsmproto_status *st)
{
	struct rd r;
	int e;

	memset(st, 0, sizeof(*st));
	e = expect(h, body, HSMPROTO_STATUS_REPLY, -1);
	if (e != 0)
		return e;
	/* 29 bytes of state, recoveries, key copies and prepared signatures, then
	 * at least 50 bytes per role. */
	if (h->count > HSMPROTO_MAX_ROLES || h->length < 29 ||
	    h->count > (h->length - 29) / 50)
		return HSMPROTO_ERR_LENGTH;
	if (h->count > 0) {
		st->roles = calloc(h->count, sizeof(*st->roles));
		if (st->roles == NULL)
			return HSMPROTO_ERR_NOMEM;
	}
	st->n_roles = h->count;
	r = (struct rd){ body, h->length, 0 };
	st->state = rd_u8(&r);
	st->recoveries = rd_u64(&r);
	st->key_copies = rd_u32(&r);
	st->key_copies_refused = rd_u64(&r);
	st->sign_prepared = rd_u64(&r);
	if (r.err == 0 && st->state > HSMPROTO_STATE_DOWN)
		rd_fail(&r, HSMPROTO_ERR_VALUE);
	for (uint32_t i = 0; i < h->count && r.err == 0; i++) {
		const uint8_t *fp;

		rd_role(&r, st->roles[i].role);
		st->roles[i].signatures = rd_u64(&r);
		st->roles[i].refused = rd_u64(&r);
		fp = rd_take(&r, sizeof(st->roles[i].fingerprint));
		if (fp)
			memcpy(st->roles[i].fingerprint, fp, sizeof(st->roles[i].fingerprint));
	}
	e = rd_end(&r);
	if (e != 0)
		hsmproto_status_clear(st);
	return e;
}

void hsmproto_status_clear(struct hsmproto_status *st)
{
	if (st == NULL)
		return;
	free(st->roles);
	memset(st, 0, sizeof(*st));
}
