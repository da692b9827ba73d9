/*
 * The scheduler and the choice of the next job.
 *
 * One job at a time runs on the zone thread (zonepub_job.c). Groups and
 * re-signing are pipelined: once a version is made and handed to the commit
 * pipeline, the zone thread makes the next one on top of it while the first
 * commits (zonepub_publish.c replays them on the served zone in commit
 * order), so a group's signing overlaps the previous group's fsync and
 * requests that arrive meanwhile do not wait for it. The other kinds (a
 * bulk import, a rebuild) wait until no version is pending, and nothing new
 * starts while they are pending. When the zone thread is free, or work
 * arrives while it is, the pump (a uv_idle handle, so it runs at the end of
 * the current loop iteration and without a timer's delay) picks the next
 * job: a rebuild of the working zone if a version failed (once every
 * pending one is done), otherwise the kinds take turns (a group of requests
 * and expiry removals, re-signing, a bulk import) so that none can starve
 * the others. The zone file is not the zone thread's: its own thread writes
 * it from the store (zonepub_aux.c), started at once by a request or the
 * tick, whatever the zone thread does. A group takes what is queued
 * (at most group_max requests); nothing waits to fill it. The timer only
 * marks work as due.
 *
 * Background verification: the commit's self-check verifies only a sample
 * of each version's fresh signatures (zone.verify-signatures: sampled), so
 * a bad signature among good ones can be published. Each tick therefore
 * also asks for one slice of a pass that verifies every signature of the
 * working zone (zone_verify_slice), picked only when no other kind is ready
 * and no version is pending, so it never delays a queued group by more than
 * the one slice already running. A tick's share is max(64, names / (device
 * refresh / tick)) names, verified in slices of at most ZP_VERIFY_SLICE_MAX
 * names (one job each), so a pass over the zone completes within the
 * device refresh period when the daemon is mostly idle; each name costs
 * about two ECDSA verifications. What a slice finds is handled in
 * zonepub_publish.c.
 */
#include "signer/zonepub_int.h"

#include <stdlib.h>

#include "signer/zonepub_hsm.h"

size_t zonepub_queued(const struct zonepub *zp)
{
	return zp->q_len;
}

/* ---- The scheduler ---- */

void zonepub_tick(struct zonepub *zp)
{
	int64_t now = zp_now(zp);
	const struct zp_expiry *top;

	if (zp->state != ZP_STARTED)
		return;
	/*
	 * Both intervals are wall-clock time, which can step back (an operator,
	 * NTP): a last time now in the future counts as due, or the work would
	 * wait for the clock to catch up with it (an hour, after a step back of
	 * an hour) while signatures signed before the step run out.
	 */
	if (now < zp->last_resign || now - zp->last_resign >= (int64_t)zp->o.resign_interval) {
		zp->resign_wanted = true;
		zp->last_resign = now;
	}
	/* Not while a write runs: it may already hold the new serial, and its
	 * end sets zone_file_time; a later tick decides. */
	if (zp->o.zone_file && zp->o.zone_file_interval && zp->file_job == NULL &&
	    (now < zp->s.zone_file_time ||
	     now - zp->s.zone_file_time >= (int64_t)zp->o.zone_file_interval) &&
	    zone_serial(zp->served) != zp->s.zone_file_serial) {
		zp->file_due = true;
		zp_file_kick(zp);
	}
	if (zone_serial(zp->served) != 0) {
		zp->verify_wanted = true;
		zp->verify_quota = zp_verify_slice_size(zp);
	}
	top = zp_heap_top(zp);
	if (zp->resign_wanted || zp->file_due || zp->verify_wanted ||
	    (top && top->not_after <= now))
		zp_pump_soon(zp);
}

void zp_tick_cb(uv_timer_t *t)
{
	zonepub_tick(t->data);
}

/* ---- Choosing and starting jobs ---- */

static struct zp_job *job_new(struct zonepub *zp, enum zp_job_kind kind, int64_t now)
{
	struct zp_job *job = calloc(1, sizeof(*job));

	if (job) {
		job->zp = zp;
		job->kind = kind;
		job->now = now;
	}
	return job;
}

static bool expiry_due(const struct zonepub *zp, int64_t now)
{
	const struct zp_expiry *top = zp_heap_top(zp);

	return top != NULL && top->not_after <= now;
}

bool zp_kind_ready(const struct zonepub *zp, int kind, int64_t now)
{
	switch (kind) {
	case ZP_JOB_GROUP:
		return zp->q_head || zp->apex_wanted || expiry_due(zp, now);
	case ZP_JOB_RESIGN:
		return zp->resign_wanted && zone_serial(zp->served) != 0;
	case ZP_JOB_FILE:
		return (zp->file_head || zp->file_due) && zone_serial(zp->served) != 0;
	case ZP_JOB_BULK:
		return zp->bulk_head != NULL;
	}
	return false;
}

size_t zp_verify_slice_size(const struct zonepub *zp)
{
	uint64_t ticks = (uint64_t)zp->params.device_refresh * 1000u / zp->o.tick_ms;
	size_t names = zone_names(zp->served);
	size_t n = ticks > 0 ? (size_t)((names + ticks - 1) / ticks) : names;

	return n < 64 ? 64 : n;
}

bool zp_pipelined(int kind)
{
	return kind == ZP_JOB_GROUP || kind == ZP_JOB_RESIGN;
}

