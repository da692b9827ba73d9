/*
 * regsignd.c - the daemon's main, in both its modes.
 *
 * `regsignd -c regsignd.yaml` is the front process: it starts the HSM process
 * (this binary again, `--hsm-process`, over a socketpair) before anything
 * else, then reads the policy and the CA certificates, opens the store and the
 * audit log, and waits for the HSM process's HELLO. It checks that the issuing
 * CA certificate's public key is the HSM's issuing-ca key, loads the registry
 * zone from the store and starts its DNS listener (signer/ops_zone.h), records "start",
 * writes a first signed checkpoint, and only then opens the signing socket: the
 * socket's presence means the daemon is ready.
 *
 * Signals: SIGTERM/SIGINT finish the requests in flight, record "stop" and a
 * final checkpoint, and exit 0. SIGUSR1 writes the zone file now. SIGHUP
 * reloads the policy; a file that does
 * not load (or changes the registry zone, which the HSM process's limits are
 * built on) is refused, the old policy stays, and either way it is logged and
 * audited. If the HSM process dies, requests in flight get UNAVAILABLE and the
 * daemon exits 1 for its supervisor to restart both processes; so it does if
 * the store fails in a way that leaves the disk state unknown.
 *
 * Sandbox (signer/sandbox.h): the front locks itself down in ctx_open, once the
 * HSM process is spawned (so no execve is needed later), the configuration,
 * policy and CA certificates are read, the store and audit log are open and
 * so is the PM QoS device when cpu-latency is on (signer/cpu_latency.h),
 * and before its first thread (the writer) starts, because Landlock only
 * restricts the thread that applies it and what it starts afterwards. The
 * signing socket and the DNS listener are bound later, when the HSM process
 * says HELLO and has given its keys: the front profile allows bind/listen and
 * Landlock lets the socket be made in its own directory; TSIG secrets are read
 * then too, from files the sandbox allows. Started as root, the front becomes
 * sandbox.front.user, keeping CAP_NET_BIND_SERVICE alone when a DNS listener
 * port is below 1024 (docs/CONFIG.md). The HSM process applies its own, narrower profile
 * (signer/hsmd.c). A failure to apply it is fatal unless sandbox.enabled is
 * false; sanitizer builds compile the filters off and say so once.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "signer/hsmd.h"
#include "signer/ops_ctx.h"
#include "signer/ops_zone.h"
#include "signer/sandbox.h"
#include "signer/x509.h"

/* Default interval of periodic audit checkpoints. */
#define CHECKPOINT_SECONDS 300

static void
usage(FILE *f)
{
	fprintf(f, "usage: regsignd -c regsignd.yaml [--syslog] [--module-dir DIR]...\n"
		   "                [--checkpoint-interval SECONDS]\n"
		   "       regsignd " HSMD_OPTION " --fd N -c regsignd.yaml [--module-dir DIR]...\n");
}

/* ---- certificates ---- */

static int
load_cert(const char *path, X509 **out, uint8_t **der, size_t *len)
{
	BIO *b = BIO_new_file(path, "r");
	X509 *x = NULL;
	unsigned char *d = NULL;
	int n;

	if (b == NULL)
		return -1;
	x = PEM_read_bio_X509(b, NULL, NULL, NULL);
	BIO_free(b);
	if (x == NULL || (n = i2d_X509(x, &d)) <= 0) {
		X509_free(x);
		return -1;
	}
	/* Fill OpenSSL's cached extension data now, while one thread uses it. */
	(void)X509_get_extension_flags(x);
	*out = x;
	*der = d;
	*len = (size_t)n;
	return 0;
}

/* ---- sandbox and HSM process death ---- */

/*
 * Applies the front profile. @return 0, or -1 after logging why (the daemon
 * then exits: running with less protection than configured is refused).
 */
