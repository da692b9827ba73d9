/*
 * Tests of signer/hsmlimits: what each key role may sign. In-memory OpenSSL keys stand in
 * for the HSM's; the X.509 TBS are built with signer/x509.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "tests/unit/test_hsm_support.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "signer/hsmlimits.h"
#include "signer/hsmproto.h"
#include "signer/x509.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_dnskey.h"

#define ZONE "iotregistry.test."
#define DAY 86400

struct env {
	EVP_PKEY *root_key, *ca_key, *dev_key, *zsk, *ksk, *xzsk, *xksk;
	X509 *root, *ca;
	uint8_t *issuer;
	size_t issuer_len;
	hsmlimits_t *l;
	uint16_t zsk_tag, ksk_tag, xzsk_tag, xksk_tag;
};

/* ---- helpers ----------------------------------------------------------------------- */

static EVP_PKEY *ec_key(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

static size_t spki_of(EVP_PKEY *k, uint8_t **out)
{
	int n;

	*out = NULL;
	n = i2d_PUBKEY(k, out);
	assert_true(n > 0);
	return (size_t)n;
}

static size_t put16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)(v >> 8);
	p[1] = (uint8_t)v;
	return 2;
}

static size_t put32(uint8_t *p, uint32_t v)
{
	put16(p, (uint16_t)(v >> 16));
	put16(p + 2, (uint16_t)v);
	return 4;
}

struct rrsig {
	uint16_t covered;
	uint8_t alg;
	uint8_t labels;
	uint32_t ttl;
	uint16_t tag;
	const char *signer;
	const char *owner;
	uint16_t type;   /* of the RRs */
	uint16_t class;
	uint32_t rrttl;
	int nrr;
};

/* A good RRSIG data for "www.<zone>" A signed by the registry ZSK, to be modified. */
static struct rrsig rrsig_default(const struct env *e)
{
	struct rrsig s = { 1, 13, 3, 300, e->zsk_tag, ZONE, "www." ZONE, 1, 1, 300, 2 };

	return s;
}

static size_t rrsig_build(const struct rrsig *s, uint8_t *buf)
{
	size_t n = 0;

	n += put16(buf + n, s->covered);
	buf[n++] = s->alg;
	buf[n++] = s->labels;
	n += put32(buf + n, s->ttl);
	n += put32(buf + n, 1700086400);
	n += put32(buf + n, 1700000000);
	n += put16(buf + n, s->tag);
	n += ths_name_wire(s->signer, buf + n);
	for (int i = 0; i < s->nrr; i++) {
		n += ths_name_wire(s->owner, buf + n);
		n += put16(buf + n, s->type);
		n += put16(buf + n, s->class);
		n += put32(buf + n, s->rrttl);
		n += put16(buf + n, 4);
		n += put32(buf + n, 0x0a000001u + (uint32_t)i);
	}
	return n;
}

static int check_rrsig(const struct env *e, const char *role, const struct rrsig *s,
                       char *reason, size_t rlen)
{
	uint8_t buf[1024];
	size_t n = rrsig_build(s, buf);

	return hsmlimits_check(e->l, role, HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW, buf, n,
	                       reason, rlen);
}

static void assert_refused(int r, const char *reason, const char *needle)
{
	assert_int_equal(r, HSMLIMITS_REFUSED);
	if (strstr(reason, needle) == NULL)
		fail_msg("reason \"%s\" lacks \"%s\"", reason, needle);
}

/* ---- fixture ----------------------------------------------------------------------- */

