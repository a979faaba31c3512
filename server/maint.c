/* maint.c - `berth lifecycle|gc|fsck`, and serve's lifecycle + GC scheduler thread (maint.h). */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "blobstore.h"
#include "config.h"
#include "cli.h"
#include "db.h"
#include "defaults.h"
#include "err.h"
#include "events.h"
#include "fsck.h"
#include "gc.h"
#include "lifecycle.h"
#include "log.h"
#include "maint.h"
#include "metrics.h"
#include "module.h"

static const char usage[] =
    "usage:\n"
    "  berth lifecycle put REPO FILE     set REPO's lifecycle policy (Amazon ECR's JSON grammar) from FILE (- = "
    "stdin)\n"
    "  berth lifecycle get REPO          print REPO's lifecycle policy\n"
    "  berth lifecycle delete REPO       remove REPO's lifecycle policy\n"
    "  berth lifecycle run [--repo REPO] [--dry-run] [--as-of RFC3339-TIME]\n"
    "                                    expire what the policies (and untagged_retention) select; one line per\n"
    "                                    image: repository, digest, tags, rule priority\n"
    "  berth gc [--dry-run] [--grace DURATION]\n"
    "                                    delete blobs no manifest references (default grace: gc_grace, 1h)\n"
    "  berth fsck [--repair]             re-hash every blob and check berth.db against the files; exit 1 on findings\n"
    "\n"
    "With metadata = postgresql, `lifecycle run` and `gc` (not their --dry-run) take the cluster's maintenance\n"
    "lock: while a node's scheduled run or another command holds it they do nothing and exit 3.\n"
    "\n"
    "options (every subcommand):\n"
    "  --data DIR      data directory (default " BERTH_DEFAULT_DATA ")\n"
    "  --config FILE   read settings (data, untagged_retention, gc_grace) from FILE\n"
    "\n"
    "All of them work while `berth serve` runs on the same data directory.\n";

struct mopts {
    struct config cfg;
    const char *repo, *as_of, *grace;
    int dry_run, repair;
    char **args;
    int nargs;
};

static int parse_mopts(int argc, char **argv, struct mopts *o)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"repo", required_argument, NULL, 'r'},
        {"as-of", required_argument, NULL, 'a'},
        {"grace", required_argument, NULL, 'g'},
        {"dry-run", no_argument, NULL, 'n'},
        {"repair", no_argument, NULL, 'R'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *config_file = NULL;
    char err[512];
    int c;
    memset(o, 0, sizeof(*o));
    config_defaults(&o->cfg);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'r':
            o->repo = optarg;
            break;
        case 'a':
            o->as_of = optarg;
            break;
        case 'g':
            o->grace = optarg;
            break;
        case 'n':
            o->dry_run = 1;
            break;
        case 'R':
            o->repair = 1;
            break;
        case 'h':
            fputs(usage, stdout);
            return 1;
        default:
            fputs(usage, stderr);
            return 2;
        }
    }
    if (cli_apply_config(&o->cfg, config_file, data) != 0)
        return 2;
    if (o->grace != NULL && config_set(&o->cfg, "gc_grace", o->grace, err, sizeof(err)) != 0) {
        fprintf(stderr, "berth: invalid --grace '%s' (want e.g. 0, 90s, 30m, 1h, 7d)\n", o->grace);
        return 2;
    }
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

