/*
 * Internals of libregsign-config shared by config.c (top level, keys, extra zones, CA,
 * socket, state, log, config_free), config_sandbox.c (the hsm and sandbox sections)
 * and config_dns.c (the dns section). Not installed, not for other modules. Shared
 * functions carry the config__ prefix so that they never collide with the public
 * config_ names.
 */
#ifndef REGSIGN_SIGNER_CONFIG_INT_H
#define REGSIGN_SIGNER_CONFIG_INT_H

#include <stddef.h>

#include "policy/yconf.h"
#include "signer/config.h"

/* Everything one load needs; lives on the stack of config_load. Every reader leaves
 * the message of its first error in err (file:line:col first, through yconf). */
struct config_ctx {
	struct config *cfg;
	const struct config_load_opts *opts;
	char err[YCONF_ERRMAX];
};

/* config.c */
/* Maps yconf's errors onto ours. */
int config__from_yconf(int e);
/* strdup that keeps NULL: CONFIG_OK or CONFIG_ERR_NOMEM. */
int config__dup_str(const char *s, char **out);
/* Copies an absolute path (value NULL: nothing); a relative one is an error naming
 * the node map[key]. */
int config__take_path(struct config_ctx *c, const struct yconf_node *map, const char *key,
                      const char *value, char **out);
/* A PKCS#11 URI (is_key: must name an object) checked and copied into *out. */
int config__take_uri(struct config_ctx *c, const struct yconf_node *n, const char *what,
                     const char *value, int is_key, char **out);
/* A zone name: absolute, lowercased, LDH-ish labels of 1..63 bytes, at most 253
 * chars. 1 if valid. */
int config__zone_name_check(const char *s);
/* Frees n strings and the array. */
void config__free_strs(char **v, size_t n);

/* config_sandbox.c: the hsm and sandbox sections, and what the latter allocated. */
int config__read_hsm(struct config_ctx *c, const struct yconf_node *hsm);
int config__read_sandbox(struct config_ctx *c, const struct yconf_node *s);
void config__sandbox_free(struct config *cfg);

/* config_dns.c: the dns section. */
int config__read_dns(struct config_ctx *c, const struct yconf_node *d);

#endif
