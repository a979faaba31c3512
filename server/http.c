/* http.c - h2o set-up, event-loop threads, TLS, janitor, graceful shutdown.  Knows the modules only through the
 * table of modules.c (module.h); no module calls back into this file. */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include "defaults.h"
#include "err.h"
#include "h1.h"
#include "fault.h"
#include "http.h"
#include "listen.h"
#include "log.h"
#include "memtrim.h"
#include "module.h"
#include "reqlog.h"
#include "s3.h"
#include "server.h"
#include "version.h"
#include "writer.h"

/* What the listener threads share; built by http_serve() and torn down with it. */
struct http {
    struct server *srv;
    h2o_globalconf_t globalconf;
    SSL_CTX *ssl_ctx;         /* the current one: loop threads read it at every accept (atomically; SIGHUP) */
    SSL_CTX *ssl_ctx_retired; /* replaced by the last reload; freed at the next (SSL objects hold references) */
    int listen_fd;
};

struct loop_thread {
    pthread_t tid;
    struct http *http;
    h2o_evloop_t *loop;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    h2o_socket_t *listener;
};

/* The signal handler's only way in: set once by http_serve() before the handlers are installed. */
static atomic_int *stop_flag;
static volatile sig_atomic_t reload_requested; /* SIGHUP, handled by the janitor */
static http_reloader_fn reloader;
static struct http *the_http; /* for the janitor's reload */

static void on_signal(int sig)
{
    if (sig == SIGHUP)
        reload_requested = 1;
    else
        atomic_store(stop_flag, 1);
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
    t->accept_ctx.ssl_ctx = __atomic_load_n(&t->http->ssl_ctx, __ATOMIC_ACQUIRE); /* SIGHUP may replace it */
    h1_accept(t->http->srv, &t->accept_ctx, sock); /* HTTP/1.1 is Berth's own; HTTP/2 goes on to h2o (h1.h) */
}

