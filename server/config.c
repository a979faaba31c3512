/* config.c - embedded defaults, the `key = value` config file, and option parsing shared with the flags. */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "config.h"
#include "defaults.h"
#include "log.h"
#include "webhook.h"

void config_defaults(struct config *c)
{
    memset(c, 0, sizeof(*c));
    snprintf(c->listen, sizeof(c->listen), "%s", BERTH_DEFAULT_LISTEN);
    snprintf(c->data, sizeof(c->data), "%s", BERTH_DEFAULT_DATA);
    snprintf(c->metadata, sizeof(c->metadata), "sqlite");
    snprintf(c->access_log, sizeof(c->access_log), "%s", BERTH_DEFAULT_ACCESS_LOG);
    c->threads = 0;
    c->workers = BERTH_DEFAULT_WORKERS;
    c->max_blob_size = BERTH_DEFAULT_MAX_BLOB;
    c->max_manifest_size = BERTH_DEFAULT_MAX_MANIFEST;
    c->request_timeout = BERTH_DEFAULT_REQUEST_TIMEOUT;
    c->upload_timeout = BERTH_DEFAULT_UPLOAD_TIMEOUT;
    c->log_level = LOG_INFO;
    snprintf(c->auth_service, sizeof(c->auth_service), "%s", BERTH_AUTH_SERVICE);
    c->auth_token_ttl = BERTH_JWT_TTL;
    c->events_retention = BERTH_DEFAULT_EVENTS_RETENTION;
    c->min_free_space = BERTH_DEFAULT_MIN_FREE_SPACE;
    snprintf(c->region, sizeof(c->region), "%s", BERTH_ECR_DEFAULT_REGION);
    c->create_on_push = 1;
    c->gc_grace = BERTH_DEFAULT_GC_GRACE;
    c->lifecycle_interval = BERTH_DEFAULT_LIFECYCLE_INTERVAL;
    config_storage_set(&c->st, "storage", "disk");
}

