/*
 * ceremony_file: the reviewed key-ceremony file (ceremony.yaml), read strictly.
 *
 * The file names every key the ceremony makes (PKCS#11 labels), the subjects
 * and validities of the two CA certificates, the registry zone and any extra
 * zones. It holds no credential, module path or token name, so that it can be
 * published with the transcript. The schema is documented in
 * hsm-setup/README.md and shown by hsm-setup/ceremony.example.yaml.
 *
 * Reading goes through policy/yconf.h: an unknown key, a missing required key
 * or a value of the wrong type is an error naming file:line:col and the key.
 * On top of the schema this module checks what the schema cannot express:
 * label and zone-name syntax, every label used once, distinct zones, and that
 * the issuing CA does not outlive the root.
 */
#ifndef REGSIGN_HSM_SETUP_CEREMONY_FILE_H
#define REGSIGN_HSM_SETUP_CEREMONY_FILE_H

#include <stddef.h>
#include <stdint.h>

/** Longest PKCS#11 label the ceremony accepts. */
#define CEREMONY_LABEL_MAX 64

/** Most extra zones one ceremony may make keys for. */
#define CEREMONY_EXTRA_ZONES_MAX 16

/** Size of an error buffer large enough for every message of this module. */
#define CEREMONY_ERRMAX 512

/** Subject of a CA certificate; absent optional parts are NULL. */
struct ceremony_name {
    const char *common_name;          /**< CN, required */
    const char *organization;         /**< O */
    const char *organizational_unit;  /**< OU */
    const char *country;              /**< C, two upper-case letters */
};

/** One CA: the label of its key, its certificate's subject and validity. */
struct ceremony_ca {
    const char *label;
    struct ceremony_name subject;
    int64_t validity;                 /**< seconds */
};

/** One DNSSEC zone: its name and the labels of its KSK and ZSK. */
struct ceremony_zone {
    const char *name;                 /**< absolute, lower case, e.g. "asp.test." */
    int64_t dnskey_ttl;               /**< seconds; default 3600 */
    const char *ksk_label;
    const char *zsk_label;
};

/**
 * A loaded ceremony. Every string points into the loaded document and lives
 * as long as the spec. Read-only for callers.
 */
struct ceremony_spec {
    const char *path;                 /**< file name as given */
    unsigned char sha256[32];         /**< SHA-256 of the file's exact bytes */
    const char *description;          /**< free text; "" when absent */
    struct ceremony_ca root;
    struct ceremony_ca issuing;
    struct ceremony_zone registry;
    const char *audit_label;
    struct ceremony_zone extra[CEREMONY_EXTRA_ZONES_MAX];
    size_t nextra;
    struct yconf_doc *doc;            /**< owns the strings above */
};

/** Errors of ceremony_spec_load(); 0 is success. */
enum ceremony_file_err {
    CEREMONY_FILE_OK = 0,
    CEREMONY_FILE_ENOMEM = -1,   /**< out of memory */
    CEREMONY_FILE_EIO = -2,      /**< the file could not be read */
    CEREMONY_FILE_ESYNTAX = -3,  /**< not YAML we accept (see yconf.h) */
    CEREMONY_FILE_ESCHEMA = -4,  /**< valid YAML that breaks the schema or a rule */
};

/** Static English text for a ceremony_file_err value. */
const char *ceremony_file_strerror(int err);

/**
 * Loads and checks the ceremony file at @p path.
 *
 * @param out  on success a new spec that the caller frees with
 *             ceremony_spec_free(); untouched on error.
 * @param err  on error one line "file:line:col: what" (or "file: what");
 *             may be NULL.
 * @return CEREMONY_FILE_OK or a negative ceremony_file_err.
 */
int ceremony_spec_load(const char *path, struct ceremony_spec **out,
                       char *err, size_t errlen);

/** Frees a spec and its document. NULL is a no-op. */
void ceremony_spec_free(struct ceremony_spec *spec);

/**
 * Writes the name of a zone's output file, "<prefix>.txt" for the registry
 * zone and "<prefix>-<zone without final dot>.txt" for an extra zone, e.g.
 * "ds-asp.test.txt". @p extra is NULL for the registry zone.
 * @return 0, or -1 if it does not fit in @p len bytes.
 */
int ceremony_zone_file_name(const char *prefix, const struct ceremony_zone *extra,
                            char *buf, size_t len);

#endif /* REGSIGN_HSM_SETUP_CEREMONY_FILE_H */
