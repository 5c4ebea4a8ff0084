/* Line-oriented logging to stderr: "2026-11-22T10:00:00.123Z LEVEL module: message". */
#ifndef HR_LOG_H
#define HR_LOG_H

enum hr_log_level { HR_LOG_DEBUG, HR_LOG_INFO, HR_LOG_WARN, HR_LOG_ERROR };

/* Messages below level are dropped. Default HR_LOG_INFO. */
void hr_log_set_level(enum hr_log_level level);
/* Parses "debug", "info", "warn", "error"; returns 0 or HR_ECONFIG. */
int hr_log_parse_level(const char *name, enum hr_log_level *out);
void hr_log(enum hr_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define hr_debug(mod, ...) hr_log(HR_LOG_DEBUG, mod, __VA_ARGS__)
#define hr_info(mod, ...)  hr_log(HR_LOG_INFO, mod, __VA_ARGS__)
#define hr_warn(mod, ...)  hr_log(HR_LOG_WARN, mod, __VA_ARGS__)
#define hr_error(mod, ...) hr_log(HR_LOG_ERROR, mod, __VA_ARGS__)

#endif
