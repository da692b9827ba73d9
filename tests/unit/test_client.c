/*
 * Unit tests of libregsign-client against a small fake server (a thread on a
 * Unix socket in a temporary directory) built on the proto codec: every
 * synchronous call, refusals, pipelining with out-of-order replies and
 * backpressure, window limits, large replies, and each kind of failure
 * (connect, malformed reply, unknown id, closed connection, timeout).
 *
 * The fake server answers requests in batches and in reverse order, so the
 * client must match replies by id. The device id steers its misbehaviour.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "signer/client.h"
#include "signer/proto.h"

#define CRL_SIZE (1024 * 1024)

struct fake {
	char dir[64];
	char path[128];
	int lfd;
	pthread_t thread;
};

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static char hexbuf_digit(unsigned v)
{
	return "0123456789abcdef"[v & 15];
}

/*
 * Builds the reply to one request. Returns 0 to go on, 1 to stop replying
 * and close, 2 to reply nothing.
 */
static int fake_answer(const struct proto_request *q, struct buf_writer *w, uint8_t *crl,
		       char *serial, uint8_t *rev)
{
	static const uint8_t ca1[] = "ca-one", ca2[] = "ca-two";
	struct proto_reply p;
	struct proto_bytes dev = q->u.issue.device_id;

	memset(&p, 0, sizeof(p));
	p.type = PROTO_REPLY_OK;
	p.id = q->id;
	p.op = q->op;
	if (q->op == PROTO_OP_ISSUE || q->op == PROTO_OP_REISSUE || q->op == PROTO_OP_REVOKE) {
		if (proto_bytes_eq(dev, "refuse")) {
			proto_error_encode(w, q->id, PROTO_CODE_DENIED, "rule callers[0]: no");
			return 0;
		}
		if (proto_bytes_eq(dev, "garbage")) {
			buf_writer_put_bytes(w, "\0\0\0\1x", 5);
			return 0;
		}
		if (proto_bytes_eq(dev, "close"))
			return 1;
		if (proto_bytes_eq(dev, "silent"))
			return 2;
		if (proto_bytes_eq(dev, "toolarge")) {
			proto_error_encode(w, 0, PROTO_CODE_TOO_LARGE, "frame too large");
			return 1;
		}
		if (proto_bytes_eq(dev, "wrongid"))
			p.id += 1000;
	}
	switch (q->op) {
	case PROTO_OP_HELLO:
		p.u.hello.version = 1;
		p.u.hello.max_frame = PROTO_REQUEST_MAX;
		p.u.hello.server = proto_bytes_str("fake 1");
		break;
	case PROTO_OP_ISSUE:
	case PROTO_OP_REISSUE:
		/* The "certificate" is the CSR; the serial is the id in hex. */
		p.u.cert.cert_der = q->u.issue.csr_der;
		p.u.cert.chain.count = 2;
		p.u.cert.chain.der[0].ptr = ca1;
		p.u.cert.chain.der[0].len = sizeof(ca1) - 1;
		p.u.cert.chain.der[1].ptr = ca2;
		p.u.cert.chain.der[1].len = sizeof(ca2) - 1;
		for (int i = 0; i < 8; i++)
			serial[i] = hexbuf_digit(q->id >> (28 - 4 * i));
		p.u.cert.serial_hex.ptr = (const uint8_t *)serial;
		p.u.cert.serial_hex.len = 8;
		p.u.cert.zone_serial = q->id;
		p.u.cert.index = q->op == PROTO_OP_ISSUE ? (q->u.issue.index ? q->u.issue.index : 1)
							 : q->u.reissue.old_index + 1;
		break;
	case PROTO_OP_REVOKE:
		p.u.revoke.serial_hex = q->u.revoke.serial_hex.len ? q->u.revoke.serial_hex
								   : proto_bytes_str("ab");
		p.u.revoke.revoked_at = 1700000000ULL + q->u.revoke.index;
		p.u.revoke.zone_serial = 5;
		break;
	case PROTO_OP_CRL:
		p.u.crl_der.ptr = crl;
		p.u.crl_der.len = CRL_SIZE;
		break;
	case PROTO_OP_CHAIN:
		p.u.chain.count = 1;
		p.u.chain.der[0].ptr = ca1;
		p.u.chain.der[0].len = sizeof(ca1) - 1;
		break;
	case PROTO_OP_STATUS:
	case PROTO_OP_ZONE_STATUS:
		p.u.json = proto_bytes_str(q->op == PROTO_OP_STATUS ? "{\"ok\":true}"
								    : "{\"zone\":true}");
		break;
	case PROTO_OP_PUBLISH:
	case PROTO_OP_UNPUBLISH:
		p.u.zone_serial = q->u.rr.ttl + 1 + (uint32_t)q->u.rr.rdata.len;
		break;
	case PROTO_OP_IMPORT: {
		/* records: 1000 x seq + the chunk's records; serial: the id when final. */
		struct proto_import_iter it;
		struct proto_import_record rec;

		p.u.import.records = 1000 * q->u.import.seq;
		proto_import_iter_init(&it, q->u.import.records);
		while (proto_import_iter_next(&it, &rec) == 1)
			p.u.import.records++;
		if (q->u.import.flags & PROTO_IMPORT_FINAL)
			p.u.import.zone_serial = q->u.import.import_id;
		break;
	}
	case PROTO_OP_SIGN_RRSET: {
		size_t n = q->u.sign_rrset.rrset_wire.len;

		for (size_t i = 0; i < n; i++)
			rev[i] = q->u.sign_rrset.rrset_wire.ptr[n - 1 - i];
		p.u.rrsig_wire.ptr = rev;
		p.u.rrsig_wire.len = n;
		break;
	}
	}
	return proto_reply_encode(w, &p) == PROTO_OK ? 0 : 1;
}

