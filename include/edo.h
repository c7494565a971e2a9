/* Edo — an asynchronous runtime for C with the architecture of Rust's Tokio.
 *
 * The umbrella header: include this one.  Each area has its own header under
 * edo/, documented there:
 *
 *   edo/error.h    error codes and edo_strerror()
 *   edo/future.h   futures, wakers, the poll context
 *   edo/runtime.h  building a runtime, edo_block_on(), handles
 *   edo/task.h     spawning, join and abort handles, yielding, the budget,
 *                  task-local storage
 *   edo/async.h    stackless coroutines (EDO_ASYNC, EDO_AWAIT, ...)
 *   edo/fiber.h    stackful fibers (edo_fiber_spawn, edo_fiber_await, ...)
 *   edo/io.h       driving file descriptors through the I/O reactor
 *   edo/time.h     sleeps, timeouts, intervals, the paused test clock
 *   edo/stream.h   byte streams: read/write utilities, buffering, copy, duplex
 *   edo/net.h      TCP, UDP and Unix sockets, address resolution
 *   edo/metrics.h  runtime and per-worker metrics
 *   edo/trace.h    task dumps, the stall detector, the live console
 *   edo/signal.h   Unix signals and Ctrl-C
 *   edo/process.h  child processes with async pipes
 *   edo/fs.h       files, directories, stdin/stdout/stderr on the blocking pool
 */
#ifndef EDO_H
#define EDO_H

#define EDO_VERSION_MAJOR 0
#define EDO_VERSION_MINOR 1
#define EDO_VERSION_PATCH 0

#include "edo/error.h"
#include "edo/future.h"
#include "edo/runtime.h"
#include "edo/task.h"
#include "edo/async.h"
#include "edo/fiber.h"
#include "edo/io.h"
#include "edo/time.h"
#include "edo/stream.h"
#include "edo/net.h"
#include "edo/metrics.h"
#include "edo/trace.h"
#include "edo/sync.h"
#include "edo/signal.h"
#include "edo/process.h"
#include "edo/fs.h"

#endif /* EDO_H */
