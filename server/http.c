/* http.c - h2o set-up, event-loop threads, TLS, janitor, graceful shutdown. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "api.h"
#include "auth.h"
#include "defaults.h"
#include "err.h"
#include "handlers.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "observe.h"
#include "reqlog.h"
#include "server.h"
#include "version.h"
#include "writer.h"

struct server *srv;
static struct server the_server;
static h2o_globalconf_t globalconf;
static SSL_CTX *ssl_ctx;         /* the current one: loop threads read it at every accept (atomically) */
static SSL_CTX *ssl_ctx_retired; /* replaced by the last reload; freed at the next (SSL objects hold references) */
static http_reloader_fn reloader;
static volatile sig_atomic_t reload_requested;
static int listen_fd = -1;
static _Thread_local struct db *thread_db;

struct loop_thread {
    pthread_t tid;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
};

struct db *server_db(void)
{
    if (thread_db == NULL && db_open(srv->cfg.data, &thread_db) != 0)
        thread_db = NULL;
    return thread_db;
}

void server_db_close(void)
{
    db_close(thread_db);
    thread_db = NULL;
}

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        srv->stopping = 1;
}

void http_set_reloader(http_reloader_fn fn)
{
    reloader = fn;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct loop_thread *t = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    t->accept_ctx.ssl_ctx = __atomic_load_n(&ssl_ctx, __ATOMIC_ACQUIRE); /* a SIGHUP may have replaced it */
    h2o_accept(&t->accept_ctx, sock);
}

/* A server TLS context for cfg's certificate chain and key, or NULL (logged). */
static SSL_CTX *tls_load(const struct config *cfg)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return NULL;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        log_error("cannot load TLS certificate %s / key %s: %s", cfg->tls_cert, cfg->tls_key, buf);
        SSL_CTX_free(ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ctx, h2o_http2_alpn_protocols);
    return ctx;
}

static int setup_tls(const struct config *cfg)
{
    if (cfg->tls_cert[0] == '\0' && cfg->tls_key[0] == '\0')
        return 0;
    if (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0') {
        log_error("tls_cert and tls_key go together");
        return -1;
    }
    SSL_load_error_strings();
    SSL_library_init();
    return (ssl_ctx = tls_load(cfg)) != NULL ? 0 : -1;
}

/* SIGHUP with TLS on: loads the certificate files again and swaps them in for new connections. */
static void reload_tls(const struct config *nc)
{
    SSL_CTX *fresh;
    if (ssl_ctx == NULL) {
        if (nc->tls_cert[0] != '\0')
            log_warn("reload: TLS cannot be turned on by a reload; restart berth");
        return;
    }
    if (nc->tls_cert[0] == '\0' || nc->tls_key[0] == '\0' || (fresh = tls_load(nc)) == NULL) {
        log_error("reload: keeping the TLS certificate loaded before");
        return;
    }
    SSL_CTX_free(ssl_ctx_retired); /* a reload ago: every accept that read it has made its SSL (a reference) */
    ssl_ctx_retired = ssl_ctx;
    __atomic_store_n(&ssl_ctx, fresh, __ATOMIC_RELEASE);
    memcpy(srv->cfg.tls_cert, nc->tls_cert, sizeof(nc->tls_cert));
    memcpy(srv->cfg.tls_key, nc->tls_key, sizeof(nc->tls_key));
    log_info("reload: TLS certificate %s loaded", nc->tls_cert);
}

