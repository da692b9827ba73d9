/*
 * Helpers shared by the tests of libregsign-hsm (test_hsm*.c): raw PKCS#11
 * against the fixture's token (to make keys the library must refuse), the
 * fault module's control and stats files, and OpenSSL verification.
 */
#ifndef REGSIGN_TESTS_UNIT_TEST_HSM_UTIL_H
#define REGSIGN_TESTS_UNIT_TEST_HSM_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/hsm.h"
#include "tests/fixture/softhsm.h"

/* A raw PKCS#11 session on the fixture's token, logged in as user. Works
 * whether or not an hsm_t of this process has the module initialised. */
struct hsmt_raw {
	void *dl;
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	bool initialized;
};

void hsmt_raw_open(struct hsmt_raw *r, const struct fixture_token *t);
void hsmt_raw_close(struct hsmt_raw *r);

/* Generates an EC P-256 pair with the given label, id and private-key flags. */
void hsmt_raw_keypair(struct hsmt_raw *r, const char *label, const unsigned char *id,
                      size_t id_len, bool sensitive, bool extractable,
                      CK_OBJECT_HANDLE *pub, CK_OBJECT_HANDLE *priv);
/* Finds the one object of class cls with this label (fails the test otherwise). */
CK_OBJECT_HANDLE hsmt_raw_find(struct hsmt_raw *r, CK_OBJECT_CLASS cls, const char *label);
/* Deletes the key pair @p label and makes another under that label: a changed key. */
void hsmt_replace_key(const struct fixture_token *t, const char *label);
CK_BBOOL hsmt_raw_bool(struct hsmt_raw *r, CK_OBJECT_HANDLE o, CK_ATTRIBUTE_TYPE type);

/* Opens an hsm_t on the fixture's token through @p module (NULL: SoftHSM). */
int hsmt_open(const struct fixture_token *t, const char *module, unsigned sessions,
              unsigned timeout_ms, hsm_t **h);

/* Key URI "pkcs11:token=<t>;object=<label>" (label may be NULL) plus id if given. */
void hsmt_key_uri(const struct fixture_token *t, const char *label,
                  const unsigned char *id, size_t id_len, char *buf, size_t len);

/* The fault module: control file in the token's directory, set in the
 * environment (P11FAULT_CONTROL, stats next to it). */
void hsmt_fault_setup(const struct fixture_token *t, char *control, size_t len);
void hsmt_fault_write(const char *control, const char *text);
/* A value from the stats file ("C_Login", "overlap", ...), 0 if absent. */
unsigned long hsmt_fault_stat(const char *control, const char *name);
/* Path of the fault module (built with the tests). */
const char *hsmt_fault_module(void);

/* Verifies a signature over a digest against a DER SPKI: 1 valid, 0 not. */
int hsmt_verify(const unsigned char *spki, size_t spki_len, const unsigned char *digest,
                size_t dlen, const unsigned char *sig, size_t siglen, bool raw);

/* Signs a fresh random digest with key_id and checks it in both formats. */
void hsmt_sign_check(hsm_t *h, int key_id);

unsigned long hsmt_now_ms(void);

#endif
