/* The context switch (switch_x86_64.S, switch_aarch64.S, and inline here).
 *
 * A context is the stack pointer it was suspended at; what it needs to
 * resume is saved on its own stack.  The switch is hand-written per
 * architecture (never ucontext: glibc's swapcontext makes a sigprocmask
 * syscall per switch).
 */
#ifndef EDO_FIBER_SWITCH_H
#define EDO_FIBER_SWITCH_H

#include <stdint.h>

/* The entry of a fresh context: @arg is the first switch's @arg, @data the
 * value given to edo__fiber_make().  Must never return. */
typedef void (*edo__fiber_entry)(void *arg, void *data);

/* Save the current context, store its stack pointer in *@save_sp, resume the
 * context suspended at @to_sp and hand it @arg.  Returns (when something
 * switches back here) the @arg of that switch.  A plain function: the
 * runtime itself switches with edo__fiber_swap(), which is compatible (a
 * context saved by either is resumed by either). */
void *edo__fiber_switch(void **save_sp, void *to_sp, void *arg);

/* Prepare a context at the top of the fresh stack ending at @stack_hi, so
 * that the first switch into the returned stack pointer calls
 * @entry(arg, @data).  Writes under 200 bytes below @stack_hi. */
void *edo__fiber_make(void *stack_hi, edo__fiber_entry entry, void *data);

/* edo__fiber_swap() - edo__fiber_switch(), inlined into its caller.
 *
 * x86-64.  A context saved here is three words at its stack pointer:
 *
 *   saved sp ─▶ +0   MXCSR (4 bytes), x87 CW (2 bytes), pad
 *               +8   rbp
 *               +16  resume address
 *
 * Every other register is declared clobbered: the compiler saves the
 * callee-saved ones its caller needs in its own prologue and keeps live
 * values in its frame, so nothing is saved twice.  The 128 bytes below the
 * stack pointer are the ABI's red zone, which the compiler may be using:
 * the context is saved below them.
 *
 * The return-stack predictor.  A `ret` is predicted from a stack of the
 * return addresses of the calls made so far, one stack for the whole
 * thread; after a switch it holds the other context's calls, so the first
 * return after a resume that goes above the frame that switched
 * mispredicts (about 7 ns each on a 2-vCPU AMD EPYC VM), and every `call`
 * into a switch that the other side leaves by a jump misaligns it for
 * one more.  Hence:
 *   - edo__fiber_swap() is entered and left by jumps (never a call and
 *     a `ret`): per await round trip only the fiber's return from its
 *     await and the poll's return to the task harness mispredict (the old
 *     call-based switch: three);
 *   - each site has its own indirect jump, which the predictor learns (it
 *     always goes to the same place);
 *   - edo__fiber_park() takes that down to one: reached by a tail call
 *     from the function the fiber's code called (edo_fiber_await), it
 *     leaves by a `ret` into the poller, which mispredicts but takes that
 *     function's return address off the predictor's stack, so the poll's
 *     returns are predicted; the fiber is later resumed by a jump straight
 *     back to the caller, so the fiber's side makes no return at all.  Its
 *     awaited future is polled by the poller meanwhile (fiber.c).
 * Measured (bench/bench_fiber.c, fiber_switch, same machine, CPU time):
 * a fiber await costs about 48 ns more than a stackless one with the
 * call-based switch, 30 ns with edo__fiber_swap() alone, 18 ns with
 * edo__fiber_park().  Reading MXCSR (stmxcsr) costs about 7 ns a round
 * trip in a bare ping-pong, but 1-2 ns here, hidden behind the
 * mispredicted return.
 *
 * Elsewhere (aarch64), a call to edo__fiber_switch().
 */
#if defined(__x86_64__) && defined(__ELF__)

/* edo__fiber_park() - suspend the calling fiber: edo__fiber_switch(@save_sp,
 * @to_sp, NULL), returning the arg of the switch that resumes it (the
 * await's result).  Correct when called normally too (sanitizer builds,
 * -O0), only slower. */
int edo__fiber_park(void **save_sp, void *to_sp);

#if defined(__AVX512F__)
#define EDO__SWAP_CLOBBERS_AVX512                                                                  \
	, "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24",         \
		"xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k0", "k1", "k2",   \
		"k3", "k4", "k5", "k6", "k7"
#else
#define EDO__SWAP_CLOBBERS_AVX512
#endif

#if defined(__CET__) && (__CET__ & 1)
#define EDO__SWAP_LANDING "endbr64\n\t"
#else
#define EDO__SWAP_LANDING ""
#endif

static inline __attribute__((always_inline)) void *edo__fiber_swap(void **save_sp, void *to_sp,
								   void *arg)
{
	__asm__ volatile("leaq -152(%%rsp), %%rsp\n\t" /* the red zone, then 3 words */
			 "stmxcsr (%%rsp)\n\t"
			 "fnstcw 4(%%rsp)\n\t"
			 "movq %%rbp, 8(%%rsp)\n\t"
			 "leaq 1f(%%rip), %%rcx\n\t"
			 "movq %%rcx, 16(%%rsp)\n\t"
			 "movq %%rsp, (%[save])\n\t"
			 "movq %[to], %%rsp\n\t" /* ---- now on the other stack ---- */
			 "ldmxcsr (%%rsp)\n\t"
			 "fldcw 4(%%rsp)\n\t"
			 "movq 8(%%rsp), %%rbp\n\t"
			 "movq 16(%%rsp), %%rcx\n\t"
			 "leaq 24(%%rsp), %%rsp\n\t"
			 "jmpq *%%rcx\n"
			 "1:\n\t" EDO__SWAP_LANDING "leaq 128(%%rsp), %%rsp"
			 : [save] "+D"(save_sp), [to] "+S"(to_sp), "+a"(arg)
			 :
			 : "rbx", "rcx", "rdx", "r8", "r9", "r10", "r11", "r12", "r13", "r14",
			   "r15", "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5",
			   "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",
			   "xmm14", "xmm15", "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)",
			   "st(6)", "st(7)" EDO__SWAP_CLOBBERS_AVX512);
	return arg;
}

#else

static inline void *edo__fiber_swap(void **save_sp, void *to_sp, void *arg)
{
	return edo__fiber_switch(save_sp, to_sp, arg);
}

static inline int edo__fiber_park(void **save_sp, void *to_sp)
{
	return (int)(intptr_t)edo__fiber_switch(save_sp, to_sp, NULL);
}

#endif

#endif /* EDO_FIBER_SWITCH_H */
