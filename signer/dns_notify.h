/**
 * @file dns_notify.h
 * @brief NOTIFY (RFC 1996) to the configured secondaries at each new serial.
 *
 * dns_notify_send() sends every target a NOTIFY for the zone (opcode
 * NOTIFY, AA, question <origin> SOA IN, the current SOA in the answer as a
 * hint), TSIG-signed when the target has a key, over UDP from an ephemeral
 * port, and retransmits it with a doubling interval until the target
 * acknowledges it (a response with the same ID, from the target's address,
 * whose TSIG verifies when a key is used) or the tries run out. A newer
 * serial replaces a NOTIFY still being retried. Runs on the libuv loop
 * without blocking it; like a libuv handle it closes asynchronously.
 */
#ifndef REGSIGN_SIGNER_DNS_NOTIFY_H
#define REGSIGN_SIGNER_DNS_NOTIFY_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "signer/dns_err.h"
#include "signer/dns_server.h"

struct zone;
struct dns_keyring;
struct dns_notify;

struct dns_notify_opts {
	const struct zone *zone;        /**< borrowed; its SOA is read at each send */
	const struct dns_keyring *keys; /**< for targets with a key; may be NULL */
	unsigned tries;                 /**< transmissions per serial: 5 if 0 */
	uint32_t retry_ms;              /**< first retry interval, doubling: 1000 if 0 */
	dns_log_fn log;                 /**< may be NULL */
	void *log_ctx;
};

struct dns_notify_stats {
	uint64_t sent;      /**< datagrams sent (retries included) */
	uint64_t acked;     /**< NOTIFYs acknowledged */
	uint64_t failed;    /**< NOTIFYs given up (no answer, or an error rcode) */
};

/** @brief A NOTIFY sender with no targets. @return 0, DNS_EINVAL, DNS_ENOMEM. */
int dns_notify_new(uv_loop_t *loop, const struct dns_notify_opts *opts, struct dns_notify **out);

/**
 * @brief Add a secondary: "addr[:port]" / "[v6][:port]" (port 53 by
 * default), optionally signing with the TSIG key @p key (NULL: unsigned).
 * @return 0, DNS_EINVAL (bad address, or key not in the keyring), DNS_EIO
 *         (no socket), DNS_ESTATE (closing), DNS_ENOMEM.
 */
int dns_notify_add_target(struct dns_notify *n, const char *addr, const char *key);

/**
 * @brief Notify every target of the zone's current serial.
 * @return 0 (the first datagrams are on their way or were logged as
 *         failing; retries follow), DNS_EZONE (no SOA yet), DNS_ESTATE.
 */
int dns_notify_send(struct dns_notify *n);

/** @brief Read the SOA from another zone object from now on (e.g. after a reload). */
void dns_notify_set_zone(struct dns_notify *n, const struct zone *z);

/** @brief Number of targets still waiting for an acknowledgement. */
size_t dns_notify_pending(const struct dns_notify *n);

/** @brief Copy the counters. */
void dns_notify_stats_get(const struct dns_notify *n, struct dns_notify_stats *st);

/**
 * @brief Stop retrying and close the sockets; @p cb (may be NULL) runs once
 * everything is closed. Then call dns_notify_free().
 */
void dns_notify_close(struct dns_notify *n, void (*cb)(void *ctx), void *ctx);

/** @brief Free a closed sender; NULL is a no-op. */
void dns_notify_free(struct dns_notify *n);

#endif
