/*
 * fuzz_json.c: the strict JSON request-body parsing every handler uses (src/http.c):
 * cf_json_parse_object, cf_json_unknown_key and the typed field getters cf_json_str/uint/bool, driven
 * with the schemas of three real handlers (share creation, share unlock, folder creation) and with
 * every key of the object.
 *
 * Invariants: a body over the limit is CF_ETOOBIG, anything refused has a reason and no object; an
 * accepted body is an object without duplicate keys that survives dump → load unchanged; an
 * unknown key reported is a key of the object outside the allowed list, and none reported means
 * every key is allowed; a getter's answer matches the value's JSON type (strings valid UTF-8 of the
 * stated length, integers within 0..max, present only when CF_OK).
 */
#include <string.h>

#include "fuzz.h"
#include "http.h"
#include "validate.h"

#define MAX_BODY 65536

struct schema {
    const char *const *allowed;
    const char *strs[4];  /* string fields; required when listed in req */
    bool str_required[4];
    const char *uints[2];
    uint64_t uint_max[2];
    const char *bools[1];
};

static const char *const share_create[] = {"node", "permission", "expires_in", "code", "max_downloads",
                                           "internal_only", NULL};
static const char *const share_unlock[] = {"code", NULL};
static const char *const folder_create[] = {"parent", "name", NULL};

static const struct schema schemas[] = {
    {share_create, {"node", "permission", "code", NULL}, {true, true, false, false}, {"expires_in", "max_downloads"},
     {UINT32_MAX, 1000000}, {"internal_only"}},
    {share_unlock, {"code", NULL, NULL, NULL}, {true, false, false, false}, {NULL, NULL}, {0, 0}, {NULL}},
    {folder_create, {"parent", "name", NULL, NULL}, {true, true, false, false}, {NULL, NULL}, {0, 0}, {NULL}},
};

static bool listed(const char *const *allowed, const char *key)
{
    for (size_t i = 0; allowed[i] != NULL; i++)
        if (strcmp(allowed[i], key) == 0)
            return true;
    return false;
}

static void check_str(json_t *obj, const char *key, bool required)
{
    const char *s = (const char *)1;
    size_t len = 99;
    json_t *v = json_object_get(obj, key);
    enum cf_status st = cf_json_str(obj, key, required, &s, &len);
    if (v == NULL || (json_is_null(v) && !required)) {
        FUZZ_CHECK(st == (required ? CF_ENOTFOUND : CF_OK) && s == NULL && len == 0);
    } else if (json_is_string(v)) {
        FUZZ_CHECK(st == CF_OK && s != NULL && len == json_string_length(v) && cf_utf8_valid(s, len));
    } else {
        FUZZ_CHECK(st == CF_EINVAL && s == NULL);
    }
}

static void check_uint(json_t *obj, const char *key, bool required, uint64_t max)
{
    uint64_t out = 424242;
    bool present = true;
    json_t *v = json_object_get(obj, key);
    enum cf_status st = cf_json_uint(obj, key, required, max, &out, &present);
    if (st == CF_OK && present) {
        FUZZ_CHECK(json_is_integer(v) && json_integer_value(v) >= 0 && out == (uint64_t)json_integer_value(v) &&
                   out <= max);
    } else if (st == CF_OK) {
        FUZZ_CHECK(out == 424242 && (v == NULL || json_is_null(v)) && !required);
    } else {
        FUZZ_CHECK(!present);
        FUZZ_CHECK(st == CF_ENOTFOUND ? v == NULL : st == CF_EINVAL && v != NULL);
    }
}

static void check_bool(json_t *obj, const char *key)
{
    bool out = false, present = true;
    json_t *v = json_object_get(obj, key);
    enum cf_status st = cf_json_bool(obj, key, &out, &present);
    if (v == NULL)
        FUZZ_CHECK(st == CF_OK && !present);
    else if (json_is_boolean(v))
        FUZZ_CHECK(st == CF_OK && present && out == json_is_true(v));
    else
        FUZZ_CHECK(st == CF_EINVAL && !present);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *obj = (json_t *)1;
    const char *why = NULL;
    if (size > 2 * MAX_BODY)
        return 0;
    enum cf_status st = cf_json_parse_object((const char *)data, size, MAX_BODY, &obj, &why);
    if (size > MAX_BODY)
        FUZZ_CHECK(st == CF_ETOOBIG);
    if (st != CF_OK) {
        FUZZ_CHECK(obj == NULL && why != NULL && (st == CF_EINVAL || st == CF_ETOOBIG));
        return 0;
    }
    FUZZ_CHECK(json_is_object(obj) && why == NULL);

    /* Round trip through the encoder the server answers with. */
    char *text = json_dumps(obj, JSON_COMPACT | JSON_ENSURE_ASCII);
    FUZZ_CHECK(text != NULL);
    json_t *again = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(again != NULL && json_equal(obj, again));
    json_decref(again);
    free(text);

    for (size_t k = 0; k < sizeof schemas / sizeof schemas[0]; k++) {
        const struct schema *sc = &schemas[k];
        const char *bad = cf_json_unknown_key(obj, sc->allowed);
        if (bad != NULL) {
            FUZZ_CHECK(json_object_get(obj, bad) != NULL && !listed(sc->allowed, bad));
        } else {
            const char *key;
            json_t *v;
            json_object_foreach(obj, key, v) FUZZ_CHECK(listed(sc->allowed, key));
        }
        for (size_t i = 0; i < 4 && sc->strs[i] != NULL; i++)
            check_str(obj, sc->strs[i], sc->str_required[i]);
        for (size_t i = 0; i < 2 && sc->uints[i] != NULL; i++)
            check_uint(obj, sc->uints[i], true, sc->uint_max[i]), check_uint(obj, sc->uints[i], false, sc->uint_max[i]);
        if (sc->bools[0] != NULL)
            check_bool(obj, sc->bools[0]);
    }
    /* Every key, under every getter. */
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        check_str(obj, key, true);
        check_str(obj, key, false);
        check_uint(obj, key, false, UINT64_MAX);
        check_uint(obj, key, true, 10);
        check_bool(obj, key);
    }
    json_decref(obj);
    return 0;
}
