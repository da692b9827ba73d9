/**
 * @file commit.h
 * @brief Group commit: one writer thread owns the store; work that arrives
 * together shares one transaction, hence one fsync.
 *
 * The daemon never touches SQLite on its libuv loop. Anything that reads or
 * writes the store is an item submitted here. A dedicated writer thread takes
 * every item queued so far as one group, runs them one after the other inside
 * one store transaction (store_txn_begin ... store_txn_commit), and then hands
 * them back to the loop, where each item's done callback runs (and may send a
 * reply: a reply depends on a commit that has happened). While the writer is
 * busy, new items queue up and form the next group, so under load the cost
 * of a durable commit is shared by many requests; idle, each request pays for
 * its own.
 *
 * A request that needs the HSM passes through twice: its first pass commits
 * the intent (audit), the loop then asks the HSM process, and its second pass
 * commits the result and the change. Groups are formed from whatever is
 * queued, so first and second passes of different requests share
 * transactions.
 *
 * An item's run callback returns 0 when the item is settled (even if the
 * request was refused: the refusal is its outcome), or COMMIT_ERR_STORAGE /
 * COMMIT_ERR_FATAL when the store failed. One failing item rolls the whole
 * transaction back: every item of the group then gets its undo callback (on
 * the writer thread, to forget in-memory state the run created) and its done
 * callback with that status. A fatal error (fsync or I/O: the state on disk is
 * unknown) also calls the fatal callback once; later items are not run and get
 * COMMIT_ERR_FATAL. The daemon then exits.
 *
 * The WAL is checkpointed by a thread of its own (with its own connection
 * to the same database file), not inside a group's COMMIT: SQLite's
 * automatic checkpoint, which would run there, is replaced (it remains only
 * as a backstop when the WAL has grown very large). commit_wal_limits_set()
 * says how often. A checkpoint that fails with an I/O error is fatal like a
 * failed commit.
 *
 * Items flagged COMMIT_ALONE run outside any transaction, after the group
 * before them committed and before any later item (audit checkpoints, which
 * commit on their own).
 *
 * The zone joins the pipeline the same way: an item's run may write zone rows
 * in the group's transaction, and the group hook (commit_group_hook_set) runs
 * once per group, after its items and before the commit, to write what the
 * group shares — one zone serial, one IXFR journal entry — so that every item
 * of the group can answer with that serial.
 */
#ifndef REGSIGN_SIGNER_COMMIT_H
#define REGSIGN_SIGNER_COMMIT_H

#include <stdint.h>
#include <uv.h>

#include "signer/store.h"

/** Status of an item as its done callback sees it. */
enum commit_status {
	COMMIT_OK = 0,
	COMMIT_ERR_STORAGE = -1, /**< transaction failed and rolled back (e.g. disk full) */
	COMMIT_ERR_FATAL = -2,   /**< state on disk unknown; the daemon must exit */
	COMMIT_ERR_CLOSED = -3,  /**< the pipeline was closed before the item ran */
	COMMIT_ERR_NOMEM = -4,   /**< memory ran out */
	COMMIT_ERR_INVALID = -5, /**< a setting out of range (commit_wal_limits_set) */
};

/** Flags of an item. */
enum commit_item_flags {
	COMMIT_ALONE = 1u << 0, /**< run outside a transaction, on its own */
};

struct commit_item;

/**
 * Writer thread: do the item's store work inside the group's transaction.
 * @return COMMIT_OK, COMMIT_ERR_STORAGE or COMMIT_ERR_FATAL.
 */
typedef int (*commit_run_fn)(struct commit_item *it, void *env);
/** Writer thread: the transaction failed after run; forget what run set up. */
typedef void (*commit_undo_fn)(struct commit_item *it, void *env);
/** Loop thread: the item's group committed (COMMIT_OK) or failed. */
typedef void (*commit_done_fn)(struct commit_item *it, int status);

/**
 * Stage times of an item (commit_now_ns() clock), written only while the
 * pipeline traces (commit_trace_set()); 0 otherwise. The pipeline writes
 * SUBMIT .. DURABLE; the OWNER slots are for the item's owner, which may
 * record its own stages there (the pipeline never touches them).
 */
enum commit_trace_slot {
	COMMIT_T_SUBMIT = 0, /**< commit_submit() (loop) */
	COMMIT_T_RUN,        /**< the writer began the item's group */
	COMMIT_T_COMMIT,     /**< the group's items ran: its COMMIT (fsync) begins */
	COMMIT_T_DURABLE,    /**< the COMMIT returned: the group is on disk */
	COMMIT_T_OWNER0,
	COMMIT_T_OWNER1,
	COMMIT_T_SLOTS,
};

