/*
 * sandbox_int.h - internals of libregsign-sandbox shared by sandbox.c (handle, user
 * change, limits, module paths), sandbox_landlock.c and sandbox_seccomp.c. Not installed,
 * not for other modules.
 */
#ifndef REGSIGN_SIGNER_SANDBOX_INT_H
#define REGSIGN_SIGNER_SANDBOX_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "signer/sandbox.h"

/** One path of the Landlock rule set. */
struct sandbox_path {
	char *path;
	unsigned access;  /**< enum sandbox_access bits */
	bool optional;    /**< built-in base path: skipped when missing */
};

struct sandbox {
	enum sandbox_profile profile;
	bool has_user;
	uid_t uid;
	gid_t gid;
	struct sandbox_path *paths;
	size_t n_paths, cap_paths;
	unsigned net;     /**< enum sandbox_net bits (HSM profile) */
	unsigned options; /**< enum sandbox_option bits */
	bool applied;
};

/** Writes "what: reason" into @p detail (if not NULL) and returns @p err. */
int sandbox__fail(int err, char *detail, size_t size, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/** Adds a path entry (shared by sandbox_path_add and the built-in base). */
int sandbox__path_push(struct sandbox *sb, const char *path, unsigned access,
		       bool optional);

/**
 * Builds the Landlock rule set of sb->paths, opening each path now: called
 * before the change of user, so that paths only root may open (a directory of
 * mode 0700 on the way) can still be allowed. *@p ruleset_out receives the rule
 * set's descriptor (the caller closes it), or -1 when the kernel has no usable
 * Landlock and SANDBOX_LANDLOCK_BEST_EFFORT is set.
 * Errors: SANDBOX_ERR_LANDLOCK, SANDBOX_ERR_PATH.
 */
int sandbox__landlock_prepare(const struct sandbox *sb, int *ruleset_out, char *detail,
			      size_t size);

/**
 * Restricts the calling thread (and what it starts later) to the rule set
 * (NO_NEW_PRIVS must be set). A negative @p ruleset does nothing.
 * Errors: SANDBOX_ERR_LANDLOCK.
 */
int sandbox__landlock_restrict(int ruleset, char *detail, size_t size);

/** Builds and loads the profile's seccomp filter. Errors: SANDBOX_ERR_SECCOMP, _NOMEM. */
int sandbox__seccomp_apply(const struct sandbox *sb, char *detail, size_t size);

#endif /* REGSIGN_SIGNER_SANDBOX_INT_H */
