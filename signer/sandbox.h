/**
 * @file sandbox.h
 * @brief libregsign-sandbox: locks down regsignd's two processes once they are set up.
 *
 * Each process of regsignd (the front and the HSM process) describes what it still
 * needs, then calls sandbox_apply() once, while it is still single-threaded and before it
 * reads anything from outside. sandbox_apply() does, in this order:
 *
 *  1. when the process runs as root and a user was given: setgroups() to the one group,
 *     setresgid(), setresuid(), then verifies that no id and no supplementary group of
 *     root is left and that setuid(0) fails;
 *  2. RLIMIT_CORE 0 and PR_SET_DUMPABLE 0 (no core file, no ptrace by others, no
 *     /proc/PID/mem), after the user change because that resets the dumpable flag;
 *  3. PR_SET_NO_NEW_PRIVS, so that nothing executed later gains privileges;
 *  4. Landlock (raw syscalls, ABI 1 or 2): files only under the paths added with
 *     sandbox_path_add() and a small built-in base (shared libraries, the dynamic loader's
 *     cache, time zones, OpenSSL's configuration, /dev/null, /dev/urandom), read-only or
 *     read-write as added; never execute;
 *  5. a seccomp allow-list (libseccomp) whose default kills the whole process with SIGSYS
 *     (SCMP_ACT_KILL_PROCESS). clone3 is answered ENOSYS so that glibc falls back to
 *     clone, which is allowed only for threads (CLONE_THREAD), never for a new process.
 *
 * Two profiles, each a table of syscalls in sandbox.c:
 *  - SANDBOX_PROFILE_FRONT: Unix, IPv4 and IPv6 sockets (listen, accept, connect: the
 *    signing socket, the DNS listener, NOTIFY), files in its directories, waiting for
 *    and signalling its child.
 *  - SANDBOX_PROFILE_HSM: no socket may be bound, listened on or accepted; no execve, no
 *    fork; new sockets only as sandbox_net_allow() says (a Unix socket for
 *    p11-kit-client, TCP for a network HSM), and then only to connect out. File access
 *    comes from the paths the configured PKCS#11 module needs (token directory,
 *    configuration), added by the caller.
 *
 * Sanitizer builds (REGSIGN_SANITIZE) keep steps 1 and 3 but skip 2, 4 and 5:
 * LeakSanitizer stops the world with ptrace and ASan reads /proc/self/maps at exit.
 * sandbox_filters_enabled() tells which build this is, so the daemon can say so.
 *
 * The library never prints and never exits. Errors are the negative values of enum
 * sandbox_err; sandbox_apply() also writes one English line into a caller's buffer. A
 * failure of sandbox_apply() may leave the process half restricted: the caller must exit.
 *
 * Example (HSM process, after reading its configuration):
 * @code
 *   sandbox_t *sb = NULL;
 *   char why[256];
 *   int r = sandbox_new(SANDBOX_PROFILE_HSM, &sb);
 *   if (r == 0) r = sandbox_user_set(sb, "regsign-hsm", NULL);
 *   if (r == 0) r = sandbox_path_add(sb, "/var/lib/softhsm/tokens", SANDBOX_WRITE);
 *   if (r == 0) r = sandbox_path_add(sb, "/etc/regsign", SANDBOX_READ);
 *   if (r == 0) r = sandbox_apply(sb, why, sizeof(why));
 *   sandbox_free(sb);
 *   if (r != 0) { fprintf(stderr, "sandbox: %s\n", why); exit(1); }
 * @endcode
 */
#ifndef REGSIGN_SIGNER_SANDBOX_H
#define REGSIGN_SIGNER_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>

/** Errors: 0 is success, every error is negative. */
enum sandbox_err {
	SANDBOX_OK = 0,
	SANDBOX_ERR_ARG = -1,         /**< bad argument (NULL, relative path, unknown flag) */
	SANDBOX_ERR_NOMEM = -2,       /**< out of memory */
	SANDBOX_ERR_USER = -3,        /**< no such user or group */
	SANDBOX_ERR_PRIVDROP = -4,    /**< changing or verifying the user or groups failed */
	SANDBOX_ERR_LIMITS = -5,      /**< RLIMIT_CORE, PR_SET_DUMPABLE or NO_NEW_PRIVS failed */
	SANDBOX_ERR_PATH = -6,        /**< a path given to sandbox_path_add() cannot be opened */
	SANDBOX_ERR_LANDLOCK = -7,    /**< Landlock missing, disabled or refused a rule */
	SANDBOX_ERR_SECCOMP = -8,     /**< building or loading the seccomp filter failed */
	SANDBOX_ERR_THREADS = -9,     /**< the process already has more than one thread */
	SANDBOX_ERR_APPLIED = -10,    /**< sandbox_apply() was already called on this handle */
	SANDBOX_ERR_MODULE_PATH = -11, /**< PKCS#11 module path outside the allow-list */
};

