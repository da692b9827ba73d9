/*
 * End-to-end tests of the HSM process (signer/hsmd) through its link (signer/hsmlink)
 * on a real SoftHSM token: batches signed and verified with OpenSSL, hard limits
 * refused per item, STATUS counters, coalescing, death by SIGKILL, start-up failure,
 * and the raw protocol against a directly spawned HSM process.
 *
 * This program is also the HSM process: started with "--hsm-process" it runs
 * hsmd_main(), as regsignd itself does.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/unit/test_hsm_util.h"
#include "tests/unit/test_hsm_support.h"

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <uv.h>

#include "pkcs11/hsm.h"
#include "signer/hsmd.h"
#include "signer/hsmd_watchdog.h"
#include "signer/hsmlimits.h"
#include "signer/hsmlink.h"
#include "signer/hsmproto.h"
#include "signer/x509.h"
#include "tests/fixture/softhsm.h"

#define ZONE "iotregistry.test."
#define DAY 86400
#define N_RRSIG 100
#define N_SPLIT ((int)HSMPROTO_MAX_ITEMS + 200)
#define N_KILL 3000

static const char *const key_labels[] = {
	"regsign-issuing-ca", "regsign-ksk", "regsign-zsk", "regsign-audit", "regsign-asp-zsk",
};

struct env {
	struct fixture_token t;
	char exe[4096];
	char config[4096];
	char bad_config[4096];
	char fault_config[4096];
	char fault_ctl[4200];
	char fault_dir[4096];
	X509 *ca;
	EVP_PKEY *ca_pub; /* the HSM's issuing-ca public key */
	EVP_PKEY *dev_key;
};

/* ---- loop helpers ------------------------------------------------------------------- */

struct ctx {
	uv_loop_t loop;
	hsmlink_t *link;
	int ready;
	int ready_status;
	char ready_reason[256];
	int dead;
	int64_t exit_status;
	int term_signal;
	int closed;
	/* results of the last calls */
	int calls_done;
	size_t n_res;
	struct hsmlink_result *res;
	uint8_t (*vals)[HSMPROTO_MAX_VALUE];
	uint8_t value[HSMPROTO_MAX_VALUE];
	size_t value_len;
	int value_status;
	struct hsmproto_status st;
	int st_status;
};

static void on_ready(hsmlink_t *l, int status, const char *reason, void *arg)
{
	struct ctx *c = arg;

	(void)l;
	c->ready = 1;
	c->ready_status = status;
	snprintf(c->ready_reason, sizeof(c->ready_reason), "%s", reason);
}

static void on_death(hsmlink_t *l, int64_t exit_status, int term_signal, void *arg)
{
	struct ctx *c = arg;

	(void)l;
	c->dead++;
	c->exit_status = exit_status;
	c->term_signal = term_signal;
}

static void on_closed(void *arg)
{
	((struct ctx *)arg)->closed = 1;
}

static void ctx_free_results(struct ctx *c)
{
	for (size_t i = 0; i < c->n_res; i++)
		free((void *)c->res[i].reason);
	free(c->res);
	free(c->vals);
	c->res = NULL;
	c->vals = NULL;
	c->n_res = 0;
}

/* Keeps a copy of every result (the originals live only during the callback). */
static void on_sign(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct ctx *c = arg;

	ctx_free_results(c);
	c->res = realloc(c->res, n * sizeof(*c->res));
	c->vals = realloc(c->vals, n * sizeof(*c->vals));
	assert_non_null(c->res);
	assert_non_null(c->vals);
	for (size_t i = 0; i < n; i++) {
		c->res[i] = res[i];
		c->res[i].reason = strdup(res[i].reason);
		assert_true(res[i].value_len <= HSMPROTO_MAX_VALUE);
		memcpy(c->vals[i], res[i].value ? res[i].value : (const uint8_t *)"", res[i].value_len);
		c->res[i].value = c->vals[i];
	}
	c->n_res = n;
	c->calls_done++;
}

static void on_value(void *arg, const struct hsmlink_result *res)
{
	struct ctx *c = arg;

	c->value_status = res->status;
	c->value_len = res->value_len;
	memcpy(c->value, res->value ? res->value : (const uint8_t *)"", res->value_len);
	c->calls_done++;
}

static void on_status(void *arg, int status, const struct hsmproto_status *st)
{
	struct ctx *c = arg;

	c->st_status = status;
	hsmproto_status_clear(&c->st);
	if (st != NULL) {
		c->st = *st;
		c->st.roles = calloc(st->n_roles + 1, sizeof(*st->roles));
		assert_non_null(c->st.roles);
		memcpy(c->st.roles, st->roles, st->n_roles * sizeof(*st->roles));
	}
	c->calls_done++;
}

/* Runs the loop until *flag >= want (a generous liveness bound of 120 s). */
static void run_until(struct ctx *c, const int *flag, int want)
{
	ths_run_until(&c->loop, flag, want, "the HSM process");
}

static void spawn_dirs(struct ctx *c, const struct env *e, const char *config,
                       const char *const *dirs)
{
	struct hsmlink_options o;

	memset(c, 0, sizeof(*c));
	assert_int_equal(uv_loop_init(&c->loop), 0);
	memset(&o, 0, sizeof(o));
	o.exe_path = e->exe;
	o.config_path = config;
	o.ready_cb = on_ready;
	o.death_cb = on_death;
	o.arg = c;
	o.module_dirs = dirs;
	assert_int_equal(hsmlink_spawn(&c->loop, &o, &c->link), HSMLINK_OK);
	assert_true(hsmlink_pid(c->link) > 0);
	run_until(c, &c->ready, 1);
}

static void spawn(struct ctx *c, const struct env *e, const char *config)
{
	spawn_dirs(c, e, config, NULL);
}

/* Closes the link and checks that the loop ends with nothing left open. */
static void finish(struct ctx *c)
{
	hsmlink_close(c->link, on_closed, c);
	run_until(c, &c->closed, 1);
	assert_int_equal(uv_run(&c->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&c->loop), 0);
	ctx_free_results(c);
	hsmproto_status_clear(&c->st);
}

/* ---- DNS and crypto helpers --------------------------------------------------------- */

/* RRSIG data of one A (or DNSKEY-typed) record "h<i>.<zone>" or the apex. */
static size_t rrsig_data(uint8_t *buf, uint16_t type, uint16_t tag, int i, int apex)
{
	char owner[64];
	size_t n = 0;
	uint8_t labels = apex ? 2 : 3;

	snprintf(owner, sizeof(owner), "h%d." ZONE, i);
	buf[n++] = (uint8_t)(type >> 8);
	buf[n++] = (uint8_t)type;
	buf[n++] = 13;
	buf[n++] = labels;
	memcpy(buf + n, "\x00\x00\x01\x2c" "\x65\x55\x60\x00" "\x65\x54\x0e\x80", 12);
	n += 12;
	buf[n++] = (uint8_t)(tag >> 8);
	buf[n++] = (uint8_t)tag;
	n += ths_name_wire(ZONE, buf + n);
	n += ths_name_wire(apex ? ZONE : owner, buf + n);
	buf[n++] = (uint8_t)(type >> 8);
	buf[n++] = (uint8_t)type;
	memcpy(buf + n, "\x00\x01" "\x00\x00\x01\x2c" "\x00\x04", 8);
	n += 8;
	buf[n++] = 192;
	buf[n++] = 0;
	buf[n++] = 2;
	buf[n++] = (uint8_t)i;
	return n;
}

static EVP_PKEY *pkey_from_spki(const uint8_t *spki, size_t len)
{
	const unsigned char *p = spki;
	EVP_PKEY *k = d2i_PUBKEY(NULL, &p, (long)len);

	assert_non_null(k);
	return k;
}

/* Verifies a raw r||s ECDSA P-256 signature over SHA-256(data) with OpenSSL. */
static int verify_raw(EVP_PKEY *k, const uint8_t *data, size_t len, const uint8_t *sig,
                      size_t siglen)
{
	unsigned char der[X509_ECDSA_SIG_MAX];
	size_t derlen = sizeof(der);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	int ok;

	assert_non_null(md);
	assert_int_equal(siglen, 64);
	assert_int_equal(x509_ecdsa_sig_from_raw(sig, siglen, der, &derlen), X509_OK);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, k), 1);
	ok = EVP_DigestVerify(md, der, derlen, data, len) == 1;
	EVP_MD_CTX_free(md);
	return ok;
}

/* Asks the HSM process for a role's public key. */
static EVP_PKEY *get_pubkey(struct ctx *c, const char *role, uint8_t fp[32])
{
	int want = c->calls_done + 1;
	EVP_PKEY *k;

	assert_int_equal(hsmlink_pubkey(c->link, role, on_value, c), HSMLINK_OK);
	run_until(c, &c->calls_done, want);
	assert_int_equal(c->value_status, HSMPROTO_ST_OK);
	k = pkey_from_spki(c->value, c->value_len);
	if (fp)
		assert_int_equal(EVP_Digest(c->value, c->value_len, fp, NULL, EVP_sha256(), NULL), 1);
	return k;
}

/* ---- setup -------------------------------------------------------------------------- */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void write_config_module(const struct env *e, const char *path, const char *zsk_label,
                                const char *module, const char *extra_env)
{
	static char buf[65536];
	int n = snprintf(buf, sizeof(buf),
	         "version: 1\n"
	         "hsm:\n"
	         "  module: %s\n"
	         "  token: \"%s\"\n"
	         "  pin-file: %s\n"
	         "  sessions: 2\n"
	         "  recover-timeout: 2s\n"
	         "  environment:\n"
	         "    SOFTHSM2_CONF: %s\n"
	         "%s"
	         "keys:\n"
	         "  issuing-ca: \"%s;object=regsign-issuing-ca\"\n"
	         "  ksk: \"%s;object=regsign-ksk\"\n"
	         "  zsk: \"%s;object=%s\"\n"
	         "  audit: \"%s;object=regsign-audit\"\n"
	         "extra-zones:\n"
	         "  - name: asp.test.\n"
	         "    zsk: \"%s;object=regsign-asp-zsk\"\n"
	         "ca:\n"
	         "  root-certificate: %s/root-ca.pem\n"
	         "  issuing-certificate: %s/issuing-ca.pem\n"
	         "  max-validity: 398d\n"
	         "socket:\n"
	         "  path: %s/regsignd.sock\n"
	         "policy: %s/policy.yaml\n"
	         "state:\n"
	         "  database: %s/regsign.db\n"
	         "  audit-log: %s/audit.jsonl\n"
	         "  zone-file: %s/zone.db\n",
	         module, e->t.uri, e->t.pin_file, e->t.conf, extra_env, e->t.uri, e->t.uri, e->t.uri,
	         zsk_label, e->t.uri, e->t.uri, e->t.dir, e->t.dir, e->t.dir, e->t.dir, e->t.dir,
	         e->t.dir, e->t.dir);

	assert_true(n > 0 && (size_t)n < sizeof(buf));
	write_file(path, buf);
}

static void write_config(const struct env *e, const char *path, const char *zsk_label)
{
	write_config_module(e, path, zsk_label, e->t.module, "");
}

static void write_pem(const char *path, X509 *cert)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, cert), 1);
	assert_int_equal(fclose(f), 0);
}

