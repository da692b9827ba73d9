/*
 * The strict parser of audit record lines. See audit_record.h.
 *
 * It understands exactly the grammar the writer produces (objects,
 * arrays of objects, strings with the writer's escapes, integers) with
 * every read bounded by the line, then proves canonicity by formatting the
 * parsed record again and comparing bytes.
 */
#include "signer/audit_int.h"
#include "signer/audit_record.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Strict parser ---------------------------------------------------------- */

struct jp {
	const unsigned char *s;
	size_t n, i;
	char *why;
	size_t whylen;
	int failed;
};

static int
jfail(struct jp *p, const char *what, const char *arg)
{
	if (!p->failed)
		audit__why_set(p->why, p->whylen, "%s%s%s%s at column %zu", what, arg ? " \"" : "",
		        arg ? arg : "", arg ? "\"" : "", p->i + 1);
	p->failed = 1;
	return -1;
}

static int
jpeek(const struct jp *p)
{
	return p->i < p->n ? p->s[p->i] : -1;
}

static int
jexpect(struct jp *p, int c)
{
	char what[32];
	if (jpeek(p) == c) {
		p->i++;
		return 0;
	}
	snprintf(what, sizeof(what), "expected '%c'", c);
	return jfail(p, what, NULL);
}

static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* A string into @p dst (NUL-terminated, at most cap-1 bytes). Only the
 * escapes the writer can produce are understood; anything else could only
 * come from a non-canonical line. */
static int
jstring(struct jp *p, char *dst, size_t cap)
{
	size_t o = 0, l;
	char c1;
	if (jexpect(p, '"'))
		return -1;
	for (;;) {
		int c = jpeek(p);
		const char *src = (const char *)p->s + p->i;
		if (c < 0)
			return jfail(p, "unterminated string", NULL);
		if (c == '"') {
			p->i++;
			break;
		}
		if (c < 0x20)
			return jfail(p, "raw control character in a string", NULL);
		if (c == '\\') {
			if (p->i + 1 >= p->n)
				return jfail(p, "unterminated escape", NULL);
			switch (p->s[p->i + 1]) {
			case '"': c1 = '"'; break;
			case '\\': c1 = '\\'; break;
			case 'b': c1 = '\b'; break;
			case 'f': c1 = '\f'; break;
			case 'n': c1 = '\n'; break;
			case 'r': c1 = '\r'; break;
			case 't': c1 = '\t'; break;
			case 'u': {
				int v = 0;
				if (p->i + 6 > p->n)
					return jfail(p, "short \\u escape", NULL);
				for (int k = 2; k < 6; k++) {
					int h = hexval(p->s[p->i + k]);
					if (h < 0)
						return jfail(p, "bad \\u escape", NULL);
					v = v * 16 + h;
				}
				if (v == 0 || v >= 0x20)
					return jfail(p, "\\u escape of a character that is never escaped", NULL);
				c1 = (char)v;
				p->i += 4;
				break;
			}
			default:
				return jfail(p, "escape not used in audit records", NULL);
			}
			p->i += 2;
			src = &c1;
			l = 1;
		} else {
			if ((l = audit__utf8_len(p->s + p->i, p->n - p->i)) == 0)
				return jfail(p, "invalid UTF-8", NULL);
			p->i += l;
		}
		if (o + l >= cap)
			return jfail(p, "string too long", NULL);
		memcpy(dst + o, src, l);
		o += l;
	}
	dst[o] = '\0';
	return 0;
}