/* Parses an RFC 3339 time ("2026-01-02T03:04:05Z", fractions and numeric offsets allowed). */
static int parse_rfc3339(const char *s, long long *out)
{
    struct tm tm;
    const char *p;
    long long t;
    memset(&tm, 0, sizeof(tm));
    if ((p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL)
        return -1;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    t = (long long)timegm(&tm);
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
        *out = t;
        return 0;
    }
    if ((*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':') {
        int h = atoi(p + 1), m = atoi(p + 4);
        if (h > 23 || m > 59)
            return -1;
        *out = t - (*p == '+' ? 1 : -1) * (h * 3600LL + m * 60LL);
        return 0;
    }
    return -1;
}

static void fmt_time(long long t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Reads all of `path` (or stdin for "-") into a malloc'd buffer of at most `max` bytes. */
static char *slurp(const char *path, size_t max, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    char *buf;
    if (f == NULL || (buf = malloc(max + 1)) == NULL) {
        if (f != NULL && f != stdin)
            fclose(f);
        return NULL;
    }
    *len = fread(buf, 1, max + 1, f);
    if (f != stdin)
        fclose(f);
    if (*len > max) {
        free(buf);
        return NULL;
    }
    buf[*len] = '\0';
    return buf;
}

/* ---- berth lifecycle ---- */

/* The exit status of `lifecycle run` and `gc` when another node or process holds the maintenance lock. */
#define MAINT_EXIT_BUSY 3

/* Takes the cluster's maintenance lock for command `what` (always granted on SQLite).  Returns 0, or prints why
 * nothing is done and returns MAINT_EXIT_BUSY. */
static int maint_lock_or_explain(struct db *db, const char *what)
{
    if (db_maint_trylock(db))
        return 0;
    fprintf(stderr,
            "berth: %s: not run: lifecycle/GC is running elsewhere (a node's scheduled run or another `berth %s` "
            "holds the maintenance lock in PostgreSQL); nothing was changed, try again when it has finished\n",
            what, what);
    return MAINT_EXIT_BUSY;
}

static const char *repo_error(int rc)
{
    return rc == BERR_NAME_UNKNOWN                 ? "no such repository"
           : rc == BERR_LIFECYCLE_POLICY_NOT_FOUND ? "the repository has no lifecycle policy"
                                                   : "cannot access the database";
}

static int lifecycle_put_cmd(struct db *db, const char *repo, const char *file)
{
    char msg[LIFECYCLE_MSG_MAX];
    size_t len;
    /* UTF-8 is at most 4 bytes a character: anything longer is over the limit in any case */
    char *json = slurp(file, (size_t)LIFECYCLE_POLICY_MAX * 4, &len);
    int rc;
    if (json == NULL) {
        fprintf(stderr, "berth: cannot read %s (or it is longer than %d characters)\n", file, LIFECYCLE_POLICY_MAX);
        return 1;
    }
    if ((rc = db_begin(db)) == 0) {
        rc = lifecycle_policy_put(db, repo, json, len, msg, sizeof(msg));
        if (rc == 0)
            rc = db_commit(db);
        else
            db_rollback(db);
    }
    free(json);
    if (rc == BERR_LIFECYCLE_POLICY_INVALID) {
        fprintf(stderr, "berth: InvalidParameterException: %s\n", msg);
        return 1;
    }
    if (rc != 0) {
        fprintf(stderr, "berth: %s\n", repo_error(rc));
        return 1;
    }
    printf("set the lifecycle policy of %s\n", repo);
    return 0;
}

static int lifecycle_get_cmd(struct db *db, const char *repo, int del)
{
    char *json = NULL, when[32];
    int64_t updated = 0;
    int rc;
    if (del) {
        if ((rc = db_begin(db)) == 0) {
            rc = lifecycle_policy_delete(db, repo, &json, &updated);
            if (rc == 0)
                rc = db_commit(db);
            else
                db_rollback(db);
        }
    } else {
        rc = lifecycle_policy_get(db, repo, &json, &updated);
    }
    if (rc != 0) {
        fprintf(stderr, "berth: %s\n", repo_error(rc));
        return 1;
    }
    fmt_time(updated, when, sizeof(when));
    if (del)
        printf("deleted the lifecycle policy of %s (set %s)\n", repo, when);
    else
        printf("%s\n", json);
    free(json);
    return 0;
}

static int print_expired(void *ctx, const struct lifecycle_expired *e)
{
    (void)ctx;
    printf("%s %s ", e->repo, e->digest);
    for (size_t i = 0; i < e->ntags; i++)
        printf("%s%s", i ? "," : "", e->tags[i]);
    if (e->with != NULL)
        printf("%s with:%s\n", e->ntags ? "" : "-", e->with);
    else if (e->rule == LIFECYCLE_PRIORITY_RETENTION)
        printf("%s untagged_retention\n", e->ntags ? "" : "-");
    else
        printf("%s %lld\n", e->ntags ? "" : "-", e->rule);
    return 0;
}

static int lifecycle_run_cmd(struct db *db, const struct mopts *o)
{
    struct lifecycle_run_opts ro = {
        .repo = o->repo, .as_of = db_now(), .untagged_retention = o->cfg.untagged_retention, .dry_run = o->dry_run};
    struct lifecycle_stats st;
    int rc;
    if (o->as_of != NULL && parse_rfc3339(o->as_of, &ro.as_of) != 0) {
        fprintf(stderr, "berth: invalid --as-of '%s' (want RFC 3339, e.g. 2026-01-31T12:00:00Z)\n", o->as_of);
        return 2;
    }
    if (!o->dry_run && (rc = maint_lock_or_explain(db, "lifecycle run")) != 0)
        return rc;
    rc = lifecycle_run(db, &ro, print_expired, NULL, &st);
    if (!o->dry_run)
        db_maint_unlock(db);
    if (rc != 0) {
        fprintf(stderr, "berth: lifecycle: %s\n", repo_error(rc));
        return 1;
    }
    fprintf(stderr,
            "lifecycle: %lld repositories, %lld images evaluated, %lld %s, %lld children/referrers with them, "
            "%lld kept because they changed meanwhile\n",
            st.repos, st.images, st.expired, o->dry_run ? "would expire" : "expired", st.with, st.skipped);
    return 0;
}

static int cmd_lifecycle(struct db *db, const struct mopts *o)
{
    const char *verb = o->nargs > 0 ? o->args[0] : "";
    if (strcmp(verb, "put") == 0 && o->nargs == 3)
        return lifecycle_put_cmd(db, o->args[1], o->args[2]);
    if ((strcmp(verb, "get") == 0 || strcmp(verb, "delete") == 0) && o->nargs == 2)
        return lifecycle_get_cmd(db, o->args[1], verb[0] == 'd');
    if (strcmp(verb, "run") == 0 && o->nargs == 1)
        return lifecycle_run_cmd(db, o);
    fputs(usage, stderr);
    return 2;
}

/* ---- berth gc ---- */

static void gc_progress(void *ctx, const struct gc_stats *s)
{
    (void)ctx;
    if (isatty(STDERR_FILENO))
        fprintf(stderr, "\rgc: examined %lld links, %lld blobs; reclaimed %.1f MiB   ", s->links_examined,
                s->blobs_examined, (double)s->bytes_reclaimed / (1 << 20));
}

static int cmd_gc(struct db *db, const struct mopts *o)
{
    struct blobstore bs;
    struct gc_opts go = {.now = db_now(), .grace = o->cfg.gc_grace, .dry_run = o->dry_run};
    struct gc_stats s;
    char err[512];
    int rc;
    if (o->nargs != 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (config_blobstore(&o->cfg.st, o->cfg.data, &bs, err, sizeof(err)) != 0) { /* disk, or the S3 bucket */
        fprintf(stderr, "berth: %s\n", err);
        return 2;
    }
    if (!o->dry_run && (rc = maint_lock_or_explain(db, "gc")) != 0) {
        blobstore_release(&bs);
        return rc;
    }
    rc = gc_run(db, &bs, &go, gc_progress, NULL, &s);
    if (!o->dry_run)
        db_maint_unlock(db);
    blobstore_release(&bs);
    if (isatty(STDERR_FILENO))
        fputc('\n', stderr);
    printf("gc: %s %lld of %lld links, %lld of %lld blobs (%lld bytes); removed %lld files (%lld without rows)\n",
           o->dry_run ? "would prune" : "pruned", s.links_pruned, s.links_examined, s.blobs_deleted, s.blobs_examined,
           s.bytes_reclaimed, s.files_unlinked, s.orphan_files);
    if (rc != 0) {
        fprintf(stderr, "berth: gc stopped: %s\n", berr_message(rc));
        return 1;
    }
    return 0;
}

/* ---- berth fsck ---- */

struct fsck_ctx {
    struct timespec start;
};

static void fsck_finding(void *ctx, const char *kind, const char *what, const char *detail)
{
    (void)ctx;
    if (isatty(STDERR_FILENO))
        fputs("\r\033[K", stderr);
    printf("%s %s %s\n", kind, what, detail);
    fflush(stdout);
}

static void fsck_progress(void *ctx, const struct fsck_stats *s)
{
    struct fsck_ctx *f = ctx;
    struct timespec now;
    double secs;
    if (!isatty(STDERR_FILENO))
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    secs = (double)(now.tv_sec - f->start.tv_sec) + (double)(now.tv_nsec - f->start.tv_nsec) / 1e9;
    fprintf(stderr, "\rfsck: %lld files, %.1f MiB, %.1f MiB/s   ", s->files, (double)s->bytes / (1 << 20),
            secs > 0 ? (double)s->bytes / (1 << 20) / secs : 0.0);
}

static int cmd_fsck(struct db *db, const struct mopts *o)
{
    struct blobstore bs;
    struct fsck_ctx f;
    struct fsck_stats s;
    int rc;
    char err[512];
    if (o->nargs != 0) {
        fputs(usage, stderr);
        return 2;
    }
    if (config_blobstore(&o->cfg.st, o->cfg.data, &bs, err, sizeof(err)) != 0) { /* disk, or the S3 bucket */
        fprintf(stderr, "berth: %s\n", err);
        return 2;
    }
    clock_gettime(CLOCK_MONOTONIC, &f.start);
    rc = fsck_run(db, &bs, o->repair, db_now(), fsck_finding, fsck_progress, &f, &s);
    blobstore_release(&bs);
    if (isatty(STDERR_FILENO))
        fputc('\n', stderr);
    printf("fsck: %lld files, %lld bytes re-hashed, %lld findings%s", s.files, s.bytes, s.findings,
           o->repair ? "" : "\n");
    if (o->repair)
        printf(", %lld repaired\n", s.repaired);
    if (rc != 0) {
        fprintf(stderr, "berth: fsck could not finish: %s\n", berr_message(rc));
        return 2;
    }
    return s.findings == 0 ? 0 : 1;
}

int maint_main(int argc, char **argv)
{
    struct mopts o;
    struct db *db;
    int rc = parse_mopts(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if ((db = cli_open_registry(&o.cfg)) == NULL)
        return 1;
    if (strcmp(argv[0], "lifecycle") == 0)
        rc = cmd_lifecycle(db, &o);
    else if (strcmp(argv[0], "gc") == 0)
        rc = cmd_gc(db, &o);
    else
        rc = cmd_fsck(db, &o);
    db_close(db);
    return rc;
}

/* ---- the scheduler inside `berth serve` ---- */

static struct {
    struct config cfg;
    atomic_int *stopping;
    pthread_t tid;
    int started;
} sched;

/* Sleeps `secs` seconds, waking early when the server stops.  Returns 1 if it is stopping. */
static int nap(long long secs)
{
    for (long long i = 0; i < secs * 10 && !atomic_load(sched.stopping); i++)
        usleep(100000);
    return atomic_load(sched.stopping);
}

/* One lifecycle run followed by one GC, on connection `db`. */
static void maintain(struct db *db, const struct blobstore *bs)
{
    struct lifecycle_run_opts ro = {.as_of = db_now(), .untagged_retention = sched.cfg.untagged_retention};
    struct lifecycle_stats ls;
    struct gc_opts go = {.now = db_now(), .grace = sched.cfg.gc_grace};
    struct gc_stats gs;
    long long t0;
    unsigned session;
    int rc;
    if (!db_maint_trylock(db)) { /* metadata = postgresql: another node is running them now */
        metrics_add(METRIC_MAINT_SKIPPED, 1);
        log_debug("lifecycle/gc: another node holds the maintenance lock; skipped");
        return;
    }
    session = db_session(db);
    t0 = events_now_ms();
    if (db_is_pg(db)) /* the run's window, to see that nodes take turns (e2e_twonode reads it) */
        log_info("lifecycle/gc: maintenance lock taken at %lld ms", t0);
    rc = lifecycle_run(db, &ro, NULL, NULL, &ls);
    metrics_add(METRIC_LIFECYCLE_RUNS, 1);
    metrics_add(METRIC_LIFECYCLE_EXPIRED, ls.expired + ls.with); /* counted after each commit: exact on failure too */
    if (rc != 0)
        log_warn("lifecycle run failed: %s", berr_message(rc));
    else if (ls.expired > 0 || ls.skipped > 0)
        log_info("lifecycle: expired %lld images (+%lld children/referrers) in %lld repositories, %lld kept "
                 "because they changed",
                 ls.expired, ls.with, ls.repos, ls.skipped);
    go.now = db_now();
    if (db_session(db) != session) { /* reconnected: the lock went with the lost session */
        log_warn("lifecycle/gc: the database session holding the maintenance lock was lost; %s, GC skipped "
                 "this round",
                 rc == 0 ? "its lifecycle run had finished" : "its lifecycle run stopped");
        db_maint_unlock(db); /* forgets the lock (nothing to release) */
        return;
    }
    rc = gc_run(db, bs, &go, NULL, NULL, &gs);
    if (db_session(db) != session)
        log_warn("lifecycle/gc: the database session holding the maintenance lock was lost during GC; it stopped "
                 "at its next batch");
    else if (db_is_pg(db)) {
        long long t1 = events_now_ms();
        log_info("lifecycle/gc: done at %lld ms after %lld ms; releasing the maintenance lock", t1, t1 - t0);
    }
    db_maint_unlock(db);
    metrics_add(METRIC_GC_RUNS, 1);
    if (rc != 0) {
        log_warn("gc failed: %s", berr_message(rc));
        return; /* its stats may count a batch that rolled back: not added */
    }
    metrics_add(METRIC_GC_BLOBS_DELETED, gs.blobs_deleted);
    metrics_add(METRIC_GC_BYTES_RECLAIMED, gs.bytes_reclaimed);
    if (gs.blobs_deleted > 0 || gs.links_pruned > 0 || gs.files_unlinked > 0)
        log_info("gc: pruned %lld links, deleted %lld blobs (%lld bytes), removed %lld files", gs.links_pruned,
                 gs.blobs_deleted, gs.bytes_reclaimed, gs.files_unlinked);
}

static void *sched_main(void *unused)
{
    struct blobstore bs;
    struct db *db = NULL;
    long long unlinked = 0, first;
    char err[512];
    (void)unused;
    if (config_blobstore(&sched.cfg.st, sched.cfg.data, &bs, err, sizeof(err)) != 0 ||
        db_open(sched.cfg.data, &db) != 0) {
        log_error("lifecycle/gc scheduler: cannot open the data directory; no automatic cleanup");
        blobstore_release(&bs);
        return NULL;
    }
    if (gc_finish_pending(db, &bs, &unlinked) == 0 && unlinked > 0)
        log_info("gc: finished %lld file removals an interrupted GC left", unlinked);
    first = sched.cfg.lifecycle_interval < BERTH_LIFECYCLE_FIRST_DELAY ? sched.cfg.lifecycle_interval
                                                                       : BERTH_LIFECYCLE_FIRST_DELAY;
    if (sched.cfg.lifecycle_interval > 0 && !nap(first))
        do
            maintain(db, &bs);
        while (!nap(sched.cfg.lifecycle_interval));
    db_close(db);
    blobstore_release(&bs);
    return NULL;
}

static int maint_init(struct server *srv)
{
    sched.cfg = srv->cfg;
    sched.stopping = &srv->stopping;
    if (pthread_create(&sched.tid, NULL, sched_main, NULL) != 0) {
        log_warn("cannot start the lifecycle/gc scheduler");
        return 0; /* serving without automatic cleanup beats not serving */
    }
    sched.started = 1;
    return 0;
}

static void maint_stop(struct server *srv)
{
    (void)srv;
    if (sched.started)
        pthread_join(sched.tid, NULL);
    sched.started = 0;
}

const struct module maint_module = {.name = "maint", .init = maint_init, .stop = maint_stop};
