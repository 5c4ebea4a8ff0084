#include "worklist.h"

#include <string.h>
#include <time.h>

static const char *const k_states[WL_STATE_COUNT] = {"receiving", "ready", "claimed",
                                                     "reported",  "final", "amended"};

const char *wl_state_name(enum wl_state s)
{
    return (unsigned)s < WL_STATE_COUNT ? k_states[s] : "?";
}

int wl_state_parse(const char *name)
{
    for (int i = 0; name && i < WL_STATE_COUNT; i++)
        if (strcmp(name, k_states[i]) == 0)
            return i;
    return -1;
}

const char *wl_priority_name(enum hr_priority p)
{
    return hr_priority_name(p);
}

int wl_priority_parse(const char *name)
{
    return hr_priority_parse(name);
}

static unsigned char fold(unsigned char c)
{
    return c >= 'A' && c <= 'Z' ? (unsigned char)(c + 32) : c;
}

/* ASCII case-insensitive equality; other bytes (UTF-8) compare exactly. */
static int eq_fold(const char *a, const char *b)
{
    for (; *a && *b; a++, b++)
        if (fold((unsigned char)*a) != fold((unsigned char)*b))
            return 0;
    return *a == *b;
}

/* needle inside hay, ASCII case-insensitive; O(|hay| * |needle|), both bounded. */
static int contains_fold(const char *hay, const char *needle)
{
    size_t n = strlen(needle), h = strlen(hay);
    for (size_t i = 0; n <= h && i <= h - n; i++) {
        size_t j = 0;
        while (j < n && fold((unsigned char)hay[i + j]) == fold((unsigned char)needle[j]))
            j++;
        if (j == n)
            return 1;
    }
    return 0;
}

enum match { M_EXACT, M_FOLD, M_SUBSTR };

/* An absent list matches anything; a present one needs a non-empty value. */
static int list_match(const hr_strlist *l, const char *v, enum match m)
{
    if (l->n == 0)
        return 1;
    if (!v || !*v)
        return 0;
    for (size_t i = 0; i < l->n; i++) {
        const char *x = l->v[i];
        if ((m == M_EXACT && strcmp(x, v) == 0) || (m == M_FOLD && eq_fold(x, v)) ||
            (m == M_SUBSTR && contains_fold(v, x)))
            return 1;
    }
    return 0;
}

int wl_route(const hr_config *cfg, const wl_arrival *a, const hr_center **center,
             enum hr_priority *priority)
{
    for (size_t i = 0; i < cfg->routing.n_rules; i++) {
        const hr_route_rule *r = &cfg->routing.rules[i];
        if (list_match(&r->sop_classes, a->sop_class, M_EXACT) &&
            list_match(&r->modalities, a->modality, M_FOLD) &&
            list_match(&r->body_parts, a->body_part, M_FOLD) &&
            list_match(&r->hospitals, a->hospital, M_EXACT) &&
            list_match(&r->procedures, a->procedure, M_SUBSTR) &&
            list_match(&r->calling_aes, a->calling_ae, M_EXACT)) {
            *center = &cfg->centers[r->center];
            *priority = r->priority;
            return (int)i;
        }
    }
    *center = &cfg->centers[cfg->routing.default_center];
    *priority = cfg->routing.default_priority;
    return -1;
}

long long wl_quiet_ms(const hr_config *cfg, const char *modality)
{
    for (size_t i = 0; modality && i < cfg->worklist.n_quiet; i++)
        if (eq_fold(cfg->worklist.quiet_by_modality[i].modality, modality))
            return cfg->worklist.quiet_by_modality[i].seconds * 1000LL;
    return cfg->worklist.quiet_s * 1000LL;
}

long long wl_turnaround_ms(const hr_config *cfg, enum hr_center_kind kind, enum hr_priority p)
{
    if ((unsigned)kind >= HR_CENTER_KINDS || (unsigned)p >= HR_PRIORITIES)
        return 0;
    return cfg->worklist.turnaround_min[kind][p] * (cfg->worklist.turnaround_unit_s * 1000LL);
}

static int is_open(const hr_center *c, int minute)
{
    if (c->open_min < c->close_min)
        return minute >= c->open_min && minute < c->close_min;
    return minute >= c->open_min || minute < c->close_min; /* overnight */
}

long long wl_due_ms(const hr_config *cfg, const hr_center *center, enum hr_priority p,
                    long long now_ms)
{
    long long start = now_ms;
    if (p != HR_PRIO_STAT && center->open_min >= 0) {
        time_t t = (time_t)(now_ms / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm)) {
            int minute = tm.tm_hour * 60 + tm.tm_min;
            if (!is_open(center, minute)) {
                int wait = (center->open_min - minute + 1440) % 1440;
                start = now_ms - (tm.tm_sec * 1000LL + now_ms % 1000) + wait * 60000LL;
            }
        }
    }
    return start + wl_turnaround_ms(cfg, center->kind, p);
}
