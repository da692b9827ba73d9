/*
 * The audit log: records appended to the store inside the caller's
 * transaction, exported to the JSON-lines file once committed, signed
 * checkpoints, and the repairs made at open. See audit.h.
 *
 * State is kept twice: what is committed (seq, prev, head) and what the
 * open transaction has added on top (pend_*). The store's commit hook
 * promotes the pending state and exports the pending lines; its rollback
 * hook forgets them. So a record reaches the file only once it is durable
 * in the store, and a rolled-back record never does.
 */
#include "signer/audit.h"
#include "signer/audit_record.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char ZERO_HASH[65] =
	"0000000000000000000000000000000000000000000000000000000000000000";

struct pending {
	char *line;
	size_t len;
	uint64_t seq;
};

struct audit_log {
	store_t *st;
	char *path;
	uint64_t rotate_bytes;
	unsigned flags;
	int fd;
	uint64_t file_size;
	uint64_t file_first_seq;   /* seq of the current file's first line, 0 if empty */
	/* committed */
	uint64_t seq;
	char prev[65];
	int has_head;
	char head[65];
	uint64_t head_seq;
	/* added by the open transaction */
	uint64_t pend_seq;
	char pend_prev[65];
	int pend_has_head;
	char pend_head[65];
	uint64_t pend_head_seq;
	struct pending *pend;
	size_t npend, cappend;
	int sticky;                /* export failure: returned by every later call */
	char *buf;                 /* AUDIT_LINE_MAX + 1 bytes of scratch */
};

const char *
audit_strerror(int err)
{
	switch (err) {
	case AUDIT_OK: return "success";
	case AUDIT_ENOMEM: return "out of memory";
	case AUDIT_EINVAL: return "invalid argument";
	case AUDIT_ESTORE: return "store error";
	case AUDIT_EFSYNC: return "fsync failed; on-disk state unknown";
	case AUDIT_EIO: return "I/O error";
	case AUDIT_EFULL: return "disk full";
	case AUDIT_ECORRUPT: return "audit records in the store are inconsistent";
	case AUDIT_EEXPORT: return "audit file disagrees with the store";
	case AUDIT_ENOINTENT: return "no such open intent";
	case AUDIT_ESIGN: return "checkpoint signing failed";
	case AUDIT_ENOTFOUND: return "not found";
	case AUDIT_EFORMAT: return "not a canonical audit record";
	case AUDIT_EBADLOG: return "audit log does not verify";
	case AUDIT_EKEY: return "bad audit public key";
	case AUDIT_ESTALE: return "records were added while the checkpoint was being signed";
	default: return "unknown audit error";
	}
}

int
audit_error_is_fatal(int err)
{
	return err == AUDIT_EFSYNC || err == AUDIT_EIO || err == AUDIT_ECORRUPT;
}

static int
from_store(int r)
{
	switch (r) {
	case STORE_OK: return 0;
	case STORE_ENOMEM: return AUDIT_ENOMEM;
	case STORE_EFSYNC: return AUDIT_EFSYNC;
	case STORE_EIO: return AUDIT_EIO;
	case STORE_EFULL: return AUDIT_EFULL;
	case STORE_ECORRUPT: return AUDIT_ECORRUPT;
	default: return AUDIT_ESTORE;
	}
}

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

static int
fsync_fd(int fd)
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
	r = fsync_fd(fd);
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
	if ((r = fsync_fd(a->fd)) != 0)
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

static int
file_append(audit_log_t *a, uint64_t seq, const char *line, size_t len)
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

/* ---- Store hooks -------------------------------------------------------------- */

static void
pending_clear(audit_log_t *a)
{
	for (size_t i = 0; i < a->npend; i++)
		free(a->pend[i].line);
	a->npend = 0;
	a->pend_seq = a->seq;
	memcpy(a->pend_prev, a->prev, sizeof(a->prev));
	a->pend_has_head = 0;
}

