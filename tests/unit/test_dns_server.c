/*
 * Tests of the DNS listener and the NOTIFY sender on a real libuv loop
 * (signer/dns_server.h, signer/dns_notify.h). The loop runs in a thread of
 * its own; the test thread is a client with ordinary blocking sockets and
 * touches the server, the notifier and the zone only through run_on_loop().
 * Checked: UDP and TCP answers, pipelined TCP queries answered in order,
 * backpressure (a stalled AXFR reader stops the producer while UDP is still
 * answered), an AXFR that completes although the zone changes, and one
 * abandoned when the journal cannot bridge the change, the connection limit,
 * the idle timeout, NOTIFY retries until a TSIG-signed acknowledgement,
 * giving up, and every handle closed at the end (uv_loop_close succeeds).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>
#include <uv.h>

#include "signer/dns_acl.h"
#include "signer/dns_journal.h"
#include "signer/dns_notify.h"
#include "signer/dns_server.h"
#include "signer/dns_tsig.h"
#include "test_dns_support.h"
#include "zonesigner/zone.h"
#include "zonesigner/zone_ldns.h"

#define KEY "bm90aWZ5LWtleS1mb3ItdGhlLXNlcnZlci10ZXN0cyE="

struct fix {
	uv_loop_t loop;
	uv_async_t async;
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	void (*fn)(struct fix *, void *);
	void *arg;
	bool done;

	struct tds_zone tz;
	struct dns_journal journal;
	struct dns_acl *acl;
	struct dns_keyring *keys;
	struct dns_server *srv;
	struct dns_notify *notify;
	uint16_t port;
	int closed;
};

/* ---- Running code on the loop thread ---- */

static void on_async(uv_async_t *h)
{
	struct fix *f = h->data;

	pthread_mutex_lock(&f->mu);
	if (f->fn != NULL) {
		f->fn(f, f->arg);
		f->fn = NULL;
		f->done = true;
		pthread_cond_signal(&f->cv);
	}
	pthread_mutex_unlock(&f->mu);
}

static void run_on_loop(struct fix *f, void (*fn)(struct fix *, void *), void *arg)
{
	pthread_mutex_lock(&f->mu);
	f->fn = fn;
	f->arg = arg;
	f->done = false;
	uv_async_send(&f->async);
	while (!f->done)
		pthread_cond_wait(&f->cv, &f->mu);
	pthread_mutex_unlock(&f->mu);
}

static void *loop_main(void *arg)
{
	struct fix *f = arg;

	uv_run(&f->loop, UV_RUN_DEFAULT);
	return NULL;
}

static void closed_cb(void *ctx)
{
	struct fix *f = ctx;

	f->closed++;
}

static void do_close(struct fix *f, void *arg)
{
	(void)arg;
	dns_server_close(f->srv, closed_cb, f);
	if (f->notify != NULL)
		dns_notify_close(f->notify, closed_cb, f);
	uv_close((uv_handle_t *)&f->async, NULL);
}

static void start(struct fix *f, size_t devices, const struct dns_server_opts *extra)
{
	struct dns_server_opts o = { 0 };
	struct sockaddr_storage ss;

	if (extra != NULL)
		o = *extra;
	assert_int_equal(tds_zone_init(&f->tz, NULL, devices), 0);
	f->journal = dns_journal_mem_ops(f->tz.journal);
	assert_int_equal(dns_acl_new(&f->acl), 0);
	assert_int_equal(dns_acl_add(f->acl, "127.0.0.1", NULL), 0);
	assert_int_equal(dns_keyring_new(&f->keys), 0);
	assert_int_equal(dns_keyring_add(f->keys, "notify-key", "hmac-sha256", KEY), 0);
	o.env.zone = f->tz.z;
	o.env.journal = &f->journal;
	o.env.acl = f->acl;
	o.env.keys = f->keys;
	assert_int_equal(uv_loop_init(&f->loop), 0);
	assert_int_equal(dns_server_new(&f->loop, &o, &f->srv), 0);
	assert_int_equal(dns_server_listen(f->srv, "127.0.0.1:0"), 0);
	assert_int_equal(dns_server_naddrs(f->srv), 1);
	assert_int_equal(dns_server_addr(f->srv, 0, &ss), 0);
	f->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	assert_int_not_equal(f->port, 0);
	assert_int_equal(uv_async_init(&f->loop, &f->async, on_async), 0);
	f->async.data = f;
	pthread_mutex_init(&f->mu, NULL);
	pthread_cond_init(&f->cv, NULL);
	assert_int_equal(pthread_create(&f->thread, NULL, loop_main, f), 0);
}