/** A static English message for an enum sandbox_err value (unknown values included). */
const char *sandbox_strerror(int err);

/** Which process is being locked down; each has its own syscall table. */
enum sandbox_profile {
	SANDBOX_PROFILE_FRONT = 0,
	SANDBOX_PROFILE_HSM = 1,
};

/** Access to a path and everything beneath it. */
enum sandbox_access {
	SANDBOX_READ = 1,  /**< open files for reading, list directories */
	SANDBOX_WRITE = 2, /**< SANDBOX_READ plus write, create, remove, rename; a socket may
	                        be bound there (front profile) */
};

/** Outgoing connections the HSM profile may make (bits for sandbox_net_allow()). */
enum sandbox_net {
	SANDBOX_NET_UNIX = 1u << 0, /**< connect a Unix socket (p11-kit-client) */
	SANDBOX_NET_INET = 1u << 1, /**< connect TCP/UDP over IPv4 or IPv6 (network HSM) */
};

/** Options (bits for sandbox_options_set()). */
enum sandbox_option {
	/**
	 * Run without Landlock when the kernel lacks it or has it disabled (seccomp still
	 * applies). Without this option a missing Landlock is SANDBOX_ERR_LANDLOCK: the
	 * daemon refuses to run with less protection than it was configured for.
	 */
	SANDBOX_LANDLOCK_BEST_EFFORT = 1u << 0,
	/**
	 * When the user changes, keep CAP_NET_BIND_SERVICE (and only it) in the effective
	 * and permitted sets, so that a DNS listener bound after the change can still take
	 * a port below 1024. Front profile only; SANDBOX_ERR_ARG for the HSM profile.
	 */
	SANDBOX_KEEP_NET_BIND = 1u << 1,
};

typedef struct sandbox sandbox_t;

/**
 * A new, empty description for @p profile. *@p out is the caller's, freed with
 * sandbox_free(). Errors: SANDBOX_ERR_ARG, SANDBOX_ERR_NOMEM.
 */
int sandbox_new(enum sandbox_profile profile, sandbox_t **out);

/** Frees a description (it does not undo an applied sandbox). NULL is a no-op. */
void sandbox_free(sandbox_t *sb);

/**
 * The user (and group) to become when the process runs as root. @p group NULL means the
 * user's primary group; supplementary groups become exactly that one group. Names are
 * resolved now, while /etc/passwd is still readable. Without this call, or when the
 * process does not run as root, the ids are left as they are.
 * Errors: SANDBOX_ERR_ARG, SANDBOX_ERR_USER (unknown name), SANDBOX_ERR_NOMEM.
 */
int sandbox_user_set(sandbox_t *sb, const char *user, const char *group);

/**
 * Allows @p path (absolute; a directory with everything beneath it, or one file) with
 * @p access. The path is opened at sandbox_apply(), so it must exist by then. The same
 * path may be added twice; the accesses add up. Errors: SANDBOX_ERR_ARG (relative path,
 * bad access), SANDBOX_ERR_NOMEM.
 */
int sandbox_path_add(sandbox_t *sb, const char *path, enum sandbox_access access);

/**
 * Lets the HSM profile create sockets to connect out (@p flags: enum sandbox_net bits).
 * The front profile always has Unix and inet sockets; setting flags on it is
 * SANDBOX_ERR_ARG. Errors: SANDBOX_ERR_ARG.
 */
int sandbox_net_allow(sandbox_t *sb, unsigned flags);

/** Sets enum sandbox_option bits. Errors: SANDBOX_ERR_ARG (unknown bit). */
int sandbox_options_set(sandbox_t *sb, unsigned options);