static void
on_commit(void *ctx)
{
	audit_log_t *a = ctx;
	int r = 0;
	a->seq = a->pend_seq;
	memcpy(a->prev, a->pend_prev, sizeof(a->prev));
	if (a->pend_has_head) {
		a->has_head = 1;
		memcpy(a->head, a->pend_head, sizeof(a->head));
		a->head_seq = a->pend_head_seq;
	}
	for (size_t i = 0; a->fd >= 0 && r == 0 && i < a->npend; i++)
		r = file_append(a, a->pend[i].seq, a->pend[i].line, a->pend[i].len);
	if (r == 0 && a->fd >= 0 && a->npend > 0 && (a->flags & AUDIT_OPT_FSYNC_EACH))
		r = fsync_fd(a->fd);
	if (r != 0 && a->sticky == 0)
		a->sticky = r;
	pending_clear(a);
}

static void
on_rollback(void *ctx)
{
	pending_clear(ctx);
}

/* ---- Appending records ----------------------------------------------------------- */

static int
txn_enter(audit_log_t *a, int *own)
{
	*own = 0;
	if (a->sticky)
		return a->sticky;
	if (store_txn_active(a->st))
		return 0;
	*own = 1;
	return from_store(store_txn_begin(a->st));
}

static int
txn_leave(audit_log_t *a, int own, int r)
{
	if (!own)
		return r;
	if (r != 0) {
		(void)store_txn_rollback(a->st);
		return r;
	}
	if ((r = from_store(store_txn_commit(a->st))) != 0)
		return r;
	return a->sticky;
}

/* Give @p r its place in the chain, store it, and queue it for export. */
static int
append(audit_log_t *a, struct audit_record *r, size_t *len_out)
{
	struct pending *np;
	size_t len;
	char *copy;
	int rc;

	r->seq = a->pend_seq + 1;
	memcpy(r->prev, a->pend_prev, sizeof(r->prev));
	if (r->time[0] == '\0')
		audit_time_now(r->time);
	if ((rc = audit_record_format(r, 0, a->buf, AUDIT_LINE_MAX + 1, &len)) != 0)
		return rc == AUDIT_EFORMAT ? AUDIT_EINVAL : rc;
	if (a->npend == a->cappend) {
		size_t cap = a->cappend ? a->cappend * 2 : 16;
		if ((np = realloc(a->pend, cap * sizeof(*np))) == NULL)
			return AUDIT_ENOMEM;
		a->pend = np;
		a->cappend = cap;
	}
	if ((copy = malloc(len + 2)) == NULL)
		return AUDIT_ENOMEM;
	memcpy(copy, a->buf, len + 1);
	if ((rc = from_store(store_audit_append(a->st, r->seq, copy, len))) != 0) {
		free(copy);
		return rc;
	}
	a->pend[a->npend++] = (struct pending){ copy, len, r->seq };
	a->pend_seq = r->seq;
	audit_line_hash(copy, len, a->pend_prev);
	if (len_out)
		*len_out = len;
	return 0;
}

static int
ident_copy(char *dst, size_t cap, const char *src)
{
	if (src == NULL || strlen(src) >= cap)
		return AUDIT_EINVAL;
	memcpy(dst, src, strlen(src) + 1);
	for (const char *s = src; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '_' || *s == '-'))
			return AUDIT_EINVAL;
	return *src ? 0 : AUDIT_EINVAL;
}

