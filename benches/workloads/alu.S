/*
 * alu: integer ALU throughput. Each iteration is one straight-line block of
 * add/sub/xor/or/and, immediate and register shifts (64- and 32-bit forms),
 * mul/mulh/mulw and slt, over several independent dependency chains, closed
 * by a counted loop branch. No memory access.
 */
#include "common.h"

    start
    li   a0, 0x0123456789abcdef
    li   a1, 0x0fedcba987654321
    li   a2, 0x5bd1e995
    li   a3, 3
    li   a4, 5
    li   a5, 7
    li   a6, 11
    li   a7, 13
    li   s11, ITERS
    .p2align 2
loop:
    add  a0, a0, a1
    xor  a1, a1, a0
    slli a3, a0, 13
    srli a4, a1, 7
    xor  a3, a3, a4
    mul  a5, a3, a2
    addw a6, a6, a5
    sub  a7, a7, a6
    sra  t0, a7, a0
    or   t1, t0, a3
    and  t2, t1, a1
    srai t3, a5, 17
    sllw t4, a6, a1
    mulh t0, a0, a2
    add  a2, a2, t0
    xori a2, a2, 0x2a5
    srlw t1, a7, a3
    subw t2, t2, t1
    slt  t3, t2, a4
    add  a4, a4, t3
    mulw t4, t4, a5
    xor  a5, a5, t4
    slliw t0, a6, 3
    sraiw t1, a7, 5
    add  a6, a6, t0
    sub  a7, a7, t1
    ori  a3, a3, 0x155
    andi t2, a4, 0x7f
    srl  t3, a0, t2
    add  a1, a1, t3
    sltu t4, a0, a1
    add  a0, a0, t4
    addi s11, s11, -1
    bnez s11, loop
loop_done:                    /* the loop is [loop, loop_done) */

    xor  s0, a0, a1
    xor  s0, s0, a2
    xor  s0, s0, a3
    xor  s0, s0, a4
    xor  s0, s0, a5
    xor  s0, s0, a6
    xor  s0, s0, a7
    finish s0
