/*
 * regsignd's real HSM process under its sandbox (normal build only): the
 * development setup of hsm-setup/dev-setup.sh (SoftHSM token, keys, CA
 * certificates, regsignd.yaml), the HSM process started through hsmlink as the
 * daemon starts it, but from sandbox_hsmd, which applies the HSM profile built
 * by sandbox_config_paths() first. It must say HELLO, hand out public keys,
 * sign a device TBS that verifies under the issuing CA's certificate, still
 * refuse a CA TBS, answer RANDOM and STATUS, and be seen from outside with
 * NO_NEW_PRIVS and a seccomp filter; as root, also as the user nobody.
 */
#include <limits.h>
#include <pwd.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/test_hsm_support.h"
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <uv.h>

#include "signer/hsmlink.h"
#include "signer/hsmproto.h"
#include "signer/x509.h"
#include "tests/fixture/softhsm.h"

struct env {
	char dir[PATH_MAX / 2];
	char dev[PATH_MAX / 2];
	char config[PATH_MAX];
	char issuing[PATH_MAX];
};

struct ctx {
	uv_loop_t loop;
	hsmlink_t *link;
	int ready, ready_status, closed, calls_done, status;
	char reason[512];
	uint8_t value[HSMPROTO_MAX_VALUE];
	size_t value_len;
	int statuses[4];
	uint8_t sig[HSMPROTO_MAX_VALUE];
	size_t sig_len;
};

static void on_ready(hsmlink_t *l, int status, const char *reason, void *arg)
{
	struct ctx *c = arg;

	(void)l;
	c->ready = 1;
	c->ready_status = status;
	snprintf(c->reason, sizeof(c->reason), "%s", reason ? reason : "");
}

static void on_closed(void *arg)
{
	((struct ctx *)arg)->closed = 1;
}

static void on_value(void *arg, const struct hsmlink_result *res)
{
	struct ctx *c = arg;

	c->status = res->status;
	c->value_len = res->value_len;
	memcpy(c->value, res->value ? res->value : (const uint8_t *)"", res->value_len);
	c->calls_done++;
}

static void on_sign(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct ctx *c = arg;

	assert_int_equal(n, 2);
	c->statuses[0] = res[0].status;
	c->statuses[1] = res[1].status;
	c->sig_len = res[0].value_len;
	memcpy(c->sig, res[0].value ? res[0].value : (const uint8_t *)"", res[0].value_len);
	c->calls_done++;
}

static void on_status(void *arg, int status, const struct hsmproto_status *st)
{
	struct ctx *c = arg;

	c->status = status == HSMPROTO_ST_OK && st != NULL && st->n_roles > 0 ? 0 : -1;
	c->calls_done++;
}

static void run_until(struct ctx *c, const int *flag, int want)
{
	ths_run_until(&c->loop, flag, want, "the sandboxed HSM process");
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char script[PATH_MAX];
	const char *src = getenv("REGSIGN_SOURCE_DIR");

	assert_non_null(e);
	strcpy(e->dir, "/tmp/regsign-sbhsmd-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	/* The user nobody must reach the setup below it. */
	assert_int_equal(chmod(e->dir, 0755), 0);
	ths_path_in(e->dev, sizeof(e->dev), e->dir, "dev");
	ths_path_in(script, sizeof(script), src ? src : REGSIGN_SOURCE_DIR,
		"hsm-setup/dev-setup.sh");
	{
		char *const argv[] = { (char *)"bash", script, e->dev, NULL };

		if (fixture_run(argv) != 0)
			fail_msg("%s %s failed (is regsign-ceremony built? REGSIGN_BIN_DIR=%s)",
				 script, e->dev, getenv("REGSIGN_BIN_DIR"));
	}
	ths_path_in(e->config, sizeof(e->config), e->dev, "regsignd.yaml");
	ths_path_in(e->issuing, sizeof(e->issuing), e->dev, "out/issuing-ca.pem");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char *const argv[] = { (char *)"rm", (char *)"-rf", e->dir, NULL };

	fixture_run(argv);
	free(e);
	return 0;
}

/* A field of /proc/PID/status, or -1. */
static long proc_field(int pid, const char *name)
{
	char path[64], line[256];
	long v = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL)
		if (strncmp(line, name, strlen(name)) == 0)
			v = strtol(line + strlen(name), NULL, 10);
	fclose(f);
	return v;
}

static X509 *read_cert(const char *path)
{
	FILE *f = fopen(path, "r");
	X509 *x;

	assert_non_null(f);
	x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	return x;
}

/* A device TBS (allowed) and a CA TBS (refused) under the issuing CA. */
static void make_tbs(X509 *issuing, EVP_PKEY *dev, unsigned char **tbs, size_t *len,
		     unsigned char **ca_tbs, size_t *ca_len)
{
	struct x509_cert_spec s;
	X509_NAME *name = NULL;
	int64_t now = (int64_t)time(NULL);

	memset(&s, 0, sizeof(s));
	s.profile = X509_PROFILE_DEVICE;
	s.not_before = now - 60;
	s.not_after = now + 86400;
	s.subject_key = dev;
	s.issuer = issuing;
	s.zone = "iotregistry.test.";
	s.index = 1;
	s.device_id = "8912230200031010008f";
	assert_int_equal(x509_serial_random(s.serial), X509_OK);
	assert_int_equal(x509_cert_tbs_build(&s, tbs, len), X509_OK);
	assert_int_equal(x509_name_parse("/CN=Not A Sub CA", &name), X509_OK);
	s.profile = X509_PROFILE_ISSUING;
	s.subject = name;
	s.index = 0;
	s.device_id = NULL;
	assert_int_equal(x509_cert_tbs_build(&s, ca_tbs, ca_len), X509_OK);
	X509_NAME_free(name);
}

