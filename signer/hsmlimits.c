/*
 * hsmlimits: what each key role may sign (see hsmlimits.h).
 *
 * These checks are the last line of defence if the front process is compromised: they
 * run in the HSM process on the exact bytes that are hashed and signed. So they parse
 * the whole item rather than trusting any field the front could have set, and they
 * refuse anything they do not fully understand.
 */
#include "signer/hsmlimits.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/types.h>
/*
 * ldns 1.8.3's headers name RSA and DSA, which OpenSSL 3 hides under
 * OPENSSL_NO_DEPRECATED; declaring the opaque names lets them parse. Nothing
 * deprecated is called through them.
 */
typedef struct rsa_st RSA;
typedef struct dsa_st DSA;
#include <ldns/ldns.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "signer/hsmproto.h"
#include "signer/x509.h"

#define DNS_NAME_MAX 255
#define DNS_TYPE_DNSKEY 48
#define DNS_TYPE_RRSIG 46
#define DNS_CLASS_IN 1
#define DNSSEC_ALG_ECDSAP256SHA256 13
#define DNSKEY_FLAGS_ZSK 256
#define DNSKEY_FLAGS_KSK 257

/* A zone whose DNSSEC keys we know: its name in canonical (lowercase) wire form. */
struct zone {
	char name[DNS_NAME_MAX + 2]; /* lowercase text with the final dot */
	uint8_t wire[DNS_NAME_MAX];
	size_t wire_len;
	int have_ksk, have_zsk;
	uint16_t ksk_tag, zsk_tag;
};

struct hsmlimits {
	struct zone *zones; /* zones[0] is the registry zone */
	size_t n_zones;
	uint8_t *issuer;
	size_t issuer_len;
	int64_t max_validity;
};

enum role_class { ROLE_NONE, ROLE_ROOT, ROLE_CA, ROLE_AUDIT, ROLE_KSK, ROLE_ZSK };

const char *hsmlimits_strerror(int err)
{
	switch (err) {
	case HSMLIMITS_OK: return "success";
	case HSMLIMITS_ERR_NOMEM: return "out of memory";
	case HSMLIMITS_ERR_ARG: return "invalid argument";
	case HSMLIMITS_ERR_KEY: return "public key is not EC P-256";
	case HSMLIMITS_REFUSED: return "refused by the role's hard limits";
	}
	return "unknown hsmlimits error";
}

