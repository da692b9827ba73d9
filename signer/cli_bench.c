/*
 * `regsign bench`: a load generator for regsignd, to size a machine and to
 * check the performance targets (bench/README.md).
 *
 *   regsign [-s SOCKET] bench --op sign-rrset|issue|revoke [--clients N]
 *           [--seconds S] [--warmup S] [--window W | --rate R] [--json] ...
 *
 * N client threads each hold one connection. Without --rate each keeps W
 * pipelined requests outstanding (closed loop: the figure is the daemon's
 * throughput). With --rate the clients together send R requests per second
 * on a fixed schedule, one at a time per connection, and each latency is
 * counted from the request's scheduled time, so a daemon that falls behind
 * cannot hide its backlog (open loop: the figure is latency at that load).
 *
 * Everything a request carries is made before timing starts: CSRs from
 * fresh EC P-256 keys (OpenSSL, in memory), RRsets in wire form (ldns), and
 * for REVOKE the certificates themselves, issued untimed by each client on
 * its own connection. During the timed phase a client only formats frames
 * and reads replies, so the generator spends little CPU next to the daemon.
 *
 * HSM signatures per operation come from STATUS before and after the timed
 * phase: the sum of every "signatures" member of its JSON (see
 * bench_status_signatures() in cli_bench_report.c); if STATUS has none the
 * figure is null.
 */
#include "signer/cli.h"
#include "signer/cli_bench_int.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

/* ldns headers need two OpenSSL names this build hides; see there. */
#include "zonesigner/zone_ldns.h"

int cli_bench(const struct cli_global *g, int argc, char **argv);

#define BENCH_MAX_CLIENTS 256

const char *const cli_bench__op_names[] = { "sign-rrset", "issue", "revoke" };

/* What requests carry, made before timing starts; read-only afterwards. */
struct bench_pool {
	struct regsign_blob *items; /* CSRs (DER) or RRsets (wire) */
	size_t n;
	char run_id[9];             /* 8 hex digits: this run's device ids */
	uint32_t inception, expiration;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void sleep_until(uint64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000u),
			       .tv_nsec = (long)(t % 1000000000u) };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* ---- the pool ---- */

/* One CSR for a fresh P-256 key, DER (malloc'd). Returns 0 or -1. */
static int csr_make(struct regsign_blob *out)
{
	EVP_PKEY *key = NULL;
	X509_REQ *req = NULL;
	X509_NAME *name = NULL;
	unsigned char *der = NULL;
	int len, r = -1;

	key = EVP_EC_gen("P-256");
	req = X509_REQ_new();
	name = X509_NAME_new();
	if (key == NULL || req == NULL || name == NULL)
		goto out;
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
				       (const unsigned char *)"regsign-bench", -1, -1, 0) != 1 ||
	    X509_REQ_set_version(req, 0) != 1 || X509_REQ_set_subject_name(req, name) != 1 ||
	    X509_REQ_set_pubkey(req, key) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
		goto out;
	len = i2d_X509_REQ(req, &der);
	if (len <= 0 || (out->data = malloc((size_t)len)) == NULL)
		goto out;
	memcpy(out->data, der, (size_t)len);
	out->len = (size_t)len;
	r = 0;
out:
	OPENSSL_free(der);
	X509_NAME_free(name);
	X509_REQ_free(req);
	EVP_PKEY_free(key);
	return r;
}

/* One TXT RRset of one RR at b<i>.<zone>, wire form (malloc'd by ldns).
 * Returns 0 or -1. */
static int rrset_make(const char *zone, unsigned i, struct regsign_blob *out)
{
	char text[512];
	ldns_rr *rr = NULL;
	uint8_t *wire = NULL;
	size_t len = 0;
	int r = -1;

	snprintf(text, sizeof(text), "b%u.%s%s 300 IN TXT \"regsign bench record %u\"", i, zone,
		 zone[0] != '\0' && zone[strlen(zone) - 1] == '.' ? "" : ".", i);
	if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
		goto out;
	if (ldns_rr2wire(&wire, rr, LDNS_SECTION_ANSWER, &len) != LDNS_STATUS_OK)
		goto out;
	out->data = wire;
	out->len = len;
	wire = NULL;
	r = 0;
out:
	free(wire);
	ldns_rr_free(rr);
	return r;
}

