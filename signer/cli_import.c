/*
 * `regsign import FILE`: bulk import of device records through IMPORT
 * (docs/PROTOCOL.md, "IMPORT"), for registries migrating in.
 *
 * FILE holds one record per line; '#' starts a comment, blank lines are
 * skipped:
 *
 *   <device-id> <index> sha256:<64 hex digits> [spki:<64 hex digits>]
 *   <device-id> <index> cert:<path of the certificate, DER or PEM>
 *
 * sha256: is the SHA-256 of the certificate's DER (the record holds the hash
 * only; spki: adds the SHA-256 of its SubjectPublicKeyInfo for the dance
 * record style). A relative cert: path is taken from FILE's directory. "-"
 * reads standard input (cert: paths then relative to the current directory).
 *
 * Records go in chunks of --chunk N records (default 2000, fewer when a
 * chunk would outgrow the frame limit), one chunk at a time; a chunk refused
 * for RATE_LIMITED is sent again after a pause. The daemon names a refused
 * record by chunk and record number, which is turned back into FILE:LINE.
 * Progress goes to stderr; the zone serial holding the import to stdout (or
 * a JSON object with --json).
 */
#include "signer/cli.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "signer/buf.h"
#include "signer/proto.h"

#define CHUNK_DEFAULT 2000
#define CHUNK_MAX 100000
/* Room left in a frame for the header and the chunk's fixed fields. */
#define FRAME_SLACK 256
/* The final chunk waits for the whole zone to be signed: at least this long. */
#define FINAL_TIMEOUT_MS (6 * 3600 * 1000)

struct import_run {
	const char *path;
	char dir[4096];            /* FILE's directory, for relative cert: paths */
	regsign_client *c;
	uint32_t id, seq, idle_timeout;
	uint32_t chunk_max;        /* records per chunk */
	size_t frame_max;          /* bytes of records per chunk */
	struct buf_writer w;       /* the chunk being filled */
	uint32_t n;                /* records in it */
	unsigned long *lines;      /* their line numbers */
	unsigned long total;       /* records sent and accepted */
	unsigned long next_report;
	int timeout_ms;
	uint32_t serial;
};

static int import_usage(void)
{
	fprintf(stderr,
		"usage: regsign import FILE [--chunk N] [--idle-timeout SECONDS] [--id N] [--json]\n"
		"  FILE: one record per line, '#' comments:\n"
		"    <device-id> <index> sha256:<64 hex> [spki:<64 hex>]\n"
		"    <device-id> <index> cert:<path to DER or PEM>\n"
		"  --chunk N  records per IMPORT chunk (default %d)\n", CHUNK_DEFAULT);
	return CLI_EXIT_USAGE;
}

static int hex32(const char *s, unsigned char out[32])
{
	if (strlen(s) != 64)
		return -1;
	for (int i = 0; i < 32; i++) {
		unsigned v = 0;

		for (int j = 0; j < 2; j++) {
			char ch = s[2 * i + j];

			v <<= 4;
			if (ch >= '0' && ch <= '9')
				v |= (unsigned)(ch - '0');
			else if (ch >= 'a' && ch <= 'f')
				v |= (unsigned)(ch - 'a' + 10);
			else if (ch >= 'A' && ch <= 'F')
				v |= (unsigned)(ch - 'A' + 10);
			else
				return -1;
		}
		out[i] = (unsigned char)v;
	}
	return 0;
}

/* Turns "chunk C record K" of the daemon's message into the FILE:LINE prefix. */
static void report_refusal(struct import_run *ir, const struct regsign_reply *rep)
{
	const char *m = rep->message ? rep->message : "";
	unsigned chunk = 0, rec = 0;

	if (sscanf(m, "chunk %u record %u", &chunk, &rec) == 2 && chunk == ir->seq && rec >= 1 &&
	    rec <= ir->n)
		fprintf(stderr, "%s:%lu: %s: %s\n", ir->path, ir->lines[rec - 1],
			regsign_code_name(rep->code), m);
	else
		fprintf(stderr, "regsign: %s: %s\n", regsign_code_name(rep->code), m);
}

