/* backup.c - online backup to one zstd-compressed tar stream, and a verified restore (see backup.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <jansson.h>
#include <sodium.h>
#include <sqlite3.h>
#include <zstd.h>
#include "backup.h"
#include "blobstore.h"
#include "db.h"
#include "digest.h"
#include "err.h"

#define TAR_BLOCK 512
#define HEADER_NAME "berth-backup.json"
#define TRAILER_NAME "berth-backup.end"
#define DB_NAME DB_FILE

/* ---- errors and progress ---- */

struct ctx {
    char *err;
    size_t errlen;
    backup_progress_fn progress;
    void *progress_arg;
    uint64_t done, total;
    struct timespec last;
    unsigned char *buf; /* BACKUP_IO_CHUNK */
};

__attribute__((format(printf, 3, 4))) static int fail(struct ctx *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

static void progress(struct ctx *c, uint64_t n, int force)
{
    struct timespec now;
    c->done += n;
    if (c->progress == NULL)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (force || (now.tv_sec - c->last.tv_sec) * 1000 + (now.tv_nsec - c->last.tv_nsec) / 1000000 >=
                     BACKUP_PROGRESS_INTERVAL_MS) {
        c->last = now;
        c->progress(c->progress_arg, c->done, c->total);
    }
}

/* ---- the blob list ---- */

struct blob {
    char digest[BERTH_DIGEST_MAX];
    uint64_t size;
    int in_archive; /* this archive carries the file */
    int have;       /* restore: unpacked and verified */
};

struct bloblist {
    struct blob *b;
    size_t n, cap;
};

static int blob_cmp(const void *a, const void *b)
{
    return strcmp(((const struct blob *)a)->digest, ((const struct blob *)b)->digest);
}

static struct blob *bloblist_find(struct bloblist *l, const char *digest)
{
    struct blob key;
    snprintf(key.digest, sizeof(key.digest), "%s", digest);
    return l->n == 0 ? NULL : bsearch(&key, l->b, l->n, sizeof(*l->b), blob_cmp);
}

static int bloblist_add(struct bloblist *l, const char *digest, uint64_t size, int in_archive)
{
    char d[BERTH_DIGEST_MAX];
    if (digest_parse(digest, strlen(digest), d) != 0)
        return BERR_DIGEST_INVALID;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 1024;
        struct blob *b = realloc(l->b, cap * sizeof(*b));
        if (b == NULL)
            return BERR_NOMEM;
        l->b = b;
        l->cap = cap;
    }
    memset(&l->b[l->n], 0, sizeof(l->b[0]));
    memcpy(l->b[l->n].digest, d, sizeof(d));
    l->b[l->n].size = size;
    l->b[l->n].in_archive = in_archive;
    l->n++;
    return 0;
}

static void bloblist_sort(struct bloblist *l)
{
    if (l->n > 0)
        qsort(l->b, l->n, sizeof(*l->b), blob_cmp);
}

/* ---- zstd output stream and tar writer ---- */

struct zout {
    int fd;
    ZSTD_CCtx *cc;
    unsigned char *out;
    size_t out_cap;
    uint64_t written;
};

