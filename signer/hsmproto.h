/**
 * @file hsmproto.h
 * @brief Codec of the internal protocol between the front process and the HSM process.
 *
 * The two processes of regsignd talk over a socketpair. Every message is one frame:
 * a fixed 16-byte header followed by a body whose length the header states exactly.
 *
 *     offset size field
 *     0      1    version   (HSMPROTO_VERSION)
 *     1      1    type      (enum hsmproto_type)
 *     2      2    reserved  (must be zero)
 *     4      4    id        (chosen by the front; the reply carries the same id)
 *     8      4    count     (number of items in the body)
 *     12     4    length    (body length in bytes, at most HSMPROTO_MAX_BODY)
 *
 * All integers are big-endian. The header is checked before anything is allocated
 * (hsmproto_header_decode), then the body is decoded by the function of its type,
 * which checks every item and that the items use the body exactly: no byte missing,
 * no byte left over.
 *
 * Body items (str8 = 1-byte length + bytes, no NUL):
 *
 *  - SIGN request, count = n (1..HSMPROTO_MAX_ITEMS):
 *      n × { role str8 (1..64), kind u8, format u8, data u32 length (1..MAX_DATA) + bytes }
 *  - SIGN reply, count = n: n × result (see below), in the order of the request.
 *  - result: { status u8, reason str8 (0..255), value u16 length + bytes }. The value
 *    (signature, SPKI or random bytes) is present only when the status is OK; a
 *    reason only when it is not.
 *  - PUBKEY request, count = 1: role str8.     PUBKEY reply, count = 1: result (SPKI DER).
 *  - RANDOM request, count = 1: n u32 (1..HSMPROTO_MAX_RANDOM). Reply: result (bytes).
 *  - STATUS request, count = 0, empty body.
 *  - STATUS reply, count = number of roles: state u8, recoveries u64, key copies
 *    u32, key copies refused u64, signatures prepared u64, then per role
 *    { role str8, signatures u64, refused u64, SHA-256 of the SPKI (32 bytes) }.
 *  - HELLO (HSM process -> front, once, id 0), count = 1: result without value; OK when
 *    the HSM process has opened the token and found every key, otherwise the reason
 *    why it could not (it exits right after).
 *
 * This module only encodes and decodes; it does no I/O and keeps no state.
 */
#ifndef REGSIGN_SIGNER_HSMPROTO_H
#define REGSIGN_SIGNER_HSMPROTO_H

#include <stddef.h>
#include <stdint.h>

#define HSMPROTO_VERSION 1
#define HSMPROTO_HEADER_LEN 16
/** Hard maximum of a frame body; checked before allocating. */
#define HSMPROTO_MAX_BODY (16u * 1024 * 1024)
/** Most items in one SIGN message. */
#define HSMPROTO_MAX_ITEMS 4096u
/** Largest data to sign in one item (an RRset's RRSIG data fits well within it). */
#define HSMPROTO_MAX_DATA (256u * 1024)
/** Longest role name. */
#define HSMPROTO_MAX_ROLE 64
/** Longest reason string of a result. */
#define HSMPROTO_MAX_REASON 255
/** Largest value of a result (signature, SPKI, random bytes). */
#define HSMPROTO_MAX_VALUE 4096
/** Most random bytes in one RANDOM request. */
#define HSMPROTO_MAX_RANDOM 4096
/** Most roles in a STATUS reply. */
#define HSMPROTO_MAX_ROLES 256

/** Errors of the codec. */
enum hsmproto_err {
	HSMPROTO_OK = 0,
	HSMPROTO_ERR_NOMEM = -1,
	HSMPROTO_ERR_ARG = -2,       /**< the caller passed something invalid to encode */
	HSMPROTO_ERR_TRUNCATED = -3, /**< an item runs past the end of the body */
	HSMPROTO_ERR_TOO_BIG = -4,   /**< a length above its hard maximum */
	HSMPROTO_ERR_LENGTH = -5,    /**< lengths disagree: bytes left over, count wrong */
	HSMPROTO_ERR_VERSION = -6,   /**< unknown protocol version */
	HSMPROTO_ERR_TYPE = -7,      /**< unknown message type, or not the one expected */
	HSMPROTO_ERR_VALUE = -8,     /**< unknown kind/format/status, bad role or reason */
};

