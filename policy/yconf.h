/*
 * yconf: a strict, schema-driven reader for regsign's YAML files.
 *
 * Every configuration, policy and ceremony file of regsign is YAML with a fixed
 * schema. yconf loads one file into a small tree of nodes (map, sequence,
 * scalar), each remembering its file name, 1-based line and column and its
 * path from the top ("profiles.device.validity", "callers[2].uid"). It refuses
 * what none of our files uses and what would make a file mean something other
 * than it appears to: anchors and aliases, explicit tags, duplicate keys,
 * non-scalar keys, several documents, bytes that are not UTF-8, NUL bytes, and
 * files over a size cap.
 *
 * A caller then describes each map with a table of fields and calls
 * yconf_map_read(), which checks that every key present is known, that every
 * required key is present and that every value has the right type and range,
 * and stores the values through the pointers in the table. Errors come out as
 * one line naming file, line, column and key, for example
 *
 *   policy.yaml:12:3: key 'validty' is not allowed in 'profiles.device'
 *   (allowed: key-algorithms, validity, ...)
 *
 * Example (a daemon configuration):
 *
 * @code
 *   char err[YCONF_ERRMAX];
 *   struct yconf_doc *doc = NULL;
 *   const char *socket_path = "/run/regsign/sock";  // default when absent
 *   int64_t sessions = 4;
 *   int64_t timeout = 30;
 *   const struct yconf_node *hsm = NULL;
 *   int r = yconf_doc_load("regsignd.yaml", 0, &doc, err, sizeof err);
 *   if (r != YCONF_OK)
 *       goto out;                                  // err says why
 *   const struct yconf_field top[] = {
 *       YCONF_F_STRING("socket", false, 1, 107, &socket_path),
 *       YCONF_F_INT("sessions", true, 1, 64, &sessions),
 *       YCONF_F_DURATION("timeout", false, 1, 3600, &timeout),
 *       YCONF_F_MAP("hsm", true, &hsm),
 *   };
 *   r = yconf_map_read(yconf_doc_root(doc), top, YCONF_NFIELDS(top),
 *                      err, sizeof err);
 *   // ... then read 'hsm' with its own table; copy strings you keep.
 * out:
 *   yconf_doc_free(doc);
 * @endcode
 *
 * Strings handed out point into the document and live as long as it does.
 * The reader has no global state; a document is immutable once loaded and may
 * be read from several threads at once.
 */
#ifndef REGSIGN_POLICY_YCONF_H
#define REGSIGN_POLICY_YCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/**
 * Errors of libregsign-policy (yconf and policy share this enum).
 * 0 is success, every error is negative.
 */
enum yconf_err {
    YCONF_OK = 0,
    YCONF_ENOMEM = -1,   /**< out of memory */
    YCONF_EIO = -2,      /**< the file could not be opened or read */
    YCONF_ETOOBIG = -3,  /**< the file is larger than the size cap */
    YCONF_ESYNTAX = -4,  /**< not YAML, or YAML we refuse (aliases, tags, ...) */
    YCONF_ESCHEMA = -5,  /**< valid YAML that breaks the schema or a rule */
    YCONF_EINVAL = -6,   /**< a caller passed an invalid argument */
};

/** Size of an error buffer that holds every message yconf writes. */
#define YCONF_ERRMAX 512

/** Size cap used when yconf_doc_load() is given 0. */
#define YCONF_DEFAULT_MAX_BYTES (1024 * 1024)

/** Deepest nesting of maps and sequences a document may have. */
#define YCONF_MAX_DEPTH 32

/** Most keys one map may hold, and most nodes one document may hold. */
#define YCONF_MAX_MAP_KEYS 10000
#define YCONF_MAX_NODES 200000

/** Returns a static English description of a yconf_err value. */
const char *yconf_strerror(int err);

/** Kinds of node. */
enum yconf_kind {
    YCONF_SCALAR = 1,
    YCONF_SEQUENCE = 2,
    YCONF_MAP = 3,
};

struct yconf_doc;
struct yconf_node;

/**
 * Loads and parses the file at @p path.
 *
 * @param path       file to read; its name as given appears in every message.
 * @param max_bytes  refuse files larger than this; 0 means
 *                   YCONF_DEFAULT_MAX_BYTES.
 * @param out        on success receives a new document, which the caller frees
 *                   with yconf_doc_free(); untouched on error.
 * @param err        on error receives one line "file:line:col: what" (or
 *                   "file: what" when no position applies); may be NULL.
 * @return YCONF_OK, YCONF_EIO, YCONF_ETOOBIG, YCONF_ESYNTAX, YCONF_ENOMEM or
 *         YCONF_EINVAL.
 */
