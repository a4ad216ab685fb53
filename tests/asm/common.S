/* common.S — start-up code, trap handlers and UART output shared by every test
 * program (linked in front of each one; see test.h for the conventions).
 *
 * M-mode handler (m_trap_handler, mtvec direct):
 *   - ecall with a magic value in a7: PASS, FAIL, mode changes (test.h);
 *   - interrupt: log it in irq_log, clear its bit in mie, return;
 *   - exception while tp holds a resume address (TRAP_RUN): record cause, tval
 *     and epc in t3, t4, t5, set tp = PRV_M, resume at the address;
 *   - anything else: print "FAIL ... unexpected trap" and exit 2.
 * S-mode handler (s_trap_handler, stvec direct): the same for what is
 * delegated to S; magic requests and unexpected traps are forwarded to M with
 * an ecall.
 * Both save every register in a frame that mscratch / sscratch points to.
 */
#include "test.h"

    .section .text.init
    .globl _start
_start:
    csrr t0, mhartid
    bnez t0, park
    /* Clear registers that the conventions give a meaning. */
    li gp, 0
    li tp, 0
    la sp, _stack_top
    la t0, _m_trap_frame
    csrw mscratch, t0
    la t0, _s_trap_frame
    csrw sscratch, t0
    la t0, m_trap_handler
    csrw mtvec, t0
    la t0, s_trap_handler
    csrw stvec, t0
    csrw medeleg, zero
    csrw mideleg, zero
    csrw mie, zero
    /* PMP entry 0: NAPOT over the whole address space, RWX, so that S and U
     * may access memory (with no entry matching they may access nothing). */
    li t0, -1
    csrw pmpaddr0, t0
    li t0, (PMP_NAPOT | PMP_R | PMP_W | PMP_X)
    csrw pmpcfg0, t0
    /* Enable the FPU. */
    li t0, MSTATUS_FS
    csrc mstatus, t0
    li t0, MSTATUS_FS_INITIAL
    csrs mstatus, t0
    csrwi fcsr, 0
    /* Zero .bss. */
    la t0, _bss_start
    la t1, _bss_end
1:  bgeu t0, t1, 2f
    sd zero, 0(t0)
    addi t0, t0, 8
    j 1b
2:
    /* Recognise QEMU, so that checks of its known deviations from the
     * specification can expect QEMU's value there and the specified value
     * everywhere else. QEMU's virt board has a fw_cfg device at 0x10100000
     * whose signature item (selector 0) reads "QEMU"; Rewind's board has
     * nothing there, so the access faults. mtvec points just past the probe
     * while it runs: a fault lands there with t2 still zero. QEMU 7.2 in
     * particular (marchid = mimpid = 0x0702xx, its version; QEMU 10's are
     * zero) has deviations that later versions fixed. */
    la t0, 5f
    csrw mtvec, t0
    li t2, 0
    li t1, 0x10100000
    sh zero, 8(t1)              /* selector: the signature */
    lbu t2, 0(t1)
    lbu t3, 0(t1)
    slli t3, t3, 8
    or t2, t2, t3
    lbu t3, 0(t1)
    slli t3, t3, 16
    or t2, t2, t3
    lbu t3, 0(t1)
    slli t3, t3, 24
    or t2, t2, t3
    .balign 4
5:  la t0, m_trap_handler
    csrw mtvec, t0
    li t1, 0x554d4551           /* "QEMU", little-endian */
    bne t2, t1, 3f
    li t1, 1
    la t0, on_qemu
    sd t1, 0(t0)
    csrr t0, marchid
    csrr t1, mimpid
    bne t0, t1, 3f
    srli t0, t0, 8
    li t1, 0x0702
    bne t0, t1, 3f
    li t0, 1
    la t1, on_qemu_7_2
    sd t0, 0(t1)
3:  j test_main

park:
    wfi
    j park

/* ---- Failure entry point (any mode) --------------------------------------- */
/* a1 = line, a2 = got, a3 = expected; gp = case. */
    .text
    .globl test_fail
test_fail:
    mv a0, gp
    li a7, MAGIC_FAIL
    ecall
    j .

