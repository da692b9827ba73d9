/*
 * client_msg.c - the messages of libregsign-client (see client.h): the
 * public request turned into the codec's (borrowing its memory), a decoded
 * reply copied into caller-owned memory, the names of reply codes, one call
 * per operation over regsign_client_call, and the IMPORT record builder.
 * The connection, the window of outstanding requests and the framing are
 * in client.c.
 */
#include <stdlib.h>
#include <string.h>

#include "signer/buf.h"
#include "signer/client.h"
#include "signer/client_int.h"
#include "signer/proto.h"

const char *regsign_code_name(uint32_t code)
{
	const char *n = proto_code_name(code);

	if (code == REGSIGN_CODE_OK)
		return "OK";
	return n != NULL ? n : "UNKNOWN";
}

int regsign_code_retryable(uint32_t code)
{
	return proto_code_retryable(code);
}

void regsign_reply_clear(struct regsign_reply *rep)
{
	if (rep == NULL)
		return;
	free(rep->message);
	free(rep->server_name);
	free(rep->cert.data);
	for (size_t i = 0; i < rep->chain_count; i++)
		free(rep->chain[i].data);
	free(rep->chain);
	free(rep->serial_hex);
	free(rep->data.data);
	memset(rep, 0, sizeof(*rep));
}

static const char *str_or_empty(const char *s)
{
	return s != NULL ? s : "";
}

void client__request_build(const struct regsign_request *in, uint32_t id,
			   struct proto_request *q)
{
	memset(q, 0, sizeof(*q));
	q->op = (uint8_t)in->op;
	q->id = id;
	switch (in->op) {
	case REGSIGN_OP_HELLO:
		q->u.hello.min_version = in->min_version ? in->min_version : PROTO_VERSION;
		q->u.hello.max_version = in->max_version ? in->max_version : PROTO_VERSION;
		q->u.hello.client = proto_bytes_str(str_or_empty(in->client_name));
		break;
	case REGSIGN_OP_ISSUE:
	case REGSIGN_OP_REISSUE:
		/* ISSUE and REISSUE have the same layout. */
		q->u.issue.device_id = proto_bytes_str(str_or_empty(in->device_id));
		q->u.issue.index = in->index;
		q->u.issue.profile = proto_bytes_str(str_or_empty(in->profile));
		q->u.issue.csr_der.ptr = in->csr_der;
		q->u.issue.csr_der.len = in->csr_len;
		if (in->op == REGSIGN_OP_REISSUE) {
			struct proto_issue tmp = q->u.issue;

			q->u.reissue.device_id = tmp.device_id;
			q->u.reissue.old_index = tmp.index;
			q->u.reissue.profile = tmp.profile;
			q->u.reissue.csr_der = tmp.csr_der;
		}
		break;
	case REGSIGN_OP_REVOKE:
		q->u.revoke.device_id = proto_bytes_str(str_or_empty(in->device_id));
		q->u.revoke.index = in->index;
		q->u.revoke.serial_hex = proto_bytes_str(str_or_empty(in->serial_hex));
		q->u.revoke.reason = proto_bytes_str(str_or_empty(in->reason));
		break;
	case REGSIGN_OP_PUBLISH:
	case REGSIGN_OP_UNPUBLISH:
		q->u.rr.owner = proto_bytes_str(str_or_empty(in->owner));
		q->u.rr.rrtype = proto_bytes_str(str_or_empty(in->rrtype));
		q->u.rr.ttl = in->op == REGSIGN_OP_PUBLISH ? in->ttl : 0;
		q->u.rr.rdata = proto_bytes_str(str_or_empty(in->rdata));
		break;
	case REGSIGN_OP_SIGN_RRSET:
		q->u.sign_rrset.zone = proto_bytes_str(str_or_empty(in->zone));
		q->u.sign_rrset.rrset_wire.ptr = in->rrset_wire;
		q->u.sign_rrset.rrset_wire.len = in->rrset_len;
		q->u.sign_rrset.inception = in->inception;
		q->u.sign_rrset.expiration = in->expiration;
		break;
	case REGSIGN_OP_IMPORT:
		q->u.import.import_id = in->import_id;
		q->u.import.seq = in->import_seq;
		q->u.import.flags = in->import_flags;
		q->u.import.idle_timeout = in->import_idle_timeout;
		q->u.import.records.ptr = in->records;
		q->u.import.records.len = in->records_len;
		break;
	default:
		break;
	}
}

static int blob_copy(struct proto_bytes b, struct regsign_blob *out)
{
	out->data = (unsigned char *)proto_bytes_strdup(b);
	out->len = out->data != NULL ? b.len : 0;
	return out->data != NULL ? 0 : -1;
}

