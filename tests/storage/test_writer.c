/* test_writer.c - writer.h: group commit of concurrent metadata writes on the single writer thread. */
#include <pthread.h>
#include <time.h>
#include "check.h"
#include "db.h"
#include "digest.h"
#include "log.h"
#include "meta.h"
#include "writer.h"

#define THREADS 8
#define OPS_PER_THREAD 25

static char dir[256];

static int setup(void)
{
    return check_tmpdir(dir, sizeof(dir));
}

static void teardown(void)
{
    writer_stop();
    check_rmtree(dir);
}

/* One blob commit to run on the writer thread; `fail` makes it write and then return an error. */
struct blob_op {
    char repo[32], digest[BERTH_DIGEST_MAX];
    int fail, rc;
    long commits_seen; /* commits of the writer's connection before this op ran (see count_commits) */
};

static long commits; /* written and read on the writer thread only, then read after writer_stop() */

static int count_commits(void *unused)
{
    (void)unused;
    commits++;
    return 0;
}

static int blob_op_run(struct db *db, void *arg)
{
    struct blob_op *o = arg;
    int rc = meta_blob_commit(db, o->repo, o->digest, 1);
    o->commits_seen = commits;
    return rc != 0 ? rc : (o->fail ? BERR_INTERNAL : 0);
}

static void *thread_run_op(void *arg)
{
    struct blob_op *o = arg;
    o->rc = writer_run(blob_op_run, o);
    return NULL;
}

/* Counts rows with `sql` on a fresh connection (after the writer stopped). */
static long long count(const char *sql)
{
    struct db *db;
    sqlite3_stmt *st;
    long long n = -1;
    if (db_open(dir, &db) != 0)
        return -1;
    if (sqlite3_prepare_v2(db->h, sql, -1, &st, NULL) == SQLITE_OK) {
        if (sqlite3_step(st) == SQLITE_ROW)
            n = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
    }
    db_close(db);
    return n;
}

struct worker {
    pthread_t tid;
    int index, failures;
};

static void *worker_main(void *arg)
{
    struct worker *w = arg;
    for (int i = 0; i < OPS_PER_THREAD; i++) {
        struct blob_op o = {0};
        char content[64];
        int n = snprintf(content, sizeof(content), "thread %d op %d", w->index, i);
        snprintf(o.repo, sizeof(o.repo), "t%d", w->index);
        digest_buf(content, (size_t)n, o.digest);
        if (writer_run(blob_op_run, &o) != 0)
            w->failures++;
    }
    return NULL;
}

/* 8 threads calling writer_run concurrently all get 0 back, and every one of their writes is committed. */
static void writer_commits_concurrent_runs_from_8_threads(void)
{
    struct worker w[THREADS];
    REQUIRE_OK(writer_start(dir));
    for (int i = 0; i < THREADS; i++) {
        w[i] = (struct worker){.index = i};
        REQUIRE_INT_EQ(pthread_create(&w[i].tid, NULL, worker_main, &w[i]), 0);
    }
    for (int i = 0; i < THREADS; i++) {
        pthread_join(w[i].tid, NULL);
        CHECK_INT_EQ(w[i].failures, 0);
    }
    writer_stop();
    CHECK_INT_EQ(count("SELECT count(*) FROM blobs"), THREADS * OPS_PER_THREAD);
    CHECK_INT_EQ(count("SELECT count(*) FROM repo_blobs"), THREADS * OPS_PER_THREAD);
    CHECK_INT_EQ(count("SELECT count(*) FROM repos"), THREADS);
}

/* Holds the writer thread inside a batch until released, so that later operations queue up into one batch. */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cond = PTHREAD_COND_INITIALIZER;
static int gate_open, gate_entered;

static int gate_op(struct db *db, void *unused)
{
    (void)unused;
    commits = 0;
    sqlite3_commit_hook(db->h, count_commits, NULL);
    pthread_mutex_lock(&gate_lock);
    gate_entered = 1;
    pthread_cond_broadcast(&gate_cond);
    while (!gate_open)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    return 0;
}

static void *thread_gate(void *arg)
{
    *(int *)arg = writer_run(gate_op, NULL);
    return NULL;
}

/* An operation that fails rolls back alone: the others of the same batch commit, and each caller gets its own
 * result. */
