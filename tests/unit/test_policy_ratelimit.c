/* Unit tests of policy/ratelimit: the token bucket, driven by a fake clock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "policy/ratelimit.h"

static void
test_bucket(void **state)
{
    struct policy_ratelimit *rl = NULL;
    uint64_t t = 5000; /* fake monotonic clock, ms */

    (void)state;
    assert_int_equal(policy_ratelimit_new(10, 20, t, &rl), YCONF_OK);
    /* A new bucket is full: the whole burst passes at once, then nothing. */
    assert_int_equal(policy_ratelimit_available(rl, t), 20);
    for (int i = 0; i < 20; i++)
        assert_true(policy_ratelimit_take(rl, t, 1));
    assert_false(policy_ratelimit_take(rl, t, 1));
    /* 10 per second: half a token after 50 ms is not enough, one after 100 ms. */
    assert_false(policy_ratelimit_take(rl, t + 50, 1));
    assert_true(policy_ratelimit_take(rl, t + 100, 1));
    assert_false(policy_ratelimit_take(rl, t + 100, 1));
    /* A clock that goes back adds nothing. */
    assert_false(policy_ratelimit_take(rl, t, 1));
    assert_false(policy_ratelimit_take(rl, t + 150, 1));
    assert_true(policy_ratelimit_take(rl, t + 200, 1));
    /* Taking several at once is all or nothing. */
    t += 200;
    assert_false(policy_ratelimit_take(rl, t + 400, 5));
    assert_int_equal(policy_ratelimit_available(rl, t + 400), 4);
    assert_true(policy_ratelimit_take(rl, t + 500, 5));
    assert_int_equal(policy_ratelimit_available(rl, t + 500), 0);
    /* Long idle refills to the burst, never more, without overflow. */
    assert_int_equal(policy_ratelimit_available(rl, t + 3000), 20);
    assert_int_equal(policy_ratelimit_available(rl, UINT64_MAX), 20);
    assert_false(policy_ratelimit_take(rl, UINT64_MAX, 21));
    assert_true(policy_ratelimit_take(rl, UINT64_MAX, 20));
    policy_ratelimit_free(rl);
    policy_ratelimit_free(NULL);
}

static void
test_set_and_limits(void **state)
{
    struct policy_ratelimit *rl = NULL;

    (void)state;
    assert_int_equal(policy_ratelimit_new(0, 1, 0, &rl), YCONF_EINVAL);
    assert_int_equal(policy_ratelimit_new(1, 0, 0, &rl), YCONF_EINVAL);
    assert_int_equal(policy_ratelimit_new(1000001, 1, 0, &rl), YCONF_EINVAL);
    assert_null(rl);
    assert_int_equal(policy_ratelimit_new(1000000, 1000000, 0, &rl), YCONF_OK);
    assert_true(policy_ratelimit_take(rl, 0, 1000000));
    assert_int_equal(policy_ratelimit_available(rl, 1), 1000);
    /* A smaller burst after a reload caps the tokens held. */
    assert_int_equal(policy_ratelimit_set(rl, 1, 3, 1000), YCONF_OK);
    assert_int_equal(policy_ratelimit_available(rl, 1000), 3);
    assert_int_equal(policy_ratelimit_available(rl, 60000), 3);
    assert_true(policy_ratelimit_take(rl, 60000, 3));
    assert_false(policy_ratelimit_take(rl, 60999, 1));
    assert_true(policy_ratelimit_take(rl, 61000, 1));
    assert_int_equal(policy_ratelimit_set(rl, 0, 3, 0), YCONF_EINVAL);
    policy_ratelimit_free(rl);
}

static void
test_check_decision(void **state)
{
    struct policy_ratelimit *rl = NULL;
    struct policy_decision d;

    (void)state;
    assert_int_equal(policy_ratelimit_new(50, 2, 0, &rl), YCONF_OK);
    assert_int_equal(policy_ratelimit_check(rl, "frontend", 0, 1, &d), POLICY_ALLOW);
    assert_string_equal(d.rule, "callers.frontend.rate-limit");
    assert_int_equal(policy_ratelimit_check(rl, "frontend", 0, 1, &d), POLICY_ALLOW);
    assert_int_equal(policy_ratelimit_check(rl, "frontend", 0, 1, &d), POLICY_DENY_RATE);
    assert_int_equal(d.code, POLICY_DENY_RATE);
    assert_string_equal(d.rule, "callers.frontend.rate-limit");
    assert_string_equal(d.message, "rate limit of 50 per second (burst 2) reached");
    assert_int_equal(policy_ratelimit_check(rl, "frontend", 20, 1, &d), POLICY_ALLOW);
    /* No bucket: the caller has no limit. */
    assert_int_equal(policy_ratelimit_check(NULL, "readers", 0, 1000, &d), POLICY_ALLOW);
    assert_string_equal(d.rule, "callers.readers.rate-limit");
    assert_int_equal(policy_ratelimit_check(rl, "x", 0, 1, NULL), POLICY_DENY_ARGUMENT);
    policy_ratelimit_free(rl);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bucket),
        cmocka_unit_test(test_set_and_limits),
        cmocka_unit_test(test_check_decision),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
