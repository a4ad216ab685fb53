/*
 * Shared by every hart_mips workload. Assumptions, written down:
 *  - Bare metal on QEMU's `virt` memory map, no firmware: the hart starts in
 *    M-mode at the ELF entry (_start), linked at 0x8000_0000 (see link.ld).
 *  - Every instruction from _start up to the store to the test finisher is
 *    counted by hart_mips.py from the disassembly; so everything here is
 *    straight-line code (no data-dependent instruction counts).
 *  - The UART (16550 at 0x1000_0000) accepts a byte on every THR write without
 *    polling LSR, as QEMU's and Rewind's do; polling would make the count
 *    depend on timing.
 */
#define UART_BASE     0x10000000
#define FINISHER_BASE 0x100000
#define FINISHER_PASS 0x5555

/* Write one immediate byte to the UART; t6 = UART base. Clobbers t5. */
.macro putc ch
    li   t5, \ch
    sb   t5, 0(t6)
.endm

/* Write \reg as 16 lowercase hex digits; t6 = UART base. Branch-free, so the
 * count is fixed. Clobbers t0, t1. */
.macro puthex reg
    .set .Lshift, 60
    .rept 16
    srli t0, \reg, .Lshift
    andi t0, t0, 15
    sltiu t1, t0, 10          /* 1 for 0-9, 0 for a-f */
    addi t1, t1, -1           /* 0 for 0-9, -1 for a-f */
    andi t1, t1, 39           /* 'a' - '0' - 10 */
    add  t0, t0, t1
    addi t0, t0, '0'
    sb   t0, 0(t6)
    .set .Lshift, .Lshift - 4
    .endr
.endm

/*
 * The common end of every workload, reached once after its loop (label
 * loop_end). Reads minstret (the window [_start, loop_end) is what the guest
 * reports), prints one line
 *     instret=<hex> sum=<hex>
 * where sum is the workload's checksum in \sumreg, then exits through the
 * SiFive test finisher with status 0. exit_end marks the end of the counted
 * code: the finisher store is the last instruction that retires.
 */
.macro finish sumreg
loop_end:
    csrr s9, minstret
    sub  s9, s9, s10
    li   t6, UART_BASE
    putc 'i'
    putc 'n'
    putc 's'
    putc 't'
    putc 'r'
    putc 'e'
    putc 't'
    putc '='
    puthex s9
    putc ' '
    putc 's'
    putc 'u'
    putc 'm'
    putc '='
    puthex \sumreg
    putc '\n'
    li   t0, FINISHER_BASE
    li   t1, FINISHER_PASS
    sw   t1, 0(t0)
exit_end:
1:  j 1b                      /* not reached: the finisher ends the machine */
.endm

/* The start of every workload's measured window. s10 holds minstret at entry. */
.macro start
    .section .text.start, "ax"
    .globl _start
_start:
    csrr s10, minstret
.endm
