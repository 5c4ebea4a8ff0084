/* A reader's critical-finding flag raises an alert (alert.h,
 * alr_raise_report): called after a signed version's commit
 * (report.c) and again, idempotently, when the delivery queue takes the
 * version from the outbox (dlv_outbox.c), so that a stop between the commit
 * and the raise loses nothing. */
#include "alert.h"
#include "../common/hr_err.h"

#include <stdio.h>
#include <string.h>

static const char *jstr(const json_t *o, const char *k)
{
    const char *s = json_string_value(json_object_get(o, k));
    return s ? s : "";
}

/* The first non-empty line of s, trimmed, at most cap - 1 bytes (cut at a
 * UTF-8 boundary). */
static void first_line(const char *s, char *out, size_t cap)
{
    while (*s == '\n' || *s == '\r' || *s == ' ' || *s == '\t')
        s++;
    size_t n = strcspn(s, "\r\n");
    while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    if (n >= cap) {
        n = cap - 1;
        while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
            n--;
    }
    memcpy(out, s, n);
    out[n] = '\0';
}

int alr_raise_report(redisContext *c, const hr_config *cfg, const json_t *payload, long long now_ms,
                     int *raised)
{
    char id[ALR_ID_MAX], value[256], detail[ALR_TEXT_MAX], patient[2 * HR_NAME_MAX];
    int created = 0, rc;
    if (raised)
        *raised = 0;
    const json_t *content = json_object_get(payload, "content");
    const json_t *rep = json_object_get(payload, "report");
    const json_t *exam = json_object_get(payload, "exam");
    const json_t *pat = json_object_get(payload, "patient");
    const char *status = jstr(rep, "status");
    if (!json_is_true(json_object_get(content, "critical")))
        return 0;
    if (strcmp(status, "preliminary") != 0 && strcmp(status, "final") != 0 &&
        strcmp(status, "amended") != 0 && strcmp(status, "corrected") != 0)
        return 0;
    first_line(jstr(content, "impression"), value, sizeof(value));
    if (!value[0])
        first_line(jstr(content, "findings"), value, sizeof(value));
    if (!value[0])
        snprintf(value, sizeof(value), "%s", "critical finding");
    first_line(jstr(content, "impression"), detail, sizeof(detail));
    snprintf(patient, sizeof(patient), "%s|%s", jstr(pat, "issuer"), jstr(pat, "id"));
    alr_source s = {.kind = "report",
                    .exam = jstr(exam, "study_uid"),
                    .ref = jstr(rep, "id"),
                    .hospital = jstr(exam, "hospital"),
                    .center = jstr(exam, "center"),
                    .patient = patient,
                    .patient_name = jstr(pat, "name"),
                    .item = "finding",
                    .item_name =
                        *jstr(exam, "procedure") ? jstr(exam, "procedure") : jstr(exam, "modality"),
                    .value = value,
                    .flag = "reader",
                    .detail = detail,
                    .now_ms = now_ms};
    rc = alr_raise(c, cfg, &s, id, &created);
    if (!rc && raised)
        *raised = created;
    return rc;
}
