/* listing.c - tags/list and _catalog (paginated with n/last and Link), and the referrers API. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "auth.h"
#include "digest.h"
#include "err.h"
#include "handlers.h"
#include "manifest.h"
#include "meta.h"
#include "names.h"
#include "respond.h"

/* A JSON array of names built in the request pool (names need no escaping: the grammars forbid it). */
struct name_list {
    h2o_req_t *req;
    h2o_buffer_t *buf;
    int count;
    char last[BERTH_NAME_MAX + 1];
    const struct auth_filter *filter; /* _catalog: only what the caller can pull (auth.h) */
    char seen[BERTH_NAME_MAX + 1];    /* last name read, listed or not */
};

/* Copies name[0..n) into a BERTH_NAME_MAX + 1 buffer (names and tags are shorter by grammar). */
static void copy_name(char *dst, const char *name, size_t n)
{
    if (n > BERTH_NAME_MAX)
        n = BERTH_NAME_MAX;
    memcpy(dst, name, n);
    dst[n] = '\0';
}

static int add_name(void *ctx, const char *name)
{
    struct name_list *l = ctx;
    size_t n = strlen(name);
    h2o_iovec_t dst;
    if (l->filter != NULL)
        copy_name(l->seen, name, n);
    if (!auth_filter_allows(l->filter, name))
        return 0;
    dst = h2o_buffer_reserve(&l->buf, n + 4);
    char *p = dst.base;
    if (l->count++ > 0)
        *p++ = ',';
    *p++ = '"';
    memcpy(p, name, n);
    p += n;
    *p++ = '"';
    l->buf->size += (size_t)(p - dst.base);
    copy_name(l->last, name, n);
    return 0;
}

/* Reads n and last.  n absent: BERTH_PAGE_MAX; n above the maximum is clamped (the Link header says there is more). */
static int read_paging(h2o_req_t *req, int *n, char *last, size_t lastlen, int *has_last)
{
    char buf[32], *end;
    long long v;
    int rc = respond_query(req, "n", buf, sizeof(buf));
    *n = BERTH_PAGE_MAX;
    if (rc < 0)
        return BERR_PAGINATION_INVALID;
    if (rc == 1) {
        errno = 0;
        v = strtoll(buf, &end, 10);
        if (buf[0] == '\0' || *end != '\0' || v < 0 || (errno == ERANGE && v != LLONG_MAX) || buf[0] == '-')
            return BERR_PAGINATION_INVALID;
        *n = v > BERTH_PAGE_MAX ? BERTH_PAGE_MAX : (int)v;
    }
    rc = respond_query(req, "last", last, lastlen);
    if (rc < 0)
        return BERR_PAGINATION_INVALID;
    *has_last = rc == 1;
    if (rc == 0)
        last[0] = '\0';
    return 0;
}

static void send_list(h2o_req_t *req, struct name_list *l, const char *head, const char *tail, int more, int n,
                      const char *link_path)
{
    char *body;
    if (more && n > 0)
        respond_header(req, "link", respond_printf(req, "<%s?n=%d&last=%s>; rel=\"next\"", link_path, n, l->last), 0);
    size_t hl = strlen(head), tl = strlen(tail), len = hl + l->buf->size + tl;
    body = h2o_mem_alloc_pool(&req->pool, len);
    memcpy(body, head, hl);
    if (l->buf->size > 0) /* an empty buffer has no bytes pointer */
        memcpy(body + hl, l->buf->bytes, l->buf->size);
    memcpy(body + hl + l->buf->size, tail, tl);
    h2o_buffer_dispose(&l->buf);
    respond_body(req, 200, "application/json; charset=utf-8", body, len, 1);
}

int listing_tags(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct name_list l = {.req = req};
    char last[BERTH_TAG_MAX + 2];
    int n, more = 0, has_last, rc;
    struct db *db = server_db(call->srv);
    if (db == NULL)
        return BERR_DB;
    if ((rc = read_paging(req, &n, last, sizeof(last), &has_last)) != 0)
        return rc;
    h2o_buffer_init(&l.buf, &h2o_socket_buffer_prototype);
    rc = meta_tags_list(db, rt->name, has_last ? last : NULL, n, add_name, &l, &more);
    if (rc != 0) {
        h2o_buffer_dispose(&l.buf);
        return rc;
    }
    send_list(req, &l, respond_printf(req, "{\"name\":\"%s\",\"tags\":[", rt->name), "]}\n", more, n,
              respond_printf(req, "/v2/%s/tags/list", rt->name));
    return 0;
}

int listing_catalog(struct call *call, h2o_req_t *req, const struct route *rt)
{
    struct name_list l = {.req = req};
    char last[BERTH_NAME_MAX + 2];
    int n, more = 0, has_last, rc;
    struct db *db = server_db(call->srv);
    (void)rt;
    if (db == NULL)
        return BERR_DB;
    if ((rc = read_paging(req, &n, last, sizeof(last), &has_last)) != 0)
        return rc;
    h2o_buffer_init(&l.buf, &h2o_socket_buffer_prototype);
    l.filter = auth_catalog_filter(call);
    do { /* filtered: read on until the page is full */
        const char *from = l.seen[0] != '\0' ? l.seen : has_last ? last : NULL;
        rc = meta_catalog(db, from, n - l.count, add_name, &l, &more);
    } while (rc == 0 && l.filter != NULL && more && l.count < n);
    if (rc != 0) {
        h2o_buffer_dispose(&l.buf);
        return rc;
    }
    send_list(req, &l, "{\"repositories\":[", "]}\n", more, n, "/v2/_catalog");
    return 0;
}

/* ---- referrers ---- */

static int add_referrer(void *ctx, const struct meta_referrer *r)
{
    json_t *d =
        json_pack("{s:s, s:s, s:I}", "mediaType", r->media_type, "digest", r->digest, "size", (json_int_t)r->size);
    if (d == NULL)
        return 1;
    if (r->artifact_type != NULL)
        json_object_set_new(d, "artifactType", json_string(r->artifact_type));
    if (r->annotations != NULL) {
        json_t *a = json_loads(r->annotations, 0, NULL);
        if (a != NULL)
            json_object_set_new(d, "annotations", a);
    }
    json_array_append_new(ctx, d);
    return 0;
}

int listing_referrers(struct call *call, h2o_req_t *req, const struct route *rt)
{
    char filter[MT_MEDIA_TYPE_MAX + 1];
    struct db *db = server_db(call->srv);
    json_t *list, *index;
    char *body;
    int has_filter = respond_query(req, "artifactType", filter, sizeof(filter)), rc;
    if (db == NULL)
        return BERR_DB;
    if (has_filter < 0)
        return BERR_BAD_REQUEST;
    list = json_array();
    rc =
        meta_referrers(db, rt->name, rt->ref, has_filter == 1 ? filter : NULL, BERTH_REFERRERS_MAX, add_referrer, list);
    if (rc != 0) {
        json_decref(list);
        return rc;
    }
    index = json_pack("{s:i, s:s, s:o}", "schemaVersion", 2, "mediaType", MT_OCI_INDEX, "manifests", list);
    body = json_dumps(index, JSON_COMPACT);
    json_decref(index);
    if (body == NULL)
        return BERR_NOMEM;
    if (has_filter == 1)
        respond_header(req, "oci-filters-applied", "artifactType", 0);
    respond_body(req, 200, MT_OCI_INDEX, body, strlen(body), 0);
    free(body);
    return 0;
}
