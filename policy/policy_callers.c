/*
 * policy: reading and checking the 'callers' section (part of policy.c's
 * loading, kept apart so that each file stays short).
 */
#include "policy/policy_int.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

static const char *const scope_choices[] = { "own", "any", NULL };

#define OP_BIT(op) (1u << (op))

static bool
caller_name_ok(const char *s)
{
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' && *s != '.')
            return false;
    return true;
}

static int
read_profiles(struct policy *pol, struct policy_caller_rec *c,
              const struct yconf_node *seq, char *err, size_t errlen)
{
    size_t n = yconf_node_count(seq);

    c->profiles = calloc(n ? n : 1, sizeof(*c->profiles));
    if (c->profiles == NULL)
        return YCONF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct yconf_node *item = yconf_node_item(seq, i);
        const struct policy_profile *p = policy_profile_find(pol, yconf_node_scalar(item));

        if (p == NULL)
            return yconf_node_errorf(item, err, errlen, "profile '%s' is not defined in "
                                     "'profiles'", yconf_node_scalar(item));
        for (size_t k = 0; k < c->nprofiles; k++)
            if (c->profiles[k] == p)
                return yconf_node_errorf(item, err, errlen, "'%s' lists '%s' twice",
                                         yconf_node_path(seq), p->name);
        c->profiles[c->nprofiles++] = p;
    }
    return YCONF_OK;
}

static int
read_subtrees(struct policy *pol, struct policy_caller_rec *c,
              const struct yconf_node *seq, char *err, size_t errlen)
{
    size_t n = yconf_node_count(seq);
    int r;

    c->subtrees = calloc(n ? n : 1, sizeof(*c->subtrees));
    if (c->subtrees == NULL)
        return YCONF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct yconf_node *item = yconf_node_item(seq, i);
        struct policy_subtree *s = &c->subtrees[i];

        if ((r = policy_read_domain(item, &s->pname, &s->name, err, errlen)) != YCONF_OK)
            return r;
        c->nsubtrees++;
        if (!pname_is_at_or_under(&s->pname, &pol->zone_pname))
            return yconf_node_errorf(item, err, errlen, "publish subtree %s is not in the "
                                     "registry zone %s", s->name, pol->zone.name);
        if (policy_name_in_device_namespace(pol, &s->pname))
            return yconf_node_errorf(item, err, errlen, "publish subtree %s is in the "
                                     "device namespace", s->name);
        for (size_t k = 0; k < i; k++)
            if (pname_equal(&c->subtrees[k].pname, &s->pname))
                return yconf_node_errorf(item, err, errlen, "'%s' lists %s twice",
                                         yconf_node_path(seq), s->name);
    }
    return YCONF_OK;
}

static int
read_zones(struct policy *pol, struct policy_caller_rec *c, const struct yconf_node *seq,
           char *err, size_t errlen)
{
    size_t n = yconf_node_count(seq);

    c->zones = calloc(n ? n : 1, sizeof(*c->zones));
    if (c->zones == NULL)
        return YCONF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const struct yconf_node *item = yconf_node_item(seq, i);
        struct pname pn;
        size_t k;

        if (!pname_parse(yconf_node_scalar(item), &pn))
            k = pol->nzones;
        else
            for (k = 0; k < pol->nzones; k++)
                if (pname_equal(&pol->zones[k].pname, &pn))
                    break;
        if (k == pol->nzones)
            return yconf_node_errorf(item, err, errlen, "zone '%s' is not listed in "
                                     "'extra-zones'", yconf_node_scalar(item));
        for (size_t j = 0; j < c->nzones; j++)
            if (c->zones[j] == &pol->zones[k])
                return yconf_node_errorf(item, err, errlen, "'%s' lists %s twice",
                                         yconf_node_path(seq), pol->zones[k].name);
        c->zones[c->nzones++] = &pol->zones[k];
    }
    return YCONF_OK;
}

/* Checks what needs the whole caller: identity, and that each granted
 * operation has what it needs to ever be allowed. */
