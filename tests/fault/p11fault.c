/*
 * p11fault: a PKCS#11 module for tests that forwards every call to a real
 * module (SoftHSM by default) and, when its control file says so, fails
 * chosen calls, drops every session or hides the token. It also counts calls
 * and watches for two threads using one session at once. The control-file
 * format is in README.md next to this file.
 *
 * This is test code standing in for a shared library that PKCS#11 consumers
 * load by path, so it keeps its state in globals (the one exception STYLE.md
 * allows) and reports control-file mistakes on stderr.
 */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <p11-kit/pkcs11.h>

#include "pkcs11/hsm_ckr.h"

#ifndef P11FAULT_DEFAULT_MODULE
#define P11FAULT_DEFAULT_MODULE "/usr/lib/softhsm/libsofthsm2.so"
#endif

#define MAX_RULES 64
#define MAX_COUNTED 64
#define MAX_TRACKED 512
#define NAME_MAX_LEN 40
#define INFINITE (-1L)

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list);
static int load_real(void);
static void stats_write(void);

struct rule {
	char func[NAME_MAX_LEN];
	CK_RV rv;
	long remaining;    /* calls still to fail; INFINITE for ever */
};

struct delay {
	char func[NAME_MAX_LEN];
	long ms;
};

struct counter {
	char func[NAME_MAX_LEN];
	unsigned long calls;
};

struct tracked {
	CK_SESSION_HANDLE s;
	unsigned active;        /* calls in flight on this session */
	pid_t sign_owner;       /* thread that called C_SignInit last (kernel tid:
	                         * pthread_t values are reused at once) */
	bool sign_pending;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
/* Held shared around every forwarded call on a session, exclusively while
 * "invalidate" closes the sessions: the restart happens between calls, as it
 * would on a device, and never while SoftHSM is inside a call on a session
 * it is deleting (SoftHSM is not safe against that and answers with
 * CKR_GENERAL_ERROR or worse). Writer-preferring so that it cannot starve. */
static pthread_rwlock_t gate;
static pthread_once_t gate_once = PTHREAD_ONCE_INIT;
static bool invalidate_pending;
static void *real_dl;
static CK_FUNCTION_LIST_PTR real;
static CK_FUNCTION_LIST shim;

static char control_path[4096];
static char stats_path[4200];
static struct stat control_st;
static bool control_seen;

static struct rule rules[MAX_RULES];
static unsigned nrules;
static struct delay delays[MAX_RULES];
static unsigned ndelays;
static long down_calls;          /* C_GetSlotList/C_OpenSession calls still "down" */
static struct timespec down_until;
static bool count_all;
static struct counter counters[MAX_COUNTED];
static unsigned ncounters;
static bool counting;

static struct tracked tracked[MAX_TRACKED];
static unsigned long overlaps, mixups, injected, invalidations;
static unsigned concurrent, concurrent_max;
static unsigned long init_flags;   /* flags of the last C_Initialize args */

static bool ckr_parse(const char *s, CK_RV *rv)
{
	char *end;

#define P11FAULT_NAME(n) if (strcmp(s, #n) == 0) { *rv = n; return true; }
	HSM_CKR_LIST(P11FAULT_NAME)
#undef P11FAULT_NAME
	errno = 0;
	*rv = strtoul(s, &end, 0);
	return errno == 0 && end != s && *end == '\0';
}

static bool count_parse(const char *s, long *n)
{
	char *end;

	if (s == NULL) {
		*n = 1;
		return true;
	}
	if (strcmp(s, "inf") == 0 || strcmp(s, "*") == 0) {
		*n = INFINITE;
		return true;
	}
	errno = 0;
	*n = strtol(s, &end, 10);
	return errno == 0 && end != s && *end == '\0' && *n >= 0;
}

static void now_plus_ms(struct timespec *ts, long ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += ms / 1000;
	ts->tv_nsec += (ms % 1000) * 1000000L;
	if (ts->tv_nsec >= 1000000000L) {
		ts->tv_sec++;
		ts->tv_nsec -= 1000000000L;
	}
}

static bool before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

/* Closes every real session of every slot, as a restarted HSM would have
 * forgotten them: later calls on the old handles fail with
 * CKR_SESSION_HANDLE_INVALID. */
static void gate_init(void)
{
	pthread_rwlockattr_t a;

	pthread_rwlockattr_init(&a);
	pthread_rwlockattr_setkind_np(&a, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&gate, &a);
	pthread_rwlockattr_destroy(&a);
}

static void invalidate_all(void)
{
	CK_SLOT_ID slots[64];
	CK_ULONG n = 64;

	pthread_rwlock_wrlock(&gate);
	if (real != NULL && real->C_GetSlotList(CK_FALSE, slots, &n) == CKR_OK) {
		for (CK_ULONG i = 0; i < n; i++)
			real->C_CloseAllSessions(slots[i]);
	}
	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < MAX_TRACKED; i++)
		tracked[i].sign_pending = false;
	invalidations++;
	if (counting)
		stats_write();
	pthread_mutex_unlock(&mu);
	pthread_rwlock_unlock(&gate);
}

