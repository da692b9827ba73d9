/*
 * test_x509.c - libregsign-x509: certificates, assembly, CRLs, TBS checks.
 *
 * In-memory OpenSSL EC keys stand in for the HSM. A root, an issuing CA and
 * device certificates are built through the library, then judged by
 * OpenSSL's X509_verify_cert in strict mode and by the real command-line
 * tools (openssl verify, openssl crl, GnuTLS certtool). A missing tool is a
 * failure, not a skip.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "signer/csr.h"
#include "signer/x509.h"
#include "signer/x509_int.h"

#define ZONE "iotregistry.test"
#define DEVICE_ID "8912230200031010008f"
#define LONG_ID "8912230200031010008f8912230200031010008f8912230200031010008f"
#define CRL_URI "http://crl.iotregistry.test/issuing.crl"
#define DAY INT64_C(86400)

struct pki {
	EVP_PKEY *root_key, *issuing_key;
	X509 *root, *issuing;
	int64_t now;
	char dir[64];
};

/* ---------------------------------------------------------------- helpers */

static EVP_PKEY *
ec_key(const char *curve)
{
	EVP_PKEY *k = EVP_EC_gen(curve);

	assert_non_null(k);
	return k;
}

/* A DER CSR for @p key whose subject and requested extensions must never
 * reach a certificate: CN=evil.example, SAN evil.example, CA:TRUE. */
static unsigned char *
evil_csr(EVP_PKEY *key, size_t *len)
{
	X509_REQ *req = X509_REQ_new();
	X509_NAME *name = X509_NAME_new();
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509V3_CTX v3;
	unsigned char *der = NULL;
	int n;

	assert_non_null(req);
	assert_int_equal(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
	    (const unsigned char *)"evil.example", -1, -1, 0), 1);
	assert_int_equal(X509_REQ_set_subject_name(req, name), 1);
	assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
	X509V3_set_ctx(&v3, NULL, NULL, req, NULL, 0);
	sk_X509_EXTENSION_push(exts, X509V3_EXT_nconf_nid(NULL, &v3,
	    NID_subject_alt_name, "DNS:evil.example"));
	sk_X509_EXTENSION_push(exts, X509V3_EXT_nconf_nid(NULL, &v3,
	    NID_basic_constraints, "critical,CA:TRUE"));
	assert_int_equal(X509_REQ_add_extensions(req, exts), 1);
	assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
	n = i2d_X509_REQ(req, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	X509_NAME_free(name);
	X509_REQ_free(req);
	return der;
}

static void
spec_validity(struct x509_cert_spec *s, int64_t now, int64_t days)
{
	s->not_before = now - 3600;
	s->not_after = now + days * DAY;
	assert_int_equal(x509_serial_random(s->serial), X509_OK);
}

/*
 * The device spec most cases start from: a fresh serial, @days of validity,
 * @key certified by the issuing CA for DEVICE_ID in ZONE with @index. A case
 * then changes only the fields it is about.
 */
static void
device_spec(struct x509_cert_spec *s, const struct pki *p, int64_t days,
	    const EVP_PKEY *key, uint64_t index)
{
	memset(s, 0, sizeof(*s));
	s->profile = X509_PROFILE_DEVICE;
	spec_validity(s, p->now, days);
	s->subject_key = key;
	s->issuer = p->issuing;
	s->zone = ZONE;
	s->index = index;
	s->device_id = DEVICE_ID;
}

/* A device certificate from a CSR of a fresh key; *key gets that key. */
static X509 *
device_cert(struct pki *p, const char *id, const char *zone, EVP_PKEY **key)
{
	struct x509_cert_spec s;
	unsigned char *csr;
	size_t csrlen;
	EVP_PKEY *k = ec_key("P-256"), *pub = NULL;
	X509 *x = NULL;

	csr = evil_csr(k, &csrlen);
	assert_int_equal(csr_parse(csr, csrlen, &pub, NULL, NULL, NULL, 0), X509_OK);
	device_spec(&s, p, 365, pub, 1);
	s.zone = zone;
	s.device_id = id;
	s.crl_uri = CRL_URI;
	assert_int_equal(x509_cert_create(&s, x509_sign_with_pkey, p->issuing_key, &x), X509_OK);
	OPENSSL_free(csr);
	EVP_PKEY_free(pub);
	if (key != NULL)
		*key = k;
	else
		EVP_PKEY_free(k);
	return x;
}

static void
write_pem(const struct pki *p, const char *file, X509 *a, X509 *b, X509 *c)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", p->dir, file);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509(f, a), 1);
	if (b != NULL)
		assert_int_equal(PEM_write_X509(f, b), 1);
	if (c != NULL)
		assert_int_equal(PEM_write_X509(f, c), 1);
	assert_int_equal(fclose(f), 0);
}

/* Run a shell command in the test directory; output (stdout and stderr)
 * into @p out. Returns the exit status; 127 means the tool is missing. */
static int
run(const struct pki *p, char *out, size_t size, const char *fmt, ...)
{
	char cmd[1024], body[768];
	size_t n = 0, k;
	va_list ap;
	FILE *f;
	int st;

	va_start(ap, fmt);
	vsnprintf(body, sizeof(body), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "cd '%s' && %s 2>&1", p->dir, body);
	assert_non_null(f = popen(cmd, "r"));
	while (n + 1 < size && (k = fread(out + n, 1, size - 1 - n, f)) > 0)
		n += k;
	out[n] = '\0';
	st = pclose(f);
	st = WIFEXITED(st) ? WEXITSTATUS(st) : 255;
	if (st == 127)
		fail_msg("required tool missing (exit 127) for: %s\n%s", body, out);
	return st;
}

static const X509_EXTENSION *
ext_of(const X509 *x, int nid, int *crit)
{
	int i = X509_get_ext_by_NID(x, nid, -1);
	const X509_EXTENSION *e;

	assert_true(i >= 0);
	/* Each extension appears once. */
	assert_true(X509_get_ext_by_NID(x, nid, i) < 0);
	e = X509_get_ext(x, i);
	*crit = X509_EXTENSION_get_critical(e);
	return e;
}

static void
check_ski_aki(X509 *x, X509 *issuer)
{
	const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(x);
	const ASN1_OCTET_STRING *aki = X509_get0_authority_key_id(x);
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	int crit;

	assert_non_null(ski);
	assert_non_null(aki);
	/* RFC 7093 method 1: leftmost 160 bits of SHA-256 of the key bits. */
	assert_int_equal(X509_pubkey_digest(x, EVP_sha256(), md, &mdlen), 1);
	assert_int_equal(ASN1_STRING_length(ski), 20);
	assert_memory_equal(ASN1_STRING_get0_data(ski), md, 20);
	assert_int_equal(ASN1_OCTET_STRING_cmp(aki, X509_get0_subject_key_id(issuer)), 0);
	ext_of(x, NID_subject_key_identifier, &crit);
	assert_int_equal(crit, 0);
	ext_of(x, NID_authority_key_identifier, &crit);
	assert_int_equal(crit, 0);
}

static int
verify_strict(struct pki *p, X509 *leaf, int *err)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	int ok;

	assert_int_equal(X509_STORE_add_cert(store, p->root), 1);
	sk_X509_push(untrusted, p->issuing);
	assert_int_equal(X509_STORE_CTX_init(ctx, store, leaf, untrusted), 1);
	X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT);
	assert_int_equal(X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_CLIENT), 1);
	ok = X509_verify_cert(ctx);
	*err = X509_STORE_CTX_get_error(ctx);
	sk_X509_free(untrusted);
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return ok;
}

/* ------------------------------------------------------------ setup */