/* ---- Register save / restore ----------------------------------------------- */
#define SAVE_REGS                \
    sd x1, 1*8(sp);              \
    sd x3, 3*8(sp);              \
    sd x4, 4*8(sp);              \
    sd x5, 5*8(sp);              \
    sd x6, 6*8(sp);              \
    sd x7, 7*8(sp);              \
    sd x8, 8*8(sp);              \
    sd x9, 9*8(sp);              \
    sd x10, 10*8(sp);            \
    sd x11, 11*8(sp);            \
    sd x12, 12*8(sp);            \
    sd x13, 13*8(sp);            \
    sd x14, 14*8(sp);            \
    sd x15, 15*8(sp);            \
    sd x16, 16*8(sp);            \
    sd x17, 17*8(sp);            \
    sd x18, 18*8(sp);            \
    sd x19, 19*8(sp);            \
    sd x20, 20*8(sp);            \
    sd x21, 21*8(sp);            \
    sd x22, 22*8(sp);            \
    sd x23, 23*8(sp);            \
    sd x24, 24*8(sp);            \
    sd x25, 25*8(sp);            \
    sd x26, 26*8(sp);            \
    sd x27, 27*8(sp);            \
    sd x28, 28*8(sp);            \
    sd x29, 29*8(sp);            \
    sd x30, 30*8(sp);            \
    sd x31, 31*8(sp)

#define RESTORE_REGS             \
    ld x1, 1*8(sp);              \
    ld x3, 3*8(sp);              \
    ld x4, 4*8(sp);              \
    ld x5, 5*8(sp);              \
    ld x6, 6*8(sp);              \
    ld x7, 7*8(sp);              \
    ld x8, 8*8(sp);              \
    ld x9, 9*8(sp);              \
    ld x10, 10*8(sp);            \
    ld x11, 11*8(sp);            \
    ld x12, 12*8(sp);            \
    ld x13, 13*8(sp);            \
    ld x14, 14*8(sp);            \
    ld x15, 15*8(sp);            \
    ld x16, 16*8(sp);            \
    ld x17, 17*8(sp);            \
    ld x18, 18*8(sp);            \
    ld x19, 19*8(sp);            \
    ld x20, 20*8(sp);            \
    ld x21, 21*8(sp);            \
    ld x22, 22*8(sp);            \
    ld x23, 23*8(sp);            \
    ld x24, 24*8(sp);            \
    ld x25, 25*8(sp);            \
    ld x26, 26*8(sp);            \
    ld x27, 27*8(sp);            \
    ld x28, 28*8(sp);            \
    ld x29, 29*8(sp);            \
    ld x30, 30*8(sp);            \
    ld x31, 31*8(sp)

#define FRAME_TP  (4*8)
#define FRAME_A0  (10*8)
#define FRAME_A1  (11*8)
#define FRAME_A2  (12*8)
#define FRAME_A3  (13*8)
#define FRAME_A7  (17*8)
#define FRAME_T3  (28*8)
#define FRAME_T4  (29*8)
#define FRAME_T5  (30*8)

/* ---- M-mode trap handler ----------------------------------------------------- */
    .balign 64
    .globl m_trap_handler
m_trap_handler:
    csrrw sp, mscratch, sp
    SAVE_REGS
    csrr t0, mscratch
    sd t0, 2*8(sp)
    csrr t0, mcause
    bltz t0, .Lm_interrupt

    /* ecall from U, S or M carrying a magic request? */
    li t1, CAUSE_ECALL_U
    beq t0, t1, .Lm_ecall
    li t1, CAUSE_ECALL_S
    beq t0, t1, .Lm_ecall
    li t1, CAUSE_ECALL_M
    bne t0, t1, .Lm_exception
.Lm_ecall:
    ld t1, FRAME_A7(sp)
    li t2, MAGIC_PASS
    beq t1, t2, report_pass
    li t2, MAGIC_FAIL
    beq t1, t2, .Lm_fail
    li t2, MAGIC_S_UNEXPECTED
    beq t1, t2, .Lm_s_unexpected
    li t2, MAGIC_GOTO_M
    beq t1, t2, .Lm_goto_m
    li t2, MAGIC_GOTO_M_AT
    beq t1, t2, .Lm_goto_m_at
    li t2, MAGIC_GOTO_S
    beq t1, t2, .Lm_goto_s

.Lm_exception:
    ld t1, FRAME_TP(sp)
    li t2, 4
    bltu t1, t2, .Lm_unexpected
    /* Expected: record and resume at tp. */
    sd t0, FRAME_T3(sp)
    csrr t2, mtval
    sd t2, FRAME_T4(sp)
    csrr t2, mepc
    sd t2, FRAME_T5(sp)
    csrw mepc, t1
    li t2, PRV_M
    sd t2, FRAME_TP(sp)
    j .Lm_return

.Lm_goto_m:
    csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
.Lm_set_mpp_m:
    li t0, MSTATUS_MPP
    csrs mstatus, t0
    j .Lm_return

.Lm_goto_m_at:
    ld t0, FRAME_A0(sp)
    csrw mepc, t0
    j .Lm_set_mpp_m

.Lm_goto_s:
    csrr t0, mepc
    addi t0, t0, 4
    csrw mepc, t0
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPP_S
    csrs mstatus, t0
    j .Lm_return

