/* OnceCell: a value set once, initialised asynchronously by one caller.
 *
 * A semaphore of one permit admits one initialiser at a time, FIFO.  When a
 * value is stored the semaphore is closed: every waiter wakes with
 * EDO_ECLOSED and then reads the value.  An initialiser that fails or is
 * dropped gives the permit back, so the next waiter runs its own.
 */
#include <errno.h>

#include "edo/error.h"
#include "sync/internal.h"

enum { OI_ACQUIRE, OI_INIT, OI_DONE };

void edo_once_cell_init(edo_once_cell *c)
{
	if (!c)
		return;
	atomic_init(&c->set_, 0);
	edo__bsem_init(&c->sem_, 1);
	c->value_ = NULL;
}

bool edo_once_cell_is_set(const edo_once_cell *c)
{
	return c && atomic_load_explicit(&c->set_, memory_order_acquire);
}

void *edo_once_cell_get(const edo_once_cell *c)
{
	return edo_once_cell_is_set(c) ? c->value_ : NULL;
}

/* Store @value; the caller holds the permit. */
static void store(edo_once_cell *c, void *value)
{
	c->value_ = value;
	atomic_store_explicit(&c->set_, 1, memory_order_release);
	edo__bsem_close(&c->sem_);
}

int edo_once_cell_set(edo_once_cell *c, void *value)
{
	if (!c)
		return -EINVAL;
	if (edo_once_cell_is_set(c))
		return -EEXIST;
	int rc = edo__bsem_try_acquire(&c->sem_, 1);
	if (rc < 0)
		return edo_once_cell_is_set(c) ? -EEXIST : -EBUSY;
	store(c, value);
	return 0;
}

static edo_poll oi_ready(edo_once_init_fut *f, int rc)
{
	f->state_ = OI_DONE;
	f->rc = rc;
	if (rc == 0)
		f->value = f->cell_->value_;
	return EDO_READY;
}

static edo_poll oi_poll(edo_future *fut, edo_cx *cx)
{
	edo_once_init_fut *f = (edo_once_init_fut *)fut;
	edo_once_cell *c = f->cell_;
	if (f->state_ == OI_DONE)
		return EDO_READY;
	if (f->state_ == OI_ACQUIRE) {
		if (edo_once_cell_is_set(c)) {
			/* Set meanwhile: leave the wait queue, or close()'s guard
			 * list, first.  A queued node would stay linked, holding
			 * a waker, after the owner freed this finished future. */
			edo_future_drop(&f->acq_.base);
			return oi_ready(f, 0);
		}
		if (edo__acquire_poll(&f->acq_, cx) == EDO_PENDING)
			return EDO_PENDING;
		if (f->acq_.rc < 0 || edo_once_cell_is_set(c)) {
			/* Closed: someone stored the value. */
			if (f->acq_.rc == 0)
				edo__bsem_release(&c->sem_, 1);
			return oi_ready(f, 0);
		}
		f->state_ = OI_INIT;
	}
	if (f->init_->vt && edo_future_poll(f->init_, cx) == EDO_PENDING)
		return EDO_PENDING;
	if (f->err_ && *f->err_ < 0) {
		f->state_ = OI_DONE;
		f->rc = *f->err_;
		edo__bsem_release(&c->sem_, 1); /* the next waiter tries */
		return EDO_READY;
	}
	store(c, *f->result_);
	return oi_ready(f, 0);
}

static void oi_drop(edo_future *fut)
{
	edo_once_init_fut *f = (edo_once_init_fut *)fut;
	if (f->state_ == OI_ACQUIRE) {
		edo_future_drop(&f->acq_.base);
	} else if (f->state_ == OI_INIT) {
		edo_future_drop(f->init_);
		edo__bsem_release(&f->cell_->sem_, 1);
	}
	f->state_ = OI_DONE;
}

static const edo_future_vtable oi_vt = {.poll = oi_poll, .drop = oi_drop};

static edo_poll oi_fail_poll(edo_future *fut, edo_cx *cx)
{
	return EDO_READY;
}

static const edo_future_vtable oi_fail_vt = {.poll = oi_fail_poll, .drop = NULL};

edo_future *edo_once_cell_get_or_init(edo_once_init_fut *f, edo_once_cell *c, edo_future *init,
				      void *const *result, const int *err)
{
	if (!f)
		return NULL;
	f->cell_ = c;
	f->init_ = init;
	f->result_ = result;
	f->err_ = err;
	f->value = NULL;
	f->rc = 0;
	f->acq_.base.vt = NULL;
	if (!c || !init || !result) {
		f->base.vt = &oi_fail_vt;
		f->state_ = OI_DONE;
		f->rc = -EINVAL;
		return &f->base;
	}
	f->base.vt = &oi_vt;
	f->state_ = OI_ACQUIRE;
	edo__acquire_init(&f->acq_, &c->sem_, 1);
	return &f->base;
}
