/* A signed in-memory test zone for the DNS listener (see test_dns_support.h). */
#include "test_dns_support.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/ec.h>
#include <openssl/sha.h>

#include "signer/dns_journal.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"

static int p256_sign(EVP_PKEY *key, const uint8_t *data, size_t len, uint8_t sig[64])
{
	int r = -1;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	size_t dlen = sizeof(der);
	const unsigned char *p = der;
	ECDSA_SIG *es = NULL;

	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &dlen, data, len) != 1)
		goto out;
	es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	if (es == NULL || BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) != 32 ||
	    BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) != 32)
		goto out;
	r = 0;
out:
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return r;
}

int tds_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	struct tds_zone *t = ctx;

	for (size_t i = 0; i < n; i++) {
		EVP_PKEY *k = reqs[i].role == ZONE_KEY_KSK ? t->ksk : t->zsk;
		if (p256_sign(k, reqs[i].data, reqs[i].len, reqs[i].sig) != 0)
			return -1;
	}
	t->sigs += n;
	return 0;
}

void tds_device_id(uint32_t i, char id[21])
{
	/* Spread the ids so that new devices land all over the NSEC chain. */
	uint32_t h = i * 2654435761u;

	snprintf(id, 21, "8912%08x%08x", h, i);
}

static int commit(struct tds_zone *t, struct zone_change *c)
{
	struct zone_diff *d = NULL;
	int r;

	t->now = (int64_t)time(NULL);
	r = zone_change_commit(c, t->now, tds_sign, t, &d);
	zone_change_free(c);
	if (r != 0)
		return r;
	if (zone_diff_serial_from(d) != 0)
		r = dns_journal_mem_add(t->journal, d);
	zone_diff_free(d);
	return r;
}

int tds_zone_init(struct tds_zone *t, const char *origin, size_t ndev)
{
	struct zone_params p;
	struct zone_change *c = NULL;
	struct zone_device *devs = NULL;
	char (*ids)[21] = NULL;
	uint8_t (*hash)[32] = NULL;
	int r = -1;

	memset(t, 0, sizeof(*t));
	t->ksk = EVP_EC_gen("P-256");
	t->zsk = EVP_EC_gen("P-256");
	if (t->ksk == NULL || t->zsk == NULL)
		goto out;
	zone_params_init(&p);
	if (origin != NULL)
		p.origin = origin;
	if ((r = zone_dnskey_from_pkey(t->ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk)) != 0 ||
	    (r = zone_dnskey_from_pkey(t->zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk)) != 0)
		goto out;
	/* Equal key tags would make the zone's roles ambiguous; try again. */
	if (p.ksk.key_tag == p.zsk.key_tag) {
		tds_zone_free(t);
		return tds_zone_init(t, origin, ndev);
	}
	if ((r = zone_new(&p, &t->z)) != 0 || (r = dns_journal_mem_new(0, &t->journal)) != 0)
		goto out;
	if ((r = zone_change_begin(t->z, &c)) != 0)
		goto out;
	if ((r = commit(t, c)) != 0)
		goto out;
	if (ndev == 0)
		goto done;
	r = -1;
	devs = calloc(ndev, sizeof(*devs));
	ids = calloc(ndev, sizeof(*ids));
	hash = calloc(ndev, sizeof(*hash));
	if (devs == NULL || ids == NULL || hash == NULL)
		goto out;
	for (size_t i = 0; i < ndev; i++) {
		tds_device_id(t->next + (uint32_t)i, ids[i]);
		SHA256((const unsigned char *)ids[i], strlen(ids[i]), hash[i]);
		devs[i].id = ids[i];
		devs[i].index = 1;
		devs[i].styles = ZONE_STYLE_SEED;
		devs[i].cert_sha256 = hash[i];
	}
	r = zone_bulk_import(t->z, devs, ndev, t->now, tds_sign, t, 0);
	if (r != 0)
		goto out;
	t->next += (uint32_t)ndev;
	dns_journal_mem_reset(t->journal);
done:
	r = 0;
out:
	free(devs);
	free(ids);
	free(hash);
	return r;
}

int tds_zone_add(struct tds_zone *t, size_t n)
{
	struct zone_change *c = NULL;
	struct zone_device dev = { 0 };
	uint8_t h[32];
	char id[21];
	int r;

	if ((r = zone_change_begin(t->z, &c)) != 0)
		return r;
	for (size_t i = 0; i < n; i++) {
		tds_device_id(t->next, id);
		SHA256((const unsigned char *)id, strlen(id), h);
		dev.id = id;
		dev.index = 1;
		dev.styles = ZONE_STYLE_SEED;
		dev.cert_sha256 = h;
		if ((r = zone_change_device_add(c, &dev)) != 0) {
			zone_change_free(c);
			return r;
		}
		t->next++;
	}
	return commit(t, c);
}

int tds_zone_remove(struct tds_zone *t, uint32_t i)
{
	struct zone_change *c = NULL;
	char id[21];
	int r;

	tds_device_id(i, id);
	if ((r = zone_change_begin(t->z, &c)) != 0)
		return r;
	if ((r = zone_change_device_remove(c, id, 1)) != 0) {
		zone_change_free(c);
		return r;
	}
	return commit(t, c);
}

/* Add or remove one RR given as text. */
static int rr_apply(struct zone_change *c, const char *text, bool add)
{
	ldns_rr *rr = NULL;
	int r;

	if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
		return -1;
	r = add ? zone_change_rr_add(c, rr) : zone_change_rr_remove(c, rr);
	ldns_rr_free(rr);
	return r;
}

int tds_zone_rrs(struct tds_zone *t, const char *const *add, size_t nadd,
		 const char *const *del, size_t ndel)
{
	struct zone_change *c = NULL;
	int r;

	if ((r = zone_change_begin(t->z, &c)) != 0)
		return r;
	for (size_t i = 0; i < nadd + ndel; i++) {
		r = i < nadd ? rr_apply(c, add[i], true) : rr_apply(c, del[i - nadd], false);
		if (r != 0) {
			zone_change_free(c);
			return r;
		}
	}
	return commit(t, c);
}

void tds_zone_free(struct tds_zone *t)
{
	zone_free(t->z);
	dns_journal_mem_free(t->journal);
	EVP_PKEY_free(t->ksk);
	EVP_PKEY_free(t->zsk);
	memset(t, 0, sizeof(*t));
}
