/* zicsr.S — the six Zicsr instructions and the machine's identification and
 * basic trap-setup CSRs:
 *   CSRRW/CSRRS/CSRRC/CSRRWI/CSRRSI/CSRRCI: old value to rd, new value
 *   written; rd = rs1 swaps; x0 / zero-immediate sources do not write (so they
 *   may read read-only CSRs), while a nonzero source register does;
 *   misa (MXL = 64, I M A F D C S U present), mvendorid / marchid / mimpid /
 *   mconfigptr readable, mhartid = 0; mstatus UXL = SXL = 64, XS = 0,
 *   little-endian (UBE/SBE/MBE = 0); sstatus as a restricted view of mstatus;
 *   mscratch / sscratch; mtvec and stvec direct and vectored modes; medeleg
 *   bit 11 (ecall from M) read-only zero; satp ignores writes of an
 *   unsupported mode. */
#include "test.h"

TEST_BEGIN(zicsr)

    /* ---- The instructions, on mscratch (restored at the end) ---- */
    csrr s11, mscratch
    TEST_CASE(1)                /* csrrw */
    li a1, 0x1111
    csrw mscratch, a1
    li a2, 0x2222
    csrrw a0, mscratch, a2
    CHECK_EQ(a0, 0x1111)
    csrr a0, mscratch
    CHECK_EQ(a0, 0x2222)
    TEST_CASE(2)                /* csrrw with rd = rs1: a swap */
    li a0, 0x3333
    csrrw a0, mscratch, a0
    CHECK_EQ(a0, 0x2222)
    csrr a0, mscratch
    CHECK_EQ(a0, 0x3333)
    TEST_CASE(3)                /* csrrs */
    li a1, 0xff00
    csrw mscratch, a1
    li a2, 0x00ff
    csrrs a0, mscratch, a2
    CHECK_EQ(a0, 0xff00)
    csrr a0, mscratch
    CHECK_EQ(a0, 0xffff)
    TEST_CASE(4)                /* csrrc */
    li a2, 0x0ff0
    csrrc a0, mscratch, a2
    CHECK_EQ(a0, 0xffff)
    csrr a0, mscratch
    CHECK_EQ(a0, 0xf00f)
    TEST_CASE(5)                /* csrrwi */
    csrrwi a0, mscratch, 31
    CHECK_EQ(a0, 0xf00f)
    csrr a0, mscratch
    CHECK_EQ(a0, 31)
    TEST_CASE(6)                /* csrrsi / csrrci */
    csrwi mscratch, 0x10
    csrrsi a0, mscratch, 0x05
    CHECK_EQ(a0, 0x10)
    csrrci a0, mscratch, 0x11
    CHECK_EQ(a0, 0x15)
    csrr a0, mscratch
    CHECK_EQ(a0, 0x04)
    TEST_CASE(7)                /* full 64 bits */
    li a1, 0x8000000000000001
    csrw mscratch, a1
    csrr a0, mscratch
    CHECK_EQ(a0, 0x8000000000000001)
    li a1, -1
    csrs mscratch, a1
    csrr a0, mscratch
    CHECK_EQ(a0, -1)
    csrc mscratch, a1
    csrr a0, mscratch
    CHECK_EQ(a0, 0)
    TEST_CASE(8)                /* rd = x0 forms write */
    li a1, 0x55
    csrrw x0, mscratch, a1
    csrrs x0, mscratch, 0
    csrr a0, mscratch
    CHECK_EQ(a0, 0x55)
    csrw mscratch, s11

    /* ---- Writes to read-only CSRs ---- */
    TEST_CASE(10)               /* csrrs / csrrc / csrrsi / csrrci with x0 or 0 only read */
    csrrs a0, mhartid, x0
    CHECK_EQ(a0, 0)
    csrrc a0, mhartid, x0
    CHECK_EQ(a0, 0)
    csrrsi a0, mhartid, 0
    CHECK_EQ(a0, 0)
    csrrci a0, mhartid, 0
    CHECK_EQ(a0, 0)
    csrrs a0, cycle, x0
    csrrs a0, mvendorid, x0
    TEST_CASE(11)               /* csrrw to a read-only CSR is illegal, even with x0 */
    EXPECT_ILLEGAL_WORD(0xf1401073)     /* csrrw x0, mhartid, x0 */
    TEST_CASE(12)               /* csrrsi with a nonzero immediate is a write */
    EXPECT_ILLEGAL_WORD(0xf140e073)     /* csrrsi x0, mhartid, 1 */
    TEST_CASE(13)               /* csrrwi with a zero immediate still writes */
    EXPECT_ILLEGAL_WORD(0xf1405073)     /* csrrwi x0, mhartid, 0 */
    /* csrrs with rs1 != x0 is a write even when rs1 holds zero (Zicsr:
     * "if rs1 = x0 the instruction will not write"; other registers do).
     * QEMU 7.2 deviation: it decides by the register's value, so no trap. */
    TEST_CASE(14)
    li a1, 0
    li t3, 0x5555
    TRAP_RUN(csrrs a0, mhartid, a1)
    ld t6, on_qemu_7_2
    bnez t6, 1f
    CHECK_TRAP(PRV_M, CAUSE_ILLEGAL_INSN)
    CHECK_EQ(t4, 0xf145a573)            /* csrrs a0, mhartid, a1 */
    j 2f
