/*
 * policy: loading and validating a policy file (see policy.h and README.md).
 *
 * Every rule that can be checked once is checked here, at load, so that a
 * policy that loads is coherent: the decision functions then only compare a
 * request against it. Each refusal names file:line:col and the key.
 */
#include "policy/policy_int.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#define DAY 86400

const char *const policy_op_names[POLICY_OP_COUNT + 1] = {
    "issue", "revoke", "reissue", "crl", "chain", "status", "publish",
    "unpublish", "sign-rrset", "zone-status", "import", NULL,
};

const char *const policy_reason_names[11] = {
    [0] = "unspecified", [1] = "keyCompromise", [3] = "affiliationChanged",
    [4] = "superseded", [5] = "cessationOfOperation", [9] = "privilegeWithdrawn",
};

/* The same reasons as a NULL-terminated list for the schema, with codes. */
static const char *const reason_choices[] = {
    "unspecified", "keyCompromise", "affiliationChanged", "superseded",
    "cessationOfOperation", "privilegeWithdrawn", NULL,
};
static const int reason_codes[] = { 0, 1, 3, 4, 5, 9 };

static const char *const style_choices[] = { "seed", "cert-pkix", "dance", NULL };
static const char *const algorithm_choices[] = { "ec-p256", NULL };
/* In the order of enum policy_verify. */
static const char *const verify_choices[] = { "all", "sampled", "none", NULL };

/* Names in policy files are written plainly: letters, digits, '-', '_'. */
static bool
plain_name(const char *s, const char *extra)
{
    for (; *s != '\0'; s++)
        if (!isalnum((unsigned char)*s) && *s != '-' && *s != '_' &&
            strchr(extra, *s) == NULL)
            return false;
    return true;
}

