/*
 * Unit tests of signer/commit's WAL checkpointer and stage trace:
 *  - the WAL is checkpointed by the checkpointer thread, not inside the
 *    writer's commits, and stays small under a steady stream of groups;
 *  - no commit waits for a checkpoint's fsync of the database file, also
 *    once the WAL is past the size at which it should restart (a VFS
 *    wrapper makes that fsync slow);
 *  - a checkpoint whose fsync of the database file fails is fatal like a
 *    failed commit: the fatal callback runs once and later items fail with
 *    COMMIT_ERR_FATAL (a VFS wrapper fails xSync on the main file only,
 *    which only a checkpoint syncs in WAL mode);
 *  - with tracing on, every item gets its stage times in order; off, none;
 *  - the WAL limits: their defaults, out-of-range settings refused, and
 *    with the defaults a steady stream checkpoints every few MiB, restarts
 *    the WAL once it holds 64 MiB (not after every checkpoint), and a copy
 *    of the database and WAL files taken after the last acknowledged commit
 *    (what a crash leaves; the frames since the last checkpoint are in the
 *    WAL only) opens with every acknowledged change.
 * The other tests run with the small limits the daemon used before
 * (TEST_LIMITS), so that a few thousand frames reach every case.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "tests/unit/commit_fixture.h"

/* ---- A VFS that can fail xSync of the main database file ---- */

struct fault_file {
	sqlite3_file base;      /* first: SQLite sees this */
	sqlite3_file *real;     /* the default VFS's file, after this struct */
	int main_db;            /* the database file itself (not WAL, not shm) */
};

struct fault_vfs {
	sqlite3_vfs vfs;
	sqlite3_vfs *real;
	sqlite3_io_methods methods;
	int fail_main_sync;     /* xSync of the main file fails while set */
	int main_syncs;         /* xSync calls on the main file */
	int main_sync_delay_us; /* xSync of the main file sleeps this long first */
};

static struct fault_vfs *the_vfs; /* test only: the io methods find their VFS */

static int ff_close(sqlite3_file *f)
{
	struct fault_file *ff = (struct fault_file *)f;
	int rc = ff->real->pMethods ? ff->real->pMethods->xClose(ff->real) : SQLITE_OK;

	return rc;
}
static int ff_read(sqlite3_file *f, void *p, int n, sqlite3_int64 off)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xRead(ff->real, p, n, off);
}
static int ff_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 off)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xWrite(ff->real, p, n, off);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xTruncate(ff->real, size);
}
static int ff_sync(sqlite3_file *f, int flags)
{
	struct fault_file *ff = (struct fault_file *)f;

	if (ff->main_db) {
		int delay = __atomic_load_n(&the_vfs->main_sync_delay_us, __ATOMIC_SEQ_CST);

		__atomic_add_fetch(&the_vfs->main_syncs, 1, __ATOMIC_SEQ_CST);
		if (__atomic_load_n(&the_vfs->fail_main_sync, __ATOMIC_SEQ_CST))
			return SQLITE_IOERR_FSYNC;
		if (delay > 0)
			usleep((useconds_t)delay);
	}
	return ff->real->pMethods->xSync(ff->real, flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *size)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xFileSize(ff->real, size);
}
static int ff_lock(sqlite3_file *f, int l)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xLock(ff->real, l);
}
static int ff_unlock(sqlite3_file *f, int l)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xUnlock(ff->real, l);
}
static int ff_check(sqlite3_file *f, int *out)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xCheckReservedLock(ff->real, out);
}
static int ff_fcntl(sqlite3_file *f, int op, void *arg)
{
	struct fault_file *ff = (struct fault_file *)f;

	if (op == SQLITE_FCNTL_VFS_POINTER) {
		*(sqlite3_vfs **)arg = &the_vfs->vfs;
		return SQLITE_OK;
	}
	return ff->real->pMethods->xFileControl(ff->real, op, arg);
}
static int ff_sector(sqlite3_file *f)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xSectorSize(ff->real);
}
static int ff_devchar(sqlite3_file *f)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xDeviceCharacteristics(ff->real);
}
static int ff_shm_map(sqlite3_file *f, int pg, int sz, int ext, void volatile **pp)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xShmMap(ff->real, pg, sz, ext, pp);
}
static int ff_shm_lock(sqlite3_file *f, int off, int n, int flags)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xShmLock(ff->real, off, n, flags);
}
static void ff_shm_barrier(sqlite3_file *f)
{
	struct fault_file *ff = (struct fault_file *)f;
	ff->real->pMethods->xShmBarrier(ff->real);
}
static int ff_shm_unmap(sqlite3_file *f, int del)
{
	struct fault_file *ff = (struct fault_file *)f;
	return ff->real->pMethods->xShmUnmap(ff->real, del);
}

