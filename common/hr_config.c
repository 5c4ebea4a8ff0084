/* The loader: sections, JSON walking, typed getters and error wording. What
 * the keys mean lives with the module that owns each section. */
#include "hr_config.h"
#include "hr_assert.h"
#include "hr_err.h"

#include <arpa/inet.h>
#include <errno.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int hr_cfg_fail(char *err, size_t ecap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, ecap, fmt, ap);
    va_end(ap);
    return HR_ECONFIG;
}

int hr_cfg_check_keys(json_t *obj, const char *where, const char *const *allowed, char *err,
                      size_t ecap)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v)
    {
        int ok = 0;
        for (size_t i = 0; allowed[i]; i++)
            if (strcmp(key, allowed[i]) == 0)
                ok = 1;
        if (!ok)
            return hr_cfg_fail(err, ecap, "%s%s: unknown key", where, key);
    }
    return 0;
}

int hr_cfg_str(json_t *v, const char *path, char *dst, size_t cap, int allow_empty, char *err,
               size_t ecap)
{
    if (!json_is_string(v))
        return hr_cfg_fail(err, ecap, "%s: must be a string", path);
    const char *s = json_string_value(v);
    if (strlen(s) >= cap)
        return hr_cfg_fail(err, ecap, "%s: longer than %zu characters", path, cap - 1);
    if (!allow_empty && !*s)
        return hr_cfg_fail(err, ecap, "%s: must not be empty", path);
    strcpy(dst, s);
    return 0;
}

int hr_cfg_int(json_t *v, const char *path, long long lo, long long hi, long long *dst, char *err,
               size_t ecap)
{
    if (!json_is_integer(v))
        return hr_cfg_fail(err, ecap, "%s: must be an integer", path);
    long long x = json_integer_value(v);
    if (x < lo || x > hi)
        return hr_cfg_fail(err, ecap, "%s: %lld is outside %lld..%lld", path, x, lo, hi);
    *dst = x;
    return 0;
}

int hr_cfg_bool(json_t *v, const char *path, int *dst, char *err, size_t ecap)
{
    if (!json_is_boolean(v))
        return hr_cfg_fail(err, ecap, "%s: must be true or false", path);
    *dst = json_is_true(v);
    return 0;
}

int hr_cfg_choice(json_t *v, const char *path, const char *const *names, size_t cap, int *idx,
                  char *err, size_t ecap)
{
    char s[HR_NAME_MAX], list[HR_NAME_MAX] = "";
    HR_ASSERT(cap <= sizeof(s));
    int rc = hr_cfg_str(v, path, s, cap, 0, err, ecap);
    if (rc)
        return rc;
    for (int i = 0; names[i]; i++) {
        if (strcmp(s, names[i]) == 0) {
            *idx = i;
            return 0;
        }
    }
    /* "a, b or c" */
    for (int i = 0; names[i]; i++) {
        size_t n = strlen(list);
        snprintf(list + n, sizeof(list) - n, "%s%s",
                 i == 0         ? ""
                 : names[i + 1] ? ", "
                                : " or ",
                 names[i]);
    }
    return hr_cfg_fail(err, ecap, "%s: \"%s\" is not %s", path, s, list);
}

/* "<where><key>" into path (cap 256: where and key are ours, or checked short). */
static const char *join(char *path, size_t cap, const char *where, const char *key)
{
    snprintf(path, cap, "%s%s", where, key);
    return path;
}

int hr_cfg_get_str(json_t *obj, const char *key, const char *where, char *dst, size_t cap,
                   int allow_empty, char *err, size_t ecap)
{
    char path[256];
    json_t *v = json_object_get(obj, key);
    return v ? hr_cfg_str(v, join(path, sizeof(path), where, key), dst, cap, allow_empty, err, ecap)
             : 0;
}

int hr_cfg_get_int(json_t *obj, const char *key, const char *where, long long lo, long long hi,
                   long long *dst, char *err, size_t ecap)
{
    char path[256];
    json_t *v = json_object_get(obj, key);
    return v ? hr_cfg_int(v, join(path, sizeof(path), where, key), lo, hi, dst, err, ecap) : 0;
}

int hr_cfg_get_bool(json_t *obj, const char *key, const char *where, int *dst, char *err,
                    size_t ecap)
{
    char path[256];
    json_t *v = json_object_get(obj, key);
    return v ? hr_cfg_bool(v, join(path, sizeof(path), where, key), dst, err, ecap) : 0;
}

int hr_cfg_get_choice(json_t *obj, const char *key, const char *where, const char *const *names,
                      size_t cap, int *idx, char *err, size_t ecap)
{
    char path[256];
    json_t *v = json_object_get(obj, key);
    return v ? hr_cfg_choice(v, join(path, sizeof(path), where, key), names, cap, idx, err, ecap)
             : 0;
}

