/*
 * Tests of change sets (zonesigner/zone_change.h): the first version, device
 * additions and removals with the exact number of signatures each needs, the
 * result verified by ldns-verify-zone and BIND's dnssec-verify, a failed
 * signing leaving the zone untouched, PUBLISH refusals.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "test_zone_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

struct fix {
	struct tzs_signer s;
	struct zone *z;
	char *dir;
	int64_t now;
	uint8_t *ca;
	size_t calen;
};

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	tzs_signer_init(&f->s);
	f->ca = tzs_cert_new("Registry Issuing CA", &f->calen);
	f->z = tzs_zone_new(&f->s, f->ca, f->calen);
	f->dir = tzs_tmpdir();
	f->now = (int64_t)time(NULL);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	zone_free(f->z);
	tzs_signer_free(&f->s);
	tzs_rmtree(f->dir);
	free(f->dir);
	OPENSSL_free(f->ca);
	free(f);
	return 0;
}

static void hash_of(const char *s, uint8_t out[32])
{
	unsigned int n = 0;

	assert_int_equal(EVP_Digest(s, strlen(s), out, &n, EVP_sha256(), NULL), 1);
}

/* Commit one change; returns its diff (caller frees) and checks the signer was called once. */
static struct zone_diff *commit(struct fix *f, struct zone_change *c)
{
	struct zone_diff *d = NULL;
	size_t calls = f->s.calls;

	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	assert_non_null(d);
	assert_int_equal(f->s.calls, calls + 1);
	assert_int_equal(zone_diff_signatures(d), f->s.last);
	zone_change_free(c);
	return d;
}

static size_t add_device(struct fix *f, const char *id, uint32_t idx, unsigned styles)
{
	struct zone_change *c = NULL;
	struct zone_device dev = { 0 };
	uint8_t h[32], spki[32];
	struct zone_diff *d;
	size_t n;

	hash_of(id, h);
	hash_of("spki", spki);
	dev.id = id;
	dev.index = idx;
	dev.styles = styles;
	dev.cert_sha256 = h;
	dev.spki_sha256 = spki;
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_device_add(c, &dev), 0);
	d = commit(f, c);
	n = zone_diff_signatures(d);
	zone_diff_free(d);
	return n;
}

static size_t remove_device(struct fix *f, const char *id, uint32_t idx)
{
	struct zone_change *c = NULL;
	struct zone_diff *d;
	size_t n;

	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_device_remove(c, id, idx), 0);
	d = commit(f, c);
	n = zone_diff_signatures(d);
	zone_diff_free(d);
	return n;
}

static void init_zone(struct fix *f)
{
	struct zone_change *c = NULL;
	struct zone_diff *d;

	assert_int_equal(zone_serial(f->z), 0);
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	d = commit(f, c);
	/* SOA, NS, DNSKEY (KSK), the CA's CERT and the apex NSEC. */
	assert_int_equal(zone_diff_signatures(d), 5);
	assert_int_equal(zone_diff_serial_from(d), 0);
	assert_int_equal(zone_diff_serial_to(d), 1);
	assert_int_equal(zone_serial(f->z), 1);
	zone_diff_free(d);
}

static void test_first_version_and_devices(void **state)
{
	struct fix *f = *state;

	init_zone(f);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, f->dir, "apex.zone");
	/* seed: CERT + its NSEC + the predecessor's NSEC + SOA. */
	assert_int_equal(add_device(f, "8912230200031010008f", 1, ZONE_STYLE_SEED), 4);
	assert_int_equal(add_device(f, "8912230200031010008F", 2, ZONE_STYLE_SEED), 4);
	/* seed + dance: CERT, TLSA, two NSECs, predecessor NSEC, SOA. */
	assert_int_equal(add_device(f, "00aa", 7, ZONE_STYLE_SEED | ZONE_STYLE_DANCE), 6);
	/* dance only: <n>.<id> stays an empty non-terminal without NSEC. */
	assert_int_equal(add_device(f, "00ab", 1, ZONE_STYLE_DANCE), 4);
	assert_int_equal(zone_names(f->z), 6);
	assert_int_equal(zone_serial(f->z), 5);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, f->dir, "devices.zone");
	/* Removal: the predecessor's NSEC and the SOA. */
	assert_int_equal(remove_device(f, "8912230200031010008f", 2), 2);
	/* Removing a device removes the names below it too. */
	assert_int_equal(remove_device(f, "00aa", 7), 2);
	assert_int_equal(remove_device(f, "00ab", 1), 2);
	assert_int_equal(zone_names(f->z), 2);
	/* The only device: the predecessor is the apex. */
	assert_int_equal(remove_device(f, "8912230200031010008f", 1), 2);
	assert_int_equal(zone_names(f->z), 1);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, f->dir, "empty-again.zone");
}

