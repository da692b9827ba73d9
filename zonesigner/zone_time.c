/* Serial arithmetic helpers that are not inline (see zone_time.h). */
#include "zonesigner/zone_time.h"

uint32_t zone_serial_next(uint32_t old, bool unixtime, int64_t now)
{
	uint32_t s = old + 1;

	if (unixtime && zone_serial_lt(old, zone_time32(now)))
		s = zone_time32(now);
	if (s == 0)
		s = 1;
	return s;
}

uint32_t zone_time_jitter(const uint8_t *key, size_t keylen, uint16_t type, uint32_t span)
{
	/* FNV-1a: the jitter only spreads load, it protects nothing, so a fast
	 * non-cryptographic hash is enough. */
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < keylen; i++)
		h = (h ^ key[i]) * 0x100000001b3ull;
	h = (h ^ (uint8_t)(type >> 8)) * 0x100000001b3ull;
	h = (h ^ (uint8_t)type) * 0x100000001b3ull;
	return span ? (uint32_t)(h % span) : 0;
}
