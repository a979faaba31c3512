/*
 * maint_module.c - serve's lifecycle + GC scheduler (maint.h, from the lifecycle branch) as a module of the
 * module table: started before the loops, joined after them.  A stand-in written while merging main into the ECR
 * branch; the lifecycle branch's own integration supersedes it.
 */
#include "log.h"
#include "maint.h"
#include "module.h"

static int maint_init(struct server *srv)
{
    /* maint polls the flag; atomic_int and int share their representation */
    if (maint_start(&srv->cfg, (volatile int *)&srv->stopping) != 0)
        log_warn("cannot start the lifecycle/gc scheduler");
    return 0;
}

static void maint_stop_hook(struct server *srv)
{
    (void)srv;
    maint_stop();
}

const struct module maint_module = {.name = "maint", .init = maint_init, .stop = maint_stop_hook};
