/*
 * A signed test zone for the DNS listener's tests and its test server: an
 * in-memory EC P-256 KSK and ZSK stand in for the HSM, every change's diff
 * goes to an in-memory journal. Plain C (no cmocka), so that the test server
 * executable can use it too; functions return 0 or a negative error.
 */
#ifndef REGSIGN_TEST_DNS_SUPPORT_H
#define REGSIGN_TEST_DNS_SUPPORT_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

struct zone;
struct zone_sigreq;
struct dns_journal_mem;

struct tds_zone {
	EVP_PKEY *ksk, *zsk;
	struct zone *z;
	struct dns_journal_mem *journal;
	uint32_t next;       /* devices made so far; the next id is derived from it */
	int64_t now;
	size_t sigs;         /* signatures made */
};

/** The signing callback (struct tds_zone * as ctx): ECDSA over SHA-256 of the data. */
int tds_sign(void *ctx, struct zone_sigreq *reqs, size_t n);

/**
 * Make keys and a zone @p origin (NULL: iotregistry.test.) whose first version
 * has the apex only, then @p ndev devices bulk-imported (a version without a
 * diff: the journal starts empty after it).
 */
int tds_zone_init(struct tds_zone *t, const char *origin, size_t ndev);

/** Device id of the i-th device (i from 0): 20 hex digits. */
void tds_device_id(uint32_t i, char id[21]);

/** One change adding @p n new devices (style seed); its diff is journalled. */
int tds_zone_add(struct tds_zone *t, size_t n);

/** One change removing device number @p i (index 1); its diff is journalled. */
int tds_zone_remove(struct tds_zone *t, uint32_t i);

/**
 * One change adding the RRs @p add and removing @p del (presentation lines,
 * e.g. "www.iotregistry.test. 3600 IN TXT \"x\""); its diff is journalled.
 */
int tds_zone_rrs(struct tds_zone *t, const char *const *add, size_t nadd,
		 const char *const *del, size_t ndel);

void tds_zone_free(struct tds_zone *t);

#endif
