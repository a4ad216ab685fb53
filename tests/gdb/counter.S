/* counter.S — a program to debug: hart 0 calls `bump` 1000 times, which
 * adds its argument to `counter`, then powers off; other harts spin in
 * `spin`, each adding to its own slot of `per_hart`. Built with symbols
 * so that gdb can break on functions and watch variables by name.
 */
    .option nopic
#define FINISHER 0x100000

    .section .text.init
    .globl _start
_start:
    csrr a0, mhartid
    bnez a0, other
    la sp, stack_top
    li s0, 0
main_loop:
    addi s0, s0, 1
    mv a0, s0
    call bump
    li t0, 1000
    blt s0, t0, main_loop
    li t0, FINISHER
    li t1, 0x5555
    sw t1, 0(t0)
1:  j 1b

    .globl bump
bump:
    la t0, counter
    ld t1, 0(t0)
    add t1, t1, a0
    sd t1, 0(t0)
    ret

other:
    la t0, per_hart
    slli t1, a0, 3
    add t0, t0, t1
    .globl spin
spin:
    ld t1, 0(t0)
    addi t1, t1, 1
    sd t1, 0(t0)
    j spin

    .data
    .balign 8
    .globl counter
counter:
    .dword 0
    .globl per_hart
per_hart:
    .zero 64
    .balign 16
stack:
    .zero 4096
stack_top:
