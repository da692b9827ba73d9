/*
 * Tests of signer/config: regsignd.yaml parsed into struct config, and each kind of
 * error refused with a message naming file:line and the key.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <limits.h>
#include <unistd.h>

#include <cmocka.h>

#include "signer/config.h"

#define MODULE "/usr/lib/softhsm/libsofthsm2.so"

static const char base[] =
	"version: 1\n"                                                   /* 1 */
	"hsm:\n"                                                         /* 2 */
	"  module: " MODULE "\n"                                         /* 3 */
	"  token: \"pkcs11:token=regsign-dev\"\n"                        /* 4 */
	"  pin-file: /abs/pin\n"                                         /* 5 */
	"  sessions: 3\n"                                                /* 6 */
	"  recover-timeout: 45s\n"                                       /* 7 */
	"  environment:\n"                                               /* 8 */
	"    SOFTHSM2_CONF: /abs/softhsm2.conf\n"                        /* 9 */
	"keys:\n"                                                        /* 10 */
	"  issuing-ca: \"pkcs11:token=regsign-dev;object=regsign-issuing-ca\"\n"
	"  ksk: \"pkcs11:token=regsign-dev;object=regsign-ksk\"\n"       /* 12 */
	"  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk\"\n"       /* 13 */
	"  audit: \"pkcs11:token=regsign-dev;object=regsign-audit\"\n"   /* 14 */
	"extra-zones:\n"                                                 /* 15 */
	"  - name: ASP.test.\n"                                          /* 16 */
	"    ksk: \"pkcs11:token=regsign-dev;object=regsign-asp.test-ksk\"\n"
	"    zsk: \"pkcs11:token=regsign-dev;object=regsign-asp.test-zsk\"\n"
	"ca:\n"                                                          /* 19 */
	"  root-certificate: /abs/out/root-ca.pem\n"                     /* 20 */
	"  issuing-certificate: /abs/out/issuing-ca.pem\n"               /* 21 */
	"  max-validity: 398d\n"                                         /* 22 */
	"socket:\n"                                                      /* 23 */
	"  path: /abs/regsignd.sock\n"                                   /* 24 */
	"  mode: \"0660\"\n"                                             /* 25 */
	"  max-frame: 262144\n"                                          /* 26 */
	"  queue-depth: 1024\n"                                          /* 27 */
	"policy: /abs/policy.yaml\n"                                     /* 28 */
	"state:\n"                                                       /* 29 */
	"  database: /abs/state/regsign.db\n"                            /* 30 */
	"  audit-log: /abs/state/audit.jsonl\n"                          /* 31 */
	"  zone-file: /abs/state/zone.db\n"                              /* 32 */
	"dns:\n"                                                         /* 33 */
	"  listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]\n"               /* 34 */
	"  notify: [\"192.0.2.1\", \"192.0.2.2:5300\"]\n"                /* 35 */
	"  allow-transfer: [\"127.0.0.1\", \"2001:db8::/32\"]\n"         /* 36 */
	"log:\n"                                                         /* 37 */
	"  syslog: false\n"                                              /* 38 */
	"  level: notice\n";                                             /* 39 */

struct env {
	char dir[64];
	char path[128];
};

