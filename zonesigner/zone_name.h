/**
 * @file zone_name.h
 * @brief Canonical-order keys of names inside the zone (internal module).
 *
 * A name below the apex is stored as its key: the labels relative to the
 * apex, most significant first (reversed), lowercased, each followed by the
 * two bytes 00 00, with a 00 byte inside a label written as 00 FF. Comparing
 * two keys with memcmp (the shorter first when one is a prefix of the other,
 * see zone_name_key_cmp) gives exactly the canonical DNS order of RFC 4034
 * section 6.1: labels compare right to left, octet by octet after
 * lowercasing, a label that is a prefix of another sorts first, and an
 * ancestor sorts before its descendants. The escape keeps the terminator
 * (00 00) below every escaped byte (00 FF, then 01..FF). The apex's key is
 * empty. Keys are at most ZONE_KEY_MAX bytes.
 */
#ifndef REGSIGN_ZONE_NAME_H
#define REGSIGN_ZONE_NAME_H

#include <stddef.h>
#include <stdint.h>

#define ZONE_KEY_MAX 512     /**< worst case: 253 escaped bytes plus terminators */
#define ZONE_WIRE_MAX 255    /**< a wire-format name */

/**
 * @brief Key of the wire-format name @p wire relative to the apex @p apex
 * (both uncompressed wire names; @p apex lowercase).
 * @param key buffer of ZONE_KEY_MAX bytes; @p keylen receives its length.
 * @return 0, ZONE_EINVAL (malformed name or not at/below the apex).
 */
int zone_name_key_from_wire(const uint8_t *wire, size_t wlen, const uint8_t *apex,
			    size_t apexlen, uint8_t *key, size_t *keylen);

/**
 * @brief The lowercase wire name of @p key below @p apex.
 * @param wire buffer of ZONE_WIRE_MAX bytes; @p wlen receives its length.
 * @return 0, ZONE_EFORMAT (malformed key), ZONE_ERANGE (name too long).
 */
int zone_name_key_to_wire(const uint8_t *key, size_t keylen, const uint8_t *apex,
			  size_t apexlen, uint8_t *wire, size_t *wlen);

/** @brief Order of two keys: <0, 0, >0 like memcmp, shorter first on a tie. */
int zone_name_key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen);

/** @brief Whether @p key (of a name) is @p anc or a name below it. */
int zone_name_key_is_below(const uint8_t *key, size_t keylen, const uint8_t *anc,
			   size_t anclen);

/**
 * @brief Walk the labels of a key: on return @p buf and @p llen hold the next label
 * (unescaped into @p buf of 63 bytes) and *pos advances.
 * @return 1 when a label was produced, 0 at the end, negative on a malformed key.
 */
int zone_name_key_label(const uint8_t *key, size_t keylen, size_t *pos, uint8_t *buf,
			size_t *llen);

/** @brief Number of labels of the key (0 for the apex), or negative if malformed. */
int zone_name_key_labels(const uint8_t *key, size_t keylen);

/**
 * @brief Append one label (raw bytes, lowercased while escaping) to a key.
 * @return 0, ZONE_EINVAL (empty or longer than 63), ZONE_ERANGE (key full).
 */
int zone_name_key_push(uint8_t *key, size_t *keylen, const uint8_t *label, size_t llen);

#endif
