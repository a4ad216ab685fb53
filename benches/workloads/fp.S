/*
 * fp: floating point. Each iteration runs a double-precision chain
 * (fmadd.d, fmsub.d, fnmsub.d, fdiv.d, fsqrt.d, fadd.d, fmul.d, fmin/fmax,
 * conversions, compares) and a single-precision chain (fmadd.s, fdiv.s,
 * fsqrt.s, fmul.s, fadd.s, fsub.s), fed by the loop counter so the values keep
 * changing. All values stay finite and normal: the recurrences contract
 * (x = x/2 + t, y = y/4 + x) toward small positive numbers.
 */
#include "common.h"

    start
    li   t0, 0x6000               /* mstatus.FS = Dirty: enable the FPU */
    csrs mstatus, t0
    csrwi fcsr, 0
    li   t0, 0x3fe0000000000000   /* 0.5 */
    fmv.d.x fa1, t0
    li   t0, 0x3ff0000000000000   /* 1.0 */
    fmv.d.x fa2, t0
    li   t0, 0x3fd0000000000000   /* 0.25 */
    fmv.d.x fa3, t0
    li   t0, 0x3f50624dd2f1a9fc   /* 1e-3 */
    fmv.d.x fa4, t0
    li   t0, 0x3f000000           /* 0.5f */
    fmv.w.x ft1, t0
    li   t0, 0x3f800000           /* 1.0f */
    fmv.w.x ft2, t0
    fmv.d.x fs0, zero
    fmv.d.x fs1, zero
    fmv.d.x fs4, zero
    fmv.d.x fs5, zero
    fmv.d.x fs9, zero
    fmv.w.x ft3, zero
    fmv.w.x ft8, zero
    li   s0, 0                    /* integer side of the checksum */
    li   s11, ITERS
    .p2align 2
loop:
    andi t0, s11, 1023
    fcvt.d.w ft5, t0
    fmadd.d  ft5, ft5, fa4, fa2   /* t = (n mod 1024) * 1e-3 + 1 */
    fmadd.d  fs0, fs0, fa1, ft5   /* x = x * 0.5 + t */
    fmadd.d  fs1, fs1, fa3, fs0   /* y = y * 0.25 + x */
    fdiv.d   fs2, fa2, fs1        /* 1 / y */
    fsqrt.d  fs3, fs1             /* sqrt(y) */
    fmsub.d  fs4, fs2, fs3, fs4
    fadd.d   fs5, fs5, fs2
    fmul.d   fs6, fs3, fs2
    fnmsub.d fs7, fs6, fa1, fs3
    fmin.d   fs8, fs6, fs7
    fmax.d   fs6, fs6, fs3
    fsgnjx.d fs8, fs8, fs4
    fadd.d   fs9, fs9, fs8
    flt.d    t1, fs6, fs7
    add      s0, s0, t1
    fcvt.l.d t2, fs7
    add      s0, s0, t2
    fcvt.s.d ft0, fs1
    fmadd.s  ft3, ft3, ft1, ft0   /* z = z * 0.5 + y */
    fdiv.s   ft4, ft2, ft3
    fsqrt.s  ft6, ft3
    fmul.s   ft7, ft6, ft4
    fadd.s   ft8, ft8, ft7
    fsub.s   ft9, ft6, ft7
    fcvt.d.s fs10, ft9
    fadd.d   fs9, fs9, fs10
    addi s11, s11, -1
    bnez s11, loop
loop_done:                    /* the loop is [loop, loop_done) */

    fmv.x.d t0, fs4
    xor  s0, s0, t0
    fmv.x.d t0, fs5
    xor  s0, s0, t0
    fmv.x.d t0, fs9
    xor  s0, s0, t0
    fmv.x.w t0, ft8
    xor  s0, s0, t0
    fmv.x.d t0, fs1
    xor  s0, s0, t0
    finish s0
