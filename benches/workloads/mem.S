/*
 * mem: loads and stores. Each iteration
 *  - streams over a 1 MiB buffer: loads the four doublewords at p and stores
 *    four doublewords at p + 32, then advances p by 32 bytes, wrapping at
 *    1 MiB; what one iteration stores the next one loads. Every pass reads and
 *    writes 1 MiB over 256 pages, more than a small software TLB holds;
 *  - reads and writes a 4 KiB hot buffer with words, halfwords and bytes at a
 *    stride that walks the whole buffer.
 * Wrapping is done with masks, so the block is straight-line.
 */
#include "common.h"

#define BIG_BASE 0x80100000   /* 1 MiB (+32 bytes), above the program */
#define BIG_MASK 0xfffe0      /* 32-byte steps within 1 MiB */
#define HOT_BASE 0x80300000   /* 4 KiB */
#define HOT_MASK 0xff8

    start
    li   s0, BIG_BASE
    li   s1, 0                /* offset into the big buffer */
    li   s2, BIG_MASK
    li   s3, HOT_BASE
    li   s4, 0                /* offset into the hot buffer */
    li   s5, HOT_MASK
    li   s6, 0x9e3779b97f4a7c15
    li   s7, 0                /* running sum of loaded values */
    li   s11, ITERS
    .p2align 2
loop:
    add  t0, s0, s1
    ld   t1, 0(t0)
    ld   t2, 8(t0)
    ld   t3, 16(t0)
    ld   t4, 24(t0)
    add  t1, t1, s6
    xor  t2, t2, t1
    add  t3, t3, t2
    sub  t4, t4, t3
    sd   t1, 32(t0)
    sd   t2, 40(t0)
    sd   t3, 48(t0)
    sd   t4, 56(t0)
    add  s7, s7, t4
    addi s1, s1, 32
    and  s1, s1, s2
    add  t0, s3, s4
    lw   t1, 0(t0)
    lhu  t2, 4(t0)
    lbu  t3, 6(t0)
    addw t1, t1, t3
    xor  t2, t2, t1
    sw   t1, 0(t0)
    sh   t2, 4(t0)
    sb   t3, 7(t0)
    add  s7, s7, t1
    addi s4, s4, 40
    and  s4, s4, s5
    addi s11, s11, -1
    bnez s11, loop
loop_done:                    /* the loop is [loop, loop_done) */

    finish s7
