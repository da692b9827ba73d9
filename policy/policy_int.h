/*
 * Internal structures of libregsign-policy shared by policy.c (loading and
 * validation) and policy_decide.c (decisions). Not installed, not for other
 * folders.
 */
#ifndef REGSIGN_POLICY_POLICY_INT_H
#define REGSIGN_POLICY_POLICY_INT_H

#include "policy/pname.h"
#include "policy/policy.h"

struct policy_extra_zone {
    char *name;                /* absolute, lowercase */
    struct pname pname;
    int64_t max_validity;
    int64_t max_inception_skew;
};

struct policy_subtree {
    char *name;                /* absolute, lowercase */
    struct pname pname;
};

/* A caller: the public part first, so a public pointer converts back. */
struct policy_caller_rec {
    struct policy_caller pub;
    const struct policy_profile **profiles;
    size_t nprofiles;
    struct policy_subtree *subtrees;
    size_t nsubtrees;
    const struct policy_extra_zone **zones; /* NULL: every extra zone */
    size_t nzones;
};

struct policy {
    struct yconf_doc *doc;     /* kept: unmodified strings point into it */
    uint8_t sha256[32];
    char sha256_hex[65];
    struct policy_zone zone;
    char *zone_name;
    struct pname zone_pname;
    struct policy_device_id device_id;
    int64_t crl_next_update;
    uint32_t reasons;          /* bit (1u << RFC 5280 code) per allowed reason */
    struct policy_profile *profiles;
    size_t nprofiles;
    struct policy_caller_rec *callers;
    size_t ncallers;
    struct policy_extra_zone *zones;
    size_t nzones;
};

/* Parses an absolute domain name written in a policy file (letters, digits,
 * '-', '_', no escapes) into @p pn and a lowercase copy in @p out. */
int policy_read_domain(const struct yconf_node *node, struct pname *pn, char **out,
                       char *err, size_t errlen);

/* Reads and checks the callers sequence into pol->callers (policy_callers.c);
 * needs the zone, profiles and extra zones already read. */
int policy_read_callers(struct policy *pol, const struct yconf_node *seq, char *err,
                        size_t errlen);

/* True if a label of only hex digits, at least device-id.min-length long,
 * sits directly below the registry zone in @p name: the device namespace. */
bool policy_name_in_device_namespace(const struct policy *pol, const struct pname *name);

/* True if any label of @p name is "*". */
bool policy_name_has_wildcard(const struct pname *name);

/* Fills @p d and returns @p code. */
enum policy_code policy_decide(struct policy_decision *d, enum policy_code code,
                               const char *rule, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* policy_check_operation for a check that goes on after an allow (and so
 * overwrites it): on allow it returns POLICY_ALLOW without writing @p d. */
enum policy_code policy__operation_step(const struct policy *pol,
                                        const struct policy_caller *caller,
                                        enum policy_op op, struct policy_decision *d);

/* A printable copy of request text for messages: at most 96 bytes, '?' for
 * unprintable bytes, '~' when shortened, "(none)" for NULL. */
const char *policy_show(const char *s, char *buf, size_t len);

/* Reason names in policy files, indexed by RFC 5280 CRLReason code; NULL
 * where a code cannot be named (7 is unused, the CA-compromise reasons and
 * certificateHold and removeFromCRL do not apply to device certificates). */
extern const char *const policy_reason_names[11];

/* Operation names indexed by enum policy_op, NULL-terminated. */
extern const char *const policy_op_names[POLICY_OP_COUNT + 1];

#endif /* REGSIGN_POLICY_POLICY_INT_H */