static int
setup(void **state)
{
	struct pki *p = calloc(1, sizeof(*p));
	struct x509_cert_spec s;
	X509_NAME *rn = NULL, *in = NULL;

	assert_non_null(p);
	p->now = (int64_t)time(NULL);
	snprintf(p->dir, sizeof(p->dir), "/tmp/test_x509.XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	p->root_key = ec_key("P-256");
	p->issuing_key = ec_key("P-256");
	assert_int_equal(x509_name_parse("/C=CA/O=IoT Registry Test/CN=Test Root CA", &rn), X509_OK);
	assert_int_equal(x509_name_parse("/C=CA/O=IoT Registry Test/CN=Test Issuing CA", &in), X509_OK);

	memset(&s, 0, sizeof(s));
	s.profile = X509_PROFILE_ROOT;
	spec_validity(&s, p->now, 3650);
	s.subject_key = p->root_key;
	s.subject = rn;
	assert_int_equal(x509_cert_create(&s, x509_sign_with_pkey, p->root_key, &p->root), X509_OK);

	memset(&s, 0, sizeof(s));
	s.profile = X509_PROFILE_ISSUING;
	spec_validity(&s, p->now, 1825);
	s.subject_key = p->issuing_key;
	s.subject = in;
	s.issuer = p->root;
	s.zone = ZONE ".";
	assert_int_equal(x509_cert_create(&s, x509_sign_with_pkey, p->root_key, &p->issuing), X509_OK);
	X509_NAME_free(rn);
	X509_NAME_free(in);
	*state = p;
	return 0;
}

static int
teardown(void **state)
{
	struct pki *p = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", p->dir);
	if (system(cmd) != 0)
		return -1;
	X509_free(p->root);
	X509_free(p->issuing);
	EVP_PKEY_free(p->root_key);
	EVP_PKEY_free(p->issuing_key);
	free(p);
	return 0;
}

/* ------------------------------------------------------------ chain */

static void
test_chain_verify_strict(void **state)
{
	struct pki *p = *state;
	X509 *dev = device_cert(p, DEVICE_ID, ZONE, NULL);
	X509 *longdev = device_cert(p, LONG_ID, ZONE, NULL);
	int err = 0;

	assert_int_equal(verify_strict(p, dev, &err), 1);
	assert_int_equal(err, X509_V_OK);
	assert_int_equal(verify_strict(p, longdev, &err), 1);
	assert_int_equal(err, X509_V_OK);
	X509_free(dev);
	X509_free(longdev);
}

static void
test_chain_tools(void **state)
{
	struct pki *p = *state;
	X509 *dev = device_cert(p, DEVICE_ID, ZONE, NULL);
	X509 *longdev = device_cert(p, LONG_ID, ZONE, NULL);
	char out[8192];

	write_pem(p, "root.pem", p->root, NULL, NULL);
	write_pem(p, "issuing.pem", p->issuing, NULL, NULL);
	write_pem(p, "device.pem", dev, NULL, NULL);
	write_pem(p, "longdev.pem", longdev, NULL, NULL);
	write_pem(p, "chain.pem", dev, p->issuing, p->root);
	write_pem(p, "longchain.pem", longdev, p->issuing, p->root);

	assert_int_equal(run(p, out, sizeof(out), "openssl verify -x509_strict "
	    "-purpose sslclient -CAfile root.pem -untrusted issuing.pem device.pem longdev.pem"), 0);
	assert_non_null(strstr(out, "device.pem: OK"));
	assert_non_null(strstr(out, "longdev.pem: OK"));

	/* The issuing CA alone is not a trust anchor: this must fail. */
	assert_int_not_equal(run(p, out, sizeof(out), "openssl verify -x509_strict "
	    "-CAfile issuing.pem device.pem"), 0);

	assert_int_equal(run(p, out, sizeof(out), "certtool --verify-chain --infile chain.pem"), 0);
	assert_non_null(strstr(out, "Chain verification output: Verified."));
	assert_null(strstr(out, "Not verified"));
	assert_int_equal(run(p, out, sizeof(out), "certtool --verify-chain --infile longchain.pem"), 0);
	assert_non_null(strstr(out, "Chain verification output: Verified."));
	assert_int_equal(run(p, out, sizeof(out), "certtool --verify --load-ca-certificate "
	    "root.pem --infile chain.pem --verify-hostname 1." DEVICE_ID "." ZONE), 0);
	assert_non_null(strstr(out, "Verified."));
	X509_free(dev);
	X509_free(longdev);
}

/* A device named outside the zone is refused by the issuing CA's constraint. */
static void
test_name_constraints_enforced(void **state)
{
	struct pki *p = *state;
	X509 *dev = device_cert(p, DEVICE_ID, "elsewhere.test", NULL);
	int err = 0;

	assert_int_equal(verify_strict(p, dev, &err), 0);
	assert_int_equal(err, X509_V_ERR_PERMITTED_VIOLATION);
	X509_free(dev);
}

/* ------------------------------------------------------------ profiles */

static void
test_root_profile(void **state)
{
	struct pki *p = *state;
	BASIC_CONSTRAINTS *bc;
	ASN1_BIT_STRING *ku;
	char *s;
	int crit = -1;

	assert_int_equal(X509_get_version(p->root), X509_VERSION_3);
	assert_int_equal(X509_NAME_cmp(X509_get_subject_name(p->root),
	    X509_get_issuer_name(p->root)), 0);
	s = X509_NAME_oneline(X509_get_subject_name(p->root), NULL, 0);
	assert_string_equal(s, "/C=CA/O=IoT Registry Test/CN=Test Root CA");
	OPENSSL_free(s);
	assert_int_equal(X509_get_signature_nid(p->root), NID_ecdsa_with_SHA256);
	assert_int_equal(X509_get_ext_count(p->root), 4);
	bc = X509_get_ext_d2i(p->root, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);
	ku = X509_get_ext_d2i(p->root, NID_key_usage, &crit, NULL);
	assert_non_null(ku);
	assert_int_equal(crit, 1);
	assert_int_equal(X509_get_key_usage(p->root), KU_KEY_CERT_SIGN | KU_CRL_SIGN);
	ASN1_BIT_STRING_free(ku);
	check_ski_aki(p->root, p->root);
	assert_int_equal(X509_check_issued(p->root, p->root), X509_V_OK);
}

static void
test_issuing_profile(void **state)
{
	struct pki *p = *state;
	BASIC_CONSTRAINTS *bc;
	NAME_CONSTRAINTS *nc;
	const GENERAL_SUBTREE *st;
	const ASN1_STRING *dns;
	int crit = -1, type = -1;

	assert_int_equal(X509_get_ext_count(p->issuing), 5);
	bc = X509_get_ext_d2i(p->issuing, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_true(bc->ca);
	assert_non_null(bc->pathlen);
	assert_int_equal(ASN1_INTEGER_get(bc->pathlen), 0);
	BASIC_CONSTRAINTS_free(bc);
	ext_of(p->issuing, NID_key_usage, &crit);
	assert_int_equal(crit, 1);
	assert_int_equal(X509_get_key_usage(p->issuing), KU_KEY_CERT_SIGN | KU_CRL_SIGN);

	nc = X509_get_ext_d2i(p->issuing, NID_name_constraints, &crit, NULL);
	assert_non_null(nc);
	assert_int_equal(crit, 1);
	assert_int_equal(sk_GENERAL_SUBTREE_num(nc->permittedSubtrees), 1);
	st = sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, 0);
	dns = GENERAL_NAME_get0_value(st->base, &type);
	assert_int_equal(type, GEN_DNS);
	assert_int_equal(ASN1_STRING_length(dns), (int)strlen(ZONE));
	assert_memory_equal(ASN1_STRING_get0_data(dns), ZONE, strlen(ZONE));
	/* Every IPv4 and IPv6 address is excluded. */
	assert_int_equal(sk_GENERAL_SUBTREE_num(nc->excludedSubtrees), 2);
	GENERAL_NAME_get0_value(sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, 0)->base, &type);
	assert_int_equal(type, GEN_IPADD);
	NAME_CONSTRAINTS_free(nc);

	check_ski_aki(p->issuing, p->root);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(p->issuing),
	    X509_get_subject_name(p->root)), 0);
	assert_int_equal(X509_check_issued(p->root, p->issuing), X509_V_OK);
}

/* Every extension of a device certificate, exactly; the CSR's subject and
 * requested extensions appear nowhere. */
static void
test_device_profile(void **state)
{
	struct pki *p = *state;
	EVP_PKEY *key = NULL;
	X509 *dev = device_cert(p, DEVICE_ID, ZONE, &key);
	const char *owner = "1." DEVICE_ID "." ZONE;
	BASIC_CONSTRAINTS *bc;
	EXTENDED_KEY_USAGE *eku;
	GENERAL_NAMES *san;
	CRL_DIST_POINTS *cdp;
	const ASN1_STRING *v;
	unsigned char *a = NULL, *b = NULL;
	char cn[128], *text;
	int crit = -1, type = -1, na, nb;
	BIO *bio;
	BUF_MEM *mem;

	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(dev)), 1);
	assert_int_equal(X509_NAME_get_text_by_NID(X509_get_subject_name(dev),
	    NID_commonName, cn, sizeof(cn)), (int)strlen(owner));
	assert_string_equal(cn, owner);
	assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(dev),
	    X509_get_subject_name(p->issuing)), 0);
	assert_int_equal(X509_get_ext_count(dev), 7);

	bc = X509_get_ext_d2i(dev, NID_basic_constraints, &crit, NULL);
	assert_non_null(bc);
	assert_int_equal(crit, 1);
	assert_false(bc->ca);
	assert_null(bc->pathlen);
	BASIC_CONSTRAINTS_free(bc);

	ext_of(dev, NID_key_usage, &crit);
	assert_int_equal(crit, 1);
	assert_int_equal(X509_get_key_usage(dev), KU_DIGITAL_SIGNATURE);

	eku = X509_get_ext_d2i(dev, NID_ext_key_usage, &crit, NULL);
	assert_non_null(eku);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_ASN1_OBJECT_num(eku), 1);
	assert_int_equal(OBJ_obj2nid(sk_ASN1_OBJECT_value(eku, 0)), NID_client_auth);
	sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);

	san = X509_get_ext_d2i(dev, NID_subject_alt_name, &crit, NULL);
	assert_non_null(san);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_GENERAL_NAME_num(san), 1);
	v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(san, 0), &type);
	assert_int_equal(type, GEN_DNS);
	assert_int_equal(ASN1_STRING_length(v), (int)strlen(owner));
	assert_memory_equal(ASN1_STRING_get0_data(v), owner, strlen(owner));
	GENERAL_NAMES_free(san);

	cdp = X509_get_ext_d2i(dev, NID_crl_distribution_points, &crit, NULL);
	assert_non_null(cdp);
	assert_int_equal(crit, 0);
	assert_int_equal(sk_DIST_POINT_num(cdp), 1);
	v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(
	    sk_DIST_POINT_value(cdp, 0)->distpoint->name.fullname, 0), &type);
	assert_int_equal(type, GEN_URI);
	assert_memory_equal(ASN1_STRING_get0_data(v), CRL_URI, strlen(CRL_URI));
	CRL_DIST_POINTS_free(cdp);

	check_ski_aki(dev, p->issuing);

	/* The certified key is the CSR's key, SPKI byte for byte. */
	na = i2d_PUBKEY(key, &a);
	nb = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(dev), &b);
	assert_int_equal(na, nb);
	assert_memory_equal(a, b, (size_t)na);
	OPENSSL_free(a);
	OPENSSL_free(b);

	/* Serial: a positive 16-byte INTEGER. */
	assert_int_equal(ASN1_STRING_length(X509_get0_serialNumber(dev)), 16);
	assert_int_equal(ASN1_STRING_type(X509_get0_serialNumber(dev)), V_ASN1_INTEGER);

	/* Nothing of the CSR's subject or extensions anywhere in the text form. */
	assert_non_null(bio = BIO_new(BIO_s_mem()));
	assert_int_equal(X509_print(bio, dev), 1);
	BIO_write(bio, "", 1);
	BIO_get_mem_ptr(bio, &mem);
	text = mem->data;
	assert_null(strstr(text, "evil"));
	assert_null(strstr(text, "CA:TRUE"));
	assert_non_null(strstr(text, "CA:FALSE"));
	BIO_free(bio);
	EVP_PKEY_free(key);
	X509_free(dev);
}

