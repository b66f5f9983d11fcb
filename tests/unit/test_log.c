/*
 * test_log.c: the diagnostic log's line formats (src/log.c): the exact text and JSON lines, and that a
 * message with quotes, backslashes, control bytes, valid and invalid UTF-8 still makes one valid JSON
 * object (parsed back with jansson, which rejects invalid UTF-8) whose "msg" is the message with
 * every invalid byte replaced by U+FFFD.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "tap.h"

#define T0 1795458900123ull /* 2026-11-23T18:35:00.123Z */

/* Formats msg as JSON, parses it back, checks the line and returns the decoded "msg" (malloc'ed) or
 * NULL. */
static char *json_roundtrip(const char *msg, const char *what, size_t cap)
{
    char *line = malloc(cap);
    size_t n = cf_log_format_line(line, cap, CF_LOG_JSON, T0, CF_LOG_WARN, NULL, 0, msg);
    CHECK(n < cap && line[n] == '\0' && n > 0 && line[n - 1] == '\n' && memchr(line, '\n', n) == line + n - 1,
          "%s: one line, ending in its only newline", what);
    json_error_t e;
    json_t *o = json_loadb(line, n, 0, &e);
    CHECK(o != NULL && json_is_object(o), "%s: the line parses as a JSON object", what);
    if (o == NULL) {
        printf("#   %s: %s\n", e.text, line);
        free(line);
        return NULL;
    }
    CHECK(json_object_size(o) == 3, "%s: three fields", what);
    CHECK_STR(json_string_value(json_object_get(o, "time")), "2026-11-23T18:35:00.123Z", "%s: time", what);
    CHECK_STR(json_string_value(json_object_get(o, "level")), "warn", "%s: level", what);
    const char *m = json_string_value(json_object_get(o, "msg"));
    char *out = m != NULL ? strdup(m) : NULL;
    json_decref(o);
    free(line);
    return out;
}

static void exact_lines(void)
{
    char line[CF_LOG_LINE_MAX];
    size_t n = cf_log_format_line(line, sizeof line, CF_LOG_TEXT, T0, CF_LOG_INFO, NULL, 0, "listening");
    CHECK_STR(line, "2026-11-23T18:35:00.123Z coffer[info]: listening\n", "text line");
    CHECK_INT(n, strlen(line), "text length");
    cf_log_format_line(line, sizeof line, CF_LOG_TEXT, T0, CF_LOG_ERROR, "scan-worker", 42, "no engine");
    CHECK_STR(line, "2026-11-23T18:35:00.123Z coffer[error]: scan-worker: no engine\n", "text line of a scanner");
    n = cf_log_format_line(line, sizeof line, CF_LOG_JSON, T0, CF_LOG_DEBUG, NULL, 0, "a \"b\" c\\d");
    CHECK_STR(line, "{\"time\":\"2026-11-23T18:35:00.123Z\",\"level\":\"debug\",\"msg\":\"a \\\"b\\\" c\\\\d\"}\n",
              "JSON line");
    CHECK_INT(n, strlen(line), "JSON length");
    cf_log_format_line(line, sizeof line, CF_LOG_JSON, T0, CF_LOG_ERROR, "scan-worker", 4242, "x");
    CHECK_STR(line,
              "{\"time\":\"2026-11-23T18:35:00.123Z\",\"level\":\"error\",\"msg\":\"x\",\"process\":\"scan-worker\","
              "\"pid\":4242}\n",
              "JSON line of a scanner");
    cf_log_format_line(line, sizeof line, CF_LOG_JSON, T0, CF_LOG_INFO, NULL, 0, "\x01\b\t\n\f\r\x1f\x7f");
    CHECK_STR(line,
              "{\"time\":\"2026-11-23T18:35:00.123Z\",\"level\":\"info\",\"msg\":"
              "\"\\u0001\\b\\t\\n\\f\\r\\u001f\\u007f\"}\n",
              "control bytes escaped, short forms where JSON has them");
}

static void hostile_messages(void)
{
    static const struct {
        const char *what, *msg, *decoded;
    } cases[] = {
        {"quotes and backslashes", "path \"a\\b\" \\\\ \"", "path \"a\\b\" \\\\ \""},
        {"newlines cannot split the line", "one\ntwo\r\nthree", "one\ntwo\r\nthree"},
        {"valid UTF-8 kept", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92", "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x94\x92"},
        {"a lone byte 0xff", "a\xff" "b", "a\xef\xbf\xbd" "b"},
        {"a truncated sequence", "a\xe2\x82", "a\xef\xbf\xbd\xef\xbf\xbd"},
        {"a truncated sequence before ASCII", "\xe2\x82z", "\xef\xbf\xbd\xef\xbf\xbdz"},
        {"an overlong encoding of '/'", "\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},
        {"an overlong three-byte form", "\xe0\x80\xaf", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"a UTF-16 surrogate", "\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"beyond U+10FFFF", "\xf4\x90\x80\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
        {"a stray continuation byte", "\x80", "\xef\xbf\xbd"},
        {"everything at once", "\"\\\x01\xff\n\xc3\xa9", "\"\\\x01\xef\xbf\xbd\n\xc3\xa9"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *m = json_roundtrip(cases[i].msg, cases[i].what, CF_LOG_LINE_MAX);
        CHECK_STR(m, cases[i].decoded, "%s: msg decodes to the message", cases[i].what);
        free(m);
    }
    /* Every byte value, in one message. */
    char all[256];
    for (int i = 1; i < 256; i++)
        all[i - 1] = (char)i;
    all[255] = '\0';
    char *m = json_roundtrip(all, "bytes 1..255", CF_LOG_LINE_MAX);
    CHECK(m != NULL && strncmp(m, all, 127) == 0, "bytes 1..255: the ASCII part survives unchanged");
    free(m);
}

/* A message longer than the line: cut at a character boundary, still valid JSON. */
static void truncation(void)
{
    char msg[CF_LOG_MSG_MAX];
    memset(msg, '"', sizeof msg - 1);
    msg[sizeof msg - 1] = '\0';
    char *m = json_roundtrip(msg, "quotes filling a small line", 200);
    CHECK(m != NULL && strlen(m) > 0 && strspn(m, "\"") == strlen(m), "the cut message is a prefix of quotes");
    free(m);
    for (size_t i = 0; i + 2 < sizeof msg; i += 2)
        memcpy(msg + i, "\xc3\xa9", 2);
    msg[sizeof msg - 1] = '\0';
    m = json_roundtrip(msg, "two-byte characters filling a small line", 201);
    CHECK(m != NULL && strlen(m) % 2 == 0 && strlen(m) > 0, "cut between characters, never inside one");
    free(m);
    char line[128];
    cf_log_format_line(line, sizeof line, CF_LOG_TEXT, T0, CF_LOG_INFO, NULL, 0, msg);
    size_t n = strlen(line);
    CHECK(n == sizeof line - 1 || n == sizeof line - 2, "a text line fills the buffer");
    CHECK(line[n - 1] == '\n', "and still ends in a newline");
}

int main(void)
{
    exact_lines();
    hostile_messages();
    truncation();
    return tap_done();
}
