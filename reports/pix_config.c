/* persons.*: where each hospital's objects carry a person's number.
 *
 *   key                          default   rule
 *   persons.sources[]            []        at most 4 per hospital
 *   persons.sources[].hospital   required  one of hospitals[].id
 *   persons.sources[].where      required  patient_id | other_patient_ids | none
 *   persons.sources[].id_type    national_id   national_id | health_card
 *   persons.sources[].issuer     ""        required with other_patient_ids (exact
 *                                          Issuer of Patient ID of the item), else absent
 *
 * Meaning: docs/configuration.md; decision 0027. */
#include "pix_config.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const k_where[] = {"none", "patient_id", "other_patient_ids", NULL};
static const char *const k_id_types[] = {"national_id", "health_card", NULL};

const char *rpt_id_type_name(enum rpt_id_type t)
{
    return (unsigned)t < RPT_ID_TYPES ? k_id_types[t] : "?";
}

int rpt_id_type_parse(const char *s)
{
    for (int i = 0; s && k_id_types[i]; i++)
        if (strcmp(s, k_id_types[i]) == 0)
            return i;
    return -1;
}

static void pix_init(hr_config *c)
{
    c->persons = calloc(1, sizeof(*c->persons)); /* NULL: parse answers -ENOMEM */
}

static void pix_free(hr_config *c)
{
    if (!c->persons)
        return;
    free(c->persons->sources);
    memset(c->persons->key, 0, sizeof(c->persons->key));
    free(c->persons);
    c->persons = NULL;
}

static int parse_source(json_t *o, size_t i, pix_source *s, char *err, size_t ecap)
{
    static const char *const keys[] = {"hospital", "where", "id_type", "issuer", NULL};
    char where[48];
    int w = 0, t = RPT_ID_NATIONAL;
    snprintf(where, sizeof(where), "persons.sources[%zu].", i);
    if (!json_is_object(o))
        return hr_cfg_fail(err, ecap, "persons.sources[%zu]: must be an object", i);
    int rc = hr_cfg_check_keys(o, where, keys, err, ecap);
    if (rc)
        return rc;
    if (!json_object_get(o, "hospital") || !json_object_get(o, "where"))
        return hr_cfg_fail(err, ecap, "%shospital, %swhere: both are required", where, where);
    rc = hr_cfg_get_str(o, "hospital", where, s->hospital, sizeof(s->hospital), 0, err, ecap);
    if (!rc)
        rc = hr_cfg_get_choice(o, "where", where, k_where, 32, &w, err, ecap);
    if (!rc)
        rc = hr_cfg_get_choice(o, "id_type", where, k_id_types, 32, &t, err, ecap);
    if (!rc)
        rc = hr_cfg_get_str(o, "issuer", where, s->issuer, sizeof(s->issuer), 0, err, ecap);
    if (rc)
        return rc;
    s->where = (enum pix_where)w;
    s->id_type = (enum rpt_id_type)t;
    if (s->where == PIX_WHERE_OTHER_PIDS && !s->issuer[0])
        return hr_cfg_fail(err, ecap,
                           "%sissuer: required with other_patient_ids (the Issuer of Patient ID "
                           "of the item that holds the number)",
                           where);
    if (s->where != PIX_WHERE_OTHER_PIDS && s->issuer[0])
        return hr_cfg_fail(err, ecap, "%sissuer: only with \"where\": \"other_patient_ids\"",
                           where);
    return 0;
}

/* The file's list replaces the default list. */
static int parse_sources(json_t *a, const char *path, hr_config *c, char *err, size_t ecap)
{
    pix_config *p = c->persons;
    if (!json_is_array(a))
        return hr_cfg_fail(err, ecap, "%s: must be an array", path);
    free(p->sources);
    p->n_sources = 0;
    p->sources = calloc(json_array_size(a) + 1, sizeof(*p->sources));
    if (!p->sources)
        return -ENOMEM;
    for (size_t i = 0; i < json_array_size(a); i++) {
        int rc = parse_source(json_array_get(a, i), i, &p->sources[i], err, ecap);
        if (rc)
            return rc;
        p->n_sources = i + 1;
    }
    return 0;
}

static int pix_parse(json_t *v, const char *path, hr_config *c, char *err, size_t ecap)
{
    static const char *const keys[] = {"sources", NULL};
    if (!c->persons)
        return -ENOMEM;
    if (!json_is_object(v))
        return hr_cfg_fail(err, ecap, "%s: must be an object", path);
    int rc = hr_cfg_check_keys(v, "persons.", keys, err, ecap);
    json_t *s = json_object_get(v, "sources");
    if (!rc && s)
        rc = parse_sources(s, "persons.sources", c, err, ecap);
    return rc;
}

static int pix_validate(hr_config *c, json_t *user, char *err, size_t ecap)
{
    const pix_config *p = c->persons;
    if (!p)
        return -ENOMEM;
    for (size_t i = 0; i < p->n_sources; i++) {
        const pix_source *s = &p->sources[i];
        if (!hr_config_hospital(c, s->hospital))
            return hr_cfg_fail(err, ecap,
                               "persons.sources[%zu].hospital: \"%s\" is not one of hospitals[].id",
                               i, s->hospital);
        int same = 0;
        for (size_t j = 0; j < i; j++) {
            const pix_source *o = &p->sources[j];
            if (strcmp(o->hospital, s->hospital) != 0)
                continue;
            if (++same >= PIX_SOURCES_PER_HOSP)
                return hr_cfg_fail(err, ecap,
                                   "persons.sources[%zu]: more than %d sources for hospital \"%s\"",
                                   i, PIX_SOURCES_PER_HOSP, s->hospital);
            if (o->where == s->where && o->id_type == s->id_type &&
                strcmp(o->issuer, s->issuer) == 0)
                return hr_cfg_fail(err, ecap, "persons.sources[%zu]: the same as sources[%zu]", i,
                                   j);
        }
    }
    return 0;
}

const hr_config_section pix_config_persons = {
    .name = "persons",
    .defaults = "{\"sources\": []}",
    .parse = pix_parse,
    .init = pix_init,
    .validate = pix_validate,
    .free = pix_free,
};
