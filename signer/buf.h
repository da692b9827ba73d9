/**
 * @file buf.h
 * @brief Bounded byte reader with a sticky error, and a growable byte writer.
 *
 * Every byte that reaches regsign from outside (socket frames, files) is read
 * through a buf_reader: each accessor checks the remaining length first, and
 * the first failure is remembered so that a parser can do a run of gets and
 * test the error once at the end. After a failure every later get fails with
 * the same error and leaves its output untouched (zeroed).
 *
 * The writer appends big-endian integers and length-prefixed strings to a
 * heap buffer that grows up to a fixed maximum; it also has a sticky error.
 *
 * Both are plain structs rather than opaque handles: a reader is made on the
 * stack for each frame and must cost nothing, and a writer is usually
 * embedded in a longer-lived object. Their fields are private to buf.c.
 */
#ifndef REGSIGN_SIGNER_BUF_H
#define REGSIGN_SIGNER_BUF_H

#include <stddef.h>
#include <stdint.h>

/** Errors of the buf module: 0 is success, every error is negative. */
enum buf_err {
	BUF_OK = 0,
	BUF_ERR_SHORT = -1,    /**< fewer bytes remain than the field needs */
	BUF_ERR_TOO_LONG = -2, /**< a string's length exceeds the caller's maximum */
	BUF_ERR_TRAILING = -3, /**< bytes remain where the input should end */
	BUF_ERR_LIMIT = -4,    /**< the writer would grow past its maximum */
	BUF_ERR_NOMEM = -5,    /**< memory allocation failed */
};

/** Returns a static English description of a buf_err value. */
const char *buf_strerror(int err);

/** A bounded reader over borrowed memory; see buf_reader_init(). */
struct buf_reader {
	const uint8_t *data; /* borrowed, never freed by the reader */
	size_t len;
	size_t off;
	int err; /* sticky: the first error, or BUF_OK */
};

/**
 * Starts reading @p len bytes at @p data. The reader borrows the memory: it
 * must stay valid and unchanged for as long as the reader, or any pointer it
 * handed out, is used.
 */
void buf_reader_init(struct buf_reader *r, const void *data, size_t len);

/** Returns the sticky error (BUF_OK while every get has succeeded). */
int buf_reader_error(const struct buf_reader *r);

/** Returns how many bytes remain unread (0 once an error is set). */
size_t buf_reader_remaining(const struct buf_reader *r);

/** Reads one byte. On error *v = 0 and the error becomes sticky. */
int buf_reader_get_u8(struct buf_reader *r, uint8_t *v);

/** Reads a big-endian uint32. On error *v = 0. */
int buf_reader_get_u32(struct buf_reader *r, uint32_t *v);

/** Reads a big-endian uint64. On error *v = 0. */
int buf_reader_get_u64(struct buf_reader *r, uint64_t *v);

/**
 * Takes exactly @p n bytes without copying: *ptr points into the reader's
 * memory. On error *ptr = NULL.
 */
int buf_reader_get_bytes(struct buf_reader *r, size_t n, const uint8_t **ptr);

/**
 * Reads a string encoded as a big-endian uint32 length and that many bytes.
 * A length above @p max fails with BUF_ERR_TOO_LONG before anything is
 * touched; a length above what remains fails with BUF_ERR_SHORT. On success
 * *ptr points into the reader's memory (not NUL-terminated; may be non-NULL
 * with *len == 0); on error *ptr = NULL and *len = 0.
 */
int buf_reader_get_string(struct buf_reader *r, size_t max, const uint8_t **ptr,
			  size_t *len);

/**
 * Checks that the input is fully consumed: returns the sticky error if one
 * is set, BUF_ERR_TRAILING (and makes it sticky) if bytes remain, else BUF_OK.
 */
int buf_reader_end(struct buf_reader *r);

/** A growable writer; see buf_writer_init(). */
struct buf_writer {
	uint8_t *data; /* owned heap memory, NULL until the first put */
	size_t len;
	size_t cap;
	size_t max;
	int err; /* sticky */
};

/**
 * Starts an empty writer that refuses to hold more than @p max bytes.
 * Allocates nothing; release with buf_writer_release().
 */
void buf_writer_init(struct buf_writer *w, size_t max);

/** Frees the writer's memory; the writer is then empty and can be reused. */
void buf_writer_release(struct buf_writer *w);

/** Empties the writer and clears its error, keeping its memory for reuse. */
void buf_writer_reset(struct buf_writer *w);

/**
 * Cuts what was written back to @p len bytes (no-op if len is not smaller),
 * for example to drop a half-written record. The sticky error is kept.
 */
void buf_writer_truncate(struct buf_writer *w, size_t len);

/** Returns the sticky error (BUF_OK while every put has succeeded). */
int buf_writer_error(const struct buf_writer *w);

/** Returns the bytes written so far (owned by the writer; NULL if none). */
const uint8_t *buf_writer_data(const struct buf_writer *w);

/** Returns how many bytes have been written. */
size_t buf_writer_len(const struct buf_writer *w);

/** Appends one byte. */
int buf_writer_put_u8(struct buf_writer *w, uint8_t v);

/** Appends a big-endian uint32. */
int buf_writer_put_u32(struct buf_writer *w, uint32_t v);

/** Appends a big-endian uint64. */
int buf_writer_put_u64(struct buf_writer *w, uint64_t v);

/** Appends @p n raw bytes (@p p may be NULL when n == 0). */
int buf_writer_put_bytes(struct buf_writer *w, const void *p, size_t n);

/** Appends a uint32 length and @p n bytes; fails if n does not fit 32 bits. */
int buf_writer_put_string(struct buf_writer *w, const void *p, size_t n);

/**
 * Overwrites the big-endian uint32 at offset @p off (written earlier, for
 * example as a length placeholder). Fails with BUF_ERR_SHORT if it is not
 * wholly inside what was written.
 */
int buf_writer_patch_u32(struct buf_writer *w, size_t off, uint32_t v);

/**
 * Hands the written bytes over to the caller: *out receives the heap buffer
 * (free with free()), *len its length; the writer is left empty. Fails with
 * the sticky error, if any, and then hands nothing over.
 */
int buf_writer_take(struct buf_writer *w, uint8_t **out, size_t *len);

#endif
