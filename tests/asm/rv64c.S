/* rv64c.S — every RV64C (and RV64DC) compressed instruction, written with its
 * explicit c. mnemonic so the encoding is certain: loads and stores (CL/CS and
 * stack-pointer forms, integer and double), the immediate and register ALU
 * forms, jumps and branches, JR/JALR (return address = pc + 2), the HINT
 * encodings (execute as no-ops), and the reserved encodings (illegal
 * instruction with tval = the 16 instruction bits). c.ebreak is in traps.S. */
#include "test.h"

/* a0 = init; inst a0, imm */
#define TEST_CI(n, inst, init, imm, result)     \
    TEST_CASE(n);                               \
    li a0, init;                                \
    inst a0, imm;                               \
    CHECK_EQ(a0, result)

/* a0 = v1; a1 = v2; inst a0, a1 */
#define TEST_CR(n, inst, v1, v2, result)        \
    TEST_CASE(n);                               \
    li a0, v1;                                  \
    li a1, v2;                                  \
    inst a0, a1;                                \
    CHECK_EQ(a0, result)

/* A reserved 16-bit encoding raises illegal instruction, tval = its bits. */
#define EXPECT_ILLEGAL_HALF(half)               \
    EXPECT_TRAP_TVAL(CAUSE_ILLEGAL_INSN, half, .2byte half)

TEST_BEGIN(rv64c)
    .option push
    .option rvc

    /* ---- Quadrant 0 ---- */
    TEST_CASE(1)                /* c.addi4spn */
    c.addi4spn a0, sp, 16
    addi a1, sp, 16
    CHECK_EQ_REG(a0, a1)
    c.addi4spn a0, sp, 1020
    li a1, 1020
    add a1, a1, sp
    CHECK_EQ_REG(a0, a1)

    TEST_CASE(2)                /* c.ld / c.lw (sign-extends) */
    la a1, data
    c.ld a0, 0(a1)
    CHECK_EQ(a0, 0x8899aabbccddeeff)
    c.ld a0, 8(a1)
    CHECK_EQ(a0, 0x0011223344556677)
    c.lw a0, 4(a1)
    CHECK_EQ(a0, 0xffffffff8899aabb)
    c.lw a0, 8(a1)
    CHECK_EQ(a0, 0x44556677)
    TEST_CASE(3)                /* c.sd / c.sw */
    la a1, buf
    li a2, 0x0123456789abcdef
    c.sd a2, 8(a1)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x0123456789abcdef)
    li a2, -1
    c.sw a2, 8(a1)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x01234567ffffffff)
    TEST_CASE(4)                /* c.fld / c.fsd */
    la a1, data
    c.fld fa0, 0(a1)
    CHECK_FD(fa0, 0x8899aabbccddeeff)
    la a1, buf
    c.fsd fa0, 0(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x8899aabbccddeeff)

    /* ---- Quadrant 1 ---- */
    TEST_CASE(10)
    li a0, 7
    c.nop
    CHECK_EQ(a0, 7)
    TEST_CI(11, c.addi, 10, -32, -22)
    TEST_CI(12, c.addi, 10, 31, 41)
    TEST_CI(13, c.addiw, 0x7fffffff, 1, 0xffffffff80000000)
    TEST_CI(14, c.addiw, 0x1ffffffff, 0, 0xffffffffffffffff)
    TEST_CI(15, c.li, 0, -32, 0xffffffffffffffe0)
    TEST_CI(16, c.li, 0, 31, 31)
    TEST_CI(17, c.lui, 0, 0x1f, 0x1f000)
    TEST_CI(18, c.lui, 0, 0xfffe0, 0xfffffffffffe0000)
    TEST_CASE(19)               /* c.addi16sp */
    mv s1, sp
    c.addi16sp sp, -512
    sub a0, s1, sp
    CHECK_EQ(a0, 512)
    c.addi16sp sp, 496
    sub a0, s1, sp
    CHECK_EQ(a0, 16)
    mv sp, s1
    TEST_CI(20, c.srli, 0x8000000000000000, 63, 1)
    TEST_CI(21, c.srli, 0x8000000000000000, 1, 0x4000000000000000)
    TEST_CI(22, c.srai, 0x8000000000000000, 63, 0xffffffffffffffff)
    TEST_CI(23, c.srai, 0x8000000000000000, 32, 0xffffffff80000000)
    TEST_CI(24, c.andi, 0xff, -16, 0xf0)
    TEST_CI(25, c.andi, -1, 31, 31)
    TEST_CR(26, c.sub, 5, 7, -2)
    TEST_CR(27, c.xor, 0xff00, 0x0ff0, 0xf0f0)
    TEST_CR(28, c.or, 0xff00, 0x0ff0, 0xfff0)
    TEST_CR(29, c.and, 0xff00, 0x0ff0, 0x0f00)
    TEST_CR(30, c.subw, 0x80000000, 1, 0x7fffffff)
    TEST_CR(31, c.subw, 0x100000000, 1, 0xffffffffffffffff)
    TEST_CR(32, c.addw, 0x7fffffff, 1, 0xffffffff80000000)
    TEST_CR(33, c.addw, 0x1, 0xffffffff00000002, 3)
    TEST_CASE(34)               /* c.j forward and backward */
    li a0, 0
    c.j 2f
