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
#include "signer/audit_int.h"

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

void
audit__why_set(char *why, size_t whylen, const char *fmt, ...)
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
audit__line_hash(audit_log_t *a, const char *line, size_t len, char hex[65])
{
	unsigned char md[32];
	unsigned int n = 0;
	/* The handle's context is reused from record to record; should OpenSSL
	 * ever fail here, the one-shot call gives the same digest. */
	if (a->mdctx != NULL && EVP_DigestInit_ex2(a->mdctx, a->sha256, NULL) == 1 &&
	    EVP_DigestUpdate(a->mdctx, line, len) == 1 &&
	    EVP_DigestFinal_ex(a->mdctx, md, &n) == 1 && n == sizeof(md)) {
		audit_hex(md, sizeof(md), hex);
		return;
	}
	audit_line_hash(line, len, hex);
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

void
audit__time_now(audit_log_t *a, char out[25])
{
	struct timespec ts;
	unsigned ms;
	clock_gettime(CLOCK_REALTIME, &ts);
	if (a->time_prefix[0] == '\0' || (int64_t)ts.tv_sec != a->time_sec) {
		struct tm tm;
		char ymdhms[24];
		gmtime_r(&ts.tv_sec, &tm);
		strftime(ymdhms, sizeof(ymdhms), "%Y-%m-%dT%H:%M:%S", &tm);
		/* The first 19 characters, as audit_time_now() takes them. */
		snprintf(a->time_prefix, sizeof(a->time_prefix), "%.19s", ymdhms);
		a->time_sec = (int64_t)ts.tv_sec;
	}
	ms = (unsigned)(ts.tv_nsec / 1000000) % 1000u;
	/* "%.19s.%03uZ", written without printf. */
	size_t n = strlen(a->time_prefix);
	memcpy(out, a->time_prefix, n);
	out[n] = '.';
	out[n + 1] = (char)('0' + ms / 100);
	out[n + 2] = (char)('0' + ms / 10 % 10);
	out[n + 3] = (char)('0' + ms % 10);
	out[n + 4] = 'Z';
	out[n + 5] = '\0';
}

/* Length of the valid UTF-8 sequence at @p s (at most @p n bytes), or 0. */
size_t
audit__utf8_len(const unsigned char *s, size_t n)
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
		size_t l;
		/* A run of ASCII (most text) is copied at once, as far as it fits. */
		if (s[i] < 0x80) {
			size_t run = 1;
			while (i + run < n && s[i + run] < 0x80)
				run++;
			if (run > cap - 1 - o)
				run = cap - 1 - o;
			if (run == 0)
				break;
			memcpy(dst + o, s + i, run);
			o += run;
			i += run;
			continue;
		}
		l = audit__utf8_len(s + i, n - i);
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

/* Identifiers (op, event, input names): [a-z0-9._-], not empty; roles may also hold
 * '/' ("asp.test./zsk", the key of an extra zone). */
static int
is_ident_ex(const char *s, int slash)
{
	if (*s == '\0')
		return 0;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '_' || *s == '-' || (slash && *s == '/')))
			return 0;
	return 1;
}

static int
is_ident(const char *s)
{
	return is_ident_ex(s, 0);
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

#define BAD(...) do { audit__why_set(why, whylen, __VA_ARGS__); return AUDIT_EINVAL; } while (0)

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
			if (!is_ident_ex(r->sigs[i].role, 1))
				BAD("role %zu is not [a-z0-9._/-]", i + 1);
		if (!(flags & AUDIT_FMT_NO_SIG) && !is_b64sig(r->sig))
			BAD("sig is not base64 of a 64-byte signature");
		break;
	default:
		BAD("unknown type");
	}
	return 0;
}

/* ---- Writer ------------------------------------------------------------------ */

/*
 * The writer appends to a bounded buffer and only marks overflow; the
 * caller learns of it once, at the end. It is on the daemon's hot path
 * (two records per signing request), so members are written without
 * printf: keys are constant identifiers copied as they are, the members
 * audit_record_check() has already proved to be hex, base64, time or
 * identifiers are copied without an escape scan, and only free text goes
 * through the escaper.
 */
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
}

/* Bytes that need an escape in a JSON string: '"', '\\' and the controls. */
static int
needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

/* A JSON string of free text: escapes exactly '"', '\\' and the controls. */
static void
sb_str(struct sb *b, const char *s)
{
	static const char hexd[] = "0123456789abcdef";
	char esc[6] = { '\\', 'u', '0', '0', 0, 0 };
	sb_raw(b, "\"", 1);
	while (*s) {
		/* Copy the run of characters that need no escape in one go. */
		size_t run = 0;
		while (s[run] && !needs_escape((unsigned char)s[run]))
			run++;
		if (run) {
			sb_raw(b, s, run);
			s += run;
			continue;
		}
		switch (*s) {
		case '"': sb_raw(b, "\\\"", 2); break;
		case '\\': sb_raw(b, "\\\\", 2); break;
		case '\b': sb_raw(b, "\\b", 2); break;
		case '\f': sb_raw(b, "\\f", 2); break;
		case '\n': sb_raw(b, "\\n", 2); break;
		case '\r': sb_raw(b, "\\r", 2); break;
		case '\t': sb_raw(b, "\\t", 2); break;
		default:
			esc[4] = hexd[((unsigned char)*s >> 4) & 15];
			esc[5] = hexd[(unsigned char)*s & 15];
			sb_raw(b, esc, sizeof(esc));
		}
		s++;
	}
	sb_raw(b, "\"", 1);
}

