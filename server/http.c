/* http.c - h2o set-up, event-loop threads, TLS, janitor, graceful shutdown. */
#include <errno.h>
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
#include "fault.h"
#include "handlers.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "reqlog.h"
#include "server.h"
#include "version.h"
#include "writer.h"

struct server *srv;
static struct server the_server;
static h2o_globalconf_t globalconf;
static SSL_CTX *ssl_ctx;
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
    (void)sig;
    srv->stopping = 1;
}

static void on_accept(h2o_socket_t *listener, const char *err)
{
    struct loop_thread *t = listener->data;
    h2o_socket_t *sock;
    if (err != NULL)
        return;
    if ((sock = h2o_evloop_socket_accept(listener)) == NULL)
        return;
    h2o_accept(&t->accept_ctx, sock);
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
    ssl_ctx = SSL_CTX_new(TLS_server_method());
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl_ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl_ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        log_error("cannot load TLS certificate %s / key %s: %s", cfg->tls_cert, cfg->tls_key, buf);
        return -1;
    }
    h2o_ssl_register_alpn_protocols(ssl_ctx, h2o_http2_alpn_protocols);
    return 0;
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
    time_t last_expire = 0; /* the first sweep runs at the first tick: sessions that went stale while berth was down */
    (void)unused;
    while (!srv->stopping) {
        for (int i = 0; i < BERTH_PULL_FLUSH_INTERVAL * 10 && !srv->stopping; i++)
            usleep(100000);
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
    if (strcmp(cfg->access_log, "-") == 0) {
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
    if (start_storage(cfg) != 0 || setup_tls(cfg) != 0 || (listen_fd = listen_open(cfg, ssl_ctx != NULL)) < 0)
        return 1;
    setup_h2o(cfg);
    if (pool_start(cfg->workers) != 0)
        return 1;
    FAULT_ARM();
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
    log_info("stopping: finishing background work");
    pool_stop();
    writer_stop();
    close(listen_fd);
    free(threads);
    server_db_close();
    log_info("stopped");
    return 0;
}
