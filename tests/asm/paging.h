/* paging.h — the body shared by sv39.S, sv48.S and sv57.S: the same checks in
 * each translation mode (the includer defines VM_LEVELS, VM_SATP_MODE and
 * VM_NAME, and may define VM_EXTRA_MAPS / VM_EXTRA_CHECKS for its own
 * superpage size).
 *
 *   satp holds mode, ASID and root; translation of loads, stores, fetches;
 *   page faults (load 13, store/AMO 15, fetch 12) with tval = the virtual
 *   address for: no mapping, V = 0, write to read-only, read of execute-only,
 *   the reserved W-without-R encoding, a pointer PTE at the last level,
 *   reserved PTE bits (N, PBMT, bits 60-54) without Svnapot / Svpbmt,
 *   non-canonical addresses, misaligned superpages;
 *   U/S protection with SUM (never for fetches) and MXR;
 *   hardware A and D updates (the hart sets them, as QEMU does: Svadu);
 *   2 MiB and 1 GiB superpages; SFENCE.VMA by address, by ASID, both;
 *   ASIDs keep address spaces apart across satp writes without a fence;
 *   MPRV + MPP (and SUM / MXR) for M-mode loads and stores;
 *   mstatus.TVM; PMP checks on the page-table walk (access faults). */
#ifndef REWIND_PAGING_H
#define REWIND_PAGING_H

#include "vm.h"

#define TEST_BEGIN_NAMED(n) TEST_BEGIN(n)

#define KRW (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)

/* Virtual addresses used (valid in Sv39 and up). */
#define VA_T(n)         (0x2000000000 + 0x1000 * (n))
#define VA_UNMAPPED     VA_T(40)
#define VA_MEGA         0x2040000000    /* 2 MiB page -> RAM_BASE */
#define VA_BAD_MEGA     0x2040200000    /* 2 MiB page -> RAM_BASE + 4 KiB: misaligned */
#define VA_GIGA         0x3000000000    /* 1 GiB page -> RAM_BASE, read-only */
#define VA_BAD_GIGA     0x3040000000    /* 1 GiB page -> RAM_BASE + 2 MiB: misaligned */

#define MARK_A 0xaaaa0000000000a1
#define MARK_B 0xbbbb0000000000b2
#define MARK_D 0xdddd0000000000d4
#define RET_INSN 0x00008067

/* Load the dword at the virtual address va into reg (uses t0). */
#define LOAD_VA(reg, va)                        \
    li t0, va;                                  \
    ld reg, 0(t0)

/* Expect a page fault of the given cause, tval = va, taken by M. */
#define EXPECT_LOAD_PF(va)                      \
    li s11, va;                                 \
    EXPECT_TRAP_TVAL(CAUSE_LOAD_PAGE_FAULT, va, ld a0, 0(s11))
#define EXPECT_STORE_PF(va)                     \
    li s11, va;                                 \
    EXPECT_TRAP_TVAL(CAUSE_STORE_PAGE_FAULT, va, sd a0, 0(s11))
#define EXPECT_FETCH_PF(va)                     \
    li s11, va;                                 \
    TRAP_RUN(jalr ra, 0(s11));                  \
    CHECK_EQ(tp, PRV_M);                        \
    li tp, 0;                                   \
    CHECK_EQ(t3, CAUSE_FETCH_PAGE_FAULT);       \
    CHECK_EQ(t4, va);                           \
    CHECK_EQ(t5, va)

