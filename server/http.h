/*
 * http.h - `berth serve`: h2o set-up (HTTP/1.1, HTTP/2 over TLS by ALPN and h2c), one event loop per thread
 * sharing one listening socket, the worker pool, the janitor, and graceful shutdown on SIGTERM/SIGINT.
 */
#ifndef BERTH_HTTP_H
#define BERTH_HTTP_H

#include "config.h"

/** Serves with configuration `cfg` until SIGTERM/SIGINT; in-flight requests get BERTH_SHUTDOWN_GRACE seconds.
 *  Returns the process exit status. */
int http_serve(const struct config *cfg);

/** Builds the configuration anew (defaults, file, environment, flags), for a reload.  Returns 0 or -1 (`err`). */
typedef int (*http_reloader_fn)(struct config *out, char *err, size_t errlen);
/**
 * Sets how SIGHUP rebuilds the configuration.  On SIGHUP the janitor thread reloads the TLS certificate chain and
 * key (new connections use them; a file that does not load keeps the old ones) and applies the reloadable options
 * log_level, auth_token_ttl, upload_timeout, min_free_space, and with S3 storage s3_access_key, s3_secret_key,
 * s3_region, s3_path_style and s3_redirect (config_storage_reload); a changed option that needs a restart is named in
 * a warning.  A configuration that fails to build is logged and changes nothing.
 */
void http_set_reloader(http_reloader_fn fn);

#endif
