/*
 * The zone object: parameters, the device name scheme, the apex RRsets,
 * status, and the persistence paths (export and load without re-signing).
 */
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_time.h"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


void zone_params_init(struct zone_params *p)
{
	memset(p, 0, sizeof(*p));
	p->origin = "iotregistry.test.";
	p->soa_refresh = 3600;
	p->soa_retry = 900;
	p->soa_expire = 1209600;
	p->soa_minimum = 300;
	p->ttl = 3600;
	p->device_ttl = 300;
	p->device_validity = 6 * 3600;
	p->device_refresh = 3 * 3600;
	p->validity = 14 * 86400;
	p->refresh = 5 * 86400;
	p->inception_offset = 3600;
	p->dance_prefix = "_device";
	p->serial_policy = ZONE_SERIAL_INCREMENT;
	p->initial_serial = 1;
	p->verify = true;
}

/* Parse an absolute name (relative ones are taken below the origin when
 * @p origin is given) into lowercase wire form. */
static int name_wire(const char *s, const char *origin, uint8_t *out, size_t *outlen)
{
	int r = ZONE_EINVAL;
	ldns_rdf *d = NULL, *o = NULL;

	if (s == NULL)
		goto out;
	d = ldns_dname_new_frm_str(s);
	if (d == NULL)
		goto out;
	if (!ldns_dname_str_absolute(s)) {
		if (origin == NULL || (o = ldns_dname_new_frm_str(origin)) == NULL ||
		    ldns_dname_cat(d, o) != LDNS_STATUS_OK)
			goto out;
	}
	if (ldns_rdf_size(d) > ZONE_WIRE_MAX)
		goto out;
	ldns_dname2canonical(d);
	memcpy(out, ldns_rdf_data(d), ldns_rdf_size(d));
	*outlen = ldns_rdf_size(d);
	r = 0;
out:
	ldns_rdf_deep_free(d);
	ldns_rdf_deep_free(o);
	return r;
}

static int params_ok(const struct zone_params *p)
{
	if (p->origin == NULL || !ldns_dname_str_absolute(p->origin))
		return 0;
	if (p->device_refresh >= p->device_validity || p->refresh >= p->validity)
		return 0;
	/* Lifetimes stay far below 2^31 s so serial comparisons are exact. */
	if (p->validity > 0x10000000u || p->device_validity > 0x10000000u ||
	    p->inception_offset > 0x1000000u)
		return 0;
	if (p->ksk.flags != ZONE_DNSKEY_FLAGS_KSK || p->zsk.flags != ZONE_DNSKEY_FLAGS_ZSK)
		return 0;
	if (p->ksk.key_tag == p->zsk.key_tag)
		return 0;  /* tags must tell the keys apart in the HSM's checks */
	if (p->dance_prefix == NULL || strlen(p->dance_prefix) == 0 ||
	    strlen(p->dance_prefix) > 63 || strchr(p->dance_prefix, '.') != NULL)
		return 0;
	if (p->ca_der != NULL && (p->ca_len == 0 || p->ca_len > 60000))
		return 0;
	return 1;
}

