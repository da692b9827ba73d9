/**
 * @file dns_answer.h
 * @brief What regsignd answers to one DNS message, as a stream of messages.
 *
 * This is the listener's logic without sockets: given a received message,
 * its transport and its source, it produces the response messages one by
 * one — a single message for queries and refusals, a sequence for zone
 * transfers over TCP (RRs written in wire form up to a target size, 64 KiB
 * unless set lower, owner names compressed, SOA first and last, each message
 * TSIG-signed when the request was, chained as RFC 8945 section 5.3.1 asks;
 * see dns_wire.h). The server pulls the
 * next message only when the previous one has been written, which is how
 * TCP backpressure reaches the zone walk.
 *
 * Answers (RFC 1034/1035/1995/5936/8945):
 *  - QUERY for a name in the zone: its RRset (with RRSIGs when DO is set),
 *    or NODATA / NXDOMAIN with the SOA in the authority section (TTL the
 *    negative TTL, min(SOA MINIMUM, SOA TTL)); with DO also the SOA's RRSIG
 *    and the NSEC records that prove the denial with their RRSIGs (RFC 4035
 *    section 3.1.3): NODATA the name's own NSEC, an empty non-terminal
 *    (NODATA too) the NSEC before it, NXDOMAIN the covering NSEC and the one
 *    covering the wildcard at the closest encloser, once if they are the
 *    same record. So a validating resolver may use regsignd directly. Other
 *    zones: REFUSED.
 *  - AXFR (TCP only; FORMERR over UDP) and IXFR, for the apex only
 *    (NOTAUTH otherwise), from allow-listed sources (REFUSED otherwise).
 *    IXFR falls back to AXFR when the journal does not reach the requested
 *    serial; over UDP IXFR is answered with the current SOA alone.
 *  - a TSIG that fails: NOTAUTH with the TSIG error (BADKEY, BADSIG, BADTIME),
 *    unsigned, as RFC 8945 asks.
 *  - other opcodes: NOTIMP; malformed questions: FORMERR.
 */
#ifndef REGSIGN_SIGNER_DNS_ANSWER_H
#define REGSIGN_SIGNER_DNS_ANSWER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "signer/dns_err.h"
#include "signer/dns_journal.h"

struct zone;
struct dns_acl;
struct dns_keyring;
struct dns_answer;

/** What the answers are made from; all borrowed, outliving every answer. */
struct dns_answer_env {
	const struct zone *zone;
	const struct dns_journal *journal;  /**< NULL: every IXFR gets an AXFR */
	const struct dns_acl *acl;          /**< who may transfer; NULL: nobody */
	const struct dns_keyring *keys;     /**< TSIG keys; NULL: none known */
	size_t msg_size;                    /**< transfer message size limit, OPT and
					     *   TSIG included: 65535 if 0 or more */
	size_t max_diffs;                   /**< longest IXFR chain: 10000 if 0 */
};

/** What an answer turned out to be (for the daemon's log). */
enum dns_answer_kind {
	DNS_ANSWER_QUERY = 0,   /**< an ordinary query (or its refusal) */
	DNS_ANSWER_AXFR,
	DNS_ANSWER_IXFR,
	DNS_ANSWER_REFUSED_XFR, /**< a transfer refused by the allow-list */
	DNS_ANSWER_ERROR,       /**< FORMERR, NOTIMP, NOTAUTH (TSIG) */
};

/** Facts about an answer, for logs and tests. */
struct dns_answer_info {
	enum dns_answer_kind kind;
	int rcode;              /**< of the (first) response */
	uint16_t qtype;
	char qname[256];        /**< presentation form, "" when unknown */
	uint32_t serial;        /**< transfers: the serial served */
	uint32_t ixfr_from;     /**< IXFR: the secondary's serial */
	bool fallback;          /**< IXFR answered with an AXFR */
	unsigned followed;      /**< AXFR: zone versions committed while it streamed */
	bool tsig;              /**< the request carried a valid TSIG */
	int tsig_error;         /**< enum dns_tsig_status of the request */
	size_t messages, rrs;   /**< sent so far */
};

/**
 * @brief Work out the answer to one received message.
 * @param from the source (for the allow-list)
 * @param tcp whether it came over TCP
 * @param now seconds since the epoch (TSIG time checks)
 * @param out receives the answer; pull its messages with dns_answer_next()
 * @return 0; DNS_EFORMAT when nothing may be sent back at all (shorter than
 *         a header, or a response); DNS_ENOMEM.
 */
int dns_answer_new(const struct dns_answer_env *env, const uint8_t *wire, size_t len,
		   const struct sockaddr *from, bool tcp, int64_t now, struct dns_answer **out);

/**
 * @brief The next response message in wire form (without the TCP length
 * prefix), malloc'd for the caller; *msg is NULL once all were produced.
 * Over UDP a response larger than the client accepts (512, or its EDNS
 * size up to 1232) is replaced by an empty one with TC set.
 * @return 0, DNS_ECHANGED (the zone changed under an AXFR: close the
 *         connection), DNS_EZONE, DNS_ELDNS, DNS_ERANGE, DNS_ENOMEM.
 */
int dns_answer_next(struct dns_answer *a, uint8_t **msg, size_t *len);

/** @brief Facts about the answer so far. */
const struct dns_answer_info *dns_answer_info(const struct dns_answer *a);

/** @brief Free an answer; NULL is a no-op. */
void dns_answer_free(struct dns_answer *a);

#endif
