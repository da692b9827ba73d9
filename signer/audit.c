/*
 * The audit log: records appended to the store inside the caller's
 * transaction, exported to the JSON-lines file once committed, signed
 * checkpoints (the file itself and the repairs made at open live in
 * audit_export.c). See audit.h.
 *
 * State is kept twice: what is committed (seq, prev, head) and what the
 * open transaction has added on top (pend_*). The store's commit hook
 * promotes the pending state and exports the pending lines; its rollback
 * hook forgets them. So a record reaches the file only once it is durable
 * in the store, and a rolled-back record never does.
 */
#include "signer/audit.h"
#include "signer/audit_int.h"
#include "signer/audit_record.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int
audit__from_store(int r)
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

/* ---- Pending state ------------------------------------------------------------ */

void
audit__pending_clear(audit_log_t *a)
{
	a->npend = 0;
	a->plen = 0;
	a->pend_seq = a->seq;
	memcpy(a->pend_prev, a->prev, sizeof(a->prev));
	a->pend_has_head = 0;
}

/* ---- The open intents --------------------------------------------------------- */

/* Index of @p seq in a->open (open or closed), or a->nopen if it is not there. */
static size_t
open_find(const audit_log_t *a, uint64_t seq)
{
	size_t lo = 0, hi = a->nopen;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		uint64_t v = a->open[mid] & ~AUDIT__CLOSED;

		if (v == seq)
			return mid;
		if (v < seq)
			lo = mid + 1;
		else
			hi = mid;
	}
	return a->nopen;
}

/* Room for one more undo entry, taken before the set changes. */
static int
undo_reserve(audit_log_t *a)
{
	uint64_t *nu;
	size_t cap;

	if (a->nundo < a->capundo)
		return 0;
	cap = a->capundo ? a->capundo * 2 : 64;
	if ((nu = realloc(a->undo, cap * sizeof(*nu))) == NULL)
		return AUDIT_ENOMEM;
	a->undo = nu;
	a->capundo = cap;
	return 0;
}

int
audit__open_add(audit_log_t *a, uint64_t seq)
{
	uint64_t *no;
	int rc;

	if (seq == 0 || seq >= AUDIT__CLOSED ||
	    (a->nopen > 0 && (a->open[a->nopen - 1] & ~AUDIT__CLOSED) >= seq))
		return AUDIT_EINVAL;
	if ((rc = undo_reserve(a)) != 0)
		return rc;
	if (a->nopen == a->capopen) {
		size_t cap = a->capopen ? a->capopen * 2 : 256;

		if ((no = realloc(a->open, cap * sizeof(*no))) == NULL)
			return AUDIT_ENOMEM;
		a->open = no;
		a->capopen = cap;
	}
	a->open[a->nopen++] = seq;
	a->undo[a->nundo++] = seq | AUDIT__UNDO_OPEN;
	return 0;
}

int
audit__open_close(audit_log_t *a, uint64_t seq)
{
	size_t i = open_find(a, seq);
	int rc;

	if (i == a->nopen || (a->open[i] & AUDIT__CLOSED))
		return AUDIT_ENOINTENT;
	if ((rc = undo_reserve(a)) != 0)
		return rc;
	a->open[i] |= AUDIT__CLOSED;
	a->nclosed++;
	a->undo[a->nundo++] = seq;
	return 0;
}

uint64_t
audit__open_lowest(const audit_log_t *a)
{
	for (size_t i = 0; i < a->nopen; i++)
		if (!(a->open[i] & AUDIT__CLOSED))
			return a->open[i];
	return 0;
}

/* The transaction committed: its changes stay; drop the closed entries
 * once they are the larger part (one pass, amortised over the commits). */
static void
open_commit(audit_log_t *a)
{
	size_t j = 0;

	a->nundo = 0;
	if (a->nclosed == 0 || a->nclosed * 2 < a->nopen)
		return;
	for (size_t i = 0; i < a->nopen; i++)
		if (!(a->open[i] & AUDIT__CLOSED))
			a->open[j++] = a->open[i];
	a->nopen = j;
	a->nclosed = 0;
}

