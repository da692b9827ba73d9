/*
 * A job's way after the zone thread (loop thread): refused requests are
 * answered, the version goes to the commit pipeline as one item
 * (zonepub_store.c writes it), and once committed it is replayed on the
 * served zone with the signatures already made, added to the listener's
 * journal and announced; a failure anywhere leaves the served zone as it was.
 */
#include "signer/zonepub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zonesigner/zone_change.h"

/* ---- Replay on the served zone (loop thread) ---- */

struct replay {
	const struct zp_job *job;
	size_t pos;
};

/* Hands back the signatures the working zone got, checking that each
 * request is the same RRSIG data as then (the version is deterministic in
 * the zone's state, the changes and the time). */
static int replay_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	struct replay *rp = ctx;

	if (rp->pos + n > rp->job->nrecs)
		return -1;
	for (size_t i = 0; i < n; i++) {
		const struct zp_sigrec *rec = &rp->job->recs[rp->pos + i];
		uint8_t h[8];
		zp_data_hash(rp->job->zp->sha256, reqs[i].data, reqs[i].len, h);
		if (memcmp(h, rec->hash, 8) != 0 || rec->tag != reqs[i].key_tag ||
		    rec->role != (uint8_t)reqs[i].role)
			return -1;
		memcpy(reqs[i].sig, rec->sig, 64);
	}
	rp->pos += n;
	return 0;
}

/* Every request still in the group gets @p err. */
static void fail_reqs(struct zonepub *zp, struct zp_job *job, int err)
{
	struct zonepub_req *rq = job->reqs;
	uint32_t serial = zone_serial(zp->served);

	job->reqs = NULL;
	while (rq) {
		struct zonepub_req *next = rq->next;
		if (rq->status == 0)
			rq->status = err;
		rq->done(rq, rq->status, serial);
		rq = next;
	}
}

/* Requests refused on their own leave the group now: they need no commit. */
static void finish_refused(struct zonepub *zp, struct zp_job *job)
{
	struct zonepub_req **pp = &job->reqs, *done = NULL, **dt = &done;
	uint32_t serial = zone_serial(zp->served);

	while (*pp) {
		struct zonepub_req *rq = *pp;
		if (rq->status != 0) {
			*pp = rq->next;
			rq->next = NULL;
			*dt = rq;
			dt = &rq->next;
		} else {
			pp = &rq->next;
		}
	}
	job->nreqs = 0;
	for (struct zonepub_req *rq = job->reqs; rq; rq = rq->next)
		job->nreqs++;
	while (done) {
		struct zonepub_req *next = done->next;
		done->done(done, done->status, serial);
		done = next;
	}
}

/* Expiry entries of a failed group go back on the heap for the next try. */
static void requeue_expired(struct zonepub *zp, struct zp_job *job)
{
	for (size_t i = 0; i < job->nexpired; i++)
		(void)zp_heap_push(zp, &job->expired[i]);
	job->nexpired = 0;
}

static void commit_done(struct commit_item *it, int status);

/*
 * A slice of the background verification is back. A failure is logged,
 * counted for STATUS, and repaired: the RRset was made due on the working
 * zone, and is now made due on the served zone too (both hold the same
 * version: the slice only runs when no version is pending), so the next
 * re-signing, asked for at once, renews its signature in a new serial. If
 * the two zones did not take the mark alike, the working zone is rebuilt
 * from the served one (which keeps the mark) before anything else. STATUS
 * keeps failing until a whole pass finds the zone clean.
 */
