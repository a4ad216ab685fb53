/* test.h — macros and constants for Rewind's self-checking bare-metal tests.
 *
 * Every program in this directory is built as
 *     riscv64-linux-gnu-gcc -march=rv64gc_zba_zbb_zbs_zicbom_zicboz_zihintpause_zicsr_zifencei
 *         -mabi=lp64d -nostdlib -nostartfiles -static -T link.ld -I tests/asm
 *         tests/asm/common.S tests/asm/<program>.S
 * and runs on QEMU's `virt` board (and on Rewind) with no firmware: it starts in
 * M-mode at _start (common.S), which sets up traps and jumps to the program's
 * TEST_BEGIN. A program prints `PASS <name>` and exits 0 through the SiFive test
 * finisher, or prints a FAIL line and exits with a nonzero code.
 *
 * Register conventions (see common.S for the trap handlers):
 *   gp      the current case number (TEST_CASE); printed on failure.
 *   tp      0 normally; TRAP_RUN puts a resume address here. A trap taken while
 *           tp holds an address is "expected": the handler records it and resumes.
 *   t3..t6  clobbered by the CHECK and TRAP macros.
 *   t0, a0, a7  clobbered by the mode-switch macros (GOTO_M, GOTO_S, ...).
 * Local labels 6..9 are used by the macros; tests use 1..5.
 * Tests that write mscratch or sscratch must restore them (they point to the
 * trap frames).
 * Exit codes: 1 a check failed, 2 an unexpected trap, 3 an interrupt storm.
 *
 * Known deviations of QEMU 7.2 from the specification are checked with
 * CHECK_EQ_SPEC_OR_QEMU72 and friends: QEMU's value on QEMU 7.2, the
 * specified value everywhere else (README.md lists them).
 */
#ifndef REWIND_TEST_H
#define REWIND_TEST_H

/* Absolute code: `la` is a PC-relative address, never a GOT load. */
    .option nopic

/* ---- The board (QEMU virt memory map) ---------------------------------- */
#define FINISHER_BASE   0x100000
#define FINISHER_PASS   0x5555
#define FINISHER_FAIL   0x3333
#define CLINT_BASE      0x2000000
#define CLINT_MSIP      (CLINT_BASE + 0x0)
#define CLINT_MTIMECMP  (CLINT_BASE + 0x4000)
#define CLINT_MTIME     (CLINT_BASE + 0xbff8)
#define PLIC_BASE       0xc000000
#define UART_BASE       0x10000000
#define UART_IRQ        10
#define RAM_BASE        0x80000000

/* ---- Privilege levels ---------------------------------------------------- */
#define PRV_U 0
#define PRV_S 1
#define PRV_M 3

/* ---- mstatus ------------------------------------------------------------- */
#define MSTATUS_SIE     (1 << 1)
#define MSTATUS_MIE     (1 << 3)
#define MSTATUS_SPIE    (1 << 5)
#define MSTATUS_UBE     (1 << 6)
#define MSTATUS_MPIE    (1 << 7)
#define MSTATUS_SPP     (1 << 8)
#define MSTATUS_VS      (3 << 9)
#define MSTATUS_MPP     (3 << 11)
#define MSTATUS_MPP_S   (1 << 11)
#define MSTATUS_MPP_M   (3 << 11)
#define MSTATUS_FS      (3 << 13)
#define MSTATUS_FS_OFF      (0 << 13)
#define MSTATUS_FS_INITIAL  (1 << 13)
#define MSTATUS_FS_CLEAN    (2 << 13)
#define MSTATUS_FS_DIRTY    (3 << 13)
#define MSTATUS_XS      (3 << 15)
#define MSTATUS_MPRV    (1 << 17)
#define MSTATUS_SUM     (1 << 18)
#define MSTATUS_MXR     (1 << 19)
#define MSTATUS_TVM     (1 << 20)
#define MSTATUS_TW      (1 << 21)
#define MSTATUS_TSR     (1 << 22)
#define MSTATUS_UXL     (3 << 32)
#define MSTATUS_SXL     (3 << 34)
#define MSTATUS_SBE     (1 << 36)
#define MSTATUS_MBE     (1 << 37)
#define MSTATUS_SD      (1 << 63)

/* ---- Trap causes --------------------------------------------------------- */
#define CAUSE_MISALIGNED_FETCH  0
#define CAUSE_FETCH_ACCESS      1
#define CAUSE_ILLEGAL_INSN      2
#define CAUSE_BREAKPOINT        3
#define CAUSE_MISALIGNED_LOAD   4
#define CAUSE_LOAD_ACCESS       5
#define CAUSE_MISALIGNED_STORE  6
#define CAUSE_STORE_ACCESS      7
#define CAUSE_ECALL_U           8
#define CAUSE_ECALL_S           9
#define CAUSE_ECALL_M           11
#define CAUSE_FETCH_PAGE_FAULT  12
#define CAUSE_LOAD_PAGE_FAULT   13
#define CAUSE_STORE_PAGE_FAULT  15

