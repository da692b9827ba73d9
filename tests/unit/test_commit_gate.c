/*
 * Unit tests of the intent gate (signer/zonepub_hsm.h, struct zonepub_gate)
 * with the real commit pipeline: REVOKE's zone change is built while its
 * INTENT commits, and the gate in front of the HSM signer is what keeps the
 * audit rule (the intent is durable before the HSM is asked).
 *  - a batch asked while an intent commits reaches the signer only after the
 *    intent's commit is done, and then the intent's row is in the database
 *    for any other connection;
 *  - an intent whose commit fails (or is refused) fails the waiting batch:
 *    the signer is never asked, the failure is counted;
 *  - while a cancelled request is still inside zonepub, every batch fails at
 *    once; once it left, batches pass again;
 *  - a request that leaves before its intent is done takes its hold along;
 *  - with a scope function, only the holds and cancellations it reports
 *    for the version being signed count.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "signer/zonepub_hsm.h"
#include "tests/unit/commit_fixture.h"

struct fx;

/* An INTENT: one metadata row, or a storage failure. */
struct intent {
	struct commit_item it;
	struct fx *f;
	int fail;
	int done, status;
};

struct fx {
	struct commit_fixture cf;
	struct zonepub_gate gate;
	/* The fake HSM signer. */
	int signer_calls;
	int intent_done_at_call;   /* the intent's done had run when it was asked */
	int row_visible_at_call;   /* another connection saw the intent's row then */
	/* The batch's answer. */
	int batch_done, batch_status;
	struct intent *in;
};

static int
intent_run(struct commit_item *ci, void *env)
{
	struct intent *i = (struct intent *)ci;
	struct fx *f = env;

	if (i->fail)
		return COMMIT_ERR_STORAGE;
	return store_meta_set(f->cf.st, "test.intent", "1", 1) == 0 ? COMMIT_OK : COMMIT_ERR_STORAGE;
}

/* As ops_revoke.c does: release the gate when the intent's commit is done. */
static void
intent_done(struct commit_item *ci, int status)
{
	struct intent *i = (struct intent *)ci;

	i->done = 1;
	i->status = status;
	zonepub_gate_release(&i->f->gate, status == COMMIT_OK, true);
}

static int
row_visible(const struct fx *f)
{
	struct store_open_opts o = { .flags = STORE_OPEN_READONLY };
	store_t *other = NULL;
	unsigned char *v = NULL;
	size_t n = 0;
	int seen;

	assert_int_equal(store_open(&other, f->cf.path, &o), 0);
	seen = store_meta_get(other, "test.intent", &v, &n) == 0 && n == 1 && v[0] == '1';
	free(v);
	store_close(other);
	return seen;
}

static int
fake_sign(void *ctx, struct zone_sigreq *reqs, size_t n, zonepub_sign_done_fn done, void *arg)
{
	struct fx *f = ctx;

	f->signer_calls++;
	f->intent_done_at_call = f->in != NULL && f->in->done;
	f->row_visible_at_call = row_visible(f);
	for (size_t i = 0; i < n; i++)
		memset(reqs[i].sig, 0xab, 64);
	done(arg, 0);
	return 0;
}

static void
batch_done(void *arg, int status)
{
	struct fx *f = arg;

	f->batch_done = 1;
	f->batch_status = status;
}

static struct fx *
fx_open(void)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct zonepub_signer inner;

	assert_non_null(f);
	commit_fixture_open(&f->cf, "regsign-gate", NULL, f, NULL, NULL);
	inner.sign = fake_sign;
	inner.ctx = f;
	zonepub_gate_init(&f->gate, inner);
	return f;
}

static void
fx_close(struct fx *f)
{
	commit_fixture_close(&f->cf);
	free(f);
}

/* Runs the loop until the intent is done (bounded). */
static void
wait_intent(struct fx *f, struct intent *i)
{
	commit_fixture_wait(&f->cf, &i->done);
}