/** Message types. Replies have the high bit set. */
enum hsmproto_type {
	HSMPROTO_HELLO = 0x01,
	HSMPROTO_SIGN = 0x02,
	HSMPROTO_PUBKEY = 0x03,
	HSMPROTO_RANDOM = 0x04,
	HSMPROTO_STATUS = 0x05,
	HSMPROTO_SIGN_REPLY = 0x82,
	HSMPROTO_PUBKEY_REPLY = 0x83,
	HSMPROTO_RANDOM_REPLY = 0x84,
	HSMPROTO_STATUS_REPLY = 0x85,
};

/** What the data of a SIGN item is; the HSM process checks it against the role. */
enum hsmproto_kind {
	HSMPROTO_KIND_TBS_CERT = 1,   /**< DER TBSCertificate */
	HSMPROTO_KIND_TBS_CRL = 2,    /**< DER TBSCertList */
	HSMPROTO_KIND_RRSIG_DATA = 3, /**< RRSIG RDATA without signature + canonical RRset */
	HSMPROTO_KIND_CHECKPOINT = 4, /**< audit checkpoint, starts with the checkpoint prefix */
};

/** Signature encoding wanted. */
enum hsmproto_format {
	HSMPROTO_FORMAT_RAW = 1, /**< r||s (DNSSEC) */
	HSMPROTO_FORMAT_DER = 2, /**< DER ECDSA-Sig-Value (X.509) */
};

/** Status of one result. */
enum hsmproto_status_code {
	HSMPROTO_ST_OK = 0,
	HSMPROTO_ST_REFUSED = 1,    /**< a hard limit refused it; the reason says which */
	HSMPROTO_ST_UNAVAILABLE = 2, /**< the HSM is down or the HSM process gone: retry later */
	HSMPROTO_ST_ERROR = 3,      /**< anything else; not worth retrying */
};

/** State of the HSM as the STATUS reply reports it (same values as the pkcs11 layer). */
enum hsmproto_state {
	HSMPROTO_STATE_UP = 0,
	HSMPROTO_STATE_RECOVERING = 1,
	HSMPROTO_STATE_DOWN = 2,
};

/** The checked header of a frame. */
struct hsmproto_header {
	uint8_t version;
	uint8_t type;
	uint32_t id;
	uint32_t count;
	uint32_t length; /**< body length */
};

/** One sign request. On decode, data points into the body it was decoded from. */
struct hsmproto_sign_req {
	char role[HSMPROTO_MAX_ROLE + 1]; /**< NUL-terminated */
	uint8_t kind;                     /**< enum hsmproto_kind */
	uint8_t format;                   /**< enum hsmproto_format */
	const uint8_t *data;
	size_t len;
};

/**
 * One result (of SIGN, PUBKEY, RANDOM or HELLO). On decode, value points into the body
 * it was decoded from; on encode, into whatever memory the caller keeps alive.
 */
struct hsmproto_result {
	uint8_t status;                       /**< enum hsmproto_status_code */
	char reason[HSMPROTO_MAX_REASON + 1]; /**< NUL-terminated, "" when OK */
	const uint8_t *value;                 /**< signature / SPKI / random bytes */
	size_t value_len;
};

/** Per-role counters and key fingerprint in a STATUS reply. */
struct hsmproto_role_status {
	char role[HSMPROTO_MAX_ROLE + 1];
	uint64_t signatures;
	uint64_t refused;
	uint8_t fingerprint[32]; /**< SHA-256 of the key's SubjectPublicKeyInfo DER */
};

/** A STATUS reply. */
struct hsmproto_status {
	uint8_t state; /**< enum hsmproto_state */
	uint64_t recoveries;
	uint32_t key_copies;         /**< session copies of the keys in use (pkcs11/hsm.h) */
	uint64_t key_copies_refused; /**< copies the module refused or that failed a check */
	uint64_t sign_prepared;      /**< signatures that found their operation prepared (hsm.sign-ahead) */
	size_t n_roles;
	struct hsmproto_role_status *roles; /**< malloc'd by the decoder */
};

