/*
 * dns_testsrv: a small program serving a signed in-memory registry zone
 * with libregsign-dns, for the integration tests (tests/integration/dns_*.sh).
 *
 *   dns_testsrv --port-file F [--listen 127.0.0.1:0] [--devices N]
 *               [--allow ADDR[/P][,KEY]]... [--tsig ALG:NAME:SECRET]...
 *               [--notify ADDR:PORT[,KEY]]... [--batch N] [--msg-size B]
 *
 * Writes the bound port to F once listening and logs to stderr. Signals:
 * SIGUSR1 adds --batch devices in one change (journalled, then NOTIFY),
 * SIGUSR2 removes the oldest device still present, SIGTERM/SIGINT stop it.
 * Each change logs "serial N" on stderr.
 */
#include <arpa/inet.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "../unit/test_dns_support.h"
#include "signer/dns_acl.h"
#include "signer/dns_journal.h"
#include "signer/dns_notify.h"
#include "signer/dns_server.h"
#include "signer/dns_tsig.h"
#include "zonesigner/zone.h"

struct app {
	uv_loop_t *loop;
	struct tds_zone tz;
	struct dns_journal journal;
	struct dns_acl *acl;
	struct dns_keyring *keys;
	struct dns_server *srv;
	struct dns_notify *notify;
	uv_signal_t sig[4];
	size_t batch;
	uint32_t removed;     /* devices removed so far (oldest first) */
};

static void log_line(void *ctx, enum dns_log_level level, const char *msg)
{
	static const char *const names[] = { "debug", "info", "notice", "warning", "error" };

	(void)ctx;
	fprintf(stderr, "dns_testsrv: %s: %s\n", names[level], msg);
	fflush(stderr);
}

static void changed(struct app *a, const char *what, int r)
{
	if (r != 0) {
		fprintf(stderr, "dns_testsrv: %s failed: %s\n", what, zone_strerror(r));
		return;
	}
	fprintf(stderr, "dns_testsrv: %s: serial %u, journal %zu diffs\n", what,
		zone_serial(a->tz.z), dns_journal_mem_count(a->tz.journal));
	fflush(stderr);
	if (a->notify != NULL)
		dns_notify_send(a->notify);
}

static void on_closed(void *ctx)
{
	(void)ctx;
}

static void on_signal(uv_signal_t *h, int signum)
{
	struct app *a = h->data;

	if (signum == SIGUSR1) {
		changed(a, "add", tds_zone_add(&a->tz, a->batch));
	} else if (signum == SIGUSR2) {
		changed(a, "remove", tds_zone_remove(&a->tz, a->removed));
		a->removed++;
	} else {
		fprintf(stderr, "dns_testsrv: stopping\n");
		dns_server_close(a->srv, on_closed, NULL);
		if (a->notify != NULL)
			dns_notify_close(a->notify, on_closed, NULL);
		for (int i = 0; i < 4; i++)
			uv_close((uv_handle_t *)&a->sig[i], NULL);
	}
}

static int write_port(const char *path, struct dns_server *s)
{
	struct sockaddr_storage ss;
	char tmp[4096];
	unsigned port;
	FILE *f;

	if (dns_server_addr(s, 0, &ss) != 0)
		return -1;
	port = ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
					     : ((struct sockaddr_in6 *)&ss)->sin6_port);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return -1;
	fprintf(f, "%u\n", port);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		return -1;
	return 0;
}

/* "value,key" → value and optional key (split in place). */
static char *split_key(char *s)
{
	char *c = strchr(s, ',');

	if (c == NULL)
		return NULL;
	*c = '\0';
	return c + 1;
}

static int usage(void)
{
	fprintf(stderr, "usage: dns_testsrv --port-file F [--listen A] [--devices N] "
			"[--allow A[,KEY]]... [--tsig ALG:NAME:SECRET]... "
			"[--notify A:P[,KEY]]... [--batch N] [--msg-size B]\n");
	return 2;
}

