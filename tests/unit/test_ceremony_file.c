/*
 * Tests of hsm-setup/ceremony_file (the reviewed ceremony file) and
 * hsm-setup/ceremony_transcript (the transcript writer). No token needed.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "hsm-setup/ceremony_file.h"
#include "hsm-setup/ceremony_transcript.h"

#ifndef CEREMONY_EXAMPLE
#error "CEREMONY_EXAMPLE must name hsm-setup/ceremony.example.yaml"
#endif

/* A valid ceremony; tests change one line to break one rule. */
static const char base_yaml[] =
    "version: 1\n"                                   /* 1 */
    "key-algorithm: ec-p256\n"                       /* 2 */
    "root-ca:\n"                                     /* 3 */
    "  label: t-root\n"                              /* 4 */
    "  subject:\n"                                   /* 5 */
    "    common-name: \"Test Root\"\n"               /* 6 */
    "    country: CA\n"                              /* 7 */
    "  validity: 3650d\n"                            /* 8 */
    "issuing-ca:\n"                                  /* 9 */
    "  label: t-issuing\n"                           /* 10 */
    "  subject: { common-name: \"Test Issuing\" }\n" /* 11 */
    "  validity: 365d\n"                             /* 12 */
    "registry-zone:\n"                               /* 13 */
    "  name: reg.test.\n"                            /* 14 */
    "  ksk: t-ksk\n"                                 /* 15 */
    "  zsk: t-zsk\n"                                 /* 16 */
    "audit:\n"                                       /* 17 */
    "  label: t-audit\n"                             /* 18 */
    "extra-zones:\n"                                 /* 19 */
    "  - name: x.test.\n"                            /* 20 */
    "    ksk: t-x-ksk\n"                             /* 21 */
    "    zsk: t-x-zsk\n";                            /* 22 */

struct tdir {
    char path[64];
    char file[128];
};

