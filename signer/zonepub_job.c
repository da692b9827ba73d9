/*
 * A job's way through the pipeline: the zone thread makes the version on
 * the working zone (asking the loop for signatures through the sign bridge),
 * the writer thread commits it (zonepub_store.c), and the loop replays it on
 * the served zone and publishes it.
 *
 * The zone library signs through a synchronous callback, while the daemon's
 * signer (the HSM process behind hsmlink) answers on the loop. The zone
 * thread therefore hands each batch to the loop through the wake async and
 * waits on a condition variable until the signer's answer arrives.
 */
#include "signer/zonepub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

void zp_job_free(struct zp_job *job)
{
	if (job == NULL)
		return;
	zone_diff_free(job->diff);
	free(job->wire);
	free(job->recs);
	free(job->expired);
	free(job->expired_ok);
	free(job);
}

static void data_hash(const uint8_t *data, size_t len, uint8_t out[8])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen < 8)
		memset(md, 0, 8);
	memcpy(out, md, 8);
}

/* ---- The sign bridge (zone thread side) ---- */

static int bridge_sign(void *ctx, struct zone_sigreq *reqs, size_t n)
{
	struct zp_job *job = ctx;
	struct zonepub *zp = job->zp;
	int status;

	if (n == 0)
		return 0;
	uv_mutex_lock(&zp->mu);
	zp->sign_reqs = reqs;
	zp->sign_n = n;
	zp->sign_state = ZP_SIGN_ASKED;
	uv_mutex_unlock(&zp->mu);
	uv_async_send(&zp->wake);
	uv_mutex_lock(&zp->mu);
	while (zp->sign_state != ZP_SIGN_DONE)
		uv_cond_wait(&zp->cv, &zp->mu);
	status = zp->sign_status;
	zp->sign_state = ZP_SIGN_IDLE;
	zp->sign_reqs = NULL;
	uv_mutex_unlock(&zp->mu);
	if (status != 0)
		return -1;
	/* Keep what the replay on the served zone needs. */
	if (job->nrecs + n > job->caprecs) {
		size_t cap = job->caprecs ? job->caprecs * 2 : 64;
		struct zp_sigrec *v;
		while (cap < job->nrecs + n)
			cap *= 2;
		if ((v = realloc(job->recs, cap * sizeof(*v))) == NULL)
			return -1;
		job->recs = v;
		job->caprecs = cap;
	}
	for (size_t i = 0; i < n; i++) {
		struct zp_sigrec *rec = &job->recs[job->nrecs++];
		data_hash(reqs[i].data, reqs[i].len, rec->hash);
		memcpy(rec->sig, reqs[i].sig, 64);
		rec->tag = reqs[i].key_tag;
		rec->role = (uint8_t)reqs[i].role;
	}
	return 0;
}

/* Loop: the signer answered. */
static void bridge_signed(void *arg, int status)
{
	struct zonepub *zp = arg;

	uv_mutex_lock(&zp->mu);
	zp->sign_status = status;
	zp->sign_state = ZP_SIGN_DONE;
	uv_cond_broadcast(&zp->cv);
	uv_mutex_unlock(&zp->mu);
}

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
		data_hash(reqs[i].data, reqs[i].len, h);
		if (memcmp(h, rec->hash, 8) != 0 || rec->tag != reqs[i].key_tag ||
		    rec->role != (uint8_t)reqs[i].role)
			return -1;
		memcpy(reqs[i].sig, rec->sig, 64);
	}
	rp->pos += n;
	return 0;
}

/* ---- Groups ---- */

static int apply_op(struct zone_change *c, const struct zonepub_op *op)
{
	switch (op->kind) {
	case ZONEPUB_OP_DEVICE_ADD:
		return zone_change_device_add(c, &op->dev);
	case ZONEPUB_OP_DEVICE_REMOVE:
		return zone_change_device_remove(c, op->dev.id, op->dev.index);
	case ZONEPUB_OP_RR_ADD:
		return op->rr ? zone_change_rr_add(c, op->rr) : ZONE_EINVAL;
	case ZONEPUB_OP_RR_REMOVE:
		return op->rr ? zone_change_rr_remove(c, op->rr) : ZONE_EINVAL;
	}
	return ZONE_EINVAL;
}

/*
 * Build the group's change on @p z. A request whose first change is refused
 * had no effect and simply drops out. One refused after an earlier change of
 * the same request took effect (a REISSUE whose new name exists) cannot be
 * undone inside the change, so the change is started again without that
 * request. With @p replay every surviving change must apply as it did.
 */