static int zout_flush(struct ctx *c, struct zout *z, ZSTD_outBuffer *ob)
{
    size_t off = 0;
    while (off < ob->pos) {
        ssize_t n = write(z->fd, (char *)ob->dst + off, ob->pos - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return fail(c, berr_from_errno(errno), "writing the archive: %s", strerror(errno));
        off += (size_t)n;
    }
    z->written += ob->pos;
    ob->pos = 0;
    return 0;
}

/* Compresses `len` bytes (mode ZSTD_e_continue) or finishes the frame (ZSTD_e_end). */
static int zout_put(struct ctx *c, struct zout *z, const void *p, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {p, len, 0};
    int rc;
    for (;;) {
        ZSTD_outBuffer ob = {z->out, z->out_cap, 0};
        size_t left = ZSTD_compressStream2(z->cc, &ob, &in, mode);
        if (ZSTD_isError(left))
            return fail(c, BERR_INTERNAL, "zstd: %s", ZSTD_getErrorName(left));
        if ((rc = zout_flush(c, z, &ob)) != 0)
            return rc;
        if (mode == ZSTD_e_end ? left == 0 : in.pos == in.size)
            return 0;
    }
}

static void octal(char *field, size_t width, uint64_t v)
{
    snprintf(field, width, "%0*llo", (int)width - 1, (unsigned long long)v);
}

/* Writes a ustar header for a regular file `name` (< 100 bytes) of `size` bytes. */
static int tar_header(struct ctx *c, struct zout *z, const char *name, uint64_t size, unsigned mode)
{
    unsigned char h[TAR_BLOCK] = {0};
    unsigned sum = 0;
    if (strlen(name) >= 100)
        return fail(c, BERR_INTERNAL, "archive name too long: %s", name);
    memcpy(h, name, strlen(name));
    octal((char *)h + 100, 8, mode);
    octal((char *)h + 108, 8, 0);
    octal((char *)h + 116, 8, 0);
    if (size < (1ull << 33)) {
        octal((char *)h + 124, 12, size);
    } else { /* GNU base-256 for files of 8 GiB and more */
        h[124] = 0x80;
        for (int i = 0; i < 8; i++)
            h[135 - i] = (unsigned char)(size >> (8 * i));
    }
    octal((char *)h + 136, 12, (uint64_t)time(NULL));
    memset(h + 148, ' ', 8);
    h[156] = '0';
    memcpy(h + 257, "ustar", 6);
    memcpy(h + 263, "00", 2);
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    return zout_put(c, z, h, TAR_BLOCK, ZSTD_e_continue);
}

static int tar_pad(struct ctx *c, struct zout *z, uint64_t size)
{
    static const unsigned char zeros[TAR_BLOCK];
    size_t pad = (size_t)((TAR_BLOCK - size % TAR_BLOCK) % TAR_BLOCK);
    return pad ? zout_put(c, z, zeros, pad, ZSTD_e_continue) : 0;
}

/* An entry from memory. */
static int tar_mem(struct ctx *c, struct zout *z, const char *name, const void *p, size_t len)
{
    int rc;
    if ((rc = tar_header(c, z, name, len, 0644)) != 0 || (rc = zout_put(c, z, p, len, ZSTD_e_continue)) != 0)
        return rc;
    return tar_pad(c, z, len);
}

/* An entry from file `path`; its size must be `want` unless want is UINT64_MAX.  `hex` (may be NULL) receives its
 * sha256. */
static int tar_file(struct ctx *c, struct zout *z, const char *name, const char *path, uint64_t want, unsigned mode,
                    char hex[BERTH_DIGEST_MAX])
{
    struct digest_ctx dc;
    struct stat st;
    uint64_t off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0)
        return fail(c, errno == ENOENT ? BERR_BLOB_UNKNOWN : BERR_IO, "cannot open %s: %s%s", path, strerror(errno),
                    errno == ENOENT ? " (removed by garbage collection since the snapshot? run the backup again)" : "");
    if (fstat(fd, &st) != 0 || (want != UINT64_MAX && (uint64_t)st.st_size != want)) {
        close(fd);
        return fail(c, BERR_IO, "%s: size %lld, the database says %llu", path, (long long)st.st_size,
                    (unsigned long long)want);
    }
    if (hex != NULL && digest_ctx_init(&dc) != 0) {
        close(fd);
        return fail(c, BERR_NOMEM, "out of memory");
    }
    if ((rc = tar_header(c, z, name, (uint64_t)st.st_size, mode)) == 0)
        while (off < (uint64_t)st.st_size) {
            ssize_t n = read(fd, c->buf, BACKUP_IO_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = fail(c, BERR_IO, "reading %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
                break;
            }
            if ((uint64_t)n > (uint64_t)st.st_size - off)
                n = (ssize_t)((uint64_t)st.st_size - off); /* grew meanwhile: the snapshot's size counts */
            if (hex != NULL)
                digest_ctx_update(&dc, c->buf, (size_t)n);
            if ((rc = zout_put(c, z, c->buf, (size_t)n, ZSTD_e_continue)) != 0)
                break;
            off += (uint64_t)n;
            progress(c, (uint64_t)n, 0);
        }
    close(fd);
    if (hex != NULL) {
        if (rc == 0)
            digest_ctx_final(&dc, hex);
        else
            digest_ctx_free(&dc);
    }
    return rc != 0 ? rc : tar_pad(c, z, (uint64_t)st.st_size);
}

/* ---- zstd input stream and tar reader ---- */

struct zin {
    int fd;
    ZSTD_DCtx *dc;
    unsigned char *in, *out;
    size_t in_size, in_pos, out_len, out_pos, in_cap, out_cap;
    size_t last; /* last ZSTD_decompressStream result: 0 = a frame just ended, checksum verified */
    int in_eof;
    uint64_t read;
    const char *path;
};

static int zin_open(struct ctx *c, struct zin *z, const char *path)
{
    memset(z, 0, sizeof(*z));
    z->path = path;
    z->last = 1;
    if ((z->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return fail(c, BERR_IO, "cannot open %s: %s", path, strerror(errno));
    z->in_cap = ZSTD_DStreamInSize();
    z->out_cap = ZSTD_DStreamOutSize();
    z->dc = ZSTD_createDCtx();
    z->in = malloc(z->in_cap);
    z->out = malloc(z->out_cap);
    if (z->dc == NULL || z->in == NULL || z->out == NULL)
        return fail(c, BERR_NOMEM, "out of memory");
    return 0;
}

static void zin_close(struct zin *z)
{
    if (z->fd >= 0)
        close(z->fd);
    ZSTD_freeDCtx(z->dc);
    free(z->in);
    free(z->out);
    memset(z, 0, sizeof(*z));
    z->fd = -1;
}

/* Refills z->out.  Returns 0, 1 at a clean end of input, or an error. */
static int zin_fill(struct ctx *c, struct zin *z)
{
    while (z->out_pos == z->out_len) {
        ZSTD_inBuffer ib;
        ZSTD_outBuffer ob = {z->out, z->out_cap, 0};
        if (z->in_pos == z->in_size && !z->in_eof) {
            ssize_t n = read(z->fd, z->in, z->in_cap);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return fail(c, BERR_IO, "reading %s: %s", z->path, strerror(errno));
            z->in_size = (size_t)n;
            z->in_pos = 0;
            z->read += (uint64_t)n;
            z->in_eof = n == 0;
        }
        if (z->in_pos == z->in_size && z->in_eof)
            return 1;
        ib = (ZSTD_inBuffer){z->in, z->in_size, z->in_pos};
        z->last = ZSTD_decompressStream(z->dc, &ob, &ib);
        if (ZSTD_isError(z->last))
            return fail(c, BERR_DIGEST_INVALID, "%s is corrupted (zstd: %s)", z->path, ZSTD_getErrorName(z->last));
        z->in_pos = ib.pos;
        z->out_len = ob.pos;
        z->out_pos = 0;
    }
    return 0;
}

/* Reads exactly `len` bytes; a premature end is a truncated archive. */
static int zin_read(struct ctx *c, struct zin *z, void *p, size_t len)
{
    size_t got = 0;
    while (got < len) {
        int rc = zin_fill(c, z);
        size_t n;
        if (rc == 1)
            return fail(c, BERR_SIZE_INVALID, "%s is truncated (it ends inside its data)", z->path);
        if (rc != 0)
            return rc;
        n = z->out_len - z->out_pos < len - got ? z->out_len - z->out_pos : len - got;
        memcpy((char *)p + got, z->out + z->out_pos, n);
        z->out_pos += n;
        got += n;
    }
    return 0;
}

/* After the tar end: the stream must end with a complete frame (checksum verified) and carry nothing more. */
static int zin_finish(struct ctx *c, struct zin *z)
{
    int rc;
    while ((rc = zin_fill(c, z)) == 0) {
        for (size_t i = z->out_pos; i < z->out_len; i++)
            if (z->out[i] != 0)
                return fail(c, BERR_DIGEST_INVALID, "%s has data after the end of the archive", z->path);
        z->out_pos = z->out_len;
    }
    if (rc != 1)
        return rc;
    if (z->last != 0)
        return fail(c, BERR_SIZE_INVALID, "%s is truncated (its zstd frame is incomplete)", z->path);
    return 0;
}

struct entry {
    char name[101];
    uint64_t size;
    int end; /* the two zero blocks */
    int dir; /* a directory entry (tar(1) writes them; berth does not): skipped */
};

static uint64_t parse_octal(const unsigned char *f, size_t w)
{
    uint64_t v = 0;
    for (size_t i = 0; i < w && f[i] >= '0' && f[i] <= '7'; i++)
        v = v * 8 + (uint64_t)(f[i] - '0');
    return v;
}

static int tar_next(struct ctx *c, struct zin *z, struct entry *e)
{
    unsigned char h[TAR_BLOCK];
    unsigned sum = 0, want;
    int rc, zero = 1;
    if ((rc = zin_read(c, z, h, TAR_BLOCK)) != 0)
        return rc;
    for (int i = 0; i < TAR_BLOCK && zero; i++)
        zero = h[i] == 0;
    memset(e, 0, sizeof(*e));
    if (zero) {
        if ((rc = zin_read(c, z, h, TAR_BLOCK)) != 0)
            return rc;
        for (int i = 0; i < TAR_BLOCK; i++)
            if (h[i] != 0)
                return fail(c, BERR_DIGEST_INVALID, "%s: damaged tar end", z->path);
        e->end = 1;
        return 0;
    }
    want = (unsigned)parse_octal(h + 148, 8);
    memset(h + 148, ' ', 8);
    for (int i = 0; i < TAR_BLOCK; i++)
        sum += h[i];
    if (sum != want || memcmp(h + 257, "ustar", 5) != 0 || (h[156] != '0' && h[156] != '5') || h[345] != 0)
        return fail(c, BERR_DIGEST_INVALID, "%s: damaged tar header", z->path);
    e->dir = h[156] == '5';
    memcpy(e->name, h, 100);
    if (h[124] & 0x80) {
        for (int i = 128; i < 136; i++)
            e->size = (e->size << 8) | h[i];
    } else {
        e->size = parse_octal(h + 124, 12);
    }
    return 0;
}

/* Streams the entry's data to `fd` (-1: skip it), hashing into `dc` (may be NULL). */
static int entry_copy(struct ctx *c, struct zin *z, const struct entry *e, int fd, struct digest_ctx *dc)
{
    uint64_t left = e->size;
    size_t pad = (size_t)((TAR_BLOCK - e->size % TAR_BLOCK) % TAR_BLOCK);
    int rc;
    while (left > 0) {
        size_t n = left < BACKUP_IO_CHUNK ? (size_t)left : BACKUP_IO_CHUNK;
        if ((rc = zin_read(c, z, c->buf, n)) != 0)
            return rc;
        if (dc != NULL)
            digest_ctx_update(dc, c->buf, n);
        for (size_t off = 0; fd >= 0 && off < n;) {
            ssize_t w = write(fd, c->buf + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return fail(c, berr_from_errno(errno), "writing %s: %s", e->name, strerror(errno));
            off += (size_t)w;
        }
        left -= n;
        if (fd >= 0)
            progress(c, n, 0);
    }
    return pad ? zin_read(c, z, c->buf, pad) : 0;
}

/* Reads an entry of at most `max` bytes into a NUL-terminated malloc'd string. */
static int entry_text(struct ctx *c, struct zin *z, const struct entry *e, size_t max, char **out)
{
    size_t pad = (size_t)((TAR_BLOCK - e->size % TAR_BLOCK) % TAR_BLOCK);
    int rc;
    if (e->size > max)
        return fail(c, BERR_DIGEST_INVALID, "%s: %s is too large", z->path, e->name);
    if ((*out = malloc((size_t)e->size + 1)) == NULL)
        return fail(c, BERR_NOMEM, "out of memory");
    if ((rc = zin_read(c, z, *out, (size_t)e->size)) != 0 || (pad && (rc = zin_read(c, z, c->buf, pad)) != 0)) {
        free(*out);
        *out = NULL;
        return rc;
    }
    (*out)[e->size] = '\0';
    return 0;
}

/* Reads berth-backup.json (the first entry) of an open archive: its id and blob list. */
static int read_header(struct ctx *c, struct zin *z, char id[64], struct bloblist *l)
{
    struct entry e;
    json_error_t je;
    json_t *j, *blobs, *row;
    char *text;
    size_t i;
    int rc;
    if ((rc = tar_next(c, z, &e)) != 0)
        return rc;
    if (e.end || strcmp(e.name, HEADER_NAME) != 0)
        return fail(c, BERR_DIGEST_INVALID, "%s is not a berth backup (no %s first)", z->path, HEADER_NAME);
    if ((rc = entry_text(c, z, &e, BACKUP_HEADER_MAX, &text)) != 0)
        return rc;
    j = json_loads(text, 0, &je);
    free(text);
    blobs = json_object_get(j, "blobs");
    if (j == NULL || json_integer_value(json_object_get(j, "format")) != BACKUP_FORMAT || !json_is_array(blobs) ||
        !json_is_string(json_object_get(j, "id"))) {
        json_decref(j);
        return fail(c, BERR_DIGEST_INVALID, "%s: unreadable or unsupported %s", z->path, HEADER_NAME);
    }
    snprintf(id, 64, "%s", json_string_value(json_object_get(j, "id")));
    json_array_foreach(blobs, i, row)
    {
        json_t *d = json_array_get(row, 0), *s = json_array_get(row, 1), *in = json_array_get(row, 2);
        if (!json_is_string(d) || !json_is_integer(s) || json_integer_value(s) < 0 || !json_is_integer(in) ||
            bloblist_add(l, json_string_value(d), (uint64_t)json_integer_value(s), json_integer_value(in) != 0) != 0) {
            json_decref(j);
            return fail(c, BERR_DIGEST_INVALID, "%s: bad blob entry %zu in %s", z->path, i, HEADER_NAME);
        }
    }
    json_decref(j);
    bloblist_sort(l);
    for (i = 1; i < l->n; i++)
        if (strcmp(l->b[i - 1].digest, l->b[i].digest) == 0)
            return fail(c, BERR_DIGEST_INVALID, "%s: blob %s listed twice", z->path, l->b[i].digest);
    return 0;
}

/* ---- backup ---- */

/* Copies berth.db of `datadir` into `snap` with the online backup API (a consistent read snapshot). */
static int snapshot_db(struct ctx *c, const char *datadir, const char *snap)
{
    char path[PATH_MAX];
    sqlite3 *src = NULL, *dst = NULL;
    sqlite3_backup *b;
    int rc = 0;
    snprintf(path, sizeof(path), "%s/%s", datadir, DB_FILE);
    if (access(path, R_OK) != 0)
        return fail(c, BERR_IO, "no %s in %s: %s", DB_FILE, datadir, strerror(errno));
    if (sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_open_v2(snap, &dst, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        rc = fail(c, BERR_DB, "cannot open the databases: %s", sqlite3_errmsg(src ? (dst ? dst : src) : src));
        goto out;
    }
    sqlite3_busy_timeout(src, BERTH_DB_BUSY_TIMEOUT_MS);
    sqlite3_busy_timeout(dst, BERTH_DB_BUSY_TIMEOUT_MS);
    if ((b = sqlite3_backup_init(dst, "main", src, "main")) == NULL) {
        rc = fail(c, BERR_DB, "sqlite backup: %s", sqlite3_errmsg(dst));
        goto out;
    }
    int step = sqlite3_backup_step(b, -1); /* all pages in one read transaction: one consistent snapshot */
    sqlite3_backup_finish(b);
    if (step != SQLITE_DONE)
        rc = fail(c, BERR_DB, "sqlite backup: %s", sqlite3_errstr(step));
    else if (sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) != SQLITE_OK)
        rc = fail(c, BERR_DB, "snapshot: %s", sqlite3_errmsg(dst));
out:
    sqlite3_close(src);
    sqlite3_close(dst);
    return rc;
}

/* The blobs table of the snapshot. */
static int snapshot_blobs(struct ctx *c, const char *snap, struct bloblist *l)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    if (sqlite3_open_v2(snap, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT digest, size FROM blobs", -1, &st, NULL) != SQLITE_OK) {
        rc = fail(c, BERR_DB, "reading the snapshot: %s", sqlite3_errmsg(db));
        goto out;
    }
    while ((s = sqlite3_step(st)) == SQLITE_ROW && rc == 0)
        if (bloblist_add(l, (const char *)sqlite3_column_text(st, 0), (uint64_t)sqlite3_column_int64(st, 1), 1) != 0)
            rc = fail(c, BERR_DB, "bad blob row %s", (const char *)sqlite3_column_text(st, 0));
    if (rc == 0 && s != SQLITE_DONE)
        rc = fail(c, BERR_DB, "reading the snapshot: %s", sqlite3_errmsg(db));
    bloblist_sort(l);
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

static int key_name_ok(const char *n)
{
    if (n[0] == '\0' || n[0] == '.' || strlen(n) > 64)
        return 0;
    for (const char *p = n; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '.' ||
              *p == '-' || *p == '_'))
            return 0;
    return 1;
}

static int write_header(struct ctx *c, struct zout *z, const char *id, const char *base, const struct bloblist *l)
{
    json_t *j = json_object(), *arr = json_array();
    char *text;
    int rc;
    json_object_set_new(j, "format", json_integer(BACKUP_FORMAT));
    json_object_set_new(j, "id", json_string(id));
    json_object_set_new(j, "created_at", json_integer((json_int_t)time(NULL)));
    json_object_set_new(j, "base", base != NULL ? json_string(base) : json_null());
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(arr, json_pack("[sIi]", l->b[i].digest, (json_int_t)l->b[i].size, l->b[i].in_archive));
    json_object_set_new(j, "blobs", arr);
    text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    if (text == NULL)
        return fail(c, BERR_NOMEM, "out of memory");
    rc = tar_mem(c, z, HEADER_NAME, text, strlen(text));
    free(text);
    return rc;
}

/* keys/<name> entries; their sha256 go into `files`. */
static int write_keys(struct ctx *c, struct zout *z, const char *datadir, json_t *files)
{
    char dir[PATH_MAX], path[PATH_MAX], name[128], hex[BERTH_DIGEST_MAX];
    struct dirent *de;
    DIR *d;
    int rc = 0;
    snprintf(dir, sizeof(dir), "%s/keys", datadir);
    if ((d = opendir(dir)) == NULL)
        return errno == ENOENT ? 0 : fail(c, BERR_IO, "cannot read %s: %s", dir, strerror(errno));
    while (rc == 0 && (de = readdir(d)) != NULL) {
        struct stat st;
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (!key_name_ok(de->d_name) || lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        snprintf(name, sizeof(name), "keys/%s", de->d_name);
        if ((rc = tar_file(c, z, name, path, UINT64_MAX, 0600, hex)) == 0)
            json_object_set_new(files, name, json_string(hex));
    }
    closedir(d);
    return rc;
}

static int write_blobs(struct ctx *c, struct zout *z, const char *datadir, const struct bloblist *l,
                       struct backup_summary *sum)
{
    struct blobstore bs;
    char path[BLOBSTORE_PATH_MAX], name[128];
    int rc;
    snprintf(bs.root, sizeof(bs.root), "%s", datadir);
    for (size_t i = 0; i < l->n; i++) {
        const char *hex = digest_hex(l->b[i].digest);
        if (!l->b[i].in_archive) {
            sum->skipped++;
            continue;
        }
        blobstore_path(&bs, l->b[i].digest, path, sizeof(path));
        snprintf(name, sizeof(name), "blobs/sha256/%.2s/%s", hex, hex);
        if ((rc = tar_file(c, z, name, path, l->b[i].size, 0444, NULL)) != 0)
            return rc;
        sum->blobs++;
        sum->blob_bytes += l->b[i].size;
    }
    return 0;
}

static int open_zout(struct ctx *c, struct zout *z, const char *tmp, const struct backup_opts *o)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int workers = o->workers > 0 ? o->workers
                                 : (int)(cores < 1                    ? 1
                                         : cores > BACKUP_WORKERS_MAX ? BACKUP_WORKERS_MAX
                                                                      : cores);
    memset(z, 0, sizeof(*z));
    z->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (z->fd < 0)
        return fail(c, berr_from_errno(errno), "cannot create %s: %s", tmp, strerror(errno));
    z->cc = ZSTD_createCCtx();
    z->out_cap = ZSTD_CStreamOutSize();
    z->out = malloc(z->out_cap);
    if (z->cc == NULL || z->out == NULL)
        return fail(c, BERR_NOMEM, "out of memory");
    ZSTD_CCtx_setParameter(z->cc, ZSTD_c_compressionLevel, o->level > 0 ? o->level : BACKUP_DEFAULT_LEVEL);
    ZSTD_CCtx_setParameter(z->cc, ZSTD_c_checksumFlag, 1);
    if (workers > 1) /* compression on worker threads while this one reads files (ignored by a single-thread zstd) */
        ZSTD_CCtx_setParameter(z->cc, ZSTD_c_nbWorkers, workers);
    return 0;
}

static void close_zout(struct zout *z)
{
    if (z->fd >= 0)
        close(z->fd);
    ZSTD_freeCCtx(z->cc);
    free(z->out);
    z->cc = NULL;
    z->out = NULL;
    z->fd = -1;
}

static int dir_fsync_of(const char *file)
{
    char dir[PATH_MAX];
    char *slash;
    snprintf(dir, sizeof(dir), "%s", file);
    slash = strrchr(dir, '/');
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return blobstore_fsync_dir(dir);
}

/* Everything after the snapshot: the stream itself. */
static int write_archive(struct ctx *c, const struct backup_opts *o, struct zout *z, const char *snap, const char *base,
                         const struct bloblist *l, struct backup_summary *sum)
{
    static const unsigned char end[2 * TAR_BLOCK];
    unsigned char rnd[16];
    char id[40], hex[BERTH_DIGEST_MAX], *text;
    json_t *files = json_object(), *trailer;
    int rc;
    randombytes_buf(rnd, sizeof(rnd));
    sodium_bin2hex(id, sizeof(id), rnd, sizeof(rnd));
    if ((rc = write_header(c, z, id, base, l)) != 0 || (rc = tar_file(c, z, DB_NAME, snap, UINT64_MAX, 0644, hex)) != 0)
        goto out;
    json_object_set_new(files, DB_NAME, json_string(hex));
    if ((rc = write_keys(c, z, o->datadir, files)) != 0 || (rc = write_blobs(c, z, o->datadir, l, sum)) != 0)
        goto out;
    trailer = json_pack("{sIsIsO}", "blobs", (json_int_t)sum->blobs, "blob_bytes", (json_int_t)sum->blob_bytes, "files",
                        files);
    text = json_dumps(trailer, JSON_COMPACT);
    json_decref(trailer);
    if (text == NULL) {
        rc = fail(c, BERR_NOMEM, "out of memory");
        goto out;
    }
    rc = tar_mem(c, z, TRAILER_NAME, text, strlen(text));
    free(text);
    if (rc == 0 && (rc = zout_put(c, z, end, sizeof(end), ZSTD_e_continue)) == 0)
        rc = zout_put(c, z, NULL, 0, ZSTD_e_end);
    if (rc == 0 && fsync(z->fd) != 0)
        rc = fail(c, BERR_IO, "fsync %s: %s", o->out, strerror(errno));
out:
    json_decref(files);
    return rc;
}

/* Reads the blob list of `old` and leaves out of `l` the blobs it lists. */
static int apply_base(struct ctx *c, const char *old, struct bloblist *l, char base_id[64])
{
    struct bloblist ob = {0};
    struct zin z;
    int rc = zin_open(c, &z, old);
    if (rc == 0)
        rc = read_header(c, &z, base_id, &ob);
    zin_close(&z);
    for (size_t i = 0; rc == 0 && i < l->n; i++)
        if (bloblist_find(&ob, l->b[i].digest) != NULL)
            l->b[i].in_archive = 0;
    free(ob.b);
    return rc;
}

int backup_create(const struct backup_opts *o, struct backup_summary *sum, char *err, size_t errlen)
{
    struct ctx c = {.err = err, .errlen = errlen, .progress = o->progress, .progress_arg = o->progress_arg};
    struct bloblist l = {0};
    struct zout z = {.fd = -1};
    char snap[PATH_MAX], tmp[PATH_MAX], base_id[64] = "";
    struct stat st;
    int rc;
    memset(sum, 0, sizeof(*sum));
    if (sodium_init() < 0 || (c.buf = malloc(BACKUP_IO_CHUNK)) == NULL)
        return fail(&c, BERR_NOMEM, "out of memory");
    snprintf(snap, sizeof(snap), "%s.db-snapshot", o->out);
    snprintf(tmp, sizeof(tmp), "%s.tmp", o->out);
    unlink(snap);
    if ((rc = snapshot_db(&c, o->datadir, snap)) != 0 || (rc = snapshot_blobs(&c, snap, &l)) != 0)
        goto out;
    if (o->incremental_from != NULL && (rc = apply_base(&c, o->incremental_from, &l, base_id)) != 0)
        goto out;
    c.total = stat(snap, &st) == 0 ? (uint64_t)st.st_size : 0;
    for (size_t i = 0; i < l.n; i++)
        c.total += l.b[i].in_archive ? l.b[i].size : 0;
    if ((rc = open_zout(&c, &z, tmp, o)) != 0 ||
        (rc = write_archive(&c, o, &z, snap, o->incremental_from ? base_id : NULL, &l, sum)) != 0)
        goto out;
    close_zout(&z);
    if (rename(tmp, o->out) != 0) {
        rc = fail(&c, BERR_IO, "rename %s: %s", tmp, strerror(errno));
        goto out;
    }
    dir_fsync_of(o->out);
    progress(&c, 0, 1);
    sum->payload_bytes = c.done;
    sum->archive_bytes = z.written;
out:
    close_zout(&z);
    if (rc != 0)
        unlink(tmp);
    unlink(snap);
    free(l.b);
    free(c.buf);
    return rc;
}

/* ---- restore ---- */

struct restore {
    struct ctx c;
    char root[PATH_MAX]; /* the temporary directory */
    struct bloblist l;
    json_t *files; /* name -> sha256 of what was unpacked */
    json_t *trailer;
    uint64_t blobs, blob_bytes;
};

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    remove(p); /* best effort: what cannot be removed stays under the hidden temporary name */
    return 0;
}

static void rm_tree(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Creates `rel` under the restore root; returns the fd. */
static int create_file(struct restore *r, const char *rel, mode_t mode, int *fd)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/%s", r->root, rel);
    if ((*fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode)) < 0)
        return fail(&r->c, berr_from_errno(errno), "cannot create %s: %s", path, strerror(errno));
    return 0;
}

/* Closes an unpacked file.  Its data reaches the disk with one syncfs() before the rename (restore_commit): one
 * flush for thousands of small blobs instead of one fsync each. */
static int finish_file(struct restore *r, int fd, const char *rel)
{
    int rc = close(fd) == 0 ? 0 : fail(&r->c, BERR_IO, "close %s: %s", rel, strerror(errno));
    return rc;
}

/* berth.db or keys/<name>: unpacked and hashed. */
static int restore_meta(struct restore *r, struct zin *z, const struct entry *e)
{
    struct digest_ctx dc;
    char hex[BERTH_DIGEST_MAX];
    int fd, rc;
    if (json_object_get(r->files, e->name) != NULL)
        return fail(&r->c, BERR_DIGEST_INVALID, "%s: %s appears twice", z->path, e->name);
    if (e->size > BACKUP_META_FILE_MAX)
        return fail(&r->c, BERR_DIGEST_INVALID, "%s: %s is too large", z->path, e->name);
    if ((rc = create_file(r, e->name, strncmp(e->name, "keys/", 5) == 0 ? 0600 : 0644, &fd)) != 0)
        return rc;
    if (digest_ctx_init(&dc) != 0) {
        close(fd);
        return fail(&r->c, BERR_NOMEM, "out of memory");
    }
    rc = entry_copy(&r->c, z, e, fd, &dc);
    if (rc == 0)
        rc = finish_file(r, fd, e->name);
    else
        close(fd);
    digest_ctx_final(&dc, hex);
    if (rc == 0)
        json_object_set_new(r->files, e->name, json_string(hex));
    return rc;
}

/* blobs/sha256/ab/<hex>: must be listed, unpacked once, and hash to its name with the listed size.  `take`: 0 when
 * reading a base archive for other blobs (then unlisted or unneeded blobs are skipped). */
static int restore_blob(struct restore *r, struct zin *z, const struct entry *e, int base)
{
    char digest[BERTH_DIGEST_MAX], got[BERTH_DIGEST_MAX], sub[PATH_MAX], rel[128];
    const char *hex = e->name + strlen("blobs/sha256/xx/");
    struct digest_ctx dc;
    struct blob *b;
    int fd, rc;
    snprintf(digest, sizeof(digest), "sha256:%s", hex);
    b = bloblist_find(&r->l, digest);
    if (strlen(e->name) != strlen("blobs/sha256/xx/") + DIGEST_HEX_LEN || memcmp(e->name + 13, hex, 2) != 0 ||
        e->name[15] != '/' || digest_parse(digest, strlen(digest), got) != 0)
        return fail(&r->c, BERR_DIGEST_INVALID, "%s: unexpected entry %s", z->path, e->name);
    if (base && (b == NULL || b->have))
        return entry_copy(&r->c, z, e, -1, NULL); /* not needed from this base */
    if (b == NULL || (!base && !b->in_archive) || b->have)
        return fail(&r->c, BERR_DIGEST_INVALID, "%s: blob %s is not in its list or appears twice", z->path, digest);
    if (e->size != b->size)
        return fail(&r->c, BERR_SIZE_INVALID, "%s: blob %s has %llu bytes, listed with %llu", z->path, digest,
                    (unsigned long long)e->size, (unsigned long long)b->size);
    snprintf(sub, sizeof(sub), "%s/blobs/sha256/%.2s", r->root, hex);
    if (mkdir(sub, 0755) != 0 && errno != EEXIST)
        return fail(&r->c, BERR_IO, "mkdir %s: %s", sub, strerror(errno));
    snprintf(rel, sizeof(rel), "blobs/sha256/%.2s/%s", hex, hex);
    if ((rc = create_file(r, rel, 0444, &fd)) != 0)
        return rc;
    if (digest_ctx_init(&dc) != 0) {
        close(fd);
        return fail(&r->c, BERR_NOMEM, "out of memory");
    }
    rc = entry_copy(&r->c, z, e, fd, &dc);
    rc = rc == 0 ? finish_file(r, fd, rel) : (close(fd), rc);
    digest_ctx_final(&dc, got);
    if (rc == 0 && strcmp(got, digest) != 0)
        rc = fail(&r->c, BERR_DIGEST_INVALID, "%s: blob %s is corrupted (its content hashes to %s)", z->path, digest,
                  got);
    if (rc == 0) {
        b->have = 1;
        r->blobs++;
        r->blob_bytes += b->size;
    }
    return rc;
}

static int restore_trailer(struct restore *r, struct zin *z, const struct entry *e)
{
    json_error_t je;
    char *text;
    int rc = entry_text(&r->c, z, e, BACKUP_HEADER_MAX, &text);
    if (rc != 0)
        return rc;
    r->trailer = json_loads(text, 0, &je);
    free(text);
    if (!json_is_object(json_object_get(r->trailer, "files")))
        return fail(&r->c, BERR_DIGEST_INVALID, "%s: unreadable %s", z->path, TRAILER_NAME);
    return 0;
}

/* Reads one archive.  `base`: only the blobs still missing are taken from it. */
static int restore_archive(struct restore *r, const char *path, int base)
{
    struct bloblist own = {0};
    struct entry e;
    struct zin z;
    char id[64];
    int rc = zin_open(&r->c, &z, path);
    if (rc == 0)
        rc = read_header(&r->c, &z, id, base ? &own : &r->l);
    free(own.b);
    for (size_t i = 0; rc == 0 && !base && i < r->l.n; i++) /* progress counts the blob bytes to unpack */
        r->c.total += r->l.b[i].in_archive ? r->l.b[i].size : 0;
    while (rc == 0 && (rc = tar_next(&r->c, &z, &e)) == 0 && !e.end) {
        if (e.dir && e.size == 0)
            continue;
        if (strncmp(e.name, "blobs/sha256/", 13) == 0)
            rc = restore_blob(r, &z, &e, base);
        else if (base)
            rc = entry_copy(&r->c, &z, &e, -1, NULL);
        else if (strcmp(e.name, DB_NAME) == 0 || (strncmp(e.name, "keys/", 5) == 0 && key_name_ok(e.name + 5)))
            rc = restore_meta(r, &z, &e);
        else if (strcmp(e.name, TRAILER_NAME) == 0 && r->trailer == NULL)
            rc = restore_trailer(r, &z, &e);
        else
            rc = fail(&r->c, BERR_DIGEST_INVALID, "%s: unexpected entry %s", path, e.name);
    }
    if (rc == 0)
        rc = zin_finish(&r->c, &z);
    zin_close(&z);
    return rc;
}

/* The trailer must match what was unpacked: counts and every non-blob file's sha256. */
static int restore_check(struct restore *r, const char *path)
{
    json_t *want, *v;
    const char *k;
    if (r->trailer == NULL)
        return fail(&r->c, BERR_SIZE_INVALID, "%s is truncated (no %s)", path, TRAILER_NAME);
    want = json_object_get(r->trailer, "files");
    if (json_object_size(want) != json_object_size(r->files) || json_object_get(r->files, DB_NAME) == NULL)
        return fail(&r->c, BERR_DIGEST_INVALID, "%s: files differ from its trailer", path);
    json_object_foreach(want, k, v)
    {
        if (!json_equal(v, json_object_get(r->files, k)))
            return fail(&r->c, BERR_DIGEST_INVALID, "%s: %s is corrupted (sha256 differs)", path, k);
    }
    if ((uint64_t)json_integer_value(json_object_get(r->trailer, "blobs")) != r->blobs)
        return fail(&r->c, BERR_DIGEST_INVALID, "%s: blob count differs from its trailer", path);
    return 0;
}

/* Every blob row of the restored berth.db must have its verified file. */
static int restore_check_db(struct restore *r)
{
    char path[PATH_MAX];
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc = 0, s;
    snprintf(path, sizeof(path), "%s/%s", r->root, DB_FILE);
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "SELECT digest FROM blobs", -1, &st, NULL) != SQLITE_OK) {
        rc = fail(&r->c, BERR_DB, "restored database: %s", sqlite3_errmsg(db));
        goto out;
    }
    while (rc == 0 && (s = sqlite3_step(st)) == SQLITE_ROW) {
        struct blob *b = bloblist_find(&r->l, (const char *)sqlite3_column_text(st, 0));
        if (b == NULL || !b->have)
            rc = fail(&r->c, BERR_BLOB_UNKNOWN, "blob %s of the database was not restored%s",
                      (const char *)sqlite3_column_text(st, 0),
                      b != NULL && !b->in_archive ? " (an incremental archive: give its base with --base)" : "");
    }
out:
    sqlite3_finalize(st);
    sqlite3_close(db);
    return rc;
}

