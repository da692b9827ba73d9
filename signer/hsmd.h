/**
 * @file hsmd.h
 * @brief The HSM process: the only process of regsignd that loads the PKCS#11 module.
 *
 * regsignd runs it when started as `regsignd --hsm-process --fd N -c regsignd.yaml`
 * (hsmlink_spawn does that). It reads the configuration, sets hsm.environment in its own
 * environment, opens the module and the token (the PIN from hsm.pin-file), finds every
 * configured key, reads the issuing CA certificate and the registry zone name (from the
 * policy file) for its hard limits, and says HELLO on fd N. Then it answers requests
 * (hsmproto.h) with hsm.sessions worker threads, each signing with its own PKCS#11
 * session; it hashes every item itself and checks it against the per-role hard limits
 * (hsmlimits.h) before signing.
 *
 * Once logged in, and before it starts any thread, it applies the HSM profile of the
 * sandbox (signer/sandbox.h) built from the configuration, unless sandbox.enabled is
 * false. A watchdog thread ends the process with _exit(HSMD_EXIT_WATCHDOG) when one
 * PKCS#11 call runs longer than hsm.call-timeout; start-up is bounded by alarm(2).
 *
 * It ignores SIGPIPE and returns when fd N is closed by the front process (or a write to
 * it fails); if a worker is then still inside a PKCS#11 call after a short grace time,
 * it _exits instead of waiting for it. It never reads stdin; it writes diagnostics to stderr only when it cannot
 * tell the front (before or instead of HELLO).
 */
#ifndef REGSIGN_SIGNER_HSMD_H
#define REGSIGN_SIGNER_HSMD_H

/**
 * Exit status of an HSM process whose watchdog found a PKCS#11 call running longer than
 * hsm.call-timeout (a wedged module). The front logs and audits it, then exits so that
 * its supervisor restarts both processes.
 */
#define HSMD_EXIT_WATCHDOG 3

/** Option that selects HSM mode on the daemon's command line. */
#define HSMD_OPTION "--hsm-process"

/**
 * Runs the HSM process on an already open socket until the front closes it.
 * @param fd           the HSM process's end of the socketpair (closed on return)
 * @param config_path  regsignd.yaml
 * @param module_dirs  extra allowed module directories (NULL-terminated) or NULL
 * @return a process exit status: 0 when the front closed the socket, 1 on failure
 *         (bad configuration, HSM or key refused, protocol error from the front).
 */
int hsmd_run(int fd, const char *config_path, const char *const *module_dirs);

/**
 * Parses `--hsm-process --fd N -c PATH [--module-dir DIR]...` and calls hsmd_run.
 * argv[0] is the program name; argv[1] must be "--hsm-process".
 * @return a process exit status (2 for a bad command line).
 */
int hsmd_main(int argc, char **argv);

#endif
