/* Pipe streams (edo/process.h), for the process module. */
#ifndef EDO_PROCESS_PIPE_H
#define EDO_PROCESS_PIPE_H

#include "edo/runtime.h"
#include "edo/stream.h"

/* A stream owning the pipe end @fd, registered with the runtime of @h (NULL:
 * the current one) for the direction @fd was opened for.  On failure @fd
 * is left open. */
int edo__pipe_wrap(edo_handle *h, int fd, edo_stream **out);

#endif /* EDO_PROCESS_PIPE_H */
