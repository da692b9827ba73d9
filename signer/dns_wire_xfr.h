/**
 * @file dns_wire_xfr.h
 * @brief Internal: the state of a transfer stream (dns_xfr.h), shared by
 * dns_xfr.c (setup, the ldns walk and the IXFR chain) and dns_wire_xfr.c
 * (dns_xfr_fill, the walk in wire form). Not for other modules.
 */
#ifndef REGSIGN_SIGNER_DNS_WIRE_XFR_H
#define REGSIGN_SIGNER_DNS_WIRE_XFR_H

#include "signer/dns_netdiff.h"
#include "signer/dns_xfr.h"
#include "zonesigner/zone.h"

/* The RRs of a name still to be sent, copied out of the zone. */
struct xfr_held {
	uint8_t owner[255];
	size_t ownerlen;
	struct zone_wire_rr *rr;
	size_t nrr, idx, cap;
	uint8_t *data;
	size_t datacap;
};

enum xfr_phase {
	XFR_FIRST_SOA,
	XFR_BODY,
	XFR_LAST_SOA,
	XFR_DONE,
};

struct dns_xfr {
	bool ixfr;
	enum xfr_phase phase;
	uint32_t serial;
	size_t count;
	unsigned followed;     /* AXFR: versions the zone moved through meanwhile */
	ldns_rr *soa;          /* the SOA the transfer starts and ends with */

	/* AXFR: the live zone, walked one owner name at a time. */
	const struct zone *z;
	ldns_rdf *origin;
	ldns_rr_list *cur;     /* RRs of the current name (our copy) */
	size_t idx;
	bool at_apex;
	ldns_rdf *next;        /* next owner name, from the current name's NSEC */
	const struct dns_journal *j;
	struct dns_netdiff *nd; /* live zone -> the version being sent, once it moved */

	/* AXFR in wire form (dns_xfr_fill) while the zone is still the version
	 * being sent: its nodes read in place, and the rest of a name that did
	 * not fit into a message copied (the zone may change before the next). */
	bool in_place;
	struct zone_wire_iter *wi;
	struct xfr_held held;
	uint8_t nextw[255];    /* the NSEC next name of the last name read */
	size_t nextwlen;
	ldns_buffer *rdbuf;    /* RDATA of an ldns RR being written */

	/* IXFR: the chain of diffs, fetched when the transfer starts. */
	struct zone_diff **diffs;
	size_t ndiffs, di;
	int part;              /* 0: removed list, 1: added list */
};

/* The zone moved on during an AXFR: get the net difference from the
 * version being sent to the live one (DNS_ECHANGED if the journal lacks it). */
int dns_xfr__follow(struct dns_xfr *x);

/* The next RR of the stream in ldns form without taking it; NULL after the
 * closing SOA. */
int dns_xfr__peek(struct dns_xfr *x, const ldns_rr **rr);

/* Take the RR dns_xfr__peek() gave. */
void dns_xfr__take(struct dns_xfr *x);

#endif