int
policy_read_domain(const struct yconf_node *node, struct pname *pn, char **out, char *err,
            size_t errlen)
{
    const char *t = yconf_node_scalar(node);
    char *copy;

    if (!plain_name(t, ".") || !pname_parse(t, pn) || pn->nlabels == 0)
        return yconf_node_errorf(node, err, errlen,
                                 "'%s' must be an absolute domain name ending in '.' "
                                 "(letters, digits, '-', '_'), got \"%s\"",
                                 yconf_node_path(node), t);
    copy = strdup(t);
    if (copy == NULL)
        return YCONF_ENOMEM;
    for (char *p = copy; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    *out = copy;
    return YCONF_OK;
}

/* The value of @p key, or the map itself when the key was left out (its
 * default broke a rule): the node an error should point at. */
static const struct yconf_node *
at(const struct yconf_node *map, const char *key)
{
    const struct yconf_node *v = yconf_node_get(map, key);

    return v != NULL ? v : map;
}

static int
read_zone(struct policy *pol, const struct yconf_node *node, char *err, size_t errlen)
{
    struct policy_zone *z = &pol->zone;
    const struct yconf_node *name = NULL;
    const char *dummy = NULL;
    const struct yconf_field f[] = {
        YCONF_F_STRING("name", true, 2, 253, &dummy),
        YCONF_F_ENUMS("record-styles", false, style_choices, 1, &z->record_styles),
        YCONF_F_STRING("dance-prefix", false, 1, 63, &z->dance_prefix),
        YCONF_F_DURATION("device-ttl", false, 1, 7 * DAY, &z->device_ttl),
        YCONF_F_DURATION("device-signature-validity", false, 600, 30 * DAY,
                         &z->device_signature_validity),
        YCONF_F_DURATION("device-signature-refresh", false, 60, 30 * DAY,
                         &z->device_signature_refresh),
        YCONF_F_DURATION("signature-validity", false, 3600, 365 * DAY,
                         &z->signature_validity),
        YCONF_F_DURATION("signature-refresh", false, 60, 365 * DAY,
                         &z->signature_refresh),
        YCONF_F_DURATION("inception-offset", false, 0, DAY, &z->inception_offset),
        YCONF_F_DURATION("soa-minimum", false, 0, DAY, &z->soa_minimum),
        YCONF_F_DURATION("ttl", false, 1, 7 * DAY, &z->ttl),
        YCONF_F_ENUM("verify-signatures", false, verify_choices, &z->verify_signatures),
    };
    int r;

    z->record_styles = POLICY_STYLE_SEED;
    z->dance_prefix = "_device";
    z->device_ttl = 300;
    z->device_signature_validity = 6 * 3600;
    z->device_signature_refresh = 3 * 3600;
    z->signature_validity = 14 * DAY;
    z->signature_refresh = 5 * DAY;
    z->inception_offset = 3600;
    z->soa_minimum = 300;
    z->ttl = 3600;
    z->verify_signatures = POLICY_VERIFY_SAMPLED;
    if ((r = yconf_map_read(node, f, YCONF_NFIELDS(f), err, errlen)) != YCONF_OK)
        return r;
    name = yconf_node_get(node, "name");
    if ((r = policy_read_domain(name, &pol->zone_pname, &pol->zone_name, err, errlen)) != YCONF_OK)
        return r;
    z->name = pol->zone_name;
    if ((z->record_styles & POLICY_STYLE_SEED) && (z->record_styles & POLICY_STYLE_CERT_PKIX))
        return yconf_node_errorf(at(node, "record-styles"), err, errlen,
                                 "'zone.record-styles' may not list both seed and "
                                 "cert-pkix (both are CERT records at the same name)");
    if (!plain_name(z->dance_prefix, ""))
        return yconf_node_errorf(at(node, "dance-prefix"), err, errlen,
                                 "'zone.dance-prefix' must be one label of letters, "
                                 "digits, '-' and '_', got \"%s\"", z->dance_prefix);
    /* A record cached for its TTL must not outlive its signature: re-signing
     * must happen with more than one TTL of validity left. */
    if (z->device_signature_refresh >= z->device_signature_validity)
        return yconf_node_errorf(at(node, "device-signature-refresh"), err,
                                 errlen, "'zone.device-signature-refresh' must be shorter "
                                 "than 'zone.device-signature-validity'");
    if (z->device_signature_refresh <= z->device_ttl)
        return yconf_node_errorf(node, err, errlen, "'zone.device-signature-refresh' must "
                                 "be longer than 'zone.device-ttl'");
    if (z->signature_refresh >= z->signature_validity)
        return yconf_node_errorf(at(node, "signature-refresh"), err, errlen,
                                 "'zone.signature-refresh' must be shorter than "
                                 "'zone.signature-validity'");
    if (z->signature_refresh <= z->ttl || z->signature_refresh <= z->soa_minimum)
        return yconf_node_errorf(node, err, errlen, "'zone.signature-refresh' must be "
                                 "longer than 'zone.ttl' and 'zone.soa-minimum'");
    return YCONF_OK;
}

static int
read_device_id(struct policy *pol, const struct yconf_node *node, char *err, size_t errlen)
{
    struct policy_device_id *d = &pol->device_id;
    const struct yconf_field f[] = {
        YCONF_F_INT("min-length", false, 1, POLICY_DEVICE_ID_MAX, &d->min_length),
        YCONF_F_INT("max-length", false, 1, POLICY_DEVICE_ID_MAX, &d->max_length),
        YCONF_F_INT("max-index", false, 1, 2147483647, &d->max_index),
    };
    char owner[600];
    int r;

    d->min_length = 18;
    d->max_length = 32;
    d->max_index = 65535;
    if (node != NULL && (r = yconf_map_read(node, f, YCONF_NFIELDS(f), err, errlen)) != 0)
        return r;
    if (d->min_length > d->max_length)
        return yconf_node_errorf(node, err, errlen, "'device-id.min-length' must not "
                                 "exceed 'device-id.max-length'");
    /* The longest owner name, with the DANE prefix, must be a valid name. */
    snprintf(owner, sizeof owner, "%s.%lld.%.*s.%s", pol->zone.dance_prefix,
             (long long)d->max_index, (int)d->max_length,
             "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff",
             pol->zone.name);
    if (strlen(owner) > 254)
        return yconf_node_errorf(node ? node : yconf_doc_root(pol->doc), err, errlen,
                                 "device owner names would exceed 253 characters in "
                                 "zone %s", pol->zone.name);
    return YCONF_OK;
}

static int
read_profiles(struct policy *pol, const struct yconf_node *node, char *err, size_t errlen)
{
    size_t n = yconf_node_count(node);
    int r;

    if (n == 0)
        return yconf_node_errorf(node, err, errlen, "'profiles' must define a profile");
    pol->profiles = calloc(n, sizeof(*pol->profiles));
    if (pol->profiles == NULL)
        return YCONF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct policy_profile *p = &pol->profiles[i];
        const struct yconf_node *key = yconf_node_key(node, i);
        const struct yconf_node *value = yconf_node_item(node, i);
        const struct yconf_field f[] = {
            YCONF_F_ENUMS("key-algorithms", false, algorithm_choices, 1,
                          &p->key_algorithms),
            YCONF_F_DURATION("validity", true, 3600, 3650LL * DAY, &p->validity),
            YCONF_F_DURATION("backdate", false, 0, 3600, &p->backdate),
            YCONF_F_STRING("crl-distribution-point", false, 8, 512,
                           &p->crl_distribution_point),
            YCONF_F_INT("max-live-certificates-per-device", false, 1, 1000,
                        &p->max_live_certificates),
        };

        p->name = yconf_node_scalar(key);
        if (!plain_name(p->name, "") || strlen(p->name) > 64)
            return yconf_node_errorf(key, err, errlen, "profile names must be up to 64 "
                                     "letters, digits, '-' and '_', got \"%s\"", p->name);
        p->key_algorithms = POLICY_KEY_EC_P256;
        p->max_live_certificates = 1;
        if ((r = yconf_map_read(value, f, YCONF_NFIELDS(f), err, errlen)) != YCONF_OK)
            return r;
        if (p->crl_distribution_point != NULL) {
            const char *u = p->crl_distribution_point;
            bool ok = strncmp(u, "http://", 7) == 0 && u[7] != '\0';

            for (; ok && *u != '\0'; u++)
                ok = *u > ' ' && *u < 0x7f;
            if (!ok)
                return yconf_node_errorf(at(value, "crl-distribution-point"),
                                         err, errlen, "'%s.crl-distribution-point' must "
                                         "be an http:// URI without spaces",
                                         yconf_node_path(value));
        }
        pol->nprofiles++;
    }
    return YCONF_OK;
}

