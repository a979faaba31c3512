/* modules.c - the one table of the modules of `berth serve` (module.h): add a module with one line. */
#include "module.h"

const struct module *const server_modules[] = {
    &auth_module,      /* keys, first admin; the token endpoint */
    &uploads_module,   /* recovery at start, expiry on tick */
    &manifests_module, /* pull-time flushes on tick */
    &observe_module,   /* request ids and metrics, /metrics */
    &ui_module,        /* before the API: /ui/ and a browser's GET / */
    &api_module,       /* last on "/": the registry API answers whatever no module before it took */
    NULL,
};
