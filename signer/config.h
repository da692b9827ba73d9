/**
 * @file config.h
 * @brief regsignd.yaml: the daemon's configuration, parsed strictly.
 *
 * The shape is agreed in briefs/config-schema.md. The file is read with the strict YAML
 * reader of policy/yconf.h: an unknown key, a wrong type, a value out of range or a
 * missing required key is an error whose message names file:line:key. On top of the
 * schema this module checks meaning:
 *  - every path must be absolute;
 *  - the PKCS#11 module must resolve (realpath) to a file under an allowed directory
 *    (/usr/lib, /usr/lib64, /usr/local/lib, or one the caller adds), so a config
 *    file cannot make the HSM process load arbitrary code from anywhere;
 *  - token and key URIs must be RFC 7512 `pkcs11:` URIs (parsed with p11-kit) and carry
 *    neither pin-value nor pin-source: the PIN comes only from hsm.pin-file;
 *  - the key roles are issuing-ca, ksk, zsk, audit; a root CA key is refused, as the root
 *    key is never online;
 *  - extra zones have absolute names (ending in '.'), each at most once;
 *  - dns: TSIG keys have absolute names (each at most once), algorithm hmac-sha256 or
 *    hmac-sha512 and an absolute secret-file; a notify or allow-transfer entry is an
 *    address string or a map {address, key} whose key names one of dns.tsig-keys;
 *    name servers have absolute names, each at most once, with valid addresses.
 *    Whether a name server needs addresses (it lies inside the registry zone) depends
 *    on the policy's zone name: the daemon checks that at start.
 *
 * The dns section (all keys optional):
 * @code
 *   dns:
 *     listen: ["127.0.0.1:5353"]          # UDP and TCP; port 0 picks a free port
 *     nameservers:                        # the zone's NS RRset; default ns1.<zone>
 *       - name: ns1.iotregistry.test.
 *         addresses: ["127.0.0.1"]        # in-zone names: A/AAAA glue in the zone
 *     tsig-keys:
 *       - name: xfr-key.
 *         algorithm: hmac-sha256
 *         secret-file: /etc/regsign/xfr-key.b64
 *     notify:                             # "addr[:port]" or {address, key}
 *       - { address: "192.0.2.53", key: xfr-key. }
 *     allow-transfer:                     # "addr[/prefix]" or {address, key}
 *       - "127.0.0.1"
 *     transfer-message-size: 16384        # bytes per AXFR/IXFR message; default 65535
 * @endcode
 * A list is either all strings or all maps. transfer-message-size (for middleboxes
 * and old secondaries that mishandle large messages) is at least CONFIG_XFR_MSG_MIN,
 * because a transfer cannot go on past an RR that does not fit one message with the
 * question, the OPT RR and a TSIG RR: the zone's own RRs (the largest, the apex CERT
 * with the issuing CA's certificate, is under 1 KiB) fit with room to spare. 512,
 * the old UDP limit, would not hold them, and over TCP it buys nothing: the stream
 * is cut into segments whatever the message size.
 *
 * The sandbox section (all keys optional; see docs/CONFIG.md):
 * @code
 *   sandbox:
 *     enabled: true                 # false runs both processes unconfined
 *     landlock: required            # or best-effort (seccomp only without Landlock)
 *     front: { user: regsign, group: regsign, read: [...], write: [...] }
 *     hsm:
 *       user: regsign-hsm
 *       write: [/var/lib/softhsm/tokens]   # the token directory, if not found otherwise
 *       connect: [unix]                    # p11-kit-client; inet for a network HSM
 * @endcode
 * User and group names are kept as written; they are resolved when the sandbox is
 * applied.
 *
 * The parsed configuration is a plain data object: read its fields directly. It is
 * immutable once loaded; config_free releases it.
 */
#ifndef REGSIGN_SIGNER_CONFIG_H
#define REGSIGN_SIGNER_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/** Bounds of dns.transfer-message-size (bytes). */
#define CONFIG_XFR_MSG_MIN 4096
#define CONFIG_XFR_MSG_MAX 65535