static X509 *make_cert(enum x509_profile p, EVP_PKEY *subject, const X509 *issuer,
                       EVP_PKEY *signer, const char *name)
{
	struct x509_cert_spec spec;
	X509_NAME *xn = NULL;
	X509 *cert = NULL;

	memset(&spec, 0, sizeof(spec));
	spec.profile = p;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.not_before = time(NULL) - 3600;
	spec.not_after = spec.not_before + 3650 * DAY;
	spec.subject_key = subject;
	spec.issuer = issuer;
	assert_int_equal(x509_name_parse(name, &xn), X509_OK);
	spec.subject = xn;
	if (p == X509_PROFILE_ISSUING)
		spec.zone = "iotregistry.test";
	assert_int_equal(x509_cert_create(&spec, x509_sign_with_pkey, signer, &cert), X509_OK);
	X509_NAME_free(xn);
	return cert;
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	struct hsmlimits_config cfg;
	uint8_t *spki;
	size_t len;

	assert_non_null(e);
	e->root_key = ec_key();
	e->ca_key = ec_key();
	e->dev_key = ec_key();
	e->zsk = ec_key();
	e->ksk = ec_key();
	e->xzsk = ec_key();
	e->xksk = ec_key();
	e->root = make_cert(X509_PROFILE_ROOT, e->root_key, NULL, e->root_key,
	                    "/O=Test/CN=Test Root CA");
	e->ca = make_cert(X509_PROFILE_ISSUING, e->ca_key, e->root, e->root_key,
	                  "/O=Test/CN=Test Issuing CA");
	assert_int_equal(x509_name_der(X509_get_subject_name(e->ca), &e->issuer, &e->issuer_len),
	                 X509_OK);
	memset(&cfg, 0, sizeof(cfg));
	cfg.zone = ZONE;
	cfg.issuer_name_der = e->issuer;
	cfg.issuer_name_len = e->issuer_len;
	cfg.max_validity = 398 * DAY;
	assert_int_equal(hsmlimits_new(&cfg, &e->l), HSMLIMITS_OK);
	assert_int_equal(hsmlimits_zone_add(e->l, "asp.test."), HSMLIMITS_OK);

	len = spki_of(e->zsk, &spki);
	assert_int_equal(hsmlimits_key_set(e->l, "zsk", spki, len), HSMLIMITS_OK);
	OPENSSL_free(spki);
	len = spki_of(e->ksk, &spki);
	assert_int_equal(hsmlimits_key_set(e->l, "ksk", spki, len), HSMLIMITS_OK);
	OPENSSL_free(spki);
	len = spki_of(e->xzsk, &spki);
	assert_int_equal(hsmlimits_key_set(e->l, "asp.test./zsk", spki, len), HSMLIMITS_OK);
	OPENSSL_free(spki);
	len = spki_of(e->xksk, &spki);
	assert_int_equal(hsmlimits_key_set(e->l, "asp.test./ksk", spki, len), HSMLIMITS_OK);
	OPENSSL_free(spki);
	len = spki_of(e->ca_key, &spki);
	assert_int_equal(hsmlimits_key_set(e->l, "issuing-ca", spki, len), HSMLIMITS_OK);
	OPENSSL_free(spki);
	e->zsk_tag = ths_key_tag(e->zsk, 256);
	e->ksk_tag = ths_key_tag(e->ksk, 257);
	e->xzsk_tag = ths_key_tag(e->xzsk, 256);
	e->xksk_tag = ths_key_tag(e->xksk, 257);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	hsmlimits_free(e->l);
	OPENSSL_free(e->issuer);
	X509_free(e->root);
	X509_free(e->ca);
	EVP_PKEY_free(e->root_key);
	EVP_PKEY_free(e->ca_key);
	EVP_PKEY_free(e->dev_key);
	EVP_PKEY_free(e->zsk);
	EVP_PKEY_free(e->ksk);
	EVP_PKEY_free(e->xzsk);
	EVP_PKEY_free(e->xksk);
	free(e);
	return 0;
}

/* ---- setup refusals ---------------------------------------------------------------- */