static int zp_group_apply(struct zp_job *job, struct zone *z, bool replay, struct zone_change **out)
{
	struct zone_change *c = NULL;
	int r;

	*out = NULL;
again:
	zone_change_free(c);
	c = NULL;
	if ((r = zone_change_begin(z, &c)) != 0)
		return r;
	for (struct zonepub_req *rq = job->reqs; rq; rq = rq->next) {
		if (rq->status != 0)
			continue;
		if (rq->n_ops == 0 || rq->ops == NULL) {
			rq->status = ZONEPUB_EINVAL;
			continue;
		}
		for (size_t i = 0; i < rq->n_ops; i++) {
			int e = apply_op(c, &rq->ops[i]);
			if (e == 0)
				continue;
			if (replay || e == ZONE_ENOMEM) {
				zone_change_free(c);
				return replay ? ZONE_ESTATE : e;
			}
			rq->status = zonepub_err_from_zone(e);
			if (i > 0)
				goto again;
			break;
		}
	}
	for (size_t i = 0; i < job->nexpired; i++) {
		const struct zp_expiry *x = &job->expired[i];
		int e;
		if (replay && !job->expired_ok[i])
			continue;
		e = zone_change_device_remove(c, x->id, x->index);
		if (e == ZONE_ENOMEM || (replay && e != 0)) {
			zone_change_free(c);
			return replay ? ZONE_ESTATE : e;
		}
		/* Revoked meanwhile: nothing to remove, nothing to report. */
		if (!replay)
			job->expired_ok[i] = e == 0;
	}
	*out = c;
	return 0;
}

static bool group_has_change(const struct zp_job *job, const struct zone *z)
{
	if (zone_serial(z) == 0)
		return true;  /* the first version: the apex */
	for (const struct zonepub_req *rq = job->reqs; rq; rq = rq->next)
		if (rq->status == 0)
			return true;
	for (size_t i = 0; i < job->nexpired; i++)
		if (job->expired_ok[i])
			return true;
	return false;
}

static void run_group(struct zp_job *job)
{
	struct zone *z = job->zp->working;
	struct zone_change *c = NULL;
	int r = zp_group_apply(job, z, false, &c);

	if (r == 0 && group_has_change(job, z))
		r = zone_change_commit(c, job->now, bridge_sign, job, &job->diff);
	zone_change_free(c);
	job->zerr = r;
}

static void make_wire(struct zp_job *job)
{
	int r;

	if (job->diff == NULL)
		return;
	job->changed = true;
	job->serial_from = zone_diff_serial_from(job->diff);
	job->serial_to = zone_diff_serial_to(job->diff);
	job->nsigs = zone_diff_signatures(job->diff);
	r = zone_diff_to_wire(job->diff, &job->wire, &job->wirelen);
	if (r != 0) {
		/* The working zone moved on but cannot be journalled: treat it as
		 * a failed commit (the working zone is rebuilt). */
		job->zerr = r;
	}
}

/* Zone thread: a fresh working zone loaded from the served one. Reading the
 * served zone here is safe: nothing changes it while a job is in progress
 * and the listener only reads it. */
static int load_cb(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *blob,
		   size_t len)
{
	return zone_load_name(ctx, key, keylen, blob, len);
}

static int rebuild(struct zonepub *zp, int64_t now)
{
	struct zone *z = NULL;
	int r = zone_new(&zp->params, &z);

	if (r == 0 && zone_names(zp->served) > 0) {
		r = zone_export_foreach(zp->served, load_cb, z);
		if (r == 0)
			r = zone_load_finish(z, now, false);
	}
	if (r != 0) {
		zone_free(z);
		return r;
	}
	zone_free(zp->working);
	zp->working = z;
	return 0;
}

static void job_exec(struct zonepub *zp, struct zp_job *job)
{
	switch (job->kind) {
	case ZP_JOB_GROUP:
		run_group(job);
		make_wire(job);
		break;
	case ZP_JOB_RESIGN:
		job->zerr = zone_resign_due(zp->working, job->now, zp->o.resign_budget, bridge_sign,
					    job, &job->diff);
		make_wire(job);
		break;
	case ZP_JOB_BULK: {
		uint32_t before = zone_serial(zp->working);
		job->zerr = zone_bulk_import(zp->working, job->bulk->devs, job->bulk->n, job->now,
					     bridge_sign, job, job->bulk->batch);
		if (job->zerr == 0) {
			job->changed = true;
			job->serial_from = before;
			job->serial_to = zone_serial(zp->working);
			job->nsigs = job->nrecs;
		}
		break;
	}
	case ZP_JOB_FILE:
		job->serial_to = zone_serial(zp->working);
		job->zerr = zone_file_write(zp->working, zp->o.zone_file);
		break;
	case ZP_JOB_REBUILD:
		job->zerr = rebuild(zp, job->now);
		break;
	case ZP_JOB_KINDS:
		break;
	}
}

static void thread_main(void *arg)
{
	struct zonepub *zp = arg;

	for (;;) {
		struct zp_job *job;

		uv_mutex_lock(&zp->mu);
		while (zp->t_job == NULL && !zp->t_stop)
			uv_cond_wait(&zp->cv, &zp->mu);
		job = zp->t_job;
		uv_mutex_unlock(&zp->mu);
		if (job == NULL)
			break;
		job_exec(zp, job);
		uv_mutex_lock(&zp->mu);
		zp->t_job = NULL;
		zp->t_finished = job;
		uv_mutex_unlock(&zp->mu);
		uv_async_send(&zp->wake);
	}
}

