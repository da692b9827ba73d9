/*
 * The zone as RRs: each node expands into its RRsets, its NSEC (next name
 * from the tree) and the RRSIGs rebuilt from the stored signatures; ldns
 * turns them into presentation form for the zone file.
 */
#include "zonesigner/zone_file.h"
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_text.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int zone_rr_make(const uint8_t *owner, size_t ownerlen, uint16_t type, uint32_t ttl,
		 const uint8_t *rdata, size_t rdlen, ldns_rr **out)
{
	size_t len = ownerlen + 10 + rdlen, pos = 0;
	uint8_t *w;
	int r = ZONE_ENOMEM;

	if (rdlen > 65535)
		return ZONE_ERANGE;
	w = malloc(len);
	if (w == NULL)
		return ZONE_ENOMEM;
	memcpy(w, owner, ownerlen);
	zone_put16(w + ownerlen, type);
	zone_put16(w + ownerlen + 2, 1);
	zone_put32(w + ownerlen + 4, ttl);
	zone_put16(w + ownerlen + 8, (uint16_t)rdlen);
	memcpy(w + ownerlen + 10, rdata, rdlen);
	if (ldns_wire2rr(out, w, len, &pos, LDNS_SECTION_ANSWER) == LDNS_STATUS_OK)
		r = 0;
	else
		r = ZONE_EFORMAT;
	free(w);
	return r;
}

static int push(void *ctx, const uint8_t *owner, size_t ownerlen, uint16_t type,
		uint32_t ttl, const uint8_t *rdata, size_t rdlen, bool built)
{
	ldns_rr_list *list = ctx;
	ldns_rr *rr = NULL;
	int r = zone_rr_make(owner, ownerlen, type, ttl, rdata, rdlen, &rr);

	(void)built;
	if (r != 0)
		return r;
	if (!ldns_rr_list_push_rr(list, rr)) {
		ldns_rr_free(rr);
		return ZONE_ENOMEM;
	}
	return 0;
}

/* Hand out one RRset and its RRSIG. */
static int expand_set(const struct zone *z, const struct zone_node *n, const uint8_t *owner,
		      size_t ownerlen, int labels, const struct zone_rrset *s,
		      const uint8_t *nextkey, size_t nextlen, zone_rr_sink sink, void *ctx)
{
	uint8_t nsec[ZONE_NSEC_MAX], rrsig[ZONE_FILE_RRSIG_MAX];
	size_t nlen, plen, q = 0;
	struct zone_sig sig;
	int r = 0;

	if (s->type == ZONE_RRTYPE_NSEC) {
		r = zone_nsec_rdata(z, n, nextkey, nextlen, nsec, &nlen);
		if (r == 0)
			r = sink(ctx, owner, ownerlen, s->type, s->ttl, nsec, nlen, true);
	}
	for (unsigned i = 0; r == 0 && s->type != ZONE_RRTYPE_NSEC && i < s->nrr; i++) {
		size_t l = zone_get16(s->rrs + q);
		r = sink(ctx, owner, ownerlen, s->type, s->ttl, s->rrs + q + 2, l, false);
		q += 2 + l;
	}
	if (r != 0)
		return r;
	zone_sig_get(s->sig, &sig);
	plen = zone_sign_rrsig_prefix(z, labels, s->type, s->ttl, sig.inception, sig.expiration,
				      sig.key_tag, rrsig);
	memcpy(rrsig + plen, sig.rs, 64);
	return sink(ctx, owner, ownerlen, ZONE_RRTYPE_RRSIG, s->ttl, rrsig, plen + 64, true);
}

int zone_node_expand(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		     size_t nextlen, uint8_t *owner, size_t *ownerlen, zone_rr_sink sink,
		     void *ctx)
{
	size_t pos = 0;
	struct zone_rrset s;
	int labels, r;

	r = zone_name_key_to_wire(zone_node_key(n), n->keylen, z->apex, z->apexlen, owner,
				  ownerlen);
	if (r != 0)
		return r;
	labels = zone_owner_labels(z, zone_node_key(n), n->keylen);
	if (labels < 0)
		return labels;
	/* The SOA comes first in a zone file and an AXFR (RFC 5936 section
	 * 2.2), the other RRsets follow in the order the node stores them. */
	if (n->keylen == 0 && zone_node_rrset_find(n, ZONE_RRTYPE_SOA, &s) == 1) {
		r = expand_set(z, n, owner, *ownerlen, labels, &s, nextkey, nextlen, sink, ctx);
		if (r != 0)
			return r;
	}
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		if (n->keylen == 0 && s.type == ZONE_RRTYPE_SOA)
			continue;
		r = expand_set(z, n, owner, *ownerlen, labels, &s, nextkey, nextlen, sink, ctx);
		if (r != 0)
			return r;
	}
	return r;
}

int zone_node_emit(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		   size_t nextlen, ldns_rr_list *list)
{
	uint8_t owner[ZONE_WIRE_MAX];
	size_t ownerlen;

	return zone_node_expand(z, n, nextkey, nextlen, owner, &ownerlen, push, list);
}

