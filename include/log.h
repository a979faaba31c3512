/*
 * log.h - leveled logging to stderr.  The access log is h2o's own (combined format), configured in http.c.
 *
 * Lines are written whole with one write(2), so threads never interleave inside a line.  Secrets are never passed
 * to these functions: log the user name, never a password or token.
 */
#ifndef BERTH_LOG_H
#define BERTH_LOG_H

enum log_level { LOG_ERROR = 0, LOG_WARN = 1, LOG_INFO = 2, LOG_DEBUG = 3 };

/** Sets the level below which messages are dropped. */
void log_set_level(enum log_level lvl);
/** Parses "error" / "warn" / "info" / "debug"; returns -1 if unknown. */
int log_parse_level(const char *s);

/** Names the request this thread is working on (NULL: none): its X-Request-Id is added to every line logged
 *  meanwhile, as "req=<id>", so error lines can be matched with the access log and the client's response. */
void log_set_request_id(const char *id);
/** The id set by log_set_request_id() on this thread, or NULL. */
const char *log_get_request_id(void);

void log_msg(enum log_level lvl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARN, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
