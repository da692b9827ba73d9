/* Unit tests of the policy decision functions: each allow and each deny. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "policy/policy.h"

static const char policy_text[] =
    "version: 1\n"
    "zone:\n"
    "  name: iotregistry.test.\n"
    "  record-styles: [seed, dance]\n"
    "device-id: { min-length: 18, max-length: 32, max-index: 100 }\n"
    "profiles:\n"
    "  device:\n"
    "    validity: 365d\n"
    "    max-live-certificates-per-device: 2\n"
    "  lab:\n"
    "    validity: 30d\n"
    "revocation: { reasons: [unspecified, keyCompromise, superseded] }\n"
    "callers:\n"
    "  - name: frontend\n"
    "    uid: 1000\n"
    "    gid: 1000\n"
    "    operations: [issue, revoke, reissue, publish, unpublish, sign-rrset, status]\n"
    "    profiles: [device]\n"
    "    publish-subtrees: [_asp.iotregistry.test., cafe.iotregistry.test.]\n"
    "  - name: admin\n"
    "    uid: 1000\n"
    "    operations: [issue, revoke, reissue, status]\n"
    "    profiles: [device, lab]\n"
    "    revoke: any\n"
    "    reissue: any\n"
    "  - name: readers\n"
    "    gid: 2000\n"
    "    operations: [status, crl]\n"
    "  - name: signer2\n"
    "    uid: 3000\n"
    "    operations: [sign-rrset]\n"
    "    extra-zones: [b.test.]\n"
    "extra-zones:\n"
    "  - name: asp.test.\n"
    "    max-validity: 30d\n"
    "    max-inception-skew: 1h\n"
    "  - name: B.test.\n";

struct fix {
    struct policy *pol;
    const struct policy_caller *frontend, *admin, *readers, *signer2;
};

static int
setup(void **state)
{
    struct fix *f = calloc(1, sizeof(*f));
    char err[YCONF_ERRMAX];

    assert_non_null(f);
    if (policy_parse("d.yaml", policy_text, strlen(policy_text), &f->pol, err,
                     sizeof err) != YCONF_OK)
        fail_msg("test policy refused: %s", err);
    f->frontend = policy_caller_by_name(f->pol, "frontend");
    f->admin = policy_caller_by_name(f->pol, "admin");
    f->readers = policy_caller_by_name(f->pol, "readers");
    f->signer2 = policy_caller_by_name(f->pol, "signer2");
    assert_true(f->frontend && f->admin && f->readers && f->signer2);
    *state = f;
    return 0;
}

static int
teardown(void **state)
{
    struct fix *f = *state;

    policy_free(f->pol);
    free(f);
    return 0;
}

/* Asserts a decision's code and rule, and that its message contains @p msg. */
static void
expect(enum policy_code got, const struct policy_decision *d, enum policy_code code,
       const char *rule, const char *msg)
{
    if (got != code || d->code != code || strcmp(d->rule, rule) != 0 ||
        strstr(d->message, msg) == NULL)
        fail_msg("got %s/%s \"%s\", expected %s/%s \"%s\"", policy_code_name(d->code),
                 d->rule, d->message, policy_code_name(code), rule, msg);
}

static void
test_caller_find(void **state)
{
    struct fix *f = *state;
    struct policy_decision d;
    const struct policy_caller *c = NULL;

    expect(policy_caller_find(f->pol, 1000, 1000, &c, &d), &d, POLICY_ALLOW,
           "callers.frontend", "uid 1000 gid 1000 is caller 'frontend'");
    assert_ptr_equal(c, f->frontend);
    /* uid alone wins over gid alone. */
    expect(policy_caller_find(f->pol, 1000, 2000, &c, &d), &d, POLICY_ALLOW,
           "callers.admin", "is caller 'admin'");
    assert_ptr_equal(c, f->admin);
    expect(policy_caller_find(f->pol, 7, 2000, &c, &d), &d, POLICY_ALLOW,
           "callers.readers", "");
    assert_ptr_equal(c, f->readers);
    expect(policy_caller_find(f->pol, 1001, 1001, &c, &d), &d, POLICY_DENY_CALLER,
           "callers", "uid 1001 gid 1001 is not a caller");
    assert_null(c);
    expect(policy_caller_find(NULL, 1, 1, &c, &d), &d, POLICY_DENY_ARGUMENT,
           "builtin.arguments", "");
    assert_int_equal(policy_caller_find(f->pol, 1, 1, &c, NULL), POLICY_DENY_ARGUMENT);
}

