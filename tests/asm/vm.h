/* vm.h — page-table building for the paging tests (sv39.S, sv48.S, sv57.S).
 *
 * The includer defines VM_LEVELS (3, 4 or 5) and VM_SATP_MODE. Page tables come
 * from vm_pool (zeroed .bss, 64 pages). Routines run in M-mode (physical
 * addresses) and clobber t0-t6 and ra:
 *   vm_new_root          a0 = a new empty root table; it becomes vm_root.
 *   vm_map               map a0 = va to a1 = pa with PTE flags a2 as a leaf at
 *                        level a3 (0 = 4 KiB, 1 = 2 MiB, 2 = 1 GiB, ...), in
 *                        vm_root, allocating intermediate tables.
 *   vm_pte_addr          a0 = the address of the PTE for a0 = va at level a3
 *                        (the tables above must exist).
 */
#ifndef REWIND_VM_H
#define REWIND_VM_H

#include "test.h"

#define VA_BITS (12 + 9 * VM_LEVELS)
#define LEVEL_SIZE(l) (1 << (12 + 9 * (l)))

/* Base mappings present in every address space of these tests:
 * RAM identity-mapped as one supervisor gigapage (global), and the same RAM
 * again at U_ALIAS as a user gigapage, for running U-mode code. */
#define U_ALIAS 0x1000000000
/* reg += U_ALIAS - RAM_BASE (reg must not be t0; clobbers t0) */
#define TO_U_ALIAS(reg)                         \
    li t0, U_ALIAS - RAM_BASE;                  \
    add reg, reg, t0

/* satp for vm_root with the given ASID; writes it and fences. */
#define SET_SATP(asid)                          \
    ld t0, vm_root;                             \
    srli t0, t0, 12;                            \
    li t1, VM_SATP_MODE | ((asid) << SATP_ASID_SHIFT); \
    or t0, t0, t1;                              \
    csrw satp, t0;                              \
    sfence.vma

/* Map va -> the address of sym, 4 KiB page. */
#define MAP_PAGE(va, sym, flags)                \
    li a0, va;                                  \
    la a1, sym;                                 \
    li a2, flags;                               \
    li a3, 0;                                   \
    call vm_map

#define MAP_LEAF(va, pa, flags, level)          \
    li a0, va;                                  \
    li a1, pa;                                  \
    li a2, flags;                               \
    li a3, level;                               \
    call vm_map

/* a0 = the PTE of va at level. */
#define PTE_ADDR(va, level)                     \
    li a0, va;                                  \
    li a3, level;                               \
    call vm_pte_addr

/* A fresh address space with the base mappings, in vm_root. */
#define NEW_ADDRESS_SPACE                       \
    call vm_new_root;                           \
    MAP_LEAF(RAM_BASE, RAM_BASE, PTE_V | PTE_R | PTE_W | PTE_X | PTE_A | PTE_D | PTE_G, 2); \
    MAP_LEAF(U_ALIAS, RAM_BASE, PTE_V | PTE_R | PTE_W | PTE_X | PTE_U | PTE_A | PTE_D, 2)

/* From U-mode running at U_ALIAS: continue inline in M-mode at the physical
 * address (M-mode does not translate). Clobbers t0, a0, a7. */
#define ALIAS_GOTO_M                            \
    la a0, 6f;                                  \
    li t0, U_ALIAS - RAM_BASE;                  \
    sub a0, a0, t0;                             \
    li a7, MAGIC_GOTO_M_AT;                     \
    ecall;                                      \
6:  li a7, 0

/* From M-mode: continue inline in U-mode at the U_ALIAS address. Clobbers
 * t0, t1. */
#define GOTO_U_ALIAS                            \
    li t0, MSTATUS_MPP;                         \
    csrc mstatus, t0;                           \
    la t1, 6f;                                  \
    TO_U_ALIAS(t1);                             \
    csrw mepc, t1;                              \
    mret;                                       \
6:

    .text
vm_new_root:
    ld a0, vm_next
    bnez a0, 1f
    la a0, vm_pool
1:  la t0, vm_root
    sd a0, 0(t0)
    li t1, 4096
    add t1, a0, t1
    la t0, vm_next
    sd t1, 0(t0)
    ret

vm_alloc:                       /* t5 = a new zeroed table */
    ld t5, vm_next
    li t6, 4096
    add t6, t5, t6
    la t0, vm_pool_end
    bgtu t6, t0, 2f
    la t0, vm_next
    sd t6, 0(t0)
    ret
2:  li a2, 0
    li a3, 0
    li a1, __LINE__             /* out of page-table pages */
    j test_fail

vm_map:
    mv t3, ra
    ld t2, vm_root
    li t1, VM_LEVELS - 1
1:  li t4, 9
    mul t4, t4, t1
    addi t4, t4, 12
    srl t4, a0, t4
    andi t4, t4, 511
    slli t4, t4, 3
    add t4, t2, t4              /* t4 = &pte at this level */
    beq t1, a3, 3f
    ld t5, 0(t4)
    andi t6, t5, PTE_V
    bnez t6, 2f
    jal ra, vm_alloc
    srli t6, t5, 12
    slli t6, t6, 10
    ori t6, t6, PTE_V
    sd t6, 0(t4)
    mv t2, t5
    addi t1, t1, -1
    j 1b
2:  srli t5, t5, 10
    slli t2, t5, 12
    addi t1, t1, -1
    j 1b
3:  srli t6, a1, 12
    slli t6, t6, 10
    or t6, t6, a2
    sd t6, 0(t4)
    mv ra, t3
    ret

vm_pte_addr:
    ld t2, vm_root
    li t1, VM_LEVELS - 1
1:  li t4, 9
    mul t4, t4, t1
    addi t4, t4, 12
    srl t4, a0, t4
    andi t4, t4, 511
    slli t4, t4, 3
    add t4, t2, t4
    beq t1, a3, 2f
    ld t5, 0(t4)
    srli t5, t5, 10
    slli t2, t5, 12
    addi t1, t1, -1
    j 1b
2:  mv a0, t4
    ret

    .data
    .balign 8
vm_root: .dword 0
vm_next: .dword 0

    .bss
    .balign 262144              /* NAPOT-aligned, for a PMP entry over it */
vm_pool:
    .space 4096 * 64
vm_pool_end:

#endif
