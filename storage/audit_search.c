/* sto_audit_search: a bounded scan of the audit day files (audit.h). */
#include "audit.h"
#include "../common/hr_config.h"
#include "../common/hr_err.h"
#include "../common/hr_time.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LINE_MAX_BYTES (512u << 10)

/* The UTC day (YYYYMMDD) of ms. */
static int utc_day(long long ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm))
        return 0;
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

/* "2026-11-22T10:00:00.123Z" of ms (the record time format). */
static void iso_ms(long long ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, 32, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
}

static int cursor_parse(const char *s, int *day, long long *off)
{
    char *end = NULL;
    long d = strtol(s, &end, 10);
    if (!end || *end != ':' || d < 19000101 || d > 99991231)
        return -EINVAL;
    const char *o = end + 1;
    if (*o < '0' || *o > '9')
        return -EINVAL;
    long long v = strtoll(o, &end, 10);
    if (*end || v < 0)
        return -EINVAL;
    *day = (int)d;
    *off = v;
    return 0;
}

static int field_is(json_t *rec, const char *name, const char *want)
{
    if (!want || !*want)
        return 1;
    const char *v = json_string_value(json_object_get(rec, name));
    return v && strcmp(v, want) == 0;
}

/* want appears in line as is (a cheap test before parsing; only for
 * values JSON writes unescaped). */
static int may_hold(const char *line, const char *want)
{
    if (!want || !*want)
        return 1;
    for (const char *p = want; *p; p++)
        if (*p == '"' || *p == '\\' || (unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
            return 1;
    return strstr(line, want) != NULL;
}

int sto_audit_search(const char *data_dir, const sto_audit_query *q,
                     int (*cb)(void *arg, struct json_t *rec), void *arg, long *scanned, char *next,
                     size_t next_cap)
{
    int rc = 0, matches = 0;
    char *line = NULL;
    FILE *f = NULL;
    char from_s[32], to_s[32];
    *scanned = 0;
    if (next_cap)
        next[0] = '\0';
    int first = utc_day(q->from_ms), last = utc_day(q->to_ms - 1), day = first;
    long long off = 0;
    if (q->from_ms < 0 || q->to_ms <= q->from_ms || !first || !last || q->limit < 1 ||
        q->limit > STO_AUDIT_SEARCH_LIMIT || q->max_records < 1 ||
        q->max_records > STO_AUDIT_SEARCH_RECORDS || next_cap < STO_AUDIT_CURSOR_MAX ||
        hr_day_add(first, STO_AUDIT_SEARCH_DAYS - 1) < last)
        return -EINVAL;
    if (q->cursor && q->cursor[0] &&
        (cursor_parse(q->cursor, &day, &off) || day < first || day > last))
        return -EINVAL;
    iso_ms(q->from_ms, from_s);
    iso_ms(q->to_ms, to_s);
    line = malloc(LINE_MAX_BYTES);
    if (!line)
        return -ENOMEM;
    for (; day && day <= last; day = hr_day_add(day, 1), off = 0) {
        char path[HR_PATH_MAX + 64];
        snprintf(path, sizeof(path), "%s/audit/audit-%04d-%02d-%02d.jsonl", data_dir, day / 10000,
                 day / 100 % 100, day % 100);
        f = fopen(path, "re");
        if (!f) {
            if (errno == ENOENT)
                continue;
            rc = -errno;
            goto out;
        }
        if (off && fseeko(f, off, SEEK_SET) != 0) {
            rc = -errno;
            goto out;
        }
        for (;;) {
            if (*scanned >= q->max_records || matches >= q->limit) {
                snprintf(next, next_cap, "%d:%lld", day, off);
                goto out;
            }
            if (!fgets(line, LINE_MAX_BYTES, f))
                break;
            size_t n = strlen(line);
            if (n == 0 || line[n - 1] != '\n') {
                if (feof(f))
                    break; /* a torn tail, or a line being written: not read yet */
                int ch;    /* longer than LINE_MAX_BYTES: skipped */
                while ((ch = fgetc(f)) != EOF && ch != '\n')
                    ;
                off = ftello(f);
                continue;
            }
            off += (long long)n;
            (*scanned)++;
            if (!may_hold(line, q->actor) || !may_hold(line, q->study) ||
                !may_hold(line, q->patient))
                continue;
            json_t *rec = json_loadb(line, n, 0, NULL);
            const char *t = json_string_value(json_object_get(rec, "time"));
            int hit = rec && t && strcmp(t, from_s) >= 0 && strcmp(t, to_s) < 0 &&
                      field_is(rec, "actor", q->actor) && field_is(rec, "patient", q->patient) &&
                      field_is(rec, "study", q->study) && field_is(rec, "action", q->action);
            if (hit) {
                matches++;
                rc = cb(arg, rec);
            }
            json_decref(rec);
            if (rc)
                goto out;
        }
        if (ferror(f)) {
            rc = -EIO;
            goto out;
        }
        fclose(f);
        f = NULL;
    }
out:
    if (f)
        fclose(f);
    free(line);
    return rc;
}
