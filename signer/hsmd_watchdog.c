/*
 * hsmd_watchdog: see hsmd_watchdog.h. The thread wakes every quarter second at most (a
 * quarter of the call timeout when that is shorter), which keeps the overshoot of both
 * bounds small next to the recovery-time goal (5 s after the HSM is back).
 */
#include "signer/hsmd_watchdog.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "signer/hsmd.h"

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void hsmd_watchdog_call_begin(struct hsmd_watchdog *wd, unsigned slot)
{
	if (wd->call_started != NULL && slot < wd->n_slots)
		atomic_store(&wd->call_started[slot], now_ms() | 1u);
}

void hsmd_watchdog_call_end(struct hsmd_watchdog *wd, unsigned slot)
{
	if (wd->call_started != NULL && slot < wd->n_slots)
		atomic_store(&wd->call_started[slot], 0);
}

/*
 * Ends the process from the watchdog thread: one write(2) of the reason to stderr (the
 * front's log), then _exit, which skips atexit handlers and the module's destructors:
 * they could wait on the wedged module too.
 */
static void fire(const char *line, int n)
{
	if (n > 0) {
		size_t len = (size_t)n < 256 ? (size_t)n : 255;

		(void)!write(STDERR_FILENO, line, len);
	}
	_exit(HSMD_EXIT_WATCHDOG);
}

static void fire_call(const struct hsmd_watchdog *wd, unsigned slot, uint64_t ms)
{
	char line[256];
	int n = snprintf(line, sizeof(line),
	                 "regsignd (HSM process): watchdog: a PKCS#11 call on %s %u has not "
	                 "returned for %llu ms (hsm.call-timeout %u ms); exiting with status %d\n",
	                 slot == 0 ? "the main thread" : "worker", slot == 0 ? 0 : slot - 1,
	                 (unsigned long long)ms, wd->call_timeout_ms, HSMD_EXIT_WATCHDOG);

	fire(line, n);
}

/*
 * The same end when a recovery has waited too long for the calls in flight: only a call
 * stuck in the module holds one off beyond the recover timeout, and every other caller
 * queues behind the waiting recovery, so service would otherwise stay out until that
 * call reached hsm.call-timeout (a minute or more) instead of coming back with a restart.
 */
static void fire_recovery(const struct hsmd_watchdog *wd, unsigned long ms)
{
	char line[256];
	int n = snprintf(line, sizeof(line),
	                 "regsignd (HSM process): watchdog: a recovery has waited %lu ms for a "
	                 "PKCS#11 call stuck in the module (hsm.recover-timeout %u ms + %u ms); "
	                 "exiting with status %d\n",
	                 ms, wd->recover_timeout_ms, HSMD_RECOVER_WAIT_MARGIN_MS,
	                 HSMD_EXIT_WATCHDOG);

	fire(line, n);
}

static void *watchdog_main(void *arg)
{
	struct hsmd_watchdog *wd = arg;
	uint64_t period = wd->call_timeout_ms / 4;
	unsigned long wait_bound = (unsigned long)wd->recover_timeout_ms +
	                           HSMD_RECOVER_WAIT_MARGIN_MS;

	if (period > 250)
		period = 250;
	if (period < 10)
		period = 10;
	pthread_mutex_lock(&wd->mu);
	while (!wd->stop) {
		struct timespec ts;
		unsigned long waited;
		uint64_t now;

		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += (time_t)(period / 1000);
		ts.tv_nsec += (long)(period % 1000) * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&wd->cv, &wd->mu, &ts);
		if (wd->stop)
			break;
		now = now_ms();
		for (unsigned i = 0; i < wd->n_slots; i++) {
			uint64_t t = atomic_load(&wd->call_started[i]);

			if (t != 0 && now > t && now - t > wd->call_timeout_ms)
				fire_call(wd, i, now - t);
		}
		waited = hsm_recover_wait_ms(wd->hsm);
		if (waited > wait_bound)
			fire_recovery(wd, waited);
	}
	pthread_mutex_unlock(&wd->mu);
	return NULL;
}

int hsmd_watchdog_start(struct hsmd_watchdog *wd, hsm_t *hsm, unsigned n_slots,
                        unsigned call_timeout_ms, unsigned recover_timeout_ms)
{
	pthread_condattr_t ca;

	wd->call_timeout_ms = call_timeout_ms;
	wd->recover_timeout_ms = recover_timeout_ms;
	wd->hsm = hsm;
	if (call_timeout_ms == 0)
		return 0;
	wd->call_started = calloc(n_slots, sizeof(*wd->call_started));
	if (wd->call_started == NULL)
		return -1;
	wd->n_slots = n_slots;
	for (unsigned i = 0; i < n_slots; i++)
		atomic_init(&wd->call_started[i], 0);
	if (pthread_condattr_init(&ca) != 0)
		goto fail;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&wd->cv, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&wd->mu, NULL);
	if (pthread_create(&wd->thread, NULL, watchdog_main, wd) != 0) {
		pthread_cond_destroy(&wd->cv);
		pthread_mutex_destroy(&wd->mu);
		goto fail;
	}
	wd->running = 1;
	return 0;
fail:
	free(wd->call_started);
	wd->call_started = NULL;
	wd->n_slots = 0;
	return -1;
}

void hsmd_watchdog_drop_hsm(struct hsmd_watchdog *wd)
{
	if (!wd->running) {
		wd->hsm = NULL;
		return;
	}
	pthread_mutex_lock(&wd->mu);
	wd->hsm = NULL;
	pthread_mutex_unlock(&wd->mu);
}

void hsmd_watchdog_stop(struct hsmd_watchdog *wd)
{
	if (wd->running) {
		pthread_mutex_lock(&wd->mu);
		wd->stop = 1;
		pthread_cond_signal(&wd->cv);
		pthread_mutex_unlock(&wd->mu);
		pthread_join(wd->thread, NULL);
		pthread_cond_destroy(&wd->cv);
		pthread_mutex_destroy(&wd->mu);
		wd->running = 0;
	}
	free(wd->call_started);
	wd->call_started = NULL;
	wd->n_slots = 0;
}