static int
front_lockdown(struct ops_ctx *ctx, const char *config_path)
{
	sandbox_t *sb = NULL;
	char why[256] = "";
	int e;

	if (!ctx->cfg->sandbox.enabled) {
		ops_log(ctx, OPS_LOG_WARNING, "sandbox disabled by the configuration "
			"(sandbox.enabled: false): both processes run unconfined");
		return 0;
	}
	if (!sandbox_filters_enabled())
		ops_log(ctx, OPS_LOG_NOTICE, "sanitizer build: the sandbox's Landlock and "
			"seccomp filters are compiled off; only the user change and "
			"NO_NEW_PRIVS apply");
	if (geteuid() == 0 && ctx->cfg->sandbox.front.user == NULL)
		ops_log(ctx, OPS_LOG_WARNING, "running as root without sandbox.front.user: "
			"the front process keeps root's identity");
	e = sandbox_from_config(SANDBOX_PROFILE_FRONT, ctx->cfg, config_path, NULL, &sb);
	if (e == SANDBOX_OK)
		e = sandbox_apply(sb, why, sizeof(why));
	sandbox_free(sb);
	if (e != SANDBOX_OK) {
		ops_log(ctx, OPS_LOG_ERR, "cannot apply the sandbox: %s%s%s (set "
			"sandbox.enabled: false to run without it)", sandbox_strerror(e),
			why[0] ? ": " : "", why);
		return -1;
	}
	ops_log(ctx, OPS_LOG_INFO, "sandbox applied to the front process (uid %u, gid %u)",
		(unsigned)getuid(), (unsigned)getgid());
	return 0;
}

/*
 * The HSM process ended: say precisely why (a watchdog exit is a wedged
 * PKCS#11 module, not a crash) in the log and, when serving, in the audit log,
 * then leave the rest (hsm-lost, exit 1) to ops_life.
 */
static void
hsm_death(hsmlink_t *link, int64_t exit_status, int term_signal, void *arg)
{
	struct ops_ctx *ctx = arg;
	char why[256];

	if (term_signal != 0)
		snprintf(why, sizeof(why), "HSM process killed by signal %d (%s)", term_signal,
			 strsignal(term_signal));
	else if (exit_status == HSMD_EXIT_WATCHDOG)
		snprintf(why, sizeof(why), "HSM process ended by its watchdog: a PKCS#11 call "
			 "ran longer than hsm.call-timeout (%u s); the module is wedged",
			 ctx->cfg->hsm.call_timeout_ms / 1000);
	else
		snprintf(why, sizeof(why), "HSM process exited with status %lld",
			 (long long)exit_status);
	if (!ctx->closed)
		ops_log(ctx, OPS_LOG_ERR, "%s", why);
	if (exit_status == HSMD_EXIT_WATCHDOG && term_signal == 0 && ctx->ready && !ctx->closed)
		ops_event(ctx, "hsm-watchdog", why, NULL);
	ops_life_hsm_death(link, exit_status, term_signal, arg);
}

/*
 * cpu-latency: the device is root's and outside the front's paths, so it is
 * opened here, before the sandbox. Not being able to is logged and the
 * daemon goes on without it: it changes latency, never what is signed.
 */
static void
cpu_latency_start(struct ops_ctx *ctx)
{
	const struct config *cfg = ctx->cfg;
	int e;

	if (!cfg->cpu_latency.enabled)
		return;
	e = cpu_latency_open(ctx->loop, CPU_LATENCY_DEVICE, (int32_t)cfg->cpu_latency.limit_us,
			     (uint64_t)cfg->cpu_latency.hold_s * 1000, &ctx->cpu_latency);
	if (e != 0)
		ops_log(ctx, OPS_LOG_WARNING, "cpu-latency: cannot open %s: %s; requests run "
			"without a wake-up latency limit", CPU_LATENCY_DEVICE, strerror(-e));
	else
		ops_log(ctx, OPS_LOG_INFO, "cpu-latency: CPU wake-up latency limited to %u us "
			"while requests are in, and for %u s after the last",
			cfg->cpu_latency.limit_us, cfg->cpu_latency.hold_s);
}

/* ---- main ---- */