/* Makes the keys in the token, and an issuing CA certificate for the HSM's CA key. */
static void make_keys_and_certs(struct env *e)
{
	struct hsm_config hc = { .module_path = e->t.module, .token_uri = e->t.uri,
				 .pin_file = e->t.pin_file, .sessions = 1,
				 .recover_timeout_ms = 1000 };
	struct x509_cert_spec spec;
	EVP_PKEY *root_key = EVP_EC_gen("P-256");
	X509_NAME *xn = NULL;
	X509 *root = NULL;
	unsigned char id[16], *spki = NULL;
	size_t len = 0;
	char path[4200];
	hsm_t *h = NULL;
	int key_id;

	assert_non_null(root_key);
	assert_int_equal(hsm_open(&hc, &h), HSM_OK);
	for (size_t i = 0; i < sizeof(key_labels) / sizeof(key_labels[0]); i++)
		assert_int_equal(hsm_keygen_ec(h, key_labels[i], id), HSM_OK);
	fixture_token_key_uri(&e->t, "regsign-issuing-ca", path, sizeof(path));
	assert_int_equal(hsm_key_add(h, "issuing-ca", path, &key_id), HSM_OK);
	assert_int_equal(hsm_key_public(h, key_id, &spki, &len), HSM_OK);
	e->ca_pub = pkey_from_spki(spki, len);
	free(spki);
	hsm_close(h);

	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_ROOT;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.not_before = time(NULL) - 3600;
	spec.not_after = spec.not_before + 3650 * DAY;
	spec.subject_key = root_key;
	assert_int_equal(x509_name_parse("/O=Test/CN=Test Root CA", &xn), X509_OK);
	spec.subject = xn;
	assert_int_equal(x509_cert_create(&spec, x509_sign_with_pkey, root_key, &root), X509_OK);
	X509_NAME_free(xn);
	spec.profile = X509_PROFILE_ISSUING;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.subject_key = e->ca_pub;
	spec.issuer = root;
	spec.zone = "iotregistry.test";
	assert_int_equal(x509_name_parse("/O=Test/CN=Test Issuing CA", &xn), X509_OK);
	spec.subject = xn;
	assert_int_equal(x509_cert_create(&spec, x509_sign_with_pkey, root_key, &e->ca), X509_OK);
	X509_NAME_free(xn);
	snprintf(path, sizeof(path), "%s/root-ca.pem", e->t.dir);
	write_pem(path, root);
	snprintf(path, sizeof(path), "%s/issuing-ca.pem", e->t.dir);
	write_pem(path, e->ca);
	X509_free(root);
	EVP_PKEY_free(root_key);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	ssize_t n;

	assert_non_null(e);
	fixture_token_new(&e->t, "hsmd-test");
	n = readlink("/proc/self/exe", e->exe, sizeof(e->exe) - 1);
	assert_true(n > 0);
	e->exe[n] = '\0';
	make_keys_and_certs(e);
	e->dev_key = EVP_EC_gen("P-256");
	assert_non_null(e->dev_key);
	/* The example policy (registry zone iotregistry.test.) is what the HSM reads. */
	{
		char cmd[9000];

		snprintf(cmd, sizeof(cmd), "cp '%s/policy/policy.example.yaml' '%s/policy.yaml'",
		         REGSIGN_SOURCE_DIR, e->t.dir);
		assert_int_equal(system(cmd), 0);
	}
	ths_path_in(e->config, sizeof(e->config), e->t.dir, "regsignd.yaml");
	write_config(e, e->config, "regsign-zsk");
	ths_path_in(e->bad_config, sizeof(e->bad_config), e->t.dir, "bad.yaml");
	write_config(e, e->bad_config, "no-such-key");
	/* The same keys behind the fault-injection module, which forwards to SoftHSM. */
	{
		char extra[9000], *slash;

		snprintf(e->fault_dir, sizeof(e->fault_dir), "%s", P11FAULT_PATH);
		slash = strrchr(e->fault_dir, '/');
		assert_non_null(slash);
		*slash = '\0';
		ths_path_in(e->fault_ctl, sizeof(e->fault_ctl), e->t.dir, "ctl");
		snprintf(extra, sizeof(extra), "    P11FAULT_MODULE: %s\n    P11FAULT_CONTROL: %s\n",
		         e->t.module, e->fault_ctl);
		ths_path_in(e->fault_config, sizeof(e->fault_config), e->t.dir, "fault.yaml");
		write_config_module(e, e->fault_config, "regsign-zsk", P11FAULT_PATH, extra);
	}
	/* The HSM process must get SoftHSM's configuration from hsm.environment alone. */
	unsetenv("SOFTHSM2_CONF");
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	X509_free(e->ca);
	EVP_PKEY_free(e->ca_pub);
	EVP_PKEY_free(e->dev_key);
	fixture_token_free(&e->t);
	free(e);
	return 0;
}

/* ---- tests -------------------------------------------------------------------------- */

