/*
 * Tests of peer addresses and the transfer allow-list (signer/dns_acl.h):
 * address forms with and without ports, prefixes on byte and bit
 * boundaries, IPv4-mapped IPv6 peers, entries bound to a TSIG key, and the
 * malformed inputs that must be refused.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>

#include "signer/dns_acl.h"

static struct sockaddr_storage addr(const char *s)
{
	struct sockaddr_storage ss;

	assert_int_equal(dns_addr_parse(s, 53, &ss), 0);
	return ss;
}

static bool allows(const struct dns_acl *acl, const char *a, const char *key)
{
	struct sockaddr_storage ss = addr(a);

	return dns_acl_allows(acl, (struct sockaddr *)&ss, key);
}

static void test_addr_parse(void **state)
{
	struct sockaddr_storage ss;
	char buf[80];

	(void)state;
	ss = addr("192.0.2.1");
	assert_int_equal(ss.ss_family, AF_INET);
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 53);
	ss = addr("192.0.2.1:5353");
	assert_int_equal(ntohs(((struct sockaddr_in *)&ss)->sin_port), 5353);
	ss = addr("[2001:db8::1]:0");
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 0);
	ss = addr("2001:db8::1");
	assert_int_equal(ss.ss_family, AF_INET6);
	assert_int_equal(ntohs(((struct sockaddr_in6 *)&ss)->sin6_port), 53);
	ss = addr("[::1]");
	dns_addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
	assert_string_equal(buf, "::1#53");
	ss = addr("127.0.0.1:65535");
	dns_addr_format((struct sockaddr *)&ss, buf, sizeof(buf));
	assert_string_equal(buf, "127.0.0.1#65535");
	dns_addr_format((struct sockaddr *)&ss, buf, 5);
	assert_string_equal(buf, "127.");

	const char *bad[] = { "", "192.0.2.1:", "192.0.2.1:65536", "192.0.2.1:-1", "192.0.2",
			      "[::1", "[::1]x", "[::1]:99999", "host.example:53", "1.2.3.4:5x",
			      "[1.2.3.4]:53x", "::1::2" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dns_addr_parse(bad[i], 53, &ss) != DNS_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(dns_addr_parse(NULL, 53, &ss), DNS_EINVAL);
}

static void test_acl(void **state)
{
	struct dns_acl *acl = NULL;

	(void)state;
	assert_false(allows(NULL, "127.0.0.1", NULL));
	assert_int_equal(dns_acl_new(&acl), 0);
	/* Empty: nobody. */
	assert_false(allows(acl, "127.0.0.1", NULL));
	assert_int_equal(dns_acl_add(acl, "127.0.0.1", NULL), 0);
	assert_int_equal(dns_acl_add(acl, "192.0.2.128/25", NULL), 0);
	assert_int_equal(dns_acl_add(acl, "10.0.0.0/13", NULL), 0);
	assert_int_equal(dns_acl_add(acl, "2001:db8:1::/48", NULL), 0);
	assert_int_equal(dns_acl_add(acl, "198.51.100.7", "Xfr-Key"), 0);

	assert_true(allows(acl, "127.0.0.1:4000", NULL));
	assert_false(allows(acl, "127.0.0.2", NULL));
	assert_true(allows(acl, "192.0.2.128", NULL));
	assert_true(allows(acl, "192.0.2.255", NULL));
	assert_false(allows(acl, "192.0.2.127", NULL));
	/* /13 ends inside the second byte. */
	assert_true(allows(acl, "10.7.255.255", NULL));
	assert_false(allows(acl, "10.8.0.0", NULL));
	assert_true(allows(acl, "2001:db8:1:ffff::5", NULL));
	assert_false(allows(acl, "2001:db8:2::5", NULL));
	/* An IPv4 peer seen on an IPv6 socket. */
	assert_true(allows(acl, "[::ffff:127.0.0.1]:53", NULL));
	assert_false(allows(acl, "[::ffff:127.0.0.2]:53", NULL));
	assert_false(allows(acl, "::1", NULL));
	/* An unkeyed entry accepts signed requests too. */
	assert_true(allows(acl, "127.0.0.1", "any-key."));
	/* A keyed entry wants that key (names compared without case). */
	assert_false(allows(acl, "198.51.100.7", NULL));
	assert_false(allows(acl, "198.51.100.7", "other-key."));
	assert_true(allows(acl, "198.51.100.7", "xfr-key."));
	assert_true(allows(acl, "198.51.100.7", "XFR-KEY."));

	const char *bad[] = { "", "/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129",
			      "10.0.0/8", "example.com", "10.0.0.0/8/8" };
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (dns_acl_add(acl, bad[i], NULL) != DNS_EINVAL)
			fail_msg("'%s' was accepted", bad[i]);
	assert_int_equal(dns_acl_add(acl, "10.0.0.1", ""), DNS_EINVAL);
	dns_acl_free(acl);
	dns_acl_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_addr_parse),
		cmocka_unit_test(test_acl),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
