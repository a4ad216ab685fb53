/* traps.S — synchronous exceptions taken in M-mode and what they record:
 * illegal instruction (tval = the instruction's bits, 32- and 16-bit), ebreak and
 * c.ebreak (tval = pc or 0), load / store / AMO / LR / SC / fetch access faults on an
 * address where nothing is mapped (tval = the address), ecall from U, S and M
 * (tval = 0), the CSR side effects of taking a trap and of MRET (MIE -> MPIE,
 * MPP, MPRV cleared when returning below M), mepc holding a written address,
 * and that a faulting load leaves its destination register unchanged.
 * Misaligned accesses are in misaligned.S, page faults in sv39.S. */
#include "test.h"

/* Nothing is mapped at physical address 0x100 on QEMU's virt board (it lies in
 * the reserved debug region below the boot ROM at 0x1000). */
#define UNMAPPED 0x100

TEST_BEGIN(traps)

    /* ---- Illegal instruction: tval = instruction bits ---- */
    TEST_CASE(1)                /* unimp = csrrw x0, cycle, x0: write to a read-only CSR */
    EXPECT_ILLEGAL_WORD(0xc0001073)
    TEST_CASE(2)                /* OP with funct7 = 0x7f: reserved */
    EXPECT_ILLEGAL_WORD(0xfe000033)
    TEST_CASE(3)                /* csrw mhartid, a0: read-only CSR */
    EXPECT_ILLEGAL_WORD(0xf1451073)
    TEST_CASE(4)                /* csrr a0, 0x7ff: unimplemented custom CSR */
    EXPECT_ILLEGAL_WORD(0x7ff02573)
    TEST_CASE(5)                /* c.unimp (16 zero bits): tval = 0 */
    li t4, 0x5555
    EXPECT_TRAP_TVAL(CAUSE_ILLEGAL_INSN, 0, .2byte 0x0000)
    TEST_CASE(6)                /* reserved compressed: c.lui a0, 0 — tval = the 16 bits */
    EXPECT_TRAP_TVAL(CAUSE_ILLEGAL_INSN, 0x6501, .2byte 0x6501)
    TEST_CASE(7)                /* a 32-bit illegal instruction at a 2-byte aligned pc */
    .option push
    .option rvc
    .balign 4
    c.nop
    EXPECT_ILLEGAL_WORD(0xfe000033)
    .option pop

    /* ---- Breakpoints: tval = pc, or zero ----
     * Privileged spec 1.12 (3.1.16) lets an EBREAK write mtval with zero or
     * with the breakpoint's address. Rewind writes the pc; QEMU 7.2 writes 0
     * (it sets tval only for faults and illegal instructions). */
    TEST_CASE(10)
    li t4, 0x5555
    TRAP_RUN(.option push; .option norvc; ebreak; .option pop)
    CHECK_TRAP(PRV_M, CAUSE_BREAKPOINT)
    beqz t4, 1f
    CHECK_EQ_ADDR(t4, 8b)
1:
    TEST_CASE(11)
    li t4, 0x5555
    TRAP_RUN(c.ebreak)
    CHECK_TRAP(PRV_M, CAUSE_BREAKPOINT)
    beqz t4, 1f
    CHECK_EQ_ADDR(t4, 8b)
