/* Two-tier assertions: HR_ASSERT is always on (invariants); HR_DEBUG_ASSERT
 * only in debug builds (API misuse). */
#ifndef HR_ASSERT_H
#define HR_ASSERT_H

#include <stdio.h>
#include <stdlib.h>

#define HR_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: assertion failed: %s\n", __FILE__, __LINE__, #cond);           \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#ifdef NDEBUG
#define HR_DEBUG_ASSERT(cond) ((void)0)
#else
#define HR_DEBUG_ASSERT(cond) HR_ASSERT(cond)
#endif

#define HR_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#endif
