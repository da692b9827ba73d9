/**
 * @file client.h
 * @brief libregsign-client: talk to regsignd's signing socket from a C
 * front end.
 *
 * This header is self-contained (only standard headers); link with
 * -lregsign-client (static or shared). The protocol itself is specified in
 * docs/PROTOCOL.md.
 *
 * Two ways to use a connection:
 *  - synchronous: regsign_client_issue() and friends (or the generic
 *    regsign_client_call()) send one request and wait for its reply;
 *  - pipelined: regsign_client_send() queues many requests (each gets an id),
 *    regsign_client_recv() returns replies as they arrive, in whatever order
 *    the server finishes them; match them by reply->id. Do not mix the two
 *    while pipelined requests are outstanding.
 *
 * Results. Every call that waits for a reply fills a struct regsign_reply
 * whose memory belongs to the caller: release it with regsign_reply_clear().
 * The return value says what happened:
 *  - REGSIGN_CLIENT_OK: the server answered OK; the reply's fields for the
 *    operation are set;
 *  - REGSIGN_CLIENT_ERR_REFUSED: the server answered ERROR; reply->code is
 *    the server's code (enum regsign_code) and reply->message its message;
 *  - any other negative value: a local failure (connection, timeout,
 *    malformed reply, bad argument); reply is left cleared and
 *    regsign_client_errmsg() describes it. After ERR_IO, ERR_TIMEOUT and
 *    ERR_PROTOCOL the connection is closed: make a new one.
 *
 * A regsign_client is not thread-safe; use one per thread. The library
 * never prints, never exits, and never raises SIGPIPE (writes use
 * MSG_NOSIGNAL).
 */
#ifndef REGSIGN_CLIENT_H
#define REGSIGN_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The protocol version this library speaks. */
#define REGSIGN_PROTOCOL_VERSION 1

/** Operations (the request type numbers of the protocol). */
enum regsign_op {
	REGSIGN_OP_HELLO = 1,
	REGSIGN_OP_ISSUE = 2,
	REGSIGN_OP_REVOKE = 3,
	REGSIGN_OP_REISSUE = 4,
	REGSIGN_OP_CRL = 5,
	REGSIGN_OP_CHAIN = 6,
	REGSIGN_OP_STATUS = 7,
	REGSIGN_OP_PUBLISH = 8,
	REGSIGN_OP_UNPUBLISH = 9,
	REGSIGN_OP_SIGN_RRSET = 10,
	REGSIGN_OP_ZONE_STATUS = 11,
	REGSIGN_OP_IMPORT = 12,
};

/** IMPORT: regsign_request::import_flags bit of the last chunk. */
#define REGSIGN_IMPORT_FINAL 1u

/** The server's error codes (docs/PROTOCOL.md, "Error codes"). */
enum regsign_code {
	REGSIGN_CODE_OK = 0, /**< not sent on the wire: the reply was OK */
	REGSIGN_CODE_BAD_FRAME = 1,
	REGSIGN_CODE_TOO_LARGE = 2,
	REGSIGN_CODE_UNKNOWN_OP = 3,
	REGSIGN_CODE_BAD_REQUEST = 4,
	REGSIGN_CODE_DENIED = 5,
	REGSIGN_CODE_NOT_FOUND = 6,
	REGSIGN_CODE_CONFLICT = 7,
	REGSIGN_CODE_RATE_LIMITED = 8,
	REGSIGN_CODE_BUSY = 9,
	REGSIGN_CODE_UNAVAILABLE = 10,
	REGSIGN_CODE_STORAGE = 11,
	REGSIGN_CODE_INTERNAL = 12,
	REGSIGN_CODE_VERSION = 13,
};

