/* A minimal test framework for the C core's test programs.
 *
 * Each CHECK counts one pass or one failure; a failure prints where it
 * happened and why.  A test program ends with `return check_summary();`, which
 * prints the one line "N passed, M failed" that tests/test_c_core.py reads,
 * and makes the exit status nonzero when anything failed.  Every test program
 * is a single translation unit, so the counters can live in this header.
 */
#ifndef QODE_TEST_CHECK_H
#define QODE_TEST_CHECK_H

#include <math.h>
#include <stdio.h>

static int check_n_passed;
static int check_n_failed;

/* Counts one check; on failure prints file:line, the function and `what`. */
static inline int check_record(int ok, const char *file, int line, const char *func,
                               const char *what)
{
    if (ok) {
        check_n_passed++;
    } else {
        check_n_failed++;
        printf("FAIL %s:%d in %s: %s\n", file, line, func, what);
    }
    return ok;
}

/* CHECK(condition): the condition must hold. */
#define CHECK(cond) check_record((cond) != 0, __FILE__, __LINE__, __func__, #cond)

/* CHECK_MSG(condition, printf-style context...): as CHECK, and on failure also
 * prints the context (which method, which time, ...). */
#define CHECK_MSG(cond, ...)                                                     \
    do {                                                                         \
        if (!check_record((cond) != 0, __FILE__, __LINE__, __func__, #cond)) {  \
            printf("    ");                                                      \
            printf(__VA_ARGS__);                                                 \
            printf("\n");                                                        \
        }                                                                        \
    } while (0)

/* CHECK_NEAR(actual, expected, tol): |actual - expected| <= tol, both finite.
 * Prints both values on failure. */
#define CHECK_NEAR(actual, expected, tol)                                               \
    do {                                                                                \
        double check_a_ = (double)(actual), check_e_ = (double)(expected);              \
        double check_t_ = (double)(tol);                                                \
        CHECK_MSG(isfinite(check_a_) && fabs(check_a_ - check_e_) <= check_t_,          \
                  "%s = %.17g, expected %.17g (difference %.3g, allowed %.3g)",         \
                  #actual, check_a_, check_e_, fabs(check_a_ - check_e_), check_t_);    \
    } while (0)

/* CHECK_INT_EQ(actual, expected) for integers, e.g. status codes. */
#define CHECK_INT_EQ(actual, expected)                                                 \
    do {                                                                               \
        long long check_a_ = (long long)(actual), check_e_ = (long long)(expected);   \
        CHECK_MSG(check_a_ == check_e_, "%s = %lld, expected %lld", #actual, check_a_, \
                  check_e_);                                                           \
    } while (0)

/* Prints "N passed, M failed"; returns the process exit status. */
static inline int check_summary(void)
{
    printf("%d passed, %d failed\n", check_n_passed, check_n_failed);
    return check_n_failed > 0 ? 1 : 0;
}

#endif /* QODE_TEST_CHECK_H */