static int setup(void **state)
{
	struct fix *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fix *f = *state;

	run_on_loop(f, do_close, NULL);
	assert_int_equal(pthread_join(f->thread, NULL), 0);
	/* Every handle was closed: the loop closes cleanly. */
	assert_int_equal(f->closed, f->notify != NULL ? 2 : 1);
	assert_int_equal(uv_loop_close(&f->loop), 0);
	dns_server_free(f->srv);
	dns_notify_free(f->notify);
	dns_acl_free(f->acl);
	dns_keyring_free(f->keys);
	tds_zone_free(&f->tz);
	pthread_mutex_destroy(&f->mu);
	pthread_cond_destroy(&f->cv);
	free(f);
	return 0;
}

static void get_stats(struct fix *f, void *arg)
{
	dns_server_stats_get(f->srv, arg);
}

static struct dns_server_stats stats(struct fix *f)
{
	struct dns_server_stats st;

	run_on_loop(f, get_stats, &st);
	return st;
}

/* ---- A blocking client ---- */

static int sock_to(struct fix *f, int type, int rcvbuf)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(f->port) };
	struct timeval tv = { .tv_sec = 20 };
	int s = socket(AF_INET, type, 0);

	assert_true(s >= 0);
	if (rcvbuf > 0)
		assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf)), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(connect(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	return s;
}

static size_t query_wire(const char *name, ldns_rr_type t, uint16_t id, uint8_t *out)
{
	ldns_pkt *q = NULL;
	uint8_t *w = NULL;
	size_t wl;

	assert_int_equal(ldns_pkt_query_new_frm_str(&q, name, t, LDNS_RR_CLASS_IN, 0),
			 LDNS_STATUS_OK);
	ldns_pkt_set_id(q, id);
	assert_int_equal(ldns_pkt2wire(&w, q, &wl), LDNS_STATUS_OK);
	memcpy(out, w, wl);
	free(w);
	ldns_pkt_free(q);
	return wl;
}

static void tcp_send_query(int s, const char *name, ldns_rr_type t, uint16_t id)
{
	uint8_t buf[600];
	size_t l = query_wire(name, t, id, buf + 2);

	buf[0] = (uint8_t)(l >> 8);
	buf[1] = (uint8_t)l;
	assert_int_equal(send(s, buf, l + 2, 0), (ssize_t)(l + 2));
}

static bool read_full(int s, uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t r = recv(s, p, n, 0);
		if (r <= 0)
			return false;
		p += r;
		n -= (size_t)r;
	}
	return true;
}

/* One TCP response, parsed; NULL if the connection closed. */
static ldns_pkt *tcp_read(int s)
{
	uint8_t hdr[2], *buf;
	size_t len;
	ldns_pkt *p = NULL;

	if (!read_full(s, hdr, 2))
		return NULL;
	len = (size_t)hdr[0] << 8 | hdr[1];
	buf = malloc(len);
	assert_non_null(buf);
	assert_true(read_full(s, buf, len));
	assert_int_equal(ldns_wire2pkt(&p, buf, len), LDNS_STATUS_OK);
	free(buf);
	return p;
}

