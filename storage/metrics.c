/* metrics.c - sharded lock-free counters and histograms, rendered as Prometheus text (see metrics.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "err.h"
#include "metrics.h"

const uint64_t metrics_time_buckets[METRICS_BUCKETS_MAX] = {
    500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 10000000, 60000000,
};
const uint64_t metrics_count_buckets[METRICS_BUCKETS_MAX] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 512};

/* Status codes with their own series; anything else is counted under its class ("2xx" …). */
static const int statuses[] = {200, 201, 202, 204, 206, 301, 302, 304, 307, 400, 401, 403,
                               404, 405, 409, 413, 415, 416, 429, 500, 502, 503, 507};
#define N_STATUSES (sizeof(statuses) / sizeof(statuses[0]))
_Static_assert(N_STATUSES + 1 <= METRICS_STATUS_SLOTS, "status slots");
static const char *const methods[METRICS_METHODS] = {"GET", "HEAD", "PUT", "POST", "PATCH", "DELETE", "other"};

struct hist {
    atomic_uint_fast64_t bucket[METRICS_BUCKETS_MAX + 1]; /* non-cumulative; the last is +Inf */
    atomic_uint_fast64_t sum;
};

struct shard {
    atomic_uint_fast64_t simple[METRIC__COUNT]; /* gauges wrap around: summed as unsigned, read as signed */
    struct hist hist[HIST__COUNT];
    /* requests[route][method][status slot]; the last status slot collects the rest by class (see other_class) */
    atomic_uint_fast64_t requests[MROUTE__COUNT][METRICS_METHODS][METRICS_STATUS_SLOTS];
    atomic_uint_fast64_t other_class[MROUTE__COUNT][METRICS_METHODS][6];
    struct hist latency[MROUTE__COUNT];
    atomic_uint_fast64_t bytes_in[MROUTE__COUNT], bytes_out[MROUTE__COUNT];
} __attribute__((aligned(64)));

static struct shard shards[METRICS_SHARDS];
static atomic_uint next_shard;
static _Thread_local struct shard *mine;

static struct shard *my_shard(void)
{
    if (mine == NULL)
        mine = &shards[atomic_fetch_add_explicit(&next_shard, 1, memory_order_relaxed) % METRICS_SHARDS];
    return mine;
}

