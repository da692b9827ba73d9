/*
 * libregsign-hsm: the handle, its session pool, recovery after HSM loss, and
 * the calls that use a session (sign, random). Module and token handling is in
 * hsm_token.c, key lookup and generation in hsm_key.c.
 */
#include "pkcs11/hsm.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkcs11/hsm_ckr.h"
#include "pkcs11/hsm_impl.h"

const char *hsm_strerror(int err)
{
	switch (err) {
	case HSM_OK: return "success";
	case HSM_ERR_NOMEM: return "out of memory";
	case HSM_ERR_ARG: return "invalid argument";
	case HSM_ERR_MODULE: return "PKCS#11 module cannot be loaded or initialised";
	case HSM_ERR_URI: return "invalid or refused PKCS#11 URI";
	case HSM_ERR_TOKEN: return "token not found or not unique";
	case HSM_ERR_PIN_FILE: return "pin file missing, unreadable or invalid";
	case HSM_ERR_PIN: return "PIN refused by the token";
	case HSM_ERR_KEY_NOT_FOUND: return "key not found";
	case HSM_ERR_KEY_AMBIGUOUS: return "key URI matches more than one key";
	case HSM_ERR_KEY_ATTRS: return "key attributes refused";
	case HSM_ERR_KEY_MISMATCH: return "private key does not match the expected public key";
	case HSM_ERR_KEY_EXISTS: return "an object with that label already exists";
	case HSM_ERR_UNAVAILABLE: return "HSM unavailable (retry later)";
	case HSM_ERR_PKCS11: return "PKCS#11 call failed";
	case HSM_ERR_CRYPTO: return "cryptographic library failure";
	case HSM_ERR_FULL: return "too many keys";
	default: return "unknown error";
	}
}

const char *hsm_state_name(enum hsm_state state)
{
	switch (state) {
	case HSM_STATE_UP: return "up";
	case HSM_STATE_RECOVERING: return "recovering";
	case HSM_STATE_DOWN: return "down";
	default: return "unknown";
	}
}

const char *hsm__ckr_name(CK_RV rv)
{
#define HSM_CKR_CASE(name) case name: return #name;
	switch (rv) {
	HSM_CKR_LIST(HSM_CKR_CASE)
	default: return NULL;
	}
#undef HSM_CKR_CASE
}

/* The classification the whole recovery design rests on: these codes mean the
 * sessions, the login or the device were lost, and a new login on new
 * sessions may work again. */
int hsm__rv_to_err(CK_RV rv)
{
	switch (rv) {
	case CKR_OK:
		return 0;
	case CKR_SESSION_HANDLE_INVALID:
	case CKR_SESSION_CLOSED:
	case CKR_DEVICE_ERROR:
	case CKR_DEVICE_REMOVED:
	case CKR_TOKEN_NOT_PRESENT:
	case CKR_USER_NOT_LOGGED_IN:
	case CKR_KEY_HANDLE_INVALID:
	case CKR_OBJECT_HANDLE_INVALID:
	case CKR_CRYPTOKI_NOT_INITIALIZED:
		return HSM_ERR_UNAVAILABLE;
	case CKR_PIN_INCORRECT:
	case CKR_PIN_INVALID:
	case CKR_PIN_LEN_RANGE:
	case CKR_PIN_EXPIRED:
	case CKR_PIN_LOCKED:
	case CKR_USER_PIN_NOT_INITIALIZED:
		return HSM_ERR_PIN;
	case CKR_HOST_MEMORY:
		return HSM_ERR_NOMEM;
	default:
		return HSM_ERR_PKCS11;
	}
}

/* Destructor of the per-thread error buffer, run when a thread that used the
 * handle exits. */
static void hsm_errbuf_destroy(void *p)
{
	struct hsm_errbuf *b = p;
	struct hsm *h = b->h;

	pthread_mutex_lock(&h->err_mu);
	if (b->prev != NULL)
		b->prev->next = b->next;
	else
		h->errs = b->next;
	if (b->next != NULL)
		b->next->prev = b->prev;
	pthread_mutex_unlock(&h->err_mu);
	free(b);
}

static struct hsm_errbuf *hsm_errbuf_get(struct hsm *h)
{
	struct hsm_errbuf *b = pthread_getspecific(h->errkey);

	if (b != NULL)
		return b;
	b = calloc(1, sizeof(*b));
	if (b == NULL)
		return NULL;
	b->h = h;
	if (pthread_setspecific(h->errkey, b) != 0) {
		free(b);
		return NULL;
	}
	pthread_mutex_lock(&h->err_mu);
	b->next = h->errs;
	if (h->errs != NULL)
		h->errs->prev = b;
	h->errs = b;
	pthread_mutex_unlock(&h->err_mu);
	return b;
}

static void hsm_errbuf_clear(struct hsm *h)
{
	struct hsm_errbuf *b = pthread_getspecific(h->errkey);

	if (b != NULL)
		b->text[0] = '\0';
}

int hsm__fail(struct hsm *h, int err, const char *fmt, ...)
{
	struct hsm_errbuf *b = hsm_errbuf_get(h);
	va_list ap;

	if (b != NULL) {
		va_start(ap, fmt);
		vsnprintf(b->text, sizeof(b->text), fmt, ap);
		va_end(ap);
	}
	return err;
}

int hsm__fail_rv(struct hsm *h, const char *what, CK_RV rv)
{
	const char *name = hsm__ckr_name(rv);

	if (name != NULL)
		return hsm__fail(h, hsm__rv_to_err(rv), "%s: %s", what, name);
	return hsm__fail(h, hsm__rv_to_err(rv), "%s: CKR 0x%lx", what, (unsigned long)rv);
}

const char *hsm_last_error(hsm_t *h)
{
	struct hsm_errbuf *b;

	if (h == NULL)
		return "";
	b = pthread_getspecific(h->errkey);
	return b != NULL ? b->text : "";
}

/* Takes a free session, waiting while all are in use: one session is never
 * used by two threads at once. */
static unsigned hsm_pool_take(struct hsm *h)
{
	unsigned i;

	pthread_mutex_lock(&h->pool_mu);
	for (;;) {
		for (i = 0; i < h->nsess; i++) {
			if (!h->busy[i])
				break;
		}
		if (i < h->nsess)
			break;
		pthread_cond_wait(&h->pool_cv, &h->pool_mu);
	}
	h->busy[i] = true;
	pthread_mutex_unlock(&h->pool_mu);
	return i;
}

void hsm__pool_give(struct hsm *h, unsigned i)
{
	pthread_mutex_lock(&h->pool_mu);
	h->busy[i] = false;
	pthread_cond_signal(&h->pool_cv);
	pthread_mutex_unlock(&h->pool_mu);
}

static unsigned long hsm_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000UL + (unsigned long)ts.tv_nsec / 1000000UL;
}

static void hsm_sleep_ms(unsigned long ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000),
	                       .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Errors after which trying again cannot help and would be wrong: a refused
 * PIN retried could lock the token, and a changed or weakened key means
 * someone touched the HSM; an operator must look. */
static bool hsm_err_permanent(int r)
{
	return r == HSM_ERR_PIN || r == HSM_ERR_KEY_MISMATCH || r == HSM_ERR_KEY_ATTRS;
}

static int hsm_keys_relocate(struct hsm *h)
{
	unsigned n = atomic_load(&h->nkeys);
	int r = 0;

	for (unsigned i = 0; i < n && r == 0; i++)
		r = hsm__key_locate(h, h->sess[0], &h->keys[i], false);
	return r;
}

/* With the exclusive lock held: tear everything down and build it up again,
 * waiting for the token with exponential backoff until the deadline. */
static int hsm_recover_locked(struct hsm *h)
{
	unsigned long deadline = hsm_now_ms() + h->recover_timeout_ms;
	unsigned long backoff = 20, now;
	int r;

	for (;;) {
		hsm__token_disconnect(h);
		/* A network HSM's module may only reconnect on a fresh
		 * C_Initialize, and SoftHSM forgets its login when the last
		 * session closes: start from nothing every time. */
		hsm__module_finalize(h, true);
		r = hsm__module_init(h);
		if (r == 0)
			r = hsm__token_connect(h);
		if (r == 0)
			r = hsm_keys_relocate(h);
		if (r == 0)
			return 0;
		if (hsm_err_permanent(r))
			break;
		now = hsm_now_ms();
		if (now >= deadline)
			break;
		hsm_sleep_ms(backoff < deadline - now ? backoff : deadline - now);
		if (backoff < 1000)
			backoff *= 2;
	}
	hsm__token_disconnect(h);
	return r;
}

/* The state a caller that did not run the recovery itself reports. */
static int hsm_state_result(struct hsm *h)
{
	if (atomic_load(&h->permanent))
		return hsm__fail(h, atomic_load(&h->down_err), "HSM down: %s", h->down_text);
	if (atomic_load(&h->state) != HSM_STATE_UP)
		return hsm__fail(h, HSM_ERR_UNAVAILABLE, "HSM down: %s", h->down_text);
	return 0;
}

/* Recovers unless another thread already did since this caller saw
 * generation seen_gen: N threads hitting one loss cause one recovery. */
static int hsm_recover(struct hsm *h, unsigned long seen_gen)
{
	struct hsm_errbuf *b;
	int r;

	/* Record when the wait for the calls in flight started (the first waiter
	 * only: the others wait behind its recovery, which is bounded). */
	{
		unsigned long none = 0, now = hsm_now_ms();

		atomic_compare_exchange_strong(&h->recover_wait_since, &none, now ? now : 1);
	}
	pthread_rwlock_wrlock(&h->rw);
	atomic_store(&h->recover_wait_since, 0);
	if (h->generation != seen_gen || atomic_load(&h->permanent)) {
		r = hsm_state_result(h);
		goto out;
	}
	atomic_store(&h->state, HSM_STATE_RECOVERING);
	r = hsm_recover_locked(h);
	h->generation++;
	atomic_store(&h->generation_seen, h->generation);
	if (r == 0) {
		atomic_store(&h->down_err, 0);
		h->down_text[0] = '\0';
		atomic_fetch_add(&h->recoveries, 1);
		atomic_store(&h->state, HSM_STATE_UP);
		goto out;
	}
	b = hsm_errbuf_get(h);
	snprintf(h->down_text, sizeof(h->down_text), "%s",
	         b != NULL && b->text[0] != '\0' ? b->text : hsm_strerror(r));
	atomic_store(&h->permanent, hsm_err_permanent(r));
	if (!hsm_err_permanent(r))
		r = hsm__fail(h, HSM_ERR_UNAVAILABLE, "recovery failed: %s", h->down_text);
	atomic_store(&h->down_err, r);
	atomic_fetch_add(&h->recovery_failures, 1);
	atomic_store(&h->state, HSM_STATE_DOWN);
out:
	/* A waiter that arrived while this recovery ran waited for it, not for a
	 * stuck call: it gets the lock next, so its wait is not counted. */
	atomic_store(&h->recover_wait_since, 0);
	pthread_rwlock_unlock(&h->rw);
	return r;
}

int hsm__with_session(struct hsm *h, bool exclusive, hsm__session_fn fn, void *arg)
{
	unsigned long gen;
	unsigned i;
	int r;

	for (int attempt = 0;; attempt++) {
		if (exclusive)
			pthread_rwlock_wrlock(&h->rw);
		else
			pthread_rwlock_rdlock(&h->rw);
		gen = h->generation;
		if (atomic_load(&h->state) != HSM_STATE_UP) {
			r = hsm_state_result(h);
		} else if (exclusive) {
			/* No other call is in flight: every session is idle. */
			r = fn(h, 0, h->sess[0], arg);
		} else {
			i = hsm_pool_take(h);
			r = fn(h, i, h->sess[i], arg);
			hsm__pool_give(h, i);
		}
		pthread_rwlock_unlock(&h->rw);
		if (r != HSM_ERR_UNAVAILABLE || attempt == 1 || atomic_load(&h->permanent))
			return r;
		r = hsm_recover(h, gen);
		if (r != 0)
			return r;
	}
}

static void hsm_free_locks(struct hsm *h)
{
	pthread_rwlock_destroy(&h->rw);
	pthread_mutex_destroy(&h->pool_mu);
	pthread_cond_destroy(&h->pool_cv);
	pthread_mutex_destroy(&h->keygen_mu);
	pthread_mutex_destroy(&h->err_mu);
}

/* Allocates the handle with every lock ready, so that hsm_close() can take
 * apart any handle hsm_open() made, however far it got. */
static struct hsm *hsm_alloc(void)
{
	struct hsm *h = calloc(1, sizeof(*h));
	pthread_rwlockattr_t ra;

	if (h == NULL)
		return NULL;
	if (pthread_rwlockattr_init(&ra) != 0) {
		free(h);
		return NULL;
	}
	/* glibc prefers readers by default: signers arriving all the time
	 * would keep a recovery waiting for ever. */
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	if (pthread_rwlock_init(&h->rw, &ra) != 0) {
		pthread_rwlockattr_destroy(&ra);
		free(h);
		return NULL;
	}
	pthread_rwlockattr_destroy(&ra);
	if (pthread_mutex_init(&h->pool_mu, NULL) != 0 ||
	    pthread_cond_init(&h->pool_cv, NULL) != 0 ||
	    pthread_mutex_init(&h->keygen_mu, NULL) != 0 ||
	    pthread_mutex_init(&h->err_mu, NULL) != 0 ||
	    pthread_key_create(&h->errkey, hsm_errbuf_destroy) != 0) {
		/* Linux's pthread init functions do not fail for these
		 * attribute-less objects; this path only keeps the contract. */
		hsm_free_locks(h);
		free(h);
		return NULL;
	}
	atomic_store(&h->state, HSM_STATE_DOWN);
	return h;
}

