/*
 * `regsign audit verify|show`: the auditor's side of the audit log.
 *
 *   regsign audit verify [--key audit.pub] [--head H] [--partial] FILE...
 *   regsign audit show [--device ID] [--since TIME] FILE...
 *
 * argv[0] is "audit" (the CLI's main passes its argv from the subcommand
 * on). Exit status: 0 verified / shown, 1 the log does not verify, 2 usage,
 * unreadable file or key.
 */
#include "signer/audit.h"
#include "signer/audit_record.h"
#include "signer/audit_verify.h"

#if defined(__has_include)
#if __has_include("signer/cli.h")
#include "signer/cli.h"
#endif
#endif

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cli_audit(int argc, char **argv);

enum { EXIT_BAD_LOG = 1, EXIT_USAGE = 2 };

static int
usage(void)
{
	fprintf(stderr,
	        "usage: regsign audit verify [--key audit.pub] [--head HASH] [--partial] FILE...\n"
	        "       regsign audit show [--device ID] [--since TIME] FILE...\n"
	        "FILEs are given oldest first (rotated files PATH.NNNNNNNNNNNN, then PATH).\n");
	return EXIT_USAGE;
}

/* Option with a value: "--opt VALUE" or "--opt=VALUE". */
static int
opt_value(int argc, char **argv, int *i, const char *name, const char **val)
{
	size_t n = strlen(name);
	if (strncmp(argv[*i], name, n) != 0)
		return 0;
	if (argv[*i][n] == '=') {
		*val = argv[*i] + n + 1;
		return 1;
	}
	if (argv[*i][n] != '\0')
		return 0;
	if (*i + 1 >= argc)
		return -1;
	*val = argv[++*i];
	return 1;
}

static int
cmd_verify(int argc, char **argv)
{
	const char *key_path = NULL, *head = NULL;
	const char **files = NULL;
	struct audit_verify_summary sum;
	EVP_PKEY *key = NULL;
	unsigned flags = 0;
	size_t nfiles = 0;
	char err[600];
	int r, rc = EXIT_USAGE;

	if ((files = calloc((size_t)argc, sizeof(*files))) == NULL)
		return EXIT_USAGE;
	for (int i = 1; i < argc; i++) {
		int o;
		if ((o = opt_value(argc, argv, &i, "--key", &key_path)) ||
		    (o = opt_value(argc, argv, &i, "--head", &head))) {
			if (o < 0)
				goto usage;
		} else if (strcmp(argv[i], "--partial") == 0) {
			flags |= AUDIT_VERIFY_PARTIAL;
		} else if (strcmp(argv[i], "--") == 0) {
			while (++i < argc)
				files[nfiles++] = argv[i];
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			goto usage;
		} else {
			files[nfiles++] = argv[i];
		}
	}
	if (nfiles == 0)
		goto usage;
	if (head && (strlen(head) != 64 || strspn(head, "0123456789abcdef") != 64)) {
		fprintf(stderr, "regsign audit verify: --head must be 64 lowercase hex digits\n");
		goto out;
	}
	if (key_path && audit_verify_key_load(key_path, &key) != 0) {
		fprintf(stderr, "regsign audit verify: %s: not a PEM EC P-256 public key\n", key_path);
		goto out;
	}
	r = audit_verify_files(files, nfiles, key, head, flags, err, sizeof(err), &sum);
	if (r == AUDIT_EBADLOG) {
		fprintf(stderr, "regsign audit verify: FAILED: %s\n", err);
		rc = EXIT_BAD_LOG;
		goto out;
	}
	if (r != 0) {
		fprintf(stderr, "regsign audit verify: %s\n", err[0] ? err : audit_strerror(r));
		goto out;
	}
	printf("OK: %llu records (seq %llu..%llu), %llu checkpoints\n",
	       (unsigned long long)sum.records, (unsigned long long)sum.first_seq,
	       (unsigned long long)sum.last_seq, (unsigned long long)sum.checkpoints);
	if (sum.last_checkpoint[0])
		printf("last checkpoint: %s\n", sum.last_checkpoint);
	if (head)
		printf("head %s reached\n", head);
	if (!key)
		printf("WARNING: checkpoint signatures NOT checked (no --key)\n");
	if (sum.last_checkpoint[0] == '\0' || !head)
		printf("note: without --head a log cut after its last checkpoint cannot be told "
		       "from a complete one\n");
	rc = 0;
	goto out;
usage:
	rc = usage();
out:
	EVP_PKEY_free(key);
	free(files);
	return rc;
}

