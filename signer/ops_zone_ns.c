/*
 * ops_zone_ns.c - the registry zone's NS RRset and the addresses (glue) of
 * its in-zone name servers, from dns.nameservers: checked at start (an
 * in-zone name needs addresses, an out-of-zone one has none here), given to
 * the zone's parameters (a fresh apex gets them), and on every start brought
 * in line with the configuration by one change that adds what is missing and
 * removes what is no longer listed (audited as "zone-nameservers").
 */
#include "signer/ops_zone.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zonesigner/zone_file.h"

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
int
ops_zone_ns_check(struct ops_zone *z)
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
void
ops_zone_ns_apply(struct ops_zone *z)
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
