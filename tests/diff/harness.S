/*
 * Bare-metal harness for the differential tests (tests/differential.rs).
 *
 * Assumptions (QEMU virt compatible board, no firmware):
 *   - hart 0 starts here in M-mode at 0x8000_0000 (see link.ld);
 *   - an NS16550 THR at 0x1000_0000 accepts bytes without any set-up;
 *   - the SiFive test finisher at 0x10_0000 ends the run.
 *
 * The generated program (built from seq_macros.inc) provides
 * diff_run_sequences: for every sequence it calls diff_seq_prepare, loads the
 * initial register state, runs the generated instructions, saves every
 * register to diff_save_area and calls diff_dump_state, which prints it. At
 * the end it jumps to diff_all_done.
 *
 * Output of one sequence:
 *   @<index, 16 hex digits>
 *   x01 <16 hex digits>    ... x31   for each register whose value differs
 *   f00 <16 hex digits>    ... f31   from the initial one (raw 64 bits)
 *   fcsr <16 hex digits>
 *   fflags <16 hex digits>
 *   m<offset, 3 hex digits> <16 hex digits>   for every scratch doubleword
 *                                             that differs from its initial value
 * Then "END" once all sequences ran. A trap prints "TRAP mcause mepc mtval"
 * and exits with code 1: generated code never traps on purpose.
 */

#define UART_THR 0x10000000
#define FINISHER 0x100000
#define FINISHER_PASS 0x5555
#define FINISHER_FAIL_1 0x13333

/* diff_save_area layout: must match seq_macros.inc. */
#define SAVE_X 0        /* x0..x31 at 8*n */
#define SAVE_F 256      /* f0..f31 at 256 + 8*n */
#define SAVE_FCSR 512
#define SAVE_FFLAGS 520
#define SAVE_INDEX 528
#define SAVE_TABLE 536
#define SAVE_RA 544

/* Initial-state table layout: seed, fcsr, f0..f31, extra, x1..x31. */
#define TABLE_SEED 0
#define TABLE_VALUES 16 /* 64 doublewords: f0..f31, extra, x1..x31 */
#define TABLE_F 16
#define TABLE_X 272     /* x<n> at TABLE_X + 8*n */

#define SCRATCH_DWORDS 128

    .section .text.init, "ax", @progbits
    .globl _start
_start:
    lla t0, diff_trap
    csrw mtvec, t0
    li t0, 0x6000 /* mstatus.FS = dirty: enable the FPU */
    csrs mstatus, t0
    csrw mscratch, zero
    lla sp, diff_stack_top
    tail diff_run_sequences

    .text
    .globl diff_all_done
diff_all_done:
    lla sp, diff_stack_top
    lla a0, diff_msg_end
    call diff_puts
    li t0, FINISHER
    li t1, FINISHER_PASS
    sw t1, 0(t0)
1:  j 1b

    .balign 4
diff_trap:
    lla sp, diff_stack_top
    lla a0, diff_msg_trap
    call diff_puts
    csrr a0, mcause
    li a1, 16
    call diff_puthex
    li a0, ' '
    call diff_putc
    csrr a0, mepc
    li a1, 16
    call diff_puthex
    li a0, ' '
    call diff_putc
    csrr a0, mtval
    li a1, 16
    call diff_puthex
    li a0, '\n'
    call diff_putc
    li t0, FINISHER
    li t1, FINISHER_FAIL_1
    sw t1, 0(t0)
1:  j 1b

/* a0 = character. Clobbers t0. */
diff_putc:
    li t0, UART_THR
    sb a0, 0(t0)
    ret

/* a0 = NUL-terminated string. Clobbers a0, t0, t1. */
diff_puts:
    li t0, UART_THR
1:  lbu t1, 0(a0)
    beqz t1, 2f
    sb t1, 0(t0)
    addi a0, a0, 1
    j 1b
2:  ret

/* a0 = value, a1 = number of hex digits (1..16). Clobbers a1, t0..t2. */
diff_puthex:
    li t0, UART_THR
1:  addi a1, a1, -1
    slli t1, a1, 2
    srl t1, a0, t1
    andi t1, t1, 15
    li t2, 10
    bltu t1, t2, 2f
    addi t1, t1, 'a' - '0' - 10
2:  addi t1, t1, '0'
    sb t1, 0(t0)
    bnez a1, 1b
    ret

/* t0 = xorshift64(t0). Clobbers t3. */
.macro XORSHIFT
    slli t3, t0, 13
    xor t0, t0, t3
    srli t3, t0, 7
    xor t0, t0, t3
    slli t3, t0, 17
    xor t0, t0, t3
.endm

/*
 * Initial scratch doubleword: the next xorshift64 value, or (one time in
 * four) one of the 64 initial register values of the table, so that loads
 * also see the special values. In: t0 = state, a2 = table values.
 * Out: t0 = new state, t4 = doubleword. Clobbers t3.
 */
.macro SCRATCH_VALUE
    XORSHIFT
    mv t4, t0
    srli t3, t0, 62
    bnez t3, 8f
    srli t3, t0, 8
    andi t3, t3, 63
    slli t3, t3, 3
    add t3, t3, a2
    ld t4, 0(t3)
8:
.endm

/*
 * a0 = initial-state table, a1 = sequence index. Fills the scratch region
 * from the table's seed and resets the other state a sequence may read.
 * Leaf; clobbers a2, t0..t5.
 */
    .globl diff_seq_prepare
