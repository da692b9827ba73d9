/*
 * yconf: strict YAML loading over libyaml's event parser, and schema checks.
 *
 * The event parser is used rather than yaml_document_t because events carry
 * the anchors, tags and marks we must refuse or remember, and because
 * building our own tree lets each node keep its path for error messages.
 */
#include "policy/yconf.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

struct yconf_node {
    enum yconf_kind kind;
    unsigned line, column;
    bool plain;
    const char *file;          /* the document's name, shared */
    char *path;
    char *text;                /* scalars only */
    size_t count, cap;
    struct yconf_node **items; /* sequence items, or map values */
    struct yconf_node **keys;  /* map keys (scalars), parallel to items */
};

struct yconf_doc {
    char *name;
    unsigned char *bytes;
    size_t len;
    struct yconf_node *root;
};

struct parse_ctx {
    yaml_parser_t parser;
    size_t nodes;              /* nodes built so far, against YCONF_MAX_NODES */
    const char *file;
    char *err;
    size_t errlen;
};

const char *
yconf_strerror(int err)
{
    switch (err) {
    case YCONF_OK: return "success";
    case YCONF_ENOMEM: return "out of memory";
    case YCONF_EIO: return "cannot read file";
    case YCONF_ETOOBIG: return "file too large";
    case YCONF_ESYNTAX: return "invalid or refused YAML";
    case YCONF_ESCHEMA: return "file does not match its schema";
    case YCONF_EINVAL: return "invalid argument";
    default: return "unknown error";
    }
}

/* Formats "file:line:col: message" (or "file: message" when line is 0). */
static void
vformat_error(char *err, size_t errlen, const char *file, unsigned line,
              unsigned col, const char *fmt, va_list ap)
{
    int n;

    if (err == NULL || errlen == 0)
        return;
    if (line > 0)
        n = snprintf(err, errlen, "%s:%u:%u: ", file, line, col);
    else
        n = snprintf(err, errlen, "%s: ", file);
    if (n < 0 || (size_t)n >= errlen)
        return;
    vsnprintf(err + n, errlen - (size_t)n, fmt, ap);
}

static int
format_error(char *err, size_t errlen, const char *file, unsigned line,
             unsigned col, int code, const char *fmt, ...)
    __attribute__((format(printf, 7, 8)));

static int
format_error(char *err, size_t errlen, const char *file, unsigned line,
             unsigned col, int code, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vformat_error(err, errlen, file, line, col, fmt, ap);
    va_end(ap);
    return code;
}

int
yconf_node_errorf(const struct yconf_node *node, char *err, size_t errlen,
                  const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    if (node != NULL)
        vformat_error(err, errlen, node->file, node->line, node->column, fmt, ap);
    else
        vformat_error(err, errlen, "?", 0, 0, fmt, ap);
    va_end(ap);
    return YCONF_ESCHEMA;
}

/*
 * libyaml checks UTF-8 too, but its messages give byte offsets for some
 * problems; checking first gives every caller the same "line:col" form and
 * also refuses NUL bytes, which YAML forbids but C strings cannot carry.
 */
static int
check_utf8(const unsigned char *p, size_t len, const char *file, char *err,
           size_t errlen)
{
    unsigned line = 1, col = 1;
    size_t i = 0;

    while (i < len) {
        unsigned char c = p[i];
        size_t n;
        uint32_t cp;

        if (c == 0)
            return format_error(err, errlen, file, line, col, YCONF_ESYNTAX,
                                "NUL byte in file");
        if (c < 0x80) {
            n = 1;
            cp = c;
        } else if ((c & 0xe0) == 0xc0) {
            n = 2;
            cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            n = 3;
            cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            n = 4;
            cp = c & 0x07;
        } else {
            goto bad;
        }
        if (i + n > len)
            goto bad;
        for (size_t k = 1; k < n; k++) {
            if ((p[i + k] & 0xc0) != 0x80)
                goto bad;
            cp = (cp << 6) | (p[i + k] & 0x3f);
        }
        /* Overlong forms, surrogates and values past Unicode are invalid. */
        if ((n == 2 && cp < 0x80) || (n == 3 && cp < 0x800) ||
            (n == 4 && cp < 0x10000) || cp > 0x10ffff ||
            (cp >= 0xd800 && cp <= 0xdfff))
            goto bad;
        if (c == '\n') {
            line++;
            col = 1;
        } else {
            col++;
        }
        i += n;
    }
    return YCONF_OK;
bad:
    return format_error(err, errlen, file, line, col, YCONF_ESYNTAX,
                        "file is not valid UTF-8");
}

static void
node_free(struct yconf_node *n)
{
    if (n == NULL)
        return;
    for (size_t i = 0; i < n->count; i++) {
        node_free(n->items[i]);
        if (n->keys != NULL)
            node_free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->text);
    free(n->path);
    free(n);
}

static struct yconf_node *
node_new(enum yconf_kind kind, const yaml_mark_t *mark, const char *file,
         const char *path)
{
    struct yconf_node *n = calloc(1, sizeof(*n));

    if (n == NULL)
        return NULL;
    n->kind = kind;
    n->line = (unsigned)mark->line + 1;
    n->column = (unsigned)mark->column + 1;
    n->file = file;
    n->path = strdup(path);
    if (n->path == NULL) {
        free(n);
        return NULL;
    }
    return n;
}

static int
node_append(struct yconf_node *n, struct yconf_node *key, struct yconf_node *v)
{
    if (n->count == n->cap) {
        size_t cap = n->cap ? n->cap * 2 : 4;
        struct yconf_node **items = realloc(n->items, cap * sizeof(*items));

        if (items == NULL)
            return YCONF_ENOMEM;
        n->items = items;
        if (n->kind == YCONF_MAP) {
            struct yconf_node **keys = realloc(n->keys, cap * sizeof(*keys));

            if (keys == NULL)
                return YCONF_ENOMEM;
            n->keys = keys;
        }
        n->cap = cap;
    }
    n->items[n->count] = v;
    if (n->kind == YCONF_MAP)
        n->keys[n->count] = key;
    n->count++;
    return YCONF_OK;
}

static char *
path_join(const char *parent, const char *key, size_t index, bool is_key)
{
    char *p = NULL;
    int n;

    if (is_key)
        n = asprintf(&p, "%s%s%s", parent, parent[0] ? "." : "", key);
    else
        n = asprintf(&p, "%s[%zu]", parent, index);
    return n < 0 ? NULL : p;
}

static int
next_event(struct parse_ctx *ctx, yaml_event_t *ev)
{
    if (yaml_parser_parse(&ctx->parser, ev))
        return YCONF_OK;
    if (ctx->parser.error == YAML_MEMORY_ERROR)
        return YCONF_ENOMEM;
    return format_error(ctx->err, ctx->errlen, ctx->file,
                        (unsigned)ctx->parser.problem_mark.line + 1,
                        (unsigned)ctx->parser.problem_mark.column + 1,
                        YCONF_ESYNTAX, "%s%s%s",
                        ctx->parser.problem ? ctx->parser.problem : "syntax error",
                        ctx->parser.context ? " " : "",
                        ctx->parser.context ? ctx->parser.context : "");
}

static int
refuse_event(struct parse_ctx *ctx, const yaml_event_t *ev, const char *what)
{
    return format_error(ctx->err, ctx->errlen, ctx->file,
                        (unsigned)ev->start_mark.line + 1,
                        (unsigned)ev->start_mark.column + 1, YCONF_ESYNTAX,
                        "%s", what);
}

/* Refuses what none of our files uses: anchors (hence aliases) and tags. */
static int
check_decorations(struct parse_ctx *ctx, const yaml_event_t *ev)
{
    const yaml_char_t *anchor = NULL, *tag = NULL;

    if (ev->type == YAML_SCALAR_EVENT) {
        anchor = ev->data.scalar.anchor;
        tag = ev->data.scalar.tag;
    } else if (ev->type == YAML_SEQUENCE_START_EVENT) {
        anchor = ev->data.sequence_start.anchor;
        tag = ev->data.sequence_start.tag;
    } else if (ev->type == YAML_MAPPING_START_EVENT) {
        anchor = ev->data.mapping_start.anchor;
        tag = ev->data.mapping_start.tag;
    }
    if (anchor != NULL)
        return refuse_event(ctx, ev, "anchors and aliases are not allowed");
    if (tag != NULL)
        return refuse_event(ctx, ev, "tags are not allowed");
    return YCONF_OK;
}