/* An owner name over 64 characters: empty subject, critical SAN. */
static void
test_device_long_name(void **state)
{
	struct pki *p = *state;
	X509 *dev = device_cert(p, LONG_ID, ZONE, NULL);
	const char *owner = "1." LONG_ID "." ZONE;
	GENERAL_NAMES *san;
	const ASN1_STRING *v;
	int crit = -1, type = -1;

	assert_true(strlen(owner) > X509_CN_MAX);
	assert_int_equal(X509_NAME_entry_count(X509_get_subject_name(dev)), 0);
	san = X509_get_ext_d2i(dev, NID_subject_alt_name, &crit, NULL);
	assert_non_null(san);
	assert_int_equal(crit, 1);
	v = GENERAL_NAME_get0_value(sk_GENERAL_NAME_value(san, 0), &type);
	assert_int_equal(type, GEN_DNS);
	assert_int_equal(ASN1_STRING_length(v), (int)strlen(owner));
	assert_memory_equal(ASN1_STRING_get0_data(v), owner, strlen(owner));
	GENERAL_NAMES_free(san);
	X509_free(dev);
}

/* A device key given as a compressed point stays compressed in the
 * certificate: the certificate certifies the CSR's SPKI byte for byte. */
static void
test_device_compressed_key(void **state)
{
	struct pki *p = *state;
	struct x509_cert_spec s;
	EVP_PKEY *k = ec_key("P-256"), *pub = NULL;
	unsigned char *csr, *spki = NULL, *got = NULL;
	size_t csrlen, spki_len = 0;
	X509 *x = NULL;
	int n, err = 0;

	assert_int_equal(EVP_PKEY_set_utf8_string_param(k,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), 1);
	csr = evil_csr(k, &csrlen);
	assert_int_equal(csr_parse(csr, csrlen, &pub, &spki, &spki_len, NULL, 0), X509_OK);
	device_spec(&s, p, 30, pub, 2);
	assert_int_equal(x509_cert_create(&s, x509_sign_with_pkey, p->issuing_key, &x), X509_OK);
	n = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &got);
	assert_int_equal((size_t)n, spki_len);
	assert_true(spki_len < 91);	/* 91 is the uncompressed size */
	assert_memory_equal(got, spki, spki_len);
	assert_int_equal(verify_strict(p, x, &err), 1);
	OPENSSL_free(got);
	free(spki);
	OPENSSL_free(csr);
	X509_free(x);
	EVP_PKEY_free(pub);
	EVP_PKEY_free(k);
}

/*
 * csr_parse_like (the key made from the issuing key's curve) gives what
 * csr_parse gives: the same key, SubjectPublicKeyInfo and certificate TBS,
 * compressed points kept compressed, the same refusals; a key that is not
 * P-256 as the model falls back to csr_parse's way.
 */
static void
csr_like_case(struct pki *p, EVP_PKEY *k, const EVP_PKEY *like)
{
	struct x509_cert_spec s;
	EVP_PKEY *a = NULL, *b = NULL;
	unsigned char *csr, *sa = NULL, *sb = NULL, *ta = NULL, *tb = NULL, pt[65], *hit;
	size_t csrlen, la = 0, lb = 0, tla = 0, tlb = 0, ptlen = 0;
	char detail[X509_DETAIL_SIZE];
	int r;

	csr = evil_csr(k, &csrlen);
	assert_int_equal(csr_parse(csr, csrlen, &a, &sa, &la, NULL, 0), X509_OK);
	assert_int_equal(csr_parse_like(csr, csrlen, like, &b, &sb, &lb, detail,
	    sizeof(detail)), X509_OK);
	assert_int_equal(EVP_PKEY_eq(a, b), 1);
	assert_int_equal(EVP_PKEY_eq(b, k), 1);
	assert_int_equal(la, lb);
	assert_memory_equal(sa, sb, la);
	/* The same TBS from either key: the point keeps its form. */
	device_spec(&s, p, 30, a, 3);
	assert_int_equal(x509_cert_tbs_build(&s, &ta, &tla), X509_OK);
	s.subject_key = b;
	assert_int_equal(x509_cert_tbs_build(&s, &tb, &tlb), X509_OK);
	assert_int_equal(tla, tlb);
	assert_memory_equal(ta, tb, tla);
	assert_non_null(memmem(tb, tlb, sb, lb));
	/* The point taken from the request's SPKI instead of the key (what
	 * ISSUE does): the same TBS, byte for byte; a broken SPKI is refused. */
	free(tb);
	tb = NULL;
	s.subject_key = NULL;
	s.subject_spki = sb;
	s.subject_spki_len = lb;
	assert_int_equal(x509_cert_tbs_build(&s, &tb, &tlb), X509_OK);
	assert_int_equal(tla, tlb);
	assert_memory_equal(ta, tb, tla);
	for (size_t i = 0; i < lb; i += (i < 30 ? 1 : 17)) {
		unsigned char *bad = malloc(lb), *t = NULL;
		size_t tl = 0;
		assert_non_null(bad);
		memcpy(bad, sb, lb);
		/* Every header byte matters; in the point only its form byte. */
		bad[i] ^= (i == 26) ? 0x08 : 0x01;
		s.subject_spki = bad;
		r = x509_cert_tbs_build(&s, &t, &tl);
		if (i <= 26)
			assert_int_equal(r, X509_ERR_KEY);
		free(t);
		free(bad);
	}
	s.subject_spki = sb;
	s.subject_spki_len = lb - 1;
	assert_int_equal(x509_cert_tbs_build(&s, &tb, &tlb), X509_ERR_KEY);
	s.subject_spki = NULL;

	/* A bad self-signature, and a point moved off the curve. */
	csr[csrlen - 1] ^= 0x01;
	assert_int_equal(csr_parse_like(csr, csrlen, like, NULL, NULL, NULL, detail,
	    sizeof(detail)), X509_ERR_CSR_SIGNATURE);
	csr[csrlen - 1] ^= 0x01;
	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
	    pt, sizeof(pt), &ptlen), 1);
	assert_non_null(hit = memmem(csr, csrlen, pt, ptlen));
	hit[ptlen - 1] ^= 0x01;
	r = csr_parse_like(csr, csrlen, like, NULL, NULL, NULL, detail, sizeof(detail));
	assert_int_equal(r, csr_parse(csr, csrlen, NULL, NULL, NULL, NULL, 0));
	if (ptlen == 65) {
		assert_int_equal(r, X509_ERR_CSR_PARSE);
		assert_non_null(strstr(detail, "not a point on the curve"));
	} else {
		/* A changed compressed x may be another point's: then the
		 * self-signature is what fails. */
		assert_true(r == X509_ERR_CSR_PARSE || r == X509_ERR_CSR_SIGNATURE);
	}
	OPENSSL_free(csr);
	free(sa);
	free(sb);
	free(ta);
	free(tb);
	EVP_PKEY_free(a);
	EVP_PKEY_free(b);
}

static void
test_csr_parse_like(void **state)
{
	struct pki *p = *state;
	EVP_PKEY *k = ec_key("P-256"), *kc = ec_key("P-256"), *k384 = ec_key("P-384");
	const EVP_PKEY *ik = X509_get0_pubkey(p->issuing);

	assert_int_equal(EVP_PKEY_set_utf8_string_param(kc,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), 1);
	csr_like_case(p, k, ik);
	csr_like_case(p, kc, ik);
	csr_like_case(p, k, p->issuing_key);	/* a private key as the model */
	csr_like_case(p, k, k384);		/* not P-256: by name */
	csr_like_case(p, kc, NULL);
	EVP_PKEY_free(k);
	EVP_PKEY_free(kc);
	EVP_PKEY_free(k384);
}

/*
 * Device TBSs are written directly as DER; OpenSSL's X509 construction
 * (x509__cert_tbs_build_ossl) must give the very same bytes for every kind
 * of device spec: short and long names (no CN, critical SAN), with and
 * without a CRL URI, compressed and uncompressed keys, UTCTime and
 * GeneralizedTime validity, one- to ten-digit indexes, and the same
 * refusals for bad specs.
 */
