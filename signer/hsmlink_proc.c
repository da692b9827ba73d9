/*
 * hsmlink_proc.c: the HSM process's life as the front sees it (see hsmlink.h): spawning
 * it on a socketpair, its exit, the link's death (every request failed, the owner told
 * once, a lingering process killed) and closing. The traffic is in hsmlink.c.
 */
#include "signer/hsmlink_int.h"

#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "signer/hsmd.h"

static void on_timer(uv_timer_t *t);

/*
 * Declares the link dead from the loop rather than now: the caller may be inside
 * hsmlink_sign and no callback may run from there.
 */
void hsmlink__dead_later(struct hsmlink *l)
{
	if (!l->dead && !l->closing)
		uv_timer_start(&l->timer, on_timer, 0, 0);
}


/* ---- death and closing ------------------------------------------------------------- */

static void maybe_free(struct hsmlink *l)
{
	void (*cb)(void *) = l->close_cb;
	void *arg = l->close_arg;

	if (l->open_handles > 0 || !l->closing)
		return;
	hsmlink__fail_all(l);
	free(l->pending.reqs);
	free(l->pending.items);
	free(l->pending.data);
	free(l->in);
	free(l);
	if (cb)
		cb(arg);
}

static void on_handle_closed(uv_handle_t *h)
{
	struct hsmlink *l = h->data;

	l->open_handles--;
	maybe_free(l);
}

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, on_handle_closed);
}

/* Tells the owner, once, that the HSM process is gone and how it ended. */
static void report_death(struct hsmlink *l)
{
	if (l->reported || l->closing)
		return;
	l->reported = 1;
	uv_timer_stop(&l->timer);
	if (l->opts.death_cb)
		l->opts.death_cb(l, l->exit_status, l->term_signal, l->opts.arg);
}

/*
 * The link is lost (EOF, read or write error, a malformed reply): nothing more will come
 * from it, so every request fails now. The death is reported once the process has been
 * reaped, so that the owner learns its exit status; one that lingers is killed.
 */
void hsmlink__on_dead(struct hsmlink *l, int kill_now)
{
	if (l->dead || l->closing)
		return;
	l->dead = 1;
	uv_read_stop((uv_stream_t *)&l->pipe);
	if (kill_now && !l->exited)
		uv_process_kill(&l->proc, SIGKILL);
	hsmlink__fail_all(l);
	if (l->exited)
		report_death(l);
	else
		uv_timer_start(&l->timer, on_timer, HSMLINK_EOF_WAIT_MS, 0);
}

static void on_exit_cb(uv_process_t *p, int64_t exit_status, int term_signal)
{
	struct hsmlink *l = p->data;

	l->exited = 1;
	l->pid = 0;
	l->exit_status = exit_status;
	l->term_signal = term_signal;
	if (l->closing) {
		uv_timer_stop(&l->timer);
		close_handle((uv_handle_t *)&l->timer);
		close_handle((uv_handle_t *)&l->proc);
		return;
	}
	if (l->dead) {
		report_death(l);
		return;
	}
	/*
	 * What the process wrote before it exited (a HELLO saying why, replies) may still
	 * be unread; EOF follows it and then reports the death. The timer only covers an
	 * EOF that never comes.
	 */
	uv_timer_start(&l->timer, on_timer, HSMLINK_EOF_WAIT_MS, 0);
}

/*
 * Closing: the HSM process did not exit in time. Link alive: declare it lost (a write
 * failed, or the process exited and EOF never came). Link lost: the process did not
 * exit in time after it.
 */
static void on_timer(uv_timer_t *t)
{
	struct hsmlink *l = t->data;

	if (l->closing) {
		if (!l->exited)
			uv_process_kill(&l->proc, SIGKILL);
		return;
	}
	if (!l->dead) {
		hsmlink__on_dead(l, 1);
		return;
	}
	if (!l->exited)
		uv_process_kill(&l->proc, SIGKILL);
	report_death(l);
}

void hsmlink_close(hsmlink_t *l, void (*close_cb)(void *arg), void *arg)
{
	if (l == NULL || l->closing)
		return;
	l->close_cb = close_cb;
	l->close_arg = arg;
	hsmlink__fail_all(l); /* their callbacks run before the link is marked closing */
	l->closing = 1;
	uv_read_stop((uv_stream_t *)&l->pipe);
	close_handle((uv_handle_t *)&l->pipe); /* the HSM process sees EOF and exits */
	close_handle((uv_handle_t *)&l->prepare);
	close_handle((uv_handle_t *)&l->check);
	if (l->exited) {
		close_handle((uv_handle_t *)&l->timer);
		close_handle((uv_handle_t *)&l->proc);
	} else {
		uv_timer_start(&l->timer, on_timer, HSMLINK_KILL_MS, 0);
	}
}

