/*
 * commit.c - the writer thread and its group transactions.
 *
 * The queue and the list of finished items are protected by one mutex. The
 * writer takes the whole queue at once (that is the group), runs it, and
 * appends the items to the finished list; a uv_async wakes the loop, which
 * runs their done callbacks in order.
 *
 * WAL checkpoints run on a thread of their own, with a connection of their
 * own, never inside a group's COMMIT. SQLite's automatic checkpoint runs in
 * the COMMIT that pushes the WAL past its threshold: it copies the pages
 * into the database file and fsyncs it, which made every ~100th commit take
 * several to hundreds of milliseconds, and every request of that group (and
 * of the next, queued behind it) waited for it. Here the writer's WAL hook
 * only counts the WAL's frames after each commit and wakes the
 * checkpointer, which runs a PASSIVE checkpoint (it never waits for, nor
 * blocks, the writer: SQLite's WAL lets one writer append while another
 * connection copies the frames already committed). The WAL starts again
 * from its beginning only when a transaction begins with every frame
 * copied, so once it has grown past its restart size (64 MiB by default)
 * every commit also wakes the checkpointer for the few frames it has not
 * copied yet: the first such catch-up that ends before the next BEGIN lets
 * the WAL restart. (The
 * writer used to copy them itself between groups; the fsync of the
 * database file that costs then delayed the next request's commit, about
 * one revocation in fifty at 100/s.) If the checkpointer falls far behind,
 * the writer checkpoints inside a commit, as SQLite would have.
 * A checkpoint that fails with an I/O error leaves the database file in an
 * unknown state: it is fatal like a failed commit.
 *
 * The checkpointer's connection, the WAL hook and the checkpoints themselves
 * are the store's (store_ckpt_open(), store_wal_hook_set(), store_ckpt_run(),
 * store_checkpoint()).
 */
#include "signer/commit.h"

#include <stdlib.h>
#include <time.h>


/*
 * The default WAL thresholds (commit_wal_limits_set() can change them).
 * Every checkpoint costs two device flushes beside the commits' own (the
 * WAL's, then the database file's), and every restart of the WAL from its
 * beginning one more inside the commit that restarts it (SQLite syncs the
 * new WAL header before the first frame after it). With a checkpoint every
 * 256 frames and a restart as soon as one caught up, a REVOKE stream at
 * 100/s (~1,300 frames/s) had ~8 checkpoints and ~4 restarts a second, and
 * their flushes collided with the commits: REVOKE at 1M, p99 9.2-12.2 ms
 * against 4.9-8.9 ms with the defaults below (copies of one state, in
 * alternation). A checkpoint now copies 8 MiB of frames at a time (the same
 * hot pages once), and the WAL restarts once it holds 64 MiB.
 */
#define CKPT_PAGES_DEFAULT 2048
#define CKPT_RESTART_PAGES_DEFAULT 16384
#define CKPT_HARD_PAGES_DEFAULT 65536

struct commit {
	uv_loop_t *loop;
	store_t *st;
	void *env;
	void (*fatal)(void *arg, int err);
	void *arg;
	commit_group_fn group_hook;
	int trace;        /* stage times wanted; read by the writer under mu */

	uv_thread_t thread;
	uv_mutex_t mu;
	uv_cond_t cv;
	uv_async_t async;
	int thread_started;

	/* Under mu. */
	struct commit_item *q_head, *q_tail;       /* waiting for the writer */
	struct commit_item *done_head, *done_tail; /* waiting for the loop */
	int stop;
	int failed;       /* a fatal error happened: run nothing more */
	int fatal_err;    /* the store error behind it */
	int fatal_told;   /* loop side: fatal callback called */
	struct commit_stats stats;

	uint64_t pending; /* loop side: submitted, not done */

	/* The checkpointer: its connection and thread (cv_ckpt, under mu). */
	store_ckpt_t *ckpt;
	uv_thread_t ckpt_thread;
	int ckpt_started;
	uv_cond_t cv_ckpt;
	int ckpt_wanted;
	int ckpt_stop;
	int ckpt_base;    /* WAL frames already checkpointed (restart: 0) */
	int wal_pages;    /* WAL frames after the latest commit */
	int ckpt_running;
	struct commit_wal_limits lim; /* under mu */
};

static void
list_append(struct commit_item **head, struct commit_item **tail, struct commit_item *it)
{
	it->next = NULL;
	if (*tail)
		(*tail)->next = it;
	else
		*head = it;
	*tail = it;
}

/* Maps a store error to the status items see. */
static int
store_status(int err)
{
	if (err == 0)
		return COMMIT_OK;
	return store_error_is_fatal(err) ? COMMIT_ERR_FATAL : COMMIT_ERR_STORAGE;
}

