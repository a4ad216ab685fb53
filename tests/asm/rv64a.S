/* rv64a.S — every RV64A instruction: LR.W/D, SC.W/D and the nine AMOs in their
 * .w and .d forms, each in all four ordering variants (none, .aq, .rl, .aqrl).
 * AMOs: rd receives the old value (sign-extended for .w), memory receives the
 * result, .w touches only its 32 bits and ignores the upper half of rs2; signed
 * and unsigned min/max on the sign boundary; rd = x0 still updates memory.
 * LR/SC: success writes memory and returns 0, a second SC without a new LR
 * fails and leaves memory alone, SC to another address fails, LR.W
 * sign-extends, SC.W writes 32 bits, and an LR/SC increment loop.
 * (Misaligned AMO/LR/SC are in misaligned.S.)
 *
 * Expected values computed with a Python model of the ISA manual. */
#include "test.h"

/* Memory doubleword = init; inst a0, operand, (a1); check a0 = init and memory
 * = result. */
#define TEST_AMO_D(n, inst, init, operand, result) \
    TEST_CASE(n);                               \
    la a1, amo_buf;                             \
    li a2, init;                                \
    sd a2, 0(a1);                               \
    li a3, operand;                             \
    inst a0, a3, (a1);                          \
    CHECK_EQ(a0, init);                         \
    ld a4, 0(a1);                               \
    CHECK_EQ(a4, result)

/* The same on the upper word of a doubleword whose lower word is a sentinel. */
#define TEST_AMO_W(n, inst, init, operand, result) \
    TEST_CASE(n);                               \
    la a1, amo_buf;                             \
    li a2, 0x5a5a5a5a;                          \
    sw a2, 0(a1);                               \
    li a2, init;                                \
    sw a2, 4(a1);                               \
    addi a5, a1, 4;                             \
    li a3, operand;                             \
    inst a0, a3, (a5);                          \
    sext.w a2, a2;                              \
    CHECK_EQ_REG(a0, a2);                       \
    lwu a4, 4(a1);                              \
    CHECK_EQ(a4, result);                       \
    lwu a4, 0(a1);                              \
    CHECK_EQ(a4, 0x5a5a5a5a)

