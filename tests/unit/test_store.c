/*
 * Unit tests of signer/store: schema, certificates, idempotency, index
 * reuse, revocation, CRL counter, transactions, reopen, durability
 * settings, and fsync failures reported as their own error.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "signer/store.h"

struct fx {
	char dir[64];
	char path[96];
	store_t *st;
};

static int
rm_rf_dir(const char *dir)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd);
}

static int
setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/regsign-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/state.db", f->dir);
	assert_int_equal(store_open(&f->st, f->path, NULL), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	store_close(f->st);
	rm_rf_dir(f->dir);
	free(f);
	return 0;
}

static void
reopen(struct fx *f)
{
	store_close(f->st);
	f->st = NULL;
	assert_int_equal(store_open(&f->st, f->path, NULL), 0);
}

/* A certificate with recognisable contents derived from (device, index). */
static void
make_cert(struct store_cert *c, const char *device, uint32_t index, unsigned char serial0,
          unsigned char csr0)
{
	static unsigned char der[4][40];
	unsigned char *d = der[index % 4];
	memset(c, 0, sizeof(*c));
	snprintf(c->device, sizeof(c->device), "%s", device);
	c->index = index;
	memset(c->serial, serial0, 16);
	c->serial_len = 16;
	c->caller_uid = 1000;
	snprintf(c->caller_name, sizeof(c->caller_name), "frontend");
	memset(d, 0x30 + (int)index, 40);
	c->der = d;
	c->der_len = 40;
	memset(c->csr_sha256, csr0, 32);
	snprintf(c->profile, sizeof(c->profile), "device");
	c->not_before = 1000;
	c->not_after = 2000;
	c->issued_at = 1001;
}

static const char *DEV = "8912230200031010008f";

static void
test_schema_created(void **state)
{
	struct fx *f = *state;
	struct store_durability d;
	sqlite3 *db;
	sqlite3_stmt *s;
	const char *want[] = { "certs", "devices", "crl", "meta", "audit", "audit_open",
	                       "zone_names", "zone_meta", "ixfr_journal" };

	assert_int_equal(store_durability_get(f->st, &d), 0);
	assert_string_equal(d.journal_mode, "wal");
	assert_int_equal(d.synchronous, 2); /* FULL */
	assert_int_equal(d.user_version, STORE_SCHEMA_VERSION);

	/* The tables exist, seen from an independent connection. */
	assert_int_equal(sqlite3_open_v2(f->path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		assert_int_equal(sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_schema WHERE "
		                 "type = 'table' AND name = ?", -1, &s, NULL), SQLITE_OK);
		sqlite3_bind_text(s, 1, want[i], -1, SQLITE_STATIC);
		assert_int_equal(sqlite3_step(s), SQLITE_ROW);
		sqlite3_finalize(s);
	}
	/* The WAL mode is persistent in the file. */
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_string_equal((const char *)sqlite3_column_text(s, 0), "wal");
	sqlite3_finalize(s);
	sqlite3_close(db);

	/* Reopening keeps the version and the settings. */
	reopen(f);
	assert_int_equal(store_durability_get(f->st, &d), 0);
	assert_string_equal(d.journal_mode, "wal");
	assert_int_equal(d.synchronous, 2);
}