/* The target must not exist or be an empty directory.  Sets *exists. */
static int target_ok(struct ctx *c, const char *target, int *exists)
{
    struct stat st;
    struct dirent *de;
    DIR *d;
    *exists = stat(target, &st) == 0;
    if (!*exists)
        return errno == ENOENT ? 0 : fail(c, BERR_IO, "%s: %s", target, strerror(errno));
    if (!S_ISDIR(st.st_mode) || (d = opendir(target)) == NULL)
        return fail(c, BERR_IO, "%s exists and is not a directory", target);
    while ((de = readdir(d)) != NULL)
        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0) {
            closedir(d);
            return fail(c, BERR_IO, "%s is not empty: restore only into a new or empty directory", target);
        }
    closedir(d);
    return 0;
}

static int make_root(struct restore *r, const char *target)
{
    char parent[PATH_MAX], sub[PATH_MAX + 32];
    char *slash;
    snprintf(parent, sizeof(parent), "%s", target);
    while ((slash = strrchr(parent, '/')) != NULL && slash[1] == '\0' && slash != parent)
        *slash = '\0'; /* trailing slashes */
    slash = strrchr(parent, '/');
    if (slash == NULL)
        snprintf(parent, sizeof(parent), ".");
    else if (slash == parent)
        parent[1] = '\0';
    else
        *slash = '\0';
    snprintf(r->root, sizeof(r->root), "%s/.berth-restore-XXXXXX", parent);
    if (mkdtemp(r->root) == NULL)
        return fail(&r->c, BERR_IO, "cannot create a directory in %s: %s", parent, strerror(errno));
    chmod(r->root, 0755);
    snprintf(sub, sizeof(sub), "%s/blobs", r->root);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/blobs/sha256", r->root);
    mkdir(sub, 0755);
    snprintf(sub, sizeof(sub), "%s/keys", r->root);
    return mkdir(sub, 0700) == 0 ? 0 : fail(&r->c, BERR_IO, "mkdir %s: %s", sub, strerror(errno));
}

