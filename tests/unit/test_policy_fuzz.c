/*
 * Mutation test of the policy and yconf parsers: thousands of corrupted
 * variants of the example policy, generated from a fixed seed, must each be
 * either accepted or refused with a "file:..." message, never crash, hang or
 * leak (the sanitizer build checks the last two). Built with
 * -DREGSIGN_LIBFUZZER the same entry point serves libFuzzer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

#ifndef POLICY_SOURCE_DIR
#error POLICY_SOURCE_DIR must be defined by the build
#endif

/* Parses one input as a policy; returns the result after checking the
 * error message names the file. */
static int
fuzz_one(const uint8_t *data, size_t len)
{
    char err[YCONF_ERRMAX];
    struct policy *pol = NULL;
    int r;

    err[0] = '\0';
    r = policy_parse("f.yaml", data, len, &pol, err, sizeof err);
    if (r == YCONF_OK) {
        /* Whatever loaded must answer questions without trouble. */
        struct policy_decision d;
        const struct policy_caller *c = NULL;

        if (policy_caller_find(pol, 1000, 1000, &c, &d) == POLICY_ALLOW)
            policy_check_publish(pol, c, POLICY_OP_PUBLISH, "a._asp.iotregistry.test.",
                                 "TXT", &d);
        policy_free(pol);
    } else if (strncmp(err, "f.yaml", 6) != 0 && r != YCONF_ENOMEM) {
        fprintf(stderr, "error without file name: \"%s\" (%d)\n", err, r);
        abort();
    }
    return r;
}

#ifdef REGSIGN_LIBFUZZER
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
    fuzz_one(data, len);
    return 0;
}
#endif

struct rng {
    uint64_t s;
};

static uint64_t
rng_next(struct rng *g)
{
    /* xorshift64: deterministic, so a failure can be replayed. */
    g->s ^= g->s << 13;
    g->s ^= g->s >> 7;
    g->s ^= g->s << 17;
    return g->s;
}

static size_t
mutate(struct rng *g, uint8_t *buf, size_t len, size_t cap)
{
    static const char tokens[] = ":-[]{}&*!|>\n \t'\"#\\,?%@`.0123456789\xff\xc3\x00";
    size_t n = 1 + rng_next(g) % 4;

    for (size_t k = 0; k < n && len > 0; k++) {
        size_t at = rng_next(g) % len;
        size_t span = 1 + rng_next(g) % 16;

        switch (rng_next(g) % 5) {
        case 0: /* replace a byte with a YAML-significant one */
            buf[at] = (uint8_t)tokens[rng_next(g) % (sizeof(tokens) - 1)];
            break;
        case 1: /* insert one */
            if (len < cap) {
                memmove(buf + at + 1, buf + at, len - at);
                buf[at] = (uint8_t)tokens[rng_next(g) % (sizeof(tokens) - 1)];
                len++;
            }
            break;
        case 2: /* delete a span */
            if (at + span > len)
                span = len - at;
            memmove(buf + at, buf + at + span, len - at - span);
            len -= span;
            break;
        case 3: /* duplicate a span */
            if (at + span > len)
                span = len - at;
            if (len + span <= cap) {
                memmove(buf + at + span, buf + at, len - at);
                len += span;
            }
            break;
        default: /* flip a bit */
            buf[at] ^= (uint8_t)(1u << (rng_next(g) % 8));
            break;
        }
    }
    return len;
}

static void
test_mutations(void **state)
{
    const char *path = POLICY_SOURCE_DIR "/policy/policy.example.yaml";
    uint8_t *seed, *buf;
    size_t len, cap;
    struct rng g = { 0x9e3779b97f4a7c15ULL };
    int accepted = 0, refused = 0;
    FILE *f = fopen(path, "rb");

    (void)state;
    assert_non_null(f);
    seed = malloc(1 << 16);
    assert_non_null(seed);
    len = fread(seed, 1, 1 << 16, f);
    fclose(f);
    assert_true(len > 100);
    cap = len * 2;
    buf = malloc(cap);
    assert_non_null(buf);
    /* The unmodified file loads. */
    assert_int_equal(fuzz_one(seed, len), YCONF_OK);
    for (int i = 0; i < 20000; i++) {
        size_t n;

        memcpy(buf, seed, len);
        n = mutate(&g, buf, len, cap);
        if (fuzz_one(buf, n) == YCONF_OK)
            accepted++;
        else
            refused++;
    }
    /* Both outcomes must occur, or the mutations test nothing. */
    assert_true(accepted > 100);
    assert_true(refused > 1000);
    free(buf);
    free(seed);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mutations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
