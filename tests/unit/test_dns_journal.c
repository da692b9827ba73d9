/*
 * Tests of the in-memory IXFR journal (signer/dns_journal.h): diffs come
 * back by their from-serial as independent copies, a gap resets the
 * journal, the oldest diffs are dropped beyond the limit.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "signer/dns_journal.h"
#include "test_dns_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"

static void test_journal(void **state)
{
	struct tds_zone tz;
	struct dns_journal j;
	struct zone_diff *d = NULL;
	uint32_t s0;

	(void)state;
	assert_int_equal(tds_zone_init(&tz, NULL, 5), 0);
	j = dns_journal_mem_ops(tz.journal);
	s0 = zone_serial(tz.z);
	assert_int_equal(dns_journal_mem_count(tz.journal), 0);
	assert_int_equal(j.diff_from(j.ctx, s0, &d), DNS_ENOENT);
	assert_null(d);
	for (int i = 0; i < 3; i++)
		assert_int_equal(tds_zone_add(&tz, 2), 0);
	assert_int_equal(dns_journal_mem_count(tz.journal), 3);
	for (uint32_t s = s0; s < s0 + 3; s++) {
		assert_int_equal(j.diff_from(j.ctx, s, &d), 0);
		assert_int_equal(zone_diff_serial_from(d), s);
		assert_int_equal(zone_diff_serial_to(d), s + 1);
		/* Old SOA, its RRSIG, the predecessors' NSECs and RRSIGs... */
		assert_true(ldns_rr_list_rr_count(zone_diff_removed(d)) >= 2);
		/* ...and the new SOA, 2 CERTs, NSECs and every new RRSIG. */
		assert_true(ldns_rr_list_rr_count(zone_diff_added(d)) >= 10);
		zone_diff_free(d);
		d = NULL;
	}
	assert_int_equal(j.diff_from(j.ctx, s0 + 3, &d), DNS_ENOENT);
	dns_journal_mem_reset(tz.journal);
	assert_int_equal(dns_journal_mem_count(tz.journal), 0);
	assert_int_equal(j.diff_from(j.ctx, s0, &d), DNS_ENOENT);
	tds_zone_free(&tz);
}

static void test_limit_and_gap(void **state)
{
	struct tds_zone tz;
	struct dns_journal_mem *small = NULL;
	struct dns_journal all, j;
	struct zone_diff *d[5] = { 0 }, *got = NULL;
	uint32_t s0;

	(void)state;
	assert_int_equal(tds_zone_init(&tz, NULL, 3), 0);
	all = dns_journal_mem_ops(tz.journal);
	s0 = zone_serial(tz.z);
	for (int i = 0; i < 5; i++)
		assert_int_equal(tds_zone_add(&tz, 1), 0);
	for (uint32_t i = 0; i < 5; i++)
		assert_int_equal(all.diff_from(all.ctx, s0 + i, &d[i]), 0);

	/* Three at most: the oldest go first. */
	assert_int_equal(dns_journal_mem_new(3, &small), 0);
	j = dns_journal_mem_ops(small);
	for (int i = 0; i < 5; i++)
		assert_int_equal(dns_journal_mem_add(small, d[i]), 0);
	assert_int_equal(dns_journal_mem_count(small), 3);
	assert_int_equal(j.diff_from(j.ctx, s0, &got), DNS_ENOENT);
	assert_int_equal(j.diff_from(j.ctx, s0 + 1, &got), DNS_ENOENT);
	for (uint32_t i = 2; i < 5; i++) {
		assert_int_equal(j.diff_from(j.ctx, s0 + i, &got), 0);
		assert_int_equal(zone_diff_serial_to(got), s0 + i + 1);
		/* A copy: the same RRs as the original, freed independently. */
		assert_int_equal(ldns_rr_list_compare(zone_diff_added(got), zone_diff_added(d[i])),
				 0);
		zone_diff_free(got);
		got = NULL;
	}
	/* A diff that does not continue the last one: the old chain is useless. */
	assert_int_equal(dns_journal_mem_add(small, d[0]), 0);
	assert_int_equal(dns_journal_mem_count(small), 1);
	assert_int_equal(j.diff_from(j.ctx, s0 + 4, &got), DNS_ENOENT);
	assert_int_equal(j.diff_from(j.ctx, s0, &got), 0);
	zone_diff_free(got);
	for (int i = 0; i < 5; i++)
		zone_diff_free(d[i]);
	dns_journal_mem_free(small);
	dns_journal_mem_free(NULL);
	tds_zone_free(&tz);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_journal),
		cmocka_unit_test(test_limit_and_gap),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
