#include "edo/future.h"

static edo_waker noop_clone(const void *data);
static void noop_wake(const void *data)
{
	(void)data;
}
static const edo_waker_vtable noop_vt = {noop_clone, noop_wake, noop_wake, noop_wake};
static edo_waker noop_clone(const void *data)
{
	return (edo_waker){&noop_vt, data};
}
static const edo_waker noop_waker = {&noop_vt, NULL};

const edo_waker *edo_noop_waker(void)
{
	return &noop_waker;
}
