/*
 * Sandbox hook of the HSM process (see hook.h). Its own action:
 *
 *   sign MODULE TOKEN_URI PIN_FILE
 *              what the HSM process does, under its sandbox: load the PKCS#11
 *              module, open the token and log in (PIN from the pin file into
 *              locked memory), generate a P-256 key in the token, register it
 *              (attribute checks and a test signature), sign a digest and
 *              verify the signature with OpenSSL, close. Exit 0 when all of
 *              it worked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "pkcs11/hsm.h"
#include "tests/sandbox/hook.h"

static int verify(const unsigned char *spki, size_t spki_len, const unsigned char *digest,
		  const unsigned char *sig, size_t siglen)
{
	const unsigned char *p = spki;
	EVP_PKEY *key = d2i_PUBKEY(NULL, &p, (long)spki_len);
	EVP_PKEY_CTX *ctx = key ? EVP_PKEY_CTX_new(key, NULL) : NULL;
	int ok = ctx != NULL && EVP_PKEY_verify_init(ctx) == 1 &&
		 EVP_PKEY_verify(ctx, sig, siglen, digest, 32) == 1;

	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(key);
	return ok;
}

static int hsm_sign_work(const char *module, const char *token, const char *pin_file)
{
	char err[256] = "", uri[1024], label[64];
	struct hsm_config cfg = {
		.module_path = module, .token_uri = token, .pin_file = pin_file,
		.sessions = 2, .recover_timeout_ms = 2000, .errbuf = err, .errbuf_len = sizeof(err),
	};
	unsigned char id[16], digest[32], sig[HSM_SIG_MAX], *spki = NULL;
	size_t siglen = sizeof(sig), spki_len = 0;
	hsm_t *h = NULL;
	int key = -1, rc, r = HOOK_EXIT_ERRNO;

	rc = hsm_open(&cfg, &h);
	if (rc != HSM_OK) {
		fprintf(stderr, "hook: hsm_open: %s: %s\n", hsm_strerror(rc), err);
		goto out;
	}
	/* A label of its own per run: the control run shares the token. */
	snprintf(label, sizeof(label), "sandbox-key-%d", (int)getpid());
	snprintf(uri, sizeof(uri), "%s;object=%s", token, label);
	if ((rc = hsm_keygen_ec(h, label, id)) != HSM_OK ||
	    (rc = hsm_key_add(h, "zsk", uri, &key)) != HSM_OK ||
	    (rc = hsm_random(h, digest, sizeof(digest))) != HSM_OK ||
	    (rc = hsm_sign(h, key, digest, sizeof(digest), HSM_SIG_DER, sig, &siglen)) != HSM_OK ||
	    (rc = hsm_key_public(h, key, &spki, &spki_len)) != HSM_OK) {
		fprintf(stderr, "hook: hsm: %s: %s\n", hsm_strerror(rc), hsm_last_error(h));
		goto out;
	}
	if (!verify(spki, spki_len, digest, sig, siglen)) {
		fprintf(stderr, "hook: the HSM's signature does not verify\n");
		goto out;
	}
	r = 0;
out:
	free(spki);
	hsm_close(h);
	return r;
}

static int hsm_action(const char *action, int argc, char **argv)
{
	if (strcmp(action, "sign") == 0 && argc == 3)
		return hsm_sign_work(argv[0], argv[1], argv[2]);
	return -1;
}

int main(int argc, char **argv)
{
	return hook_main(argc, argv, SANDBOX_PROFILE_HSM, hsm_action);
}
