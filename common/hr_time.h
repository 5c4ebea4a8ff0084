/* Wall-clock time, the one copy every module uses. Intervals and deadlines
 * use the loop's monotonic clock (uv_now, uv_hrtime), never this. */
#ifndef HR_TIME_H
#define HR_TIME_H

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long hr_wall_ms(void);

/* ---- local calendar days (TZ) as YYYYMMDD numbers, for daily counters ---- */

/* The local day of a time in ms since the epoch; 0 when it cannot be told. */
int hr_day_of(long long ms);
/* day + n days (n may be negative); 0 when day is not a valid date. */
int hr_day_add(int day, int n);
/* "YYYY-MM-DD" -> YYYYMMDD; 0 when not a valid date. */
int hr_day_parse(const char *s);
/* YYYYMMDD -> "YYYY-MM-DD" into out. */
void hr_day_iso(int day, char out[11]);

#endif
