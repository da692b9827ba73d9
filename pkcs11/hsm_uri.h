/**
 * @file hsm_uri.h
 * @brief RFC 7512 PKCS#11 URIs for regsign: parse, validate, match, build.
 *
 * Parsing is p11-kit's (p11_kit_uri_parse); this module adds regsign's rules
 * on top:
 * - a URI never carries the PIN: pin-value and pin-source are refused (the PIN
 *   comes only from the configured pin file);
 * - a URI never chooses the module: module-name and module-path are refused
 *   (the module path comes only from the configuration);
 * - attributes p11-kit does not know are refused rather than ignored, so that
 *   a typo cannot widen a match;
 * - a token URI names a token (library-*, slot-* and token attributes), never
 *   an object;
 * - a key URI names a private key: object= and/or id= (at least one), type=
 *   absent or "private", plus optional token attributes.
 *
 * Used by libregsign-hsm and by configuration parsers that want to refuse a bad
 * URI early (hsm_uri_check()).
 */
#ifndef REGSIGN_PKCS11_HSM_URI_H
#define REGSIGN_PKCS11_HSM_URI_H

#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

/** What a URI must name. */
enum hsm_uri_kind {
	HSM_URI_TOKEN, /**< a token: "pkcs11:token=regsign" */
	HSM_URI_KEY,   /**< a private key: "pkcs11:token=regsign;object=regsign-zsk" */
};

/** A parsed, validated URI (opaque). */
struct hsm_uri;

/**
 * Parse and validate @p text as a URI of @p kind. On success *out owns the
 * result (free with hsm_uri_free()). On failure the reason is written to
 * @p err (if not NULL; never the PIN). Returns 0, HSM_ERR_URI, HSM_ERR_ARG or
 * HSM_ERR_NOMEM.
 */
int hsm_uri_parse(const char *text, enum hsm_uri_kind kind, struct hsm_uri **out,
                  char *err, size_t errlen);

/** Free a URI. NULL is a no-op. */
void hsm_uri_free(struct hsm_uri *u);

/** Validate only: hsm_uri_parse() without keeping the result. */
int hsm_uri_check(const char *text, enum hsm_uri_kind kind, char *err, size_t errlen);

/**
 * The object label (CKA_LABEL) of a key URI as a NUL-terminated string, or
 * NULL if the URI has no object= attribute. Owned by @p u.
 */
const char *hsm_uri_label(const struct hsm_uri *u);

/** The CKA_ID of a key URI (length in *len), or NULL if it has no id=. Owned by @p u. */
const unsigned char *hsm_uri_id(const struct hsm_uri *u, size_t *len);

/**
 * Whether the URI's library, slot (slot-id too) and token attributes match the given
 * module, slot and token information (absent attributes match anything).
 */
bool hsm_uri_match_token(const struct hsm_uri *u, const CK_INFO *module,
                         CK_SLOT_ID slot_id, const CK_SLOT_INFO *slot,
                         const CK_TOKEN_INFO *token);

/**
 * Build the key URI "pkcs11:token=T;object=L;id=%..;type=private" (token, id
 * optional: NULL/0 leave them out; the label is required), percent-encoded by
 * p11-kit. Returns a malloc'd string the caller frees, or NULL (bad argument
 * or out of memory).
 */
char *hsm_uri_key_build(const char *token_label, const char *object_label,
                        const unsigned char *id, size_t id_len);

#endif
