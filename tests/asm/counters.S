/* counters.S — Zicntr and Zihpm:
 *   - cycle / time / instret and mcycle / minstret are readable and advance
 *     (never how fast: time is only awaited to change), time agrees in order
 *     with the CLINT's mtime, mcycle / minstret are writable;
 *   - mcountinhibit freezes mcycle and minstret;
 *   - mcounteren gates S and U, scounteren additionally gates U (CY, TM, IR,
 *     HPM bits), with illegal instruction when denied;
 *   - mhpmcounter3-31, mhpmevent3-31 and hpmcounter3-31 read as zero.
 *     QEMU deviation (7.2 and 10.0): with its 16 programmable counters, numbers
 *     19-31 raise illegal instruction instead (the privileged spec defines all
 *     29; unimplemented ones are read-only zero). */
#include "test.h"

/* The CSR reads zero; on QEMU, if qemu_traps, it may raise illegal
 * instruction instead. Uses local labels 4 and 5. */
#define CHECK_HPM_READS_ZERO(n, csr, qemu_traps) \
    TEST_CASE(n);                               \
    li a0, 0x5555;                              \
    TRAP_RUN(csrr a0, csr);                     \
    li t6, PRV_M;                               \
    bne tp, t6, 5f;                             \
    li tp, 0;                                   \
    CHECK_EQ(t3, CAUSE_ILLEGAL_INSN);           \
    li t5, qemu_traps;                          \
    ld t6, on_qemu;                             \
    and t5, t5, t6;                             \
    CHECK_EQ(t5, 1);                            \
    j 4f;                                       \
5:  li tp, 0;                                   \
    CHECK_EQ(a0, 0);                            \
4:

TEST_BEGIN(counters)

    /* ---- The counters advance ---- */
    TEST_CASE(1)                /* instret: at least the instructions in between */
    csrr a0, instret
    nop
    nop
    nop
    nop
    csrr a1, instret
    bgtu a1, a0, 1f
    FAIL_HERE(1)
1:  sub a2, a1, a0
    ld t0, on_qemu_7_2          /* QEMU 7.2 (without -icount) counts host time, */
    bnez t0, 2f                 /* so only the order can be checked there */
    li t0, 4
    bgeu a2, t0, 2f
    mv a3, t0
    li a1, __LINE__
    j test_fail
2:
    TEST_CASE(2)                /* cycle */
    csrr a0, cycle
    li t0, 10
3:  addi t0, t0, -1
    bnez t0, 3b
    csrr a1, cycle
    bgtu a1, a0, 1f
    FAIL_HERE(2)
1:
    TEST_CASE(3)                /* mcycle / minstret are the same counters */
    csrr a0, mcycle
    csrr a1, cycle
    bgeu a1, a0, 1f
    FAIL_HERE(3)
1:  csrr a0, minstret
    csrr a1, instret
    bgeu a1, a0, 1f
    FAIL_HERE(4)
1:
    TEST_CASE(4)                /* time eventually changes, and never goes back */
    csrr a0, time
1:  csrr a1, time
    beq a1, a0, 1b
    bgtu a1, a0, 1f
    FAIL_HERE(5)
1:
    TEST_CASE(5)                /* time, then mtime, then time: in order */
    li t0, CLINT_MTIME
    csrr a0, time
    ld a1, 0(t0)
    csrr a2, time
    bgeu a1, a0, 1f
    FAIL_HERE(6)
1:  bgeu a2, a1, 1f
    FAIL_HERE(7)
1:
    TEST_CASE(6)                /* mcycle and minstret are writable */
    li a1, 1 << 40
    csrw minstret, a1
    csrr a0, minstret
    bgeu a0, a1, 1f
    FAIL_HERE(8)
1:  li a2, 1 << 41
    bltu a0, a2, 1f
    FAIL_HERE(9)
1:  csrw mcycle, a1
    csrr a0, mcycle
    bgeu a0, a1, 1f
    FAIL_HERE(10)
1:  bltu a0, a2, 1f
    FAIL_HERE(11)
1:
    TEST_CASE(7)                /* time is read-only */
    EXPECT_ILLEGAL_WORD(0xc0101073)     /* csrw time, zero */

    /* ---- mcountinhibit ---- */
    TEST_CASE(10)
    li t0, 0x5                  /* CY and IR */
    csrw mcountinhibit, t0
    csrr a0, minstret
    csrr a2, mcycle
    nop
    nop
    csrr a1, minstret
    csrr a3, mcycle
    CHECK_EQ_REG(a0, a1)
    CHECK_EQ_REG(a2, a3)
    CHECK_CSR(mcountinhibit, 0x5)
    csrw mcountinhibit, zero
    csrr a0, minstret
    nop
    csrr a1, minstret
    bgtu a1, a0, 1f
    FAIL_HERE(12)
