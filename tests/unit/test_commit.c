/*
 * Unit tests of signer/commit: items queued together run in one store
 * transaction; a failing item rolls its whole group back (undo + error for
 * each); COMMIT_ALONE items run outside transactions, in order; a fatal error
 * is reported once and stops the pipeline; done callbacks run on the loop,
 * never inside commit_submit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "signer/commit.h"
#include "signer/store.h"

struct env {
	store_t *st;
	int hook_calls;
	size_t hook_n;
	int hook_fail;
	int hook_in_txn;
	int hook_all_ran;
	uv_sem_t gate;      /* a blocking item waits on it */
	int fatal_calls;
	int fatal_err;
};

struct item {
	struct commit_item it;
	struct env *env;
	int n;              /* its number */
	int fail;           /* run returns this */
	int block;          /* run waits for the gate */
	int in_txn;         /* store_txn_active seen by run */
	int ran, undone, done, status;
	uv_thread_t done_thread;
	const char *key;    /* meta key written by run, NULL for none */
	int *order;         /* log of run order */
	int *n_order;
};

struct fx {
	char dir[64];
	char path[96];
	struct env env;
	uv_loop_t loop;
	commit_t *c;
	int done_count;
	int in_submit;
};

static struct fx *the_fx; /* test only: lets done callbacks count on the fixture */

static int
run_cb(struct commit_item *ci, void *envp)
{
	struct item *i = (struct item *)ci;
	struct env *env = envp;

	if (i->block)
		uv_sem_wait(&env->gate);
	i->ran++;
	i->in_txn = store_txn_active(env->st);
	if (i->order)
		i->order[(*i->n_order)++] = i->n;
	if (i->key && store_meta_set_u64(env->st, i->key, (uint64_t)i->n) != 0)
		return COMMIT_ERR_STORAGE;
	return i->fail;
}

static void
undo_cb(struct commit_item *ci, void *envp)
{
	(void)envp;
	((struct item *)ci)->undone++;
}

static void
done_cb(struct commit_item *ci, int status)
{
	struct item *i = (struct item *)ci;

	assert_int_equal(the_fx->in_submit, 0);
	i->done++;
	i->status = status;
	i->done_thread = uv_thread_self();
	the_fx->done_count++;
}

