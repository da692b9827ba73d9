/*
 * cli_bench_report.c - what `regsign bench` (cli_bench.c) reports once its
 * clients are done: the HSM signatures from STATUS before and after, the
 * clients' counts and latencies gathered into one result, and that result
 * as text or as one JSON object.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/cli_bench_int.h"
#include "signer/json.h"

/* ---- STATUS ---- */

/*
 * Sums the numbers of every "signatures" member of a STATUS document: a
 * number, or an object of numbers (per role). Returns -1 if there is none.
 * STATUS is informative JSON whose members may grow; this reads only what
 * the bench needs and ignores the rest.
 */
static long long bench_status_signatures(const char *json, size_t len)
{
	static const char key[] = "\"signatures\"";
	const char *p = json, *end = json + len;
	long long sum = -1;

	while ((p = memmem(p, (size_t)(end - p), key, sizeof(key) - 1)) != NULL) {
		int depth = 0;

		p += sizeof(key) - 1;
		while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r' || *p == ':'))
			p++;
		do {
			if (p < end && *p == '{')
				depth++;
			else if (p < end && *p == '}')
				depth--;
			else if (p < end && *p >= '0' && *p <= '9') {
				char *e;
				long long v = strtoll(p, &e, 10);

				sum = (sum < 0 ? 0 : sum) + v;
				p = e;
				continue;
			} else if (p < end && *p == '"') {
				/* a member name inside the object: skip it */
				const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));

				p = q != NULL ? q : end;
			}
			p++;
		} while (p < end && depth > 0);
	}
	return sum;
}

/* See cli_bench_int.h. */
long long cli_bench__status_signatures(const struct bench_opts *o)
{
	regsign_client *c = NULL;
	struct regsign_reply rep = { 0 };
	long long n = -1;

	if (regsign_client_new(&c) != REGSIGN_CLIENT_OK)
		return -1;
	regsign_client_set_timeout(c, o->timeout_ms);
	if (regsign_client_connect(c, o->socket_path) == REGSIGN_CLIENT_OK &&
	    regsign_client_status(c, &rep) == REGSIGN_CLIENT_OK && rep.data.data != NULL)
		n = bench_status_signatures((const char *)rep.data.data, rep.data.len);
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	return n;
}

/* ---- results ---- */

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* The q-quantile (nearest rank) of sorted @p v, in milliseconds. */
static double quantile_ms(const uint64_t *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	if (k > n)
		k = n;
	return (double)v[k - 1] / 1e6;
}


int cli_bench__result_collect(const struct bench_run *run, struct bench_client *cl, unsigned n,
			  struct bench_result *res)
{
	uint64_t *all = NULL, last = run->t_measure;
	size_t total = 0, k = 0;
	double sum = 0;

	for (unsigned i = 0; i < n; i++)
		total += cl[i].nlat;
	if (total > 0 && (all = malloc(total * sizeof(*all))) == NULL)
		return -1;
	for (unsigned i = 0; i < n; i++) {
		struct bench_client *bc = &cl[i];

		if (bc->nlat > 0)
			memcpy(all + k, bc->lat, bc->nlat * sizeof(*all));
		k += bc->nlat;
		res->ok += bc->ok;
		res->refused += bc->refused;
		res->late += bc->late;
		res->prep_ok += bc->prep_ok;
		res->prep_refused += bc->prep_refused;
		for (unsigned c = 0; c < BENCH_NCODES; c++)
			res->codes[c] += bc->codes[c];
		if (bc->failed) {
			res->failed_clients++;
			if (res->first_err == NULL)
				res->first_err = bc->err;
		}
		res->exhausted_clients += bc->exhausted != 0;
		if (res->first_refusal == NULL && bc->refusal[0] != '\0')
			res->first_refusal = bc->refusal;
		if (bc->last_done > last)
			last = bc->last_done;
	}
	/* Work ends with the last reply (a closed loop drains its window after
	 * the deadline), or at the deadline if that came first. */
	if (last < run->t_end && run->o->rate > 0)
		last = run->t_end;
	res->elapsed = (double)(last - run->t_measure) / 1e9;
	if (res->elapsed <= 0)
		res->elapsed = run->o->seconds;
	res->ops_per_s = (double)res->ok / res->elapsed;
	if (total > 0) {
		qsort(all, total, sizeof(*all), cmp_u64);
		for (size_t i = 0; i < total; i++)
			sum += (double)all[i];
		res->mean = sum / (double)total / 1e6;
		res->p50 = quantile_ms(all, total, 0.50);
		res->p99 = quantile_ms(all, total, 0.99);
		res->p999 = quantile_ms(all, total, 0.999);
		res->max = (double)all[total - 1] / 1e6;
	}
	free(all);
	return 0;
}

