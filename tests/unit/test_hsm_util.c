/*
 * Helpers for the libregsign-hsm tests; see test_hsm_util.h.
 */
#include "tests/unit/test_hsm_util.h"

#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/obj_mac.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#ifndef P11FAULT_PATH
#error "P11FAULT_PATH must name the fault module"
#endif

void hsmt_raw_open(struct hsmt_raw *r, const struct fixture_token *t)
{
	CK_C_GetFunctionList get;
	CK_C_INITIALIZE_ARGS args;
	CK_SLOT_ID slots[16];
	CK_ULONG n = 16;
	CK_RV rv;
	void *sym;
	bool found = false;

	memset(r, 0, sizeof(*r));
	r->dl = dlopen(t->module, RTLD_NOW | RTLD_LOCAL);
	if (r->dl == NULL)
		fail_msg("cannot load %s: %s", t->module, dlerror());
	sym = dlsym(r->dl, "C_GetFunctionList");
	assert_non_null(sym);
	memcpy(&get, &sym, sizeof(get));
	assert_int_equal(get(&r->f), CKR_OK);
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	rv = r->f->C_Initialize(&args);
	if (rv != CKR_CRYPTOKI_ALREADY_INITIALIZED) {
		assert_int_equal(rv, CKR_OK);
		r->initialized = true;
	}
	assert_int_equal(r->f->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
	for (CK_ULONG i = 0; i < n && !found; i++) {
		CK_TOKEN_INFO ti;
		size_t ll = strlen(t->label);
		if (r->f->C_GetTokenInfo(slots[i], &ti) != CKR_OK)
			continue;
		if (memcmp(ti.label, t->label, ll) == 0 &&
		    (ll == 32 || ti.label[ll] == ' ')) {
			assert_int_equal(r->f->C_OpenSession(slots[i],
			                 CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
			                 &r->s), CKR_OK);
			found = true;
		}
	}
	if (!found)
		fail_msg("token %s not found", t->label);
	rv = r->f->C_Login(r->s, CKU_USER, (CK_UTF8CHAR_PTR)t->pin, strlen(t->pin));
	if (rv != CKR_USER_ALREADY_LOGGED_IN)
		assert_int_equal(rv, CKR_OK);
}

void hsmt_raw_close(struct hsmt_raw *r)
{
	if (r->f == NULL)
		return;
	r->f->C_CloseSession(r->s);
	if (r->initialized)
		r->f->C_Finalize(NULL);
	dlclose(r->dl);
	memset(r, 0, sizeof(*r));
}

void hsmt_raw_keypair(struct hsmt_raw *r, const char *label, const unsigned char *id,
                      size_t id_len, bool sensitive, bool extractable,
                      CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv)
{
	CK_MECHANISM mech = { CKM_EC_KEY_PAIR_GEN, NULL, 0 };
	CK_BBOOL yes = CK_TRUE, sens = sensitive ? CK_TRUE : CK_FALSE;
	CK_BBOOL extr = extractable ? CK_TRUE : CK_FALSE;
	/* DER of the OID 1.2.840.10045.3.1.7 (P-256), as every PKCS#11 guide
	 * writes it. */
	unsigned char params[] = { 0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07 };
	CK_ATTRIBUTE pubt[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_VERIFY, &yes, sizeof(yes) },
		{ CKA_EC_PARAMS, params, sizeof(params) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, (void *)id, id_len },
	};
	CK_ATTRIBUTE privt[] = {
		{ CKA_TOKEN, &yes, sizeof(yes) },
		{ CKA_PRIVATE, &yes, sizeof(yes) },
		{ CKA_SIGN, &yes, sizeof(yes) },
		{ CKA_SENSITIVE, &sens, sizeof(sens) },
		{ CKA_EXTRACTABLE, &extr, sizeof(extr) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_ID, (void *)id, id_len },
	};
	CK_OBJECT_HANDLE a, b;

	assert_int_equal(r->f->C_GenerateKeyPair(r->s, &mech, pubt, 5, privt, 7, &a, &b),
	                 CKR_OK);
	if (pub != NULL)
		*pub = a;
	if (priv != NULL)
		*priv = b;
}

CK_OBJECT_HANDLE hsmt_raw_find(struct hsmt_raw *r, CK_OBJECT_CLASS cls, const char *label)
{
	CK_BBOOL token = CK_TRUE;
	/* Token objects only: SoftHSM shows this process's session objects (an
	 * hsm_t's session copies of its keys) to every session of it. */
	CK_ATTRIBUTE t[] = {
		{ CKA_CLASS, &cls, sizeof(cls) },
		{ CKA_LABEL, (void *)label, strlen(label) },
		{ CKA_TOKEN, &token, sizeof(token) },
	};
	CK_OBJECT_HANDLE o[2];
	CK_ULONG n = 0;

	assert_int_equal(r->f->C_FindObjectsInit(r->s, t, 3), CKR_OK);
	assert_int_equal(r->f->C_FindObjects(r->s, o, 2, &n), CKR_OK);
	assert_int_equal(r->f->C_FindObjectsFinal(r->s), CKR_OK);
	assert_int_equal(n, 1);
	return o[0];
}

void hsmt_replace_key(const struct fixture_token *t, const char *label)
{
	struct hsmt_raw raw;

	hsmt_raw_open(&raw, t);
	assert_int_equal(raw.f->C_DestroyObject(raw.s,
	                 hsmt_raw_find(&raw, CKO_PRIVATE_KEY, label)), CKR_OK);
	assert_int_equal(raw.f->C_DestroyObject(raw.s,
	                 hsmt_raw_find(&raw, CKO_PUBLIC_KEY, label)), CKR_OK);
	hsmt_raw_keypair(&raw, label, (const unsigned char *)"\x01", 1, true, false,
	                 NULL, NULL);
	hsmt_raw_close(&raw);
}

