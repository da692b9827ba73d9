/*
 * Unit tests of signer/audit_record: the canonical form of every record
 * type (exact bytes), escaping, round trips, and refusal of every
 * non-canonical spelling of a record.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/audit_record.h"

#define Z64 "0000000000000000000000000000000000000000000000000000000000000000"
#define A64 "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define SIG "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
            "AAAAAAAAAAAAAAAAAAAAAA=="

static const char *EVENT_LINE =
	"{\"seq\":1,\"time\":\"2025-11-27T09:18:00.123Z\",\"prev\":\"" Z64 "\","
	"\"type\":\"event\",\"event\":\"start\",\"detail\":\"a \\\"b\\\" \\\\ \\n\\t\\u0001 é/\"}";

static const char *REQUEST_LINE =
	"{\"seq\":2,\"time\":\"2025-11-27T09:18:00.124Z\",\"prev\":\"" A64 "\","
	"\"type\":\"request\",\"caller\":{\"uid\":1000,\"gid\":100,\"pid\":-1,\"name\":\"fe\"},"
	"\"op\":\"issue\",\"device\":\"8912230200031010008f\",\"index\":1,"
	"\"inputs\":[{\"name\":\"csr\",\"sha256\":\"" A64 "\"}],\"decision\":\"allow\","
	"\"rule\":\"r1\",\"policy\":\"" A64 "\"}";

static const char *RESULT_LINE =
	"{\"seq\":3,\"time\":\"2025-11-27T09:18:00.125Z\",\"prev\":\"" A64 "\","
	"\"type\":\"result\",\"ref\":2,\"op\":\"issue\",\"error\":0,\"serial\":\"0a1b\","
	"\"cert\":\"" A64 "\",\"zone_serial\":0}";

static const char *CHECKPOINT_LINE =
	"{\"seq\":4,\"time\":\"2025-11-27T09:18:00.126Z\",\"prev\":\"" A64 "\","
	"\"type\":\"checkpoint\",\"head\":\"" A64 "\",\"count\":4,"
	"\"sigs\":[{\"role\":\"issuing-ca\",\"count\":1},{\"role\":\"zsk\",\"count\":0}],"
	"\"sig\":\"" SIG "\"}";

static void
round_trip(const char *line)
{
	struct audit_record r;
	char why[200], out[AUDIT_LINE_MAX + 1];
	size_t n;
	if (audit_record_parse(line, strlen(line), &r, why, sizeof(why)) != 0)
		fail_msg("%s: %s", line, why);
	assert_int_equal(audit_record_format(&r, 0, out, sizeof(out), &n), 0);
	assert_int_equal(n, strlen(line));
	assert_string_equal(out, line);
}

static void
test_round_trips(void **state)
{
	struct audit_record r;
	(void)state;
	round_trip(EVENT_LINE);
	round_trip(REQUEST_LINE);
	round_trip(RESULT_LINE);
	round_trip(CHECKPOINT_LINE);

	assert_int_equal(audit_record_parse(EVENT_LINE, strlen(EVENT_LINE), &r, NULL, 0), 0);
	assert_string_equal(r.detail, "a \"b\" \\ \n\t\x01 é/");
	assert_int_equal(audit_record_parse(REQUEST_LINE, strlen(REQUEST_LINE), &r, NULL, 0), 0);
	assert_int_equal(r.type, AUDIT_T_REQUEST);
	assert_int_equal(r.pid, -1);
	assert_int_equal(r.n_inputs, 1);
	assert_true(r.allow);
	assert_int_equal(audit_record_parse(RESULT_LINE, strlen(RESULT_LINE), &r, NULL, 0), 0);
	assert_true(r.has_zone_serial);
	assert_int_equal(r.zone_serial, 0);
	assert_int_equal(audit_record_parse(CHECKPOINT_LINE, strlen(CHECKPOINT_LINE), &r, NULL, 0),
	                 0);
	assert_int_equal(r.n_sigs, 2);
	assert_int_equal(r.sigs[0].count, 1);
}

/* Replace the first occurrence of @p from in @p line by @p to, then expect
 * the parser to refuse it with a message containing @p why_part. */
static void
refuse(const char *line, const char *from, const char *to, const char *why_part)
{
	char buf[4096], why[200];
	struct audit_record r;
	const char *at = strstr(line, from);
	assert_non_null(at);
	size_t pre = (size_t)(at - line);
	snprintf(buf, sizeof(buf), "%.*s%s%s", (int)pre, line, to, at + strlen(from));
	int rc = audit_record_parse(buf, strlen(buf), &r, why, sizeof(why));
	if (rc != AUDIT_EFORMAT)
		fail_msg("accepted: %s", buf);
	if (strstr(why, why_part) == NULL)
		fail_msg("for %s: \"%s\" lacks \"%s\"", buf, why, why_part);
}

