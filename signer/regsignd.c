/*
 * regsignd.c - the daemon's main, in both its modes.
 *
 * `regsignd -c regsignd.yaml` is the front process: it starts the HSM process
 * (this binary again, `--hsm-process`, over a socketpair) before anything
 * else, then reads the policy and the CA certificates, opens the store and the
 * audit log, and waits for the HSM process's HELLO. It checks that the issuing
 * CA certificate's public key is the HSM's issuing-ca key, records "start",
 * writes a first signed checkpoint, and only then opens the signing socket: the
 * socket's presence means the daemon is ready.
 *
 * Signals: SIGTERM/SIGINT finish the requests in flight, record "stop" and a
 * final checkpoint, and exit 0. SIGHUP reloads the policy; a file that does
 * not load (or changes the registry zone, which the HSM process's limits are
 * built on) is refused, the old policy stays, and either way it is logged and
 * audited. If the HSM process dies, requests in flight get UNAVAILABLE and the
 * daemon exits 1 for its supervisor to restart both processes; so it does if
 * the store fails in a way that leaves the disk state unknown.
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

/* Default interval of periodic audit checkpoints. */
#define CHECKPOINT_SECONDS 300
/* How often the HSM's state is polled for lost/recovered events. */
#define HSM_POLL_MS 2000

static void shutdown_begin(struct ops_ctx *ctx);

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

/* ---- lifecycle ---- */

static void
hsm_closed(void *arg)
{
	(void)arg;
}

static void
server_closed(void *arg)
{
	struct ops_ctx *ctx = arg;

	ctx->server = NULL;
}

/* Everything is finished: release it all; uv_run returns when the handles are closed. */
static void
final_close(struct ops_ctx *ctx)
{
	if (ctx->closed)
		return;
	ctx->closed = 1;
	commit_close(ctx->commit);
	ctx->commit = NULL;
	audit_log_close(ctx->writer.audit);
	ctx->writer.audit = NULL;
	store_close(ctx->writer.st);
	ctx->writer.st = NULL;
	ops_checkpoint_close(ctx);
	hsmlink_close(ctx->hsm, hsm_closed, ctx);
	if (ctx->server)
		server_close(ctx->server, server_closed, ctx);
	ops_crl_clear(ctx);
	uv_close((uv_handle_t *)&ctx->cp_timer, NULL);
	uv_close((uv_handle_t *)&ctx->hsm_timer, NULL);
	uv_close((uv_handle_t *)&ctx->finish_timer, NULL);
	uv_close((uv_handle_t *)&ctx->sig_term, NULL);
	uv_close((uv_handle_t *)&ctx->sig_int, NULL);
	uv_close((uv_handle_t *)&ctx->sig_hup, NULL);
	ops_log(ctx, OPS_LOG_NOTICE, "stopped (exit status %d)", ctx->exit_code);
}

static void
final_checkpoint_done(struct ops_ctx *ctx, int status)
{
	ctx->checkpointing = 0;
	if (status != 0 && ctx->exit_code == 0)
		ctx->exit_code = 1;
	ctx->stop_finished = 1;
	ops_maybe_finish(ctx);
}

static void
stop_event_done(struct ops_ctx *ctx, int status)
{
	if (status != COMMIT_OK || ctx->dying) {
		if (ctx->exit_code == 0)
			ctx->exit_code = 1;
		ctx->stop_finished = 1;
		ops_maybe_finish(ctx);
		return;
	}
	ctx->checkpointing = 1;
	ops_checkpoint(ctx, final_checkpoint_done);
}

/*
 * Shutdown goes on once no request is in flight, no checkpoint or reload is on
 * its way, and (before closing) the writer has nothing left: SIGTERM records
 * "stop" and a final checkpoint first; a dying daemon, or one that never got
 * ready, just closes. Called after each request and by a short timer.
 */
void
ops_maybe_finish(struct ops_ctx *ctx)
{
	if (!(ctx->stopping || ctx->dying) || ctx->closed)
		return;
	if (ctx->inflight > 0 || ctx->checkpointing || ctx->reloading)
		return;
	if (!ctx->dying && ctx->ready && !ctx->stop_submitted) {
		ctx->stop_submitted = 1;
		if (ops_event(ctx, "stop", "SIGTERM: requests in flight finished", stop_event_done) != 0)
			ctx->stop_finished = 1;
		return;
	}
	if (!ctx->dying && ctx->ready && !ctx->stop_finished)
		return;
	if (commit_pending(ctx->commit) == 0)
		final_close(ctx);
}

static void
finish_tick(uv_timer_t *t)
{
	ops_maybe_finish(t->data);
}

static void
shutdown_begin(struct ops_ctx *ctx)
{
	if (ctx->server) {
		server_stop_accepting(ctx->server);
		server_stop_reading(ctx->server);
	}
	uv_timer_stop(&ctx->cp_timer);
	uv_timer_stop(&ctx->hsm_timer);
	uv_timer_start(&ctx->finish_timer, finish_tick, 20, 20);
	ops_maybe_finish(ctx);
}

void
ops_die(struct ops_ctx *ctx, int exit_code, const char *why)
{
	if (ctx->dying || ctx->closed)
		return;
	ctx->dying = 1;
	ctx->exit_code = exit_code;
	ops_log(ctx, OPS_LOG_ERR, "going down: %s", why);
	shutdown_begin(ctx);
}

static void
on_signal(uv_signal_t *h, int signum)
{
	struct ops_ctx *ctx = h->data;

	if (ctx->stopping || ctx->dying)
		return;
	ops_log(ctx, OPS_LOG_NOTICE, "%s: finishing requests in flight, then stopping",
		strsignal(signum));
	ctx->stopping = 1;
	if (!ctx->ready && ctx->exit_code == 0)
		ctx->exit_code = 1; /* stopped before it was ready */
	shutdown_begin(ctx);
}

static void
on_store_fatal(void *arg, int err)
{
	struct ops_ctx *ctx = arg;
	char why[128];

	snprintf(why, sizeof(why), "the state database failed: %s", store_strerror(err));
	ops_die(ctx, 1, why);
}

/* ---- SIGHUP: reload the policy off the loop ---- */

struct reload_job {
	uv_work_t work;
	struct ops_ctx *ctx;
	char path[PATH_MAX];
	struct policy *pol;
	char **first_profile;
	char err[512];
};

static void
reload_work(uv_work_t *w)
{
	struct reload_job *j = w->data;

	if (policy_load(j->path, &j->pol, j->err, sizeof(j->err)) != 0)
		j->pol = NULL;
	else if (ops_policy_first_profiles(j->pol, &j->first_profile) != 0)
		j->first_profile = NULL; /* no default profiles: ISSUE must name one */
}

static void
reload_event_done(struct ops_ctx *ctx, int status)
{
	(void)status;
	ctx->reloading = 0;
	ops_maybe_finish(ctx);
}

static void
reload_after(uv_work_t *w, int status)
{
	struct reload_job *j = w->data;
	struct ops_ctx *ctx = j->ctx;
	const char *old_zone = policy_zone(ctx->policy->pol)->name;
	char detail[600];

	if (status != 0 && j->pol == NULL)
		snprintf(j->err, sizeof(j->err), "reload cancelled");
	if (j->pol && strcmp(policy_zone(j->pol)->name, old_zone) != 0) {
		snprintf(j->err, sizeof(j->err), "%.200s: zone.name changed from %.100s to %.100s; the registry "
			 "zone changes only with a restart", j->path, old_zone,
			 policy_zone(j->pol)->name);
		ops_policy_defaults_free(j->first_profile, j->pol);
		policy_free(j->pol);
		j->pol = NULL;
	}
	if (j->pol && ctx->closed == 0 &&
	    ops_policy_install(ctx, j->pol, j->first_profile) != 0) {
		snprintf(j->err, sizeof(j->err), "out of memory installing the new policy");
		ops_policy_defaults_free(j->first_profile, j->pol);
		policy_free(j->pol);
		j->pol = NULL;
	}
	if (j->pol) {
		snprintf(detail, sizeof(detail), "policy %.400s sha256 %s", j->path,
			 policy_sha256_hex(j->pol));
		ops_log(ctx, OPS_LOG_NOTICE, "SIGHUP: %s loaded", detail);
		if (ops_event(ctx, "reload", detail, reload_event_done) != 0)
			ctx->reloading = 0;
	} else {
		ops_log(ctx, OPS_LOG_ERR, "SIGHUP: policy refused, the old one stays: %s", j->err);
		snprintf(detail, sizeof(detail), "kept %s: %s",
			 policy_sha256_hex(ctx->policy->pol), j->err);
		if (ops_event(ctx, "reload-refused", detail, reload_event_done) != 0)
			ctx->reloading = 0;
	}
	free(j);
}

static void
on_sighup(uv_signal_t *h, int signum)
{
	struct ops_ctx *ctx = h->data;
	struct reload_job *j;

	(void)signum;
	if (!ctx->ready || ctx->stopping || ctx->dying || ctx->reloading)
		return;
	if ((j = calloc(1, sizeof(*j))) == NULL)
		return;
	j->ctx = ctx;
	j->work.data = j;
	snprintf(j->path, sizeof(j->path), "%s", ctx->cfg->policy);
	ctx->reloading = 1;
	if (uv_queue_work(ctx->loop, &j->work, reload_work, reload_after) != 0) {
		ctx->reloading = 0;
		free(j);
	}
}