/* Spawns the sandboxed HSM process and puts it through its work. */
static void exercise(struct env *e, uid_t want_uid)
{
	struct ctx c;
	struct hsmlink_options o;
	X509 *issuing = read_cert(e->issuing);
	EVP_PKEY *dev = EVP_EC_gen("P-256");
	unsigned char *tbs = NULL, *ca_tbs = NULL, *der = NULL, *spki = NULL;
	size_t tbs_len = 0, ca_len = 0, der_len = 0;
	int spki_len, pid;

	assert_non_null(dev);
	memset(&c, 0, sizeof(c));
	assert_int_equal(uv_loop_init(&c.loop), 0);
	memset(&o, 0, sizeof(o));
	o.exe_path = SANDBOX_HSMD;
	o.config_path = e->config;
	o.ready_cb = on_ready;
	o.arg = &c;
	assert_int_equal(hsmlink_spawn(&c.loop, &o, &c.link), HSMLINK_OK);
	run_until(&c, &c.ready, 1);
	if (c.ready_status != HSMPROTO_ST_OK)
		fail_msg("sandboxed HSM process not ready: %s", c.reason);

	/* Seen from outside: the filters are on, and it runs as the user it should. */
	pid = hsmlink_pid(c.link);
	assert_true(pid > 0);
	assert_int_equal(proc_field(pid, "NoNewPrivs:"), 1);
	assert_int_equal(proc_field(pid, "Seccomp:"), 2);
	assert_int_equal(proc_field(pid, "Uid:"), (long)want_uid);

	/* The issuing CA's key is the one of its certificate. */
	assert_int_equal(hsmlink_pubkey(c.link, "issuing-ca", on_value, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 1);
	assert_int_equal(c.status, HSMPROTO_ST_OK);
	spki_len = i2d_PUBKEY(X509_get0_pubkey(issuing), &spki);
	assert_true(spki_len > 0);
	assert_int_equal(c.value_len, (size_t)spki_len);
	assert_memory_equal(c.value, spki, (size_t)spki_len);

	/* A device certificate is signed (and verifies); a CA one is still refused. */
	make_tbs(issuing, dev, &tbs, &tbs_len, &ca_tbs, &ca_len);
	{
		struct hsmlink_sign_req reqs[2] = {
			{ "issuing-ca", HSMPROTO_KIND_TBS_CERT, HSMPROTO_FORMAT_DER, tbs, tbs_len },
			{ "issuing-ca", HSMPROTO_KIND_TBS_CERT, HSMPROTO_FORMAT_DER, ca_tbs, ca_len },
		};

		assert_int_equal(hsmlink_sign(c.link, reqs, 2, on_sign, &c), HSMLINK_OK);
		run_until(&c, &c.calls_done, 2);
	}
	assert_int_equal(c.statuses[0], HSMPROTO_ST_OK);
	assert_int_equal(c.statuses[1], HSMPROTO_ST_REFUSED);
	assert_int_equal(x509_cert_assemble_der(tbs, tbs_len, c.sig, c.sig_len,
						X509_get0_pubkey(issuing), &der, &der_len), X509_OK);

	assert_int_equal(hsmlink_random(c.link, 32, on_value, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 3);
	assert_int_equal(c.status, HSMPROTO_ST_OK);
	assert_int_equal(c.value_len, 32);
	assert_int_equal(hsmlink_status(c.link, on_status, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 4);
	assert_int_equal(c.status, 0);

	hsmlink_close(c.link, on_closed, &c);
	run_until(&c, &c.closed, 1);
	assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&c.loop), 0);
	free(tbs);
	free(ca_tbs);
	free(der);
	OPENSSL_free(spki);
	EVP_PKEY_free(dev);
	X509_free(issuing);
}

static void test_hsmd_sandboxed(void **state)
{
	unsetenv("SANDBOX_HSMD_USER");
	exercise(*state, getuid());
}

/* The two-user design: started as root, the HSM process becomes its own user
 * (nobody here, owning the setup as the HSM user would own token and PIN). */
static void test_hsmd_as_nobody(void **state)
{
	struct env *e = *state;
	struct passwd *pw = getpwnam("nobody");

	assert_non_null(pw);
	setenv("SANDBOX_HSMD_USER", "nobody", 1);
	if (geteuid() == 0) {
		char *const argv[] = { (char *)"chown", (char *)"-R", (char *)"nobody", e->dev, NULL };

		assert_int_equal(fixture_run(argv), 0);
		exercise(e, pw->pw_uid);
	} else {
		/* Not root: no user change, same ids. */
		exercise(e, getuid());
	}
	unsetenv("SANDBOX_HSMD_USER");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hsmd_sandboxed),
		cmocka_unit_test(test_hsmd_as_nobody),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
