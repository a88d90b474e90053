/*
 * An example out-of-process conformance target written in C: the SMC host-cursor arithmetic
 * (capability "cursor") computed with real C types - u16 wrap, u32 count, int results - the way
 * net/smc/smc_cdc.h computes it (our own code, written from the formulas in the project's
 * domain notes, cursors.md section 2).
 *
 *   cc -O2 -o lo_cursor conformance/examples/lo_cursor.c
 *   smcd-check conform --target 'cmd:./lo_cursor'
 *
 * It speaks the JSON-lines protocol of smcd_check.conformance.targets.subprocess_target: one request
 * per line on stdin, one answer per line on stdout with the same id. The requests the suite
 * sends have a fixed shape, so a tiny scanner is enough here (a real target would use a JSON
 * library). Build with -DWRAP_BLIND to get a mutant whose diff ignores the wrap counter.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct host_cursor {
	uint16_t wrap;
	uint32_t count;
};

static int max_int(int a, int b) { return a > b ? a : b; }
static int min_int(int a, int b) { return a < b ? a : b; }

static void curs_add(int size, struct host_cursor *c, int value)
{
	c->count += value;
	if (c->count >= (uint32_t)size) {
		c->wrap++;
		c->count -= size;
	}
}

static int curs_diff(unsigned int size, const struct host_cursor *old,
		     const struct host_cursor *new)
{
#ifndef WRAP_BLIND
	if (old->wrap != new->wrap)
		return max_int(0, (int)((size - old->count) + new->count));
#endif
	return max_int(0, (int)(new->count - old->count));
}

static int curs_comp(unsigned int size, const struct host_cursor *old,
		     const struct host_cursor *new)
{
	if (old->wrap > new->wrap || (old->wrap == new->wrap && old->count > new->count))
		return -curs_diff(size, new, old);
	return curs_diff(size, old, new);
}

static int curs_diff_large(unsigned int size, const struct host_cursor *old,
			   const struct host_cursor *new)
{
	if (old->wrap < new->wrap)
		return min_int((int)((size - old->count) + new->count +
				     (new->wrap - old->wrap - 1) * size), (int)size);
	if (old->wrap > new->wrap) /* taken as the 0xffff -> 0 switch */
		return min_int((int)((size - old->count) + new->count +
				     (new->wrap + 0xffff - old->wrap) * size), (int)size);
	return max_int(0, (int)(new->count - old->count));
}

/* ---- a minimal scanner for the suite's requests ---- */

static int find_number(const char *line, const char *key, long long *out)
{
	char pat[64];
	const char *p;

	snprintf(pat, sizeof(pat), "\"%s\":", key);
	p = strstr(line, pat);
	if (!p)
		return 0;
	*out = strtoll(p + strlen(pat), NULL, 10);
	return 1;
}

static int find_cursor(const char *line, const char *key, struct host_cursor *c)
{
	char pat[64];
	const char *p;
	char *end;

	snprintf(pat, sizeof(pat), "\"%s\":[", key);
	p = strstr(line, pat);
	if (!p)
		return 0;
	p += strlen(pat);
	c->wrap = (uint16_t)strtoll(p, &end, 10);
	if (*end != ',')
		return 0;
	c->count = (uint32_t)strtoll(end + 1, NULL, 10);
	return 1;
}

static int find_op(const char *line, char *op, size_t len)
{
	const char *p = strstr(line, "\"op\":\"");
	size_t i = 0;

	if (!p)
		return 0;
	p += 6;
	while (*p && *p != '"' && i + 1 < len)
		op[i++] = *p++;
	op[i] = 0;
	return 1;
}

int main(void)
{
	char line[65536], op[64];

	setvbuf(stdout, NULL, _IOLBF, 0);
	while (fgets(line, sizeof(line), stdin)) {
		long long id = -1, size = 0, value = 0;
		struct host_cursor a, b;

		if (!find_number(line, "id", &id) || !find_op(line, op, sizeof(op))) {
			printf("{\"id\":null,\"ok\":false,\"error\":\"EBADMSG\"}\n");
			continue;
		}
		find_number(line, "size", &size);
		if (!strcmp(op, "hello")) {
			printf("{\"id\":%lld,\"ok\":true,\"result\":{\"name\":\"lo_cursor.c\","
			       "\"protocol\":1,\"capabilities\":[\"cursor\"]}}\n", id);
		} else if (!strcmp(op, "reset")) {
			printf("{\"id\":%lld,\"ok\":true,\"result\":{}}\n", id);
		} else if (!strcmp(op, "bye")) {
			printf("{\"id\":%lld,\"ok\":true,\"result\":{}}\n", id);
			return 0;
		} else if (!strcmp(op, "curs_add") && find_cursor(line, "curs", &a) &&
			   find_number(line, "value", &value)) {
			curs_add((int)size, &a, (int)value);
			printf("{\"id\":%lld,\"ok\":true,\"result\":{\"curs\":[%u,%u]}}\n", id,
			       (unsigned)a.wrap, (unsigned)a.count);
		} else if ((!strcmp(op, "curs_diff") || !strcmp(op, "curs_comp") ||
			    !strcmp(op, "curs_diff_large")) &&
			   find_cursor(line, "old", &a) && find_cursor(line, "new", &b)) {
			int v = !strcmp(op, "curs_diff") ? curs_diff((unsigned)size, &a, &b) :
				!strcmp(op, "curs_comp") ? curs_comp((unsigned)size, &a, &b) :
				curs_diff_large((unsigned)size, &a, &b);
			printf("{\"id\":%lld,\"ok\":true,\"result\":{\"value\":%d}}\n", id, v);
		} else {
			printf("{\"id\":%lld,\"ok\":false,\"error\":\"EOPNOTSUPP\","
			       "\"detail\":\"%s\"}\n", id, op);
		}
	}
	return 0;
}
