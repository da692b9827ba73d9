/*
 * commit_fixture.c - the store, loop and commit pipeline the commit tests
 * share (see commit_fixture.h).
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

#include "tests/unit/commit_fixture.h"

void
commit_fixture_open(struct commit_fixture *cf, const char *prefix, const char *vfs,
		    void *env, void (*fatal)(void *arg, int store_err), void *fatal_arg)
{
	struct store_open_opts o;

	memset(cf, 0, sizeof(*cf));
	memset(&o, 0, sizeof(o));
	o.vfs = vfs;
	snprintf(cf->dir, sizeof(cf->dir), "/tmp/%s-XXXXXX", prefix);
	assert_non_null(mkdtemp(cf->dir));
	snprintf(cf->path, sizeof(cf->path), "%s/state.db", cf->dir);
	assert_int_equal(store_open(&cf->st, cf->path, &o), 0);
	assert_int_equal(uv_loop_init(&cf->loop), 0);
	assert_int_equal(commit_new(&cf->loop, cf->st, env, fatal, fatal_arg, &cf->c), 0);
}

void
commit_fixture_close(struct commit_fixture *cf)
{
	char p[128];

	commit_close(cf->c);
	uv_run(&cf->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&cf->loop), 0);
	store_close(cf->st);
	unlink(cf->path);
	snprintf(p, sizeof(p), "%s-wal", cf->path);
	unlink(p);
	snprintf(p, sizeof(p), "%s-shm", cf->path);
	unlink(p);
	rmdir(cf->dir);
}

void
commit_fixture_wait(struct commit_fixture *cf, const int *done)
{
	for (int n = 0; !*done && n < 100000; n++)
		uv_run(&cf->loop, UV_RUN_ONCE);
	assert_true(*done);
}
