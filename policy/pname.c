/* pname: presentation-form domain names for policy comparisons (see pname.h). */
#include "policy/pname.h"

#include <ctype.h>
#include <string.h>

bool
pname_parse(const char *text, struct pname *out)
{
    size_t wire = 1; /* the root label's length byte */
    size_t used = 0, label = 0;
    const char *p = text;

    if (text == NULL || out == NULL)
        return false;
    memset(out, 0, sizeof(*out));
    if (strcmp(text, ".") == 0)
        return true;
    while (*p != '\0') {
        int c = (unsigned char)*p++;

        if (c == '.') {
            if (label == 0 || out->nlabels == PNAME_MAX_LABELS)
                return false;
            out->len[out->nlabels] = (uint8_t)label;
            out->off[out->nlabels] = (uint8_t)(used - label);
            out->nlabels++;
            wire += label + 1;
            label = 0;
            continue;
        }
        if (c == '\\') {
            if (isdigit((unsigned char)p[0])) {
                if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]))
                    return false;
                c = (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
                if (c > 255)
                    return false;
                p += 3;
            } else if (*p != '\0') {
                c = (unsigned char)*p++;
            } else {
                return false;
            }
        } else if (c <= ' ' || c >= 0x7f) {
            /* Presentation form writes such bytes as \DDD. */
            return false;
        }
        if (label == 63 || used == sizeof(out->bytes) - 1)
            return false;
        out->bytes[used++] = (uint8_t)tolower(c);
        label++;
    }
    /* A name must end with its dot: relative names are refused. */
    if (label != 0)
        return false;
    return wire <= 255;
}

const uint8_t *
pname_label(const struct pname *name, size_t i, size_t *len)
{
    *len = name->len[i];
    return name->bytes + name->off[i];
}

bool
pname_is_at_or_under(const struct pname *name, const struct pname *zone)
{
    size_t skip;

    if (name->nlabels < zone->nlabels)
        return false;
    skip = name->nlabels - zone->nlabels;
    for (size_t i = 0; i < zone->nlabels; i++) {
        size_t la, lb;
        const uint8_t *a = pname_label(name, skip + i, &la);
        const uint8_t *b = pname_label(zone, i, &lb);

        if (la != lb || memcmp(a, b, la) != 0)
            return false;
    }
    return true;
}

bool
pname_equal(const struct pname *a, const struct pname *b)
{
    return a->nlabels == b->nlabels && pname_is_at_or_under(a, b);
}
