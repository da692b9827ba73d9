/*
 * The zone object: parameters, the device name scheme, the apex RRsets,
 * status, and the persistence paths (export and load without re-signing).
 */
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_time.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/sha.h>
#include <openssl/x509.h>

#define EXPORT_VERSION 1

void zone_params_init(struct zone_params *p)
{
	memset(p, 0, sizeof(*p));
	p->origin = "iotregistry.test.";
	p->soa_refresh = 3600;
	p->soa_retry = 900;
	p->soa_expire = 1209600;
	p->soa_minimum = 300;
	p->ttl = 3600;
	p->device_ttl = 300;
	p->device_validity = 6 * 3600;
	p->device_refresh = 3 * 3600;
	p->validity = 14 * 86400;
	p->refresh = 5 * 86400;
	p->inception_offset = 3600;
	p->dance_prefix = "_device";
	p->serial_policy = ZONE_SERIAL_INCREMENT;
	p->initial_serial = 1;
	p->verify = true;
}

/* Parse an absolute name (relative ones are taken below the origin when
 * @p origin is given) into lowercase wire form. */
static int name_wire(const char *s, const char *origin, uint8_t *out, size_t *outlen)
{
	int r = ZONE_EINVAL;
	ldns_rdf *d = NULL, *o = NULL;

	if (s == NULL)
		goto out;
	d = ldns_dname_new_frm_str(s);
	if (d == NULL)
		goto out;
	if (!ldns_dname_str_absolute(s)) {
		if (origin == NULL || (o = ldns_dname_new_frm_str(origin)) == NULL ||
		    ldns_dname_cat(d, o) != LDNS_STATUS_OK)
			goto out;
	}
	if (ldns_rdf_size(d) > ZONE_WIRE_MAX)
		goto out;
	ldns_dname2canonical(d);
	memcpy(out, ldns_rdf_data(d), ldns_rdf_size(d));
	*outlen = ldns_rdf_size(d);
	r = 0;
out:
	ldns_rdf_deep_free(d);
	ldns_rdf_deep_free(o);
	return r;
}

static int params_ok(const struct zone_params *p)
{
	if (p->origin == NULL || !ldns_dname_str_absolute(p->origin))
		return 0;
	if (p->device_refresh >= p->device_validity || p->refresh >= p->validity)
		return 0;
	/* Lifetimes stay far below 2^31 s so serial comparisons are exact. */
	if (p->validity > 0x10000000u || p->device_validity > 0x10000000u ||
	    p->inception_offset > 0x1000000u)
		return 0;
	if (p->ksk.flags != ZONE_DNSKEY_FLAGS_KSK || p->zsk.flags != ZONE_DNSKEY_FLAGS_ZSK)
		return 0;
	if (p->ksk.key_tag == p->zsk.key_tag)
		return 0;  /* tags must tell the keys apart in the HSM's checks */
	if (p->dance_prefix == NULL || strlen(p->dance_prefix) == 0 ||
	    strlen(p->dance_prefix) > 63 || strchr(p->dance_prefix, '.') != NULL)
		return 0;
	if (p->ca_der != NULL && (p->ca_len == 0 || p->ca_len > 60000))
		return 0;
	return 1;
}

