/*
 * pname: domain names in presentation form, as far as policy needs them.
 * Internal to libregsign-policy.
 *
 * Policy has no DNS library (it depends on nothing but libyaml and
 * libcrypto), yet must compare owner names safely: "WWW._asp.Example." and
 * "www\._asp.example." are different names, "www.\095asp.example." is the
 * same as "www._asp.example.". pname_parse() therefore decodes RFC 1035
 * escapes (\X and \DDD) into raw label bytes, folds ASCII to lowercase and
 * checks the wire limits, and every comparison works label by label on
 * those bytes.
 */
#ifndef REGSIGN_POLICY_PNAME_H
#define REGSIGN_POLICY_PNAME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PNAME_MAX_LABELS 127

/** A parsed name; labels left to right, the root label not stored. */
struct pname {
    size_t nlabels;
    uint8_t len[PNAME_MAX_LABELS];
    uint8_t off[PNAME_MAX_LABELS];
    uint8_t bytes[256];
};

/**
 * Parses @p text. Only absolute names (ending in '.') are accepted; "." is
 * the root. @return true on success; false for relative names, empty
 * labels, labels over 63 bytes, names over 255 bytes in wire form, bad
 * escapes.
 */
bool pname_parse(const char *text, struct pname *out);

/** True if @p name equals @p zone or lies below it. */
bool pname_is_at_or_under(const struct pname *name, const struct pname *zone);

/** True if both names are equal (case-insensitively). */
bool pname_equal(const struct pname *a, const struct pname *b);

/** Label @p i (0 = leftmost) as bytes and length. */
const uint8_t *pname_label(const struct pname *name, size_t i, size_t *len);

#endif /* REGSIGN_POLICY_PNAME_H */