static void
test_foreign_and_newer_refused(void **state)
{
	struct fx *f = *state;
	char other[128], newer[128];
	store_t *st = NULL;
	sqlite3 *db;

	snprintf(other, sizeof(other), "%s/other.db", f->dir);
	assert_int_equal(sqlite3_open(other, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "CREATE TABLE foo(x)", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, other, NULL), STORE_ESCHEMA);
	assert_null(st);

	/* A database written by a newer regsign is left alone. */
	snprintf(newer, sizeof(newer), "%s/newer.db", f->dir);
	assert_int_equal(store_open(&st, newer, NULL), 0);
	store_close(st);
	st = NULL;
	assert_int_equal(sqlite3_open(newer, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(&st, newer, NULL), STORE_ESCHEMA);
	assert_null(st);

	/* Not a database at all. */
	FILE *fp = fopen(other, "w");
	assert_non_null(fp);
	fputs("this is not an SQLite database, just some text long enough to matter...\n", fp);
	fclose(fp);
	assert_true(store_open(&st, other, NULL) < 0);
	assert_null(st);
}

static void
test_insert_lookup(void **state)
{
	struct fx *f = *state;
	struct store_cert c, got;

	make_cert(&c, DEV, 1, 0x11, 0xa1);
	assert_int_equal(store_cert_insert(f->st, &c), 0);

	assert_int_equal(store_cert_get_by_index(f->st, DEV, 1, &got), 0);
	assert_string_equal(got.device, DEV);
	assert_int_equal(got.index, 1);
	assert_int_equal(got.serial_len, 16);
	assert_memory_equal(got.serial, c.serial, 16);
	assert_int_equal(got.status, STORE_CERT_VALID);
	assert_int_equal(got.der_len, 40);
	assert_memory_equal(got.der, c.der, 40);
	assert_memory_equal(got.csr_sha256, c.csr_sha256, 32);
	assert_string_equal(got.profile, "device");
	assert_string_equal(got.caller_name, "frontend");
	assert_int_equal(got.caller_uid, 1000);
	assert_int_equal(got.not_before, 1000);
	assert_int_equal(got.not_after, 2000);
	assert_int_equal(got.issued_at, 1001);
	store_cert_clear(&got);
	assert_null(got.der);

	assert_int_equal(store_cert_get_by_serial(f->st, c.serial, 16, &got), 0);
	assert_int_equal(got.index, 1);
	store_cert_clear(&got);

	assert_int_equal(store_cert_get_by_index(f->st, DEV, 2, &got), STORE_ENOTFOUND);
	assert_int_equal(store_cert_get_by_index(f->st, "00ff", 1, &got), STORE_ENOTFOUND);
	unsigned char other[16];
	memset(other, 0x12, sizeof(other));
	assert_int_equal(store_cert_get_by_serial(f->st, other, 16, &got), STORE_ENOTFOUND);
	assert_int_equal(store_serial_exists(f->st, c.serial, 16), 1);
	assert_int_equal(store_serial_exists(f->st, other, 16), 0);

	/* Bad input is refused before SQLite sees it. */
	make_cert(&c, "", 1, 0x13, 0xa1);
	assert_int_equal(store_cert_insert(f->st, &c), STORE_EINVAL);
	make_cert(&c, DEV, 0, 0x13, 0xa1);
	assert_int_equal(store_cert_insert(f->st, &c), STORE_EINVAL);
}

static int
count_cb(void *ctx, const struct store_cert *c)
{
	uint32_t *n = ctx;
	/* Certificates come in index order. */
	assert_int_equal(c->index, *n + 1);
	assert_non_null(c->der);
	(*n)++;
	return 0;
}

static void
test_idempotency_and_index_never_reused(void **state)
{
	struct fx *f = *state;
	struct store_cert c, got;
	struct store_device_info info;
	unsigned char csr[32];
	uint32_t n = 0;

	make_cert(&c, DEV, 1, 0x21, 0xa1);
	assert_int_equal(store_cert_insert(f->st, &c), 0);

	/* The same CSR again for the same index is a repeat: the same certificate. */
	memset(csr, 0xa1, sizeof(csr));
	assert_int_equal(store_cert_find_repeat(f->st, DEV, 1, csr, &got), 0);
	assert_memory_equal(got.serial, c.serial, 16);
	store_cert_clear(&got);
	/* Another CSR for a taken index is a conflict. */
	memset(csr, 0xb2, sizeof(csr));
	assert_int_equal(store_cert_find_repeat(f->st, DEV, 1, csr, &got), STORE_ECONFLICT);
	assert_int_equal(store_cert_find_repeat(f->st, DEV, 2, csr, &got), STORE_ENOTFOUND);

	/* Even after revocation, index 1 cannot be given again. */
	assert_int_equal(store_cert_revoke(f->st, c.serial, 16, 1500, 1, NULL), 0);
	make_cert(&c, DEV, 1, 0x22, 0xb2);
	assert_int_equal(store_cert_insert(f->st, &c), STORE_EEXISTS);
	assert_int_equal(store_serial_exists(f->st, c.serial, 16), 0);

	/* A serial is unique across devices. */
	make_cert(&c, "00aa", 1, 0x21, 0xa1);
	assert_int_equal(store_cert_insert(f->st, &c), STORE_EEXISTS);

	make_cert(&c, DEV, 2, 0x23, 0xb2);
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	make_cert(&c, DEV, 3, 0x24, 0xb3);
	c.not_after = 1200; /* expired at time 1500 */
	assert_int_equal(store_cert_insert(f->st, &c), 0);

	assert_int_equal(store_device_info_get(f->st, DEV, 1500, &info), 0);
	assert_int_equal(info.highest_index, 3);
	assert_int_equal(info.total, 3);
	assert_int_equal(info.live, 1); /* 1 revoked, 3 expired, 2 live */
	assert_int_equal(store_device_info_get(f->st, "0123", 1500, &info), 0);
	assert_int_equal(info.highest_index, 0);
	assert_int_equal(info.live, 0);

	assert_int_equal(store_cert_foreach_device(f->st, DEV, count_cb, &n), 0);
	assert_int_equal(n, 3);
}

struct revoked_list {
	int n;
	int64_t times[8];
	unsigned char first[8];
};

static int
revoked_cb(void *ctx, const struct store_revoked *r)
{
	struct revoked_list *l = ctx;
	assert_true(l->n < 8);
	assert_int_equal(r->serial_len, 16);
	l->times[l->n] = r->revoked_at;
	l->first[l->n] = r->serial[0];
	l->n++;
	return 0;
}

static void
test_revoke(void **state)
{
	struct fx *f = *state;
	struct store_cert c1, c2, got;
	struct revoked_list l = { 0 };

	make_cert(&c1, DEV, 1, 0x31, 0xa1);
	make_cert(&c2, DEV, 2, 0x32, 0xa2);
	assert_int_equal(store_cert_insert(f->st, &c1), 0);
	assert_int_equal(store_cert_insert(f->st, &c2), 0);

	assert_int_equal(store_cert_revoke(f->st, c2.serial, 16, 100, 4, &got), 0);
	assert_int_equal(got.status, STORE_CERT_REVOKED);
	assert_int_equal(got.revoked_at, 100);
	assert_int_equal(got.reason, 4);
	assert_int_equal(got.index, 2);
	store_cert_clear(&got);

	/* Revoking again answers as the first time and changes nothing. */
	assert_int_equal(store_cert_revoke(f->st, c2.serial, 16, 999, 1, &got), STORE_EALREADY);
	assert_int_equal(got.revoked_at, 100);
	assert_int_equal(got.reason, 4);
	store_cert_clear(&got);

	assert_int_equal(store_cert_revoke(f->st, c1.serial, 16, 50, 1, NULL), 0);
	unsigned char unknown[16];
	memset(unknown, 0x39, sizeof(unknown));
	assert_int_equal(store_cert_revoke(f->st, unknown, 16, 50, 1, NULL), STORE_ENOTFOUND);

	/* The CRL list is ordered by revocation time. */
	assert_int_equal(store_revoked_foreach(f->st, revoked_cb, &l), 0);
	assert_int_equal(l.n, 2);
	assert_int_equal(l.times[0], 50);
	assert_int_equal(l.first[0], 0x31);
	assert_int_equal(l.times[1], 100);
	assert_int_equal(l.first[1], 0x32);

	assert_int_equal(store_cert_get_by_index(f->st, DEV, 2, &got), 0);
	assert_int_equal(got.status, STORE_CERT_REVOKED);
	store_cert_clear(&got);
}

static void
test_crl(void **state)
{
	struct fx *f = *state;
	uint64_t n, num;
	int64_t tu;
	unsigned char *der = NULL;
	size_t len;
	const unsigned char crl[] = { 0x30, 0x03, 0x02, 0x01, 0x05 };

	assert_int_equal(store_crl_load(f->st, &num, &tu, &der, &len), STORE_ENOTFOUND);
	assert_int_equal(store_crl_number_next(f->st, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(store_crl_number_next(f->st, &n), 0);
	assert_int_equal(n, 2);
	assert_int_equal(store_crl_save(f->st, n, 777, crl, sizeof(crl)), 0);
	reopen(f);
	assert_int_equal(store_crl_number_next(f->st, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(store_crl_load(f->st, &num, &tu, &der, &len), 0);
	assert_int_equal(num, 2);
	assert_int_equal(tu, 777);
	assert_int_equal(len, sizeof(crl));
	assert_memory_equal(der, crl, sizeof(crl));
	free(der);

	/* A rolled-back increment is not used up. */
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_crl_number_next(f->st, &n), 0);
	assert_int_equal(n, 4);
	assert_int_equal(store_txn_rollback(f->st), 0);
	assert_int_equal(store_crl_number_next(f->st, &n), 0);
	assert_int_equal(n, 4);
}

struct hooks {
	int commits, rollbacks;
};

static void
on_commit(void *ctx)
{
	((struct hooks *)ctx)->commits++;
}

static void
on_rollback(void *ctx)
{
	((struct hooks *)ctx)->rollbacks++;
}

static void
test_rollback_leaves_nothing(void **state)
{
	struct fx *f = *state;
	struct store_cert c, got;
	struct store_device_info info;
	struct hooks h = { 0 };
	unsigned char *val = NULL;
	uint64_t cnt;
	size_t len;

	store_txn_hooks_set(f->st, on_commit, on_rollback, &h);
	make_cert(&c, DEV, 5, 0x41, 0xa1);
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_txn_begin(f->st), STORE_ETXN);
	assert_true(store_txn_active(f->st));
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	assert_int_equal(store_audit_append(f->st, 1, "{\"seq\":1}", 9), 0);
	assert_int_equal(store_audit_intent_open(f->st, 1), 0);
	assert_int_equal(store_meta_set(f->st, "k", "v", 1), 0);
	assert_int_equal(store_zone_put(f->st, "a", 1, "b", 1), 0);
	/* Visible inside the transaction... */
	assert_int_equal(store_cert_get_by_index(f->st, DEV, 5, NULL), 0);
	assert_int_equal(store_txn_rollback(f->st), 0);
	assert_false(store_txn_active(f->st));
	assert_int_equal(h.rollbacks, 1);
	assert_int_equal(h.commits, 0);

	/* ...and gone after the rollback, also after a reopen. */
	for (int round = 0; round < 2; round++) {
		assert_int_equal(store_cert_get_by_index(f->st, DEV, 5, &got), STORE_ENOTFOUND);
		assert_int_equal(store_serial_exists(f->st, c.serial, 16), 0);
		assert_int_equal(store_device_info_get(f->st, DEV, 0, &info), 0);
		assert_int_equal(info.highest_index, 0);
		assert_int_equal(store_audit_count(f->st, &cnt), 0);
		assert_int_equal(cnt, 0);
		assert_int_equal(store_audit_last(f->st, NULL, NULL, NULL), STORE_ENOTFOUND);
		assert_int_equal(store_meta_get(f->st, "k", &val, &len), STORE_ENOTFOUND);
		assert_int_equal(store_zone_delete(f->st, "a", 1), STORE_ENOTFOUND);
		if (round == 0) {
			reopen(f);
			store_txn_hooks_set(f->st, on_commit, on_rollback, &h);
		}
	}
	assert_int_equal(store_txn_commit(f->st), STORE_ETXN);
	assert_int_equal(store_txn_rollback(f->st), STORE_ETXN);

	/* A failed write in its own implicit transaction leaves nothing either,
	 * and a single write outside a transaction fires the commit hook. */
	h.commits = h.rollbacks = 0;
	make_cert(&c, DEV, 6, 0x42, 0xa1);
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	assert_int_equal(h.commits, 1);
	c.index = 7; /* same serial again */
	assert_int_equal(store_cert_insert(f->st, &c), STORE_EEXISTS);
	assert_int_equal(h.rollbacks, 1);
	assert_int_equal(store_device_info_get(f->st, DEV, 0, &info), 0);
	assert_int_equal(info.highest_index, 6);
}

static int
audit_cb(void *ctx, uint64_t seq, const char *line, size_t len)
{
	uint64_t *next = ctx;
	char want[32];
	assert_int_equal(seq, *next);
	snprintf(want, sizeof(want), "line %llu", (unsigned long long)seq);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(line, want, len);
	(*next)++;
	return 0;
}

static void
test_reopen_keeps_everything(void **state)
{
	struct fx *f = *state;
	struct store_cert c, got;
	unsigned char *val = NULL;
	uint64_t u, *seqs = NULL, next = 2;
	size_t len, n;
	char *line = NULL;

	make_cert(&c, DEV, 1, 0x51, 0xa1);
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	for (uint64_t s = 1; s <= 3; s++) {
		char l[32];
		snprintf(l, sizeof(l), "line %llu", (unsigned long long)s);
		assert_int_equal(store_audit_append(f->st, s, l, strlen(l)), 0);
	}
	assert_int_equal(store_audit_append(f->st, 3, "dup", 3), STORE_EEXISTS);
	assert_int_equal(store_audit_intent_open(f->st, 2), 0);
	assert_int_equal(store_audit_intent_open(f->st, 3), 0);
	assert_int_equal(store_meta_set(f->st, "policy.sha256", "abc", 3), 0);
	assert_int_equal(store_meta_set_u64(f->st, "zone.serial", 2024112701ULL), 0);
	assert_int_equal(store_zone_put(f->st, "\x01k", 2, "data", 4), 0);
	assert_int_equal(store_zone_meta_set(f->st, "serial", "7", 1), 0);
	assert_int_equal(store_journal_append(f->st, 1, 2, 10, "d12", 3), 0);
	assert_int_equal(store_journal_append(f->st, 2, 3, 11, "d23", 3), 0);
	assert_int_equal(store_journal_append(f->st, 3, 4, 12, "d34", 3), 0);
	assert_int_equal(store_txn_commit(f->st), 0);
	assert_int_equal(store_audit_intent_close(f->st, 2), 0);
	assert_int_equal(store_audit_intent_close(f->st, 2), STORE_ENOTFOUND);

	reopen(f);
	assert_int_equal(store_cert_get_by_index(f->st, DEV, 1, &got), 0);
	assert_memory_equal(got.der, c.der, c.der_len);
	store_cert_clear(&got);
	assert_int_equal(store_audit_last(f->st, &u, &line, &len), 0);
	assert_int_equal(u, 3);
	assert_string_equal(line, "line 3");
	free(line);
	assert_int_equal(store_audit_count(f->st, &u), 0);
	assert_int_equal(u, 3);
	assert_int_equal(store_audit_foreach(f->st, 2, audit_cb, &next), 0);
	assert_int_equal(next, 4);
	assert_int_equal(store_audit_intents_open(f->st, &seqs, &n), 0);
	assert_int_equal(n, 1);
	assert_int_equal(seqs[0], 3);
	free(seqs);
	assert_int_equal(store_meta_get(f->st, "policy.sha256", &val, &len), 0);
	assert_int_equal(len, 3);
	assert_string_equal((char *)val, "abc");
	free(val);
	assert_int_equal(store_meta_get_u64(f->st, "zone.serial", &u), 0);
	assert_int_equal(u, 2024112701ULL);
	assert_int_equal(store_zone_meta_get(f->st, "serial", &val, &len), 0);
	assert_string_equal((char *)val, "7");
	free(val);
	assert_int_equal(store_journal_trim(f->st, 2), 0);
	assert_int_equal(store_zone_delete(f->st, "\x01k", 2), 0);
}

static int
journal_cb(void *ctx, const struct store_journal_entry *e)
{
	uint32_t *from = ctx;
	assert_int_equal(e->serial_from, *from);
	assert_int_equal(e->serial_to, *from + 1);
	assert_int_equal(e->len, 3);
	(*from)++;
	return 0;
}

static void
test_journal_trim(void **state)
{
	struct fx *f = *state;
	uint32_t from = 3;
	for (uint32_t s = 1; s <= 5; s++)
		assert_int_equal(store_journal_append(f->st, s, s + 1, s, "abc", 3), 0);
	assert_int_equal(store_journal_trim(f->st, 3), 0);
	assert_int_equal(store_journal_foreach(f->st, journal_cb, &from), 0);
	assert_int_equal(from, 6);
}

static void
test_readonly_reader(void **state)
{
	struct fx *f = *state;
	struct store_open_opts ro = { .flags = STORE_OPEN_READONLY };
	struct store_cert c, got;
	store_t *reader = NULL;

	make_cert(&c, DEV, 1, 0x61, 0xa1);
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	assert_int_equal(store_open(&reader, f->path, &ro), 0);
	assert_int_equal(store_cert_get_by_index(reader, DEV, 1, &got), 0);
	store_cert_clear(&got);
	make_cert(&c, DEV, 2, 0x62, 0xa1);
	assert_int_equal(store_cert_insert(reader, &c), STORE_EREADONLY);
	assert_int_equal(store_txn_begin(reader), STORE_EREADONLY);

	/* WAL: the reader does not see the writer's uncommitted rows. */
	assert_int_equal(store_txn_begin(f->st), 0);
	assert_int_equal(store_cert_insert(f->st, &c), 0);
	assert_int_equal(store_cert_get_by_index(reader, DEV, 2, &got), STORE_ENOTFOUND);
	assert_int_equal(store_txn_commit(f->st), 0);
	assert_int_equal(store_cert_get_by_index(reader, DEV, 2, &got), 0);
	store_cert_clear(&got);
	store_close(reader);
}

/* The certs table's "sql" in sqlite_schema, or "" (caller frees). */
static char *
certs_sql(const char *path)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	char *out;

	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, "SELECT sql FROM sqlite_schema WHERE "
	                 "type = 'table' AND name = 'certs'", -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	out = strdup((const char *)sqlite3_column_text(s, 0));
	assert_non_null(out);
	sqlite3_finalize(s);
	sqlite3_close(db);
	return out;
}

/*
 * A version-1 database (certs keyed by serial, WITHOUT ROWID, as regsign
 * wrote it before version 2) is readable read-only as it is, and the first
 * read-write open migrates it to version 2 (a rowid table, serial UNIQUE)
 * keeping every row and every constraint.
 */
static void
test_migrate_v1(void **state)
{
	struct fx *f = *state;
	struct store_open_opts ro = { .flags = STORE_OPEN_READONLY };
	struct store_durability d;
	struct store_cert c1, c2, got;
	struct revoked_list l = { 0 };
	store_t *reader = NULL;
	sqlite3 *db;
	char *sql;

	sql = certs_sql(f->path);
	assert_null(strstr(sql, "WITHOUT ROWID")); /* a new database is version 2 */
	free(sql);
	make_cert(&c1, DEV, 1, 0x71, 0xa1);
	make_cert(&c2, DEV, 2, 0x72, 0xa2);
	assert_int_equal(store_cert_insert(f->st, &c1), 0);
	assert_int_equal(store_cert_insert(f->st, &c2), 0);
	assert_int_equal(store_cert_revoke(f->st, c2.serial, 16, 100, 4, NULL), 0);
	store_close(f->st);
	f->st = NULL;

	/* Back to version 1's certs table, rows included. */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db,
		"BEGIN;"
		"CREATE TABLE certs_v1("
		" serial BLOB PRIMARY KEY, device TEXT NOT NULL,"
		" idx INTEGER NOT NULL CHECK(idx >= 1),"
		" status INTEGER NOT NULL CHECK(status IN (0, 1)),"
		" revoked_at INTEGER NOT NULL, reason INTEGER NOT NULL,"
		" caller_uid INTEGER NOT NULL, caller_name TEXT NOT NULL,"
		" der BLOB NOT NULL, csr_sha256 BLOB NOT NULL CHECK(length(csr_sha256) = 32),"
		" profile TEXT NOT NULL, not_before INTEGER NOT NULL, not_after INTEGER NOT NULL,"
		" issued_at INTEGER NOT NULL, UNIQUE(device, idx)) WITHOUT ROWID;"
		"INSERT INTO certs_v1 SELECT * FROM certs;"
		"DROP TABLE certs;"
		"ALTER TABLE certs_v1 RENAME TO certs;"
		"CREATE INDEX certs_revoked ON certs(revoked_at, serial) WHERE status = 1;"
		"PRAGMA user_version = 1;"
		"COMMIT;", NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	sql = certs_sql(f->path);
	assert_non_null(strstr(sql, "WITHOUT ROWID"));
	free(sql);

	/* Read-only: version 1 as it is, nothing migrated. */
	assert_int_equal(store_open(&reader, f->path, &ro), 0);
	assert_int_equal(store_durability_get(reader, &d), 0);
	assert_int_equal(d.user_version, 1);
	assert_int_equal(store_cert_get_by_serial(reader, c1.serial, 16, &got), 0);
	assert_int_equal(got.index, 1);
	store_cert_clear(&got);
	assert_int_equal(store_revoked_foreach(reader, revoked_cb, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.first[0], 0x72);
	store_close(reader);
	reader = NULL;

	/* Read-write: migrated, the rows and the constraints kept, and the
	 * migration's WAL copied back and truncated (not left allocated). */
	reopen(f);
	{
		struct stat sb;
		char wal[128];
		snprintf(wal, sizeof(wal), "%s-wal", f->path);
		assert_int_equal(stat(wal, &sb), 0);
		assert_int_equal(sb.st_size, 0);
	}
	assert_int_equal(store_durability_get(f->st, &d), 0);
	assert_int_equal(d.user_version, STORE_SCHEMA_VERSION);
	assert_int_equal(STORE_SCHEMA_VERSION, 2);
	sql = certs_sql(f->path);
	assert_null(strstr(sql, "WITHOUT ROWID"));
	assert_non_null(strstr(sql, "serial BLOB NOT NULL UNIQUE"));
	free(sql);
	assert_int_equal(store_cert_get_by_index(f->st, DEV, 2, &got), 0);
	assert_memory_equal(got.serial, c2.serial, 16);
	assert_int_equal(got.status, STORE_CERT_REVOKED);
	assert_int_equal(got.revoked_at, 100);
	assert_int_equal(got.reason, 4);
	assert_int_equal(got.der_len, c2.der_len);
	assert_memory_equal(got.der, c2.der, c2.der_len);
	assert_memory_equal(got.csr_sha256, c2.csr_sha256, 32);
	store_cert_clear(&got);
	l.n = 0;
	assert_int_equal(store_revoked_foreach(f->st, revoked_cb, &l), 0);
	assert_int_equal(l.n, 1);
	assert_int_equal(l.first[0], 0x72);
	make_cert(&c1, DEV, 1, 0x73, 0xa1); /* index taken */
	assert_int_equal(store_cert_insert(f->st, &c1), STORE_EEXISTS);
	make_cert(&c1, "00aa", 1, 0x71, 0xa1); /* serial taken */
	assert_int_equal(store_cert_insert(f->st, &c1), STORE_EEXISTS);
	make_cert(&c1, DEV, 3, 0x74, 0xa3);
	assert_int_equal(store_cert_insert(f->st, &c1), 0);
	assert_int_equal(store_serial_exists(f->st, c1.serial, 16), 1);
	/* A later open finds version 2 and changes nothing. */
	reopen(f);
	assert_int_equal(store_cert_get_by_index(f->st, DEV, 3, &got), 0);
	store_cert_clear(&got);
}

/* ---- A VFS that fails fsync on demand -------------------------------------- */

struct fault_vfs {
	sqlite3_vfs base;
	sqlite3_vfs *real;
	int fail_sync;
	int syncs;
};

struct fault_file {
	sqlite3_file base;
	struct fault_vfs *vfs;
	sqlite3_file *real;
};

#define REAL(f) (((struct fault_file *)(f))->real)

static int ff_close(sqlite3_file *f)
{
	return REAL(f)->pMethods->xClose(REAL(f));
}
static int ff_read(sqlite3_file *f, void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xRead(REAL(f), b, n, o);
}
static int ff_write(sqlite3_file *f, const void *b, int n, sqlite3_int64 o)
{
	return REAL(f)->pMethods->xWrite(REAL(f), b, n, o);
}
static int ff_truncate(sqlite3_file *f, sqlite3_int64 size)
{
	return REAL(f)->pMethods->xTruncate(REAL(f), size);
}
static int ff_sync(sqlite3_file *f, int flags)
{
	struct fault_file *ff = (struct fault_file *)f;
	ff->vfs->syncs++;
	if (ff->vfs->fail_sync)
		return SQLITE_IOERR_FSYNC;
	return ff->real->pMethods->xSync(ff->real, flags);
}
static int ff_size(sqlite3_file *f, sqlite3_int64 *s)
{
	return REAL(f)->pMethods->xFileSize(REAL(f), s);
}
static int ff_lock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xLock(REAL(f), l);
}
static int ff_unlock(sqlite3_file *f, int l)
{
	return REAL(f)->pMethods->xUnlock(REAL(f), l);
}
static int ff_reserved(sqlite3_file *f, int *r)
{
	return REAL(f)->pMethods->xCheckReservedLock(REAL(f), r);
}
static int ff_fcntl(sqlite3_file *f, int op, void *a)
{
	return REAL(f)->pMethods->xFileControl(REAL(f), op, a);
}
static int ff_sector(sqlite3_file *f)
{
	return REAL(f)->pMethods->xSectorSize(REAL(f));
}
static int ff_devchar(sqlite3_file *f)
{
	return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f));
}
static int ff_shmmap(sqlite3_file *f, int pg, int sz, int ext, void volatile **p)
{
	return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, ext, p);
}
static int ff_shmlock(sqlite3_file *f, int off, int n, int fl)
{
	return REAL(f)->pMethods->xShmLock(REAL(f), off, n, fl);
}
static void ff_shmbarrier(sqlite3_file *f)
{
	REAL(f)->pMethods->xShmBarrier(REAL(f));
}
static int ff_shmunmap(sqlite3_file *f, int del)
{
	return REAL(f)->pMethods->xShmUnmap(REAL(f), del);
}

