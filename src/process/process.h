/* Child processes (edo/process.h): what the rest of Edo and the tests reach. */
#ifndef EDO_PROCESS_INTERNAL_H
#define EDO_PROCESS_INTERNAL_H

#include <stdbool.h>

#include "edo/process.h"

/* Spawn with these stdio choices instead of the command's. */
int edo__command_spawn_with(edo_command *cmd, const edo_stdio stdio[3], edo_child **out);

/* Reap the orphans whose runtime shut down before they exited. */
void edo__process_reap_orphans(void);

/* Tests: behave as if pidfd_open were missing (the SIGCHLD path). */
void edo__process_force_sigchld(bool on);

#endif /* EDO_PROCESS_INTERNAL_H */
