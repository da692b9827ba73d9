/*
 * Recovery of libregsign-hsm after HSM loss, driven through the fault module
 * (tests/fault/p11fault.c) in front of a fresh SoftHSM token per case: every
 * recoverable CKR_ code, dropped sessions, a token away for a while or for
 * too long, a key changed behind our back, a PIN changed behind our back, and
 * many threads hitting one loss.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/rand.h>

#include "pkcs11/hsm.h"
#include "tests/fixture/softhsm.h"
#include "tests/unit/test_hsm_util.h"

struct rctx {
	struct fixture_token t;
	char control[PATH_MAX + 32];
	hsm_t *h;
	int k;
};

/* A fresh token, the fault module in front of it, one P-256 key "zsk". */
static void rctx_open(struct rctx *c, unsigned sessions, unsigned timeout_ms)
{
	unsigned char id[16];
	char uri[512];

	memset(c, 0, sizeof(*c));
	assert_int_equal(fixture_token_new(&c->t, "recover"), 0);
	hsmt_fault_setup(&c->t, c->control, sizeof(c->control));
	assert_int_equal(hsmt_open(&c->t, hsmt_fault_module(), sessions, timeout_ms,
	                           &c->h), 0);
	assert_int_equal(hsm_keygen_ec(c->h, "zsk", id), 0);
	hsmt_key_uri(&c->t, "zsk", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(c->h, "zsk", uri, &c->k), 0);
}

static void rctx_close(struct rctx *c)
{
	hsm_close(c->h);
	c->h = NULL;
	fixture_token_free(&c->t);
}

/* Each test keeps its context in *state, so that a failed test's handle and
 * token are still cleaned up (cmocka runs the teardown after a failure) and
 * cannot leak into the next test. */
static int setup(void **state)
{
	*state = calloc(1, sizeof(struct rctx));
	return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	rctx_close(*state);
	free(*state);
	return 0;
}

static unsigned long stat_of(struct rctx *c, const char *name)
{
	return hsmt_fault_stat(c->control, name);
}

static void assert_status(struct rctx *c, enum hsm_state state, unsigned long recoveries,
                          unsigned long failures)
{
	struct hsm_status st;

	assert_int_equal(hsm_status_get(c->h, &st), 0);
	assert_int_equal(st.state, state);
	assert_int_equal(st.recoveries, recoveries);
	assert_int_equal(st.recovery_failures, failures);
}

static const char *const recoverable[] = {
	"CKR_SESSION_HANDLE_INVALID", "CKR_SESSION_CLOSED", "CKR_DEVICE_ERROR",
	"CKR_DEVICE_REMOVED", "CKR_TOKEN_NOT_PRESENT", "CKR_USER_NOT_LOGGED_IN",
	"CKR_KEY_HANDLE_INVALID", "CKR_OBJECT_HANDLE_INVALID",
	"CKR_CRYPTOKI_NOT_INITIALIZED",
};

/* Each code, injected once into C_SignInit and once into C_Sign: the signing
 * call still succeeds, after exactly one recovery that logged in again and
 * found the key again. */
static void test_each_recoverable_code(void **state)
{
	static const char *const where[] = { "C_SignInit", "C_Sign" };
	char text[256];

	for (size_t i = 0; i < sizeof(recoverable) / sizeof(recoverable[0]); i++) {
		for (size_t w = 0; w < 2; w++) {
			struct rctx *c = *state;
			unsigned long login, find, init, fin;

			rctx_close(c);
			rctx_open(c, 2, 5000);
			login = stat_of(c, "C_Login");
			find = stat_of(c, "C_FindObjectsInit");
			init = stat_of(c, "C_Initialize");
			fin = stat_of(c, "C_Finalize");
			snprintf(text, sizeof(text), "count *\n%s %s 1\n", where[w],
			         recoverable[i]);
			hsmt_fault_write(c->control, text);
			print_message("%s in %s\n", recoverable[i], where[w]);
			hsmt_sign_check(c->h, c->k);
			assert_int_equal(stat_of(c, "injected"), 1);
			assert_status(c, HSM_STATE_UP, 1, 0);
			/* Re-initialised, logged in once more, and the private
			 * and public key looked up again. */
			assert_int_equal(stat_of(c, "C_Finalize") - fin, 1);
			assert_int_equal(stat_of(c, "C_Initialize") - init, 1);
			assert_int_equal(stat_of(c, "C_Login") - login, 1);
			assert_true(stat_of(c, "C_FindObjectsInit") - find >= 2);
			/* The module is told to lock with the OS's primitives:
			 * our threads call it at once. */
			assert_int_equal(stat_of(c, "init-flags"), CKF_OS_LOCKING_OK);
			{
				struct hsm_status st;
				assert_int_equal(hsm_status_get(c->h, &st), 0);
				assert_int_equal(st.signatures[c->k], 2);
				assert_int_equal(st.generation, 1);
			}
		}
	}
}

