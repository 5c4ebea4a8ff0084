/* centers[], routing.* and worklist.*: where exams are read and how fast.
 *
 *   key                              default              rule
 *   centers[]                        imaging, ecg, pathology, lab at "county"
 *   centers[].id                     required             a-z 0-9 - _, unique
 *   centers[].name                   the id               non-empty
 *   centers[].kind                   required             imaging | ecg | pathology | lab
 *   centers[].hospital               required             one of hospitals[].id
 *   centers[].audit_signoff          false                true | false
 *   centers[].hours                  always open          "HH:MM-HH:MM", may wrap midnight
 *   routing.rules[]                  4 rules (ECG, chest pain, slides, stroke)
 *   routing.rules[].sop_classes      absent               non-empty list of UIDs
 *   routing.rules[].modalities       absent               non-empty list of CS values
 *   routing.rules[].body_parts       absent               non-empty list of CS values
 *   routing.rules[].hospitals        absent               non-empty list of hospitals[].id
 *   routing.rules[].procedures       absent               non-empty list of substrings
 *   routing.rules[].calling_aes      absent               non-empty list of AE titles
 *   routing.rules[].center, priority required             one of centers[].id; stat|urgent|routine
 *   routing.default.center, priority "imaging", "routine" the same
 *   worklist.quiet_s                 30                   0..86400
 *   worklist.quiet_by_modality       {"ECG": 5}           {CS: 0..86400}, replaces the default
 *   worklist.lease_s                 600                  min_lease_s..86400
 *   worklist.min_lease_s             30                   1..30 (tests only)
 *   worklist.turnaround_unit_s       60                   1..60 (tests only)
 *   worklist.turnaround_min.<kind>.<priority>  see below  1..527040, overlays per value
 *
 * Meaning: docs/configuration.md. */
#include "wl_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const k_kinds[] = {"imaging", "ecg", "pathology", "lab", NULL};
static const char *const k_prios[] = {"stat", "urgent", "routine", NULL};

static int valid_id(const char *s)
{
    if (!*s)
        return 0;
    for (const char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* PS3.5 9.1: digits and dots, 1-64 characters, no empty component, no
 * leading zero (same rule as dicom/uids.c). */
static int valid_uid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 64)
        return 0;
    int start = 1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '.') {
            if (start)
                return 0;
            start = 1;
        } else if (s[i] >= '0' && s[i] <= '9') {
            if (start && s[i] == '0' && i + 1 < n && s[i + 1] != '.')
                return 0;
            start = 0;
        } else {
            return 0;
        }
    }
    return !start;
}

/* ---- centers[] ---- */

static void free_centers(hr_config *c)
{
    free(c->centers);
    c->centers = NULL;
    c->n_centers = 0;
}

/* "HH:MM-HH:MM" (close may be 24:00 and may be before open: overnight);
 * "" = always. */
static int parse_hours(const char *s, int *open_min, int *close_min)
{
    unsigned oh, om, ch, cm;
    char tail;
    if (!*s) {
        *open_min = *close_min = -1;
        return 0;
    }
    if (strlen(s) != 11 || s[2] != ':' || s[5] != '-' || s[8] != ':')
        return -1;
    for (int i = 0; i < 11; i++)
        if (i != 2 && i != 5 && i != 8 && (s[i] < '0' || s[i] > '9'))
            return -1;
    if (sscanf(s, "%2u:%2u-%2u:%2u%c", &oh, &om, &ch, &cm, &tail) != 4)
        return -1;
    if (oh > 23 || om > 59 || cm > 59 || ch > 24 || (ch == 24 && cm != 0))
        return -1;
    *open_min = (int)(oh * 60 + om);
    *close_min = (int)(ch * 60 + cm);
    if (*open_min == *close_min || (*open_min == 0 && *close_min == 1440))
        return -1; /* empty or 24 h: write "" for always */
    return 0;
}

