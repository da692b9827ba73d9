/*
 * sandbox_hsmd: regsignd's real HSM process (hsmd_main) behind the sandbox, started
 * exactly as hsmlink_spawn starts regsignd in HSM mode:
 *
 *   sandbox_hsmd --hsm-process --fd N -c regsignd.yaml [--module-dir DIR]...
 *
 * Its main() is the integration the daemon needs (regsignd.c's HSM branch): read the
 * configuration, describe the HSM profile from it, apply, then run the HSM process.
 * With SANDBOX_HSMD_USER set, the process also changes to that user when root.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/config.h"
#include "signer/hsmd.h"
#include "signer/sandbox.h"

/* The HSM branch of regsignd's main(), before hsmd_main(). */
static int hsm_sandbox(int argc, char **argv, const char *user)
{
	const char **dirs = calloc((size_t)argc + 1, sizeof(*dirs));
	const char *config_path = NULL;
	struct config_load_opts copts = { 0 };
	struct config *cfg = NULL;
	sandbox_t *sb = NULL;
	char *err = NULL, why[512] = "";
	size_t n = 0;
	int r = SANDBOX_ERR_NOMEM;

	if (dirs == NULL)
		goto out;
	for (int i = 2; i + 1 < argc; i++) {
		if (strcmp(argv[i], "-c") == 0)
			config_path = argv[i + 1];
		else if (strcmp(argv[i], "--module-dir") == 0)
			dirs[n++] = argv[i + 1];
	}
	copts.module_dirs = dirs;
	r = SANDBOX_ERR_ARG;
	if (config_path == NULL || config_load(config_path, &copts, &cfg, &err) != CONFIG_OK) {
		snprintf(why, sizeof(why), "%s", err ? err : "no configuration");
		goto out;
	}
	r = sandbox_new(SANDBOX_PROFILE_HSM, &sb);
	if (r == SANDBOX_OK && user != NULL)
		r = sandbox_user_set(sb, user, NULL);
	if (r == SANDBOX_OK)
		r = sandbox_config_paths(sb, cfg, config_path);
	/* Modules from --module-dir (the tests' fault module) may load too. */
	for (size_t i = 0; r == SANDBOX_OK && i < n; i++)
		r = sandbox_path_add(sb, dirs[i], SANDBOX_READ);
	if (r == SANDBOX_OK)
		r = sandbox_apply(sb, why, sizeof(why));
out:
	if (r != SANDBOX_OK)
		fprintf(stderr, "sandbox_hsmd: sandbox: %s: %s\n", sandbox_strerror(r), why);
	sandbox_free(sb);
	config_free(cfg);
	free(err);
	free(dirs);
	return r;
}

int main(int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], HSMD_OPTION) != 0) {
		fprintf(stderr, "usage: sandbox_hsmd " HSMD_OPTION " --fd N -c regsignd.yaml\n");
		return 2;
	}
	if (hsm_sandbox(argc, argv, getenv("SANDBOX_HSMD_USER")) != SANDBOX_OK)
		return 1;
	return hsmd_main(argc, argv);
}
