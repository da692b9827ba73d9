/*
 * sandbox_hsmd: regsignd's real HSM process (hsmd_main), started exactly as
 * hsmlink_spawn starts regsignd in HSM mode:
 *
 *   sandbox_hsmd --hsm-process --fd N -c regsignd.yaml [--module-dir DIR]...
 *
 * hsmd_main applies the HSM profile of the sandbox itself (after logging in,
 * before its threads start), as in the shipped daemon. With SANDBOX_HSMD_USER
 * set, this program first writes a copy of the configuration next to it with
 * "sandbox: { hsm: { user: ... } }" appended and runs the HSM process on that
 * copy, so that the process also changes to that user when root.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "signer/hsmd.h"

/* Copies @p src to @p dst and appends the sandbox section. @return 0 or -1. */
static int config_with_user(const char *src, const char *dst, const char *user)
{
	FILE *in = fopen(src, "r"), *out = NULL;
	char buf[4096];
	size_t n;
	int r = -1;

	if (in == NULL)
		goto out;
	out = fopen(dst, "w");
	if (out == NULL)
		goto out;
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		if (fwrite(buf, 1, n, out) != n)
			goto out;
	if (fprintf(out, "\nsandbox:\n  hsm:\n    user: %s\n", user) < 0)
		goto out;
	r = 0;
out:
	if (in != NULL)
		fclose(in);
	if (out != NULL && fclose(out) != 0)
		r = -1;
	return r;
}

int main(int argc, char **argv)
{
	const char *user = getenv("SANDBOX_HSMD_USER");
	static char copy[PATH_MAX];

	if (argc < 2 || strcmp(argv[1], HSMD_OPTION) != 0) {
		fprintf(stderr, "usage: sandbox_hsmd " HSMD_OPTION " --fd N -c regsignd.yaml\n");
		return 2;
	}
	for (int i = 2; user != NULL && i + 1 < argc; i++) {
		if (strcmp(argv[i], "-c") != 0)
			continue;
		if (snprintf(copy, sizeof(copy), "%s.hsmuser.yaml", argv[i + 1]) >= (int)sizeof(copy) ||
		    config_with_user(argv[i + 1], copy, user) != 0) {
			fprintf(stderr, "sandbox_hsmd: cannot write %s\n", copy);
			return 1;
		}
		argv[i + 1] = copy;
		break;
	}
	return hsmd_main(argc, argv);
}