#define IRQ_S_SOFT   1
#define IRQ_M_SOFT   3
#define IRQ_S_TIMER  5
#define IRQ_M_TIMER  7
#define IRQ_S_EXT    9
#define IRQ_M_EXT    11
#define MIP_SSIP     (1 << IRQ_S_SOFT)
#define MIP_MSIP     (1 << IRQ_M_SOFT)
#define MIP_STIP     (1 << IRQ_S_TIMER)
#define MIP_MTIP     (1 << IRQ_M_TIMER)
#define MIP_SEIP     (1 << IRQ_S_EXT)
#define MIP_MEIP     (1 << IRQ_M_EXT)
#define CAUSE_INTERRUPT (1 << 63)

#define IRQ_LOG_LEN 32
/* Entries of irq_log (common.S): (privilege of the handler << 8) | code. */
#define IRQ_LOG_M(code) ((PRV_M << 8) | (code))
#define IRQ_LOG_S(code) ((PRV_S << 8) | (code))

/* ---- satp, page tables ---------------------------------------------------- */
#define SATP_MODE_BARE  (0 << 60)
#define SATP_MODE_SV39  (8 << 60)
#define SATP_MODE_SV48  (9 << 60)
#define SATP_MODE_SV57  (10 << 60)
#define SATP_ASID_SHIFT 44
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_U (1 << 4)
#define PTE_G (1 << 5)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)

/* ---- PMP ------------------------------------------------------------------ */
#define PMP_R     0x01
#define PMP_W     0x02
#define PMP_X     0x04
#define PMP_OFF   0x00
#define PMP_TOR   0x08
#define PMP_NA4   0x10
#define PMP_NAPOT 0x18
#define PMP_L     0x80

/* ---- menvcfg -------------------------------------------------------------- */
#define MENVCFG_FIOM  (1 << 0)
#define MENVCFG_CBIE  (3 << 4)
#define MENVCFG_CBCFE (1 << 6)
#define MENVCFG_CBZE  (1 << 7)
#define MENVCFG_STCE  (1 << 63)

/* CSRs that binutils 2.40 may not know by name. */
#define CSR_STIMECMP 0x14d

/* ---- Magic values in a7 for `ecall` requests to the trap handlers ---------- */
#define MAGIC_PASS          0x52570001
#define MAGIC_FAIL          0x52570002
#define MAGIC_GOTO_M        0x52570003
#define MAGIC_GOTO_M_AT     0x52570004
#define MAGIC_GOTO_S        0x52570005
#define MAGIC_S_UNEXPECTED  0x52570006

/* ---- Program structure ------------------------------------------------------ */

/* Start the program `name` (printed in PASS/FAIL lines). The code after it runs
 * in M-mode with: traps vectored (direct) to m_trap_handler, stvec set to
 * s_trap_handler, mstatus.FS = Initial, PMP entry 0 granting RWX on all memory
 * (so that S and U can run), nothing delegated, interrupts disabled. */
#define TEST_BEGIN(name)                        \
    .section .rodata;                           \
    .globl test_name;                           \
test_name:                                      \
    .asciz #name;                               \
    .text;                                      \
    .globl test_main;                           \
    .balign 4;                                  \
test_main:

/* Finish the program: print "PASS <name>" and exit 0. Works in any mode. */
#define TEST_END                                \
    li a7, MAGIC_PASS;                          \
    ecall;                                      \
    j .

/* Number the checks that follow (printed on failure). */
#define TEST_CASE(n) li gp, n

/* ---- Checks: on mismatch print case, line, got, expected and exit 1. ------- */

/* reg == the constant val (64-bit) */
#define CHECK_EQ(reg, val)                      \
    li t6, val;                                 \
    beq reg, t6, 7f;                            \
    mv a2, reg;                                 \
    mv a3, t6;                                  \
    li a1, __LINE__;                            \
    j test_fail;                                \
7:

/* reg == reg2 */
#define CHECK_EQ_REG(reg, reg2)                 \
    beq reg, reg2, 7f;                          \
    mv a2, reg;                                 \
    mv a3, reg2;                                \
    li a1, __LINE__;                            \
    j test_fail;                                \
7:

/* reg == the address of sym */
#define CHECK_EQ_ADDR(reg, sym)                 \
    la t6, sym;                                 \
    CHECK_EQ_REG(reg, t6)

