/*
 * Signing operations initialised ahead (hsm_config.sign_ahead, hsm_prepare(),
 * pkcs11/hsm_ahead.c), through the fault module in front of a fresh SoftHSM
 * token per case. The module's call counters show where each C_SignInit
 * happened: in hsm_prepare(), and not in the hsm_sign() that follows, which
 * makes only its C_Sign. With and without session copies; the copy's first
 * signature is still verified; the token object is still looked at; a busy
 * session or a running recovery never holds hsm_prepare() up; a lost session
 * recovers and can be prepared again; a failed C_Sign gets a fresh session;
 * sign_ahead false prepares nothing; and
 * threads that sign and prepare at once get only signatures that verify.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "pkcs11/hsm.h"
/* One white-box case swaps a key's recorded public key (see below). */
#include "pkcs11/hsm_impl.h"
#include "tests/fixture/softhsm.h"
#include "tests/unit/test_hsm_util.h"

#define NKEYS 2

struct actx {
	struct fixture_token t;
	char control[PATH_MAX + 32];
	hsm_t *h;
	int k[NKEYS];
	unsigned char *spki[NKEYS];
	size_t spki_len[NKEYS];
};

static const char *const labels[NKEYS] = { "zsk", "ksk" };

/* A fresh token behind the fault module with NKEYS P-256 keys; every call
 * counted from here on. */
static void actx_open(struct actx *c, unsigned sessions, bool copies, bool ahead,
                      unsigned check_ms)
{
	unsigned char id[16];
	char uri[512], err[256];
	struct hsm_config cfg = {
		.module_path = hsmt_fault_module(),
		.sessions = sessions,
		.recover_timeout_ms = 5000,
		.session_copies = copies,
		.copy_check_ms = check_ms,
		.sign_ahead = ahead,
		.errbuf = err,
		.errbuf_len = sizeof(err),
	};

	assert_int_equal(fixture_token_new(&c->t, "ahead"), 0);
	hsmt_fault_setup(&c->t, c->control, sizeof(c->control));
	cfg.token_uri = c->t.uri;
	cfg.pin_file = c->t.pin_file;
	if (hsm_open(&cfg, &c->h) != 0)
		fail_msg("hsm_open: %s", err);
	for (int i = 0; i < NKEYS; i++) {
		assert_int_equal(hsm_keygen_ec(c->h, labels[i], id), 0);
		hsmt_key_uri(&c->t, labels[i], NULL, 0, uri, sizeof(uri));
		assert_int_equal(hsm_key_add(c->h, labels[i], uri, &c->k[i]), 0);
		assert_int_equal(hsm_key_public(c->h, c->k[i], &c->spki[i], &c->spki_len[i]), 0);
	}
	hsmt_fault_write(c->control, "count *\n");
}

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct actx));
	return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	struct actx *c = *state;

	hsm_close(c->h);
	for (int i = 0; i < NKEYS; i++)
		free(c->spki[i]);
	fixture_token_free(&c->t);
	free(c);
	return 0;
}

static unsigned long stat_of(struct actx *c, const char *name)
{
	return hsmt_fault_stat(c->control, name);
}

static struct hsm_status status_of(struct actx *c)
{
	struct hsm_status st;

	assert_int_equal(hsm_status_get(c->h, &st), 0);
	return st;
}

/* One raw signature with key i over a random digest; on success it must
 * verify against the key's public key. */
static int sign_once(struct actx *c, int i)
{
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen = sizeof(sig);
	int r;

	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	r = hsm_sign(c->h, c->k[i], digest, sizeof(digest), HSM_SIG_RAW, sig, &siglen);
	if (r == 0)
		assert_true(hsmt_verify(c->spki[i], c->spki_len[i], digest, sizeof(digest), sig,
		                        siglen, true));
	return r;
}

/*
 * hsm_prepare() opens a signing session per slot and key and initialises an
 * operation in each; the signature that follows makes its C_Sign only and
 * counts as prepared; the next one, with nothing prepared, initialises as
 * before; hsm_prepare() then redoes just the operation consumed.
 */