/** Errors of config_load. */
enum config_err {
	CONFIG_OK = 0,
	CONFIG_ERR_NOMEM = -1,
	CONFIG_ERR_ARG = -2,
	CONFIG_ERR_IO = -3,      /**< the file cannot be read */
	CONFIG_ERR_INVALID = -4, /**< syntax, schema or meaning; the message says where */
};

/** Log levels of log.level. */
enum config_log_level {
	CONFIG_LOG_DEBUG = 0,
	CONFIG_LOG_INFO,
	CONFIG_LOG_NOTICE,
	CONFIG_LOG_WARNING,
	CONFIG_LOG_ERROR,
};

/** One environment variable set in the HSM process only (hsm.environment). */
struct config_env {
	char *name;
	char *value;
};

/**
 * One online key: role name and key URI. Registry keys have the roles "issuing-ca",
 * "ksk", "zsk", "audit"; keys of extra zones get "<zone>/ksk" and "<zone>/zsk", e.g.
 * "asp.test./zsk" (the zone name as written, lowercased, with its final dot).
 */
struct config_key {
	char *role;
	char *uri;
};

/** An extra zone whose RRsets front ends may have signed. */
struct config_extra_zone {
	char *name; /**< lowercased, absolute (final dot) */
	char *ksk;  /**< key URI, or NULL when not configured */
	char *zsk;  /**< key URI */
};

/**
 * A TSIG key (dns.tsig-keys). The secret stays in its file (base64, one line, as
 * `openssl rand -base64 32` writes it); the daemon reads it at start.
 */
struct config_tsig_key {
	char *name;        /**< absolute, lowercased ("xfr-key.") */
	char *algorithm;   /**< "hmac-sha256" or "hmac-sha512" */
	char *secret_file; /**< absolute */
};

/**
 * A name server of the registry zone (dns.nameservers): an NS target and, for a name
 * inside the zone, its addresses, published in the zone as A/AAAA records (glue).
 */
struct config_nameserver {
	char *name;        /**< absolute, lowercased */
	char **addresses;  /**< IPv4 or IPv6 addresses, checked with inet_pton */
	size_t n_addresses;
};

/** Bits of sandbox.hsm.connect: outgoing sockets the HSM process may open. */
#define CONFIG_SANDBOX_CONNECT_UNIX 1u /**< "unix": p11-kit-client */
#define CONFIG_SANDBOX_CONNECT_INET 2u /**< "inet": a network HSM over TCP/UDP */

/**
 * What one process of regsignd is locked down to, beyond what the rest of the
 * configuration already implies (sandbox.front / sandbox.hsm).
 */
struct config_sandbox_proc {
	char *user;   /**< user to become when started as root; NULL: stay */
	char *group;  /**< its group; NULL: the user's primary group */
	char **read;  /**< extra absolute paths, read-only */
	size_t n_read;
	char **write; /**< extra absolute paths, read-write */
	size_t n_write;
};

struct config {
	char *path; /**< the file it came from */

	struct {
		char *module;   /**< absolute, resolved (realpath) and allow-listed */
		char *token;    /**< RFC 7512 token URI */
		char *pin_file; /**< absolute */
		unsigned sessions; /**< 1..64, default 2 */
		unsigned recover_timeout_ms; /**< default 30 s */
		/** hsm.call-timeout: the HSM process's watchdog ends the process when one
		 * PKCS#11 call takes longer (default 4 x recover-timeout, at least 60 s). */
		unsigned call_timeout_ms;
		/** hsm.key-copies (default true): each HSM worker signs with a session
		 * copy of the key made inside the token (see pkcs11/hsm.h). */
		bool key_copies;
		/** hsm.sign-ahead (default true): idle HSM workers initialise the next
		 * signature's operation in advance (hsm_prepare(), pkcs11/hsm.h). */
		bool sign_ahead;
		/** hsm.key-check-interval (default 1 s; 0 = every signature): how soon a
		 * key deleted or replaced in the token is noticed while copies sign. */
		unsigned key_check_ms;
		struct config_env *env;
		size_t n_env;
	} hsm;

