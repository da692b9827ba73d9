/*
 * ceremony_transcript: writing the ceremony's human-readable record.
 */
#include "hsm-setup/ceremony_transcript.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct ceremony_transcript {
    FILE *f;
    unsigned steps;
    int err;          /* sticky: the first write error, as -errno */
};

void ceremony_time_format(time_t when, char *buf, size_t len)
{
    struct tm tm;

    if (gmtime_r(&when, &tm) == NULL ||
        strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(buf, len, "@%lld", (long long)when);
}

int ceremony_transcript_open(const char *path, ceremony_transcript_t **out)
{
    ceremony_transcript_t *t = NULL;
    int fd = -1;
    int r = -ENOMEM;

    t = calloc(1, sizeof(*t));
    if (t == NULL)
        goto out;
    fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0) {
        r = -errno;
        goto out;
    }
    t->f = fdopen(fd, "w");
    if (t->f == NULL) {
        r = -errno;
        goto out;
    }
    fd = -1;
    fprintf(t->f, "regsign key ceremony transcript\nformat: 1\n");
    *out = t;
    t = NULL;
    r = 0;
out:
    if (fd >= 0)
        close(fd);
    if (t != NULL && t->f != NULL)
        fclose(t->f);
    free(t);
    return r;
}

/*
 * Values are written on one line each: a value with a newline (a description
 * from the ceremony file, say) would let it forge lines of the transcript, so
 * a tab becomes a space and any other control character a '?'.
 */
static void write_line(ceremony_transcript_t *t, const char *indent,
                       const char *key, const char *fmt, va_list ap)
{
    char value[1024];

    vsnprintf(value, sizeof value, fmt, ap);
    for (char *p = value; *p != '\0'; p++) {
        if (*p == '\t')
            *p = ' ';
        else if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = '?';
    }
    if (fprintf(t->f, "%s%s: %s\n", indent, key, value) < 0 && t->err == 0)
        t->err = -(errno != 0 ? errno : EIO);
}

int ceremony_transcript_header(ceremony_transcript_t *t, const char *key,
                               const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line(t, "", key, fmt, ap);
    va_end(ap);
    return t->err;
}

int ceremony_transcript_field(ceremony_transcript_t *t, const char *key,
                              const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    write_line(t, "  ", key, fmt, ap);
    va_end(ap);
    return t->err;
}

char *ceremony_hex(const unsigned char *bytes, size_t len, char *buf,
                   size_t buflen)
{
    static const char digits[] = "0123456789abcdef";
    size_t n = buflen > 0 ? (buflen - 1) / 2 : 0;

    if (buflen == 0)
        return buf;
    if (n > len)
        n = len;
    for (size_t i = 0; i < n; i++) {
        buf[2 * i] = digits[bytes[i] >> 4];
        buf[2 * i + 1] = digits[bytes[i] & 0x0f];
    }
    buf[2 * n] = '\0';
    return buf;
}

int ceremony_transcript_hex(ceremony_transcript_t *t, const char *key,
                            const unsigned char *bytes, size_t len)
{
    char hex[2 * 256 + 1];

    return ceremony_transcript_field(t, key, "%s",
                                     ceremony_hex(bytes, len, hex, sizeof hex));
}

int ceremony_transcript_sync(ceremony_transcript_t *t)
{
    if (fflush(t->f) != 0 || fsync(fileno(t->f)) != 0) {
        if (t->err == 0)
            t->err = -(errno != 0 ? errno : EIO);
    }
    return t->err;
}

int ceremony_transcript_step(ceremony_transcript_t *t, time_t now,
                             const char *fmt, ...)
{
    char what[256], when[32];
    va_list ap;

    if (t->steps > 0)
        ceremony_transcript_sync(t);
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    t->steps++;
    ceremony_time_format(now, when, sizeof when);
    if (fprintf(t->f, "\nstep %u: %s\n", t->steps, what) < 0 && t->err == 0)
        t->err = -(errno != 0 ? errno : EIO);
    return ceremony_transcript_field(t, "time", "%s", when);
}

int ceremony_transcript_close(ceremony_transcript_t *t, time_t now,
                              const char *failure)
{
    char when[32];
    int r;

    if (t == NULL)
        return 0;
    ceremony_time_format(now, when, sizeof when);
    fprintf(t->f, "\n");
    ceremony_transcript_header(t, "finished", "%s", when);
    if (failure == NULL)
        ceremony_transcript_header(t, "result", "complete");
    else
        ceremony_transcript_header(t, "result", "FAILED: %s", failure);
    r = ceremony_transcript_sync(t);
    if (fclose(t->f) != 0 && r == 0)
        r = -(errno != 0 ? errno : EIO);
    free(t);
    return r;
}