static void reset_rules(void)
{
	nrules = 0;
	ndelays = 0;
	down_calls = 0;
	memset(&down_until, 0, sizeof(down_until));
	/* Counters keep their totals across reloads (a test compares the
	 * values before and after what it does); only the selection resets. */
	count_all = false;
	counting = false;
}

static struct counter *counter_get(const char *func, bool create)
{
	for (unsigned i = 0; i < ncounters; i++) {
		if (strcmp(counters[i].func, func) == 0)
			return &counters[i];
	}
	if (!create || ncounters == MAX_COUNTED)
		return NULL;
	snprintf(counters[ncounters].func, NAME_MAX_LEN, "%s", func);
	counters[ncounters].calls = 0;
	return &counters[ncounters++];
}

static void parse_line(char *line, unsigned lineno)
{
	char *w[4] = { NULL, NULL, NULL, NULL }, *save = NULL;
	unsigned n = 0;
	long num;
	CK_RV rv;

	for (char *t = strtok_r(line, " \t\r\n", &save); t != NULL && n < 4;
	     t = strtok_r(NULL, " \t\r\n", &save))
		w[n++] = t;
	if (n == 0 || w[0][0] == '#')
		return;
	if (strcmp(w[0], "invalidate") == 0 && n == 1) {
		invalidate_pending = true;
	} else if (strcmp(w[0], "down") == 0 && n == 2 && count_parse(w[1], &num)) {
		down_calls = num;
	} else if (strcmp(w[0], "down-ms") == 0 && n == 2 && count_parse(w[1], &num) &&
	           num != INFINITE) {
		now_plus_ms(&down_until, num);
	} else if (strcmp(w[0], "count") == 0 && n == 2) {
		counting = true;
		if (strcmp(w[1], "*") == 0)
			count_all = true;
		else if (counter_get(w[1], true) == NULL)
			fprintf(stderr, "p11fault: line %u: too many counters\n", lineno);
	} else if (strcmp(w[0], "delay") == 0 && n == 3 && ndelays < MAX_RULES &&
	           count_parse(w[2], &num) && num != INFINITE) {
		snprintf(delays[ndelays].func, NAME_MAX_LEN, "%s", w[1]);
		delays[ndelays++].ms = num;
	} else if (strncmp(w[0], "C_", 2) == 0 && (n == 2 || n == 3) &&
	           nrules < MAX_RULES && ckr_parse(w[1], &rv) &&
	           count_parse(w[2], &num)) {
		snprintf(rules[nrules].func, NAME_MAX_LEN, "%s", w[0]);
		rules[nrules].rv = rv;
		rules[nrules++].remaining = num;
	} else {
		fprintf(stderr, "p11fault: %s line %u not understood\n", control_path,
		        lineno);
	}
}

