/* cbo.S — Zicbom and Zicboz (cache-block size 64 bytes):
 *   - cbo.clean / cbo.flush / cbo.inval execute in M-mode without faulting and
 *     (clean, flush) leave memory as it was;
 *   - cbo.zero zeroes exactly the 64-byte block holding the address;
 *   - menvcfg.CBZE / CBCFE / CBIE gate S-mode (illegal instruction when
 *     clear), and senvcfg's bits gate U-mode as well;
 *   - cbo.zero is a store: it raises a store access fault where nothing is
 *     mapped, tval = the address given.
 * QEMU 7.2 does not implement Zicbom or Zicboz (they arrived in QEMU 8.0): on
 * it this program only checks that the four instructions are illegal there,
 * so these checks have not been validated against QEMU. */
#include "test.h"

#define SENVCFG_CBZE  (1 << 7)
#define SENVCFG_CBCFE (1 << 6)
#define SENVCFG_CBIE  (3 << 4)

/* Fill 3 blocks from `blocks` with the byte pattern 0xa5. */
#define FILL_BLOCKS                             \
    la a1, blocks;                              \
    li a2, 0xa5a5a5a5a5a5a5a5;                  \
    li a3, 24;                                  \
1:  sd a2, 0(a1);                               \
    addi a1, a1, 8;                             \
    addi a3, a3, -1;                            \
    bnez a3, 1b

/* a0 = number of zero dwords in the 3 blocks; a4 = the OR of block 1's. */
#define COUNT_ZERO_DWORDS                       \
    la a1, blocks;                              \
    li a3, 24;                                  \
    li a0, 0;                                   \
1:  ld a2, 0(a1);                               \
    bnez a2, 2f;                                \
    addi a0, a0, 1;                             \
2:  addi a1, a1, 8;                             \
    addi a3, a3, -1;                            \
    bnez a3, 1b

TEST_BEGIN(cbo)

    ld t0, on_qemu_7_2
    beqz t0, 1f
    TEST_CASE(100)              /* QEMU 7.2: no CMO extensions at all */
    la a1, blocks
    EXPECT_ILLEGAL_WORD(0x0045a00f)     /* cbo.zero (a1) */
    EXPECT_ILLEGAL_WORD(0x0015a00f)     /* cbo.clean (a1) */
    EXPECT_ILLEGAL_WORD(0x0025a00f)     /* cbo.flush (a1) */
    EXPECT_ILLEGAL_WORD(0x0005a00f)     /* cbo.inval (a1) */
    TEST_END
1:

    /* ---- Management operations in M-mode ---- */
    TEST_CASE(1)
    FILL_BLOCKS
    la a1, blocks
    cbo.clean (a1)
    cbo.flush (a1)
    addi a2, a1, 64 + 8         /* any address in the block */
    cbo.clean (a2)
    cbo.flush (a2)
    COUNT_ZERO_DWORDS
    CHECK_EQ(a0, 0)
    la a1, blocks
    ld a0, 64(a1)
    CHECK_EQ(a0, 0xa5a5a5a5a5a5a5a5)
    TEST_CASE(2)                /* cbo.inval executes (its effect on data is not checked) */
    la a1, blocks
    cbo.inval (a1)

    /* ---- cbo.zero ---- */
    TEST_CASE(10)
    FILL_BLOCKS
    la a1, blocks
    addi a1, a1, 64 + 17        /* inside the middle block */
    cbo.zero (a1)
    COUNT_ZERO_DWORDS
    CHECK_EQ(a0, 8)             /* exactly 64 bytes */
    la a1, blocks
    ld a0, 56(a1)               /* the neighbours are intact */
    CHECK_EQ(a0, 0xa5a5a5a5a5a5a5a5)
    ld a0, 128(a1)
    CHECK_EQ(a0, 0xa5a5a5a5a5a5a5a5)
    ld a0, 64(a1)
    CHECK_EQ(a0, 0)
    ld a0, 120(a1)
    CHECK_EQ(a0, 0)
    TEST_CASE(11)               /* nothing mapped there: store access fault */
    li a1, 0x100
    EXPECT_TRAP_TVAL(CAUSE_STORE_ACCESS, 0x100, cbo.zero (a1))

    /* ---- Enables for S and U ---- */
    TEST_CASE(20)               /* menvcfg = 0: all illegal in S */
    csrw menvcfg, zero
    la a1, blocks
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x0045a00f)     /* cbo.zero (a1) */
    EXPECT_ILLEGAL_WORD(0x0015a00f)     /* cbo.clean (a1) */
    EXPECT_ILLEGAL_WORD(0x0025a00f)     /* cbo.flush (a1) */
    EXPECT_ILLEGAL_WORD(0x0005a00f)     /* cbo.inval (a1) */
    GOTO_M
    TEST_CASE(21)               /* menvcfg enables S; U still needs senvcfg */
    li t0, MENVCFG_CBZE | MENVCFG_CBCFE | MENVCFG_CBIE
    csrs menvcfg, t0
    csrw senvcfg, zero
    FILL_BLOCKS
    la a1, blocks
    GOTO_S
    cbo.zero (a1)
    cbo.clean (a1)
    cbo.flush (a1)
    cbo.inval (a1)
    S_GOTO_U
    EXPECT_ILLEGAL_WORD(0x0045a00f)
    EXPECT_ILLEGAL_WORD(0x0015a00f)
    EXPECT_ILLEGAL_WORD(0x0005a00f)
    GOTO_M
    COUNT_ZERO_DWORDS
    CHECK_EQ(a0, 8)
    TEST_CASE(22)               /* senvcfg enables U */
    li t0, SENVCFG_CBZE | SENVCFG_CBCFE | SENVCFG_CBIE
    csrs senvcfg, t0
    FILL_BLOCKS
    la a1, blocks
    addi a1, a1, 128
    GOTO_U
    cbo.zero (a1)
    cbo.clean (a1)
    cbo.flush (a1)
    GOTO_M
    COUNT_ZERO_DWORDS
    CHECK_EQ(a0, 8)
    la a1, blocks
    ld a0, 128(a1)
    CHECK_EQ(a0, 0)
    csrw senvcfg, zero
    csrw menvcfg, zero

TEST_END

    .data
    .balign 64
blocks:
    .space 64 * 3