/* Whether a job of @p kind may start now, given the versions pending. */
static bool may_start(const struct zonepub *zp, int kind)
{
	if (zp->n_inflight == 0)
		return true;
	if (!zp_pipelined(kind))
		return false;
	for (const struct zp_job *w = zp->if_head; w; w = w->inext)
		if (!zp_pipelined(w->kind))
			return false;
	return true;
}

/* A group: the queued requests (at most group_max) and due expiry removals. */
static int group_fill(struct zonepub *zp, struct zp_job *job)
{
	size_t n = 0, max = zp->o.expire_budget;

	while (zp->q_head && job->nreqs < zp->o.group_max) {
		struct zonepub_req *rq = zp->q_head;
		zp->q_head = rq->next;
		if (zp->q_head == NULL)
			zp->q_tail = NULL;
		zp->q_len--;
		rq->next = NULL;
		if (job->reqs == NULL) {
			job->reqs = rq;
		} else {
			struct zonepub_req *t = job->reqs;
			while (t->next)
				t = t->next;
			t->next = rq;
		}
		job->nreqs++;
	}
	while (n < zp->nheap && n < max && zp->heap[0].not_after <= job->now) {
		if (job->expired == NULL) {
			job->expired = calloc(max, sizeof(*job->expired));
			job->expired_ok = calloc(max, sizeof(*job->expired_ok));
			if (job->expired == NULL || job->expired_ok == NULL)
				return ZONEPUB_ENOMEM;
		}
		job->expired[n++] = zp->heap[0];
		zp_heap_pop(zp);
	}
	job->nexpired = n;
	zp->apex_wanted = false;
	return 0;
}

static void pump(struct zonepub *zp)
{
	int64_t now = zp_now(zp);
	struct zp_job *job = NULL;
	int kind = -1;

	if (zp->job != NULL || (zp->state != ZP_STARTED && zp->state != ZP_BROKEN))
		return;
	if (zp->state == ZP_BROKEN) {
		/* Nothing may change any more: the daemon is going down. */
		while (zp->q_head) {
			struct zonepub_req *rq = zp->q_head;
			zp->q_head = rq->next;
			zp->q_len--;
			rq->done(rq, ZONEPUB_EFATAL, zone_serial(zp->served));
		}
		zp->q_tail = NULL;
		return;
	}
	if (zp->rebuild_needed) {
		/* The versions still pending fail or commit first: a rebuild
		 * copies the served zone, which has every committed one. */
		if (zp->n_inflight > 0)
			return;
		kind = ZP_JOB_REBUILD;
	} else {
		for (int k = 1; k <= ZP_JOB_KINDS; k++) {
			int c = (zp->last_kind + k) % ZP_JOB_KINDS;
			/* The zone file has a thread of its own (zp_file_kick()). */
			if (c == ZP_JOB_FILE)
				continue;
			if (zp_kind_ready(zp, c, now) && may_start(zp, c)) {
				kind = c;
				break;
			}
		}
	}
	/* Only an otherwise idle zone thread verifies: nothing else is ready,
	 * and no version waits for its commit (the working zone is then the
	 * served one, which the repair of a failure relies on). */
	if (kind < 0 && zp->verify_wanted && zp->n_inflight == 0 && !zp->rebuild_needed &&
	    zp->state == ZP_STARTED)
		kind = ZP_JOB_VERIFY;
	if (kind < 0)
		return;
	if ((job = job_new(zp, kind, now)) == NULL) {
		zp_fail(zp, ZONEPUB_ENOMEM, "job");
		return;
	}
	if (kind < ZP_JOB_KINDS)
		zp->last_kind = kind;
	switch (kind) {
	case ZP_JOB_GROUP:
		if (group_fill(zp, job) != 0) {
			zp_fail(zp, ZONEPUB_ENOMEM, "group");
			zp->job = job;
			job->zerr = ZONE_ENOMEM;
			/* Let the normal path hand the requests their error. */
			uv_mutex_lock(&zp->mu);
			zp->t_finished = job;
			uv_mutex_unlock(&zp->mu);
			uv_async_send(&zp->wake);
			return;
		}
		break;
	case ZP_JOB_RESIGN:
		zp->resign_wanted = false;
		break;
	case ZP_JOB_VERIFY:
		zp->verify_wanted = false;
		/* A tick's names go in small slices, each one job, so that a
		 * group arriving meanwhile waits for at most one small slice
		 * (2 names: about 4 ECDSA verifications, ~0.4 ms) instead of
		 * the whole tick's share (~190 verifications at 1M names). */
		job->vmax = zp->verify_quota < ZP_VERIFY_SLICE_MAX && zp->verify_quota > 0
				    ? zp->verify_quota : ZP_VERIFY_SLICE_MAX;
		job->vfrom_apex = zp->verify_keylen == 0;
		break;
	case ZP_JOB_BULK:
		job->bulk = zp->bulk_head;
		zp->bulk_head = job->bulk->next;
		if (zp->bulk_head == NULL)
			zp->bulk_tail = NULL;
		job->bulk->next = NULL;
		break;
	}
	/* Stage trace: when the job went to the zone thread. */
	if (zp->commit && commit_trace_on(zp->commit))
		job->item.trace[COMMIT_T_OWNER0] = commit_now_ns();
	zp_job_run(zp, job);
}

void zp_pump_cb(uv_idle_t *h)
{
	struct zonepub *zp = h->data;

	uv_idle_stop(h);
	zp->pump_active = false;
	pump(zp);
}

void zp_pump_soon(struct zonepub *zp)
{
	if (zp->pump_active || zp->job != NULL || zp->handles_open < 3)
		return;
	zp->pump_active = true;
	uv_idle_start(&zp->pump, zp_pump_cb);
}

