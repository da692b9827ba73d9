/*
 * server_int.h: what the parts of the server module share (not a public header).
 * server.c holds the listener and each connection's life: open and close, accept
 * and the peer check, references, time-outs and the wake; server_read.c the read
 * side: buffers, framing, backpressure on reading; server_reply.c the reply side:
 * replies gathered per connection and written once per loop iteration.
 */
#ifndef REGSIGN_SIGNER_SERVER_INT_H
#define REGSIGN_SIGNER_SERVER_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "signer/server.h"

/* Bytes offered to each read beyond what the current frame needs. */
#define SERVER_READ_CHUNK 65536

struct server {
	uv_loop_t *loop;
	uv_pipe_t listener;
	int listening;
	int reading_stopped;
	char *path;
	struct server_options opts;
	struct server_callbacks cb;
	void *arg;
	struct server_conn *conns; /* open connections, doubly linked */
	size_t n_conns;
	size_t n_alive;            /* connection structs not yet freed */
	int closing;
	void (*close_cb)(void *arg);
	void *close_arg;
	int listener_closed;
	uv_timer_t drain;          /* bounds how long closing waits for replies */
	int drain_closed;
	uv_timer_t tick;           /* idle and write time-outs, once a second */
	int tick_closed;
	uv_idle_t wake;            /* server_wake: the wake callback on the next iteration */
	int wake_closed;
	/* Connections with replies gathered and not yet handed to a write, each
	 * holding a reference; written before the loop blocks again. */
	struct server_conn *dirty;
	uv_prepare_t flush_prepare; /* before the loop polls: replies made by timers */
	uv_check_t flush_check;     /* after it polls: replies made by I/O callbacks */
	int flush_closed;          /* both flush handles closed (counts 2 down) */
	int flush_open;
};

/* How often the time-outs are checked. */
#define SERVER_TICK_MS 1000

/* How long server_close lets connections finish writing their replies. */
#define SERVER_DRAIN_MS 5000

struct server_conn {
	uv_pipe_t pipe;
	server_t *srv;
	struct server_conn *prev, *next;
	struct server_peer peer;
	void *data;
	unsigned refs;     /* the handle's own reference + one per holder */
	int closing;       /* uv_close called or about to be */
	int read_on;       /* uv_read_start in effect */
	int no_more_reads; /* framing broken or shutdown: never read again */
	uint8_t *rx;
	size_t rx_len, rx_cap;
	size_t expect;     /* size of the frame being gathered, 0 if unknown */
	uint32_t pending;  /* requests delivered and not yet answered */
	size_t wbytes;     /* reply bytes queued (in c->out or in uv_write), not yet written */
	uint8_t *out;      /* replies gathered while a write is on its way or while corked */
	size_t out_len, out_cap;
	int writing;       /* a uv_write is on its way */
	int dirty;         /* on the server's list of connections to write */
	struct server_conn *dirty_next;
	int close_after;   /* close when the writes drain */
	int in_frames;     /* conn_frames is running (no re-entry) */
	int accepted;      /* the accept callback kept it: closed callback due */
	uint64_t last_read;  /* uv_now of the last bytes read (or of the accept) */
	uint64_t last_write; /* uv_now of the last write done, or of the first
			      * reply queued after the writes had drained */
	uint64_t rx_since;   /* uv_now when a partial frame started to gather */
};

struct server_write {
	uv_write_t req;
	server_conn_t *conn;
	uint8_t *data;
	size_t len;
	size_t cap;
};

/* A gathering buffer up to this size is kept for the next replies after its
 * write; a larger one (a burst) is given back. */
#define SERVER_OUT_KEEP 65536

/* server.c: closes c now (its writes are cancelled); idempotent. */
void server__conn_close_now(server_conn_t *c);

/* server_read.c: starts or stops reading c according to its state; the caller
 * holds a reference on c. */
void server__conn_maybe_read(server_conn_t *c);

/* server_reply.c: answers an error (id 0 or the request's) without the daemon. */
void server__conn_error(server_conn_t *c, uint32_t id, uint32_t code, const char *msg,
			int close_after);

/* server_reply.c: writes every connection's gathered replies and stops the flush
 * handles (the end of a loop iteration, or the start of server_close). */
void server__flush_all(server_t *s);

#endif