static int
read_extra_zones(struct policy *pol, const struct yconf_node *seq, char *err, size_t errlen)
{
    size_t n = yconf_node_count(seq);
    int r;

    if (n == 0)
        return YCONF_OK;
    pol->zones = calloc(n, sizeof(*pol->zones));
    if (pol->zones == NULL)
        return YCONF_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        struct policy_extra_zone *z = &pol->zones[i];
        const struct yconf_node *item = yconf_node_item(seq, i), *name;
        const struct yconf_field f[] = {
            YCONF_F_STRING("name", true, 2, 253, NULL),
            YCONF_F_DURATION("max-validity", false, 3600, 365 * DAY, &z->max_validity),
            YCONF_F_DURATION("max-inception-skew", false, 0, DAY, &z->max_inception_skew),
        };

        z->max_validity = 30 * DAY;
        z->max_inception_skew = 3600;
        if ((r = yconf_map_read(item, f, YCONF_NFIELDS(f), err, errlen)) != YCONF_OK)
            return r;
        name = yconf_node_get(item, "name");
        if ((r = policy_read_domain(name, &z->pname, &z->name, err, errlen)) != YCONF_OK)
            return r;
        pol->nzones++;
        /* The registry zone is signed only by regsignd itself, and a zone
         * around or inside it could carry records that shadow its names. */
        if (pname_is_at_or_under(&z->pname, &pol->zone_pname) ||
            pname_is_at_or_under(&pol->zone_pname, &z->pname))
            return yconf_node_errorf(name, err, errlen, "extra zone %s may not be, contain "
                                     "or lie inside the registry zone %s", z->name,
                                     pol->zone.name);
        for (size_t k = 0; k < i; k++)
            if (pname_equal(&pol->zones[k].pname, &z->pname))
                return yconf_node_errorf(name, err, errlen, "extra zone %s is listed "
                                         "twice", z->name);
    }
    return YCONF_OK;
}

