/*
 * The zone thread's second pair of hands: the self-check of each commit
 * verifies fresh signatures (zone.verify-signatures), and this thread does
 * that while the zone thread builds the version's diff and swaps its nodes
 * in (zone_params.offload). On a revocation that takes the verification,
 * about a third of the zone thread's work after signing, off the request's
 * path, on the core the pipeline leaves idle at low rates.
 *
 * One run at a time: the zone thread hands one over and waits for it before
 * it judges the verdicts (and before the next commit), so a request number
 * and the number of the last one done are the whole protocol.
 */
#include "signer/zonepub_int.h"

static void off_run(void *ctx, size_t n, void (*fn)(void *arg, size_t i), void *arg)
{
	struct zonepub *zp = ctx;

	uv_mutex_lock(&zp->off_mu);
	zp->off_n = n;
	zp->off_fn = fn;
	zp->off_arg = arg;
	zp->off_req++;
	uv_cond_broadcast(&zp->off_cv);
	uv_mutex_unlock(&zp->off_mu);
}

static void off_wait(void *ctx)
{
	struct zonepub *zp = ctx;

	uv_mutex_lock(&zp->off_mu);
	while (zp->off_done != zp->off_req)
		uv_cond_wait(&zp->off_cv, &zp->off_mu);
	uv_mutex_unlock(&zp->off_mu);
}

static void off_main(void *arg)
{
	struct zonepub *zp = arg;

	uv_mutex_lock(&zp->off_mu);
	for (;;) {
		uint64_t req;
		size_t n;
		void (*fn)(void *, size_t);
		void *fa;

		while (zp->off_done == zp->off_req && !zp->off_stop)
			uv_cond_wait(&zp->off_cv, &zp->off_mu);
		/* A run handed over is finished even when stopping: its caller
		 * is waiting for it. */
		if (zp->off_done == zp->off_req)
			break;
		req = zp->off_req;
		n = zp->off_n;
		fn = zp->off_fn;
		fa = zp->off_arg;
		uv_mutex_unlock(&zp->off_mu);
		for (size_t i = 0; i < n; i++)
			fn(fa, i);
		uv_mutex_lock(&zp->off_mu);
		zp->off_done = req;
		uv_cond_broadcast(&zp->off_cv);
	}
	uv_mutex_unlock(&zp->off_mu);
}

void zp_offload_params(struct zonepub *zp, struct zone_params *p)
{
	p->offload.run = off_run;
	p->offload.wait = off_wait;
	p->offload.ctx = zp;
}

int zp_offload_start(struct zonepub *zp)
{
	if (uv_mutex_init(&zp->off_mu) != 0)
		return ZONEPUB_ENOMEM;
	if (uv_cond_init(&zp->off_cv) != 0) {
		uv_mutex_destroy(&zp->off_mu);
		return ZONEPUB_ENOMEM;
	}
	if (uv_thread_create(&zp->off_thread, off_main, zp) != 0) {
		uv_cond_destroy(&zp->off_cv);
		uv_mutex_destroy(&zp->off_mu);
		return ZONEPUB_ENOMEM;
	}
	zp->off_started = true;
	return 0;
}

void zp_offload_stop(struct zonepub *zp)
{
	if (!zp->off_started)
		return;
	uv_mutex_lock(&zp->off_mu);
	zp->off_stop = true;
	uv_cond_broadcast(&zp->off_cv);
	uv_mutex_unlock(&zp->off_mu);
	uv_thread_join(&zp->off_thread);
	uv_cond_destroy(&zp->off_cv);
	uv_mutex_destroy(&zp->off_mu);
	zp->off_started = false;
}
