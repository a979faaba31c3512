/*
 * fuzz_config.c - libFuzzer target for config.h: config_load() of a whole config file, then config_listen_addr().
 *
 * The input is the file's contents (written to a memfd, read back through /proc/self/fd/N, as a real file is).
 * Beyond "no crash, no sanitizer report": a refusal comes with a NUL-terminated message; every string option of
 * an accepted config is NUL-terminated inside its buffer; numbers are within their documented ranges.
 */
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include "config.h"
#include "fuzz_common.h"
#include "log.h"

#define TERMINATED(field) (memchr((field), '\0', sizeof(field)) != NULL)

static void check_config(const struct config *c)
{
    char host[256];
    int port;
    FUZZ_ASSERT(TERMINATED(c->listen) && TERMINATED(c->data) && TERMINATED(c->access_log));
    FUZZ_ASSERT(TERMINATED(c->tls_cert) && TERMINATED(c->tls_key) && TERMINATED(c->auth_service));
    FUZZ_ASSERT(TERMINATED(c->auth_realm));
    FUZZ_ASSERT(c->threads >= 0 && c->workers >= 0 && c->request_timeout >= 0 && c->upload_timeout >= 0);
    FUZZ_ASSERT(c->log_level >= LOG_ERROR && c->log_level <= LOG_DEBUG);
    if (config_listen_addr(c, host, sizeof(host), &port) == 0)
        FUZZ_ASSERT(port >= 0 && port <= 65535 && TERMINATED(host));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    char path[64], err[512];
    struct config c;
    if (fd < 0 && (fd = memfd_create("berth-fuzz-config", 0)) < 0)
        abort();
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    config_defaults(&c);
    memset(err, 'x', sizeof(err));
    if (config_load(&c, path, err, sizeof(err)) == 0)
        check_config(&c);
    else
        FUZZ_ASSERT(TERMINATED(err));
    return 0;
}
