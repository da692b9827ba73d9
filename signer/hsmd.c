/*
 * hsmd: the HSM process (see hsmd.h).
 *
 * Threads: the main thread reads frames from the socket and answers the cheap requests
 * (PUBKEY, RANDOM, STATUS) itself; SIGN messages become jobs in a queue that the worker
 * threads, one per PKCS#11 session, take item by item, so that one large batch is
 * spread over every session and a small one is not held up behind it. The worker that
 * finishes the last item of a job writes its reply. Replies may therefore leave out of
 * order; the front matches them by id.
 *
 * Lock-down: once the module is loaded, initialised and logged in (the PIN wiped) and
 * before any thread starts, the process applies its sandbox (signer/sandbox.h, the HSM
 * profile built from the configuration) unless sandbox.enabled is false. The module may
 * still open its token files later: their directories come from the configuration.
 *
 * No hang: a PKCS#11 call that never returns (a module waiting for ever on a network
 * HSM or a p11-kit server that died under it) would leave the process alive but
 * useless, with the front waiting for replies that never come. Every thread that calls
 * into the module records when its call started; a watchdog thread ends the process with
 * _exit(HSMD_EXIT_WATCHDOG) when one call exceeds hsm.call-timeout, or sooner, when a
 * recovery has waited longer than hsm.recover-timeout plus a second for the calls in
 * flight (only a stuck one holds it off that long); see signer/hsmd_watchdog.h. The
 * front then exits too and its supervisor restarts both, which is the only cure for a wedged module. When
 * the front closes the socket, the process waits briefly for its workers and _exits
 * without joining those stuck in a call. Start-up (module load and login) is bounded by
 * alarm(2) the same way, since no thread may exist before the sandbox is applied.
 *
 * The start-up itself (configuration, issuer, limits, keys, sandbox) is in hsmd_setup.c;
 * what both files use is in hsmd_int.h.
 */
#include "signer/hsmd.h"
#include "signer/hsmd_int.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "pkcs11/hsm.h"
#include "policy/policy.h"
#include "policy/yconf.h"
#include "signer/config.h"
#include "signer/hsmlimits.h"
#include "signer/hsmd_watchdog.h"
#include "signer/hsmproto.h"
#include "signer/sandbox.h"

/* Marks the start and end of a call into the module on watchdog slot @p slot. */
static void call_begin(struct hsmd *d, unsigned slot)
{
	hsmd_watchdog_call_begin(&d->wd, slot);
}

static void call_end(struct hsmd *d, unsigned slot)
{
	hsmd_watchdog_call_end(&d->wd, slot);
}

static int watchdog_start(struct hsmd *d)
{
	return hsmd_watchdog_start(&d->wd, d->hsm, d->cfg->hsm.sessions + 1,
	                           d->cfg->hsm.call_timeout_ms, d->cfg->hsm.recover_timeout_ms);
}

/* Keeps a reason to printable ASCII (it ends up in logs and the audit log). */
static void reason_clean(struct hsmproto_result *res)
{
	for (char *p = res->reason; *p; p++) {
		if (*p < 0x20 || *p > 0x7e)
			*p = '?';
	}
}