static void
test_tbs_der_matches_openssl(void **state)
{
	struct pki *p = *state;
	EVP_PKEY *k = ec_key("P-256"), *kc = ec_key("P-256"), *k384 = ec_key("P-384");
	const char *ids[] = { DEVICE_ID, LONG_ID, "00" };
	const uint64_t idx[] = { 1, 9, 10, 4294967295u };
	struct x509_cert_spec s;
	unsigned char *a = NULL, *b = NULL;
	size_t la = 0, lb = 0;
	int cases = 0;

	assert_int_equal(EVP_PKEY_set_utf8_string_param(kc,
	    OSSL_PKEY_PARAM_EC_POINT_CONVERSION_FORMAT,
	    OSSL_PKEY_EC_POINT_CONVERSION_FORMAT_COMPRESSED), 1);
	for (int key = 0; key < 2; key++)
	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++)
	for (size_t j = 0; j < sizeof(idx) / sizeof(idx[0]); j++)
	for (int crl = 0; crl < 2; crl++)
	for (int late = 0; late < 2; late++) {
		device_spec(&s, p, 30, key ? kc : k, idx[j]);
		if (late) /* GeneralizedTime from 2050 on */
			s.not_after = INT64_C(2556143999) + (int64_t)j;
		s.device_id = ids[i];
		s.crl_uri = crl ? CRL_URI : NULL;
		assert_int_equal(x509_cert_tbs_build(&s, &a, &la), X509_OK);
		assert_int_equal(x509__cert_tbs_build_ossl(&s, &b, &lb), X509_OK);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		free(a);
		free(b);
		a = b = NULL;
		cases++;
	}
	assert_int_equal(cases, 96);

	/* The same refusals, with the same errors. */
	device_spec(&s, p, 30, k, 1);
	for (int bad = 0; bad < 8; bad++) {
		struct x509_cert_spec t = s;
		int ra, rb;

		switch (bad) {
		case 0: t.subject_key = k384; break;
		case 1: t.not_after = t.not_before; break;
		case 2: t.serial[0] = 0x80; break;
		case 3: t.serial[0] = 0; break;
		case 4: t.crl_uri = "not a uri"; break;
		case 5: t.issuer = NULL; break;
		case 6: t.index = 0; break;
		case 7: t.device_id = "not hex!"; break;
		}
		ra = x509_cert_tbs_build(&t, &a, &la);
		rb = x509__cert_tbs_build_ossl(&t, &b, &lb);
		assert_int_not_equal(ra, X509_OK);
		assert_int_equal(ra, rb);
	}
	EVP_PKEY_free(k);
	EVP_PKEY_free(kc);
	EVP_PKEY_free(k384);
}

/* Specs that must not become certificates. */
static void
test_spec_refusals(void **state)
{
	struct pki *p = *state;
	struct x509_cert_spec s;
	EVP_PKEY *k384 = ec_key("P-384"), *k = ec_key("P-256");
	unsigned char *tbs = NULL;
	size_t len = 0;

	device_spec(&s, p, 30, k, 1);
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_OK);
	free(tbs);
	tbs = NULL;

	s.subject_key = k384;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_KEY);
	s.subject_key = k;
	s.not_after = s.not_before;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_INVALID);
	spec_validity(&s, p->now, 30);
	s.device_id = "8912230200031010008F";	/* uppercase: not our id form */
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_NAME);
	s.device_id = DEVICE_ID;
	s.index = 0;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_NAME);
	s.index = 1;
	s.zone = "bad..zone";
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_NAME);
	s.zone = ZONE;
	s.issuer = NULL;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_INVALID);
	s.issuer = p->issuing;
	s.serial[0] = 0x80;	/* would be a negative INTEGER */
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_INVALID);
	s.serial[0] = 0x41;
	s.crl_uri = "not a uri";
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_INVALID);
	s.crl_uri = NULL;
	s.profile = 99;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_INVALID);
	/* An issuing CA needs its zone. */
	s.profile = X509_PROFILE_ISSUING;
	s.subject = X509_get_subject_name(p->issuing);
	s.zone = NULL;
	s.index = 0;
	s.device_id = NULL;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_ERR_NAME);
	assert_null(tbs);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k384);
}

/* ------------------------------------------------------------ assembly */

static int
failing_signer(void *ctx, const unsigned char digest[X509_DIGEST_LEN],
	       unsigned char *sig, size_t *siglen)
{
	(void)ctx;
	(void)digest;
	(void)sig;
	(void)siglen;
	return -1;
}

/*
 * Both assembly entries must give the same answer; when they accept, the
 * same bytes, with the signed TBS inside verbatim.
 */
static int
assemble_both(const unsigned char *tbs, size_t len, const unsigned char *sig,
	      size_t siglen, const EVP_PKEY *key)
{
	unsigned char *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	X509 *x = NULL;
	int r1, r2;

	r1 = x509_cert_assemble(tbs, len, sig, siglen, key, &x);
	r2 = x509_cert_assemble_der(tbs, len, sig, siglen, key, &b, &blen);
	assert_int_equal(r1, r2);
	if (r1 == X509_OK) {
		assert_int_equal(x509_cert_der(x, &a, &alen), X509_OK);
		assert_int_equal(alen, blen);
		assert_memory_equal(a, b, alen);
		assert_non_null(memmem(a, alen, tbs, len));
	} else {
		assert_null(x);
		assert_null(b);
	}
	free(a);
	free(b);
	X509_free(x);
	return r1;
}

static void
test_assemble(void **state)
{
	struct pki *p = *state;
	struct x509_cert_spec s;
	EVP_PKEY *k = ec_key("P-256");
	const EVP_PKEY *ik = X509_get0_pubkey(p->issuing), *rk = X509_get0_pubkey(p->root);
	unsigned char *tbs = NULL, *tbs2 = NULL, md[32], sig[80], bad[90];
	size_t len = 0, len2 = 0, siglen = sizeof(sig);
	X509 *x = NULL;

	device_spec(&s, p, 30, k, 7);
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_OK);
	assert_int_equal(x509_sha256(tbs, len, md), X509_OK);
	assert_int_equal(x509_sign_with_pkey(p->issuing_key, md, sig, &siglen), 0);

	/* The good case: the DER's TBS is exactly what was signed. */
	assert_int_equal(assemble_both(tbs, len, sig, siglen, ik), X509_OK);

	/* Signed by another key, or checked against another key. */
	assert_int_equal(assemble_both(tbs, len, sig, siglen, rk), X509_ERR_SIG_VERIFY);
	/* A flipped byte in s: still DER, no longer valid. */
	memcpy(bad, sig, siglen);
	bad[siglen - 1] ^= 0x01;
	assert_int_equal(assemble_both(tbs, len, bad, siglen, ik), X509_ERR_SIG_VERIFY);
	/* Not DER: a trailing byte, a truncated value, a raw r||s. */
	memcpy(bad, sig, siglen);
	bad[siglen] = 0;
	assert_int_equal(assemble_both(tbs, len, bad, siglen + 1, ik), X509_ERR_SIG_FORMAT);
	assert_int_equal(assemble_both(tbs, len, sig, siglen - 1, ik), X509_ERR_SIG_FORMAT);
	memset(bad, 0x11, 64);
	assert_int_equal(assemble_both(tbs, len, bad, 64, ik), X509_ERR_SIG_FORMAT);
	/* A signature over a different TBS. */
	s.index = 8;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs2, &len2), X509_OK);
	assert_int_equal(assemble_both(tbs2, len2, sig, siglen, ik), X509_ERR_SIG_VERIFY);
	/* A TBS with a trailing byte, and one that is not a SEQUENCE. */
	tbs2 = realloc(tbs2, len + 1);
	memcpy(tbs2, tbs, len);
	tbs2[len] = 0;
	assert_int_equal(assemble_both(tbs2, len + 1, sig, siglen, ik), X509_ERR_INVALID);
	tbs2[0] = 0x31;
	assert_int_equal(assemble_both(tbs2, len, sig, siglen, ik), X509_ERR_INVALID);
	assert_null(x);

	/* A BER TBS (non-minimal length), validly signed: its re-encoding is
	 * not what was signed, so it must not become a certificate. */
	assert_true(tbs[1] == 0x82);
	tbs2 = realloc(tbs2, len + 1);
	tbs2[0] = 0x30;
	tbs2[1] = 0x83;
	tbs2[2] = 0x00;
	memcpy(tbs2 + 3, tbs + 2, len - 2);
	assert_int_equal(x509_sha256(tbs2, len + 1, md), X509_OK);
	siglen = sizeof(sig);
	assert_int_equal(x509_sign_with_pkey(p->issuing_key, md, sig, &siglen), 0);
	assert_int_equal(assemble_both(tbs2, len + 1, sig, siglen, ik), X509_ERR_ASSEMBLY);
	assert_null(x);

	/* A signer that fails. */
	assert_int_equal(x509_cert_create(&s, failing_signer, NULL, &x), X509_ERR_SIGN);
	assert_null(x);
	free(tbs);
	free(tbs2);
	EVP_PKEY_free(k);
}

/*
 * x509_cert_assemble_built: the bytes of x509_cert_assemble_der for a TBS
 * the library built, without decoding it again; a bad signature is still
 * refused, and so is a TBS whose inner algorithm is not ecdsa-with-SHA256.
 */
