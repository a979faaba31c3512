/* server.c - the per-thread read connections of server.h. */
#include "server.h"

static _Thread_local struct db *thread_db;

struct db *server_db(const struct server *srv)
{
    if (thread_db == NULL && db_open(srv->cfg.data, &thread_db) != 0)
        thread_db = NULL;
    return thread_db;
}

void server_db_close(void)
{
    db_close(thread_db);
    thread_db = NULL;
}
