/*
 * ceremony_file: reading and checking the reviewed ceremony file.
 */
#include "hsm-setup/ceremony_file.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "policy/yconf.h"

/* Ten years past a root's usual twenty is far enough for any CA we make. */
#define VALIDITY_MAX (INT64_C(40) * 365 * 86400)
#define VALIDITY_MIN INT64_C(86400)
#define TTL_MAX INT64_C(604800)

static const char *const key_algorithms[] = { "ec-p256", NULL };

const char *ceremony_file_strerror(int err)
{
    switch (err) {
    case CEREMONY_FILE_OK: return "success";
    case CEREMONY_FILE_ENOMEM: return "out of memory";
    case CEREMONY_FILE_EIO: return "the ceremony file could not be read";
    case CEREMONY_FILE_ESYNTAX: return "the ceremony file is not acceptable YAML";
    case CEREMONY_FILE_ESCHEMA: return "the ceremony file breaks its schema";
    default: return "unknown ceremony file error";
    }
}

static int map_yconf_err(int r)
{
    switch (r) {
    case YCONF_OK: return CEREMONY_FILE_OK;
    case YCONF_ENOMEM: return CEREMONY_FILE_ENOMEM;
    case YCONF_EIO: return CEREMONY_FILE_EIO;
    case YCONF_ETOOBIG:
    case YCONF_ESYNTAX: return CEREMONY_FILE_ESYNTAX;
    default: return CEREMONY_FILE_ESCHEMA;
    }
}

/*
 * Labels end up inside PKCS#11 URIs, file names of transcripts and the
 * daemon's configuration. Keeping them to a small safe alphabet means none of
 * those places needs escaping, and a reviewer sees exactly what is made.
 */
static bool label_ok(const char *s)
{
    if (s[0] == '\0' || s[0] == '-' || s[0] == '.')
        return false;
    for (const char *p = s; *p != '\0'; p++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.'))
            return false;
    }
    return true;
}

/*
 * Zone names are absolute, lower case, letters/digits/hyphen/underscore
 * labels of 1..63 bytes. Lower case only, so that file names and the
 * nameConstraints entry derived from the name are exactly what was reviewed.
 */
static bool zone_name_ok(const char *s)
{
    size_t len = strlen(s), lablen = 0;

    if (len < 2 || len > 254 || s[len - 1] != '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (c == '.') {
            if (lablen == 0 || lablen > 63)
                return false;
            lablen = 0;
            continue;
        }
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
              c == '_'))
            return false;
        lablen++;
    }
    return true;
}

static bool country_ok(const char *s)
{
    return strlen(s) == 2 && s[0] >= 'A' && s[0] <= 'Z' && s[1] >= 'A' &&
           s[1] <= 'Z';
}

static int read_name(const struct yconf_node *node, struct ceremony_name *name,
                     char *err, size_t errlen)
{
    const struct yconf_field fields[] = {
        YCONF_F_STRING("common-name", true, 1, 64, &name->common_name),
        YCONF_F_STRING("organization", false, 1, 64, &name->organization),
        YCONF_F_STRING("organizational-unit", false, 1, 64,
                       &name->organizational_unit),
        YCONF_F_STRING("country", false, 2, 2, &name->country),
    };
    int r = yconf_map_read(node, fields, YCONF_NFIELDS(fields), err, errlen);

    if (r != YCONF_OK)
        return r;
    if (name->country != NULL && !country_ok(name->country))
        return yconf_node_errorf(yconf_node_get(node, "country"), err, errlen,
                                 "'%s.country' must be two upper-case letters "
                                 "(ISO 3166), got \"%s\"",
                                 yconf_node_path(node), name->country);
    return YCONF_OK;
}

static int check_label(const struct yconf_node *map, const char *key,
                       const char *label, char *err, size_t errlen)
{
    if (label_ok(label))
        return YCONF_OK;
    return yconf_node_errorf(yconf_node_get(map, key), err, errlen,
                             "'%s.%s' must use only letters, digits, '-', '_' "
                             "and '.' (not first), got \"%s\"",
                             yconf_node_path(map), key, label);
}

static int read_ca(const struct yconf_node *node, struct ceremony_ca *ca,
                   char *err, size_t errlen)
{
    const struct yconf_node *subject = NULL;
    const struct yconf_field fields[] = {
        YCONF_F_STRING("label", true, 1, CEREMONY_LABEL_MAX, &ca->label),
        YCONF_F_MAP("subject", true, &subject),
        YCONF_F_DURATION("validity", true, VALIDITY_MIN, VALIDITY_MAX,
                         &ca->validity),
    };
    int r = yconf_map_read(node, fields, YCONF_NFIELDS(fields), err, errlen);

    if (r == YCONF_OK)
        r = check_label(node, "label", ca->label, err, errlen);
    if (r == YCONF_OK)
        r = read_name(subject, &ca->subject, err, errlen);
    return r;
}