int hsm_open(const struct hsm_config *cfg, hsm_t **out)
{
	struct hsm *h = NULL;
	char uerr[HSM_ERRTEXT_MAX];
	int r = HSM_ERR_ARG;

	if (cfg != NULL && cfg->errbuf != NULL && cfg->errbuf_len > 0)
		cfg->errbuf[0] = '\0';
	if (cfg == NULL || out == NULL || cfg->module_path == NULL ||
	    cfg->token_uri == NULL || cfg->pin_file == NULL || cfg->sessions == 0 ||
	    cfg->sessions > HSM_SESSIONS_MAX) {
		if (cfg != NULL && cfg->errbuf != NULL && cfg->errbuf_len > 0)
			snprintf(cfg->errbuf, cfg->errbuf_len,
			         "configuration incomplete (module, token URI, pin file, 1..%d sessions)",
			         HSM_SESSIONS_MAX);
		return HSM_ERR_ARG;
	}
	*out = NULL;
	r = HSM_ERR_NOMEM;
	h = hsm_alloc();
	if (h == NULL)
		goto out;
	h->nsess = cfg->sessions;
	h->recover_timeout_ms = cfg->recover_timeout_ms;
	h->use_copies = cfg->session_copies;
	h->copy_check_ms = cfg->copy_check_ms;
	h->sign_ahead = cfg->sign_ahead;
	h->module_path = strdup(cfg->module_path);
	h->pin_file = strdup(cfg->pin_file);
	h->sess = calloc(h->nsess, sizeof(*h->sess));
	h->busy = calloc(h->nsess, sizeof(*h->busy));
	h->copies = calloc((size_t)h->nsess * HSM_MAX_KEYS, sizeof(*h->copies));
	h->ahead = calloc((size_t)h->nsess * HSM_MAX_KEYS, sizeof(*h->ahead));
	if (h->module_path == NULL || h->pin_file == NULL || h->sess == NULL ||
	    h->busy == NULL || h->copies == NULL || h->ahead == NULL)
		goto out;
	r = hsm_uri_parse(cfg->token_uri, HSM_URI_TOKEN, &h->token, uerr, sizeof(uerr));
	if (r != 0) {
		r = hsm__fail(h, r, "token URI: %s", uerr);
		goto out;
	}
	r = hsm__module_load(h);
	if (r == 0)
		r = hsm__module_init(h);
	if (r == 0)
		r = hsm__token_connect(h);
	if (r != 0)
		goto out;
	atomic_store(&h->state, HSM_STATE_UP);
	*out = h;
	h = NULL;
	r = 0;
out:
	if (h != NULL && cfg->errbuf != NULL && cfg->errbuf_len > 0)
		snprintf(cfg->errbuf, cfg->errbuf_len, "%s",
		         hsm_last_error(h)[0] != '\0' ? hsm_last_error(h) : hsm_strerror(r));
	hsm_close(h);
	return r;
}

void hsm_close(hsm_t *h)
{
	struct hsm_errbuf *b, *next;

	if (h == NULL)
		return;
	hsm__token_disconnect(h);
	hsm__module_finalize(h, false);
	hsm__module_unload(h);
	for (unsigned i = 0; i < atomic_load(&h->nkeys); i++)
		hsm__key_clear(&h->keys[i]);
	hsm_uri_free(h->token);
	free(h->module_path);
	free(h->pin_file);
	free(h->sess);
	free(h->busy);
	free(h->copies);
	free(h->ahead);
	/* After the key is deleted no destructor runs for it; the buffers of
	 * threads still alive are freed here. */
	pthread_key_delete(h->errkey);
	for (b = h->errs; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	hsm_free_locks(h);
	free(h);
}

struct hsm_sign_arg {
	struct hsm_key *k;
	const unsigned char *digest;
	size_t dlen;
	unsigned char raw[HSM_SIG_MAX];
	size_t rawlen;
};

static int hsm_sign_fn(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, void *arg)
{
	struct hsm_sign_arg *a = arg;

	a->rawlen = sizeof(a->raw);
	return hsm__copy_sign(h, si, s, a->k, a->digest, a->dlen, a->raw, &a->rawlen);
}

int hsm_sign(hsm_t *h, int key_id, const unsigned char *digest, size_t dlen,
             enum hsm_sig_format fmt, unsigned char *sig, size_t *siglen)
{
	struct hsm_sign_arg a;
	struct hsm_key *k;
	int r = HSM_ERR_ARG;

	if (h == NULL)
		return HSM_ERR_ARG;
	hsm_errbuf_clear(h);
	if (key_id < 0 || (unsigned)key_id >= atomic_load(&h->nkeys) ||
	    digest == NULL || sig == NULL || siglen == NULL ||
	    (fmt != HSM_SIG_RAW && fmt != HSM_SIG_DER))
		return hsm__fail(h, HSM_ERR_ARG, "sign: bad key id or argument");
	k = &h->keys[key_id];
	/* ECDSA would silently truncate a longer digest and pad a shorter
	 * one; a length that does not fit the curve is a caller's bug. */
	if (dlen != k->field_len)
		return hsm__fail(h, HSM_ERR_ARG, "key %s: digest must be %zu bytes, not %zu",
		                 k->role, k->field_len, dlen);
	memset(&a, 0, sizeof(a));
	a.k = k;
	a.digest = digest;
	a.dlen = dlen;
	r = hsm__with_session(h, false, hsm_sign_fn, &a);
	if (r != 0)
		goto out;
	if (fmt == HSM_SIG_RAW) {
		if (*siglen < a.rawlen) {
			r = hsm__fail(h, HSM_ERR_ARG, "sign: output buffer too small");
			goto out;
		}
		memcpy(sig, a.raw, a.rawlen);
		*siglen = a.rawlen;
	} else {
		r = hsm__sig_raw_to_der(a.raw, a.rawlen, sig, siglen);
		if (r != 0) {
			r = hsm__fail(h, r, "sign: cannot encode the DER signature");
			goto out;
		}
	}
	atomic_fetch_add(&k->signatures, 1);
	hsm_errbuf_clear(h);
	r = 0;
out:
	return r;
}

struct hsm_random_arg {
	unsigned char *buf;
	size_t len;
};

static int hsm_random_fn(struct hsm *h, unsigned si __attribute__((unused)),
                         CK_SESSION_HANDLE s, void *arg)
{
	struct hsm_random_arg *a = arg;
	CK_RV rv = h->p11->C_GenerateRandom(s, a->buf, a->len);

	return rv == CKR_OK ? 0 : hsm__fail_rv(h, "C_GenerateRandom", rv);
}

int hsm_random(hsm_t *h, unsigned char *buf, size_t len)
{
	struct hsm_random_arg a = { buf, len };

	if (h == NULL)
		return HSM_ERR_ARG;
	hsm_errbuf_clear(h);
	if (buf == NULL || len == 0)
		return hsm__fail(h, HSM_ERR_ARG, "random: empty buffer");
	return hsm__with_session(h, false, hsm_random_fn, &a);
}

unsigned long hsm_recover_wait_ms(hsm_t *h)
{
	unsigned long since, now;

	if (h == NULL)
		return 0;
	since = atomic_load(&h->recover_wait_since);
	if (since == 0)
		return 0;
	now = hsm_now_ms();
	return now > since ? now - since : 0;
}

int hsm_status_get(hsm_t *h, struct hsm_status *st)
{
	if (h == NULL || st == NULL)
		return HSM_ERR_ARG;
	memset(st, 0, sizeof(*st));
	st->state = (enum hsm_state)atomic_load(&h->state);
	st->down_err = atomic_load(&h->down_err);
	st->permanent = atomic_load(&h->permanent);
	st->generation = atomic_load(&h->generation_seen);
	st->recoveries = atomic_load(&h->recoveries);
	st->recovery_failures = atomic_load(&h->recovery_failures);
	st->recover_wait_ms = hsm_recover_wait_ms(h);
	st->sessions = h->nsess;
	st->nkeys = atomic_load(&h->nkeys);
	for (unsigned i = 0; i < st->nkeys; i++)
		st->signatures[i] = atomic_load(&h->keys[i].signatures);
	st->copies = atomic_load(&h->ncopies);
	st->copies_refused = atomic_load(&h->copies_refused);
	st->sign_sessions = atomic_load(&h->ahead_sessions);
	st->prepared = atomic_load(&h->prepared);
	st->prepare_inits = atomic_load(&h->prepare_inits);
	return 0;
}
