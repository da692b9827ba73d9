/* Answers to DNS messages: queries, refusals, AXFR and IXFR (see dns_answer.h). */
#include "signer/dns_answer.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signer/dns_acl.h"
#include "signer/dns_tsig.h"
#include "signer/dns_wire.h"
#include "signer/dns_xfr.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_file.h"

#define DNS_UDP_MIN 512
#define DNS_UDP_MAX 1232       /* the DNS flag day 2020 value */

struct dns_answer {
	struct dns_answer_env env;
	ldns_pkt *q;             /* the query; NULL when it could not be parsed */
	bool tcp, edns, do_bit;
	size_t udp_max;
	ldns_pkt *single;        /* a one-message answer not yet produced */
	struct dns_xfr *xfr;     /* a transfer */
	bool done;
	/* The signer of a signed request's answer, chained from its MAC; a
	 * transfer signs its wire-form messages through its wire signer. */
	struct dns_tsig_signer *signer;
	struct dns_answer_info info;
};

/* A response skeleton: header, question, EDNS as in the query. */
static ldns_pkt *resp_new(const struct dns_answer *a, ldns_pkt_rcode rcode, bool question)
{
	ldns_pkt *p = ldns_pkt_new();

	if (p == NULL)
		return NULL;
	ldns_pkt_set_qr(p, true);
	ldns_pkt_set_rcode(p, (uint8_t)rcode);
	if (a->q != NULL) {
		ldns_pkt_set_id(p, ldns_pkt_id(a->q));
		ldns_pkt_set_opcode(p, ldns_pkt_get_opcode(a->q));
		ldns_pkt_set_rd(p, ldns_pkt_rd(a->q));
		ldns_pkt_set_cd(p, ldns_pkt_cd(a->q));
		if (question && ldns_pkt_qdcount(a->q) == 1) {
			ldns_rr *qr = ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(a->q), 0));
			if (qr == NULL || !ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, qr)) {
				ldns_rr_free(qr);
				ldns_pkt_free(p);
				return NULL;
			}
		}
	}
	if (a->edns) {
		ldns_pkt_set_edns_udp_size(p, DNS_UDP_MAX);
		ldns_pkt_set_edns_do(p, a->do_bit);
	}
	return p;
}

static int push_clone(ldns_pkt *p, ldns_pkt_section sec, const ldns_rr *rr)
{
	ldns_rr *c = ldns_rr_clone(rr);

	if (c == NULL || !ldns_pkt_push_rr(p, sec, c)) {
		ldns_rr_free(c);
		return DNS_ENOMEM;
	}
	return 0;
}

static bool covers(const ldns_rr *sig, ldns_rr_type t)
{
	return ldns_rr_get_type(sig) == LDNS_RR_TYPE_RRSIG &&
	       ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(sig)) == t;
}

/* Append the NSEC at @p owner (wire) and, with DO, its RRSIG to the
 * authority section: the proofs of a denial that is not about the name's
 * own NSEC (RFC 4035 section 3.1.3). */
static int push_nsec_at(struct dns_answer *a, ldns_pkt *p, const uint8_t *owner, size_t len)
{
	ldns_rdf *name = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, len, owner);
	ldns_rr_list *rrs = NULL;
	int r;

	if (name == NULL)
		return DNS_ENOMEM;
	if ((r = dns_zone_rrs(a->env.zone, name, &rrs)) != 0)
		goto out;
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(rrs, i);
		if ((ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC || covers(rr, LDNS_RR_TYPE_NSEC)) &&
		    (r = push_clone(p, LDNS_SECTION_AUTHORITY, rr)) != 0)
			goto out;
	}
	r = 0;
out:
	ldns_rr_list_deep_free(rrs);
	ldns_rdf_deep_free(name);
	return r;
}

/* Authority section of a negative answer: the SOA (+RRSIG) and with DO the
 * NSEC records of @p lk that prove it: for a name that owns RRsets its own
 * NSEC, for an empty non-terminal the NSEC before it, for NXDOMAIN the
 * covering NSEC and the one covering the wildcard at the closest encloser
 * (once when they are the same record). */