static int fv_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *out)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	struct fault_file *ff = (struct fault_file *)f;
	int rc;

	ff->real = (sqlite3_file *)(ff + 1);
	ff->main_db = (flags & SQLITE_OPEN_MAIN_DB) != 0;
	rc = fv->real->xOpen(fv->real, name, ff->real, flags, out);
	/* Methods only when the real file opened: SQLite closes what has them. */
	ff->base.pMethods = ff->real->pMethods ? &fv->methods : NULL;
	return rc;
}
static int fv_delete(sqlite3_vfs *v, const char *name, int sync)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xDelete(fv->real, name, sync);
}
static int fv_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xAccess(fv->real, name, flags, out);
}
static int fv_full(sqlite3_vfs *v, const char *name, int n, char *out)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xFullPathname(fv->real, name, n, out);
}
static int fv_random(sqlite3_vfs *v, int n, char *out)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xRandomness(fv->real, n, out);
}
static int fv_sleep(sqlite3_vfs *v, int us)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xSleep(fv->real, us);
}
static int fv_time(sqlite3_vfs *v, double *out)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xCurrentTime(fv->real, out);
}
static int fv_error(sqlite3_vfs *v, int n, char *out)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xGetLastError(fv->real, n, out);
}
static int fv_time64(sqlite3_vfs *v, sqlite3_int64 *out)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	return fv->real->xCurrentTimeInt64(fv->real, out);
}

static struct fault_vfs *
fault_vfs_register(void)
{
	struct fault_vfs *fv = calloc(1, sizeof(*fv));
	sqlite3_io_methods m = {
		2, ff_close, ff_read, ff_write, ff_truncate, ff_sync, ff_size, ff_lock,
		ff_unlock, ff_check, ff_fcntl, ff_sector, ff_devchar, ff_shm_map, ff_shm_lock,
		ff_shm_barrier, ff_shm_unmap, NULL, NULL,
	};

	assert_non_null(fv);
	fv->real = sqlite3_vfs_find(NULL);
	assert_non_null(fv->real);
	fv->methods = m;
	fv->vfs.iVersion = 2;
	fv->vfs.szOsFile = (int)sizeof(struct fault_file) + fv->real->szOsFile;
	fv->vfs.mxPathname = fv->real->mxPathname;
	fv->vfs.zName = "regsign-test-fault";
	fv->vfs.xOpen = fv_open;
	fv->vfs.xDelete = fv_delete;
	fv->vfs.xAccess = fv_access;
	fv->vfs.xFullPathname = fv_full;
	fv->vfs.xRandomness = fv_random;
	fv->vfs.xSleep = fv_sleep;
	fv->vfs.xCurrentTime = fv_time;
	fv->vfs.xGetLastError = fv_error;
	fv->vfs.xCurrentTimeInt64 = fv_time64;
	assert_int_equal(sqlite3_vfs_register(&fv->vfs, 0), SQLITE_OK);
	the_vfs = fv;
	return fv;
}

/* ---- Fixture ---- */

struct item {
	struct commit_item it;
	struct fx *f;
	int rows;           /* rows of 2 KiB written by run */
	int done, status;
	uint64_t trace[COMMIT_T_SLOTS];
};

