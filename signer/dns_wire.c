/* Response messages in wire form, with owner compression (see dns_wire.h). */
#include "signer/dns_wire.h"

#include <stdlib.h>
#include <string.h>

#define HDR 12
#define PTR_MAX 0x3fff   /* a compression pointer holds 14 bits of offset */

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

static void put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
}

/* The label starts of an uncompressed wire name; the count, or -1 when the
 * name is malformed (or has more labels than we track). */
static int labels(const uint8_t *n, size_t len, uint8_t *starts)
{
	size_t i = 0;
	int nl = 0;

	while (i < len) {
		size_t l = n[i];
		if (l == 0)
			return i + 1 == len ? nl : -1;
		if (l > 63 || i + 1 + l >= len || nl >= DNS_WIRE_LABELS - 1)
			return -1;
		starts[nl++] = (uint8_t)i;
		i += 1 + l;
	}
	return -1;
}

int dns_wire_msg_init(struct dns_wire_msg *m, uint16_t id, uint16_t flags, size_t limit)
{
	memset(m, 0, sizeof(*m));
	if (limit < HDR || limit > DNS_WIRE_MAX)
		return DNS_EINVAL;
	m->buf = malloc(DNS_WIRE_MAX);
	if (m->buf == NULL)
		return DNS_ENOMEM;
	memset(m->buf, 0, HDR);
	put16(m->buf, id);
	put16(m->buf + 2, flags);
	m->len = HDR;
	m->limit = limit;
	return 0;
}

void dns_wire_msg_clear(struct dns_wire_msg *m)
{
	free(m->buf);
	m->buf = NULL;
	m->len = 0;
}

/* Remember @p n, just written, as the name to compress against; @p off[i]
 * is where the message holds the suffix from its label i (0: nowhere a
 * pointer can reach). */
static void remember(struct dns_wire_msg *m, const uint8_t *n, size_t len, int nl,
		     const uint8_t *starts, const uint16_t *off)
{
	memcpy(m->prev, n, len);
	m->prevlen = len;
	m->prev_nl = nl;
	memcpy(m->prev_lab, starts, (size_t)nl);
	memcpy(m->prev_off, off, (size_t)nl * sizeof(*off));
}

int dns_wire_msg_question(struct dns_wire_msg *m, const uint8_t *qname, size_t qlen,
			  uint16_t qtype, uint16_t qclass)
{
	uint8_t st[DNS_WIRE_LABELS];
	uint16_t off[DNS_WIRE_LABELS];
	int nl = labels(qname, qlen, st);

	if (nl < 0 || m->an != 0 || m->ar != 0 || m->qd != 0)
		return DNS_EINVAL;
	if (m->len + qlen + 4 > m->limit)
		return DNS_ERANGE;
	for (int i = 0; i < nl; i++)
		off[i] = (uint16_t)(m->len + st[i]);
	memcpy(m->buf + m->len, qname, qlen);
	put16(m->buf + m->len + qlen, qtype);
	put16(m->buf + m->len + qlen + 2, qclass);
	m->len += qlen + 4;
	m->qd = 1;
	remember(m, qname, qlen, nl, st, off);
	return 0;
}

/*
 * How many trailing labels of @p n (labels at @p st) can be a pointer into
 * the previous owner: the longest common suffix whose copy in the message
 * a pointer can reach. Returns that count; *at receives the offset.
 */
static int common_suffix(const struct dns_wire_msg *m, const uint8_t *n, int nl,
			 const uint8_t *st, uint16_t *at)
{
	int k = 0, best = 0;

	while (k < nl && k < m->prev_nl) {
		const uint8_t *a = n + st[nl - 1 - k];
		const uint8_t *b = m->prev + m->prev_lab[m->prev_nl - 1 - k];
		if (a[0] != b[0] || memcmp(a + 1, b + 1, a[0]) != 0)
			break;
		k++;
		/* Longer suffixes may sit beyond the pointer's reach. */
		if (m->prev_off[m->prev_nl - k] != 0) {
			best = k;
			*at = m->prev_off[m->prev_nl - k];
		}
	}
	return best;
}

int dns_wire_msg_add_rr(struct dns_wire_msg *m, const uint8_t *owner, size_t ownerlen,
			uint16_t type, uint16_t rclass, uint32_t ttl, const uint8_t *rdata,
			size_t rdlen)
{
	uint8_t st[DNS_WIRE_LABELS];
	uint16_t off[DNS_WIRE_LABELS], at = 0;
	int nl = labels(owner, ownerlen, st), c, lit;
	size_t namelen, p;

	if (nl < 0 || rdlen > 65535 || m->ar != 0)
		return DNS_EINVAL;
	c = common_suffix(m, owner, nl, st, &at);
	lit = nl - c;
	/* Literal labels, then a pointer or the root label. */
	namelen = (lit < nl ? st[lit] : ownerlen - 1) + (c > 0 ? 2 : 1);
	if (m->len + namelen + 10 + rdlen > m->limit)
		return DNS_ERANGE;
	p = m->len;
	for (int i = 0; i < lit; i++)
		off[i] = p + st[i] <= PTR_MAX ? (uint16_t)(p + st[i]) : 0;
	for (int i = lit; i < nl; i++)
		off[i] = m->prev_off[m->prev_nl - (nl - i)];
	if (c > 0) {
		memcpy(m->buf + p, owner, st[lit]);
		p += st[lit];
		put16(m->buf + p, (uint16_t)(0xc000 | at));
		p += 2;
	} else {
		memcpy(m->buf + p, owner, ownerlen);
		p += ownerlen;
	}
	put16(m->buf + p, type);
	put16(m->buf + p + 2, rclass);
	put32(m->buf + p + 4, ttl);
	put16(m->buf + p + 8, (uint16_t)rdlen);
	memcpy(m->buf + p + 10, rdata, rdlen);
	m->len = p + 10 + rdlen;
	m->an++;
	remember(m, owner, ownerlen, nl, st, off);
	return 0;
}

int dns_wire_msg_add_opt(struct dns_wire_msg *m, uint16_t udp, bool do_bit)
{
	uint8_t *p = m->buf + m->len;

	if (m->len + DNS_WIRE_OPT_LEN > DNS_WIRE_MAX)
		return DNS_ERANGE;
	p[0] = 0;                          /* the root */
	put16(p + 1, 41);                  /* OPT */
	put16(p + 3, udp);
	put32(p + 5, do_bit ? 0x8000u : 0);  /* extended RCODE 0, version 0, DO */
	put16(p + 9, 0);
	m->len += DNS_WIRE_OPT_LEN;
	m->ar++;
	return 0;
}

void dns_wire_msg_take(struct dns_wire_msg *m, uint8_t **buf, size_t *len)
{
	put16(m->buf + 4, m->qd);
	put16(m->buf + 6, m->an);
	put16(m->buf + 8, 0);
	put16(m->buf + 10, m->ar);
	*buf = m->buf;
	*len = m->len;
	m->buf = NULL;
	m->len = 0;
}
