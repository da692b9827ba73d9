/*
 * regsign: the command-line client of regsignd (and home of offline tools
 * such as `regsign audit`).
 *
 *   regsign [-s SOCKET] [-t SECONDS] COMMAND [options]
 *
 * This file holds only the global options and the command table; each
 * command lives in a signer/cli_*.c file (see cli.h for how to add one).
 */
#include "signer/cli.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* signer/cli_bench.c; its prototype belongs in cli.h with the others. */
int cli_bench(const struct cli_global *g, int argc, char **argv);

struct cli_command {
	const char *name;
	/* Exactly one of the two is set: socket commands get the globals. */
	int (*run)(const struct cli_global *g, int argc, char **argv);
	int (*run_offline)(int argc, char **argv);
	const char *summary;
};

static const struct cli_command commands[] = {
	{ "issue", cli_issue, NULL, "issue a device certificate for a CSR" },
	{ "reissue", cli_reissue, NULL, "replace a device certificate (new index)" },
	{ "revoke", cli_revoke, NULL, "revoke a certificate by index or serial" },
	{ "crl", cli_crl, NULL, "fetch the current CRL (PEM, or --der)" },
	{ "chain", cli_chain, NULL, "fetch the CA chain (PEM)" },
	{ "status", cli_status, NULL, "show the daemon's status (--json: raw)" },
	{ "zone-status", cli_zone_status, NULL, "show the registry zone's status" },
	{ "publish", cli_publish, NULL, "add a record outside the device namespace" },
	{ "unpublish", cli_unpublish, NULL, "remove such a record or RRset" },
	{ "sign-rrset", cli_sign_rrset, NULL, "have an RRset of another zone signed" },
	{ "import", cli_import, NULL, "bulk-import device records (registries migrating in)" },
	{ "hello", cli_hello, NULL, "check the connection and protocol version" },
	{ "bench", cli_bench, NULL, "load-test the daemon (operations/s, latency)" },
#ifdef REGSIGN_HAVE_CLI_AUDIT
	{ "audit", NULL, cli_audit, "verify or show an audit log (offline)" },
#endif
};

#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static int usage(FILE *f, int status)
{
	fprintf(f, "usage: regsign [-s SOCKET] [-t SECONDS] COMMAND [options]\n"
		   "  -s SOCKET   regsignd's socket (default: $REGSIGN_SOCKET)\n"
		   "  -t SECONDS  give up when the daemon is silent this long (default 60)\n"
		   "commands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
	fprintf(f, "'regsign COMMAND --help' shows a command's options.\n"
		   "exit status: 0 ok, 1 refused by the daemon, 2 usage, 3 connection or\n"
		   "protocol failure, 4 local error\n");
	return status;
}

int main(int argc, char **argv)
{
	struct cli_global g = { getenv("REGSIGN_SOCKET"), 60000 };
	uint32_t seconds;
	int ch;

	/* '+': stop at the command name; its options are the command's. */
	while ((ch = getopt(argc, argv, "+s:t:h")) != -1) {
		switch (ch) {
		case 's':
			g.socket_path = optarg;
			break;
		case 't':
			if (cli_parse_u32(optarg, &seconds) != 0 || seconds > 86400)
				return usage(stderr, CLI_EXIT_USAGE);
			g.timeout_ms = (int)seconds * 1000;
			break;
		case 'h':
			return usage(stdout, CLI_EXIT_OK);
		default:
			return usage(stderr, CLI_EXIT_USAGE);
		}
	}
	if (optind >= argc)
		return usage(stderr, CLI_EXIT_USAGE);
	if (strcmp(argv[optind], "help") == 0)
		return usage(stdout, CLI_EXIT_OK);
	for (size_t i = 0; i < NCOMMANDS; i++) {
		if (strcmp(argv[optind], commands[i].name) != 0)
			continue;
		if (commands[i].run != NULL)
			return commands[i].run(&g, argc - optind, argv + optind);
		return commands[i].run_offline(argc - optind, argv + optind);
	}
	fprintf(stderr, "regsign: unknown command '%s'\n", argv[optind]);
	return usage(stderr, CLI_EXIT_USAGE);
}
