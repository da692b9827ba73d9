/*
 * ceremony_run: checks first, then every step of the ceremony in order.
 */
#include "hsm-setup/ceremony_run.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "hsm-setup/ceremony_ca.h"
#include "hsm-setup/ceremony_transcript.h"
#include "pkcs11/hsm.h"
#include "pkcs11/hsm_uri.h"
#include "zonesigner/zone_dnskey.h"
#include "zonesigner/zone_err.h"

#ifndef REGSIGN_VERSION
#define REGSIGN_VERSION "unknown"
#endif

#define OUT_NAME_MAX 300
#define OUT_MAX (6 + 2 * CEREMONY_EXTRA_ZONES_MAX)
#define LABELS_MAX (5 + 2 * CEREMONY_EXTRA_ZONES_MAX)

/* One run: the settings, the open token and transcript, the output dir. */
struct run {
    const struct ceremony_spec *spec;
    const struct ceremony_env *env;
    hsm_t *hsm;
    ceremony_transcript_t *tr;
    int dirfd;
    char *err;
    size_t errlen;
};

/* A key made by the ceremony, as the later steps need it. */
struct made_key {
    int key_id;
    unsigned char *spki;
    size_t spki_len;
};

const char *ceremony_strerror(int err)
{
    switch (err) {
    case CEREMONY_OK: return "success";
    case CEREMONY_ERR_NOMEM: return "out of memory";
    case CEREMONY_ERR_ARG: return "invalid argument";
    case CEREMONY_ERR_EXISTS: return "refused: a key label or an output file already exists";
    case CEREMONY_ERR_HSM: return "the token failed or refused an operation";
    case CEREMONY_ERR_X509: return "a certificate could not be made";
    case CEREMONY_ERR_ZONE: return "DNSKEY/DS records could not be made";
    case CEREMONY_ERR_IO: return "an output file could not be written";
    case CEREMONY_ERR_CRYPTO: return "an OpenSSL operation failed";
    default: return "unknown ceremony error";
    }
}

static int fail(struct run *run, int r, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct run *run, int r, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(run->err, run->errlen, fmt, ap);
    va_end(ap);
    return r;
}