static int refuse(char *reason, size_t reason_len, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(char *reason, size_t reason_len, const char *fmt, ...)
{
	va_list ap;

	if (reason != NULL && reason_len > 0) {
		va_start(ap, fmt);
		vsnprintf(reason, reason_len, fmt, ap);
		va_end(ap);
	}
	return HSMLIMITS_REFUSED;
}

/* Converts an absolute zone name to lowercase text and canonical wire form with ldns. */
static int zone_init(struct zone *z, const char *name)
{
	ldns_rdf *rdf = NULL;
	size_t n = name ? strlen(name) : 0;
	int r = HSMLIMITS_ERR_ARG;

	memset(z, 0, sizeof(*z));
	if (n < 2 || n > DNS_NAME_MAX || name[n - 1] != '.')
		goto out;
	if (ldns_str2rdf_dname(&rdf, name) != LDNS_STATUS_OK)
		goto out;
	ldns_dname2canonical(rdf);
	if (ldns_rdf_size(rdf) > sizeof(z->wire))
		goto out;
	memcpy(z->wire, ldns_rdf_data(rdf), ldns_rdf_size(rdf));
	z->wire_len = ldns_rdf_size(rdf);
	for (size_t i = 0; i <= n; i++)
		z->name[i] = (char)((name[i] >= 'A' && name[i] <= 'Z') ? name[i] + 32 : name[i]);
	r = HSMLIMITS_OK;
out:
	ldns_rdf_deep_free(rdf);
	return r;
}

int hsmlimits_new(const struct hsmlimits_config *cfg, hsmlimits_t **out)
{
	struct hsmlimits *l = NULL;
	int r = HSMLIMITS_ERR_ARG;

	*out = NULL;
	if (cfg == NULL || cfg->issuer_name_der == NULL || cfg->issuer_name_len == 0 ||
	    cfg->max_validity <= 0)
		goto out;
	r = HSMLIMITS_ERR_NOMEM;
	l = calloc(1, sizeof(*l));
	if (l == NULL)
		goto out;
	l->zones = calloc(1, sizeof(*l->zones));
	l->issuer = malloc(cfg->issuer_name_len);
	if (l->zones == NULL || l->issuer == NULL)
		goto out;
	memcpy(l->issuer, cfg->issuer_name_der, cfg->issuer_name_len);
	l->issuer_len = cfg->issuer_name_len;
	l->max_validity = cfg->max_validity;
	r = zone_init(&l->zones[0], cfg->zone);
	if (r != 0)
		goto out;
	l->n_zones = 1;
	*out = l;
	l = NULL;
	r = HSMLIMITS_OK;
out:
	hsmlimits_free(l);
	return r;
}

void hsmlimits_free(hsmlimits_t *l)
{
	if (l == NULL)
		return;
	free(l->zones);
	free(l->issuer);
	free(l);
}

static struct zone *zone_find(const struct hsmlimits *l, const char *name, size_t n)
{
	for (size_t i = 0; i < l->n_zones; i++) {
		if (strlen(l->zones[i].name) == n && strncasecmp(l->zones[i].name, name, n) == 0)
			return &l->zones[i];
	}
	return NULL;
}

int hsmlimits_zone_add(hsmlimits_t *l, const char *zone)
{
	struct zone z, *zs;
	int r;

	if (l == NULL)
		return HSMLIMITS_ERR_ARG;
	r = zone_init(&z, zone);
	if (r != 0)
		return r;
	if (zone_find(l, z.name, strlen(z.name)) != NULL)
		return HSMLIMITS_ERR_ARG;
	zs = realloc(l->zones, (l->n_zones + 1) * sizeof(*zs));
	if (zs == NULL)
		return HSMLIMITS_ERR_NOMEM;
	l->zones = zs;
	l->zones[l->n_zones++] = z;
	return HSMLIMITS_OK;
}

/*
 * Classifies a role name. Registry keys have fixed names; extra-zone keys are
 * "<zone>/ksk" or "<zone>/zsk" for a registered zone. *zone is set for DNSSEC roles.
 */
static enum role_class role_classify(const struct hsmlimits *l, const char *role,
                                     struct zone **zone)
{
	const char *slash;

	*zone = NULL;
	if (role == NULL)
		return ROLE_NONE;
	if (strcmp(role, "root") == 0 || strcmp(role, "root-ca") == 0)
		return ROLE_ROOT;
	if (strcmp(role, HSMLIMITS_ROLE_ISSUING_CA) == 0)
		return ROLE_CA;
	if (strcmp(role, HSMLIMITS_ROLE_AUDIT) == 0)
		return ROLE_AUDIT;
	if (strcmp(role, HSMLIMITS_ROLE_KSK) == 0 || strcmp(role, HSMLIMITS_ROLE_ZSK) == 0) {
		*zone = &l->zones[0];
		return role[0] == 'k' ? ROLE_KSK : ROLE_ZSK;
	}
	slash = strrchr(role, '/');
	if (slash == NULL || (strcmp(slash, "/ksk") != 0 && strcmp(slash, "/zsk") != 0))
		return ROLE_NONE;
	*zone = zone_find(l, role, (size_t)(slash - role));
	/* The registry zone's keys are only ever "ksk" and "zsk". */
	if (*zone == NULL || *zone == &l->zones[0]) {
		*zone = NULL;
		return ROLE_NONE;
	}
	return slash[1] == 'k' ? ROLE_KSK : ROLE_ZSK;
}

/* The DNSKEY key tag (RFC 4034 App. B, via ldns) of a P-256 SPKI with the given flags. */
static int spki_key_tag(const uint8_t *spki, size_t len, uint16_t flags, uint16_t *tag)
{
	const unsigned char *p = spki;
	EVP_PKEY *pkey = NULL;
	uint8_t rdata[3 + 65]; /* flags, protocol, algorithm over the 0x04 of 04||x||y */
	char group[32];
	size_t n = 0;
	int r = HSMLIMITS_ERR_KEY;

	if (len > 4096)
		goto out;
	pkey = d2i_PUBKEY(NULL, &p, (long)len);
	if (pkey == NULL || p != spki + len || !EVP_PKEY_is_a(pkey, "EC"))
		goto out;
	if (!EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group,
	                                    sizeof(group), NULL) ||
	    strcmp(group, "prime256v1") != 0)
		goto out;
	/* DNSSEC wants x||y; ask OpenSSL for the uncompressed point 04||x||y. */
	if (!EVP_PKEY_set_utf8_string_param(pkey, OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	                                    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_UNCOMPRESSED) ||
	    !EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
	                                     rdata + 3, 65, &n) ||
	    n != 65 || rdata[3] != 0x04)
		goto out;
	rdata[0] = (uint8_t)(flags >> 8);
	rdata[1] = (uint8_t)flags;
	rdata[2] = 3; /* protocol */
	rdata[3] = DNSSEC_ALG_ECDSAP256SHA256;
	*tag = ldns_calc_keytag_raw(rdata, sizeof(rdata));
	r = HSMLIMITS_OK;