static void pool_clear(struct bench_pool *p)
{
	for (size_t i = 0; i < p->n; i++)
		free(p->items[i].data);
	free(p->items);
	memset(p, 0, sizeof(*p));
}

static int pool_make(const struct bench_opts *o, struct bench_pool *p)
{
	unsigned char id[4];
	time_t now = time(NULL);

	memset(p, 0, sizeof(*p));
	/* A random run id keeps device ids of different runs apart, so that
	 * a second run against the same daemon does not meet CONFLICT. */
	if (RAND_bytes(id, sizeof(id)) != 1)
		return -1;
	snprintf(p->run_id, sizeof(p->run_id), "%02x%02x%02x%02x", id[0], id[1], id[2], id[3]);
	p->inception = (uint32_t)(now - 3600);
	p->expiration = (uint32_t)(now + 7 * 86400);
	p->items = calloc(o->pool, sizeof(*p->items));
	if (p->items == NULL)
		return -1;
	for (unsigned i = 0; i < o->pool; i++) {
		int r = o->op == BENCH_SIGN_RRSET ? rrset_make(o->zone, i, &p->items[i])
						  : csr_make(&p->items[i]);

		if (r != 0) {
			pool_clear(p);
			return -1;
		}
		p->n++;
	}
	return 0;
}

/* ---- one client ---- */

static void device_id(const struct bench_client *bc, uint64_t seq, char id[24])
{
	/* 8 + 2 + 10 = 20 hex digits, the length of an ICCID. */
	snprintf(id, 24, "%s%02x%010llx", bc->run->p->run_id, bc->idx,
		 (unsigned long long)(seq & 0xffffffffffull));
}

/* Fills @p req with the next request of @p op; returns 0, or 1 when this
 * client has no work left (REVOKE ran out of certificates). */
static int next_request(struct bench_client *bc, enum bench_op op, struct regsign_request *req,
			char id[24])
{
	const struct bench_opts *o = bc->run->o;
	const struct bench_pool *p = bc->run->p;
	const struct regsign_blob *item;

	memset(req, 0, sizeof(*req));
	switch (op) {
	case BENCH_SIGN_RRSET:
		item = &p->items[bc->seq++ % p->n];
		req->op = REGSIGN_OP_SIGN_RRSET;
		req->zone = o->zone;
		req->rrset_wire = item->data;
		req->rrset_len = item->len;
		req->inception = p->inception;
		req->expiration = p->expiration;
		return 0;
	case BENCH_ISSUE:
		if (bc->preparing && bc->seq >= bc->limit)
			return 1;
		item = &p->items[bc->seq % p->n];
		device_id(bc, bc->seq++, id);
		req->op = REGSIGN_OP_ISSUE;
		req->device_id = id;
		req->index = 1;
		req->profile = o->profile;
		req->csr_der = item->data;
		req->csr_len = item->len;
		return 0;
	case BENCH_REVOKE:
		if (bc->seq >= bc->limit)
			return 1;
		device_id(bc, bc->seq++, id);
		req->op = REGSIGN_OP_REVOKE;
		req->device_id = id;
		req->index = 1;
		req->reason = o->reason;
		return 0;
	}
	return 1;
}

static void client_fail(struct bench_client *bc, const char *what, int r)
{
	bc->failed = 1;
	snprintf(bc->err, sizeof(bc->err), "client %u: %s: %s: %s", bc->idx, what,
		 regsign_client_strerror(r), bc->c != NULL ? regsign_client_errmsg(bc->c) : "");
}

