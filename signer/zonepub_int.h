/**
 * @file zonepub_int.h
 * @brief zonepub's internals shared by its files (not public).
 *
 * zonepub.c       life cycle, options, submitting, closing, status
 * zonepub_sched.c the scheduler and the choice of the next job (and which
 *                 jobs may overlap: see zp_pipelined())
 * zonepub_job.c   the zone thread, the sign bridge, the zone work of a job
 * zonepub_publish.c  the loop's side of a job: commit, replay, publication
 * zonepub_store.c what a job writes in the store, and the load at start
 * zonepub_aux.c   the journal copy the listener reads, the expiry heap,
 *                 parameter copies, errors, and the zone file writer (a
 *                 thread of its own that writes the file from a snapshot
 *                 of the store's rows, never from a zone in memory)
 */
#ifndef REGSIGN_SIGNER_ZONEPUB_INT_H
#define REGSIGN_SIGNER_ZONEPUB_INT_H

#include <openssl/evp.h>

#include "signer/zonepub.h"

struct zone_change;

/* Rows of the zone_names table start with a byte that says what they are:
 * 'n' + the zone's canonical key of an owner name (the apex's key is empty,
 * and the store wants a non-empty key; a constant first byte keeps the
 * memcmp order of the keys), or 'x' + "<id>.<index>" for a device whose
 * records go when its certificate expires. */
#define ZP_ROW_NAME 'n'
#define ZP_ROW_EXPIRY 'x'
#define ZP_ROW_KEY_MAX (1 + 512)
/* zone_meta keys. */
#define ZP_META_SERIAL "serial"
#define ZP_META_ORIGIN "origin"

enum zp_job_kind {
	ZP_JOB_GROUP = 0,   /* requests and expiry removals: one zone_change */
	ZP_JOB_RESIGN,      /* zone_resign_due */
	ZP_JOB_FILE,        /* the zone file: on the file thread, not the zone thread */
	ZP_JOB_BULK,        /* zone_bulk_import */
	ZP_JOB_KINDS,
	ZP_JOB_REBUILD,     /* working zone rebuilt from the served one (not in turn) */
	ZP_JOB_VERIFY,      /* one slice of the background verification of every
			     * signature (zone_verify_slice): not in turn, only when
			     * nothing else is ready and no version is pending */
};

/* A signature made for a version, kept to replay the version on the served
 * zone: the RRSIG data is identified by 8 bytes of its SHA-256. */
struct zp_sigrec {
	uint8_t hash[8];
	uint8_t sig[64];
	uint16_t tag;
	uint8_t role;
};

/* A device whose certificate expires (the expiry heap and expiry removals). */
struct zp_expiry {
	int64_t not_after;
	uint32_t index;
	char id[STORE_DEVICE_MAX + 1];
};

/* A waiter for an on-demand zone file. */
struct zp_filereq {
	void (*done)(void *arg, int status, uint32_t serial);
	void *arg;
	struct zp_filereq *next;
};

/* A zone_names row a version writes: key 'n' + zone key; blob NULL = delete. */
struct zp_row {
	uint8_t *key;
	size_t klen;
	uint8_t *blob;
	size_t blen;
};

struct zp_job {
	struct commit_item item;  /* first: the commit pipeline gives it back */
	struct zonepub *zp;
	enum zp_job_kind kind;
	int64_t now;
	struct zp_job *inext;     /* the next job waiting for its commit */

