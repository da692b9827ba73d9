/* Unit tests of policy loading: the example file, and each validation error. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "policy/policy.h"

#ifndef POLICY_SOURCE_DIR
#error POLICY_SOURCE_DIR must be defined by the build
#endif

/* A small valid policy; the cases below change one piece of it. */
static const char base[] =
    "version: 1\n"                        /* 1 */
    "zone:\n"                             /* 2 */
    "  name: IoTRegistry.test.\n"         /* 3 */
    "profiles:\n"                         /* 4 */
    "  device:\n"                         /* 5 */
    "    validity: 365d\n"                /* 6 */
    "callers:\n"                          /* 7 */
    "  - name: frontend\n"                /* 8 */
    "    uid: 1000\n"                     /* 9 */
    "    operations: [issue]\n"           /* 10 */
    "    profiles: [device]\n";           /* 11 */

/* Returns base with the first @p from replaced by @p to (caller frees). */
static char *
edit(const char *from, const char *to)
{
    const char *at = strstr(base, from);
    char *out;

    if (at == NULL)
        fail_msg("'%s' not in the base policy", from);
    out = malloc(sizeof(base) + strlen(to));
    assert_non_null(out);
    memcpy(out, base, (size_t)(at - base));
    strcpy(out + (at - base), to);
    strcat(out, at + strlen(from));
    return out;
}

static int
load_text(const char *text, struct policy **pol, char *err, size_t errlen)
{
    err[0] = '\0';
    *pol = NULL;
    return policy_parse("p.yaml", text, strlen(text), pol, err, errlen);
}

/* Loads base edited by from -> to and expects an error containing @p needle. */
static void
expect_error(const char *from, const char *to, const char *needle)
{
    char err[YCONF_ERRMAX];
    struct policy *pol = NULL;
    char *text = edit(from, to);
    int r = load_text(text, &pol, err, sizeof err);

    if (r == YCONF_OK)
        fail_msg("policy loaded, expected error \"%s\"; text:\n%s", needle, text);
    assert_null(pol);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
    free(text);
}

