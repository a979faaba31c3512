/* log.c - whole-line, thread-safe logging to stderr (the access log is h2o's, set up in http.c). */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "log.h"

static enum log_level level = LOG_INFO;
static _Thread_local const char *request_id;

void log_set_request_id(const char *id)
{
    request_id = id;
}

const char *log_get_request_id(void)
{
    return request_id;
}

void log_set_level(enum log_level lvl)
{
    level = lvl;
}

int log_parse_level(const char *s)
{
    static const char *const names[] = {"error", "warn", "info", "debug"};
    for (int i = 0; i < 4; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

/* 1 if byte `c` is written as is by log_escape. */
static int log_plain(unsigned char c)
{
    return c >= 0x20 && c < 0x7f && c != '\\' && c != '\'' && c != '"';
}

const char *log_escape(const char *s, size_t len, char *out, size_t size)
{
    static const char hex[] = "0123456789abcdef";
    size_t o = 0, need = 1, room;
    if (size == 0)
        return out;
    for (size_t i = 0; i < len; i++)
        need += log_plain((unsigned char)s[i]) ? 1 : 4;
    room = need <= size ? size - 1 : size > 4 ? size - 4 : 0; /* leave room for "..." when it does not fit */
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (o + (log_plain(c) ? 1 : 4) > room)
            break;
        if (log_plain(c)) {
            out[o++] = (char)c;
            continue;
        }
        out[o++] = '\\';
        out[o++] = 'x';
        out[o++] = hex[c >> 4];
        out[o++] = hex[c & 15];
    }
    if (need > size)
        for (int k = 0; k < 3 && o + 1 < size; k++)
            out[o++] = '.';
    out[o] = '\0';
    return out;
}

static void write_all(int fd, const char *buf, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n <= 0)
            return;
        buf += n;
        len -= (size_t)n;
    }
}

void log_msg(enum log_level lvl, const char *fmt, ...)
{
    static const char *const tags[] = {"error", "warn", "info", "debug"};
    char buf[2048];
    struct tm tm;
    time_t now = time(NULL);
    va_list ap;
    int n;
    if (lvl > level)
        return;
    gmtime_r(&now, &tm);
    n = (int)strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ ", &tm);
    n += snprintf(buf + n, sizeof(buf) - (size_t)n, "%s: ", tags[lvl]);
    if (request_id != NULL)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "req=%s ", request_id);
    va_start(ap, fmt);
    n += vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
    va_end(ap);
    if (n > (int)sizeof(buf) - 2)
        n = (int)sizeof(buf) - 2;
    buf[n++] = '\n';
    write_all(2, buf, (size_t)n);
}