/* A one-request batch over @p data (its first byte tells the cases apart). */
static void
req_init(struct zone_sigreq *req, uint8_t data[16], uint8_t tag)
{
	memset(req, 0, sizeof(*req));
	memset(data, 0, 16);
	data[0] = tag;
	req->data = data;
	req->len = 16;
}

/* A request holding the gate while its intent @p in commits; the batch is
 * asked for at once, and must wait. */
static void
hold_and_ask(struct fx *f, struct intent *in, struct zonepub_signer *s, struct zone_sigreq *req)
{
	f->in = in;
	in->it.run = intent_run;
	in->it.done = intent_done;
	zonepub_gate_hold(&f->gate);
	commit_submit(f->cf.c, &in->it);
	assert_int_equal(s->sign(s->ctx, req, 1, batch_done, f), 0);
}

/* The zone thread asks while the intent commits: the signer waits for it. */
static void
test_signer_asked_after_intent_durable(void **state)
{
	struct fx *f = fx_open();
	struct zonepub_signer s = zonepub_gate_signer(&f->gate);
	struct intent in = { .f = f };
	struct zone_sigreq req;
	uint8_t data[16];

	(void)state;
	req_init(&req, data, 1);
	hold_and_ask(f, &in, &s, &req);
	/* Nothing asked yet, whatever the writer is doing meanwhile. */
	assert_int_equal(f->signer_calls, 0);
	assert_int_equal(f->batch_done, 0);
	wait_intent(f, &in);
	assert_int_equal(in.status, COMMIT_OK);
	assert_int_equal(f->signer_calls, 1);
	assert_true(f->intent_done_at_call);
	assert_true(f->row_visible_at_call);
	assert_true(f->batch_done);
	assert_int_equal(f->batch_status, 0);
	assert_int_equal(req.sig[0], 0xab);
	assert_int_equal(zonepub_gate_failures(&f->gate), 0);
	/* Open again: the next batch goes straight through. */
	f->batch_done = 0;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	assert_int_equal(f->signer_calls, 2);
	assert_true(f->batch_done);
	fx_close(f);
}

/* The intent's commit fails: the batch fails, the HSM is never asked. */
static void
test_failed_intent_fails_batch(void **state)
{
	struct fx *f = fx_open();
	struct zonepub_signer s = zonepub_gate_signer(&f->gate);
	struct intent in = { .f = f, .fail = 1 };
	struct zone_sigreq req;
	uint8_t data[16];

	(void)state;
	req_init(&req, data, 4);
	hold_and_ask(f, &in, &s, &req);
	wait_intent(f, &in);
	assert_int_equal(in.status, COMMIT_ERR_STORAGE);
	assert_true(f->batch_done);
	assert_int_equal(f->batch_status, ZONEPUB_EWITHDRAWN);
	assert_int_equal(f->signer_calls, 0);
	assert_int_equal(zonepub_gate_failures(&f->gate), 1);
	assert_false(row_visible(f));
	/* The cancelled request is still inside zonepub: every batch fails. */
	f->batch_done = 0;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), ZONEPUB_EWITHDRAWN);
	assert_int_equal(f->batch_done, 0);
	assert_int_equal(f->signer_calls, 0);
	assert_int_equal(zonepub_gate_failures(&f->gate), 2);
	/* It left: batches pass again. */
	zonepub_gate_left(&f->gate, false, true);
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	assert_int_equal(f->signer_calls, 1);
	assert_true(f->batch_done);
	assert_int_equal(f->batch_status, 0);
	fx_close(f);
}

/*
 * A refusal of the first pass (the intent's commit succeeds, but the
 * request is refused) is released as not ok, like ops_revoke.c does; a
 * refused request that was no longer inside zonepub blocks nothing.
 */
