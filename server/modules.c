/* modules.c - the one table of the modules of `berth serve` (module.h): add a module with one line. */
#include "module.h"

const struct module *const server_modules[] = {
    &auth_module, &uploads_module, &manifests_module,
    &api_module, /* last on "/": the registry API answers whatever no module before it took */
    NULL,
};
