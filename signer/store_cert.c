/*
 * Issued certificates and the CRL state of the store. See store.h.
 */
#include "signer/store.h"
#include "signer/store_int.h"
#include "signer/store_row.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- Certificates ------------------------------------------------------ */


static void
copy_text(char *dst, size_t cap, sqlite3_stmt *s, int col)
{
	const unsigned char *t = sqlite3_column_text(s, col);
	snprintf(dst, cap, "%s", t ? (const char *)t : "");
}

static void
copy_blob(unsigned char *dst, size_t cap, size_t *len, sqlite3_stmt *s, int col)
{
	size_t n = (size_t)sqlite3_column_bytes(s, col);
	const void *p = sqlite3_column_blob(s, col);
	if (n > cap)
		n = cap;
	if (p != NULL && n > 0)
		memcpy(dst, p, n);
	if (len)
		*len = n;
}

/* Fill @c from a row of CERT_COLS. With @p copy_der the DER is duplicated
 * for the caller, else it points into SQLite's row (callbacks only). */
static int
cert_from_row(sqlite3_stmt *s, struct store_cert *c, int copy_der)
{
	const void *der = sqlite3_column_blob(s, 8);
	size_t der_len = (size_t)sqlite3_column_bytes(s, 8);

	memset(c, 0, sizeof(*c));
	copy_text(c->device, sizeof(c->device), s, 0);
	c->index = (uint32_t)sqlite3_column_int64(s, 1);
	copy_blob(c->serial, sizeof(c->serial), &c->serial_len, s, 2);
	c->status = sqlite3_column_int(s, 3);
	c->revoked_at = sqlite3_column_int64(s, 4);
	c->reason = sqlite3_column_int(s, 5);
	c->caller_uid = (uint32_t)sqlite3_column_int64(s, 6);
	copy_text(c->caller_name, sizeof(c->caller_name), s, 7);
	copy_blob(c->csr_sha256, sizeof(c->csr_sha256), NULL, s, 9);
	copy_text(c->profile, sizeof(c->profile), s, 10);
	c->not_before = sqlite3_column_int64(s, 11);
	c->not_after = sqlite3_column_int64(s, 12);
	c->issued_at = sqlite3_column_int64(s, 13);
	c->der_len = der_len;
	if (!copy_der) {
		c->der = (unsigned char *)der;
		return 0;
	}
	if ((c->der = malloc(der_len ? der_len : 1)) == NULL)
		return STORE_ENOMEM;
	if (der_len)
		memcpy(c->der, der, der_len);
	return 0;
}

void
store_cert_clear(struct store_cert *c)
{
	if (c == NULL)
		return;
	free(c->der);
	memset(c, 0, sizeof(*c));
}

int
store_cert_insert(store_t *st, const struct store_cert *c)
{
	sqlite3_stmt *s = NULL;
	int own, r;

	if (st == NULL || c == NULL || !store__text_ok(c->device, STORE_DEVICE_MAX) || c->index == 0 ||
	    c->serial_len == 0 || c->serial_len > STORE_SERIAL_MAX || c->der == NULL ||
	    c->der_len == 0 || strlen(c->caller_name) > STORE_NAME_MAX ||
	    !store__text_ok(c->profile, STORE_NAME_MAX))
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	/* Certificate rows are never deleted, so a used (device, index) is
	 * always found here, revoked or not: indexes are never reused. */
	if ((r = store_cert_get_by_index(st, c->device, c->index, NULL)) != STORE_ENOTFOUND) {
		r = r == 0 ? STORE_EEXISTS : r;
		goto out;
	}
	if ((r = store__stmt_get(st, S_CERT_INSERT, &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, c->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, c->index);
	sqlite3_bind_blob(s, 3, c->serial, (int)c->serial_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, c->caller_uid);
	sqlite3_bind_text(s, 5, c->caller_name, -1, SQLITE_STATIC);
	sqlite3_bind_blob(s, 6, c->der, (int)c->der_len, SQLITE_STATIC);
	sqlite3_bind_blob(s, 7, c->csr_sha256, 32, SQLITE_STATIC);
	sqlite3_bind_text(s, 8, c->profile, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 9, c->not_before);
	sqlite3_bind_int64(s, 10, c->not_after);
	sqlite3_bind_int64(s, 11, c->issued_at);
	if ((r = store__step_done(st, s)) != 0)
		goto out;
	if ((r = store__stmt_get(st, S_DEVICE_BUMP, &s)) != 0)
		goto out;
	sqlite3_bind_text(s, 1, c->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, c->index);
	r = store__step_done(st, s);
out:
	return store__wr_end(st, own, r);
}

/* Run a one-row certificate query; @p out may be NULL (existence check). */
static int
cert_query_one(store_t *st, sqlite3_stmt *s, struct store_cert *out)
{
	int rc = sqlite3_step(s), r;
	if (rc == SQLITE_ROW)
		r = out ? cert_from_row(s, out, 1) : 0;
	else if (rc == SQLITE_DONE)
		r = STORE_ENOTFOUND;
	else
		r = store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
	return r;
}

int
store_cert_get_by_index(store_t *st, const char *device, uint32_t index, struct store_cert *out)
{
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || !store__text_ok(device, STORE_DEVICE_MAX))
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_CERT_BY_INDEX, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, index);
	return cert_query_one(st, s, out);
}

