/*
 * libFuzzer target of the daemon configuration parser (signer/config.h
 * config_load). config_load reads a path, so each input is written to one
 * memory file and loaded as /proc/self/fd/N. A refusal must come with a
 * message; an accepted configuration must satisfy what the header promises
 * (absolute paths, the key roles it names).
 * Build and run: tests/fuzz/run.sh (clang, ASan + UBSan).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "signer/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(const struct config *cfg)
{
	const char *abs[] = { cfg->hsm.module, cfg->hsm.pin_file, cfg->ca.root_certificate,
			      cfg->ca.issuing_certificate, cfg->socket.path, cfg->policy,
			      cfg->state.database, cfg->state.audit_log, cfg->state.zone_file };

	for (size_t i = 0; i < sizeof(abs) / sizeof(abs[0]); i++)
		if (abs[i] != NULL && abs[i][0] != '/')
			abort();
	for (size_t i = 0; i < cfg->n_keys; i++)
		if (config_key_find(cfg, cfg->keys[i].role) == NULL)
			abort();
	if (config_key_find(cfg, "root-ca") != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	static char path[64];
	struct config *cfg = NULL;
	char *err = NULL;
	int r;

	if (fd < 0) {
		fd = memfd_create("regsignd.yaml", MFD_CLOEXEC);
		if (fd < 0)
			abort();
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	}
	if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		abort();
	r = config_load(path, NULL, &cfg, &err);
	if (r == CONFIG_OK) {
		if (cfg == NULL || err != NULL)
			abort();
		check(cfg);
		config_free(cfg);
	} else if (cfg != NULL || (r != CONFIG_ERR_NOMEM && (err == NULL || err[0] == '\0'))) {
		abort();
	}
	free(err);
	return 0;
}
