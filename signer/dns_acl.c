/* Peer addresses and the transfer allow-list (see dns_acl.h). */
#include "signer/dns_acl.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct dns_acl_entry {
	int family;         /* AF_INET or AF_INET6 */
	uint8_t addr[16];   /* network order; 4 bytes used for IPv4 */
	unsigned prefix;    /* bits that must match */
	char *key;          /* required TSIG key ("name."), or NULL */
};

struct dns_acl {
	struct dns_acl_entry *v;
	size_t n, cap;
};

static int parse_port(const char *s, uint16_t *port)
{
	char *end = NULL;
	unsigned long v;

	if (*s < '0' || *s > '9')
		return DNS_EINVAL;
	v = strtoul(s, &end, 10);
	if (*end != '\0' || v > 65535)
		return DNS_EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int dns_addr_parse(const char *s, uint16_t default_port, struct sockaddr_storage *out)
{
	char host[INET6_ADDRSTRLEN + 1];
	const char *colon, *port_s = NULL;
	uint16_t port = default_port;
	size_t hl;

	if (s == NULL || out == NULL)
		return DNS_EINVAL;
	memset(out, 0, sizeof(*out));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');
		if (close == NULL)
			return DNS_EINVAL;
		hl = (size_t)(close - s - 1);
		if (hl >= sizeof(host))
			return DNS_EINVAL;
		memcpy(host, s + 1, hl);
		host[hl] = '\0';
		if (close[1] == ':')
			port_s = close + 2;
		else if (close[1] != '\0')
			return DNS_EINVAL;
	} else {
		colon = strchr(s, ':');
		/* Two colons or more without brackets: a bare IPv6 address. */
		if (colon != NULL && strchr(colon + 1, ':') == NULL) {
			hl = (size_t)(colon - s);
			port_s = colon + 1;
		} else {
			hl = strlen(s);
		}
		if (hl >= sizeof(host))
			return DNS_EINVAL;
		memcpy(host, s, hl);
		host[hl] = '\0';
	}
	if (port_s != NULL && parse_port(port_s, &port) != 0)
		return DNS_EINVAL;
	if (strchr(host, ':') == NULL) {
		struct sockaddr_in *sin = (struct sockaddr_in *)out;
		if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
			return DNS_EINVAL;
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
	} else {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)out;
		if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
			return DNS_EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
	}
	return 0;
}

void dns_addr_format(const struct sockaddr *sa, char *buf, size_t len)
{
	char host[INET6_ADDRSTRLEN] = "?";
	unsigned port = 0;

	if (len == 0)
		return;
	if (sa != NULL && sa->sa_family == AF_INET) {
		const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
		inet_ntop(AF_INET, &sin->sin_addr, host, sizeof(host));
		port = ntohs(sin->sin_port);
	} else if (sa != NULL && sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *sin6 = (const struct sockaddr_in6 *)sa;
		inet_ntop(AF_INET6, &sin6->sin6_addr, host, sizeof(host));
		port = ntohs(sin6->sin6_port);
	}
	snprintf(buf, len, "%s#%u", host, port);
}

int dns_acl_new(struct dns_acl **out)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? DNS_ENOMEM : 0;
}

void dns_acl_free(struct dns_acl *acl)
{
	if (acl == NULL)
		return;
	for (size_t i = 0; i < acl->n; i++)
		free(acl->v[i].key);
	free(acl->v);
	free(acl);
}

/* Key names are compared in "name." form, lower case, so "K" and "k." match. */
static char *key_canon(const char *key)
{
	size_t l = strlen(key);
	char *k;

	if (l == 0 || l > 254)
		return NULL;
	k = malloc(l + 2);
	if (k == NULL)
		return NULL;
	for (size_t i = 0; i < l; i++)
		k[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] + 32 : key[i]);
	if (k[l - 1] != '.')
		k[l++] = '.';
	k[l] = '\0';
	return k;
}

int dns_acl_add(struct dns_acl *acl, const char *spec, const char *key)
{
	struct dns_acl_entry e = { 0 };
	char host[INET6_ADDRSTRLEN + 1];
	const char *slash;
	size_t hl;
	unsigned long bits;
	int r = DNS_EINVAL;

	if (acl == NULL || spec == NULL)
		goto out;
	slash = strchr(spec, '/');
	hl = slash ? (size_t)(slash - spec) : strlen(spec);
	if (hl == 0 || hl >= sizeof(host))
		goto out;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, e.addr) == 1) {
		e.family = AF_INET;
		e.prefix = 32;
	} else if (inet_pton(AF_INET6, host, e.addr) == 1) {
		e.family = AF_INET6;
		e.prefix = 128;
	} else {
		goto out;
	}
	if (slash != NULL) {
		char *end = NULL;
		if (slash[1] < '0' || slash[1] > '9')
			goto out;
		bits = strtoul(slash + 1, &end, 10);
		if (*end != '\0' || bits > e.prefix)
			goto out;
		e.prefix = (unsigned)bits;
	}
	if (key != NULL && (e.key = key_canon(key)) == NULL) {
		r = DNS_EINVAL;
		goto out;
	}
	if (acl->n == acl->cap) {
		size_t cap = acl->cap ? acl->cap * 2 : 8;
		struct dns_acl_entry *v = realloc(acl->v, cap * sizeof(*v));
		if (v == NULL) {
			r = DNS_ENOMEM;
			goto out;
		}
		acl->v = v;
		acl->cap = cap;
	}
	acl->v[acl->n++] = e;
	e.key = NULL;
	r = 0;
out:
	free(e.key);
	return r;
}

static bool prefix_match(const uint8_t *a, const uint8_t *b, unsigned bits)
{
	unsigned full = bits / 8, rest = bits % 8;

	if (memcmp(a, b, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a[full] & mask) == (b[full] & mask);
}

bool dns_acl_allows(const struct dns_acl *acl, const struct sockaddr *sa, const char *key)
{
	static const uint8_t v4mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	uint8_t addr[16];
	int family;

	if (acl == NULL || sa == NULL)
		return false;
	if (sa->sa_family == AF_INET) {
		family = AF_INET;
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	} else if (sa->sa_family == AF_INET6) {
		const uint8_t *a6 = ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
		if (memcmp(a6, v4mapped, 12) == 0) {
			family = AF_INET;
			memcpy(addr, a6 + 12, 4);
		} else {
			family = AF_INET6;
			memcpy(addr, a6, 16);
		}
	} else {
		return false;
	}
	for (size_t i = 0; i < acl->n; i++) {
		const struct dns_acl_entry *e = &acl->v[i];
		if (e->family != family || !prefix_match(e->addr, addr, e->prefix))
			continue;
		if (e->key == NULL)
			return true;
		if (key != NULL && strcasecmp(e->key, key) == 0)
			return true;
	}
	return false;
}
