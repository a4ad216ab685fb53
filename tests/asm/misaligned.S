/* misaligned.S — misaligned data accesses:
 *   - regular loads and stores of every width at misaligned addresses succeed
 *     (integer, floating-point, compressed), also across a page boundary and,
 *     with Sv39, across two pages mapped to non-adjacent physical pages; a
 *     misaligned access whose second page is unmapped or read-only takes the
 *     page fault (tval within the faulting part: spec 1.12, 3.1.16);
 *   - misaligned LR raises load address misaligned (4) and misaligned AMOs
 *     and SC raise store/AMO address misaligned (6), tval = the address.
 *     QEMU 7.2 deviations (checked as such, see test.h): it raises 4 for
 *     AMOs (it runs them as a load then a store), and a misaligned SC without
 *     a matching reservation simply fails, without trapping. */
#define VM_LEVELS 3
#define VM_SATP_MODE SATP_MODE_SV39
#include "vm.h"

/* Load from `data` + off. */
#define TEST_LOAD(n, inst, result, off)         \
    TEST_CASE(n);                               \
    la a1, data;                                \
    inst a0, off(a1);                           \
    CHECK_EQ(a0, result)

/* A misaligned AMO at a1 = buf + off: store/AMO address misaligned, tval =
 * a1, rd unchanged (QEMU 7.2: load address misaligned). */
#define TEST_AMO_MISALIGNED(n, off, ...)        \
    TEST_CASE(n);                               \
    la a1, buf;                                 \
    addi a1, a1, off;                           \
    li a0, 0x77;                                \
    TRAP_RUN(__VA_ARGS__);                      \
    CHECK_EQ(tp, PRV_M);                        \
    li tp, 0;                                   \
    CHECK_EQ_SPEC_OR_QEMU72(t3, CAUSE_MISALIGNED_STORE, CAUSE_MISALIGNED_LOAD); \
    CHECK_EQ_ADDR(t5, 8b);                      \
    CHECK_EQ_REG(t4, a1);                       \
    CHECK_EQ(a0, 0x77)

#define VA_PAGES 0x2000000000   /* two pages, mapped in the order b, a */

TEST_BEGIN(misaligned)

    /* ---- Loads: data = f0 e1 d2 c3 b4 a5 96 87 78 69 5a 4b 3c 2d 1e 0f ---- */
    TEST_LOAD(1, lh, 0xffffffffffffd2e1, 1)
    TEST_LOAD(2, lh, 0xffffffffffffb4c3, 3)
    TEST_LOAD(3, lh, 0x7887, 7)
    TEST_LOAD(4, lhu, 0xd2e1, 1)
    TEST_LOAD(5, lhu, 0x96a5, 5)
    TEST_LOAD(6, lw, 0xffffffffb4c3d2e1, 1)
    TEST_LOAD(7, lw, 0xffffffffa5b4c3d2, 2)
    TEST_LOAD(8, lw, 0xffffffff96a5b4c3, 3)
    TEST_LOAD(9, lw, 0x788796a5, 5)
    TEST_LOAD(10, lw, 0x69788796, 6)
    TEST_LOAD(11, lwu, 0xb4c3d2e1, 1)
    TEST_LOAD(12, lwu, 0x96a5b4c3, 3)
    TEST_LOAD(13, lwu, 0x5a697887, 7)
    TEST_LOAD(14, ld, 0x788796a5b4c3d2e1, 1)
    TEST_LOAD(15, ld, 0x69788796a5b4c3d2, 2)
    TEST_LOAD(16, ld, 0x5a69788796a5b4c3, 3)
    TEST_LOAD(17, ld, 0x4b5a69788796a5b4, 4)
    TEST_LOAD(18, ld, 0x3c4b5a69788796a5, 5)
    TEST_LOAD(19, ld, 0x2d3c4b5a69788796, 6)
    TEST_LOAD(20, ld, 0x1e2d3c4b5a697887, 7)
    TEST_CASE(21)               /* compressed loads from a misaligned base */
    la a1, data
    addi a1, a1, 3
    c.lw a0, 0(a1)
    CHECK_EQ(a0, 0xffffffff96a5b4c3)
    c.ld a0, 0(a1)
    CHECK_EQ(a0, 0x5a69788796a5b4c3)
    TEST_CASE(22)               /* floating-point */
    la a1, data
    flw fa0, 1(a1)
    CHECK_FS(fa0, 0xb4c3d2e1)
    fld fa0, 3(a1)
    CHECK_FD(fa0, 0x5a69788796a5b4c3)

    /* ---- Stores ---- */
    TEST_CASE(30)
    la a1, buf
    sd zero, 0(a1)
    sd zero, 8(a1)
    li a2, 0x1122
    sh a2, 1(a1)
    li a2, 0x33445566
    sw a2, 3(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x0000334455661122 << 8)
    TEST_CASE(31)
    li a2, 0x0102030405060708
    sd a2, 5(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x0607085566112200)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x0102030405)
    TEST_CASE(32)               /* FP and compressed stores */
    sd zero, 0(a1)
    sd zero, 8(a1)
    li a2, 0xaabbccdd
    fmv.w.x fa0, a2
    fsw fa0, 1(a1)
    li a2, 0x1122334455667788
    fmv.d.x fa0, a2
    fsd fa0, 6(a1)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0x778800aabbccdd00)
    ld a0, 8(a1)
    CHECK_EQ(a0, 0x112233445566)
    addi a3, a1, 1
    li a2, -1
    c.sw a2, 4(a3)
    ld a0, 0(a1)
    CHECK_EQ(a0, 0xffffffaabbccdd00)
    TEST_CASE(33)               /* across a page boundary in physical memory */
    la a1, page_b
    li a2, 0x8877665544332211
    sd a2, -3(a1)
    ld a0, -3(a1)
    CHECK_EQ_REG(a0, a2)
    lw a0, -2(a1)
    CHECK_EQ(a0, 0x55443322)
    lbu a0, 0(a1)
    CHECK_EQ(a0, 0x44)

    /* ---- Atomics ---- */
    TEST_AMO_MISALIGNED(40, 2, amoadd.w a0, a0, (a1))
    TEST_AMO_MISALIGNED(41, 1, amoswap.w.aq a0, a0, (a1))
    TEST_AMO_MISALIGNED(42, 4, amoor.d a0, a0, (a1))
    TEST_AMO_MISALIGNED(43, 7, amomaxu.d.aqrl a0, a0, (a1))
    TEST_AMO_MISALIGNED(44, 6, amominu.w.rl a0, a0, (a1))
    TEST_AMO_MISALIGNED(45, 3, amoxor.w a0, a0, (a1))
    TEST_CASE(46)               /* lr: load address misaligned */
    la a1, buf
    addi a1, a1, 4
    li a0, 0x77
    EXPECT_TRAP(CAUSE_MISALIGNED_LOAD, lr.d a0, (a1))
    CHECK_EQ_REG(t4, a1)
    CHECK_EQ(a0, 0x77)
    addi a1, a1, -2
    EXPECT_TRAP(CAUSE_MISALIGNED_LOAD, lr.w.aq a0, (a1))
    CHECK_EQ_REG(t4, a1)
    TEST_CASE(47)               /* sc: store/AMO address misaligned (QEMU 7.2: the SC fails) */
    la a1, buf
    lr.d a0, (a1)               /* a reservation, at an aligned address */
    addi a1, a1, 4
    li a2, 0x99
    li a0, 0
    TRAP_RUN(sc.d a0, a2, (a1))
    ld t6, on_qemu_7_2
    bnez t6, 1f
    CHECK_TRAP(PRV_M, CAUSE_MISALIGNED_STORE)
    CHECK_EQ_REG(t4, a1)
    j 2f