/* Serves one connection: reads what is there, answers that batch reversed. */
static void *fake_main(void *arg)
{
	struct fake *f = arg;
	uint8_t *in = NULL, *crl = malloc(CRL_SIZE), *rev = malloc(PROTO_REQUEST_MAX);
	size_t len = 0, cap = 1 << 20;
	int fd = accept(f->lfd, NULL, NULL);
	int stop = 0;

	in = malloc(cap);
	if (fd < 0 || in == NULL || crl == NULL || rev == NULL)
		goto out;
	for (size_t i = 0; i < CRL_SIZE; i++)
		crl[i] = (uint8_t)(i * 7);
	while (!stop) {
		size_t off = 0, size, nframes = 0;
		size_t starts[4096];

		/* Collect the complete frames at hand; read only when there
		 * are none (a request may still be on its way). */
		while (nframes < 4096 &&
		       proto_frame_peek(in + off, len - off, PROTO_REQUEST_MAX, &size) == PROTO_OK &&
		       len - off >= size) {
			starts[nframes++] = off;
			off += size;
		}
		if (nframes == 0) {
			ssize_t n = read(fd, in + len, cap - len);

			if (n <= 0)
				break;
			len += (size_t)n;
			continue;
		}
		for (size_t k = nframes; k-- > 0 && !stop;) {
			struct proto_request q;
			struct buf_writer w;
			char serial[8];
			size_t fs;

			proto_frame_peek(in + starts[k], len - starts[k], PROTO_REQUEST_MAX, &fs);
			buf_writer_init(&w, 4u << 20);
			if (proto_request_decode(in + starts[k], fs, PROTO_REQUEST_MAX, &q) != 0 ||
			    fake_answer(&q, &w, crl, serial, rev) == 1)
				stop = 1;
			if (buf_writer_len(&w) > 0 &&
			    write_all(fd, buf_writer_data(&w), buf_writer_len(&w)) != 0)
				stop = 1;
			buf_writer_release(&w);
		}
		memmove(in, in + off, len - off);
		len -= off;
	}
out:
	if (fd >= 0)
		close(fd);
	free(in);
	free(crl);
	free(rev);
	return NULL;
}