static void add(atomic_uint_fast64_t *c, uint64_t n)
{
    atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static uint64_t get(const atomic_uint_fast64_t *c)
{
    return atomic_load_explicit(c, memory_order_relaxed);
}

void metrics_add(enum metric_id id, int64_t n)
{
    add(&my_shard()->simple[id], (uint64_t)n);
}

int64_t metrics_value(enum metric_id id)
{
    uint64_t v = 0;
    for (int s = 0; s < METRICS_SHARDS; s++)
        v += get(&shards[s].simple[id]);
    return (int64_t)v;
}

static void observe(struct hist *h, const uint64_t *bounds, uint64_t v)
{
    int i = 0;
    while (i < METRICS_BUCKETS_MAX && bounds[i] != 0 && v > bounds[i])
        i++;
    if (i < METRICS_BUCKETS_MAX && bounds[i] == 0)
        i = METRICS_BUCKETS_MAX; /* past the last bound: +Inf */
    add(&h->bucket[i], 1);
    add(&h->sum, v);
}

static const uint64_t *const hist_bounds[HIST__COUNT] = {
#define HIST_BOUNDS_(id, name, help, buckets, scale) buckets,
    METRICS_HISTOGRAMS(HIST_BOUNDS_)
#undef HIST_BOUNDS_
};

void metrics_observe(enum metric_hist h, uint64_t v)
{
    observe(&my_shard()->hist[h], hist_bounds[h], v);
}

static int method_slot(const char *m, size_t len)
{
    for (int i = 0; i < METRICS_METHODS - 1; i++)
        if (methods[i][0] == m[0] && strlen(methods[i]) == len && memcmp(methods[i], m, len) == 0)
            return i;
    return METRICS_METHODS - 1;
}

/* status code -> slot in `statuses` + 1 (0 = not listed), built once */
static unsigned char status_index[600];
static pthread_once_t status_index_once = PTHREAD_ONCE_INIT;

static void status_index_build(void)
{
    for (size_t i = 0; i < N_STATUSES; i++)
        status_index[statuses[i]] = (unsigned char)(i + 1);
}

static int status_slot(int status)
{
    pthread_once(&status_index_once, status_index_build);
    return status >= 0 && status < 600 ? status_index[status] - 1 : -1;
}

void metrics_request(enum metrics_route route, const char *method, size_t method_len, int status, uint64_t usec,
                     uint64_t bytes_in, uint64_t bytes_out)
{
    struct shard *s = my_shard();
    int m = method_len > 0 ? method_slot(method, method_len) : METRICS_METHODS - 1, i = status_slot(status);
    if ((unsigned)route >= MROUTE__COUNT)
        route = MROUTE_OTHER;
    if (i >= 0)
        add(&s->requests[route][m][i], 1);
    else
        add(&s->other_class[route][m][status >= 100 && status < 600 ? status / 100 : 0], 1);
    observe(&s->latency[route], metrics_time_buckets, usec);
    add(&s->bytes_in[route], bytes_in);
    add(&s->bytes_out[route], bytes_out);
}

/* ---- rendering ---- */

void metrics_buf_printf(struct metrics_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    if (b->oom)
        return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_start(ap, fmt);
        n = vsnprintf(b->p != NULL ? b->p + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap * 2 : 16384;
        while (cap - b->len <= (size_t)n)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (p == NULL) {
            b->oom = 1;
            return;
        }
        b->p = p;
        b->cap = cap;
    }
}

void metrics_buf_release(struct metrics_buf *b)
{
    free(b->p);
    memset(b, 0, sizeof(*b));
}

static void header(struct metrics_buf *b, const char *name, const char *type, const char *help)
{
    metrics_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void metrics_render_gauge(struct metrics_buf *b, const char *name, const char *help, double value)
{
    header(b, name, "gauge", help);
    metrics_buf_printf(b, "%s %.17g\n", name, value);
}

static void render_simple(struct metrics_buf *b)
{
    static const struct {
        const char *name, *labels, *type, *help;
    } rows[METRIC__COUNT] = {
#define ROW_(id, name, labels, type, help) {name, labels, type, help},
        METRICS_TABLE(ROW_)
#undef ROW_
    };
    for (int i = 0; i < METRIC__COUNT; i++) {
        int64_t v = metrics_value((enum metric_id)i);
        if (i == 0 || strcmp(rows[i].name, rows[i - 1].name) != 0)
            header(b, rows[i].name, rows[i].type, rows[i].help);
        metrics_buf_printf(b, rows[i].labels[0] ? "%s{%s} %lld\n" : "%s%s %lld\n", rows[i].name, rows[i].labels,
                           (long long)v);
    }
}

/* Sums histogram `pick(shard)` over the shards into `out`. */
static void hist_sum(struct hist *(*pick)(struct shard *s, int arg), int arg, uint64_t out[METRICS_BUCKETS_MAX + 2])
{
    memset(out, 0, sizeof(uint64_t) * (METRICS_BUCKETS_MAX + 2));
    for (int s = 0; s < METRICS_SHARDS; s++) {
        struct hist *h = pick(&shards[s], arg);
        for (int i = 0; i <= METRICS_BUCKETS_MAX; i++)
            out[i] += get(&h->bucket[i]);
        out[METRICS_BUCKETS_MAX + 1] += get(&h->sum);
    }
}

/* One histogram's series; `labels` is "" or `k="v",` (with the trailing comma). */
static void render_hist(struct metrics_buf *b, const char *name, const char *labels, const uint64_t *bounds,
                        double scale, const uint64_t v[METRICS_BUCKETS_MAX + 2])
{
    uint64_t cum = 0;
    size_t ll = strlen(labels);
    for (int i = 0; i < METRICS_BUCKETS_MAX && bounds[i] != 0; i++) {
        cum += v[i];
        metrics_buf_printf(b, "%s_bucket{%sle=\"%.17g\"} %llu\n", name, labels, (double)bounds[i] / scale,
                           (unsigned long long)cum);
    }
    cum += v[METRICS_BUCKETS_MAX];
    metrics_buf_printf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name, labels, (unsigned long long)cum);
    if (ll > 0) /* "k=\"v\"," -> "{k=\"v\"}" */
        metrics_buf_printf(b, "%s_sum{%.*s} %.17g\n%s_count{%.*s} %llu\n", name, (int)ll - 1, labels,
                           (double)v[METRICS_BUCKETS_MAX + 1] / scale, name, (int)ll - 1, labels,
                           (unsigned long long)cum);
    else
        metrics_buf_printf(b, "%s_sum %.17g\n%s_count %llu\n", name, (double)v[METRICS_BUCKETS_MAX + 1] / scale, name,
                           (unsigned long long)cum);
}

static struct hist *pick_hist(struct shard *s, int h)
{
    return &s->hist[h];
}

static struct hist *pick_latency(struct shard *s, int r)
{
    return &s->latency[r];
}

static void render_histograms(struct metrics_buf *b)
{
    static const struct {
        const char *name, *help;
        const uint64_t *bounds;
        double scale;
    } rows[HIST__COUNT] = {
#define ROW_(id, name, help, buckets, scale) {name, help, buckets, scale},
        METRICS_HISTOGRAMS(ROW_)
#undef ROW_
    };
    uint64_t v[METRICS_BUCKETS_MAX + 2];
    for (int i = 0; i < HIST__COUNT; i++) {
        hist_sum(pick_hist, i, v);
        header(b, rows[i].name, "histogram", rows[i].help);
        render_hist(b, rows[i].name, "", rows[i].bounds, rows[i].scale, v);
    }
}

static const char *const route_names[MROUTE__COUNT] = {
#define ROUTE_NAME_(id, text) text,
    METRICS_ROUTES(ROUTE_NAME_)
#undef ROUTE_NAME_
};

/* berth_http_requests_total{route,method,status}: only series that were seen. */
static void render_requests(struct metrics_buf *b)
{
    static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    header(b, "berth_http_requests_total", "counter", "HTTP requests answered, by route family, method and status");
    for (int r = 0; r < MROUTE__COUNT; r++)
        for (int m = 0; m < METRICS_METHODS; m++) {
            for (size_t i = 0; i < N_STATUSES + 6; i++) {
                uint64_t n = 0;
                for (int s = 0; s < METRICS_SHARDS; s++)
                    n += i < N_STATUSES ? get(&shards[s].requests[r][m][i])
                                        : get(&shards[s].other_class[r][m][i - N_STATUSES]);
                if (n == 0)
                    continue;
                if (i < N_STATUSES)
                    metrics_buf_printf(b, "berth_http_requests_total{route=\"%s\",method=\"%s\",status=\"%d\"} %llu\n",
                                       route_names[r], methods[m], statuses[i], (unsigned long long)n);
                else
                    metrics_buf_printf(b, "berth_http_requests_total{route=\"%s\",method=\"%s\",status=\"%s\"} %llu\n",
                                       route_names[r], methods[m], classes[i - N_STATUSES], (unsigned long long)n);
            }
        }
}

static void render_bytes(struct metrics_buf *b, const char *name, const char *help, int out)
{
    header(b, name, "counter", help);
    for (int r = 0; r < MROUTE__COUNT; r++) {
        uint64_t n = 0;
        for (int s = 0; s < METRICS_SHARDS; s++)
            n += get(out ? &shards[s].bytes_out[r] : &shards[s].bytes_in[r]);
        metrics_buf_printf(b, "%s{route=\"%s\"} %llu\n", name, route_names[r], (unsigned long long)n);
    }
}

int metrics_render(struct metrics_buf *b)
{
    uint64_t v[METRICS_BUCKETS_MAX + 2];
    char labels[64];
    render_simple(b);
    render_histograms(b);
    render_requests(b);
    header(b, "berth_http_request_duration_seconds", "histogram",
           "Time from the request's first byte to its last response byte, by route family");
    for (int r = 0; r < MROUTE__COUNT; r++) {
        hist_sum(pick_latency, r, v);
        snprintf(labels, sizeof(labels), "route=\"%s\",", route_names[r]);
        render_hist(b, "berth_http_request_duration_seconds", labels, metrics_time_buckets, 1e6, v);
    }
    render_bytes(b, "berth_http_received_bytes_total", "Request body bytes received, by route family", 0);
    render_bytes(b, "berth_http_sent_bytes_total", "Response bytes sent, by route family", 1);
    return b->oom ? BERR_NOMEM : 0;
}
