/* stale_tlb.S — a program whose outcome depends on what the TLB holds.
 *
 * RISC-V lets a hart keep using a cached translation after the PTE behind
 * it changes, until SFENCE.VMA. This program maps three virtual pages in
 * S-mode, uses each once (filling the TLB), then rewrites their PTEs
 * without SFENCE.VMA and spins, so that a snapshot can be taken in the
 * spin. After the spin it uses them again:
 *   - a load through VA_LOAD, remapped from page_a to page_b;
 *   - a store through VA_STORE, remapped from page_c to page_d;
 *   - a store through VA_AD, whose PTE had its A and D bits cleared (a
 *     translation the hart uses from its TLB does not set them again).
 * Rewind keeps the cached translations (its TLB is architectural state),
 * so the program sees the old pages and exits 0 through the test
 * finisher; it exits 2 if it saw a new page, 3 if the A/D bits were set
 * again, 4 on a trap. An uninterrupted run and a run restored from a
 * snapshot taken in the spin must end the same way, in the same state.
 *
 * Built like tests/asm (rv64gc, -nostdlib, link.ld at 0x80000000); starts
 * in M-mode with no firmware.
 */
    .option nopic
#define FINISHER 0x100000
#define VA_LOAD  0x40000000
#define VA_STORE 0x40001000
#define VA_AD    0x40002000
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)
#define LEAF (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define SPIN 300000

/* reg = the PTE that maps a 4 KiB page at the address of sym, with flags. */
#define PTE_FOR(reg, sym, flags) \
    la reg, sym;                 \
    srli reg, reg, 12;           \
    slli reg, reg, 10;           \
    ori reg, reg, flags

    .section .text.init
    .globl _start
_start:
    la t0, m_trap
    csrw mtvec, t0
    /* S-mode may reach all of memory. */
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    /* root[0]: gigapage 0 (the test finisher), root[2]: RAM, both identity;
     * root[1] -> l1 -> l0, whose first three entries map the test pages. */
    la s0, root
    li t0, (0 << 10) | LEAF
    sd t0, 0(s0)
    li t0, (0x80000000 >> 2) | LEAF | PTE_X
    sd t0, 16(s0)
    PTE_FOR(t0, l1, PTE_V)
    sd t0, 8(s0)
    la s1, l1
    PTE_FOR(t0, l0, PTE_V)
    sd t0, 0(s1)
    la s1, l0
    PTE_FOR(t0, page_a, LEAF)
    sd t0, 0(s1)
    PTE_FOR(t0, page_c, LEAF)
    sd t0, 8(s1)
    PTE_FOR(t0, page_e, LEAF)
    sd t0, 16(s1)
    srli t0, s0, 12
    li t1, 8 << 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    /* Into S-mode at s_main. */
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0
    la t0, s_main
    csrw mepc, t0
    mret

s_main:
    la s1, l0
    /* Fill the TLB: one load, two stores. */
    li s2, VA_LOAD
    ld a0, 0(s2)
    li s3, VA_STORE
    li t0, 0x33
    sd t0, 0(s3)
    li s4, VA_AD
    sd t0, 0(s4)
    /* Change all three PTEs; no SFENCE.VMA. */
    PTE_FOR(t0, page_b, LEAF)
    sd t0, 0(s1)
    PTE_FOR(t0, page_d, LEAF)
    sd t0, 8(s1)
    PTE_FOR(t0, page_e, PTE_V | PTE_R | PTE_W)
    sd t0, 16(s1)
    /* Spin (a snapshot is taken in here). */
    li t1, SPIN
1:  addi t1, t1, -1
    bnez t1, 1b
    /* Use the translations again. */
    ld a1, 0(s2)
    li t0, 0x44
    sd t0, 0(s3)
    sd t0, 0(s4)
    /* The load saw page_a, the store went to page_c. */
    li t2, 0x1111
    bne a1, t2, saw_new_page
    la t3, page_c
    ld t4, 0(t3)
    li t2, 0x44
    bne t4, t2, saw_new_page
    la t3, page_d
    ld t4, 0(t3)
    bnez t4, saw_new_page
    /* The PTE's A and D bits stayed clear. */
    ld t4, 16(s1)
    andi t4, t4, PTE_A | PTE_D
    bnez t4, ad_set
    li t0, FINISHER
    li t1, 0x5555
    sw t1, 0(t0)
    j .
saw_new_page:
    li t1, (2 << 16) | 0x3333
    j finish
ad_set:
    li t1, (3 << 16) | 0x3333
finish:
    li t0, FINISHER
    sw t1, 0(t0)
    j .

m_trap:
    li t1, (4 << 16) | 0x3333
    li t0, FINISHER
    sw t1, 0(t0)
    j .

    .data
    .balign 4096
root:   .fill 512, 8, 0
l1:     .fill 512, 8, 0
l0:     .fill 512, 8, 0
page_a: .dword 0x1111
    .balign 4096
page_b: .dword 0x2222
    .balign 4096
page_c: .dword 0
    .balign 4096
page_d: .dword 0
    .balign 4096
page_e: .dword 0
    .balign 4096
