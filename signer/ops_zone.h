/**
 * @file ops_zone.h
 * @brief Internal to regsignd: the registry zone inside the daemon
 * (signer/zonepub.h), its DNS listener and NOTIFY (signer/dns_server.h,
 * signer/dns_notify.h), and the zone requests of the operation handlers.
 *
 * Start-up (ops_zone_start, after the HSM process said HELLO): the KSK's and
 * ZSK's public keys come from the HSM process and become the zone's DNSKEYs;
 * the zone's parameters come from the policy's zone section and the
 * configuration's name servers; zonepub loads the zone from the store without
 * re-signing (a fresh store gets its apex signed once); then the listener
 * answers on dns.listen, transfers go to dns.allow-transfer (TSIG keys from
 * dns.tsig-keys), NOTIFY to dns.notify at every new serial, and the zone's NS
 * RRset and in-zone name servers' addresses (glue) are brought in line with
 * the configuration. Only then does the daemon open its signing socket.
 *
 * A handler that changes the zone embeds a struct ops_zreq in its state and
 * submits it with ops_zone_submit(); its store_run writes the request's own
 * rows (certificate, revocation, RESULT record) in the zone's transaction,
 * and its done callback gets the serial that holds the change.
 *
 * Everything here runs on the loop thread, except store_run callbacks (the
 * writer thread).
 */
#ifndef REGSIGN_SIGNER_OPS_ZONE_H
#define REGSIGN_SIGNER_OPS_ZONE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "signer/buf.h"
#include "signer/dns_journal.h"
#include "signer/dns_server.h"
#include "signer/ops_ctx.h"
#include "signer/zonepub.h"
#include "signer/zonepub_hsm.h"

/** A DNSKEY of an extra zone, for the key tag of its RRSIGs (SIGN_RRSET). */
struct ops_extra_key {
	char role[HSMPROTO_MAX_ROLE + 1]; /**< "<zone>/ksk" or "<zone>/zsk" */
	bool have;                        /**< the HSM process gave its public key */
	struct zone_dnskey key;
};

struct ops_zone {
	struct ops_ctx *ctx;
	struct zonepub *zp;
	struct zonepub_hsm hsm;
	/* In front of hsm: requests submitted before their intent committed
	 * (ops_zone_submit_held()) hold it, so that no signature is asked for
	 * them before that. */
	struct zonepub_gate gate;
	/* The requests submitted through ops_zone and not done yet, in the
	 * order zonepub got them (the gate's scope), and how many requests
	 * not submitted through ops_zone zonepub may hold (the NS change). */
	struct ops_zreq *in_head, *in_tail;
	size_t n_inside;
	size_t foreign;
	struct zone_params params;
	/*
	 * params' strings, copied: the policy they came from is freed by the
	 * next reload, and params.origin is read after that (NS changes, logs).
	 */
	char origin[1025];
	char dance_prefix[64];
	const char **ns;               /* params.ns: name server names */
	unsigned styles;               /* record styles at start (reported) */
	struct dns_journal journal;    /* the listener reads it by pointer */
	struct dns_keyring *keys;
	struct dns_acl *acl;
	struct dns_server *server;
	struct dns_notify *notify;
	struct ops_extra_key *extra;   /* 2 per extra zone: ksk, zsk */
	size_t n_extra;
	int pending_keys;              /* public keys still awaited from the HSM process */
	int keys_status;               /* -1: the registry's keys could not be had */
	int64_t last_published;        /* when the latest serial was published */
	bool open;                     /* zonepub loaded and publishing */
	bool closing;
	int closes;                    /* asynchronous closes still running */
	uint64_t notifies;             /* serials announced */
	void (*started)(struct ops_ctx *ctx, int status);
	void (*closed)(struct ops_ctx *ctx);
};