static void verify_done(struct zonepub *zp, struct zp_job *job)
{
	const struct zone_verify_slice *sl = job->vslice;
	size_t repaired = 0;

	if (job->zerr != 0 || sl == NULL) {
		/* No complete working zone yet (ESTATE), or no memory: the
		 * cursor stays and the next tick tries again. */
		zp_log(zp, ZONEPUB_LOG_DEBUG, "zone verification slice skipped: %s",
		       zonepub_strerror(zonepub_err_from_zone(job->zerr)));
		return;
	}
	if (job->vfrom_apex) {
		zp->s.verify_pass_started = job->now;
		zp->verify_pass_failures = 0;
	}
	zp->s.verify_names += sl->names;
	zp->s.verify_signatures += sl->sigs;
	if (sl->failures > 0) {
		zp->s.verify_failures += sl->failures;
		zp->verify_pass_failures += sl->failures;
		zp->s.verify_failing = true;
		/* Owner names are short in practice; a long one is cut. */
		snprintf(zp->s.verify_last_failure, sizeof(zp->s.verify_last_failure), "%.*s",
			 (int)sizeof(zp->s.verify_last_failure) - 1, sl->first_failure);
		zp->s.verify_last_failure_time = job->now;
		for (size_t i = 0; i < sl->nfail; i++) {
			int r = zone_verify_mark_due(zp->served, sl->fail[i].key, sl->fail[i].keylen,
						     sl->fail[i].type, job->now);
			if (r != job->vmark[i])
				zp->rebuild_needed = true;
			else if (r == 0)
				repaired++;
		}
		zp->s.verify_repairs += repaired;
		if (repaired > 0)
			zp->resign_wanted = true;
		zp_log(zp, ZONEPUB_LOG_ERR,
		       "zone %s: signature verification failed: %s (%zu RRset(s) in this slice, "
		       "%zu queued for re-signing)",
		       zone_origin(zp->served), sl->first_failure, sl->failures, repaired);
	}
	/* The rest of this tick's share, in further small slices. */
	zp->verify_quota -= sl->names < zp->verify_quota ? sl->names : zp->verify_quota;
	if (zp->verify_quota > 0 && !sl->wrapped)
		zp->verify_wanted = true;
	else
		zp->verify_quota = 0;
	if (sl->wrapped) {
		zp->verify_keylen = 0;
		zp->s.verify_passes++;
		if (zp->verify_pass_failures == 0)
			zp->s.verify_failing = false;
		zp_log(zp, ZONEPUB_LOG_DEBUG, "zone verification pass %llu done: %zu failure(s)",
		       (unsigned long long)zp->s.verify_passes, zp->verify_pass_failures);
	} else {
		memcpy(zp->verify_key, sl->next_key, sl->next_len);
		zp->verify_keylen = sl->next_len;
	}
}

void zp_phase_done(struct zonepub *zp, struct zp_job *job)
{
	int err = zonepub_err_from_zone(job->zerr);

	switch (job->kind) {
	case ZP_JOB_VERIFY:
		verify_done(zp, job);
		zp_job_over(zp, job);
		return;
	case ZP_JOB_REBUILD:
		if (err != 0) {
			/* Without a working zone that matches, nothing can go on. */
			zp_fail(zp, ZONEPUB_EFATAL, "working zone rebuild");
			zp->state = zp->state == ZP_CLOSING ? ZP_CLOSING : ZP_BROKEN;
			if (zp->o.fatal)
				zp->o.fatal(zp->o.arg, ZONEPUB_EFATAL);
		} else {
			zp->rebuild_needed = false;
		}
		zp_job_over(zp, job);
		return;
	default:
		break;
	}
	if (job->kind == ZP_JOB_GROUP)
		finish_refused(zp, job);
	if (err != 0 && job->changed) {
		/* The working zone has a version that cannot be committed. */
		zp->rebuild_needed = true;
	}
	if (err != 0 && job->withdrawn) {
		/* Not a failure: the signer would not sign for a request whose
		 * intent did not commit (the daemon's intent gate). Nothing
		 * changed; the requests hear why and may come again. */
		zp_log(zp, ZONEPUB_LOG_INFO, "zone %s: version withdrawn before signing",
		       zone_origin(zp->served));
		fail_reqs(zp, job, ZONEPUB_EWITHDRAWN);
		requeue_expired(zp, job);
		zp_job_over(zp, job);
		return;
	}
	if (err != 0) {
		zp_fail(zp, err, job->kind == ZP_JOB_RESIGN ? "re-signing"
			: job->kind == ZP_JOB_BULK ? "bulk import" : "zone change");
		if (err == ZONEPUB_ECHECK)
			zp->s.check_failures++;
		fail_reqs(zp, job, err);
		requeue_expired(zp, job);
		if (job->bulk) {
			job->bulk->done(job->bulk, err, zone_serial(zp->served));
			job->bulk = NULL;
		}
		zp_job_over(zp, job);
		return;
	}
	if (!job->changed) {
		/* Nothing to publish (all refused, or nothing due). */
		zp_job_over(zp, job);
		return;
	}
	if (job->kind == ZP_JOB_BULK) {
		job->journal_keep = 0;
	} else {
		/* The journal as it will be when this version commits: the
		 * listener's copy, then the versions still waiting for their
		 * commit (newest), then this one. */
		struct zp_journal empty = { 0 };
		const struct zp_journal *j = &zp->jr;
		size_t extra = 1, bytes = job->wirelen;
		uint32_t first = job->serial_from;
		for (const struct zp_job *w = zp->if_head; w; w = w->inext) {
			extra++;
			bytes += w->wirelen;
		}
		if (zp->if_head)
			first = zp->if_head->serial_from;
		if (j->n > 0 && j->v[j->n - 1].to != first)
			j = &empty;
		job->journal_keep = zp_journal_keep(zp, j, job->now, extra, bytes, job->now);
	}
	{
		/* The stage trace survives the item's reset: handed to the zone
		 * thread (zonepub_sched.c), and back from it now. */
		uint64_t handed = job->item.trace[COMMIT_T_OWNER0];

		memset(&job->item, 0, sizeof(job->item));
		if (commit_trace_on(zp->commit)) {
			job->item.trace[COMMIT_T_OWNER0] = handed;
			job->item.trace[COMMIT_T_OWNER1] = commit_now_ns();
		}
	}
	job->item.run = zp_store_run;
	job->item.undo = zp_store_undo;
	job->item.done = commit_done;
	/* The version waits for its commit; the zone thread is free for the
	 * next one (zp_pipelined() says which kinds may overlap). */
	zp->job = NULL;
	job->inext = NULL;
	if (zp->if_tail)
		zp->if_tail->inext = job;
	else
		zp->if_head = job;
	zp->if_tail = job;
	zp->n_inflight++;
	commit_submit(zp->commit, &job->item);
	zp_pump_soon(zp);
}

