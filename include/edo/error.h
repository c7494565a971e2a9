/* Edo — error codes.
 *
 * Every Edo function that can fail returns an int (or ssize_t): zero or a
 * positive value on success, a negative number on failure.  Failures are
 * either a negated errno value (-EINVAL, -ENOMEM, -ECANCELED, -ETIMEDOUT, ...)
 * or one of Edo's own conditions below, which live in a range that no errno
 * value reaches.  Edo never reports failure as "-1 and errno": errno does not
 * survive a suspension point.
 */
#ifndef EDO_ERROR_H
#define EDO_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* Edo's own error codes: disjoint from every -errno (errno values are < 4096). */
#define EDO_ERR_BASE (-20000)
/** The channel (or other primitive) is closed. */
#define EDO_ECLOSED (EDO_ERR_BASE - 1)
/** A broadcast receiver fell behind; values were skipped. */
#define EDO_ELAGGED (EDO_ERR_BASE - 2)
/** The call needs a runtime context (a task or edo_block_on), and there is none. */
#define EDO_ENORUNTIME (EDO_ERR_BASE - 3)
/** The runtime has shut down (or is shutting down) and accepts no new work. */
#define EDO_ESHUTDOWN (EDO_ERR_BASE - 4)
/** A stream ended before the operation could complete (edo_read_exact). */
#define EDO_EEOF (EDO_ERR_BASE - 5)
/** Smallest (most negative) Edo error code; for range checks. */
#define EDO_ERR_LAST (EDO_ERR_BASE - 5)

/**
 * edo_strerror() - a human-readable description of an error code.
 * @err: a negative value returned by an Edo function (a positive errno value
 *       is accepted too).
 *
 * Returns a static string; never NULL.  Thread-safe.
 */
const char *edo_strerror(int err);

#ifdef __cplusplus
}
#endif
#endif /* EDO_ERROR_H */
