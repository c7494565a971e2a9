#include <errno.h>

#include "edo.h"
#include "harness.h"

typedef struct add_frame {
	EDO_FRAME;
	int a, b, sum;
} add_frame;

EDO_ASYNC(add_task, add_frame, NULL)
{
	EDO_BEGIN();
	EDO_YIELD();
	self->sum = self->a + self->b;
	EDO_END();
}

typedef struct main_frame {
	EDO_FRAME;
	edo_join *h;
	int rc;
	int out;
} main_frame;

EDO_ASYNC(main_task, main_frame, NULL)
{
	EDO_BEGIN();
	CHECK_EQ(EDO_SPAWN(&self->h, add_task, .a = 2, .b = 40), 0);
	EDO_AWAIT_JOIN(self->h, &self->rc);
	CHECK_EQ(self->rc, 0);
	self->out = EDO_JOIN_OUTPUT(self->h, add_task)->sum;
	edo_join_detach(self->h);
	EDO_END();
}

TEST(spawn_join_output)
{
	edo_runtime *rt;
	CHECK_EQ(edo_runtime_new_current_thread(&rt), 0);
	main_frame m = {EDO_FRAME_INIT(main_task)};
	CHECK_EQ(edo_block_on(rt, &m.edo_base), 0);
	CHECK_EQ(m.out, 42);
	CHECK_EQ(edo_runtime_free(rt), 0);
}

TEST(strerror)
{
	CHECK_STREQ(edo_strerror(-EINVAL), "Invalid argument");
	CHECK_STREQ(edo_strerror(EDO_ECLOSED), "closed");
}

TEST_MAIN()
