/**
 * @file dns_netdiff.h
 * @brief The net difference between two versions of the zone, used to keep
 * an AXFR consistent while the zone moves on under it.
 *
 * An AXFR of version S streams the live zone name by name. When commits
 * take the zone to S' half way, the names still to come are read from S'
 * and turned back into their S form: the RRs added since S are dropped and
 * the RRs removed since S are put back. Following the S-version NSEC
 * records, the walk also visits names that S' no longer has. The net
 * difference is composed from the journal's chain S -> ... -> S' (an RR
 * added then removed again cancels out).
 */
#ifndef REGSIGN_SIGNER_DNS_NETDIFF_H
#define REGSIGN_SIGNER_DNS_NETDIFF_H

#include <stddef.h>
#include <stdint.h>

#include "signer/dns_err.h"
#include "signer/dns_journal.h"
#include "zonesigner/zone_ldns.h"

struct dns_netdiff;

/**
 * @brief Compose the net difference from version @p from to version @p to.
 * @param max_rrs refuse (DNS_ERANGE) chains carrying more RRs than this
 *        (0: 1000000)
 * @return 0, DNS_ENOENT (the journal does not hold the chain), DNS_ERANGE,
 *         DNS_EFORMAT, DNS_ENOMEM.
 */
int dns_netdiff_new(const struct dns_journal *j, uint32_t from, uint32_t to, size_t max_rrs,
		    struct dns_netdiff **out);

/** @brief The newer version of the two. */
uint32_t dns_netdiff_to(const struct dns_netdiff *nd);

/**
 * @brief Turn @p rrs, every RR of owner @p owner at the newer version, into
 * the RRs of that owner at the older version (in place; RRs put back are
 * copies).
 * @return 0 or DNS_ENOMEM.
 */
int dns_netdiff_revert(const struct dns_netdiff *nd, const ldns_rdf *owner, ldns_rr_list *rrs);

/** @brief Free; NULL is a no-op. */
void dns_netdiff_free(struct dns_netdiff *nd);

#endif