struct fx {
	struct commit_fixture cf;
	int fatal_calls;
	int fatal_err;
	unsigned key;
	unsigned seq;       /* groups run by run_seq_cb */
	struct fault_vfs *vfs;
};

static int
run_cb(struct commit_item *ci, void *envp)
{
	struct item *i = (struct item *)ci;
	struct fx *f = envp;
	unsigned char blob[2048];
	char key[32];

	memset(blob, 0x5a, sizeof(blob));
	for (int n = 0; n < i->rows; n++) {
		int len = snprintf(key, sizeof(key), "n%08u", f->key++ % 4096u);

		if (store_zone_put(f->cf.st, key, (size_t)len, blob, sizeof(blob)) != 0)
			return COMMIT_ERR_STORAGE;
	}
	return COMMIT_OK;
}

static void
done_cb(struct commit_item *ci, int status)
{
	struct item *i = (struct item *)ci;

	i->done = 1;
	i->status = status;
	memcpy(i->trace, ci->trace, sizeof(i->trace));
}

static void
on_fatal(void *arg, int err)
{
	struct fx *f = arg;

	f->fatal_calls++;
	f->fatal_err = err;
}

/* Small limits: a checkpoint per 256 frames, a restart past 1,024. */
static const struct commit_wal_limits TEST_LIMITS = { 256, 1024, 16384 };

static struct fx *
fx_open_limits(int with_fault_vfs, const struct commit_wal_limits *lim)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	if (with_fault_vfs)
		f->vfs = fault_vfs_register();
	commit_fixture_open(&f->cf, "regsign-ckpt", f->vfs ? f->vfs->vfs.zName : NULL, f,
			    on_fatal, f);
	if (lim)
		assert_int_equal(commit_wal_limits_set(f->cf.c, lim), COMMIT_OK);
	return f;
}

static struct fx *
fx_open(int with_fault_vfs)
{
	return fx_open_limits(with_fault_vfs, &TEST_LIMITS);
}

static void
fx_close(struct fx *f)
{
	commit_fixture_close(&f->cf);
	if (f->vfs) {
		sqlite3_vfs_unregister(&f->vfs->vfs);
		free(f->vfs);
		the_vfs = NULL;
	}
	free(f);
}

/* An item that also records its sequence number in zone_meta "seq". */
static int
run_seq_cb(struct commit_item *ci, void *envp)
{
	struct fx *f = envp;
	unsigned seq = ++f->seq;
	unsigned char v[4] = { (unsigned char)(seq >> 24), (unsigned char)(seq >> 16),
			       (unsigned char)(seq >> 8), (unsigned char)seq };

	if (store_zone_meta_set(f->cf.st, "seq", v, sizeof(v)) != 0)
		return COMMIT_ERR_STORAGE;
	return run_cb(ci, envp);
}

/* Submits one item and runs the loop until it is done (bounded). */
static void
one(struct fx *f, struct item *i, int rows)
{
	memset(i, 0, sizeof(*i));
	i->f = f;
	i->rows = rows;
	i->it.run = run_cb;
	i->it.done = done_cb;
	commit_submit(f->cf.c, &i->it);
	commit_fixture_wait(&f->cf, &i->done);
}

static long long
wal_size(const struct fx *f)
{
	char p[128];
	struct stat sb;

	snprintf(p, sizeof(p), "%s-wal", f->cf.path);
	return stat(p, &sb) == 0 ? (long long)sb.st_size : 0;
}

/* What a stream of groups did to the WAL file. */
struct stream {
	long long max_wal; /* its largest size after a commit */
	int restarted;     /* a commit left its size unchanged: it began again */
	unsigned acked;    /* the last sequence number committed (run_seq_cb) */
};

