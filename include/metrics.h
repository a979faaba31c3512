/*
 * metrics.h - the process's counters, gauges and histograms, rendered in the Prometheus text format (0.0.4).
 *
 * Cost on the hot path: every thread owns one shard (a cache-line-aligned block of counters picked on its first
 * update), and an update is one relaxed atomic add on that shard, so two threads never share a counter line and no
 * lock is taken.  A scrape sums the shards; it sees every update that finished before it, possibly not ones racing
 * with it (as with any Prometheus counter).
 *
 * Adding a metric is one line in METRICS_TABLE (a counter or gauge) or METRICS_HISTOGRAMS, then
 * metrics_add(METRIC_X, n) / metrics_observe(HIST_X, v) where it happens.  Rows that share a name are one metric
 * family with different labels; keep them adjacent.  Only what is really measured goes here: no placeholders.
 *
 * The per-request family (requests by route family, method and status; latency histogram; bytes in and out) has
 * its own entry point, metrics_request(), because its labels are a product.
 *
 * No h2o here: the storage library (the writer) records into it too.
 */
#ifndef BERTH_METRICS_H
#define BERTH_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* X(ID, name, labels, type, help): one line per counter or gauge series */
#define METRICS_TABLE(X)                                                                                               \
    X(UPLOADS_IN_FLIGHT, "berth_uploads_in_flight", "", "gauge",                                                       \
      "Upload requests (POST, PATCH, PUT, status, cancel of blob uploads) being processed now")                        \
    X(AUTH_FAIL_NO_CREDENTIALS, "berth_auth_failures_total", "reason=\"no_credentials\"", "counter",                   \
      "Requests refused by authentication or authorization, by reason")                                                \
    X(AUTH_FAIL_BAD_CREDENTIALS, "berth_auth_failures_total", "reason=\"bad_credentials\"", "counter", "")             \
    X(AUTH_FAIL_INVALID_TOKEN, "berth_auth_failures_total", "reason=\"invalid_token\"", "counter", "")                 \
    X(AUTH_FAIL_MALFORMED, "berth_auth_failures_total", "reason=\"malformed\"", "counter", "")                         \
    X(AUTH_FAIL_RATE_LIMITED, "berth_auth_failures_total", "reason=\"rate_limited\"", "counter", "")                   \
    X(AUTH_FAIL_LOGINS_BUSY, "berth_auth_failures_total", "reason=\"logins_busy\"", "counter", "")                     \
    X(AUTH_FAIL_DENIED, "berth_auth_failures_total", "reason=\"denied\"", "counter", "")                               \
    X(AUTH_FAIL_INSUFFICIENT_SCOPE, "berth_auth_failures_total", "reason=\"insufficient_scope\"", "counter", "")       \
    X(AUTH_FAIL_NOT_ADMIN, "berth_auth_failures_total", "reason=\"not_admin\"", "counter", "")                         \
    X(AUTH_SHARED_WRITES, "berth_auth_shared_failures_written_total", "", "counter",                                   \
      "Failed authentications added to the cluster-wide counts (metadata = postgresql)")                               \
    X(AUTH_SHARED_IMPORTS, "berth_auth_shared_limits_imported_total", "", "counter",                                   \
      "Subjects over a rate limit cluster-wide applied to this node, counted at every poll (metadata = postgresql)")   \
    X(WRITER_OPS, "berth_writer_ops_total", "", "counter", "Metadata write operations run by the writer")              \
    X(WRITER_OPS_FAILED, "berth_writer_ops_failed_total", "", "counter",                                               \
      "Metadata write operations that failed (rolled back alone or with their batch)")                                 \
    X(LIFECYCLE_RUNS, "berth_lifecycle_runs_total", "", "counter",                                                     \
      "Lifecycle policy runs of the server's scheduler (`berth lifecycle run` is another process: not counted)")       \
    X(LIFECYCLE_EXPIRED, "berth_lifecycle_images_expired_total", "", "counter",                                        \
      "Manifests the server's lifecycle runs expired (images and the children and referrers that went with them)")     \
    X(GC_RUNS, "berth_gc_runs_total", "", "counter",                                                                   \
      "Garbage collections run by the server's scheduler (`berth gc` is another process: not counted)")                \
    X(GC_BLOBS_DELETED, "berth_gc_blobs_deleted_total", "", "counter",                                                 \
      "Blobs the server's garbage collections deleted (successful runs)")                                              \
    X(GC_BYTES_RECLAIMED, "berth_gc_bytes_reclaimed_total", "", "counter",                                             \
      "Bytes of the blobs the server's garbage collections deleted (successful runs)")                                 \
    X(MAINT_SKIPPED, "berth_maint_skipped_total", "", "counter",                                                       \
      "Scheduled lifecycle + GC rounds skipped because another node held the maintenance lock (PostgreSQL)")