static int negative(struct dns_answer *a, ldns_pkt *p, const struct zone_lookup *lk)
{
	ldns_rr *soa = NULL;
	ldns_rr_list *sigs = NULL;
	uint32_t min;
	int r;

	if ((r = dns_zone_soa(a->env.zone, &soa, &sigs)) != 0)
		goto out;
	/* RFC 2308 section 3: the negative TTL is min(SOA MINIMUM, SOA TTL);
	 * the SOA and its RRSIG carry it so that caches agree on it. */
	min = ldns_rdf2native_int32(ldns_rr_rdf(soa, 6));
	if (ldns_rr_ttl(soa) < min)
		min = ldns_rr_ttl(soa);
	ldns_rr_set_ttl(soa, min);
	if ((r = push_clone(p, LDNS_SECTION_AUTHORITY, soa)) != 0)
		goto out;
	for (size_t i = 0; a->do_bit && i < ldns_rr_list_rr_count(sigs); i++) {
		ldns_rr *sig = ldns_rr_list_rr(sigs, i);
		ldns_rr_set_ttl(sig, min);
		if ((r = push_clone(p, LDNS_SECTION_AUTHORITY, sig)) != 0)
			goto out;
	}
	if (!a->do_bit || lk == NULL)
		goto done;
	if ((r = push_nsec_at(a, p, lk->nsec, lk->nsec_len)) != 0)
		goto out;
	if (lk->kind == ZONE_LOOKUP_NXDOMAIN && !lk->same &&
	    (r = push_nsec_at(a, p, lk->wildcard, lk->wildcard_len)) != 0)
		goto out;
done:
	r = 0;
out:
	ldns_rr_free(soa);
	ldns_rr_list_deep_free(sigs);
	return r;
}

/* An ordinary query for a name inside the zone. */
static int answer_query(struct dns_answer *a, const ldns_rdf *qname, ldns_rr_type qt)
{
	ldns_rr_list *rrs = NULL;
	ldns_pkt *p = NULL;
	ldns_rr_type want = qt;
	struct zone_lookup lk;
	size_t n = 0;
	int r;

	r = dns_zone_rrs(a->env.zone, qname, &rrs);
	if (r != 0)
		goto out;
	/* Which NSEC records would prove a denial, and whether the name is an
	 * empty non-terminal (NODATA) rather than absent (NXDOMAIN). */
	switch (zone_lookup_denial(a->env.zone, ldns_rdf_data(qname), ldns_rdf_size(qname), &lk)) {
	case 0:
		break;
	case ZONE_ENOMEM:
		r = DNS_ENOMEM;
		goto out;
	default:
		r = DNS_EZONE;
		goto out;
	}
	/* A CNAME answers every other type at its name (no chasing: the
	 * target is another lookup). */
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++)
		if (ldns_rr_get_type(ldns_rr_list_rr(rrs, i)) == LDNS_RR_TYPE_CNAME &&
		    qt != LDNS_RR_TYPE_CNAME && qt != LDNS_RR_TYPE_ANY)
			want = LDNS_RR_TYPE_CNAME;
	p = resp_new(a, lk.kind == ZONE_LOOKUP_NAME || lk.kind == ZONE_LOOKUP_ENT
			? LDNS_RCODE_NOERROR : LDNS_RCODE_NXDOMAIN, true);
	if (p == NULL) {
		r = DNS_ENOMEM;
		goto out;
	}
	ldns_pkt_set_aa(p, true);
	for (size_t i = 0; i < ldns_rr_list_rr_count(rrs); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(rrs, i);
		ldns_rr_type t = ldns_rr_get_type(rr);
		bool sig = t == LDNS_RR_TYPE_RRSIG;
		bool take = want == LDNS_RR_TYPE_ANY ? (!sig || a->do_bit)
			  : want == LDNS_RR_TYPE_RRSIG ? sig
			  : (t == want || (a->do_bit && covers(rr, want)));
		if (!take)
			continue;
		if ((r = push_clone(p, LDNS_SECTION_ANSWER, rr)) != 0)
			goto out;
		if (!sig)
			n++;
	}
	if (n == 0 && !(want == LDNS_RR_TYPE_RRSIG && ldns_pkt_ancount(p) > 0) &&
	    (r = negative(a, p, lk.kind == ZONE_LOOKUP_WILDCARD ? NULL : &lk)) != 0)
		goto out;
	a->info.rcode = ldns_pkt_get_rcode(p);
	a->single = p;
	p = NULL;
	r = 0;
out:
	ldns_pkt_free(p);
	ldns_rr_list_deep_free(rrs);
	return r;
}

/* A one-message answer with just a header, the question and @p rcode. */
static int answer_rcode(struct dns_answer *a, ldns_pkt_rcode rcode, enum dns_answer_kind kind)
{
	a->single = resp_new(a, rcode, true);
	if (a->single == NULL)
		return DNS_ENOMEM;
	a->info.rcode = rcode;
	a->info.kind = kind;
	return 0;
}

/* The secondary's serial from the SOA in an IXFR query's authority section. */
static bool ixfr_serial(const ldns_pkt *q, uint32_t *serial)
{
	const ldns_rr_list *auth = ldns_pkt_authority(q);

	for (size_t i = 0; i < ldns_rr_list_rr_count(auth); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(auth, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_SOA && ldns_rr_rd_count(rr) == 7) {
			*serial = ldns_rdf2native_int32(ldns_rr_rdf(rr, 2));
			return true;
		}
	}
	return false;
}

static int answer_xfr(struct dns_answer *a, const struct sockaddr *from, ldns_rr_type qt,
		      bool at_apex, const char *key)
{
	uint32_t client = 0;
	int r;

	a->info.kind = qt == LDNS_RR_TYPE_AXFR ? DNS_ANSWER_AXFR : DNS_ANSWER_IXFR;
	if (qt == LDNS_RR_TYPE_AXFR && !a->tcp)
		return answer_rcode(a, LDNS_RCODE_FORMERR, DNS_ANSWER_ERROR);
	if (qt == LDNS_RR_TYPE_IXFR && !ixfr_serial(a->q, &client))
		return answer_rcode(a, LDNS_RCODE_FORMERR, DNS_ANSWER_ERROR);
	if (!at_apex)
		return answer_rcode(a, LDNS_RCODE_NOTAUTH, DNS_ANSWER_ERROR);
	if (!dns_acl_allows(a->env.acl, from, key))
		return answer_rcode(a, LDNS_RCODE_REFUSED, DNS_ANSWER_REFUSED_XFR);
	a->info.ixfr_from = client;
	if (qt == LDNS_RR_TYPE_IXFR && !a->tcp) {
		/* RFC 1995 section 2: over UDP, the current SOA tells the client
		 * whether to come back over TCP. */
		ldns_rr *soa = NULL;
		if ((r = dns_zone_soa(a->env.zone, &soa, NULL)) != 0)
			return r;
		a->single = resp_new(a, LDNS_RCODE_NOERROR, true);
		if (a->single == NULL || !ldns_pkt_push_rr(a->single, LDNS_SECTION_ANSWER, soa)) {
			ldns_rr_free(soa);
			return DNS_ENOMEM;
		}
		ldns_pkt_set_aa(a->single, true);
		a->info.serial = zone_serial(a->env.zone);
		return 0;
	}
	if (qt == LDNS_RR_TYPE_IXFR) {
		r = dns_xfr_ixfr_new(a->env.zone, a->env.journal, client, a->env.max_diffs,
				     &a->xfr);
		if (r == DNS_ENOENT || r == DNS_ERANGE || r == DNS_EFORMAT)
			a->info.fallback = true;
		else if (r != 0)
			return r;
	}
	if (a->xfr == NULL &&
	    (r = dns_xfr_axfr_new(a->env.zone, a->env.journal, &a->xfr)) != 0)
		return r;
	a->info.serial = dns_xfr_serial(a->xfr);
	return 0;
}

/* Header-only FORMERR for a message ldns could not parse. */
static int answer_unparsed(struct dns_answer *a, const uint8_t *wire)
{
	a->single = resp_new(a, LDNS_RCODE_FORMERR, false);
	if (a->single == NULL)
		return DNS_ENOMEM;
	ldns_pkt_set_id(a->single, (uint16_t)(wire[0] << 8 | wire[1]));
	ldns_pkt_set_opcode(a->single, (ldns_pkt_opcode)((wire[2] >> 3) & 0x0f));
	a->info.kind = DNS_ANSWER_ERROR;
	a->info.rcode = LDNS_RCODE_FORMERR;
	return 0;
}