static int
read_policy(struct policy *pol, char *err, size_t errlen)
{
    const struct yconf_node *root = yconf_doc_root(pol->doc);
    const struct yconf_node *zone = NULL, *device_id = NULL, *profiles = NULL;
    const struct yconf_node *crl = NULL, *revocation = NULL, *callers = NULL;
    const struct yconf_node *extra = NULL;
    int64_t version = 0;
    const struct yconf_field top[] = {
        YCONF_F_INT("version", true, 1, 1, &version),
        YCONF_F_MAP("zone", true, &zone),
        YCONF_F_MAP("device-id", false, &device_id),
        YCONF_F_MAP("profiles", true, &profiles),
        YCONF_F_MAP("crl", false, &crl),
        YCONF_F_MAP("revocation", false, &revocation),
        YCONF_F_MAPS("callers", true, 1, 0, &callers),
        YCONF_F_MAPS("extra-zones", false, 0, 0, &extra),
    };
    const struct yconf_field crl_f[] = {
        YCONF_F_DURATION("next-update", false, 3600, 90 * DAY, &pol->crl_next_update),
    };
    uint32_t reasons = 0x1f; /* the first five choices */
    const struct yconf_field rev_f[] = {
        YCONF_F_ENUMS("reasons", false, reason_choices, 1, &reasons),
    };
    int r;

    if ((r = yconf_map_read(root, top, YCONF_NFIELDS(top), err, errlen)) != YCONF_OK)
        return r;
    if ((r = read_zone(pol, zone, err, errlen)) != YCONF_OK ||
        (r = read_device_id(pol, device_id, err, errlen)) != YCONF_OK ||
        (r = read_profiles(pol, profiles, err, errlen)) != YCONF_OK)
        return r;
    pol->crl_next_update = 7 * DAY;
    if (crl != NULL && (r = yconf_map_read(crl, crl_f, 1, err, errlen)) != YCONF_OK)
        return r;
    if (revocation != NULL &&
        (r = yconf_map_read(revocation, rev_f, 1, err, errlen)) != YCONF_OK)
        return r;
    for (size_t i = 0; reason_choices[i] != NULL; i++)
        if (reasons & (1u << i))
            pol->reasons |= 1u << reason_codes[i];
    if (extra != NULL && (r = read_extra_zones(pol, extra, err, errlen)) != YCONF_OK)
        return r;
    return policy_read_callers(pol, callers, err, errlen);
}

static int
policy_build(struct yconf_doc *doc, struct policy **out, char *err, size_t errlen)
{
    struct policy *pol = calloc(1, sizeof(*pol));
    const unsigned char *bytes;
    size_t len;
    int r = YCONF_ENOMEM;

    if (pol == NULL) {
        yconf_doc_free(doc);
        goto out;
    }
    pol->doc = doc;
    bytes = yconf_doc_bytes(doc, &len);
    if (EVP_Digest(bytes, len, pol->sha256, NULL, EVP_sha256(), NULL) != 1) {
        r = YCONF_ENOMEM;
        goto out;
    }
    for (size_t i = 0; i < 32; i++)
        snprintf(pol->sha256_hex + 2 * i, 3, "%02x", pol->sha256[i]);
    if ((r = read_policy(pol, err, errlen)) != YCONF_OK)
        goto out;
    *out = pol;
    pol = NULL;
    r = YCONF_OK;
out:
    if (r == YCONF_ENOMEM && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: out of memory", yconf_doc_name(doc));
    policy_free(pol);
    return r;
}

int
policy_load(const char *path, struct policy **out, char *err, size_t errlen)
{
    struct yconf_doc *doc = NULL;
    int r;

    if (path == NULL || out == NULL)
        return YCONF_EINVAL;
    if ((r = yconf_doc_load(path, 0, &doc, err, errlen)) != YCONF_OK)
        return r;
    return policy_build(doc, out, err, errlen);
}

int
policy_parse(const char *name, const void *buf, size_t len, struct policy **out,
             char *err, size_t errlen)
{
    struct yconf_doc *doc = NULL;
    int r;

    if (out == NULL)
        return YCONF_EINVAL;
    if ((r = yconf_doc_parse(name, buf, len, 0, &doc, err, errlen)) != YCONF_OK)
        return r;
    return policy_build(doc, out, err, errlen);
}

void
policy_free(struct policy *pol)
{
    if (pol == NULL)
        return;
    for (size_t i = 0; i < pol->ncallers; i++) {
        struct policy_caller_rec *c = &pol->callers[i];

        for (size_t k = 0; k < c->nsubtrees; k++)
            free(c->subtrees[k].name);
        free(c->subtrees);
        free(c->profiles);
        free(c->zones);
    }
    free(pol->callers);
    for (size_t i = 0; i < pol->nzones; i++)
        free(pol->zones[i].name);
    free(pol->zones);
    free(pol->profiles);
    free(pol->zone_name);
    yconf_doc_free(pol->doc);
    free(pol);
}

const struct policy_profile *
policy_caller_profile(const struct policy_caller *caller, size_t i)
{
    /* Every public caller pointer is the first member of its record. */
    const struct policy_caller_rec *c = (const struct policy_caller_rec *)caller;

    return c != NULL && i < c->nprofiles ? c->profiles[i] : NULL;
}