diff_seq_prepare:
    lla t5, diff_save_area
    sd a1, SAVE_INDEX(t5)
    sd a0, SAVE_TABLE(t5)
    ld t0, TABLE_SEED(a0)
    addi a2, a0, TABLE_VALUES
    lla t1, diff_scratch
    li t2, SCRATCH_DWORDS
1:  SCRATCH_VALUE
    sd t4, 0(t1)
    addi t1, t1, 8
    addi t2, t2, -1
    bnez t2, 1b
    csrw mscratch, zero
    ret

/* Prints the state saved in diff_save_area (see the top of this file). */
    .globl diff_dump_state
diff_dump_state:
    lla s0, diff_save_area
    sd ra, SAVE_RA(s0)
    lla sp, diff_stack_top

    li a0, '@'
    call diff_putc
    ld a0, SAVE_INDEX(s0)
    li a1, 16
    call diff_puthex
    li a0, '\n'
    call diff_putc

    /* x1..x31, then f0..f31: the registers whose value changed. */
    lla s1, diff_reg_names
    addi s2, s0, SAVE_X + 8
    ld s4, SAVE_TABLE(s0)
    addi s4, s4, TABLE_X + 8
    li s3, 31
    call diff_dump_changed
    addi s2, s0, SAVE_F
    ld s4, SAVE_TABLE(s0)
    addi s4, s4, TABLE_F
    li s3, 32
    call diff_dump_changed

    lla a0, diff_msg_fcsr
    call diff_puts
    ld a0, SAVE_FCSR(s0)
    li a1, 16
    call diff_puthex
    lla a0, diff_msg_fflags
    call diff_puts
    ld a0, SAVE_FFLAGS(s0)
    li a1, 16
    call diff_puthex
    li a0, '\n'
    call diff_putc

    /* Scratch doublewords that differ from their initial value. */
    ld a2, SAVE_TABLE(s0)
    ld s4, TABLE_SEED(a2)
    addi s5, a2, TABLE_VALUES
    lla s6, diff_scratch
    li s7, 0
2:  mv t0, s4
    mv a2, s5
    SCRATCH_VALUE
    mv s4, t0
    add t1, s6, s7
    ld s8, 0(t1)
    beq s8, t4, 3f
    li a0, 'm'
    call diff_putc
    mv a0, s7
    li a1, 3
    call diff_puthex
    li a0, ' '
    call diff_putc
    mv a0, s8
    li a1, 16
    call diff_puthex
    li a0, '\n'
    call diff_putc
3:  addi s7, s7, 8
    li t1, SCRATCH_DWORDS * 8
    bltu s7, t1, 2b

    ld ra, SAVE_RA(s0)
    ret

/*
 * Prints "<name><value>" for each of s3 saved doublewords (at s2, names of 5
 * bytes at s1) that differs from its initial value (at s4). Advances s1, s2
 * and s4; clobbers s3, s5, a0, a1, t0..t2.
 */
diff_dump_changed:
    addi sp, sp, -16
    sd ra, 0(sp)
1:  ld a0, 0(s2)
    ld t0, 0(s4)
    beq a0, t0, 2f
    mv s5, a0
    mv a0, s1
    call diff_puts
    mv a0, s5
    li a1, 16
    call diff_puthex
    li a0, '\n'
    call diff_putc
2:  addi s1, s1, 5
    addi s2, s2, 8
    addi s4, s4, 8
    addi s3, s3, -1
    bnez s3, 1b
    ld ra, 0(sp)
    addi sp, sp, 16
    ret

    .section .rodata
diff_msg_end:
    .asciz "END\n"
diff_msg_trap:
    .asciz "TRAP "
diff_msg_fcsr:
    .asciz "fcsr "
diff_msg_fflags:
    .asciz "\nfflags "
/* 63 names of 5 bytes each ("x01 \0"): x1..x31 then f0..f31. */
diff_reg_names:
    .asciz "x01 ", "x02 ", "x03 ", "x04 ", "x05 ", "x06 ", "x07 ", "x08 "
    .asciz "x09 ", "x10 ", "x11 ", "x12 ", "x13 ", "x14 ", "x15 ", "x16 "
    .asciz "x17 ", "x18 ", "x19 ", "x20 ", "x21 ", "x22 ", "x23 ", "x24 "
    .asciz "x25 ", "x26 ", "x27 ", "x28 ", "x29 ", "x30 ", "x31 "
    .asciz "f00 ", "f01 ", "f02 ", "f03 ", "f04 ", "f05 ", "f06 ", "f07 "
    .asciz "f08 ", "f09 ", "f10 ", "f11 ", "f12 ", "f13 ", "f14 ", "f15 "
    .asciz "f16 ", "f17 ", "f18 ", "f19 ", "f20 ", "f21 ", "f22 ", "f23 "
    .asciz "f24 ", "f25 ", "f26 ", "f27 ", "f28 ", "f29 ", "f30 ", "f31 "

    .bss
    .balign 4096
/*
 * 1 KiB scratch region: x2 (sp) points at its start, x8 (s0) at its middle,
 * which is a page boundary, so that misaligned accesses near x8 cross pages.
 */
    .skip 4096 - SCRATCH_DWORDS * 8 / 2
    .globl diff_scratch
diff_scratch:
    .skip SCRATCH_DWORDS * 8
    .balign 64
    .globl diff_save_area
diff_save_area:
    .skip 576
    .balign 16
diff_stack:
    .skip 1024
diff_stack_top:
