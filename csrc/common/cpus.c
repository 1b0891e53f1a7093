#define _POSIX_C_SOURCE 200809L
#include <stdatomic.h>
#include <unistd.h>

#include "common/cpus.h"

int qode_online_cpus(void)
{
    /* 0 until first asked; two threads asking at once store the same answer */
    static atomic_int cached;
    int n = atomic_load_explicit(&cached, memory_order_relaxed);
    if (n == 0) {
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        n = cpus < 1 ? 1 : (cpus > 4096 ? 4096 : (int)cpus);
        atomic_store_explicit(&cached, n, memory_order_relaxed);
    }
    return n;
}
