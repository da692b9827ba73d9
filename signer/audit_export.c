/*
 * The audit file: appending and rotation, and what audit_log_open() does
 * before the daemon may write: load the chain's state from the store, cut
 * a torn tail, check the file against the store, re-export what it lacks,
 * record what was found and abandon intents left open. See audit.h.
 */
#include "signer/audit.h"
#include "signer/audit_int.h"
#include "signer/audit_record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int
from_errno(int e)
{
	return e == ENOSPC || e == EDQUOT ? AUDIT_EFULL : e == ENOMEM ? AUDIT_ENOMEM : AUDIT_EIO;
}

/* ---- The file --------------------------------------------------------------- */

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return from_errno(errno);
		}
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

int
audit__fsync_fd(int fd)
{
	return fsync(fd) == 0 ? 0 : AUDIT_EFSYNC;
}

/* fsync the directory holding @p path, so a rename or creation is durable. */
static int
fsync_dir_of(const char *path)
{
	char *copy = strdup(path);
	int fd, r = AUDIT_ENOMEM;
	if (copy == NULL)
		return r;
	fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	free(copy);
	if (fd < 0)
		return from_errno(errno);
	r = audit__fsync_fd(fd);
	close(fd);
	return r;
}

static int
file_open(audit_log_t *a)
{
	struct stat sb;
	a->fd = open(a->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
	if (a->fd < 0 || fstat(a->fd, &sb) != 0)
		return from_errno(errno);
	a->file_size = (uint64_t)sb.st_size;
	return 0;
}

/* Start a new file: the full one is renamed PATH.<first seq, 12 digits>. */
static int
file_rotate(audit_log_t *a)
{
	char *old = NULL;
	int r;
	if ((r = audit__fsync_fd(a->fd)) != 0)
		return r;
	if (asprintf(&old, "%s.%012llu", a->path, (unsigned long long)a->file_first_seq) < 0)
		return AUDIT_ENOMEM;
	close(a->fd);
	a->fd = -1;
	r = rename(a->path, old) == 0 ? 0 : from_errno(errno);
	free(old);
	if (r == 0 && (r = file_open(a)) == 0 && (r = fsync_dir_of(a->path)) == 0)
		a->file_first_seq = 0;
	return r;
}

int
audit__file_append(audit_log_t *a, uint64_t seq, const char *line, size_t len)
{
	int r;
	if (a->rotate_bytes && a->file_size > 0 && a->file_size + len + 1 > a->rotate_bytes &&
	    (r = file_rotate(a)) != 0)
		return r;
	/* One write per line (line and newline together), so a crash leaves at
	 * worst one torn line at the end. */
	memcpy(a->buf, line, len);
	a->buf[len] = '\n';
	if ((r = write_all(a->fd, a->buf, len + 1)) != 0)
		return r;
	a->file_size += len + 1;
	if (a->file_first_seq == 0)
		a->file_first_seq = seq;
	return 0;
}

int
audit__file_append_pending(audit_log_t *a)
{
	size_t i = 0;
	int r;
	/* Runs of lines go out in one write each (a commit's lines are one run
	 * unless the file rotates between them). A crash inside a write leaves
	 * complete lines and at most one torn line at the end, as one write per
	 * line did: audit_log_open() cuts the torn line and re-exports the rest
	 * from the store. */
	while (i < a->npend) {
		size_t j = i, bytes = 0;
		if (a->rotate_bytes && a->file_size > 0 &&
		    a->file_size + a->pend[i].len + 1 > a->rotate_bytes && (r = file_rotate(a)) != 0)
			return r;
		/* Extend the run while no rotation falls due before the next line. */
		do {
			bytes += a->pend[j].len + 1;
			j++;
		} while (j < a->npend &&
		         !(a->rotate_bytes && a->file_size + bytes + a->pend[j].len + 1 > a->rotate_bytes));
		if ((r = write_all(a->fd, a->pbuf + a->pend[i].off, bytes)) != 0)
			return r;
		a->file_size += bytes;
		if (a->file_first_seq == 0)
			a->file_first_seq = a->pend[i].seq;
		i = j;
	}
	return 0;
}

/* ---- Open: state from the store, repair of the file -------------------------------- */

static int
pread_all(int fd, char *buf, size_t n, uint64_t off)
{
	while (n > 0) {
		ssize_t got = pread(fd, buf, n, (off_t)off);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			return got < 0 ? from_errno(errno) : AUDIT_EIO;
		buf += got;
		n -= (size_t)got;
		off += (uint64_t)got;
	}
	return 0;
}

/*
 * The last line of a file of @p size bytes that ends in a newline: its
 * offset and length (newline excluded), its text in @p buf (AUDIT_LINE_MAX
 * + 2 bytes). AUDIT_EEXPORT if it is longer than any record can be.
 */
static int
last_line(int fd, uint64_t size, char *buf, uint64_t *start, size_t *len)
{
	size_t want = size < AUDIT_LINE_MAX + 2 ? (size_t)size : AUDIT_LINE_MAX + 2;
	size_t i;
	int r;
	if ((r = pread_all(fd, buf, want, size - want)) != 0)
		return r;
	for (i = want - 1; i > 0 && buf[i - 1] != '\n'; i--)
		;
	if (i == 0 && want < size)
		return AUDIT_EEXPORT;
	*start = size - want + i;
	*len = want - 1 - i;
	memmove(buf, buf + i, *len);
	buf[*len] = '\0';
	return 0;
}

/* Seq of the last line of an existing audit file (rotated or current). */
static int
file_last_seq(int fd, uint64_t size, char *buf, uint64_t *seq)
{
	struct audit_record rec;
	uint64_t start;
	size_t len;
	int r;
	if ((r = last_line(fd, size, buf, &start, &len)) != 0)
		return r;
	if (audit_record_parse(buf, len, &rec, NULL, 0) != 0)
		return AUDIT_EEXPORT;
	*seq = rec.seq;
	return 0;
}

/* Where the chain stands in the newest rotated file (0 if there is none). */
static int
rotated_last_seq(audit_log_t *a, uint64_t *seq)
{
	char *dcopy = strdup(a->path), *bcopy = strdup(a->path), *best = NULL, *full = NULL;
	const char *base, *dir;
	struct dirent *de;
	struct stat sb;
	DIR *d = NULL;
	size_t blen;
	int fd = -1, r = AUDIT_ENOMEM;

	*seq = 0;
	if (dcopy == NULL || bcopy == NULL)
		goto out;
	base = basename(bcopy);
	blen = strlen(base);
	dir = dirname(dcopy);
	if ((d = opendir(dir)) == NULL) {
		r = from_errno(errno);
		goto out;
	}
	while ((de = readdir(d)) != NULL) {
		const char *suf = de->d_name + blen + 1;
		if (strncmp(de->d_name, base, blen) != 0 || de->d_name[blen] != '.' ||
		    strlen(suf) != 12 || strspn(suf, "0123456789") != 12)
			continue;
		if (best == NULL || strcmp(de->d_name, best) > 0) {
			free(best);
			if ((best = strdup(de->d_name)) == NULL)
				goto out;
		}
	}
	r = 0;
	if (best == NULL)
		goto out;
	r = AUDIT_ENOMEM;
	if (asprintf(&full, "%s/%s", dir, best) < 0) {
		full = NULL;
		goto out;
	}
	if ((fd = open(full, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &sb) != 0) {
		r = from_errno(errno);
		goto out;
	}
	r = sb.st_size > 0 ? file_last_seq(fd, (uint64_t)sb.st_size, a->buf, seq) : 0;
out:
	if (fd >= 0)
		close(fd);
	if (d)
		closedir(d);
	free(full);
	free(best);
	free(dcopy);
	free(bcopy);
	return r;
}

struct line_copy {
	char *line;
	size_t len;
};

static int
copy_first_cb(void *ctx, uint64_t seq, const char *line, size_t len)
{
	struct line_copy *c = ctx;
	(void)seq;
	if ((c->line = malloc(len + 1)) == NULL)
		return AUDIT_ENOMEM;
	memcpy(c->line, line, len);
	c->len = len;
	return 1; /* stop after the first */
}

struct reexport {
	audit_log_t *a;
	uint64_t n;
	int err;
};

static int
reexport_cb(void *ctx, uint64_t seq, const char *line, size_t len)
{
	struct reexport *x = ctx;
	if (len > AUDIT_LINE_MAX) {
		x->err = AUDIT_ECORRUPT;
		return 1;
	}
	if ((x->err = audit__file_append(x->a, seq, line, len)) != 0)
		return 1;
	x->n++;
	return 0;
}

/* Cut the file at @p to bytes (a torn tail) and make the cut durable. */
static int
file_cut(audit_log_t *a, uint64_t to, struct audit_open_report *rep)
{
	if (ftruncate(a->fd, (off_t)to) != 0)
		return from_errno(errno);
	rep->torn_bytes += a->file_size - to;
	a->file_size = to;
	return audit__fsync_fd(a->fd);
}

/* Make the file a prefix of the store's chain again, then complete it. */
static int
file_repair(audit_log_t *a, struct audit_open_report *rep)
{
	struct audit_record rec;
	struct line_copy want = { NULL, 0 };
	struct reexport x = { a, 0, 0 };
	uint64_t start, fseq = 0;
	size_t len;
	int r;

	if ((r = file_open(a)) != 0)
		return r;
	if (a->file_size > 0) {
		/* A last line without its newline was being written at a crash. */
		size_t want_n = a->file_size < AUDIT_LINE_MAX + 2 ? (size_t)a->file_size
		                                                  : AUDIT_LINE_MAX + 2;
		if ((r = pread_all(a->fd, a->buf, want_n, a->file_size - want_n)) != 0)
			return r;
		if (a->buf[want_n - 1] != '\n') {
			size_t i = want_n;
			while (i > 0 && a->buf[i - 1] != '\n')
				i--;
			if (i == 0 && want_n < a->file_size)
				return AUDIT_EEXPORT;
			if ((r = file_cut(a, a->file_size - want_n + i, rep)) != 0)
				return r;
		}
	}
	if (a->file_size > 0) {
		/* A complete last line that is not a record (e.g. zeros left by
		 * a crash) is torn too; anything earlier is evidence and stays. */
		if ((r = last_line(a->fd, a->file_size, a->buf, &start, &len)) != 0)
			return r;
		if (audit_record_parse(a->buf, len, &rec, NULL, 0) != 0 &&
		    (r = file_cut(a, start, rep)) != 0)
			return r;
	}
	if (a->file_size > 0) {
		if ((r = file_last_seq(a->fd, a->file_size, a->buf, &fseq)) != 0)
			return r;
		if (fseq > a->seq)
			return AUDIT_EEXPORT; /* the file has records the store lacks */
		r = store_audit_foreach(a->st, fseq, copy_first_cb, &want);
		if (r < 0) {
			free(want.line);
			return r == AUDIT_ENOMEM ? r : audit__from_store(r);
		}
		/* The file's last line must be the store's record of that seq. */
		if ((r = last_line(a->fd, a->file_size, a->buf, &start, &len)) == 0 &&
		    (want.line == NULL || want.len != len || memcmp(want.line, a->buf, len) != 0))
			r = AUDIT_EEXPORT;
		free(want.line);
		if (r != 0)
			return r;
		/* The first line names the file when it is rotated. */
		size_t n = a->file_size < AUDIT_LINE_MAX + 1 ? (size_t)a->file_size : AUDIT_LINE_MAX + 1;
		char *nl;
		if ((r = pread_all(a->fd, a->buf, n, 0)) != 0)
			return r;
		if ((nl = memchr(a->buf, '\n', n)) == NULL ||
		    audit_record_parse(a->buf, (size_t)(nl - a->buf), &rec, NULL, 0) != 0)
			return AUDIT_EEXPORT;
		a->file_first_seq = rec.seq;
	} else if ((r = rotated_last_seq(a, &fseq)) != 0) {
		return r;
	} else if (fseq > a->seq) {
		return AUDIT_EEXPORT;
	}
	if (fseq < a->seq) {
		r = store_audit_foreach(a->st, fseq + 1, reexport_cb, &x);
		rep->reexported = x.n;
		if (x.err)
			return x.err;
		if (r < 0)
			return audit__from_store(r);
		if ((r = audit__fsync_fd(a->fd)) != 0)
			return r;
	}
	return 0;
}

/* Committed chain state from the store: last seq, its hash, the head. */
static int
state_load(audit_log_t *a)
{
	struct audit_record rec;
	unsigned char *v = NULL;
	char *line = NULL;
	size_t len;
	int r;

	memcpy(a->prev, AUDIT__ZERO_HASH, sizeof(a->prev));
	r = store_audit_last(a->st, &a->seq, &line, &len);
	if (r == STORE_ENOTFOUND) {
		a->seq = 0;
	} else if (r != 0) {
		return audit__from_store(r);
	} else {
		r = audit_record_parse(line, len, &rec, NULL, 0);
		if (r == 0 && rec.seq != a->seq)
			r = AUDIT_ECORRUPT;
		if (r == 0)
			audit_line_hash(line, len, a->prev);
		free(line);
		if (r != 0)
			return r == AUDIT_ENOMEM ? r : AUDIT_ECORRUPT;
	}
	r = store_meta_get(a->st, "audit.head", &v, &len);
	if (r == 0 && len == 64) {
		memcpy(a->head, v, 64);
		a->head[64] = '\0';
		r = audit__from_store(store_meta_get_u64(a->st, "audit.head_seq", &a->head_seq));
		a->has_head = r == 0;
	} else if (r == 0) {
		r = AUDIT_ECORRUPT;
	} else {
		r = r == STORE_ENOTFOUND ? 0 : audit__from_store(r);
	}
	free(v);
	return r;
}

/* ---- Open intents after a stop ----------------------------------------------- */

struct open_scan {
	audit_log_t *a;
	int err;
};

/*
 * One record of the tail: an allowed request opens an intent, a result or
 * an abandoned record closes the one it refers to (one below the scan's
 * start is long closed). The record is not parsed: keys come in a fixed
 * order and every string value escapes its quotes, so the first "type"
 * key is the record's own and the markers below cannot occur in free text.
 */
static int
open_scan_cb(void *ctx, uint64_t seq, const char *line, size_t len)
{
	static const char tkey[] = "\"type\":\"", allow[] = ",\"decision\":\"allow\"",
	                  ref[] = ",\"ref\":";
	struct open_scan *x = ctx;
	const char *t = memmem(line, len, tkey, sizeof(tkey) - 1), *f;
	size_t rest;
	uint64_t v = 0;
	int r = 0;

	if (t == NULL) {
		x->err = AUDIT_ECORRUPT;
		return 1;
	}
	t += sizeof(tkey) - 1;
	rest = len - (size_t)(t - line);
	if (rest > 8 && memcmp(t, "request\"", 8) == 0) {
		if (memmem(t, rest, allow, sizeof(allow) - 1) != NULL)
			r = audit__open_add(x->a, seq);
	} else if ((rest > 7 && memcmp(t, "result\"", 7) == 0) ||
	           (rest > 10 && memcmp(t, "abandoned\"", 10) == 0)) {
		if ((f = memmem(t, rest, ref, sizeof(ref) - 1)) == NULL) {
			x->err = AUDIT_ECORRUPT;
			return 1;
		}
		f += sizeof(ref) - 1;
		for (; f < line + len && *f >= '0' && *f <= '9' && v < AUDIT__CLOSED / 10; f++)
			v = v * 10 + (uint64_t)(*f - '0');
		if ((r = audit__open_close(x->a, v)) == AUDIT_ENOINTENT)
			r = 0;
	}
	if (r != 0) {
		x->err = r == AUDIT_EINVAL ? AUDIT_ECORRUPT : r;
		return 1;
	}
	return 0;
}

/* Put @p seq into the open set in its place (the old table's intents). */
static int
open_insert(audit_log_t *a, uint64_t seq)
{
	size_t i = 0;

	while (i < a->nopen && (a->open[i] & ~AUDIT__CLOSED) < seq)
		i++;
	if (i < a->nopen && (a->open[i] & ~AUDIT__CLOSED) == seq)
		return 0; /* the scan found it too */
	if (a->nopen == a->capopen) {
		size_t cap = a->capopen ? a->capopen * 2 : 256;
		uint64_t *no = realloc(a->open, cap * sizeof(*no));

		if (no == NULL)
			return AUDIT_ENOMEM;
		a->open = no;
		a->capopen = cap;
	}
	memmove(a->open + i + 1, a->open + i, (a->nopen - i) * sizeof(*a->open));
	a->open[i] = seq;
	a->nopen++;
	return 0;
}

/*
 * The intents that were open when the daemon stopped: those of the records
 * from "audit.open_from" on without a result, and, for a database written
 * by an older version, the rows of its table of open intents (emptied as
 * they are abandoned). Without the meta key the database was never opened
 * by this version, so the table is the whole truth and nothing is scanned.
 * @p has_from says whether the key was there.
 */
static int
open_intents_load(audit_log_t *a, uint64_t **table, size_t *ntable, int *has_from)
{
	struct open_scan x = { a, 0 };
	uint64_t from = 0;
	int r;

	*has_from = 0;
	if ((r = audit__from_store(store_audit_intents_open(a->st, table, ntable))) != 0)
		return r;
	r = store_meta_get_u64(a->st, AUDIT__OPEN_FROM_KEY, &from);
	if (r == STORE_ENOTFOUND)
		from = a->seq + 1;
	else if (r != 0)
		return audit__from_store(r);
	else
		*has_from = 1;
	if (from <= a->seq) {
		r = store_audit_foreach(a->st, from, open_scan_cb, &x);
		if (x.err)
			return x.err;
		if (r != 0)
			return audit__from_store(r);
	}
	for (size_t i = 0; i < *ntable; i++)
		if ((r = open_insert(a, (*table)[i])) != 0)
			return r;
	a->nundo = 0; /* loaded, not a transaction's change */
	a->mark_at = a->seq;
	return 0;
}

int
audit_log_open(audit_log_t **out, store_t *st, const struct audit_opts *opts,
               struct audit_open_report *report)
{
	struct audit_open_report rep = { 0, 0, 0 };
	audit_log_t *a = NULL;
	uint64_t *intents = NULL, *table = NULL;
	size_t nintents = 0, ntable = 0;
	char detail[256];
	int r = AUDIT_EINVAL, own = 0, has_from = 0;

	if (out == NULL || st == NULL || store_txn_active(st))
		return AUDIT_EINVAL;
	*out = NULL;
	r = AUDIT_ENOMEM;
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->buf = malloc(AUDIT_LINE_MAX + 2)) == NULL)
		goto out;
	a->st = st;
	a->fd = -1;
	if ((a->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL)) == NULL ||
	    (a->mdctx = EVP_MD_CTX_new()) == NULL)
		goto out;
	if (opts && opts->path) {
		if ((a->path = strdup(opts->path)) == NULL)
			goto out;
		a->rotate_bytes = opts->rotate_bytes;
		a->flags = opts->flags;
	}
	if ((r = state_load(a)) != 0)
		goto out;
	audit__pending_clear(a);
	if (a->path && (r = file_repair(a, &rep)) != 0)
		goto out;
	store_txn_hooks_set(st, audit__on_commit, audit__on_rollback, a);
	store_txn_precommit_set(st, audit__pre_commit, a);

	/* What was found is itself recorded, in one transaction. */
	if ((r = open_intents_load(a, &table, &ntable, &has_from)) != 0 ||
	    (r = audit_intents_open(a, &intents, &nintents)) != 0)
		goto out;
	if (rep.torn_bytes == 0 && rep.reexported == 0 && nintents == 0 && ntable == 0 &&
	    has_from)
		goto done;
	if ((r = audit__txn_enter(a, &own)) != 0)
		goto out;
	if (rep.torn_bytes) {
		snprintf(detail, sizeof(detail), "cut %llu bytes of a torn last line from %s",
		         (unsigned long long)rep.torn_bytes, a->path);
		r = audit_event(a, "torn-line-cut", detail);
	}
	if (r == 0 && rep.reexported) {
		snprintf(detail, sizeof(detail), "%llu records re-exported from the store",
		         (unsigned long long)rep.reexported);
		r = audit_event(a, "export-resync", detail);
	}
	for (size_t i = 0; r == 0 && i < nintents; i++)
		r = audit__abandon(a, intents[i]);
	for (size_t i = 0; r == 0 && i < ntable; i++)
		r = audit__from_store(store_audit_intent_close(st, table[i]));
	/* None is open now: the next start scans from the next record on. */
	if (r == 0)
		r = audit__from_store(store_meta_set_u64(st, AUDIT__OPEN_FROM_KEY,
		                                         a->pend_seq + 1));
	if ((r = audit__txn_leave(a, own, r)) != 0)
		goto out;
	rep.abandoned = nintents;
done:
	if (a->fd >= 0 && (r = audit__fsync_fd(a->fd)) != 0)
		goto out;
	if (report)
		*report = rep;
	*out = a;
	a = NULL;
	r = 0;
out:
	free(intents);
	free(table);
	if (a) {
		store_txn_hooks_set(st, NULL, NULL, NULL);
		store_txn_precommit_set(st, NULL, NULL);
		audit_log_close(a);
	}
	return r;
}