/* (reg & mask) == val */
#define CHECK_MASKED(reg, mask, val)            \
    li t6, mask;                                \
    and t5, reg, t6;                            \
    CHECK_EQ(t5, val)

/* The 64 bits of double register freg are `bits`. */
#define CHECK_FD(freg, bits)                    \
    fmv.x.d t5, freg;                           \
    CHECK_EQ(t5, bits)

/* freg holds the single `bits`, correctly NaN-boxed (upper 32 bits all ones). */
#define CHECK_FS(freg, bits)                    \
    fmv.x.d t5, freg;                           \
    CHECK_EQ(t5, (0xffffffff00000000 | (bits)))

/* fflags == val, then clear fflags. */
#define CHECK_FFLAGS(val)                       \
    csrrci t5, fflags, 0x1f;                    \
    CHECK_EQ(t5, val)

/* The CSR reads as val. */
#define CHECK_CSR(csr, val)                     \
    csrr t5, csr;                               \
    CHECK_EQ(t5, val)

/* ---- Integer operation checks (operands in a1, a2; result in a0) ---------- */
#define TEST_RR_OP(n, inst, result, v1, v2)     \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    li a2, v2;                                  \
    inst a0, a1, a2;                            \
    CHECK_EQ(a0, result)

#define TEST_IMM_OP(n, inst, result, v1, imm)   \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    inst a0, a1, imm;                           \
    CHECK_EQ(a0, result)

#define TEST_R_OP(n, inst, result, v1)          \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    inst a0, a1;                                \
    CHECK_EQ(a0, result)

/* The destination is also the first source. */
#define TEST_RR_SRC1_EQ_DEST(n, inst, result, v1, v2) \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    li a2, v2;                                  \
    inst a1, a1, a2;                            \
    CHECK_EQ(a1, result)

/* The destination is also the second source. */
#define TEST_RR_SRC2_EQ_DEST(n, inst, result, v1, v2) \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    li a2, v2;                                  \
    inst a2, a1, a2;                            \
    CHECK_EQ(a2, result)

/* Writes to x0 are discarded. */
#define TEST_RR_ZERO_DEST(n, inst, v1, v2)      \
    TEST_CASE(n);                               \
    li a1, v1;                                  \
    li a2, v2;                                  \
    inst x0, a1, a2;                            \
    CHECK_EQ(x0, 0)

/* Known deviations of QEMU 7.2 from the specification: on QEMU 7.2 (recognised
 * by its marchid, see common.S) reg must equal qemu_val, everywhere else the
 * specified spec_val. Each use says what the deviation is. */
#define CHECK_EQ_SPEC_OR_QEMU72(reg, spec_val, qemu_val) \
    CHECK_EQ_SPEC_OR_FLAG(reg, spec_val, qemu_val, on_qemu_7_2)

/* Known deviations of every QEMU from 7.2 to 10.0 (recognised by marchid):
 * on QEMU reg must equal qemu_val, everywhere else spec_val. */
#define CHECK_EQ_SPEC_OR_QEMU(reg, spec_val, qemu_val) \
    CHECK_EQ_SPEC_OR_FLAG(reg, spec_val, qemu_val, on_qemu)

#define CHECK_EQ_SPEC_OR_FLAG(reg, spec_val, qemu_val, flag) \
    ld t6, flag;                                \
    beqz t6, 6f;                                \
    li t6, qemu_val;                            \
    j 7f;                                       \
6:  li t6, spec_val;                            \
7:  CHECK_EQ_REG(reg, t6)

/* Unconditional failure with a code (shown as "got"). */
#define FAIL_HERE(code)                         \
    li a2, code;                                \
    li a3, 0;                                   \
    li a1, __LINE__;                            \
    j test_fail

/* ---- Expected traps ------------------------------------------------------------
 * TRAP_RUN(insns...) runs the instructions, which are expected to trap; the
 * handler (M or S) records the trap and resumes after them. Afterwards:
 *   tp = privilege of the handler that took it (PRV_M or PRV_S),
 *        or still the resume address if nothing trapped;
 *   t3 = cause, t4 = tval, t5 = epc.
 * The label 8b is the first trapping instruction. */
#define TRAP_RUN(...)                           \
    la tp, 9f;                                  \
8:  __VA_ARGS__;                                \
9:

/* After TRAP_RUN: check handler privilege, cause, and epc == 8b. */
#define CHECK_TRAP(prv, cause)                  \
    CHECK_EQ(tp, prv);                          \
    li tp, 0;                                   \
    CHECK_EQ(t3, cause);                        \
    CHECK_EQ_ADDR(t5, 8b)

/* Check that the instructions trap into M-mode with cause (and tval). */
#define EXPECT_TRAP(cause, ...)                 \
    TRAP_RUN(__VA_ARGS__);                      \
    CHECK_TRAP(PRV_M, cause)