1:  li tp, 0                    /* QEMU 7.2: no trap, the SC failed */
    bnez a0, 2f
    FAIL_HERE(47)
2:  la a1, buf
    sc.d a0, a2, (a1)           /* (drop the reservation) */

    /* ---- Under Sv39: two virtual pages backed by pages b, a (in that order) ---- */
    NEW_ADDRESS_SPACE
    MAP_PAGE(VA_PAGES, page_b, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    MAP_PAGE(VA_PAGES + 0x1000, page_a, PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
    MAP_PAGE(VA_PAGES + 0x3000, page_a, PTE_V | PTE_R | PTE_A | PTE_D)     /* read-only */
    SET_SATP(0)
    GOTO_S
    TEST_CASE(50)               /* across the two pages: bytes come from b's end and a's start */
    li a1, VA_PAGES + 0x1000
    li a2, 0x0807060504030201
    sd a2, -4(a1)
    ld a0, -4(a1)
    CHECK_EQ_REG(a0, a2)
    la a3, page_a               /* physical view (identity mapping) */
    lw a0, 0(a3)
    CHECK_EQ(a0, 0x08070605)
    la a3, page_c
    lw a0, -4(a3)               /* page_b's last word (page_c follows page_b) */
    CHECK_EQ(a0, 0x04030201)
    TEST_CASE(51)               /* the second page unmapped: load page fault */
    li a1, VA_PAGES + 0x2000
    TRAP_RUN(ld a0, -4(a1))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_PAGE_FAULT)
    jal ra, check_tval_in_second_page
    TEST_CASE(52)               /* the second page read-only: store page fault */
    li a1, VA_PAGES + 0x3000
    TRAP_RUN(sd a0, -2(a1))     /* first part in the unmapped page 0x2000: fault there */
    CHECK_TRAP(PRV_M, CAUSE_STORE_PAGE_FAULT)
    li a1, VA_PAGES + 0x4000
    TRAP_RUN(sw a0, -2(a1))     /* first part read-only, second unmapped */
    CHECK_TRAP(PRV_M, CAUSE_STORE_PAGE_FAULT)
    GOTO_M
    csrw satp, zero
    sfence.vma

TEST_END

/* After a fault of an 8-byte access at a1 - 4 that crosses into the page at
 * a1: tval must be an address of the faulting part, [a1, a1 + 4). */
check_tval_in_second_page:
    bltu t4, a1, 2f
    addi t0, a1, 4
    bgeu t4, t0, 2f
1:  ret
2:  mv a2, t4
    mv a3, a1
    li a1, __LINE__
    j test_fail

    .data
    .balign 16
data:
    .byte 0xf0, 0xe1, 0xd2, 0xc3, 0xb4, 0xa5, 0x96, 0x87
    .byte 0x78, 0x69, 0x5a, 0x4b, 0x3c, 0x2d, 0x1e, 0x0f
buf:
    .dword 0, 0
    .balign 4096
page_a:
    .space 4096
page_b:
    .space 4096
page_c:
    .space 4096