/* X(ID, name, help, bucket array, scale): histograms; observed values are integers in 1/scale units */
#define METRICS_HISTOGRAMS(X)                                                                                          \
    X(WRITER_BATCH_SIZE, "berth_writer_batch_size", "Metadata writes grouped in one commit", metrics_count_buckets, 1) \
    X(WRITER_COMMIT_SECONDS, "berth_writer_commit_seconds", "Duration of one group commit (BEGIN to COMMIT)",          \
      metrics_time_buckets, 1000000)

enum metric_id {
#define METRIC_ENUM_(id, name, labels, type, help) METRIC_##id,
    METRICS_TABLE(METRIC_ENUM_)
#undef METRIC_ENUM_
        METRIC__COUNT
};

enum metric_hist {
#define HIST_ENUM_(id, name, help, buckets, scale) HIST_##id,
    METRICS_HISTOGRAMS(HIST_ENUM_)
#undef HIST_ENUM_
        HIST__COUNT
};

/* Route families of the request metrics (the `route` label). */
#define METRICS_ROUTES(X)                                                                                              \
    X(BASE, "base")                                                                                                    \
    X(CATALOG, "catalog")                                                                                              \
    X(TAGS, "tags")                                                                                                    \
    X(MANIFEST, "manifest")                                                                                            \
    X(BLOB, "blob")                                                                                                    \
    X(UPLOAD, "upload")                                                                                                \
    X(REFERRERS, "referrers")                                                                                          \
    X(TOKEN, "token")                                                                                                  \
    X(METRICS, "metrics")                                                                                              \
    X(HEALTH, "health")                                                                                                \
    X(OTHER, "other")

enum metrics_route {
#define ROUTE_ENUM_(id, text) MROUTE_##id,
    METRICS_ROUTES(ROUTE_ENUM_)
#undef ROUTE_ENUM_
        MROUTE__COUNT
};

#define METRICS_SHARDS 16        /* counter blocks; threads beyond this share (still atomic) */
#define METRICS_TIME_BUCKETS 14  /* latency buckets (plus +Inf) */
#define METRICS_COUNT_BUCKETS 10 /* batch-size buckets (plus +Inf) */
#define METRICS_BUCKETS_MAX 16   /* most finite buckets of any histogram */
#define METRICS_STATUS_SLOTS 24  /* distinct status codes counted exactly; others count as their class */
#define METRICS_METHODS 7        /* GET HEAD PUT POST PATCH DELETE other */

/** Latency bucket bounds in microseconds (0.5 ms … 60 s), then 0. */
extern const uint64_t metrics_time_buckets[METRICS_BUCKETS_MAX];
/** Batch-size bucket bounds (1 … 256), then 0. */
extern const uint64_t metrics_count_buckets[METRICS_BUCKETS_MAX];

/** Adds `n` to counter or gauge `id` (a negative `n` lowers a gauge). */
void metrics_add(enum metric_id id, int64_t n);
/** Records value `v` (in the histogram's 1/scale units, e.g. microseconds) in histogram `h`. */
void metrics_observe(enum metric_hist h, uint64_t v);

/** Records one finished request: route family, method text, status, duration (µs), body bytes in and out. */
void metrics_request(enum metrics_route route, const char *method, size_t method_len, int status, uint64_t usec,
                     uint64_t bytes_in, uint64_t bytes_out);

/** The value of `id` now, summed over the shards (for tests and the health checks). */
int64_t metrics_value(enum metric_id id);

/** A growable text buffer for metrics_render(). */
struct metrics_buf {
    char *p;
    size_t len, cap;
    int oom;
};

/** Appends printf output to `b` (sets b->oom on allocation failure). */
void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Frees b's text. */
void metrics_buf_release(struct metrics_buf *b);

/** Appends every metric of the registry to `b` in the Prometheus text format.  Returns 0 or BERR_NOMEM. */
int metrics_render(struct metrics_buf *b);
/** Appends one gauge family with a single unlabelled sample (for values read elsewhere, e.g. storage counts). */
void metrics_render_gauge(struct metrics_buf *b, const char *name, const char *help, double value);

#endif
