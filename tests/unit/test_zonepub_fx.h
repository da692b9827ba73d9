/*
 * The zonepub tests' fixture: a real store in a temporary directory, the
 * group-commit pipeline of signer/commit.h, a libuv loop, an asynchronous
 * in-memory signer (OpenSSL keys; answers on a later loop iteration, like
 * hsmlink), a clock the test moves, and requests with their outcome.
 */
#ifndef REGSIGN_TEST_ZONEPUB_FX_H
#define REGSIGN_TEST_ZONEPUB_FX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "signer/commit.h"
#include "signer/store.h"
#include "signer/zonepub.h"
#include "test_zone_support.h"

/** The asynchronous signer: tzs_sign() run from a zero timer. */
struct fx_signer {
	struct tzs_signer keys;
	uv_timer_t timer;
	struct zone_sigreq *reqs;
	size_t n;
	zonepub_sign_done_fn done;
	void *arg;
	bool busy;
	bool hold;       /**< keep the next batch until fx_signer_release() */
	bool sync;       /**< answer inside the sign call (allowed by the interface) */
	int fail;        /**< fail this many coming batches */
	int garbage;     /**< return this many batches with corrupted signatures */
	size_t batches;  /**< batches answered */
	size_t sigs;     /**< signatures made */
	size_t last;     /**< size of the last batch */
};

struct fx {
	char *dir;
	char db[512];
	char zone_file[512];
	uv_loop_t loop;
	uv_timer_t guard;       /* wakes uv_run so that deadlines are checked */
	store_t *st;
	store_t *ro;            /* read-only connection for the test's checks */
	commit_t *commit;
	struct zonepub *zp;
	struct zonepub_opts opts;
	struct zone_params params;
	struct fx_signer sg;
	uint8_t *ca;
	size_t calen;
	int64_t now;
	uint32_t published;     /* last serial given to the published callback */
	size_t npublished;
	int fatal;
	bool closing;
	bool closed;
	bool use_open;          /* fx_start loads through zonepub_open() */
	int open_status;
	bool opened;
};

/** A request with room for two changes and what happened to it. */
struct treq {
	struct zonepub_req rq;
	struct zonepub_op ops[2];
	struct fx *fx;
	char id[64];
	char id2[64];
	uint8_t hash[32];
	ldns_rr *rr;
	bool done;
	int status;
	uint32_t serial;
	int store_ret;                /* what store_run returns */
	int store_runs;
	uint32_t served_at_store;     /* the served serial while the transaction ran */
	int undone;
};

/** Allocate the fixture (no zonepub yet); the cmocka setup. */
int fx_setup(void **state);
/** Close everything and remove the directory; the cmocka teardown. */
int fx_teardown(void **state);
/**
 * Open the store, load and start zonepub with fx->opts (params, signer,
 * clock and callbacks are filled in), and run until idle: a fresh store has
 * its apex then.
 */
void fx_start(struct fx *fx);
/** Let the signer answer the batch it holds. */
void fx_signer_release(struct fx *fx);
/** Start closing zonepub (fx_stop() waits for the end). */
void fx_close_begin(struct fx *fx);
/** Close zonepub, the commit pipeline and the store (the loop stays). */
void fx_stop(struct fx *fx);
/** Run the loop until zonepub is idle and the signer has nothing pending. */
void fx_run_idle(struct fx *fx);

/** A device id for number @p i (lowercase hex). */
void fx_device_id(unsigned i, char *buf, size_t len);
/** Fill an ISSUE request (seed style) for device @p i, index @p index. */
void fx_issue(struct fx *fx, struct treq *t, unsigned i, uint32_t index, int64_t not_after);
/** Fill a REVOKE request. */
void fx_revoke(struct fx *fx, struct treq *t, unsigned i, uint32_t index);
/** Fill a REISSUE request: remove (i, old), add (j, new). */
void fx_reissue(struct fx *fx, struct treq *t, unsigned i, uint32_t old_index, unsigned j,
		uint32_t new_index);
/** Fill a PUBLISH (add) or UNPUBLISH request from an RR in text form. */
void fx_rr(struct fx *fx, struct treq *t, bool add, const char *text);
/** Free what fx_rr made. */
void fx_treq_clear(struct treq *t);

/** The served zone has records at <index>.<id of i>. */
bool fx_has_device(struct fx *fx, unsigned i, uint32_t index);
/** Number of journal rows in the store (read-only connection). */
size_t fx_store_journal_rows(struct fx *fx);
/** The serial the store holds (zone_meta). */
uint32_t fx_store_serial(struct fx *fx);
/** The RRSIGs in a diff's added RRs that cover @p type. */
size_t fx_diff_rrsigs(const struct zone_diff *d, uint16_t type);

#endif
