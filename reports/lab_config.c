/* lab.*: HL7 lab results (decisions 0035, 0041).
 *
 *   key               default          rule
 *   lab.facilities    {}               {"<MSH-4>": "<hospital id>"}, at most 1000
 *   lab.charsets      {}               {"<hospital id>": "UNICODE UTF-8" | "GB 18030-2000" |
 * "8859/1"} lab.default_charset "UNICODE UTF-8" one of the three lab.critical_flags  [] subset of
 * "AA" ">" "<" (HH and LL always) lab.critical_ranges []             [{test, system?, low?, high?,
 * unit?}], at most 1000 lab.review        []               [{hospitals?, tests?, center,
 * priority?}], at most 200
 *
 * Meaning: docs/configuration.md. */
#include "lab_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const k_charsets[] = {"UNICODE UTF-8", "GB 18030-2000", "8859/1", NULL};
static const char *const k_prios[] = {"stat", "urgent", "routine", NULL};

static void lab_free(hr_config *c)
{
    lab_config *l = c->lab;
    if (!l)
        return;
    free(l->facilities);
    free(l->charsets);
    free(l->ranges);
    for (size_t i = 0; i < l->n_rules; i++) {
        hr_strlist_free(&l->rules[i].hospitals);
        hr_strlist_free(&l->rules[i].tests);
    }
    free(l->rules);
    free(l);
    c->lab = NULL;
}

static void lab_init(hr_config *c)
{
    c->lab = calloc(1, sizeof(*c->lab)); /* NULL: parse answers -ENOMEM */
}

static int charset_valid(const char *s)
{
    for (size_t i = 0; k_charsets[i]; i++)
        if (strcmp(s, k_charsets[i]) == 0)
            return 1;
    return 0;
}

static int code_valid(const char *s)
{
    return *s && strlen(s) < LAB_CODE_MAX && !strpbrk(s, "|^~\\&\r\n");
}

static int parse_facilities(json_t *v, lab_config *l, char *err, size_t ecap)
{
    const char *k;
    json_t *x;
    size_t i = 0;
    if (!json_is_object(v) || json_object_size(v) > LAB_FACILITIES_MAX)
        return hr_cfg_fail(err, ecap, "lab.facilities: must be an object of at most %d entries",
                           LAB_FACILITIES_MAX);
    free(l->facilities);
    l->n_facilities = 0;
    l->facilities = calloc(json_object_size(v) + 1, sizeof(*l->facilities));
    if (!l->facilities)
        return -ENOMEM;
    json_object_foreach(v, k, x)
    {
        lab_facility *f = &l->facilities[i];
        if (!*k || strlen(k) >= sizeof(f->facility) || !json_is_string(x) ||
            !*json_string_value(x) || strlen(json_string_value(x)) >= sizeof(f->hospital))
            return hr_cfg_fail(err, ecap, "lab.facilities.%s: must map a facility to a hospital id",
                               k);
        snprintf(f->facility, sizeof(f->facility), "%s", k);
        snprintf(f->hospital, sizeof(f->hospital), "%s", json_string_value(x));
        l->n_facilities = ++i;
    }
    return 0;
}

static int parse_charsets(json_t *v, lab_config *l, char *err, size_t ecap)
{
    const char *k;
    json_t *x;
    size_t i = 0;
    if (!json_is_object(v) || json_object_size(v) > LAB_FACILITIES_MAX)
        return hr_cfg_fail(err, ecap, "lab.charsets: must be an object of at most %d entries",
                           LAB_FACILITIES_MAX);
    free(l->charsets);
    l->n_charsets = 0;
    l->charsets = calloc(json_object_size(v) + 1, sizeof(*l->charsets));
    if (!l->charsets)
        return -ENOMEM;
    json_object_foreach(v, k, x)
    {
        lab_charset *cs = &l->charsets[i];
        if (!*k || strlen(k) >= sizeof(cs->hospital) || !json_is_string(x) ||
            !charset_valid(json_string_value(x)))
            return hr_cfg_fail(err, ecap,
                               "lab.charsets.%s: must be \"UNICODE UTF-8\", \"GB 18030-2000\" "
                               "or \"8859/1\"",
                               k);
        snprintf(cs->hospital, sizeof(cs->hospital), "%s", k);
        snprintf(cs->charset, sizeof(cs->charset), "%s", json_string_value(x));
        l->n_charsets = ++i;
    }
    return 0;
}

static int parse_flags(json_t *v, lab_config *l, char *err, size_t ecap)
{
    size_t i;
    json_t *x;
    if (!json_is_array(v))
        return hr_cfg_fail(err, ecap, "lab.critical_flags: must be an array");
    l->flag_aa = l->flag_gt = l->flag_lt = 0;
    json_array_foreach(v, i, x)
    {
        const char *s = json_string_value(x);
        if (s && strcmp(s, "AA") == 0)
            l->flag_aa = 1;
        else if (s && strcmp(s, ">") == 0)
            l->flag_gt = 1;
        else if (s && strcmp(s, "<") == 0)
            l->flag_lt = 1;
        else
            return hr_cfg_fail(err, ecap,
                               "lab.critical_flags[%zu]: must be \"AA\", \">\" or \"<\" (HH and "
                               "LL are always critical)",
                               i);
    }
    return 0;
}

