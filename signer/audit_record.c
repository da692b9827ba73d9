/*
 * The audit record codec: canonical JSON writer and a strict parser.
 *
 * No JSON library is used on purpose: the verifier must refuse every line
 * that is not byte-for-byte the canonical form, so what is needed is a
 * writer with exactly one output per record and a bounded parser for this
 * one grammar (no floats, no null/true/false, no whitespace, a handful of
 * escapes). A general library would accept, and then hide, the very
 * variations the verifier exists to catch.
 */
#include "signer/audit_record.h"

#include <openssl/evp.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const type_names[] = {
	[AUDIT_T_REQUEST] = "request",
	[AUDIT_T_RESULT] = "result",
	[AUDIT_T_ABANDONED] = "abandoned",
	[AUDIT_T_EVENT] = "event",
	[AUDIT_T_CHECKPOINT] = "checkpoint",
};

const char *
audit_type_name(int type)
{
	if (type < AUDIT_T_REQUEST || type > AUDIT_T_CHECKPOINT)
		return NULL;
	return type_names[type];
}

static void
why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;
	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

void
audit_hex(const unsigned char *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

void
audit_line_hash(const char *line, size_t len, char hex[65])
{
	unsigned char md[32];
	SHA256((const unsigned char *)line, len, md);
	audit_hex(md, sizeof(md), hex);
}

void
audit_time_now(char out[25])
{
	struct timespec ts;
	struct tm tm;
	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	char ymdhms[24];
	/* strftime bounds every field, which snprintf's checker cannot see. */
	strftime(ymdhms, sizeof(ymdhms), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(out, 25, "%.19s.%03uZ", ymdhms, (unsigned)(ts.tv_nsec / 1000000) % 1000u);
}

/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0. */
static size_t
utf8_len(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	size_t len;
	uint32_t cp;
	if (c < 0x80)
		return 1;
	if (c >= 0xc2 && c <= 0xdf)
		len = 2, cp = c & 0x1f;
	else if (c >= 0xe0 && c <= 0xef)
		len = 3, cp = c & 0x0f;
	else if (c >= 0xf0 && c <= 0xf4)
		len = 4, cp = c & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	/* No overlong forms, no surrogates, nothing past U+10FFFF. */
	if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10ffff ||
	    (cp >= 0xd800 && cp <= 0xdfff))
		return 0;
	return len;
}

void
audit_text_copy(char *dst, size_t cap, const char *src)
{
	const unsigned char *s = (const unsigned char *)(src ? src : "");
	size_t n = strlen((const char *)s), o = 0;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_len(s + i, n - i);
		if (l == 0) {
			if (o + 1 >= cap)
				break;
			dst[o++] = '?';
			i++;
			continue;
		}
		if (o + l >= cap)
			break;
		memcpy(dst + o, s + i, l);
		o += l;
		i += l;
	}
	dst[o] = '\0';
}

/* ---- Field checks ---------------------------------------------------------- */

static int
is_hex(const char *s, size_t exact)
{
	size_t n = strlen(s);
	if (exact ? n != exact : (n == 0 || n % 2 != 0))
		return 0;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
			return 0;
	return 1;
}

/* Identifiers (op, event, role, input names): [a-z0-9._-], not empty. */
static int
is_ident(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '_' || *s == '-'))
			return 0;
	return 1;
}

static int
is_time(const char *t)
{
	static const char pat[] = "dddd-dd-ddTdd:dd:dd.dddZ";
	if (strlen(t) != sizeof(pat) - 1)
		return 0;
	for (size_t i = 0; pat[i]; i++) {
		if (pat[i] == 'd' ? (t[i] < '0' || t[i] > '9') : t[i] != pat[i])
			return 0;
	}
	int mon = (t[5] - '0') * 10 + t[6] - '0', day = (t[8] - '0') * 10 + t[9] - '0';
	int h = (t[11] - '0') * 10 + t[12] - '0', m = (t[14] - '0') * 10 + t[15] - '0';
	int s = (t[17] - '0') * 10 + t[18] - '0';
	return mon >= 1 && mon <= 12 && day >= 1 && day <= 31 && h <= 23 && m <= 59 && s <= 60;
}