/* Loop: apply the committed version to the served zone. */
static int replay(struct zonepub *zp, struct zp_job *job)
{
	struct replay rp = { job, 0 };
	struct zone_diff *d = NULL;
	struct zone_change *c = NULL;
	int r;

	switch (job->kind) {
	case ZP_JOB_GROUP:
		r = zp_group_apply(job, zp->served, true, &c);
		if (r == 0)
			r = zone_change_commit(c, job->now, replay_sign, &rp, NULL);
		zone_change_free(c);
		break;
	case ZP_JOB_RESIGN:
		r = zone_resign_due(zp->served, job->now, zp->o.resign_budget, replay_sign, &rp, &d);
		break;
	case ZP_JOB_BULK:
		/* The working zone is exactly the committed import: the served zone
		 * takes its names instead of building the whole zone a second time
		 * (the working zone is rebuilt from it before the next change). A
		 * bulk job keeps no signatures to replay (zonepub_job.c), so an
		 * adoption that cannot happen (a bulk import is never pipelined)
		 * leaves the served zone behind the store: the caller goes broken
		 * and a restart loads the committed version. */
		if (zp_bulk_adopt(zp, job) == 0)
			return zone_serial(zp->served) == job->serial_to ? 0 : ZONE_ESTATE;
		return ZONE_ESTATE;
	default:
		r = ZONE_ESTATE;
		break;
	}
	zone_diff_free(d);
	if (r == 0 && (rp.pos != job->nrecs || zone_serial(zp->served) != job->serial_to))
		r = ZONE_ESTATE;
	return r;
}

/*
 * Debug: one line per published version with the times of its stages (µs
 * since the job went to the zone thread), for finding where a request's
 * milliseconds go. Only while the commit pipeline traces.
 */
static void trace_log(struct zonepub *zp, const struct zp_job *job, uint64_t t_done,
		      uint64_t t_replayed, uint64_t t_replied, uint64_t t_notified)
{
	const uint64_t *t = job->item.trace;
	uint64_t t0 = t[COMMIT_T_OWNER0];

#define US(x) ((x) >= t0 && t0 ? (unsigned long long)(((x) - t0) / 1000) : 0ULL)
	zp_log(zp, ZONEPUB_LOG_DEBUG,
	       "trace zone serial=%u kind=%d reqs=%zu sigs=%zu t0=%llu woke=%llu built=%llu "
	       "back=%llu csub=%llu "
	       "crun=%llu ccommit=%llu cdurable=%llu cdone=%llu replayed=%llu replied=%llu "
	       "notified=%llu",
	       job->serial_to, (int)job->kind, job->nreqs, job->nsigs,
	       (unsigned long long)(t0 / 1000), US(job->t_woke), US(job->t_built),
	       US(t[COMMIT_T_OWNER1]), US(t[COMMIT_T_SUBMIT]),
	       US(t[COMMIT_T_RUN]), US(t[COMMIT_T_COMMIT]), US(t[COMMIT_T_DURABLE]), US(t_done),
	       US(t_replayed), US(t_replied), US(t_notified));
#undef US
}

