/*
 * Concurrency of libregsign-hsm: threads sign at the same time on different
 * sessions, more threads than sessions wait for one, and no session is ever
 * used by two threads at once. The fault module in front of SoftHSM watches
 * every call: "overlap" counts calls that ran on a session already busy,
 * "mixup" a C_Sign by another thread than its C_SignInit, "concurrent-max"
 * the most calls in flight at once. A last case shows those detectors fire
 * when a session is shared, so their zeros mean something.
 */
#include <dlfcn.h>
#include <pthread.h>
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

struct tctx {
	struct fixture_token t;
	char control[PATH_MAX + 32];
	hsm_t *h;
	int k;
	unsigned char *spki;
	size_t spki_len;
};

static int setup(void **state)
{
	struct tctx *c = calloc(1, sizeof(*c));

	if (c == NULL || fixture_token_new(&c->t, "threads") != 0)
		return -1;
	hsmt_fault_setup(&c->t, c->control, sizeof(c->control));
	*state = c;
	return 0;
}

static int teardown(void **state)
{
	struct tctx *c = *state;

	hsm_close(c->h);
	free(c->spki);
	fixture_token_free(&c->t);
	free(c);
	return 0;
}

static void tctx_open(struct tctx *c, unsigned sessions)
{
	unsigned char id[16];
	char uri[512];

	assert_int_equal(hsmt_open(&c->t, hsmt_fault_module(), sessions, 10000, &c->h), 0);
	assert_int_equal(hsm_keygen_ec(c->h, "zsk", id), 0);
	hsmt_key_uri(&c->t, "zsk", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(c->h, "zsk", uri, &c->k), 0);
	assert_int_equal(hsm_key_public(c->h, c->k, &c->spki, &c->spki_len), 0);
}

struct worker {
	struct tctx *c;
	pthread_barrier_t *go;
	int n;
	int bad;       /* failed calls or signatures that do not verify */
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen;
	bool raw;

	pthread_barrier_wait(w->go);
	for (int i = 0; i < w->n; i++) {
		raw = i % 2 == 0;
		RAND_bytes(digest, sizeof(digest));
		siglen = sizeof(sig);
		if (hsm_sign(w->c->h, w->c->k, digest, 32, raw ? HSM_SIG_RAW : HSM_SIG_DER,
		             sig, &siglen) != 0 ||
		    !hsmt_verify(w->c->spki, w->c->spki_len, digest, 32, sig, siglen, raw))
			w->bad++;
	}
	return NULL;
}

