/* The zonepub tests' fixture (see test_zonepub_fx.h). */
#include "test_zonepub_fx.h"

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "zonesigner/zone_change.h"
#include "zonesigner/zone_file.h"

/* ---- The asynchronous signer ---- */

static void signer_fire(uv_timer_t *t)
{
	struct fx_signer *s = t->data;
	zonepub_sign_done_fn done = s->done;
	int status = 0;

	s->busy = false;
	s->batches++;
	s->last = s->n;
	if (s->fail > 0) {
		s->fail--;
		status = -1;
	} else {
		status = tzs_sign(&s->keys, s->reqs, s->n);
		if (status == 0)
			s->sigs += s->n;
		if (status == 0 && s->garbage > 0) {
			s->garbage--;
			for (size_t i = 0; i < s->n; i++)
				s->reqs[i].sig[10] ^= 0x5a;
		}
	}
	s->done = NULL;
	done(s->arg, status);
}

static int signer_sign(void *ctx, struct zone_sigreq *reqs, size_t n, zonepub_sign_done_fn done,
		       void *arg)
{
	struct fx_signer *s = ctx;

	/* zonepub asks for one batch at a time. */
	assert_false(s->busy);
	s->busy = true;
	s->reqs = reqs;
	s->n = n;
	s->done = done;
	s->arg = arg;
	if (s->sync)
		signer_fire(&s->timer);
	else if (!s->hold)
		uv_timer_start(&s->timer, signer_fire, 0, 0);
	return 0;
}

void fx_signer_release(struct fx *fx)
{
	fx->sg.hold = false;
	if (fx->sg.busy)
		uv_timer_start(&fx->sg.timer, signer_fire, 0, 0);
}

/* ---- zonepub's callbacks ---- */

static int64_t fx_clock(void *arg)
{
	return ((struct fx *)arg)->now;
}

static void fx_published(void *arg, uint32_t serial)
{
	struct fx *fx = arg;

	/* What the listener is given already has it. */
	assert_int_equal(zone_serial(zonepub_zone(fx->zp)), serial);
	fx->published = serial;
	fx->npublished++;
}

static void fx_fatal(void *arg, int err)
{
	(void)err;
	((struct fx *)arg)->fatal++;
}

static void fx_store_fatal(void *arg, int err)
{
	(void)err;
	((struct fx *)arg)->fatal++;
}

static void fx_log(void *arg, int level, const char *msg)
{
	(void)arg;
	if (level <= ZONEPUB_LOG_WARNING || getenv("ZONEPUB_TEST_VERBOSE"))
		fprintf(stderr, "zonepub[%d]: %s\n", level, msg);
}

static void guard_cb(uv_timer_t *t)
{
	(void)t;
}

/* ---- Set-up ---- */

int fx_setup(void **state)
{
	struct fx *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	fx->dir = tzs_tmpdir();
	snprintf(fx->db, sizeof(fx->db), "%s/state.db", fx->dir);
	snprintf(fx->zone_file, sizeof(fx->zone_file), "%s/iotregistry.test.zone", fx->dir);
	assert_int_equal(uv_loop_init(&fx->loop), 0);
	uv_timer_init(&fx->loop, &fx->guard);
	uv_timer_start(&fx->guard, guard_cb, 50, 50);
	uv_timer_init(&fx->loop, &fx->sg.timer);
	fx->sg.timer.data = &fx->sg;
	tzs_signer_init(&fx->sg.keys);
	fx->ca = tzs_cert_new("Issuing CA", &fx->calen);
	zone_params_init(&fx->params);
	assert_int_equal(zone_dnskey_from_pkey(fx->sg.keys.ksk, ZONE_DNSKEY_FLAGS_KSK,
					       &fx->params.ksk), 0);
	assert_int_equal(zone_dnskey_from_pkey(fx->sg.keys.zsk, ZONE_DNSKEY_FLAGS_ZSK,
					       &fx->params.zsk), 0);
	fx->params.ca_der = fx->ca;
	fx->params.ca_len = fx->calen;
	fx->now = (int64_t)time(NULL);
	/* The timer never fires in a test: tests call zonepub_tick(). */
	fx->opts.tick_ms = 3600 * 1000;
	*state = fx;
	return 0;
}

static void zp_closed(void *arg)
{
	((struct fx *)arg)->closed = true;
}

void fx_close_begin(struct fx *fx)
{
	fx->closed = false;
	fx->closing = true;
	zonepub_close(fx->zp, zp_closed, fx);
}

void fx_stop(struct fx *fx)
{
	if (fx->zp != NULL) {
		if (!fx->closing)
			fx_close_begin(fx);
		fx->closing = false;
		while (!fx->closed)
			uv_run(&fx->loop, UV_RUN_ONCE);
		zonepub_free(fx->zp);
		fx->zp = NULL;
	}
	if (fx->commit != NULL) {
		commit_close(fx->commit);
		uv_run(&fx->loop, UV_RUN_NOWAIT);
		fx->commit = NULL;
	}
	store_close(fx->ro);
	fx->ro = NULL;
	store_close(fx->st);
	fx->st = NULL;
}

int fx_teardown(void **state)
{
	struct fx *fx = *state;

	fx_stop(fx);
	uv_close((uv_handle_t *)&fx->guard, NULL);
	uv_close((uv_handle_t *)&fx->sg.timer, NULL);
	uv_run(&fx->loop, UV_RUN_DEFAULT);
	assert_int_equal(uv_loop_close(&fx->loop), 0);
	tzs_signer_free(&fx->sg.keys);
	OPENSSL_free(fx->ca);
	tzs_rmtree(fx->dir);
	free(fx->dir);
	free(fx);
	return 0;
}

static void fx_opened(void *arg, int status)
{
	struct fx *fx = arg;

	fx->opened = true;
	fx->open_status = status;
}

void fx_start(struct fx *fx)
{
	struct store_open_opts ro = { STORE_OPEN_READONLY, NULL, 0 };

	assert_int_equal(store_open(&fx->st, fx->db, NULL), 0);
	fx->opts.params = &fx->params;
	fx->opts.signer.sign = signer_sign;
	fx->opts.signer.ctx = &fx->sg;
	fx->opts.now = fx_clock;
	fx->opts.published = fx_published;
	fx->opts.fatal = fx_fatal;
	fx->opts.log = fx_log;
	fx->opts.arg = fx;
	assert_int_equal(zonepub_new(&fx->loop, &fx->opts, &fx->zp), 0);
	if (fx->use_open) {
		/* The daemon's way: the pipeline runs first, the load goes through it. */
		assert_int_equal(commit_new(&fx->loop, fx->st, fx, fx_store_fatal, fx, &fx->commit),
				 0);
		fx->opened = false;
		assert_int_equal(zonepub_open(fx->zp, fx->st, fx->commit, fx_opened, fx), 0);
		while (!fx->opened)
			uv_run(&fx->loop, UV_RUN_ONCE);
		assert_int_equal(fx->open_status, 0);
	} else {
		assert_int_equal(zonepub_load(fx->zp, fx->st), 0);
		assert_int_equal(commit_new(&fx->loop, fx->st, fx, fx_store_fatal, fx, &fx->commit),
				 0);
		assert_int_equal(zonepub_start(fx->zp, fx->commit), 0);
	}
	fx_run_idle(fx);
	assert_int_equal(store_open(&fx->ro, fx->db, &ro), 0);
	assert_true(zone_serial(zonepub_zone(fx->zp)) != 0);
}

void fx_run_idle(struct fx *fx)
{
	time_t deadline = time(NULL) + 120;

	/* One pass first: a request submitted just now starts at the end of
	 * the next loop iteration. */
	uv_run(&fx->loop, UV_RUN_NOWAIT);
	while (!zonepub_idle(fx->zp) || fx->sg.busy) {
		if (time(NULL) > deadline)
			fail_msg("zonepub did not become idle within 120 s");
		uv_run(&fx->loop, UV_RUN_ONCE);
	}
}

/* ---- Requests ---- */

static void treq_done(struct zonepub_req *rq, int status, uint32_t serial)
{
	struct treq *t = (struct treq *)rq;

	assert_false(t->done);
	t->done = true;
	t->status = status;
	t->serial = serial;
}

/* Writer thread: the request's own rows would be written here. The served
 * zone is only read (nothing changes it while a version is committing). */
static int treq_store(struct zonepub_req *rq, void *env)
{
	struct treq *t = (struct treq *)rq;

	(void)env;
	t->store_runs++;
	t->served_at_store = zone_serial(zonepub_zone(t->fx->zp));
	return t->store_ret;
}

static void treq_undo(struct zonepub_req *rq, void *env)
{
	(void)env;
	((struct treq *)rq)->undone++;
}

static void treq_init(struct fx *fx, struct treq *t, size_t n_ops)
{
	memset(t, 0, sizeof(*t));
	t->fx = fx;
	t->rq.ops = t->ops;
	t->rq.n_ops = n_ops;
	t->rq.store_run = treq_store;
	t->rq.store_undo = treq_undo;
	t->rq.done = treq_done;
}

