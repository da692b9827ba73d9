/**
 * @file dns_server.h
 * @brief regsignd's DNS listener on the front process's libuv loop.
 *
 * Listens on UDP and TCP at the configured addresses and answers with
 * dns_answer.h: SOA and other queries for the zone, AXFR and IXFR to
 * allow-listed secondaries (optionally with TSIG). Everything runs on the
 * loop and nothing blocks it: a TCP transfer is produced one message
 * (up to 64 KiB) at a time, the next only after the previous one was written, and
 * a connection reads no further query while it is answering one. Limits:
 * at most @c max_tcp connections (others are closed at once), an idle or
 * stalled connection is closed after @c tcp_idle_ms.
 *
 * Memory: the caller owns the loop and everything in @c env; the server
 * owns its handles. Like libuv handles, a server is closed asynchronously
 * (dns_server_close) and freed after its close callback.
 *
 * Wiring in regsignd (front process): each config dns.listen address goes to
 * dns_server_listen(), each dns.allow_transfer entry to dns_acl_add(), each
 * dns.notify address to dns_notify_add_target() (dns_notify.h); the journal
 * is a struct dns_journal whose diff_from() reads the store's journal row of
 * that from-serial and parses it with zone_diff_from_wire(). After each
 * commit: journal its diff (zone_diff_to_wire()), reply, dns_notify_send().
 * After a version without a diff (bulk import), empty the journal first.
 */
#ifndef REGSIGN_SIGNER_DNS_SERVER_H
#define REGSIGN_SIGNER_DNS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <uv.h>

#include "signer/dns_answer.h"
#include "signer/dns_err.h"

/** Levels of the events the DNS modules report. */
enum dns_log_level {
	DNS_LOG_DEBUG = 0,
	DNS_LOG_INFO,
	DNS_LOG_NOTICE,
	DNS_LOG_WARNING,
	DNS_LOG_ERROR,
};

/** A log sink: one line without newline, valid during the call only. */
typedef void (*dns_log_fn)(void *ctx, enum dns_log_level level, const char *msg);

struct dns_server_opts {
	struct dns_answer_env env;  /**< zone, journal, allow-list, keys, sizes */
	size_t max_tcp;             /**< concurrent TCP connections: 64 if 0 */
	uint32_t tcp_idle_ms;       /**< idle/stall timeout: 10000 if 0 */
	dns_log_fn log;             /**< may be NULL */
	void *log_ctx;
};

/** Counters since the server started. */
struct dns_server_stats {
	uint64_t udp_msgs, tcp_msgs;   /**< messages received */
	uint64_t tcp_out;              /**< messages written over TCP */
	uint64_t axfr, ixfr;           /**< transfers completed */
	uint64_t ixfr_fallback;        /**< IXFRs answered with an AXFR */
	uint64_t refused_xfr;          /**< transfers refused by the allow-list */
	uint64_t tsig_failures;        /**< requests with a TSIG that failed */
	uint64_t aborted;              /**< connections closed mid-answer */
	uint64_t tcp_rejected;         /**< connections over max_tcp */
};

struct dns_server;

/**
 * @brief A server on @p loop with no listening sockets yet.
 * @return 0, DNS_EINVAL (no zone), DNS_ENOMEM.
 */
int dns_server_new(uv_loop_t *loop, const struct dns_server_opts *opts, struct dns_server **out);

/**
 * @brief Listen on UDP and TCP at @p addr ("127.0.0.1:53", "[::1]:53").
 * Port 0 picks a free port, the same for both transports (see
 * dns_server_addr()).
 * @return 0, DNS_EINVAL (bad address), DNS_EIO (bind/listen failed),
 *         DNS_ESTATE (closing), DNS_ENOMEM.
 */
int dns_server_listen(struct dns_server *s, const char *addr);

/** @brief Number of addresses listened on. */
size_t dns_server_naddrs(const struct dns_server *s);

/** @brief The i-th bound address (with its actual port). @return 0 or DNS_EINVAL. */
int dns_server_addr(const struct dns_server *s, size_t i, struct sockaddr_storage *out);

/**
 * @brief Serve another zone object from now on (e.g. after a reload).
 * Connections in the middle of an answer from the old zone are closed.
 */
void dns_server_set_zone(struct dns_server *s, const struct zone *z);

/** @brief Copy the counters. */
void dns_server_stats_get(const struct dns_server *s, struct dns_server_stats *st);

/**
 * @brief Stop listening and close every connection; @p cb (may be NULL)
 * runs on the loop once every handle is closed. Then call dns_server_free().
 */
void dns_server_close(struct dns_server *s, void (*cb)(void *ctx), void *ctx);

/** @brief Free a closed server (after the close callback); NULL is a no-op. */
void dns_server_free(struct dns_server *s);

#endif
