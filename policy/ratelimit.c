/*
 * policy_ratelimit: token bucket (see ratelimit.h).
 *
 * Tokens are kept in thousandths so that refills of a few milliseconds are
 * not lost to rounding: at r tokens per second, one millisecond adds r
 * thousandths of a token. With r and burst at most 10^6 nothing overflows.
 */
#include "policy/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>

#include "policy/policy_int.h"

#define RL_MAX 1000000

struct policy_ratelimit {
    uint64_t per_second;
    uint64_t capacity;   /* burst * 1000 */
    uint64_t milli;      /* tokens held, in thousandths */
    uint64_t last_ms;
};

static void
refill(struct policy_ratelimit *rl, uint64_t now_ms)
{
    uint64_t elapsed;

    if (now_ms <= rl->last_ms)
        return;
    elapsed = now_ms - rl->last_ms;
    rl->last_ms = now_ms;
    /* A long idle time fills the bucket; cap before multiplying. */
    if (elapsed >= rl->capacity / rl->per_second + 1) {
        rl->milli = rl->capacity;
        return;
    }
    rl->milli += elapsed * rl->per_second;
    if (rl->milli > rl->capacity)
        rl->milli = rl->capacity;
}

int
policy_ratelimit_new(int64_t per_second, int64_t burst, uint64_t now_ms,
                     struct policy_ratelimit **out)
{
    struct policy_ratelimit *rl;

    if (out == NULL || per_second < 1 || per_second > RL_MAX || burst < 1 || burst > RL_MAX)
        return YCONF_EINVAL;
    rl = calloc(1, sizeof(*rl));
    if (rl == NULL)
        return YCONF_ENOMEM;
    rl->per_second = (uint64_t)per_second;
    rl->capacity = (uint64_t)burst * 1000;
    rl->milli = rl->capacity;
    rl->last_ms = now_ms;
    *out = rl;
    return YCONF_OK;
}

void
policy_ratelimit_free(struct policy_ratelimit *rl)
{
    free(rl);
}

int
policy_ratelimit_set(struct policy_ratelimit *rl, int64_t per_second, int64_t burst,
                     uint64_t now_ms)
{
    if (rl == NULL || per_second < 1 || per_second > RL_MAX || burst < 1 || burst > RL_MAX)
        return YCONF_EINVAL;
    refill(rl, now_ms);
    rl->per_second = (uint64_t)per_second;
    rl->capacity = (uint64_t)burst * 1000;
    if (rl->milli > rl->capacity)
        rl->milli = rl->capacity;
    return YCONF_OK;
}

bool
policy_ratelimit_take(struct policy_ratelimit *rl, uint64_t now_ms, uint32_t n)
{
    uint64_t need = (uint64_t)n * 1000;

    refill(rl, now_ms);
    if (need > rl->milli)
        return false;
    rl->milli -= need;
    return true;
}

uint64_t
policy_ratelimit_available(struct policy_ratelimit *rl, uint64_t now_ms)
{
    refill(rl, now_ms);
    return rl->milli / 1000;
}

enum policy_code
policy_ratelimit_check(struct policy_ratelimit *rl, const char *caller_name,
                       uint64_t now_ms, uint32_t n, struct policy_decision *d)
{
    char rb[POLICY_RULE_MAX], sb[128];

    if (d == NULL)
        return POLICY_DENY_ARGUMENT;
    policy_text_join(rb, sizeof rb, "callers.", policy_show(caller_name, sb, sizeof sb),
                     ".rate-limit", NULL, NULL);
    if (rl == NULL)
        return policy_decide(d, POLICY_ALLOW, rb, "caller has no rate limit");
    if (!policy_ratelimit_take(rl, now_ms, n))
        return policy_decide(d, POLICY_DENY_RATE, rb, "rate limit of %llu per second "
                             "(burst %llu) reached", (unsigned long long)rl->per_second,
                             (unsigned long long)(rl->capacity / 1000));
    return policy_decide(d, POLICY_ALLOW, rb, "within rate limit");
}
