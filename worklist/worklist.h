/* Reading worklists of the county centers (issue 4): routing of arriving
 * studies to a center with a priority, study completeness (quiet period or
 * explicit signal), turnaround deadlines, claims with leases, and an event
 * log for live updates. All state is in Redis (docs/index-schema.md,
 * "Worklist"), every transition is one Lua script, so several huren nodes on
 * one Redis agree and a restart loses nothing (the sweeps are driven by
 * sorted sets of deadlines, not by in-process timers).
 *
 * Every function here is synchronous (hiredis): call it on the libuv thread
 * pool (sto_worker_redis()) or from the CLI. Times are ms since the epoch,
 * passed in by the caller so tests control the clock.
 *
 * Error codes (common/hr_err.h): HR_ENOTFOUND (no such item or center),
 * -EBUSY (claimed by someone else), HR_ESTATE (transition not allowed from the
 * item's state), -EPERM (the user may not act on this center/item),
 * HR_EREDIS, -ENOMEM, -EINVAL. */
#ifndef WL_WORKLIST_H
#define WL_WORKLIST_H

#include "../common/hr_config.h"

#include <hiredis/hiredis.h>
#include <stddef.h>
#include <stdint.h>

enum wl_state {
    WL_RECEIVING, /* instances arriving; not on the readers' list yet */
    WL_READY,     /* complete, waiting for a reader */
    WL_CLAIMED,   /* one reader holds a lease */
    WL_REPORTED,  /* preliminary report written (report issue drives this) */
    WL_FINAL,     /* signed */
    WL_AMENDED,   /* a signed report was amended */
    WL_STATE_COUNT
};

const char *wl_state_name(enum wl_state s);
int wl_state_parse(const char *name); /* -1 when unknown */
const char *wl_priority_name(enum hr_priority p);
int wl_priority_parse(const char *name); /* -1 when unknown */

/* What routing and the worklist know of an arriving instance. Strings may be
 * "" when absent. */
typedef struct wl_arrival {
    const char *study;        /* Study Instance UID (the item id) */
    const char *sop_class;    /* SOP Class UID */
    const char *modality;     /* (0008,0060) */
    const char *body_part;    /* (0018,0015) */
    const char *procedure;    /* Requested Procedure Description (0032,1060) or Code Meaning */
    const char *hospital;     /* source hospital id */
    const char *calling_ae;   /* "" for STOW */
    const char *patient;      /* patient key issuer|id */
    const char *patient_name; /* UTF-8 */
    const char *accession;
    const char *study_date;
    long long now_ms;
    int repeat;              /* 1: identical bytes sent again (a retry): no new instance, no
                              * "changed" flag; still creates the item if it is missing */
    int patient_conflict;    /* 1: the index flagged the study (storage/index.h); sets
                              * the item's patient_conflict, never clears it */
    const hr_center *center; /* not NULL: routed there with priority, cfg->routing not
                              * consulted (lab reports: lab.review, decision 0041) */
    enum hr_priority priority;
} wl_arrival;

/* ---- routing (pure) ---- */

/* The first rule of cfg->routing that matches a, else the default rule.
 * Returns the index of the rule (-1 = default) and sets *center and
 * *priority. */
int wl_route(const hr_config *cfg, const wl_arrival *a, const hr_center **center,
             enum hr_priority *priority);

/* Quiet period (ms) after the last instance before a study of this
 * modality is complete (cfg->worklist.quiet_s or its per-modality value). */
long long wl_quiet_ms(const hr_config *cfg, const char *modality);
/* Turnaround target (ms) for a center kind and priority: turnaround_min units of
 * turnaround_unit_s seconds (60 but in tests). */
long long wl_turnaround_ms(const hr_config *cfg, enum hr_center_kind kind, enum hr_priority p);

/* ---- lifecycle (Redis) ---- */

/* Due time of an item routed now to center with priority p: now + the
 * turnaround target. When the center has opening hours and is closed at
 * now, the clock of urgent and routine items starts at its next opening
 * (local time, TZ); stat items always start now. */
long long wl_due_ms(const hr_config *cfg, const hr_center *center, enum hr_priority p,
                    long long now_ms);

/* Records an arriving instance (call once per newly indexed instance):
 * creates the item (state receiving, routed by its first instance, due time
 * from wl_due_ms, event "received") on the study's first instance, else
 * pushes its completion deadline back to now + quiet period (the longest
 * quiet period of the modalities seen). An instance arriving after the item
 * left "receiving" marks it changed_after_ready (and, once claimed or later,
 * changed_since_read) and emits a "changed" event when one of these flags
 * goes from 0 to 1; it does not move the item back. Strings longer than the
 * wl_item fields are cut (at a UTF-8 boundary). 0, -EINVAL (study is not a
 * UID), HR_EREDIS. *created (may be NULL) = 1 when new. */
int wl_arrive(redisContext *c, const hr_config *cfg, const wl_arrival *a, int *created);

/* Explicit completion (POST /api/v1/exams/{id}/complete, MPPS later): the
 * item becomes ready now. 0 (also when already ready or later: idempotent),
 * HR_ENOTFOUND, HR_EREDIS. */
int wl_complete(redisContext *c, const char *study, const char *by, long long now_ms);

typedef struct wl_sweep_stats {
    int completed; /* receiving -> ready (quiet period over) */
    int expired;   /* leases that ran out: claimed -> ready */
    int overdue;   /* items flagged overdue now (each item once) */
} wl_sweep_stats;

/* Applies every deadline that has passed at now_ms: completions, lease
 * expiries, overdue flags (each emits its event; each newly overdue item is
 * also logged once, hr_warn "escalation", by the node whose sweep flagged
 * it). Bounded work per call (at most max items of each kind, max <= 0 means
 * 100, at most 10000; call again when a count equals max). Safe to run on
 * several nodes at once: each part is one script, an item is moved once. st
 * may be NULL. 0, HR_EREDIS. */
int wl_sweep(redisContext *c, long long now_ms, int max, wl_sweep_stats *st);
/* Earliest pending deadline (ms), or 0 when there is none (to size the timer). */
int wl_next_deadline(redisContext *c, long long *when_ms);

/* Claims: exactly one winner among concurrent claimers (Lua). The lease
 * lasts cfg->worklist.lease_s from now. 0; -EBUSY (claimed by another user);
 * HR_ESTATE (not ready); HR_ENOTFOUND. Claiming an item one already holds
 * renews it. In this and every call below, a lease whose end is <= now_ms
 * is expired first (event "expired"), whether or not a sweep has run. */
int wl_claim(redisContext *c, const hr_config *cfg, const char *study, const char *user,
             long long now_ms);
/* Renews the caller's lease. 0, -EBUSY (not the holder), HR_ESTATE, HR_ENOTFOUND. */
int wl_renew(redisContext *c, const hr_config *cfg, const char *study, const char *user,
             long long now_ms);
/* Returns the item to the queue. Same codes. */
int wl_release(redisContext *c, const char *study, const char *user, long long now_ms);
/* Gives a ready or claimed item to another reader (lead/admin; the caller
 * checks the role). 0, HR_ESTATE, HR_ENOTFOUND. */
int wl_reassign(redisContext *c, const hr_config *cfg, const char *study, const char *to_user,
                const char *by, long long now_ms);
/* Report issue hooks: claimed -> reported (holder only; the claim ends),
 * reported -> final, final -> amended, amended -> amended (the caller checks
 * roles and sign-off rules). Final and amended items leave the due and
 * overdue sets. to WL_READY: reported, final or amended -> ready when the
 * report was retracted (event "reopened"; back in the due set unless
 * flagged overdue), so the exam is read again (decision 0024). 0, -EBUSY,
 * HR_ESTATE, HR_ENOTFOUND, -EINVAL (to is not reported, final, amended or
 * ready). */
int wl_set_state(redisContext *c, const char *study, enum wl_state to, const char *user,
                 long long now_ms);

/* The report was returned for revision (decision 0034): reported -> claimed
 * by reader (the report's author) with a new lease of worklist.lease_s,
 * event "returned" (user by, reader reader); the item stays in the due
 * set. 0, HR_ESTATE (not reported), HR_ENOTFOUND, -EINVAL. */
int wl_return(redisContext *c, const hr_config *cfg, const char *study, const char *reader,
              const char *by, long long now_ms);

/* One item as stored. */
typedef struct wl_item {
    char study[65];
    char center[HR_ID_MAX];
    enum hr_priority priority;
    enum wl_state state;
    char hospital[HR_ID_MAX];
    char modality[17];
    char patient[192];
    char patient_name[HR_NAME_MAX];
    char accession[65];
    char study_date[9];
    char procedure[HR_NAME_MAX]; /* requested procedure of the first instance */
    int rule;                    /* routing rule index, -1 default */
    long long arrived_ms;        /* first instance */
    long long last_ms;           /* last instance */
    long long ready_ms;          /* 0 until ready */
    long long due_ms;            /* turnaround deadline */
    int overdue;                 /* flagged (escalated once) */
    int changed_after_ready;     /* instances arrived after it became ready */
    int changed_since_read;      /* instances arrived after a claim */
    int patient_conflict;        /* an instance's patient attributes differ from the study's */
    int instances;
    char claimed_by[65]; /* "" when not claimed */
    long long lease_until_ms;
    char reported_by[65]; /* reader of the preliminary report, "" before */
} wl_item;

/* The item of a study. 0, HR_ENOTFOUND, -EINVAL, HR_EREDIS. */
int wl_get(redisContext *c, const char *study, wl_item *out);

/* Indexes, for the listings of decision 0015, up to max (<= 0: 1000) items
 * per center that were routed before it (the legacy hr:wl:c:<C>:arr sets),
 * and removes them from there. Call until *left (may be NULL; the items of
 * every center still to index) is 0; wl_list also calls it for its center
 * (1000 per listing) while that center has any. Idempotent, safe on several
 * nodes at once. 0, HR_EREDIS. */
int wl_upgrade(redisContext *c, const hr_config *cfg, int max, long *left);

