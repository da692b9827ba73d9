/*
 * ops_policy.c - the policy in force: reference-counted so that a request
 * keeps the policy it started under across a SIGHUP reload, the callers'
 * rate buckets (kept across reloads by caller name), and each caller's
 * default profile (the first the policy lists for it).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/ops_ctx.h"

/* ---- policy ---- */

struct ops_policy *
ops_policy_ref(struct ops_policy *p)
{
	if (p)
		p->refs++;
	return p;
}

void
ops_policy_unref(struct ops_policy *p)
{
	if (p && --p->refs == 0) {
		policy_free(p->pol);
		free(p);
	}
}

struct policy_ratelimit *
ops_bucket_find(struct ops_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->n_buckets; i++)
		if (strcmp(ctx->buckets[i].name, name) == 0)
			return ctx->buckets[i].rl;
	return NULL;
}

void
ops_buckets_free(struct ops_ctx *ctx)
{
	for (size_t i = 0; i < ctx->n_buckets; i++) {
		free(ctx->buckets[i].name);
		policy_ratelimit_free(ctx->buckets[i].rl);
	}
	free(ctx->buckets);
	ctx->buckets = NULL;
	ctx->n_buckets = 0;
}

/*
 * Makes the buckets of @p pol's callers: a caller that had a bucket keeps its
 * tokens (a reload neither refills nor empties it) under the new rate.
 */
static int
buckets_for(struct ops_ctx *ctx, const struct policy *pol, struct ops_bucket **out, size_t *n_out)
{
	size_t n = policy_caller_count(pol), i;
	struct ops_bucket *b = calloc(n ? n : 1, sizeof(*b));
	uint64_t now = uv_now(ctx->loop);

	if (b == NULL)
		return -1;
	for (i = 0; i < n; i++) {
		const struct policy_caller *c = policy_caller_at(pol, i);

		if ((b[i].name = strdup(c->name)) == NULL)
			goto fail;
		if (c->rate_per_second <= 0)
			continue;
		for (size_t j = 0; j < ctx->n_buckets; j++) {
			if (ctx->buckets[j].rl && strcmp(ctx->buckets[j].name, c->name) == 0) {
				if (policy_ratelimit_set(ctx->buckets[j].rl, c->rate_per_second,
							 c->rate_burst, now) != 0)
					goto fail;
				b[i].rl = ctx->buckets[j].rl;
				ctx->buckets[j].rl = NULL; /* moved */
				break;
			}
		}
		if (b[i].rl == NULL &&
		    policy_ratelimit_new(c->rate_per_second, c->rate_burst, now, &b[i].rl) != 0)
			goto fail;
	}
	*out = b;
	*n_out = n;
	return 0;
fail:
	/* Buckets already moved go back to the old table's slots by name. */
	for (size_t k = 0; k < n; k++) {
		for (size_t j = 0; b[k].rl && j < ctx->n_buckets; j++) {
			if (ctx->buckets[j].rl == NULL && strcmp(ctx->buckets[j].name, b[k].name) == 0) {
				ctx->buckets[j].rl = b[k].rl;
				b[k].rl = NULL;
			}
		}
		free(b[k].name);
		policy_ratelimit_free(b[k].rl);
	}
	free(b);
	return -1;
}

int
ops_policy_install(struct ops_ctx *ctx, struct policy *pol)
{
	struct ops_policy *p = calloc(1, sizeof(*p));
	struct ops_bucket *b = NULL;
	size_t n = 0;

	if (p == NULL || buckets_for(ctx, pol, &b, &n) != 0) {
		free(p);
		return -1;
	}
	ops_buckets_free(ctx);
	ctx->buckets = b;
	ctx->n_buckets = n;
	p->pol = pol;
	p->refs = 1;
	ops_policy_unref(ctx->policy);
	ctx->policy = p;
	return 0;
}


const char *
ops_policy_default_profile(const struct ops_policy *p, const struct policy_caller *c)
{
	const struct policy_profile *prof = policy_caller_profile(c, 0);

	(void)p;
	return prof ? prof->name : NULL;
}
