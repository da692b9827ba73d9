/*
 * The DNS listener on libuv (see dns_server.h). UDP queries are answered in
 * the receive callback with one non-blocking send (a full socket buffer
 * drops the answer, as UDP may). TCP connections carry length-prefixed
 * messages; each connection answers one query at a time, writing one
 * message and producing the next from its write callback.
 */
#include "signer/dns_server.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "signer/dns_acl.h"
#include "signer/dns_tsig.h"
#include "zonesigner/zone.h"

#define DNS_TCP_BUF (2 + 65535)   /* one whole length-prefixed message */
#define DNS_LISTEN_TRIES 16       /* port 0: tries to find a port free for both */

struct dns_server;

struct dns_listener {
	struct dns_server *srv;
	uv_udp_t udp;
	uv_tcp_t tcp;
	struct sockaddr_storage addr;
	bool active;
};

struct dns_conn {
	struct dns_server *srv;
	struct dns_conn *prev, *next;
	uv_tcp_t tcp;
	uv_timer_t timer;
	int handles;             /* open uv handles of this connection */
	bool closing, reading, writing;
	struct sockaddr_storage peer;
	char peer_s[64];
	uint8_t *in;             /* received bytes not yet consumed */
	size_t inlen;
	struct dns_answer *ans;  /* the answer being written */
};

struct dns_write {
	uv_write_t req;
	struct dns_conn *c;
	uv_buf_t buf;
	uint8_t data[];
};

struct dns_server {
	uv_loop_t *loop;
	struct dns_server_opts o;
	struct dns_listener **ls;
	size_t nls;
	struct dns_conn *conns;
	size_t nconns;
	size_t handles;          /* open listener handles */
	bool closing, closed;
	void (*close_cb)(void *ctx);
	void *close_ctx;
	struct dns_server_stats st;
	uint8_t udpbuf[65536];
};

