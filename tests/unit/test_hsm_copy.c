/*
 * Session copies of the keys (hsm_config.session_copies, pkcs11/hsm_copy.c),
 * through the fault module in front of a fresh SoftHSM token per case: the
 * copy is made once per session and key and then signs; the token object is
 * looked at no more often than copy_check_ms; a module that refuses copies
 * leaves the token object signing; a key replaced in the token is found (at
 * once with check 0, within the interval otherwise) and takes the handle down
 * for good, as without copies; an HSM restart makes the copies again.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
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

struct cctx {
	struct fixture_token t;
	char control[PATH_MAX + 32];
	hsm_t *h;
	int k;
	unsigned char *spki;   /* the key's public key when it was added */
	size_t spki_len;
};

/* A fresh token behind the fault module, one P-256 key "zsk", copies on. */
static void cctx_open(struct cctx *c, unsigned sessions, unsigned check_ms)
{
	unsigned char id[16];
	char uri[512], err[256];
	struct hsm_config cfg = {
		.module_path = hsmt_fault_module(),
		.sessions = sessions,
		.recover_timeout_ms = 2000,
		.session_copies = true,
		.copy_check_ms = check_ms,
		.errbuf = err,
		.errbuf_len = sizeof(err),
	};

	memset(c, 0, sizeof(*c));
	assert_int_equal(fixture_token_new(&c->t, "copy"), 0);
	hsmt_fault_setup(&c->t, c->control, sizeof(c->control));
	cfg.token_uri = c->t.uri;
	cfg.pin_file = c->t.pin_file;
	if (hsm_open(&cfg, &c->h) != 0)
		fail_msg("hsm_open: %s", err);
	assert_int_equal(hsm_keygen_ec(c->h, "zsk", id), 0);
	hsmt_key_uri(&c->t, "zsk", NULL, 0, uri, sizeof(uri));
	assert_int_equal(hsm_key_add(c->h, "zsk", uri, &c->k), 0);
	assert_int_equal(hsm_key_public(c->h, c->k, &c->spki, &c->spki_len), 0);
	hsmt_fault_write(c->control, "count *\n");
}

static int setup(void **state)
{
	*state = calloc(1, sizeof(struct cctx));
	return *state == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	struct cctx *c = *state;

	hsm_close(c->h);
	free(c->spki);
	fixture_token_free(&c->t);
	free(c);
	return 0;
}

static unsigned long stat_of(struct cctx *c, const char *name)
{
	return hsmt_fault_stat(c->control, name);
}

static struct hsm_status status_of(struct cctx *c)
{
	struct hsm_status st;

	assert_int_equal(hsm_status_get(c->h, &st), 0);
	return st;
}

/* One raw signature over a random digest; returns hsm_sign's result and, on
 * success, checks it against the public key recorded at hsm_key_add(). */
static int sign_once(struct cctx *c)
{
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen = sizeof(sig);
	int r;

	assert_int_equal(RAND_bytes(digest, sizeof(digest)), 1);
	r = hsm_sign(c->h, c->k, digest, sizeof(digest), HSM_SIG_RAW, sig, &siglen);
	if (r == 0)
		assert_true(hsmt_verify(c->spki, c->spki_len, digest, sizeof(digest), sig,
		                        siglen, true));
	return r;
}

/* The copy is made on the first signature and used for the rest: one
 * C_CopyObject, and the token object is read once (the first check) in 200
 * signatures, not at each. */
static void test_copy_made_once(void **state)
{
	struct cctx *c = *state;
	unsigned long copies, attrs, signs, finds;
	struct hsm_status st;

	cctx_open(c, 1, 60000);
	attrs = stat_of(c, "C_GetAttributeValue");
	finds = stat_of(c, "C_FindObjectsInit");
	signs = stat_of(c, "C_Sign");
	for (int i = 0; i < 200; i++)
		assert_int_equal(sign_once(c), 0);
	copies = stat_of(c, "C_CopyObject");
	assert_int_equal(copies, 1);
	assert_int_equal(stat_of(c, "C_Sign") - signs, 200);
	assert_int_equal(stat_of(c, "C_FindObjectsInit"), finds);
	/* The copy's check reads its attributes (two calls), the first signature
	 * reads the token object's class: three, whatever the count of signatures. */
	assert_int_equal(stat_of(c, "C_GetAttributeValue") - attrs, 3);
	st = status_of(c);
	assert_int_equal(st.copies, 1);
	assert_int_equal(st.copies_refused, 0);
	assert_int_equal(st.signatures[c->k], 200);
}

/* With check 0, every signature reads the token object first. */
static void test_check_every_signature(void **state)
{
	struct cctx *c = *state;
	unsigned long attrs;

	cctx_open(c, 1, 0);
	assert_int_equal(sign_once(c), 0);
	attrs = stat_of(c, "C_GetAttributeValue");
	for (int i = 0; i < 20; i++)
		assert_int_equal(sign_once(c), 0);
	assert_int_equal(stat_of(c, "C_GetAttributeValue") - attrs, 20);
}