int
store_cert_get_by_serial(store_t *st, const unsigned char *serial, size_t serial_len,
                         struct store_cert *out)
{
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_CERT_BY_SERIAL, &s)) != 0)
		return r;
	sqlite3_bind_blob(s, 1, serial, (int)serial_len, SQLITE_STATIC);
	return cert_query_one(st, s, out);
}

int
store_cert_find_repeat(store_t *st, const char *device, uint32_t index,
                       const unsigned char csr_sha256[32], struct store_cert *out)
{
	struct store_cert c;
	int r;
	if (csr_sha256 == NULL || out == NULL)
		return STORE_EINVAL;
	if ((r = store_cert_get_by_index(st, device, index, &c)) != 0)
		return r;
	if (memcmp(c.csr_sha256, csr_sha256, 32) != 0) {
		store_cert_clear(&c);
		return STORE_ECONFLICT;
	}
	*out = c;
	return 0;
}

int
store_serial_exists(store_t *st, const unsigned char *serial, size_t serial_len)
{
	sqlite3_stmt *s = NULL;
	int r, rc;
	if (st == NULL || serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_SERIAL_EXISTS, &s)) != 0)
		return r;
	sqlite3_bind_blob(s, 1, serial, (int)serial_len, SQLITE_STATIC);
	rc = sqlite3_step(s);
	r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
	return r;
}

int
store_device_info_get(store_t *st, const char *device, int64_t now, struct store_device_info *out)
{
	sqlite3_stmt *s = NULL;
	int r, rc;
	if (st == NULL || out == NULL || !store__text_ok(device, STORE_DEVICE_MAX))
		return STORE_EINVAL;
	memset(out, 0, sizeof(*out));
	if ((r = store__stmt_get(st, S_DEVICE_INFO, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		out->highest_index = (uint32_t)sqlite3_column_int64(s, 0);
		out->total = (uint32_t)sqlite3_column_int64(s, 1);
	}
	r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
	if (r != 0 || out->total == 0)
		return r;
	if ((r = store__stmt_get(st, S_DEVICE_LIVE, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		out->live = (uint32_t)sqlite3_column_int64(s, 0);
	r = rc == SQLITE_ROW ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
	return r;
}

int
store_cert_foreach_device(store_t *st, const char *device, store_cert_cb cb, void *ctx)
{
	struct store_cert c;
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || cb == NULL || !store__text_ok(device, STORE_DEVICE_MAX))
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_CERT_BY_DEVICE, &s)) != 0)
		return r;
	sqlite3_bind_text(s, 1, device, -1, SQLITE_STATIC);
	while (store__row_next(st, s, &r)) {
		cert_from_row(s, &c, 0);
		if ((r = cb(ctx, &c)) != 0)
			break;
	}
	store__stmt_done(s);
	return r;
}

int
store_cert_revoke(store_t *st, const unsigned char *serial, size_t serial_len, int64_t when,
                  int reason, struct store_cert *out)
{
	struct store_cert c;
	sqlite3_stmt *s = NULL;
	int own, r;

	memset(&c, 0, sizeof(c));
	if (st == NULL || serial == NULL || serial_len == 0 || serial_len > STORE_SERIAL_MAX)
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store_cert_get_by_serial(st, serial, serial_len, &c)) != 0)
		goto out;
	if (c.status == STORE_CERT_REVOKED) {
		r = STORE_EALREADY;
		goto out;
	}
	if ((r = store__stmt_get(st, S_CERT_REVOKE, &s)) != 0)
		goto out;
	sqlite3_bind_blob(s, 1, serial, (int)serial_len, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, when);
	sqlite3_bind_int(s, 3, reason);
	if ((r = store__step_done(st, s)) != 0)
		goto out;
	c.status = STORE_CERT_REVOKED;
	c.revoked_at = when;
	c.reason = reason;
