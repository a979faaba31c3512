/*
 * defaults.h - every limit, size and timeout of Berth, in one place.
 *
 * Values marked "default" can be changed in the config file or by a flag; the others are protocol limits.
 */
#ifndef BERTH_DEFAULTS_H
#define BERTH_DEFAULTS_H

#define BERTH_VERSION "0.1.0"

/* --- network --- */
#define BERTH_DEFAULT_LISTEN "127.0.0.1:5000" /* default listen address */
#define BERTH_DEFAULT_DATA "./data"           /* default data directory */
#define BERTH_LISTEN_BACKLOG 1024             /* listen(2) backlog */

/* --- protocol limits (distribution-spec) --- */
#define BERTH_NAME_MAX 255                    /* repository name length, spec grammar + Distribution's cap */
#define BERTH_NAME_COMPONENT_MAX 255          /* one path component of a repository name */
#define BERTH_TAG_MAX 128                     /* tag length ([a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}) */
#define BERTH_DIGEST_MAX 80                   /* "sha256:" + 64 hex, with room for the NUL */
#define BERTH_PAGE_MAX 1000                   /* most entries one tags/list or _catalog page returns */
#define BERTH_REFERRERS_MAX 10000             /* most descriptors in one referrers response */
#define BERTH_DEFAULT_MAX_MANIFEST (4u << 20) /* default manifest size cap: 4 MiB */
#define BERTH_DEFAULT_MAX_BLOB (64ull << 30)  /* default blob size cap: 64 GiB */
#define BERTH_MANIFEST_REFS_MAX 100000        /* most descriptors one manifest may reference */
#define BERTH_ACCEPT_VALUES_MAX 64            /* most media types read from Accept headers */
#define BERTH_UUID_LEN 36                     /* upload session id: canonical UUID text */

/* --- timeouts (seconds) --- */
#define BERTH_DEFAULT_REQUEST_TIMEOUT 600        /* default: one HTTP/1 request, headers + body, and keep-alive idle */
#define BERTH_DEFAULT_UPLOAD_TIMEOUT (24 * 3600) /* default: an upload session idle this long is removed */
#define BERTH_SHUTDOWN_GRACE 30                  /* SIGTERM: how long in-flight requests may take to finish */
#define BERTH_DB_BUSY_TIMEOUT_MS 30000           /* SQLite busy_timeout */
#define BERTH_JANITOR_INTERVAL 60                /* how often stale uploads are swept */
#define BERTH_PULL_FLUSH_INTERVAL 5              /* how often last-pull times are written */

/* --- sizes --- */
#define BERTH_COPY_CHUNK (1u << 20)      /* body bytes written per step while hashing (1 MiB) */
#define BERTH_READ_CHUNK (256u << 10)    /* blob bytes sent per step to a client (256 KiB) */
#define BERTH_SPILL_THRESHOLD (8u << 20) /* request bodies above this are buffered in <data>/tmp files */
#define BERTH_DEFAULT_WORKERS 16         /* default blocking-work threads (fsync, hashing, writes) */
#define BERTH_MAX_THREADS 64             /* cap for threads and worker threads */
#define BERTH_COMMIT_BATCH_MAX 256       /* most metadata writes grouped in one SQLite transaction */

#endif