#define EXPECT_TRAP_TVAL(cause, tval, ...)      \
    TRAP_RUN(__VA_ARGS__);                      \
    CHECK_TRAP(PRV_M, cause);                   \
    CHECK_EQ(t4, tval)

/* Same, taken by the S-mode handler. */
#define EXPECT_S_TRAP(cause, ...)               \
    TRAP_RUN(__VA_ARGS__);                      \
    CHECK_TRAP(PRV_S, cause)

#define EXPECT_S_TRAP_TVAL(cause, tval, ...)    \
    TRAP_RUN(__VA_ARGS__);                      \
    CHECK_TRAP(PRV_S, cause);                   \
    CHECK_EQ(t4, tval)

/* An AMO whose address a load would fault on too (unmapped, no permission at
 * all): a store/AMO exception, store_cause, with tval, taken in M.
 * QEMU 7.2 deviation: it raises the load exception, load_cause, instead (with
 * one hart it runs an AMO as a load then a store, and the load faults first;
 * where only the store would fault, it reports the store fault correctly). */
#define EXPECT_AMO_FAULT(store_cause, load_cause, tval, ...) \
    TRAP_RUN(__VA_ARGS__);                      \
    CHECK_EQ(tp, PRV_M);                        \
    li tp, 0;                                   \
    CHECK_EQ_SPEC_OR_QEMU72(t3, store_cause, load_cause); \
    CHECK_EQ_ADDR(t5, 8b);                      \
    CHECK_EQ(t4, tval)

/* Illegal instruction, tval = the instruction's bits (32-bit instruction). */
#define EXPECT_ILLEGAL_WORD(word)               \
    EXPECT_TRAP_TVAL(CAUSE_ILLEGAL_INSN, word, .4byte word)

/* Check the instructions do NOT trap (any trap is reported as unexpected). */
#define EXPECT_NO_TRAP(...) __VA_ARGS__

/* ---- Privilege changes ----------------------------------------------------------
 * GOTO_S / GOTO_U (from M) and S_GOTO_U (from S) continue inline in the lower
 * mode. GOTO_M (from anywhere) continues inline in M-mode; GOTO_S from U
 * continues inline in S-mode. They clobber t0, a0 and a7. */
#define GOTO_PRV_FROM_M(prv)                    \
    li t0, MSTATUS_MPP;                         \
    csrc mstatus, t0;                           \
    li t0, ((prv) << 11);                       \
    csrs mstatus, t0;                           \
    la t0, 6f;                                  \
    csrw mepc, t0;                              \
    mret;                                       \
6:

#define GOTO_S GOTO_PRV_FROM_M(PRV_S)
#define GOTO_U GOTO_PRV_FROM_M(PRV_U)

#define S_GOTO_U                                \
    li t0, MSTATUS_SPP;                         \
    csrc sstatus, t0;                           \
    la t0, 6f;                                  \
    csrw sepc, t0;                              \
    sret;                                       \
6:

#define GOTO_M                                  \
    li a7, MAGIC_GOTO_M;                        \
    ecall;                                      \
    li a7, 0

#define U_GOTO_S                                \
    li a7, MAGIC_GOTO_S;                        \
    ecall;                                      \
    li a7, 0

/* ---- Interrupt log ------------------------------------------------------------
 * Both handlers append (privilege << 8) | code to irq_log for every interrupt,
 * clear that interrupt's enable bit (mie or sie) so that it does not fire again,
 * and return to the interrupted instruction. */
#define CLEAR_IRQ_LOG                           \
    la t5, irq_count;                           \
    sd zero, 0(t5)

/* irq_count == n */
#define CHECK_IRQ_COUNT(n)                      \
    ld t5, irq_count;                           \
    CHECK_EQ(t5, n)

/* irq_log[i] == val */
#define CHECK_IRQ_LOG(i, val)                   \
    la t5, irq_log;                             \
    ld t5, (8 * (i))(t5);                       \
    CHECK_EQ(t5, val)

/* irq_log[i] == spec_val, or qemu_val on QEMU (7.2 and 10.0 alike), which
 * takes pending interrupts lowest cause number first instead of in the
 * priority order of the privileged spec (3.1.9: MEI, MSI, MTI, SEI, SSI,
 * STI): it only applies the spec's order when the AIA extensions are
 * enabled. */
#define CHECK_IRQ_LOG_SPEC_OR_QEMU(i, spec_val, qemu_val) \
    la t5, irq_log;                             \
    ld t5, (8 * (i))(t5);                       \
    CHECK_EQ_SPEC_OR_QEMU(t5, spec_val, qemu_val)

#endif
