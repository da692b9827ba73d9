/*
 * store_row.h - the row loop shared by the store's readers (store_cert.c,
 * store_rows.c). Internal to libregsign-store.
 */
#ifndef REGSIGN_STORE_ROW_H
#define REGSIGN_STORE_ROW_H

#include "signer/store_int.h"

/*
 * Steps @p s to its next row: 1 at a row (*@p r untouched); 0 once the rows
 * are done (*@p r = 0) or SQLite failed (*@p r = the store error for it).
 * A reader loops "while (store__row_next(st, s, &r))", leaves the loop with
 * its own nonzero *@p r to stop early, and returns *@p r either way.
 */
static inline int
store__row_next(store_t *st, sqlite3_stmt *s, int *r)
{
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		return 1;
	*r = rc == SQLITE_DONE ? 0 : store__map_rc(sqlite3_extended_errcode(st->db));
	return 0;
}

#endif