static void
test_assemble_built(void **state)
{
	struct pki *p = *state;
	struct x509_cert_spec s;
	EVP_PKEY *k = ec_key("P-256");
	const EVP_PKEY *ik = X509_get0_pubkey(p->issuing), *rk = X509_get0_pubkey(p->root);
	unsigned char *tbs = NULL, *a = NULL, *b = NULL, md[32], sig[80], bad[90], *alg;
	static const unsigned char sha256_oid[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	size_t len = 0, la = 0, lb = 0, siglen;
	X509 *x = NULL;

	device_spec(&s, p, 30, k, 1);
	s.crl_uri = CRL_URI;
	for (s.index = 1; s.index <= 40; s.index++) {
		assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_OK);
		assert_int_equal(x509_sha256(tbs, len, md), X509_OK);
		siglen = sizeof(sig);
		assert_int_equal(x509_sign_with_pkey(p->issuing_key, md, sig, &siglen), 0);
		assert_int_equal(x509_cert_assemble_built(tbs, len, sig, siglen, ik, &a, &la),
		    X509_OK);
		assert_int_equal(x509_cert_assemble_der(tbs, len, sig, siglen, ik, &b, &lb),
		    X509_OK);
		assert_int_equal(la, lb);
		assert_memory_equal(a, b, la);
		free(a);
		free(b);
		a = b = NULL;
		if (s.index < 40)
			free(tbs);
	}
	/* The last one: OpenSSL parses it and it verifies in a chain. */
	assert_int_equal(x509_cert_assemble_built(tbs, len, sig, siglen, ik, &a, &la), X509_OK);
	{
		const unsigned char *q = a;
		int err = 0;
		assert_non_null(x = d2i_X509(NULL, &q, (long)la));
		assert_ptr_equal(q, a + la);
		assert_int_equal(verify_strict(p, x, &err), 1);
		X509_free(x);
	}
	free(a);
	a = NULL;

	/* Refusals: another key, a flipped bit, not DER, not a SEQUENCE. */
	assert_int_equal(x509_cert_assemble_built(tbs, len, sig, siglen, rk, &a, &la),
	    X509_ERR_SIG_VERIFY);
	memcpy(bad, sig, siglen);
	bad[siglen - 1] ^= 0x01;
	assert_int_equal(x509_cert_assemble_built(tbs, len, bad, siglen, ik, &a, &la),
	    X509_ERR_SIG_VERIFY);
	memset(bad, 0x11, 64);
	assert_int_equal(x509_cert_assemble_built(tbs, len, bad, 64, ik, &a, &la),
	    X509_ERR_SIG_FORMAT);
	assert_int_equal(x509_cert_assemble_built(tbs, len - 1, sig, siglen, ik, &a, &la),
	    X509_ERR_INVALID);
	assert_int_equal(x509_cert_assemble_built(NULL, len, sig, siglen, ik, &a, &la),
	    X509_ERR_INVALID);
	/* The inner algorithm made ecdsa-with-SHA384 and validly signed. */
	assert_non_null(alg = memmem(tbs, len, sha256_oid, sizeof(sha256_oid)));
	alg[7] = 0x03;
	assert_int_equal(x509_sha256(tbs, len, md), X509_OK);
	siglen = sizeof(sig);
	assert_int_equal(x509_sign_with_pkey(p->issuing_key, md, sig, &siglen), 0);
	assert_int_equal(x509_cert_assemble_built(tbs, len, sig, siglen, ik, &a, &la),
	    X509_ERR_ASSEMBLY);
	assert_null(a);
	free(tbs);
	EVP_PKEY_free(k);
}

/* Threads checking with one verifier at once: good and bad alternately. */
struct verifier_job {
	const x509_verifier_t *v;
	const unsigned char *tbs, *sig, *bad;
	size_t len, siglen;
	int wrong; /* answers that were not what they must be */
};

static void *
verifier_thread(void *arg)
{
	struct verifier_job *j = arg;

	for (int i = 0; i < 60; i++) {
		if (x509_verifier_check(j->v, j->tbs, j->len, j->sig, j->siglen) != X509_OK)
			j->wrong++;
		if (x509_verifier_check(j->v, j->tbs, j->len, j->bad, j->siglen) !=
		    X509_ERR_SIG_VERIFY)
			j->wrong++;
	}
	return NULL;
}

/*
 * x509_verifier: the context set up once still refuses a bad signature, a
 * signature by another key, a tampered TBS and a wrong algorithm, also
 * right after a refusal and from several threads at once; and
 * x509_cert_assemble_verified gives x509_cert_assemble_built's answers and
 * bytes.
 */
