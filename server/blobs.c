/* blobs.c - blob GET/HEAD (with single byte ranges) and DELETE (unlinks the blob from the repository). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "err.h"
#include "events.h"
#include "evsource.h"
#include "handlers.h"
#include "httpparse.h"
#include "log.h"
#include "meta.h"
#include "respond.h"

/*
 * Streams [off, off+left) of a blob to the client straight from a read-only mapping of its file, BERTH_READ_CHUNK
 * at a time: no copy into a user buffer (h2o writes the mapped pages to the socket).  Mapping is safe because
 * committed blobs are immutable: they are never written again, and GC removes them by unlink(2), which leaves an
 * existing mapping valid.
 */
struct blob_gen {
    h2o_generator_t super;
    char *map;
    size_t map_len;
    uint64_t off, left;
    uint64_t dropped; /* pages below this offset are no longer mapped in (see gen_drop_sent) */
};

static void gen_unmap(struct blob_gen *g)
{
    if (g->map != NULL)
        munmap(g->map, g->map_len);
    g->map = NULL;
}

/*
 * h2o calls proceed only once the bytes handed over before are written (or copied by the protocol layer), so the
 * pages already sent can leave this process's page tables: they would otherwise stay mapped until the request ends
 * and count in RSS (RssFile) — 1 GiB for a 1 GiB pull.  MADV_DONTNEED on a shared read-only file mapping only
 * unmaps: the pages stay in the page cache and reading them again faults them back in, so this is never unsafe.
 */
static void gen_drop_sent(struct blob_gen *g)
{
    static size_t page;
    uint64_t upto;
    if (page == 0)
        page = (size_t)sysconf(_SC_PAGESIZE);
    upto = g->off / page * page;
    if (upto > g->dropped) {
        madvise(g->map + g->dropped, (size_t)(upto - g->dropped), MADV_DONTNEED);
        g->dropped = upto;
    }
}

static void gen_proceed(h2o_generator_t *_g, h2o_req_t *req)
{
    struct blob_gen *g = (void *)_g;
    size_t n = g->left < BERTH_READ_CHUNK ? (size_t)g->left : BERTH_READ_CHUNK;
    h2o_iovec_t vec = h2o_iovec_init(g->map + g->off, n);
    gen_drop_sent(g); /* what lies before g->off has been sent */
    g->off += n;
    g->left -= n;
    /* the mapping must outlive the bytes in flight: it is released when the request is disposed */
    h2o_send(req, &vec, 1, g->left == 0 ? H2O_SEND_STATE_FINAL : H2O_SEND_STATE_IN_PROGRESS);
}

static void gen_stop(h2o_generator_t *_g, h2o_req_t *req)
{
    (void)_g;
    (void)req;
}

static void gen_dispose(void *p)
{
    gen_unmap(p);
}

int blobs_get(struct call *call, h2o_req_t *req, const struct route *rt)
{
    int64_t size;
    uint64_t fsize, from = 0, to = 0;
    int fd, rc, ranged = 0;
    struct db *db = server_db(call->srv);
    h2o_iovec_t range = respond_req_header(req, "range");
    struct blob_gen *g;
    if (db == NULL)
        return BERR_DB;
    if ((rc = meta_blob_stat(db, rt->name, rt->ref, &size)) != 0)
        return rc;
    if (call->srv->bs.s3 != NULL) /* storage = s3:// */
        return blobs_get_s3(call, req, rt, (uint64_t)size);
    if ((rc = blobstore_open(&call->srv->bs, rt->ref, &fd, &fsize)) != 0) {
        if (rc == BERR_BLOB_UNKNOWN && meta_blob_stat(db, rt->name, rt->ref, &size) == BERR_BLOB_UNKNOWN)
            return BERR_BLOB_UNKNOWN; /* garbage-collected between the two lookups (gc.h) */
        log_error("blob %s has a row but no readable file (%s)", rt->ref, berr_name(rc));
        return rc == BERR_BLOB_UNKNOWN ? BERR_IO : rc;
    }
    if (range.base != NULL) {
        if ((ranged = httpparse_range(range.base, range.len, fsize, &from, &to)) < 0) {
            close(fd);
            respond_header(req, "content-range", respond_printf(req, "bytes */%llu", (unsigned long long)fsize), 0);
            respond_error(req, BERR_RANGE_UNSATISFIABLE, "the Range header does not fit the blob");
            return 0;
        }
    }
    if (!ranged) {
        from = 0;
        to = fsize - 1;
    }
    g = h2o_mem_alloc_shared(&req->pool, sizeof(*g), gen_dispose);
    memset(g, 0, sizeof(*g));
    g->super.proceed = gen_proceed;
    g->super.stop = gen_stop;
    g->off = from;
    g->dropped = 0;
    g->left = fsize == 0 ? 0 : to - from + 1;
    if (!h2o_memis(req->method.base, req->method.len, H2O_STRLIT("HEAD")) && g->left > 0) {
        void *map = mmap(NULL, (size_t)fsize, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED) {
            log_error("cannot map blob %s: %s", rt->ref, strerror(errno));
            close(fd);
            return BERR_IO;
        }
        madvise(map, (size_t)fsize, MADV_SEQUENTIAL);
        g->map = map;
        g->map_len = (size_t)fsize;
    }
    close(fd);
    req->res.status = ranged ? 206 : 200;
    req->res.reason = ranged ? "Partial Content" : "OK";
    req->res.content_length = (size_t)g->left;
    respond_common(req);
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, H2O_STRLIT("application/octet-stream"));
    respond_header(req, "docker-content-digest", rt->ref, 1);
    respond_header(req, "etag", respond_printf(req, "\"%s\"", rt->ref), 0);
    respond_header(req, "accept-ranges", "bytes", 0);
    respond_header(req, "cache-control", "max-age=31536000", 0);
    if (ranged)
        respond_header(req, "content-range",
                       respond_printf(req, "bytes %llu-%llu/%llu", (unsigned long long)from, (unsigned long long)to,
                                      (unsigned long long)fsize),
                       0);
    h2o_start_response(req, &g->super);
    if (g->map == NULL) { /* HEAD, or nothing to send */
        h2o_send(req, NULL, 0, H2O_SEND_STATE_FINAL);
        return 0;
    }
    gen_proceed(&g->super, req);
    return 0;
}

/* ---- DELETE ---- */

static int delete_op(struct db *db, const struct route *rt, const struct event_source *from)
{
    int rc = meta_blob_unlink(db, rt->name, rt->ref);
    if (rc == 0)
        rc = events_emit(db, &(struct event){.action = EVENT_DELETE,
                                             .repository = rt->name,
                                             .digest = rt->ref,
                                             .media_type = "application/octet-stream",
                                             .size = -1,
                                             .from = from});
    return rc;
}

int blobs_delete(struct call *call, h2o_req_t *req, const struct route *rt)
{
    (void)req;
    (void)rt;
    return evsource_route_write(call, delete_op, 202);
}
