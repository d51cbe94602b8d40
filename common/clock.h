/* The monotonic clock in the units callers count in (deadlines, rates,
 * how long something waited): one reading of CLOCK_MONOTONIC each. */
#ifndef DP_CLOCK_H
#define DP_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t dp_mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t dp_mono_us(void)
{
    return dp_mono_ns() / 1000u;
}

static inline uint64_t dp_mono_ms(void)
{
    return dp_mono_ns() / 1000000u;
}

#endif
