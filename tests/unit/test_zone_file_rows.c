/*
 * zone_rows.h: the zone file written from stored rows (as the daemon's
 * file thread reads them from the store) is byte for byte the file
 * zone_file_write() writes from the zone in memory, and passes
 * ldns-verify-zone; a row that does not parse, rows out of order or a
 * missing apex fail the write with an error that names the row, and the
 * file already at the path stays as it was.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <dirent.h>

#include <cmocka.h>

#include "tests/unit/test_zone_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_err.h"
#include "zonesigner/zone_file.h"
#include "zonesigner/zone_rows.h"

/* One stored row: 'n' + the zone key (as zonepub stores it), and the blob. */
struct row {
	uint8_t *key;
	size_t klen;
	uint8_t *blob;
	size_t blen;
};

struct rows {
	struct row *v;
	size_t n, cap;
};

static int collect(void *ctx, const uint8_t *key, size_t keylen, const uint8_t *blob,
		   size_t len)
{
	struct rows *rs = ctx;
	struct row *r;

	if (rs->n == rs->cap) {
		rs->cap = rs->cap ? rs->cap * 2 : 1024;
		rs->v = realloc(rs->v, rs->cap * sizeof(*rs->v));
		assert_non_null(rs->v);
	}
	r = &rs->v[rs->n++];
	r->klen = keylen + 1;
	r->key = malloc(r->klen);
	r->blob = malloc(len);
	assert_non_null(r->key);
	assert_non_null(r->blob);
	r->key[0] = 'n';
	if (keylen > 0)
		memcpy(r->key + 1, key, keylen);
	memcpy(r->blob, blob, len);
	r->blen = len;
	return 0;
}

static void rows_free(struct rows *rs)
{
	for (size_t i = 0; i < rs->n; i++) {
		free(rs->v[i].key);
		free(rs->v[i].blob);
	}
	free(rs->v);
	memset(rs, 0, sizeof(*rs));
}

