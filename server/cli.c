/* cli.c - `berth user|token|grant`: administering users, robot tokens and grants in berth.db (see cli.h). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <sodium.h>
#include "authdb.h"
#include "blobstore.h"
#include "cli.h"
#include "config.h"
#include "db.h"
#include "err.h"
#include "jwt.h"

static const char usage[] =
    "usage:\n"
    "  berth user add NAME [--admin] [--password-stdin]   (without --password-stdin a password is generated;\n"
    "                                                      one given must have at least 12 characters)\n"
    "  berth user passwd NAME [--password-stdin]\n"
    "  berth user del NAME\n"
    "  berth user list\n"
    "  berth token create --name NAME --scope 'repository:PATTERN:ACTIONS'... [--ttl 30d|12h|never]\n"
    "  berth token revoke NAME\n"
    "  berth token list\n"
    "  berth token rotate-key        (new token-signing key; the previous one stays valid for verification)\n"
    "  berth grant add (user:NAME|token:NAME|anonymous) ACTIONS PATTERN\n"
    "  berth grant del (user:NAME|token:NAME|anonymous) PATTERN\n"
    "  berth grant list [SUBJECT]\n"
    "\n"
    "  ACTIONS: comma-separated pull, push, delete, admin (admin = all three on PATTERN); anonymous: pull only.\n"
    "  PATTERN: a repository name, or one with * wildcards ('team/*', '*'); * also matches '/'.\n"
    "  A robot token logs in as its NAME with its secret as the password (docker login, skopeo --creds).\n"
    "\n"
    "options (every subcommand):\n"
    "  --data DIR      data directory (default " BERTH_DEFAULT_DATA "); must exist (only `berth serve` creates it)\n"
    "  --config FILE   read settings (data = …) from FILE\n";

struct opts {
    struct config cfg;
    int admin, password_stdin;
    const char *name, *ttl;
    const char *scopes[BERTH_AUTH_SCOPES_MAX];
    int nscopes;
    char **args; /* positional arguments after the verb */
    int nargs;
};

