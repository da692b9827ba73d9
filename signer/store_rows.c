/*
 * Metadata, audit rows, zone entries and the IXFR journal of the store.
 * See store.h; the audit records' format belongs to signer/audit.
 */
#include "signer/store.h"
#include "signer/store_int.h"
#include "signer/store_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Key/value tables ---------------------------------------------------------- */

static int
kv_set(store_t *st, enum stmt_id id, const char *key, const void *val, size_t len)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || !store__text_ok(key, 128) || (val == NULL && len != 0))
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, id, &s)) == 0) {
		sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, len ? val : "", (int)len, SQLITE_STATIC);
		r = store__step_done(st, s);
	}
	return store__wr_end(st, own, r);
}

static int
kv_get(store_t *st, enum stmt_id id, const char *key, unsigned char **val, size_t *len)
{
	sqlite3_stmt *s = NULL;
	int r, rc;
	if (st == NULL || val == NULL || !store__text_ok(key, 128))
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, id, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = store__dup_column(s, 0, val, len);
	else
		r = rc == SQLITE_DONE ? STORE_ENOTFOUND : store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
	return r;
}

int
store_meta_set(store_t *st, const char *key, const void *val, size_t len)
{
	return kv_set(st, S_META_SET, key, val, len);
}

int
store_meta_get(store_t *st, const char *key, unsigned char **val, size_t *len)
{
	return kv_get(st, S_META_GET, key, val, len);
}

int
store_zone_meta_set(store_t *st, const char *key, const void *val, size_t len)
{
	return kv_set(st, S_ZMETA_SET, key, val, len);
}

int
store_zone_meta_get(store_t *st, const char *key, unsigned char **val, size_t *len)
{
	return kv_get(st, S_ZMETA_GET, key, val, len);
}

/* Integers are kept as decimal text so that every meta value reads back
 * the same way whatever wrote it. */
int
store_meta_set_u64(store_t *st, const char *key, uint64_t v)
{
	char buf[24];
	int n = snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	return store_meta_set(st, key, buf, (size_t)n);
}

int
store_meta_get_u64(store_t *st, const char *key, uint64_t *v)
{
	unsigned char *val = NULL;
	unsigned long long x;
	char *end;
	size_t len;
	int r;
	if (v == NULL)
		return STORE_EINVAL;
	if ((r = store_meta_get(st, key, &val, &len)) != 0)
		return r;
	r = STORE_ECORRUPT;
	if (len == 0 || val[0] < '0' || val[0] > '9')
		goto out;
	x = strtoull((const char *)val, &end, 10);
	if ((size_t)(end - (char *)val) != len)
		goto out;
	*v = x;
	r = 0;
out:
	free(val);
	return r;
}

/* ---- Audit rows ------------------------------------------------------------------ */

static int
exec_seq(store_t *st, enum stmt_id id, uint64_t seq, int want_change)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || seq == 0 || seq > INT64_MAX)
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, id, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)seq);
		r = store__step_done(st, s);
		if (r == 0 && want_change && sqlite3_changes(st->db) == 0)
			r = STORE_ENOTFOUND;
	}
	return store__wr_end(st, own, r);
}

int
store_audit_append(store_t *st, uint64_t seq, const char *line, size_t len)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || line == NULL || len == 0 || len > INT32_MAX || seq == 0 ||
	    seq > INT64_MAX)
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, S_AUDIT_APPEND, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)seq);
		sqlite3_bind_text(s, 2, line, (int)len, SQLITE_STATIC);
		r = store__step_done(st, s);
	}
	return store__wr_end(st, own, r);
}

int
store_audit_last(store_t *st, uint64_t *seq, char **line, size_t *len)
{
	sqlite3_stmt *s = NULL;
	int r, rc;
	if (st == NULL)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_AUDIT_LAST, &s)) != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r = 0;
		if (seq)
			*seq = (uint64_t)sqlite3_column_int64(s, 0);
		if (line)
			r = store__dup_column(s, 1, (unsigned char **)line, len);
	} else {
		r = rc == SQLITE_DONE ? STORE_ENOTFOUND : store__map_rc(sqlite3_extended_errcode(st->db));
	}
	store__stmt_done(s);
	return r;
}

int
store_audit_count(store_t *st, uint64_t *out)
{
	sqlite3_stmt *s = NULL;
	int r, rc;
	if (st == NULL || out == NULL)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_AUDIT_COUNT, &s)) != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*out = (uint64_t)sqlite3_column_int64(s, 0);
	r = rc == SQLITE_ROW ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
	return r;
}

