/*
 * Codec of the signing-socket protocol. See proto.h and docs/PROTOCOL.md.
 *
 * Each operation's request and reply are described by a table of fields
 * (kind, maximum, offset in the struct). One walker decodes and one encodes
 * from the same tables, so the two directions cannot drift apart and every
 * limit the decoder enforces is also enforced on what we send.
 */
#include "signer/proto.h"

#include <stddef.h>
#include <stdlib.h>
#include <string.h>

enum field_kind {
	F_U32,
	F_U64,
	F_TEXT,  /* string holding UTF-8 without NUL */
	F_BLOB,  /* string of arbitrary bytes */
	F_CERTS, /* u32 count, then count blobs */
};

struct field {
	enum field_kind kind;
	uint32_t max; /* byte maximum of a string / of each certificate */
	size_t off;   /* offset in struct proto_request or struct proto_reply */
};

/* Strings bounded only by the frame. */
#define UNBOUNDED UINT32_MAX

#define RQ(kind, max, member) { kind, max, offsetof(struct proto_request, u.member) }
#define RP(kind, max, member) { kind, max, offsetof(struct proto_reply, u.member) }

static const struct field req_hello[] = {
	RQ(F_U32, 0, hello.min_version),
	RQ(F_U32, 0, hello.max_version),
	RQ(F_TEXT, PROTO_MAX_NAME, hello.client),
};
static const struct field req_issue[] = {
	RQ(F_TEXT, PROTO_MAX_DEVICE_ID, issue.device_id),
	RQ(F_U32, 0, issue.index),
	RQ(F_TEXT, PROTO_MAX_PROFILE, issue.profile),
	RQ(F_BLOB, PROTO_MAX_DER, issue.csr_der),
};
static const struct field req_revoke[] = {
	RQ(F_TEXT, PROTO_MAX_DEVICE_ID, revoke.device_id),
	RQ(F_U32, 0, revoke.index),
	RQ(F_TEXT, PROTO_MAX_SERIAL_HEX, revoke.serial_hex),
	RQ(F_TEXT, PROTO_MAX_REASON, revoke.reason),
};
static const struct field req_reissue[] = {
	RQ(F_TEXT, PROTO_MAX_DEVICE_ID, reissue.device_id),
	RQ(F_U32, 0, reissue.old_index),
	RQ(F_TEXT, PROTO_MAX_PROFILE, reissue.profile),
	RQ(F_BLOB, PROTO_MAX_DER, reissue.csr_der),
};
static const struct field req_rr[] = {
	RQ(F_TEXT, PROTO_MAX_DNAME, rr.owner),
	RQ(F_TEXT, PROTO_MAX_RRTYPE, rr.rrtype),
	RQ(F_U32, 0, rr.ttl),
	RQ(F_TEXT, PROTO_MAX_RDATA, rr.rdata),
};
static const struct field req_sign_rrset[] = {
	RQ(F_TEXT, PROTO_MAX_DNAME, sign_rrset.zone),
	RQ(F_BLOB, UNBOUNDED, sign_rrset.rrset_wire),
	RQ(F_U32, 0, sign_rrset.inception),
	RQ(F_U32, 0, sign_rrset.expiration),
};
static const struct field req_import[] = {
	RQ(F_U32, 0, import.import_id),
	RQ(F_U32, 0, import.seq),
	RQ(F_U32, 0, import.flags),
	RQ(F_U32, 0, import.idle_timeout),
	RQ(F_BLOB, UNBOUNDED, import.records),
};

static const struct field rep_hello[] = {
	RP(F_U32, 0, hello.version),
	RP(F_U32, 0, hello.max_frame),
	RP(F_TEXT, PROTO_MAX_NAME, hello.server),
};
static const struct field rep_cert[] = {
	RP(F_BLOB, PROTO_MAX_DER, cert.cert_der),
	RP(F_CERTS, PROTO_MAX_DER, cert.chain),
	RP(F_TEXT, PROTO_MAX_SERIAL_HEX, cert.serial_hex),
	RP(F_U32, 0, cert.zone_serial),
	RP(F_U32, 0, cert.index),
};
static const struct field rep_revoke[] = {
	RP(F_TEXT, PROTO_MAX_SERIAL_HEX, revoke.serial_hex),
	RP(F_U64, 0, revoke.revoked_at),
	RP(F_U32, 0, revoke.zone_serial),
};
static const struct field rep_crl[] = { RP(F_BLOB, UNBOUNDED, crl_der) };
static const struct field rep_chain[] = { RP(F_CERTS, PROTO_MAX_DER, chain) };
static const struct field rep_json[] = { RP(F_TEXT, UNBOUNDED, json) };
static const struct field rep_serial[] = { RP(F_U32, 0, zone_serial) };
static const struct field rep_rrsig[] = { RP(F_BLOB, UNBOUNDED, rrsig_wire) };
static const struct field rep_import[] = {
	RP(F_U32, 0, import.records),
	RP(F_U32, 0, import.zone_serial),
};
static const struct field rep_error[] = {
	RP(F_U32, 0, error.code),
	RP(F_TEXT, PROTO_MAX_MESSAGE, error.message),
};