static void prepared_sign(struct actx *c, unsigned sessions)
{
	unsigned long inits, signs, opens;
	struct hsm_status st;
	int want = (int)sessions * NKEYS;

	inits = stat_of(c, "C_SignInit");
	opens = stat_of(c, "C_OpenSession");
	assert_int_equal(hsm_prepare(c->h), want);
	assert_int_equal(stat_of(c, "C_SignInit") - inits, (unsigned long)want);
	assert_int_equal(stat_of(c, "C_OpenSession") - opens, (unsigned long)want);
	st = status_of(c);
	assert_int_equal(st.sign_sessions, (unsigned)want);
	assert_int_equal(st.prepare_inits, (unsigned long)want);
	assert_int_equal(st.prepared, 0);
	/* Everything is ready: a second call has nothing to do. */
	assert_int_equal(hsm_prepare(c->h), 0);
	assert_int_equal(stat_of(c, "C_SignInit") - inits, (unsigned long)want);

	inits = stat_of(c, "C_SignInit");
	signs = stat_of(c, "C_Sign");
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(stat_of(c, "C_SignInit"), inits);
	assert_int_equal(stat_of(c, "C_Sign") - signs, 1);
	assert_int_equal(status_of(c).prepared, 1);

	/* Nothing prepared for this one (same slot, operation consumed). */
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(stat_of(c, "C_SignInit") - inits, 1);
	assert_int_equal(status_of(c).prepared, 1);

	/* The other key was prepared too. */
	assert_int_equal(sign_once(c, 1), 0);
	assert_int_equal(stat_of(c, "C_SignInit") - inits, 1);
	assert_int_equal(status_of(c).prepared, 2);

	/* Only what was consumed is initialised again, on the same sessions. */
	opens = stat_of(c, "C_OpenSession");
	assert_int_equal(hsm_prepare(c->h), 2);
	assert_int_equal(stat_of(c, "C_SignInit") - inits, 3);
	assert_int_equal(stat_of(c, "C_OpenSession"), opens);
	for (int i = 0; i < 10; i++) {
		assert_int_equal(sign_once(c, i % NKEYS), 0);
		assert_true(hsm_prepare(c->h) >= 1);
	}
	st = status_of(c);
	assert_int_equal(st.prepared, 12);
	assert_int_equal(st.signatures[c->k[0]] + st.signatures[c->k[1]], 13);
	assert_int_equal(stat_of(c, "overlap"), 0);
	assert_int_equal(st.state, HSM_STATE_UP);
}

static void test_prepared_token_object(void **state)
{
	struct actx *c = *state;

	actx_open(c, 2, false, true, 1000);
	prepared_sign(c, 2);
	assert_int_equal(stat_of(c, "C_CopyObject"), 0);
}

static void test_prepared_copies(void **state)
{
	struct actx *c = *state;
	struct hsm_status st;

	actx_open(c, 2, true, true, 1000);
	prepared_sign(c, 2);
	/* hsm_prepare() made each slot's copy of each key, once. */
	assert_int_equal(stat_of(c, "C_CopyObject"), 2 * NKEYS);
	st = status_of(c);
	assert_int_equal(st.copies, 2 * NKEYS);
	assert_int_equal(st.copies_refused, 0);
}

/*
 * An operation initialised ahead on the token object no longer lets the
 * module look at the object when the request comes, so the signature looks
 * at it (as a copy's does): with check 0 every prepared signature reads the
 * token object first; a signature initialised on the spot does not need to.
 */
static void test_prepared_checks_token_object(void **state)
{
	struct actx *c = *state;
	unsigned long attrs;

	actx_open(c, 1, false, true, 0);
	assert_int_equal(hsm_prepare(c->h), NKEYS);
	attrs = stat_of(c, "C_GetAttributeValue");
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(stat_of(c, "C_GetAttributeValue") - attrs, 1);
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(stat_of(c, "C_GetAttributeValue") - attrs, 1);
	assert_int_equal(status_of(c).prepared, 1);

	/* A key replaced in the token is found by the prepared signature. */
	assert_int_equal(hsm_prepare(c->h), 1);
	hsmt_replace_key(&c->t, "zsk");
	assert_int_equal(sign_once(c, 0), HSM_ERR_KEY_MISMATCH);
	assert_true(status_of(c).permanent);
}

/*
 * With copies, hsm_prepare() makes the copy and initialises the operation on
 * it; the copy's first signature is still verified against the public key
 * recorded at hsm_key_add(). White box: the recorded key is swapped for the
 * other key's, so that the check must refuse; the C_SignInit count shows the
 * refused signature was the prepared one.
 */
static void test_copy_first_signature_checked(void **state)
{
	struct actx *c = *state;
	struct hsm_key *k;
	unsigned char *saved;
	size_t saved_len;
	unsigned long inits;
	int r;

	actx_open(c, 1, true, true, 60000);
	assert_int_equal(hsm_prepare(c->h), NKEYS);
	k = &c->h->keys[c->k[0]];
	saved = k->spki;
	saved_len = k->spki_len;
	k->spki = c->spki[1];
	k->spki_len = c->spki_len[1];
	inits = stat_of(c, "C_SignInit");
	r = sign_once(c, 0);
	k->spki = saved;
	k->spki_len = saved_len;
	assert_int_equal(r, HSM_ERR_KEY_MISMATCH);
	assert_non_null(strstr(hsm_last_error(c->h), "session copy signs for another key"));
	assert_int_equal(stat_of(c, "C_SignInit"), inits);
	assert_int_equal(status_of(c).prepared, 1);
	assert_int_equal(status_of(c).signatures[c->k[0]], 0);
	/* With the true key back, the copy's first good signature passes. */
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(hsm_prepare(c->h), 1);
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(status_of(c).prepared, 2);
}

struct slow_sign {
	struct actx *c;
	int r;
};

static void *slow_sign_run(void *arg)
{
	struct slow_sign *s = arg;

	s->r = sign_once(s->c, 0);
	return NULL;
}

/* Waits (liveness bound) until the fault module has seen a C_Sign more than
 * @p before: the signing thread is inside it and holds its session. */
static void wait_in_sign(struct actx *c, unsigned long before)
{
	unsigned long t0 = hsmt_now_ms();

	while (stat_of(c, "C_Sign") <= before) {
		if (hsmt_now_ms() - t0 > 30000)
			fail_msg("the signing thread never reached C_Sign");
		usleep(1000);
	}
}

/* The only session is busy (a C_Sign that takes 3 s): hsm_prepare() returns
 * at once, having done nothing. The bound is far below the 3 s it would wait. */
static void test_prepare_busy_returns(void **state)
{
	struct actx *c = *state;
	struct slow_sign s = { c, -1 };
	unsigned long signs, inits, t0, took;
	pthread_t th;
	int r;

	actx_open(c, 1, true, true, 1000);
	signs = stat_of(c, "C_Sign");
	hsmt_fault_write(c->control, "count *\ndelay C_Sign 3000\n");
	assert_int_equal(pthread_create(&th, NULL, slow_sign_run, &s), 0);
	wait_in_sign(c, signs);
	inits = stat_of(c, "C_SignInit");
	t0 = hsmt_now_ms();
	r = hsm_prepare(c->h);
	took = hsmt_now_ms() - t0;
	pthread_join(th, NULL);
	assert_int_equal(r, 0);
	assert_true(took < 1500);
	assert_int_equal(stat_of(c, "C_SignInit"), inits);
	assert_int_equal(s.r, 0);
	assert_int_equal(status_of(c).prepare_inits, 0);
}

/* A recovery is running (the token away for 2 s): hsm_prepare() neither
 * waits for it nor starts one. */
static void test_prepare_never_waits_for_recovery(void **state)
{
	struct actx *c = *state;
	struct slow_sign s = { c, -1 };
	unsigned long t0, took;
	pthread_t th;
	int r;

	actx_open(c, 2, true, true, 1000);
	assert_int_equal(hsm_prepare(c->h), 2 * NKEYS);
	hsmt_fault_write(c->control, "count *\ninvalidate\ndown-ms 2000\n");
	assert_int_equal(pthread_create(&th, NULL, slow_sign_run, &s), 0);
	t0 = hsmt_now_ms();
	while (status_of(c).state != HSM_STATE_RECOVERING) {
		if (hsmt_now_ms() - t0 > 30000) {
			pthread_join(th, NULL);
			fail_msg("no recovery started");
		}
		usleep(1000);
	}
	t0 = hsmt_now_ms();
	r = hsm_prepare(c->h);
	took = hsmt_now_ms() - t0;
	pthread_join(th, NULL);
	assert_int_equal(r, 0);
	assert_true(took < 1000);
	/* The signature waited for the token and got through. */
	assert_int_equal(s.r, 0);
	assert_int_equal(status_of(c).recoveries, 1);
}

/*
 * The HSM restarts under prepared operations: the signature fails on its
 * signing session, the recovery closes every session (nothing is prepared
 * any more) and the retry signs; hsm_prepare() then prepares again. A
 * prepare that meets the lost HSM says so and leaves the recovery to the
 * next signature.
 */
static void test_session_loss(void **state)
{
	struct actx *c = *state;
	struct hsm_status st;
	int r;

	actx_open(c, 2, true, true, 1000);
	assert_int_equal(hsm_prepare(c->h), 2 * NKEYS);
	hsmt_fault_write(c->control, "count *\ninvalidate\n");
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(stat_of(c, "invalidations"), 1);
	st = status_of(c);
	assert_int_equal(st.recoveries, 1);
	assert_int_equal(st.sign_sessions, 0);
	assert_int_equal(st.prepared, 0);
	assert_int_equal(hsm_prepare(c->h), 2 * NKEYS);
	assert_int_equal(status_of(c).sign_sessions, 2 * NKEYS);
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(sign_once(c, 1), 0);
	assert_int_equal(status_of(c).prepared, 2);

	/* Lost again, and found by hsm_prepare() (two operations to redo). */
	hsmt_fault_write(c->control, "count *\ninvalidate\n");
	r = hsm_prepare(c->h);
	assert_int_equal(r, HSM_ERR_UNAVAILABLE);
	st = status_of(c);
	assert_int_equal(st.state, HSM_STATE_UP);
	assert_int_equal(st.recoveries, 1);
	assert_int_equal(sign_once(c, 1), 0);
	assert_int_equal(status_of(c).recoveries, 2);
	assert_int_equal(hsm_prepare(c->h), 2 * NKEYS);
}

/*
 * A C_Sign that fails on a prepared operation leaves the signing session
 * stale: the next signature closes it and opens a fresh one rather than
 * trusting what the module left in it, and makes exactly one C_Sign (no
 * throwaway signature to end an operation).
 */
static void test_failed_sign_reopens(void **state)
{
	struct actx *c = *state;
	unsigned long opens, closes, signs;

	actx_open(c, 1, true, true, 60000);
	assert_int_equal(hsm_prepare(c->h), NKEYS);
	hsmt_fault_write(c->control, "count *\nC_Sign CKR_FUNCTION_FAILED 1\n");
	assert_int_equal(sign_once(c, 0), HSM_ERR_PKCS11);
	assert_non_null(strstr(hsm_last_error(c->h), "C_Sign"));
	opens = stat_of(c, "C_OpenSession");
	closes = stat_of(c, "C_CloseSession");
	signs = stat_of(c, "C_Sign");
	assert_int_equal(sign_once(c, 0), 0);
	assert_int_equal(stat_of(c, "C_OpenSession") - opens, 1);
	assert_int_equal(stat_of(c, "C_CloseSession") - closes, 1);
	assert_int_equal(stat_of(c, "C_Sign") - signs, 1);
	assert_int_equal(status_of(c).sign_sessions, NKEYS);
	assert_int_equal(status_of(c).state, HSM_STATE_UP);
	assert_int_equal(hsm_prepare(c->h), 1);
	assert_int_equal(sign_once(c, 0), 0);
}

/* sign_ahead false: hsm_prepare() makes no call at all and signing is as
 * before. */
static void test_off_never_prepares(void **state)
{
	struct actx *c = *state;
	unsigned long inits, opens;
	struct hsm_status st;

	actx_open(c, 2, true, false, 1000);
	inits = stat_of(c, "C_SignInit");
	opens = stat_of(c, "C_OpenSession");
	for (int i = 0; i < 5; i++) {
		assert_int_equal(hsm_prepare(c->h), 0);
		assert_int_equal(sign_once(c, i % NKEYS), 0);
	}
	assert_int_equal(stat_of(c, "C_SignInit") - inits, 5);
	assert_int_equal(stat_of(c, "C_OpenSession"), opens);
	st = status_of(c);
	assert_int_equal(st.sign_sessions, 0);
	assert_int_equal(st.prepared, 0);
	assert_int_equal(st.prepare_inits, 0);
	assert_int_equal(hsm_prepare(NULL), HSM_ERR_ARG);
}

