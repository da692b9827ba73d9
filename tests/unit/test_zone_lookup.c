/*
 * Denial of existence: zone_lookup_denial() and the negative answers of the
 * DNS listener built on it.
 *
 * A zone gets random names: devices (with their empty non-terminals
 * <id>.<zone>, some with a DANCE name below them) and PUBLISH names with
 * labels holding upper case and escaped bytes (00, '.', 0x80, 0xff), several
 * levels deep. Random query names (existing names in random case, their
 * ancestors, children, near neighbours, names right after the apex and after
 * the last name, literal '*' labels) are then looked up, and every result is
 * compared with what ldns's own canonical order (ldns_dname_compare) says
 * over the zone's owner names: the predecessor, whether the name is an empty
 * non-terminal, the closest encloser and what covers its wildcard. The NSEC
 * records named must cover the name (ldns_nsec_covers_name).
 *
 * Then the same kinds of names go through dns_answer as queries: rcode, AA,
 * the SOA with the negative TTL, exactly the expected NSEC records, each
 * RRSIG verified by ldns against the zone's DNSKEYs; nothing DNSSEC without
 * DO; TC over UDP when the answer exceeds the client's EDNS size.
 *
 * REGSIGN_TEST_SEED replays a run (the seed is printed).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "signer/dns_answer.h"
#include "test_zone_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

#define NQUERIES 3000
#define NDNS 400

static uint64_t rng;

static uint32_t rnd(uint32_t n)
{
	rng ^= rng << 13;
	rng ^= rng >> 7;
	rng ^= rng << 17;
	return (uint32_t)(rng % n);
}

static const uint8_t apex_wire[] = "\013iotregistry\004test";  /* + root byte 0 */
#define APEX_LEN (sizeof(apex_wire))

struct fix {
	struct tzs_signer s;
	struct zone *z;
	int64_t now;
	ldns_rdf **own;       /* owner names, ldns canonical order */
	size_t nown;
	ldns_rr_list *all;    /* every RR of the zone */
	ldns_rr_list *keys;   /* the DNSKEY RRset */
};

/* A name as wire labels, leftmost first, below the apex. */
struct name {
	uint8_t lab[8][64];
	size_t len[8];
	size_t n;
};

static ldns_rdf *name_rdf(const struct name *nm)
{
	uint8_t w[256];
	size_t k = 0;

	for (size_t i = 0; i < nm->n; i++) {
		w[k++] = (uint8_t)nm->len[i];
		memcpy(w + k, nm->lab[i], nm->len[i]);
		k += nm->len[i];
	}
	memcpy(w + k, apex_wire, APEX_LEN);
	k += APEX_LEN;
	assert_true(k <= 255);
	return ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, k, w);
}

/* A random label; with @p star a lone '*' may come out (queries only). */
static void rand_label(uint8_t *l, size_t *len, bool star)
{
	static const uint8_t odd[] = { 0x00, '.', 0x80, 0xff, '-', '_', '\\', ' ', 'Z', 'A' };
	size_t n = 1 + rnd(6);

	for (size_t i = 0; i < n; i++) {
		switch (rnd(5)) {
		case 0:
			l[i] = odd[rnd(sizeof(odd))];
			break;
		case 1:
			l[i] = (uint8_t)('A' + rnd(26));
			break;
		case 2:
			l[i] = (uint8_t)('0' + rnd(10));
			break;
		default:
			l[i] = (uint8_t)('a' + rnd(26));
			break;
		}
	}
	if (star && rnd(8) == 0) {
		l[0] = '*';
		n = 1;
	}
	*len = n;
}

static bool all_hex(const uint8_t *l, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!((l[i] >= '0' && l[i] <= '9') || ((l[i] | 0x20) >= 'a' && (l[i] | 0x20) <= 'f')))
			return false;
	return true;
}

static int cmp_rdf(const void *a, const void *b)
{
	return ldns_dname_compare(*(ldns_rdf *const *)a, *(ldns_rdf *const *)b);
}

