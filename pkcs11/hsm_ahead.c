/*
 * libregsign-hsm: signing operations initialised ahead of the request
 * (hsm_config.sign_ahead, hsm_prepare()).
 *
 * A signature is C_SignInit then C_Sign. When requests come seldom (100 a
 * second on an idle machine), each C_SignInit runs cold and costs about as
 * much as the C_Sign after it. PKCS#11 lets a session keep an initialised
 * operation for as long as it likes, and the C_Sign that comes later consumes
 * it; so while a worker has nothing to do, hsm_prepare() initialises the
 * operation, and the request that comes next pays only for its C_Sign.
 *
 * A session holds one operation at a time, and the pool sessions do other
 * work too (random bytes, finds, attribute reads, the checks of the session
 * copies). So each pool slot has, per registered key, a signing session of
 * its own that never does anything but C_SignInit and C_Sign with that key's
 * signing object (its session copy in that slot, else the token object). The
 * bookkeeping lives beside the copies, per slot and key, and only the thread
 * holding the slot touches it, so it needs no lock; the counters are atomics
 * for hsm_status_get().
 *
 * An operation that must be dropped (its object changed, or a call on the
 * session failed so that an operation may still be active) is dropped by
 * closing its session and opening a fresh one: a C_SignInit on an active
 * operation is refused, and finishing it with a throwaway signature would
 * sign data nobody meant to sign.
 *
 * The signing sessions are opened by hsm_prepare() only, in the slot it took;
 * a signature in a slot that has none signs on the pool session, as without
 * sign_ahead. They close with the pool sessions (disconnect, recovery,
 * hsm_close), so after a recovery nothing is prepared until the next
 * hsm_prepare().
 */
#include <pthread.h>
#include <string.h>

#include "pkcs11/hsm_impl.h"

static struct hsm_ahead *hsm_ahead_of(struct hsm *h, unsigned si, const struct hsm_key *k)
{
	return &h->ahead[(size_t)si * HSM_MAX_KEYS + (size_t)(k - h->keys)];
}

static void hsm_ahead_close(struct hsm *h, struct hsm_ahead *a)
{
	if (a->state == HSM_AHEAD_NONE)
		return;
	/* After a loss the handle is already invalid; closing is all there is
	 * left to do with it, so the result does not matter. */
	h->p11->C_CloseSession(a->s);
	atomic_fetch_sub(&h->ahead_sessions, 1);
	memset(a, 0, sizeof(*a));
}

void hsm__ahead_close_all(struct hsm *h)
{
	if (h->ahead == NULL)
		return;
	for (size_t i = 0; i < (size_t)h->nsess * HSM_MAX_KEYS; i++)
		hsm_ahead_close(h, &h->ahead[i]);
}

/* Opens a fresh signing session (closing the old one first): the portable
 * way to drop an operation that may be active. */
static int hsm_ahead_open(struct hsm *h, struct hsm_ahead *a)
{
	CK_RV rv;

	hsm_ahead_close(h, a);
	/* Read-only is enough to sign (the login is the application's), and a
	 * token may allow fewer read-write sessions than read-only ones. */
	rv = h->p11->C_OpenSession(h->slot, CKF_SERIAL_SESSION, NULL, NULL, &a->s);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_OpenSession (signing session)", rv);
	a->state = HSM_AHEAD_IDLE;
	atomic_fetch_add(&h->ahead_sessions, 1);
	return 0;
}

bool hsm__ahead_ready(struct hsm *h, unsigned si, const struct hsm_key *k, CK_OBJECT_HANDLE obj)
{
	const struct hsm_ahead *a;

	if (!h->sign_ahead)
		return false;
	a = hsm_ahead_of(h, si, k);
	return a->state == HSM_AHEAD_READY && a->obj == obj;
}

/* C_SignInit on the signing session. On failure the session may or may not
 * hold an operation: it is marked stale and reopened before its next use. */
static int hsm_ahead_init(struct hsm *h, struct hsm_ahead *a, CK_OBJECT_HANDLE obj)
{
	CK_MECHANISM mech = { CKM_ECDSA, NULL, 0 };
	CK_RV rv;

	rv = h->p11->C_SignInit(a->s, &mech, obj);
	if (rv != CKR_OK) {
		a->state = HSM_AHEAD_STALE;
		return hsm__fail_rv(h, "C_SignInit", rv);
	}
	a->obj = obj;
	a->state = HSM_AHEAD_READY;
	return 0;
}

int hsm__ahead_sign(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, struct hsm_key *k,
                    CK_OBJECT_HANDLE obj, const unsigned char *digest, size_t dlen,
                    unsigned char *raw, size_t *rawlen)
{
	struct hsm_ahead *a;
	CK_ULONG len = *rawlen;
	bool prepared;
	CK_RV rv;
	int r;

	if (!h->sign_ahead)
		return hsm__sign_handle(h, s, obj, k->field_len, digest, dlen, raw, rawlen);
	a = hsm_ahead_of(h, si, k);
	if (a->state == HSM_AHEAD_NONE)
		return hsm__sign_handle(h, s, obj, k->field_len, digest, dlen, raw, rawlen);
	prepared = a->state == HSM_AHEAD_READY && a->obj == obj;
	if (!prepared) {
		/* An operation for another object, or perhaps one left by a
		 * failed call: only a fresh session is sure to hold none. */
		if (a->state != HSM_AHEAD_IDLE) {
			r = hsm_ahead_open(h, a);
			if (r != 0)
				return r;
		}
		r = hsm_ahead_init(h, a, obj);
		if (r != 0)
			return r;
	}
	/* C_Sign ends the operation, whether it succeeds or not, except when it
	 * only says the buffer is too small: then it stays active, so any
	 * failure leaves the session to be reopened. */
	a->state = HSM_AHEAD_STALE;
	rv = h->p11->C_Sign(a->s, (CK_BYTE_PTR)digest, dlen, raw, &len);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_Sign", rv);
	a->state = HSM_AHEAD_IDLE;
	if (len != 2 * k->field_len)
		return hsm__fail(h, HSM_ERR_PKCS11, "C_Sign: %lu bytes, expected %zu",
		                 (unsigned long)len, 2 * k->field_len);
	*rawlen = len;
	if (prepared)
		atomic_fetch_add(&h->prepared, 1);
	return 0;
}

/* Initialises, in slot si (held by the caller with pool session s), the
 * operations of every key that has none ready. Adds what it did to *n.
 * Returns the first error; HSM_ERR_UNAVAILABLE stops at once (the recovery is
 * left to the next call that signs). */
static int hsm_ahead_prepare_slot(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, int *n)
{
	unsigned nkeys = atomic_load(&h->nkeys);
	CK_OBJECT_HANDLE obj;
	bool copy, fresh;
	int r, first = 0;

	for (unsigned i = 0; i < nkeys; i++) {
		struct hsm_key *k = &h->keys[i];
		struct hsm_ahead *a = hsm_ahead_of(h, si, k);

		r = hsm__copy_object(h, si, s, k, &obj, &copy, &fresh);
		if (r == 0 && a->state == HSM_AHEAD_READY && a->obj == obj)
			continue;
		if (r == 0 && a->state != HSM_AHEAD_IDLE)
			r = hsm_ahead_open(h, a);
		if (r == 0)
			r = hsm_ahead_init(h, a, obj);
		if (r == HSM_ERR_UNAVAILABLE)
			return r;
		if (r != 0) {
			/* This key's next signature meets the same error and
			 * reports it; the other keys are still worth preparing. */
			if (first == 0)
				first = r;
			continue;
		}
		atomic_fetch_add(&h->prepare_inits, 1);
		(*n)++;
	}
	return first;
}

/* Takes slot si if it is free right now; never waits. */
static bool hsm_ahead_try_take(struct hsm *h, unsigned si)
{
	bool took = false;

	if (pthread_mutex_trylock(&h->pool_mu) != 0)
		return false;
	if (!h->busy[si]) {
		h->busy[si] = true;
		took = true;
	}
	pthread_mutex_unlock(&h->pool_mu);
	return took;
}

int hsm_prepare(hsm_t *h)
{
	int n = 0, r = 0, e;

	if (h == NULL)
		return HSM_ERR_ARG;
	if (!h->sign_ahead)
		return 0;
	/* A recovery holds (or waits for) the exclusive lock: do not wait for
	 * it, and do not hold it off. */
	if (pthread_rwlock_tryrdlock(&h->rw) != 0)
		return 0;
	if (atomic_load(&h->state) != HSM_STATE_UP)
		goto out;
	for (unsigned si = 0; si < h->nsess; si++) {
		if (!hsm_ahead_try_take(h, si))
			continue;
		e = hsm_ahead_prepare_slot(h, si, h->sess[si], &n);
		hsm__pool_give(h, si);
		if (e != 0 && r == 0)
			r = e;
		if (e == HSM_ERR_UNAVAILABLE)
			break;
	}
out:
	pthread_rwlock_unlock(&h->rw);
	return r != 0 ? r : n;
}
