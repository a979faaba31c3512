/* tarz.c - a ustar stream inside one zstd frame: writing and reading it (see tarz.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "err.h"
#include "tarz.h"

/* ---- errors and progress ---- */

int tarz_fail(struct tarz_ctx *c, int rc, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, c->errlen, fmt, ap);
    va_end(ap);
    return rc;
}

void tarz_progress(struct tarz_ctx *c, uint64_t n, int force)
{
    struct timespec now;
    c->done += n;
    if (c->progress == NULL)
        return;
    clock_gettime(CLOCK_MONOTONIC, &now);
    if (force ||
        (now.tv_sec - c->last.tv_sec) * 1000 + (now.tv_nsec - c->last.tv_nsec) / 1000000 >= TARZ_PROGRESS_INTERVAL_MS) {
        c->last = now;
        c->progress(c->progress_arg, c->done, c->total);
    }
}

/* ---- zstd output stream and tar writer ---- */

static int out_flush(struct tarz_ctx *c, struct tarz_out *z, ZSTD_outBuffer *ob)
{
    size_t off = 0;
    while (off < ob->pos) {
        ssize_t n = write(z->fd, (char *)ob->dst + off, ob->pos - off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return tarz_fail(c, berr_from_errno(errno), "writing the archive: %s", strerror(errno));
        off += (size_t)n;
    }
    z->written += ob->pos;
    ob->pos = 0;
    return 0;
}

/* Compresses `len` bytes (mode ZSTD_e_continue) or finishes the frame (ZSTD_e_end). */
int tarz_put(struct tarz_ctx *c, struct tarz_out *z, const void *p, size_t len, ZSTD_EndDirective mode)
{
    ZSTD_inBuffer in = {p, len, 0};
    int rc;
    for (;;) {
        ZSTD_outBuffer ob = {z->out, z->out_cap, 0};
        size_t left = ZSTD_compressStream2(z->cc, &ob, &in, mode);
        if (ZSTD_isError(left))
            return tarz_fail(c, BERR_INTERNAL, "zstd: %s", ZSTD_getErrorName(left));
        if ((rc = out_flush(c, z, &ob)) != 0)
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
static int tar_header(struct tarz_ctx *c, struct tarz_out *z, const char *name, uint64_t size, unsigned mode)
{
    unsigned char h[TARZ_BLOCK] = {0};
    unsigned sum = 0;
    if (strlen(name) >= 100)
        return tarz_fail(c, BERR_INTERNAL, "archive name too long: %s", name);
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
    for (int i = 0; i < TARZ_BLOCK; i++)
        sum += h[i];
    snprintf((char *)h + 148, 8, "%06o", sum);
    return tarz_put(c, z, h, TARZ_BLOCK, ZSTD_e_continue);
}

static int tar_pad(struct tarz_ctx *c, struct tarz_out *z, uint64_t size)
{
    static const unsigned char zeros[TARZ_BLOCK];
    size_t pad = (size_t)((TARZ_BLOCK - size % TARZ_BLOCK) % TARZ_BLOCK);
    return pad ? tarz_put(c, z, zeros, pad, ZSTD_e_continue) : 0;
}

int tarz_begin(struct tarz_ctx *c, struct tarz_out *z, const char *name, uint64_t size, unsigned mode)
{
    return tar_header(c, z, name, size, mode);
}

int tarz_end_entry(struct tarz_ctx *c, struct tarz_out *z, uint64_t size)
{
    return tar_pad(c, z, size);
}

/* An entry from memory. */
int tarz_mem(struct tarz_ctx *c, struct tarz_out *z, const char *name, const void *p, size_t len)
{
    int rc;
    if ((rc = tar_header(c, z, name, len, 0644)) != 0 || (rc = tarz_put(c, z, p, len, ZSTD_e_continue)) != 0)
        return rc;
    return tar_pad(c, z, len);
}

/* An entry from file `path`; its size must be `want` unless want is UINT64_MAX.  `hex` (may be NULL) receives its
 * sha256. */
int tarz_file(struct tarz_ctx *c, struct tarz_out *z, const char *name, const char *path, uint64_t want, unsigned mode,
              char hex[BERTH_DIGEST_MAX])
{
    struct digest_ctx dc;
    struct stat st;
    uint64_t off = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC), rc = 0;
    if (fd < 0)
        return tarz_fail(
            c, errno == ENOENT ? BERR_BLOB_UNKNOWN : BERR_IO, "cannot open %s: %s%s", path, strerror(errno),
            errno == ENOENT ? " (removed by garbage collection since the snapshot? run the backup again)" : "");
    if (fstat(fd, &st) != 0 || (want != UINT64_MAX && (uint64_t)st.st_size != want)) {
        close(fd);
        return tarz_fail(c, BERR_IO, "%s: size %lld, the database says %llu", path, (long long)st.st_size,
                         (unsigned long long)want);
    }
    if (hex != NULL && digest_ctx_init(&dc) != 0) {
        close(fd);
        return tarz_fail(c, BERR_NOMEM, "out of memory");
    }
    if ((rc = tar_header(c, z, name, (uint64_t)st.st_size, mode)) == 0)
        while (off < (uint64_t)st.st_size) {
            ssize_t n = read(fd, c->buf, TARZ_CHUNK);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                rc = tarz_fail(c, BERR_IO, "reading %s: %s", path, n < 0 ? strerror(errno) : "file shrank");
                break;
            }
            if ((uint64_t)n > (uint64_t)st.st_size - off)
                n = (ssize_t)((uint64_t)st.st_size - off); /* grew meanwhile: the snapshot's size counts */
            if (hex != NULL)
                digest_ctx_update(&dc, c->buf, (size_t)n);
            if ((rc = tarz_put(c, z, c->buf, (size_t)n, ZSTD_e_continue)) != 0)
                break;
            off += (uint64_t)n;
            tarz_progress(c, (uint64_t)n, 0);
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

int tarz_out_open(struct tarz_ctx *c, struct tarz_out *z, const char *tmp, int level, int workers)
{
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    workers = workers > 0 ? workers : (int)(cores < 1 ? 1 : cores > TARZ_WORKERS_MAX ? TARZ_WORKERS_MAX : cores);
    memset(z, 0, sizeof(*z));
    z->fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (z->fd < 0)
        return tarz_fail(c, berr_from_errno(errno), "cannot create %s: %s", tmp, strerror(errno));
    z->cc = ZSTD_createCCtx();
    z->out_cap = ZSTD_CStreamOutSize();
    z->out = malloc(z->out_cap);
    if (z->cc == NULL || z->out == NULL)
        return tarz_fail(c, BERR_NOMEM, "out of memory");
    ZSTD_CCtx_setParameter(z->cc, ZSTD_c_compressionLevel, level);
    ZSTD_CCtx_setParameter(z->cc, ZSTD_c_checksumFlag, 1);
    if (workers > 1) /* compression on worker threads while this one reads files (ignored by a single-thread zstd) */
        ZSTD_CCtx_setParameter(z->cc, ZSTD_c_nbWorkers, workers);
    return 0;
}

int tarz_out_end(struct tarz_ctx *c, struct tarz_out *z)
{
    static const unsigned char end[2 * TARZ_BLOCK];
    int rc = tarz_put(c, z, end, sizeof(end), ZSTD_e_continue);
    return rc != 0 ? rc : tarz_put(c, z, NULL, 0, ZSTD_e_end);
}

void tarz_out_close(struct tarz_out *z)
{
    if (z->fd >= 0)
        close(z->fd);
    ZSTD_freeCCtx(z->cc);
    free(z->out);
    z->cc = NULL;
    z->out = NULL;
    z->fd = -1;
}

/* ---- zstd input stream and tar reader ---- */

int tarz_in_open(struct tarz_ctx *c, struct tarz_in *z, const char *path)
{
    memset(z, 0, sizeof(*z));
    z->path = path;
    z->last = 1;
    if ((z->fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
        return tarz_fail(c, BERR_IO, "cannot open %s: %s", path, strerror(errno));
    z->in_cap = ZSTD_DStreamInSize();
    z->out_cap = ZSTD_DStreamOutSize();
    z->dc = ZSTD_createDCtx();
    z->in = malloc(z->in_cap);
    z->out = malloc(z->out_cap);
    if (z->dc == NULL || z->in == NULL || z->out == NULL)
        return tarz_fail(c, BERR_NOMEM, "out of memory");
    return 0;
}

void tarz_in_close(struct tarz_in *z)
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
static int in_fill(struct tarz_ctx *c, struct tarz_in *z)
{
    while (z->out_pos == z->out_len) {
        ZSTD_inBuffer ib;
        ZSTD_outBuffer ob = {z->out, z->out_cap, 0};
        if (z->in_pos == z->in_size && !z->in_eof) {
            ssize_t n = read(z->fd, z->in, z->in_cap);
            if (n < 0 && errno == EINTR)
                continue;
            if (n < 0)
                return tarz_fail(c, BERR_IO, "reading %s: %s", z->path, strerror(errno));
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
            return tarz_fail(c, BERR_DIGEST_INVALID, "%s is corrupted (zstd: %s)", z->path, ZSTD_getErrorName(z->last));
        z->in_pos = ib.pos;
        z->out_len = ob.pos;
        z->out_pos = 0;
    }
    return 0;
}

/* Reads exactly `len` bytes; a premature end is a truncated archive. */
int tarz_read(struct tarz_ctx *c, struct tarz_in *z, void *p, size_t len)
{
    size_t got = 0;
    while (got < len) {
        int rc = in_fill(c, z);
        size_t n;
        if (rc == 1)
            return tarz_fail(c, BERR_SIZE_INVALID, "%s is truncated (it ends inside its data)", z->path);
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
int tarz_finish(struct tarz_ctx *c, struct tarz_in *z)
{
    int rc;
    while ((rc = in_fill(c, z)) == 0) {
        for (size_t i = z->out_pos; i < z->out_len; i++)
            if (z->out[i] != 0)
                return tarz_fail(c, BERR_DIGEST_INVALID, "%s has data after the end of the archive", z->path);
        z->out_pos = z->out_len;
    }
    if (rc != 1)
        return rc;
    if (z->last != 0)
        return tarz_fail(c, BERR_SIZE_INVALID, "%s is truncated (its zstd frame is incomplete)", z->path);
    return 0;
}

static uint64_t parse_octal(const unsigned char *f, size_t w)
{
    uint64_t v = 0;
    for (size_t i = 0; i < w && f[i] >= '0' && f[i] <= '7'; i++)
        v = v * 8 + (uint64_t)(f[i] - '0');
    return v;
}

int tarz_next(struct tarz_ctx *c, struct tarz_in *z, struct tarz_entry *e)
{
    unsigned char h[TARZ_BLOCK];
    unsigned sum = 0, want;
    int rc, zero = 1;
    if ((rc = tarz_read(c, z, h, TARZ_BLOCK)) != 0)
        return rc;
    for (int i = 0; i < TARZ_BLOCK && zero; i++)
        zero = h[i] == 0;
    memset(e, 0, sizeof(*e));
    if (zero) {
        if ((rc = tarz_read(c, z, h, TARZ_BLOCK)) != 0)
            return rc;
        for (int i = 0; i < TARZ_BLOCK; i++)
            if (h[i] != 0)
                return tarz_fail(c, BERR_DIGEST_INVALID, "%s: damaged tar end", z->path);
        e->end = 1;
        return 0;
    }
    want = (unsigned)parse_octal(h + 148, 8);
    memset(h + 148, ' ', 8);
    for (int i = 0; i < TARZ_BLOCK; i++)
        sum += h[i];
    if (sum != want || memcmp(h + 257, "ustar", 5) != 0 || (h[156] != '0' && h[156] != '5') || h[345] != 0)
        return tarz_fail(c, BERR_DIGEST_INVALID, "%s: damaged tar header", z->path);
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
int tarz_copy(struct tarz_ctx *c, struct tarz_in *z, const struct tarz_entry *e, int fd, struct digest_ctx *dc)
{
    uint64_t left = e->size;
    size_t pad = (size_t)((TARZ_BLOCK - e->size % TARZ_BLOCK) % TARZ_BLOCK);
    int rc;
    while (left > 0) {
        size_t n = left < TARZ_CHUNK ? (size_t)left : TARZ_CHUNK;
        if ((rc = tarz_read(c, z, c->buf, n)) != 0)
            return rc;
        if (dc != NULL)
            digest_ctx_update(dc, c->buf, n);
        for (size_t off = 0; fd >= 0 && off < n;) {
            ssize_t w = write(fd, c->buf + off, n - off);
            if (w < 0 && errno == EINTR)
                continue;
            if (w <= 0)
                return tarz_fail(c, berr_from_errno(errno), "writing %s: %s", e->name, strerror(errno));
            off += (size_t)w;
        }
        left -= n;
        if (fd >= 0)
            tarz_progress(c, n, 0);
    }
    return pad ? tarz_read(c, z, c->buf, pad) : 0;
}

int tarz_skip_pad(struct tarz_ctx *c, struct tarz_in *z, const struct tarz_entry *e)
{
    size_t pad = (size_t)((TARZ_BLOCK - e->size % TARZ_BLOCK) % TARZ_BLOCK);
    return pad ? tarz_read(c, z, c->buf, pad) : 0;
}

/* Reads an entry of at most `max` bytes into a NUL-terminated malloc'd string. */
int tarz_text(struct tarz_ctx *c, struct tarz_in *z, const struct tarz_entry *e, size_t max, char **out)
{
    size_t pad = (size_t)((TARZ_BLOCK - e->size % TARZ_BLOCK) % TARZ_BLOCK);
    int rc;
    if (e->size > max)
        return tarz_fail(c, BERR_DIGEST_INVALID, "%s: %s is too large", z->path, e->name);
    if ((*out = malloc((size_t)e->size + 1)) == NULL)
        return tarz_fail(c, BERR_NOMEM, "out of memory");
    if ((rc = tarz_read(c, z, *out, (size_t)e->size)) != 0 || (pad && (rc = tarz_read(c, z, c->buf, pad)) != 0)) {
        free(*out);
        *out = NULL;
        return rc;
    }
    (*out)[e->size] = '\0';
    return 0;
}

/* Reads berth-backup.json (the first entry) of an open archive: its id and blob list. */
