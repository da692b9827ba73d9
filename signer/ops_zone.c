/*
 * ops_zone.c - the registry zone inside regsignd: start-up (DNSKEYs from the
 * HSM process, parameters from the policy and the configuration, zonepub
 * loaded from the store, the DNS listener, NOTIFY), the zone requests of the
 * handlers, the zone file on demand, and the way down. See ops_zone.h.
 */
#include "signer/ops_zone.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "signer/dns_acl.h"
#include "signer/dns_notify.h"
#include "signer/dns_server.h"
#include "signer/dns_tsig.h"
#include "zonesigner/zone_file.h"

static void zone_ready(struct ops_zone *z);
static void close_all(struct ops_zone *z);

/* ---- logging ---- */

static void
zonepub_log(void *arg, int level, const char *msg)
{
	struct ops_zone *z = arg;

	ops_log(z->ctx, level, "zone: %s", msg);
}

static void
dns_log(void *arg, enum dns_log_level level, const char *msg)
{
	struct ops_zone *z = arg;
	static const int map[] = {
		[DNS_LOG_DEBUG] = OPS_LOG_DEBUG, [DNS_LOG_INFO] = OPS_LOG_INFO,
		[DNS_LOG_NOTICE] = OPS_LOG_NOTICE, [DNS_LOG_WARNING] = OPS_LOG_WARNING,
		[DNS_LOG_ERROR] = OPS_LOG_ERR,
	};

	ops_log(z->ctx, level <= DNS_LOG_ERROR ? map[level] : OPS_LOG_ERR, "dns: %s", msg);
}

/* ---- zonepub's callbacks ---- */

static void
on_published(void *arg, uint32_t serial)
{
	struct ops_zone *z = arg;

	z->notifies++;
	z->last_published = (int64_t)time(NULL);
	ops_log(z->ctx, OPS_LOG_DEBUG, "zone serial %u published", (unsigned)serial);
	if (z->notify != NULL)
		(void)dns_notify_send(z->notify);
}

static void
on_fatal(void *arg, int err)
{
	struct ops_zone *z = arg;
	char why[160];

	snprintf(why, sizeof(why), "the served zone no longer matches the store (%s)",
		 zonepub_strerror(err));
	ops_die(z->ctx, 1, why);
}

/* ---- name servers and their glue ---- */

/* True if @p name is the zone's origin or below it (both lowercase, absolute). */
static bool
in_zone(const char *name, const char *origin)
{
	size_t n = strlen(name), o = strlen(origin);

	return n == o ? strcmp(name, origin) == 0
		      : n > o && name[n - o - 1] == '.' && strcmp(name + n - o, origin) == 0;
}

/*
 * The zone's NS names from dns.nameservers (default: zonesigner's ns1.<zone>).
 * A name inside the zone needs its addresses in the zone (glue); one outside
 * must not have any here, since the zone cannot hold them.
 */
static int
nameservers_check(struct ops_zone *z)
{
	const struct config *cfg = z->ctx->cfg;
	const char *origin = z->params.origin;

	if (cfg->dns.n_nameservers == 0) {
		ops_log(z->ctx, OPS_LOG_WARNING, "dns.nameservers is not set: the zone's NS is "
			"ns1.%s without an address (secondaries warn of missing glue)", origin);
		return 0;
	}
	if ((z->ns = calloc(cfg->dns.n_nameservers, sizeof(*z->ns))) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->dns.n_nameservers; i++) {
		const struct config_nameserver *ns = &cfg->dns.nameservers[i];
		bool inside = in_zone(ns->name, origin);

		if (inside && ns->n_addresses == 0) {
			ops_log(z->ctx, OPS_LOG_ERR, "dns.nameservers: %s lies inside %s and needs "
				"its addresses (glue)", ns->name, origin);
			return -1;
		}
		if (!inside && ns->n_addresses > 0) {
			ops_log(z->ctx, OPS_LOG_ERR, "dns.nameservers: %s lies outside %s; its "
				"addresses belong in its own zone", ns->name, origin);
			return -1;
		}
		z->ns[i] = ns->name;
	}
	z->params.ns = z->ns;
	z->params.n_ns = cfg->dns.n_nameservers;
	z->params.soa_mname = z->ns[0];
	return 0;
}