/* An error that does not mean loss is reported, not recovered; a loss that
 * persists after the recovery is retried once only. */
static void test_no_recovery_and_single_retry(void **state)
{
	struct rctx *c = *state;
	unsigned char digest[32], sig[HSM_SIG_MAX], buf[16];
	size_t siglen = sizeof(sig);
	unsigned long calls;

	rctx_open(c, 1, 5000);
	memset(digest, 7, sizeof(digest));
	hsmt_fault_write(c->control, "count *\nC_Sign CKR_GENERAL_ERROR 1\n");
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_RAW, sig, &siglen),
	                 HSM_ERR_PKCS11);
	assert_non_null(strstr(hsm_last_error(c->h), "CKR_GENERAL_ERROR"));
	assert_status(c, HSM_STATE_UP, 0, 0);
	/* The session is still usable afterwards. */
	hsmt_sign_check(c->h, c->k);
	/* The same by number (CKR_FUNCTION_FAILED is 6) in C_SignInit. */
	hsmt_fault_write(c->control, "count *\nC_SignInit 0x6 1\n");
	siglen = sizeof(sig);
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_DER, sig, &siglen),
	                 HSM_ERR_PKCS11);
	assert_non_null(strstr(hsm_last_error(c->h), "C_SignInit: CKR_FUNCTION_FAILED"));
	assert_status(c, HSM_STATE_UP, 0, 0);
	hsmt_sign_check(c->h, c->k);

	/* C_GenerateRandom is not used by the recovery itself, so both faults
	 * land on the caller's two attempts. */
	hsmt_fault_write(c->control, "count *\nC_GenerateRandom CKR_DEVICE_ERROR 2\n");
	calls = stat_of(c, "C_GenerateRandom");
	assert_int_equal(hsm_random(c->h, buf, sizeof(buf)), HSM_ERR_UNAVAILABLE);
	assert_int_equal(stat_of(c, "C_GenerateRandom") - calls, 2);
	assert_status(c, HSM_STATE_UP, 1, 0);
	assert_int_equal(hsm_random(c->h, buf, sizeof(buf)), 0);
}

static void test_invalidate(void **state)
{
	struct rctx *c = *state;

	rctx_open(c, 3, 5000);
	hsmt_fault_write(c->control, "count *\ninvalidate\n");
	hsmt_sign_check(c->h, c->k);
	assert_int_equal(stat_of(c, "invalidations"), 1);
	assert_status(c, HSM_STATE_UP, 1, 0);
	/* A second restart of the HSM, a second recovery. */
	hsmt_fault_write(c->control, "count *\ninvalidate\n");
	hsmt_sign_check(c->h, c->k);
	assert_int_equal(stat_of(c, "invalidations"), 2);
	assert_status(c, HSM_STATE_UP, 2, 0);
}

/* The token is away for three looks and then back: the recovery waits for it. */
static void test_down_n(void **state)
{
	struct rctx *c = *state;
	unsigned long lists;

	rctx_open(c, 2, 10000);
	lists = stat_of(c, "C_GetSlotList");
	hsmt_fault_write(c->control, "count *\ninvalidate\ndown 3\n");
	hsmt_sign_check(c->h, c->k);
	assert_status(c, HSM_STATE_UP, 1, 0);
	assert_true(stat_of(c, "C_GetSlotList") - lists >= 4);
}

static void test_down_for_a_while(void **state)
{
	struct rctx *c = *state;
	unsigned long t0, dt;

	rctx_open(c, 2, 20000);
	t0 = hsmt_now_ms();
	hsmt_fault_write(c->control, "count *\ninvalidate\ndown-ms 500\n");
	hsmt_sign_check(c->h, c->k);
	dt = hsmt_now_ms() - t0;
	assert_true(dt >= 500);
	assert_true(dt < 15000);
	assert_status(c, HSM_STATE_UP, 1, 0);
}

