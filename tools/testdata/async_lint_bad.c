/* clang-format off */
/* A sample that tools/lint-async.sh must reject: each line marked
 * expect-error is reported, and no other.
 * Not compiled; checked by `tools/lint-async.sh --self-test`.
 */
#include "edo.h"

EDO_ASYNC(no_begin, no_begin_frame, NULL) /* expect-error */
{
	self->x = 1;
	return EDO_READY;
}

EDO_ASYNC(late_begin, late_begin_frame, NULL) /* expect-error */
{
	self->n++; /* runs again on every resume */
	EDO_BEGIN();
	EDO_END();
}

EDO_ASYNC_PUBLIC(public_late, pub_frame, NULL) /* expect-error */
{
	int local = 0;
	EDO_BEGIN();
	EDO_END();
}

EDO_ASYNC(no_semicolon, ns_frame, NULL) /* expect-error */
{
	EDO_BEGIN()
	EDO_END();
}

EDO_ASYNC(good_one, good_frame, NULL)
{
	EDO_BEGIN();
	EDO_END();
}

EDO_ASYNC(other_begin, other_frame, NULL) /* expect-error */
{
	EDO_BEGIN_SOMETHING();
	EDO_END();
}

EDO_ASYNC(declared_only, decl_frame, NULL); /* expect-error */

static const char *s = "EDO_ASYNC(in_string, f, NULL) { x(); }";

EDO_ASYNC(multi_line, /* expect-error */
	  multi_frame, NULL)
{
	if (self->done)
		return EDO_READY;
	EDO_BEGIN();
	EDO_END();
}