/* The transaction rolled back: undo its changes, newest first. */
static void
open_rollback(audit_log_t *a)
{
	while (a->nundo > 0) {
		uint64_t u = a->undo[--a->nundo];
		uint64_t seq = u & ~AUDIT__UNDO_OPEN;
		size_t i = open_find(a, seq);

		if (i == a->nopen)
			continue; /* cannot happen: nothing is compacted mid-transaction */
		if (a->open[i] & AUDIT__CLOSED) {
			a->open[i] &= ~AUDIT__CLOSED;
			a->nclosed--;
		}
		/* An intent opened by this transaction is the last entry by now. */
		if ((u & AUDIT__UNDO_OPEN) && i == a->nopen - 1)
			a->nopen--;
	}
}

/* ---- Store hooks -------------------------------------------------------------- */

void
audit__on_commit(void *ctx)
{
	audit_log_t *a = ctx;
	int r = 0;
	open_commit(a);
	a->seq = a->pend_seq;
	memcpy(a->prev, a->pend_prev, sizeof(a->prev));
	if (a->pend_has_head) {
		a->has_head = 1;
		memcpy(a->head, a->pend_head, sizeof(a->head));
		a->head_seq = a->pend_head_seq;
	}
	if (a->fd >= 0)
		r = audit__file_append_pending(a);
	if (r == 0 && a->fd >= 0 && a->npend > 0 && (a->flags & AUDIT_OPT_FSYNC_EACH))
		r = audit__fsync_fd(a->fd);
	if (r != 0 && a->sticky == 0)
		a->sticky = r;
	audit__pending_clear(a);
}

int
audit__pre_commit(void *ctx)
{
	audit_log_t *a = ctx;
	struct store_audit_row *nr;
	int rc;

	if (a->npend == 0)
		return 0;
	if (a->caprows < a->npend) {
		if ((nr = realloc(a->rows, a->cappend * sizeof(*nr))) == NULL)
			return STORE_ENOMEM;
		a->rows = nr;
		a->caprows = a->cappend;
	}
	for (size_t i = 0; i < a->npend; i++)
		a->rows[i] = (struct store_audit_row){ a->pend[i].seq, a->pbuf + a->pend[i].off,
		                                       a->pend[i].len };
	rc = store_audit_append_rows(a->st, a->rows, a->npend);
	/* a->open already holds this transaction's opens and closes: its lowest
	 * open intent is the mark for the state this commit makes. */
	if (rc == 0 && a->pend_seq >= a->mark_at + AUDIT__MARK_EVERY) {
		uint64_t low = audit__open_lowest(a);

		rc = store_meta_set_u64(a->st, AUDIT__OPEN_FROM_KEY, low ? low : a->pend_seq + 1);
		if (rc == 0)
			a->mark_at = a->pend_seq;
	}
	return rc;
}

void
audit__on_rollback(void *ctx)
{
	open_rollback(ctx);
	audit__pending_clear(ctx);
}

/* ---- Appending records ----------------------------------------------------------- */

int
audit__txn_enter(audit_log_t *a, int *own)
{
	*own = 0;
	if (a->sticky)
		return a->sticky;
	if (store_txn_active(a->st))
		return 0;
	*own = 1;
	return audit__from_store(store_txn_begin(a->st));
}

int
audit__txn_leave(audit_log_t *a, int own, int r)
{
	if (!own)
		return r;
	if (r != 0) {
		(void)store_txn_rollback(a->st);
		return r;
	}
	if ((r = audit__from_store(store_txn_commit(a->st))) != 0)
		return r;
	return a->sticky;
}

/* Room in a->pbuf for one more line of the longest size and its newline. */
static int
pbuf_reserve(audit_log_t *a)
{
	size_t need = a->plen + AUDIT_LINE_MAX + 2;
	char *np;
	if (need <= a->pcap)
		return 0;
	size_t cap = a->pcap ? a->pcap : 4 * (AUDIT_LINE_MAX + 2);
	while (cap < need)
		cap *= 2;
	if ((np = realloc(a->pbuf, cap)) == NULL)
		return AUDIT_ENOMEM;
	a->pbuf = np;
	a->pcap = cap;
	return 0;
}

/*
 * Give @p r its place in the chain and queue it for the store and the
 * export. The line is formatted once, in place at the end of a->pbuf: the
 * hash is taken of it there, the pre-commit hook stores it from there, and
 * the commit hook writes it to the file from there.
 */