static void
test_operation(void **state)
{
    struct fix *f = *state;
    struct policy_decision d;

    expect(policy_check_operation(f->pol, f->readers, POLICY_OP_CRL, &d), &d,
           POLICY_ALLOW, "callers.readers.operations", "caller 'readers' may crl");
    expect(policy_check_operation(f->pol, f->frontend, POLICY_OP_CRL, &d), &d,
           POLICY_DENY_OPERATION, "callers.frontend.operations",
           "caller 'frontend' may not crl");
    expect(policy_check_operation(f->pol, f->frontend, POLICY_OP_COUNT, &d), &d,
           POLICY_DENY_ARGUMENT, "builtin.arguments", "");
    expect(policy_check_operation(f->pol, NULL, POLICY_OP_CRL, &d), &d,
           POLICY_DENY_ARGUMENT, "builtin.arguments", "");
}

/* policy_check_issue of @p x for caller frontend, expecting @p code, @p rule
 * and @p msg; an allowed request's grant goes to @p g. */
static void
issue(struct fix *f, const struct policy_issue_request *x, struct policy_issue_grant *g,
      enum policy_code code, const char *rule, const char *msg)
{
    struct policy_decision d;

    expect(policy_check_issue(f->pol, f->frontend, x, g, &d), &d, code, rule, msg);
}

static void
test_issue(void **state)
{
    struct fix *f = *state;
    struct policy_decision d;
    struct policy_issue_grant g;
    struct policy_issue_request r = {
        .profile = "device", .device_id = "8912230200031010008F", .index = 1,
        .key_algorithm = "ec-p256", .live_certificates = 1,
    };
    struct policy_issue_request x;
    char owner[128];

    issue(f, &r, &g, POLICY_ALLOW, "profiles.device",
          "certificate 1.8912230200031010008f under profile 'device'");
    assert_string_equal(g.device_id, "8912230200031010008f");
    assert_ptr_equal(g.profile, policy_profile_find(f->pol, "device"));
    assert_int_equal(policy_device_owner(f->pol, g.device_id, 1, owner, sizeof owner),
                     YCONF_OK);
    assert_string_equal(owner, "1.8912230200031010008f.iotregistry.test.");
    assert_int_equal(policy_device_owner(f->pol, g.device_id, 1, owner, 20), YCONF_EINVAL);

    expect(policy_check_issue(f->pol, f->readers, &r, &g, &d), &d, POLICY_DENY_OPERATION,
           "callers.readers.operations", "caller 'readers' may not issue");
    x = r, x.profile = "lab", x.live_certificates = 0;
    issue(f, &x, &g, POLICY_DENY_PROFILE, "callers.frontend.profiles",
          "caller 'frontend' may not use profile 'lab'");
    expect(policy_check_issue(f->pol, f->admin, &x, &g, &d), &d, POLICY_ALLOW,
           "profiles.lab", "");
    x = r, x.profile = "server";
    issue(f, &x, &g, POLICY_DENY_PROFILE, "profiles", "there is no profile 'server'");
    x = r, x.device_id = "89122302000310100g8f";
    issue(f, &x, &g, POLICY_DENY_DEVICE_ID, "device-id",
          "device id '89122302000310100g8f' may hold only hex digits");
    x = r, x.device_id = "8912230200031010.8f";
    issue(f, &x, &g, POLICY_DENY_DEVICE_ID, "device-id", "may hold only hex digits");
    x = r, x.device_id = "89122302000310100\n";
    issue(f, &x, &g, POLICY_DENY_DEVICE_ID, "device-id",
          "device id '89122302000310100?' may hold only hex digits");
    x = r, x.device_id = "12345678901234567";
    issue(f, &x, &g, POLICY_DENY_DEVICE_ID, "device-id",
          "must have 18 to 32 hex digits, not 17");
    x = r, x.device_id = "123456789012345678901234567890123";
    issue(f, &x, &g, POLICY_DENY_DEVICE_ID, "device-id", "not 33");
    x = r, x.device_id = "ABCDEFABCDEFABCDEFABCDEFABCDEFAB";
    issue(f, &x, &g, POLICY_ALLOW, "profiles.device", "");
    assert_string_equal(g.device_id, "abcdefabcdefabcdefabcdefabcdefab");
    x = r, x.index = 0;
    issue(f, &x, &g, POLICY_DENY_INDEX, "builtin.index",
          "certificate index 0 must be at least 1");
    x = r, x.index = -5;
    issue(f, &x, &g, POLICY_DENY_INDEX, "builtin.index", "");
    x = r, x.index = 100;
    issue(f, &x, &g, POLICY_ALLOW, "profiles.device", "");
    x = r, x.index = 101;
    issue(f, &x, &g, POLICY_DENY_INDEX, "device-id.max-index",
          "certificate index 101 is above 100");
    x = r, x.live_certificates = 2;
    issue(f, &x, &g, POLICY_DENY_LIMIT, "profiles.device.max-live-certificates-per-device",
          "device 8912230200031010008f already has 2 live certificates (at most 2)");
    x = r, x.key_algorithm = "rsa";
    issue(f, &x, &g, POLICY_DENY_KEY_ALGORITHM, "profiles.device.key-algorithms",
          "key algorithm 'rsa' is not allowed by profile 'device' (allowed: ec-p256)");
    x = r, x.key_algorithm = "ec-p384";
    issue(f, &x, &g, POLICY_DENY_KEY_ALGORITHM, "profiles.device.key-algorithms",
          "'ec-p384'");
    x = r, x.key_algorithm = "ec-explicit";
    issue(f, &x, &g, POLICY_DENY_KEY_ALGORITHM, "builtin.explicit-parameters",
          "explicit curve parameters are never allowed");
    x = r, x.device_id = NULL;
    issue(f, &x, &g, POLICY_DENY_ARGUMENT, "builtin.arguments", "");
    expect(policy_check_issue(f->pol, f->frontend, NULL, &g, &d), &d, POLICY_DENY_ARGUMENT,
           "builtin.arguments", "");
}

static void
test_reissue_revoke(void **state)
{
    struct fix *f = *state;
    struct policy_decision d;
    struct policy_issue_grant g;
    struct policy_issue_request r = {
        .profile = "device", .device_id = "8912230200031010008f", .index = 2,
        .key_algorithm = "ec-p256", .live_certificates = 0,
    };

    expect(policy_check_reissue(f->pol, f->frontend, "frontend", &r, &g, &d), &d,
           POLICY_ALLOW, "profiles.device", "");
    expect(policy_check_reissue(f->pol, f->frontend, "admin", &r, &g, &d), &d,
           POLICY_DENY_NOT_OWNER, "callers.frontend.reissue",
           "caller 'frontend' may reissue only its own certificates; this one was issued "
           "to 'admin'");
    expect(policy_check_reissue(f->pol, f->admin, "frontend", &r, &g, &d), &d,
           POLICY_ALLOW, "profiles.device", "");
    expect(policy_check_reissue(f->pol, f->readers, "readers", &r, &g, &d), &d,
           POLICY_DENY_OPERATION, "callers.readers.operations", "may not reissue");
    r.key_algorithm = "rsa";
    expect(policy_check_reissue(f->pol, f->admin, "frontend", &r, &g, &d), &d,
           POLICY_DENY_KEY_ALGORITHM, "profiles.device.key-algorithms", "");

    expect(policy_check_revoke(f->pol, f->frontend, "frontend", 1, &d), &d, POLICY_ALLOW,
           "callers.frontend.revoke", "with reason keyCompromise");
    expect(policy_check_revoke(f->pol, f->frontend, "frontend", 4, &d), &d, POLICY_ALLOW,
           "callers.frontend.revoke", "superseded");
    expect(policy_check_revoke(f->pol, f->frontend, "frontend", 5, &d), &d,
           POLICY_DENY_REASON, "revocation.reasons",
           "revocation reason 5 (cessationOfOperation) is not allowed");
    expect(policy_check_revoke(f->pol, f->frontend, "frontend", 2, &d), &d,
           POLICY_DENY_REASON, "revocation.reasons", "reason 2 (unlisted)");
    expect(policy_check_revoke(f->pol, f->frontend, "frontend", 42, &d), &d,
           POLICY_DENY_REASON, "revocation.reasons", "");
    expect(policy_check_revoke(f->pol, f->frontend, "frontend", -1, &d), &d,
           POLICY_DENY_REASON, "revocation.reasons", "");
    expect(policy_check_revoke(f->pol, f->frontend, "admin", 0, &d), &d,
           POLICY_DENY_NOT_OWNER, "callers.frontend.revoke",
           "caller 'frontend' may revoke only its own certificates; this one was issued "
           "to 'admin'");
    expect(policy_check_revoke(f->pol, f->admin, "frontend", 0, &d), &d, POLICY_ALLOW,
           "callers.admin.revoke", "");
    expect(policy_check_revoke(f->pol, f->readers, "readers", 0, &d), &d,
           POLICY_DENY_OPERATION, "callers.readers.operations", "may not revoke");
    expect(policy_check_revoke(f->pol, f->admin, NULL, 0, &d), &d, POLICY_DENY_ARGUMENT,
           "builtin.arguments", "");
}

