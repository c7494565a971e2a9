/* Fiber stacks: slabs, guards, the per-thread cache and the depot.  The
 * design is drawn in stack.h. */
#define _GNU_SOURCE
#include "fiber/stack.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "fiber/san.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* uapi value, Linux 6.13 (not in older headers) */
#endif

#define MIN_SHIFT 14 /* 16 KiB */
#define NCLASS 15    /* 16 KiB .. 256 MiB */
#define SLAB_BYTES ((size_t)32 << 20)
#define CACHE_BYTES ((size_t)4 << 20)  /* hot stacks one thread keeps per class */
#define DEPOT_BYTES ((size_t)32 << 20) /* untrimmed stacks the depot keeps per class */

typedef struct slab {
	char *base;
	size_t slot; /* guard + usable */
	size_t n, used;
	struct slab *next;
	edo__stack descs[];
} slab;

typedef struct stack_class {
	pthread_mutex_t lock;
	edo__stack *depot;
	size_t ndepot;
	slab *cur;
} stack_class;

static stack_class classes[NCLASS] = {[0 ... NCLASS - 1] = {.lock = PTHREAD_MUTEX_INITIALIZER}};

/* Statistics and guard state, shared by all classes. */
static atomic_size_t n_slabs, n_carved, n_trimmed, n_mprotect;
static atomic_int madvise_state = -1; /* 1 works, 0 unsupported, -1 untried */
static atomic_int forced_guard;
static size_t mprotect_budget;
static pthread_once_t budget_once = PTHREAD_ONCE_INIT;

typedef struct tcache {
	edo__stack *head[NCLASS];
	uint32_t n[NCLASS];
	bool registered;
	bool released; /* the thread is exiting: its cache went to the depot */
} tcache;

static __thread tcache cache;
static pthread_key_t cache_key;
static pthread_once_t cache_key_once = PTHREAD_ONCE_INIT;

size_t edo__stack_round(size_t size)
{
	if (size == 0)
		size = EDO__SAN_STACK_SCALE * ((size_t)64 << 10);
	if (size > EDO__STACK_MAX)
		return 0;
	size_t r = EDO__STACK_MIN;
	while (r < size)
		r <<= 1;
	return r;
}

static unsigned class_of(size_t size)
{
	unsigned c = 0;
	while (((size_t)1 << (MIN_SHIFT + c)) < size)
		c++;
	return c;
}

static size_t cache_max(size_t size)
{
	size_t n = CACHE_BYTES / size;
	return n < 4 ? 4 : n > 64 ? 64 : n;
}

static size_t depot_max(size_t size)
{
	size_t n = DEPOT_BYTES / size;
	return n < 8 ? 8 : n > 512 ? 512 : n;
}

/* ---- guards ------------------------------------------------------------------ */

static void read_budget(void)
{
	/* Each mprotect guard splits a mapping into three: two more VMAs.  Let
	 * guards take at most half of vm.max_map_count (65530 by default). */
	long max = 65530;
	FILE *fp = fopen("/proc/sys/vm/max_map_count", "re");
	if (fp) {
		char line[32];
		if (fgets(line, sizeof line, fp)) {
			char *end;
			long v = strtol(line, &end, 10);
			if (end != line && v > 0)
				max = v;
		}
		(void)fclose(fp);
	}
	mprotect_budget = max > 0 ? (size_t)max / 4 : 0;
}

static void guard_install(edo__stack *s)
{
	char *g = s->lo - EDO__STACK_GUARD;
	int mode = atomic_load_explicit(&forced_guard, memory_order_relaxed);
	if ((!mode || mode == EDO__GUARD_MADVISE) &&
	    atomic_load_explicit(&madvise_state, memory_order_relaxed) != 0) {
		if (madvise(g, EDO__STACK_GUARD, MADV_GUARD_INSTALL) == 0) {
			atomic_store_explicit(&madvise_state, 1, memory_order_relaxed);
			s->guard = EDO__GUARD_MADVISE;
			return;
		}
		/* EINVAL: a kernel before 6.13 (or a tool that does not know
		 * the advice); fall back for good. */
		atomic_store_explicit(&madvise_state, 0, memory_order_relaxed);
	}
	if (!mode || mode == EDO__GUARD_MPROTECT) {
		pthread_once(&budget_once, read_budget);
		size_t used = atomic_fetch_add_explicit(&n_mprotect, 1, memory_order_relaxed);
		if (used < mprotect_budget && mprotect(g, EDO__STACK_GUARD, PROT_NONE) == 0) {
			s->guard = EDO__GUARD_MPROTECT;
			return;
		}
		atomic_fetch_sub_explicit(&n_mprotect, 1, memory_order_relaxed);
	}
	s->guard = EDO__GUARD_CANARY;
}

void edo__stack_force_guard(int mode)
{
	atomic_store(&forced_guard, mode);
}

/* ---- slabs ------------------------------------------------------------------- */

