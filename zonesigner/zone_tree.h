/**
 * @file zone_tree.h
 * @brief The ordered index of the zone's names (internal module).
 *
 * An AVL tree whose links live inside the nodes themselves (zone_node.h), so
 * the index costs no allocation of its own: insert, remove and replace never
 * allocate and therefore cannot fail half-way, which lets a commit apply a
 * signed change and undo it again without any error path. Keys compare with
 * zone_name_key_cmp (canonical DNS order). Every node also carries the
 * earliest re-sign due time and expiration of its subtree (serial
 * arithmetic), so finding what needs re-signing costs O(k log n).
 */
#ifndef REGSIGN_ZONE_TREE_H
#define REGSIGN_ZONE_TREE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "zonesigner/zone_node.h"

struct zone_tree {
	struct zone_node *root;
	size_t count;
	uint32_t refresh_device;  /* due = expiration - refresh of the RRset's class */
	uint32_t refresh_other;
	/* The slabs holding nodes of this tree (zone_node.h), freed with the
	 * zone; they move with the tree (zone_swap_names). */
	struct zone_slabs slabs;
};

/** @brief The node's own earliest due time and expiration; false if it has no RRset. */
bool zone_tree_node_times(const struct zone_tree *t, const struct zone_node *n,
			  uint32_t *due, uint32_t *exp);

struct zone_node *zone_tree_find(const struct zone_tree *t, const uint8_t *key, size_t keylen);
/** @brief The greatest node with a key < @p key, or NULL. */
struct zone_node *zone_tree_pred(const struct zone_tree *t, const uint8_t *key, size_t keylen);
/** @brief The least node with a key > @p key, or NULL. */
struct zone_node *zone_tree_succ(const struct zone_tree *t, const uint8_t *key, size_t keylen);
struct zone_node *zone_tree_first(const struct zone_tree *t);
struct zone_node *zone_tree_last(const struct zone_tree *t);

/** @brief Insert a node; ZONE_EEXIST (tree unchanged) if its key is present. */
int zone_tree_insert(struct zone_tree *t, struct zone_node *n);
/** @brief Unlink and return the node with @p key, or NULL. */
struct zone_node *zone_tree_remove(struct zone_tree *t, const uint8_t *key, size_t keylen);
/** @brief Put @p n in place of the node with the same key; returns that node or NULL. */
struct zone_node *zone_tree_replace(struct zone_tree *t, struct zone_node *n);
/** @brief Recompute the subtree times along the path to @p key (after a node's times changed in place). */
void zone_tree_touch(struct zone_tree *t, const uint8_t *key, size_t keylen);

/** @brief Make a balanced tree of @p n nodes sorted by key (replaces t->root). */
void zone_tree_build(struct zone_tree *t, struct zone_node **sorted, size_t n);

/**
 * @brief As zone_tree_build(), from @p n nodes chained in key order through
 * their right links (@p head first): a load collects its nodes so, with no
 * array of pointers beside the zone (8 bytes a name at the peak of a load).
 */
void zone_tree_build_list(struct zone_tree *t, struct zone_node *head, size_t n);

/** In-order iteration; the tree must not change while an iterator is used. */
struct zone_tree_iter {
	struct zone_node *stack[96];
	int sp;
};
void zone_tree_iter_init(struct zone_tree_iter *it, const struct zone_tree *t);
struct zone_node *zone_tree_iter_next(struct zone_tree_iter *it);

/**
 * @brief Collect up to @p max nodes having an RRset due (due <= now), in
 * tree order. @return the number stored in @p out.
 */
size_t zone_tree_collect_due(const struct zone_tree *t, uint32_t now,
			     struct zone_node **out, size_t max);

#endif
