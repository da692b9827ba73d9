/**
 * @file dns_tsig.h
 * @brief TSIG keys (RFC 8945) for transfers and NOTIFY, on top of ldns.
 *
 * ldns checks the MACs of received messages (ldns_pkt_tsig_verify_next);
 * this module adds what ldns leaves out: a keyring with checked secrets, the
 * algorithm in a packet must be the key's (ldns would take the packet's word
 * for it), the time window, and error RRs for refusals. The MACs of the
 * messages we send are computed in one place, the wire-form signer of
 * dns_wire.h: an ldns packet is signed by turning it into wire form and
 * reading the TSIG RR back, a transfer's wire-form messages directly; both
 * chain the MACs of one answer the same way (each later message covers the
 * prior MAC and the TSIG timers only).
 *
 * Only hmac-sha256 and hmac-sha512 are accepted: ldns 1.8.3 has no working
 * hmac-sha384 (its name table misspells it) and MD5/SHA-1 are obsolete.
 */
#ifndef REGSIGN_SIGNER_DNS_TSIG_H
#define REGSIGN_SIGNER_DNS_TSIG_H

#include <stddef.h>
#include <stdint.h>

#include "signer/dns_err.h"
#include "zonesigner/zone_ldns.h"

/** TSIG error codes (RFC 8945 section 5.2) as carried in the TSIG RR. */
enum dns_tsig_status {
	DNS_TSIG_UNSIGNED = -1,  /**< no TSIG in the message */
	DNS_TSIG_OK = 0,
	DNS_TSIG_BADSIG = 16,
	DNS_TSIG_BADKEY = 17,
	DNS_TSIG_BADTIME = 18,
};

/** One shared key. All strings are owned by the keyring. */
struct dns_tsig_key {
	char *name;    /**< lower case, absolute ("xfr-key.") */
	char *alg;     /**< "hmac-sha256." or "hmac-sha512." */
	char *secret;  /**< base64, as ldns wants it */
	uint16_t fudge; /**< seconds of clock skew accepted and announced: 300 */
};

struct dns_keyring;
struct dns_tsig_signer;
struct dns_wire_tsig;

/** @brief An empty keyring. @return 0 or DNS_ENOMEM. */
int dns_keyring_new(struct dns_keyring **out);

/** @brief Free a keyring (and its keys); NULL is a no-op. */
void dns_keyring_free(struct dns_keyring *kr);

/**
 * @brief Add a key. @p alg is "hmac-sha256" or "hmac-sha512" (final dot
 * optional); @p secret is base64 of at least 16 bytes.
 * @return 0, DNS_EINVAL (bad name, algorithm or secret; name already
 *         present), DNS_ENOMEM.
 */
int dns_keyring_add(struct dns_keyring *kr, const char *name, const char *alg,
		    const char *secret);

/**
 * @brief Add a key written as "alg:name:secret" (the form of kdig -y).
 * @return as dns_keyring_add().
 */
int dns_keyring_add_spec(struct dns_keyring *kr, const char *spec);

/** @brief Find a key by name (any case, final dot optional); NULL if absent. */
const struct dns_tsig_key *dns_keyring_find(const struct dns_keyring *kr, const char *name);

/**
 * @brief Check the TSIG of a received message.
 * @param kr keys to look the message's key up in (NULL: none known)
 * @param p the parsed message (ldns keeps its TSIG RR apart)
 * @param wire the message as received (the MAC covers these bytes)
 * @param prior_mac MAC of the request when @p p is a response, else NULL
 * @param key receives the key on DNS_TSIG_OK (and on BADSIG/BADTIME)
 * @param mac receives a copy of the message's MAC on DNS_TSIG_OK (the
 *        caller frees it with ldns_rdf_deep_free); may be NULL
 * @return the status; never fails otherwise (an allocation failure is
 *         reported as DNS_TSIG_BADSIG, which refuses the request).
 */
enum dns_tsig_status dns_tsig_verify(const struct dns_keyring *kr, ldns_pkt *p,
				     const uint8_t *wire, size_t len, const ldns_rdf *prior_mac,
				     int64_t now, const struct dns_tsig_key **key, ldns_rdf **mac);

/**
 * @brief Attach an unsigned TSIG RR reporting @p status (BADKEY, BADSIG,
 * BADTIME) to the error response @p resp to request @p req, as RFC 8945
 * section 5.3.2 asks: the key name, algorithm and times of the request,
 * an empty MAC.
 * @return 0, DNS_EINVAL (req has no TSIG), DNS_ENOMEM.
 */
int dns_tsig_error_rr(ldns_pkt *resp, const ldns_pkt *req, enum dns_tsig_status status);

/**
 * @brief A signer for one message or one multi-message answer: the first
 * message covers @p request_mac (NULL when signing a request) and every TSIG
 * variable; each later one the prior MAC and the timers only.
 * @return 0, DNS_EINVAL (no key, or a request MAC longer than 64 bytes),
 *         DNS_ENOMEM.
 */
int dns_tsig_signer_new(const struct dns_tsig_key *key, const ldns_rdf *request_mac,
			struct dns_tsig_signer **out);

/** @brief Free a signer; NULL is a no-op. */
void dns_tsig_signer_free(struct dns_tsig_signer *s);

/**
 * @brief Sign @p p (which must not carry a TSIG RR yet) at the current
 * time; the RR is set on it and goes out with ldns_pkt2wire().
 * @return 0, DNS_EINVAL (a TSIG RR already), DNS_ELDNS, DNS_ERANGE (the
 *         message and its TSIG RR would exceed 65535 bytes), DNS_ENOMEM.
 */
int dns_tsig_signer_sign(struct dns_tsig_signer *s, ldns_pkt *p);

/**
 * @brief The MAC of the last message signed by dns_tsig_signer_sign() (NULL
 * before any); borrowed.
 */
const ldns_rdf *dns_tsig_signer_mac(const struct dns_tsig_signer *s);

/**
 * @brief The wire-form signer behind @p s (borrowed, freed with it), for an
 * answer whose messages are written in wire form (dns_wire.h): messages
 * signed through it continue the same chain.
 */
struct dns_wire_tsig *dns_tsig_signer_wire(struct dns_tsig_signer *s);

#endif