int hr_cfg_get_strlist(json_t *obj, const char *key, const char *where, hr_strlist *l, size_t cap,
                       size_t max, int (*valid)(const char *), const char *what, char *err,
                       size_t ecap)
{
    json_t *a = json_object_get(obj, key);
    if (!a)
        return 0;
    if (!json_is_array(a) || json_array_size(a) == 0 || (max && json_array_size(a) > max)) {
        if (max)
            return hr_cfg_fail(err, ecap, "%s%s: must be a non-empty array of at most %zu strings",
                               where, key, max);
        return hr_cfg_fail(
            err, ecap,
            "%s%s: must be a non-empty array of strings (omit the key to match anything)", where,
            key);
    }
    l->v = calloc(json_array_size(a), sizeof(*l->v));
    if (!l->v)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        const char *s = json_is_string(v) ? json_string_value(v) : NULL;
        if (!s || strlen(s) >= cap || !valid(s))
            return hr_cfg_fail(err, ecap, "%s%s[%zu]: %s", where, key, i, what);
        strcpy(l->v[i], s);
        l->n = i + 1;
    }
    return 0;
}

/* ---- key tables ---- */

static int apply_key(json_t *v, const char *path, const hr_cfg_key *k, hr_config *c, char *err,
                     size_t ecap)
{
    char *field = (char *)c + k->off;
    long long x;
    int b, idx, rc;
    struct in6_addr a6;
    switch (k->type) {
    case HR_CFG_T_STR:
        rc = hr_cfg_str(v, path, field, k->size, k->flags & HR_CFG_EMPTY_OK, err, ecap);
        if (!rc && k->valid && !k->valid(field))
            rc = hr_cfg_fail(err, ecap, "%s: %s", path, k->what);
        return rc;
    case HR_CFG_T_ADDR:
        rc = hr_cfg_str(v, path, field, k->size, 0, err, ecap);
        if (!rc && inet_pton(AF_INET, field, &a6) != 1 && inet_pton(AF_INET6, field, &a6) != 1)
            rc = hr_cfg_fail(err, ecap, "%s: \"%s\" is not an IPv4 or IPv6 address", path, field);
        return rc;
    case HR_CFG_T_INT:
        rc = hr_cfg_int(v, path, k->lo, k->hi, &x, err, ecap);
        if (rc)
            return rc;
        HR_ASSERT(k->size == sizeof(int32_t) || k->size == sizeof(int64_t));
        if (k->size == sizeof(int32_t)) {
            int32_t x32 = (int32_t)x; /* lo..hi fit the field: int or uint32_t */
            memcpy(field, &x32, sizeof(x32));
        } else {
            int64_t x64 = x;
            memcpy(field, &x64, sizeof(x64));
        }
        return 0;
    case HR_CFG_T_BOOL:
        HR_ASSERT(k->size == sizeof(int));
        rc = hr_cfg_bool(v, path, &b, err, ecap);
        if (!rc)
            memcpy(field, &b, sizeof(b));
        return rc;
    case HR_CFG_T_CHOICE:
        rc = hr_cfg_choice(v, path, k->choices, k->size, &idx, err, ecap);
        if (!rc)
            strcpy(field, k->choices[idx]);
        return rc;
    case HR_CFG_T_CUSTOM:
        return k->parse(v, path, c, err, ecap);
    }
    HR_ASSERT(!"unknown key type");
    return HR_ECONFIG;
}

static int apply_keys(json_t *obj, const char *where, const hr_cfg_key *keys, int check,
                      hr_config *c, char *err, size_t ecap)
{
    const char *key;
    json_t *v;
    if (check) {
        json_object_foreach(obj, key, v)
        {
            const hr_cfg_key *k = keys;
            while (k->name && strcmp(k->name, key) != 0)
                k++;
            if (!k->name)
                return hr_cfg_fail(err, ecap, "%s%s: unknown key", where, key);
        }
    }
    for (const hr_cfg_key *k = keys; k->name; k++) {
        char path[256];
        v = json_object_get(obj, k->name);
        if (!v)
            continue;
        int rc = apply_key(v, join(path, sizeof(path), where, k->name), k, c, err, ecap);
        if (rc)
            return rc;
    }
    return 0;
}

/* ---- sections ---- */

/* Calls f on every section: common's first, then the modules'. */
#define FOR_EACH_SECTION(s)                                                                        \
    for (const hr_config_section *const *list_ = hr_config_core_sections; list_;                   \
         list_ = list_ == hr_config_core_sections ? hr_config_sections : NULL)                     \
        for (const hr_config_section *const *p_ = list_, *s; (s = *p_) != NULL; p_++)

