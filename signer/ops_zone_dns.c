/*
 * ops_zone_dns.c - the registry zone's DNS listener and NOTIFY: TSIG keys
 * from dns.tsig-keys (each secret read from its file at start and wiped from
 * memory once in the keyring), the transfer allow-list, the listener on every
 * dns.listen address (UDP and TCP) reading the served zone and the journal,
 * and NOTIFY to dns.notify (the daemon sends it at each new serial, and once
 * at start, since secondaries may have missed serials while it was down).
 */
#include "signer/ops_zone.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "signer/dns_acl.h"
#include "signer/dns_notify.h"
#include "signer/dns_server.h"
#include "signer/dns_tsig.h"

void
ops_zone_dns_log(void *arg, enum dns_log_level level, const char *msg)
{
	struct ops_zone *z = arg;
	static const int map[] = {
		[DNS_LOG_DEBUG] = OPS_LOG_DEBUG, [DNS_LOG_INFO] = OPS_LOG_INFO,
		[DNS_LOG_NOTICE] = OPS_LOG_NOTICE, [DNS_LOG_WARNING] = OPS_LOG_WARNING,
		[DNS_LOG_ERROR] = OPS_LOG_ERR,
	};

	ops_log(z->ctx, level <= DNS_LOG_ERROR ? map[level] : OPS_LOG_ERR, "dns: %s", msg);
}

/* Reads a TSIG secret file: base64 on one line; surrounding blanks ignored. */
static int
read_secret(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;
	size_t len, start = 0;

	if (fd < 0)
		return -1;
	n = read(fd, buf, cap - 1);
	close(fd);
	if (n <= 0 || (size_t)n >= cap - 1)
		return -1;
	len = (size_t)n;
	while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r' || buf[len - 1] == ' ' ||
			   buf[len - 1] == '\t'))
		len--;
	while (start < len && (buf[start] == ' ' || buf[start] == '\t'))
		start++;
	memmove(buf, buf + start, len - start);
	buf[len - start] = '\0';
	return len > start ? 0 : -1;
}

static int
keys_load(struct ops_zone *z)
{
	const struct config *cfg = z->ctx->cfg;
	char secret[1024];

	if (dns_keyring_new(&z->keys) != 0)
		return -1;
	for (size_t i = 0; i < cfg->dns.n_tsig_keys; i++) {
		const struct config_tsig_key *k = &cfg->dns.tsig_keys[i];
		int e = -1;

		if (read_secret(k->secret_file, secret, sizeof(secret)) == 0)
			e = dns_keyring_add(z->keys, k->name, k->algorithm, secret);
		OPENSSL_cleanse(secret, sizeof(secret));
		if (e != 0) {
			ops_log(z->ctx, OPS_LOG_ERR, "TSIG key %s: %s cannot be read or is not "
				"base64 of at least 16 bytes", k->name, k->secret_file);
			return -1;
		}
	}
	return 0;
}

int
ops_zone_listen(struct ops_zone *z)
{
	const struct config *cfg = z->ctx->cfg;
	struct dns_server_opts so;
	struct dns_notify_opts no;
	int e;

	if (keys_load(z) != 0 || dns_acl_new(&z->acl) != 0)
		return -1;
	for (size_t i = 0; i < cfg->dns.n_allow_transfer; i++) {
		const char *key = cfg->dns.allow_transfer_key ? cfg->dns.allow_transfer_key[i] : NULL;

		if (dns_acl_add(z->acl, cfg->dns.allow_transfer[i], key) != 0) {
			ops_log(z->ctx, OPS_LOG_ERR, "dns.allow-transfer: %s refused",
				cfg->dns.allow_transfer[i]);
			return -1;
		}
	}
	z->journal = zonepub_journal(z->zp);
	memset(&so, 0, sizeof(so));
	so.env.zone = zonepub_zone(z->zp);
	so.env.journal = &z->journal;
	so.env.acl = z->acl;
	so.env.keys = z->keys;
	so.env.msg_size = cfg->dns.transfer_message_size;
	so.log = ops_zone_dns_log;
	so.log_ctx = z;
	if ((e = dns_server_new(z->ctx->loop, &so, &z->server)) != 0) {
		ops_log(z->ctx, OPS_LOG_ERR, "DNS listener: %s", dns_strerror(e));
		return -1;
	}
	for (size_t i = 0; i < cfg->dns.n_listen; i++) {
		if ((e = dns_server_listen(z->server, cfg->dns.listen[i])) != 0) {
			ops_log(z->ctx, OPS_LOG_ERR, "DNS listener on %s: %s", cfg->dns.listen[i],
				dns_strerror(e));
			return -1;
		}
	}
	memset(&no, 0, sizeof(no));
	no.zone = zonepub_zone(z->zp);
	no.keys = z->keys;
	no.log = ops_zone_dns_log;
	no.log_ctx = z;
	if ((e = dns_notify_new(z->ctx->loop, &no, &z->notify)) != 0) {
		ops_log(z->ctx, OPS_LOG_ERR, "NOTIFY: %s", dns_strerror(e));
		return -1;
	}
	for (size_t i = 0; i < cfg->dns.n_notify; i++) {
		const char *key = cfg->dns.notify_key ? cfg->dns.notify_key[i] : NULL;

		if ((e = dns_notify_add_target(z->notify, cfg->dns.notify[i], key)) != 0) {
			ops_log(z->ctx, OPS_LOG_ERR, "dns.notify %s: %s", cfg->dns.notify[i],
				dns_strerror(e));
			return -1;
		}
	}
	for (size_t i = 0; i < dns_server_naddrs(z->server); i++) {
		struct sockaddr_storage ss;
		char addr[80];

		if (dns_server_addr(z->server, i, &ss) == 0) {
			dns_addr_format((struct sockaddr *)&ss, addr, sizeof(addr));
			ops_log(z->ctx, OPS_LOG_NOTICE, "DNS listener on %s (UDP and TCP)", addr);
		}
	}
	/* Secondaries may have missed serials while the daemon was down. */
	if (zone_serial(zonepub_zone(z->zp)) != 0)
		(void)dns_notify_send(z->notify);
	return 0;
}
