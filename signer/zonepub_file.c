/*
 * zonepub's zone file writer: a thread of its own that writes the file from
 * the store, and the loop's side of it (hand-off, coalescing, answers).
 */
#include "signer/zonepub_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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

/*
 * The file thread gives way to the daemon's other threads. A write at
 * 1,000,000 devices keeps one of the machine's two cores busy for 7-10 s;
 * at the default priority the loop, the zone thread, the writer and the HSM
 * process wait for time slices behind it, and a revocation crosses those
 * threads several times before its durable reply. At nice 19 (the lowest CPU
 * weight) they run as soon as they wake: with writes back to back and
 * REVOKE at 100/s, the loop thread's run-queue wait fell from 5.4 s to
 * 3.6-3.9 s over 40 s (schedstat), the file thread's rose from 4 to 7-9 s.
 * (The idle I/O class was tried too and bought nothing measurable: the
 * commits wait for the file system's journal and the device's cache flush,
 * not for the I/O scheduler.) Only this thread changes (Linux keeps the nice
 * value per thread): the caller's own thread id. Setting it again on each
 * write is cheap, and a failure costs only latency, so it is reported,
 * never fatal.
 */
#define ZP_FILE_NICE 19

static int file_thread_lower(void)
{
	if (setpriority(PRIO_PROCESS, (id_t)gettid(), ZP_FILE_NICE) != 0)
		return errno;
	return 0;
}

/*
 * The version a write replaces is freed a slice at a time. Renaming the new
 * file over it unlinks it, and the file system would free all its blocks at
 * once (at 1,000,000 devices 640 MB): ext4 then discards them in its journal
 * commit (the `discard` mount option), and every commit fsync of the daemon
 * that lands meanwhile waited for it, 100-220 ms, one stall per zone file.
 * So the writer holds the old file open across the rename, which keeps its
 * blocks, and then shrinks the unlinked inode by ZP_FILE_FREE_STEP at a time,
 * each step made durable (its own journal commit, its own discard) and
 * followed by a pause, before it lets go. Only an inode that no name refers
 * to any more is shrunk: when the rename did not happen the old file is
 * still the zone file, and it is only closed. Nor is one that anybody else
 * still has open (an auditor reading the previous version reads it whole):
 * a write lease is granted only when no other descriptor of the file is
 * open anywhere. It is dropped at once (a lease break would signal the
 * daemon); once unlinked, the inode can be opened again only through this
 * process's /proc entries.
 */
#define ZP_FILE_FREE_STEP (8 << 20)
#define ZP_FILE_FREE_PAUSE_NS 10000000L

/* The zone file being replaced, opened before the rename; -1 if none. */
static int file_old_hold(const char *path)
{
	return open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
}

/* Let go of @p fd from file_old_hold(), shrinking it first if it is
 * unlinked and nobody else has it open. */
static void file_old_release(struct zonepub *zp, int fd)
{
	const struct timespec pause = { 0, ZP_FILE_FREE_PAUSE_NS };
	struct stat sb;
	off_t size;

	if (fd < 0)
		return;
	if (fstat(fd, &sb) != 0 || sb.st_nlink != 0 || !S_ISREG(sb.st_mode) ||
	    fcntl(fd, F_SETLEASE, F_WRLCK) != 0) {
		close(fd);
		return;
	}
	(void)fcntl(fd, F_SETLEASE, F_UNLCK);
	/* A failed step only means the rest is freed at close, all at once. */
	for (size = sb.st_size; size > 0;) {
		off_t to = size > ZP_FILE_FREE_STEP ? size - ZP_FILE_FREE_STEP : 0;

		if (ftruncate(fd, to) != 0 || fdatasync(fd) != 0)
			break;
		atomic_fetch_add(&zp->file_freed, (uint64_t)(size - to));
		size = to;
		nanosleep(&pause, NULL);
	}
	close(fd);
}

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* File thread: the whole write of @p job. Returns the replaced version's
 * descriptor (file_old_release() it once the job is handed back) or -1. */
static int file_write(struct zonepub *zp, struct zp_job *job)
{
	struct file_ctx fc = { zp, job, NULL, 0 };
	unsigned char *v = NULL;
	size_t len = 0;
	double t0 = mono_ms();
	int r, old = -1;

	job->ferr = 0;
	job->fprio_err = file_thread_lower();
	if ((r = store_read_begin(zp->file_st)) != 0) {
		file_msg(job, ZONEPUB_ESTORE, "reading the store: %s", store_strerror(r));
		return -1;
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
	else {
		old = file_old_hold(zp->o.zone_file);
		if ((r = zone_rows_finish(fc.w)) != 0)
			file_msg(job, zonepub_err_from_zone(r), "%s: %s", zone_rows_error(fc.w),
				 r == ZONE_EIO ? strerror(errno) : zone_strerror(r));
	}
	job->fnames = zone_rows_count(fc.w);
	zone_rows_free(fc.w);
	job->fms = mono_ms() - t0;
	free(v);
	return old;
out:
	(void)store_read_end(zp->file_st);
	free(v);
	job->fms = mono_ms() - t0;
	return -1;
}

static void file_thread_main(void *arg)
{
	struct zonepub *zp = arg;

	for (;;) {
		struct zp_job *job;
		int old;

		uv_mutex_lock(&zp->mu);
		while (zp->f_job == NULL && !zp->f_stop)
			uv_cond_wait(&zp->file_cv, &zp->mu);
		job = zp->f_job;
		uv_mutex_unlock(&zp->mu);
		if (job == NULL)
			break;
		old = file_write(zp, job);
		uv_mutex_lock(&zp->mu);
		zp->f_job = NULL;
		zp->f_finished = job;
		uv_mutex_unlock(&zp->mu);
		uv_async_send(&zp->wake);
		/* The waiters have their answer; the next write waits for this. */
		file_old_release(zp, old);
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

	if (job->fprio_err != 0 && !zp->file_prio_warned) {
		zp->file_prio_warned = true;
		zp_log(zp, ZONEPUB_LOG_WARNING, "zone file thread: cannot lower its priority (%s); "
		       "its writes compete with the commits at full priority",
		       strerror(job->fprio_err));
	}
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
