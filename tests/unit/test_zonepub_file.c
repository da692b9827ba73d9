/*
 * zonepub's zone file, written on a thread of its own from a read
 * transaction on the store (signer/zonepub_aux.c, zonesigner/zone_rows.h):
 *  - the file equals zone_file_write() of the served zone at the same serial;
 *  - while the writer is held mid-file (opts.file_hook), changes still
 *    publish new serials, and the held write then finishes with the serial
 *    it started with, every RR of it (byte-equal to that version's file);
 *  - requests arriving during a write are served together by the next one;
 *  - closing waits for a write in progress, then writes the last serial;
 *  - a stored row that does not parse fails the write, names the row, and
 *    leaves the old file and no temporary file;
 *  - the writer runs at nice 19, on its own thread only (the caller's
 *    thread keeps its priority);
 *  - a replaced version is freed a slice at a time (counted in STATUS),
 *    unless somebody still has it open: that reader reads it whole.
 */
#include <dirent.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "test_zonepub_fx.h"
#include "zonesigner/zone_file.h"

/* The test hook: counts writes, records their serials, holds the writer
 * while @c hold is set. */
struct hold {
	uv_mutex_t mu;
	uv_cond_t cv;
	bool hold;
	int entered;
	uint32_t serials[16];
	/* The writer thread's own, as the hook saw them on the last write. */
	pid_t tid;
	int nice;
};

static void hold_hook(void *arg, uint32_t serial)
{
	struct hold *h = arg;

	uv_mutex_lock(&h->mu);
	h->tid = gettid();
	errno = 0;
	h->nice = getpriority(PRIO_PROCESS, (id_t)h->tid);
	if (errno != 0)
		h->nice = -100;
	if (h->entered < 16)
		h->serials[h->entered] = serial;
	h->entered++;
	uv_cond_broadcast(&h->cv);
	while (h->hold)
		uv_cond_wait(&h->cv, &h->mu);
	uv_mutex_unlock(&h->mu);
}

static void hold_init(struct hold *h)
{
	memset(h, 0, sizeof(*h));
	assert_int_equal(uv_mutex_init(&h->mu), 0);
	assert_int_equal(uv_cond_init(&h->cv), 0);
}

static void hold_set(struct hold *h, bool on)
{
	uv_mutex_lock(&h->mu);
	h->hold = on;
	uv_cond_broadcast(&h->cv);
	uv_mutex_unlock(&h->mu);
}

static int hold_entered(struct hold *h)
{
	int n;

	uv_mutex_lock(&h->mu);
	n = h->entered;
	uv_mutex_unlock(&h->mu);
	return n;
}

static void hold_fini(struct hold *h)
{
	uv_cond_destroy(&h->cv);
	uv_mutex_destroy(&h->mu);
}

/* What a zone file request got. */
struct fres {
	int done;
	int status;
	uint32_t serial;
};

static void file_done(void *arg, int status, uint32_t serial)
{
	struct fres *r = arg;

	r->done++;
	r->status = status;
	r->serial = serial;
}

/* Run the loop (the guard timer wakes it every 50 ms) until @p flag is set. */
#define RUN_UNTIL(fx, cond, what)                                                       \
	do {                                                                            \
		time_t dl_ = time(NULL) + 120;                                          \
		while (!(cond)) {                                                       \
			if (time(NULL) > dl_)                                           \
				fail_msg("no %s within 120 s", what);                   \
			uv_run(&(fx)->loop, UV_RUN_ONCE);                               \
		}                                                                       \
	} while (0)

/* The served zone's file as zone_file_write() writes it, at @p name in the
 * fixture's directory. */
static void reference(struct fx *fx, const char *name, char *path, size_t size)
{
	snprintf(path, size, "%s/%s", fx->dir, name);
	assert_int_equal(zone_file_write(zonepub_zone(fx->zp), path), 0);
}