static int lat_push(struct bench_client *bc, uint64_t v)
{
	if (bc->nlat == bc->caplat) {
		size_t cap = bc->caplat ? bc->caplat * 2 : 4096;
		uint64_t *p = realloc(bc->lat, cap * sizeof(*p));

		if (p == NULL)
			return -1;
		bc->lat = p;
		bc->caplat = cap;
	}
	bc->lat[bc->nlat++] = v;
	return 0;
}

/* Accounts one reply that ended at @p t for a request sent at @p sent. */
static void account(struct bench_client *bc, int r, const struct regsign_reply *rep,
		    uint64_t sent, uint64_t t, int prepare)
{
	/* The first refusal says why, e.g. a policy that wants a profile. */
	if (r == REGSIGN_CLIENT_ERR_REFUSED && bc->refusal[0] == '\0')
		snprintf(bc->refusal, sizeof(bc->refusal), "%s%s: %s", prepare ? "preparing: " : "",
			 regsign_code_name(rep->code), rep->message != NULL ? rep->message : "");
	if (prepare) {
		if (r == REGSIGN_CLIENT_OK)
			bc->prep_ok++;
		else
			bc->prep_refused++;
		return;
	}
	if (sent < bc->run->t_measure)
		return; /* warm-up */
	if (t > bc->run->t_end)
		bc->late++;
	bc->last_done = t;
	if (r == REGSIGN_CLIENT_OK) {
		bc->ok++;
		if (lat_push(bc, t - sent) != 0 && !bc->failed) {
			bc->failed = 1;
			snprintf(bc->err, sizeof(bc->err), "client %u: out of memory", bc->idx);
		}
	} else {
		bc->refused++;
		bc->codes[rep->code < BENCH_NCODES ? rep->code : 0]++;
	}
}

/*
 * Closed loop: keep the window full until @p end (or until the work runs
 * out), then collect what is outstanding. Returns 0 or -1 (bc->err set).
 */
static int run_closed(struct bench_client *bc, enum bench_op op, uint64_t end, int prepare)
{
	uint32_t mask = bc->run->o->window - 1;
	struct regsign_request req;
	struct regsign_reply rep = { 0 };
	char id[24];
	uint32_t rid;
	int r, k;

	for (;;) {
		uint64_t t = now_ns();

		while (t < end && !bc->exhausted &&
		       regsign_client_outstanding(bc->c) <= mask) {
			if (next_request(bc, op, &req, id) != 0) {
				bc->exhausted = 1;
				break;
			}
			r = regsign_client_send(bc->c, &req, &rid);
			if (r != REGSIGN_CLIENT_OK) {
				client_fail(bc, "send", r);
				return -1;
			}
			t = now_ns();
			bc->sent[rid & mask] = t;
		}
		if (regsign_client_outstanding(bc->c) == 0)
			return 0;
		r = regsign_client_recv(bc->c, &rep);
		t = now_ns();
		if ((r != REGSIGN_CLIENT_OK && r != REGSIGN_CLIENT_ERR_REFUSED) || rep.id == 0) {
			client_fail(bc, "receive", r == REGSIGN_CLIENT_OK ? REGSIGN_CLIENT_ERR_PROTOCOL
									   : r);
			regsign_reply_clear(&rep);
			return -1;
		}
		account(bc, r, &rep, bc->sent[rep.id & mask], t, prepare);
		regsign_reply_clear(&rep);
		/*
		 * Every reply that came with it is taken before the window is
		 * filled again, so that new requests go out in one write per
		 * batch of replies instead of one each: the generator shares
		 * the cores with the daemon, and its system calls count.
		 */
		while ((k = regsign_client_take(bc->c, &rep, &r)) == 1) {
			if ((r != REGSIGN_CLIENT_OK && r != REGSIGN_CLIENT_ERR_REFUSED) ||
			    rep.id == 0) {
				client_fail(bc, "receive", r == REGSIGN_CLIENT_OK ?
						REGSIGN_CLIENT_ERR_PROTOCOL : r);
				regsign_reply_clear(&rep);
				return -1;
			}
			account(bc, r, &rep, bc->sent[rep.id & mask], t, prepare);
			regsign_reply_clear(&rep);
		}
		if (k < 0) {
			client_fail(bc, "receive", k);
			return -1;
		}
	}
}

