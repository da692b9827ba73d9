/*
 * ops_json.h - the JSON replies of STATUS and ZONE_STATUS: a small writer
 * (strings escaped by json.h, as the CLI escapes them) and the reply's end.
 * All of it lives in ops_info.c.
 */
#ifndef REGSIGN_OPS_JSON_H
#define REGSIGN_OPS_JSON_H

#include "signer/buf.h"
#include "signer/ops_ctx.h"

void ops_json_put(struct buf_writer *w, const char *s);
void ops_json_putf(struct buf_writer *w, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
void ops_json_str(struct buf_writer *w, const char *s);
/** "key":"val" and a comma when @p comma. */
void ops_json_kstr(struct buf_writer *w, const char *key, const char *val, int comma);
/** "key":"YYYY-MM-DDThh:mm:ssZ", with a comma. */
void ops_json_time(struct buf_writer *w, const char *key, int64_t t);

/**
 * Replies OK to @p r with the JSON document written to @p w as the reply of
 * operation @p op (PROTO_OP_*), or, when @p w overflowed its limit, with
 * PROTO_CODE_INTERNAL "<@p what> too large". Releases @p w either way.
 */
void ops_json_reply(struct ops_req *r, uint8_t op, struct buf_writer *w, const char *what);

#endif