TEST_BEGIN(rv64a)

    TEST_AMO_D(1, amoswap.d, 0x5, 0x7ffffffffffffffe, 0x7ffffffffffffffe)
    TEST_AMO_D(2, amoswap.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0x7fffffffffffffff)
    TEST_AMO_D(3, amoswap.d.rl, 0xffffffffffffffff, 0x1, 0x1)
    TEST_AMO_D(4, amoswap.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00)
    TEST_AMO_W(5, amoswap.w, 0x5, 0x12345678fffffffe, 0xfffffffe)
    TEST_AMO_W(6, amoswap.w.aq, 0x80000000, 0x123456787fffffff, 0x7fffffff)
    TEST_AMO_W(7, amoswap.w.rl, 0xffffffff, 0x1234567800000001, 0x1)
    TEST_AMO_W(8, amoswap.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xff00ff00)
    TEST_AMO_D(10, amoadd.d, 0x5, 0x7ffffffffffffffe, 0x8000000000000003)
    TEST_AMO_D(11, amoadd.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0xffffffffffffffff)
    TEST_AMO_D(12, amoadd.d.rl, 0xffffffffffffffff, 0x1, 0x0)
    TEST_AMO_D(13, amoadd.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xe100e100e100e0f)
    TEST_AMO_W(14, amoadd.w, 0x5, 0x12345678fffffffe, 0x3)
    TEST_AMO_W(15, amoadd.w.aq, 0x80000000, 0x123456787fffffff, 0xffffffff)
    TEST_AMO_W(16, amoadd.w.rl, 0xffffffff, 0x1234567800000001, 0x0)
    TEST_AMO_W(17, amoadd.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xe100e0f)
    TEST_AMO_D(20, amoxor.d, 0x5, 0x7ffffffffffffffe, 0x7ffffffffffffffb)
    TEST_AMO_D(21, amoxor.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0xffffffffffffffff)
    TEST_AMO_D(22, amoxor.d.rl, 0xffffffffffffffff, 0x1, 0xfffffffffffffffe)
    TEST_AMO_D(23, amoxor.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xf00ff00ff00ff00f)
    TEST_AMO_W(24, amoxor.w, 0x5, 0x12345678fffffffe, 0xfffffffb)
    TEST_AMO_W(25, amoxor.w.aq, 0x80000000, 0x123456787fffffff, 0xffffffff)
    TEST_AMO_W(26, amoxor.w.rl, 0xffffffff, 0x1234567800000001, 0xfffffffe)
    TEST_AMO_W(27, amoxor.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xf00ff00f)
    TEST_AMO_D(30, amoand.d, 0x5, 0x7ffffffffffffffe, 0x4)
    TEST_AMO_D(31, amoand.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0x0)
    TEST_AMO_D(32, amoand.d.rl, 0xffffffffffffffff, 0x1, 0x1)
    TEST_AMO_D(33, amoand.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xf000f000f000f00)
    TEST_AMO_W(34, amoand.w, 0x5, 0x12345678fffffffe, 0x4)
    TEST_AMO_W(35, amoand.w.aq, 0x80000000, 0x123456787fffffff, 0x0)
    TEST_AMO_W(36, amoand.w.rl, 0xffffffff, 0x1234567800000001, 0x1)
    TEST_AMO_W(37, amoand.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xf000f00)
    TEST_AMO_D(40, amoor.d, 0x5, 0x7ffffffffffffffe, 0x7fffffffffffffff)
    TEST_AMO_D(41, amoor.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0xffffffffffffffff)
    TEST_AMO_D(42, amoor.d.rl, 0xffffffffffffffff, 0x1, 0xffffffffffffffff)
    TEST_AMO_D(43, amoor.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xff0fff0fff0fff0f)
    TEST_AMO_W(44, amoor.w, 0x5, 0x12345678fffffffe, 0xffffffff)
    TEST_AMO_W(45, amoor.w.aq, 0x80000000, 0x123456787fffffff, 0xffffffff)
    TEST_AMO_W(46, amoor.w.rl, 0xffffffff, 0x1234567800000001, 0xffffffff)
    TEST_AMO_W(47, amoor.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xff0fff0f)
    TEST_AMO_D(50, amomin.d, 0x5, 0x7ffffffffffffffe, 0x5)
    TEST_AMO_D(51, amomin.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_AMO_D(52, amomin.d.rl, 0xffffffffffffffff, 0x1, 0xffffffffffffffff)
    TEST_AMO_D(53, amomin.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00)
    TEST_AMO_W(54, amomin.w, 0x5, 0x12345678fffffffe, 0xfffffffe)
    TEST_AMO_W(55, amomin.w.aq, 0x80000000, 0x123456787fffffff, 0x80000000)
    TEST_AMO_W(56, amomin.w.rl, 0xffffffff, 0x1234567800000001, 0xffffffff)
    TEST_AMO_W(57, amomin.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xff00ff00)
    TEST_AMO_D(60, amomax.d, 0x5, 0x7ffffffffffffffe, 0x7ffffffffffffffe)
    TEST_AMO_D(61, amomax.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0x7fffffffffffffff)
    TEST_AMO_D(62, amomax.d.rl, 0xffffffffffffffff, 0x1, 0x1)
    TEST_AMO_D(63, amomax.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f)
    TEST_AMO_W(64, amomax.w, 0x5, 0x12345678fffffffe, 0x5)
    TEST_AMO_W(65, amomax.w.aq, 0x80000000, 0x123456787fffffff, 0x7fffffff)
    TEST_AMO_W(66, amomax.w.rl, 0xffffffff, 0x1234567800000001, 0x1)
    TEST_AMO_W(67, amomax.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xf0f0f0f)
    TEST_AMO_D(70, amominu.d, 0x5, 0x7ffffffffffffffe, 0x5)
    TEST_AMO_D(71, amominu.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0x7fffffffffffffff)
    TEST_AMO_D(72, amominu.d.rl, 0xffffffffffffffff, 0x1, 0x1)
    TEST_AMO_D(73, amominu.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xf0f0f0f0f0f0f0f)
    TEST_AMO_W(74, amominu.w, 0x5, 0x12345678fffffffe, 0x5)
    TEST_AMO_W(75, amominu.w.aq, 0x80000000, 0x123456787fffffff, 0x7fffffff)
    TEST_AMO_W(76, amominu.w.rl, 0xffffffff, 0x1234567800000001, 0x1)
    TEST_AMO_W(77, amominu.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xf0f0f0f)
    TEST_AMO_D(80, amomaxu.d, 0x5, 0x7ffffffffffffffe, 0x7ffffffffffffffe)
    TEST_AMO_D(81, amomaxu.d.aq, 0x8000000000000000, 0x7fffffffffffffff, 0x8000000000000000)
    TEST_AMO_D(82, amomaxu.d.rl, 0xffffffffffffffff, 0x1, 0xffffffffffffffff)
    TEST_AMO_D(83, amomaxu.d.aqrl, 0xf0f0f0f0f0f0f0f, 0xff00ff00ff00ff00, 0xff00ff00ff00ff00)
    TEST_AMO_W(84, amomaxu.w, 0x5, 0x12345678fffffffe, 0xfffffffe)
    TEST_AMO_W(85, amomaxu.w.aq, 0x80000000, 0x123456787fffffff, 0x80000000)
    TEST_AMO_W(86, amomaxu.w.rl, 0xffffffff, 0x1234567800000001, 0xffffffff)
    TEST_AMO_W(87, amomaxu.w.aqrl, 0xf0f0f0f, 0x12345678ff00ff00, 0xff00ff00)

    /* rd = x0: memory is still updated. */
    TEST_CASE(100)
    la a1, amo_buf
    li a2, 40
    sd a2, 0(a1)
    li a3, 2
    amoadd.d x0, a3, (a1)
    ld a4, 0(a1)
    CHECK_EQ(a4, 42)
    CHECK_EQ(x0, 0)
    /* rd = rs2. */
    TEST_CASE(101)
    li a3, 8
    amoadd.d a3, a3, (a1)
    CHECK_EQ(a3, 42)
    ld a4, 0(a1)
    CHECK_EQ(a4, 50)

    /* ---- LR / SC ---- */
    TEST_CASE(110)              /* lr.d / sc.d succeed */
    la a1, amo_buf
    li a2, 0x1122334455667788
    sd a2, 0(a1)
    lr.d a0, (a1)
    CHECK_EQ(a0, 0x1122334455667788)
    li a3, 0x0102030405060708
    sc.d a4, a3, (a1)
    CHECK_EQ(a4, 0)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x0102030405060708)
    TEST_CASE(111)              /* SC invalidates the reservation: a second SC fails */
    li a3, 0x7777
    sc.d a4, a3, (a1)
    beqz a4, 1f
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x0102030405060708)
    j 2f
