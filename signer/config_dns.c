/*
 * config: the dns section of regsignd.yaml (listener, NOTIFY targets, transfer ACL,
 * TSIG keys, name servers); see config.c for the rest.
 */
#include "signer/config.h"

#include <arpa/inet.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/yconf.h"
#include "signer/config_int.h"

/*
 * Checks an address: "a.b.c.d", "v6", or with want_port "a.b.c.d:port" / "[v6]:port"
 * (port optional when port_optional), or with want_prefix "addr/len".
 */
static int addr_valid(const char *s, int want_port, int port_optional, int want_prefix,
                      int port_zero)
{
	char host[64];
	const char *port = NULL, *end;
	unsigned char bin[16];
	size_t hl;
	int v6;

	if (s[0] == '[' && want_port) {
		end = strchr(s, ']');
		if (end == NULL || end[1] != ':')
			return 0;
		hl = (size_t)(end - s - 1);
		s++;
		port = end + 2;
	} else {
		end = want_port ? strrchr(s, ':') : (want_prefix ? strchr(s, '/') : NULL);
		/* A bare IPv6 address has several colons: it is not host:port. */
		if (want_port && end != NULL && strchr(s, ':') != end)
			end = NULL;
		hl = end ? (size_t)(end - s) : strlen(s);
		if (end != NULL)
			port = end + 1;
	}
	if (hl == 0 || hl >= sizeof(host))
		return 0;
	memcpy(host, s, hl);
	host[hl] = '\0';
	v6 = strchr(host, ':') != NULL;
	if (inet_pton(v6 ? AF_INET6 : AF_INET, host, bin) != 1)
		return 0;
	if (port == NULL)
		return !want_port || port_optional;
	{
		char *e = NULL;
		unsigned long v = strtoul(port, &e, 10);
		unsigned long max = want_port ? 65535 : (v6 ? 128 : 32);

		if (port[0] < '0' || port[0] > '9' || *e != '\0' || v > max || (want_port && v == 0 && !port_zero))
			return 0;
	}
	return 1;
}

/* What kind of address list is being read (dns.listen, dns.notify, dns.allow-transfer). */
enum addr_kind { ADDR_LISTEN, ADDR_NOTIFY, ADDR_XFR };

static int addr_check(struct config_ctx *c, const struct yconf_node *n, const char *s,
                      enum addr_kind k)
{
	int ok = k == ADDR_LISTEN ? addr_valid(s, 1, 0, 0, 1)
	       : k == ADDR_NOTIFY ? addr_valid(s, 1, 1, 0, 0) : addr_valid(s, 0, 0, 1, 0);

	if (ok)
		return CONFIG_OK;
	yconf_node_errorf(n, c->err, sizeof(c->err), "'%s' is not a valid %s: \"%s\"",
	                  yconf_node_path(n),
	                  k == ADDR_XFR ? "address or address/prefix" : "address:port", s);
	return CONFIG_ERR_INVALID;
}

/* The TSIG key an entry names must be one of dns.tsig-keys (read before). */
static int key_known(struct config_ctx *c, const struct yconf_node *n, const char *key,
                     char **out)
{
	char lower[256];
	size_t len = strlen(key);

	if (len + 2 > sizeof(lower)) {
		yconf_node_errorf(n, c->err, sizeof(c->err), "'%s' is too long", yconf_node_path(n));
		return CONFIG_ERR_INVALID;
	}
	for (size_t i = 0; i <= len; i++)
		lower[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] - 'A' + 'a' : key[i]);
	if (len > 0 && lower[len - 1] != '.') {
		lower[len] = '.';
		lower[len + 1] = '\0';
	}
	for (size_t i = 0; i < c->cfg->dns.n_tsig_keys; i++)
		if (strcmp(c->cfg->dns.tsig_keys[i].name, lower) == 0)
			return config__dup_str(lower, out);
	yconf_node_errorf(n, c->err, sizeof(c->err), "'%s' names TSIG key \"%s\", which is not in "
	                  "dns.tsig-keys", yconf_node_path(n), key);
	return CONFIG_ERR_INVALID;
}

/*
 * An address list: strings, or (notify and allow-transfer) maps {address, key} that
 * bind the entry to a TSIG key. keys_out may be NULL (listen: no keys).
 */