static void logf_(struct dns_server *s, enum dns_log_level lvl, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void logf_(struct dns_server *s, enum dns_log_level lvl, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	if (s->o.log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	s->o.log(s->o.log_ctx, lvl, buf);
}

static void check_closed(struct dns_server *s)
{
	if (s->closing && !s->closed && s->handles == 0 && s->conns == NULL) {
		s->closed = true;
		if (s->close_cb != NULL)
			s->close_cb(s->close_ctx);
	}
}

/* Counters and the log line of a finished (or abandoned) answer. */
static void account(struct dns_server *s, const struct dns_answer *a, const char *peer,
		    bool complete)
{
	const struct dns_answer_info *i = dns_answer_info(a);

	if (i->tsig_error > 0) {
		s->st.tsig_failures++;
		logf_(s, DNS_LOG_NOTICE, "TSIG error %d from %s for %s", i->tsig_error, peer,
		      i->qname);
	}
	switch (i->kind) {
	case DNS_ANSWER_AXFR:
	case DNS_ANSWER_IXFR:
		if (!complete) {
			logf_(s, DNS_LOG_NOTICE, "transfer of %s to %s abandoned after %zu RRs",
			      i->qname, peer, i->rrs);
			break;
		}
		if (i->messages == 0 || i->rrs == 0)
			break;
		if (i->kind == DNS_ANSWER_IXFR && !i->fallback)
			s->st.ixfr++;
		else
			s->st.axfr++;
		if (i->fallback)
			s->st.ixfr_fallback++;
		logf_(s, DNS_LOG_INFO, "%s%s of %s serial %u to %s%s: %zu RRs in %zu messages%s",
		      i->kind == DNS_ANSWER_IXFR && !i->fallback ? "IXFR" : "AXFR",
		      i->fallback ? " (IXFR fallback)" : "", i->qname, i->serial, peer,
		      i->tsig ? " (TSIG)" : "", i->rrs, i->messages,
		      i->followed ? " (the zone changed meanwhile)" : "");
		break;
	case DNS_ANSWER_REFUSED_XFR:
		s->st.refused_xfr++;
		logf_(s, DNS_LOG_NOTICE, "transfer of %s refused to %s%s", i->qname, peer,
		      i->tsig ? " (TSIG)" : "");
		break;
	default:
		break;
	}
}

/* ---- UDP ---- */

static void udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dns_listener *l = h->data;

	(void)suggested;
	buf->base = (char *)l->srv->udpbuf;
	buf->len = sizeof(l->srv->udpbuf);
}

static void udp_recv(uv_udp_t *h, ssize_t n, const uv_buf_t *buf, const struct sockaddr *addr,
		     unsigned flags)
{
	struct dns_listener *l = h->data;
	struct dns_server *s = l->srv;
	struct dns_answer *a = NULL;
	uint8_t *msg = NULL;
	size_t len = 0;
	char peer[64];
	int r;

	if (n < 0)
		logf_(s, DNS_LOG_WARNING, "UDP receive: %s", uv_strerror((int)n));
	if (n <= 0 || addr == NULL || (flags & UV_UDP_PARTIAL) || s->closing)
		return;
	s->st.udp_msgs++;
	dns_addr_format(addr, peer, sizeof(peer));
	r = dns_answer_new(&s->o.env, (const uint8_t *)buf->base, (size_t)n, addr, false,
			   (int64_t)time(NULL), &a);
	if (r != 0) {
		if (r != DNS_EFORMAT)
			logf_(s, DNS_LOG_WARNING, "UDP query from %s: %s", peer, dns_strerror(r));
		return;
	}
	r = dns_answer_next(a, &msg, &len);
	if (r != 0) {
		logf_(s, DNS_LOG_WARNING, "UDP answer to %s: %s", peer, dns_strerror(r));
	} else if (msg != NULL) {
		uv_buf_t b = uv_buf_init((char *)msg, (unsigned)len);
		int sr = uv_udp_try_send(h, &b, 1, addr);
		if (sr < 0)
			logf_(s, DNS_LOG_DEBUG, "UDP send to %s: %s", peer, uv_strerror(sr));
	}
	account(s, a, peer, true);
	free(msg);
	dns_answer_free(a);
}

/* ---- TCP connections ---- */

static void conn_process(struct dns_conn *c);

static void conn_handle_closed(uv_handle_t *h)
{
	struct dns_conn *c = h->data;
	struct dns_server *s = c->srv;

	if (--c->handles > 0)
		return;
	if (c->prev != NULL)
		c->prev->next = c->next;
	else if (s->conns == c)
		s->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	if (c->ans != NULL)
		dns_answer_free(c->ans);
	free(c->in);
	free(c);
	s->nconns--;
	check_closed(s);
}

static void conn_close(struct dns_conn *c)
{
	if (c->closing)
		return;
	c->closing = true;
	if (c->ans != NULL) {
		c->srv->st.aborted++;
		account(c->srv, c->ans, c->peer_s, false);
	}
	uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
	if (c->handles > 1)
		uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void conn_idle(uv_timer_t *t)
{
	struct dns_conn *c = t->data;

	logf_(c->srv, DNS_LOG_INFO, "TCP connection from %s idle or stalled: closed", c->peer_s);
	conn_close(c);
}

static void tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct dns_conn *c = h->data;

	(void)suggested;
	buf->base = (char *)c->in + c->inlen;
	buf->len = DNS_TCP_BUF - c->inlen;
}

static void conn_send(struct dns_conn *c);

static void write_done(uv_write_t *req, int status)
{
	struct dns_write *w = (struct dns_write *)req;
	struct dns_conn *c = w->c;

	free(w);
	c->writing = false;
	if (c->closing)
		return;
	if (status < 0) {
		logf_(c->srv, DNS_LOG_INFO, "TCP write to %s: %s", c->peer_s, uv_strerror(status));
		conn_close(c);
		return;
	}
	uv_timer_again(&c->timer);
	conn_send(c);
}

/* Write the next message of the current answer, or finish it. */
static void conn_send(struct dns_conn *c)
{
	struct dns_server *s = c->srv;
	struct dns_write *w;
	uint8_t *msg = NULL;
	size_t len = 0;
	int r;

	if (c->closing || c->writing || c->ans == NULL)
		return;
	r = dns_answer_next(c->ans, &msg, &len);
	if (r != 0) {
		logf_(s, r == DNS_ECHANGED ? DNS_LOG_NOTICE : DNS_LOG_WARNING,
		      "answer to %s abandoned: %s", c->peer_s, dns_strerror(r));
		conn_close(c);
		return;
	}
	if (msg == NULL) {
		account(s, c->ans, c->peer_s, true);
		dns_answer_free(c->ans);
		c->ans = NULL;
		conn_process(c);
		return;
	}
	w = malloc(sizeof(*w) + 2 + len);
	if (w == NULL) {
		free(msg);
		conn_close(c);
		return;
	}
	w->c = c;
	w->data[0] = (uint8_t)(len >> 8);
	w->data[1] = (uint8_t)len;
	memcpy(w->data + 2, msg, len);
	free(msg);
	w->buf = uv_buf_init((char *)w->data, (unsigned)(len + 2));
	r = uv_write(&w->req, (uv_stream_t *)&c->tcp, &w->buf, 1, write_done);
	if (r != 0) {
		free(w);
		conn_close(c);
		return;
	}
	c->writing = true;
	s->st.tcp_out++;
}

static void tcp_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf);

