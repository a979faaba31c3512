/*
 * config.h - berth's settings: embedded defaults, then the config file, then command-line flags.
 *
 * The file format is one `key = value` per line, `#` starts a comment; conf/berth.example.conf lists every key.
 */
#ifndef BERTH_CONFIG_H
#define BERTH_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include "defaults.h"

#define CONFIG_PATH_MAX 1024

/* Where blobs live (config_storage.c). */
struct config_storage {
    char storage[CONFIG_PATH_MAX]; /* "disk" (default) or "s3://BUCKET[/PREFIX]" */
    char s3_endpoint[512];         /* http://host:port of the S3-compatible endpoint */
    char s3_region[64];            /* the region requests are signed for */
    char s3_access_key[129];       /* "" = AWS_ACCESS_KEY_ID */
    char s3_secret_key[129];       /* "" = AWS_SECRET_ACCESS_KEY; never logged */
    int s3_path_style;             /* 1 = http://host/BUCKET/KEY, 0 = virtual-hosted; -1 = default (on) */
    int s3_redirect;               /* 1 = blob GETs answer 307 to a presigned URL */
    long long s3_redirect_ttl;     /* seconds a presigned URL stays valid; 0 = BERTH_S3_PRESIGN_TTL */
};

struct config {
    char listen[256];                 /* HOST:PORT */
    char data[CONFIG_PATH_MAX];       /* data directory */
    char metadata[CONFIG_PATH_MAX];   /* "sqlite" (berth.db in data) or a libpq URL postgresql://… (db.h) */
    int threads;                      /* event-loop threads; 0 = number of cores */
    int workers;                      /* blocking-work threads */
    uint64_t max_blob_size;           /* bytes */
    size_t max_manifest_size;         /* bytes */
    int request_timeout;              /* seconds: one HTTP/1 request (headers + body) and keep-alive idle */
    int upload_timeout;               /* seconds an idle upload session survives */
    char access_log[CONFIG_PATH_MAX]; /* "-" = stderr (default), a file, "off" or "" = none */
    int log_level;                    /* enum log_level */
    char tls_cert[CONFIG_PATH_MAX];   /* PEM certificate chain; "" = plain HTTP */
    char tls_key[CONFIG_PATH_MAX];    /* PEM private key */
    int no_auth;                      /* 1 = anyone may do anything (local experiments only) */
    char auth_service[128];           /* token service name = the JWTs' audience */
    char auth_realm[512];             /* token URL in challenges; "" = <scheme>://<authority>/token of the request */
    int auth_token_ttl;               /* seconds a bearer token lives */
    char metrics_listen[256];         /* HOST:PORT of the unauthenticated /metrics listener; "" = off */
    uint64_t min_free_space;          /* bytes: /readyz fails below this much free space in the data directory */
    int access_log_json;              /* access_log_format: 0 = combined, 1 = json (JSON lines) */
    char region[64];                  /* ECR API: the region requests must be signed for */
    char registry_id[16];             /* ECR API: 12 digits; "" = derived once from the data directory */
    int create_on_push;               /* 1 = a push creates its repository; 0 = `berth repo create` first */
    long long untagged_retention;     /* seconds; untagged images older than this are expired everywhere; 0 = off */
    long long gc_grace;               /* seconds an unreferenced blob is kept before GC removes it */
    long long lifecycle_interval;     /* seconds between serve's lifecycle + GC runs; 0 = off */
    int events_retention;             /* seconds an event is kept in berth.db (events.h) */
    int nwebhooks;                    /* `webhook = …` lines (webhook.h), each checked by webhook_parse */
    char webhooks[BERTH_WEBHOOKS_MAX][BERTH_WEBHOOK_LINE_MAX];
    struct config_storage st; /* storage = disk | s3://BUCKET[/PREFIX] and the s3_* keys (config_storage.c) */
};

/** Fills `c` with the embedded defaults. */
void config_defaults(struct config *c);
/** Reads `path` over `c`.  On error writes a message naming the line into `err` and returns -1. */
int config_load(struct config *c, const char *path, char *err, size_t errlen);
/** Sets one option by its config-file key; returns 0, or -1 with a message in `err`. */
int config_set(struct config *c, const char *key, const char *value, char *err, size_t errlen);
/**
 * Applies the environment over `c`: every option key K can be set by BERTH_<K in upper case> (BERTH_LISTEN,
 * BERTH_DATA, BERTH_TLS_CERT, BERTH_METRICS_LISTEN, …; see config_keys).  Precedence, lowest first: embedded
 * defaults, the config file, the environment, command-line flags.  An invalid value is an error naming the
 * variable (message in `err`, returns -1).
 */
int config_env(struct config *c, char *err, size_t errlen);
/** Parses a size in bytes with an optional K, M, G or T suffix (powers of 1024; "Ki"/"KiB"/"KB" spellings too) into
 *  `out`.  Returns 0, or -1 for anything else or a value past 64 bits. */
int config_size(const char *v, uint64_t *out);
/** The option keys, NULL-terminated (each is also an environment variable BERTH_<KEY>). */
extern const char *const config_keys[];
/** Parses a duration: "off" or "0" (0), or N with an optional unit s, m, h, d, w.  Returns 0 or -1. */
int config_duration(const char *v, long long *out);
/** Sets one of the storage keys (storage, s3_*) of `c`.  Returns 1 if `key` is not one of them, 0 when set, -1
 *  for an invalid value. */
int config_storage_set(struct config_storage *c, const char *key, const char *value);
struct blobstore;
/** Opens the blobstore `c` describes over `datadir` (disk, or an S3 bucket with the keys from the config or the
 *  AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY environment).  Returns 0, or -1 with a message in `err`. */
int config_blobstore(const struct config_storage *c, const char *datadir, struct blobstore *bs, char *err,
                     size_t errlen);
/** Splits c->listen into host and port; returns 0 or -1. */
int config_listen_addr(const struct config *c, char *host, size_t hostlen, int *port);

#endif