int yconf_doc_load(const char *path, size_t max_bytes, struct yconf_doc **out,
                   char *err, size_t errlen);

/**
 * Parses @p len bytes at @p buf as if they were the file @p name. The bytes
 * are copied. Same results and errors as yconf_doc_load() (never YCONF_EIO).
 */
int yconf_doc_parse(const char *name, const void *buf, size_t len,
                    size_t max_bytes, struct yconf_doc **out, char *err,
                    size_t errlen);

/** Frees a document and every node and string in it. NULL is a no-op. */
void yconf_doc_free(struct yconf_doc *doc);

/** The top node of the document; never NULL for a loaded document. */
const struct yconf_node *yconf_doc_root(const struct yconf_doc *doc);

/** The file name given at load time; owned by the document. */
const char *yconf_doc_name(const struct yconf_doc *doc);

/**
 * The exact bytes of the file as read (for digests in audit records); owned
 * by the document. @p len receives their count.
 */
const unsigned char *yconf_doc_bytes(const struct yconf_doc *doc, size_t *len);

/* The node accessors below accept NULL (an absent key) and then return 0,
 * "" or NULL. */

/** Kind of a node (0 for NULL). */
enum yconf_kind yconf_node_kind(const struct yconf_node *node);

/** 1-based line and column where the node starts. */
unsigned yconf_node_line(const struct yconf_node *node);
unsigned yconf_node_column(const struct yconf_node *node);

/**
 * Path of the node from the top, e.g. "zone.name" or "callers[0].uid"; the
 * top node's path is "". Owned by the document.
 */
const char *yconf_node_path(const struct yconf_node *node);

/** A scalar's text (NUL-terminated, UTF-8); NULL for maps and sequences. */
const char *yconf_node_scalar(const struct yconf_node *node);

/**
 * True if a scalar was written without quotes. A plain empty scalar, "~" and
 * "null" are YAML's null and are refused by every yconf type.
 */
bool yconf_node_plain(const struct yconf_node *node);

/** Number of items of a sequence or of key/value pairs of a map; 0 for scalars. */
size_t yconf_node_count(const struct yconf_node *node);

/** Item @p i of a sequence, or value of pair @p i of a map; NULL if out of range. */
const struct yconf_node *yconf_node_item(const struct yconf_node *node, size_t i);

/** Key node of pair @p i of a map (always a scalar); NULL otherwise. */
const struct yconf_node *yconf_node_key(const struct yconf_node *node, size_t i);

/** Value of @p key in a map, or NULL if the node is no map or lacks the key. */
const struct yconf_node *yconf_node_get(const struct yconf_node *node,
                                        const char *key);

/**
 * Writes "file:line:col: " followed by the formatted message into @p err, for
 * errors that a caller finds in a node after the schema check (for example
 * "device-signature-refresh must be shorter than device-signature-validity").
 * Always returns YCONF_ESCHEMA so that callers can write
 * `r = yconf_node_errorf(...); goto out;`.
 */
