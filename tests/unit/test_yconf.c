/* Unit tests of policy/yconf: strict loading and schema checks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "policy/yconf.h"

/* Parses @p text as file "t.yaml"; asserts the result code. */
static struct yconf_doc *
parse(const char *text, int expect, char *err, size_t errlen)
{
    struct yconf_doc *doc = NULL;
    int r;

    err[0] = '\0';
    r = yconf_doc_parse("t.yaml", text, strlen(text), 0, &doc, err, errlen);
    if (r != expect)
        fail_msg("parse returned %d (%s), expected %d; err: %s", r, yconf_strerror(r),
                 expect, err);
    if (r != YCONF_OK)
        assert_null(doc);
    return doc;
}

static void
expect_refused(const char *text, const char *needle)
{
    char err[YCONF_ERRMAX];

    parse(text, YCONF_ESYNTAX, err, sizeof err);
    if (strstr(err, needle) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle);
}

static void
test_tree_positions(void **state)
{
    char err[YCONF_ERRMAX];
    const char *text = "a: 1\n"
                       "b:\n"
                       "  c: [x, \"y\"]\n"
                       "  d:\n"
                       "    - e: true\n";
    struct yconf_doc *doc = parse(text, YCONF_OK, err, sizeof err);
    const struct yconf_node *root = yconf_doc_root(doc), *b, *c, *d, *e;
    size_t len;

    (void)state;
    assert_int_equal(yconf_node_kind(root), YCONF_MAP);
    assert_int_equal(yconf_node_count(root), 2);
    assert_string_equal(yconf_node_path(root), "");
    b = yconf_node_get(root, "b");
    assert_non_null(b);
    assert_int_equal(yconf_node_line(b), 3);
    assert_int_equal(yconf_node_column(b), 3);
    c = yconf_node_get(b, "c");
    assert_int_equal(yconf_node_kind(c), YCONF_SEQUENCE);
    assert_int_equal(yconf_node_line(c), 3);
    assert_int_equal(yconf_node_column(c), 6);
    assert_string_equal(yconf_node_scalar(yconf_node_item(c, 1)), "y");
    assert_false(yconf_node_plain(yconf_node_item(c, 1)));
    assert_true(yconf_node_plain(yconf_node_item(c, 0)));
    assert_string_equal(yconf_node_path(yconf_node_item(c, 1)), "b.c[1]");
    assert_int_equal(yconf_node_column(yconf_node_item(c, 1)), 10);
    d = yconf_node_get(b, "d");
    e = yconf_node_get(yconf_node_item(d, 0), "e");
    assert_string_equal(yconf_node_path(e), "b.d[0].e");
    assert_int_equal(yconf_node_line(e), 5);
    assert_int_equal(yconf_node_column(e), 10);
    assert_string_equal(yconf_node_scalar(yconf_node_key(root, 0)), "a");
    assert_null(yconf_node_get(root, "zz"));
    assert_null(yconf_node_item(root, 2));
    assert_memory_equal(yconf_doc_bytes(doc, &len), text, strlen(text));
    assert_int_equal(len, strlen(text));
    assert_string_equal(yconf_doc_name(doc), "t.yaml");
    yconf_doc_free(doc);
    yconf_doc_free(NULL);
}

