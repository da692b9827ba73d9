/*
 * ops_import.c - IMPORT: bulk import of device records for registries
 * migrating in. Scaffolding only: the operation is refused until its
 * handler lands.
 */
#include "signer/ops_ctx.h"

void
ops_import(struct ops_req *r)
{
	ops_req_refuse(r, PROTO_CODE_UNKNOWN_OP, "builtin.not-served",
		       "IMPORT is not served by this version of regsignd");
	ops_deny(r);
}
