/*
 * The device namespace: <index>.<id> names, which names belong to it, and
 * the records each style publishes (DESIGN.md "Names and records").
 */
#include "zonesigner/zone_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

static int is_hex(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

bool zone_key_is_device_ns(const uint8_t *key, size_t keylen)
{
	size_t pos = 0, l = 0;
	uint8_t buf[63];

	if (zone_name_key_label(key, keylen, &pos, buf, &l) != 1)
		return false;
	for (size_t i = 0; i < l; i++)
		if (!is_hex(buf[i]))
			return false;
	return true;
}

uint8_t zone_set_flags(const uint8_t *key, size_t keylen, uint16_t type)
{
	if ((type == ZONE_RRTYPE_CERT || type == ZONE_RRTYPE_TLSA) &&
	    zone_name_key_labels(key, keylen) >= 2 && zone_key_is_device_ns(key, keylen))
		return ZONE_SET_DEVICE;
	return 0;
}

int zone_device_key(const char *id, uint32_t index, uint8_t *key, size_t *keylen)
{
	uint8_t lab[63];
	char num[16];
	size_t n, k = 0;

	if (id == NULL || index == 0)
		return ZONE_EINVAL;
	n = strlen(id);
	if (n == 0 || n > 63)
		return ZONE_EINVAL;
	for (size_t i = 0; i < n; i++) {
		uint8_t c = (uint8_t)id[i];
		if (c >= 'A' && c <= 'F')
			c = (uint8_t)(c + 32);
		if (!is_hex(c))
			return ZONE_EINVAL;
		lab[i] = c;
	}
	snprintf(num, sizeof(num), "%u", index);
	if (zone_name_key_push(key, &k, lab, n) != 0 ||
	    zone_name_key_push(key, &k, (const uint8_t *)num, strlen(num)) != 0)
		return ZONE_EINVAL;
	*keylen = k;
	return 0;
}

int zone_device_owner(const struct zone *z, const char *id, uint32_t index, char *buf,
		      size_t len)
{
	uint8_t key[ZONE_KEY_MAX];
	size_t keylen;
	int r = zone_device_key(id, index, key, &keylen);
	int n;

	if (r != 0)
		return r;
	n = snprintf(buf, len, "%u.", index);
	if (n < 0 || (size_t)n >= len)
		return ZONE_ERANGE;
	for (const char *c = id; *c; c++) {
		if ((size_t)n + 1 >= len)
			return ZONE_ERANGE;
		buf[n++] = (*c >= 'A' && *c <= 'F') ? (char)(*c + 32) : *c;
	}
	if (snprintf(buf + n, len - (size_t)n, ".%s", z->origin) >= (int)(len - (size_t)n))
		return ZONE_ERANGE;
	return 0;
}

static int sha256(const uint8_t *d, size_t n, uint8_t out[32])
{
	unsigned int len = 0;

	return EVP_Digest(d, n, out, &len, EVP_sha256(), NULL) == 1 && len == 32 ? 0
										     : ZONE_ENOMEM;
}

/* SHA-256 of the certificate's SubjectPublicKeyInfo (TLSA selector 1). */
static int spki_hash(const uint8_t *der, size_t len, uint8_t out[32])
{
	int r = ZONE_EINVAL;
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)len);
	unsigned char *spki = NULL;
	int n;

	if (x == NULL || p != der + len)
		goto out;
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &spki);
	if (n <= 0)
		goto out;
	r = sha256(spki, (size_t)n, out);
out:
	OPENSSL_free(spki);
	X509_free(x);
	return r;
}

int zone_device_edits(const struct zone *z, const struct zone_device *d,
		      struct zone_devname out[2], size_t *n)
{
	int r = ZONE_EINVAL;
	uint8_t hash[32], *rd = NULL;
	size_t k = 0;
	bool cert = d->styles & (ZONE_STYLE_SEED | ZONE_STYLE_CERT_PKIX);

	memset(out, 0, 2 * sizeof(*out));
	if ((d->styles & ~7u) != 0 || d->styles == 0 ||
	    (d->styles & ZONE_STYLE_SEED && d->styles & ZONE_STYLE_CERT_PKIX))
		goto out;
	if (d->cert_der != NULL && (d->cert_len == 0 || d->cert_len > 60000))
		goto out;
	if (zone_device_key(d->id, d->index, out[0].key, &out[0].keylen) != 0)
		goto out;
	if (cert) {
		size_t len;
		if (d->styles & ZONE_STYLE_CERT_PKIX) {
			if (d->cert_der == NULL)
				goto out;
			len = d->cert_len;
		} else {
			if (d->cert_der != NULL && (r = sha256(d->cert_der, d->cert_len, hash)) != 0)
				goto out;
			r = ZONE_EINVAL;
			if (d->cert_der == NULL && d->cert_sha256 == NULL)
				goto out;
			len = 32;
		}
		r = ZONE_ENOMEM;
		rd = malloc(5 + len);
		if (rd == NULL)
			goto out;
		memcpy(rd, "\x00\x01\x00\x00\x00", 5);
		memcpy(rd + 5, d->styles & ZONE_STYLE_CERT_PKIX ? d->cert_der
				: d->cert_der ? hash : d->cert_sha256, len);
		r = zone_edit_add_rd(&out[0].edit, ZONE_RRTYPE_CERT, z->device_ttl, ZONE_SET_DEVICE, rd,
			   5 + len);
		if (r != 0)
			goto out;
		k = 1;
	}
	if (d->styles & ZONE_STYLE_DANCE) {
		uint8_t tlsa[3 + 32] = { 3, 1, 1 };
		struct zone_devname *t = &out[k];
		r = ZONE_EINVAL;
		if (d->spki_sha256 != NULL)
			memcpy(tlsa + 3, d->spki_sha256, 32);
		else if (d->cert_der == NULL || spki_hash(d->cert_der, d->cert_len, tlsa + 3) != 0)
			goto out;
		if (k == 1) {
			memcpy(t->key, out[0].key, out[0].keylen);
			t->keylen = out[0].keylen;
		} else if (zone_device_key(d->id, d->index, t->key, &t->keylen) != 0) {
			goto out;
		}
		if (zone_name_key_push(t->key, &t->keylen, z->dance_prefix,
				       z->dance_prefix_len) != 0)
			goto out;
		r = zone_edit_add_rd(&t->edit, ZONE_RRTYPE_TLSA, z->device_ttl, ZONE_SET_DEVICE, tlsa,
			   sizeof(tlsa));
		if (r != 0)
			goto out;
		k++;
	}
	*n = k;
	r = 0;
out:
	free(rd);
	if (r != 0) {
		zone_edit_clear(&out[0].edit);
		zone_edit_clear(&out[1].edit);
	}
	return r;
}
