/* mix.S — two harts doing everything whose state a snapshot must carry.
 *
 * Each hart runs ITERATIONS of a loop in S-mode under Sv39 that
 *   - remaps its own virtual page between two physical pages without
 *     SFENCE.VMA (every eighth time with one), and loads through it: what
 *     it reads depends on what the TLB holds;
 *   - writes a new function into a page of its own, FENCE.I, and calls it;
 *   - patches the very next instruction of its own block without FENCE.I;
 *   - increments a shared counter with LR/SC and another with AMOADD;
 *   - waits in WFI every 64th time, so idle time is skipped;
 * while machine timer interrupts, at a different odd interval per hart,
 * count ticks in M-mode. Hart 0 then checks the shared counters and powers
 * off (exit 0), or exits 1 if they are wrong (5 on an unexpected trap).
 *
 * Every way of reaching the end (a run, a restore of any snapshot taken on
 * the way, a replay) must end in the same state hash.
 */
    .option nopic
#define FINISHER   0x100000
#define MTIME      0x200bff8
#define MTIMECMP   0x2004000
#define VA_FLIP    0x40000000
#define PTE_V (1 << 0)
#define PTE_R (1 << 1)
#define PTE_W (1 << 2)
#define PTE_X (1 << 3)
#define PTE_A (1 << 6)
#define PTE_D (1 << 7)
#define LEAF (PTE_V | PTE_R | PTE_W | PTE_A | PTE_D)
#define ITERATIONS 3000
#define HARTS 2

#define PTE_FOR(reg, sym, flags) \
    la reg, sym;                 \
    srli reg, reg, 12;           \
    slli reg, reg, 10;           \
    ori reg, reg, flags

    .section .text.init
    .globl _start
_start:
    /* a0 = hart id. s11 = id, s10 = id * 4096. */
    mv s11, a0
    slli s10, a0, 12
    la t0, m_trap
    csrw mtvec, t0
    li t0, -1
    csrw pmpaddr0, t0
    li t0, 0x1f
    csrw pmpcfg0, t0
    /* This hart's trap save area: [24] ticks, [32] interval, [40] mtimecmp. */
    la sp, msave
    slli t0, s11, 6
    add sp, sp, t0
    csrw mscratch, sp
    li t0, 997
    li t1, 211
    mul t1, t1, s11
    add t0, t0, t1
    sd t0, 32(sp)
    li t0, MTIMECMP
    slli t1, s11, 3
    add t0, t0, t1
    sd t0, 40(sp)
    bnez s11, wait_for_tables

    /* Hart 0 builds the page tables: gigapage 0 (devices) and RAM
     * identity-mapped; root[1] -> l1 -> l0, one flipping page per hart. */
    la s0, root
    li t0, LEAF
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
    sd t0, 8(s1)
    fence
    la t0, tables_ready
    li t1, 1
    sd t1, 0(t0)
    j start_timer
wait_for_tables:
    la t0, tables_ready
1:  ld t1, 0(t0)
    beqz t1, 1b

start_timer:
    li t0, MTIME
    ld t1, 0(t0)
    ld t2, 32(sp)
    add t1, t1, t2
    ld t0, 40(sp)
    sd t1, 0(t0)
    li t0, 1 << 7
    csrs mie, t0
    la t0, root
    srli t0, t0, 12
    li t1, 8 << 60
    or t0, t0, t1
    csrw satp, t0
    sfence.vma
    li t0, 3 << 11
    csrc mstatus, t0
    li t0, 1 << 11
    csrs mstatus, t0
    la t0, s_main
    csrw mepc, t0
    mret

s_main:
    li s0, 0                    /* iteration */
    li s5, 0                    /* checksum */
    la s1, l0
    slli t0, s11, 3
    add s1, s1, t0              /* s1 = this hart's PTE */
    li s2, VA_FLIP
    add s2, s2, s10             /* s2 = this hart's flipping page */
    la s3, gen_code
    add s3, s3, s10             /* s3 = this hart's generated function */