static void writer_failing_op_rolls_back_alone(void)
{
    struct blob_op ops[3] = {{.repo = "a"}, {.repo = "b", .fail = 1}, {.repo = "c"}};
    pthread_t gate, tids[3];
    int gate_rc = -1;
    struct timespec settle = {0, 300 * 1000 * 1000};
    digest_buf("first", 5, ops[0].digest);
    digest_buf("failing", 7, ops[1].digest);
    digest_buf("third", 5, ops[2].digest);
    gate_open = gate_entered = 0;
    REQUIRE_OK(writer_start(dir));
    REQUIRE_INT_EQ(pthread_create(&gate, NULL, thread_gate, &gate_rc), 0);
    pthread_mutex_lock(&gate_lock);
    while (!gate_entered)
        pthread_cond_wait(&gate_cond, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    for (int i = 0; i < 3; i++) {
        REQUIRE_INT_EQ(pthread_create(&tids[i], NULL, thread_run_op, &ops[i]), 0);
        nanosleep(&settle, NULL); /* queue them in order while the writer is held */
    }
    pthread_mutex_lock(&gate_lock);
    gate_open = 1;
    pthread_cond_broadcast(&gate_cond);
    pthread_mutex_unlock(&gate_lock);
    pthread_join(gate, NULL);
    for (int i = 0; i < 3; i++)
        pthread_join(tids[i], NULL);
    writer_stop();
    CHECK_ERR(gate_rc, 0);
    CHECK_ERR(ops[0].rc, 0);
    CHECK_ERR(ops[1].rc, BERR_INTERNAL);
    CHECK_ERR(ops[2].rc, 0);
    /* one batch: all three ran after the gate's commit and before any other */
    CHECK_INT_EQ(ops[0].commits_seen, 1);
    CHECK_INT_EQ(ops[1].commits_seen, 1);
    CHECK_INT_EQ(ops[2].commits_seen, 1);
    CHECK_INT_EQ(commits, 2);
    CHECK_INT_EQ(count("SELECT count(*) FROM blobs"), 2);
    CHECK_INT_EQ(count("SELECT count(*) FROM repos WHERE name IN ('a', 'c')"), 2);
    CHECK_INT_EQ(count("SELECT count(*) FROM repos WHERE name = 'b'"), 0);
}

/* writer_run before writer_start (or after writer_stop) refuses with BERR_BUSY instead of hanging. */
static void writer_run_without_writer_is_busy(void)
{
    struct blob_op o = {.repo = "a"};
    digest_buf("x", 1, o.digest);
    CHECK_ERR(writer_run(blob_op_run, &o), BERR_BUSY);
    REQUIRE_OK(writer_start(dir));
    CHECK_ERR(writer_run(blob_op_run, &o), 0);
    writer_stop();
    CHECK_ERR(writer_run(blob_op_run, &o), BERR_BUSY);
    writer_stop(); /* a second stop is harmless */
    CHECK_INT_EQ(count("SELECT count(*) FROM blobs"), 1);
}

/* An asynchronous op: its completion records the result on the writer thread. */
struct async_op {
    struct writer_op op;
    struct blob_op b;
    int completions, rc;
};

static void async_done(struct writer_op *op)
{
    struct async_op *a = (struct async_op *)op;
    a->completions++;
    a->rc = op->rc;
}

/* writer_submit returns at once; every op's completion runs exactly once, after its batch committed, with fn's
 * result (a failing op alone rolls back); writer_stop finishes what is queued. */
static void writer_submit_completes_each_op_once(void)
{
    enum { N = 40 };
    static struct async_op ops[N];
    memset(ops, 0, sizeof(ops));
    REQUIRE_OK(writer_start(dir));
    for (int i = 0; i < N; i++) {
        snprintf(ops[i].b.repo, sizeof(ops[i].b.repo), "r%d", i);
        digest_buf(ops[i].b.repo, strlen(ops[i].b.repo), ops[i].b.digest);
        ops[i].b.fail = i % 10 == 3;
        ops[i].op.fn = blob_op_run;
        ops[i].op.arg = &ops[i].b;
        ops[i].op.done = async_done;
        REQUIRE_OK(writer_submit(&ops[i].op));
    }
    writer_stop();
    for (int i = 0; i < N; i++) {
        CHECK_INT_EQ(ops[i].completions, 1);
        CHECK_ERR(ops[i].rc, ops[i].b.fail ? BERR_INTERNAL : 0);
    }
    CHECK_INT_EQ(count("SELECT count(*) FROM blobs"), N - N / 10);
    CHECK_ERR(writer_submit(&ops[0].op), BERR_BUSY);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(writer_run_without_writer_is_busy),
        CHECK_TEST(writer_commits_concurrent_runs_from_8_threads),
        CHECK_TEST(writer_failing_op_rolls_back_alone),
        CHECK_TEST(writer_submit_completes_each_op_once),
    };
    check_before_each = setup;
    check_after_each = teardown;
    log_set_level(LOG_ERROR);
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