static void test_setup_refusals(void **state)
{
	struct env *e = *state;
	struct hsmlimits_config cfg = { "iotregistry.test", e->issuer, e->issuer_len, DAY };
	hsmlimits_t *l = NULL;
	uint16_t tag = 0;
	uint8_t *spki;
	size_t len;

	/* Relative zone, no issuer, no cap. */
	assert_int_equal(hsmlimits_new(&cfg, &l), HSMLIMITS_ERR_ARG);
	cfg.zone = ZONE;
	cfg.issuer_name_len = 0;
	assert_int_equal(hsmlimits_new(&cfg, &l), HSMLIMITS_ERR_ARG);
	cfg.issuer_name_len = e->issuer_len;
	cfg.max_validity = 0;
	assert_int_equal(hsmlimits_new(&cfg, &l), HSMLIMITS_ERR_ARG);
	assert_null(l);
	/* The registry zone is not an extra zone; an extra zone is added once. */
	assert_int_equal(hsmlimits_zone_add(e->l, "IOTREGISTRY.test."), HSMLIMITS_ERR_ARG);
	assert_int_equal(hsmlimits_zone_add(e->l, "asp.test."), HSMLIMITS_ERR_ARG);
	/* Keys: the root never; unknown roles never; a key set twice refused. */
	len = spki_of(e->zsk, &spki);
	assert_int_equal(hsmlimits_key_set(e->l, "root", spki, len), HSMLIMITS_ERR_ARG);
	assert_int_equal(hsmlimits_key_set(e->l, "other.test./zsk", spki, len), HSMLIMITS_ERR_ARG);
	assert_int_equal(hsmlimits_key_set(e->l, "zsk", spki, len), HSMLIMITS_ERR_ARG);
	OPENSSL_free(spki);
	/* The tags computed match RFC 4034 Appendix B. */
	assert_int_equal(hsmlimits_key_tag(e->l, "zsk", &tag), 0);
	assert_int_equal(tag, e->zsk_tag);
	assert_int_equal(hsmlimits_key_tag(e->l, "ksk", &tag), 0);
	assert_int_equal(tag, e->ksk_tag);
	assert_int_equal(hsmlimits_key_tag(e->l, "asp.test./ksk", &tag), 0);
	assert_int_equal(tag, e->xksk_tag);
	assert_int_equal(hsmlimits_key_tag(e->l, "audit", &tag), HSMLIMITS_ERR_ARG);
}

/* ---- X.509 ------------------------------------------------------------------------- */

static int check_device(const struct env *e, const char *zone, const X509 *issuer,
                        int64_t validity, char *reason, size_t rlen)
{
	struct x509_cert_spec spec;
	unsigned char *tbs = NULL;
	size_t len = 0;
	int r;

	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_DEVICE;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.not_before = time(NULL) - 3600;
	spec.not_after = spec.not_before + validity;
	spec.subject_key = e->dev_key;
	spec.issuer = issuer;
	spec.zone = zone;
	spec.index = 1;
	spec.device_id = "8912230200031010008f";
	assert_int_equal(x509_cert_tbs_build(&spec, &tbs, &len), X509_OK);
	r = hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_TBS_CERT, HSMPROTO_FORMAT_DER, tbs,
	                    len, reason, rlen);
	free(tbs);
	return r;
}

static void test_device_tbs(void **state)
{
	struct env *e = *state;
	char reason[256];

	assert_int_equal(check_device(e, "iotregistry.test", e->ca, 365 * DAY, reason,
	                              sizeof(reason)), HSMLIMITS_OK);
	/* Too long, a wrong issuer (the root), a name outside the zone. */
	assert_refused(check_device(e, "iotregistry.test", e->ca, 400 * DAY, reason,
	                            sizeof(reason)), reason, "validity");
	assert_refused(check_device(e, "iotregistry.test", e->root, 365 * DAY, reason,
	                            sizeof(reason)), reason, "issuer");
	assert_refused(check_device(e, "other.test", e->ca, 365 * DAY, reason, sizeof(reason)),
	               reason, "zone");
}

