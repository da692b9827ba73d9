/*
 * What the zone keeps in the store, written on the commit pipeline's writer
 * thread, and read back once at start.
 *
 * Tables (signer/store.h):
 *  - zone_names: one row per owner name, key = 'n' + the zone's canonical
 *    key, data = its stored form with signatures (zone_export_name); and
 *    'x' + "<id>.<index>" -> notAfter (8 bytes, big-endian) for devices
 *    whose records go when their certificate expires (see zonepub_int.h).
 *  - zone_meta: "serial" (4 bytes, big-endian) and "origin" (text).
 *  - ixfr_journal: the diff of each version (zone_diff_to_wire), trimmed to
 *    what the listener's copy keeps.
 *
 * A version's rows are exported on the zone thread with the version
 * (zp_job::rows), because the zone thread may already make the next version
 * while this one commits. Only a bulk import, which nothing overlaps, reads
 * the working zone here on the writer thread: the zone thread is idle then,
 * and the hand-over through the pipeline's mutexes orders the accesses.
 */
#include "signer/zonepub_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "zonesigner/zone_change.h"

static int commit_status_of(int store_err)
{
	if (store_err == 0)
		return COMMIT_OK;
	return store_error_is_fatal(store_err) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
}

int zp_expiry_key(const char *id, uint32_t index, uint8_t *key, size_t *keylen)
{
	char buf[STORE_DEVICE_MAX + 16];
	int n = snprintf(buf, sizeof(buf), "%s.%u", id, (unsigned)index);

	if (n < 0 || (size_t)n >= sizeof(buf))
		return ZONEPUB_EINVAL;
	key[0] = ZP_ROW_EXPIRY;
	/* Device ids are folded to lowercase as the zone folds them. */
	for (int i = 0; i < n; i++)
		key[1 + i] = (uint8_t)(buf[i] >= 'A' && buf[i] <= 'Z' ? buf[i] - 'A' + 'a' : buf[i]);
	*keylen = 1 + (size_t)n;
	return 0;
}

static int expiry_put(store_t *st, const char *id, uint32_t index, int64_t not_after)
{
	uint8_t key[ZP_ROW_KEY_MAX], val[8];
	size_t klen;
	uint64_t v = (uint64_t)not_after;

	if (zp_expiry_key(id, index, key, &klen) != 0)
		return STORE_EINVAL;
	for (int i = 0; i < 8; i++)
		val[i] = (uint8_t)(v >> (56 - 8 * i));
	return store_zone_put(st, key, klen, val, sizeof(val));
}

static int expiry_delete(store_t *st, const char *id, uint32_t index)
{
	uint8_t key[ZP_ROW_KEY_MAX];
	size_t klen;
	int r;

	if (zp_expiry_key(id, index, key, &klen) != 0)
		return STORE_EINVAL;
	r = store_zone_delete(st, key, klen);
	return r == STORE_ENOTFOUND ? 0 : r;
}

/* The row key of a name: 'n' + its zone key. */
static int name_row_key(const uint8_t *key, size_t klen, uint8_t *out, size_t *outlen)
{
	if (klen + 1 > ZP_ROW_KEY_MAX)
		return STORE_EINVAL;
	out[0] = ZP_ROW_NAME;
	memcpy(out + 1, key, klen);
	*outlen = klen + 1;
	return 0;
}

static int put_name(store_t *st, const uint8_t *key, size_t klen, const uint8_t *blob,
		    size_t blen)
{
	uint8_t rk[ZP_ROW_KEY_MAX];
	size_t rlen;
	int r = name_row_key(key, klen, rk, &rlen);

	return r ? r : store_zone_put(st, rk, rlen, blob, blen);
}

/* The rows of the names a version changed (made on the zone thread). */
static int put_rows(store_t *st, const struct zp_job *job)
{
	for (size_t i = 0; i < job->nrows; i++) {
		const struct zp_row *row = &job->rows[i];
		int r;

		if (row->blob == NULL) {
			r = store_zone_delete(st, row->key, row->klen);
			if (r == STORE_ENOTFOUND)
				r = 0;
		} else {
			r = store_zone_put(st, row->key, row->klen, row->blob, row->blen);
		}
		if (r != 0)
			return r;
	}
	return 0;
}

