/* main.c - the `berth` command: subcommand dispatch and the flags of `berth serve`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include "cli.h"
#include "cli_ops.h"
#include "config.h"
#include "defaults.h"
#include "http.h"
#include "maint.h"
#include "version.h"

static const char usage[] = "usage: berth <command> [options]\n"
                            "\n"
                            "commands:\n"
                            "  serve      run the registry (berth serve --help)\n"
                            "  user       add, list, delete users, set passwords (berth user --help)\n"
                            "  token      create, list, revoke robot/CI tokens (berth token --help)\n"
                            "  grant      add, list, delete permissions (berth grant --help)\n"
                            "  backup     write a backup while the registry runs (berth backup --help)\n"
                            "  restore    restore a backup into a new data directory (berth restore --help)\n"
                            "  migrate    copy a registry into PostgreSQL/S3 (berth migrate --help)\n"
                            "  accesskey  create, list, revoke ECR API access keys (berth accesskey --help)\n"
                            "  repo       create, list, delete repositories (berth repo --help)\n"
                            "  lifecycle  put, get, delete, run lifecycle policies (berth lifecycle --help)\n"
                            "  gc         delete blobs nothing references (berth gc --help)\n"
                            "  fsck       check (and --repair) the data directory (berth fsck --help)\n"
                            "  quota      set, list, delete storage quotas (berth quota --help)\n"
                            "  events     print the event log: events tail [--follow] (berth events --help)\n"
                            "\n"
                            "  --version  print the version\n"
                            "  -h, --help print this help\n";

static const char serve_usage[] =
    "usage: berth serve [options]\n"
    "\n"
    "  --config FILE       read settings from FILE (key = value lines; see conf/berth.example.conf)\n"
    "  --listen HOST:PORT  address to listen on (default " BERTH_DEFAULT_LISTEN ")\n"
    "  --data DIR          data directory (default " BERTH_DEFAULT_DATA ")\n"
    "  --threads N         event-loop threads (default: number of cores)\n"
    "  --workers N         threads for blocking work (default 16)\n"
    "  --tls-cert FILE     PEM certificate chain: serve HTTPS (HTTP/2 by ALPN)\n"
    "  --tls-key FILE      PEM private key for --tls-cert\n"
    "  --access-log FILE   access log: - = stderr (default), a FILE to append to, or off\n"
    "  --access-log-format combined (default) or json (JSON lines)\n"
    "  --metrics-listen HOST:PORT  also serve /metrics, /healthz, /readyz there, without authentication\n"
    "  --metadata sqlite|postgresql://USER@HOST:PORT/DB  the metadata database (default sqlite: berth.db in --data)\n"
    "  --log-level LEVEL   error, warn, info (default) or debug\n"
    "  --no-auth           turn authentication off (local experiments only)\n"
    "  -h, --help          print this help\n"
    "\n"
    "Flags override the environment (BERTH_LISTEN, BERTH_DATA, ...: BERTH_ and the config key in upper case),\n"
    "which overrides the config file (--config, or $BERTH_CONFIG), which overrides the embedded defaults.\n"
    "SIGHUP reloads the TLS certificate and key, log_level, auth_token_ttl, upload_timeout and min_free_space.\n";

/* `berth serve`'s arguments, kept for SIGHUP: a reload rebuilds the configuration the same way. */
static int serve_argc;
static char **serve_argv;

/*
 * Builds the configuration of `berth serve ARGS`: embedded defaults, then the config file (--config FILE, else
 * $BERTH_CONFIG), then the environment (BERTH_<KEY>), then the flags.  Returns 0, 1 after printing the help, or 2
 * with a message in `err`.
 */
