/* Group-commit journal (decision 0036): append-only segment files under one
 * directory, written by one thread per journal. The writer takes every
 * queued record, writes them (writev), calls fdatasync ONCE for the batch,
 * then completes them all on the loop (uv_async). A new segment file is
 * created at each open (an old file is never appended to), rolled at the
 * segment size; the file and its directory are fsynced when created.
 *
 * On disk (little-endian; docs/index-schema.md "Journal"):
 *   segment  = "HRJOURN1" u64 created_ms, then records
 *   record   = "HRJ1" u32 type u32 len u32 0 i64 ms [32] sha256 data[len]
 *   sha256   = SHA-256 of the record's first 24 bytes then data
 * The scanner verifies each record and stops a segment at the first torn or
 * corrupt record (a crash mid-write), reporting it; the next segment goes on.
 *
 * Thread use: open/append/close/stats on the loop thread; read and scan are
 * blocking (thread pool, CLI, tests). */
#ifndef STO_JOURNAL_H
#define STO_JOURNAL_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#define STO_JOURNAL_SEGMENT_MAX (64ull << 20) /* a segment is rolled past this size */
#define STO_JOURNAL_RECORD_MAX  (16u << 20)   /* data bytes of one record, at most */
#define STO_JOURNAL_QUEUE_BYTES (64u << 20)   /* queued (not yet durable) data bytes */
#define STO_JOURNAL_QUEUE_COUNT 4096          /* queued records */
#define STO_JOURNAL_HEADER      56            /* bytes of a record before its data */
#define STO_JOURNAL_FILE_HEADER 16            /* bytes of a segment before its first record */

typedef struct sto_journal sto_journal;

/* Where a record is: segment file name (in the journal directory), offset of
 * its header, length of its data. */
typedef struct sto_journal_pos {
    char segment[96];
    uint64_t offset;
    uint32_t len;
} sto_journal_pos;

/* Limits of one journal; 0 in a field takes its default above. */
typedef struct sto_journal_opts {
    uint64_t segment_max;
    size_t queue_bytes;
    size_t queue_count;
} sto_journal_opts;

/* Opens the journal in dir (created with its parent when missing, fsynced),
 * starting a new segment "<ms>-<node>-<nnnnnn>.jnl" (node: 1..40 of [A-Za-z0-9._-])
 * and the writer thread. *out is freed by sto_journal_close. 0, -EINVAL,
 * -errno, -ENOMEM. */
int sto_journal_open(uv_loop_t *loop, const char *dir, const char *node, sto_journal **out);
/* The same with limits (o may be NULL). */
int sto_journal_open_opts(uv_loop_t *loop, const char *dir, const char *node,
                          const sto_journal_opts *o, sto_journal **out);

/* Completion of an append, on the loop: rc 0 with pos once the record is
 * durable (written and fdatasynced), or rc < 0 (-errno of the write/sync, or
 * HR_ESTATE when the journal failed). pos is valid during the call, NULL when rc < 0. */
typedef void (*sto_journal_cb)(void *arg, int rc, const sto_journal_pos *pos);

/* Queues a copy of data[0..len) as a record of type; cb runs exactly once, on
 * the loop, from a later callback. 0; -EAGAIN when the queue is full (bytes or
 * count: the caller refuses the message, e.g. an HL7 AE, and may retry);
 * HR_ETOOBIG (len > STO_JOURNAL_RECORD_MAX); HR_ESTATE (closing); -ENOMEM. On
 * error cb is not called. */
int sto_journal_append(sto_journal *j, uint32_t type, const uint8_t *data, size_t len,
                       long long now_ms, sto_journal_cb cb, void *arg);

/* Counters since open, for metrics and tests. */
typedef struct sto_journal_stats {
    uint64_t syncs;    /* fdatasync calls (one per batch, plus one per rolled segment) */
    uint64_t batches;  /* batches written */
    uint64_t records;  /* records made durable */
    uint64_t bytes;    /* bytes written (headers included) */
    uint64_t segments; /* segments created */
    size_t queued;     /* records waiting now */
} sto_journal_stats;
void sto_journal_stats_get(sto_journal *j, sto_journal_stats *st);

/* Tests and benchmarks: while held (on != 0) the writer takes no new batch, so
 * appends made meanwhile form one batch once released. */
void sto_journal_hold(sto_journal *j, int on);

/* Stops taking appends, lets the writer finish what is queued (their callbacks
 * run), joins it, then calls closed(arg) on the loop and frees j. */
void sto_journal_close(sto_journal *j, void (*closed)(void *arg), void *arg);

/* Blocking: reads the data of the record at pos back (malloc'd into *data, free
 * it), verifying magic, length and SHA-256. 0, HR_ENOTFOUND (no such segment),
 * HR_EDIGEST / HR_EPARSE (not a valid record there), -EINVAL, -errno, -ENOMEM. */
int sto_journal_read(const char *dir, const sto_journal_pos *pos, uint8_t **data, size_t *len);

/* Blocking: calls cb for every valid record of every segment in dir, segments
 * in name order (creation time), records in file order; data is valid during
 * the call. A torn or corrupt tail ends that segment (counted in *torn when
 * torn is not NULL, and logged). cb returning non-zero stops the scan with that
 * value. A record whose append failed at its fdatasync may still be found
 * (written, durability unknown): consumers dedupe. 0 (also for a missing dir),
 * -errno, -ENOMEM. */
int sto_journal_scan(const char *dir,
                     int (*cb)(void *arg, uint32_t type, const uint8_t *data, size_t len,
                               long long ms, const sto_journal_pos *pos),
                     void *arg, int *torn);

#endif
