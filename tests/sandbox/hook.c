/*
 * Shared part of the sandbox hook programs: options, the sandbox itself, and
 * the attacks both profiles must stop (see hook.h for the exit statuses).
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/netlink.h>
#include <arpa/inet.h>

#include "signer/config.h"
#include "tests/sandbox/hook.h"

int hook_errno(const char *what, int err)
{
	fprintf(stderr, "hook: %s: %s\n", what, strerror(err));
	return err == EACCES || err == EPERM ? HOOK_EXIT_DENIED : HOOK_EXIT_ERRNO;
}

/* The program run says itself that the action got through. */
static int act_execve(void)
{
	char *const argv[] = { (char *)"sh", (char *)"-c",
			       (char *)"echo 'hook: execve returned 0' >&2", NULL };
	char *const envp[] = { NULL };

	execve("/bin/sh", argv, envp);
	return hook_errno("execve /bin/sh", errno);
}

static int act_fork(void)
{
	int st;
	pid_t pid = fork();

	if (pid < 0)
		return hook_errno("fork", errno);
	if (pid == 0)
		_exit(0);
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
		return HOOK_EXIT_SETUP;
	return 0;
}

static int act_ptrace_attach(pid_t target)
{
	int st;

	if (ptrace(PTRACE_ATTACH, target, NULL, NULL) != 0)
		return hook_errno("ptrace attach", errno);
	if (waitpid(target, &st, 0) != target)
		return hook_errno("waitpid", errno);
	ptrace(PTRACE_DETACH, target, NULL, NULL);
	return 0;
}

static int act_file(const char *path, bool wr)
{
	char buf[64];
	int fd = open(path, wr ? O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC : O_RDONLY | O_CLOEXEC,
		      0644);

	if (fd < 0)
		return hook_errno(path, errno);
	if (wr ? write(fd, "x\n", 2) != 2 : read(fd, buf, sizeof(buf)) < 0) {
		int e = errno;

		close(fd);
		return hook_errno(path, e);
	}
	close(fd);
	return 0;
}

static int act_socket(const char *kind)
{
	int fd;

	if (strcmp(kind, "netlink") == 0)
		fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
	else if (strcmp(kind, "packet") == 0)
		fd = socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	else if (strcmp(kind, "unix") == 0)
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	else if (strcmp(kind, "inet") == 0)
		fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	else if (strcmp(kind, "inet6") == 0)
		fd = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	else
		return HOOK_EXIT_SETUP;
	if (fd < 0)
		return hook_errno(kind, errno);
	close(fd);
	return 0;
}

/* A Unix socket: bind + listen (@p listen_it) or connect. */
static int act_unix(const char *path, bool listen_it)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, r;

	if (strlen(path) >= sizeof(sa.sun_path))
		return HOOK_EXIT_SETUP;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hook_errno("socket", errno);
	if (listen_it)
		r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0 ? 0 :
		    hook_errno("bind/listen", errno);
	else
		r = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 ? 0 :
		    hook_errno("connect", errno);
	close(fd);
	return r;
}

static int act_listen_inet(void)
{
	struct sockaddr_in sa = { .sin_family = AF_INET };
	int fd, r;

	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hook_errno("socket", errno);
	r = bind(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0 && listen(fd, 1) == 0 ? 0 :
	    hook_errno("bind/listen", errno);
	close(fd);
	return r;
}

/* The ids after a user change: all of them @p uid / @p gid, no other group, no way back. */
static int act_ids(uid_t uid, gid_t gid)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg, groups[8];
	int n = getgroups(8, groups);

	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 || n < 0)
		return hook_errno("getres*id", errno);
	fprintf(stderr, "hook: uid %u/%u/%u gid %u/%u/%u, %d groups\n", (unsigned)ru,
		(unsigned)eu, (unsigned)su, (unsigned)rg, (unsigned)eg, (unsigned)sg, n);
	if (ru != uid || eu != uid || su != uid || rg != gid || eg != gid || sg != gid)
		return HOOK_EXIT_CHECK;
	for (int i = 0; i < n; i++)
		if (groups[i] != gid)
			return HOOK_EXIT_CHECK;
	return 0;
}

/* The field @p name of /proc/self/status, read through @p fd opened before the
 * sandbox (Landlock would refuse opening it now). */
static long status_field(int fd, const char *name)
{
	char buf[4096], *p;
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, 0);

	if (n <= 0)
		return -1;
	buf[n] = '\0';
	p = strstr(buf, name);
	return p == NULL ? -1 : strtol(p + strlen(name), NULL, 10);
}

/*
 * The process-wide settings: NO_NEW_PRIVS, a seccomp filter, no core files,
 * and not dumpable (seen from outside as /proc/self owned by root while the
 * process is not root).
 */
static int act_status(int status_fd)
{
	struct rlimit rl;
	struct stat st;
	long nnp = status_field(status_fd, "NoNewPrivs:"), sec = status_field(status_fd, "Seccomp:");

	if (getrlimit(RLIMIT_CORE, &rl) != 0 || stat("/proc/self/stat", &st) != 0)
		return hook_errno("getrlimit/stat", errno);
	fprintf(stderr, "hook: NoNewPrivs %ld, Seccomp %ld, core %llu, /proc/self owner %u\n", nnp,
		sec, (unsigned long long)rl.rlim_cur, (unsigned)st.st_uid);
	if (nnp != 1 || sec != 2 || rl.rlim_cur != 0 || rl.rlim_max != 0)
		return HOOK_EXIT_CHECK;
	if (getuid() != 0 && st.st_uid != 0)
		return HOOK_EXIT_CHECK;
	return 0;
}