/** Return values of the library: 0 is success, errors are negative. */
enum regsign_client_err {
	REGSIGN_CLIENT_OK = 0,
	REGSIGN_CLIENT_ERR_REFUSED = -1,  /**< the server answered ERROR (see reply) */
	REGSIGN_CLIENT_ERR_CONNECT = -2,  /**< could not connect to the socket */
	REGSIGN_CLIENT_ERR_IO = -3,       /**< read/write failed or the server closed */
	REGSIGN_CLIENT_ERR_TIMEOUT = -4,  /**< no progress within the timeout */
	REGSIGN_CLIENT_ERR_PROTOCOL = -5, /**< the server sent something malformed */
	REGSIGN_CLIENT_ERR_INVALID = -6,  /**< bad argument (field too long, misuse) */
	REGSIGN_CLIENT_ERR_WINDOW = -7,   /**< too many pipelined requests outstanding */
	REGSIGN_CLIENT_ERR_NOMEM = -8,    /**< out of memory */
};

/** An owned byte string; data[len] is always 0 so text can be used as-is. */
struct regsign_blob {
	unsigned char *data;
	size_t len;
};

/**
 * A request for regsign_client_call() / regsign_client_send(). Set op and
 * the fields that op uses (zero the rest: `struct regsign_request req = {0}`).
 * All memory is borrowed for the duration of the call. A NULL string is sent
 * as an empty one.
 */
struct regsign_request {
	enum regsign_op op;
	/* HELLO */
	uint32_t min_version, max_version; /**< 0, 0 = this library's version */
	const char *client_name;
	/* ISSUE, REVOKE, REISSUE */
	const char *device_id;
	uint32_t index;      /**< ISSUE: 0 = 1; REVOKE: 0 = not given; REISSUE: the old index */
	const char *profile; /**< ISSUE, REISSUE: NULL/"" = the caller's first profile */
	const void *csr_der; /**< ISSUE, REISSUE: the CSR, DER */
	size_t csr_len;
	const char *serial_hex; /**< REVOKE: NULL/"" = not given */
	const char *reason;     /**< REVOKE: RFC 5280 reason name, e.g. "keyCompromise" */
	/* PUBLISH, UNPUBLISH */
	const char *owner;  /**< domain name, presentation format */
	const char *rrtype; /**< "TXT", "TLSA", ... */
	uint32_t ttl;       /**< PUBLISH: 0 = zone default; UNPUBLISH: ignored (sent as 0) */
	const char *rdata;  /**< presentation; UNPUBLISH: NULL/"" = the whole RRset */
	/* SIGN_RRSET */
	const char *zone;
	const void *rrset_wire; /**< uncompressed wire-format RRs of one RRset */
	size_t rrset_len;
	uint32_t inception, expiration; /**< seconds since the epoch (mod 2^32) */
	/* IMPORT (one chunk; records packed as docs/PROTOCOL.md "IMPORT" says,
	 * e.g. with regsign_import_record_append()) */
	uint32_t import_id;     /**< chosen by the client, != 0 */
	uint32_t import_seq;    /**< 1, 2, ... */
	uint32_t import_flags;  /**< REGSIGN_IMPORT_FINAL on the last chunk */
	uint32_t import_idle_timeout; /**< seconds; 0 = the server's default */
	const void *records;
	size_t records_len;
};

/**
 * A reply; every pointer is owned by the struct (release with
 * regsign_reply_clear()). Which fields are set depends on op.
 */
