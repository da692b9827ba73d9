/**
 * @file dns_xfr.h
 * @brief Zone transfers as streams of RRs (RFC 5936 AXFR, RFC 1995 IXFR).
 *
 * A transfer is produced one message at a time (dns_xfr_fill) so that the
 * listener sends the next only when the socket took the previous: a large
 * zone never sits in memory twice and never blocks the event loop.
 *
 * AXFR walks the live zone by its NSEC chain (SOA, every RR of the apex and
 * of each name in canonical order with their RRSIGs and NSECs, SOA again).
 * As long as the zone is the version being sent, the walk reads the nodes'
 * wire data in place (zone_wire_iter, zone.h) and copies each RR into the
 * message: no ldns object and no text per RR, which is what made a
 * million-device AXFR take a minute. A zone has no snapshots: if commits
 * move it on while an AXFR is streaming, the rest of the walk reads the new
 * version and turns each name back into the version being sent with the net
 * difference from the journal (dns_netdiff.h), following the old NSEC
 * chain (through ldns, one name at a time, from the NSEC next name of the
 * last name sent). Only when the journal lacks the diffs does it report
 * DNS_ECHANGED; the listener then drops the connection and the secondary
 * retries. So a large AXFR completes however often the zone changes.
 *
 * IXFR takes its whole chain of diffs from the journal when it starts, so it
 * is consistent whatever the zone does meanwhile.
 */
#ifndef REGSIGN_SIGNER_DNS_XFR_H
#define REGSIGN_SIGNER_DNS_XFR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signer/dns_err.h"
#include "signer/dns_journal.h"
#include "zonesigner/zone_ldns.h"

struct zone;
struct dns_xfr;
struct dns_wire_msg;

/**
 * @brief The apex SOA of the zone and its RRSIGs.
 * @param soa receives a new RR (free with ldns_rr_free)
 * @param sigs receives a new list of the SOA's RRSIGs (may be empty; free
 *        with ldns_rr_list_deep_free), or pass NULL
 * @return 0, DNS_EZONE (no SOA yet or the zone library failed), DNS_ENOMEM.
 */
int dns_zone_soa(const struct zone *z, ldns_rr **soa, ldns_rr_list **sigs);

/**
 * @brief All RRs at owner @p name (RRSIGs and NSEC included), as a new list
 * the caller frees with ldns_rr_list_deep_free(); empty if the name has none.
 * @return 0, DNS_EZONE (not in the zone), DNS_ENOMEM.
 */
int dns_zone_rrs(const struct zone *z, const ldns_rdf *name, ldns_rr_list **out);

/**
 * @brief Start an AXFR of @p z (which must outlive the stream), with the
 * journal @p j (may be NULL) to stay consistent if the zone changes.
 * @return 0, DNS_EZONE, DNS_ENOMEM.
 */
int dns_xfr_axfr_new(const struct zone *z, const struct dns_journal *j, struct dns_xfr **out);

/**
 * @brief Start an IXFR from serial @p from to the zone's current serial.
 * When @p from is the current serial or newer (RFC 1982) the stream is the
 * current SOA alone (the secondary is up to date).
 * @param max_diffs longest chain of diffs accepted (0: 10000); a longer one
 *        is DNS_ERANGE, like a missing diff: answer with an AXFR then.
 * @return 0, DNS_ENOENT (the journal does not reach @p from, or is absent),
 *         DNS_ERANGE, DNS_EFORMAT (a diff is not a valid step), DNS_EZONE,
 *         DNS_ENOMEM, or the journal's error.
 */
int dns_xfr_ixfr_new(const struct zone *z, const struct dns_journal *j, uint32_t from,
		     size_t max_diffs, struct dns_xfr **out);

/**
 * @brief Add the next RRs of the transfer to the answer section of @p m
 * until the next one does not fit (it comes first in the next message) or
 * the transfer ends (*@p end set). This is how the listener produces a
 * transfer: an AXFR of the version being sent reads the zone's nodes in
 * wire form (zone_wire_iter, zone.h) and copies their RRs into the message,
 * with no ldns object per RR; once the zone moved on it reverts each name
 * through ldns as described above. Between two calls the zone may change
 * (the listener goes back to its loop): nothing is kept that points into it.
 * @return 0, DNS_ERANGE (the next RR is larger than an empty message can
 *         hold; the stream stays at that RR, so a call with a larger message
 *         goes on from it), DNS_ECHANGED, DNS_EZONE, DNS_ENOMEM. Do not mix with dns_xfr_next()
 *         on one stream.
 */
int dns_xfr_fill(struct dns_xfr *x, struct dns_wire_msg *m, bool *end);

/**
 * @brief The next RR as an ldns object, borrowed until the next call; NULL
 * at the end. The same stream as dns_xfr_fill() gives, one ldns_rr at a
 * time, built through zone_name_rrs(): the reference the tests hold the
 * wire path to, and a form for tools.
 * @return 0, DNS_ECHANGED (AXFR only: the zone changed and the journal
 *         cannot bridge it; abandon the transfer), DNS_EZONE, DNS_ENOMEM.
 */
int dns_xfr_next(struct dns_xfr *x, const ldns_rr **rr);

/** @brief True for an incremental transfer (also when it is a single SOA). */
bool dns_xfr_is_ixfr(const struct dns_xfr *x);

/** @brief The serial the transfer brings the secondary to. */
uint32_t dns_xfr_serial(const struct dns_xfr *x);

/** @brief RRs produced so far. */
size_t dns_xfr_count(const struct dns_xfr *x);

/** @brief AXFR: how many times the zone moved on while it streamed. */
unsigned dns_xfr_followed(const struct dns_xfr *x);

/** @brief Free a stream; NULL is a no-op. */
void dns_xfr_free(struct dns_xfr *x);

#endif
