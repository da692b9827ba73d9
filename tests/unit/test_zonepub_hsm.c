/*
 * zonepub signing through the real HSM process (signer/hsmlink, signer/hsmd)
 * on a fresh SoftHSM token: the DNSKEYs come from the HSM's public keys, the
 * apex and a group of devices are signed by the HSM under its per-role
 * limits, every signature verifies, and the zone file passes
 * ldns-verify-zone. A refusal by the HSM (a key role that does not exist)
 * leaves the zone as it was.
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
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <uv.h>

#include "pkcs11/hsm.h"
#include "signer/commit.h"
#include "signer/hsmd.h"
#include "signer/hsmlink.h"
#include "signer/store.h"
#include "signer/x509.h"
#include "signer/zonepub.h"
#include "policy/policy.h"
#include "signer/zonepub_hsm.h"
#include "tests/fixture/softhsm.h"
#include "zonesigner/zone_file.h"

#define DAY 86400

struct env {
	struct fixture_token t;
	char exe[4096];
	char config[4200];
	uv_loop_t loop;
	hsmlink_t *link;
	int ready, ready_status, closed;
	char reason[256];
	struct zonepub_hsm hsm;
	int keys_done, keys_status;
	struct zone_params params;
	char origin[256];
	store_t *st;
	commit_t *commit;
	struct zonepub *zp;
	int zp_closed;
};

struct req {
	struct zonepub_req rq;
	struct zonepub_op op;
	char id[64];
	uint8_t hash[32];
	int done, status;
	uint32_t serial;
};

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

static void write_pem(const char *path, X509 *cert)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(PEM_write_X509(f, cert), 1);
	assert_int_equal(fclose(f), 0);
}

/* Keys in the token, a root CA in memory and an issuing CA for the HSM's key. */
static void make_token(struct env *e)
{
	static const char *const labels[] = { "zp-issuing-ca", "zp-ksk", "zp-zsk", "zp-audit" };
	struct hsm_config hc = { .module_path = e->t.module, .token_uri = e->t.uri,
				 .pin_file = e->t.pin_file, .sessions = 1,
				 .recover_timeout_ms = 1000 };
	struct x509_cert_spec spec;
	EVP_PKEY *root_key = EVP_EC_gen("P-256"), *ca_pub;
	X509_NAME *xn = NULL;
	X509 *root = NULL, *ca = NULL;
	unsigned char id[16], *spki = NULL;
	const unsigned char *p;
	char uri[4200], path[4200];
	size_t len = 0;
	hsm_t *h = NULL;
	int key_id;

	assert_non_null(root_key);
	assert_int_equal(hsm_open(&hc, &h), HSM_OK);
	for (size_t i = 0; i < sizeof(labels) / sizeof(labels[0]); i++)
		assert_int_equal(hsm_keygen_ec(h, labels[i], id), HSM_OK);
	assert_int_equal(fixture_token_key_uri(&e->t, "zp-issuing-ca", uri, sizeof(uri)), 0);
	assert_int_equal(hsm_key_add(h, "issuing-ca", uri, &key_id), HSM_OK);
	assert_int_equal(hsm_key_public(h, key_id, &spki, &len), HSM_OK);
	p = spki;
	ca_pub = d2i_PUBKEY(NULL, &p, (long)len);
	assert_non_null(ca_pub);
	free(spki);
	hsm_close(h);

	memset(&spec, 0, sizeof(spec));
	spec.profile = X509_PROFILE_ROOT;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.not_before = time(NULL) - 3600;
	spec.not_after = spec.not_before + 3650 * DAY;
	spec.subject_key = root_key;
	assert_int_equal(x509_name_parse("/O=Test/CN=Zonepub Root CA", &xn), X509_OK);
	spec.subject = xn;
	assert_int_equal(x509_cert_create(&spec, x509_sign_with_pkey, root_key, &root), X509_OK);
	X509_NAME_free(xn);
	spec.profile = X509_PROFILE_ISSUING;
	assert_int_equal(x509_serial_random(spec.serial), X509_OK);
	spec.subject_key = ca_pub;
	spec.issuer = root;
	spec.zone = "iotregistry.test";
	assert_int_equal(x509_name_parse("/O=Test/CN=Zonepub Issuing CA", &xn), X509_OK);
	spec.subject = xn;
	assert_int_equal(x509_cert_create(&spec, x509_sign_with_pkey, root_key, &ca), X509_OK);
	X509_NAME_free(xn);
	snprintf(path, sizeof(path), "%s/root-ca.pem", e->t.dir);
	write_pem(path, root);
	snprintf(path, sizeof(path), "%s/issuing-ca.pem", e->t.dir);
	write_pem(path, ca);
	X509_free(root);
	X509_free(ca);
	EVP_PKEY_free(ca_pub);
	EVP_PKEY_free(root_key);
}

static void write_config(struct env *e, const char *zsk_object)
{
	static char buf[32768];
	const char *d = e->t.dir, *u = e->t.uri;
	int n;

	n = snprintf(buf, sizeof(buf),
		     "version: 1\n"
		     "hsm:\n"
		     "  module: %s\n"
		     "  token: \"%s\"\n"
		     "  pin-file: %s\n"
		     "  sessions: 2\n"
		     "  environment:\n"
		     "    SOFTHSM2_CONF: %s\n"
		     "keys:\n"
		     "  issuing-ca: \"%s;object=zp-issuing-ca\"\n"
		     "  ksk: \"%s;object=zp-ksk\"\n"
		     "  zsk: \"%s;object=%s\"\n"
		     "  audit: \"%s;object=zp-audit\"\n"
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
		     e->t.module, u, e->t.pin_file, e->t.conf, u, u, u, zsk_object, u, d, d, d, d,
		     d, d, d);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	snprintf(e->config, sizeof(e->config), "%s/regsignd.yaml", d);
	write_text(e->config, buf);
}

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));
	char cmd[9000];
	ssize_t n;

	assert_non_null(e);
	fixture_token_new(&e->t, "zonepub-test");
	n = readlink("/proc/self/exe", e->exe, sizeof(e->exe) - 1);
	assert_true(n > 0);
	e->exe[n] = '\0';
	make_token(e);
	snprintf(cmd, sizeof(cmd), "cp '%s/policy/policy.example.yaml' '%s/policy.yaml'",
		 REGSIGN_SOURCE_DIR, e->t.dir);
	assert_int_equal(system(cmd), 0);
	/* The HSM process must get SoftHSM's configuration from the config alone. */
	unsetenv("SOFTHSM2_CONF");
	assert_int_equal(uv_loop_init(&e->loop), 0);
	*state = e;
	return 0;
}

static void on_zp_closed(void *arg);
static void on_closed(void *arg);

static int teardown(void **state)
{
	struct env *e = *state;

	/* After a failed check, close what the test left open. */
	if (e->zp != NULL) {
		zonepub_close(e->zp, on_zp_closed, e);
		while (!e->zp_closed)
			uv_run(&e->loop, UV_RUN_ONCE);
		zonepub_free(e->zp);
	}
	commit_close(e->commit);
	store_close(e->st);
	if (e->link != NULL)
		hsmlink_close(e->link, on_closed, e);
	assert_int_equal(uv_run(&e->loop, UV_RUN_DEFAULT), 0);
	assert_int_equal(uv_loop_close(&e->loop), 0);
	fixture_token_free(&e->t);
	free(e);
	return 0;
}

/* ---- the loop ---- */

static void on_timeout(uv_timer_t *t)
{
	(void)t;
	fail_msg("timed out waiting for the HSM process or zonepub");
}

static void run_until(struct env *e, const int *flag)
{
	uv_timer_t timer;

	uv_timer_init(&e->loop, &timer);
	uv_timer_start(&timer, on_timeout, 120000, 0);
	while (!*flag)
		uv_run(&e->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&e->loop, UV_RUN_NOWAIT);
}

static void on_ready(hsmlink_t *l, int status, const char *reason, void *arg)
{
	struct env *e = arg;

	(void)l;
	e->ready = 1;
	e->ready_status = status;
	snprintf(e->reason, sizeof(e->reason), "%s", reason);
}

static void on_closed(void *arg)
{
	((struct env *)arg)->closed = 1;
}

static void on_keys(void *arg, int status, const struct zone_dnskey *ksk,
		    const struct zone_dnskey *zsk)
{
	struct env *e = arg;

	e->keys_done = 1;
	e->keys_status = status;
	if (status == 0) {
		e->params.ksk = *ksk;
		e->params.zsk = *zsk;
	}
}

static void on_zp_closed(void *arg)
{
	((struct env *)arg)->zp_closed = 1;
}

static void req_done(struct zonepub_req *rq, int status, uint32_t serial)
{
	struct req *r = (struct req *)rq;

	r->done = 1;
	r->status = status;
	r->serial = serial;
}

static void req_issue(struct req *r, unsigned i)
{
	memset(r, 0, sizeof(*r));
	snprintf(r->id, sizeof(r->id), "89122302000310%06x", i);
	for (size_t k = 0; k < sizeof(r->hash); k++)
		r->hash[k] = (uint8_t)(i + k);
	r->op.kind = ZONEPUB_OP_DEVICE_ADD;
	r->op.dev.id = r->id;
	r->op.dev.index = 1;
	r->op.dev.styles = ZONE_STYLE_SEED;
	r->op.dev.cert_sha256 = r->hash;
	r->rq.ops = &r->op;
	r->rq.n_ops = 1;
	r->rq.done = req_done;
}

/* Spawns the HSM process, gets the DNSKEYs, starts zonepub on a fresh store. */
static void start(struct env *e)
{
	struct hsmlink_options o;
	struct zonepub_opts zo;
	char db[4200];

	memset(&o, 0, sizeof(o));
	o.exe_path = e->exe;
	o.config_path = e->config;
	o.ready_cb = on_ready;
	o.arg = e;
	assert_int_equal(hsmlink_spawn(&e->loop, &o, &e->link), HSMLINK_OK);
	run_until(e, &e->ready);
	if (e->ready_status != HSMPROTO_ST_OK)
		fail_msg("HSM process not ready: %s", e->reason);
	zonepub_hsm_init(&e->hsm, e->link);
	/* The parameters the daemon takes from the policy file (example policy). */
	{
		char path[4200], err[512];
		struct policy *pol = NULL;

		snprintf(path, sizeof(path), "%s/policy.yaml", e->t.dir);
		if (policy_load(path, &pol, err, sizeof(err)) != 0)
			fail_msg("policy: %s", err);
		assert_int_equal(zonepub_params_from_policy(policy_zone(pol), &e->params), 0);
		assert_int_equal(zonepub_styles_from_policy(policy_zone(pol)), ZONE_STYLE_SEED);
		assert_int_equal(e->params.device_validity, 6 * 3600);
		assert_int_equal(e->params.device_refresh, 3 * 3600);
		assert_int_equal(e->params.validity, 14 * DAY);
		assert_int_equal(e->params.soa_minimum, 300);
		/* The strings are the policy's: keep a copy of the origin for the zone. */
		snprintf(e->origin, sizeof(e->origin), "%s", e->params.origin);
		e->params.origin = e->origin;
		e->params.dance_prefix = "_device";
		policy_free(pol);
	}
	e->keys_done = 0;
	assert_int_equal(zonepub_hsm_keys(&e->hsm, on_keys, e), 0);
	run_until(e, &e->keys_done);
	assert_int_equal(e->keys_status, 0);
	assert_int_equal(e->params.ksk.flags, ZONE_DNSKEY_FLAGS_KSK);
	assert_int_equal(e->params.zsk.flags, ZONE_DNSKEY_FLAGS_ZSK);
	assert_int_not_equal(e->params.ksk.key_tag, e->params.zsk.key_tag);

	snprintf(db, sizeof(db), "%s/regsign.db", e->t.dir);
	assert_int_equal(store_open(&e->st, db, NULL), 0);
	memset(&zo, 0, sizeof(zo));
	zo.params = &e->params;
	zo.signer = zonepub_hsm_signer(&e->hsm);
	zo.tick_ms = 3600 * 1000;
	assert_int_equal(zonepub_new(&e->loop, &zo, &e->zp), 0);
	assert_int_equal(zonepub_load(e->zp, e->st), 0);
	assert_int_equal(commit_new(&e->loop, e->st, e, NULL, NULL, &e->commit), 0);
	assert_int_equal(zonepub_start(e->zp, e->commit), 0);
}

