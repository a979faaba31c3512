/* test_err.c - err.h: the one error table and its lookups. */
#include <errno.h>
#include "check.h"

struct row {
    int err, status;
    const char *code, *message, *name;
};

/* The table as the header declares it, to compare every lookup against. */
static const struct row table[] = {
#define ROW_(name, status, code, msg) {BERR_##name, status, code, msg, #name},
    BERR_TABLE(ROW_)
#undef ROW_
};

/* Every code maps to its own row: status in 4xx/5xx, non-empty OCI code, message and name. */
static void every_code_has_status_code_and_message(void)
{
    for (size_t i = 0; i < CHECK_COUNT(table); i++) {
        int e = table[i].err;
        CHECK(e < 0);
        CHECK_INT_EQ(berr_status(e), table[i].status);
        CHECK(berr_status(e) >= 400 && berr_status(e) <= 599);
        CHECK_STR_EQ(berr_code(e), table[i].code);
        CHECK_STR_EQ(berr_message(e), table[i].message);
        CHECK_STR_EQ(berr_name(e), table[i].name);
        CHECK(berr_code(e)[0] != '\0');
        CHECK(berr_message(e)[0] != '\0');
    }
}

/* The enum is dense: BERR__FIRST_ + 1 .. BERR__END_ - 1 are exactly the table's rows, all distinct. */
static void codes_are_dense_and_distinct(void)
{
    CHECK_INT_EQ(BERR__END_ - BERR__FIRST_ - 1, CHECK_COUNT(table));
    CHECK_INT_EQ(table[0].err, BERR__FIRST_ + 1);
    for (size_t i = 1; i < CHECK_COUNT(table); i++)
        CHECK_INT_EQ(table[i].err, table[i - 1].err + 1);
    CHECK(BERR__END_ < 0);
}

/* Spot checks of the rows the protocol depends on. */
static void protocol_rows_match_the_spec(void)
{
    CHECK_INT_EQ(berr_status(BERR_BLOB_UNKNOWN), 404);
    CHECK_STR_EQ(berr_code(BERR_BLOB_UNKNOWN), "BLOB_UNKNOWN");
    CHECK_INT_EQ(berr_status(BERR_MANIFEST_INVALID), 400);
    CHECK_INT_EQ(berr_status(BERR_MANIFEST_TOO_LARGE), 413);
    CHECK_STR_EQ(berr_code(BERR_MANIFEST_TOO_LARGE), "MANIFEST_INVALID");
    CHECK_INT_EQ(berr_status(BERR_UNAUTHORIZED), 401);
    CHECK_INT_EQ(berr_status(BERR_RANGE_UNSATISFIABLE), 416);
    CHECK_STR_EQ(berr_code(BERR_PAGINATION_INVALID), "PAGINATION_NUMBER_INVALID");
    CHECK_STR_EQ(berr_name(BERR_INTERNAL), "INTERNAL");
}

/* An unknown code (0, positive, below the table, past its end) is a 500 with code UNKNOWN. */
static void unknown_code_is_500(void)
{
    const int unknown[] = {0, 1, -1, BERR__FIRST_, BERR__FIRST_ - 1, BERR__END_, -100000};
    for (size_t i = 0; i < CHECK_COUNT(unknown); i++) {
        CHECK_INT_EQ(berr_status(unknown[i]), 500);
        CHECK_STR_EQ(berr_code(unknown[i]), "UNKNOWN");
        CHECK(berr_message(unknown[i]) != NULL);
        CHECK(berr_name(unknown[i]) != NULL);
    }
}

/* errno converts once: ENOSPC/EDQUOT → NOSPACE, ENOMEM → NOMEM, anything else → IO. */
static void from_errno_maps_space_memory_and_io(void)
{
    CHECK_ERR(berr_from_errno(ENOSPC), BERR_NOSPACE);
    CHECK_ERR(berr_from_errno(EDQUOT), BERR_NOSPACE);
    CHECK_ERR(berr_from_errno(ENOMEM), BERR_NOMEM);
    CHECK_ERR(berr_from_errno(EIO), BERR_IO);
    CHECK_ERR(berr_from_errno(EACCES), BERR_IO);
    CHECK_INT_EQ(berr_status(BERR_NOSPACE), 507);
}

int main(int argc, char **argv)
{
    static const struct check_test tests[] = {
        CHECK_TEST(every_code_has_status_code_and_message), CHECK_TEST(codes_are_dense_and_distinct),
        CHECK_TEST(protocol_rows_match_the_spec),           CHECK_TEST(unknown_code_is_500),
        CHECK_TEST(from_errno_maps_space_memory_and_io),
    };
    return check_run(tests, CHECK_COUNT(tests), argc, argv);
}
