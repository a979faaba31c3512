/* test_metrics.c - storage/metrics.c: sharded counters summed across threads, histograms, the text format. */
#include <pthread.h>
#include "check.h"
#include "metrics.h"

#define PER_THREAD 100000

static void *bump(void *arg)
{
    (void)arg;
    for (int i = 0; i < PER_THREAD; i++)
        metrics_add(METRIC_WRITER_OPS, 1);
    return NULL;
}

static const char *render(struct metrics_buf *b)
{
    metrics_buf_release(b);
    if (metrics_render(b) != 0 || b->p == NULL)
        return "";
    return b->p;
}

/* Updates from many threads (more than METRICS_SHARDS) are all counted. */
static void counters_sum_every_thread(void)
{
    pthread_t t[METRICS_SHARDS + 4];
    int64_t before = metrics_value(METRIC_WRITER_OPS);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        pthread_create(&t[i], NULL, bump, NULL);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
        pthread_join(t[i], NULL);
    CHECK_INT_EQ(metrics_value(METRIC_WRITER_OPS) - before,
                 (long long)PER_THREAD * (long long)(sizeof(t) / sizeof(t[0])));
}

/* A gauge goes down as well as up. */
static void gauges_go_down(void)
{
    int64_t v = metrics_value(METRIC_UPLOADS_IN_FLIGHT);
    metrics_add(METRIC_UPLOADS_IN_FLIGHT, 2);
    metrics_add(METRIC_UPLOADS_IN_FLIGHT, -1);
    CHECK_INT_EQ(metrics_value(METRIC_UPLOADS_IN_FLIGHT), v + 1);
    metrics_add(METRIC_UPLOADS_IN_FLIGHT, -1);
}

/* Histogram buckets are cumulative, with +Inf, _sum in base units and _count. */
static void histograms_are_cumulative(void)
{
    struct metrics_buf b = {0};
    const char *t;
    metrics_observe(HIST_WRITER_BATCH_SIZE, 1);
    metrics_observe(HIST_WRITER_BATCH_SIZE, 3);
    metrics_observe(HIST_WRITER_BATCH_SIZE, 1000); /* above every bound: +Inf only */
    t = render(&b);
    CHECK(strstr(t, "berth_writer_batch_size_bucket{le=\"1\"} 1\n") != NULL);
    CHECK(strstr(t, "berth_writer_batch_size_bucket{le=\"2\"} 1\n") != NULL);
    CHECK(strstr(t, "berth_writer_batch_size_bucket{le=\"4\"} 2\n") != NULL);
    CHECK(strstr(t, "berth_writer_batch_size_bucket{le=\"512\"} 2\n") != NULL);
    CHECK(strstr(t, "berth_writer_batch_size_bucket{le=\"+Inf\"} 3\n") != NULL);
    CHECK(strstr(t, "berth_writer_batch_size_sum 1004\n") != NULL);
    CHECK(strstr(t, "berth_writer_batch_size_count 3\n") != NULL);
    metrics_observe(HIST_WRITER_COMMIT_SECONDS, 1500); /* µs */
    t = render(&b);
    CHECK(strstr(t, "berth_writer_commit_seconds_sum 0.0015\n") != NULL);
    metrics_buf_release(&b);
}

/* Requests: known statuses get their own series, others their class; bytes and latency per route. */
static void requests_by_route_method_status(void)
{
    struct metrics_buf b = {0};
    const char *t;
    metrics_request(MROUTE_MANIFEST, "GET", 3, 200, 700, 0, 512);
    metrics_request(MROUTE_MANIFEST, "GET", 3, 200, 700, 0, 512);
    metrics_request(MROUTE_BLOB, "BREW", 4, 418, 10, 5, 0);
    t = render(&b);
    CHECK(strstr(t, "berth_http_requests_total{route=\"manifest\",method=\"GET\",status=\"200\"} 2\n") != NULL);
    CHECK(strstr(t, "berth_http_requests_total{route=\"blob\",method=\"other\",status=\"4xx\"} 1\n") != NULL);
    CHECK(strstr(t, "berth_http_sent_bytes_total{route=\"manifest\"} 1024\n") != NULL);
    CHECK(strstr(t, "berth_http_received_bytes_total{route=\"blob\"} 5\n") != NULL);
    CHECK(strstr(t, "berth_http_request_duration_seconds_bucket{route=\"manifest\",le=\"0.001\"} 2\n") != NULL);
    CHECK(strstr(t, "berth_http_request_duration_seconds_count{route=\"manifest\"} 2\n") != NULL);
    /* one HELP/TYPE per family, even for the labelled auth-failure rows */
    CHECK(strstr(t, "# TYPE berth_auth_failures_total counter\n") != NULL);
    CHECK(strstr(strstr(t, "# TYPE berth_auth_failures_total") + 1, "# TYPE berth_auth_failures_total") == NULL);
    metrics_buf_release(&b);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(counters_sum_every_thread),
        CHECK_TEST(gauges_go_down),
        CHECK_TEST(histograms_are_cumulative),
        CHECK_TEST(requests_by_route_method_status),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
