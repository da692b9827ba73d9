/*
 * The zone file from stored rows (see zone_rows.h). One row is held back
 * until the next one arrives, because its NSEC names the next owner; the
 * last one's NSEC names the apex. Each row is parsed into a node of its own
 * (malloc'd, checked as a load checks it) and written through the same
 * formatting as zone_file_write().
 */
#include "zonesigner/zone_rows.h"
#include "zonesigner/zone_file.h"
#include "zonesigner/zone_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct zone_rows {
	const struct zone *shape;
	struct zone_file_out *fo;
	struct zone_node *held;   /* the last row, written when the next arrives */
	size_t rows;
	uint32_t serial;
	bool failed;
	char err[ZONE_ROWS_ERR_MAX];
};

int zone_rows_open(const struct zone *shape, const char *path, struct zone_rows **out)
{
	struct zone_rows *w = calloc(1, sizeof(*w));
	int r;

	*out = NULL;
	if (w == NULL)
		return ZONE_ENOMEM;
	w->shape = shape;
	if ((r = zone_file_out_open(path, &w->fo)) != 0) {
		snprintf(w->err, sizeof(w->err), "cannot create a temporary file next to %s", path);
		free(w);
		return r;
	}
	*out = w;
	return 0;
}

/* The owner of a key in presentation form, or its bytes in hex when it is
 * not a name (a row that does not parse is named by what it holds). */
static void key_text(const struct zone *z, const uint8_t *key, size_t keylen, char *out,
		     size_t size)
{
	uint8_t wire[ZONE_WIRE_MAX];
	size_t wlen = 0, o = 0;
	ldns_rdf *d = NULL;
	char *s = NULL;

	if (zone_name_key_to_wire(key, keylen, z->apex, z->apexlen, wire, &wlen) == 0 &&
	    (d = ldns_dname_new_frm_data(wlen, wire)) != NULL && (s = ldns_rdf2str(d)) != NULL) {
		snprintf(out, size, "%s", s);
	} else {
		o = (size_t)snprintf(out, size, "key ");
		for (size_t i = 0; i < keylen && o + 3 < size; i++)
			o += (size_t)snprintf(out + o, size - o, "%02x", key[i]);
	}
	free(s);
	ldns_rdf_deep_free(d);
}

static int fail(struct zone_rows *w, int r, const uint8_t *key, size_t keylen, const char *why)
{
	char name[160];

	key_text(w->shape, key, keylen, name, sizeof(name));
	snprintf(w->err, sizeof(w->err), "row %zu (%s): %s", w->rows, name, why);
	w->failed = true;
	return r;
}

/* The held row, its NSEC pointing at @p nextkey. */
static int flush_held(struct zone_rows *w, const uint8_t *nextkey, size_t nextlen)
{
	struct zone_node *n = w->held;
	int r;

	if (n == NULL)
		return 0;
	r = zone_file_out_node(w->fo, w->shape, n, nextkey, nextlen);
	if (r != 0) {
		char name[160];
		key_text(w->shape, zone_node_key(n), n->keylen, name, sizeof(name));
		snprintf(w->err, sizeof(w->err), "row %zu (%s): %s", w->rows - 1, name,
			 r == ZONE_EIO ? "writing the file failed" : "its RRs cannot be formatted");
		w->failed = true;
		return r;
	}
	w->held = NULL;
	zone_node_free(n);
	return 0;
}

/* The serial of an apex node's SOA (as zone_load_finish() reads it). */
static int apex_serial(const struct zone_node *n, uint32_t *serial)
{
	struct zone_rrset soa;

	if (zone_node_rrset_find(n, ZONE_RRTYPE_SOA, &soa) != 1 || soa.nrr != 1 ||
	    zone_get16(soa.rrs) < 22)
		return ZONE_EFORMAT;
	*serial = zone_get32(soa.rrs + 2 + zone_get16(soa.rrs) - 20);
	return 0;
}

int zone_rows_add(struct zone_rows *w, const uint8_t *key, size_t keylen, const uint8_t *blob,
		  size_t len)
{
	struct zone_node *n = NULL;
	int r;

	if (w->failed)
		return ZONE_ESTATE;
	w->rows++;
	if (w->rows == 1 && keylen != 0)
		return fail(w, ZONE_EFORMAT, key, keylen, "the first row is not the apex");
	if (w->held != NULL && zone_name_key_cmp(zone_node_key(w->held), w->held->keylen, key,
						 keylen) >= 0)
		return fail(w, ZONE_EFORMAT, key, keylen, "rows out of canonical order");
	r = zone_row_node(w->shape, key, keylen, blob, len, &n);
	if (r != 0)
		return fail(w, r, key, keylen, r == ZONE_ENOMEM ? "out of memory"
					       : "the stored row does not parse");
	if (w->rows == 1 && apex_serial(n, &w->serial) != 0) {
		zone_node_free(n);
		return fail(w, ZONE_EFORMAT, key, keylen, "the apex has no valid SOA");
	}
	if ((r = flush_held(w, key, keylen)) != 0) {
		zone_node_free(n);
		return r;
	}
	w->held = n;
	return 0;
}

uint32_t zone_rows_serial(const struct zone_rows *w)
{
	return w->serial;
}

size_t zone_rows_count(const struct zone_rows *w)
{
	return w->rows;
}

int zone_rows_finish(struct zone_rows *w)
{
	struct zone_file_out *fo;
	int r;

	if (w->failed || w->fo == NULL)
		return ZONE_ESTATE;
	if (w->rows == 0) {
		snprintf(w->err, sizeof(w->err), "no rows: the zone has no apex");
		w->failed = true;
		return ZONE_EFORMAT;
	}
	/* The last name's NSEC closes the chain at the apex (empty key). */
	if ((r = flush_held(w, (const uint8_t *)"", 0)) != 0)
		return r;
	fo = w->fo;
	w->fo = NULL;
	r = zone_file_out_commit(fo);
	if (r != 0) {
		snprintf(w->err, sizeof(w->err), "fsync or rename of the zone file failed");
		w->failed = true;
	}
	return r;
}

const char *zone_rows_error(const struct zone_rows *w)
{
	return w->err;
}

void zone_rows_free(struct zone_rows *w)
{
	if (w == NULL)
		return;
	zone_node_free(w->held);
	zone_file_out_free(w->fo);
	free(w);
}
