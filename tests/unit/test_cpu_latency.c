/*
 * test_cpu_latency.c - the CPU wake-up latency limit held while requests are
 * in (signer/cpu_latency.c), written to a plain file in place of
 * /dev/cpu_dma_latency so that every value written can be read back in
 * order: taken at the first request, kept while requests are in and for the
 * hold after the last, released once, taken again by the next request; a
 * failing write reported and retried. The real device is exercised by the
 * daemon's test (tests/integration/test_daemon_cpu_latency.py).
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "signer/cpu_latency.h"

#define HOLD_MS 60

struct env {
	uv_loop_t loop;
	char dir[64];
	char path[96];
};

static int
setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	int fd;

	assert_non_null(e);
	assert_int_equal(uv_loop_init(&e->loop), 0);
	snprintf(e->dir, sizeof(e->dir), "/tmp/regsign-cpulat-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/qos", e->dir);
	fd = open(e->path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	close(fd);
	*state = e;
	return 0;
}

static int
teardown(void **state)
{
	struct env *e = *state;

	/* Every handle closed: the loop closes cleanly. */
	uv_run(&e->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	unlink(e->path);
	rmdir(e->dir);
	free(e);
	return 0;
}

/* The values written so far, in order; returns how many (at most @p max). */
static size_t
written(const struct env *e, int32_t *v, size_t max)
{
	int fd = open(e->path, O_RDONLY);
	ssize_t n;

	assert_true(fd >= 0);
	n = read(fd, v, max * sizeof(*v));
	close(fd);
	assert_true(n >= 0 && n % (ssize_t)sizeof(*v) == 0);
	return (size_t)n / sizeof(*v);
}

static void
fired(uv_timer_t *t)
{
	*(int *)t->data = 1;
}

/* Runs the loop for @p ms of its own time. */
static void
run_for(struct env *e, uint64_t ms)
{
	uv_timer_t t;
	int done = 0;

	uv_timer_init(&e->loop, &t);
	t.data = &done;
	uv_timer_start(&t, fired, ms, 0);
	while (!done)
		uv_run(&e->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&t, NULL);
	uv_run(&e->loop, UV_RUN_NOWAIT);
}

/* Runs the loop until a second value is written (the release), at most 20
 * holds; it must come no sooner than the hold after @p since (loop time). */
static void
run_until_released(struct env *e, uint64_t since)
{
	int32_t v[8];

	while (written(e, v, 8) == 1) {
		assert_true(uv_now(&e->loop) - since < 20 * HOLD_MS);
		run_for(e, 5);
	}
	assert_true(uv_now(&e->loop) - since >= HOLD_MS);
}

static void
test_open_errors(void **state)
{
	struct env *e = *state;
	cpu_latency_t *cl = NULL;
	char missing[128];

	snprintf(missing, sizeof(missing), "%s/none/qos", e->dir);
	assert_int_equal(cpu_latency_open(&e->loop, missing, 0, HOLD_MS, &cl), -ENOENT);
	assert_null(cl);
	assert_int_equal(cpu_latency_open(&e->loop, e->path, -1, HOLD_MS, &cl), -EINVAL);
	assert_int_equal(cpu_latency_open(&e->loop, e->path, 1000001, HOLD_MS, &cl), -EINVAL);
	assert_int_equal(cpu_latency_open(&e->loop, e->path, 0, 0, &cl), -EINVAL);
	assert_int_equal(cpu_latency_open(NULL, e->path, 0, HOLD_MS, &cl), -EINVAL);
	/* NULL handles are no-ops. */
	assert_int_equal(cpu_latency_note(NULL, 3), 0);
	cpu_latency_close(NULL);
}