void fx_device_id(unsigned i, char *buf, size_t len)
{
	snprintf(buf, len, "89122302000310%06x", i);
}

static void device_op(struct zonepub_op *op, enum zonepub_op_kind kind, const char *id,
		      uint32_t index, const uint8_t *hash, int64_t not_after)
{
	memset(op, 0, sizeof(*op));
	op->kind = kind;
	op->dev.id = id;
	op->dev.index = index;
	op->dev.styles = ZONE_STYLE_SEED;
	op->dev.cert_sha256 = hash;
	op->not_after = not_after;
}

void fx_issue(struct fx *fx, struct treq *t, unsigned i, uint32_t index, int64_t not_after)
{
	treq_init(fx, t, 1);
	fx_device_id(i, t->id, sizeof(t->id));
	for (size_t k = 0; k < sizeof(t->hash); k++)
		t->hash[k] = (uint8_t)(i * 31 + index * 7 + k);
	device_op(&t->ops[0], ZONEPUB_OP_DEVICE_ADD, t->id, index, t->hash, not_after);
}

void fx_revoke(struct fx *fx, struct treq *t, unsigned i, uint32_t index)
{
	treq_init(fx, t, 1);
	fx_device_id(i, t->id, sizeof(t->id));
	device_op(&t->ops[0], ZONEPUB_OP_DEVICE_REMOVE, t->id, index, NULL, 0);
}

void fx_reissue(struct fx *fx, struct treq *t, unsigned i, uint32_t old_index, unsigned j,
		uint32_t new_index)
{
	treq_init(fx, t, 2);
	fx_device_id(i, t->id, sizeof(t->id));
	fx_device_id(j, t->id2, sizeof(t->id2));
	for (size_t k = 0; k < sizeof(t->hash); k++)
		t->hash[k] = (uint8_t)(j * 17 + new_index + k);
	device_op(&t->ops[0], ZONEPUB_OP_DEVICE_REMOVE, t->id, old_index, NULL, 0);
	device_op(&t->ops[1], ZONEPUB_OP_DEVICE_ADD, t->id2, new_index, t->hash, 0);
}

void fx_rr(struct fx *fx, struct treq *t, bool add, const char *text)
{
	treq_init(fx, t, 1);
	assert_int_equal(ldns_rr_new_frm_str(&t->rr, text, 3600, NULL, NULL), LDNS_STATUS_OK);
	t->ops[0].kind = add ? ZONEPUB_OP_RR_ADD : ZONEPUB_OP_RR_REMOVE;
	t->ops[0].rr = t->rr;
}

void fx_treq_clear(struct treq *t)
{
	ldns_rr_free(t->rr);
	t->rr = NULL;
}

/* ---- Checks ---- */

bool fx_has_device(struct fx *fx, unsigned i, uint32_t index)
{
	char id[64], owner[256];
	ldns_rr_list *l = NULL;
	bool has;

	fx_device_id(i, id, sizeof(id));
	assert_int_equal(zone_device_owner(zonepub_zone(fx->zp), id, index, owner, sizeof(owner)),
			 0);
	assert_int_equal(zone_name_rrs(zonepub_zone(fx->zp), owner, &l), 0);
	has = ldns_rr_list_rr_count(l) > 0;
	ldns_rr_list_deep_free(l);
	return has;
}

static int count_journal(void *ctx, const struct store_journal_entry *e)
{
	(void)e;
	(*(size_t *)ctx)++;
	return 0;
}

size_t fx_store_journal_rows(struct fx *fx)
{
	size_t n = 0;

	assert_int_equal(store_journal_foreach(fx->ro, count_journal, &n), 0);
	return n;
}

uint32_t fx_store_serial(struct fx *fx)
{
	unsigned char *v = NULL;
	size_t len = 0;
	uint32_t s;

	assert_int_equal(store_zone_meta_get(fx->ro, "serial", &v, &len), 0);
	assert_int_equal(len, 4);
	s = ((uint32_t)v[0] << 24) | ((uint32_t)v[1] << 16) | ((uint32_t)v[2] << 8) | v[3];
	free(v);
	return s;
}

size_t fx_diff_rrsigs(const struct zone_diff *d, uint16_t type)
{
	const ldns_rr_list *l = zone_diff_added(d);
	size_t n = 0;

	for (size_t i = 0; i < ldns_rr_list_rr_count(l); i++) {
		const ldns_rr *rr = ldns_rr_list_rr(l, i);
		if (ldns_rr_get_type(rr) == LDNS_RR_TYPE_RRSIG &&
		    ldns_rdf2rr_type(ldns_rr_rrsig_typecovered(rr)) == type)
			n++;
	}
	return n;
}