static int dispatch(struct dns_answer *a, const uint8_t *wire, size_t len,
		    const struct sockaddr *from, int64_t now)
{
	const struct dns_tsig_key *key = NULL;
	ldns_rdf *mac = NULL, *origin = NULL;
	const ldns_rr *qrr;
	const ldns_rdf *qname;
	ldns_rr_type qt;
	enum dns_tsig_status ts;
	char *s;
	int r;

	if (ldns_pkt_get_opcode(a->q) != LDNS_PACKET_QUERY)
		return answer_rcode(a, LDNS_RCODE_NOTIMPL, DNS_ANSWER_ERROR);
	if (ldns_pkt_qdcount(a->q) != 1)
		return answer_rcode(a, LDNS_RCODE_FORMERR, DNS_ANSWER_ERROR);
	qrr = ldns_rr_list_rr(ldns_pkt_question(a->q), 0);
	qname = ldns_rr_owner(qrr);
	qt = ldns_rr_get_type(qrr);
	a->info.qtype = (uint16_t)qt;
	if ((s = ldns_rdf2str(qname)) != NULL) {
		strncpy(a->info.qname, s, sizeof(a->info.qname) - 1);
		free(s);
	}
	ts = dns_tsig_verify(a->env.keys, a->q, wire, len, NULL, now, &key, &mac);
	a->info.tsig_error = ts;
	if (ts != DNS_TSIG_UNSIGNED && ts != DNS_TSIG_OK) {
		/* A TSIG RR too malformed to echo gets a bare NOTAUTH. */
		if ((r = answer_rcode(a, LDNS_RCODE_NOTAUTH, DNS_ANSWER_ERROR)) == 0 &&
		    (r = dns_tsig_error_rr(a->single, a->q, ts)) == DNS_EINVAL)
			r = 0;
		goto out;
	}
	if (ts == DNS_TSIG_OK) {
		a->info.tsig = true;
		if ((r = dns_tsig_signer_new(key, mac, &a->signer)) != 0)
			goto out;
	}
	if (ldns_rr_get_class(qrr) != LDNS_RR_CLASS_IN) {
		r = answer_rcode(a, LDNS_RCODE_REFUSED, DNS_ANSWER_QUERY);
		goto out;
	}
	if (zone_serial(a->env.zone) == 0) {
		r = answer_rcode(a, LDNS_RCODE_SERVFAIL, DNS_ANSWER_QUERY);
		goto out;
	}
	if (ldns_str2rdf_dname(&origin, zone_origin(a->env.zone)) != LDNS_STATUS_OK) {
		r = DNS_EZONE;
		goto out;
	}
	if (ldns_dname_compare(qname, origin) != 0 && !ldns_dname_is_subdomain(qname, origin)) {
		r = answer_rcode(a, LDNS_RCODE_REFUSED, DNS_ANSWER_QUERY);
		goto out;
	}
	if (qt == LDNS_RR_TYPE_AXFR || qt == LDNS_RR_TYPE_IXFR)
		r = answer_xfr(a, from, qt, ldns_dname_compare(qname, origin) == 0,
			       key ? key->name : NULL);
	else
		r = answer_query(a, qname, qt);
out:
	ldns_rdf_deep_free(mac);
	ldns_rdf_deep_free(origin);
	return r;
}

int dns_answer_new(const struct dns_answer_env *env, const uint8_t *wire, size_t len,
		   const struct sockaddr *from, bool tcp, int64_t now, struct dns_answer **out)
{
	struct dns_answer *a = NULL;
	int r = DNS_EFORMAT;

	*out = NULL;
	/* Too short for a header, or a response: answering could loop. */
	if (len < LDNS_HEADER_SIZE || (wire[2] & 0x80) != 0)
		goto out;
	a = calloc(1, sizeof(*a));
	if (a == NULL) {
		r = DNS_ENOMEM;
		goto out;
	}
	a->env = *env;
	if (a->env.msg_size == 0 || a->env.msg_size > DNS_WIRE_MAX)
		a->env.msg_size = DNS_WIRE_MAX;
	a->tcp = tcp;
	a->udp_max = DNS_UDP_MIN;
	a->info.tsig_error = DNS_TSIG_UNSIGNED;
	if (ldns_wire2pkt(&a->q, wire, len) != LDNS_STATUS_OK) {
		a->q = NULL;
		r = answer_unparsed(a, wire);
	} else {
		a->edns = ldns_pkt_edns(a->q);
		a->do_bit = a->edns && ldns_pkt_edns_do(a->q);
		if (a->edns && ldns_pkt_edns_udp_size(a->q) > DNS_UDP_MIN)
			a->udp_max = ldns_pkt_edns_udp_size(a->q) < DNS_UDP_MAX
				   ? ldns_pkt_edns_udp_size(a->q) : DNS_UDP_MAX;
		r = dispatch(a, wire, len, from, now);
	}
	if (r != 0)
		goto out;
	*out = a;
	a = NULL;
out:
	dns_answer_free(a);
	return r;
}

/* The two flag bytes of a transfer message: QR, AA, the query's opcode,
 * RD and CD, NOERROR. */
static uint16_t xfr_flags(const struct dns_answer *a)
{
	uint16_t f = 0x8000 | 0x0400;

	f |= (uint16_t)((ldns_pkt_get_opcode(a->q) & 0x0f) << 11);
	if (ldns_pkt_rd(a->q))
		f |= 0x0100;
	if (ldns_pkt_cd(a->q))
		f |= 0x0010;
	return f;
}

/*
 * The next transfer message, written in wire form (dns_wire.h): the
 * question in the first one only, RRs up to the target size less the room
 * of the OPT and TSIG RRs, then those two.
 */
static int pack_xfr(struct dns_answer *a, uint8_t **out, size_t *outlen)
{
	const ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(a->q), 0);
	struct dns_wire_tsig *wtsig = a->signer ? dns_tsig_signer_wire(a->signer) : NULL;
	struct dns_wire_msg m;
	size_t room = a->env.msg_size, extra = 0;
	bool end = false;
	int r;

	*out = NULL;
	*outlen = 0;
	if (a->edns)
		extra += DNS_WIRE_OPT_LEN;
	if (wtsig != NULL)
		extra += dns_wire_tsig_len(wtsig);
	if (room < extra + LDNS_HEADER_SIZE + 512)
		room = extra + LDNS_HEADER_SIZE + 512;
	for (;;) {
		if ((r = dns_wire_msg_init(&m, ldns_pkt_id(a->q), xfr_flags(a), room - extra)) != 0)
			return r;
		if (a->info.messages == 0 &&
		    (r = dns_wire_msg_question(&m, ldns_rdf_data(ldns_rr_owner(qrr)),
					       ldns_rdf_size(ldns_rr_owner(qrr)),
					       (uint16_t)ldns_rr_get_type(qrr),
					       (uint16_t)ldns_rr_get_class(qrr))) != 0)
			goto out;
		r = dns_xfr_fill(a->xfr, &m, &end);
		a->info.followed = dns_xfr_followed(a->xfr);
		/* One RR larger than dns.transfer-message-size (a published
		 * record, say) goes in a message of the largest size rather
		 * than stopping every transfer of the zone. */
		if (r != DNS_ERANGE || room >= DNS_WIRE_MAX)
			break;
		dns_wire_msg_clear(&m);
		room = DNS_WIRE_MAX;
	}
	if (r != 0)
		goto out;
	a->done = end;
	if (m.an == 0)
		goto out;
	a->info.rrs += m.an;
	if (a->edns && (r = dns_wire_msg_add_opt(&m, DNS_UDP_MAX, a->do_bit)) != 0)
		goto out;
	dns_wire_msg_take(&m, out, outlen);
	if (wtsig != NULL &&
	    (r = dns_wire_tsig_sign(wtsig, *out, outlen, DNS_WIRE_MAX, time(NULL))) != 0) {
		free(*out);
		*out = NULL;
		*outlen = 0;
		goto out;
	}
	a->info.messages++;
	r = 0;
out:
	dns_wire_msg_clear(&m);
	return r;
}

int dns_answer_next(struct dns_answer *a, uint8_t **msg, size_t *len)
{
	ldns_pkt *p = NULL;
	uint8_t *w = NULL;
	size_t wl = 0;
	int r = 0;

	*msg = NULL;
	*len = 0;
	if (a->single != NULL) {
		p = a->single;
		a->single = NULL;
		a->done = true;
	} else if (a->xfr != NULL && !a->done) {
		return pack_xfr(a, msg, len);
	} else {
		goto out;
	}
	if (!a->tcp) {
		if (ldns_pkt2wire(&w, p, &wl) != LDNS_STATUS_OK) {
			r = DNS_ELDNS;
			goto out;
		}
		/* TSIG adds about 100 bytes; keep room for it when signing. */
		if (wl + (a->signer ? 128 : 0) > a->udp_max) {
			ldns_pkt *t = resp_new(a, ldns_pkt_get_rcode(p), true);
			if (t == NULL) {
				r = DNS_ENOMEM;
				goto out;
			}
			ldns_pkt_set_aa(t, ldns_pkt_aa(p));
			ldns_pkt_set_tc(t, true);
			ldns_pkt_free(p);
			p = t;
		}
		free(w);
		w = NULL;
	}
	if (a->signer != NULL && (r = dns_tsig_signer_sign(a->signer, p)) != 0)
		goto out;
	if (ldns_pkt2wire(&w, p, &wl) != LDNS_STATUS_OK) {
		r = DNS_ELDNS;
		goto out;
	}
	a->info.messages++;
	*msg = w;
	*len = wl;
	w = NULL;
out:
	free(w);
	ldns_pkt_free(p);
	return r;
}

const struct dns_answer_info *dns_answer_info(const struct dns_answer *a)
{
	return &a->info;
}

void dns_answer_free(struct dns_answer *a)
{
	if (a == NULL)
		return;
	ldns_pkt_free(a->q);
	ldns_pkt_free(a->single);
	dns_xfr_free(a->xfr);
	dns_tsig_signer_free(a->signer);
	free(a);
}
