/*
 * regsign-ceremony: run a reviewed key ceremony file against a PKCS#11 token.
 *
 *   regsign-ceremony --module PATH --token-uri URI --pin-file FILE --out DIR
 *                    [--check] ceremony.yaml
 *
 * The ceremony file holds what the witnesses review (labels, subjects,
 * validities, zones); this command line holds the machine's settings and the
 * PIN file, which never go into the reviewed file. --check runs every check
 * (file, token login, no existing label, no existing output) and makes
 * nothing.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hsm-setup/ceremony_file.h"
#include "hsm-setup/ceremony_run.h"

static void usage(FILE *f)
{
    fprintf(f,
            "usage: regsign-ceremony --module PATH --token-uri URI "
            "--pin-file FILE --out DIR [--check] CEREMONY.yaml\n"
            "  --module PATH     PKCS#11 module of the HSM\n"
            "  --token-uri URI   RFC 7512 URI of the token, e.g. "
            "pkcs11:token=regsign\n"
            "  --pin-file FILE   file holding the token's user PIN\n"
            "  --out DIR         output directory (made if missing)\n"
            "  --check           only check the file, the token and the "
            "outputs; make nothing\n");
}

int main(int argc, char **argv)
{
    static const struct option options[] = {
        { "module", required_argument, NULL, 'm' },
        { "token-uri", required_argument, NULL, 't' },
        { "pin-file", required_argument, NULL, 'p' },
        { "out", required_argument, NULL, 'o' },
        { "check", no_argument, NULL, 'c' },
        { "help", no_argument, NULL, 'h' },
        { NULL, 0, NULL, 0 },
    };
    struct ceremony_env env = { 0 };
    struct ceremony_spec *spec = NULL;
    char ferr[CEREMONY_ERRMAX];
    char *err = NULL;
    int c, r, status = 1;

    while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (c) {
        case 'm': env.module_path = optarg; break;
        case 't': env.token_uri = optarg; break;
        case 'p': env.pin_file = optarg; break;
        case 'o': env.out_dir = optarg; break;
        case 'c': env.check_only = true; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc - 1 || env.module_path == NULL || env.token_uri == NULL ||
        env.pin_file == NULL || env.out_dir == NULL) {
        usage(stderr);
        return 2;
    }

    r = ceremony_spec_load(argv[optind], &spec, ferr, sizeof ferr);
    if (r != CEREMONY_FILE_OK) {
        fprintf(stderr, "regsign-ceremony: %s\n",
                ferr[0] != '\0' ? ferr : ceremony_file_strerror(r));
        goto out;
    }
    err = malloc(CEREMONY_RUN_ERRMAX);
    if (err == NULL) {
        fprintf(stderr, "regsign-ceremony: out of memory\n");
        goto out;
    }
    r = ceremony_run(spec, &env, err, CEREMONY_RUN_ERRMAX);
    if (r == CEREMONY_ERR_EXISTS) {
        /* One conflict per line: the operator fixes them all in one go. */
        fprintf(stderr, "regsign-ceremony: refused, nothing was made:\n");
        for (char *item = err, *next; item != NULL; item = next) {
            next = strstr(item, "; ");
            if (next != NULL) {
                *next = '\0';
                next += 2;
            }
            fprintf(stderr, "  - %s\n", item);
        }
        goto out;
    }
    if (r != CEREMONY_OK) {
        fprintf(stderr, "regsign-ceremony: %s: %s\n", ceremony_strerror(r),
                err[0] != '\0' ? err : "no detail");
        goto out;
    }
    if (env.check_only)
        printf("regsign-ceremony: checks passed for %s; nothing was made\n",
               argv[optind]);
    else
        printf("regsign-ceremony: ceremony complete; outputs and transcript "
               "in %s\n", env.out_dir);
    status = 0;
out:
    free(err);
    ceremony_spec_free(spec);
    return status;
}
