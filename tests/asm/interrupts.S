/* interrupts.S — M-mode interrupts from the CLINT (MSI, MTI), the PLIC (MEI,
 * from the UART's transmit-holding-register-empty interrupt) and mip (SEI,
 * SSI, STI written by M-mode):
 *   - priority order when all six are pending: MEI, MSI, MTI, SEI, SSI, STI;
 *   - mstatus.MIE gates them in M-mode, not in S or U;
 *   - an interrupt is taken right after the CSR write that enables it, with
 *     mcause = bit 63 | code and mepc = the next instruction;
 *   - MTIP follows mtime >= mtimecmp (set and cleared by writing mtimecmp),
 *     MSIP follows the CLINT's msip; neither (nor MEIP) is writable in mip;
 *   - vectored mtvec: interrupts at BASE + 4 * cause;
 *   - csrs/csrc on mip change mip.SEIP's software-writable bit only: the
 *     PLIC's SEIP line, which a read ORs in, is never latched into it.
 * Timing is never measured: a device-raised bit is awaited by spinning. */
#include "test.h"

#define PLIC_PRIORITY(irq)      (PLIC_BASE + 4 * (irq))
#define PLIC_ENABLE_M           (PLIC_BASE + 0x2000)        /* context 0: hart 0, M */
#define PLIC_THRESHOLD_M        (PLIC_BASE + 0x200000)
#define PLIC_ENABLE_S           (PLIC_BASE + 0x2080)        /* context 1: hart 0, S */
#define PLIC_THRESHOLD_S        (PLIC_BASE + 0x201000)
#define UART_IER                (UART_BASE + 1)

/* Spin until (mip & bits) == bits. Clobbers t0, t1. */
#define WAIT_MIP_SET(bits)                      \
    li t0, bits;                                \
1:  csrr t1, mip;                               \
    and t1, t1, t0;                             \
    bne t1, t0, 1b

#define WAIT_MIP_CLEAR(bits)                    \
    li t0, bits;                                \
1:  csrr t1, mip;                               \
    and t1, t1, t0;                             \
    bnez t1, 1b

#define UART_IRQ_CALL(routine, enable, threshold) \
    li t3, enable;                              \
    li t4, threshold;                           \
    jal ra, routine
#define UART_IRQ_ON_M   UART_IRQ_CALL(uart_irq_on, PLIC_ENABLE_M, PLIC_THRESHOLD_M)
#define UART_IRQ_OFF_M  UART_IRQ_CALL(uart_irq_off, PLIC_ENABLE_M, PLIC_THRESHOLD_M)
#define UART_IRQ_ON_S   UART_IRQ_CALL(uart_irq_on, PLIC_ENABLE_S, PLIC_THRESHOLD_S)
#define UART_IRQ_OFF_S  UART_IRQ_CALL(uart_irq_off, PLIC_ENABLE_S, PLIC_THRESHOLD_S)

TEST_BEGIN(interrupts)

    /* Make sure the timer is quiet. */
    li t0, CLINT_MTIMECMP
    li t1, -1
    sd t1, 0(t0)
    WAIT_MIP_CLEAR(MIP_MTIP)

    /* ---- Software interrupt from the CLINT ---- */
    TEST_CASE(1)
    CLEAR_IRQ_LOG
    li t0, MIP_MSIP
    csrs mie, t0
    li t0, CLINT_MSIP
    li t1, 1
    sw t1, 0(t0)
    WAIT_MIP_SET(MIP_MSIP)
    CHECK_IRQ_COUNT(0)          /* MIE = 0 */
    li t0, MSTATUS_MIE
    csrs mstatus, t0
2:  nop                         /* taken before this instruction */
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_M_SOFT))
    ld a0, irq_last_epc
    CHECK_EQ_ADDR(a0, 2b)
    TEST_CASE(2)                /* MSIP is read-only in mip; clearing msip clears it */
    li t0, MIP_MSIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_MSIP, MIP_MSIP)
    li t0, CLINT_MSIP
    lw a0, 0(t0)
    CHECK_EQ(a0, 1)
    sw zero, 0(t0)
    WAIT_MIP_CLEAR(MIP_MSIP)

    /* ---- Timer interrupt ---- */
    TEST_CASE(10)
    CLEAR_IRQ_LOG
    li t0, MIP_MTIP
    csrs mie, t0
    li t0, MSTATUS_MIE
    csrs mstatus, t0
    li t0, CLINT_MTIME
    ld t1, 0(t0)
    addi t1, t1, 100            /* a little in the future */
    li t0, CLINT_MTIMECMP
    sd t1, 0(t0)
1:  ld t2, irq_count            /* wait for it, however long it takes */
    beqz t2, 1b
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_M_TIMER))
    TEST_CASE(11)               /* MTIP stays pending until mtimecmp moves */
    csrr a0, mip
    CHECK_MASKED(a0, MIP_MTIP, MIP_MTIP)
    li t0, MIP_MTIP
    csrc mip, t0                /* read-only in mip */
    csrr a0, mip
    CHECK_MASKED(a0, MIP_MTIP, MIP_MTIP)
    li t0, CLINT_MTIME          /* mtime has passed mtimecmp */
    ld a0, 0(t0)
    li t0, CLINT_MTIMECMP
    ld a1, 0(t0)
    bgeu a0, a1, 1f
    FAIL_HERE(11)