/* Marks the pipeline failed (any thread, mu not held); the loop hears it. */
static void
fail_fatal(commit_t *c, int err)
{
	uv_mutex_lock(&c->mu);
	if (!c->failed) {
		c->failed = 1;
		c->fatal_err = err;
	}
	uv_mutex_unlock(&c->mu);
	uv_async_send(&c->async);
}

/* Whether a checkpoint's store error means the file's state is unknown:
 * the error, or 0 (done, busy, or an error that changed nothing). */
static int
ckpt_fatal(int e)
{
	return e != 0 && store_error_is_fatal(e) ? e : 0;
}

/*
 * Writer thread, inside each commit that wrote the WAL: @p pages frames are
 * in it now. Wakes the checkpointer when enough are new; checkpoints here
 * only when it fell far behind.
 */
static void
wal_hook(void *arg, int pages)
{
	commit_t *c = arg;
	int wake = 0, hard = 0, e, done = 0;

	uv_mutex_lock(&c->mu);
	c->wal_pages = pages;
	if (pages < c->ckpt_base)
		c->ckpt_base = 0; /* the WAL restarted from its beginning */
	if ((pages - c->ckpt_base >= c->lim.ckpt_pages ||
	     (pages >= c->lim.restart_pages && c->ckpt_base < pages)) &&
	    !c->ckpt_stop) {
		wake = !c->ckpt_wanted;
		c->ckpt_wanted = 1;
	}
	hard = pages - c->ckpt_base >= c->lim.hard_pages;
	uv_mutex_unlock(&c->mu);
	if (wake)
		uv_cond_signal(&c->cv_ckpt);
	if (hard) {
		e = store_checkpoint(c->st, &done);
		if (ckpt_fatal(e))
			fail_fatal(c, ckpt_fatal(e));
		uv_mutex_lock(&c->mu);
		if (e == 0) {
			if (done > c->ckpt_base)
				c->ckpt_base = done;
			c->stats.checkpoints_inline++;
		}
		uv_mutex_unlock(&c->mu);
	}
}

/* The checkpointer thread. */
static void
ckpt_main(void *arg)
{
	commit_t *c = arg;

	for (;;) {
		int done = 0, e, catch_up;

		uv_mutex_lock(&c->mu);
		while (!c->ckpt_wanted && !c->ckpt_stop)
			uv_cond_wait(&c->cv_ckpt, &c->mu);
		if (c->ckpt_stop || c->failed) {
			uv_mutex_unlock(&c->mu);
			break;
		}
		c->ckpt_wanted = 0;
		c->ckpt_running = 1;
		catch_up = c->wal_pages >= c->lim.restart_pages;
		uv_mutex_unlock(&c->mu);
		e = store_ckpt_run(c->ckpt, &done);
		uv_mutex_lock(&c->mu);
		c->ckpt_running = 0;
		if (e == 0) {
			c->stats.checkpoints++;
			c->stats.checkpoints_idle += catch_up;
			if (done > c->ckpt_base)
				c->ckpt_base = done;
		}
		uv_mutex_unlock(&c->mu);
		if (ckpt_fatal(e)) {
			fail_fatal(c, ckpt_fatal(e));
			break;
		}
	}
}

/*
 * Opens the checkpointer's connection to the writer's database (same file,
 * same VFS, so fault injection in tests reaches it too) and hooks the
 * writer's WAL. Without WAL (a store not in WAL mode cannot happen in the
 * daemon, but a test may use one) nothing is started and SQLite's own
 * automatic checkpoint stays. 0 or COMMIT_ERR_STORAGE.
 */
static int
ckpt_open(commit_t *c)
{
	if (store_ckpt_open(c->st, &c->ckpt) != 0)
		return COMMIT_ERR_STORAGE;
	if (c->ckpt == NULL)
		return COMMIT_OK; /* in memory or not WAL: nothing to checkpoint */
	if (uv_thread_create(&c->ckpt_thread, ckpt_main, c) != 0) {
		store_ckpt_close(c->ckpt);
		c->ckpt = NULL;
		return COMMIT_ERR_STORAGE;
	}
	c->ckpt_started = 1;
	/* From here on only the writer thread touches the writer's connection,
	 * and its WAL hook replaces SQLite's automatic checkpoint. */
	store_wal_hook_set(c->st, wal_hook, c);
	return COMMIT_OK;
}

/* Stops the checkpointer and gives the writer's connection SQLite's
 * automatic checkpoint back (after the writer stopped). */
static void
ckpt_close(commit_t *c)
{
	if (!c->ckpt_started)
		return;
	uv_mutex_lock(&c->mu);
	c->ckpt_stop = 1;
	uv_mutex_unlock(&c->mu);
	uv_cond_signal(&c->cv_ckpt);
	uv_thread_join(&c->ckpt_thread);
	c->ckpt_started = 0;
	store_ckpt_close(c->ckpt);
	c->ckpt = NULL;
	store_wal_hook_set(c->st, NULL, NULL); /* SQLite's automatic checkpoint again */
}