	/* GROUP */
	struct zonepub_req *reqs;  /* the group, in arrival order (next links) */
	size_t nreqs;
	struct zp_expiry *expired; /* expiry removals */
	bool *expired_ok;          /* which of them removed something */
	size_t nexpired;
	/* BULK */
	struct zonepub_bulk *bulk;
	/* FILE (the file thread): the waiters it answers, its ZONEPUB_E*
	 * result, what failed (naming the row; malloc'd), names written and
	 * the time it took. */
	struct zp_filereq *filereqs;
	int ferr;
	char *fmsg;
	size_t fnames;
	double fms;
	int fprio_err;             /* errno of lowering the thread's priority, or 0 */
	/* VERIFY: the slice's size and whether it starts a pass (at the apex);
	 * on the zone thread: what it found, and the ZONE_E* result of marking
	 * each failing RRset due on the working zone (the loop marks the served
	 * zone the same way, see zonepub_publish.c). */
	size_t vmax;
	bool vfrom_apex;
	struct zone_verify_slice *vslice;
	int vmark[ZONE_VERIFY_FAIL_MAX];

	/* Made on the zone thread. */
	int zerr;                  /* ZONE_E* of the zone work */
	bool changed;              /* the working zone has a new version */
	bool withdrawn;            /* the signer withdrew a batch (ZONEPUB_EWITHDRAWN) */
	struct zone_diff *diff;    /* GROUP, RESIGN */
	uint8_t *wire;             /* the diff in journal form */
	size_t wirelen;
	struct zp_row *rows;       /* GROUP, RESIGN: the rows of the names changed,
				    * exported on the zone thread so that the writer
				    * never reads the working zone (the zone thread
				    * may already work on the next version) */
	size_t nrows;
	bool stale;                /* writer: not written, the store is not at serial_from */
	uint32_t serial_from, serial_to;
	size_t nsigs;
	struct zp_sigrec *recs;
	size_t nrecs, caprecs;
	size_t nbulk_sigs;         /* BULK: signatures made (no record kept, see bridge_sign) */
	/* Stage trace (commit_now_ns()): the zone thread resumed after its
	 * last signing batch, and finished the job. */
	uint64_t t_woke, t_built;

	/* Decided on the loop before the commit. */
	size_t journal_keep;       /* newest journal entries the store keeps */
};

/* The listener's copy of the committed journal (loop thread). */
struct zp_jentry {
	uint32_t from, to;
	int64_t when;
	uint8_t *wire;
	size_t len;
};

struct zp_journal {
	struct zp_jentry *v;   /* v[0..n), oldest first */
	size_t n, cap;
	size_t bytes;
};

enum zp_state {
	ZP_NEW = 0,
	ZP_LOADED,
	ZP_STARTED,
	ZP_CLOSING,
	ZP_CLOSED,
	ZP_BROKEN,   /* the served zone diverged from the store: refuse changes */
};

enum zp_sign_state { ZP_SIGN_IDLE = 0, ZP_SIGN_ASKED, ZP_SIGN_SENT, ZP_SIGN_DONE };

struct zonepub {
	uv_loop_t *loop;
	EVP_MD *sha256;                /* for zp_data_hash(), fetched once */
	struct zonepub_opts o;         /* with defaults; strings owned */
	struct zone_params params;     /* deep copy */
	void *params_mem;              /* what the copy's pointers point into */
	enum zp_state state;
	struct zone *served;           /* loop thread */
	struct zone *working;          /* whoever runs the current job */
	store_t *st;                   /* writer thread after load */
	commit_t *commit;

	/* Loop thread: what waits for the pipeline. */
	struct zonepub_req *q_head, *q_tail;
	size_t q_len;
	struct zonepub_bulk *bulk_head, *bulk_tail;
	struct zp_filereq *file_head, *file_tail;
	bool resign_wanted, file_due, rebuild_needed, apex_wanted;
	/* The background verification: a slice is wanted at each tick; the
	 * cursor is the zone key the next slice starts at (length 0: the apex,
	 * a new pass). The zone thread reads it while a VERIFY job runs, the
	 * loop moves it when the job is back. */
	bool verify_wanted;
	size_t verify_quota;           /* names still to verify in this tick */
	uint8_t verify_key[ZONE_VERIFY_KEY_MAX];
	size_t verify_keylen;
	size_t verify_pass_failures;   /* failing RRsets found in the current pass */
	int last_kind;
	int64_t last_resign, last_file_check;
	struct zp_job *job;            /* on the zone thread (or being handed over), or NULL */
	struct zp_job *if_head, *if_tail; /* versions made, waiting for their commit, in order */
	size_t n_inflight;
	bool loading;                  /* zonepub_open's item is in the pipeline */
	uv_idle_t pump;                /* starts a job at the end of the loop iteration */
	bool pump_active;
	uv_timer_t tick;

