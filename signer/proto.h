/**
 * @file proto.h
 * @brief Codec of the signing-socket protocol (docs/PROTOCOL.md), shared by
 * regsignd and libregsign-client.
 *
 * A frame is `uint32 length | uint8 type | uint32 id | fields`, big-endian,
 * where length counts every byte after itself. This module turns frames into
 * structs and back; it does no I/O and keeps no state.
 *
 * Decoding is zero-copy: every struct proto_bytes in a decoded request or
 * reply points into the frame buffer that was decoded, so the frame must
 * outlive the struct (and must not be modified while it is used). Decoded
 * text fields are guaranteed to be valid UTF-8 without NUL bytes, so a
 * handler can copy them into C strings safely (proto_bytes_strdup()); they
 * are not NUL-terminated in place.
 *
 * A decoder checks syntax only: frame length bounds (before anything is
 * allocated), every inner length against both what remains and the field's
 * documented maximum, no trailing bytes, known types, text well formed.
 * Meaning (device id syntax, CSR validity, policy) is the daemon's business.
 */
#ifndef REGSIGN_SIGNER_PROTO_H
#define REGSIGN_SIGNER_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include "signer/buf.h"

/** The protocol version this code speaks (HELLO negotiates it). */
#define PROTO_VERSION 1

/** Size of the length prefix. */
#define PROTO_LEN_SIZE 4
/** Size of the fixed header: length, type, request id. */
#define PROTO_HEADER_SIZE 9
/** Smallest legal value of the length field (type + id, no fields). */
#define PROTO_BODY_MIN 5

/**
 * Hard maximum of a request's length field. The server checks it on the
 * first four bytes of a frame, before allocating; regsignd's configured
 * socket.max-frame may only lower it.
 */
#define PROTO_REQUEST_MAX (256u * 1024u)
/**
 * Hard maximum of a reply's length field, checked by clients before they
 * allocate. Larger than PROTO_REQUEST_MAX because a CRL grows with the
 * number of revocations.
 */
#define PROTO_REPLY_MAX (16u * 1024u * 1024u)

/* Per-field maxima in bytes (the decoder refuses anything longer). */
#define PROTO_MAX_NAME 64        /**< HELLO client / server name */
#define PROTO_MAX_DEVICE_ID 64   /**< device_id */
#define PROTO_MAX_PROFILE 64     /**< profile */
#define PROTO_MAX_SERIAL_HEX 40  /**< serial_hex (20 octets, RFC 5280) */
#define PROTO_MAX_REASON 32      /**< revocation reason keyword */
#define PROTO_MAX_DER 16384      /**< csr_der, cert_der, each chain entry */
#define PROTO_MAX_CHAIN 8        /**< certificates in a chain */
#define PROTO_MAX_DNAME 1024     /**< owner, zone (presentation format) */
#define PROTO_MAX_RRTYPE 16      /**< RR type mnemonic */
#define PROTO_MAX_RDATA 131072   /**< rdata (presentation format) */
#define PROTO_MAX_MESSAGE 1024   /**< ERROR message */
#define PROTO_MAX_IMPORT_TIMEOUT 3600 /**< IMPORT idle_timeout, seconds */
/* rrset_wire, rrsig_wire, crl_der and JSON documents are bounded by the frame. */

/** Request types, and the two reply types. */
enum proto_op {
	PROTO_OP_HELLO = 1,
	PROTO_OP_ISSUE = 2,
	PROTO_OP_REVOKE = 3,
	PROTO_OP_REISSUE = 4,
	PROTO_OP_CRL = 5,
	PROTO_OP_CHAIN = 6,
	PROTO_OP_STATUS = 7,
	PROTO_OP_PUBLISH = 8,
	PROTO_OP_UNPUBLISH = 9,
	PROTO_OP_SIGN_RRSET = 10,
	PROTO_OP_ZONE_STATUS = 11,
	PROTO_OP_IMPORT = 12,
	PROTO_OP_MAX = 12, /**< highest request type */

	PROTO_REPLY_OK = 0x80,
	PROTO_REPLY_ERROR = 0x81,
};

/**
 * Error codes carried on the wire in ERROR replies (positive numbers; see
 * docs/PROTOCOL.md for meaning and retry advice).
 */
enum proto_code {
	PROTO_CODE_BAD_FRAME = 1,
	PROTO_CODE_TOO_LARGE = 2,
	PROTO_CODE_UNKNOWN_OP = 3,
	PROTO_CODE_BAD_REQUEST = 4,
	PROTO_CODE_DENIED = 5,
	PROTO_CODE_NOT_FOUND = 6,
	PROTO_CODE_CONFLICT = 7,
	PROTO_CODE_RATE_LIMITED = 8,
	PROTO_CODE_BUSY = 9,
	PROTO_CODE_UNAVAILABLE = 10,
	PROTO_CODE_STORAGE = 11,
	PROTO_CODE_INTERNAL = 12,
	PROTO_CODE_VERSION = 13,
	PROTO_CODE_MAX = 13,
};

