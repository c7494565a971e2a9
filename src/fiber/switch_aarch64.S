/* The fiber context switch for aarch64 (AAPCS64).
 *
 * As on x86-64 (switch_x86_64.S), a context is a saved stack pointer and
 * the callee-saved state lives on the stack being left: x19-x28, x29 (fp),
 * x30 (lr), the low 64 bits of v8-v15 (d8-d15), and FPCR (rounding mode,
 * flush-to-zero: a fiber's fesetround() must not leak into the next fiber).
 * x18 is the platform register on some systems: never touched.
 *
 *   saved sp ─▶ +0   d8,  d9        +64  x19, x20
 *               +16  d10, d11       +80  x21, x22
 *               +32  d12, d13       +96  x23, x24
 *               +48  d14, d15       +112 x25, x26
 *                                   +128 x27, x28
 *                                   +144 x29, x30 (resume address)
 *                                   +160 FPCR, pad
 *                                   +176 the caller's frame
 *
 * The resume is a `ret` to x30: on aarch64 the return predictor is
 * indexed the same way for `br x30`, and `ret` is exempt from BTI checks.
 * The first activation of a fresh context also arrives by that `ret`, into
 * the trampoline, which reaches the entry with `blr` (a BTI-enforcing build
 * needs its entry compiled with landing pads, as any indirect call does).
 */
#if defined(__aarch64__) && defined(__ELF__)

	.text

/* void *edo__fiber_switch(void **save_sp [x0], void *to_sp [x1], void *arg [x2]) */
	.globl	edo__fiber_switch
	.hidden	edo__fiber_switch
	.type	edo__fiber_switch, %function
	.p2align 4
edo__fiber_switch:
	.cfi_startproc
	sub	sp, sp, #176
	.cfi_adjust_cfa_offset 176
	stp	d8,  d9,  [sp, #0]
	stp	d10, d11, [sp, #16]
	stp	d12, d13, [sp, #32]
	stp	d14, d15, [sp, #48]
	stp	x19, x20, [sp, #64]
	stp	x21, x22, [sp, #80]
	stp	x23, x24, [sp, #96]
	stp	x25, x26, [sp, #112]
	stp	x27, x28, [sp, #128]
	stp	x29, x30, [sp, #144]
	mrs	x9, fpcr
	str	x9, [sp, #160]
	mov	x10, sp
	str	x10, [x0]		/* publish where we stopped */
	mov	sp, x1			/* ---- now on the other stack ---- */
	ldr	x10, [sp, #160]
	cmp	x9, x10			/* writing FPCR can be slow: only if it differs */
	b.eq	1f
	msr	fpcr, x10
1:	ldp	d8,  d9,  [sp, #0]
	ldp	d10, d11, [sp, #16]
	ldp	d12, d13, [sp, #32]
	ldp	d14, d15, [sp, #48]
	ldp	x19, x20, [sp, #64]
	ldp	x21, x22, [sp, #80]
	ldp	x23, x24, [sp, #96]
	ldp	x25, x26, [sp, #112]
	ldp	x27, x28, [sp, #128]
	ldp	x29, x30, [sp, #144]
	add	sp, sp, #176
	.cfi_adjust_cfa_offset -176
	mov	x0, x2
	ret
	.cfi_endproc
	.size	edo__fiber_switch, .-edo__fiber_switch

/* First activation: x19 = entry, x20 = data, x0 = the switch's arg. */
	.type	edo__fiber_trampoline, %function
	.p2align 4
edo__fiber_trampoline:
	.cfi_startproc
	.cfi_undefined x30		/* debuggers and unwinders stop here */
	mov	x1, x20
	blr	x19
	brk	#0			/* entry must not return */
	.cfi_endproc
	.size	edo__fiber_trampoline, .-edo__fiber_trampoline

/* void *edo__fiber_make(void *stack_hi [x0], entry [x1], void *data [x2]) */
	.globl	edo__fiber_make
	.hidden	edo__fiber_make
	.type	edo__fiber_make, %function
	.p2align 4
edo__fiber_make:
	.cfi_startproc
	and	x0, x0, #~15
	sub	x0, x0, #176
	stp	xzr, xzr, [x0, #0]
	stp	xzr, xzr, [x0, #16]
	stp	xzr, xzr, [x0, #32]
	stp	xzr, xzr, [x0, #48]
	stp	x1,  x2,  [x0, #64]	/* x19 = entry, x20 = data */
	stp	xzr, xzr, [x0, #80]
	stp	xzr, xzr, [x0, #96]
	stp	xzr, xzr, [x0, #112]
	stp	xzr, xzr, [x0, #128]
	adrp	x9, edo__fiber_trampoline
	add	x9, x9, :lo12:edo__fiber_trampoline
	stp	xzr, x9,  [x0, #144]	/* x29 = 0 ends frame walks; x30 = trampoline */
	stp	xzr, xzr, [x0, #160]	/* FPCR 0: round to nearest, as x86-64's default MXCSR */
	ret
	.cfi_endproc
	.size	edo__fiber_make, .-edo__fiber_make

#endif
	.section .note.GNU-stack,"",%progbits