static void
publish(struct fix *f, const char *owner, const char *type, enum policy_code code,
        const char *rule, const char *msg)
{
    struct policy_decision d;

    expect(policy_check_publish(f->pol, f->frontend, POLICY_OP_PUBLISH, owner, type, &d),
           &d, code, rule, msg);
    expect(policy_check_publish(f->pol, f->frontend, POLICY_OP_UNPUBLISH, owner, type, &d),
           &d, code, rule, msg);
}

static void
test_publish(void **state)
{
    static const char *const forbidden[] = {
        "SOA", "NS", "DS", "CNAME", "DNAME", "DNSKEY", "NSEC", "NSEC3", "NSEC3PARAM",
        "RRSIG", "CERT", "CDS", "CDNSKEY", "SIG", "KEY", "NXT", "ANY", "AXFR", "IXFR",
        "OPT", "TSIG", "TKEY", "MAILA", "MAILB",
        "soa", "Cname", "cert", "TYPE6", "type2", "TYPE43", "TYPE37", "TYPE46", "TYPE47",
        "TYPE48", "TYPE50", "TYPE5", "TYPE39", "TYPE255", "TYPE128", "TYPE0", "TYPE65535",
    };
    struct fix *f = *state;
    struct policy_decision d;
    const char *ok = "callers.frontend.publish-subtrees";

    publish(f, "www._asp.iotregistry.test.", "TXT", POLICY_ALLOW, ok,
            "www._asp.iotregistry.test. TXT (subtree _asp.iotregistry.test.)");
    expect(policy_check_publish(f->pol, f->frontend, POLICY_OP_UNPUBLISH,
                                "www._asp.iotregistry.test.", "TXT", &d),
           &d, POLICY_ALLOW, ok, "caller 'frontend' may unpublish www._asp");
    publish(f, "_ASP.IoTRegistry.TEST.", "txt", POLICY_ALLOW, ok, "");
    publish(f, "www._asp.iotregistry.test.", "TYPE16", POLICY_ALLOW, ok, "");
    publish(f, "www._asp.iotregistry.test.", "TLSA", POLICY_ALLOW, ok, "");
    publish(f, "www.\\095asp.iotregistry.test.", "A", POLICY_ALLOW, ok, "");
    /* A short hex label below the zone is no device id. */
    publish(f, "x.cafe.iotregistry.test.", "AAAA", POLICY_ALLOW, ok, "subtree cafe.");
    for (size_t i = 0; i < sizeof(forbidden) / sizeof(forbidden[0]); i++) {
        char msg[64];

        snprintf(msg, sizeof msg, "type %s may not be published", forbidden[i]);
        publish(f, "www._asp.iotregistry.test.", forbidden[i], POLICY_DENY_TYPE,
                "builtin.forbidden-types", msg);
    }
    publish(f, "1.8912230200031010008f.iotregistry.test.", "TXT", POLICY_DENY_NAME,
            "builtin.device-namespace", "owner '1.8912230200031010008f.iotregistry.test.' "
            "is in the device namespace");
    publish(f, "_device.1.8912230200031010008F.IoTRegistry.test.", "TLSA", POLICY_DENY_NAME,
            "builtin.device-namespace", "");
    publish(f, "8912230200031010008f.iotregistry.test.", "TXT", POLICY_DENY_NAME,
            "builtin.device-namespace", "");
    publish(f, "*._asp.iotregistry.test.", "TXT", POLICY_DENY_NAME, "builtin.wildcard",
            "owner '*._asp.iotregistry.test.' is a wildcard name");
    publish(f, "a.*._asp.iotregistry.test.", "TXT", POLICY_DENY_NAME, "builtin.wildcard", "");
    publish(f, "mail.iotregistry.test.", "MX", POLICY_DENY_NAME, ok,
            "owner 'mail.iotregistry.test.' is outside the publish subtrees of caller "
            "'frontend'");
    publish(f, "iotregistry.test.", "TXT", POLICY_DENY_NAME, ok, "");
    publish(f, "_asp.example.", "TXT", POLICY_DENY_NAME, ok, "");
    /* An escaped dot makes "www._asp" one label directly below the zone. */
    publish(f, "www\\._asp.iotregistry.test.", "TXT", POLICY_DENY_NAME, ok, "");
    publish(f, "www._asp.iotregistry.test", "TXT", POLICY_DENY_ARGUMENT,
            "builtin.name-syntax", "is not an absolute domain name");
    publish(f, "www..iotregistry.test.", "TXT", POLICY_DENY_ARGUMENT, "builtin.name-syntax",
            "");
    publish(f, "www._asp.iotregistry.test.", "T XT", POLICY_DENY_ARGUMENT,
            "builtin.type-syntax", "'T XT' is not a record type");
    publish(f, "www._asp.iotregistry.test.", "", POLICY_DENY_ARGUMENT, "builtin.type-syntax",
            "");
    publish(f, "www._asp.iotregistry.test.", "TYPE65536", POLICY_DENY_ARGUMENT,
            "builtin.type-syntax", "");
    expect(policy_check_publish(f->pol, f->readers, POLICY_OP_PUBLISH,
                                "www._asp.iotregistry.test.", "TXT", &d),
           &d, POLICY_DENY_OPERATION, "callers.readers.operations", "may not publish");
    expect(policy_check_publish(f->pol, f->frontend, POLICY_OP_ISSUE,
                                "www._asp.iotregistry.test.", "TXT", &d),
           &d, POLICY_DENY_ARGUMENT, "builtin.arguments", "");
    expect(policy_check_publish(f->pol, f->frontend, POLICY_OP_PUBLISH, NULL, "TXT", &d),
           &d, POLICY_DENY_ARGUMENT, "builtin.arguments", "");
}

