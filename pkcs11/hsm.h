/**
 * @file hsm.h
 * @brief libregsign-hsm: signing keys inside a PKCS#11 token, spoken to directly.
 *
 * The library loads one PKCS#11 module (dlopen + C_GetFunctionList), finds the
 * token named by an RFC 7512 URI, logs in with a PIN read from a pin file, and
 * keeps a pool of sessions, one per worker thread. Keys are registered by role
 * and URI, checked once (sensitive, never extractable, private key matches its
 * public key) and then used by a small integer key id.
 *
 * Thread safety: hsm_sign(), hsm_prepare(), hsm_random(), hsm_status_get(),
 * hsm_key_public(), hsm_key_info(), hsm_key_find() and hsm_last_error() may be
 * called from any number of threads at once. Each signing call takes one pool session for
 * itself; a call waits while all sessions are busy. hsm_key_add(),
 * hsm_keygen_ec() and hsm_object_exists() are also thread-safe but meant for
 * start-up and the key ceremony. hsm_close() must not race any other call.
 *
 * Recovery: when a call fails with an error that means the sessions, the login
 * or the device were lost (CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
 * CKR_DEVICE_ERROR, CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT,
 * CKR_USER_NOT_LOGGED_IN, CKR_KEY_HANDLE_INVALID, CKR_OBJECT_HANDLE_INVALID,
 * CKR_CRYPTOKI_NOT_INITIALIZED), the library waits for in-flight calls, closes
 * the sessions, finalises and re-initialises the module, waits for the token
 * (exponential backoff up to hsm_config.recover_timeout_ms), logs in, finds
 * every key again and checks that its public key is unchanged. Many threads
 * hitting the same loss cause one recovery. The failed call is retried once.
 * If recovery fails the call returns HSM_ERR_UNAVAILABLE (retry later: the next
 * call tries to recover again, so while the HSM stays away each call can take
 * up to recover_timeout_ms; calls that queue behind a running recovery get its
 * result and do not start another), except that a refused PIN (HSM_ERR_PIN) or a
 * changed or weakened key (HSM_ERR_KEY_MISMATCH, HSM_ERR_KEY_ATTRS) leaves the
 * handle DOWN for good: every later call returns that error.
 *
 * Secrets: the PIN is read from the pin file at each login into locked memory
 * and wiped right after C_Login. The library never prints, logs or exits.
 */
#ifndef REGSIGN_PKCS11_HSM_H
#define REGSIGN_PKCS11_HSM_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Errors: 0 is success, every error is negative. */
enum hsm_err {
	HSM_OK = 0,
	HSM_ERR_NOMEM = -1,         /**< out of memory (or mlock refused) */
	HSM_ERR_ARG = -2,           /**< bad argument (NULL, unknown key id, digest length) */
	HSM_ERR_MODULE = -3,        /**< module cannot be loaded or initialised */
	HSM_ERR_URI = -4,           /**< URI malformed, has pin-value/pin-source, wrong token */
	HSM_ERR_TOKEN = -5,         /**< token not found, or more than one matches */
	HSM_ERR_PIN_FILE = -6,      /**< pin file missing, unreadable, empty, too long, open to others */
	HSM_ERR_PIN = -7,           /**< token refused the PIN (incorrect, locked, expired); never retried */
	HSM_ERR_KEY_NOT_FOUND = -8, /**< no private key (or no public key) matches */
	HSM_ERR_KEY_AMBIGUOUS = -9, /**< two or more private keys match the URI */
	HSM_ERR_KEY_ATTRS = -10,    /**< key is extractable, not sensitive, not EC, cannot sign */
	HSM_ERR_KEY_MISMATCH = -11, /**< private key does not match its public key, or the key changed */
	HSM_ERR_KEY_EXISTS = -12,   /**< keygen: an object with that label exists */
	HSM_ERR_UNAVAILABLE = -13,  /**< HSM lost and not recovered (yet): retry later */
	HSM_ERR_PKCS11 = -14,       /**< other PKCS#11 failure (see hsm_last_error) */
	HSM_ERR_CRYPTO = -15,       /**< OpenSSL failure */
	HSM_ERR_FULL = -16,         /**< too many keys registered (HSM_MAX_KEYS) */
};