/* The paths regsignd would allow for this configuration (sandbox_config_paths). */
static int hook_config(sandbox_t *sb, const char *path)
{
	struct config *cfg = NULL;
	char *err = NULL;
	int r;

	if (config_load(path, NULL, &cfg, &err) != CONFIG_OK) {
		fprintf(stderr, "hook: %s\n", err ? err : "config");
		free(err);
		return SANDBOX_ERR_ARG;
	}
	r = sandbox_config_paths(sb, cfg, path);
	config_free(cfg);
	return r;
}

static void usage(void)
{
	fprintf(stderr, "usage: hook [--off] [--user U] [--ro P]... [--rw P]... [--net K] [--config F] "
			"ACTION [ARG...]\n");
}

static int hook_setup(sandbox_t *sb, int *argi, int argc, char **argv, bool *off)
{
	int i = 1;

	for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
		int r = SANDBOX_OK;

		if (strcmp(argv[i], "--off") == 0) {
			*off = true;
			continue;
		}
		if (i + 1 >= argc)
			return -1;
		if (strcmp(argv[i], "--user") == 0)
			r = sandbox_user_set(sb, argv[i + 1], NULL);
		else if (strcmp(argv[i], "--ro") == 0)
			r = sandbox_path_add(sb, argv[i + 1], SANDBOX_READ);
		else if (strcmp(argv[i], "--rw") == 0)
			r = sandbox_path_add(sb, argv[i + 1], SANDBOX_WRITE);
		else if (strcmp(argv[i], "--config") == 0)
			r = hook_config(sb, argv[i + 1]);
		else if (strcmp(argv[i], "--net") == 0)
			r = sandbox_net_allow(sb, strcmp(argv[i + 1], "unix") == 0 ? SANDBOX_NET_UNIX :
					      strcmp(argv[i + 1], "inet") == 0 ? SANDBOX_NET_INET :
					      SANDBOX_NET_UNIX | SANDBOX_NET_INET);
		else
			return -1;
		if (r != SANDBOX_OK) {
			fprintf(stderr, "hook: %s %s: %s\n", argv[i], argv[i + 1],
				sandbox_strerror(r));
			return -1;
		}
		i++;
	}
	*argi = i;
	return i < argc ? 0 : -1;
}

int hook_main(int argc, char **argv, enum sandbox_profile profile, hook_action_fn own)
{
	sandbox_t *sb = NULL;
	bool off = false;
	int argi = 0, r = HOOK_EXIT_SETUP, status_fd = -1;
	pid_t target = -1;
	const char *action;
	char why[512];

	if (sandbox_new(profile, &sb) != SANDBOX_OK)
		goto out;
	if (hook_setup(sb, &argi, argc, argv, &off) != 0) {
		usage();
		goto out;
	}
	action = argv[argi];
	/* Prepared before the sandbox: a process to attach to (fork is refused
	 * afterwards) and a view of our own status. */
	if (strcmp(action, "ptrace-attach") == 0) {
		pid_t parent = getpid();

		target = fork();
		if (target < 0)
			goto out;
		if (target == 0) {
			/* Gone with the hook, whatever the sandbox lets it do. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			for (;;)
				pause();
		}
	}
	status_fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
	if (!off && sandbox_apply(sb, why, sizeof(why)) != SANDBOX_OK) {
		fprintf(stderr, "hook: sandbox: %s\n", why);
		goto out;
	}
	/* The test reads these two lines to tell a kill by the filter during the
	 * action from one anywhere else. */
	fprintf(stderr, "hook: trying %s\n", action);
	if (strcmp(action, "execve") == 0)
		r = act_execve();
	else if (strcmp(action, "fork") == 0)
		r = act_fork();
	else if (strcmp(action, "ptrace-traceme") == 0)
		r = ptrace(PTRACE_TRACEME, 0, NULL, NULL) == 0 ? 0 : hook_errno("traceme", errno);
	else if (strcmp(action, "ptrace-attach") == 0)
		r = act_ptrace_attach(target);
	else if (strcmp(action, "read-file") == 0 && argi + 1 < argc)
		r = act_file(argv[argi + 1], false);
	else if (strcmp(action, "write-file") == 0 && argi + 1 < argc)
		r = act_file(argv[argi + 1], true);
	else if (strcmp(action, "socket") == 0 && argi + 1 < argc)
		r = act_socket(argv[argi + 1]);
	else if (strcmp(action, "listen-unix") == 0 && argi + 1 < argc)
		r = act_unix(argv[argi + 1], true);
	else if (strcmp(action, "connect-unix") == 0 && argi + 1 < argc)
		r = act_unix(argv[argi + 1], false);
	else if (strcmp(action, "listen-inet") == 0)
		r = act_listen_inet();
	else if (strcmp(action, "ids") == 0 && argi + 2 < argc)
		r = act_ids((uid_t)strtoul(argv[argi + 1], NULL, 10),
			    (gid_t)strtoul(argv[argi + 2], NULL, 10));
	else if (strcmp(action, "status") == 0)
		r = act_status(status_fd);
	else if ((r = own(action, argc - argi - 1, argv + argi + 1)) < 0) {
		usage();
		r = HOOK_EXIT_SETUP;
	}
	fprintf(stderr, "hook: %s returned %d\n", action, r);
out:
	if (status_fd >= 0)
		close(status_fd);
	sandbox_free(sb);
	return r;
}