/*
 * Open loop: request i of this client is due at t_start + (i * clients +
 * idx) / rate; its latency runs from then, however late it is sent.
 */
static int run_open(struct bench_client *bc, enum bench_op op)
{
	const struct bench_opts *o = bc->run->o;
	double gap = 1e9 / o->rate;
	struct regsign_request req;
	struct regsign_reply rep = { 0 };
	char id[24];
	int r;

	for (uint64_t i = 0;; i++) {
		uint64_t due = bc->run->t_start +
			       (uint64_t)(((double)i * o->clients + bc->idx) * gap);

		if (due >= bc->run->t_end)
			return 0;
		if (next_request(bc, op, &req, id) != 0) {
			bc->exhausted = 1;
			return 0;
		}
		sleep_until(due);
		r = regsign_client_call(bc->c, &req, &rep);
		if ((r != REGSIGN_CLIENT_OK && r != REGSIGN_CLIENT_ERR_REFUSED)) {
			client_fail(bc, "call", r);
			regsign_reply_clear(&rep);
			return -1;
		}
		account(bc, r, &rep, due, now_ns(), 0);
		regsign_reply_clear(&rep);
	}
}

static int client_connect(struct bench_client *bc)
{
	const struct bench_opts *o = bc->run->o;
	struct regsign_reply rep = { 0 };
	int r;

	r = regsign_client_new(&bc->c);
	if (r != REGSIGN_CLIENT_OK) {
		client_fail(bc, "new", r);
		return -1;
	}
	regsign_client_set_timeout(bc->c, o->timeout_ms);
	r = regsign_client_set_window(bc->c, o->window);
	if (r == REGSIGN_CLIENT_OK)
		r = regsign_client_connect(bc->c, o->socket_path);
	if (r == REGSIGN_CLIENT_OK)
		r = regsign_client_hello(bc->c, "regsign-bench", &rep);
	regsign_reply_clear(&rep);
	if (r != REGSIGN_CLIENT_OK) {
		client_fail(bc, "connect", r);
		return -1;
	}
	return 0;
}

static void *client_main(void *arg)
{
	struct bench_client *bc = arg;
	const struct bench_opts *o = bc->run->o;
	int ok;

	ok = client_connect(bc) == 0;
	if (ok && o->op == BENCH_REVOKE) {
		/* Untimed: issue the certificates this client will revoke. */
		bc->limit = o->prepare / o->clients + (bc->idx < o->prepare % o->clients);
		bc->preparing = 1;
		ok = run_closed(bc, BENCH_ISSUE, UINT64_MAX, 1) == 0;
		bc->preparing = 0;
		bc->seq = 0;
		bc->exhausted = 0;
	}
	/* Every client reports, failed or not, so that the main thread never
	 * waits for one that gave up. */
	pthread_mutex_lock(&bc->run->lock);
	bc->run->ready++;
	pthread_cond_broadcast(&bc->run->cond);
	while (!bc->run->go)
		pthread_cond_wait(&bc->run->cond, &bc->run->lock);
	pthread_mutex_unlock(&bc->run->lock);
	if (ok) {
		sleep_until(bc->run->t_start);
		if (o->rate > 0)
			run_open(bc, o->op);
		else
			run_closed(bc, o->op, bc->run->t_end, 0);
	}
	return NULL;
}

/* ---- command line ---- */

static int bench_usage(void)
{
	fprintf(stderr,
		"usage: regsign bench --op sign-rrset|issue|revoke [options]\n"
		"  --clients N    connections, one thread each (default 16)\n"
		"  --seconds S    measured time (default 10)\n"
		"  --warmup S     unmeasured time before it (default 1)\n"
		"  --window W     pipelined requests per connection (default 64)\n"
		"  --rate R       open loop: R requests/s in all, one at a time per\n"
		"                 connection, latency from the scheduled time\n"
		"  --pool N       CSRs or RRsets made beforehand (default 256)\n"
		"  --prepare N    revoke: certificates issued beforehand (default 2000)\n"
		"  --zone Z       sign-rrset: the zone (default asp.test.)\n"
		"  --profile P    issue: the profile (default: the caller's first)\n"
		"  --reason R     revoke: the reason (default cessationOfOperation)\n"
		"  --socket PATH  regsignd's socket (default: -s or $REGSIGN_SOCKET)\n"
		"  --json         one JSON object on standard output\n");
	return CLI_EXIT_USAGE;
}