TEST_BEGIN_NAMED(VM_NAME)

    /* ---- satp ---- */
    TEST_CASE(1)
    NEW_ADDRESS_SPACE
    ld a1, vm_root
    srli a1, a1, 12
    li t0, VM_SATP_MODE | (5 << SATP_ASID_SHIFT)
    or a1, a1, t0
    csrw satp, a1
    csrr a0, satp
    CHECK_EQ_REG(a0, a1)
    csrw satp, zero
    CHECK_CSR(satp, 0)

    /* ---- The address space used by most cases (ASID 0) ---- */
    MAP_PAGE(VA_T(0), page_a, KRW)
    MAP_PAGE(VA_T(1), page_b, PTE_V | PTE_R | PTE_A)                /* read-only */
    MAP_PAGE(VA_T(2), page_c, PTE_V | PTE_X | PTE_A)                /* execute-only */
    MAP_PAGE(VA_T(3), page_d, PTE_V | PTE_R | PTE_W)                /* A = D = 0 */
    MAP_PAGE(VA_T(4), page_b, PTE_V | PTE_W | PTE_A | PTE_D)        /* W without R */
    MAP_PAGE(VA_T(5), page_a, KRW | PTE_U)                          /* user */
    MAP_PAGE(VA_T(6), page_a, PTE_R | PTE_W | PTE_A | PTE_D)        /* V = 0 */
    MAP_PAGE(VA_T(7), page_c, PTE_V | PTE_R | PTE_X | PTE_A)        /* code */
    MAP_PAGE(VA_T(8), page_c, PTE_V | PTE_R | PTE_X)                /* code, A = 0 */
    MAP_PAGE(VA_T(9), page_c, PTE_V | PTE_R | PTE_X | PTE_U | PTE_A) /* user code */
    MAP_PAGE(VA_T(10), page_a, PTE_V | PTE_R | PTE_A | (1 << 63))   /* N */
    MAP_PAGE(VA_T(11), page_a, PTE_V | PTE_R | PTE_A | (1 << 61))   /* PBMT = 2 */
    MAP_PAGE(VA_T(12), page_a, PTE_V | PTE_R | PTE_A | (1 << 54))   /* reserved bit 54 */
    MAP_PAGE(VA_T(13), page_a, PTE_V)                               /* pointer at level 0 */
    MAP_PAGE(VA_T(14), page_d, PTE_V | PTE_R | PTE_W | PTE_A)       /* D = 0 */
    MAP_LEAF(VA_MEGA, RAM_BASE, PTE_V | PTE_R | PTE_A, 1)
    MAP_LEAF(VA_BAD_MEGA, RAM_BASE + 0x1000, PTE_V | PTE_R | PTE_A, 1)
    MAP_LEAF(VA_GIGA, RAM_BASE, PTE_V | PTE_R | PTE_A, 2)
    MAP_LEAF(VA_BAD_GIGA, RAM_BASE + 0x200000, PTE_V | PTE_R | PTE_A, 2)
#ifdef VM_EXTRA_MAPS
    VM_EXTRA_MAPS
