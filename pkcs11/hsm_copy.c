/*
 * libregsign-hsm: session copies of the keys (hsm_config.session_copies).
 *
 * SoftHSM keeps every token object in a file and, at each C_SignInit, reads
 * it back (opens, locks and reads the file, and decodes the key) to see
 * whether another process changed it. A session object lives in the module's
 * memory only. The raw loop of the benchmarks measured 1.36x the signatures
 * per second on one core, and more on two, where the token object's file
 * lock is also shared. So each pool session copies each key it signs with
 * into a session object of its own (C_CopyObject, CKA_TOKEN false) the first
 * time, and signs with that copy afterwards.
 *
 * The copy is made and kept inside the token; what this file checks is that
 * it is no weaker than the original: it must read back as an EC signing key
 * that is sensitive, was never extractable and is not a token object, and
 * its first signature must verify against the public key recorded when the
 * key was added. A module that refuses the copy, or a copy that fails a
 * check, leaves that session signing with the token object, as without
 * copies; only a copy that signs for another key is an error (the token
 * would be lying).
 *
 * A key deleted or replaced in the token would go unnoticed while its copy
 * signs, so at most every copy_check_ms one signature reads an attribute of
 * the token object first: a handle the token no longer knows fails that read
 * and starts the usual recovery, which finds the key gone or changed.
 *
 * Each copy belongs to one pool session, and only the thread holding that
 * session touches it, so the copies need no lock of their own; the counters
 * are atomics for hsm_status_get().
 */
#include <string.h>
#include <time.h>

#include "pkcs11/hsm_impl.h"

static unsigned long hsm_copy_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long)ts.tv_sec * 1000UL + (unsigned long)ts.tv_nsec / 1000000UL;
}

void hsm__copies_forget(struct hsm *h)
{
	if (h->copies != NULL)
		memset(h->copies, 0, (size_t)h->nsess * HSM_MAX_KEYS * sizeof(*h->copies));
	atomic_store(&h->ncopies, 0);
}

/* Errors that mean the session, the login or the token went away: the
 * caller's recovery must run, not a fallback to the token object. */
static bool hsm_copy_rv_lost(CK_RV rv)
{
	return hsm__rv_to_err(rv) == HSM_ERR_UNAVAILABLE;
}

/* The copy must be what the original is, and not a token object. */
static int hsm_copy_check(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                          const struct hsm_key *k)
{
	CK_BBOOL token = CK_TRUE;
	CK_ATTRIBUTE t = { CKA_TOKEN, &token, sizeof(token) };
	CK_RV rv;
	int r;

	r = hsm__key_check_attrs(h, s, o, k->role);
	if (r != 0)
		return r;
	rv = h->p11->C_GetAttributeValue(s, o, &t, 1);
	if (rv != CKR_OK)
		return hsm__fail_rv(h, "C_GetAttributeValue", rv);
	if (token != CK_FALSE)
		return hsm__fail(h, HSM_ERR_KEY_ATTRS, "key %s: its session copy is a token object",
		                 k->role);
	return 0;
}

/* Makes this session's copy of k. 0 with c->state FRESH or REFUSED; an error
 * only when the session or token was lost. */
static int hsm_copy_make(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_key *k,
                         struct hsm_copy *c)
{
	CK_BBOOL no = CK_FALSE;
	CK_ATTRIBUTE t = { CKA_TOKEN, &no, sizeof(no) };
	CK_OBJECT_HANDLE o = CK_INVALID_HANDLE;
	CK_RV rv;
	int r;

	rv = h->p11->C_CopyObject(s, k->priv, &t, 1, &o);
	if (rv != CKR_OK) {
		if (hsm_copy_rv_lost(rv))
			return hsm__fail_rv(h, "C_CopyObject", rv);
		/* CKA_COPYABLE false, no C_CopyObject, no room: sign as before. */
		goto refused;
	}
	r = hsm_copy_check(h, s, o, k);
	if (r == HSM_ERR_UNAVAILABLE)
		return r;
	if (r != 0) {
		h->p11->C_DestroyObject(s, o);
		goto refused;
	}
	c->obj = o;
	c->state = HSM_COPY_FRESH;
	atomic_fetch_add(&h->ncopies, 1);
	return 0;
refused:
	c->state = HSM_COPY_REFUSED;
	atomic_fetch_add(&h->copies_refused, 1);
	return 0;
}

/* Whether this signature should first look at the token object: one
 * signature per copy_check_ms per key does (the one that wins the swap). */
static bool hsm_copy_check_due(struct hsm *h, struct hsm_key *k)
{
	unsigned long now, last;

	if (h->copy_check_ms == 0)
		return true;
	now = hsm_copy_now_ms();
	last = atomic_load(&k->checked_ms);
	if (now - last < h->copy_check_ms)
		return false;
	return atomic_compare_exchange_strong(&k->checked_ms, &last, now);
}

int hsm__copy_object(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, struct hsm_key *k,
                     CK_OBJECT_HANDLE *obj, bool *copy, bool *fresh)
{
	struct hsm_copy *c;
	int r;

	*obj = k->priv;
	*copy = false;
	*fresh = false;
	if (!h->use_copies)
		return 0;
	c = &h->copies[(size_t)si * HSM_MAX_KEYS + (size_t)(k - h->keys)];
	if (c->state == HSM_COPY_NONE) {
		r = hsm_copy_make(h, s, k, c);
		if (r != 0)
			return r;
	}
	if (c->state == HSM_COPY_REFUSED)
		return 0;
	*obj = c->obj;
	*copy = true;
	*fresh = c->state == HSM_COPY_FRESH;
	return 0;
}

int hsm__copy_sign(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, struct hsm_key *k,
                   const unsigned char *digest, size_t dlen,
                   unsigned char *raw, size_t *rawlen)
{
	CK_OBJECT_HANDLE obj;
	CK_OBJECT_CLASS cls;
	CK_ATTRIBUTE t = { CKA_CLASS, &cls, sizeof(cls) };
	bool copy, fresh;
	CK_RV rv;
	int r;

	r = hsm__copy_object(h, si, s, k, &obj, &copy, &fresh);
	if (r != 0)
		return r;
	/* A C_SignInit on the token object lets SoftHSM see that the key was
	 * deleted or replaced; a copy, or an operation initialised in advance
	 * (hsm_ahead.c), does not look at the token object any more, so those
	 * signatures look at it themselves, at most every copy_check_ms. */
	if ((copy || hsm__ahead_ready(h, si, k, obj)) && hsm_copy_check_due(h, k)) {
		rv = h->p11->C_GetAttributeValue(s, k->priv, &t, 1);
		if (rv != CKR_OK)
			return hsm__fail(h, hsm__rv_to_err(rv),
			                 "key %s: the token object is gone (%s)", k->role,
			                 hsm__ckr_name(rv));
	}
	r = hsm__ahead_sign(h, si, s, k, obj, digest, dlen, raw, rawlen);
	if (r != 0 || !fresh)
		return r;
	r = hsm__verify_raw(k->spki, k->spki_len, digest, dlen, raw, *rawlen);
	if (r != 0)
		return hsm__fail(h, r == HSM_ERR_KEY_MISMATCH ? r : HSM_ERR_CRYPTO,
		                 "key %s: its session copy signs for another key", k->role);
	h->copies[(size_t)si * HSM_MAX_KEYS + (size_t)(k - h->keys)].state = HSM_COPY_READY;
	return 0;
}
