/* sstc.S — the Sstc extension:
 *   - menvcfg.STCE enables it; stimecmp (CSR 0x14d) is then the S-mode timer:
 *     mip.STIP = (time >= stimecmp), and STIP is no longer writable in mip;
 *   - with STCE = 0, STIP is the ordinary software-writable bit again;
 *   - an S-mode timer interrupt, delegated, taken in S after S-mode sets
 *     stimecmp (awaited by spinning, never timed);
 *   - access: M always; S needs mcounteren.TM and STCE; U never. */
#include "test.h"

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

TEST_BEGIN(sstc)

    TEST_CASE(1)                /* STCE is writable */
    li t0, MENVCFG_STCE
    csrs menvcfg, t0
    csrr a0, menvcfg
    CHECK_MASKED(a0, MENVCFG_STCE, MENVCFG_STCE)
    TEST_CASE(2)                /* stimecmp holds 64 bits */
    li a1, 0x123456789abcdef0
    csrw CSR_STIMECMP, a1
    csrr a0, CSR_STIMECMP
    CHECK_EQ_REG(a0, a1)

    /* ---- STIP follows time >= stimecmp ---- */
    TEST_CASE(10)
    li t0, -1
    csrw CSR_STIMECMP, t0
    WAIT_MIP_CLEAR(MIP_STIP)
    csrw CSR_STIMECMP, zero
    WAIT_MIP_SET(MIP_STIP)
    TEST_CASE(11)               /* ... and is read-only in mip */
    li t0, MIP_STIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_STIP, MIP_STIP)
    li t0, -1
    csrw CSR_STIMECMP, t0
    WAIT_MIP_CLEAR(MIP_STIP)
    li t0, MIP_STIP
    csrs mip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_STIP, 0)
    TEST_CASE(12)               /* a deadline a little in the future arrives */
    csrr t1, time
    addi t1, t1, 50
    csrw CSR_STIMECMP, t1
    WAIT_MIP_SET(MIP_STIP)
    csrr a0, time
    csrr a1, CSR_STIMECMP
    bgeu a0, a1, 1f
    FAIL_HERE(12)
1:  li t0, -1
    csrw CSR_STIMECMP, t0
    WAIT_MIP_CLEAR(MIP_STIP)

    /* ---- A delegated S timer interrupt, armed by S ---- */
    TEST_CASE(20)
    CLEAR_IRQ_LOG
    li t0, 0x2                  /* mcounteren.TM: S may use time and stimecmp */
    csrw mcounteren, t0
    li t0, MIP_STIP
    csrw mideleg, t0
    GOTO_S
    li t0, MIP_STIP
    csrs sie, t0
    csrsi sstatus, MSTATUS_SIE
    csrr t1, time
    addi t1, t1, 50
    csrw CSR_STIMECMP, t1
1:  ld t2, irq_count            /* wait, however long it takes */
    beqz t2, 1b
    csrci sstatus, MSTATUS_SIE
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_S(IRQ_S_TIMER))
    li t0, -1
    csrw CSR_STIMECMP, t0
    csrr a0, CSR_STIMECMP
    CHECK_EQ(a0, -1)
    GOTO_M
    WAIT_MIP_CLEAR(MIP_STIP)
    csrw mideleg, zero

    /* ---- Access control ---- */
    TEST_CASE(30)               /* S without mcounteren.TM: illegal */
    csrw mcounteren, zero
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x14d02573)     /* csrr a0, stimecmp */
    GOTO_M
    TEST_CASE(31)               /* U: illegal */
    li t0, 0x2
    csrw mcounteren, t0
    csrw scounteren, t0
    GOTO_U
    EXPECT_ILLEGAL_WORD(0x14d02573)
    GOTO_M
    TEST_CASE(32)               /* STCE = 0: S may not access it; M may */
    li t0, MENVCFG_STCE
    csrc menvcfg, t0
    csrr a0, CSR_STIMECMP
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x14d02573)
    GOTO_M
    TEST_CASE(33)               /* STCE = 0: STIP is software-writable again, stimecmp ignored */
    csrr a0, mip                /* case 11's csrs, made while STCE = 1, left nothing behind */
    CHECK_MASKED(a0, MIP_STIP, 0)
    csrw CSR_STIMECMP, zero
    li t0, MIP_STIP
    csrc mip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_STIP, 0)
    csrs mip, t0
    csrr a0, mip
    CHECK_MASKED(a0, MIP_STIP, MIP_STIP)
    csrc mip, t0
    csrw mcounteren, zero
    csrw scounteren, zero

TEST_END
