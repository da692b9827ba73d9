/*
 * `regsign status | zone-status | hello`: what the daemon says about itself.
 */
#include "signer/cli.h"

#include <getopt.h>
#include <string.h>

/* status and zone-status: JSON from the daemon, raw or indented. */
static int json_run(const struct cli_global *g, int argc, char **argv, int zone)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct regsign_reply rep = { 0 };
	regsign_client *c = NULL;
	int raw = 0, r, ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch != 'j') {
			fprintf(stderr, "usage: regsign %s [--json]\n"
					"  --json   print the daemon's JSON document as is\n",
				argv[0]);
			return CLI_EXIT_USAGE;
		}
		raw = 1;
	}
	if (optind != argc) {
		fprintf(stderr, "usage: regsign %s [--json]\n", argv[0]);
		return CLI_EXIT_USAGE;
	}
	r = cli_connect(g, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_result(c, zone ? regsign_client_zone_status(c, &rep)
			       : regsign_client_status(c, &rep),
		       &rep);
	if (r == CLI_EXIT_OK && raw)
		printf("%s\n", (const char *)rep.data.data);
	else if (r == CLI_EXIT_OK)
		cli_print_json(stdout, (const char *)rep.data.data, rep.data.len);
	if (r == CLI_EXIT_OK && fflush(stdout) != 0)
		r = CLI_EXIT_LOCAL;
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	return r;
}

int cli_status(const struct cli_global *g, int argc, char **argv)
{
	return json_run(g, argc, argv, 0);
}

int cli_zone_status(const struct cli_global *g, int argc, char **argv)
{
	return json_run(g, argc, argv, 1);
}

int cli_hello(const struct cli_global *g, int argc, char **argv)
{
	struct regsign_reply rep = { 0 };
	regsign_client *c = NULL;
	int r;

	if (argc != 1) {
		fprintf(stderr, "usage: regsign %s\n", argv[0]);
		return CLI_EXIT_USAGE;
	}
	r = cli_connect(g, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_result(c, regsign_client_hello(c, "regsign-cli", &rep), &rep);
	if (r == CLI_EXIT_OK)
		printf("server: %s\nversion: %u\nmax-frame: %u\n", rep.server_name, rep.version,
		       rep.max_frame);
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	return r;
}
