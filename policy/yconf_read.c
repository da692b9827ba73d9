/*
 * yconf schema checks: the second half of the yconf module (declared in
 * yconf.h). It uses only yconf's public node accessors, so the tree and the
 * schema rules can be read and changed separately.
 */
#include "policy/yconf.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* "'zone.ttl'" or "the top level", for messages. */
static const char *
node_label(const struct yconf_node *node, char *buf, size_t len)
{
    const char *path = yconf_node_path(node);

    if (path[0] == '\0')
        return "the top level";
    snprintf(buf, len, "'%s'", path);
    return buf;
}

static bool
is_null(const struct yconf_node *node)
{
    const char *t = yconf_node_scalar(node);

    return t != NULL && yconf_node_plain(node) &&
           (t[0] == '\0' || strcmp(t, "~") == 0 || strcmp(t, "null") == 0 ||
            strcmp(t, "Null") == 0 || strcmp(t, "NULL") == 0);
}

/* Describes what was found: a quoted, shortened, printable copy of a scalar. */
static const char *
describe(const struct yconf_node *node, char *buf, size_t len)
{
    const char *t = yconf_node_scalar(node);
    size_t o = 0, i;

    if (yconf_node_kind(node) == YCONF_MAP)
        return "a map";
    if (yconf_node_kind(node) == YCONF_SEQUENCE)
        return "a sequence";
    if (is_null(node))
        return "nothing";
    buf[o++] = '"';
    for (i = 0; t[i] != '\0' && o + 6 < len && i < 48; i++)
        buf[o++] = isprint((unsigned char)t[i]) ? t[i] : '?';
    if (t[i] != '\0' && o + 6 < len) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

/* A decimal integer without '+', leading zeros, spaces or separators. */
static bool
parse_int(const char *t, int64_t *out)
{
    bool neg = false;
    uint64_t v = 0, limit;

    if (*t == '-') {
        neg = true;
        t++;
    }
    if (!isdigit((unsigned char)*t) || (t[0] == '0' && t[1] != '\0'))
        return false;
    limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    for (; *t != '\0'; t++) {
        unsigned d;

        if (!isdigit((unsigned char)*t))
            return false;
        d = (unsigned)(*t - '0');
        if (v > (limit - d) / 10)
            return false;
        v = v * 10 + d;
    }
    if (neg)
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)v;
    else
        *out = (int64_t)v;
    return true;
}

int
yconf_duration_parse(const char *text, int64_t *out)
{
    static const struct { char unit; int64_t seconds; } units[] = {
        { 's', 1 }, { 'm', 60 }, { 'h', 3600 }, { 'd', 86400 }, { 'w', 604800 },
    };
    char digits[24];
    size_t n = 0;
    int64_t v, mult = 1;

    if (text == NULL || out == NULL)
        return YCONF_EINVAL;
    while (isdigit((unsigned char)text[n]))
        n++;
    if (n == 0 || n >= sizeof(digits))
        return YCONF_EINVAL;
    if (text[n] != '\0') {
        size_t u;

        if (text[n + 1] != '\0')
            return YCONF_EINVAL;
        for (u = 0; u < sizeof(units) / sizeof(units[0]); u++)
            if (units[u].unit == text[n])
                break;
        if (u == sizeof(units) / sizeof(units[0]))
            return YCONF_EINVAL;
        mult = units[u].seconds;
    }
    memcpy(digits, text, n);
    digits[n] = '\0';
    if (!parse_int(digits, &v) || v > INT64_MAX / mult)
        return YCONF_EINVAL;
    *out = v * mult;
    return YCONF_OK;
}

int
yconf_duration_format(int64_t seconds, char *buf, size_t len)
{
    if (seconds != 0 && seconds % 86400 == 0)
        return snprintf(buf, len, "%" PRId64 "d", seconds / 86400);
    if (seconds != 0 && seconds % 3600 == 0)
        return snprintf(buf, len, "%" PRId64 "h", seconds / 3600);
    if (seconds != 0 && seconds % 60 == 0)
        return snprintf(buf, len, "%" PRId64 "m", seconds / 60);
    return snprintf(buf, len, "%" PRId64 "s", seconds);
}

/* "seed, cert-pkix, dance" */
static void
join_choices(const char *const *choices, char *buf, size_t len)
{
    size_t o = 0;

    buf[0] = '\0';
    for (size_t i = 0; choices[i] != NULL && o < len; i++) {
        int n = snprintf(buf + o, len - o, "%s%s", i ? ", " : "", choices[i]);

        if (n < 0)
            break;
        o += (size_t)n;
    }
}

static int
choice_index(const char *const *choices, const char *t)
{
    for (int i = 0; choices[i] != NULL; i++)
        if (strcmp(choices[i], t) == 0)
            return i;
    return -1;
}

static int
check_items(const struct yconf_node *node, const struct yconf_field *f,
            char *err, size_t errlen)
{
    char lb[160];
    size_t n = yconf_node_count(node);

    if (n < f->min_items || (f->max_items > 0 && n > f->max_items)) {
        if (f->max_items > 0)
            return yconf_node_errorf(node, err, errlen,
                                     "%s must have between %zu and %zu items, got %zu",
                                     node_label(node, lb, sizeof lb), f->min_items,
                                     f->max_items, n);
        return yconf_node_errorf(node, err, errlen,
                                 "%s must have at least %zu item%s, got %zu",
                                 node_label(node, lb, sizeof lb), f->min_items,
                                 f->min_items == 1 ? "" : "s", n);
    }
    return YCONF_OK;
}

static int
read_string(const struct yconf_node *node, const struct yconf_field *f,
            char *err, size_t errlen)
{
    char lb[160], db[64];
    const char *t = yconf_node_scalar(node);
    size_t n;

    if (t == NULL || is_null(node))
        return yconf_node_errorf(node, err, errlen, "%s must be a string, got %s",
                                 node_label(node, lb, sizeof lb),
                                 describe(node, db, sizeof db));
    n = strlen(t);
    if ((int64_t)n < f->min || (f->max > 0 && (int64_t)n > f->max)) {
        if (f->max > 0)
            return yconf_node_errorf(node, err, errlen,
                                     "%s must be a string of %" PRId64 " to %" PRId64
                                     " bytes, got %s",
                                     node_label(node, lb, sizeof lb), f->min, f->max,
                                     describe(node, db, sizeof db));
        return yconf_node_errorf(node, err, errlen,
                                 "%s must be a string of at least %" PRId64 " bytes, got %s",
                                 node_label(node, lb, sizeof lb), f->min,
                                 describe(node, db, sizeof db));
    }
    return YCONF_OK;
}

static int
read_enums(const struct yconf_node *node, const struct yconf_field *f,
           char *err, size_t errlen, uint32_t *mask)
{
    char lb[160], db[64], cb[256];
    int r;

    *mask = 0;
    if ((r = check_items(node, f, err, errlen)) != YCONF_OK)
        return r;
    for (size_t i = 0; i < yconf_node_count(node); i++) {
        const struct yconf_node *item = yconf_node_item(node, i);
        const char *t = yconf_node_scalar(item);
        int c = t && !is_null(item) ? choice_index(f->choices, t) : -1;

        if (c < 0 || c >= 32) {
            join_choices(f->choices, cb, sizeof cb);
            return yconf_node_errorf(item, err, errlen,
                                     "%s must be one of: %s; got %s",
                                     node_label(item, lb, sizeof lb), cb,
                                     describe(item, db, sizeof db));
        }
        if (*mask & (UINT32_C(1) << c))
            return yconf_node_errorf(item, err, errlen, "%s lists \"%s\" twice",
                                     node_label(node, lb, sizeof lb), t);
        *mask |= UINT32_C(1) << c;
    }
    return YCONF_OK;
}