/* Start answering every complete query received, one at a time. */
static void conn_process(struct dns_conn *c)
{
	struct dns_server *s = c->srv;
	size_t mlen;
	int r;

	while (!c->closing && c->ans == NULL && c->inlen >= 2) {
		mlen = (size_t)c->in[0] << 8 | c->in[1];
		if (c->inlen < 2 + mlen)
			break;
		s->st.tcp_msgs++;
		r = dns_answer_new(&s->o.env, c->in + 2, mlen, (struct sockaddr *)&c->peer, true,
				   (int64_t)time(NULL), &c->ans);
		memmove(c->in, c->in + 2 + mlen, c->inlen - 2 - mlen);
		c->inlen -= 2 + mlen;
		if (r != 0) {
			/* Not a query (or no memory): the stream cannot be trusted. */
			logf_(s, DNS_LOG_INFO, "TCP message from %s: %s", c->peer_s,
			      dns_strerror(r));
			conn_close(c);
			return;
		}
		conn_send(c);
	}
	if (c->closing)
		return;
	/* Backpressure: read no further query while an answer is being sent. */
	if (c->ans != NULL && c->reading) {
		uv_read_stop((uv_stream_t *)&c->tcp);
		c->reading = false;
	} else if (c->ans == NULL && !c->reading) {
		if (uv_read_start((uv_stream_t *)&c->tcp, tcp_alloc, tcp_read) != 0) {
			conn_close(c);
			return;
		}
		c->reading = true;
	}
}

static void tcp_read(uv_stream_t *h, ssize_t n, const uv_buf_t *buf)
{
	struct dns_conn *c = h->data;

	(void)buf;
	if (n < 0) {
		/* EOF or error; an answer still being written is abandoned. */
		conn_close(c);
		return;
	}
	if (n == 0)
		return;
	c->inlen += (size_t)n;
	uv_timer_again(&c->timer);
	conn_process(c);
}

static void tcp_accept(uv_stream_t *server, int status)
{
	struct dns_listener *l = server->data;
	struct dns_server *s = l->srv;
	struct dns_conn *c;
	int len = (int)sizeof(c->peer);

	if (status < 0) {
		logf_(s, DNS_LOG_WARNING, "TCP accept: %s", uv_strerror(status));
		return;
	}
	c = calloc(1, sizeof(*c));
	if (c == NULL || (c->in = malloc(DNS_TCP_BUF)) == NULL) {
		free(c);
		logf_(s, DNS_LOG_ERROR, "TCP accept: out of memory");
		return;
	}
	c->srv = s;
	c->next = s->conns;
	if (s->conns != NULL)
		s->conns->prev = c;
	s->conns = c;
	s->nconns++;
	uv_tcp_init(s->loop, &c->tcp);
	c->tcp.data = c;
	c->handles = 1;
	if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0) {
		conn_close(c);
		return;
	}
	uv_timer_init(s->loop, &c->timer);
	c->timer.data = c;
	c->handles = 2;
	uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &len);
	dns_addr_format((struct sockaddr *)&c->peer, c->peer_s, sizeof(c->peer_s));
	if (s->nconns > s->o.max_tcp || s->closing) {
		s->st.tcp_rejected++;
		logf_(s, DNS_LOG_NOTICE, "TCP connection from %s refused: %zu open", c->peer_s,
		      s->nconns - 1);
		conn_close(c);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	uv_timer_start(&c->timer, conn_idle, s->o.tcp_idle_ms, s->o.tcp_idle_ms);
	conn_process(c);
}

/* ---- Server ---- */

int dns_server_new(uv_loop_t *loop, const struct dns_server_opts *opts, struct dns_server **out)
{
	struct dns_server *s;

	*out = NULL;
	if (loop == NULL || opts == NULL || opts->env.zone == NULL)
		return DNS_EINVAL;
	s = calloc(1, sizeof(*s));
	if (s == NULL)
		return DNS_ENOMEM;
	s->loop = loop;
	s->o = *opts;
	if (s->o.max_tcp == 0)
		s->o.max_tcp = 64;
	if (s->o.tcp_idle_ms == 0)
		s->o.tcp_idle_ms = 10000;
	*out = s;
	return 0;
}

static void listener_closed(uv_handle_t *h)
{
	struct dns_listener *l = h->data;
	struct dns_server *s = l->srv;

	s->handles--;
	check_closed(s);
}