static void
test_refusals(void **state)
{
    (void)state;
    expect_refused("a: 1\nb: 2\na: 3\n", "t.yaml:3:1: duplicate key 'a' (first at line 1)");
    expect_refused("a: &x 1\nb: *x\n", "t.yaml:1:4: anchors and aliases are not allowed");
    expect_refused("a: [1]\nb: *x\n", "anchors and aliases are not allowed");
    expect_refused("a: !!str 1\n", "t.yaml:1:4: tags are not allowed");
    expect_refused("a: !custom {}\n", "tags are not allowed");
    expect_refused("a: 1\n---\nb: 2\n", "t.yaml:2:1: only one document per file is allowed");
    expect_refused("%YAML 1.1\n---\na: 1\n", "directives are not allowed");
    expect_refused("", "t.yaml: file is empty");
    expect_refused("# only a comment\n", "file is empty");
    expect_refused("a: 1\nb: \"\xc3\x28\"\n", "t.yaml:2:5: file is not valid UTF-8");
    expect_refused("a: \xed\xa0\x80\n", "not valid UTF-8");       /* surrogate */
    expect_refused("a: \xc0\xaf\n", "not valid UTF-8");           /* overlong */
    expect_refused("? [a, b]\n: 1\n", "keys must be scalars");
    expect_refused("a: \"x\\0y\"\n", "NUL character");
    expect_refused("a: [1, 2\n", "t.yaml:");
    expect_refused("a: 1\n\"\": 1\n", "t.yaml:2:1: empty key");
}

static void
test_nul_size_and_depth(void **state)
{
    char err[YCONF_ERRMAX], deep[256];
    struct yconf_doc *doc = NULL;
    size_t i;

    (void)state;
    assert_int_equal(yconf_doc_parse("n.yaml", "a: 1\n\0", 6, 0, &doc, err, sizeof err),
                     YCONF_ESYNTAX);
    assert_string_equal(err, "n.yaml:2:1: NUL byte in file");
    assert_int_equal(yconf_doc_parse("big.yaml", "a: 12345\n", 9, 8, &doc, err, sizeof err),
                     YCONF_ETOOBIG);
    assert_string_equal(err, "big.yaml: file is larger than 8 bytes");
    assert_null(doc);
    for (i = 0; i < 40; i++)
        deep[i] = '[';
    for (; i < 80; i++)
        deep[i] = ']';
    deep[i] = '\0';
    expect_refused(deep, "nesting is too deep");
}

static void
test_caps(void **state)
{
    char err[YCONF_ERRMAX];
    size_t cap = 16 * (YCONF_MAX_MAP_KEYS + 2) + 4 * (YCONF_MAX_NODES + 2);
    char *text = malloc(cap);
    size_t o = 0;
    struct yconf_doc *doc = NULL;

    (void)state;
    assert_non_null(text);
    for (int i = 0; i <= YCONF_MAX_MAP_KEYS; i++)
        o += (size_t)snprintf(text + o, cap - o, "k%d: 1\n", i);
    assert_int_equal(yconf_doc_parse("t.yaml", text, o, 0, &doc, err, sizeof err),
                     YCONF_ESYNTAX);
    assert_non_null(strstr(err, "a map may hold at most 10000 keys"));
    /* One key fewer is fine. */
    o = 0;
    for (int i = 0; i < YCONF_MAX_MAP_KEYS; i++)
        o += (size_t)snprintf(text + o, cap - o, "k%d: 1\n", i);
    assert_int_equal(yconf_doc_parse("t.yaml", text, o, 0, &doc, err, sizeof err), YCONF_OK);
    assert_int_equal(yconf_node_count(yconf_doc_root(doc)), YCONF_MAX_MAP_KEYS);
    yconf_doc_free(doc);
    doc = NULL;
    o = 0;
    text[o++] = '[';
    for (int i = 0; i < YCONF_MAX_NODES; i++) {
        text[o++] = '0';
        text[o++] = ',';
    }
    text[o++] = ']';
    assert_int_equal(yconf_doc_parse("t.yaml", text, o, 0, &doc, err, sizeof err),
                     YCONF_ESYNTAX);
    assert_non_null(strstr(err, "too many values in one file"));
    assert_null(doc);
    free(text);
    /* Accessors take NULL for absent keys. */
    assert_int_equal(yconf_node_kind(NULL), 0);
    assert_int_equal(yconf_node_line(NULL), 0);
    assert_string_equal(yconf_node_path(NULL), "");
    assert_null(yconf_node_scalar(NULL));
    assert_null(yconf_node_get(NULL, "a"));
}

