/*
 * ceremony_ca: the ceremony's two CA certificates, signed inside the token.
 *
 * The TBSCertificate is built by regsign's X.509 library (signer/x509.h), its
 * SHA-256 is signed by the CA's key in the token (DER ECDSA-Sig-Value), and
 * the library assembles the certificate and checks it parses back. This
 * module adds what the ceremony decides: subjects from the ceremony file,
 * validity from the ceremony time, fresh random serials, and a final check
 * with OpenSSL's own verifier (X509_V_FLAG_X509_STRICT) of the chain made.
 */
#ifndef REGSIGN_HSM_SETUP_CEREMONY_CA_H
#define REGSIGN_HSM_SETUP_CEREMONY_CA_H

#include <stddef.h>
#include <time.h>

#include <openssl/x509.h>

#include "hsm-setup/ceremony_file.h"
#include "pkcs11/hsm.h"

/** A key in the token that signs: the open handle and its key id. */
struct ceremony_signer {
    hsm_t *hsm;
    int key_id;
};

/**
 * Makes the self-signed root certificate: subject and issuer from @p ca,
 * validity now..now+ca->validity, basicConstraints CA:true and keyUsage
 * keyCertSign+cRLSign (both critical), SKI and AKI, signed by @p root.
 *
 * @param spki  the root key's DER SubjectPublicKeyInfo (from the token).
 * @param out   receives the certificate (caller frees with X509_free()).
 * @param err   receives a description on failure.
 * @return CEREMONY_OK, or CEREMONY_ERR_X509, CEREMONY_ERR_HSM,
 *         CEREMONY_ERR_NOMEM, CEREMONY_ERR_CRYPTO (see ceremony_run.h).
 */
int ceremony_ca_root(const struct ceremony_ca *ca, const struct ceremony_signer *root,
                     const unsigned char *spki, size_t spki_len, time_t now,
                     X509 **out, char *err, size_t errlen);

/**
 * Makes the issuing CA certificate signed by the root key: subject from
 * @p ca, issuer = the root certificate's subject, validity now..now+validity,
 * basicConstraints CA:true pathlen 0, keyUsage keyCertSign+cRLSign (critical),
 * nameConstraints permitting only DNS names under @p zone (critical), SKI and
 * AKI = the root's SKI. Then checks the chain with OpenSSL's strict verifier.
 *
 * @param zone       registry zone, absolute ("iotregistry.test.").
 * @param root_cert  the root certificate made by ceremony_ca_root().
 * @param spki       the issuing key's DER SubjectPublicKeyInfo.
 * @return as ceremony_ca_root().
 */
int ceremony_ca_issuing(const struct ceremony_ca *ca, const char *zone,
                        X509 *root_cert, const struct ceremony_signer *root,
                        const unsigned char *spki, size_t spki_len, time_t now,
                        X509 **out, char *err, size_t errlen);

#endif /* REGSIGN_HSM_SETUP_CEREMONY_CA_H */