/* A JSON string whose characters are known to need no escape (checked hex,
 * base64, time, identifiers and the constant type names). */
static void
sb_plain(struct sb *b, const char *s)
{
	sb_raw(b, "\"", 1);
	sb_raw(b, s, strlen(s));
	sb_raw(b, "\"", 1);
}

/* The member name @p k (an identifier, nothing to escape) with its colon. */
static void
sb_key_n(struct sb *b, const char *k, size_t klen)
{
	/* Every member but the first of an object is preceded by a comma. */
	if (b->len > 0 && b->p[b->len - 1] != '{')
		sb_raw(b, ",", 1);
	sb_raw(b, "\"", 1);
	sb_raw(b, k, klen);
	sb_raw(b, "\":", 2);
}

#define sb_key(b, k) sb_key_n(b, k, sizeof(k) - 1)
/* Member with free text, and member whose value needs no escaping. */
#define sb_kstr(b, k, v) do { sb_key(b, k); sb_str(b, v); } while (0)
#define sb_kplain(b, k, v) do { sb_key(b, k); sb_plain(b, v); } while (0)

/* Decimal without leading zeros, as "%llu" / "%lld" would write it. */
static void
sb_num(struct sb *b, int neg, uint64_t u)
{
	char num[24];
	size_t i = sizeof(num);
	do {
		num[--i] = (char)('0' + u % 10);
		u /= 10;
	} while (u);
	if (neg)
		num[--i] = '-';
	sb_raw(b, num + i, sizeof(num) - i);
}

static void
sb_int(struct sb *b, int64_t v)
{
	/* The magnitude of INT64_MIN only fits in the unsigned type. */
	sb_num(b, v < 0, v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v);
}

#define KU(b, k, v) do { sb_key(b, k); sb_num(b, 0, (uint64_t)(v)); } while (0)
#define KI(b, k, v) do { sb_key(b, k); sb_int(b, (int64_t)(v)); } while (0)

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
	sb_kplain(b, "op", r->op);
	if (r->device[0])
		sb_kstr(b, "device", r->device);
	if (r->index)
		KU(b, "index", r->index);
	if (r->n_inputs) {
		sb_key(b, "inputs");
		sb_raw(b, "[", 1);
		for (size_t i = 0; i < r->n_inputs; i++) {
			sb_raw(b, i ? ",{" : "{", i ? 2 : 1);
			sb_kplain(b, "name", r->inputs[i].name);
			sb_kplain(b, "sha256", r->inputs[i].sha256);
			sb_raw(b, "}", 1);
		}
		sb_raw(b, "]", 1);
	}
	sb_kplain(b, "decision", r->allow ? "allow" : "deny");
	sb_kstr(b, "rule", r->rule);
	if (r->policy[0])
		sb_kplain(b, "policy", r->policy);
}

static void
format_result(struct sb *b, const struct audit_record *r)
{
	KU(b, "ref", r->ref);
	sb_kplain(b, "op", r->op);
	if (r->device[0])
		sb_kstr(b, "device", r->device);
	if (r->index)
		KU(b, "index", r->index);
	KI(b, "error", r->error);
	if (r->serial[0])
		sb_kplain(b, "serial", r->serial);
	if (r->cert[0])
		sb_kplain(b, "cert", r->cert);
	if (r->has_zone_serial)
		KU(b, "zone_serial", r->zone_serial);
}

static void
format_checkpoint(struct sb *b, const struct audit_record *r, unsigned flags)
{
	sb_kplain(b, "head", r->head);
	KU(b, "count", r->count);
	sb_key(b, "sigs");
	sb_raw(b, "[", 1);
	for (size_t i = 0; i < r->n_sigs; i++) {
		sb_raw(b, i ? ",{" : "{", i ? 2 : 1);
		sb_kplain(b, "role", r->sigs[i].role);
		KU(b, "count", r->sigs[i].count);
		sb_raw(b, "}", 1);
	}
	sb_raw(b, "]", 1);
	if (!(flags & AUDIT_FMT_NO_SIG))
		sb_kplain(b, "sig", r->sig);
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
	/* The check is what allows sb_plain() for every member but free text. */
	if ((rc = audit_record_check(r, flags, NULL, 0)) != 0)
		return rc;
	sb_raw(&b, "{", 1);
	KU(&b, "seq", r->seq);
	sb_kplain(&b, "time", r->time);
	sb_kplain(&b, "prev", r->prev);
	sb_kplain(&b, "type", audit_type_name(r->type));
	switch (r->type) {
	case AUDIT_T_REQUEST: format_request(&b, r); break;
	case AUDIT_T_RESULT: format_result(&b, r); break;
	case AUDIT_T_ABANDONED: KU(&b, "ref", r->ref); break;
	case AUDIT_T_EVENT: sb_kplain(&b, "event", r->event); break;
	case AUDIT_T_CHECKPOINT: format_checkpoint(&b, r, flags); break;
	}
	if (r->detail[0] && r->type != AUDIT_T_CHECKPOINT)
		sb_kstr(&b, "detail", r->detail);
	sb_raw(&b, "}", 1);
	buf[b.len] = '\0'; /* sb_raw() always leaves room for it */
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