static void run_idle(struct env *e)
{
	uv_timer_t timer;

	uv_timer_init(&e->loop, &timer);
	uv_timer_start(&timer, on_timeout, 120000, 0);
	uv_run(&e->loop, UV_RUN_NOWAIT);
	while (!zonepub_idle(e->zp))
		uv_run(&e->loop, UV_RUN_ONCE);
	uv_close((uv_handle_t *)&timer, NULL);
	uv_run(&e->loop, UV_RUN_NOWAIT);
}

static void stop(struct env *e)
{
	e->zp_closed = 0;
	zonepub_close(e->zp, on_zp_closed, e);
	run_until(e, &e->zp_closed);
	zonepub_free(e->zp);
	e->zp = NULL;
	commit_close(e->commit);
	e->commit = NULL;
	store_close(e->st);
	e->st = NULL;
	e->closed = 0;
	hsmlink_close(e->link, on_closed, e);
	e->link = NULL;
	run_until(e, &e->closed);
}

static void test_hsm_signs_zone(void **state)
{
	struct env *e = *state;
	enum { N = 12 };
	struct req r[N], rv;
	char path[4200], cmd[8600];
	uint32_t s;

	write_config(e, "zp-zsk");
	start(e);
	run_idle(e);
	assert_int_equal(zone_serial(zonepub_zone(e->zp)), 1);
	for (unsigned i = 0; i < N; i++) {
		req_issue(&r[i], i + 1);
		zonepub_submit(e->zp, &r[i].rq);
	}
	run_idle(e);
	for (unsigned i = 0; i < N; i++) {
		assert_int_equal(r[i].status, 0);
		assert_int_equal(r[i].serial, 2);
	}
	/* A revocation through the HSM too. */
	req_issue(&rv, 5);
	rv.op.kind = ZONEPUB_OP_DEVICE_REMOVE;
	zonepub_submit(e->zp, &rv.rq);
	run_idle(e);
	assert_int_equal(rv.status, 0);
	s = zone_serial(zonepub_zone(e->zp));
	assert_int_equal(s, 3);
	assert_int_equal(e->hsm.failures, 0);
	assert_int_equal(e->hsm.batches, 3);
	/* Every signature made by the HSM verifies against the DNSKEYs. */
	assert_int_equal(zone_check(zonepub_zone(e->zp), time(NULL), true), 0);
	snprintf(path, sizeof(path), "%s/zone.db", e->t.dir);
	assert_int_equal(zone_file_write(zonepub_zone(e->zp), path), 0);
	snprintf(cmd, sizeof(cmd), "command -v ldns-verify-zone >/dev/null 2>&1");
	if (system(cmd) != 0)
		fail_msg("ldns-verify-zone is not installed (Debian: ldnsutils)");
	snprintf(cmd, sizeof(cmd), "ldns-verify-zone -V 2 '%s'", path);
	assert_int_equal(system(cmd), 0);
	stop(e);
}

/* The HSM process refuses (its ZSK role names a key that is not there): the
 * request gets ZONEPUB_ESIGN and nothing is published. */
static void test_hsm_refusal(void **state)
{
	struct env *e = *state;
	struct req r;

	write_config(e, "zp-zsk");
	start(e);
	run_idle(e);
	/* Signing under a role the HSM process does not have fails the batch. */
	e->hsm.zsk_role = "no-such-role";
	req_issue(&r, 1);
	zonepub_submit(e->zp, &r.rq);
	run_idle(e);
	assert_int_equal(r.status, ZONEPUB_ESIGN);
	assert_int_equal(zone_serial(zonepub_zone(e->zp)), 1);
	assert_int_equal(e->hsm.failures, 1);
	assert_int_not_equal(e->hsm.last_status, HSMPROTO_ST_OK);
	e->hsm.zsk_role = "zsk";
	req_issue(&r, 1);
	zonepub_submit(e->zp, &r.rq);
	run_idle(e);
	assert_int_equal(r.status, 0);
	assert_int_equal(r.serial, 2);
	stop(e);
}

int main(int argc, char **argv)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hsm_signs_zone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_refusal, setup, teardown),
	};

	/* Started by hsmlink as the HSM process. */
	if (argc >= 2 && strcmp(argv[1], HSMD_OPTION) == 0)
		return hsmd_main(argc, argv);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