/** Errors of this library (never sent on the wire; see proto_err_code()). */
enum proto_err {
	PROTO_OK = 0,
	PROTO_ERR_SHORT = -1,        /**< fewer bytes than a length prefix: read more */
	PROTO_ERR_TOO_LARGE = -2,    /**< length field above the maximum */
	PROTO_ERR_BAD_FRAME = -3,    /**< malformed: bad length, truncated or lying field, trailing bytes */
	PROTO_ERR_UNKNOWN_TYPE = -4, /**< type (or OK's op) is not one this version knows */
	PROTO_ERR_FIELD_LIMIT = -5,  /**< a field is longer than its documented maximum */
	PROTO_ERR_BAD_TEXT = -6,     /**< a text field is not UTF-8 or holds a NUL byte */
	PROTO_ERR_INVALID = -7,      /**< encoder given something it must not send */
	PROTO_ERR_NOMEM = -8,        /**< allocation failed (or the writer's own maximum) */
};

/** A borrowed byte string; ptr may be NULL when len == 0. */
struct proto_bytes {
	const uint8_t *ptr;
	size_t len;
};

/** The fixed header of a frame. */
struct proto_header {
	uint32_t length; /**< bytes after the length field */
	uint8_t type;
	uint32_t id;
};

/* ---- requests ---- */

struct proto_hello {
	uint32_t min_version;
	uint32_t max_version;
	struct proto_bytes client; /**< text: free-form client name */
};

struct proto_issue {
	struct proto_bytes device_id; /**< text */
	uint32_t index;               /**< 0 means 1 */
	struct proto_bytes profile;   /**< text; empty = the caller's first profile */
	struct proto_bytes csr_der;
};

struct proto_revoke {
	struct proto_bytes device_id;  /**< text */
	uint32_t index;                /**< 0 = not given */
	struct proto_bytes serial_hex; /**< text; empty = not given */
	struct proto_bytes reason;     /**< text: RFC 5280 CRLReason name */
};

struct proto_reissue {
	struct proto_bytes device_id; /**< text */
	uint32_t old_index;
	struct proto_bytes profile;   /**< text */
	struct proto_bytes csr_der;
};

/** PUBLISH and UNPUBLISH. */
struct proto_rr_change {
	struct proto_bytes owner;  /**< text: domain name, presentation */
	struct proto_bytes rrtype; /**< text: mnemonic such as "TXT" or "TYPE65280" */
	uint32_t ttl;              /**< PUBLISH: 0 = zone default; UNPUBLISH: must be 0 */
	struct proto_bytes rdata;  /**< text: presentation; UNPUBLISH: empty = whole RRset */
};

struct proto_sign_rrset {
	struct proto_bytes zone;       /**< text: zone apex, presentation */
	struct proto_bytes rrset_wire; /**< RRs in uncompressed wire format */
	uint32_t inception;            /**< RRSIG times, seconds since the epoch mod 2^32 */
	uint32_t expiration;
};

/** IMPORT flags. */
#define PROTO_IMPORT_FINAL 1u /**< the last chunk: commit the import */

/**
 * IMPORT: one chunk of a bulk import (docs/PROTOCOL.md, "IMPORT"). The
 * records are packed back to back in @c records; read them with
 * proto_import_iter_next(), write them with proto_import_record_encode().
 */
struct proto_import {
	uint32_t import_id;         /**< chosen by the client; never 0 */
	uint32_t seq;               /**< chunk number: 1, 2, 3, ... */
	uint32_t flags;             /**< PROTO_IMPORT_FINAL on the last chunk; other bits 0 */
	uint32_t idle_timeout;      /**< seconds to wait for the next chunk; 0 = the default */
	struct proto_bytes records; /**< packed records, bounded by the frame */
};

/**
 * One record of an IMPORT chunk: u32-length strings and a u32, in this order.
 * The decoder of the request does not look inside @c records: the daemon
 * reads them one by one so that a malformed one can be named.
 */
struct proto_import_record {
	struct proto_bytes device_id;   /**< text, at most PROTO_MAX_DEVICE_ID */
	uint32_t index;
	struct proto_bytes cert_sha256; /**< empty or 32 bytes */
	struct proto_bytes spki_sha256; /**< empty or 32 bytes */
	struct proto_bytes cert_der;    /**< empty or at most PROTO_MAX_DER */
};