out:
	EVP_PKEY_free(pkey);
	return r;
}

int hsmlimits_key_set(hsmlimits_t *l, const char *role, const uint8_t *spki, size_t len)
{
	struct zone *z;
	enum role_class c;
	uint16_t tag = 0;
	int r;

	if (l == NULL || spki == NULL || len == 0)
		return HSMLIMITS_ERR_ARG;
	c = role_classify(l, role, &z);
	if (c == ROLE_NONE || c == ROLE_ROOT)
		return HSMLIMITS_ERR_ARG;
	r = spki_key_tag(spki, len, c == ROLE_KSK ? DNSKEY_FLAGS_KSK : DNSKEY_FLAGS_ZSK, &tag);
	if (r != 0)
		return r;
	if (c == ROLE_KSK) {
		if (z->have_ksk)
			return HSMLIMITS_ERR_ARG;
		z->have_ksk = 1;
		z->ksk_tag = tag;
	} else if (c == ROLE_ZSK) {
		if (z->have_zsk)
			return HSMLIMITS_ERR_ARG;
		z->have_zsk = 1;
		z->zsk_tag = tag;
	}
	return HSMLIMITS_OK;
}

int hsmlimits_key_tag(const hsmlimits_t *l, const char *role, uint16_t *tag)
{
	struct zone *z;
	enum role_class c;

	if (l == NULL || tag == NULL)
		return HSMLIMITS_ERR_ARG;
	c = role_classify(l, role, &z);
	if (c == ROLE_KSK && z->have_ksk)
		*tag = z->ksk_tag;
	else if (c == ROLE_ZSK && z->have_zsk)
		*tag = z->zsk_tag;
	else
		return HSMLIMITS_ERR_ARG;
	return HSMLIMITS_OK;
}

/* ---- RRSIG data ------------------------------------------------------------------- */

struct rd {
	const uint8_t *p;
	size_t left;
	int bad;
};

static const uint8_t *rd_take(struct rd *r, size_t n)
{
	const uint8_t *p;

	if (r->bad || n > r->left) {
		r->bad = 1;
		return NULL;
	}
	p = r->p;
	r->p += n;
	r->left -= n;
	return p;
}