/* Re-reads the control file when it changed (inode, size or mtime): writers
 * replace it with rename(2) so a half-written file is never read. */
static void reload_if_changed(void)
{
	struct stat st;
	char line[512];
	unsigned lineno = 0;
	FILE *f;

	if (control_path[0] == '\0')
		return;
	if (stat(control_path, &st) != 0) {
		if (control_seen) {
			reset_rules();
			control_seen = false;
		}
		return;
	}
	if (control_seen && st.st_ino == control_st.st_ino &&
	    st.st_dev == control_st.st_dev && st.st_size == control_st.st_size &&
	    st.st_mtim.tv_sec == control_st.st_mtim.tv_sec &&
	    st.st_mtim.tv_nsec == control_st.st_mtim.tv_nsec)
		return;
	control_st = st;
	control_seen = true;
	reset_rules();
	f = fopen(control_path, "r");
	if (f == NULL)
		return;
	while (fgets(line, sizeof(line), f) != NULL)
		parse_line(line, ++lineno);
	fclose(f);
}

static void stats_write(void)
{
	char tmp[4300];
	FILE *f;

	if (stats_path[0] == '\0')
		return;
	snprintf(tmp, sizeof(tmp), "%s.tmp", stats_path);
	f = fopen(tmp, "w");
	if (f == NULL)
		return;
	for (unsigned i = 0; i < ncounters; i++)
		fprintf(f, "%s %lu\n", counters[i].func, counters[i].calls);
	fprintf(f, "overlap %lu\nmixup %lu\nconcurrent-max %u\ninjected %lu\n"
	        "invalidations %lu\ninit-flags %lu\n", overlaps, mixups, concurrent_max,
	        injected, invalidations, init_flags);
	if (fclose(f) == 0)
		rename(tmp, stats_path);
}

static bool down_now(void)
{
	struct timespec now;

	if (down_until.tv_sec == 0 && down_until.tv_nsec == 0)
		return false;
	clock_gettime(CLOCK_MONOTONIC, &now);
	return before(&now, &down_until);
}

static struct tracked *track_get(CK_SESSION_HANDLE s)
{
	struct tracked *free_slot = NULL;

	for (unsigned i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i].s == s && (tracked[i].active > 0 || tracked[i].sign_pending))
			return &tracked[i];
		if (free_slot == NULL && tracked[i].active == 0 && !tracked[i].sign_pending)
			free_slot = &tracked[i];
	}
	if (free_slot != NULL)
		free_slot->s = s;
	return free_slot;
}

/* Called first by every wrapper: reload the control file (running an
 * "invalidate" it asks for), count the call, decide on a fault, and for a
 * call on a session mark it busy and take the gate shared (shim_leave()
 * undoes both). Returns true with *rv set when the call must fail without
 * reaching the real module; then nothing is held. */
