/* select and join over N futures (Tokio's select! and join!).
 *
 * select polls every armed future once per poll, starting at a random
 * index (unless biased) so that an always-ready first branch cannot starve
 * the others.  Like Tokio's select!, it yields without polling anything
 * when the task's budget is spent: the branches are what consume budget,
 * and a select whose branches are all out of budget would otherwise spin.
 */
#include <errno.h>

#include "sync/internal.h"

static bool armed(edo_future *f)
{
	return f && f->vt;
}

static void drop_all_but(edo_future **futs, size_t n, size_t keep)
{
	for (size_t i = 0; i < n; i++)
		if (i != keep && futs[i])
			edo_future_drop(futs[i]);
}

static edo_poll select_poll(edo_future *fut, edo_cx *cx)
{
	edo_select_fut *f = (edo_select_fut *)fut;
	if (f->done_)
		return EDO_READY;
	if (!edo_coop_has_budget_remaining()) {
		edo_defer_wake(cx);
		return EDO_PENDING;
	}
	size_t n = f->n_;
	size_t start = (f->flags_ & EDO_SELECT_BIASED) || n == 0 ? 0 : edo__sync_rand() % n;
	bool any = false;
	for (size_t k = 0; k < n; k++) {
		size_t i = start + k < n ? start + k : start + k - n;
		edo_future *c = f->futs_[i];
		if (!armed(c))
			continue;
		any = true;
		if (edo_future_poll(c, cx) == EDO_READY) {
			f->index = (long)i;
			f->done_ = 1;
			if (!(f->flags_ & EDO_SELECT_KEEP_OTHERS))
				drop_all_but(f->futs_, n, i);
			return EDO_READY;
		}
	}
	if (!any) {
		f->index = -1;
		f->done_ = 1;
		return EDO_READY;
	}
	return EDO_PENDING;
}

static void select_drop(edo_future *fut)
{
	edo_select_fut *f = (edo_select_fut *)fut;
	if (f->done_)
		return;
	f->done_ = 1;
	if (!(f->flags_ & EDO_SELECT_KEEP_OTHERS))
		drop_all_but(f->futs_, f->n_, f->n_);
}

static const edo_future_vtable select_vt = {.poll = select_poll, .drop = select_drop};

edo_future *edo_select(edo_select_fut *f, edo_future **futs, size_t n, unsigned flags)
{
	if (!f)
		return NULL;
	f->base.vt = &select_vt;
	f->futs_ = futs;
	f->n_ = futs ? n : 0;
	f->flags_ = flags;
	f->done_ = 0;
	f->index = -1;
	if (flags & ~(EDO_SELECT_BIASED | EDO_SELECT_KEEP_OTHERS)) {
		/* Bad input: complete at once, touching none of the futures. */
		f->n_ = 0;
		f->done_ = 1;
		f->index = -EINVAL;
	}
	return &f->base;
}

/* Whether futs_[i] has completed (or was an empty slot): never polled or
 * dropped again. */
static bool join_done(const edo_join_all_fut *f, size_t i)
{
	return (f->done_ >> i) & 1;
}

static edo_poll join_all_poll(edo_future *fut, edo_cx *cx)
{
	edo_join_all_fut *f = (edo_join_all_fut *)fut;
	size_t n = f->n_;
	bool pending = false;
	for (size_t k = 0; k < n; k++) {
		size_t i = f->start_ + k < n ? f->start_ + k : f->start_ + k - n;
		if (join_done(f, i))
			continue;
		edo_future *c = f->futs_[i];
		/* Completion is recorded here, not in the future: it keeps its
		 * vtable, so that what it holds (an mpsc permit, say) stays
		 * usable and its drop still releases it. */
		if (!armed(c) || edo_future_poll(c, cx) == EDO_READY)
			f->done_ |= (uint64_t)1 << i;
		else
			pending = true;
	}
	if (n)
		f->start_ = f->start_ + 1 < n ? f->start_ + 1 : 0;
	return pending ? EDO_PENDING : EDO_READY;
}

static void join_all_drop(edo_future *fut)
{
	edo_join_all_fut *f = (edo_join_all_fut *)fut;
	for (size_t i = 0; i < f->n_; i++)
		if (!join_done(f, i) && f->futs_[i])
			edo_future_drop(f->futs_[i]);
}

static const edo_future_vtable join_all_vt = {.poll = join_all_poll, .drop = join_all_drop};

edo_future *edo_join_all(edo_join_all_fut *f, edo_future **futs, size_t n)
{
	if (!f)
		return NULL;
	f->base.vt = &join_all_vt;
	f->futs_ = futs;
	f->n_ = futs ? n : 0;
	f->start_ = 0;
	f->done_ = 0;
	f->rc = 0;
	if (f->n_ > EDO_JOIN_ALL_MAX) {
		/* Bad input: complete at once, touching none of the futures. */
		f->n_ = 0;
		f->rc = -EINVAL;
	}
	return &f->base;
}