1:

    /* ---- Access faults: tval = the address ---- */
    TEST_CASE(20)
    li a1, UNMAPPED
    li a0, 0x1234
    EXPECT_TRAP_TVAL(CAUSE_LOAD_ACCESS, UNMAPPED, ld a0, 0(a1))
    CHECK_EQ(a0, 0x1234)        /* destination unchanged */
    TEST_CASE(21)
    EXPECT_TRAP_TVAL(CAUSE_LOAD_ACCESS, UNMAPPED + 7, lbu a0, 7(a1))
    CHECK_EQ(a0, 0x1234)
    TEST_CASE(22)
    EXPECT_TRAP_TVAL(CAUSE_STORE_ACCESS, UNMAPPED + 8, sw a0, 8(a1))
    /* AMOs report store/AMO access faults. QEMU 7.2 deviation: it raises a
     * load access fault (its atomic helpers fail on the load half first). */
    TEST_CASE(23)
    EXPECT_AMO_FAULT(CAUSE_STORE_ACCESS, CAUSE_LOAD_ACCESS, UNMAPPED, amoadd.d a0, a0, (a1))
    CHECK_EQ(a0, 0x1234)
    TEST_CASE(24)
    EXPECT_AMO_FAULT(CAUSE_STORE_ACCESS, CAUSE_LOAD_ACCESS, UNMAPPED, amoswap.w.aqrl a0, a0, (a1))
    TEST_CASE(25)
    EXPECT_TRAP_TVAL(CAUSE_LOAD_ACCESS, UNMAPPED, lr.d a0, (a1))
    /* (No SC case: an SC without a reservation fails without accessing memory
     * on QEMU, and whether a failing SC reports access faults is not
     * specified.) */
    TEST_CASE(27)
    EXPECT_TRAP_TVAL(CAUSE_LOAD_ACCESS, UNMAPPED, fld fa0, 0(a1))
    TEST_CASE(28)
    EXPECT_TRAP_TVAL(CAUSE_STORE_ACCESS, UNMAPPED, fsw fa0, 0(a1))
    TEST_CASE(29)               /* fetch: epc = tval = the target */
    TRAP_RUN(jalr ra, 0(a1))
    CHECK_EQ(tp, PRV_M)
    li tp, 0
    CHECK_EQ(t3, CAUSE_FETCH_ACCESS)
    CHECK_EQ(t4, UNMAPPED)
    CHECK_EQ(t5, UNMAPPED)

    /* ---- ecall from M, S and U: tval = 0, epc = the ecall ---- */
    TEST_CASE(30)
    li t4, 0x5555
    EXPECT_TRAP_TVAL(CAUSE_ECALL_M, 0, ecall)
    TEST_CASE(31)
    GOTO_S
    li t4, 0x5555
    EXPECT_TRAP_TVAL(CAUSE_ECALL_S, 0, ecall)
    GOTO_M
    TEST_CASE(32)
    GOTO_U
    li t4, 0x5555
    EXPECT_TRAP_TVAL(CAUSE_ECALL_U, 0, ecall)
    /* Illegal instructions seen from U: M-mode CSR, sret, mret */
    TEST_CASE(33)
    EXPECT_ILLEGAL_WORD(0x30002573)     /* csrr a0, mstatus */
    TEST_CASE(34)
    EXPECT_ILLEGAL_WORD(0x10200073)     /* sret */
    TEST_CASE(35)
    EXPECT_ILLEGAL_WORD(0x30200073)     /* mret */
    TEST_CASE(36)
    EXPECT_ILLEGAL_WORD(0x10002573)     /* csrr a0, sstatus */
    GOTO_M
    TEST_CASE(37)               /* from S: mret and M-mode CSRs are illegal */
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x30200073)     /* mret */
    EXPECT_ILLEGAL_WORD(0x34102573)     /* csrr a0, mepc */
    GOTO_M

    /* ---- Trap entry and MRET side effects (probe handler) ---- */
    TEST_CASE(40)               /* MIE -> MPIE, MIE = 0, MPP = M; then MRET restores */
    la t0, probe_handler
    csrw mtvec, t0
    li t0, MSTATUS_MIE
    csrs mstatus, t0            /* no interrupt is enabled in mie */
    ecall
    la t0, m_trap_handler
    csrw mtvec, t0
    ld a0, probe_mstatus
    CHECK_MASKED(a0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP, MSTATUS_MPIE | MSTATUS_MPP_M)
    ld a0, probe_mcause
    CHECK_EQ(a0, CAUSE_ECALL_M)
    /* After MRET: MIE = old MPIE = 1, MPIE = 1, MPP = U (least privileged). */
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP, MSTATUS_MIE | MSTATUS_MPIE)
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    TEST_CASE(41)               /* trap from U: MPP = U, MPIE = old MIE = 0 */
    la t0, probe_handler
    csrw mtvec, t0
    li t0, MSTATUS_MPIE
    csrc mstatus, t0
    GOTO_U
    ecall                       /* probe_handler returns to M-mode */
    la t0, m_trap_handler
    csrw mtvec, t0
    ld a0, probe_mstatus
    CHECK_MASKED(a0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP, 0)
    ld a0, probe_mcause
    CHECK_EQ(a0, CAUSE_ECALL_U)
    /* MRET and SRET to a mode below M clear MPRV (privileged spec 1.12, 3.1.6.1).
     * QEMU 7.2 deviation: it leaves MPRV set. */
    TEST_CASE(42)
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    GOTO_S
    GOTO_M
    csrr a0, mstatus
    li t0, MSTATUS_MPRV
    and a0, a0, t0
    CHECK_EQ_SPEC_OR_QEMU72(a0, 0, MSTATUS_MPRV)
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    TEST_CASE(43)               /* MRET to M keeps MPRV */
    li t0, MSTATUS_MPRV | MSTATUS_MPP
    csrs mstatus, t0            /* MPP = M, so MPRV has no effect on M-mode */
    la t0, 1f
    csrw mepc, t0
    mret
1:  csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_MPRV, MSTATUS_MPRV)
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    /* mepc[0] is always zero (privileged spec 1.12, 3.1.14). QEMU (7.2
     * and 10.0) deviation: it keeps bit 0 as written. */
    TEST_CASE(44)
    li a0, 0x80001235
    csrw mepc, a0
    csrr a1, mepc
    CHECK_EQ_SPEC_OR_QEMU(a1, 0x80001234, 0x80001235)
    li a0, 0x80001232
    csrw mepc, a0
    csrr a1, mepc
    CHECK_EQ(a1, 0x80001232)
    TEST_CASE(45)               /* mcause and mtval are writable */
    li a0, 0x8000000000000007
    csrw mcause, a0
    csrr a1, mcause
    CHECK_EQ_REG(a1, a0)
    li a0, 0x123456789
    csrw mtval, a0
    csrr a1, mtval
    CHECK_EQ_REG(a1, a0)

    /* ---- Registers other than the trap CSRs survive a trap ---- */
    TEST_CASE(50)
    li s0, 0x1111
    li s1, 0x2222
    li a6, 0x3333
    EXPECT_TRAP(CAUSE_ILLEGAL_INSN, .4byte 0xc0001073)
    CHECK_EQ(s0, 0x1111)
    CHECK_EQ(s1, 0x2222)
    CHECK_EQ(a6, 0x3333)

TEST_END

/* Records mstatus, mcause, mepc, mtval; returns to M-mode after the ecall. */
    .text
    .balign 4
probe_handler:
    csrrw sp, mscratch, sp
    sd t0, 0(sp)
    la t0, probe_mstatus
    csrr t1, mstatus            /* t1 is clobbered: callers do not use it */
    sd t1, 0(t0)
    csrr t1, mcause
    sd t1, 8(t0)
    csrr t1, mepc
    sd t1, 16(t0)
    csrr t1, mtval
    sd t1, 24(t0)
    csrr t1, mepc
    addi t1, t1, 4
    csrw mepc, t1
    li t1, MSTATUS_MPP
    csrs mstatus, t1
    ld t0, 0(sp)
    csrrw sp, mscratch, sp
    mret

    .data
    .balign 8
probe_mstatus: .dword 0
probe_mcause:  .dword 0
probe_mepc:    .dword 0
probe_mtval:   .dword 0
