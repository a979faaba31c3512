/*
 * s3upload_internal.h - what s3upload.c (the upload path) and s3upload_expire.c (its expiry) share; not an API.
 */
#ifndef BERTH_S3UPLOAD_INTERNAL_H
#define BERTH_S3UPLOAD_INTERNAL_H

#include <stdint.h>

/** A positive size from the environment variable `name` (test-only knobs: BERTH_TEST_S3_*), or `dflt` when it is
 *  unset, empty or not a positive integer. */
uint64_t s3upload__env_size(const char *name, uint64_t dflt);

#endif