static int setup_dir(void **state)
{
    struct tdir *d = calloc(1, sizeof(*d));

    assert_non_null(d);
    snprintf(d->path, sizeof d->path, "/tmp/test_ceremony_file.XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->file, sizeof d->file, "%s/c.yaml", d->path);
    *state = d;
    return 0;
}

static int teardown_dir(void **state)
{
    struct tdir *d = *state;
    char cmd[128];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
    free(d);
    return 0;
}

/* Writes base_yaml with line @p line (1-based) replaced by @p repl (NULL: keep). */
static void write_variant(const struct tdir *d, int line, const char *repl)
{
    FILE *f = fopen(d->file, "w");
    const char *p = base_yaml;
    int n = 1;

    assert_non_null(f);
    while (*p != '\0') {
        const char *nl = strchr(p, '\n');
        size_t len = (size_t)(nl - p) + 1;
        if (n == line && repl != NULL)
            fputs(repl, f);
        else
            fwrite(p, 1, len, f);
        p += len;
        n++;
    }
    assert_int_equal(fclose(f), 0);
}

/* Loads the variant and expects a schema error whose text holds each needle. */
static void expect_error(const struct tdir *d, int want, const char *needle1,
                         const char *needle2)
{
    struct ceremony_spec *spec = NULL;
    char err[CEREMONY_ERRMAX];
    int r = ceremony_spec_load(d->file, &spec, err, sizeof err);

    assert_int_equal(r, want);
    assert_null(spec);
    if (needle1 != NULL && strstr(err, needle1) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle1);
    if (needle2 != NULL && strstr(err, needle2) == NULL)
        fail_msg("error \"%s\" lacks \"%s\"", err, needle2);
}

static void test_example_loads(void **state)
{
    struct ceremony_spec *spec = NULL;
    char err[CEREMONY_ERRMAX] = "";
    unsigned char md[32], *bytes;
    FILE *f;
    long len;

    (void)state;
    if (ceremony_spec_load(CEREMONY_EXAMPLE, &spec, err, sizeof err) != 0)
        fail_msg("example ceremony refused: %s", err);
    assert_string_equal(spec->root.label, "regsign-root-ca");
    assert_string_equal(spec->issuing.label, "regsign-issuing-ca");
    assert_string_equal(spec->registry.name, "iotregistry.test.");
    assert_string_equal(spec->registry.ksk_label, "regsign-ksk");
    assert_string_equal(spec->registry.zsk_label, "regsign-zsk");
    assert_int_equal(spec->registry.dnskey_ttl, 3600);
    assert_string_equal(spec->audit_label, "regsign-audit");
    assert_int_equal(spec->nextra, 1);
    assert_string_equal(spec->extra[0].name, "asp.test.");
    assert_string_equal(spec->extra[0].ksk_label, "regsign-asp.test-ksk");
    assert_string_equal(spec->extra[0].zsk_label, "regsign-asp.test-zsk");
    assert_int_equal(spec->root.validity, 7300LL * 86400);
    assert_int_equal(spec->issuing.validity, 1825LL * 86400);
    assert_non_null(spec->root.subject.common_name);
    assert_string_equal(spec->root.subject.country, "CA");

    /* The recorded digest is SHA-256 of the exact file bytes. */
    f = fopen(CEREMONY_EXAMPLE, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    len = ftell(f);
    rewind(f);
    bytes = malloc((size_t)len);
    assert_non_null(bytes);
    assert_int_equal(fread(bytes, 1, (size_t)len, f), (size_t)len);
    fclose(f);
    assert_int_equal(EVP_Digest(bytes, (size_t)len, md, NULL, EVP_sha256(), NULL), 1);
    assert_memory_equal(md, spec->sha256, 32);
    free(bytes);
    ceremony_spec_free(spec);
    ceremony_spec_free(NULL);
}

static void test_base_loads(void **state)
{
    struct tdir *d = *state;
    struct ceremony_spec *spec = NULL;
    char err[CEREMONY_ERRMAX] = "";

    write_variant(d, 0, NULL);
    if (ceremony_spec_load(d->file, &spec, err, sizeof err) != 0)
        fail_msg("base ceremony refused: %s", err);
    assert_string_equal(spec->description, "");
    assert_null(spec->root.subject.organization);
    assert_string_equal(spec->issuing.subject.common_name, "Test Issuing");
    ceremony_spec_free(spec);
}

static void test_unknown_key(void **state)
{
    struct tdir *d = *state;
    char where[160];

    /* Line 12 gains a misspelt key: the error names file:line and the key. */
    write_variant(d, 12, "  validity: 365d\n  valdity: 1d\n");
    snprintf(where, sizeof where, "%s:13:", d->file);
    expect_error(d, CEREMONY_FILE_ESCHEMA, where, "valdity");
    write_variant(d, 2, "key-algorithm: ec-p256\npin: 1234\n");
    snprintf(where, sizeof where, "%s:3:", d->file);
    expect_error(d, CEREMONY_FILE_ESCHEMA, where, "'pin'");
}

static void test_schema_errors(void **state)
{
    struct tdir *d = *state;

    write_variant(d, 18, "  lable: t-audit\n");          /* required key gone */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":18:", "lable");
    write_variant(d, 8, "  validity: ten years\n");       /* wrong type */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":8:", "validity");
    write_variant(d, 2, "key-algorithm: rsa-2048\n");     /* not an allowed value */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":2:", "key-algorithm");
    write_variant(d, 1, "version: 2\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":1:", "version");
    write_variant(d, 7, "    country: ca\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":7:", "country");
    write_variant(d, 4, "  label: &a t-root\n");          /* anchors refused */
    expect_error(d, CEREMONY_FILE_ESYNTAX, NULL, NULL);
}

static void test_labels(void **state)
{
    struct tdir *d = *state;

    /* The ZSK reuses the KSK's label: refused, naming both places. */
    write_variant(d, 16, "  zsk: t-ksk\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":16:", "registry-zone.ksk");
    write_variant(d, 21, "    ksk: t-root\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":21:", "\"t-root\"");
    write_variant(d, 18, "  label: \"t audit\"\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":18:", "audit.label");
    write_variant(d, 10, "  label: \"t;object=x\"\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":10:", "issuing-ca.label");
    write_variant(d, 4, "  label: -root\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":4:", "root-ca.label");
}

static void test_zones(void **state)
{
    struct tdir *d = *state;

    write_variant(d, 14, "  name: reg.test\n");           /* not absolute */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":14:", "absolute");
    write_variant(d, 14, "  name: Reg.Test.\n");          /* upper case */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":14:", "lower-case");
    write_variant(d, 14, "  name: a..test.\n");           /* empty label */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":14:", "registry-zone.name");
    write_variant(d, 14, "  name: a/b.test.\n");          /* would be a path */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":14:", "registry-zone.name");
    write_variant(d, 20, "  - name: reg.test.\n");        /* extra = registry */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":20:", "registry zone");
    write_variant(d, 16, "  zsk: t-zsk\n  dnskey-ttl: -1\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":17:", "dnskey-ttl");
}

static void test_validity_order(void **state)
{
    struct tdir *d = *state;

    write_variant(d, 12, "  validity: 3651d\n");
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":12:", "outlive");
    write_variant(d, 12, "  validity: 1h\n");             /* below one day */
    expect_error(d, CEREMONY_FILE_ESCHEMA, ":12:", "validity");
}

static void test_missing_file(void **state)
{
    struct tdir *d = *state;
    struct ceremony_spec *spec = NULL;
    char err[CEREMONY_ERRMAX];

    assert_int_equal(ceremony_spec_load(d->file, &spec, err, sizeof err),
                     CEREMONY_FILE_EIO);
    assert_null(spec);
    assert_non_null(strstr(err, "c.yaml"));
}

static void test_zone_file_names(void **state)
{
    struct ceremony_zone z = { .name = "asp.test." };
    char buf[64];

    (void)state;
    assert_int_equal(ceremony_zone_file_name("ds", NULL, buf, sizeof buf), 0);
    assert_string_equal(buf, "ds.txt");
    assert_int_equal(ceremony_zone_file_name("dnskey", &z, buf, sizeof buf), 0);
    assert_string_equal(buf, "dnskey-asp.test.txt");
    assert_int_equal(ceremony_zone_file_name("dnskey", &z, buf, 10), -1);
}

static void test_hex(void **state)
{
    const unsigned char b[4] = { 0x00, 0x0f, 0xa0, 0xff };
    char buf[9], small[4];

    (void)state;
    assert_string_equal(ceremony_hex(b, 4, buf, sizeof buf), "000fa0ff");
    assert_string_equal(ceremony_hex(b, 4, small, sizeof small), "00");
    assert_string_equal(ceremony_hex(b, 0, buf, sizeof buf), "");
}

/*
 * Mutations of a valid file (bytes changed, lines cut or repeated) must each
 * load cleanly or fail with a message; under ASan this also shows that no
 * path through the reader touches memory it should not.
 */
static uint32_t next_rand(uint32_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    return *x;
}

static void test_mutations(void **state)
{
    static const char alphabet[] = ":- \n{}[]\"'&*!#a0.\t";
    struct tdir *d = *state;
    uint32_t seed = 0x2545f491u;
    size_t base_len = strlen(base_yaml), accepted = 0;
    char buf[2048], err[CEREMONY_ERRMAX];

    for (int i = 0; i < 2000; i++) {
        struct ceremony_spec *spec = NULL;
        size_t len = base_len;
        unsigned n = 1 + next_rand(&seed) % 3;
        FILE *f;
        int r;

        memcpy(buf, base_yaml, base_len);
        for (unsigned m = 0; m < n; m++) {
            size_t at = next_rand(&seed) % len;
            switch (next_rand(&seed) % 4) {
            case 0: /* change one byte */
                buf[at] = alphabet[next_rand(&seed) % (sizeof alphabet - 1)];
                break;
            case 1: /* cut the file short */
                len = at;
                break;
            case 2: /* repeat the tail from a point (duplicate keys etc.) */
                if (len + (len - at) < sizeof buf) {
                    memcpy(buf + len, buf + at, len - at);
                    len += len - at;
                }
                break;
            default: /* a byte that is not UTF-8 */
                buf[at] = (char)0xff;
                break;
            }
            if (len == 0)
                break;
        }
        f = fopen(d->file, "wb");
        assert_non_null(f);
        assert_int_equal(fwrite(buf, 1, len, f), len);
        assert_int_equal(fclose(f), 0);
        err[0] = '\0';
        r = ceremony_spec_load(d->file, &spec, err, sizeof err);
        if (r == CEREMONY_FILE_OK) {
            assert_non_null(spec->root.label);
            assert_non_null(spec->audit_label);
            assert_non_null(spec->registry.name);
            accepted++;
            ceremony_spec_free(spec);
        } else {
            assert_null(spec);
            assert_true(r < 0);
            if (err[0] == '\0')
                fail_msg("mutation %d refused (%d) without a message", i, r);
        }
    }
    /* Some mutations (inside quoted strings, say) keep the file valid. */
    assert_true(accepted > 0 && accepted < 2000);
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "r");
    char *buf = calloc(1, 8192);

    assert_non_null(f);
    assert_non_null(buf);
    assert_true(fread(buf, 1, 8191, f) > 0);
    fclose(f);
    return buf;
}

static void test_transcript(void **state)
{
    struct tdir *d = *state;
    ceremony_transcript_t *t = NULL, *t2 = NULL;
    const unsigned char id[3] = { 0x00, 0xab, 0xff };
    char path[160], *text;

    snprintf(path, sizeof path, "%s/transcript.txt", d->path);
    assert_int_equal(ceremony_transcript_open(path, &t), 0);
    assert_int_equal(ceremony_transcript_open(path, &t2), -EEXIST);
    assert_null(t2);
    assert_int_equal(ceremony_transcript_header(t, "description", "a\nstep 9: forged"), 0);
    assert_int_equal(ceremony_transcript_step(t, 86400, "key %s", "root-ca"), 0);
    assert_int_equal(ceremony_transcript_hex(t, "id", id, sizeof id), 0);
    assert_int_equal(ceremony_transcript_field(t, "ds", "a\tb"), 0);
    assert_int_equal(ceremony_transcript_step(t, 86401, "key zsk"), 0);
    assert_int_equal(ceremony_transcript_close(t, 86402, NULL), 0);
    assert_int_equal(ceremony_transcript_close(NULL, 0, NULL), 0);

    text = slurp(path);
    assert_non_null(strstr(text, "regsign key ceremony transcript\nformat: 1\n"));
    /* A newline in a value cannot start a line of its own. */
    assert_non_null(strstr(text, "description: a?step 9: forged\n"));
    assert_non_null(strstr(text, "\nstep 1: key root-ca\n  time: 1970-01-02T00:00:00Z\n"
                                 "  id: 00abff\n  ds: a b\n"));
    assert_non_null(strstr(text, "\nstep 2: key zsk\n  time: 1970-01-02T00:00:01Z\n"));
    assert_non_null(strstr(text, "finished: 1970-01-02T00:00:02Z\nresult: complete\n"));
    free(text);

    /* A failed ceremony says so at the end. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(ceremony_transcript_open(path, &t), 0);
    assert_int_equal(ceremony_transcript_close(t, 0, "token gone"), 0);
    text = slurp(path);
    assert_non_null(strstr(text, "result: FAILED: token gone\n"));
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_loads),
        cmocka_unit_test_setup_teardown(test_base_loads, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_unknown_key, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_schema_errors, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_labels, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_zones, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_validity_order, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_missing_file, setup_dir, teardown_dir),
        cmocka_unit_test_setup_teardown(test_mutations, setup_dir, teardown_dir),
        cmocka_unit_test(test_zone_file_names),
        cmocka_unit_test(test_hex),
        cmocka_unit_test_setup_teardown(test_transcript, setup_dir, teardown_dir),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
