/*
 * libFuzzer target for the audit verifier and the record parser: any
 * bytes, as one audit file fed in two chunks, then as one line.
 * Build: clang with -fsanitize=fuzzer (tests/store.cmake does it).
 */
#include <stddef.h>
#include <stdint.h>

#include "signer/audit_record.h"
#include "signer/audit_verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct audit_record rec;
	audit_verifier_t *v = NULL;
	size_t half = size / 2;
	char why[128];

	if (audit_verifier_new(&v, NULL, NULL, AUDIT_VERIFY_PARTIAL) != 0)
		return 0;
	if (audit_verifier_file_begin(v, "fuzz") == 0 &&
	    audit_verifier_feed(v, (const char *)data, half) == 0 &&
	    audit_verifier_feed(v, (const char *)data + half, size - half) == 0 &&
	    audit_verifier_file_end(v) == 0)
		(void)audit_verifier_finish(v);
	audit_verifier_free(v);
	(void)audit_record_parse((const char *)data, size, &rec, why, sizeof(why));
	return 0;
}
