/**
 * @file zone_time.h
 * @brief RFC 1982 serial arithmetic on 32-bit values (SOA serials and RRSIG
 * times), and the signature lifetimes of the zone.
 *
 * RRSIG inception and expiration are 32-bit seconds modulo 2^32 (RFC 4034
 * section 3.1.5), so they are compared with serial arithmetic relative to a
 * 64-bit "now": this keeps working past 2038 and 2106.
 */
#ifndef REGSIGN_ZONE_TIME_H
#define REGSIGN_ZONE_TIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** @brief a < b in RFC 1982 serial arithmetic (undefined distance 2^31 counts as not less). */
static inline bool zone_serial_lt(uint32_t a, uint32_t b)
{
	return a != b && (int32_t)(a - b) < 0 && (uint32_t)(b - a) != 0x80000000u;
}

/** @brief a <= b in serial arithmetic. */
static inline bool zone_serial_le(uint32_t a, uint32_t b)
{
	return a == b || zone_serial_lt(a, b);
}

/** @brief The 32-bit form of a 64-bit time (seconds since the epoch). */
static inline uint32_t zone_time32(int64_t t)
{
	return (uint32_t)(uint64_t)t;
}

/**
 * @brief The 64-bit time nearest to @p now whose low 32 bits are @p t32: the
 * absolute time a serial-arithmetic timestamp stands for.
 */
static inline int64_t zone_time64(uint32_t t32, int64_t now)
{
	return now + (int64_t)(int32_t)(t32 - zone_time32(now));
}

/**
 * @brief The next SOA serial after @p old (RFC 1982 increment). With
 * @p unixtime, the serial is now's 32-bit value when that is greater than
 * @p old in serial arithmetic, else old + 1. Zero is skipped because some
 * tools treat serial 0 as "unset".
 */
uint32_t zone_serial_next(uint32_t old, bool unixtime, int64_t now);

/**
 * @brief Deterministic jitter in [0, span) for a name key and RR type, so
 * that RRsets signed together come due for re-signing spread over time.
 */
uint32_t zone_time_jitter(const uint8_t *key, size_t keylen, uint16_t type, uint32_t span);

#endif