/* Appends "; "-separated items to the error buffer (for refusals). */
static void err_append(struct run *run, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void err_append(struct run *run, const char *fmt, ...)
{
    size_t used = strnlen(run->err, run->errlen);
    va_list ap;

    if (used + 3 >= run->errlen)
        return;
    if (used > 0) {
        memcpy(run->err + used, "; ", 3);
        used += 2;
    }
    va_start(ap, fmt);
    vsnprintf(run->err + used, run->errlen - used, fmt, ap);
    va_end(ap);
}

static int list_outputs(const struct ceremony_spec *s,
                        char names[OUT_MAX][OUT_NAME_MAX], size_t *n)
{
    size_t k = 0;

    snprintf(names[k++], OUT_NAME_MAX, "root-ca.pem");
    snprintf(names[k++], OUT_NAME_MAX, "issuing-ca.pem");
    ceremony_zone_file_name("dnskey", NULL, names[k++], OUT_NAME_MAX);
    ceremony_zone_file_name("ds", NULL, names[k++], OUT_NAME_MAX);
    snprintf(names[k++], OUT_NAME_MAX, "audit.pub");
    for (size_t i = 0; i < s->nextra; i++) {
        if (ceremony_zone_file_name("dnskey", &s->extra[i], names[k++],
                                    OUT_NAME_MAX) != 0 ||
            ceremony_zone_file_name("ds", &s->extra[i], names[k++],
                                    OUT_NAME_MAX) != 0)
            return CEREMONY_ERR_ARG;
    }
    snprintf(names[k++], OUT_NAME_MAX, CEREMONY_TRANSCRIPT_NAME);
    *n = k;
    return CEREMONY_OK;
}

static size_t list_labels(const struct ceremony_spec *s,
                          const char *labels[LABELS_MAX])
{
    size_t k = 0;

    labels[k++] = s->root.label;
    labels[k++] = s->issuing.label;
    labels[k++] = s->registry.ksk_label;
    labels[k++] = s->registry.zsk_label;
    labels[k++] = s->audit_label;
    for (size_t i = 0; i < s->nextra; i++) {
        labels[k++] = s->extra[i].ksk_label;
        labels[k++] = s->extra[i].zsk_label;
    }
    return k;
}

/*
 * The refusal rule: nothing is made unless no label and no output exists.
 * Every conflict is listed, so one run tells the operator all that is wrong.
 */
static int check_nothing_exists(struct run *run)
{
    char names[OUT_MAX][OUT_NAME_MAX];
    const char *labels[LABELS_MAX];
    size_t nnames = 0, nlabels, conflicts = 0;
    struct stat st;
    int r;

    r = list_outputs(run->spec, names, &nnames);
    if (r != CEREMONY_OK)
        return fail(run, r, "an output file name is too long");
    run->err[0] = '\0';
    for (size_t i = 0; run->dirfd >= 0 && i < nnames; i++) {
        if (fstatat(run->dirfd, names[i], &st, AT_SYMLINK_NOFOLLOW) == 0 ||
            errno != ENOENT) {
            err_append(run, "output file %s/%s exists", run->env->out_dir,
                       names[i]);
            conflicts++;
        }
    }
    nlabels = list_labels(run->spec, labels);
    for (size_t i = 0; i < nlabels; i++) {
        bool exists = true;
        r = hsm_object_exists(run->hsm, labels[i], &exists);
        if (r != HSM_OK)
            return fail(run, CEREMONY_ERR_HSM, "looking up label \"%s\": %s (%s)",
                        labels[i], hsm_strerror(r), hsm_last_error(run->hsm));
        if (exists) {
            err_append(run, "an object labelled \"%s\" exists in the token",
                       labels[i]);
            conflicts++;
        }
    }
    return conflicts > 0 ? CEREMONY_ERR_EXISTS : CEREMONY_OK;
}

/* Opens the output directory, or leaves dirfd -1 if it does not exist yet. */
static int open_out_dir(struct run *run, bool create)
{
    if (create && mkdir(run->env->out_dir, 0755) != 0 && errno != EEXIST)
        return fail(run, CEREMONY_ERR_IO, "cannot make %s: %s",
                    run->env->out_dir, strerror(errno));
    run->dirfd = open(run->env->out_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (run->dirfd < 0 && (create || errno != ENOENT))
        return fail(run, CEREMONY_ERR_IO, "cannot open output directory %s: %s",
                    run->env->out_dir, strerror(errno));
    return CEREMONY_OK;
}

/* Writes a new output file; O_EXCL makes sure it never replaces one. */
static int write_output(struct run *run, const char *name, const void *data,
                        size_t len)
{
    const unsigned char *p = data;
    int fd, r = CEREMONY_ERR_IO;

    fd = openat(run->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return fail(run, CEREMONY_ERR_IO, "cannot create %s/%s: %s",
                    run->env->out_dir, name, strerror(errno));
    while (len > 0) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto out;
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0)
        goto out;
    r = CEREMONY_OK;
out:
    if (r != CEREMONY_OK)
        fail(run, r, "cannot write %s/%s: %s", run->env->out_dir, name,
             strerror(errno));
    close(fd);
    return r;
}

static int sha256(const unsigned char *data, size_t len, unsigned char md[32])
{
    return EVP_Digest(data, len, md, NULL, EVP_sha256(), NULL) == 1
               ? CEREMONY_OK : CEREMONY_ERR_CRYPTO;
}

/* "pkcs11:token=...;object=<label>;id=%xx..." naming exactly the new key. */
static void key_uri(const struct run *run, const char *label,
                    const unsigned char id[16], char *buf, size_t len)
{
    static const char digits[] = "0123456789abcdef";
    int n = snprintf(buf, len, "%s;object=%s;id=", run->env->token_uri, label);

    for (size_t i = 0; n > 0 && i < 16 && (size_t)n + 3 < len; i++) {
        buf[n++] = '%';
        buf[n++] = digits[id[i] >> 4];
        buf[n++] = digits[id[i] & 0x0f];
        buf[n] = '\0';
    }
}

/*
 * One key step: generate the pair in the token, register it (which checks
 * CKA_SENSITIVE, CKA_EXTRACTABLE, CKA_NEVER_EXTRACTABLE and that the private
 * key signs for its public key), read its SPKI, and record it.
 */
static int make_key(struct run *run, const char *what, const char *label,
                    struct made_key *k)
{
    unsigned char id[16], md[32];
    char uri[512];
    int r;

    ceremony_transcript_step(run->tr, time(NULL), "key %s", what);
    ceremony_transcript_field(run->tr, "label", "%s", label);
    ceremony_transcript_field(run->tr, "algorithm", "ec-p256");
    r = hsm_keygen_ec(run->hsm, label, id);
    if (r != HSM_OK)
        return fail(run, CEREMONY_ERR_HSM, "generating key \"%s\": %s (%s)",
                    label, hsm_strerror(r), hsm_last_error(run->hsm));
    ceremony_transcript_hex(run->tr, "id", id, sizeof id);
    key_uri(run, label, id, uri, sizeof uri);
    r = hsm_key_add(run->hsm, label, uri, &k->key_id);
    if (r == HSM_OK)
        r = hsm_key_public(run->hsm, k->key_id, &k->spki, &k->spki_len);
    if (r != HSM_OK)
        return fail(run, CEREMONY_ERR_HSM, "checking new key \"%s\": %s (%s)",
                    label, hsm_strerror(r), hsm_last_error(run->hsm));
    ceremony_transcript_field(run->tr, "uri", "%s", uri);
    ceremony_transcript_field(run->tr, "private-key",
                              "sensitive, never extractable (checked)");
    r = sha256(k->spki, k->spki_len, md);
    if (r != CEREMONY_OK)
        return fail(run, r, "hashing the public key of \"%s\"", label);
    ceremony_transcript_hex(run->tr, "public-key-sha256", md, sizeof md);
    return ceremony_transcript_sync(run->tr) == 0
               ? CEREMONY_OK
               : fail(run, CEREMONY_ERR_IO, "cannot write the transcript");
}

/* Writes a certificate made in the current step and records it. */
static int write_cert(struct run *run, const char *what, const char *name,
                      X509 *cert)
{
    unsigned char *der = NULL, md[32];
    char *pem = NULL, buf[256], when[32];
    BIO *bio = NULL;
    int len, r = CEREMONY_ERR_CRYPTO;
    long pemlen;

    bio = BIO_new(BIO_s_mem());
    len = i2d_X509(cert, &der);
    if (bio == NULL || len <= 0 || !PEM_write_bio_X509(bio, cert))
        goto out;
    pemlen = BIO_get_mem_data(bio, &pem);
    r = write_output(run, name, pem, (size_t)pemlen);
    if (r != CEREMONY_OK)
        goto out;
    ceremony_transcript_field(run->tr, "file", "%s", name);
    X509_NAME_oneline(X509_get_subject_name(cert), buf, sizeof buf);
    ceremony_transcript_field(run->tr, "subject", "%s", buf);
    X509_NAME_oneline(X509_get_issuer_name(cert), buf, sizeof buf);
    ceremony_transcript_field(run->tr, "issuer", "%s", buf);
    {
        const ASN1_INTEGER *serial = X509_get0_serialNumber(cert);
        ceremony_transcript_hex(run->tr, "serial", ASN1_STRING_get0_data(serial),
                                (size_t)ASN1_STRING_length(serial));
    }
    r = CEREMONY_ERR_CRYPTO;
    {
        struct tm tm;
        if (!ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm) ||
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            goto out;
        ceremony_transcript_field(run->tr, "not-before", "%s", when);
        if (!ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm) ||
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
            goto out;
        ceremony_transcript_field(run->tr, "not-after", "%s", when);
    }
    r = sha256(der, (size_t)len, md);
    if (r != CEREMONY_OK)
        goto out;
    ceremony_transcript_hex(run->tr, "certificate-sha256", md, sizeof md);
    r = ceremony_transcript_sync(run->tr) == 0 ? CEREMONY_OK : CEREMONY_ERR_IO;
out:
    if (r == CEREMONY_ERR_CRYPTO)
        fail(run, r, "encoding the %s certificate", what);
    else if (r == CEREMONY_ERR_IO && run->err[0] == '\0')
        fail(run, r, "cannot write the transcript");
    OPENSSL_free(der);
    BIO_free(bio);
    return r;
}

/* DNSKEY RRs of both keys and the KSK's SHA-256 DS, each in its own file. */
static int write_dnskeys(struct run *run, const struct ceremony_zone *zone,
                         const struct ceremony_zone *extra,
                         const struct made_key *ksk, const struct made_key *zsk)
{
    struct zone_dnskey kk, zk;
    char *ktext = NULL, *ztext = NULL, *dstext = NULL, *both = NULL;
    char dnskey_name[OUT_NAME_MAX], ds_name[OUT_NAME_MAX];
    uint32_t ttl = (uint32_t)zone->dnskey_ttl;
    int r, zr;

    ceremony_zone_file_name("dnskey", extra, dnskey_name, sizeof dnskey_name);
    ceremony_zone_file_name("ds", extra, ds_name, sizeof ds_name);
    ceremony_transcript_step(run->tr, time(NULL), "dnskey and ds %s", zone->name);
    zr = zone_dnskey_from_spki(ksk->spki, ksk->spki_len, ZONE_DNSKEY_FLAGS_KSK, &kk);
    if (zr == ZONE_OK)
        zr = zone_dnskey_from_spki(zsk->spki, zsk->spki_len,
                                   ZONE_DNSKEY_FLAGS_ZSK, &zk);
    if (zr == ZONE_OK)
        zr = zone_dnskey_rr_text(&kk, zone->name, ttl, &ktext);
    if (zr == ZONE_OK)
        zr = zone_dnskey_rr_text(&zk, zone->name, ttl, &ztext);
    if (zr == ZONE_OK)
        zr = zone_dnskey_ds_text(&kk, zone->name, ttl, &dstext);
    if (zr != ZONE_OK) {
        r = fail(run, CEREMONY_ERR_ZONE, "DNSKEY/DS of %s: %s", zone->name,
                 zone_strerror(zr));
        goto out;
    }
    r = CEREMONY_ERR_NOMEM;
    if (asprintf(&both, "%s%s", ktext, ztext) < 0) {
        both = NULL;
        fail(run, r, "out of memory");
        goto out;
    }
    r = write_output(run, dnskey_name, both, strlen(both));
    if (r == CEREMONY_OK)
        r = write_output(run, ds_name, dstext, strlen(dstext));
    if (r != CEREMONY_OK)
        goto out;
    ceremony_transcript_field(run->tr, "files", "%s %s", dnskey_name, ds_name);
    ceremony_transcript_field(run->tr, "ksk-key-tag", "%u", (unsigned)kk.key_tag);
    ceremony_transcript_field(run->tr, "zsk-key-tag", "%u", (unsigned)zk.key_tag);
    ceremony_transcript_field(run->tr, "ds", "%.*s",
                              (int)strcspn(dstext, "\n"), dstext);
    r = ceremony_transcript_sync(run->tr) == 0
            ? CEREMONY_OK
            : fail(run, CEREMONY_ERR_IO, "cannot write the transcript");
out:
    free(ktext);
    free(ztext);
    free(dstext);
    free(both);
    return r;
}

static int write_audit_pub(struct run *run, const struct made_key *audit)
{
    const unsigned char *p = audit->spki;
    EVP_PKEY *pkey = NULL;
    BIO *bio = NULL;
    char *pem = NULL;
    long pemlen;
    int r = CEREMONY_ERR_CRYPTO;

    ceremony_transcript_step(run->tr, time(NULL), "audit public key");
    pkey = d2i_PUBKEY(NULL, &p, (long)audit->spki_len);
    bio = BIO_new(BIO_s_mem());
    if (pkey == NULL || bio == NULL || !PEM_write_bio_PUBKEY(bio, pkey)) {
        fail(run, r, "encoding the audit public key");
        goto out;
    }
    pemlen = BIO_get_mem_data(bio, &pem);
    r = write_output(run, "audit.pub", pem, (size_t)pemlen);
    if (r != CEREMONY_OK)
        goto out;
    ceremony_transcript_field(run->tr, "file", "audit.pub");
    r = ceremony_transcript_sync(run->tr) == 0
            ? CEREMONY_OK
            : fail(run, CEREMONY_ERR_IO, "cannot write the transcript");
out:
    EVP_PKEY_free(pkey);
    BIO_free(bio);
    return r;
}

static void made_key_clear(struct made_key *k)
{
    free(k->spki);
    k->spki = NULL;
}

/* Every step after the checks, in the order the transcript records them. */
static int run_steps(struct run *run)
{
    const struct ceremony_spec *s = run->spec;
    struct made_key root = { 0 }, issuing = { 0 }, ksk = { 0 }, zsk = { 0 },
                    audit = { 0 };
    X509 *root_cert = NULL, *issuing_cert = NULL;
    struct ceremony_signer signer;
    int r;

    r = make_key(run, "root-ca", s->root.label, &root);
    if (r != CEREMONY_OK)
        goto out;
    signer = (struct ceremony_signer){ run->hsm, root.key_id };
    ceremony_transcript_step(run->tr, time(NULL), "certificate root-ca");
    r = ceremony_ca_root(&s->root, &signer, root.spki, root.spki_len, time(NULL),
                         &root_cert, run->err, run->errlen);
    if (r == CEREMONY_OK)
        r = write_cert(run, "root-ca", "root-ca.pem", root_cert);
    if (r == CEREMONY_OK)
        r = make_key(run, "issuing-ca", s->issuing.label, &issuing);
    if (r != CEREMONY_OK)
        goto out;
    ceremony_transcript_step(run->tr, time(NULL), "certificate issuing-ca");
    r = ceremony_ca_issuing(&s->issuing, s->registry.name, root_cert, &signer,
                            issuing.spki, issuing.spki_len, time(NULL),
                            &issuing_cert, run->err, run->errlen);
    if (r == CEREMONY_OK)
        r = write_cert(run, "issuing-ca", "issuing-ca.pem", issuing_cert);
    if (r == CEREMONY_OK)
        r = make_key(run, "ksk", s->registry.ksk_label, &ksk);
    if (r == CEREMONY_OK)
        r = make_key(run, "zsk", s->registry.zsk_label, &zsk);
    if (r == CEREMONY_OK)
        r = write_dnskeys(run, &s->registry, NULL, &ksk, &zsk);
    if (r == CEREMONY_OK)
        r = make_key(run, "audit", s->audit_label, &audit);
    if (r == CEREMONY_OK)
        r = write_audit_pub(run, &audit);
    for (size_t i = 0; r == CEREMONY_OK && i < s->nextra; i++) {
        char what[300];
        made_key_clear(&ksk);
        made_key_clear(&zsk);
        snprintf(what, sizeof what, "ksk %s", s->extra[i].name);
        r = make_key(run, what, s->extra[i].ksk_label, &ksk);
        snprintf(what, sizeof what, "zsk %s", s->extra[i].name);
        if (r == CEREMONY_OK)
            r = make_key(run, what, s->extra[i].zsk_label, &zsk);
        if (r == CEREMONY_OK)
            r = write_dnskeys(run, &s->extra[i], &s->extra[i], &ksk, &zsk);
    }
out:
    X509_free(root_cert);
    X509_free(issuing_cert);
    made_key_clear(&root);
    made_key_clear(&issuing);
    made_key_clear(&ksk);
    made_key_clear(&zsk);
    made_key_clear(&audit);
    return r;
}

static void write_header(struct run *run)
{
    const struct ceremony_spec *s = run->spec;
    char when[32], cwd[PATH_MAX], hex[65], *abs = NULL;

    ceremony_time_format(time(NULL), when, sizeof when);
    ceremony_transcript_header(run->tr, "tool", "regsign-ceremony %s",
                               REGSIGN_VERSION);
    abs = realpath(s->path, NULL);
    ceremony_transcript_header(run->tr, "ceremony-file", "%s",
                               abs != NULL ? abs : s->path);
    free(abs);
    ceremony_transcript_header(run->tr, "ceremony-file-sha256", "%s",
                               ceremony_hex(s->sha256, sizeof s->sha256, hex,
                                            sizeof hex));
    ceremony_transcript_header(run->tr, "description", "%s", s->description);
    ceremony_transcript_header(run->tr, "registry-zone", "%s", s->registry.name);
    ceremony_transcript_header(run->tr, "module", "%s", run->env->module_path);
    ceremony_transcript_header(run->tr, "token", "%s", run->env->token_uri);
    ceremony_transcript_header(run->tr, "output-directory", "%s",
                               realpath(run->env->out_dir, cwd) != NULL
                                   ? cwd : run->env->out_dir);
    ceremony_transcript_header(run->tr, "started", "%s", when);
    ceremony_transcript_header(run->tr, "checks",
                               "no label and no output file existed");
}

int ceremony_run(const struct ceremony_spec *spec, const struct ceremony_env *env,
                 char *err, size_t errlen)
{
    struct run run = { .spec = spec, .env = env, .dirfd = -1, .err = err,
                       .errlen = errlen };
    char hsm_err[256] = "";
    struct hsm_config cfg = {
        .module_path = env->module_path, .token_uri = env->token_uri,
        .pin_file = env->pin_file, .sessions = 1, .recover_timeout_ms = 5000,
        .errbuf = hsm_err, .errbuf_len = sizeof hsm_err,
    };
    int r;

    if (err == NULL || errlen == 0)
        return CEREMONY_ERR_ARG;
    err[0] = '\0';
    if (hsm_uri_check(env->token_uri, HSM_URI_TOKEN, hsm_err,
                      sizeof hsm_err) != HSM_OK)
        return fail(&run, CEREMONY_ERR_ARG, "token URI %s refused: %s",
                    env->token_uri, hsm_err);
    r = open_out_dir(&run, false);
    if (r != CEREMONY_OK)
        goto out;
    r = hsm_open(&cfg, &run.hsm);
    if (r != HSM_OK) {
        r = fail(&run, CEREMONY_ERR_HSM, "opening the token %s: %s (%s)",
                 env->token_uri, hsm_strerror(r), hsm_err);
        goto out;
    }
    r = check_nothing_exists(&run);
    if (r != CEREMONY_OK || env->check_only)
        goto out;
    if (run.dirfd < 0) {
        r = open_out_dir(&run, true);
        if (r != CEREMONY_OK)
            goto out;
    }
    {
        char path[PATH_MAX];
        snprintf(path, sizeof path, "%s/%s", env->out_dir,
                 CEREMONY_TRANSCRIPT_NAME);
        r = ceremony_transcript_open(path, &run.tr);
        if (r != 0) {
            r = fail(&run, CEREMONY_ERR_IO, "cannot create %s: %s", path,
                     strerror(-r));
            goto out;
        }
    }
    write_header(&run);
    r = run_steps(&run);
    if (ceremony_transcript_close(run.tr, time(NULL),
                                  r == CEREMONY_OK ? NULL : err) != 0 &&
        r == CEREMONY_OK)
        r = fail(&run, CEREMONY_ERR_IO, "cannot finish the transcript");
    run.tr = NULL;
    if (r == CEREMONY_OK && fsync(run.dirfd) != 0)
        r = fail(&run, CEREMONY_ERR_IO, "cannot sync %s: %s", env->out_dir,
                 strerror(errno));
out:
    hsm_close(run.hsm);
    if (run.dirfd >= 0)
        close(run.dirfd);
    return r;
}