/* ---- periodic work ---- */

static void
periodic_checkpoint_done(struct ops_ctx *ctx, int status)
{
	(void)status;
	ctx->checkpointing = 0;
	ops_maybe_finish(ctx);
}

static void
cp_tick(uv_timer_t *t)
{
	struct ops_ctx *ctx = t->data;

	if (!ctx->ready || ctx->stopping || ctx->dying || ctx->checkpointing)
		return;
	ctx->checkpointing = 1;
	ops_checkpoint(ctx, periodic_checkpoint_done);
}

/* Records the HSM going away and coming back (recovery inside the HSM process). */
static void
hsm_poll_cb(void *arg, int status, const struct hsmproto_status *st)
{
	struct ops_ctx *ctx = arg;
	int state = status == HSMPROTO_ST_OK && st ? st->state : HSMPROTO_STATE_DOWN;

	if (ctx->closed || ctx->dying)
		return;
	if (state != HSMPROTO_STATE_UP && ctx->hsm_state == HSMPROTO_STATE_UP) {
		ops_log(ctx, OPS_LOG_WARNING, "the HSM is %s", state == HSMPROTO_STATE_RECOVERING ?
			"being recovered" : "down");
		ops_event(ctx, "hsm-lost", state == HSMPROTO_STATE_RECOVERING ? "recovering" : "down",
			  NULL);
	} else if (state == HSMPROTO_STATE_UP && ctx->hsm_state != HSMPROTO_STATE_UP) {
		ops_log(ctx, OPS_LOG_NOTICE, "the HSM is back");
		ops_event(ctx, "hsm-recovered", NULL, NULL);
	}
	ctx->hsm_state = state;
}

static void
hsm_tick(uv_timer_t *t)
{
	struct ops_ctx *ctx = t->data;

	if (ctx->ready && !ctx->dying && !ctx->stopping)
		(void)hsmlink_status(ctx->hsm, hsm_poll_cb, ctx);
}

/* ---- start-up, driven by the HSM process's answers ---- */

static void
first_checkpoint_done(struct ops_ctx *ctx, int status)
{
	struct server_options so;
	int e;

	ctx->checkpointing = 0;
	if (ctx->dying || ctx->stopping || ctx->closed) {
		ops_maybe_finish(ctx);
		return;
	}
	if (status != 0) {
		ops_die(ctx, 1, "the first audit checkpoint could not be written");
		return;
	}
	memset(&so, 0, sizeof(so));
	so.path = ctx->cfg->socket.path;
	so.mode = ctx->cfg->socket.mode;
	so.max_frame = ctx->cfg->socket.max_frame;
	so.queue_depth = ctx->cfg->socket.queue_depth;
	so.write_high_water = 1u << 20;
	so.max_conns = 1024;
	/* socket.queue-depth bounds each connection; the daemon as a whole takes a
	 * few connections' worth (memory and latency stay bounded under a flood). */
	ctx->max_inflight = 4 * (uint64_t)ctx->cfg->socket.queue_depth;
	if (ctx->max_inflight < 4096)
		ctx->max_inflight = 4096;
	if ((e = server_open(ctx->loop, &so, &ops_server_callbacks, ctx, &ctx->server)) != 0) {
		char why[PATH_MAX + 64];

		snprintf(why, sizeof(why), "socket %s: %s", so.path, server_strerror(e));
		ops_die(ctx, 1, why);
		return;
	}
	ctx->ready = 1;
	ctx->hsm_state = HSMPROTO_STATE_UP;
	uv_timer_start(&ctx->cp_timer, cp_tick, ctx->checkpoint_ms, ctx->checkpoint_ms);
	uv_timer_start(&ctx->hsm_timer, hsm_tick, HSM_POLL_MS, HSM_POLL_MS);
	ops_log(ctx, OPS_LOG_NOTICE, "ready on %s (policy %s)", so.path,
		policy_sha256_hex(ctx->policy->pol));
}

static void
start_event_done(struct ops_ctx *ctx, int status)
{
	if (ctx->dying || ctx->stopping || ctx->closed) {
		ops_maybe_finish(ctx);
		return;
	}
	if (status != COMMIT_OK) {
		ops_die(ctx, 1, "the audit log cannot be written");
		return;
	}
	ctx->checkpointing = 1;
	ops_checkpoint(ctx, first_checkpoint_done);
}