/* SQLite's order of BLOB keys: memcmp, the shorter first on a tie. */
static int row_cmp(const void *a, const void *b)
{
	const struct row *x = a, *y = b;
	size_t m = x->klen < y->klen ? x->klen : y->klen;
	int c = memcmp(x->key, y->key, m);

	if (c != 0)
		return c;
	return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* The rows of @p z as the store returns them: exported, shuffled, sorted
 * by key bytes (not taken in the tree's order). */
static void rows_of(const struct zone *z, struct rows *rs)
{
	uint32_t x = 0x9e3779b9;

	memset(rs, 0, sizeof(*rs));
	assert_int_equal(zone_export_foreach(z, collect, rs), 0);
	for (size_t i = rs->n; i > 1; i--) {
		struct row t;
		size_t j;
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		j = x % i;
		t = rs->v[i - 1];
		rs->v[i - 1] = rs->v[j];
		rs->v[j] = t;
	}
	qsort(rs->v, rs->n, sizeof(*rs->v), row_cmp);
}

/* Stream rows [0, n) into @p path; returns the first error (0 if none). */
static int write_rows(const struct zone *shape, const struct row *v, size_t n,
		      const char *path, char *err, size_t errlen, uint32_t *serial)
{
	struct zone_rows *w = NULL;
	int r = zone_rows_open(shape, path, &w);

	assert_int_equal(r, 0);
	for (size_t i = 0; r == 0 && i < n; i++)
		r = zone_rows_add(w, v[i].key + 1, v[i].klen - 1, v[i].blob, v[i].blen);
	if (r == 0)
		r = zone_rows_finish(w);
	if (serial)
		*serial = zone_rows_serial(w);
	snprintf(err, errlen, "%s", zone_rows_error(w));
	zone_rows_free(w);
	return r;
}

/* Devices of every style, then a later version: revocations, new devices,
 * more apex NS, addresses, MX and a TXT record (left to ldns). The zone
 * refuses delegations (NS below the apex, DS), so there are none. */
static struct zone *make_zone(struct tzs_fix *fx, uint8_t **ca, size_t *calen)
{
	enum { N = 3000 };
	struct zone_device *d = calloc(N + 40, sizeof(*d));
	char (*ids)[24] = calloc(N + 40, 24);
	uint8_t (*h)[32] = calloc(N + 40, 32);
	static const char *const extra[] = {
		"iotregistry.test. 3600 IN NS ns3.example.net.",
		"iotregistry.test. 3600 IN NS ns4.example.org.",
		"www.iotregistry.test. 300 IN A 192.0.2.10",
		"www.iotregistry.test. 300 IN AAAA 2001:db8::10",
		"iotregistry.test. 300 IN MX 10 mail.example.net.",
		"info.iotregistry.test. 300 IN TXT \"registry \\\"front\\\" end\" \"v=1\"",
	};
	struct zone_change *c = NULL;
	struct zone_diff *diff = NULL;
	struct zone *z;

	assert_non_null(d);
	assert_non_null(ids);
	assert_non_null(h);
	*ca = tzs_cert_new("rows test CA", calen);
	z = tzs_zone_new(&fx->s, *ca, *calen);
	for (size_t i = 0; i < N + 40; i++) {
		snprintf(ids[i], sizeof(ids[i]), "%018zx", i * 7919 + 3);
		memset(h[i], (int)(i * 31), 32);
		d[i].id = ids[i];
		d[i].index = 1 + (uint32_t)(i % 3);
		d[i].styles = i % 3 == 0 ? ZONE_STYLE_SEED
			      : i % 3 == 1 ? (ZONE_STYLE_SEED | ZONE_STYLE_DANCE) : ZONE_STYLE_DANCE;
		d[i].cert_sha256 = h[i];
		d[i].spki_sha256 = h[i];
	}
	assert_int_equal(zone_bulk_import(z, d, N, fx->now, tzs_sign, &fx->s, 512), 0);
	assert_int_equal(zone_change_begin(z, &c), 0);
	for (size_t i = 0; i < 60; i++)
		assert_int_equal(zone_change_device_remove(c, ids[i * 37], d[i * 37].index), 0);
	for (size_t i = N; i < N + 40; i++)
		assert_int_equal(zone_change_device_add(c, &d[i]), 0);
	for (size_t i = 0; i < sizeof(extra) / sizeof(extra[0]); i++) {
		ldns_rr *rr = NULL;
		assert_int_equal(ldns_rr_new_frm_str(&rr, extra[i], 0, NULL, NULL), LDNS_STATUS_OK);
		assert_int_equal(zone_change_rr_add(c, rr), 0);
		ldns_rr_free(rr);
	}
	assert_int_equal(zone_change_commit(c, fx->now, tzs_sign, &fx->s, &diff), 0);
	zone_change_free(c);
	zone_diff_free(diff);
	free(d);
	free(ids);
	free(h);
	return z;
}

/* Only @p keep is left in @p dir: no temporary file of a failed write. */
static void assert_only_file(const char *dir, const char *keep)
{
	DIR *dd = opendir(dir);
	struct dirent *e;

	assert_non_null(dd);
	while ((e = readdir(dd)) != NULL) {
		if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
			continue;
		if (strcmp(e->d_name, keep) != 0)
			fail_msg("unexpected file left in %s: %s", dir, e->d_name);
	}
	closedir(dd);
}

/* The file from the rows equals zone_file_write()'s, from an empty zone of
 * the same parameters (no tree), and verifies. */
static void test_rows_equal_zone_file(void **state)
{
	struct tzs_fix *fx = *state;
	char *dir = tzs_tmpdir(), a[512], b[512], err[ZONE_ROWS_ERR_MAX];
	uint8_t *ca = NULL;
	size_t calen = 0;
	struct zone *shape;
	struct rows rs;
	uint32_t serial = 0;
	char *text;

	fx->z = make_zone(fx, &ca, &calen);
	shape = tzs_zone_new(&fx->s, ca, calen);
	assert_int_equal(zone_names(shape), 0);
	rows_of(fx->z, &rs);
	assert_int_equal(rs.n, zone_names(fx->z));
	assert_true(rs.n > 3000);
	snprintf(a, sizeof(a), "%s/memory.zone", dir);
	snprintf(b, sizeof(b), "%s/rows.zone", dir);
	assert_int_equal(zone_file_write(fx->z, a), 0);
	assert_int_equal(write_rows(shape, rs.v, rs.n, b, err, sizeof(err), &serial), 0);
	assert_string_equal(err, "");
	assert_int_equal(serial, zone_serial(fx->z));
	tzs_assert_same_file(a, b);
	text = tzs_slurp(b);
	/* What the zone holds is in it: the apex NS added, the TXT left to
	 * ldns, DANCE and seed records, the CA at the apex. */
	assert_non_null(strstr(text, "iotregistry.test.\t3600\tIN\tNS\tns4.example.org.\n"));
	assert_non_null(strstr(text, "\tTXT\t"));
	assert_non_null(strstr(text, "\tTLSA\t"));
	assert_non_null(strstr(text, "\tCERT\t"));
	free(text);
	tzs_verify_zone_file(b);
	rows_free(&rs);
	zone_free(shape);
	OPENSSL_free(ca);
	tzs_rmtree(dir);
	free(dir);
}

/* A row that does not parse, rows out of order, a first row that is not
 * the apex, no rows at all: each fails naming the row, and the file at the
 * path is the old one, with no temporary file left. */
static void test_rows_errors(void **state)
{
	struct tzs_fix *fx = *state;
	char *dir = tzs_tmpdir(), path[512], err[ZONE_ROWS_ERR_MAX], *old, *now;
	uint8_t *ca = NULL;
	size_t calen = 0, bad;
	struct zone *shape;
	struct rows rs;
	struct row t;
	FILE *f;

	fx->z = make_zone(fx, &ca, &calen);
	shape = tzs_zone_new(&fx->s, ca, calen);
	rows_of(fx->z, &rs);
	snprintf(path, sizeof(path), "%s/zone", dir);
	f = fopen(path, "w");
	assert_non_null(f);
	fputs("; the old zone file\n", f);
	fclose(f);
	old = tzs_slurp(path);

	/* A blob cut short in the middle of an RRset. */
	bad = 1234;
	rs.v[bad].blen -= 7;
	assert_int_equal(write_rows(shape, rs.v, rs.n, path, err, sizeof(err), NULL),
			 ZONE_EFORMAT);
	assert_non_null(strstr(err, "row 1235 ("));
	assert_non_null(strstr(err, ".iotregistry.test.)"));
	assert_non_null(strstr(err, "does not parse"));
	rs.v[bad].blen += 7;
	/* An unknown version byte. */
	rs.v[bad].blob[0] = 0x7f;
	assert_int_equal(write_rows(shape, rs.v, rs.n, path, err, sizeof(err), NULL),
			 ZONE_EFORMAT);
	assert_non_null(strstr(err, "row 1235 ("));
	rs.v[bad].blob[0] = 1;
	/* Out of order. */
	t = rs.v[10];
	rs.v[10] = rs.v[11];
	rs.v[11] = t;
	assert_int_equal(write_rows(shape, rs.v, rs.n, path, err, sizeof(err), NULL),
			 ZONE_EFORMAT);
	assert_non_null(strstr(err, "row 12 ("));
	assert_non_null(strstr(err, "out of canonical order"));
	t = rs.v[10];
	rs.v[10] = rs.v[11];
	rs.v[11] = t;
	/* No apex. */
	assert_int_equal(write_rows(shape, rs.v + 1, rs.n - 1, path, err, sizeof(err), NULL),
			 ZONE_EFORMAT);
	assert_non_null(strstr(err, "row 1 ("));
	assert_non_null(strstr(err, "not the apex"));
	/* No rows. */
	assert_int_equal(write_rows(shape, rs.v, 0, path, err, sizeof(err), NULL), ZONE_EFORMAT);
	assert_non_null(strstr(err, "no rows"));

	now = tzs_slurp(path);
	assert_string_equal(old, now);
	assert_only_file(dir, "zone");
	/* And the same rows, repaired, replace it. */
	assert_int_equal(write_rows(shape, rs.v, rs.n, path, err, sizeof(err), NULL), 0);
	assert_only_file(dir, "zone");
	tzs_verify_zone_file(path);
	free(old);
	free(now);
	rows_free(&rs);
	zone_free(shape);
	OPENSSL_free(ca);
	tzs_rmtree(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rows_equal_zone_file, tzs_fix_setup,
						tzs_fix_teardown),
		cmocka_unit_test_setup_teardown(test_rows_errors, tzs_fix_setup, tzs_fix_teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