/* A decimal integer within [-max_neg, max]. */
static int
jint(struct jp *p, uint64_t max, uint64_t max_neg, int64_t *sv, uint64_t *uv)
{
	int neg = 0;
	uint64_t v = 0;
	size_t start;
	if (jpeek(p) == '-') {
		if (max_neg == 0)
			return jfail(p, "negative number", NULL);
		neg = 1;
		p->i++;
	}
	start = p->i;
	while (jpeek(p) >= '0' && jpeek(p) <= '9') {
		unsigned d = (unsigned)(p->s[p->i] - '0');
		if (v > (UINT64_MAX - d) / 10)
			return jfail(p, "number too large", NULL);
		v = v * 10 + d;
		p->i++;
	}
	if (p->i == start)
		return jfail(p, "expected a number", NULL);
	if (neg ? v > max_neg : v > max)
		return jfail(p, "number out of range", NULL);
	if (uv)
		*uv = v;
	if (sv)
		*sv = neg ? -(int64_t)v : (int64_t)v;
	return 0;
}

static int
ju64(struct jp *p, uint64_t max, uint64_t *out)
{
	return jint(p, max, 0, NULL, out);
}

static int
ju32(struct jp *p, uint32_t *out)
{
	uint64_t v;
	if (jint(p, UINT32_MAX, 0, NULL, &v))
		return -1;
	*out = (uint32_t)v;
	return 0;
}

static int
ji32(struct jp *p, int32_t *out)
{
	int64_t v;
	if (jint(p, INT32_MAX, (uint64_t)INT32_MAX + 1, &v, NULL))
		return -1;
	*out = (int32_t)v;
	return 0;
}

typedef int (*jmember_fn)(struct jp *p, const char *key, void *ctx);

static int
jobject(struct jp *p, jmember_fn fn, void *ctx)
{
	char key[24];
	if (jexpect(p, '{'))
		return -1;
	if (jpeek(p) == '}') {
		p->i++;
		return 0;
	}
	for (;;) {
		if (jstring(p, key, sizeof(key)) || jexpect(p, ':') || fn(p, key, ctx))
			return -1;
		if (jpeek(p) != ',')
			return jexpect(p, '}');
		p->i++;
	}
}

/* An array of objects; @p fn gets the element number as its context. */
static int
jarray(struct jp *p, size_t max, size_t *count, jmember_fn fn, void *ctx, size_t *cur)
{
	if (jexpect(p, '['))
		return -1;
	*count = 0;
	if (jpeek(p) == ']') {
		p->i++;
		return 0;
	}
	for (;;) {
		if (*count >= max)
			return jfail(p, "too many array elements", NULL);
		*cur = *count;
		if (jobject(p, fn, ctx))
			return -1;
		(*count)++;
		if (jpeek(p) != ',')
			return jexpect(p, ']');
		p->i++;
	}
}

struct pctx {
	struct audit_record *r;
	uint32_t seen;
	size_t cur; /* element of inputs/sigs being parsed */
};

static int
caller_member(struct jp *p, const char *key, void *ctx)
{
	struct audit_record *r = ((struct pctx *)ctx)->r;
	if (strcmp(key, "uid") == 0)
		return ju32(p, &r->uid);
	if (strcmp(key, "gid") == 0)
		return ju32(p, &r->gid);
	if (strcmp(key, "pid") == 0)
		return ji32(p, &r->pid);
	if (strcmp(key, "name") == 0)
		return jstring(p, r->caller_name, sizeof(r->caller_name));
	return jfail(p, "unknown caller key", key);
}

static int
input_member(struct jp *p, const char *key, void *ctx)
{
	struct pctx *c = ctx;
	struct audit_rec_input *in = &c->r->inputs[c->cur];
	if (strcmp(key, "name") == 0)
		return jstring(p, in->name, sizeof(in->name));
	if (strcmp(key, "sha256") == 0)
		return jstring(p, in->sha256, sizeof(in->sha256));
	return jfail(p, "unknown input key", key);
}

static int
role_member(struct jp *p, const char *key, void *ctx)
{
	struct pctx *c = ctx;
	struct audit_rec_role *ro = &c->r->sigs[c->cur];
	if (strcmp(key, "role") == 0)
		return jstring(p, ro->role, sizeof(ro->role));
	if (strcmp(key, "count") == 0)
		return ju64(p, INT64_MAX, &ro->count);
	return jfail(p, "unknown sigs key", key);
}

