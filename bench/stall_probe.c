/*
 * bench/stall_probe.c - how late this machine wakes a sleeping thread.
 *
 *     regsign-bench-stalls [--sleep-us N]
 *
 * Sleeps N µs (default 1000) again and again until SIGTERM or SIGINT, and
 * records every wake-up that came more than 1 ms late. Then prints one JSON
 * object: the samples taken, how many were late by over 1, 3, 5 and 10 ms,
 * the latest, the probe's own duration, and each stall over 3 ms as
 * [ms since the start, ms late].
 *
 * Why: a latency target measured in milliseconds on a virtual machine also
 * measures the machine. When the host takes a vCPU away (or wakes a halted
 * one late), every request in flight waits, whichever stage it is in. The
 * daemon cannot see that; this probe, run beside a measurement, can. run.sh
 * runs it during REVOKE and keeps the stalls inside the measured window
 * (the last --seconds of the probe's run, which ends with the load
 * generator's).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALLS_MAX 100000

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	static float at[STALLS_MAX], late[STALLS_MAX];
	const double bounds[] = { 1, 3, 5, 10 };
	unsigned long over[4] = { 0 }, samples = 0;
	long sleep_us = 1000;
	size_t nstalls = 0;
	double t0, worst = 0;
	struct sigaction sa;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--sleep-us") == 0 && i + 1 < argc) {
			sleep_us = strtol(argv[++i], NULL, 10);
		} else {
			fprintf(stderr, "usage: regsign-bench-stalls [--sleep-us N]\n");
			return 2;
		}
	}
	if (sleep_us < 100 || sleep_us > 100000) {
		fprintf(stderr, "regsign-bench-stalls: --sleep-us must be 100..100000\n");
		return 2;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	t0 = now_ms();
	while (!stop) {
		struct timespec ts = { 0, sleep_us * 1000L };
		double before = now_ms(), d;

		/* A signal ends the sleep early: that sample is not a stall. */
		if (nanosleep(&ts, NULL) != 0 && errno == EINTR)
			break;
		d = now_ms() - before - (double)sleep_us / 1e3;
		samples++;
		if (d > worst)
			worst = d;
		for (int b = 0; b < 4; b++)
			over[b] += d > bounds[b];
		if (d > 3 && nstalls < STALLS_MAX) {
			at[nstalls] = (float)(before - t0);
			late[nstalls++] = (float)d;
		}
	}
	printf("{\"sleep_us\": %ld, \"samples\": %lu, \"duration_ms\": %.1f, \"max_late_ms\": %.2f, "
	       "\"over_1ms\": %lu, \"over_3ms\": %lu, \"over_5ms\": %lu, \"over_10ms\": %lu, "
	       "\"stalls\": [",
	       sleep_us, samples, now_ms() - t0, worst, over[0], over[1], over[2], over[3]);
	for (size_t i = 0; i < nstalls; i++)
		printf("%s[%.1f, %.2f]", i ? ", " : "", at[i], late[i]);
	printf("]}\n");
	return 0;
}