static int read_addrs(struct config_ctx *c, const struct yconf_node *seq, enum addr_kind k,
                      char ***out, char ***keys_out, size_t *nout)
{
	size_t n = seq ? yconf_node_count(seq) : 0;

	if (n == 0)
		return CONFIG_OK;
	*out = calloc(n, sizeof(**out));
	if (*out == NULL || (keys_out && (*keys_out = calloc(n, sizeof(**keys_out))) == NULL))
		return CONFIG_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct yconf_node *it = yconf_node_item(seq, i);
		const char *addr = yconf_node_scalar(it), *key = NULL;
		int r;

		*nout = i + 1;
		if (yconf_node_kind(it) == YCONF_MAP) {
			const struct yconf_field f[] = {
				YCONF_F_STRING("address", true, 1, 64, &addr),
				YCONF_F_STRING("key", false, 1, 255, &key),
			};

			r = config__from_yconf(yconf_map_read(it, f, YCONF_NFIELDS(f),
			                                      c->err, sizeof(c->err)));
			if (r != 0)
				return r;
		}
		if ((r = addr_check(c, it, addr, k)) != 0 || (r = config__dup_str(addr, &(*out)[i])) != 0)
			return r;
		if (key != NULL &&
		    (r = key_known(c, yconf_node_get(it, "key"), key, &(*keys_out)[i])) != 0)
			return r;
	}
	return CONFIG_OK;
}

/* A domain name written in the file, lowercased into *out; refuses relative names. */
static int take_domain(struct config_ctx *c, const struct yconf_node *n, const char *s,
                       char **out)
{
	if (!config__zone_name_check(s)) {
		yconf_node_errorf(n, c->err, sizeof(c->err),
		                  "'%s' must be an absolute domain name ending in '.', got \"%s\"",
		                  yconf_node_path(n), s);
		return CONFIG_ERR_INVALID;
	}
	if (config__dup_str(s, out) != 0)
		return CONFIG_ERR_NOMEM;
	for (char *p = *out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return CONFIG_OK;
}

static const char *const tsig_algorithms[] = { "hmac-sha256", "hmac-sha512", NULL };

static int read_tsig_keys(struct config_ctx *c, const struct yconf_node *seq)
{
	size_t n = yconf_node_count(seq);
	struct config_tsig_key *keys;

	if (n == 0)
		return CONFIG_OK;
	if ((keys = calloc(n, sizeof(*keys))) == NULL)
		return CONFIG_ERR_NOMEM;
	c->cfg->dns.tsig_keys = keys;
	for (size_t i = 0; i < n; i++) {
		const struct yconf_node *it = yconf_node_item(seq, i);
		const char *name = NULL, *file = NULL;
		int alg = 0, r;
		const struct yconf_field f[] = {
			YCONF_F_STRING("name", true, 2, 254, &name),
			YCONF_F_ENUM("algorithm", true, tsig_algorithms, &alg),
			YCONF_F_STRING("secret-file", true, 1, PATH_MAX - 1, &file),
		};

		r = config__from_yconf(yconf_map_read(it, f, YCONF_NFIELDS(f),
		                                      c->err, sizeof(c->err)));
		if (r != 0)
			return r;
		c->cfg->dns.n_tsig_keys = i + 1;
		if ((r = take_domain(c, yconf_node_get(it, "name"), name, &keys[i].name)) != 0 ||
		    (r = config__dup_str(tsig_algorithms[alg], &keys[i].algorithm)) != 0 ||
		    (r = config__take_path(c, it, "secret-file", file, &keys[i].secret_file)) != 0)
			return r;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(keys[j].name, keys[i].name) == 0) {
				yconf_node_errorf(it, c->err, sizeof(c->err),
				                  "TSIG key %s is listed twice", keys[i].name);
				return CONFIG_ERR_INVALID;
			}
		}
	}
	return CONFIG_OK;
}

static int read_nameservers(struct config_ctx *c, const struct yconf_node *seq)
{
	size_t n = yconf_node_count(seq);
	struct config_nameserver *ns;

	if (n == 0)
		return CONFIG_OK;
	if ((ns = calloc(n, sizeof(*ns))) == NULL)
		return CONFIG_ERR_NOMEM;
	c->cfg->dns.nameservers = ns;
	for (size_t i = 0; i < n; i++) {
		const struct yconf_node *it = yconf_node_item(seq, i), *addrs = NULL;
		const char *name = NULL;
		int r;
		const struct yconf_field f[] = {
			YCONF_F_STRING("name", true, 2, 254, &name),
			YCONF_F_STRINGS("addresses", false, 0, 16, 64, &addrs),
		};

		r = config__from_yconf(yconf_map_read(it, f, YCONF_NFIELDS(f),
		                                      c->err, sizeof(c->err)));
		if (r != 0)
			return r;
		c->cfg->dns.n_nameservers = i + 1;
		if ((r = take_domain(c, yconf_node_get(it, "name"), name, &ns[i].name)) != 0)
			return r;
		for (size_t j = 0; j < i; j++) {
			if (strcmp(ns[j].name, ns[i].name) == 0) {
				yconf_node_errorf(it, c->err, sizeof(c->err),
				                  "name server %s is listed twice", ns[i].name);
				return CONFIG_ERR_INVALID;
			}
		}
		for (size_t j = 0; j < yconf_node_count(addrs); j++) {
			const struct yconf_node *a = yconf_node_item(addrs, j);

			if (!addr_valid(yconf_node_scalar(a), 0, 0, 0, 0)) {
				yconf_node_errorf(a, c->err, sizeof(c->err),
				                  "'%s' is not an IPv4 or IPv6 address: \"%s\"",
				                  yconf_node_path(a), yconf_node_scalar(a));
				return CONFIG_ERR_INVALID;
			}
		}
		if ((r = read_addrs(c, addrs, ADDR_XFR, &ns[i].addresses, NULL,
		                    &ns[i].n_addresses)) != 0)
			return r;
	}
	return CONFIG_OK;
}

/* A list of strings or a list of maps: the field type follows the first item. */
static struct yconf_field addr_list_field(const struct yconf_node *d, const char *key,
                                          size_t max, const struct yconf_node **out)
{
	const struct yconf_node *seq = yconf_node_get(d, key);
	struct yconf_field f = YCONF_F_STRINGS(key, false, 0, max, 64, out);

	if (yconf_node_kind(yconf_node_item(seq, 0)) == YCONF_MAP) {
		struct yconf_field m = YCONF_F_MAPS(key, false, 0, max, out);

		f = m;
	}
	return f;
}

int config__read_dns(struct config_ctx *c, const struct yconf_node *d)
{
	const struct yconf_node *listen = NULL, *notify = NULL, *xfr = NULL, *keys = NULL;
	const struct yconf_node *ns = NULL;
	int64_t msg_size = CONFIG_XFR_MSG_MAX;
	const struct yconf_field f[] = {
		YCONF_F_STRINGS("listen", false, 0, 64, 64, &listen),
		addr_list_field(d, "notify", 64, &notify),
		addr_list_field(d, "allow-transfer", 256, &xfr),
		YCONF_F_MAPS("tsig-keys", false, 0, 64, &keys),
		YCONF_F_MAPS("nameservers", false, 1, 16, &ns),
		YCONF_F_INT("transfer-message-size", false, CONFIG_XFR_MSG_MIN, CONFIG_XFR_MSG_MAX,
		            &msg_size),
	};
	int r = config__from_yconf(yconf_map_read(d, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	if (r == 0)
		c->cfg->dns.transfer_message_size = (uint32_t)msg_size;
	if (r == 0 && keys != NULL)
		r = read_tsig_keys(c, keys);
	if (r == 0 && ns != NULL)
		r = read_nameservers(c, ns);
	if (r == 0)
		r = read_addrs(c, listen, ADDR_LISTEN, &c->cfg->dns.listen, NULL,
		               &c->cfg->dns.n_listen);
	if (r == 0)
		r = read_addrs(c, notify, ADDR_NOTIFY, &c->cfg->dns.notify, &c->cfg->dns.notify_key,
		               &c->cfg->dns.n_notify);
	if (r == 0)
		r = read_addrs(c, xfr, ADDR_XFR, &c->cfg->dns.allow_transfer,
		               &c->cfg->dns.allow_transfer_key, &c->cfg->dns.n_allow_transfer);
	return r;
}
