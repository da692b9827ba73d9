/*
 * ops_zone_info.c - what STATUS and ZONE_STATUS say about the registry zone:
 * name, serial, zone file, the DNS listener's addresses, names and records,
 * the earliest signature expiry, and its health. A plain read: not audited.
 *
 * Health failures: the zone is not loaded; a signature sits inside its
 * refresh margin past the grace period (re-signing is behind, so validators
 * will soon see an expired RRSIG); a signature has expired (the zone is
 * bogus now); the latest version the daemon tried to publish failed (signer,
 * self-check or store) and the previous serial is still served; the
 * background verification found a signature that does not verify, and no
 * complete pass since has found the zone clean (the RRset was queued for
 * re-signing when it was found).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "signer/dns_acl.h"
#include "signer/dns_notify.h"
#include "signer/dns_server.h"
#include "signer/ops_json.h"
#include "signer/ops_zone.h"
#include "zonesigner/zone_file.h"

/* Above this many names ZONE_STATUS does not count records (a walk of the zone). */
#define RECORDS_MAX_NAMES 100000

static int
count_rr(void *ctx, const ldns_rr *rr)
{
	(void)rr;
	(*(size_t *)ctx)++;
	return 0;
}

/* The health failures, as a JSON array of sentences. */
static int
failures_json(struct ops_zone *z, const struct zonepub_status *st, int64_t now,
	      struct buf_writer *w)
{
	int n = 0;

	ops_json_put(w, "\"failures\":[");
#define FAIL(...)                                            \
	do {                                                 \
		char msg_[256];                              \
		snprintf(msg_, sizeof(msg_), __VA_ARGS__);   \
		if (n++)                                     \
			ops_json_put(w, ",");                \
		ops_json_str(w, msg_);                       \
	} while (0)
	if (z == NULL || !z->open)
		FAIL("the zone is not loaded");
	if (st != NULL && st->expired)
		FAIL("a signature in the zone has expired: validators see it as bogus");
	else if (st != NULL && st->earliest_expiration != 0 && st->earliest_expiration <= now)
		FAIL("a signature in the zone has expired: validators see it as bogus");
	if (st != NULL && st->margin_failure)
		FAIL("a signature is inside its refresh margin and re-signing is behind");
	if (st != NULL && st->last_error != 0 && st->last_error_time >= z->last_published)
		FAIL("the latest zone version failed and serial %u is still served: %s",
		     (unsigned)st->serial, st->last_error_msg);
	if (st != NULL && st->verify_failing)
		FAIL("the background verification found %llu bad signature(s), latest %.80s; "
		     "re-signing was queued, this clears when a full pass finds the zone clean",
		     (unsigned long long)st->verify_failures, st->verify_last_failure);
#undef FAIL
	ops_json_put(w, "],");
	return n;
}

/* The background verification of every signature (zonepub_sched.c). */
static void
verify_json(const struct zonepub_status *st, struct buf_writer *w)
{
	ops_json_putf(w, "\"verify_passes\":%llu,\"verify_names\":%llu,"
		      "\"verify_signatures\":%llu,\"verify_failures\":%llu,"
		      "\"verify_repairs\":%llu,\"verify_failing\":%s,",
		      (unsigned long long)st->verify_passes, (unsigned long long)st->verify_names,
		      (unsigned long long)st->verify_signatures,
		      (unsigned long long)st->verify_failures,
		      (unsigned long long)st->verify_repairs,
		      st->verify_failing ? "true" : "false");
	if (st->verify_pass_started > 0) {
		ops_json_putf(w, "\"verify_pass_started\":%lld,",
			      (long long)st->verify_pass_started);
		ops_json_time(w, "verify_pass_started_time", st->verify_pass_started);
	}
	ops_json_kstr(w, "verify_last_failure", st->verify_last_failure, 1);
	if (st->verify_last_failure_time > 0)
		ops_json_time(w, "verify_last_failure_time", st->verify_last_failure_time);
}

/* The listener's addresses with their actual ports. */
static void
listen_json(struct ops_zone *z, struct buf_writer *w)
{
	ops_json_put(w, "\"listen\":[");
	for (size_t i = 0; z && z->server && i < dns_server_naddrs(z->server); i++) {
		struct sockaddr_storage ss;
		char host[64] = "";
		unsigned port = 0;

		if (dns_server_addr(z->server, i, &ss) != 0)
			continue;
		if (ss.ss_family == AF_INET) {
			const struct sockaddr_in *a = (const struct sockaddr_in *)&ss;

			inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
			port = ntohs(a->sin_port);
		} else if (ss.ss_family == AF_INET6) {
			const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)&ss;

			inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
			port = ntohs(a->sin6_port);
		}
		ops_json_put(w, i ? ",{" : "{");
		ops_json_kstr(w, "address", host, 1);
		ops_json_putf(w, "\"port\":%u}", port);
	}
	ops_json_put(w, "],");
}

/* What only ZONE_STATUS shows: records, listener and NOTIFY details, counters. */
static void
details_json(struct ops_ctx *ctx, struct ops_zone *z, const struct zonepub_status *st,
	     struct buf_writer *w)
{
	const struct config *cfg = ctx->cfg;
	size_t records = 0;

