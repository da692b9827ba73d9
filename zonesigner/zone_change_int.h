/**
 * @file zone_change_int.h
 * @brief The change-set internals shared by zone_change.c (building a
 * change) and zone_commit.c (signing and applying it). Not public.
 */
#ifndef REGSIGN_ZONE_CHANGE_INT_H
#define REGSIGN_ZONE_CHANGE_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonesigner/zone_internal.h"

enum chg_op { OP_NONE = 0, OP_INSERT, OP_REPLACE, OP_REMOVE };

/* One owner name touched by a change. */
struct chg_entry {
	uint8_t *key;
	size_t keylen;
	struct zone_node *old;       /* the name's node in the tree now, or NULL */
	struct zone_edit edit;       /* its content after the change */
	bool exists;                 /* has data after the change (set by the commit) */
	struct zone_node *node;      /* new node, owned by the entry until swapped in */
	uint8_t next[ZONE_KEY_MAX];  /* NSEC next name after the change */
	size_t nextlen;
	enum chg_op op;
};

struct zone_change {
	struct zone *z;
	struct chg_entry **v;   /* sorted by key */
	size_t n, cap;
	bool done;
};

/** Position of @p key among the entries (or where it would go). */
size_t zone_chg_find(const struct zone_change *c, const uint8_t *key, size_t keylen,
		     bool *found);
/** The entry of @p key, created (decoding the tree's node) when absent. */
int zone_chg_get(struct zone_change *c, const uint8_t *key, size_t keylen,
		 struct chg_entry **out);
/** The entry of @p key or NULL. */
struct chg_entry *zone_chg_lookup(const struct zone_change *c, const uint8_t *key,
				  size_t keylen);
void zone_chg_entry_free(struct zone *z, struct chg_entry *e);

#endif