int zp_thread_start(struct zonepub *zp)
{
	if (uv_thread_create(&zp->thread, thread_main, zp) != 0)
		return ZONEPUB_ENOMEM;
	zp->thread_started = true;
	return 0;
}

void zp_thread_stop(struct zonepub *zp)
{
	if (!zp->thread_started)
		return;
	uv_mutex_lock(&zp->mu);
	zp->t_stop = true;
	uv_cond_broadcast(&zp->cv);
	uv_mutex_unlock(&zp->mu);
	uv_thread_join(&zp->thread);
	zp->thread_started = false;
}

void zp_job_run(struct zonepub *zp, struct zp_job *job)
{
	zp->job = job;
	uv_mutex_lock(&zp->mu);
	zp->t_job = job;
	uv_cond_broadcast(&zp->cv);
	uv_mutex_unlock(&zp->mu);
}

/* ---- Loop side: after the zone thread ---- */

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

static void zone_phase_done(struct zonepub *zp, struct zp_job *job)
{
	int err = zonepub_err_from_zone(job->zerr);

	switch (job->kind) {
	case ZP_JOB_FILE:
		if (err == 0) {
			zp->s.zone_file_serial = job->serial_to;
			zp->s.zone_file_time = job->now;
		} else {
			zp_fail(zp, err, "zone file");
		}
		for (struct zp_filereq *f = job->filereqs, *next; f; f = next) {
			next = f->next;
			if (f->done)
				f->done(f->arg, err, job->serial_to);
			free(f);
		}
		job->filereqs = NULL;
		zp_job_over(zp);
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
		zp_job_over(zp);
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
		zp_job_over(zp);
		return;
	}
	if (!job->changed) {
		/* Nothing to publish (all refused, or nothing due). */
		zp_job_over(zp);
		return;
	}
	if (job->kind == ZP_JOB_BULK) {
		job->journal_keep = 0;
	} else {
		struct zp_journal empty = { 0 };
		const struct zp_journal *j = &zp->jr;
		if (j->n > 0 && j->v[j->n - 1].to != job->serial_from)
			j = &empty;
		job->journal_keep = zp_journal_keep(zp, j, job->now, 1, job->wirelen, job->now);
	}
	memset(&job->item, 0, sizeof(job->item));
	job->item.run = zp_store_run;
	job->item.undo = zp_store_undo;
	job->item.done = commit_done;
	commit_submit(zp->commit, &job->item);
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
			r = zone_change_commit(c, job->now, replay_sign, &rp, &d);
		zone_change_free(c);
		break;
	case ZP_JOB_RESIGN:
		r = zone_resign_due(zp->served, job->now, zp->o.resign_budget, replay_sign, &rp, &d);
		break;
	case ZP_JOB_BULK:
		r = zone_bulk_import(zp->served, job->bulk->devs, job->bulk->n, job->now, replay_sign,
				     &rp, job->bulk->batch);
		break;
	default:
		r = ZONE_ESTATE;
		break;
	}
	zone_diff_free(d);
	if (r == 0 && (rp.pos != job->nrecs || zone_serial(zp->served) != job->serial_to))
		r = ZONE_ESTATE;
	return r;
}

static void publish(struct zonepub *zp, struct zp_job *job)
{
	uint32_t serial = job->serial_to;

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
	zp_log(zp, ZONEPUB_LOG_INFO, "serial %u published (%zu requests, %zu signatures)", serial,
	       job->nreqs, job->nsigs);
	if (zp->o.published)
		zp->o.published(zp->o.arg, serial);
	for (struct zonepub_req *rq = job->reqs, *next; rq; rq = next) {
		next = rq->next;
		rq->done(rq, 0, serial);
	}
	job->reqs = NULL;
	if (job->bulk) {
		job->bulk->done(job->bulk, 0, serial);
		job->bulk = NULL;
	}
}

static void commit_done(struct commit_item *it, int status)
{
	struct zp_job *job = (struct zp_job *)it;
	struct zonepub *zp = job->zp;
	int r;

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
		zp_job_over(zp);
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
		zp_job_over(zp);
		return;
	}
	publish(zp, job);
	zp_job_over(zp);
}

void zp_wake(uv_async_t *a)
{
	struct zonepub *zp = a->data;
	struct zone_sigreq *reqs = NULL;
	struct zp_job *finished;
	size_t n = 0;

	uv_mutex_lock(&zp->mu);
	if (zp->sign_state == ZP_SIGN_ASKED) {
		zp->sign_state = ZP_SIGN_SENT;
		reqs = zp->sign_reqs;
		n = zp->sign_n;
	}
	finished = zp->t_finished;
	zp->t_finished = NULL;
	uv_mutex_unlock(&zp->mu);
	if (reqs != NULL) {
		int r = zp->o.signer.sign(zp->o.signer.ctx, reqs, n, bridge_signed, zp);
		if (r != 0)
			bridge_signed(zp, r);
	}
	if (finished != NULL)
		zone_phase_done(zp, finished);
}