static int get_num(json_t *o, const char *key, const char *path, int *has, double *dst, char *err,
                   size_t ecap)
{
    json_t *x = json_object_get(o, key);
    if (!x)
        return 0;
    if (!json_is_number(x))
        return hr_cfg_fail(err, ecap, "%s.%s: must be a number", path, key);
    *has = 1;
    *dst = json_number_value(x);
    return 0;
}

static int parse_ranges(json_t *v, lab_config *l, char *err, size_t ecap)
{
    static const char *const keys[] = {"test", "system", "low", "high", "unit", NULL};
    size_t i;
    json_t *x;
    char path[64];
    int rc;
    if (!json_is_array(v) || json_array_size(v) > LAB_RANGES_MAX)
        return hr_cfg_fail(err, ecap, "lab.critical_ranges: must be an array of at most %d",
                           LAB_RANGES_MAX);
    free(l->ranges);
    l->n_ranges = 0;
    l->ranges = calloc(json_array_size(v) + 1, sizeof(*l->ranges));
    if (!l->ranges)
        return -ENOMEM;
    json_array_foreach(v, i, x)
    {
        lab_range *r = &l->ranges[i];
        snprintf(path, sizeof(path), "lab.critical_ranges[%zu]", i);
        if (!json_is_object(x))
            return hr_cfg_fail(err, ecap, "%s: must be an object", path);
        char where[72];
        snprintf(where, sizeof(where), "%s.", path);
        rc = hr_cfg_check_keys(x, where, keys, err, ecap);
        if (!rc && !json_object_get(x, "test"))
            rc = hr_cfg_fail(err, ecap, "%s.test: missing", path);
        if (!rc)
            rc = hr_cfg_get_str(x, "test", where, r->test, sizeof(r->test), 0, err, ecap);
        if (!rc)
            rc = hr_cfg_get_str(x, "system", where, r->system, sizeof(r->system), 1, err, ecap);
        if (!rc)
            rc = hr_cfg_get_str(x, "unit", where, r->unit, sizeof(r->unit), 1, err, ecap);
        if (!rc)
            rc = get_num(x, "low", path, &r->has_low, &r->low, err, ecap);
        if (!rc)
            rc = get_num(x, "high", path, &r->has_high, &r->high, err, ecap);
        if (rc)
            return rc;
        if (!code_valid(r->test))
            return hr_cfg_fail(err, ecap, "%s.test: not a test code", path);
        if (!r->has_low && !r->has_high)
            return hr_cfg_fail(err, ecap, "%s: needs low, high or both", path);
        if (r->has_low && r->has_high && r->low >= r->high)
            return hr_cfg_fail(err, ecap, "%s.low: must be below high", path);
        l->n_ranges = i + 1;
    }
    return 0;
}

static int parse_rules(json_t *v, lab_config *l, char *err, size_t ecap)
{
    static const char *const keys[] = {"hospitals", "tests", "center", "priority", NULL};
    size_t i;
    json_t *x;
    int rc;
    if (!json_is_array(v) || json_array_size(v) > LAB_RULES_MAX)
        return hr_cfg_fail(err, ecap, "lab.review: must be an array of at most %d rules",
                           LAB_RULES_MAX);
    for (size_t k = 0; k < l->n_rules; k++) {
        hr_strlist_free(&l->rules[k].hospitals);
        hr_strlist_free(&l->rules[k].tests);
    }
    free(l->rules);
    l->n_rules = 0;
    l->rules = calloc(json_array_size(v) + 1, sizeof(*l->rules));
    if (!l->rules)
        return -ENOMEM;
    json_array_foreach(v, i, x)
    {
        lab_rule *r = &l->rules[i];
        char where[48];
        int prio = HR_PRIO_ROUTINE;
        l->n_rules = i + 1; /* freed by lab_free also after an error */
        snprintf(where, sizeof(where), "lab.review[%zu].", i);
        if (!json_is_object(x))
            return hr_cfg_fail(err, ecap, "lab.review[%zu]: must be an object", i);
        rc = hr_cfg_check_keys(x, where, keys, err, ecap);
        if (!rc && !json_object_get(x, "center"))
            rc = hr_cfg_fail(err, ecap, "lab.review[%zu].center: missing", i);
        if (!rc)
            rc = hr_cfg_get_str(x, "center", where, r->center, sizeof(r->center), 0, err, ecap);
        if (!rc)
            rc = hr_cfg_get_strlist(x, "hospitals", where, &r->hospitals, HR_ID_MAX, 1000,
                                    hr_str_nonempty, "must not be empty", err, ecap);
        if (!rc)
            rc = hr_cfg_get_strlist(x, "tests", where, &r->tests, LAB_CODE_MAX, 1000, code_valid,
                                    "not a test code", err, ecap);
        if (!rc)
            rc = hr_cfg_get_choice(x, "priority", where, k_prios, 16, &prio, err, ecap);
        if (rc)
            return rc;
        r->priority = (enum hr_priority)prio;
    }
    return 0;
}