/* Listings page with a cursor: the `next` of a page (opaque, at most
 * WL_CURSOR_MAX - 1 bytes, "" after the last page) continues the same
 * listing after its last item, whatever happened to the items in between:
 * an item that stays in the listing is returned exactly once, in order. A
 * page costs O(log N + page) on an index of its filters (decision 0015); when
 * filters remain to be checked per item, at most WL_SCAN_BUDGET items are
 * examined per call, and a short page with a `next` means "not all seen yet". */
#define WL_CURSOR_MAX  112
#define WL_SCAN_BUDGET 1000

/* Listing of a center's worklist. */
typedef struct wl_filter {
    const char *center;   /* required */
    int state;            /* -1 = ready and claimed (the working list); else one state */
    int priority;         /* -1 = any */
    const char *hospital; /* NULL = any */
    const char *modality; /* NULL = any */
    int overdue_only;
    const char *claimed_by;   /* NULL = anyone; "mine": the caller's name, matching
                               * claimed_by, or reported_by in states reported, final
                               * and amended */
    long long from_ms, to_ms; /* arrival range (inclusive), 0 = open */
    int order_arrival;        /* 0: priority then due time; 1: arrival time, oldest first */
    const char *cursor;       /* NULL or "": from the start; else a `next` of this order */
    long offset, limit;       /* offset: matches skipped (after the cursor; deprecated);
                               * limit 0 = 100, at most 1000 */
} wl_filter;

typedef struct wl_counts {
    long by_state[WL_STATE_COUNT]; /* items of the center per state (all, unfiltered) */
    long overdue;
    long matched;             /* items matching the filter (before paging); -1 = unknown (a
                               * filter checked per item over more than WL_SCAN_BUDGET items) */
    long examined;            /* items this call read from the index (for tests and metrics) */
    char next[WL_CURSOR_MAX]; /* cursor of the next page, "" when this one is the last */
} wl_counts;

/* Calls cb (may be NULL: counts only) per item of the page in order (it is
 * valid during the call). counts may be NULL. 0, HR_ENOTFOUND (center),
 * -EINVAL (also a cursor of another order or malformed), HR_EREDIS, or cb's
 * non-zero value. */
int wl_list(redisContext *c, const hr_config *cfg, const wl_filter *f,
            int (*cb)(void *arg, const wl_item *it), void *arg, wl_counts *counts);

/* Items of studies received from one hospital (technicians: "my exams"),
 * newest first, after cursor (NULL or "": from the newest; else a `next` of
 * this listing), skipping offset. limit 0 = 100, at most 1000. *total (may be
 * NULL) = all of them; next (may be NULL, next_cap >= WL_CURSOR_MAX) = the
 * cursor of the next page, "" at the end. O(log N + page). 0, -EINVAL,
 * HR_EREDIS, or cb's non-zero value. */
int wl_list_hospital(redisContext *c, const char *hospital, const char *cursor, long offset,
                     long limit, int (*cb)(void *arg, const wl_item *it), void *arg, long *total,
                     char *next, size_t next_cap);

/* ---- events ----
 * Every transition appends to the Redis stream hr:wl:events (trimmed to about
 * WL_EVENTS_KEEP entries: the retention window for Last-Event-ID) and
 * publishes its id on channel hr:wl:notify so every node's SSE clients wake. */
#define WL_EVENTS_KEEP    100000
#define WL_NOTIFY_CHANNEL "hr:wl:notify"

typedef struct wl_event {
    char id[32];   /* stream id "ms-seq": the SSE id ("" in wl_history) */
    char type[16]; /* received ready claimed released renewed reassigned expired overdue
                      changed reported final amended reopened returned */
    char study[65];
    char center[HR_ID_MAX];
    char hospital[HR_ID_MAX];
    char user[65];   /* who did it, "" for the system */
    char reader[65]; /* the reader concerned: new holder (claimed renewed reassigned),
                        former holder (released expired), holder (changed overdue),
                        author of the report (reported final amended returned); else "" */
    char priority[8];
    char state[16]; /* the item's state after the event (an alert's: alert.h) */
    long long time_ms;
} wl_event;

/* Events after after_id ("0" or "" = from the oldest kept), at most max
 * (<= 0: 100, at most 1000), in order. *gap = 1 when after_id is older than
 * the oldest kept event and the stream has been trimmed: events may have
 * been lost to the client, which should reload its list (conservative: also
 * 1 when only after_id itself was trimmed). The kept events are delivered
 * either way. 0, -EINVAL (after_id is not "ms" or "ms-seq"), HR_EREDIS, or
 * cb's non-zero value. */
int wl_events_since(redisContext *c, const char *after_id, int max,
                    int (*cb)(void *arg, const wl_event *ev), void *arg, int *gap);

/* Every recorded transition of one item, oldest first: the last
 * WL_HISTORY_KEEP (LOG_KEEP in worklist_script.lua), not limited by the
 * event stream's retention. id, center, hospital and priority are "".
 * 0, HR_ENOTFOUND, -EINVAL, HR_EREDIS, or cb's non-zero value. */
#define WL_HISTORY_KEEP 1000
int wl_history(redisContext *c, const char *study, int (*cb)(void *arg, const wl_event *ev),
               void *arg);

#endif