int
audit_request(audit_log_t *a, const struct audit_request *req, uint64_t *seq)
{
	struct audit_record *r = NULL;
	int own = 0, rc;

	if (a == NULL || req == NULL || req->rule == NULL || req->rule[0] == '\0' ||
	    req->n_inputs > AUDIT_INPUTS_MAX || (req->n_inputs && req->inputs == NULL))
		return AUDIT_EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return AUDIT_ENOMEM;
	r->type = AUDIT_T_REQUEST;
	r->uid = req->caller.uid;
	r->gid = req->caller.gid;
	r->pid = req->caller.pid;
	audit_text_copy(r->caller_name, sizeof(r->caller_name), req->caller.name);
	if ((rc = ident_copy(r->op, sizeof(r->op), req->op)) != 0)
		goto out;
	audit_text_copy(r->device, sizeof(r->device), req->device);
	r->index = req->index;
	for (size_t i = 0; i < req->n_inputs; i++) {
		if (req->inputs[i].sha256 == NULL ||
		    (rc = ident_copy(r->inputs[i].name, sizeof(r->inputs[i].name),
		                     req->inputs[i].name)) != 0) {
			rc = AUDIT_EINVAL;
			goto out;
		}
		audit_hex(req->inputs[i].sha256, 32, r->inputs[i].sha256);
	}
	r->n_inputs = req->n_inputs;
	r->allow = req->allow != 0;
	audit_text_copy(r->rule, sizeof(r->rule), req->rule);
	if (req->policy_sha256)
		audit_hex(req->policy_sha256, 32, r->policy);
	audit_text_copy(r->detail, sizeof(r->detail), req->detail);

	if ((rc = txn_enter(a, &own)) != 0)
		goto out;
	if ((rc = append(a, r, NULL)) == 0 && r->allow)
		rc = from_store(store_audit_intent_open(a->st, r->seq));
	rc = txn_leave(a, own, rc);
	if (rc == 0 && seq)
		*seq = r->seq;
out:
	free(r);
	return rc;
}

int
audit_result(audit_log_t *a, uint64_t intent_seq, const struct audit_result *res)
{
	struct audit_record *r = NULL;
	int own = 0, rc;

	if (a == NULL || res == NULL || intent_seq == 0 || res->serial_len > 20 ||
	    (res->serial_len && res->serial == NULL))
		return AUDIT_EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return AUDIT_ENOMEM;
	r->type = AUDIT_T_RESULT;
	r->ref = intent_seq;
	if ((rc = ident_copy(r->op, sizeof(r->op), res->op)) != 0)
		goto out;
	audit_text_copy(r->device, sizeof(r->device), res->device);
	r->index = res->index;
	r->error = res->error;
	if (res->serial_len)
		audit_hex(res->serial, res->serial_len, r->serial);
	if (res->cert_sha256)
		audit_hex(res->cert_sha256, 32, r->cert);
	r->has_zone_serial = res->has_zone_serial != 0;
	r->zone_serial = res->zone_serial;
	audit_text_copy(r->detail, sizeof(r->detail), res->detail);

	if ((rc = txn_enter(a, &own)) != 0)
		goto out;
	rc = store_audit_intent_close(a->st, intent_seq);
	rc = rc == STORE_ENOTFOUND ? AUDIT_ENOINTENT : from_store(rc);
	if (rc == 0)
		rc = append(a, r, NULL);
	rc = txn_leave(a, own, rc);
out:
	free(r);
	return rc;
}

int
audit_event(audit_log_t *a, const char *event, const char *detail)
{
	struct audit_record *r = NULL;
	int own = 0, rc;

	if (a == NULL)
		return AUDIT_EINVAL;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return AUDIT_ENOMEM;
	r->type = AUDIT_T_EVENT;
	if ((rc = ident_copy(r->event, sizeof(r->event), event)) != 0)
		goto out;
	audit_text_copy(r->detail, sizeof(r->detail), detail);
	if ((rc = txn_enter(a, &own)) == 0)
		rc = txn_leave(a, own, append(a, r, NULL));
out:
	free(r);
	return rc;
}

static int
abandon(audit_log_t *a, uint64_t intent_seq)
{
	struct audit_record *r = calloc(1, sizeof(*r));
	int rc;
	if (r == NULL)
		return AUDIT_ENOMEM;
	r->type = AUDIT_T_ABANDONED;
	r->ref = intent_seq;
	audit_text_copy(r->detail, sizeof(r->detail), "no result before the daemon stopped");
	rc = from_store(store_audit_intent_close(a->st, intent_seq));
	if (rc == 0)
		rc = append(a, r, NULL);
	free(r);
	return rc;
}

struct audit_checkpoint_pending {
	struct audit_record rec;
	unsigned char *msg;
	size_t len;
};

void
audit_checkpoint_abort(audit_checkpoint_pending_t *cp)
{
	if (cp == NULL)
		return;
	free(cp->msg);
	free(cp);
}