/* No temporary file of the zone file is left in the directory. */
static void assert_no_tmp(struct fx *fx)
{
	DIR *d = opendir(fx->dir);
	struct dirent *e;

	assert_non_null(d);
	while ((e = readdir(d)) != NULL)
		if (strstr(e->d_name, ".tmp") != NULL)
			fail_msg("temporary file left: %s/%s", fx->dir, e->d_name);
	closedir(d);
}

/* Issue devices [first, first + n) in groups of up to 16 and wait. */
static void issue_many(struct fx *fx, unsigned first, unsigned n)
{
	struct treq *t = calloc(16, sizeof(*t));

	assert_non_null(t);
	for (unsigned i = 0; i < n; i += 16) {
		unsigned m = n - i < 16 ? n - i : 16;
		for (unsigned k = 0; k < m; k++) {
			fx_issue(fx, &t[k], first + i + k, 1, 0);
			zonepub_submit(fx->zp, &t[k].rq);
		}
		fx_run_idle(fx);
		for (unsigned k = 0; k < m; k++)
			assert_int_equal(t[k].status, 0);
	}
	free(t);
}

static void write_now(struct fx *fx, struct fres *r)
{
	memset(r, 0, sizeof(*r));
	assert_int_equal(zonepub_zone_file_write(fx->zp, file_done, r), 0);
	RUN_UNTIL(fx, r->done, "zone file write");
}

/* Starts zonepub with a zone file whose writer calls hold_hook(h). */
static void start_with_hook(struct fx *fx, struct hold *h)
{
	hold_init(h);
	fx->opts.zone_file = fx->zone_file;
	fx->opts.file_hook = hold_hook;
	fx->opts.file_hook_arg = h;
	fx_start(fx);
}

/* Asks for a write and runs the loop until the writer is held in the hook. */
static void write_held(struct fx *fx, struct hold *h, struct fres *r)
{
	hold_set(h, true);
	memset(r, 0, sizeof(*r));
	assert_int_equal(zonepub_zone_file_write(fx->zp, file_done, r), 0);
	RUN_UNTIL(fx, hold_entered(h) == 1, "writer in the hook");
}

/* The thread's file is zone_file_write()'s for the same serial. */
static void test_file_equals_memory(void **state)
{
	struct fx *fx = *state;
	struct treq rv[10], txt;
	struct zonepub_status st;
	struct fres r;
	char ref[600];

	fx->opts.zone_file = fx->zone_file;
	fx_start(fx);
	issue_many(fx, 1, 300);
	for (unsigned i = 0; i < 10; i++) {
		fx_revoke(fx, &rv[i], 1 + i * 29, 1);
		zonepub_submit(fx->zp, &rv[i].rq);
	}
	fx_rr(fx, &txt, true, "_asp.iotregistry.test. 600 IN TXT \"hello \\\"world\\\"\"");
	zonepub_submit(fx->zp, &txt.rq);
	fx_run_idle(fx);
	assert_int_equal(txt.status, 0);
	write_now(fx, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.serial, zone_serial(zonepub_zone(fx->zp)));
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.zone_file_serial, r.serial);
	reference(fx, "ref.zone", ref, sizeof(ref));
	tzs_assert_same_file(fx->zone_file, ref);
	tzs_verify_zone_file(fx->zone_file);
	assert_no_tmp(fx);
	fx_treq_clear(&txt);
}

/* Held mid-file, the writer holds up nothing: a REVOKE and an ISSUE publish
 * a new serial; released, it finishes the serial it started with; the two
 * requests that came meanwhile share the next write. */
