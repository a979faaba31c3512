/*
 * defaults.h - every limit, size and timeout of Berth, in one place.
 *
 * Values marked "default" can be changed in the config file or by a flag; the others are protocol limits.
 */
#ifndef BERTH_DEFAULTS_H
#define BERTH_DEFAULTS_H

/* --- network --- */
#define BERTH_DEFAULT_LISTEN "127.0.0.1:5000" /* default listen address */
#define BERTH_DEFAULT_DATA "./data"           /* default data directory */
#define BERTH_DEFAULT_ACCESS_LOG "-"          /* default access log: combined format on the inherited stderr */
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
#define BERTH_UUID_LEN 36                     /* upload session id: canonical UUID text */

/* --- timeouts (seconds) --- */
/* default: deadline of one HTTP/1 request, headers and whole body (h2o 2.2.5), and the keep-alive idle time */
#define BERTH_DEFAULT_REQUEST_TIMEOUT 3600
#define BERTH_DEFAULT_UPLOAD_TIMEOUT (24 * 3600) /* default: an upload session idle this long is removed */
#define BERTH_DEFAULT_GC_GRACE 3600              /* default: unreferenced blobs younger than this are kept (gc.h) */
#define BERTH_DEFAULT_LIFECYCLE_INTERVAL 3600    /* default: how often serve runs lifecycle policies, then GC */
#define BERTH_LIFECYCLE_FIRST_DELAY 300          /* serve's first lifecycle + GC run, after start */
#define BERTH_SHUTDOWN_GRACE 30                  /* SIGTERM: how long in-flight requests may take to finish */
#define BERTH_DB_BUSY_TIMEOUT_MS 30000           /* SQLite busy_timeout */
#define BERTH_JANITOR_INTERVAL 60                /* how often stale uploads are swept */
#define BERTH_PULL_FLUSH_INTERVAL 5              /* how often last-pull times are written */

/* --- sizes --- */
#define BERTH_COPY_CHUNK (4u << 20)           /* body bytes written and hashed per step (4 MiB) */
#define BERTH_READ_CHUNK (1u << 20)           /* blob bytes handed to h2o per step when serving (1 MiB) */
#define BERTH_SPILL_THRESHOLD (1u << 28)      /* socket buffers past this spill to <data>/tmp; never (bodies stream) */
#define BERTH_DEFAULT_WORKERS 16              /* default blocking-work threads (fsync, hashing, writes) */
#define BERTH_MAX_THREADS 64                  /* cap for threads and worker threads */
#define BERTH_COMMIT_BATCH_MAX 256            /* most metadata writes grouped in one SQLite transaction */
#define BERTH_INLINE_MANIFEST_MAX (64u << 10) /* manifests up to this size are hashed and parsed on the loop */

/* --- authentication and authorization (auth.h, authdb.h, jwt.h) --- */
#define BERTH_AUTH_SERVICE "berth"                /* default: the token service name, also the JWTs' audience */
#define BERTH_AUTH_ISSUER "berth"                 /* the JWTs' issuer */
#define BERTH_AUTH_NAME_MAX 64                    /* user and robot-token names */
#define BERTH_AUTH_PASSWORD_MAX 256               /* longest password or token secret accepted */
#define BERTH_AUTH_PASSWORD_MIN 12                /* shortest password set by hand (`berth user add|passwd`) */
#define BERTH_AUTH_SCOPES_MAX 16                  /* scopes honored in one token request */
#define BERTH_AUTH_GRANTS_MAX 4096                /* grants read for one identity */
#define BERTH_AUTH_REALM_MAX 512                  /* the realm URL in WWW-Authenticate */
#define BERTH_JWT_TTL 300                         /* default: lifetime of a bearer token (5 minutes) */
#define BERTH_JWT_TTL_MAX 3600                    /* the longest configurable bearer-token lifetime */
#define BERTH_JWT_MAX 8192                        /* longest bearer token accepted */
#define BERTH_JWT_LEEWAY 30                       /* clock skew tolerated on nbf and iat */
#define BERTH_JWT_KEY_ROTATE_AGE (90 * 24 * 3600) /* a signing key older than this is rotated at start */
#define BERTH_TOKEN_SECRET_BYTES 32               /* random bytes of a robot-token secret */
#define BERTH_TOKEN_DEFAULT_TTL (90 * 24 * 3600)  /* default lifetime of a robot token */
#define BERTH_ADMIN_PASSWORD_BYTES 18             /* random bytes of a generated password (24 chars) */
#define BERTH_AUTH_CACHE_SLOTS 1024               /* successful password checks remembered */
#define BERTH_AUTH_CACHE_TTL 60                   /* seconds a successful password check is remembered */
#define BERTH_AUTH_JWT_CACHE_SLOTS 1024           /* verified bearer tokens remembered (until their exp) */
#define BERTH_AUTH_ARGON2_MAX 8                   /* concurrent argon2id verifications (64 MiB each) */
#define BERTH_AUTH_FAIL_SLOTS 4096                /* rate-limit table entries (fixed size) */
#define BERTH_AUTH_FAIL_WINDOW 300                /* seconds over which failed logins are counted */
#define BERTH_AUTH_FAIL_MAX_USER 10               /* failed logins per client address and user per window */
#define BERTH_AUTH_FAIL_MAX_ADDR 50               /* failed logins per client address per window */