out:
	if (r == STORE_EALREADY) {
		/* Nothing changed; an own transaction just ends. */
		int e = store__wr_end(st, own, 0);
		r = e != 0 ? e : STORE_EALREADY;
	} else {
		r = store__wr_end(st, own, r);
	}
	if ((r == 0 || r == STORE_EALREADY) && out != NULL) {
		*out = c;
		memset(&c, 0, sizeof(c));
	}
	store_cert_clear(&c);
	return r;
}

int
store_revoked_foreach(store_t *st, store_revoked_cb cb, void *ctx)
{
	struct store_revoked e;
	sqlite3_stmt *s = NULL;
	int r;
	if (st == NULL || cb == NULL)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_REVOKED, &s)) != 0)
		return r;
	while (store__row_next(st, s, &r)) {
		e.serial = sqlite3_column_blob(s, 0);
		e.serial_len = (size_t)sqlite3_column_bytes(s, 0);
		e.revoked_at = sqlite3_column_int64(s, 1);
		e.reason = sqlite3_column_int(s, 2);
		if ((r = cb(ctx, &e)) != 0)
			break;
	}
	store__stmt_done(s);
	return r;
}

/* ---- CRL ------------------------------------------------------------------ */

int
store_crl_number_next(store_t *st, uint64_t *out)
{
	sqlite3_stmt *s = NULL;
	int own, r, rc;
	if (st == NULL || out == NULL)
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, S_CRL_NEXT, &s)) != 0)
		goto out;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*out = (uint64_t)sqlite3_column_int64(s, 0);
		rc = sqlite3_step(s);
	}
	r = rc == SQLITE_DONE ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
	store__stmt_done(s);
out:
	return store__wr_end(st, own, r);
}

int
store_crl_save(store_t *st, uint64_t number, int64_t this_update, const unsigned char *der,
               size_t der_len)
{
	sqlite3_stmt *s = NULL;
	int own, r;
	if (st == NULL || der == NULL || der_len == 0 || number > INT64_MAX)
		return STORE_EINVAL;
	if ((r = store__wr_begin(st, &own)) != 0)
		return r;
	if ((r = store__stmt_get(st, S_CRL_SAVE, &s)) == 0) {
		sqlite3_bind_int64(s, 1, (int64_t)number);
		sqlite3_bind_int64(s, 2, this_update);
		sqlite3_bind_blob(s, 3, der, (int)der_len, SQLITE_STATIC);
		r = store__step_done(st, s);
	}
	return store__wr_end(st, own, r);
}


int
store_crl_load(store_t *st, uint64_t *number, int64_t *this_update, unsigned char **der,
               size_t *der_len)
{
	sqlite3_stmt *s = NULL;
	int r, rc;
	if (st == NULL)
		return STORE_EINVAL;
	if ((r = store__stmt_get(st, S_CRL_LOAD, &s)) != 0)
		return r;
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		r = 0;
		if (number)
			*number = (uint64_t)sqlite3_column_int64(s, 0);
		if (this_update)
			*this_update = sqlite3_column_int64(s, 1);
		if (der)
			r = store__dup_column(s, 2, der, der_len);
	} else {
		r = rc == SQLITE_DONE ? STORE_ENOTFOUND : store__map_rc(sqlite3_extended_errcode(st->db));
	}
	store__stmt_done(s);
	return r;
}
