/*
 * regsign-bench-bulk: full signing of a device zone through the bulk import
 * path (zonesigner/zone.h, zone_bulk_import) with token keys through the
 * real pkcs11 layer (pkcs11/hsm.h), signatures spread over a worker pool.
 * Issue 5, target 4: wall time against R, peak RSS per device record.
 *
 *   regsign-bench-bulk --module SO --token-uri URI --pin-file F
 *       --ksk URI --zsk URI --zone-file UNSIGNED [--origin Z] [--threads T]
 *       [--batch B] [--out SIGNED] [--json]
 *
 * UNSIGNED is bench/gen_zone.py's zone (the anchors' generator): its
 * "1.<id>.<origin> ... CERT 1 0 0 <base64 SHA-256>" lines become devices of
 * style seed; everything else in it is ignored, since the zone makes its
 * own apex. The peers sign the same file.
 *
 * Each device costs two signatures (its CERT RRset and its NSEC). The zone
 * hands over batches of signing requests; the main thread and T-1 workers
 * take them in small chunks, hash each with SHA-256 and sign with hsm_sign()
 * (one pool session each), so the HSM sees T concurrent signers, like the
 * raw loop R with T threads. The zone's own work between batches (encoding,
 * sorting, RRSIG data) runs on the main thread alone.
 *
 * Reported: devices, signatures, the import's wall time and the part of it
 * spent outside the signing callback (zone_only_s: the serial share that
 * no number of signers shortens), signatures/s,
 * records/s, peak RSS of the process (getrusage), bytes per record, and the
 * part of it that is the input list (which a daemon importing would hold
 * too). Time to read the input and open the token is not included.
 */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <openssl/evp.h>

#include "pkcs11/hsm.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_file.h"

#define CHUNK 8 /* requests a signer takes at once */

struct opts {
	const char *module, *token_uri, *pin_file, *ksk_uri, *zsk_uri;
	const char *zone_file, *origin, *out;
	unsigned threads;
	size_t batch;
	int json;
};

/* The devices read from the unsigned zone; one block per field. */
struct input {
	struct zone_device *dev;
	char (*id)[24];
	uint8_t (*hash)[32];
	size_t n, cap;
};

/*
 * The signing pool. A batch is published under the lock with a new
 * generation; signers take chunks under the lock, so a late signer can
 * never take work of a batch it did not see published.
 */