static ldns_pkt *udp_ask(struct fix *f, const char *name, ldns_rr_type t, uint16_t id)
{
	int s = sock_to(f, SOCK_DGRAM, 0);
	uint8_t buf[4096];
	size_t l = query_wire(name, t, id, buf);
	ssize_t n;
	ldns_pkt *p = NULL;

	assert_int_equal(send(s, buf, l, 0), (ssize_t)l);
	n = recv(s, buf, sizeof(buf), 0);
	assert_true(n > 0);
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)n), LDNS_STATUS_OK);
	close(s);
	return p;
}

static uint32_t soa_serial_of(const ldns_pkt *p)
{
	const ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(p), 0);

	assert_non_null(rr);
	assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_SOA);
	return ldns_rdf2native_int32(ldns_rr_rdf(rr, 2));
}

/* Read an AXFR to its end; returns the RR count, or 0 if the connection
 * closed before the final SOA. */
static size_t read_axfr(int s, uint16_t id)
{
	size_t rrs = 0;
	ldns_pkt *p;

	while ((p = tcp_read(s)) != NULL) {
		const ldns_rr_list *an = ldns_pkt_answer(p);
		size_t n = ldns_rr_list_rr_count(an);
		assert_int_equal(ldns_pkt_id(p), id);
		rrs += n;
		if (rrs > 1 && ldns_rr_get_type(ldns_rr_list_rr(an, n - 1)) == LDNS_RR_TYPE_SOA) {
			ldns_pkt_free(p);
			return rrs;
		}
		ldns_pkt_free(p);
	}
	return 0;
}

static void sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* ---- Tests ---- */

static void test_udp_tcp(void **state)
{
	struct fix *f = *state;
	ldns_pkt *p;
	int s;

	start(f, 20, NULL);
	p = udp_ask(f, "iotregistry.test.", LDNS_RR_TYPE_SOA, 77);
	assert_int_equal(ldns_pkt_id(p), 77);
	assert_int_equal(soa_serial_of(p), zone_serial(f->tz.z));
	ldns_pkt_free(p);

	/* Three queries in one segment: three answers, in order. */
	s = sock_to(f, SOCK_STREAM, 0);
	uint8_t buf[2048];
	size_t off = 0;
	const struct { const char *n; ldns_rr_type t; } q[3] = {
		{ "iotregistry.test.", LDNS_RR_TYPE_SOA },
		{ "iotregistry.test.", LDNS_RR_TYPE_AXFR },
		{ "iotregistry.test.", LDNS_RR_TYPE_DNSKEY },
	};
	for (int i = 0; i < 3; i++) {
		size_t l = query_wire(q[i].n, q[i].t, (uint16_t)(100 + i), buf + off + 2);
		buf[off] = (uint8_t)(l >> 8);
		buf[off + 1] = (uint8_t)l;
		off += l + 2;
	}
	assert_int_equal(send(s, buf, off, 0), (ssize_t)off);
	p = tcp_read(s);
	assert_non_null(p);
	assert_int_equal(ldns_pkt_id(p), 100);
	ldns_pkt_free(p);
	assert_int_equal(read_axfr(s, 101), 9 + 20 * 4 + 1);
	p = tcp_read(s);
	assert_non_null(p);
	assert_int_equal(ldns_pkt_id(p), 102);
	assert_int_equal(ldns_pkt_ancount(p), 2);
	ldns_pkt_free(p);
	close(s);

	struct dns_server_stats st = stats(f);
	assert_int_equal(st.udp_msgs, 1);
	assert_int_equal(st.tcp_msgs, 3);
	assert_int_equal(st.axfr, 1);
}

static void test_backpressure(void **state)
{
	struct fix *f = *state;
	struct dns_server_opts o = { 0 };
	struct dns_server_stats a, b;
	ldns_pkt *p;
	int s;

	/* About 7 MB of AXFR in 4 KB messages: more than the socket buffers. */
	o.env.msg_size = 4096;
	start(f, 20000, &o);
	s = sock_to(f, SOCK_STREAM, 4096);
	tcp_send_query(s, "iotregistry.test.", LDNS_RR_TYPE_AXFR, 9);
	/* The client reads nothing: production stalls (wait for it, however
	 * slow the build) short of the end... */
	b = stats(f);
	for (int i = 0; i < 100; i++) {
		sleep_ms(300);
		a = b;
		b = stats(f);
		if (a.tcp_out > 0 && a.tcp_out == b.tcp_out)
			break;
	}
	assert_true(a.tcp_out > 0);
	assert_int_equal(a.tcp_out, b.tcp_out);
	assert_int_equal(b.axfr, 0);
	/* ...and the loop is free: UDP is answered meanwhile. */
	p = udp_ask(f, "iotregistry.test.", LDNS_RR_TYPE_SOA, 1);
	assert_int_equal(soa_serial_of(p), zone_serial(f->tz.z));
	ldns_pkt_free(p);
	/* Reading resumes the transfer, which completes. */
	assert_int_equal(read_axfr(s, 9), 9 + 20000 * 4 + 1);
	close(s);
	b = stats(f);
	assert_int_equal(b.axfr, 1);
	assert_true(b.tcp_out > a.tcp_out);
}

static void add_one(struct fix *f, void *arg)
{
	(void)arg;
	assert_int_equal(tds_zone_add(&f->tz, 1), 0);
}

static void add_two_forget(struct fix *f, void *arg)
{
	(void)arg;
	assert_int_equal(tds_zone_add(&f->tz, 1), 0);
	assert_int_equal(tds_zone_remove(&f->tz, 7), 0);
	dns_journal_mem_reset(f->tz.journal);
}

static void test_axfr_across_changes(void **state)
{
	struct fix *f = *state;
	struct dns_server_opts o = { 0 };
	int s;

	o.env.msg_size = 4096;
	start(f, 20000, &o);
	/* The zone changes while a client reads slowly: the transfer still
	 * completes, with the version it started with. */
	s = sock_to(f, SOCK_STREAM, 4096);
	tcp_send_query(s, "iotregistry.test.", LDNS_RR_TYPE_AXFR, 9);
	sleep_ms(300);
	run_on_loop(f, add_one, NULL);
	assert_int_equal(read_axfr(s, 9), 9 + 20000 * 4 + 1);
	close(s);
	assert_int_equal(stats(f).axfr, 1);
	/* When the journal cannot bridge the change, the connection ends
	 * before the final SOA. */
	s = sock_to(f, SOCK_STREAM, 4096);
	tcp_send_query(s, "iotregistry.test.", LDNS_RR_TYPE_AXFR, 10);
	sleep_ms(300);
	run_on_loop(f, add_two_forget, NULL);
	assert_int_equal(read_axfr(s, 10), 0);
	close(s);
	assert_int_equal(stats(f).aborted, 1);
	assert_int_equal(stats(f).axfr, 1);
}

static void test_limits(void **state)
{
	struct fix *f = *state;
	struct dns_server_opts o = { 0 };
	uint8_t b;
	int s1, s2, s3;
	ldns_pkt *p;

	o.max_tcp = 2;
	o.tcp_idle_ms = 300;
	start(f, 5, &o);
	s1 = sock_to(f, SOCK_STREAM, 0);
	s2 = sock_to(f, SOCK_STREAM, 0);
	sleep_ms(100);
	s3 = sock_to(f, SOCK_STREAM, 0);
	/* Over the limit: closed at once. */
	assert_int_equal(recv(s3, &b, 1, 0), 0);
	assert_int_equal(stats(f).tcp_rejected, 1);
	/* A connection in use answers; then idle ones are closed. */
	tcp_send_query(s1, "iotregistry.test.", LDNS_RR_TYPE_SOA, 5);
	p = tcp_read(s1);
	assert_non_null(p);
	ldns_pkt_free(p);
	assert_int_equal(recv(s1, &b, 1, 0), 0);
	assert_int_equal(recv(s2, &b, 1, 0), 0);
	/* A length prefix of a message that never comes: closed too. */
	close(s3);
	s3 = sock_to(f, SOCK_STREAM, 0);
	assert_int_equal(send(s3, "\x01\x00\x12", 3, 0), 3);
	assert_int_equal(recv(s3, &b, 1, 0), 0);
	close(s1);
	close(s2);
	close(s3);
}