static void
test_load_file(void **state)
{
    char path[] = "/tmp/test_yconf_XXXXXX";
    char err[YCONF_ERRMAX];
    struct yconf_doc *doc = NULL;
    int fd = mkstemp(path);

    (void)state;
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "k: v\n", 5), 5);
    close(fd);
    assert_int_equal(yconf_doc_load(path, 0, &doc, err, sizeof err), YCONF_OK);
    assert_string_equal(yconf_node_scalar(yconf_node_get(yconf_doc_root(doc), "k")), "v");
    assert_string_equal(yconf_doc_name(doc), path);
    yconf_doc_free(doc);
    doc = NULL;
    assert_int_equal(yconf_doc_load(path, 4, &doc, err, sizeof err), YCONF_ETOOBIG);
    unlink(path);
    assert_int_equal(yconf_doc_load(path, 0, &doc, err, sizeof err), YCONF_EIO);
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(yconf_doc_load("/tmp", 0, &doc, err, sizeof err), YCONF_EIO);
    assert_null(doc);
}

/* Reads @p text's top level with the table below; returns the error code. */
struct conf {
    const char *socket;
    int64_t sessions, timeout;
    bool verbose;
    int mode;
    uint32_t styles;
    const struct yconf_node *names, *hsm, *zones;
};

static const char *const modes[] = { "fast", "safe", NULL };
static const char *const styles[] = { "seed", "cert-pkix", "dance", NULL };

static int
read_conf(const char *text, struct conf *c, char *err, size_t errlen)
{
    struct yconf_doc *doc = parse(text, YCONF_OK, err, errlen);
    const struct yconf_field top[] = {
        YCONF_F_STRING("socket", false, 1, 16, &c->socket),
        YCONF_F_INT("sessions", true, 1, 64, &c->sessions),
        YCONF_F_DURATION("timeout", false, 1, 3600, &c->timeout),
        YCONF_F_BOOL("verbose", false, &c->verbose),
        YCONF_F_ENUM("mode", false, modes, &c->mode),
        YCONF_F_ENUMS("styles", false, styles, 1, &c->styles),
        YCONF_F_STRINGS("names", false, 0, 3, 8, &c->names),
        YCONF_F_MAP("hsm", false, &c->hsm),
        YCONF_F_MAPS("zones", false, 1, 0, &c->zones),
    };
    int r;

    memset(c, 0, sizeof(*c));
    c->timeout = 30;
    err[0] = '\0';
    r = yconf_map_read(yconf_doc_root(doc), top, YCONF_NFIELDS(top), err, errlen);
    /* Node pointers die with the document; tests only look at scalars. */
    c->names = c->hsm = c->zones = NULL;
    c->socket = c->socket ? "set" : NULL;
    yconf_doc_free(doc);
    return r;
}

static void
expect_schema_error(const char *text, const char *message)
{
    char err[YCONF_ERRMAX];
    struct conf c;

    assert_int_equal(read_conf(text, &c, err, sizeof err), YCONF_ESCHEMA);
    assert_string_equal(err, message);
}

static void
test_schema_values(void **state)
{
    char err[YCONF_ERRMAX];
    struct conf c;

    (void)state;
    assert_int_equal(read_conf("sessions: 8\nverbose: true\nmode: safe\n"
                               "styles: [dance, seed]\nnames: [a, b]\nsocket: \"/s\"\n"
                               "hsm: {}\nzones: [{a: 1}]\n",
                               &c, err, sizeof err),
                     YCONF_OK);
    assert_int_equal(c.sessions, 8);
    assert_int_equal(c.timeout, 30); /* default kept */
    assert_true(c.verbose);
    assert_int_equal(c.mode, 1);
    assert_int_equal(c.styles, (1u << 0) | (1u << 2));
    assert_string_equal(c.socket, "set");
    assert_int_equal(read_conf("sessions: -0\n", &c, err, sizeof err), YCONF_ESCHEMA);
    assert_int_equal(read_conf("sessions: 64\ntimeout: 1h\n", &c, err, sizeof err), YCONF_OK);
    assert_int_equal(c.timeout, 3600);
    assert_int_equal(c.sessions, 64);
}

static void
test_schema_errors(void **state)
{
    (void)state;
    expect_schema_error("sessions: 2\n\nsesions: 3\n",
                        "t.yaml:3:1: key 'sesions' is not allowed at the top level "
                        "(allowed: socket, sessions, timeout, verbose, mode, styles, "
                        "names, hsm, zones)");
    expect_schema_error("\n\n\nsessions:  many\n",
                        "t.yaml:4:12: 'sessions' must be an integer between 1 and 64, "
                        "got \"many\"");
    expect_schema_error("sessions: 65\n",
                        "t.yaml:1:11: 'sessions' must be an integer between 1 and 64, "
                        "got \"65\"");
    expect_schema_error("sessions: 0\n",
                        "t.yaml:1:11: 'sessions' must be an integer between 1 and 64, "
                        "got \"0\"");
    expect_schema_error("sessions: 08\n",
                        "t.yaml:1:11: 'sessions' must be an integer between 1 and 64, "
                        "got \"08\"");
    expect_schema_error("sessions: +8\n",
                        "t.yaml:1:11: 'sessions' must be an integer between 1 and 64, "
                        "got \"+8\"");
    expect_schema_error("sessions: 99999999999999999999\n",
                        "t.yaml:1:11: 'sessions' must be an integer between 1 and 64, "
                        "got \"99999999999999999999\"");
    expect_schema_error("sessions:\n",
                        "t.yaml:1:10: 'sessions' must be an integer between 1 and 64, "
                        "got nothing");
    expect_schema_error("timeout: 5\n", "t.yaml:1:1: missing required key 'sessions' at "
                                        "the top level");
    expect_schema_error("sessions: 1\ntimeout: 2h\n",
                        "t.yaml:2:10: 'timeout' must be a duration (seconds, or a number "
                        "with unit s, m, h, d or w) between 1s and 1h, got \"2h\"");
    expect_schema_error("sessions: 1\nverbose: yes\n",
                        "t.yaml:2:10: 'verbose' must be true or false, got \"yes\"");
    expect_schema_error("sessions: 1\nmode: quick\n",
                        "t.yaml:2:7: 'mode' must be one of: fast, safe; got \"quick\"");
    expect_schema_error("sessions: 1\nstyles: [seed, x]\n",
                        "t.yaml:2:16: 'styles[1]' must be one of: seed, cert-pkix, dance; "
                        "got \"x\"");
    expect_schema_error("sessions: 1\nstyles: [seed, seed]\n",
                        "t.yaml:2:16: 'styles' lists \"seed\" twice");
    expect_schema_error("sessions: 1\nstyles: []\n",
                        "t.yaml:2:9: 'styles' must have at least 1 item, got 0");
    expect_schema_error("sessions: 1\nstyles: seed\n",
                        "t.yaml:2:9: 'styles' must be a sequence, got \"seed\"");
    expect_schema_error("sessions: 1\nnames: [a, b, c, d]\n",
                        "t.yaml:2:8: 'names' must have between 0 and 3 items, got 4");
    expect_schema_error("sessions: 1\nnames: [a, toolongname]\n",
                        "t.yaml:2:12: 'names[1]' must be a string of 1 to 8 bytes, "
                        "got \"toolongname\"");
    expect_schema_error("sessions: 1\nnames: [a, [b]]\n",
                        "t.yaml:2:12: 'names[1]' must be a string, got a sequence");
    expect_schema_error("sessions: 1\nsocket: \"\"\n",
                        "t.yaml:2:9: 'socket' must be a string of 1 to 16 bytes, got \"\"");
    expect_schema_error("sessions: 1\nsocket: ~\n",
                        "t.yaml:2:9: 'socket' must be a string, got nothing");
    expect_schema_error("sessions: 1\nhsm: [a]\n",
                        "t.yaml:2:6: 'hsm' must be a map, got a sequence");
    expect_schema_error("sessions: 1\nzones:\n  - {a: 1}\n  - b\n",
                        "t.yaml:4:5: 'zones[1]' must be a map, got \"b\"");
    expect_schema_error("- 1\n", "t.yaml:1:1: the top level must be a map, got a sequence");
}