	if (st->names <= RECORDS_MAX_NAMES &&
	    zone_foreach_rr(zonepub_zone(z->zp), count_rr, &records) == 0)
		ops_json_putf(w, "\"records\":%zu,", records);
	else
		ops_json_put(w, "\"records\":null,");
	ops_json_putf(w, "\"bytes\":%zu,", st->bytes);
	if (st->next_due > 0) {
		ops_json_putf(w, "\"next_resign\":%lld,", (long long)st->next_due);
		ops_json_time(w, "next_resign_time", st->next_due);
	}
	ops_json_putf(w, "\"queued\":%zu,\"versions\":%llu,\"changes\":%llu,"
		      "\"signatures\":%llu,\"resigned\":%llu,\"expired_removed\":%llu,"
		      "\"version_failures\":%llu,\"check_failures\":%llu,",
		      st->queued, (unsigned long long)st->groups, (unsigned long long)st->changes,
		      (unsigned long long)st->signatures, (unsigned long long)st->resigned,
		      (unsigned long long)st->expired_removed, (unsigned long long)st->failures,
		      (unsigned long long)st->check_failures);
	ops_json_putf(w, "\"journal\":{\"diffs\":%zu,\"bytes\":%zu},", st->journal_diffs,
		      st->journal_bytes);
	ops_json_put(w, "\"notify\":{\"targets\":[");
	for (size_t i = 0; i < cfg->dns.n_notify; i++) {
		ops_json_put(w, i ? ",{" : "{");
		ops_json_kstr(w, "address", cfg->dns.notify[i],
			      cfg->dns.notify_key && cfg->dns.notify_key[i]);
		if (cfg->dns.notify_key && cfg->dns.notify_key[i])
			ops_json_kstr(w, "key", cfg->dns.notify_key[i], 0);
		ops_json_put(w, "}");
	}
	ops_json_put(w, "],");
	if (z->notify) {
		struct dns_notify_stats ns;

		dns_notify_stats_get(z->notify, &ns);
		ops_json_putf(w, "\"sent\":%llu,\"acked\":%llu,\"failed\":%llu,\"pending\":%zu,",
			      (unsigned long long)ns.sent, (unsigned long long)ns.acked,
			      (unsigned long long)ns.failed, dns_notify_pending(z->notify));
	}
	ops_json_putf(w, "\"serials\":%llu},", (unsigned long long)z->notifies);
	if (z->server) {
		struct dns_server_stats ds;

		dns_server_stats_get(z->server, &ds);
		ops_json_putf(w, "\"dns\":{\"transfer_message_size\":%u,\"udp\":%llu,\"tcp\":%llu,"
			      "\"axfr\":%llu,\"ixfr\":%llu,\"ixfr_fallback\":%llu,\"refused_xfr\":%llu,"
			      "\"tsig_failures\":%llu},",
			      (unsigned)cfg->dns.transfer_message_size,
			      (unsigned long long)ds.udp_msgs, (unsigned long long)ds.tcp_msgs,
			      (unsigned long long)ds.axfr, (unsigned long long)ds.ixfr,
			      (unsigned long long)ds.ixfr_fallback,
			      (unsigned long long)ds.refused_xfr,
			      (unsigned long long)ds.tsig_failures);
	}
	ops_json_putf(w, "\"hsm_batches\":%llu,\"hsm_batch_failures\":%llu,",
		      (unsigned long long)z->hsm.batches, (unsigned long long)z->hsm.failures);
}

void
ops_zone_json(struct ops_ctx *ctx, struct buf_writer *w, bool full, int *failures)
{
	struct ops_zone *z = ctx->zone;
	struct zonepub_status st;
	int64_t now = (int64_t)time(NULL);
	bool have = z != NULL && z->open && z->zp != NULL;

	memset(&st, 0, sizeof(st));
	if (have)
		zonepub_status_get(z->zp, &st);
	ops_json_kstr(w, "zone", policy_zone(ctx->policy->pol)->name, 1);
	ops_json_putf(w, "\"serial\":%u,", (unsigned)st.serial);
	ops_json_putf(w, "\"names\":%zu,", st.names);
	if (st.earliest_expiration > 0) {
		ops_json_putf(w, "\"earliest_expiration\":%lld,", (long long)st.earliest_expiration);
		ops_json_time(w, "earliest_expiration_time", st.earliest_expiration);
	}
	ops_json_put(w, "\"zone_file\":{");
	ops_json_kstr(w, "path", ctx->cfg->state.zone_file ? ctx->cfg->state.zone_file : "", 1);
	ops_json_putf(w, "\"interval\":%u,\"serial\":%u,\"freed\":%llu},",
		      (unsigned)ctx->cfg->state.zone_file_interval, (unsigned)st.zone_file_serial,
		      (unsigned long long)st.zone_file_freed);
	listen_json(z, w);
	if (have)
		verify_json(&st, w);
	if (full && have)
		details_json(ctx, z, &st, w);
	*failures = failures_json(z, have ? &st : NULL, now, w);
	ops_json_kstr(w, "health", *failures ? "failing" : "ok", 0);
}

void
ops_zone_status(struct ops_req *r)
{
	struct buf_writer w;
	int failures = 0;

	buf_writer_init(&w, PROTO_REPLY_MAX - 64);
	ops_json_put(&w, "{");
	ops_zone_json(r->ctx, &w, true, &failures);
	ops_json_put(&w, "}");
	ops_json_reply(r, PROTO_OP_ZONE_STATUS, &w, "zone status document");
}