static int fake_setup(void **state)
{
	struct fake *f = calloc(1, sizeof(*f));
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	assert_non_null(f);
	strcpy(f->dir, "/tmp/regsign-client-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof(f->path), "%s/s.sock", f->dir);
	strcpy(sa.sun_path, f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	assert_true(f->lfd >= 0);
	assert_int_equal(bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(f->lfd, 4), 0);
	assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
	*state = f;
	return 0;
}

static int fake_teardown(void **state)
{
	struct fake *f = *state;

	struct timespec ts;

	/* The thread ends when the client closes. A failed assertion skips
	 * the test's regsign_client_free(), so do not wait for ever. */
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += 10;
	if (pthread_timedjoin_np(f->thread, NULL, &ts) != 0) {
		pthread_cancel(f->thread);
		pthread_join(f->thread, NULL);
	}
	close(f->lfd);
	unlink(f->path);
	rmdir(f->dir);
	free(f);
	return 0;
}

static regsign_client *connect_fake(struct fake *f, uint32_t window)
{
	regsign_client *c;

	assert_int_equal(regsign_client_new(&c), REGSIGN_CLIENT_OK);
	if (window)
		assert_int_equal(regsign_client_set_window(c, window), REGSIGN_CLIENT_OK);
	regsign_client_set_timeout(c, 20000);
	assert_int_equal(regsign_client_connect(c, f->path), REGSIGN_CLIENT_OK);
	assert_true(regsign_client_fd(c) >= 0);
	return c;
}

static void test_sync_calls(void **state)
{
	static const uint8_t csr[] = { 0x30, 0x00, 0x01, 0x02 };
	static const uint8_t rrset[] = { 1, 2, 3 };
	regsign_client *c = connect_fake(*state, 0);
	struct regsign_reply r;

	assert_int_equal(regsign_client_hello(c, "test", &r), REGSIGN_CLIENT_OK);
	assert_int_equal(r.op, REGSIGN_OP_HELLO);
	assert_int_equal(r.version, 1);
	assert_int_equal(r.max_frame, 262144);
	assert_string_equal(r.server_name, "fake 1");
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_issue(c, "8912230200031010008f", 0, "device", csr,
					      sizeof(csr), &r),
			 REGSIGN_CLIENT_OK);
	assert_int_equal(r.code, REGSIGN_CODE_OK);
	assert_null(r.message);
	assert_int_equal(r.cert.len, sizeof(csr));
	assert_memory_equal(r.cert.data, csr, sizeof(csr));
	assert_int_equal(r.chain_count, 2);
	assert_string_equal((char *)r.chain[1].data, "ca-two");
	assert_int_equal(r.index, 1);
	assert_int_equal(r.zone_serial, r.id);
	assert_int_equal(strlen(r.serial_hex), 8);
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_reissue(c, "89", 4, NULL, csr, sizeof(csr), &r),
			 REGSIGN_CLIENT_OK);
	assert_int_equal(r.op, REGSIGN_OP_REISSUE);
	assert_int_equal(r.index, 5);
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_revoke(c, "89", 3, "0AbC", "keyCompromise", &r),
			 REGSIGN_CLIENT_OK);
	assert_string_equal(r.serial_hex, "0AbC");
	assert_true(r.revoked_at == 1700000003ULL);
	assert_int_equal(r.zone_serial, 5);
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_crl(c, &r), REGSIGN_CLIENT_OK);
	assert_int_equal(r.data.len, CRL_SIZE);
	assert_int_equal(r.data.data[CRL_SIZE - 1], (uint8_t)((CRL_SIZE - 1) * 7));
	assert_int_equal(r.data.data[CRL_SIZE], 0); /* NUL after every blob */
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_chain(c, &r), REGSIGN_CLIENT_OK);
	assert_int_equal(r.chain_count, 1);
	assert_int_equal(r.chain[0].len, 6);
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_status(c, &r), REGSIGN_CLIENT_OK);
	assert_string_equal((char *)r.data.data, "{\"ok\":true}");
	regsign_reply_clear(&r);
	assert_int_equal(regsign_client_zone_status(c, &r), REGSIGN_CLIENT_OK);
	assert_string_equal((char *)r.data.data, "{\"zone\":true}");
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_publish(c, "x._asp", "TXT", 100, "\"a\"", &r),
			 REGSIGN_CLIENT_OK);
	assert_int_equal(r.zone_serial, 100 + 1 + 3);
	regsign_reply_clear(&r);
	/* UNPUBLISH never sends a TTL. */
	assert_int_equal(regsign_client_unpublish(c, "x._asp", "TXT", NULL, &r),
			 REGSIGN_CLIENT_OK);
	assert_int_equal(r.zone_serial, 1);
	regsign_reply_clear(&r);

	assert_int_equal(regsign_client_sign_rrset(c, "asp.test.", rrset, sizeof(rrset), 1, 2,
						   &r),
			 REGSIGN_CLIENT_OK);
	assert_int_equal(r.data.len, 3);
	assert_int_equal(r.data.data[0], 3);
	regsign_reply_clear(&r);

	{
		static const unsigned char h[32] = { 7 };
		static const char long_id[] =
			"01234567890123456789012345678901234567890123456789012345678901234";
		unsigned char *buf = NULL;
		size_t len = 0, cap = 0, before;

		assert_int_equal(regsign_import_record_append(&buf, &len, &cap,
							      "8912230200031010008f", 1, h,
							      NULL, NULL, 0),
				 REGSIGN_CLIENT_OK);
		assert_int_equal(len, 72);
		assert_int_equal(regsign_import_record_append(&buf, &len, &cap, "89", 2, NULL,
							      NULL, csr, sizeof(csr)),
				 REGSIGN_CLIENT_OK);
		before = len;
		assert_int_equal(regsign_import_record_append(&buf, &len, &cap, long_id, 1, h,
							      NULL, NULL, 0),
				 REGSIGN_CLIENT_ERR_INVALID);
		assert_int_equal(len, before);
		assert_int_equal(regsign_client_import(c, 42, 3, REGSIGN_IMPORT_FINAL, 0, buf, len,
						       &r),
				 REGSIGN_CLIENT_OK);
		assert_int_equal(r.op, REGSIGN_OP_IMPORT);
		assert_int_equal(r.import_records, 3002);
		assert_int_equal(r.zone_serial, 42);
		regsign_reply_clear(&r);
		assert_int_equal(regsign_client_import(c, 42, 1, 0, 0, buf, len, &r),
				 REGSIGN_CLIENT_OK);
		assert_int_equal(r.zone_serial, 0);
		regsign_reply_clear(&r);
		free(buf);
	}
	assert_int_equal(regsign_client_outstanding(c), 0);
	regsign_client_free(c);
}

