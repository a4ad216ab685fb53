/* rv64i.S — every RV64I base instruction except ecall/ebreak (traps.S):
 * LUI AUIPC JAL JALR, the six branches, all loads and stores, the
 * register-immediate and register-register ALU operations and their W forms,
 * FENCE, FENCE.TSO, PAUSE (Zihintpause) and FENCE.I (Zifencei) with
 * self-modifying code. Edge values: sign boundaries, shift amounts that use
 * only the low 5/6 bits, rd = rs1, rd = rs2, rd = x0. */
#include "test.h"

/* Branch taken / not taken. */
#define TEST_BR_TAKEN(n, inst, v1, v2)          \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    li a2, v2;                                  \
    inst a1, a2, 1f;                            \
    FAIL_HERE(0);                               \
1:

#define TEST_BR_NOT_TAKEN(n, inst, v1, v2)      \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    li a2, v2;                                  \
    inst a1, a2, 1f;                            \
    j 2f;                                       \
1:  FAIL_HERE(0);                               \
2:

/* Load from `data` + off. */
#define TEST_LOAD(n, inst, result, off)         \
    TEST_CASE(n);                               \
    la a1, data;                                \
    inst a0, off(a1);                           \
    CHECK_EQ(a0, result)

TEST_BEGIN(rv64i)

    /* ---- LUI / AUIPC ---- */
    TEST_CASE(1)
    lui a0, 0
    CHECK_EQ(a0, 0)
    TEST_CASE(2)
    lui a0, 0x7ffff
    CHECK_EQ(a0, 0x7ffff000)
    TEST_CASE(3)
    lui a0, 0x80000             /* sign-extended on RV64 */
    CHECK_EQ(a0, 0xffffffff80000000)
    TEST_CASE(4)
    lui a0, 0xfffff
    CHECK_EQ(a0, 0xfffffffffffff000)

    TEST_CASE(5)
1:  auipc a0, 0
    la a1, 1b
    CHECK_EQ_REG(a0, a1)
    TEST_CASE(6)
1:  auipc a0, 1
    la a1, 1b
    li a2, 0x1000
    add a1, a1, a2
    CHECK_EQ_REG(a0, a1)
    TEST_CASE(7)
1:  auipc a0, 0x80000           /* pc - 2^31 */
    la a1, 1b
    li a2, 0x80000000
    sub a1, a1, a2
    CHECK_EQ_REG(a0, a1)

    /* ---- JAL / JALR ---- */
    TEST_CASE(10)
    li ra, 0
    jal ra, 1f
2:  FAIL_HERE(0)
1:  CHECK_EQ_ADDR(ra, 2b)
    TEST_CASE(11)               /* backward jump, rd = x0 */
    li a0, 0
    j 3f
1:  li a0, 1
    j 4f
3:  jal x0, 1b
    FAIL_HERE(0)
4:  CHECK_EQ(a0, 1)
    TEST_CASE(12)               /* jalr clears bit 0 of the target */
    la a1, 1f
    addi a1, a1, 1
    jalr t0, 0(a1)
2:  FAIL_HERE(0)
    .balign 4
1:  CHECK_EQ_ADDR(t0, 2b)
    TEST_CASE(13)               /* jalr with an offset, rd = rs1 */
    la a1, 1f
    addi a1, a1, -16
    jalr a1, 16(a1)
2:  FAIL_HERE(0)
1:  CHECK_EQ_ADDR(a1, 2b)
    TEST_CASE(14)               /* jalr negative offset, rd = x0 */
    la a1, 1f
    addi a1, a1, 32
    jalr x0, -32(a1)
    FAIL_HERE(0)