1:

    /* ---- Access from S and U ---- */
    TEST_CASE(20)               /* mcounteren = 0: S and U may not read */
    csrw mcounteren, zero
    csrw scounteren, zero
    GOTO_S
    EXPECT_ILLEGAL_WORD(0xc0002573)     /* csrr a0, cycle */
    EXPECT_ILLEGAL_WORD(0xc0102573)     /* csrr a0, time */
    EXPECT_ILLEGAL_WORD(0xc0202573)     /* csrr a0, instret */
    EXPECT_ILLEGAL_WORD(0xc0302573)     /* csrr a0, hpmcounter3 */
    S_GOTO_U
    EXPECT_ILLEGAL_WORD(0xc0002573)
    EXPECT_ILLEGAL_WORD(0xc0102573)
    EXPECT_ILLEGAL_WORD(0xc0202573)
    GOTO_M
    TEST_CASE(21)               /* mcounteren = CY|TM|IR|HPM3: S may, U may not */
    li t0, 0xf
    csrw mcounteren, t0
    CHECK_CSR(mcounteren, 0xf)
    GOTO_S
    csrr a0, cycle
    csrr a0, time
    csrr a0, instret
    csrr a0, hpmcounter3
    CHECK_EQ(a0, 0)
    S_GOTO_U
    EXPECT_ILLEGAL_WORD(0xc0002573)
    EXPECT_ILLEGAL_WORD(0xc0102573)
    EXPECT_ILLEGAL_WORD(0xc0202573)
    GOTO_M
    TEST_CASE(22)               /* scounteren too: U may, bit by bit */
    li t0, 0x5                  /* CY and IR, not TM */
    csrw scounteren, t0
    CHECK_CSR(scounteren, 0x5)
    GOTO_U
    csrr a0, cycle
    csrr a0, instret
    EXPECT_ILLEGAL_WORD(0xc0102573)     /* time */
    GOTO_M
    TEST_CASE(23)               /* a bit clear in mcounteren denies U even if set in scounteren */
    li t0, 0x2
    csrw mcounteren, t0
    li t0, 0x7
    csrw scounteren, t0
    GOTO_U
    csrr a0, time
    EXPECT_ILLEGAL_WORD(0xc0002573)     /* cycle */
    GOTO_M
    csrw mcounteren, zero
    csrw scounteren, zero

    /* ---- Hardware performance monitor: reads as zero ---- */
    CHECK_HPM_READS_ZERO(103, mhpmcounter3, 0)
    CHECK_HPM_READS_ZERO(104, mhpmcounter4, 0)
    CHECK_HPM_READS_ZERO(105, mhpmcounter5, 0)
    CHECK_HPM_READS_ZERO(106, mhpmcounter6, 0)
    CHECK_HPM_READS_ZERO(107, mhpmcounter7, 0)
    CHECK_HPM_READS_ZERO(108, mhpmcounter8, 0)
    CHECK_HPM_READS_ZERO(109, mhpmcounter9, 0)
    CHECK_HPM_READS_ZERO(110, mhpmcounter10, 0)
    CHECK_HPM_READS_ZERO(111, mhpmcounter11, 0)
    CHECK_HPM_READS_ZERO(112, mhpmcounter12, 0)
    CHECK_HPM_READS_ZERO(113, mhpmcounter13, 0)
    CHECK_HPM_READS_ZERO(114, mhpmcounter14, 0)
    CHECK_HPM_READS_ZERO(115, mhpmcounter15, 0)
    CHECK_HPM_READS_ZERO(116, mhpmcounter16, 0)
    CHECK_HPM_READS_ZERO(117, mhpmcounter17, 0)
    CHECK_HPM_READS_ZERO(118, mhpmcounter18, 0)
    CHECK_HPM_READS_ZERO(119, mhpmcounter19, 1)
    CHECK_HPM_READS_ZERO(120, mhpmcounter20, 1)
    CHECK_HPM_READS_ZERO(121, mhpmcounter21, 1)
    CHECK_HPM_READS_ZERO(122, mhpmcounter22, 1)
    CHECK_HPM_READS_ZERO(123, mhpmcounter23, 1)
    CHECK_HPM_READS_ZERO(124, mhpmcounter24, 1)
    CHECK_HPM_READS_ZERO(125, mhpmcounter25, 1)
    CHECK_HPM_READS_ZERO(126, mhpmcounter26, 1)
    CHECK_HPM_READS_ZERO(127, mhpmcounter27, 1)
    CHECK_HPM_READS_ZERO(128, mhpmcounter28, 1)
    CHECK_HPM_READS_ZERO(129, mhpmcounter29, 1)
    CHECK_HPM_READS_ZERO(130, mhpmcounter30, 1)
    CHECK_HPM_READS_ZERO(131, mhpmcounter31, 1)

    CHECK_HPM_READS_ZERO(203, mhpmevent3, 0)
    CHECK_HPM_READS_ZERO(204, mhpmevent4, 0)
    CHECK_HPM_READS_ZERO(205, mhpmevent5, 0)
    CHECK_HPM_READS_ZERO(206, mhpmevent6, 0)
    CHECK_HPM_READS_ZERO(207, mhpmevent7, 0)
    CHECK_HPM_READS_ZERO(208, mhpmevent8, 0)
    CHECK_HPM_READS_ZERO(209, mhpmevent9, 0)
    CHECK_HPM_READS_ZERO(210, mhpmevent10, 0)
    CHECK_HPM_READS_ZERO(211, mhpmevent11, 0)
    CHECK_HPM_READS_ZERO(212, mhpmevent12, 0)
    CHECK_HPM_READS_ZERO(213, mhpmevent13, 0)
    CHECK_HPM_READS_ZERO(214, mhpmevent14, 0)
    CHECK_HPM_READS_ZERO(215, mhpmevent15, 0)
    CHECK_HPM_READS_ZERO(216, mhpmevent16, 0)
    CHECK_HPM_READS_ZERO(217, mhpmevent17, 0)
    CHECK_HPM_READS_ZERO(218, mhpmevent18, 0)
    CHECK_HPM_READS_ZERO(219, mhpmevent19, 1)
    CHECK_HPM_READS_ZERO(220, mhpmevent20, 1)
    CHECK_HPM_READS_ZERO(221, mhpmevent21, 1)
    CHECK_HPM_READS_ZERO(222, mhpmevent22, 1)
    CHECK_HPM_READS_ZERO(223, mhpmevent23, 1)
    CHECK_HPM_READS_ZERO(224, mhpmevent24, 1)
    CHECK_HPM_READS_ZERO(225, mhpmevent25, 1)
    CHECK_HPM_READS_ZERO(226, mhpmevent26, 1)
    CHECK_HPM_READS_ZERO(227, mhpmevent27, 1)
    CHECK_HPM_READS_ZERO(228, mhpmevent28, 1)
    CHECK_HPM_READS_ZERO(229, mhpmevent29, 1)
    CHECK_HPM_READS_ZERO(230, mhpmevent30, 1)
    CHECK_HPM_READS_ZERO(231, mhpmevent31, 1)

    CHECK_HPM_READS_ZERO(303, hpmcounter3, 0)
    CHECK_HPM_READS_ZERO(304, hpmcounter4, 0)
    CHECK_HPM_READS_ZERO(305, hpmcounter5, 0)
    CHECK_HPM_READS_ZERO(306, hpmcounter6, 0)
    CHECK_HPM_READS_ZERO(307, hpmcounter7, 0)
    CHECK_HPM_READS_ZERO(308, hpmcounter8, 0)
    CHECK_HPM_READS_ZERO(309, hpmcounter9, 0)
    CHECK_HPM_READS_ZERO(310, hpmcounter10, 0)
    CHECK_HPM_READS_ZERO(311, hpmcounter11, 0)
    CHECK_HPM_READS_ZERO(312, hpmcounter12, 0)
    CHECK_HPM_READS_ZERO(313, hpmcounter13, 0)
    CHECK_HPM_READS_ZERO(314, hpmcounter14, 0)
    CHECK_HPM_READS_ZERO(315, hpmcounter15, 0)
    CHECK_HPM_READS_ZERO(316, hpmcounter16, 0)
    CHECK_HPM_READS_ZERO(317, hpmcounter17, 0)
    CHECK_HPM_READS_ZERO(318, hpmcounter18, 0)
    CHECK_HPM_READS_ZERO(319, hpmcounter19, 1)
    CHECK_HPM_READS_ZERO(320, hpmcounter20, 1)
    CHECK_HPM_READS_ZERO(321, hpmcounter21, 1)
    CHECK_HPM_READS_ZERO(322, hpmcounter22, 1)
    CHECK_HPM_READS_ZERO(323, hpmcounter23, 1)
    CHECK_HPM_READS_ZERO(324, hpmcounter24, 1)
    CHECK_HPM_READS_ZERO(325, hpmcounter25, 1)
    CHECK_HPM_READS_ZERO(326, hpmcounter26, 1)
    CHECK_HPM_READS_ZERO(327, hpmcounter27, 1)
    CHECK_HPM_READS_ZERO(328, hpmcounter28, 1)
    CHECK_HPM_READS_ZERO(329, hpmcounter29, 1)
    CHECK_HPM_READS_ZERO(330, hpmcounter30, 1)
    CHECK_HPM_READS_ZERO(331, hpmcounter31, 1)

TEST_END
