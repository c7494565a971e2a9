/* The fiber context switch for x86-64 (System V ABI).
 *
 * A context is only a saved stack pointer, with three words at it: the
 * control bits of MXCSR and the x87 control word (a fiber that calls
 * fesetround() must not leak its rounding mode into the fiber that runs
 * next), rbp, and the address to resume at (switch.h draws it).  The
 * runtime switches with edo__fiber_swap() (switch.h), inline asm that
 * declares every other register clobbered; edo__fiber_switch() here is the
 * same switch as a plain function, which saves the other callee-saved
 * registers itself (below the three words) and restores them at its resume
 * address.  The two save and resume the same contexts.
 *
 * The resume is a jump (`jmp *%rcx`), never `ret`: the return-stack
 * predictor expects a `ret` to go back to the call site of *this* stack, so
 * every `ret` across stacks mispredicts (reference/c-async-ergonomics.md
 * §2.1: ~11 ns per round trip against ~26 ns with `ret`).
 *
 * CET: no .note.gnu.property is emitted, so a binary linking this is not
 * marked shadow-stack compatible, which is correct until the switch learns
 * rdsspq/rstorssp.
 */
#if defined(__x86_64__) && defined(__ELF__)

	.text

/* void *edo__fiber_switch(void **save_sp [rdi], void *to_sp [rsi], void *arg [rdx])
 * Saves the current context, stores its sp in *save_sp, resumes the context
 * whose sp is to_sp, and hands it arg (the return value of the switch that
 * suspended it, or the first argument of a fresh context's entry).
 *
 *   saved sp ─▶ +0   MXCSR, x87 CW       (the three words of every context)
 *               +8   rbp
 *               +16  resume address: 1f below
 *               +24  r15, r14, r13, r12, rbx
 *               +64  return address of this call
 */
	.globl	edo__fiber_switch
	.hidden	edo__fiber_switch
	.type	edo__fiber_switch, @function
	.p2align 4
edo__fiber_switch:
	.cfi_startproc
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$24, %rsp
	.cfi_adjust_cfa_offset 24
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rbp, 8(%rsp)
	leaq	1f(%rip), %rcx
	movq	%rcx, 16(%rsp)
	movq	%rsp, (%rdi)		/* publish where we stopped */
	movq	%rsi, %rsp		/* ---- now on the other stack ---- */
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	movq	8(%rsp), %rbp
	movq	16(%rsp), %rcx
	addq	$24, %rsp
	movq	%rdx, %rax
	jmpq	*%rcx
	/* Resumed here, with rsp as it was after the subq above plus 24. */
	.cfi_adjust_cfa_offset -24
1:
#if defined(__CET__) && (__CET__ & 1)
	endbr64
#endif
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	ret
	.cfi_endproc
	.size	edo__fiber_switch, .-edo__fiber_switch

/* int edo__fiber_park(void **save_sp [rdi], void *to_sp [rsi])
 * Suspends the calling fiber as edo__fiber_switch() does (same frame), and
 * returns the arg of the switch that resumes it.  Two differences, for the
 * return-stack predictor (switch.h): it leaves by a `ret` to the context it
 * resumes, which takes the top entry off the predictor, and it returns to
 * its caller by a jump, which takes none.  Reached by a tail call from the
 * function the fiber's code called, the entry taken off is that function's
 * own return address, which the jump then does not need. */
	.globl	edo__fiber_park
	.hidden	edo__fiber_park
	.type	edo__fiber_park, @function
	.p2align 4
edo__fiber_park:
	.cfi_startproc
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset rbx, 0
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r12, 0
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r13, 0
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r14, 0
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	.cfi_rel_offset r15, 0
	subq	$24, %rsp
	.cfi_adjust_cfa_offset 24
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rbp, 8(%rsp)
	leaq	1f(%rip), %rcx
	movq	%rcx, 16(%rsp)
	movq	%rsp, (%rdi)		/* publish where we stopped */
	movq	%rsi, %rsp		/* ---- now on the other stack ---- */
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	movq	8(%rsp), %rbp
	addq	$16, %rsp
	xorl	%eax, %eax		/* the resumed side gets NULL */
	ret				/* to the resume address at 16 */
	/* Resumed here, with rsp as it was after the subq above plus 24. */
	.cfi_adjust_cfa_offset -24
1:
#if defined(__CET__) && (__CET__ & 1)
	endbr64
#endif
	popq	%r15
	.cfi_adjust_cfa_offset -8
	.cfi_restore r15
	popq	%r14
	.cfi_adjust_cfa_offset -8
	.cfi_restore r14
	popq	%r13
	.cfi_adjust_cfa_offset -8
	.cfi_restore r13
	popq	%r12
	.cfi_adjust_cfa_offset -8
	.cfi_restore r12
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	.cfi_restore rbx
	popq	%rcx
	.cfi_adjust_cfa_offset -8
	.cfi_register rip, rcx
	jmpq	*%rcx			/* rax: the resuming switch's arg */
	.cfi_endproc
	.size	edo__fiber_park, .-edo__fiber_park

/* A fresh context starts here (jumped to by a switch) with rax = the
 * switch's arg, rsp 16-byte aligned, and entry and data at 0(%rsp) and
 * 8(%rsp); it calls entry(arg, data), which must never return. */
	.type	edo__fiber_trampoline, @function
	.p2align 4
edo__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined rip		/* debuggers and unwinders stop here */
#if defined(__CET__) && (__CET__ & 1)
	endbr64
#endif
	movq	%rax, %rdi
	movq	8(%rsp), %rsi
	callq	*(%rsp)
	ud2
	.cfi_endproc
	.size	edo__fiber_trampoline, .-edo__fiber_trampoline

/* void *edo__fiber_make(void *stack_hi [rdi], entry [rsi], void *data [rdx])
 * Writes an initial context at the top of a fresh stack and returns its sp,
 * for the first switch into it.  The first frame of entry gets the usual
 * alignment (rsp + 8 is a multiple of 16 at its first instruction).
 *
 *   sp ─▶ +0   MXCSR 0x1F80, x87 CW 0x037F (the defaults)
 *         +8   rbp = 0 (ends frame-pointer walks)
 *         +16  the trampoline
 *         +24  entry            (16-aligned: the trampoline's rsp)
 *         +32  data
 *         +40  zeros up to the top
 */
	.globl	edo__fiber_make
	.hidden	edo__fiber_make
	.type	edo__fiber_make, @function
	.p2align 4
edo__fiber_make:
	.cfi_startproc
	movq	%rdi, %rax
	andq	$-16, %rax
	subq	$56, %rax
	movl	$0x1F80, (%rax)		/* MXCSR: all exceptions masked, round to nearest */
	movw	$0x037F, 4(%rax)	/* x87 CW: the same, extended precision */
	movw	$0, 6(%rax)
	movq	$0, 8(%rax)		/* rbp */
	leaq	edo__fiber_trampoline(%rip), %rcx
	movq	%rcx, 16(%rax)		/* where the first switch jumps */
	movq	%rsi, 24(%rax)		/* entry */
	movq	%rdx, 32(%rax)		/* data */
	movq	$0, 40(%rax)
	movq	$0, 48(%rax)
	ret
	.cfi_endproc
	.size	edo__fiber_make, .-edo__fiber_make

#endif
	.section .note.GNU-stack,"",%progbits
