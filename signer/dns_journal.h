/**
 * @file dns_journal.h
 * @brief The IXFR journal as the DNS listener reads it: a callback table.
 *
 * The journal is the list of zone versions' diffs (zone_change.h: from
 * serial, to serial, removed RRs, added RRs). The daemon keeps it in its
 * SQLite store (zone_diff_to_wire() blobs keyed by their from-serial); tests
 * use the in-memory journal below. The listener asks only one question:
 * "which diff starts at serial S?", and follows the chain from a secondary's
 * serial to the current one. A journal may forget old diffs at any time
 * (the listener then falls back to AXFR), and must be reset whenever a
 * version has no diff (bulk import, reload from scratch), otherwise a chain
 * would skip that version.
 */
#ifndef REGSIGN_SIGNER_DNS_JOURNAL_H
#define REGSIGN_SIGNER_DNS_JOURNAL_H

#include <stddef.h>
#include <stdint.h>

#include "signer/dns_err.h"

struct zone_diff;

/** How the listener reads a journal. */
struct dns_journal {
	/**
	 * Give the diff whose from-serial is @p from, as a new object the caller
	 * frees with zone_diff_free(). Return 0, DNS_ENOENT when the journal
	 * holds no such diff, or another negative DNS_E* error.
	 */
	int (*diff_from)(void *ctx, uint32_t from, struct zone_diff **out);
	void *ctx;
};

/**
 * @brief Fetch the chain of diffs that leads from serial @p from to serial
 * @p to (newer, RFC 1982), checking that each is one IXFR step: it starts
 * where the previous one ended, moves forward, its lists begin with the old
 * and the new SOA.
 * @param max longest chain accepted (0: 10000)
 * @param diffs receives a malloc'd array of @p n diffs: free each with
 *        zone_diff_free(), then the array with free(). Empty when from == to.
 * @return 0, DNS_ENOENT (no journal, or a link is missing), DNS_ERANGE
 *         (longer than @p max), DNS_EFORMAT (a diff is not a valid step),
 *         DNS_ENOMEM, or the journal's own error.
 */
int dns_journal_chain(const struct dns_journal *j, uint32_t from, uint32_t to, size_t max,
		      struct zone_diff ***diffs, size_t *n);

/** An in-memory journal (tests, and a daemon without a store). */
struct dns_journal_mem;

/**
 * @brief A journal keeping the last @p max_diffs diffs (0: 1000).
 * @return 0 or DNS_ENOMEM.
 */
int dns_journal_mem_new(size_t max_diffs, struct dns_journal_mem **out);

/** @brief Free the journal; NULL is a no-op. */
void dns_journal_mem_free(struct dns_journal_mem *j);

/**
 * @brief Append the diff of a new version (copied in its wire form; the
 * caller keeps @p d). Its from-serial must be the to-serial of the last
 * diff, or the journal is reset first (a gap: older diffs are useless).
 * @return 0, DNS_ENOMEM, DNS_EFORMAT (the diff cannot be serialised).
 */
int dns_journal_mem_add(struct dns_journal_mem *j, const struct zone_diff *d);

/** @brief Forget every diff (after a version that has none). */
void dns_journal_mem_reset(struct dns_journal_mem *j);

/** @brief Number of diffs held. */
size_t dns_journal_mem_count(const struct dns_journal_mem *j);

/** @brief The callback table reading @p j (valid while @p j lives). */
struct dns_journal dns_journal_mem_ops(struct dns_journal_mem *j);

#endif