static int lab_parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {
        "facilities", "charsets", "default_charset", "critical_flags", "critical_ranges",
        "review",     NULL};
    lab_config *l = c->lab;
    json_t *x;
    int rc;
    if (!l)
        return -ENOMEM;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    rc = hr_cfg_check_keys(v, "lab.", keys, err, ecap);
    if (!rc && (x = json_object_get(v, "facilities")))
        rc = parse_facilities(x, l, err, ecap);
    if (!rc && (x = json_object_get(v, "charsets")))
        rc = parse_charsets(x, l, err, ecap);
    if (!rc && (x = json_object_get(v, "default_charset"))) {
        if (!json_is_string(x) || !charset_valid(json_string_value(x)))
            rc = hr_cfg_fail(err, ecap,
                             "lab.default_charset: must be \"UNICODE UTF-8\", \"GB 18030-2000\" "
                             "or \"8859/1\"");
        else
            snprintf(l->default_charset, sizeof(l->default_charset), "%s", json_string_value(x));
    }
    if (!rc && (x = json_object_get(v, "critical_flags")))
        rc = parse_flags(x, l, err, ecap);
    if (!rc && (x = json_object_get(v, "critical_ranges")))
        rc = parse_ranges(x, l, err, ecap);
    if (!rc && (x = json_object_get(v, "review")))
        rc = parse_rules(x, l, err, ecap);
    return rc;
}

/* Facility hospitals, charset hospitals and review hospitals configured;
 * review centers of kind lab. */
static int lab_validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    const lab_config *l = c->lab;
    (void)user;
    if (!l)
        return -ENOMEM;
    for (size_t i = 0; i < l->n_facilities; i++)
        if (!hr_config_hospital(c, l->facilities[i].hospital))
            return hr_cfg_fail(err, ecap, "lab.facilities.%s: \"%s\" is not one of hospitals[].id",
                               l->facilities[i].facility, l->facilities[i].hospital);
    for (size_t i = 0; i < l->n_charsets; i++)
        if (!hr_config_hospital(c, l->charsets[i].hospital))
            return hr_cfg_fail(err, ecap, "lab.charsets.%s: not one of hospitals[].id",
                               l->charsets[i].hospital);
    for (size_t i = 0; i < l->n_rules; i++) {
        const lab_rule *r = &l->rules[i];
        const hr_center *ce = hr_config_center(c, r->center);
        if (!ce || ce->kind != HR_CENTER_LAB)
            return hr_cfg_fail(err, ecap,
                               "lab.review[%zu].center: \"%s\" is not a center of kind lab", i,
                               r->center);
        for (size_t k = 0; k < r->hospitals.n; k++)
            if (!hr_config_hospital(c, r->hospitals.v[k]))
                return hr_cfg_fail(err, ecap,
                                   "lab.review[%zu].hospitals[%zu]: \"%s\" is not one of "
                                   "hospitals[].id",
                                   i, k, r->hospitals.v[k]);
    }
    return 0;
}

const char *lab_config_hospital_of(const hr_config *cfg, const char *facility)
{
    const lab_config *l = cfg->lab;
    if (!facility || !*facility)
        return NULL;
    for (size_t i = 0; l && i < l->n_facilities; i++)
        if (strcmp(l->facilities[i].facility, facility) == 0)
            return l->facilities[i].hospital;
    const hr_hospital *h = hr_config_hospital(cfg, facility);
    return h ? h->id : NULL;
}

const char *lab_config_charset(const hr_config *cfg, const char *hospital)
{
    const lab_config *l = cfg->lab;
    for (size_t i = 0; l && hospital && i < l->n_charsets; i++)
        if (strcmp(l->charsets[i].hospital, hospital) == 0)
            return l->charsets[i].charset;
    return l && l->default_charset[0] ? l->default_charset : "UNICODE UTF-8";
}

static int in_list(const hr_strlist *l, const char *s)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->v[i], s) == 0)
            return 1;
    return 0;
}

const lab_rule *lab_config_review(const hr_config *cfg, const char *hospital,
                                  const char *const *tests, size_t n)
{
    const lab_config *l = cfg->lab;
    for (size_t i = 0; l && i < l->n_rules; i++) {
        const lab_rule *r = &l->rules[i];
        if (r->hospitals.n && !in_list(&r->hospitals, hospital))
            continue;
        int ok = !r->tests.n;
        for (size_t k = 0; !ok && k < n; k++)
            ok = tests[k] && in_list(&r->tests, tests[k]);
        if (ok)
            return r;
    }
    return NULL;
}

const hr_config_section lab_config_lab = {
    .name = "lab",
    .defaults = "{\"facilities\": {}, \"charsets\": {}, \"default_charset\": \"UNICODE UTF-8\","
                " \"critical_flags\": [], \"critical_ranges\": [], \"review\": []}",
    .parse = lab_parse,
    .init = lab_init,
    .validate = lab_validate,
    .free = lab_free,
};
