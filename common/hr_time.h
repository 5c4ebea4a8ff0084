/* Wall-clock time, the one copy every module uses. Intervals and deadlines
 * use the loop's monotonic clock (uv_now, uv_hrtime), never this. */
#ifndef HR_TIME_H
#define HR_TIME_H

/* Milliseconds since the Unix epoch (CLOCK_REALTIME). */
long long hr_wall_ms(void);

#endif