static int collect(void *ctx, const ldns_rr *rr)
{
	ldns_rr *c = ldns_rr_clone(rr);

	assert_non_null(c);
	assert_true(ldns_rr_list_push_rr(ctx, c));
	return 0;
}

static void publish_txt(struct zone_change *c, const struct name *nm)
{
	ldns_rr *rr = ldns_rr_new();
	int r;

	assert_non_null(rr);
	ldns_rr_set_owner(rr, name_rdf(nm));
	ldns_rr_set_type(rr, LDNS_RR_TYPE_TXT);
	ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
	ldns_rr_set_ttl(rr, 3600);
	assert_true(ldns_rr_push_rdf(rr, ldns_rdf_new_frm_str(LDNS_RDF_TYPE_STR, "t")));
	r = zone_change_rr_add(c, rr);
	assert_true(r == 0 || r == ZONE_EEXIST);
	ldns_rr_free(rr);
}

/* Fill the zone in one change and record its owner names in ldns order. */
static void fill(struct fix *f)
{
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	char id[24];
	uint8_t hash[32];
	size_t ndev = 20 + rnd(40), npub = 20 + rnd(60);

	assert_int_equal(zone_change_begin(f->z, &c), 0);
	for (size_t i = 0; i < ndev; i++) {
		size_t idl = 1 + rnd(20);
		for (size_t k = 0; k < idl; k++)
			id[k] = "0123456789abcdefABCDEF"[rnd(22)];
		id[idl] = 0;
		for (size_t k = 0; k < sizeof(hash); k++)
			hash[k] = (uint8_t)rnd(256);
		struct zone_device dv = {
			.id = id, .index = 1 + rnd(3),
			.styles = ZONE_STYLE_SEED | (rnd(3) == 0 ? ZONE_STYLE_DANCE : 0),
			.cert_sha256 = hash, .spki_sha256 = hash,
		};
		int r = zone_change_device_add(c, &dv);
		assert_true(r == 0 || r == ZONE_EEXIST);
	}
	for (size_t i = 0; i < npub; i++) {
		struct name nm = { .n = 1 + rnd(4) };
		for (size_t k = 0; k < nm.n; k++)
			rand_label(nm.lab[k], &nm.len[k], false);
		/* The label right under the apex must leave the device namespace. */
		if (all_hex(nm.lab[nm.n - 1], nm.len[nm.n - 1]))
			nm.lab[nm.n - 1][0] = rnd(2) ? '_' : 'X';
		publish_txt(c, &nm);
	}
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);

	f->all = ldns_rr_list_new();
	assert_int_equal(zone_foreach_rr(f->z, collect, f->all), 0);
	f->keys = ldns_rr_list_new();
	f->own = calloc(ldns_rr_list_rr_count(f->all), sizeof(*f->own));
	assert_non_null(f->own);
	for (size_t i = 0; i < ldns_rr_list_rr_count(f->all); i++) {
		ldns_rr *rr = ldns_rr_list_rr(f->all, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_DNSKEY)
			assert_true(ldns_rr_list_push_rr(f->keys, ldns_rr_clone(rr)));
		if (ldns_rr_get_type(rr) != LDNS_RR_TYPE_NSEC)
			continue;
		f->own[f->nown++] = ldns_rr_owner(rr);
	}
	qsort(f->own, f->nown, sizeof(*f->own), cmp_rdf);
	assert_int_equal(f->nown, zone_names(f->z));
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));
	const char *env = getenv("REGSIGN_TEST_SEED");

	assert_non_null(f);
	rng = env ? strtoull(env, NULL, 0) : ((uint64_t)time(NULL) * 2654435761u) ^ 0x9e3779b97f4a7c15ull;
	if (rng == 0)
		rng = 1;
	printf("# seed %llu (REGSIGN_TEST_SEED=%llu replays)\n", (unsigned long long)rng,
	       (unsigned long long)rng);
	tzs_signer_init(&f->s);
	f->z = tzs_zone_new(&f->s, NULL, 0);
	f->now = time(NULL);
	fill(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	ldns_rr_list_deep_free(f->all);
	ldns_rr_list_deep_free(f->keys);
	free(f->own);
	zone_free(f->z);
	tzs_signer_free(&f->s);
	free(f);
	return 0;
}