static int read_zone(const struct yconf_node *node, struct ceremony_zone *z,
                     char *err, size_t errlen)
{
    const struct yconf_field fields[] = {
        YCONF_F_STRING("name", true, 2, 254, &z->name),
        YCONF_F_INT("dnskey-ttl", false, 0, TTL_MAX, &z->dnskey_ttl),
        YCONF_F_STRING("ksk", true, 1, CEREMONY_LABEL_MAX, &z->ksk_label),
        YCONF_F_STRING("zsk", true, 1, CEREMONY_LABEL_MAX, &z->zsk_label),
    };
    int r;

    z->dnskey_ttl = 3600;
    r = yconf_map_read(node, fields, YCONF_NFIELDS(fields), err, errlen);
    if (r != YCONF_OK)
        return r;
    if (!zone_name_ok(z->name))
        return yconf_node_errorf(yconf_node_get(node, "name"), err, errlen,
                                 "'%s.name' must be an absolute lower-case "
                                 "zone name ending in '.', got \"%s\"",
                                 yconf_node_path(node), z->name);
    r = check_label(node, "ksk", z->ksk_label, err, errlen);
    if (r == YCONF_OK)
        r = check_label(node, "zsk", z->zsk_label, err, errlen);
    return r;
}

/*
 * Every key needs its own label: a repeated label would make the second key
 * generation fail half-way through the ceremony, or worse, make two keys that
 * the daemon cannot tell apart. Checked here, before anything is made.
 */
struct label_use {
    const char *label;
    const struct yconf_node *node;
};

static int check_labels_unique(const struct label_use *uses, size_t n,
                               char *err, size_t errlen)
{
    for (size_t i = 1; i < n; i++) {
        for (size_t j = 0; j < i; j++) {
            if (strcmp(uses[i].label, uses[j].label) != 0)
                continue;
            return yconf_node_errorf(uses[i].node, err, errlen,
                                     "label \"%s\" of '%s' is already used by "
                                     "'%s' (line %u); every key needs its own "
                                     "label",
                                     uses[i].label,
                                     yconf_node_path(uses[i].node),
                                     yconf_node_path(uses[j].node),
                                     yconf_node_line(uses[j].node));
        }
    }
    return YCONF_OK;
}

static int check_spec(struct ceremony_spec *s, const struct yconf_node *root,
                      char *err, size_t errlen)
{
    struct label_use uses[5 + 2 * CEREMONY_EXTRA_ZONES_MAX];
    const struct yconf_node *rz = yconf_node_get(root, "registry-zone");
    const struct yconf_node *ez = yconf_node_get(root, "extra-zones");
    size_t n = 0;

    if (s->issuing.validity > s->root.validity)
        return yconf_node_errorf(
            yconf_node_get(yconf_node_get(root, "issuing-ca"), "validity"),
            err, errlen,
            "'issuing-ca.validity' must not be longer than "
            "'root-ca.validity': the issuing CA would outlive its root");

    uses[n++] = (struct label_use){ s->root.label,
        yconf_node_get(yconf_node_get(root, "root-ca"), "label") };
    uses[n++] = (struct label_use){ s->issuing.label,
        yconf_node_get(yconf_node_get(root, "issuing-ca"), "label") };
    uses[n++] = (struct label_use){ s->registry.ksk_label,
                                    yconf_node_get(rz, "ksk") };
    uses[n++] = (struct label_use){ s->registry.zsk_label,
                                    yconf_node_get(rz, "zsk") };
    uses[n++] = (struct label_use){ s->audit_label,
        yconf_node_get(yconf_node_get(root, "audit"), "label") };
    for (size_t i = 0; i < s->nextra; i++) {
        const struct yconf_node *z = yconf_node_item(ez, i);
        uses[n++] = (struct label_use){ s->extra[i].ksk_label,
                                        yconf_node_get(z, "ksk") };
        uses[n++] = (struct label_use){ s->extra[i].zsk_label,
                                        yconf_node_get(z, "zsk") };
        if (strcmp(s->extra[i].name, s->registry.name) == 0)
            return yconf_node_errorf(yconf_node_get(z, "name"), err, errlen,
                                     "extra zone \"%s\" is the registry zone",
                                     s->extra[i].name);
        for (size_t j = 0; j < i; j++) {
            if (strcmp(s->extra[i].name, s->extra[j].name) == 0)
                return yconf_node_errorf(yconf_node_get(z, "name"), err,
                                         errlen, "extra zone \"%s\" is listed "
                                         "twice", s->extra[i].name);
        }
    }
    return check_labels_unique(uses, n, err, errlen);
}

