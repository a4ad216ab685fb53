/* pmp.S — physical memory protection with 16 entries:
 *   - pmpaddr0-15 and pmpcfg0 / pmpcfg2 hold what is written (granularity 4
 *     bytes); pmpcfg1 / pmpcfg3 do not exist on RV64 (illegal instruction);
 *   - TOR (including entry 0 from address 0), NA4 and NAPOT regions, with R, W
 *     and X each checked by load, store (and AMO) and fetch access faults whose
 *     tval is the address, from U and S;
 *   - each of the 16 entries enforces its region;
 *   - the lowest-numbered matching entry decides; S/U accesses that match no
 *     entry fail; M-mode ignores unlocked entries;
 *   - MPRV with MPP = U makes M-mode loads and stores obey U's permissions;
 *   - locked entries bind M-mode too, and cannot be rewritten, including the
 *     pmpaddr below a locked TOR entry (last, as locks last until reset).
 * Entry 15 (lowest priority) covers RAM with RWX so that code and data stay
 * reachable; the tests use entries 0-14 on pages of pmp_area. */
#include "test.h"

/* Entry i: pmpaddr = the value in t1 (already shifted), cfg byte = cfg. */
#define PMP_SET_LO(i, cfg)                      \
    csrw pmpaddr##i, t1;                        \
    li t0, 0xff << (8 * (i));                   \
    csrc pmpcfg0, t0;                           \
    li t0, (cfg) << (8 * (i));                  \
    csrs pmpcfg0, t0;                           \
    sfence.vma

#define PMP_SET_HI(i, cfg)                      \
    csrw pmpaddr##i, t1;                        \
    li t0, 0xff << (8 * ((i) - 8));             \
    csrc pmpcfg2, t0;                           \
    li t0, (cfg) << (8 * ((i) - 8));            \
    csrs pmpcfg2, t0;                           \
    sfence.vma

/* t1 = (address of sym + off) >> 2 */
#define PMP_ADDR(sym, off)                      \
    la t1, sym;                                 \
    li t0, off;                                 \
    add t1, t1, t0;                             \
    srli t1, t1, 2

#define PAGE(n) (4096 * (n))

TEST_BEGIN(pmp)

    /* ---- The registers ---- */
    TEST_CASE(1)                /* all 16 address registers hold a value */