int zone_new(const struct zone_params *p, struct zone **out)
{
	int r = ZONE_EINVAL;
	struct zone *z = NULL;
	size_t n_ns;

	if (p == NULL || out == NULL || !params_ok(p))
		goto out;
	r = ZONE_ENOMEM;
	z = calloc(1, sizeof(*z));
	if (z == NULL)
		goto out;
	r = ZONE_EINVAL;
	if (name_wire(p->origin, NULL, z->apex, &z->apexlen) != 0)
		goto out;
	r = ZONE_ENOMEM;
	z->origin = strdup(p->origin);
	if (z->origin == NULL)
		goto out;
	for (char *c = z->origin; *c; c++)
		if (*c >= 'A' && *c <= 'Z')
			*c = (char)(*c + 32);
	for (size_t i = 0; z->apex[i] != 0; i += 1 + z->apex[i])
		z->apex_labels++;
	r = ZONE_EINVAL;
	if (name_wire(p->soa_mname ? p->soa_mname : "ns1", z->origin, z->soa_mname,
		      &z->soa_mname_len) != 0 ||
	    name_wire(p->soa_rname ? p->soa_rname : "hostmaster", z->origin, z->soa_rname,
		      &z->soa_rname_len) != 0)
		goto out;
	n_ns = p->ns ? p->n_ns : 1;
	if (n_ns == 0 || n_ns > 64)
		goto out;
	r = ZONE_ENOMEM;
	z->ns = calloc(n_ns, sizeof(*z->ns));
	z->ns_len = calloc(n_ns, sizeof(*z->ns_len));
	if (z->ns == NULL || z->ns_len == NULL)
		goto out;
	r = ZONE_EINVAL;
	for (size_t i = 0; i < n_ns; i++)
		if (name_wire(p->ns ? p->ns[i] : "ns1", z->origin, z->ns[i], &z->ns_len[i]) != 0)
			goto out;
	z->n_ns = n_ns;
	z->soa_refresh = p->soa_refresh;
	z->soa_retry = p->soa_retry;
	z->soa_expire = p->soa_expire;
	z->soa_minimum = p->soa_minimum;
	z->ttl = p->ttl;
	z->device_ttl = p->device_ttl;
	z->nsec_ttl = p->soa_minimum < p->ttl ? p->soa_minimum : p->ttl;
	z->device_validity = p->device_validity;
	z->device_refresh = p->device_refresh;
	z->validity = p->validity;
	z->refresh = p->refresh;
	z->inception_offset = p->inception_offset;
	z->dance_prefix_len = strlen(p->dance_prefix);
	for (size_t i = 0; i < z->dance_prefix_len; i++) {
		char c = p->dance_prefix[i];
		z->dance_prefix[i] = (uint8_t)((c >= 'A' && c <= 'Z') ? c + 32 : c);
	}
	z->serial_policy = p->serial_policy;
	z->initial_serial = p->initial_serial ? p->initial_serial : 1;
	z->ksk = p->ksk;
	z->zsk = p->zsk;
	z->verify = p->verify;
	z->verify_all = p->verify_all;
	z->tree.refresh_device = p->device_refresh;
	z->tree.refresh_other = p->refresh;
	r = ZONE_ENOMEM;
	if (p->ca_der != NULL) {
		z->ca_der = malloc(p->ca_len);
		if (z->ca_der == NULL)
			goto out;
		memcpy(z->ca_der, p->ca_der, p->ca_len);
		z->ca_len = p->ca_len;
	}
	z->ksk_pkey = zone_sign_pkey(&z->ksk);
	z->zsk_pkey = zone_sign_pkey(&z->zsk);
	r = ZONE_EKEY;
	if (z->ksk_pkey == NULL || z->zsk_pkey == NULL)
		goto out;
	z->ksk_vctx = zone_sign_verify_ctx(z->ksk_pkey);
	z->zsk_vctx = zone_sign_verify_ctx(z->zsk_pkey);
	z->sha256 = EVP_MD_fetch(NULL, "SHA256", NULL);
	if (z->ksk_vctx == NULL || z->zsk_vctx == NULL || z->sha256 == NULL)
		goto out;
	*out = z;
	z = NULL;
	r = 0;
out:
	zone_free(z);
	return r;
}

void zone_free(struct zone *z)
{
	struct zone_tree_iter it;
	struct zone_node *n, *prev = NULL;

	if (z == NULL)
		return;
	/* The iterator reads a node's right link after returning it, so free
	 * one step behind. */
	zone_tree_iter_init(&it, &z->tree);
	while ((n = zone_tree_iter_next(&it)) != NULL) {
		zone_node_free(prev);
		prev = n;
	}
	zone_node_free(prev);
	for (n = z->loadhead; n != NULL; n = prev) {
		prev = n->right;
		zone_node_free(n);
	}
	zone_slabs_free(&z->tree.slabs);
	EVP_PKEY_CTX_free(z->ksk_vctx);
	EVP_PKEY_CTX_free(z->zsk_vctx);
	EVP_MD_free(z->sha256);
	EVP_PKEY_free(z->ksk_pkey);
	EVP_PKEY_free(z->zsk_pkey);
	free(z->ca_der);
	free(z->ns);
	free(z->ns_len);
	free(z->origin);
	free(z);
}

uint32_t zone_serial(const struct zone *z)
{
	return z->serial;
}

const char *zone_origin(const struct zone *z)
{
	return z->origin;
}