static int
is_b64sig(const char *s)
{
	if (strlen(s) != 88 || strcmp(s + 86, "==") != 0)
		return 0;
	for (size_t i = 0; i < 86; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '+' || s[i] == '/'))
			return 0;
	return 1;
}

#define BAD(...) do { why_set(why, whylen, __VA_ARGS__); return AUDIT_EINVAL; } while (0)

int
audit_record_check(const struct audit_record *r, unsigned flags, char *why, size_t whylen)
{
	if (r->seq == 0 || r->seq > INT64_MAX)
		BAD("seq must be between 1 and 2^63-1");
	if (!is_time(r->time))
		BAD("time is not YYYY-MM-DDTHH:MM:SS.mmmZ");
	if (!is_hex(r->prev, 64))
		BAD("prev is not a hex SHA-256");
	switch (r->type) {
	case AUDIT_T_REQUEST:
		if (!is_ident(r->op))
			BAD("op missing or not [a-z0-9._-]");
		for (size_t i = 0; i < r->n_inputs; i++)
			if (!is_ident(r->inputs[i].name) || !is_hex(r->inputs[i].sha256, 64))
				BAD("input %zu needs a name and a hex SHA-256", i + 1);
		if (r->n_inputs > AUDIT_INPUTS_MAX)
			BAD("too many inputs");
		if (r->rule[0] == '\0')
			BAD("rule missing");
		if (r->policy[0] && !is_hex(r->policy, 64))
			BAD("policy is not a hex SHA-256");
		break;
	case AUDIT_T_RESULT:
		if (!is_ident(r->op))
			BAD("op missing or not [a-z0-9._-]");
		if (r->serial[0] && !is_hex(r->serial, 0))
			BAD("serial is not hex");
		if (r->cert[0] && !is_hex(r->cert, 64))
			BAD("cert is not a hex SHA-256");
		if (r->ref == 0 || r->ref >= r->seq)
			BAD("ref must name an earlier record");
		break;
	case AUDIT_T_ABANDONED:
		if (r->ref == 0 || r->ref >= r->seq)
			BAD("ref must name an earlier record");
		break;
	case AUDIT_T_EVENT:
		if (!is_ident(r->event))
			BAD("event missing or not [a-z0-9._-]");
		break;
	case AUDIT_T_CHECKPOINT:
		if (!is_hex(r->head, 64))
			BAD("head is not a hex SHA-256");
		if (r->count == 0)
			BAD("count missing");
		if (r->n_sigs > AUDIT_ROLES_MAX)
			BAD("too many roles");
		for (size_t i = 0; i < r->n_sigs; i++)
			if (!is_ident(r->sigs[i].role))
				BAD("role %zu is not [a-z0-9._-]", i + 1);
		if (!(flags & AUDIT_FMT_NO_SIG) && !is_b64sig(r->sig))
			BAD("sig is not base64 of a 64-byte signature");
		break;
	default:
		BAD("unknown type");
	}
	return 0;
}

/* ---- Writer ------------------------------------------------------------------ */

struct sb {
	char *p;
	size_t cap, len;
	int over;
};