/* ---- spawn ------------------------------------------------------------------------- */

int hsmlink_spawn(uv_loop_t *loop, const struct hsmlink_options *opts, hsmlink_t **out)
{
	struct hsmlink *l = NULL;
	uv_process_options_t po;
	uv_stdio_container_t stdio[4];
	char **args = NULL;
	size_t n_dirs = 0, a = 0;
	int sv[2] = { -1, -1 }, r = HSMLINK_ERR_ARG;

	*out = NULL;
	if (loop == NULL || opts == NULL || opts->exe_path == NULL || opts->config_path == NULL)
		return HSMLINK_ERR_ARG;
	while (opts->module_dirs && opts->module_dirs[n_dirs])
		n_dirs++;
	r = HSMLINK_ERR_NOMEM;
	l = calloc(1, sizeof(*l));
	args = calloc(7 + 2 * n_dirs, sizeof(*args));
	if (l == NULL || args == NULL)
		goto fail;
	l->loop = loop;
	l->opts = *opts;
	l->next_id = 1;
	l->exit_status = -1;
	l->term_signal = -1;
	args[a++] = (char *)opts->exe_path;
	args[a++] = (char *)HSMD_OPTION;
	args[a++] = (char *)"--fd";
	args[a++] = (char *)"3";
	args[a++] = (char *)"-c";
	args[a++] = (char *)opts->config_path;
	for (size_t i = 0; i < n_dirs; i++) {
		args[a++] = (char *)"--module-dir";
		args[a++] = (char *)opts->module_dirs[i];
	}
	r = HSMLINK_ERR_SPAWN;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		goto fail;
	uv_pipe_init(loop, &l->pipe, 0);
	uv_prepare_init(loop, &l->prepare);
	uv_check_init(loop, &l->check);
	uv_timer_init(loop, &l->timer);
	l->pipe.data = l->prepare.data = l->check.data = l->timer.data = l->proc.data = l;
	l->open_handles = 5;
	memset(&po, 0, sizeof(po));
	memset(stdio, 0, sizeof(stdio));
	stdio[0].flags = UV_IGNORE;
	stdio[1].flags = UV_INHERIT_FD;
	stdio[1].data.fd = 1;
	stdio[2].flags = UV_INHERIT_FD;
	stdio[2].data.fd = 2;
	stdio[3].flags = UV_INHERIT_FD;
	stdio[3].data.fd = sv[1];
	po.file = opts->exe_path;
	po.args = args;
	po.exit_cb = on_exit_cb;
	po.stdio = stdio;
	po.stdio_count = 4;
	if (uv_spawn(loop, &l->proc, &po) != 0) {
		/* The handles exist now: close them; the memory goes in their callbacks. */
		close(sv[0]);
		close(sv[1]);
		l->exited = 1;
		l->closing = 1;
		close_handle((uv_handle_t *)&l->pipe);
		close_handle((uv_handle_t *)&l->prepare);
		close_handle((uv_handle_t *)&l->check);
		close_handle((uv_handle_t *)&l->timer);
		close_handle((uv_handle_t *)&l->proc);
		free(args);
		return HSMLINK_ERR_SPAWN;
	}
	l->pid = l->proc.pid;
	close(sv[1]);
	sv[1] = -1;
	if (uv_pipe_open(&l->pipe, sv[0]) != 0) {
		close(sv[0]);
		free(args);
		*out = l;
		hsmlink__on_dead(l, 1);
		return HSMLINK_OK; /* the caller sees death_cb and closes the link */
	}
	sv[0] = -1;
	uv_read_start((uv_stream_t *)&l->pipe, hsmlink__on_alloc, hsmlink__on_read);
	free(args);
	*out = l;
	return HSMLINK_OK;
fail:
	if (sv[0] >= 0)
		close(sv[0]);
	if (sv[1] >= 0)
		close(sv[1]);
	free(args);
	free(l);
	return r;
}

int hsmlink_pid(const hsmlink_t *l)
{
	return l ? l->pid : 0;
}

int hsmlink_alive(const hsmlink_t *l)
{
	return l && !l->dead && !l->closing;
}

uint64_t hsmlink_frames_sent(const hsmlink_t *l)
{
	return l ? l->frames_sent : 0;
}
