#include "runtime/scheduler/multi_thread/queue.h"

#include <assert.h>
#include <stddef.h>

static inline uint64_t pack(uint32_t steal, uint32_t real)
{
	return ((uint64_t)steal << 32) | real;
}

static inline uint32_t steal_of(uint64_t h)
{
	return (uint32_t)(h >> 32);
}

static inline uint32_t real_of(uint64_t h)
{
	return (uint32_t)h;
}

void edo__local_queue_init(edo__local_queue *q)
{
	atomic_init(&q->head, 0);
	atomic_init(&q->tail, 0);
	for (uint32_t i = 0; i < EDO__LOCAL_QUEUE_CAPACITY; i++)
		atomic_init(&q->buf[i], NULL);
}

static inline void slot_put(edo__local_queue *q, uint32_t idx, edo__task *t)
{
	atomic_store_explicit(&q->buf[idx & EDO__LOCAL_QUEUE_MASK], t, memory_order_relaxed);
}

static inline edo__task *slot_get(edo__local_queue *q, uint32_t idx)
{
	return atomic_load_explicit(&q->buf[idx & EDO__LOCAL_QUEUE_MASK], memory_order_relaxed);
}

/* Claim the oldest half of a full queue and hand it with @t to @overflow.
 * False if a thief moved the head first.  Never inlined: its 1 KiB batch
 * must stay off the frame of every push (pushes also run on fiber stacks,
 * which can be as small as 16 KiB). */
static __attribute__((noinline)) bool push_overflow(edo__local_queue *q, edo__task *t,
						    uint32_t head, uint32_t tail,
						    edo__overflow_fn overflow, void *ctx)
{
	const uint32_t n = EDO__LOCAL_QUEUE_CAPACITY / 2;
	assert(tail - head == EDO__LOCAL_QUEUE_CAPACITY);
	uint64_t prev = pack(head, head);
	/* Claim the slots; fails if a thief got in first (then retry a push). */
	if (!atomic_compare_exchange_strong_explicit(&q->head, &prev, pack(head + n, head + n),
						     memory_order_release, memory_order_relaxed))
		return false;
	edo__task *batch[EDO__LOCAL_QUEUE_CAPACITY / 2 + 1];
	for (uint32_t i = 0; i < n; i++)
		batch[i] = slot_get(q, head + i);
	batch[n] = t;
	overflow(ctx, batch, n + 1);
	return true;
}

bool edo__local_queue_push(edo__local_queue *q, edo__task *t, edo__overflow_fn overflow, void *ctx)
{
	for (;;) {
		uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
		uint32_t steal = steal_of(head), real = real_of(head);
		uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
		if (tail - steal < EDO__LOCAL_QUEUE_CAPACITY) {
			slot_put(q, tail, t);
			atomic_store_explicit(&q->tail, tail + 1, memory_order_release);
			return false;
		}
		if (steal != real) {
			/* A thief is copying; it will free room soon. Just send
			 * this one task to the overflow sink. */
			overflow(ctx, &t, 1);
			return true;
		}
		if (push_overflow(q, t, real, tail, overflow, ctx))
			return true;
		/* Lost a race with a thief: there is room now. */
	}
}

edo__task *edo__local_queue_pop(edo__local_queue *q)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
	for (;;) {
		uint32_t steal = steal_of(head), real = real_of(head);
		uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
		if (real == tail)
			return NULL;
		uint32_t next_real = real + 1;
		uint64_t next = steal == real ? pack(next_real, next_real) : pack(steal, next_real);
		if (atomic_compare_exchange_weak_explicit(&q->head, &head, next,
							  memory_order_acq_rel,
							  memory_order_acquire)) {
			/* The task after this one is most likely the next to
			 * run, and with many tasks its cell has gone cold: ask
			 * for its first lines (header, cold part, the future's
			 * start) while this one runs.  A thief may take it
			 * first; a prefetch of a freed cell is harmless. */
			if (next_real != tail)
				edo__task_prefetch(slot_get(q, next_real));
			return slot_get(q, real);
		}
	}
}

/* Claim and copy half of @src into @dst starting at @dst_tail; returns the
 * number copied (0 if there was nothing, or another thief was active). */
static uint32_t steal_into2(edo__local_queue *src, edo__local_queue *dst, uint32_t dst_tail)
{
	uint64_t prev = atomic_load_explicit(&src->head, memory_order_acquire);
	uint64_t next;
	uint32_t n;
	for (;;) {
		uint32_t steal = steal_of(prev), real = real_of(prev);
		if (steal != real)
			return 0; /* another thief */
		uint32_t tail = atomic_load_explicit(&src->tail, memory_order_acquire);
		n = tail - real;
		n -= n / 2;
		if (n == 0)
			return 0;
		if (n > EDO__LOCAL_QUEUE_CAPACITY / 2)
			n = EDO__LOCAL_QUEUE_CAPACITY / 2;
		next = pack(steal, real + n);
		if (atomic_compare_exchange_weak_explicit(&src->head, &prev, next,
							  memory_order_acq_rel,
							  memory_order_acquire))
			break;
	}
	uint32_t first = steal_of(next);
	for (uint32_t i = 0; i < n; i++)
		slot_put(dst, dst_tail + i, slot_get(src, first + i));
	/* Release the claim: move the steal head up to the real head. */
	prev = next;
	for (;;) {
		uint32_t real = real_of(prev);
		assert(steal_of(prev) == first);
		if (atomic_compare_exchange_weak_explicit(&src->head, &prev, pack(real, real),
							  memory_order_acq_rel,
							  memory_order_acquire))
			return n;
	}
}

edo__task *edo__local_queue_steal_into(edo__local_queue *src, edo__local_queue *dst)
{
	uint32_t dst_tail = atomic_load_explicit(&dst->tail, memory_order_relaxed);
	uint64_t dst_head = atomic_load_explicit(&dst->head, memory_order_acquire);
	/* Only steal into a queue with room for half a queue. */
	if (dst_tail - steal_of(dst_head) > EDO__LOCAL_QUEUE_CAPACITY / 2)
		return NULL;
	uint32_t n = steal_into2(src, dst, dst_tail);
	if (n == 0)
		return NULL;
	n--;
	edo__task *ret = slot_get(dst, dst_tail + n);
	if (n)
		atomic_store_explicit(&dst->tail, dst_tail + n, memory_order_release);
	return ret;
}

uint32_t edo__local_queue_len(edo__local_queue *q)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_acquire);
	return tail - real_of(head);
}

uint32_t edo__local_queue_remaining(edo__local_queue *q)
{
	uint64_t head = atomic_load_explicit(&q->head, memory_order_acquire);
	uint32_t tail = atomic_load_explicit(&q->tail, memory_order_relaxed);
	return EDO__LOCAL_QUEUE_CAPACITY - (tail - steal_of(head));
}
