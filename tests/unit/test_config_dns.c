/*
 * Tests of the dns and zone-file parts of regsignd.yaml (signer/config.c):
 * TSIG keys, notify and allow-transfer entries bound to a key, the zone's
 * name servers with their glue addresses, the zone file interval, a listener
 * on port 0; and each mistake refused with file:line and the key. Also the
 * policy's list of a caller's profiles (policy_caller_profile), which the
 * daemon uses for an ISSUE that names none.
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

#include "policy/policy.h"
#include "signer/config.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

static const char head[] =
	"version: 1\n"
	"hsm:\n"
	"  module: " MODULE "\n"
	"  token: \"pkcs11:token=regsign-dev\"\n"
	"  pin-file: /abs/pin\n"
	"keys:\n"
	"  issuing-ca: \"pkcs11:token=regsign-dev;object=regsign-issuing-ca\"\n"
	"  ksk: \"pkcs11:token=regsign-dev;object=regsign-ksk\"\n"
	"  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk\"\n"
	"  audit: \"pkcs11:token=regsign-dev;object=regsign-audit\"\n"
	"ca:\n"
	"  root-certificate: /abs/out/root-ca.pem\n"
	"  issuing-certificate: /abs/out/issuing-ca.pem\n"
	"socket:\n"
	"  path: /abs/regsignd.sock\n"
	"policy: /abs/policy.yaml\n";                                    /* 16 lines */

struct env {
	char dir[64];
	char path[128];
	struct config *cfg;
	char *err;
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/regsign-cfgdns-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/regsignd.yaml", e->dir);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;

	config_free(e->cfg);
	free(e->err);
	unlink(e->path);
	rmdir(e->dir);
	free(e);
	return 0;
}

/* Writes head + state + tail and loads it; returns config_load's result. */
static int load(struct env *e, const char *state_text, const char *tail)
{
	FILE *f = fopen(e->path, "w");

	assert_non_null(f);
	fputs(head, f);
	fputs(state_text ? state_text
			 : "state:\n"
			   "  database: /abs/state/regsign.db\n"
			   "  audit-log: /abs/state/audit.jsonl\n"
			   "  zone-file: /abs/state/zone.db\n", f);
	fputs(tail, f);
	assert_int_equal(fclose(f), 0);
	config_free(e->cfg);
	e->cfg = NULL;
	free(e->err);
	e->err = NULL;
	return config_load(e->path, NULL, &e->cfg, &e->err);
}

static void expect_error(struct env *e, const char *state_text, const char *tail, int line,
			 const char *needle)
{
	char where[32];

	assert_int_equal(load(e, state_text, tail), CONFIG_ERR_INVALID);
	assert_non_null(e->err);
	snprintf(where, sizeof(where), ":%d:", line);
	if (strstr(e->err, where) == NULL || strstr(e->err, needle) == NULL)
		fail_msg("expected line %d and \"%s\" in: %s", line, needle, e->err);
}

static void test_full(void **state)
{
	struct env *e = *state;
	const struct config *c;

	assert_int_equal(load(e, NULL,
			      "dns:\n"
			      "  listen: [\"127.0.0.1:0\"]\n"
			      "  nameservers:\n"
			      "    - name: NS1.iotregistry.test.\n"
			      "      addresses: [\"127.0.0.1\", \"::1\"]\n"
			      "    - name: ns.example.net.\n"
			      "  tsig-keys:\n"
			      "    - name: Xfr-Key.\n"
			      "      algorithm: hmac-sha256\n"
			      "      secret-file: /abs/xfr.b64\n"
			      "    - name: other.\n"
			      "      algorithm: hmac-sha512\n"
			      "      secret-file: /abs/other.b64\n"
			      "  notify:\n"
			      "    - { address: \"192.0.2.1:5300\", key: xfr-key }\n"
			      "    - { address: \"192.0.2.2\" }\n"
			      "  allow-transfer:\n"
			      "    - \"127.0.0.1\"\n"
			      "    - \"2001:db8::/32\"\n"),
			 CONFIG_OK);
	c = e->cfg;
	assert_int_equal(c->state.zone_file_interval, 60); /* the default */
	assert_int_equal(c->dns.n_listen, 1);
	assert_string_equal(c->dns.listen[0], "127.0.0.1:0");
	assert_int_equal(c->dns.n_nameservers, 2);
	assert_string_equal(c->dns.nameservers[0].name, "ns1.iotregistry.test.");
	assert_int_equal(c->dns.nameservers[0].n_addresses, 2);
	assert_string_equal(c->dns.nameservers[0].addresses[1], "::1");
	assert_string_equal(c->dns.nameservers[1].name, "ns.example.net.");
	assert_int_equal(c->dns.nameservers[1].n_addresses, 0);
	assert_int_equal(c->dns.n_tsig_keys, 2);
	assert_string_equal(c->dns.tsig_keys[0].name, "xfr-key.");
	assert_string_equal(c->dns.tsig_keys[0].algorithm, "hmac-sha256");
	assert_string_equal(c->dns.tsig_keys[0].secret_file, "/abs/xfr.b64");
	assert_string_equal(c->dns.tsig_keys[1].algorithm, "hmac-sha512");
	assert_int_equal(c->dns.n_notify, 2);
	assert_string_equal(c->dns.notify[0], "192.0.2.1:5300");
	assert_string_equal(c->dns.notify_key[0], "xfr-key.");
	assert_null(c->dns.notify_key[1]);
	assert_int_equal(c->dns.n_allow_transfer, 2);
	assert_string_equal(c->dns.allow_transfer[1], "2001:db8::/32");
	assert_null(c->dns.allow_transfer_key[0]);
}

