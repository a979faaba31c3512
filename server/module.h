/*
 * module.h - how a part of `berth serve` plugs in: one `struct module` per module, listed once in the table of
 * server/modules.c.  Adding a module (the ECR API, the lifecycle scheduler, GC, events, metrics) is one line
 * there; http.c never changes.
 *
 * Every hook is optional (NULL) and receives the server context, which the module keeps (in its handler struct,
 * struct server_handler, or its jobs), never in a global.  Order: init() of every module in table order, then
 * routes() in table order, then the loops start; tick() runs on the janitor thread about every
 * BERTH_PULL_FLUSH_INTERVAL seconds and once more at shutdown; stop() runs after the loops and workers stopped,
 * in reverse table order.
 *
 * Routes: `root` is the pathconf of "/" of the one host.  Handlers registered on it (h2o_create_handler with a
 * struct server_handler) are tried in registration order, and a handler's on_req returning -1 passes the request
 * to the next one — so a module with its own protocol on "/" (ECR's POST / with X-Amz-Target) registers before
 * the registry API (the table lists it first) and declines what is not its own.  A module with a path prefix of
 * its own ("/metrics") registers it on `host` with h2o_config_register_path.
 *
 * Example (server/metrics.c):
 *     static void metrics_routes(struct server *srv, h2o_hostconf_t *host, h2o_pathconf_t *root) { ... }
 *     const struct module metrics_module = {.name = "metrics", .routes = metrics_routes};
 * and in modules.c: `&metrics_module,` plus an `extern` line in module.h's list.
 */
#ifndef BERTH_MODULE_H
#define BERTH_MODULE_H

#include "server.h"

struct module {
    const char *name;
    /** Before any thread starts (e.g. load keys, recover state).  Returns 0, or -1 to refuse to start. */
    int (*init)(struct server *srv);
    /** Registers the module's h2o handlers. */
    void (*routes)(struct server *srv, h2o_hostconf_t *host, h2o_pathconf_t *root);
    /** Periodic background work, on the janitor thread (may block: it is the janitor's own time). */
    void (*tick)(struct server *srv);
    /** After the loops and the workers stopped, before the writer stops. */
    void (*stop)(struct server *srv);
};

/* the modules (each defined in its own file) */
extern const struct module auth_module;      /* auth.c: keys, first admin */
extern const struct module uploads_module;   /* uploads.c: recovery at start, expiry on tick */
extern const struct module manifests_module; /* manifests.c: pull-time flushes on tick */
extern const struct module observe_module;   /* observe.c: request metrics, the metrics listener */
extern const struct module ui_module;        /* ui.c: the web UI at /ui/ (and GET / from a browser) */
extern const struct module api_module;       /* api.c: the registry API dispatcher on "/" */

/** The modules in order, NULL-terminated (modules.c). */
extern const struct module *const server_modules[];

#endif