int zone_foreach_rr(const struct zone *z, int (*cb)(void *ctx, const ldns_rr *rr), void *ctx)
{
	struct zone_tree_iter it;
	struct zone_node *n, *next;
	const struct zone_node *first = zone_tree_first(&z->tree);
	ldns_rr_list *list = NULL;
	int r = 0;

	zone_tree_iter_init(&it, &z->tree);
	n = zone_tree_iter_next(&it);
	while (n != NULL) {
		next = zone_tree_iter_next(&it);
		const struct zone_node *nx = next ? next : first;
		list = ldns_rr_list_new();
		if (list == NULL)
			return ZONE_ENOMEM;
		r = zone_node_emit(z, n, zone_node_key(nx), nx->keylen, list);
		for (size_t i = 0; r == 0 && i < ldns_rr_list_rr_count(list); i++)
			r = cb(ctx, ldns_rr_list_rr(list, i));
		ldns_rr_list_deep_free(list);
		if (r != 0)
			return r;
		n = next;
	}
	return 0;
}

struct zone_cursor {
	uint32_t serial;
	bool started, done;
	size_t keylen;
	uint8_t key[ZONE_KEY_MAX];
};

int zone_cursor_new(const struct zone *z, struct zone_cursor **out)
{
	struct zone_cursor *cur = calloc(1, sizeof(*cur));

	if (cur == NULL)
		return ZONE_ENOMEM;
	cur->serial = z->serial;
	*out = cur;
	return 0;
}

void zone_cursor_free(struct zone_cursor *cur)
{
	free(cur);
}

int zone_cursor_next(struct zone_cursor *cur, const struct zone *z, size_t max_names,
		     ldns_rr_list *out, bool *done)
{
	const struct zone_node *n, *nx, *first = zone_tree_first(&z->tree);
	int r;

	*done = cur->done;
	if (cur->done)
		return 0;
	if (z->serial != cur->serial || z->state != ZONE_STATE_READY)
		return ZONE_ESTATE;
	/* Each step finds the successor by key: O(log n), and safe whatever
	 * happened to the nodes between calls. */
	n = cur->started ? zone_tree_succ(&z->tree, cur->key, cur->keylen) : first;
	for (size_t i = 0; n != NULL && i < max_names; i++) {
		nx = zone_tree_succ(&z->tree, zone_node_key(n), n->keylen);
		const struct zone_node *next = nx ? nx : first;
		r = zone_node_emit(z, n, zone_node_key(next), next->keylen, out);
		if (r != 0)
			return r;
		memcpy(cur->key, zone_node_key(n), n->keylen);
		cur->keylen = n->keylen;
		cur->started = true;
		n = nx;
	}
	if (n == NULL)
		cur->done = true;
	*done = cur->done;
	return 0;
}

int zone_name_rrs(const struct zone *z, const char *owner, ldns_rr_list **out)
{
	int r = ZONE_EINVAL;
	ldns_rdf *d = NULL;
	uint8_t key[ZONE_KEY_MAX];
	size_t keylen;
	const struct zone_node *n, *next;
	ldns_rr_list *list = NULL;

	d = ldns_dname_new_frm_str(owner);
	if (d == NULL || zone_name_key_from_wire(ldns_rdf_data(d), ldns_rdf_size(d), z->apex,
						 z->apexlen, key, &keylen) != 0)
		goto out;
	r = ZONE_ENOMEM;
	list = ldns_rr_list_new();
	if (list == NULL)
		goto out;
	n = zone_tree_find(&z->tree, key, keylen);
	if (n != NULL) {
		next = zone_tree_succ(&z->tree, key, keylen);
		if (next == NULL)
			next = zone_tree_first(&z->tree);
		r = zone_node_emit(z, n, zone_node_key(next), next->keylen, list);
		if (r != 0)
			goto out;
	}
	*out = list;
	list = NULL;
	r = 0;
out:
	ldns_rr_list_deep_free(list);
	ldns_rdf_deep_free(d);
	return r;
}

/*
 * The zone file being written: a temporary file next to the target, its
 * stdio stream, and the line buffer of zone_text.h. Both writers stream
 * through it: zone_file_write() from the tree, zone_rows.h from the
 * store's rows, so the two produce the same bytes for the same names.
 */
struct zone_file_out {
	FILE *f;
	char *tmp;    /* the temporary file's path; NULL once renamed */
	char *path;
	int64_t now;  /* what RRSIG times are read against, as ldns does */
	size_t unsynced;  /* bytes written since the last fdatasync */
	char line[ZONE_TEXT_MAX];
};

/*
 * The file goes to disk in steps of this many bytes while it is written,
 * not all at the final fsync: the daemon's commits fsync the same disk, and
 * one fsync of a whole zone file (64 MB at 100,000 devices) made them wait
 * for it. Measured at 100,000 devices, REVOKE at 100/s with a zone file
 * every 3 s: p99 58.6 ms with one fsync, 28.7 (and 52 in a busier run) with
 * 4 MiB steps, 21.5 with 1 MiB steps in that busier run.
 */
#define ZONE_FILE_SYNC_STEP (1u << 20)

