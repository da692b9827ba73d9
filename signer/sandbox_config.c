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
#include <sys/stat.h>
#include <unistd.h>

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

/*
 * An absolute path in hsm.environment: read access to the directory holding
 * it, not to the file alone. A Landlock rule on a file follows its inode, and
 * files like these are replaced by rename (configuration tools, the test
 * suite's fault-injection module with its control file), or created later.
 * Skipped at apply time if the directory is missing then.
 */
static int sandbox_env_path(sandbox_t *sb, const char *value, unsigned access)
{
	char buf[PATH_MAX];
	struct stat st;

	if (strlen(value) >= sizeof(buf))
		return SANDBOX_ERR_ARG;
	if (stat(value, &st) == 0 && S_ISDIR(st.st_mode))
		return sandbox__path_push(sb, value, access, true);
	strcpy(buf, value);
	return sandbox__path_push(sb, dirname(buf), access, true);
}

/* The extra paths of sandbox.front / sandbox.hsm. */
static int sandbox_extra_paths(sandbox_t *sb, const struct config_sandbox_proc *p)
{
	int r = SANDBOX_OK;

	for (size_t i = 0; r == SANDBOX_OK && i < p->n_read; i++)
		r = sandbox_path_add(sb, p->read[i], SANDBOX_READ);
	for (size_t i = 0; r == SANDBOX_OK && i < p->n_write; i++)
		r = sandbox_path_add(sb, p->write[i], SANDBOX_WRITE);
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
	/* The front reads the policy again at SIGHUP, and a policy file is
	 * usually replaced by rename (editors, deployment tools): a Landlock
	 * rule on the file would follow the old inode, so its directory. */
	if (r == SANDBOX_OK && sb->profile == SANDBOX_PROFILE_FRONT)
		r = sandbox_dir_of(sb, cfg->policy, SANDBOX_READ);
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
		/* TSIG secrets are read when the DNS listener starts, after the
		 * sandbox is on (the zone needs the HSM process's keys first). */
		/* A missing file is the DNS listener's error to report, by name. */
		for (size_t i = 0; r == SANDBOX_OK && i < cfg->dns.n_tsig_keys; i++)
			r = sandbox__path_push(sb, cfg->dns.tsig_keys[i].secret_file,
					       SANDBOX_READ, true);
		if (r == SANDBOX_OK)
			r = sandbox_extra_paths(sb, &cfg->sandbox.front);
		return r;
	}
	/* HSM: the pin file at each login, the module's directory (it may be
	 * reloaded; modules outside the system library directories come from
	 * --module-dir), and what the module's environment names. */
	r = sandbox_file(sb, cfg->hsm.pin_file, SANDBOX_READ);
	/* The PIN is read again at each login after a recovery, from whatever
	 * file then has that name. */
	if (r == SANDBOX_OK)
		r = sandbox_dir_of(sb, cfg->hsm.pin_file, SANDBOX_READ);
	if (r == SANDBOX_OK)
		r = sandbox_dir_of(sb, cfg->hsm.module, SANDBOX_READ);
	for (size_t i = 0; r == SANDBOX_OK && i < cfg->hsm.n_env; i++) {
		/* Any absolute path among the values may be a file the module
		 * reads; skipped at apply time if it does not exist. */
		if (cfg->hsm.env[i].value[0] == '/')
			r = sandbox_env_path(sb, cfg->hsm.env[i].value, SANDBOX_READ);
		if (r == SANDBOX_OK)
			r = sandbox_hsm_env(sb, &cfg->hsm.env[i]);
	}
	if (r == SANDBOX_OK)
		r = sandbox_extra_paths(sb, &cfg->sandbox.hsm);
	if (r == SANDBOX_OK && (cfg->sandbox.hsm_connect & CONFIG_SANDBOX_CONNECT_UNIX))
		r = sandbox_net_allow(sb, SANDBOX_NET_UNIX);
	if (r == SANDBOX_OK && (cfg->sandbox.hsm_connect & CONFIG_SANDBOX_CONNECT_INET))
		r = sandbox_net_allow(sb, SANDBOX_NET_INET);
	return r;
}

/* Whether the configured module lies under one of the --module-dir directories. */
static bool module_dev(const struct config *cfg, const char *const *module_dirs)
{
	char dir[PATH_MAX];
	size_t n;

	for (size_t i = 0; module_dirs != NULL && module_dirs[i] != NULL; i++) {
		if (realpath(module_dirs[i], dir) == NULL)
			continue;
		n = strlen(dir);
		if (strncmp(cfg->hsm.module, dir, n) == 0 && cfg->hsm.module[n] == '/')
			return true;
	}
	return false;
}

/* Whether a dns.listen entry ("addr:port" or "[v6]:port") has a port below 1024. */
static bool listen_privileged(const struct config *cfg)
{
	for (size_t i = 0; i < cfg->dns.n_listen; i++) {
		const char *colon = strrchr(cfg->dns.listen[i], ':');
		long port = colon != NULL ? strtol(colon + 1, NULL, 10) : 53;

		if (port > 0 && port < 1024)
			return true;
	}
	return false;
}

int sandbox_from_config(enum sandbox_profile profile, const struct config *cfg,
			const char *config_path, const char *const *module_dirs,
			sandbox_t **out)
{
	const struct config_sandbox_proc *p;
	sandbox_t *sb = NULL;
	int r = SANDBOX_ERR_ARG;

	if (cfg == NULL || out == NULL)
		goto out;
	p = profile == SANDBOX_PROFILE_HSM ? &cfg->sandbox.hsm : &cfg->sandbox.front;
	r = sandbox_new(profile, &sb);
	if (r == SANDBOX_OK && p->user != NULL)
		r = sandbox_user_set(sb, p->user, p->group);
	if (r == SANDBOX_OK)
		r = sandbox_config_paths(sb, cfg, config_path);
	/* Modules allowed by --module-dir (the tests' fault module) may be
	 * reloaded at a recovery too. */
	for (size_t i = 0; r == SANDBOX_OK && profile == SANDBOX_PROFILE_HSM && module_dirs &&
	     module_dirs[i] != NULL; i++)
		r = sandbox_path_add(sb, module_dirs[i], SANDBOX_READ);
	/* A module loaded from a --module-dir (the command line, never the
	 * file) is a development or test module: it may write next to the
	 * paths its environment names (the fault-injection module's statistics
	 * beside its control file). System modules only read them. */
	if (r == SANDBOX_OK && profile == SANDBOX_PROFILE_HSM && module_dev(cfg, module_dirs)) {
		for (size_t i = 0; r == SANDBOX_OK && i < cfg->hsm.n_env; i++)
			if (cfg->hsm.env[i].value[0] == '/')
				r = sandbox_env_path(sb, cfg->hsm.env[i].value, SANDBOX_WRITE);
	}
	if (r == SANDBOX_OK && cfg->sandbox.landlock_best_effort)
		r = sandbox_options_set(sb, SANDBOX_LANDLOCK_BEST_EFFORT);
	/* The DNS listener is bound after the change of user (it needs the HSM
	 * process's keys first): a port below 1024 needs that one capability. */
	if (r == SANDBOX_OK && profile == SANDBOX_PROFILE_FRONT && listen_privileged(cfg))
		r = sandbox_options_set(sb, SANDBOX_KEEP_NET_BIND);
	if (r != SANDBOX_OK)
		goto out;
	*out = sb;
	sb = NULL;
out:
	sandbox_free(sb);
	return r;
}