int zone_swap_names(struct zone *a, struct zone *b)
{
	struct zone_tree t;
	enum zone_state st;
	uint32_t serial;

	if (a->change_open || b->change_open || a->state == ZONE_STATE_LOADING ||
	    b->state == ZONE_STATE_LOADING || a->apexlen != b->apexlen ||
	    memcmp(a->apex, b->apex, a->apexlen) != 0 ||
	    memcmp(&a->ksk, &b->ksk, sizeof(a->ksk)) != 0 ||
	    memcmp(&a->zsk, &b->zsk, sizeof(a->zsk)) != 0 || a->tree.refresh_device != b->tree.refresh_device ||
	    a->tree.refresh_other != b->tree.refresh_other)
		return ZONE_ESTATE;
	/* The subtree due times depend on the refresh periods, which agree. */
	t = a->tree;
	a->tree = b->tree;
	b->tree = t;
	st = a->state;
	a->state = b->state;
	b->state = st;
	serial = a->serial;
	a->serial = b->serial;
	b->serial = serial;
	return 0;
}

size_t zone_names(const struct zone *z)
{
	/* During a load, the names collected but not yet in the tree count too. */
	return z->tree.count + z->loadn;
}

void zone_status_get(const struct zone *z, int64_t now, struct zone_status *st)
{
	struct zone_tree_iter it;
	struct zone_node *n;

	memset(st, 0, sizeof(*st));
	st->serial = z->serial;
	st->names = z->tree.count;
	zone_tree_iter_init(&it, &z->tree);
	/* Slab nodes count through their slabs (dead space included: it is
	 * heap the zone holds). */
	while ((n = zone_tree_iter_next(&it)) != NULL)
		if (!(n->flags & ZONE_NODE_IN_SLAB))
			st->bytes += zone_node_bytes(n);
	st->bytes += zone_slabs_bytes(&z->tree.slabs);
	if (z->tree.root != NULL) {
		st->next_due = zone_time64(z->tree.root->subdue, now);
		st->earliest_expiration = zone_time64(z->tree.root->subexp, now);
		st->resign_overdue = zone_serial_le(z->tree.root->subdue, zone_time32(now));
	}
}

int zone_edit_add_rd(struct zone_edit *e, uint16_t type, uint32_t ttl, uint8_t flags,
		  const uint8_t *rd, size_t len)
{
	int err = 0;
	struct zone_eset *s = zone_edit_set(e, type, true, ttl, flags, &err);

	if (s == NULL)
		return err ? err : ZONE_ENOMEM;
	s->dirty = true;
	err = zone_eset_add(s, rd, len);
	return err < 0 ? err : 0;
}

int zone_apex_edit(const struct zone *z, uint32_t serial, struct zone_edit *e)
{
	uint8_t rd[2 * ZONE_WIRE_MAX + 20];
	size_t p = 0;
	int r;

	memcpy(rd, z->soa_mname, z->soa_mname_len);
	p = z->soa_mname_len;
	memcpy(rd + p, z->soa_rname, z->soa_rname_len);
	p += z->soa_rname_len;
	zone_put32(rd + p, serial);
	zone_put32(rd + p + 4, z->soa_refresh);
	zone_put32(rd + p + 8, z->soa_retry);
	zone_put32(rd + p + 12, z->soa_expire);
	zone_put32(rd + p + 16, z->soa_minimum);
	r = zone_edit_add_rd(e, ZONE_RRTYPE_SOA, z->ttl, 0, rd, p + 20);
	for (size_t i = 0; r == 0 && i < z->n_ns; i++)
		r = zone_edit_add_rd(e, ZONE_RRTYPE_NS, z->ttl, 0, z->ns[i], z->ns_len[i]);
	if (r == 0) {
		zone_dnskey_rdata(&z->ksk, rd);
		r = zone_edit_add_rd(e, ZONE_RRTYPE_DNSKEY, z->ttl, 0, rd, ZONE_DNSKEY_RDATA_LEN);
	}
	if (r == 0) {
		zone_dnskey_rdata(&z->zsk, rd);
		r = zone_edit_add_rd(e, ZONE_RRTYPE_DNSKEY, z->ttl, 0, rd, ZONE_DNSKEY_RDATA_LEN);
	}
	if (r == 0 && z->ca_der != NULL) {
		uint8_t *cert = malloc(5 + z->ca_len);
		if (cert == NULL)
			return ZONE_ENOMEM;
		/* CERT type 1 (PKIX), key tag 0, algorithm 0: RFC 4398 form. */
		memcpy(cert, "\x00\x01\x00\x00\x00", 5);
		memcpy(cert + 5, z->ca_der, z->ca_len);
		r = zone_edit_add_rd(e, ZONE_RRTYPE_CERT, z->ttl, 0, cert, 5 + z->ca_len);
		free(cert);
	}
	return r;
}
