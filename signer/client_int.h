/*
 * client_int.h - what client.c (connection, window, framing) and
 * client_msg.c (the messages) of libregsign-client share. Not installed;
 * not exported from the shared library.
 */
#ifndef REGSIGN_CLIENT_INT_H
#define REGSIGN_CLIENT_INT_H

#include <stdint.h>

#include "signer/client.h"
#include "signer/proto.h"

/* Builds the codec's request @p q with id @p id from the public @p in; @p q
 * borrows @p in's memory. */
void client__request_build(const struct regsign_request *in, uint32_t id,
			   struct proto_request *q);

/* Copies the decoded reply @p p into @p rep's caller-owned memory (freed by
 * regsign_reply_clear). Returns 0, or -1 when out of memory (then @p rep
 * holds what was copied so far). */
int client__reply_copy(const struct proto_reply *p, struct regsign_reply *rep);

#endif
