/**
 * @file zonepub.h
 * @brief The registry zone inside regsignd: changes grouped into serials,
 * signed through an asynchronous signer, committed with the store, and only
 * then published to the DNS listener.
 *
 * zonepub holds two copies of the zone (libregsign-zone, zonesigner/zone.h):
 *  - the @b served zone, read by the DNS listener and NOTIFY on the loop
 *    thread. It only ever holds committed versions: a new serial is applied
 *    to it after the store transaction that carries it has committed.
 *  - the @b working zone, owned by the pipeline below. Each version is made
 *    on it first, on zonepub's own zone thread (so that building, signing
 *    and verifying a version never stalls the loop), and its changed rows
 *    are written to the store from it.
 * After a commit the same change is replayed on the served zone with the
 * signatures already made (no signing, no verification: the working zone
 * verified them), which gives a byte-identical version. Memory is therefore
 * twice that of one zone (about 2 x 272 bytes per seed-style device).
 *
 * Pipeline (one job at a time on the zone thread; groups and re-signing
 * overlap their commits, see below):
 *  1. loop thread: requests submitted with zonepub_submit() queue up; when
 *     the zone thread is free they are taken, at most @c group_max at once,
 *     at the end of the current loop iteration (no timer: requests that
 *     arrive together share a group, an idle daemon adds no delay). While a
 *     group is on the zone thread new requests wait and form the next group.
 *  2. zone thread: one zone_change for the whole group on the working zone;
 *     a request whose change is refused (name exists, nothing to remove,
 *     reserved name) drops out with its own error without spoiling the
 *     others; all signatures of the group go to the signer in ONE batch
 *     (zonepub_signer, called on the loop thread); the zone's self-check runs
 *     on what changed.
 *  3. writer thread: one commit_item (signer/commit.h) writes the changed
 *     names, the IXFR diff (the journal is pruned by count, bytes and age),
 *     the serial, the expiry index, and each request's own rows through its
 *     store_run hook, all in one transaction.
 *  4. loop thread: after the commit the version is replayed on the served
 *     zone, the journal the listener reads gets the diff, the @c published
 *     callback runs (the daemon sends NOTIFY), then each request's done
 *     callback runs with the new serial.
 * Once a version is handed to the writer (step 3), the zone thread makes the
 * next group's version on top of it (step 2 of version N+1 overlaps steps 3
 * and 4 of version N); commits, replays and replies stay in version order.
 * The changed rows are exported on the zone thread with each version, so the
 * writer never reads the working zone while the next version is made. The
 * zone file, bulk imports and rebuilds do not overlap anything.
 * A group that fails to sign, fails its self-check or fails to commit
 * leaves the served zone and the store exactly as they were, and each of its
 * requests gets the error; a version made on top of one whose commit failed
 * is not written (the writer sees the store is not at its starting serial)
 * and fails too; after a failed commit the working zone is rebuilt from the
 * served one, once no version is pending, before anything else runs.
 *
 * At start (zonepub_load(), zonepub_open()) only the served zone is loaded
 * from the store, without verifying or making any signature; the working
 * zone is rebuilt from it by the first job on the zone thread, so the
 * listener can answer before that (changes wait for it).
 *
 * What the DNS listener sees: zonepub_zone() is the served zone, and
 * zonepub_journal() reads an in-memory copy of the committed journal. Both
 * change only in step 4, on the loop thread, so the listener never sees an
 * uncommitted serial. An AXFR streaming while a new serial is applied is cut
 * by the listener (dns_answer_next() returns DNS_ECHANGED when the zone's
 * serial moved) and the secondary retries; IXFR answers are built from the
 * journal's diffs, which never change once added.
 *
 * The same pipeline carries the scheduler's jobs: re-signing what entered its
 * refresh window (bounded per tick, zone_resign_due()), removing the records
 * of certificates whose notAfter passed (bounded per tick), and bulk
 * imports. Jobs of different kinds take turns so that a steady stream of
 * requests cannot starve re-signing. The zone file (written atomically every
 * @c zone_file_interval seconds when the serial changed, and on demand) is
 * not written on the zone thread: a thread of its own streams the store's
 * rows of the committed serial (one read transaction on a read-only
 * connection of its own) into the file (zonesigner/zone_rows.h), so changes
 * never wait for it (about 4 s at 1,000,000 devices). One write at a time;
 * requests that arrive during a write are answered by the next one.
 * When nothing else is ready, each tick also verifies one slice of every
 * signature of the working zone (zone_verify_slice()), a full pass within
 * the device refresh period; a bad signature is logged, counted in the
 * status (verify_*) and its RRset re-signed in the next version.
 *
 * Threads: every function here is called on the loop thread; callbacks run
 * there too, except zonepub_req::store_run / store_undo and
 * zonepub_bulk::store_run, which run on the commit pipeline's writer thread
 * inside the zone's transaction.
 *
 * Memory: the caller owns its requests (embed struct zonepub_req in your own
 * request) and everything they point to, until their done callback. zonepub
 * copies its options and zone parameters.
 *
 * In regsignd (see also signer/zonepub_hsm.h):
 *  1. once the HSM process is ready: zonepub_hsm_init(), zonepub_hsm_keys();
 *     in its callback zonepub_params_from_policy(), the DNSKEYs, the issuing
 *     CA's DER, then zonepub_new() with zonepub_hsm_signer() and
 *     zonepub_open(zp, writer store, commit pipeline, opened_cb);
 *  2. in opened_cb: the DNS listener and NOTIFY on zonepub_zone() and
 *     zonepub_journal(); @c published sends NOTIFY;
 *  3. ISSUE / REVOKE / REISSUE / PUBLISH / UNPUBLISH: the step that writes
 *     the request's result becomes the request's store_run, submitted with
 *     its zone change(s) through zonepub_submit(); the reply goes out from
 *     done with the serial. A request refused by the zone (status != 0)
 *     wrote nothing: the daemon records that outcome itself;
 *  4. STATUS: zonepub_status_get(); shutdown: zonepub_close() before
 *     commit_close() and hsmlink_close(), then zonepub_free().
 */