/** An item; embed it in the request's own struct. Fields set by the caller: */
struct commit_item {
	commit_run_fn run;   /**< required */
	commit_undo_fn undo; /**< may be NULL */
	commit_done_fn done; /**< required */
	unsigned flags;      /**< enum commit_item_flags */
	/** Stage times (enum commit_trace_slot); read them in done. */
	uint64_t trace[COMMIT_T_SLOTS];
	/* Private to commit.c. */
	int status;
	struct commit_item *next;
};

typedef struct commit commit_t;

/**
 * Writer thread, once per transaction after its items ran and before it
 * commits: @p first is the group's first item and @p n their number (follow
 * the items with commit_item_next()). Return like an item's run: a failure
 * rolls the whole group back.
 */
typedef int (*commit_group_fn)(void *env, struct commit_item *first, size_t n);

/** Counters, for STATUS and tests. */
struct commit_stats {
	uint64_t groups;       /**< transactions committed */
	uint64_t items;        /**< items run */
	uint64_t largest;      /**< most items in one transaction */
	uint64_t failures;     /**< transactions that failed */
	uint64_t checkpoints;  /**< WAL checkpoints by the checkpointer thread */
	uint64_t checkpoints_idle;   /**< of those, catch-ups past the restart size (the WAL
					  *   restarts once one copied every frame) */
	uint64_t checkpoints_inline; /**< by the writer inside a commit (the checkpointer fell behind) */
};

/**
 * Starts the writer thread. @p st must not be used by anyone else while the
 * pipeline runs (the writer thread owns it; the pipeline sets its WAL hook
 * and restores SQLite's automatic checkpoint at commit_close()); @p env is
 * passed to every run and undo. @p fatal (may be NULL) is called on the loop once if the store fails
 * fatally.
 * @return 0, COMMIT_ERR_NOMEM, or COMMIT_ERR_STORAGE if the thread cannot start.
 */
int commit_new(uv_loop_t *loop, store_t *st, void *env,
	       void (*fatal)(void *arg, int store_err), void *arg, commit_t **out);

/**
 * Queues an item (loop thread). Its done callback runs later on the loop,
 * never inside this call.
 */
void commit_submit(commit_t *c, struct commit_item *it);

/**
 * When the WAL is checkpointed, in WAL frames (one page each). The defaults
 * (2,048 / 16,384 / 65,536: a checkpoint per 8 MiB of frames, a WAL that
 * restarts from its beginning at 64 MiB) keep checkpoints and WAL restarts,
 * whose device flushes delay the commits beside them, rare at a steady
 * request rate; tests set smaller ones.
 */
struct commit_wal_limits {
	int ckpt_pages;    /**< frames added since the last checkpoint that wake the checkpointer */
	int restart_pages; /**< frames past which every commit wakes it until all are copied,
			    *   so that the next transaction restarts the WAL from its beginning */
	int hard_pages;    /**< frames not yet copied at which the writer checkpoints inside a
			    *   commit, as SQLite would (only if the checkpointer fell far behind) */
};

/** The WAL limits in force (any thread). */
void commit_wal_limits_get(commit_t *c, struct commit_wal_limits *out);

/**
 * Sets the WAL limits (any thread; the next commit uses them).
 * @return COMMIT_OK, or COMMIT_ERR_INVALID unless
 * 1 <= ckpt_pages <= restart_pages < hard_pages.
 */
int commit_wal_limits_set(commit_t *c, const struct commit_wal_limits *l);

/**
 * Sets the group hook (NULL for none). Call it before submitting items, or
 * from the writer thread; it is not synchronised with a running group.
 */
void commit_group_hook_set(commit_t *c, commit_group_fn hook);

/** The item after @p it in its group (for the group hook), or NULL. */
struct commit_item *commit_item_next(const struct commit_item *it);

/**
 * Turns stage tracing on or off (loop thread, before items are submitted
 * or between them): while on, every item gets its stage times in
 * commit_item::trace, at the price of four clock reads per group and one
 * per item. Off by default; the daemon turns it on at log level debug.
 */
void commit_trace_set(commit_t *c, int on);

/** Whether stage tracing is on (loop thread). */
int commit_trace_on(const commit_t *c);

/** The trace clock: CLOCK_MONOTONIC in nanoseconds (any thread). */
uint64_t commit_now_ns(void);

/** Items submitted and not yet done. */
uint64_t commit_pending(const commit_t *c);

/** A snapshot of the counters (loop thread). */
void commit_stats_get(commit_t *c, struct commit_stats *out);

/**
 * Stops the writer after the items queued so far, joins it, runs the done
 * callbacks of finished items, and frees the pipeline. Blocks the loop
 * thread until the writer finishes what it has: call it when nothing waits
 * on the loop any more (shutdown). NULL is a no-op.
 */
void commit_close(commit_t *c);

#endif
