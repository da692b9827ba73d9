/*
 * DNSKEY/DS records for ECDSA P-256 keys. OpenSSL reads the key (SPKI DER or
 * EVP_PKEY), ldns computes the key tag and formats the records; the DS digest
 * is one SHA-256 over the canonical owner name and the DNSKEY RDATA.
 */
#include "zonesigner/zone_dnskey.h"
#include "zonesigner/zone_err.h"

#include <stdlib.h>
#include <string.h>

#include "zonesigner/zone_ldns.h"
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/x509.h>

static int flags_ok(uint16_t flags)
{
	return flags == ZONE_DNSKEY_FLAGS_ZSK || flags == ZONE_DNSKEY_FLAGS_KSK;
}

static void set_tag(struct zone_dnskey *k)
{
	uint8_t rd[ZONE_DNSKEY_RDATA_LEN];

	zone_dnskey_rdata(k, rd);
	k->key_tag = ldns_calc_keytag_raw(rd, sizeof(rd));
}

int zone_dnskey_from_pkey(const EVP_PKEY *pkey, uint16_t flags, struct zone_dnskey *out)
{
	int r = ZONE_EINVAL;
	char group[64];
	size_t glen = 0;
	BIGNUM *x = NULL, *y = NULL;
	struct zone_dnskey k;

	if (pkey == NULL || out == NULL || !flags_ok(flags))
		goto out;
	r = ZONE_EKEY;
	if (!EVP_PKEY_is_a(pkey, "EC"))
		goto out;
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
					    sizeof(group), &glen))
		goto out;
	if (strcmp(group, "prime256v1") != 0 && strcmp(group, "P-256") != 0)
		goto out;
	/* The affine coordinates, not the encoded point: the key may have been
	 * loaded with compressed point format, and DNSSEC wants x || y. */
	if (!EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_X, &x) ||
	    !EVP_PKEY_get_bn_param(pkey, OSSL_PKEY_PARAM_EC_PUB_Y, &y))
		goto out;
	memset(&k, 0, sizeof(k));
	k.flags = flags;
	if (BN_bn2binpad(x, k.pubkey, 32) != 32 || BN_bn2binpad(y, k.pubkey + 32, 32) != 32)
		goto out;
	set_tag(&k);
	*out = k;
	r = 0;
out:
	BN_free(x);
	BN_free(y);
	return r;
}

int zone_dnskey_from_spki(const uint8_t *der, size_t len, uint16_t flags,
			  struct zone_dnskey *out)
{
	int r = ZONE_EINVAL;
	const unsigned char *p = der;
	EVP_PKEY *pkey = NULL;

	if (der == NULL || len == 0 || len > 4096 || !flags_ok(flags))
		goto out;
	pkey = d2i_PUBKEY(NULL, &p, (long)len);
	if (pkey == NULL || p != der + len)
		goto out;
	r = zone_dnskey_from_pkey(pkey, flags, out);
out:
	EVP_PKEY_free(pkey);
	return r;
}

int zone_dnskey_from_rdata(const uint8_t *rdata, size_t len, struct zone_dnskey *out)
{
	struct zone_dnskey k;

	if (rdata == NULL || out == NULL || len != ZONE_DNSKEY_RDATA_LEN ||
	    rdata[2] != ZONE_DNSKEY_PROTOCOL || rdata[3] != ZONE_DNSKEY_ALG)
		return ZONE_EFORMAT;
	k.flags = (uint16_t)(rdata[0] << 8 | rdata[1]);
	memcpy(k.pubkey, rdata + 4, ZONE_DNSKEY_PUBKEY_LEN);
	k.key_tag = ldns_calc_keytag_raw(rdata, len);
	*out = k;
	return 0;
}

void zone_dnskey_rdata(const struct zone_dnskey *k, uint8_t out[ZONE_DNSKEY_RDATA_LEN])
{
	out[0] = (uint8_t)(k->flags >> 8);
	out[1] = (uint8_t)k->flags;
	out[2] = ZONE_DNSKEY_PROTOCOL;
	out[3] = ZONE_DNSKEY_ALG;
	memcpy(out + 4, k->pubkey, ZONE_DNSKEY_PUBKEY_LEN);
}