int
audit_checkpoint_begin(audit_log_t *a, const struct audit_role_count *counts, size_t n,
                       audit_checkpoint_pending_t **out, const unsigned char **msg, size_t *len)
{
	audit_checkpoint_pending_t *cp = NULL;
	struct audit_record *r;
	int rc = AUDIT_EINVAL;

	if (a == NULL || out == NULL || msg == NULL || len == NULL || n > AUDIT_ROLES_MAX ||
	    (n && counts == NULL))
		return AUDIT_EINVAL;
	if (a->sticky)
		return a->sticky;
	if ((cp = calloc(1, sizeof(*cp))) == NULL)
		return AUDIT_ENOMEM;
	r = &cp->rec;
	r->type = AUDIT_T_CHECKPOINT;
	/* Built on the committed chain: _end refuses it if that moved on. */
	r->seq = a->seq + 1;
	memcpy(r->prev, a->prev, sizeof(r->prev));
	memcpy(r->head, a->prev, sizeof(r->head));
	r->count = r->seq; /* records 1..seq, this one included */
	audit_time_now(r->time);
	for (size_t i = 0; i < n; i++) {
		if (ident_copy(r->sigs[i].role, sizeof(r->sigs[i].role), counts[i].role) != 0)
			goto out;
		r->sigs[i].count = counts[i].count;
	}
	r->n_sigs = n;
	if ((rc = audit_checkpoint_message(r, &cp->msg, &cp->len)) != 0)
		goto out;
	*msg = cp->msg;
	*len = cp->len;
	*out = cp;
	cp = NULL;
	rc = 0;
out:
	audit_checkpoint_abort(cp);
	return rc;
}

int
audit_checkpoint_end(audit_log_t *a, audit_checkpoint_pending_t *cp,
                     const unsigned char sig_raw[64], char head[65])
{
	struct audit_record *r;
	char hash[65];
	size_t len;
	int rc = AUDIT_EINVAL;

	if (a == NULL || cp == NULL || sig_raw == NULL || store_txn_active(a->st))
		goto out;
	if ((rc = a->sticky) != 0)
		goto out;
	r = &cp->rec;
	if (r->seq != a->seq + 1 || strcmp(r->prev, a->prev) != 0) {
		rc = AUDIT_ESTALE;
		goto out;
	}
	EVP_EncodeBlock((unsigned char *)r->sig, sig_raw, 64);
	if ((rc = from_store(store_txn_begin(a->st))) != 0)
		goto out;
	if ((rc = append(a, r, &len)) == 0) {
		audit_line_hash(a->buf, len, hash);
		rc = from_store(store_meta_set(a->st, "audit.head", hash, 64));
	}
	if (rc == 0)
		rc = from_store(store_meta_set_u64(a->st, "audit.head_seq", r->seq));
	if (rc == 0) {
		a->pend_has_head = 1;
		memcpy(a->pend_head, hash, sizeof(hash));
		a->pend_head_seq = r->seq;
	}
	if ((rc = txn_leave(a, 1, rc)) != 0)
		goto out;
	/* A checkpoint is the point up to which the file is known to be on disk. */
	if (a->fd >= 0 && (rc = fsync_fd(a->fd)) != 0) {
		a->sticky = rc;
		goto out;
	}
	if (head)
		memcpy(head, hash, sizeof(hash));
	rc = 0;
out:
	audit_checkpoint_abort(cp);
	return rc;
}

int
audit_checkpoint(audit_log_t *a, const struct audit_role_count *counts, size_t n,
                 audit_sign_fn sign, void *sign_ctx, char head[65])
{
	audit_checkpoint_pending_t *cp = NULL;
	const unsigned char *msg;
	unsigned char sig[64];
	size_t len;
	int rc;

	if (a == NULL || sign == NULL || store_txn_active(a->st))
		return AUDIT_EINVAL;
	if ((rc = audit_checkpoint_begin(a, counts, n, &cp, &msg, &len)) != 0)
		return rc;
	if (sign(sign_ctx, msg, len, sig) != 0) {
		audit_checkpoint_abort(cp);
		return AUDIT_ESIGN;
	}
	return audit_checkpoint_end(a, cp, sig, head);
}

