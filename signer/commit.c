/*
 * commit.c - the writer thread and its group transactions.
 *
 * The queue and the list of finished items are protected by one mutex. The
 * writer takes the whole queue at once (that is the group), runs it, and
 * appends the items to the finished list; a uv_async wakes the loop, which
 * runs their done callbacks in order.
 */
#include "signer/commit.h"

#include <stdlib.h>

struct commit {
	uv_loop_t *loop;
	store_t *st;
	void *env;
	void (*fatal)(void *arg, int err);
	void *arg;
	commit_group_fn group_hook;

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
run_group(commit_t *c, struct commit_item *head, struct commit_item *stop, int *fatal_err)
{
	struct commit_item *it, *ran_end = head;
	int status = COMMIT_OK, serr = 0;
	uint64_t n = 0;

	if (head == stop)
		return;
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
		if ((serr = store_txn_commit(c->st)) != 0)
			status = store_status(serr);
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
	for (it = head; it != stop; it = it->next)
		it->status = status;
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
		int fatal_err = 0, failed;

		uv_mutex_lock(&c->mu);
		while (c->q_head == NULL && !c->stop)
			uv_cond_wait(&c->cv, &c->mu);
		batch = c->q_head;
		c->q_head = c->q_tail = NULL;
		failed = c->failed;
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
			run_group(c, start, it, &fatal_err);
			if (fatal_err == 0)
				it->status = it->run(it, c->env);
			else
				it->status = COMMIT_ERR_FATAL;
			if (it->status == COMMIT_ERR_FATAL && fatal_err == 0)
				fatal_err = STORE_EIO;
			start = it->next;
		}
		if (fatal_err == 0)
			run_group(c, start, NULL, &fatal_err);
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
	if (uv_mutex_init(&c->mu) != 0) {
		free(c);
		return r;
	}
	if (uv_cond_init(&c->cv) != 0) {
		uv_mutex_destroy(&c->mu);
		free(c);
		return r;
	}
	if (uv_async_init(loop, &c->async, async_cb) != 0)
		goto fail_async;
	c->async.data = c;
	r = COMMIT_ERR_STORAGE;
	if (uv_thread_create(&c->thread, writer_main, c) != 0)
		goto fail_thread;
	c->thread_started = 1;
	*out = c;
	return COMMIT_OK;
fail_thread:
	/* The async handle is closed by the loop; its memory must stay until then. */
	uv_close((uv_handle_t *)&c->async, NULL);
	uv_run(loop, UV_RUN_NOWAIT);
fail_async:
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
	list_append(&c->q_head, &c->q_tail, it);
	uv_cond_signal(&c->cv);
	uv_mutex_unlock(&c->mu);
}

void
commit_group_hook_set(commit_t *c, commit_group_fn hook)
{
	c->group_hook = hook;
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
	drain(c);
	uv_close((uv_handle_t *)&c->async, async_close_cb);
}