int
store_audit_foreach(store_t *st, uint64_t from_seq, store_audit_cb cb, void *ctx)
{
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || cb == NULL || from_seq > INT64_MAX)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_AUDIT_FROM, &s)) != 0)
		return r;
	sqlite3_bind_int64(s, 1, (int64_t)from_seq);
	while (store__row_next(st, s, &r)) {
		const char *line = (const char *)sqlite3_column_text(s, 1);
		size_t len = (size_t)sqlite3_column_bytes(s, 1);
		if ((r = cb(ctx, (uint64_t)sqlite3_column_int64(s, 0), line ? line : "", len)) != 0)
			break;
	}
	store__stmt_done(s);
	return r;
}

int
store_audit_intent_open(store_t *st, uint64_t seq)
{
	return exec_seq(st, S_INTENT_OPEN, seq, 0);
}

int
store_audit_intent_close(store_t *st, uint64_t seq)
{
	return exec_seq(st, S_INTENT_CLOSE, seq, 1);
}

int
store_audit_intents_open(store_t *st, uint64_t **seqs, size_t *n)
{
	uint64_t *v = NULL, *nv;
	size_t cnt = 0, cap = 0;
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || seqs == NULL || n == NULL)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_INTENTS, &s)) != 0)
		return r;
	while (store__row_next(st, s, &r)) {
		if (cnt == cap) {
			cap = cap ? cap * 2 : 16;
			if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
				r = STORE_ENOMEM;
				break;
			}
			v = nv;
		}
		v[cnt++] = (uint64_t)sqlite3_column_int64(s, 0);
	}
	store__stmt_done(s);
	if (r != 0) {
		free(v);
		return r;
	}
	*seqs = v;
	*n = cnt;
	return 0;
}

/* ---- Zone and journal ---------------------------------------------------------- */

int
store_zone_put(store_t *st, const void *key, size_t klen, const void *data, size_t dlen)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || key == NULL || klen == 0 || klen > INT32_MAX || dlen > INT32_MAX ||
	    (data == NULL && dlen != 0))
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, S_ZONE_PUT, &s)) == 0) {
		sqlite3_bind_blob(s, 1, key, (int)klen, SQLITE_STATIC);
		sqlite3_bind_blob(s, 2, dlen ? data : "", (int)dlen, SQLITE_STATIC);
		r = store__step_done(st, s);
	}
	return store__wr_end(st, own, r);
}

int
store_zone_delete(store_t *st, const void *key, size_t klen)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || key == NULL || klen == 0 || klen > INT32_MAX)
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, S_ZONE_DEL, &s)) == 0) {
		sqlite3_bind_blob(s, 1, key, (int)klen, SQLITE_STATIC);
		r = store__step_done(st, s);
		if (r == 0 && sqlite3_changes(st->db) == 0)
			r = STORE_ENOTFOUND;
	}
	return store__wr_end(st, own, r);
}

int
store_zone_foreach(store_t *st, store_blob_cb cb, void *ctx)
{
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || cb == NULL)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_ZONE_ALL, &s)) != 0)
		return r;
	while (store__row_next(st, s, &r)) {
		r = cb(ctx, sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0),
		       sqlite3_column_blob(s, 1), (size_t)sqlite3_column_bytes(s, 1));
		if (r != 0)
			break;
	}
	store__stmt_done(s);
	return r;
}

int
store_journal_append(store_t *st, uint32_t serial_from, uint32_t serial_to, int64_t when,
                     const void *diff, size_t len)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || len > INT32_MAX || (diff == NULL && len != 0))
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, S_JOURNAL_ADD, &s)) == 0) {
		sqlite3_bind_int64(s, 1, serial_from);
		sqlite3_bind_int64(s, 2, serial_to);
		sqlite3_bind_blob(s, 3, len ? diff : "", (int)len, SQLITE_STATIC);
		sqlite3_bind_int64(s, 4, when);
		r = store__step_done(st, s);
	}
	return store__wr_end(st, own, r);
}

int
store_journal_foreach(store_t *st, store_journal_cb cb, void *ctx)
{
	struct store_journal_entry e;
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || cb == NULL)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_JOURNAL_ALL, &s)) != 0)
		return r;
	while (store__row_next(st, s, &r)) {
		e.serial_from = (uint32_t)sqlite3_column_int64(s, 0);
		e.serial_to = (uint32_t)sqlite3_column_int64(s, 1);
		e.diff = sqlite3_column_blob(s, 2);
		e.len = (size_t)sqlite3_column_bytes(s, 2);
		e.when = sqlite3_column_int64(s, 3);
		if ((r = cb(ctx, &e)) != 0)
			break;
	}
	store__stmt_done(s);
	return r;
}

int
store_journal_trim(store_t *st, size_t keep)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || keep > INT64_MAX)
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, S_JOURNAL_TRIM, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)keep);
		r = store__step_done(st, s);
	}
	return store__wr_end(st, own, r);
}
