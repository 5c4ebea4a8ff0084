#include "va.h"

#include "../common/hr_io.h"
#include "../common/hr_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static atomic_uint g_tmp_counter; /* unique temporary names of cache files */

void va__cache_store(const hr_config *cfg, const char *path, const unsigned char *p, size_t len,
                     const char *what)
{
    char dir[HR_PATH_MAX + 16], tmp[HR_PATH_MAX + 200];
    int fd, rc;

    snprintf(dir, sizeof(dir), "%s/rendered", cfg->data_dir);
    if (mkdir(dir, 0700) && errno != EEXIST)
        return;
    snprintf(tmp, sizeof(tmp), "%s.tmp.%ld.%u", path, (long)getpid(),
             atomic_fetch_add(&g_tmp_counter, 1));
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    rc = hr_write_all(fd, p, len);
    if (close(fd) || rc || rename(tmp, path)) {
        hr_log(HR_LOG_WARN, "api", "%s: cannot store %s", what, path);
        unlink(tmp);
    }
}

void va__deny(va_denial *d, int status, const char *code, const char *fmt, ...)
{
    va_list ap;
    d->status = status;
    d->code = code;
    va_start(ap, fmt);
    vsnprintf(d->detail, sizeof(d->detail), fmt, ap);
    va_end(ap);
}

json_t *va__jstr(const char *s)
{
    json_t *j = json_string(s ? s : "");
    return j ? j : json_string("");
}

/* ---- CSV ---- */

/* 1: CSV, 0: JSON, -1: a bad format parameter. */
int va__want_csv(va_req *r)
{
    const char *f = va_param_get(r, "format");
    if (f)
        return strcmp(f, "csv") == 0 ? 1 : strcmp(f, "json") == 0 ? 0 : -1;
    const char *acc = va_header(r, "Accept");
    return acc && strstr(acc, "text/csv") ? 1 : 0;
}

/* A CSV cell: quoted when needed; a text starting like a formula gets a
 * leading ' (spreadsheet formula injection). */
void va__csv_str(hr_buf *b, const char *s, int last)
{
    s = s ? s : "";
    int quote = strpbrk(s, ",\"\r\n") != NULL;
    if (quote)
        hr_buf_append(b, "\"", 1);
    if (strchr("=+-@\t\r", s[0]) && s[0])
        hr_buf_append(b, "'", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            hr_buf_append(b, "\"", 1);
        hr_buf_append(b, p, 1);
    }
    if (quote)
        hr_buf_append(b, "\"", 1);
    hr_buf_append(b, last ? "\r\n" : ",", last ? 2 : 1);
}

/* A number cell as is (no formula guard: "-1" is a number). */
static void csv_raw(hr_buf *b, const char *n, int last)
{
    hr_buf_append(b, n, strlen(n));
    hr_buf_append(b, last ? "\r\n" : ",", last ? 2 : 1);
}

void va__csv_num(hr_buf *b, long long v, int last)
{
    char n[32];
    snprintf(n, sizeof(n), "%lld", v);
    csv_raw(b, n, last);
}

/* A JSON value as a cell: strings as is, numbers, null as "". */
void va__csv_json(hr_buf *b, json_t *v, int last)
{
    char n[64];
    if (json_is_string(v)) {
        va__csv_str(b, json_string_value(v), last);
        return;
    }
    if (json_is_integer(v))
        snprintf(n, sizeof(n), "%lld", (long long)json_integer_value(v));
    else if (json_is_real(v))
        snprintf(n, sizeof(n), "%.4f", json_real_value(v));
    else if (json_is_boolean(v))
        snprintf(n, sizeof(n), "%s", json_is_true(v) ? "true" : "false");
    else
        n[0] = '\0';
    csv_raw(b, n, last);
}

void va__csv_send(va_req *r, hr_buf *b, const char *name)
{
    char cd[160];
    snprintf(cd, sizeof(cd), "attachment; filename=\"%s.csv\"", name);
    va_add_header(r, "Content-Disposition", cd);
    va_send(r, 200, "text/csv; charset=utf-8", (const char *)b->data, b->len);
}

void va__csv_begin(hr_buf *b)
{
    hr_buf_init(b, 64u << 20);
    hr_buf_append(b, "\xEF\xBB\xBF", 3); /* the BOM: Excel reads UTF-8 */
}