/* A change that brings NS and glue in line with the configuration. */
struct ns_fix {
	struct zonepub_req zr;
	struct ops_zone *z;
	struct zonepub_op *ops;
	ldns_rr **rrs;
	size_t n, cap;
};

static void
ns_fix_free(struct ns_fix *f)
{
	for (size_t i = 0; i < f->n; i++)
		ldns_rr_free(f->rrs[i]);
	free(f->rrs);
	free(f->ops);
	free(f);
}

static int
ns_fix_push(struct ns_fix *f, enum zonepub_op_kind kind, const char *text)
{
	ldns_rr *rr = NULL;

	if (f->n == f->cap) {
		size_t cap = f->cap ? 2 * f->cap : 8;
		ldns_rr **rrs = realloc(f->rrs, cap * sizeof(*rrs));
		struct zonepub_op *ops;

		if (rrs == NULL)
			return -1;
		f->rrs = rrs;
		if ((ops = realloc(f->ops, cap * sizeof(*ops))) == NULL)
			return -1;
		f->ops = ops;
		f->cap = cap;
	}
	if (ldns_rr_new_frm_str(&rr, text, 0, NULL, NULL) != LDNS_STATUS_OK)
		return -1;
	memset(&f->ops[f->n], 0, sizeof(f->ops[f->n]));
	f->ops[f->n].kind = kind;
	f->ops[f->n].rr = rr;
	f->rrs[f->n++] = rr;
	return 0;
}

/* The RDATA of every RR of @p type at @p owner, as presentation strings (lowercase). */
static char **
present_rdata(const struct zone *served, const char *owner, ldns_rr_type type, size_t *n)
{
	ldns_rr_list *l = NULL;
	char **v = NULL;

	*n = 0;
	if (zone_serial(served) == 0 || zone_name_rrs(served, owner, &l) != 0)
		return NULL;
	v = calloc(ldns_rr_list_rr_count(l) + 1, sizeof(*v));
	for (size_t i = 0; v && i < ldns_rr_list_rr_count(l); i++) {
		ldns_rr *rr = ldns_rr_list_rr(l, i);

		if (ldns_rr_get_type(rr) != type || ldns_rr_rd_count(rr) < 1)
			continue;
		if ((v[*n] = ldns_rdf2str(ldns_rr_rdf(rr, 0))) == NULL)
			break;
		for (char *p = v[*n]; *p; p++)
			if (*p >= 'A' && *p <= 'Z')
				*p = (char)(*p - 'A' + 'a');
		(*n)++;
	}
	ldns_rr_list_deep_free(l);
	return v;
}

static bool
str_in(char *const *v, size_t n, const char *s)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], s) == 0)
			return true;
	return false;
}

static void
strv_free(char **v, size_t n)
{
	for (size_t i = 0; v && i < n; i++)
		free(v[i]);
	free(v);
}

/* Adds what the configuration has and the zone lacks, and removes the rest. */
static int
ns_fix_diff(struct ns_fix *f, const char *owner, ldns_rr_type type, char *const *want,
	    size_t n_want)
{
	char **have, text[1024];
	const char *tname = type == LDNS_RR_TYPE_NS ? "NS" : type == LDNS_RR_TYPE_A ? "A" : "AAAA";
	size_t n_have;
	int r = 0;

	have = present_rdata(ops_zone_served(f->z->ctx), owner, type, &n_have);
	for (size_t i = 0; r == 0 && i < n_want; i++) {
		snprintf(text, sizeof(text), "%s %u IN %s %s", owner, (unsigned)f->z->params.ttl,
			 tname, want[i]);
		if (!str_in(have, n_have, want[i]))
			r = ns_fix_push(f, ZONEPUB_OP_RR_ADD, text);
	}
	for (size_t i = 0; r == 0 && i < n_have; i++) {
		snprintf(text, sizeof(text), "%s %u IN %s %s", owner, (unsigned)f->z->params.ttl,
			 tname, have[i]);
		if (!str_in(want, n_want, have[i]))
			r = ns_fix_push(f, ZONEPUB_OP_RR_REMOVE, text);
	}
	strv_free(have, n_have);
	return r;
}

static void
ns_fix_done(struct zonepub_req *rq, int status, uint32_t serial)
{
	struct ns_fix *f = (struct ns_fix *)rq;
	struct ops_ctx *ctx = f->z->ctx;
	char detail[128];

	if (status == 0) {
		snprintf(detail, sizeof(detail), "NS and glue from dns.nameservers: %zu change%s, "
			 "zone serial %u", f->n, f->n == 1 ? "" : "s", (unsigned)serial);
		ops_log(ctx, OPS_LOG_NOTICE, "%s", detail);
		(void)ops_event(ctx, "zone-nameservers", detail, NULL);
	} else if (status != ZONEPUB_ECLOSED) {
		ops_log(ctx, OPS_LOG_ERR, "the zone's NS and glue could not be set from "
			"dns.nameservers: %s", zonepub_strerror(status));
	}
	ns_fix_free(f);
}

/* Submits the NS/glue change if the zone differs from the configuration. */
static void
nameservers_apply(struct ops_zone *z)
{
	const struct config *cfg = z->ctx->cfg;
	struct ns_fix *f;
	int r = 0;

	if (cfg->dns.n_nameservers == 0)
		return;
	if ((f = calloc(1, sizeof(*f))) == NULL)
		goto fail;
	f->z = z;
	/* A fresh zone gets its NS from the parameters when its apex is made. */
	if (zone_serial(ops_zone_served(z->ctx)) != 0)
		r = ns_fix_diff(f, z->params.origin, LDNS_RR_TYPE_NS, (char *const *)z->ns,
				cfg->dns.n_nameservers);
	for (size_t i = 0; r == 0 && i < cfg->dns.n_nameservers; i++) {
		const struct config_nameserver *ns = &cfg->dns.nameservers[i];
		char *v4[16], *v6[16];
		size_t n4 = 0, n6 = 0;

		if (ns->n_addresses == 0)
			continue;
		for (size_t k = 0; k < ns->n_addresses && k < 16; k++) {
			if (strchr(ns->addresses[k], ':'))
				v6[n6++] = ns->addresses[k];
			else
				v4[n4++] = ns->addresses[k];
		}
		r = ns_fix_diff(f, ns->name, LDNS_RR_TYPE_A, v4, n4);
		if (r == 0)
			r = ns_fix_diff(f, ns->name, LDNS_RR_TYPE_AAAA, v6, n6);
	}
	if (r != 0)
		goto fail;
	if (f->n == 0) {
		ns_fix_free(f);
		return;
	}
	f->zr.ops = f->ops;
	f->zr.n_ops = f->n;
	f->zr.done = ns_fix_done;
	zonepub_submit(z->zp, &f->zr);
	return;
fail:
	if (f)
		ns_fix_free(f);
	ops_log(z->ctx, OPS_LOG_ERR, "cannot prepare the zone's NS and glue from dns.nameservers");
}

/* ---- the listener and NOTIFY ---- */

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

static int
listener_start(struct ops_zone *z)
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
	so.log = dns_log;
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
	no.log = dns_log;
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

/* ---- start-up ---- */

static void
opened(void *arg, int status)
{
	struct ops_zone *z = arg;

	if (z->closing)
		return;
	if (status != 0) {
		ops_log(z->ctx, OPS_LOG_ERR, "the zone cannot be loaded from %s: %s",
			z->ctx->cfg->state.database, zonepub_strerror(status));
		z->started(z->ctx, -1);
		return;
	}
	z->open = true;
	if (listener_start(z) != 0) {
		z->started(z->ctx, -1);
		return;
	}
	ops_log(z->ctx, OPS_LOG_NOTICE, "zone %s loaded at serial %u (%zu names)",
		z->params.origin, (unsigned)zone_serial(zonepub_zone(z->zp)),
		zone_names(zonepub_zone(z->zp)));
	nameservers_apply(z);
	z->started(z->ctx, 0);
}

static void
keys_done(struct ops_zone *z)
{
	if (--z->pending_keys > 0)
		return;
	if (z->closing) {
		close_all(z);
		return;
	}
	if (z->keys_status != 0) {
		z->started(z->ctx, -1);
		return;
	}
	zone_ready(z);
}

static void
registry_keys_cb(void *arg, int status, const struct zone_dnskey *ksk,
		 const struct zone_dnskey *zsk)
{
	struct ops_zone *z = arg;

	if (status != 0) {
		ops_log(z->ctx, OPS_LOG_ERR, "the HSM process gave no KSK/ZSK public key: %s (%s)",
			zonepub_strerror(status), z->hsm.last_reason);
		z->keys_status = -1;
	} else {
		z->params.ksk = *ksk;
		z->params.zsk = *zsk;
	}
	keys_done(z);
}

struct extra_ask {
	struct ops_zone *z;
	struct ops_extra_key *k;
};

static void
extra_key_cb(void *arg, const struct hsmlink_result *res)
{
	struct extra_ask *a = arg;
	struct ops_extra_key *k = a->k;
	uint16_t flags = strstr(k->role, "/ksk") ? ZONE_DNSKEY_FLAGS_KSK : ZONE_DNSKEY_FLAGS_ZSK;

	if (res->status == HSMPROTO_ST_OK &&
	    zone_dnskey_from_spki(res->value, res->value_len, flags, &k->key) == 0)
		k->have = true;
	else
		ops_log(a->z->ctx, OPS_LOG_WARNING, "no public key for role %s (%s): SIGN_RRSET "
			"with it is refused", k->role, res->reason ? res->reason : "not EC P-256");
	keys_done(a->z);
	free(a);
}

static int
extra_keys_ask(struct ops_zone *z)
{
	const struct config *cfg = z->ctx->cfg;

	if (cfg->n_extra_zones == 0)
		return 0;
	if ((z->extra = calloc(2 * cfg->n_extra_zones, sizeof(*z->extra))) == NULL)
		return -1;
	for (size_t i = 0; i < cfg->n_extra_zones; i++) {
		for (int ksk = 1; ksk >= 0; ksk--) {
			struct ops_extra_key *k = &z->extra[z->n_extra];
			struct extra_ask *a;

			if (ksk && cfg->extra_zones[i].ksk == NULL)
				continue;
			snprintf(k->role, sizeof(k->role), "%s/%s", cfg->extra_zones[i].name,
				 ksk ? "ksk" : "zsk");
			z->n_extra++;
			if ((a = calloc(1, sizeof(*a))) == NULL)
				return -1;
			a->z = z;
			a->k = k;
			z->pending_keys++;
			if (hsmlink_pubkey(z->ctx->hsm, k->role, extra_key_cb, a) != HSMLINK_OK) {
				z->pending_keys--;
				free(a);
				return -1;
			}
		}
	}
	return 0;
}