static void
sb_raw(struct sb *b, const char *s, size_t n)
{
	if (b->over || n >= b->cap - b->len) {
		b->over = 1;
		return;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void
sb_str(struct sb *b, const char *s)
{
	char esc[8];
	sb_raw(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		const char *e = NULL;
		switch (c) {
		case '"': e = "\\\""; break;
		case '\\': e = "\\\\"; break;
		case '\b': e = "\\b"; break;
		case '\f': e = "\\f"; break;
		case '\n': e = "\\n"; break;
		case '\r': e = "\\r"; break;
		case '\t': e = "\\t"; break;
		default:
			if (c < 0x20) {
				snprintf(esc, sizeof(esc), "\\u%04x", c);
				e = esc;
			}
		}
		if (e)
			sb_raw(b, e, strlen(e));
		else
			sb_raw(b, s, 1);
	}
	sb_raw(b, "\"", 1);
}

static void
sb_key(struct sb *b, const char *k)
{
	/* Every member but the first of an object is preceded by a comma. */
	if (b->len > 0 && b->p[b->len - 1] != '{')
		sb_raw(b, ",", 1);
	sb_str(b, k);
	sb_raw(b, ":", 1);
}

static void
sb_kstr(struct sb *b, const char *k, const char *v)
{
	sb_key(b, k);
	sb_str(b, v);
}

static void
sb_kint(struct sb *b, const char *k, int64_t v, int is_signed, uint64_t u)
{
	char num[24];
	if (is_signed)
		snprintf(num, sizeof(num), "%lld", (long long)v);
	else
		snprintf(num, sizeof(num), "%llu", (unsigned long long)u);
	sb_key(b, k);
	sb_raw(b, num, strlen(num));
}

#define KU(b, k, v) sb_kint(b, k, 0, 0, (uint64_t)(v))
#define KI(b, k, v) sb_kint(b, k, (int64_t)(v), 1, 0)

static void
format_request(struct sb *b, const struct audit_record *r)
{
	sb_key(b, "caller");
	sb_raw(b, "{", 1);
	KU(b, "uid", r->uid);
	KU(b, "gid", r->gid);
	KI(b, "pid", r->pid);
	sb_kstr(b, "name", r->caller_name);
	sb_raw(b, "}", 1);
	sb_kstr(b, "op", r->op);
	if (r->device[0])
		sb_kstr(b, "device", r->device);
	if (r->index)
		KU(b, "index", r->index);
	if (r->n_inputs) {
		sb_key(b, "inputs");
		sb_raw(b, "[", 1);
		for (size_t i = 0; i < r->n_inputs; i++) {
			sb_raw(b, i ? ",{" : "{", i ? 2 : 1);
			sb_kstr(b, "name", r->inputs[i].name);
			sb_kstr(b, "sha256", r->inputs[i].sha256);
			sb_raw(b, "}", 1);
		}
		sb_raw(b, "]", 1);
	}
	sb_kstr(b, "decision", r->allow ? "allow" : "deny");
	sb_kstr(b, "rule", r->rule);
	if (r->policy[0])
		sb_kstr(b, "policy", r->policy);
}

static void
format_result(struct sb *b, const struct audit_record *r)
{
	KU(b, "ref", r->ref);
	sb_kstr(b, "op", r->op);
	if (r->device[0])
		sb_kstr(b, "device", r->device);
	if (r->index)
		KU(b, "index", r->index);
	KI(b, "error", r->error);
	if (r->serial[0])
		sb_kstr(b, "serial", r->serial);
	if (r->cert[0])
		sb_kstr(b, "cert", r->cert);
	if (r->has_zone_serial)
		KU(b, "zone_serial", r->zone_serial);
}

static void
format_checkpoint(struct sb *b, const struct audit_record *r, unsigned flags)
{
	sb_kstr(b, "head", r->head);
	KU(b, "count", r->count);
	sb_key(b, "sigs");
	sb_raw(b, "[", 1);
	for (size_t i = 0; i < r->n_sigs; i++) {
		sb_raw(b, i ? ",{" : "{", i ? 2 : 1);
		sb_kstr(b, "role", r->sigs[i].role);
		KU(b, "count", r->sigs[i].count);
		sb_raw(b, "}", 1);
	}
	sb_raw(b, "]", 1);
	if (!(flags & AUDIT_FMT_NO_SIG))
		sb_kstr(b, "sig", r->sig);
}

int
audit_record_format(const struct audit_record *r, unsigned flags, char *buf, size_t cap,
                    size_t *len)
{
	struct sb b = { buf, cap, 0, 0 };
	int rc;

	if (cap == 0)
		return AUDIT_EFORMAT;
	buf[0] = '\0';
	if ((rc = audit_record_check(r, flags, NULL, 0)) != 0)
		return rc;
	sb_raw(&b, "{", 1);
	KU(&b, "seq", r->seq);
	sb_kstr(&b, "time", r->time);
	sb_kstr(&b, "prev", r->prev);
	sb_kstr(&b, "type", audit_type_name(r->type));
	switch (r->type) {
	case AUDIT_T_REQUEST: format_request(&b, r); break;
	case AUDIT_T_RESULT: format_result(&b, r); break;
	case AUDIT_T_ABANDONED: KU(&b, "ref", r->ref); break;
	case AUDIT_T_EVENT: sb_kstr(&b, "event", r->event); break;
	case AUDIT_T_CHECKPOINT: format_checkpoint(&b, r, flags); break;
	}
	if (r->detail[0] && r->type != AUDIT_T_CHECKPOINT)
		sb_kstr(&b, "detail", r->detail);
	sb_raw(&b, "}", 1);
	if (b.over || b.len > AUDIT_LINE_MAX)
		return AUDIT_EFORMAT;
	if (len)
		*len = b.len;
	return 0;
}

int
audit_checkpoint_message(const struct audit_record *r, unsigned char **msg, size_t *len)
{
	char *line = NULL;
	unsigned char *m = NULL;
	size_t n;
	int rc;

	if (r->type != AUDIT_T_CHECKPOINT)
		return AUDIT_EINVAL;
	if ((line = malloc(AUDIT_LINE_MAX + 1)) == NULL)
		return AUDIT_ENOMEM;
	if ((rc = audit_record_format(r, AUDIT_FMT_NO_SIG, line, AUDIT_LINE_MAX + 1, &n)) != 0)
		goto out;
	rc = AUDIT_ENOMEM;
	if ((m = malloc(AUDIT_CHECKPOINT_DOMAIN_LEN + n)) == NULL)
		goto out;
	memcpy(m, AUDIT_CHECKPOINT_DOMAIN, AUDIT_CHECKPOINT_DOMAIN_LEN); /* with its NUL */
	memcpy(m + AUDIT_CHECKPOINT_DOMAIN_LEN, line, n);
	*msg = m;
	*len = AUDIT_CHECKPOINT_DOMAIN_LEN + n;
	m = NULL;
	rc = 0;
out:
	free(line);
	free(m);
	return rc;
}

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
		why_set(p->why, p->whylen, "%s%s%s%s at column %zu", what, arg ? " \"" : "",
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
			if ((l = utf8_len(p->s + p->i, p->n - p->i)) == 0)
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
		why_set(why, whylen, "line longer than %d bytes", AUDIT_LINE_MAX);
		goto out;
	}
	if (jobject(&p, top_member, &c))
		goto out;
	if (p.i != len) {
		jfail(&p, "trailing bytes after the record", NULL);
		goto out;
	}
	if (r->type == 0) {
		why_set(why, whylen, "missing key \"type\"");
		goto out;
	}
	for (int k = 0; k < K_NKEYS; k++) {
		if ((c.seen & B(k)) && !(allowed[r->type] & B(k))) {
			why_set(why, whylen, "key \"%s\" not allowed in a %s record", key_names[k],
			        audit_type_name(r->type));
			goto out;
		}
		if (!(c.seen & B(k)) && (required[r->type] & B(k))) {
			why_set(why, whylen, "missing key \"%s\"", key_names[k]);
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
		why_set(why, whylen, "record cannot be serialised");
		goto out;
	}
	/* The byte comparison is what makes the form canonical: key order,
	 * optional members, numbers and escapes all have exactly one spelling. */
	for (i = 0; i < clen && i < len && canon[i] == line[i]; i++)
		;
	if (i != clen || i != len) {
		why_set(why, whylen, "not in canonical form (differs at column %zu)", i + 1);
		goto out;
	}
	rc = 0;
out:
	free(canon);
	return rc;
}