static int serve_config(int argc, char **argv, struct config *cfg, char *err, size_t errlen)
{
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"data", required_argument, NULL, 'd'},
        {"threads", required_argument, NULL, 't'},
        {"workers", required_argument, NULL, 'w'},
        {"tls-cert", required_argument, NULL, 'C'},
        {"tls-key", required_argument, NULL, 'K'},
        {"access-log", required_argument, NULL, 'a'},
        {"log-level", required_argument, NULL, 'v'},
        {"access-log-format", required_argument, NULL, 'f'},
        {"metrics-listen", required_argument, NULL, 'm'},
        {"metadata", required_argument, NULL, 'M'},
        {"no-auth", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct {
        int flag;
        const char *key;
    } keys[] = {{'l', "listen"},         {'d', "data"},      {'t', "threads"},
                {'w', "workers"},        {'C', "tls_cert"},  {'K', "tls_key"},
                {'a', "access_log"},     {'v', "log_level"}, {'f', "access_log_format"},
                {'m', "metrics_listen"}, {'M', "metadata"}};
    const char *config_file = getenv("BERTH_CONFIG");
    int c;
    config_defaults(cfg);
    /* first pass: the config file, so that the environment and the flags can override it */
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_file = argv[i + 1];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_file = argv[i] + 9;
    if (config_file != NULL && config_file[0] != '\0' && config_load(cfg, config_file, err, errlen) != 0)
        return 2;
    if (config_env(cfg, err, errlen) != 0)
        return 2;
    optind = 1;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        if (c == 'h') {
            fputs(serve_usage, stdout);
            return 1;
        }
        if (c == 'c')
            continue;
        if (c == 'n') {
            cfg->no_auth = 1;
            continue;
        }
        for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
            if (keys[i].flag == c) {
                if (config_set(cfg, keys[i].key, optarg, err, errlen) != 0)
                    return 2;
                goto next;
            }
        snprintf(err, errlen, "unknown option\n%s", serve_usage);
        return 2;
    next:;
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s'\n%s", argv[optind], serve_usage);
        return 2;
    }
    return 0;
}

/* SIGHUP (http.h): the configuration as it would be built now. */
static int reload_config(struct config *out, char *err, size_t errlen)
{
    return serve_config(serve_argc, serve_argv, out, err, errlen) == 0 ? 0 : -1;
}

/* Raises the soft descriptor limit to the hard one (often 1024 → 524288): connections, upload sessions
 * (BERTH_SESSIONS_OPEN_MAX) and upload bodies each hold descriptors, and the soft default is far below what a
 * busy registry needs.  Failure only leaves the limit where it was. */
static void raise_nofile(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int cmd_serve(int argc, char **argv)
{
    struct config cfg;
    char err[2048];
    int rc = serve_config(argc, argv, &cfg, err, sizeof(err));
    if (rc == 1)
        return 0;
    if (rc != 0) {
        fprintf(stderr, "berth: %s\n", err);
        return 2;
    }
    serve_argc = argc;
    serve_argv = argv;
    raise_nofile();
    http_set_reloader(reload_config);
    return http_serve(&cfg);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
        printf("berth %s\n", BERTH_VERSION);
        return 0;
    }
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "help") == 0) {
        fputs(usage, stdout);
        return 0;
    }
    if (strcmp(argv[1], "serve") == 0)
        return cmd_serve(argc - 1, argv + 1);
    if (strcmp(argv[1], "user") == 0 || strcmp(argv[1], "token") == 0 || strcmp(argv[1], "grant") == 0)
        return cli_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "backup") == 0 || strcmp(argv[1], "restore") == 0)
        return cli_backup_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "migrate") == 0)
        return cli_migrate_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "accesskey") == 0 || strcmp(argv[1], "repo") == 0)
        return cli_ecr_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "lifecycle") == 0 || strcmp(argv[1], "gc") == 0 || strcmp(argv[1], "fsck") == 0)
        return maint_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "quota") == 0 || strcmp(argv[1], "events") == 0)
        return cli_ops_main(argc - 1, argv + 1);
    fprintf(stderr, "berth: unknown command '%s'\n%s", argv[1], usage);
    return 2;
}
