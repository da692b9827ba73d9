/*
 * config: regsignd.yaml (see config.h for what is checked and briefs/config-schema.md
 * for the shape). The schema tables go through yconf, which names file:line:col and the
 * key of every error; the meaning checks below use yconf_node_errorf for the same form.
 * This file reads the top level, keys, extra zones, CA, socket, state and log; the hsm
 * and sandbox sections are in config_sandbox.c, the dns section in config_dns.c
 * (shared internals: config_int.h).
 */
#include "signer/config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "policy/yconf.h"
#include "signer/config_int.h"

static const char *const log_levels[] = {
	"debug", "info", "notice", "warning", "error", NULL
};

const char *config_strerror(int err)
{
	switch (err) {
	case CONFIG_OK: return "success";
	case CONFIG_ERR_NOMEM: return "out of memory";
	case CONFIG_ERR_ARG: return "invalid argument";
	case CONFIG_ERR_IO: return "configuration file cannot be read";
	case CONFIG_ERR_INVALID: return "invalid configuration";
	}
	return "unknown config error";
}

/* Maps yconf's errors onto ours. */
int config__from_yconf(int e)
{
	switch (e) {
	case YCONF_OK: return CONFIG_OK;
	case YCONF_ENOMEM: return CONFIG_ERR_NOMEM;
	case YCONF_EIO: return CONFIG_ERR_IO;
	case YCONF_EINVAL: return CONFIG_ERR_ARG;
	}
	return CONFIG_ERR_INVALID;
}

int config__dup_str(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return CONFIG_OK;
	*out = strdup(s);
	return *out ? CONFIG_OK : CONFIG_ERR_NOMEM;
}

/* Copies an absolute path; a relative one is an error naming its node. */
int config__take_path(struct config_ctx *c, const struct yconf_node *map, const char *key,
                     const char *value, char **out)
{
	const struct yconf_node *n = yconf_node_get(map, key);

	if (value == NULL)
		return CONFIG_OK;
	if (value[0] != '/') {
		yconf_node_errorf(n, c->err, sizeof(c->err),
		                  "'%s' must be an absolute path, got \"%s\"",
		                  yconf_node_path(n), value);
		return CONFIG_ERR_INVALID;
	}
	return config__dup_str(value, out);
}

/*
 * A PKCS#11 URI as p11-kit parses it, without a PIN of any sort (the PIN comes only
 * from the pin file) and without attributes p11-kit does not know. Key URIs must name
 * an object by label or id.
 */
int config__take_uri(struct config_ctx *c, const struct yconf_node *n, const char *what,
                    const char *value, int is_key, char **out)
{
	P11KitUri *uri = p11_kit_uri_new();
	const char *why = NULL;
	int r = CONFIG_ERR_NOMEM;

	if (uri == NULL)
		goto out;
	r = CONFIG_ERR_INVALID;
	if (strncmp(value, "pkcs11:", 7) != 0)
		why = "is not a pkcs11: URI";
	else if (p11_kit_uri_parse(value, P11_KIT_URI_FOR_ANY, uri) != P11_KIT_URI_OK)
		why = "is not a valid RFC 7512 URI";
	else if (p11_kit_uri_get_pin_value(uri) != NULL)
		why = "carries pin-value; the PIN comes only from hsm.pin-file";
	else if (p11_kit_uri_get_pin_source(uri) != NULL)
		why = "carries pin-source; the PIN comes only from hsm.pin-file";
	else if (p11_kit_uri_any_unrecognized(uri))
		why = "has attributes p11-kit does not know";
	else if (is_key && p11_kit_uri_get_attribute(uri, CKA_LABEL) == NULL &&
	         p11_kit_uri_get_attribute(uri, CKA_ID) == NULL)
		why = "names no object (object= or id=)";
	if (why != NULL) {
		yconf_node_errorf(n, c->err, sizeof(c->err), "'%s' %s", what, why);
		goto out;
	}
	r = config__dup_str(value, out);
out:
	p11_kit_uri_free(uri);
	return r;
}