enum {
	K_SEQ, K_TIME, K_PREV, K_TYPE, K_CALLER, K_OP, K_DEVICE, K_INDEX, K_INPUTS, K_DECISION,
	K_RULE, K_POLICY, K_REF, K_ERROR, K_SERIAL, K_CERT, K_ZONE_SERIAL, K_EVENT, K_HEAD,
	K_COUNT, K_SIGS, K_SIG, K_DETAIL, K_NKEYS
};

static const char *const key_names[K_NKEYS] = {
	"seq", "time", "prev", "type", "caller", "op", "device", "index", "inputs", "decision",
	"rule", "policy", "ref", "error", "serial", "cert", "zone_serial", "event", "head",
	"count", "sigs", "sig", "detail",
};

#define B(k) (1u << (k))
#define COMMON (B(K_SEQ) | B(K_TIME) | B(K_PREV) | B(K_TYPE))

/* Members each type may have, and must have. */
static const uint32_t allowed[] = {
	[AUDIT_T_REQUEST] = COMMON | B(K_CALLER) | B(K_OP) | B(K_DEVICE) | B(K_INDEX) |
		B(K_INPUTS) | B(K_DECISION) | B(K_RULE) | B(K_POLICY) | B(K_DETAIL),
	[AUDIT_T_RESULT] = COMMON | B(K_REF) | B(K_OP) | B(K_DEVICE) | B(K_INDEX) | B(K_ERROR) |
		B(K_SERIAL) | B(K_CERT) | B(K_ZONE_SERIAL) | B(K_DETAIL),
	[AUDIT_T_ABANDONED] = COMMON | B(K_REF) | B(K_DETAIL),
	[AUDIT_T_EVENT] = COMMON | B(K_EVENT) | B(K_DETAIL),
	[AUDIT_T_CHECKPOINT] = COMMON | B(K_HEAD) | B(K_COUNT) | B(K_SIGS) | B(K_SIG),
};
static const uint32_t required[] = {
	[AUDIT_T_REQUEST] = COMMON | B(K_CALLER) | B(K_OP) | B(K_DECISION) | B(K_RULE),
	[AUDIT_T_RESULT] = COMMON | B(K_REF) | B(K_OP) | B(K_ERROR),
	[AUDIT_T_ABANDONED] = COMMON | B(K_REF),
	[AUDIT_T_EVENT] = COMMON | B(K_EVENT),
	[AUDIT_T_CHECKPOINT] = COMMON | B(K_HEAD) | B(K_COUNT) | B(K_SIGS) | B(K_SIG),
};

