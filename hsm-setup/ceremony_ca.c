/*
 * ceremony_ca: root and issuing CA certificates through signer/x509.h, with
 * the signature made by the token.
 */
#include "hsm-setup/ceremony_ca.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509_vfy.h>

#include "hsm-setup/ceremony_run.h"
#include "signer/x509.h"

static int ca_fail(char *err, size_t errlen, int r, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int ca_fail(char *err, size_t errlen, int r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    return r;
}

/* What the signing callback needs, and what it reports back. */
struct sign_ctx {
    const struct ceremony_signer *signer;
    int hsm_r;          /* hsm_sign()'s result, for the error message */
};

/*
 * The x509 library's signing callback, answered by the token: SHA-256 of the
 * TBS in, DER ECDSA-Sig-Value out.
 */
static int sign_in_token(void *ctx, const unsigned char digest[X509_DIGEST_LEN],
                         unsigned char *sig, size_t *siglen)
{
    struct sign_ctx *sc = ctx;
    unsigned char buf[HSM_SIG_MAX];
    size_t len = sizeof buf;

    sc->hsm_r = hsm_sign(sc->signer->hsm, sc->signer->key_id, digest,
                         X509_DIGEST_LEN, HSM_SIG_DER, buf, &len);
    if (sc->hsm_r != HSM_OK || len > *siglen)
        return -1;
    memcpy(sig, buf, len);
    *siglen = len;
    return 0;
}

/* The subject in a fixed order (C, O, OU, CN), each value UTF-8. */
static int build_name(const struct ceremony_name *n, X509_NAME **out)
{
    const struct { int nid; const char *value; } parts[] = {
        { NID_countryName, n->country },
        { NID_organizationName, n->organization },
        { NID_organizationalUnitName, n->organizational_unit },
        { NID_commonName, n->common_name },
    };
    X509_NAME *name = X509_NAME_new();
    int r = CEREMONY_ERR_NOMEM;

    if (name == NULL)
        goto out;
    r = CEREMONY_ERR_X509;
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++) {
        if (parts[i].value == NULL)
            continue;
        if (!X509_NAME_add_entry_by_NID(name, parts[i].nid, MBSTRING_UTF8,
                                        (const unsigned char *)parts[i].value,
                                        -1, -1, 0))
            goto out;
    }
    *out = name;
    name = NULL;
    r = CEREMONY_OK;
out:
    X509_NAME_free(name);
    return r;
}

/* A 16-byte serial from the token's RNG, made a positive DER INTEGER. */
static int token_serial(const struct ceremony_signer *signer, const char *label,
                        unsigned char serial[X509_SERIAL_LEN], char *err,
                        size_t errlen)
{
    int r = hsm_random(signer->hsm, serial, X509_SERIAL_LEN);

    if (r != HSM_OK)
        return ca_fail(err, errlen, CEREMONY_ERR_HSM,
                       "the token gave no random serial for \"%s\": %s (%s)",
                       label, hsm_strerror(r), hsm_last_error(signer->hsm));
    x509_serial_normalize(serial);
    return CEREMONY_OK;
}

/* Everything the two CA certificates share, then the x509 library's create. */
static int make_ca(const struct ceremony_ca *ca, enum x509_profile profile,
                   const char *zone, const X509 *issuer,
                   const struct ceremony_signer *signer,
                   const unsigned char *spki, size_t spki_len, time_t now,
                   X509 **out, char *err, size_t errlen)
{
    struct x509_cert_spec spec = { .profile = profile, .issuer = issuer,
                                   .zone = zone };
    struct sign_ctx sc = { .signer = signer, .hsm_r = HSM_OK };
    const unsigned char *p = spki;
    EVP_PKEY *key = NULL;
    X509_NAME *name = NULL;
    int r, xr;

    key = d2i_PUBKEY(NULL, &p, (long)spki_len);
    if (key == NULL) {
        r = ca_fail(err, errlen, CEREMONY_ERR_CRYPTO,
                    "the token's public key for \"%s\" does not parse", ca->label);
        goto out;
    }
    r = build_name(&ca->subject, &name);
    if (r != CEREMONY_OK) {
        ca_fail(err, errlen, r, "cannot build the subject of \"%s\"", ca->label);
        goto out;
    }
    r = token_serial(signer, ca->label, spec.serial, err, errlen);
    if (r != CEREMONY_OK)
        goto out;
    spec.not_before = (int64_t)now;
    spec.not_after = (int64_t)now + ca->validity;
    spec.subject_key = key;
    spec.subject = name;
    xr = x509_cert_create(&spec, sign_in_token, &sc, out);
    if (xr == X509_ERR_SIGN && sc.hsm_r != HSM_OK) {
        r = ca_fail(err, errlen, CEREMONY_ERR_HSM,
                    "signing the certificate of \"%s\" in the token: %s (%s)",
                    ca->label, hsm_strerror(sc.hsm_r),
                    hsm_last_error(signer->hsm));
        goto out;
    }
    if (xr != X509_OK) {
        r = ca_fail(err, errlen,
                    xr == X509_ERR_SIGN ? CEREMONY_ERR_HSM : CEREMONY_ERR_X509,
                    "certificate for \"%s\": %s", ca->label, x509_strerror(xr));
        goto out;
    }
    r = CEREMONY_OK;
out:
    EVP_PKEY_free(key);
    X509_NAME_free(name);
    return r;
}

int ceremony_ca_root(const struct ceremony_ca *ca, const struct ceremony_signer *root,
                     const unsigned char *spki, size_t spki_len, time_t now,
                     X509 **out, char *err, size_t errlen)
{
    return make_ca(ca, X509_PROFILE_ROOT, NULL, NULL, root, spki, spki_len, now,
                   out, err, errlen);
}

/*
 * OpenSSL's verifier with X509_V_FLAG_X509_STRICT over the chain just made:
 * the same check `openssl verify -x509_strict` does, run before the files are
 * written so a ceremony never publishes a chain that fails it.
 */
static int verify_chain(X509 *root, X509 *issuing, char *err, size_t errlen)
{
    X509_STORE *store = X509_STORE_new();
    X509_STORE_CTX *ctx = X509_STORE_CTX_new();
    int r = CEREMONY_ERR_NOMEM;

    if (store == NULL || ctx == NULL)
        goto out;
    r = CEREMONY_ERR_X509;
    if (!X509_STORE_add_cert(store, root) ||
        !X509_STORE_CTX_init(ctx, store, issuing, NULL))
        goto out;
    X509_STORE_CTX_set_flags(ctx, X509_V_FLAG_X509_STRICT |
                                  X509_V_FLAG_CHECK_SS_SIGNATURE);
    if (X509_verify_cert(ctx) != 1) {
        ca_fail(err, errlen, r, "the new chain fails strict verification: %s",
                X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
        goto out;
    }
    r = CEREMONY_OK;
out:
    X509_STORE_CTX_free(ctx);
    X509_STORE_free(store);
    return r;
}

int ceremony_ca_issuing(const struct ceremony_ca *ca, const char *zone,
                        X509 *root_cert, const struct ceremony_signer *root,
                        const unsigned char *spki, size_t spki_len, time_t now,
                        X509 **out, char *err, size_t errlen)
{
    X509 *cert = NULL;
    int r;

    r = make_ca(ca, X509_PROFILE_ISSUING, zone, root_cert, root, spki, spki_len,
                now, &cert, err, errlen);
    if (r == CEREMONY_OK)
        r = verify_chain(root_cert, cert, err, errlen);
    if (r == CEREMONY_OK) {
        *out = cert;
        cert = NULL;
    }
    X509_free(cert);
    return r;
}
