/*
 * Internals of libregsign-hsm shared by hsm.c (handle, pool, recovery, sign),
 * hsm_token.c (module, token, sessions, login), hsm_key.c (keys), hsm_copy.c
 * (session copies of the keys) and hsm_keygen.c (key generation). Not
 * installed, not for other folders.
 * Functions shared between those files carry the hsm__ prefix (libuv's
 * convention) so that they never collide with the public hsm_ names or with
 * a caller's own helpers.
 *
 * Locking, in the order a thread may take them:
 *   rw       shared by every call that uses sessions or key handles; taken
 *            exclusively by recovery and hsm_key_add(), so a recovery starts
 *            only when no call is in flight and no call sees half-recovered
 *            state. Writer-preferring, so a stream of signers cannot starve a
 *            recovery.
 *   pool_mu  guards the busy flags of the sessions; pool_cv wakes a waiter.
 *   err_mu   guards the list of per-thread error buffers.
 * state, down_err, permanent, the counters, recover_wait_since and nkeys are atomics so that
 * hsm_status_get() never waits for a recovery.
 */
#ifndef REGSIGN_PKCS11_HSM_IMPL_H
#define REGSIGN_PKCS11_HSM_IMPL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/hsm.h"
#include "pkcs11/hsm_uri.h"

#define HSM_ERRTEXT_MAX 256
#define HSM_PIN_MAX 256
#define HSM_SESSIONS_MAX 256

struct hsm_key {
	char *role;
	struct hsm_uri *uri;
	CK_OBJECT_HANDLE priv;     /* valid for the current login; under rw */
	unsigned char *spki;       /* public key recorded when the key was added */
	size_t spki_len;
	char *label;               /* CKA_LABEL of the private key */
	unsigned char id[64];      /* CKA_ID of the private key */
	size_t id_len;
	unsigned curve_bits;
	size_t field_len;          /* bytes of r (and of s) */
	atomic_ulong signatures;
	atomic_ulong checked_ms;   /* when the token object was last seen (session copies) */
};

/* A key's session copy in one pool session (hsm_copy.c). */
enum hsm_copy_state {
	HSM_COPY_NONE = 0,     /* not made yet in this session */
	HSM_COPY_FRESH,        /* made and checked; its first signature still to verify */
	HSM_COPY_READY,        /* in use */
	HSM_COPY_REFUSED,      /* the module would not, or the copy failed a check */
};

struct hsm_copy {
	CK_OBJECT_HANDLE obj;
	unsigned char state;   /* enum hsm_copy_state; only the session's holder touches it */
};

/* A key's signing session in one pool slot (hsm_ahead.c, hsm_config.sign_ahead). */
enum hsm_ahead_state {
	HSM_AHEAD_NONE = 0,    /* no signing session opened yet */
	HSM_AHEAD_IDLE,        /* open, no operation initialised */
	HSM_AHEAD_READY,       /* C_SignInit done for obj; the next C_Sign consumes it */
	HSM_AHEAD_STALE,       /* may hold an operation nobody wants: reopen before use */
};

struct hsm_ahead {
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE obj;  /* what the READY operation signs with */
	unsigned char state;   /* enum hsm_ahead_state; only the slot's holder touches it */
};

/* One per thread that used the handle, for hsm_last_error(). */
struct hsm_errbuf {
	struct hsm_errbuf *next, *prev;
	struct hsm *h;
	char text[HSM_ERRTEXT_MAX];
};

struct hsm {
	void *dl;
	CK_FUNCTION_LIST_PTR p11;
	bool initialized;          /* we called C_Initialize and owe a C_Finalize */
	char *module_path;
	char *pin_file;
	struct hsm_uri *token;
	unsigned recover_timeout_ms;
	CK_SLOT_ID slot;
	char token_label[33];      /* label of the token found, blanks stripped */
	CK_INFO module_info;       /* of the module, slot and token in use, so key */
	CK_SLOT_INFO slot_info;    /* URIs with token attributes can be checked */
	CK_TOKEN_INFO token_info;  /* against them */

	pthread_rwlock_t rw;
	unsigned long generation;  /* under rw; mirrored in generation_seen */

	pthread_mutex_t pool_mu;
	pthread_cond_t pool_cv;
	unsigned nsess;
	CK_SESSION_HANDLE *sess;
	bool *busy;
	bool sess_open;            /* sessions opened and logged in */
	bool use_copies;           /* hsm_config.session_copies */
	unsigned copy_check_ms;
	struct hsm_copy *copies;   /* [session * HSM_MAX_KEYS + key id], see hsm_copy.c */
	atomic_uint ncopies;
	atomic_ulong copies_refused;
	bool sign_ahead;           /* hsm_config.sign_ahead */
	struct hsm_ahead *ahead;   /* [session * HSM_MAX_KEYS + key id], see hsm_ahead.c */
	atomic_uint ahead_sessions;
	atomic_ulong prepared;     /* signatures that found their operation initialised */
	atomic_ulong prepare_inits; /* operations hsm_prepare() initialised */