static int text_copy(struct proto_bytes b, char **out)
{
	*out = proto_bytes_strdup(b);
	return *out != NULL ? 0 : -1;
}

static int chain_copy(const struct proto_chain *ch, struct regsign_reply *rep)
{
	if (ch->count == 0)
		return 0;
	rep->chain = calloc(ch->count, sizeof(*rep->chain));
	if (rep->chain == NULL)
		return -1;
	rep->chain_count = ch->count;
	for (uint32_t i = 0; i < ch->count; i++) {
		if (blob_copy(ch->der[i], &rep->chain[i]) != 0)
			return -1;
	}
	return 0;
}

int client__reply_copy(const struct proto_reply *p, struct regsign_reply *rep)
{
	int e = 0;

	rep->id = p->id;
	rep->op = (enum regsign_op)p->op;
	if (p->type == PROTO_REPLY_ERROR) {
		rep->code = p->u.error.code;
		return text_copy(p->u.error.message, &rep->message);
	}
	switch (p->op) {
	case PROTO_OP_HELLO:
		rep->version = p->u.hello.version;
		rep->max_frame = p->u.hello.max_frame;
		e = text_copy(p->u.hello.server, &rep->server_name);
		break;
	case PROTO_OP_ISSUE:
	case PROTO_OP_REISSUE:
		rep->zone_serial = p->u.cert.zone_serial;
		rep->index = p->u.cert.index;
		e = blob_copy(p->u.cert.cert_der, &rep->cert);
		if (e == 0)
			e = chain_copy(&p->u.cert.chain, rep);
		if (e == 0)
			e = text_copy(p->u.cert.serial_hex, &rep->serial_hex);
		break;
	case PROTO_OP_REVOKE:
		rep->revoked_at = p->u.revoke.revoked_at;
		rep->zone_serial = p->u.revoke.zone_serial;
		e = text_copy(p->u.revoke.serial_hex, &rep->serial_hex);
		break;
	case PROTO_OP_CRL:
		e = blob_copy(p->u.crl_der, &rep->data);
		break;
	case PROTO_OP_CHAIN:
		e = chain_copy(&p->u.chain, rep);
		break;
	case PROTO_OP_STATUS:
	case PROTO_OP_ZONE_STATUS:
		e = blob_copy(p->u.json, &rep->data);
		break;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_UNPUBLISH:
		rep->zone_serial = p->u.zone_serial;
		break;
	case PROTO_OP_SIGN_RRSET:
		e = blob_copy(p->u.rrsig_wire, &rep->data);
		break;
	case PROTO_OP_IMPORT:
		rep->import_records = p->u.import.records;
		rep->zone_serial = p->u.import.zone_serial;
		break;
	}
	return e;
}

int regsign_client_hello(regsign_client *c, const char *client_name, struct regsign_reply *rep)
{
	struct regsign_request q = { .op = REGSIGN_OP_HELLO, .client_name = client_name };

	return regsign_client_call(c, &q, rep);
}

/* ISSUE and REISSUE: the same request but for the meaning of @p index. */
static int call_cert(regsign_client *c, enum regsign_op op, const char *device_id,
		     uint32_t index, const char *profile, const void *csr_der, size_t csr_len,
		     struct regsign_reply *rep)
{
	struct regsign_request q = { .op = op, .device_id = device_id, .index = index,
				     .profile = profile, .csr_der = csr_der, .csr_len = csr_len };

	return regsign_client_call(c, &q, rep);
}

int regsign_client_issue(regsign_client *c, const char *device_id, uint32_t index,
			 const char *profile, const void *csr_der, size_t csr_len,
			 struct regsign_reply *rep)
{
	return call_cert(c, REGSIGN_OP_ISSUE, device_id, index, profile, csr_der, csr_len, rep);
}

int regsign_client_revoke(regsign_client *c, const char *device_id, uint32_t index,
			  const char *serial_hex, const char *reason, struct regsign_reply *rep)
{
	struct regsign_request q = { .op = REGSIGN_OP_REVOKE, .device_id = device_id,
				     .index = index, .serial_hex = serial_hex,
				     .reason = reason };

	return regsign_client_call(c, &q, rep);
}

int regsign_client_reissue(regsign_client *c, const char *device_id, uint32_t old_index,
			   const char *profile, const void *csr_der, size_t csr_len,
			   struct regsign_reply *rep)
{
	return call_cert(c, REGSIGN_OP_REISSUE, device_id, old_index, profile, csr_der, csr_len,
			 rep);
}