struct signer {
	hsm_t *h;
	int ksk, zsk;
	pthread_mutex_t lock;
	pthread_cond_t work, done;
	struct zone_sigreq *reqs;
	size_t n, next, finished;
	unsigned long gen;
	int err, stop;
	pthread_t *threads;
	unsigned nthreads;
	unsigned long long signatures;
	double sign_s; /* wall time inside sign_batch: the rest is the zone's own */
	char errmsg[256];
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- input ---- */

static int input_push(struct input *in, const char *id, const uint8_t hash[32])
{
	if (in->n == in->cap) {
		size_t cap = in->cap ? in->cap * 2 : 65536;
		void *a = realloc(in->dev, cap * sizeof(*in->dev));

		if (a == NULL)
			return -1;
		in->dev = a;
		if ((a = realloc(in->id, cap * sizeof(*in->id))) == NULL)
			return -1;
		in->id = a;
		if ((a = realloc(in->hash, cap * sizeof(*in->hash))) == NULL)
			return -1;
		in->hash = a;
		in->cap = cap;
	}
	snprintf(in->id[in->n], sizeof(in->id[in->n]), "%s", id);
	memcpy(in->hash[in->n], hash, 32);
	in->n++;
	return 0;
}

/* Parses one "1.<id>.<origin> TTL IN CERT 1 0 0 <b64>" line; 1 = not one. */
static int input_line(struct input *in, char *line, const char *origin)
{
	char *owner, *ttl, *cls, *type, *a, *b, *c, *b64, *save = NULL, *dot;
	uint8_t raw[48];
	size_t olen = strlen(origin);

	owner = strtok_r(line, " \t\n", &save);
	ttl = strtok_r(NULL, " \t\n", &save);
	cls = strtok_r(NULL, " \t\n", &save);
	type = strtok_r(NULL, " \t\n", &save);
	a = strtok_r(NULL, " \t\n", &save);
	b = strtok_r(NULL, " \t\n", &save);
	c = strtok_r(NULL, " \t\n", &save);
	b64 = strtok_r(NULL, " \t\n", &save);
	if (b64 == NULL || strcmp(type, "CERT") != 0 || strcmp(cls, "IN") != 0 ||
	    strcmp(a, "1") != 0 || strcmp(b, "0") != 0 || strcmp(c, "0") != 0 || ttl[0] == '\0')
		return 1;
	/* owner = "1." id "." origin */
	if (strncmp(owner, "1.", 2) != 0 || strlen(owner) <= olen + 3 ||
	    strcmp(owner + strlen(owner) - olen, origin) != 0)
		return -1;
	owner[strlen(owner) - olen - 1] = '\0';
	dot = owner + 2;
	if (strlen(dot) == 0 || strlen(dot) >= 24 || strchr(dot, '.') != NULL)
		return -1;
	if (strlen(b64) != 44 || EVP_DecodeBlock(raw, (const unsigned char *)b64, 44) != 33)
		return -1;
	return input_push(in, dot, raw);
}

static int input_read(const char *path, const char *origin, struct input *in)
{
	FILE *f = fopen(path, "r");
	char *line = NULL;
	size_t cap = 0;
	long lineno = 0;
	int r = 0;

	if (f == NULL) {
		fprintf(stderr, "regsign-bench-bulk: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while (r >= 0 && getline(&line, &cap, f) > 0) {
		lineno++;
		r = input_line(in, line, origin);
	}
	if (r < 0)
		fprintf(stderr, "regsign-bench-bulk: %s:%ld: not a device CERT line of %s\n", path,
			lineno, origin);
	free(line);
	fclose(f);
	if (r < 0)
		return -1;
	/* Pointers are set once the arrays stop moving. */
	for (size_t i = 0; i < in->n; i++) {
		memset(&in->dev[i], 0, sizeof(in->dev[i]));
		in->dev[i].id = in->id[i];
		in->dev[i].index = 1;
		in->dev[i].styles = ZONE_STYLE_SEED;
		in->dev[i].cert_sha256 = in->hash[i];
	}
	return 0;
}

static void input_free(struct input *in)
{
	free(in->dev);
	free(in->id);
	free(in->hash);
}

/* ---- signing pool ---- */

static int sign_one(struct signer *s, struct zone_sigreq *q)
{
	unsigned char digest[32], sig[HSM_SIG_MAX];
	size_t siglen = sizeof(sig);
	unsigned dlen = 0;
	int r;

	if (EVP_Digest(q->data, q->len, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != 32)
		return HSM_ERR_CRYPTO;
	r = hsm_sign(s->h, q->role == ZONE_KEY_KSK ? s->ksk : s->zsk, digest, 32, HSM_SIG_RAW,
		     sig, &siglen);
	if (r != HSM_OK)
		return r;
	if (siglen != 64)
		return HSM_ERR_CRYPTO;
	memcpy(q->sig, sig, 64);
	return 0;
}

/* Signs chunks of batch @p gen until none is left. Called with the lock held. */
static void sign_chunks(struct signer *s, unsigned long gen)
{
	while (s->gen == gen && s->next < s->n && s->err == 0) {
		size_t from = s->next, to = from + CHUNK < s->n ? from + CHUNK : s->n;
		int r = 0;

		s->next = to;
		pthread_mutex_unlock(&s->lock);
		for (size_t i = from; i < to && r == 0; i++)
			r = sign_one(s, &s->reqs[i]);
		pthread_mutex_lock(&s->lock);
		if (r != 0 && s->err == 0) {
			s->err = r;
			snprintf(s->errmsg, sizeof(s->errmsg), "%s: %s", hsm_strerror(r),
				 hsm_last_error(s->h));
		}
		s->finished += to - from;
		if (s->finished == s->n)
			pthread_cond_broadcast(&s->done);
	}
}

static void *worker(void *arg)
{
	struct signer *s = arg;
	unsigned long seen = 0;

	pthread_mutex_lock(&s->lock);
	while (!s->stop) {
		if (s->gen != seen) {
			seen = s->gen;
			sign_chunks(s, seen);
			continue;
		}
		pthread_cond_wait(&s->work, &s->lock);
	}
	pthread_mutex_unlock(&s->lock);
	return NULL;
}

/* zone_sign_fn: publish the batch, sign alongside the workers, wait. */
static int sign_batch(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	struct signer *s = ctx;
	unsigned long gen;
	double t0 = now_s();
	int r;

	pthread_mutex_lock(&s->lock);
	s->reqs = reqs;
	s->n = n;
	s->next = 0;
	s->finished = 0;
	gen = ++s->gen;
	pthread_cond_broadcast(&s->work);
	sign_chunks(s, gen);
	while (s->finished < s->n)
		pthread_cond_wait(&s->done, &s->lock);
	r = s->err;
	if (r == 0)
		s->signatures += n;
	s->sign_s += now_s() - t0;
	pthread_mutex_unlock(&s->lock);
	return r == 0 ? 0 : -1;
}

static int signer_start(struct signer *s, unsigned nthreads)
{
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->work, NULL);
	pthread_cond_init(&s->done, NULL);
	s->threads = calloc(nthreads, sizeof(*s->threads));
	if (s->threads == NULL)
		return -1;
	/* The main thread is a signer too: nthreads - 1 workers. */
	for (unsigned i = 0; i + 1 < nthreads; i++) {
		if (pthread_create(&s->threads[i], NULL, worker, s) != 0)
			return -1;
		s->nthreads++;
	}
	return 0;
}

static void signer_stop(struct signer *s)
{
	pthread_mutex_lock(&s->lock);
	s->stop = 1;
	pthread_cond_broadcast(&s->work);
	pthread_mutex_unlock(&s->lock);
	for (unsigned i = 0; i < s->nthreads; i++)
		pthread_join(s->threads[i], NULL);
	free(s->threads);
	pthread_cond_destroy(&s->work);
	pthread_cond_destroy(&s->done);
	pthread_mutex_destroy(&s->lock);
}

/* ---- main ---- */

static int key_dnskey(hsm_t *h, int key, uint16_t flags, struct zone_dnskey *out)
{
	unsigned char *spki = NULL;
	size_t len = 0;
	int r = hsm_key_public(h, key, &spki, &len);

	if (r == 0)
		r = zone_dnskey_from_spki(spki, len, flags, out) == 0 ? 0 : -1;
	free(spki);
	return r;
}

static int usage(void)
{
	fprintf(stderr,
		"usage: regsign-bench-bulk --module SO --token-uri URI --pin-file F\n"
		"         --ksk URI --zsk URI --zone-file UNSIGNED [--origin Z]\n"
		"         [--threads T] [--batch B] [--out SIGNED] [--json]\n");
	return 2;
}

static int parse(int argc, char **argv, struct opts *o)
{
	static const struct option lo[] = {
		{ "module", required_argument, NULL, 'm' },
		{ "token-uri", required_argument, NULL, 't' },
		{ "pin-file", required_argument, NULL, 'p' },
		{ "ksk", required_argument, NULL, 'K' },
		{ "zsk", required_argument, NULL, 'Z' },
		{ "zone-file", required_argument, NULL, 'f' },
		{ "origin", required_argument, NULL, 'o' },
		{ "threads", required_argument, NULL, 'T' },
		{ "batch", required_argument, NULL, 'b' },
		{ "out", required_argument, NULL, 'O' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;
	long v;

	*o = (struct opts){ .origin = "iotregistry.test.", .threads = 2, .batch = 4096 };
	while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (ch) {
		case 'm': o->module = optarg; break;
		case 't': o->token_uri = optarg; break;
		case 'p': o->pin_file = optarg; break;
		case 'K': o->ksk_uri = optarg; break;
		case 'Z': o->zsk_uri = optarg; break;
		case 'f': o->zone_file = optarg; break;
		case 'o': o->origin = optarg; break;
		case 'O': o->out = optarg; break;
		case 'j': o->json = 1; break;
		case 'T':
		case 'b':
			v = strtol(optarg, NULL, 10);
			if (v < 1 || v > (ch == 'T' ? 64 : 1 << 20))
				return -1;
			if (ch == 'T')
				o->threads = (unsigned)v;
			else
				o->batch = (size_t)v;
			break;
		default:
			return -1;
		}
	}
	return optind == argc && o->module && o->token_uri && o->pin_file && o->ksk_uri &&
			       o->zsk_uri && o->zone_file
		       ? 0
		       : -1;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct input in = { 0 };
	struct signer s = { 0 };
	struct zone_params zp;
	struct zone *z = NULL;
	struct zone_status st;
	struct rusage ru0, ru1;
	char errbuf[256] = "";
	double t0, t1;
	int r, rc = 1, started = 0;

	if (parse(argc, argv, &o) != 0)
		return usage();
	if (input_read(o.zone_file, o.origin, &in) != 0)
		goto out;
	getrusage(RUSAGE_SELF, &ru0);
	struct hsm_config hc = { .module_path = o.module, .token_uri = o.token_uri,
				 .pin_file = o.pin_file, .sessions = o.threads,
				 .recover_timeout_ms = 10000, .errbuf = errbuf,
				 .errbuf_len = sizeof(errbuf),
				 /* as the daemon's HSM process signs (hsm.key-copies) */
				 .session_copies = true, .copy_check_ms = 1000 };
	r = hsm_open(&hc, &s.h);
	if (r == 0)
		r = hsm_key_add(s.h, "ksk", o.ksk_uri, &s.ksk);
	if (r == 0)
		r = hsm_key_add(s.h, "zsk", o.zsk_uri, &s.zsk);
	if (r != 0) {
		fprintf(stderr, "regsign-bench-bulk: token: %s %s %s\n", hsm_strerror(r), errbuf,
			s.h ? hsm_last_error(s.h) : "");
		goto out;
	}
	zone_params_init(&zp);
	zp.origin = o.origin;
	if (key_dnskey(s.h, s.ksk, ZONE_DNSKEY_FLAGS_KSK, &zp.ksk) != 0 ||
	    key_dnskey(s.h, s.zsk, ZONE_DNSKEY_FLAGS_ZSK, &zp.zsk) != 0 || zone_new(&zp, &z) != 0) {
		fprintf(stderr, "regsign-bench-bulk: cannot make the zone from the token keys\n");
		goto out;
	}
	started = 1; /* signer_stop() undoes a partial start too */
	if (signer_start(&s, o.threads) != 0) {
		fprintf(stderr, "regsign-bench-bulk: cannot start %u signers\n", o.threads);
		goto out;
	}
	t0 = now_s();
	r = zone_bulk_import(z, in.dev, in.n, (int64_t)time(NULL), sign_batch, &s, o.batch);
	t1 = now_s();
	if (r != 0) {
		fprintf(stderr, "regsign-bench-bulk: import: %s %s\n", zone_strerror(r), s.errmsg);
		goto out;
	}
	getrusage(RUSAGE_SELF, &ru1);
	zone_status_get(z, (int64_t)time(NULL), &st);
	if (o.out != NULL && (r = zone_file_write(z, o.out)) != 0) {
		fprintf(stderr, "regsign-bench-bulk: %s: %s\n", o.out, zone_strerror(r));
		goto out;
	}
	{
		double wall = t1 - t0;
		double peak = (double)ru1.ru_maxrss * 1024.0, base = (double)ru0.ru_maxrss * 1024.0;
		double per = in.n ? peak / (double)in.n : 0;

		if (o.json)
			printf("{\"devices\":%zu,\"threads\":%u,\"batch\":%zu,\"signatures\":%llu,"
			       "\"wall_s\":%.3f,\"sign_per_s\":%.1f,\"records_per_s\":%.1f,"
			       "\"peak_rss_kb\":%ld,\"rss_bytes_per_record\":%.1f,"
			       "\"input_rss_kb\":%ld,\"zone_bytes_per_name\":%.1f,\"serial\":%u,"
			       "\"zone_only_s\":%.3f}\n",
			       in.n, o.threads, o.batch, s.signatures, wall,
			       (double)s.signatures / wall, (double)in.n / wall, ru1.ru_maxrss, per,
			       ru0.ru_maxrss, (double)st.bytes / (double)st.names, st.serial,
			       wall - s.sign_s);
		else
			printf("bulk import of %zu devices, %u signers: %.2f s, %llu signatures "
			       "(%.0f/s), %.0f records/s\npeak RSS %.1f MB = %.0f bytes/record "
			       "(input list %.1f MB); zone %.0f bytes/name; %.2f s of zone work "
			       "with no signing\n",
			       in.n, o.threads, wall, s.signatures, (double)s.signatures / wall,
			       (double)in.n / wall, peak / 1e6, per, base / 1e6,
			       (double)st.bytes / (double)st.names, wall - s.sign_s);
	}
	rc = 0;
out:
	if (started)
		signer_stop(&s);
	zone_free(z);
	hsm_close(s.h);
	input_free(&in);
	return rc;
}