int
yconf_node_read(const struct yconf_node *node, const struct yconf_field *f,
                char *err, size_t errlen)
{
    char lb[160], db[64], cb[256], lo[24], hi[24];
    const char *t;
    enum yconf_kind kind;
    int64_t v;
    uint32_t mask;
    int r, c;

    if (node == NULL || f == NULL)
        return YCONF_EINVAL;
    kind = yconf_node_kind(node);
    t = yconf_node_scalar(node);
    switch (f->type) {
    case YCONF_T_STRING:
        if ((r = read_string(node, f, err, errlen)) != YCONF_OK)
            return r;
        if (f->out)
            *(const char **)f->out = t;
        return YCONF_OK;
    case YCONF_T_BOOL:
        if (t == NULL || (strcmp(t, "true") != 0 && strcmp(t, "false") != 0))
            return yconf_node_errorf(node, err, errlen, "%s must be true or false, got %s",
                                     node_label(node, lb, sizeof lb),
                                     describe(node, db, sizeof db));
        if (f->out)
            *(bool *)f->out = strcmp(t, "true") == 0;
        return YCONF_OK;
    case YCONF_T_INT:
        if ((t == NULL || !parse_int(t, &v) || v < f->min || v > f->max) &&
            f->min == f->max)
            return yconf_node_errorf(node, err, errlen, "%s must be %" PRId64 ", got %s",
                                     node_label(node, lb, sizeof lb), f->min,
                                     describe(node, db, sizeof db));
        if (t == NULL || !parse_int(t, &v) || v < f->min || v > f->max)
            return yconf_node_errorf(node, err, errlen,
                                     "%s must be an integer between %" PRId64 " and %" PRId64
                                     ", got %s",
                                     node_label(node, lb, sizeof lb), f->min, f->max,
                                     describe(node, db, sizeof db));
        if (f->out)
            *(int64_t *)f->out = v;
        return YCONF_OK;
    case YCONF_T_DURATION:
        if (t == NULL || yconf_duration_parse(t, &v) != YCONF_OK || v < f->min ||
            v > f->max) {
            yconf_duration_format(f->min, lo, sizeof lo);
            yconf_duration_format(f->max, hi, sizeof hi);
            return yconf_node_errorf(node, err, errlen,
                                     "%s must be a duration (seconds, or a number with unit "
                                     "s, m, h, d or w) between %s and %s, got %s",
                                     node_label(node, lb, sizeof lb), lo, hi,
                                     describe(node, db, sizeof db));
        }
        if (f->out)
            *(int64_t *)f->out = v;
        return YCONF_OK;
    case YCONF_T_ENUM:
        if (f->choices == NULL)
            return YCONF_EINVAL;
        c = t && !is_null(node) ? choice_index(f->choices, t) : -1;
        if (c < 0) {
            join_choices(f->choices, cb, sizeof cb);
            return yconf_node_errorf(node, err, errlen, "%s must be one of: %s; got %s",
                                     node_label(node, lb, sizeof lb), cb,
                                     describe(node, db, sizeof db));
        }
        if (f->out)
            *(int *)f->out = c;
        return YCONF_OK;
    case YCONF_T_ENUMS:
    case YCONF_T_STRINGS:
    case YCONF_T_MAPS:
        if (kind != YCONF_SEQUENCE)
            return yconf_node_errorf(node, err, errlen, "%s must be a sequence, got %s",
                                     node_label(node, lb, sizeof lb),
                                     describe(node, db, sizeof db));
        if (f->type == YCONF_T_ENUMS) {
            if (f->choices == NULL)
                return YCONF_EINVAL;
            if ((r = read_enums(node, f, err, errlen, &mask)) != YCONF_OK)
                return r;
            if (f->out)
                *(uint32_t *)f->out = mask;
            return YCONF_OK;
        }
        if ((r = check_items(node, f, err, errlen)) != YCONF_OK)
            return r;
        for (size_t i = 0; i < yconf_node_count(node); i++) {
            const struct yconf_node *item = yconf_node_item(node, i);

            if (f->type == YCONF_T_STRINGS)
                r = read_string(item, f, err, errlen);
            else if (yconf_node_kind(item) != YCONF_MAP)
                r = yconf_node_errorf(item, err, errlen, "%s must be a map, got %s",
                                      node_label(item, lb, sizeof lb),
                                      describe(item, db, sizeof db));
            if (r != YCONF_OK)
                return r;
        }
        if (f->out)
            *(const struct yconf_node **)f->out = node;
        return YCONF_OK;
    case YCONF_T_MAP:
        if (kind != YCONF_MAP)
            return yconf_node_errorf(node, err, errlen, "%s must be a map, got %s",
                                     node_label(node, lb, sizeof lb),
                                     describe(node, db, sizeof db));
        if (f->out)
            *(const struct yconf_node **)f->out = node;
        return YCONF_OK;
    }
    return YCONF_EINVAL;
}

int
yconf_map_read(const struct yconf_node *map, const struct yconf_field *fields,
               size_t nfields, char *err, size_t errlen)
{
    char lb[160], db[64], allowed[256];
    size_t i, k;
    int r;

    if (map == NULL || (fields == NULL && nfields > 0))
        return YCONF_EINVAL;
    if (yconf_node_kind(map) != YCONF_MAP) {
        if (yconf_node_path(map)[0] == '\0')
            return yconf_node_errorf(map, err, errlen, "the top level must be a map, got %s",
                                     describe(map, db, sizeof db));
        return yconf_node_errorf(map, err, errlen, "%s must be a map, got %s",
                                 node_label(map, lb, sizeof lb),
                                 describe(map, db, sizeof db));
    }
    /* Unknown keys first: a misspelt key usually explains a missing one. */
    for (i = 0; i < yconf_node_count(map); i++) {
        const struct yconf_node *key = yconf_node_key(map, i);

        for (k = 0; k < nfields; k++)
            if (strcmp(fields[k].key, yconf_node_scalar(key)) == 0)
                break;
        if (k == nfields) {
            size_t o = 0;

            allowed[0] = '\0';
            for (k = 0; k < nfields && o < sizeof allowed; k++) {
                int n = snprintf(allowed + o, sizeof allowed - o, "%s%s",
                                 k ? ", " : "", fields[k].key);
                if (n < 0)
                    break;
                o += (size_t)n;
            }
            if (yconf_node_path(map)[0] == '\0')
                return yconf_node_errorf(key, err, errlen,
                                         "key '%s' is not allowed at the top level "
                                         "(allowed: %s)",
                                         yconf_node_scalar(key), allowed);
            return yconf_node_errorf(key, err, errlen,
                                     "key '%s' is not allowed in '%s' (allowed: %s)",
                                     yconf_node_scalar(key), yconf_node_path(map),
                                     allowed);
        }
    }
    for (k = 0; k < nfields; k++) {
        const struct yconf_node *value = yconf_node_get(map, fields[k].key);

        if (value == NULL) {
            if (fields[k].required)
                return yconf_node_errorf(map, err, errlen,
                                         "missing required key '%s' %s%s",
                                         fields[k].key,
                                         yconf_node_path(map)[0] ? "in " : "at ",
                                         node_label(map, lb, sizeof lb));
            continue;
        }
        if ((r = yconf_node_read(value, &fields[k], err, errlen)) != YCONF_OK)
            return r;
    }
    return YCONF_OK;
}