/* Both registry keys are known: the zone's parameters, then zonepub. */
static void
zone_ready(struct ops_zone *z)
{
	struct ops_ctx *ctx = z->ctx;
	const struct policy_zone *pz = policy_zone(ctx->policy->pol);
	struct zone_params p = z->params;
	struct zonepub_opts o;
	int e;

	if (zonepub_params_from_policy(pz, &z->params) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "the policy's zone settings do not fit the zone");
		z->started(ctx, -1);
		return;
	}
	z->params.ksk = p.ksk;
	z->params.zsk = p.zsk;
	z->params.ca_der = ctx->chain_der[0];
	z->params.ca_len = ctx->chain_len[0];
	z->styles = zonepub_styles_from_policy(pz);
	if (nameservers_check(z) != 0) {
		z->started(ctx, -1);
		return;
	}
	memset(&o, 0, sizeof(o));
	o.params = &z->params;
	o.signer = zonepub_hsm_signer(&z->hsm);
	o.zone_file = ctx->cfg->state.zone_file;
	o.zone_file_interval = ctx->cfg->state.zone_file_interval;
	o.published = on_published;
	o.fatal = on_fatal;
	o.log = zonepub_log;
	o.arg = z;
	if ((e = zonepub_new(ctx->loop, &o, &z->zp)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "zone %s: %s", z->params.origin, zonepub_strerror(e));
		z->started(ctx, -1);
		return;
	}
	if ((e = zonepub_open(z->zp, ctx->writer.st, ctx->commit, opened, z)) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "zone %s: %s", z->params.origin, zonepub_strerror(e));
		z->started(ctx, -1);
	}
}

int
ops_zone_start(struct ops_ctx *ctx, void (*started)(struct ops_ctx *ctx, int status))
{
	struct ops_zone *z = calloc(1, sizeof(*z));

	if (z == NULL)
		return -1;
	z->ctx = ctx;
	z->started = started;
	ctx->zone = z;
	zonepub_hsm_init(&z->hsm, ctx->hsm);
	z->pending_keys = 1;
	if (zonepub_hsm_keys(&z->hsm, registry_keys_cb, z) != 0) {
		ops_log(ctx, OPS_LOG_ERR, "cannot ask the HSM process for the zone's keys");
		z->pending_keys = 0;
		return -1;
	}
	if (extra_keys_ask(z) != 0) {
		/* The answers on their way still arrive; they then find the failure. */
		ops_log(ctx, OPS_LOG_ERR, "cannot ask the HSM process for the extra zones' keys");
		z->keys_status = -1;
	}
	return 0;
}

/* ---- requests ---- */

static int
zreq_store(struct zonepub_req *rq, void *env)
{
	struct ops_zreq *q = (struct ops_zreq *)rq;

	return q->store ? q->store(q->r, env, rq->serial) : COMMIT_OK;
}

static void
zreq_done(struct zonepub_req *rq, int status, uint32_t serial)
{
	struct ops_zreq *q = (struct ops_zreq *)rq;

	q->done(q->r, status, serial);
}

void
ops_zone_submit(struct ops_ctx *ctx, struct ops_zreq *q)
{
	if (q->zr.ops == NULL)
		q->zr.ops = q->ops;
	q->zr.store_run = zreq_store;
	q->zr.store_undo = NULL;
	q->zr.done = zreq_done;
	if (ctx->zone == NULL || !ctx->zone->open || ctx->zone->closing) {
		q->done(q->r, ZONEPUB_ESTATE, ops_zone_serial(ctx));
		return;
	}
	zonepub_submit(ctx->zone->zp, &q->zr);
}

uint32_t
ops_zone_wire_code(int zerr)
{
	switch (zerr) {
	case ZONEPUB_EINVAL: return PROTO_CODE_BAD_REQUEST;
	case ZONEPUB_EEXIST: return PROTO_CODE_CONFLICT;
	case ZONEPUB_ENOENT: return PROTO_CODE_NOT_FOUND;
	case ZONEPUB_ERESERVED: return PROTO_CODE_DENIED;
	case ZONEPUB_ESIGN: return PROTO_CODE_UNAVAILABLE;
	case ZONEPUB_ESTORE: return PROTO_CODE_STORAGE;
	case ZONEPUB_ECLOSED: return PROTO_CODE_BUSY;
	case ZONEPUB_ESTATE: return PROTO_CODE_UNAVAILABLE;
	default: return PROTO_CODE_INTERNAL;
	}
}

