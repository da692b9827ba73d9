/*
 * commit_fixture.h - what the tests of the commit pipeline share: a state
 * database in a fresh temporary directory, a libuv loop, and the pipeline
 * (signer/commit.c) over them. Used by test_commit_gate and test_commit_ckpt;
 * every failure fails the calling test (cmocka assertions).
 */
#ifndef REGSIGN_TEST_COMMIT_FIXTURE_H
#define REGSIGN_TEST_COMMIT_FIXTURE_H

#include <uv.h>

#include "signer/commit.h"
#include "signer/store.h"

struct commit_fixture {
	char dir[64];    /**< the temporary directory */
	char path[96];   /**< the database, dir/state.db */
	store_t *st;     /**< the store; the pipeline's writer owns it while it runs */
	uv_loop_t loop;
	commit_t *c;
};

/**
 * Makes /tmp/<@p prefix>-XXXXXX, opens its state.db with SQLite VFS @p vfs
 * (NULL: the default), a loop, and the pipeline with @p env for every run
 * and @p fatal (may be NULL) called with @p fatal_arg. @p prefix is at most
 * 40 characters.
 */
void commit_fixture_open(struct commit_fixture *cf, const char *prefix, const char *vfs,
			 void *env, void (*fatal)(void *arg, int store_err), void *fatal_arg);

/**
 * Closes the pipeline, runs the loop until nothing is left and closes it
 * (which must succeed: no handle is left open), closes the store and
 * removes the database, its WAL and shared-memory files and the directory.
 */
void commit_fixture_close(struct commit_fixture *cf);

/** Runs the loop one turn at a time until *@p done is set (bounded: fails after 100000 turns). */
void commit_fixture_wait(struct commit_fixture *cf, const int *done);

#endif