static void test_writer_held(void **state)
{
	struct fx *fx = *state;
	struct hold h;
	struct treq rv, is;
	struct fres r1, r2, r3;
	char ref1[600];
	uint32_t s0, s1;

	start_with_hook(fx, &h);
	issue_many(fx, 1, 100);
	s0 = zone_serial(zonepub_zone(fx->zp));

	write_held(fx, &h, &r1);
	assert_int_equal(h.serials[0], s0);

	fx_revoke(fx, &rv, 7, 1);
	fx_issue(fx, &is, 500, 1, 0);
	zonepub_submit(fx->zp, &rv.rq);
	zonepub_submit(fx->zp, &is.rq);
	RUN_UNTIL(fx, rv.done && is.done, "REVOKE and ISSUE while the writer is held");
	assert_int_equal(rv.status, 0);
	assert_int_equal(is.status, 0);
	s1 = zone_serial(zonepub_zone(fx->zp));
	assert_true(s1 != s0);
	assert_int_equal(rv.serial, s1);
	assert_int_equal(fx_store_serial(fx), s1);
	assert_false(fx_has_device(fx, 7, 1));
	/* The write has not finished, and two more requests wait for the next. */
	assert_int_equal(r1.done, 0);
	memset(&r2, 0, sizeof(r2));
	memset(&r3, 0, sizeof(r3));
	assert_int_equal(zonepub_zone_file_write(fx->zp, file_done, &r2), 0);
	assert_int_equal(zonepub_zone_file_write(fx->zp, file_done, &r3), 0);
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	assert_int_equal(hold_entered(&h), 1);
	reference(fx, "ref1.zone", ref1, sizeof(ref1));

	/* Released: the held write ends at the serial it read, whole. The next
	 * write then runs, one for both r2 and r3. */
	hold_set(&h, false);
	RUN_UNTIL(fx, r1.done, "the held write's end");
	assert_int_equal(r1.status, 0);
	assert_int_equal(r1.serial, s0);
	RUN_UNTIL(fx, r2.done && r3.done, "the coalesced write");
	assert_int_equal(r2.status, 0);
	assert_int_equal(r3.status, 0);
	assert_int_equal(r2.serial, s1);
	assert_int_equal(r3.serial, s1);
	assert_int_equal(r1.done + r2.done + r3.done, 3);
	assert_int_equal(hold_entered(&h), 2);
	assert_int_equal(h.serials[1], s1);
	tzs_assert_same_file(fx->zone_file, ref1);
	tzs_verify_zone_file(fx->zone_file);
	/* Closed before the hook's state goes (closing may write once more). */
	fx_stop(fx);
	hold_fini(&h);
}

/* The writer gives way: nice 19 on its own thread, set before it reads a
 * row; the thread that runs the loop is untouched. */
