/*
 * Certificate rows of a bulk import (IMPORT, signer/ops_import.c). See the
 * "Bulk import" part of store.h.
 *
 * Imported devices are ordinary rows of the certs and devices tables, so
 * every lookup by device and index (REVOKE, REISSUE, the highest index ever
 * used) finds them without knowing they were imported. A record that came
 * with its certificate is stored like an issued one. A record that came with
 * the certificate's hash alone has no serial number and no DER: its row
 * carries a synthetic serial that no certificate can have and an empty DER,
 * and the CRL code leaves such serials out (store_import_serial_is_synthetic).
 *
 * The statements are prepared once per import (a store_import_t), not per
 * row: an import writes up to millions of rows in one transaction.
 */
#include "signer/store.h"
#include "signer/store_int.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

enum {
	IS_INSERT,
	IS_BUMP,
	IS_BY_INDEX,
	IS_BY_SERIAL,
	IS_COUNT,
};

static const char *const import_sql[IS_COUNT] = {
	[IS_INSERT] = "INSERT INTO certs(device, idx, serial, status, revoked_at, reason, "
		"caller_uid, caller_name, der, csr_sha256, profile, not_before, not_after, "
		"issued_at) VALUES(?1,?2,?3,0,0,0,?4,?5,?6,?7,?8,?9,?10,?11)",
	[IS_BUMP] = "INSERT INTO devices(device, highest_index, total) VALUES(?1,?2,1) "
		"ON CONFLICT(device) DO UPDATE SET "
		"highest_index = max(highest_index, excluded.highest_index), total = total + 1",
	[IS_BY_INDEX] = "SELECT 1 FROM certs WHERE device = ?1 AND idx = ?2",
	[IS_BY_SERIAL] = "SELECT 1 FROM certs WHERE serial = ?1",
};

struct store_import {
	store_t *st;
	sqlite3_stmt *s[IS_COUNT];
	int certs_empty; /* no certificate row at all: nothing can collide */
};

/* Second byte of a synthetic serial. A DER INTEGER may start with 0x00 only
 * before a byte >= 0x80, so 0x00 0x01 is never a certificate's serial. */
#define SYNTH_MARK 0x01

void
store_import_synthetic_serial(const char *device, uint32_t index,
			      unsigned char out[STORE_IMPORT_SERIAL_LEN])
{
	unsigned char md[32], ix[4] = { (unsigned char)(index >> 24), (unsigned char)(index >> 16),
					(unsigned char)(index >> 8), (unsigned char)index };
	unsigned int mdlen = 0;
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	memset(md, 0, sizeof(md));
	/* A digest failure (out of memory) leaves a zero tail: still marked, and
	 * the insert then fails on the serial's uniqueness rather than lying. */
	if (c != NULL && EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1 &&
	    EVP_DigestUpdate(c, "regsign-import\0", 15) == 1 &&
	    EVP_DigestUpdate(c, device, strlen(device)) == 1 &&
	    EVP_DigestUpdate(c, ix, sizeof(ix)) == 1)
		EVP_DigestFinal_ex(c, md, &mdlen);
	EVP_MD_CTX_free(c);
	out[0] = 0x00;
	out[1] = SYNTH_MARK;
	memcpy(out + 2, md, STORE_IMPORT_SERIAL_LEN - 2);
}

int
store_import_serial_is_synthetic(const unsigned char *serial, size_t len)
{
	return serial != NULL && len == STORE_IMPORT_SERIAL_LEN && serial[0] == 0x00 &&
	       serial[1] == SYNTH_MARK;
}

void
store_import_end(store_import_t *h)
{
	if (h == NULL)
		return;
	for (int i = 0; i < IS_COUNT; i++)
		sqlite3_finalize(h->s[i]);
	free(h);
}

