/*
 * libregsign-sandbox: the paths each regsignd process needs, read from its
 * configuration (signer/config.h), so that the daemon adds them in one call.
 * The PKCS#11 module's own needs are found in hsm.environment: SoftHSM's
 * configuration file names its token directory, and p11-kit-client's server
 * address names a Unix socket.
 */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/config.h"
#include "signer/sandbox_int.h"

/* Adds the directory holding @p path. */
static int sandbox_dir_of(sandbox_t *sb, const char *path, enum sandbox_access access)
{
	char buf[PATH_MAX];

	if (path == NULL || strlen(path) >= sizeof(buf))
		return path == NULL ? SANDBOX_OK : SANDBOX_ERR_ARG;
	strcpy(buf, path);
	return sandbox_path_add(sb, dirname(buf), access);
}

static int sandbox_file(sandbox_t *sb, const char *path, enum sandbox_access access)
{
	return path == NULL ? SANDBOX_OK : sandbox_path_add(sb, path, access);
}

/*
 * SoftHSM keeps its token store where "directories.tokendir" of its
 * configuration file says; the HSM process writes there (objects, locks).
 * An unreadable file is left for SoftHSM itself to report at C_Initialize.
 */
static int sandbox_softhsm_tokendir(sandbox_t *sb, const char *conf)
{
	char line[PATH_MAX + 64], *p, *end;
	FILE *f = fopen(conf, "re");
	int r = SANDBOX_OK;

	if (f == NULL)
		return SANDBOX_OK;
	while (r == SANDBOX_OK && fgets(line, sizeof(line), f) != NULL) {
		p = line + strspn(line, " \t");
		if (strncmp(p, "directories.tokendir", 20) != 0)
			continue;
		p += 20;
		p += strspn(p, " \t");
		if (*p++ != '=')
			continue;
		p += strspn(p, " \t");
		end = p + strcspn(p, " \t\r\n#");
		*end = '\0';
		if (p[0] == '/')
			r = sandbox_path_add(sb, p, SANDBOX_WRITE);
	}
	fclose(f);
	return r;
}

static int sandbox_hsm_env(sandbox_t *sb, const struct config_env *env)
{
	if (strcmp(env->name, "SOFTHSM2_CONF") == 0)
		return sandbox_softhsm_tokendir(sb, env->value);
	/* p11-kit-client reaches `p11-kit server` at "unix:path=/run/...". */
	if (strcmp(env->name, "P11_KIT_SERVER_ADDRESS") == 0 &&
	    strncmp(env->value, "unix:", 5) == 0)
		return sandbox_net_allow(sb, SANDBOX_NET_UNIX);
	return SANDBOX_OK;
}

int sandbox_config_paths(sandbox_t *sb, const struct config *cfg, const char *config_path)
{
	int r;

	if (sb == NULL || cfg == NULL || config_path == NULL || config_path[0] != '/')
		return SANDBOX_ERR_ARG;
	/* Both processes read the configuration, the policy and the CA certificates
	 * (the HSM process takes its hard limits from them). */
	r = sandbox_file(sb, config_path, SANDBOX_READ);
	if (r == SANDBOX_OK)
		r = sandbox_file(sb, cfg->policy, SANDBOX_READ);
	if (r == SANDBOX_OK)
		r = sandbox_file(sb, cfg->ca.root_certificate, SANDBOX_READ);
	if (r == SANDBOX_OK)
		r = sandbox_file(sb, cfg->ca.issuing_certificate, SANDBOX_READ);
	if (r != SANDBOX_OK)
		return r;
	if (sb->profile == SANDBOX_PROFILE_FRONT) {
		/* Directories, not files: SQLite's -wal and -shm files, the zone
		 * file's temporary twin and the socket are created next to them. */
		r = sandbox_dir_of(sb, cfg->socket.path, SANDBOX_WRITE);
		if (r == SANDBOX_OK)
			r = sandbox_dir_of(sb, cfg->state.database, SANDBOX_WRITE);
		if (r == SANDBOX_OK)
			r = sandbox_dir_of(sb, cfg->state.audit_log, SANDBOX_WRITE);
		if (r == SANDBOX_OK)
			r = sandbox_dir_of(sb, cfg->state.zone_file, SANDBOX_WRITE);
		return r;
	}
	/* HSM: the pin file at each login, the module's directory (it may be
	 * reloaded; modules outside the system library directories come from
	 * --module-dir), and what the module's environment names. */
	r = sandbox_file(sb, cfg->hsm.pin_file, SANDBOX_READ);
	if (r == SANDBOX_OK)
		r = sandbox_dir_of(sb, cfg->hsm.module, SANDBOX_READ);
	for (size_t i = 0; r == SANDBOX_OK && i < cfg->hsm.n_env; i++) {
		/* Any absolute path among the values may be a file the module
		 * reads; skipped at apply time if it does not exist. */
		if (cfg->hsm.env[i].value[0] == '/')
			r = sandbox__path_push(sb, cfg->hsm.env[i].value, SANDBOX_READ, true);
		if (r == SANDBOX_OK)
			r = sandbox_hsm_env(sb, &cfg->hsm.env[i]);
	}
	return r;
}