#endif
    PTE_ADDR(VA_T(3), 0)
    mv s3, a0                   /* s3 = &PTE of VA_T(3) (physical = identity VA) */
    PTE_ADDR(VA_T(8), 0)
    mv s4, a0                   /* s4 = &PTE of VA_T(8) */
    PTE_ADDR(VA_T(14), 0)
    mv s5, a0                   /* s5 = &PTE of VA_T(14) */
    PTE_ADDR(VA_T(0), 0)
    mv s6, a0                   /* s6 = &PTE of VA_T(0) */
    SET_SATP(0)
    GOTO_S

    /* ---- Translation ---- */
    TEST_CASE(10)
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_A)
    li a1, VA_T(0)
    li a2, 0x1234
    sd a2, 8(a1)
    la a3, page_a               /* the identity mapping sees the same memory */
    ld a0, 8(a3)
    CHECK_EQ(a0, 0x1234)
    TEST_CASE(11)               /* fetch through a mapping */
    li a1, VA_T(7)
    jalr ra, 0(a1)
    TEST_CASE(12)               /* satp = Bare: physical again */
    csrr s10, satp
    csrw satp, zero
    sfence.vma
    la a1, page_b
    ld a0, 0(a1)
    CHECK_EQ(a0, MARK_B)
    csrw satp, s10
    sfence.vma

    /* ---- Page faults ---- */
    TEST_CASE(20)               /* nothing mapped */
    EXPECT_LOAD_PF(VA_UNMAPPED)
    EXPECT_STORE_PF(VA_UNMAPPED + 8)
    EXPECT_FETCH_PF(VA_UNMAPPED + 16)
    li s11, VA_UNMAPPED
    EXPECT_AMO_FAULT(CAUSE_STORE_PAGE_FAULT, CAUSE_LOAD_PAGE_FAULT, VA_UNMAPPED, amoadd.d a0, a0, (s11))
    EXPECT_TRAP_TVAL(CAUSE_LOAD_PAGE_FAULT, VA_UNMAPPED, lr.d a0, (s11))
    TEST_CASE(21)               /* read-only */
    LOAD_VA(a0, VA_T(1))
    CHECK_EQ(a0, MARK_B)
    EXPECT_STORE_PF(VA_T(1))
    li s11, VA_T(1) + 16
    EXPECT_TRAP_TVAL(CAUSE_STORE_PAGE_FAULT, VA_T(1) + 16, amoswap.w a0, a0, (s11))
    EXPECT_FETCH_PF(VA_T(1))
    TEST_CASE(22)               /* execute-only: no reads (without MXR) */
    li a1, VA_T(2)
    jalr ra, 0(a1)
    EXPECT_LOAD_PF(VA_T(2))
    EXPECT_STORE_PF(VA_T(2))
    TEST_CASE(23)               /* MXR makes executable pages readable */
    li t0, MSTATUS_MXR
    csrs sstatus, t0
    li a1, VA_T(2)
    lw a0, 0(a1)
    CHECK_EQ(a0, RET_INSN)
    EXPECT_STORE_PF(VA_T(2))
    li t0, MSTATUS_MXR
    csrc sstatus, t0
    TEST_CASE(24)               /* W without R is reserved */
    EXPECT_LOAD_PF(VA_T(4))
    EXPECT_STORE_PF(VA_T(4))
    TEST_CASE(25)               /* V = 0 */
    EXPECT_LOAD_PF(VA_T(6))
    TEST_CASE(26)               /* a pointer PTE at the last level */
    EXPECT_LOAD_PF(VA_T(13))
    TEST_CASE(27)               /* reserved PTE bits */
    EXPECT_LOAD_PF(VA_T(10))    /* N without Svnapot */
    EXPECT_LOAD_PF(VA_T(11))    /* PBMT without Svpbmt */
    EXPECT_LOAD_PF(VA_T(12))    /* bits 60-54 */
    TEST_CASE(28)               /* non-canonical addresses */
    EXPECT_LOAD_PF(1 << (VA_BITS - 1))
    EXPECT_STORE_PF(0x8000000000000000 | VA_T(0))
    EXPECT_FETCH_PF(1 << (VA_BITS - 1))
    TEST_CASE(29)               /* tval is the exact address inside the page */
    li s11, VA_T(1) + 0x7f8
    EXPECT_TRAP_TVAL(CAUSE_STORE_PAGE_FAULT, VA_T(1) + 0x7f8, sd a0, 0(s11))

    /* ---- U and S ---- */
    TEST_CASE(30)               /* S may not touch user pages ... */
    EXPECT_LOAD_PF(VA_T(5))
    EXPECT_STORE_PF(VA_T(5))
    TEST_CASE(31)               /* ... unless SUM is set */
    li t0, MSTATUS_SUM
    csrs sstatus, t0
    LOAD_VA(a0, VA_T(5))
    CHECK_EQ(a0, MARK_A)
    li a1, VA_T(5)
    sd a0, 16(a1)
    TEST_CASE(32)               /* SUM never allows executing user pages */
    EXPECT_FETCH_PF(VA_T(9))
    li t0, MSTATUS_SUM
    csrc sstatus, t0
    GOTO_M
    TEST_CASE(33)               /* U runs from its alias of RAM */
    GOTO_U_ALIAS
    LOAD_VA(a0, VA_T(5))
    CHECK_EQ(a0, MARK_A)
    li a1, VA_T(9)
    jalr ra, 0(a1)              /* user code page */
    EXPECT_LOAD_PF(VA_T(0))     /* supervisor pages */
    EXPECT_FETCH_PF(VA_T(7))
    la a1, page_a               /* (the alias address) ... */
    li t0, U_ALIAS - RAM_BASE
    sub a1, a1, t0              /* ... and the identity, supervisor mapping */
    EXPECT_TRAP(CAUSE_LOAD_PAGE_FAULT, ld a0, 0(a1))
    CHECK_EQ_REG(t4, a1)
    ALIAS_GOTO_M

    /* ---- Hardware A / D updates ---- */
    TEST_CASE(40)
    ld a0, 0(s3)
    CHECK_MASKED(a0, PTE_A | PTE_D, 0)
    GOTO_S
    LOAD_VA(a0, VA_T(3))        /* a load sets A, not D */
    CHECK_EQ(a0, MARK_D)
    ld a0, 0(s3)
    CHECK_MASKED(a0, PTE_A | PTE_D, PTE_A)
    li a1, VA_T(3)              /* a store sets D */
    sd a0, 8(a1)
    ld a0, 0(s3)
    CHECK_MASKED(a0, PTE_A | PTE_D, PTE_A | PTE_D)
    TEST_CASE(41)               /* a fetch sets A */
    ld a0, 0(s4)
    CHECK_MASKED(a0, PTE_A, 0)
    li a1, VA_T(8)
    jalr ra, 0(a1)
    ld a0, 0(s4)
    CHECK_MASKED(a0, PTE_A | PTE_D, PTE_A)
    TEST_CASE(42)               /* a store to a page with A = 1, D = 0 sets D */
    li a1, VA_T(14)
    sd zero, 16(a1)
    ld a0, 0(s5)
    CHECK_MASKED(a0, PTE_A | PTE_D, PTE_A | PTE_D)
    TEST_CASE(43)               /* an AMO sets A and D too */
    li a0, PTE_D
    not a0, a0
    ld a1, 0(s5)
    and a1, a1, a0
    sd a1, 0(s5)
    sfence.vma
    li a1, VA_T(14)
    amoadd.d a0, zero, (a1)
    ld a0, 0(s5)
    CHECK_MASKED(a0, PTE_A | PTE_D, PTE_A | PTE_D)

    /* ---- Superpages ---- */
    TEST_CASE(50)               /* 2 MiB: same bytes as the physical address */
    la a1, test_main
    li t0, VA_MEGA - RAM_BASE
    add a2, a1, t0
    ld a3, 0(a1)
    ld a4, 0(a2)
    CHECK_EQ_REG(a4, a3)
    la a1, page_b
    add a2, a1, t0
    ld a4, 0(a2)
    CHECK_EQ(a4, MARK_B)
    TEST_CASE(51)               /* 1 GiB */
    la a1, page_b
    li t0, VA_GIGA - RAM_BASE
    add a2, a1, t0
    ld a4, 0(a2)
    CHECK_EQ(a4, MARK_B)
    EXPECT_STORE_PF(VA_GIGA + 0x100)
    TEST_CASE(52)               /* misaligned superpages fault */
    EXPECT_LOAD_PF(VA_BAD_MEGA)
    EXPECT_LOAD_PF(VA_BAD_MEGA + 0x1008)
    EXPECT_LOAD_PF(VA_BAD_GIGA + 0x10)
