/*
 * zonepub's zone file writer: a thread of its own that writes the file from
 * the store, and the loop's side of it (hand-off, coalescing, answers).
 */
#include "signer/zonepub_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zonesigner/zone_rows.h"

/*
 * The zone file used to be written on the zone thread from the working
 * zone, and every change waited behind it (4.2 s at 1,000,000 devices).
 * It is now written on a thread of its own from the store: one read
 * transaction on a read-only connection gives the serial committed at that
 * moment and every name row of it (the rows are the zone: the daemon
 * rebuilds its zones from them at start), streamed in key order, which is
 * canonical order, through zone_rows.h into the temporary file. The zone
 * thread and the commit pipeline go on meanwhile; the loop only hands the
 * job over and takes it back. One write at a time: requests that arrive
 * during a write wait for the next one, which takes all of them.
 */

struct file_ctx {
	struct zonepub *zp;
	struct zp_job *job;
	struct zone_rows *w;
	int zerr;  /* ZONE_E* of the row that stopped the walk */
};

static int file_row(void *arg, const void *key, size_t klen, const void *data, size_t dlen)
{
	struct file_ctx *fc = arg;
	const uint8_t *k = key;
	int r = zone_rows_add(fc->w, k + 1, klen - 1, data, dlen);

	if (r != 0) {
		fc->zerr = r;
		return 1;
	}
	/* Tests hold the writer here, mid-file, inside its read transaction. */
	if (zone_rows_count(fc->w) == 1 && fc->zp->o.file_hook != NULL)
		fc->zp->o.file_hook(fc->zp->o.file_hook_arg, fc->job->serial_to);
	return 0;
}