/** A static English message for an hsm_err value (unknown values included). */
const char *hsm_strerror(int err);

/** Configuration for hsm_open(). Strings are copied; the struct may go away. */
struct hsm_config {
	const char *module_path; /**< PKCS#11 module (absolute path, from configuration only) */
	const char *token_uri;   /**< RFC 7512 URI naming one token, e.g. "pkcs11:token=regsign" */
	const char *pin_file;    /**< file holding the user PIN (a final newline is ignored) */
	unsigned sessions;       /**< pool size = number of worker threads (>= 1, <= 256) */
	unsigned recover_timeout_ms; /**< how long a recovery waits for the token to come back */
	/**
	 * Sign with a session copy of each key (C_CopyObject with CKA_TOKEN
	 * false), made inside the token once per pool session and key, instead
	 * of the token object itself. The copy never leaves the token: it must
	 * read back sensitive, never extractable and not a token object, and its
	 * first signature must verify against the key's public key, or it is
	 * destroyed and the token object signs. A module may refuse the copy
	 * (CKA_COPYABLE false, no C_CopyObject): then the token object signs.
	 * Why: SoftHSM reads a token object back from its file (open, lock,
	 * read) at every C_SignInit; a session object costs it none of that.
	 * The copies die with their sessions (a recovery makes them again).
	 */
	bool session_copies;
	/**
	 * With session_copies: how often, at most, a signature first checks
	 * that the token object it was copied from is still there (one attribute
	 * read). A key deleted or replaced in the token is then noticed within
	 * this many ms (the recovery that follows finds the change, as without
	 * copies). 0 checks before every signature.
	 */
	unsigned copy_check_ms;
	/**
	 * Let hsm_prepare() initialise signing operations ahead of the
	 * signatures that will use them (see hsm_prepare()). Each pool session
	 * then gets, per registered key, a signing session of its own (opened by
	 * hsm_prepare(), so sessions x keys more sessions at most) that does
	 * nothing but C_SignInit and C_Sign with that key's signing object. A
	 * signature that finds its operation initialised makes only the C_Sign.
	 * Every check is the same either way (with session_copies the copy's
	 * first signature is verified; the token object is looked at every
	 * copy_check_ms, also when an initialised operation signs with the
	 * token object itself, which C_SignInit would otherwise have read).
	 * false: hsm_prepare() does nothing.
	 */
	bool sign_ahead;
	char *errbuf;            /**< optional: receives the detail of an hsm_open() failure */
	size_t errbuf_len;       /**< size of errbuf */
};

typedef struct hsm hsm_t;

/**
 * Load the module, initialise it (CKF_OS_LOCKING_OK), find the one token that
 * matches cfg->token_uri, open cfg->sessions sessions and log in.
 * On success *out owns a new handle (free with hsm_close()).
 * Errors: HSM_ERR_ARG, HSM_ERR_NOMEM, HSM_ERR_MODULE, HSM_ERR_URI, HSM_ERR_TOKEN,
 * HSM_ERR_PIN_FILE, HSM_ERR_PIN, HSM_ERR_PKCS11. The detail goes to cfg->errbuf.
 */
int hsm_open(const struct hsm_config *cfg, hsm_t **out);

/** Close the sessions, finalise and unload the module, free @p h. NULL is a no-op. */
void hsm_close(hsm_t *h);

/**
 * Detail of the last error of the calling thread on @p h ("" if none), e.g.
 * "C_Sign: CKR_DEVICE_ERROR" or "key zsk: CKA_EXTRACTABLE is true". The text
 * never contains the PIN. The pointer stays valid for this thread until its
 * next call on @p h, or hsm_close().
 */
const char *hsm_last_error(hsm_t *h);

/** Most keys a handle can hold. */
#define HSM_MAX_KEYS 64