static void
test_example_loads(void **state)
{
    char err[YCONF_ERRMAX];
    struct policy *pol = NULL;
    const char *path = POLICY_SOURCE_DIR "/policy/policy.example.yaml";
    const struct policy_zone *z;
    const struct policy_profile *p;
    const struct policy_caller *c;
    unsigned char digest[32], *bytes;
    unsigned int dlen = 0;
    long len;
    FILE *f;

    (void)state;
    if (policy_load(path, &pol, err, sizeof err) != YCONF_OK)
        fail_msg("example policy refused: %s", err);
    z = policy_zone(pol);
    assert_string_equal(z->name, "iotregistry.test.");
    assert_int_equal(z->record_styles, POLICY_STYLE_SEED);
    assert_string_equal(z->dance_prefix, "_device");
    assert_int_equal(z->device_ttl, 300);
    assert_int_equal(z->device_signature_validity, 6 * 3600);
    assert_int_equal(z->device_signature_refresh, 3 * 3600);
    assert_int_equal(z->signature_validity, 14 * 86400);
    assert_int_equal(z->signature_refresh, 5 * 86400);
    assert_int_equal(z->inception_offset, 3600);
    assert_int_equal(z->soa_minimum, 300);
    assert_int_equal(z->ttl, 3600);
    assert_int_equal(z->verify_signatures, POLICY_VERIFY_SAMPLED);
    assert_int_equal(policy_device_id(pol)->min_length, 18);
    assert_int_equal(policy_device_id(pol)->max_length, 32);
    assert_int_equal(policy_crl_next_update(pol), 7 * 86400);
    p = policy_profile_find(pol, "device");
    assert_non_null(p);
    assert_int_equal(p->validity, 365 * 86400);
    assert_int_equal(p->backdate, 3600);
    assert_int_equal(p->max_live_certificates, 4);
    assert_int_equal(p->key_algorithms, POLICY_KEY_EC_P256);
    assert_string_equal(p->crl_distribution_point, "http://crl.iotregistry.test/issuing.crl");
    assert_null(policy_profile_find(pol, "nope"));
    assert_int_equal(policy_caller_count(pol), 2);
    c = policy_caller_by_name(pol, "frontend");
    assert_non_null(c);
    assert_true(c->has_uid && c->has_gid);
    assert_int_equal(c->uid, 1000);
    assert_int_equal(c->operations, ((1u << POLICY_OP_COUNT) - 1) & ~(1u << POLICY_OP_IMPORT));
    assert_int_equal(c->rate_per_second, 50);
    assert_int_equal(c->rate_burst, 100);
    /* Not set: the daemon derives the limits from its global caps. */
    assert_int_equal(c->max_connections, 0);
    assert_int_equal(c->max_queued, 0);
    assert_ptr_equal(policy_caller_at(pol, 0), c);
    assert_int_equal(policy_caller_by_name(pol, "operator")->max_connections, 8);
    assert_int_equal(policy_caller_by_name(pol, "operator")->max_queued, 64);
    assert_null(policy_caller_at(pol, 2));
    assert_string_equal(policy_file(pol), path);

    /* The digest is of the exact file bytes. */
    f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    bytes = malloc((size_t)len);
    assert_int_equal(fread(bytes, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    assert_int_equal(EVP_Digest(bytes, (size_t)len, digest, &dlen, EVP_sha256(), NULL), 1);
    assert_memory_equal(policy_sha256(pol), digest, 32);
    for (int i = 0; i < 32; i++) {
        char hx[3];

        snprintf(hx, sizeof hx, "%02x", digest[i]);
        assert_memory_equal(policy_sha256_hex(pol) + 2 * i, hx, 2);
    }
    assert_int_equal(strlen(policy_sha256_hex(pol)), 64);
    free(bytes);
    policy_free(pol);
    policy_free(NULL);
}

static void
test_base_defaults(void **state)
{
    char err[YCONF_ERRMAX];
    struct policy *pol = NULL;
    const struct policy_caller *c;

    (void)state;
    if (load_text(base, &pol, err, sizeof err) != YCONF_OK)
        fail_msg("base refused: %s", err);
    /* Names are folded to lowercase. */
    assert_string_equal(policy_zone(pol)->name, "iotregistry.test.");
    assert_int_equal(policy_zone(pol)->verify_signatures, POLICY_VERIFY_SAMPLED);
    assert_int_equal(policy_profile_find(pol, "device")->backdate, 0);
    assert_int_equal(policy_profile_find(pol, "device")->max_live_certificates, 1);
    assert_null(policy_profile_find(pol, "device")->crl_distribution_point);
    c = policy_caller_at(pol, 0);
    assert_true(c->has_uid);
    assert_false(c->has_gid);
    assert_int_equal(c->revoke, POLICY_SCOPE_OWN);
    assert_int_equal(c->rate_per_second, 0);
    assert_int_equal(c->max_connections, 0);
    assert_int_equal(c->max_queued, 0);
    policy_free(pol);
}

/* Per-caller connection and queue limits are read as given. */
static void
test_caller_limits(void **state)
{
    char err[YCONF_ERRMAX];
    struct policy *pol = NULL;
    char *text = edit("    profiles: [device]\n", "    profiles: [device]\n"
                      "    max-connections: 3\n    max-queued: 1000000\n");

    (void)state;
    if (load_text(text, &pol, err, sizeof err) != YCONF_OK)
        fail_msg("policy refused: %s", err);
    assert_int_equal(policy_caller_at(pol, 0)->max_connections, 3);
    assert_int_equal(policy_caller_at(pol, 0)->max_queued, 1000000);
    policy_free(pol);
    free(text);
}

/* zone.verify-signatures: each value read as given, anything else refused. */
static void
test_verify_signatures(void **state)
{
    static const struct { const char *text; int want; } cases[] = {
        { "all", POLICY_VERIFY_ALL },
        { "sampled", POLICY_VERIFY_SAMPLED },
        { "none", POLICY_VERIFY_NONE },
    };
    char err[YCONF_ERRMAX], line[64];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct policy *pol = NULL;
        char *text;
        snprintf(line, sizeof line, "zone:\n  verify-signatures: %s\n", cases[i].text);
        text = edit("zone:\n", line);
        if (load_text(text, &pol, err, sizeof err) != YCONF_OK)
            fail_msg("verify-signatures: %s refused: %s", cases[i].text, err);
        assert_int_equal(policy_zone(pol)->verify_signatures, cases[i].want);
        policy_free(pol);
        free(text);
    }
    expect_error("zone:\n", "zone:\n  verify-signatures: some\n",
                 "p.yaml:3:22: 'zone.verify-signatures' must be one of: all, sampled, "
                 "none; got \"some\"");
    expect_error("zone:\n", "zone:\n  verify-signatures: [all]\n",
                 "'zone.verify-signatures'");
}

static void
test_syntax_and_schema_errors(void **state)
{
    char err[YCONF_ERRMAX];
    struct policy *pol = NULL;

    (void)state;
    assert_int_equal(policy_load("/nonexistent/policy.yaml", &pol, err, sizeof err),
                     YCONF_EIO);
    assert_null(pol);
    expect_error("version: 1", "version: 2",
                 "p.yaml:1:10: 'version' must be 1, got \"2\"");
    expect_error("    validity: 365d\n", "    validty: 365d\n",
                 "p.yaml:6:5: key 'validty' is not allowed in 'profiles.device' "
                 "(allowed: key-algorithms, validity, backdate, crl-distribution-point, "
                 "max-live-certificates-per-device)");
    expect_error("    validity: 365d\n", "    validity: 365d\n    validity: 1d\n",
                 "p.yaml:7:5: duplicate key 'validity' (first at line 6)");
    expect_error("    validity: 365d\n", "    validity: 0\n",
                 "p.yaml:6:15: 'profiles.device.validity' must be a duration");
    expect_error("    validity: 365d\n", "    validity: -1d\n",
                 "'profiles.device.validity' must be a duration");
    expect_error("zone:\n", "zone:\n  device-ttl: 0\n",
                 "p.yaml:3:15: 'zone.device-ttl' must be a duration");
    expect_error("operations: [issue]", "operations: [issue, explode]",
                 "p.yaml:10:25: 'callers[0].operations[1]' must be one of: issue, revoke, "
                 "reissue, crl, chain, status, publish, unpublish, sign-rrset, zone-status, import; "
                 "got \"explode\"");
    expect_error("zone:\n", "zone:\n  record-styles: [seed, tlsa]\n",
                 "p.yaml:3:25: 'zone.record-styles[1]' must be one of: seed, cert-pkix, "
                 "dance; got \"tlsa\"");
    expect_error("callers:\n", "revocation: { reasons: [unspecified, cACompromise] }\n"
                 "callers:\n",
                 "p.yaml:7:38: 'revocation.reasons[1]' must be one of: unspecified, "
                 "keyCompromise, affiliationChanged, superseded, cessationOfOperation, "
                 "privilegeWithdrawn; got \"cACompromise\"");
    expect_error("    validity: 365d\n", "    validity: 365d\n    key-algorithms: [rsa]\n",
                 "p.yaml:7:22: 'profiles.device.key-algorithms[0]' must be one of: "
                 "ec-p256; got \"rsa\"");
    expect_error("    validity: 365d\n", "    validity: 365d\n    backdate: 2h\n",
                 "p.yaml:7:15: 'profiles.device.backdate' must be a duration (seconds, or a "
                 "number with unit s, m, h, d or w) between 0s and 1h, got \"2h\"");
    expect_error("    uid: 1000\n", "    uid: 1000\n    uid: 1001\n",
                 "p.yaml:10:5: duplicate key 'uid'");
    expect_error("version: 1\n", "", "p.yaml:1:1: missing required key 'version' at the "
                                      "top level");
    expect_error("  - name: frontend\n", "  - nam: frontend\n",
                 "p.yaml:8:5: key 'nam' is not allowed in 'callers[0]'");
    expect_error("    uid: 1000\n", "    uid: &a 1000\n    gid: *a\n",
                 "p.yaml:9:10: anchors and aliases are not allowed");
}

static void
test_validation_errors(void **state)
{
    (void)state;
    expect_error("zone:\n", "zone:\n  record-styles: [seed, dance, cert-pkix]\n",
                 "p.yaml:3:18: 'zone.record-styles' may not list both seed and cert-pkix");
    expect_error("IoTRegistry.test.", "iotregistry.test",
                 "p.yaml:3:9: 'zone.name' must be an absolute domain name ending in '.'");
    expect_error("IoTRegistry.test.", "iot..test.", "p.yaml:3:9: 'zone.name' must be");
    expect_error("IoTRegistry.test.", "\"iot registry.test.\"", "'zone.name' must be");
    expect_error("zone:\n", "zone:\n  dance-prefix: a.b\n",
                 "p.yaml:3:17: 'zone.dance-prefix' must be one label");
    expect_error("zone:\n", "zone:\n  device-signature-validity: 3h\n",
                 "p.yaml:3:3: 'zone.device-signature-refresh' must be shorter than "
                 "'zone.device-signature-validity'");
    expect_error("zone:\n", "zone:\n  device-signature-refresh: 4m\n  device-ttl: 5m\n",
                 "'zone.device-signature-refresh' must be longer than 'zone.device-ttl'");
    expect_error("zone:\n", "zone:\n  signature-refresh: 14d\n",
                 "p.yaml:3:22: 'zone.signature-refresh' must be shorter than "
                 "'zone.signature-validity'");
    expect_error("zone:\n", "zone:\n  signature-refresh: 30m\n",
                 "'zone.signature-refresh' must be longer than 'zone.ttl'");
    expect_error("callers:\n", "device-id: { min-length: 20, max-length: 19 }\ncallers:\n",
                 "p.yaml:7:12: 'device-id.min-length' must not exceed");
    expect_error("    validity: 365d\n", "    validity: 365d\n    crl-distribution-point: "
                 "\"ftp://x/y.crl\"\n",
                 "p.yaml:7:29: 'profiles.device.crl-distribution-point' must be an http:// "
                 "URI");
    expect_error("  device:\n", "  bad/name:\n", "p.yaml:5:3: profile names must be");
    expect_error("profiles:\n  device:\n    validity: 365d\n", "profiles: {}\n",
                 "p.yaml:4:11: 'profiles' must define a profile");
    expect_error("callers:\n  - name: frontend\n    uid: 1000\n    operations: [issue]\n"
                 "    profiles: [device]\n", "callers: []\n",
                 "p.yaml:7:10: 'callers' must have at least 1 item, got 0");
    expect_error("    uid: 1000\n", "",
                 "p.yaml:8:5: caller 'frontend' must name a uid, a gid or both");
    expect_error("    uid: 1000\n", "    uid: 4294967295\n",
                 "p.yaml:9:10: 'callers[0].uid' must be an integer between 0 and 4294967294");
    expect_error("    profiles: [device]\n", "    profiles: [device]\n"
                 "  - name: frontend\n    gid: 5\n    operations: [crl]\n",
                 "p.yaml:12:11: caller name 'frontend' is used twice");
    expect_error("    profiles: [device]\n", "    profiles: [device]\n"
                 "  - name: other\n    uid: 1000\n    operations: [crl]\n",
                 "p.yaml:12:5: callers 'frontend' and 'other' have the same uid and gid");
    expect_error("    profiles: [device]\n", "    profiles: [devise]\n",
                 "p.yaml:11:16: profile 'devise' is not defined in 'profiles'");
    expect_error("    profiles: [device]\n", "    profiles: [device, device]\n",
                 "p.yaml:11:24: 'callers[0].profiles' lists 'device' twice");
    expect_error("    profiles: [device]\n", "",
                 "p.yaml:8:5: caller 'frontend' may issue or reissue but lists no 'profiles'");
    expect_error("[issue]", "[issue, publish]",
                 "p.yaml:8:5: caller 'frontend' may publish or unpublish but lists no "
                 "'publish-subtrees'");
    expect_error("[device]\n", "[device]\n    publish-subtrees: [asp.example.]\n",
                 "p.yaml:12:24: publish subtree asp.example. is not in the registry zone "
                 "iotregistry.test.");
    expect_error("[device]\n", "[device]\n    publish-subtrees: "
                 "[x.8912230200031010008F.iotregistry.test.]\n",
                 "p.yaml:12:24: publish subtree x.8912230200031010008f.iotregistry.test. is "
                 "in the device namespace");
    /* Per-caller limits: integers in range, strictly. */
    expect_error("[device]\n", "[device]\n    max-connections: 0\n",
                 "p.yaml:12:22: 'callers[0].max-connections' must be an integer between 1 "
                 "and 65536");
    expect_error("[device]\n", "[device]\n    max-connections: 65537\n",
                 "'callers[0].max-connections' must be an integer between 1 and 65536");
    expect_error("[device]\n", "[device]\n    max-queued: many\n",
                 "p.yaml:12:17: 'callers[0].max-queued' must be an integer between 1 "
                 "and 1000000");
    expect_error("[device]\n", "[device]\n    max-queued: -1\n",
                 "'callers[0].max-queued' must be an integer between 1 and 1000000");
    expect_error("[device]\n", "[device]\n    max-queued: [1]\n",
                 "'callers[0].max-queued'");
    expect_error("[device]\n", "[device]\n    max-queue: 5\n", "max-queue");
    expect_error("[issue]", "[issue, sign-rrset]",
                 "p.yaml:8:5: caller 'frontend' may sign-rrset but the policy lists no "
                 "'extra-zones'");
    expect_error("version: 1\n", "version: 1\nextra-zones:\n  - name: iotregistry.test.\n",
                 "p.yaml:3:11: extra zone iotregistry.test. may not be, contain or lie inside "
                 "the registry zone iotregistry.test.");
    expect_error("version: 1\n", "version: 1\nextra-zones:\n  - name: sub.iotregistry.test.\n",
                 "may not be, contain or lie inside the registry zone");
    expect_error("version: 1\n", "version: 1\nextra-zones:\n  - name: test.\n",
                 "may not be, contain or lie inside the registry zone");
    expect_error("version: 1\n", "version: 1\nextra-zones:\n  - name: a.test.\n"
                 "  - name: A.test.\n", "p.yaml:4:11: extra zone a.test. is listed twice");
    expect_error("version: 1\n", "version: 1\nextra-zones:\n  - name: a.test.\n"
                 "    max-validity: 0\n", "'extra-zones[0].max-validity' must be a duration");
    expect_error("[device]\n", "[device]\n    extra-zones: [b.test.]\n",
                 "p.yaml:12:19: zone 'b.test.' is not listed in 'extra-zones'");
    /* A long zone name leaves no room for the longest device owner name. */
    expect_error("IoTRegistry.test.",
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa."
                 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test.",
                 "p.yaml:1:1: device owner names would exceed 253 characters");
    expect_error("zone:\n  name: IoTRegistry.test.\n",
                 "zone:\n  name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.test.\n",
                 "p.yaml:3:9: 'zone.name' must be an absolute domain name");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test(test_base_defaults),
        cmocka_unit_test(test_caller_limits),
        cmocka_unit_test(test_verify_signatures),
        cmocka_unit_test(test_syntax_and_schema_errors),
        cmocka_unit_test(test_validation_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