/* ---- The model: ldns's canonical order over the owner names ---- */

static bool is_owner(const struct fix *f, const ldns_rdf *q)
{
	for (size_t i = 0; i < f->nown; i++)
		if (ldns_dname_compare(f->own[i], q) == 0)
			return true;
	return false;
}

static bool is_ent(const struct fix *f, const ldns_rdf *q)
{
	if (is_owner(f, q))
		return false;
	for (size_t i = 0; i < f->nown; i++)
		if (ldns_dname_is_subdomain(f->own[i], q))
			return true;
	return false;
}

/* The greatest owner sorting before @p q, wrapping to the last. */
static const ldns_rdf *model_pred(const struct fix *f, const ldns_rdf *q)
{
	const ldns_rdf *best = NULL;

	for (size_t i = 0; i < f->nown; i++)
		if (ldns_dname_compare(f->own[i], q) < 0)
			best = f->own[i];
	return best ? best : f->own[f->nown - 1];
}

static ldns_rdf *wire_rdf(const uint8_t *w, size_t len)
{
	ldns_rdf *r = ldns_rdf_new_frm_data(LDNS_RDF_TYPE_DNAME, len, w);

	assert_non_null(r);
	return r;
}

/* "*." + @p ce */
static ldns_rdf *wildcard_of(const ldns_rdf *ce)
{
	uint8_t w[300] = { 1, '*' };

	memcpy(w + 2, ldns_rdf_data(ce), ldns_rdf_size(ce));
	return wire_rdf(w, ldns_rdf_size(ce) + 2);
}

static void fail_name(const char *what, const ldns_rdf *q)
{
	char *s = ldns_rdf2str(q);

	fail_msg("%s: %s", what, s ? s : "?");
	free(s);
}

static const ldns_rr *nsec_at(const struct fix *f, const ldns_rdf *owner)
{
	for (size_t i = 0; i < ldns_rr_list_rr_count(f->all); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(f->all, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_NSEC &&
		    ldns_dname_compare(ldns_rr_owner(rr), owner) == 0)
			return rr;
	}
	return NULL;
}

/* What the model expects for @p q. */
struct expect {
	enum zone_lookup_kind kind;
	const ldns_rdf *nsec;
	ldns_rdf *encloser, *wildcard_name;
	const ldns_rdf *wildcard;
};

static void model(const struct fix *f, const ldns_rdf *q, struct expect *e)
{
	memset(e, 0, sizeof(*e));
	if (is_owner(f, q)) {
		e->kind = ZONE_LOOKUP_NAME;
		return;
	}
	e->nsec = model_pred(f, q);
	if (is_ent(f, q)) {
		e->kind = ZONE_LOOKUP_ENT;
		return;
	}
	e->kind = ZONE_LOOKUP_NXDOMAIN;
	e->encloser = ldns_dname_left_chop(q);
	while (!is_owner(f, e->encloser) && !is_ent(f, e->encloser)) {
		ldns_rdf *up = ldns_dname_left_chop(e->encloser);
		ldns_rdf_deep_free(e->encloser);
		e->encloser = up;
		assert_non_null(up);
	}
	e->wildcard_name = wildcard_of(e->encloser);
	e->wildcard = model_pred(f, e->wildcard_name);
}

static void expect_free(struct expect *e)
{
	ldns_rdf_deep_free(e->encloser);
	ldns_rdf_deep_free(e->wildcard_name);
}

