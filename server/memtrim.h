/*
 * memtrim.h - how the server's heap gives memory back (issue 13: peak RSS no higher than Distribution's).
 *
 * glibc's malloc keeps freed memory in per-thread arenas (by default 8 per core, one per busy thread up to that)
 * and returns it to the kernel only from the top of each heap.  Berth's workers, loops and upload threads each
 * allocate, so after a burst of requests several MiB of freed memory stayed resident (measured: 9.3-9.7 MiB of
 * anonymous memory after 200 small image pushes, 6.9 MiB after malloc_trim, 7.4 MiB with 4 arenas; docs/HTTP1.md).
 */
#ifndef BERTH_MEMTRIM_H
#define BERTH_MEMTRIM_H

#include <stddef.h>

/** Caps malloc's arenas at BERTH_MALLOC_ARENAS.  Call once at server start, before any thread is created. */
void memtrim_setup(void);

/**
 * Returns the heap's free pages to the kernel (malloc_trim) when a body of `body_len` bytes (0: unknown, chunked)
 * is about to be streamed or has been: large uploads are the server's memory peaks, so what earlier requests freed
 * is released before one starts and what it used after it ends.  Smaller bodies do nothing.  Any thread.
 */
void memtrim_around_body(size_t body_len);

/**
 * Bytes the heap has handed out and not been given back (glibc's mallinfo2: arena chunks in use plus mmap'd
 * ones).  RSS minus this is memory freed but kept by malloc (fragmentation), not a leak.  Takes each arena's lock
 * once: for a metrics scrape, not for a hot path.  Any thread.
 */
size_t memtrim_heap_in_use(void);

#endif