static void file_msg(struct zp_job *job, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void file_msg(struct zp_job *job, int err, const char *fmt, ...)
{
	va_list ap;

	job->ferr = err;
	free(job->fmsg);
	job->fmsg = NULL;
	va_start(ap, fmt);
	if (vasprintf(&job->fmsg, fmt, ap) < 0)
		job->fmsg = NULL;
	va_end(ap);
}

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* File thread: the whole write of @p job. */
static void file_write(struct zonepub *zp, struct zp_job *job)
{
	struct file_ctx fc = { zp, job, NULL, 0 };
	unsigned char *v = NULL;
	size_t len = 0;
	double t0 = mono_ms();
	int r;

	job->ferr = 0;
	if ((r = store_read_begin(zp->file_st)) != 0) {
		file_msg(job, ZONEPUB_ESTORE, "reading the store: %s", store_strerror(r));
		return;
	}
	r = store_zone_meta_get(zp->file_st, ZP_META_SERIAL, &v, &len);
	if (r != 0 || len != 4) {
		file_msg(job, ZONEPUB_ESTORE, "reading the committed serial: %s",
			 r ? store_strerror(r) : "malformed");
		goto out;
	}
	job->serial_to = ((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) |
			 ((uint32_t)v[2] << 8) | v[3];
	if ((r = zone_rows_open(zp->file_shape, zp->o.zone_file, &fc.w)) != 0) {
		file_msg(job, zonepub_err_from_zone(r), "cannot create a temporary file next to %s: %s",
			 zp->o.zone_file, r == ZONE_EIO ? strerror(errno) : "out of memory");
		goto out;
	}
	r = store_zone_foreach_prefix(zp->file_st, (const uint8_t[]){ ZP_ROW_NAME }, 1, file_row,
				      &fc);
	/* The snapshot is not needed for the fsync and the rename. */
	(void)store_read_end(zp->file_st);
	if (fc.zerr != 0)
		file_msg(job, zonepub_err_from_zone(fc.zerr), "%s", zone_rows_error(fc.w));
	else if (r != 0)
		file_msg(job, ZONEPUB_ESTORE, "reading the zone's rows: %s", store_strerror(r));
	else if (zone_rows_serial(fc.w) != job->serial_to)
		file_msg(job, ZONEPUB_EFORMAT, "the apex row has serial %u, the store says %u",
			 zone_rows_serial(fc.w), job->serial_to);
	else if ((r = zone_rows_finish(fc.w)) != 0)
		file_msg(job, zonepub_err_from_zone(r), "%s: %s", zone_rows_error(fc.w),
			 r == ZONE_EIO ? strerror(errno) : zone_strerror(r));
	job->fnames = zone_rows_count(fc.w);
	zone_rows_free(fc.w);
	free(v);
	job->fms = mono_ms() - t0;
	return;
out:
	(void)store_read_end(zp->file_st);
	free(v);
	job->fms = mono_ms() - t0;
}

static void file_thread_main(void *arg)
{
	struct zonepub *zp = arg;

	for (;;) {
		struct zp_job *job;

		uv_mutex_lock(&zp->mu);
		while (zp->f_job == NULL && !zp->f_stop)
			uv_cond_wait(&zp->file_cv, &zp->mu);
		job = zp->f_job;
		uv_mutex_unlock(&zp->mu);
		if (job == NULL)
			break;
		file_write(zp, job);
		uv_mutex_lock(&zp->mu);
		zp->f_job = NULL;
		zp->f_finished = job;
		uv_mutex_unlock(&zp->mu);
		uv_async_send(&zp->wake);
	}
}

int zp_file_thread_start(struct zonepub *zp)
{
	if (zp->o.zone_file == NULL)
		return 0;
	if (uv_thread_create(&zp->file_thread, file_thread_main, zp) != 0)
		return ZONEPUB_ENOMEM;
	zp->file_thread_started = true;
	return 0;
}

void zp_file_thread_stop(struct zonepub *zp)
{
	if (!zp->file_thread_started)
		return;
	uv_mutex_lock(&zp->mu);
	zp->f_stop = true;
	uv_cond_broadcast(&zp->file_cv);
	uv_mutex_unlock(&zp->mu);
	uv_thread_join(&zp->file_thread);
	zp->file_thread_started = false;
}

/* Hand a write to the file thread with the requests queued until now. */
static void file_start(struct zonepub *zp)
{
	struct zp_job *job = calloc(1, sizeof(*job));

	if (job == NULL) {
		zp_fail(zp, ZONEPUB_ENOMEM, "zone file");
		return;
	}
	job->zp = zp;
	job->kind = ZP_JOB_FILE;
	job->now = zp_now(zp);
	job->filereqs = zp->file_head;
	zp->file_head = zp->file_tail = NULL;
	zp->file_due = false;
	zp->file_job = job;
	uv_mutex_lock(&zp->mu);
	zp->f_job = job;
	uv_cond_broadcast(&zp->file_cv);
	uv_mutex_unlock(&zp->mu);
}

/* Answer every waiting request with @p err. */
static void file_answer(struct zp_filereq *f, int err, uint32_t serial)
{
	while (f != NULL) {
		struct zp_filereq *next = f->next;
		if (f->done)
			f->done(f->arg, err, serial);
		free(f);
		f = next;
	}
}

void zp_file_kick(struct zonepub *zp)
{
	if (zp->file_job != NULL || zp->state != ZP_STARTED ||
	    !zp_kind_ready(zp, ZP_JOB_FILE, zp_now(zp)))
		return;
	if (zp->file_st == NULL || !zp->file_thread_started) {
		/* A store in memory has no second connection to read from. */
		struct zp_filereq *f = zp->file_head;
		zp->file_head = zp->file_tail = NULL;
		zp->file_due = false;
		zp_fail_detail(zp, ZONEPUB_ESTATE, "zone file",
			       "no reader connection to the store (a store in memory?)");
		file_answer(f, ZONEPUB_ESTATE, 0);
		return;
	}
	file_start(zp);
}

bool zp_file_final(struct zonepub *zp)
{
	uint32_t serial = zone_serial(zp->served);

	if (zp->o.zone_file == NULL || zp->file_st == NULL || !zp->file_thread_started ||
	    serial == 0 || serial == zp->s.zone_file_serial)
		return false;
	file_start(zp);
	return zp->file_job != NULL;
}

void zp_file_done(struct zonepub *zp, struct zp_job *job)
{
	int err = job->ferr;

	if (err == 0) {
		zp->s.zone_file_serial = job->serial_to;
		zp->s.zone_file_time = job->now;
		zp_log(zp, ZONEPUB_LOG_INFO, "zone file written at serial %u: %zu names in %.0f ms "
		       "(file thread)", job->serial_to, job->fnames, job->fms);
	} else {
		zp_fail_detail(zp, err, "zone file not written",
			       job->fmsg ? job->fmsg : zonepub_strerror(err));
	}
	/* The write counts as running while its waiters hear of it: one that
	 * closes zonepub from its callback (the daemon at shutdown) gets the
	 * close continued below, once. */
	file_answer(job->filereqs, err, job->serial_to);
	job->filereqs = NULL;
	zp->file_job = NULL;
	zp_job_free(job);
	if (zp->state == ZP_CLOSING)
		zp_close_continue(zp);
	else
		zp_file_kick(zp);
}