struct op_desc {
	const char *name;
	const struct field *req;
	size_t nreq;
	const struct field *rep;
	size_t nrep;
};

#define FIELDS(a) a, sizeof(a) / sizeof((a)[0])
#define NOFIELDS NULL, 0

static const struct op_desc ops[PROTO_OP_MAX + 1] = {
	[PROTO_OP_HELLO] = { "HELLO", FIELDS(req_hello), FIELDS(rep_hello) },
	[PROTO_OP_ISSUE] = { "ISSUE", FIELDS(req_issue), FIELDS(rep_cert) },
	[PROTO_OP_REVOKE] = { "REVOKE", FIELDS(req_revoke), FIELDS(rep_revoke) },
	[PROTO_OP_REISSUE] = { "REISSUE", FIELDS(req_reissue), FIELDS(rep_cert) },
	[PROTO_OP_CRL] = { "CRL", NOFIELDS, FIELDS(rep_crl) },
	[PROTO_OP_CHAIN] = { "CHAIN", NOFIELDS, FIELDS(rep_chain) },
	[PROTO_OP_STATUS] = { "STATUS", NOFIELDS, FIELDS(rep_json) },
	[PROTO_OP_PUBLISH] = { "PUBLISH", FIELDS(req_rr), FIELDS(rep_serial) },
	[PROTO_OP_UNPUBLISH] = { "UNPUBLISH", FIELDS(req_rr), FIELDS(rep_serial) },
	[PROTO_OP_SIGN_RRSET] = { "SIGN_RRSET", FIELDS(req_sign_rrset), FIELDS(rep_rrsig) },
	[PROTO_OP_ZONE_STATUS] = { "ZONE_STATUS", NOFIELDS, FIELDS(rep_json) },
	[PROTO_OP_IMPORT] = { "IMPORT", FIELDS(req_import), FIELDS(rep_import) },
};

static const struct op_desc *op_find(uint8_t op)
{
	if (op < PROTO_OP_HELLO || op > PROTO_OP_MAX)
		return NULL;
	return &ops[op];
}

static const char *const code_names[PROTO_CODE_MAX + 1] = {
	[PROTO_CODE_BAD_FRAME] = "BAD_FRAME",
	[PROTO_CODE_TOO_LARGE] = "TOO_LARGE",
	[PROTO_CODE_UNKNOWN_OP] = "UNKNOWN_OP",
	[PROTO_CODE_BAD_REQUEST] = "BAD_REQUEST",
	[PROTO_CODE_DENIED] = "DENIED",
	[PROTO_CODE_NOT_FOUND] = "NOT_FOUND",
	[PROTO_CODE_CONFLICT] = "CONFLICT",
	[PROTO_CODE_RATE_LIMITED] = "RATE_LIMITED",
	[PROTO_CODE_BUSY] = "BUSY",
	[PROTO_CODE_UNAVAILABLE] = "UNAVAILABLE",
	[PROTO_CODE_STORAGE] = "STORAGE",
	[PROTO_CODE_INTERNAL] = "INTERNAL",
	[PROTO_CODE_VERSION] = "VERSION",
};

const char *proto_strerror(int err)
{
	switch (err) {
	case PROTO_OK:
		return "success";
	case PROTO_ERR_SHORT:
		return "incomplete frame header";
	case PROTO_ERR_TOO_LARGE:
		return "frame length above the maximum";
	case PROTO_ERR_BAD_FRAME:
		return "malformed frame";
	case PROTO_ERR_UNKNOWN_TYPE:
		return "unknown frame type or operation";
	case PROTO_ERR_FIELD_LIMIT:
		return "field longer than its maximum";
	case PROTO_ERR_BAD_TEXT:
		return "text field is not UTF-8 or holds a NUL byte";
	case PROTO_ERR_INVALID:
		return "invalid message";
	case PROTO_ERR_NOMEM:
		return "out of memory";
	}
	return "unknown proto error";
}

