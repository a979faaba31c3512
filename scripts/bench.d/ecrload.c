/*
 * ecrload.c - a closed-loop load generator for one ECR API operation, SigV4 included (scripts/bench-ecr).
 *
 *   ecrload HOST PORT KEY_ID SECRET REGION OPERATION BODY CONNECTIONS SECONDS
 *
 * Signs the request once with Berth's own sigv4.c (X-Amz-Date = now, valid for SIGV4_MAX_SKEW), then keeps
 * CONNECTIONS keep-alive HTTP/1.1 connections busy for SECONDS, one request in flight per connection.  The
 * server verifies the signature of every request, so the numbers include SigV4.  Every response must be 200;
 * prints "requests req/s p50_ms p99_ms errors".
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include "sigv4.h"

#define LOAD_MAX_CONNS 256
#define LOAD_MAX_SAMPLES (1u << 22)
#define LOAD_BUF (1u << 20)

static char request[16384];
static size_t request_len;
static struct sockaddr_in addr;
static double deadline;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static double *samples;
static size_t nsamples;
static long errors;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Reads one response; returns its status or -1. */
static int read_response(int fd, char *buf)
{
    size_t have = 0;
    char *hdr_end = NULL;
    while (hdr_end == NULL) {
        ssize_t n = read(fd, buf + have, LOAD_BUF - 1 - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        hdr_end = strstr(buf, "\r\n\r\n");
    }
    int status = atoi(buf + 9);
    char *cl = strcasestr(buf, "\r\ncontent-length:");
    size_t want = (size_t)(hdr_end + 4 - buf) + (cl ? strtoul(cl + 17, NULL, 10) : 0);
    if (want >= LOAD_BUF)
        return -1; /* ECR answers here are small; a larger one is an error of the setup */
    while (have < want) {
        ssize_t n = read(fd, buf + have, want - have);
        if (n <= 0)
            return -1;
        have += (size_t)n;
    }
    return status;
}

static void *worker(void *arg)
{
    char *buf = malloc(LOAD_BUF);
    double *mine = malloc(sizeof(double) * (LOAD_MAX_SAMPLES / LOAD_MAX_CONNS));
    size_t n = 0;
    long errs = 0;
    int fd = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    (void)arg;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) != 0) {
        perror("connect");
        exit(1);
    }
    while (now_s() < deadline && n < LOAD_MAX_SAMPLES / LOAD_MAX_CONNS) {
        double t0 = now_s();
        if (write(fd, request, request_len) != (ssize_t)request_len)
            break;
        int st = read_response(fd, buf);
        if (st < 0)
            break;
        if (st != 200)
            errs++;
        mine[n++] = now_s() - t0;
    }
    close(fd);
    pthread_mutex_lock(&lock);
    memcpy(samples + nsamples, mine, n * sizeof(double));
    nsamples += n;
    errors += errs;
    pthread_mutex_unlock(&lock);
    free(mine);
    free(buf);
    return NULL;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    char host[300], date[SIGV4_AMZDATE_LEN + 1], target[160], hash[SIGV4_HEX_LEN + 1], authz[SIGV4_AUTHZ_MAX];
    pthread_t th[LOAD_MAX_CONNS];
    if (argc != 10) {
        fprintf(stderr, "usage: ecrload HOST PORT KEY_ID SECRET REGION OPERATION BODY CONNECTIONS SECONDS\n");
        return 2;
    }
    const char *body = argv[7];
    int conns = atoi(argv[8]), secs = atoi(argv[9]);
    if (conns < 1 || conns > LOAD_MAX_CONNS || secs < 1)
        return 2;
    snprintf(host, sizeof(host), "%s:%s", argv[1], argv[2]);
    snprintf(target, sizeof(target), "AmazonEC2ContainerRegistry_V20150921.%s", argv[6]);
    sigv4_format_amzdate(time(NULL), date);
    sigv4_sha256_hex(body, strlen(body), hash);
    struct sigv4_header hs[] = {
        {"content-type", 12, "application/x-amz-json-1.1", 26},
        {"host", 4, host, strlen(host)},
        {"x-amz-date", 10, date, strlen(date)},
        {"x-amz-target", 12, target, strlen(target)},
    };
    struct sigv4_request req = {"POST", "/", 1, "", 0, hs, 4, hash, 1};
    if (sigv4_sign(&req, argv[3], argv[4], strlen(argv[4]), argv[5], "ecr", authz) != 0)
        return 1;
    request_len = (size_t)snprintf(request, sizeof(request),
                                   "POST / HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-amz-json-1.1\r\n"
                                   "X-Amz-Date: %s\r\nX-Amz-Target: %s\r\nAuthorization: %s\r\n"
                                   "Content-Length: %zu\r\n\r\n%s",
                                   host, date, target, authz, strlen(body), body);
    addr.sin_family = AF_INET;
    addr.sin_port = htons((uint16_t)atoi(argv[2]));
    inet_pton(AF_INET, argv[1], &addr.sin_addr);
    samples = malloc(sizeof(double) * LOAD_MAX_SAMPLES);
    double t0 = now_s();
    deadline = t0 + secs;
    for (int i = 0; i < conns; i++)
        pthread_create(&th[i], NULL, worker, NULL);
    for (int i = 0; i < conns; i++)
        pthread_join(th[i], NULL);
    double el = now_s() - t0;
    qsort(samples, nsamples, sizeof(double), cmp);
    printf("%zu %.0f %.2f %.2f %ld\n", nsamples, (double)nsamples / el, nsamples ? samples[nsamples / 2] * 1e3 : 0.0,
           nsamples ? samples[nsamples * 99 / 100] * 1e3 : 0.0, errors);
    return errors == 0 && nsamples > 0 ? 0 : 1;
}