static int parse_seconds(const char *s, double lo, double *v)
{
	char *end;

	errno = 0;
	*v = strtod(s, &end);
	return (errno != 0 || end == s || *end != '\0' || !(*v >= lo) || *v > 86400) ? -1 : 0;
}

static int parse_opts(const struct cli_global *g, int argc, char **argv, struct bench_opts *o)
{
	static const struct option opts[] = {
		{ "op", required_argument, NULL, 'o' },
		{ "clients", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 'S' },
		{ "warmup", required_argument, NULL, 'W' },
		{ "window", required_argument, NULL, 'w' },
		{ "rate", required_argument, NULL, 'r' },
		{ "pool", required_argument, NULL, 'p' },
		{ "prepare", required_argument, NULL, 'P' },
		{ "zone", required_argument, NULL, 'z' },
		{ "profile", required_argument, NULL, 'f' },
		{ "reason", required_argument, NULL, 'R' },
		{ "socket", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *op = NULL;
	uint32_t u;
	int ch, have_op = 0;

	*o = (struct bench_opts){ .clients = 16, .window = 64, .seconds = 10, .warmup = 1,
				  .pool = 256, .prepare = 2000, .zone = "asp.test.",
				  .reason = "cessationOfOperation", .socket_path = g->socket_path,
				  .timeout_ms = g->timeout_ms };
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			op = optarg;
			break;
		case 'c':
			if (cli_parse_u32(optarg, &u) != 0 || u < 1 || u > BENCH_MAX_CLIENTS)
				return -1;
			o->clients = u;
			break;
		case 'S':
			if (parse_seconds(optarg, 0.01, &o->seconds) != 0)
				return -1;
			break;
		case 'W':
			if (parse_seconds(optarg, 0, &o->warmup) != 0)
				return -1;
			break;
		case 'w':
			if (cli_parse_u32(optarg, &u) != 0 || u < 1 || u > 65536)
				return -1;
			o->window = u;
			break;
		case 'r':
			if (parse_seconds(optarg, 0.001, &o->rate) != 0 || o->rate > 1e7)
				return -1;
			break;
		case 'p':
			if (cli_parse_u32(optarg, &u) != 0 || u < 1 || u > 1000000)
				return -1;
			o->pool = u;
			break;
		case 'P':
			if (cli_parse_u32(optarg, &u) != 0 || u < 1)
				return -1;
			o->prepare = u;
			break;
		case 'z':
			o->zone = optarg;
			break;
		case 'f':
			o->profile = optarg;
			break;
		case 'R':
			o->reason = optarg;
			break;
		case 's':
			o->socket_path = optarg;
			break;
		case 'j':
			o->json = 1;
			break;
		default:
			return -1;
		}
	}
	if (optind != argc || op == NULL)
		return -1;
	for (int i = 0; i < 3; i++) {
		if (strcmp(op, cli_bench__op_names[i]) == 0) {
			o->op = (enum bench_op)i;
			have_op = 1;
		}
	}
	if (!have_op)
		return -1;
	if (o->rate > 0)
		o->window = 1;
	/* The client library rounds its window up to a power of two; the send
	 * times are kept in a table of the same size. */
	for (u = 1; u < o->window; u <<= 1)
		;
	o->window = u;
	return 0;
}