.Lm_interrupt:
    slli t0, t0, 1
    srli t0, t0, 1
    li t1, 1
    sll t1, t1, t0
    csrc mie, t1
    ori t0, t0, (PRV_M << 8)
    csrr t1, mepc
    jal ra, log_interrupt

.Lm_return:
    RESTORE_REGS
    csrrw sp, mscratch, sp
    mret

.Lm_fail:
    jal ra, print_fail_prefix
    la a0, msg_line
    jal ra, uart_puts
    ld a0, FRAME_A1(sp)
    jal ra, uart_putdec
    la a0, msg_got
    jal ra, uart_puts
    ld a0, FRAME_A2(sp)
    jal ra, uart_puthex
    la a0, msg_expected
    jal ra, uart_puts
    ld a0, FRAME_A3(sp)
    jal ra, uart_puthex
    li a0, '\n'
    jal ra, uart_putc
    li a0, 1
    j finish_fail

.Lm_unexpected:
    jal ra, print_fail_prefix
    la a0, msg_unexpected_m
    jal ra, uart_puts
    csrr a0, mcause
    jal ra, uart_puthex
    la a0, msg_mepc
    jal ra, uart_puts
    csrr a0, mepc
    jal ra, uart_puthex
    la a0, msg_mtval
    jal ra, uart_puts
    csrr a0, mtval
    jal ra, uart_puthex
    la a0, msg_from
    jal ra, uart_puts
    csrr a0, mstatus
    srli a0, a0, 11
    andi a0, a0, 3
    jal ra, uart_putdec
    li a0, '\n'
    jal ra, uart_putc
    li a0, 2
    j finish_fail

.Lm_s_unexpected:
    jal ra, print_fail_prefix
    la a0, msg_unexpected_s
    jal ra, uart_puts
    ld a0, FRAME_A1(sp)
    jal ra, uart_puthex
    la a0, msg_sepc
    jal ra, uart_puts
    ld a0, FRAME_A2(sp)
    jal ra, uart_puthex
    la a0, msg_stval
    jal ra, uart_puts
    ld a0, FRAME_A3(sp)
    jal ra, uart_puthex
    li a0, '\n'
    jal ra, uart_putc
    li a0, 2
    j finish_fail

/* t0 = log entry, t1 = epc. Clobbers t2, t3. Exits on a storm. */
log_interrupt:
    la t2, irq_last_epc
    sd t1, 0(t2)
    la t2, irq_count
    ld t3, 0(t2)
    li t1, IRQ_LOG_LEN
    bgeu t3, t1, .Lirq_storm
    addi t1, t3, 1
    sd t1, 0(t2)
    la t2, irq_log
    slli t3, t3, 3
    add t2, t2, t3
    sd t0, 0(t2)
    ret
.Lirq_storm:
    jal ra, print_fail_prefix
    la a0, msg_storm
    jal ra, uart_puts
    li a0, 3
    j finish_fail

/* ---- S-mode trap handler ------------------------------------------------------ */
    .balign 64
    .globl s_trap_handler
s_trap_handler:
    csrrw sp, sscratch, sp
    SAVE_REGS
    csrr t0, sscratch
    sd t0, 2*8(sp)
    csrr t0, scause
    bltz t0, .Ls_interrupt

    li t1, CAUSE_ECALL_U
    beq t0, t1, .Ls_ecall
    li t1, CAUSE_ECALL_S
    bne t0, t1, .Ls_exception
.Ls_ecall:
    ld t1, FRAME_A7(sp)
    li t2, MAGIC_PASS
    beq t1, t2, .Ls_forward
    li t2, MAGIC_FAIL
    beq t1, t2, .Ls_forward
    li t2, MAGIC_GOTO_M
    beq t1, t2, .Ls_goto_m
    li t2, MAGIC_GOTO_S
    beq t1, t2, .Ls_goto_s

.Ls_exception:
    ld t1, FRAME_TP(sp)
    li t2, 4
    bltu t1, t2, .Ls_unexpected
    sd t0, FRAME_T3(sp)
    csrr t2, stval
    sd t2, FRAME_T4(sp)
    csrr t2, sepc
    sd t2, FRAME_T5(sp)
    csrw sepc, t1
    li t2, PRV_S
    sd t2, FRAME_TP(sp)
    j .Ls_return

.Ls_goto_s:
    csrr t0, sepc
    addi t0, t0, 4
    csrw sepc, t0
    li t0, MSTATUS_SPP
    csrs sstatus, t0
    j .Ls_return

.Ls_interrupt:
    slli t0, t0, 1
    srli t0, t0, 1
    li t1, 1
    sll t1, t1, t0
    csrc sie, t1
    ori t0, t0, (PRV_S << 8)
    csrr t1, sepc
    jal ra, log_interrupt

