//! The translating engine against the interpreter, in lockstep: random
//! programs (every translated integer operation, with the values where x86
//! and RISC-V differ: division by zero and overflow, shift counts past the
//! width, W-form sign extension; loads and stores of every width, aligned
//! and not; Zba, Zbb and Zbs; branches forward and loops back;
//! instructions the translator leaves to the interpreter mid-block and at
//! block ends) run on two harts,
//! one per engine, stopped every few steps at varying counts, must hold
//! the same architectural state and RAM at every stop.
//!
//! The programs also do F and D arithmetic (every operation, on NaNs,
//! infinities, signed zeros, subnormals and unboxed singles), FP loads and
//! stores, change the rounding mode (to invalid ones too) and turn the FP
//! unit off and on: FP instructions then trap, and a trap handler skips
//! them, so translated code must leave before them exactly.

// The translator exists on x86-64 hosts only.
#![cfg(target_arch = "x86_64")]

mod common;

use common::*;
use rewind_hart::{ArchState, Engine, Exit, Hart};

const CODE: u64 = RAM_BASE + 0x1000;
/// Subroutines, on pages of their own: calls and returns cross pages.
const STUBS: u64 = RAM_BASE + 0x4000;
const STUB_COUNT: usize = 6;
const STUB_BYTES: u64 = 0x900;
/// x31 points here; loads and stores reach ±2 KiB around it.
const DATA: u64 = RAM_BASE + 0x20000;
/// mstatus.FS; x30 holds it for the programs to turn the FP unit off and
/// on (x30 is never written otherwise).
const MSTATUS_FS: u64 = 3 << 13;

/// xorshift64*: the tests' own generator, seeded per program; and whether
/// the program is mostly FP.
struct Rng(u64, bool);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

fn r(opcode: u32, f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

fn i(opcode: u32, f3: u32, rd: u32, rs1: u32, imm: i32) -> u32 {
    ((imm as u32 & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

fn s(f3: u32, rs1: u32, rs2: u32, imm: i32) -> u32 {
    let imm = imm as u32 & 0xfff;
    ((imm >> 5) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 0x1f) << 7) | 0x23
}

fn b(f3: u32, rs1: u32, rs2: u32, offset: i32) -> u32 {
    let o = offset as u32;
    (((o >> 12) & 1) << 31)
        | (((o >> 5) & 0x3f) << 25)
        | (rs2 << 20)
        | (rs1 << 15)
        | (f3 << 12)
        | (((o >> 1) & 0xf) << 8)
        | (((o >> 11) & 1) << 7)
        | 0x63
}

/// A CSR instruction: `f3` picks csrrw (1) ... csrrci (7).
fn csr(num: u32, rs1: u32, f3: u32, rd: u32) -> u32 {
    (num << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x73
}

fn jal(rd: u32, offset: i64) -> u32 {
    let o = offset as u32;
    (((o >> 20) & 1) << 31)
        | (((o >> 1) & 0x3ff) << 21)
        | (((o >> 11) & 1) << 20)
        | (((o >> 12) & 0xff) << 12)
        | (rd << 7)
        | 0x6f
}

/// One random instruction that falls through (never a branch or jump).
fn straight(rng: &mut Rng) -> u32 {
    straight_to(
        rng,
        &[0, 1, 2, 3, 5, 8, 10, 11, 12, 13, 15, 17, 20, 23, 26, 28],
    )
}

/// [`straight`] writing one of `rds`.
fn straight_to(rng: &mut Rng, rds: &[u32]) -> u32 {
    // x29 counts loops and x31 points at the data: never written.
    let rd = rng.pick(rds);
    if rng.1 && rng.below(3) != 0 {
        return fp(rng, rd);
    }
    let rs1 = rng.below(32) as u32;
    let rs2 = rng.below(32) as u32;
    let imm = rng.below(4096) as i32 - 2048;
    match rng.below(15) {
        12 | 13 => fp(rng, rd),
        14 => fp_control(rng, rd),
        0 if rng.below(2) == 0 => bitmanip(rng, rd, rs1, rs2),
        0..=2 => {
            // OP: base and M.
            let (f7, f3) = rng.pick(&[
                (0, 0),
                (0x20, 0),
                (0, 1),
                (0, 2),
                (0, 3),
                (0, 4),
                (0, 5),
                (0x20, 5),
                (0, 6),
                (0, 7),
                (1, 0),
                (1, 1),
                (1, 2),
                (1, 3),
                (1, 4),
                (1, 5),
                (1, 6),
                (1, 7),
            ]);
            r(0x33, f3, f7, rd, rs1, rs2)
        }
        3 => {
            let (f7, f3) = rng.pick(&[
                (0, 0),
                (0x20, 0),
                (0, 1),
                (0, 5),
                (0x20, 5),
                (1, 0),
                (1, 4),
                (1, 5),
                (1, 6),
                (1, 7),
            ]);
            r(0x3b, f3, f7, rd, rs1, rs2)
        }
        4 | 5 => {
            let f3 = rng.pick(&[0, 2, 3, 4, 6, 7]);
            i(0x13, f3, rd, rs1, imm)
        }
        6 => {
            let shamt = rng.below(64) as i32;
            match rng.below(3) {
                0 => i(0x13, 1, rd, rs1, shamt),
                1 => i(0x13, 5, rd, rs1, shamt),
                _ => i(0x13, 5, rd, rs1, 0x400 | shamt),
            }
        }
        7 => {
            let shamt = rng.below(32) as i32;
            match rng.below(4) {
                0 => i(0x1b, 0, rd, rs1, imm),
                1 => i(0x1b, 1, rd, rs1, shamt),
                2 => i(0x1b, 5, rd, rs1, shamt),
                _ => i(0x1b, 5, rd, rs1, 0x400 | shamt),
            }
        }
        8 => {
            let f3 = rng.pick(&[0, 1, 2, 3, 4, 5, 6]);
            i(0x03, f3, rd, 31, imm)
        }
        9 => {
            let f3 = rng.below(4) as u32;
            s(f3, 31, rs2, imm)
        }
        10 => {
            let upper = (rng.next() as u32) & 0xfffff000;
            let opcode = rng.pick(&[0x37, 0x17]);
            upper | (rd << 7) | opcode
        }
        _ => match rng.below(4) {
            // csrrs rd, mscratch, x0: ends its block in both engines.
            0 => (0x340 << 20) | (2 << 12) | (rd << 7) | 0x73,
            3 => atomic(rng, rd, rs1, rs2),
            // A fence, which the translator passes over.
            1 => 0x0ff0_000f,
            _ => i(0x13, 0, rd, rs1, imm),
        },
    }
}

/// One random AMO, LR or SC, word or doubleword, mostly at x31 (the
/// data: aligned, fast in the TLB), else at whatever `rs1` holds
/// (misaligned, unmapped: traps the handler skips). LR and SC are left to
/// the interpreter mid-block.
fn atomic(rng: &mut Rng, rd: u32, rs1: u32, rs2: u32) -> u32 {
    let funct5 = rng.pick(&[
        0x00, 0x01, 0x04, 0x0c, 0x08, 0x10, 0x14, 0x18, 0x1c, 0x02, 0x03,
    ]);
    let rs2 = if funct5 == 0x02 { 0 } else { rs2 };
    let base = if rng.below(4) == 0 { rs1 } else { 31 };
    let aq_rl = rng.below(4) as u32;
    r(
        0x2f,
        rng.pick(&[2, 3]),
        (funct5 << 2) | aq_rl,
        rd,
        base,
        rs2,
    )
}

/// (opcode, funct3, funct7) of every two-register Zba, Zbb and Zbs
/// instruction: add.uw, sh1add..sh3add, their .uw forms, andn, orn, xnor,
/// max, maxu, min, minu, rol, ror, rolw, rorw, bclr, bext, binv, bset.
const ZB_TWO_REGISTERS: [(u32, u32, u32); 22] = [
    (0x3b, 0, 0x04),
    (0x33, 2, 0x10),
    (0x33, 4, 0x10),
    (0x33, 6, 0x10),
    (0x3b, 2, 0x10),
    (0x3b, 4, 0x10),
    (0x3b, 6, 0x10),
    (0x33, 7, 0x20),
    (0x33, 6, 0x20),
    (0x33, 4, 0x20),
    (0x33, 6, 0x05),
    (0x33, 7, 0x05),
    (0x33, 4, 0x05),
    (0x33, 5, 0x05),
    (0x33, 1, 0x30),
    (0x33, 5, 0x30),
    (0x3b, 1, 0x30),
    (0x3b, 5, 0x30),
    (0x33, 1, 0x24),
    (0x33, 5, 0x24),
    (0x33, 1, 0x34),
    (0x33, 1, 0x14),
];

/// (opcode, funct3, imm[11:0]) of those with one register: clz, ctz,
/// cpop, sext.b, sext.h, clzw, ctzw, cpopw, orc.b, rev8, and last zext.h
/// (an OP-32 encoding with rs2 = 0: funct7 is imm >> 5).
const ZB_ONE_REGISTER: [(u32, u32, u32); 11] = [
    (0x13, 1, 0x600),
    (0x13, 1, 0x601),
    (0x13, 1, 0x602),
    (0x13, 1, 0x604),
    (0x13, 1, 0x605),
    (0x1b, 1, 0x600),
    (0x1b, 1, 0x601),
    (0x1b, 1, 0x602),
    (0x13, 5, 0x287),
    (0x13, 5, 0x6b8),
    (0x3b, 4, 0x080),
];

/// One random Zba, Zbb or Zbs instruction writing `rd`.
fn bitmanip(rng: &mut Rng, rd: u32, rs1: u32, rs2: u32) -> u32 {
    let amount = rng.below(64) as u32;
    match rng.below(4) {
        0 | 1 => {
            let (opcode, f3, f7) = rng.pick(&ZB_TWO_REGISTERS);
            r(opcode, f3, f7, rd, rs1, rs2)
        }
        2 => {
            let (opcode, f3, imm) = rng.pick(&ZB_ONE_REGISTER[..10]);
            i(opcode, f3, rd, rs1, imm as i32)
        }
        _ => match rng.below(7) {
            0 => i(0x13, 5, rd, rs1, (0x600 | amount) as i32),
            1 => i(0x1b, 5, rd, rs1, (0x600 | (amount & 31)) as i32),
            2 => i(0x13, 1, rd, rs1, (0x480 | amount) as i32),
            3 => i(0x13, 5, rd, rs1, (0x480 | amount) as i32),
            4 => i(0x13, 1, rd, rs1, (0x680 | amount) as i32),
            5 => i(0x13, 1, rd, rs1, (0x280 | amount) as i32),
            // slli.uw, and zext.h
            _ if amount < 32 => i(0x1b, 1, rd, rs1, (0x080 | amount) as i32),
            _ => r(0x3b, 4, 0x04, rd, rs1, 0),
        },
    }
}

/// One random F or D instruction (x registers it writes: `rd`).
fn fp(rng: &mut Rng, rd: u32) -> u32 {
    let fmt = rng.below(2) as u32;
    // Mostly doubles in f0-f15 and singles in f16-f31 (see `machine`), so
    // that operands are often of their operation's format.
    let mut reg = || {
        if rng.below(8) == 0 {
            rng.below(32) as u32
        } else {
            16 * (1 - fmt) + rng.below(16) as u32
        }
    };
    let (fd, fa, fb, fc) = (reg(), reg(), reg(), reg());
    // Mostly valid static modes and the dynamic one; 5 and 6 are illegal.
    let rm = rng.pick(&[0, 1, 2, 3, 4, 7, 7, 7, 5]);
    let op_fp = |funct5: u32, rs2: u32, rs1: u32, f3: u32, rd: u32| {
        r(0x53, f3, (funct5 << 2) | fmt, rd, rs1, rs2)
    };
    let imm = rng.below(4096) as i32 - 2048;
    match rng.below(14) {
        0..=2 => op_fp(rng.pick(&[0, 1, 2, 3]), fb, fa, rm, fd),
        3 => op_fp(0x0b, 0, fa, rm, fd),
        4 => op_fp(0x04, fb, fa, rng.below(3) as u32, fd),
        5 => op_fp(0x05, fb, fa, rng.below(2) as u32, fd),
        // fcvt between formats: rs2 names the other one.
        6 => op_fp(0x08, 1 - fmt, fa, rm, fd),
        // Comparisons, fclass, fmv.x and conversions to integers: rd is
        // an x register.
        7 => op_fp(0x14, fb, fa, rng.below(3) as u32, rd),
        8 => match rng.below(3) {
            0 => op_fp(0x1c, 0, fa, 0, rd),
            1 => op_fp(0x1c, 0, fa, 1, rd),
            _ => op_fp(0x18, rng.below(4) as u32, fa, rm, rd),
        },
        // From integers and fmv from x.
        9 => match rng.below(2) {
            0 => op_fp(0x1a, rng.below(4) as u32, rng.below(32) as u32, rm, fd),
            _ => op_fp(0x1e, 0, rng.below(32) as u32, 0, fd),
        },
        10 => {
            let opcode = rng.pick(&[0x43, 0x47, 0x4b, 0x4f]);
            (fc << 27) | (fmt << 25) | (fb << 20) | (fa << 15) | (rm << 12) | (fd << 7) | opcode
        }
        11 | 12 => i(0x07, 2 + fmt, fd, 31, imm),
        _ => s(2 + fmt, 31, fb, imm) & !0x7f | 0x27,
    }
}

/// Turns the FP unit off or on, clears the flags (the translator's host
/// fast path needs NX set), sets the rounding mode (1 in 8 times to an
/// invalid one), or reads and writes fflags, frm or fcsr with any of the
/// six CSR instructions (writing `rd`).
fn fp_control(rng: &mut Rng, rd: u32) -> u32 {
    let csr = |csr: u32, rs1: u32, f3: u32| (csr << 20) | (rs1 << 15) | (f3 << 12) | 0x73;
    if rng.below(2) == 0 {
        let num = rng.pick(&[0x001, 0x002, 0x003]);
        let f3 = rng.pick(&[1, 2, 3, 5, 6, 7]);
        // A register or a 5-bit immediate; x0 and 0 (no write) often.
        let any = rng.below(32) as u32;
        let rs1 = rng.pick(&[0, 0, any]);
        return csr(num, rs1, f3) | (rd << 7);
    }
    match rng.below(9) {
        // csrrc x0, mstatus, x30: off (rarely, or FP would hardly run).
        0 => csr(0x300, 30, 3),
        1 | 2 => csr(0x300, 30, 2),
        // csrrwi x0, fflags, 0.
        3 => csr(0x001, 0, 5),
        // csrrwi x0, frm, imm.
        _ => csr(0x002, rng.pick(&[0, 1, 2, 3, 4, 0, 0, 5, 7]), 5),
    }
}

/// At the trap vector: skip the instruction that trapped (an FP one with
/// the unit off or an invalid rounding mode) and go on, keeping x30
/// (mscratch is the only thing it changes).
fn skipping_trap_handler() -> Vec<u32> {
    vec![
        csr(0x340, 30, 1, 30), // csrrw x30, mscratch, x30
        csr(0x341, 0, 2, 30),  // csrr x30, mepc
        i(0x13, 0, 30, 30, 4), // addi x30, x30, 4
        csr(0x341, 30, 1, 0),  // csrw mepc, x30
        csr(0x340, 30, 1, 30), // csrrw x30, mscratch, x30
        0x3020_0073,           // mret
    ]
}

/// FP register values where the engines could differ.
const FP_EDGES: [u64; 12] = [
    0,
    1 << 63,
    0x7ff8_0000_0000_0000, // the canonical NaN
    0x7ff0_0000_0000_0001, // a signalling NaN
    0x7ff0_0000_0000_0000, // infinity
    0x0000_0000_0000_0001, // the smallest subnormal
    0x3ff0_0000_0000_0000, // 1.0
    0xffff_ffff_7fc0_0000, // single: the canonical NaN
    0xffff_ffff_7f80_0001, // single: a signalling NaN
    0xffff_ffff_0000_0001, // single: subnormal
    0xffff_ffff_3f80_0000, // single: 1.0
    0x0000_0000_3f80_0000, // single 1.0, not boxed: a NaN
];

/// Subroutine `n`: a few random instructions (never writing ra), then
/// `jalr x0, 0(ra)`.
fn stub(rng: &mut Rng) -> Vec<u32> {
    let mut code: Vec<u32> = (0..1 + rng.below(8))
        .map(|_| straight_to(rng, &[0, 2, 5, 10, 12, 17, 28]))
        .collect();
    code.push(i(0x67, 0, 0, 1, 0));
    code
}

fn stub_address(n: usize) -> u64 {
    STUBS + n as u64 * STUB_BYTES
}

/// A program of loops: each sets x29, runs a random body (with forward
/// branches that stay inside it, and calls to subroutines on other pages)
/// and branches back until x29 reaches 0.
fn program(seed: u64, fp_heavy: bool) -> Vec<u32> {
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, fp_heavy);
    let mut code = Vec::new();
    for _ in 0..10 {
        let trips = 5 + rng.below(20) as i32;
        code.push(i(0x13, 0, 29, 0, trips));
        let body = 3 + rng.below(40) as usize;
        let start = code.len();
        for k in 0..body {
            if rng.below(10) == 0 {
                let here = CODE + 4 * code.len() as u64;
                let to = stub_address(rng.below(STUB_COUNT as u64) as usize);
                code.push(jal(1, to as i64 - here as i64));
            } else if rng.below(6) == 0 {
                // Forward, at most to the decrement after the body.
                let left = (body - k) as i32;
                let to = 1 + rng.below(left as u64) as i32;
                let f3 = rng.pick(&[0, 1, 4, 5, 6, 7]);
                code.push(b(f3, rng.below(32) as u32, rng.below(32) as u32, 4 * to));
            } else if rng.below(30) == 0 {
                match rng.below(4) {
                    3 => code.push(csr_instruction(&mut rng)),
                    0 => code.push(FENCE_I),
                    1 => code.push(SFENCE_VMA),
                    _ => {
                        // A block of the data just stored to, or an
                        // address anywhere.
                        let near = (rng.below(512) as i32 - 256) * 8;
                        code.push(i(0x13, 0, 28, 31, near));
                        code.push(s(3, 28, rng.below(32) as u32, 0));
                        let base: u32 = rng.pick(&[28, 28, 1, 5, 10]);
                        code.push(CBO_ZERO | (base << 15));
                    }
                }
            } else {
                code.push(straight(&mut rng));
            }
        }
        code.push(i(0x13, 0, 29, 29, -1));
        let back = -4 * (code.len() - start) as i32;
        code.push(b(1, 29, 0, back));
    }
    code.push(SPIN);
    code
}

/// A CSR instruction translated code runs through its helper (with ones
/// it leaves to the interpreter, such as `time`): reads of each, writes of
/// the scratch and trap registers, and mstatus's interrupt enables set and
/// cleared.
fn csr_instruction(rng: &mut Rng) -> u32 {
    const READ: [u32; 17] = [
        0x100, 0x104, 0x105, 0x140, 0x141, 0x142, 0x143, 0x180, 0x300, 0x304, 0x305, 0x340, 0x341,
        0x342, 0x343, 0xc01, 0x344,
    ];
    const WRITE: [u32; 8] = [0x140, 0x141, 0x142, 0x143, 0x340, 0x341, 0x342, 0x343];
    let rd = rng.pick(&[0, 5, 10, 13, 15, 20]);
    let (csr, f3, rs1) = match rng.below(3) {
        // csrrs rd, csr, x0: a read.
        0 => (rng.pick(&READ), 2, 0),
        // csrrw rd, csr, rs1.
        1 => (rng.pick(&WRITE), 1, rng.below(29) as u32),
        // csrrsi/csrrci rd, mstatus, SIE or MIE.
        _ => (0x300, rng.pick(&[6, 7]), rng.pick(&[2, 8])),
    };
    (csr << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x73
}

/// FENCE.I, SFENCE.VMA x0, x0, and CBO.ZERO with rs1 0 (the rest of
/// the encoding): instructions that end a block or store 64 bytes.
const FENCE_I: u32 = 0x0000_100f;
const SFENCE_VMA: u32 = 0x1200_0073;
const CBO_ZERO: u32 = 0x0040_200f;

/// Register values where the engines could differ.
const EDGES: [u64; 10] = [
    0,
    1,
    u64::MAX,
    i64::MIN as u64,
    i64::MAX as u64,
    i32::MIN as i64 as u64,
    0xffff_ffff,
    0x8000_0000,
    63,
    64,
];

/// A finite, normal double (`double`) or NaN-boxed single with an exponent
/// near 0: what the translator's host fast path takes, with results that
/// seldom overflow or underflow.
fn tame_fp(rng: &mut Rng, double: bool) -> u64 {
    let sign = rng.below(2);
    if double {
        (sign << 63) | ((1023 - 8 + rng.below(16)) << 52) | (rng.next() >> 12)
    } else {
        let single = (sign << 31) | ((127 - 8 + rng.below(16)) << 23) | (rng.next() >> 41);
        0xffff_ffff_0000_0000 | single
    }
}

fn machine(seed: u64, engine: Engine, fp_heavy: bool) -> (Hart, TestBus) {
    let mut bus = TestBus::new(1 << 20);
    bus.write_code(TRAP_PA, &skipping_trap_handler());
    let code = program(seed, fp_heavy);
    assert!(
        CODE + 4 * code.len() as u64 <= STUBS,
        "the program overlaps the stubs"
    );
    bus.write_code(CODE, &code);
    let mut rng = Rng(seed | 1, fp_heavy);
    for n in 0..STUB_COUNT {
        bus.write_code(stub_address(n), &stub(&mut rng));
    }
    let data: Vec<u8> = (0..8192).map(|_| rng.next() as u8).collect();
    bus.write(DATA - 4096, &data);
    let mut hart = new_hart(CODE);
    for r in 1..29 {
        hart.x[r] = match rng.below(3) {
            0 => rng.pick(&EDGES),
            1 => rng.next(),
            // Near the data, aligned or not: for atomics at any address.
            _ => DATA + rng.below(128) - 64,
        };
    }
    for (r, f) in hart.f.iter_mut().enumerate() {
        *f = match rng.below(if fp_heavy { 8 } else { 3 }) {
            0 => rng.pick(&FP_EDGES),
            1 => rng.next(),
            2 => rng.next() | 0xffff_ffff_0000_0000,
            _ => tame_fp(&mut rng, r < 16),
        };
    }
    hart.x[30] = MSTATUS_FS;
    hart.x[31] = DATA;
    hart.csr.mstatus |= MSTATUS_FS;
    hart.set_engine(engine).expect("the engine");
    (hart, bus)
}

/// Runs `code` (at CODE, with `handler` at TRAP_PA) for `steps` steps on
/// `engine`, from a fresh hart that `setup` prepares, every block
/// translated at its first run: the hart's state after, and the steps that
/// ran translated.
fn run_all_translated(
    engine: Engine,
    handler: &[u32],
    code: &[u32],
    steps: u64,
    setup: impl Fn(&mut Hart),
) -> (ArchState, u64) {
    let mut bus = TestBus::new(1 << 20);
    bus.write_code(TRAP_PA, handler);
    bus.write_code(CODE, code);
    let mut hart = new_hart(CODE);
    setup(&mut hart);
    hart.set_engine(engine).expect("the engine");
    hart.set_translation_threshold(0);
    hart.run_bounded(&mut bus, u64::MAX, steps);
    (hart.arch_state(), hart.translated_steps())
}

/// Runs both engines on program `seed` in chunks of varying sizes and
/// compares them after each; returns the steps translated code retired.
fn lockstep(seed: u64, steps: u64, fp_heavy: bool) -> u64 {
    let (mut interp, mut interp_bus) = machine(seed, Engine::Interp, fp_heavy);
    let (mut jit, mut jit_bus) = machine(seed, Engine::Jit, fp_heavy);
    let chunks = [1u64, 7, 64, 3, 500, 29, 2000];
    let mut k = 0;
    while interp.steps() < steps {
        let to = interp.steps() + chunks[k % chunks.len()];
        k += 1;
        let a = interp.run_bounded(&mut interp_bus, u64::MAX, to);
        let b = jit.run_bounded(&mut jit_bus, u64::MAX, to);
        assert_eq!(a, b, "seed {seed}: exits differ at step {to}");
        assert_eq!(
            interp.arch_state(),
            jit.arch_state(),
            "seed {seed}: states differ at step {to}"
        );
        assert!(
            interp.tlb_state() == jit.tlb_state(),
            "seed {seed}: TLBs differ at step {to}"
        );
        assert!(
            interp_bus.ram.bytes() == jit_bus.ram.bytes(),
            "seed {seed}: RAM differs at step {to}"
        );
        assert!(matches!(a, Exit::Retired), "seed {seed}: {a:?}");
    }
    jit.translated_steps()
}

#[test]
fn random_programs_run_the_same_on_both_engines() {
    let mut translated = 0;
    for seed in 0..60 {
        translated += lockstep(seed, 20_000, false);
    }
    // The comparison means something only if translated code ran.
    eprintln!("translated {translated}");
    assert!(
        translated > 200_000,
        "translated code retired only {translated} steps"
    );
}

/// Mostly FP programs on values the host fast path takes (and some it does
/// not), so that the fast path and its way out to SoftFloat both run.
#[test]
fn fp_programs_run_the_same_on_both_engines() {
    let mut translated = 0;
    for seed in 0..60 {
        translated += lockstep(seed, 20_000, true);
    }
    assert!(
        translated > 200_000,
        "translated code retired only {translated} steps"
    );
}

/// One FP instruction on the given operands, fflags and frm, run by both
/// engines (the translator at its first run): the same registers and
/// flags. These are the edges of the translator's host fast path, where
/// SSE and SoftFloat would differ if it took them: underflow (RISC-V
/// detects tininess after rounding, x86 before), overflow, invalid and
/// division by zero, zero results, unboxed singles, other rounding modes,
/// and fflags without NX (inexact would then be a new flag).
#[test]
fn fp_fast_path_edges_match_the_interpreter() {
    const MIN_NORMAL: u64 = 0x0010_0000_0000_0000;
    const BELOW_ONE: u64 = 0x3fef_ffff_ffff_ffff;
    const ONE: u64 = 0x3ff0_0000_0000_0000;
    const TWO_POW_M600: u64 = (1023 - 600) << 52;
    const TWO_POW_1000: u64 = (1023 + 1000) << 52;
    const THREE_HALF_ULP: u64 = 0x3c98_0000_0000_0000;
    const MINUS_FOUR: u64 = 0xc010_0000_0000_0000;
    const SUBNORMAL: u64 = 0x000f_ffff_ffff_fff3;
    const INFINITY: u64 = 0x7ff0_0000_0000_0000;
    const QUIET_NAN: u64 = 0x7ff8_0000_0000_0001;
    const SIGNALLING_NAN: u64 = 0x7ff0_0000_0000_0001;
    const BOX: u64 = 0xffff_ffff_0000_0000;
    const NX: u64 = 1;
    const UF: u64 = 2;
    // funct5, fmt (1: D, 0: S), rm, a, b, c (for the fused ones), fflags, frm.
    let fused = |opcode: u32| opcode;
    struct Case(u32, u32, u32, u64, u64, u64, u64, u64);
    let cases = [
        Case(0x02, 1, 7, TWO_POW_M600, TWO_POW_M600, 0, NX, 0),
        Case(0x02, 1, 0, BELOW_ONE, MIN_NORMAL, 0, NX, 0),
        Case(0x02, 1, 7, BELOW_ONE, MIN_NORMAL, 0, 0, 0),
        Case(0x02, 1, 7, TWO_POW_1000, TWO_POW_1000, 0, NX, 0),
        Case(0x03, 1, 7, ONE, 0, 0, NX, 0),
        Case(0x03, 1, 7, 0, 0, 0, NX, 0),
        Case(0x0b, 1, 7, MINUS_FOUR, 0, 0, NX, 0),
        Case(0x01, 1, 7, ONE, ONE, 0, NX, 0),
        Case(0x00, 1, 7, ONE, THREE_HALF_ULP, 0, 0, 0),
        Case(0x00, 1, 7, ONE, THREE_HALF_ULP, 0, UF, 0),
        Case(0x00, 1, 7, ONE, THREE_HALF_ULP, 0, NX, 1),
        Case(0x00, 1, 1, ONE, THREE_HALF_ULP, 0, NX, 0),
        Case(0x00, 1, 7, ONE, THREE_HALF_ULP, 0, NX, 0),
        Case(0x00, 0, 7, 0x3f80_0000, BOX | 0x3f80_0000, 0, NX, 0),
        Case(0x02, 0, 7, BOX | 0x0100_0000, BOX | 0x0100_0000, 0, NX, 0),
        Case(0x02, 0, 7, BOX | 0x3f7f_ffff, BOX | 0x0080_0000, 0, NX, 0),
        Case(0x02, 0, 7, BOX | 0x3fc0_0000, BOX | 0x4000_0000, 0, NX, 0),
        // fmadd.d a*b + c with c = -(a*b): an exact zero.
        Case(fused(0x43), 1, 7, ONE, ONE, 0xbff0_0000_0000_0000, NX, 0),
        Case(fused(0x4b), 1, 7, TWO_POW_M600, TWO_POW_M600, 0, NX, 0),
        Case(fused(0x4f), 1, 7, ONE, THREE_HALF_ULP, ONE, NX, 0),
        // Special operands, which the fast path does not check: their
        // results are special too (NaN, infinity, zero), or, from
        // subnormals, normal and rounded alike.
        Case(0x02, 1, 7, SUBNORMAL, TWO_POW_1000, 0, NX, 0),
        Case(0x02, 1, 7, 3, TWO_POW_1000, 0, NX, 0),
        Case(0x03, 1, 7, 3, TWO_POW_M600, 0, NX, 0),
        Case(0x03, 1, 7, ONE, INFINITY, 0, NX, 0),
        Case(0x03, 1, 7, INFINITY, ONE, 0, NX, 0),
        Case(0x0b, 1, 7, SUBNORMAL, 0, 0, NX, 0),
        Case(0x0b, 1, 7, 7, 0, 0, NX, 0),
        Case(0x00, 1, 7, QUIET_NAN, ONE, 0, NX, 0),
        Case(0x00, 1, 7, ONE, SIGNALLING_NAN, 0, NX, 0),
        Case(0x01, 1, 7, INFINITY, INFINITY, 0, NX, 0),
        Case(0x02, 1, 7, INFINITY, 0, 0, NX, 0),
        Case(0x00, 1, 7, SUBNORMAL, ONE, 0, NX, 0),
        Case(fused(0x43), 1, 7, SUBNORMAL, TWO_POW_1000, ONE, NX, 0),
        Case(fused(0x43), 1, 7, INFINITY, 0, ONE, NX, 0),
        Case(fused(0x43), 1, 7, ONE, ONE, SIGNALLING_NAN, NX, 0),
        Case(0x02, 0, 7, BOX | 1, BOX | ((127 + 100) << 23), 0, NX, 0),
        Case(0x0b, 0, 7, BOX | 1, 0, 0, NX, 0),
        Case(0x00, 0, 7, BOX | 0x7f80_0001, BOX | 0x3f80_0000, 0, NX, 0),
        Case(0x03, 0, 7, BOX | 0x3f80_0000, BOX | 0x7f80_0000, 0, NX, 0),
    ];
    for (n, Case(op, fmt, rm, a, b, c, fflags, frm)) in cases.into_iter().enumerate() {
        let inst = if op >= 0x40 {
            (3 << 27) | (fmt << 25) | (2 << 20) | (1 << 15) | (rm << 12) | (4 << 7) | op
        } else {
            let rs2 = if op == 0x0b { 0 } else { 2 };
            r(0x53, rm, (op << 2) | fmt, 4, 1, rs2)
        };
        let run = |engine: Engine| {
            run_all_translated(engine, &[SPIN], &[inst, SPIN], 2, |hart| {
                hart.f[1] = a;
                hart.f[2] = b;
                hart.f[3] = c;
                hart.csr.fflags = fflags;
                hart.csr.frm = frm;
                hart.csr.mstatus |= MSTATUS_FS;
            })
        };
        let (interp, _) = run(Engine::Interp);
        let (jit, translated) = run(Engine::Jit);
        assert_eq!(translated, 2, "case {n}: the translator did not run it");
        assert_eq!(interp, jit, "case {n}");
    }
}

/// Singles read f registers the same block wrote as singles and then
/// overwrote: with a double's result, through a helper (fmv.d.x), with a
/// double's load (of a double the block stores first). Each is unboxed
/// then, so the single reads a NaN.
#[test]
fn a_single_after_a_double_write_sees_the_register_unboxed() {
    const BOX: u64 = 0xffff_ffff_0000_0000;
    let fadd_s = |rd: u32, rs1: u32, rs2: u32| r(0x53, 7, 0x00, rd, rs1, rs2);
    let fadd_d = |rd: u32, rs1: u32, rs2: u32| r(0x53, 7, 0x01, rd, rs1, rs2);
    let fmv_d_x = |fd: u32, rs1: u32| r(0x53, 0, 0x79, fd, rs1, 0);
    let fld = |fd: u32, offset: i32| i(0x07, 3, fd, 31, offset);
    let fsd = |fs: u32, offset: i32| s(3, 31, fs, offset) & !0x7f | 0x27;
    let code = [
        fadd_s(1, 2, 3),
        fadd_d(1, 4, 5),
        fadd_s(6, 1, 2),
        fadd_s(7, 2, 3),
        fmv_d_x(7, 5),
        fadd_s(8, 7, 2),
        fadd_s(9, 2, 3),
        fsd(5, 0),
        fld(9, 0),
        fadd_s(10, 9, 2),
        SPIN,
    ];
    // The block ends with the spin's jump: the whole of it fits.
    let steps = code.len() as u64;
    let run = |engine: Engine| {
        run_all_translated(engine, &[SPIN], &code, steps, |hart| {
            hart.f[2] = BOX | 0x3f80_0000; // 1.0f
            hart.f[3] = BOX | 0x4000_0000; // 2.0f
            hart.f[4] = 0x3ff0_0000_0000_0000; // 1.0
            hart.f[5] = 0x4000_0000_0000_0000; // 2.0
            hart.x[5] = 0x4010_0000_0000_0000; // 4.0
            hart.x[31] = DATA;
            hart.csr.fflags = 1; // NX: the fast path applies
            hart.csr.mstatus |= MSTATUS_FS;
        })
    };
    let (interp, _) = run(Engine::Interp);
    let (jit, translated) = run(Engine::Jit);
    let canonical_nan = BOX | 0x7fc0_0000;
    assert_eq!(
        [interp.f[6], interp.f[8], interp.f[10]],
        [canonical_nan; 3],
        "the interpreter reads each as unboxed"
    );
    assert_eq!(interp, jit);
    assert_eq!(translated, steps, "the block was not translated");
}

/// PAUSE stalls its hart to the end of the round (time passes, nothing
/// retires), on both engines alike: translated code leaves before it.
#[test]
fn pause_stalls_the_hart_to_the_end_of_its_round() {
    const PAUSE: u32 = 0x0100_000f;
    const ROUND: u64 = 1000;
    let code = [
        i(0x13, 0, 10, 10, 1),
        PAUSE,
        i(0x13, 0, 11, 11, 1),
        jal(0, -12),
    ];
    for engine in [Engine::Interp, Engine::Jit] {
        let mut bus = TestBus::new(1 << 20);
        bus.write_code(TRAP_PA, &[SPIN]);
        bus.write_code(CODE, &code);
        let mut hart = new_hart(CODE);
        hart.set_engine(engine).expect("the engine");
        hart.set_translation_threshold(0);
        for round in 1..=3u64 {
            let exit = hart.run_bounded(&mut bus, round * ROUND, u64::MAX);
            assert_eq!(exit, Exit::Limit, "{engine:?}, round {round}");
            // Each round: the loop's other two, then a0's add and PAUSE.
            assert_eq!(
                (hart.x[10], hart.x[11], hart.instret, hart.clock()),
                (round, round - 1, 4 * round - 2, round * ROUND),
                "{engine:?}, round {round}"
            );
        }
        if engine == Engine::Jit {
            assert!(hart.translated_steps() > 0, "nothing ran translated");
        }
    }
}

/// feq, flt and fle, translated, on every pair of edge operands of each
/// format (NaNs quiet and signalling, infinities, zeros of both signs,
/// subnormals, equal values, unboxed singles), with no flag set before:
/// the interpreter's result and flags. The host's ordered compare is the
/// fast path only for pairs without a NaN.
#[test]
fn fp_compare_edges_match_the_interpreter() {
    const DOUBLES: [u64; 9] = [
        0,
        1 << 63,
        0x7ff8_0000_0000_0000,
        0x7ff0_0000_0000_0001,
        0x7ff0_0000_0000_0000,
        0xfff0_0000_0000_0000,
        0x0000_0000_0000_0001,
        0x3ff0_0000_0000_0000,
        0xbff0_0000_0000_0000,
    ];
    const BOX: u64 = 0xffff_ffff_0000_0000;
    const SINGLES: [u64; 9] = [
        BOX,
        BOX | 0x8000_0000,
        BOX | 0x7fc0_0000,
        BOX | 0x7f80_0001,
        BOX | 0x7f80_0000,
        BOX | 0x0000_0001,
        BOX | 0x3f80_0000,
        BOX | 0xbf80_0000,
        0x3f80_0000,
    ];
    let mut translated_cases = 0;
    for (fmt, values) in [(1u32, DOUBLES), (0, SINGLES)] {
        for (f3, _name) in [(2u32, "feq"), (1, "flt"), (0, "fle")] {
            for &a in &values {
                for &b in &values {
                    // rd = x5, a local or memory register; x15 is pinned.
                    let code = [
                        r(0x53, f3, (0x14 << 2) | fmt, 5, 1, 2),
                        r(0x53, f3, (0x14 << 2) | fmt, 15, 2, 1),
                        SPIN,
                    ];
                    let run = |engine: Engine| {
                        run_all_translated(engine, &[SPIN], &code, 3, |hart| {
                            hart.f[1] = a;
                            hart.f[2] = b;
                            hart.csr.fflags = 0;
                            hart.csr.mstatus |= FS_INITIAL;
                        })
                    };
                    let (interp, _) = run(Engine::Interp);
                    let (jit, translated) = run(Engine::Jit);
                    translated_cases += (translated >= 2) as u32;
                    assert_eq!(interp, jit, "fmt {fmt} f3 {f3}: {a:#x} against {b:#x}");
                }
            }
        }
    }
    assert_eq!(
        translated_cases,
        2 * 3 * 81,
        "the translator did not run them all"
    );
}

/// fflags, frm and fcsr read and written in the middle of a translated
/// block, by each of the six CSR instructions: the flags a write clears
/// are cleared for the FP instruction after it (whose fast path needs NX
/// set), a write sets FS to Dirty, and with FS off the first of them
/// traps. The block runs twice, FS Initial then Off.
#[test]
fn fp_csrs_in_the_middle_of_a_block_match_the_interpreter() {
    let fadd_d = |rd: u32, rs1: u32, rs2: u32| r(0x53, 7, 1, rd, rs1, rs2);
    let code = [
        fadd_d(3, 1, 2),       // inexact: sets NX
        csr(0x001, 0, 2, 5),   // frflags x5
        csr(0x001, 0, 5, 0),   // fsflags x0, 0 (csrrwi): clears NX
        fadd_d(4, 1, 2),       // slow path: NX is clear
        csr(0x003, 0, 2, 6),   // frcsr x6
        csr(0x002, 6, 5, 7),   // fsrmi x7, 6: an invalid mode
        csr(0x002, 0, 6, 0),   // csrrsi x0, frm, 0: no write
        csr(0x002, 3, 7, 8),   // csrrci x8, frm, 3: mode 4 (RMM)
        fadd_d(9, 1, 2),       // RMM rounds the tie up: slow path
        csr(0x003, 5, 1, 10),  // fscsr x10, x5: frm 0, the flags of x5
        csr(0x001, 11, 3, 0),  // csrrc x0, fflags, x11
        csr(0x001, 12, 2, 12), // csrrs x12, fflags, x12
        fadd_d(13, 1, 2),
        SPIN,
    ];
    for fs in [FS_INITIAL, 0] {
        let run = |engine: Engine| {
            run_all_translated(engine, &[SPIN], &code, code.len() as u64, |hart| {
                // 1 and half its ulp: a tie (inexact), which RMM rounds
                // up and nearest-even down.
                hart.f[1] = 0x3ff0_0000_0000_0000;
                hart.f[2] = 0x3ca0_0000_0000_0000;
                hart.x[11] = 0x11;
                hart.x[12] = 0x4;
                hart.csr.fflags = 0;
                hart.csr.mstatus = (hart.csr.mstatus & !MSTATUS_FS) | fs;
            })
        };
        let (interp, _) = run(Engine::Interp);
        let (jit, translated) = run(Engine::Jit);
        assert_eq!(interp, jit, "FS {fs:#x}");
        if fs != 0 {
            assert!(
                translated >= code.len() as u64 - 1,
                "translated only {translated}"
            );
            assert_eq!(interp.csr.mstatus & MSTATUS_FS, MSTATUS_FS, "FS is Dirty");
            assert_eq!(interp.f[9], 0x3ff0_0000_0000_0001, "RMM rounded the tie up");
        } else {
            assert_ne!(interp.csr.mcause, UNTOUCHED, "FS off: the block traps");
        }
    }
}

/// A CSR instruction on fflags reads a register that the block holds in a
/// host register of its own and writes only after it (so the block's entry
/// need not load it for anything else): the CSR write gets the register's
/// value, not what its host register held before.
#[test]
fn an_fp_csr_reads_a_block_local_register_written_after_it() {
    let code = [
        csr(0x001, 18, 3, 19),              // csrrc x19, fflags, x18
        (0x7d27b << 12) | (18 << 7) | 0x37, // lui x18, 0x7d27b
        i(0x1b, 0, 18, 18, 0x4d4),          // addiw x18, x18, 0x4d4
        i(0x13, 0, 20, 18, 1),              // addi x20, x18, 1
        SPIN,
    ];
    let run = |engine: Engine| {
        run_all_translated(engine, &[SPIN], &code, code.len() as u64, |hart| {
            hart.x[18] = 1;
            hart.csr.fflags = 0x1a;
            hart.csr.mstatus |= FS_INITIAL;
        })
    };
    let (interp, _) = run(Engine::Interp);
    let (jit, translated) = run(Engine::Jit);
    assert_eq!(
        translated,
        code.len() as u64,
        "the translator did not run it"
    );
    assert_eq!(interp, jit);
    assert_eq!(jit.csr.fflags, 0x1a, "bit 0 cleared, nothing else");
}

/// Each kind of translated FP instruction, alone in a block run with
/// mstatus.FS Initial (and NX set, so that the fast paths apply): those
/// that write an f register or an FP CSR set FS to Dirty, as the
/// interpreter does, and stores, compares and reads do not.
#[test]
fn translated_fp_instructions_set_fs_dirty_as_the_interpreter_does() {
    let cases = [
        ("fld", i(0x07, 3, 3, 31, 0)),
        ("fsd", s(3, 31, 1, 8) & !0x7f | 0x27),
        ("fadd.d", r(0x53, 7, 1, 3, 1, 2)),
        (
            "fmadd.d",
            (2 << 27) | (1 << 25) | (2 << 20) | (1 << 15) | (7 << 12) | (3 << 7) | 0x43,
        ),
        ("flt.d", r(0x53, 1, (0x14 << 2) | 1, 5, 1, 2)),
        ("frflags", csr(0x001, 0, 2, 5)),
        ("fsflags", csr(0x001, 6, 1, 0)),
        ("fsrmi", csr(0x002, 1, 5, 0)),
    ];
    for (name, inst) in cases {
        let run = |engine: Engine| {
            run_all_translated(engine, &[SPIN], &[inst, SPIN], 2, |hart| {
                hart.f[1] = 0x3ff0_0000_0000_0000;
                hart.f[2] = 0x3c98_0000_0000_0000;
                hart.x[6] = 1;
                hart.x[31] = DATA;
                hart.csr.fflags = 1;
                hart.csr.mstatus = (hart.csr.mstatus & !MSTATUS_FS) | FS_INITIAL;
            })
        };
        let (interp, _) = run(Engine::Interp);
        let (jit, translated) = run(Engine::Jit);
        assert_eq!(translated, 2, "{name}: the translator did not run it");
        assert_eq!(interp, jit, "{name}");
    }
}

/// Every Zba/Zbb/Zbs instruction, translated, on the values where x86 and
/// RISC-V part ways (zero for the bit counts, whose x86 instructions leave
/// their result undefined; words with a zero low half for the W forms;
/// counts and bit numbers past the width, which both take modulo it; the
/// signs for min and max), gives the interpreter's result.
#[test]
fn bitmanip_edges_match_the_interpreter() {
    const VALUES: [u64; 10] = [
        0,
        1,
        u64::MAX,
        0x8000_0000,
        0xffff_ffff,
        1 << 32,
        1 << 63,
        (1 << 63) - 1,
        0x00ff_0000_ff00_0100,
        0xffff_ffff_0000_0000,
    ];
    const WITH_AMOUNT: [(u32, u32, u32, u32); 6] = [
        (0x13, 5, 0x600, 63), // rori
        (0x1b, 5, 0x600, 31), // roriw
        (0x13, 1, 0x480, 63), // bclri
        (0x13, 5, 0x480, 63), // bexti
        (0x13, 1, 0x680, 63), // binvi
        (0x13, 1, 0x280, 63), // bseti
    ];
    let slli_uw = |rd: u32, rs1: u32, shamt: u32| i(0x1b, 1, rd, rs1, (0x080 | shamt) as i32);
    // Programs: x2..x11 = VALUES, results in x12 and up; the two-register
    // ones take x1 as their first operand, set to each value in turn.
    let mut programs: Vec<Vec<u32>> = Vec::new();
    for &(opcode, f3, f7) in &ZB_TWO_REGISTERS {
        programs.push(
            (0..10)
                .map(|k| r(opcode, f3, f7, 12 + k, 1, 2 + k))
                .collect(),
        );
    }
    let binary = programs.len();
    let unary = |opcode: u32, f3: u32, imm: u32| {
        let one = move |rd: u32, rs1: u32| match opcode {
            0x3b => r(opcode, f3, imm >> 5, rd, rs1, 0),
            _ => i(opcode, f3, rd, rs1, imm as i32),
        };
        (0..10).map(move |k| one(12 + k, 2 + k))
    };
    // One program per instruction and amount: each writes x12..x21.
    programs.extend(
        ZB_ONE_REGISTER
            .iter()
            .map(|&(o, f3, imm)| unary(o, f3, imm).collect()),
    );
    for &(opcode, f3, imm, max) in &WITH_AMOUNT {
        for n in [0, 1, max / 2, max / 2 + 1, max] {
            programs.push(
                (0..10)
                    .map(|k| i(opcode, f3, 12 + k, 2 + k, (imm | n) as i32))
                    .collect(),
            );
        }
    }
    for n in [0, 1, 31, 32, 63] {
        programs.push((0..10).map(|k| slli_uw(12 + k, 2 + k, n)).collect());
    }
    for (n, body) in programs.iter().enumerate() {
        let firsts = if n < binary {
            &VALUES[..]
        } else {
            &VALUES[..1]
        };
        for &a in firsts {
            let mut code = body.clone();
            code.push(SPIN);
            let steps = code.len() as u64;
            let run = |engine: Engine| {
                run_all_translated(engine, &[SPIN], &code, steps, |hart| {
                    hart.x[1] = a;
                    hart.x[2..12].copy_from_slice(&VALUES);
                })
            };
            let (interp, _) = run(Engine::Interp);
            let (jit, translated) = run(Engine::Jit);
            assert_eq!(interp.pc, jit.pc, "program {n}, a = {a:#x}");
            assert_eq!(interp, jit, "program {n}, a = {a:#x}");
            assert_eq!(translated, steps, "program {n}: not all translated");
        }
    }
}

/// LR and SC in translated code: an SC with the reservation stores and
/// writes 0, one without it (none, another address, after a second LR
/// elsewhere) writes 1 and stores nothing, and the reservation is gone
/// after either; misaligned ones trap. The hart's reservation and RAM must
/// be the interpreter's after every program.
#[test]
fn lr_and_sc_match_the_interpreter() {
    // a0 = DATA, a1 = DATA + 8, a2 = DATA + 4 (misaligned for .d), a3 =
    // the value SC stores, a4 = an address on the code's page.
    let lr = |w: bool, rd: u32, rs1: u32| r(0x2f, if w { 2 } else { 3 }, 0x02 << 2, rd, rs1, 0);
    let sc = |w: bool, rd: u32, rs1: u32| r(0x2f, if w { 2 } else { 3 }, 0x03 << 2, rd, rs1, 13);
    // A first block touches the data page, through the TLB's read table
    // (ld), and its write table too (sd) unless it is a nop (then the SC's
    // miss fills it), and jumps to the second, the one under test.
    let ld = i(0x03, 3, 0, 11, 0);
    let sd = s(3, 10, 0, 0);
    let nop = i(0x13, 0, 0, 0, 0);
    for w in [false, true] {
        let programs: Vec<(u32, Vec<u32>, bool)> = vec![
            (sd, vec![lr(w, 5, 10), sc(w, 6, 10)], true),
            (sd, vec![sc(w, 6, 10)], true),
            (sd, vec![lr(w, 5, 10), sc(w, 6, 11)], true),
            (sd, vec![lr(w, 5, 10), lr(w, 7, 11), sc(w, 6, 10)], true),
            (sd, vec![lr(w, 5, 10), sc(w, 6, 10), sc(w, 7, 10)], true),
            (sd, vec![lr(w, 5, 12), sc(w, 6, 10)], w),
            (sd, vec![lr(w, 5, 10), sc(w, 6, 12)], w),
            (nop, vec![lr(w, 5, 10), sc(w, 6, 10)], true),
            // On the code's own page, where stores take the checked path:
            // the SC leaves, its reservation intact, for the interpreter.
            (sd, vec![lr(w, 5, 14), sc(w, 6, 14)], false),
        ];
        for (n, (touch, body, all_translated)) in programs.into_iter().enumerate() {
            let mut code = vec![ld, touch, jal(0, 4)];
            code.extend(body);
            code.push(SPIN);
            let steps = code.len() as u64;
            let run = |engine: Engine| {
                let mut bus = TestBus::new(1 << 20);
                bus.write_code(TRAP_PA, &skipping_trap_handler());
                bus.write_code(CODE, &code);
                bus.write(DATA, &[0x5a; 16]);
                let mut hart = new_hart(CODE);
                hart.x[10] = DATA;
                hart.x[11] = DATA + 8;
                hart.x[12] = DATA + 4;
                hart.x[13] = 0x1122_3344_5566_7788;
                hart.x[14] = CODE + 0x800;
                hart.set_engine(engine).expect("the engine");
                hart.set_translation_threshold(0);
                hart.run_bounded(&mut bus, u64::MAX, steps);
                let data = [
                    bus.read_u64(DATA),
                    bus.read_u64(DATA + 8),
                    bus.read_u64(CODE + 0x800),
                ];
                (hart.arch_state(), data, hart.translated_steps())
            };
            let (interp, interp_data, _) = run(Engine::Interp);
            let (jit, jit_data, translated) = run(Engine::Jit);
            let what = format!("program {n}, {}", if w { "word" } else { "doubleword" });
            assert_eq!(interp.reservation, jit.reservation, "{what}");
            assert_eq!(interp, jit, "{what}");
            assert_eq!(interp_data, jit_data, "{what}");
            if all_translated {
                assert_eq!(translated, steps, "{what}: not all translated");
            }
        }
    }
}

/// A block that loops back to its own start runs round in place, holding
/// its own guest registers in host registers without writing them back
/// between rounds (see jit/translate/locals.rs). What a round changed must
/// still reach the hart wherever a later round leaves or calls a helper,
/// even for a register the block writes before it reads it: here s3,
/// which fmv.d.x (a helper, reading the hart's registers) copies into f1
/// at the top of each round, before the round sets it again.
#[test]
fn a_loop_run_in_place_hands_on_what_earlier_rounds_changed() {
    let fmv_d_x = |fd: u32, rs1: u32| r(0x53, 0, 0x79, fd, rs1, 0);
    let addi = |rd: u32, rs1: u32, imm: i32| i(0x13, 0, rd, rs1, imm);
    let (s3, s4) = (19, 20);
    let code = vec![
        fmv_d_x(1, s3),
        addi(s3, 0, 7),
        addi(s3, s3, 1),
        addi(s4, s4, -1),
        b(1, s4, 0, -16), // bne s4, x0, the top
        SPIN,
    ];
    let rounds = 3;
    let steps = 5 * rounds + 1;
    let run = |engine: Engine| {
        run_all_translated(engine, &skipping_trap_handler(), &code, steps, |hart| {
            hart.csr.mstatus |= MSTATUS_FS;
            hart.x[s4 as usize] = rounds;
        })
    };
    let (interp, _) = run(Engine::Interp);
    let (jit, translated) = run(Engine::Jit);
    assert_eq!(interp.f[1], 8, "the interpreter's f1 after the last round");
    assert_eq!(interp, jit);
    assert_eq!(translated, steps, "the loop was not translated");
}

/// Blocks that never reach memory hold up to four locals, two of them in
/// the host registers that hold RAM's base and the data TLB elsewhere: a
/// loop, which chains into a block of loads and stores; and a block that
/// jumps through a register (the jump cache) to another, which chains
/// back to the start. Every round must find RAM and the TLB where the
/// memory blocks expect them.
#[test]
fn memory_free_blocks_hand_memory_back_to_the_next_block() {
    let addi = |rd: u32, rs1: u32, imm: i32| i(0x13, 0, rd, rs1, imm);
    let add = |rd: u32, rs1: u32, rs2: u32| r(0x33, 0, 0, rd, rs1, rs2);
    let xor = |rd: u32, rs1: u32, rs2: u32| r(0x33, 4, 0, rd, rs1, rs2);
    let jalr = |rs1: u32| i(0x67, 0, 0, rs1, 0);
    let sd = |rs2: u32, offset: i32| s(3, 31, rs2, offset);
    let ld = |rd: u32, offset: i32| i(0x03, 3, rd, 31, offset);
    // None of these is pinned (translate.rs's PINNED).
    let (s1, s2, s3, s4, s5, s6, s7, s8) = (9, 18, 19, 20, 21, 22, 23, 24);
    let code = vec![
        // The start: the loop's count.
        addi(s5, 0, 4),
        // The loop, five registers named, no memory.
        addi(s1, s1, 3),
        add(s2, s2, s1),
        xor(s3, s3, s2),
        add(s4, s4, s3),
        addi(s5, s5, -1),
        b(1, s5, 0, -20), // bne s5, x0, the loop
        // Memory.
        sd(s1, 0),
        sd(s2, 8),
        ld(s6, 0),
        jal(0, 4),
        // No memory, and a jump to the next instruction's address.
        add(s1, s1, s2),
        add(s2, s2, s3),
        add(s3, s3, s4),
        add(s4, s4, s1),
        jalr(s8),
        // Memory, then back to the start.
        sd(s3, 16),
        ld(s1, 8),
        add(s6, s6, s1),
        sd(s4, 24),
        ld(s2, 16),
        addi(s7, s7, -1),
        b(1, s7, 0, -88), // bne s7, x0, the start
        SPIN,
    ];
    let rounds = 6;
    let steps = rounds * (1 + 6 * 4 + 4 + 5 + 7);
    let run = |engine: Engine| {
        run_all_translated(engine, &skipping_trap_handler(), &code, steps, |hart| {
            hart.x[31] = DATA;
            hart.x[s7 as usize] = rounds;
            hart.x[s8 as usize] = CODE + 4 * 16;
        })
    };
    let (interp, _) = run(Engine::Interp);
    let (jit, translated) = run(Engine::Jit);
    assert_eq!(interp.pc, CODE + 4 * 23, "the interpreter ends at the spin");
    assert_eq!(interp, jit);
    assert_eq!(translated, steps, "the blocks were not all translated");
}

/// Loads and stores under Sv39 in S-mode, where translated code's TLB
/// misses call the fill helper: pages with A and D set (the fill is all
/// the slow path does first, the code retries), without them (the walk
/// writes the PTE, the code leaves), read-only, unmapped, mapped outside
/// RAM, mapped onto the code's page (stores take the slow path) and onto
/// the page table itself, whose PTEs the program rewrites without
/// SFENCE.VMA (a hart keeps its cached translation until then), accesses
/// crossing pages, and SFENCE.VMA between them. Registers, TLB, page
/// tables and data must end as the interpreter leaves them.
#[test]
fn translated_tlb_fills_under_paging_match_the_interpreter() {
    const ROOT: u64 = RAM_BASE + 0x40000;
    const L1: u64 = ROOT + 0x1000;
    const L0: u64 = ROOT + 0x2000;
    const PAGES: u64 = 8;
    const FIRST: u64 = 0x20; // data page numbers FIRST.. (DATA's page first)
    const PT_PAGE: u64 = 6;
    let (pv, pr, pw, px, pa_, pd) = (1u64, 2, 4, 8, 64, 128);
    let leaf = |pa: u64, flags: u64| ((pa >> 12) << 10) | flags;
    let page_pa = |n: u64| RAM_BASE + (FIRST + n) * 0x1000;
    let data_pte = |n: u64| match n {
        0 => leaf(page_pa(0), pv | pr | pw | pa_ | pd),
        1 => leaf(page_pa(1), pv | pr | pw),
        2 => leaf(page_pa(2), pv | pr | pa_),
        3 => 0,
        4 => leaf(page_pa(4), pv | pr | pw | pa_),
        5 => leaf(0x1000_0000, pv | pr | pw | pa_ | pd),
        PT_PAGE => leaf(L0, pv | pr | pw | pa_ | pd),
        _ => leaf(CODE, pv | pr | pw | pa_ | pd),
    };
    for seed in 0..32u64 {
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1, false);
        let mut code = Vec::new();
        for _ in 0..200 {
            let page = rng.below(PAGES) as u32;
            // Bases x20.. point at the middle of each page: offsets reach
            // all of it, and its neighbours' edges.
            let imm = rng.below(4096) as i32 - 2048;
            let rd = rng.pick(&[5, 6, 7, 28]);
            code.push(match rng.below(10) {
                _ if page == PT_PAGE as u32 => {
                    // Rewrite a data page's PTE (not this one's) with one
                    // of x8..x11.
                    let entry = (FIRST + rng.pick(&[0, 1, 2, 3, 4, 5, 7])) as i32;
                    s(3, 20 + page, rng.pick(&[8, 9, 10, 11]), 8 * entry - 0x800)
                }
                0..=3 => i(0x03, rng.pick(&[0, 1, 2, 3, 4, 5, 6]), rd, 20 + page, imm),
                4..=6 => s(rng.below(4) as u32, 20 + page, rd, imm),
                7 => r(0x2f, 3, 0, rd, 20 + page, rd & !7 | 8), // amoadd.d
                8 => r(0x2f, 3, 0x08, rd, 20 + page, 0),        // lr.d
                _ => 0x1200_0073,                               // sfence.vma
            });
        }
        code.push(SPIN);
        let steps = code.len() as u64 + 400;
        let run = |engine: Engine| {
            let mut bus = TestBus::new(1 << 20);
            bus.write_code(TRAP_PA, &skipping_trap_handler());
            bus.write_code(CODE, &code);
            bus.write_u64(ROOT + 2 * 8, leaf(L1, pv));
            bus.write_u64(L1, leaf(L0, pv));
            bus.write_u64(L0 + 8, leaf(CODE, pv | pr | px | pa_));
            for n in 0..PAGES {
                bus.write_u64(L0 + (FIRST + n) * 8, data_pte(n));
            }
            let mut state = new_hart(CODE).arch_state();
            state.prv = 1;
            state.csr.satp = (8 << 60) | (ROOT >> 12);
            state.csr.mstatus |= 1 << 11; // MPP = S: the handler returns there
                                          // PMP lets S-mode reach everything (with no entry it reaches nothing).
            state.csr.pmpaddr[0] = u64::MAX >> 10;
            state.csr.pmpcfg[0] = 0x1f;
            // PTEs the program may install: pages swapped, one without A/D.
            state.x[8] = data_pte(0);
            state.x[9] = leaf(page_pa(1), pv | pr | pw | pa_ | pd);
            state.x[10] = data_pte(1);
            state.x[11] = 0;
            for n in 0..PAGES {
                state.x[20 + n as usize] = page_pa(n) + 0x800;
            }
            let mut hart = Hart::from_arch_state(0, &state);
            hart.set_engine(engine).expect("the engine");
            hart.set_translation_threshold(0);
            hart.run_bounded(&mut bus, u64::MAX, steps);
            let ram: Vec<u64> = (0..(FIRST + PAGES) * 512)
                .map(|k| bus.read_u64(RAM_BASE + 0x1000 + 8 * k))
                .chain((0..512).map(|k| bus.read_u64(L0 + 8 * k)))
                .collect();
            (
                hart.arch_state(),
                hart.tlb_state(),
                ram,
                hart.translated_steps(),
            )
        };
        let (interp, interp_tlb, interp_ram, _) = run(Engine::Interp);
        let (jit, jit_tlb, jit_ram, translated) = run(Engine::Jit);
        assert_eq!(interp, jit, "program {seed}");
        assert_eq!(interp_tlb, jit_tlb, "program {seed}: the TLB");
        assert!(
            interp_ram == jit_ram,
            "program {seed}: RAM or page tables differ"
        );
        assert!(translated > 0, "program {seed}: nothing translated");
    }
}

#[test]
fn an_interrupt_a_translated_csr_write_enables_is_taken_right_after_it() {
    // Supervisor software interrupt pending and enabled in mie; the loop
    // sets mstatus.MIE, and the interrupt must be taken before the next
    // instruction, on both engines, however the blocks are laid out.
    let csr_imm = |csr: u32, f3: u32, imm: u32| (csr << 20) | (imm << 15) | (f3 << 12) | 0x73;
    let handler = [
        csr_imm(0x344, 7, 2), // csrrci x0, mip, SSIP
        0x3410_2373,          // csrr x6, mepc
        0x3020_0073,          // mret
    ];
    let body = [
        i(0x13, 0, 5, 5, 1),  // addi x5, x5, 1
        csr_imm(0x300, 6, 8), // csrrsi x0, mstatus, MIE
        i(0x13, 0, 7, 7, 1),  // addi x7, x7, 1
        csr_imm(0x300, 7, 8), // csrrci x0, mstatus, MIE
        csr_imm(0x344, 6, 2), // csrrsi x0, mip, SSIP: pending (again)
        jal(0, -20),
    ];
    let mut states = Vec::new();
    for engine in [Engine::Interp, Engine::Jit] {
        let mut bus = TestBus::new(1 << 20);
        bus.write_code(TRAP_PA, &handler);
        bus.write_code(CODE, &body);
        let mut hart = new_hart(CODE);
        hart.set_engine(engine).expect("the engine");
        hart.set_translation_threshold(0);
        // Pending only from the second round: in the first, the block
        // after the csrrsi runs right after it, as a chain would.
        hart.csr.mie = 1 << 1;
        let exit = hart.run_bounded(&mut bus, u64::MAX, 500);
        assert_eq!(exit, Exit::Retired, "{engine:?}");
        // Each round: the interrupt after the csrrsi, so mepc is the addi
        // of x7, which then runs once the handler returns.
        assert_eq!(hart.x[6], CODE + 8, "{engine:?}: the interrupt came late");
        assert!(hart.x[7] > 10, "{engine:?}");
        if engine == Engine::Jit {
            assert!(hart.translated_steps() > 0);
        }
        states.push(hart.arch_state());
    }
    assert_eq!(states[0], states[1]);
}