#ifndef REGSIGN_SIGNER_ZONEPUB_H
#define REGSIGN_SIGNER_ZONEPUB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "signer/commit.h"
#include "signer/dns_journal.h"
#include "signer/store.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_ldns.h"

/** The one error enum of zonepub; zonepub_strerror() names them. */
enum zonepub_err {
	ZONEPUB_OK = 0,
	ZONEPUB_ENOMEM = -1,    /**< an allocation failed */
	ZONEPUB_EINVAL = -2,    /**< malformed argument or change (bad id, index, RR) */
	ZONEPUB_EEXIST = -3,    /**< the name or record is already published */
	ZONEPUB_ENOENT = -4,    /**< nothing is published there */
	ZONEPUB_ERESERVED = -5, /**< reserved name or DNSSEC-managed type */
	ZONEPUB_ESIGN = -6,     /**< the signer failed; nothing changed */
	ZONEPUB_ECHECK = -7,    /**< the zone's self-check failed; the previous serial stays */
	ZONEPUB_ESTORE = -8,    /**< the store transaction failed and was rolled back */
	ZONEPUB_EFATAL = -9,    /**< state on disk unknown, or memory diverged from it: exit */
	ZONEPUB_ESTATE = -10,   /**< not in a state that allows this (not loaded, closing) */
	ZONEPUB_ECLOSED = -11,  /**< zonepub was closed before the request ran */
	ZONEPUB_EIO = -12,      /**< the zone file could not be written */
	ZONEPUB_EFORMAT = -13,  /**< stored zone data is malformed or inconsistent */
	ZONEPUB_EZONE = -14,    /**< another error of the zone library */
	ZONEPUB_EWITHDRAWN = -15, /**< the signer withdrew the batch: a request in the
				   *   version may not be signed for (its audit intent did
				   *   not commit); nothing changed, not a failure */
};

/** @brief Static English text for an error code; never NULL. */
const char *zonepub_strerror(int err);

/** @brief The zonepub error for a libregsign-zone error (ZONE_E*). */
int zonepub_err_from_zone(int zone_err);

/* ---- The asynchronous signer ---- */

/** Completion of a signing batch: 0 when every sig[] was filled, else negative. */
typedef void (*zonepub_sign_done_fn)(void *arg, int status);

/**
 * How zonepub gets signatures. The daemon backs it with hsmlink_sign()
 * (role "ksk" or "zsk" by zone_sigreq::role, kind HSMPROTO_KIND_RRSIG_DATA,
 * raw r||s format); tests with in-memory keys.
 */
struct zonepub_signer {
	/**
	 * Loop thread. Sign @p n requests: write each 64-byte r||s into
	 * reqs[i].sig, then call @p done(@p arg, status) exactly once on the loop
	 * thread (inside this call or later). reqs and their data stay valid
	 * until @p done. Return 0 when @p done will be called, or a negative
	 * value (then it must not be called). ZONEPUB_EWITHDRAWN (either way)
	 * says the batch must not be signed at all: the version is dropped
	 * unchanged, its requests fail with ZONEPUB_EWITHDRAWN, and it counts
	 * as no failure of the zone.
	 */
	int (*sign)(void *ctx, struct zone_sigreq *reqs, size_t n, zonepub_sign_done_fn done,
		    void *arg);
	void *ctx;
};

