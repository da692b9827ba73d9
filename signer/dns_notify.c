/* NOTIFY sender with retries (see dns_notify.h). */
#include "signer/dns_notify.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "signer/dns_acl.h"
#include "signer/dns_tsig.h"
#include "signer/dns_xfr.h"
#include "zonesigner/zone.h"

struct dns_notify;

struct notify_target {
	struct dns_notify *n;
	struct sockaddr_storage addr;
	char addr_s[64];
	const struct dns_tsig_key *key;
	uv_timer_t timer;
	bool pending;
	uint16_t id;
	uint32_t serial;
	unsigned sent;            /* transmissions of the current NOTIFY */
	uint32_t interval;
	uint8_t *wire;            /* the current NOTIFY, resent as is */
	size_t len;
	struct dns_tsig_signer *signer; /* holds our MAC to check the reply */
};

struct dns_notify {
	uv_loop_t *loop;
	struct dns_notify_opts o;
	uv_udp_t sock4, sock6;
	bool has4, has6;
	struct notify_target **t;
	size_t nt;
	size_t handles;
	bool closing, closed;
	void (*close_cb)(void *ctx);
	void *close_ctx;
	struct dns_notify_stats st;
	uint8_t buf[4096];
};

static void logf_(struct dns_notify *n, enum dns_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(struct dns_notify *n, enum dns_log_level lvl, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (n->o.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	n->o.log(n->o.log_ctx, lvl, buf);
}

static void target_stop(struct notify_target *t)
{
	t->pending = false;
	uv_timer_stop(&t->timer);
	free(t->wire);
	t->wire = NULL;
	dns_tsig_signer_free(t->signer);
	t->signer = NULL;
}

static void transmit(struct notify_target *t)
{
	struct dns_notify *n = t->n;
	uv_udp_t *sock = t->addr.ss_family == AF_INET6 ? &n->sock6 : &n->sock4;
	uv_buf_t b = uv_buf_init((char *)t->wire, (unsigned)t->len);
	int e = uv_udp_try_send(sock, &b, 1, (struct sockaddr *)&t->addr);

	t->sent++;
	n->st.sent++;
	if (e < 0)
		logf_(n, DNS_LOG_WARNING, "NOTIFY to %s: %s", t->addr_s, uv_strerror(e));
}

static void on_retry(uv_timer_t *timer)
{
	struct notify_target *t = timer->data;
	struct dns_notify *n = t->n;

	if (!t->pending)
		return;
	if (t->sent >= n->o.tries) {
		n->st.failed++;
		logf_(n, DNS_LOG_WARNING, "NOTIFY serial %u to %s: no answer after %u tries",
		      t->serial, t->addr_s, t->sent);
		target_stop(t);
		return;
	}
	transmit(t);
	t->interval *= 2;
	uv_timer_start(&t->timer, on_retry, t->interval, 0);
}

/* The NOTIFY message itself, signed for the target if it has a key. */
static int build(struct notify_target *t, const ldns_rr *soa, const ldns_rdf *origin)
{
	ldns_pkt *p = ldns_pkt_new();
	ldns_rr *q = NULL, *hint = NULL;
	int r = DNS_ENOMEM;

	if (p == NULL)
		goto out;
	ldns_pkt_set_id(p, t->id);
	ldns_pkt_set_opcode(p, LDNS_PACKET_NOTIFY);
	ldns_pkt_set_aa(p, true);
	q = ldns_rr_new();
	if (q == NULL)
		goto out;
	ldns_rr_set_question(q, true);
	ldns_rr_set_owner(q, ldns_rdf_clone(origin));
	ldns_rr_set_type(q, LDNS_RR_TYPE_SOA);
	ldns_rr_set_class(q, LDNS_RR_CLASS_IN);
	if (ldns_rr_owner(q) == NULL || !ldns_pkt_push_rr(p, LDNS_SECTION_QUESTION, q))
		goto out;
	q = NULL;
	hint = ldns_rr_clone(soa);
	if (hint == NULL || !ldns_pkt_push_rr(p, LDNS_SECTION_ANSWER, hint))
		goto out;
	hint = NULL;
	if (t->key != NULL) {
		if ((r = dns_tsig_signer_new(t->key, NULL, &t->signer)) != 0 ||
		    (r = dns_tsig_signer_sign(t->signer, p)) != 0)
			goto out;
	}
	if (ldns_pkt2wire(&t->wire, p, &t->len) != LDNS_STATUS_OK) {
		r = DNS_ELDNS;
		goto out;
	}
	r = 0;
out:
	ldns_rr_free(q);
	ldns_rr_free(hint);
	ldns_pkt_free(p);
	return r;
}

int dns_notify_send(struct dns_notify *n)
{
	ldns_rr *soa = NULL;
	ldns_rdf *origin = NULL;
	int r;

	if (n->closing)
		return DNS_ESTATE;
	if ((r = dns_zone_soa(n->o.zone, &soa, NULL)) != 0)
		goto out;
	origin = ldns_rdf_clone(ldns_rr_owner(soa));
	if (origin == NULL) {
		r = DNS_ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < n->nt; i++) {
		struct notify_target *t = n->t[i];
		uint16_t id;
		target_stop(t);
		if (getrandom(&id, sizeof(id), 0) != (ssize_t)sizeof(id))
			id = (uint16_t)(rand() ^ time(NULL));
		t->id = id;
		t->serial = zone_serial(n->o.zone);
		t->sent = 0;
		t->interval = n->o.retry_ms;
		r = build(t, soa, origin);
		if (r != 0) {
			logf_(n, DNS_LOG_ERROR, "NOTIFY to %s: %s", t->addr_s, dns_strerror(r));
			target_stop(t);
			continue;
		}
		t->pending = true;
		transmit(t);
		uv_timer_start(&t->timer, on_retry, t->interval, 0);
	}
	r = 0;
out:
	ldns_rr_free(soa);
	ldns_rdf_deep_free(origin);
	return r;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
	if (a->ss_family != b->sa_family)
		return false;
	if (b->sa_family == AF_INET) {
		const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
		return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
	}
	const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
	return x->sin6_port == y->sin6_port &&
	       memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
}

static void on_reply(struct dns_notify *n, const uint8_t *wire, size_t len,
		     const struct sockaddr *from)
{
	ldns_pkt *p = NULL;
	struct notify_target *t = NULL;
	enum dns_tsig_status ts;

	if (ldns_wire2pkt(&p, wire, len) != LDNS_STATUS_OK)
		return;
	if (!ldns_pkt_qr(p) || ldns_pkt_get_opcode(p) != LDNS_PACKET_NOTIFY)
		goto out;
	for (size_t i = 0; i < n->nt && t == NULL; i++)
		if (n->t[i]->pending && n->t[i]->id == ldns_pkt_id(p) &&
		    same_addr(&n->t[i]->addr, from))
			t = n->t[i];
	if (t == NULL)
		goto out;
	if (t->key != NULL) {
		/* A reply we cannot authenticate does not stop the retries. */
		ts = dns_tsig_verify(n->o.keys, p, wire, len, dns_tsig_signer_mac(t->signer),
				     (int64_t)time(NULL), NULL, NULL);
		if (ts != DNS_TSIG_OK) {
			logf_(n, DNS_LOG_WARNING, "NOTIFY reply from %s: TSIG %s", t->addr_s,
			      ts == DNS_TSIG_UNSIGNED ? "missing" : "invalid");
			goto out;
		}
	}
	if (ldns_pkt_get_rcode(p) == LDNS_RCODE_NOERROR) {
		n->st.acked++;
		logf_(n, DNS_LOG_INFO, "NOTIFY serial %u acknowledged by %s", t->serial,
		      t->addr_s);
	} else {
		n->st.failed++;
		logf_(n, DNS_LOG_WARNING, "NOTIFY serial %u refused by %s (rcode %d)", t->serial,
		      t->addr_s, (int)ldns_pkt_get_rcode(p));
	}
	target_stop(t);
out:
	ldns_pkt_free(p);
}

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dns_notify *n = h->data;

	(void)suggested;
	buf->base = (char *)n->buf;
	buf->len = sizeof(n->buf);
}

static void udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
		     const struct sockaddr *addr, unsigned flags)
{
	struct dns_notify *n = h->data;

	if (nread <= 0 || addr == NULL || (flags & UV_UDP_PARTIAL) || n->closing)
		return;
	on_reply(n, (const uint8_t *)buf->base, (size_t)nread, addr);
}