/* Writer thread: hands a run list to the loop. */
static void
finish(commit_t *c, struct commit_item *head)
{
	uv_mutex_lock(&c->mu);
	while (head) {
		struct commit_item *next = head->next;

		list_append(&c->done_head, &c->done_tail, head);
		head = next;
	}
	uv_mutex_unlock(&c->mu);
	uv_async_send(&c->async);
}

/* Writer thread: runs the items from head up to (not including) stop in one transaction. */
static void
run_group(commit_t *c, struct commit_item *head, struct commit_item *stop, int *fatal_err,
	  int trace)
{
	struct commit_item *it, *ran_end = head;
	int status = COMMIT_OK, serr = 0;
	uint64_t n = 0, t_run = 0, t_commit = 0, t_durable = 0;

	if (head == stop)
		return;
	if (trace)
		t_run = commit_now_ns();
	if ((serr = store_txn_begin(c->st)) != 0)
		status = store_status(serr);
	for (it = head; status == COMMIT_OK && it != stop; it = it->next) {
		status = it->run(it, c->env);
		ran_end = it->next;
		n++;
	}
	/* What the group shares (e.g. one zone serial) is written last, in its transaction. */
	if (status == COMMIT_OK && c->group_hook)
		status = c->group_hook(c->env, head, (size_t)n);
	if (status == COMMIT_OK) {
		if (trace)
			t_commit = commit_now_ns();
		if ((serr = store_txn_commit(c->st)) != 0)
			status = store_status(serr);
		if (trace)
			t_durable = commit_now_ns();
	} else {
		/* The item said storage or fatal; its store error is not known here. */
		serr = status == COMMIT_ERR_FATAL ? STORE_EIO : STORE_EFULL;
	}
	if (status != COMMIT_OK) {
		if (store_txn_active(c->st))
			(void)store_txn_rollback(c->st);
		for (it = head; it != ran_end; it = it->next)
			if (it->undo)
				it->undo(it, c->env);
		if (status == COMMIT_ERR_FATAL && *fatal_err == 0)
			*fatal_err = serr;
	}
	for (it = head; it != stop; it = it->next) {
		it->status = status;
		if (trace) {
			it->trace[COMMIT_T_RUN] = t_run;
			it->trace[COMMIT_T_COMMIT] = t_commit;
			it->trace[COMMIT_T_DURABLE] = t_durable;
		}
	}
	uv_mutex_lock(&c->mu);
	c->stats.items += n;
	if (status == COMMIT_OK) {
		c->stats.groups++;
		if (n > c->stats.largest)
			c->stats.largest = n;
	} else {
		c->stats.failures++;
	}
	uv_mutex_unlock(&c->mu);
}

static void
writer_main(void *arg)
{
	commit_t *c = arg;

	for (;;) {
		struct commit_item *batch, *it, *start;
		int fatal_err = 0, failed, trace;

		uv_mutex_lock(&c->mu);
		while (c->q_head == NULL && !c->stop)
			uv_cond_wait(&c->cv, &c->mu);
		batch = c->q_head;
		c->q_head = c->q_tail = NULL;
		failed = c->failed;
		trace = c->trace;
		uv_mutex_unlock(&c->mu);
		if (batch == NULL)
			break; /* stop, and nothing left */

		if (failed) {
			for (it = batch; it; it = it->next)
				it->status = COMMIT_ERR_FATAL;
			finish(c, batch);
			continue;
		}
		/* Consecutive ordinary items form a group; an ALONE item splits groups. */
		start = batch;
		for (it = batch; it; it = it->next) {
			if (!(it->flags & COMMIT_ALONE))
				continue;
			run_group(c, start, it, &fatal_err, trace);
			if (fatal_err == 0)
				it->status = it->run(it, c->env);
			else
				it->status = COMMIT_ERR_FATAL;
			if (it->status == COMMIT_ERR_FATAL && fatal_err == 0)
				fatal_err = STORE_EIO;
			start = it->next;
		}
		if (fatal_err == 0)
			run_group(c, start, NULL, &fatal_err, trace);
		else
			for (it = start; it; it = it->next)
				it->status = COMMIT_ERR_FATAL;
		if (fatal_err != 0) {
			uv_mutex_lock(&c->mu);
			c->failed = 1;
			c->fatal_err = fatal_err;
			uv_mutex_unlock(&c->mu);
		}
		finish(c, batch);
	}
}

/* Loop thread: runs done callbacks of finished items. */
static void
drain(commit_t *c)
{
	struct commit_item *head;
	int told = 0, err = 0;

	uv_mutex_lock(&c->mu);
	head = c->done_head;
	c->done_head = c->done_tail = NULL;
	if (c->failed && !c->fatal_told) {
		c->fatal_told = 1;
		told = 1;
		err = c->fatal_err;
	}
	uv_mutex_unlock(&c->mu);
	if (told && c->fatal)
		c->fatal(c->arg, err);
	while (head) {
		struct commit_item *next = head->next;

		c->pending--;
		head->done(head, head->status);
		head = next;
	}
}

