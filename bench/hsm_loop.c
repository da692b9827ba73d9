/*
 * regsign-bench-hsm: the signing loop of libregsign-hsm alone, no daemon.
 *
 *   regsign-bench-hsm --module SO --token-uri URI --pin-file F --key URI
 *       [--threads T] [--seconds S] [--key-copies on|off] [--json]
 *
 * T threads call hsm_sign() on one P-256 key over a fixed digest for S
 * seconds, each on a pool session of its own (the pool has T sessions), as
 * the HSM process's workers do. With --key-copies on (the daemon's default,
 * hsm.key-copies) each session signs with its session copy of the key; off,
 * with the token object, which is what the anchors' raw loop (R) does. So
 * "off" is R measured through our library (its overhead over the raw loop),
 * and "on" is the most signatures per second the daemon's HSM process could
 * make on this token: the figure to hold the front's throughput against,
 * besides R itself.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "pkcs11/hsm.h"

struct loop {
	hsm_t *h;
	int key;
	double seconds;
	atomic_ulong signatures;
	atomic_int err;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *loop_run(void *arg)
{
	struct loop *l = arg;
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen;
	double end = now_s() + l->seconds;
	unsigned long n = 0;
	int r;

	memset(digest, 0x5a, sizeof(digest));
	do {
		for (int i = 0; i < 32; i++) {
			siglen = sizeof(sig);
			r = hsm_sign(l->h, l->key, digest, sizeof(digest), HSM_SIG_RAW, sig,
			             &siglen);
			if (r != 0) {
				atomic_store(&l->err, r);
				goto out;
			}
			n++;
		}
	} while (now_s() < end);
out:
	atomic_fetch_add(&l->signatures, n);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: regsign-bench-hsm --module SO --token-uri URI --pin-file F "
	                "--key URI [--threads T] [--seconds S] [--key-copies on|off] [--json]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "token-uri", required_argument, NULL, 't' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "key", required_argument, NULL, 'k' },
		{ "threads", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "key-copies", required_argument, NULL, 'c' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *key = NULL;
	char err[256] = "";
	struct hsm_config cfg = { .recover_timeout_ms = 5000, .copy_check_ms = 1000,
	                          .session_copies = true, .errbuf = err,
	                          .errbuf_len = sizeof(err) };
	struct loop l = { .seconds = 3 };
	unsigned threads = 2;
	pthread_t *th;
	double t0, el;
	int c, json = 0;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm': cfg.module_path = optarg; break;
		case 't': cfg.token_uri = optarg; break;
		case 'p': cfg.pin_file = optarg; break;
		case 'k': key = optarg; break;
		case 'n': threads = (unsigned)strtoul(optarg, NULL, 10); break;
		case 's': l.seconds = strtod(optarg, NULL); break;
		case 'c':
			if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
				usage();
			cfg.session_copies = strcmp(optarg, "on") == 0;
			break;
		case 'j': json = 1; break;
		default: usage();
		}
	}
	if (cfg.module_path == NULL || cfg.token_uri == NULL || cfg.pin_file == NULL ||
	    key == NULL || threads == 0 || threads > 256 || l.seconds <= 0)
		usage();
	cfg.sessions = threads;
	if (hsm_open(&cfg, &l.h) != 0) {
		fprintf(stderr, "regsign-bench-hsm: %s\n", err);
		return 1;
	}
	if (hsm_key_add(l.h, "bench", key, &l.key) != 0) {
		fprintf(stderr, "regsign-bench-hsm: key %s: %s\n", key, hsm_last_error(l.h));
		hsm_close(l.h);
		return 1;
	}
	th = calloc(threads, sizeof(*th));
	if (th == NULL)
		return 1;
	t0 = now_s();
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&th[i], NULL, loop_run, &l) != 0)
			return 1;
	}
	for (unsigned i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	el = now_s() - t0;
	if (atomic_load(&l.err) != 0) {
		fprintf(stderr, "regsign-bench-hsm: hsm_sign: %s\n",
		        hsm_strerror(atomic_load(&l.err)));
		return 1;
	}
	{
		struct hsm_status st;
		double rate = (double)atomic_load(&l.signatures) / el;

		hsm_status_get(l.h, &st);
		if (json)
			printf("{\"threads\":%u,\"key_copies\":%s,\"copies\":%u,"
			       "\"signatures\":%lu,\"seconds\":%.3f,\"sign_per_s\":%.1f}\n",
			       threads, cfg.session_copies ? "true" : "false", st.copies,
			       atomic_load(&l.signatures), el, rate);
		else
			printf("hsm_sign loop: %u threads, key copies %s (%u in use): "
			       "%.1f signatures/s\n", threads,
			       cfg.session_copies ? "on" : "off", st.copies, rate);
	}
	free(th);
	hsm_close(l.h);
	return 0;
}