static void test_ca_tbs_refused(void **state)
{
	struct env *e = *state;
	struct x509_cert_spec spec;
	unsigned char *tbs = NULL;
	char reason[256];
	X509_NAME *xn = NULL;
	size_t len = 0;

	/* A sub-CA TBS under the issuing CA (CA:true, and nameConstraints). */
	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_ISSUING;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.not_before = time(NULL);
	spec.not_after = spec.not_before + 30 * DAY;
	spec.subject_key = e->dev_key;
	spec.issuer = e->ca;
	assert_int_equal(x509_name_parse("/CN=Sub CA", &xn), X509_OK);
	spec.subject = xn;
	spec.zone = "iotregistry.test";
	assert_int_equal(x509_cert_tbs_build(&spec, &tbs, &len), X509_OK);
	assert_int_equal(hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_TBS_CERT,
	                                 HSMPROTO_FORMAT_DER, tbs, len, reason, sizeof(reason)),
	                 HSMLIMITS_REFUSED);
	free(tbs);
	X509_NAME_free(xn);
	xn = NULL;
	/*
	 * A CA:true TBS whose issuer is exactly the issuing CA's name and that has no
	 * nameConstraints: a self-issued "root" profile with the CA's own subject.
	 */
	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_ROOT;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.not_before = time(NULL);
	spec.not_after = spec.not_before + 30 * DAY;
	spec.subject_key = e->dev_key;
	spec.subject = X509_get_subject_name(e->ca);
	assert_int_equal(x509_cert_tbs_build(&spec, &tbs, &len), X509_OK);
	assert_refused(hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_TBS_CERT,
	                               HSMPROTO_FORMAT_DER, tbs, len, reason, sizeof(reason)),
	               reason, "CA:true");
	/* Sent as a CRL it is refused too; and signing it raw is refused for the format. */
	assert_int_equal(hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_TBS_CRL,
	                                 HSMPROTO_FORMAT_DER, tbs, len, reason, sizeof(reason)),
	                 HSMLIMITS_REFUSED);
	assert_refused(hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_TBS_CERT,
	                               HSMPROTO_FORMAT_RAW, tbs, len, reason, sizeof(reason)),
	               reason, "DER");
	/* The ZSK never signs a certificate. */
	assert_refused(hsmlimits_check(e->l, "zsk", HSMPROTO_KIND_TBS_CERT, HSMPROTO_FORMAT_DER,
	                               tbs, len, reason, sizeof(reason)), reason, "may not sign");
	free(tbs);
	X509_NAME_free(xn);
}

static void test_crl_tbs(void **state)
{
	struct env *e = *state;
	struct x509_crl_spec spec;
	unsigned char *tbs = NULL, serial[1] = { 5 };
	struct x509_crl_entry entry = { serial, 1, 0, 1 };
	char reason[256];
	size_t len = 0;

	entry.revoked_at = time(NULL) - 60;
	memset(&spec, 0, sizeof(spec));
	spec.issuer = e->ca;
	spec.this_update = time(NULL);
	spec.next_update = spec.this_update + 7 * DAY;
	spec.number = 3;
	spec.entries = &entry;
	spec.n_entries = 1;
	assert_int_equal(x509_crl_tbs_build(&spec, &tbs, &len), X509_OK);
	assert_int_equal(hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_TBS_CRL,
	                                 HSMPROTO_FORMAT_DER, tbs, len, reason, sizeof(reason)),
	                 HSMLIMITS_OK);
	free(tbs);
	/* A CRL of another issuer (the root) is refused. */
	spec.issuer = e->root;
	assert_int_equal(x509_crl_tbs_build(&spec, &tbs, &len), X509_OK);
	assert_refused(hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_TBS_CRL,
	                               HSMPROTO_FORMAT_DER, tbs, len, reason, sizeof(reason)),
	               reason, "issuer");
	free(tbs);
}

/* ---- DNSSEC ------------------------------------------------------------------------ */

static void test_rrsig_zsk(void **state)
{
	struct env *e = *state;
	struct rrsig s = rrsig_default(e);
	char reason[256];

	assert_int_equal(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), HSMLIMITS_OK);
	/* The ZSK never signs the DNSKEY RRset. */
	s.covered = s.type = 48;
	s.owner = ZONE;
	s.labels = 2;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "DNSKEY");
	/* Wrong signer name: another zone, a parent. */
	s = rrsig_default(e);
	s.signer = "asp.test.";
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "signer");
	s.signer = "test.";
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "signer");
	/* The signer name compares without regard to case. */
	s.signer = "IoTRegistry.TEST.";
	assert_int_equal(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), HSMLIMITS_OK);
	/* Wrong key tag (the KSK's), wrong algorithm. */
	s = rrsig_default(e);
	s.tag = e->ksk_tag;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "key tag");
	s = rrsig_default(e);
	s.alg = 8;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "algorithm");
	/* An owner outside the zone, RRs of another type than covered, another class/TTL. */
	s = rrsig_default(e);
	s.owner = "www.example.";
	s.labels = 2;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "not in zone");
	s = rrsig_default(e);
	s.owner = "wwwiotregistry.test.";
	s.labels = 2;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "not in zone");
	s = rrsig_default(e);
	s.type = 48;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "type");
	s = rrsig_default(e);
	s.class = 3;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "class");
	s = rrsig_default(e);
	s.rrttl = 301;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "ttl");
	/* Labels must match the owner; a wildcard owner has one label fewer. */
	s = rrsig_default(e);
	s.labels = 2;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "labels");
	s.owner = "*." ZONE;
	assert_int_equal(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), HSMLIMITS_OK);
	/* No RR at all. */
	s = rrsig_default(e);
	s.nrr = 0;
	assert_refused(check_rrsig(e, "zsk", &s, reason, sizeof(reason)), reason, "no RR");
	/* Raw signatures only. */
	{
		uint8_t buf[1024];
		size_t n;

		s = rrsig_default(e);
		n = rrsig_build(&s, buf);
		assert_refused(hsmlimits_check(e->l, "zsk", HSMPROTO_KIND_RRSIG_DATA,
		                               HSMPROTO_FORMAT_DER, buf, n, reason, sizeof(reason)),
		               reason, "raw");
	}
}

