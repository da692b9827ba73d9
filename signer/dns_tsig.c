/* TSIG keys, verification and chained signing over ldns (see dns_tsig.h). */
#include "signer/dns_tsig.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "signer/dns_wire.h"

/* A transfer peer is refused a key shorter than this: HMAC keys should be as
 * long as the hash output, and 128 bits is the floor RFC 8945 tolerates. */
#define DNS_TSIG_MIN_SECRET 16
#define DNS_TSIG_FUDGE 300

struct dns_keyring {
	struct dns_tsig_key *v;
	size_t n, cap;
};

/* The MAC itself is computed by the wire signer (dns_wire_tsig.c), which
 * transfers use directly: one implementation of RFC 8945 section 4.3 for
 * both paths. */
struct dns_tsig_signer {
	struct dns_wire_tsig *wire;
	ldns_rdf *mac;   /* the last message's MAC as ldns holds it; NULL before */
};

int dns_keyring_new(struct dns_keyring **out)
{
	*out = calloc(1, sizeof(**out));
	return *out == NULL ? DNS_ENOMEM : 0;
}

static void key_clear(struct dns_tsig_key *k)
{
	free(k->name);
	free(k->alg);
	if (k->secret != NULL) {
		explicit_bzero(k->secret, strlen(k->secret));
		free(k->secret);
	}
}

void dns_keyring_free(struct dns_keyring *kr)
{
	if (kr == NULL)
		return;
	for (size_t i = 0; i < kr->n; i++)
		key_clear(&kr->v[i]);
	free(kr->v);
	free(kr);
}

/* Lower case, absolute form of a name, checked by ldns; NULL if malformed. */
static char *name_canon(const char *name)
{
	ldns_rdf *d = NULL;
	char *s = NULL;

	if (name == NULL || *name == '\0' ||
	    ldns_str2rdf_dname(&d, name) != LDNS_STATUS_OK)
		return NULL;
	ldns_dname2canonical(d);
	s = ldns_rdf2str(d);
	ldns_rdf_deep_free(d);
	return s;
}

static const char *alg_canon(const char *alg)
{
	static const char *const known[] = { "hmac-sha256.", "hmac-sha512." };

	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++) {
		size_t l = strlen(known[i]);
		if (strcasecmp(alg, known[i]) == 0 ||
		    (strlen(alg) == l - 1 && strncasecmp(alg, known[i], l - 1) == 0))
			return known[i];
	}
	return NULL;
}

int dns_keyring_add(struct dns_keyring *kr, const char *name, const char *alg,
		    const char *secret)
{
	struct dns_tsig_key k = { 0 };
	const char *a;
	ldns_rdf *raw = NULL;
	size_t n;
	int r = DNS_EINVAL;

	if (kr == NULL || name == NULL || alg == NULL || secret == NULL)
		goto out;
	if ((a = alg_canon(alg)) == NULL)
		goto out;
	/* Decode once here so that ldns never meets a bad secret: its verify
	 * path loses the packet's TSIG RR when the MAC cannot be computed. */
	if (ldns_str2rdf_b64(&raw, secret) != LDNS_STATUS_OK)
		goto out;
	n = ldns_rdf_size(raw);
	explicit_bzero(ldns_rdf_data(raw), n);
	if (n < DNS_TSIG_MIN_SECRET)
		goto out;
	k.name = name_canon(name);
	if (k.name == NULL || dns_keyring_find(kr, k.name) != NULL)
		goto out;
	k.alg = strdup(a);
	k.secret = strdup(secret);
	k.fudge = DNS_TSIG_FUDGE;
	if (k.alg == NULL || k.secret == NULL) {
		r = DNS_ENOMEM;
		goto out;
	}
	if (kr->n == kr->cap) {
		size_t c = kr->cap ? kr->cap * 2 : 4;
		struct dns_tsig_key *v = realloc(kr->v, c * sizeof(*v));
		if (v == NULL) {
			r = DNS_ENOMEM;
			goto out;
		}
		kr->v = v;
		kr->cap = c;
	}
	kr->v[kr->n++] = k;
	memset(&k, 0, sizeof(k));
	r = 0;
out:
	ldns_rdf_deep_free(raw);
	key_clear(&k);
	return r;
}

