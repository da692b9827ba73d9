/*
 * TSIG (RFC 8945) over response messages already in wire form (see
 * dns_wire.h): the digest of section 4.3 computed with OpenSSL's HMAC over
 * the prior MAC, the message as it stands and the TSIG variables, then the
 * TSIG RR appended. The key, its algorithm and its secret come from the
 * dns_tsig keyring, which checked them when it was loaded.
 */
#include "signer/dns_wire.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include "signer/dns_tsig.h"

#define TSIG_TYPE 250
#define CLASS_ANY 255
#define MAC_MAX 64

struct dns_wire_tsig {
	EVP_MAC *mac;
	char digest[16];
	uint8_t *secret;
	size_t secretlen;
	uint8_t keyname[255], alg[255];
	size_t keynamelen, alglen;
	uint16_t fudge;
	size_t maclen;
	uint8_t prior[MAC_MAX];   /* the request's MAC, then the last message's */
	size_t priorlen;
	unsigned count;           /* messages signed */
};

static void put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
}

/* A presentation name of the keyring (absolute, lower case) in wire form. */
static int name_wire(const char *s, uint8_t *out, size_t *len)
{
	ldns_rdf *d = NULL;
	int r = DNS_EINVAL;

	if (ldns_str2rdf_dname(&d, s) == LDNS_STATUS_OK && ldns_rdf_size(d) <= 255) {
		ldns_dname2canonical(d);
		memcpy(out, ldns_rdf_data(d), ldns_rdf_size(d));
		*len = ldns_rdf_size(d);
		r = 0;
	}
	ldns_rdf_deep_free(d);
	return r;
}

/* The secret from its base64 (as the keyring holds it), decoded by ldns as
 * its own TSIG code does, so that both paths use the same bytes. */
static int secret_decode(struct dns_wire_tsig *t, const char *b64)
{
	ldns_rdf *raw = NULL;
	int r = DNS_EINVAL;

	if (ldns_str2rdf_b64(&raw, b64) != LDNS_STATUS_OK || ldns_rdf_size(raw) == 0)
		goto out;
	r = DNS_ENOMEM;
	t->secret = malloc(ldns_rdf_size(raw));
	if (t->secret == NULL)
		goto out;
	memcpy(t->secret, ldns_rdf_data(raw), ldns_rdf_size(raw));
	t->secretlen = ldns_rdf_size(raw);
	r = 0;
out:
	if (raw != NULL)
		OPENSSL_cleanse(ldns_rdf_data(raw), ldns_rdf_size(raw));
	ldns_rdf_deep_free(raw);
	return r;
}

int dns_wire_tsig_new(const struct dns_tsig_key *key, const uint8_t *req_mac,
		      size_t req_maclen, struct dns_wire_tsig **out)
{
	struct dns_wire_tsig *t = NULL;
	int r = DNS_EINVAL;

	*out = NULL;
	if (key == NULL || req_maclen > MAC_MAX)
		return DNS_EINVAL;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return DNS_ENOMEM;
	if (strcasecmp(key->alg, "hmac-sha256.") == 0) {
		strcpy(t->digest, "SHA256");
		t->maclen = 32;
	} else if (strcasecmp(key->alg, "hmac-sha512.") == 0) {
		strcpy(t->digest, "SHA512");
		t->maclen = 64;
	} else {
		goto out;
	}
	if ((r = name_wire(key->name, t->keyname, &t->keynamelen)) != 0 ||
	    (r = name_wire(key->alg, t->alg, &t->alglen)) != 0 ||
	    (r = secret_decode(t, key->secret)) != 0)
		goto out;
	t->mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
	if (t->mac == NULL) {
		r = DNS_ENOMEM;
		goto out;
	}
	t->fudge = key->fudge;
	if (req_mac != NULL)
		memcpy(t->prior, req_mac, req_maclen);
	t->priorlen = req_mac != NULL ? req_maclen : 0;
	*out = t;
	t = NULL;
	r = 0;
out:
	dns_wire_tsig_free(t);
	return r;
}

void dns_wire_tsig_free(struct dns_wire_tsig *t)
{
	if (t == NULL)
		return;
	if (t->secret != NULL) {
		OPENSSL_cleanse(t->secret, t->secretlen);
		free(t->secret);
	}
	EVP_MAC_free(t->mac);
	free(t);
}