static void
test_verifier(void **state)
{
	struct pki *p = *state;
	struct x509_cert_spec s;
	EVP_PKEY *k = ec_key("P-256"), *k384 = ec_key("P-384");
	const EVP_PKEY *ik = X509_get0_pubkey(p->issuing), *rk = X509_get0_pubkey(p->root);
	x509_verifier_t *v = NULL, *vr = NULL;
	unsigned char *tbs = NULL, *a = NULL, *b = NULL, md[32], sig[80], bad[90], other[80];
	unsigned char *alg;
	static const unsigned char sha256_oid[] = { 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02 };
	size_t len = 0, la = 0, lb = 0, siglen = sizeof(sig), olen = sizeof(other);
	struct verifier_job jobs[4];
	pthread_t th[4];

	assert_int_equal(x509_verifier_new(NULL, &v), X509_ERR_INVALID);
	assert_int_equal(x509_verifier_new(ik, NULL), X509_ERR_INVALID);
	assert_int_equal(x509_verifier_new(k384, &v), X509_ERR_KEY);
	assert_null(v);
	x509_verifier_free(NULL);
	assert_int_equal(x509_verifier_new(ik, &v), X509_OK);
	assert_int_equal(x509_verifier_new(rk, &vr), X509_OK);
	assert_ptr_equal(x509_verifier_key(v), ik);

	device_spec(&s, p, 30, k, 3);
	s.crl_uri = CRL_URI;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_OK);
	assert_int_equal(x509_sha256(tbs, len, md), X509_OK);
	assert_int_equal(x509_sign_with_pkey(p->issuing_key, md, sig, &siglen), 0);
	/* The same digest signed by the root: valid, but not the issuer's. */
	assert_int_equal(x509_sign_with_pkey(p->root_key, md, other, &olen), 0);
	memcpy(bad, sig, siglen);
	bad[siglen - 1] ^= 0x01;

	for (int round = 0; round < 3; round++) {
		assert_int_equal(x509_verifier_check(v, tbs, len, sig, siglen), X509_OK);
		assert_int_equal(x509_verifier_check(v, tbs, len, bad, siglen), X509_ERR_SIG_VERIFY);
		assert_int_equal(x509_verifier_check(v, tbs, len, other, olen), X509_ERR_SIG_VERIFY);
		assert_int_equal(x509_verifier_check(vr, tbs, len, other, olen), X509_OK);
		assert_int_equal(x509_verifier_check(vr, tbs, len, sig, siglen), X509_ERR_SIG_VERIFY);
		assert_int_equal(x509_verifier_check(v, tbs, len - 1, sig, siglen),
		    X509_ERR_SIG_VERIFY);
		memset(bad + 40, 0x11, 4); /* no longer DER at all */
		assert_int_equal(x509_verifier_check(v, tbs, len, bad, 64), X509_ERR_SIG_VERIFY);
		memcpy(bad, sig, siglen);
		bad[siglen - 1] ^= 0x01;
	}
	assert_int_equal(x509_verifier_check(NULL, tbs, len, sig, siglen), X509_ERR_INVALID);
	assert_int_equal(x509_verifier_check(v, tbs, len, NULL, siglen), X509_ERR_INVALID);

	/* Assembly: the bytes of x509_cert_assemble_built, and its refusals. */
	assert_int_equal(x509_cert_assemble_verified(tbs, len, sig, siglen, v, &a, &la), X509_OK);
	assert_int_equal(x509_cert_assemble_built(tbs, len, sig, siglen, ik, &b, &lb), X509_OK);
	assert_int_equal(la, lb);
	assert_memory_equal(a, b, la);
	free(a);
	free(b);
	a = b = NULL;
	assert_int_equal(x509_cert_assemble_verified(tbs, len, sig, siglen, vr, &a, &la),
	    X509_ERR_SIG_VERIFY);
	assert_int_equal(x509_cert_assemble_verified(tbs, len, bad, siglen, v, &a, &la),
	    X509_ERR_SIG_VERIFY);
	assert_int_equal(x509_cert_assemble_verified(tbs, len, other, olen, v, &a, &la),
	    X509_ERR_SIG_VERIFY);
	memset(bad, 0x11, 64);
	assert_int_equal(x509_cert_assemble_verified(tbs, len, bad, 64, v, &a, &la),
	    X509_ERR_SIG_FORMAT);
	assert_int_equal(x509_cert_assemble_verified(tbs, len, sig, siglen, NULL, &a, &la),
	    X509_ERR_INVALID);
	/* A tampered TBS: one byte of its last extension's value changed. */
	tbs[len - 2] ^= 0x01;
	assert_int_equal(x509_cert_assemble_verified(tbs, len, sig, siglen, v, &a, &la),
	    X509_ERR_SIG_VERIFY);
	tbs[len - 2] ^= 0x01;
	assert_int_equal(x509_cert_assemble_verified(tbs, len, sig, siglen, v, &a, &la), X509_OK);
	free(a);
	a = NULL;
	memcpy(bad, sig, siglen);
	bad[siglen - 1] ^= 0x01;

	/* Several threads on one verifier. */
	for (int i = 0; i < 4; i++) {
		jobs[i] = (struct verifier_job){ .v = v, .tbs = tbs, .len = len, .sig = sig,
						 .bad = bad, .siglen = siglen };
		assert_int_equal(pthread_create(&th[i], NULL, verifier_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(jobs[i].wrong, 0);
	}

	/* The inner algorithm made ecdsa-with-SHA384, validly signed. */
	assert_non_null(alg = memmem(tbs, len, sha256_oid, sizeof(sha256_oid)));
	alg[7] = 0x03;
	assert_int_equal(x509_sha256(tbs, len, md), X509_OK);
	siglen = sizeof(sig);
	assert_int_equal(x509_sign_with_pkey(p->issuing_key, md, sig, &siglen), 0);
	assert_int_equal(x509_verifier_check(v, tbs, len, sig, siglen), X509_OK);
	assert_int_equal(x509_cert_assemble_verified(tbs, len, sig, siglen, v, &a, &la),
	    X509_ERR_ASSEMBLY);
	assert_null(a);

	x509_verifier_free(v);
	x509_verifier_free(vr);
	free(tbs);
	EVP_PKEY_free(k);
	EVP_PKEY_free(k384);
}

/* Raw PKCS#11 r||s to DER, and the DER check. */
static void
test_ecdsa_sig(void **state)
{
	struct pki *p = *state;
	unsigned char rs[64], der[X509_ECDSA_SIG_MAX], md[32];
	unsigned char ber[] = { 0x30, 0x81, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01 };
	unsigned char neg[] = { 0x30, 0x06, 0x02, 0x01, 0x81, 0x02, 0x01, 0x01 };
	size_t derlen = sizeof(der);
	EVP_PKEY_CTX *ctx;
	size_t i;

	(void)p;
	for (i = 0; i < sizeof(rs); i++)
		rs[i] = (unsigned char)(i + 1);
	rs[0] = 0x80;	/* r needs a leading zero in DER */
	assert_int_equal(x509_ecdsa_sig_from_raw(rs, 64, der, &derlen), X509_OK);
	assert_int_equal(der[0], 0x30);
	assert_int_equal(der[3], 33);
	assert_int_equal(der[4], 0x00);
	assert_int_equal(x509_ecdsa_sig_check(der, derlen), X509_OK);
	derlen = 10;
	assert_int_equal(x509_ecdsa_sig_from_raw(rs, 64, der, &derlen), X509_ERR_INVALID);
	derlen = sizeof(der);
	assert_int_equal(x509_ecdsa_sig_from_raw(rs, 63, der, &derlen), X509_ERR_INVALID);
	memset(rs, 0, 32);
	assert_int_equal(x509_ecdsa_sig_from_raw(rs, 64, der, &derlen), X509_ERR_SIG_FORMAT);

	assert_int_equal(x509_ecdsa_sig_check(ber, sizeof(ber)), X509_ERR_SIG_FORMAT);
	assert_int_equal(x509_ecdsa_sig_check(neg, sizeof(neg)), X509_ERR_SIG_FORMAT);

	/* A real signature survives DER -> verify. */
	memset(md, 0x5a, sizeof(md));
	derlen = sizeof(der);
	assert_int_equal(x509_sign_with_pkey(p->issuing_key, md, der, &derlen), 0);
	assert_int_equal(x509_ecdsa_sig_check(der, derlen), X509_OK);
	ctx = EVP_PKEY_CTX_new(p->issuing_key, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	assert_int_equal(EVP_PKEY_verify(ctx, der, derlen, md, sizeof(md)), 1);
	EVP_PKEY_CTX_free(ctx);
}

/* ------------------------------------------------------------ helpers */

static void
test_serial(void **state)
{
	unsigned char a[16], b[16], z[16], f[16];
	int i;

	(void)state;
	for (i = 0; i < 64; i++) {
		assert_int_equal(x509_serial_random(a), X509_OK);
		assert_true(a[0] >= 0x40 && a[0] <= 0x7f);
	}
	assert_int_equal(x509_serial_random(b), X509_OK);
	assert_memory_not_equal(a, b, 16);
	memset(z, 0, sizeof(z));
	x509_serial_normalize(z);
	assert_int_equal(z[0], 0x40);
	memset(f, 0xff, sizeof(f));
	x509_serial_normalize(f);
	assert_int_equal(f[0], 0x7f);
	assert_int_equal(f[1], 0xff);
}

static void
test_owner_name(void **state)
{
	char buf[X509_OWNER_NAME_SIZE], small[8];
	char id63[64], zone200[201];

	(void)state;
	assert_int_equal(x509_owner_name(1, DEVICE_ID, "iotregistry.test.", buf, sizeof(buf)), X509_OK);
	assert_string_equal(buf, "1." DEVICE_ID ".iotregistry.test");
	assert_int_equal(x509_owner_name(42, DEVICE_ID, "IoTRegistry.Test", buf, sizeof(buf)), X509_OK);
	assert_string_equal(buf, "42." DEVICE_ID ".iotregistry.test");
	assert_int_equal(x509_owner_name(0, DEVICE_ID, ZONE, buf, sizeof(buf)), X509_ERR_NAME);
	assert_int_equal(x509_owner_name(1, "89122g", ZONE, buf, sizeof(buf)), X509_ERR_NAME);
	assert_int_equal(x509_owner_name(1, "", ZONE, buf, sizeof(buf)), X509_ERR_NAME);
	assert_int_equal(x509_owner_name(1, DEVICE_ID, "-bad.test", buf, sizeof(buf)), X509_ERR_NAME);
	assert_int_equal(x509_owner_name(1, DEVICE_ID, ".", buf, sizeof(buf)), X509_ERR_NAME);
	assert_int_equal(x509_owner_name(1, DEVICE_ID, ZONE, small, sizeof(small)), X509_ERR_INVALID);
	memset(id63, 'a', 63);
	id63[63] = '\0';
	assert_int_equal(x509_owner_name(1, id63, ZONE, buf, sizeof(buf)), X509_OK);
	/* Over 253 characters in all. */
	memset(zone200, 'a', 200);
	for (int i = 50; i < 200; i += 51)
		zone200[i] = '.';
	zone200[200] = '\0';
	assert_int_equal(x509_owner_name(1, id63, zone200, buf, sizeof(buf)), X509_ERR_NAME);
}

static void
test_name_parse(void **state)
{
	X509_NAME *n = NULL;
	char *s;

	(void)state;
	assert_int_equal(x509_name_parse("/O=A\\/B/CN=Root", &n), X509_OK);
	assert_int_equal(X509_NAME_entry_count(n), 2);
	s = X509_NAME_oneline(n, NULL, 0);
	assert_non_null(strstr(s, "CN=Root"));
	OPENSSL_free(s);
	X509_NAME_free(n);
	n = NULL;
	assert_int_equal(x509_name_parse("CN=x", &n), X509_ERR_NAME);
	assert_int_equal(x509_name_parse("/CN=", &n), X509_ERR_NAME);
	assert_int_equal(x509_name_parse("/=x", &n), X509_ERR_NAME);
	assert_int_equal(x509_name_parse("/", &n), X509_ERR_NAME);
	assert_int_equal(x509_name_parse("/NOSUCHATTR=x", &n), X509_ERR_NAME);
	assert_int_equal(x509_name_parse("/CN=x\\", &n), X509_ERR_NAME);
	assert_int_equal(x509_name_parse("/C=CAN", &n), X509_ERR_NAME);
	assert_null(n);
}

static void
test_fingerprints(void **state)
{
	struct pki *p = *state;
	EVP_PKEY *key = NULL;
	X509 *dev = device_cert(p, DEVICE_ID, ZONE, &key);
	unsigned char *der = NULL;
	char a[X509_HEX_SIZE], b[X509_HEX_SIZE];
	size_t len = 0;

	assert_int_equal(x509_cert_der(dev, &der, &len), X509_OK);
	assert_int_equal(x509_sha256_hex(der, len, a), X509_OK);
	assert_int_equal(x509_cert_fingerprint(dev, b), X509_OK);
	assert_string_equal(a, b);
	assert_int_equal(strlen(a), 64);
	assert_int_equal(x509_cert_spki_fingerprint(dev, a), X509_OK);
	assert_int_equal(x509_pkey_spki_fingerprint(key, b), X509_OK);
	assert_string_equal(a, b);
	/* A known vector: SHA-256 of "abc". */
	assert_int_equal(x509_sha256_hex("abc", 3, a), X509_OK);
	assert_string_equal(a, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_string_equal(x509_strerror(X509_ERR_TBS_EKU),
	    "extendedKeyUsage is not exactly clientAuth");
	assert_string_equal(x509_strerror(12345), "unknown error");
	free(der);
	EVP_PKEY_free(key);
	X509_free(dev);
}

/* ------------------------------------------------------------ CRL */

static void
test_crl(void **state)
{
	struct pki *p = *state;
	static const unsigned char s1[16] = { 0x7f, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15 };
	static const unsigned char s2[16] = { 0x41, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0, 1, 2, 3, 4, 5, 6, 7, 8 };
	struct x509_crl_entry e[2] = {
		{ s1, sizeof(s1), 0, CRL_REASON_KEY_COMPROMISE },
		{ s2, sizeof(s2), 0, -1 },
	};
	struct x509_crl_spec cs;
	X509_CRL *crl = NULL;
	ASN1_INTEGER *num;
	ASN1_ENUMERATED *reason;
	STACK_OF(X509_REVOKED) *revs;
	unsigned char *name = NULL, *tbs = NULL;
	size_t namelen = 0, tbslen = 0;
	char out[8192], detail[X509_DETAIL_SIZE];
	FILE *f;
	char path[128];

	e[0].revoked_at = e[1].revoked_at = p->now - 60;
	memset(&cs, 0, sizeof(cs));
	cs.issuer = p->issuing;
	cs.this_update = p->now - 60;
	cs.next_update = p->now + 7 * DAY;
	cs.number = 7;
	cs.entries = e;
	cs.n_entries = 2;
	assert_int_equal(x509_crl_create(&cs, x509_sign_with_pkey, p->issuing_key, &crl), X509_OK);
	assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
	assert_int_equal(X509_CRL_verify(crl, X509_get0_pubkey(p->issuing)), 1);
	assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(p->issuing)), 0);
	num = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
	assert_non_null(num);
	assert_int_equal(ASN1_INTEGER_get(num), 7);
	ASN1_INTEGER_free(num);
	revs = X509_CRL_get_REVOKED(crl);
	assert_int_equal(sk_X509_REVOKED_num(revs), 2);
	/* Sorted by serial: s2 (0x41...) before s1 (0x7f...). */
	assert_int_equal(ASN1_STRING_get0_data(X509_REVOKED_get0_serialNumber(
	    sk_X509_REVOKED_value(revs, 0)))[0], 0x41);
	reason = X509_REVOKED_get_ext_d2i(sk_X509_REVOKED_value(revs, 1), NID_crl_reason, NULL, NULL);
	assert_non_null(reason);
	assert_int_equal(ASN1_ENUMERATED_get(reason), CRL_REASON_KEY_COMPROMISE);
	ASN1_ENUMERATED_free(reason);
	assert_int_equal(X509_REVOKED_get_ext_count(sk_X509_REVOKED_value(revs, 0)), 0);

	/* The real tool verifies it and lists both serials. */
	write_pem(p, "issuing.pem", p->issuing, NULL, NULL);
	snprintf(path, sizeof(path), "%s/crl.pem", p->dir);
	assert_non_null(f = fopen(path, "w"));
	assert_int_equal(PEM_write_X509_CRL(f, crl), 1);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(run(p, out, sizeof(out),
	    "openssl crl -in crl.pem -CAfile issuing.pem -verify -noout -text"), 0);
	assert_non_null(strstr(out, "verify OK"));
	assert_non_null(strstr(out, "7F0102030405060708090A0B0C0D0E0F"));
	assert_non_null(strstr(out, "41AABBCCDDEEFF000102030405060708"));
	assert_non_null(strstr(out, "Key Compromise"));
	/* Against the wrong CA it does not verify. */
	write_pem(p, "root.pem", p->root, NULL, NULL);
	assert_int_not_equal(run(p, out, sizeof(out),
	    "openssl crl -in crl.pem -CAfile root.pem -verify -noout"), 0);
	X509_CRL_free(crl);

	/* The HSM-side check accepts the TBS and refuses another issuer. */
	assert_int_equal(x509_crl_tbs_build(&cs, &tbs, &tbslen), X509_OK);
	assert_int_equal(x509_name_der(X509_get_subject_name(p->issuing), &name, &namelen), X509_OK);
	assert_int_equal(x509_tbs_crl_check(tbs, tbslen, name, namelen, detail, sizeof(detail)), X509_OK);
	free(name);
	assert_int_equal(x509_name_der(X509_get_subject_name(p->root), &name, &namelen), X509_OK);
	assert_int_equal(x509_tbs_crl_check(tbs, tbslen, name, namelen, detail, sizeof(detail)),
	    X509_ERR_TBS_ISSUER);
	/* A certificate TBS is not a CRL TBS. */
	free(tbs);
	tbs = NULL;
	assert_int_equal(x509_tbs_crl_check((const unsigned char *)"\x30\x00", 2, name, namelen,
	    detail, sizeof(detail)), X509_ERR_TBS_PARSE);
	free(name);

	/* Refused specs: duplicate serials, reversed dates, a bad reason. */
	e[1].serial = s1;
	assert_int_equal(x509_crl_tbs_build(&cs, &tbs, &tbslen), X509_ERR_INVALID);
	e[1].serial = s2;
	e[1].reason = 7;
	assert_int_equal(x509_crl_tbs_build(&cs, &tbs, &tbslen), X509_ERR_INVALID);
	e[1].reason = -1;
	cs.next_update = cs.this_update;
	assert_int_equal(x509_crl_tbs_build(&cs, &tbs, &tbslen), X509_ERR_INVALID);
	assert_null(tbs);

	/* An empty CRL is fine too. */
	cs.next_update = p->now + DAY;
	cs.n_entries = 0;
	cs.number = 8;
	assert_int_equal(x509_crl_create(&cs, x509_sign_with_pkey, p->issuing_key, &crl), X509_OK);
	/* RFC 5280 §5.1.2.6: no entries means no revokedCertificates field. */
	assert_null(X509_CRL_get_REVOKED(crl));
	/* Wrong signer: assembly refuses it. */
	X509_CRL_free(crl);
	crl = NULL;
	assert_int_equal(x509_crl_create(&cs, x509_sign_with_pkey, p->root_key, &crl),
	    X509_ERR_SIG_VERIFY);
	assert_null(crl);
}

/* ------------------------------------------------------------ TBS checks */

/* How a hand-made device TBS differs from a good one. */
struct variant {
	int ca;                 /* basicConstraints CA:TRUE */
	int wrong_issuer;       /* issuer = root's subject */
	int64_t days;           /* validity length, default 30 */
	const char *san;        /* SAN value, default DNS:<owner> */
	const char *cn;         /* subject CN, default owner */
	const char *eku;        /* default clientAuth */
	const char *ku;         /* default critical,digitalSignature */
	int name_constraints;   /* add nameConstraints */
	int extra_ext;          /* add an unexpected extension */
	int no_bc;              /* leave basicConstraints out */
	const char *curve;      /* subject key curve, default P-256 */
};

static void
add_ext(X509 *x, X509V3_CTX *v3, int nid, const char *value)
{
	X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, v3, nid, value);

	assert_non_null(ext);
	assert_int_equal(X509_add_ext(x, ext, -1), 1);
	X509_EXTENSION_free(ext);
}