/*
 * Commits @p n groups of ~6 pages (@p run: run_cb or run_seq_cb), each waited
 * for, with a moment between them as between requests at a steady rate
 * (@p gap_us, 20 ms after every 50th): a checkpoint that finished by the next
 * BEGIN lets the WAL restart from its beginning. The file keeps its size
 * when the WAL restarts, so a restart shows as a size that stopped growing
 * while commits went on.
 */
static void
stream(struct fx *f, int n, commit_run_fn run, useconds_t gap_us, struct stream *s)
{
	struct item i;
	long long last = 0;

	memset(s, 0, sizeof(*s));
	for (int k = 0; k < n; k++) {
		long long w;

		memset(&i, 0, sizeof(i));
		i.f = f;
		i.rows = 6;
		i.it.run = run;
		i.it.done = done_cb;
		commit_submit(f->cf.c, &i.it);
		commit_fixture_wait(&f->cf, &i.done);
		assert_int_equal(i.status, COMMIT_OK);
		s->acked = f->seq;
		w = wal_size(f);
		if (w > s->max_wal)
			s->max_wal = w;
		if (w == last && w > 0)
			s->restarted = 1;
		last = w;
		usleep(k % 50 == 49 ? 20000 : gap_us);
	}
}

/* 600 groups of ~6 pages each (3,600 WAL frames, ~14 MiB) at a steady
 * pace: the checkpointer keeps up, the writer never checkpoints, and the
 * WAL restarts from its beginning instead of growing past a few MiB. */
static void
test_checkpointer_keeps_wal_small(void **state)
{
	struct fx *f = fx_open(0);
	struct commit_stats cs;
	struct stream s;

	(void)state;
	stream(f, 600, run_cb, 1000, &s);
	commit_stats_get(f->cf.c, &cs);
	assert_int_equal(cs.groups, 600);
	assert_true(cs.checkpoints >= 2);
	assert_int_equal(cs.checkpoints_inline, 0);
	/* Without any checkpoint the WAL would hold all 3,600+ frames. */
	assert_true(s.max_wal < 8ll * 1024 * 1024);
	assert_int_equal(f->fatal_calls, 0);
	fx_close(f);
}

/*
 * Every fsync of the database file (only checkpoints make one) takes 300 ms.
 * 500 groups of ~6 pages with a millisecond between them push the WAL past
 * the size at which it should restart (1,024 frames) while checkpoints are
 * slow: the checkpointer catches up on its own thread, and no group waits
 * for it. A writer that copied the rest itself between groups made the next
 * group wait the whole 300 ms. The bound is far below the delay but far
 * above an ordinary commit on a loaded machine.
 */
static void
test_no_commit_waits_for_checkpoint_fsync(void **state)
{
	struct fx *f = fx_open(1);
	struct commit_stats cs;
	struct item i;
	uint64_t worst = 0;

	(void)state;
	__atomic_store_n(&f->vfs->main_sync_delay_us, 300000, __ATOMIC_SEQ_CST);
	for (int n = 0; n < 500; n++) {
		uint64_t t0 = commit_now_ns();

		one(f, &i, 6);
		assert_int_equal(i.status, COMMIT_OK);
		if (commit_now_ns() - t0 > worst)
			worst = commit_now_ns() - t0;
		usleep(1000);
	}
	commit_stats_get(f->cf.c, &cs);
	assert_int_equal(cs.groups, 500);
	/* Checkpoints ran (slowly), among them catch-ups past the restart size. */
	assert_true(__atomic_load_n(&f->vfs->main_syncs, __ATOMIC_SEQ_CST) >= 2);
	assert_true(cs.checkpoints_idle >= 1);
	assert_int_equal(cs.checkpoints_inline, 0);
	assert_true(worst < 200000000u);
	assert_int_equal(f->fatal_calls, 0);
	__atomic_store_n(&f->vfs->main_sync_delay_us, 0, __ATOMIC_SEQ_CST);
	fx_close(f);
}

/* An fsync of the database file fails (only a checkpoint syncs it): the
 * pipeline reports a fatal error once and runs nothing more. */