/* Lets the started clients go (main thread); returns when all are ready. */
static void run_release(struct bench_run *run, unsigned started, long long *sig0)
{
	pthread_mutex_lock(&run->lock);
	while (run->ready < started)
		pthread_cond_wait(&run->cond, &run->lock);
	/* Every client is connected (and REVOKE's certificates issued). */
	if (sig0 != NULL)
		*sig0 = cli_bench__status_signatures(run->o);
	run->t_start = now_ns() + 1000000;
	run->t_measure = run->t_start + (uint64_t)(run->o->warmup * 1e9);
	run->t_end = run->t_measure + (uint64_t)(run->o->seconds * 1e9);
	run->go = 1;
	pthread_cond_broadcast(&run->cond);
	pthread_mutex_unlock(&run->lock);
}

int cli_bench(const struct cli_global *g, int argc, char **argv)
{
	struct bench_opts o;
	struct bench_pool pool = { 0 };
	struct bench_run run = { .lock = PTHREAD_MUTEX_INITIALIZER,
				 .cond = PTHREAD_COND_INITIALIZER };
	struct bench_client *cl = NULL;
	struct bench_result res = { 0 };
	long long sig0 = -1, sig1;
	unsigned started = 0;
	int r = CLI_EXIT_LOCAL;

	if (parse_opts(g, argc, argv, &o) != 0)
		return bench_usage();
	if (o.socket_path == NULL || o.socket_path[0] == '\0') {
		cli_warn("no socket: give -s SOCKET, --socket or set REGSIGN_SOCKET");
		return CLI_EXIT_USAGE;
	}
	if (pool_make(&o, &pool) != 0) {
		cli_warn("could not make the request pool (%s)",
			 o.op == BENCH_SIGN_RRSET ? "RRsets: is the zone a domain name?" : "CSRs");
		return CLI_EXIT_LOCAL;
	}
	run.o = &o;
	run.p = &pool;
	/* No deadline until go: a preparation (REVOKE) must not see one. */
	run.t_start = run.t_measure = run.t_end = UINT64_MAX;
	cl = calloc(o.clients, sizeof(*cl));
	if (cl == NULL)
		goto out;
	for (unsigned i = 0; i < o.clients; i++) {
		cl[i].run = &run;
		cl[i].idx = i;
		cl[i].sent = calloc(o.window, sizeof(*cl[i].sent));
		if (cl[i].sent == NULL)
			goto out;
	}
	for (; started < o.clients; started++)
		if (pthread_create(&cl[started].thread, NULL, client_main, &cl[started]) != 0)
			break;
	if (started < o.clients) {
		/* Release the ones that started with an empty run, then stop. */
		o.seconds = 0;
		run_release(&run, started, NULL);
		for (unsigned i = 0; i < started; i++)
			pthread_join(cl[i].thread, NULL);
		cli_warn("cannot start %u client threads", o.clients);
		goto out;
	}
	run_release(&run, started, &sig0);
	for (unsigned i = 0; i < started; i++)
		pthread_join(cl[i].thread, NULL);
	sig1 = cli_bench__status_signatures(&o);
	res.sigs = sig0 >= 0 && sig1 >= sig0 ? sig1 - sig0 : -1;
	if (cli_bench__result_collect(&run, cl, o.clients, &res) != 0) {
		cli_warn("out of memory");
		goto out;
	}
	if (o.json)
		cli_bench__print_json(&o, &res);
	else
		cli_bench__print_text(&o, &res);
	if (res.failed_clients > 0 && !o.json)
		cli_warn("%s", res.first_err);
	/* Exit: 0 when the run measured something; 3 when no client could
	 * work; 1 when every request was refused. */
	if (res.failed_clients == o.clients && res.ok == 0)
		r = CLI_EXIT_CONNECT;
	else if (res.ok == 0)
		r = CLI_EXIT_REFUSED;
	else
		r = CLI_EXIT_OK;
	if (fflush(stdout) != 0)
		r = CLI_EXIT_LOCAL;
out:
	for (unsigned i = 0; cl != NULL && i < o.clients; i++) {
		regsign_client_free(cl[i].c);
		free(cl[i].sent);
		free(cl[i].lat);
	}
	free(cl);
	pool_clear(&pool);
	return r;
}
