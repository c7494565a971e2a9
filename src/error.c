#define _GNU_SOURCE
#include "edo/error.h"

#include <string.h>

const char *edo_strerror(int err)
{
	switch (err) {
	case 0:
		return "success";
	case EDO_ECLOSED:
		return "closed";
	case EDO_ELAGGED:
		return "receiver lagged behind; values were skipped";
	case EDO_ENORUNTIME:
		return "no runtime: must be called from a task or edo_block_on";
	case EDO_ESHUTDOWN:
		return "the runtime is shut down";
	case EDO_EEOF:
		return "unexpected end of stream";
	default:
		break;
	}
	/* Range-check before negating: -INT_MIN overflows. */
	if (err > -4096 && err < 0)
		err = -err;
	if (err > 0 && err < 4096) {
		/* strerrordesc_np: thread-safe and static, unlike strerror. */
		const char *s = strerrordesc_np(err);
		if (s)
			return s;
	}
	return "unknown error";
}