static uint32_t rd_be(struct rd *r, size_t n)
{
	const uint8_t *p = rd_take(r, n);
	uint32_t v = 0;

	for (size_t i = 0; p && i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/*
 * Reads an uncompressed wire name into out, lowercased, and counts its labels (root
 * excluded; a leading "*" label is reported through *wild). Compression pointers and
 * over-long names are refused: canonical RRSIG data has neither.
 */
static int rd_name(struct rd *r, uint8_t out[DNS_NAME_MAX], size_t *len, unsigned *labels,
                   int *wild)
{
	size_t n = 0;

	*labels = 0;
	*wild = 0;
	for (;;) {
		uint8_t ll = (uint8_t)rd_be(r, 1);
		const uint8_t *p;

		if (r->bad || ll > 63 || n + 1 + ll > DNS_NAME_MAX)
			return -1;
		out[n++] = ll;
		if (ll == 0)
			break;
		p = rd_take(r, ll);
		if (p == NULL)
			return -1;
		if (*labels == 0 && ll == 1 && p[0] == '*')
			*wild = 1;
		for (size_t i = 0; i < ll; i++)
			out[n++] = (uint8_t)((p[i] >= 'A' && p[i] <= 'Z') ? p[i] + 32 : p[i]);
		(*labels)++;
	}
	*len = n;
	return 0;
}

/* True if the lowercase wire name is the zone or below it, on a label boundary. */
static int name_under(const uint8_t *name, size_t len, const struct zone *z)
{
	size_t i = 0;

	while (i < len) {
		if (len - i == z->wire_len && memcmp(name + i, z->wire, z->wire_len) == 0)
			return 1;
		if (name[i] == 0)
			break;
		i += 1 + name[i];
	}
	return 0;
}

static const char *kind_name(int kind)
{
	switch (kind) {
	case HSMPROTO_KIND_TBS_CERT: return "a TBSCertificate";
	case HSMPROTO_KIND_TBS_CRL: return "a TBSCertList";
	case HSMPROTO_KIND_RRSIG_DATA: return "RRSIG data";
	case HSMPROTO_KIND_CHECKPOINT: return "an audit checkpoint";
	}
	return "an unknown kind of data";
}

static int check_rrsig(const struct zone *z, enum role_class c, const char *role,
                       const uint8_t *data, size_t len, char *reason, size_t rlen)
{
	struct rd r = { data, len, 0 };
	uint8_t signer[DNS_NAME_MAX], owner[DNS_NAME_MAX], first[DNS_NAME_MAX];
	size_t signer_len, owner_len, first_len = 0;
	unsigned covered, alg, labels, ttl, tag, nlabels;
	int wild, have_tag = c == ROLE_KSK ? z->have_ksk : z->have_zsk;
	uint16_t want_tag = c == ROLE_KSK ? z->ksk_tag : z->zsk_tag;
	size_t rrs = 0;

	if (!have_tag)
		return refuse(reason, rlen, "role %s has no public key to check the key tag", role);
	covered = rd_be(&r, 2);
	alg = rd_be(&r, 1);
	labels = rd_be(&r, 1);
	ttl = rd_be(&r, 4);
	(void)rd_be(&r, 4); /* expiration: the front's policy bounds lifetimes */
	(void)rd_be(&r, 4); /* inception */
	tag = rd_be(&r, 2);
	if (r.bad || rd_name(&r, signer, &signer_len, &nlabels, &wild) != 0)
		return refuse(reason, rlen, "RRSIG data truncated or malformed before the RRset");
	if (alg != DNSSEC_ALG_ECDSAP256SHA256)
		return refuse(reason, rlen, "RRSIG algorithm %u is not 13", alg);
	if (tag != want_tag)
		return refuse(reason, rlen, "RRSIG key tag %u is not the tag %u of role %s", tag,
		              (unsigned)want_tag, role);
	if (signer_len != z->wire_len || memcmp(signer, z->wire, signer_len) != 0)
		return refuse(reason, rlen, "RRSIG signer name is not %s, the zone of role %s",
		              z->name, role);
	if (covered == DNS_TYPE_RRSIG || covered == 0)
		return refuse(reason, rlen, "RRSIG type covered %u is never signed", covered);
	if (c == ROLE_ZSK && covered == DNS_TYPE_DNSKEY)
		return refuse(reason, rlen, "role %s (a ZSK) may not sign the DNSKEY RRset", role);
	if (c == ROLE_KSK && covered != DNS_TYPE_DNSKEY)
		return refuse(reason, rlen, "role %s (a KSK) signs only the DNSKEY RRset, not type %u",
		              role, covered);
	while (r.left > 0) {
		unsigned type, class, rrttl, rdlen;

		if (rd_name(&r, owner, &owner_len, &nlabels, &wild) != 0)
			return refuse(reason, rlen, "RR %zu: malformed owner name", rrs + 1);
		type = rd_be(&r, 2);
		class = rd_be(&r, 2);
		rrttl = rd_be(&r, 4);
		rdlen = rd_be(&r, 2);
		if (r.bad || rd_take(&r, rdlen) == NULL)
			return refuse(reason, rlen, "RR %zu: truncated", rrs + 1);
		if (rrs == 0) {
			memcpy(first, owner, owner_len);
			first_len = owner_len;
			if (!name_under(owner, owner_len, z))
				return refuse(reason, rlen, "RR owner is not in zone %s", z->name);
			if (covered == DNS_TYPE_DNSKEY &&
			    (owner_len != z->wire_len || memcmp(owner, z->wire, owner_len) != 0))
				return refuse(reason, rlen, "DNSKEY RRset not at the apex of %s", z->name);
			if (labels != nlabels - (unsigned)wild)
				return refuse(reason, rlen, "RRSIG labels %u do not match the owner name",
				              labels);
		} else if (owner_len != first_len || memcmp(owner, first, owner_len) != 0) {
			return refuse(reason, rlen, "RR %zu: owner differs from the RRset's", rrs + 1);
		}
		if (type != covered || class != DNS_CLASS_IN || rrttl != ttl)
			return refuse(reason, rlen,
			              "RR %zu: type %u class %u ttl %u differ from type covered %u "
			              "class IN original TTL %u", rrs + 1, type, class, rrttl, covered, ttl);
		rrs++;
	}
	if (rrs == 0)
		return refuse(reason, rlen, "RRSIG data holds no RR");
	return HSMLIMITS_OK;
}

static int check_x509(const struct hsmlimits *l, int kind, const uint8_t *data, size_t len,
                      char *reason, size_t rlen)
{
	char detail[X509_DETAIL_SIZE] = "";
	int e;

	if (kind == HSMPROTO_KIND_TBS_CERT)
		e = x509_tbs_cert_check_device(data, len, l->issuer, l->issuer_len, l->zones[0].name,
		                               l->max_validity, detail, sizeof(detail));
	else
		e = x509_tbs_crl_check(data, len, l->issuer, l->issuer_len, detail, sizeof(detail));
	if (e == X509_ERR_NOMEM)
		return HSMLIMITS_ERR_NOMEM;
	if (e != X509_OK)
		return refuse(reason, rlen, "%s: %s", x509_strerror(e),
		              detail[0] ? detail : "refused");
	return HSMLIMITS_OK;
}

int hsmlimits_check(const hsmlimits_t *l, const char *role, int kind, int format,
                    const uint8_t *data, size_t len, char *reason, size_t reason_len)
{
	struct zone *z = NULL;
	enum role_class c;

	if (reason != NULL && reason_len > 0)
		reason[0] = '\0';
	if (l == NULL || data == NULL || len == 0)
		return refuse(reason, reason_len, "nothing to sign");
	c = role_classify(l, role, &z);
	switch (c) {
	case ROLE_NONE:
		return refuse(reason, reason_len, "unknown role %s", role ? role : "(none)");
	case ROLE_ROOT:
		return refuse(reason, reason_len, "the root CA key is never used online");
	case ROLE_CA:
		if (kind != HSMPROTO_KIND_TBS_CERT && kind != HSMPROTO_KIND_TBS_CRL)
			break;
		if (format != HSMPROTO_FORMAT_DER)
			return refuse(reason, reason_len, "X.509 signatures must be DER");
		return check_x509(l, kind, data, len, reason, reason_len);
	case ROLE_AUDIT:
		if (kind != HSMPROTO_KIND_CHECKPOINT)
			break;
		if (len <= HSMLIMITS_CHECKPOINT_PREFIX_LEN ||
		    memcmp(data, HSMLIMITS_CHECKPOINT_PREFIX, HSMLIMITS_CHECKPOINT_PREFIX_LEN) != 0)
			return refuse(reason, reason_len, "checkpoint does not start with the "
			              "checkpoint prefix or is empty after it");
		return HSMLIMITS_OK;
	case ROLE_KSK:
	case ROLE_ZSK:
		if (kind != HSMPROTO_KIND_RRSIG_DATA)
			break;
		if (format != HSMPROTO_FORMAT_RAW)
			return refuse(reason, reason_len, "DNSSEC signatures must be raw");
		return check_rrsig(z, c, role, data, len, reason, reason_len);
	}
	return refuse(reason, reason_len, "role %s may not sign %s", role, kind_name(kind));
}