static int parse_center(json_t *o, size_t idx, hr_center *ce, char *err, size_t ecap)
{
    static const char *const keys[] = {"id",    "name", "kind", "hospital", "audit_signoff",
                                       "hours", NULL};
    static const char *const required[] = {"id", "kind", "hospital"};
    char where[48], hours[16] = "";
    int kind = 0;
    snprintf(where, sizeof(where), "centers[%zu].", idx);
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "centers[%zu]: must be an object", idx);
    int rc = hr_cfg_check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    for (size_t k = 0; k < sizeof(required) / sizeof(required[0]); k++)
        if (!json_object_get(o, required[k]))
            return hr_cfg_fail(err, ecap, "%s%s: required", where, required[k]);
    rc = hr_cfg_get_str(o, "id", where, ce->id, sizeof(ce->id), 0, err, ecap);
    if (!rc && !valid_id(ce->id))
        rc = hr_cfg_fail(err, ecap, "%sid: \"%s\" may only hold a-z, 0-9, '-' and '_'", where,
                         ce->id);
    if (rc)
        return rc;
    strcpy(ce->name, ce->id);
    rc = hr_cfg_get_str(o, "name", where, ce->name, sizeof(ce->name), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_choice(o, "kind", where, k_kinds, 16, &kind, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "hospital", where, ce->hospital, sizeof(ce->hospital), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "hours", where, hours, sizeof(hours), 1, err, ecap);
    if (!rc)
        rc = hr_cfg_get_bool(o, "audit_signoff", where, &ce->audit_signoff, err, ecap);
    if (rc)
        return rc;
    ce->kind = (enum hr_center_kind)kind;
    if (parse_hours(hours, &ce->open_min, &ce->close_min))
        return hr_cfg_fail(err, ecap,
                           "%shours: \"%s\" is not \"HH:MM-HH:MM\" (opening-closing, different "
                           "times; omit for always open)",
                           where, hours);
    return 0;
}

/* The file's list replaces the default list. */
static int parse_centers(json_t *cs, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_array(cs))
        return hr_cfg_fail(err, ecap, "centers: must be an array");
    free_centers(c);
    size_t n = json_array_size(cs);
    c->centers = calloc(n ? n : 1, sizeof(*c->centers));
    if (!c->centers)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        c->n_centers = i + 1;
        int rc = parse_center(json_array_get(cs, i), i, &c->centers[i], err, ecap);
        if (rc)
            return rc;
    }
    return 0;
}

/* Ids unique, hospitals known. user: a reference that fails only because the
 * file replaced hospitals gets a hint. */
static int validate_centers(hr_config *c, json_t *user, char *err, size_t ecap)
{
    const char *hint =
        user && json_object_get(user, "hospitals") && !json_object_get(user, "centers")
            ? " (an embedded default center: give \"centers\" too)"
            : "";
    for (size_t i = 0; i < c->n_centers; i++) {
        for (size_t j = 0; j < i; j++)
            if (strcmp(c->centers[i].id, c->centers[j].id) == 0)
                return hr_cfg_fail(err, ecap, "centers[%zu].id: \"%s\" is used twice", i,
                                   c->centers[i].id);
        if (!hr_config_hospital(c, c->centers[i].hospital))
            return hr_cfg_fail(err, ecap,
                               "centers[%zu].hospital: \"%s\" is not one of hospitals[].id%s", i,
                               c->centers[i].hospital, hint);
    }
    return 0;
}

const hr_config_section wl_config_centers = {
    .name = "centers",
    .defaults =
        "[{\"id\": \"imaging\", \"name\": \"医学影像中心 (Imaging Center)\", \"kind\": "
        "\"imaging\",\n"
        "  \"hospital\": \"county\", \"audit_signoff\": true},\n"
        " {\"id\": \"ecg\", \"name\": \"心电诊断中心 (ECG Center)\", \"kind\": \"ecg\",\n"
        "  \"hospital\": \"county\", \"audit_signoff\": false},\n"
        " {\"id\": \"pathology\", \"name\": \"病理诊断中心 (Pathology Center)\",\n"
        "  \"kind\": \"pathology\", \"hospital\": \"county\", \"audit_signoff\": true},\n"
        " {\"id\": \"lab\", \"name\": \"医学检验中心 (Laboratory Center)\", \"kind\": \"lab\",\n"
        "  \"hospital\": \"county\", \"audit_signoff\": true}]",
    .parse = parse_centers,
    .validate = validate_centers,
    .free = free_centers,
};