static void run_workers(struct tctx *c, int nthreads, int per_thread)
{
	pthread_t th[16];
	struct worker w[16];
	pthread_barrier_t go;

	assert_true(nthreads <= 16);
	pthread_barrier_init(&go, NULL, (unsigned)nthreads);
	for (int i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ c, &go, per_thread, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	/* Join all before asserting: a failed assertion jumps out of the test
	 * and must not leave threads running on a handle being closed. */
	for (int i = 0; i < nthreads; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	for (int i = 0; i < nthreads; i++)
		assert_int_equal(w[i].bad, 0);
}

/* Two threads, two sessions: they really sign at the same time. */
static void test_two_threads_at_once(void **state)
{
	struct tctx *c = *state;
	struct hsm_status st;

	tctx_open(c, 2);
	/* A short delay inside C_Sign makes the two threads' calls overlap in
	 * time, as they would on a slower HSM. */
	hsmt_fault_write(c->control, "count *\ndelay C_Sign 2\n");
	run_workers(c, 2, 100);
	assert_int_equal(hsm_status_get(c->h, &st), 0);
	assert_int_equal(st.signatures[c->k], 200);
	assert_int_equal(hsmt_fault_stat(c->control, "overlap"), 0);
	assert_int_equal(hsmt_fault_stat(c->control, "mixup"), 0);
	assert_int_equal(hsmt_fault_stat(c->control, "concurrent-max"), 2);
}

/* Eight threads share two sessions: everyone signs, never two on one. */
static void test_more_threads_than_sessions(void **state)
{
	struct tctx *c = *state;
	struct hsm_status st;

	tctx_open(c, 2);
	hsmt_fault_write(c->control, "count *\ndelay C_Sign 1\n");
	run_workers(c, 8, 40);
	assert_int_equal(hsm_status_get(c->h, &st), 0);
	assert_int_equal(st.signatures[c->k], 320);
	assert_int_equal(st.recoveries, 0);
	assert_int_equal(hsmt_fault_stat(c->control, "overlap"), 0);
	assert_int_equal(hsmt_fault_stat(c->control, "mixup"), 0);
	/* Never more calls in flight than there are sessions. */
	assert_int_equal(hsmt_fault_stat(c->control, "concurrent-max"), 2);
}

/* One session, four threads: they take turns. */
static void test_one_session(void **state)
{
	struct tctx *c = *state;

	tctx_open(c, 1);
	hsmt_fault_write(c->control, "count *\n");
	run_workers(c, 4, 30);
	assert_int_equal(hsmt_fault_stat(c->control, "overlap"), 0);
	assert_int_equal(hsmt_fault_stat(c->control, "mixup"), 0);
	assert_int_equal(hsmt_fault_stat(c->control, "concurrent-max"), 1);
}

struct sharer {
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	pthread_barrier_t *go;
};

static void *sharer_main(void *arg)
{
	struct sharer *sh = arg;
	unsigned char buf[8];

	pthread_barrier_wait(sh->go);
	sh->f->C_GenerateRandom(sh->s, buf, sizeof(buf));
	return NULL;
}

/* What the library must never do, done on purpose through the fault
 * module: two threads on one session. The detector sees it. */
static void test_detector_sees_shared_session(void **state)
{
	struct tctx *c = *state;
	struct fixture_token t2 = c->t;
	struct hsmt_raw raw;
	pthread_t th[2];
	struct sharer sh[2];
	pthread_barrier_t go;

	snprintf(t2.module, sizeof(t2.module), "%s", hsmt_fault_module());
	hsmt_fault_write(c->control, "count *\ndelay C_GenerateRandom 200\n");
	hsmt_raw_open(&raw, &t2);
	pthread_barrier_init(&go, NULL, 2);
	for (int i = 0; i < 2; i++) {
		sh[i] = (struct sharer){ raw.f, raw.s, &go };
		assert_int_equal(pthread_create(&th[i], NULL, sharer_main, &sh[i]), 0);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&go);
	hsmt_raw_close(&raw);
	assert_true(hsmt_fault_stat(c->control, "overlap") >= 1);
}

struct half {
	CK_FUNCTION_LIST_PTR f;
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	CK_RV rv;
};

static void *sign_init_main(void *arg)
{
	struct half *x = arg;
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };

	x->rv = x->f->C_SignInit(x->s, &mech, x->key);
	return NULL;
}

static void *sign_main(void *arg)
{
	struct half *x = arg;
	unsigned char digest[32] = { 0 }, sig[128];
	CK_ULONG len = sizeof(sig);

	x->rv = x->f->C_Sign(x->s, digest, sizeof(digest), sig, &len);
	return NULL;
}

/* One signature started by one thread and finished by another, one after
 * the other (no overlap): the mixup detector sees it. */
static void test_detector_sees_mixup(void **state)
{
	struct tctx *c = *state;
	struct fixture_token t2 = c->t;
	struct hsmt_raw raw;
	struct half x;
	pthread_t th;

	snprintf(t2.module, sizeof(t2.module), "%s", hsmt_fault_module());
	hsmt_fault_write(c->control, "count *\n");
	hsmt_raw_open(&raw, &t2);
	x.f = raw.f;
	x.s = raw.s;
	hsmt_raw_keypair(&raw, "m", (const unsigned char *)"\x01", 1, true, false, NULL,
	                 &x.key);
	assert_int_equal(pthread_create(&th, NULL, sign_init_main, &x), 0);
	pthread_join(th, NULL);
	assert_int_equal(x.rv, CKR_OK);
	assert_int_equal(pthread_create(&th, NULL, sign_main, &x), 0);
	pthread_join(th, NULL);
	assert_int_equal(x.rv, CKR_OK);
	hsmt_raw_close(&raw);
	assert_int_equal(hsmt_fault_stat(c->control, "mixup"), 1);
	assert_int_equal(hsmt_fault_stat(c->control, "overlap"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_two_threads_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_more_threads_than_sessions, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_detector_sees_shared_session, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_detector_sees_mixup, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