static void test_rrsig_ksk(void **state)
{
	struct env *e = *state;
	struct rrsig s = rrsig_default(e);
	char reason[256];

	/* The KSK signs the apex DNSKEY RRset only. */
	s.covered = s.type = 48;
	s.owner = ZONE;
	s.labels = 2;
	s.tag = e->ksk_tag;
	assert_int_equal(check_rrsig(e, "ksk", &s, reason, sizeof(reason)), HSMLIMITS_OK);
	s.covered = s.type = 6; /* SOA */
	assert_refused(check_rrsig(e, "ksk", &s, reason, sizeof(reason)), reason, "only");
	/* DNSKEY below the apex. */
	s.covered = s.type = 48;
	s.owner = "sub." ZONE;
	s.labels = 3;
	assert_refused(check_rrsig(e, "ksk", &s, reason, sizeof(reason)), reason, "apex");
}

static void test_rrsig_extra_zone(void **state)
{
	struct env *e = *state;
	struct rrsig s = rrsig_default(e);
	char reason[256];

	/* An extra zone's ZSK signs its own zone... */
	s.signer = "asp.test.";
	s.owner = "x.asp.test.";
	s.tag = e->xzsk_tag;
	assert_int_equal(check_rrsig(e, "asp.test./zsk", &s, reason, sizeof(reason)),
	                 HSMLIMITS_OK);
	/* ...never the registry zone, even with its own key tag. */
	s = rrsig_default(e);
	s.tag = e->xzsk_tag;
	assert_refused(check_rrsig(e, "asp.test./zsk", &s, reason, sizeof(reason)), reason,
	               "signer");
	/* Its KSK only DNSKEY of its zone. */
	s.signer = "asp.test.";
	s.owner = "asp.test.";
	s.labels = 2;
	s.covered = s.type = 48;
	s.tag = e->xksk_tag;
	assert_int_equal(check_rrsig(e, "asp.test./ksk", &s, reason, sizeof(reason)),
	                 HSMLIMITS_OK);
	s.covered = s.type = 1;
	assert_refused(check_rrsig(e, "asp.test./ksk", &s, reason, sizeof(reason)), reason,
	               "only");
	/* The registry's keys are not reachable under the "<zone>/" form. */
	s = rrsig_default(e);
	assert_refused(check_rrsig(e, "iotregistry.test./zsk", &s, reason, sizeof(reason)),
	               reason, "unknown role");
	/* Nor are zones that were never registered. */
	assert_refused(check_rrsig(e, "other.test./zsk", &s, reason, sizeof(reason)), reason,
	               "unknown role");
}

static void test_rrsig_malformed(void **state)
{
	struct env *e = *state;
	struct rrsig s = rrsig_default(e);
	uint8_t buf[1100];
	char reason[256];
	size_t n;

	/* Every truncation of a one-RR set is refused, never read past. */
	s.nrr = 1;
	n = rrsig_build(&s, buf);
	for (size_t len = 1; len < n; len++) {
		uint8_t *t = malloc(len);

		assert_non_null(t);
		memcpy(t, buf, len);
		assert_int_equal(hsmlimits_check(e->l, "zsk", HSMPROTO_KIND_RRSIG_DATA,
		                                 HSMPROTO_FORMAT_RAW, t, len, reason, sizeof(reason)),
		                 HSMLIMITS_REFUSED);
		free(t);
	}
	/* Trailing garbage after the last RR. */
	buf[n] = 0x00;
	assert_int_equal(hsmlimits_check(e->l, "zsk", HSMPROTO_KIND_RRSIG_DATA,
	                                 HSMPROTO_FORMAT_RAW, buf, n + 1, reason, sizeof(reason)),
	                 HSMLIMITS_REFUSED);
	/* A compression pointer in the signer name. */
	n = rrsig_build(&s, buf);
	buf[18] = 0xc0;
	assert_int_equal(hsmlimits_check(e->l, "zsk", HSMPROTO_KIND_RRSIG_DATA,
	                                 HSMPROTO_FORMAT_RAW, buf, n, reason, sizeof(reason)),
	                 HSMLIMITS_REFUSED);
}

