/* Helpers shared by the audit tests; see test_audit_util.h. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <openssl/ec.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/audit.h"
#include "tests/unit/test_audit_util.h"

void
tu_tmpdir(char *out)
{
	snprintf(out, 64, "/tmp/regsign-audit-XXXXXX");
	assert_non_null(mkdtemp(out));
}

void
tu_rmdir(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

EVP_PKEY *
tu_key_new(void)
{
	EVP_PKEY *k = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	assert_non_null(k);
	return k;
}

void
tu_key_write_pub(EVP_PKEY *key, const char *path)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(PEM_write_PUBKEY(fp, key), 1);
	fclose(fp);
}

int
tu_sign(void *ctx, const unsigned char *data, size_t len, unsigned char sig_raw[64])
{
	EVP_PKEY *key = ctx;
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	unsigned char der[80];
	const unsigned char *p = der;
	size_t dlen = sizeof(der);
	ECDSA_SIG *sig = NULL;
	const BIGNUM *r, *s;
	int rc = -1;

	/* What the HSM process checks before an audit-key signature. */
	if (len <= AUDIT_CHECKPOINT_DOMAIN_LEN ||
	    memcmp(data, AUDIT_CHECKPOINT_DOMAIN, AUDIT_CHECKPOINT_DOMAIN_LEN) != 0)
		goto out;
	if (md == NULL || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
	    EVP_DigestSign(md, der, &dlen, data, len) != 1)
		goto out;
	if ((sig = d2i_ECDSA_SIG(NULL, &p, (long)dlen)) == NULL)
		goto out;
	ECDSA_SIG_get0(sig, &r, &s);
	if (BN_bn2binpad(r, sig_raw, 32) != 32 || BN_bn2binpad(s, sig_raw + 32, 32) != 32)
		goto out;
	rc = 0;
out:
	ECDSA_SIG_free(sig);
	EVP_MD_CTX_free(md);
	return rc;
}

char *
tu_read(const char *path, size_t *len)
{
	FILE *fp = fopen(path, "rb");
	char *buf;
	long n;
	assert_non_null(fp);
	assert_int_equal(fseek(fp, 0, SEEK_END), 0);
	n = ftell(fp);
	assert_true(n >= 0);
	rewind(fp);
	buf = malloc((size_t)n + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
	buf[n] = '\0';
	fclose(fp);
	*len = (size_t)n;
	return buf;
}

void
tu_write(const char *path, const char *data, size_t len)
{
	FILE *fp = fopen(path, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, len, fp), len);
	assert_int_equal(fclose(fp), 0);
}

size_t
tu_count_lines(const char *data, size_t len)
{
	size_t n = 0;
	for (size_t i = 0; i < len; i++)
		n += data[i] == '\n';
	return n;
}

int
tu_line(const char *data, size_t len, size_t n, size_t *off, size_t *llen)
{
	size_t start = 0, line = 1;
	for (size_t i = 0; i < len; i++) {
		if (data[i] != '\n')
			continue;
		if (line == n) {
			*off = start;
			*llen = i - start;
			return 0;
		}
		line++;
		start = i + 1;
	}
	return -1;
}

struct tu_audit_fx *
tu_audit_fx_new(void)
{
	struct tu_audit_fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	tu_tmpdir(f->dir);
	snprintf(f->db, sizeof(f->db), "%s/state.db", f->dir);
	snprintf(f->log, sizeof(f->log), "%s/audit.jsonl", f->dir);
	f->opts.path = f->log;
	f->key = tu_key_new();
	return f;
}

void
tu_audit_fx_open(struct tu_audit_fx *f)
{
	assert_int_equal(store_open(&f->st, f->db, NULL), 0);
	assert_int_equal(audit_log_open(&f->a, f->st, &f->opts, &f->rep), 0);
}

void
tu_audit_fx_close(struct tu_audit_fx *f)
{
	audit_log_close(f->a);
	store_close(f->st);
	f->a = NULL;
	f->st = NULL;
}

void
tu_audit_fx_free(struct tu_audit_fx *f)
{
	if (f->a != NULL || f->st != NULL)
		tu_audit_fx_close(f);
	EVP_PKEY_free(f->key);
	tu_rmdir(f->dir);
	free(f);
}