/* A query name of one of the kinds listed at the top (wire, random case). */
static ldns_rdf *rand_query(const struct fix *f)
{
	const ldns_rdf *o = f->own[rnd((uint32_t)f->nown)];
	uint8_t w[300];
	size_t len = ldns_rdf_size(o);
	ldns_rdf *q;

	memcpy(w, ldns_rdf_data(o), len);
	switch (rnd(7)) {
	case 0: /* an existing name */
		break;
	case 1: { /* an ancestor: often an empty non-terminal, or the apex */
		size_t off = 0, skip = rnd(4);
		while (skip-- > 0 && len - off > APEX_LEN)
			off += 1 + w[off];
		memmove(w, w + off, len - off);
		len -= off;
		break;
	}
	case 2: { /* a child of an existing name */
		uint8_t l[64];
		size_t ll;
		rand_label(l, &ll, true);
		if (len + ll + 1 > 255)
			break;
		memmove(w + ll + 1, w, len);
		w[0] = (uint8_t)ll;
		memcpy(w + 1, l, ll);
		len += ll + 1;
		break;
	}
	case 3: /* a near neighbour: the first label's last byte moved by one */
		if (len > APEX_LEN && w[0] > 0)
			w[w[0]] = (uint8_t)(w[w[0]] + (rnd(2) ? 1 : -1));
		break;
	case 4: { /* right after the apex, or after everything */
		static const uint8_t first[] = { 1, 0 }, last[] = { 4, 0xff, 0xff, 0xff, 0xff };
		const uint8_t *p = rnd(2) ? first : last;
		size_t pl = p == first ? sizeof(first) : sizeof(last);
		memcpy(w, p, pl);
		memcpy(w + pl, apex_wire, APEX_LEN);
		len = pl + APEX_LEN;
		break;
	}
	default: { /* a random name, one to three labels under the apex */
		struct name nm = { .n = 1 + rnd(3) };
		for (size_t k = 0; k < nm.n; k++)
			rand_label(nm.lab[k], &nm.len[k], true);
		return name_rdf(&nm);
	}
	}
	/* Random case: lookups must fold it. */
	for (size_t i = 0; i < len; i++)
		if (rnd(3) == 0 && w[i] >= 'a' && w[i] <= 'z')
			w[i] = (uint8_t)(w[i] - 'a' + 'A');
	q = wire_rdf(w, len);
	return q;
}

static void check_lookup(const struct fix *f, const ldns_rdf *q)
{
	struct zone_lookup lk;
	struct expect e;
	ldns_rdf *got;
	const ldns_rr *nsec;

	assert_int_equal(zone_lookup_denial(f->z, ldns_rdf_data(q), ldns_rdf_size(q), &lk), 0);
	model(f, q, &e);
	if (lk.kind != e.kind)
		fail_name("kind differs", q);
	got = wire_rdf(lk.nsec, lk.nsec_len);
	if (ldns_dname_compare(got, e.kind == ZONE_LOOKUP_NAME ? q : e.nsec) != 0)
		fail_name("NSEC owner differs", q);
	nsec = nsec_at(f, got);
	assert_non_null(nsec);
	if (e.kind == ZONE_LOOKUP_ENT || e.kind == ZONE_LOOKUP_NXDOMAIN) {
		if (!ldns_nsec_covers_name(nsec, q))
			fail_name("NSEC does not cover", q);
	}
	if (e.kind == ZONE_LOOKUP_ENT && !ldns_dname_is_subdomain(ldns_rr_rdf(nsec, 0), q))
		fail_name("ENT: next name not below it", q);
	if (e.kind == ZONE_LOOKUP_NXDOMAIN) {
		ldns_rdf *ce = wire_rdf(lk.encloser, lk.encloser_len);
		ldns_rdf *wc = wire_rdf(lk.wildcard, lk.wildcard_len);
		if (ldns_dname_compare(ce, e.encloser) != 0)
			fail_name("closest encloser differs", q);
		if (ldns_dname_compare(wc, e.wildcard) != 0)
			fail_name("wildcard NSEC differs", q);
		if (!ldns_nsec_covers_name(nsec_at(f, wc), e.wildcard_name))
			fail_name("wildcard not covered", q);
		assert_int_equal(lk.same, ldns_dname_compare(wc, got) == 0);
		ldns_rdf_deep_free(ce);
		ldns_rdf_deep_free(wc);
	}
	ldns_rdf_deep_free(got);
	expect_free(&e);
}