static void test_sign_batch(void **state)
{
	struct env *e = *state;
	static uint8_t data[N_RRSIG][256];
	struct hsmlink_sign_req reqs[N_RRSIG];
	size_t lens[N_RRSIG];
	struct ctx c;
	uint8_t fp[32];
	EVP_PKEY *zsk;
	uint16_t tag;

	spawn(&c, e, e->config);
	if (c.ready_status != HSMPROTO_ST_OK)
		fail_msg("HSM process not ready: %s", c.ready_reason);
	zsk = get_pubkey(&c, "zsk", fp);
	tag = ths_key_tag(zsk, 256);
	for (int i = 0; i < N_RRSIG; i++) {
		lens[i] = rrsig_data(data[i], 1, tag, i, 0);
		reqs[i] = (struct hsmlink_sign_req){ "zsk", HSMPROTO_KIND_RRSIG_DATA,
		                                     HSMPROTO_FORMAT_RAW, data[i], lens[i] };
	}
	assert_int_equal(hsmlink_sign(c.link, reqs, N_RRSIG, on_sign, &c), HSMLINK_OK);
	/* hsmlink copied the data: scribbling over it now changes nothing. */
	{
		static uint8_t saved[N_RRSIG][256];

		memcpy(saved, data, sizeof(data));
		memset(data, 0xee, sizeof(data));
		run_until(&c, &c.calls_done, 2);
		memcpy(data, saved, sizeof(data));
	}
	assert_int_equal(c.n_res, N_RRSIG);
	for (int i = 0; i < N_RRSIG; i++) {
		if (c.res[i].status != HSMPROTO_ST_OK)
			fail_msg("item %d: %s %s", i, hsmproto_status_name(c.res[i].status),
			         c.res[i].reason);
		assert_true(verify_raw(zsk, data[i], lens[i], c.res[i].value, c.res[i].value_len));
	}
	/* A signature does not verify over other data. */
	assert_false(verify_raw(zsk, data[1], lens[1], c.res[0].value, c.res[0].value_len));

	/* STATUS counts them and gives the key's fingerprint. */
	assert_int_equal(hsmlink_status(c.link, on_status, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 3);
	assert_int_equal(c.st_status, HSMPROTO_ST_OK);
	assert_int_equal(c.st.state, HSMPROTO_STATE_UP);
	assert_int_equal(c.st.n_roles, 5);
	{
		int found = 0;

		for (size_t i = 0; i < c.st.n_roles; i++) {
			if (strcmp(c.st.roles[i].role, "zsk") == 0) {
				found = 1;
				assert_int_equal(c.st.roles[i].signatures, N_RRSIG);
				assert_int_equal(c.st.roles[i].refused, 0);
				assert_memory_equal(c.st.roles[i].fingerprint, fp, 32);
			}
		}
		assert_true(found);
	}
	EVP_PKEY_free(zsk);
	finish(&c);
}

static void test_mixed_batch(void **state)
{
	struct env *e = *state;
	uint8_t a[256], dnskey[256], ksk_data[256], cp[64];
	struct hsmlink_sign_req reqs[7];
	struct x509_cert_spec spec;
	unsigned char *tbs = NULL;
	size_t tbslen = 0, la, ld, lk;
	EVP_PKEY *zsk, *ksk, *audit;
	X509 *cert = NULL;
	struct ctx c;

	spawn(&c, e, e->config);
	assert_int_equal(c.ready_status, HSMPROTO_ST_OK);
	zsk = get_pubkey(&c, "zsk", NULL);
	ksk = get_pubkey(&c, "ksk", NULL);
	audit = get_pubkey(&c, "audit", NULL);
	la = rrsig_data(a, 1, ths_key_tag(zsk, 256), 1, 0);
	ld = rrsig_data(dnskey, 48, ths_key_tag(zsk, 256), 0, 1);
	lk = rrsig_data(ksk_data, 48, ths_key_tag(ksk, 257), 0, 1);
	memcpy(cp, HSMLIMITS_CHECKPOINT_PREFIX, HSMLIMITS_CHECKPOINT_PREFIX_LEN);
	memcpy(cp + HSMLIMITS_CHECKPOINT_PREFIX_LEN, "seq=1", 5);
	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_DEVICE;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.not_before = time(NULL) - 3600;
	spec.not_after = spec.not_before + 365 * DAY;
	spec.subject_key = e->dev_key;
	spec.issuer = e->ca;
	spec.zone = "iotregistry.test";
	spec.index = 1;
	spec.device_id = "8912230200031010008f";
	assert_int_equal(x509_cert_tbs_build(&spec, &tbs, &tbslen), X509_OK);

	reqs[0] = (struct hsmlink_sign_req){ "zsk", HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW, a, la };
	reqs[1] = (struct hsmlink_sign_req){ "zsk", HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW, dnskey, ld };
	reqs[2] = (struct hsmlink_sign_req){ "root", HSMPROTO_KIND_TBS_CERT, HSMPROTO_FORMAT_DER, tbs, tbslen };
	reqs[3] = (struct hsmlink_sign_req){ "ksk", HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW, ksk_data, lk };
	reqs[4] = (struct hsmlink_sign_req){ "issuing-ca", HSMPROTO_KIND_TBS_CERT, HSMPROTO_FORMAT_DER, tbs, tbslen };
	reqs[5] = (struct hsmlink_sign_req){ "audit", HSMPROTO_KIND_CHECKPOINT, HSMPROTO_FORMAT_RAW,
	                                     cp, HSMLIMITS_CHECKPOINT_PREFIX_LEN + 5 };
	/* A role the limits know but the configuration has no key for. */
	reqs[6] = (struct hsmlink_sign_req){ "asp.test./ksk", HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW, a, la };
	assert_int_equal(hsmlink_sign(c.link, reqs, 7, on_sign, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 4);
	assert_int_equal(c.n_res, 7);
	assert_int_equal(c.res[0].status, HSMPROTO_ST_OK);
	assert_true(verify_raw(zsk, a, la, c.res[0].value, c.res[0].value_len));
	assert_int_equal(c.res[1].status, HSMPROTO_ST_REFUSED);
	assert_non_null(strstr(c.res[1].reason, "DNSKEY"));
	assert_int_equal(c.res[1].value_len, 0);
	assert_int_equal(c.res[2].status, HSMPROTO_ST_REFUSED);
	assert_non_null(strstr(c.res[2].reason, "root"));
	assert_int_equal(c.res[3].status, HSMPROTO_ST_OK);
	assert_true(verify_raw(ksk, ksk_data, lk, c.res[3].value, c.res[3].value_len));
	/* The CA's DER signature assembles into a certificate that verifies. */
	assert_int_equal(c.res[4].status, HSMPROTO_ST_OK);
	assert_int_equal(x509_cert_assemble(tbs, tbslen, c.res[4].value, c.res[4].value_len,
	                                    e->ca_pub, &cert), X509_OK);
	assert_int_equal(c.res[5].status, HSMPROTO_ST_OK);
	assert_true(verify_raw(audit, cp, HSMLIMITS_CHECKPOINT_PREFIX_LEN + 5, c.res[5].value,
	                       c.res[5].value_len));
	assert_int_equal(c.res[6].status, HSMPROTO_ST_REFUSED);

	/* Requests refused before anything is sent. */
	reqs[0].role = "ZSK";
	assert_int_equal(hsmlink_sign(c.link, reqs, 1, on_sign, &c), HSMLINK_ERR_ARG);
	reqs[0].role = "zsk";
	reqs[0].kind = 9;
	assert_int_equal(hsmlink_sign(c.link, reqs, 1, on_sign, &c), HSMLINK_ERR_ARG);
	assert_int_equal(hsmlink_pubkey(c.link, "Bad Role", on_value, &c), HSMLINK_ERR_ARG);

	/* PUBKEY of an unknown role is refused; RANDOM gives the bytes asked for. */
	assert_int_equal(hsmlink_pubkey(c.link, "root", on_value, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 5);
	assert_int_equal(c.value_status, HSMPROTO_ST_REFUSED);
	assert_int_equal(hsmlink_random(c.link, 48, on_value, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 6);
	assert_int_equal(c.value_status, HSMPROTO_ST_OK);
	assert_int_equal(c.value_len, 48);

	/* STATUS counts the refusals per role. */
	assert_int_equal(hsmlink_status(c.link, on_status, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 7);
	for (size_t i = 0; i < c.st.n_roles; i++) {
		if (strcmp(c.st.roles[i].role, "zsk") == 0) {
			assert_int_equal(c.st.roles[i].signatures, 1);
			assert_int_equal(c.st.roles[i].refused, 1);
		}
		if (strcmp(c.st.roles[i].role, "issuing-ca") == 0)
			assert_int_equal(c.st.roles[i].signatures, 1);
	}
	X509_free(cert);
	free(tbs);
	EVP_PKEY_free(zsk);
	EVP_PKEY_free(ksk);
	EVP_PKEY_free(audit);
	finish(&c);
}

/* A spawned HSM process and @p n ZSK requests over distinct RRSIG data (freed by the caller). */
static EVP_PKEY *zsk_batch(struct ctx *c, const struct env *e, int n,
                           struct hsmlink_sign_req **reqs, uint8_t (**data)[256])
{
	EVP_PKEY *zsk;
	uint16_t tag;

	*reqs = calloc((size_t)n, sizeof(**reqs));
	*data = calloc((size_t)n, sizeof(**data));
	assert_non_null(*reqs);
	assert_non_null(*data);
	spawn(c, e, e->config);
	assert_int_equal(c->ready_status, HSMPROTO_ST_OK);
	zsk = get_pubkey(c, "zsk", NULL);
	tag = ths_key_tag(zsk, 256);
	for (int i = 0; i < n; i++) {
		size_t len = rrsig_data((*data)[i], 1, tag, i % 256, 0);

		(*reqs)[i] = (struct hsmlink_sign_req){ "zsk", HSMPROTO_KIND_RRSIG_DATA,
		                                        HSMPROTO_FORMAT_RAW, (*data)[i], len };
	}
	return zsk;
}

/* Ten single requests made in one loop iteration travel in one frame. */
static void test_coalescing_and_split(void **state)
{
	struct env *e = *state;
	struct hsmlink_sign_req *reqs;
	uint8_t (*data)[256];
	struct ctx c;
	EVP_PKEY *zsk = zsk_batch(&c, e, N_SPLIT, &reqs, &data);
	uint64_t before;

	before = hsmlink_frames_sent(c.link);
	for (int i = 0; i < 10; i++)
		assert_int_equal(hsmlink_sign(c.link, &reqs[i], 1, on_sign, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 1 + 10);
	assert_int_equal(hsmlink_frames_sent(c.link) - before, 1);
	assert_int_equal(c.res[0].status, HSMPROTO_ST_OK);

	/* A batch above the per-message maximum is split, and answered in one callback. */
	before = hsmlink_frames_sent(c.link);
	assert_int_equal(hsmlink_sign(c.link, reqs, N_SPLIT, on_sign, &c), HSMLINK_OK);
	run_until(&c, &c.calls_done, 1 + 10 + 1);
	assert_int_equal(hsmlink_frames_sent(c.link) - before, 2);
	assert_int_equal(c.n_res, N_SPLIT);
	for (int i = 0; i < N_SPLIT; i += 97) {
		assert_int_equal(c.res[i].status, HSMPROTO_ST_OK);
		assert_true(verify_raw(zsk, data[i], reqs[i].len, c.res[i].value,
		                       c.res[i].value_len));
	}
	assert_int_equal(c.res[N_SPLIT - 1].status, HSMPROTO_ST_OK);
	assert_true(verify_raw(zsk, data[N_SPLIT - 1], reqs[N_SPLIT - 1].len,
	                       c.res[N_SPLIT - 1].value, c.res[N_SPLIT - 1].value_len));
	EVP_PKEY_free(zsk);
	free(reqs);
	free(data);
	finish(&c);
}

/* kill -9 the HSM process with a batch in flight. */
static void test_kill(void **state)
{
	struct env *e = *state;
	struct hsmlink_sign_req *reqs;
	uint8_t (*data)[256];
	struct ctx c;
	EVP_PKEY *zsk = zsk_batch(&c, e, N_KILL, &reqs, &data);
	int pid;

	pid = hsmlink_pid(c.link);
	assert_int_equal(hsmlink_sign(c.link, reqs, N_KILL, on_sign, &c), HSMLINK_OK);
	assert_int_equal(hsmlink_status(c.link, on_status, &c), HSMLINK_OK);
	uv_run(&c.loop, UV_RUN_NOWAIT); /* the batch leaves */
	assert_int_equal(kill(pid, SIGKILL), 0);
	run_until(&c, &c.dead, 1);
	/* Both calls were answered before the death callback, the batch UNAVAILABLE. */
	assert_int_equal(c.calls_done, 1 + 2);
	assert_int_equal(c.n_res, N_KILL);
	for (int i = 0; i < N_KILL; i++)
		assert_int_equal(c.res[i].status, HSMPROTO_ST_UNAVAILABLE);
	/* The STATUS, answered by the HSM process at once, may have come back before. */
	assert_true(c.st_status == HSMPROTO_ST_UNAVAILABLE || c.st_status == HSMPROTO_ST_OK);
	assert_int_equal(c.dead, 1);
	/* Reported once reaped, so the signal is known. */
	assert_int_equal(c.term_signal, SIGKILL);
	/* The link is dead for good. */
	assert_false(hsmlink_alive(c.link));
	assert_int_equal(hsmlink_sign(c.link, reqs, 1, on_sign, &c), HSMLINK_ERR_DEAD);
	assert_int_equal(hsmlink_status(c.link, on_status, &c), HSMLINK_ERR_DEAD);
	EVP_PKEY_free(zsk);
	free(reqs);
	free(data);
	finish(&c);
	assert_int_equal(c.dead, 1);
}

static void test_startup_failure(void **state)
{
	struct env *e = *state;
	struct hsmlink_options o;
	struct ctx c;

	/* A key that is not in the token: HELLO says why, then the process exits 1. */
	spawn(&c, e, e->bad_config);
	assert_int_equal(c.ready_status, HSMPROTO_ST_ERROR);
	if (strstr(c.ready_reason, "zsk") == NULL)
		fail_msg("reason \"%s\" does not name the key", c.ready_reason);
	run_until(&c, &c.dead, 1);
	assert_int_equal(c.exit_status, 1);
	finish(&c);

	/* A binary that does not exist. */
	memset(&c, 0, sizeof(c));
	assert_int_equal(uv_loop_init(&c.loop), 0);
	memset(&o, 0, sizeof(o));
	o.exe_path = "/nonexistent/regsignd";
	o.config_path = e->config;
	assert_int_equal(hsmlink_spawn(&c.loop, &o, &c.link), HSMLINK_ERR_SPAWN);
	assert_null(c.link);
	assert_int_equal(uv_run(&c.loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&c.loop), 0);
}

/* ---- HSM loss and recovery, through the fault-injection module --------------------- */

/* Replaces the fault module's control file atomically, as its README asks. */
static void fault_ctl(const struct env *e, const char *text)
{
	char tmp[4300];

	snprintf(tmp, sizeof(tmp), "%s.tmp", e->fault_ctl);
	write_file(tmp, text);
	assert_int_equal(rename(tmp, e->fault_ctl), 0);
}

/* Signs n RRSIG datas with the ZSK and returns how many came back with status want. */
static int sign_some(struct ctx *c, EVP_PKEY *zsk, int n, int want)
{
	static uint8_t data[16][256];
	struct hsmlink_sign_req reqs[16];
	int done = c->calls_done + 1, got = 0;

	assert_true(n <= 16);
	for (int i = 0; i < n; i++) {
		size_t len = rrsig_data(data[i], 1, ths_key_tag(zsk, 256), i, 0);

		reqs[i] = (struct hsmlink_sign_req){ "zsk", HSMPROTO_KIND_RRSIG_DATA,
		                                     HSMPROTO_FORMAT_RAW, data[i], len };
	}
	assert_int_equal(hsmlink_sign(c->link, reqs, (size_t)n, on_sign, c), HSMLINK_OK);
	run_until(c, &c->calls_done, done);
	for (int i = 0; i < n; i++) {
		if (c->res[i].status != want)
			continue;
		got++;
		if (want == HSMPROTO_ST_OK)
			assert_true(verify_raw(zsk, data[i], reqs[i].len, c->res[i].value,
			                       c->res[i].value_len));
	}
	return got;
}

static void get_status(struct ctx *c)
{
	int done = c->calls_done + 1;

	assert_int_equal(hsmlink_status(c->link, on_status, c), HSMLINK_OK);
	run_until(c, &c->calls_done, done);
	assert_int_equal(c->st_status, HSMPROTO_ST_OK);
}

static void test_recovery(void **state)
{
	struct env *e = *state;
	const char *dirs[] = { e->fault_dir, NULL };
	struct ctx c;
	EVP_PKEY *zsk;

	fault_ctl(e, "# nothing yet\n");
	spawn_dirs(&c, e, e->fault_config, dirs);
	if (c.ready_status != HSMPROTO_ST_OK)
		fail_msg("HSM process behind the fault module not ready: %s", c.ready_reason);
	zsk = get_pubkey(&c, "zsk", NULL);
	assert_int_equal(sign_some(&c, zsk, 8, HSMPROTO_ST_OK), 8);

	/* The HSM "restarts": sessions and login gone. The HSM process recovers in place. */
	fault_ctl(e, "invalidate\n");
	assert_int_equal(sign_some(&c, zsk, 8, HSMPROTO_ST_OK), 8);
	get_status(&c);
	assert_int_equal(c.st.state, HSMPROTO_STATE_UP);
	assert_true(c.st.recoveries >= 1);

	/* The token stays away longer than recover-timeout: UNAVAILABLE, retryable. */
	fault_ctl(e, "invalidate\ndown inf\n");
	assert_int_equal(sign_some(&c, zsk, 2, HSMPROTO_ST_UNAVAILABLE), 2);
	if (strstr(c.res[0].reason, "sign") == NULL)
		fail_msg("UNAVAILABLE reason \"%s\" does not say what failed", c.res[0].reason);
	get_status(&c);
	assert_int_not_equal(c.st.state, HSMPROTO_STATE_UP);

	/* Back again: the next request recovers, and the process never restarted. */
	fault_ctl(e, "# back\n");
	assert_int_equal(sign_some(&c, zsk, 8, HSMPROTO_ST_OK), 8);
	get_status(&c);
	assert_int_equal(c.st.state, HSMPROTO_STATE_UP);
	assert_true(c.st.recoveries >= 2);
	assert_int_equal(c.dead, 0);
	EVP_PKEY_free(zsk);
	finish(&c);
}

static uint64_t mono_ms(void);

/* A value of the fault module's stats file next to the control file (0 if absent). */
static unsigned long fault_stat(const struct env *e, const char *name)
{
	return hsmt_fault_stat(e->fault_ctl, name);
}

/*
 * hsm.sign-ahead (default on), under the HSM process's real sandbox: the process
 * initialises every session's signing operation for every key before it serves
 * (2 sessions x 5 keys), and again what a batch consumed once its workers are idle,
 * so that at rest the fault module has seen exactly 10 more C_SignInit than C_Sign.
 * Its "mixup" counter (a C_Sign by another thread than the C_SignInit before it)
 * shows that workers signed with operations another thread had prepared. Every
 * signature verifies. With hsm.sign-ahead false, neither happens.
 */
static void test_sign_ahead(void **state)
{
	struct env *e = *state;
	const char *dirs[] = { e->fault_dir, NULL };
	char off_config[4200];
	uint64_t t0;
	struct ctx c;
	EVP_PKEY *zsk;
	long ahead = 0;

	fault_ctl(e, "count C_SignInit\ncount C_Sign\n");
	spawn_dirs(&c, e, e->fault_config, dirs);
	if (c.ready_status != HSMPROTO_ST_OK)
		fail_msg("HSM process behind the fault module not ready: %s", c.ready_reason);
	zsk = get_pubkey(&c, "zsk", NULL);
	for (int round = 0; round < 3; round++)
		assert_int_equal(sign_some(&c, zsk, 8, HSMPROTO_ST_OK), 8);
	t0 = mono_ms();
	while (mono_ms() - t0 < 30000) {
		ahead = (long)fault_stat(e, "C_SignInit") - (long)fault_stat(e, "C_Sign");
		if (ahead == 10)
			break;
		usleep(10000);
	}
	assert_int_equal(ahead, 10);
	assert_true(fault_stat(e, "mixup") > 0);
	assert_int_equal(fault_stat(e, "overlap"), 0);
	get_status(&c);
	assert_int_equal(c.st.state, HSMPROTO_STATE_UP);
	assert_int_equal(c.dead, 0);
	finish(&c);

	/* Off: every C_SignInit is followed by its C_Sign on the same thread. */
	ths_path_in(off_config, sizeof(off_config), e->t.dir, "fault-off.yaml");
	{
		char extra[9000];

		snprintf(extra, sizeof(extra),
		         "    P11FAULT_MODULE: %s\n    P11FAULT_CONTROL: %s\n  sign-ahead: false\n",
		         e->t.module, e->fault_ctl);
		write_config_module(e, off_config, "regsign-zsk", P11FAULT_PATH, extra);
	}
	fault_ctl(e, "count C_SignInit\ncount C_Sign\n# off\n");
	spawn_dirs(&c, e, off_config, dirs);
	if (c.ready_status != HSMPROTO_ST_OK)
		fail_msg("HSM process (sign-ahead false) not ready: %s", c.ready_reason);
	for (int round = 0; round < 3; round++)
		assert_int_equal(sign_some(&c, zsk, 8, HSMPROTO_ST_OK), 8);
	usleep(200000);
	assert_int_equal(fault_stat(e, "C_SignInit"), fault_stat(e, "C_Sign"));
	assert_true(fault_stat(e, "C_Sign") >= 24);
	assert_int_equal(fault_stat(e, "mixup"), 0);
	EVP_PKEY_free(zsk);
	finish(&c);
}

/*
 * At the HSM process's end the hsm handle is closed while the watchdog still runs (it
 * watches C_Finalize too). Once told to drop the handle, the watchdog must never read it
 * again: here it wakes every 10 ms for 200 ms after the handle is freed. A read of the
 * freed handle is what AddressSanitizer reports (a heap use after free, which ended a
 * sanitizer run of attack_time at SIGTERM); in the plain build this checks only that
 * the sequence runs and the thread joins.
 */
static void test_watchdog_after_close(void **state)
{
	struct env *e = *state;
	struct hsmd_watchdog wd;
	char err[256] = "";
	struct hsm_config cfg = {
		.module_path = e->t.module,
		.token_uri = e->t.uri,
		.pin_file = e->t.pin_file,
		.sessions = 1,
		.recover_timeout_ms = 2000,
		.errbuf = err,
		.errbuf_len = sizeof(err),
	};
	hsm_t *h = NULL;

	/* hsm_open needs SoftHSM's configuration in this process. */
	assert_int_equal(setenv("SOFTHSM2_CONF", e->t.conf, 1), 0);
	if (hsm_open(&cfg, &h) != 0)
		fail_msg("hsm_open: %s", err);
	memset(&wd, 0, sizeof(wd));
	assert_int_equal(hsmd_watchdog_start(&wd, h, 1, 40, 2000), 0);
	usleep(50000);
	hsmd_watchdog_drop_hsm(&wd);
	/* (Not marked as a call: a slow C_Finalize under a sanitizer must not reach the
	 * 40 ms call timeout and end the test process.) */
	hsm_close(h);
	usleep(200000);
	hsmd_watchdog_stop(&wd);
	unsetenv("SOFTHSM2_CONF");
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * A call stuck in the module (a C_Sign that sleeps 60 s) holds the shared lock; another
 * call then finds the HSM lost (C_GenerateRandom fails with CKR_DEVICE_ERROR) and its
 * recovery waits for the stuck one. The watchdog must end the process once that wait
 * exceeds recover-timeout (2 s) plus its margin (1 s), long before hsm.call-timeout (the
 * default, 60 s here) would: the restart is what brings service back.
 */
static void test_recovery_blocked_by_stuck_call(void **state)
{
	struct env *e = *state;
	const char *dirs[] = { e->fault_dir, NULL };
	static uint8_t data[256];
	struct hsmlink_sign_req req;
	struct ctx c;
	EVP_PKEY *zsk;
	uint64_t t0, waited;
	size_t len;

	fault_ctl(e, "# nothing yet\n");
	spawn_dirs(&c, e, e->fault_config, dirs);
	if (c.ready_status != HSMPROTO_ST_OK)
		fail_msg("HSM process behind the fault module not ready: %s", c.ready_reason);
	zsk = get_pubkey(&c, "zsk", NULL);
	assert_int_equal(sign_some(&c, zsk, 2, HSMPROTO_ST_OK), 2);

	fault_ctl(e, "delay C_Sign 60000\nC_GenerateRandom CKR_DEVICE_ERROR inf\n");
	len = rrsig_data(data, 1, ths_key_tag(zsk, 256), 1, 0);
	req = (struct hsmlink_sign_req){ "zsk", HSMPROTO_KIND_RRSIG_DATA, HSMPROTO_FORMAT_RAW,
	                                 data, len };
	assert_int_equal(hsmlink_sign(c.link, &req, 1, on_sign, &c), HSMLINK_OK);
	/* Let the sign reach the module before the recovery starts waiting for it. */
	{
		uint64_t until = mono_ms() + 300;

		while (mono_ms() < until)
			uv_run(&c.loop, UV_RUN_NOWAIT);
	}
	t0 = mono_ms();
	assert_int_equal(hsmlink_random(c.link, 16, on_value, &c), HSMLINK_OK);
	run_until(&c, &c.dead, 1);
	waited = mono_ms() - t0;
	assert_int_equal(c.exit_status, HSMD_EXIT_WATCHDOG);
	assert_int_equal(c.term_signal, 0);
	/* Not before the bound (recover-timeout + margin), and far from the call timeout. */
	if (waited < 2900 || waited > 20000)
		fail_msg("the watchdog ended the process after %llu ms, expected 3..20 s",
		         (unsigned long long)waited);
	/* Both requests were answered (UNAVAILABLE) when the process died. */
	assert_int_equal(c.n_res, 1);
	assert_int_equal(c.res[0].status, HSMPROTO_ST_UNAVAILABLE);
	fault_ctl(e, "# nothing\n");
	EVP_PKEY_free(zsk);
	finish(&c);
}

/* ---- the raw protocol against a directly started HSM process ------------------------ */

struct raw {
	int fd;
	pid_t pid;
};

static void raw_start(struct raw *r, const struct env *e)
{
	int sv[2];

	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	r->pid = fork();
	assert_true(r->pid >= 0);
	if (r->pid == 0) {
		char *argv[] = { (char *)e->exe, (char *)HSMD_OPTION, (char *)"--fd", (char *)"3",
		                 (char *)"-c", (char *)e->config, NULL };

		close(sv[0]);
		if (dup2(sv[1], 3) < 0)
			_exit(99);
		execv(e->exe, argv);
		_exit(98);
	}
	close(sv[1]);
	r->fd = sv[0];
}

static void raw_read(struct raw *r, struct hsmproto_header *h, uint8_t **body)
{
	uint8_t hdr[HSMPROTO_HEADER_LEN];
	size_t got = 0;

	while (got < sizeof(hdr)) {
		ssize_t n = read(r->fd, hdr + got, sizeof(hdr) - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(hsmproto_header_decode(hdr, h), HSMPROTO_OK);
	*body = malloc(h->length + 1);
	assert_non_null(*body);
	for (got = 0; got < h->length;) {
		ssize_t n = read(r->fd, *body + got, h->length - got);

		assert_true(n > 0);
		got += (size_t)n;
	}
}

static int raw_wait(struct raw *r)
{
	int st = 0;

	assert_int_equal(waitpid(r->pid, &st, 0), r->pid);
	assert_true(WIFEXITED(st));
	return WEXITSTATUS(st);
}

static void raw_hello(struct raw *r)
{
	struct hsmproto_header h;
	struct hsmproto_result *res = NULL;
	uint8_t *body;

	raw_read(r, &h, &body);
	assert_int_equal(h.type, HSMPROTO_HELLO);
	assert_int_equal(hsmproto_results_decode(&h, body, &res), HSMPROTO_OK);
	if (res[0].status != HSMPROTO_ST_OK)
		fail_msg("HELLO: %s", res[0].reason);
	free(res);
	free(body);
}

static void test_raw_protocol(void **state)
{
	struct env *e = *state;
	struct hsmproto_buf b = { 0 };
	struct hsmproto_header h;
	struct hsmproto_result *res = NULL;
	struct raw r;
	uint8_t *body;

	/* A well-formed request is answered; closing the socket ends the process with 0. */
	raw_start(&r, e);
	raw_hello(&r);
	assert_int_equal(hsmproto_pubkey_req_encode(&b, 42, "nobody"), HSMPROTO_OK);
	assert_int_equal(write(r.fd, b.data, b.len), (ssize_t)b.len);
	hsmproto_buf_free(&b);
	raw_read(&r, &h, &body);
	assert_int_equal(h.type, HSMPROTO_PUBKEY_REPLY);
	assert_int_equal(h.id, 42);
	assert_int_equal(hsmproto_results_decode(&h, body, &res), HSMPROTO_OK);
	assert_int_equal(res[0].status, HSMPROTO_ST_REFUSED);
	free(res);
	free(body);
	/* A SIGN for the root role is refused item by item, not as a protocol error. */
	{
		struct hsmproto_sign_req q;

		memset(&q, 0, sizeof(q));
		strcpy(q.role, "root");
		q.kind = HSMPROTO_KIND_TBS_CERT;
		q.format = HSMPROTO_FORMAT_DER;
		q.data = (const uint8_t *)"\x30\x00";
		q.len = 2;
		assert_int_equal(hsmproto_sign_req_encode(&b, 43, &q, 1), HSMPROTO_OK);
	}
	assert_int_equal(write(r.fd, b.data, b.len), (ssize_t)b.len);
	hsmproto_buf_free(&b);
	raw_read(&r, &h, &body);
	assert_int_equal(h.type, HSMPROTO_SIGN_REPLY);
	assert_int_equal(h.id, 43);
	assert_int_equal(hsmproto_results_decode(&h, body, &res), HSMPROTO_OK);
	assert_int_equal(res[0].status, HSMPROTO_ST_REFUSED);
	free(res);
	free(body);
	/* Under the sanitizers a leak in the HSM process would change this exit status. */
	close(r.fd);
	assert_int_equal(raw_wait(&r), 0);

	/* A malformed frame (bad version) from the front ends the process with 1. */
	raw_start(&r, e);
	raw_hello(&r);
	assert_int_equal(hsmproto_status_req_encode(&b, 1), HSMPROTO_OK);
	b.data[0] = 9;
	assert_int_equal(write(r.fd, b.data, b.len), (ssize_t)b.len);
	hsmproto_buf_free(&b);
	assert_int_equal(raw_wait(&r), 1);
	close(r.fd);

	/* So does a reply type, which never comes from the front. */
	raw_start(&r, e);
	raw_hello(&r);
	{
		struct hsmproto_result x;

		memset(&x, 0, sizeof(x));
		assert_int_equal(hsmproto_results_encode(&b, HSMPROTO_SIGN_REPLY, 1, &x, 1), 0);
	}
	assert_int_equal(write(r.fd, b.data, b.len), (ssize_t)b.len);
	hsmproto_buf_free(&b);
	assert_int_equal(raw_wait(&r), 1);
	close(r.fd);

	/* And a truncated frame followed by EOF. */
	raw_start(&r, e);
	raw_hello(&r);
	assert_int_equal(hsmproto_pubkey_req_encode(&b, 1, "zsk"), HSMPROTO_OK);
	assert_int_equal(write(r.fd, b.data, b.len - 1), (ssize_t)b.len - 1);
	hsmproto_buf_free(&b);
	shutdown(r.fd, SHUT_WR);
	assert_int_equal(raw_wait(&r), 1);
	close(r.fd);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sign_batch),
		cmocka_unit_test(test_mixed_batch),
		cmocka_unit_test(test_coalescing_and_split),
		cmocka_unit_test(test_kill),
		cmocka_unit_test(test_startup_failure),
		cmocka_unit_test(test_recovery),
		cmocka_unit_test(test_sign_ahead),
		cmocka_unit_test(test_recovery_blocked_by_stuck_call),
		cmocka_unit_test(test_watchdog_after_close),
		cmocka_unit_test(test_raw_protocol),
	};

	/* Started by hsmlink (or the raw test) as the HSM process. */
	if (argc > 1 && strcmp(argv[1], HSMD_OPTION) == 0)
		return hsmd_main(argc, argv);
	/* As in regsignd's front: a dead peer must be a write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, setup, teardown);
}