static int
append(audit_log_t *a, struct audit_record *r, size_t *len_out)
{
	struct pending *np;
	size_t len;
	char *line;
	int rc;

	r->seq = a->pend_seq + 1;
	memcpy(r->prev, a->pend_prev, sizeof(r->prev));
	if (r->time[0] == '\0')
		audit__time_now(a, r->time);
	if (a->npend == a->cappend) {
		size_t cap = a->cappend ? a->cappend * 2 : 16;
		if ((np = realloc(a->pend, cap * sizeof(*np))) == NULL)
			return AUDIT_ENOMEM;
		a->pend = np;
		a->cappend = cap;
	}
	if ((rc = pbuf_reserve(a)) != 0)
		return rc;
	line = a->pbuf + a->plen;
	if ((rc = audit_record_format(r, 0, line, AUDIT_LINE_MAX + 1, &len)) != 0)
		return rc == AUDIT_EFORMAT ? AUDIT_EINVAL : rc;
	/* The row reaches the store at the commit, with the transaction's other
	 * records in one INSERT (audit__pre_commit()). */
	line[len] = '\n';
	a->pend[a->npend++] = (struct pending){ a->plen, len, r->seq };
	a->plen += len + 1;
	a->pend_seq = r->seq;
	audit__line_hash(a, line, len, a->pend_prev);
	if (len_out)
		*len_out = len;
	return 0;
}

/*
 * The handle's record, reset for a new record of @p type. Only what the
 * check and the writer read is reset (every scalar and the first byte of
 * every string): clearing all of its few kilobytes per record cost as
 * much as formatting it. A member added to struct audit_record must be
 * added here.
 */
static struct audit_record *
rec_fresh(audit_log_t *a, int type)
{
	struct audit_record *r = &a->rec;
	r->seq = 0;
	r->time[0] = r->prev[0] = '\0';
	r->type = type;
	r->uid = r->gid = 0;
	r->pid = 0;
	r->caller_name[0] = r->op[0] = r->device[0] = '\0';
	r->index = 0;
	r->n_inputs = 0;
	r->allow = 0;
	r->rule[0] = r->policy[0] = '\0';
	r->ref = 0;
	r->error = 0;
	r->serial[0] = r->cert[0] = '\0';
	r->has_zone_serial = 0;
	r->zone_serial = 0;
	r->event[0] = r->head[0] = '\0';
	r->count = 0;
	r->n_sigs = 0;
	r->sig[0] = '\0';
	r->detail[0] = '\0';
	return r;
}

static int
ident_copy_ex(char *dst, size_t cap, const char *src, int slash)
{
	if (src == NULL || strlen(src) >= cap)
		return AUDIT_EINVAL;
	memcpy(dst, src, strlen(src) + 1);
	for (const char *s = src; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '.' ||
		      *s == '_' || *s == '-' || (slash && *s == '/')))
			return AUDIT_EINVAL;
	return *src ? 0 : AUDIT_EINVAL;
}

static int
ident_copy(char *dst, size_t cap, const char *src)
{
	return ident_copy_ex(dst, cap, src, 0);
}

int
audit_request(audit_log_t *a, const struct audit_request *req, uint64_t *seq)
{
	struct audit_record *r = NULL;
	int own = 0, rc;

	if (a == NULL || req == NULL || req->rule == NULL || req->rule[0] == '\0' ||
	    req->n_inputs > AUDIT_INPUTS_MAX || (req->n_inputs && req->inputs == NULL))
		return AUDIT_EINVAL;
	r = rec_fresh(a, AUDIT_T_REQUEST);
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

	if ((rc = audit__txn_enter(a, &own)) != 0)
		goto out;
	if ((rc = append(a, r, NULL)) == 0 && r->allow)
		rc = audit__open_add(a, r->seq);
	rc = audit__txn_leave(a, own, rc);
	if (rc == 0 && seq)
		*seq = r->seq;
out:
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
	r = rec_fresh(a, AUDIT_T_RESULT);
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

	if ((rc = audit__txn_enter(a, &own)) != 0)
		goto out;
	if ((rc = audit__open_close(a, intent_seq)) == 0)
		rc = append(a, r, NULL);
	rc = audit__txn_leave(a, own, rc);
out:
	return rc;
}