static void
async_cb(uv_async_t *a)
{
	drain(a->data);
}

int
commit_new(uv_loop_t *loop, store_t *st, void *env,
	   void (*fatal)(void *arg, int store_err), void *arg, commit_t **out)
{
	commit_t *c = NULL;
	int r = COMMIT_ERR_NOMEM;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return r;
	c->loop = loop;
	c->st = st;
	c->env = env;
	c->fatal = fatal;
	c->arg = arg;
	c->lim.ckpt_pages = CKPT_PAGES_DEFAULT;
	c->lim.restart_pages = CKPT_RESTART_PAGES_DEFAULT;
	c->lim.hard_pages = CKPT_HARD_PAGES_DEFAULT;
	if (uv_mutex_init(&c->mu) != 0) {
		free(c);
		return r;
	}
	if (uv_cond_init(&c->cv) != 0) {
		uv_mutex_destroy(&c->mu);
		free(c);
		return r;
	}
	if (uv_cond_init(&c->cv_ckpt) != 0) {
		uv_cond_destroy(&c->cv);
		uv_mutex_destroy(&c->mu);
		free(c);
		return r;
	}
	if (uv_async_init(loop, &c->async, async_cb) != 0)
		goto fail_async;
	c->async.data = c;
	r = COMMIT_ERR_STORAGE;
	if (ckpt_open(c) != COMMIT_OK)
		goto fail_thread;
	if (uv_thread_create(&c->thread, writer_main, c) != 0) {
		ckpt_close(c);
		goto fail_thread;
	}
	c->thread_started = 1;
	*out = c;
	return COMMIT_OK;
fail_thread:
	/* The async handle is closed by the loop; its memory must stay until then. */
	uv_close((uv_handle_t *)&c->async, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
fail_async:
	uv_cond_destroy(&c->cv_ckpt);
	uv_cond_destroy(&c->cv);
	uv_mutex_destroy(&c->mu);
	free(c);
	return r;
}

void
commit_submit(commit_t *c, struct commit_item *it)
{
	c->pending++;
	uv_mutex_lock(&c->mu);
	if (c->trace)
		it->trace[COMMIT_T_SUBMIT] = commit_now_ns();
	list_append(&c->q_head, &c->q_tail, it);
	uv_cond_signal(&c->cv);
	uv_mutex_unlock(&c->mu);
}

void
commit_group_hook_set(commit_t *c, commit_group_fn hook)
{
	c->group_hook = hook;
}

void
commit_wal_limits_get(commit_t *c, struct commit_wal_limits *out)
{
	uv_mutex_lock(&c->mu);
	*out = c->lim;
	uv_mutex_unlock(&c->mu);
}

int
commit_wal_limits_set(commit_t *c, const struct commit_wal_limits *l)
{
	if (l->ckpt_pages < 1 || l->restart_pages < l->ckpt_pages ||
	    l->hard_pages <= l->restart_pages)
		return COMMIT_ERR_INVALID;
	uv_mutex_lock(&c->mu);
	c->lim = *l;
	uv_mutex_unlock(&c->mu);
	return COMMIT_OK;
}

void
commit_trace_set(commit_t *c, int on)
{
	uv_mutex_lock(&c->mu);
	c->trace = on != 0;
	uv_mutex_unlock(&c->mu);
}

int
commit_trace_on(const commit_t *c)
{
	/* The loop thread is the only writer of the flag. */
	return c->trace;
}

uint64_t
commit_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct commit_item *
commit_item_next(const struct commit_item *it)
{
	return it->next;
}

uint64_t
commit_pending(const commit_t *c)
{
	return c->pending;
}

void
commit_stats_get(commit_t *c, struct commit_stats *out)
{
	uv_mutex_lock(&c->mu);
	*out = c->stats;
	uv_mutex_unlock(&c->mu);
}

static void
async_close_cb(uv_handle_t *h)
{
	commit_t *c = h->data;

	uv_cond_destroy(&c->cv_ckpt);
	uv_cond_destroy(&c->cv);
	uv_mutex_destroy(&c->mu);
	free(c);
}

void
commit_close(commit_t *c)
{
	if (c == NULL)
		return;
	uv_mutex_lock(&c->mu);
	c->stop = 1;
	uv_cond_signal(&c->cv);
	uv_mutex_unlock(&c->mu);
	if (c->thread_started)
		uv_thread_join(&c->thread);
	ckpt_close(c);
	drain(c);
	uv_close((uv_handle_t *)&c->async, async_close_cb);
}