static bool shim_enter(const char *func, bool has_session, CK_SESSION_HANDLE s,
                       CK_RV *rv)
{
	struct counter *c;
	bool fail = false, changed = false;
	long delay_ms = 0;

	pthread_once(&gate_once, gate_init);
	pthread_mutex_lock(&mu);
	reload_if_changed();
	if (invalidate_pending) {
		invalidate_pending = false;
		pthread_mutex_unlock(&mu);
		invalidate_all();
		pthread_mutex_lock(&mu);
	}
	if (counting) {
		c = counter_get(func, count_all);
		if (c != NULL) {
			c->calls++;
			changed = true;
		}
	}
	for (unsigned i = 0; i < nrules; i++) {
		if (rules[i].remaining != 0 && strcmp(rules[i].func, func) == 0) {
			if (rules[i].remaining > 0)
				rules[i].remaining--;
			*rv = rules[i].rv;
			fail = true;
			injected++;
			changed = true;
			break;
		}
	}
	if (!fail && has_session) {
		struct tracked *t = track_get(s);
		if (t != NULL) {
			if (t->active > 0) {
				overlaps++;
				changed = true;
			}
			t->active++;
			if (strcmp(func, "C_SignInit") == 0) {
				t->sign_owner = gettid();
				t->sign_pending = true;
			} else if (strcmp(func, "C_Sign") == 0 && t->sign_pending) {
				if (t->sign_owner != gettid()) {
					mixups++;
					changed = true;
				}
				t->sign_pending = false;
			}
		}
		if (++concurrent > concurrent_max) {
			concurrent_max = concurrent;
			changed = true;
		}
	}
	for (unsigned i = 0; i < ndelays && !fail; i++) {
		if (strcmp(delays[i].func, func) == 0)
			delay_ms = delays[i].ms;
	}
	if (changed && counting)
		stats_write();
	pthread_mutex_unlock(&mu);
	if (!fail && has_session)
		pthread_rwlock_rdlock(&gate);
	if (delay_ms > 0) {
		struct timespec ts = { delay_ms / 1000, (delay_ms % 1000) * 1000000L };
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
	return fail;
}

static void shim_leave(CK_SESSION_HANDLE s)
{
	pthread_mutex_lock(&mu);
	for (unsigned i = 0; i < MAX_TRACKED; i++) {
		if (tracked[i].s == s && tracked[i].active > 0) {
			tracked[i].active--;
			break;
		}
	}
	concurrent--;
	pthread_mutex_unlock(&mu);
	pthread_rwlock_unlock(&gate);
}

/* Whether the token is hidden for this call; "down N" counts the calls that
 * look for the token or open a session on it. */
static bool token_hidden(bool consume)
{
	bool hidden;

	pthread_mutex_lock(&mu);
	hidden = down_now() || down_calls != 0;
	if (hidden && consume && down_calls > 0)
		down_calls--;
	pthread_mutex_unlock(&mu);
	return hidden;
}

#include "tests/fault/p11fault_fwd.h"

static int load_real(void)
{
	const char *path = getenv("P11FAULT_MODULE");
	const char *control = getenv("P11FAULT_CONTROL");
	const char *stats = getenv("P11FAULT_STATS");
	CK_C_GetFunctionList get;
	void *sym;

	pthread_mutex_lock(&mu);
	if (control == NULL)
		control = "";
	/* The same file is not read again just because a consumer initialises
	 * the module again: its "next N calls" are counted across inits. */
	if (strcmp(control, control_path) != 0) {
		snprintf(control_path, sizeof(control_path), "%s", control);
		control_seen = false;
		reset_rules();
		/* Another control file is another test: its counts start at 0. */
		ncounters = 0;
		overlaps = mixups = injected = invalidations = init_flags = 0;
		concurrent_max = 0;
	}
	if (stats != NULL)
		snprintf(stats_path, sizeof(stats_path), "%s", stats);
	else if (control != NULL)
		snprintf(stats_path, sizeof(stats_path), "%s.stats", control);
	else
		stats_path[0] = '\0';
	pthread_mutex_unlock(&mu);
	if (real != NULL)
		return 0;
	if (path == NULL || path[0] == '\0')
		path = P11FAULT_DEFAULT_MODULE;
	real_dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (real_dl == NULL) {
		fprintf(stderr, "p11fault: cannot load %s: %s\n", path, dlerror());
		return -1;
	}
	sym = dlsym(real_dl, "C_GetFunctionList");
	if (sym == NULL) {
		fprintf(stderr, "p11fault: %s has no C_GetFunctionList\n", path);
		return -1;
	}
	memcpy(&get, &sym, sizeof(get));
	if (get(&real) != CKR_OK || real == NULL) {
		fprintf(stderr, "p11fault: C_GetFunctionList of %s failed\n", path);
		real = NULL;
		return -1;
	}
	return 0;
}

CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR list)
{
	if (list == NULL)
		return CKR_ARGUMENTS_BAD;
	if (load_real() != 0)
		return CKR_GENERAL_ERROR;
	shim_fill(&shim);
	shim.version = real->version;
	*list = &shim;
	return CKR_OK;
}