/* --- operations (observability, backup) --- */
#define BERTH_DEFAULT_MIN_FREE_SPACE (1ull << 30) /* default: /readyz fails below 1 GiB free in the data dir */
/* --- events, webhooks and quotas (events.h, webhook.h, quota.h) --- */
#define BERTH_EVENTS_PULL_BUFFER 4096                  /* pull events buffered between two flushes (the rest dropped) */
#define BERTH_DEFAULT_EVENTS_RETENTION (7 * 24 * 3600) /* default: seconds an event is kept (delivered or not) */
#define BERTH_EVENTS_PRUNE_BATCH 10000                 /* events deleted per pruning transaction */
#define BERTH_EVENTS_PRUNE_INTERVAL 3600               /* seconds between two prunings */
#define BERTH_WEBHOOKS_MAX 16                          /* webhook entries in the config */
#define BERTH_WEBHOOK_LINE_MAX 2048                    /* one `webhook = …` value */
#define BERTH_WEBHOOK_BATCH_MAX 100                    /* events in one notification envelope */
#define BERTH_WEBHOOK_SCAN_MAX 1000                    /* events read per step when looking for matching ones */
#define BERTH_WEBHOOK_POLL_MS 500                      /* how often a webhook looks for new events when idle */
#define BERTH_WEBHOOK_TIMEOUT_MS 10000                 /* connect, send and response deadline of one delivery */
#define BERTH_WEBHOOK_BACKOFF_MIN_MS 1000              /* first retry delay after a failed delivery */
#define BERTH_WEBHOOK_BACKOFF_MAX_MS 60000             /* retry delays double up to this */
#define BERTH_WEBHOOK_RESPONSE_MAX 4096                /* response bytes read (only the status line matters) */

/* --- upload sessions (storage/sessions.c) --- */
#define BERTH_SESSIONS_OPEN_MAX 512 /* live upload sessions kept open (a descriptor each); idle ones past it close */

/* --- HTTP/1.1 connections owned by Berth (server/h1.c, docs/HTTP1.md); head limits are in http1.h --- */
#define BERTH_UPLOAD_BODIES_MAX 256     /* upload bodies streamed at once, all clients (one thread each) */
#define BERTH_UPLOAD_BODIES_PER_ADDR 64 /* ... from one client address (a CI host, a NAT or a proxy pushes many) */
#define BERTH_RETRY_AFTER_S 1           /* Retry-After (seconds) on every 429: these limits clear within a second */
#define BERTH_UPLOAD_ADDR_SLOTS 1024    /* client addresses tracked for the per-address cap */
#define BERTH_STREAM_CHUNK (1u << 17)   /* body bytes handed from the loop to the writer per step (128 KiB), <= 3 */
#define BERTH_STREAM_RCVBUF (1u << 17)  /* SO_RCVBUF while streaming a body (128 KiB): bounds h2o's input buffer */
#define BERTH_H1_BODY_MAX (16u << 20)   /* body of any other HTTP/1.1 request, read into memory (ECR: 16 MiB) */
#define BERTH_H1_LINGER_MS 2000         /* after refusing a body: read and discard it this long, then close */
#define BERTH_H1_LINGER_MAX (64u << 20) /* ... or this many bytes, whichever comes first */
#define BERTH_TLS_HANDSHAKE_TIMEOUT 10  /* seconds a TLS handshake may take */
/* slow clients (docs/HARDENING.md): a connection waiting for a request head - idle between keep-alive requests, or
 * part-way through a head - is closed this many seconds after it began waiting (progress does not extend it; capped
 * by request_timeout); as Apache's mod_reqtimeout header=20 */
