/*
 * zonepub's signer through hsmlink: one hsmlink_sign() call per batch (the
 * link splits it over as many messages as it needs and answers once), and
 * the DNSKEYs from the HSM process's public keys.
 */
#include "signer/zonepub_hsm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void zonepub_hsm_init(struct zonepub_hsm *h, hsmlink_t *link)
{
	memset(h, 0, sizeof(*h));
	h->link = link;
	h->ksk_role = "ksk";
	h->zsk_role = "zsk";
}

/* A batch on its way: where the answers go. */
struct batch {
	struct zonepub_hsm *h;
	struct zone_sigreq *reqs;
	size_t n;
	zonepub_sign_done_fn done;
	void *arg;
};

static void signed_cb(void *arg, const struct hsmlink_result *res, size_t n)
{
	struct batch *b = arg;
	struct zonepub_hsm *h = b->h;
	int status = n == b->n ? 0 : -1;

	/* Two clock reads per batch: cheap enough to keep for the stage trace. */
	h->t_answered = commit_now_ns();
	/* Every signature must be there and of the right size, or none is used:
	 * the zone stays as it was when a batch fails. */
	for (size_t i = 0; status == 0 && i < n; i++) {
		if (res[i].status != HSMPROTO_ST_OK || res[i].value_len != 64) {
			h->last_status = res[i].status;
			snprintf(h->last_reason, sizeof(h->last_reason), "%s",
				 res[i].reason ? res[i].reason : "");
			status = -1;
			break;
		}
		memcpy(b->reqs[i].sig, res[i].value, 64);
	}
	h->batches++;
	if (status != 0)
		h->failures++;
	b->done(b->arg, status);
	free(b);
}

static int sign(void *ctx, struct zone_sigreq *reqs, size_t n, zonepub_sign_done_fn done,
		void *arg)
{
	struct zonepub_hsm *h = ctx;
	struct hsmlink_sign_req *q = NULL;
	struct batch *b = NULL;
	uint64_t t_sent;
	int r = -1;

	if (n == 0 || (q = calloc(n, sizeof(*q))) == NULL || (b = calloc(1, sizeof(*b))) == NULL)
		goto out;
	for (size_t i = 0; i < n; i++) {
		q[i].role = reqs[i].role == ZONE_KEY_KSK ? h->ksk_role : h->zsk_role;
		q[i].kind = HSMPROTO_KIND_RRSIG_DATA;
		q[i].format = HSMPROTO_FORMAT_RAW;
		q[i].data = reqs[i].data;
		q[i].len = reqs[i].len;
	}
	b->h = h;
	b->reqs = reqs;
	b->n = n;
	b->done = done;
	b->arg = arg;
	/* hsmlink copies the data before it returns; its callback runs later. */
	t_sent = commit_now_ns();
	if (hsmlink_sign(h->link, q, n, signed_cb, b) != HSMLINK_OK)
		goto out;
	b = NULL;
	h->t_sent = t_sent;
	h->last_n = n;
	r = 0;
out:
	free(q);
	free(b);
	return r;
}

struct zonepub_signer zonepub_hsm_signer(struct zonepub_hsm *h)
{
	struct zonepub_signer s = { sign, h };

	return s;
}

/* ---- DNSKEYs ---- */

struct keys {
	struct zonepub_hsm *h;
	zonepub_hsm_keys_fn done;
	void *arg;
	struct zone_dnskey ksk, zsk;
	int status;
	int answers;
};

static void key_cb(struct keys *k, const struct hsmlink_result *res, struct zone_dnskey *out,
		   uint16_t flags)
{
	if (k->status == 0 && res->status != HSMPROTO_ST_OK) {
		k->h->last_status = res->status;
		snprintf(k->h->last_reason, sizeof(k->h->last_reason), "%s",
			 res->reason ? res->reason : "");
		k->status = ZONEPUB_ESIGN;
	} else if (k->status == 0 &&
		   zone_dnskey_from_spki(res->value, res->value_len, flags, out) != 0) {
		k->status = ZONEPUB_EINVAL;
	}
	if (++k->answers == 2) {
		k->done(k->arg, k->status, k->status ? NULL : &k->ksk, k->status ? NULL : &k->zsk);
		free(k);
	}
}

static void ksk_cb(void *arg, const struct hsmlink_result *res)
{
	struct keys *k = arg;

	key_cb(k, res, &k->ksk, ZONE_DNSKEY_FLAGS_KSK);
}

static void zsk_cb(void *arg, const struct hsmlink_result *res)
{
	struct keys *k = arg;

	key_cb(k, res, &k->zsk, ZONE_DNSKEY_FLAGS_ZSK);
}

int zonepub_hsm_keys(struct zonepub_hsm *h, zonepub_hsm_keys_fn done, void *arg)
{
	struct keys *k = calloc(1, sizeof(*k));
	int r;

	if (k == NULL)
		return ZONEPUB_ENOMEM;
	k->h = h;
	k->done = done;
	k->arg = arg;
	if ((r = hsmlink_pubkey(h->link, h->ksk_role, ksk_cb, k)) != HSMLINK_OK) {
		free(k);
		return r == HSMLINK_ERR_NOMEM ? ZONEPUB_ENOMEM : ZONEPUB_ESIGN;
	}
	if ((r = hsmlink_pubkey(h->link, h->zsk_role, zsk_cb, k)) != HSMLINK_OK) {
		/* The first answer still comes; let it and this failure end the request. */
		struct hsmlink_result fake = { HSMPROTO_ST_ERROR, "", NULL, 0 };
		zsk_cb(k, &fake);
		return 0;
	}
	return 0;
}