static void test_refused(void **state)
{
	regsign_client *c = connect_fake(*state, 0);
	struct regsign_reply r;

	assert_int_equal(regsign_client_issue(c, "refuse", 1, "", "x", 1, &r),
			 REGSIGN_CLIENT_ERR_REFUSED);
	assert_int_equal(r.code, REGSIGN_CODE_DENIED);
	assert_string_equal(r.message, "rule callers[0]: no");
	assert_int_equal(r.op, REGSIGN_OP_ISSUE);
	assert_string_equal(regsign_code_name(r.code), "DENIED");
	assert_false(regsign_code_retryable(r.code));
	assert_non_null(strstr(regsign_client_errmsg(c), "DENIED"));
	regsign_reply_clear(&r);
	/* The connection stays usable after a refusal. */
	assert_int_equal(regsign_client_status(c, &r), REGSIGN_CLIENT_OK);
	regsign_reply_clear(&r);
	regsign_client_free(c);
}

static void test_pipelined(void **state)
{
	enum { N = 20000 };
	regsign_client *c = connect_fake(*state, 32768);
	uint8_t csr[200];
	uint8_t *seen = calloc(N + 1, 1);
	uint32_t first = 0, last = 0;
	int out_of_order = 0;
	uint32_t prev = 0;

	assert_non_null(seen);
	memset(csr, 0x5a, sizeof(csr));
	/* Send everything before reading anything: the replies (larger than
	 * the requests) fill the socket buffers, and the client must read
	 * them while it writes or both sides would block. */
	for (int i = 0; i < N; i++) {
		struct regsign_request q = { .op = REGSIGN_OP_ISSUE, .device_id = "89",
					     .index = (uint32_t)i + 1, .csr_der = csr,
					     .csr_len = sizeof(csr) };
		uint32_t id;

		assert_int_equal(regsign_client_send(c, &q, &id), REGSIGN_CLIENT_OK);
		if (i == 0)
			first = id;
		last = id;
	}
	assert_int_equal(last - first, N - 1);
	assert_int_equal(regsign_client_outstanding(c), N);
	assert_int_equal(regsign_client_flush(c), REGSIGN_CLIENT_OK);
	for (int i = 0; i < N; i++) {
		struct regsign_reply r;

		assert_int_equal(regsign_client_recv(c, &r), REGSIGN_CLIENT_OK);
		assert_true(r.id >= first && r.id <= last);
		/* Index i + 1 went with id first + i. */
		assert_int_equal(r.index, r.id - first + 1);
		assert_int_equal(seen[r.id - first], 0);
		seen[r.id - first] = 1;
		if (prev != 0 && r.id < prev)
			out_of_order = 1;
		prev = r.id;
		regsign_reply_clear(&r);
	}
	assert_true(out_of_order);
	assert_int_equal(regsign_client_outstanding(c), 0);
	{
		struct regsign_reply r;

		assert_int_equal(regsign_client_recv(c, &r), REGSIGN_CLIENT_ERR_INVALID);
	}
	free(seen);
	regsign_client_free(c);
}

