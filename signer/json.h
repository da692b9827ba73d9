/**
 * @file json.h
 * @brief JSON strings (RFC 8259 section 7) as regsignd's JSON replies
 * (STATUS, ZONE_STATUS: ops_json.h) and the regsign CLI's JSON output write
 * them; one escaper for both, in libregsign-proto, which both link.
 *
 * The escaping is the minimal one the RFC requires: '"' and '\\' take a
 * backslash, every other byte below 0x20 becomes \\u00xx (lower-case hex),
 * and every other byte, UTF-8 included, is copied as it is. (The audit log
 * has its own writer, audit_record.c, whose short escapes its parser
 * depends on.)
 */
#ifndef REGSIGN_SIGNER_JSON_H
#define REGSIGN_SIGNER_JSON_H

#include <stddef.h>
#include <stdio.h>

/** Takes @p n bytes of output at @p p; the escaper does not look at errors. */
typedef void (*json_put_fn)(void *ctx, const void *p, size_t n);

/**
 * @brief Write the NUL-terminated @p s as a JSON string, quotes included,
 * through @p put: runs of bytes that need no escape in one call each.
 */
void json_string_write(const char *s, json_put_fn put, void *ctx);

/**
 * @brief json_string_write() to the stream @p f; a write error shows in
 * ferror(@p f).
 */
void json_string_fput(const char *s, FILE *f);

#endif