static int call_simple(regsign_client *c, enum regsign_op op, struct regsign_reply *rep)
{
	struct regsign_request q = { .op = op };

	return regsign_client_call(c, &q, rep);
}

int regsign_client_crl(regsign_client *c, struct regsign_reply *rep)
{
	return call_simple(c, REGSIGN_OP_CRL, rep);
}

int regsign_client_chain(regsign_client *c, struct regsign_reply *rep)
{
	return call_simple(c, REGSIGN_OP_CHAIN, rep);
}

int regsign_client_status(regsign_client *c, struct regsign_reply *rep)
{
	return call_simple(c, REGSIGN_OP_STATUS, rep);
}

int regsign_client_zone_status(regsign_client *c, struct regsign_reply *rep)
{
	return call_simple(c, REGSIGN_OP_ZONE_STATUS, rep);
}

int regsign_client_publish(regsign_client *c, const char *owner, const char *rrtype,
			   uint32_t ttl, const char *rdata, struct regsign_reply *rep)
{
	struct regsign_request q = { .op = REGSIGN_OP_PUBLISH, .owner = owner,
				     .rrtype = rrtype, .ttl = ttl, .rdata = rdata };

	return regsign_client_call(c, &q, rep);
}

int regsign_client_unpublish(regsign_client *c, const char *owner, const char *rrtype,
			     const char *rdata, struct regsign_reply *rep)
{
	struct regsign_request q = { .op = REGSIGN_OP_UNPUBLISH, .owner = owner,
				     .rrtype = rrtype, .rdata = rdata };

	return regsign_client_call(c, &q, rep);
}

int regsign_client_sign_rrset(regsign_client *c, const char *zone, const void *rrset_wire,
			      size_t rrset_len, uint32_t inception, uint32_t expiration,
			      struct regsign_reply *rep)
{
	struct regsign_request q = { .op = REGSIGN_OP_SIGN_RRSET, .zone = zone,
				     .rrset_wire = rrset_wire, .rrset_len = rrset_len,
				     .inception = inception, .expiration = expiration };

	return regsign_client_call(c, &q, rep);
}

int regsign_client_import(regsign_client *c, uint32_t import_id, uint32_t seq, uint32_t flags,
			  uint32_t idle_timeout, const void *records, size_t records_len,
			  struct regsign_reply *rep)
{
	struct regsign_request q = { .op = REGSIGN_OP_IMPORT, .import_id = import_id,
				     .import_seq = seq, .import_flags = flags,
				     .import_idle_timeout = idle_timeout, .records = records,
				     .records_len = records_len };

	return regsign_client_call(c, &q, rep);
}

int regsign_import_record_append(unsigned char **buf, size_t *len, size_t *cap,
				 const char *device_id, uint32_t index,
				 const unsigned char *cert_sha256, const unsigned char *spki_sha256,
				 const void *cert_der, size_t cert_len)
{
	struct proto_import_record rec;
	struct buf_writer w;
	uint8_t *out = NULL;
	size_t n = 0;
	int e;

	memset(&rec, 0, sizeof(rec));
	rec.device_id = proto_bytes_str(str_or_empty(device_id));
	rec.index = index;
	rec.cert_sha256.ptr = cert_sha256;
	rec.cert_sha256.len = cert_sha256 ? 32 : 0;
	rec.spki_sha256.ptr = spki_sha256;
	rec.spki_sha256.len = spki_sha256 ? 32 : 0;
	rec.cert_der.ptr = cert_der;
	rec.cert_der.len = cert_der ? cert_len : 0;
	buf_writer_init(&w, PROTO_REQUEST_MAX);
	e = proto_import_record_encode(&w, &rec);
	if (e == PROTO_OK)
		e = buf_writer_take(&w, &out, &n) == BUF_OK ? PROTO_OK : PROTO_ERR_NOMEM;
	buf_writer_release(&w);
	if (e != PROTO_OK)
		return e == PROTO_ERR_NOMEM ? REGSIGN_CLIENT_ERR_NOMEM : REGSIGN_CLIENT_ERR_INVALID;
	if (*len + n > *cap) {
		size_t ncap = *cap ? *cap : 4096;
		unsigned char *p;

		while (ncap < *len + n)
			ncap *= 2;
		if ((p = realloc(*buf, ncap)) == NULL) {
			free(out);
			return REGSIGN_CLIENT_ERR_NOMEM;
		}
		*buf = p;
		*cap = ncap;
	}
	memcpy(*buf + *len, out, n);
	*len += n;
	free(out);
	return REGSIGN_CLIENT_OK;
}