static void
test_refused_and_left(void **state)
{
	struct fx *f = fx_open();
	struct zonepub_signer s = zonepub_gate_signer(&f->gate);
	struct zone_sigreq req;
	uint8_t data[16];

	(void)state;
	req_init(&req, data, 5);
	/* Two holders; the batch waits for both. */
	zonepub_gate_hold(&f->gate);
	zonepub_gate_hold(&f->gate);
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	zonepub_gate_release(&f->gate, true, true);
	assert_int_equal(f->signer_calls, 0);
	/* The second left zonepub before its intent was done (its name was
	 * not in the zone): its hold goes with it, and the batch is sent. */
	zonepub_gate_left(&f->gate, true, false);
	assert_int_equal(f->signer_calls, 1);
	assert_true(f->batch_done);
	assert_int_equal(f->batch_status, 0);
	/* Refused while not inside: nothing waits, nothing fails. */
	zonepub_gate_hold(&f->gate);
	zonepub_gate_release(&f->gate, false, false);
	f->batch_done = 0;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	assert_int_equal(f->signer_calls, 2);
	assert_int_equal(zonepub_gate_failures(&f->gate), 0);
	/* Refused while inside with a batch waiting: the batch fails. */
	zonepub_gate_hold(&f->gate);
	f->batch_done = 0;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	zonepub_gate_release(&f->gate, false, true);
	assert_true(f->batch_done);
	assert_int_equal(f->batch_status, ZONEPUB_EWITHDRAWN);
	assert_int_equal(f->signer_calls, 2);
	assert_int_equal(zonepub_gate_failures(&f->gate), 1);
	zonepub_gate_left(&f->gate, false, true);
	fx_close(f);
}

/* The scope says which holds concern the version being signed. */
struct scope_answer {
	bool held, cancelled;
	int calls;
};

static void
scope_fn(void *arg, bool *held, bool *cancelled)
{
	struct scope_answer *a = arg;

	a->calls++;
	*held = a->held;
	*cancelled = a->cancelled;
}

static void
test_scope_limits_holds(void **state)
{
	struct fx *f = fx_open();
	struct zonepub_signer s = zonepub_gate_signer(&f->gate);
	struct scope_answer a = { false, false, 0 };
	struct zone_sigreq req;
	uint8_t data[16];

	(void)state;
	req_init(&req, data, 6);
	zonepub_gate_scope_set(&f->gate, scope_fn, &a);
	/* No hold at all: the scope is not even asked. */
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	assert_int_equal(a.calls, 0);
	assert_int_equal(f->signer_calls, 1);
	/* A hold of a request still queued behind this version: no wait. */
	zonepub_gate_hold(&f->gate);
	f->batch_done = 0;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	assert_true(a.calls >= 1);
	assert_int_equal(f->signer_calls, 2);
	assert_true(f->batch_done);
	/* A hold in this version: it waits, until the scope clears. */
	a.held = true;
	f->batch_done = 0;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	assert_int_equal(f->signer_calls, 2);
	a.held = false;
	zonepub_gate_release(&f->gate, true, true);
	assert_int_equal(f->signer_calls, 3);
	assert_true(f->batch_done);
	/* A cancelled request queued behind: the batch passes; in it: fails. */
	zonepub_gate_hold(&f->gate);
	zonepub_gate_release(&f->gate, false, true);
	f->batch_done = 0;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), 0);
	assert_int_equal(f->signer_calls, 4);
	a.cancelled = true;
	assert_int_equal(s.sign(s.ctx, &req, 1, batch_done, f), ZONEPUB_EWITHDRAWN);
	assert_int_equal(f->signer_calls, 4);
	assert_int_equal(zonepub_gate_failures(&f->gate), 1);
	zonepub_gate_left(&f->gate, false, true);
	fx_close(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_signer_asked_after_intent_durable),
		cmocka_unit_test(test_failed_intent_fails_batch),
		cmocka_unit_test(test_refused_and_left),
		cmocka_unit_test(test_scope_limits_holds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