uint32_t proto_err_code(int err)
{
	switch (err) {
	case PROTO_ERR_TOO_LARGE:
		return PROTO_CODE_TOO_LARGE;
	case PROTO_ERR_UNKNOWN_TYPE:
		return PROTO_CODE_UNKNOWN_OP;
	case PROTO_ERR_NOMEM:
		return PROTO_CODE_INTERNAL;
	default:
		return PROTO_CODE_BAD_FRAME;
	}
}

const char *proto_op_name(uint8_t op)
{
	const struct op_desc *d = op_find(op);

	if (d != NULL)
		return d->name;
	if (op == PROTO_REPLY_OK)
		return "OK";
	if (op == PROTO_REPLY_ERROR)
		return "ERROR";
	return NULL;
}

const char *proto_code_name(uint32_t code)
{
	if (code == 0 || code > PROTO_CODE_MAX)
		return NULL;
	return code_names[code];
}

int proto_code_retryable(uint32_t code)
{
	return code == PROTO_CODE_RATE_LIMITED || code == PROTO_CODE_BUSY ||
	       code == PROTO_CODE_UNAVAILABLE || code == PROTO_CODE_STORAGE;
}

/*
 * Strict UTF-8 (RFC 3629): no overlong forms, no surrogates, nothing above
 * U+10FFFF; and no NUL, so that decoded text can become a C string.
 */
