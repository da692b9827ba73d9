/*
 * libFuzzer target of CSR handling (signer/csr.h csr_parse): any bytes as a
 * DER CertificationRequest. An accepted CSR must hand back a P-256 key and an
 * SPKI that decodes to the same key; a refusal must explain itself in one
 * line. Crashes and sanitizer reports are the other findings.
 * Build and run: tests/fuzz/run.sh (clang, ASan + UBSan).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "signer/csr.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	EVP_PKEY *key = NULL, *again = NULL;
	unsigned char *spki = NULL;
	const unsigned char *p;
	size_t spki_len = 0;
	char detail[256];
	int r;

	memset(detail, 0x7f, sizeof(detail));
	r = csr_parse(data, size, &key, &spki, &spki_len, detail, sizeof(detail));
	if (r != X509_OK) {
		if (key != NULL || spki != NULL || memchr(detail, '\0', sizeof(detail)) == NULL ||
		    detail[0] == '\0')
			abort();
		return 0;
	}
	if (key == NULL || spki == NULL || spki_len == 0 || !EVP_PKEY_is_a(key, "EC") ||
	    EVP_PKEY_get_bits(key) != 256)
		abort();
	p = spki;
	again = d2i_PUBKEY(NULL, &p, (long)spki_len);
	if (again == NULL || p != spki + spki_len || EVP_PKEY_eq(key, again) != 1)
		abort();
	EVP_PKEY_free(again);
	EVP_PKEY_free(key);
	free(spki);
	return 0;
}
