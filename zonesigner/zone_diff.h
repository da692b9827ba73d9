/**
 * @file zone_diff.h
 * @brief Building IXFR diffs (internal; the public accessors are in zone_change.h).
 */
#ifndef REGSIGN_ZONE_DIFF_H
#define REGSIGN_ZONE_DIFF_H

#include <stddef.h>
#include <stdint.h>

#include "zonesigner/zone_ldns.h"

struct zone_diff {
	uint32_t from, to;
	ldns_rr_list *removed, *added;
	size_t nsigs;
	uint8_t **keys;
	size_t *keylens;
	size_t nkeys;
};

/** New empty diff; 0 or ZONE_ENOMEM. */
int zone_diff_new(uint32_t from, uint32_t to, struct zone_diff **out);
/** Record a name whose stored row changed. */
int zone_diff_add_name(struct zone_diff *d, const uint8_t *key, size_t keylen);
/** Add the RRs of @p old missing from @p new as removed, and the reverse as added. */
int zone_diff_add_rrs(struct zone_diff *d, ldns_rr_list *old, ldns_rr_list *new);

#endif
