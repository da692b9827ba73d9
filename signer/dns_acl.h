/**
 * @file dns_acl.h
 * @brief Addresses of DNS peers and the allow-list of secondaries.
 *
 * regsignd is a hidden primary: only listed secondaries may transfer the
 * zone. An entry is an address with an optional prefix length
 * ("192.0.2.0/24", "::1"), optionally bound to a TSIG key name: such an
 * entry matches only requests whose TSIG was verified with that key. IPv4
 * peers that reach an IPv6 socket (::ffff:a.b.c.d) are matched as IPv4.
 */
#ifndef REGSIGN_SIGNER_DNS_ACL_H
#define REGSIGN_SIGNER_DNS_ACL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "signer/dns_err.h"

struct dns_acl;

/**
 * @brief Parse "a.b.c.d:port", "[v6]:port", or a bare address (then
 * @p default_port). Port 0 is allowed (ephemeral, for listeners).
 * @return 0 or DNS_EINVAL.
 */
int dns_addr_parse(const char *s, uint16_t default_port, struct sockaddr_storage *out);

/**
 * @brief Format an address as "a.b.c.d#port" or "v6#port" for logs.
 * Always NUL-terminates @p buf (truncating if needed).
 */
void dns_addr_format(const struct sockaddr *sa, char *buf, size_t len);

/** @brief An empty allow-list (allows nothing). @return 0 or DNS_ENOMEM. */
int dns_acl_new(struct dns_acl **out);

/** @brief Free an allow-list; NULL is a no-op. */
void dns_acl_free(struct dns_acl *acl);

/**
 * @brief Add an entry "address[/prefix]", optionally requiring the TSIG key
 * @p key (absolute or relative name, compared case-insensitively; NULL for
 * none: then any verified key or none is accepted from that address).
 * @return 0, DNS_EINVAL (bad address or prefix), DNS_ENOMEM.
 */
int dns_acl_add(struct dns_acl *acl, const char *spec, const char *key);

/**
 * @brief May @p sa transfer the zone? @p key is the name of the TSIG key the
 * request was verified with ("name." form), or NULL if it was unsigned.
 * A NULL @p acl allows nothing.
 */
bool dns_acl_allows(const struct dns_acl *acl, const struct sockaddr *sa, const char *key);

#endif
