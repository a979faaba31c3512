/* memtrim.c - arenas capped at start, free heap pages returned around large upload bodies (memtrim.h). */
#include <malloc.h>
#include "defaults.h"
#include "memtrim.h"

void memtrim_setup(void)
{
    mallopt(M_ARENA_MAX, BERTH_MALLOC_ARENAS);
}

void memtrim_around_body(size_t body_len)
{
    if (body_len == 0 || body_len >= BERTH_TRIM_BODY_MIN)
        malloc_trim(0);
}

size_t memtrim_heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}