static void
pubkey_cb(void *arg, const struct hsmlink_result *res)
{
	struct ops_ctx *ctx = arg;
	unsigned char *mine = NULL;
	char detail[256];
	int n;

	if (ctx->dying || ctx->stopping || ctx->closed)
		return;
	if (res->status != HSMPROTO_ST_OK) {
		snprintf(detail, sizeof(detail), "the HSM process has no issuing-ca key: %s",
			 res->reason);
		ops_die(ctx, 1, detail);
		return;
	}
	/* The certificate handed out as the chain must certify the key that signs. */
	n = i2d_PUBKEY(ctx->issuing_key, &mine);
	if (n <= 0 || (size_t)n != res->value_len || memcmp(mine, res->value, (size_t)n) != 0) {
		OPENSSL_free(mine);
		ops_event(ctx, "start-refused", "the issuing CA certificate's key is not the HSM's "
			  "issuing-ca key", NULL);
		ops_die(ctx, 1, "the issuing CA certificate's public key differs from the HSM's "
			"issuing-ca key");
		return;
	}
	OPENSSL_free(mine);
	snprintf(detail, sizeof(detail), "%s pid %ld, HSM process pid %d, policy sha256 %s",
		 OPS_SERVER_NAME, (long)getpid(), hsmlink_pid(ctx->hsm),
		 policy_sha256_hex(ctx->policy->pol));
	if (ops_event(ctx, "start", detail, start_event_done) != 0)
		ops_die(ctx, 1, "out of memory");
}

static void
hsm_ready(hsmlink_t *link, int status, const char *reason, void *arg)
{
	struct ops_ctx *ctx = arg;

	if (status != HSMPROTO_ST_OK) {
		char why[HSMPROTO_MAX_REASON + 64];

		snprintf(why, sizeof(why), "the HSM process could not start: %s", reason);
		ops_event(ctx, "start-refused", why, NULL);
		ops_die(ctx, 1, why);
		return;
	}
	ops_log(ctx, OPS_LOG_INFO, "HSM process %d ready", hsmlink_pid(link));
	if (hsmlink_pubkey(link, "issuing-ca", pubkey_cb, ctx) != HSMLINK_OK)
		ops_die(ctx, 1, "the HSM process is gone");
}

static void
hsm_death(hsmlink_t *link, int64_t exit_status, int term_signal, void *arg)
{
	struct ops_ctx *ctx = arg;
	char why[128];

	(void)link;
	snprintf(why, sizeof(why), "the HSM process died (exit status %lld, signal %d)",
		 (long long)exit_status, term_signal);
	if (ctx->ready && !ctx->closed)
		ops_event(ctx, "hsm-lost", why, NULL);
	ops_die(ctx, 1, why);
}

/* ---- main ---- */

static int
ctx_open(struct ops_ctx *ctx, const char *config_path)
{
	struct hsmlink_options ho;
	struct policy *pol = NULL;
	char **first = NULL;
	struct audit_opts ao;
	struct audit_open_report rep;
	char err[512];
	int e;

	/* The HSM process first: it loads the module and logs in meanwhile. */
	memset(&ho, 0, sizeof(ho));
	ho.exe_path = ctx->exe_path;
	ho.config_path = config_path;
	ho.module_dirs = ctx->module_dirs;
	ho.ready_cb = hsm_ready;
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
	if (ops_policy_first_profiles(pol, &first) != 0) {
		ops_log(ctx, OPS_LOG_WARNING, "cannot list the callers' default profiles: "
			"ISSUE requests must name a profile");
		first = NULL;
	}
	if (ops_policy_install(ctx, pol, first) != 0) {
		ops_policy_defaults_free(first, pol);
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
	if (commit_new(ctx->loop, ctx->writer.st, &ctx->writer, on_store_fatal, ctx,
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
	ops_policy_unref(ctx->policy);
	ops_buckets_free(ctx);
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
	ctx.sig_term.data = ctx.sig_int.data = ctx.sig_hup.data = &ctx;
	uv_signal_start(&ctx.sig_term, on_signal, SIGTERM);
	uv_signal_start(&ctx.sig_int, on_signal, SIGINT);
	uv_signal_start(&ctx.sig_hup, on_sighup, SIGHUP);
	ops_log(&ctx, OPS_LOG_NOTICE, "%s starting with %s", OPS_SERVER_NAME, cfg_abs);

	if (ctx_open(&ctx, cfg_abs) != 0) {
		ctx.exit_code = 1;
		if (ctx.commit == NULL) {
			/* No writer yet: close what exists by hand. */
			ctx.closed = 1;
			hsmlink_close(ctx.hsm, hsm_closed, &ctx);
			uv_close((uv_handle_t *)&ctx.cp_timer, NULL);
			uv_close((uv_handle_t *)&ctx.hsm_timer, NULL);
			uv_close((uv_handle_t *)&ctx.finish_timer, NULL);
			uv_close((uv_handle_t *)&ctx.sig_term, NULL);
			uv_close((uv_handle_t *)&ctx.sig_int, NULL);
			uv_close((uv_handle_t *)&ctx.sig_hup, NULL);
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
