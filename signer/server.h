/**
 * @file server.h
 * @brief regsignd's signing socket: listener, connections, framing, peer
 * credentials, backpressure. No protocol meaning lives here.
 *
 * The server listens on a Unix stream socket (docs/PROTOCOL.md §1). For each
 * new connection it reads the peer's uid, gid and pid with SO_PEERCRED and asks
 * the daemon (accept callback) whether to keep it, BEFORE it reads a single
 * byte; a refused peer is closed at once.
 *
 * Framing (§2): the server gathers bytes until it has a whole frame; the
 * length field is checked against the configured maximum (proto_frame_peek)
 * before any memory is set aside for the frame. A length above the maximum is
 * answered with TOO_LARGE, one below 5 with BAD_FRAME, both with id 0, and the
 * connection is then closed once that reply is written (the stream cannot be
 * resynchronised). Every complete frame goes to the frame callback, which must
 * answer it exactly once with server_conn_reply() — at once or later
 * (pipelining: replies may go out in any order).
 *
 * Backpressure: a connection with queue-depth requests unanswered gets BUSY
 * for further ones (answered here, with the request's id); a connection whose
 * replies wait to be written past a high-water mark is no longer read
 * (uv_read_stop) until they drain below half of it, so a client that does not
 * read its replies cannot make the daemon buffer without bound.
 *
 * Time-outs: a connection with nothing unanswered, nothing to write and no
 * byte read for the idle time-out is closed (a front end that went quiet
 * gives its slot back); one whose replies have waited that long without a
 * single byte taken by the peer (a slow or stuck reader) is closed after the
 * write time-out, whatever it still has in flight. One timer per server
 * checks every connection once a second.
 *
 * Everything runs on the loop's thread. Connections are reference-counted:
 * the daemon takes a reference (server_conn_ref) for each request it keeps
 * past the frame callback and drops it after the reply.
 */
#ifndef REGSIGN_SIGNER_SERVER_H
#define REGSIGN_SIGNER_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/** Errors of the server module. */
enum server_err {
	SERVER_OK = 0,
	SERVER_ERR_NOMEM = -1,
	SERVER_ERR_ARG = -2,
	SERVER_ERR_IN_USE = -3, /**< another process answers on the socket path */
	SERVER_ERR_SOCKET = -4, /**< bind, chmod or listen failed */
};

typedef struct server server_t;
typedef struct server_conn server_conn_t;

/** Who is on the other end of a connection (SO_PEERCRED). */
struct server_peer {
	uint32_t uid;
	uint32_t gid;
	int32_t pid;
};

struct server_callbacks {
	/**
	 * A new connection from @p peer. Return 0 to keep it (reading starts),
	 * anything else to close it without reading.
	 */
	int (*accept)(void *arg, server_conn_t *c, const struct server_peer *peer);
	/**
	 * One complete frame, length prefix included (borrowed for the call).
	 * Answer it once with server_conn_reply().
	 */
	void (*frame)(void *arg, server_conn_t *c, const uint8_t *frame, size_t len);
	/**
	 * The stream broke framing: @p err is PROTO_ERR_TOO_LARGE or
	 * PROTO_ERR_BAD_FRAME, @p length the offending length field. The server
	 * has already queued the id-0 reply and will close the connection. May be
	 * NULL.
	 */
	void (*frame_error)(void *arg, server_conn_t *c, int err, uint32_t length);
	/** A request was answered BUSY by the server itself. May be NULL. */
	void (*busy)(void *arg, server_conn_t *c, uint32_t id);
	/**
	 * The connection is closing (peer gone, time-out, error, shutdown): no
	 * frame will come from it any more. Called once per connection that
	 * the accept callback kept; its data is still set. May be NULL.
	 */
	void (*closed)(void *arg, server_conn_t *c);
	/**
	 * Runs once on the loop's next iteration after server_wake() (any
	 * number of wakes before it run it once). May be NULL.
	 */
	void (*wake)(void *arg);
};

struct server_options {
	const char *path;         /**< socket path */
	unsigned mode;            /**< permission bits of the socket, e.g. 0660 */
	uint32_t max_frame;       /**< largest length field accepted (≤ PROTO_REQUEST_MAX) */
	uint32_t queue_depth;     /**< unanswered requests per connection before BUSY */
	size_t write_high_water;  /**< reply bytes waiting to be written before reading stops */
	size_t max_conns;         /**< open connections at most (0: 1024); more are closed at once */
	uint64_t idle_timeout_ms; /**< quiet connections closed after this (0: 300000) */
	uint64_t write_timeout_ms; /**< replies not taken for this long: closed (0: 30000) */
};

/** Default idle time-out (ms). */
#define SERVER_IDLE_TIMEOUT_MS 300000
/** Default write time-out (ms). */
#define SERVER_WRITE_TIMEOUT_MS 30000

/** @return a static English description of an enum server_err value. */
const char *server_strerror(int err);

/**
 * Binds and listens. An existing socket file at the path is removed only if
 * nobody answers on it (SERVER_ERR_IN_USE otherwise). The socket gets
 * @p opts->mode from the start (umask around bind), not after a chmod race.
 * @param out receives the server (server_close frees it).
 */
int server_open(uv_loop_t *loop, const struct server_options *opts,
		const struct server_callbacks *cb, void *arg, server_t **out);

/** Stops accepting new connections (existing ones go on). Idempotent. */
void server_stop_accepting(server_t *s);

/** Stops reading every connection (shutdown: no new requests). Idempotent. */
void server_stop_reading(server_t *s);

/**
 * Closes the listener and every connection, removes the socket file, and
 * calls @p close_cb once every connection has been released (all references
 * dropped). Connections with replies still queued are read no more and close
 * once those are written (a peer that does not read them is cut off after
 * a few seconds). NULL is a no-op.
 */
void server_close(server_t *s, void (*close_cb)(void *arg), void *arg);

/**
 * Asks for the wake callback on the loop's next iteration: lets the daemon
 * carry on work that must not run inside the callback it is in (a request
 * finished deep inside another module's completion). No-op once the server
 * is closing.
 */
void server_wake(server_t *s);

/** The cap on open connections in force (server_options.max_conns or its default). */
size_t server_max_conns(const server_t *s);

/** Number of open connections. */
size_t server_conn_count(const server_t *s);

/** Takes a reference on @p c: it stays valid (possibly closed) until unref. */
void server_conn_ref(server_conn_t *c);

/** Drops a reference. */
void server_conn_unref(server_conn_t *c);

/** The peer's credentials. */
const struct server_peer *server_conn_peer(const server_conn_t *c);

/** Daemon data attached to a connection (NULL at first). */
void server_conn_set_data(server_conn_t *c, void *data);
void *server_conn_data(const server_conn_t *c);

/** 1 once the connection is closed or closing (replies are then dropped). */
int server_conn_closed(const server_conn_t *c);

/**
 * Answers one request delivered by the frame callback. Takes ownership of
 * @p data (malloc'ed, one whole reply frame) even on failure; dropped
 * silently when the connection is already closed. @p close_after closes the
 * connection once the reply is written.
 */
void server_conn_reply(server_conn_t *c, uint8_t *data, size_t len, int close_after);

/** Closes a connection now (pending writes are cancelled). */
void server_conn_close(server_conn_t *c);

#endif