/* ---- Options ---- */

/** Levels of zonepub's log events (syslog's order, like the daemon's). */
enum zonepub_log_level {
	ZONEPUB_LOG_ERR = 3,
	ZONEPUB_LOG_WARNING = 4,
	ZONEPUB_LOG_NOTICE = 5,
	ZONEPUB_LOG_INFO = 6,
	ZONEPUB_LOG_DEBUG = 7,
};

struct zonepub_opts {
	const struct zone_params *params; /**< required; deep-copied */
	struct zonepub_signer signer;     /**< required */
	size_t group_max;            /**< requests per group: 256 if 0 */
	size_t resign_budget;        /**< RRsets re-signed per tick: 10000 if 0 */
	uint32_t resign_interval;    /**< seconds between re-sign ticks: 10 if 0 */
	size_t expire_budget;        /**< expired devices removed per job: 1000 if 0 */
	uint32_t tick_ms;            /**< scheduler timer period: 1000 if 0 */
	uint32_t margin_grace;       /**< seconds overdue before STATUS fails: 3 x resign_interval if 0 */
	size_t journal_max_diffs;    /**< 10000 if 0 */
	size_t journal_max_bytes;    /**< 64 MiB if 0 */
	uint32_t journal_max_age;    /**< seconds: 7 days if 0 */
	const char *zone_file;       /**< absolute path; NULL: no zone file (copied) */
	uint32_t zone_file_interval; /**< seconds; 0: only on demand */
	/** Clock (seconds since the epoch); NULL: time(). Tests move time with it. */
	int64_t (*now)(void *arg);
	/**
	 * Loop thread: a new serial is in the served zone and the journal
	 * (send NOTIFY here). May be NULL.
	 */
	void (*published)(void *arg, uint32_t serial);
	/**
	 * Loop thread: the served zone no longer matches the store (a replay
	 * failed, which only running out of memory can cause). zonepub refuses
	 * further changes; the daemon should exit and be restarted, which
	 * reloads the committed state. May be NULL.
	 */
	void (*fatal)(void *arg, int err);
	/** Log sink: one line without newline, valid during the call. May be NULL. */
	void (*log)(void *arg, int level, const char *msg);
	/**
	 * Tests only (NULL in the daemon): called on the zone file writer's
	 * thread in the middle of each write (after the apex row, inside the
	 * write's read transaction) with @c file_hook_arg and the serial being
	 * written. It may block: only the writer waits for it.
	 */
	void (*file_hook)(void *hook_arg, uint32_t serial);
	void *file_hook_arg;
	void *arg;                   /**< passed to now, published, fatal and log */
};

/* ---- Changes ---- */

enum zonepub_op_kind {
	ZONEPUB_OP_DEVICE_ADD = 1,    /**< publish a device's records (ISSUE) */
	ZONEPUB_OP_DEVICE_REMOVE = 2, /**< remove <index>.<id> and below (REVOKE) */
	ZONEPUB_OP_RR_ADD = 3,        /**< PUBLISH one RR */
	ZONEPUB_OP_RR_REMOVE = 4,     /**< UNPUBLISH one RR */
};

/** One change; everything it points to is borrowed until the request is done. */
struct zonepub_op {
	enum zonepub_op_kind kind;
	/** DEVICE_ADD: the records; DEVICE_REMOVE: only id and index are read. */
	struct zone_device dev;
	/** DEVICE_ADD: the certificate's notAfter; the records go at that time. 0: never. */
	int64_t not_after;
	/** RR_ADD / RR_REMOVE: the RR (class IN). */
	const ldns_rr *rr;
};

struct zonepub_req;

/**
 * Writer thread, inside the zone's transaction: write the request's own rows
 * (certificate, audit result). @p env is the commit pipeline's env. Return
 * COMMIT_OK, COMMIT_ERR_STORAGE or COMMIT_ERR_FATAL (either fails the whole
 * transaction: every request of the group gets the error).
 */
typedef int (*zonepub_store_fn)(struct zonepub_req *rq, void *env);
/** Writer thread: the transaction failed after store_run; forget what it set up. */
typedef void (*zonepub_undo_fn)(struct zonepub_req *rq, void *env);
/**
 * Loop thread: the request is finished. @p status 0: its change is committed
 * and published in @p serial. Otherwise a ZONEPUB_E* error and nothing of it
 * is in the zone or the store (@p serial is the served serial).
 */