/* ---- NOTIFY ---- */

struct notify_arg {
	const char *addr;
	const char *key;
	int r;
	struct dns_notify_stats st;
	size_t pending;
};

static void notify_setup(struct fix *f, void *arg)
{
	struct notify_arg *na = arg;
	struct dns_notify_opts o = { 0 };

	if (f->notify == NULL) {
		o.zone = f->tz.z;
		o.keys = f->keys;
		o.tries = 3;
		o.retry_ms = 100;
		assert_int_equal(dns_notify_new(&f->loop, &o, &f->notify), 0);
	}
	na->r = dns_notify_add_target(f->notify, na->addr, na->key);
}

static void notify_send(struct fix *f, void *arg)
{
	(void)arg;
	assert_int_equal(dns_notify_send(f->notify), 0);
}

static void notify_stats(struct fix *f, void *arg)
{
	struct notify_arg *na = arg;

	dns_notify_stats_get(f->notify, &na->st);
	na->pending = dns_notify_pending(f->notify);
}

/* A fake secondary: a UDP socket on a free loopback port. */
static int fake_secondary(uint16_t *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t sl = sizeof(sin);
	struct timeval tv = { .tv_sec = 10 };
	int s = socket(AF_INET, SOCK_DGRAM, 0);

	assert_true(s >= 0);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(s, (struct sockaddr *)&sin, sizeof(sin)), 0);
	assert_int_equal(getsockname(s, (struct sockaddr *)&sin, &sl), 0);
	assert_int_equal(setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)), 0);
	*port = ntohs(sin.sin_port);
	return s;
}

static ldns_pkt *recv_notify(int s, struct sockaddr_in *from, uint8_t *buf, size_t *len)
{
	socklen_t fl = sizeof(*from);
	ssize_t n = recvfrom(s, buf, 4096, 0, (struct sockaddr *)from, &fl);
	ldns_pkt *p = NULL;

	assert_true(n > 0);
	*len = (size_t)n;
	assert_int_equal(ldns_wire2pkt(&p, buf, (size_t)n), LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt_get_opcode(p), LDNS_PACKET_NOTIFY);
	assert_true(ldns_pkt_aa(p));
	assert_false(ldns_pkt_qr(p));
	return p;
}

