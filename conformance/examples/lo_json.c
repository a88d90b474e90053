/*
 * lo_json.c - the JSON half of the C example target: a bounded parser for one request line
 * and the writer of one answer line (conformance/PROTOCOL.md section 1).
 *
 * The parser reads by index against the line's length, never past it: a string or escape
 * cut short, a number of any length, a nesting deeper than JSON_MAX_DEPTH are syntax errors
 * or flagged values, never an overrun. Every allocation is checked (out of memory ends the
 * process with a message on stderr: the suite reports a broken target).
 */
#define _GNU_SOURCE
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lo_target.h"

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);

	if (!q) {
		fputs("lo_target: out of memory\n", stderr);
		exit(70);
	}
	return q;
}

/* ====================================================================== parser */

struct jparser {
	const char *p;
	size_t len, pos;
};

static int peek(struct jparser *j) { return j->pos < j->len ? (unsigned char)j->p[j->pos] : -1; }

static void skip_ws(struct jparser *j)
{
	int c;

	while ((c = peek(j)) == ' ' || c == '\t' || c == '\r' || c == '\n')
		j->pos++;
}

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static int parse_string(struct jparser *j, char **out_s, size_t *out_len)
{
	size_t cap = 16, n = 0;
	char *s;

	if (peek(j) != '"')
		return -1;
	j->pos++;
	s = xrealloc(NULL, cap);
	for (;;) {
		int c = peek(j);
		unsigned cp;

		if (c < 0 || c < 0x20) /* end of line inside a string, or a raw control */
			goto bad;
		j->pos++;
		if (c == '"')
			break;
		if (n + 4 >= cap)
			s = xrealloc(s, cap *= 2);
		if (c != '\\') {
			s[n++] = (char)c;
			continue;
		}
		c = peek(j);
		if (c < 0)
			goto bad;
		j->pos++;
		switch (c) {
		case '"': case '\\': case '/': s[n++] = (char)c; break;
		case 'b': s[n++] = '\b'; break;
		case 'f': s[n++] = '\f'; break;
		case 'n': s[n++] = '\n'; break;
		case 'r': s[n++] = '\r'; break;
		case 't': s[n++] = '\t'; break;
		case 'u':
			if (j->len - j->pos < 4)
				goto bad;
			cp = 0;
			for (int i = 0; i < 4; i++) {
				int h = hexval((unsigned char)j->p[j->pos + (size_t)i]);

				if (h < 0)
					goto bad;
				cp = cp << 4 | (unsigned)h;
			}
			j->pos += 4;
			/* UTF-8 of the code unit (a surrogate is kept as its own 3 bytes) */
			if (cp < 0x80) {
				s[n++] = (char)cp;
			} else if (cp < 0x800) {
				s[n++] = (char)(0xC0 | cp >> 6);
				s[n++] = (char)(0x80 | (cp & 0x3F));
			} else {
				s[n++] = (char)(0xE0 | cp >> 12);
				s[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
				s[n++] = (char)(0x80 | (cp & 0x3F));
			}
			break;
		default:
			goto bad;
		}
	}
	s[n] = 0;
	*out_s = s;
	*out_len = n;
	return 0;
bad:
	free(s);
	return -1;
}

static int parse_value(struct jparser *j, struct jval *v, int depth);

static int parse_container(struct jparser *j, struct jval *v, int depth)
{
	int obj = peek(j) == '{';
	int close = obj ? '}' : ']';
	int cap = 0;

	if (depth >= JSON_MAX_DEPTH)
		return -1;
	v->t = obj ? J_OBJ : J_ARR;
	j->pos++;
	skip_ws(j);
	if (peek(j) == close) {
		j->pos++;
		return 0;
	}
	for (;;) {
		if (v->n == cap) {
			cap = cap ? cap * 2 : 4;
			v->items = xrealloc(v->items, (size_t)cap * sizeof(*v->items));
			if (obj)
				v->keys = xrealloc(v->keys, (size_t)cap * sizeof(char *));
		}
		memset(&v->items[v->n], 0, sizeof(v->items[v->n]));
		if (obj) {
			size_t klen;

			v->keys[v->n] = NULL;
			skip_ws(j);
			if (parse_string(j, &v->keys[v->n], &klen))
				goto bad_item;
			skip_ws(j);
			if (peek(j) != ':')
				goto bad_item;
			j->pos++;
		}
		if (parse_value(j, &v->items[v->n], depth + 1))
			goto bad_item;
		v->n++;
		skip_ws(j);
		if (peek(j) == ',') {
			j->pos++;
			continue;
		}
		if (peek(j) == close) {
			j->pos++;
			return 0;
		}
		return -1;
	}
bad_item:
	/* the half-parsed item is counted so that jfree releases it */
	v->n++;
	return -1;
}

static int match_word(struct jparser *j, const char *w)
{
	size_t n = strlen(w);

	if (j->len - j->pos < n || memcmp(j->p + j->pos, w, n))
		return 0;
	j->pos += n;
	return 1;
}

static int parse_number(struct jparser *j, struct jval *v)
{
	int digits = 0, c;

	v->t = J_NUM;
	if (peek(j) == '-') {
		v->neg = 1;
		j->pos++;
	}
	while ((c = peek(j)) >= '0' && c <= '9') {
		unsigned d = (unsigned)(c - '0');

		if (v->u > (~0ULL - d) / 10)
			v->big = 1;
		else
			v->u = v->u * 10 + d;
		digits++;
		j->pos++;
	}
	if (!digits)
		return -1;
	if (peek(j) == '.') {
		v->frac = 1;
		j->pos++;
		if (!((c = peek(j)) >= '0' && c <= '9'))
			return -1;
		while ((c = peek(j)) >= '0' && c <= '9')
			j->pos++;
	}
	if ((c = peek(j)) == 'e' || c == 'E') {
		v->frac = 1;
		j->pos++;
		if ((c = peek(j)) == '+' || c == '-')
			j->pos++;
		if (!((c = peek(j)) >= '0' && c <= '9'))
			return -1;
		while ((c = peek(j)) >= '0' && c <= '9')
			j->pos++;
	}
	return 0;
}

static int parse_value(struct jparser *j, struct jval *v, int depth)
{
	int c;

	memset(v, 0, sizeof(*v));
	skip_ws(j);
	c = peek(j);
	if (c == '{' || c == '[')
		return parse_container(j, v, depth);
	if (c == '"') {
		v->t = J_STR;
		return parse_string(j, &v->s, &v->slen);
	}
	if (match_word(j, "true")) {
		v->t = J_BOOL;
		v->b = 1;
		return 0;
	}
	if (match_word(j, "false")) {
		v->t = J_BOOL;
		return 0;
	}
	if (match_word(j, "null"))
		return 0;
	if (c == '-' || (c >= '0' && c <= '9'))
		return parse_number(j, v);
	return -1;
}

int jparse_text(const char *text, size_t len, struct jval *v)
{
	struct jparser j = {text, len, 0};

	if (parse_value(&j, v, 0))
		return -1;
	skip_ws(&j);
	return j.pos == j.len ? 0 : -1;
}

void jfree(struct jval *v)
{
	for (int i = 0; i < v->n; i++) {
		jfree(&v->items[i]);
		if (v->keys)
			free(v->keys[i]);
	}
	free(v->items);
	free(v->keys);
	free(v->s);
	memset(v, 0, sizeof(*v));
}

struct jval *jget(struct jval *obj, const char *key)
{
	if (!obj || obj->t != J_OBJ)
		return NULL;
	for (int i = 0; i < obj->n; i++)
		if (obj->keys[i] && !strcmp(obj->keys[i], key))
			return &obj->items[i];
	return NULL;
}

/* an integer argument in [lo, hi] (as signed 64-bit; tokens use arg_u64) */
int arg_int(struct jval *args, const char *key, long long lo, long long hi, long long *out)
{
	struct jval *v = jget(args, key);

	if (!v || v->t != J_NUM || v->frac || v->big || v->u > (1ULL << 62))
		return 0;
	*out = v->neg ? -(long long)v->u : (long long)v->u;
	return *out >= lo && *out <= hi;
}

int jval_u64(const struct jval *v, uint64_t *out)
{
	if (!v || v->t != J_NUM || v->frac || v->big || (v->neg && v->u))
		return 0;
	*out = v->u;
	return 1;
}

int arg_u64(struct jval *args, const char *key, uint64_t *out)
{
	return jval_u64(jget(args, key), out);
}

const char *arg_str(struct jval *args, const char *key)
{
	struct jval *v = jget(args, key);

	return v && v->t == J_STR ? v->s : NULL;
}

/* ====================================================================== answers */

static char *obuf;
static size_t olen, ocap;
long long req_id;
int answered;

void out(const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(obuf + olen, ocap - olen, fmt, ap);
		va_end(ap);
		if (n < 0) {
			fputs("lo_target: vsnprintf failed\n", stderr);
			exit(70);
		}
		if ((size_t)n < ocap - olen)
			break;
		ocap = ocap * 2 + (size_t)n + 64;
		obuf = xrealloc(obuf, ocap);
	}
	olen += (size_t)n;
}

