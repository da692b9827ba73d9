/*
 * libregsign-sandbox: the seccomp allow-lists of the two processes, as tables
 * to read and review. Anything not listed kills the whole process with SIGSYS
 * (SCMP_ACT_KILL_PROCESS), so a compromised process cannot probe the filter.
 *
 * Not listed, on purpose: execve/execveat, fork/vfork (clone without
 * CLONE_THREAD), ptrace, process_vm_*, mount and namespaces, setuid and
 * friends, chown (but for SQLite's fchown in the front), module loading, bpf, perf_event_open, keyctl, personality,
 * io_uring (its operations would bypass this filter), and for the HSM
 * process bind, listen and accept.
 */
#include <errno.h>
#include <seccomp.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include "signer/sandbox_int.h"

/*
 * One allowed syscall. arg < 0: any arguments. Otherwise argument @c arg,
 * masked with @c mask, must equal @c value; several rows for one syscall
 * allow any of them. @c also > 0 adds a second condition: argument @c also
 * must equal @c also_value exactly (0: none; the second condition is never
 * on argument 0, which the first one takes where two are needed).
 */
struct sandbox_rule {
	const char *name;
	int arg;
	uint64_t mask;
	uint64_t value;
	int also;
	uint64_t also_value;
};

#define ANY(n) { n, -1, 0, 0, 0, 0 }
#define ARG_IS(n, i, v) { n, i, UINT64_MAX, (uint64_t)(v), 0, 0 }
/* ioctl requests and socket domains are C ints: compare the low 32 bits. */
#define ARG_IS32(n, i, v) { n, i, 0xffffffffu, (uint64_t)(uint32_t)(v), 0, 0 }
#define ARG_HAS(n, i, bits) { n, i, (uint64_t)(bits), (uint64_t)(bits), 0, 0 }
#define ARGS_ARE(n, i, v, j, w) { n, i, UINT64_MAX, (uint64_t)(v), j, (uint64_t)(w) }

/* What both processes need: glibc, OpenSSL, libuv or threads, and files
 * wherever Landlock lets them. */
static const struct sandbox_rule sandbox_common[] = {
	/* memory */
	ANY("brk"), ANY("mmap"), ANY("munmap"), ANY("mremap"), ANY("mprotect"),
	ANY("madvise"), ANY("msync"),
	/* threads: new threads only, never a new process */
	ARG_HAS("clone", 0, CLONE_THREAD),
	ANY("futex"), ANY("set_robust_list"), ANY("rseq"), ANY("set_tid_address"),
	ANY("sched_yield"), ANY("sched_getaffinity"), ANY("gettid"),
	ANY("exit"), ANY("exit_group"),
	/* signals (abort() and raise() use tgkill on the process itself) */
	ANY("rt_sigaction"), ANY("rt_sigprocmask"), ANY("rt_sigreturn"),
	ANY("sigaltstack"), ANY("tgkill"), ANY("restart_syscall"),
	/* time */
	ANY("clock_gettime"), ANY("clock_getres"), ANY("clock_nanosleep"),
	ANY("nanosleep"), ANY("gettimeofday"), ANY("time"),
	/* identity and limits, read only */
	ANY("getpid"), ANY("getppid"), ANY("getuid"), ANY("geteuid"), ANY("getgid"),
	ANY("getegid"), ANY("getresuid"), ANY("getresgid"), ANY("getgroups"),
	ANY("uname"), ANY("sysinfo"), ANY("getrusage"), ANY("getrlimit"),
	ARG_IS("prlimit64", 2, 0), /* reading a limit, never setting one */
	ANY("getrandom"),
	/* descriptors */
	ANY("read"), ANY("write"), ANY("readv"), ANY("writev"), ANY("pread64"),
	ANY("pwrite64"), ANY("preadv"), ANY("pwritev"), ANY("preadv2"), ANY("pwritev2"),
	ANY("close"), ANY("dup"), ANY("dup2"), ANY("dup3"), ANY("fcntl"), ANY("lseek"),
	ANY("pipe2"), ANY("eventfd2"), ANY("epoll_create1"), ANY("epoll_ctl"),
	ANY("epoll_wait"), ANY("epoll_pwait"), ANY("epoll_pwait2"), ANY("poll"),
	ANY("ppoll"),
	ARG_IS32("ioctl", 1, FIONBIO), ARG_IS32("ioctl", 1, FIOCLEX),
	ARG_IS32("ioctl", 1, FIONCLEX), ARG_IS32("ioctl", 1, FIONREAD),
	ARG_IS32("ioctl", 1, TCGETS), ARG_IS32("ioctl", 1, TIOCGWINSZ),
	/* files, where Landlock allows */
	ANY("openat"), ANY("open"), ANY("fstat"), ANY("stat"), ANY("lstat"),
	ANY("newfstatat"), ANY("statx"), ANY("fstatfs"), ANY("statfs"), ANY("access"),
	ANY("faccessat"), ANY("faccessat2"), ANY("readlink"), ANY("readlinkat"),
	ANY("getdents64"), ANY("getcwd"), ANY("fsync"), ANY("fdatasync"),
	ANY("ftruncate"), ANY("fallocate"), ANY("flock"), ANY("unlink"), ANY("unlinkat"),
	ANY("rename"), ANY("renameat"), ANY("renameat2"), ANY("mkdir"), ANY("mkdirat"),
	ANY("rmdir"), ANY("fchmod"), ANY("umask"),
	/* traffic on sockets already open (the socketpair between the processes) */
	ANY("sendto"), ANY("recvfrom"), ANY("sendmsg"), ANY("recvmsg"), ANY("sendmmsg"),
	ANY("recvmmsg"), ANY("shutdown"), ANY("getsockopt"), ANY("setsockopt"),
	ANY("getsockname"), ANY("getpeername"),
	/* thread names */
	ARG_IS32("prctl", 0, PR_SET_NAME), ARG_IS32("prctl", 0, PR_GET_NAME),
};

