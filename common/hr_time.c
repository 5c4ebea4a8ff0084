#include "hr_time.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

long long hr_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int hr_day_of(long long ms)
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!localtime_r(&t, &tm))
        return 0;
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

/* day -> noon UTC of that calendar day (day arithmetic without DST). */
static int day_to_time(int day, time_t *t)
{
    struct tm tm = {0};
    int y = day / 10000, m = day / 100 % 100, d = day % 100;
    if (y < 1900 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31)
        return -1;
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    tm.tm_hour = 12;
    *t = timegm(&tm);
    struct tm back;
    if (!gmtime_r(t, &back) || back.tm_mday != d || back.tm_mon != m - 1)
        return -1; /* 2024-02-30 */
    return 0;
}

int hr_day_add(int day, int n)
{
    time_t t;
    struct tm tm;
    if (day_to_time(day, &t))
        return 0;
    t += (time_t)n * 86400;
    if (!gmtime_r(&t, &tm))
        return 0;
    return (tm.tm_year + 1900) * 10000 + (tm.tm_mon + 1) * 100 + tm.tm_mday;
}

int hr_day_parse(const char *s)
{
    time_t t;
    if (!s || strlen(s) != 10 || s[4] != '-' || s[7] != '-')
        return 0;
    int v = 0;
    for (int i = 0; i < 10; i++) {
        if (i == 4 || i == 7)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return 0;
        v = v * 10 + (s[i] - '0');
    }
    return day_to_time(v, &t) ? 0 : v;
}

void hr_day_iso(int day, char out[11])
{
    snprintf(out, 11, "%04d-%02d-%02d", day / 10000 % 10000, day / 100 % 100, day % 100);
}
