/*
 * policy: decisions about DNS data front ends hand in: PUBLISH/UNPUBLISH of
 * RRsets in the registry zone and SIGN_RRSET in extra zones (see policy.h).
 */
#include "policy/policy_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Types a front end may never publish: those regsignd manages itself (SOA,
 * NS, DNSKEY, NSEC*, RRSIG, CERT of devices and the CA), those that move
 * trust or redirect the name (DS, CDS, CDNSKEY, CNAME, DNAME), the obsolete
 * DNSSEC types, and meta types that are no data at all.
 */
static const struct {
    const char *name;
    unsigned number;
} forbidden_types[] = {
    { "NS", 2 }, { "CNAME", 5 }, { "SOA", 6 }, { "SIG", 24 }, { "KEY", 25 },
    { "NXT", 30 }, { "CERT", 37 }, { "DNAME", 39 }, { "OPT", 41 }, { "DS", 43 },
    { "RRSIG", 46 }, { "NSEC", 47 }, { "DNSKEY", 48 }, { "NSEC3", 50 },
    { "NSEC3PARAM", 51 }, { "CDS", 59 }, { "CDNSKEY", 60 }, { "TKEY", 249 },
    { "TSIG", 250 }, { "IXFR", 251 }, { "AXFR", 252 }, { "MAILB", 253 },
    { "MAILA", 254 }, { "ANY", 255 },
};

#define NFORBIDDEN (sizeof(forbidden_types) / sizeof(forbidden_types[0]))

/*
 * Classifies a type in presentation form: a mnemonic or RFC 3597 "TYPEnnn".
 * @return 1 if allowed, 0 if forbidden, -1 if malformed.
 */
static int
type_allowed(const char *type)
{
    size_t len = strlen(type);
    unsigned long number = 0;
    bool generic;

    if (len == 0 || len > 20 || !isalpha((unsigned char)type[0]))
        return -1;
    for (size_t i = 0; i < len; i++)
        if (!isalnum((unsigned char)type[i]) && type[i] != '-')
            return -1;
    generic = strncasecmp(type, "TYPE", 4) == 0 && len > 4 &&
              isdigit((unsigned char)type[4]);
    if (generic) {
        if (len > 9 || (type[4] == '0' && len > 5))
            return -1;
        for (size_t i = 4; i < len; i++) {
            if (!isdigit((unsigned char)type[i]))
                return -1;
            number = number * 10 + (unsigned long)(type[i] - '0');
        }
        if (number > 65535)
            return -1;
        /* 0 and 65535 are reserved, 128-255 are meta and query types. */
        if (number == 0 || number == 65535 || (number >= 128 && number <= 255))
            return 0;
    }
    for (size_t i = 0; i < NFORBIDDEN; i++) {
        if (generic ? forbidden_types[i].number == number
                    : strcasecmp(forbidden_types[i].name, type) == 0)
            return 0;
    }
    return 1;
}

enum policy_code
policy_check_publish(const struct policy *pol, const struct policy_caller *caller,
                     enum policy_op op, const char *owner, const char *type,
                     struct policy_decision *d)
{
    const struct policy_caller_rec *c = (const struct policy_caller_rec *)caller;
    char rb[POLICY_RULE_MAX], ob[128], tb[128];
    enum policy_code code;
    struct pname pn;
    int t;

    if (d == NULL)
        return POLICY_DENY_ARGUMENT;
    if (op != POLICY_OP_PUBLISH && op != POLICY_OP_UNPUBLISH)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments",
                      "operation is neither publish nor unpublish");
    if ((code = policy__operation_step(pol, caller, op, d)) != POLICY_ALLOW)
        return code;
    if (owner == NULL || type == NULL)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments", "missing argument");
    policy_show(owner, ob, sizeof ob);
    policy_show(type, tb, sizeof tb);
    if (!pname_parse(owner, &pn))
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.name-syntax", "owner '%s' is not "
                      "an absolute domain name", ob);
    if ((t = type_allowed(type)) < 0)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.type-syntax", "'%s' is not a "
                      "record type", tb);
    if (policy_name_has_wildcard(&pn))
        return policy_decide(d, POLICY_DENY_NAME, "builtin.wildcard", "owner '%s' is a wildcard "
                      "name", ob);
    if (policy_name_in_device_namespace(pol, &pn))
        return policy_decide(d, POLICY_DENY_NAME, "builtin.device-namespace", "owner '%s' is in "
                      "the device namespace", ob);
    if (t == 0)
        return policy_decide(d, POLICY_DENY_TYPE, "builtin.forbidden-types", "type %s may not be "
                      "published", tb);
    policy_text_join(rb, sizeof rb, "callers.", caller->name, ".publish-subtrees", NULL, NULL);
    for (size_t i = 0; i < c->nsubtrees; i++)
        if (pname_is_at_or_under(&pn, &c->subtrees[i].pname))
            return policy_decide(d, POLICY_ALLOW, rb, "caller '%s' may %s %s %s (subtree %s)",
                          caller->name, policy_op_name(op), ob, tb, c->subtrees[i].name);
    return policy_decide(d, POLICY_DENY_NAME, rb, "owner '%s' is outside the publish subtrees "
                  "of caller '%s'", ob, caller->name);
}

static const struct policy_extra_zone *
find_zone(const struct policy *pol, const struct policy_caller_rec *c,
          const struct pname *zone, bool *caller_may)
{
    const struct policy_extra_zone *z = NULL;

    for (size_t i = 0; i < pol->nzones && z == NULL; i++)
        if (pname_equal(&pol->zones[i].pname, zone))
            z = &pol->zones[i];
    *caller_may = z != NULL && c->zones == NULL;
    for (size_t i = 0; z != NULL && i < c->nzones; i++)
        if (c->zones[i] == z)
            *caller_may = true;
    return z;
}