static const sqlite3_io_methods fault_io = {
	2, ff_close, ff_read, ff_write, ff_truncate, ff_sync, ff_size, ff_lock, ff_unlock,
	ff_reserved, ff_fcntl, ff_sector, ff_devchar, ff_shmmap, ff_shmlock, ff_shmbarrier,
	ff_shmunmap, NULL, NULL,
};

static int
fv_open(sqlite3_vfs *v, const char *name, sqlite3_file *f, int flags, int *oflags)
{
	struct fault_vfs *fv = (struct fault_vfs *)v;
	struct fault_file *ff = (struct fault_file *)f;
	int rc;
	ff->vfs = fv;
	ff->real = (sqlite3_file *)(ff + 1);
	rc = fv->real->xOpen(fv->real, name, ff->real, flags, oflags);
	ff->base.pMethods = ff->real->pMethods ? &fault_io : NULL;
	return rc;
}
static int fv_delete(sqlite3_vfs *v, const char *n, int d)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xDelete(r, n, d);
}
static int fv_access(sqlite3_vfs *v, const char *n, int fl, int *o)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xAccess(r, n, fl, o);
}
static int fv_full(sqlite3_vfs *v, const char *n, int sz, char *o)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xFullPathname(r, n, sz, o);
}
static int fv_rand(sqlite3_vfs *v, int n, char *o)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xRandomness(r, n, o);
}
static int fv_sleep(sqlite3_vfs *v, int us)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xSleep(r, us);
}
static int fv_time(sqlite3_vfs *v, double *t)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xCurrentTime(r, t);
}
static int fv_lasterr(sqlite3_vfs *v, int n, char *o)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xGetLastError(r, n, o);
}
static int fv_time64(sqlite3_vfs *v, sqlite3_int64 *t)
{
	sqlite3_vfs *r = ((struct fault_vfs *)v)->real;
	return r->xCurrentTimeInt64(r, t);
}