size_t dns_wire_tsig_len(const struct dns_wire_tsig *t)
{
	/* owner, type/class/ttl/rdlen, then algorithm, time, fudge, MAC size,
	 * MAC, original id, error, other length. */
	return t->keynamelen + 10 + t->alglen + 6 + 2 + 2 + t->maclen + 2 + 2 + 2;
}

/* The MAC over prior MAC, message and the variables @p var. */
static int compute(struct dns_wire_tsig *t, const uint8_t *msg, size_t len,
		   const uint8_t *var, size_t varlen, uint8_t *mac)
{
	OSSL_PARAM params[2];
	EVP_MAC_CTX *c = EVP_MAC_CTX_new(t->mac);
	uint8_t pl[2];
	size_t got = 0;
	int r = DNS_ENOMEM;

	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, t->digest, 0);
	params[1] = OSSL_PARAM_construct_end();
	put16(pl, (uint16_t)t->priorlen);
	if (c == NULL || EVP_MAC_init(c, t->secret, t->secretlen, params) != 1)
		goto out;
	/* The first response covers the request's MAC, the later ones the
	 * prior message's; a request would have none. */
	if ((t->priorlen > 0 || t->count > 0) &&
	    (EVP_MAC_update(c, pl, 2) != 1 || EVP_MAC_update(c, t->prior, t->priorlen) != 1))
		goto out;
	if (EVP_MAC_update(c, msg, len) != 1 || EVP_MAC_update(c, var, varlen) != 1 ||
	    EVP_MAC_final(c, mac, &got, MAC_MAX) != 1 || got != t->maclen)
		goto out;
	r = 0;
out:
	EVP_MAC_CTX_free(c);
	return r;
}

int dns_wire_tsig_sign(struct dns_wire_tsig *t, uint8_t *msg, size_t *len, size_t cap,
		       int64_t now)
{
	uint8_t var[255 + 10 + 255 + 10], tm[8], mac[MAC_MAX], *p;
	size_t vl = 0, need = dns_wire_tsig_len(t);
	uint64_t when = now < 0 ? 0 : (uint64_t)now;
	uint16_t ar;
	int r;

	if (*len < 12)
		return DNS_EFORMAT;
	if (*len + need > cap || *len + need > DNS_WIRE_MAX)
		return DNS_ERANGE;
	for (int i = 0; i < 6; i++)
		tm[i] = (uint8_t)(when >> (40 - 8 * i));
	put16(tm + 6, t->fudge);
	/* RFC 8945 section 4.3.3: every variable for the first message, the
	 * timers only for the later ones of a multi-message answer. */
	if (t->count == 0) {
		memcpy(var, t->keyname, t->keynamelen);
		vl = t->keynamelen;
		put16(var + vl, CLASS_ANY);
		memset(var + vl + 2, 0, 4);
		vl += 6;
		memcpy(var + vl, t->alg, t->alglen);
		vl += t->alglen;
	}
	memcpy(var + vl, tm, 8);
	vl += 8;
	if (t->count == 0) {
		memset(var + vl, 0, 4);   /* error 0, no other data */
		vl += 4;
	}
	if ((r = compute(t, msg, *len, var, vl, mac)) != 0)
		return r;
	p = msg + *len;
	memcpy(p, t->keyname, t->keynamelen);
	p += t->keynamelen;
	put16(p, TSIG_TYPE);
	put16(p + 2, CLASS_ANY);
	memset(p + 4, 0, 4);
	put16(p + 8, (uint16_t)(need - t->keynamelen - 10));
	p += 10;
	memcpy(p, t->alg, t->alglen);
	p += t->alglen;
	memcpy(p, tm, 8);
	p += 8;
	put16(p, (uint16_t)t->maclen);
	memcpy(p + 2, mac, t->maclen);
	p += 2 + t->maclen;
	memcpy(p, msg, 2);        /* original ID */
	memset(p + 2, 0, 4);      /* error, other length */
	ar = (uint16_t)(msg[10] << 8 | msg[11]);
	put16(msg + 10, (uint16_t)(ar + 1));
	*len += need;
	memcpy(t->prior, mac, t->maclen);
	t->priorlen = t->maclen;
	t->count++;
	return 0;
}
