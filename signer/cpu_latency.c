/*
 * cpu_latency.c - the PM QoS CPU latency limit held while requests are in.
 * See cpu_latency.h.
 *
 * The kernel keeps one request per open file of /dev/cpu_dma_latency and
 * applies the lowest of them; a 4-byte write replaces this file's value.
 * Releasing writes the default back rather than closing, so the daemon
 * never needs to open the device again (it cannot, once sandboxed).
 */
#include "signer/cpu_latency.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

struct cpu_latency {
	uv_timer_t timer;      /* checks for the end of the hold while held */
	uv_loop_t *loop;
	int fd;
	int32_t limit_us;
	uint64_t hold_ms;
	uint64_t tick_ms;      /* the timer's period: a quarter of the hold */
	uint64_t inflight;     /* as last noted */
	uint64_t idle_since;   /* uv_now when it was last noted at 0 */
	int held;
	uint64_t holds;
};

static int
put(int fd, int32_t value)
{
	ssize_t n = write(fd, &value, sizeof(value));

	if (n == (ssize_t)sizeof(value))
		return 0;
	return n < 0 ? -errno : -EIO;
}

static void
release(cpu_latency_t *cl)
{
	/* A failed write leaves the limit in force: try again at the next tick. */
	if (put(cl->fd, CPU_LATENCY_NONE) != 0)
		return;
	cl->held = 0;
	uv_timer_stop(&cl->timer);
}

static void
tick(uv_timer_t *t)
{
	cpu_latency_t *cl = t->data;

	if (cl->held && cl->inflight == 0 && uv_now(cl->loop) - cl->idle_since >= cl->hold_ms)
		release(cl);
}

int
cpu_latency_open(uv_loop_t *loop, const char *path, int32_t limit_us, uint64_t hold_ms,
		 cpu_latency_t **out)
{
	cpu_latency_t *cl = NULL;
	int r = -EINVAL;

	if (loop == NULL || path == NULL || out == NULL || limit_us < 0 || limit_us > 1000000 ||
	    hold_ms == 0)
		goto out;
	*out = NULL;
	r = -ENOMEM;
	if ((cl = calloc(1, sizeof(*cl))) == NULL)
		goto out;
	if ((cl->fd = open(path, O_WRONLY | O_CLOEXEC)) < 0) {
		r = -errno;
		goto out;
	}
	cl->loop = loop;
	cl->limit_us = limit_us;
	cl->hold_ms = hold_ms;
	cl->tick_ms = hold_ms >= 4 ? hold_ms / 4 : 1;
	cl->idle_since = uv_now(loop);
	uv_timer_init(loop, &cl->timer);
	cl->timer.data = cl;
	*out = cl;
	cl = NULL;
	r = 0;
out:
	free(cl);
	return r;
}

int
cpu_latency_note(cpu_latency_t *cl, uint64_t inflight)
{
	int r;

	if (cl == NULL)
		return 0;
	cl->inflight = inflight;
	if (inflight == 0)
		cl->idle_since = uv_now(cl->loop);
	if (cl->held || inflight == 0)
		return 0;
	if ((r = put(cl->fd, cl->limit_us)) != 0)
		return r;
	cl->held = 1;
	cl->holds++;
	uv_timer_start(&cl->timer, tick, cl->tick_ms, cl->tick_ms);
	return 0;
}

void
cpu_latency_stats_get(const cpu_latency_t *cl, struct cpu_latency_stats *st)
{
	st->limit_us = cl->limit_us;
	st->hold_ms = cl->hold_ms;
	st->held = cl->held;
	st->holds = cl->holds;
}

static void
closed(uv_handle_t *h)
{
	free(h->data);
}

void
cpu_latency_close(cpu_latency_t *cl)
{
	if (cl == NULL)
		return;
	/* Closing the file withdraws the request; no release write is needed. */
	close(cl->fd);
	cl->fd = -1;
	cl->held = 0;
	uv_close((uv_handle_t *)&cl->timer, closed);
}
