/*
 * The structural self-check. A commit runs it on the names it touched and
 * their neighbours before the new serial is published; a load runs it on
 * everything. With verification on, every signature checked is also
 * verified against the zone's DNSKEYs, NSEC included: because the NSEC next
 * name and bitmap are derived from the tree, a stale NSEC signature shows up
 * as a verification failure. zone_verify_slice() applies the same rules with
 * verification to a bounded run of names at a time, for the daemon's
 * background pass over the whole zone.
 */
#include "zonesigner/zone_internal.h"
#include "zonesigner/zone_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int check_set(const struct zone *z, const struct zone_node *n, const uint8_t *owner,
		     size_t ownerlen, int labels, const struct zone_rrset *s,
		     const uint8_t *nextkey, size_t nextlen, int64_t now, bool verify,
		     bool expired_ok)
{
	struct zone_sig sig;
	enum zone_key_role role;
	uint16_t tag;
	uint32_t now32 = zone_time32(now);
	uint8_t nsec[ZONE_NSEC_MAX + 2];
	size_t nlen;
	struct zone_rrview v = { s->type, s->ttl, s->nrr, s->rrs, s->rrslen };
	uint8_t *data = NULL;
	size_t dlen;
	int ok;

	zone_sig_get(s->sig, &sig);
	zone_sign_key_for(z, s->type, &role, &tag);
	if (sig.key_tag != tag)
		return ZONE_ECHECK;
	if (!zone_serial_lt(sig.inception, sig.expiration))
		return ZONE_ECHECK;
	if (!expired_ok &&
	    (!zone_serial_le(sig.inception, now32) || !zone_serial_lt(now32, sig.expiration)))
		return ZONE_ECHECK;
	if (zone_set_flags(zone_node_key(n), n->keylen, s->type) != s->flags)
		return ZONE_ECHECK;
	if (s->type == ZONE_RRTYPE_NSEC && s->ttl != z->nsec_ttl)
		return ZONE_ECHECK;
	if (!verify)
		return 0;
	if (s->type == ZONE_RRTYPE_NSEC) {
		if (zone_nsec_rdata(z, n, nextkey, nextlen, nsec + 2, &nlen) != 0)
			return ZONE_ECHECK;
		zone_put16(nsec, (uint16_t)nlen);
		v.nrr = 1;
		v.rrs = nsec;
		v.rrslen = nlen + 2;
	}
	if (zone_sign_data(z, owner, ownerlen, labels, &v, sig.inception, sig.expiration,
			   sig.key_tag, &data, &dlen) != 0)
		return ZONE_ECHECK;
	ok = zone_sign_verify(z, sig.key_tag, data, dlen, sig.rs);
	free(data);
	return ok ? 0 : ZONE_ECHECK;
}

int zone_check_node(const struct zone *z, const struct zone_node *n, const uint8_t *nextkey,
		    size_t nextlen, int64_t now, bool verify, bool expired_ok)
{
	uint8_t owner[ZONE_WIRE_MAX];
	size_t ownerlen, pos = 0;
	struct zone_rrset s;
	int labels, r;
	bool device_ns = zone_key_is_device_ns(zone_node_key(n), n->keylen);

	if (zone_node_validate(n) != 0 ||
	    zone_name_key_to_wire(zone_node_key(n), n->keylen, z->apex, z->apexlen, owner,
				  &ownerlen) != 0)
		return ZONE_ECHECK;
	labels = zone_owner_labels(z, zone_node_key(n), n->keylen);
	if (labels < 0)
		return ZONE_ECHECK;
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		/* The device namespace holds device records and nothing else. */
		if (device_ns && s.type != ZONE_RRTYPE_NSEC && !(s.flags & ZONE_SET_DEVICE))
			return ZONE_ECHECK;
		if (check_set(z, n, owner, ownerlen, labels, &s, nextkey, nextlen, now, verify,
			      expired_ok) != 0)
			return ZONE_ECHECK;
	}
	return r == 0 ? 0 : ZONE_ECHECK;
}

static int has_rdata(const struct zone_rrset *s, const uint8_t *rd, size_t len)
{
	size_t q = 0;

	for (unsigned i = 0; i < s->nrr; i++) {
		size_t l = zone_get16(s->rrs + q);
		if (l == len && memcmp(s->rrs + q + 2, rd, len) == 0)
			return 1;
		q += 2 + l;
	}
	return 0;
}

int zone_check_apex(const struct zone *z, const struct zone_node *apex)
{
	struct zone_rrset s;
	uint8_t rd[ZONE_DNSKEY_RDATA_LEN];

	if (apex == NULL || apex->keylen != 0)
		return ZONE_ECHECK;
	if (zone_node_rrset_find(apex, ZONE_RRTYPE_SOA, &s) != 1 || s.nrr != 1)
		return ZONE_ECHECK;
	if (zone_node_rrset_find(apex, ZONE_RRTYPE_NS, &s) != 1)
		return ZONE_ECHECK;
	if (zone_node_rrset_find(apex, ZONE_RRTYPE_DNSKEY, &s) != 1)
		return ZONE_ECHECK;
	zone_dnskey_rdata(&z->ksk, rd);
	if (!has_rdata(&s, rd, sizeof(rd)))
		return ZONE_ECHECK;
	zone_dnskey_rdata(&z->zsk, rd);
	if (!has_rdata(&s, rd, sizeof(rd)))
		return ZONE_ECHECK;
	return 0;
}

int zone_check_all(const struct zone *z, int64_t now, bool verify, bool expired_ok)
{
	struct zone_tree_iter it;
	const struct zone_node *n, *next, *first = zone_tree_first(&z->tree);
	size_t count = 0;

	if (z->state != ZONE_STATE_READY || zone_check_apex(z, first) != 0)
		return ZONE_ECHECK;
	zone_tree_iter_init(&it, &z->tree);
	n = zone_tree_iter_next(&it);
	while (n != NULL) {
		next = zone_tree_iter_next(&it);
		const struct zone_node *nx = next ? next : first;
		if (next != NULL && zone_name_key_cmp(zone_node_key(n), n->keylen,
						      zone_node_key(next), next->keylen) >= 0)
			return ZONE_ECHECK;
		if (zone_check_node(z, n, zone_node_key(nx), nx->keylen, now, verify,
				    expired_ok) != 0)
			return ZONE_ECHECK;
		count++;
		n = next;
	}
	return count == z->tree.count ? 0 : ZONE_ECHECK;
}

/*
 * The structural check of a node that zone_load_name() already validated
 * (zone_node_validate, canonical key): the same rules as zone_check_node()
 * without verification, with the key walked once for all its RRsets.
 */
static int check_loaded_node(const struct zone *z, const struct zone_node *n)
{
	const uint8_t *key = zone_node_key(n);
	bool device_ns = zone_key_is_device_ns(key, n->keylen);
	int labels = zone_name_key_labels(key, n->keylen);
	size_t pos = 0;
	struct zone_rrset s;
	struct zone_sig sig;
	int r;

	if (labels < 0)
		return ZONE_ECHECK;
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		enum zone_key_role role;
		uint16_t tag;
		/* As zone_set_flags(): device lifetime for CERT and TLSA below a
		 * device-namespace label. */
		uint8_t flags = (s.type == ZONE_RRTYPE_CERT || s.type == ZONE_RRTYPE_TLSA) &&
						labels >= 2 && device_ns
					? ZONE_SET_DEVICE
					: 0;

		if (device_ns && s.type != ZONE_RRTYPE_NSEC && !(s.flags & ZONE_SET_DEVICE))
			return ZONE_ECHECK;
		zone_sig_get(s.sig, &sig);
		zone_sign_key_for(z, s.type, &role, &tag);
		if (sig.key_tag != tag || !zone_serial_lt(sig.inception, sig.expiration) ||
		    s.flags != flags || (s.type == ZONE_RRTYPE_NSEC && s.ttl != z->nsec_ttl))
			return ZONE_ECHECK;
	}
	return r == 0 ? 0 : ZONE_ECHECK;
}

int zone_check_loaded(const struct zone *z, int64_t now, bool verify)
{
	struct zone_tree_iter it;
	const struct zone_node *n, *prev = NULL;
	size_t count = 0;

	if (verify)
		return zone_check_all(z, now, true, true);
	if (z->state != ZONE_STATE_READY || zone_check_apex(z, zone_tree_first(&z->tree)) != 0)
		return ZONE_ECHECK;
	zone_tree_iter_init(&it, &z->tree);
	while ((n = zone_tree_iter_next(&it)) != NULL) {
		if (prev != NULL && zone_name_key_cmp(zone_node_key(prev), prev->keylen,
						      zone_node_key(n), n->keylen) >= 0)
			return ZONE_ECHECK;
		if (check_loaded_node(z, n) != 0)
			return ZONE_ECHECK;
		count++;
		prev = n;
	}
	return count == z->tree.count ? 0 : ZONE_ECHECK;
}

int zone_check(const struct zone *z, int64_t now, bool verify)
{
	return zone_check_all(z, now, verify, false);
}

/* ---- A slice of the background verification (zone_verify_slice) ---- */

/* "<owner> <TYPE>" of a failure, through ldns's presentation form. */
static void fail_text(const uint8_t *owner, size_t ownerlen, uint16_t type, char *buf,
		      size_t len)
{
	ldns_rdf *d = ldns_dname_new_frm_data(ownerlen, owner);
	char *name = d ? ldns_rdf2str(d) : NULL;
	char *t = type ? ldns_rr_type2str((ldns_rr_type)type) : NULL;

	snprintf(buf, len, "%s %s", name ? name : "?", type == 0 ? "(name)" : t ? t : "?");
	free(t);
	free(name);
	ldns_rdf_deep_free(d);
}

static void note_failure(const uint8_t *key, size_t keylen, const uint8_t *owner,
			 size_t ownerlen, uint16_t type, struct zone_verify_slice *out)
{
	if (out->failures == 0)
		fail_text(owner, ownerlen, type, out->first_failure, sizeof(out->first_failure));
	out->failures++;
	if (out->nfail < ZONE_VERIFY_FAIL_MAX && keylen <= ZONE_VERIFY_KEY_MAX) {
		struct zone_verify_fail *f = &out->fail[out->nfail++];
		memcpy(f->key, key, keylen);
		f->keylen = keylen;
		f->type = type;
	}
}

/*
 * Every RRset of one name, each verified on its own so that one bad
 * signature does not hide another. A name that cannot even be walked is one
 * failure of type 0.
 */
static void verify_node(const struct zone *z, const struct zone_node *n,
			const struct zone_node *next, int64_t now,
			struct zone_verify_slice *out)
{
	const uint8_t *key = zone_node_key(n);
	uint8_t owner[ZONE_WIRE_MAX];
	size_t ownerlen = 0, pos = 0;
	struct zone_rrset s;
	bool device_ns = zone_key_is_device_ns(key, n->keylen);
	int labels, r;

	if (zone_node_validate(n) != 0 ||
	    zone_name_key_to_wire(key, n->keylen, z->apex, z->apexlen, owner, &ownerlen) != 0 ||
	    (labels = zone_owner_labels(z, key, n->keylen)) < 0) {
		note_failure(key, n->keylen, z->apex, z->apexlen, 0, out);
		return;
	}
	while ((r = zone_node_rrset_next(n, &pos, &s)) == 1) {
		out->sigs++;
		if ((device_ns && s.type != ZONE_RRTYPE_NSEC && !(s.flags & ZONE_SET_DEVICE)) ||
		    check_set(z, n, owner, ownerlen, labels, &s, zone_node_key(next), next->keylen,
			      now, true, true) != 0)
			note_failure(key, n->keylen, owner, ownerlen, s.type, out);
	}
	if (r != 0)
		note_failure(key, n->keylen, owner, ownerlen, 0, out);
}

int zone_verify_slice(const struct zone *z, const uint8_t *from_key, size_t from_len,
		      size_t max_names, int64_t now, struct zone_verify_slice *out)
{
	const struct zone_node *n, *next, *first;

	memset(out, 0, sizeof(*out));
	if (max_names == 0 || from_len > ZONE_KEY_MAX || (from_key == NULL && from_len > 0))
		return ZONE_EINVAL;
	if (z->state != ZONE_STATE_READY || z->change_open)
		return ZONE_ESTATE;
	first = zone_tree_first(&z->tree);
	if (from_len == 0) {
		n = first;
	} else {
		n = zone_tree_find(&z->tree, from_key, from_len);
		if (n == NULL)
			n = zone_tree_succ(&z->tree, from_key, from_len);
	}
	while (n != NULL && out->names < max_names) {
		next = zone_tree_succ(&z->tree, zone_node_key(n), n->keylen);
		verify_node(z, n, next ? next : first, now, out);
		out->names++;
		n = next;
	}
	if (n == NULL) {
		out->wrapped = true;
	} else {
		memcpy(out->next_key, zone_node_key(n), n->keylen);
		out->next_len = n->keylen;
	}
	return 0;
}
