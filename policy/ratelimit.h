/*
 * policy_ratelimit: a token bucket per caller, kept by the daemon apart from
 * the immutable policy (a policy reload must not refill or empty buckets).
 *
 * Time is an argument (monotonic milliseconds), so that tests and audits can
 * replay decisions; the bucket never reads a clock. A bucket starts full.
 * Not thread-safe: the daemon's front process owns its buckets on one loop.
 *
 * @code
 *   struct policy_ratelimit *rl = NULL;
 *   r = policy_ratelimit_new(caller->rate_per_second, caller->rate_burst,
 *                            now_ms, &rl);
 *   ...
 *   if (policy_ratelimit_check(rl, caller->name, now_ms, 1, &d) != POLICY_ALLOW)
 *       ... deny with d ...
 *   policy_ratelimit_free(rl);
 * @endcode
 */
#ifndef REGSIGN_POLICY_RATELIMIT_H
#define REGSIGN_POLICY_RATELIMIT_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"

struct policy_ratelimit;

/**
 * Creates a full bucket of @p burst tokens refilled at @p per_second tokens
 * per second, as of time @p now_ms.
 * @return YCONF_OK with a bucket in @p out (free with policy_ratelimit_free()),
 *         YCONF_EINVAL unless 1 <= per_second, burst <= 1000000, YCONF_ENOMEM.
 */
int policy_ratelimit_new(int64_t per_second, int64_t burst, uint64_t now_ms,
                         struct policy_ratelimit **out);

/** Frees a bucket; NULL is a no-op. */
void policy_ratelimit_free(struct policy_ratelimit *rl);

/**
 * Changes rate and burst (after a policy reload) keeping the tokens held,
 * capped at the new burst. @return YCONF_OK or YCONF_EINVAL.
 */
int policy_ratelimit_set(struct policy_ratelimit *rl, int64_t per_second, int64_t burst,
                         uint64_t now_ms);

/**
 * Takes @p n tokens at time @p now_ms if the bucket holds them; takes nothing
 * otherwise. A time earlier than the last one seen counts as no time passed.
 * @return true if the tokens were taken.
 */
bool policy_ratelimit_take(struct policy_ratelimit *rl, uint64_t now_ms, uint32_t n);

/** Whole tokens the bucket holds at @p now_ms (without taking any). */
uint64_t policy_ratelimit_available(struct policy_ratelimit *rl, uint64_t now_ms);

/**
 * policy_ratelimit_take() as a decision: rule "callers.<caller_name>.rate-limit",
 * POLICY_DENY_RATE when the bucket is empty. A NULL bucket (caller without a
 * rate limit) always allows.
 */
enum policy_code policy_ratelimit_check(struct policy_ratelimit *rl, const char *caller_name,
                                        uint64_t now_ms, uint32_t n,
                                        struct policy_decision *d);

#endif /* REGSIGN_POLICY_RATELIMIT_H */
