/* The task allocator: per-thread LIFO freelists by size class.
 *
 * A spawn needs one cell of header + future.  malloc for every spawn costs a
 * trip through the global allocator's locks and bins; here a thread keeps
 * the cells it freed in freelists by size class and hands them out again, so
 * spawning and finishing a task in a loop touches no shared state.  A cell
 * freed on another thread simply joins that thread's lists.  Lists are
 * bounded, so a burst of a million tasks gives its memory back to malloc.
 *
 * Classes: 16-byte steps up to 512 bytes (a trivial task is 144 bytes and
 * a million of them are a lot of pages), 64-byte steps up to 1 KiB, then
 * powers of two up to 16 KiB;
 * larger cells go straight to malloc.  Under AddressSanitizer the cache is
 * off so that a use after free is still caught.
 */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

#include "runtime/task/task.h"
#include "util/sanitizer.h"

#ifdef EDO__ASAN
#define EDO__TASK_CACHE 0
#else
#define EDO__TASK_CACHE 1
#endif

#define TINY_STEP 16u
#define TINY_MAX 512u
#define NTINY (TINY_MAX / TINY_STEP) /* classes 0..31 */
#define SMALL_STEP 64u
#define SMALL_MAX 1024u
#define NSMALL (NTINY + (SMALL_MAX - TINY_MAX) / SMALL_STEP) /* 32..39 */
#define NCLASSES (NSMALL + 4)                                /* + 2K, 4K, 8K, 16K */
#define LARGE_MAX 16384u
#define SMALL_KEEP 4096u /* cells kept per small class */
#define LARGE_KEEP 64u

typedef struct free_cell {
	struct free_cell *next;
} free_cell;

typedef struct task_cache {
	free_cell *head[NCLASSES];
	uint32_t count[NCLASSES];
	bool registered;
} task_cache;

static __thread task_cache cache __attribute__((tls_model("initial-exec")));
static pthread_key_t cache_key;
static pthread_once_t cache_once = PTHREAD_ONCE_INIT;

static void cache_release(void *arg)
{
	task_cache *c = arg;
	for (unsigned i = 0; i < NCLASSES; i++) {
		while (c->head[i]) {
			free_cell *f = c->head[i];
			c->head[i] = f->next;
			free(f);
		}
		/* Full for good: a cell freed later on this thread (by
		 * another key's destructor) goes straight back to malloc,
		 * as this destructor does not run again. */
		c->count[i] = UINT32_MAX;
	}
}

static void cache_key_init(void)
{
	(void)pthread_key_create(&cache_key, cache_release);
}

static unsigned class_of(size_t size, uint32_t *rounded)
{
	if (size <= TINY_MAX) {
		unsigned c = (unsigned)((size + TINY_STEP - 1) / TINY_STEP);
		c = c ? c - 1 : 0;
		*rounded = (c + 1) * TINY_STEP;
		return c;
	}
	if (size <= SMALL_MAX) {
		unsigned k = (unsigned)((size - TINY_MAX + SMALL_STEP - 1) / SMALL_STEP); /* 1..8 */
		*rounded = TINY_MAX + k * SMALL_STEP;
		return NTINY + k - 1;
	}
	uint32_t r = 2048;
	unsigned c = NSMALL;
	while (r < size) {
		r <<= 1;
		c++;
	}
	*rounded = r;
	return c;
}

void *edo__task_alloc(size_t size, uint32_t *alloc_size)
{
	if (size > LARGE_MAX || !EDO__TASK_CACHE) {
		if (size > UINT32_MAX)
			return NULL;
		*alloc_size = (uint32_t)size | 0x80000000u * (size > LARGE_MAX || !EDO__TASK_CACHE);
		return malloc(size);
	}
	uint32_t rounded;
	unsigned c = class_of(size, &rounded);
	*alloc_size = rounded;
	free_cell *f = cache.head[c];
	if (f) {
		cache.head[c] = f->next;
		cache.count[c]--;
		return f;
	}
	return malloc(rounded);
}

void edo__task_free(void *p, uint32_t alloc_size)
{
	if (alloc_size & 0x80000000u) {
		free(p);
		return;
	}
	uint32_t rounded;
	unsigned c = class_of(alloc_size, &rounded);
	if (cache.count[c] >= (c < NSMALL ? SMALL_KEEP : LARGE_KEEP)) {
		free(p);
		return;
	}
	if (!cache.registered) {
		pthread_once(&cache_once, cache_key_init);
		(void)pthread_setspecific(cache_key, &cache);
		cache.registered = true;
	}
	free_cell *f = p;
	f->next = cache.head[c];
	cache.head[c] = f;
	cache.count[c]++;
}
