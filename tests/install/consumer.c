/* An out-of-tree program that uses an installed Edo, as a user would: it
 * includes <edo.h>, spawns a coroutine task and block_on's a coroutine that
 * joins it.  Built by tests/install/run.sh twice: with CMake's
 * find_package(edo) and with pkg-config.  Prints one line that run.sh checks.
 */
#include <stdio.h>

#include <edo.h>

typedef struct square_frame {
	EDO_FRAME;
	int n;      /* argument */
	int result; /* output */
} square_frame;

EDO_ASYNC(square, square_frame, NULL)
{
	EDO_BEGIN();
	EDO_YIELD(); /* suspend once, so that the join really waits */
	self->result = self->n * self->n;
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
	self->rc = EDO_SPAWN(&self->h, square, .n = 7);
	if (self->rc < 0)
		EDO_RETURN();
	EDO_AWAIT_JOIN(self->h, &self->rc);
	if (self->rc == 0)
		self->out = EDO_JOIN_OUTPUT(self->h, square)->result;
	edo_join_detach(self->h);
	EDO_END();
}

int main(void)
{
	edo_runtime *rt;
	int rc = edo_runtime_new_current_thread(&rt);
	if (rc < 0) {
		fprintf(stderr, "edo_runtime_new_current_thread: %s\n", edo_strerror(rc));
		return 1;
	}
	main_frame m = {EDO_FRAME_INIT(main_task)};
	rc = edo_block_on(rt, &m.edo_base);
	if (rc < 0 || m.rc < 0) {
		fprintf(stderr, "block_on: %s, task: %s\n", edo_strerror(rc), edo_strerror(m.rc));
		return 1;
	}
	rc = edo_runtime_free(rt);
	if (rc < 0) {
		fprintf(stderr, "edo_runtime_free: %s\n", edo_strerror(rc));
		return 1;
	}
	printf("edo %d.%d.%d: square(7) = %d\n", EDO_VERSION_MAJOR, EDO_VERSION_MINOR,
	       EDO_VERSION_PATCH, m.out);
	return 0;
}
