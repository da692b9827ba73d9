/*
 * ops_json.h - the end of a JSON reply (STATUS, ZONE_STATUS). The writer
 * itself (ops_json_put, _putf, _str, _kstr, _time) is declared in
 * signer/ops_ctx.h; both live in ops_info.c.
 */
#ifndef REGSIGN_OPS_JSON_H
#define REGSIGN_OPS_JSON_H

#include "signer/buf.h"
#include "signer/ops_ctx.h"

/**
 * Replies OK to @p r with the JSON document written to @p w as the reply of
 * operation @p op (PROTO_OP_*), or, when @p w overflowed its limit, with
 * PROTO_CODE_INTERNAL "<@p what> too large". Releases @p w either way.
 */
void ops_json_reply(struct ops_req *r, uint8_t op, struct buf_writer *w, const char *what);

#endif
