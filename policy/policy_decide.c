/*
 * policy: the pure decision functions and read-only accessors (see policy.h).
 *
 * Every function fills a struct policy_decision with the code, the rule that
 * decided and a one-sentence message, so that an allow and a deny leave the
 * same kind of audit record. Text taken from a request is shown shortened
 * and made printable: messages end up in logs.
 */
#include "policy/policy_int.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define OP_BIT(op) (1u << (op))

const char *
policy_code_name(enum policy_code code)
{
    static const char *const names[] = {
        "allow", "deny-caller", "deny-operation", "deny-profile", "deny-device-id",
        "deny-index", "deny-limit", "deny-key-algorithm", "deny-reason",
        "deny-not-owner", "deny-name", "deny-type", "deny-zone", "deny-time",
        "deny-rate", "deny-argument",
    };

    if ((unsigned)code >= sizeof(names) / sizeof(names[0]))
        return "unknown";
    return names[code];
}

const char *
policy_op_name(enum policy_op op)
{
    return (unsigned)op < POLICY_OP_COUNT ? policy_op_names[op] : NULL;
}

int
policy_op_from_name(const char *name)
{
    for (int i = 0; name != NULL && i < POLICY_OP_COUNT; i++)
        if (strcmp(policy_op_names[i], name) == 0)
            return i;
    return -1;
}

int
policy_reason_from_name(const char *name)
{
    for (int i = 0; name != NULL && i < 11; i++)
        if (policy_reason_names[i] != NULL && strcmp(policy_reason_names[i], name) == 0)
            return i;
    return -1;
}

const char *
policy_reason_name(int code)
{
    return code >= 0 && code < 11 ? policy_reason_names[code] : NULL;
}

const uint8_t *policy_sha256(const struct policy *pol) { return pol->sha256; }
const char *policy_sha256_hex(const struct policy *pol) { return pol->sha256_hex; }
const char *policy_file(const struct policy *pol) { return yconf_doc_name(pol->doc); }
const struct policy_zone *policy_zone(const struct policy *pol) { return &pol->zone; }
int64_t policy_crl_next_update(const struct policy *pol) { return pol->crl_next_update; }
size_t policy_caller_count(const struct policy *pol) { return pol->ncallers; }

const struct policy_device_id *
policy_device_id(const struct policy *pol)
{
    return &pol->device_id;
}

const struct policy_profile *
policy_profile_find(const struct policy *pol, const char *name)
{
    for (size_t i = 0; name != NULL && i < pol->nprofiles; i++)
        if (strcmp(pol->profiles[i].name, name) == 0)
            return &pol->profiles[i];
    return NULL;
}

const struct policy_caller *
policy_caller_at(const struct policy *pol, size_t i)
{
    return i < pol->ncallers ? &pol->callers[i].pub : NULL;
}

const struct policy_caller *
policy_caller_by_name(const struct policy *pol, const char *name)
{
    for (size_t i = 0; name != NULL && i < pol->ncallers; i++)
        if (strcmp(pol->callers[i].pub.name, name) == 0)
            return &pol->callers[i].pub;
    return NULL;
}

bool
policy_name_has_wildcard(const struct pname *name)
{
    for (size_t i = 0; i < name->nlabels; i++) {
        size_t len;
        const uint8_t *l = pname_label(name, i, &len);

        if (len == 1 && l[0] == '*')
            return true;
    }
    return false;
}

bool
policy_name_in_device_namespace(const struct policy *pol, const struct pname *name)
{
    size_t len;
    const uint8_t *l;

    if (name->nlabels <= pol->zone_pname.nlabels ||
        !pname_is_at_or_under(name, &pol->zone_pname))
        return false;
    l = pname_label(name, name->nlabels - pol->zone_pname.nlabels - 1, &len);
    if ((int64_t)len < pol->device_id.min_length)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit(l[i]))
            return false;
    return true;
}

const char *
policy_show(const char *s, char *buf, size_t len)
{
    size_t o = 0;

    if (s == NULL)
        return "(none)";
    for (; *s != '\0' && o + 4 < len && o < 96; s++)
        buf[o++] = isprint((unsigned char)*s) ? *s : '?';
    if (*s != '\0')
        buf[o++] = '~';
    buf[o] = '\0';
    return buf;
}

char *
policy_text_join(char *buf, size_t len, const char *a, const char *b, const char *c,
                 const char *d, const char *e)
{
    const char *parts[5] = { a, b, c, d, e };
    size_t o = 0;

    if (len == 0)
        return buf;
    for (size_t i = 0; i < 5; i++) {
        size_t n = parts[i] ? strlen(parts[i]) : 0;

        if (n > len - 1 - o)
            n = len - 1 - o;
        memcpy(buf + o, parts[i] ? parts[i] : "", n);
        o += n;
    }
    buf[o] = '\0';
    return buf;
}

enum policy_code
policy_decide(struct policy_decision *d, enum policy_code code, const char *rule,
       const char *fmt, ...)
{
    va_list ap;

    d->code = code;
    policy_text_join(d->rule, sizeof d->rule, rule, NULL, NULL, NULL, NULL);
    /* A message without conversions is copied as vsnprintf would print it. */
    if (strchr(fmt, '%') == NULL) {
        policy_text_join(d->message, sizeof d->message, fmt, NULL, NULL, NULL, NULL);
        return code;
    }
    va_start(ap, fmt);
    vsnprintf(d->message, sizeof d->message, fmt, ap);
    va_end(ap);
    return code;
}

/* "callers.<name>.<what>" */
static const char *
caller_rule(const struct policy_caller *c, const char *what, char *buf, size_t len)
{
    return policy_text_join(buf, len, "callers.", c->name, what[0] ? "." : "", what, NULL);
}

const struct policy_caller *
policy_caller_lookup(const struct policy *pol, uint32_t uid, uint32_t gid)
{
    const struct policy_caller *best = NULL;
    int best_score = 0;

    for (size_t i = 0; pol != NULL && i < pol->ncallers; i++) {
        const struct policy_caller *c = &pol->callers[i].pub;
        int score = 0;

        if (c->has_uid && c->has_gid)
            score = c->uid == uid && c->gid == gid ? 3 : 0;
        else if (c->has_uid)
            score = c->uid == uid ? 2 : 0;
        else
            score = c->gid == gid ? 1 : 0;
        if (score > best_score) {
            best = c;
            best_score = score;
        }
    }
    return best;
}

bool
policy_caller_may(const struct policy_caller *caller, enum policy_op op)
{
    return caller != NULL && (unsigned)op < POLICY_OP_COUNT && (caller->operations & OP_BIT(op));
}

enum policy_code
policy_caller_find(const struct policy *pol, uint32_t uid, uint32_t gid,
                   const struct policy_caller **caller, struct policy_decision *d)
{
    const struct policy_caller *best;
    char rb[POLICY_RULE_MAX];

    if (d == NULL)
        return POLICY_DENY_ARGUMENT;
    if (pol == NULL || caller == NULL)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments", "missing argument");
    *caller = NULL;
    best = policy_caller_lookup(pol, uid, gid);
    if (best == NULL)
        return policy_decide(d, POLICY_DENY_CALLER, "callers", "uid %" PRIu32 " gid %" PRIu32
                      " is not a caller", uid, gid);
    *caller = best;
    return policy_decide(d, POLICY_ALLOW, caller_rule(best, "", rb, sizeof rb),
                  "uid %" PRIu32 " gid %" PRIu32 " is caller '%s'", uid, gid, best->name);
}

enum policy_code
policy_check_operation(const struct policy *pol, const struct policy_caller *caller,
                       enum policy_op op, struct policy_decision *d)
{
    char rb[POLICY_RULE_MAX];

    if (d == NULL)
        return POLICY_DENY_ARGUMENT;
    if (pol == NULL || caller == NULL || (unsigned)op >= POLICY_OP_COUNT)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments",
                      "missing argument or unknown operation");
    caller_rule(caller, "operations", rb, sizeof rb);
    if (!(caller->operations & OP_BIT(op)))
        return policy_decide(d, POLICY_DENY_OPERATION, rb, "caller '%s' may not %s",
                      caller->name, policy_op_names[op]);
    return policy_decide(d, POLICY_ALLOW, rb, "caller '%s' may %s", caller->name,
                  policy_op_names[op]);
}

enum policy_code
policy__operation_step(const struct policy *pol, const struct policy_caller *caller,
                       enum policy_op op, struct policy_decision *d)
{
    /* An allow here is always overwritten by the check that called it, so
     * only a refusal (or bad arguments) needs its texts. */
    if (d != NULL && pol != NULL && policy_caller_may(caller, op))
        return POLICY_ALLOW;
    return policy_check_operation(pol, caller, op, d);
}

static enum policy_code
check_device_id(const struct policy *pol, const char *id, char *out,
                struct policy_decision *d)
{
    char sb[80];
    size_t len = strlen(id), i;

    for (i = 0; i < len; i++) {
        if (!isxdigit((unsigned char)id[i]))
            return policy_decide(d, POLICY_DENY_DEVICE_ID, "device-id", "device id '%s' may "
                          "hold only hex digits", policy_show(id, sb, sizeof sb));
    }
    if ((int64_t)len < pol->device_id.min_length || (int64_t)len > pol->device_id.max_length)
        return policy_decide(d, POLICY_DENY_DEVICE_ID, "device-id", "device id '%s' must have "
                      "%" PRId64 " to %" PRId64 " hex digits, not %zu",
                      policy_show(id, sb, sizeof sb), pol->device_id.min_length,
                      pol->device_id.max_length, len);
    for (i = 0; i < len; i++)
        out[i] = (char)tolower((unsigned char)id[i]);
    out[len] = '\0';
    return POLICY_ALLOW;
}

static enum policy_code
check_key_algorithm(const struct policy_profile *p, const char *alg,
                    struct policy_decision *d)
{
    char rb[POLICY_RULE_MAX], sb[80];

    /* Explicit curve parameters hide which curve a key is on, and have been
     * the way to forge keys that pass naive checks (CVE-2020-0601). */
    if (strcmp(alg, "ec-explicit") == 0)
        return policy_decide(d, POLICY_DENY_KEY_ALGORITHM, "builtin.explicit-parameters",
                      "EC keys with explicit curve parameters are never allowed");
    if (strcmp(alg, "ec-p256") == 0 && (p->key_algorithms & POLICY_KEY_EC_P256))
        return POLICY_ALLOW;
    policy_text_join(rb, sizeof rb, "profiles.", p->name, ".key-algorithms", NULL, NULL);
    return policy_decide(d, POLICY_DENY_KEY_ALGORITHM, rb, "key algorithm '%s' is not allowed "
                  "by profile '%s' (allowed: ec-p256)", policy_show(alg, sb, sizeof sb), p->name);
}

static enum policy_code
check_issue_common(const struct policy *pol, const struct policy_caller *caller,
                   const struct policy_issue_request *req, struct policy_issue_grant *grant,
                   struct policy_decision *d)
{
    const struct policy_caller_rec *c = (const struct policy_caller_rec *)caller;
    const struct policy_profile *p;
    char rb[POLICY_RULE_MAX], sb[80];
    enum policy_code code;
    size_t i;

    if (req == NULL || grant == NULL || req->profile == NULL || req->device_id == NULL ||
        req->key_algorithm == NULL)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments", "missing argument");
    memset(grant, 0, sizeof(*grant));
    p = policy_profile_find(pol, req->profile);
    if (p == NULL)
        return policy_decide(d, POLICY_DENY_PROFILE, "profiles", "there is no profile '%s'",
                      policy_show(req->profile, sb, sizeof sb));
    for (i = 0; i < c->nprofiles && c->profiles[i] != p; i++)
        ;
    if (i == c->nprofiles)
        return policy_decide(d, POLICY_DENY_PROFILE, caller_rule(caller, "profiles", rb, sizeof rb),
                      "caller '%s' may not use profile '%s'", caller->name, p->name);
    if ((code = check_device_id(pol, req->device_id, grant->device_id, d)) != POLICY_ALLOW)
        return code;
    if (req->index < 1)
        return policy_decide(d, POLICY_DENY_INDEX, "builtin.index", "certificate index %" PRId64
                      " must be at least 1", req->index);
    if (req->index > pol->device_id.max_index)
        return policy_decide(d, POLICY_DENY_INDEX, "device-id.max-index", "certificate index %"
                      PRId64 " is above %" PRId64, req->index, pol->device_id.max_index);
    if (req->live_certificates >= p->max_live_certificates) {
        policy_text_join(rb, sizeof rb, "profiles.", p->name,
                         ".max-live-certificates-per-device", NULL, NULL);
        return policy_decide(d, POLICY_DENY_LIMIT, rb, "device %s already has %" PRId64
                      " live certificates (at most %" PRId64 ")", grant->device_id,
                      req->live_certificates, p->max_live_certificates);
    }
    if ((code = check_key_algorithm(p, req->key_algorithm, d)) != POLICY_ALLOW)
        return code;
    grant->profile = p;
    policy_text_join(rb, sizeof rb, "profiles.", p->name, NULL, NULL, NULL);
    return policy_decide(d, POLICY_ALLOW, rb, "certificate %" PRId64 ".%s under profile '%s' "
                  "allowed", req->index, grant->device_id, p->name);
}

enum policy_code
policy_check_issue(const struct policy *pol, const struct policy_caller *caller,
                   const struct policy_issue_request *req, struct policy_issue_grant *grant,
                   struct policy_decision *d)
{
    enum policy_code code = policy__operation_step(pol, caller, POLICY_OP_ISSUE, d);

    if (code != POLICY_ALLOW)
        return code;
    return check_issue_common(pol, caller, req, grant, d);
}

/*
 * The scope of @p what ("reissue", "revoke") for @p caller: limited to its
 * own certificates, it may not act on one issued to another caller.
 * POLICY_ALLOW without writing @p d, or the refusal.
 */
static enum policy_code
check_owner(const struct policy_caller *caller, enum policy_scope scope, const char *what,
            const char *issued_to, struct policy_decision *d)
{
    char rb[POLICY_RULE_MAX], sb[80];

    if (scope != POLICY_SCOPE_OWN || strcmp(issued_to, caller->name) == 0)
        return POLICY_ALLOW;
    return policy_decide(d, POLICY_DENY_NOT_OWNER, caller_rule(caller, what, rb, sizeof rb),
                         "caller '%s' may %s only its own certificates; this one was issued "
                         "to '%s'", caller->name, what, policy_show(issued_to, sb, sizeof sb));
}

enum policy_code
policy_check_reissue(const struct policy *pol, const struct policy_caller *caller,
                     const char *issued_to, const struct policy_issue_request *req,
                     struct policy_issue_grant *grant, struct policy_decision *d)
{
    enum policy_code code = policy__operation_step(pol, caller, POLICY_OP_REISSUE, d);

    if (code != POLICY_ALLOW)
        return code;
    if (issued_to == NULL)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments", "missing argument");
    if ((code = check_owner(caller, caller->reissue, "reissue", issued_to, d)) != POLICY_ALLOW)
        return code;
    return check_issue_common(pol, caller, req, grant, d);
}

enum policy_code
policy_check_revoke(const struct policy *pol, const struct policy_caller *caller,
                    const char *issued_to, int reason, struct policy_decision *d)
{
    enum policy_code code = policy__operation_step(pol, caller, POLICY_OP_REVOKE, d);
    char rb[POLICY_RULE_MAX], sb[80];

    if (code != POLICY_ALLOW)
        return code;
    if (issued_to == NULL)
        return policy_decide(d, POLICY_DENY_ARGUMENT, "builtin.arguments", "missing argument");
    if (reason < 0 || reason > 10 || !(pol->reasons & (1u << reason)))
        return policy_decide(d, POLICY_DENY_REASON, "revocation.reasons", "revocation reason %d "
                      "(%s) is not allowed", reason,
                      policy_reason_name(reason) ? policy_reason_name(reason) : "unlisted");
    if ((code = check_owner(caller, caller->revoke, "revoke", issued_to, d)) != POLICY_ALLOW)
        return code;
    caller_rule(caller, "revoke", rb, sizeof rb);
    return policy_decide(d, POLICY_ALLOW, rb, "caller '%s' may revoke this certificate of '%s' "
                  "with reason %s", caller->name, policy_show(issued_to, sb, sizeof sb),
                  policy_reason_name(reason));
}

int
policy_device_owner(const struct policy *pol, const char *device_id, int64_t index,
                    char *buf, size_t len)
{
    int n;

    if (pol == NULL || device_id == NULL || buf == NULL)
        return YCONF_EINVAL;
    n = snprintf(buf, len, "%" PRId64 ".%s.%s", index, device_id, pol->zone.name);
    return n < 0 || (size_t)n >= len ? YCONF_EINVAL : YCONF_OK;
}
