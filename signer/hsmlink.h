/**
 * @file hsmlink.h
 * @brief The front process's side of the HSM process: spawn it, talk to it, see it die.
 *
 * regsignd's front process never loads the PKCS#11 module. Before it drops privileges it
 * calls hsmlink_spawn(), which re-executes its own binary in HSM mode
 * (`<exe> --hsm-process --fd 3 -c <config> [--module-dir DIR]...`) with one end of a socketpair as fd 3, and
 * wraps the other end in a uv_pipe_t on the caller's loop. The HSM process loads the
 * module, logs in and finds the keys, then says HELLO; hsmlink reports that through
 * ready_cb (OK, or why it failed).
 *
 * Requests are asynchronous. hsmlink_sign() takes a batch; the requests made during one
 * loop iteration are coalesced into one SIGN message, flushed before the loop blocks
 * again. A batch larger than one message is split over several; its callback still runs
 * once with all results in the order of the requests.
 *
 * If the HSM process dies (EOF on the socketpair, a read error, a malformed reply, or
 * its exit seen through SIGCHLD), every request in flight or queued gets
 * HSMPROTO_ST_UNAVAILABLE, then death_cb runs once. The link is dead from then on:
 * later requests fail at once with HSMLINK_ERR_DEAD. The daemon is expected to exit
 * non-zero so that its supervisor restarts both processes.
 *
 * All functions must be called on the loop's thread. Callbacks run on the loop's thread,
 * never from inside the call that queued the request (hsmlink_close excepted: it fails
 * what is pending before it returns). The process must ignore SIGPIPE, as every libuv
 * program that writes to sockets: a write to a dead HSM process must fail, not kill.
 * After death_cb the caller still calls hsmlink_close to release the link.
 */
#ifndef REGSIGN_SIGNER_HSMLINK_H
#define REGSIGN_SIGNER_HSMLINK_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "signer/hsmproto.h"

/** Errors of hsmlink. */
enum hsmlink_err {
	HSMLINK_OK = 0,
	HSMLINK_ERR_NOMEM = -1,
	HSMLINK_ERR_ARG = -2,    /**< bad request: role, kind, format, sizes */
	HSMLINK_ERR_SPAWN = -3,  /**< socketpair or uv_spawn failed */
	HSMLINK_ERR_DEAD = -4,   /**< the HSM process is gone (or the link closing) */
};

typedef struct hsmlink hsmlink_t;

/** One sign request; hsmlink copies data before hsmlink_sign returns. */
struct hsmlink_sign_req {
	const char *role;    /**< key role, e.g. "zsk", "issuing-ca", "asp.test./zsk" */
	uint8_t kind;        /**< enum hsmproto_kind */
	uint8_t format;      /**< enum hsmproto_format */
	const uint8_t *data; /**< what to sign; the HSM process hashes it with SHA-256 */
	size_t len;
};

/** One result; valid only during the callback that gets it. */
struct hsmlink_result {
	int status;          /**< enum hsmproto_status_code */
	const char *reason;  /**< "" when OK; why otherwise */
	const uint8_t *value; /**< signature (SIGN), SPKI DER (PUBKEY), bytes (RANDOM) */
	size_t value_len;
};

/** Results of one hsmlink_sign call: n results in the order of the requests. */
typedef void (*hsmlink_sign_cb)(void *arg, const struct hsmlink_result *res, size_t n);
/** Result of hsmlink_pubkey / hsmlink_random. */
typedef void (*hsmlink_value_cb)(void *arg, const struct hsmlink_result *res);
/**
 * Result of hsmlink_status: st is NULL when the link died before the answer came (then
 * status is HSMPROTO_ST_UNAVAILABLE); st is valid only during the callback.
 */
typedef void (*hsmlink_status_cb)(void *arg, int status, const struct hsmproto_status *st);

struct hsmlink_options {
	/**
	 * Path of the binary to run in HSM mode: the daemon's own binary, best taken from
	 * readlink("/proc/self/exe") at start (argv[0] may be relative or a PATH name).
	 */
	const char *exe_path;
	/** Absolute path of regsignd.yaml, passed to the HSM process with -c. */
	const char *config_path;
	/**
	 * Extra allowed PKCS#11 module directories, passed on as `--module-dir DIR` each
	 * (NULL-terminated array; NULL for none).
	 */
	const char *const *module_dirs;
	/**
	 * Called once when the HSM process says HELLO: status OK when it is ready, otherwise
	 * the reason (the process exits and death_cb follows). May be NULL.
	 */
	void (*ready_cb)(hsmlink_t *link, int status, const char *reason, void *arg);
	/**
	 * Called once when the HSM process is found gone, after every pending request got
	 * UNAVAILABLE, with its exit status and terminating signal (0 if none). They are -1
	 * when it had not exited a second after the link was lost (it is then killed).
	 * Not called after hsmlink_close. May be NULL.
	 */
	void (*death_cb)(hsmlink_t *link, int64_t exit_status, int term_signal, void *arg);
	void *arg; /**< passed to ready_cb and death_cb */
};

/** @return a static English description of an enum hsmlink_err value. */
const char *hsmlink_strerror(int err);

/**
 * Starts the HSM process and returns the link in *out (freed by hsmlink_close).
 * @return 0, HSMLINK_ERR_NOMEM, HSMLINK_ERR_ARG, HSMLINK_ERR_SPAWN.
 */
int hsmlink_spawn(uv_loop_t *loop, const struct hsmlink_options *opts, hsmlink_t **out);

/** @return the HSM process's pid (0 once it has been reaped). */
int hsmlink_pid(const hsmlink_t *link);

/** @return 1 while the link is alive (not dead, not closing). */
int hsmlink_alive(const hsmlink_t *link);

/** @return how many request frames the link has sent (coalescing shows in it). */
uint64_t hsmlink_frames_sent(const hsmlink_t *link);

/**
 * Queues n sign requests (1..HSMPROTO_MAX_ITEMS × any number of messages); cb gets all
 * n results once. Requests are checked here: role well formed, kind and format known,
 * 1..HSMPROTO_MAX_DATA bytes of data.
 * @return 0 (cb will run), HSMLINK_ERR_ARG, HSMLINK_ERR_NOMEM, HSMLINK_ERR_DEAD (cb will
 *         not run).
 */
int hsmlink_sign(hsmlink_t *link, const struct hsmlink_sign_req *reqs, size_t n,
                 hsmlink_sign_cb cb, void *arg);

/** Asks for the SubjectPublicKeyInfo DER of a role's key. Same returns as hsmlink_sign. */
int hsmlink_pubkey(hsmlink_t *link, const char *role, hsmlink_value_cb cb, void *arg);

/** Asks for n (1..HSMPROTO_MAX_RANDOM) random bytes from the HSM. */
int hsmlink_random(hsmlink_t *link, uint32_t n, hsmlink_value_cb cb, void *arg);

/** Asks for the HSM's state, recoveries, key copies, per-role counters and key fingerprints. */
int hsmlink_status(hsmlink_t *link, hsmlink_status_cb cb, void *arg);

/**
 * Closes the link: pending requests get UNAVAILABLE, the socketpair is closed (the HSM
 * process exits when it sees that), the process is waited for (killed with SIGKILL if it
 * has not exited after a few seconds), then close_cb runs and the link is freed.
 * NULL link is a no-op. close_cb may be NULL.
 */
void hsmlink_close(hsmlink_t *link, void (*close_cb)(void *arg), void *arg);

#endif
