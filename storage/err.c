/* err.c - lookups into the error table of err.h. */
#include <errno.h>
#include "err.h"

struct berr_row {
    int status;
    const char *code, *message, *name;
};

static const struct berr_row rows[] = {
#define BERR_ROW_(name, status, code, msg) {status, code, msg, #name},
    BERR_TABLE(BERR_ROW_)
#undef BERR_ROW_
};

static const struct berr_row *row(int err)
{
    int i = err - BERR__FIRST_ - 1;
    static const struct berr_row unknown = {500, "UNKNOWN", "unknown error", "UNKNOWN"};
    if (i < 0 || i >= (int)(sizeof(rows) / sizeof(rows[0])))
        return &unknown;
    return &rows[i];
}

int berr_status(int err)
{
    return row(err)->status;
}

const char *berr_code(int err)
{
    return row(err)->code;
}

const char *berr_message(int err)
{
    return row(err)->message;
}

const char *berr_name(int err)
{
    return row(err)->name;
}

int berr_from_errno(int e)
{
    return (e == ENOSPC || e == EDQUOT) ? BERR_NOSPACE : (e == ENOMEM ? BERR_NOMEM : BERR_IO);
}
