/*
 * config: regsignd.yaml (see config.h for what is checked and briefs/config-schema.md
 * for the shape). The schema tables go through yconf, which names file:line:col and the
 * key of every error; the meaning checks below use yconf_node_errorf for the same form.
 */
#include "signer/config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <p11-kit/pkcs11.h>
#include <p11-kit/uri.h>

#include "policy/yconf.h"

/* Where PKCS#11 modules may be loaded from unless the caller adds directories. */
static const char *const default_module_dirs[] = {
	"/usr/lib", "/usr/lib64", "/usr/local/lib", NULL
};

static const char *const log_levels[] = {
	"debug", "info", "notice", "warning", "error", NULL
};

/* Everything one load needs; lives on the stack of config_load. */
struct ctx {
	struct config *cfg;
	const struct config_load_opts *opts;
	char err[YCONF_ERRMAX];
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
static int from_yconf(int e)
{
	switch (e) {
	case YCONF_OK: return CONFIG_OK;
	case YCONF_ENOMEM: return CONFIG_ERR_NOMEM;
	case YCONF_EIO: return CONFIG_ERR_IO;
	case YCONF_EINVAL: return CONFIG_ERR_ARG;
	}
	return CONFIG_ERR_INVALID;
}

static int dup_str(const char *s, char **out)
{
	*out = NULL;
	if (s == NULL)
		return CONFIG_OK;
	*out = strdup(s);
	return *out ? CONFIG_OK : CONFIG_ERR_NOMEM;
}

/* Copies an absolute path; a relative one is an error naming its node. */
static int take_path(struct ctx *c, const struct yconf_node *map, const char *key,
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
	return dup_str(value, out);
}

/* True if path is dir or below it (both already resolved). */
static int path_under(const char *path, const char *dir)
{
	size_t n = strlen(dir);

	while (n > 1 && dir[n - 1] == '/')
		n--;
	return strncmp(path, dir, n) == 0 && path[n] == '/';
}

static int dir_allowed(const char *real, const char *dir)
{
	char rdir[PATH_MAX];

	/* Resolve the directory too, so that /usr/lib -> /usr/lib64 style links agree. */
	if (realpath(dir, rdir) != NULL && path_under(real, rdir))
		return 1;
	return path_under(real, dir);
}

/*
 * The module must be an absolute path that resolves to a regular file inside an
 * allowed directory; the resolved path is what the HSM process will dlopen, so a
 * symlink or ".." cannot lead it elsewhere afterwards.
 */
static int take_module(struct ctx *c, const struct yconf_node *hsm, const char *value)
{
	const struct yconf_node *n = yconf_node_get(hsm, "module");
	char real[PATH_MAX];
	struct stat st;
	int ok = 0;

	if (value[0] != '/') {
		yconf_node_errorf(n, c->err, sizeof(c->err),
		                  "'hsm.module' must be an absolute path, got \"%s\"", value);
		return CONFIG_ERR_INVALID;
	}
	errno = 0;
	if (realpath(value, real) == NULL || stat(real, &st) != 0 || !S_ISREG(st.st_mode)) {
		yconf_node_errorf(n, c->err, sizeof(c->err),
		                  "'hsm.module' \"%s\" is not a readable file: %s", value,
		                  errno ? strerror(errno) : "not a regular file");
		return CONFIG_ERR_INVALID;
	}
	for (size_t i = 0; default_module_dirs[i] != NULL && !ok; i++)
		ok = dir_allowed(real, default_module_dirs[i]);
	for (size_t i = 0; c->opts && c->opts->module_dirs && c->opts->module_dirs[i] && !ok; i++)
		ok = c->opts->module_dirs[i][0] == '/' && dir_allowed(real, c->opts->module_dirs[i]);
	if (!ok) {
		yconf_node_errorf(n, c->err, sizeof(c->err),
		                  "'hsm.module' \"%s\" is outside the allowed module directories "
		                  "(/usr/lib, /usr/lib64, /usr/local/lib%s)", real,
		                  c->opts && c->opts->module_dirs ? " and those given" : "");
		return CONFIG_ERR_INVALID;
	}
	return dup_str(real, &c->cfg->hsm.module);
}

/*
 * A PKCS#11 URI as p11-kit parses it, without a PIN of any sort (the PIN comes only
 * from the pin file) and without attributes p11-kit does not know. Key URIs must name
 * an object by label or id.
 */
static int take_uri(struct ctx *c, const struct yconf_node *n, const char *what,
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
	r = dup_str(value, out);
out:
	p11_kit_uri_free(uri);
	return r;
}

static int env_name_valid(const char *s)
{
	if (!((s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
		return 0;
	for (size_t i = 1; s[i]; i++) {
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return 0;
	}
	return 1;
}

static int read_env(struct ctx *c, const struct yconf_node *env)
{
	size_t n = yconf_node_count(env);
	struct config_env *e;
	int r;

	if (n == 0)
		return CONFIG_OK;
	e = calloc(n, sizeof(*e));
	if (e == NULL)
		return CONFIG_ERR_NOMEM;
	c->cfg->hsm.env = e;
	c->cfg->hsm.n_env = n;
	for (size_t i = 0; i < n; i++) {
		const struct yconf_node *k = yconf_node_key(env, i), *v = yconf_node_item(env, i);
		const char *value = NULL;
		const struct yconf_field f = YCONF_F_STRING("", true, 0, 4096, &value);

		if (!env_name_valid(yconf_node_scalar(k))) {
			yconf_node_errorf(k, c->err, sizeof(c->err),
			                  "'%s' is not an environment variable name",
			                  yconf_node_path(v));
			return CONFIG_ERR_INVALID;
		}
		r = from_yconf(yconf_node_read(v, &f, c->err, sizeof(c->err)));
		if (r == 0)
			r = dup_str(yconf_node_scalar(k), &e[i].name);
		if (r == 0)
			r = dup_str(value, &e[i].value);
		if (r != 0)
			return r;
	}
	return CONFIG_OK;
}

static int read_hsm(struct ctx *c, const struct yconf_node *hsm)
{
	const char *module = NULL, *token = NULL, *pin_file = NULL;
	int64_t sessions = 2, recover = 30, call = -1;
	const struct yconf_node *env = NULL;
	const struct yconf_field f[] = {
		YCONF_F_STRING("module", true, 1, PATH_MAX - 1, &module),
		YCONF_F_STRING("token", true, 1, 4096, &token),
		YCONF_F_STRING("pin-file", true, 1, PATH_MAX - 1, &pin_file),
		YCONF_F_INT("sessions", false, 1, 64, &sessions),
		YCONF_F_DURATION("recover-timeout", false, 0, 3600, &recover),
		YCONF_F_MAP("environment", false, &env),
		YCONF_F_DURATION("call-timeout", false, 1, 86400, &call),
	};
	int r = from_yconf(yconf_map_read(hsm, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

	/* A call may legitimately last a whole recovery (the pkcs11 layer recovers
	 * inside the call that found the HSM lost), so the watchdog's bound must be
	 * longer; by default a few recoveries, and never under a minute. */
	if (r == 0 && call < 0)
		call = 4 * recover > 60 ? 4 * recover : 60;
	if (r == 0 && call <= recover) {
		yconf_node_errorf(yconf_node_get(hsm, "call-timeout"), c->err, sizeof(c->err),
		                  "'hsm.call-timeout' (%llds) must be longer than "
		                  "'hsm.recover-timeout' (%llds)", (long long)call,
		                  (long long)recover);
		r = CONFIG_ERR_INVALID;
	}
	if (r == 0)
		r = take_module(c, hsm, module);
	if (r == 0)
		r = take_uri(c, yconf_node_get(hsm, "token"), "hsm.token", token, 0,
		             &c->cfg->hsm.token);
	if (r == 0)
		r = take_path(c, hsm, "pin-file", pin_file, &c->cfg->hsm.pin_file);
	if (r == 0 && env != NULL)
		r = read_env(c, env);
	c->cfg->hsm.sessions = (unsigned)sessions;
	c->cfg->hsm.recover_timeout_ms = (unsigned)recover * 1000u;
	c->cfg->hsm.call_timeout_ms = call > 0 ? (unsigned)call * 1000u : 0;
	return r;
}

/* Appends a role/URI pair to cfg->keys (the array was sized by the caller). */
static int key_push(struct ctx *c, const char *role, const struct yconf_node *n,
                    const char *what, const char *uri)
{
	struct config_key *k = &c->cfg->keys[c->cfg->n_keys];
	int r = take_uri(c, n, what, uri, 1, &k->uri);

	if (r == 0)
		r = dup_str(role, &k->role);
	if (k->uri != NULL || k->role != NULL)
		c->cfg->n_keys++;
	return r;
}

static int read_keys(struct ctx *c, const struct yconf_node *keys, size_t room)
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
	r = from_yconf(yconf_map_read(keys, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));
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
static int zone_name_check(const char *s)
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

static int read_extra_zone(struct ctx *c, const struct yconf_node *z, size_t idx)
{
	const char *name = NULL, *ksk = NULL, *zsk = NULL;
	const struct yconf_field f[] = {
		YCONF_F_STRING("name", true, 2, 254, &name),
		YCONF_F_STRING("ksk", false, 1, 4096, &ksk),
		YCONF_F_STRING("zsk", true, 1, 4096, &zsk),
	};
	struct config_extra_zone *ez = &c->cfg->extra_zones[idx];
	char role[300], what[64];
	int r = from_yconf(yconf_map_read(z, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

	if (r != 0)
		return r;
	if (!zone_name_check(name)) {
		yconf_node_errorf(yconf_node_get(z, "name"), c->err, sizeof(c->err),
		                  "'%s' must be an absolute zone name ending in '.', got \"%s\"",
		                  yconf_node_path(yconf_node_get(z, "name")), name);
		return CONFIG_ERR_INVALID;
	}
	r = dup_str(name, &ez->name);
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
			r = dup_str(c->cfg->keys[c->cfg->n_keys - 1].uri, &ez->ksk);
	}
	snprintf(role, sizeof(role), "%s/zsk", ez->name);
	snprintf(what, sizeof(what), "extra-zones[%zu].zsk", idx);
	if (r == 0)
		r = key_push(c, role, yconf_node_get(z, "zsk"), what, zsk);
	if (r == 0)
		r = dup_str(c->cfg->keys[c->cfg->n_keys - 1].uri, &ez->zsk);
	return r;
}

static int read_ca(struct ctx *c, const struct yconf_node *ca)
{
	const char *root = NULL, *issuing = NULL;
	int64_t max_validity = 398 * 86400;
	const struct yconf_field f[] = {
		YCONF_F_STRING("root-certificate", true, 1, PATH_MAX - 1, &root),
		YCONF_F_STRING("issuing-certificate", true, 1, PATH_MAX - 1, &issuing),
		YCONF_F_DURATION("max-validity", false, 3600, 3650 * 86400LL, &max_validity),
	};
	int r = from_yconf(yconf_map_read(ca, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

	if (r == 0)
		r = take_path(c, ca, "root-certificate", root, &c->cfg->ca.root_certificate);
	if (r == 0)
		r = take_path(c, ca, "issuing-certificate", issuing, &c->cfg->ca.issuing_certificate);
	c->cfg->ca.max_validity = (uint64_t)max_validity;
	return r;
}

static int read_socket(struct ctx *c, const struct yconf_node *s)
{
	const char *path = NULL, *mode = "0660";
	int64_t max_frame = 262144, depth = 1024;
	const struct yconf_field f[] = {
		YCONF_F_STRING("path", true, 1, 107, &path),
		YCONF_F_STRING("mode", false, 1, 4, &mode),
		YCONF_F_INT("max-frame", false, 1024, 16 * 1024 * 1024, &max_frame),
		YCONF_F_INT("queue-depth", false, 1, 1000000, &depth),
	};
	int r = from_yconf(yconf_map_read(s, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));
	char *end = NULL;
	unsigned long m;

	if (r != 0)
		return r;
	r = take_path(c, s, "path", path, &c->cfg->socket.path);
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

static int read_state(struct ctx *c, const struct yconf_node *s)
{
	const char *db = NULL, *audit = NULL, *zone = NULL;
	int64_t interval = 60;
	const struct yconf_field f[] = {
		YCONF_F_STRING("database", true, 1, PATH_MAX - 1, &db),
		YCONF_F_STRING("audit-log", true, 1, PATH_MAX - 1, &audit),
		YCONF_F_STRING("zone-file", true, 1, PATH_MAX - 1, &zone),
		YCONF_F_DURATION("zone-file-interval", false, 0, 86400, &interval),
	};
	int r = from_yconf(yconf_map_read(s, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

	c->cfg->state.zone_file_interval = (uint32_t)interval;

	if (r == 0)
		r = take_path(c, s, "database", db, &c->cfg->state.database);
	if (r == 0)
		r = take_path(c, s, "audit-log", audit, &c->cfg->state.audit_log);
	if (r == 0)
		r = take_path(c, s, "zone-file", zone, &c->cfg->state.zone_file);
	return r;
}

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

static int addr_check(struct ctx *c, const struct yconf_node *n, const char *s, enum addr_kind k)
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
static int key_known(struct ctx *c, const struct yconf_node *n, const char *key, char **out)
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
			return dup_str(lower, out);
	yconf_node_errorf(n, c->err, sizeof(c->err), "'%s' names TSIG key \"%s\", which is not in "
	                  "dns.tsig-keys", yconf_node_path(n), key);
	return CONFIG_ERR_INVALID;
}

/*
 * An address list: strings, or (notify and allow-transfer) maps {address, key} that
 * bind the entry to a TSIG key. keys_out may be NULL (listen: no keys).
 */
static int read_addrs(struct ctx *c, const struct yconf_node *seq, enum addr_kind k,
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

			r = from_yconf(yconf_map_read(it, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));
			if (r != 0)
				return r;
		}
		if ((r = addr_check(c, it, addr, k)) != 0 || (r = dup_str(addr, &(*out)[i])) != 0)
			return r;
		if (key != NULL &&
		    (r = key_known(c, yconf_node_get(it, "key"), key, &(*keys_out)[i])) != 0)
			return r;
	}
	return CONFIG_OK;
}

/* A domain name written in the file, lowercased into *out; refuses relative names. */
static int take_domain(struct ctx *c, const struct yconf_node *n, const char *s, char **out)
{
	if (!zone_name_check(s)) {
		yconf_node_errorf(n, c->err, sizeof(c->err),
		                  "'%s' must be an absolute domain name ending in '.', got \"%s\"",
		                  yconf_node_path(n), s);
		return CONFIG_ERR_INVALID;
	}
	if (dup_str(s, out) != 0)
		return CONFIG_ERR_NOMEM;
	for (char *p = *out; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	return CONFIG_OK;
}

static const char *const tsig_algorithms[] = { "hmac-sha256", "hmac-sha512", NULL };

static int read_tsig_keys(struct ctx *c, const struct yconf_node *seq)
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

		r = from_yconf(yconf_map_read(it, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));
		if (r != 0)
			return r;
		c->cfg->dns.n_tsig_keys = i + 1;
		if ((r = take_domain(c, yconf_node_get(it, "name"), name, &keys[i].name)) != 0 ||
		    (r = dup_str(tsig_algorithms[alg], &keys[i].algorithm)) != 0 ||
		    (r = take_path(c, it, "secret-file", file, &keys[i].secret_file)) != 0)
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

static int read_nameservers(struct ctx *c, const struct yconf_node *seq)
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

		r = from_yconf(yconf_map_read(it, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));
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

static int read_dns(struct ctx *c, const struct yconf_node *d)
{
	const struct yconf_node *listen = NULL, *notify = NULL, *xfr = NULL, *keys = NULL;
	const struct yconf_node *ns = NULL;
	const struct yconf_field f[] = {
		YCONF_F_STRINGS("listen", false, 0, 64, 64, &listen),
		addr_list_field(d, "notify", 64, &notify),
		addr_list_field(d, "allow-transfer", 256, &xfr),
		YCONF_F_MAPS("tsig-keys", false, 0, 64, &keys),
		YCONF_F_MAPS("nameservers", false, 1, 16, &ns),
	};
	int r = from_yconf(yconf_map_read(d, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

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

static int read_log(struct ctx *c, const struct yconf_node *l)
{
	bool syslog = false;
	int level = CONFIG_LOG_INFO;
	const struct yconf_field f[] = {
		YCONF_F_BOOL("syslog", false, &syslog),
		YCONF_F_ENUM("level", false, log_levels, &level),
	};
	int r = from_yconf(yconf_map_read(l, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

	c->cfg->log.syslog = syslog;
	c->cfg->log.level = (enum config_log_level)level;
	return r;
}

static const char *const sandbox_connects[] = { "unix", "inet", NULL };
static const char *const sandbox_landlock[] = { "required", "best-effort", NULL };

/* A list of absolute paths (sandbox.*.read / write). */
static int read_paths(struct ctx *c, const struct yconf_node *seq, char ***out, size_t *nout)
{
	size_t n = seq ? yconf_node_count(seq) : 0;

	if (n == 0)
		return CONFIG_OK;
	*out = calloc(n, sizeof(**out));
	if (*out == NULL)
		return CONFIG_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct yconf_node *it = yconf_node_item(seq, i);
		const char *p = yconf_node_scalar(it);

		*nout = i + 1;
		if (p == NULL || p[0] != '/') {
			yconf_node_errorf(it, c->err, sizeof(c->err),
			                  "'%s' must be an absolute path, got \"%s\"",
			                  yconf_node_path(it), p ? p : "");
			return CONFIG_ERR_INVALID;
		}
		if (dup_str(p, &(*out)[i]) != 0)
			return CONFIG_ERR_NOMEM;
	}
	return CONFIG_OK;
}

/* sandbox.front or sandbox.hsm; connect is NULL for the front (it has every
 * socket family it needs by design). */
static int read_sandbox_proc(struct ctx *c, const struct yconf_node *m,
                             struct config_sandbox_proc *p, uint32_t *connect)
{
	const char *user = NULL, *group = NULL;
	const struct yconf_node *rd = NULL, *wr = NULL;
	struct yconf_field f[] = {
		YCONF_F_STRING("user", false, 1, 64, &user),
		YCONF_F_STRING("group", false, 1, 64, &group),
		YCONF_F_STRINGS("read", false, 0, 64, PATH_MAX - 1, &rd),
		YCONF_F_STRINGS("write", false, 0, 64, PATH_MAX - 1, &wr),
		YCONF_F_ENUMS("connect", false, sandbox_connects, 0, connect),
	};
	size_t nf = connect ? YCONF_NFIELDS(f) : YCONF_NFIELDS(f) - 1;
	int r = from_yconf(yconf_map_read(m, f, nf, c->err, sizeof(c->err)));

	if (r == 0 && group != NULL && user == NULL) {
		yconf_node_errorf(yconf_node_get(m, "group"), c->err, sizeof(c->err),
		                  "'%s' needs a user too", yconf_node_path(yconf_node_get(m, "group")));
		r = CONFIG_ERR_INVALID;
	}
	if (r == 0)
		r = dup_str(user, &p->user);
	if (r == 0)
		r = dup_str(group, &p->group);
	if (r == 0)
		r = read_paths(c, rd, &p->read, &p->n_read);
	if (r == 0)
		r = read_paths(c, wr, &p->write, &p->n_write);
	return r;
}

static int read_sandbox(struct ctx *c, const struct yconf_node *s)
{
	const struct yconf_node *front = NULL, *hsm = NULL;
	bool enabled = true;
	int landlock = 0;
	uint32_t connect = 0;
	const struct yconf_field f[] = {
		YCONF_F_BOOL("enabled", false, &enabled),
		YCONF_F_ENUM("landlock", false, sandbox_landlock, &landlock),
		YCONF_F_MAP("front", false, &front),
		YCONF_F_MAP("hsm", false, &hsm),
	};
	int r = from_yconf(yconf_map_read(s, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

	c->cfg->sandbox.enabled = enabled;
	c->cfg->sandbox.landlock_best_effort = landlock == 1;
	if (r == 0 && front != NULL)
		r = read_sandbox_proc(c, front, &c->cfg->sandbox.front, NULL);
	if (r == 0 && hsm != NULL)
		r = read_sandbox_proc(c, hsm, &c->cfg->sandbox.hsm, &connect);
	c->cfg->sandbox.hsm_connect = connect;
	return r;
}

static int read_top(struct ctx *c, const struct yconf_node *root)
{
	int64_t version = 0;
	const struct yconf_node *hsm = NULL, *keys = NULL, *extra = NULL, *ca = NULL;
	const struct yconf_node *sock = NULL, *state = NULL, *dns = NULL, *log = NULL;
	const struct yconf_node *sandbox = NULL;
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
	};
	size_t n_extra;
	int r = from_yconf(yconf_map_read(root, f, YCONF_NFIELDS(f), c->err, sizeof(c->err)));

	if (r != 0)
		return r;
	n_extra = extra ? yconf_node_count(extra) : 0;
	r = read_hsm(c, hsm);
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
		r = take_path(c, root, "policy", policy, &c->cfg->policy);
	if (r == 0)
		r = read_state(c, state);
	if (r == 0 && dns != NULL)
		r = read_dns(c, dns);
	c->cfg->log.level = CONFIG_LOG_INFO;
	if (r == 0 && log != NULL)
		r = read_log(c, log);
	c->cfg->sandbox.enabled = true;
	if (r == 0 && sandbox != NULL)
		r = read_sandbox(c, sandbox);
	return r;
}

int config_load(const char *path, const struct config_load_opts *opts, struct config **out,
                char **err)
{
	struct yconf_doc *doc = NULL;
	struct ctx c;
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
	if (c.cfg == NULL || dup_str(path, &c.cfg->path) != 0)
		goto out;
	r = from_yconf(yconf_doc_load(path, 0, &doc, c.err, sizeof(c.err)));
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

static void free_strs(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

static void sandbox_proc_free(struct config_sandbox_proc *p)
{
	free(p->user);
	free(p->group);
	free_strs(p->read, p->n_read);
	free_strs(p->write, p->n_write);
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
	free_strs(cfg->dns.listen, cfg->dns.n_listen);
	free_strs(cfg->dns.notify, cfg->dns.n_notify);
	free_strs(cfg->dns.notify_key, cfg->dns.n_notify);
	free_strs(cfg->dns.allow_transfer, cfg->dns.n_allow_transfer);
	free_strs(cfg->dns.allow_transfer_key, cfg->dns.n_allow_transfer);
	for (size_t i = 0; i < cfg->dns.n_tsig_keys; i++) {
		free(cfg->dns.tsig_keys[i].name);
		free(cfg->dns.tsig_keys[i].algorithm);
		free(cfg->dns.tsig_keys[i].secret_file);
	}
	free(cfg->dns.tsig_keys);
	for (size_t i = 0; i < cfg->dns.n_nameservers; i++) {
		free(cfg->dns.nameservers[i].name);
		free_strs(cfg->dns.nameservers[i].addresses, cfg->dns.nameservers[i].n_addresses);
	}
	free(cfg->dns.nameservers);
	sandbox_proc_free(&cfg->sandbox.front);
	sandbox_proc_free(&cfg->sandbox.hsm);
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