int yconf_node_errorf(const struct yconf_node *node, char *err, size_t errlen,
                      const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Types a schema field may have. */
enum yconf_type {
    YCONF_T_STRING = 1,  /**< scalar; out: const char **; min..max bytes */
    YCONF_T_BOOL,        /**< true or false only; out: bool * */
    YCONF_T_INT,         /**< decimal integer in min..max; out: int64_t * */
    YCONF_T_DURATION,    /**< "300", "90s", "5m", "6h", "14d", "2w"; seconds in
                              min..max; out: int64_t * (seconds) */
    YCONF_T_ENUM,        /**< one of choices; out: int * (index in choices) */
    YCONF_T_ENUMS,       /**< sequence of distinct choices (at most 32);
                              out: uint32_t * (bit i set for choices[i]) */
    YCONF_T_STRINGS,     /**< sequence of scalars, each min..max bytes;
                              out: const struct yconf_node ** (the sequence) */
    YCONF_T_MAP,         /**< map, read later with its own table;
                              out: const struct yconf_node ** */
    YCONF_T_MAPS,        /**< sequence of maps; out: const struct yconf_node ** */
};

/**
 * One key of a map schema. Build entries with the YCONF_F_* macros, which
 * check the type of the out pointer at compile time.
 *
 * When the key is absent the out variable is left as it was, so the caller
 * sets defaults before the call. For sequences, min_items and max_items bound
 * the item count (max_items 0: no bound). For strings, min and max bound the
 * length in bytes (max 0: no bound).
 */
struct yconf_field {
    const char *key;
    enum yconf_type type;
    bool required;
    int64_t min, max;
    size_t min_items, max_items;
    const char *const *choices;  /**< NULL-terminated, for ENUM and ENUMS */
    void *out;                   /**< may be NULL: the value is only checked */
};

#define YCONF_NFIELDS(table) (sizeof(table) / sizeof((table)[0]))

/* The conditional expressions make the compiler check the out pointer type. */
#define YCONF_F_STRING(k, req, minlen, maxlen, outp)                          \
    { .key = (k), .type = YCONF_T_STRING, .required = (req),                  \
      .min = (minlen), .max = (maxlen),                                       \
      .out = (void *)(1 ? (outp) : (const char **)0) }
#define YCONF_F_BOOL(k, req, outp)                                            \
    { .key = (k), .type = YCONF_T_BOOL, .required = (req),                    \
      .out = (void *)(1 ? (outp) : (bool *)0) }
#define YCONF_F_INT(k, req, lo, hi, outp)                                     \
    { .key = (k), .type = YCONF_T_INT, .required = (req),                     \
      .min = (lo), .max = (hi), .out = (void *)(1 ? (outp) : (int64_t *)0) }
#define YCONF_F_DURATION(k, req, lo, hi, outp)                                \
    { .key = (k), .type = YCONF_T_DURATION, .required = (req),                \
      .min = (lo), .max = (hi), .out = (void *)(1 ? (outp) : (int64_t *)0) }
#define YCONF_F_ENUM(k, req, names, outp)                                     \
    { .key = (k), .type = YCONF_T_ENUM, .required = (req),                    \
      .choices = (names), .out = (void *)(1 ? (outp) : (int *)0) }
#define YCONF_F_ENUMS(k, req, names, minitems, outp)                          \
    { .key = (k), .type = YCONF_T_ENUMS, .required = (req),                   \
      .choices = (names), .min_items = (minitems),                            \
      .out = (void *)(1 ? (outp) : (uint32_t *)0) }
#define YCONF_F_STRINGS(k, req, minitems, maxitems, maxlen, outp)             \
    { .key = (k), .type = YCONF_T_STRINGS, .required = (req),                 \
      .min = 1, .max = (maxlen), .min_items = (minitems),                     \
      .max_items = (maxitems),                                                \
      .out = (void *)(1 ? (outp) : (const struct yconf_node **)0) }
#define YCONF_F_MAP(k, req, outp)                                             \
    { .key = (k), .type = YCONF_T_MAP, .required = (req),                     \
      .out = (void *)(1 ? (outp) : (const struct yconf_node **)0) }
#define YCONF_F_MAPS(k, req, minitems, maxitems, outp)                        \
    { .key = (k), .type = YCONF_T_MAPS, .required = (req),                    \
      .min_items = (minitems), .max_items = (maxitems),                       \
      .out = (void *)(1 ? (outp) : (const struct yconf_node **)0) }

/**
 * Checks the map @p map against @p fields and stores each present value
 * through its field's out pointer. Stops at the first error.
 *
 * @return YCONF_OK; YCONF_ESCHEMA with a "file:line:col: ..." message in
 *         @p err if @p map is not a map, has a key not in @p fields, lacks a
 *         required key, or has a value of the wrong type or range;
 *         YCONF_EINVAL for a malformed table. Out variables of fields read
 *         before an error may have been written.
 */
int yconf_map_read(const struct yconf_node *map,
                   const struct yconf_field *fields, size_t nfields,
                   char *err, size_t errlen);

/**
 * Checks one node against one field description (its key is ignored; the
 * node's path names it in messages) and stores the value. For maps whose keys
 * are names chosen by the user, such as "profiles: { device: {...} }".
 * Same results as yconf_map_read().
 */
int yconf_node_read(const struct yconf_node *node,
                    const struct yconf_field *field, char *err, size_t errlen);

/**
 * Parses a duration: a decimal number of seconds, or a number followed by
 * one unit s, m, h, d or w. No sign, no leading zeros, no spaces.
 * @return YCONF_OK with seconds in @p out, or YCONF_EINVAL.
 */
int yconf_duration_parse(const char *text, int64_t *out);

/**
 * Writes @p seconds in the largest unit that divides it exactly ("14d",
 * "90m", "300s"). @return the length snprintf() would return.
 */
int yconf_duration_format(int64_t seconds, char *buf, size_t len);

#endif /* REGSIGN_POLICY_YCONF_H */