static void publish(struct zonepub *zp, struct zp_job *job, uint64_t t_done,
		    uint64_t t_replayed)
{
	uint32_t serial = job->serial_to;
	uint64_t t_replied = 0;

	/* The listener's journal: the committed diff, pruned like the store's. */
	if (job->kind == ZP_JOB_BULK) {
		zp_journal_clear(&zp->jr);
	} else {
		if (zp_journal_add(&zp->jr, job->serial_from, job->serial_to, job->now, job->wire,
				   job->wirelen) != 0)
			zp_journal_clear(&zp->jr);  /* a gap: secondaries fall back to AXFR */
		job->wire = NULL;
		zp_journal_trim(&zp->jr, job->journal_keep);
	}
	/* Devices whose records go when their certificate expires. */
	for (struct zonepub_req *rq = job->reqs; rq; rq = rq->next) {
		for (size_t i = 0; i < rq->n_ops; i++) {
			const struct zonepub_op *op = &rq->ops[i];
			struct zp_expiry e;
			if (op->kind != ZONEPUB_OP_DEVICE_ADD || op->not_after == 0)
				continue;
			memset(&e, 0, sizeof(e));
			e.not_after = op->not_after;
			e.index = op->dev.index;
			snprintf(e.id, sizeof(e.id), "%s", op->dev.id);
			(void)zp_heap_push(zp, &e);
		}
		zp->s.changes++;
	}
	if (job->kind == ZP_JOB_BULK && job->bulk->not_after) {
		for (size_t i = 0; i < job->bulk->n; i++) {
			struct zp_expiry e;
			if (job->bulk->not_after[i] == 0)
				continue;
			memset(&e, 0, sizeof(e));
			e.not_after = job->bulk->not_after[i];
			e.index = job->bulk->devs[i].index;
			snprintf(e.id, sizeof(e.id), "%s", job->bulk->devs[i].id);
			(void)zp_heap_push(zp, &e);
		}
	}
	for (size_t i = 0; i < job->nexpired; i++)
		zp->s.expired_removed += job->expired_ok[i];
	zp->s.groups++;
	zp->s.signatures += job->nsigs;
	if (job->kind == ZP_JOB_RESIGN)
		zp->s.resigned++;
	/* The requests first: their replies wait for nothing else. The served
	 * zone and the listener's journal have the serial already, so a
	 * client that queries right after its reply sees it; the log line and
	 * NOTIFY (a packet to each secondary) follow at once. */
	for (struct zonepub_req *rq = job->reqs, *next; rq; rq = next) {
		next = rq->next;
		rq->done(rq, 0, serial);
	}
	job->reqs = NULL;
	if (job->bulk) {
		job->bulk->done(job->bulk, 0, serial);
		job->bulk = NULL;
	}
	if (t_done)
		t_replied = commit_now_ns();
	zp_log(zp, ZONEPUB_LOG_INFO, "serial %u published (%zu requests, %zu signatures)", serial,
	       job->nreqs, job->nsigs);
	if (zp->o.published)
		zp->o.published(zp->o.arg, serial);
	if (t_done)
		trace_log(zp, job, t_done, t_replayed, t_replied, commit_now_ns());
}

static void commit_done(struct commit_item *it, int status)
{
	struct zp_job *job = (struct zp_job *)it;
	struct zonepub *zp = job->zp;
	uint64_t t_done = 0, t_replayed = 0;
	int r;

	if (job->item.trace[COMMIT_T_OWNER0])
		t_done = commit_now_ns();

	if (status == COMMIT_OK && job->stale)
		status = COMMIT_ERR_STORAGE;  /* an earlier version did not commit */
	if (status != COMMIT_OK) {
		int err = status == COMMIT_ERR_FATAL ? ZONEPUB_EFATAL
			: status == COMMIT_ERR_CLOSED ? ZONEPUB_ECLOSED
			: status == COMMIT_ERR_NOMEM ? ZONEPUB_ENOMEM : ZONEPUB_ESTORE;
		zp_fail(zp, err, "commit");
		zp->rebuild_needed = true;
		fail_reqs(zp, job, err);
		requeue_expired(zp, job);
		if (job->bulk) {
			job->bulk->done(job->bulk, err, zone_serial(zp->served));
			job->bulk = NULL;
		}
		zp_job_over(zp, job);
		return;
	}
	if ((r = replay(zp, job)) != 0) {
		/* Committed but not servable: the served zone keeps the previous
		 * serial, and only a restart (reload from the store) can repair it. */
		zp_fail(zp, ZONEPUB_EFATAL, "replay on the served zone");
		if (zp->state != ZP_CLOSING)
			zp->state = ZP_BROKEN;
		fail_reqs(zp, job, ZONEPUB_EFATAL);
		if (job->bulk) {
			job->bulk->done(job->bulk, ZONEPUB_EFATAL, zone_serial(zp->served));
			job->bulk = NULL;
		}
		if (zp->o.fatal)
			zp->o.fatal(zp->o.arg, ZONEPUB_EFATAL);
		zp_job_over(zp, job);
		return;
	}
	if (t_done)
		t_replayed = commit_now_ns();
	publish(zp, job, t_done, t_replayed);
	zp_job_over(zp, job);
}