/* A TBS built with plain OpenSSL (as a malicious front could), signed with
 * the issuing key only so that OpenSSL fills in the algorithm. */
static unsigned char *
variant_tbs(struct pki *p, const struct variant *v, size_t *len)
{
	const char *owner = "1." DEVICE_ID "." ZONE;
	EVP_PKEY *k = ec_key(v->curve ? v->curve : "P-256");
	X509 *x = X509_new();
	X509_NAME *subj = X509_NAME_new();
	X509V3_CTX v3;
	unsigned char serial[16], *der = NULL;
	char san[300];
	ASN1_INTEGER *ai;
	int n;

	assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
	assert_int_equal(x509_serial_random(serial), X509_OK);
	ai = ASN1_INTEGER_new();
	ASN1_STRING_set(ai, serial, 16);
	X509_set_serialNumber(x, ai);
	ASN1_INTEGER_free(ai);
	X509_time_adj_ex(X509_getm_notBefore(x), 0, 0, NULL);
	X509_time_adj_ex(X509_getm_notAfter(x), v->days ? (int)v->days : 30, 0, NULL);
	X509_set_issuer_name(x, X509_get_subject_name(v->wrong_issuer ? p->root : p->issuing));
	X509_NAME_add_entry_by_txt(subj, "CN", MBSTRING_UTF8,
	    (const unsigned char *)(v->cn ? v->cn : owner), -1, -1, 0);
	X509_set_subject_name(x, subj);
	X509_set_pubkey(x, k);
	X509V3_set_ctx(&v3, p->issuing, x, NULL, NULL, 0);
	if (!v->no_bc)
		add_ext(x, &v3, NID_basic_constraints, v->ca ? "critical,CA:TRUE" : "critical,CA:FALSE");
	add_ext(x, &v3, NID_key_usage, v->ku ? v->ku : "critical,digitalSignature");
	add_ext(x, &v3, NID_ext_key_usage, v->eku ? v->eku : "clientAuth");
	snprintf(san, sizeof(san), "DNS:%s", owner);
	add_ext(x, &v3, NID_subject_alt_name, v->san ? v->san : san);
	add_ext(x, &v3, NID_subject_key_identifier, "hash");
	add_ext(x, &v3, NID_authority_key_identifier, "keyid:always");
	if (v->name_constraints)
		add_ext(x, &v3, NID_name_constraints, "critical,permitted;DNS:" ZONE);
	if (v->extra_ext)
		add_ext(x, &v3, NID_netscape_comment, "hello");
	assert_true(X509_sign(x, p->issuing_key, EVP_sha256()) > 0);
	n = i2d_re_X509_tbs(x, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	X509_NAME_free(subj);
	X509_free(x);
	EVP_PKEY_free(k);
	return der;
}

static int
check_variant(struct pki *p, const struct variant *v, char *detail)
{
	unsigned char *tbs, *name = NULL;
	size_t len = 0, namelen = 0;
	int r;

	tbs = variant_tbs(p, v, &len);
	assert_int_equal(x509_name_der(X509_get_subject_name(p->issuing), &name, &namelen), X509_OK);
	r = x509_tbs_cert_check_device(tbs, len, name, namelen, ZONE ".", 90 * DAY,
	    detail, X509_DETAIL_SIZE);
	OPENSSL_free(tbs);
	free(name);
	return r;
}

static void
test_tbs_check(void **state)
{
	struct pki *p = *state;
	struct x509_cert_spec s;
	struct variant v;
	EVP_PKEY *k = ec_key("P-256");
	unsigned char *tbs = NULL, *name = NULL, *bad, pt[65], *hit;
	size_t len = 0, namelen = 0, ptlen = 0;
	char detail[X509_DETAIL_SIZE];

	/* The library's own device TBS passes, long name included. */
	assert_int_equal(x509_name_der(X509_get_subject_name(p->issuing), &name, &namelen), X509_OK);
	device_spec(&s, p, 60, k, 3);
	s.device_id = LONG_ID;
	s.crl_uri = CRL_URI;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_OK);
	assert_int_equal(x509_tbs_cert_check_device(tbs, len, name, namelen, ZONE,
	    90 * DAY, detail, sizeof(detail)), X509_OK);
	/* ... but not with a tighter validity cap, ... */
	assert_int_equal(x509_tbs_cert_check_device(tbs, len, name, namelen, ZONE,
	    30 * DAY, detail, sizeof(detail)), X509_ERR_TBS_VALIDITY);
	/* ... nor for another zone, ... */
	assert_int_equal(x509_tbs_cert_check_device(tbs, len, name, namelen, "other.test",
	    90 * DAY, detail, sizeof(detail)), X509_ERR_TBS_NAME);
	/* ... nor with a trailing byte or a BER length. */
	bad = malloc(len + 1);
	memcpy(bad, tbs, len);
	bad[len] = 0;
	assert_int_equal(x509_tbs_cert_check_device(bad, len + 1, name, namelen, ZONE,
	    90 * DAY, detail, sizeof(detail)), X509_ERR_TBS_PARSE);
	free(bad);
	assert_true(tbs[1] == 0x82);
	bad = malloc(len + 1);
	bad[0] = 0x30;
	bad[1] = 0x83;
	bad[2] = 0x00;
	memcpy(bad + 3, tbs + 2, len - 2);
	assert_int_equal(x509_tbs_cert_check_device(bad, len + 1, name, namelen, ZONE,
	    90 * DAY, detail, sizeof(detail)), X509_ERR_TBS_PARSE);
	free(bad);
	/* A subject key whose bits are not a point encoding. */
	assert_int_equal(EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY,
	    pt, sizeof(pt), &ptlen), 1);
	assert_non_null(hit = memmem(tbs, len, pt, ptlen));
	hit[0] = 0x05;
	assert_int_equal(x509_tbs_cert_check_device(tbs, len, name, namelen, ZONE,
	    90 * DAY, detail, sizeof(detail)), X509_ERR_TBS_KEY);
	assert_non_null(strstr(detail, "point"));
	free(tbs);
	tbs = NULL;
	assert_int_equal(x509_tbs_cert_check_device(NULL, 0, name, namelen, ZONE,
	    90 * DAY, detail, sizeof(detail)), X509_ERR_INVALID);
	free(name);

	/* Hand-made TBSs: the unmodified one passes, each change is refused. */
	memset(&v, 0, sizeof(v));
	assert_int_equal(check_variant(p, &v, detail), X509_OK);
	v.ca = 1;
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_CA);
	memset(&v, 0, sizeof(v));
	v.no_bc = 1;
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_CA);
	memset(&v, 0, sizeof(v));
	v.wrong_issuer = 1;
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_ISSUER);
	memset(&v, 0, sizeof(v));
	v.days = 365;
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_VALIDITY);
	assert_non_null(strstr(detail, "cap"));
	memset(&v, 0, sizeof(v));
	v.san = "DNS:1." DEVICE_ID ".example.com";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_NAME);
	v.san = "DNS:1.evil" ZONE;	/* a suffix, not a subdomain */
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_NAME);
	v.san = "DNS:" ZONE;		/* the zone itself */
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_NAME);
	v.san = "DNS:1." DEVICE_ID "." ZONE ",IP:192.0.2.1";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_NAME);
	memset(&v, 0, sizeof(v));
	v.cn = "www.example.com";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_NAME);
	memset(&v, 0, sizeof(v));
	v.eku = "serverAuth";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_EKU);
	v.eku = "clientAuth,serverAuth";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_EKU);
	memset(&v, 0, sizeof(v));
	v.ku = "critical,digitalSignature,keyCertSign";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_KEY_USAGE);
	v.ku = "critical,digitalSignature,cRLSign";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_KEY_USAGE);
	memset(&v, 0, sizeof(v));
	v.name_constraints = 1;
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_NAME_CONSTRAINTS);
	memset(&v, 0, sizeof(v));
	v.extra_ext = 1;
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_EXTENSION);
	assert_non_null(strstr(detail, "not allowed"));
	memset(&v, 0, sizeof(v));
	v.curve = "P-384";
	assert_int_equal(check_variant(p, &v, detail), X509_ERR_TBS_KEY);
	assert_non_null(strstr(detail, "secp384r1"));
	EVP_PKEY_free(k);
}