static int parse_opts(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"data", required_argument, NULL, 'd'},
        {"config", required_argument, NULL, 'c'},
        {"admin", no_argument, NULL, 'A'},
        {"password-stdin", no_argument, NULL, 'P'},
        {"name", required_argument, NULL, 'n'},
        {"scope", required_argument, NULL, 's'},
        {"ttl", required_argument, NULL, 't'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *data = NULL, *config_file = NULL;
    int c;
    memset(o, 0, sizeof(*o));
    config_defaults(&o->cfg);
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'd':
            data = optarg;
            break;
        case 'c':
            config_file = optarg;
            break;
        case 'A':
            o->admin = 1;
            break;
        case 'P':
            o->password_stdin = 1;
            break;
        case 'n':
            o->name = optarg;
            break;
        case 's':
            if (o->nscopes == BERTH_AUTH_SCOPES_MAX) {
                fprintf(stderr, "berth: at most %d --scope options\n", BERTH_AUTH_SCOPES_MAX);
                return 2;
            }
            o->scopes[o->nscopes++] = optarg;
            break;
        case 't':
            o->ttl = optarg;
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

/* Reads one line (the password) from stdin, without its newline.  Returns 0 or -1. */
static int read_password(char *out, size_t size)
{
    size_t n;
    if (fgets(out, (int)size, stdin) == NULL)
        return -1;
    n = strcspn(out, "\r\n");
    if (out[n] == '\0' && n == size - 1)
        return -1; /* too long */
    out[n] = '\0';
    return n > 0 ? 0 : -1;
}

/* Parses "30d", "12h", "90m", "3600s", "3600", "0" or "never" (no expiry) into seconds.  Returns 0 or -1. */
static int parse_ttl(const char *s, long long *out)
{
    char *end;
    long long n, mul = 1;
    if (strcmp(s, "never") == 0) {
        *out = 0;
        return 0;
    }
    n = strtoll(s, &end, 10);
    if (end == s || n < 0)
        return -1;
    switch (*end) {
    case 'w':
        mul = 7 * 86400;
        break;
    case 'd':
        mul = 86400;
        break;
    case 'h':
        mul = 3600;
        break;
    case 'm':
        mul = 60;
        break;
    case 's':
    case '\0':
        break;
    default:
        return -1;
    }
    if (*end != '\0' && end[1] != '\0')
        return -1;
    if (n > 100LL * 365 * 86400 / mul)
        return -1;
    *out = n * mul;
    return 0;
}

static void fmt_time(long long t, char *out, size_t size)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (t == 0) {
        snprintf(out, size, "never");
        return;
    }
    gmtime_r(&tt, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Runs `fn` inside one write transaction.  Returns fn's result (rolled back unless 0). */
static int in_tx(struct db *db, int (*fn)(struct db *, struct opts *, void *), struct opts *o, void *arg)
{
    int rc = db_begin(db);
    if (rc != 0)
        return rc;
    if ((rc = fn(db, o, arg)) == 0)
        rc = db_commit(db);
    else
        db_rollback(db);
    return rc;
}

/* ---- user ---- */

static int print_user(void *ctx, const struct authdb_user *u)
{
    char when[32];
    (void)ctx;
    fmt_time(u->created_at, when, sizeof(when));
    printf("%-24s %-6s %s\n", u->name, u->is_admin ? "admin" : "-", when);
    return 0;
}

static int user_add_tx(struct db *db, struct opts *o, void *pw)
{
    return authdb_user_add(db, o->args[1], pw, o->admin);
}

static int user_passwd_tx(struct db *db, struct opts *o, void *pw)
{
    return authdb_user_passwd(db, o->args[1], pw);
}

static int user_del_tx(struct db *db, struct opts *o, void *unused)
{
    (void)unused;
    return authdb_user_del(db, o->args[1]);
}

static int cmd_user(struct db *db, struct opts *o)
{
    const char *verb = o->args[0];
    char pw[BERTH_AUTH_PASSWORD_MAX + 2];
    int rc, generated = 0;
    if (strcmp(verb, "list") == 0 && o->nargs == 1) {
        printf("%-24s %-6s %s\n", "NAME", "ROLE", "CREATED");
        return authdb_users_each(db, print_user, NULL) == 0 ? 0 : 1;
    }
    if (o->nargs != 2)
        goto usage;
    if (strcmp(verb, "del") == 0) {
        if ((rc = in_tx(db, user_del_tx, o, NULL)) != 0) {
            fprintf(stderr, "berth: %s\n", rc == BERR_NOT_FOUND ? "no such user" : "cannot delete the user");
            return 1;
        }
        printf("deleted user %s and its grants\n", o->args[1]);
        return 0;
    }
    if (strcmp(verb, "add") != 0 && strcmp(verb, "passwd") != 0)
        goto usage;
    if (o->password_stdin) {
        if (read_password(pw, sizeof(pw)) != 0) {
            fprintf(stderr, "berth: expected a password (1 to %d bytes) on stdin\n", BERTH_AUTH_PASSWORD_MAX);
            return 2;
        }
        if (strlen(pw) < BERTH_AUTH_PASSWORD_MIN) {
            fprintf(stderr,
                    "berth: a password needs at least %d characters (leave out --password-stdin for a generated "
                    "one)\n",
                    BERTH_AUTH_PASSWORD_MIN);
            sodium_memzero(pw, sizeof(pw));
            return 2;
        }
    } else {
        authdb_random_password(pw, sizeof(pw));
        generated = 1;
    }
    if (strcmp(verb, "add") == 0 && authdb_name_valid(o->args[1]) != 0) {
        fprintf(stderr, "berth: invalid user name (want [A-Za-z0-9][A-Za-z0-9._-]{0,63}; AWS is reserved)\n");
        rc = 2;
        goto out;
    }
    rc = in_tx(db, strcmp(verb, "add") == 0 ? user_add_tx : user_passwd_tx, o, pw);
    if (rc != 0) {
        fprintf(stderr, "berth: %s\n",
                rc == BERR_BAD_REQUEST ? "a user or token of that name already exists"
                : rc == BERR_NOT_FOUND ? "no such user"
                                       : "cannot store the user");
        rc = 1;
        goto out;
    }
    printf("%s user %s%s\n", strcmp(verb, "add") == 0 ? "added" : "changed the password of", o->args[1],
           o->admin ? " (admin)" : "");
    if (generated)
        printf("password (shown only this once): %s\n", pw);
out:
    sodium_memzero(pw, sizeof(pw));
    return rc;
usage:
    fputs(usage, stderr);
    return 2;
}

/* ---- token ---- */

struct scope {
    char pattern[BERTH_NAME_MAX + 1];
    unsigned actions;
};

/* Parses "repository:PATTERN:ACTIONS".  Returns 0 or -1. */
static int parse_scope(const char *s, struct scope *out)
{
    const char *c1 = strchr(s, ':'), *c2 = strrchr(s, ':');
    if (c1 == NULL || c2 == c1 || (size_t)(c1 - s) != strlen("repository") || strncmp(s, "repository", 10) != 0 ||
        (size_t)(c2 - c1 - 1) > BERTH_NAME_MAX)
        return -1;
    memcpy(out->pattern, c1 + 1, (size_t)(c2 - c1 - 1));
    out->pattern[c2 - c1 - 1] = '\0';
    return authdb_pattern_valid(out->pattern) == 0 && authdb_actions_parse(c2 + 1, &out->actions) == 0 ? 0 : -1;
}

struct token_args {
    long long ttl;
    struct scope scopes[BERTH_AUTH_SCOPES_MAX];
    char secret[AUTHDB_SECRET_MAX];
};

static int token_create_tx(struct db *db, struct opts *o, void *arg)
{
    struct token_args *a = arg;
    struct authdb_identity id = {.kind = AUTH_TOKEN};
    int rc = authdb_token_create(db, o->name, a->ttl, a->secret);
    snprintf(id.name, sizeof(id.name), "%s", o->name);
    for (int i = 0; rc == 0 && i < o->nscopes; i++)
        rc = authdb_grant_add(db, &id, a->scopes[i].actions, a->scopes[i].pattern);
    return rc;
}

static int token_revoke_tx(struct db *db, struct opts *o, void *unused)
{
    (void)unused;
    return authdb_token_revoke(db, o->args[1]);
}

static int print_scope(void *ctx, const struct authdb_grant *g)
{
    char acts[AUTH_ACTIONS_STR_MAX];
    authdb_actions_format(g->actions, acts, sizeof(acts));
    printf("%srepository:%s:%s", *(int *)ctx ? " " : "", g->pattern, acts);
    *(int *)ctx = 1;
    return 0;
}

static int print_token(void *ctx, const struct authdb_token *t)
{
    struct db *db = ctx;
    struct authdb_identity id = {.kind = AUTH_TOKEN};
    char created[32], expires[32];
    long long now = db_now();
    int any = 0;
    fmt_time(t->created_at, created, sizeof(created));
    fmt_time(t->expires_at, expires, sizeof(expires));
    printf("%-24s %-8s %-20s %-20s ", t->name,
           t->revoked_at                                ? "revoked"
           : t->expires_at != 0 && now >= t->expires_at ? "expired"
                                                        : "active",
           created, expires);
    snprintf(id.name, sizeof(id.name), "%s", t->name);
    if (!t->revoked_at)
        authdb_grants_each(db, &id, print_scope, &any);
    printf("%s\n", any ? "" : "-");
    return 0;
}

static int cmd_token(struct db *db, struct opts *o)
{
    const char *verb = o->args[0];
    struct token_args a = {.ttl = BERTH_TOKEN_DEFAULT_TTL};
    char expires[32];
    int rc;
    if (strcmp(verb, "list") == 0 && o->nargs == 1) {
        printf("%-24s %-8s %-20s %-20s %s\n", "NAME", "STATUS", "CREATED", "EXPIRES", "SCOPES");
        return authdb_tokens_each(db, print_token, db) == 0 ? 0 : 1;
    }
    if (strcmp(verb, "revoke") == 0 && o->nargs == 2) {
        if ((rc = in_tx(db, token_revoke_tx, o, NULL)) != 0) {
            fprintf(stderr, "berth: %s\n", rc == BERR_NOT_FOUND ? "no such live token" : "cannot revoke the token");
            return 1;
        }
        printf("revoked token %s\n", o->args[1]);
        return 0;
    }
    if (strcmp(verb, "rotate-key") == 0 && o->nargs == 1) {
        struct jwt_keyring kr;
        if (jwt_keys_load(o->cfg.data, 1, 0, &kr) != 0 || jwt_keys_rotate(o->cfg.data) != 0) {
            fprintf(stderr, "berth: cannot rotate the signing key in %s/keys\n", o->cfg.data);
            return 1;
        }
        sodium_memzero(&kr, sizeof(kr));
        printf("rotated the token-signing key; tokens signed by the previous key stay valid until they expire\n");
        return 0;
    }
    if (strcmp(verb, "create") != 0 || o->nargs != 1 || o->name == NULL)
        goto usage;
    if (authdb_name_valid(o->name) != 0) {
        fprintf(stderr, "berth: invalid token name (want [A-Za-z0-9][A-Za-z0-9._-]{0,63})\n");
        return 2;
    }
    if (o->nscopes == 0) {
        fprintf(stderr, "berth: a token needs at least one --scope 'repository:PATTERN:ACTIONS' (without one it "
                        "can do nothing)\n");
        return 2;
    }
    if (o->ttl != NULL && parse_ttl(o->ttl, &a.ttl) != 0) {
        fprintf(stderr, "berth: invalid --ttl '%s' (want e.g. 3600, 90m, 12h, 30d, 4w, never)\n", o->ttl);
        return 2;
    }
    for (int i = 0; i < o->nscopes; i++)
        if (parse_scope(o->scopes[i], &a.scopes[i]) != 0) {
            fprintf(stderr, "berth: invalid --scope '%s' (want repository:PATTERN:ACTIONS)\n", o->scopes[i]);
            return 2;
        }
    if ((rc = in_tx(db, token_create_tx, o, &a)) != 0) {
        fprintf(stderr, "berth: %s\n",
                rc == BERR_BAD_REQUEST ? "a user or live token of that name exists" : "cannot create the token");
        sodium_memzero(a.secret, sizeof(a.secret));
        return 1;
    }
    fmt_time(a.ttl > 0 ? db_now() + a.ttl : 0, expires, sizeof(expires));
    printf("created token %s (expires %s, %d scope%s); log in with user name %s and this secret as password.\n",
           o->name, expires, o->nscopes, o->nscopes == 1 ? "" : "s", o->name);
    printf("secret (shown only this once): %s\n", a.secret);
    sodium_memzero(a.secret, sizeof(a.secret));
    return 0;
usage:
    fputs(usage, stderr);
    return 2;
}

/* ---- grant ---- */

static int print_grant(void *ctx, const struct authdb_grant *g)
{
    char acts[AUTH_ACTIONS_STR_MAX], subj[BERTH_AUTH_NAME_MAX + 16];
    (void)ctx;
    authdb_actions_format(g->actions, acts, sizeof(acts));
    if (g->subject.kind == AUTH_ANONYMOUS)
        snprintf(subj, sizeof(subj), "anonymous");
    else
        snprintf(subj, sizeof(subj), "%s:%s", g->subject.kind == AUTH_USER ? "user" : "token", g->subject.name);
    printf("%-32s %-24s %s\n", subj, acts, g->pattern);
    return 0;
}

struct grant_args {
    struct authdb_identity subject;
    unsigned actions;
};

static int grant_add_tx(struct db *db, struct opts *o, void *arg)
{
    struct grant_args *a = arg;
    return authdb_grant_add(db, &a->subject, a->actions, o->args[3]);
}

static int grant_del_tx(struct db *db, struct opts *o, void *arg)
{
    struct grant_args *a = arg;
    return authdb_grant_del(db, &a->subject, o->args[2]);
}

static int cmd_grant(struct db *db, struct opts *o)
{
    const char *verb = o->args[0];
    struct grant_args a;
    int rc;
    if (strcmp(verb, "list") == 0 && o->nargs <= 2) {
        if (o->nargs == 2 && authdb_subject_parse(o->args[1], &a.subject) != 0)
            goto bad_subject;
        printf("%-32s %-24s %s\n", "SUBJECT", "ACTIONS", "PATTERN");
        return authdb_grants_each(db, o->nargs == 2 ? &a.subject : NULL, print_grant, NULL) == 0 ? 0 : 1;
    }
    if (!((strcmp(verb, "add") == 0 && o->nargs == 4) || (strcmp(verb, "del") == 0 && o->nargs == 3)))
        goto usage;
    if (authdb_subject_parse(o->args[1], &a.subject) != 0)
        goto bad_subject;
    if (verb[0] == 'd') {
        if ((rc = in_tx(db, grant_del_tx, o, &a)) != 0) {
            fprintf(stderr, "berth: %s\n", rc == BERR_NOT_FOUND ? "no such grant" : "cannot delete the grant");
            return 1;
        }
        printf("deleted the grant of %s on %s\n", o->args[1], o->args[2]);
        return 0;
    }
    if (authdb_actions_parse(o->args[2], &a.actions) != 0 || authdb_pattern_valid(o->args[3]) != 0) {
        fprintf(stderr, "berth: want ACTIONS like pull,push and a PATTERN like 'team/*'\n");
        return 2;
    }
    if ((rc = in_tx(db, grant_add_tx, o, &a)) != 0) {
        fprintf(stderr, "berth: %s\n",
                rc == BERR_NOT_FOUND     ? "no such user or live token"
                : rc == BERR_BAD_REQUEST ? "anonymous may only be granted pull"
                                         : "cannot store the grant");
        return 1;
    }
    printf("granted %s to %s on %s\n", o->args[2], o->args[1], o->args[3]);
    return 0;
bad_subject:
    fprintf(stderr, "berth: want a subject user:NAME, token:NAME or anonymous\n");
    return 2;
usage:
    fputs(usage, stderr);
    return 2;
}

int cli_main(int argc, char **argv)
{
    struct opts o;
    struct db *db;
    int rc = parse_opts(argc, argv, &o);
    if (rc != 0)
        return rc == 1 ? 0 : rc;
    if (o.nargs < 1) {
        fputs(usage, stderr);
        return 2;
    }
    if (sodium_init() < 0 || (db = cli_open_registry(&o.cfg)) == NULL)
        return 1;
    if (strcmp(argv[0], "user") == 0)
        rc = cmd_user(db, &o);
    else if (strcmp(argv[0], "token") == 0)
        rc = cmd_token(db, &o);
    else
        rc = cmd_grant(db, &o);
    db_close(db);
    return rc;
}
