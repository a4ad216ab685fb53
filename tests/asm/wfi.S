/* wfi.S — WFI:
 *   - with mstatus.MIE = 0 and the timer enabled in mie, WFI returns once the
 *     timer is pending, and no trap is taken;
 *   - with MIE = 1, the interrupt is taken with mepc = the WFI or the
 *     instruction after it;
 *   - a far deadline still arrives (Rewind skips idle time; QEMU waits);
 *   - in S-mode, an M-level interrupt ends the WFI by trapping into M;
 *   - mstatus.TW = 1 makes WFI in S-mode illegal; TW does not affect M;
 *   - WFI in U-mode is illegal (S-mode exists).
 * WFI may also return early (it is a hint), so every wait is a loop that
 * checks mip; how long anything took is never measured. */
#include "test.h"

#define ARM_TIMER(delta)                        \
    li t0, CLINT_MTIME;                         \
    ld t1, 0(t0);                               \
    li t2, delta;                               \
    add t1, t1, t2;                             \
    li t0, CLINT_MTIMECMP;                      \
    sd t1, 0(t0)

#define DISARM_TIMER                            \
    li t0, CLINT_MTIMECMP;                      \
    li t1, -1;                                  \
    sd t1, 0(t0);                               \
    li t0, MIP_MTIP;                            \
1:  csrr t1, mip;                               \
    and t1, t1, t0;                             \
    bnez t1, 1b

TEST_BEGIN(wfi)

    DISARM_TIMER

    TEST_CASE(1)                /* MIE = 0: WFI returns when the timer is pending */
    CLEAR_IRQ_LOG
    li t0, MIP_MTIP
    csrs mie, t0
    ARM_TIMER(1000)
    li t0, MIP_MTIP
1:  wfi
    csrr t1, mip
    and t1, t1, t0
    beqz t1, 1b
    CHECK_IRQ_COUNT(0)
    DISARM_TIMER

    TEST_CASE(2)                /* a far deadline (100 ms of QEMU's 10 MHz timebase) */
    ARM_TIMER(1000000)
    li t0, MIP_MTIP
1:  wfi
    csrr t1, mip
    and t1, t1, t0
    beqz t1, 1b
    CHECK_IRQ_COUNT(0)
    DISARM_TIMER

    /* On QEMU the timer runs in real time: a host that stalls the guest
     * past the deadline before it reaches the WFI has the interrupt taken
     * on the way there (the handler then masks it, so a WFI after it would
     * wait for ever). So the deadline is far (10 ms), the loop looks at the
     * count before each WFI, and an interrupt taken in the loop's head is
     * accepted too; Rewind's virtual time always reaches the WFI first. */
    TEST_CASE(3)                /* MIE = 1: the interrupt is taken at or right after the WFI */
    CLEAR_IRQ_LOG
    ARM_TIMER(100000)
    li t0, MSTATUS_MIE
    csrs mstatus, t0
1:  ld t1, irq_count
5:  bnez t1, 4f
2:  wfi
3:  j 1b
4:  li t0, MSTATUS_MIE
    csrc mstatus, t0
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_M_TIMER))
    ld a0, irq_last_epc
    la a1, 3b
    beq a0, a1, 4f
    la a1, 1b
    beq a0, a1, 4f
    la a1, 5b
    beq a0, a1, 4f
    CHECK_EQ_ADDR(a0, 2b)
4:  DISARM_TIMER

    TEST_CASE(4)                /* in S: an M interrupt ends the WFI, trapping into M */
    CLEAR_IRQ_LOG
    li t0, MIP_MTIP
    csrs mie, t0
    ARM_TIMER(100000)           /* far, as in case 3 */
    li t0, MSTATUS_MPIE
    csrc mstatus, t0            /* MIE = 0 in S, which does not mask M interrupts */
    GOTO_S
1:  ld t1, irq_count
5:  bnez t1, 4f
2:  wfi
3:  j 1b
4:  GOTO_M
    CHECK_IRQ_COUNT(1)
    CHECK_IRQ_LOG(0, IRQ_LOG_M(IRQ_M_TIMER))
    ld a0, irq_last_epc
    la a1, 3b
    beq a0, a1, 4f
    la a1, 1b
    beq a0, a1, 4f
    la a1, 5b
    beq a0, a1, 4f
    CHECK_EQ_ADDR(a0, 2b)
4:  DISARM_TIMER

    TEST_CASE(5)                /* TW = 1: WFI in S is illegal, in M is not */
    csrw mie, zero
    li t0, MSTATUS_TW
    csrs mstatus, t0
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x10500073)     /* wfi */
    GOTO_M
    /* Coming back into M from case 4's S-mode can leave MIE set; with it,
     * a timer that fires before the WFI below is taken (and masked by the
     * handler), and the WFI then waits for ever. This case wants no trap. */
    li t0, MSTATUS_MIE
    csrc mstatus, t0
    li t0, MIP_MTIP
    csrs mie, t0
    ARM_TIMER(1000)
    li t0, MIP_MTIP
1:  wfi                         /* M-mode: allowed with TW = 1 */
    csrr t1, mip
    and t1, t1, t0
    beqz t1, 1b
    DISARM_TIMER
    csrw mie, zero
    li t0, MSTATUS_TW
    csrc mstatus, t0

    TEST_CASE(6)                /* U-mode: illegal */
    GOTO_U
    EXPECT_ILLEGAL_WORD(0x10500073)
    GOTO_M

TEST_END
