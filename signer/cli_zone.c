/*
 * `regsign publish | unpublish | sign-rrset`: records outside the device
 * namespace, and RRsets of other zones. DNS text and wire formats are
 * converted with ldns.
 */
#include "signer/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

/* ldns headers need two OpenSSL names this build hides; see there. */
#include "zonesigner/zone_ldns.h"

static int rr_usage(const char *cmd)
{
	if (strcmp(cmd, "publish") == 0)
		fprintf(stderr, "usage: regsign publish --owner NAME --type TYPE [--ttl N] "
				"--rdata TEXT\n"
				"  NAME absolute, or relative to the registry zone; TTL 0 = zone "
				"default\n");
	else
		fprintf(stderr, "usage: regsign unpublish --owner NAME --type TYPE [--rdata TEXT]\n"
				"  without --rdata the whole RRset goes\n");
	return CLI_EXIT_USAGE;
}

static int rr_run(const struct cli_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "owner", required_argument, NULL, 'o' },
		{ "type", required_argument, NULL, 't' },
		{ "ttl", required_argument, NULL, 'T' },
		{ "rdata", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int publish = strcmp(argv[0], "publish") == 0;
	const char *owner = NULL, *type = NULL, *rdata = NULL;
	struct regsign_reply rep = { 0 };
	regsign_client *c = NULL;
	uint32_t ttl = 0;
	int r, ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			owner = optarg;
			break;
		case 't':
			type = optarg;
			break;
		case 'T':
			if (!publish || cli_parse_u32(optarg, &ttl) != 0)
				return rr_usage(argv[0]);
			break;
		case 'r':
			rdata = optarg;
			break;
		default:
			return rr_usage(argv[0]);
		}
	}
	if (optind != argc || owner == NULL || type == NULL || (publish && rdata == NULL))
		return rr_usage(argv[0]);
	r = cli_connect(g, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = publish ? regsign_client_publish(c, owner, type, ttl, rdata, &rep)
		    : regsign_client_unpublish(c, owner, type, rdata, &rep);
	r = cli_result(c, r, &rep);
	if (r == CLI_EXIT_OK)
		printf("zone-serial: %u\n", rep.zone_serial);
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	return r;
}

int cli_publish(const struct cli_global *g, int argc, char **argv)
{
	return rr_run(g, argc, argv);
}

int cli_unpublish(const struct cli_global *g, int argc, char **argv)
{
	return rr_run(g, argc, argv);
}

/*
 * Reads RRs in zone-file form (relative names are relative to @p zone) and
 * appends each in uncompressed wire form to *wire.
 */
static int rrset_load(const char *path, const char *zone, uint8_t **wire, size_t *len)
{
	ldns_rdf *origin = NULL, *prev = NULL;
	uint32_t ttl = 3600;
	int line = 1, r = CLI_EXIT_LOCAL, count = 0;
	FILE *f;
	uint8_t *all = NULL;
	size_t n = 0;

	*wire = NULL;
	*len = 0;
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (f == NULL) {
		cli_warn("%s: %s", path, strerror(errno));
		return CLI_EXIT_LOCAL;
	}
	if (ldns_str2rdf_dname(&origin, zone) != LDNS_STATUS_OK) {
		cli_warn("%s: not a domain name", zone);
		goto out;
	}
	while (!feof(f)) {
		ldns_rr *rr = NULL;
		uint8_t *w = NULL, *grown;
		size_t wn = 0;
		ldns_status s = ldns_rr_new_frm_fp_l(&rr, f, &ttl, &origin, &prev, &line);

		if (s == LDNS_STATUS_SYNTAX_EMPTY || s == LDNS_STATUS_SYNTAX_TTL ||
		    s == LDNS_STATUS_SYNTAX_ORIGIN)
			continue;
		if (s != LDNS_STATUS_OK) {
			if (feof(f) && s == LDNS_STATUS_SYNTAX_ERR)
				break; /* trailing blank lines */
			cli_warn("%s:%d: %s", path, line, ldns_get_errorstr_by_id(s));
			goto out;
		}
		s = ldns_rr2wire(&w, rr, LDNS_SECTION_ANSWER, &wn);
		ldns_rr_free(rr);
		if (s != LDNS_STATUS_OK) {
			cli_warn("%s:%d: %s", path, line, ldns_get_errorstr_by_id(s));
			goto out;
		}
		grown = realloc(all, n + wn);
		if (grown == NULL) {
			free(w);
			cli_warn("out of memory");
			goto out;
		}
		all = grown;
		memcpy(all + n, w, wn);
		n += wn;
		free(w);
		count++;
	}
	if (count == 0) {
		cli_warn("%s: no resource records", path);
		goto out;
	}
	*wire = all;
	*len = n;
	all = NULL;
	r = CLI_EXIT_OK;
out:
	if (f != stdin)
		fclose(f);
	ldns_rdf_deep_free(origin);
	ldns_rdf_deep_free(prev);
	free(all);
	return r;
}

/* Prints the RRSIG RRs of a SIGN_RRSET reply in presentation form. */
static int rrsig_print(const uint8_t *wire, size_t len)
{
	size_t pos = 0;

	while (pos < len) {
		ldns_rr *rr = NULL;
		ldns_status s = ldns_wire2rr(&rr, wire, len, &pos, LDNS_SECTION_ANSWER);

		if (s != LDNS_STATUS_OK) {
			cli_warn("malformed RRSIG in the reply: %s", ldns_get_errorstr_by_id(s));
			return CLI_EXIT_CONNECT;
		}
		ldns_rr_print(stdout, rr);
		ldns_rr_free(rr);
	}
	return fflush(stdout) == 0 ? CLI_EXIT_OK : CLI_EXIT_LOCAL;
}

static int sign_usage(void)
{
	fprintf(stderr, "usage: regsign sign-rrset --zone ZONE --rrset FILE --inception T "
			"--expiration T\n"
			"  FILE  the RRset in zone-file form (- for stdin)\n"
			"  T     seconds since the epoch, YYYYMMDDHHmmSS (UTC), or +N seconds "
			"from now\n");
	return CLI_EXIT_USAGE;
}

int cli_sign_rrset(const struct cli_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "zone", required_argument, NULL, 'z' },
		{ "rrset", required_argument, NULL, 'r' },
		{ "inception", required_argument, NULL, 'i' },
		{ "expiration", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *zone = NULL, *file = NULL;
	uint32_t inception = 0, expiration = 0;
	int have_i = 0, have_e = 0, r, ch;
	struct regsign_reply rep = { 0 };
	regsign_client *c = NULL;
	uint8_t *wire = NULL;
	size_t wire_len = 0;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'z':
			zone = optarg;
			break;
		case 'r':
			file = optarg;
			break;
		case 'i':
			if (cli_parse_time(optarg, &inception) != 0)
				return sign_usage();
			have_i = 1;
			break;
		case 'e':
			if (cli_parse_time(optarg, &expiration) != 0)
				return sign_usage();
			have_e = 1;
			break;
		default:
			return sign_usage();
		}
	}
	if (optind != argc || zone == NULL || file == NULL || !have_i || !have_e)
		return sign_usage();
	r = rrset_load(file, zone, &wire, &wire_len);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_connect(g, &c);
	if (r != CLI_EXIT_OK)
		goto out;
	r = cli_result(c, regsign_client_sign_rrset(c, zone, wire, wire_len, inception,
						    expiration, &rep),
		       &rep);
	if (r == CLI_EXIT_OK)
		r = rrsig_print(rep.data.data, rep.data.len);
out:
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	free(wire);
	return r;
}
