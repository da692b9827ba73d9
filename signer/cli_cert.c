/*
 * `regsign issue | reissue | revoke | crl | chain`: certificate commands.
 */
#include "signer/cli.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const csr_labels[] = { "CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST",
					  NULL };

/* Options of issue and reissue; they differ only in --index / --old-index. */
struct cert_args {
	const char *device, *profile, *csr, *out;
	uint32_t index;
	int with_chain;
};

static int cert_usage(const char *cmd)
{
	if (strcmp(cmd, "issue") == 0)
		fprintf(stderr, "usage: regsign issue --device ID [--index N] [--profile P] "
				"--csr FILE [--out FILE] [--with-chain]\n");
	else
		fprintf(stderr, "usage: regsign reissue --device ID --old-index N [--profile P] "
				"--csr FILE [--out FILE] [--with-chain]\n");
	fprintf(stderr, "  --csr FILE     PKCS#10 request, DER or PEM (- for stdin)\n"
			"  --out FILE     write the PEM certificate there, not to stdout\n"
			"  --with-chain   append the CA chain (PEM) after the certificate\n");
	return CLI_EXIT_USAGE;
}

static int cert_parse(int argc, char **argv, struct cert_args *a)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "index", required_argument, NULL, 'i' },
		{ "old-index", required_argument, NULL, 'I' },
		{ "profile", required_argument, NULL, 'p' },
		{ "csr", required_argument, NULL, 'c' },
		{ "out", required_argument, NULL, 'o' },
		{ "with-chain", no_argument, NULL, 'C' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int reissue = strcmp(argv[0], "reissue") == 0;
	int have_index = 0, ch;

	memset(a, 0, sizeof(*a));
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			a->device = optarg;
			break;
		case 'i':
		case 'I':
			if ((ch == 'I') != reissue || cli_parse_u32(optarg, &a->index) != 0)
				return cert_usage(argv[0]);
			have_index = 1;
			break;
		case 'p':
			a->profile = optarg;
			break;
		case 'c':
			a->csr = optarg;
			break;
		case 'o':
			a->out = optarg;
			break;
		case 'C':
			a->with_chain = 1;
			break;
		default:
			return cert_usage(argv[0]);
		}
	}
	if (optind != argc || a->device == NULL || a->csr == NULL || (reissue && !have_index))
		return cert_usage(argv[0]);
	return CLI_EXIT_OK;
}

/* Writes the certificate (and chain) as PEM, then the facts on stdout. */
static int cert_print(const struct regsign_reply *rep, const struct cert_args *a)
{
	FILE *f = cli_open_out(a->out);
	int bad;

	if (f == NULL)
		return CLI_EXIT_LOCAL;
	bad = cli_write_pem(f, "CERTIFICATE", rep->cert.data, rep->cert.len);
	for (size_t i = 0; a->with_chain && i < rep->chain_count; i++)
		bad |= cli_write_pem(f, "CERTIFICATE", rep->chain[i].data, rep->chain[i].len);
	if (cli_close_out(f) != 0 || bad) {
		cli_warn("%s: write error", a->out != NULL ? a->out : "stdout");
		return CLI_EXIT_LOCAL;
	}
	printf("serial: %s\nindex: %u\nzone-serial: %u\n", rep->serial_hex, rep->index,
	       rep->zone_serial);
	return CLI_EXIT_OK;
}

static int cert_run(const struct cli_global *g, int argc, char **argv)
{
	struct regsign_reply rep = { 0 };
	struct cert_args a;
	regsign_client *c = NULL;
	unsigned char *csr = NULL;
	size_t csr_len = 0;
	int r;

	r = cert_parse(argc, argv, &a);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_read_der(a.csr, csr_labels, &csr, &csr_len);
	if (r != CLI_EXIT_OK)
		goto out;
	r = cli_connect(g, &c);
	if (r != CLI_EXIT_OK)
		goto out;
	if (strcmp(argv[0], "issue") == 0)
		r = regsign_client_issue(c, a.device, a.index, a.profile, csr, csr_len, &rep);
	else
		r = regsign_client_reissue(c, a.device, a.index, a.profile, csr, csr_len, &rep);
	r = cli_result(c, r, &rep);
	if (r == CLI_EXIT_OK)
		r = cert_print(&rep, &a);
out:
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	free(csr);
	return r;
}

int cli_issue(const struct cli_global *g, int argc, char **argv)
{
	return cert_run(g, argc, argv);
}