/* Appends a role/URI pair to cfg->keys (the array was sized by the caller). */
static int key_push(struct config_ctx *c, const char *role, const struct yconf_node *n,
                    const char *what, const char *uri)
{
	struct config_key *k = &c->cfg->keys[c->cfg->n_keys];
	int r = config__take_uri(c, n, what, uri, 1, &k->uri);

	if (r == 0)
		r = config__dup_str(role, &k->role);
	if (k->uri != NULL || k->role != NULL)
		c->cfg->n_keys++;
	return r;
}

static int read_keys(struct config_ctx *c, const struct yconf_node *keys, size_t room)
{
	static const char *const roles[] = { "issuing-ca", "ksk", "zsk", "audit" };
	const char *uri[4] = { NULL, NULL, NULL, NULL };
	const struct yconf_field f[] = {
		YCONF_F_STRING("issuing-ca", true, 1, 4096, &uri[0]),
		YCONF_F_STRING("ksk", true, 1, 4096, &uri[1]),
		YCONF_F_STRING("zsk", true, 1, 4096, &uri[2]),
		YCONF_F_STRING("audit", true, 1, 4096, &uri[3]),
	};
	const char *root[] = { "root", "root-ca" };
	int r;

	/* Say why the root key is missing from the schema instead of "not allowed". */
	for (size_t i = 0; i < 2; i++) {
		const struct yconf_node *n = yconf_node_get(keys, root[i]);

		if (n != NULL) {
			yconf_node_errorf(n, c->err, sizeof(c->err), "'keys.%s': the root CA key "
			                  "is never online; it is used only in the key ceremony", root[i]);
			return CONFIG_ERR_INVALID;
		}
	}
	r = config__from_yconf(yconf_map_read(keys, f, YCONF_NFIELDS(f),
	                                      c->err, sizeof(c->err)));
	c->cfg->keys = calloc(room, sizeof(*c->cfg->keys));
	if (r == 0 && c->cfg->keys == NULL)
		r = CONFIG_ERR_NOMEM;
	for (size_t i = 0; i < 4 && r == 0; i++) {
		char what[32];

		snprintf(what, sizeof(what), "keys.%s", roles[i]);
		r = key_push(c, roles[i], yconf_node_get(keys, roles[i]), what, uri[i]);
	}
	return r;
}

/* A zone name: absolute, lowercased, LDH-ish labels of 1..63 bytes, at most 253 chars. */
int config__zone_name_check(const char *s)
{
	size_t n = strlen(s), label = 0;

	if (n < 2 || n > 254 || s[n - 1] != '.' || s[0] == '.')
		return 0;
	for (size_t i = 0; i < n; i++) {
		char ch = s[i];

		if (ch == '.') {
			if (label == 0)
				return 0;
			label = 0;
		} else if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		           (ch >= '0' && ch <= '9') || ch == '-' || ch == '_') {
			if (++label > 63)
				return 0;
		} else {
			return 0;
		}
	}
	return 1;
}

