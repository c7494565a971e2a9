/* Sanitizer and valgrind support for fiber stacks.
 *
 * Without these hooks AddressSanitizer crashes or warns on the first
 * noreturn call on a fiber stack, ThreadSanitizer crashes (gcc) or misses
 * real races (clang), and valgrind reports "client switching stacks?"
 * (reference/c-async-ergonomics.md §2.3).  Each hook compiles to nothing
 * when its tool is absent.
 */
#ifndef EDO_FIBER_SAN_H
#define EDO_FIBER_SAN_H

#include "util/sanitizer.h"

#ifdef EDO__ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define EDO__ASAN_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define EDO__ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#ifdef EDO__TSAN
#include <sanitizer/tsan_interface.h>
#endif

/* Instrumented frames are larger: sanitizer builds get 4x the default stack. */
#if defined(EDO__ASAN) || defined(EDO__TSAN)
#define EDO__SAN_STACK_SCALE 4
#else
#define EDO__SAN_STACK_SCALE 1
#endif

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define EDO__VALGRIND_STACK_REGISTER(lo, hi) VALGRIND_STACK_REGISTER((lo), (hi))
#define EDO__RUNNING_ON_VALGRIND() (RUNNING_ON_VALGRIND != 0)
/* Around a deliberate read below the stack pointer (a stack's canary). */
#define EDO__VALGRIND_QUIET_BEGIN() VALGRIND_DISABLE_ERROR_REPORTING
#define EDO__VALGRIND_QUIET_END() VALGRIND_ENABLE_ERROR_REPORTING
#endif
#endif
#ifndef EDO__VALGRIND_STACK_REGISTER
#define EDO__VALGRIND_STACK_REGISTER(lo, hi) ((void)(lo), (void)(hi), 0u)
#define EDO__RUNNING_ON_VALGRIND() 0
#define EDO__VALGRIND_QUIET_BEGIN() ((void)0)
#define EDO__VALGRIND_QUIET_END() ((void)0)
#endif

#endif /* EDO_FIBER_SAN_H */
