/* recognition.*: the recognition catalogue, QC status per center, grants.
 *
 *   key                                 default        rule
 *   recognition.items[]                 3 examples     at most 1000; the file's list replaces it
 *   recognition.items[].code            required       1-32 of [A-Za-z0-9._-], unique
 *   recognition.items[].loinc           ""             "nnnnn-n" (1-7 digits, check digit)
 *   recognition.items[].name            required       non-empty UTF-8
 *   recognition.items[].category        required       imaging | ecg | pathology | lab
 *   recognition.items[].match           {}             {modalities, body_parts, procedures,
 *                                                      codes}: non-empty string lists
 *   recognition.items[].scope           community      community | city | province
 *   recognition.items[].validity_days   required       1..3650
 *   recognition.items[].tests           []             lab items: test codes (OBX-3)
 *   recognition.items[].hr_mark         required       non-empty, < 64 bytes
 *   recognition.items[].price_yuan      0              integer yuan, or "12.5" / "12.50"
 *                                                      (stored in fen), 0..10^7 yuan
 *   recognition.qc[]                    []             at most 1000; replaces the default
 *   recognition.qc[].center             required       one of centers[].id
 *   recognition.qc[].items              required       "*" or a non-empty list of item codes
 *   recognition.qc[].passed_from, passed_to  required  "YYYY-MM-DD", from <= to
 *   recognition.grant_hours             24             1..720
 *   recognition.grant_seconds           0              0..86400; > 0 replaces grant_hours (tests)
 *   recognition.lookup_studies          200            1..1000
 *   recognition.days_ahead              0              0..3650 (tests only)
 *
 * Meaning: docs/configuration.md; decision 0027. */
#include "rec_config.h"
#include "recognition.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_scopes[] = {"community", "city", "province", NULL};
static const char *const k_kinds[] = {"imaging", "ecg", "pathology", "lab", NULL};

const char *rec_scope_name(enum rec_scope s)
{
    return (unsigned)s < REC_SCOPES ? k_scopes[s] : "?";
}

int rec_code_valid(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n >= REC_CODE_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '.' || s[i] == '_' || s[i] == '-'))
            return 0;
    return 1;
}

const rec_item *rec_item_find(const hr_config *cfg, const char *code)
{
    const rec_config *rc = cfg->recognition;
    for (size_t i = 0; rc && code && i < rc->n_items; i++)
        if (strcmp(rc->items[i].code, code) == 0)
            return &rc->items[i];
    return NULL;
}

long long rec_grant_ms(const hr_config *cfg)
{
    const rec_config *rc = cfg->recognition;
    if (!rc)
        return 0;
    return rc->grant_seconds > 0 ? rc->grant_seconds * 1000LL : rc->grant_hours * 3600000LL;
}

int rec_today(const hr_config *cfg, long long now_ms)
{
    int today = rec_day_of(now_ms);
    const rec_config *rc = cfg->recognition;
    return rc && rc->days_ahead > 0 ? rec_day_add(today, rc->days_ahead) : today;
}

