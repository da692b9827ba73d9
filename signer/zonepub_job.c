/*
 * The zone thread: it makes each job's version on the working zone, asking
 * the loop for signatures through the sign bridge. What happens next (the
 * commit, the replay on the served zone, publication) is in
 * zonepub_publish.c.
 *
 * The zone library signs through a synchronous callback, while the daemon's
 * signer (the HSM process behind hsmlink) answers on the loop. The zone
 * thread therefore hands each batch to the loop through the wake async and
 * waits on a condition variable until the signer's answer arrives.
 */
#include "signer/zonepub_int.h"

#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "zonesigner/zone_change.h"

void zp_job_free(struct zp_job *job)
{
	if (job == NULL)
		return;
	for (size_t i = 0; i < job->nrows; i++) {
		free(job->rows[i].key);
		free(job->rows[i].blob);
	}
	free(job->rows);
	zone_diff_free(job->diff);
	free(job->wire);
	free(job->recs);
	free(job->expired);
	free(job->expired_ok);
	free(job->vslice);
	free(job->fmsg);
	free(job);
}

void zp_data_hash(const EVP_MD *sha256, const uint8_t *data, size_t len, uint8_t out[8])
{
	uint8_t md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;

	if (EVP_Digest(data, len, md, &mdlen, sha256, NULL) != 1 || mdlen < 8)
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
	job->t_woke = commit_now_ns();
	if (status == ZONEPUB_EWITHDRAWN)
		job->withdrawn = true;
	if (status != 0)
		return -1;
	/* A bulk import is adopted by the served zone (zp_bulk_adopt), not
	 * replayed: keeping its signatures for a replay would cost 76 bytes per
	 * signature, two per device, at the peak of the import. Without them
	 * the replay that an adoption failure would fall back to fails, and
	 * the zone goes broken until a restart reloads the committed version;
	 * an adoption cannot fail while bulk imports are never pipelined. */
	if (job->kind == ZP_JOB_BULK) {
		job->nbulk_sigs += n;
		return 0;
	}
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
		zp_data_hash(zp->sha256, reqs[i].data, reqs[i].len, rec->hash);
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
int zp_group_apply(struct zp_job *job, struct zone *z, bool replay, struct zone_change **out)
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

/* The zone_names rows of the names @p d changed, as the working zone has
 * them now (the writer stores them; a name gone is a row to delete). */
static int make_rows(struct zp_job *job, const struct zone *z, const struct zone_diff *d)
{
	size_t n = zone_diff_names(d);

	if (n == 0)
		return 0;
	if ((job->rows = calloc(n, sizeof(*job->rows))) == NULL)
		return ZONE_ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct zp_row *row = &job->rows[job->nrows];
		const uint8_t *key;
		size_t klen;
		int r;

		zone_diff_name(d, i, &key, &klen);
		if (klen + 1 > ZP_ROW_KEY_MAX)
			return ZONE_EINVAL;
		if ((row->key = malloc(klen + 1)) == NULL)
			return ZONE_ENOMEM;
		job->nrows++;
		row->key[0] = ZP_ROW_NAME;
		memcpy(row->key + 1, key, klen);
		row->klen = klen + 1;
		r = zone_export_name(z, key, klen, &row->blob, &row->blen);
		if (r == ZONE_ENOENT)
			row->blob = NULL;
		else if (r != 0)
			return r;
	}
	return 0;
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
	if (r == 0)
		r = make_rows(job, job->zp->working, job->diff);
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

/*
 * Hand the heap's free pages back to the system. glibc keeps one arena per
 * thread, and pages a thread freed stay resident in its arena where another
 * thread's allocations cannot use them: the import's records (loop) and the
 * bulk pass's arrays (zone thread) are freed just before the zone thread
 * builds a second copy of the zone, and without a trim the peak holds both.
 * It costs a walk over the free lists (milliseconds), once per rebuild.
 */
static void heap_trim(void)
{
#ifdef __GLIBC__
	malloc_trim(0);
#endif
}

static int rebuild(struct zonepub *zp, int64_t now)
{
	struct zone *z = NULL;
	int r;

	/* The old working copy goes first: a rebuild follows a bulk adoption
	 * (it holds the previous, small zone) or a failed version (it is
	 * useless), so two full copies plus this one never coexist. */
	zone_free(zp->working);
	zp->working = NULL;
	heap_trim();
	r = zone_new(&zp->params, &z);
	if (r == 0 && zone_names(zp->served) > 0) {
		r = zone_export_foreach(zp->served, load_cb, z);
		if (r == 0)
			r = zone_load_finish(z, now, false);
	}
	if (r != 0) {
		/* The zonepub is broken now (zonepub_publish.c); an empty zone
		 * keeps the working pointer valid for whatever still looks. */
		zone_free(z);
		z = NULL;
		if (zone_new(&zp->params, &z) == 0)
			zp->working = z;
		return r;
	}
	zp->working = z;
	return 0;
}

int zp_bulk_adopt(struct zonepub *zp, const struct zp_job *job)
{
	int r;

	/* The zone thread is idle (a bulk import is never pipelined, so no
	 * other version was started after it) and its zone is this version. */
	if (job->kind != ZP_JOB_BULK || zp->job != NULL || zp->n_inflight != 1 ||
	    zp->if_head != job || zone_serial(zp->working) != job->serial_to ||
	    zone_serial(zp->served) != job->serial_from)
		return ZONE_ESTATE;
	r = zone_swap_names(zp->served, zp->working);
	if (r == 0)
		zp->rebuild_needed = true;
	return r;
}

/*
 * Zone thread: one slice of the background verification on the working
 * zone, from the loop's cursor (stable while this job runs). Each failing
 * RRset is made due for re-signing here; the loop does the same on the
 * served zone so that the next re-signing replays identically.
 */
static void run_verify(struct zonepub *zp, struct zp_job *job)
{
	const struct zone_verify_slice *sl;

	if ((job->vslice = malloc(sizeof(*job->vslice))) == NULL) {
		job->zerr = ZONE_ENOMEM;
		return;
	}
	sl = job->vslice;
	job->zerr = zone_verify_slice(zp->working, zp->verify_keylen ? zp->verify_key : NULL,
				      zp->verify_keylen, job->vmax, job->now, job->vslice);
	for (size_t i = 0; job->zerr == 0 && i < sl->nfail; i++)
		job->vmark[i] = zone_verify_mark_due(zp->working, sl->fail[i].key,
						     sl->fail[i].keylen, sl->fail[i].type,
						     job->now);
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
			job->nsigs = job->nbulk_sigs;
		}
		break;
	}
	case ZP_JOB_REBUILD:
		job->zerr = rebuild(zp, job->now);
		break;
	case ZP_JOB_VERIFY:
		run_verify(zp, job);
		break;
	case ZP_JOB_FILE:  /* the file thread's (zonepub_aux.c) */
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
		job->t_built = commit_now_ns();
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

void zp_wake(uv_async_t *a)
{
	struct zonepub *zp = a->data;
	struct zone_sigreq *reqs = NULL;
	struct zp_job *finished, *file_finished;
	size_t n = 0;

	uv_mutex_lock(&zp->mu);
	if (zp->sign_state == ZP_SIGN_ASKED) {
		zp->sign_state = ZP_SIGN_SENT;
		reqs = zp->sign_reqs;
		n = zp->sign_n;
	}
	finished = zp->t_finished;
	zp->t_finished = NULL;
	file_finished = zp->f_finished;
	zp->f_finished = NULL;
	uv_mutex_unlock(&zp->mu);
	if (reqs != NULL) {
		int r = zp->o.signer.sign(zp->o.signer.ctx, reqs, n, bridge_signed, zp);
		if (r != 0)
			bridge_signed(zp, r);
	}
	if (finished != NULL)
		zp_phase_done(zp, finished);
	if (file_finished != NULL)
		zp_file_done(zp, file_finished);
}
