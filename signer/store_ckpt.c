/*
 * store_ckpt.c - WAL checkpoints outside SQLite's automatic one.
 *
 * SQLite's automatic checkpoint runs inside the COMMIT that pushes the WAL
 * past its threshold, so one transaction in a few hundred also copies the
 * WAL into the database file and fsyncs it. The commit pipeline
 * (signer/commit.c) does that on a thread of its own instead: it replaces
 * the automatic checkpoint with a WAL hook that counts frames, and
 * checkpoints through a second connection to the same file, which SQLite's
 * WAL allows while the first connection keeps appending. This file gives it
 * those pieces without exposing the SQLite handles.
 */
#include <stdlib.h>

#include "signer/store_int.h"

struct store_ckpt {
	sqlite3 *db;
};

/* Whether the store's connection is in WAL mode: 1, 0, or a store error. */
static int
wal_mode(store_t *st)
{
	sqlite3_stmt *s = NULL;
	int rc = sqlite3_prepare_v2(st->db, "PRAGMA journal_mode", -1, &s, NULL), r;

	if (rc != SQLITE_OK) {
		r = store__map_rc(sqlite3_extended_errcode(st->db));
		goto out;
	}
	if ((rc = sqlite3_step(s)) != SQLITE_ROW) {
		r = store__map_rc(rc);
		if (r == 0)
			r = STORE_ESQL;
		goto out;
	}
	r = sqlite3_stricmp((const char *)sqlite3_column_text(s, 0), "wal") == 0;
out:
	sqlite3_finalize(s);
	return r;
}

int
store_ckpt_open(store_t *st, store_ckpt_t **out)
{
	const char *path;
	sqlite3_vfs *vfs = NULL;
	sqlite3_stmt *s = NULL;
	store_ckpt_t *ck = NULL;
	int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	int r, rc;

	*out = NULL;
	if (st == NULL)
		return STORE_EINVAL;
	path = sqlite3_db_filename(st->db, "main");
	if (path == NULL || *path == '\0')
		return 0; /* in memory: no WAL, nothing to checkpoint */
	if ((r = wal_mode(st)) <= 0)
		return r;
	if ((ck = calloc(1, sizeof(*ck))) == NULL)
		return STORE_ENOMEM;
	/* The same VFS as the store's, so that a test's fault injection
	 * reaches the checkpoints too. */
	(void)sqlite3_file_control(st->db, "main", SQLITE_FCNTL_VFS_POINTER, &vfs);
	rc = sqlite3_open_v2(path, &ck->db, flags, vfs ? vfs->zName : NULL);
	if (rc != SQLITE_OK) {
		r = ck->db ? store__map_rc(sqlite3_extended_errcode(ck->db)) : STORE_ENOMEM;
		goto out;
	}
	/* Reading once opens the connection's WAL, which a checkpoint needs. */
	if (sqlite3_prepare_v2(ck->db, "SELECT count(*) FROM sqlite_schema", -1, &s, NULL) !=
		    SQLITE_OK ||
	    (rc = sqlite3_step(s)) != SQLITE_ROW) {
		r = store__map_rc(sqlite3_extended_errcode(ck->db));
		if (r == 0)
			r = STORE_ESQL;
		goto out;
	}
	*out = ck;
	ck = NULL;
	r = 0;
out:
	sqlite3_finalize(s);
	store_ckpt_close(ck);
	return r;
}

void
store_ckpt_close(store_ckpt_t *ck)
{
	if (ck == NULL)
		return;
	sqlite3_close(ck->db);
	free(ck);
}

/* A PASSIVE checkpoint of @p db: 0, STORE_EBUSY or the error mapped. */
static int
checkpoint(sqlite3 *db, int *done)
{
	int log = 0, n = 0;
	int rc = sqlite3_wal_checkpoint_v2(db, "main", SQLITE_CHECKPOINT_PASSIVE, &log, &n);

	if (done)
		*done = rc == SQLITE_OK ? n : 0;
	return store__map_rc(rc);
}

int
store_ckpt_run(store_ckpt_t *ck, int *done)
{
	if (ck == NULL)
		return STORE_EINVAL;
	return checkpoint(ck->db, done);
}

int
store_checkpoint(store_t *st, int *done)
{
	if (st == NULL)
		return STORE_EINVAL;
	return checkpoint(st->db, done);
}

static int
wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
	store_t *st = arg;

	(void)db;
	(void)name;
	if (st->wal_fn)
		st->wal_fn(st->wal_arg, frames);
	return SQLITE_OK;
}

void
store_wal_hook_set(store_t *st, store_wal_fn fn, void *arg)
{
	st->wal_fn = fn;
	st->wal_arg = arg;
	if (fn)
		sqlite3_wal_hook(st->db, wal_hook, st);
	else
		sqlite3_wal_autocheckpoint(st->db, 1000); /* SQLite's default */
}