struct burst {
	struct cctx *c;
	int failures;
};

static void *burst_run(void *arg)
{
	struct burst *b = arg;

	for (int i = 0; i < 100; i++) {
		if (sign_once(b->c) != 0)
			b->failures++;
	}
	return NULL;
}

/* Three threads on three sessions: each session has its own copy (a session
 * object may only be used in the session that made it, and two threads never
 * share a session), so at most three copies, and no two calls on a session
 * overlap. */
static void test_copy_per_session(void **state)
{
	struct cctx *c = *state;
	pthread_t th[3];
	struct burst b[3];
	struct hsm_status st;

	cctx_open(c, 3, 1000);
	for (int i = 0; i < 3; i++) {
		b[i] = (struct burst){ c, 0 };
		assert_int_equal(pthread_create(&th[i], NULL, burst_run, &b[i]), 0);
	}
	for (int i = 0; i < 3; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(b[i].failures, 0);
	}
	st = status_of(c);
	assert_true(st.copies >= 1 && st.copies <= 3);
	assert_int_equal(stat_of(c, "C_CopyObject"), st.copies);
	assert_int_equal(stat_of(c, "overlap"), 0);
	assert_int_equal(stat_of(c, "mixup"), 0);
	assert_int_equal(st.signatures[c->k], 300);
}

/* A module without copies (or a key with CKA_COPYABLE false): the token object
 * signs, and the copy is not asked for again at every signature. */
static void test_copy_refused(void **state)
{
	struct cctx *c = *state;
	struct hsm_status st;
	unsigned long signs;

	cctx_open(c, 1, 1000);
	hsmt_fault_write(c->control, "count *\nC_CopyObject CKR_ACTION_PROHIBITED inf\n");
	signs = stat_of(c, "C_Sign");
	for (int i = 0; i < 10; i++)
		assert_int_equal(sign_once(c), 0);
	assert_int_equal(stat_of(c, "C_CopyObject"), 1);
	assert_int_equal(stat_of(c, "C_Sign") - signs, 10);
	st = status_of(c);
	assert_int_equal(st.copies, 0);
	assert_int_equal(st.copies_refused, 1);
	assert_int_equal(st.state, HSM_STATE_UP);
}

static void assert_down_for_good(struct cctx *c)
{
	struct hsm_status st = status_of(c);

	assert_int_equal(st.state, HSM_STATE_DOWN);
	assert_true(st.permanent);
	assert_int_equal(st.down_err, HSM_ERR_KEY_MISMATCH);
	assert_int_equal(sign_once(c), HSM_ERR_KEY_MISMATCH);
}

/* Check 0: the signature right after the key was replaced already fails, as
 * it does without copies (test_hsm_recover's test_key_changed). */
static void test_key_changed_at_once(void **state)
{
	struct cctx *c = *state;

	cctx_open(c, 2, 0);
	assert_int_equal(sign_once(c), 0);
	hsmt_replace_key(&c->t, "zsk");
	assert_int_equal(sign_once(c), HSM_ERR_KEY_MISMATCH);
	assert_non_null(strstr(hsm_last_error(c->h), "changed"));
	assert_down_for_good(c);
}

/* Check 300 ms: the copy of the old key may sign for up to the interval (each
 * such signature verifies against the key as it was added), then the change
 * is found. The bound is a liveness bound. */
static void test_key_changed_within_interval(void **state)
{
	struct cctx *c = *state;
	unsigned long t0;
	int r = 0;

	cctx_open(c, 2, 300);
	assert_int_equal(sign_once(c), 0);
	hsmt_replace_key(&c->t, "zsk");
	t0 = hsmt_now_ms();
	while (hsmt_now_ms() - t0 < 20000 && (r = sign_once(c)) == 0)
		;
	assert_int_equal(r, HSM_ERR_KEY_MISMATCH);
	assert_down_for_good(c);
}

/* The HSM restarts: the copies died with the sessions, the recovery makes new
 * sessions, and the first signature on each makes its copy again. */
static void test_copy_after_restart(void **state)
{
	struct cctx *c = *state;
	struct hsm_status st;

	cctx_open(c, 2, 1000);
	assert_int_equal(sign_once(c), 0);
	assert_int_equal(stat_of(c, "C_CopyObject"), 1);
	hsmt_fault_write(c->control, "count *\ninvalidate\n");
	assert_int_equal(sign_once(c), 0);
	assert_int_equal(stat_of(c, "invalidations"), 1);
	assert_int_equal(stat_of(c, "C_CopyObject"), 2);
	st = status_of(c);
	assert_int_equal(st.recoveries, 1);
	assert_int_equal(st.copies, 1);
	for (int i = 0; i < 10; i++)
		assert_int_equal(sign_once(c), 0);
	assert_int_equal(stat_of(c, "C_CopyObject"), 2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_copy_made_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_check_every_signature, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_per_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_changed_at_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_key_changed_within_interval, setup,
		                                teardown),
		cmocka_unit_test_setup_teardown(test_copy_after_restart, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
