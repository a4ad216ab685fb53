/*
 * branch: control flow. Each iteration draws a 64-bit xorshift random number
 * and runs five if/else diamonds whose conditions depend on it (each taken
 * about half the time: single bits, the sign, an unsigned compare with the
 * previous number), then calls a function that saves ra on the stack and
 * calls a leaf function (two call/return pairs per iteration).
 *
 * Both arms of every diamond have the same number of instructions (the then_N
 * arm ends with the jump to join_N), so an iteration's count does not depend
 * on the data; hart_mips.py checks that from the disassembly.
 */
#include "common.h"

.macro diamond n, cond, a, b
    \cond \a, \b, else_\n
then_\n:
    addi a0, a0, \n
    xor  a1, a1, s0
    j    join_\n
else_\n:
    addi a2, a2, \n
    sub  a1, a1, s0
    add  a3, a3, a0
join_\n:
.endm

    start
    li   sp, 0x80400000
    li   s0, 0x2545f4914f6cdd1d   /* xorshift state */
    li   s1, 0                    /* previous random number */
    li   a0, 0
    li   a1, 0
    li   a2, 0
    li   a3, 0
    li   a4, 0
    li   s11, ITERS
    .p2align 2
loop:
    mv   s1, s0
    slli t0, s0, 13
    xor  s0, s0, t0
    srli t0, s0, 7
    xor  s0, s0, t0
    slli t0, s0, 17
    xor  s0, s0, t0
    andi t1, s0, 1
    diamond 1, beq, t1, zero
    andi t1, s0, 0x100
    diamond 2, bne, t1, zero
    diamond 3, blt, s0, zero
    diamond 4, bltu, s0, s1
    srli t1, s0, 40
    andi t1, t1, 1
    diamond 5, beq, t1, zero
    call outer
    addi s11, s11, -1
    bnez s11, loop
loop_done:                    /* the loop is [loop, loop_done) */

    xor  s2, a0, a1
    xor  s2, s2, a2
    xor  s2, s2, a3
    xor  s2, s2, a4
    finish s2

    /* Counted once per iteration: [outer, funcs_end). */
outer:
    addi sp, sp, -16
    sd   ra, 8(sp)
    call leaf
    add  a4, a4, a0
    ld   ra, 8(sp)
    addi sp, sp, 16
    ret
leaf:
    srli t2, a4, 3
    xor  a4, a4, t2
    add  a4, a4, a2
    ret
funcs_end:
