/*
 * ceremony_run: carrying out a key ceremony described by a ceremony file.
 *
 * The steps, in order (the transcript numbers them the same way):
 *   root CA key, root CA certificate (self-signed), issuing CA key, issuing
 *   CA certificate (signed by the root key), registry KSK, registry ZSK,
 *   registry DNSKEY/DS, audit key, and per extra zone its KSK, ZSK and
 *   DNSKEY/DS.
 *
 * Before making anything, every label is looked up in the token and every
 * output file in the output directory; if any exists the ceremony is refused
 * as a whole and the token is left untouched. Output files are then created
 * exclusively (O_EXCL), so a file that appears in between is not replaced
 * either.
 *
 * Credentials and machine settings (module, token, PIN file, output
 * directory) come from struct ceremony_env, never from the reviewed file.
 */
#ifndef REGSIGN_HSM_SETUP_CEREMONY_RUN_H
#define REGSIGN_HSM_SETUP_CEREMONY_RUN_H

#include <stdbool.h>
#include <stddef.h>

#include "hsm-setup/ceremony_file.h"

/** Errors of ceremony_run(); 0 is success. */
enum ceremony_err {
    CEREMONY_OK = 0,
    CEREMONY_ERR_NOMEM = -1,   /**< out of memory */
    CEREMONY_ERR_ARG = -2,     /**< bad argument or environment setting */
    CEREMONY_ERR_EXISTS = -3,  /**< refused: a label or output file exists */
    CEREMONY_ERR_HSM = -4,     /**< the token failed or refused an operation */
    CEREMONY_ERR_X509 = -5,    /**< a certificate could not be built or checked */
    CEREMONY_ERR_ZONE = -6,    /**< DNSKEY/DS records could not be made */
    CEREMONY_ERR_IO = -7,      /**< an output file could not be written */
    CEREMONY_ERR_CRYPTO = -8,  /**< an OpenSSL operation failed */
};

/** Static English text for a ceremony_err value. */
const char *ceremony_strerror(int err);

/** Machine settings of one run; strings are borrowed for the call. */
struct ceremony_env {
    const char *module_path;  /**< PKCS#11 module */
    const char *token_uri;    /**< RFC 7512 URI of the token, no object/pin */
    const char *pin_file;     /**< file holding the user PIN */
    const char *out_dir;      /**< output directory; made (0755) if missing */
    bool check_only;          /**< only run the checks; make nothing */
};

/** Size of an error buffer large enough for a refusal listing everything. */
#define CEREMONY_RUN_ERRMAX 4096

/** Name of the transcript file in the output directory. */
#define CEREMONY_TRANSCRIPT_NAME "transcript.txt"

/**
 * Runs the ceremony @p spec with the settings @p env.
 *
 * @param err on error receives a description; for CEREMONY_ERR_EXISTS it
 *            lists every existing label and file ("; "-separated). Once the
 *            transcript is open, a failure is also written into it.
 * @return CEREMONY_OK or a negative ceremony_err.
 */
int ceremony_run(const struct ceremony_spec *spec, const struct ceremony_env *env,
                 char *err, size_t errlen);

#endif /* REGSIGN_HSM_SETUP_CEREMONY_RUN_H */
