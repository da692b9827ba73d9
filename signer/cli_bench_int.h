/*
 * cli_bench_int.h - what the load generator of `regsign bench`
 * (cli_bench.c: options, pool, client threads) and its report
 * (cli_bench_report.c) share. Internal to the regsign CLI.
 */
#ifndef REGSIGN_CLI_BENCH_INT_H
#define REGSIGN_CLI_BENCH_INT_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "signer/client.h"

#define BENCH_NCODES 16 /* server codes are 1..13; room for a few more */

enum bench_op {
	BENCH_SIGN_RRSET,
	BENCH_ISSUE,
	BENCH_REVOKE,
};

/* The operations' names on the command line and in the results. */
extern const char *const cli_bench__op_names[];

struct bench_opts {
	enum bench_op op;
	unsigned clients;
	unsigned window;  /* power of two; 1 with --rate */
	double seconds;   /* measured phase */
	double warmup;    /* before it, not counted */
	double rate;      /* requests/s over all clients; 0 = closed loop */
	unsigned pool;    /* CSRs or RRsets made beforehand */
	unsigned prepare; /* REVOKE: certificates issued beforehand */
	const char *zone;
	const char *profile;
	const char *reason;
	int json;
	const char *socket_path;
	int timeout_ms;
};

struct bench_pool;

/*
 * Shared by the client threads. Each client says it is ready (connected;
 * for REVOKE, its certificates issued) and waits for go; the main thread
 * waits for every client started, sets the times, then says go. The times
 * are written only before go (under the lock) and only read after it.
 */
struct bench_run {
	const struct bench_opts *o;
	const struct bench_pool *p;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	unsigned ready;
	int go;
	uint64_t t_start, t_measure, t_end; /* CLOCK_MONOTONIC, ns */
};

struct bench_client {
	struct bench_run *run;
	unsigned idx;
	pthread_t thread;
	regsign_client *c;
	uint64_t seq;      /* next device sequence number of this client */
	uint64_t limit;    /* REVOKE: devices to prepare, then revocable */
	int preparing;     /* REVOKE's untimed issuing: ISSUE stops at limit */
	uint64_t *sent;    /* send time per window slot (id & (window - 1)) */
	uint64_t *lat;     /* latencies of successful measured requests, ns */
	size_t nlat, caplat;
	uint64_t ok, refused, late, prep_ok, prep_refused;
	uint64_t codes[BENCH_NCODES];
	uint64_t last_done;
	int failed;        /* a local failure ended this client */
	int exhausted;     /* REVOKE: ran out of prepared certificates */
	char err[200];
	char refusal[200]; /* the first refusal: code name and message */
};

/* The run's figures, summed over the clients. */
struct bench_result {
	uint64_t ok, refused, late, prep_ok, prep_refused, codes[BENCH_NCODES];
	unsigned failed_clients, exhausted_clients;
	double elapsed, ops_per_s, p50, p99, p999, max, mean;
	long long sigs; /* -1: unknown */
	const char *first_err;
	const char *first_refusal;
};

/* STATUS's signature total, or -1 (no connection, refused, no member). */
long long cli_bench__status_signatures(const struct bench_opts *o);

/* Sums the @p n clients @p cl of @p run into @p res (zeroed by the caller);
 * -1 when out of memory for the sorted latencies, else 0. */
int cli_bench__result_collect(const struct bench_run *run, struct bench_client *cl, unsigned n,
			      struct bench_result *res);

/* @p res on stdout: one JSON object on a line, or a few lines of text. */
void cli_bench__print_json(const struct bench_opts *o, const struct bench_result *res);
void cli_bench__print_text(const struct bench_opts *o, const struct bench_result *res);

#endif