/* One row of `audit show`. */
static void
show_row(const struct audit_record *r)
{
	char who[96] = "-", what[48], dev[96] = "-", res[768] = "";
	const char *decision = "-", *rule = "-";

	if (r->device[0] && r->index)
		snprintf(dev, sizeof(dev), "%s/%u", r->device, r->index);
	else if (r->device[0])
		snprintf(dev, sizeof(dev), "%s", r->device);
	switch (r->type) {
	case AUDIT_T_REQUEST:
		snprintf(who, sizeof(who), "%s(uid %u pid %d)",
		         r->caller_name[0] ? r->caller_name : "?", r->uid, r->pid);
		snprintf(what, sizeof(what), "%s", r->op);
		decision = r->allow ? "allow" : "deny";
		rule = r->rule;
		snprintf(res, sizeof(res), "%s", r->allow ? "intent" : r->detail);
		break;
	case AUDIT_T_RESULT:
		snprintf(what, sizeof(what), "%s", r->op);
		if (r->error)
			snprintf(res, sizeof(res), "#%llu error %d %s", (unsigned long long)r->ref,
			         r->error, r->detail);
		else
			snprintf(res, sizeof(res), "#%llu ok%s%s%s", (unsigned long long)r->ref,
			         r->serial[0] ? " serial=" : "", r->serial,
			         r->has_zone_serial ? " zone-serial" : "");
		if (r->has_zone_serial && !r->error) {
			size_t l = strlen(res);
			snprintf(res + l, sizeof(res) - l, "=%u", r->zone_serial);
		}
		break;
	case AUDIT_T_ABANDONED:
		snprintf(what, sizeof(what), "abandoned");
		snprintf(res, sizeof(res), "#%llu", (unsigned long long)r->ref);
		break;
	case AUDIT_T_EVENT:
		snprintf(what, sizeof(what), "event:%s", r->event);
		snprintf(res, sizeof(res), "%s", r->detail);
		break;
	default:
		snprintf(what, sizeof(what), "checkpoint");
		snprintf(res, sizeof(res), "count=%llu head=%.16s...", (unsigned long long)r->count,
		         r->head);
	}
	printf("%-8llu %-24s %-18s %-28s %-26s %-6s %-20s %s\n", (unsigned long long)r->seq,
	       r->time, what, who, dev, decision, rule, res);
}

static int
show_file(const char *path, const char *device, const char *since, struct audit_record *r)
{
	char *line = NULL, why[200];
	size_t cap = 0;
	ssize_t len;
	unsigned long lineno = 0;
	int bad = 0;
	FILE *fp = fopen(path, "r");

	if (fp == NULL) {
		fprintf(stderr, "regsign audit show: %s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((len = getline(&line, &cap, fp)) >= 0) {
		lineno++;
		if (len > 0 && line[len - 1] == '\n')
			line[--len] = '\0';
		if (audit_record_parse(line, (size_t)len, r, why, sizeof(why)) != 0) {
			fprintf(stderr, "%s:%lu: not a canonical audit record: %s\n", path, lineno, why);
			bad = 1;
			continue;
		}
		if (device && strcmp(r->device, device) != 0)
			continue;
		/* RFC 3339 UTC times in one format sort as strings; a bare date
		 * ("2025-11-27") sorts before every time of that day. */
		if (since && strcmp(r->time, since) < 0)
			continue;
		show_row(r);
	}
	free(line);
	fclose(fp);
	return bad;
}

static int
cmd_show(int argc, char **argv)
{
	const char *device = NULL, *since = NULL;
	struct audit_record *r = NULL;
	int rc = 0, nfiles = 0;

	for (int i = 1; i < argc; i++) {
		int o;
		if ((o = opt_value(argc, argv, &i, "--device", &device)) ||
		    (o = opt_value(argc, argv, &i, "--since", &since))) {
			if (o < 0)
				return usage();
		} else if (argv[i][0] == '-' && argv[i][1] != '\0') {
			return usage();
		} else {
			nfiles++;
		}
	}
	if (nfiles == 0)
		return usage();
	if ((r = malloc(sizeof(*r))) == NULL)
		return EXIT_USAGE;
	printf("%-8s %-24s %-18s %-28s %-26s %-6s %-20s %s\n", "SEQ", "TIME", "OP", "CALLER",
	       "DEVICE/INDEX", "DECIS", "RULE", "RESULT");
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--device") == 0 || strcmp(argv[i], "--since") == 0) {
			i++;
			continue;
		}
		if (argv[i][0] == '-')
			continue;
		int s = show_file(argv[i], device, since, r);
		if (s < 0)
			rc = EXIT_USAGE;
		else if (s > 0 && rc == 0)
			rc = EXIT_BAD_LOG;
	}
	free(r);
	return rc;
}

int
cli_audit(int argc, char **argv)
{
	if (argc < 2)
		return usage();
	if (strcmp(argv[1], "verify") == 0)
		return cmd_verify(argc - 1, argv + 1);
	if (strcmp(argv[1], "show") == 0)
		return cmd_show(argc - 1, argv + 1);
	if (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
		usage();
		return 0;
	}
	return usage();
}