int dns_notify_new(uv_loop_t *loop, const struct dns_notify_opts *opts, struct dns_notify **out)
{
	struct dns_notify *n;

	*out = NULL;
	if (loop == NULL || opts == NULL || opts->zone == NULL)
		return DNS_EINVAL;
	n = calloc(1, sizeof(*n));
	if (n == NULL)
		return DNS_ENOMEM;
	n->loop = loop;
	n->o = *opts;
	if (n->o.tries == 0)
		n->o.tries = 5;
	if (n->o.retry_ms == 0)
		n->o.retry_ms = 1000;
	*out = n;
	return 0;
}

static void handle_closed(uv_handle_t *h)
{
	struct dns_notify *n = h->data;

	if (h->type == UV_TIMER)
		n = ((struct notify_target *)h->data)->n;
	n->handles--;
	if (n->closing && !n->closed && n->handles == 0) {
		n->closed = true;
		if (n->close_cb != NULL)
			n->close_cb(n->close_ctx);
	}
}

/* The socket of one address family, opened on first use. */
static int socket_for(struct dns_notify *n, int family)
{
	uv_udp_t *u = family == AF_INET6 ? &n->sock6 : &n->sock4;
	bool *has = family == AF_INET6 ? &n->has6 : &n->has4;
	struct sockaddr_storage any;
	int e;

	if (*has)
		return 0;
	if (dns_addr_parse(family == AF_INET6 ? "[::]:0" : "0.0.0.0:0", 0, &any) != 0)
		return DNS_EINVAL;
	if (uv_udp_init(n->loop, u) != 0)
		return DNS_EIO;
	u->data = n;
	*has = true;
	n->handles++;
	e = uv_udp_bind(u, (struct sockaddr *)&any, family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
	if (e == 0)
		e = uv_udp_recv_start(u, udp_alloc, udp_recv);
	if (e != 0) {
		logf_(n, DNS_LOG_ERROR, "NOTIFY socket: %s", uv_strerror(e));
		*has = false;
		uv_close((uv_handle_t *)u, handle_closed);
		return DNS_EIO;
	}
	return 0;
}

int dns_notify_add_target(struct dns_notify *n, const char *addr, const char *key)
{
	struct notify_target *t = NULL, **v;
	int r;

	if (n->closing)
		return DNS_ESTATE;
	t = calloc(1, sizeof(*t));
	if (t == NULL)
		return DNS_ENOMEM;
	t->n = n;
	r = DNS_EINVAL;
	if (dns_addr_parse(addr, 53, &t->addr) != 0)
		goto fail;
	if (key != NULL && (t->key = dns_keyring_find(n->o.keys, key)) == NULL)
		goto fail;
	dns_addr_format((struct sockaddr *)&t->addr, t->addr_s, sizeof(t->addr_s));
	if ((r = socket_for(n, t->addr.ss_family)) != 0)
		goto fail;
	v = realloc(n->t, (n->nt + 1) * sizeof(*v));
	if (v == NULL) {
		r = DNS_ENOMEM;
		goto fail;
	}
	n->t = v;
	uv_timer_init(n->loop, &t->timer);
	t->timer.data = t;
	n->handles++;
	n->t[n->nt++] = t;
	return 0;
fail:
	free(t);
	return r;
}

void dns_notify_set_zone(struct dns_notify *n, const struct zone *z)
{
	n->o.zone = z;
}

size_t dns_notify_pending(const struct dns_notify *n)
{
	size_t k = 0;

	for (size_t i = 0; i < n->nt; i++)
		k += n->t[i]->pending;
	return k;
}

void dns_notify_stats_get(const struct dns_notify *n, struct dns_notify_stats *st)
{
	*st = n->st;
}

void dns_notify_close(struct dns_notify *n, void (*cb)(void *ctx), void *ctx)
{
	if (n->closing)
		return;
	n->closing = true;
	n->close_cb = cb;
	n->close_ctx = ctx;
	for (size_t i = 0; i < n->nt; i++) {
		target_stop(n->t[i]);
		uv_close((uv_handle_t *)&n->t[i]->timer, handle_closed);
	}
	if (n->has4)
		uv_close((uv_handle_t *)&n->sock4, handle_closed);
	if (n->has6)
		uv_close((uv_handle_t *)&n->sock6, handle_closed);
	if (n->handles == 0 && !n->closed) {
		n->closed = true;
		if (cb != NULL)
			cb(ctx);
	}
}

void dns_notify_free(struct dns_notify *n)
{
	if (n == NULL)
		return;
	for (size_t i = 0; i < n->nt; i++) {
		target_stop(n->t[i]);
		free(n->t[i]);
	}
	free(n->t);
	free(n);
}