/* ---- Parameters from the policy ---- */

static int u32(int64_t v, uint32_t *out)
{
	if (v < 0 || v > (int64_t)UINT32_MAX)
		return ZONEPUB_EINVAL;
	*out = (uint32_t)v;
	return 0;
}

int zonepub_params_from_policy(const struct policy_zone *pz, struct zone_params *p)
{
	int r = 0;

	zone_params_init(p);
	p->origin = pz->name;
	if (pz->dance_prefix != NULL)
		p->dance_prefix = pz->dance_prefix;
	r |= u32(pz->ttl, &p->ttl);
	r |= u32(pz->device_ttl, &p->device_ttl);
	r |= u32(pz->device_signature_validity, &p->device_validity);
	r |= u32(pz->device_signature_refresh, &p->device_refresh);
	r |= u32(pz->signature_validity, &p->validity);
	r |= u32(pz->signature_refresh, &p->refresh);
	r |= u32(pz->inception_offset, &p->inception_offset);
	r |= u32(pz->soa_minimum, &p->soa_minimum);
	/*
	 * zone.verify-signatures: "none" leaves the structural self-check only;
	 * "sampled" (the default) verifies one fresh signature per key per group;
	 * "all" verifies every fresh signature.
	 */
	p->verify = pz->verify_signatures != POLICY_VERIFY_NONE;
	p->verify_all = pz->verify_signatures == POLICY_VERIFY_ALL;
	return r ? ZONEPUB_EINVAL : 0;
}

unsigned zonepub_styles_from_policy(const struct policy_zone *pz)
{
	unsigned s = 0;

	/* Spelled out rather than assumed: the two enums are separate. */
	if (pz->record_styles & POLICY_STYLE_SEED)
		s |= ZONE_STYLE_SEED;
	if (pz->record_styles & POLICY_STYLE_CERT_PKIX)
		s |= ZONE_STYLE_CERT_PKIX;
	if (pz->record_styles & POLICY_STYLE_DANCE)
		s |= ZONE_STYLE_DANCE;
	return s;
}

/* ---- The intent gate ---- */

void zonepub_gate_init(struct zonepub_gate *g, struct zonepub_signer inner)
{
	memset(g, 0, sizeof(*g));
	g->inner = inner;
}

void zonepub_gate_scope_set(struct zonepub_gate *g,
			    void (*scope)(void *arg, bool *held, bool *cancelled), void *arg)
{
	g->scope = scope;
	g->scope_arg = arg;
}

/* Whether a hold and a cancelled request concern the version being signed. */
static void gate_state(const struct zonepub_gate *g, bool *held, bool *cancelled)
{
	*held = g->holds > 0;
	*cancelled = g->cancelled > 0;
	if (g->scope && (*held || *cancelled))
		g->scope(g->scope_arg, held, cancelled);
}

/* Sends or fails the waiting batch once the holds allow it. */
static void gate_kick(struct zonepub_gate *g)
{
	zonepub_sign_done_fn done = g->done;
	void *arg = g->arg;
	bool held, cancelled;
	int r;

	if (!g->waiting)
		return;
	gate_state(g, &held, &cancelled);
	if (cancelled) {
		/* It may carry a change no intent allows: never sign it. */
		g->waiting = false;
		g->failures++;
		done(arg, ZONEPUB_EWITHDRAWN);
		return;
	}
	if (held)
		return;
	g->waiting = false;
	r = g->inner.sign(g->inner.ctx, g->reqs, g->n, done, arg);
	if (r != 0)
		done(arg, r);
}

static int gate_sign(void *ctx, struct zone_sigreq *reqs, size_t n, zonepub_sign_done_fn done,
		     void *arg)
{
	struct zonepub_gate *g = ctx;
	bool held, cancelled;

	gate_state(g, &held, &cancelled);
	if (cancelled) {
		g->failures++;
		return ZONEPUB_EWITHDRAWN;
	}
	if (!held)
		return g->inner.sign(g->inner.ctx, reqs, n, done, arg);
	if (g->waiting)
		return -1; /* zonepub signs one batch at a time: cannot happen */
	g->waiting = true;
	g->waited++;
	g->reqs = reqs;
	g->n = n;
	g->done = done;
	g->arg = arg;
	return 0;
}

struct zonepub_signer zonepub_gate_signer(struct zonepub_gate *g)
{
	struct zonepub_signer s = { gate_sign, g };

	return s;
}

void zonepub_gate_hold(struct zonepub_gate *g)
{
	g->holds++;
}

void zonepub_gate_release(struct zonepub_gate *g, bool ok, bool inside)
{
	if (g->holds > 0)
		g->holds--;
	if (!ok && inside)
		g->cancelled++;
	gate_kick(g);
}

void zonepub_gate_left(struct zonepub_gate *g, bool held, bool cancelled)
{
	if (held && g->holds > 0)
		g->holds--;
	if (cancelled && g->cancelled > 0)
		g->cancelled--;
	gate_kick(g);
}

uint64_t zonepub_gate_failures(const struct zonepub_gate *g)
{
	return g->failures;
}
