/*
 * Helpers shared by the `regsign` subcommands. See cli.h.
 */
#include "signer/cli.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/pem.h>

void cli_warn(const char *fmt, ...)
{
	va_list ap;

	fputs("regsign: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int cli_connect(const struct cli_global *g, regsign_client **out)
{
	regsign_client *c = NULL;
	int r;

	*out = NULL;
	if (g->socket_path == NULL || g->socket_path[0] == '\0') {
		cli_warn("no socket: give -s SOCKET or set REGSIGN_SOCKET");
		return CLI_EXIT_USAGE;
	}
	if (regsign_client_new(&c) != REGSIGN_CLIENT_OK) {
		cli_warn("out of memory");
		return CLI_EXIT_LOCAL;
	}
	regsign_client_set_timeout(c, g->timeout_ms);
	r = regsign_client_connect(c, g->socket_path);
	if (r != REGSIGN_CLIENT_OK) {
		cli_warn("%s", regsign_client_errmsg(c));
		regsign_client_free(c);
		return r == REGSIGN_CLIENT_ERR_INVALID ? CLI_EXIT_USAGE : CLI_EXIT_CONNECT;
	}
	*out = c;
	return CLI_EXIT_OK;
}

int cli_result(regsign_client *c, int r, const struct regsign_reply *rep)
{
	switch (r) {
	case REGSIGN_CLIENT_OK:
		return CLI_EXIT_OK;
	case REGSIGN_CLIENT_ERR_REFUSED:
		cli_warn("%s: %s", regsign_code_name(rep->code),
			 rep->message != NULL ? rep->message : "");
		return CLI_EXIT_REFUSED;
	case REGSIGN_CLIENT_ERR_INVALID:
		cli_warn("%s", regsign_client_errmsg(c));
		return CLI_EXIT_LOCAL;
	case REGSIGN_CLIENT_ERR_NOMEM:
		cli_warn("out of memory");
		return CLI_EXIT_LOCAL;
	default:
		cli_warn("%s: %s", regsign_client_strerror(r), regsign_client_errmsg(c));
		return CLI_EXIT_CONNECT;
	}
}

int cli_parse_u32(const char *s, uint32_t *v)
{
	char *end;
	unsigned long long n;

	if (s == NULL || !isdigit((unsigned char)s[0]))
		return -1;
	errno = 0;
	n = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0' || n > UINT32_MAX)
		return -1;
	*v = (uint32_t)n;
	return 0;
}

int cli_parse_time(const char *s, uint32_t *v)
{
	struct tm tm;
	uint32_t n;
	char *end;

	if (s == NULL)
		return -1;
	if (s[0] == '+') {
		if (cli_parse_u32(s + 1, &n) != 0)
			return -1;
		/* RRSIG times are modulo 2^32 (RFC 4034 §3.1.5). */
		*v = (uint32_t)((uint64_t)time(NULL) + n);
		return 0;
	}
	if (strlen(s) == 14 && strspn(s, "0123456789") == 14) {
		memset(&tm, 0, sizeof(tm));
		end = strptime(s, "%Y%m%d%H%M%S", &tm);
		if (end == NULL || *end != '\0')
			return -1;
		*v = (uint32_t)(uint64_t)timegm(&tm);
		return 0;
	}
	return cli_parse_u32(s, v);
}

int cli_read_file(const char *path, size_t max, unsigned char **data, size_t *len)
{
	FILE *f = NULL;
	unsigned char *buf = NULL;
	size_t n = 0;
	int r = CLI_EXIT_LOCAL;

	*data = NULL;
	*len = 0;
	f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	if (f == NULL) {
		cli_warn("%s: %s", path, strerror(errno));
		goto out;
	}
	/* One byte more than allowed tells "too big" from "exactly max". */
	buf = malloc(max + 2);
	if (buf == NULL) {
		cli_warn("out of memory");
		goto out;
	}
	n = fread(buf, 1, max + 1, f);
	if (ferror(f)) {
		cli_warn("%s: read error", path);
		goto out;
	}
	if (n > max) {
		cli_warn("%s: larger than %zu bytes", path, max);
		goto out;
	}
	buf[n] = 0;
	*data = buf;
	*len = n;
	buf = NULL;
	r = CLI_EXIT_OK;
out:
	if (f != NULL && f != stdin)
		fclose(f);
	free(buf);
	return r;
}

int cli_read_der(const char *path, const char *const *labels, unsigned char **der,
		 size_t *len)
{
	unsigned char *file = NULL, *data = NULL;
	char *name = NULL, *header = NULL;
	long dlen = 0;
	size_t flen;
	BIO *bio = NULL;
	int r;

	*der = NULL;
	*len = 0;
	r = cli_read_file(path, 1 << 20, &file, &flen);
	if (r != CLI_EXIT_OK)
		return r;
	r = CLI_EXIT_LOCAL;
	if (flen > 0 && file[0] == 0x30) {
		/* DER: a SEQUENCE. The server parses it properly. */
		*der = file;
		*len = flen;
		file = NULL;
		r = CLI_EXIT_OK;
		goto out;
	}
	bio = BIO_new_mem_buf(file, (int)flen);
	if (bio == NULL)
		goto out;
	while (PEM_read_bio(bio, &name, &header, &data, &dlen) == 1) {
		for (size_t i = 0; labels[i] != NULL; i++) {
			if (strcmp(name, labels[i]) == 0 && dlen > 0) {
				*der = malloc((size_t)dlen);
				if (*der == NULL)
					goto out;
				memcpy(*der, data, (size_t)dlen);
				*len = (size_t)dlen;
				r = CLI_EXIT_OK;
				goto out;
			}
		}
		OPENSSL_free(name);
		OPENSSL_free(header);
		OPENSSL_free(data);
		name = header = NULL;
		data = NULL;
	}
	cli_warn("%s: neither DER nor PEM with a %s block", path, labels[0]);
out:
	OPENSSL_free(name);
	OPENSSL_free(header);
	OPENSSL_free(data);
	BIO_free(bio);
	free(file);
	return r;
}

int cli_write_pem(FILE *f, const char *label, const unsigned char *der, size_t len)
{
	if (len > INT32_MAX)
		return -1;
	return PEM_write(f, label, "", der, (long)len) > 0 ? 0 : -1;
}

FILE *cli_open_out(const char *path)
{
	FILE *f;

	if (path == NULL || strcmp(path, "-") == 0)
		return stdout;
	f = fopen(path, "wb");
	if (f == NULL)
		cli_warn("%s: %s", path, strerror(errno));
	return f;
}

int cli_close_out(FILE *f)
{
	int bad = ferror(f);

	if (f == stdout)
		return fflush(f) != 0 || bad ? -1 : 0;
	return fclose(f) != 0 || bad ? -1 : 0;
}

static void indent(FILE *f, int depth)
{
	fputc('\n', f);
	for (int i = 0; i < depth; i++)
		fputs("  ", f);
}

void cli_print_json(FILE *f, const char *json, size_t len)
{
	int depth = 0, in_str = 0, esc = 0;

	for (size_t i = 0; i < len; i++) {
		char ch = json[i];

		if (in_str) {
			fputc(ch, f);
			if (esc)
				esc = 0;
			else if (ch == '\\')
				esc = 1;
			else if (ch == '"')
				in_str = 0;
			continue;
		}
		switch (ch) {
		case ' ':
		case '\t':
		case '\n':
		case '\r':
			break;
		case '"':
			in_str = 1;
			fputc(ch, f);
			break;
		case '{':
		case '[': {
			size_t j = i + 1;

			while (j < len && strchr(" \t\r\n", json[j]) != NULL)
				j++;
			fputc(ch, f);
			/* Keep an empty object or array on one line. */
			if (j < len && (json[j] == '}' || json[j] == ']')) {
				fputc(json[j], f);
				i = j;
				break;
			}
			indent(f, ++depth);
			break;
		}
		case '}':
		case ']':
			depth = depth > 0 ? depth - 1 : 0;
			indent(f, depth);
			fputc(ch, f);
			break;
		case ',':
			fputc(ch, f);
			indent(f, depth);
			break;
		case ':':
			fputs(": ", f);
			break;
		default:
			fputc(ch, f);
		}
	}
	fputc('\n', f);
}
