/**
 * @file cli.h
 * @brief Internals of the `regsign` command-line client: the subcommand
 * entry points that signer/regsign.c lists in its command table, and the
 * helpers they share (signer/cli_util.c).
 *
 * Adding a subcommand: write signer/cli_<name>.c with one entry point,
 * declare it here, add a row to the table in signer/regsign.c and the file
 * to the `regsign` target in signer/proto.cmake. Two shapes exist:
 *  - commands that talk to regsignd get the global options (socket path,
 *    timeout): `int cli_x(const struct cli_global *g, int argc, char **argv)`;
 *  - offline commands (e.g. `audit`) get only their arguments:
 *    `int cli_x(int argc, char **argv)`.
 * In both, argv[0] is the subcommand's name and the return value is the
 * process exit status (enum cli_exit for socket commands).
 */
#ifndef REGSIGN_SIGNER_CLI_H
#define REGSIGN_SIGNER_CLI_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "signer/client.h"

/** Exit statuses of socket commands (documented in docs/PROTOCOL.md §11). */
enum cli_exit {
	CLI_EXIT_OK = 0,
	CLI_EXIT_REFUSED = 1, /**< the server answered ERROR */
	CLI_EXIT_USAGE = 2,   /**< bad command line */
	CLI_EXIT_CONNECT = 3, /**< cannot connect; connection lost; timeout; bad reply */
	CLI_EXIT_LOCAL = 4,   /**< local failure: unreadable file, bad input, memory */
};

/** Options given before the subcommand. */
struct cli_global {
	const char *socket_path; /**< -s, or $REGSIGN_SOCKET */
	int timeout_ms;          /**< -t (seconds on the command line) */
};

/* ---- socket commands ---- */

int cli_issue(const struct cli_global *g, int argc, char **argv);       /* cli_cert.c */
int cli_reissue(const struct cli_global *g, int argc, char **argv);     /* cli_cert.c */
int cli_revoke(const struct cli_global *g, int argc, char **argv);      /* cli_cert.c */
int cli_crl(const struct cli_global *g, int argc, char **argv);         /* cli_cert.c */
int cli_chain(const struct cli_global *g, int argc, char **argv);       /* cli_cert.c */
int cli_status(const struct cli_global *g, int argc, char **argv);      /* cli_info.c */
int cli_zone_status(const struct cli_global *g, int argc, char **argv); /* cli_info.c */
int cli_hello(const struct cli_global *g, int argc, char **argv);       /* cli_info.c */
int cli_publish(const struct cli_global *g, int argc, char **argv);     /* cli_zone.c */
int cli_unpublish(const struct cli_global *g, int argc, char **argv);   /* cli_zone.c */
int cli_sign_rrset(const struct cli_global *g, int argc, char **argv);  /* cli_zone.c */
int cli_import(const struct cli_global *g, int argc, char **argv);      /* cli_import.c */

/* ---- offline commands ---- */

/** `regsign audit verify|show` (signer/cli_audit.c, with signer/audit). */
int cli_audit(int argc, char **argv);

/* ---- helpers (cli_util.c); they print their own diagnostics ---- */

/** Prints "regsign: <message>" and a newline on stderr. */
void cli_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/**
 * Connects to g->socket_path with g's timeout. Returns CLI_EXIT_OK with *out
 * set, or CLI_EXIT_CONNECT / CLI_EXIT_USAGE / CLI_EXIT_LOCAL after printing
 * why.
 */
int cli_connect(const struct cli_global *g, regsign_client **out);

/**
 * Turns a client call's result into an exit status, printing the server's
 * code name and message (refusal) or the local failure on stderr.
 */
int cli_result(regsign_client *c, int r, const struct regsign_reply *rep);

/** Parses a decimal uint32 (no sign, no junk). Returns 0 or -1. */
int cli_parse_u32(const char *s, uint32_t *v);

/**
 * Parses a time for RRSIG fields: seconds since the epoch, or
 * YYYYMMDDHHmmSS in UTC as in a zone file, or +N for N seconds from now.
 * Returns 0 or -1.
 */
int cli_parse_time(const char *s, uint32_t *v);

/**
 * Reads a whole file ("-" is standard input) of at most @p max bytes into
 * *data (heap, NUL-terminated; free with free()). Returns CLI_EXIT_OK or
 * CLI_EXIT_LOCAL after printing why.
 */
int cli_read_file(const char *path, size_t max, unsigned char **data, size_t *len);

/**
 * Reads a DER object from a file in DER or PEM form. For PEM, the first
 * block whose label is one of @p labels (NULL-terminated list) is taken.
 * Returns CLI_EXIT_OK with *der (free with free()) or CLI_EXIT_LOCAL.
 */
int cli_read_der(const char *path, const char *const *labels, unsigned char **der,
		 size_t *len);

/** Writes DER as a PEM block with @p label. Returns 0 or -1. */
int cli_write_pem(FILE *f, const char *label, const unsigned char *der, size_t len);

/**
 * Opens @p path for writing ("-" or NULL: standard output). Returns NULL
 * after printing why.
 */
FILE *cli_open_out(const char *path);

/** Closes what cli_open_out() returned; returns 0, or -1 on a write error. */
int cli_close_out(FILE *f);

/** Prints a JSON document indented for people (it does not validate it). */
void cli_print_json(FILE *f, const char *json, size_t len);

#endif
