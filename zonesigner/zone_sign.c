/*
 * What the zone asks its signer for: RRSIG lifetimes, the RRSIG data of an
 * RRset (RFC 4034 section 3.1.8.1), which key signs which type, and the
 * OpenSSL verification the self-check uses.
 */
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_time.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/param_build.h>

void zone_sign_times(const struct zone *z, const uint8_t *key, size_t keylen, uint16_t type,
		     uint8_t flags, int64_t now, uint32_t *inception, uint32_t *expiration)
{
	uint32_t validity = (flags & ZONE_SET_DEVICE) ? z->device_validity : z->validity;
	uint32_t refresh = (flags & ZONE_SET_DEVICE) ? z->device_refresh : z->refresh;
	uint32_t span = refresh / 2;

	/* The jitter must leave the new signature outside its refresh window,
	 * or re-signing would loop: keep it under half the margin. */
	if (span > (validity - refresh) / 2)
		span = (validity - refresh) / 2;
	*inception = zone_time32(now) - z->inception_offset;
	*expiration = zone_time32(now) + validity - zone_time_jitter(key, keylen, type, span);
}

int zone_owner_labels(const struct zone *z, const uint8_t *key, size_t keylen)
{
	size_t pos = 0, l = 0;
	uint8_t lab[63];
	int n = 0, r;
	bool star = false;

	while ((r = zone_name_key_label(key, keylen, &pos, lab, &l)) == 1) {
		n++;
		star = (l == 1 && lab[0] == '*');
	}
	if (r < 0)
		return r;
	/* A wildcard's RRSIG counts the labels without the leading '*'. */
	return z->apex_labels + n - (star ? 1 : 0);
}

void zone_sign_key_for(const struct zone *z, uint16_t type, enum zone_key_role *role,
		       uint16_t *tag)
{
	if (type == ZONE_RRTYPE_DNSKEY) {
		*role = ZONE_KEY_KSK;
		*tag = z->ksk.key_tag;
	} else {
		*role = ZONE_KEY_ZSK;
		*tag = z->zsk.key_tag;
	}
}

size_t zone_sign_rrsig_prefix(const struct zone *z, int labels, uint16_t type, uint32_t ttl,
			      uint32_t inception, uint32_t expiration, uint16_t tag,
			      uint8_t *out)
{
	zone_put16(out, type);
	out[2] = ZONE_DNSKEY_ALG;
	out[3] = (uint8_t)labels;
	zone_put32(out + 4, ttl);
	zone_put32(out + 8, expiration);
	zone_put32(out + 12, inception);
	zone_put16(out + 16, tag);
	memcpy(out + 18, z->apex, z->apexlen);
	return 18 + z->apexlen;
}

int zone_sign_data(const struct zone *z, const uint8_t *owner, size_t ownerlen, int labels,
		   const struct zone_rrview *v, uint32_t inception, uint32_t expiration,
		   uint16_t tag, uint8_t **data, size_t *len)
{
	size_t need = 18 + z->apexlen + (size_t)v->nrr * (ownerlen + 10) + v->rrslen;
	uint8_t *buf = malloc(need);
	size_t p, q = 0;

	if (buf == NULL)
		return ZONE_ENOMEM;
	p = zone_sign_rrsig_prefix(z, labels, v->type, v->ttl, inception, expiration, tag, buf);
	/* The stored RDATA is canonical and sorted, and the owner is already
	 * lowercase: this is the canonical RRset of RFC 4034 section 6.3. */
	for (unsigned i = 0; i < v->nrr; i++) {
		size_t l;
		if (v->rrslen - q < 2 || v->rrslen - q - 2 < (l = zone_get16(v->rrs + q))) {
			free(buf);
			return ZONE_EFORMAT;
		}
		memcpy(buf + p, owner, ownerlen);
		p += ownerlen;
		zone_put16(buf + p, v->type);
		zone_put16(buf + p + 2, 1);  /* class IN */
		zone_put32(buf + p + 4, v->ttl);
		memcpy(buf + p + 8, v->rrs + q, 2 + l);
		p += 10 + l;
		q += 2 + l;
	}
	*data = buf;
	*len = p;
	return 0;
}

EVP_PKEY *zone_sign_pkey(const struct zone_dnskey *k)
{
	OSSL_PARAM_BLD *b = OSSL_PARAM_BLD_new();
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	uint8_t pub[65];

	pub[0] = 0x04;
	memcpy(pub + 1, k->pubkey, 64);
	if (b == NULL ||
	    !OSSL_PARAM_BLD_push_utf8_string(b, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) ||
	    !OSSL_PARAM_BLD_push_octet_string(b, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub)))
		goto out;
	params = OSSL_PARAM_BLD_to_param(b);
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1)
		pkey = NULL;
out:
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(b);
	return pkey;
}

EVP_PKEY_CTX *zone_sign_verify_ctx(EVP_PKEY *pkey)
{
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);

	if (ctx != NULL && EVP_PKEY_verify_init(ctx) != 1) {
		EVP_PKEY_CTX_free(ctx);
		ctx = NULL;
	}
	return ctx;
}

/*
 * ECDSA P-256 with SHA-256 over @p data: the digest with the zone's fetched
 * SHA-256, then one EVP_PKEY_verify on the key's prepared context (the same
 * verification EVP_DigestVerify makes, without setting one up each time).
 */
int zone_sign_verify(const struct zone *z, uint16_t tag, const uint8_t *data, size_t len,
		     const uint8_t rs[64])
{
	EVP_PKEY_CTX *vctx = tag == z->ksk.key_tag ? z->ksk_vctx
			     : tag == z->zsk.key_tag ? z->zsk_vctx : NULL;
	ECDSA_SIG *sig = NULL;
	BIGNUM *r = NULL, *s = NULL;
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int dlen, ok = 0;

	if (vctx == NULL || z->sha256 == NULL)
		return 0;
	sig = ECDSA_SIG_new();
	r = BN_bin2bn(rs, 32, NULL);
	s = BN_bin2bn(rs + 32, 32, NULL);
	if (sig == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(sig, r, s))
		goto out;
	r = s = NULL;
	dlen = i2d_ECDSA_SIG(sig, &der);
	if (dlen <= 0 || EVP_Digest(data, len, md, &mdlen, z->sha256, NULL) != 1 || mdlen != 32)
		goto out;
	ok = EVP_PKEY_verify(vctx, der, (size_t)dlen, md, mdlen) == 1;
out:
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(sig);
	return ok;
}