/* Build the DNSKEY as an ldns_rr so that ldns does the text formatting. */
static int dnskey_rr(const struct zone_dnskey *k, const char *owner, uint32_t ttl,
		     ldns_rr **out)
{
	int r = ZONE_EINVAL;
	ldns_rr *rr = NULL;
	ldns_rdf *name = NULL;

	if (k == NULL || owner == NULL || out == NULL)
		goto out;
	name = ldns_dname_new_frm_str(owner);
	if (name == NULL || !ldns_dname_str_absolute(owner))
		goto out;
	r = ZONE_ENOMEM;
	rr = ldns_rr_new_frm_type(LDNS_RR_TYPE_DNSKEY);
	if (rr == NULL)
		goto out;
	ldns_dname2canonical(name);
	ldns_rr_set_owner(rr, name);
	name = NULL;
	ldns_rr_set_ttl(rr, ttl);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, k->flags), 0);
	ldns_rr_set_rdf(rr, ldns_native2rdf_int8(LDNS_RDF_TYPE_INT8, ZONE_DNSKEY_PROTOCOL), 1);
	ldns_rr_set_rdf(rr, ldns_native2rdf_int8(LDNS_RDF_TYPE_ALG, ZONE_DNSKEY_ALG), 2);
	ldns_rr_set_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_B64, ZONE_DNSKEY_PUBKEY_LEN,
						  k->pubkey), 3);
	for (size_t i = 0; i < 4; i++)
		if (ldns_rr_rdf(rr, i) == NULL)
			goto out;
	*out = rr;
	rr = NULL;
	r = 0;
out:
	ldns_rdf_deep_free(name);
	ldns_rr_free(rr);
	return r;
}

static int rr_to_text(const ldns_rr *rr, char **out)
{
	char *s = ldns_rr2str_fmt(ldns_output_format_nocomments, rr);

	if (s == NULL)
		return ZONE_ELDNS;
	*out = s;
	return 0;
}

int zone_dnskey_rr_text(const struct zone_dnskey *k, const char *owner, uint32_t ttl,
			char **out)
{
	ldns_rr *rr = NULL;
	int r = dnskey_rr(k, owner, ttl, &rr);

	if (r == 0)
		r = rr_to_text(rr, out);
	ldns_rr_free(rr);
	return r;
}

int zone_dnskey_ds_digest(const struct zone_dnskey *k, const char *owner,
			  uint8_t out[ZONE_DS_DIGEST_LEN])
{
	int r = ZONE_EINVAL;
	ldns_rdf *name = NULL;
	uint8_t rd[ZONE_DNSKEY_RDATA_LEN];
	EVP_MD_CTX *md = NULL;
	unsigned int mdlen = 0;

	if (k == NULL || owner == NULL || out == NULL || !ldns_dname_str_absolute(owner))
		goto out;
	name = ldns_dname_new_frm_str(owner);
	if (name == NULL)
		goto out;
	ldns_dname2canonical(name);
	zone_dnskey_rdata(k, rd);
	r = ZONE_ENOMEM;
	md = EVP_MD_CTX_new();
	if (md == NULL || !EVP_DigestInit_ex(md, EVP_sha256(), NULL) ||
	    !EVP_DigestUpdate(md, ldns_rdf_data(name), ldns_rdf_size(name)) ||
	    !EVP_DigestUpdate(md, rd, sizeof(rd)) || !EVP_DigestFinal_ex(md, out, &mdlen) ||
	    mdlen != ZONE_DS_DIGEST_LEN)
		goto out;
	r = 0;
out:
	EVP_MD_CTX_free(md);
	ldns_rdf_deep_free(name);
	return r;
}

int zone_dnskey_ds_text(const struct zone_dnskey *k, const char *owner, uint32_t ttl,
			char **out)
{
	int r;
	ldns_rr *rr = NULL, *ds = NULL;
	uint8_t dig[ZONE_DS_DIGEST_LEN];

	r = dnskey_rr(k, owner, ttl, &rr);
	if (r != 0)
		goto out;
	r = zone_dnskey_ds_digest(k, owner, dig);
	if (r != 0)
		goto out;
	r = ZONE_ENOMEM;
	ds = ldns_rr_new_frm_type(LDNS_RR_TYPE_DS);
	if (ds == NULL)
		goto out;
	ldns_rr_set_owner(ds, ldns_rdf_clone(ldns_rr_owner(rr)));
	ldns_rr_set_ttl(ds, ttl);
	ldns_rr_set_class(ds, LDNS_RR_CLASS_IN);
	ldns_rr_set_rdf(ds, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, k->key_tag), 0);
	ldns_rr_set_rdf(ds, ldns_native2rdf_int8(LDNS_RDF_TYPE_ALG, ZONE_DNSKEY_ALG), 1);
	ldns_rr_set_rdf(ds, ldns_native2rdf_int8(LDNS_RDF_TYPE_INT8, ZONE_DS_DIGEST_SHA256), 2);
	ldns_rr_set_rdf(ds, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_HEX, sizeof(dig), dig), 3);
	if (ldns_rr_owner(ds) == NULL)
		goto out;
	for (size_t i = 0; i < 4; i++)
		if (ldns_rr_rdf(ds, i) == NULL)
			goto out;
	r = rr_to_text(ds, out);
out:
	ldns_rr_free(rr);
	ldns_rr_free(ds);
	return r;
}