int
audit_event(audit_log_t *a, const char *event, const char *detail)
{
	struct audit_record *r = NULL;
	int own = 0, rc;

	if (a == NULL)
		return AUDIT_EINVAL;
	r = rec_fresh(a, AUDIT_T_EVENT);
	if ((rc = ident_copy(r->event, sizeof(r->event), event)) != 0)
		goto out;
	audit_text_copy(r->detail, sizeof(r->detail), detail);
	if ((rc = audit__txn_enter(a, &own)) == 0)
		rc = audit__txn_leave(a, own, append(a, r, NULL));
out:
	return rc;
}

int
audit__abandon(audit_log_t *a, uint64_t intent_seq)
{
	struct audit_record *r = rec_fresh(a, AUDIT_T_ABANDONED);
	int rc;
	r->ref = intent_seq;
	audit_text_copy(r->detail, sizeof(r->detail), "no result before the daemon stopped");
	if ((rc = audit__open_close(a, intent_seq)) == 0)
		rc = append(a, r, NULL);
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
		/* Extra-zone roles are "<zone>/zsk": a role may hold '/'. */
		if (ident_copy_ex(r->sigs[i].role, sizeof(r->sigs[i].role), counts[i].role, 1) != 0)
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
	if ((rc = audit__from_store(store_txn_begin(a->st))) != 0)
		goto out;
	if ((rc = append(a, r, &len)) == 0) {
		/* append() has just hashed the line: it is the new prev. */
		memcpy(hash, a->pend_prev, sizeof(hash));
		rc = audit__from_store(store_meta_set(a->st, "audit.head", hash, 64));
	}
	if (rc == 0)
		rc = audit__from_store(store_meta_set_u64(a->st, "audit.head_seq", r->seq));
	/* Where the next start looks for open intents: nothing below the lowest
	 * one still waits for its result (no other transaction is open). */
	if (rc == 0) {
		uint64_t low = audit__open_lowest(a);

		rc = audit__from_store(store_meta_set_u64(a->st, AUDIT__OPEN_FROM_KEY,
		                                          low ? low : r->seq + 1));
		a->mark_at = r->seq;
	}
	if (rc == 0) {
		a->pend_has_head = 1;
		memcpy(a->pend_head, hash, sizeof(hash));
		a->pend_head_seq = r->seq;
	}
	if ((rc = audit__txn_leave(a, 1, rc)) != 0)
		goto out;
	/* A checkpoint is the point up to which the file is known to be on disk. */
	if (a->fd >= 0 && (rc = audit__fsync_fd(a->fd)) != 0) {
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
audit_intents_open(const audit_log_t *a, uint64_t **seqs, size_t *n)
{
	uint64_t *v = NULL;
	size_t k = 0;

	if (a == NULL || seqs == NULL || n == NULL)
		return AUDIT_EINVAL;
	if (a->nopen > a->nclosed && (v = malloc((a->nopen - a->nclosed) * sizeof(*v))) == NULL)
		return AUDIT_ENOMEM;
	for (size_t i = 0; i < a->nopen; i++)
		if (!(a->open[i] & AUDIT__CLOSED))
			v[k++] = a->open[i];
	*seqs = v;
	*n = k;
	return 0;
}

int
audit_log_flush(audit_log_t *a)
{
	if (a == NULL)
		return AUDIT_EINVAL;
	if (a->sticky)
		return a->sticky;
	if (a->fd >= 0 && audit__fsync_fd(a->fd) != 0)
		a->sticky = AUDIT_EFSYNC;
	return a->sticky;
}

void
audit_log_close(audit_log_t *a)
{
	if (a == NULL)
		return;
	store_txn_hooks_set(a->st, NULL, NULL, NULL);
	store_txn_precommit_set(a->st, NULL, NULL);
	audit__pending_clear(a);
	if (a->fd >= 0) {
		(void)fsync(a->fd);
		close(a->fd);
	}
	free(a->open);
	free(a->undo);
	free(a->rows);
	free(a->pend);
	free(a->pbuf);
	EVP_MD_CTX_free(a->mdctx);
	EVP_MD_free(a->sha256);
	free(a->buf);
	free(a->path);
	free(a);
}