typedef void (*zonepub_done_fn)(struct zonepub_req *rq, int status, uint32_t serial);

/**
 * A request: one or more changes that are published together in one serial
 * or not at all (REISSUE: remove the old index and add the new one).
 * Embed it in the caller's own request.
 */
struct zonepub_req {
	const struct zonepub_op *ops; /**< borrowed until done */
	size_t n_ops;                 /**< 1.. */
	zonepub_store_fn store_run;   /**< may be NULL */
	zonepub_undo_fn store_undo;   /**< may be NULL */
	zonepub_done_fn done;         /**< required */
	/**
	 * Set by zonepub before store_run: the serial the version carrying this
	 * request will have if it commits (for the request's own records, e.g.
	 * the audit RESULT). Read it in store_run only.
	 */
	uint32_t serial;
	/* Private to zonepub. */
	int status;
	struct zonepub_req *next;
};

/** A bulk import: registries migrating in (zone_bulk_import()). */
struct zonepub_bulk {
	const struct zone_device *devs; /**< borrowed until done */
	const int64_t *not_after;       /**< n entries (0: never expires) or NULL */
	size_t n;
	size_t batch;                   /**< signatures per signer batch: 4096 if 0 */
	/** Writer thread, in the import's transaction (e.g. an audit row). May be NULL. */
	int (*store_run)(struct zonepub_bulk *b, void *env);
	/** Loop thread: finished; 0 and the new serial, or an error (nothing changed). */
	void (*done)(struct zonepub_bulk *b, int status, uint32_t serial);
	/* Private to zonepub. */
	struct zonepub_bulk *next;
};

/* ---- Status ---- */

struct zonepub_status {
	uint32_t serial;              /**< published (served) serial; 0 before the apex */
	size_t names;                 /**< owner names, apex included */
	size_t bytes;                 /**< heap bytes of the served zone's names */
	int64_t earliest_expiration;  /**< earliest RRSIG expiration */
	int64_t next_due;             /**< when the next RRset enters its refresh window */
	bool margin_failure;          /**< an RRset sits in its refresh window past the grace */
	bool expired;                 /**< some signature has expired: the zone is bogus */
	size_t queued;                /**< requests waiting for a group */
	uint64_t groups;              /**< versions published (any kind) */
	uint64_t changes;             /**< requests published */
	uint64_t signatures;          /**< signatures in published versions */
	uint64_t resigned;            /**< versions made by the re-sign scheduler */
	uint64_t expired_removed;     /**< devices removed because their certificate expired */
	uint64_t failures;            /**< versions that failed (sign, check, store) */
	uint64_t check_failures;      /**< of which failed the self-check */
	size_t journal_diffs;         /**< diffs the listener can serve IXFR from */
	size_t journal_bytes;
	int last_error;               /**< ZONEPUB_E* of the last failure, 0 if none */
	int64_t last_error_time;
	char last_error_msg[160];
	uint32_t zone_file_serial;    /**< serial of the last zone file written (0: none) */
	int64_t zone_file_time;
	/** Bytes of replaced zone files freed a slice at a time (see
	 * signer/zonepub_file.c); a replaced file still open elsewhere is left whole. */
	uint64_t zone_file_freed;
	/* The background verification of every signature (a slice per tick
	 * when idle, on the working zone; see zonepub_sched.c). */
	uint64_t verify_passes;       /**< full passes completed */
	int64_t verify_pass_started;  /**< when the current pass began (0: not yet) */
	uint64_t verify_names;        /**< names verified, all passes */
	uint64_t verify_signatures;   /**< signatures verified, all passes */
	uint64_t verify_failures;     /**< RRsets whose signature failed verification */
	uint64_t verify_repairs;      /**< of which were made due for re-signing */
	char verify_last_failure[300]; /**< "<owner> <TYPE>" of the latest, "" if none */
	int64_t verify_last_failure_time;
	bool verify_failing;          /**< a failure was found and no complete pass
				       *   since found the zone clean */
};

/* ---- Life cycle ---- */

struct zonepub;

/**
 * @brief A zonepub on @p loop with empty zones; starts its zone thread.
 * @return 0, ZONEPUB_EINVAL (missing params or signer; bad zone parameters),
 *         ZONEPUB_ENOMEM.
 */
int zonepub_new(uv_loop_t *loop, const struct zonepub_opts *opts, struct zonepub **out);