	struct zp_expiry *heap;        /* min-heap by not_after */
	size_t nheap, capheap;
	struct zp_journal jr;
	/* Where the start's load spent its time (ms, for the log): the rows
	 * read and loaded, zone_load_finish (tree + check), the journal. */
	double load_ms_rows, load_ms_finish, load_ms_journal;

	/* Zone thread and what it shares with the loop (under mu). */
	uv_thread_t thread;
	bool thread_started;
	uv_mutex_t mu;
	uv_cond_t cv;
	uv_async_t wake;
	struct zp_job *t_job;          /* handed to the zone thread */
	struct zp_job *t_finished;     /* handed back */
	bool t_stop;
	enum zp_sign_state sign_state;
	struct zone_sigreq *sign_reqs;
	size_t sign_n;
	int sign_status;

	/* The zone file writer (zonepub_aux.c). Its thread reads the store
	 * through a read-only connection of its own (opened by the load on the
	 * writer thread), in one read transaction per file: the rows of the
	 * committed serial, whatever the zone thread and the writer do
	 * meanwhile. The zone thread never writes the file. */
	store_t *file_st;              /* NULL: no zone file, or a store in memory */
	struct zone *file_shape;       /* empty zone with the parameters (the apex) */
	uv_thread_t file_thread;
	bool file_thread_started;
	uv_cond_t file_cv;
	struct zp_job *file_job;       /* loop: the write in progress, or NULL */
	bool file_final_done;          /* closing: the last write was considered */
	struct zp_job *f_job;          /* under mu: handed to the file thread */
	struct zp_job *f_finished;     /* under mu: handed back */
	bool f_stop;                   /* under mu */
	bool file_prio_warned;         /* loop: the priority failure was logged */
	_Atomic uint64_t file_freed;   /* file thread adds, STATUS reads */

	/* Status (loop thread). */
	struct zonepub_status s;
	int64_t zone_file_written_at;

	/* Closing. */
	bool finishing;                /* the threads stop, the handles close */
	void (*close_cb)(void *arg);
	void *close_arg;
	int handles_open;
};