static void test_interval(void **state)
{
	struct env *e = *state;

	assert_int_equal(load(e,
			      "state:\n"
			      "  database: /abs/state/regsign.db\n"
			      "  audit-log: /abs/state/audit.jsonl\n"
			      "  zone-file: /abs/state/zone.db\n"
			      "  zone-file-interval: 5m\n", ""),
			 CONFIG_OK);
	assert_int_equal(e->cfg->state.zone_file_interval, 300);
	assert_int_equal(load(e,
			      "state:\n"
			      "  database: /abs/state/regsign.db\n"
			      "  audit-log: /abs/state/audit.jsonl\n"
			      "  zone-file: /abs/state/zone.db\n"
			      "  zone-file-interval: 0\n", ""),
			 CONFIG_OK);
	assert_int_equal(e->cfg->state.zone_file_interval, 0);
	expect_error(e,
		     "state:\n"
		     "  database: /abs/state/regsign.db\n"
		     "  audit-log: /abs/state/audit.jsonl\n"
		     "  zone-file: /abs/state/zone.db\n"
		     "  zone-file-interval: 2d\n", "", 21, "zone-file-interval");
}

static void test_errors(void **state)
{
	struct env *e = *state;

	/* Line numbers: head is 16 lines, state 4, so "dns:" is line 21. */
	expect_error(e, NULL,
		     "dns:\n"
		     "  notify:\n"
		     "    - { address: \"192.0.2.1\", key: nokey. }\n", 23, "not in dns.tsig-keys");
	expect_error(e, NULL,
		     "dns:\n"
		     "  tsig-keys:\n"
		     "    - name: k.\n"
		     "      algorithm: hmac-md5\n"
		     "      secret-file: /abs/k\n", 24, "algorithm");
	expect_error(e, NULL,
		     "dns:\n"
		     "  tsig-keys:\n"
		     "    - name: k.\n"
		     "      algorithm: hmac-sha256\n"
		     "      secret-file: relative/k\n", 25, "absolute path");
	expect_error(e, NULL,
		     "dns:\n"
		     "  tsig-keys:\n"
		     "    - name: key\n"
		     "      algorithm: hmac-sha256\n"
		     "      secret-file: /abs/k\n", 23, "absolute domain name");
	expect_error(e, NULL,
		     "dns:\n"
		     "  tsig-keys:\n"
		     "    - { name: k., algorithm: hmac-sha256, secret-file: /abs/k }\n"
		     "    - { name: K., algorithm: hmac-sha512, secret-file: /abs/l }\n", 24,
		     "listed twice");
	expect_error(e, NULL,
		     "dns:\n"
		     "  nameservers:\n"
		     "    - name: ns1.iotregistry.test.\n"
		     "      addresses: [\"127.0.0.1/8\"]\n", 24, "not an IPv4 or IPv6 address");
	expect_error(e, NULL,
		     "dns:\n"
		     "  nameservers:\n"
		     "    - { name: ns1.example. }\n"
		     "    - { name: NS1.example. }\n", 24, "listed twice");
	expect_error(e, NULL,
		     "dns:\n"
		     "  nameservers: []\n", 22, "nameservers");
	expect_error(e, NULL,
		     "dns:\n"
		     "  allow-transfer:\n"
		     "    - { address: \"127.0.0.1\", kee: x. }\n", 23, "kee");
	/* One list is all strings or all maps. */
	expect_error(e, NULL,
		     "dns:\n"
		     "  allow-transfer:\n"
		     "    - { address: \"127.0.0.1\" }\n"
		     "    - \"::1\"\n", 24, "allow-transfer");
	/* Port 0 is for listeners only. */
	expect_error(e, NULL,
		     "dns:\n"
		     "  notify: [\"192.0.2.1:0\"]\n", 22, "address:port");
}

static void test_caller_profiles(void **state)
{
	static const char pol_text[] =
		"version: 1\n"
		"zone:\n"
		"  name: iotregistry.test.\n"
		"profiles:\n"
		"  device:\n"
		"    key-algorithms: [ec-p256]\n"
		"    validity: 365d\n"
		"  short:\n"
		"    key-algorithms: [ec-p256]\n"
		"    validity: 30d\n"
		"callers:\n"
		"  - name: fe\n"
		"    uid: 1000\n"
		"    operations: [issue]\n"
		"    profiles: [short, device]\n"
		"  - name: ops\n"
		"    uid: 1001\n"
		"    operations: [status]\n";
	struct policy *pol = NULL;
	char err[512];
	const struct policy_caller *fe, *ops;

	(void)state;
	if (policy_parse("policy.yaml", pol_text, strlen(pol_text), &pol, err, sizeof(err)) != 0)
		fail_msg("policy: %s", err);
	fe = policy_caller_by_name(pol, "fe");
	ops = policy_caller_by_name(pol, "ops");
	assert_non_null(fe);
	assert_non_null(ops);
	assert_string_equal(policy_caller_profile(fe, 0)->name, "short");
	assert_string_equal(policy_caller_profile(fe, 1)->name, "device");
	assert_null(policy_caller_profile(fe, 2));
	assert_null(policy_caller_profile(ops, 0));
	assert_null(policy_caller_profile(NULL, 0));
	policy_free(pol);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_full, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interval, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
		cmocka_unit_test(test_caller_profiles),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
