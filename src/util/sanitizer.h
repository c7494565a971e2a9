/* Which sanitizer the build runs under, for the few places that must know.
 *
 *   EDO__ASAN     defined under AddressSanitizer (gcc or clang)
 *   EDO__TSAN     defined under ThreadSanitizer (gcc or clang)
 *   EDO__NO_TSAN  a function attribute: ThreadSanitizer does not instrument
 *                 the function (for a deliberately racy read whose value is
 *                 only a hint, such as a prefetch address); empty otherwise
 */
#ifndef EDO_UTIL_SANITIZER_H
#define EDO_UTIL_SANITIZER_H

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define EDO__ASAN 1
#endif
#if __has_feature(thread_sanitizer)
#define EDO__TSAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) && !defined(EDO__ASAN)
#define EDO__ASAN 1
#endif
#if defined(__SANITIZE_THREAD__) && !defined(EDO__TSAN)
#define EDO__TSAN 1
#endif

#ifdef EDO__TSAN
/* noinline: once inlined into an instrumented caller, gcc instruments it. */
#define EDO__NO_TSAN __attribute__((no_sanitize("thread"), noinline))
#else
#define EDO__NO_TSAN
#endif

#endif /* EDO_UTIL_SANITIZER_H */