static void test_lookup_random(void **state)
{
	struct fix *f = *state;
	size_t kinds[5] = { 0 };

	/* The apex, every owner and every ancestor of an owner. */
	for (size_t i = 0; i < f->nown; i++) {
		ldns_rdf *a = ldns_rdf_clone(f->own[i]);
		while (a != NULL && ldns_dname_label_count(a) >= 2) {
			check_lookup(f, a);
			ldns_rdf *up = ldns_dname_left_chop(a);
			ldns_rdf_deep_free(a);
			a = up;
		}
		ldns_rdf_deep_free(a);
	}
	for (size_t i = 0; i < NQUERIES; i++) {
		ldns_rdf *q = rand_query(f);
		struct zone_lookup lk;
		check_lookup(f, q);
		assert_int_equal(zone_lookup_denial(f->z, ldns_rdf_data(q), ldns_rdf_size(q), &lk),
				 0);
		kinds[lk.kind]++;
		ldns_rdf_deep_free(q);
	}
	/* The random names must have exercised every kind but the wildcard. */
	printf("# names %zu, ENT %zu, NXDOMAIN %zu\n", kinds[ZONE_LOOKUP_NAME],
	       kinds[ZONE_LOOKUP_ENT], kinds[ZONE_LOOKUP_NXDOMAIN]);
	assert_true(kinds[ZONE_LOOKUP_NAME] > 0);
	assert_true(kinds[ZONE_LOOKUP_ENT] > 0);
	assert_true(kinds[ZONE_LOOKUP_NXDOMAIN] > 0);
	assert_int_equal(kinds[ZONE_LOOKUP_WILDCARD], 0);
}

static void test_lookup_edges(void **state)
{
	struct fix *f = *state;
	struct zone_lookup lk;
	struct zone *empty;
	ldns_rdf *q;

	/* Outside the zone, and a malformed name. */
	q = ldns_dname_new_frm_str("example.com.");
	assert_int_equal(zone_lookup_denial(f->z, ldns_rdf_data(q), ldns_rdf_size(q), &lk),
			 ZONE_EINVAL);
	ldns_rdf_deep_free(q);
	assert_int_equal(zone_lookup_denial(f->z, (const uint8_t *)"\005ab", 3, &lk), ZONE_EINVAL);
	/* A zone without names has nothing to prove with. */
	empty = tzs_zone_new(&f->s, NULL, 0);
	q = ldns_dname_new_frm_str("x.iotregistry.test.");
	assert_int_equal(zone_lookup_denial(empty, ldns_rdf_data(q), ldns_rdf_size(q), &lk),
			 ZONE_ESTATE);
	ldns_rdf_deep_free(q);
	zone_free(empty);
	/* After the last name (random labels have at most 6 bytes, so seven
	 * 0xff sort after every one): the last NSEC covers it and its next name
	 * is the apex. */
	q = ldns_dname_new_frm_str("\\255\\255\\255\\255\\255\\255\\255.iotregistry.test.");
	assert_int_equal(zone_lookup_denial(f->z, ldns_rdf_data(q), ldns_rdf_size(q), &lk), 0);
	assert_int_equal(lk.kind, ZONE_LOOKUP_NXDOMAIN);
	ldns_rdf *last = wire_rdf(lk.nsec, lk.nsec_len);
	assert_int_equal(ldns_dname_compare(last, f->own[f->nown - 1]), 0);
	assert_int_equal(ldns_dname_compare(ldns_rr_rdf(nsec_at(f, last), 0), f->own[0]), 0);
	ldns_rdf_deep_free(last);
	ldns_rdf_deep_free(q);
}