static void reason_set(struct hsmproto_result *res, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void reason_set(struct hsmproto_result *res, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(res->reason, sizeof(res->reason), fmt, ap);
	va_end(ap);
	reason_clean(res);
}

static int write_all(struct hsmd *d, const uint8_t *p, size_t len)
{
	int r = 0;

	pthread_mutex_lock(&d->wmu);
	while (len > 0) {
		ssize_t n = send(d->fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			r = -1;
			break;
		}
		p += n;
		len -= (size_t)n;
	}
	pthread_mutex_unlock(&d->wmu);
	/* The front is gone or broken: wake the reader so the process ends. */
	if (r != 0)
		shutdown(d->fd, SHUT_RDWR);
	return r;
}

static int send_buf(struct hsmd *d, struct hsmproto_buf *b)
{
	int r = b->err == 0 ? write_all(d, b->data, b->len) : -1;

	hsmproto_buf_free(b);
	return r;
}

/* Sends one result of the given reply type. */
static int send_result(struct hsmd *d, uint8_t type, uint32_t id, const struct hsmproto_result *res)
{
	struct hsmproto_buf b = { 0 };

	hsmproto_results_encode(&b, type, id, res, 1);
	return send_buf(d, &b);
}

static struct role *role_find(struct hsmd *d, const char *name)
{
	for (size_t i = 0; i < d->n_roles; i++) {
		if (strcmp(d->roles[i].name, name) == 0)
			return &d->roles[i];
	}
	return NULL;
}

/* Maps a pkcs11 layer error onto a result status: only a lost HSM is worth a retry. */
static void hsm_fail(struct hsmd *d, struct hsmproto_result *res, const char *what, int e)
{
	const char *detail = hsm_last_error(d->hsm);

	res->status = e == HSM_ERR_UNAVAILABLE ? HSMPROTO_ST_UNAVAILABLE : HSMPROTO_ST_ERROR;
	reason_set(res, "%s: %s%s%s", what, hsm_strerror(e), detail[0] ? ": " : "", detail);
}

/* Checks, hashes and signs one item. Runs on a worker thread. */
static void sign_item(struct hsmd *d, unsigned slot, const struct hsmproto_sign_req *q,
                      struct hsmproto_result *res, uint8_t *sig)
{
	unsigned char md[32];
	unsigned int mdlen = 0;
	struct role *role = role_find(d, q->role);
	size_t siglen = HSM_SIG_MAX;
	int e;

	memset(res, 0, sizeof(*res));
	e = hsmlimits_check(d->limits, q->role, q->kind, q->format, q->data, q->len,
	                    res->reason, sizeof(res->reason));
	if (e == HSMLIMITS_REFUSED) {
		res->status = HSMPROTO_ST_REFUSED;
		if (role)
			atomic_fetch_add(&role->refused, 1);
		reason_clean(res);
		return;
	}
	if (e != 0) {
		res->status = HSMPROTO_ST_ERROR;
		reason_set(res, "limits: %s", hsmlimits_strerror(e));
		return;
	}
	if (role == NULL) {
		res->status = HSMPROTO_ST_REFUSED;
		reason_set(res, "no key is configured for role %s", q->role);
		return;
	}
	/* The digest is ours, over exactly the bytes the limits looked at. */
	if (EVP_Digest(q->data, q->len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
		res->status = HSMPROTO_ST_ERROR;
		reason_set(res, "SHA-256 failed");
		return;
	}
	call_begin(d, slot);
	e = hsm_sign(d->hsm, role->key_id, md, sizeof(md),
	             q->format == HSMPROTO_FORMAT_DER ? HSM_SIG_DER : HSM_SIG_RAW, sig, &siglen);
	call_end(d, slot);
	if (e != HSM_OK) {
		hsm_fail(d, res, "sign", e);
		return;
	}
	atomic_fetch_add(&role->signatures, 1);
	res->status = HSMPROTO_ST_OK;
	res->value = sig;
	res->value_len = siglen;
}

/*
 * Initialises signing operations ahead of the next requests (hsm.sign-ahead,
 * hsm_prepare()): on every session free right now, never waiting for a busy one
 * or for a recovery. A module call like any other, so watched on @p slot. Its
 * errors are left for the next signature, which meets them and reports them.
 */
static void prepare(struct hsmd *d, unsigned slot)
{
	if (!d->cfg->hsm.sign_ahead)
		return;
	call_begin(d, slot);
	hsm_prepare(d->hsm);
	call_end(d, slot);
}

static void job_free(struct job *j)
{
	if (j == NULL)
		return;
	free(j->body);
	free(j->reqs);
	free(j->res);
	free(j->sigs);
	free(j);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct hsmd *d = w->d;

	/* The main thread prepared every session before the workers started. */
	int idle_prepared = 1;

	for (;;) {
		struct job *j;
		size_t i, k;
		int last;

		pthread_mutex_lock(&d->mu);
		if (!d->stop && d->head == NULL && !idle_prepared) {
			/* Nothing to do, and any reply this worker owed is written:
			 * initialise the signatures the work just done consumed, so
			 * that the next request pays only for its C_Sign. Once per
			 * idle spell; a job that comes meanwhile waits for at most
			 * a few C_SignInit calls, or goes to another worker. */
			pthread_mutex_unlock(&d->mu);
			prepare(d, w->slot);
			idle_prepared = 1;
			continue;
		}
		while (!d->stop && d->head == NULL)
			pthread_cond_wait(&d->work_cv, &d->mu);
		if (d->stop) {
			d->n_exited++;
			pthread_cond_broadcast(&d->exit_cv);
			pthread_mutex_unlock(&d->mu);
			break;
		}
		j = d->head;
		/*
		 * A worker's share of what is left (at least one item): a batch is
		 * still spread over every session, and the next job still starts as
		 * soon as this one is all handed out, but the queue lock is taken
		 * twice per share instead of twice per signature (on 2 cores its
		 * contention cost the process futex calls on most signatures).
		 */
		i = j->claimed;
		/* (hsm.sessions, at least 1, is the number of workers started.) */
		k = (j->n - i + d->cfg->hsm.sessions - 1) / d->cfg->hsm.sessions;
		j->claimed += k;
		/* Every item handed out: the job leaves the queue but lives until done. */
		if (j->claimed == j->n) {
			d->head = j->next;
			if (d->head == NULL)
				d->tail = NULL;
		}
		pthread_mutex_unlock(&d->mu);
		idle_prepared = 0;

		for (size_t m = i; m < i + k; m++)
			sign_item(d, w->slot, &j->reqs[m], &j->res[m], j->sigs[m]);

		pthread_mutex_lock(&d->mu);
		j->done += k;
		last = j->done == j->n;
		pthread_mutex_unlock(&d->mu);
		if (!last)
			continue;
		{
			struct hsmproto_buf b = { 0 };

			hsmproto_results_encode(&b, HSMPROTO_SIGN_REPLY, j->id, j->res, j->n);
			send_buf(d, &b);
		}
		pthread_mutex_lock(&d->mu);
		d->jobs--;
		d->bytes -= j->body_len;
		pthread_cond_signal(&d->room_cv);
		pthread_mutex_unlock(&d->mu);
		job_free(j);
	}
	return NULL;
}

/* Queues a decoded SIGN message; waits while too much is in flight. Takes body. */
static int enqueue_sign(struct hsmd *d, const struct hsmproto_header *h, uint8_t *body)
{
	struct job *j = calloc(1, sizeof(*j));
	int r = -1;

	if (j == NULL) {
		free(body);
		return -1;
	}
	j->body = body;
	j->body_len = h->length;
	j->id = h->id;
	if (hsmproto_sign_req_decode(h, body, &j->reqs) != HSMPROTO_OK)
		goto out;
	j->n = h->count;
	j->res = calloc(j->n, sizeof(*j->res));
	j->sigs = calloc(j->n, sizeof(*j->sigs));
	if (j->res == NULL || j->sigs == NULL)
		goto out;
	pthread_mutex_lock(&d->mu);
	while (!d->stop && d->jobs > 0 &&
	       (d->jobs >= HSMD_MAX_JOBS || d->bytes + j->body_len > HSMD_MAX_BYTES))
		pthread_cond_wait(&d->room_cv, &d->mu);
	if (d->tail)
		d->tail->next = j;
	else
		d->head = j;
	d->tail = j;
	d->jobs++;
	d->bytes += j->body_len;
	/* One item needs one worker: waking every one would only put the others
	 * back to sleep. */
	if (j->n == 1)
		pthread_cond_signal(&d->work_cv);
	else
		pthread_cond_broadcast(&d->work_cv);
	pthread_mutex_unlock(&d->mu);
	j = NULL;
	r = 0;
out:
	job_free(j);
	return r;
}

static int answer_pubkey(struct hsmd *d, const struct hsmproto_header *h, const uint8_t *body)
{
	struct hsmproto_result res = { 0 };
	char name[HSMPROTO_MAX_ROLE + 1];
	unsigned char *spki = NULL;
	size_t len = 0;
	struct role *role;
	int e, r;

	if (hsmproto_pubkey_req_decode(h, body, name) != HSMPROTO_OK)
		return -1;
	role = role_find(d, name);
	if (role == NULL) {
		res.status = HSMPROTO_ST_REFUSED;
		reason_set(&res, "no key is configured for role %s", name);
	} else if (call_begin(d, 0), e = hsm_key_public(d->hsm, role->key_id, &spki, &len),
	           call_end(d, 0), e != HSM_OK) {
		hsm_fail(d, &res, "public key", e);
	} else if (len > HSMPROTO_MAX_VALUE) {
		res.status = HSMPROTO_ST_ERROR;
		reason_set(&res, "public key too large");
	} else {
		res.value = spki;
		res.value_len = len;
	}
	r = send_result(d, HSMPROTO_PUBKEY_REPLY, h->id, &res);
	free(spki);
	return r;
}

static int answer_random(struct hsmd *d, const struct hsmproto_header *h, const uint8_t *body)
{
	struct hsmproto_result res = { 0 };
	uint8_t buf[HSMPROTO_MAX_RANDOM];
	uint32_t n;
	int e;

	if (hsmproto_random_req_decode(h, body, &n) != HSMPROTO_OK)
		return -1;
	call_begin(d, 0);
	e = hsm_random(d->hsm, buf, n);
	call_end(d, 0);
	if (e != HSM_OK) {
		hsm_fail(d, &res, "random", e);
	} else {
		res.value = buf;
		res.value_len = n;
	}
	return send_result(d, HSMPROTO_RANDOM_REPLY, h->id, &res);
}

static int answer_status(struct hsmd *d, const struct hsmproto_header *h, const uint8_t *body)
{
	struct hsmproto_status st = { 0 };
	struct hsmproto_buf b = { 0 };
	struct hsm_status hs;
	int r = -1;

	if (hsmproto_status_req_decode(h, body) != HSMPROTO_OK)
		return -1;
	memset(&hs, 0, sizeof(hs));
	hsm_status_get(d->hsm, &hs);
	st.state = hs.state == HSM_STATE_UP ? HSMPROTO_STATE_UP
	         : hs.state == HSM_STATE_RECOVERING ? HSMPROTO_STATE_RECOVERING
	                                            : HSMPROTO_STATE_DOWN;
	st.recoveries = hs.recoveries;
	st.key_copies = hs.copies;
	st.key_copies_refused = hs.copies_refused;
	st.sign_prepared = hs.prepared;
	st.n_roles = d->n_roles;
	st.roles = calloc(d->n_roles ? d->n_roles : 1, sizeof(*st.roles));
	if (st.roles == NULL)
		return -1;
	for (size_t i = 0; i < d->n_roles; i++) {
		snprintf(st.roles[i].role, sizeof(st.roles[i].role), "%s", d->roles[i].name);
		st.roles[i].signatures = atomic_load(&d->roles[i].signatures);
		st.roles[i].refused = atomic_load(&d->roles[i].refused);
		memcpy(st.roles[i].fingerprint, d->roles[i].fingerprint, 32);
	}
	if (hsmproto_status_encode(&b, h->id, &st) == HSMPROTO_OK)
		r = send_buf(d, &b);
	hsmproto_buf_free(&b);
	free(st.roles);
	return r;
}

/* Reads exactly len bytes. @return 1 done, 0 EOF before the first byte, -1 otherwise. */
static int read_full(int fd, uint8_t *p, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = read(fd, p + got, len - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		if (n == 0)
			return got == 0 ? 0 : -1;
		got += (size_t)n;
	}
	return 1;
}

/*
 * The reader loop. Returns 0 when the front closed the socket, 1 on a protocol error
 * (anything malformed from the front is a bug or an attack; the process stops).
 */
static int serve(struct hsmd *d)
{
	for (;;) {
		uint8_t hdr[HSMPROTO_HEADER_LEN], *body = NULL;
		struct hsmproto_header h;
		int r = read_full(d->fd, hdr, sizeof(hdr));

		if (r == 0)
			return 0;
		if (r < 0) {
			pthread_mutex_lock(&d->mu);
			r = d->stop;
			pthread_mutex_unlock(&d->mu);
			return r ? 0 : 1;
		}
		if (hsmproto_header_decode(hdr, &h) != HSMPROTO_OK)
			return 1;
		body = malloc(h.length ? h.length : 1);
		if (body == NULL || (h.length > 0 && read_full(d->fd, body, h.length) != 1)) {
			free(body);
			return 1;
		}
		switch (h.type) {
		case HSMPROTO_SIGN:
			r = enqueue_sign(d, &h, body);
			body = NULL;
			break;
		case HSMPROTO_PUBKEY:
			r = answer_pubkey(d, &h, body);
			break;
		case HSMPROTO_RANDOM:
			r = answer_random(d, &h, body);
			break;
		case HSMPROTO_STATUS:
			r = answer_status(d, &h, body);
			break;
		default:
			r = -1; /* replies and HELLO never come from the front */
		}
		free(body);
		if (r != 0)
			return 1;
	}
}

static int start_workers(struct hsmd *d)
{
	d->workers = calloc(d->cfg->hsm.sessions, sizeof(*d->workers));
	d->wargs = calloc(d->cfg->hsm.sessions, sizeof(*d->wargs));
	if (d->workers == NULL || d->wargs == NULL)
		return -1;
	for (unsigned i = 0; i < d->cfg->hsm.sessions; i++) {
		d->wargs[i].d = d;
		d->wargs[i].slot = i + 1;
		if (pthread_create(&d->workers[i], NULL, worker_main, &d->wargs[i]) != 0)
			return -1;
		d->n_workers++;
	}
	return 0;
}

/* Prepares every session's signatures once (sign-ahead), then starts the workers. */
static int start_serving(struct hsmd *d)
{
	prepare(d, 0);
	return start_workers(d);
}

/*
 * Stops the workers. @return 0 when every one returned and was joined; -1 when
 * some are still inside the module after HSMD_STOP_GRACE_MS: joining them could
 * wait for ever, so the caller _exits instead of cleaning up.
 */
static int stop_workers(struct hsmd *d)
{
	struct timespec ts;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += HSMD_STOP_GRACE_MS / 1000;
	ts.tv_nsec += (long)(HSMD_STOP_GRACE_MS % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&d->mu);
	d->stop = 1;
	pthread_cond_broadcast(&d->work_cv);
	pthread_cond_broadcast(&d->room_cv);
	while (d->n_exited < d->n_workers && r == 0) {
		if (pthread_cond_timedwait(&d->exit_cv, &d->mu, &ts) == ETIMEDOUT &&
		    d->n_exited < d->n_workers)
			r = -1;
	}
	pthread_mutex_unlock(&d->mu);
	if (r != 0)
		return r;
	for (unsigned i = 0; i < d->n_workers; i++)
		pthread_join(d->workers[i], NULL);
	/* Jobs left in the queue (or half done) have no one to answer any more. */
	while (d->head != NULL) {
		struct job *j = d->head;

		d->head = j->next;
		job_free(j);
	}
	free(d->workers);
	free(d->wargs);
	return 0;
}

/* The front is gone and a worker is stuck in the module: nothing left to save. */
static void exit_now(int r)
{
	fprintf(stderr, "regsignd (HSM process): a PKCS#11 call is still running after the "
	        "front closed; exiting without waiting for it\n");
	_exit(r);
}

int hsmd_run(int fd, const char *config_path, const char *const *module_dirs)
{
	struct hsmd d;
	struct hsmproto_result hello = { 0 };
	char err[HSMPROTO_MAX_REASON + 1] = "";
	int r = 1;

	memset(&d, 0, sizeof(d));
	d.fd = fd;
	pthread_mutex_init(&d.mu, NULL);
	pthread_mutex_init(&d.wmu, NULL);
	pthread_cond_init(&d.work_cv, NULL);
	pthread_cond_init(&d.room_cv, NULL);
	pthread_cond_init(&d.exit_cv, NULL);
	/* A vanished front must show up as a write error, not kill us mid-reply. */
	signal(SIGPIPE, SIG_IGN);

	if (hsmd__setup(&d, config_path, module_dirs, err, sizeof(err)) != 0 ||
	    hsmd__lockdown(&d, config_path, module_dirs, err, sizeof(err)) != 0 ||
	    watchdog_start(&d) != 0 || start_serving(&d) != 0) {
		hello.status = HSMPROTO_ST_ERROR;
		reason_set(&hello, "%s", err[0] ? err : "start-up failed");
		/* Say why to the front; stderr too, in case the front cannot log it. */
		fprintf(stderr, "regsignd (HSM process): %s\n", hello.reason);
		send_result(&d, HSMPROTO_HELLO, 0, &hello);
		goto out;
	}
	hello.status = HSMPROTO_ST_OK;
	if (send_result(&d, HSMPROTO_HELLO, 0, &hello) != 0)
		goto out;
	r = serve(&d);
out:
	if (stop_workers(&d) != 0)
		exit_now(r);
	/* C_Finalize may hang on a wedged module too: still watched, but the
	 * watchdog must not read the handle's recovery state once it is freed. */
	hsmd_watchdog_drop_hsm(&d.wd);
	call_begin(&d, 0);
	hsm_close(d.hsm);
	call_end(&d, 0);
	hsmd_watchdog_stop(&d.wd);
	hsmlimits_free(d.limits);
	free(d.roles);
	config_free(d.cfg);
	close(fd);
	pthread_mutex_destroy(&d.mu);
	pthread_mutex_destroy(&d.wmu);
	pthread_cond_destroy(&d.work_cv);
	pthread_cond_destroy(&d.room_cv);
	pthread_cond_destroy(&d.exit_cv);
	return r;
}

int hsmd_main(int argc, char **argv)
{
	const char **dirs = NULL;
	const char *config = NULL;
	size_t n_dirs = 0;
	int fd = -1, r = 2;

	if (argc < 2 || strcmp(argv[1], HSMD_OPTION) != 0)
		goto usage;
	dirs = calloc((size_t)argc, sizeof(*dirs));
	if (dirs == NULL)
		return 1;
	for (int i = 2; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
		char *end = NULL;

		if (val == NULL)
			goto usage;
		i++;
		if (strcmp(opt, "--fd") == 0) {
			long v = strtol(val, &end, 10);

			if (*end != '\0' || v < 3 || v > 1024)
				goto usage;
			fd = (int)v;
		} else if (strcmp(opt, "-c") == 0) {
			config = val;
		} else if (strcmp(opt, "--module-dir") == 0) {
			dirs[n_dirs++] = val;
		} else {
			goto usage;
		}
	}
	if (fd < 0 || config == NULL)
		goto usage;
	r = hsmd_run(fd, config, dirs);
	free(dirs);
	return r;
usage:
	free(dirs);
	fprintf(stderr, "usage: %s " HSMD_OPTION " --fd N -c regsignd.yaml [--module-dir DIR]...\n",
	        argc > 0 ? argv[0] : "regsignd");
	return r;
}
