/*
 * Bounded reader and growable writer. See buf.h.
 */
#include "signer/buf.h"

#include <stdlib.h>
#include <string.h>

const char *buf_strerror(int err)
{
	switch (err) {
	case BUF_OK:
		return "success";
	case BUF_ERR_SHORT:
		return "input ends before the field does";
	case BUF_ERR_TOO_LONG:
		return "string longer than its maximum";
	case BUF_ERR_TRAILING:
		return "unexpected bytes after the last field";
	case BUF_ERR_LIMIT:
		return "output would exceed its maximum size";
	case BUF_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown buf error";
}

void buf_reader_init(struct buf_reader *r, const void *data, size_t len)
{
	r->data = data;
	r->len = data != NULL ? len : 0;
	r->off = 0;
	r->err = BUF_OK;
}

int buf_reader_error(const struct buf_reader *r)
{
	return r->err;
}

size_t buf_reader_remaining(const struct buf_reader *r)
{
	return r->err != BUF_OK ? 0 : r->len - r->off;
}

/*
 * Every get goes through this check: it both refuses to read past the end
 * and makes the first failure sticky, so later gets cannot succeed on a
 * misaligned position.
 */
static int reader_take(struct buf_reader *r, size_t n, const uint8_t **p)
{
	*p = NULL;
	if (r->err != BUF_OK)
		return r->err;
	if (n > r->len - r->off) {
		r->err = BUF_ERR_SHORT;
		return r->err;
	}
	*p = r->data + r->off;
	r->off += n;
	return BUF_OK;
}

int buf_reader_get_u8(struct buf_reader *r, uint8_t *v)
{
	const uint8_t *p;
	int e = reader_take(r, 1, &p);

	*v = e == BUF_OK ? p[0] : 0;
	return e;
}

int buf_reader_get_u32(struct buf_reader *r, uint32_t *v)
{
	const uint8_t *p;
	int e = reader_take(r, 4, &p);

	*v = 0;
	if (e == BUF_OK)
		*v = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	return e;
}

int buf_reader_get_u64(struct buf_reader *r, uint64_t *v)
{
	const uint8_t *p;
	int e = reader_take(r, 8, &p);

	*v = 0;
	if (e == BUF_OK) {
		for (int i = 0; i < 8; i++)
			*v = *v << 8 | p[i];
	}
	return e;
}

int buf_reader_get_bytes(struct buf_reader *r, size_t n, const uint8_t **ptr)
{
	return reader_take(r, n, ptr);
}

int buf_reader_get_string(struct buf_reader *r, size_t max, const uint8_t **ptr,
			  size_t *len)
{
	uint32_t n;
	int e;

	*ptr = NULL;
	*len = 0;
	e = buf_reader_get_u32(r, &n);
	if (e != BUF_OK)
		return e;
	/* The maximum is checked before the remaining length so that a
	 * hostile length is reported as what it is, whatever follows. */
	if (n > max) {
		r->err = BUF_ERR_TOO_LONG;
		return r->err;
	}
	e = reader_take(r, n, ptr);
	if (e == BUF_OK)
		*len = n;
	return e;
}

int buf_reader_end(struct buf_reader *r)
{
	if (r->err == BUF_OK && r->off != r->len)
		r->err = BUF_ERR_TRAILING;
	return r->err;
}

void buf_writer_init(struct buf_writer *w, size_t max)
{
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
	w->max = max;
	w->err = BUF_OK;
}

void buf_writer_release(struct buf_writer *w)
{
	free(w->data);
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
	w->err = BUF_OK;
}

void buf_writer_reset(struct buf_writer *w)
{
	w->len = 0;
	w->err = BUF_OK;
}

void buf_writer_truncate(struct buf_writer *w, size_t len)
{
	if (len < w->len)
		w->len = len;
}

int buf_writer_error(const struct buf_writer *w)
{
	return w->err;
}

const uint8_t *buf_writer_data(const struct buf_writer *w)
{
	return w->data;
}

size_t buf_writer_len(const struct buf_writer *w)
{
	return w->len;
}

/* Makes room for n more bytes, doubling so that appends stay amortised O(1). */
static int writer_grow(struct buf_writer *w, size_t n)
{
	size_t need, cap;
	uint8_t *p;

	if (w->err != BUF_OK)
		return w->err;
	if (n > w->max || w->len > w->max - n) {
		w->err = BUF_ERR_LIMIT;
		return w->err;
	}
	need = w->len + n;
	if (need <= w->cap)
		return BUF_OK;
	cap = w->cap != 0 ? w->cap : 256;
	while (cap < need)
		cap = cap > SIZE_MAX / 2 ? need : cap * 2;
	if (cap > w->max)
		cap = w->max;
	p = realloc(w->data, cap);
	if (p == NULL) {
		w->err = BUF_ERR_NOMEM;
		return w->err;
	}
	w->data = p;
	w->cap = cap;
	return BUF_OK;
}

int buf_writer_put_bytes(struct buf_writer *w, const void *p, size_t n)
{
	int e = writer_grow(w, n);

	if (e != BUF_OK)
		return e;
	if (n != 0)
		memcpy(w->data + w->len, p, n);
	w->len += n;
	return BUF_OK;
}

int buf_writer_put_u8(struct buf_writer *w, uint8_t v)
{
	return buf_writer_put_bytes(w, &v, 1);
}

static void store_u32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

int buf_writer_put_u32(struct buf_writer *w, uint32_t v)
{
	uint8_t b[4];

	store_u32(b, v);
	return buf_writer_put_bytes(w, b, sizeof(b));
}

int buf_writer_put_u64(struct buf_writer *w, uint64_t v)
{
	uint8_t b[8];

	for (int i = 7; i >= 0; i--) {
		b[i] = (uint8_t)v;
		v >>= 8;
	}
	return buf_writer_put_bytes(w, b, sizeof(b));
}

int buf_writer_put_string(struct buf_writer *w, const void *p, size_t n)
{
	int e;

	if (w->err != BUF_OK)
		return w->err;
	if (n > UINT32_MAX) {
		w->err = BUF_ERR_LIMIT;
		return w->err;
	}
	e = buf_writer_put_u32(w, (uint32_t)n);
	if (e == BUF_OK)
		e = buf_writer_put_bytes(w, p, n);
	return e;
}

int buf_writer_patch_u32(struct buf_writer *w, size_t off, uint32_t v)
{
	if (w->err != BUF_OK)
		return w->err;
	if (off > w->len || w->len - off < 4)
		return BUF_ERR_SHORT;
	store_u32(w->data + off, v);
	return BUF_OK;
}

int buf_writer_take(struct buf_writer *w, uint8_t **out, size_t *len)
{
	*out = NULL;
	*len = 0;
	if (w->err != BUF_OK)
		return w->err;
	*out = w->data;
	*len = w->len;
	w->data = NULL;
	w->len = 0;
	w->cap = 0;
	return BUF_OK;
}