void cli_bench__print_json(const struct bench_opts *o, const struct bench_result *res)
{
	int first = 1;

	printf("{\"op\":\"%s\",\"clients\":%u,\"window\":%u,\"rate\":%.3f,\"warmup_s\":%.3f,"
	       "\"seconds\":%.3f,\"ok\":%llu,\"refused\":%llu,\"after_deadline\":%llu,"
	       "\"ops_per_s\":%.1f,",
	       cli_bench__op_names[o->op], o->clients, o->window, o->rate, o->warmup, res->elapsed,
	       (unsigned long long)res->ok, (unsigned long long)res->refused,
	       (unsigned long long)res->late, res->ops_per_s);
	printf("\"latency_ms\":{\"p50\":%.3f,\"p99\":%.3f,\"p999\":%.3f,\"max\":%.3f,"
	       "\"mean\":%.3f},",
	       res->p50, res->p99, res->p999, res->max, res->mean);
	printf("\"errors\":{");
	for (unsigned c = 0; c < BENCH_NCODES; c++) {
		if (res->codes[c] == 0)
			continue;
		printf("%s\"%s\":%llu", first ? "" : ",", regsign_code_name(c),
		       (unsigned long long)res->codes[c]);
		first = 0;
	}
	printf("},\"failed_clients\":%u,\"exhausted_clients\":%u,", res->failed_clients,
	       res->exhausted_clients);
	printf("\"prepared\":%llu,\"prepare_refused\":%llu,", (unsigned long long)res->prep_ok,
	       (unsigned long long)res->prep_refused);
	if (res->sigs >= 0)
		printf("\"hsm_signatures\":%lld,\"signatures_per_op\":%.3f,", res->sigs,
		       res->ok > 0 ? (double)res->sigs / (double)res->ok : 0.0);
	else
		printf("\"hsm_signatures\":null,\"signatures_per_op\":null,");
	printf("\"first_error\":");
	if (res->first_err != NULL)
		json_string_fput(res->first_err, stdout);
	else
		printf("null");
	printf(",\"first_refusal\":");
	if (res->first_refusal != NULL)
		json_string_fput(res->first_refusal, stdout);
	else
		printf("null");
	printf("}\n");
}

void cli_bench__print_text(const struct bench_opts *o, const struct bench_result *res)
{
	printf("regsign bench: %s, %u clients, ", cli_bench__op_names[o->op], o->clients);
	if (o->rate > 0)
		printf("open loop at %.1f requests/s", o->rate);
	else
		printf("window %u", o->window);
	printf(", %.2f s measured\n", res->elapsed);
	printf("  operations      %llu ok, %llu refused\n", (unsigned long long)res->ok,
	       (unsigned long long)res->refused);
	printf("  throughput      %.1f ops/s\n", res->ops_per_s);
	printf("  latency (ms)    p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  mean %.3f\n",
	       res->p50, res->p99, res->p999, res->max, res->mean);
	for (unsigned c = 0; c < BENCH_NCODES; c++)
		if (res->codes[c] > 0)
			printf("  refused         %s: %llu\n", regsign_code_name(c),
			       (unsigned long long)res->codes[c]);
	if (res->first_refusal != NULL)
		printf("  first refusal   %s\n", res->first_refusal);
	if (o->op == BENCH_REVOKE)
		printf("  prepared        %llu issued (%llu refused)%s\n",
		       (unsigned long long)res->prep_ok, (unsigned long long)res->prep_refused,
		       res->exhausted_clients ? "; all were revoked before the deadline" : "");
	if (res->sigs >= 0)
		printf("  HSM signatures  %lld (%.2f per operation)\n", res->sigs,
		       res->ok > 0 ? (double)res->sigs / (double)res->ok : 0.0);
	else
		printf("  HSM signatures  unknown (STATUS has no \"signatures\")\n");
	if (res->failed_clients > 0)
		printf("  failed clients  %u; first: %s\n", res->failed_clients, res->first_err);
}