1:  li t1, -1
    sd t1, 0(t0)
    WAIT_MIP_CLEAR(MIP_MTIP)
    TEST_CASE(12)               /* mtimecmp = 0: pending at once */
    li t0, CLINT_MTIMECMP
    sd zero, 0(t0)
    WAIT_MIP_SET(MIP_MTIP)
    li t0, CLINT_MTIMECMP
    li t1, -1
    sd t1, 0(t0)
    WAIT_MIP_CLEAR(MIP_MTIP)

    /* ---- External interrupt through the PLIC ---- */
    TEST_CASE(20)
    CLEAR_IRQ_LOG
    UART_IRQ_ON_M
    WAIT_MIP_SET(MIP_MEIP)
    li t0, MIP_MEIP
    csrc mip, t0                /* read-only in mip */
    csrr a0, mip
    CHECK_MASKED(a0, MIP_MEIP, MIP_MEIP)
    li t0, MIP_MEIP
    csrs mie, t0
    li t0, MSTATUS_MIE
    csrs mstatus, t0
    nop
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_M_EXT))
    TEST_CASE(21)               /* claim returns the UART's source; completing drops MEIP */
    UART_IRQ_OFF_M
    WAIT_MIP_CLEAR(MIP_MEIP)

    /* ---- The PLIC's SEIP line is not latched by csrs/csrc on mip ----
     * (Linux cannot clear a latched mip.SEIP from S-mode: it would take
     * external interrupts forever.) */
    TEST_CASE(25)
    UART_IRQ_ON_S
    WAIT_MIP_SET(MIP_SEIP)
    li t0, MIP_SSIP
    csrs mip, t0                /* as firmware posts an IPI while the line is high */
    csrc mip, t0
    UART_IRQ_OFF_S
    li t0, 1000                 /* the line drops (bounded: a latched bit never does) */
1:  csrr a0, mip
    andi a0, a0, MIP_SEIP
    beqz a0, 2f
    addi t0, t0, -1
    bnez t0, 1b
2:  csrr a0, mip
    CHECK_MASKED(a0, MIP_SEIP | MIP_SSIP, 0)
    TEST_CASE(26)               /* while software's own SEIP is set, the line does not clear it */
    li t0, MIP_SEIP
    csrs mip, t0
    UART_IRQ_ON_S
    UART_IRQ_OFF_S
    csrr a0, mip
    CHECK_MASKED(a0, MIP_SEIP, MIP_SEIP)
    li t0, MIP_SEIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_SEIP, 0)

    /* ---- Priority: all six pending at once, none delegated ---- */
    TEST_CASE(30)
    CLEAR_IRQ_LOG
    csrw mideleg, zero
    UART_IRQ_ON_M
    li t0, CLINT_MSIP
    li t1, 1
    sw t1, 0(t0)
    li t0, CLINT_MTIMECMP
    sd zero, 0(t0)
    li t0, MIP_SEIP | MIP_SSIP | MIP_STIP
    csrs mip, t0
    WAIT_MIP_SET(MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP)
    li t0, MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
    csrs mie, t0
    li t0, MSTATUS_MIE
    csrs mstatus, t0            /* all six are taken here, one after the other */
    nop
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    CHECK_IRQ_COUNT(6)
    CHECK_IRQ_LOG_SPEC_OR_QEMU(0, IRQ_LOG_M(IRQ_M_EXT), IRQ_LOG_M(IRQ_S_SOFT))
    CHECK_IRQ_LOG_SPEC_OR_QEMU(1, IRQ_LOG_M(IRQ_M_SOFT), IRQ_LOG_M(IRQ_M_SOFT))
    CHECK_IRQ_LOG_SPEC_OR_QEMU(2, IRQ_LOG_M(IRQ_M_TIMER), IRQ_LOG_M(IRQ_S_TIMER))
    CHECK_IRQ_LOG_SPEC_OR_QEMU(3, IRQ_LOG_M(IRQ_S_EXT), IRQ_LOG_M(IRQ_M_TIMER))
    CHECK_IRQ_LOG_SPEC_OR_QEMU(4, IRQ_LOG_M(IRQ_S_SOFT), IRQ_LOG_M(IRQ_S_EXT))
    CHECK_IRQ_LOG_SPEC_OR_QEMU(5, IRQ_LOG_M(IRQ_S_TIMER), IRQ_LOG_M(IRQ_M_EXT))
    UART_IRQ_OFF_M
    li t0, CLINT_MSIP
    sw zero, 0(t0)
    li t0, CLINT_MTIMECMP
    li t1, -1
    sd t1, 0(t0)
    li t0, MIP_SEIP | MIP_SSIP | MIP_STIP
    csrc mip, t0
    WAIT_MIP_CLEAR(MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP)

    /* ---- Lower modes: M interrupts are taken whatever MIE ---- */
    TEST_CASE(40)
    CLEAR_IRQ_LOG
    li t0, MIP_MSIP
    csrs mie, t0
    li t0, CLINT_MSIP
    li t1, 1
    sw t1, 0(t0)
    WAIT_MIP_SET(MIP_MSIP)
    li t0, MSTATUS_MPIE         /* MIE stays 0 after the mret into U */
    csrc mstatus, t0
    GOTO_U