static void listener_close(struct dns_listener *l)
{
	l->active = false;
	if (!uv_is_closing((uv_handle_t *)&l->udp))
		uv_close((uv_handle_t *)&l->udp, listener_closed);
	if (!uv_is_closing((uv_handle_t *)&l->tcp))
		uv_close((uv_handle_t *)&l->tcp, listener_closed);
}

static uint16_t sa_port(const struct sockaddr_storage *sa)
{
	if (sa->ss_family == AF_INET)
		return ntohs(((const struct sockaddr_in *)sa)->sin_port);
	return ntohs(((const struct sockaddr_in6 *)sa)->sin6_port);
}

/* One attempt: TCP bound and listening first (which fixes the port when 0
 * is asked for), then UDP on the same port. */
static int listen_try(struct dns_server *s, struct dns_listener *l)
{
	bool v6 = l->addr.ss_family == AF_INET6;
	int len = (int)sizeof(l->addr);
	int e;

	e = uv_tcp_bind(&l->tcp, (struct sockaddr *)&l->addr, v6 ? UV_TCP_IPV6ONLY : 0);
	if (e == 0)
		e = uv_listen((uv_stream_t *)&l->tcp, 128, tcp_accept);
	if (e == 0)
		e = uv_tcp_getsockname(&l->tcp, (struct sockaddr *)&l->addr, &len);
	if (e == 0)
		e = uv_udp_bind(&l->udp, (struct sockaddr *)&l->addr, v6 ? UV_UDP_IPV6ONLY : 0);
	if (e == 0)
		e = uv_udp_recv_start(&l->udp, udp_alloc, udp_recv);
	if (e != 0)
		logf_(s, DNS_LOG_DEBUG, "listen attempt failed: %s", uv_strerror(e));
	return e;
}

int dns_server_listen(struct dns_server *s, const char *addr)
{
	struct sockaddr_storage sa;
	struct dns_listener *l = NULL, **v;
	bool any_port;
	int r, e = 0;

	if (s->closing)
		return DNS_ESTATE;
	if (dns_addr_parse(addr, 53, &sa) != 0)
		return DNS_EINVAL;
	any_port = sa_port(&sa) == 0;
	for (int i = 0; i < DNS_LISTEN_TRIES; i++) {
		v = realloc(s->ls, (s->nls + 1) * sizeof(*v));
		if (v == NULL)
			return DNS_ENOMEM;
		s->ls = v;
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			return DNS_ENOMEM;
		l->srv = s;
		l->addr = sa;
		s->ls[s->nls++] = l;
		uv_tcp_init(s->loop, &l->tcp);
		uv_udp_init(s->loop, &l->udp);
		l->tcp.data = l->udp.data = l;
		s->handles += 2;
		e = listen_try(s, l);
		if (e == 0) {
			l->active = true;
			logf_(s, DNS_LOG_INFO, "listening on %s port %u (UDP and TCP)", addr,
			      sa_port(&l->addr));
			return 0;
		}
		listener_close(l);
		if (!any_port || (e != UV_EADDRINUSE && e != UV_EACCES))
			break;
	}
	r = DNS_EIO;
	logf_(s, DNS_LOG_ERROR, "cannot listen on %s: %s", addr, uv_strerror(e));
	return r;
}

size_t dns_server_naddrs(const struct dns_server *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nls; i++)
		n += s->ls[i]->active;
	return n;
}

int dns_server_addr(const struct dns_server *s, size_t i, struct sockaddr_storage *out)
{
	for (size_t k = 0; k < s->nls; k++) {
		if (!s->ls[k]->active)
			continue;
		if (i-- == 0) {
			*out = s->ls[k]->addr;
			return 0;
		}
	}
	return DNS_EINVAL;
}

void dns_server_set_zone(struct dns_server *s, const struct zone *z)
{
	s->o.env.zone = z;
	for (struct dns_conn *c = s->conns; c != NULL; c = c->next)
		if (c->ans != NULL)
			conn_close(c);
}

void dns_server_stats_get(const struct dns_server *s, struct dns_server_stats *st)
{
	*st = s->st;
}

void dns_server_close(struct dns_server *s, void (*cb)(void *ctx), void *ctx)
{
	if (s->closing)
		return;
	s->closing = true;
	s->close_cb = cb;
	s->close_ctx = ctx;
	for (size_t i = 0; i < s->nls; i++)
		if (s->ls[i]->active)
			listener_close(s->ls[i]);
	for (struct dns_conn *c = s->conns; c != NULL; c = c->next)
		conn_close(c);
	check_closed(s);
}

void dns_server_free(struct dns_server *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nls; i++)
		free(s->ls[i]);
	free(s->ls);
	free(s);
}