/* "nnnnn-n": 1-7 digits, '-', one check digit (not verified). */
static int valid_loinc(const char *s)
{
    const char *dash = strchr(s, '-');
    size_t n = strlen(s);
    if (!dash || dash == s || dash - s > 7 || (size_t)(dash - s) + 2 != n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (s + i != dash && (s[i] < '0' || s[i] > '9'))
            return 0;
    return 1;
}

/* YYYY-MM-DD -> YYYYMMDD number; 0 when malformed. */
static int parse_day(const char *s)
{
    int y, m, d;
    char tail;
    if (strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
            return 0;
    if (sscanf(s, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3 || y < 1900 || m < 1 || m > 12 ||
        d < 1 || d > 31)
        return 0;
    return y * 10000 + m * 100 + d;
}

static void free_items(rec_config *rc)
{
    for (size_t i = 0; i < rc->n_items; i++) {
        rec_match *m = &rc->items[i].match;
        hr_strlist_free(&m->modalities);
        hr_strlist_free(&m->body_parts);
        hr_strlist_free(&m->procedures);
        hr_strlist_free(&m->codes);
        hr_strlist_free(&rc->items[i].tests);
    }
    free(rc->items);
    rc->items = NULL;
    rc->n_items = 0;
}

static void free_qc(rec_config *rc)
{
    for (size_t i = 0; i < rc->n_qc; i++)
        hr_strlist_free(&rc->qc[i].items);
    free(rc->qc);
    rc->qc = NULL;
    rc->n_qc = 0;
}

static void rec_init(hr_config *c)
{
    c->recognition = calloc(1, sizeof(*c->recognition)); /* NULL: parse answers -ENOMEM */
}

static void rec_free(hr_config *c)
{
    if (!c->recognition)
        return;
    free_items(c->recognition);
    free_qc(c->recognition);
    free(c->recognition);
    c->recognition = NULL;
}

static int parse_match(json_t *m, const char *where, rec_match *out, char *err, size_t ecap)
{
    static const char *const keys[] = {"modalities", "body_parts", "procedures", "codes", NULL};
    char w[80];
    snprintf(w, sizeof(w), "%smatch.", where);
    if (!json_is_object(m))
        return hr_cfg_fail(err, ecap, "%smatch: must be an object", where);
    int rc = hr_cfg_check_keys(m, w, keys, err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(m, "modalities", w, &out->modalities, HR_CS_MAX, 64, hr_cs_valid,
                                "must be 1-16 printable ASCII characters", err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(m, "body_parts", w, &out->body_parts, HR_CS_MAX, 64, hr_cs_valid,
                                "must be 1-16 printable ASCII characters", err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(m, "procedures", w, &out->procedures, HR_NAME_MAX, 64,
                                hr_str_nonempty,
                                "must be a non-empty string shorter than 256 bytes", err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(m, "codes", w, &out->codes, 64, 64, hr_str_nonempty,
                                "must be a non-empty string shorter than 64 bytes", err, ecap);
    return rc;
}

/* "price_yuan": an integer (yuan) or a decimal string with at most two
 * decimals; never a JSON real (binary fractions of a yuan). */
static int parse_price(json_t *v, const char *where, long long *fen, char *err, size_t ecap)
{
    const long long max_yuan = 10000000;
    if (json_is_integer(v)) {
        long long y = json_integer_value(v);
        if (y < 0 || y > max_yuan)
            return hr_cfg_fail(err, ecap, "%sprice_yuan: must be 0..%lld", where, max_yuan);
        *fen = y * 100;
        return 0;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : "";
    long long whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    const char *p = s;
    for (; *p >= '0' && *p <= '9' && digits < 9; p++, digits++)
        whole = whole * 10 + (*p - '0');
    if (*p == '.') {
        for (p++; *p >= '0' && *p <= '9' && fdigits < 2; p++, fdigits++)
            frac = frac * 10 + (*p - '0');
        if (fdigits == 0)
            digits = 0;
    }
    if (fdigits == 1)
        frac *= 10;
    if (!digits || *p || whole > max_yuan)
        return hr_cfg_fail(err, ecap,
                           "%sprice_yuan: an integer number of yuan, or a string \"12.50\" (at "
                           "most two decimals), 0..%lld",
                           where, max_yuan);
    *fen = whole * 100 + frac;
    return 0;
}

static int parse_item(json_t *o, size_t i, rec_item *it, char *err, size_t ecap)
{
    static const char *const keys[] = {"code",    "loinc",      "name",  "category",
                                       "match",   "scope",      "tests", "validity_days",
                                       "hr_mark", "price_yuan", NULL};
    static const char *const required[] = {"code", "name", "category", "validity_days", "hr_mark"};
    char where[64];
    int kind = 0, scope = REC_SCOPE_COMMUNITY;
    long long days = 0;
    snprintf(where, sizeof(where), "recognition.items[%zu].", i);
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "recognition.items[%zu]: must be an object", i);
    int rc = hr_cfg_check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
        if (!json_object_get(o, required[k]))
            return hr_cfg_fail(err, ecap, "%s%s: required", where, required[k]);
    rc = hr_cfg_get_str(o, "code", where, it->code, sizeof(it->code), 0, err, ecap);
    if (!rc && !rec_code_valid(it->code))
        rc = hr_cfg_fail(err, ecap, "%scode: \"%s\" must be 1-32 of A-Z a-z 0-9 . _ -", where,
                         it->code);
    if (!rc)
        rc = hr_cfg_get_str(o, "loinc", where, it->loinc, sizeof(it->loinc), 1, err, ecap);
    if (!rc && it->loinc[0] && !valid_loinc(it->loinc))
        rc = hr_cfg_fail(err, ecap, "%sloinc: \"%s\" is not a LOINC code (\"30799-1\")", where,
                         it->loinc);
    if (!rc)
        rc = hr_cfg_get_str(o, "name", where, it->name, sizeof(it->name), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_choice(o, "category", where, k_kinds, 16, &kind, err, ecap);
    if (!rc)
        rc = hr_cfg_get_choice(o, "scope", where, k_scopes, 16, &scope, err, ecap);
    if (!rc)
        rc = hr_cfg_get_int(o, "validity_days", where, 1, 3650, &days, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "hr_mark", where, it->hr_mark, sizeof(it->hr_mark), 0, err, ecap);
    if (!rc && json_object_get(o, "match"))
        rc = parse_match(json_object_get(o, "match"), where, &it->match, err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(o, "tests", where, &it->tests, 64, 64, hr_str_nonempty,
                                "must be a non-empty test code shorter than 64 bytes", err, ecap);
    if (!rc && json_object_get(o, "price_yuan"))
        rc = parse_price(json_object_get(o, "price_yuan"), where, &it->price_fen, err, ecap);
    it->category = (enum hr_center_kind)kind;
    it->scope = (enum rec_scope)scope;
    it->validity_days = (int)days;
    return rc;
}

static int parse_items(json_t *a, const char *path, hr_config *c, char *err, size_t ecap)
{
    rec_config *rc = c->recognition;
    if (!json_is_array(a) || json_array_size(a) > REC_ITEMS_MAX)
        return hr_cfg_fail(err, ecap, "%s: must be an array of at most %d items", path,
                           REC_ITEMS_MAX);
    free_items(rc);
    rc->items = calloc(json_array_size(a) + 1, sizeof(*rc->items));
    if (!rc->items)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(a); i++) {
        rc->n_items = i + 1; /* freed on error too */
        int r = parse_item(json_array_get(a, i), i, &rc->items[i], err, ecap);
        if (r)
            return r;
    }
    return 0;
}

static int parse_qc_one(json_t *o, size_t i, rec_qc *q, char *err, size_t ecap)
{
    static const char *const keys[] = {"center", "items", "passed_from", "passed_to", NULL};
    char where[64], from[16] = "", to[16] = "";
    snprintf(where, sizeof(where), "recognition.qc[%zu].", i);
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "recognition.qc[%zu]: must be an object", i);
    int rc = hr_cfg_check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    for (size_t k = 0; keys[k]; k++)
        if (!json_object_get(o, keys[k]))
            return hr_cfg_fail(err, ecap, "%s%s: required", where, keys[k]);
    rc = hr_cfg_get_str(o, "center", where, q->center, sizeof(q->center), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "passed_from", where, from, sizeof(from), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "passed_to", where, to, sizeof(to), 0, err, ecap);
    if (rc)
        return rc;
    q->from = parse_day(from);
    q->to = parse_day(to);
    if (!q->from || !q->to)
        return hr_cfg_fail(err, ecap, "%spassed_%s: \"%s\" is not a date YYYY-MM-DD", where,
                           q->from ? "to" : "from", q->from ? to : from);
    if (q->from > q->to)
        return hr_cfg_fail(err, ecap, "%spassed_to: %s is before passed_from %s", where, to, from);
    json_t *items = json_object_get(o, "items");
    if (json_is_string(items) && strcmp(json_string_value(items), "*") == 0) {
        q->all_items = 1;
        return 0;
    }
    if (!json_is_array(items))
        return hr_cfg_fail(err, ecap, "%sitems: \"*\" or a non-empty list of item codes", where);
    return hr_cfg_get_strlist(o, "items", where, &q->items, REC_CODE_MAX, 64, rec_code_valid,
                              "must be an item code", err, ecap);
}

static int parse_qc(json_t *a, const char *path, hr_config *c, char *err, size_t ecap)
{
    rec_config *rc = c->recognition;
    if (!json_is_array(a) || json_array_size(a) > REC_QC_MAX)
        return hr_cfg_fail(err, ecap, "%s: must be an array of at most %d entries", path,
                           REC_QC_MAX);
    free_qc(rc);
    rc->qc = calloc(json_array_size(a) + 1, sizeof(*rc->qc));
    if (!rc->qc)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(a); i++) {
        rc->n_qc = i + 1;
        int r = parse_qc_one(json_array_get(a, i), i, &rc->qc[i], err, ecap);
        if (r)
            return r;
    }
    return 0;
}

static int rec_parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {
        "items", "qc", "grant_hours", "grant_seconds", "lookup_studies", "days_ahead", NULL};
    rec_config *rc = c->recognition;
    long long n;
    int r;
    if (!rc)
        return -ENOMEM;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    r = hr_cfg_check_keys(v, "recognition.", keys, err, ecap);
    n = rc->grant_hours;
    if (!r)
        r = hr_cfg_get_int(v, "grant_hours", "recognition.", 1, 720, &n, err, ecap);
    rc->grant_hours = (int)n;
    n = rc->grant_seconds;
    if (!r)
        r = hr_cfg_get_int(v, "grant_seconds", "recognition.", 0, 86400, &n, err, ecap);
    rc->grant_seconds = (int)n;
    n = rc->lookup_studies;
    if (!r)
        r = hr_cfg_get_int(v, "lookup_studies", "recognition.", 1, 1000, &n, err, ecap);
    rc->lookup_studies = (int)n;
    n = rc->days_ahead;
    if (!r)
        r = hr_cfg_get_int(v, "days_ahead", "recognition.", 0, 3650, &n, err, ecap);
    rc->days_ahead = (int)n;
    if (!r && json_object_get(v, "items"))
        r = parse_items(json_object_get(v, "items"), "recognition.items", c, err, ecap);
    if (!r && json_object_get(v, "qc"))
        r = parse_qc(json_object_get(v, "qc"), "recognition.qc", c, err, ecap);
    return r;
}

const rec_item *rec_item_by_test(const hr_config *cfg, const char *code)
{
    const rec_config *rc = cfg->recognition;
    for (size_t i = 0; rc && code && *code && i < rc->n_items; i++) {
        const rec_item *it = &rc->items[i];
        if (it->category != HR_CENTER_LAB)
            continue;
        for (size_t k = 0; k < it->tests.n; k++)
            if (strcmp(it->tests.v[k], code) == 0)
                return it;
    }
    return NULL;
}

/* Codes unique; QC centers known and their items in the catalogue. */
static int rec_validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    const rec_config *rc = c->recognition;
    if (!rc)
        return -ENOMEM;
    for (size_t i = 0; i < rc->n_items; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(rc->items[i].code, rc->items[j].code) == 0)
                return hr_cfg_fail(err, ecap, "recognition.items[%zu].code: \"%s\" is used twice",
                                   i, rc->items[i].code);
    for (size_t i = 0; i < rc->n_qc; i++) {
        const rec_qc *q = &rc->qc[i];
        if (!hr_config_center(c, q->center))
            return hr_cfg_fail(err, ecap,
                               "recognition.qc[%zu].center: \"%s\" is not one of centers[].id", i,
                               q->center);
        for (size_t k = 0; k < q->items.n; k++)
            if (!rec_item_find(c, q->items.v[k]))
                return hr_cfg_fail(err, ecap,
                                   "recognition.qc[%zu].items[%zu]: \"%s\" is not one of "
                                   "recognition.items[].code",
                                   i, k, q->items.v[k]);
    }
    return 0;
}

/* The default catalogue is an example: its HR mark says so ("示例HR", not a
 * real province's mark), and no center has passed QC, so nothing is
 * recognizable until the operator configures recognition.qc. */
const hr_config_section rec_config_recognition = {
    .name = "recognition",
    .defaults =
        "{\"grant_hours\": 24, \"grant_seconds\": 0, \"lookup_studies\": 200, \"days_ahead\": 0,\n"
        " \"items\": [\n"
        "  {\"code\": \"XR-CHEST-PA\", \"loinc\": \"36554-4\", \"name\": \"胸部正位片\",\n"
        "   \"category\": \"imaging\", \"match\": {\"modalities\": [\"DX\", \"CR\"],\n"
        "   \"body_parts\": [\"CHEST\"]}, \"scope\": \"community\", \"validity_days\": 30,\n"
        "   \"hr_mark\": \"示例HR\", \"price_yuan\": 60},\n"
        "  {\"code\": \"CT-HEAD\", \"loinc\": \"30799-1\", \"name\": \"头颅CT平扫\",\n"
        "   \"category\": \"imaging\", \"match\": {\"modalities\": [\"CT\"],\n"
        "   \"body_parts\": [\"HEAD\", \"BRAIN\"]}, \"scope\": \"community\", \"validity_days\": "
        "30,\n"
        "   \"hr_mark\": \"示例HR\", \"price_yuan\": 200},\n"
        "  {\"code\": \"ECG-12\", \"loinc\": \"11524-6\", \"name\": \"12导联心电图\",\n"
        "   \"category\": \"ecg\", \"match\": {\"modalities\": [\"ECG\"]}, \"scope\": "
        "\"community\",\n"
        "   \"validity_days\": 7, \"hr_mark\": \"示例HR\", \"price_yuan\": \"25.00\"},\n"
        "  {\"code\": \"LAB-K\", \"loinc\": \"2823-3\", \"name\": \"血清钾\", \"category\": "
        "\"lab\",\n"
        "   \"match\": {\"modalities\": [\"LAB\"]}, \"tests\": [\"2823-3\", \"K\"],\n"
        "   \"scope\": \"community\", \"validity_days\": 7, \"hr_mark\": \"示例HR\", "
        "\"price_yuan\": 5},\n"
        "  {\"code\": \"LAB-NA\", \"loinc\": \"2951-2\", \"name\": \"血清钠\", \"category\": "
        "\"lab\",\n"
        "   \"match\": {\"modalities\": [\"LAB\"]}, \"tests\": [\"2951-2\", \"NA\"],\n"
        "   \"scope\": \"community\", \"validity_days\": 7, \"hr_mark\": \"示例HR\", "
        "\"price_yuan\": 5},\n"
        "  {\"code\": \"LAB-CL\", \"loinc\": \"2075-0\", \"name\": \"血清氯\", \"category\": "
        "\"lab\",\n"
        "   \"match\": {\"modalities\": [\"LAB\"]}, \"tests\": [\"2075-0\", \"CL\"],\n"
        "   \"scope\": \"community\", \"validity_days\": 7, \"hr_mark\": \"示例HR\", "
        "\"price_yuan\": 5},\n"
        "  {\"code\": \"LAB-CA\", \"loinc\": \"17861-6\", \"name\": \"血清钙\", \"category\": "
        "\"lab\",\n"
        "   \"match\": {\"modalities\": [\"LAB\"]}, \"tests\": [\"17861-6\", \"CA\"],\n"
        "   \"scope\": \"community\", \"validity_days\": 7, \"hr_mark\": \"示例HR\", "
        "\"price_yuan\": 5},\n"
        "  {\"code\": \"LAB-GLU\", \"loinc\": \"2345-7\", \"name\": \"空腹血糖\", \"category\": "
        "\"lab\",\n"
        "   \"match\": {\"modalities\": [\"LAB\"]}, \"tests\": [\"2345-7\", \"GLU\"],\n"
        "   \"scope\": \"community\", \"validity_days\": 30, \"hr_mark\": \"示例HR\", "
        "\"price_yuan\": 5},\n"
        "  {\"code\": \"LAB-HBA1C\", \"loinc\": \"4548-4\", \"name\": \"糖化血红蛋白\", "
        "\"category\": \"lab\",\n"
        "   \"match\": {\"modalities\": [\"LAB\"]}, \"tests\": [\"4548-4\", \"HBA1C\"],\n"
        "   \"scope\": \"community\", \"validity_days\": 60, \"hr_mark\": \"示例HR\", "
        "\"price_yuan\": 60}],\n"
        " \"qc\": []}",
    .parse = rec_parse,
    .init = rec_init,
    .validate = rec_validate,
    .free = rec_free,
};