static void
test_checkpoint_fsync_failure_is_fatal(void **state)
{
	struct fx *f = fx_open(1);
	struct item i;
	int n;

	(void)state;
	one(f, &i, 2);
	assert_int_equal(i.status, COMMIT_OK);
	__atomic_store_n(&f->vfs->fail_main_sync, 1, __ATOMIC_SEQ_CST);
	/* Enough WAL frames to wake the checkpointer; wait until it failed. */
	for (n = 0; n < 400 && f->fatal_calls == 0; n++) {
		one(f, &i, 8);
		if (i.status != COMMIT_OK)
			break;
		usleep(2000);
	}
	for (int k = 0; k < 2000 && f->fatal_calls == 0; k++) {
		uv_run(&f->cf.loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_true(__atomic_load_n(&f->vfs->main_syncs, __ATOMIC_SEQ_CST) > 0);
	assert_int_equal(f->fatal_calls, 1);
	assert_int_equal(f->fatal_err, STORE_EFSYNC);
	/* Nothing runs after the failure. */
	one(f, &i, 1);
	assert_int_equal(i.status, COMMIT_ERR_FATAL);
	assert_int_equal(f->fatal_calls, 1);
	__atomic_store_n(&f->vfs->fail_main_sync, 0, __ATOMIC_SEQ_CST);
	fx_close(f);
}

/* Tracing off: no stage times; on: all four, in order, on every item. */
static void
test_trace_stage_times(void **state)
{
	struct fx *f = fx_open(0);
	struct item i;

	(void)state;
	assert_int_equal(commit_trace_on(f->cf.c), 0);
	one(f, &i, 1);
	for (int k = 0; k < COMMIT_T_SLOTS; k++)
		assert_true(i.trace[k] == 0);
	commit_trace_set(f->cf.c, 1);
	assert_int_equal(commit_trace_on(f->cf.c), 1);
	for (int n = 0; n < 5; n++) {
		uint64_t before = commit_now_ns(), after;

		one(f, &i, 1);
		after = commit_now_ns();
		assert_int_equal(i.status, COMMIT_OK);
		assert_true(before <= i.trace[COMMIT_T_SUBMIT]);
		assert_true(i.trace[COMMIT_T_SUBMIT] <= i.trace[COMMIT_T_RUN]);
		assert_true(i.trace[COMMIT_T_RUN] <= i.trace[COMMIT_T_COMMIT]);
		assert_true(i.trace[COMMIT_T_COMMIT] <= i.trace[COMMIT_T_DURABLE]);
		assert_true(i.trace[COMMIT_T_DURABLE] <= after);
		/* The owner's slots are the owner's. */
		assert_true(i.trace[COMMIT_T_OWNER0] == 0 && i.trace[COMMIT_T_OWNER1] == 0);
	}
	commit_trace_set(f->cf.c, 0);
	one(f, &i, 1);
	assert_true(i.trace[COMMIT_T_SUBMIT] == 0 && i.trace[COMMIT_T_DURABLE] == 0);
	fx_close(f);
}

/* The defaults are the documented ones; settings out of order are refused
 * and change nothing. */
static void
test_wal_limits(void **state)
{
	struct fx *f = fx_open_limits(0, NULL);
	struct commit_wal_limits l, bad[] = {
		{ 0, 1024, 16384 },     /* no checkpoint at all */
		{ 2048, 1024, 16384 },  /* restart below a checkpoint's size */
		{ 256, 1024, 1024 },    /* inline checkpoints before the restart */
	};

	(void)state;
	commit_wal_limits_get(f->cf.c, &l);
	assert_int_equal(l.ckpt_pages, 2048);
	assert_int_equal(l.restart_pages, 16384);
	assert_int_equal(l.hard_pages, 65536);
	for (size_t k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		assert_int_equal(commit_wal_limits_set(f->cf.c, &bad[k]), COMMIT_ERR_INVALID);
		commit_wal_limits_get(f->cf.c, &l);
		assert_int_equal(l.ckpt_pages, 2048);
	}
	assert_int_equal(commit_wal_limits_set(f->cf.c, &TEST_LIMITS), COMMIT_OK);
	commit_wal_limits_get(f->cf.c, &l);
	assert_int_equal(l.ckpt_pages, 256);
	assert_int_equal(l.restart_pages, 1024);
	assert_int_equal(l.hard_pages, 16384);
	fx_close(f);
}

static void
copy_file(const char *from, const char *to)
{
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	char buf[65536];
	size_t n;

	assert_non_null(in);
	assert_non_null(out);
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		assert_int_equal(fwrite(buf, 1, n, out), n);
	assert_int_equal(ferror(in), 0);
	fclose(in);
	assert_int_equal(fclose(out), 0);
}

/*
 * The defaults under a steady stream of 3,200 groups of ~6 pages (~19,000
 * frames, more than the 16,384 of the restart size): the checkpointer keeps
 * up (no commit checkpoints inline), the WAL restarts from its beginning
 * (a commit that leaves the file's size as it was wrote its frames over old
 * ones) and never grows much past the restart size. When it restarts is
 * timing: the first BEGIN after a checkpoint that copied every frame
 * restarts it, which a pause between commits allows well before 64 MiB
 * (CI saw it), and the catch-ups past 64 MiB force it otherwise. Then the
 * database and WAL files are copied as they are after the last
 * acknowledged commit (no shared memory: the copy recovers the WAL as after
 * a crash) and the copy holds the last acknowledged sequence number.
 */
static void
test_default_limits_restart_and_crash_copy(void **state)
{
	struct fx *f = fx_open_limits(0, NULL);
	struct commit_stats cs;
	struct store_open_opts o;
	struct stream s;
	char dir[64], db[96], p[128];
	store_t *st = NULL;
	unsigned char *v = NULL;
	size_t vlen = 0;

	(void)state;
	stream(f, 3200, run_seq_cb, 500, &s);
	commit_stats_get(f->cf.c, &cs);
	assert_int_equal(cs.groups, 3200);
	assert_true(cs.checkpoints >= 4);
	assert_int_equal(cs.checkpoints_inline, 0);
	/* No further than the restart size and the frames of the commits that
	 * raced its catch-up; more than that was written, so it restarted. */
	assert_true(s.max_wal < 72ll * 1024 * 1024);
	assert_true(s.restarted);
	assert_int_equal(f->fatal_calls, 0);

	/* What a crash leaves: the files, without the shared-memory index. */
	snprintf(dir, sizeof(dir), "/tmp/regsign-ckptcopy-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(db, sizeof(db), "%s/state.db", dir);
	copy_file(f->cf.path, db);
	snprintf(p, sizeof(p), "%s-wal", f->cf.path);
	{
		char to[128];

		snprintf(to, sizeof(to), "%s-wal", db);
		copy_file(p, to);
	}
	memset(&o, 0, sizeof(o));
	assert_int_equal(store_open(&st, db, &o), 0);
	assert_int_equal(store_zone_meta_get(st, "seq", &v, &vlen), 0);
	assert_int_equal(vlen, 4);
	assert_int_equal(((unsigned)v[0] << 24 | (unsigned)v[1] << 16 | (unsigned)v[2] << 8 | v[3]),
			 s.acked);
	free(v);
	store_close(st);
	unlink(db);
	snprintf(p, sizeof(p), "%s-wal", db);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", db);
	unlink(p);
	assert_int_equal(rmdir(dir), 0);
	fx_close(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_checkpointer_keeps_wal_small),
		cmocka_unit_test(test_no_commit_waits_for_checkpoint_fsync),
		cmocka_unit_test(test_checkpoint_fsync_failure_is_fatal),
		cmocka_unit_test(test_trace_stage_times),
		cmocka_unit_test(test_wal_limits),
		cmocka_unit_test(test_default_limits_restart_and_crash_copy),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