#define CHECK_PMPADDR(i)                        \
    li t1, 0x0123456789a0 + (i);                \
    csrw pmpaddr##i, t1;                        \
    csrr t2, pmpaddr##i;                        \
    CHECK_EQ_REG(t2, t1)
    csrw pmpcfg0, zero          /* all entries off while we scribble */
    csrw pmpcfg2, zero
    CHECK_PMPADDR(0);  CHECK_PMPADDR(1);  CHECK_PMPADDR(2);  CHECK_PMPADDR(3)
    CHECK_PMPADDR(4);  CHECK_PMPADDR(5);  CHECK_PMPADDR(6);  CHECK_PMPADDR(7)
    CHECK_PMPADDR(8);  CHECK_PMPADDR(9);  CHECK_PMPADDR(10); CHECK_PMPADDR(11)
    CHECK_PMPADDR(12); CHECK_PMPADDR(13); CHECK_PMPADDR(14); CHECK_PMPADDR(15)
    TEST_CASE(2)                /* configuration bytes (A = OFF, legal permissions) */
    li t1, 0x0507030105070301
    csrw pmpcfg0, t1
    csrr t2, pmpcfg0
    CHECK_EQ_REG(t2, t1)
    li t1, 0x0105070301050703
    csrw pmpcfg2, t1
    csrr t2, pmpcfg2
    CHECK_EQ_REG(t2, t1)
    csrw pmpcfg0, zero
    csrw pmpcfg2, zero
    TEST_CASE(3)                /* odd pmpcfg registers are RV32-only */
    EXPECT_ILLEGAL_WORD(0x3a102573)     /* csrr a0, pmpcfg1 */
    EXPECT_ILLEGAL_WORD(0x3a302573)     /* csrr a0, pmpcfg3 */

    /* Entry 15: NAPOT over 0x80000000-0xffffffff (all of RAM), RWX. */
    li t1, (0x80000000 >> 2) | ((0x80000000 >> 3) - 1)
    PMP_SET_HI(15, PMP_NAPOT | PMP_R | PMP_W | PMP_X)
    /* Put "ret" at the start of pages 0-3 of pmp_area, to be fetched. */
    la a0, pmp_area
    li a1, 0x00008067           /* jalr x0, 0(ra) */
    sw a1, PAGE(0)(a0)
    li t0, PAGE(1)
    add t0, t0, a0
    sw a1, 0(t0)
    add t0, t0, t0
    sub t0, t0, a0              /* page 2 */
    li t2, PAGE(1)
    add t0, t0, t2              /* page 3 */
    sw a1, 0(t0)
    fence.i

    /* ---- No matching entry: S/U fail, M does not ---- */
    TEST_CASE(10)
    li a1, UART_BASE
    lbu a0, 5(a1)               /* M: fine */
    GOTO_U
    li a1, UART_BASE
    EXPECT_TRAP_TVAL(CAUSE_LOAD_ACCESS, UART_BASE + 5, lbu a0, 5(a1))
    EXPECT_TRAP_TVAL(CAUSE_STORE_ACCESS, UART_BASE + 7, sb a0, 7(a1))
    GOTO_M
    GOTO_S
    li a1, UART_BASE
    EXPECT_TRAP_TVAL(CAUSE_LOAD_ACCESS, UART_BASE + 5, lbu a0, 5(a1))
    GOTO_M

    /* ---- TOR: page 0 read-only, page 1 execute-only ---- */
    TEST_CASE(20)
    PMP_ADDR(pmp_area, PAGE(0))
    PMP_SET_LO(0, PMP_OFF)                      /* bottom of the TOR range */
    PMP_ADDR(pmp_area, PAGE(1))
    PMP_SET_LO(1, PMP_TOR | PMP_R)              /* [page 0, page 1) */
    PMP_ADDR(pmp_area, PAGE(2))
    PMP_SET_LO(2, PMP_TOR | PMP_X)              /* [page 1, page 2) */
    la s1, pmp_area
    li t0, PAGE(1)
    add s2, s1, t0                              /* s2 = page 1 */
    GOTO_U
    lw a0, 0(s1)                                /* readable */
    lw a0, 2044(s1)
    TRAP_RUN(sw a0, 8(s1))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    addi t6, s1, 8
    CHECK_EQ_REG(t4, t6)
    TRAP_RUN(amoadd.w a0, a0, (s1))             /* AMOs need write permission */
    CHECK_EQ(tp, PRV_M)
    li tp, 0
    CHECK_EQ(t3, CAUSE_STORE_ACCESS)
    CHECK_EQ_REG(t4, s1)
    TRAP_RUN(jalr ra, 0(s1))                    /* not executable */
    CHECK_EQ(tp, PRV_M)
    li tp, 0
    CHECK_EQ(t3, CAUSE_FETCH_ACCESS)
    CHECK_EQ_REG(t4, s1)
    CHECK_EQ_REG(t5, s1)
    TEST_CASE(22)               /* page 1: execute-only */
    jalr ra, 0(s2)                              /* runs the "ret" */
    TRAP_RUN(lw a0, 0(s2))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    CHECK_EQ_REG(t4, s2)
    TRAP_RUN(sw a0, 16(s2))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    TEST_CASE(23)               /* just outside: entry 15 applies */
    li t0, PAGE(2)
    add t0, s1, t0
    sw a0, 0(t0)
    lw a0, -4(s1)
    GOTO_M
    TEST_CASE(24)               /* M-mode ignores the unlocked entries */
    sw a0, 0(s1)
    lw a0, 0(s2)
    TEST_CASE(25)               /* entry 0 in TOR mode starts at address 0 */
    PMP_ADDR(pmp_area, PAGE(1))
    PMP_SET_LO(0, PMP_TOR | PMP_R | PMP_X)      /* [0, page 1): code and data before it */
    GOTO_U
    lw a0, 0(s1)
    TRAP_RUN(sw a0, 0(s1))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    GOTO_M
    csrw pmpcfg0, zero
    sfence.vma

    /* ---- NA4 and priority ---- */
    TEST_CASE(30)               /* NA4 on page 2 + 8: no permissions */
    PMP_ADDR(pmp_area, PAGE(2) + 8)
    PMP_SET_LO(3, PMP_NA4)
    li t0, PAGE(2)
    add s3, s1, t0
    GOTO_U
    lw a0, 4(s3)
    lw a0, 12(s3)
    TRAP_RUN(lw a0, 8(s3))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    addi t6, s3, 8
    CHECK_EQ_REG(t4, t6)
    TRAP_RUN(sb a0, 11(s3))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    addi t6, s3, 11
    CHECK_EQ_REG(t4, t6)
    GOTO_M
    TEST_CASE(31)               /* a lower-numbered entry wins: entry 2 NA4 RW over entry 3's NAPOT */
    PMP_ADDR(pmp_area, PAGE(2) + 16)
    PMP_SET_LO(2, PMP_NA4 | PMP_R | PMP_W)
    PMP_ADDR(pmp_area, PAGE(2))
    ori t1, t1, (64 / 8) - 1                    /* NAPOT: 64 bytes at page 2 */
    PMP_SET_LO(3, PMP_NAPOT)
    GOTO_U
    lw a0, 16(s3)
    sw a0, 16(s3)
    TRAP_RUN(lw a0, 20(s3))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    TRAP_RUN(lw a0, 0(s3))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    TRAP_RUN(lw a0, 60(s3))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    lw a0, 64(s3)                               /* past the 64 bytes */
    lw a0, -4(s3)
    GOTO_M
    csrw pmpcfg0, zero
    sfence.vma

    /* ---- NAPOT ---- */
    TEST_CASE(40)               /* 8 KiB at page 2: read + execute, no write */
    PMP_ADDR(pmp_area, PAGE(2))
    ori t1, t1, (8192 / 8) - 1
    PMP_SET_LO(5, PMP_NAPOT | PMP_R | PMP_X)
    li t0, PAGE(3)
    add s4, s1, t0
    GOTO_S
    lw a0, 0(s3)
    jalr ra, 0(s4)                              /* page 3 has a "ret" */
    TRAP_RUN(sd a0, 0(s3))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    TRAP_RUN(sd a0, 2040(s4))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    li t0, 4096
    add t0, s4, t0
    sd a0, 0(t0)                                /* page 4: outside */
    GOTO_M
    TEST_CASE(41)               /* 8-byte NAPOT (the smallest) */
    PMP_ADDR(pmp_area, PAGE(2) + 32)
    PMP_SET_LO(4, PMP_NAPOT | PMP_R)            /* pmpaddr ends in 0: 8 bytes */
    GOTO_U
    ld a0, 32(s3)
    TRAP_RUN(sw a0, 36(s3))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    GOTO_M
    csrw pmpcfg0, zero
    sfence.vma

    /* ---- MPRV ---- */
    TEST_CASE(50)               /* M-mode loads/stores with MPRV = 1, MPP = U obey U's entries */
    PMP_ADDR(pmp_area, PAGE(0))
    PMP_SET_LO(0, PMP_OFF)
    PMP_ADDR(pmp_area, PAGE(1))
    PMP_SET_LO(1, PMP_TOR | PMP_R)
    li t0, MSTATUS_MPP
    csrc mstatus, t0            /* MPP = U */
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    lw a0, 0(s1)
    TRAP_RUN(sw a0, 0(s1))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    TEST_CASE(51)               /* with MPP = M, MPRV changes nothing */
    li t0, MSTATUS_MPP
    csrs mstatus, t0
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    sw a0, 0(s1)
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    csrw pmpcfg0, zero
    sfence.vma

    /* ---- Every entry enforces: entry i, NA4 without permissions on word i ---- */
    li t0, PAGE(6)
    add s7, s1, t0              /* s7 = page 6 */
    TEST_CASE(70)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 0)
    PMP_SET_LO(0, PMP_NA4)
    GOTO_U
    lw a0, 4(s7)
    TRAP_RUN(lw a0, 0(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(0, PMP_OFF)
    TEST_CASE(71)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 1)
    PMP_SET_LO(1, PMP_NA4)
    GOTO_U
    lw a0, 8(s7)
    TRAP_RUN(lw a0, 4(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(1, PMP_OFF)
    TEST_CASE(72)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 2)
    PMP_SET_LO(2, PMP_NA4)
    GOTO_U
    lw a0, 12(s7)
    TRAP_RUN(lw a0, 8(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(2, PMP_OFF)
    TEST_CASE(73)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 3)
    PMP_SET_LO(3, PMP_NA4)
    GOTO_U
    lw a0, 16(s7)
    TRAP_RUN(lw a0, 12(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(3, PMP_OFF)
    TEST_CASE(74)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 4)
    PMP_SET_LO(4, PMP_NA4)
    GOTO_U
    lw a0, 20(s7)
    TRAP_RUN(lw a0, 16(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(4, PMP_OFF)
    TEST_CASE(75)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 5)
    PMP_SET_LO(5, PMP_NA4)
    GOTO_U
    lw a0, 24(s7)
    TRAP_RUN(lw a0, 20(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(5, PMP_OFF)
    TEST_CASE(76)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 6)
    PMP_SET_LO(6, PMP_NA4)
    GOTO_U
    lw a0, 28(s7)
    TRAP_RUN(lw a0, 24(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(6, PMP_OFF)
    TEST_CASE(77)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 7)
    PMP_SET_LO(7, PMP_NA4)
    GOTO_U
    lw a0, 32(s7)
    TRAP_RUN(lw a0, 28(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_LO(7, PMP_OFF)
    TEST_CASE(78)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 8)
    PMP_SET_HI(8, PMP_NA4)
    GOTO_U
    lw a0, 36(s7)
    TRAP_RUN(lw a0, 32(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_HI(8, PMP_OFF)
    TEST_CASE(79)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 9)
    PMP_SET_HI(9, PMP_NA4)
    GOTO_U
    lw a0, 40(s7)
    TRAP_RUN(lw a0, 36(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_HI(9, PMP_OFF)
    TEST_CASE(80)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 10)
    PMP_SET_HI(10, PMP_NA4)
    GOTO_U
    lw a0, 44(s7)
    TRAP_RUN(lw a0, 40(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_HI(10, PMP_OFF)
    TEST_CASE(81)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 11)
    PMP_SET_HI(11, PMP_NA4)
    GOTO_U
    lw a0, 48(s7)
    TRAP_RUN(lw a0, 44(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_HI(11, PMP_OFF)
    TEST_CASE(82)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 12)
    PMP_SET_HI(12, PMP_NA4)
    GOTO_U
    lw a0, 52(s7)
    TRAP_RUN(lw a0, 48(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_HI(12, PMP_OFF)
    TEST_CASE(83)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 13)
    PMP_SET_HI(13, PMP_NA4)
    GOTO_U
    lw a0, 56(s7)
    TRAP_RUN(lw a0, 52(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_HI(13, PMP_OFF)
    TEST_CASE(84)
    PMP_ADDR(pmp_area, PAGE(6) + 4 * 14)
    PMP_SET_HI(14, PMP_NA4)
    GOTO_U
    lw a0, 60(s7)
    TRAP_RUN(lw a0, 56(s7))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    GOTO_M
    PMP_SET_HI(14, PMP_OFF)
    TEST_CASE(85)               /* entry 15: move the RAM entry to 14, give 15 one UART word */
    li t1, (0x80000000 >> 2) | ((0x80000000 >> 3) - 1)
    PMP_SET_HI(14, PMP_NAPOT | PMP_R | PMP_W | PMP_X)
    li t1, (UART_BASE + 4) >> 2
    PMP_SET_HI(15, PMP_NA4 | PMP_R)
    GOTO_U
    li a1, UART_BASE
    lbu a0, 5(a1)               /* LSR: inside entry 15's word */
    TRAP_RUN(lbu a0, 9(a1))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    TRAP_RUN(sb a0, 5(a1))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    GOTO_M
    li t1, (0x80000000 >> 2) | ((0x80000000 >> 3) - 1)
    PMP_SET_HI(15, PMP_NAPOT | PMP_R | PMP_W | PMP_X)
    PMP_SET_HI(14, PMP_OFF)

    /* ---- Locked entries (must come last) ---- */
    TEST_CASE(60)               /* a locked NA4 entry without permissions binds M */
    PMP_ADDR(pmp_area, PAGE(4) + 8)
    PMP_SET_LO(6, PMP_NA4 | PMP_L)
    li t0, PAGE(4)
    add s5, s1, t0
    lw a0, 4(s5)
    TRAP_RUN(lw a0, 8(s5))
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    addi t6, s5, 8
    CHECK_EQ_REG(t4, t6)
    TRAP_RUN(sw a0, 8(s5))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    TEST_CASE(61)               /* the locked entry cannot be changed */
    csrr a2, pmpcfg0
    li t0, 0xff << 48
    csrs pmpcfg0, t0
    csrc pmpcfg0, t0
    csrr a3, pmpcfg0
    CHECK_EQ_REG(a3, a2)
    csrr a2, pmpaddr6
    csrw pmpaddr6, zero
    csrr a3, pmpaddr6
    CHECK_EQ_REG(a3, a2)
    TRAP_RUN(lw a0, 8(s5))                      /* still enforced */
    CHECK_TRAP(PRV_M, CAUSE_LOAD_ACCESS)
    TEST_CASE(62)               /* a locked TOR entry also locks the pmpaddr below it */
    PMP_ADDR(pmp_area, PAGE(5))
    PMP_SET_HI(8, PMP_OFF)
    PMP_ADDR(pmp_area, PAGE(6))
    PMP_SET_HI(9, PMP_TOR | PMP_R | PMP_L)      /* [page 5, page 6): read-only, even for M */
    li t0, PAGE(5)
    add s6, s1, t0
    lw a0, 0(s6)
    TRAP_RUN(sw a0, 0(s6))
    CHECK_TRAP(PRV_M, CAUSE_STORE_ACCESS)
    csrr a2, pmpaddr8
    csrw pmpaddr8, zero
    csrr a3, pmpaddr8
    CHECK_EQ_REG(a3, a2)
    TEST_CASE(63)               /* the other entries are still writable */
    li t1, 0x1234
    csrw pmpaddr10, t1
    csrr a0, pmpaddr10
    CHECK_EQ(a0, 0x1234)

TEST_END

    .bss
    .balign 65536               /* so that the NAPOT regions inside are aligned */
pmp_area:
    .space 4096 * 8