static void test_window(void **state)
{
	regsign_client *c = connect_fake(*state, 3); /* rounded up to 4 */
	struct regsign_request q = { .op = REGSIGN_OP_STATUS };
	struct regsign_reply r;

	for (int i = 0; i < 4; i++)
		assert_int_equal(regsign_client_send(c, &q, NULL), REGSIGN_CLIENT_OK);
	assert_int_equal(regsign_client_send(c, &q, NULL), REGSIGN_CLIENT_ERR_WINDOW);
	/* Synchronous calls refuse while pipelined requests are outstanding. */
	assert_int_equal(regsign_client_status(c, &r), REGSIGN_CLIENT_ERR_INVALID);
	assert_int_equal(regsign_client_recv(c, &r), REGSIGN_CLIENT_OK);
	regsign_reply_clear(&r);
	assert_int_equal(regsign_client_send(c, &q, NULL), REGSIGN_CLIENT_OK);
	for (int i = 0; i < 4; i++) {
		assert_int_equal(regsign_client_recv(c, &r), REGSIGN_CLIENT_OK);
		regsign_reply_clear(&r);
	}
	/* Too late to change the window. */
	assert_int_equal(regsign_client_set_window(c, 8), REGSIGN_CLIENT_ERR_INVALID);
	regsign_client_free(c);
}

/*
 * regsign_client_take hands out replies already read and never reads or
 * waits itself: nothing before a reply came in, each buffered one once, and
 * nothing (0) once they are taken, with no request left outstanding.
 */
static void test_take(void **state)
{
	regsign_client *c = connect_fake(*state, 0);
	struct regsign_request q = { .op = REGSIGN_OP_STATUS };
	struct regsign_reply r;
	struct timespec pause = { .tv_sec = 0, .tv_nsec = 200000000L };
	int res = -100, got = 0, k;

	assert_int_equal(regsign_client_take(c, &r, &res), 0);
	for (int i = 0; i < 4; i++)
		assert_int_equal(regsign_client_send(c, &q, NULL), REGSIGN_CLIENT_OK);
	assert_int_equal(regsign_client_flush(c), REGSIGN_CLIENT_OK);
	/* Not read yet: take says so instead of reading. */
	assert_int_equal(regsign_client_take(c, &r, &res), 0);
	assert_int_equal(regsign_client_outstanding(c), 4);
	/* Every reply is in the socket by now; one recv reads them all. */
	nanosleep(&pause, NULL);
	assert_int_equal(regsign_client_recv(c, &r), REGSIGN_CLIENT_OK);
	assert_int_equal(r.op, REGSIGN_OP_STATUS);
	regsign_reply_clear(&r);
	while ((k = regsign_client_take(c, &r, &res)) == 1) {
		assert_int_equal(res, REGSIGN_CLIENT_OK);
		assert_int_equal(r.op, REGSIGN_OP_STATUS);
		regsign_reply_clear(&r);
		got++;
	}
	assert_int_equal(k, 0);
	assert_int_equal(got, 3);
	assert_int_equal(regsign_client_outstanding(c), 0);
	regsign_client_free(c);
}

static void test_invalid_request(void **state)
{
	char longid[100];
	regsign_client *c = connect_fake(*state, 0);
	struct regsign_request q = { .op = 99 };
	struct regsign_reply r;

	memset(longid, 'a', sizeof(longid) - 1);
	longid[sizeof(longid) - 1] = 0;
	assert_int_equal(regsign_client_issue(c, longid, 1, "", "x", 1, &r),
			 REGSIGN_CLIENT_ERR_INVALID);
	assert_non_null(strstr(regsign_client_errmsg(c), "ISSUE"));
	assert_int_equal(regsign_client_call(c, &q, &r), REGSIGN_CLIENT_ERR_INVALID);
	assert_int_equal(regsign_client_outstanding(c), 0);
	/* Still usable. */
	assert_int_equal(regsign_client_chain(c, &r), REGSIGN_CLIENT_OK);
	regsign_reply_clear(&r);
	regsign_client_free(c);
}

