/* clang-format off */
/* A sample that tools/lint-async.sh must accept (laid out oddly on purpose,
 * hence clang-format off above): every coroutine body starts
 * with EDO_BEGIN();, and the look-alikes around it are not definitions.
 * Not compiled; checked by `tools/lint-async.sh --self-test`.
 *
 * In a comment: EDO_ASYNC(in_comment, f, NULL) { return EDO_READY; }
 */
#include "edo.h"

// EDO_ASYNC(line_comment, f, NULL) { return EDO_READY; }
static const char *s = "EDO_ASYNC(in_string, f, NULL) { x(); }";
static const char q = '(';

/* Macros that wrap the definition are preprocessor lines: not checked. */
#define MY_CORO(fn)                                                                                \
	EDO_ASYNC(fn, my_frame, NULL)                                                              \
	{                                                                                          \
		return EDO_READY;                                                                  \
	}

EDO_ASYNC_DECL(declared_elsewhere, pub_frame);

EDO_ASYNC(plain, plain_frame, NULL)
{
	EDO_BEGIN();
	EDO_END();
}

EDO_ASYNC_PUBLIC(public_one, pub_frame, pub_cleanup)
{
	EDO_BEGIN();
	EDO_YIELD();
	EDO_END();
}

/* Arguments over several lines, nested parentheses, comments before the
 * first statement, odd spacing. */
EDO_ASYNC(spread, spread_frame,
	  (void (*)(spread_frame *))(cleanup_table[(1)]))
{
	/* the first statement follows */
	// still a comment
	EDO_BEGIN ( ) ;
	EDO_END();
}

EDO_ASYNC(same_line, same_line_frame, NULL) { EDO_BEGIN(); EDO_END(); }

EDO_ASYNC(with_pp, with_pp_frame, NULL)
{
#if 1
	EDO_BEGIN();
#endif
	EDO_END();
}