int cli_reissue(const struct cli_global *g, int argc, char **argv)
{
	return cert_run(g, argc, argv);
}

static int revoke_usage(void)
{
	fprintf(stderr, "usage: regsign revoke --device ID (--index N | --serial HEX) "
			"--reason R\n"
			"  R is an RFC 5280 reason name: unspecified, keyCompromise, "
			"affiliationChanged,\n  superseded, cessationOfOperation, ...\n");
	return CLI_EXIT_USAGE;
}

int cli_revoke(const struct cli_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "device", required_argument, NULL, 'd' },
		{ "index", required_argument, NULL, 'i' },
		{ "serial", required_argument, NULL, 's' },
		{ "reason", required_argument, NULL, 'r' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *device = NULL, *serial = NULL, *reason = NULL;
	struct regsign_reply rep = { 0 };
	regsign_client *c = NULL;
	uint32_t index = 0;
	char when[32] = "?";
	time_t t;
	struct tm tm;
	int r, ch;

	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'd':
			device = optarg;
			break;
		case 'i':
			if (cli_parse_u32(optarg, &index) != 0 || index == 0)
				return revoke_usage();
			break;
		case 's':
			serial = optarg;
			break;
		case 'r':
			reason = optarg;
			break;
		default:
			return revoke_usage();
		}
	}
	if (optind != argc || device == NULL || reason == NULL || (index == 0 && serial == NULL))
		return revoke_usage();
	r = cli_connect(g, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_result(c, regsign_client_revoke(c, device, index, serial, reason, &rep), &rep);
	if (r == CLI_EXIT_OK) {
		t = (time_t)rep.revoked_at;
		if (gmtime_r(&t, &tm) != NULL)
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		printf("serial: %s\nrevoked-at: %s (%llu)\nzone-serial: %u\n", rep.serial_hex,
		       when, (unsigned long long)rep.revoked_at, rep.zone_serial);
	}
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	return r;
}

/* crl and chain take only --out (and crl --der). */
static int fetch_usage(const char *cmd, int allow_der)
{
	fprintf(stderr, "usage: regsign %s [--out FILE]%s\n", cmd, allow_der ? " [--der]" : "");
	return CLI_EXIT_USAGE;
}

static int fetch_parse(int argc, char **argv, int allow_der, const char **out, int *der)
{
	static const struct option opts[] = {
		{ "out", required_argument, NULL, 'o' },
		{ "der", no_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	*out = NULL;
	*der = 0;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (ch == 'o')
			*out = optarg;
		else if (ch == 'D' && allow_der)
			*der = 1;
		else
			return fetch_usage(argv[0], allow_der);
	}
	if (optind != argc)
		return fetch_usage(argv[0], allow_der);
	return CLI_EXIT_OK;
}

static int fetch_run(const struct cli_global *g, int argc, char **argv, int crl)
{
	struct regsign_reply rep = { 0 };
	regsign_client *c = NULL;
	const char *out;
	FILE *f = NULL;
	int r, der, bad = 0;

	r = fetch_parse(argc, argv, crl, &out, &der);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_connect(g, &c);
	if (r != CLI_EXIT_OK)
		return r;
	r = cli_result(c, crl ? regsign_client_crl(c, &rep) : regsign_client_chain(c, &rep),
		       &rep);
	if (r != CLI_EXIT_OK)
		goto out;
	r = CLI_EXIT_LOCAL;
	f = cli_open_out(out);
	if (f == NULL)
		goto out;
	if (crl && der)
		bad = fwrite(rep.data.data, 1, rep.data.len, f) != rep.data.len;
	else if (crl)
		bad = cli_write_pem(f, "X509 CRL", rep.data.data, rep.data.len);
	for (size_t i = 0; !crl && i < rep.chain_count; i++)
		bad |= cli_write_pem(f, "CERTIFICATE", rep.chain[i].data, rep.chain[i].len);
	if (cli_close_out(f) != 0 || bad) {
		cli_warn("%s: write error", out != NULL ? out : "stdout");
		goto out;
	}
	r = CLI_EXIT_OK;
out:
	regsign_reply_clear(&rep);
	regsign_client_free(c);
	return r;
}

int cli_crl(const struct cli_global *g, int argc, char **argv)
{
	return fetch_run(g, argc, argv, 1);
}

int cli_chain(const struct cli_global *g, int argc, char **argv)
{
	return fetch_run(g, argc, argv, 0);
}