1:  CHECK_EQ(t3, 0x5555)                /* QEMU 7.2: executed as a read */
    li tp, 0
2:

    /* ---- Identification ---- */
    TEST_CASE(20)               /* misa: RV64, and IMAFDC + S + U */
    csrr a0, misa
    srli a1, a0, 62
    CHECK_EQ(a1, 2)
    /* bits: A 0, C 2, D 3, F 5, I 8, M 12, S 18, U 20 */
    li a2, (1 << 0) | (1 << 2) | (1 << 3) | (1 << 5) | (1 << 8) | (1 << 12) | (1 << 18) | (1 << 20)
    and a1, a0, a2
    CHECK_EQ_REG(a1, a2)
    /* E (the RV32E/64E base) is never set alongside I. */
    CHECK_MASKED(a0, 1 << 4, 0)
    TEST_CASE(21)               /* readable without trapping; values differ by implementation */
    csrr a0, mvendorid
    csrr a0, marchid
    csrr a0, mimpid
    csrr a0, mconfigptr
    csrr a0, mhartid
    CHECK_EQ(a0, 0)

    /* ---- mstatus fixed fields ---- */
    TEST_CASE(30)
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_UXL | MSTATUS_SXL, (2 << 32) | (2 << 34))
    CHECK_MASKED(a0, MSTATUS_XS | MSTATUS_UBE | MSTATUS_SBE | MSTATUS_MBE, 0)
    TEST_CASE(31)               /* UXL / SXL are not writable to other values */
    li a1, MSTATUS_UXL | MSTATUS_SXL
    csrc mstatus, a1
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_UXL | MSTATUS_SXL, (2 << 32) | (2 << 34))

    /* ---- sstatus is a view of mstatus ---- */
    TEST_CASE(40)
    li a1, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR
    csrs mstatus, a1
    csrr a0, sstatus
    CHECK_MASKED(a0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR)
    csrc sstatus, a1
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_SUM | MSTATUS_MXR, 0)
    TEST_CASE(41)               /* sstatus hides M-mode fields and cannot set them */
    li a1, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR
    csrs mstatus, a1
    csrr a0, sstatus
    CHECK_MASKED(a0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR, 0)
    csrc mstatus, a1
    csrs sstatus, a1
    csrr a0, mstatus
    CHECK_MASKED(a0, MSTATUS_MIE | MSTATUS_MPIE | MSTATUS_MPP | MSTATUS_MPRV | MSTATUS_TVM | MSTATUS_TW | MSTATUS_TSR, 0)
    TEST_CASE(42)               /* sstatus shows UXL, FS and SD */
    csrr a0, sstatus
    CHECK_MASKED(a0, MSTATUS_UXL, 2 << 32)
    li a1, MSTATUS_FS
    csrs mstatus, a1            /* FS = Dirty, so SD = 1 */
    csrr a0, sstatus
    CHECK_MASKED(a0, MSTATUS_FS | MSTATUS_SD, MSTATUS_FS | MSTATUS_SD)
    csrc mstatus, a1
    li a1, MSTATUS_FS_INITIAL
    csrs mstatus, a1

    /* ---- Scratch registers ---- */
    TEST_CASE(50)
    csrr s11, sscratch
    li a1, 0xfedcba9876543210
    csrw sscratch, a1
    csrr a0, sscratch
    CHECK_EQ_REG(a0, a1)
    csrw sscratch, s11

    /* ---- mtvec / stvec ---- */
    TEST_CASE(60)
    csrr s11, mtvec
    la a1, vector_table
    csrw mtvec, a1
    csrr a0, mtvec
    CHECK_EQ_REG(a0, a1)
    ori a1, a1, 1               /* vectored */
    csrw mtvec, a1
    csrr a0, mtvec
    CHECK_EQ_REG(a0, a1)
    csrw mtvec, s11
    TEST_CASE(61)
    csrr s11, stvec
    la a1, vector_table
    ori a1, a1, 1
    csrw stvec, a1
    csrr a0, stvec
    CHECK_EQ_REG(a0, a1)
    csrw stvec, s11
    TEST_CASE(62)               /* exceptions go to BASE even in vectored mode */
    la a1, vector_table
    ori a1, a1, 1
    csrw mtvec, a1
    EXPECT_ILLEGAL_WORD(0xc0001073)
    la a1, m_trap_handler
    csrw mtvec, a1

    /* ---- Delegation registers ---- */
    /* medeleg[11] (ecall from M) is read-only zero (privileged spec 1.12,
     * 3.1.8). QEMU 7.2 deviation: the bit is writable. */
    TEST_CASE(70)
    li a1, 1 << CAUSE_ECALL_M
    csrw medeleg, a1
    csrr a0, medeleg
    CHECK_EQ_SPEC_OR_QEMU72(a0, 0, 1 << CAUSE_ECALL_M)
    csrw medeleg, zero
    TEST_CASE(71)               /* the usual S-delegable causes are writable */
    li a1, (1 << CAUSE_BREAKPOINT) | (1 << CAUSE_ECALL_U) | (1 << CAUSE_LOAD_PAGE_FAULT) | (1 << CAUSE_ILLEGAL_INSN)
    csrw medeleg, a1
    csrr a0, medeleg
    CHECK_EQ_REG(a0, a1)
    csrw medeleg, zero
    TEST_CASE(72)               /* (QEMU also has H, whose VS bits read as one) */
    li a1, MIP_SSIP | MIP_STIP | MIP_SEIP
    csrw mideleg, a1
    csrr a0, mideleg
    CHECK_MASKED(a0, MIP_SSIP | MIP_STIP | MIP_SEIP, MIP_SSIP | MIP_STIP | MIP_SEIP)
    csrw mideleg, zero
    csrr a0, mideleg
    CHECK_MASKED(a0, MIP_SSIP | MIP_STIP | MIP_SEIP, 0)

    /* ---- satp: writing an unsupported mode has no effect ---- */
    TEST_CASE(80)
    csrw satp, zero
    li a1, (15 << 60) | 0x1234  /* mode 15 is reserved */
    csrw satp, a1
    csrr a0, satp
    CHECK_EQ(a0, 0)

TEST_END

/* Vector table for the vectored-mode test: exceptions use entry 0. */
    .text
    .balign 256
    .option push
    .option norvc               /* each entry is one 4-byte jump */
vector_table:
    j m_trap_handler
    .rept 15
    j unexpected_vector
    .endr
    .option pop
unexpected_vector:
    FAIL_HERE(0xbad)