static enum policy_code
check_times(const struct policy_extra_zone *z, int64_t inception, int64_t expiration,
            int64_t now, struct policy_decision *d)
{
    char rb[POLICY_RULE_MAX], lb[32];
    int64_t span, latest;

    if (expiration <= inception)
        return policy_decide(d, POLICY_DENY_TIME, "builtin.validity-order", "expiration %" PRId64
                      " is not after inception %" PRId64, expiration, inception);
    if (expiration <= now)
        return policy_decide(d, POLICY_DENY_TIME, "builtin.expired", "expiration %" PRId64
                      " is not in the future (now %" PRId64 ")", expiration, now);
    if (__builtin_sub_overflow(expiration, inception, &span) || span > z->max_validity) {
        yconf_duration_format(z->max_validity, lb, sizeof lb);
        policy_text_join(rb, sizeof rb, "extra-zones[", z->name, "].max-validity", NULL, NULL);
        return policy_decide(d, POLICY_DENY_TIME, rb, "signature validity from %" PRId64 " to %"
                      PRId64 " is longer than %s", inception, expiration, lb);
    }
    if (__builtin_add_overflow(now, z->max_inception_skew, &latest) || inception > latest) {
        yconf_duration_format(z->max_inception_skew, lb, sizeof lb);
        policy_text_join(rb, sizeof rb, "extra-zones[", z->name, "].max-inception-skew", NULL,
                         NULL);
        return policy_decide(d, POLICY_DENY_TIME, rb, "inception %" PRId64 " is more than %s "
                      "after now (%" PRId64 ")", inception, lb, now);
    }
    return POLICY_ALLOW;
}

/* policy_check_sign_rrset; @p texts false leaves an allow's message empty.
 * Rule names are built only where a decision uses them. */
static enum policy_code
check_sign_rrset(const struct policy *pol, const struct policy_caller *caller,
                 const char *zone, const char *owner, int64_t inception,
                 int64_t expiration, int64_t now, struct policy_decision *d, bool texts)
{
    const struct policy_extra_zone *z;
    char rb[POLICY_RULE_MAX], zb[128], ob[128];
    enum policy_code code;
    struct pname zp, op;
    bool caller_may;

    if (d == NULL)
        return POLICY_DENY_ARGUMENT;
    if ((code = policy__operation_step(pol, caller, POLICY_OP_SIGN_RRSET, d)) != POLICY_ALLOW)
        return code;
    if (zone == NULL || owner == NULL)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments", "missing argument");
    if (!pname_parse(zone, &zp) || !pname_parse(owner, &op))
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.name-syntax", "zone '%s' or owner "
                      "'%s' is not an absolute domain name", policy_show(zone, zb, sizeof zb),
                      policy_show(owner, ob, sizeof ob));
    if (pname_is_at_or_under(&zp, &pol->zone_pname))
        return policy_decide(d, POLICY_DENY_ZONE, "builtin.registry-zone", "zone '%s' is the "
                      "registry zone or inside it; only regsignd signs it",
                      policy_show(zone, zb, sizeof zb));
    z = find_zone(pol, (const struct policy_caller_rec *)caller, &zp, &caller_may);
    if (z == NULL)
        return policy_decide(d, POLICY_DENY_ZONE, "extra-zones", "zone '%s' is not an extra zone",
                      policy_show(zone, zb, sizeof zb));
    if (!caller_may)
        return policy_decide(d, POLICY_DENY_ZONE,
                      policy_text_join(rb, sizeof rb, "callers.", caller->name, ".extra-zones",
                                       NULL, NULL),
                      "caller '%s' may not sign in zone %s", caller->name, z->name);
    if (!pname_is_at_or_under(&op, &zp))
        return policy_decide(d, POLICY_DENY_NAME, "builtin.owner-in-zone", "owner '%s' is not in "
                      "zone %s", policy_show(owner, ob, sizeof ob), z->name);
    if ((code = check_times(z, inception, expiration, now, d)) != POLICY_ALLOW)
        return code;
    policy_text_join(rb, sizeof rb, "extra-zones[", z->name, "]", NULL, NULL);
    if (!texts) {
        d->code = POLICY_ALLOW;
        policy_text_join(d->rule, sizeof d->rule, rb, NULL, NULL, NULL, NULL);
        d->message[0] = '\0';
        return POLICY_ALLOW;
    }
    return policy_decide(d, POLICY_ALLOW, rb, "caller '%s' may sign %s in zone %s from %" PRId64
                  " to %" PRId64, caller->name, policy_show(owner, ob, sizeof ob), z->name,
                  inception, expiration);
}

enum policy_code
policy_check_sign_rrset(const struct policy *pol, const struct policy_caller *caller,
                        const char *zone, const char *owner, int64_t inception,
                        int64_t expiration, int64_t now, struct policy_decision *d)
{
    return check_sign_rrset(pol, caller, zone, owner, inception, expiration, now, d, true);
}

enum policy_code
policy_check_sign_rrset_rule(const struct policy *pol, const struct policy_caller *caller,
                             const char *zone, const char *owner, int64_t inception,
                             int64_t expiration, int64_t now, struct policy_decision *d)
{
    return check_sign_rrset(pol, caller, zone, owner, inception, expiration, now, d, false);
}