loop:
    /* Flip the page: page_a on even iterations, page_b on odd ones. */
    andi t0, s0, 1
    bnez t0, 1f
    PTE_FOR(t1, page_a, LEAF)
    j 2f
1:  PTE_FOR(t1, page_b, LEAF)
2:  sd t1, 0(s1)
    andi t0, s0, 7
    bnez t0, 3f
    sfence.vma
3:  ld t0, 0(s2)
    add s5, s5, t0
    /* A new function: addi a0, zero, (s0 & 0x7ff); ret. */
    andi t0, s0, 0x7ff
    slli t0, t0, 20
    li t1, 0x513
    or t0, t0, t1
    sw t0, 0(s3)
    li t1, 0x00008067
    sw t1, 4(s3)
    fence.i
    jalr ra, 0(s3)
    add s5, s5, a0
    /* Patch the next instruction: addi t2, zero, (s0 & 0x3ff). */
    andi t0, s0, 0x3ff
    slli t0, t0, 20
    li t1, 0x393
    or t1, t1, t0
    la t0, patch_me
    sw t1, 0(t0)
patch_me:
    addi t2, zero, 0
    add s5, s5, t2
    /* Shared counters. */
    la t0, lr_counter
4:  lr.d t1, (t0)
    addi t1, t1, 1
    sc.d t2, t1, (t0)
    bnez t2, 4b
    la t0, amo_counter
    li t1, 1
    amoadd.d zero, t1, (t0)
    /* Now and then, wait for the timer. */
    andi t0, s0, 63
    bnez t0, 5f
    wfi
5:  addi s0, s0, 1
    li t0, ITERATIONS
    blt s0, t0, loop

    /* Publish the checksum and say this hart is done. */
    la t0, checksums
    slli t1, s11, 3
    add t0, t0, t1
    sd s5, 0(t0)
    la t0, done
    li t1, 1
    amoadd.d zero, t1, (t0)
    bnez s11, idle
    la t0, done
    li t2, HARTS
6:  ld t1, 0(t0)
    bne t1, t2, 6b
    li t2, HARTS * ITERATIONS
    la t0, lr_counter
    ld t1, 0(t0)
    bne t1, t2, wrong
    la t0, amo_counter
    ld t1, 0(t0)
    bne t1, t2, wrong
    li t0, FINISHER
    li t1, 0x5555
    sw t1, 0(t0)
    j .
wrong:
    li t0, FINISHER
    li t1, (1 << 16) | 0x3333
    sw t1, 0(t0)
    j .
idle:
    wfi
    j idle

m_trap:
    csrrw sp, mscratch, sp
    sd t0, 0(sp)
    sd t1, 8(sp)
    sd t2, 16(sp)
    csrr t0, mcause
    bgez t0, m_fail
    andi t0, t0, 0xff
    li t1, 7
    bne t0, t1, m_fail
    ld t0, 24(sp)
    addi t0, t0, 1
    sd t0, 24(sp)
    li t0, MTIME
    ld t1, 0(t0)
    ld t2, 32(sp)
    add t1, t1, t2
    ld t0, 40(sp)
    sd t1, 0(t0)
    ld t0, 0(sp)
    ld t1, 8(sp)
    ld t2, 16(sp)
    csrrw sp, mscratch, sp
    mret
m_fail:
    li t0, FINISHER
    li t1, (5 << 16) | 0x3333
    sw t1, 0(t0)
    j .

    .data
    .balign 4096
root:   .fill 512, 8, 0
l1:     .fill 512, 8, 0
l0:     .fill 512, 8, 0
page_a: .dword 0xa
    .balign 4096
page_b: .dword 0xb0000
    .balign 4096
gen_code:
    .fill 1024 * HARTS, 4, 0
    .balign 4096
msave:  .fill 8 * HARTS, 8, 0
tables_ready: .dword 0
lr_counter:  .dword 0
amo_counter: .dword 0
done:        .dword 0
checksums:   .fill HARTS, 8, 0
    .balign 4096