int config_duration(const char *v, long long *out)
{
    static const struct {
        char unit;
        long long mul;
    } units[] = {{'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    char *end;
    long long n;
    if (strcmp(v, "off") == 0) {
        *out = 0;
        return 0;
    }
    errno = 0;
    n = strtoll(v, &end, 10);
    if (errno != 0 || end == v || n < 0 || v[0] == '-' || v[0] == '+')
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (*end == units[i].unit && (*end == '\0' || end[1] == '\0')) {
            if (n > 100LL * 365 * 86400 / units[i].mul)
                return -1;
            *out = n * units[i].mul;
            return 0;
        }
    return -1;
}

const char *const config_keys[] = {
    "listen",
    "data",
    "metadata",
    "threads",
    "workers",
    "max_blob_size",
    "max_manifest_size",
    "request_timeout",
    "upload_timeout",
    "access_log",
    "log_level",
    "tls_cert",
    "tls_key",
    "auth",
    "auth_service",
    "auth_realm",
    "auth_token_ttl",
    "metrics_listen",
    "min_free_space",
    "access_log_format",
    "untagged_retention",
    "gc_grace",
    "lifecycle_interval",
    "region",
    "registry_id",
    "create_on_push",
    "events_retention",
    "webhook",
    "storage",
    "s3_endpoint",
    "s3_region",
    "s3_access_key",
    "s3_secret_key",
    "s3_path_style",
    "s3_redirect",
    "s3_redirect_ttl",
    NULL,
};

int config_env(struct config *c, char *err, size_t errlen)
{
    char name[64], msg[512];
    for (int i = 0; config_keys[i] != NULL; i++) {
        const char *v;
        size_t j = 0;
        j = (size_t)snprintf(name, sizeof(name), "BERTH_");
        for (const char *k = config_keys[i]; *k && j + 1 < sizeof(name); k++)
            name[j++] = (char)toupper((unsigned char)*k);
        name[j] = '\0';
        if ((v = getenv(name)) == NULL)
            continue;
        if (config_set(c, config_keys[i], v, msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "environment %s: %s", name, msg);
            return -1;
        }
    }
    return 0;
}

int config_size(const char *v, uint64_t *out)
{
    char *end;
    unsigned long long n;
    errno = 0;
    n = strtoull(v, &end, 10);
    if (errno != 0 || end == v || v[0] == '-')
        return -1;
    int shift = 0;
    switch (toupper((unsigned char)*end)) {
    case 'T':
        shift = 40;
        break;
    case 'G':
        shift = 30;
        break;
    case 'M':
        shift = 20;
        break;
    case 'K':
        shift = 10;
        break;
    default:
        break;
    }
    if (shift > 0) {
        if (n > (ULLONG_MAX >> shift))
            return -1; /* overflow */
        n <<= shift;
        end++;
        if (toupper((unsigned char)*end) == 'I')
            end++;
        if (toupper((unsigned char)*end) == 'B')
            end++;
    }
    if (*end != '\0')
        return -1;
    *out = n;
    return 0;
}

static int parse_int(const char *v, int lo, int hi, int *out)
{
    char *end;
    long n;
    errno = 0;
    n = strtol(v, &end, 10);
    if (errno != 0 || end == v || *end != '\0' || n < lo || n > hi)
        return -1;
    *out = (int)n;
    return 0;
}

static int set_str(char *dst, size_t size, const char *v)
{
    if (strlen(v) >= size)
        return -1;
    memcpy(dst, v, strlen(v) + 1);
    return 0;
}

/* ECR settings: a region is [a-z0-9-], a registry id exactly 12 digits. */
static int set_charset(char *dst, size_t size, const char *v, const char *set, size_t exact)
{
    if (v[0] == '\0' || strspn(v, set) != strlen(v) || (exact != 0 && strlen(v) != exact))
        return -1;
    return set_str(dst, size, v);
}

/* `webhook = URL [secret=S] [events=LIST] [repository=PATTERN]`: repeated lines add receivers. */
static int add_webhook(struct config *c, const char *v, char *err, size_t errlen)
{
    struct webhook_conf w;
    if (v[0] == '\0') /* `webhook =` alone (the example's default): none */
        return 0;
    if (c->nwebhooks == BERTH_WEBHOOKS_MAX) {
        snprintf(err, errlen, "at most %d webhook lines", BERTH_WEBHOOKS_MAX);
        return -1;
    }
    if (webhook_parse(v, &w, err, errlen) != 0)
        return -1;
    snprintf(c->webhooks[c->nwebhooks++], BERTH_WEBHOOK_LINE_MAX, "%s", v);
    return 0;
}

int config_set(struct config *c, const char *k, const char *v, char *err, size_t errlen)
{
    uint64_t sz;
    int rc = -1;
    if (strcmp(k, "listen") == 0)
        rc = set_str(c->listen, sizeof(c->listen), v);
    else if (strcmp(k, "data") == 0)
        rc = set_str(c->data, sizeof(c->data), v);
    else if (strcmp(k, "metadata") == 0)
        rc = strcmp(v, "sqlite") == 0 || strncmp(v, "postgresql://", 13) == 0 || strncmp(v, "postgres://", 11) == 0
                 ? set_str(c->metadata, sizeof(c->metadata), v)
                 : -1;
    else if (strcmp(k, "threads") == 0)
        rc = parse_int(v, 0, BERTH_MAX_THREADS, &c->threads);
    else if (strcmp(k, "workers") == 0)
        rc = parse_int(v, 1, BERTH_MAX_THREADS, &c->workers);
    else if (strcmp(k, "max_blob_size") == 0) {
        if ((rc = config_size(v, &sz)) == 0)
            c->max_blob_size = sz;
    } else if (strcmp(k, "max_manifest_size") == 0) {
        if ((rc = config_size(v, &sz)) == 0 && (sz == 0 || sz > (64u << 20)))
            rc = -1;
        if (rc == 0)
            c->max_manifest_size = (size_t)sz;
    } else if (strcmp(k, "request_timeout") == 0)
        rc = parse_int(v, 1, 7 * 24 * 3600, &c->request_timeout);
    else if (strcmp(k, "upload_timeout") == 0)
        rc = parse_int(v, 60, 30 * 24 * 3600, &c->upload_timeout);
    else if (strcmp(k, "access_log") == 0)
        rc = set_str(c->access_log, sizeof(c->access_log), v);
    else if (strcmp(k, "log_level") == 0)
        rc = (c->log_level = log_parse_level(v)) < 0 ? -1 : 0;
    else if (strcmp(k, "tls_cert") == 0)
        rc = set_str(c->tls_cert, sizeof(c->tls_cert), v);
    else if (strcmp(k, "tls_key") == 0)
        rc = set_str(c->tls_key, sizeof(c->tls_key), v);
    else if (strcmp(k, "auth") == 0) {
        if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
            c->no_auth = strcmp(v, "off") == 0;
            rc = 0;
        }
    } else if (strcmp(k, "auth_service") == 0)
        rc = v[0] == '\0' || strpbrk(v, "\"\\") != NULL ? -1 : set_str(c->auth_service, sizeof(c->auth_service), v);
    else if (strcmp(k, "auth_realm") == 0)
        rc = strpbrk(v, "\"\\") != NULL ? -1 : set_str(c->auth_realm, sizeof(c->auth_realm), v);
    else if (strcmp(k, "auth_token_ttl") == 0)
        rc = parse_int(v, 30, BERTH_JWT_TTL_MAX, &c->auth_token_ttl);
    else if (strcmp(k, "events_retention") == 0)
        rc = parse_int(v, 3600, 366 * 24 * 3600, &c->events_retention);
    else if (strcmp(k, "webhook") == 0)
        return add_webhook(c, v, err, errlen);
    else if (strcmp(k, "metrics_listen") == 0)
        rc = set_str(c->metrics_listen, sizeof(c->metrics_listen), v);
    else if (strcmp(k, "min_free_space") == 0)
        rc = config_size(v, &c->min_free_space);
    else if (strcmp(k, "access_log_format") == 0) {
        if (strcmp(v, "combined") == 0 || strcmp(v, "json") == 0) {
            c->access_log_json = strcmp(v, "json") == 0;
            rc = 0;
        }
    } else if (strcmp(k, "region") == 0)
        rc = set_charset(c->region, sizeof(c->region), v, "abcdefghijklmnopqrstuvwxyz0123456789-", 0);
    else if (strcmp(k, "registry_id") == 0)
        rc = v[0] == '\0' ? set_str(c->registry_id, sizeof(c->registry_id), v)
                          : set_charset(c->registry_id, sizeof(c->registry_id), v, "0123456789", 12);
    else if (strcmp(k, "create_on_push") == 0) {
        if (strcmp(v, "on") == 0 || strcmp(v, "off") == 0) {
            c->create_on_push = strcmp(v, "on") == 0;
            rc = 0;
        }
    } else if (strcmp(k, "untagged_retention") == 0)
        rc = config_duration(v, &c->untagged_retention);
    else if (strcmp(k, "gc_grace") == 0)
        rc = config_duration(v, &c->gc_grace);
    else if (strcmp(k, "lifecycle_interval") == 0)
        rc = config_duration(v, &c->lifecycle_interval);
    else if ((rc = config_storage_set(&c->st, k, v)) <= 0)
        ; /* storage and s3_* (config_storage.c) */
    else {
        snprintf(err, errlen, "unknown option '%s'", k);
        return -1;
    }
    if (rc != 0)
        snprintf(err, errlen, "invalid value '%s' for option '%s'", v, k);
    return rc;
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int config_load(struct config *c, const char *path, char *err, size_t errlen)
{
    char line[2048], msg[512];
    int lineno = 0;
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        snprintf(err, errlen, "cannot open config %s: %s", path, strerror(errno));
        return -1;
    }
    while (fgets(line, sizeof(line), f) != NULL) {
        char *hash = strchr(line, '#'), *eq, *key;
        lineno++;
        if (hash != NULL)
            *hash = '\0';
        key = trim(line);
        if (*key == '\0')
            continue;
        if ((eq = strchr(key, '=')) == NULL) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            fclose(f);
            return -1;
        }
        *eq = '\0';
        if (config_set(c, trim(key), trim(eq + 1), msg, sizeof(msg)) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

int config_listen_addr(const struct config *c, char *host, size_t hostlen, int *port)
{
    const char *colon = strrchr(c->listen, ':');
    size_t hl;
    int p;
    if (colon == NULL || parse_int(colon + 1, 0, 65535, &p) != 0)
        return -1;
    const char *h = c->listen;
    hl = (size_t)(colon - c->listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') { /* [::1]:5000 */
        h++;
        hl -= 2;
    }
    if (hl + 1 > hostlen)
        return -1;
    memcpy(host, h, hl);
    host[hl] = '\0';
    *port = p;
    return 0;
}