1:

    /* ---- Branches ---- */
    TEST_BR_TAKEN(20, beq, 0, 0)
    TEST_BR_TAKEN(21, beq, -1, -1)
    TEST_BR_NOT_TAKEN(22, beq, 0, 1)
    TEST_BR_NOT_TAKEN(23, beq, 0x100000000, 0)
    TEST_BR_TAKEN(24, bne, 0, 1)
    TEST_BR_TAKEN(25, bne, 0x100000000, 0)
    TEST_BR_NOT_TAKEN(26, bne, -1, -1)
    TEST_BR_TAKEN(27, blt, -1, 0)
    TEST_BR_TAKEN(28, blt, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_BR_NOT_TAKEN(29, blt, 0, -1)
    TEST_BR_NOT_TAKEN(30, blt, 5, 5)
    TEST_BR_TAKEN(31, bge, 0, -1)
    TEST_BR_TAKEN(32, bge, 5, 5)
    TEST_BR_NOT_TAKEN(33, bge, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_BR_TAKEN(34, bltu, 0, -1)
    TEST_BR_TAKEN(35, bltu, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_BR_NOT_TAKEN(36, bltu, -1, 0)
    TEST_BR_NOT_TAKEN(37, bltu, 7, 7)
    TEST_BR_TAKEN(38, bgeu, -1, 0)
    TEST_BR_TAKEN(39, bgeu, 7, 7)
    TEST_BR_NOT_TAKEN(40, bgeu, 0, 0x8000000000000000)
    TEST_CASE(41)               /* backward taken branch */
    li a0, 3
1:  addi a0, a0, -1
    bnez a0, 1b
    CHECK_EQ(a0, 0)

    /* ---- Loads: data = ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00 ---- */
    TEST_LOAD(50, lb, 0xffffffffffffffff, 0)
    TEST_LOAD(51, lb, 0xffffffffffffff88, 7)
    TEST_LOAD(52, lb, 0x77, 8)
    TEST_LOAD(53, lbu, 0xff, 0)
    TEST_LOAD(54, lbu, 0x88, 7)
    TEST_LOAD(55, lh, 0xffffffffffffeeff, 0)
    TEST_LOAD(56, lh, 0xffffffffffff8899, 6)
    TEST_LOAD(57, lh, 0x6677, 8)
    TEST_LOAD(58, lhu, 0xeeff, 0)
    TEST_LOAD(59, lhu, 0x8899, 6)
    TEST_LOAD(60, lw, 0xffffffffccddeeff, 0)
    TEST_LOAD(61, lw, 0xffffffff8899aabb, 4)
    TEST_LOAD(62, lw, 0x44556677, 8)
    TEST_LOAD(63, lwu, 0xccddeeff, 0)
    TEST_LOAD(64, lwu, 0x8899aabb, 4)
    TEST_LOAD(65, ld, 0x8899aabbccddeeff, 0)
    TEST_LOAD(66, ld, 0x0011223344556677, 8)
    TEST_CASE(67)               /* negative offset */
    la a1, data + 16
    ld a0, -8(a1)
    CHECK_EQ(a0, 0x0011223344556677)
    lb a0, -9(a1)
    CHECK_EQ(a0, 0xffffffffffffff88)
    TEST_CASE(68)               /* load into x0 is discarded */
    la a1, data
    ld x0, 0(a1)
    CHECK_EQ(x0, 0)
    TEST_CASE(69)               /* rd = base register */
    la a1, data
    ld a1, 8(a1)
    CHECK_EQ(a1, 0x0011223344556677)

    /* ---- Stores ---- */
    TEST_CASE(70)
    la a1, buf
    sd zero, 0(a1)
    sd zero, 8(a1)
    li a2, 0x1aa                /* only the low byte is stored */
    sb a2, 1(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0xaa00)
    TEST_CASE(71)
    li a2, 0x51234
    sh a2, 2(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x1234aa00)
    TEST_CASE(72)
    li a2, 0x77deadbeef
    sw a2, 4(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0xdeadbeef1234aa00)
    TEST_CASE(73)
    li a2, 0x0123456789abcdef
    sd a2, 8(a1)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x0123456789abcdef)
    lbu a0, 15(a1)
    CHECK_EQ(a0, 0x01)
    TEST_CASE(74)               /* negative store offset */
    addi a3, a1, 16
    li a2, -1
    sb a2, -16(a3)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0xdeadbeef1234aaff)

    /* ---- ADDI ADDIW SLTI SLTIU XORI ORI ANDI ---- */
    TEST_IMM_OP(100, addi, 0x7ff, 0, 0x7ff)
    TEST_IMM_OP(101, addi, 0xfffffffffffff800, 0, -2048)
    TEST_IMM_OP(102, addi, 0x8000000000000000, 0x7fffffffffffffff, 1)
    TEST_IMM_OP(103, addi, 0xffffffff, 0x100000000, -1)
    TEST_IMM_OP(104, addiw, 0xffffffff80000000, 0x7fffffff, 1)
    TEST_IMM_OP(105, addiw, 0xffffffffffffffff, 0xffffffff, 0)
    TEST_IMM_OP(106, addiw, 0x23456789, 0x123456789, 0)
    TEST_IMM_OP(107, addiw, 0x7fffffff, 0xffffffff80000000, -1)
    TEST_IMM_OP(108, slti, 0, 0, -1)
    TEST_IMM_OP(109, slti, 1, -2, -1)
    TEST_IMM_OP(110, slti, 0, 0x7fffffffffffffff, 0)
    TEST_IMM_OP(111, slti, 1, 0x8000000000000000, 0)
    TEST_IMM_OP(112, sltiu, 1, 0x7fffffffffffffff, -1)
    TEST_IMM_OP(113, sltiu, 0, -1, -1)
    TEST_IMM_OP(114, sltiu, 1, 0, 1)
    TEST_IMM_OP(115, sltiu, 0, 5, 1)
    TEST_IMM_OP(116, xori, 0xff00ff00ff00ff00, 0x00ff00ff00ff00ff, -1)
    TEST_IMM_OP(117, xori, 0x00ff00ff00ff000f, 0x00ff00ff00ff00ff, 0x0f0)
    TEST_IMM_OP(118, ori, 0xff00ff00ff00fff0, 0xff00ff00ff00ff00, 0x7f0)
    TEST_IMM_OP(119, ori, 0xfffffffffffffff0, 0xff00ff00ff00ff00, -16)
    TEST_IMM_OP(120, andi, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00, -16)
    TEST_IMM_OP(121, andi, 0x700, 0xff00ff00ff00ff00, 0x70f)
    TEST_CASE(122)              /* rd = rs1 */
    li a1, 13
    addi a1, a1, 11
    CHECK_EQ(a1, 24)
    TEST_CASE(123)              /* x0 destination */
    addi x0, x0, 1
    CHECK_EQ(x0, 0)

    /* ---- Shifts by immediate ---- */
    TEST_IMM_OP(130, slli, 0x8000000000000000, 1, 63)
    TEST_IMM_OP(131, slli, 0x100000000, 1, 32)
    TEST_IMM_OP(132, slli, 0x84848484000, 0x21212121, 14)
    TEST_IMM_OP(133, slli, 0xffffc00000084000, 0xffffffff00000021, 14)
    TEST_IMM_OP(134, srli, 1, 0x8000000000000000, 63)
    TEST_IMM_OP(135, srli, 0x100000000, 0x8000000000000000, 31)
    TEST_IMM_OP(136, srli, 0xffffffffffffffff, 0xffffffffffffffff, 0)
    TEST_IMM_OP(137, srai, 0xffffffffffffffff, 0x8000000000000000, 63)
    TEST_IMM_OP(138, srai, 0xff00000000000000, 0x8000000000000000, 7)
    TEST_IMM_OP(139, srai, 1, 0x7fffffffffffffff, 62)
    TEST_IMM_OP(140, slliw, 0xffffffff80000000, 1, 31)
    TEST_IMM_OP(141, slliw, 0x48484000, 0x21212121, 14)
    TEST_IMM_OP(142, slliw, 0x23456780, 0xffffffff12345678, 4)
    TEST_IMM_OP(143, srliw, 1, 0x80000000, 31)
    TEST_IMM_OP(144, srliw, 0x40000000, 0xffffffff80000000, 1)
    TEST_IMM_OP(145, srliw, 0xffffffff80000000, 0x0000000080000000, 0)
    TEST_IMM_OP(146, srliw, 0x7fffffff, 0x12345678ffffffff, 1)
    TEST_IMM_OP(147, sraiw, 0xffffffffc0000000, 0x80000000, 1)
    TEST_IMM_OP(148, sraiw, 0, 0x7fffffff, 31)
    TEST_IMM_OP(149, sraiw, 0xffffffffffffffff, 0x0000000080000000, 31)
    TEST_IMM_OP(150, sraiw, 0x3fffffff, 0xffffffff7fffffff, 1)

    /* ---- Register-register ---- */
    TEST_RR_OP(200, add, 0, 0, 0)
    TEST_RR_OP(201, add, 10, 3, 7)
    TEST_RR_OP(202, add, 0x8000000000000000, 0x7fffffffffffffff, 1)
    TEST_RR_OP(203, add, 0, -1, 1)
    TEST_RR_OP(204, add, 0x100000000, 0xffffffff, 1)
    TEST_RR_OP(205, sub, 0xffffffffffffffff, 0, 1)
    TEST_RR_OP(206, sub, 0x7fffffffffffffff, 0x8000000000000000, 1)
    TEST_RR_OP(207, sub, 2, 5, 3)
    TEST_RR_OP(208, addw, 0xffffffff80000000, 0x7fffffff, 1)
    TEST_RR_OP(209, addw, 0, 0xffffffff, 1)
    TEST_RR_OP(210, addw, 7, 0x100000003, 4)
    TEST_RR_OP(211, addw, 0xfffffffffffffffe, -1, -1)
    TEST_RR_OP(212, subw, 0xffffffffffffffff, 0, 1)
    TEST_RR_OP(213, subw, 0x7fffffff, 0x80000000, 1)
    TEST_RR_OP(214, subw, 0, 0x100000000, 0)
    TEST_RR_OP(215, slt, 1, -1, 1)
    TEST_RR_OP(216, slt, 0, 1, -1)
    TEST_RR_OP(217, slt, 1, 0x8000000000000000, 0x7fffffffffffffff)
    TEST_RR_OP(218, slt, 0, 3, 3)
    TEST_RR_OP(219, sltu, 0, -1, 1)
    TEST_RR_OP(220, sltu, 1, 1, -1)
    TEST_RR_OP(221, sltu, 0, 0, 0)
    TEST_RR_OP(222, sltu, 1, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_RR_OP(223, xor, 0xf0f0f0f0f0f0f0f0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0)
    TEST_RR_OP(224, or, 0xfff0fff0fff0fff0, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0)
    TEST_RR_OP(225, and, 0x0f000f000f000f00, 0xff00ff00ff00ff00, 0x0ff00ff00ff00ff0)
    TEST_RR_OP(226, sll, 0x8000000000000000, 1, 63)
    TEST_RR_OP(227, sll, 1, 1, 64)                        /* only 6 bits used */
    TEST_RR_OP(228, sll, 2, 1, 0xffffffffffffffc1)
    TEST_RR_OP(229, srl, 1, 0x8000000000000000, 63)
    TEST_RR_OP(230, srl, 0x4000000000000000, 0x8000000000000000, 1)
    TEST_RR_OP(231, srl, 0x8000000000000000, 0x8000000000000000, 0xffffffffffffffc0)
    TEST_RR_OP(232, sra, 0xffffffffffffffff, 0x8000000000000000, 63)
    TEST_RR_OP(233, sra, 0xc000000000000000, 0x8000000000000000, 1)
    TEST_RR_OP(234, sra, 1, 0x7fffffffffffffff, 62)
    TEST_RR_OP(235, sra, 0x8000000000000000, 0x8000000000000000, 64)
    TEST_RR_OP(236, sllw, 0xffffffff80000000, 1, 31)
    TEST_RR_OP(237, sllw, 1, 1, 32)                       /* only 5 bits used */
    TEST_RR_OP(238, sllw, 2, 0xffffffff00000001, 1)
    TEST_RR_OP(239, srlw, 1, 0x80000000, 31)
    TEST_RR_OP(240, srlw, 0xffffffff80000000, 0xffffffff80000000, 0)
    TEST_RR_OP(241, srlw, 0x40000000, 0xffffffff80000000, 1)
    TEST_RR_OP(242, srlw, 0xffffffff80000000, 0x80000000, 32)
    TEST_RR_OP(243, sraw, 0xffffffffc0000000, 0x80000000, 1)
    TEST_RR_OP(244, sraw, 0, 0x7fffffff, 31)
    TEST_RR_OP(245, sraw, 0xffffffffffffffff, 0x80000000, 31)
    TEST_RR_OP(246, sraw, 0x7fffffff, 0x7fffffff, 0xffffffe0)
    TEST_RR_SRC1_EQ_DEST(250, add, 24, 13, 11)
    TEST_RR_SRC2_EQ_DEST(251, sub, 2, 13, 11)
    TEST_RR_SRC1_EQ_DEST(252, sllw, 0x4000, 1, 14)
    TEST_RR_ZERO_DEST(253, add, 1, 2)
    TEST_CASE(254)              /* rs1 = rs2 = rd */
    li a1, 21
    add a1, a1, a1
    CHECK_EQ(a1, 42)
    TEST_CASE(255)              /* x0 as a source reads zero */
    li a1, 5
    sub a0, x0, a1
    CHECK_EQ(a0, -5)

    /* ---- FENCE, FENCE.TSO, PAUSE: execute without effect ---- */
    TEST_CASE(300)
    li a0, 77
    fence
    fence rw, rw
    fence iorw, iorw
    fence w, r
    fence.tso
    pause
    CHECK_EQ(a0, 77)

    /* ---- FENCE.I: self-modifying code ---- */
    TEST_CASE(310)
    call smc_func
    CHECK_EQ(a0, 1)
    TEST_CASE(311)
    la a1, smc_func
    li a2, 0x00200513           /* addi a0, zero, 2 */
    sw a2, 0(a1)
    fence.i
    call smc_func
    CHECK_EQ(a0, 2)
    TEST_CASE(312)              /* and again, in a loop of rewrites */
    li s1, 3
1:  li a2, 0x00000513           /* addi a0, zero, 0 | imm << 20 */
    slli a3, s1, 20
    or a2, a2, a3
    sw a2, 0(a1)
    fence.i
    call smc_func
    CHECK_EQ_REG(a0, s1)
    addi s1, s1, 1
    li a3, 8
    bne s1, a3, 1b

TEST_END

    .text
    .balign 4
    .option push
    .option norvc
smc_func:
    addi a0, zero, 1
    ret
    .option pop

    .data
    .balign 16
data:
    .dword 0x8899aabbccddeeff
    .dword 0x0011223344556677
buf:
    .dword 0, 0