/**
 * Register the private key named by @p uri (RFC 7512: object= and/or id=,
 * optional type=private, optional token attributes that must match the open
 * token; pin-value and pin-source refused) under role name @p role.
 * Checks now: exactly one private key matches (HSM_ERR_KEY_NOT_FOUND,
 * HSM_ERR_KEY_AMBIGUOUS); it is an EC key with CKA_SIGN, CKA_SENSITIVE true,
 * CKA_EXTRACTABLE false, CKA_NEVER_EXTRACTABLE true (HSM_ERR_KEY_ATTRS); its
 * public key object (same CKA_ID, else same label) exists and a test
 * signature by the private key verifies against it (HSM_ERR_KEY_MISMATCH).
 * A role may be registered once (HSM_ERR_ARG). On success *key_id is set.
 */
int hsm_key_add(hsm_t *h, const char *role, const char *uri, int *key_id);

/** Key id of a registered role. HSM_ERR_KEY_NOT_FOUND if there is none. */
int hsm_key_find(hsm_t *h, const char *role, int *key_id);

/**
 * The key's public key as DER SubjectPublicKeyInfo. *spki is malloc'd; the
 * caller frees it. Errors: HSM_ERR_ARG, HSM_ERR_NOMEM.
 */
int hsm_key_public(hsm_t *h, int key_id, unsigned char **spki, size_t *len);

/** What a registered key is; strings point into the handle (valid until hsm_close). */
struct hsm_key_info {
	const char *role;
	const char *label;        /**< CKA_LABEL of the private key ("" if none) */
	unsigned char id[64];     /**< CKA_ID of the private key */
	size_t id_len;
	unsigned curve_bits;      /**< 256 for P-256 */
	size_t digest_len;        /**< digest length hsm_sign() wants (32 for P-256) */
	size_t raw_sig_len;       /**< r||s length (64 for P-256) */
	unsigned long signatures; /**< successful hsm_sign() calls with this key */
};

/** Fill @p info for @p key_id. Errors: HSM_ERR_ARG. */
int hsm_key_info(hsm_t *h, int key_id, struct hsm_key_info *info);

/** Signature encodings. */
enum hsm_sig_format {
	HSM_SIG_RAW, /**< r||s, each left-padded to the curve size (DNSSEC, RFC 6605) */
	HSM_SIG_DER, /**< DER ECDSA-Sig-Value (X.509, CMS) */
};

/** Largest signature any supported curve gives, in either format. */
#define HSM_SIG_MAX 160

/**
 * Sign a digest computed by the caller (SHA-256 for P-256) with CKM_ECDSA.
 * @p dlen must equal the key's digest_len. On entry *siglen is the size of
 * @p sig (HSM_SIG_MAX always suffices); on success it is the signature length.
 * Thread-safe; recovers the HSM if needed (see above).
 * Errors: HSM_ERR_ARG, HSM_ERR_UNAVAILABLE (retryable), HSM_ERR_PIN,
 * HSM_ERR_KEY_MISMATCH, HSM_ERR_KEY_ATTRS, HSM_ERR_PKCS11, HSM_ERR_CRYPTO.
 */
int hsm_sign(hsm_t *h, int key_id, const unsigned char *digest, size_t dlen,
             enum hsm_sig_format fmt, unsigned char *sig, size_t *siglen);

/**
 * Initialise signing operations ahead of the signatures that will use them
 * (hsm_config.sign_ahead; without it this does nothing and returns 0).
 *
 * For every pool session that is free at this moment, and every registered
 * key, opens the key's signing session in that slot if it has none, makes the
 * session copy if copies are on and none was made yet (checked as on first
 * use), and calls C_SignInit unless an operation for the key's signing object
 * is already initialised there. The next hsm_sign() with that key that takes
 * that pool session then makes only the C_Sign. Nothing is ever signed here.
 *
 * Never blocks on a busy session or on a recovery: a session in use is
 * skipped (only try-locks are taken), and while a recovery runs or waits it
 * returns 0 at once. It does not recover either: when it finds the HSM lost
 * it stops and returns HSM_ERR_UNAVAILABLE, and the next hsm_sign() recovers
 * as usual (after a recovery nothing is prepared until the next call).
 *
 * Thread-safe; meant for a worker with nothing to do (after it sent its
 * reply). Its time is that of a few C_SignInit calls (sessions x keys at most,
 * usually only those consumed since the last call).
 *
 * @return the number of operations initialised (>= 0), or a negative error:
 * HSM_ERR_ARG (NULL handle), HSM_ERR_UNAVAILABLE (the HSM was found lost),
 * or the first other error of a C_SignInit or C_OpenSession (HSM_ERR_PKCS11,
 * ...; that key's next hsm_sign() meets and reports it too). Detail in
 * hsm_last_error().
 */
