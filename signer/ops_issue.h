/**
 * @file ops_issue.h
 * @brief Internal to regsignd: the state of an ISSUE or REISSUE request,
 * shared by its loop side (signer/ops_issue.c) and its writer-thread passes
 * (signer/ops_issue_store.c).
 */
#ifndef REGSIGN_SIGNER_OPS_ISSUE_H
#define REGSIGN_SIGNER_OPS_ISSUE_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "signer/ops_ctx.h"
#include "signer/ops_zone.h"
#include "signer/x509.h"

/* RFC 5280 CRLReason superseded. */
#define OPS_REASON_SUPERSEDED 4

enum issue_outcome {
	ISSUE_REFUSED = 1, /* r->err_code says why */
	ISSUE_REPEAT,      /* answered from the store */
	ISSUE_FOLLOW,      /* the same request is in flight: answered with it */
	ISSUE_SIGN,        /* intent committed: the HSM signs next */
	ISSUE_DONE,        /* certificate committed */
};

struct issue_state {
	struct ops_req *r;
	int reissue;
	uint32_t old_index;
	char profile[PROTO_MAX_PROFILE + 1];
	EVP_PKEY *key;                 /* the CSR's public key */
	unsigned char *spki;           /* its SubjectPublicKeyInfo as the CSR has it */
	size_t spki_len;
	int outcome;
	/* first pass */
	const struct policy_profile *prof;
	const char *zone;              /* the policy's registry zone (pol outlives s) */
	unsigned char serial[X509_SERIAL_LEN];
	int64_t not_before, not_after;
	unsigned char *tbs;
	size_t tbs_len;
	uint64_t intent;
	struct ops_inflight *resv;     /* our reservation, while in flight */
	unsigned char old_serial[STORE_SERIAL_MAX];
	size_t old_serial_len;
	/* HSM */
	int sign_status;
	char sign_reason[HSMPROTO_MAX_REASON + 1];
	unsigned char sig[X509_ECDSA_SIG_MAX];
	size_t sig_len;
	/* result */
	unsigned char *cert;
	size_t cert_len;
	char serial_hex[2 * STORE_SERIAL_MAX + 1];
	uint32_t zone_serial;          /* the zone serial that holds the record */
	struct ops_zreq z;             /* the zone change (second pass) */
	struct ops_req *leader;        /* FOLLOW: the request doing the work */
	struct ops_req *followers;     /* requests waiting for this one's answer */
	/* threadpool work (CSR check, TBS build, assembly) */
	uv_work_t work;
	int csr_err;
	char detail[X509_DETAIL_SIZE];
	const char *alg;               /* the policy's name of the CSR's key type */
	int x509_err;                  /* TBS build or assembly result */
};

/** Writer thread: first pass (decision, serial, INTENT, reservation). */
int ops_issue_run1(struct commit_item *it, void *env);

/** Writer thread: forgets what a failed first pass set up. */
void ops_issue_undo1(struct commit_item *it, void *env);

/**
 * Writer thread: second pass. With r->err_code set (signing or X.509 work
 * failed) records the failed RESULT; else the certificate row and RESULT.
 */
int ops_issue_run2(struct commit_item *it, void *env);

/**
 * Writer thread: the second pass inside the zone's transaction (the
 * certificate row, the old one's revocation for REISSUE, and the RESULT).
 * A row that cannot be inserted fails the transaction here, since the zone
 * change would otherwise commit without its certificate. The RESULT names
 * @p serial, the zone serial that will hold the record.
 */
int ops_issue_zone_store(struct ops_req *r, struct ops_writer *w, uint32_t serial);

/** Lowercase hex of @p n bytes into @p out (2n + 1 bytes). */
void ops_hex(const unsigned char *p, size_t n, char *out);

#endif