int zone_new(const struct zone_params *p, struct zone **out)
{
	int r = ZONE_EINVAL;
	struct zone *z = NULL;
	size_t n_ns;

	if (p == NULL || out == NULL || !params_ok(p))
		goto out;
	r = ZONE_ENOMEM;
	z = calloc(1, sizeof(*z));
	if (z == NULL)
		goto out;
	r = ZONE_EINVAL;
	if (name_wire(p->origin, NULL, z->apex, &z->apexlen) != 0)
		goto out;
	r = ZONE_ENOMEM;
	z->origin = strdup(p->origin);
	if (z->origin == NULL)
		goto out;
	for (char *c = z->origin; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	for (size_t i = 0; z->apex[i] != 0; i += 1 + z->apex[i])
		z->apex_labels++;
	r = ZONE_EINVAL;
	if (name_wire(p->soa_mname ? p->soa_mname : "ns1", z->origin, z->soa_mname,
		      &z->soa_mname_len) != 0 ||
	    name_wire(p->soa_rname ? p->soa_rname : "hostmaster", z->origin, z->soa_rname,
		      &z->soa_rname_len) != 0)
		goto out;
	n_ns = p->ns ? p->n_ns : 1;
	if (n_ns == 0 || n_ns > 64)
		goto out;
	r = ZONE_ENOMEM;
	z->ns = calloc(n_ns, sizeof(*z->ns));
	z->ns_len = calloc(n_ns, sizeof(*z->ns_len));
	if (z->ns == NULL || z->ns_len == NULL)
		goto out;
	r = ZONE_EINVAL;
	for (size_t i = 0; i < n_ns; i++)
		if (name_wire(p->ns ? p->ns[i] : "ns1", z->origin, z->ns[i], &z->ns_len[i]) != 0)
			goto out;
	z->n_ns = n_ns;
	z->soa_refresh = p->soa_refresh;
	z->soa_retry = p->soa_retry;
	z->soa_expire = p->soa_expire;
	z->soa_minimum = p->soa_minimum;
	z->ttl = p->ttl;
	z->device_ttl = p->device_ttl;
	z->nsec_ttl = p->soa_minimum < p->ttl ? p->soa_minimum : p->ttl;
	z->device_validity = p->device_validity;
	z->device_refresh = p->device_refresh;
	z->validity = p->validity;
	z->refresh = p->refresh;
	z->inception_offset = p->inception_offset;
	z->dance_prefix_len = strlen(p->dance_prefix);
	for (size_t i = 0; i < z->dance_prefix_len; i++) {
		char c = p->dance_prefix[i];
		z->dance_prefix[i] = (uint8_t)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	z->serial_policy = p->serial_policy;
	z->initial_serial = p->initial_serial ? p->initial_serial : 1;
	z->ksk = p->ksk;
	z->zsk = p->zsk;
	z->verify = p->verify;
	z->tree.refresh_device = p->device_refresh;
	z->tree.refresh_other = p->refresh;
	r = ZONE_ENOMEM;
	if (p->ca_der != NULL) {
		z->ca_der = malloc(p->ca_len);
		if (z->ca_der == NULL)
			goto out;
		memcpy(z->ca_der, p->ca_der, p->ca_len);
		z->ca_len = p->ca_len;
	}
	z->ksk_pkey = zone_sign_pkey(&z->ksk);
	z->zsk_pkey = zone_sign_pkey(&z->zsk);
	r = ZONE_EKEY;
	if (z->ksk_pkey == NULL || z->zsk_pkey == NULL)
		goto out;
	*out = z;
	z = NULL;
	r = 0;
out:
	zone_free(z);
	return r;
}

void zone_free(struct zone *z)
{
	struct zone_tree_iter it;
	struct zone_node *n, *prev = NULL;

	if (z == NULL)
		return;
	/* The iterator reads a node's right link after returning it, so free
	 * one step behind. */
	zone_tree_iter_init(&it, &z->tree);
	while ((n = zone_tree_iter_next(&it)) != NULL) {
		free(prev);
		prev = n;
	}
	free(prev);
	EVP_PKEY_free(z->ksk_pkey);
	EVP_PKEY_free(z->zsk_pkey);
	free(z->ca_der);
	free(z->ns);
	free(z->ns_len);
	free(z->origin);
	free(z);
}

uint32_t zone_serial(const struct zone *z)
{
	return z->serial;
}

const char *zone_origin(const struct zone *z)
{
	return z->origin;
}

size_t zone_names(const struct zone *z)
{
	return z->tree.count;
}

void zone_status_get(const struct zone *z, int64_t now, struct zone_status *st)
{
	struct zone_tree_iter it;
	struct zone_node *n;

	memset(st, 0, sizeof(*st));
	st->serial = z->serial;
	st->names = z->tree.count;
	zone_tree_iter_init(&it, &z->tree);
	while ((n = zone_tree_iter_next(&it)) != NULL)
		st->bytes += malloc_usable_size(n);
	if (z->tree.root != NULL) {
		st->next_due = zone_time64(z->tree.root->subdue, now);
		st->earliest_expiration = zone_time64(z->tree.root->subexp, now);
		st->resign_overdue = zone_serial_le(z->tree.root->subdue, zone_time32(now));
	}
}

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

static int add_rd(struct zone_edit *e, uint16_t type, uint32_t ttl, uint8_t flags,
		  const uint8_t *rd, size_t len)
{
	int err = 0;
	struct zone_eset *s = zone_edit_set(e, type, true, ttl, flags, &err);

	if (s == NULL)
		return err ? err : ZONE_ENOMEM;
	s->dirty = true;
	err = zone_eset_add(s, rd, len);
	return err < 0 ? err : 0;
}

int zone_apex_edit(const struct zone *z, uint32_t serial, struct zone_edit *e)
{
	uint8_t rd[2 * ZONE_WIRE_MAX + 20];
	size_t p = 0;
	int r;

	memcpy(rd, z->soa_mname, z->soa_mname_len);
	p = z->soa_mname_len;
	memcpy(rd + p, z->soa_rname, z->soa_rname_len);
	p += z->soa_rname_len;
	zone_put32(rd + p, serial);
	zone_put32(rd + p + 4, z->soa_refresh);
	zone_put32(rd + p + 8, z->soa_retry);
	zone_put32(rd + p + 12, z->soa_expire);
	zone_put32(rd + p + 16, z->soa_minimum);
	r = add_rd(e, ZONE_RRTYPE_SOA, z->ttl, 0, rd, p + 20);
	for (size_t i = 0; r == 0 && i < z->n_ns; i++)
		r = add_rd(e, ZONE_RRTYPE_NS, z->ttl, 0, z->ns[i], z->ns_len[i]);
	if (r == 0) {
		zone_dnskey_rdata(&z->ksk, rd);
		r = add_rd(e, ZONE_RRTYPE_DNSKEY, z->ttl, 0, rd, ZONE_DNSKEY_RDATA_LEN);
	}
	if (r == 0) {
		zone_dnskey_rdata(&z->zsk, rd);
		r = add_rd(e, ZONE_RRTYPE_DNSKEY, z->ttl, 0, rd, ZONE_DNSKEY_RDATA_LEN);
	}
	if (r == 0 && z->ca_der != NULL) {
		uint8_t *cert = malloc(5 + z->ca_len);
		if (cert == NULL)
			return ZONE_ENOMEM;
		/* CERT type 1 (PKIX), key tag 0, algorithm 0: RFC 4398 form. */
		memcpy(cert, "\x00\x01\x00\x00\x00", 5);
		memcpy(cert + 5, z->ca_der, z->ca_len);
		r = add_rd(e, ZONE_RRTYPE_CERT, z->ttl, 0, cert, 5 + z->ca_len);
		free(cert);
	}
	return r;
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
		r = add_rd(&out[0].edit, ZONE_RRTYPE_CERT, z->device_ttl, ZONE_SET_DEVICE, rd,
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
		r = add_rd(&t->edit, ZONE_RRTYPE_TLSA, z->device_ttl, ZONE_SET_DEVICE, tlsa,
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

int zone_export_foreach(const struct zone *z,
			int (*cb)(void *ctx, const uint8_t *key, size_t keylen,
				  const uint8_t *blob, size_t len),
			void *ctx)
{
	struct zone_tree_iter it;
	struct zone_node *n;
	uint8_t *buf = NULL;
	size_t cap = 0;
	int r = 0;

	zone_tree_iter_init(&it, &z->tree);
	while ((n = zone_tree_iter_next(&it)) != NULL) {
		size_t len = 1 + n->len - n->keylen;
		if (len > cap) {
			uint8_t *nb = realloc(buf, len);
			if (nb == NULL) {
				r = ZONE_ENOMEM;
				break;
			}
			buf = nb;
			cap = len;
		}
		buf[0] = EXPORT_VERSION;
		memcpy(buf + 1, n->data + n->keylen, len - 1);
		r = cb(ctx, zone_node_key(n), n->keylen, buf, len);
		if (r != 0)
			break;
	}
	free(buf);
	return r;
}

int zone_export_name(const struct zone *z, const uint8_t *key, size_t keylen, uint8_t **blob,
		     size_t *len)
{
	const struct zone_node *n = zone_tree_find(&z->tree, key, keylen);
	uint8_t *b;

	if (n == NULL)
		return ZONE_ENOENT;
	b = malloc(1 + n->len - n->keylen);
	if (b == NULL)
		return ZONE_ENOMEM;
	b[0] = EXPORT_VERSION;
	memcpy(b + 1, n->data + n->keylen, n->len - n->keylen);
	*blob = b;
	*len = 1 + n->len - n->keylen;
	return 0;
}

/* A stored key must be exactly what zone_name would produce for its labels. */
static int key_canonical(const uint8_t *key, size_t keylen)
{
	uint8_t again[ZONE_KEY_MAX], lab[63];
	size_t pos = 0, l, k = 0;
	int r;

	while ((r = zone_name_key_label(key, keylen, &pos, lab, &l)) == 1)
		if (zone_name_key_push(again, &k, lab, l) != 0)
			return 0;
	return r == 0 && k == keylen && memcmp(again, key, k) == 0;
}

int zone_load_name(struct zone *z, const uint8_t *key, size_t keylen, const uint8_t *blob,
		   size_t len)
{
	int r = ZONE_ESTATE;
	struct zone_node *n = NULL;
	uint8_t wire[ZONE_WIRE_MAX];
	size_t wlen;

	if (z->change_open || (z->state != ZONE_STATE_EMPTY && z->state != ZONE_STATE_LOADING))
		goto out;
	r = ZONE_EFORMAT;
	if (keylen > ZONE_KEY_MAX || blob == NULL || len < 1 || blob[0] != EXPORT_VERSION ||
	    !key_canonical(key, keylen) ||
	    zone_name_key_to_wire(key, keylen, z->apex, z->apexlen, wire, &wlen) != 0)
		goto out;
	r = zone_node_new(key, keylen, blob + 1, len - 1, &n);
	if (r != 0)
		goto out;
	r = zone_node_validate(n);
	if (r != 0)
		goto out;
	r = zone_tree_insert(&z->tree, n);
	if (r != 0)
		goto out;
	n = NULL;
	z->state = ZONE_STATE_LOADING;
out:
	free(n);
	return r;
}

int zone_load_finish(struct zone *z, int64_t now, bool verify)
{
	const struct zone_node *apex;
	struct zone_rrset soa;

	if (z->state != ZONE_STATE_LOADING || z->change_open)
		return ZONE_ESTATE;
	apex = zone_tree_find(&z->tree, NULL, 0);
	z->state = ZONE_STATE_BROKEN;
	if (apex == NULL || zone_node_rrset_find(apex, ZONE_RRTYPE_SOA, &soa) != 1 ||
	    soa.nrr != 1 || zone_get16(soa.rrs) < 22)
		return ZONE_ECHECK;
	z->serial = zone_get32(soa.rrs + 2 + zone_get16(soa.rrs) - 20);
	z->state = ZONE_STATE_READY;
	if (zone_check_all(z, now, verify, true) != 0) {
		z->state = ZONE_STATE_BROKEN;
		return ZONE_ECHECK;
	}
	return 0;
}