/* Carve one stack of class @c; the class lock is held. */
static edo__stack *carve(stack_class *k, unsigned c, size_t size)
{
	slab *sl = k->cur;
	if (!sl || sl->used == sl->n) {
		size_t slot = EDO__STACK_GUARD + size;
		size_t n = SLAB_BYTES / slot;
		if (n == 0)
			n = 1;
		slab *ns = malloc(sizeof *ns + n * sizeof(edo__stack));
		if (!ns)
			return NULL;
		void *base = mmap(NULL, n * slot, PROT_READ | PROT_WRITE,
				  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (base == MAP_FAILED) {
			free(ns);
			return NULL;
		}
		/* A transparent huge page would back 2 MiB of neighbouring
		 * stacks, multiplying the RSS of idle fibers. */
		(void)madvise(base, n * slot, MADV_NOHUGEPAGE);
		ns->base = base;
		ns->slot = slot;
		ns->n = n;
		ns->used = 0;
		ns->next = sl;
		k->cur = ns;
		sl = ns;
		atomic_fetch_add_explicit(&n_slabs, 1, memory_order_relaxed);
	}
	edo__stack *s = &sl->descs[sl->used];
	s->lo = sl->base + sl->used * sl->slot + EDO__STACK_GUARD;
	sl->used++;
	s->size = size;
	s->next = NULL;
	s->cls = (uint8_t)c;
	s->trimmed = false;
#ifdef EDO__TSAN
	s->tsan_fiber = NULL;
#endif
	guard_install(s);
	s->vg_id = EDO__VALGRIND_STACK_REGISTER(s->lo, s->lo + size);
	atomic_fetch_add_explicit(&n_carved, 1, memory_order_relaxed);
	return s;
}

/* ---- the depot ------------------------------------------------------------------ */

/* Push the list @first..(n stacks) of class @c into the depot; stacks above
 * the watermark are trimmed first. */
static void depot_put(unsigned c, edo__stack *first, uint32_t n)
{
	stack_class *k = &classes[c];
	size_t size = (size_t)1 << (MIN_SHIFT + c);
	size_t keep = depot_max(size);
	pthread_mutex_lock(&k->lock);
	for (edo__stack *s = first, *next; n--; s = next) {
		next = s->next;
		if (k->ndepot >= keep && !s->trimmed) {
			/* Above the watermark: give the pages back.  Guards
			 * survive MADV_DONTNEED; the canary does not. */
			(void)madvise(s->lo, s->size, MADV_DONTNEED);
			s->trimmed = true;
			atomic_fetch_add_explicit(&n_trimmed, 1, memory_order_relaxed);
		}
		s->next = k->depot;
		k->depot = s;
		k->ndepot++;
	}
	pthread_mutex_unlock(&k->lock);
}

static void cache_flush(void *unused)
{
	(void)unused;
	for (unsigned c = 0; c < NCLASS; c++) {
		if (cache.n[c])
			depot_put(c, cache.head[c], cache.n[c]);
		cache.head[c] = NULL;
		cache.n[c] = 0;
	}
	/* A stack put later on this thread (another key's destructor) goes
	 * straight to the depot: this destructor does not run again. */
	cache.released = true;
}

static void make_cache_key(void)
{
	(void)pthread_key_create(&cache_key, cache_flush);
}

static void cache_register(void)
{
	/* A thread's cache goes back to the depot when the thread exits. */
	pthread_once(&cache_key_once, make_cache_key);
	(void)pthread_setspecific(cache_key, &cache);
	cache.registered = true;
}

/* ---- get and put ------------------------------------------------------------------- */

static void prepare(edo__stack *s)
{
	if (s->guard == EDO__GUARD_CANARY)
		*(uint64_t *)(void *)s->lo = EDO__STACK_CANARY;
	s->trimmed = false;
	s->next = NULL;
}

edo__stack *edo__stack_get(size_t size)
{
	unsigned c = class_of(size);
	if (c >= NCLASS)
		return NULL;
	if (!cache.registered)
		cache_register();
	edo__stack *s = cache.head[c];
	if (s) {
		cache.head[c] = s->next;
		cache.n[c]--;
		prepare(s);
		return s;
	}
	stack_class *k = &classes[c];
	pthread_mutex_lock(&k->lock);
	s = k->depot;
	if (s) {
		/* Take a batch: the next spawns on this thread need no lock. */
		k->depot = s->next;
		k->ndepot--;
		size_t batch = cache_max(size) / 2;
		while (batch-- && k->depot) {
			edo__stack *x = k->depot;
			k->depot = x->next;
			k->ndepot--;
			x->next = cache.head[c];
			cache.head[c] = x;
			cache.n[c]++;
		}
	} else {
		s = carve(k, c, size);
	}
	pthread_mutex_unlock(&k->lock);
	if (s)
		prepare(s);
	return s;
}

void edo__stack_put(edo__stack *s)
{
	unsigned c = s->cls;
	/* The frames of a fiber that ended by switching away never returned:
	 * their ASan poisoning must not greet the next fiber. */
	EDO__ASAN_UNPOISON(s->lo, s->size);
	if (__builtin_expect(cache.released, 0)) {
		s->next = NULL;
		depot_put(c, s, 1);
		return;
	}
	if (!cache.registered)
		cache_register();
	s->next = cache.head[c];
	cache.head[c] = s;
	if (++cache.n[c] <= cache_max(s->size))
		return;
	/* Spill the colder half (the bottom of the LIFO) to the depot. */
	uint32_t keep = cache.n[c] / 2;
	edo__stack *last = cache.head[c];
	for (uint32_t i = 1; i < keep; i++)
		last = last->next;
	edo__stack *spill = last->next;
	last->next = NULL;
	uint32_t n = cache.n[c] - keep;
	cache.n[c] = keep;
	depot_put(c, spill, n);
}

void edo__stack_get_stats(edo__stack_stats *out)
{
	out->slabs = atomic_load(&n_slabs);
	out->carved = atomic_load(&n_carved);
	out->trimmed = atomic_load(&n_trimmed);
	out->mprotect_guards = atomic_load(&n_mprotect);
	out->madvise_guard = atomic_load(&madvise_state);
	size_t d = 0;
	for (unsigned c = 0; c < NCLASS; c++) {
		pthread_mutex_lock(&classes[c].lock);
		d += classes[c].ndepot;
		pthread_mutex_unlock(&classes[c].lock);
	}
	out->depot = d;
}