int
store_import_begin(store_t *st, store_import_t **out)
{
	store_import_t *h = NULL;
	sqlite3_stmt *s = NULL;
	int r = STORE_EINVAL, rc;

	*out = NULL;
	if (st == NULL)
		goto out;
	r = STORE_ENOMEM;
	if ((h = calloc(1, sizeof(*h))) == NULL)
		goto out;
	h->st = st;
	for (int i = 0; i < IS_COUNT; i++) {
		if (sqlite3_prepare_v3(st->db, import_sql[i], -1, SQLITE_PREPARE_PERSISTENT,
				       &h->s[i], NULL) != SQLITE_OK) {
			r = store__map_rc(sqlite3_extended_errcode(st->db));
			goto out;
		}
	}
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM certs LIMIT 1", -1, &s, NULL) != SQLITE_OK) {
		r = store__map_rc(sqlite3_extended_errcode(st->db));
		goto out;
	}
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE) {
		r = store__map_rc(sqlite3_extended_errcode(st->db));
		goto out;
	}
	h->certs_empty = rc == SQLITE_DONE;
	*out = h;
	h = NULL;
	r = 0;
out:
	sqlite3_finalize(s);
	store_import_end(h);
	return r;
}

/* 1 if the one-row query @p s (bound) finds a row, 0 if not, or an error. */
static int
exists(store_import_t *h, sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);
	int r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0
		: store__map_rc(sqlite3_extended_errcode(h->st->db));

	store__stmt_done(s);
	return r;
}

int
store_import_conflict(store_import_t *h, const char *device, uint32_t index,
		      const unsigned char *serial, size_t serial_len)
{
	int r;

	if (h == NULL || !store__text_ok(device, STORE_DEVICE_MAX) || index == 0 ||
	    serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
		return STORE_EINVAL;
	if (h->certs_empty)
		return 0;
	sqlite3_bind_text(h->s[IS_BY_INDEX], 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(h->s[IS_BY_INDEX], 2, index);
	if ((r = exists(h, h->s[IS_BY_INDEX])) != 0)
		return r;
	sqlite3_bind_blob(h->s[IS_BY_SERIAL], 1, serial, (int)serial_len, SQLITE_STATIC);
	r = exists(h, h->s[IS_BY_SERIAL]);
	return r == 1 ? 2 : r;
}

int
store_import_insert(store_import_t *h, const struct store_import_row *row)
{
	static const unsigned char empty[1] = { 0 };
	sqlite3_stmt *s;
	int r;

	if (h == NULL || row == NULL || !store__text_ok(row->device, STORE_DEVICE_MAX) ||
	    row->index == 0 || row->serial == NULL || row->serial_len == 0 ||
	    row->serial_len > STORE_SERIAL_MAX || row->cert_sha256 == NULL ||
	    (row->der == NULL && row->der_len != 0) || strlen(row->caller_name) > STORE_NAME_MAX)
		return STORE_EINVAL;
	if (!h->st->in_txn)
		return STORE_ETXN;
	s = h->s[IS_INSERT];
	sqlite3_bind_text(s, 1, row->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, row->index);
	sqlite3_bind_blob(s, 3, row->serial, (int)row->serial_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, row->caller_uid);
	sqlite3_bind_text(s, 5, row->caller_name, -1, SQLITE_STATIC);
	/* An empty blob, not NULL: the column is NOT NULL and hash-only rows have no DER. */
	sqlite3_bind_blob(s, 6, row->der ? row->der : empty, (int)row->der_len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 7, row->cert_sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, STORE_IMPORT_PROFILE, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 9, row->not_before);
	sqlite3_bind_int64(s, 10, row->not_after);
	sqlite3_bind_int64(s, 11, row->issued_at);
	if ((r = store__step_done(h->st, s)) != 0)
		return r;
	s = h->s[IS_BUMP];
	sqlite3_bind_text(s, 1, row->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, row->index);
	return store__step_done(h->st, s);
}

int
store_import_live_any(store_t *st, int64_t now)
{
	sqlite3_stmt *s = NULL;
	int r, rc;

	if (st == NULL)
		return STORE_EINVAL;
	if (sqlite3_prepare_v2(st->db, "SELECT 1 FROM certs WHERE status = 0 AND not_after > ?1 "
			       "LIMIT 1", -1, &s, NULL) != SQLITE_OK)
		return store__map_rc(sqlite3_extended_errcode(st->db));
	sqlite3_bind_int64(s, 1, now);
	rc = sqlite3_step(s);
	r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0
		: store__map_rc(sqlite3_extended_errcode(st->db));
	sqlite3_finalize(s);
	return r;
}