/* Away longer than the recovery timeout: the call fails, retryable; the
 * handle stays usable and recovers once the token is back. */
static void check_down_too_long(struct rctx *c, const char *down_line)
{
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct hsm_status st;
	unsigned long t0, dt;
	char text[128];

	rctx_close(c);
	rctx_open(c, 2, 300);
	memset(digest, 1, sizeof(digest));
	snprintf(text, sizeof(text), "count *\ninvalidate\n%s\n", down_line);
	hsmt_fault_write(c->control, text);
	t0 = hsmt_now_ms();
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_RAW, sig, &siglen),
	                 HSM_ERR_UNAVAILABLE);
	dt = hsmt_now_ms() - t0;
	assert_true(dt >= 300);
	assert_true(dt < 10000);
	assert_non_null(strstr(hsm_last_error(c->h), "token"));
	assert_int_equal(hsm_status_get(c->h, &st), 0);
	assert_int_equal(st.state, HSM_STATE_DOWN);
	assert_int_equal(st.down_err, HSM_ERR_UNAVAILABLE);
	assert_false(st.permanent);
	assert_int_equal(st.recovery_failures, 1);
	/* Still away: each call tries again and fails again. */
	siglen = sizeof(sig);
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_RAW, sig, &siglen),
	                 HSM_ERR_UNAVAILABLE);
	assert_status(c, HSM_STATE_DOWN, 0, 2);
	/* Back. */
	hsmt_fault_write(c->control, "count *\n");
	hsmt_sign_check(c->h, c->k);
	assert_status(c, HSM_STATE_UP, 1, 2);
}

static void test_down_too_long(void **state)
{
	check_down_too_long(*state, "down inf");
	check_down_too_long(*state, "down 100000");
	check_down_too_long(*state, "down-ms 100000");
}

/* Someone replaced the key under the same label: the old handle is invalid
 * (a real CKR_KEY_HANDLE_INVALID from SoftHSM, no injection), the recovery
 * finds a different public key and the handle stays down for good. */
static void test_key_changed(void **state)
{
	struct rctx *c = *state;
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen = sizeof(sig);
	struct hsm_status st;
	unsigned long inits;

	rctx_open(c, 2, 2000);
	hsmt_sign_check(c->h, c->k);
	hsmt_replace_key(&c->t, "zsk");

	memset(digest, 3, sizeof(digest));
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_RAW, sig, &siglen),
	                 HSM_ERR_KEY_MISMATCH);
	assert_non_null(strstr(hsm_last_error(c->h), "changed"));
	assert_int_equal(hsm_status_get(c->h, &st), 0);
	assert_int_equal(st.state, HSM_STATE_DOWN);
	assert_true(st.permanent);
	assert_int_equal(st.down_err, HSM_ERR_KEY_MISMATCH);
	/* Down for good: no further recovery is even tried. */
	inits = stat_of(c, "C_Initialize");
	siglen = sizeof(sig);
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_RAW, sig, &siglen),
	                 HSM_ERR_KEY_MISMATCH);
	assert_int_equal(stat_of(c, "C_Initialize"), inits);
	assert_status(c, HSM_STATE_DOWN, 0, 1);
}

/* The PIN was changed behind our back: the recovery's one C_Login fails and
 * is never repeated. */
static void test_pin_refused_at_recovery(void **state)
{
	struct rctx *c = *state;
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen = sizeof(sig);
	unsigned long logins;
	FILE *f;

	rctx_open(c, 2, 2000);
	f = fopen(c->t.pin_file, "w");
	assert_non_null(f);
	fputs("wrong-pin", f);
	assert_int_equal(fclose(f), 0);
	logins = stat_of(c, "C_Login");
	hsmt_fault_write(c->control, "count *\ninvalidate\n");
	memset(digest, 5, sizeof(digest));
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_RAW, sig, &siglen),
	                 HSM_ERR_PIN);
	assert_int_equal(stat_of(c, "C_Login") - logins, 1);
	siglen = sizeof(sig);
	assert_int_equal(hsm_sign(c->h, c->k, digest, 32, HSM_SIG_RAW, sig, &siglen),
	                 HSM_ERR_PIN);
	assert_int_equal(stat_of(c, "C_Login") - logins, 1);
	assert_status(c, HSM_STATE_DOWN, 0, 1);
}

