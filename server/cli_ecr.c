/* cli_ecr.c - `berth accesskey …` and `berth repo …`: ECR access keys and explicit repositories (see cli.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sodium.h>
#include "accesskey.h"
#include "blobstore.h"
#include "cli.h"
#include "config.h"
#include "db.h"
#include "ecrdb.h"
#include "err.h"
#include "names.h"

static const char usage[] =
    "usage:\n"
    "  berth accesskey create --user NAME [--description TEXT]   (prints the secret once)\n"
    "  berth accesskey list [--user NAME]\n"
    "  berth accesskey revoke ID\n"
    "  berth repo create NAME [--immutable]\n"
    "  berth repo delete NAME [--force]   (without --force only an empty repository)\n"
    "  berth repo list\n"
    "\n"
    "  An access key signs ECR API requests (aws ecr …, boto3) as its user, with that user's grants:\n"
    "    export AWS_ACCESS_KEY_ID=… AWS_SECRET_ACCESS_KEY=…; aws ecr describe-repositories --endpoint-url URL\n"
    "\n"
    "options (every subcommand):\n"
    "  --data DIR      data directory (default " BERTH_DEFAULT_DATA "); it must exist\n"
    "  --config FILE   read settings (data = …) from FILE\n";

struct ecr_opts {
    struct config cfg;
    const char *user, *description;
    int force, immutable;
    char **args;
    int nargs;
};

static int parse(int argc, char **argv, struct ecr_opts *o)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'}, {"config", required_argument, NULL, 'c'},
        {"user", required_argument, NULL, 'u'}, {"description", required_argument, NULL, 'D'},
        {"force", no_argument, NULL, 'f'},      {"immutable", no_argument, NULL, 'I'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *config_file = NULL;
    int c;
    memset(o, 0, sizeof(*o));
    config_defaults(&o->cfg);
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'd')
            data = optarg;
        else if (c == 'c')
            config_file = optarg;
        else if (c == 'u')
            o->user = optarg;
        else if (c == 'D')
            o->description = optarg;
        else if (c == 'f')
            o->force = 1;
        else if (c == 'I')
            o->immutable = 1;
        else if (c == 'h') {
            fputs(usage, stdout);
            return 1;
        } else {
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

static void fmt_time(long long t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* ---- accesskey ---- */

static int print_key(void *ctx, const struct accesskey *k)
{
    char created[32], revoked[32] = "-";
    (void)ctx;
    fmt_time(k->created_at, created, sizeof(created));
    if (k->revoked_at != 0)
        fmt_time(k->revoked_at, revoked, sizeof(revoked));
    printf("%-20s %-24s %-20s %-20s %s\n", k->id, k->user, created, revoked, k->description);
    return 0;
}

static int key_create(struct db *db, struct ecr_opts *o)
{
    unsigned char box[ACCESSKEY_BOXKEY_BYTES];
    char secret[ACCESSKEY_SECRET_LEN + 1];
    struct accesskey k;
    int rc;
    if (o->user == NULL) {
        fputs("berth: accesskey create needs --user NAME\n", stderr);
        return 2;
    }
    if (accesskey_boxkey_load(o->cfg.data, 1, box) != 0) {
        fprintf(stderr, "berth: cannot read or create %s/keys/%s\n", o->cfg.data, ACCESSKEY_BOXKEY_FILE);
        return 1;
    }
    if ((rc = db_begin(db)) == 0 && (rc = accesskey_create(db, box, o->user, o->description, &k, secret)) == 0)
        rc = db_commit(db);
    else if (rc != BERR_DB)
        db_rollback(db);
    sodium_memzero(box, sizeof(box));
    if (rc == BERR_NOT_FOUND)
        fprintf(stderr, "berth: no user '%s' (create it with: berth user add %s)\n", o->user, o->user);
    else if (rc == BERR_BAD_REQUEST)
        fprintf(stderr, "berth: the description must be at most %d printable characters\n", ACCESSKEY_DESC_MAX);
    else if (rc != 0)
        fprintf(stderr, "berth: cannot create the access key: %s\n", berr_message(rc));
    if (rc != 0)
        return 1;
    printf("created access key %s for user %s (the secret is shown only now)\n", k.id, k.user);
    printf("AWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n", k.id, secret);
    sodium_memzero(secret, sizeof(secret));
    return 0;
}