/* The front process: the signing socket, the DNS listener and NOTIFY, and its
 * child, the HSM process. */
static const struct sandbox_rule sandbox_front[] = {
	ARG_IS32("socket", 0, AF_UNIX), ARG_IS32("socket", 0, AF_INET),
	ARG_IS32("socket", 0, AF_INET6),
	ANY("bind"), ANY("listen"), ANY("accept"), ANY("accept4"), ANY("connect"),
	ANY("socketpair"),
	/* the signing socket's mode, set after bind (glibc's chmod is the chmod syscall) */
	ANY("chmod"), ANY("fchmodat"),
	/* SQLite gives a new journal or WAL file its database's owner when it
	 * runs as root; without root's capabilities it can only be a no-op. */
	ANY("fchown"),
	ANY("wait4"), ANY("waitid"), ANY("kill"),
	/* The zone file thread lowers its own priority (signer/zonepub_file.c):
	 * one thread's nice value, to 19 only, which can only lower a priority,
	 * never raise one. Seccomp cannot tell the caller's own thread id from
	 * another, so a process could lower a sibling of its own user the same
	 * way, which it could already stop with kill. */
	ARGS_ARE("setpriority", 0, PRIO_PROCESS, 2, 19),
};

/* The HSM process: the session PIN page is locked in memory. Sockets come
 * only from sandbox_hsm_net(). */
static const struct sandbox_rule sandbox_hsm[] = {
	ANY("mlock"), ANY("munlock"),
};

/* Connecting out, as sandbox_net_allow() says: p11-kit-client over a Unix
 * socket, a network HSM over IPv4 or IPv6. Never bind, listen or accept. */
static const struct sandbox_rule sandbox_hsm_unix[] = {
	ARG_IS32("socket", 0, AF_UNIX), ANY("connect"),
};
static const struct sandbox_rule sandbox_hsm_inet[] = {
	ARG_IS32("socket", 0, AF_INET), ARG_IS32("socket", 0, AF_INET6), ANY("connect"),
};

/*
 * Ordinary sockets the HSM process was not allowed fail with EACCES instead
 * of killing it: a PKCS#11 module (SoftHSM among them) calls syslog() when
 * an operation fails, and glibc's syslog() gives up quietly when it cannot
 * make its socket. Other families (netlink, packet, ...) still kill.
 */
static const struct sandbox_rule sandbox_hsm_unix_refused[] = {
	ARG_IS32("socket", 0, AF_UNIX),
};
static const struct sandbox_rule sandbox_hsm_inet_refused[] = {
	ARG_IS32("socket", 0, AF_INET), ARG_IS32("socket", 0, AF_INET6),
};

/*
 * Answered with an error instead of killing: glibc 2.34+ tries clone3 first
 * for threads and falls back to clone on ENOSYS (clone3 passes its flags in
 * memory, which seccomp cannot inspect); a libuv that probes io_uring falls
 * back to epoll the same way.
 */