#define BERTH_H1_HEAD_TIMEOUT 20
/* while a request body is read, every BERTH_H1_BODY_RATE_WINDOW seconds in which Berth kept reading must bring at
 * least BERTH_H1_BODY_MIN_RATE bytes per second, or the connection is closed (mod_reqtimeout's MinRate=500) */
#define BERTH_H1_BODY_RATE_WINDOW 20
#define BERTH_H1_BODY_MIN_RATE 500
/* HTTP/2 (h2o 2.2.5): a connection on which no request is being processed is closed (GOAWAY) after this many
 * seconds without a byte from the client (capped by request_timeout); h2o has no head or body-rate timeout */
#define BERTH_H2_IDLE_TIMEOUT 20

/* --- memory given back (server/memtrim.c, server/h1.c; docs/HTTP1.md "Memory") --- */
#define BERTH_H1_INPUT_KEEP (64u << 10) /* an idle connection's input buffer grown past this (by a body) is freed */
#define BERTH_MALLOC_ARENAS 4           /* glibc malloc arenas (M_ARENA_MAX; default 8 per core): less slack kept */
#define BERTH_TRIM_BODY_MIN (1u << 20)  /* upload bodies this large (or chunked) trim the heap before and after */

/* --- ECR API (ecr.h, sigv4.h, accesskey.h) --- */
#define BERTH_ECR_DEFAULT_REGION "us-east-1" /* default: the region ECR requests must be signed for */
#define BERTH_ECR_TOKEN_TTL (12 * 3600)      /* GetAuthorizationToken: a login token lives 12 hours, as ECR's */
#define BERTH_ECR_BODY_MAX (16u << 20)       /* largest ECR request body (PutImage carries a 4 MiB manifest) */
#define BERTH_ECR_PAGE_DEFAULT 100           /* maxResults when the request gives none */
#define BERTH_ECR_PAGE_MAX 1000              /* largest maxResults (ECR's limit) */
#define BERTH_ECR_BATCH_MAX 100              /* most imageIds / layerDigests in one batch request (ECR's limit) */
#define BERTH_ECR_RTAGS_MAX 50               /* most resource tags on one repository (AWS's limit) */
#define BERTH_ECR_LOOP_BODY_MAX (64u << 10)  /* ECR requests up to this body are served on the event loop */
#define BERTH_ECR_AUTH_FAIL_SLOTS 1024       /* failed-signature rate-limit table entries (fixed size) */
#define BERTH_ECR_AUTH_FAIL_WINDOW 300       /* seconds over which failed ECR signatures are counted */
#define BERTH_ECR_AUTH_FAIL_MAX_ADDR 50      /* failed ECR signatures per client address per window */
#define BERTH_ECR_AUTH_FAIL_MAX_KEY 10       /* failed ECR signatures naming one access key id per window */

