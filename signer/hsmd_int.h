/*
 * hsmd_int.h: what the two halves of the HSM process share (not a public header).
 * hsmd.c serves: the reader, the job queue, the workers, the replies; hsmd_setup.c
 * starts it: the configuration, the issuer, the keys and their limits, the sandbox.
 */
#ifndef REGSIGN_SIGNER_HSMD_INT_H
#define REGSIGN_SIGNER_HSMD_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "pkcs11/hsm.h"
#include "signer/config.h"
#include "signer/hsmd_watchdog.h"
#include "signer/hsmlimits.h"
#include "signer/hsmproto.h"

/* Jobs (SIGN messages) queued or being signed at most, and their bytes at most. */
#define HSMD_MAX_JOBS 64
#define HSMD_MAX_BYTES (64u * 1024 * 1024)

/* How long a closed front waits for the workers before the process _exits. */
#define HSMD_STOP_GRACE_MS 2000

struct role {
	char name[HSMPROTO_MAX_ROLE + 1];
	int key_id;
	uint8_t fingerprint[32];
	atomic_uint_fast64_t signatures;
	atomic_uint_fast64_t refused;
};

struct job {
	struct job *next;
	uint32_t id;
	size_t n;
	size_t claimed; /* items handed to workers (under hsmd.mu) */
	size_t done;    /* items finished (under hsmd.mu) */
	uint8_t *body;  /* the request body; reqs point into it */
	size_t body_len;
	struct hsmproto_sign_req *reqs;
	struct hsmproto_result *res;
	uint8_t (*sigs)[HSM_SIG_MAX];
};

struct hsmd {
	int fd;
	struct config *cfg;
	hsm_t *hsm;
	hsmlimits_t *limits;
	struct role *roles;
	size_t n_roles;

	pthread_mutex_t mu; /* queue, counters, stop */
	pthread_cond_t work_cv;
	pthread_cond_t room_cv;
	struct job *head, *tail;
	size_t jobs;
	size_t bytes;
	int stop;

	pthread_mutex_t wmu; /* writes to fd */
	pthread_t *workers;
	struct worker *wargs;
	unsigned n_workers;
	unsigned n_exited;  /* workers that returned (under mu) */
	pthread_cond_t exit_cv;

	/* Slot 0 is the main thread, slot 1 + i worker i (signer/hsmd_watchdog.h). */
	struct hsmd_watchdog wd;
};

/* What a worker thread gets: the process and its watchdog slot. */
struct worker {
	struct hsmd *d;
	unsigned slot;
};

/*
 * Loads the configuration, the policy's zone and the issuing CA certificate, builds the
 * limits, opens the token and finds every key (hsmd_setup.c). Runs before any thread
 * exists. @return 0, or -1 with the reason in @p err.
 */
int hsmd__setup(struct hsmd *d, const char *config_path, const char *const *module_dirs,
                char *err, size_t errlen);

/* Applies the sandbox's HSM profile (hsmd_setup.c). @return 0, or -1 with the reason. */
int hsmd__lockdown(struct hsmd *d, const char *config_path, const char *const *module_dirs,
                   char *err, size_t errlen);

#endif
