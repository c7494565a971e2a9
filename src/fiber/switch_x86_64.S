/* The fiber context switch for x86-64 (System V ABI).
 *
 * A context is only a saved stack pointer: everything the ABI says survives
 * a call is pushed on the stack being left, so switching is "push, swap
 * rsp, pop".  Saved: rbp, rbx, r12-r15, the control bits of MXCSR and the
 * x87 control word (a fiber that calls fesetround() must not leak its
 * rounding mode into the fiber that runs next), and the return address.
 *
 *   saved sp ─▶ +0   MXCSR (4 bytes), x87 CW (2 bytes), pad
 *               +8   r15
 *               +16  r14
 *               +24  r13
 *               +32  r12
 *               +40  rbx
 *               +48  rbp
 *               +56  return address (where the context resumes)
 *               +64  the caller's frame
 *
 * The resume is `pop %r8; jmp *%r8`, not `ret`: the return-stack predictor
 * expects a `ret` to go back to the call site of *this* stack, so every
 * `ret` across stacks mispredicts (reference/c-async-ergonomics.md §2.1:
 * ~11 ns per round trip against ~26 ns with `ret`).
 *
 * CET: no .note.gnu.property is emitted, so a binary linking this is not
 * marked shadow-stack compatible, which is correct until the switch learns
 * rdsspq/rstorssp.
 */
#if defined(__x86_64__) && defined(__ELF__)

	.text

/* void *edo__fiber_switch(void **save_sp [rdi], void *to_sp [rsi], void *arg [rdx])
 * Saves the current context, stores its sp in *save_sp, resumes the context
 * whose sp is to_sp, and hands it arg (the return value of the
 * edo__fiber_switch call that suspended it, or the first argument of a fresh
 * context's entry). */
	.globl	edo__fiber_switch
	.hidden	edo__fiber_switch
	.type	edo__fiber_switch, @function
	.p2align 4
edo__fiber_switch:
	.cfi_startproc
	pushq	%rbp
	.cfi_adjust_cfa_offset 8
	pushq	%rbx
	.cfi_adjust_cfa_offset 8
	pushq	%r12
	.cfi_adjust_cfa_offset 8
	pushq	%r13
	.cfi_adjust_cfa_offset 8
	pushq	%r14
	.cfi_adjust_cfa_offset 8
	pushq	%r15
	.cfi_adjust_cfa_offset 8
	subq	$8, %rsp
	.cfi_adjust_cfa_offset 8
	stmxcsr	(%rsp)
	fnstcw	4(%rsp)
	movq	%rsp, (%rdi)		/* publish where we stopped */
	movq	%rsi, %rsp		/* ---- now on the other stack ---- */
	ldmxcsr	(%rsp)
	fldcw	4(%rsp)
	addq	$8, %rsp
	.cfi_adjust_cfa_offset -8
	popq	%r15
	.cfi_adjust_cfa_offset -8
	popq	%r14
	.cfi_adjust_cfa_offset -8
	popq	%r13
	.cfi_adjust_cfa_offset -8
	popq	%r12
	.cfi_adjust_cfa_offset -8
	popq	%rbx
	.cfi_adjust_cfa_offset -8
	popq	%rbp
	.cfi_adjust_cfa_offset -8
	popq	%r8			/* return address of the resumed side */
	.cfi_adjust_cfa_offset -8
	movq	%rdx, %rax
	jmpq	*%r8
	.cfi_endproc
	.size	edo__fiber_switch, .-edo__fiber_switch

/* A fresh context starts here (jumped to by edo__fiber_switch) with
 * rbx = entry, r12 = data, rax = the switch's arg and rsp 16-byte aligned,
 * and calls entry(arg, data), which must never return. */
	.type	edo__fiber_trampoline, @function
	.p2align 4
edo__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined rip		/* debuggers and unwinders stop here */
	movq	%rax, %rdi
	movq	%r12, %rsi
	callq	*%rbx
	ud2
	.cfi_endproc
	.size	edo__fiber_trampoline, .-edo__fiber_trampoline

/* void *edo__fiber_make(void *stack_hi [rdi], entry [rsi], void *data [rdx])
 * Writes an initial context at the top of a fresh stack and returns its sp,
 * for the first edo__fiber_switch into it.  The first frame of entry gets
 * the usual alignment (rsp + 8 is a multiple of 16 at its first instruction). */
	.globl	edo__fiber_make
	.hidden	edo__fiber_make
	.type	edo__fiber_make, @function
	.p2align 4
edo__fiber_make:
	.cfi_startproc
	movq	%rdi, %rax
	andq	$-16, %rax
	subq	$80, %rax		/* sp; sp + 64 is 16-aligned after the pops */
	movl	$0x1F80, (%rax)		/* MXCSR: all exceptions masked, round to nearest */
	movw	$0x037F, 4(%rax)	/* x87 CW: the same, extended precision */
	movw	$0, 6(%rax)
	movq	$0, 8(%rax)		/* r15 */
	movq	$0, 16(%rax)		/* r14 */
	movq	$0, 24(%rax)		/* r13 */
	movq	%rdx, 32(%rax)		/* r12 = data */
	movq	%rsi, 40(%rax)		/* rbx = entry */
	movq	$0, 48(%rax)		/* rbp: ends frame-pointer walks */
	leaq	edo__fiber_trampoline(%rip), %rcx
	movq	%rcx, 56(%rax)		/* where the first switch jumps */
	movq	$0, 64(%rax)		/* a null "return address" above the trampoline */
	movq	$0, 72(%rax)
	ret
	.cfi_endproc
	.size	edo__fiber_make, .-edo__fiber_make

#endif
	.section .note.GNU-stack,"",%progbits