/* ---- other roles ------------------------------------------------------------------- */

static void test_checkpoint(void **state)
{
	struct env *e = *state;
	uint8_t buf[128];
	char reason[256];
	size_t n = HSMLIMITS_CHECKPOINT_PREFIX_LEN;

	memcpy(buf, HSMLIMITS_CHECKPOINT_PREFIX, n);
	assert_int_equal(buf[n - 1], 0); /* the NUL is part of the prefix */
	memcpy(buf + n, "seq=42 head=abcd", 16);
	assert_int_equal(hsmlimits_check(e->l, "audit", HSMPROTO_KIND_CHECKPOINT,
	                                 HSMPROTO_FORMAT_RAW, buf, n + 16, reason, sizeof(reason)),
	                 HSMLIMITS_OK);
	/* Prefix alone, wrong prefix, prefix without its NUL. */
	assert_refused(hsmlimits_check(e->l, "audit", HSMPROTO_KIND_CHECKPOINT, HSMPROTO_FORMAT_RAW,
	                               buf, n, reason, sizeof(reason)), reason, "prefix");
	buf[0] = 'R';
	assert_refused(hsmlimits_check(e->l, "audit", HSMPROTO_KIND_CHECKPOINT, HSMPROTO_FORMAT_RAW,
	                               buf, n + 16, reason, sizeof(reason)), reason, "prefix");
	buf[0] = 'r';
	buf[n - 1] = 'x';
	assert_refused(hsmlimits_check(e->l, "audit", HSMPROTO_KIND_CHECKPOINT, HSMPROTO_FORMAT_RAW,
	                               buf, n + 16, reason, sizeof(reason)), reason, "prefix");
	buf[n - 1] = 0;
	/* The audit key signs nothing else; other keys sign no checkpoint. */
	assert_refused(hsmlimits_check(e->l, "audit", HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW,
	                               buf, n + 16, reason, sizeof(reason)), reason, "may not sign");
	assert_refused(hsmlimits_check(e->l, "zsk", HSMPROTO_KIND_CHECKPOINT, HSMPROTO_FORMAT_RAW,
	                               buf, n + 16, reason, sizeof(reason)), reason, "may not sign");
	assert_refused(hsmlimits_check(e->l, "issuing-ca", HSMPROTO_KIND_CHECKPOINT,
	                               HSMPROTO_FORMAT_DER, buf, n + 16, reason, sizeof(reason)),
	               reason, "may not sign");
}

static void test_root_and_unknown(void **state)
{
	struct env *e = *state;
	struct rrsig s = rrsig_default(e);
	uint8_t buf[1024];
	char reason[256];
	size_t n = rrsig_build(&s, buf);
	static const char *const roles[] = { "root", "root-ca" };

	for (int k = HSMPROTO_KIND_TBS_CERT; k <= HSMPROTO_KIND_CHECKPOINT; k++) {
		for (size_t i = 0; i < 2; i++)
			assert_refused(hsmlimits_check(e->l, roles[i], k, HSMPROTO_FORMAT_DER, buf, n,
			                               reason, sizeof(reason)), reason, "never");
	}
	assert_refused(hsmlimits_check(e->l, "zsk2", HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW,
	                               buf, n, reason, sizeof(reason)), reason, "unknown role");
	assert_refused(hsmlimits_check(e->l, "zsk", 9, HSMPROTO_FORMAT_RAW, buf, n, reason,
	                               sizeof(reason)), reason, "may not sign");
	assert_int_equal(hsmlimits_check(e->l, "zsk", HSMPROTO_KIND_RRSIG_DATA,
	                                 HSMPROTO_FORMAT_RAW, buf, 0, reason, sizeof(reason)),
	                 HSMLIMITS_REFUSED);
}