/* SIGHUP: rebuilds the configuration and applies what can change while serving (http.h). */
static void reload(void)
{
    struct config nc;
    char err[2048];
    if (reloader == NULL || reloader(&nc, err, sizeof(err)) != 0) {
        log_error("reload: %s; nothing changed", reloader == NULL ? "no configuration source" : err);
        return;
    }
    reload_tls(&nc);
    /* plain int stores; request threads read each option once per use */
    srv->cfg.log_level = nc.log_level;
    log_set_level((enum log_level)nc.log_level);
    srv->cfg.auth_token_ttl = nc.auth_token_ttl;
    srv->cfg.upload_timeout = nc.upload_timeout;
    srv->cfg.min_free_space = nc.min_free_space;
    if (strcmp(nc.listen, srv->cfg.listen) != 0 || strcmp(nc.data, srv->cfg.data) != 0 ||
        nc.threads != srv->cfg.threads || nc.workers != srv->cfg.workers ||
        strcmp(nc.metrics_listen, srv->cfg.metrics_listen) != 0 || strcmp(nc.access_log, srv->cfg.access_log) != 0 ||
        nc.access_log_json != srv->cfg.access_log_json || nc.no_auth != srv->cfg.no_auth ||
        nc.max_blob_size != srv->cfg.max_blob_size || nc.max_manifest_size != srv->cfg.max_manifest_size ||
        nc.request_timeout != srv->cfg.request_timeout || strcmp(nc.auth_service, srv->cfg.auth_service) != 0 ||
        strcmp(nc.auth_realm, srv->cfg.auth_realm) != 0)
        log_warn("reload: changes to listen, data, threads, workers, metrics_listen, access_log, access_log_format, "
                 "auth, max_blob_size, max_manifest_size, request_timeout, auth_service or auth_realm take effect "
                 "after a restart");
    log_info("reload: done (log_level, auth_token_ttl, upload_timeout, min_free_space applied)");
}

static int open_connections(h2o_context_t *ctx)
{
    return !h2o_linklist_is_empty(&ctx->http1._conns) || !h2o_linklist_is_empty(&ctx->http2._conns);
}

static void *loop_main(void *arg)
{
    struct loop_thread *t = arg;
    time_t deadline;
    h2o_context_init(&t->ctx, t->loop, &globalconf);
    pool_register_loop(&t->ctx);
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = globalconf.hosts;
    t->accept_ctx.ssl_ctx = ssl_ctx;
    t->listener = h2o_evloop_socket_create(t->loop, dup(listen_fd), H2O_SOCKET_FLAG_DONT_READ);
    t->listener->data = t;
    h2o_socket_read_start(t->listener, on_accept);
    while (!srv->stopping)
        h2o_evloop_run(t->loop, 200);
    /* graceful stop: no new connections; in-flight requests finish; idle keep-alives close */
    h2o_socket_read_stop(t->listener);
    h2o_socket_close(t->listener);
    h2o_context_request_shutdown(&t->ctx);
    deadline = time(NULL) + BERTH_SHUTDOWN_GRACE;
    while (open_connections(&t->ctx) && time(NULL) < deadline)
        h2o_evloop_run(t->loop, 100);
    server_db_close();
    return NULL;
}

static void *janitor_main(void *unused)
{
    time_t last_expire = time(NULL);
    (void)unused;
    while (!srv->stopping) {
        for (int i = 0; i < BERTH_PULL_FLUSH_INTERVAL * 10 && !srv->stopping; i++) {
            usleep(100000);
            if (reload_requested) {
                reload_requested = 0;
                reload();
            }
        }
        manifests_flush_pulls();
        if (time(NULL) - last_expire >= BERTH_JANITOR_INTERVAL) {
            uploads_expire();
            last_expire = time(NULL);
        }
    }
    manifests_flush_pulls();
    server_db_close();
    return NULL;
}

/* For access_log_format = json: points reqlog at stderr or the access-log file.  Returns 0 when reqlog should be
 * registered, 1 when the access log is off. */
static int open_json_log(const struct config *cfg)
{
    int fd = 2;
    if (cfg->access_log[0] == '\0' || strcmp(cfg->access_log, "off") == 0)
        return 1;
    if (strcmp(cfg->access_log, "-") != 0 &&
        (fd = open(cfg->access_log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640)) < 0) {
        log_warn("cannot open access log %s: %s", cfg->access_log, strerror(errno));
        return 1;
    }
    reqlog_configure(1, fd);
    return 0;
}

static void setup_h2o(const struct config *cfg)
{
    h2o_hostconf_t *host;
    h2o_pathconf_t *pathconf;
    char tmp[BLOBSTORE_PATH_MAX];
    h2o_config_init(&globalconf);
    globalconf.server_name = h2o_iovec_init(H2O_STRLIT("berth/" BERTH_VERSION));
    globalconf.max_request_entity_size = (size_t)cfg->max_blob_size;
    globalconf.http1.req_timeout = (uint64_t)cfg->request_timeout * 1000;
    globalconf.http2.idle_timeout = (uint64_t)cfg->request_timeout * 1000;
    host = h2o_config_register_host(&globalconf, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(host, "/", 0);
    api_register(pathconf);
    observe_register(pathconf); /* request metrics (observe.h) */
    observe_register(&host->fallback_path);
    if (cfg->access_log_json && !open_json_log(cfg)) {
        /* JSON lines: berth's own logger, on stderr or a file (h2o's logger knows only its own formats) */
        reqlog_register(pathconf);
        reqlog_register(&host->fallback_path);
    } else if (strcmp(cfg->access_log, "-") == 0) {
        /* the inherited fd 2, never a reopened /dev/stderr; fallback_path: errors h2o answers itself (413) */
        reqlog_register(pathconf);
        reqlog_register(&host->fallback_path);
    } else if (cfg->access_log[0] != '\0' && strcmp(cfg->access_log, "off") != 0) {
        h2o_access_log_filehandle_t *fh = h2o_access_log_open_handle(cfg->access_log, NULL, H2O_LOGCONF_ESCAPE_APACHE);
        if (fh != NULL) {
            h2o_access_log_register(pathconf, fh);
            h2o_access_log_register(&host->fallback_path, fh);
        } else
            log_warn("cannot open access log %s", cfg->access_log);
    }
    /* large request bodies spill into <data>/tmp (same filesystem), not anonymous memory */
    blobstore_tmp_dir(&srv->bs, tmp, sizeof(tmp));
    h2o_socket_buffer_mmap_settings.threshold = BERTH_SPILL_THRESHOLD;
    if (strlen(tmp) + sizeof("/body.XXXXXX") <= sizeof(h2o_socket_buffer_mmap_settings.fn_template)) {
        strcpy(h2o_socket_buffer_mmap_settings.fn_template, tmp);
        strcat(h2o_socket_buffer_mmap_settings.fn_template, "/body.XXXXXX");
    }
}

static int start_storage(const struct config *cfg)
{
    struct db *db;
    if (blobstore_init(&srv->bs, cfg->data) != 0)
        return -1;
    if (db_open(cfg->data, &db) != 0) /* creates and migrates berth.db before any thread opens it */
        return -1;
    db_close(db);
    return writer_start(cfg->data) == 0 ? 0 : -1;
}

int http_serve(const struct config *cfg)
{
    struct loop_thread *threads;
    pthread_t janitor;
    int n = cfg->threads > 0 ? cfg->threads : (int)sysconf(_SC_NPROCESSORS_ONLN);
    struct sigaction sa = {.sa_handler = on_signal};
    srv = &the_server;
    srv->cfg = *cfg;
    log_set_level((enum log_level)cfg->log_level);
    if (n < 1)
        n = 1;
    if (n > BERTH_MAX_THREADS)
        n = BERTH_MAX_THREADS;
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    if (start_storage(cfg) != 0 || setup_tls(cfg) != 0 || (listen_fd = listen_open(cfg, ssl_ctx != NULL)) < 0)
        return 1;
    setup_h2o(cfg);
    if (pool_start(cfg->workers) != 0 || observe_listen_start(cfg) != 0)
        return 1;
    uploads_recover();
    if (cfg->no_auth)
        log_warn("authentication is OFF: anyone who can reach %s can push, pull and delete", cfg->listen);
    else if (auth_start(cfg) != 0) /* signing keys; the first admin user on a first start (printed once) */
        return 1;
    log_info("berth %s listening on %s (%s, %d threads, %d workers, data %s)", BERTH_VERSION, cfg->listen,
             ssl_ctx != NULL ? "https, h2" : "http, h2c", n, cfg->workers, cfg->data);
    threads = calloc((size_t)n, sizeof(*threads));
    for (int i = 0; i < n; i++) {
        threads[i].loop = h2o_evloop_create();
        pthread_create(&threads[i].tid, NULL, loop_main, &threads[i]);
    }
    pthread_create(&janitor, NULL, janitor_main, NULL);
    for (int i = 0; i < n; i++)
        pthread_join(threads[i].tid, NULL);
    pthread_join(janitor, NULL);
    observe_listen_stop();
    log_info("stopping: finishing background work");
    pool_stop();
    writer_stop();
    close(listen_fd);
    free(threads);
    server_db_close();
    log_info("stopped");
    return 0;
}
