/*
 * hsmlink_int.h: what the two halves of hsmlink share (not a public header). hsmlink.c
 * carries the traffic: calls, the coalesced SIGN messages, replies and the requests;
 * hsmlink_proc.c the HSM process's life: spawn, exit, the link's death and closing.
 */
#ifndef REGSIGN_SIGNER_HSMLINK_INT_H
#define REGSIGN_SIGNER_HSMLINK_INT_H

#include <stdint.h>
#include <uv.h>

#include "signer/hsmlink.h"

/* How long hsmlink_close waits for the HSM process to exit before SIGKILL. */
#define HSMLINK_KILL_MS 5000
/* Flush the coalescing message before its body gets this large. */
#define HSMLINK_FLUSH_BYTES (HSMPROTO_MAX_BODY / 2)
#define HSMLINK_READ_CHUNK 65536
/* After SIGCHLD, how long EOF may take before the link is declared dead anyway. */
#define HSMLINK_EOF_WAIT_MS 1000


/* A result value up to this size (every ECDSA signature, raw or DER) is kept in the
 * call's own memory instead of a malloc of its own. */
#define HSMLINK_SMALL_VALUE 72

/*
 * A call and its n results are one allocation: the struct, then res[n], owned[2n] and
 * small[n]; a sign request costs one malloc here instead of three plus one per value.
 */
struct call {
	uint8_t type; /* HSMPROTO_SIGN, _PUBKEY, _RANDOM, _STATUS */
	size_t n;
	size_t missing;
	struct hsmlink_result *res;
	void **owned; /* 2 per result: reason copy, value copy (when not small) */
	uint8_t (*small)[HSMLINK_SMALL_VALUE];
	union {
		hsmlink_sign_cb sign;
		hsmlink_value_cb value;
		hsmlink_status_cb status;
	} cb;
	void *arg;
};

struct item {
	struct call *call;
	size_t idx;
	size_t off; /* while pending: where the request's data sits in pending.data */
};

struct msg {
	struct msg *next;
	uint32_t id;
	uint8_t type;
	size_t n;
	struct item *items;
};

/*
 * The SIGN message being coalesced: requests with copies of their data, all in one
 * buffer (bounded by HSMLINK_FLUSH_BYTES, kept between messages) rather than a malloc
 * each; reqs[i].data is pointed into it when the message is encoded.
 */
struct pending {
	struct hsmproto_sign_req *reqs;
	struct item *items;
	size_t n;
	size_t cap;
	size_t bytes;
	uint8_t *data;
	size_t data_len, data_cap;
};

struct write_req {
	uv_write_t req;
	struct hsmproto_buf buf;
};

struct hsmlink {
	uv_loop_t *loop;
	uv_process_t proc;
	uv_pipe_t pipe;
	uv_prepare_t prepare;
	uv_check_t check;
	uv_timer_t timer;
	int open_handles;

	struct hsmlink_options opts;
	int pid;
	int exited;
	int dead;
	int closing;
	int ready_seen;
	int reported;
	int64_t exit_status;
	int term_signal;
	void (*close_cb)(void *arg);
	void *close_arg;

	uint32_t next_id;
	uint64_t frames_sent;
	struct msg *inflight; /* sent, awaiting reply (newest first) */
	struct pending pending;

	uint8_t *in;    /* bytes read but not yet parsed */
	size_t in_len;
	size_t in_cap;
};

/* hsmlink.c: every request queued or in flight gets UNAVAILABLE. */
void hsmlink__fail_all(struct hsmlink *l);
/* hsmlink.c: the pipe's read callbacks (replies from the HSM process). */
void hsmlink__on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);
void hsmlink__on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
/* hsmlink_proc.c: the link is lost; every request fails now (kill_now: SIGKILL it). */
void hsmlink__on_dead(struct hsmlink *l, int kill_now);
/* hsmlink_proc.c: declares the link dead from the loop (never from inside a call). */
void hsmlink__dead_later(struct hsmlink *l);

#endif