static void
test_non_canonical_refused(void **state)
{
	(void)state;
	refuse(EVENT_LINE, "{\"seq\":1,", "{ \"seq\":1,", "expected");
	refuse(EVENT_LINE, "\"seq\":1", "\"seq\":01", "canonical");
	refuse(EVENT_LINE, "\"seq\":1", "\"seq\":-1", "negative");
	refuse(EVENT_LINE, "\"seq\":1", "\"seq\":0", "seq");
	refuse(EVENT_LINE, "\"seq\":1", "\"seq\":1.0", "expected");
	refuse(EVENT_LINE, "\"seq\":1", "\"seq\":99999999999999999999999", "too large");
	refuse(EVENT_LINE, "\"seq\":1,\"time\":\"2025-11-27T09:18:00.123Z\",",
	       "\"time\":\"2025-11-27T09:18:00.123Z\",\"seq\":1,", "canonical");
	refuse(EVENT_LINE, "é/", "\\u00e9/", "never escaped");
	refuse(EVENT_LINE, "é/", "é\\/", "escape not used");
	refuse(EVENT_LINE, "\\n", "\\u000a", "canonical");
	refuse(EVENT_LINE, "é", "\xc3", "invalid UTF-8");
	refuse(EVENT_LINE, "é", "\xc0\xaf", "invalid UTF-8");
	refuse(EVENT_LINE, "é", "\xed\xa0\x80", "invalid UTF-8");
	refuse(EVENT_LINE, "\\t", "\t", "raw control");
	refuse(EVENT_LINE, "\"start\"", "\"start\",\"detail\":\"x\"", "duplicate key");
	refuse(EVENT_LINE, "\"start\"", "\"start\",\"bogus\":1", "unknown key");
	refuse(EVENT_LINE, "\"start\"", "\"start\",\"ref\":1", "not allowed in a event");
	refuse(EVENT_LINE, "\"event\":\"start\",", "", "missing key \"event\"");
	refuse(EVENT_LINE, "\"event\":\"start\"", "\"event\":\"Start\"", "event");
	refuse(EVENT_LINE, "\"type\":\"event\"", "\"type\":\"party\"", "unknown record type");
	refuse(EVENT_LINE, "00.123Z", "00.123+00:00", "string too long");
	refuse(EVENT_LINE, "00.123Z", "00.12Z", "time");
	refuse(EVENT_LINE, "-11-27T", "-13-27T", "time");
	refuse(EVENT_LINE, "\"prev\":\"0", "\"prev\":\"A", "prev");
	refuse(EVENT_LINE, "\"prev\":\"0", "\"prev\":\"g", "prev");
	refuse(EVENT_LINE, "é/\"}", "é/\"} ", "trailing");
	refuse(EVENT_LINE, "é/\"}", "é/\"", "expected");
	refuse(REQUEST_LINE, "\"decision\":\"allow\"", "\"decision\":\"maybe\"", "decision");
	refuse(REQUEST_LINE, "\"index\":1,", "\"index\":0,", "canonical");
	refuse(REQUEST_LINE, "\"pid\":-1", "\"pid\":-2147483649", "out of range");
	refuse(REQUEST_LINE, "\"uid\":1000,\"gid\":100", "\"gid\":100,\"uid\":1000", "canonical");
	refuse(REQUEST_LINE, "\"rule\":\"r1\",", "", "missing key \"rule\"");
	refuse(RESULT_LINE, "\"ref\":2", "\"ref\":3", "earlier record");
	refuse(RESULT_LINE, "\"serial\":\"0a1b\"", "\"serial\":\"0a1\"", "serial");
	refuse(CHECKPOINT_LINE, "==\"}", "=A\"}", "sig");
	refuse(CHECKPOINT_LINE, "\"sigs\":[{", "\"sigs\":[ {", "expected");
	refuse(CHECKPOINT_LINE, "\"count\":4", "\"count\":0", "count");
	refuse("", "", "", "expected '{'");
	refuse("[]", "[", "[", "expected '{'");
}

static void
test_writer_checks_and_sanitises(void **state)
{
	struct audit_record r;
	char out[AUDIT_LINE_MAX + 1], why[200], dst[8];
	size_t n;
	(void)state;

	memset(&r, 0, sizeof(r));
	r.seq = 1;
	snprintf(r.time, sizeof(r.time), "2025-11-27T09:18:00.123Z");
	snprintf(r.prev, sizeof(r.prev), Z64);
	r.type = AUDIT_T_EVENT;
	assert_int_equal(audit_record_format(&r, 0, out, sizeof(out), &n), AUDIT_EINVAL);
	assert_int_equal(audit_record_check(&r, 0, why, sizeof(why)), AUDIT_EINVAL);
	assert_non_null(strstr(why, "event"));
	snprintf(r.event, sizeof(r.event), "start");
	assert_int_equal(audit_record_format(&r, 0, out, sizeof(out), &n), 0);
	/* Too small a buffer is an error, never a cut line. */
	assert_int_equal(audit_record_format(&r, 0, out, 20, &n), AUDIT_EFORMAT);

	/* Invalid UTF-8 becomes '?', and cuts fall on character boundaries. */
	audit_text_copy(dst, sizeof(dst), "ab\xff\xc3\xa9");
	assert_string_equal(dst, "ab?\xc3\xa9");
	audit_text_copy(dst, sizeof(dst), "abcdef\xc3\xa9");
	assert_string_equal(dst, "abcdef");
	audit_text_copy(dst, sizeof(dst), NULL);
	assert_string_equal(dst, "");

	/* The signed form of a checkpoint is the line without "sig", after the
	 * domain prefix with its NUL. */
	unsigned char *msg = NULL;
	size_t mlen;
	assert_int_equal(audit_record_parse(CHECKPOINT_LINE, strlen(CHECKPOINT_LINE), &r, NULL, 0),
	                 0);
	assert_int_equal(audit_checkpoint_message(&r, &msg, &mlen), 0);
	assert_int_equal(memcmp(msg, "regsign-audit-checkpoint-v1\0{\"seq\":4,", 37), 0);
	assert_null(memmem(msg, mlen, "\"sig\"", 5));
	assert_int_equal(msg[mlen - 2], ']');
	assert_int_equal(msg[mlen - 1], '}');
	free(msg);

	char hex[65];
	audit_line_hash("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	char now[25];
	audit_time_now(now);
	assert_int_equal(strlen(now), 24);
	assert_int_equal(now[23], 'Z');
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trips),
		cmocka_unit_test(test_non_canonical_refused),
		cmocka_unit_test(test_writer_checks_and_sanitises),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