static int put_line(struct zone_file_out *fo, const char *s, size_t len)
{
	if (fwrite(s, 1, len, fo->f) != len)
		return ZONE_EIO;
	fo->unsynced += len;
	if (fo->unsynced >= ZONE_FILE_SYNC_STEP) {
		fo->unsynced = 0;
		if (fflush(fo->f) != 0 || fdatasync(fileno(fo->f)) != 0)
			return ZONE_EIO;
	}
	return 0;
}

/* One RR as a line of the zone file: formatted here for the zone's own
 * types (zone_text.h), by ldns for anything else. */
static int write_rr(void *ctx, const uint8_t *owner, size_t ownerlen, uint16_t type,
		    uint32_t ttl, const uint8_t *rdata, size_t rdlen, bool built)
{
	struct zone_file_out *fo = ctx;
	ldns_rr *rr = NULL;
	char *s;
	size_t len;
	int r = zone_text_rr(owner, ownerlen, type, ttl, rdata, rdlen, fo->now, fo->line, &len);

	(void)built;
	if (r == 0)
		return put_line(fo, fo->line, len);
	if (r != ZONE_TEXT_OTHER)
		return r;
	if ((r = zone_rr_make(owner, ownerlen, type, ttl, rdata, rdlen, &rr)) != 0)
		return r;
	s = ldns_rr2str_fmt(ldns_output_format_nocomments, rr);
	ldns_rr_free(rr);
	if (s == NULL)
		return ZONE_ENOMEM;
	r = put_line(fo, s, strlen(s));
	free(s);
	return r;
}

void zone_file_out_free(struct zone_file_out *fo)
{
	int saved = errno;

	if (fo == NULL)
		return;
	if (fo->f != NULL)
		fclose(fo->f);
	if (fo->tmp != NULL)
		unlink(fo->tmp);
	free(fo->tmp);
	free(fo->path);
	free(fo);
	errno = saved;
}

int zone_file_out_open(const char *path, struct zone_file_out **out)
{
	struct zone_file_out *fo = calloc(1, sizeof(*fo));
	int r = ZONE_ENOMEM, fd;

	*out = NULL;
	if (fo == NULL)
		return r;
	if (asprintf(&fo->tmp, "%s.tmpXXXXXX", path) < 0) {
		fo->tmp = NULL;
		goto out;
	}
	if ((fo->path = strdup(path)) == NULL)
		goto out;
	r = ZONE_EIO;
	fd = mkstemp(fo->tmp);
	if (fd < 0) {
		free(fo->tmp);
		fo->tmp = NULL;
		goto out;
	}
	if ((fo->f = fdopen(fd, "w")) == NULL) {
		close(fd);
		goto out;
	}
	fo->now = (int64_t)time(NULL);
	*out = fo;
	fo = NULL;
	r = 0;
out:
	zone_file_out_free(fo);
	return r;
}

int zone_file_out_node(struct zone_file_out *fo, const struct zone *z,
		       const struct zone_node *n, const uint8_t *nextkey, size_t nextlen)
{
	uint8_t owner[ZONE_WIRE_MAX];
	size_t ownerlen;

	return zone_node_expand(z, n, nextkey, nextlen, owner, &ownerlen, write_rr, fo);
}

int zone_file_out_commit(struct zone_file_out *fo)
{
	int r = ZONE_EIO, dfd = -1, saved;
	FILE *f = fo->f;

	fo->f = NULL;
	if (fflush(f) != 0 || fsync(fileno(f)) != 0) {
		saved = errno;
		fclose(f);
		errno = saved;
		goto out;
	}
	if (fclose(f) != 0)
		goto out;
	if (rename(fo->tmp, fo->path) != 0)
		goto out;
	free(fo->tmp);
	fo->tmp = NULL;
	/* The rename is durable only once the directory entry is on disk. */
	dfd = open(dirname(fo->path), O_RDONLY | O_DIRECTORY);
	if (dfd < 0 || fsync(dfd) != 0)
		goto out;
	r = 0;
out:
	saved = errno;
	if (dfd >= 0)
		close(dfd);
	zone_file_out_free(fo);
	errno = saved;
	return r;
}

static int write_all(const struct zone *z, struct zone_file_out *fo)
{
	struct zone_tree_iter it;
	const struct zone_node *first = zone_tree_first(&z->tree), *n, *next;
	int r = 0;

	zone_tree_iter_init(&it, &z->tree);
	for (n = zone_tree_iter_next(&it); r == 0 && n != NULL; n = next) {
		next = zone_tree_iter_next(&it);
		const struct zone_node *nx = next ? next : first;
		r = zone_file_out_node(fo, z, n, zone_node_key(nx), nx->keylen);
	}
	return r;
}

int zone_file_write(const struct zone *z, const char *path)
{
	struct zone_file_out *fo = NULL;
	int r = zone_file_out_open(path, &fo);

	if (r != 0)
		return r;
	r = write_all(z, fo);
	if (r != 0) {
		zone_file_out_free(fo);
		return r;
	}
	return zone_file_out_commit(fo);
}
