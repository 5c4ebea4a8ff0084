#include "hr_log.h"
#include "hr_err.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

static enum hr_log_level g_level = HR_LOG_INFO;

void hr_log_set_level(enum hr_log_level level)
{
    g_level = level;
}

int hr_log_parse_level(const char *name, enum hr_log_level *out)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    for (int i = 0; i < 4; i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum hr_log_level)i;
            return 0;
        }
    }
    return HR_ECONFIG;
}

void hr_log(enum hr_log_level level, const char *module, const char *fmt, ...)
{
    static const char *tags[] = {"DEBUG", "INFO", "WARN", "ERROR"};
    if (level < g_level)
        return;
    struct timespec ts;
    struct tm tm;
    char when[32];
    char line[2048];
    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    fprintf(stderr, "%s.%03ldZ %-5s %s: %s\n", when, ts.tv_nsec / 1000000, tags[level], module,
            line);
}