/* Sends the chunk being filled; CLI_EXIT_OK or an exit status (reported). */
static int send_chunk(struct import_run *ir, int final)
{
	struct regsign_reply rep = { 0 };
	int r, tries = 0;

	ir->seq++;
	if (final) {
		fprintf(stderr, "regsign: import %u: %lu records sent; the daemon signs the zone "
				"now\n", (unsigned)ir->id, ir->total + ir->n);
		regsign_client_set_timeout(ir->c, ir->timeout_ms > FINAL_TIMEOUT_MS
						      ? ir->timeout_ms : FINAL_TIMEOUT_MS);
	}
	for (;;) {
		r = regsign_client_import(ir->c, ir->id, ir->seq, final ? REGSIGN_IMPORT_FINAL : 0,
					  ir->idle_timeout, buf_writer_data(&ir->w),
					  buf_writer_len(&ir->w), &rep);
		/* The refused chunk left the import as it was: the same chunk may go again. */
		if (r != REGSIGN_CLIENT_ERR_REFUSED || rep.code != REGSIGN_CODE_RATE_LIMITED ||
		    ++tries > 600)
			break;
		regsign_reply_clear(&rep);
		usleep(tries < 10 ? 20000 : 100000);
	}
	if (r == REGSIGN_CLIENT_ERR_REFUSED) {
		report_refusal(ir, &rep);
		regsign_reply_clear(&rep);
		return CLI_EXIT_REFUSED;
	}
	if (r != REGSIGN_CLIENT_OK) {
		r = cli_result(ir->c, r, &rep);
		regsign_reply_clear(&rep);
		return r;
	}
	ir->total = rep.import_records;
	ir->serial = rep.zone_serial;
	regsign_reply_clear(&rep);
	buf_writer_reset(&ir->w);
	ir->n = 0;
	if (!final && ir->total >= ir->next_report) {
		fprintf(stderr, "regsign: import %u: %lu records accepted\n", (unsigned)ir->id,
			ir->total);
		ir->next_report = ir->total + 100000;
	}
	return CLI_EXIT_OK;
}

/* Parses one line into a record of the chunk. 0: added or blank, 1: bad (reported), <0: memory. */
static int add_line(struct import_run *ir, char *line, unsigned long lineno)
{
	static const char *const labels[] = { "CERTIFICATE", NULL };
	struct proto_import_record rec;
	unsigned char sha[32], spki[32], *der = NULL;
	char *tok[5], *save = NULL, *hash = strchr(line, '#'), path[8192];
	size_t der_len = 0;
	int nt = 0, e;

	if (hash != NULL)
		*hash = '\0';
	for (char *t = strtok_r(line, " \t\r\n", &save); t; t = strtok_r(NULL, " \t\r\n", &save)) {
		if (nt == 5)
			goto bad;
		tok[nt++] = t;
	}
	if (nt == 0)
		return 0;
	memset(&rec, 0, sizeof(rec));
	if (nt < 3 || nt > 4)
		goto bad;
	rec.device_id = proto_bytes_str(tok[0]);
	if (cli_parse_u32(tok[1], &rec.index) != 0 || rec.index == 0) {
		fprintf(stderr, "%s:%lu: the index must be a number from 1\n", ir->path, lineno);
		return 1;
	}
	if (strncmp(tok[2], "sha256:", 7) == 0) {
		if (hex32(tok[2] + 7, sha) != 0) {
			fprintf(stderr, "%s:%lu: sha256: needs 64 hex digits\n", ir->path, lineno);
			return 1;
		}
		rec.cert_sha256.ptr = sha;
		rec.cert_sha256.len = 32;
		if (nt == 4) {
			if (strncmp(tok[3], "spki:", 5) != 0 || hex32(tok[3] + 5, spki) != 0) {
				fprintf(stderr, "%s:%lu: the fourth field must be spki:<64 hex>\n",
					ir->path, lineno);
				return 1;
			}
			rec.spki_sha256.ptr = spki;
			rec.spki_sha256.len = 32;
		}
	} else if (strncmp(tok[2], "cert:", 5) == 0 && nt == 3) {
		const char *p = tok[2] + 5;

		if (p[0] != '/' && ir->dir[0] != '\0')
			snprintf(path, sizeof(path), "%s/%s", ir->dir, p);
		else
			snprintf(path, sizeof(path), "%s", p);
		if (cli_read_der(path, labels, &der, &der_len) != CLI_EXIT_OK) {
			fprintf(stderr, "%s:%lu: cannot read the certificate %s\n", ir->path, lineno,
				path);
			return 1;
		}
		rec.cert_der.ptr = der;
		rec.cert_der.len = der_len;
	} else {
		goto bad;
	}
	e = proto_import_record_encode(&ir->w, &rec);
	free(der);
	if (e == PROTO_ERR_NOMEM)
		return -1;
	if (e != PROTO_OK) {
		fprintf(stderr, "%s:%lu: %s (device id at most %d characters, certificate at most "
				"%d bytes)\n", ir->path, lineno, proto_strerror(e), PROTO_MAX_DEVICE_ID,
			PROTO_MAX_DER);
		return 1;
	}
	ir->lines[ir->n++] = lineno;
	return 0;
bad:
	fprintf(stderr, "%s:%lu: expected '<device-id> <index> sha256:<hex> [spki:<hex>]' or "
			"'<device-id> <index> cert:<path>'\n", ir->path, lineno);
	return 1;
}