static void
test_hold_and_release(void **state)
{
	struct env *e = *state;
	cpu_latency_t *cl = NULL;
	struct cpu_latency_stats st;
	int32_t v[8];
	uint64_t t0;

	assert_int_equal(cpu_latency_open(&e->loop, e->path, 7, HOLD_MS, &cl), 0);
	/* Opening holds nothing. */
	run_for(e, 2 * HOLD_MS);
	assert_int_equal(written(e, v, 8), 0);

	/* The first request takes the limit; more requests write nothing more. */
	assert_int_equal(cpu_latency_note(cl, 1), 0);
	assert_int_equal(cpu_latency_note(cl, 2), 0);
	assert_int_equal(cpu_latency_note(cl, 1), 0);
	assert_int_equal(written(e, v, 8), 1);
	assert_int_equal(v[0], 7);

	/* Requests in for longer than the hold: still held. */
	run_for(e, 3 * HOLD_MS);
	assert_int_equal(written(e, v, 8), 1);
	cpu_latency_stats_get(cl, &st);
	assert_true(st.held);
	assert_int_equal(st.holds, 1);
	assert_int_equal(st.limit_us, 7);
	assert_int_equal(st.hold_ms, HOLD_MS);

	/* The last one answered: released once, not before the hold has passed. */
	uv_update_time(&e->loop);
	t0 = uv_now(&e->loop);
	assert_int_equal(cpu_latency_note(cl, 0), 0);
	run_for(e, HOLD_MS / 2);
	assert_int_equal(written(e, v, 8), 1);
	run_until_released(e, t0);
	assert_int_equal(written(e, v, 8), 2);
	assert_int_equal(v[1], CPU_LATENCY_NONE);
	cpu_latency_stats_get(cl, &st);
	assert_false(st.held);
	run_for(e, 2 * HOLD_MS);
	assert_int_equal(written(e, v, 8), 2);

	/* The next request takes it again. */
	assert_int_equal(cpu_latency_note(cl, 1), 0);
	assert_int_equal(written(e, v, 8), 3);
	assert_int_equal(v[2], 7);
	cpu_latency_stats_get(cl, &st);
	assert_true(st.held);
	assert_int_equal(st.holds, 2);
	cpu_latency_close(cl);
}

/* A request that comes and goes within the hold starts the hold again. */
static void
test_hold_extended(void **state)
{
	struct env *e = *state;
	cpu_latency_t *cl = NULL;
	int32_t v[8];
	uint64_t t_last;

	assert_int_equal(cpu_latency_open(&e->loop, e->path, 0, HOLD_MS, &cl), 0);
	assert_int_equal(cpu_latency_note(cl, 1), 0);
	assert_int_equal(cpu_latency_note(cl, 0), 0);
	run_for(e, HOLD_MS * 2 / 3);
	assert_int_equal(cpu_latency_note(cl, 1), 0);
	assert_int_equal(cpu_latency_note(cl, 0), 0);
	t_last = uv_now(&e->loop);
	run_for(e, HOLD_MS * 2 / 3);
	/* 4/3 of the hold after the first answer, 2/3 after the last: held. */
	assert_int_equal(written(e, v, 8), 1);
	assert_int_equal(v[0], 0);
	run_until_released(e, t_last);
	assert_int_equal(written(e, v, 8), 2);
	assert_int_equal(v[1], CPU_LATENCY_NONE);
	cpu_latency_close(cl);
}

/* A write the kernel refuses is reported, nothing is counted as held, and
 * the next request tries again. */
static void
test_write_fails(void **state)
{
	struct env *e = *state;
	cpu_latency_t *cl = NULL;
	struct cpu_latency_stats st;

	assert_int_equal(cpu_latency_open(&e->loop, "/dev/full", 0, HOLD_MS, &cl), 0);
	assert_int_equal(cpu_latency_note(cl, 1), -ENOSPC);
	cpu_latency_stats_get(cl, &st);
	assert_false(st.held);
	assert_int_equal(st.holds, 0);
	assert_int_equal(cpu_latency_note(cl, 2), -ENOSPC);
	/* Going idle writes nothing and fails nothing. */
	assert_int_equal(cpu_latency_note(cl, 0), 0);
	run_for(e, 2 * HOLD_MS);
	cpu_latency_close(cl);
}

/* Closed while held: the handle goes at once (the kernel withdraws the
 * request with the file), and the loop closes cleanly (teardown). */
static void
test_close_while_held(void **state)
{
	struct env *e = *state;
	cpu_latency_t *cl = NULL;
	int32_t v[8];

	assert_int_equal(cpu_latency_open(&e->loop, e->path, 3, HOLD_MS, &cl), 0);
	assert_int_equal(cpu_latency_note(cl, 1), 0);
	cpu_latency_close(cl);
	run_for(e, 2 * HOLD_MS);
	assert_int_equal(written(e, v, 8), 1);
	assert_int_equal(v[0], 3);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_and_release, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hold_extended, setup, teardown),
		cmocka_unit_test_setup_teardown(test_write_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_while_held, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