struct signer {
	struct rctx *c;
	pthread_barrier_t *go;
	int n;                 /* signatures to make; 0: until *stop */
	atomic_bool *stop;
	int done;
	int failures;
	int last_err;
	char last_text[256];
};

static void *signer_main(void *arg)
{
	struct signer *s = arg;
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen;
	int r;

	pthread_barrier_wait(s->go);
	for (int i = 0; s->n > 0 ? i < s->n : !atomic_load(s->stop); i++) {
		RAND_bytes(digest, sizeof(digest));
		siglen = sizeof(sig);
		r = hsm_sign(s->c->h, s->c->k, digest, 32, i % 2 ? HSM_SIG_DER : HSM_SIG_RAW,
		             sig, &siglen);
		s->done++;
		if (r != 0) {
			s->failures++;
			s->last_err = r;
			snprintf(s->last_text, sizeof(s->last_text), "%s",
			         hsm_last_error(s->c->h));
		}
	}
	return NULL;
}

/* Four threads hit the same loss at once: one recovery, four signatures. */
static void test_threads_one_recovery(void **state)
{
	struct rctx *c = *state;
	pthread_t th[4];
	struct signer s[4];
	pthread_barrier_t go;

	rctx_open(c, 4, 10000);
	/* The delay holds all four in C_SignInit together, so that each of
	 * them then meets one of the four faults in C_Sign. */
	hsmt_fault_write(c->control, "count *\ndelay C_SignInit 300\n"
	                 "C_Sign CKR_DEVICE_ERROR 4\n");
	pthread_barrier_init(&go, NULL, 4);
	for (int i = 0; i < 4; i++) {
		s[i] = (struct signer){ .c = c, .go = &go, .n = 1 };
		assert_int_equal(pthread_create(&th[i], NULL, signer_main, &s[i]), 0);
	}
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 4; i++)
		assert_int_equal(s[i].failures, 0);
	assert_int_equal(stat_of(c, "injected"), 4);
	assert_int_equal(stat_of(c, "overlap"), 0);
	assert_status(c, HSM_STATE_UP, 1, 0);
}

/* Signing under load while the HSM restarts now and then: no call fails.
 * The restarts are far enough apart (300 ms) that the one retry after a
 * recovery does not meet the next restart. */
static void test_recover_under_load(void **state)
{
	struct rctx *c = *state;
	pthread_t th[4];
	struct signer s[4];
	pthread_barrier_t go;
	struct hsm_status st;
	atomic_bool stop = false;
	unsigned long total = 0;

	rctx_open(c, 2, 10000);
	pthread_barrier_init(&go, NULL, 5);
	for (int i = 0; i < 4; i++) {
		s[i] = (struct signer){ .c = c, .go = &go, .stop = &stop };
		assert_int_equal(pthread_create(&th[i], NULL, signer_main, &s[i]), 0);
	}
	pthread_barrier_wait(&go);
	for (int i = 0; i < 3; i++) {
		struct timespec ts = { 0, 300 * 1000000L };
		nanosleep(&ts, NULL);
		hsmt_fault_write(c->control, i % 2 ? "count *\ninvalidate\n" :
		                 "invalidate\ncount *\n");
	}
	{
		struct timespec ts = { 0, 300 * 1000000L };
		nanosleep(&ts, NULL);
	}
	atomic_store(&stop, true);
	for (int i = 0; i < 4; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < 4; i++) {
		if (s[i].failures != 0)
			fail_msg("thread %d: %d failures, last %s: %s", i, s[i].failures,
			         hsm_strerror(s[i].last_err), s[i].last_text);
		total += (unsigned long)s[i].done;
	}
	assert_int_equal(hsm_status_get(c->h, &st), 0);
	assert_int_equal(st.state, HSM_STATE_UP);
	assert_int_equal(st.signatures[c->k], total);
	assert_int_equal(stat_of(c, "invalidations"), 3);
	assert_true(st.recoveries >= 1);
	assert_true(st.recoveries <= 3);
	assert_int_equal(stat_of(c, "overlap"), 0);
	assert_int_equal(stat_of(c, "mixup"), 0);
	hsmt_sign_check(c->h, c->k);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_each_recoverable_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_recovery_and_single_retry, setup, teardown),
		cmocka_unit_test_setup_teardown(test_invalidate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down_n, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down_for_a_while, setup, teardown),
		cmocka_unit_test_setup_teardown(test_down_too_long, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_changed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_refused_at_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_threads_one_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_recover_under_load, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
