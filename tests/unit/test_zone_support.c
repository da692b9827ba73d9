/* Helpers shared by the zonesigner unit tests (see test_zone_support.h). */
#include "test_zone_support.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/ec.h>

char *tzs_tmpdir(void)
{
	const char *base = getenv("TMPDIR");
	char *p = NULL;

	if (base == NULL || *base == '\0')
		base = "/tmp";
	assert_true(asprintf(&p, "%s/regsign-zone-XXXXXX", base) > 0);
	if (mkdtemp(p) == NULL)
		fail_msg("mkdtemp %s failed", p);
	return p;
}

void tzs_rmtree(const char *dir)
{
	char *cmd = NULL;

	if (dir == NULL)
		return;
	if (asprintf(&cmd, "rm -rf '%s'", dir) > 0)
		(void)tzs_run(cmd, NULL);
	free(cmd);
}

void tzs_require_tool(const char *tool)
{
	char *cmd = NULL;
	int st;

	assert_true(asprintf(&cmd, "command -v '%s' >/dev/null 2>&1", tool) > 0);
	st = tzs_run(cmd, NULL);
	free(cmd);
	if (st != 0)
		fail_msg("required tool '%s' is not installed (Debian: ldnsutils for ldns-*, "
			 "bind9utils for dnssec-*)", tool);
}

int tzs_run(const char *cmd, char **out)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0;
	char tmp[4096];
	size_t n;
	int st;
	char *full = NULL;

	if (asprintf(&full, "%s 2>&1", cmd) < 0)
		return -1;
	f = popen(full, "r");
	free(full);
	if (f == NULL)
		return -1;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		memcpy(buf + len, tmp, n);
		len += n;
	}
	if (buf == NULL)
		buf = calloc(1, 1);
	else
		buf[len] = '\0';
	st = pclose(f);
	if (out != NULL)
		*out = buf;
	else
		free(buf);
	if (st == -1 || !WIFEXITED(st))
		return -1;
	return WEXITSTATUS(st);
}

char *tzs_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	long sz;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) != 0 || (sz = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
		goto out;
	buf = malloc((size_t)sz + 1);
	if (buf == NULL)
		goto out;
	if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
		free(buf);
		buf = NULL;
		goto out;
	}
	buf[sz] = '\0';
out:
	fclose(f);
	return buf;
}

EVP_PKEY *tzs_p256_new(void)
{
	EVP_PKEY *k = EVP_EC_gen("P-256");

	assert_non_null(k);
	return k;
}

int tzs_p256_sign(EVP_PKEY *key, const uint8_t *data, size_t len, uint8_t sig[64])
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

int tzs_p256_verify(EVP_PKEY *key, const uint8_t *data, size_t len, const uint8_t sig[64])
{
	int ok = 0;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	ECDSA_SIG *es = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(sig, 32, NULL), *s = BN_bin2bn(sig + 32, 32, NULL);
	unsigned char *der = NULL;
	int dlen;

	if (md == NULL || es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s))
		goto out;
	r = s = NULL;
	dlen = i2d_ECDSA_SIG(es, &der);
	if (dlen <= 0 || EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1)
		goto out;
	ok = EVP_DigestVerify(md, der, (size_t)dlen, data, len) == 1;
out:
	OPENSSL_free(der);
	BN_free(r);
	BN_free(s);
	ECDSA_SIG_free(es);
	EVP_MD_CTX_free(md);
	return ok;
}

/* ---- In-memory signer and test zones ---- */

#include <openssl/x509.h>

#include "zonesigner/zone.h"
#include "zonesigner/zone_file.h"
#include "zonesigner/zone_ldns.h"

void tzs_signer_init(struct tzs_signer *s)
{
	struct zone_dnskey k;

	memset(s, 0, sizeof(*s));
	do {
		EVP_PKEY_free(s->ksk);
		EVP_PKEY_free(s->zsk);
		s->ksk = tzs_p256_new();
		s->zsk = tzs_p256_new();
		assert_int_equal(zone_dnskey_from_pkey(s->ksk, ZONE_DNSKEY_FLAGS_KSK, &k), 0);
		s->ksk_tag = k.key_tag;
		assert_int_equal(zone_dnskey_from_pkey(s->zsk, ZONE_DNSKEY_FLAGS_ZSK, &k), 0);
		s->zsk_tag = k.key_tag;
	} while (s->ksk_tag == s->zsk_tag);
}

void tzs_signer_free(struct tzs_signer *s)
{
	EVP_PKEY_free(s->ksk);
	EVP_PKEY_free(s->zsk);
	memset(s, 0, sizeof(*s));
}

int tzs_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	struct tzs_signer *s = ctx;

	s->calls++;
	s->last = n;
	if (s->fail) {
		s->fail = 0;
		return -1;
	}
	for (size_t i = 0; i < n; i++) {
		const uint8_t *d = reqs[i].data;
		uint16_t covered, tag;
		assert_true(reqs[i].len > 18);
		covered = (uint16_t)(d[0] << 8 | d[1]);
		tag = (uint16_t)(d[16] << 8 | d[17]);
		assert_int_equal(d[2], 13);
		assert_int_equal(tag, reqs[i].key_tag);
		if (covered == 48) {
			assert_int_equal(reqs[i].role, ZONE_KEY_KSK);
			assert_int_equal(tag, s->ksk_tag);
		} else {
			assert_int_equal(reqs[i].role, ZONE_KEY_ZSK);
			assert_int_equal(tag, s->zsk_tag);
		}
		if (tzs_p256_sign(reqs[i].role == ZONE_KEY_KSK ? s->ksk : s->zsk, d, reqs[i].len,
				  reqs[i].sig) != 0)
			return -1;
	}
	s->sigs += n;
	return 0;
}