static void test_group_commit(void **state)
{
	struct fix *f = *state;
	struct zone_change *c = NULL;
	struct zone_device dev = { 0 };
	uint8_t h[32];
	struct zone_diff *d;
	char id[32];

	init_zone(f);
	hash_of("x", h);
	dev.styles = ZONE_STYLE_SEED;
	dev.cert_sha256 = h;
	dev.index = 1;
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	/* A second change cannot be opened while one is. */
	struct zone_change *c2 = NULL;
	assert_int_equal(zone_change_begin(f->z, &c2), ZONE_ESTATE);
	for (int i = 0; i < 10; i++) {
		snprintf(id, sizeof(id), "%020x", i * 7919);
		dev.id = id;
		assert_int_equal(zone_change_device_add(c, &dev), 0);
	}
	/* A refused request has no effect on the others. */
	dev.id = "0000000000000000000";
	dev.id = id;
	assert_int_equal(zone_change_device_add(c, &dev), ZONE_EEXIST);
	dev.id = "not-hex";
	assert_int_equal(zone_change_device_add(c, &dev), ZONE_EINVAL);
	dev.id = "abc";
	dev.index = 0;
	assert_int_equal(zone_change_device_add(c, &dev), ZONE_EINVAL);
	dev.index = 1;
	dev.styles = ZONE_STYLE_SEED | ZONE_STYLE_CERT_PKIX;
	assert_int_equal(zone_change_device_add(c, &dev), ZONE_EINVAL);
	assert_int_equal(zone_change_device_remove(c, "abcd", 3), ZONE_ENOENT);
	d = commit(f, c);
	/* 10 CERTs + 10 NSECs + the apex NSEC (its next changed) + one SOA. */
	assert_int_equal(zone_diff_signatures(d), 22);
	assert_int_equal(zone_diff_serial_to(d), 2);
	zone_diff_free(d);
	assert_int_equal(zone_names(f->z), 11);
	tzs_verify_zone(f->z, f->dir, "group.zone");
}

static void test_sign_failure_leaves_zone(void **state)
{
	struct fix *f = *state;
	struct zone_change *c = NULL;
	struct zone_device dev = { 0 };
	uint8_t h[32];
	struct zone_diff *d = NULL;
	char *before, *after;

	init_zone(f);
	assert_int_equal(add_device(f, "aaaa", 1, ZONE_STYLE_SEED), 4);
	before = tzs_zone_text(f->z);
	hash_of("y", h);
	dev.id = "bbbb";
	dev.index = 1;
	dev.styles = ZONE_STYLE_SEED | ZONE_STYLE_DANCE;
	dev.cert_sha256 = h;
	dev.spki_sha256 = h;
	assert_int_equal(zone_change_begin(f->z, &c), 0);
	assert_int_equal(zone_change_device_add(c, &dev), 0);
	assert_int_equal(zone_change_device_remove(c, "aaaa", 1), 0);
	f->s.fail = 1;
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), ZONE_ESIGN);
	assert_null(d);
	/* The change is spent. */
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), ZONE_ESTATE);
	zone_change_free(c);
	after = tzs_zone_text(f->z);
	assert_string_equal(before, after);
	assert_int_equal(zone_serial(f->z), 2);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	/* And the zone still takes changes. */
	assert_int_equal(add_device(f, "bbbb", 1, ZONE_STYLE_SEED), 4);
	assert_int_equal(zone_serial(f->z), 3);
	free(before);
	free(after);
}

