/*
 * zonepub's small parts: error texts, the deep copy of the zone parameters,
 * the journal copy the DNS listener reads, the expiry heap, and the zone
 * file writer's thread.
 */
#include "signer/zonepub_int.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zonesigner/zone_rows.h"

#include "signer/dns_err.h"
#include "zonesigner/zone_change.h"

const char *zonepub_strerror(int err)
{
	switch (err) {
	case ZONEPUB_OK: return "success";
	case ZONEPUB_ENOMEM: return "out of memory";
	case ZONEPUB_EINVAL: return "invalid argument or change";
	case ZONEPUB_EEXIST: return "already published";
	case ZONEPUB_ENOENT: return "nothing published there";
	case ZONEPUB_ERESERVED: return "reserved name or managed record type";
	case ZONEPUB_ESIGN: return "signing failed; the zone is unchanged";
	case ZONEPUB_ECHECK: return "the zone's self-check failed; the previous serial stays";
	case ZONEPUB_ESTORE: return "the store transaction failed and was rolled back";
	case ZONEPUB_EFATAL: return "state on disk unknown or diverged from memory";
	case ZONEPUB_ESTATE: return "not in a state that allows this";
	case ZONEPUB_ECLOSED: return "closed before the request ran";
	case ZONEPUB_EIO: return "the zone file could not be written";
	case ZONEPUB_EFORMAT: return "stored zone data is malformed or inconsistent";
	case ZONEPUB_EZONE: return "zone library error";
	case ZONEPUB_EWITHDRAWN: return "withdrawn before signing: a request's intent did not commit";
	}
	return "unknown zonepub error";
}

int zonepub_err_from_zone(int zone_err)
{
	switch (zone_err) {
	case ZONE_OK: return ZONEPUB_OK;
	case ZONE_ENOMEM: return ZONEPUB_ENOMEM;
	case ZONE_EINVAL: return ZONEPUB_EINVAL;
	case ZONE_EEXIST: return ZONEPUB_EEXIST;
	case ZONE_ENOENT: return ZONEPUB_ENOENT;
	case ZONE_ESIGN: return ZONEPUB_ESIGN;
	case ZONE_ECHECK: return ZONEPUB_ECHECK;
	case ZONE_EIO: return ZONEPUB_EIO;
	case ZONE_ERESERVED: return ZONEPUB_ERESERVED;
	case ZONE_ESTATE: return ZONEPUB_ESTATE;
	case ZONE_EFORMAT: return ZONEPUB_EFORMAT;
	}
	return ZONEPUB_EZONE;
}

/* ---- Parameters ---- */

/* Sizes a string copy in the arena (0 for NULL). */
static size_t str_room(const char *s)
{
	return s ? strlen(s) + 1 : 0;
}

static const char *str_put(char **at, const char *s)
{
	char *p = *at;

	if (s == NULL)
		return NULL;
	memcpy(p, s, strlen(s) + 1);
	*at += strlen(s) + 1;
	return p;
}

/*
 * One allocation holds every string, the NS array and the CA certificate, so
 * that the copy outlives the daemon's configuration and policy objects (a
 * SIGHUP reload frees those).
 */
int zp_params_copy(const struct zone_params *p, struct zone_params *out, void **mem)
{
	size_t room = 0;
	char *at, **ns;
	void *m;

	room += p->n_ns * sizeof(char *);
	room += str_room(p->origin) + str_room(p->soa_mname) + str_room(p->soa_rname) +
		str_room(p->dance_prefix) + p->ca_len;
	for (size_t i = 0; i < p->n_ns; i++)
		room += str_room(p->ns[i]);
	if ((m = calloc(1, room ? room : 1)) == NULL)
		return ZONEPUB_ENOMEM;
	*out = *p;
	ns = m;
	at = (char *)m + p->n_ns * sizeof(char *);
	for (size_t i = 0; i < p->n_ns; i++)
		ns[i] = (char *)str_put(&at, p->ns[i]);
	out->ns = p->n_ns ? (const char *const *)ns : NULL;
	out->origin = str_put(&at, p->origin);
	out->soa_mname = str_put(&at, p->soa_mname);
	out->soa_rname = str_put(&at, p->soa_rname);
	out->dance_prefix = str_put(&at, p->dance_prefix);
	if (p->ca_der != NULL && p->ca_len > 0) {
		memcpy(at, p->ca_der, p->ca_len);
		out->ca_der = (const uint8_t *)at;
	} else {
		out->ca_der = NULL;
		out->ca_len = 0;
	}
	*mem = m;
	return 0;
}

/* ---- The journal the listener reads ---- */

void zp_journal_clear(struct zp_journal *j)
{
	for (size_t i = 0; i < j->n; i++)
		free(j->v[i].wire);
	j->n = 0;
	j->bytes = 0;
}