static int
ctx_open(struct ops_ctx *ctx, const char *config_path)
{
	struct hsmlink_options ho;
	struct policy *pol = NULL;
	struct audit_opts ao;
	struct audit_open_report rep;
	char err[512];
	int e;

	/* The HSM process first: it loads the module and logs in meanwhile. */
	memset(&ho, 0, sizeof(ho));
	ho.exe_path = ctx->exe_path;
	ho.config_path = config_path;
	ho.module_dirs = ctx->module_dirs;
	ho.ready_cb = ops_life_hsm_ready;
	ho.death_cb = hsm_death;
	ho.arg = ctx;
	if ((e = hsmlink_spawn(ctx->loop, &ho, &ctx->hsm)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "cannot start the HSM process: %s", hsmlink_strerror(e));
		return -1;
	}
	if (policy_load(ctx->cfg->policy, &pol, err, sizeof(err)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "policy refused: %s", err);
		return -1;
	}
	if (ops_policy_install(ctx, pol) != 0) {
		policy_free(pol);
		return -1;
	}
	if (load_cert(ctx->cfg->ca.issuing_certificate, &ctx->issuing, &ctx->chain_der[0],
		      &ctx->chain_len[0]) != 0 ||
	    load_cert(ctx->cfg->ca.root_certificate, &ctx->root, &ctx->chain_der[1],
		      &ctx->chain_len[1]) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "cannot read the CA certificates %s and %s",
			ctx->cfg->ca.issuing_certificate, ctx->cfg->ca.root_certificate);
		return -1;
	}
	ctx->issuing_key = X509_get0_pubkey(ctx->issuing);
	if (ctx->issuing_key == NULL)
		return -1;
	if ((e = x509_verifier_new(ctx->issuing_key, &ctx->issuing_verifier)) != X509_OK) {
		ops_log(ctx, OPS_LOG_ERR, "issuing CA key %s: %s",
			ctx->cfg->ca.issuing_certificate, x509_strerror(e));
		return -1;
	}
	if ((e = store_open(&ctx->writer.st, ctx->cfg->state.database, NULL)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "state database %s: %s", ctx->cfg->state.database,
			store_strerror(e));
		return -1;
	}
	memset(&ao, 0, sizeof(ao));
	ao.path = ctx->cfg->state.audit_log;
	if ((e = audit_log_open(&ctx->writer.audit, ctx->writer.st, &ao, &rep)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "audit log %s: %s", ao.path, audit_strerror(e));
		return -1;
	}
	if (rep.abandoned || rep.reexported || rep.torn_bytes)
		ops_log(ctx, OPS_LOG_WARNING, "audit log repaired: %llu intents abandoned, %llu "
			"records re-exported, %llu torn bytes cut", (unsigned long long)rep.abandoned,
			(unsigned long long)rep.reexported, (unsigned long long)rep.torn_bytes);
	ctx->writer.ctx = ctx;
	cpu_latency_start(ctx);
	/* Everything that needs privileges or paths outside the front's own is
	 * done, and no thread exists yet: lock down now. */
	if (front_lockdown(ctx, config_path) != 0)
		return -1;
	if (commit_new(ctx->loop, ctx->writer.st, &ctx->writer, ops_life_store_fatal, ctx,
		       &ctx->commit) != 0 ||
	    ops_checkpoint_init(ctx) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "cannot start the writer thread");
		return -1;
	}
	/* The first CRL after a start is always signed anew (see ops_crl.c). */
	ctx->crl.gen = 1;
	return 0;
}