1:  FAIL_HERE(111)
2:
    TEST_CASE(112)              /* lr.w sign-extends; sc.w writes 32 bits */
    li a2, 0x00000000f0000001
    sd a2, 0(a1)
    lr.w a0, (a1)
    CHECK_EQ(a0, 0xfffffffff0000001)
    li a3, 0xaaaaaaaa12345678
    sc.w a4, a3, (a1)
    CHECK_EQ(a4, 0)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x12345678)
    TEST_CASE(113)              /* second sc.w fails */
    sc.w a4, a3, (a1)
    beqz a4, 1f
    j 2f
1:  FAIL_HERE(113)
2:
    TEST_CASE(114)              /* SC to an address outside the reservation fails */
    la a5, far_buf
    sd zero, 0(a5)
    lr.d a0, (a1)
    li a3, 99
    sc.d a4, a3, (a5)
    beqz a4, 1f
    ld a0, 0(a5)
    CHECK_EQ(a0, 0)
    j 2f
1:  FAIL_HERE(114)
2:  sc.d a4, a3, (a1)           /* drop any reservation left */

    TEST_CASE(115)              /* ordering variants */
    li a2, 5
    sd a2, 0(a1)
    lr.d.aq a0, (a1)
    addi a0, a0, 1
    sc.d.rl a4, a0, (a1)
    CHECK_EQ(a4, 0)
    lr.d.aqrl a0, (a1)
    addi a0, a0, 1
    sc.d.aqrl a4, a0, (a1)
    CHECK_EQ(a4, 0)
    lr.w.aq a0, (a1)
    addi a0, a0, 1
    sc.w.rl a4, a0, (a1)
    CHECK_EQ(a4, 0)
    lr.w.aqrl a0, (a1)
    addi a0, a0, 1
    sc.w.aqrl a4, a0, (a1)
    CHECK_EQ(a4, 0)
    ld a0, 0(a1)
    CHECK_EQ(a0, 9)

    TEST_CASE(116)              /* LR/SC increment loop (retries until success) */
    li s1, 0
    sd zero, 0(a1)
3:  lr.d a0, (a1)
    addi a0, a0, 1
    sc.d a4, a0, (a1)
    bnez a4, 3b
    addi s1, s1, 1
    li a2, 100
    bne s1, a2, 3b
    ld a0, 0(a1)
    CHECK_EQ(a0, 100)

TEST_END

    .data
    .balign 64
amo_buf:
    .dword 0, 0
    .balign 4096
far_buf:
    .dword 0