struct zone *tzs_zone_new(struct tzs_signer *s, const uint8_t *ca, size_t calen)
{
	struct zone_params p;
	struct zone *z = NULL;

	zone_params_init(&p);
	assert_int_equal(zone_dnskey_from_pkey(s->ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(s->zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk), 0);
	p.ca_der = ca;
	p.ca_len = calen;
	assert_int_equal(zone_new(&p, &z), 0);
	return z;
}

uint8_t *tzs_cert_new(const char *cn, size_t *len)
{
	EVP_PKEY *k = tzs_p256_new();
	X509 *x = X509_new();
	X509_NAME *name = X509_NAME_new();
	unsigned char *der = NULL;
	int n;

	assert_non_null(x);
	assert_non_null(name);
	assert_true(X509_set_version(x, 2));
	assert_true(ASN1_INTEGER_set(X509_get_serialNumber(x), 1));
	assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn,
					       -1, -1, 0));
	assert_true(X509_set_subject_name(x, name));
	assert_true(X509_set_issuer_name(x, name));
	assert_non_null(X509_gmtime_adj(X509_getm_notBefore(x), 0));
	assert_non_null(X509_gmtime_adj(X509_getm_notAfter(x), 86400));
	assert_true(X509_set_pubkey(x, k));
	assert_true(X509_sign(x, k, EVP_sha256()) > 0);
	n = i2d_X509(x, &der);
	assert_true(n > 0);
	*len = (size_t)n;
	X509_NAME_free(name);
	X509_free(x);
	EVP_PKEY_free(k);
	return der;
}

void tzs_verify_zone_file(const char *path)
{
	char *cmd = NULL, *out = NULL;
	int st;

	tzs_require_tool("ldns-verify-zone");
	assert_true(asprintf(&cmd, "ldns-verify-zone -V 2 '%s'", path) > 0);
	st = tzs_run(cmd, &out);
	if (st != 0)
		fail_msg("ldns-verify-zone %s failed (%d):\n%s", path, st, out);
	free(cmd);
	free(out);
}

void tzs_assert_same_file(const char *a, const char *b)
{
	char *x = tzs_slurp(a), *y = tzs_slurp(b);

	assert_non_null(x);
	assert_non_null(y);
	if (strcmp(x, y) != 0) {
		size_t i = 0;
		while (x[i] == y[i])
			i++;
		fail_msg("%s and %s differ at byte %zu: \"%.80s\" / \"%.80s\"", a, b, i, x + i,
			 y + i);
	}
	free(x);
	free(y);
}

void tzs_verify_zone(const struct zone *z, const char *dir, const char *name)
{
	char *path = NULL, *cmd = NULL, *out = NULL;
	int st;

	tzs_require_tool("dnssec-verify");
	assert_true(asprintf(&path, "%s/%s", dir, name) > 0);
	assert_int_equal(zone_file_write(z, path), 0);
	tzs_verify_zone_file(path);
	assert_true(asprintf(&cmd, "dnssec-verify -q -o %s '%s'", zone_origin(z), path) > 0);
	st = tzs_run(cmd, &out);
	if (st != 0)
		fail_msg("dnssec-verify failed (%d):\n%s", st, out);
	free(cmd);
	free(out);
	free(path);
}

struct text_acc {
	char **lines;
	size_t n, cap;
};

static int acc_rr(void *ctx, const ldns_rr *rr)
{
	struct text_acc *a = ctx;

	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->lines = realloc(a->lines, a->cap * sizeof(*a->lines));
		assert_non_null(a->lines);
	}
	a->lines[a->n] = ldns_rr2str_fmt(ldns_output_format_nocomments, rr);
	assert_non_null(a->lines[a->n]);
	a->n++;
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

char *tzs_zone_text(const struct zone *z)
{
	struct text_acc a = { 0 };
	size_t len = 1;
	char *out;

	assert_int_equal(zone_foreach_rr(z, acc_rr, &a), 0);
	qsort(a.lines, a.n, sizeof(*a.lines), cmp_str);
	for (size_t i = 0; i < a.n; i++)
		len += strlen(a.lines[i]);
	out = malloc(len);
	assert_non_null(out);
	char *w = out;
	for (size_t i = 0; i < a.n; i++) {
		size_t l = strlen(a.lines[i]);
		memcpy(w, a.lines[i], l);
		w += l;
		free(a.lines[i]);
	}
	*w = '\0';
	free(a.lines);
	return out;
}

int tzs_fix_setup(void **state)
{
	struct tzs_fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	tzs_signer_init(&f->s);
	f->now = (int64_t)time(NULL);
	*state = f;
	return 0;
}

int tzs_fix_teardown(void **state)
{
	struct tzs_fix *f = *state;

	zone_free(f->z);
	tzs_signer_free(&f->s);
	free(f);
	return 0;
}