/* ---- what the zone signer really asks for ------------------------------------------ */

struct zone_ctx {
	const struct env *e;
	size_t checked;
	char failure[300];
};

/* Signs SHA-256(data) with an in-memory key into a raw r||s. */
static void sign_raw(EVP_PKEY *k, const uint8_t *data, size_t len, uint8_t sig[64])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	const unsigned char *p = der;
	size_t dlen = sizeof(der);
	ECDSA_SIG *es;

	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, k), 1);
	assert_int_equal(EVP_DigestSign(md, der, &dlen, data, len), 1);
	es = d2i_ECDSA_SIG(NULL, &p, (long)dlen);
	assert_non_null(es);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32), 32);
	assert_int_equal(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32), 32);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
}

/*
 * The zone's signing callback: every request must pass the limits of the role the zone
 * names, and fail those of the other DNSSEC role, before the in-memory key signs it.
 */
static int zone_sign_cb(void *arg, struct zone_sigreq *reqs, size_t n)
{
	struct zone_ctx *c = arg;
	char reason[256];

	for (size_t i = 0; i < n; i++) {
		int ksk = reqs[i].role == ZONE_KEY_KSK;
		const char *role = ksk ? "ksk" : "zsk", *other = ksk ? "zsk" : "ksk";

		if (hsmlimits_check(c->e->l, role, HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW,
		                    reqs[i].data, reqs[i].len, reason, sizeof(reason)) != 0) {
			snprintf(c->failure, sizeof(c->failure), "%s refused: %s", role, reason);
			return -1;
		}
		if (hsmlimits_check(c->e->l, other, HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW,
		                    reqs[i].data, reqs[i].len, reason, sizeof(reason)) == 0) {
			snprintf(c->failure, sizeof(c->failure), "%s allowed the %s's data", other,
			         role);
			return -1;
		}
		sign_raw(ksk ? c->e->ksk : c->e->zsk, reqs[i].data, reqs[i].len, reqs[i].sig);
		c->checked++;
	}
	return 0;
}

static void test_zonesigner_data(void **state)
{
	struct env *e = *state;
	struct zone_ctx c = { e, 0, "" };
	struct zone_params p;
	struct zone_device devs[3];
	uint8_t hash[3][32];
	struct zone *z = NULL;
	int64_t now = time(NULL);
	static const char *const ids[] = { "8912230200031010008f", "89122302000310100090",
	                                   "89122302000310100091" };
	int r;

	zone_params_init(&p);
	p.origin = ZONE;
	assert_int_equal(zone_dnskey_from_pkey(e->ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(e->zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk), 0);
	/* The zone's key tags are the ones the limits computed from the SPKIs. */
	assert_int_equal(p.ksk.key_tag, e->ksk_tag);
	assert_int_equal(p.zsk.key_tag, e->zsk_tag);
	assert_int_equal(zone_new(&p, &z), 0);
	memset(devs, 0, sizeof(devs));
	for (int i = 0; i < 3; i++) {
		memset(hash[i], i + 1, 32);
		devs[i].id = ids[i];
		devs[i].index = 1;
		devs[i].styles = ZONE_STYLE_SEED | ZONE_STYLE_DANCE;
		devs[i].cert_sha256 = hash[i];
		devs[i].spki_sha256 = hash[i];
	}
	r = zone_bulk_import(z, devs, 3, now, zone_sign_cb, &c, 0);
	if (r != 0)
		fail_msg("zone_bulk_import: %d %s", r, c.failure);
	/* Apex SOA, NS, DNSKEY, NSEC and each device's records: all went through. */
	assert_true(c.checked >= 10);
	assert_int_equal(zone_check(z, now, true), 0);
	zone_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_setup_refusals),
		cmocka_unit_test(test_device_tbs),
		cmocka_unit_test(test_ca_tbs_refused),
		cmocka_unit_test(test_crl_tbs),
		cmocka_unit_test(test_rrsig_zsk),
		cmocka_unit_test(test_rrsig_ksk),
		cmocka_unit_test(test_rrsig_extra_zone),
		cmocka_unit_test(test_rrsig_malformed),
		cmocka_unit_test(test_checkpoint),
		cmocka_unit_test(test_root_and_unknown),
		cmocka_unit_test(test_zonesigner_data),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
