/* fail_256.S — reports failure through the test finisher with code 256,
 * whose low byte is zero: a failure must still make rewind exit nonzero.
 */
    .option nopic
    .section .text.init
    .globl _start
_start:
    li t0, 0x100000
    li t1, (256 << 16) | 0x3333
    sw t1, 0(t0)
1:  j 1b