/* ---- routing ---- */

static void free_rules(hr_config *c)
{
    for (size_t i = 0; i < c->routing.n_rules; i++) {
        hr_route_rule *r = &c->routing.rules[i];
        hr_strlist_free(&r->sop_classes);
        hr_strlist_free(&r->modalities);
        hr_strlist_free(&r->body_parts);
        hr_strlist_free(&r->hospitals);
        hr_strlist_free(&r->procedures);
        hr_strlist_free(&r->calling_aes);
    }
    free(c->routing.rules);
    c->routing.rules = NULL;
    c->routing.n_rules = 0;
}

static int get_prio(json_t *o, const char *where, enum hr_priority *p, char *err, size_t ecap)
{
    int prio = (int)*p;
    int rc = hr_cfg_get_choice(o, "priority", where, k_prios, 16, &prio, err, ecap);
    *p = (enum hr_priority)prio;
    return rc;
}

static int parse_rule(json_t *o, size_t idx, hr_route_rule *r, char *err, size_t ecap)
{
    static const char *const keys[] = {"sop_classes", "modalities", "body_parts",
                                       "hospitals",   "procedures", "calling_aes",
                                       "center",      "priority",   NULL};
    char where[48];
    snprintf(where, sizeof(where), "routing.rules[%zu].", idx);
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "routing.rules[%zu]: must be an object", idx);
    int rc = hr_cfg_check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "center") || !json_object_get(o, "priority"))
        return hr_cfg_fail(err, ecap, "%scenter, %spriority: both are required", where, where);
    r->priority = HR_PRIO_ROUTINE;
    rc = hr_cfg_get_str(o, "center", where, r->center_id, sizeof(r->center_id), 0, err, ecap);
    if (!rc)
        rc = get_prio(o, where, &r->priority, err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(o, "sop_classes", where, &r->sop_classes, HR_UID_MAX, 0, valid_uid,
                                "not a valid UID (digits and dots, at most 64 characters)", err,
                                ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(o, "modalities", where, &r->modalities, HR_CS_MAX, 0, hr_cs_valid,
                                "must be 1-16 printable ASCII characters", err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(o, "body_parts", where, &r->body_parts, HR_CS_MAX, 0, hr_cs_valid,
                                "must be 1-16 printable ASCII characters", err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(o, "hospitals", where, &r->hospitals, HR_ID_MAX, 0, valid_id,
                                "must be a hospital id", err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(o, "procedures", where, &r->procedures, HR_NAME_MAX, 0,
                                hr_str_nonempty,
                                "must be a non-empty string shorter than 256 bytes", err, ecap);
    if (!rc)
        rc = hr_cfg_get_strlist(o, "calling_aes", where, &r->calling_aes, HR_AE_MAX, 0,
                                hr_ae_title_valid, "must be 1-16 printable ASCII characters", err,
                                ecap);
    return rc;
}

static int parse_default(json_t *d, const char *path, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"center", "priority", NULL};
    if (!json_is_object(d))
        return hr_cfg_fail(err, ecap, "%s: must be an object {center, priority}", path);
    int rc = hr_cfg_check_keys(d, "routing.default.", keys, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(d, "center", "routing.default.", c->routing.default_center_id,
                            sizeof(c->routing.default_center_id), 0, err, ecap);
    if (!rc)
        rc = get_prio(d, "routing.default.", &c->routing.default_priority, err, ecap);
    return rc;
}

/* The file's rules replace the default rules. */
static int parse_rules(json_t *rs, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_array(rs))
        return hr_cfg_fail(err, ecap, "%s: must be an array", path);
    free_rules(c);
    size_t n = json_array_size(rs);
    c->routing.rules = calloc(n ? n : 1, sizeof(*c->routing.rules));
    if (!c->routing.rules)
        return -ENOMEM;
    for (size_t i = 0; i < n; i++) {
        c->routing.n_rules = i + 1;
        int rc = parse_rule(json_array_get(rs, i), i, &c->routing.rules[i], err, ecap);
        if (rc)
            return rc;
    }
    return 0;
}

static const hr_cfg_key k_routing_keys[] = {
    HR_CFG_KEY_CUSTOM("default", parse_default),
    HR_CFG_KEY_CUSTOM("rules", parse_rules),
    HR_CFG_KEY_END,
};

/* Every center and hospital a rule names exists; the file replacing centers
 * but not the rules that name the default centers gets a hint. */
static int validate_routing(hr_config *c, json_t *user, char *err, size_t ecap)
{
    json_t *centers = user ? json_object_get(user, "centers") : NULL;
    json_t *routing = user ? json_object_get(user, "routing") : NULL;
    const char *hint = centers && !(routing && json_object_get(routing, "rules"))
                           ? " (an embedded default rule: give \"routing.rules\" too)"
                           : "";
    for (size_t i = 0; i < c->routing.n_rules; i++) {
        hr_route_rule *r = &c->routing.rules[i];
        const hr_center *ce = hr_config_center(c, r->center_id);
        if (!ce)
            return hr_cfg_fail(err, ecap,
                               "routing.rules[%zu].center: \"%s\" is not one of centers[].id%s", i,
                               r->center_id, hint);
        r->center = (size_t)(ce - c->centers);
        for (size_t h = 0; h < r->hospitals.n; h++)
            if (!hr_config_hospital(c, r->hospitals.v[h]))
                return hr_cfg_fail(err, ecap,
                                   "routing.rules[%zu].hospitals[%zu]: \"%s\" is not one of "
                                   "hospitals[].id",
                                   i, h, r->hospitals.v[h]);
    }
    const hr_center *d = hr_config_center(c, c->routing.default_center_id);
    if (!d)
        return hr_cfg_fail(err, ecap, "routing.default.center: \"%s\" is not one of centers[].id%s",
                           c->routing.default_center_id,
                           centers && !routing ? " (the embedded default: give \"routing\" too)"
                                               : "");
    c->routing.default_center = (size_t)(d - c->centers);
    return 0;
}

const hr_config_section wl_config_routing = {
    .name = "routing",
    .defaults = "{\"rules\": [\n"
                "  {\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.9.1.1\", "
                "\"1.2.840.10008.5.1.4.1.1.9.1.2\"],\n"
                "   \"procedures\": [\"胸痛\", \"chest pain\"], \"center\": \"ecg\", \"priority\": "
                "\"stat\"},\n"
                "  {\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.9.1.1\", "
                "\"1.2.840.10008.5.1.4.1.1.9.1.2\"],\n"
                "   \"center\": \"ecg\", \"priority\": \"routine\"},\n"
                "  {\"sop_classes\": [\"1.2.840.10008.5.1.4.1.1.77.1.6\"],\n"
                "   \"center\": \"pathology\", \"priority\": \"routine\"},\n"
                "  {\"modalities\": [\"CT\", \"MR\"], \"procedures\": [\"卒中\", \"stroke\"],\n"
                "   \"center\": \"imaging\", \"priority\": \"stat\"}],\n"
                " \"default\": {\"center\": \"imaging\", \"priority\": \"routine\"}}",
    .keys = k_routing_keys,
    .validate = validate_routing,
    .free = free_rules,
};

/* ---- worklist ---- */

static void free_quiet(hr_config *c)
{
    free(c->worklist.quiet_by_modality);
    c->worklist.quiet_by_modality = NULL;
    c->worklist.n_quiet = 0;
}

/* Bounded below by min_lease_s, read before it. */
static int parse_lease(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    long long s = 0;
    int rc = hr_cfg_int(v, path, c->worklist.min_lease_s, 86400, &s, err, ecap);
    if (!rc)
        c->worklist.lease_s = (int)s;
    return rc;
}

/* {kind: {priority: minutes}}; each value overlays the default. */
static int parse_turnaround(json_t *t, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_object(t))
        return hr_cfg_fail(err, ecap, "%s: must be an object {kind: {priority: minutes}}", path);
    int rc = hr_cfg_check_keys(t, "worklist.turnaround_min.", k_kinds, err, ecap);
    for (int k = 0; !rc && k < HR_CENTER_KINDS; k++) {
        json_t *o = json_object_get(t, k_kinds[k]);
        char where[64];
        snprintf(where, sizeof(where), "worklist.turnaround_min.%s.", k_kinds[k]);
        if (!o)
            continue;
        if (!json_is_object(o))
            return hr_cfg_fail(err, ecap,
                               "worklist.turnaround_min.%s: must be an object {priority: minutes}",
                               k_kinds[k]);
        rc = hr_cfg_check_keys(o, where, k_prios, err, ecap);
        for (int p = 0; !rc && p < HR_PRIORITIES; p++) {
            long long v = c->worklist.turnaround_min[k][p];
            rc = hr_cfg_get_int(o, k_prios[p], where, 1, 366 * 1440, &v, err, ecap);
            c->worklist.turnaround_min[k][p] = (int)v;
        }
    }
    return rc;
}

/* {modality: seconds}; the file's map replaces the default map. */
static int parse_quiet(json_t *q, const char *path, hr_config *c, char *err, size_t ecap)
{
    if (!json_is_object(q))
        return hr_cfg_fail(err, ecap, "%s: must be an object {modality: seconds}", path);
    free_quiet(c);
    c->worklist.quiet_by_modality = calloc(json_object_size(q) + 1, sizeof(hr_quiet));
    if (!c->worklist.quiet_by_modality)
        return -ENOMEM;
    const char *mod;
    json_t *sec;
    json_object_foreach(q, mod, sec)
    {
        hr_quiet *e = &c->worklist.quiet_by_modality[c->worklist.n_quiet];
        if (!hr_cs_valid(mod))
            return hr_cfg_fail(err, ecap, "%s.%.32s: a modality is 1-16 printable ASCII characters",
                               path, mod);
        long long s = 0;
        int rc = hr_cfg_get_int(q, mod, "worklist.quiet_by_modality.", 0, 86400, &s, err, ecap);
        if (rc)
            return rc;
        for (size_t i = 0; i < c->worklist.n_quiet; i++)
            if (strcasecmp(c->worklist.quiet_by_modality[i].modality, mod) == 0)
                return hr_cfg_fail(err, ecap, "%s.%s: given twice", path, mod);
        strcpy(e->modality, mod);
        e->seconds = (int)s;
        c->worklist.n_quiet++;
    }
    return 0;
}

/* min_lease_s and turnaround_unit_s exist for tests, which cannot wait minutes. */
static const hr_cfg_key k_worklist_keys[] = {
    HR_CFG_KEY_INT("quiet_s", worklist.quiet_s, 0, 86400),
    HR_CFG_KEY_INT("min_lease_s", worklist.min_lease_s, 1, 30),
    HR_CFG_KEY_INT("turnaround_unit_s", worklist.turnaround_unit_s, 1, 60),
    HR_CFG_KEY_CUSTOM("lease_s", parse_lease),
    HR_CFG_KEY_CUSTOM("turnaround_min", parse_turnaround),
    HR_CFG_KEY_CUSTOM("quiet_by_modality", parse_quiet),
    HR_CFG_KEY_END,
};

const hr_config_section wl_config_worklist = {
    .name = "worklist",
    .defaults = "{\"quiet_s\": 30, \"quiet_by_modality\": {\"ECG\": 5}, \"lease_s\": 600,\n"
                " \"min_lease_s\": 30, \"turnaround_unit_s\": 60,\n"
                " \"turnaround_min\": {\n"
                "   \"imaging\": {\"stat\": 30, \"urgent\": 120, \"routine\": 1440},\n"
                "   \"ecg\": {\"stat\": 10, \"urgent\": 30, \"routine\": 240},\n"
                "   \"pathology\": {\"stat\": 30, \"urgent\": 1440, \"routine\": 4320},\n"
                "   \"lab\": {\"stat\": 30, \"urgent\": 120, \"routine\": 720}}}",
    .keys = k_worklist_keys,
    .free = free_quiet,
};