1:  li a0, 1
    c.j 3f
2:  c.j 1b
    FAIL_HERE(0)
3:  CHECK_EQ(a0, 1)
    TEST_CASE(35)               /* c.beqz / c.bnez */
    li a0, 0
    c.beqz a0, 1f
    FAIL_HERE(1)
1:  c.bnez a0, 2f
    li a0, 5
    c.bnez a0, 3f
2:  FAIL_HERE(2)
3:  c.beqz a0, 2b
    li a0, 3
4:  addi a0, a0, -1
    c.bnez a0, 4b
    CHECK_EQ(a0, 0)

    /* ---- Quadrant 2 ---- */
    TEST_CI(40, c.slli, 1, 63, 0x8000000000000000)
    TEST_CASE(41)               /* c.slli on a register outside x8-x15 */
    li t1, 0x21212121
    c.slli t1, 14
    CHECK_EQ(t1, 0x84848484000)
    TEST_CASE(42)               /* stack-pointer loads and stores */
    mv s1, sp
    la sp, buf
    li a2, 0x1122334455667788
    c.sdsp a2, 8(sp)
    ld a0, 8(sp)
    CHECK_EQ(a0, 0x1122334455667788)
    c.ldsp t2, 8(sp)
    CHECK_EQ(t2, 0x1122334455667788)
    li a2, 0xfedcba98
    c.swsp a2, 12(sp)
    c.lwsp t2, 12(sp)
    CHECK_EQ(t2, 0xfffffffffedcba98)
    c.lwsp t2, 8(sp)
    CHECK_EQ(t2, 0x55667788)
    li a2, 0x400921fb54442d18
    fmv.d.x ft3, a2
    c.fsdsp ft3, 0(sp)
    c.fldsp ft4, 0(sp)
    CHECK_FD(ft4, 0x400921fb54442d18)
    mv sp, s1
    TEST_CASE(43)               /* c.jr */
    la t1, 1f
    c.jr t1
    FAIL_HERE(0)
1:
    TEST_CASE(44)               /* c.jalr: ra = pc + 2 */
    la t1, 2f
    c.jalr t1
1:  FAIL_HERE(0)
2:  CHECK_EQ_ADDR(ra, 1b)
    la t2, 1b
    sub t2, ra, t2
    CHECK_EQ(t2, 0)
    TEST_CASE(45)               /* c.jalr return address is 2 bytes after it */
    la t1, 2f
3:  c.jalr t1
    FAIL_HERE(0)
2:  la t2, 3b
    sub t2, ra, t2
    CHECK_EQ(t2, 2)
    TEST_CASE(46)
    li a0, 0
    li t2, 0x1234
    c.mv a0, t2
    CHECK_EQ(a0, 0x1234)
    TEST_CASE(47)
    li a0, 5
    li t2, 0x1234
    c.add a0, t2
    CHECK_EQ(a0, 0x1239)
    TEST_CASE(48)
    li s1, -1
    li a5, 1
    c.add s1, a5
    CHECK_EQ(s1, 0)

    /* ---- HINTs execute as no-ops ---- */
    TEST_CASE(50)
    li a0, 0x77
    .2byte 0x0005               /* c.nop with nzimm = 1 */
    .2byte 0x0501               /* c.addi a0, 0 */
    .2byte 0x4015               /* c.li x0, 5 */
    .2byte 0x802a               /* c.mv x0, a0 */
    .2byte 0x902a               /* c.add x0, a0 */
    .2byte 0x0006               /* c.slli x0, 1 */
    .2byte 0x0502               /* c.slli a0, 0 (RV64: a HINT) */
    CHECK_EQ(a0, 0x77)
    CHECK_EQ(x0, 0)

    /* ---- Reserved encodings ---- */
    TEST_CASE(60)
    EXPECT_ILLEGAL_HALF(0x0000)     /* all zeros: defined illegal */
    TEST_CASE(61)
    EXPECT_ILLEGAL_HALF(0x0008)     /* c.addi4spn a0, sp, 0 */
    TEST_CASE(62)
    EXPECT_ILLEGAL_HALF(0x6501)     /* c.lui a0, 0 */
    TEST_CASE(63)
    EXPECT_ILLEGAL_HALF(0x6101)     /* c.addi16sp sp, 0 */
    TEST_CASE(64)
    EXPECT_ILLEGAL_HALF(0x4002)     /* c.lwsp x0 */
    TEST_CASE(65)
    EXPECT_ILLEGAL_HALF(0x6002)     /* c.ldsp x0 */
    TEST_CASE(66)
    EXPECT_ILLEGAL_HALF(0x8002)     /* c.jr x0 */
    TEST_CASE(67)
    EXPECT_ILLEGAL_HALF(0x2001)     /* c.addiw x0, 0 */
    TEST_CASE(68)
    EXPECT_ILLEGAL_HALF(0x8000)     /* quadrant 0, funct3 = 100: reserved */

    .option pop
TEST_END

    .data
    .balign 16
data:
    .dword 0x8899aabbccddeeff
    .dword 0x0011223344556677
buf:
    .dword 0, 0