	/** Every online key: the registry's then the extra zones', in file order. */
	struct config_key *keys;
	size_t n_keys;

	struct config_extra_zone *extra_zones;
	size_t n_extra_zones;

	struct {
		char *root_certificate;    /**< absolute */
		char *issuing_certificate; /**< absolute */
		uint64_t max_validity;     /**< seconds; default 398 days */
	} ca;

	struct {
		char *path;           /**< absolute */
		unsigned mode;        /**< e.g. 0660; default 0660 */
		uint32_t max_frame;   /**< default 262144 */
		uint32_t queue_depth; /**< default 1024 */
	} socket;

	char *policy; /**< absolute path of policy.yaml */

	struct {
		char *database;  /**< absolute */
		char *audit_log; /**< absolute */
		char *zone_file; /**< absolute */
		/** Seconds between zone file writes when the zone changed; default 60; 0: only
		 * on demand (SIGUSR1). */
		uint32_t zone_file_interval;
	} state;

	struct {
		char **listen; /**< "addr:port" / "[v6]:port", checked with inet_pton; port 0 = any free */
		size_t n_listen;
		char **notify; /**< same form; port defaults to 53 when absent */
		char **notify_key; /**< per notify entry: its TSIG key name, or NULL */
		size_t n_notify;
		char **allow_transfer; /**< addresses, optionally "/prefix" */
		char **allow_transfer_key; /**< per entry: the TSIG key it requires, or NULL */
		size_t n_allow_transfer;
		struct config_tsig_key *tsig_keys;
		size_t n_tsig_keys;
		struct config_nameserver *nameservers; /**< the zone's NS RRset, in order */
		size_t n_nameservers;
		/** Largest AXFR/IXFR message in bytes, OPT and TSIG RRs included:
		 * CONFIG_XFR_MSG_MIN..CONFIG_XFR_MSG_MAX, default CONFIG_XFR_MSG_MAX. */
		uint32_t transfer_message_size;
	} dns;

	struct {
		bool syslog;
		enum config_log_level level;
	} log;

	/** The cpu-latency section (signer/cpu_latency.h, docs/CONFIG.md): a PM QoS
	 *  limit on CPU wake-up latency held while requests are in. Off by default. */
	struct {
		bool enabled;
		unsigned limit_us;  /**< 0..1000000, default 0 (idle CPUs poll) */
		unsigned hold_s;    /**< kept after the last request: 1..3600 s, default 1 */
	} cpu_latency;

	/** The sandbox section (signer/sandbox.h); all keys optional. */
	struct {
		bool enabled;                /**< default true */
		bool landlock_best_effort;   /**< landlock: best-effort (default required) */
		struct config_sandbox_proc front, hsm;
		unsigned hsm_connect;        /**< CONFIG_SANDBOX_CONNECT_* bits */
	} sandbox;
};

/** Options of config_load. */
struct config_load_opts {
	/**
	 * Directories where PKCS#11 modules may live, besides the built-in ones
	 * (/usr/lib, /usr/lib64, /usr/local/lib). NULL-terminated; NULL for none. They
	 * come from the daemon's command line or build, never from the file itself.
	 */
	const char *const *module_dirs;
};

/** @return a static English description of an enum config_err value. */
const char *config_strerror(int err);

/**
 * Loads and checks a configuration file.
 * @param path  the file
 * @param opts  options; NULL for defaults
 * @param out   receives the configuration (free with config_free) on success
 * @param err   receives a malloc'd message on failure, such as
 *              "regsignd.yaml:4:3: 'sessions' must be ..." (free() it); may be NULL
 * @return 0, CONFIG_ERR_NOMEM, CONFIG_ERR_ARG, CONFIG_ERR_IO, CONFIG_ERR_INVALID.
 */
int config_load(const char *path, const struct config_load_opts *opts, struct config **out,
                char **err);

/** Frees a configuration; NULL is a no-op. */
void config_free(struct config *cfg);

/** @return the key of a role, or NULL when the configuration has none. */
const struct config_key *config_key_find(const struct config *cfg, const char *role);

#endif