static int text_valid(const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		uint8_t c = p[i];
		size_t k;
		uint32_t cp, lo;

		if (c == 0)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf) {
			k = 1, cp = c & 0x1f, lo = 0x80;
		} else if (c >= 0xe0 && c <= 0xef) {
			k = 2, cp = c & 0x0f, lo = 0x800;
		} else if (c >= 0xf0 && c <= 0xf4) {
			k = 3, cp = c & 0x07, lo = 0x10000;
		} else {
			return 0;
		}
		if (n - i - 1 < k)
			return 0;
		for (size_t j = 1; j <= k; j++) {
			if ((p[i + j] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (p[i + j] & 0x3f);
		}
		if (cp < lo || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += k + 1;
	}
	return 1;
}

static int buf_to_proto(int e)
{
	switch (e) {
	case BUF_OK:
		return PROTO_OK;
	case BUF_ERR_TOO_LONG:
		return PROTO_ERR_FIELD_LIMIT;
	case BUF_ERR_NOMEM:
	case BUF_ERR_LIMIT:
		return PROTO_ERR_NOMEM;
	default:
		return PROTO_ERR_BAD_FRAME;
	}
}

static int decode_blob(struct buf_reader *r, uint32_t max, struct proto_bytes *b)
{
	return buf_to_proto(buf_reader_get_string(r, max, &b->ptr, &b->len));
}

static int decode_fields(struct buf_reader *r, const struct field *f, size_t n, void *base)
{
	int r2 = PROTO_OK;

	for (size_t i = 0; i < n && r2 == PROTO_OK; i++) {
		char *at = (char *)base + f[i].off;

		switch (f[i].kind) {
		case F_U32:
			r2 = buf_to_proto(buf_reader_get_u32(r, (uint32_t *)(void *)at));
			break;
		case F_U64:
			r2 = buf_to_proto(buf_reader_get_u64(r, (uint64_t *)(void *)at));
			break;
		case F_TEXT: {
			struct proto_bytes *b = (struct proto_bytes *)(void *)at;

			r2 = decode_blob(r, f[i].max, b);
			if (r2 == PROTO_OK && !text_valid(b->ptr, b->len))
				r2 = PROTO_ERR_BAD_TEXT;
			break;
		}
		case F_BLOB:
			r2 = decode_blob(r, f[i].max, (struct proto_bytes *)(void *)at);
			break;
		case F_CERTS: {
			struct proto_chain *c = (struct proto_chain *)(void *)at;

			r2 = buf_to_proto(buf_reader_get_u32(r, &c->count));
			if (r2 == PROTO_OK && c->count > PROTO_MAX_CHAIN)
				r2 = PROTO_ERR_FIELD_LIMIT;
			for (uint32_t j = 0; r2 == PROTO_OK && j < c->count; j++)
				r2 = decode_blob(r, f[i].max, &c->der[j]);
			break;
		}
		}
	}
	return r2;
}

int proto_frame_peek(const void *data, size_t avail, uint32_t max, size_t *frame_size)
{
	const uint8_t *p = data;
	uint32_t length;

	*frame_size = 0;
	if (avail < PROTO_LEN_SIZE)
		return PROTO_ERR_SHORT;
	length = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
	if (length > max)
		return PROTO_ERR_TOO_LARGE;
	if (length < PROTO_BODY_MIN)
		return PROTO_ERR_BAD_FRAME;
	*frame_size = (size_t)length + PROTO_LEN_SIZE;
	return PROTO_OK;
}

int proto_header_parse(const void *frame, size_t len, uint32_t max, struct proto_header *h)
{
	struct buf_reader r;
	size_t size;
	int e;

	memset(h, 0, sizeof(*h));
	e = proto_frame_peek(frame, len, max, &size);
	if (e != PROTO_OK)
		return e;
	if (len < PROTO_HEADER_SIZE)
		return PROTO_ERR_SHORT;
	buf_reader_init(&r, frame, PROTO_HEADER_SIZE);
	buf_reader_get_u32(&r, &h->length);
	buf_reader_get_u8(&r, &h->type);
	buf_reader_get_u32(&r, &h->id);
	return PROTO_OK;
}

/*
 * Reads the header of a complete frame and checks that the buffer holds
 * exactly that frame. Leaves the reader positioned on the fields.
 */
static int frame_open(struct buf_reader *r, const void *frame, size_t len, uint32_t max,
		      struct proto_header *h)
{
	size_t size;
	int e;

	e = proto_frame_peek(frame, len, max, &size);
	if (e == PROTO_ERR_SHORT)
		return PROTO_ERR_BAD_FRAME;
	if (e != PROTO_OK)
		return e;
	/* A buffer shorter than the length field says is a truncated frame;
	 * a longer one has trailing garbage. Both are refused here so the
	 * field walker can trust the reader's bound. */
	if (len != size || len < PROTO_HEADER_SIZE)
		return PROTO_ERR_BAD_FRAME;
	buf_reader_init(r, frame, len);
	buf_reader_get_u32(r, &h->length);
	buf_reader_get_u8(r, &h->type);
	buf_reader_get_u32(r, &h->id);
	return PROTO_OK;
}

static int frame_close(struct buf_reader *r, int e)
{
	if (e != PROTO_OK)
		return e;
	return buf_reader_end(r) == BUF_OK ? PROTO_OK : PROTO_ERR_BAD_FRAME;
}

int proto_request_decode(const void *frame, size_t len, uint32_t max,
			 struct proto_request *req)
{
	struct buf_reader r;
	struct proto_header h;
	const struct op_desc *d;
	int e;

	memset(req, 0, sizeof(*req));
	e = frame_open(&r, frame, len, max, &h);
	if (e != PROTO_OK)
		return e;
	req->op = h.type;
	req->id = h.id;
	d = op_find(h.type);
	if (d == NULL)
		return PROTO_ERR_UNKNOWN_TYPE;
	/* Id 0 is the server's "cannot tell which request" marker. */
	if (h.id == 0)
		return PROTO_ERR_BAD_FRAME;
	e = decode_fields(&r, d->req, d->nreq, req);
	return frame_close(&r, e);
}

int proto_reply_decode(const void *frame, size_t len, uint32_t max, struct proto_reply *rep)
{
	struct buf_reader r;
	struct proto_header h;
	const struct op_desc *d;
	int e;

	memset(rep, 0, sizeof(*rep));
	e = frame_open(&r, frame, len, max, &h);
	if (e != PROTO_OK)
		return e;
	rep->type = h.type;
	rep->id = h.id;
	if (h.type == PROTO_REPLY_ERROR) {
		e = decode_fields(&r, FIELDS(rep_error), rep);
		return frame_close(&r, e);
	}
	if (h.type != PROTO_REPLY_OK)
		return PROTO_ERR_UNKNOWN_TYPE;
	e = buf_to_proto(buf_reader_get_u8(&r, &rep->op));
	if (e != PROTO_OK)
		return e;
	d = op_find(rep->op);
	if (d == NULL)
		return PROTO_ERR_UNKNOWN_TYPE;
	e = decode_fields(&r, d->rep, d->nrep, rep);
	return frame_close(&r, e);
}

/* Checks a string field against what the decoder will demand of it. */
static int check_blob(const struct proto_bytes *b, uint32_t max, int text)
{
	if (b->ptr == NULL && b->len != 0)
		return PROTO_ERR_INVALID;
	if (b->len > max)
		return PROTO_ERR_FIELD_LIMIT;
	if (text && !text_valid(b->ptr, b->len))
		return PROTO_ERR_BAD_TEXT;
	return PROTO_OK;
}

static int encode_fields(struct buf_writer *w, const struct field *f, size_t n,
			 const void *base)
{
	int e = PROTO_OK;

	for (size_t i = 0; i < n && e == PROTO_OK; i++) {
		const char *at = (const char *)base + f[i].off;
		const struct proto_bytes *b = (const struct proto_bytes *)(const void *)at;
		const struct proto_chain *c = (const struct proto_chain *)(const void *)at;

		switch (f[i].kind) {
		case F_U32:
			e = buf_to_proto(buf_writer_put_u32(w, *(const uint32_t *)(const void *)at));
			break;
		case F_U64:
			e = buf_to_proto(buf_writer_put_u64(w, *(const uint64_t *)(const void *)at));
			break;
		case F_TEXT:
		case F_BLOB:
			e = check_blob(b, f[i].max, f[i].kind == F_TEXT);
			if (e == PROTO_OK)
				e = buf_to_proto(buf_writer_put_string(w, b->ptr, b->len));
			break;
		case F_CERTS:
			if (c->count > PROTO_MAX_CHAIN)
				return PROTO_ERR_FIELD_LIMIT;
			for (uint32_t j = 0; e == PROTO_OK && j < c->count; j++)
				e = check_blob(&c->der[j], f[i].max, 0);
			if (e == PROTO_OK)
				e = buf_to_proto(buf_writer_put_u32(w, c->count));
			for (uint32_t j = 0; e == PROTO_OK && j < c->count; j++)
				e = buf_to_proto(buf_writer_put_string(w, c->der[j].ptr,
								       c->der[j].len));
			break;
		}
	}
	return e;
}

/*
 * Writes header, optional op byte and fields; then patches the length. Any
 * failure cuts the writer back to where it was, so a refused message never
 * leaves half a frame behind.
 */
static int encode_frame(struct buf_writer *w, uint8_t type, uint32_t id, int with_op,
			uint8_t op, const struct field *f, size_t n, const void *base,
			uint32_t max)
{
	size_t start = buf_writer_len(w);
	size_t length;
	int e;

	buf_writer_put_u32(w, 0);
	buf_writer_put_u8(w, type);
	buf_writer_put_u32(w, id);
	if (with_op)
		buf_writer_put_u8(w, op);
	e = buf_to_proto(buf_writer_error(w));
	if (e == PROTO_OK)
		e = encode_fields(w, f, n, base);
	if (e == PROTO_OK) {
		length = buf_writer_len(w) - start - PROTO_LEN_SIZE;
		if (length > max)
			e = PROTO_ERR_TOO_LARGE;
		else
			e = buf_to_proto(buf_writer_patch_u32(w, start, (uint32_t)length));
	}
	if (e != PROTO_OK)
		buf_writer_truncate(w, start);
	return e;
}

int proto_request_encode(struct buf_writer *w, const struct proto_request *req)
{
	const struct op_desc *d = op_find(req->op);

	if (d == NULL || req->id == 0)
		return PROTO_ERR_INVALID;
	return encode_frame(w, req->op, req->id, 0, 0, d->req, d->nreq, req,
			    PROTO_REQUEST_MAX);
}

int proto_reply_encode(struct buf_writer *w, const struct proto_reply *rep)
{
	const struct op_desc *d;

	if (rep->type == PROTO_REPLY_ERROR)
		return encode_frame(w, rep->type, rep->id, 0, 0, FIELDS(rep_error), rep,
				    PROTO_REPLY_MAX);
	d = op_find(rep->op);
	if (rep->type != PROTO_REPLY_OK || d == NULL)
		return PROTO_ERR_INVALID;
	return encode_frame(w, rep->type, rep->id, 1, rep->op, d->rep, d->nrep, rep,
			    PROTO_REPLY_MAX);
}

int proto_error_encode(struct buf_writer *w, uint32_t id, uint32_t code, const char *message)
{
	char clean[PROTO_MAX_MESSAGE];
	size_t n = 0;
	struct proto_reply rep;

	/* Copy character by character so the cut lands on a boundary and
	 * anything that is not printable UTF-8 becomes '?'. */
	for (const uint8_t *p = (const uint8_t *)(message ? message : ""); *p != 0;) {
		size_t k = 1;
		int ok;

		/* The NUL terminator is no continuation byte, so this stops there. */
		while (*p >= 0xc0 && k < 4 && (p[k] & 0xc0) == 0x80)
			k++;
		ok = *p >= 0x20 && *p != 0x7f && text_valid(p, k);
		if (!ok)
			k = 1;
		if (n + k > sizeof(clean))
			break;
		if (ok)
			memcpy(clean + n, p, k);
		else
			clean[n] = '?';
		n += k;
		p += k;
	}
	memset(&rep, 0, sizeof(rep));
	rep.type = PROTO_REPLY_ERROR;
	rep.id = id;
	rep.u.error.code = code;
	rep.u.error.message.ptr = (const uint8_t *)clean;
	rep.u.error.message.len = n;
	return proto_reply_encode(w, &rep);
}

struct proto_bytes proto_bytes_str(const char *s)
{
	struct proto_bytes b = { (const uint8_t *)s, s != NULL ? strlen(s) : 0 };

	return b;
}

int proto_bytes_eq(struct proto_bytes b, const char *s)
{
	size_t n = strlen(s);

	return b.len == n && (n == 0 || memcmp(b.ptr, s, n) == 0);
}

char *proto_bytes_strdup(struct proto_bytes b)
{
	char *s = malloc(b.len + 1);

	if (s == NULL)
		return NULL;
	if (b.len != 0)
		memcpy(s, b.ptr, b.len);
	s[b.len] = '\0';
	return s;
}

int proto_serial_normalize(struct proto_bytes in, char out[PROTO_MAX_SERIAL_HEX + 1])
{
	static const char hex[] = "0123456789abcdef";
	size_t i = 0, n = 0;

	out[0] = '\0';
	if (in.len == 0 || in.len > PROTO_MAX_SERIAL_HEX)
		return PROTO_ERR_INVALID;
	for (size_t j = 0; j < in.len; j++) {
		uint8_t c = in.ptr[j];

		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return PROTO_ERR_INVALID;
	}
	while (i < in.len && in.ptr[i] == '0')
		i++;
	if (i == in.len)
		return PROTO_ERR_INVALID;
	for (; i < in.len; i++) {
		uint8_t c = in.ptr[i];
		int v = c <= '9' ? c - '0' : (c | 0x20) - 'a' + 10;

		out[n++] = hex[v];
	}
	out[n] = '\0';
	return PROTO_OK;
}

/* ---- IMPORT records ---- */

/* The fields of one record, in wire order (offsets in struct proto_import_record). */
#define IR(kind, max, member) { kind, max, offsetof(struct proto_import_record, member) }
static const struct field import_record[] = {
	IR(F_TEXT, PROTO_MAX_DEVICE_ID, device_id),
	IR(F_U32, 0, index),
	IR(F_BLOB, 32, cert_sha256),
	IR(F_BLOB, 32, spki_sha256),
	IR(F_BLOB, PROTO_MAX_DER, cert_der),
};

/* A hash is absent or exactly one SHA-256: anything between is refused. */
static int import_hashes_ok(const struct proto_import_record *rec)
{
	return (rec->cert_sha256.len == 0 || rec->cert_sha256.len == 32) &&
	       (rec->spki_sha256.len == 0 || rec->spki_sha256.len == 32);
}

void proto_import_iter_init(struct proto_import_iter *it, struct proto_bytes records)
{
	buf_reader_init(&it->r, records.ptr, records.len);
	it->n = 0;
	it->err = PROTO_OK;
}

int proto_import_iter_next(struct proto_import_iter *it, struct proto_import_record *rec)
{
	int e;

	memset(rec, 0, sizeof(*rec));
	if (it->err != PROTO_OK)
		return it->err;
	if (buf_reader_remaining(&it->r) == 0)
		return 0;
	e = decode_fields(&it->r, FIELDS(import_record), rec);
	if (e == PROTO_OK && !import_hashes_ok(rec))
		e = PROTO_ERR_FIELD_LIMIT;
	if (e != PROTO_OK) {
		it->err = e;
		memset(rec, 0, sizeof(*rec));
		return e;
	}
	it->n++;
	return 1;
}

int proto_import_record_encode(struct buf_writer *w, const struct proto_import_record *rec)
{
	size_t start = buf_writer_len(w);
	int e;

	if (!import_hashes_ok(rec))
		return PROTO_ERR_FIELD_LIMIT;
	e = encode_fields(w, FIELDS(import_record), rec);
	if (e != PROTO_OK)
		buf_writer_truncate(w, start);
	return e;
}