/* regsignd never publishes a wildcard (PUBLISH refuses them), but the zone
 * library could hold one: a name it would answer is reported as such, with
 * the wildcard's owner, rather than as a provable NXDOMAIN. */
static void test_lookup_wildcard(void **state)
{
	struct fix *f = *state;
	struct zone_change *c = NULL;
	struct zone_diff *d = NULL;
	struct zone_lookup lk;
	struct name nm = { .n = 2, .lab = { "*", "_wild-card-x" }, .len = { 1, 12 } };
	ldns_rdf *q, *w;

	assert_int_equal(zone_change_begin(f->z, &c), 0);
	publish_txt(c, &nm);
	assert_int_equal(zone_change_commit(c, f->now, tzs_sign, &f->s, &d), 0);
	zone_change_free(c);
	zone_diff_free(d);
	q = ldns_dname_new_frm_str("a.b._WILD-card-x.iotregistry.test.");
	assert_int_equal(zone_lookup_denial(f->z, ldns_rdf_data(q), ldns_rdf_size(q), &lk), 0);
	assert_int_equal(lk.kind, ZONE_LOOKUP_WILDCARD);
	w = wire_rdf(lk.wildcard, lk.wildcard_len);
	ldns_rdf_deep_free(q);
	q = ldns_dname_new_frm_str("*._wild-card-x.iotregistry.test.");
	assert_int_equal(ldns_dname_compare(w, q), 0);
	ldns_rdf_deep_free(w);
	w = wire_rdf(lk.encloser, lk.encloser_len);
	ldns_rdf_deep_free(q);
	q = ldns_dname_new_frm_str("_wild-card-x.iotregistry.test.");
	assert_int_equal(ldns_dname_compare(w, q), 0);
	/* The wildcard's parent is an empty non-terminal; the wildcard itself a name. */
	assert_int_equal(zone_lookup_denial(f->z, ldns_rdf_data(q), ldns_rdf_size(q), &lk), 0);
	assert_int_equal(lk.kind, ZONE_LOOKUP_ENT);
	ldns_rdf_deep_free(w);
	ldns_rdf_deep_free(q);
}

/* ---- Through the DNS listener's answers ---- */

struct reply {
	ldns_pkt *p;
	size_t wirelen;
};

static struct reply ask(const struct fix *f, const ldns_rdf *q, ldns_rr_type t, bool edns,
			bool dobit, uint16_t udp, bool tcp)
{
	struct dns_answer_env env = { .zone = f->z };
	struct sockaddr_in sin = { .sin_family = AF_INET };
	ldns_pkt *qp = ldns_pkt_query_new(ldns_rdf_clone(q), t, LDNS_RR_CLASS_IN, 0);
	struct dns_answer *a = NULL;
	uint8_t *w = NULL, *m = NULL;
	size_t wl = 0, ml = 0;
	struct reply rep = { NULL, 0 };

	assert_non_null(qp);
	sin.sin_addr.s_addr = htonl(0x7f000001);
	ldns_pkt_set_id(qp, 4242);
	if (edns) {
		ldns_pkt_set_edns_udp_size(qp, udp);
		ldns_pkt_set_edns_do(qp, dobit);
	}
	assert_int_equal(ldns_pkt2wire(&w, qp, &wl), LDNS_STATUS_OK);
	assert_int_equal(dns_answer_new(&env, w, wl, (const struct sockaddr *)&sin, tcp, f->now,
					&a),
			 0);
	assert_int_equal(dns_answer_next(a, &m, &ml), 0);
	assert_non_null(m);
	assert_int_equal(ldns_wire2pkt(&rep.p, m, ml), LDNS_STATUS_OK);
	rep.wirelen = ml;
	free(m);
	/* One message only. */
	assert_int_equal(dns_answer_next(a, &m, &ml), 0);
	assert_null(m);
	dns_answer_free(a);
	free(w);
	ldns_pkt_free(qp);
	return rep;
}

