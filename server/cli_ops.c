/* cli_ops.c - `berth quota set|list|del` and `berth events tail [--follow]` (cli_ops.h). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli.h"
#include "cli_ops.h"
#include "config.h"
#include "db.h"
#include "authdb.h"
#include "err.h"
#include "events.h"
#include "quota.h"

#define TAIL_DEFAULT 20       /* events `berth events tail` prints without -n */
#define TAIL_MAX 100000       /* most events -n may ask for */
#define FOLLOW_POLL_US 500000 /* --follow: how often new events are looked for */

static const char usage[] =
    "usage:\n"
    "  berth quota set PATTERN SIZE   limit the blobs linked by the repositories PATTERN matches (SIZE: bytes,\n"
    "                                 or with K, M, G, T suffixes, powers of 1024)\n"
    "  berth quota list               every quota with its usage\n"
    "  berth quota del PATTERN\n"
    "  berth events tail [-n N] [--follow] [--json] [--action LIST] [--repository PATTERN]\n"
    "                                 the last N events (default 20); --follow waits for new ones; --json prints\n"
    "                                 each as the webhook envelope's event object, one per line; --action\n"
    "                                 (push,pull,delete,tag,expire,gc) and --repository keep only those\n"
    "\n"
    "  PATTERN: a repository name, or one with * wildcards ('team/*'); * also matches '/'.\n"
    "  Usage counts each blob once per repository that links it (as `docker push` sees it).\n"
    "\n"
    "options:\n"
    "  --data DIR      data directory (default " BERTH_DEFAULT_DATA "); must exist\n"
    "  --config FILE   read settings (data = …) from FILE\n";