struct regsign_reply {
	uint32_t id;         /**< the request id (0: the server could not tell) */
	enum regsign_op op;  /**< the operation answered (0 for an id-0 error) */
	uint32_t code;       /**< REGSIGN_CODE_OK, or the server's error code */
	char *message;       /**< the server's error message; NULL on OK */
	/* HELLO */
	uint32_t version, max_frame;
	char *server_name;
	/* ISSUE, REISSUE */
	struct regsign_blob cert;   /**< the certificate, DER */
	uint32_t index;             /**< the index it was issued at */
	/* ISSUE, REISSUE, CHAIN */
	struct regsign_blob *chain; /**< chain_count DER certificates, issuer first */
	size_t chain_count;
	/* ISSUE, REISSUE, REVOKE */
	char *serial_hex;           /**< lowercase hex */
	/* ISSUE, REISSUE, REVOKE, PUBLISH, UNPUBLISH */
	uint32_t zone_serial;       /**< SOA serial that contains the change */
	/* REVOKE */
	uint64_t revoked_at;        /**< seconds since the epoch */
	/* CRL: DER; SIGN_RRSET: RRSIG RRs, wire; STATUS, ZONE_STATUS: JSON text */
	struct regsign_blob data;
	/* IMPORT (zone_serial too, on the final chunk) */
	uint32_t import_records;    /**< records of the import accepted so far */
};

typedef struct regsign_client regsign_client;

/** Returns a static description of a regsign_client_err value. */
const char *regsign_client_strerror(int err);

/** Returns "BAD_FRAME" etc. for a server code; "UNKNOWN" if unknown. */
const char *regsign_code_name(uint32_t code);

/** Returns 1 if a request refused with @p code may be retried as is later. */
int regsign_code_retryable(uint32_t code);

/** Frees everything a reply owns and zeroes it. NULL is a no-op. */
void regsign_reply_clear(struct regsign_reply *rep);

/**
 * Makes an unconnected client (timeout 30 s, window 1024). *out receives
 * it; free with regsign_client_free(). Returns OK or ERR_NOMEM.
 */
int regsign_client_new(regsign_client **out);

/** Closes the connection and frees the client. NULL is a no-op. */
void regsign_client_free(regsign_client *c);

/**
 * Sets how long one call may wait without progress, in milliseconds;
 * <= 0 waits forever.
 */
void regsign_client_set_timeout(regsign_client *c, int timeout_ms);

/**
 * Sets the most pipelined requests that may be outstanding at once
 * (1..65536; rounded up to a power of two). Only before connecting.
 * Returns OK or ERR_INVALID.
 */
int regsign_client_set_window(regsign_client *c, uint32_t window);

/**
 * Connects to the Unix stream socket at @p path. Returns OK,
 * ERR_CONNECT (errmsg says why), ERR_INVALID (path too long, already
 * connected) or ERR_NOMEM.
 */
int regsign_client_connect(regsign_client *c, const char *path);

/** Returns a description of the last local failure ("" if none). */
const char *regsign_client_errmsg(const regsign_client *c);

/** Returns the socket descriptor (-1 if not connected), e.g. for poll(). */
int regsign_client_fd(const regsign_client *c);

/* ---- synchronous calls ---- */

/** Sends @p req and waits for its reply (see the file comment for results). */
int regsign_client_call(regsign_client *c, const struct regsign_request *req,
			struct regsign_reply *rep);

/** HELLO: negotiates version 1; reply: version, max_frame, server_name. */
int regsign_client_hello(regsign_client *c, const char *client_name, struct regsign_reply *rep);

/** ISSUE; reply: cert, chain, serial_hex, zone_serial, index. */
int regsign_client_issue(regsign_client *c, const char *device_id, uint32_t index,
			 const char *profile, const void *csr_der, size_t csr_len,
			 struct regsign_reply *rep);

/** REVOKE by index or serial (or both); reply: serial_hex, revoked_at, zone_serial. */
int regsign_client_revoke(regsign_client *c, const char *device_id, uint32_t index,
			  const char *serial_hex, const char *reason, struct regsign_reply *rep);

/** REISSUE; reply as for ISSUE, index = the new index. */
int regsign_client_reissue(regsign_client *c, const char *device_id, uint32_t old_index,
			   const char *profile, const void *csr_der, size_t csr_len,
			   struct regsign_reply *rep);

/** CRL; reply: data = the CRL, DER. */
int regsign_client_crl(regsign_client *c, struct regsign_reply *rep);

/** CHAIN; reply: chain. */
int regsign_client_chain(regsign_client *c, struct regsign_reply *rep);