static const struct {
	const char *name;
	int err;
} sandbox_errno_rules[] = {
	{ "clone3", ENOSYS },
	{ "io_uring_setup", ENOSYS },
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

static int sandbox_rules_add(scmp_filter_ctx ctx, uint32_t action,
			     const struct sandbox_rule *rules, size_t n, char *detail, size_t size)
{
	for (size_t i = 0; i < n; i++) {
		int nr = seccomp_syscall_resolve_name(rules[i].name), rc;

		/* A syscall this architecture does not have needs no rule. */
		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;
		if (rules[i].arg < 0)
			rc = seccomp_rule_add(ctx, action, nr, 0);
		else if (rules[i].also > 0)
			rc = seccomp_rule_add(ctx, action, nr, 2,
					      SCMP_CMP((unsigned)rules[i].arg, SCMP_CMP_MASKED_EQ,
						       rules[i].mask, rules[i].value),
					      SCMP_CMP((unsigned)rules[i].also, SCMP_CMP_EQ,
						       rules[i].also_value));
		else
			rc = seccomp_rule_add(ctx, action, nr, 1,
					      SCMP_CMP((unsigned)rules[i].arg, SCMP_CMP_MASKED_EQ,
						       rules[i].mask, rules[i].value));
		if (rc != 0)
			return sandbox__fail(SANDBOX_ERR_SECCOMP, detail, size,
					     "seccomp rule for %s: %s", rules[i].name,
					     strerror(-rc));
	}
	return SANDBOX_OK;
}

int sandbox__seccomp_apply(const struct sandbox *sb, char *detail, size_t size)
{
	scmp_filter_ctx ctx;
	int r, rc;

	ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	if (ctx == NULL)
		return sandbox__fail(SANDBOX_ERR_NOMEM, detail, size, "seccomp_init failed");
	/* Threads started before this call (there should be none) get the filter too. */
	rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1);
	if (rc != 0) {
		r = sandbox__fail(SANDBOX_ERR_SECCOMP, detail, size, "seccomp TSYNC: %s",
				  strerror(-rc));
		goto out;
	}
	r = sandbox_rules_add(ctx, SCMP_ACT_ALLOW, sandbox_common, NELEM(sandbox_common),
			      detail, size);
	if (r == SANDBOX_OK && sb->profile == SANDBOX_PROFILE_FRONT)
		r = sandbox_rules_add(ctx, SCMP_ACT_ALLOW, sandbox_front, NELEM(sandbox_front),
				      detail, size);
	if (r == SANDBOX_OK && sb->profile == SANDBOX_PROFILE_HSM)
		r = sandbox_rules_add(ctx, SCMP_ACT_ALLOW, sandbox_hsm, NELEM(sandbox_hsm),
				      detail, size);
	if (r == SANDBOX_OK && sb->profile == SANDBOX_PROFILE_HSM)
		r = (sb->net & SANDBOX_NET_UNIX) ?
		    sandbox_rules_add(ctx, SCMP_ACT_ALLOW, sandbox_hsm_unix,
				      NELEM(sandbox_hsm_unix), detail, size) :
		    sandbox_rules_add(ctx, SCMP_ACT_ERRNO(EACCES), sandbox_hsm_unix_refused,
				      NELEM(sandbox_hsm_unix_refused), detail, size);
	if (r == SANDBOX_OK && sb->profile == SANDBOX_PROFILE_HSM)
		r = (sb->net & SANDBOX_NET_INET) ?
		    sandbox_rules_add(ctx, SCMP_ACT_ALLOW, sandbox_hsm_inet,
				      NELEM(sandbox_hsm_inet), detail, size) :
		    sandbox_rules_add(ctx, SCMP_ACT_ERRNO(EACCES), sandbox_hsm_inet_refused,
				      NELEM(sandbox_hsm_inet_refused), detail, size);
	for (size_t i = 0; r == SANDBOX_OK && i < NELEM(sandbox_errno_rules); i++) {
		int nr = seccomp_syscall_resolve_name(sandbox_errno_rules[i].name);

		if (nr == __NR_SCMP_ERROR || nr < 0)
			continue;
		rc = seccomp_rule_add(ctx, SCMP_ACT_ERRNO((uint32_t)sandbox_errno_rules[i].err),
				      nr, 0);
		if (rc != 0)
			r = sandbox__fail(SANDBOX_ERR_SECCOMP, detail, size, "seccomp rule for %s: %s",
					  sandbox_errno_rules[i].name, strerror(-rc));
	}
	if (r != SANDBOX_OK)
		goto out;
	rc = seccomp_load(ctx);
	if (rc != 0) {
		r = sandbox__fail(SANDBOX_ERR_SECCOMP, detail, size, "seccomp_load: %s",
				  strerror(-rc));
		goto out;
	}
	r = SANDBOX_OK;
out:
	seccomp_release(ctx);
	return r;
}