/** A growable output buffer with a sticky error; frames are appended to it. */
struct hsmproto_buf {
	uint8_t *data;
	size_t len;
	size_t cap;
	int err; /**< first error met while appending; 0 while fine */
};

/** @return a static English description of an enum hsmproto_err value. */
const char *hsmproto_strerror(int err);

/** @return a static name for an enum hsmproto_status_code ("OK", "REFUSED", ...). */
const char *hsmproto_status_name(int status);

/** Frees the buffer's memory and zeroes it; NULL is a no-op. */
void hsmproto_buf_free(struct hsmproto_buf *b);

/**
 * Decodes and checks a header: version, known type, reserved zero, length at most
 * HSMPROTO_MAX_BODY, count at most HSMPROTO_MAX_ITEMS (HSMPROTO_MAX_ROLES for status).
 * @return 0, HSMPROTO_ERR_VERSION, _TYPE, _VALUE (reserved bits), _TOO_BIG.
 */
int hsmproto_header_decode(const uint8_t buf[HSMPROTO_HEADER_LEN], struct hsmproto_header *h);

/** @return true when a role name is well formed: 1..64 of [a-z0-9.-_/@]. */
int hsmproto_role_valid(const char *role);

/* Encoders: each appends one whole frame to b; on error b->err is set and returned. */

int hsmproto_sign_req_encode(struct hsmproto_buf *b, uint32_t id,
                             const struct hsmproto_sign_req *reqs, size_t n);
int hsmproto_results_encode(struct hsmproto_buf *b, uint8_t type, uint32_t id,
                            const struct hsmproto_result *res, size_t n);
int hsmproto_pubkey_req_encode(struct hsmproto_buf *b, uint32_t id, const char *role);
int hsmproto_random_req_encode(struct hsmproto_buf *b, uint32_t id, uint32_t n);
int hsmproto_status_req_encode(struct hsmproto_buf *b, uint32_t id);
int hsmproto_status_encode(struct hsmproto_buf *b, uint32_t id, const struct hsmproto_status *st);

/*
 * Decoders: h is the header already checked by hsmproto_header_decode and body its
 * h->length bytes. Each checks that h->type is the type it decodes.
 */

/**
 * Decodes a SIGN request into *reqs, a malloc'd array of h->count items (free() it);
 * their data pointers point into body, which must outlive them.
 */
int hsmproto_sign_req_decode(const struct hsmproto_header *h, const uint8_t *body,
                             struct hsmproto_sign_req **reqs);
/**
 * Decodes the results of a SIGN, PUBKEY, RANDOM reply or a HELLO into *res, a malloc'd
 * array of h->count items (free() it); their value pointers point into body, which
 * must outlive them. Statuses other than OK carry no value.
 */
int hsmproto_results_decode(const struct hsmproto_header *h, const uint8_t *body,
                            struct hsmproto_result **res);
/** Decodes a PUBKEY request's role into role (HSMPROTO_MAX_ROLE + 1 bytes). */
int hsmproto_pubkey_req_decode(const struct hsmproto_header *h, const uint8_t *body,
                               char role[HSMPROTO_MAX_ROLE + 1]);
/** Decodes a RANDOM request's byte count (1..HSMPROTO_MAX_RANDOM). */
int hsmproto_random_req_decode(const struct hsmproto_header *h, const uint8_t *body,
                               uint32_t *n);
/** Checks a STATUS request is empty. */
int hsmproto_status_req_decode(const struct hsmproto_header *h, const uint8_t *body);
/** Decodes a STATUS reply; st->roles is malloc'd (hsmproto_status_clear frees it). */
int hsmproto_status_decode(const struct hsmproto_header *h, const uint8_t *body,
                           struct hsmproto_status *st);
/** Frees what hsmproto_status_decode allocated; NULL is a no-op. */
void hsmproto_status_clear(struct hsmproto_status *st);

#endif
