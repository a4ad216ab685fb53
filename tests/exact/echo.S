/* echo.S — reads console input by polling the UART and echoes it, until
 * it has read two newlines; then powers off. A run with input (whose
 * recording holds console events) that takes few instructions: the seed of
 * the replay fuzz target, and a check that input from a file or a pipe
 * reaches a guest that polls.
 */
    .option nopic
#define FINISHER 0x100000
#define UART     0x10000000
#define LSR_DR   0x01

    .section .text.init
    .globl _start
_start:
    bnez a0, park               /* one hart reads the console */
    li s0, UART
    li s1, 0                    /* newlines seen */
    li s2, 2
poll:
    lbu t0, 5(s0)               /* LSR */
    andi t0, t0, LSR_DR
    beqz t0, poll
    lbu t1, 0(s0)               /* RBR */
    sb t1, 0(s0)                /* THR: echo it */
    li t2, '\n'
    bne t1, t2, poll
    addi s1, s1, 1
    bne s1, s2, poll
    li t0, FINISHER
    li t1, 0x5555
    sw t1, 0(t0)
park:
    wfi
    j park