int dns_keyring_add_spec(struct dns_keyring *kr, const char *spec)
{
	char *copy = NULL, *c1, *c2;
	int r = DNS_EINVAL;

	if (spec == NULL)
		return DNS_EINVAL;
	copy = strdup(spec);
	if (copy == NULL)
		return DNS_ENOMEM;
	c1 = strchr(copy, ':');
	c2 = c1 ? strchr(c1 + 1, ':') : NULL;
	if (c2 != NULL) {
		*c1 = *c2 = '\0';
		r = dns_keyring_add(kr, c1 + 1, copy, c2 + 1);
	}
	explicit_bzero(copy, strlen(spec));
	free(copy);
	return r;
}

const struct dns_tsig_key *dns_keyring_find(const struct dns_keyring *kr, const char *name)
{
	size_t l;

	if (kr == NULL || name == NULL)
		return NULL;
	l = strlen(name);
	for (size_t i = 0; i < kr->n; i++) {
		const char *k = kr->v[i].name;
		size_t kl = strlen(k);
		/* Stored names end in a dot; the one asked for may not. */
		if ((l == kl && strcasecmp(k, name) == 0) ||
		    (l + 1 == kl && strncasecmp(k, name, l) == 0))
			return &kr->v[i];
	}
	return NULL;
}

static uint64_t tsig_time(const ldns_rdf *rd)
{
	const uint8_t *d = ldns_rdf_data(rd);
	uint64_t t = 0;

	if (ldns_rdf_size(rd) != 6)
		return 0;
	for (int i = 0; i < 6; i++)
		t = t << 8 | d[i];
	return t;
}

enum dns_tsig_status dns_tsig_verify(const struct dns_keyring *kr, ldns_pkt *p,
				     const uint8_t *wire, size_t len, const ldns_rdf *prior_mac,
				     int64_t now, const struct dns_tsig_key **key, ldns_rdf **mac)
{
	ldns_rr *t = ldns_pkt_tsig(p);
	const struct dns_tsig_key *k;
	char *kname = NULL, *alg = NULL;
	enum dns_tsig_status st = DNS_TSIG_BADKEY;
	uint64_t signed_at;
	uint16_t fudge;

	if (key != NULL)
		*key = NULL;
	if (mac != NULL)
		*mac = NULL;
	if (t == NULL)
		return DNS_TSIG_UNSIGNED;
	if (ldns_rr_rd_count(t) != 7 || ldns_rdf_size(ldns_rr_rdf(t, 2)) != 2)
		return DNS_TSIG_BADSIG;
	kname = ldns_rdf2str(ldns_rr_owner(t));
	alg = ldns_rdf2str(ldns_rr_rdf(t, 0));
	if (kname == NULL || alg == NULL) {
		st = DNS_TSIG_BADSIG;
		goto out;
	}
	k = dns_keyring_find(kr, kname);
	/* The algorithm is part of the key: a message may not pick another. */
	if (k == NULL || strcasecmp(alg, k->alg) != 0)
		goto out;
	if (key != NULL)
		*key = k;
	if (!ldns_pkt_tsig_verify_next(p, wire, len, k->name, k->secret, prior_mac, 0)) {
		st = DNS_TSIG_BADSIG;
		goto out;
	}
	signed_at = tsig_time(ldns_rr_rdf(t, 1));
	fudge = ldns_rdf2native_int16(ldns_rr_rdf(t, 2));
	if (now < 0 || (uint64_t)now > signed_at + fudge || signed_at > (uint64_t)now + fudge) {
		st = DNS_TSIG_BADTIME;
		goto out;
	}
	if (mac != NULL && (*mac = ldns_rdf_clone(ldns_rr_rdf(t, 3))) == NULL) {
		st = DNS_TSIG_BADSIG;
		goto out;
	}
	st = DNS_TSIG_OK;
out:
	free(kname);
	free(alg);
	return st;
}

int dns_tsig_error_rr(ldns_pkt *resp, const ldns_pkt *req, enum dns_tsig_status status)
{
	const ldns_rr *t = ldns_pkt_tsig(req);
	ldns_rr *e = NULL;
	ldns_rdf *rd[7] = { 0 };
	int r = DNS_ENOMEM;

	if (t == NULL || ldns_rr_rd_count(t) != 7)
		return DNS_EINVAL;
	e = ldns_rr_new();
	if (e == NULL)
		goto out;
	ldns_rr_set_type(e, LDNS_RR_TYPE_TSIG);
	ldns_rr_set_class(e, LDNS_RR_CLASS_ANY);
	ldns_rr_set_ttl(e, 0);
	ldns_rdf *owner = ldns_rdf_clone(ldns_rr_owner(t));
	if (owner == NULL)
		goto out;
	ldns_rr_set_owner(e, owner);
	rd[0] = ldns_rdf_clone(ldns_rr_rdf(t, 0));
	rd[1] = ldns_rdf_clone(ldns_rr_rdf(t, 1));
	rd[2] = ldns_rdf_clone(ldns_rr_rdf(t, 2));
	rd[3] = ldns_native2rdf_int16_data(0, NULL);
	rd[4] = ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, ldns_pkt_id(req));
	rd[5] = ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, (uint16_t)status);
	rd[6] = ldns_native2rdf_int16_data(0, NULL);
	for (int i = 0; i < 7; i++)
		if (rd[i] == NULL)
			goto out;
	for (int i = 0; i < 7; i++) {
		if (!ldns_rr_push_rdf(e, rd[i]))
			goto out;
		rd[i] = NULL;
	}
	ldns_rr_free(ldns_pkt_tsig(resp));
	ldns_pkt_set_tsig(resp, e);
	e = NULL;
	r = 0;