/** A reader of the records of one chunk. */
struct proto_import_iter {
	struct buf_reader r;
	uint32_t n; /**< records returned so far */
	int err;    /**< sticky: the first error, or PROTO_OK */
};

/** A decoded (or to be encoded) request. op selects the member of u. */
struct proto_request {
	uint8_t op;  /**< enum proto_op, PROTO_OP_HELLO..PROTO_OP_MAX */
	uint32_t id; /**< chosen by the client, echoed in the reply; never 0 */
	union {
		struct proto_hello hello;
		struct proto_issue issue;
		struct proto_revoke revoke;
		struct proto_reissue reissue;
		struct proto_rr_change rr; /**< PUBLISH, UNPUBLISH */
		struct proto_sign_rrset sign_rrset;
		struct proto_import import;
		/* CRL, CHAIN, STATUS, ZONE_STATUS have no fields. */
	} u;
};

/* ---- replies ---- */

struct proto_hello_ok {
	uint32_t version;          /**< the version chosen for this connection */
	uint32_t max_frame;        /**< the server's request length limit */
	struct proto_bytes server; /**< text: server name and software version */
};

struct proto_chain {
	uint32_t count; /**< 0..PROTO_MAX_CHAIN */
	struct proto_bytes der[PROTO_MAX_CHAIN]; /**< issuer first, towards the root */
};

/** OK to ISSUE and REISSUE. */
struct proto_cert_ok {
	struct proto_bytes cert_der;
	struct proto_chain chain;
	struct proto_bytes serial_hex; /**< text */
	uint32_t zone_serial;
	uint32_t index; /**< the index the certificate was issued at */
};

struct proto_revoke_ok {
	struct proto_bytes serial_hex; /**< text */
	uint64_t revoked_at;           /**< seconds since the epoch */
	uint32_t zone_serial;
};

/** OK to IMPORT. */
struct proto_import_ok {
	uint32_t records;     /**< records of the import accepted so far (all of them when final) */
	uint32_t zone_serial; /**< final chunk: the serial holding the import; else 0 */
};

struct proto_error {
	uint32_t code;              /**< enum proto_code (unknown codes are kept) */
	struct proto_bytes message; /**< text */
};

/**
 * A decoded (or to be encoded) reply. type is PROTO_REPLY_OK or
 * PROTO_REPLY_ERROR; for OK, op names the request type answered and selects
 * the member of u; for ERROR, op is 0 and u.error is used.
 */
struct proto_reply {
	uint8_t type;
	uint32_t id;
	uint8_t op;
	union {
		struct proto_hello_ok hello;
		struct proto_cert_ok cert;     /**< ISSUE, REISSUE */
		struct proto_revoke_ok revoke; /**< REVOKE */
		struct proto_bytes crl_der;    /**< CRL */
		struct proto_chain chain;      /**< CHAIN */
		struct proto_bytes json;       /**< STATUS, ZONE_STATUS (text) */
		uint32_t zone_serial;          /**< PUBLISH, UNPUBLISH */
		struct proto_bytes rrsig_wire; /**< SIGN_RRSET */
		struct proto_import_ok import; /**< IMPORT */
		struct proto_error error;      /**< ERROR */
	} u;
};

/** Returns a static description of a proto_err value. */
const char *proto_strerror(int err);

/**
 * Maps a decode error to the wire code the server answers it with:
 * TOO_LARGE → PROTO_CODE_TOO_LARGE, UNKNOWN_TYPE → PROTO_CODE_UNKNOWN_OP,
 * NOMEM → PROTO_CODE_INTERNAL, anything else → PROTO_CODE_BAD_FRAME.
 */
uint32_t proto_err_code(int err);

/** Returns "ISSUE" etc. for a request type, "OK"/"ERROR", or NULL if unknown. */
const char *proto_op_name(uint8_t op);

/** Returns "BAD_FRAME" etc., or NULL for a code this version does not know. */
const char *proto_code_name(uint32_t code);

/**
 * Returns 1 if a client may retry a request refused with @p code unchanged
 * (after a delay), 0 if not. Unknown codes are not retryable.
 */
int proto_code_retryable(uint32_t code);

/**
 * Looks at the start of a byte stream: needs the 4-byte length prefix.
 * Returns PROTO_ERR_SHORT if @p avail < 4; PROTO_ERR_BAD_FRAME if the length
 * is below PROTO_BODY_MIN; PROTO_ERR_TOO_LARGE if it is above @p max; else
 * PROTO_OK with *frame_size = 4 + length, the number of bytes to gather
 * before decoding (the caller allocates only after this check).
 */
int proto_frame_peek(const void *data, size_t avail, uint32_t max, size_t *frame_size);

/**
 * Parses the fixed header of a frame of @p len bytes (at least
 * PROTO_HEADER_SIZE). Same length checks as proto_frame_peek(); does not
 * require the whole frame to be present.
 */
