/**
 * @file zone_text.h
 * @brief Presentation form of the zone's own RRs, for the zone file.
 *
 * ldns formats every byte of an RR through printf: about 48 µs per device
 * name, so a zone file of 1,000,000 devices took most of a minute on the
 * zone thread. The zone holds few RR types, each with a plain layout, so
 * they are formatted here directly, byte for byte as ldns 1.8 formats them
 * (ldns_rr2str with no comments: the unit test holds the two side by side).
 * Any other type, or RDATA that does not have the expected layout, is left
 * to ldns by the caller (ZONE_TEXT_OTHER).
 */
#ifndef REGSIGN_ZONE_TEXT_H
#define REGSIGN_ZONE_TEXT_H

#include <stddef.h>
#include <stdint.h>

/** Room for the longest line this module writes (a 64 KiB RDATA in base64 and more). */
#define ZONE_TEXT_MAX (96 * 1024)

/** The RR is not one this module formats: format it with ldns. */
#define ZONE_TEXT_OTHER 1

/**
 * @brief Format one RR (class IN) as one presentation line ending in "\n".
 * @param owner wire-form owner name (uncompressed, lowercase or not)
 * @param now the time RRSIG times are read against (RFC 4034 3.2: serial
 *        arithmetic, as ldns does), seconds since the epoch
 * @param out at least ZONE_TEXT_MAX bytes; *len receives the line's length
 *        (no NUL is written)
 * @return 0, ZONE_TEXT_OTHER (nothing written), or a negative ZONE_E* error
 *         (ZONE_EFORMAT for a malformed owner name).
 */
int zone_text_rr(const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
		 const uint8_t *rdata, size_t rdlen, int64_t now, char *out, size_t *len);

#endif