/* The serial the store holds (0 before the first version). */
static int stored_serial(store_t *st, uint32_t *serial)
{
	unsigned char *v = NULL;
	size_t len = 0;
	int r = store_zone_meta_get(st, ZP_META_SERIAL, &v, &len);

	*serial = 0;
	if (r == STORE_ENOTFOUND)
		return 0;
	if (r == 0 && len == 4)
		*serial = ((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) | ((uint32_t)v[2] << 8) |
			  v[3];
	else if (r == 0)
		r = STORE_EINVAL;
	free(v);
	return r;
}

static int put_all_cb(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *blob,
		      size_t len)
{
	return put_name(ctx, key, keylen, blob, len);
}

static int put_serial(store_t *st, uint32_t serial)
{
	uint8_t b[4] = { (uint8_t)(serial >> 24), (uint8_t)(serial >> 16), (uint8_t)(serial >> 8),
			 (uint8_t)serial };

	return store_zone_meta_set(st, ZP_META_SERIAL, b, sizeof(b));
}

/* Expiry rows of a group: added devices with a notAfter, removed devices. */
static int put_group_expiry(store_t *st, const struct zp_job *job)
{
	int r = 0;

	for (const struct zonepub_req *rq = job->reqs; r == 0 && rq; rq = rq->next) {
		if (rq->status != 0)
			continue;
		for (size_t i = 0; r == 0 && i < rq->n_ops; i++) {
			const struct zonepub_op *op = &rq->ops[i];
			if (op->kind == ZONEPUB_OP_DEVICE_ADD && op->not_after != 0)
				r = expiry_put(st, op->dev.id, op->dev.index, op->not_after);
			else if (op->kind == ZONEPUB_OP_DEVICE_REMOVE)
				r = expiry_delete(st, op->dev.id, op->dev.index);
		}
	}
	for (size_t i = 0; r == 0 && i < job->nexpired; i++)
		r = expiry_delete(st, job->expired[i].id, job->expired[i].index);
	return r;
}

int zp_store_run(struct commit_item *it, void *env)
{
	struct zp_job *job = (struct zp_job *)it;
	struct zonepub *zp = job->zp;
	store_t *st = zp->st;
	uint32_t at;
	int r;

	/*
	 * Versions are made one after the other on the zone thread, and the
	 * next may be made while this one waits here: it then builds on this
	 * one. If an earlier version did not commit (its transaction failed),
	 * the store is not at this version's starting serial, and writing it
	 * would store a chain with a hole. It is then left out (stale) without
	 * failing the transaction, which may hold other requests' rows: the
	 * loop fails its requests and rebuilds the working zone.
	 */
	if ((r = stored_serial(st, &at)) != 0)
		return commit_status_of(r);
	if (at != job->serial_from) {
		job->stale = true;
		return COMMIT_OK;
	}
	job->stale = false;
	if (job->kind == ZP_JOB_BULK) {
		r = zone_export_foreach(zp->working, put_all_cb, st);
		if (r == 0)
			r = store_journal_trim(st, 0);
		for (size_t i = 0; r == 0 && i < job->bulk->n; i++)
			if (job->bulk->not_after && job->bulk->not_after[i] != 0)
				r = expiry_put(st, job->bulk->devs[i].id, job->bulk->devs[i].index,
					       job->bulk->not_after[i]);
	} else {
		r = put_rows(st, job);
		if (r == 0)
			r = store_journal_append(st, job->serial_from, job->serial_to, job->now,
						 job->wire, job->wirelen);
		if (r == 0)
			r = store_journal_trim(st, job->journal_keep);
		if (r == 0 && job->kind == ZP_JOB_GROUP)
			r = put_group_expiry(st, job);
	}
	if (r == 0)
		r = put_serial(st, job->serial_to);
	/* The origin is fixed when the zones are made: reading it from the
	 * served zone, which the loop may be changing meanwhile, is safe. */
	if (r == 0)
		r = store_zone_meta_set(st, ZP_META_ORIGIN, zone_origin(zp->served),
					strlen(zone_origin(zp->served)));
	if (r != 0)
		return commit_status_of(r);
	/* The requests' own rows, in the same transaction. */
	if (job->kind == ZP_JOB_BULK && job->bulk->store_run)
		return job->bulk->store_run(job->bulk, env);
	for (struct zonepub_req *rq = job->reqs; rq; rq = rq->next) {
		if (rq->status != 0 || rq->store_run == NULL)
			continue;
		rq->serial = job->serial_to;
		if ((r = rq->store_run(rq, env)) != COMMIT_OK)
			return r;
	}
	return COMMIT_OK;
}

void zp_store_undo(struct commit_item *it, void *env)
{
	struct zp_job *job = (struct zp_job *)it;

	if (job->stale)
		return;
	for (struct zonepub_req *rq = job->reqs; rq; rq = rq->next)
		if (rq->status == 0 && rq->store_undo)
			rq->store_undo(rq, env);
}

/* ---- Load at start ---- */

struct load_ctx {
	struct zonepub *zp;
	int err;       /* ZONEPUB_E* of the first failure */
};

static int load_row(void *arg, const void *key, size_t klen, const void *data, size_t dlen)
{
	struct load_ctx *lc = arg;
	struct zonepub *zp = lc->zp;
	const uint8_t *k = key;
	int zr;

	if (klen >= 1 && k[0] == ZP_ROW_EXPIRY) {
		struct zp_expiry e;
		const uint8_t *v = data;
		char buf[STORE_DEVICE_MAX + 16], *end, *dot;
		unsigned long idx;

		if (klen < 4 || klen - 1 >= sizeof(buf) || dlen != 8)
			goto bad;
		memset(&e, 0, sizeof(e));
		for (int i = 0; i < 8; i++)
			e.not_after = (int64_t)(((uint64_t)e.not_after << 8) | v[i]);
		memcpy(buf, k + 1, klen - 1);
		buf[klen - 1] = '\0';
		dot = strrchr(buf, '.');
		if (dot == NULL || dot == buf || (size_t)(dot - buf) > STORE_DEVICE_MAX)
			goto bad;
		idx = strtoul(dot + 1, &end, 10);
		if (*end != '\0' || idx == 0 || idx > UINT32_MAX)
			goto bad;
		memcpy(e.id, buf, (size_t)(dot - buf));
		e.index = (uint32_t)idx;
		if (zp_heap_push(zp, &e) != 0) {
			lc->err = ZONEPUB_ENOMEM;
			return 1;
		}
		return 0;
	}
	if (klen < 1 || k[0] != ZP_ROW_NAME)
		goto bad;
	zr = zone_load_name(zp->served, k + 1, klen - 1, data, dlen);
	if (zr != 0) {
		lc->err = zr == ZONE_ENOMEM ? ZONEPUB_ENOMEM : ZONEPUB_EFORMAT;
		return 1;
	}
	return 0;
bad:
	lc->err = ZONEPUB_EFORMAT;
	return 1;
}

static int load_journal(void *arg, const struct store_journal_entry *e)
{
	struct load_ctx *lc = arg;
	uint8_t *w = malloc(e->len ? e->len : 1);

	if (w == NULL) {
		lc->err = ZONEPUB_ENOMEM;
		return 1;
	}
	memcpy(w, e->diff, e->len);
	if (zp_journal_add(&lc->zp->jr, e->serial_from, e->serial_to, e->when, w, e->len) != 0) {
		lc->err = ZONEPUB_ENOMEM;
		return 1;
	}
	return 0;
}

/* The stored serial and origin must agree with what the rows say. */
static int load_meta(struct zonepub *zp)
{
	unsigned char *v = NULL;
	size_t len = 0;
	int r;

	r = store_zone_meta_get(zp->st, ZP_META_SERIAL, &v, &len);
	if (r == STORE_ENOTFOUND)
		return zone_names(zp->served) == 0 ? 0 : ZONEPUB_EFORMAT;
	if (r != 0)
		return r == STORE_ENOMEM ? ZONEPUB_ENOMEM : ZONEPUB_ESTORE;
	if (len != 4 || (((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) |
			 ((uint32_t)v[2] << 8) | v[3]) != zone_serial(zp->served))
		r = ZONEPUB_EFORMAT;
	free(v);
	if (r != 0)
		return r;
	v = NULL;
	r = store_zone_meta_get(zp->st, ZP_META_ORIGIN, &v, &len);
	if (r == 0 && (len != strlen(zone_origin(zp->served)) ||
		       memcmp(v, zone_origin(zp->served), len) != 0))
		r = ZONEPUB_EFORMAT;
	else if (r != 0)
		r = r == STORE_ENOMEM ? ZONEPUB_ENOMEM : ZONEPUB_EFORMAT;
	free(v);
	return r;
}

static double mono_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* Reads everything; on the calling thread, which must own the store. */
static int load_rows(struct zonepub *zp, int64_t now)
{
	struct load_ctx lc = { zp, 0 };
	double t0 = mono_ms(), t1, t2;
	int r;

	r = store_zone_foreach(zp->st, load_row, &lc);
	t1 = mono_ms();
	zp->load_ms_rows = t1 - t0;
	if (lc.err != 0)
		return lc.err;
	if (r != 0)
		return r == STORE_ENOMEM ? ZONEPUB_ENOMEM : ZONEPUB_ESTORE;
	if (zone_names(zp->served) > 0) {
		/* No verification: the rows were verified when they were made, and
		 * the structural check still runs (zone_load_finish). Only the
		 * served zone is loaded before the listener may answer: the working
		 * zone is rebuilt from it by the first job, on the zone thread (a
		 * rebuild goes before any change), so a restart waits for one load
		 * instead of two. */
		if (zone_load_finish(zp->served, now, false) != 0)
			return ZONEPUB_EFORMAT;
		zp->rebuild_needed = true;
	}
	t2 = mono_ms();
	zp->load_ms_finish = t2 - t1;
	if ((r = load_meta(zp)) != 0)
		return r;
	r = store_journal_foreach(zp->st, load_journal, &lc);
	zp->load_ms_journal = mono_ms() - t2;
	if (lc.err != 0)
		return lc.err;
	if (r != 0)
		return r == STORE_ENOMEM ? ZONEPUB_ENOMEM : ZONEPUB_ESTORE;
	/* A journal that does not end at the zone's serial cannot serve IXFR;
	 * the next commit trims the store to what is kept here. */
	if (zp->jr.n > 0 && zp->jr.v[zp->jr.n - 1].to != zone_serial(zp->served))
		zp_journal_clear(&zp->jr);
	/* The zone file writer's own connection, opened here because this
	 * thread owns the store (zonepub_aux.c). */
	if (zp->o.zone_file != NULL && zp->file_st == NULL &&
	    (r = store_reader_open(zp->st, &zp->file_st)) != 0)
		return r == STORE_ENOMEM ? ZONEPUB_ENOMEM : ZONEPUB_ESTORE;
	return 0;
}

static void loaded(struct zonepub *zp, int err)
{
	if (err != 0) {
		/* The zones hold part of the rows: this zonepub can only be closed. */
		zp->state = ZP_BROKEN;
		zp_fail(zp, err, "load");
		return;
	}
	zp->state = ZP_LOADED;
	zp_log(zp, ZONEPUB_LOG_INFO, "zone %s loaded: serial %u, %zu names, %zu journal diffs, "
	       "%zu expiring devices (rows %.0f ms, tree and check %.0f ms, journal %.0f ms)",
	       zone_origin(zp->served), zone_serial(zp->served), zone_names(zp->served), zp->jr.n,
	       zp->nheap, zp->load_ms_rows, zp->load_ms_finish, zp->load_ms_journal);
}

int zonepub_load(struct zonepub *zp, store_t *st)
{
	int r;

	if (zp->state != ZP_NEW)
		return ZONEPUB_ESTATE;
	zp->st = st;
	r = load_rows(zp, zp_now(zp));
	loaded(zp, r);
	return r;
}

/* ---- Load through the commit pipeline ---- */

struct zp_open {
	struct commit_item item;  /* first */
	struct zonepub *zp;
	int64_t now;
	int err;
	void (*done)(void *arg, int status);
	void *arg;
};

/* Writer thread, outside any transaction (COMMIT_ALONE): the store is read
 * where it is owned; the zones are handed back to the loop with the item. */
static int open_run(struct commit_item *it, void *env)
{
	struct zp_open *o = (struct zp_open *)it;

	(void)env;
	o->err = load_rows(o->zp, o->now);
	return COMMIT_OK;
}

static void open_done(struct commit_item *it, int status)
{
	struct zp_open *o = (struct zp_open *)it;
	struct zonepub *zp = o->zp;
	int err = o->err;

	if (status != COMMIT_OK && err == 0)
		err = status == COMMIT_ERR_CLOSED ? ZONEPUB_ECLOSED : ZONEPUB_ESTORE;
	zp->loading = false;
	if (zp->state == ZP_CLOSING) {
		o->done(o->arg, ZONEPUB_ECLOSED);
		free(o);
		zp_close_continue(zp);
		return;
	}
	loaded(zp, err);
	if (err == 0)
		err = zonepub_start(zp, zp->commit);
	o->done(o->arg, err);
	free(o);
}

int zonepub_open(struct zonepub *zp, store_t *st, commit_t *commit,
		 void (*done)(void *arg, int status), void *arg)
{
	struct zp_open *o;

	if (zp->state != ZP_NEW || zp->loading || commit == NULL || done == NULL)
		return ZONEPUB_ESTATE;
	if ((o = calloc(1, sizeof(*o))) == NULL)
		return ZONEPUB_ENOMEM;
	zp->st = st;
	zp->commit = commit;
	zp->loading = true;
	o->zp = zp;
	o->now = zp_now(zp);
	o->done = done;
	o->arg = arg;
	o->item.run = open_run;
	o->item.done = open_done;
	o->item.flags = COMMIT_ALONE;
	commit_submit(commit, &o->item);
	return 0;
}