static void expect_failure(struct fake *f, const char *device, int want)
{
	regsign_client *c = connect_fake(f, 0);
	struct regsign_reply r;

	regsign_client_set_timeout(c, 300);
	assert_int_equal(regsign_client_revoke(c, device, 1, NULL, "x", &r), want);
	assert_null(r.serial_hex);
	assert_true(regsign_client_errmsg(c)[0] != '\0');
	regsign_reply_clear(&r);
	/* After these failures the connection is closed. */
	assert_int_equal(regsign_client_fd(c), -1);
	assert_int_equal(regsign_client_status(c, &r), REGSIGN_CLIENT_ERR_IO);
	regsign_client_free(c);
}

static void test_garbage_reply(void **state)
{
	expect_failure(*state, "garbage", REGSIGN_CLIENT_ERR_PROTOCOL);
}

static void test_wrong_id(void **state)
{
	expect_failure(*state, "wrongid", REGSIGN_CLIENT_ERR_PROTOCOL);
}

static void test_closed(void **state)
{
	expect_failure(*state, "close", REGSIGN_CLIENT_ERR_IO);
}

static void test_timeout(void **state)
{
	expect_failure(*state, "silent", REGSIGN_CLIENT_ERR_TIMEOUT);
}

static void test_error_id_zero(void **state)
{
	regsign_client *c = connect_fake(*state, 0);
	struct regsign_reply r;

	assert_int_equal(regsign_client_revoke(c, "toolarge", 1, NULL, "x", &r),
			 REGSIGN_CLIENT_ERR_REFUSED);
	assert_int_equal(r.id, 0);
	assert_int_equal(r.code, REGSIGN_CODE_TOO_LARGE);
	assert_string_equal(r.message, "frame too large");
	regsign_reply_clear(&r);
	assert_int_equal(regsign_client_fd(c), -1);
	regsign_client_free(c);
}

static void test_connect_errors(void **state)
{
	regsign_client *c;
	char longpath[200];

	(void)state;
	assert_int_equal(regsign_client_new(&c), REGSIGN_CLIENT_OK);
	assert_int_equal(regsign_client_connect(c, "/nonexistent/regsign.sock"),
			 REGSIGN_CLIENT_ERR_CONNECT);
	assert_non_null(strstr(regsign_client_errmsg(c), "/nonexistent/regsign.sock"));
	memset(longpath, 'a', sizeof(longpath) - 1);
	longpath[sizeof(longpath) - 1] = 0;
	assert_int_equal(regsign_client_connect(c, longpath), REGSIGN_CLIENT_ERR_INVALID);
	assert_int_equal(regsign_client_set_window(c, 0), REGSIGN_CLIENT_ERR_INVALID);
	assert_int_equal(regsign_client_set_window(c, 70000), REGSIGN_CLIENT_ERR_INVALID);
	assert_int_equal(regsign_client_fd(c), -1);
	regsign_client_free(c);
	regsign_client_free(NULL);
	regsign_reply_clear(NULL);
	assert_string_equal(regsign_client_strerror(REGSIGN_CLIENT_ERR_TIMEOUT), "timed out");
	assert_string_equal(regsign_code_name(4242), "UNKNOWN");
	assert_true(regsign_code_retryable(REGSIGN_CODE_BUSY));
}

int main(void)
{
#define FAKE_TEST(t) cmocka_unit_test_setup_teardown(t, fake_setup, fake_teardown)
	const struct CMUnitTest tests[] = {
		FAKE_TEST(test_sync_calls),
		FAKE_TEST(test_refused),
		FAKE_TEST(test_pipelined),
		FAKE_TEST(test_window),
		FAKE_TEST(test_take),
		FAKE_TEST(test_invalid_request),
		FAKE_TEST(test_garbage_reply),
		FAKE_TEST(test_wrong_id),
		FAKE_TEST(test_closed),
		FAKE_TEST(test_timeout),
		FAKE_TEST(test_error_id_zero),
		cmocka_unit_test(test_connect_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