/* ---- threads ------------------------------------------------------------------------ */

struct racer {
	struct actx *c;
	pthread_barrier_t *go;
	atomic_int *stop;
	int n;          /* signatures to make; 0 = a preparer */
	int bad;        /* failed calls or signatures that do not verify */
	int prepares;
};

static void *racer_run(void *arg)
{
	struct racer *w = arg;
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen;
	int key, r;

	pthread_barrier_wait(w->go);
	if (w->n == 0) {
		while (!atomic_load(w->stop)) {
			r = hsm_prepare(w->c->h);
			/* A loss found here is the signers' to recover. */
			if (r < 0 && r != HSM_ERR_UNAVAILABLE)
				w->bad++;
			w->prepares++;
		}
		return NULL;
	}
	for (int i = 0; i < w->n; i++) {
		key = i % NKEYS;
		RAND_bytes(digest, sizeof(digest));
		siglen = sizeof(sig);
		if (hsm_sign(w->c->h, w->c->k[key], digest, 32, i % 3 ? HSM_SIG_RAW : HSM_SIG_DER,
		             sig, &siglen) != 0 ||
		    !hsmt_verify(w->c->spki[key], w->c->spki_len[key], digest, 32, sig, siglen,
		                 i % 3 != 0))
			w->bad++;
	}
	return NULL;
}

/*
 * Four signers and two preparers race on three sessions (copies on), and the
 * HSM restarts once in the middle. Every signature verifies, no session ever
 * has two calls at once, and some signatures found their operation ready.
 * (The fault module's "mixup" counts the C_Sign of a prepared operation, made
 * by another thread than its C_SignInit: that is the point here, not a bug;
 * the slot is handed over under the pool's lock.)
 */
static void test_threads_race(void **state)
{
	struct actx *c = *state;
	enum { SIGNERS = 4, PREPARERS = 2, PER = 150 };
	struct racer w[SIGNERS + PREPARERS];
	pthread_t th[SIGNERS + PREPARERS];
	pthread_barrier_t go;
	atomic_int stop = 0;
	struct hsm_status st;
	unsigned long total = 0;

	actx_open(c, 3, true, true, 200);
	pthread_barrier_init(&go, NULL, SIGNERS + PREPARERS + 1);
	for (int i = 0; i < SIGNERS + PREPARERS; i++) {
		w[i] = (struct racer){ c, &go, &stop, i < SIGNERS ? PER : 0, 0, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, racer_run, &w[i]), 0);
	}
	pthread_barrier_wait(&go);
	usleep(50000);
	hsmt_fault_write(c->control, "count *\ninvalidate\n");
	for (int i = 0; i < SIGNERS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&stop, 1);
	for (int i = SIGNERS; i < SIGNERS + PREPARERS; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < SIGNERS + PREPARERS; i++)
		assert_int_equal(w[i].bad, 0);
	st = status_of(c);
	for (int i = 0; i < NKEYS; i++)
		total += st.signatures[c->k[i]];
	assert_int_equal(total, SIGNERS * PER);
	assert_true(st.prepared > 0);
	assert_true(st.prepared <= total);
	assert_int_equal(stat_of(c, "overlap"), 0);
	assert_true(stat_of(c, "concurrent-max") >= 2);
	assert_int_equal(st.state, HSM_STATE_UP);
	assert_true(st.recoveries >= 1);
	print_message("prepared %lu of %lu signatures, %d+%d prepare calls, %lu recoveries\n",
	              st.prepared, total, w[SIGNERS].prepares, w[SIGNERS + 1].prepares,
	              st.recoveries);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_prepared_token_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepared_copies, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepared_checks_token_object, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_copy_first_signature_checked, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_prepare_busy_returns, setup, teardown),
		cmocka_unit_test_setup_teardown(test_prepare_never_waits_for_recovery, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_session_loss, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_sign_reopens, setup, teardown),
		cmocka_unit_test_setup_teardown(test_off_never_prepares, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_race, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