.Ls_return:
    RESTORE_REGS
    csrrw sp, sscratch, sp
    sret

/* Re-issue the same ecall from S-mode (PASS / FAIL go to M). */
.Ls_forward:
    RESTORE_REGS
    csrrw sp, sscratch, sp
    ecall
    j .

/* Continue in M-mode after the U-mode ecall. */
.Ls_goto_m:
    RESTORE_REGS
    csrrw sp, sscratch, sp
    csrr a0, sepc
    addi a0, a0, 4
    li a7, MAGIC_GOTO_M_AT
    ecall
    j .

.Ls_unexpected:
    RESTORE_REGS
    csrrw sp, sscratch, sp
    csrr a1, scause
    csrr a2, sepc
    csrr a3, stval
    li a7, MAGIC_S_UNEXPECTED
    ecall
    j .

/* ---- Reporting (M-mode, physical addresses) ------------------------------------ */
report_pass:
    la a0, msg_pass
    jal ra, uart_puts
    la a0, test_name
    jal ra, uart_puts
    li a0, '\n'
    jal ra, uart_putc
    li t0, FINISHER_BASE
    li t1, FINISHER_PASS
    sw t1, 0(t0)
    j .

/* a0 = exit code (nonzero) */
finish_fail:
    slli a0, a0, 16
    li t1, FINISHER_FAIL
    or t1, t1, a0
    li t0, FINISHER_BASE
    sw t1, 0(t0)
    j .

/* "FAIL <name> case <n>" ; uses the case number in gp. Clobbers a0, t0-t3, s0. */
print_fail_prefix:
    mv s0, ra
    la a0, msg_fail
    jal ra, uart_puts
    la a0, test_name
    jal ra, uart_puts
    la a0, msg_case
    jal ra, uart_puts
    mv a0, gp
    jal ra, uart_putdec
    mv ra, s0
    ret

/* UART output: polls LSR.THRE, then writes THR. Clobber t0, t1 (and a0). */
    .globl uart_putc
uart_putc:
    li t0, UART_BASE
1:  lbu t1, 5(t0)
    andi t1, t1, 0x20
    beqz t1, 1b
    sb a0, 0(t0)
    ret

/* a0 = NUL-terminated string. Clobbers t0-t2, a0. */
uart_puts:
    mv t2, a0
    mv t3, ra
1:  lbu a0, 0(t2)
    beqz a0, 2f
    jal ra, uart_putc
    addi t2, t2, 1
    j 1b
2:  mv ra, t3
    ret

/* "0x" and 16 hex digits of a0. Clobbers t0-t4, a0. */
uart_puthex:
    mv t2, a0
    mv t3, ra
    li a0, '0'
    jal ra, uart_putc
    li a0, 'x'
    jal ra, uart_putc
    li t4, 60
1:  srl a0, t2, t4
    andi a0, a0, 0xf
    addi a0, a0, '0'
    li t0, '9'
    ble a0, t0, 2f
    addi a0, a0, 'a' - '0' - 10
2:  jal ra, uart_putc
    addi t4, t4, -4
    bgez t4, 1b
    mv ra, t3
    ret

/* a0 in decimal. Clobbers t0-t5, a0. */
uart_putdec:
    mv t3, ra
    la t4, decbuf_end
    li t5, 10
1:  remu t0, a0, t5
    divu a0, a0, t5
    addi t0, t0, '0'
    addi t4, t4, -1
    sb t0, 0(t4)
    bnez a0, 1b
    mv t2, t4
    la t4, decbuf_end
2:  lbu a0, 0(t2)
    jal ra, uart_putc
    addi t2, t2, 1
    bltu t2, t4, 2b
    mv ra, t3
    ret

    .section .rodata
msg_pass:         .asciz "PASS "
msg_fail:         .asciz "FAIL "
msg_case:         .asciz " case "
msg_line:         .asciz " line "
msg_got:          .asciz ": got "
msg_expected:     .asciz " expected "
msg_unexpected_m: .asciz ": unexpected trap in M: mcause="
msg_mepc:         .asciz " mepc="
msg_mtval:        .asciz " mtval="
msg_from:         .asciz " from privilege "
msg_unexpected_s: .asciz ": unexpected trap in S: scause="
msg_sepc:         .asciz " sepc="
msg_stval:        .asciz " stval="
msg_storm:        .asciz ": more interrupts than irq_log holds (interrupt storm)\n"

    .bss
    .balign 8
decbuf:     .space 24
decbuf_end:
    .globl on_qemu, on_qemu_7_2
on_qemu:      .dword 0
on_qemu_7_2:  .dword 0
    .globl irq_count, irq_log, irq_last_epc
irq_count:    .dword 0
irq_last_epc: .dword 0
irq_log:      .space 8 * IRQ_LOG_LEN
