/**
 * @file audit_record.h
 * @brief One audit record: its canonical JSON line, a strict parser, hashes.
 *
 * Shared by the writer (signer/audit.c), the verifier and `regsign audit
 * show`. A record is one line of JSON without whitespace, with members in
 * this fixed order (optional members in brackets, left out when empty/0):
 *
 *   request:    seq time prev type caller{uid gid pid name} op [device] [index]
 *               [inputs[{name sha256}...]] decision rule [policy] [detail]
 *   result:     seq time prev type ref op [device] [index] error [serial] [cert]
 *               [zone_serial] [detail]
 *   abandoned:  seq time prev type ref [detail]
 *   event:      seq time prev type event [detail]
 *   checkpoint: seq time prev type head count sigs[{role count}...] sig
 *
 * seq counts from 1 without gaps; time is UTC, "YYYY-MM-DDTHH:MM:SS.mmmZ";
 * prev, head, policy, cert and input hashes are lowercase hex SHA-256;
 * serial is lowercase hex; sig is standard base64 of the 64-byte r||s.
 * Strings are UTF-8 and escape exactly '"', '\\' and the control characters
 * (\b \f \n \r \t, else \u00xx); nothing else is escaped. Numbers are
 * decimal without leading zeros (error may be negative).
 *
 * The hash of a line (prev, head) is SHA-256 over its bytes without the
 * final newline. A checkpoint is signed over AUDIT_CHECKPOINT_DOMAIN (with
 * its NUL) followed by the line as formatted without its "sig" member.
 */
#ifndef REGSIGN_SIGNER_AUDIT_RECORD_H
#define REGSIGN_SIGNER_AUDIT_RECORD_H

#include <stddef.h>
#include <stdint.h>

#include "signer/audit.h"

/** Longest line accepted or written, newline excluded. */
#define AUDIT_LINE_MAX 16384

enum audit_type {
	AUDIT_T_REQUEST = 1,
	AUDIT_T_RESULT,
	AUDIT_T_ABANDONED,
	AUDIT_T_EVENT,
	AUDIT_T_CHECKPOINT,
};

struct audit_rec_input {
	char name[33];
	char sha256[65];
};

struct audit_rec_role {
	char role[65];
	uint64_t count;
};

/** A record in memory: every string is NUL-terminated, "" when absent. */
struct audit_record {
	uint64_t seq;
	char time[25];
	char prev[65];
	int type;                    /**< enum audit_type */
	/* request */
	uint32_t uid, gid;
	int32_t pid;
	char caller_name[65];
	char op[33];
	char device[65];
	uint32_t index;              /**< 0 = absent */
	struct audit_rec_input inputs[AUDIT_INPUTS_MAX];
	size_t n_inputs;
	int allow;                   /**< decision: 1 allow, 0 deny */
	char rule[129];
	char policy[65];
	/* result, abandoned */
	uint64_t ref;                /**< seq of the intent */
	int32_t error;
	char serial[41];
	char cert[65];
	int has_zone_serial;
	uint32_t zone_serial;
	/* event */
	char event[33];
	/* checkpoint */
	char head[65];
	uint64_t count;
	struct audit_rec_role sigs[AUDIT_ROLES_MAX];
	size_t n_sigs;
	char sig[89];
	/* all */
	char detail[513];
};

/** The "type" member's text for @p type, or NULL. */
const char *audit_type_name(int type);

/** Formatting flags. */
enum audit_fmt_flags {
	AUDIT_FMT_NO_SIG = 1 << 0, /**< leave the checkpoint's "sig" out (signed form) */
};

/**
 * Check the record's fields (shapes, required members), then write its
 * canonical line into @p buf (NUL-terminated, no newline).
 * @return AUDIT_EINVAL naming nothing (see audit_record_check() for why),
 *         or AUDIT_EFORMAT when it does not fit @p cap.
 */
int audit_record_format(const struct audit_record *r, unsigned flags, char *buf, size_t cap,
                        size_t *len);

/**
 * Check every field of @p r. On failure writes why into @p why (may be
 * NULL) and returns AUDIT_EINVAL.
 */
int audit_record_check(const struct audit_record *r, unsigned flags, char *why, size_t whylen);

/**
 * Parse one line (without its newline) strictly: it must be JSON of the
 * shape above AND byte-identical to the record's canonical line.
 * @return 0, or AUDIT_EFORMAT with the reason in @p why (may be NULL).
 */
int audit_record_parse(const char *line, size_t len, struct audit_record *r,
                       char *why, size_t whylen);

/** SHA-256 of @p line as 64 lowercase hex digits plus NUL. */
void audit_line_hash(const char *line, size_t len, char hex[65]);

/** Lowercase hex of @p n bytes into @p out (2n+1 bytes). */
void audit_hex(const unsigned char *p, size_t n, char *out);

/**
 * The bytes a checkpoint signature covers: AUDIT_CHECKPOINT_DOMAIN with
 * its NUL, then the line formatted with AUDIT_FMT_NO_SIG. Malloc'ed for
 * the caller.
 */
int audit_checkpoint_message(const struct audit_record *r, unsigned char **msg, size_t *len);

/** Current UTC time as "YYYY-MM-DDTHH:MM:SS.mmmZ". */
void audit_time_now(char out[25]);

/**
 * Copy free text into a record field: invalid UTF-8 bytes become '?' and
 * the text is cut (at a character boundary) to fit @p cap with its NUL.
 */
void audit_text_copy(char *dst, size_t cap, const char *src);

#endif /* REGSIGN_SIGNER_AUDIT_RECORD_H */
