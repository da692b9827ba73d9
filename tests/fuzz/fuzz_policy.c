/*
 * libFuzzer target of the policy parser (policy/policy.h policy_parse, and
 * the strict YAML reader under it). Any bytes as a policy file. A refusal
 * must name the file in its message; an accepted policy is asked every kind
 * of question once, so that what the parser built is used too (the decision
 * functions must never crash on any policy the parser accepts).
 * Build and run: tests/fuzz/run.sh (clang, ASan + UBSan).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void ask(const struct policy *pol)
{
	const struct policy_caller *c = NULL;
	struct policy_decision d;
	struct policy_issue_grant g;
	struct policy_issue_request req = {
		.profile = "device", .device_id = "8912230200031010008F", .index = 1,
		.key_algorithm = "ec-p256", .live_certificates = 0,
	};
	char owner[512];

	for (size_t i = 0; i < policy_caller_count(pol); i++) {
		c = policy_caller_at(pol, i);
		if (c == NULL || policy_caller_by_name(pol, c->name) == NULL)
			abort();
	}
	(void)policy_zone(pol);
	(void)policy_sha256_hex(pol);
	(void)policy_profile_find(pol, "device");
	if (policy_caller_find(pol, 1000, 1000, &c, &d) != POLICY_ALLOW)
		return;
	for (int op = 0; op < POLICY_OP_COUNT; op++)
		(void)policy_check_operation(pol, c, (enum policy_op)op, &d);
	if (policy_check_issue(pol, c, &req, &g, &d) == POLICY_ALLOW &&
	    strcmp(g.device_id, "8912230200031010008f") != 0)
		abort();
	(void)policy_check_reissue(pol, c, c->name, &req, &g, &d);
	(void)policy_check_revoke(pol, c, c->name, 1, &d);
	(void)policy_check_publish(pol, c, POLICY_OP_PUBLISH, "www._asp.iotregistry.test.",
				   "TXT", &d);
	(void)policy_check_sign_rrset(pol, c, "asp.test.", "www.asp.test.", 1760000000,
				      1760086400, 1760000100, &d);
	(void)policy_device_owner(pol, g.device_id, 1, owner, sizeof(owner));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[YCONF_ERRMAX];
	struct policy *pol = NULL;
	int r;

	err[0] = '\0';
	r = policy_parse("fuzz.yaml", data, size, &pol, err, sizeof(err));
	if (r == YCONF_OK) {
		if (pol == NULL)
			abort();
		ask(pol);
		policy_free(pol);
	} else if (r != YCONF_ENOMEM && strncmp(err, "fuzz.yaml", 9) != 0) {
		abort();
	}
	return 0;
}