static void
ctx_free(struct ops_ctx *ctx)
{
	ops_zone_free(ctx);
	ops_policy_unref(ctx->policy);
	ops_buckets_free(ctx);
	x509_verifier_free(ctx->issuing_verifier);
	X509_free(ctx->issuing);
	X509_free(ctx->root);
	OPENSSL_free(ctx->chain_der[0]);
	OPENSSL_free(ctx->chain_der[1]);
	audit_log_close(ctx->writer.audit);
	store_close(ctx->writer.st);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "syslog", no_argument, NULL, 's' },
		{ "module-dir", required_argument, NULL, 'm' },
		{ "checkpoint-interval", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ops_ctx ctx;
	struct config *cfg = NULL;
	struct config_load_opts copts;
	const char **dirs = NULL;
	const char *config_path = NULL;
	char *err = NULL, exe[PATH_MAX], cfg_abs[PATH_MAX];
	uv_loop_t loop;
	size_t n_dirs = 0;
	long interval = CHECKPOINT_SECONDS;
	int opt, syslog_opt = 0, r = 1;

	if (argc >= 2 && strcmp(argv[1], HSMD_OPTION) == 0)
		return hsmd_main(argc, argv);
	if ((dirs = calloc((size_t)argc + 1, sizeof(*dirs))) == NULL)
		return 1;
	while ((opt = getopt_long(argc, argv, "c:h", longopts, NULL)) != -1) {
		switch (opt) {
		case 'c': config_path = optarg; break;
		case 's': syslog_opt = 1; break;
		case 'm': dirs[n_dirs++] = optarg; break;
		case 'i': {
			char *end;

			interval = strtol(optarg, &end, 10);
			if (*end || interval < 1 || interval > 86400) {
				fprintf(stderr, "regsignd: --checkpoint-interval: 1 to 86400 seconds\n");
				free(dirs);
				return 2;
			}
			break;
		}
		case 'h': usage(stdout); free(dirs); return 0;
		default: usage(stderr); free(dirs); return 2;
		}
	}
	if (config_path == NULL || optind != argc) {
		usage(stderr);
		free(dirs);
		return 2;
	}
	/* A write to a dead peer (client or HSM process) must fail, not kill. */
	signal(SIGPIPE, SIG_IGN);
	memset(&copts, 0, sizeof(copts));
	copts.module_dirs = dirs;
	if (config_load(config_path, &copts, &cfg, &err) != 0) {
		fprintf(stderr, "regsignd: %s\n", err ? err : "cannot load the configuration");
		free(err);
		free(dirs);
		return 1;
	}
	if (realpath("/proc/self/exe", exe) == NULL || realpath(config_path, cfg_abs) == NULL) {
		fprintf(stderr, "regsignd: cannot resolve %s: %s\n", config_path, strerror(errno));
		config_free(cfg);
		free(dirs);
		return 1;
	}
	memset(&ctx, 0, sizeof(ctx));
	ctx.loop = &loop;
	ctx.cfg = cfg;
	ctx.exe_path = exe;
	ctx.module_dirs = dirs;
	ctx.log_syslog = syslog_opt || cfg->log.syslog;
	ctx.log_level = cfg->log.level == CONFIG_LOG_DEBUG ? OPS_LOG_DEBUG
		      : cfg->log.level == CONFIG_LOG_INFO ? OPS_LOG_INFO
		      : cfg->log.level == CONFIG_LOG_NOTICE ? OPS_LOG_NOTICE
		      : cfg->log.level == CONFIG_LOG_WARNING ? OPS_LOG_WARNING : OPS_LOG_ERR;
	ctx.checkpoint_ms = (uint64_t)interval * 1000;
	ctx.started = (int64_t)time(NULL);
	if (ctx.log_syslog)
		openlog("regsignd", LOG_PID, LOG_DAEMON);
	if (uv_loop_init(&loop) != 0) {
		config_free(cfg);
		free(dirs);
		return 1;
	}
	ctx.started_ms = uv_now(&loop);
	uv_timer_init(&loop, &ctx.cp_timer);
	uv_timer_init(&loop, &ctx.hsm_timer);
	uv_timer_init(&loop, &ctx.finish_timer);
	ctx.cp_timer.data = ctx.hsm_timer.data = ctx.finish_timer.data = &ctx;
	uv_signal_init(&loop, &ctx.sig_term);
	uv_signal_init(&loop, &ctx.sig_int);
	uv_signal_init(&loop, &ctx.sig_hup);
	uv_signal_init(&loop, &ctx.sig_usr1);
	ctx.sig_term.data = ctx.sig_int.data = ctx.sig_hup.data = ctx.sig_usr1.data = &ctx;
	uv_signal_start(&ctx.sig_term, ops_life_signal, SIGTERM);
	uv_signal_start(&ctx.sig_int, ops_life_signal, SIGINT);
	uv_signal_start(&ctx.sig_hup, ops_reload_sighup, SIGHUP);
	uv_signal_start(&ctx.sig_usr1, ops_zone_sigusr1, SIGUSR1);
	ops_log(&ctx, OPS_LOG_NOTICE, "%s starting with %s", OPS_SERVER_NAME, cfg_abs);

	if (ctx_open(&ctx, cfg_abs) != 0) {
		ctx.exit_code = 1;
		if (ctx.commit == NULL) {
			/* No writer yet: close what exists by hand. */
			ctx.closed = 1;
			hsmlink_close(ctx.hsm, ops_life_hsm_closed, &ctx);
			cpu_latency_close(ctx.cpu_latency);
			ctx.cpu_latency = NULL;
			uv_close((uv_handle_t *)&ctx.cp_timer, NULL);
			uv_close((uv_handle_t *)&ctx.hsm_timer, NULL);
			uv_close((uv_handle_t *)&ctx.finish_timer, NULL);
			uv_close((uv_handle_t *)&ctx.sig_term, NULL);
			uv_close((uv_handle_t *)&ctx.sig_int, NULL);
			uv_close((uv_handle_t *)&ctx.sig_hup, NULL);
			uv_close((uv_handle_t *)&ctx.sig_usr1, NULL);
		} else {
			ops_die(&ctx, 1, "start-up failed");
		}
	}
	uv_run(&loop, UV_RUN_DEFAULT);
	r = ctx.exit_code;
	ctx_free(&ctx);
	if (uv_loop_close(&loop) != 0)
		ops_log(&ctx, OPS_LOG_WARNING, "libuv handles left open at exit");
	config_free(cfg);
	free(dirs);
	return r;
}

