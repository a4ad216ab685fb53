/* delegation.S — medeleg / mideleg and the S-mode trap path:
 *   - delegated exceptions from U and S go to stvec with scause / stval / sepc,
 *     leave mepc / mcause untouched, set SPP / SPIE / SIE; SRET restores them;
 *   - exceptions in M-mode are never delegated;
 *   - ecall from U delegated, ecall from S not;
 *   - delegated interrupts: taken in S when SIE is set, never in M, always
 *     in U (whatever SIE); not delegated: taken in M from S and U whatever MIE;
 *   - sie / sip are views of mie / mip restricted to delegated bits; S-mode can
 *     set and clear SSIP;
 *   - vectored stvec for interrupts (BASE + 4 * cause), exceptions at BASE;
 *   - mstatus.TSR makes SRET in S-mode illegal (and not in M-mode). */
#include "test.h"

TEST_BEGIN(delegation)

    /* ---- Delegated exceptions ---- */
    li t0, (1 << CAUSE_ILLEGAL_INSN) | (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_ECALL_U) | (1 << CAUSE_LOAD_ACCESS)
    csrw medeleg, t0
    TEST_CASE(1)                /* from U: to S, with scause/stval/sepc */
    li t0, 0x1234
    csrw mepc, t0
    csrw mcause, zero
    GOTO_U
    EXPECT_S_TRAP_TVAL(CAUSE_ILLEGAL_INSN, 0xc0001073, .4byte 0xc0001073)
    TEST_CASE(2)
    EXPECT_S_TRAP(CAUSE_ECALL_U, ecall)
    TEST_CASE(3)
    li a1, 0x100
    EXPECT_S_TRAP_TVAL(CAUSE_LOAD_ACCESS, 0x100, lw a0, 0(a1))
    TEST_CASE(4)                /* a cause that is not delegated still goes to M */
    li a1, 0x100
    EXPECT_TRAP_TVAL(CAUSE_STORE_ACCESS, 0x100, sw a0, 0(a1))
    GOTO_M                      /* (ecall from U is delegated: the S handler forwards it) */
    TEST_CASE(6)                /* from S: delegated causes go to S too */
    GOTO_S
    EXPECT_S_TRAP_TVAL(CAUSE_ILLEGAL_INSN, 0xc0001073, .4byte 0xc0001073)
    EXPECT_S_TRAP(CAUSE_BREAKPOINT, ebreak)
    TEST_CASE(7)                /* ecall from S is not delegated */
    li t4, 0x5555
    EXPECT_TRAP_TVAL(CAUSE_ECALL_S, 0, ecall)
    GOTO_M
    TEST_CASE(8)                /* in M-mode nothing is delegated */
    EXPECT_TRAP(CAUSE_ILLEGAL_INSN, .4byte 0xc0001073)
    EXPECT_TRAP(CAUSE_BREAKPOINT, ebreak)

    /* ---- S trap entry / SRET side effects, with a probe handler ---- */
    TEST_CASE(10)               /* trap from U: SPP = 0, SPIE = old SIE (1), SIE = 0 */
    li t0, 1 << CAUSE_ILLEGAL_INSN
    csrw medeleg, t0
    la t0, s_probe_handler
    csrw stvec, t0
    li t0, MSTATUS_SIE
    csrs mstatus, t0            /* SIE = 1 (no S interrupt is enabled in sie) */
    GOTO_U
    .4byte 0xc0001073           /* illegal: the probe handler skips it */
    GOTO_M
    ld a0, s_probe_status
    CHECK_MASKED(a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE)
    ld a0, s_probe_cause
    CHECK_EQ(a0, CAUSE_ILLEGAL_INSN)
    ld a0, s_probe_tval
    CHECK_EQ(a0, 0xc0001073)
    TEST_CASE(11)               /* after SRET: SIE = SPIE = 1, SPIE = 1, SPP = U */
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE | MSTATUS_SIE)
    TEST_CASE(12)               /* trap from S: SPP = 1; SIE was 0 -> SPIE = 0 */
    li t0, MSTATUS_SIE
    csrc mstatus, t0
    GOTO_S
    .4byte 0xc0001073
    /* SRET went back to S (SPP = 1), and SPP is now U */
    csrr a0, sstatus
    CHECK_MASKED(a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPIE)
    GOTO_M
    ld a0, s_probe_status
    CHECK_MASKED(a0, MSTATUS_SPP | MSTATUS_SPIE | MSTATUS_SIE, MSTATUS_SPP)
    la t0, s_trap_handler
    csrw stvec, t0
    csrw medeleg, zero

    /* ---- sie / sip views ---- */
    TEST_CASE(20)               /* nothing delegated: sie and sip read zero, ignore writes */
    csrw mideleg, zero
    li t0, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrs mie, t0
    csrr a0, sie
    CHECK_MASKED(a0, MIP_SSIP | MIP_STIP | MIP_SEIP, 0)
    csrw mie, zero
    csrs sie, t0
    csrr a0, mie
    CHECK_EQ(a0, 0)
    csrs sip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_SSIP | MIP_STIP | MIP_SEIP, 0)
    TEST_CASE(21)               /* delegated: sie reads and writes mie's bits */
    li t0, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrw mideleg, t0
    csrw sie, t0
    csrr a0, mie
    CHECK_MASKED(a0, MIP_SSIP | MIP_STIP | MIP_SEIP | MIP_MSIP | MIP_MTIP | MIP_MEIP, MIP_SSIP | MIP_STIP | MIP_SEIP)
    li t0, MIP_STIP
    csrc mie, t0
    csrr a0, sie
    CHECK_MASKED(a0, MIP_SSIP | MIP_STIP | MIP_SEIP, MIP_SSIP | MIP_SEIP)
    csrw mie, zero
    TEST_CASE(22)               /* sip shows delegated pending bits; SSIP is writable */
    li t0, MIP_SSIP
    csrs sip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_SSIP, MIP_SSIP)
    csrr a0, sip
    CHECK_MASKED(a0, MIP_SSIP, MIP_SSIP)
    csrc sip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_SSIP, 0)
    TEST_CASE(23)               /* M-mode can set STIP and SEIP in mip (no Sstc here) */
    li t0, MIP_STIP | MIP_SEIP
    csrs mip, t0
    csrr a0, sip
    CHECK_MASKED(a0, MIP_STIP | MIP_SEIP, MIP_STIP | MIP_SEIP)
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_STIP | MIP_SEIP, 0)

    /* ---- Delegated interrupts ---- */
    TEST_CASE(30)               /* pending and enabled, delegated: never taken in M */
    CLEAR_IRQ_LOG
    li t0, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrw mideleg, t0
    li t0, MIP_SSIP
    csrs mie, t0
    csrs mip, t0
    li t0, MSTATUS_MIE | MSTATUS_SIE
    csrs mstatus, t0
    nop
    nop
    CHECK_IRQ_COUNT(0)
    TEST_CASE(31)               /* ... taken in S as soon as SIE allows */
    li t0, MSTATUS_SIE
    csrc mstatus, t0
    GOTO_S
    nop
    CHECK_IRQ_COUNT(0)          /* SIE = 0 in S: masked */
    csrsi sstatus, MSTATUS_SIE
    nop
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_S(IRQ_S_SOFT))
    csrr a0, sie                /* the handler disabled it */
    CHECK_MASKED(a0, MIP_SSIP, 0)
    li t0, MIP_SSIP
    csrc sip, t0
    TEST_CASE(32)               /* in U: taken whatever SIE */
    CLEAR_IRQ_LOG
    csrci sstatus, MSTATUS_SIE
    li t0, MIP_SSIP
    csrs sip, t0
    S_GOTO_U
    li t0, MIP_SSIP             /* (sie.SSIE is still clear) */
    nop
    CHECK_IRQ_COUNT(0)
    GOTO_M
    li t0, MIP_SSIP
    csrs mie, t0
    GOTO_U
    nop
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_S(IRQ_S_SOFT))
    GOTO_M
    li t0, MIP_SSIP
    csrc mip, t0

    TEST_CASE(33)               /* STIP and SEIP set by M, delegated, taken in S */
    CLEAR_IRQ_LOG
    li t0, MIP_STIP | MIP_SEIP
    csrs mie, t0
    csrs mip, t0
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    GOTO_S
    csrsi sstatus, MSTATUS_SIE
    nop
    nop
    csrci sstatus, MSTATUS_SIE
    CHECK_IRQ_COUNT(2)
    /* SEI before STI (QEMU: STI first, see test.h) */
    CHECK_IRQ_LOG_SPEC_OR_QEMU(0, IRQ_LOG_S(IRQ_S_EXT), IRQ_LOG_S(IRQ_S_TIMER))
    CHECK_IRQ_LOG_SPEC_OR_QEMU(1, IRQ_LOG_S(IRQ_S_TIMER), IRQ_LOG_S(IRQ_S_EXT))
    GOTO_M
    li t0, MIP_STIP | MIP_SEIP
    csrc mip, t0

    /* ---- Interrupts not delegated ---- */
    TEST_CASE(40)               /* from S: taken in M even with MIE = 0 */
    CLEAR_IRQ_LOG
    csrw mideleg, zero
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    li t0, MIP_SSIP
    csrs mie, t0
    csrs mip, t0
    nop
    CHECK_IRQ_COUNT(0)          /* M-mode with MIE = 0: masked */
    GOTO_S
    nop
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_S_SOFT))
    GOTO_M
    TEST_CASE(41)               /* from U likewise */
    CLEAR_IRQ_LOG
    li t0, MIP_STIP
    csrs mie, t0
    csrs mip, t0
    GOTO_U
    nop
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_S_TIMER))
    GOTO_M
    li t0, MIP_SSIP | MIP_STIP
    csrc mip, t0

    /* ---- Vectored stvec ---- */
    TEST_CASE(50)
    CLEAR_IRQ_LOG
    li t0, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrw mideleg, t0
    li t0, 1 << CAUSE_ILLEGAL_INSN
    csrw medeleg, t0
    la t0, s_vector_table
    ori t0, t0, 1
    csrw stvec, t0
    la t0, vector_hits
    sd zero, 0(t0)
    li t0, MIP_SEIP
    csrs mie, t0
    csrs mip, t0
    GOTO_S
    csrsi sstatus, MSTATUS_SIE
    nop
    csrci sstatus, MSTATUS_SIE
    /* The vector stub for cause 9 counted itself and chained to s_trap_handler. */
    ld a0, vector_hits
    CHECK_EQ(a0, 1 << IRQ_S_EXT)
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_S(IRQ_S_EXT))
    TEST_CASE(51)               /* exceptions use BASE */
    EXPECT_S_TRAP(CAUSE_ILLEGAL_INSN, .4byte 0xc0001073)
    ld a0, vector_hits
    CHECK_EQ(a0, (1 << IRQ_S_EXT) | 1)
    GOTO_M
    li t0, MIP_SEIP
    csrc mip, t0
    la t0, s_trap_handler
    csrw stvec, t0
    csrw medeleg, zero
    csrw mideleg, zero

    /* ---- TSR ---- */
    TEST_CASE(60)
    li t0, MSTATUS_TSR
    csrs mstatus, t0
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x10200073)     /* sret */
    GOTO_M
    TEST_CASE(61)               /* SRET in M-mode is unaffected by TSR */
    li t0, MSTATUS_SPP
    csrs mstatus, t0
    la t0, 1f
    csrw sepc, t0
    sret                        /* to S */