/**
 * Applies everything described above to the calling process. Must be called while the
 * process has exactly one thread (Landlock restricts only the calling thread; threads
 * started later inherit everything). Call it at most once per handle.
 * @param detail  receives one line saying what failed (may be NULL)
 * Errors: SANDBOX_ERR_ARG, SANDBOX_ERR_APPLIED, SANDBOX_ERR_THREADS, SANDBOX_ERR_PRIVDROP,
 * SANDBOX_ERR_LIMITS, SANDBOX_ERR_PATH, SANDBOX_ERR_LANDLOCK, SANDBOX_ERR_SECCOMP,
 * SANDBOX_ERR_NOMEM. After an error the process may be partly restricted: exit.
 */
int sandbox_apply(sandbox_t *sb, char *detail, size_t detail_size);

struct config;

/**
 * Adds what the configuration @p cfg (loaded from @p config_path, absolute) says the
 * handle's process needs, for the daemon to call before sandbox_apply():
 *  - both profiles: read @p config_path, the policy file and both CA certificates;
 *    FRONT also the policy's directory (SIGHUP reads a file that may have been
 *    replaced by rename, and a Landlock rule on a file follows its inode);
 *  - FRONT: read-write the directories of socket.path, state.database, state.audit_log
 *    and state.zone_file (files are created next to each); read the TSIG secret files;
 *  - HSM: read hsm.pin-file and its directory (read again at each login) and the
 *    module's directory; read the directory of every hsm.environment value that is an
 *    absolute path (skipped when missing at apply time); with SOFTHSM2_CONF, read-write the
 *    "directories.tokendir" its file names; with P11_KIT_SERVER_ADDRESS=unix:..., allow
 *    connecting Unix sockets (sandbox_net_allow). A network HSM needs
 *    sandbox_net_allow(SANDBOX_NET_INET) and any other path of its module by hand;
 *  - both: the extra paths of the sandbox section (sandbox.front / sandbox.hsm read and
 *    write), and for the HSM its connect allowances.
 * Available when libregsign-config is built (it is whenever the daemon is).
 * Errors: SANDBOX_ERR_ARG, SANDBOX_ERR_NOMEM.
 */
int sandbox_config_paths(sandbox_t *sb, const struct config *cfg, const char *config_path);

/**
 * A description of @p profile built from the configuration, ready for sandbox_apply():
 * the user and group of sandbox.front or sandbox.hsm (when set), the paths of
 * sandbox_config_paths(), the extra read/write paths and (HSM) connect allowances of
 * the sandbox section, the @p module_dirs (HSM; NULL-terminated, may be NULL) read-only;
 * when the module itself lies under one of @p module_dirs (a development or test module
 * allowed on the command line), the directories of its absolute environment paths
 * read-write;
 * and sandbox.landlock: best-effort as SANDBOX_LANDLOCK_BEST_EFFORT; for the front,
 * SANDBOX_KEEP_NET_BIND when a dns.listen port is below 1024. Whether the
 * sandbox is enabled at all is the caller's decision (cfg->sandbox.enabled).
 * *@p out is the caller's, freed with sandbox_free().
 * Errors: SANDBOX_ERR_ARG, SANDBOX_ERR_USER (unknown user or group), SANDBOX_ERR_NOMEM.
 */
int sandbox_from_config(enum sandbox_profile profile, const struct config *cfg,
			const char *config_path, const char *const *module_dirs,
			sandbox_t **out);

/**
 * Whether this build installs the Landlock and seccomp filters (false in sanitizer
 * builds, where sandbox_apply() only changes the user and sets NO_NEW_PRIVS).
 */
bool sandbox_filters_enabled(void);

/**
 * Whether the PKCS#11 module at @p path may be loaded: its real path (realpath(3), so
 * every symbolic link and ".." is resolved) must be a regular file, not writable by
 * group or others, equal to an entry of @p allowlist or beneath one (entries are
 * directories or files, resolved with realpath too; entries that do not exist are
 * skipped). Load the module by the path given back in @p resolved, not by @p path, so
 * that a link changed after the check cannot redirect the load.
 * @param allowlist  NULL-terminated list of absolute paths
 * @param resolved   receives the real path (may be NULL); PATH_MAX bytes suffice
 * @return SANDBOX_OK when allowed; SANDBOX_ERR_MODULE_PATH when not (or when @p path
 *         does not resolve); SANDBOX_ERR_ARG for NULL or relative arguments or a
 *         @p resolved buffer too small.
 */
int sandbox_module_path_allowed(const char *path, const char *const *allowlist,
				char *resolved, size_t resolved_size);

#endif /* REGSIGN_SIGNER_SANDBOX_H */