/* ---- zonepub.c ---- */
int64_t zp_now(const struct zonepub *zp);
void zp_log(struct zonepub *zp, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Record a failure for STATUS (and log it). */
void zp_fail(struct zonepub *zp, int err, const char *what);
/* The same with what exactly went wrong (logged in full, cut in STATUS). */
void zp_fail_detail(struct zonepub *zp, int err, const char *what, const char *detail);
/* Ask for a job to be started at the end of this loop iteration. */
void zp_pump_soon(struct zonepub *zp);
/* Called when @p job is over (the zone thread's or one waiting for its
 * commit): frees it, continues closing or pumps. */
void zp_job_over(struct zonepub *zp, struct zp_job *job);
/* Closing waited for a job or the load; finish it if nothing else runs. */
void zp_close_continue(struct zonepub *zp);

/* ---- zonepub_sched.c ---- */
void zp_tick_cb(uv_timer_t *t);
void zp_pump_cb(uv_idle_t *h);
/* Whether a job of @p kind has work now. */
bool zp_kind_ready(const struct zonepub *zp, int kind, int64_t now);
/* Whether a job of @p kind may run on the zone thread while earlier
 * versions wait for their commit (and be waited for by later ones). */
bool zp_pipelined(int kind);

/* ---- zonepub_job.c ---- */
int zp_thread_start(struct zonepub *zp);
void zp_thread_stop(struct zonepub *zp);
/* Loop: hand a job to the zone thread. */
void zp_job_run(struct zonepub *zp, struct zp_job *job);
/* Loop: the wake async fired. */
void zp_wake(uv_async_t *a);
void zp_job_free(struct zp_job *job);
/* 8 bytes of SHA-256 of RRSIG data: how a replayed request is recognised. */
void zp_data_hash(const EVP_MD *sha256, const uint8_t *data, size_t len, uint8_t out[8]);
/*
 * Loop, instead of replaying a committed bulk import on the served zone: the
 * served zone takes the working zone's names (zone_swap_names), which are
 * exactly the committed version because nothing overlaps a bulk import, and
 * the working zone is rebuilt from it before the next change. Saves building
 * the whole zone a second time while the first copy, the import's request
 * and its signatures are all still in memory. 0 or a ZONE_E* error (then
 * nothing changed).
 */
int zp_bulk_adopt(struct zonepub *zp, const struct zp_job *job);
/* Build a group's change on @p z (the zone thread; with @p replay, the served zone). */
int zp_group_apply(struct zp_job *job, struct zone *z, bool replay, struct zone_change **out);

/* Slice size of the background verification: a full pass within the
 * device refresh period at one slice per tick, at least 64 names. */
/* Names per verification job; a tick's share (zp_verify_slice_size) is
 * verified in jobs of at most this many, one after another while idle. */
#define ZP_VERIFY_SLICE_MAX 2
size_t zp_verify_slice_size(const struct zonepub *zp);

/* ---- zonepub_publish.c ---- */
/* Loop: the zone thread finished @p job. */
void zp_phase_done(struct zonepub *zp, struct zp_job *job);

/* ---- zonepub_store.c ---- */
/* Writer thread: the commit item's run and undo. */
int zp_store_run(struct commit_item *it, void *env);
void zp_store_undo(struct commit_item *it, void *env);
/* The key of a device's expiry row. */
int zp_expiry_key(const char *id, uint32_t index, uint8_t *key, size_t *keylen);

/* ---- zonepub_aux.c ---- */
int zp_params_copy(const struct zone_params *p, struct zone_params *out, void **mem);
void zp_journal_clear(struct zp_journal *j);
/* Append an entry (wire taken over); 0 or ZONEPUB_ENOMEM (wire freed). */
int zp_journal_add(struct zp_journal *j, uint32_t from, uint32_t to, int64_t when,
		   uint8_t *wire, size_t len);
/* How many of the newest entries survive pruning at @p now (with @p extra bytes added). */
size_t zp_journal_keep(const struct zonepub *zp, const struct zp_journal *j, int64_t now,
		       size_t extra_entries, size_t extra_bytes, int64_t extra_when);
/* Keep only the newest @p keep entries. */
void zp_journal_trim(struct zp_journal *j, size_t keep);
struct dns_journal zp_journal_ops(struct zonepub *zp);

int zp_heap_push(struct zonepub *zp, const struct zp_expiry *e);

/* The zone file writer. Its thread starts with zonepub_new() when a zone
 * file is configured and stops when zonepub closes. */
int zp_file_thread_start(struct zonepub *zp);
void zp_file_thread_stop(struct zonepub *zp);
/* Loop: start a write if one is wanted (requests, interval) and none runs;
 * the requests queued until now are answered by it (coalesced). */
void zp_file_kick(struct zonepub *zp);
/* Loop, closing: start the last write if the served serial is not in the
 * zone file yet. True when one was started (zp_close_continue() follows). */
bool zp_file_final(struct zonepub *zp);
/* Loop: the file thread finished @p job (from the wake async). */
void zp_file_done(struct zonepub *zp, struct zp_job *job);
/* The earliest entry or NULL. */
const struct zp_expiry *zp_heap_top(const struct zonepub *zp);
void zp_heap_pop(struct zonepub *zp);

#endif