/* Applies one section's value v (the root object for name == NULL). */
static int apply_section(const hr_config_section *s, json_t *v, hr_config *c, char *err,
                         size_t ecap)
{
    char where[64] = "";
    int rc = 0;
    if (s->name)
        snprintf(where, sizeof(where), "%s.", s->name);
    if (s->keys) {
        if (!json_is_object(v))
            return hr_cfg_fail(err, ecap, "%s: must be an object", s->name);
        /* top-level keys are checked once against every section */
        rc = apply_keys(v, where, s->keys, s->name != NULL, c, err, ecap);
    }
    if (!rc && s->parse)
        rc = s->parse(v, s->name ? s->name : "", c, err, ecap);
    return rc;
}

/* The top level may hold the section names and the keys of name-less sections. */
static int check_top(json_t *root, char *err, size_t ecap)
{
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v)
    {
        int ok = 0;
        FOR_EACH_SECTION(s)
        {
            if (s->name && strcmp(s->name, key) == 0)
                ok = 1;
            for (const hr_cfg_key *k = s->name ? NULL : s->keys; k && k->name; k++)
                if (strcmp(k->name, key) == 0)
                    ok = 1;
        }
        if (!ok)
            return hr_cfg_fail(err, ecap, "%s: unknown key", key);
    }
    return 0;
}

/* The file, or the defaults: every section present in root. */
static int apply_root(json_t *root, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_object(root))
        return hr_cfg_fail(err, ecap, "(top level): must be a JSON object");
    int rc = check_top(root, err, ecap);
    FOR_EACH_SECTION(s)
    {
        json_t *v = s->name ? json_object_get(root, s->name) : root;
        if (!rc && v)
            rc = apply_section(s, v, c, err, ecap);
    }
    return rc;
}

/* The embedded defaults as one document (a new reference), or NULL with err. */
static json_t *defaults_doc(char *err, size_t ecap)
{
    json_error_t je;
    json_t *doc = json_object();
    if (!doc) {
        hr_cfg_fail(err, ecap, "embedded defaults: out of memory");
        return NULL;
    }
    FOR_EACH_SECTION(s)
    {
        if (!doc || !s->defaults)
            continue;
        const char *name = s->name ? s->name : "(top level)";
        json_t *v = json_loads(s->defaults, 0, &je);
        int bad = 1;
        if (!v)
            hr_cfg_fail(err, ecap, "embedded defaults of %s: %s", name, je.text);
        else if (!s->name && !json_is_object(v))
            hr_cfg_fail(err, ecap, "embedded defaults of %s: must be an object", name);
        else if (s->name ? json_object_set(doc, s->name, v) : json_object_update(doc, v))
            hr_cfg_fail(err, ecap, "embedded defaults: out of memory");
        else
            bad = 0;
        json_decref(v);
        if (bad) {
            json_decref(doc);
            doc = NULL;
        }
    }
    return doc;
}

const char *hr_config_default_json(void)
{
    static char *text;
    if (!text) {
        char err[256] = "";
        json_t *doc = defaults_doc(err, sizeof(err));
        text = doc ? json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
        json_decref(doc);
    }
    return text;
}

static int load_json(json_t *user, hr_config *out, char *err, size_t ecap)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    FOR_EACH_SECTION(s)
    {
        if (s->init)
            s->init(out);
    }
    json_t *def = defaults_doc(err, ecap);
    if (!def)
        return HR_ECONFIG;
    rc = apply_root(def, out, err, ecap);
    json_decref(def);
    if (!rc && user)
        rc = apply_root(user, out, err, ecap);
    FOR_EACH_SECTION(s)
    {
        if (!rc && s->validate)
            rc = s->validate(out, user, err, ecap);
    }
    if (rc)
        hr_config_free(out);
    return rc;
}

int hr_config_load_string(const char *json, hr_config *out, char *err, size_t ecap)
{
    json_error_t je;
    json_t *user = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (!user) {
        memset(out, 0, sizeof(*out));
        return hr_cfg_fail(err, ecap, "line %d column %d: %s", je.line, je.column, je.text);
    }
    int rc = load_json(user, out, err, ecap);
    json_decref(user);
    return rc;
}

int hr_config_load(const char *path, hr_config *out, char *err, size_t ecap)
{
    if (!path)
        return load_json(NULL, out, err, ecap);
    json_error_t je;
    json_t *user = json_load_file(path, JSON_REJECT_DUPLICATES, &je);
    if (!user) {
        memset(out, 0, sizeof(*out));
        return hr_cfg_fail(err, ecap, "%s: line %d column %d: %s", path, je.line, je.column,
                           je.text);
    }
    int rc = load_json(user, out, err, ecap);
    json_decref(user);
    return rc;
}

void hr_config_free(hr_config *c)
{
    FOR_EACH_SECTION(s)
    {
        if (s->free)
            s->free(c);
    }
}