int main(int argc, char **argv)
{
	struct app a;
	struct dns_server_opts so = { 0 };
	struct dns_notify_opts no = { 0 };
	const char *listen = "127.0.0.1:0", *port_file = NULL;
	char *notify[16];
	size_t nnotify = 0, ndev = 10;
	int r;

	memset(&a, 0, sizeof(a));
	a.loop = uv_default_loop();
	a.batch = 1;
	if (dns_acl_new(&a.acl) != 0 || dns_keyring_new(&a.keys) != 0)
		return 1;
	for (int i = 1; i < argc; i++) {
		const char *o = argv[i];
		char *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (v == NULL)
			return usage();
		i++;
		if (strcmp(o, "--listen") == 0) {
			listen = v;
		} else if (strcmp(o, "--port-file") == 0) {
			port_file = v;
		} else if (strcmp(o, "--devices") == 0) {
			ndev = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--batch") == 0) {
			a.batch = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--msg-size") == 0) {
			so.env.msg_size = strtoul(v, NULL, 10);
		} else if (strcmp(o, "--allow") == 0) {
			char *key = split_key(v);
			if (dns_acl_add(a.acl, v, key) != 0) {
				fprintf(stderr, "dns_testsrv: bad --allow %s\n", v);
				return 2;
			}
		} else if (strcmp(o, "--tsig") == 0) {
			if (dns_keyring_add_spec(a.keys, v) != 0) {
				fprintf(stderr, "dns_testsrv: bad --tsig\n");
				return 2;
			}
		} else if (strcmp(o, "--notify") == 0 && nnotify < 16) {
			notify[nnotify++] = v;
		} else {
			return usage();
		}
	}
	if (port_file == NULL)
		return usage();
	r = tds_zone_init(&a.tz, NULL, ndev);
	if (r != 0) {
		fprintf(stderr, "dns_testsrv: zone: %s\n", zone_strerror(r));
		return 1;
	}
	fprintf(stderr, "dns_testsrv: zone %s serial %u with %zu devices\n", zone_origin(a.tz.z),
		zone_serial(a.tz.z), ndev);
	a.journal = dns_journal_mem_ops(a.tz.journal);
	so.env.zone = a.tz.z;
	so.env.journal = &a.journal;
	so.env.acl = a.acl;
	so.env.keys = a.keys;
	so.log = log_line;
	if ((r = dns_server_new(a.loop, &so, &a.srv)) != 0 ||
	    (r = dns_server_listen(a.srv, listen)) != 0) {
		fprintf(stderr, "dns_testsrv: listen %s: %s\n", listen, dns_strerror(r));
		return 1;
	}
	no.zone = a.tz.z;
	no.keys = a.keys;
	no.retry_ms = 500;
	no.log = log_line;
	if (nnotify > 0 && (r = dns_notify_new(a.loop, &no, &a.notify)) != 0)
		return 1;
	for (size_t i = 0; i < nnotify; i++) {
		char *key = split_key(notify[i]);
		if ((r = dns_notify_add_target(a.notify, notify[i], key)) != 0) {
			fprintf(stderr, "dns_testsrv: notify %s: %s\n", notify[i], dns_strerror(r));
			return 1;
		}
	}
	int sigs[4] = { SIGUSR1, SIGUSR2, SIGTERM, SIGINT };
	for (int i = 0; i < 4; i++) {
		uv_signal_init(a.loop, &a.sig[i]);
		a.sig[i].data = &a;
		uv_signal_start(&a.sig[i], on_signal, sigs[i]);
	}
	if (write_port(port_file, a.srv) != 0) {
		fprintf(stderr, "dns_testsrv: cannot write %s\n", port_file);
		return 1;
	}
	uv_run(a.loop, UV_RUN_DEFAULT);
	r = uv_loop_close(a.loop);
	dns_server_free(a.srv);
	dns_notify_free(a.notify);
	dns_acl_free(a.acl);
	dns_keyring_free(a.keys);
	tds_zone_free(&a.tz);
	if (r != 0) {
		fprintf(stderr, "dns_testsrv: loop not closed cleanly: %s\n", uv_strerror(r));
		return 1;
	}
	fprintf(stderr, "dns_testsrv: stopped\n");
	return 0;
}