/** STATUS; reply: data = JSON. */
int regsign_client_status(regsign_client *c, struct regsign_reply *rep);

/** ZONE_STATUS; reply: data = JSON. */
int regsign_client_zone_status(regsign_client *c, struct regsign_reply *rep);

/** PUBLISH one RR; reply: zone_serial. */
int regsign_client_publish(regsign_client *c, const char *owner, const char *rrtype,
			   uint32_t ttl, const char *rdata, struct regsign_reply *rep);

/** UNPUBLISH one RR (rdata) or a whole RRset (rdata NULL); reply: zone_serial. */
int regsign_client_unpublish(regsign_client *c, const char *owner, const char *rrtype,
			     const char *rdata, struct regsign_reply *rep);

/** SIGN_RRSET; reply: data = RRSIG RR(s), wire format. */
int regsign_client_sign_rrset(regsign_client *c, const char *zone, const void *rrset_wire,
			      size_t rrset_len, uint32_t inception, uint32_t expiration,
			      struct regsign_reply *rep);

/* ---- pipelined mode ---- */

/**
 * Sends one IMPORT chunk and waits for its reply (rep->import_records; on
 * the final chunk rep->zone_serial). @p records is a buffer of records made
 * with regsign_import_record_append().
 */
int regsign_client_import(regsign_client *c, uint32_t import_id, uint32_t seq, uint32_t flags,
			  uint32_t idle_timeout, const void *records, size_t records_len,
			  struct regsign_reply *rep);

/**
 * Appends one IMPORT record to the growable buffer *@p buf (*@p len bytes
 * used, *@p cap allocated; start with NULL, 0, 0; free() it when done).
 * @p cert_sha256 and @p spki_sha256 are 32 bytes or NULL; @p cert_der may be
 * NULL. Returns OK, ERR_INVALID (a field above its maximum, a NUL in the
 * device id) or ERR_NOMEM; on error the buffer is as it was.
 */
int regsign_import_record_append(unsigned char **buf, size_t *len, size_t *cap,
				 const char *device_id, uint32_t index,
				 const unsigned char *cert_sha256, const unsigned char *spki_sha256,
				 const void *cert_der, size_t cert_len);

/**
 * Queues @p req and gives it an id (*id, may be NULL). Queued bytes are
 * written once they pass 64 KiB, by regsign_client_flush() or by
 * regsign_client_recv(). Returns OK, ERR_WINDOW (wait for replies first),
 * ERR_INVALID, ERR_NOMEM, or an I/O error from an automatic flush.
 */
int regsign_client_send(regsign_client *c, const struct regsign_request *req, uint32_t *id);

/**
 * Writes everything queued. Replies that arrive meanwhile are read and kept,
 * so a server that stops reading until its replies are read cannot deadlock
 * the client.
 */
int regsign_client_flush(regsign_client *c);

/**
 * Flushes, then returns the next reply, whichever request it answers.
 * Returns OK / ERR_REFUSED as for a synchronous call, or ERR_INVALID when
 * nothing is outstanding.
 */
int regsign_client_recv(regsign_client *c, struct regsign_reply *rep);

/**
 * Takes a reply that has already been received, without writing, reading or
 * waiting (no system call): a pipelining caller takes every such reply
 * before it queues new requests, so that a batch of replies costs one write
 * of new requests rather than one each. Returns 1 with *@p res set as
 * regsign_client_recv() would return it (OK, ERR_REFUSED, ERR_NOMEM) and
 * *@p rep filled; 0 when no whole reply is buffered; or a negative error
 * (ERR_PROTOCOL: the connection is closed).
 */
int regsign_client_take(regsign_client *c, struct regsign_reply *rep, int *res);

/** Returns how many sent requests await a reply. */
uint32_t regsign_client_outstanding(const regsign_client *c);

#ifdef __cplusplus
}
#endif

#endif