static ldns_rr *rr_of(const char *s)
{
	ldns_rr *rr = NULL;

	assert_int_equal(ldns_rr_new_frm_str(&rr, s, 3600, NULL, NULL), LDNS_STATUS_OK);
	return rr;
}

static int try_add(struct fix *f, const char *s)
{
	struct zone_change *c = NULL;
	ldns_rr *rr = rr_of(s);
	int r;

	assert_int_equal(zone_change_begin(f->z, &c), 0);
	r = zone_change_rr_add(c, rr);
	if (r == 0) {
		struct zone_diff *d = commit(f, c);
		zone_diff_free(d);
	} else {
		zone_change_free(c);
	}
	ldns_rr_free(rr);
	return r;
}

static int try_remove(struct fix *f, const char *s)
{
	struct zone_change *c = NULL;
	ldns_rr *rr = rr_of(s);
	int r;

	assert_int_equal(zone_change_begin(f->z, &c), 0);
	r = zone_change_rr_remove(c, rr);
	if (r == 0) {
		struct zone_diff *d = commit(f, c);
		zone_diff_free(d);
	} else {
		zone_change_free(c);
	}
	ldns_rr_free(rr);
	return r;
}

static void test_publish(void **state)
{
	struct fix *f = *state;

	init_zone(f);
	assert_int_equal(try_add(f, "ns1.iotregistry.test. 3600 IN A 127.0.0.1"), 0);
	assert_int_equal(try_add(f, "NS1.iotregistry.test. 3600 IN A 127.0.0.1"), ZONE_EEXIST);
	assert_int_equal(try_add(f, "ns1.iotregistry.test. 3600 IN AAAA ::1"), 0);
	assert_int_equal(try_add(f, "iotregistry.test. 3600 IN TXT \"registry\""), 0);
	assert_int_equal(try_add(f, "_443._tcp.api.iotregistry.test. 3600 IN TLSA 3 1 1 "
				    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"), 0);
	/* Refusals: outside, reserved device namespace, managed types, delegations, CNAME. */
	assert_int_equal(try_add(f, "www.example.com. 3600 IN A 192.0.2.1"), ZONE_EINVAL);
	assert_int_equal(try_add(f, "1.abcdef.iotregistry.test. 3600 IN A 192.0.2.1"),
			 ZONE_ERESERVED);
	assert_int_equal(try_add(f, "abcdef.iotregistry.test. 3600 IN A 192.0.2.1"),
			 ZONE_ERESERVED);
	assert_int_equal(try_add(f, "iotregistry.test. 3600 IN SOA a. b. 1 2 3 4 5"), ZONE_EINVAL);
	assert_int_equal(try_add(f, "sub.iotregistry.test. 3600 IN NS ns.example.com."),
			 ZONE_EINVAL);
	assert_int_equal(try_add(f, "ns1.iotregistry.test. 3600 IN CNAME x.example.com."),
			 ZONE_EINVAL);
	assert_int_equal(try_add(f, "iotregistry.test. 3600 IN NSEC a.iotregistry.test. A"),
			 ZONE_EINVAL);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, f->dir, "publish.zone");
	/* UNPUBLISH: the AAAA goes, the zone's own keys and last NS cannot. */
	assert_int_equal(try_remove(f, "ns1.iotregistry.test. 3600 IN AAAA ::1"), 0);
	assert_int_equal(try_remove(f, "ns1.iotregistry.test. 3600 IN AAAA ::1"), ZONE_ENOENT);
	assert_int_equal(try_remove(f, "iotregistry.test. 3600 IN NS ns1.iotregistry.test."),
			 ZONE_EINVAL);
	assert_int_equal(try_remove(f, "ns1.iotregistry.test. 3600 IN A 127.0.0.1"), 0);
	assert_int_equal(try_remove(f, "nothere.iotregistry.test. 3600 IN A 127.0.0.1"),
			 ZONE_ENOENT);
	assert_int_equal(zone_check(f->z, f->now, true), 0);
	tzs_verify_zone(f->z, f->dir, "unpublish.zone");
}

static void test_file_and_names(void **state)
{
	struct fix *f = *state;
	char path[512], *text, *cmd = NULL, *out = NULL;
	ldns_rr_list *l = NULL;

	init_zone(f);
	assert_int_equal(add_device(f, "abc", 1, ZONE_STYLE_SEED | ZONE_STYLE_DANCE), 6);
	/* The file replaces what was there, atomically, leaving no temporary. */
	snprintf(path, sizeof(path), "%s/zone.db", f->dir);
	FILE *old = fopen(path, "w");
	assert_non_null(old);
	fputs("garbage\n", old);
	fclose(old);
	assert_int_equal(zone_file_write(f->z, path), 0);
	text = tzs_slurp(path);
	assert_non_null(text);
	assert_non_null(strstr(text, "1.abc.iotregistry.test.\t300\tIN\tCERT\t"));
	assert_non_null(strstr(text, "_device.1.abc.iotregistry.test.\t300\tIN\tTLSA\t3 1 1 "));
	assert_null(strstr(text, "garbage"));
	/* ldns reads the file back as a zone with the same RR count. */
	assert_true(asprintf(&cmd, "ls -A '%s'", f->dir) > 0);
	assert_int_equal(tzs_run(cmd, &out), 0);
	assert_string_equal(out, "zone.db\n");
	free(cmd);
	free(out);
	free(text);
	/* The resumable walk gives exactly the RRs of the full iteration. */
	char *all = tzs_zone_text(f->z);
	struct zone_cursor *cur = NULL;
	ldns_rr_list *acc = ldns_rr_list_new();
	bool done = false;
	int rounds = 0;
	assert_int_equal(zone_cursor_new(f->z, &cur), 0);
	while (!done) {
		assert_int_equal(zone_cursor_next(cur, f->z, 2, acc, &done), 0);
		rounds++;
	}
	assert_int_equal(rounds, 2);  /* apex, 1.abc | _device.1.abc */
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(acc, 0)), LDNS_RR_TYPE_SOA);
	size_t total = 0;
	for (const char *p = all; *p; p++)
		total += *p == '\n';
	assert_int_equal(ldns_rr_list_rr_count(acc), total);
	ldns_rr_list_deep_free(acc);
	zone_cursor_free(cur);
	/* A new serial in the middle of a walk makes it restart. */
	acc = ldns_rr_list_new();
	assert_int_equal(zone_cursor_new(f->z, &cur), 0);
	assert_int_equal(zone_cursor_next(cur, f->z, 1, acc, &done), 0);
	assert_false(done);
	assert_int_equal(add_device(f, "abd", 1, ZONE_STYLE_SEED), 4);
	assert_int_equal(zone_cursor_next(cur, f->z, 1, acc, &done), ZONE_ESTATE);
	zone_cursor_free(cur);
	ldns_rr_list_deep_free(acc);
	free(all);
	/* A directory that does not exist: an I/O error, nothing written. */
	snprintf(path, sizeof(path), "%s/nodir/zone.db", f->dir);
	assert_int_equal(zone_file_write(f->z, path), ZONE_EIO);
	/* One name's RRs: the CERT, its RRSIG, the NSEC to the TLSA name and its RRSIG. */
	assert_int_equal(zone_name_rrs(f->z, "1.ABC.iotregistry.test.", &l), 0);
	assert_int_equal(ldns_rr_list_rr_count(l), 4);
	for (size_t i = 0; i < 4; i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC) {
			char *next = ldns_rdf2str(ldns_rr_rdf(rr, 0));
			assert_string_equal(next, "_device.1.abc.iotregistry.test.");
			free(next);
		}
	}
	ldns_rr_list_deep_free(l);
	/* The empty non-terminal and a missing name have nothing; outside is refused. */
	assert_int_equal(zone_name_rrs(f->z, "abc.iotregistry.test.", &l), 0);
	assert_int_equal(ldns_rr_list_rr_count(l), 0);
	ldns_rr_list_deep_free(l);
	assert_int_equal(zone_name_rrs(f->z, "example.com.", &l), ZONE_EINVAL);
	/* The device's owner name as the certificate carries it. */
	char owner[256];
	assert_int_equal(zone_device_owner(f->z, "8912230200031010008F", 1, owner, sizeof(owner)), 0);
	assert_string_equal(owner, "1.8912230200031010008f.iotregistry.test.");
	assert_int_equal(zone_device_owner(f->z, "abc", 1, owner, 10), ZONE_ERANGE);
	assert_int_equal(zone_device_owner(f->z, "xyz", 1, owner, sizeof(owner)), ZONE_EINVAL);
	assert_string_equal(zone_strerror(ZONE_ESIGN), "signing failed");
	assert_string_equal(zone_strerror(12345), "unknown zone error");
}