static int parse_node(struct parse_ctx *ctx, yaml_event_t *ev, const char *path,
                      int depth, struct yconf_node **out);

static int
parse_scalar(struct parse_ctx *ctx, yaml_event_t *ev, const char *path,
             struct yconf_node **out)
{
    struct yconf_node *n = NULL;
    int r = YCONF_ENOMEM;

    if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length) != NULL) {
        r = refuse_event(ctx, ev, "NUL character in a string");
        goto out;
    }
    n = node_new(YCONF_SCALAR, &ev->start_mark, ctx->file, path);
    if (n == NULL)
        goto out;
    n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
    n->text = strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
    if (n->text == NULL)
        goto out;
    *out = n;
    n = NULL;
    r = YCONF_OK;
out:
    node_free(n);
    return r;
}

static int
parse_children(struct parse_ctx *ctx, struct yconf_node *n, int depth)
{
    yaml_event_t ev, kev;
    yaml_event_type_t end = n->kind == YCONF_MAP ? YAML_MAPPING_END_EVENT
                                                 : YAML_SEQUENCE_END_EVENT;
    struct yconf_node *key = NULL, *value = NULL;
    char *path = NULL;
    int r;

    for (;;) {
        if ((r = next_event(ctx, &ev)) != YCONF_OK)
            goto out;
        if (ev.type == end) {
            yaml_event_delete(&ev);
            break;
        }
        if (n->kind == YCONF_MAP) {
            /* The key: a non-empty scalar, not seen before in this map. */
            kev = ev;
            if (kev.type != YAML_SCALAR_EVENT) {
                r = kev.type == YAML_ALIAS_EVENT
                        ? refuse_event(ctx, &kev, "anchors and aliases are not allowed")
                        : refuse_event(ctx, &kev, "keys must be scalars");
                yaml_event_delete(&kev);
                goto out;
            }
            r = parse_node(ctx, &kev, n->path, depth + 1, &key);
            if (r != YCONF_OK)
                goto out;
            if (key->text[0] == '\0') {
                yconf_node_errorf(key, ctx->err, ctx->errlen, "empty key");
                r = YCONF_ESYNTAX;
                goto out;
            }
            /* The duplicate check is quadratic; the cap keeps it cheap. */
            if (n->count == YCONF_MAX_MAP_KEYS) {
                yconf_node_errorf(key, ctx->err, ctx->errlen,
                                  "a map may hold at most %d keys", YCONF_MAX_MAP_KEYS);
                r = YCONF_ESYNTAX;
                goto out;
            }
            for (size_t i = 0; i < n->count; i++) {
                if (strcmp(n->keys[i]->text, key->text) == 0) {
                    yconf_node_errorf(key, ctx->err, ctx->errlen,
                                      "duplicate key '%s' (first at line %u)",
                                      key->text, n->keys[i]->line);
                    r = YCONF_ESYNTAX;
                    goto out;
                }
            }
            path = path_join(n->path, key->text, 0, true);
            if ((r = next_event(ctx, &ev)) != YCONF_OK)
                goto out;
        } else {
            path = path_join(n->path, NULL, n->count, false);
        }
        if (path == NULL) {
            yaml_event_delete(&ev);
            r = YCONF_ENOMEM;
            goto out;
        }
        r = parse_node(ctx, &ev, path, depth + 1, &value);
        if (r != YCONF_OK)
            goto out;
        if ((r = node_append(n, key, value)) != YCONF_OK)
            goto out;
        key = value = NULL;
        free(path);
        path = NULL;
    }
    r = YCONF_OK;
out:
    node_free(key);
    node_free(value);
    free(path);
    return r;
}

/* Builds the node that starts with @p ev, which it consumes. */
static int
parse_node(struct parse_ctx *ctx, yaml_event_t *ev, const char *path, int depth,
           struct yconf_node **out)
{
    struct yconf_node *n = NULL;
    int r;

    if (ev->type == YAML_ALIAS_EVENT) {
        r = refuse_event(ctx, ev, "anchors and aliases are not allowed");
        goto out;
    }
    if ((r = check_decorations(ctx, ev)) != YCONF_OK)
        goto out;
    if (depth > YCONF_MAX_DEPTH) {
        r = refuse_event(ctx, ev, "nesting is too deep");
        goto out;
    }
    if (++ctx->nodes > YCONF_MAX_NODES) {
        r = refuse_event(ctx, ev, "too many values in one file");
        goto out;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        r = parse_scalar(ctx, ev, path, out);
        goto out;
    }
    if (ev->type != YAML_SEQUENCE_START_EVENT && ev->type != YAML_MAPPING_START_EVENT) {
        r = refuse_event(ctx, ev, "unexpected YAML event");
        goto out;
    }
    n = node_new(ev->type == YAML_MAPPING_START_EVENT ? YCONF_MAP : YCONF_SEQUENCE,
                 &ev->start_mark, ctx->file, path);
    if (n == NULL) {
        r = YCONF_ENOMEM;
        goto out;
    }
    if ((r = parse_children(ctx, n, depth)) != YCONF_OK)
        goto out;
    *out = n;
    n = NULL;
    r = YCONF_OK;
out:
    yaml_event_delete(ev);
    node_free(n);
    return r;
}

/* Expects exactly: stream start, one document (no directives), stream end. */
static int
parse_stream(struct parse_ctx *ctx, struct yconf_node **root)
{
    yaml_event_t ev;
    int r;

    if ((r = next_event(ctx, &ev)) != YCONF_OK)
        return r;
    yaml_event_delete(&ev); /* the stream start */
    if ((r = next_event(ctx, &ev)) != YCONF_OK)
        return r;
    if (ev.type != YAML_DOCUMENT_START_EVENT) {
        yaml_event_delete(&ev);
        return format_error(ctx->err, ctx->errlen, ctx->file, 0, 0, YCONF_ESYNTAX,
                            "file is empty");
    }
    if (ev.data.document_start.version_directive != NULL ||
        ev.data.document_start.tag_directives.start !=
            ev.data.document_start.tag_directives.end) {
        r = refuse_event(ctx, &ev, "directives are not allowed");
        yaml_event_delete(&ev);
        return r;
    }
    yaml_event_delete(&ev);
    if ((r = next_event(ctx, &ev)) != YCONF_OK)
        return r;
    if ((r = parse_node(ctx, &ev, "", 0, root)) != YCONF_OK)
        return r;
    if ((r = next_event(ctx, &ev)) != YCONF_OK) /* the document end */
        return r;
    yaml_event_delete(&ev);
    if ((r = next_event(ctx, &ev)) != YCONF_OK)
        return r;
    if (ev.type != YAML_STREAM_END_EVENT)
        r = refuse_event(ctx, &ev, "only one document per file is allowed");
    yaml_event_delete(&ev);
    return r;
}

void
yconf_doc_free(struct yconf_doc *doc)
{
    if (doc == NULL)
        return;
    node_free(doc->root);
    free(doc->bytes);
    free(doc->name);
    free(doc);
}

/* Takes ownership of @p bytes (allocated with one spare byte). */
static int
doc_build(const char *name, unsigned char *bytes, size_t len,
          struct yconf_doc **out, char *err, size_t errlen)
{
    struct yconf_doc *doc = NULL;
    struct parse_ctx ctx;
    bool parser_ready = false;
    int r = YCONF_ENOMEM;

    doc = calloc(1, sizeof(*doc));
    if (doc == NULL) {
        free(bytes);
        goto out;
    }
    doc->bytes = bytes;
    doc->len = len;
    doc->name = strdup(name);
    if (doc->name == NULL)
        goto out;
    if ((r = check_utf8(bytes, len, doc->name, err, errlen)) != YCONF_OK)
        goto out;
    memset(&ctx, 0, sizeof(ctx));
    if (!yaml_parser_initialize(&ctx.parser)) {
        r = YCONF_ENOMEM;
        goto out;
    }
    parser_ready = true;
    ctx.file = doc->name;
    ctx.err = err;
    ctx.errlen = errlen;
    yaml_parser_set_encoding(&ctx.parser, YAML_UTF8_ENCODING);
    yaml_parser_set_input_string(&ctx.parser, bytes, len);
    if ((r = parse_stream(&ctx, &doc->root)) != YCONF_OK)
        goto out;
    *out = doc;
    doc = NULL;
    r = YCONF_OK;
out:
    if (parser_ready)
        yaml_parser_delete(&ctx.parser);
    if (r == YCONF_ENOMEM && err != NULL && errlen > 0)
        snprintf(err, errlen, "%s: out of memory", name);
    yconf_doc_free(doc);
    return r;
}

