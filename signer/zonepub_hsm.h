/**
 * @file zonepub_hsm.h
 * @brief zonepub's signer and DNSKEYs backed by the HSM process (hsmlink).
 *
 * The daemon's front process never holds a DNSSEC private key: zonepub's
 * signing batches go to the HSM process as SIGN items of kind RRSIG_DATA in
 * raw r||s format, under the roles "ksk" (the DNSKEY RRset) and "zsk"
 * (everything else), and the HSM process enforces its per-role limits on
 * them. The zone's DNSKEY records are made from the public keys the HSM
 * process reports for the same roles.
 *
 * All functions run on the loop thread of the link.
 *
 * zonepub_params_from_policy() fills the zone's parameters from the policy's
 * zone section, the part of the daemon's set-up that is pure mapping.
 */
#ifndef REGSIGN_SIGNER_ZONEPUB_HSM_H
#define REGSIGN_SIGNER_ZONEPUB_HSM_H

#include "policy/policy.h"
#include "signer/hsmlink.h"
#include "signer/zonepub.h"
#include "zonesigner/zone_dnskey.h"

/** The HSM signer; embed it where it outlives the zonepub using it. */
struct zonepub_hsm {
	hsmlink_t *link;          /**< borrowed */
	const char *ksk_role;     /**< "ksk" */
	const char *zsk_role;     /**< "zsk" */
	uint64_t batches;         /**< batches answered */
	uint64_t failures;        /**< batches that failed */
	int last_status;          /**< enum hsmproto_status_code of the last failure */
	char last_reason[128];    /**< the HSM process's reason for it */
	/** The latest batch (for the stage trace): commit_now_ns() when it was
	 *  sent and answered, and its size. */
	uint64_t t_sent, t_answered;
	size_t last_n;
};

/** @brief Set up @p h for @p link with the roles "ksk" and "zsk". */
void zonepub_hsm_init(struct zonepub_hsm *h, hsmlink_t *link);

/** @brief The zonepub_signer that signs through @p h. */
struct zonepub_signer zonepub_hsm_signer(struct zonepub_hsm *h);

/** Result of zonepub_hsm_keys(): @p status 0 and both keys, or an error. */
typedef void (*zonepub_hsm_keys_fn)(void *arg, int status, const struct zone_dnskey *ksk,
				    const struct zone_dnskey *zsk);

/**
 * @brief Ask the HSM process for the KSK's and ZSK's public keys and make
 * their DNSKEYs (flags 257 and 256) for struct zone_params.
 * @p done runs once, later, on the loop: status 0, ZONEPUB_ESIGN (the HSM
 * process refused or is gone), ZONEPUB_EINVAL (a key is not EC P-256).
 * @return 0 (done will run), ZONEPUB_ENOMEM, ZONEPUB_ESIGN (link dead).
 */
int zonepub_hsm_keys(struct zonepub_hsm *h, zonepub_hsm_keys_fn done, void *arg);

/**
 * @brief Zone parameters from the policy's zone section: origin, TTLs,
 * signature lifetimes and refresh margins, inception offset, SOA minimum,
 * DANCE prefix (strings borrowed from @p pz) and whether the self-check
 * verifies fresh signatures (zone.verify-signatures: "none" turns it off;
 * "all" runs as "sampled" until the zone can verify every one). The rest
 * keeps the defaults of zone_params_init(); the caller adds the DNSKEYs
 * (zonepub_hsm_keys()), the issuing-CA certificate and the NS names.
 * @return 0, ZONEPUB_EINVAL (a value does not fit 32 bits).
 */
int zonepub_params_from_policy(const struct policy_zone *pz, struct zone_params *p);

/** @brief The zone_style bits (ZONE_STYLE_*) of the policy's record styles. */
unsigned zonepub_styles_from_policy(const struct policy_zone *pz);

/* ---- The intent gate ---- */

/**
 * A gate in front of a signer, so that a request's zone work can start
 * while its audit intent is still committing, but no signature for it is
 * asked before that intent is durable. Each such request holds the gate
 * from its submission until its intent committed (released, it may be
 * signed for) or was refused or failed (cancelled: it must never be signed
 * for). A batch that arrives while any hold is open waits; one that arrives
 * (or waits) while a cancelled request may still be inside zonepub is
 * withdrawn (ZONEPUB_EWITHDRAWN), which leaves the working zone unchanged
 * (zone_change_commit() fails with ZONE_ESIGN and changes nothing) and is
 * no failure of the zone; its group's other requests must be submitted
 * again (zonepub_gate_failures() tells them apart).
 *
 * By itself the gate does not know which requests a batch is for: every
 * hold counts, and a batch waits also for the holds of requests still
 * queued behind its version (one intent commit more). With a scope
 * function (zonepub_gate_scope_set()) the caller says whether a hold or a
 * cancelled request is among the requests the current version may hold,
 * and only those count. Loop thread only.
 */
struct zonepub_gate {
	struct zonepub_signer inner;   /**< where released batches go */
	size_t holds;                  /**< requests whose intent is not committed yet */
	size_t cancelled;              /**< cancelled requests still inside zonepub */
	uint64_t failures;             /**< batches the gate failed */
	uint64_t waited;               /**< batches that waited for a hold */
	/** Optional: whether the requests the version being signed may hold
	 *  include one that holds the gate or one that is cancelled. */
	void (*scope)(void *arg, bool *held, bool *cancelled);
	void *scope_arg;
	/* The batch waiting (at most one: zonepub signs one batch at a time). */
	bool waiting;
	struct zone_sigreq *reqs;
	size_t n;
	zonepub_sign_done_fn done;
	void *arg;
};

/** @brief Set up @p g in front of @p inner, open (no holds). */
void zonepub_gate_init(struct zonepub_gate *g, struct zonepub_signer inner);

/** @brief The zonepub_signer that signs through @p g. */
struct zonepub_signer zonepub_gate_signer(struct zonepub_gate *g);

/**
 * @brief Let @p scope decide which holds and cancellations concern the
 * version being signed (it must count every request that version may
 * hold; counting more only makes batches wait or fail more often).
 * Holds, releases and departures must still be reported.
 */
void zonepub_gate_scope_set(struct zonepub_gate *g,
			    void (*scope)(void *arg, bool *held, bool *cancelled), void *arg);

/** @brief A request whose intent is not committed yet entered zonepub. */
void zonepub_gate_hold(struct zonepub_gate *g);

/**
 * @brief The intent of a holding request committed (@p ok true) or did not
 * (refused, failed: @p ok false; @p inside says whether the request is still
 * in zonepub, and then it counts as cancelled until
 * zonepub_gate_cancel_over()). A waiting batch is sent once no hold is open,
 * or failed if a cancelled request is inside.
 */
void zonepub_gate_release(struct zonepub_gate *g, bool ok, bool inside);

/**
 * @brief A request that held the gate left zonepub (its done callback ran)
 * before its intent committed: its hold goes (it can no longer be signed
 * for); @p cancelled true: a cancelled request left (see release).
 */
void zonepub_gate_left(struct zonepub_gate *g, bool held, bool cancelled);

/** @brief How many batches the gate withdrew so far (a request that got
 * ZONEPUB_EWITHDRAWN since its submission goes again). */
uint64_t zonepub_gate_failures(const struct zonepub_gate *g);

#endif