static void test_params(void **state)
{
	struct fix *f = *state;
	struct zone_params p;
	struct zone *z = NULL;

	zone_params_init(&p);
	assert_int_equal(zone_dnskey_from_pkey(f->s.ksk, ZONE_DNSKEY_FLAGS_KSK, &p.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(f->s.zsk, ZONE_DNSKEY_FLAGS_ZSK, &p.zsk), 0);
	/* Refused: relative origin, refresh not below validity, swapped key roles. */
	p.origin = "relative";
	assert_int_equal(zone_new(&p, &z), ZONE_EINVAL);
	p.origin = "iotregistry.test.";
	p.device_refresh = p.device_validity;
	assert_int_equal(zone_new(&p, &z), ZONE_EINVAL);
	p.device_refresh = 3 * 3600;
	struct zone_dnskey k = p.ksk;
	p.ksk = p.zsk;
	p.zsk = k;
	assert_int_equal(zone_new(&p, &z), ZONE_EINVAL);
	p.zsk = p.ksk;
	p.ksk = k;
	p.dance_prefix = "a.b";
	assert_int_equal(zone_new(&p, &z), ZONE_EINVAL);
	assert_null(z);
	/* Unixtime serials, several NS, a start serial just below the wrap. */
	p.dance_prefix = "_dane";
	static const char *const ns[] = { "ns1", "ns2.example.net." };
	p.ns = ns;
	p.n_ns = 2;
	p.serial_policy = ZONE_SERIAL_UNIXTIME;
	p.initial_serial = 0xfffffffeu;
	assert_int_equal(zone_new(&p, &z), 0);
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	assert_int_equal(zone_change_begin(z, &c), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);
	assert_int_equal(zone_serial(z), 0xfffffffeu);
	/* The next serial is "now", which is after 0xfffffffe in serial arithmetic. */
	assert_int_equal(zone_change_begin(z, &c), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	assert_int_equal(zone_diff_serial_from(d), 0xfffffffeu);
	assert_int_equal(zone_diff_serial_to(d), (uint32_t)f->now);
	zone_diff_free(d);
	/* Twice in the same second: still increasing. */
	assert_int_equal(zone_change_begin(z, &c), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	assert_int_equal(zone_serial(z), (uint32_t)f->now + 1);
	zone_diff_free(d);
	ldns_rr_list *l = NULL;
	assert_int_equal(zone_name_rrs(z, "iotregistry.test.", &l), 0);
	size_t nsn = 0;
	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++)
		nsn += ldns_rr_get_type(ldns_rr_list_rr(l, i)) == LDNS_RR_TYPE_NS;
	assert_int_equal(nsn, 2);
	ldns_rr_list_deep_free(l);
	struct zone_device dev = { .id = "aa", .index = 1, .styles = ZONE_STYLE_DANCE,
				   .spki_sha256 = (const uint8_t *)"0123456789abcdef0123456789abcdef" };
	assert_int_equal(zone_change_begin(z, &c), 0);
	assert_int_equal(zone_change_device_add(c, &dev), 0);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);
	assert_int_equal(zone_name_rrs(z, "_dane.1.aa.iotregistry.test.", &l), 0);
	assert_int_equal(ldns_rr_list_rr_count(l), 4);
	ldns_rr_list_deep_free(l);
	assert_int_equal(zone_check(z, f->now, true), 0);
	zone_free(z);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_first_version_and_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_group_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_failure_leaves_zone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_publish, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_and_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_params, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
