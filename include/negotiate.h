/*
 * negotiate.h - content negotiation of manifest GETs: which media types an Accept header value lists.
 *
 * Pure: no h2o, so that a unit test and a fuzz target call it directly.  The manifest handler reads every Accept
 * line of a request (docker sends six) and asks about each.  Media-type parameters (";q=0.5") are ignored.
 */
#ifndef BERTH_NEGOTIATE_H
#define BERTH_NEGOTIATE_H

#include <stddef.h>

/** 1 if the Accept header value `v[0..len)` lists media type `mt` exactly, or, with `wildcards`, any type
 *  ("STAR/STAR") or any application type ("application/STAR", STAR being '*'); else 0.  Entries are separated by
 * commas, with optional spaces or tabs before each. */
int negotiate_accept_lists(const char *v, size_t len, const char *mt, int wildcards);

#endif
