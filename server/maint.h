/*
 * maint.h - maintenance of a data directory: `berth lifecycle`, `berth gc`, `berth fsck` (storage/lifecycle*.c,
 * gc.c, fsck.c underneath), and maint_module (module.h): the scheduler thread inside `berth serve` that completes
 * interrupted GC unlinks at start, then runs lifecycle policies and GC BERTH_LIFECYCLE_FIRST_DELAY seconds after
 * start (or after the interval, if shorter) and every `lifecycle_interval` (off: never), on its own connection.
 * The commands work while a server runs on the same directory: they open their own SQLite connection and write
 * only in short BEGIN IMMEDIATE batches.
 */
#ifndef BERTH_MAINT_H
#define BERTH_MAINT_H

#include "config.h"

/** Runs `berth <argv[0]> …` for argv[0] in lifecycle, gc, fsck.  Returns the process exit status. */
int maint_main(int argc, char **argv);

#endif