static int
check_caller(struct policy *pol, struct policy_caller_rec *c, const struct yconf_node *item,
             size_t index, char *err, size_t errlen)
{
    const struct policy_caller *p = &c->pub;

    if (!p->has_uid && !p->has_gid)
        return yconf_node_errorf(item, err, errlen, "caller '%s' must name a uid, a gid "
                                 "or both", p->name);
    for (size_t k = 0; k < index; k++) {
        const struct policy_caller *o = &pol->callers[k].pub;

        if (strcmp(o->name, p->name) == 0)
            return yconf_node_errorf(yconf_node_get(item, "name"), err, errlen,
                                     "caller name '%s' is used twice", p->name);
        if (o->has_uid == p->has_uid && o->has_gid == p->has_gid &&
            (!p->has_uid || o->uid == p->uid) && (!p->has_gid || o->gid == p->gid))
            return yconf_node_errorf(item, err, errlen, "callers '%s' and '%s' have the "
                                     "same uid and gid", o->name, p->name);
    }
    if ((p->operations & (OP_BIT(POLICY_OP_ISSUE) | OP_BIT(POLICY_OP_REISSUE))) &&
        c->nprofiles == 0)
        return yconf_node_errorf(item, err, errlen, "caller '%s' may issue or reissue "
                                 "but lists no 'profiles'", p->name);
    if ((p->operations & (OP_BIT(POLICY_OP_PUBLISH) | OP_BIT(POLICY_OP_UNPUBLISH))) &&
        c->nsubtrees == 0)
        return yconf_node_errorf(item, err, errlen, "caller '%s' may publish or unpublish "
                                 "but lists no 'publish-subtrees'", p->name);
    if ((p->operations & OP_BIT(POLICY_OP_SIGN_RRSET)) && pol->nzones == 0)
        return yconf_node_errorf(item, err, errlen, "caller '%s' may sign-rrset but the "
                                 "policy lists no 'extra-zones'", p->name);
    return YCONF_OK;
}

static int
read_caller(struct policy *pol, size_t index, const struct yconf_node *item, char *err,
            size_t errlen)
{
    struct policy_caller_rec *c = &pol->callers[index];
    struct policy_caller *p = &c->pub;
    const struct yconf_node *profiles = NULL, *subtrees = NULL, *zones = NULL, *rate = NULL;
    int64_t uid = -1, gid = -1;
    int revoke = POLICY_SCOPE_OWN, reissue = POLICY_SCOPE_OWN;
    const struct yconf_field f[] = {
        YCONF_F_STRING("name", true, 1, 64, &p->name),
        YCONF_F_INT("uid", false, 0, 4294967294LL, &uid),
        YCONF_F_INT("gid", false, 0, 4294967294LL, &gid),
        YCONF_F_ENUMS("operations", true, policy_op_names, 1, &p->operations),
        YCONF_F_STRINGS("profiles", false, 0, 0, 64, &profiles),
        YCONF_F_ENUM("revoke", false, scope_choices, &revoke),
        YCONF_F_ENUM("reissue", false, scope_choices, &reissue),
        YCONF_F_MAP("rate-limit", false, &rate),
        YCONF_F_STRINGS("publish-subtrees", false, 0, 0, 253, &subtrees),
        YCONF_F_STRINGS("extra-zones", false, 1, 0, 253, &zones),
        YCONF_F_INT("max-connections", false, 1, 65536, &p->max_connections),
        YCONF_F_INT("max-queued", false, 1, 1000000, &p->max_queued),
    };
    const struct yconf_field rate_f[] = {
        YCONF_F_INT("per-second", true, 1, 1000000, &p->rate_per_second),
        YCONF_F_INT("burst", false, 1, 1000000, &p->rate_burst),
    };
    int r;

    if ((r = yconf_map_read(item, f, YCONF_NFIELDS(f), err, errlen)) != YCONF_OK)
        return r;
    if (!caller_name_ok(p->name))
        return yconf_node_errorf(yconf_node_get(item, "name"), err, errlen,
                                 "caller names are letters, digits, '-', '_' and '.', "
                                 "got \"%s\"", p->name);
    p->has_uid = uid >= 0;
    p->uid = p->has_uid ? (uint32_t)uid : 0;
    p->has_gid = gid >= 0;
    p->gid = p->has_gid ? (uint32_t)gid : 0;
    p->revoke = revoke;
    p->reissue = reissue;
    if (rate != NULL) {
        if ((r = yconf_map_read(rate, rate_f, 2, err, errlen)) != YCONF_OK)
            return r;
        if (p->rate_burst == 0)
            p->rate_burst = p->rate_per_second;
    }
    if ((r = read_profiles(pol, c, profiles, err, errlen)) != YCONF_OK ||
        (r = read_subtrees(pol, c, subtrees, err, errlen)) != YCONF_OK)
        return r;
    if (zones != NULL && (r = read_zones(pol, c, zones, err, errlen)) != YCONF_OK)
        return r;
    return check_caller(pol, c, item, index, err, errlen);
}

int
policy_read_callers(struct policy *pol, const struct yconf_node *seq, char *err,
                    size_t errlen)
{
    size_t n = yconf_node_count(seq);
    int r;

    pol->callers = calloc(n, sizeof(*pol->callers));
    if (pol->callers == NULL)
        return YCONF_ENOMEM;
    /* Counted at once so that policy_free() releases partly read callers. */
    pol->ncallers = n;
    for (size_t i = 0; i < n; i++)
        if ((r = read_caller(pol, i, yconf_node_item(seq, i), err, errlen)) != YCONF_OK)
            return r;
    return YCONF_OK;
}