static int
top_member(struct jp *p, const char *key, void *ctx)
{
	struct pctx *c = ctx;
	struct audit_record *r = c->r;
	char word[16];
	int k;

	for (k = 0; k < K_NKEYS; k++)
		if (strcmp(key, key_names[k]) == 0)
			break;
	if (k == K_NKEYS)
		return jfail(p, "unknown key", key);
	if (c->seen & B(k))
		return jfail(p, "duplicate key", key);
	c->seen |= B(k);
	switch (k) {
	case K_SEQ: return ju64(p, INT64_MAX, &r->seq);
	case K_TIME: return jstring(p, r->time, sizeof(r->time));
	case K_PREV: return jstring(p, r->prev, sizeof(r->prev));
	case K_TYPE:
		if (jstring(p, word, sizeof(word)))
			return -1;
		for (r->type = AUDIT_T_REQUEST; r->type <= AUDIT_T_CHECKPOINT; r->type++)
			if (strcmp(word, audit_type_name(r->type)) == 0)
				return 0;
		r->type = 0;
		return jfail(p, "unknown record type", word);
	case K_CALLER: return jobject(p, caller_member, c);
	case K_OP: return jstring(p, r->op, sizeof(r->op));
	case K_DEVICE: return jstring(p, r->device, sizeof(r->device));
	case K_INDEX: return ju32(p, &r->index);
	case K_INPUTS:
		return jarray(p, AUDIT_INPUTS_MAX, &r->n_inputs, input_member, c, &c->cur);
	case K_DECISION:
		if (jstring(p, word, sizeof(word)))
			return -1;
		if (strcmp(word, "allow") != 0 && strcmp(word, "deny") != 0)
			return jfail(p, "decision is neither allow nor deny", word);
		r->allow = word[0] == 'a';
		return 0;
	case K_RULE: return jstring(p, r->rule, sizeof(r->rule));
	case K_POLICY: return jstring(p, r->policy, sizeof(r->policy));
	case K_REF: return ju64(p, INT64_MAX, &r->ref);
	case K_ERROR: return ji32(p, &r->error);
	case K_SERIAL: return jstring(p, r->serial, sizeof(r->serial));
	case K_CERT: return jstring(p, r->cert, sizeof(r->cert));
	case K_ZONE_SERIAL:
		r->has_zone_serial = 1;
		return ju32(p, &r->zone_serial);
	case K_EVENT: return jstring(p, r->event, sizeof(r->event));
	case K_HEAD: return jstring(p, r->head, sizeof(r->head));
	case K_COUNT: return ju64(p, INT64_MAX, &r->count);
	case K_SIGS: return jarray(p, AUDIT_ROLES_MAX, &r->n_sigs, role_member, c, &c->cur);
	case K_SIG: return jstring(p, r->sig, sizeof(r->sig));
	default: return jstring(p, r->detail, sizeof(r->detail));
	}
}

int
audit_record_parse(const char *line, size_t len, struct audit_record *r, char *why,
                   size_t whylen)
{
	struct jp p = { (const unsigned char *)line, len, 0, why, whylen, 0 };
	struct pctx c = { r, 0, 0 };
	char *canon = NULL;
	size_t clen, i;
	int rc = AUDIT_EFORMAT;

	memset(r, 0, sizeof(*r));
	if (len > AUDIT_LINE_MAX) {
		audit__why_set(why, whylen, "line longer than %d bytes", AUDIT_LINE_MAX);
		goto out;
	}
	if (jobject(&p, top_member, &c))
		goto out;
	if (p.i != len) {
		jfail(&p, "trailing bytes after the record", NULL);
		goto out;
	}
	if (r->type == 0) {
		audit__why_set(why, whylen, "missing key \"type\"");
		goto out;
	}
	for (int k = 0; k < K_NKEYS; k++) {
		if ((c.seen & B(k)) && !(allowed[r->type] & B(k))) {
			audit__why_set(why, whylen, "key \"%s\" not allowed in a %s record", key_names[k],
			        audit_type_name(r->type));
			goto out;
		}
		if (!(c.seen & B(k)) && (required[r->type] & B(k))) {
			audit__why_set(why, whylen, "missing key \"%s\"", key_names[k]);
			goto out;
		}
	}
	if (audit_record_check(r, 0, why, whylen) != 0)
		goto out;
	if ((canon = malloc(AUDIT_LINE_MAX + 1)) == NULL) {
		rc = AUDIT_ENOMEM;
		goto out;
	}
	if (audit_record_format(r, 0, canon, AUDIT_LINE_MAX + 1, &clen) != 0) {
		audit__why_set(why, whylen, "record cannot be serialised");
		goto out;
	}
	/* The byte comparison is what makes the form canonical: key order,
	 * optional members, numbers and escapes all have exactly one spelling. */
	for (i = 0; i < clen && i < len && canon[i] == line[i]; i++)
		;
	if (i != clen || i != len) {
		audit__why_set(why, whylen, "not in canonical form (differs at column %zu)", i + 1);
		goto out;
	}
	rc = 0;
out:
	free(canon);
	return rc;
}
