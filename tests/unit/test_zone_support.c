/* Helpers shared by the zonesigner unit tests (see test_zone_support.h). */
#include "test_zone_support.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
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