#define NOW INT64_C(1700000000)
#define DAY INT64_C(86400)

static void
test_sign_rrset(void **state)
{
    /* caller, zone, owner, inception, expiration, now, and the decision. */
    static const struct {
        const char *caller, *zone, *owner;
        int64_t inception, expiration, now;
        enum policy_code code;
        const char *rule, *msg;
    } cases[] = {
        { "frontend", "asp.test.", "www.asp.test.", NOW - 3600, NOW + 7 * DAY, NOW,
          POLICY_ALLOW, "extra-zones[asp.test.]", "caller 'frontend' may sign" },
        { "frontend", "ASP.test.", "asp.TEST.", NOW, NOW + 30 * DAY, NOW,
          POLICY_ALLOW, "extra-zones[asp.test.]", "" },
        { "frontend", "asp.test.", "www.asp.test.", NOW, NOW + 30 * DAY + 1, NOW,
          POLICY_DENY_TIME, "extra-zones[asp.test.].max-validity", "is longer than 30d" },
        { "frontend", "asp.test.", "www.asp.test.", NOW + 3600, NOW + DAY, NOW,
          POLICY_ALLOW, "extra-zones[asp.test.]", "" },
        { "frontend", "asp.test.", "www.asp.test.", NOW + 3601, NOW + DAY, NOW,
          POLICY_DENY_TIME, "extra-zones[asp.test.].max-inception-skew",
          "inception 1700003601 is more than 1h after now (1700000000)" },
        { "frontend", "asp.test.", "www.asp.test.", NOW - 2 * DAY, NOW, NOW,
          POLICY_DENY_TIME, "builtin.expired", "is not in the future" },
        { "frontend", "asp.test.", "www.asp.test.", NOW + 10, NOW + 10, NOW,
          POLICY_DENY_TIME, "builtin.validity-order", "is not after inception" },
        { "frontend", "asp.test.", "www.asp.test.", INT64_MIN, INT64_MAX, NOW,
          POLICY_DENY_TIME, "extra-zones[asp.test.].max-validity", "" },
        { "frontend", "asp.test.", "www.asp.test.", INT64_MAX - 10, INT64_MAX, INT64_MAX - 20,
          POLICY_DENY_TIME, "extra-zones[asp.test.].max-inception-skew", "" },
        { "frontend", "iotregistry.test.", "iotregistry.test.", NOW, NOW + DAY, NOW,
          POLICY_DENY_ZONE, "builtin.registry-zone",
          "zone 'iotregistry.test.' is the registry zone or inside it" },
        { "frontend", "x.IOTREGISTRY.test.", "x.iotregistry.test.", NOW, NOW + DAY, NOW,
          POLICY_DENY_ZONE, "builtin.registry-zone", "" },
        { "frontend", "c.test.", "c.test.", NOW, NOW + DAY, NOW,
          POLICY_DENY_ZONE, "extra-zones", "zone 'c.test.' is not an extra zone" },
        { "signer2", "asp.test.", "asp.test.", NOW, NOW + DAY, NOW,
          POLICY_DENY_ZONE, "callers.signer2.extra-zones",
          "caller 'signer2' may not sign in zone asp.test." },
        { "signer2", "b.test.", "b.test.", NOW, NOW + DAY, NOW,
          POLICY_ALLOW, "extra-zones[b.test.]", "" },
        { "frontend", "asp.test.", "www.b.test.", NOW, NOW + DAY, NOW,
          POLICY_DENY_NAME, "builtin.owner-in-zone",
          "owner 'www.b.test.' is not in zone asp.test." },
        { "frontend", "asp.test", "asp.test.", NOW, NOW + DAY, NOW,
          POLICY_DENY_ARGUMENT, "builtin.name-syntax", "" },
        { "admin", "asp.test.", "asp.test.", NOW, NOW + DAY, NOW,
          POLICY_DENY_OPERATION, "callers.admin.operations", "may not sign-rrset" },
    };
    struct fix *f = *state;

    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        const struct policy_caller *c = policy_caller_by_name(f->pol, cases[i].caller);
        struct policy_decision d;

        assert_non_null(c);
        expect(policy_check_sign_rrset(f->pol, c, cases[i].zone, cases[i].owner,
                                       cases[i].inception, cases[i].expiration, cases[i].now,
                                       &d),
               &d, cases[i].code, cases[i].rule, cases[i].msg);
    }
}