static void reserve(size_t more)
{
	if (ocap - olen < more + 1) {
		ocap = ocap * 2 + more + 64;
		obuf = xrealloc(obuf, ocap);
	}
}

void out_hex(const uint8_t *p, size_t n)
{
	static const char hx[] = "0123456789abcdef";

	reserve(2 * n);
	for (size_t i = 0; i < n; i++) {
		obuf[olen++] = hx[p[i] >> 4];
		obuf[olen++] = hx[p[i] & 15];
	}
	obuf[olen] = 0;
}

void out_jstr(const char *s, size_t n)
{
	reserve(6 * n + 2);
	obuf[olen++] = '"';
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\') {
			obuf[olen++] = '\\';
			obuf[olen++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) { /* keep the answer ASCII (detail is free text) */
			olen += (size_t)snprintf(obuf + olen, 7, "\\u%04x", c);
		} else {
			obuf[olen++] = (char)c;
		}
	}
	obuf[olen++] = '"';
	obuf[olen] = 0;
}

static void emit(void)
{
	fwrite(obuf, 1, olen, stdout);
	fflush(stdout);
	answered = 1;
}

void ok_begin(void)
{
	olen = 0;
	if (req_id < 0)
		out("{\"id\":null,\"ok\":true,\"result\":{");
	else
		out("{\"id\":%lld,\"ok\":true,\"result\":{", req_id);
}

void ok_end(void)
{
	out("}}\n");
	emit();
}

void ok_empty(void)
{
	ok_begin();
	ok_end();
}

void fail(const char *err, const char *detail)
{
	olen = 0;
	if (req_id < 0)
		out("{\"id\":null,\"ok\":false,\"error\":\"%s\",\"detail\":", err);
	else
		out("{\"id\":%lld,\"ok\":false,\"error\":\"%s\",\"detail\":", req_id, err);
	out_jstr(detail, strlen(detail));
	out("}\n");
	emit();
}

int unhex(const char *s, uint8_t **out_buf, size_t *out_len)
{
	size_t n = strlen(s);
	uint8_t *b;

	if (n % 2)
		return 0;
	b = xrealloc(NULL, n / 2 + 1);
	for (size_t i = 0; i < n / 2; i++) {
		int hi = hexval((unsigned char)s[2 * i]), lo = hexval((unsigned char)s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(b);
			return 0;
		}
		b[i] = (uint8_t)(hi << 4 | lo);
	}
	*out_buf = b;
	*out_len = n / 2;
	return 1;
}

void out_free(void)
{
	free(obuf);
	obuf = NULL;
	olen = ocap = 0;
}