/**
 * @brief Rebuild both zones and the journal from the store, without
 * verifying or making any signature (expired ones are renewed first by the
 * scheduler). Call before commit_new() on @p st (or while nothing else uses
 * @p st): it reads the store on the calling thread. Afterwards zonepub uses
 * @p st only on the commit pipeline's writer thread.
 * An empty store is fine: zonepub_start() then creates and signs the apex.
 * After an error the zonepub can only be closed.
 * @return 0, ZONEPUB_EFORMAT (rows do not form a valid zone, serial or origin
 *         mismatch), ZONEPUB_ESTORE, ZONEPUB_ENOMEM, ZONEPUB_ESTATE (twice).
 */
int zonepub_load(struct zonepub *zp, store_t *st);

/**
 * @brief zonepub_load() and zonepub_start() for a daemon whose commit
 * pipeline already runs: the rows are read on the pipeline's writer thread
 * (an item of its own, outside any transaction), then publishing starts.
 * Requests submitted meanwhile wait. @p done runs on the loop with 0 or the
 * error of zonepub_load() (ZONEPUB_ECLOSED if closed first); after an error
 * the zonepub can only be closed.
 * @return 0 (done will run), ZONEPUB_ESTATE (loaded already, or no commit or
 *         done given), ZONEPUB_ENOMEM.
 */
int zonepub_open(struct zonepub *zp, store_t *st, commit_t *commit,
		 void (*done)(void *arg, int status), void *arg);

/**
 * @brief Start publishing: changes go through @p commit from now on, the
 * scheduler timer starts, and an empty zone gets its apex (SOA, NS, DNSKEY,
 * CA CERT) signed once.
 * @return 0, ZONEPUB_ESTATE (not loaded, or started already).
 */
int zonepub_start(struct zonepub *zp, commit_t *commit);

/** @brief Queue a request (see struct zonepub_req); its done callback runs later, never inside this call. */
void zonepub_submit(struct zonepub *zp, struct zonepub_req *rq);

/**
 * @brief Requests submitted to @p zp and not yet taken into a version
 * (zonepub's queue; loop thread). O(1): the intent gate's scope asks once
 * per batch (zonepub_status_get() walks the whole zone).
 */
size_t zonepub_queued(const struct zonepub *zp);

/**
 * @brief Queue a bulk import. The zone must hold no device yet (else the
 * import fails with ZONEPUB_ESTATE or ZONEPUB_EEXIST). The journal is reset:
 * secondaries AXFR the result.
 */
void zonepub_bulk_import(struct zonepub *zp, struct zonepub_bulk *b);

/**
 * @brief Write the zone file soon: at once on the file thread if it is
 * idle, else by the write after the one in progress; the file holds the
 * serial committed when that write starts (its read transaction).
 * @p done (may be NULL) gets 0 and the serial written, or an error
 * (ZONEPUB_EFORMAT: a stored row does not parse, named in the log and in
 * STATUS' last_error_msg; the old file stays).
 * @return 0, ZONEPUB_EINVAL (no zone file configured), ZONEPUB_ESTATE, ZONEPUB_ENOMEM.
 */
int zonepub_zone_file_write(struct zonepub *zp, void (*done)(void *arg, int status,
							       uint32_t serial),
			    void *arg);

/**
 * @brief Run the scheduler now: re-sign if due, remove expired devices,
 * write the zone file if due. The timer calls it every @c tick_ms; tests
 * that move the clock call it directly.
 */
void zonepub_tick(struct zonepub *zp);

/**
 * @brief The served zone: what the DNS listener and NOTIFY read (loop thread
 * only; with zonepub_open(), only after its done callback).
 */
const struct zone *zonepub_zone(const struct zonepub *zp);

/** @brief The journal the DNS listener reads (valid while @p zp lives). */
struct dns_journal zonepub_journal(struct zonepub *zp);

/**
 * @brief STATUS figures. Walks the served zone (zone_status_get()), so it
 * costs time proportional to the zone's size.
 */
void zonepub_status_get(const struct zonepub *zp, struct zonepub_status *st);

/** @brief True when no request, job, verification slice or version is pending or in progress. */
bool zonepub_idle(const struct zonepub *zp);

/**
 * @brief Close: queued requests get ZONEPUB_ECLOSED, the version in progress
 * (if any) finishes first, a zone file write in progress too; then, with a
 * zone file configured, the file is written once more if the served serial
 * is not in it yet (and waited for); then the threads stop, handles close and
 * @p cb (may be NULL) runs on the loop. The signer and the commit pipeline
 * must stay usable until then: close zonepub before commit_close() and
 * hsmlink_close(). Then call zonepub_free().
 */
void zonepub_close(struct zonepub *zp, void (*cb)(void *arg), void *arg);

/** @brief Free a closed zonepub (after its close callback); NULL is a no-op. */
void zonepub_free(struct zonepub *zp);

#endif
