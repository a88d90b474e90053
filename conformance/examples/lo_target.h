/*
 * lo_target.h - what the parts of the C example target share (conformance/PROTOCOL.md):
 * the JSON values of a request (lo_json.c), the answer being written (lo_json.c), and the
 * CLC operations (lo_clc.c, lo_hs.c) the session (lo_target.c) dispatches to.
 */
#ifndef LO_TARGET_H
#define LO_TARGET_H

#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------- JSON values (lo_json.c) */

enum jtype { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };

struct jval {
	enum jtype t;
	int b;			/* J_BOOL */
	int neg;		/* J_NUM: negative */
	unsigned long long u;	/* J_NUM: magnitude (saturates: see big) */
	int frac;		/* J_NUM: had a fraction or exponent (never an integer) */
	int big;		/* J_NUM: more than 64 bits of magnitude (never a valid integer) */
	char *s;		/* J_STR (NUL-terminated; an embedded \u0000 ends it) */
	size_t slen;		/* J_STR: bytes before the terminator */
	int n;			/* J_ARR / J_OBJ: items */
	struct jval *items;
	char **keys;		/* J_OBJ */
};

/* Parse one whole line (len bytes, need not be NUL-terminated) into v: 0 on success, -1 on
 * any syntax error, a nesting deeper than JSON_MAX_DEPTH or trailing garbage. v is always
 * safe to jfree. */
#define JSON_MAX_DEPTH 64
int jparse_text(const char *text, size_t len, struct jval *v);
void jfree(struct jval *v);
struct jval *jget(struct jval *obj, const char *key);
int arg_int(struct jval *args, const char *key, long long lo, long long hi, long long *out);
int arg_u64(struct jval *args, const char *key, uint64_t *out);
int jval_u64(const struct jval *v, uint64_t *out);
const char *arg_str(struct jval *args, const char *key);

/* ---------------------------------------------------------------- answers (lo_json.c) */

extern long long req_id;
extern int answered;
void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void out_hex(const uint8_t *p, size_t n);
void out_jstr(const char *s, size_t n);	/* a JSON string literal, escaped */
void ok_begin(void);
void ok_end(void);
void ok_empty(void);
void fail(const char *err, const char *detail);
int unhex(const char *s, uint8_t **out_buf, size_t *out_len);
void out_free(void);

/* ---------------------------------------------------------------- CLC (lo_clc.c, lo_hs.c) */

void op_clc_decode(struct jval *args);	/* capability clc (section 7), lo_clc.c */
void op_hs(const char *op, struct jval *args);	/* capability handshake (section 8), lo_hs.c */
void hs_reset(void);

#endif
