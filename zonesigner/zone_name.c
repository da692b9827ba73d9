/*
 * Canonical-order keys of names (see zone_name.h for the encoding and why
 * memcmp on it is the DNS canonical order).
 */
#include "zonesigner/zone_name.h"
#include "zonesigner/zone_err.h"

#include <string.h>

static uint8_t lower(uint8_t c)
{
	return (c >= 'A' && c <= 'Z') ? (uint8_t)(c + 32) : c;
}

/* Split a wire name into label offsets; returns the label count or -1. */
static int wire_labels(const uint8_t *w, size_t wlen, size_t off[128])
{
	size_t p = 0;
	int n = 0;

	if (wlen == 0 || wlen > ZONE_WIRE_MAX)
		return -1;
	for (;;) {
		if (p >= wlen)
			return -1;
		if (w[p] == 0)
			return p + 1 == wlen ? n : -1;
		if (w[p] > 63 || n >= 127)
			return -1;
		off[n++] = p;
		p += 1 + (size_t)w[p];
	}
}

int zone_name_key_push(uint8_t *key, size_t *keylen, const uint8_t *label, size_t llen)
{
	size_t k = *keylen;

	if (llen == 0 || llen > 63)
		return ZONE_EINVAL;
	for (size_t i = 0; i < llen; i++) {
		if (k + 2 > ZONE_KEY_MAX)
			return ZONE_ERANGE;
		if (label[i] == 0) {
			key[k++] = 0x00;
			key[k++] = 0xff;
		} else {
			key[k++] = lower(label[i]);
		}
	}
	if (k + 2 > ZONE_KEY_MAX)
		return ZONE_ERANGE;
	key[k++] = 0;
	key[k++] = 0;
	*keylen = k;
	return 0;
}

int zone_name_key_from_wire(const uint8_t *wire, size_t wlen, const uint8_t *apex,
			    size_t apexlen, uint8_t *key, size_t *keylen)
{
	size_t off[128], aoff[128];
	int n = wire_labels(wire, wlen, off);
	int an = wire_labels(apex, apexlen, aoff);
	size_t k = 0;
	int r;

	if (n < 0 || an < 0 || n < an)
		return ZONE_EINVAL;
	/* The last an labels must be the apex, compared case-insensitively. */
	if (wlen - off[n - an > 0 ? n - an : 0] != apexlen && an > 0)
		return ZONE_EINVAL;
	if (an > 0) {
		const uint8_t *s = wire + off[n - an];

		for (size_t i = 0; i < apexlen; i++)
			if (lower(s[i]) != lower(apex[i]))
				return ZONE_EINVAL;
	}
	for (int i = n - an - 1; i >= 0; i--) {
		r = zone_name_key_push(key, &k, wire + off[i] + 1, wire[off[i]]);
		if (r != 0)
			return r;
	}
	*keylen = k;
	return 0;
}

int zone_name_key_label(const uint8_t *key, size_t keylen, size_t *pos, uint8_t *buf,
			size_t *llen)
{
	size_t p = *pos, n = 0;

	if (p >= keylen)
		return 0;
	for (;;) {
		if (p >= keylen)
			return ZONE_EFORMAT;
		if (key[p] != 0) {
			if (n >= 63)
				return ZONE_EFORMAT;
			buf[n++] = key[p++];
			continue;
		}
		if (p + 1 >= keylen)
			return ZONE_EFORMAT;
		if (key[p + 1] == 0xff) {
			if (n >= 63)
				return ZONE_EFORMAT;
			buf[n++] = 0;
			p += 2;
			continue;
		}
		if (key[p + 1] != 0 || n == 0)
			return ZONE_EFORMAT;
		p += 2;
		break;
	}
	*pos = p;
	*llen = n;
	return 1;
}

int zone_name_key_labels(const uint8_t *key, size_t keylen)
{
	size_t pos = 0, l;
	uint8_t buf[63];
	int n = 0, r;

	while ((r = zone_name_key_label(key, keylen, &pos, buf, &l)) == 1)
		n++;
	return r < 0 ? r : n;
}

int zone_name_key_to_wire(const uint8_t *key, size_t keylen, const uint8_t *apex,
			  size_t apexlen, uint8_t *wire, size_t *wlen)
{
	uint8_t labels[128][63];
	size_t lens[128];
	size_t pos = 0, w = 0;
	int n = 0, r;

	while ((r = zone_name_key_label(key, keylen, &pos, labels[n], &lens[n])) == 1) {
		if (++n >= 128)
			return ZONE_ERANGE;
	}
	if (r < 0)
		return r;
	for (int i = n - 1; i >= 0; i--) {
		if (w + 1 + lens[i] > ZONE_WIRE_MAX)
			return ZONE_ERANGE;
		wire[w++] = (uint8_t)lens[i];
		memcpy(wire + w, labels[i], lens[i]);
		w += lens[i];
	}
	if (w + apexlen > ZONE_WIRE_MAX)
		return ZONE_ERANGE;
	memcpy(wire + w, apex, apexlen);
	*wlen = w + apexlen;
	return 0;
}

int zone_name_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
	size_t n = alen < blen ? alen : blen;
	int c = n ? memcmp(a, b, n) : 0;

	if (c != 0)
		return c;
	return alen < blen ? -1 : alen > blen;
}

int zone_name_key_is_below(const uint8_t *key, size_t keylen, const uint8_t *anc,
			   size_t anclen)
{
	/* Keys end every label with 00 00, so a byte prefix is a label prefix. */
	return keylen >= anclen && memcmp(key, anc, anclen) == 0;
}