static int cmd_accesskey(struct db *db, struct ecr_opts *o)
{
    const char *verb = o->args[0];
    int rc;
    if (strcmp(verb, "create") == 0 && o->nargs == 1)
        return key_create(db, o);
    if (strcmp(verb, "list") == 0 && o->nargs == 1) {
        printf("%-20s %-24s %-20s %-20s %s\n", "ID", "USER", "CREATED", "REVOKED", "DESCRIPTION");
        return accesskey_each(db, o->user, print_key, NULL) == 0 ? 0 : 1;
    }
    if (strcmp(verb, "revoke") == 0 && o->nargs == 2) {
        if ((rc = db_begin(db)) == 0 && (rc = accesskey_revoke(db, o->args[1])) == 0)
            rc = db_commit(db);
        else if (rc != BERR_DB)
            db_rollback(db);
        if (rc == BERR_NOT_FOUND)
            fprintf(stderr, "berth: no live access key '%s'\n", o->args[1]);
        else if (rc == 0)
            printf("revoked access key %s\n", o->args[1]);
        return rc == 0 ? 0 : 1;
    }
    fputs(usage, stderr);
    return 2;
}

/* ---- repo ---- */

static int print_repo(void *ctx, const struct ecrdb_repo *r)
{
    char created[32];
    (void)ctx;
    fmt_time(r->created_at, created, sizeof(created));
    printf("%-40s %-26s %s\n", r->name, r->mutability, created);
    return 0;
}

static int repo_write(struct db *db, struct ecr_opts *o, int create)
{
    const char *name = o->args[1];
    struct ecrdb_repo r;
    int images = 0, rc;
    if (names_repo_valid(name, strlen(name)) != 0) {
        fprintf(stderr, "berth: invalid repository name '%s'\n", name);
        return 2;
    }
    if ((rc = db_begin(db)) != 0)
        return 1;
    rc = create ? ecrdb_repo_create(db, name, o->immutable ? "IMMUTABLE" : "MUTABLE", NULL, &r)
                : ecrdb_repo_delete(db, name, o->force, &r, &images);
    if (rc == 0)
        rc = db_commit(db);
    else
        db_rollback(db);
    if (rc == ECRDB_EXISTS)
        fprintf(stderr, "berth: repository '%s' already exists\n", name);
    else if (rc == BERR_NAME_UNKNOWN)
        fprintf(stderr, "berth: no repository '%s'\n", name);
    else if (rc == ECRDB_NOT_EMPTY)
        fprintf(stderr, "berth: repository '%s' holds %d images; use --force to delete it with them\n", name, images);
    else if (rc != 0)
        fprintf(stderr, "berth: %s\n", berr_message(rc));
    else if (create)
        printf("created repository %s (%s)\n", name, r.mutability);
    else
        printf("deleted repository %s (%d images)\n", name, images);
    return rc == 0 ? 0 : 1;
}

static int cmd_repo(struct db *db, struct ecr_opts *o)
{
    const char *verb = o->args[0];
    int more = 0;
    if ((strcmp(verb, "create") == 0 || strcmp(verb, "delete") == 0) && o->nargs == 2)
        return repo_write(db, o, strcmp(verb, "create") == 0);
    if (strcmp(verb, "list") == 0 && o->nargs == 1) {
        printf("%-40s %-26s %s\n", "NAME", "TAG MUTABILITY", "CREATED");
        return ecrdb_repos_each(db, NULL, INT32_MAX - 1, print_repo, NULL, &more) == 0 ? 0 : 1;
    }
    fputs(usage, stderr);
    return 2;
}

int cli_ecr_main(int argc, char **argv)
{
    struct ecr_opts o;
    struct db *db;
    int rc = parse(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.nargs < 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (sodium_init() < 0 || (db = cli_open_registry(&o.cfg)) == NULL)
        return 1;
    rc = strcmp(argv[0], "accesskey") == 0 ? cmd_accesskey(db, &o) : cmd_repo(db, &o);
    db_close(db);
    return rc;
}