static void
test_nested_and_errorf(void **state)
{
    char err[YCONF_ERRMAX];
    struct yconf_doc *doc = parse("profiles:\n  device:\n    validty: 1d\n", YCONF_OK,
                                  err, sizeof err);
    const struct yconf_node *profiles = yconf_node_get(yconf_doc_root(doc), "profiles");
    const struct yconf_node *device = yconf_node_get(profiles, "device");
    int64_t validity = 0;
    const struct yconf_field fields[] = {
        YCONF_F_DURATION("validity", true, 1, 3650 * 86400LL, &validity),
        YCONF_F_INT("backdate", false, 0, 3600, NULL),
    };
    const struct yconf_field any_map = YCONF_F_MAP(NULL, true, NULL);

    (void)state;
    assert_int_equal(yconf_node_read(device, &any_map, err, sizeof err), YCONF_OK);
    assert_int_equal(yconf_map_read(device, fields, 2, err, sizeof err), YCONF_ESCHEMA);
    assert_string_equal(err, "t.yaml:3:5: key 'validty' is not allowed in "
                             "'profiles.device' (allowed: validity, backdate)");
    assert_int_equal(yconf_map_read(profiles, NULL, 0, err, sizeof err), YCONF_ESCHEMA);
    assert_int_equal(yconf_node_errorf(device, err, sizeof err, "x %d", 5), YCONF_ESCHEMA);
    assert_string_equal(err, "t.yaml:3:5: x 5");
    /* A NULL error buffer is allowed. */
    assert_int_equal(yconf_map_read(device, fields, 2, NULL, 0), YCONF_ESCHEMA);
    yconf_doc_free(doc);
}

static void
test_durations(void **state)
{
    static const struct { const char *text; int64_t seconds; } good[] = {
        { "0", 0 }, { "300", 300 }, { "90s", 90 }, { "5m", 300 }, { "6h", 21600 },
        { "14d", 1209600 }, { "2w", 1209600 }, { "1h", 3600 },
    };
    static const char *const bad[] = {
        "", "h", "6H", "-1", "1h30m", "06h", "6 h", " 6h", "6hh", "1.5h", "+6h",
        "99999999999999999999", "9999999999999999w",
    };
    char buf[32];
    int64_t v;

    (void)state;
    for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        v = -1;
        assert_int_equal(yconf_duration_parse(good[i].text, &v), YCONF_OK);
        assert_int_equal(v, good[i].seconds);
    }
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (yconf_duration_parse(bad[i], &v) != YCONF_EINVAL)
            fail_msg("duration \"%s\" accepted", bad[i]);
    yconf_duration_format(1209600, buf, sizeof buf);
    assert_string_equal(buf, "14d");
    yconf_duration_format(5400, buf, sizeof buf);
    assert_string_equal(buf, "90m");
    yconf_duration_format(301, buf, sizeof buf);
    assert_string_equal(buf, "301s");
    yconf_duration_format(0, buf, sizeof buf);
    assert_string_equal(buf, "0s");
    assert_string_equal(yconf_strerror(YCONF_ESCHEMA), "file does not match its schema");
    assert_string_equal(yconf_strerror(12345), "unknown error");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tree_positions),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_nul_size_and_depth),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_load_file),
        cmocka_unit_test(test_schema_values),
        cmocka_unit_test(test_schema_errors),
        cmocka_unit_test(test_nested_and_errorf),
        cmocka_unit_test(test_durations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