int hsm_prepare(hsm_t *h);

/** @p len random bytes from the token (C_GenerateRandom). Errors as hsm_sign(). */
int hsm_random(hsm_t *h, unsigned char *buf, size_t len);

/**
 * Whether any object (of any class) with CKA_LABEL @p label exists in the
 * token. Lets the key ceremony check every step before making anything.
 */
int hsm_object_exists(hsm_t *h, const char *label, bool *exists);

/**
 * Generate an EC P-256 key pair inside the token: the private key with
 * CKA_TOKEN, CKA_PRIVATE, CKA_SENSITIVE, CKA_SIGN true and CKA_EXTRACTABLE
 * false; the public key with CKA_TOKEN and CKA_VERIFY; both with CKA_LABEL
 * @p label and the same fresh 16-byte CKA_ID (from OpenSSL's CSPRNG), written
 * to @p id. Does not register the key: call hsm_key_add() with a URI for it.
 * Errors: HSM_ERR_KEY_EXISTS (an object with that label exists), HSM_ERR_ARG,
 * HSM_ERR_UNAVAILABLE, HSM_ERR_PKCS11, HSM_ERR_CRYPTO.
 */
int hsm_keygen_ec(hsm_t *h, const char *label, unsigned char id[16]);

/** Health of the handle. */
enum hsm_state {
	HSM_STATE_UP = 0,         /**< sessions open, logged in, keys found */
	HSM_STATE_RECOVERING = 1, /**< a recovery is running */
	HSM_STATE_DOWN = 2,       /**< last recovery failed; see down_err */
};

/** A snapshot of state and counters (no lock held: values are each current). */
struct hsm_status {
	enum hsm_state state;
	int down_err;                    /**< why DOWN (0 when UP) */
	bool permanent;                  /**< DOWN for good (PIN or key problem) */
	unsigned long generation;        /**< bumped by every recovery attempt */
	unsigned long recoveries;        /**< successful recoveries */
	unsigned long recovery_failures; /**< failed recoveries */
	unsigned long recover_wait_ms;   /**< see hsm_recover_wait_ms() */
	unsigned sessions;               /**< pool size */
	unsigned nkeys;                  /**< registered keys; ids 0..nkeys-1 */
	unsigned long signatures[HSM_MAX_KEYS]; /**< successful signatures per key id */
	unsigned copies;                 /**< session copies in use (sessions x keys at most) */
	unsigned long copies_refused;    /**< copies the module refused or that failed a check */
	unsigned sign_sessions;          /**< signing sessions open (hsm_config.sign_ahead) */
	unsigned long prepared;          /**< signatures that found their operation initialised */
	unsigned long prepare_inits;     /**< operations hsm_prepare() initialised */
};

/** Fill @p st. Never blocks on a running recovery. Errors: HSM_ERR_ARG. */
int hsm_status_get(hsm_t *h, struct hsm_status *st);

/**
 * How long, in ms, a recovery has been waiting for the calls in flight to
 * return before it can start (0 when no recovery waits, or it waits only
 * for another recovery to finish). Only a call still inside the module holds
 * a recovery off, so a wait well beyond the recover timeout means a call is
 * stuck there: the caller may then end the process (the HSM process's
 * watchdog does). Lock-free, never blocks; 0 for a NULL handle.
 */
unsigned long hsm_recover_wait_ms(hsm_t *h);

/** A static name for a state ("up", "recovering", "down"). */
const char *hsm_state_name(enum hsm_state state);

#ifdef __cplusplus
}
#endif

#endif