#ifdef VM_EXTRA_CHECKS
    VM_EXTRA_CHECKS
#endif
    GOTO_M

    /* ---- SFENCE.VMA ---- */
    TEST_CASE(60)               /* by address: a changed PTE becomes visible */
    GOTO_S
    LOAD_VA(a0, VA_T(0))        /* (now possibly cached) */
    CHECK_EQ(a0, MARK_A)
    GOTO_M
    la a1, page_b               /* VA_T(0) -> page_b */
    srli a1, a1, 12
    slli a1, a1, 10
    ori a1, a1, KRW
    sd a1, 0(s6)
    GOTO_S
    li a2, VA_T(0)
    sfence.vma a2, zero
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_B)
    GOTO_M
    TEST_CASE(61)               /* by address and ASID */
    la a1, page_a
    srli a1, a1, 12
    slli a1, a1, 10
    ori a1, a1, KRW
    sd a1, 0(s6)
    GOTO_S
    li a2, VA_T(0)
    li a3, 0                    /* the current ASID */
    sfence.vma a2, a3
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_A)
    GOTO_M
    TEST_CASE(62)               /* by ASID, all addresses */
    la a1, page_b
    srli a1, a1, 12
    slli a1, a1, 10
    ori a1, a1, KRW
    sd a1, 0(s6)
    GOTO_S
    li a3, 0
    sfence.vma zero, a3
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_B)
    GOTO_M
    TEST_CASE(63)               /* everything */
    la a1, page_a
    srli a1, a1, 12
    slli a1, a1, 10
    ori a1, a1, KRW
    sd a1, 0(s6)
    GOTO_S
    sfence.vma
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_A)
    GOTO_M

    /* ---- ASIDs: two address spaces, switched without fences ---- */
    TEST_CASE(70)
    ld s7, vm_root              /* space 1 (ASID 1): VA_T(0) -> page_a */
    srli s7, s7, 12
    li t0, VM_SATP_MODE | (1 << SATP_ASID_SHIFT)
    or s7, s7, t0
    NEW_ADDRESS_SPACE           /* space 2 (ASID 2): VA_T(0) -> page_b */
    MAP_PAGE(VA_T(0), page_b, KRW)
    ld s8, vm_root
    srli s8, s8, 12
    li t0, VM_SATP_MODE | (2 << SATP_ASID_SHIFT)
    or s8, s8, t0
    csrw satp, s7
    sfence.vma
    GOTO_S
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_A)
    csrw satp, s8
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_B)
    csrw satp, s7
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_A)
    csrw satp, s8
    LOAD_VA(a0, VA_T(0))
    CHECK_EQ(a0, MARK_B)
    csrw satp, s7
    GOTO_M

    /* ---- MPRV: M-mode loads and stores translated as MPP ---- */
    TEST_CASE(80)
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPP_S | MSTATUS_MPRV
    csrs mstatus, t0            /* MPP = S */
    LOAD_VA(a0, VA_T(0))
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    CHECK_EQ(a0, MARK_A)
    TEST_CASE(81)               /* with MPP = S, SUM decides about user pages */
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    li s11, VA_T(5)
    TRAP_RUN(ld a0, 0(s11))
    /* the trap set MPP = M and the return set MPP = U: clear MPRV first */
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    CHECK_TRAP(PRV_M, CAUSE_LOAD_PAGE_FAULT)
    CHECK_EQ(t4, VA_T(5))
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPP_S | MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR
    csrs mstatus, t0
    LOAD_VA(a0, VA_T(5))
    li t0, VA_T(2)              /* MXR: execute-only readable */
    lw a1, 0(t0)
    li t0, MSTATUS_MPRV | MSTATUS_SUM | MSTATUS_MXR
    csrc mstatus, t0
    CHECK_EQ(a0, MARK_A)
    CHECK_EQ(a1, RET_INSN)
    TEST_CASE(82)               /* with MPP = U, supervisor pages fault */
    li t0, MSTATUS_MPP
    csrc mstatus, t0            /* MPP = U */
    li t0, MSTATUS_MPRV
    csrs mstatus, t0
    LOAD_VA(a0, VA_T(5))
    li s11, VA_T(0)
    TRAP_RUN(ld a1, 0(s11))
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    CHECK_TRAP(PRV_M, CAUSE_LOAD_PAGE_FAULT)
    CHECK_EQ(t4, VA_T(0))
    CHECK_EQ(a0, MARK_A)
    TEST_CASE(83)               /* fetches are never translated for M, whatever MPRV */
    li t0, MSTATUS_MPP
    csrc mstatus, t0
    li t0, MSTATUS_MPP_S | MSTATUS_MPRV
    csrs mstatus, t0
    li s11, VA_T(7)             /* mapped for S, but no physical address */
    TRAP_RUN(jalr ra, 0(s11))
    li t0, MSTATUS_MPRV
    csrc mstatus, t0
    CHECK_EQ(tp, PRV_M)
    li tp, 0
    CHECK_EQ(t3, CAUSE_FETCH_ACCESS)
    CHECK_EQ(t4, VA_T(7))

    /* ---- TVM ---- */
    TEST_CASE(90)
    li t0, MSTATUS_TVM
    csrs mstatus, t0
    csrr a0, satp               /* M is not affected */
    GOTO_S
    EXPECT_ILLEGAL_WORD(0x18002573)     /* csrr a0, satp */
    EXPECT_ILLEGAL_WORD(0x12000073)     /* sfence.vma */
    GOTO_M
    li t0, MSTATUS_TVM
    csrc mstatus, t0
    sfence.vma
    GOTO_S
    csrr a0, satp
    sfence.vma
    GOTO_M

    /* ---- PMP checks the page-table walk (as S-mode accesses) ---- */
    TEST_CASE(100)
    srli t1, s6, 12             /* entry 0: the last-level table of VA_T(0), */
    slli t1, t1, 10             /* 4 KiB NAPOT, no permissions (the walks for */
    ori t1, t1, (4096 / 8) - 1  /* the code and the trap frames do not use it) */
    csrw pmpaddr0, t1
    li t1, -1                   /* entry 1: everything else, RWX */
    csrw pmpaddr1, t1
    li t0, (PMP_NAPOT << 0) | ((PMP_NAPOT | PMP_R | PMP_W | PMP_X) << 8)
    csrw pmpcfg0, t0
    sfence.vma
    GOTO_S
    li s11, VA_T(0)
    EXPECT_TRAP_TVAL(CAUSE_LOAD_ACCESS, VA_T(0), ld a0, 0(s11))
    EXPECT_TRAP_TVAL(CAUSE_STORE_ACCESS, VA_T(0), sd a0, 0(s11))
    li s11, VA_T(7)
    TRAP_RUN(jalr ra, 0(s11))
    CHECK_EQ(tp, PRV_M)
    li tp, 0
    CHECK_EQ(t3, CAUSE_FETCH_ACCESS)
    CHECK_EQ(t4, VA_T(7))
    GOTO_M                      /* (ecall: no memory access by S) */
    li t1, -1
    csrw pmpaddr0, t1
    li t0, PMP_NAPOT | PMP_R | PMP_W | PMP_X
    csrw pmpcfg0, t0
    sfence.vma

    csrw satp, zero
    sfence.vma
TEST_END

    .data
    .balign 4096
page_a:
    .dword MARK_A
    .balign 4096
page_b:
    .dword MARK_B
    .balign 4096
page_c:
    .4byte RET_INSN
    .balign 4096
page_d:
    .dword MARK_D
    .balign 4096

#endif
