/*
 * fuzz_scope.c - libFuzzer target for scope.h: the `scope` parameters of a token request, decoded from the raw
 * query string as GET /token does (httpparse_query_each, then scope_each).
 *
 * Input: a raw query string.
 * Beyond "no crash, no sanitizer report":
 *   - every scope reported is well-formed: a repository name that passes names_repo_valid() with actions that are
 *     non-empty action bits, or registry:catalog / registry:ecr;
 *   - at most BERTH_AUTH_SCOPES_MAX scopes are reported, however many the query holds;
 *   - round trip: the reported scopes written back ("repository:NAME:ACTIONS" / "registry:NAME:*", one query
 *     parameter) are reported again, the same and in the same order;
 *   - each scope is reported the same when its space-separated item is parsed on its own (no state leaks from one
 *     item to the next).
 */
#include <stdio.h>
#include <string.h>
#include "authdb.h"
#include "fuzz_common.h"
#include "httpparse.h"
#include "names.h"
#include "scope.h"

#define ITEMS_MAX (BERTH_AUTH_SCOPES_MAX + 1)

struct list {
    struct scope_item it[ITEMS_MAX];
    size_t n;
    int count;
};

static int collect(void *ctx, const struct scope_item *it)
{
    struct list *l = ctx;
    FUZZ_ASSERT(l->n < BERTH_AUTH_SCOPES_MAX);
    if (it->kind == SCOPE_REGISTRY) {
        FUZZ_ASSERT((strcmp(it->name, "catalog") == 0 || strcmp(it->name, "ecr") == 0) && it->actions == 0);
    } else {
        FUZZ_ASSERT(it->kind == SCOPE_REPOSITORY);
        FUZZ_ASSERT(names_repo_valid(it->name, strlen(it->name)) == 0);
        FUZZ_ASSERT(it->actions != 0 && (it->actions & ~(AUTH_ALL | AUTH_ADMIN)) == 0);
    }
    l->it[l->n++] = *it;
    return 0;
}

static int each_param(void *ctx, const char *v)
{
    struct list *l = ctx;
    return scope_each(v, &l->count, collect, l);
}

static void same(const struct scope_item *a, const struct scope_item *b)
{
    FUZZ_ASSERT(a->kind == b->kind && strcmp(a->name, b->name) == 0 && a->actions == b->actions);
}

/* Every item of value `v` alone gives what the whole value gave for it. */
static void check_items_alone(const char *v, const struct list *whole)
{
    char s[SCOPE_VALUE_MAX], *save = NULL, *tok;
    size_t k = 0;
    snprintf(s, sizeof(s), "%s", v);
    for (tok = strtok_r(s, " ", &save); tok != NULL && k < whole->n; tok = strtok_r(NULL, " ", &save)) {
        struct list one = {0};
        scope_each(tok, &one.count, collect, &one);
        FUZZ_ASSERT(one.n <= 1 && one.count == 1);
        if (one.n == 1)
            same(&one.it[0], &whole->it[k++]);
    }
}

static int first_value(void *ctx, const char *v)
{
    snprintf(ctx, SCOPE_VALUE_MAX, "%s", v);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char buf[SCOPE_VALUE_MAX], query[8 * SCOPE_VALUE_MAX], value[SCOPE_VALUE_MAX];
    struct list l = {0}, again = {0};
    size_t o = 0;
    if (httpparse_query_each((const char *)data, size, "scope", each_param, &l, buf, sizeof(buf)) < 0)
        FUZZ_ASSERT(l.n <= BERTH_AUTH_SCOPES_MAX); /* a malformed parameter stops the request (400) */
    /* the first parameter on its own, item by item */
    value[0] = '\0';
    if (httpparse_query_each((const char *)data, size, "scope", first_value, value, buf, sizeof(buf)) == 1) {
        struct list first = {0};
        scope_each(value, &first.count, collect, &first);
        check_items_alone(value, &first);
    }
    /* round trip */
    o += (size_t)snprintf(query + o, sizeof(query) - o, "scope=");
    for (size_t i = 0; i < l.n; i++) {
        char acts[AUTH_ACTIONS_STR_MAX];
        authdb_actions_format(l.it[i].actions, acts, sizeof(acts));
        if (l.it[i].kind == SCOPE_REGISTRY)
            o += (size_t)snprintf(query + o, sizeof(query) - o, "%sregistry:%s:*", i ? "+" : "", l.it[i].name);
        else
            o += (size_t)snprintf(query + o, sizeof(query) - o, "%srepository:%s:%s", i ? "+" : "", l.it[i].name, acts);
    }
    FUZZ_ASSERT(o < sizeof(query));
    if (o - 6 >= SCOPE_VALUE_MAX)
        return 0; /* more than one parameter's worth: the input used several */
    FUZZ_ASSERT(httpparse_query_each(query, o, "scope", each_param, &again, buf, sizeof(buf)) >= 0);
    FUZZ_ASSERT(again.n == l.n);
    for (size_t i = 0; i < l.n; i++)
        same(&l.it[i], &again.it[i]);
    return 0;
}