/* Verify every RRSIG of a section over the RRset it covers in that section. */
static size_t verify_section(const struct fix *f, const ldns_rr_list *sec)
{
	size_t nsig = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(sec); i++) {
		ldns_rr *sig = ldns_rr_list_rr(sec, i);
		if (ldns_rr_get_type(sig) != LDNS_RR_TYPE_RRSIG)
			continue;
		ldns_rr_type ct = ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(sig));
		ldns_rr_list *set = ldns_rr_list_new(), *good = ldns_rr_list_new();
		for (size_t j = 0; j < ldns_rr_list_rr_count(sec); j++) {
			ldns_rr *rr = ldns_rr_list_rr(sec, j);
			if (ldns_rr_get_type(rr) == ct &&
			    ldns_dname_compare(ldns_rr_owner(rr), ldns_rr_owner(sig)) == 0)
				assert_true(ldns_rr_list_push_rr(set, ldns_rr_clone(rr)));
		}
		assert_true(ldns_rr_list_rr_count(set) > 0);
		/* The RRSIG's TTL may not exceed its RRset's (RFC 4035 2.2). */
		assert_true(ldns_rr_ttl(sig) <= ldns_rr_ttl(ldns_rr_list_rr(set, 0)));
		if (ldns_verify_rrsig_keylist_time(set, sig, f->keys, (time_t)f->now, good) !=
		    LDNS_STATUS_OK)
			fail_name("RRSIG does not verify", ldns_rr_owner(sig));
		ldns_rr_list_deep_free(set);
		ldns_rr_list_free(good);
		nsig++;
	}
	return nsig;
}

