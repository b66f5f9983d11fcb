/*
 * jsonw.h: a JSON writer straight into one growing buffer, for hot responses (a node, a page of
 * children) that would otherwise build a jansson tree and dump it. Its output is byte for byte what
 * json_dumps(..., JSON_COMPACT | JSON_ENSURE_ASCII) gives for the same values in the same order
 * (tests/unit/test_jsonw.c compares them): strings escaped as jansson escapes them (\" \\ \b \f \n
 * \r \t, other controls and every non-ASCII code point as \uXXXX in upper-case hex, astral ones as
 * a surrogate pair), integers in decimal. Where jansson would refuse a value (a string that is not
 * valid UTF-8, a NULL string) the writer sets w->bad and the caller falls back to jansson, so the
 * output never differs. Owns nothing but its buffer; any thread.
 */
#ifndef CF_JSONW_H
#define CF_JSONW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "storage.h"

struct cf_jw {
    char *p;
    size_t n, cap;
    bool bad; /* a value jansson would not have written the same way: use the tree instead */
};

void cf_jw_init(struct cf_jw *w, size_t cap);
void cf_jw_free(struct cf_jw *w);
void cf_jw_raw(struct cf_jw *w, const char *s, size_t n);
/* A string literal (only a literal: its size is taken with sizeof). */
#define cf_jw_lit(w, s) cf_jw_raw((w), "" s, sizeof(s) - 1)
/* A string value; NULL or invalid UTF-8 sets bad. */
void cf_jw_str(struct cf_jw *w, const char *s);
/* A string value or null. */
void cf_jw_str_or_null(struct cf_jw *w, const char *s);
void cf_jw_int(struct cf_jw *w, long long v);
/* An id as 32 hex digits, null for the zero id (cf_json_id). */
void cf_jw_id(struct cf_jw *w, const struct cf_id *id);
/* A time as RFC 3339 (cf_json_time). */
void cf_jw_time(struct cf_jw *w, uint64_t ms);

#endif