static int run_file(struct import_run *ir, FILE *f)
{
	char *line = NULL;
	size_t cap = 0;
	unsigned long lineno = 0;
	int r = CLI_EXIT_OK, e;

	while (getline(&line, &cap, f) != -1) {
		size_t mark = buf_writer_len(&ir->w);
		uint32_t n = ir->n;

		lineno++;
		if ((e = add_line(ir, line, lineno)) != 0) {
			r = e < 0 ? (cli_warn("out of memory"), CLI_EXIT_LOCAL) : CLI_EXIT_LOCAL;
			break;
		}
		if (ir->n == n)
			continue;
		if (buf_writer_len(&ir->w) > ir->frame_max) {
			/* Too big together: send what came before and start the next chunk with it. */
			size_t len = buf_writer_len(&ir->w) - mark;
			unsigned char *last = malloc(len);

			if (last == NULL) {
				cli_warn("out of memory");
				r = CLI_EXIT_LOCAL;
				break;
			}
			memcpy(last, buf_writer_data(&ir->w) + mark, len);
			buf_writer_truncate(&ir->w, mark);
			ir->n--;
			if ((r = send_chunk(ir, 0)) == CLI_EXIT_OK &&
			    buf_writer_put_bytes(&ir->w, last, len) != BUF_OK)
				r = CLI_EXIT_LOCAL;
			free(last);
			if (r != CLI_EXIT_OK)
				break;
			ir->lines[ir->n++] = lineno;
		}
		if (ir->n >= ir->chunk_max && (r = send_chunk(ir, 0)) != CLI_EXIT_OK)
			break;
	}
	if (r == CLI_EXIT_OK && ferror(f)) {
		cli_warn("%s: %s", ir->path, strerror(errno));
		r = CLI_EXIT_LOCAL;
	}
	free(line);
	if (r == CLI_EXIT_OK)
		r = send_chunk(ir, 1);
	return r;
}

int cli_import(const struct cli_global *g, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "chunk", required_argument, NULL, 'c' },
		{ "idle-timeout", required_argument, NULL, 'i' },
		{ "id", required_argument, NULL, 'I' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct import_run ir;
	struct regsign_reply hello = { 0 };
	FILE *f = NULL;
	int json = 0, r, ch;
	char *slash;

	memset(&ir, 0, sizeof(ir));
	ir.chunk_max = CHUNK_DEFAULT;
	ir.id = ((uint32_t)getpid() << 16 ^ (uint32_t)time(NULL)) | 1u;
	optind = 0;
	while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			if (cli_parse_u32(optarg, &ir.chunk_max) != 0 || ir.chunk_max == 0 ||
			    ir.chunk_max > CHUNK_MAX)
				return import_usage();
			break;
		case 'i':
			if (cli_parse_u32(optarg, &ir.idle_timeout) != 0 ||
			    ir.idle_timeout > PROTO_MAX_IMPORT_TIMEOUT)
				return import_usage();
			break;
		case 'I':
			if (cli_parse_u32(optarg, &ir.id) != 0 || ir.id == 0)
				return import_usage();
			break;
		case 'j':
			json = 1;
			break;
		default:
			return import_usage();
		}
	}
	if (optind != argc - 1)
		return import_usage();
	ir.path = argv[optind];
	if (strcmp(ir.path, "-") == 0) {
		f = stdin;
	} else {
		snprintf(ir.dir, sizeof(ir.dir), "%s", ir.path);
		slash = strrchr(ir.dir, '/');
		if (slash != NULL)
			*slash = '\0';
		else
			ir.dir[0] = '\0';
		if ((f = fopen(ir.path, "r")) == NULL) {
			cli_warn("%s: %s", ir.path, strerror(errno));
			return CLI_EXIT_LOCAL;
		}
	}
	if ((ir.lines = calloc(ir.chunk_max, sizeof(*ir.lines))) == NULL) {
		if (f != stdin)
			fclose(f);
		cli_warn("out of memory");
		return CLI_EXIT_LOCAL;
	}
	ir.timeout_ms = g->timeout_ms;
	buf_writer_init(&ir.w, PROTO_REQUEST_MAX);
	r = cli_connect(g, &ir.c);
	if (r == CLI_EXIT_OK) {
		/* The chunk must fit the daemon's frame limit, which HELLO tells. */
		r = cli_result(ir.c, regsign_client_hello(ir.c, "regsign import", &hello), &hello);
		ir.frame_max = (hello.max_frame ? hello.max_frame : PROTO_REQUEST_MAX) - FRAME_SLACK;
		regsign_reply_clear(&hello);
	}
	if (r == CLI_EXIT_OK)
		r = run_file(&ir, f);
	if (r == CLI_EXIT_OK) {
		if (json)
			printf("{\"import_id\":%u,\"records\":%lu,\"zone_serial\":%u}\n",
			       (unsigned)ir.id, ir.total, (unsigned)ir.serial);
		else
			printf("%u\n", (unsigned)ir.serial);
		fprintf(stderr, "regsign: import %u: %lu devices published in serial %u\n",
			(unsigned)ir.id, ir.total, (unsigned)ir.serial);
	}
	buf_writer_release(&ir.w);
	free(ir.lines);
	regsign_client_free(ir.c);
	if (f != stdin)
		fclose(f);
	return r;
}
