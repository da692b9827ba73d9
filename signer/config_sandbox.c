/*
 * config: the hsm section (module allow-list, token, PIN file, environment, timeouts)
 * and the sandbox section of regsignd.yaml; see config.c for the rest.
 */
#include "signer/config.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "policy/yconf.h"
#include "signer/config_int.h"

/* Where PKCS#11 modules may be loaded from unless the caller adds directories. */
static const char *const default_module_dirs[] = {
	"/usr/lib", "/usr/lib64", "/usr/local/lib", NULL
};

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
static int take_module(struct config_ctx *c, const struct yconf_node *hsm, const char *value)
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
	return config__dup_str(real, &c->cfg->hsm.module);
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

static int read_env(struct config_ctx *c, const struct yconf_node *env)
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
		r = config__from_yconf(yconf_node_read(v, &f, c->err, sizeof(c->err)));
		if (r == 0)
			r = config__dup_str(yconf_node_scalar(k), &e[i].name);
		if (r == 0)
			r = config__dup_str(value, &e[i].value);
		if (r != 0)
			return r;
	}
	return CONFIG_OK;
}

int config__read_hsm(struct config_ctx *c, const struct yconf_node *hsm)
{
	const char *module = NULL, *token = NULL, *pin_file = NULL;
	int64_t sessions = 2, recover = 30, call = -1, check = 1;
	bool copies = true, ahead = true;
	const struct yconf_node *env = NULL;
	const struct yconf_field f[] = {
		YCONF_F_STRING("module", true, 1, PATH_MAX - 1, &module),
		YCONF_F_STRING("token", true, 1, 4096, &token),
		YCONF_F_STRING("pin-file", true, 1, PATH_MAX - 1, &pin_file),
		YCONF_F_INT("sessions", false, 1, 64, &sessions),
		YCONF_F_DURATION("recover-timeout", false, 0, 3600, &recover),
		YCONF_F_MAP("environment", false, &env),
		YCONF_F_DURATION("call-timeout", false, 1, 86400, &call),
		YCONF_F_BOOL("key-copies", false, &copies),
		YCONF_F_DURATION("key-check-interval", false, 0, 3600, &check),
		YCONF_F_BOOL("sign-ahead", false, &ahead),
	};
	int r = config__from_yconf(yconf_map_read(hsm, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

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
		r = config__take_uri(c, yconf_node_get(hsm, "token"), "hsm.token", token, 0,
		             &c->cfg->hsm.token);
	if (r == 0)
		r = config__take_path(c, hsm, "pin-file", pin_file, &c->cfg->hsm.pin_file);
	if (r == 0 && env != NULL)
		r = read_env(c, env);
	c->cfg->hsm.sessions = (unsigned)sessions;
	c->cfg->hsm.recover_timeout_ms = (unsigned)recover * 1000u;
	c->cfg->hsm.call_timeout_ms = call > 0 ? (unsigned)call * 1000u : 0;
	c->cfg->hsm.key_copies = copies;
	c->cfg->hsm.key_check_ms = (unsigned)check * 1000u;
	c->cfg->hsm.sign_ahead = ahead;
	return r;
}

static const char *const sandbox_connects[] = { "unix", "inet", NULL };
static const char *const sandbox_landlock[] = { "required", "best-effort", NULL };

/* A list of absolute paths (sandbox.*.read / write). */
static int read_paths(struct config_ctx *c, const struct yconf_node *seq, char ***out,
                      size_t *nout)
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
		if (config__dup_str(p, &(*out)[i]) != 0)
			return CONFIG_ERR_NOMEM;
	}
	return CONFIG_OK;
}

/* sandbox.front or sandbox.hsm; connect is NULL for the front (it has every
 * socket family it needs by design). */
static int read_sandbox_proc(struct config_ctx *c, const struct yconf_node *m,
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
	int r = config__from_yconf(yconf_map_read(m, f, nf, c->err, sizeof(c->err)));

	if (r == 0 && group != NULL && user == NULL) {
		yconf_node_errorf(yconf_node_get(m, "group"), c->err, sizeof(c->err),
		                  "'%s' needs a user too", yconf_node_path(yconf_node_get(m, "group")));
		r = CONFIG_ERR_INVALID;
	}
	if (r == 0)
		r = config__dup_str(user, &p->user);
	if (r == 0)
		r = config__dup_str(group, &p->group);
	if (r == 0)
		r = read_paths(c, rd, &p->read, &p->n_read);
	if (r == 0)
		r = read_paths(c, wr, &p->write, &p->n_write);
	return r;
}

int config__read_sandbox(struct config_ctx *c, const struct yconf_node *s)
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
	int r = config__from_yconf(yconf_map_read(s, f, YCONF_NFIELDS(f),
	                                          c->err, sizeof(c->err)));

	c->cfg->sandbox.enabled = enabled;
	c->cfg->sandbox.landlock_best_effort = landlock == 1;
	if (r == 0 && front != NULL)
		r = read_sandbox_proc(c, front, &c->cfg->sandbox.front, NULL);
	if (r == 0 && hsm != NULL)
		r = read_sandbox_proc(c, hsm, &c->cfg->sandbox.hsm, &connect);
	c->cfg->sandbox.hsm_connect = connect;
	return r;
}

static void sandbox_proc_free(struct config_sandbox_proc *p)
{
	free(p->user);
	free(p->group);
	config__free_strs(p->read, p->n_read);
	config__free_strs(p->write, p->n_write);
}

void config__sandbox_free(struct config *cfg)
{
	sandbox_proc_free(&cfg->sandbox.front);
	sandbox_proc_free(&cfg->sandbox.hsm);
}