int
audit_head_get(audit_log_t *a, char head[65], uint64_t *seq)
{
	if (a == NULL)
		return AUDIT_EINVAL;
	if (!a->has_head)
		return AUDIT_ENOTFOUND;
	if (head)
		memcpy(head, a->head, 65);
	if (seq)
		*seq = a->head_seq;
	return 0;
}

uint64_t
audit_last_seq(const audit_log_t *a)
{
	return a ? a->seq : 0;
}

int
audit_log_flush(audit_log_t *a)
{
	if (a == NULL)
		return AUDIT_EINVAL;
	if (a->sticky)
		return a->sticky;
	if (a->fd >= 0 && fsync_fd(a->fd) != 0)
		a->sticky = AUDIT_EFSYNC;
	return a->sticky;
}

void
audit_log_close(audit_log_t *a)
{
	if (a == NULL)
		return;
	store_txn_hooks_set(a->st, NULL, NULL, NULL);
	pending_clear(a);
	if (a->fd >= 0) {
		(void)fsync(a->fd);
		close(a->fd);
	}
	free(a->pend);
	free(a->buf);
	free(a->path);
	free(a);
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
	if ((x->err = file_append(x->a, seq, line, len)) != 0)
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
	return fsync_fd(a->fd);
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
			return r == AUDIT_ENOMEM ? r : from_store(r);
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
			return from_store(r);
		if ((r = fsync_fd(a->fd)) != 0)
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

	memcpy(a->prev, ZERO_HASH, sizeof(a->prev));
	r = store_audit_last(a->st, &a->seq, &line, &len);
	if (r == STORE_ENOTFOUND) {
		a->seq = 0;
	} else if (r != 0) {
		return from_store(r);
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
		r = from_store(store_meta_get_u64(a->st, "audit.head_seq", &a->head_seq));
		a->has_head = r == 0;
	} else if (r == 0) {
		r = AUDIT_ECORRUPT;
	} else {
		r = r == STORE_ENOTFOUND ? 0 : from_store(r);
	}
	free(v);
	return r;
}

int
audit_log_open(audit_log_t **out, store_t *st, const struct audit_opts *opts,
               struct audit_open_report *report)
{
	struct audit_open_report rep = { 0, 0, 0 };
	audit_log_t *a = NULL;
	uint64_t *intents = NULL;
	size_t nintents = 0;
	char detail[256];
	int r = AUDIT_EINVAL, own = 0;

	if (out == NULL || st == NULL || store_txn_active(st))
		return AUDIT_EINVAL;
	*out = NULL;
	r = AUDIT_ENOMEM;
	if ((a = calloc(1, sizeof(*a))) == NULL || (a->buf = malloc(AUDIT_LINE_MAX + 2)) == NULL)
		goto out;
	a->st = st;
	a->fd = -1;
	if (opts && opts->path) {
		if ((a->path = strdup(opts->path)) == NULL)
			goto out;
		a->rotate_bytes = opts->rotate_bytes;
		a->flags = opts->flags;
	}
	if ((r = state_load(a)) != 0)
		goto out;
	pending_clear(a);
	if (a->path && (r = file_repair(a, &rep)) != 0)
		goto out;
	store_txn_hooks_set(st, on_commit, on_rollback, a);

	/* What was found is itself recorded, in one transaction. */
	if ((r = from_store(store_audit_intents_open(st, &intents, &nintents))) != 0)
		goto out;
	if (rep.torn_bytes == 0 && rep.reexported == 0 && nintents == 0)
		goto done;
	if ((r = txn_enter(a, &own)) != 0)
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
		r = abandon(a, intents[i]);
	if ((r = txn_leave(a, own, r)) != 0)
		goto out;
	rep.abandoned = nintents;
done:
	if (a->fd >= 0 && (r = fsync_fd(a->fd)) != 0)
		goto out;
	if (report)
		*report = rep;
	*out = a;
	a = NULL;
	r = 0;
out:
	free(intents);
	if (a) {
		store_txn_hooks_set(st, NULL, NULL, NULL);
		audit_log_close(a);
	}
	return r;
}