static int setup(void **state)
{
	struct env *e = calloc(1, sizeof(*e));

	assert_non_null(e);
	snprintf(e->dir, sizeof(e->dir), "/tmp/regsign-config-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	snprintf(e->path, sizeof(e->path), "%s/regsignd.yaml", e->dir);
	*state = e;
	return 0;
}

static int teardown(void **state)
{
	struct env *e = *state;
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	assert_int_equal(system(cmd), 0);
	free(e);
	return 0;
}

/*
 * Writes base with edits: pairs of (from, to) strings, each replacing the first
 * occurrence of from, ended by NULL.
 */
static void write_edited(const struct env *e, ...)
{
	char *text = strdup(base);
	const char *from, *to;
	va_list ap;
	FILE *f;

	assert_non_null(text);
	va_start(ap, e);
	while ((from = va_arg(ap, const char *)) != NULL) {
		char *at = strstr(text, from), *next;

		to = va_arg(ap, const char *);
		if (at == NULL)
			fail_msg("test bug: \"%s\" not in the base config", from);
		next = malloc(strlen(text) + strlen(to) + 1);
		assert_non_null(next);
		memcpy(next, text, (size_t)(at - text));
		strcpy(next + (at - text), to);
		strcat(next, at + strlen(from));
		free(text);
		text = next;
	}
	va_end(ap);
	f = fopen(e->path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	free(text);
}

static void write_config(const struct env *e, const char *from, const char *to)
{
	if (from == NULL)
		write_edited(e, NULL);
	else
		write_edited(e, from, to, NULL);
}

/* Loads the config expecting a refusal whose message starts with @p prefix
 * (NULL: anything) and contains @p needle. */
static void expect_error_prefix(const struct env *e, const struct config_load_opts *opts,
                                const char *prefix, const char *needle)
{
	struct config *cfg = NULL;
	char *err = NULL;
	int r = config_load(e->path, opts, &cfg, &err);

	assert_int_equal(r, CONFIG_ERR_INVALID);
	assert_null(cfg);
	assert_non_null(err);
	if (prefix != NULL && strncmp(err, prefix, strlen(prefix)) != 0)
		fail_msg("error \"%s\" does not start with \"%s\"", err, prefix);
	if (strstr(err, needle) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, needle);
	if (getenv("REGSIGN_TEST_VERBOSE"))
		print_message("%s\n", err);
	free(err);
}

/* Loads the config expecting an error at line (0: any) whose message has needle. */
static void expect_error(const struct env *e, const struct config_load_opts *opts,
                         unsigned line, const char *needle)
{
	char prefix[160];

	snprintf(prefix, sizeof(prefix), "%s:%u:", e->path, line);
	expect_error_prefix(e, opts, line > 0 ? prefix : NULL, needle);
}

/* The same, at line:col exactly. */
static void expect_error_at(const struct env *e, unsigned line, unsigned col, const char *needle)
{
	char prefix[160];

	snprintf(prefix, sizeof(prefix), "%s:%u:%u: ", e->path, line, col);
	expect_error_prefix(e, NULL, prefix, needle);
}

/* The base config with one edit (@p from NULL: none) must load; the caller
 * frees what it returns. */
static struct config *load_good(const struct env *e, const char *from, const char *to)
{
	struct config *cfg = NULL;
	char *err = NULL;

	write_config(e, from, to);
	if (config_load(e->path, NULL, &cfg, &err) != CONFIG_OK)
		fail_msg("config refused: %s", err);
	assert_null(err);
	return cfg;
}

/* The base config with text appended after its last line (39): the sandbox section
 * starts on line 40. */
static void write_appended(const struct env *e, const char *text)
{
	write_config(e, "  level: notice\n", text);
}

/*
 * One refused edit of the base config: @c from replaced by @c to must fail at
 * @c line (0: any line) and, when @c col is not 0, at that column exactly, with
 * a message containing @c needle.
 */
struct refusal {
	const char *from, *to;
	unsigned line, col;
	const char *needle;
};

/* Appended after the base's last line (39): such a section starts on line 40. */
#define APPEND "  level: notice\n"

static void expect_refusals(const struct env *e, const struct refusal *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		write_config(e, v[i].from, v[i].to);
		if (v[i].col > 0)
			expect_error_at(e, v[i].line, v[i].col, v[i].needle);
		else
			expect_error(e, NULL, v[i].line, v[i].needle);
	}
}

#define EXPECT_REFUSALS(e, table) expect_refusals((e), (table), sizeof(table) / sizeof((table)[0]))

static void test_good(void **state)
{
	struct env *e = *state;
	struct config *cfg = load_good(e, NULL, NULL);
	const struct config_key *k;

	{
		/* The module is kept resolved: what is checked is what will be loaded. */
		char real[4096];

		assert_non_null(realpath(MODULE, real));
		assert_string_equal(cfg->hsm.module, real);
	}
	assert_string_equal(cfg->hsm.token, "pkcs11:token=regsign-dev");
	assert_string_equal(cfg->hsm.pin_file, "/abs/pin");
	assert_int_equal(cfg->hsm.sessions, 3);
	assert_int_equal(cfg->hsm.recover_timeout_ms, 45000);
	assert_int_equal(cfg->hsm.n_env, 1);
	assert_string_equal(cfg->hsm.env[0].name, "SOFTHSM2_CONF");
	assert_string_equal(cfg->hsm.env[0].value, "/abs/softhsm2.conf");
	/* Four registry keys and two of the extra zone, whose name is lowercased. */
	assert_int_equal(cfg->n_keys, 6);
	assert_string_equal(cfg->keys[0].role, "issuing-ca");
	assert_string_equal(cfg->keys[3].role, "audit");
	assert_int_equal(cfg->n_extra_zones, 1);
	assert_string_equal(cfg->extra_zones[0].name, "asp.test.");
	k = config_key_find(cfg, "asp.test./zsk");
	assert_non_null(k);
	assert_string_equal(k->uri, "pkcs11:token=regsign-dev;object=regsign-asp.test-zsk");
	assert_non_null(config_key_find(cfg, "asp.test./ksk"));
	assert_null(config_key_find(cfg, "root"));
	assert_int_equal(cfg->ca.max_validity, 398 * 86400);
	assert_string_equal(cfg->ca.issuing_certificate, "/abs/out/issuing-ca.pem");
	assert_int_equal(cfg->socket.mode, 0660);
	assert_int_equal(cfg->socket.max_frame, 262144);
	assert_int_equal(cfg->socket.queue_depth, 1024);
	assert_string_equal(cfg->policy, "/abs/policy.yaml");
	assert_string_equal(cfg->state.zone_file, "/abs/state/zone.db");
	assert_int_equal(cfg->dns.n_listen, 2);
	assert_string_equal(cfg->dns.listen[1], "[::1]:5353");
	assert_int_equal(cfg->dns.n_notify, 2);
	assert_int_equal(cfg->dns.n_allow_transfer, 2);
	assert_int_equal(cfg->dns.transfer_message_size, 65535);
	assert_false(cfg->log.syslog);
	assert_int_equal(cfg->log.level, CONFIG_LOG_NOTICE);
	config_free(cfg);
	config_free(NULL);
}

static void test_defaults(void **state)
{
	struct env *e = *state;
	struct config *cfg = NULL;
	char *err = NULL;

	/* Without the optional keys and sections the defaults apply. */
	write_edited(e, "  sessions: 3\n  recover-timeout: 45s\n", "",
	             "  max-validity: 398d\n", "",
	             "  mode: \"0660\"\n  max-frame: 262144\n  queue-depth: 1024\n", "",
	             "dns:\n", "", "  listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]\n", "",
	             "  notify: [\"192.0.2.1\", \"192.0.2.2:5300\"]\n", "",
	             "  allow-transfer: [\"127.0.0.1\", \"2001:db8::/32\"]\n", "",
	             "log:\n  syslog: false\n  level: notice\n", "", (const char *)NULL);
	if (config_load(e->path, NULL, &cfg, &err) != CONFIG_OK)
		fail_msg("config without optional keys refused: %s", err);
	assert_int_equal(cfg->hsm.sessions, 2);
	assert_int_equal(cfg->hsm.recover_timeout_ms, 30000);
	assert_int_equal(cfg->ca.max_validity, 398 * 86400);
	assert_int_equal(cfg->socket.mode, 0660);
	assert_int_equal(cfg->socket.max_frame, 262144);
	assert_int_equal(cfg->socket.queue_depth, 1024);
	assert_int_equal(cfg->dns.n_listen, 0);
	assert_int_equal(cfg->dns.transfer_message_size, 65535);
	assert_false(cfg->log.syslog);
	assert_int_equal(cfg->log.level, CONFIG_LOG_INFO);
	config_free(cfg);
}

static void test_schema_errors(void **state)
{
	struct env *e = *state;

	/* Unknown key, wrong type, out of range, missing required key, bad version. */
	static const struct refusal refused[] = {
		{ "  sessions: 3\n", "  sessions: 3\n  sesions: 4\n", 7, 0, "sesions" },
		{ "  sessions: 3\n", "  sessions: many\n", 6, 0, "sessions" },
		{ "  sessions: 3\n", "  sessions: 65\n", 6, 0, "sessions" },
		{ "  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk\"\n", "", 0, 0, "zsk" },
		{ "version: 1\n", "version: 2\n", 1, 0, "version" },
		{ "  level: notice\n", "  level: loud\n", 39, 0, "level" },
		{ "  max-validity: 398d\n", "  max-validity: forever\n", 22, 0, "max-validity" },
		/* The strict reader refuses YAML tricks, e.g. a duplicate key. */
		{ "policy: /abs/policy.yaml\n", "policy: /abs/policy.yaml\npolicy: /abs/other.yaml\n", 0, 0, "policy" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_paths(void **state)
{
	struct env *e = *state;

	static const struct refusal refused[] = {
		{ "  pin-file: /abs/pin\n", "  pin-file: pin\n", 5, 0, "absolute" },
		{ "policy: /abs/policy.yaml\n", "policy: ./policy.yaml\n", 28, 0, "absolute" },
		{ "  zone-file: /abs/state/zone.db\n", "  zone-file: state/zone.db\n", 32, 0, "absolute" },
		{ "  root-certificate: /abs/out/root-ca.pem\n", "  root-certificate: out/root-ca.pem\n", 20, 0, "absolute" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_module(void **state)
{
	struct env *e = *state;
	char line[256], mod[128], allowed[128], link[160];
	const char *dirs[] = { allowed, NULL };
	struct config_load_opts opts = { dirs };
	struct config *cfg = NULL;
	char *err = NULL;
	FILE *f;

	/* Relative, missing, and outside the allow-list. */
	write_config(e, "  module: " MODULE "\n", "  module: libsofthsm2.so\n");
	expect_error(e, NULL, 3, "absolute");
	write_config(e, "  module: " MODULE "\n", "  module: /usr/lib/nonexistent/p11.so\n");
	expect_error(e, NULL, 3, "not a readable file");
	snprintf(mod, sizeof(mod), "%s/p11.so", e->dir);
	f = fopen(mod, "w");
	assert_non_null(f);
	fclose(f);
	snprintf(line, sizeof(line), "  module: %s\n", mod);
	write_config(e, "  module: " MODULE "\n", line);
	expect_error(e, NULL, 3, "outside the allowed module directories");
	/* A directory the caller adds is allowed. */
	snprintf(allowed, sizeof(allowed), "%s", e->dir);
	assert_int_equal(config_load(e->path, &opts, &cfg, &err), CONFIG_OK);
	assert_string_equal(cfg->hsm.module, mod);
	config_free(cfg);
	/* A symlink inside an allowed directory that leads outside it is refused. */
	snprintf(allowed, sizeof(allowed), "%s/ok", e->dir);
	assert_int_equal(mkdir(allowed, 0700), 0);
	snprintf(link, sizeof(link), "%s/p11.so", allowed);
	assert_int_equal(symlink(mod, link), 0);
	snprintf(line, sizeof(line), "  module: %s\n", link);
	write_config(e, "  module: " MODULE "\n", line);
	expect_error(e, &opts, 3, "outside the allowed module directories");
	/* "/usr/lib/../../tmp" style escapes resolve first. */
	snprintf(line, sizeof(line), "  module: /usr/lib/../..%s\n", mod);
	write_config(e, "  module: " MODULE "\n", line);
	expect_error(e, NULL, 3, "outside the allowed module directories");
}

static void test_uris(void **state)
{
	struct env *e = *state;

	static const struct refusal refused[] = {
		{ "  token: \"pkcs11:token=regsign-dev\"\n", "  token: \"pkcs11:token=regsign-dev?pin-value=1234\"\n", 4, 0, "pin-value" },
		{ "  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk\"\n", "  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk?pin-value=1234\"\n", 13, 0, "pin-value" },
		{ "  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk\"\n", "  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk?pin-source=/abs/pin\"\n", 13, 0, "pin-source" },
		{ "  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk\"\n", "  zsk: \"pkcs11:token=regsign-dev\"\n", 13, 0, "names no object" },
		{ "  zsk: \"pkcs11:token=regsign-dev;object=regsign-zsk\"\n", "  zsk: \"regsign-zsk\"\n", 13, 0, "not a pkcs11: URI" },
		{ "    zsk: \"pkcs11:token=regsign-dev;object=regsign-asp.test-zsk\"\n", "    zsk: \"pkcs11:token=regsign-dev;object=x;pin-value=1\"\n", 18, 0, "pin-value" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_keys(void **state)
{
	struct env *e = *state;

	static const struct refusal refused[] = {
		{ "  audit: ", "  root-ca: \"pkcs11:token=regsign-dev;object=root\"\n  audit: ", 14, 0, "never online" },
		{ "  audit: ", "  root: \"pkcs11:token=regsign-dev;object=root\"\n  audit: ", 14, 0, "never online" },
		{ "  audit: ", "  dsk: \"pkcs11:token=regsign-dev;object=x\"\n  audit: ", 14, 0, "dsk" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_extra_zones(void **state)
{
	struct env *e = *state;

	static const struct refusal refused[] = {
		{ "  - name: ASP.test.\n", "  - name: asp.test\n", 16, 0, "absolute zone name" },
		{ "  - name: ASP.test.\n", "  - name: \"a..test.\"\n", 16, 0, "absolute zone name" },
		{ "ca:\n", "  - name: asp.test.\n" "    zsk: \"pkcs11:token=regsign-dev;object=z2\"\n" "ca:\n", 19, 0, "twice" },
		/* The zsk is required, the ksk optional. */
		{ "    zsk: \"pkcs11:token=regsign-dev;object=regsign-asp.test-zsk\"\n", "", 0, 0, "zsk" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_socket_dns(void **state)
{
	struct env *e = *state;

	static const struct refusal refused[] = {
		{ "  mode: \"0660\"\n", "  mode: \"660\"\n", 25, 0, "octal" },
		{ "  mode: \"0660\"\n", "  mode: \"0999\"\n", 25, 0, "octal" },
		{ "  listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]\n", "  listen: [\"127.0.0.1\"]\n", 34, 0, "address:port" },
		{ "  listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]\n", "  listen: [\"localhost:53\"]\n", 34, 0, "localhost" },
		{ "  listen: [\"127.0.0.1:5353\", \"[::1]:5353\"]\n", "  listen: [\"127.0.0.1:70000\"]\n", 34, 0, "address:port" },
		{ "  allow-transfer: [\"127.0.0.1\", \"2001:db8::/32\"]\n", "  allow-transfer: [\"127.0.0.1/33\"]\n", 36, 0, "address" },
	};

	EXPECT_REFUSALS(e, refused);
}

/*
 * dns.transfer-message-size: bytes per AXFR/IXFR message, from 4096 (every RR of
 * the zone with the question, OPT and TSIG must fit one) to 65535 (the largest
 * message over TCP); 65535 when absent. Each refusal names the key and both bounds.
 */
static void test_transfer_message_size(void **state)
{
	struct env *e = *state;
	static const char at[] = "  allow-transfer: [\"127.0.0.1\", \"2001:db8::/32\"]\n";
	static const char *const good[] = { "4096", "16384", "65535" };
	static const uint32_t good_v[] = { 4096, 16384, 65535 };
	static const char *const bad[] = { "4095", "512", "0", "-1", "65536", "1000000",
					   "big", "4096.5", "[4096]" };
	char to[256];

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		struct config *cfg;

		snprintf(to, sizeof(to), "%s  transfer-message-size: %s\n", at, good[i]);
		cfg = load_good(e, at, to);
		assert_int_equal(cfg->dns.transfer_message_size, good_v[i]);
		config_free(cfg);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		snprintf(to, sizeof(to), "%s  transfer-message-size: %s\n", at, bad[i]);
		write_config(e, at, to);
		/* The line of the value (37), the key's full name and both bounds. */
		expect_error(e, NULL, 37, "'dns.transfer-message-size' must be an integer "
					  "between 4096 and 65535");
	}
}

static void test_sandbox_section(void **state)
{
	struct env *e = *state;
	struct config *cfg;
	char *big;

	/* Without the section: enabled, Landlock required, nothing extra. */
	cfg = load_good(e, NULL, NULL);
	assert_true(cfg->sandbox.enabled);
	assert_false(cfg->sandbox.landlock_best_effort);
	assert_null(cfg->sandbox.front.user);
	assert_int_equal(cfg->sandbox.front.n_read, 0);
	assert_int_equal(cfg->sandbox.hsm.n_write, 0);
	assert_int_equal(cfg->sandbox.hsm_connect, 0);
	config_free(cfg);

	/* Every key. */
	cfg = load_good(e, APPEND, "  level: notice\n"
	                  "sandbox:\n"
	                  "  enabled: false\n"
	                  "  landlock: best-effort\n"
	                  "  front:\n"
	                  "    user: regsign\n"
	                  "    group: regsign-grp\n"
	                  "    read: [/abs/ro1, /abs/ro2]\n"
	                  "    write: [/abs/rw]\n"
	                  "  hsm:\n"
	                  "    user: regsign-hsm\n"
	                  "    write: [/var/lib/softhsm/tokens]\n"
	                  "    connect: [unix, inet]\n");
	assert_false(cfg->sandbox.enabled);
	assert_true(cfg->sandbox.landlock_best_effort);
	assert_string_equal(cfg->sandbox.front.user, "regsign");
	assert_string_equal(cfg->sandbox.front.group, "regsign-grp");
	assert_int_equal(cfg->sandbox.front.n_read, 2);
	assert_string_equal(cfg->sandbox.front.read[1], "/abs/ro2");
	assert_int_equal(cfg->sandbox.front.n_write, 1);
	assert_string_equal(cfg->sandbox.front.write[0], "/abs/rw");
	assert_string_equal(cfg->sandbox.hsm.user, "regsign-hsm");
	assert_null(cfg->sandbox.hsm.group);
	assert_int_equal(cfg->sandbox.hsm.n_read, 0);
	assert_int_equal(cfg->sandbox.hsm.n_write, 1);
	assert_int_equal(cfg->sandbox.hsm_connect,
	                 CONFIG_SANDBOX_CONNECT_UNIX | CONFIG_SANDBOX_CONNECT_INET);
	config_free(cfg);

	/* Every refusal, at its line and column. */
	static const struct refusal refused[] = {
		{ APPEND, "  level: notice\nsandbox:\n  enabld: false\n", 41, 3, "enabld" },
		{ APPEND, "  level: notice\nsandbox:\n  enabled: maybe\n", 41, 12, "enabled" },
		{ APPEND, "  level: notice\nsandbox:\n  landlock: sometimes\n", 41, 13, "landlock" },
		{ APPEND, "  level: notice\nsandbox: [on]\n", 40, 10, "sandbox" },
		{ APPEND, "  level: notice\nsandbox:\n  front: [regsign]\n", 41, 10, "front" },
		{ APPEND, "  level: notice\nsandbox:\n  hsm: regsign\n", 41, 8, "hsm" },
		{ APPEND, "  level: notice\nsandbox:\n  front:\n    user: \"\"\n", 42, 11, "user" },
		{ APPEND, "  level: notice\nsandbox:\n  front:\n    user: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 42, 11, "user" },
		{ APPEND, "  level: notice\nsandbox:\n  hsm:\n    group: regsign\n", 42, 12, "needs a user" },
		{ APPEND, "  level: notice\nsandbox:\n  front:\n    connect: [unix]\n", 42, 5, "connect" },
		{ APPEND, "  level: notice\nsandbox:\n  hsm:\n    connect: [tcp]\n", 42, 15, "connect" },
		{ APPEND, "  level: notice\nsandbox:\n  front:\n    read: [/abs/a, rel/b]\n", 42, 20, "absolute" },
		{ APPEND, "  level: notice\nsandbox:\n  hsm:\n    write: [\"\"]\n", 42, 13, "'sandbox.hsm.write[0]' must be a string" },
		{ APPEND, "  level: notice\nsandbox:\n  front:\n    write: /abs/rw\n", 42, 12, "write" },
	};

	EXPECT_REFUSALS(e, refused);
	/* At most 64 paths per list, each shorter than PATH_MAX. */
	big = malloc(65 * 8 + 64);
	assert_non_null(big);
	strcpy(big, "  level: notice\nsandbox:\n  hsm:\n    read: [");
	for (int i = 0; i < 65; i++)
		strcat(big, i ? ", /abs/p" : "/abs/p");
	strcat(big, "]\n");
	write_appended(e, big);
	free(big);
	expect_error_at(e, 42, 11, "read");
	big = malloc(PATH_MAX + 128);
	assert_non_null(big);
	strcpy(big, "  level: notice\nsandbox:\n  front:\n    read: [/");
	memset(big + strlen(big), 'a', PATH_MAX);
	strcpy(big + strlen("  level: notice\nsandbox:\n  front:\n    read: [/") + PATH_MAX, "]\n");
	write_appended(e, big);
	free(big);
	expect_error_at(e, 42, 12, "read");
}

static void test_call_timeout(void **state)
{
	struct env *e = *state;
	struct config *cfg;

	/* Default: four recover timeouts (45 s here), at least a minute. */
	cfg = load_good(e, NULL, NULL);
	assert_int_equal(cfg->hsm.call_timeout_ms, 180000);
	config_free(cfg);
	cfg = load_good(e, "  recover-timeout: 45s\n", "  recover-timeout: 5s\n");
	assert_int_equal(cfg->hsm.call_timeout_ms, 60000);
	config_free(cfg);
	cfg = load_good(e, "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  call-timeout: 2m\n");
	assert_int_equal(cfg->hsm.call_timeout_ms, 120000);
	config_free(cfg);

	/* Refusals: out of range, not a duration, not longer than recover-timeout. */
	static const struct refusal refused[] = {
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  call-timeout: 0s\n", 8, 17, "call-timeout" },
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  call-timeout: 86401s\n", 8, 17, "call-timeout" },
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  call-timeout: soon\n", 8, 17, "call-timeout" },
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  call-timeout: 45s\n", 8, 17, "must be longer than 'hsm.recover-timeout' (45s)" },
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  call-timeout: 30s\n", 8, 17, "must be longer than" },
		/* The message gives both values in seconds, whatever unit was written. */
		{ "  recover-timeout: 45s\n", "  recover-timeout: 1h\n  call-timeout: 30m\n", 8, 17, "(1800s) must be longer than 'hsm.recover-timeout' (3600s)" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_key_copies(void **state)
{
	struct env *e = *state;
	struct config *cfg;

	/* Default: session copies on, the token object looked at every second. */
	cfg = load_good(e, NULL, NULL);
	assert_true(cfg->hsm.key_copies);
	assert_int_equal(cfg->hsm.key_check_ms, 1000);
	config_free(cfg);
	cfg = load_good(e, "  recover-timeout: 45s\n",
	                "  recover-timeout: 45s\n  key-copies: false\n  key-check-interval: 0s\n");
	assert_false(cfg->hsm.key_copies);
	assert_int_equal(cfg->hsm.key_check_ms, 0);
	config_free(cfg);
	cfg = load_good(e, "  recover-timeout: 45s\n",
	                "  recover-timeout: 45s\n  key-check-interval: 1m\n");
	assert_true(cfg->hsm.key_copies);
	assert_int_equal(cfg->hsm.key_check_ms, 60000);
	config_free(cfg);

	static const struct refusal refused[] = {
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  key-copies: sometimes\n", 8, 15, "key-copies" },
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  key-check-interval: 2h\n", 8, 23, "key-check-interval" },
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  key-check-interval: -1s\n", 8, 23, "key-check-interval" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_sign_ahead(void **state)
{
	struct env *e = *state;
	struct config *cfg;

	/* Default: idle HSM workers prepare the next signatures. */
	cfg = load_good(e, NULL, NULL);
	assert_true(cfg->hsm.sign_ahead);
	config_free(cfg);
	cfg = load_good(e, "  recover-timeout: 45s\n",
	                "  recover-timeout: 45s\n  sign-ahead: false\n");
	assert_false(cfg->hsm.sign_ahead);
	assert_true(cfg->hsm.key_copies);
	config_free(cfg);
	cfg = load_good(e, "  recover-timeout: 45s\n",
	                "  recover-timeout: 45s\n  sign-ahead: true\n");
	assert_true(cfg->hsm.sign_ahead);
	config_free(cfg);

	static const struct refusal refused[] = {
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  sign-ahead: maybe\n", 8, 15, "sign-ahead" },
		{ "  recover-timeout: 45s\n", "  recover-timeout: 45s\n  sign-ahead: 1s\n", 8, 15, "sign-ahead" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_cpu_latency(void **state)
{
	struct env *e = *state;
	struct config *cfg;

	/* Default: off; when on, idle CPUs poll (0 us) and it is kept 1 s. */
	cfg = load_good(e, NULL, NULL);
	assert_false(cfg->cpu_latency.enabled);
	assert_int_equal(cfg->cpu_latency.limit_us, 0);
	assert_int_equal(cfg->cpu_latency.hold_s, 1);
	config_free(cfg);
	cfg = load_good(e, APPEND, APPEND "cpu-latency:\n  enabled: true\n");
	assert_true(cfg->cpu_latency.enabled);
	assert_int_equal(cfg->cpu_latency.limit_us, 0);
	assert_int_equal(cfg->cpu_latency.hold_s, 1);
	config_free(cfg);
	cfg = load_good(e, APPEND, APPEND "cpu-latency:\n  enabled: true\n  limit-us: 20\n"
	                "  hold: 2m\n");
	assert_true(cfg->cpu_latency.enabled);
	assert_int_equal(cfg->cpu_latency.limit_us, 20);
	assert_int_equal(cfg->cpu_latency.hold_s, 120);
	config_free(cfg);

	static const struct refusal refused[] = {
		{ APPEND, APPEND "cpu-latency:\n  enabled: yes please\n", 41, 12, "enabled" },
		{ APPEND, APPEND "cpu-latency:\n  limit-us: -1\n", 41, 13, "limit-us" },
		{ APPEND, APPEND "cpu-latency:\n  limit-us: 1000001\n", 41, 13, "limit-us" },
		{ APPEND, APPEND "cpu-latency:\n  hold: 0s\n", 41, 9, "hold" },
		{ APPEND, APPEND "cpu-latency:\n  hold: 2h\n", 41, 9, "hold" },
		{ APPEND, APPEND "cpu-latency:\n  governor: poll\n", 41, 3, "governor" },
		{ APPEND, APPEND "cpu-latency: 0\n", 40, 14, "cpu-latency" },
	};

	EXPECT_REFUSALS(e, refused);
}

static void test_io(void **state)
{
	struct env *e = *state;
	struct config *cfg = NULL;
	char *err = NULL, path[160];

	snprintf(path, sizeof(path), "%s/missing.yaml", e->dir);
	assert_int_equal(config_load(path, NULL, &cfg, &err), CONFIG_ERR_IO);
	assert_null(cfg);
	assert_non_null(err);
	assert_non_null(strstr(err, "missing.yaml"));
	free(err);
	assert_int_equal(config_load(NULL, NULL, &cfg, NULL), CONFIG_ERR_ARG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_good),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_schema_errors),
		cmocka_unit_test(test_paths),
		cmocka_unit_test(test_module),
		cmocka_unit_test(test_uris),
		cmocka_unit_test(test_keys),
		cmocka_unit_test(test_extra_zones),
		cmocka_unit_test(test_socket_dns),
		cmocka_unit_test(test_transfer_message_size),
		cmocka_unit_test(test_sandbox_section),
		cmocka_unit_test(test_call_timeout),
		cmocka_unit_test(test_key_copies),
		cmocka_unit_test(test_sign_ahead),
		cmocka_unit_test(test_cpu_latency),
		cmocka_unit_test(test_io),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
