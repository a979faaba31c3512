/*
 * tarz.h - a ustar archive inside one zstd frame (with zstd's content checksum), written and read as a stream.
 * The backup format (backup.h) is built on it; it knows nothing about registries.
 *
 * Every function takes a struct tarz_ctx: where an error message goes (functions return 0 or a BERR code and
 * write the reason into ctx->err), the progress callback, and one TARZ_CHUNK buffer for copying.
 *
 * Writing: tarz_out_open, then entries (tarz_mem, tarz_file), then tarz_out_end (tar end blocks, frame end).
 * Reading: tarz_in_open, tarz_next until an entry with `end` set (each entry's data is consumed by tarz_copy or
 * tarz_text), then tarz_finish, which fails unless the frame ended exactly there with a verified checksum.  A
 * premature end of input is reported as truncation (BERR_SIZE_INVALID), any damage the stream reveals — a zstd
 * error, a tar header checksum, stray data — as corruption (BERR_DIGEST_INVALID).
 */
#ifndef BERTH_TARZ_H
#define BERTH_TARZ_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>
#include <zstd.h>
#include "digest.h"

#define TARZ_BLOCK 512                /* tar block size */
#define TARZ_CHUNK (1u << 20)         /* bytes copied per step */
#define TARZ_WORKERS_MAX 8            /* zstd compression threads at most */
#define TARZ_PROGRESS_INTERVAL_MS 200 /* progress callback period */

/* Progress: `done` of `total` payload bytes so far. */
typedef void (*tarz_progress_fn)(void *arg, uint64_t done, uint64_t total);

struct tarz_ctx {
    char *err; /* message of the last failure */
    size_t errlen;
    tarz_progress_fn progress; /* may be NULL */
    void *progress_arg;
    uint64_t done, total; /* payload bytes copied so far, expected in all */
    struct timespec last;
    unsigned char *buf; /* TARZ_CHUNK bytes, owned by the caller */
};

struct tarz_out {
    int fd;
    ZSTD_CCtx *cc;
    unsigned char *out;
    size_t out_cap;
    uint64_t written; /* compressed bytes */
};

struct tarz_in {
    int fd;
    ZSTD_DCtx *dc;
    unsigned char *in, *out;
    size_t in_size, in_pos, out_len, out_pos, in_cap, out_cap;
    size_t last; /* last ZSTD_decompressStream result: 0 = a frame just ended, checksum verified */
    int in_eof;
    uint64_t read;
    const char *path;
};

struct tarz_entry {
    char name[101];
    uint64_t size;
    int end; /* the two zero blocks */
    int dir; /* a directory entry (tar(1) writes them; berth does not): skip it */
};

/** Writes the printf message into c->err and returns `rc`. */
int tarz_fail(struct tarz_ctx *c, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/** Counts `n` more payload bytes; calls the progress callback at most every TARZ_PROGRESS_INTERVAL_MS (always if
 *  `force`). */
void tarz_progress(struct tarz_ctx *c, uint64_t n, int force);

/** Creates `path` (mode 0600, truncated) for writing at zstd `level` with `workers` compression threads (0 = one
 *  per core up to TARZ_WORKERS_MAX; 1 = none). */
int tarz_out_open(struct tarz_ctx *c, struct tarz_out *z, const char *path, int level, int workers);
/** Compresses `len` bytes (ZSTD_e_continue) or ends the frame (ZSTD_e_end, with p NULL). */
int tarz_put(struct tarz_ctx *c, struct tarz_out *z, const void *p, size_t len, ZSTD_EndDirective mode);
/** A regular-file entry `name` (< 100 bytes) from memory. */
int tarz_mem(struct tarz_ctx *c, struct tarz_out *z, const char *name, const void *p, size_t len);
/** A regular-file entry from file `path`, whose size must be `want` (UINT64_MAX: any); its sha256 goes to `hex`
 *  when not NULL.  A missing file is BERR_BLOB_UNKNOWN. */
int tarz_file(struct tarz_ctx *c, struct tarz_out *z, const char *name, const char *path, uint64_t want, unsigned mode,
              char hex[BERTH_DIGEST_MAX]);
/** The header of a regular-file entry of `size` bytes whose data the caller then writes with tarz_put (exactly
 *  `size` bytes), followed by tarz_end_entry. */
int tarz_begin(struct tarz_ctx *c, struct tarz_out *z, const char *name, uint64_t size, unsigned mode);
/** The padding after the `size` data bytes of an entry begun with tarz_begin. */
int tarz_end_entry(struct tarz_ctx *c, struct tarz_out *z, uint64_t size);
/** The tar end (two zero blocks) and the end of the zstd frame. */
int tarz_out_end(struct tarz_ctx *c, struct tarz_out *z);
/** Closes the file and frees the compressor (safe twice). */
void tarz_out_close(struct tarz_out *z);

/** Opens `path` for reading (`path` must outlive `z`). */
int tarz_in_open(struct tarz_ctx *c, struct tarz_in *z, const char *path);
/** Closes and frees (safe twice). */
void tarz_in_close(struct tarz_in *z);
/** Reads exactly `len` decompressed bytes. */
int tarz_read(struct tarz_ctx *c, struct tarz_in *z, void *p, size_t len);
/** The next entry's header (verified). */
int tarz_next(struct tarz_ctx *c, struct tarz_in *z, struct tarz_entry *e);
/** Streams entry `e`'s data to `fd` (-1: skip it), hashing into `dc` (may be NULL); counts progress when writing. */
int tarz_copy(struct tarz_ctx *c, struct tarz_in *z, const struct tarz_entry *e, int fd, struct digest_ctx *dc);
/** After a caller read entry `e`'s data itself with tarz_read (exactly e->size bytes): skips its padding. */
int tarz_skip_pad(struct tarz_ctx *c, struct tarz_in *z, const struct tarz_entry *e);
/** Reads entry `e` (at most `max` bytes) into a malloc'd NUL-terminated string. */
int tarz_text(struct tarz_ctx *c, struct tarz_in *z, const struct tarz_entry *e, size_t max, char **out);
/** After the end entry: the stream must end with a complete, checksum-verified frame and nothing else. */
int tarz_finish(struct tarz_ctx *c, struct tarz_in *z);

#endif