1:  ld t2, irq_count            /* (U reads memory: PMP entry 0 allows it) */
    beqz t2, 1b
    GOTO_M
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_M_SOFT))
    li t0, CLINT_MSIP
    sw zero, 0(t0)
    WAIT_MIP_CLEAR(MIP_MSIP)

    /* ---- Vectored mtvec ---- */
    TEST_CASE(50)
    CLEAR_IRQ_LOG
    la t0, vector_hits
    sd zero, 0(t0)
    la t0, m_vector_table
    ori t0, t0, 1
    csrw mtvec, t0
    li t0, MIP_MSIP | MIP_SSIP
    csrs mie, t0
    li t0, MIP_SSIP
    csrs mip, t0
    li t0, CLINT_MSIP
    li t1, 1
    sw t1, 0(t0)
    WAIT_MIP_SET(MIP_MSIP)
    li t0, MSTATUS_MIE
    csrs mstatus, t0
    nop
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    ld a0, vector_hits
    CHECK_EQ(a0, (1 << IRQ_M_SOFT) | (1 << IRQ_S_SOFT))
    CHECK_IRQ_COUNT(2)
    TEST_CASE(51)               /* exceptions still go to BASE */
    EXPECT_ILLEGAL_WORD(0xc0001073)
    ld a0, vector_hits
    CHECK_EQ(a0, (1 << IRQ_M_SOFT) | (1 << IRQ_S_SOFT) | 1)
    la t0, m_trap_handler
    csrw mtvec, t0
    li t0, CLINT_MSIP
    sw zero, 0(t0)
    li t0, MIP_SSIP
    csrc mip, t0

    /* ---- mie: all six enable bits are writable ---- */
    TEST_CASE(60)
    li t0, MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP
    csrw mie, t0
    csrr a0, mie
    CHECK_MASKED(a0, MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP, MIP_MEIP | MIP_MSIP | MIP_MTIP | MIP_SEIP | MIP_SSIP | MIP_STIP)
    csrw mie, zero
    csrr a0, mie
    CHECK_EQ(a0, 0)

TEST_END

/* UART THR-empty interrupt on: source 10 at priority 1, enabled for one
 * context of hart 0 (t3 = its enable word, t4 = its threshold register, the
 * claim register 4 bytes after) with threshold 0; IER.ETBEI = 1 (the THR is
 * empty, so it fires). */
    .text
uart_irq_on:
    li t0, PLIC_PRIORITY(UART_IRQ)
    li t1, 1
    sw t1, 0(t0)
    sw zero, 0(t4)
    li t1, 1 << UART_IRQ
    sw t1, 0(t3)
    li t0, UART_IER
    li t1, 0x02
    sb t1, 0(t0)
    ret

/* Off again, as a driver would: claim (must be the UART's source), quiet the
 * device (IER = 0), complete; then disable the source (t3, t4 as above). */
uart_irq_off:
    lw t1, 4(t4)
    li t2, UART_IRQ
    beq t1, t2, 1f
    mv a2, t1
    mv a3, t2
    li a1, __LINE__
    j test_fail
1:  li t2, UART_IER
    sb zero, 0(t2)
    sw t1, 4(t4)
    sw zero, 0(t3)
    ret

/* Vectored mtvec: entry i sets bit i of vector_hits, then jumps to the common
 * handler. */
#define VECTOR_STUB(i)                          \
    .balign 4;                                  \
vec_stub_##i:                                   \
    csrrw sp, mscratch, sp;                     \
    sd t0, 0(sp);                               \
    sd t1, 8(sp);                               \
    la t0, vector_hits;                         \
    ld t1, 0(t0);                               \
    bseti t1, t1, i;                            \
    sd t1, 0(t0);                               \
    ld t0, 0(sp);                               \
    ld t1, 8(sp);                               \
    csrrw sp, mscratch, sp;                     \
    j m_trap_handler

    .balign 256
    .option push
    .option norvc
m_vector_table:
    j vec_stub_0
    j vec_stub_1
    j vec_stub_2
    j vec_stub_3
    j vec_stub_4
    j vec_stub_5
    j vec_stub_6
    j vec_stub_7
    j vec_stub_8
    j vec_stub_9
    j vec_stub_10
    j vec_stub_11
    .option pop
    VECTOR_STUB(0)
    VECTOR_STUB(1)
    VECTOR_STUB(2)
    VECTOR_STUB(3)
    VECTOR_STUB(4)
    VECTOR_STUB(5)
    VECTOR_STUB(6)
    VECTOR_STUB(7)
    VECTOR_STUB(8)
    VECTOR_STUB(9)
    VECTOR_STUB(10)
    VECTOR_STUB(11)

    .data
    .balign 8
vector_hits: .dword 0
