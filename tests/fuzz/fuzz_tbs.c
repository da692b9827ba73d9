/*
 * libFuzzer target of the HSM process's TBS checks (signer/x509.h):
 * x509_tbs_cert_check_device and x509_tbs_crl_check, the code that decides
 * what the issuing-CA key may sign. The first input byte picks the check
 * (even: certificate, odd: CRL); the rest is the TBS. The issuer is
 * "CN=Fuzz CA", zone iotregistry.test., as in the seeds of seedgen. An
 * accepted certificate TBS must parse as a TBSCertificate whose issuer is
 * exactly that name; a refusal must explain itself.
 * Build and run: tests/fuzz/run.sh (clang, ASan + UBSan).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/x509.h>

#include "signer/x509.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The issuer name's DER, made once (a fuzz target may keep state). */
static const unsigned char *issuer(size_t *len)
{
	static unsigned char *der;
	static size_t der_len;
	X509_NAME *n = NULL;

	if (der == NULL) {
		if (x509_name_parse("/CN=Fuzz CA", &n) != X509_OK ||
		    x509_name_der(n, &der, &der_len) != X509_OK)
			abort();
		X509_NAME_free(n);
	}
	*len = der_len;
	return der;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char detail[256];
	size_t ilen;
	const unsigned char *iname = issuer(&ilen);
	unsigned char *tbs;
	int r;

	if (size < 1)
		return 0;
	/* An exact-size copy, so that ASan sees any read past the TBS. */
	tbs = malloc(size - 1 ? size - 1 : 1);
	if (tbs == NULL)
		return 0;
	memcpy(tbs, data + 1, size - 1);
	detail[0] = '\0';
	if ((data[0] & 1) == 0) {
		r = x509_tbs_cert_check_device(tbs, size - 1, iname, ilen, "iotregistry.test.",
					       398LL * 86400, detail, sizeof(detail));
		if (r == X509_OK) {
			/* Accepted: it is a TBSCertificate (wrapped as a
			 * Certificate with a dummy signature, OpenSSL parses it). */
			X509_CINF *ci;
			const unsigned char *p = tbs;

			ci = d2i_X509_CINF(NULL, &p, (long)(size - 1));
			if (ci == NULL || p != tbs + size - 1)
				abort();
			X509_CINF_free(ci);
		}
	} else {
		r = x509_tbs_crl_check(tbs, size - 1, iname, ilen, detail, sizeof(detail));
	}
	if (r != X509_OK && size > 1 && (detail[0] == '\0' || memchr(detail, '\0', sizeof(detail)) == NULL))
		abort();
	free(tbs);
	return 0;
}
