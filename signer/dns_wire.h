/**
 * @file dns_wire.h
 * @brief DNS response messages written in wire form, for zone transfers.
 *
 * A transfer of a large zone is thousands of messages of up to 64 KiB, each
 * holding about a thousand RRs. Building them as ldns packets (an ldns_rr
 * per RR, then ldns_pkt2wire) cost most of an AXFR's time; this module
 * writes the header, the question and the RRs straight into the message
 * buffer instead, with owner names compressed against the previous owner
 * (so at least the zone's origin is always a pointer, RFC 1035 section
 * 4.1.4), and appends the EDNS OPT RR and a TSIG RR (RFC 8945) at the end.
 * RDATA is copied as given, never compressed (RRSIG and NSEC must not be).
 *
 * The TSIG signer covers a multi-message answer: the first message's MAC
 * covers the request's MAC and every TSIG variable, each later one the
 * prior MAC and the timers only (RFC 8945 section 5.3.1). It is the one
 * place regsignd computes a TSIG MAC: dns_tsig_signer_sign() (dns_tsig.h)
 * signs ldns packets through it; the key comes from the same keyring. ldns
 * has no call that signs a message already in wire form, hence the HMAC
 * here (OpenSSL EVP_MAC).
 */
#ifndef REGSIGN_SIGNER_DNS_WIRE_H
#define REGSIGN_SIGNER_DNS_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signer/dns_err.h"

struct dns_tsig_key;

/** Largest DNS message over TCP (the two-byte length prefix). */
#define DNS_WIRE_MAX 65535
/** Bytes of the EDNS OPT RR this module writes (no options). */
#define DNS_WIRE_OPT_LEN 11
/** Names of up to 127 labels (255 bytes) are tracked for compression. */
#define DNS_WIRE_LABELS 128

/**
 * A message being written. Fill in with dns_wire_msg_init(); the buffer is
 * owned by the message until dns_wire_msg_take() hands it over.
 */
struct dns_wire_msg {
	uint8_t *buf;          /**< DNS_WIRE_MAX bytes */
	size_t len;            /**< bytes written */
	size_t limit;          /**< RRs are refused beyond this length */
	uint16_t qd, an, ar;   /**< section counts so far */
	/* The last owner written: its labels and, for each suffix, where the
	 * message holds that name (0 when no pointer can reach it). */
	uint8_t prev[255];
	size_t prevlen;
	int prev_nl;
	uint8_t prev_lab[DNS_WIRE_LABELS];
	uint16_t prev_off[DNS_WIRE_LABELS];
};

/**
 * @brief Start a response: a header with @p id and the flags of @p flags
 * (the two flag bytes, QR/opcode/AA/TC/RD then RA/Z/AD/CD/RCODE), no RR.
 * @param limit bytes the question and the answer RRs may fill (at most
 *        DNS_WIRE_MAX; keep room for what dns_wire_msg_add_opt() and the
 *        TSIG signer append)
 * @return 0, DNS_EINVAL (limit below a header), DNS_ENOMEM.
 */
int dns_wire_msg_init(struct dns_wire_msg *m, uint16_t id, uint16_t flags, size_t limit);

/** @brief Free the buffer (if still owned); the message may be inited again. */
void dns_wire_msg_clear(struct dns_wire_msg *m);

/**
 * @brief Append the question (before any RR): @p qname as received (wire,
 * uncompressed), type and class. Owners equal to it byte for byte are then
 * compressed against it.
 * @return 0, DNS_EINVAL (malformed name, RRs already written), DNS_ERANGE.
 */
int dns_wire_msg_question(struct dns_wire_msg *m, const uint8_t *qname, size_t qlen,
			  uint16_t qtype, uint16_t qclass);

/**
 * @brief Append one answer RR: @p owner (uncompressed wire) is compressed,
 * @p rdata copied as it is.
 * @return 0; DNS_ERANGE when it would take the message past its limit (the
 *         message is unchanged); DNS_EINVAL (malformed owner, RDATA over
 *         65535 bytes, an OPT already written).
 */
int dns_wire_msg_add_rr(struct dns_wire_msg *m, const uint8_t *owner, size_t ownerlen,
			uint16_t type, uint16_t rclass, uint32_t ttl, const uint8_t *rdata,
			size_t rdlen);

/**
 * @brief Append the EDNS OPT RR (RFC 6891) with UDP size @p udp and the DO
 * bit: DNS_WIRE_OPT_LEN bytes, allowed past the limit up to DNS_WIRE_MAX.
 * @return 0, DNS_ERANGE.
 */
int dns_wire_msg_add_opt(struct dns_wire_msg *m, uint16_t udp, bool do_bit);

/**
 * @brief The finished message (counts written into the header); the caller
 * owns *@p buf (malloc'd) and the message no longer does.
 */
void dns_wire_msg_take(struct dns_wire_msg *m, uint8_t **buf, size_t *len);

/* ---- TSIG over messages in wire form ---- */

struct dns_wire_tsig;

/**
 * @brief A signer for the messages of one answer with @p key (borrowed, it
 * must outlive the signer), chained from the request's MAC @p req_mac
 * (@p req_maclen bytes, without its length field).
 * @return 0, DNS_EINVAL (bad key, secret or algorithm), DNS_ENOMEM.
 */
int dns_wire_tsig_new(const struct dns_tsig_key *key, const uint8_t *req_mac,
		      size_t req_maclen, struct dns_wire_tsig **out);

/** @brief Bytes the TSIG RR adds to each message. */
size_t dns_wire_tsig_len(const struct dns_wire_tsig *t);

/**
 * @brief Sign the finished message @p msg (@p *len bytes, buffer of @p cap):
 * appends the TSIG RR signed at time @p now and counts it in ARCOUNT.
 * @return 0, DNS_ERANGE (no room), DNS_EFORMAT (not a message), DNS_ENOMEM.
 */
int dns_wire_tsig_sign(struct dns_wire_tsig *t, uint8_t *msg, size_t *len, size_t cap,
		       int64_t now);

/** @brief Free a signer (its copy of the secret is wiped); NULL is a no-op. */
void dns_wire_tsig_free(struct dns_wire_tsig *t);

#endif