struct opts {
    struct config cfg;
    int follow, json;
    unsigned actions;       /* EVENT_BIT_* shown */
    const char *repository; /* pattern shown, or NULL */
    long tail;
    char **args;
    int nargs;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"follow", no_argument, NULL, 'f'},
        {"json", no_argument, NULL, 'j'},
        {"lines", required_argument, NULL, 'n'},
        {"action", required_argument, NULL, 'a'},
        {"repository", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *config_file = NULL;
    char *end;
    int c;
    memset(o, 0, sizeof(*o));
    config_defaults(&o->cfg);
    o->tail = TAIL_DEFAULT;
    o->actions = EVENT_BITS_ALL;
    optind = 1;
    while ((c = getopt_long(argc, argv, "hfn:", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'f':
            o->follow = 1;
            break;
        case 'j':
            o->json = 1;
            break;
        case 'a':
            if (events_parse_actions(optarg, &o->actions) != 0) {
                fprintf(stderr, "berth: --action wants a list of push, pull, delete, tag, expire, gc\n");
                return 2;
            }
            break;
        case 'r':
            if (authdb_pattern_valid(optarg) != 0) {
                fprintf(stderr, "berth: --repository wants a repository name or pattern ('team/*')\n");
                return 2;
            }
            o->repository = optarg;
            break;
        case 'n':
            errno = 0;
            o->tail = strtol(optarg, &end, 10);
            if (errno != 0 || *end != '\0' || o->tail < 0 || o->tail > TAIL_MAX) {
                fprintf(stderr, "berth: -n wants 0 to %d\n", TAIL_MAX);
                return 2;
            }
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
    o->args = argv + optind;
    o->nargs = argc - optind;
    return 0;
}

/* ---- quota ---- */

static int print_quota(void *ctx, const char *pattern, int64_t limit, int64_t used)
{
    char l[32], u[32];
    (void)ctx;
    quota_format_size(limit, l, sizeof(l));
    quota_format_size(used, u, sizeof(u));
    printf("%-40s %12s %12s %5.1f%%  (%" PRId64 " / %" PRId64 " bytes)\n", pattern, u, l,
           limit > 0 ? 100.0 * (double)used / (double)limit : 0.0, used, limit);
    return 0;
}

static int in_tx(struct db *db, int set, const char *pattern, int64_t limit)
{
    int rc = db_begin(db);
    if (rc != 0)
        return rc;
    rc = set ? quota_set(db, pattern, limit) : quota_del(db, pattern);
    if (rc == 0)
        rc = db_commit(db);
    else
        db_rollback(db);
    return rc;
}

static int cmd_quota(struct db *db, struct opts *o)
{
    const char *verb = o->args[0];
    int64_t limit = 0;
    int rc;
    char l[32];
    if (strcmp(verb, "list") == 0 && o->nargs == 1) {
        printf("%-40s %12s %12s %6s\n", "PATTERN", "USED", "LIMIT", "USE");
        return quota_each(db, print_quota, NULL) == 0 ? 0 : 1;
    }
    if (strcmp(verb, "set") == 0 && o->nargs == 3) {
        uint64_t size;
        if (config_size(o->args[2], &size) != 0 || size > (uint64_t)INT64_MAX) {
            fprintf(stderr, "berth: invalid SIZE '%s' (want bytes, or e.g. 500M, 10G)\n", o->args[2]);
            return 2;
        }
        limit = (int64_t)size;
        if ((rc = in_tx(db, 1, o->args[1], limit)) != 0) {
            fprintf(stderr, "berth: %s\n",
                    rc == BERR_BAD_REQUEST ? "invalid PATTERN (want a repository name, '*' allowed: 'team/*')"
                                           : "cannot store the quota");
            return rc == BERR_BAD_REQUEST ? 2 : 1;
        }
        quota_format_size(limit, l, sizeof(l));
        printf("quota of %s set to %s (%" PRId64 " bytes)\n", o->args[1], l, limit);
        return 0;
    }
    if (strcmp(verb, "del") == 0 && o->nargs == 2) {
        if ((rc = in_tx(db, 0, o->args[1], 0)) != 0) {
            fprintf(stderr, "berth: %s\n", rc == BERR_NOT_FOUND ? "no such quota" : "cannot delete the quota");
            return 1;
        }
        printf("deleted the quota of %s\n", o->args[1]);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}

/* ---- events ---- */

struct tail {
    struct opts *o;
    int64_t last;
};

static int print_event(void *ctx, const struct event_row *r)
{
    struct tail *t = ctx;
    const struct event *ev = &r->ev;
    char ts[40];
    t->last = r->id;
    if ((events_action_bit(ev->action) & t->o->actions) == 0 ||
        (t->o->repository != NULL && !authdb_pattern_match(t->o->repository, ev->repository)))
        return 0;
    if (t->o->json) {
        json_t *j = events_json(r, NULL, NULL);
        char *s = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
        if (s != NULL)
            printf("%s\n", s);
        free(s);
        json_decref(j);
        return 0;
    }
    events_format_time(r->at_ms, ts, sizeof(ts));
    printf("%s %-6s %s%s%s%s%s", ts, ev->action, ev->repository, ev->tag ? ":" : "", ev->tag ? ev->tag : "",
           ev->digest ? "@" : "", ev->digest ? ev->digest : "");
    if (ev->previous != NULL)
        printf(" (was %s)", ev->previous);
    if (ev->size >= 0)
        printf(" %" PRId64 " B", ev->size);
    printf(" by %s", r->from.actor[0] ? r->from.actor : "-");
    if (r->from.addr[0])
        printf(" from %s", r->from.addr);
    printf("\n");
    return 0;
}

static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
    (void)sig;
    interrupted = 1;
}

static int cmd_events(struct db *db, struct opts *o)
{
    struct tail t = {.o = o};
    int64_t last;
    if (strcmp(o->args[0], "tail") != 0 || o->nargs != 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (events_last_id(db, &last) != 0)
        return 1;
    t.last = last > o->tail ? last - o->tail : 0; /* ids only grow; pruned ones are simply absent */
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    do {
        if (events_each(db, t.last, TAIL_MAX, print_event, &t) != 0)
            return 1;
        fflush(stdout);
        if (o->follow && !interrupted)
            usleep(FOLLOW_POLL_US);
    } while (o->follow && !interrupted);
    return 0;
}

int cli_ops_main(int argc, char **argv)
{
    struct opts *o = malloc(sizeof(*o));
    struct db *db;
    int rc;
    if (o == NULL)
        return 1;
    rc = parse_opts(argc, argv, o);
    if (rc != 0 || o->nargs < 1) {
        if (rc == 0)
            fputs(usage, stderr);
        free(o);
        return rc == 1 ? 0 : (rc == 0 ? 2 : rc);
    }
    if ((db = cli_open_registry(&o->cfg)) == NULL) {
        free(o);
        return 1;
    }
    rc = strcmp(argv[0], "quota") == 0 ? cmd_quota(db, o) : cmd_events(db, o);
    db_close(db);
    free(o);
    return rc;
}
