/* tick.S — a guest that only idles: it waits in WFI for a machine timer
 * interrupt every millisecond of guest time, for ever, and never powers
 * off. What a run looks like once a guest's input has ended and it has
 * nothing left to do.
 */
    .option nopic
#define MTIME     0x200bff8
#define MTIMECMP  0x2004000
#define PERIOD    10000         /* 1 ms at the CLINT's 10 MHz */

    .section .text.init
    .globl _start
_start:
    bnez a0, park
    la t0, tick
    csrw mtvec, t0
    call arm
    li t0, 1 << 7
    csrw mie, t0
    csrsi mstatus, 1 << 3
park:
    wfi
    j park

tick:
    call arm
    mret

arm:
    li t0, MTIME
    ld t1, 0(t0)
    li t2, PERIOD
    add t1, t1, t2
    li t0, MTIMECMP
    sd t1, 0(t0)
    ret
