/*
 * The development setup's files are accepted by the parsers that will read
 * them: hsm-setup/dev-setup.sh runs into a temporary directory, then
 * regsignd.yaml goes through signer/config.h, policy.yaml through
 * policy/policy.h and ceremony.yaml through hsm-setup/ceremony_file.h, and
 * the three must agree (zones, key labels, the invoking user as caller), and
 * the key URIs must name keys that libregsign-hsm accepts in the token.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hsm-setup/ceremony_file.h"
#include "pkcs11/hsm.h"
#include "policy/policy.h"
#include "signer/config.h"

struct devdir {
    char path[128];
    char dir[160];
};

static int setup(void **state)
{
    struct devdir *d = calloc(1, sizeof(*d));
    char cmd[1024];
    int rc;

    assert_non_null(d);
    snprintf(d->path, sizeof d->path, "/tmp/test_ceremony_devfiles.XXXXXX");
    assert_non_null(mkdtemp(d->path));
    snprintf(d->dir, sizeof d->dir, "%s/dev", d->path);
    /* REGSIGN_BIN_DIR (set by ctest, and by the fixture's compile
     * definitions) tells dev-setup.sh where regsign-ceremony is. */
    setenv("REGSIGN_BIN_DIR", REGSIGN_BIN_DIR, 0);
    unsetenv("SOFTHSM2_CONF");
    snprintf(cmd, sizeof cmd, "bash '%s/hsm-setup/dev-setup.sh' '%s' >'%s/log' 2>&1",
             REGSIGN_SOURCE_DIR, d->dir, d->path);
    rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/log' >&2", d->path);
        (void)system(cmd);
        fail_msg("dev-setup.sh failed (status %d)", rc);
    }
    *state = d;
    return 0;
}

static int teardown(void **state)
{
    struct devdir *d = *state;
    char cmd[256];

    snprintf(cmd, sizeof cmd, "rm -rf '%s'", d->path);
    assert_int_equal(system(cmd), 0);
    free(d);
    return 0;
}

static void path_of(const struct devdir *d, const char *name, char *buf, size_t len)
{
    int n = snprintf(buf, len, "%s/%s", d->dir, name);

    assert_true(n > 0 && (size_t)n < len);
}

static void assert_cert_file(const char *path)
{
    FILE *f = fopen(path, "r");
    X509 *x;

    assert_non_null(f);
    x = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    assert_non_null(x);
    X509_free(x);
}

static const char *key_label(const struct config *cfg, const char *role)
{
    const struct config_key *k = config_key_find(cfg, role);
    const char *p;

    if (k == NULL)
        fail_msg("regsignd.yaml has no key for role %s", role);
    p = strstr(k->uri, "object=");
    assert_non_null(p);
    return p + strlen("object=");
}

static void test_files_agree(void **state)
{
    struct devdir *d = *state;
    struct config *cfg = NULL;
    struct policy *pol = NULL;
    struct ceremony_spec *spec = NULL;
    const struct policy_caller *caller = NULL;
    struct policy_decision dec;
    char path[256], perr[512], cerr[CEREMONY_ERRMAX], *err = NULL;

    path_of(d, "regsignd.yaml", path, sizeof path);
    if (config_load(path, NULL, &cfg, &err) != CONFIG_OK)
        fail_msg("regsignd.yaml refused: %s", err != NULL ? err : "?");
    path_of(d, "policy.yaml", path, sizeof path);
    if (policy_load(path, &pol, perr, sizeof perr) != 0)
        fail_msg("policy.yaml refused: %s", perr);
    path_of(d, "ceremony.yaml", path, sizeof path);
    if (ceremony_spec_load(path, &spec, cerr, sizeof cerr) != 0)
        fail_msg("ceremony.yaml refused: %s", cerr);

    /* regsignd.yaml points into DIR and at what the ceremony made. */
    assert_string_equal(cfg->hsm.token, "pkcs11:token=regsign-dev");
    assert_int_equal(strncmp(cfg->hsm.pin_file, d->dir, strlen(d->dir)), 0);
    assert_int_equal(access(cfg->hsm.pin_file, R_OK), 0);
    assert_cert_file(cfg->ca.root_certificate);
    assert_cert_file(cfg->ca.issuing_certificate);
    assert_int_equal(strncmp(cfg->policy, d->dir, strlen(d->dir)), 0);
    assert_string_equal(key_label(cfg, "issuing-ca"), spec->issuing.label);
    assert_string_equal(key_label(cfg, "ksk"), spec->registry.ksk_label);
    assert_string_equal(key_label(cfg, "zsk"), spec->registry.zsk_label);
    assert_string_equal(key_label(cfg, "audit"), spec->audit_label);
    assert_null(config_key_find(cfg, "root-ca"));
    assert_int_equal(cfg->n_extra_zones, spec->nextra);
    assert_string_equal(cfg->extra_zones[0].name, spec->extra[0].name);
    assert_non_null(strstr(cfg->extra_zones[0].ksk, spec->extra[0].ksk_label));
    assert_non_null(strstr(cfg->extra_zones[0].zsk, spec->extra[0].zsk_label));

    /* policy.yaml: same registry zone; the invoking user is 'frontend'. */
    assert_string_equal(policy_zone(pol)->name, spec->registry.name);
    assert_int_equal(policy_caller_find(pol, (uint32_t)getuid(), (uint32_t)getgid(),
                                        &caller, &dec), POLICY_ALLOW);
    assert_string_equal(caller->name, "frontend");

    free(err);
    config_free(cfg);
    policy_free(pol);
    ceremony_spec_free(spec);
}

/* Every key URI of regsignd.yaml names a key libregsign-hsm accepts. */
static void test_keys_usable(void **state)
{
    struct devdir *d = *state;
    struct config *cfg = NULL;
    char path[256], conf[256], hsm_err[256] = "", *err = NULL;
    hsm_t *h = NULL;
    int id, r;

    path_of(d, "regsignd.yaml", path, sizeof path);
    if (config_load(path, NULL, &cfg, &err) != CONFIG_OK)
        fail_msg("regsignd.yaml refused: %s", err != NULL ? err : "?");
    path_of(d, "softhsm2.conf", conf, sizeof conf);
    setenv("SOFTHSM2_CONF", conf, 1);
    struct hsm_config hc = {
        .module_path = cfg->hsm.module, .token_uri = cfg->hsm.token,
        .pin_file = cfg->hsm.pin_file, .sessions = 1, .recover_timeout_ms = 1000,
        .errbuf = hsm_err, .errbuf_len = sizeof hsm_err,
    };
    r = hsm_open(&hc, &h);
    if (r != HSM_OK)
        fail_msg("hsm_open: %s (%s)", hsm_strerror(r), hsm_err);
    for (size_t i = 0; i < cfg->n_keys; i++) {
        r = hsm_key_add(h, cfg->keys[i].role, cfg->keys[i].uri, &id);
        if (r != HSM_OK)
            fail_msg("key %s (%s): %s (%s)", cfg->keys[i].role, cfg->keys[i].uri,
                     hsm_strerror(r), hsm_last_error(h));
    }
    assert_int_equal(cfg->n_keys, 6);
    hsm_close(h);
    unsetenv("SOFTHSM2_CONF");
    free(err);
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_files_agree),
        cmocka_unit_test(test_keys_usable),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
