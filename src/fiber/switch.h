/* The context switch (switch_x86_64.S, switch_aarch64.S).
 *
 * A context is the stack pointer it was suspended at; its registers are
 * saved on its own stack.  Both functions are hand-written per architecture
 * (never ucontext: glibc's swapcontext makes a sigprocmask syscall per
 * switch).
 */
#ifndef EDO_FIBER_SWITCH_H
#define EDO_FIBER_SWITCH_H

/* The entry of a fresh context: @arg is the first switch's @arg, @data the
 * value given to edo__fiber_make().  Must never return. */
typedef void (*edo__fiber_entry)(void *arg, void *data);

/* Save the current context, store its stack pointer in *@save_sp, resume the
 * context suspended at @to_sp and hand it @arg.  Returns (when something
 * switches back here) the @arg of that switch. */
void *edo__fiber_switch(void **save_sp, void *to_sp, void *arg);

/* Prepare a context at the top of the fresh stack ending at @stack_hi, so
 * that the first switch into the returned stack pointer calls
 * @entry(arg, @data).  Writes under 200 bytes below @stack_hi. */
void *edo__fiber_make(void *stack_hi, edo__fiber_entry entry, void *data);

#endif /* EDO_FIBER_SWITCH_H */