static void
on_fatal(void *arg, int err)
{
	struct env *env = arg;

	env->fatal_calls++;
	env->fatal_err = err;
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/regsign-commit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	assert_int_equal(store_open(&f->env.st, f->path, NULL), 0);
	assert_int_equal(uv_sem_init(&f->env.gate, 0), 0);
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(commit_new(&f->loop, f->env.st, &f->env, on_fatal, &f->env, &f->c), 0);
	the_fx = f;
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	commit_close(f->c);
	uv_run(&f->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	uv_sem_destroy(&f->env.gate);
	store_close(f->env.st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	the_fx = NULL;
	return 0;
}

static void
submit(struct fx *f, struct item *i)
{
	i->env = &f->env;
	i->it.run = run_cb;
	i->it.undo = undo_cb;
	i->it.done = done_cb;
	f->in_submit = 1;
	commit_submit(f->c, &i->it);
	f->in_submit = 0;
}

/* Runs the loop until @p n done callbacks have run (bounded). */
static void
wait_done(struct fx *f, int n)
{
	for (int k = 0; k < 10000 && f->done_count < n; k++) {
		uv_run(&f->loop, UV_RUN_NOWAIT);
		usleep(1000);
	}
	assert_int_equal(f->done_count, n);
}

static void
test_group_shares_transaction(void **state)
{
	struct fx *f = *state;
	struct item blocker = { .block = 1, .it.flags = COMMIT_ALONE };
	struct item items[10];
	struct commit_stats st;
	uv_thread_t self = uv_thread_self();

	memset(items, 0, sizeof(items));
	submit(f, &blocker);
	/* While the writer waits in the blocker, ten items queue up. */
	for (int i = 0; i < 10; i++) {
		items[i].n = i;
		submit(f, &items[i]);
	}
	assert_int_equal(commit_pending(f->c), 11);
	uv_sem_post(&f->env.gate);
	wait_done(f, 11);
	assert_int_equal(blocker.in_txn, 0); /* ALONE: outside any transaction */
	for (int i = 0; i < 10; i++) {
		assert_int_equal(items[i].ran, 1);
		assert_int_equal(items[i].done, 1);
		assert_int_equal(items[i].status, COMMIT_OK);
		assert_int_equal(items[i].undone, 0);
		assert_int_not_equal(items[i].in_txn, 0);
		assert_true(uv_thread_equal(&items[i].done_thread, &self));
	}
	commit_stats_get(f->c, &st);
	assert_int_equal(st.largest, 10);
	assert_int_equal(st.groups, 1);
	assert_int_equal(commit_pending(f->c), 0);
}

static void
test_failure_rolls_group_back(void **state)
{
	struct fx *f = *state;
	struct item blocker = { .block = 1, .it.flags = COMMIT_ALONE };
	struct item a = { .n = 1, .key = "a" }, b = { .n = 2, .fail = COMMIT_ERR_STORAGE },
		    c = { .n = 3, .key = "c" }, later = { .n = 4, .key = "later" };
	struct commit_stats st;
	uint64_t v;

	submit(f, &blocker);
	submit(f, &a);
	submit(f, &b);
	submit(f, &c);
	uv_sem_post(&f->env.gate);
	wait_done(f, 4);
	/* a ran and was undone, b failed, c never ran: all three get the error. */
	assert_int_equal(a.ran, 1);
	assert_int_equal(a.undone, 1);
	assert_int_equal(b.undone, 1);
	assert_int_equal(c.ran, 0);
	assert_int_equal(c.undone, 0);
	assert_int_equal(a.status, COMMIT_ERR_STORAGE);
	assert_int_equal(b.status, COMMIT_ERR_STORAGE);
	assert_int_equal(c.status, COMMIT_ERR_STORAGE);
	/* a's write was rolled back with the group. */
	assert_int_equal(store_meta_get_u64(f->env.st, "a", &v), STORE_ENOTFOUND);
	commit_stats_get(f->c, &st);
	assert_int_equal(st.failures, 1);
	/* The pipeline goes on: the next group commits. */
	submit(f, &later);
	wait_done(f, 5);
	assert_int_equal(later.status, COMMIT_OK);
	assert_int_equal(store_meta_get_u64(f->env.st, "later", &v), 0);
	assert_int_equal(v, 4);
	assert_int_equal(f->env.fatal_calls, 0);
}

static void
test_alone_keeps_order(void **state)
{
	struct fx *f = *state;
	struct item blocker = { .block = 1, .it.flags = COMMIT_ALONE };
	struct item it[5];
	int order[8], n = 0;

	memset(it, 0, sizeof(it));
	blocker.order = order;
	blocker.n_order = &n;
	blocker.n = 0;
	submit(f, &blocker);
	for (int i = 0; i < 5; i++) {
		it[i].n = i + 1;
		it[i].order = order;
		it[i].n_order = &n;
		if (i == 2)
			it[i].it.flags = COMMIT_ALONE;
		submit(f, &it[i]);
	}
	uv_sem_post(&f->env.gate);
	wait_done(f, 6);
	assert_int_equal(n, 6);
	for (int i = 0; i < 6; i++)
		assert_int_equal(order[i], i);
	assert_int_equal(it[2].in_txn, 0);
	assert_int_not_equal(it[1].in_txn, 0);
	assert_int_not_equal(it[3].in_txn, 0);
}

static void
test_fatal_stops(void **state)
{
	struct fx *f = *state;
	struct item blocker = { .block = 1, .it.flags = COMMIT_ALONE };
	struct item bad = { .n = 1, .fail = COMMIT_ERR_FATAL }, next = { .n = 2 },
		    after = { .n = 3 };

	submit(f, &blocker);
	submit(f, &bad);
	submit(f, &next);
	uv_sem_post(&f->env.gate);
	wait_done(f, 3);
	assert_int_equal(bad.status, COMMIT_ERR_FATAL);
	assert_int_equal(next.status, COMMIT_ERR_FATAL);
	assert_int_equal(f->env.fatal_calls, 1);
	/* Nothing runs any more. */
	submit(f, &after);
	wait_done(f, 4);
	assert_int_equal(after.ran, 0);
	assert_int_equal(after.status, COMMIT_ERR_FATAL);
	assert_int_equal(f->env.fatal_calls, 1);
}

static int
group_hook(void *envp, struct commit_item *first, size_t n)
{
	struct env *env = envp;
	size_t k = 0;

	env->hook_calls++;
	env->hook_n = n;
	env->hook_in_txn = store_txn_active(env->st);
	/* Every item of the group ran before the hook (checked on the main thread). */
	env->hook_all_ran = 1;
	for (struct commit_item *it = first; it && k < n; it = commit_item_next(it), k++)
		if (((struct item *)it)->ran != 1)
			env->hook_all_ran = 0;
	if (store_meta_set_u64(env->st, "group", (uint64_t)n) != 0)
		return COMMIT_ERR_STORAGE;
	return env->hook_fail;
}

static void
test_group_hook(void **state)
{
	struct fx *f = *state;
	struct item blocker = { .block = 1, .it.flags = COMMIT_ALONE };
	struct item it[3], bad = { .n = 9, .key = "bad" };
	uint64_t v;

	memset(it, 0, sizeof(it));
	commit_group_hook_set(f->c, group_hook);
	submit(f, &blocker);
	for (int i = 0; i < 3; i++)
		submit(f, &it[i]);
	uv_sem_post(&f->env.gate);
	wait_done(f, 4);
	assert_int_equal(f->env.hook_calls, 1); /* ALONE items get no hook */
	assert_int_equal(f->env.hook_n, 3);
	assert_int_equal(f->env.hook_all_ran, 1);
	assert_int_not_equal(f->env.hook_in_txn, 0);
	assert_int_equal(store_meta_get_u64(f->env.st, "group", &v), 0);
	assert_int_equal(v, 3);
	/* A failing hook rolls the group back, items undone. */
	f->env.hook_fail = COMMIT_ERR_STORAGE;
	submit(f, &bad);
	wait_done(f, 5);
	assert_int_equal(bad.status, COMMIT_ERR_STORAGE);
	assert_int_equal(bad.undone, 1);
	assert_int_equal(store_meta_get_u64(f->env.st, "bad", &v), STORE_ENOTFOUND);
	assert_int_equal(store_meta_get_u64(f->env.st, "group", &v), 0);
	assert_int_equal(v, 3);
}

static void
test_close_runs_queued(void **state)
{
	struct fx *f = *state;
	struct item a = { .n = 1, .key = "x" };
	uint64_t v;

	submit(f, &a);
	commit_close(f->c); /* joins the writer after what was queued, runs done */
	f->c = NULL;
	assert_int_equal(a.done, 1);
	assert_int_equal(a.status, COMMIT_OK);
	assert_int_equal(store_meta_get_u64(f->env.st, "x", &v), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_group_shares_transaction, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failure_rolls_group_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_alone_keeps_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fatal_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_hook, setup, teardown),
		cmocka_unit_test_setup_teardown(test_close_runs_queued, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
