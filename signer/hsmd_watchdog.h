/*
 * hsmd_watchdog: the HSM process's guard against a PKCS#11 module that never returns
 * (see hsmd.c). Internal to the HSM process (library regsign-hsmproc), not a public API.
 *
 * Every thread that calls into the module owns a slot and marks its calls with
 * hsmd_watchdog_call_begin/_end. A thread started by hsmd_watchdog_start ends the process
 * with _exit(HSMD_EXIT_WATCHDOG) when one call has run longer than the call timeout, or
 * when a recovery of the hsm handle has waited longer than the recover timeout plus
 * HSMD_RECOVER_WAIT_MARGIN_MS for the calls in flight (hsm_recover_wait_ms()): only a call
 * stuck in the module holds a recovery off that long, and every other caller queues
 * behind the waiting recovery. Both ends write one line to stderr first (the front's log).
 */
#ifndef REGSIGN_SIGNER_HSMD_WATCHDOG_H
#define REGSIGN_SIGNER_HSMD_WATCHDOG_H

#include <pthread.h>
#include <stdatomic.h>

#include "pkcs11/hsm.h"

/* How much longer than hsm.recover-timeout a recovery may wait for the calls in flight
 * before the watchdog takes the wait for a stuck call: a healthy call takes milliseconds,
 * and a wait behind another recovery does not count (hsm_recover_wait_ms()). */
#define HSMD_RECOVER_WAIT_MARGIN_MS 1000u

/* The watchdog's state, embedded in the HSM process's own; zero-initialised = not running
 * (hsmd_watchdog_call_begin/_end and _stop are then no-ops). */
struct hsmd_watchdog {
	/* Per slot, the monotonic time in ms (odd, so never 0) at which its current call
	 * started; 0 when idle. */
	atomic_uint_fast64_t *call_started;
	unsigned n_slots;
	unsigned call_timeout_ms;
	unsigned recover_timeout_ms;
	hsm_t *hsm;              /* not owned; may be NULL (no recovery check); read and dropped under mu */
	pthread_mutex_t mu;
	pthread_cond_t cv;       /* CLOCK_MONOTONIC */
	int stop;
	int running;
	pthread_t thread;
};

/*
 * Starts the watchdog thread for @p n_slots callers of the module. A @p call_timeout_ms of
 * 0 disables the watchdog (nothing is started; returns 0). Must be called before the
 * threads that use the slots start. Returns 0, or -1 when memory or the thread could not
 * be had (@p wd then holds nothing to stop).
 */
int hsmd_watchdog_start(struct hsmd_watchdog *wd, hsm_t *hsm, unsigned n_slots,
                        unsigned call_timeout_ms, unsigned recover_timeout_ms);

/*
 * Makes the watchdog stop reading @p wd's hsm handle (its recovery state) before the
 * handle is closed; calls are still watched, C_Finalize's included. The watchdog reads
 * the handle under its own lock, so once this returns it never touches it again.
 */
void hsmd_watchdog_drop_hsm(struct hsmd_watchdog *wd);

/* Stops and joins the thread and frees the slots; a no-op when not started. */
void hsmd_watchdog_stop(struct hsmd_watchdog *wd);

/* Marks the start and the end of a call into the module on @p slot (out of range or not
 * started: ignored). Lock-free. */
void hsmd_watchdog_call_begin(struct hsmd_watchdog *wd, unsigned slot);
void hsmd_watchdog_call_end(struct hsmd_watchdog *wd, unsigned slot);

#endif