/* A server TLS context for cfg's certificate chain and key, or NULL (logged). */
static SSL_CTX *tls_load(const struct config *cfg)
{
    SSL_CTX *ssl_ctx;
    if ((ssl_ctx = SSL_CTX_new(TLS_server_method())) == NULL) {
        log_error("cannot create the TLS context");
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ssl_ctx, SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (SSL_CTX_use_certificate_chain_file(ssl_ctx, cfg->tls_cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(ssl_ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ssl_ctx) != 1) {
        char buf[256];
        ERR_error_string_n(ERR_get_error(), buf, sizeof(buf));
        log_error("cannot load TLS certificate %s / key %s: %s", cfg->tls_cert, cfg->tls_key, buf);
        SSL_CTX_free(ssl_ctx);
        return NULL;
    }
    h2o_ssl_register_alpn_protocols(ssl_ctx, h2o_http2_alpn_protocols);
    return ssl_ctx;
}

static int setup_tls(const struct config *cfg, SSL_CTX **out)
{
    if (cfg->tls_cert[0] == '\0' && cfg->tls_key[0] == '\0')
        return 0;
    if (cfg->tls_cert[0] == '\0' || cfg->tls_key[0] == '\0') {
        log_error("tls_cert and tls_key go together");
        return -1;
    }
    SSL_load_error_strings();
    SSL_library_init();
    return (*out = tls_load(cfg)) != NULL ? 0 : -1;
}

/* SIGHUP with TLS on: loads the certificate files again and swaps them in for new connections. */
static void reload_tls(struct http *http, const struct config *nc)
{
    struct server *srv = http->srv;
    SSL_CTX *fresh;
    if (http->ssl_ctx == NULL) {
        if (nc->tls_cert[0] != '\0')
            log_warn("reload: TLS cannot be turned on by a reload; restart berth");
        return;
    }
    if (nc->tls_cert[0] == '\0' || nc->tls_key[0] == '\0' || (fresh = tls_load(nc)) == NULL) {
        log_error("reload: keeping the TLS certificate loaded before");
        return;
    }
    SSL_CTX_free(http->ssl_ctx_retired); /* a reload ago: every accept that read it has made its SSL (a reference) */
    http->ssl_ctx_retired = http->ssl_ctx;
    __atomic_store_n(&http->ssl_ctx, fresh, __ATOMIC_RELEASE);
    memcpy(srv->cfg.tls_cert, nc->tls_cert, sizeof(nc->tls_cert));
    memcpy(srv->cfg.tls_key, nc->tls_key, sizeof(nc->tls_key));
    log_info("reload: TLS certificate %s loaded", nc->tls_cert);
}

/* SIGHUP: rebuilds the configuration and applies what can change while serving (http.h). */
static void reload(struct http *http)
{
    struct server *srv = http->srv;
    struct config nc;
    char err[2048];
    if (reloader == NULL || reloader(&nc, err, sizeof(err)) != 0) {
        log_error("reload: %s; nothing changed", reloader == NULL ? "no configuration source" : err);
        return;
    }
    reload_tls(http, &nc);
    /* plain int stores; request threads read each option once per use */
    srv->cfg.log_level = nc.log_level;
    log_set_level((enum log_level)nc.log_level);
    srv->cfg.auth_token_ttl = nc.auth_token_ttl;
    srv->cfg.upload_timeout = nc.upload_timeout;
    srv->cfg.min_free_space = nc.min_free_space;
    config_storage_reload(&srv->cfg.st, &nc.st, &srv->bs); /* S3 credentials, region, addressing, redirect */
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
    log_info("reload: done (log_level, auth_token_ttl, upload_timeout, min_free_space and the s3_* keys applied)");
    sodium_memzero(&nc.st, sizeof(nc.st));
}

static int open_connections(h2o_context_t *ctx)
{
    return h1_open_count() > 0 || !h2o_linklist_is_empty(&ctx->http1._conns) ||
           !h2o_linklist_is_empty(&ctx->http2._conns);
}

static void *loop_main(void *arg)
{
    struct loop_thread *t = arg;
    struct server *srv = t->http->srv;
    time_t deadline;
    int fd;
    h2o_context_init(&t->ctx, t->loop, &t->http->globalconf);
    if (pool_register_loop(&t->ctx) != 0 || (fd = dup(t->http->listen_fd)) < 0) {
        log_error("event loop: out of memory or descriptors; stopping");
        atomic_store(&srv->stopping, 1);
        return NULL;
    }
    t->accept_ctx.ctx = &t->ctx;
    t->accept_ctx.hosts = t->http->globalconf.hosts;
    t->accept_ctx.ssl_ctx = t->http->ssl_ctx;
    t->listener = h2o_evloop_socket_create(t->loop, fd, H2O_SOCKET_FLAG_DONT_READ);
    t->listener->data = t;
    h2o_socket_read_start(t->listener, on_accept);
    while (!atomic_load(&srv->stopping))
        h2o_evloop_run(t->loop, 200);
    /* graceful stop: no new connections; in-flight requests finish; idle keep-alives close */
    h2o_socket_read_stop(t->listener);
    h2o_socket_close(t->listener);
    h2o_context_request_shutdown(&t->ctx);
    h1_shutdown();
    deadline = time(NULL) + BERTH_SHUTDOWN_GRACE;
    while (open_connections(&t->ctx) && time(NULL) < deadline)
        h2o_evloop_run(t->loop, 100);
    server_db_close();
    return NULL;
}

static void modules_tick(struct server *srv)
{
    for (const struct module *const *m = server_modules; *m != NULL; m++)
        if ((*m)->tick != NULL)
            (*m)->tick(srv);
}

/* The janitor: the modules' periodic work (pull times, upload expiry, later lifecycle and GC), off the loops. */
static void *janitor_main(void *arg)
{
    struct server *srv = arg;
    while (!atomic_load(&srv->stopping)) {
        for (int i = 0; i < BERTH_PULL_FLUSH_INTERVAL * 10 && !atomic_load(&srv->stopping); i++) {
            usleep(100000);
            if (reload_requested) {
                reload_requested = 0;
                reload(the_http);
            }
        }
        modules_tick(srv);
    }
    modules_tick(srv);
    server_db_close();
    return NULL;
}

/* For access_log_format = json: points reqlog at stderr or the access-log file.  Returns 0 when reqlog should be
 * registered, 1 when the access log is off (or cannot be opened: logged). */
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

static void setup_h2o(struct http *http)
{
    const struct config *cfg = &http->srv->cfg;
    h2o_globalconf_t *gc = &http->globalconf;
    h2o_hostconf_t *host;
    h2o_pathconf_t *pathconf;
    char tmp[BLOBSTORE_PATH_MAX];
    h2o_config_init(gc);
    gc->server_name = h2o_iovec_init(H2O_STRLIT("berth/" BERTH_VERSION));
    /* h2o reads only HTTP/2 bodies now (HTTP/1.1 is h1.c's): bounded, since h2o buffers them whole (docs/HTTP1.md) */
    gc->max_request_entity_size = cfg->max_manifest_size;
    gc->http1.req_timeout = (uint64_t)cfg->request_timeout * 1000;
    /* h2o 2.2.5's only HTTP/2 timeout: runs while no request is being processed, restarted by every read */
    gc->http2.idle_timeout =
        (uint64_t)(cfg->request_timeout < BERTH_H2_IDLE_TIMEOUT ? cfg->request_timeout : BERTH_H2_IDLE_TIMEOUT) * 1000;
    host = h2o_config_register_host(gc, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    pathconf = h2o_config_register_path(host, "/", 0);
    for (const struct module *const *m = server_modules; *m != NULL; m++)
        if ((*m)->routes != NULL)
            (*m)->routes(http->srv, host, pathconf);
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
    blobstore_tmp_dir(&http->srv->bs, tmp, sizeof(tmp));
    h2o_socket_buffer_mmap_settings.threshold = BERTH_SPILL_THRESHOLD;
    if (strlen(tmp) + sizeof("/body.XXXXXX") <= sizeof(h2o_socket_buffer_mmap_settings.fn_template)) {
        strcpy(h2o_socket_buffer_mmap_settings.fn_template, tmp);
        strcat(h2o_socket_buffer_mmap_settings.fn_template, "/body.XXXXXX");
    }
}

static int start_storage(struct server *srv, const struct config *cfg)
{
    struct db *db;
    char err[512];
    if (db_set_metadata(cfg->metadata) != 0) /* before anything opens the database */
        return -1;
    if (config_blobstore(&cfg->st, cfg->data, &srv->bs, err, sizeof(err)) != 0) { /* disk, or the S3 bucket */
        log_error("%s", err);
        return -1;
    }
    if (srv->bs.s3 != NULL && s3_check(srv->bs.s3) != 0) { /* the reason is logged by s3.c */
        log_error("cannot use the bucket of storage = %s at %s", cfg->st.storage, cfg->st.s3_endpoint);
        return -1;
    }
    if (db_open(cfg->data, &db) != 0) /* creates and migrates the schema before any thread opens a connection */
        return -1;
    db_close(db);
    return writer_start(cfg->data) == 0 ? 0 : -1;
}

static int modules_init(struct server *srv)
{
    for (const struct module *const *m = server_modules; *m != NULL; m++)
        if ((*m)->init != NULL && (*m)->init(srv) != 0) {
            log_error("cannot start module %s", (*m)->name);
            return -1;
        }
    return 0;
}

static void modules_stop(struct server *srv)
{
    size_t n = 0;
    while (server_modules[n] != NULL)
        n++;
    while (n-- > 0)
        if (server_modules[n]->stop != NULL)
            server_modules[n]->stop(srv);
}

/* Runs `n` event loops and the janitor until SIGTERM/SIGINT.  Returns 0, or -1 if a thread could not start (then
 * whatever started was stopped again). */
static int run_threads(struct http *http, int n)
{
    struct server *srv = http->srv;
    struct loop_thread *threads = calloc((size_t)n, sizeof(*threads));
    pthread_t janitor;
    int started = 0, janitor_ok = 0, rc = 0;
    if (threads == NULL) {
        log_error("out of memory");
        return -1;
    }
    for (; started < n; started++) {
        threads[started].http = http;
        if ((threads[started].loop = h2o_evloop_create()) == NULL ||
            pthread_create(&threads[started].tid, NULL, loop_main, &threads[started]) != 0) {
            log_error("cannot start event-loop thread %d", started);
            break;
        }
    }
    if (started == n)
        janitor_ok = pthread_create(&janitor, NULL, janitor_main, srv) == 0;
    if (started < n || !janitor_ok) {
        if (started == n)
            log_error("cannot start the janitor thread");
        atomic_store(&srv->stopping, 1);
        rc = -1;
    }
    for (int i = 0; i < started; i++)
        pthread_join(threads[i].tid, NULL);
    if (janitor_ok)
        pthread_join(janitor, NULL);
    free(threads);
    return rc;
}

int http_serve(const struct config *cfg)
{
    static struct server the_server; /* lives for the process: the signal handler may run until exit */
    struct server *srv = &the_server;
    struct http http = {.srv = srv, .listen_fd = -1};
    int n = cfg->threads > 0 ? cfg->threads : (int)sysconf(_SC_NPROCESSORS_ONLN), rc;
    struct sigaction sa = {.sa_handler = on_signal};
    memtrim_setup();
    srv->cfg = *cfg;
    atomic_init(&srv->stopping, 0);
    stop_flag = &srv->stopping;
    log_set_level((enum log_level)cfg->log_level);
    if (n < 1)
        n = 1;
    if (n > BERTH_MAX_THREADS)
        n = BERTH_MAX_THREADS;
    signal(SIGPIPE, SIG_IGN);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGHUP, &sa, NULL);
    the_http = &http;
    if (start_storage(srv, cfg) != 0 || setup_tls(cfg, &http.ssl_ctx) != 0 ||
        (http.listen_fd = listen_open(cfg, http.ssl_ctx != NULL)) < 0)
        return 1;
    FAULT_ARM();
    if (cfg->no_auth)
        log_warn("authentication is OFF: anyone who can reach %s can push, pull and delete", cfg->listen);
    if (pool_start(cfg->workers) != 0 || modules_init(srv) != 0)
        return 1;
    setup_h2o(&http);
    log_info("berth %s listening on %s (%s, %d threads, %d workers, data %s)", BERTH_VERSION, cfg->listen,
             http.ssl_ctx != NULL ? "https, h2" : "http, h2c", n, cfg->workers, cfg->data);
    rc = run_threads(&http, n);
    log_info("stopping: finishing background work");
    pool_stop();
    modules_stop(srv);
    writer_stop();
    close(http.listen_fd);
    server_db_close();
    log_info("stopped");
    return rc == 0 ? 0 : 1;
}
