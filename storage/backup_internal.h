/*
 * backup_internal.h - what storage/backup.c shares with storage/restore.c (the two halves of backup.h), and
 * nothing else.  Functions named backup__* are internal to these two files.
 */
#ifndef BERTH_BACKUP_INTERNAL_H
#define BERTH_BACKUP_INTERNAL_H

#include "backup.h"
#include "defaults.h"
#include "tarz.h"

#define BACKUP_HEADER_NAME "berth-backup.json"
#define BACKUP_TRAILER_NAME "berth-backup.end"

/* One blob of an archive's list. */
struct blob {
    char digest[BERTH_DIGEST_MAX];
    uint64_t size;
    int in_archive; /* this archive carries the file */
    int have;       /* restore: unpacked and verified */
};

/* The list, sorted by digest once complete. */
struct bloblist {
    struct blob *b;
    size_t n, cap;
};

/** The entry for `digest` of a sorted list, or NULL. */
struct blob *backup__list_find(struct bloblist *l, const char *digest);
/** Appends a blob (digest validated).  Returns 0, BERR_DIGEST_INVALID or BERR_NOMEM. */
int backup__list_add(struct bloblist *l, const char *digest, uint64_t size, int in_archive);
/** Sorts the list by digest. */
void backup__list_sort(struct bloblist *l);
/** Reads the first entry (berth-backup.json) of an open archive: its id and sorted blob list. */
int backup__read_header(struct tarz_ctx *c, struct tarz_in *z, char id[64], struct bloblist *l);
/** Whether `name` may be a file under keys/ (letters, digits, '.', '-', '_'; no leading dot). */
int backup__key_name_ok(const char *name);
/** Removes directory `dir` and everything under it (best effort). */
void backup__rm_tree(const char *dir);
/** fsyncs the directory holding `path`. */
int backup__fsync_parent(const char *path);

#endif