static int read_extra_zone(struct config_ctx *c, const struct yconf_node *z, size_t idx)
{
	const char *name = NULL, *ksk = NULL, *zsk = NULL;
	const struct yconf_field f[] = {
		YCONF_F_STRING("name", true, 2, 254, &name),
		YCONF_F_STRING("ksk", false, 1, 4096, &ksk),
		YCONF_F_STRING("zsk", true, 1, 4096, &zsk),
	};
	struct config_extra_zone *ez = &c->cfg->extra_zones[idx];
	char role[300], what[64];
	int r = config__from_yconf(yconf_map_read(z, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	if (r != 0)
		return r;
	if (!config__zone_name_check(name)) {
		yconf_node_errorf(yconf_node_get(z, "name"), c->err, sizeof(c->err),
		                  "'%s' must be an absolute zone name ending in '.', got \"%s\"",
		                  yconf_node_path(yconf_node_get(z, "name")), name);
		return CONFIG_ERR_INVALID;
	}
	r = config__dup_str(name, &ez->name);
	if (r != 0)
		return r;
	c->cfg->n_extra_zones = idx + 1;
	for (char *p = ez->name; *p; p++)
		*p = (char)((*p >= 'A' && *p <= 'Z') ? *p + 32 : *p);
	for (size_t i = 0; i < idx; i++) {
		if (strcmp(c->cfg->extra_zones[i].name, ez->name) == 0) {
			yconf_node_errorf(yconf_node_get(z, "name"), c->err, sizeof(c->err),
			                  "extra zone %s is listed twice", ez->name);
			return CONFIG_ERR_INVALID;
		}
	}
	if (ksk != NULL) {
		snprintf(role, sizeof(role), "%s/ksk", ez->name);
		snprintf(what, sizeof(what), "extra-zones[%zu].ksk", idx);
		r = key_push(c, role, yconf_node_get(z, "ksk"), what, ksk);
		if (r == 0)
			r = config__dup_str(c->cfg->keys[c->cfg->n_keys - 1].uri, &ez->ksk);
	}
	snprintf(role, sizeof(role), "%s/zsk", ez->name);
	snprintf(what, sizeof(what), "extra-zones[%zu].zsk", idx);
	if (r == 0)
		r = key_push(c, role, yconf_node_get(z, "zsk"), what, zsk);
	if (r == 0)
		r = config__dup_str(c->cfg->keys[c->cfg->n_keys - 1].uri, &ez->zsk);
	return r;
}

static int read_ca(struct config_ctx *c, const struct yconf_node *ca)
{
	const char *root = NULL, *issuing = NULL;
	int64_t max_validity = 398 * 86400;
	const struct yconf_field f[] = {
		YCONF_F_STRING("root-certificate", true, 1, PATH_MAX - 1, &root),
		YCONF_F_STRING("issuing-certificate", true, 1, PATH_MAX - 1, &issuing),
		YCONF_F_DURATION("max-validity", false, 3600, 3650 * 86400LL, &max_validity),
	};
	int r = config__from_yconf(yconf_map_read(ca, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	if (r == 0)
		r = config__take_path(c, ca, "root-certificate", root, &c->cfg->ca.root_certificate);
	if (r == 0)
		r = config__take_path(c, ca, "issuing-certificate", issuing, &c->cfg->ca.issuing_certificate);
	c->cfg->ca.max_validity = (uint64_t)max_validity;
	return r;
}

static int read_socket(struct config_ctx *c, const struct yconf_node *s)
{
	const char *path = NULL, *mode = "0660";
	int64_t max_frame = 262144, depth = 1024;
	const struct yconf_field f[] = {
		YCONF_F_STRING("path", true, 1, 107, &path),
		YCONF_F_STRING("mode", false, 1, 4, &mode),
		YCONF_F_INT("max-frame", false, 1024, 16 * 1024 * 1024, &max_frame),
		YCONF_F_INT("queue-depth", false, 1, 1000000, &depth),
	};
	int r = config__from_yconf(yconf_map_read(s, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));
	char *end = NULL;
	unsigned long m;

	if (r != 0)
		return r;
	r = config__take_path(c, s, "path", path, &c->cfg->socket.path);
	if (r != 0)
		return r;
	m = strtoul(mode, &end, 8);
	if (mode[0] != '0' || *end != '\0' || m > 0777) {
		yconf_node_errorf(yconf_node_get(s, "mode"), c->err, sizeof(c->err),
		                  "'socket.mode' must be an octal mode like \"0660\", got \"%s\"",
		                  mode);
		return CONFIG_ERR_INVALID;
	}
	c->cfg->socket.mode = (unsigned)m;
	c->cfg->socket.max_frame = (uint32_t)max_frame;
	c->cfg->socket.queue_depth = (uint32_t)depth;
	return CONFIG_OK;
}

static int read_state(struct config_ctx *c, const struct yconf_node *s)
{
	const char *db = NULL, *audit = NULL, *zone = NULL;
	int64_t interval = 60;
	const struct yconf_field f[] = {
		YCONF_F_STRING("database", true, 1, PATH_MAX - 1, &db),
		YCONF_F_STRING("audit-log", true, 1, PATH_MAX - 1, &audit),
		YCONF_F_STRING("zone-file", true, 1, PATH_MAX - 1, &zone),
		YCONF_F_DURATION("zone-file-interval", false, 0, 86400, &interval),
	};
	int r = config__from_yconf(yconf_map_read(s, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	c->cfg->state.zone_file_interval = (uint32_t)interval;

	if (r == 0)
		r = config__take_path(c, s, "database", db, &c->cfg->state.database);
	if (r == 0)
		r = config__take_path(c, s, "audit-log", audit, &c->cfg->state.audit_log);
	if (r == 0)
		r = config__take_path(c, s, "zone-file", zone, &c->cfg->state.zone_file);
	return r;
}

static int read_log(struct config_ctx *c, const struct yconf_node *l)
{
	bool syslog = false;
	int level = CONFIG_LOG_INFO;
	const struct yconf_field f[] = {
		YCONF_F_BOOL("syslog", false, &syslog),
		YCONF_F_ENUM("level", false, log_levels, &level),
	};
	int r = config__from_yconf(yconf_map_read(l, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	c->cfg->log.syslog = syslog;
	c->cfg->log.level = (enum config_log_level)level;
	return r;
}

static int read_cpu_latency(struct config_ctx *c, const struct yconf_node *l)
{
	bool enabled = false;
	int64_t limit = 0, hold = 1;
	const struct yconf_field f[] = {
		YCONF_F_BOOL("enabled", false, &enabled),
		YCONF_F_INT("limit-us", false, 0, 1000000, &limit),
		YCONF_F_DURATION("hold", false, 1, 3600, &hold),
	};
	int r = config__from_yconf(yconf_map_read(l, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	c->cfg->cpu_latency.enabled = enabled;
	c->cfg->cpu_latency.limit_us = (unsigned)limit;
	c->cfg->cpu_latency.hold_s = (unsigned)hold;
	return r;
}

static int read_top(struct config_ctx *c, const struct yconf_node *root)
{
	int64_t version = 0;
	const struct yconf_node *hsm = NULL, *keys = NULL, *extra = NULL, *ca = NULL;
	const struct yconf_node *sock = NULL, *state = NULL, *dns = NULL, *log = NULL;
	const struct yconf_node *sandbox = NULL, *cpu = NULL;
	const char *policy = NULL;
	const struct yconf_field f[] = {
		YCONF_F_INT("version", true, 1, 1, &version),
		YCONF_F_MAP("hsm", true, &hsm),
		YCONF_F_MAP("keys", true, &keys),
		YCONF_F_MAPS("extra-zones", false, 0, 64, &extra),
		YCONF_F_MAP("ca", true, &ca),
		YCONF_F_MAP("socket", true, &sock),
		YCONF_F_STRING("policy", true, 1, PATH_MAX - 1, &policy),
		YCONF_F_MAP("state", true, &state),
		YCONF_F_MAP("dns", false, &dns),
		YCONF_F_MAP("log", false, &log),
		YCONF_F_MAP("sandbox", false, &sandbox),
		YCONF_F_MAP("cpu-latency", false, &cpu),
	};
	size_t n_extra;
	int r = config__from_yconf(yconf_map_read(root, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	if (r != 0)
		return r;
	n_extra = extra ? yconf_node_count(extra) : 0;
	r = config__read_hsm(c, hsm);
	if (r == 0)
		r = read_keys(c, keys, 4 + 2 * n_extra);
	if (r == 0 && n_extra > 0) {
		c->cfg->extra_zones = calloc(n_extra, sizeof(*c->cfg->extra_zones));
		if (c->cfg->extra_zones == NULL)
			r = CONFIG_ERR_NOMEM;
	}
	for (size_t i = 0; i < n_extra && r == 0; i++)
		r = read_extra_zone(c, yconf_node_item(extra, i), i);
	if (r == 0)
		r = read_ca(c, ca);
	if (r == 0)
		r = read_socket(c, sock);
	if (r == 0)
		r = config__take_path(c, root, "policy", policy, &c->cfg->policy);
	if (r == 0)
		r = read_state(c, state);
	/* Without a dns section transfers keep their largest message. */
	c->cfg->dns.transfer_message_size = CONFIG_XFR_MSG_MAX;
	if (r == 0 && dns != NULL)
		r = config__read_dns(c, dns);
	c->cfg->log.level = CONFIG_LOG_INFO;
	if (r == 0 && log != NULL)
		r = read_log(c, log);
	c->cfg->cpu_latency.hold_s = 1;
	if (r == 0 && cpu != NULL)
		r = read_cpu_latency(c, cpu);
	c->cfg->sandbox.enabled = true;
	if (r == 0 && sandbox != NULL)
		r = config__read_sandbox(c, sandbox);
	return r;
}

int config_load(const char *path, const struct config_load_opts *opts, struct config **out,
                char **err)
{
	struct yconf_doc *doc = NULL;
	struct config_ctx c;
	int r = CONFIG_ERR_ARG;

	memset(&c, 0, sizeof(c));
	if (err != NULL)
		*err = NULL;
	if (path == NULL || out == NULL)
		goto out;
	*out = NULL;
	c.opts = opts;
	r = CONFIG_ERR_NOMEM;
	c.cfg = calloc(1, sizeof(*c.cfg));
	if (c.cfg == NULL || config__dup_str(path, &c.cfg->path) != 0)
		goto out;
	r = config__from_yconf(yconf_doc_load(path, 0, &doc, c.err, sizeof(c.err)));
	if (r != 0)
		goto out;
	r = read_top(&c, yconf_doc_root(doc));
	if (r != 0)
		goto out;
	*out = c.cfg;
	c.cfg = NULL;
	r = CONFIG_OK;
out:
	if (r != 0 && err != NULL)
		*err = strdup(c.err[0] ? c.err : config_strerror(r));
	yconf_doc_free(doc);
	config_free(c.cfg);
	return r;
}

void config__free_strs(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

void config_free(struct config *cfg)
{
	if (cfg == NULL)
		return;
	free(cfg->path);
	free(cfg->hsm.module);
	free(cfg->hsm.token);
	free(cfg->hsm.pin_file);
	for (size_t i = 0; i < cfg->hsm.n_env; i++) {
		free(cfg->hsm.env[i].name);
		free(cfg->hsm.env[i].value);
	}
	free(cfg->hsm.env);
	for (size_t i = 0; i < cfg->n_keys; i++) {
		free(cfg->keys[i].role);
		free(cfg->keys[i].uri);
	}
	free(cfg->keys);
	for (size_t i = 0; i < cfg->n_extra_zones; i++) {
		free(cfg->extra_zones[i].name);
		free(cfg->extra_zones[i].ksk);
		free(cfg->extra_zones[i].zsk);
	}
	free(cfg->extra_zones);
	free(cfg->ca.root_certificate);
	free(cfg->ca.issuing_certificate);
	free(cfg->socket.path);
	free(cfg->policy);
	free(cfg->state.database);
	free(cfg->state.audit_log);
	free(cfg->state.zone_file);
	config__free_strs(cfg->dns.listen, cfg->dns.n_listen);
	config__free_strs(cfg->dns.notify, cfg->dns.n_notify);
	config__free_strs(cfg->dns.notify_key, cfg->dns.n_notify);
	config__free_strs(cfg->dns.allow_transfer, cfg->dns.n_allow_transfer);
	config__free_strs(cfg->dns.allow_transfer_key, cfg->dns.n_allow_transfer);
	for (size_t i = 0; i < cfg->dns.n_tsig_keys; i++) {
		free(cfg->dns.tsig_keys[i].name);
		free(cfg->dns.tsig_keys[i].algorithm);
		free(cfg->dns.tsig_keys[i].secret_file);
	}
	free(cfg->dns.tsig_keys);
	for (size_t i = 0; i < cfg->dns.n_nameservers; i++) {
		free(cfg->dns.nameservers[i].name);
		config__free_strs(cfg->dns.nameservers[i].addresses, cfg->dns.nameservers[i].n_addresses);
	}
	free(cfg->dns.nameservers);
	config__sandbox_free(cfg);
	free(cfg);
}

const struct config_key *config_key_find(const struct config *cfg, const char *role)
{
	for (size_t i = 0; cfg && role && i < cfg->n_keys; i++) {
		if (strcmp(cfg->keys[i].role, role) == 0)
			return &cfg->keys[i];
	}
	return NULL;
}