int zp_journal_add(struct zp_journal *j, uint32_t from, uint32_t to, int64_t when,
		   uint8_t *wire, size_t len)
{
	/* A diff that does not continue the chain makes the older ones useless:
	 * a secondary could not get from them to the current serial. */
	if (j->n > 0 && j->v[j->n - 1].to != from)
		zp_journal_clear(j);
	if (j->n == j->cap) {
		size_t cap = j->cap ? j->cap * 2 : 64;
		struct zp_jentry *v = realloc(j->v, cap * sizeof(*v));
		if (v == NULL) {
			free(wire);
			return ZONEPUB_ENOMEM;
		}
		j->v = v;
		j->cap = cap;
	}
	j->v[j->n].from = from;
	j->v[j->n].to = to;
	j->v[j->n].when = when;
	j->v[j->n].wire = wire;
	j->v[j->n].len = len;
	j->n++;
	j->bytes += len;
	return 0;
}

size_t zp_journal_keep(const struct zonepub *zp, const struct zp_journal *j, int64_t now,
		       size_t extra_entries, size_t extra_bytes, int64_t extra_when)
{
	size_t n = j->n + extra_entries, bytes = j->bytes + extra_bytes, drop = 0;

	/* Drop from the oldest while a bound is exceeded. The new entry (if
	 * any) is the newest and is dropped last. */
	while (drop < n) {
		const struct zp_jentry *e = drop < j->n ? &j->v[drop] : NULL;
		int64_t when = e ? e->when : extra_when;
		size_t len = e ? e->len : extra_bytes;

		if (n - drop <= zp->o.journal_max_diffs && bytes <= zp->o.journal_max_bytes &&
		    now - when <= (int64_t)zp->o.journal_max_age)
			break;
		bytes -= len;
		drop++;
	}
	return n - drop;
}

void zp_journal_trim(struct zp_journal *j, size_t keep)
{
	size_t drop;

	if (keep >= j->n)
		return;
	drop = j->n - keep;
	for (size_t i = 0; i < drop; i++) {
		j->bytes -= j->v[i].len;
		free(j->v[i].wire);
	}
	memmove(j->v, j->v + drop, keep * sizeof(*j->v));
	j->n = keep;
}

/* The listener asks for the diff that starts at @p from. Serials only grow
 * along the chain, so a binary search would do; the chain is short enough
 * (bounded by journal_max_diffs) for a scan from the newest end. */
static int journal_diff_from(void *ctx, uint32_t from, struct zone_diff **out)
{
	const struct zonepub *zp = ctx;
	const struct zp_journal *j = &zp->jr;
	int zr;

	*out = NULL;
	for (size_t i = j->n; i-- > 0;) {
		if (j->v[i].from != from)
			continue;
		zr = zone_diff_from_wire(j->v[i].wire, j->v[i].len, out);
		if (zr == ZONE_ENOMEM)
			return DNS_ENOMEM;
		return zr == 0 ? 0 : DNS_EFORMAT;
	}
	return DNS_ENOENT;
}

struct dns_journal zp_journal_ops(struct zonepub *zp)
{
	struct dns_journal j = { journal_diff_from, zp };

	return j;
}

/* ---- Expiry heap (min-heap on not_after) ---- */

static void heap_swap(struct zp_expiry *a, struct zp_expiry *b)
{
	struct zp_expiry t = *a;

	*a = *b;
	*b = t;
}

int zp_heap_push(struct zonepub *zp, const struct zp_expiry *e)
{
	size_t i;

	if (zp->nheap == zp->capheap) {
		size_t cap = zp->capheap ? zp->capheap * 2 : 64;
		struct zp_expiry *h = realloc(zp->heap, cap * sizeof(*h));
		if (h == NULL)
			return ZONEPUB_ENOMEM;
		zp->heap = h;
		zp->capheap = cap;
	}
	i = zp->nheap++;
	zp->heap[i] = *e;
	while (i > 0 && zp->heap[(i - 1) / 2].not_after > zp->heap[i].not_after) {
		heap_swap(&zp->heap[(i - 1) / 2], &zp->heap[i]);
		i = (i - 1) / 2;
	}
	return 0;
}

const struct zp_expiry *zp_heap_top(const struct zonepub *zp)
{
	return zp->nheap ? &zp->heap[0] : NULL;
}

void zp_heap_pop(struct zonepub *zp)
{
	size_t i = 0;

	if (zp->nheap == 0)
		return;
	zp->heap[0] = zp->heap[--zp->nheap];
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		if (l < zp->nheap && zp->heap[l].not_after < zp->heap[m].not_after)
			m = l;
		if (r < zp->nheap && zp->heap[r].not_after < zp->heap[m].not_after)
			m = r;
		if (m == i)
			break;
		heap_swap(&zp->heap[i], &zp->heap[m]);
		i = m;
	}
}

/* ---- The zone file writer ---- */

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
