/*
 * Presentation lines for the zone's own RR types (see zone_text.h). Each
 * function appends to a line buffer of ZONE_TEXT_MAX bytes; a piece that
 * would not fit, or RDATA that is not laid out as expected, makes the whole
 * RR ZONE_TEXT_OTHER, and the caller falls back to ldns.
 */
#include "zonesigner/zone_text.h"
#include "zonesigner/zone_internal.h"

#include <string.h>
#include <time.h>

#include <openssl/evp.h>

struct line {
	char *p;
	size_t len;
	bool bad;  /* does not fit or not the expected layout */
};

static void put(struct line *l, const char *s, size_t n)
{
	if (l->bad || n > ZONE_TEXT_MAX - l->len) {
		l->bad = true;
		return;
	}
	memcpy(l->p + l->len, s, n);
	l->len += n;
}

static void put_c(struct line *l, char c)
{
	put(l, &c, 1);
}

static void put_u(struct line *l, uint32_t v)
{
	char b[10];
	size_t i = sizeof(b);

	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	put(l, b + i, sizeof(b) - i);
}

/* A name in wire form, escaped as ldns_rdf2buffer_str_dname() does: the five
 * characters that mean something in a zone file get a backslash, anything
 * not printable ASCII (space included) becomes \DDD. */
static void put_name(struct line *l, const uint8_t *w, size_t len)
{
	size_t i = 0;

	if (len == 0 || w[len - 1] != 0) {
		l->bad = true;
		return;
	}
	if (w[0] == 0) {
		put_c(l, '.');
		return;
	}
	while (i < len - 1) {
		size_t ll = w[i++];

		if (ll == 0 || ll > 63 || ll > len - 1 - i) {
			l->bad = true;
			return;
		}
		for (size_t k = 0; k < ll; k++, i++) {
			uint8_t c = w[i];

			if (c == '.' || c == ';' || c == '(' || c == ')' || c == '\\') {
				put_c(l, '\\');
				put_c(l, (char)c);
			} else if (c <= 0x20 || c >= 0x7f) {
				char e[4] = { '\\', (char)('0' + c / 100), (char)('0' + c / 10 % 10),
					      (char)('0' + c % 10) };
				put(l, e, sizeof(e));
			} else {
				put_c(l, (char)c);
			}
		}
		put_c(l, '.');
	}
}

/* The length of the wire name at @p p (at most @p max bytes), 0 if malformed. */
static size_t name_len(const uint8_t *p, size_t max)
{
	size_t i = 0;

	while (i < max) {
		if (p[i] == 0)
			return i + 1;
		if (p[i] > 63)
			return 0;
		i += 1 + (size_t)p[i];
	}
	return 0;
}

static void put_b64(struct line *l, const uint8_t *d, size_t n)
{
	size_t out = 4 * ((n + 2) / 3);

	if (n == 0 || n > 65535 || l->bad || out + 1 > ZONE_TEXT_MAX - l->len) {
		l->bad = true;
		return;
	}
	/* EVP_EncodeBlock writes a terminating NUL after the text. */
	l->len += (size_t)EVP_EncodeBlock((unsigned char *)l->p + l->len, d, (int)n);
}

static void put_hex(struct line *l, const uint8_t *d, size_t n)
{
	static const char digits[] = "0123456789abcdef";

	if (n == 0) {
		l->bad = true;
		return;
	}
	for (size_t i = 0; i < n && !l->bad; i++) {
		char h[2] = { digits[d[i] >> 4], digits[d[i] & 15] };
		put(l, h, 2);
	}
}

/* An RRSIG time, YYYYMMDDHHmmSS, read as the instant nearest @p now. */
static void put_time(struct line *l, uint32_t t, int64_t now)
{
	int64_t abs = now + (int32_t)(t - (uint32_t)now);
	time_t tt = (time_t)abs;
	struct tm tm;
	char b[16];

	if (gmtime_r(&tt, &tm) == NULL || tm.tm_year + 1900 > 9999 || tm.tm_year + 1900 < 0 ||
	    strftime(b, sizeof(b), "%Y%m%d%H%M%S", &tm) != 14) {
		l->bad = true;
		return;
	}
	put(l, b, 14);
}

static const char *type_name(uint16_t type)
{
	switch (type) {
	case ZONE_RRTYPE_NS: return "NS";
	case ZONE_RRTYPE_SOA: return "SOA";
	case ZONE_RRTYPE_CERT: return "CERT";
	case ZONE_RRTYPE_RRSIG: return "RRSIG";
	case ZONE_RRTYPE_NSEC: return "NSEC";
	case ZONE_RRTYPE_DNSKEY: return "DNSKEY";
	case ZONE_RRTYPE_TLSA: return "TLSA";
	default: return NULL;
	}
}

static void put_type(struct line *l, uint16_t type)
{
	const char *s = type_name(type);

	if (s == NULL)
		l->bad = true;
	else
		put(l, s, strlen(s));
}