int
yconf_doc_parse(const char *name, const void *buf, size_t len, size_t max_bytes,
                struct yconf_doc **out, char *err, size_t errlen)
{
    unsigned char *copy;

    if (name == NULL || (buf == NULL && len > 0) || out == NULL)
        return YCONF_EINVAL;
    if (max_bytes == 0)
        max_bytes = YCONF_DEFAULT_MAX_BYTES;
    if (len > max_bytes)
        return format_error(err, errlen, name, 0, 0, YCONF_ETOOBIG,
                            "file is larger than %zu bytes", max_bytes);
    copy = malloc(len + 1);
    if (copy == NULL)
        return YCONF_ENOMEM;
    if (len > 0)
        memcpy(copy, buf, len);
    copy[len] = 0;
    return doc_build(name, copy, len, out, err, errlen);
}

int
yconf_doc_load(const char *path, size_t max_bytes, struct yconf_doc **out,
               char *err, size_t errlen)
{
    unsigned char *buf = NULL;
    size_t len = 0;
    struct stat st;
    int fd = -1;
    int r;

    if (path == NULL || out == NULL)
        return YCONF_EINVAL;
    if (max_bytes == 0)
        max_bytes = YCONF_DEFAULT_MAX_BYTES;
    fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0 || fstat(fd, &st) != 0) {
        r = format_error(err, errlen, path, 0, 0, YCONF_EIO, "%s", strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        r = format_error(err, errlen, path, 0, 0, YCONF_EIO, "not a regular file");
        goto out;
    }
    /* Read one byte past the cap so a file that grows meanwhile is caught. */
    buf = malloc(max_bytes + 2);
    if (buf == NULL) {
        r = YCONF_ENOMEM;
        goto out;
    }
    while (len <= max_bytes) {
        ssize_t n = read(fd, buf + len, max_bytes + 1 - len);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            r = format_error(err, errlen, path, 0, 0, YCONF_EIO, "%s", strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > max_bytes) {
        r = format_error(err, errlen, path, 0, 0, YCONF_ETOOBIG,
                         "file is larger than %zu bytes", max_bytes);
        goto out;
    }
    buf[len] = 0;
    r = doc_build(path, buf, len, out, err, errlen);
    buf = NULL;
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    return r;
}

const struct yconf_node *
yconf_doc_root(const struct yconf_doc *doc)
{
    return doc ? doc->root : NULL;
}

const char *
yconf_doc_name(const struct yconf_doc *doc)
{
    return doc ? doc->name : NULL;
}

const unsigned char *
yconf_doc_bytes(const struct yconf_doc *doc, size_t *len)
{
    if (len != NULL)
        *len = doc ? doc->len : 0;
    return doc ? doc->bytes : NULL;
}

enum yconf_kind
yconf_node_kind(const struct yconf_node *node)
{
    return node ? node->kind : (enum yconf_kind)0;
}

unsigned
yconf_node_line(const struct yconf_node *node)
{
    return node ? node->line : 0;
}

unsigned
yconf_node_column(const struct yconf_node *node)
{
    return node ? node->column : 0;
}

const char *
yconf_node_path(const struct yconf_node *node)
{
    return node ? node->path : "";
}

const char *
yconf_node_scalar(const struct yconf_node *node)
{
    return node && node->kind == YCONF_SCALAR ? node->text : NULL;
}

bool
yconf_node_plain(const struct yconf_node *node)
{
    return node && node->kind == YCONF_SCALAR && node->plain;
}

size_t
yconf_node_count(const struct yconf_node *node)
{
    return node ? node->count : 0;
}

const struct yconf_node *
yconf_node_item(const struct yconf_node *node, size_t i)
{
    return node && i < node->count ? node->items[i] : NULL;
}

const struct yconf_node *
yconf_node_key(const struct yconf_node *node, size_t i)
{
    return node && node->kind == YCONF_MAP && i < node->count ? node->keys[i] : NULL;
}

const struct yconf_node *
yconf_node_get(const struct yconf_node *node, const char *key)
{
    if (node == NULL || node->kind != YCONF_MAP)
        return NULL;
    for (size_t i = 0; i < node->count; i++)
        if (strcmp(node->keys[i]->text, key) == 0)
            return node->items[i];
    return NULL;
}
