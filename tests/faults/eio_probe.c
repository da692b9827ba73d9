/*
 * eio_probe: a small program for test_eio_shim. Each argument is OP:FILE;
 * the probe does OP on FILE (opened read-write, created if needed) and
 * prints "OP:FILE ok" or "OP:FILE <errno name>" on stdout, one line per
 * argument. OP is write, pwrite, fsync, fdatasync, or sqlite (a WAL database
 * with synchronous=FULL: create a table and commit one row, printing the
 * SQLite error code name on failure).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

static const char *probe_sqlite(const char *path)
{
	sqlite3 *db = NULL;
	int rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
	static char name[64];

	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;"
				  "CREATE TABLE IF NOT EXISTS t(x); INSERT INTO t VALUES(1);",
				  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		snprintf(name, sizeof(name), "%s", sqlite3_errstr(rc));
	sqlite3_close(db);
	return rc == SQLITE_OK ? "ok" : name;
}

static const char *probe(const char *op, const char *path)
{
	int fd, r = 0, e = 0;

	if (strcmp(op, "sqlite") == 0)
		return probe_sqlite(path);
	fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (fd < 0)
		return strerrorname_np(errno);
	if (strcmp(op, "write") == 0)
		r = write(fd, "data", 4) == 4 ? 0 : -1;
	else if (strcmp(op, "pwrite") == 0)
		r = pwrite(fd, "data", 4, 8) == 4 ? 0 : -1;
	else if (strcmp(op, "fsync") == 0)
		r = fsync(fd);
	else if (strcmp(op, "fdatasync") == 0)
		r = fdatasync(fd);
	else
		return "bad-op";
	e = errno;
	close(fd);
	return r == 0 ? "ok" : strerrorname_np(e);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		char op[32];
		const char *colon = strchr(argv[i], ':');

		if (colon == NULL || (size_t)(colon - argv[i]) >= sizeof(op))
			return 2;
		memcpy(op, argv[i], (size_t)(colon - argv[i]));
		op[colon - argv[i]] = '\0';
		printf("%s %s\n", argv[i], probe(op, colon + 1));
	}
	return 0;
}