/** A zone change of a request; embed it in the handler's state. */
struct ops_zreq {
	struct zonepub_req zr;         /* first: zonepub gives it back */
	struct ops_req *r;
	struct zonepub_op ops[2];
	/**
	 * Writer thread: the request's rows, in the zone's transaction (may be
	 * NULL); @p serial is the one the change will have if it commits.
	 */
	int (*store)(struct ops_req *r, struct ops_writer *w, uint32_t serial);
	/** Loop thread: the change is committed (0, @p serial) or failed (ZONEPUB_E*). */
	void (*done)(struct ops_req *r, int status, uint32_t serial);
	/* Private to ops_zone.c: the gate (see ops_zone_submit_held()). */
	bool held;                     /* holds the gate: its intent is not committed yet */
	bool inside;                   /* in zonepub: done has not run yet */
	bool cancelled;                /* its intent did not commit, and it is inside */
	uint64_t gate_epoch;           /* zonepub_gate_failures() when (re)submitted */
	struct ops_zreq *in_prev, *in_next; /* in the zone's in_head list while inside */
};

/* ---- internal to the ops_zone*.c files ---- */

/** ops_zone_ns.c: checks dns.nameservers and sets the zone's NS parameters; 0 or -1 (logged). */
int ops_zone_ns_check(struct ops_zone *z);
/** ops_zone_ns.c: submits the change that brings NS and glue in line, if any is needed. */
void ops_zone_ns_apply(struct ops_zone *z);
/** ops_zone_dns.c: TSIG keys, allow-list, listener, NOTIFY; 0 or -1 (logged). */
int ops_zone_listen(struct ops_zone *z);
/** ops_zone_dns.c: the DNS modules' log sink (ctx is the struct ops_zone). */
void ops_zone_dns_log(void *arg, enum dns_log_level level, const char *msg);

/* ---- for the handlers and the life cycle ---- */

/**
 * Starts the zone and the listener (see the file comment); @p started runs
 * once on the loop with 0, or -1 after the reason was logged.
 * @return 0 (started will run) or -1 (logged; started will not run).
 */
int ops_zone_start(struct ops_ctx *ctx, void (*started)(struct ops_ctx *ctx, int status));

/**
 * Writes the zone file if the zone changed since the last one, then closes
 * zonepub (its version in progress finishes), the listener and NOTIFY;
 * @p closed runs on the loop when all is closed. Call before commit_close()
 * and hsmlink_close(). Without a zone, @p closed runs at once.
 */
void ops_zone_close(struct ops_ctx *ctx, void (*closed)(struct ops_ctx *ctx));

/** Frees what ops_zone_close() closed (NULL zone: nothing). */
void ops_zone_free(struct ops_ctx *ctx);

/** The served serial (0 before the apex, or without a zone). */
uint32_t ops_zone_serial(const struct ops_ctx *ctx);

/** The served zone, or NULL before it is open. */
const struct zone *ops_zone_served(const struct ops_ctx *ctx);

/** Submits @p z (fill ops, n_ops, store, done and r first). */
void ops_zone_submit(struct ops_ctx *ctx, struct ops_zreq *z);

/**
 * Submits @p z while the request's audit intent is still committing: the
 * zone thread builds the change at once, but no signature is asked for it
 * (nor for any other version meanwhile) until ops_zone_release(). Call
 * ops_zone_release() exactly once, when the intent's commit is done. If the
 * intent did not commit, the change is never signed: @p z's done then runs
 * with an error (ZONEPUB_ESIGN when the group had reached its signer; the
 * group's other requests are submitted again, unseen by their handlers).
 */
void ops_zone_submit_held(struct ops_ctx *ctx, struct ops_zreq *z);

/** The intent of a request submitted with ops_zone_submit_held() is durable
 * (@p ok true) or refused or failed (@p ok false: never publish it). */
void ops_zone_release(struct ops_ctx *ctx, struct ops_zreq *z, bool ok);

/** The wire code for a zonepub error of a request's change. */
uint32_t ops_zone_wire_code(int zerr);

/** The DNSKEY of an extra zone's role ("asp.test./zsk"), or NULL. */
const struct zone_dnskey *ops_zone_extra_key(const struct ops_ctx *ctx, const char *role);

/** SIGUSR1: write the zone file now. */
void ops_zone_sigusr1(uv_signal_t *h, int signum);

/**
 * Appends the zone's JSON members to a STATUS (@p full false: serial and
 * health) or ZONE_STATUS document (@p full true), without braces around them.
 * @p failures receives how many health failures were listed.
 */
void ops_zone_json(struct ops_ctx *ctx, struct buf_writer *w, bool full, int *failures);

#endif
