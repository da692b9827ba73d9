/*
 * Test-only hook programs for the sandbox (tests/sandbox/hook_front.c,
 * hook_hsm.c): each applies the same sandbox as its regsignd process, built
 * from its command line, then does one thing it is told to and reports how
 * that went through its exit status:
 *
 *   exit 0               the call succeeded
 *   exit HOOK_EXIT_DENIED  it failed with EACCES or EPERM (Landlock, or a user change)
 *   exit HOOK_EXIT_ERRNO   it failed with another errno (printed on stderr)
 *   exit HOOK_EXIT_SETUP   usage error, or the sandbox itself failed
 *   exit HOOK_EXIT_CHECK   the ids or status action found something not as it should be
 *   killed by SIGSYS      the seccomp filter refused a syscall
 *
 * Command line: hook_<profile> [--off] [--user NAME] [--ro PATH]... [--rw PATH]...
 *               [--net unix|inet|both] [--config regsignd.yaml] ACTION [ARG...]
 * --off skips sandbox_apply() (the control run); --config adds what
 * sandbox_config_paths() derives from a daemon configuration.
 */
#ifndef REGSIGN_TESTS_SANDBOX_HOOK_H
#define REGSIGN_TESTS_SANDBOX_HOOK_H

#include "signer/sandbox.h"

#define HOOK_EXIT_DENIED 3
#define HOOK_EXIT_ERRNO 4
#define HOOK_EXIT_SETUP 5
#define HOOK_EXIT_CHECK 6 /* a status check (ids, status) did not hold */

/* A profile's own actions: returns an exit status, or -1 for "not mine". */
typedef int (*hook_action_fn)(const char *action, int argc, char **argv);

/*
 * Parses the options, applies the sandbox of @p profile (unless --off) and runs
 * the action: the shared attacks of hook.c first, then @p own.
 */
int hook_main(int argc, char **argv, enum sandbox_profile profile, hook_action_fn own);

/* Exit status for a failed call with errno @p err, after printing @p what. */
int hook_errno(const char *what, int err);

#endif