static void test_writer_priority(void **state)
{
	struct fx *fx = *state;
	struct hold h;
	struct fres r;
	int nice0;

	errno = 0;
	nice0 = getpriority(PRIO_PROCESS, (id_t)gettid());
	assert_int_equal(errno, 0);
	assert_int_not_equal(nice0, 19);
	start_with_hook(fx, &h);
	issue_many(fx, 1, 20);
	write_now(fx, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(hold_entered(&h), 1);
	assert_int_not_equal(h.tid, gettid());
	assert_int_equal(h.nice, 19);
	assert_int_equal(getpriority(PRIO_PROCESS, (id_t)gettid()), nice0);
	tzs_verify_zone_file(fx->zone_file);
	fx_stop(fx);
	hold_fini(&h);
}

static off_t file_size(const char *path)
{
	struct stat sb;

	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

static uint64_t freed(struct fx *fx)
{
	struct zonepub_status st;

	zonepub_status_get(fx->zp, &st);
	return st.zone_file_freed;
}

/* A version replaced while a reader has it open stays whole for the reader;
 * one nobody holds is shrunk to nothing before it is let go, and STATUS
 * counts exactly its bytes. */
static void test_replaced_freed(void **state)
{
	struct fx *fx = *state;
	struct treq rv;
	struct fres r;
	struct stat sb;
	char *v1, *held;
	off_t size1, size2;
	int fd;

	fx->opts.zone_file = fx->zone_file;
	fx_start(fx);
	issue_many(fx, 1, 200);
	write_now(fx, &r);
	assert_int_equal(r.status, 0);
	assert_int_equal(freed(fx), 0);
	v1 = tzs_slurp(fx->zone_file);
	size1 = file_size(fx->zone_file);
	fd = open(fx->zone_file, O_RDONLY | O_CLOEXEC);
	assert_true(fd >= 0);

	/* v2 replaces v1, which the test holds open. */
	fx_revoke(fx, &rv, 5, 1);
	zonepub_submit(fx->zp, &rv.rq);
	RUN_UNTIL(fx, rv.done, "REVOKE");
	assert_int_equal(rv.status, 0);
	write_now(fx, &r);
	assert_int_equal(r.status, 0);
	size2 = file_size(fx->zone_file);
	assert_true(size2 != size1);
	/* v3 replaces v2, which nobody holds. The writer let go of v1 before it
	 * took v3, and lets go of v2 after answering. */
	fx_revoke(fx, &rv, 6, 1);
	zonepub_submit(fx->zp, &rv.rq);
	RUN_UNTIL(fx, rv.done, "REVOKE");
	write_now(fx, &r);
	assert_int_equal(r.status, 0);
	RUN_UNTIL(fx, freed(fx) != 0, "the replaced version freed");
	assert_int_equal(freed(fx), (uint64_t)size2);

	/* The held v1: unlinked, whole, readable to its end. */
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_nlink, 0);
	assert_int_equal(sb.st_size, size1);
	held = calloc(1, (size_t)size1 + 1);
	assert_non_null(held);
	assert_int_equal(pread(fd, held, (size_t)size1, 0), size1);
	assert_string_equal(held, v1);
	close(fd);
	free(held);
	free(v1);
	tzs_verify_zone_file(fx->zone_file);
	assert_no_tmp(fx);
}

/* The held write's file is the whole version it started with. */
static void test_held_file_is_its_serial(void **state)
{
	struct fx *fx = *state;
	struct hold h;
	struct treq rv;
	struct fres r1;
	char ref0[600];
	uint32_t s0;

	start_with_hook(fx, &h);
	issue_many(fx, 1, 64);
	s0 = zone_serial(zonepub_zone(fx->zp));
	reference(fx, "ref0.zone", ref0, sizeof(ref0));
	write_held(fx, &h, &r1);
	/* Several versions commit while it reads. */
	for (unsigned i = 0; i < 5; i++) {
		fx_revoke(fx, &rv, 3 + i * 11, 1);
		zonepub_submit(fx->zp, &rv.rq);
		RUN_UNTIL(fx, rv.done, "REVOKE");
		assert_int_equal(rv.status, 0);
	}
	assert_true(zone_serial(zonepub_zone(fx->zp)) != s0);
	hold_set(&h, false);
	RUN_UNTIL(fx, r1.done, "the held write's end");
	assert_int_equal(r1.status, 0);
	assert_int_equal(r1.serial, s0);
	tzs_assert_same_file(fx->zone_file, ref0);
	tzs_verify_zone_file(fx->zone_file);
	/* Closed before the hook's state goes (closing may write once more). */
	fx_stop(fx);
	hold_fini(&h);
}

/* Closing waits for the write in progress, then writes the last serial. */
static void test_close_writes_last(void **state)
{
	struct fx *fx = *state;
	struct hold h;
	struct treq rv;
	struct fres r1;
	char ref1[600];
	uint32_t s0;

	start_with_hook(fx, &h);
	issue_many(fx, 1, 40);
	s0 = zone_serial(zonepub_zone(fx->zp));
	write_held(fx, &h, &r1);
	fx_revoke(fx, &rv, 5, 1);
	zonepub_submit(fx->zp, &rv.rq);
	RUN_UNTIL(fx, rv.done, "REVOKE");
	assert_int_equal(rv.status, 0);
	reference(fx, "ref1.zone", ref1, sizeof(ref1));
	fx_close_begin(fx);
	for (int i = 0; i < 5; i++)
		uv_run(&fx->loop, UV_RUN_ONCE);
	assert_false(fx->closed);  /* the write holds the close */
	hold_set(&h, false);
	fx_stop(fx);
	assert_int_equal(r1.done, 1);
	assert_int_equal(r1.status, 0);
	assert_int_equal(r1.serial, s0);
	assert_int_equal(hold_entered(&h), 2);
	assert_true(h.serials[1] != s0);
	tzs_assert_same_file(fx->zone_file, ref1);
	tzs_verify_zone_file(fx->zone_file);
	hold_fini(&h);
}

struct pick {
	size_t want, n;
	uint8_t key[600];
	size_t klen;
	uint8_t *blob;
	size_t blen;
};

static int pick_row(void *ctx, const void *key, size_t klen, const void *data, size_t dlen)
{
	struct pick *p = ctx;

	if (++p->n != p->want)
		return 0;
	assert_true(klen <= sizeof(p->key));
	memcpy(p->key, key, klen);
	p->klen = klen;
	p->blob = malloc(dlen);
	assert_non_null(p->blob);
	memcpy(p->blob, data, dlen);
	p->blen = dlen;
	return 1;
}

/* A stored row that does not parse: the write fails naming it; the old
 * file stays; repaired, the next write succeeds. */
static void test_bad_row(void **state)
{
	struct fx *fx = *state;
	struct zonepub_status st;
	struct pick p = { .want = 5 };
	struct fres r;
	static const uint8_t junk[] = { 1, 0x00, 0x05, 0xff };
	store_t *w = NULL;
	char *before, *after;

	fx->opts.zone_file = fx->zone_file;
	fx_start(fx);
	issue_many(fx, 1, 20);
	write_now(fx, &r);
	assert_int_equal(r.status, 0);
	before = tzs_slurp(fx->zone_file);
	assert_int_equal(store_zone_foreach_prefix(fx->ro, "n", 1, pick_row, &p), 1);
	/* Spoil the fifth name row behind zonepub's back (it is idle). */
	assert_int_equal(store_open(&w, fx->db, NULL), 0);
	assert_int_equal(store_zone_put(w, p.key, p.klen, junk, sizeof(junk)), 0);
	write_now(fx, &r);
	assert_int_equal(r.status, ZONEPUB_EFORMAT);
	zonepub_status_get(fx->zp, &st);
	assert_int_equal(st.last_error, ZONEPUB_EFORMAT);
	if (strstr(st.last_error_msg, "row 5 (") == NULL ||
	    strstr(st.last_error_msg, "iotregistry.test.)") == NULL)
		fail_msg("the error does not name the row: %s", st.last_error_msg);
	after = tzs_slurp(fx->zone_file);
	assert_string_equal(before, after);
	assert_no_tmp(fx);
	free(after);
	/* Repaired. */
	assert_int_equal(store_zone_put(w, p.key, p.klen, p.blob, p.blen), 0);
	store_close(w);
	write_now(fx, &r);
	assert_int_equal(r.status, 0);
	after = tzs_slurp(fx->zone_file);
	assert_string_equal(before, after);
	free(after);
	free(before);
	free(p.blob);
}

/* The daemon's way down: its write's waiter closes zonepub from the
 * callback; the close completes once, with nothing written twice. */
struct closer {
	struct fx *fx;
	struct fres r;
};

static void close_from_done(void *arg, int status, uint32_t serial)
{
	struct closer *c = arg;

	file_done(&c->r, status, serial);
	fx_close_begin(c->fx);
}

static void test_close_from_callback(void **state)
{
	struct fx *fx = *state;
	struct closer c;
	uint32_t s;
	char ref[600];

	fx->opts.zone_file = fx->zone_file;
	fx_start(fx);
	issue_many(fx, 1, 20);
	s = zone_serial(zonepub_zone(fx->zp));
	reference(fx, "ref.zone", ref, sizeof(ref));
	memset(&c, 0, sizeof(c));
	c.fx = fx;
	assert_int_equal(zonepub_zone_file_write(fx->zp, close_from_done, &c), 0);
	RUN_UNTIL(fx, fx->closed, "the close");
	assert_int_equal(c.r.done, 1);
	assert_int_equal(c.r.status, 0);
	assert_int_equal(c.r.serial, s);
	tzs_assert_same_file(fx->zone_file, ref);
	fx_stop(fx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_file_equals_memory, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_held, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_held_file_is_its_serial, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_close_writes_last, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_bad_row, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_writer_priority, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_replaced_freed, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_close_from_callback, fx_setup, fx_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
