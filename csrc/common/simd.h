/* SIMD_CLONES: compile a hot function twice, for AVX2 + FMA (x86-64-v3) and
 * for the baseline, and pick one at load time (GCC function multiversioning:
 * the loader calls an ifunc resolver per function).  Elsewhere it expands to
 * nothing and the baseline build is used.  Define QODE_NO_SIMD_CLONES to
 * build the baseline only.  ThreadSanitizer cannot run ifunc resolvers
 * (they run before its runtime starts), so a TSan build gets the baseline
 * only. */
#ifndef QODE_COMMON_SIMD_H
#define QODE_COMMON_SIMD_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__) \
    && !defined(QODE_NO_SIMD_CLONES) && !defined(__SANITIZE_THREAD__)
#define SIMD_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define SIMD_CLONES
#endif

/* QODE_ALWAYS_INLINE: helpers of SIMD_CLONES functions must be inlined into
 * each clone, or they would run the baseline code. */
#if defined(__GNUC__)
#define QODE_ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define QODE_ALWAYS_INLINE inline
#endif

#endif /* QODE_COMMON_SIMD_H */
