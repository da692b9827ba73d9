/*
 * zonepub's life cycle: options, creation, submitting work, closing,
 * status. The scheduler and the choice of jobs are in zonepub_sched.c.
 */
#include "signer/zonepub_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int64_t zp_now(const struct zonepub *zp)
{
	return zp->o.now ? zp->o.now(zp->o.arg) : (int64_t)time(NULL);
}

void zp_log(struct zonepub *zp, int level, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (zp->o.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	zp->o.log(zp->o.arg, level, buf);
}

void zp_fail(struct zonepub *zp, int err, const char *what)
{
	zp_fail_detail(zp, err, what, NULL);
}

void zp_fail_detail(struct zonepub *zp, int err, const char *what, const char *detail)
{
	zp->s.failures++;
	zp->s.last_error = err;
	zp->s.last_error_time = zp_now(zp);
	if (detail != NULL && *detail != '\0') {
		snprintf(zp->s.last_error_msg, sizeof(zp->s.last_error_msg), "%s: %s", what,
			 detail);
		zp_log(zp, ZONEPUB_LOG_ERR, "zone %s: %s: %s (%s)", zone_origin(zp->served), what,
		       detail, zonepub_strerror(err));
		return;
	}
	snprintf(zp->s.last_error_msg, sizeof(zp->s.last_error_msg), "%s: %s", what,
		 zonepub_strerror(err));
	zp_log(zp, ZONEPUB_LOG_ERR, "zone %s: %s", zone_origin(zp->served),
	       zp->s.last_error_msg);
}

/* ---- Creating ---- */

static void set_defaults(struct zonepub_opts *o)
{
	if (o->group_max == 0)
		o->group_max = 256;
	if (o->resign_budget == 0)
		o->resign_budget = 10000;
	if (o->resign_interval == 0)
		o->resign_interval = 10;
	if (o->expire_budget == 0)
		o->expire_budget = 1000;
	if (o->tick_ms == 0)
		o->tick_ms = 1000;
	if (o->margin_grace == 0)
		o->margin_grace = 3 * o->resign_interval;
	if (o->journal_max_diffs == 0)
		o->journal_max_diffs = 10000;
	if (o->journal_max_bytes == 0)
		o->journal_max_bytes = 64u << 20;
	if (o->journal_max_age == 0)
		o->journal_max_age = 7 * 86400;
}

int zonepub_new(uv_loop_t *loop, const struct zonepub_opts *opts, struct zonepub **out)
{
	struct zonepub *zp = NULL;
	struct zone_params sp;
	int r = ZONEPUB_EINVAL;

	*out = NULL;
	if (loop == NULL || opts == NULL || opts->params == NULL || opts->signer.sign == NULL)
		return r;
	if ((zp = calloc(1, sizeof(*zp))) == NULL)
		return ZONEPUB_ENOMEM;
	zp->loop = loop;
	zp->o = *opts;
	zp->o.zone_file = NULL;
	set_defaults(&zp->o);
	r = ZONEPUB_ENOMEM;
	if (opts->zone_file && (zp->o.zone_file = strdup(opts->zone_file)) == NULL)
		goto fail;
	if (zp_params_copy(opts->params, &zp->params, &zp->params_mem) != 0)
		goto fail;
	zp->o.params = &zp->params;
	/* Fetched once: an implicit fetch (EVP_sha256()) costs more than the
	 * hash of an RRSIG's data itself, twice per signature. */
	if ((zp->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL)
		goto fail;
	if ((r = zone_new(&zp->params, &zp->working)) != 0)
		goto zfail;
	/* The served zone replays versions the working zone verified. */
	sp = zp->params;
	sp.verify = false;
	if ((r = zone_new(&sp, &zp->served)) != 0)
		goto zfail;
	/* The file writer's own zone: only its apex is read (zone_rows.h). */
	if (zp->o.zone_file && (r = zone_new(&zp->params, &zp->file_shape)) != 0)
		goto zfail;
	r = ZONEPUB_ENOMEM;
	if (uv_mutex_init(&zp->mu) != 0)
		goto fail;
	if (uv_cond_init(&zp->cv) != 0) {
		uv_mutex_destroy(&zp->mu);
		goto fail;
	}
	if (uv_cond_init(&zp->file_cv) != 0) {
		uv_cond_destroy(&zp->cv);
		uv_mutex_destroy(&zp->mu);
		goto fail;
	}
	if (zp_thread_start(zp) != 0 || zp_file_thread_start(zp) != 0 ||
	    uv_async_init(loop, &zp->wake, zp_wake) != 0) {
		zp_thread_stop(zp);
		zp_file_thread_stop(zp);
		uv_cond_destroy(&zp->file_cv);
		uv_cond_destroy(&zp->cv);
		uv_mutex_destroy(&zp->mu);
		goto fail;
	}
	zp->wake.data = zp;
	uv_idle_init(loop, &zp->pump);
	zp->pump.data = zp;
	uv_timer_init(loop, &zp->tick);
	zp->tick.data = zp;
	zp->handles_open = 3;
	zp->last_kind = ZP_JOB_KINDS - 1;
	*out = zp;
	return 0;
zfail:
	r = zonepub_err_from_zone(r);
fail:
	zone_free(zp->working);
	zone_free(zp->served);
	zone_free(zp->file_shape);
	EVP_MD_free(zp->sha256);
	free(zp->params_mem);
	free((char *)zp->o.zone_file);
	free(zp);
	return r;
}

int zonepub_start(struct zonepub *zp, commit_t *commit)
{
	if (zp->state != ZP_LOADED || commit == NULL)
		return ZONEPUB_ESTATE;
	zp->commit = commit;
	zp->state = ZP_STARTED;
	zp->apex_wanted = zone_serial(zp->served) == 0;
	zp->last_resign = zp_now(zp);
	zp->s.zone_file_time = zp->last_resign;
	uv_timer_start(&zp->tick, zp_tick_cb, zp->o.tick_ms, zp->o.tick_ms);
	zp_pump_soon(zp);
	return 0;
}

/* ---- Submitting ---- */

/* The served serial, or 0 while zonepub_open() loads the zones on the
 * writer thread (they are not the loop's to read then). */
static uint32_t served_serial(const struct zonepub *zp)
{
	return zp->loading ? 0 : zone_serial(zp->served);
}

void zonepub_submit(struct zonepub *zp, struct zonepub_req *rq)
{
	rq->status = 0;
	rq->next = NULL;
	if (zp->state == ZP_CLOSING || zp->state == ZP_CLOSED) {
		rq->done(rq, ZONEPUB_ECLOSED, served_serial(zp));
		return;
	}
	if (zp->q_tail)
		zp->q_tail->next = rq;
	else
		zp->q_head = rq;
	zp->q_tail = rq;
	zp->q_len++;
	zp_pump_soon(zp);
}

void zonepub_bulk_import(struct zonepub *zp, struct zonepub_bulk *b)
{
	b->next = NULL;
	if (zp->state == ZP_CLOSING || zp->state == ZP_CLOSED) {
		b->done(b, ZONEPUB_ECLOSED, served_serial(zp));
		return;
	}
	if (zp->bulk_tail)
		zp->bulk_tail->next = b;
	else
		zp->bulk_head = b;
	zp->bulk_tail = b;
	zp_pump_soon(zp);
}

int zonepub_zone_file_write(struct zonepub *zp, void (*done)(void *arg, int status,
							       uint32_t serial),
			    void *arg)
{
	struct zp_filereq *f;

	if (zp->o.zone_file == NULL)
		return ZONEPUB_EINVAL;
	if (zp->state != ZP_STARTED && zp->state != ZP_LOADED)
		return ZONEPUB_ESTATE;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		return ZONEPUB_ENOMEM;
	f->done = done;
	f->arg = arg;
	if (zp->file_tail)
		zp->file_tail->next = f;
	else
		zp->file_head = f;
	zp->file_tail = f;
	/* The file thread takes it now, or with the next write if one runs. */
	zp_file_kick(zp);
	return 0;
}

/* ---- Closing ---- */

static void handle_closed(uv_handle_t *h)
{
	struct zonepub *zp = h->data;

	if (--zp->handles_open == 0) {
		zp->state = ZP_CLOSED;
		if (zp->close_cb)
			zp->close_cb(zp->close_arg);
	}
}

static void finish_close(struct zonepub *zp)
{
	if (zp->finishing)
		return;
	zp->finishing = true;
	zp_thread_stop(zp);
	zp_file_thread_stop(zp);
	uv_close((uv_handle_t *)&zp->wake, handle_closed);
	uv_close((uv_handle_t *)&zp->pump, handle_closed);
	uv_close((uv_handle_t *)&zp->tick, handle_closed);
}

void zp_close_continue(struct zonepub *zp)
{
	if (zp->state != ZP_CLOSING || zp->job != NULL || zp->n_inflight != 0 || zp->loading ||
	    zp->file_job != NULL)
		return;
	/* Every version is committed and served now: the zone file gets the
	 * last one before the threads stop (the write's end comes back here). */
	if (!zp->file_final_done) {
		zp->file_final_done = true;
		if (zp_file_final(zp))
			return;
	}
	finish_close(zp);
}

void zp_job_over(struct zonepub *zp, struct zp_job *job)
{
	if (job == zp->job) {
		zp->job = NULL;
	} else {
		/* One that waited for its commit: commits finish in order, so it
		 * is the oldest, but the list is searched to be safe. */
		struct zp_job **pp = &zp->if_head, *prev = NULL;
		while (*pp && *pp != job) {
			prev = *pp;
			pp = &(*pp)->inext;
		}
		if (*pp == job) {
			*pp = job->inext;
			if (zp->if_tail == job)
				zp->if_tail = prev;
			zp->n_inflight--;
		}
	}
	zp_job_free(job);
	if (zp->state == ZP_CLOSING) {
		zp_close_continue(zp);
	} else {
		zp_pump_soon(zp);
		/* A write asked for before the first serial can run now. */
		zp_file_kick(zp);
	}
}

void zonepub_close(struct zonepub *zp, void (*cb)(void *arg), void *arg)
{
	uint32_t serial;

	if (zp == NULL || zp->state == ZP_CLOSING || zp->state == ZP_CLOSED)
		return;
	serial = served_serial(zp);
	zp->state = ZP_CLOSING;
	zp->close_cb = cb;
	zp->close_arg = arg;
	uv_timer_stop(&zp->tick);
	uv_idle_stop(&zp->pump);
	zp->pump_active = false;
	while (zp->q_head) {
		struct zonepub_req *rq = zp->q_head;
		zp->q_head = rq->next;
		rq->done(rq, ZONEPUB_ECLOSED, serial);
	}
	zp->q_tail = NULL;
	zp->q_len = 0;
	while (zp->bulk_head) {
		struct zonepub_bulk *b = zp->bulk_head;
		zp->bulk_head = b->next;
		b->done(b, ZONEPUB_ECLOSED, serial);
	}
	zp->bulk_tail = NULL;
	while (zp->file_head) {
		struct zp_filereq *f = zp->file_head;
		zp->file_head = f->next;
		if (f->done)
			f->done(f->arg, ZONEPUB_ECLOSED, 0);
		free(f);
	}
	zp->file_tail = NULL;
	zp_close_continue(zp);
}

void zonepub_free(struct zonepub *zp)
{
	if (zp == NULL)
		return;
	if (zp->handles_open > 0) {
		/* Not closed: only the parts that need no loop can go. Callers
		 * must close first; this keeps a misuse from leaking silently. */
		return;
	}
	uv_cond_destroy(&zp->file_cv);
	uv_cond_destroy(&zp->cv);
	uv_mutex_destroy(&zp->mu);
	store_close(zp->file_st);
	zone_free(zp->file_shape);
	zone_free(zp->working);
	zone_free(zp->served);
	EVP_MD_free(zp->sha256);
	zp_journal_clear(&zp->jr);
	free(zp->jr.v);
	free(zp->heap);
	free(zp->params_mem);
	free((char *)zp->o.zone_file);
	free(zp);
}

/* ---- Reading ---- */

const struct zone *zonepub_zone(const struct zonepub *zp)
{
	return zp->served;
}

struct dns_journal zonepub_journal(struct zonepub *zp)
{
	return zp_journal_ops(zp);
}

bool zonepub_idle(const struct zonepub *zp)
{
	int64_t now = zp_now(zp);

	if (zp->file_job != NULL)
		return false;
	if (zp->state != ZP_STARTED)
		return zp->job == NULL && zp->n_inflight == 0 && !zp->loading;
	for (int k = 0; k < ZP_JOB_KINDS; k++)
		if (zp_kind_ready(zp, k, now))
			return false;
	/* A verification slice asked for by the last tick runs next. */
	if (zp->verify_wanted)
		return false;
	return zp->job == NULL && zp->n_inflight == 0 && !zp->rebuild_needed;
}

void zonepub_status_get(const struct zonepub *zp, struct zonepub_status *st)
{
	struct zone_status zs;
	int64_t now = zp_now(zp);

	*st = zp->s;
	st->queued = zp->q_len;
	st->zone_file_freed = atomic_load(&zp->file_freed);
	/* While zonepub_open() loads them, the zones belong to the writer thread. */
	if (zp->loading)
		return;
	zone_status_get(zp->served, now, &zs);
	st->serial = zs.serial;
	st->names = zs.names;
	st->bytes = zs.bytes;
	st->earliest_expiration = zs.earliest_expiration;
	st->next_due = zs.next_due;
	st->margin_failure = zs.names > 0 && zs.resign_overdue &&
			     now - zs.next_due > (int64_t)zp->o.margin_grace;
	st->expired = zs.names > 0 && zs.earliest_expiration <= now;
	st->queued = zp->q_len;
	st->journal_diffs = zp->jr.n;
	st->journal_bytes = zp->jr.bytes;
}
