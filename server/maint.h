/*
 * maint.h - maintenance of a data directory: `berth lifecycle`, `berth gc`, `berth fsck` (storage/lifecycle*.c,
 * gc.c, fsck.c underneath), and the scheduler thread inside `berth serve` that runs lifecycle policies and then GC
 * every `lifecycle_interval`.  The commands work while a server runs on the same directory: they open their own
 * SQLite connection and write only in short BEGIN IMMEDIATE batches.
 */
#ifndef BERTH_MAINT_H
#define BERTH_MAINT_H

#include "config.h"

/** Runs `berth <argv[0]> …` for argv[0] in lifecycle, gc, fsck.  Returns the process exit status. */
int maint_main(int argc, char **argv);

/** Starts serve's scheduler thread (its own DB connection): completes interrupted GC unlinks now, runs
 *  lifecycle + GC BERTH_LIFECYCLE_FIRST_DELAY seconds after start and then every cfg->lifecycle_interval (0: never).
 *  `stopping` is polled; returns 0 or -1. */
int maint_start(const struct config *cfg, volatile int *stopping);
/** Joins the scheduler thread (after `*stopping` was set). */
void maint_stop(void);

#endif