/* The NSEC type bitmap (RFC 4034 4.1.2): each type and a space, as ldns. */
static void put_bitmap(struct line *l, const uint8_t *p, size_t n)
{
	size_t i = 0;

	while (i < n && !l->bad) {
		unsigned window = p[i];
		size_t blen = i + 1 < n ? p[i + 1] : 0;

		if (blen == 0 || blen > 32 || blen > n - i - 2) {
			l->bad = true;
			return;
		}
		for (size_t b = 0; b < blen * 8; b++) {
			if (p[i + 2 + b / 8] & (0x80 >> (b % 8))) {
				put_type(l, (uint16_t)(window * 256 + b));
				put_c(l, ' ');
			}
		}
		i += 2 + blen;
	}
}

static void rdata_soa(struct line *l, const uint8_t *rd, size_t n)
{
	size_t a = name_len(rd, n), b = a ? name_len(rd + a, n - a) : 0;

	if (a == 0 || b == 0 || n != a + b + 20) {
		l->bad = true;
		return;
	}
	put_name(l, rd, a);
	put_c(l, ' ');
	put_name(l, rd + a, b);
	for (size_t i = 0; i < 5; i++) {
		put_c(l, ' ');
		put_u(l, zone_get32(rd + a + b + 4 * i));
	}
}

static void rdata_rrsig(struct line *l, const uint8_t *rd, size_t n, int64_t now)
{
	size_t s = n > 18 ? name_len(rd + 18, n - 18) : 0;

	if (s == 0 || n <= 18 + s) {
		l->bad = true;
		return;
	}
	put_type(l, zone_get16(rd));
	put_c(l, ' ');
	put_u(l, rd[2]);
	put_c(l, ' ');
	put_u(l, rd[3]);
	put_c(l, ' ');
	put_u(l, zone_get32(rd + 4));
	put_c(l, ' ');
	put_time(l, zone_get32(rd + 8), now);
	put_c(l, ' ');
	put_time(l, zone_get32(rd + 12), now);
	put_c(l, ' ');
	put_u(l, zone_get16(rd + 16));
	put_c(l, ' ');
	put_name(l, rd + 18, s);
	put_c(l, ' ');
	put_b64(l, rd + 18 + s, n - 18 - s);
}

static void rdata(struct line *l, uint16_t type, const uint8_t *rd, size_t n, int64_t now)
{
	size_t k;

	switch (type) {
	case ZONE_RRTYPE_NS:
		if (name_len(rd, n) != n)
			l->bad = true;
		else
			put_name(l, rd, n);
		break;
	case ZONE_RRTYPE_SOA:
		rdata_soa(l, rd, n);
		break;
	case ZONE_RRTYPE_DNSKEY:
		if (n <= 4) {
			l->bad = true;
			break;
		}
		put_u(l, zone_get16(rd));
		put_c(l, ' ');
		put_u(l, rd[2]);
		put_c(l, ' ');
		put_u(l, rd[3]);
		put_c(l, ' ');
		put_b64(l, rd + 4, n - 4);
		break;
	case ZONE_RRTYPE_CERT:
		/* ldns names the certificate types; only PKIX is ours. */
		if (n <= 5 || zone_get16(rd) != 1) {
			l->bad = true;
			break;
		}
		put(l, "PKIX ", 5);
		put_u(l, zone_get16(rd + 2));
		put_c(l, ' ');
		put_u(l, rd[4]);
		put_c(l, ' ');
		put_b64(l, rd + 5, n - 5);
		break;
	case ZONE_RRTYPE_TLSA:
		if (n <= 3) {
			l->bad = true;
			break;
		}
		for (size_t i = 0; i < 3; i++) {
			put_u(l, rd[i]);
			put_c(l, ' ');
		}
		put_hex(l, rd + 3, n - 3);
		break;
	case ZONE_RRTYPE_NSEC:
		k = name_len(rd, n);
		if (k == 0 || k == n) {
			l->bad = true;
			break;
		}
		put_name(l, rd, k);
		put_c(l, ' ');
		put_bitmap(l, rd + k, n - k);
		break;
	case ZONE_RRTYPE_RRSIG:
		rdata_rrsig(l, rd, n, now);
		break;
	default:
		l->bad = true;
	}
}

int zone_text_rr(const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
		 const uint8_t *rd, size_t rdlen, int64_t now, char *out, size_t *len)
{
	struct line l = { out, 0, false };

	*len = 0;
	if (name_len(owner, ownerlen) != ownerlen)
		return ZONE_EFORMAT;
	if (type_name(type) == NULL)
		return ZONE_TEXT_OTHER;
	put_name(&l, owner, ownerlen);
	put_c(&l, '\t');
	put_u(&l, ttl);
	put(&l, "\tIN\t", 4);
	put_type(&l, type);
	put_c(&l, '\t');
	rdata(&l, type, rd, rdlen, now);
	put_c(&l, '\n');
	if (l.bad)
		return ZONE_TEXT_OTHER;
	*len = l.len;
	return 0;
}