static void test_notify(void **state)
{
	struct fix *f = *state;
	struct notify_arg na = { 0 };
	struct sockaddr_in from;
	uint8_t buf[4096], *w = NULL;
	size_t len, wl;
	uint16_t port, deaf_port;
	char addr[64];
	ldns_pkt *n1, *n2, *resp;
	int s, deaf;

	start(f, 5, NULL);
	s = fake_secondary(&port);
	deaf = fake_secondary(&deaf_port);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", port);
	na.addr = addr;
	na.key = "notify-key";
	run_on_loop(f, notify_setup, &na);
	assert_int_equal(na.r, 0);
	snprintf(addr, sizeof(addr), "127.0.0.1:%u", deaf_port);
	na.key = NULL;
	run_on_loop(f, notify_setup, &na);
	assert_int_equal(na.r, 0);
	na.addr = "127.0.0.1:53";
	na.key = "no-such-key";
	run_on_loop(f, notify_setup, &na);
	assert_int_equal(na.r, DNS_EINVAL);
	na.key = NULL;
	na.addr = "not an address";
	run_on_loop(f, notify_setup, &na);
	assert_int_equal(na.r, DNS_EINVAL);

	run_on_loop(f, notify_send, NULL);
	/* The first NOTIFY: question SOA of the zone, the SOA as a hint, signed. */
	n1 = recv_notify(s, &from, buf, &len);
	assert_int_equal(ldns_pkt_qdcount(n1), 1);
	assert_int_equal(ldns_rr_get_type(ldns_rr_list_rr(ldns_pkt_question(n1), 0)),
			 LDNS_RR_TYPE_SOA);
	assert_int_equal(soa_serial_of(n1), zone_serial(f->tz.z));
	assert_true(ldns_pkt_tsig_verify(n1, buf, len, "notify-key.", KEY, NULL));
	/* Unanswered, it comes again with the same ID. */
	n2 = recv_notify(s, &from, buf, &len);
	assert_int_equal(ldns_pkt_id(n2), ldns_pkt_id(n1));
	/* A reply with a wrong MAC is ignored; the retries go on. */
	resp = ldns_pkt_clone(n2);
	ldns_rr_free(ldns_pkt_tsig(resp));
	ldns_pkt_set_tsig(resp, NULL);
	ldns_pkt_set_qr(resp, true);
	assert_int_equal(ldns_pkt_tsig_sign(resp, "notify-key.",
					    "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXkh", 300,
					    "hmac-sha256.", ldns_rr_rdf(ldns_pkt_tsig(n2), 3)),
			 LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt2wire(&w, resp, &wl), LDNS_STATUS_OK);
	assert_int_equal(sendto(s, w, wl, 0, (struct sockaddr *)&from, sizeof(from)), (ssize_t)wl);
	free(w);
	ldns_pkt_free(resp);
	ldns_pkt_free(n2);
	n2 = recv_notify(s, &from, buf, &len);
	assert_int_equal(ldns_pkt_id(n2), ldns_pkt_id(n1));
	/* A correctly signed acknowledgement ends them. */
	resp = ldns_pkt_new();
	ldns_pkt_set_id(resp, ldns_pkt_id(n2));
	ldns_pkt_set_qr(resp, true);
	ldns_pkt_set_aa(resp, true);
	ldns_pkt_set_opcode(resp, LDNS_PACKET_NOTIFY);
	ldns_pkt_push_rr(resp, LDNS_SECTION_QUESTION,
			 ldns_rr_clone(ldns_rr_list_rr(ldns_pkt_question(n2), 0)));
	assert_int_equal(ldns_pkt_tsig_sign(resp, "notify-key.", KEY, 300, "hmac-sha256.",
					    ldns_rr_rdf(ldns_pkt_tsig(n2), 3)),
			 LDNS_STATUS_OK);
	assert_int_equal(ldns_pkt2wire(&w, resp, &wl), LDNS_STATUS_OK);
	assert_int_equal(sendto(s, w, wl, 0, (struct sockaddr *)&from, sizeof(from)), (ssize_t)wl);
	free(w);
	ldns_pkt_free(resp);
	ldns_pkt_free(n1);
	ldns_pkt_free(n2);

	/* The deaf target gets 3 tries, then it is given up; the other acked. */
	for (int i = 0; i < 3; i++) {
		n1 = recv_notify(deaf, &from, buf, &len);
		assert_null(ldns_pkt_tsig(n1));
		ldns_pkt_free(n1);
	}
	for (int i = 0; i < 100; i++) {
		run_on_loop(f, notify_stats, &na);
		if (na.pending == 0)
			break;
		sleep_ms(50);
	}
	assert_int_equal(na.pending, 0);
	assert_int_equal(na.st.acked, 1);
	assert_int_equal(na.st.failed, 1);
	assert_int_equal(na.st.sent, 3 + 3);
	/* No stray datagrams after that. */
	struct timeval tv = { .tv_usec = 300000 };
	setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	assert_true(recv(s, buf, sizeof(buf), 0) < 0);
	close(s);
	close(deaf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_udp_tcp, setup, teardown),
		cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
		cmocka_unit_test_setup_teardown(test_axfr_across_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_notify, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