/* ------------------------------------------------------------ mutations */

/* A small deterministic generator, so that a failure can be replayed. */
static uint32_t
next_rand(uint32_t *st)
{
	*st ^= *st << 13;
	*st ^= *st >> 17;
	*st ^= *st << 5;
	return *st;
}

/* Copy @p in with one random change: a byte set, a cut, or a byte added. */
static size_t
mutate(const unsigned char *in, size_t len, unsigned char *out, uint32_t *st)
{
	size_t pos = next_rand(st) % len;

	memcpy(out, in, len);
	switch (next_rand(st) % 3) {
	case 0:
		out[pos] = (unsigned char)next_rand(st);
		return len;
	case 1:
		return pos;
	default:
		memmove(out + pos + 1, out + pos, len - pos);
		out[pos] = (unsigned char)next_rand(st);
		return len + 1;
	}
}

/*
 * The HSM-side checks see bytes from a possibly hostile front: thousands of
 * damaged TBSs must each get a defined answer (under ASan: no memory error),
 * and since most damage breaks the DER, most must be refused.
 */
static void
test_tbs_check_mutations(void **state)
{
	struct pki *p = *state;
	struct x509_cert_spec s;
	struct x509_crl_entry e = { NULL, 0, 0, CRL_REASON_SUPERSEDED };
	struct x509_crl_spec cs;
	EVP_PKEY *k = ec_key("P-256");
	unsigned char *tbs = NULL, *crl = NULL, *name = NULL, *buf, serial[16];
	size_t len = 0, crllen = 0, namelen = 0, n;
	char detail[X509_DETAIL_SIZE];
	uint32_t st = 0x9e3779b9;
	int i, r, refused = 0;

	device_spec(&s, p, 60, k, 1);
	s.crl_uri = CRL_URI;
	assert_int_equal(x509_cert_tbs_build(&s, &tbs, &len), X509_OK);
	assert_int_equal(x509_serial_random(serial), X509_OK);
	e.serial = serial;
	e.serial_len = sizeof(serial);
	e.revoked_at = p->now;
	memset(&cs, 0, sizeof(cs));
	cs.issuer = p->issuing;
	cs.this_update = p->now;
	cs.next_update = p->now + DAY;
	cs.number = 1;
	cs.entries = &e;
	cs.n_entries = 1;
	assert_int_equal(x509_crl_tbs_build(&cs, &crl, &crllen), X509_OK);
	assert_int_equal(x509_name_der(X509_get_subject_name(p->issuing), &name, &namelen), X509_OK);
	assert_non_null(buf = malloc((len > crllen ? len : crllen) + 1));

	for (i = 0; i < 3000; i++) {
		n = mutate(tbs, len, buf, &st);
		r = x509_tbs_cert_check_device(buf, n, name, namelen, ZONE, 90 * DAY,
		    detail, sizeof(detail));
		assert_true(r == X509_OK || (r <= X509_ERR_TBS_PARSE && r >= X509_ERR_TBS_KEY));
		refused += r != X509_OK;
		n = mutate(crl, crllen, buf, &st);
		r = x509_tbs_crl_check(buf, n, name, namelen, detail, sizeof(detail));
		assert_true(r == X509_OK || (r <= X509_ERR_TBS_PARSE && r >= X509_ERR_TBS_KEY));
		refused += r != X509_OK;
	}
	assert_true(refused > 3000);
	free(buf);
	free(name);
	free(crl);
	free(tbs);
	EVP_PKEY_free(k);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_chain_verify_strict),
		cmocka_unit_test(test_chain_tools),
		cmocka_unit_test(test_name_constraints_enforced),
		cmocka_unit_test(test_root_profile),
		cmocka_unit_test(test_issuing_profile),
		cmocka_unit_test(test_device_profile),
		cmocka_unit_test(test_device_long_name),
		cmocka_unit_test(test_device_compressed_key),
		cmocka_unit_test(test_csr_parse_like),
		cmocka_unit_test(test_tbs_der_matches_openssl),
		cmocka_unit_test(test_spec_refusals),
		cmocka_unit_test(test_assemble),
		cmocka_unit_test(test_assemble_built),
		cmocka_unit_test(test_verifier),
		cmocka_unit_test(test_ecdsa_sig),
		cmocka_unit_test(test_serial),
		cmocka_unit_test(test_owner_name),
		cmocka_unit_test(test_name_parse),
		cmocka_unit_test(test_fingerprints),
		cmocka_unit_test(test_crl),
		cmocka_unit_test(test_tbs_check),
		cmocka_unit_test(test_tbs_check_mutations),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