/* Flushes the restored tree (file data, then every directory), then renames it to the target. */
static int restore_commit(struct restore *r, const char *target, int exists)
{
    char sub[PATH_MAX + 32];
    int fd = open(r->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) {
        int e = errno;
        if (fd >= 0)
            close(fd);
        return fail(&r->c, BERR_IO, "syncfs %s: %s", r->root, strerror(e));
    }
    close(fd);
    for (size_t i = 0; i < 256; i++) {
        snprintf(sub, sizeof(sub), "%s/blobs/sha256/%02zx", r->root, i);
        if (access(sub, F_OK) == 0)
            blobstore_fsync_dir(sub);
    }
    snprintf(sub, sizeof(sub), "%s/blobs/sha256", r->root);
    blobstore_fsync_dir(sub);
    snprintf(sub, sizeof(sub), "%s/keys", r->root);
    blobstore_fsync_dir(sub);
    blobstore_fsync_dir(r->root);
    if (exists && rmdir(target) != 0)
        return fail(&r->c, BERR_IO, "%s: %s", target, strerror(errno));
    if (rename(r->root, target) != 0)
        return fail(&r->c, BERR_IO, "rename to %s: %s", target, strerror(errno));
    dir_fsync_of(target);
    return 0;
}

int backup_restore(const struct restore_opts *o, struct backup_summary *sum, char *err, size_t errlen)
{
    struct restore r = {.c = {.err = err, .errlen = errlen, .progress = o->progress, .progress_arg = o->progress_arg}};
    struct stat st;
    int rc, exists = 0;
    memset(sum, 0, sizeof(*sum));
    r.root[0] = '\0';
    r.files = json_object();
    if ((r.c.buf = malloc(BACKUP_IO_CHUNK)) == NULL || r.files == NULL) {
        rc = fail(&r.c, BERR_NOMEM, "out of memory");
        goto out;
    }
    if ((rc = target_ok(&r.c, o->datadir, &exists)) != 0 || (rc = make_root(&r, o->datadir)) != 0)
        goto out;
    if ((rc = restore_archive(&r, o->archive, 0)) != 0 || (rc = restore_check(&r, o->archive)) != 0)
        goto out;
    for (int i = 0; i < o->nbases && rc == 0; i++)
        rc = restore_archive(&r, o->bases[i], 1);
    if (rc == 0 && (rc = restore_check_db(&r)) == 0 && (rc = restore_commit(&r, o->datadir, exists)) == 0) {
        r.root[0] = '\0';
        progress(&r.c, 0, 1);
        sum->blobs = r.blobs;
        sum->blob_bytes = r.blob_bytes;
        sum->payload_bytes = r.c.done;
        sum->archive_bytes = stat(o->archive, &st) == 0 ? (uint64_t)st.st_size : 0;
    }
out:
    if (r.root[0] != '\0')
        rm_tree(r.root);
    json_decref(r.files);
    json_decref(r.trailer);
    free(r.l.b);
    free(r.c.buf);
    return rc;
}