	struct hsm_key keys[HSM_MAX_KEYS];
	atomic_uint nkeys;

	atomic_int state;
	atomic_int down_err;
	atomic_bool permanent;
	atomic_ulong generation_seen;
	atomic_ulong recoveries;
	atomic_ulong recovery_failures;
	/* Monotonic ms at which a recovery started waiting for the exclusive
	 * lock, 0 when none waits. Only the calls in flight hold it off that
	 * long, so a wait far beyond recover_timeout_ms means one of them is
	 * stuck in the module (hsm_recover_wait_ms()). */
	atomic_ulong recover_wait_since;
	char down_text[HSM_ERRTEXT_MAX]; /* why the last recovery failed; under rw */

	pthread_mutex_t keygen_mu; /* one key generation at a time (label check) */

	pthread_key_t errkey;
	pthread_mutex_t err_mu;
	struct hsm_errbuf *errs;
};

/* hsm.c */
int hsm__fail(struct hsm *h, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
int hsm__fail_rv(struct hsm *h, const char *what, CK_RV rv);
const char *hsm__ckr_name(CK_RV rv);
int hsm__rv_to_err(CK_RV rv);
/* Runs fn on one pool session under the shared lock (exclusive: on the first
 * session under the exclusive lock), recovering and retrying once if fn
 * returns HSM_ERR_UNAVAILABLE. */
typedef int (*hsm__session_fn)(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, void *arg);
int hsm__with_session(struct hsm *h, bool exclusive, hsm__session_fn fn, void *arg);
/* Gives pool session i back and wakes one thread waiting for a session. */
void hsm__pool_give(struct hsm *h, unsigned i);

/* hsm_token.c */
int hsm__module_load(struct hsm *h);
void hsm__module_unload(struct hsm *h);
int hsm__module_init(struct hsm *h);
void hsm__module_finalize(struct hsm *h, bool force);
int hsm__token_connect(struct hsm *h);
void hsm__token_disconnect(struct hsm *h);

/* hsm_key.c */
int hsm__find(struct hsm *h, CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG nt,
              CK_OBJECT_HANDLE *found, CK_ULONG max, CK_ULONG *count);
/* Finds the key's private and public objects and checks them. first: record
 * the public key; otherwise it must equal the recorded one. */
int hsm__key_locate(struct hsm *h, CK_SESSION_HANDLE s, struct hsm_key *k, bool first);
void hsm__key_clear(struct hsm_key *k);
int hsm__sig_raw_to_der(const unsigned char *raw, size_t rawlen,
                        unsigned char *der, size_t *derlen);
int hsm__key_check_attrs(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                         const char *role);
int hsm__verify_raw(const unsigned char *spki, size_t spki_len,
                    const unsigned char *digest, size_t dlen,
                    const unsigned char *raw, size_t rawlen);
int hsm__sign_handle(struct hsm *h, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o,
                     size_t field_len, const unsigned char *digest, size_t dlen,
                     unsigned char *raw, size_t *rawlen);

/* hsm_copy.c: signing with the key's session copy in pool session si (the
 * caller holds it), making and checking the copy on first use; falls back to
 * the token object when there is no copy. */
int hsm__copy_sign(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, struct hsm_key *k,
                   const unsigned char *digest, size_t dlen,
                   unsigned char *raw, size_t *rawlen);
/* Forgets every copy (their sessions were closed, so the token dropped them). */
void hsm__copies_forget(struct hsm *h);
/* The object pool session si signs k with: its session copy (made and checked
 * now if this is the first use, *fresh set while its first signature is still
 * to verify) or, without one, the token object. An error only when the
 * session or the token was lost. */
int hsm__copy_object(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, struct hsm_key *k,
                     CK_OBJECT_HANDLE *obj, bool *copy, bool *fresh);

/* hsm_ahead.c: the signing sessions of hsm_config.sign_ahead. Signs with obj
 * in slot si (held by the caller): on the key's signing session there, with
 * only the C_Sign when an operation for obj is initialised on it, or on pool
 * session s when the key has no signing session in that slot (or sign_ahead
 * is off). Same length check and error mapping as hsm__sign_handle(). */
int hsm__ahead_sign(struct hsm *h, unsigned si, CK_SESSION_HANDLE s, struct hsm_key *k,
                    CK_OBJECT_HANDLE obj, const unsigned char *digest, size_t dlen,
                    unsigned char *raw, size_t *rawlen);
/* Whether slot si holds an operation initialised for k with obj. */
bool hsm__ahead_ready(struct hsm *h, unsigned si, const struct hsm_key *k, CK_OBJECT_HANDLE obj);
/* Closes every signing session (before the pool sessions close: disconnect). */
void hsm__ahead_close_all(struct hsm *h);

#endif