int proto_header_parse(const void *frame, size_t len, uint32_t max, struct proto_header *h);

/**
 * Decodes exactly one complete request frame (length prefix included):
 * @p len must equal 4 + its length field. @p max bounds the length field
 * (PROTO_REQUEST_MAX or the configured lower limit).
 *
 * *req is zeroed first; as soon as the header is read, req->op and req->id
 * are set (even when the function then fails), so a server can answer an
 * unknown or malformed request with the right id: reply with id req->id and
 * code proto_err_code(r). A request with id 0 is PROTO_ERR_BAD_FRAME.
 * Returns PROTO_OK or a negative enum proto_err.
 * Strings in *req point into @p frame.
 */
int proto_request_decode(const void *frame, size_t len, uint32_t max,
			 struct proto_request *req);

/**
 * Decodes exactly one complete reply frame, as proto_request_decode() does
 * (max is usually PROTO_REPLY_MAX). An OK whose op is unknown fails with
 * PROTO_ERR_UNKNOWN_TYPE; an ERROR with an unknown code is accepted. Strings
 * in *rep point into @p frame.
 */
int proto_reply_decode(const void *frame, size_t len, uint32_t max, struct proto_reply *rep);

/**
 * Appends one request frame to @p w (which may already hold frames). The
 * request is checked against everything the decoder checks (known op,
 * field maxima, text well formed, id != 0, frame within PROTO_REQUEST_MAX):
 * what this encodes, proto_request_decode() accepts. On a check failure
 * (PROTO_ERR_INVALID, PROTO_ERR_FIELD_LIMIT, PROTO_ERR_BAD_TEXT,
 * PROTO_ERR_TOO_LARGE) nothing is appended; on PROTO_ERR_NOMEM the writer's
 * sticky error is set and the writer should be reset.
 */
int proto_request_encode(struct buf_writer *w, const struct proto_request *req);

/**
 * Appends one reply frame to @p w, with the same guarantees as
 * proto_request_encode() against proto_reply_decode() and PROTO_REPLY_MAX.
 * A reply's id may be 0 (an error that cannot be attributed to a request).
 */
int proto_reply_encode(struct buf_writer *w, const struct proto_reply *rep);

/**
 * Appends an ERROR reply. @p message (may be NULL) is cut at
 * PROTO_MAX_MESSAGE bytes on a UTF-8 character boundary; invalid UTF-8 or
 * control bytes in it are replaced by '?', so this only fails on memory.
 */
int proto_error_encode(struct buf_writer *w, uint32_t id, uint32_t code, const char *message);

/** Returns the byte string of a NUL-terminated C string (borrowed). */
struct proto_bytes proto_bytes_str(const char *s);

/** Returns 1 if @p b holds exactly the bytes of C string @p s, else 0. */
int proto_bytes_eq(struct proto_bytes b, const char *s);

/**
 * Returns a NUL-terminated heap copy of @p b (free with free()), or NULL if
 * memory runs out. Safe on decoded text fields, which hold no NUL.
 */
char *proto_bytes_strdup(struct proto_bytes b);

/**
 * Normalises a certificate serial in hex, as servers must compare them:
 * case folded to lowercase, leading zeros dropped. Writes a NUL-terminated
 * string to @p out. Returns PROTO_ERR_INVALID for an empty, non-hex or zero
 * serial or one longer than PROTO_MAX_SERIAL_HEX digits.
 */
int proto_serial_normalize(struct proto_bytes in, char out[PROTO_MAX_SERIAL_HEX + 1]);

/** Starts reading the packed records of an IMPORT chunk (borrowed). */
void proto_import_iter_init(struct proto_import_iter *it, struct proto_bytes records);

/**
 * Reads the next record into *@p rec (pointing into the chunk).
 * @return 1 with a record, 0 at the end, or PROTO_ERR_BAD_FRAME (truncated
 *         or lying length), PROTO_ERR_FIELD_LIMIT (a field above its
 *         maximum or a hash that is neither empty nor 32 bytes),
 *         PROTO_ERR_BAD_TEXT (device id not UTF-8 or with NUL). After an
 *         error the iterator stays failed.
 */
int proto_import_iter_next(struct proto_import_iter *it, struct proto_import_record *rec);

/**
 * Appends one record to @p w with the checks proto_import_iter_next() makes.
 * @return PROTO_OK, PROTO_ERR_FIELD_LIMIT, PROTO_ERR_BAD_TEXT,
 *         PROTO_ERR_INVALID (NULL pointer with a length) or PROTO_ERR_NOMEM.
 */
int proto_import_record_encode(struct buf_writer *w, const struct proto_import_record *rec);

#endif