CK_BBOOL hsmt_raw_bool(struct hsmt_raw *r, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type)
{
	CK_BBOOL v = 0xff;
	CK_ATTRIBUTE a = { type, &v, sizeof(v) };

	assert_int_equal(r->f->C_GetAttributeValue(r->s, o, &a, 1), CKR_OK);
	return v;
}

int hsmt_open(const struct fixture_token *t, const char *module, unsigned sessions,
              unsigned timeout_ms, hsm_t **h)
{
	char err[256];
	struct hsm_config cfg = {
		.module_path = module != NULL ? module : t->module,
		.token_uri = t->uri,
		.pin_file = t->pin_file,
		.sessions = sessions,
		.recover_timeout_ms = timeout_ms,
		.errbuf = err,
		.errbuf_len = sizeof(err),
	};
	int r = hsm_open(&cfg, h);

	if (r != 0)
		print_message("hsm_open: %s: %s\n", hsm_strerror(r), err);
	return r;
}

void hsmt_key_uri(const struct fixture_token *t, const char *label,
                  const unsigned char *id, size_t id_len, char *buf, size_t len)
{
	size_t o;

	if (label != NULL)
		assert_int_equal(fixture_token_key_uri(t, label, buf, len), 0);
	else
		assert_true((size_t)snprintf(buf, len, "%s", t->uri) < len);
	o = strlen(buf);
	if (id_len > 0) {
		assert_true(o + 4 + 3 * id_len < len);
		o += (size_t)snprintf(buf + o, len - o, ";id=");
		for (size_t i = 0; i < id_len; i++)
			o += (size_t)snprintf(buf + o, len - o, "%%%02x", id[i]);
	}
}

void hsmt_fault_setup(const struct fixture_token *t, char *control, size_t len)
{
	char stats[4200];

	assert_true((size_t)snprintf(control, len, "%s/fault.ctl", t->dir) < len);
	snprintf(stats, sizeof(stats), "%s.stats", control);
	hsmt_fault_write(control, "count *\n");
	assert_int_equal(setenv("P11FAULT_CONTROL", control, 1), 0);
	assert_int_equal(setenv("P11FAULT_STATS", stats, 1), 0);
	unsetenv("P11FAULT_MODULE");
}

void hsmt_fault_write(const char *control, const char *text)
{
	char tmp[4200];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", control);
	f = fopen(tmp, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	/* rename(2) makes the module see the whole new file or the old one. */
	assert_int_equal(rename(tmp, control), 0);
}

unsigned long hsmt_fault_stat(const char *control, const char *name)
{
	char path[4200], key[64];
	unsigned long v, found = 0;
	FILE *f;

	snprintf(path, sizeof(path), "%s.stats", control);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	while (fscanf(f, "%63s %lu", key, &v) == 2) {
		if (strcmp(key, name) == 0)
			found = v;
	}
	fclose(f);
	return found;
}

const char *hsmt_fault_module(void)
{
	return P11FAULT_PATH;
}

int hsmt_verify(const unsigned char *spki, size_t spki_len, const unsigned char *digest,
                size_t dlen, const unsigned char *sig, size_t siglen, bool raw)
{
	const unsigned char *p = spki;
	EVP_PKEY *pkey = d2i_PUBKEY(NULL, &p, (long)spki_len);
	EVP_PKEY_CTX *ctx = NULL;
	unsigned char der[256], *q = der;
	size_t derlen = siglen;
	int v = -1;

	assert_non_null(pkey);
	if (raw) {
		/* The test's own conversion, independent of the library's. */
		ECDSA_SIG *es = ECDSA_SIG_new();
		assert_true(siglen % 2 == 0);
		assert_int_equal(ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)siglen / 2, NULL),
		                 BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL)), 1);
		derlen = (size_t)i2d_ECDSA_SIG(es, &q);
		ECDSA_SIG_free(es);
		sig = der;
	}
	ctx = EVP_PKEY_CTX_new(pkey, NULL);
	assert_non_null(ctx);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	v = EVP_PKEY_verify(ctx, sig, derlen, digest, dlen);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pkey);
	return v == 1;
}

void hsmt_sign_check(hsm_t *h, int key_id)
{
	unsigned char digest[32], sig[HSM_SIG_MAX], *spki = NULL;
	size_t siglen, spki_len = 0;
	int r;

	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	assert_int_equal(hsm_key_public(h, key_id, &spki, &spki_len), 0);
	siglen = sizeof(sig);
	r = hsm_sign(h, key_id, digest, sizeof(digest), HSM_SIG_RAW, sig, &siglen);
	if (r != 0)
		fail_msg("hsm_sign raw: %s: %s", hsm_strerror(r), hsm_last_error(h));
	assert_int_equal(siglen, 64);
	assert_true(hsmt_verify(spki, spki_len, digest, sizeof(digest), sig, siglen, true));
	siglen = sizeof(sig);
	r = hsm_sign(h, key_id, digest, sizeof(digest), HSM_SIG_DER, sig, &siglen);
	if (r != 0)
		fail_msg("hsm_sign der: %s: %s", hsm_strerror(r), hsm_last_error(h));
	assert_true(hsmt_verify(spki, spki_len, digest, sizeof(digest), sig, siglen, false));
	free(spki);
}

unsigned long hsmt_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000UL + (unsigned long)ts.tv_nsec / 1000000UL;
}