/*
 * The request path's cheap forms agree with the full decisions they stand
 * for: policy_check_sign_rrset_rule has the same code and rule, the same
 * message on refusal and an empty one on allow; policy_caller_lookup picks
 * policy_caller_find's caller; policy_caller_may is policy_check_operation's
 * allow; and the rule join truncates as snprintf does.
 */
static void
test_request_path_forms(void **state)
{
    struct fix *f = *state;
    const int64_t now = NOW, day = DAY;
    const struct policy_caller *callers[] = { f->frontend, f->admin, f->readers, f->signer2 };
    static const char *const zones[] = { "asp.test.", "ASP.test.", "b.test.", "c.test.",
                                         "iotregistry.test.", "x.IOTREGISTRY.test.", "asp.test",
                                         "", "bad..name." };
    static const char *const owners[] = { "www.asp.test.", "asp.TEST.", "www.b.test.",
                                          "b.test.", "\x01weird.asp.test." };
    const int64_t times[][3] = {
        { now - 3600, now + 7 * day, now }, { now, now + 30 * day + 1, now },
        { now + 3601, now + day, now }, { now - 2 * day, now, now }, { now + 10, now + 10, now },
        { INT64_MIN, INT64_MAX, now }, { INT64_MAX - 10, INT64_MAX, INT64_MAX - 20 },
    };
    size_t allowed = 0, refused = 0;

    for (size_t c = 0; c < 4; c++)
        for (size_t z = 0; z < sizeof zones / sizeof *zones; z++)
            for (size_t o = 0; o < sizeof owners / sizeof *owners; o++)
                for (size_t t = 0; t < sizeof times / sizeof *times; t++) {
                    struct policy_decision full, rule;
                    enum policy_code a, b;

                    memset(&rule, 'x', sizeof rule);
                    a = policy_check_sign_rrset(f->pol, callers[c], zones[z], owners[o],
                                                times[t][0], times[t][1], times[t][2], &full);
                    b = policy_check_sign_rrset_rule(f->pol, callers[c], zones[z], owners[o],
                                                     times[t][0], times[t][1], times[t][2],
                                                     &rule);
                    assert_int_equal(a, b);
                    assert_int_equal(rule.code, full.code);
                    assert_string_equal(rule.rule, full.rule);
                    assert_string_equal(rule.message, a == POLICY_ALLOW ? "" : full.message);
                    if (a == POLICY_ALLOW)
                        allowed++;
                    else
                        refused++;
                }
    assert_true(allowed > 0 && refused > allowed);
    assert_int_equal(policy_check_sign_rrset_rule(f->pol, f->frontend, "asp.test.", "asp.test.",
                                                  now, now + day, now, NULL),
                     POLICY_DENY_ARGUMENT);

    for (uint32_t uid = 998; uid < 1003; uid++)
        for (uint32_t gid = 998; gid < 1003; gid++) {
            const uint32_t u = uid == 998 ? 3000 : uid, g = gid == 998 ? 2000 : gid;
            const struct policy_caller *found = (void *)1;
            struct policy_decision d;

            policy_caller_find(f->pol, u, g, &found, &d);
            assert_ptr_equal(policy_caller_lookup(f->pol, u, g), found);
        }
    assert_null(policy_caller_lookup(NULL, 1000, 1000));
    for (size_t c = 0; c < 4; c++)
        for (int op = 0; op <= POLICY_OP_COUNT; op++) {
            struct policy_decision d;

            assert_int_equal(policy_caller_may(callers[c], (enum policy_op)op),
                             policy_check_operation(f->pol, callers[c], (enum policy_op)op, &d) ==
                                 POLICY_ALLOW);
        }
    assert_false(policy_caller_may(NULL, POLICY_OP_STATUS));

    /* Truncation is what is being compared here. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-truncation"
    for (size_t len = 0; len < 24; len++) {
        char a[24], b[24];

        memset(a, 'x', sizeof a);
        memset(b, 'x', sizeof b);
        snprintf(a, len, "%s%s%s%s", "callers.", "frontend", ".", "operations");
        policy_text_join(b, len, "callers.", "frontend", ".", "operations", NULL);
        assert_memory_equal(a, b, sizeof a);
        snprintf(a, len, "%s%s%s%s%s", "x", "", "", "yz", "0123");
        policy_text_join(b, len, "x", NULL, "", "yz", "0123");
        assert_memory_equal(a, b, sizeof a);
    }
#pragma GCC diagnostic pop
}

static void
test_names(void **state)
{
    (void)state;
    for (int op = 0; op < POLICY_OP_COUNT; op++)
        assert_int_equal(policy_op_from_name(policy_op_name((enum policy_op)op)), op);
    assert_string_equal(policy_op_name(POLICY_OP_SIGN_RRSET), "sign-rrset");
    assert_null(policy_op_name(POLICY_OP_COUNT));
    assert_int_equal(policy_op_from_name("explode"), -1);
    assert_int_equal(policy_reason_from_name("keyCompromise"), 1);
    assert_int_equal(policy_reason_from_name("cessationOfOperation"), 5);
    assert_int_equal(policy_reason_from_name("certificateHold"), -1);
    assert_string_equal(policy_reason_name(9), "privilegeWithdrawn");
    assert_null(policy_reason_name(7));
    assert_null(policy_reason_name(11));
    assert_string_equal(policy_code_name(POLICY_ALLOW), "allow");
    assert_string_equal(policy_code_name(POLICY_DENY_ARGUMENT), "deny-argument");
    assert_string_equal(policy_code_name((enum policy_code)99), "unknown");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_caller_find, setup, teardown),
        cmocka_unit_test_setup_teardown(test_operation, setup, teardown),
        cmocka_unit_test_setup_teardown(test_issue, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reissue_revoke, setup, teardown),
        cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sign_rrset, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_path_forms, setup, teardown),
        cmocka_unit_test(test_names),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
