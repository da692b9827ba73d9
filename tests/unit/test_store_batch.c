/*
 * Unit tests of the store's batched audit rows (store_audit_append_rows:
 * one INSERT per power-of-two chunk) and its pre-commit hook, which the
 * audit log uses to write a transaction's records at its commit.
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

#include "signer/store.h"

struct fx {
	char dir[64];
	char path[96];
	store_t *st;
	/* what the hooks saw */
	int precommits, commits, rollbacks, fail_with;
	char lines[200][32];
	struct store_audit_row rows[200];
	size_t nrows;
};

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/regsign-storebatch-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	assert_int_equal(store_open(&f->st, f->path, NULL), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char cmd[128];

	store_close(f->st);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Rows first..first+n-1, each line naming its seq. */
static void
rows_make(struct fx *f, uint64_t first, size_t n)
{
	assert_true(n <= 200);
	for (size_t i = 0; i < n; i++) {
		int len = snprintf(f->lines[i], sizeof(f->lines[i]), "{\"seq\":%llu}",
		                   (unsigned long long)(first + i));
		f->rows[i] = (struct store_audit_row){ first + i, f->lines[i], (size_t)len };
	}
	f->nrows = n;
}

struct seen {
	uint64_t next;
	size_t n;
};

static int
seen_cb(void *ctx, uint64_t seq, const char *line, size_t len)
{
	struct seen *s = ctx;
	char want[32];
	int wl = snprintf(want, sizeof(want), "{\"seq\":%llu}", (unsigned long long)seq);

	assert_int_equal(seq, s->next);
	assert_int_equal(len, (size_t)wl);
	assert_memory_equal(line, want, len);
	s->next++;
	s->n++;
	return 0;
}

static void
test_rows_in_chunks(void **state)
{
	struct fx *f = *state;
	struct seen s = { 1, 0 };
	uint64_t cnt = 0;

	/* 1 + 127 (64 + 32 + 16 + 8 + 4 + 2 + 1) + 71 rows, the last run alone. */
	assert_int_equal(store_txn_begin(f->st), 0);
	rows_make(f, 1, 1);
	assert_int_equal(store_audit_append_rows(f->st, f->rows, f->nrows), 0);
	rows_make(f, 2, 127);
	assert_int_equal(store_audit_append_rows(f->st, f->rows, f->nrows), 0);
	assert_int_equal(store_txn_commit(f->st), 0);
	rows_make(f, 129, 71);
	assert_int_equal(store_audit_append_rows(f->st, f->rows, f->nrows), 0);
	assert_int_equal(store_audit_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 199);
	assert_int_equal(store_audit_foreach(f->st, 1, seen_cb, &s), 0);
	assert_int_equal(s.n, 199);

	/* A taken seq fails the call; the caller's transaction rolls it back. */
	assert_int_equal(store_txn_begin(f->st), 0);
	rows_make(f, 200, 3);
	assert_int_equal(store_audit_append_rows(f->st, f->rows, 3), 0);
	rows_make(f, 198, 4);
	assert_int_equal(store_audit_append_rows(f->st, f->rows, 4), STORE_EEXISTS);
	assert_int_equal(store_txn_rollback(f->st), 0);
	assert_int_equal(store_audit_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 199);

	/* Bad rows are refused before anything is written. */
	rows_make(f, 300, 2);
	f->rows[1].seq = 0;
	assert_int_equal(store_audit_append_rows(f->st, f->rows, 2), STORE_EINVAL);
	rows_make(f, 300, 2);
	f->rows[0].len = 0;
	assert_int_equal(store_audit_append_rows(f->st, f->rows, 2), STORE_EINVAL);
	assert_int_equal(store_audit_append_rows(f->st, NULL, 2), STORE_EINVAL);
	assert_int_equal(store_audit_append_rows(f->st, NULL, 0), 0);
	assert_int_equal(store_audit_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 199);
}

static int
pre_cb(void *ctx)
{
	struct fx *f = ctx;

	f->precommits++;
	if (f->fail_with)
		return f->fail_with;
	return store_audit_append_rows(f->st, f->rows, f->nrows);
}

static void
on_commit(void *ctx)
{
	((struct fx *)ctx)->commits++;
}

static void
on_rollback(void *ctx)
{
	((struct fx *)ctx)->rollbacks++;
}

static void
test_precommit_hook(void **state)
{
	struct fx *f = *state;
	uint64_t cnt = 0;

	store_txn_precommit_set(f->st, pre_cb, f);
	store_txn_hooks_set(f->st, on_commit, on_rollback, f);

	/* Its rows commit with the transaction. */
	rows_make(f, 1, 10);
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_meta_set_u64(f->st, "k", 1), 0);
	assert_int_equal(store_audit_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 0);
	assert_int_equal(store_txn_commit(f->st), 0);
	assert_int_equal(f->precommits, 1);
	assert_int_equal(f->commits, 1);
	assert_int_equal(store_audit_count(f->st, &cnt), 0);
	assert_int_equal(cnt, 10);

	/* A rollback never calls it. */
	rows_make(f, 11, 5);
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_txn_rollback(f->st), 0);
	assert_int_equal(f->precommits, 1);
	assert_int_equal(f->rollbacks, 1);

	/* Its failure rolls the whole transaction back and is returned. */
	f->fail_with = STORE_EFULL;
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_meta_set_u64(f->st, "k", 2), 0);
	assert_int_equal(store_txn_commit(f->st), STORE_EFULL);
	assert_int_equal(store_txn_active(f->st), 0);
	assert_int_equal(f->rollbacks, 2);
	assert_int_equal(f->commits, 1);
	{
		uint64_t v = 0;
		assert_int_equal(store_meta_get_u64(f->st, "k", &v), 0);
		assert_int_equal(v, 1);
	}
	/* So does a failing write of its own (a taken seq). */
	f->fail_with = 0;
	rows_make(f, 5, 2);
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_meta_set_u64(f->st, "k", 3), 0);
	assert_int_equal(store_txn_commit(f->st), STORE_EEXISTS);
	assert_int_equal(f->rollbacks, 3);
	{
		uint64_t v = 0;
		assert_int_equal(store_meta_get_u64(f->st, "k", &v), 0);
		assert_int_equal(v, 1);
	}

	/* Unregistered: commits run without it. */
	store_txn_precommit_set(f->st, NULL, NULL);
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_txn_commit(f->st), 0);
	assert_int_equal(f->precommits, 3);
	store_txn_hooks_set(f->st, NULL, NULL, NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rows_in_chunks, setup, teardown),
		cmocka_unit_test_setup_teardown(test_precommit_hook, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