static int read_spec(struct ceremony_spec *s, char *err, size_t errlen)
{
    const struct yconf_node *root = yconf_doc_root(s->doc);
    const struct yconf_node *root_ca = NULL, *issuing = NULL, *zone = NULL,
                            *audit = NULL, *extra = NULL;
    int64_t version = 0;
    int algorithm = -1;
    const struct yconf_field top[] = {
        YCONF_F_INT("version", true, 1, 1, &version),
        YCONF_F_STRING("description", false, 0, 200, &s->description),
        YCONF_F_ENUM("key-algorithm", true, key_algorithms, &algorithm),
        YCONF_F_MAP("root-ca", true, &root_ca),
        YCONF_F_MAP("issuing-ca", true, &issuing),
        YCONF_F_MAP("registry-zone", true, &zone),
        YCONF_F_MAP("audit", true, &audit),
        YCONF_F_MAPS("extra-zones", false, 0, CEREMONY_EXTRA_ZONES_MAX, &extra),
    };
    const struct yconf_field audit_fields[] = {
        YCONF_F_STRING("label", true, 1, CEREMONY_LABEL_MAX, &s->audit_label),
    };
    int r;

    r = yconf_map_read(root, top, YCONF_NFIELDS(top), err, errlen);
    if (r == YCONF_OK)
        r = read_ca(root_ca, &s->root, err, errlen);
    if (r == YCONF_OK)
        r = read_ca(issuing, &s->issuing, err, errlen);
    if (r == YCONF_OK)
        r = read_zone(zone, &s->registry, err, errlen);
    if (r == YCONF_OK)
        r = yconf_map_read(audit, audit_fields, YCONF_NFIELDS(audit_fields),
                           err, errlen);
    if (r == YCONF_OK)
        r = check_label(audit, "label", s->audit_label, err, errlen);
    s->nextra = extra != NULL ? yconf_node_count(extra) : 0;
    for (size_t i = 0; r == YCONF_OK && i < s->nextra; i++)
        r = read_zone(yconf_node_item(extra, i), &s->extra[i], err, errlen);
    if (r == YCONF_OK)
        r = check_spec(s, root, err, errlen);
    return r;
}

int ceremony_spec_load(const char *path, struct ceremony_spec **out,
                       char *err, size_t errlen)
{
    struct ceremony_spec *s = NULL;
    const unsigned char *bytes;
    size_t len;
    int r = CEREMONY_FILE_ENOMEM;

    if (err != NULL && errlen > 0)
        err[0] = '\0';
    s = calloc(1, sizeof(*s));
    if (s == NULL)
        goto out;
    r = yconf_doc_load(path, 64 * 1024, &s->doc, err, errlen);
    if (r != YCONF_OK) {
        r = map_yconf_err(r);
        goto out;
    }
    s->path = yconf_doc_name(s->doc);
    s->description = "";
    bytes = yconf_doc_bytes(s->doc, &len);
    if (EVP_Digest(bytes, len, s->sha256, NULL, EVP_sha256(), NULL) != 1) {
        r = CEREMONY_FILE_ENOMEM;
        goto out;
    }
    r = read_spec(s, err, errlen);
    if (r != YCONF_OK) {
        r = map_yconf_err(r);
        goto out;
    }
    *out = s;
    s = NULL;
    r = CEREMONY_FILE_OK;
out:
    ceremony_spec_free(s);
    return r;
}

void ceremony_spec_free(struct ceremony_spec *spec)
{
    if (spec == NULL)
        return;
    yconf_doc_free(spec->doc);
    free(spec);
}

int ceremony_zone_file_name(const char *prefix, const struct ceremony_zone *extra,
                            char *buf, size_t len)
{
    int n;

    if (extra == NULL) {
        n = snprintf(buf, len, "%s.txt", prefix);
    } else {
        size_t zlen = strlen(extra->name);
        n = snprintf(buf, len, "%s-%.*s.txt", prefix, (int)(zlen - 1),
                     extra->name);
    }
    return n < 0 || (size_t)n >= len ? -1 : 0;
}
