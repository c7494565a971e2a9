/* Fiber stacks: slabs, guards, and a per-thread LIFO pool.
 *
 * A fresh mmap/munmap per fiber costs about a thousand times a pooled stack
 * (page faults, VMA work, TLB shootdowns), so stacks are carved from large
 * MAP_NORESERVE slabs and recycled:
 *
 *   slab:  [guard|stack ........][guard|stack ........][guard|stack ...
 *           ^lo-guard ^lo    ^lo+size (the top; stacks grow down)
 *
 *   thread cache (per size class, LIFO, no lock)  ⇄  depot (per class, mutex)
 *        hot: pages stay resident                     above a watermark the
 *                                                     stacks are trimmed
 *                                                     (MADV_DONTNEED)
 *
 * Guards, chosen once per stack when it is carved:
 *   MADVISE   MADV_GUARD_INSTALL (Linux >= 6.13): guard entries in the page
 *             tables, no VMA split, no RSS; detected at run time.
 *   MPROTECT  a PROT_NONE page; splits the slab's VMA, so only while the
 *             process stays well under vm.max_map_count (a budget).
 *   CANARY    no guard: a word at the lowest usable address, checked on
 *             every switch out of the fiber and when the stack is released
 *             (detects an overflow after the fact, never silently).
 * A fault in a guard is reported by the SIGSEGV handler of guard.c.
 *
 * Slabs are never unmapped (their descriptors stay valid for the signal
 * handler); trimmed stacks cost only address space and page tables.
 */
#ifndef EDO_FIBER_STACK_H
#define EDO_FIBER_STACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "fiber/san.h"

enum edo__guard {
	EDO__GUARD_MADVISE = 1,
	EDO__GUARD_MPROTECT = 2,
	EDO__GUARD_CANARY = 3,
};

#define EDO__STACK_CANARY 0xed0f1be5dead57acULL

/* Guard bytes below every stack: big enough that a frame of a few KiB
 * cannot jump over it; costs only address space. */
#define EDO__STACK_GUARD ((size_t)16 << 10)

typedef struct edo__stack {
	char *lo;                /* lowest usable byte; the guard is just below */
	size_t size;             /* usable bytes: the top is lo + size */
	struct edo__stack *next; /* free lists */
	uint8_t cls;             /* size class */
	uint8_t guard;           /* enum edo__guard */
	bool trimmed;            /* pages released; the canary must be rewritten */
	unsigned vg_id;          /* valgrind's id of the registered stack */
#ifdef EDO__TSAN
	/* ThreadSanitizer's context for the fibers that run on this stack:
	 * made once and reused (TSan counts each as a thread, at most 8128,
	 * and making one costs about a millisecond).  Reuse only adds
	 * happens-before edges that the pool really provides. */
	void *tsan_fiber;
#endif
} edo__stack;

/* Smallest, default and largest usable size.  Sizes round up to a power of
 * two.  Sanitizer builds get 4x the default (redzones make frames bigger). */
#define EDO__STACK_MIN ((size_t)16 << 10)
#define EDO__STACK_MAX ((size_t)256 << 20)

/* The usable size a request for @size bytes gets (0: the default), or 0 if
 * it is larger than EDO__STACK_MAX. */
size_t edo__stack_round(size_t size);

/* A stack of at least @size usable bytes (a value from edo__stack_round),
 * from this thread's cache, the depot, or a slab.  NULL when out of memory
 * or address space. */
edo__stack *edo__stack_get(size_t size);

/* Give @s back (from any thread): into this thread's cache; the cache
 * spills to the depot, which trims above its watermark.  (The canary of an
 * unguarded stack is checked by the fiber when it returns, not here.) */
void edo__stack_put(edo__stack *s);

/* Whether the canary of an unguarded stack is intact (always true for a
 * guarded one). */
static inline bool edo__stack_canary_ok(const edo__stack *s)
{
	if (s->guard != EDO__GUARD_CANARY)
		return true;
	/* The canary lies below the stack pointer: valgrind would object. */
	EDO__VALGRIND_QUIET_BEGIN();
	bool ok = *(const volatile uint64_t *)(const void *)s->lo == EDO__STACK_CANARY;
	EDO__VALGRIND_QUIET_END();
	return ok;
}

/* Tests only: carve later stacks with @mode (0: back to automatic).  Stacks
 * already carved keep their guard; new slabs are started so that the mode
 * applies at once. */
void edo__stack_force_guard(int mode);

/* Statistics (tests and benchmarks). */
typedef struct edo__stack_stats {
	size_t slabs;           /* slabs mapped */
	size_t carved;          /* stacks carved from slabs */
	size_t depot;           /* stacks in the depots */
	size_t trimmed;         /* stacks trimmed (cumulative) */
	size_t mprotect_guards; /* mprotect guards installed */
	int madvise_guard;      /* 1 works, 0 unsupported, -1 not tried yet */
} edo__stack_stats;

void edo__stack_get_stats(edo__stack_stats *out);

#endif /* EDO_FIBER_STACK_H */