static void
test_fsync_failure_is_distinct(void **state)
{
	struct fx *f = *state;
	struct fault_vfs fv;
	struct store_open_opts o = { .vfs = "regsign-fault" };
	struct store_cert c, got;
	char path[128];
	store_t *st = NULL;

	memset(&fv, 0, sizeof(fv));
	fv.real = sqlite3_vfs_find(NULL);
	assert_non_null(fv.real);
	fv.base.iVersion = 2;
	fv.base.szOsFile = (int)sizeof(struct fault_file) + fv.real->szOsFile;
	fv.base.mxPathname = fv.real->mxPathname;
	fv.base.zName = "regsign-fault";
	fv.base.xOpen = fv_open;
	fv.base.xDelete = fv_delete;
	fv.base.xAccess = fv_access;
	fv.base.xFullPathname = fv_full;
	fv.base.xRandomness = fv_rand;
	fv.base.xSleep = fv_sleep;
	fv.base.xCurrentTime = fv_time;
	fv.base.xGetLastError = fv_lasterr;
	fv.base.xCurrentTimeInt64 = fv_time64;
	assert_int_equal(sqlite3_vfs_register(&fv.base, 0), SQLITE_OK);

	snprintf(path, sizeof(path), "%s/fault.db", f->dir);
	assert_int_equal(store_open(&st, path, &o), 0);
	make_cert(&c, DEV, 1, 0x71, 0xa1);
	fv.syncs = 0;
	assert_int_equal(store_cert_insert(st, &c), 0);
	/* synchronous=FULL really syncs at commit. */
	assert_true(fv.syncs >= 1);

	fv.fail_sync = 1;
	make_cert(&c, DEV, 2, 0x72, 0xa1);
	assert_int_equal(store_txn_begin(st), 0);
	assert_int_equal(store_cert_insert(st, &c), 0);
	int r = store_txn_commit(st);
	assert_int_equal(r, STORE_EFSYNC);
	assert_true(store_error_is_fatal(r));
	assert_false(store_txn_active(st));
	/* Same through an implicit transaction. */
	make_cert(&c, DEV, 3, 0x73, 0xa1);
	assert_int_equal(store_cert_insert(st, &c), STORE_EFSYNC);
	store_close(st);
	fv.fail_sync = 0;
	assert_int_equal(sqlite3_vfs_unregister(&fv.base), SQLITE_OK);

	/* What was committed before the failure is there. */
	assert_int_equal(store_open(&st, path, NULL), 0);
	assert_int_equal(store_cert_get_by_index(st, DEV, 1, &got), 0);
	store_cert_clear(&got);
	store_close(st);
}

static void
test_strerror(void **state)
{
	(void)state;
	for (int e = 0; e >= STORE_EDURABILITY; e--) {
		assert_non_null(store_strerror(e));
		assert_string_not_equal(store_strerror(e), "unknown store error");
	}
	assert_string_equal(store_strerror(-1000), "unknown store error");
	assert_false(store_error_is_fatal(STORE_EEXISTS));
	assert_true(store_error_is_fatal(STORE_EIO));
	store_close(NULL);
	store_cert_clear(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_schema_created, setup, teardown),
		cmocka_unit_test_setup_teardown(test_foreign_and_newer_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_insert_lookup, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idempotency_and_index_never_reused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crl, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen_keeps_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_journal_trim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_readonly_reader, setup, teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v1, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fsync_failure_is_distinct, setup, teardown),
		cmocka_unit_test(test_strerror),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