1:  GOTO_M
    li t0, MSTATUS_TSR
    csrc mstatus, t0
    TEST_CASE(62)               /* SRET in S-mode without TSR is fine (covered above); in U illegal */
    GOTO_U
    EXPECT_ILLEGAL_WORD(0x10200073)
    GOTO_M

TEST_END

/* Records sstatus, scause, stval; skips the 4-byte trapping instruction. */
    .text
    .balign 4
s_probe_handler:
    csrrw sp, sscratch, sp
    sd t0, 0(sp)
    sd t1, 8(sp)
    la t0, s_probe_status
    csrr t1, sstatus
    sd t1, 0(t0)
    csrr t1, scause
    sd t1, 8(t0)
    csrr t1, stval
    sd t1, 16(t0)
    csrr t1, sepc
    addi t1, t1, 4
    csrw sepc, t1
    ld t0, 0(sp)
    ld t1, 8(sp)
    csrrw sp, sscratch, sp
    sret

/* Vectored stvec: entry i sets bit i of vector_hits, then jumps to the common
 * S handler (which logs interrupts and records exceptions). */
#define VECTOR_STUB(i)                          \
    .balign 4;                                  \
vec_stub_##i:                                   \
    csrrw sp, sscratch, sp;                     \
    sd t0, 0(sp);                               \
    sd t1, 8(sp);                               \
    la t0, vector_hits;                         \
    ld t1, 0(t0);                               \
    bseti t1, t1, i;                            \
    sd t1, 0(t0);                               \
    ld t0, 0(sp);                               \
    ld t1, 8(sp);                               \
    csrrw sp, sscratch, sp;                     \
    j s_trap_handler

    .balign 256
    .option push
    .option norvc               /* each entry is one 4-byte jump */
s_vector_table:
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
s_probe_status: .dword 0
s_probe_cause:  .dword 0
s_probe_tval:   .dword 0
vector_hits:    .dword 0