out:
	for (int i = 0; i < 7; i++)
		ldns_rdf_deep_free(rd[i]);
	ldns_rr_free(e);
	return r;
}

int dns_tsig_signer_new(const struct dns_tsig_key *key, const ldns_rdf *request_mac,
			struct dns_tsig_signer **out)
{
	struct dns_tsig_signer *s = NULL;
	const uint8_t *req = NULL;
	size_t reqlen = 0;
	int r = DNS_EINVAL;

	*out = NULL;
	if (key == NULL)
		return DNS_EINVAL;
	/* ldns keeps a MAC behind its two-byte length; the wire signer wants
	 * the MAC alone. */
	if (request_mac != NULL) {
		if (ldns_rdf_size(request_mac) < 2)
			return DNS_EINVAL;
		req = ldns_rdf_data(request_mac) + 2;
		reqlen = ldns_rdf_size(request_mac) - 2;
	}
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return DNS_ENOMEM;
	if ((r = dns_wire_tsig_new(key, req, reqlen, &s->wire)) != 0)
		goto out;
	*out = s;
	s = NULL;
	r = 0;
out:
	dns_tsig_signer_free(s);
	return r;
}

void dns_tsig_signer_free(struct dns_tsig_signer *s)
{
	if (s == NULL)
		return;
	dns_wire_tsig_free(s->wire);
	ldns_rdf_deep_free(s->mac);
	free(s);
}

int dns_tsig_signer_sign(struct dns_tsig_signer *s, ldns_pkt *p)
{
	uint8_t *w = NULL, *msg = NULL;
	size_t wl = 0, len, cap, pos;
	ldns_rr *t = NULL;
	ldns_rdf *mac = NULL;
	int r = DNS_EINVAL;

	if (ldns_pkt_tsig(p) != NULL)
		goto out;
	/* The MAC covers the message as it goes out without its TSIG RR: the
	 * wire signer appends the RR to that form, and the RR read back from
	 * it is set on the packet, whose ldns_pkt2wire() then gives the same
	 * bytes (ldns writes the TSIG RR last, after the counted sections). */
	r = DNS_ELDNS;
	if (ldns_pkt2wire(&w, p, &wl) != LDNS_STATUS_OK)
		goto out;
	r = DNS_ENOMEM;
	cap = wl + dns_wire_tsig_len(s->wire);
	if ((msg = malloc(cap)) == NULL)
		goto out;
	memcpy(msg, w, wl);
	len = wl;
	if ((r = dns_wire_tsig_sign(s->wire, msg, &len, cap, (int64_t)time(NULL))) != 0)
		goto out;
	r = DNS_ELDNS;
	pos = wl;
	if (ldns_wire2rr(&t, msg, len, &pos, LDNS_SECTION_ADDITIONAL) != LDNS_STATUS_OK ||
	    ldns_rr_get_type(t) != LDNS_RR_TYPE_TSIG || ldns_rr_rd_count(t) != 7)
		goto out;
	r = DNS_ENOMEM;
	if ((mac = ldns_rdf_clone(ldns_rr_rdf(t, 3))) == NULL)
		goto out;
	ldns_pkt_set_tsig(p, t);
	t = NULL;
	ldns_rdf_deep_free(s->mac);
	s->mac = mac;
	r = 0;
out:
	ldns_rr_free(t);
	free(msg);
	free(w);
	return r;
}

const ldns_rdf *dns_tsig_signer_mac(const struct dns_tsig_signer *s)
{
	return s->mac;
}

struct dns_wire_tsig *dns_tsig_signer_wire(struct dns_tsig_signer *s)
{
	return s->wire;
}
