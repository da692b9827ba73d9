/* JSON string escaping shared by the daemon and the CLI (see json.h). */
#include "signer/json.h"

static int needs_escape(unsigned char c)
{
	return c < 0x20 || c == '"' || c == '\\';
}

void json_string_write(const char *s, json_put_fn put, void *ctx)
{
	static const char hex[] = "0123456789abcdef";

	put(ctx, "\"", 1);
	while (*s != '\0') {
		size_t run = 0;
		unsigned char c;
		char esc[6] = { '\\', 'u', '0', '0', 0, 0 };

		/* Copy a run of bytes that need no escape in one go: names and
		 * messages rarely hold any. */
		while (s[run] != '\0' && !needs_escape((unsigned char)s[run]))
			run++;
		if (run > 0) {
			put(ctx, s, run);
			s += run;
			continue;
		}
		c = (unsigned char)*s++;
		if (c == '"' || c == '\\') {
			esc[1] = (char)c;
			put(ctx, esc, 2);
		} else {
			esc[4] = hex[c >> 4];
			esc[5] = hex[c & 15];
			put(ctx, esc, sizeof(esc));
		}
	}
	put(ctx, "\"", 1);
}

static void put_file(void *ctx, const void *p, size_t n)
{
	(void)fwrite(p, 1, n, ctx);
}

void json_string_fput(const char *s, FILE *f)
{
	json_string_write(s, put_file, f);
}
