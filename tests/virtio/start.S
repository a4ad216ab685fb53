/* Entry of the bare-metal virtio test guests: a stack, main(), and the
 * test finisher with main's result (0: pass, else fail with that code). */
    .section .text.init
    .globl _start
_start:
    /* Only hart 0 runs the test. */
    csrr t0, mhartid
    bnez t0, park
    la sp, _stack_top
    call main
    li t0, 0x100000
    beqz a0, pass
    slli a0, a0, 16
    li t1, 0x3333
    or a0, a0, t1
    sw a0, 0(t0)
    j park
pass:
    li t1, 0x5555
    sw t1, 0(t0)
park:
    wfi
    j park