static void check_answer(const struct fix *f, const ldns_rdf *q, ldns_rr_type t, size_t *ntc)
{
	struct expect e;
	struct reply r;
	const ldns_rr_list *auth;
	size_t nsoa = 0, nnsec = 0, nsig, want_nsec, full;
	bool has_type = false;

	model(f, q, &e);
	if (e.kind == ZONE_LOOKUP_NAME) {
		const ldns_rr *n = nsec_at(f, q);
		has_type = ldns_nsec_bitmap_covers_type(ldns_rr_rdf(n, 1), t);
	}
	r = ask(f, q, t, true, true, 1232, true);
	assert_true(ldns_pkt_aa(r.p));
	assert_false(ldns_pkt_tc(r.p));
	assert_int_equal(ldns_pkt_get_rcode(r.p), e.kind == ZONE_LOOKUP_NXDOMAIN
						  ? LDNS_RCODE_NXDOMAIN : LDNS_RCODE_NOERROR);
	if (has_type) {
		/* An existing RRset with DO: the data and its RRSIG. */
		assert_true(ldns_pkt_ancount(r.p) >= 2);
		assert_int_equal(verify_section(f, ldns_pkt_answer(r.p)), 1);
		ldns_pkt_free(r.p);
		expect_free(&e);
		return;
	}
	assert_int_equal(ldns_pkt_ancount(r.p), 0);
	auth = ldns_pkt_authority(r.p);
	for (size_t i = 0; i < ldns_rr_list_rr_count(auth); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(auth, i);
		switch (ldns_rr_get_type(rr)) {
		case LDNS_RR_TYPE_SOA:
			nsoa++;
			assert_int_equal(ldns_rr_ttl(rr), 300);  /* min(SOA minimum, SOA TTL) */
			break;
		case LDNS_RR_TYPE_NSEC: {
			const ldns_rdf *o = ldns_rr_owner(rr);
			bool ok = e.kind == ZONE_LOOKUP_NAME
				? ldns_dname_compare(o, q) == 0
				: ldns_dname_compare(o, e.nsec) == 0 ||
				  (e.kind == ZONE_LOOKUP_NXDOMAIN &&
				   ldns_dname_compare(o, e.wildcard) == 0);
			if (!ok)
				fail_name("unexpected NSEC in the answer to", q);
			for (size_t j = 0; j < i; j++)
				if (ldns_rr_compare(ldns_rr_list_rr(auth, j), rr) == 0)
					fail_name("NSEC sent twice for", q);
			nnsec++;
			break;
		}
		case LDNS_RR_TYPE_RRSIG:
			break;
		default:
			fail_name("unexpected RR in the authority section for", q);
		}
	}
	want_nsec = e.kind == ZONE_LOOKUP_NXDOMAIN && ldns_dname_compare(e.nsec, e.wildcard) != 0
		  ? 2 : 1;
	assert_int_equal(nsoa, 1);
	assert_int_equal(nnsec, want_nsec);
	nsig = verify_section(f, auth);
	assert_int_equal(nsig, 1 + want_nsec);
	ldns_pkt_free(r.p);

	/* Without DO: the SOA alone. */
	r = ask(f, q, t, true, false, 1232, false);
	assert_int_equal(ldns_pkt_nscount(r.p), 1);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_authority(r.p), 0)),
			 LDNS_RR_TYPE_SOA);
	ldns_pkt_free(r.p);
	r = ask(f, q, t, false, false, 0, false);
	assert_int_equal(ldns_pkt_nscount(r.p), 1);
	ldns_pkt_free(r.p);

	/* Over UDP with DO: the whole proof fits in 1232 bytes; an EDNS size
	 * of 512 truncates the answer when it is larger. */
	r = ask(f, q, t, true, true, 1232, false);
	assert_false(ldns_pkt_tc(r.p));
	assert_int_equal(ldns_pkt_nscount(r.p), 2 + 2 * want_nsec);
	full = r.wirelen;
	ldns_pkt_free(r.p);
	r = ask(f, q, t, true, true, 512, false);
	assert_true(r.wirelen <= 512);
	assert_int_equal(ldns_pkt_tc(r.p), full > 512);
	assert_int_equal(ldns_pkt_nscount(r.p), full > 512 ? 0 : 2 + 2 * want_nsec);
	if (full > 512)
		(*ntc)++;
	ldns_pkt_free(r.p);
	expect_free(&e);
}

static void test_answers(void **state)
{
	struct fix *f = *state;
	static const ldns_rr_type types[] = { LDNS_RR_TYPE_A, LDNS_RR_TYPE_CERT,
					      LDNS_RR_TYPE_TXT, LDNS_RR_TYPE_TLSA };
	static const char *const fixed[] = {
		"iotregistry.test.",               /* the apex: NODATA for A */
		"\\000.iotregistry.test.",        /* right after the apex */
		"\\000.\\000.iotregistry.test.",
		"\\255\\255.iotregistry.test.",   /* after everything */
		"nosuch.iotregistry.test.",
		"*.iotregistry.test.",
	};
	size_t ntc = 0;
	ldns_rdf *q;

	for (size_t i = 0; i < NDNS; i++) {
		q = rand_query(f);
		check_answer(f, q, types[rnd(4)], &ntc);
		ldns_rdf_deep_free(q);
	}
	for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++) {
		q = ldns_dname_new_frm_str(fixed[i]);
		assert_non_null(q);
		check_answer(f, q, LDNS_RR_TYPE_A, &ntc);
		check_answer(f, q, LDNS_RR_TYPE_SOA, &ntc);
		ldns_rdf_deep_free(q);
	}
	/* Two NSEC proofs with their signatures exceed 512 bytes: some answers
	 * must have been truncated at that EDNS size. */
	printf("# truncated at 512: %zu\n", ntc);
	assert_true(ntc > 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lookup_random, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lookup_wildcard, setup, teardown),
		cmocka_unit_test_setup_teardown(test_answers, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