uint32_t
ops_zone_serial(const struct ops_ctx *ctx)
{
	const struct zone *z = ops_zone_served(ctx);

	return z ? zone_serial(z) : 0;
}

const struct zone *
ops_zone_served(const struct ops_ctx *ctx)
{
	return ctx->zone && ctx->zone->open ? zonepub_zone(ctx->zone->zp) : NULL;
}

const struct zone_dnskey *
ops_zone_extra_key(const struct ops_ctx *ctx, const char *role)
{
	for (size_t i = 0; ctx->zone && i < ctx->zone->n_extra; i++)
		if (ctx->zone->extra[i].have && strcmp(ctx->zone->extra[i].role, role) == 0)
			return &ctx->zone->extra[i].key;
	return NULL;
}

/* ---- the zone file on demand ---- */

static void
file_written(void *arg, int status, uint32_t serial)
{
	struct ops_zone *z = arg;

	if (status == 0)
		ops_log(z->ctx, OPS_LOG_NOTICE, "zone file %s written at serial %u",
			z->ctx->cfg->state.zone_file, (unsigned)serial);
	else
		ops_log(z->ctx, OPS_LOG_ERR, "zone file %s not written: %s",
			z->ctx->cfg->state.zone_file, zonepub_strerror(status));
	if (z->closing)
		close_all(z);
}

void
ops_zone_sigusr1(uv_signal_t *h, int signum)
{
	struct ops_ctx *ctx = h->data;
	int e;

	(void)signum;
	if (ctx->zone == NULL || !ctx->zone->open || ctx->zone->closing)
		return;
	if ((e = zonepub_zone_file_write(ctx->zone->zp, file_written, ctx->zone)) != 0)
		ops_log(ctx, OPS_LOG_ERR, "SIGUSR1: zone file: %s", zonepub_strerror(e));
}

/* ---- the way down ---- */

static void
one_closed(void *arg)
{
	struct ops_zone *z = arg;

	if (--z->closes == 0 && z->closed)
		z->closed(z->ctx);
}

static void
close_all(struct ops_zone *z)
{
	/* Answers to requests for public keys still come; close after them. */
	if (z->pending_keys > 0 || z->closes > 0)
		return;
	z->closes = 1; /* held until every close is started */
	if (z->zp) {
		z->closes++;
		zonepub_close(z->zp, one_closed, z);
	}
	if (z->server) {
		z->closes++;
		dns_server_close(z->server, one_closed, z);
	}
	if (z->notify) {
		z->closes++;
		dns_notify_close(z->notify, one_closed, z);
	}
	one_closed(z);
}

void
ops_zone_close(struct ops_ctx *ctx, void (*closed)(struct ops_ctx *ctx))
{
	struct ops_zone *z = ctx->zone;
	struct zonepub_status st;

	if (z == NULL) {
		closed(ctx);
		return;
	}
	if (z->closing)
		return;
	z->closing = true;
	z->closed = closed;
	if (z->open && ctx->cfg->state.zone_file) {
		/* The zone file reflects the last serial when the daemon stops. */
		zonepub_status_get(z->zp, &st);
		if (st.serial != 0 && st.zone_file_serial != st.serial &&
		    zonepub_zone_file_write(z->zp, file_written, z) == 0)
			return;
	}
	close_all(z);
}

void
ops_zone_free(struct ops_ctx *ctx)
{
	struct ops_zone *z = ctx->zone;

	if (z == NULL)
		return;
	zonepub_free(z->zp);
	dns_server_free(z->server);
	dns_notify_free(z->notify);
	dns_acl_free(z->acl);
	dns_keyring_free(z->keys);
	free(z->extra);
	free(z->ns);
	free(z);
	ctx->zone = NULL;
}
