/*
 * ceremony_transcript: the human-readable record of a key ceremony.
 *
 * The transcript is a plain text file that witnesses read and sign, and that
 * auditors later compare with the token and the published outputs. Its format
 * (format 1):
 *
 *   regsign key ceremony transcript
 *   format: 1
 *   <header fields, "key: value", one per line>
 *
 *   step 1: <what>
 *     time: 2025-01-31T12:00:00Z
 *     <fields, two spaces, "key: value">
 *
 *   step 2: ...
 *
 *   finished: <time>
 *   result: complete            (or "result: FAILED: <reason>")
 *
 * Keys are lower-case words joined by '-'; binary values are lower-case hex.
 * The file is created exclusively (an existing transcript is never
 * overwritten) and every step is flushed and fsync'ed as soon as it is
 * written, so that a ceremony that stops half-way still leaves the record of
 * what it made.
 */
#ifndef REGSIGN_HSM_SETUP_CEREMONY_TRANSCRIPT_H
#define REGSIGN_HSM_SETUP_CEREMONY_TRANSCRIPT_H

#include <stddef.h>
#include <time.h>

typedef struct ceremony_transcript ceremony_transcript_t;

/**
 * Creates the transcript file @p path (O_EXCL, mode 0644) and writes its
 * first two lines. @p out receives the handle, freed by
 * ceremony_transcript_close().
 * @return 0, or -errno (-EEXIST if the file exists).
 */
int ceremony_transcript_open(const char *path, ceremony_transcript_t **out);

/** Writes a header field "key: value" (before the first step). */
int ceremony_transcript_header(ceremony_transcript_t *t, const char *key,
                               const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * Starts step number n+1 ("step N: <what>") and writes its time.
 * Also flushes and syncs the previous step.
 * @return 0, or -errno.
 */
int ceremony_transcript_step(ceremony_transcript_t *t, time_t now,
                             const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Writes a field "  key: value" of the current step. @return 0 or -errno. */
int ceremony_transcript_field(ceremony_transcript_t *t, const char *key,
                              const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/** Writes a field whose value is @p len bytes in lower-case hex. */
int ceremony_transcript_hex(ceremony_transcript_t *t, const char *key,
                            const unsigned char *bytes, size_t len);

/**
 * Writes @p len bytes as lower-case hex into @p buf (@p buflen bytes, NUL
 * included); output that does not fit is cut short. Returns @p buf.
 */
char *ceremony_hex(const unsigned char *bytes, size_t len, char *buf,
                   size_t buflen);

/** Flushes what was written so far to disk. @return 0 or -errno. */
int ceremony_transcript_sync(ceremony_transcript_t *t);

/**
 * Writes the closing lines ("finished:" and "result:"; @p failure NULL for a
 * complete ceremony, else the reason), syncs and closes the file, and frees
 * the handle. NULL is a no-op returning 0.
 * @return 0, or -errno if a write or the sync failed (the handle is freed
 *         in every case).
 */
int ceremony_transcript_close(ceremony_transcript_t *t, time_t now,
                              const char *failure);

/** Formats @p when as "YYYY-MM-DDTHH:MM:SSZ" (buf of at least 21 bytes). */
void ceremony_time_format(time_t when, char *buf, size_t len);

#endif /* REGSIGN_HSM_SETUP_CEREMONY_TRANSCRIPT_H */