/* --- S3-compatible blob storage (s3.h, blobstore.h: storage = s3://BUCKET[/PREFIX]) --- */
#define BERTH_S3_TIMEOUT_MS 60000           /* connect, send and receive deadline of one S3 request step */
#define BERTH_S3_IOBUF (256u << 10)         /* response bytes read from the socket per step */
#define BERTH_S3_XML_MAX (8u << 20)         /* largest XML answer read (a ListObjectsV2 page of 1000 keys) */
#define BERTH_S3_PART_MIN (5u << 20)        /* S3's smallest part (all but the last); the buffered tail stays below */
#define BERTH_S3_PART_SIZE (5u << 20)       /* part size buffered while a body streams in (>= BERTH_S3_PART_MIN) */
#define BERTH_S3_PARTS_SMALL 5000           /* ... for this many parts (24.4 GiB), then BERTH_S3_PART_SIZE_LATE */
#define BERTH_S3_PART_SIZE_LATE (16u << 20) /* part size past BERTH_S3_PARTS_SMALL parts (blobs up to 102 GiB) */
/* committing a blob copies the finished upload object to its blob key: CopyObject up to BERTH_S3_COPY_MAX (S3's
 * limit, 5 GiB), above it a multipart copy (UploadPartCopy) of BERTH_S3_COPY_PART parts (more if 10000 parts would
 * not do).  Tests lower both with the environment variables BERTH_TEST_S3_COPY_MAX and BERTH_TEST_S3_COPY_PART
 * (bytes; the part size is raised to BERTH_S3_PART_MIN at least): never set them in production. */
#define BERTH_S3_COPY_MAX (5ull << 30)
#define BERTH_S3_COPY_PART (1ull << 30)
/* a multipart copy left this long (a crash mid-commit) is aborted by the upload expiry; tests lower it with the
 * environment variable BERTH_TEST_S3_COPY_ORPHAN_AGE (seconds; test-only, never for production) */
#define BERTH_S3_COPY_ORPHAN_AGE (24 * 3600)
#define BERTH_S3_LOADS_MAX 4 /* S3 session states read at once (each holds its < 5 MiB tail ~4 times meanwhile) */
/* a request streaming into an S3 session refreshes its row this often (seconds): a quarter of the smallest
 * upload_timeout, so that no node's expiry takes it for idle */
#define BERTH_S3_TOUCH_INTERVAL 15
#define BERTH_S3_PARTS_MAX 10000            /* S3's most parts in one multipart upload */
#define BERTH_S3_PRESIGN_TTL 900            /* lifetime of a presigned blob URL (s3_redirect = on), seconds */
#define BERTH_S3_PRESIGN_TTL_MAX 604800     /* s3_redirect_ttl's maximum: SigV4's X-Amz-Expires limit (7 days) */
#define BERTH_S3_GET_WINDOW (4u << 20)      /* blob bytes fetched from S3 per step when streaming through the node */
#define BERTH_S3_DEFAULT_REGION "us-east-1" /* default s3_region */

/* --- PostgreSQL metadata (db_pg.c: metadata = postgresql://...): libpq settings every connection gets unless its URL
 * sets them.  Without them a database host that leaves the network without a reset (a crashed host, a partition)
 * holds a connect for the kernel's SYN retries (about 2 min) and a statement for its retransmission limit (about
 * 15 min), and with it a worker or an event loop; with them the statement fails (503 UNAVAILABLE) within
 * BERTH_PG_TCP_USER_TIMEOUT_MS and the next one reconnects. --- */
#define BERTH_PG_CONNECT_TIMEOUT_S "5"       /* connect_timeout: a new connection, per address tried */
#define BERTH_PG_TCP_USER_TIMEOUT_MS "10000" /* tcp_user_timeout: sent data unacknowledged this long drops it */
#define BERTH_PG_KEEPALIVES_IDLE_S "30"      /* keepalives_idle: an idle connection is probed after this */
#define BERTH_PG_KEEPALIVES_INTERVAL_S "10"  /* keepalives_interval: between unanswered probes */
#define BERTH_PG_KEEPALIVES_COUNT "3"        /* keepalives_count: unanswered probes that drop it */
/* a reconnect that failed after this long (ms) was a timeout, not a refusal: for BERTH_PG_RECONNECT_BACKOFF_MS
 * after it, statements on lost connections fail at once (503) rather than each wait for its own connect_timeout */
#define BERTH_PG_SLOW_CONNECT_MS 1000
#define BERTH_PG_RECONNECT_BACKOFF_MS 5000

#endif
