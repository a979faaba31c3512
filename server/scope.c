/* scope.c - the `scope` parameter of a token request (scope.h). [pure] */
#include <stdio.h>
#include <string.h>
#include "authdb.h"
#include "names.h"
#include "scope.h"

/* Parses one space-free scope `tok` (modified: the ':' become NULs).  Returns 1 with *it filled, or 0. */
static int scope_parse_one(char *tok, struct scope_item *it)
{
    char *c1 = strchr(tok, ':'), *c2 = strrchr(tok, ':');
    if (c1 == NULL || c2 == c1)
        return 0;
    *c1 = *c2 = '\0';
    if (strcmp(tok, "registry") == 0 && (strcmp(c1 + 1, "catalog") == 0 || strcmp(c1 + 1, "ecr") == 0)) {
        it->kind = SCOPE_REGISTRY;
        snprintf(it->name, sizeof(it->name), "%s", c1 + 1);
        it->actions = 0;
        return 1;
    }
    if (strcmp(tok, "repository") != 0 || names_repo_valid(c1 + 1, strlen(c1 + 1)) != 0 ||
        strlen(c1 + 1) >= sizeof(it->name) || authdb_actions_parse(c2 + 1, &it->actions) != 0)
        return 0;
    it->kind = SCOPE_REPOSITORY;
    memcpy(it->name, c1 + 1, strlen(c1 + 1) + 1);
    return 1;
}

int scope_each(const char *v, int *count, int (*fn)(void *ctx, const struct scope_item *item), void *ctx)
{
    char s[SCOPE_VALUE_MAX], *save = NULL, *tok;
    snprintf(s, sizeof(s), "%s", v);
    for (tok = strtok_r(s, " ", &save); tok != NULL; tok = strtok_r(NULL, " ", &save)) {
        struct scope_item it;
        int rc;
        if (++*count > BERTH_AUTH_SCOPES_MAX)
            return 1;
        if (scope_parse_one(tok, &it) && (rc = fn(ctx, &it)) != 0)
            return rc;
    }
    return 0;
}
