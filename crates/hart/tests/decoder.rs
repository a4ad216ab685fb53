//! Decoder tests: every encoding decodes to the operation, registers,
//! immediate, format and length that the GNU disassembler reports for it, and
//! every illegal encoding decodes to `Op::Illegal` and, executed, raises an
//! illegal-instruction exception whose mtval holds the instruction bits.
//!
//! The reference data in `decoder_table/mod.rs` comes from binutils, not from
//! the hart; `gen_decoder_table.sh` regenerates it.

mod common;
mod decoder_table;

use common::{enc, install_trap_handler, new_hart, run, TestBus, FS_INITIAL, RAM_BASE, TRAP_PA};
use decoder_table::{Case, CASES, SWEEP16, SWEEP32, SWEEP32_VARIANTS};
use rewind_hart::decode::{decode, inst_len, Fmt, Op};
use rewind_hart::{cause, csr, prv, Hart};

// ------------------------------------------------------------ valid encodings

fn check_case(c: &Case) -> Vec<String> {
    let i = decode(c.bits);
    let mut bad = Vec::new();
    let mut expect = |what: &str, got: String, want: String| {
        if got != want {
            bad.push(format!(
                "{:<40} {:#010x} ({}): {what} is {got}, objdump says {want}",
                c.asm, c.bits, c.disasm
            ));
        }
    };
    expect("op", format!("{:?}", i.op), format!("{:?}", c.op));
    expect("len", i.len.to_string(), c.len.to_string());
    expect("raw", format!("{:#x}", i.raw), format!("{:#x}", c.bits));
    let fields = [
        ("rd", i.rd, c.rd),
        ("rs1", i.rs1, c.rs1),
        ("rs2", i.rs2, c.rs2),
        ("rs3", i.rs3, c.rs3),
        ("rm", i.rm, c.rm),
    ];
    for (name, got, want) in fields {
        if let Some(want) = want {
            expect(name, got.to_string(), want.to_string());
        }
    }
    if let Some(want) = c.imm {
        expect("imm", i.imm.to_string(), want.to_string());
    }
    if let Some(want) = c.fmt {
        expect("fmt", format!("{:?}", i.fmt), format!("{want:?}"));
    }
    bad
}

#[test]
fn every_assembled_instruction_decodes_to_the_fields_objdump_reports() {
    let bad: Vec<String> = CASES.iter().flat_map(check_case).collect();
    assert!(
        bad.is_empty(),
        "{} of {} cases decode wrongly:\n{}",
        bad.len(),
        CASES.len(),
        bad.join("\n")
    );
}

#[test]
fn reference_table_covers_every_operation() {
    use Op::*;
    let all = [
        Lui, Auipc, Jal, Jalr, Beq, Bne, Blt, Bge, Bltu, Bgeu, Lb, Lh, Lw, Ld, Lbu, Lhu, Lwu, Sb,
        Sh, Sw, Sd, Addi, Slti, Sltiu, Xori, Ori, Andi, Slli, Srli, Srai, Add, Sub, Sll, Slt, Sltu,
        Xor, Srl, Sra, Or, And, Addiw, Slliw, Srliw, Sraiw, Addw, Subw, Sllw, Srlw, Sraw, Fence,
        FenceI, Ecall, Ebreak, Mret, Sret, Wfi, SfenceVma, Csrrw, Csrrs, Csrrc, Csrrwi, Csrrsi,
        Csrrci, Mul, Mulh, Mulhsu, Mulhu, Div, Divu, Rem, Remu, Mulw, Divw, Divuw, Remw, Remuw, Lr,
        Sc, AmoSwap, AmoAdd, AmoXor, AmoAnd, AmoOr, AmoMin, AmoMax, AmoMinu, AmoMaxu, Flw, Fsw,
        Fld, Fsd, Fmadd, Fmsub, Fnmsub, Fnmadd, Fadd, Fsub, Fmul, Fdiv, Fsqrt, Fsgnj, Fsgnjn,
        Fsgnjx, Fmin, Fmax, FcvtFF, FcvtIF, FcvtFI, FmvXF, FmvFX, Feq, Flt, Fle, Fclass, AddUw,
        Sh1add, Sh2add, Sh3add, Sh1addUw, Sh2addUw, Sh3addUw, SlliUw, Andn, Orn, Xnor, Clz, Clzw,
        Ctz, Ctzw, Cpop, Cpopw, Max, Maxu, Min, Minu, SextB, SextH, ZextH, Rol, Rolw, Ror, Rori,
        Roriw, Rorw, OrcB, Rev8, Bclr, Bclri, Bext, Bexti, Binv, Binvi, Bset, Bseti, CboClean,
        CboFlush, CboInval, CboZero,
    ];
    let missing: Vec<_> = all
        .iter()
        .filter(|op| !CASES.iter().any(|c| c.op == **op))
        .collect();
    assert!(missing.is_empty(), "no reference case for {missing:?}");
    // Every compressed instruction of RV64C is there too.
    let compressed = [
        "c.addi4spn",
        "c.fld",
        "c.lw",
        "c.ld",
        "c.fsd",
        "c.sw",
        "c.sd",
        "c.nop",
        "c.addi",
        "c.addiw",
        "c.li",
        "c.addi16sp",
        "c.lui",
        "c.srli",
        "c.srai",
        "c.andi",
        "c.sub",
        "c.xor",
        "c.or",
        "c.and",
        "c.subw",
        "c.addw",
        "c.j",
        "c.beqz",
        "c.bnez",
        "c.slli",
        "c.fldsp",
        "c.lwsp",
        "c.ldsp",
        "c.jr",
        "c.mv",
        "c.ebreak",
        "c.jalr",
        "c.add",
        "c.fsdsp",
        "c.swsp",
        "c.sdsp",
    ];
    for name in compressed {
        assert!(
            CASES
                .iter()
                .any(|c| c.len == 2 && c.asm.split_whitespace().next() == Some(name)),
            "no reference case for {name}"
        );
    }
}

#[test]
fn compressed_decode_ignores_the_upper_halfword() {
    for c in CASES.iter().filter(|c| c.len == 2) {
        for upper in [0xffff_0000u32, 0x1234_0000, 0x0073_0000] {
            let i = decode(upper | c.bits);
            assert_eq!(i, decode(c.bits), "{} with upper half {upper:#x}", c.asm);
            assert_eq!(
                i.raw, c.bits,
                "{}: raw must be the 16 bits, zero-extended",
                c.asm
            );
        }
    }
}

#[test]
fn instruction_length_is_four_exactly_when_the_low_bits_are_11() {
    for low in 0..=u16::MAX {
        let want = if low & 3 == 3 { 4 } else { 2 };
        assert_eq!(inst_len(low), want, "{low:#06x}");
    }
}

/// The expected operation of a swept encoding: the run holding `key`.
fn sweep_lookup<T: Copy>(table: &[(u32, T)], key: u32) -> T {
    let at = table.partition_point(|&(k, _)| k <= key);
    assert!(at > 0, "key {key:#x} before the first run");
    table[at - 1].1
}

#[test]
fn every_compressed_encoding_decodes_as_objdump_reads_it() {
    let mut bad = Vec::new();
    for v in 0..=u16::MAX {
        if v & 3 == 3 {
            continue;
        }
        let key = ((v as u32 & 3) << 14) | (v as u32 >> 2);
        let want = sweep_lookup(SWEEP16, key);
        let i = decode(v as u32);
        if i.op != want || i.len != 2 || i.raw != v as u32 {
            bad.push(format!(
                "{v:#06x}: {:?} len {} raw {:#x}, expected {want:?}",
                i.op, i.len, i.raw
            ));
        }
    }
    assert!(
        bad.is_empty(),
        "{} compressed encodings disagree with objdump:\n{}",
        bad.len(),
        bad.join("\n")
    );
}

const LONG_OPCODES: [u32; 4] = [0b00111, 0b01111, 0b10111, 0b11111];
const MISC_MEM: u32 = 0b00011;
const SYSTEM: u32 = 0b11100;

/// Calls `f(key, raw)` for every encoding of the 32-bit sweep, in key order
/// (see `SWEEP32` for the key layout).
fn for_each_sweep32(mut f: impl FnMut(u32, u32)) {
    for (var, &(rd, rs1)) in SWEEP32_VARIANTS.iter().enumerate() {
        let var = var as u32;
        for op5 in 0..32u32 {
            if LONG_OPCODES.contains(&op5) || (var > 0 && op5 != MISC_MEM && op5 != SYSTEM) {
                continue;
            }
            for f3 in 0..8u32 {
                for fmt in 0..4u32 {
                    for f5 in 0..32u32 {
                        for rs2 in 0..32u32 {
                            let f7 = (f5 << 2) | fmt;
                            let raw = (f7 << 25)
                                | (rs2 << 20)
                                | (rs1 << 15)
                                | (f3 << 12)
                                | (rd << 7)
                                | (op5 << 2)
                                | 3;
                            let key = (var << 20)
                                | (op5 << 15)
                                | (f3 << 12)
                                | (fmt << 10)
                                | (f5 << 5)
                                | rs2;
                            f(key, raw);
                        }
                    }
                }
            }
        }
    }
}

/// Operations whose rm field selects a rounding mode: with rm = 5 or 6 the
/// encoding is reserved, which a decoder may report at decode time or leave
/// to execution (tested below).
fn rounds(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        Fmadd
            | Fmsub
            | Fnmsub
            | Fnmadd
            | Fadd
            | Fsub
            | Fmul
            | Fdiv
            | Fsqrt
            | FcvtFF
            | FcvtIF
            | FcvtFI
    )
}

#[test]
fn every_opcode_funct3_funct7_rs2_combination_decodes_as_objdump_reads_it() {
    let table: Vec<(u32, (Op, Option<Fmt>))> =
        SWEEP32.iter().map(|&(k, op, fmt)| (k, (op, fmt))).collect();
    let mut bad = Vec::new();
    let mut count = 0u64;
    for_each_sweep32(|key, raw| {
        count += 1;
        let (want, want_fmt) = sweep_lookup(&table, key);
        let i = decode(raw);
        let f3 = (raw >> 12) & 7;
        // The sweep was read without Zihintpause, where PAUSE is a FENCE
        // (pred = W, succ = 0), as it is to a hart that lacks it.
        let pause = raw == 0x0100_000f && want == Op::Fence && i.op == Op::Pause;
        let op_ok =
            i.op == want || pause || (rounds(want) && (f3 == 5 || f3 == 6) && i.op == Op::Illegal);
        let fmt_ok = i.op == Op::Illegal || want_fmt.is_none_or(|f| f == i.fmt);
        if !op_ok || !fmt_ok || i.len != 4 || i.raw != raw {
            bad.push(format!(
                "{raw:#010x}: {:?} fmt {:?} len {} raw {:#x}, expected {want:?} fmt {want_fmt:?}",
                i.op, i.fmt, i.len, i.raw
            ));
        }
    });
    assert_eq!(count, 28 * 8 * 128 * 32 + 3 * 2 * 8 * 128 * 32);
    let shown: Vec<_> = bad.iter().take(200).cloned().collect();
    assert!(
        bad.is_empty(),
        "{} 32-bit encodings disagree with objdump (first 200):\n{}",
        bad.len(),
        shown.join("\n")
    );
}

// ---------------------------------------------------------- illegal encodings

fn r_type(opcode: u32, f3: u32, f7: u32, rd: u32, rs1: u32, rs2: u32) -> u32 {
    (f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

/// I-type with the raw 12-bit immediate field.
fn i_type(opcode: u32, f3: u32, rd: u32, rs1: u32, imm12: u32) -> u32 {
    (imm12 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | opcode
}

/// (description, bits, length): encodings the ISA reserves or that name
/// extensions this hart does not implement.
fn illegal_encodings() -> Vec<(&'static str, u32, u8)> {
    let mut v: Vec<(&'static str, u32, u8)> = vec![
        // Compressed.
        ("all-zero 16-bit instruction", 0x0000, 2),
        ("c.addi4spn with nzuimm = 0, rd' = x9", 0x0004, 2),
        ("c.addi4spn with nzuimm = 0, rd' = x15", 0x001c, 2),
        ("quadrant 0 funct3 = 100 (reserved)", 0x8000, 2),
        ("quadrant 0 funct3 = 100, all fields set", 0x9ffc, 2),
        ("c.lwsp with rd = 0", 0x4002, 2),
        ("c.lwsp with rd = 0 and an offset", 0x5006, 2),
        ("c.ldsp with rd = 0", 0x6002, 2),
        ("c.ldsp with rd = 0 and an offset", 0x707e, 2),
        ("c.jr with rs1 = 0", 0x8002, 2),
        ("c.addiw with rd = 0", 0x2001, 2),
        ("c.addiw with rd = 0, imm = 1", 0x2005, 2),
        ("c.addiw with rd = 0, imm = -32", 0x3001, 2),
        ("c.lui with nzimm = 0 (rd = x5)", 0x6281, 2),
        ("c.lui with nzimm = 0 (rd = x31)", 0x6f81, 2),
        ("c.addi16sp with nzimm = 0", 0x6101, 2),
        ("c.subw space, funct2 = 10 (reserved)", 0x9c41, 2),
        ("c.subw space, funct2 = 11 (reserved)", 0x9c61, 2),
        ("c.subw space, funct2 = 10, other registers", 0x9fdd, 2),
        ("c.subw space, funct2 = 11, other registers", 0x9ffd, 2),
        // Whole words.
        ("0xffffffff", 0xffff_ffff, 4),
        ("LOAD funct3 = 111", i_type(0x03, 7, 5, 6, 0), 4),
        ("STORE funct3 = 100", r_type(0x23, 4, 0, 0, 6, 7), 4),
        ("STORE funct3 = 111", r_type(0x23, 7, 0x7f, 31, 6, 7), 4),
        ("BRANCH funct3 = 010", r_type(0x63, 2, 0, 0, 5, 6), 4),
        ("BRANCH funct3 = 011", r_type(0x63, 3, 0, 0, 5, 6), 4),
        ("JALR funct3 = 001", i_type(0x67, 1, 1, 5, 0), 4),
        ("JALR funct3 = 111", i_type(0x67, 7, 1, 5, 0), 4),
        ("LOAD-FP funct3 = 001 (flh)", i_type(0x07, 1, 5, 6, 0), 4),
        ("LOAD-FP funct3 = 100 (flq)", i_type(0x07, 4, 5, 6, 0), 4),
        ("LOAD-FP funct3 = 000", i_type(0x07, 0, 5, 6, 0), 4),
        (
            "STORE-FP funct3 = 001 (fsh)",
            r_type(0x27, 1, 0, 0, 6, 7),
            4,
        ),
        (
            "STORE-FP funct3 = 100 (fsq)",
            r_type(0x27, 4, 0, 0, 6, 7),
            4,
        ),
        (
            "slli with imm[11:6] = 100000",
            i_type(0x13, 1, 5, 6, 0x803),
            4,
        ),
        (
            "slli with imm[11:6] = 000001",
            i_type(0x13, 1, 5, 6, 0x040),
            4,
        ),
        (
            "srli with imm[11:6] = 000001",
            i_type(0x13, 5, 5, 6, 0x041),
            4,
        ),
        (
            "srai with imm[11:6] = 010001",
            i_type(0x13, 5, 5, 6, 0x441),
            4,
        ),
        (
            "OP-IMM funct3=001 funct12 = 0x603 (between cpop and sext.b)",
            i_type(0x13, 1, 5, 6, 0x603),
            4,
        ),
        (
            "OP-IMM funct3=001 funct12 = 0x606 (after sext.h)",
            i_type(0x13, 1, 5, 6, 0x606),
            4,
        ),
        (
            "OP-IMM funct3=101 funct12 = 0x6b0 (near rev8)",
            i_type(0x13, 5, 5, 6, 0x6b0),
            4,
        ),
        (
            "OP-IMM funct3=101 funct12 = 0x286 (near orc.b)",
            i_type(0x13, 5, 5, 6, 0x286),
            4,
        ),
        ("OP-IMM-32 funct3 = 010", i_type(0x1b, 2, 5, 6, 0), 4),
        ("OP-IMM-32 funct3 = 011", i_type(0x1b, 3, 5, 6, 0), 4),
        ("OP-IMM-32 funct3 = 100", i_type(0x1b, 4, 5, 6, 0), 4),
        ("OP-IMM-32 funct3 = 110", i_type(0x1b, 6, 5, 6, 0), 4),
        ("OP-IMM-32 funct3 = 111", i_type(0x1b, 7, 5, 6, 0), 4),
        ("slliw with shamt[5] set", i_type(0x1b, 1, 5, 6, 0x020), 4),
        ("srliw with shamt[5] set", i_type(0x1b, 5, 5, 6, 0x020), 4),
        ("sraiw with shamt[5] set", i_type(0x1b, 5, 5, 6, 0x420), 4),
        ("roriw with shamt[5] set", i_type(0x1b, 5, 5, 6, 0x620), 4),
        (
            "OP-IMM-32 funct3=001 funct12 = 0x603 (after cpopw)",
            i_type(0x1b, 1, 5, 6, 0x603),
            4,
        ),
        ("OP funct7 = 0000010", r_type(0x33, 0, 0x02, 5, 6, 7), 4),
        ("OP funct7 = 1000000", r_type(0x33, 0, 0x40, 5, 6, 7), 4),
        (
            "OP funct7 = 0100000 funct3 = 001",
            r_type(0x33, 1, 0x20, 5, 6, 7),
            4,
        ),
        (
            "OP funct7 = 0100000 funct3 = 010",
            r_type(0x33, 2, 0x20, 5, 6, 7),
            4,
        ),
        (
            "OP funct7 = 0000101 funct3 = 000",
            r_type(0x33, 0, 0x05, 5, 6, 7),
            4,
        ),
        (
            "OP funct7 = 0010000 funct3 = 000",
            r_type(0x33, 0, 0x10, 5, 6, 7),
            4,
        ),
        (
            "OP funct7 = 0100100 funct3 = 000",
            r_type(0x33, 0, 0x24, 5, 6, 7),
            4,
        ),
        (
            "OP funct7 = 0110000 funct3 = 000",
            r_type(0x33, 0, 0x30, 5, 6, 7),
            4,
        ),
        (
            "OP-32 funct7 = 0100000 funct3 = 001",
            r_type(0x3b, 1, 0x20, 5, 6, 7),
            4,
        ),
        (
            "OP-32 funct7 = 0000000 funct3 = 010",
            r_type(0x3b, 2, 0, 5, 6, 7),
            4,
        ),
        (
            "OP-32 funct7 = 0000000 funct3 = 011",
            r_type(0x3b, 3, 0, 5, 6, 7),
            4,
        ),
        (
            "OP-32 funct7 = 0000001 funct3 = 001",
            r_type(0x3b, 1, 1, 5, 6, 7),
            4,
        ),
        (
            "OP-32 funct7 = 0000100 funct3 = 100 rs2 = 1 (zext.h with rs2 != 0)",
            r_type(0x3b, 4, 0x04, 5, 6, 1),
            4,
        ),
        (
            "OP-32 funct7 = 0110000 funct3 = 000",
            r_type(0x3b, 0, 0x30, 5, 6, 7),
            4,
        ),
        (
            "MISC-MEM funct3 = 010 with rd != 0 (cbo.zero, rd = x5)",
            i_type(0x0f, 2, 5, 6, 4),
            4,
        ),
        (
            "MISC-MEM funct3 = 010 funct12 = 3",
            i_type(0x0f, 2, 0, 6, 3),
            4,
        ),
        (
            "MISC-MEM funct3 = 010 funct12 = 5",
            i_type(0x0f, 2, 0, 6, 5),
            4,
        ),
        ("MISC-MEM funct3 = 011", i_type(0x0f, 3, 0, 0, 0), 4),
        ("MISC-MEM funct3 = 111", i_type(0x0f, 7, 0, 0, 0), 4),
        ("SYSTEM funct3 = 100", i_type(0x73, 4, 5, 6, 0), 4),
        ("ecall with rd = 1", i_type(0x73, 0, 1, 0, 0), 4),
        ("ecall with rs1 = 1", i_type(0x73, 0, 0, 1, 0), 4),
        ("ebreak with rs1 = 31", i_type(0x73, 0, 0, 31, 1), 4),
        ("mret with rd = 5", i_type(0x73, 0, 5, 0, 0x302), 4),
        ("wfi with rs1 = 1", i_type(0x73, 0, 0, 1, 0x105), 4),
        (
            "uret (N extension, withdrawn)",
            i_type(0x73, 0, 0, 0, 0x002),
            4,
        ),
        ("dret (debug mode only)", i_type(0x73, 0, 0, 0, 0x7b2), 4),
        ("SYSTEM funct12 = 0x003", i_type(0x73, 0, 0, 0, 0x003), 4),
        ("sfence.vma with rd = 5", r_type(0x73, 0, 0x09, 5, 6, 7), 4),
        (
            "sinval.vma (Svinval, not implemented)",
            r_type(0x73, 0, 0x0b, 0, 6, 7),
            4,
        ),
        (
            "hfence.vvma (H, not implemented)",
            r_type(0x73, 0, 0x11, 0, 6, 7),
            4,
        ),
        ("AMO funct3 = 000", r_type(0x2f, 0, 0x00, 5, 6, 7), 4),
        ("AMO funct3 = 001", r_type(0x2f, 1, 0x00, 5, 6, 7), 4),
        (
            "AMO funct3 = 100 (amo*.q)",
            r_type(0x2f, 4, 0x00, 5, 6, 7),
            4,
        ),
        ("AMO funct3 = 111", r_type(0x2f, 7, 0x04, 5, 6, 7), 4),
        (
            "AMO funct5 = 00101 (amocas.w, Zacas)",
            r_type(0x2f, 2, 0x05 << 2, 5, 6, 7),
            4,
        ),
        ("AMO funct5 = 00110", r_type(0x2f, 3, 0x06 << 2, 5, 6, 7), 4),
        ("AMO funct5 = 11111", r_type(0x2f, 3, 0x1f << 2, 5, 6, 7), 4),
        ("lr.w with rs2 = 1", r_type(0x2f, 2, 0x02 << 2, 5, 6, 1), 4),
        (
            "lr.d.aqrl with rs2 = 31",
            r_type(0x2f, 3, (0x02 << 2) | 3, 5, 6, 31),
            4,
        ),
        ("OP-FP fadd.h (fmt = 10)", r_type(0x53, 0, 0x02, 5, 6, 7), 4),
        ("OP-FP fadd.q (fmt = 11)", r_type(0x53, 0, 0x03, 5, 6, 7), 4),
        (
            "OP-FP fsqrt.s with rs2 = 1",
            r_type(0x53, 0, 0x2c, 5, 6, 1),
            4,
        ),
        (
            "OP-FP fsgnj.d funct3 = 011",
            r_type(0x53, 3, 0x11, 5, 6, 7),
            4,
        ),
        (
            "OP-FP fmin.s funct3 = 010 (fminm, Zfa)",
            r_type(0x53, 2, 0x14, 5, 6, 7),
            4,
        ),
        (
            "OP-FP fcvt.w.s with rs2 = 4",
            r_type(0x53, 0, 0x60, 5, 6, 4),
            4,
        ),
        (
            "OP-FP fcvt.w.d with rs2 = 8 (fcvtmod.w.d, Zfa)",
            r_type(0x53, 1, 0x61, 5, 6, 8),
            4,
        ),
        (
            "OP-FP fcvt.l.d with rs2 = 31",
            r_type(0x53, 0, 0x61, 5, 6, 31),
            4,
        ),
        (
            "OP-FP fcvt.s.w with rs2 = 4",
            r_type(0x53, 0, 0x68, 5, 6, 4),
            4,
        ),
        (
            "OP-FP fcvt.d.l with rs2 = 5",
            r_type(0x53, 0, 0x69, 5, 6, 5),
            4,
        ),
        ("OP-FP fcvt.s.s", r_type(0x53, 0, 0x20, 5, 6, 0), 4),
        ("OP-FP fcvt.d.d", r_type(0x53, 0, 0x21, 5, 6, 1), 4),
        (
            "OP-FP fcvt.s.h (rs2 = 2)",
            r_type(0x53, 0, 0x20, 5, 6, 2),
            4,
        ),
        (
            "OP-FP fcvt.d.q (rs2 = 3)",
            r_type(0x53, 0, 0x21, 5, 6, 3),
            4,
        ),
        (
            "OP-FP fcvt.h.s (fmt = 10)",
            r_type(0x53, 0, 0x22, 5, 6, 0),
            4,
        ),
        (
            "OP-FP fmv.x.w funct3 = 010",
            r_type(0x53, 2, 0x70, 5, 6, 0),
            4,
        ),
        (
            "OP-FP fmv.x.w with rs2 = 1 (fmvh.x.d, Zfa)",
            r_type(0x53, 0, 0x71, 5, 6, 1),
            4,
        ),
        (
            "OP-FP fmv.w.x funct3 = 001",
            r_type(0x53, 1, 0x78, 5, 6, 0),
            4,
        ),
        (
            "OP-FP fmv.w.x with rs2 = 1 (fli.s, Zfa)",
            r_type(0x53, 0, 0x78, 5, 6, 1),
            4,
        ),
        (
            "OP-FP feq.s funct3 = 011",
            r_type(0x53, 3, 0x50, 5, 6, 7),
            4,
        ),
        (
            "OP-FP fclass.d with rs2 = 1",
            r_type(0x53, 1, 0x71, 5, 6, 1),
            4,
        ),
        (
            "OP-FP funct5 = 00110",
            r_type(0x53, 0, 0x06 << 2, 5, 6, 7),
            4,
        ),
        (
            "OP-FP funct5 = 01001",
            r_type(0x53, 0, 0x09 << 2, 5, 6, 7),
            4,
        ),
        (
            "OP-FP funct5 = 11111",
            r_type(0x53, 0, 0x1f << 2, 5, 6, 7),
            4,
        ),
    ];
    // The four fused multiply-adds in half and quad precision.
    let fma = [
        ("fmadd.h (fmt = 10)", 0x43, 2),
        ("fmadd.q (fmt = 11)", 0x43, 3),
        ("fmsub.h (fmt = 10)", 0x47, 2),
        ("fmsub.q (fmt = 11)", 0x47, 3),
        ("fnmsub.h (fmt = 10)", 0x4b, 2),
        ("fnmsub.q (fmt = 11)", 0x4b, 3),
        ("fnmadd.h (fmt = 10)", 0x4f, 2),
        ("fnmadd.q (fmt = 11)", 0x4f, 3),
    ];
    for (name, opcode, fmt) in fma {
        v.push((name, r_type(opcode, 0, (8 << 2) | fmt, 5, 6, 7), 4));
    }
    // Major opcodes with nothing in RV64GC + Zb* + Zicbo*.
    let unimplemented = [
        ("custom-0 opcode", 0b00010),
        ("48-bit opcode space 00111", 0b00111),
        ("custom-1 opcode", 0b01010),
        ("64-bit opcode space 01111", 0b01111),
        ("OP-V opcode", 0b10101),
        ("custom-2 opcode", 0b10110),
        ("48-bit opcode space 10111", 0b10111),
        ("reserved opcode 11010", 0b11010),
        ("OP-VE opcode", 0b11101),
        ("custom-3 opcode", 0b11110),
        ("80-bit+ opcode space 11111", 0b11111),
    ];
    for (name, op5) in unimplemented {
        v.push((name, (op5 << 2) | 3, 4));
        v.push((name, 0xa5a5_a000 | (op5 << 2) | 3, 4));
    }
    v
}

#[test]
fn illegal_encodings_decode_to_illegal_with_their_bits() {
    for (name, bits, len) in illegal_encodings() {
        let i = decode(bits);
        assert_eq!(i.op, Op::Illegal, "{name} ({bits:#010x}) decodes as {i:?}");
        assert_eq!(i.raw, bits, "{name}: raw");
        assert_eq!(i.len, len, "{name}: len");
    }
}

// --------------------------------------------------------------- execution

/// Where the instruction under test is placed.
const CODE: u64 = RAM_BASE + 0x1000;
/// Where every integer register except x0 points, so that loads, stores,
/// AMOs and cbo.* touch RAM.
const DATA: u64 = RAM_BASE + 0x8000;

/// Executes single instructions on a hart in a known state.
struct Exec {
    hart: Hart,
    bus: TestBus,
}

/// How one instruction ended.
#[derive(Debug, PartialEq, Eq)]
enum Outcome {
    /// It retired, and the `ebreak` after it trapped.
    Retired,
    /// It trapped: mcause, mtval.
    Trapped { cause: u64, tval: u64 },
}

impl Exec {
    fn new() -> Self {
        let mut bus = TestBus::new(0x10000);
        install_trap_handler(&mut bus);
        Exec {
            hart: new_hart(CODE),
            bus,
        }
    }

    /// Runs the instruction `bits` of `len` bytes at CODE in privilege `p`,
    /// after `setup` has adjusted the hart, and checks how the trap looks.
    fn run_with(&mut self, bits: u32, len: u8, p: u8, setup: impl FnOnce(&mut Hart)) -> Outcome {
        let mut code = bits.to_le_bytes()[..len as usize].to_vec();
        code.extend_from_slice(&enc::ebreak().to_le_bytes());
        self.bus.write(CODE, &code);
        let h = &mut self.hart;
        h.prv = p;
        h.pc = CODE;
        h.x = [DATA; 32];
        h.x[0] = 0;
        h.f = [0; 32];
        // The reset value (UXL = SXL = 64) with FP enabled.
        h.csr.mstatus = csr::Csrs::new(0).mstatus | FS_INITIAL;
        h.csr.frm = 0;
        h.csr.mcause = common::UNTOUCHED;
        h.csr.mtval = common::UNTOUCHED;
        h.csr.mepc = common::UNTOUCHED;
        h.csr.medeleg = 0;
        // S and U need a PMP entry to fetch at all: allow everything.
        h.csr.pmpaddr[0] = u64::MAX >> 10;
        h.csr.pmpcfg[0] = 0x1f;
        setup(h);
        h.flush_caches();
        let before = h.x;
        run(h, &mut self.bus, 4);
        let h = &self.hart;
        assert_eq!(h.prv, prv::M, "{bits:#x}: trap should enter M-mode");
        assert_eq!(
            h.pc, TRAP_PA,
            "{bits:#x}: the hart should be in the trap handler"
        );
        if h.csr.mcause == cause::BREAKPOINT && h.csr.mepc == CODE + len as u64 {
            return Outcome::Retired;
        }
        assert_eq!(
            h.csr.mepc, CODE,
            "{bits:#x}: mepc must be the trapping instruction"
        );
        assert_eq!(
            h.x, before,
            "{bits:#x}: a trapping instruction must not write registers"
        );
        Outcome::Trapped {
            cause: h.csr.mcause,
            tval: h.csr.mtval,
        }
    }

    fn run(&mut self, bits: u32, len: u8) -> Outcome {
        self.run_with(bits, len, prv::M, |_| {})
    }
}

fn illegal(bits: u32) -> Outcome {
    Outcome::Trapped {
        cause: cause::ILLEGAL_INSTRUCTION,
        tval: bits as u64,
    }
}

#[test]
fn illegal_encodings_raise_illegal_instruction_with_the_bits_in_mtval() {
    let mut exec = Exec::new();
    for (name, bits, len) in illegal_encodings() {
        assert_eq!(exec.run(bits, len), illegal(bits), "{name} ({bits:#010x})");
    }
}

#[test]
fn illegal_compressed_instruction_mtval_is_zero_extended_whatever_follows_it() {
    let mut exec = Exec::new();
    for bits in [0x0000u32, 0x8002, 0x9c41] {
        // The halfword after the instruction is the low half of an ebreak
        // (0x0073); put all-ones there as well.
        assert_eq!(
            exec.run(bits, 2),
            illegal(bits),
            "{bits:#06x} before ebreak"
        );
        exec.bus.write(CODE, &(bits as u16).to_le_bytes());
        exec.bus.write(CODE + 2, &[0xff, 0xff]);
        let h = &mut exec.hart;
        h.pc = CODE;
        h.csr.mtval = common::UNTOUCHED;
        h.flush_caches();
        run(h, &mut exec.bus, 2);
        assert_eq!(
            h.csr.mcause,
            cause::ILLEGAL_INSTRUCTION,
            "{bits:#06x} before 0xffff"
        );
        assert_eq!(h.csr.mtval, bits as u64, "{bits:#06x} before 0xffff");
    }
}

#[test]
fn instruction_straddling_two_pages_executes_or_traps_with_all_its_bits() {
    let mut exec = Exec::new();
    // The low half on the last halfword of CODE's page, the high half on the
    // next page.
    let pc = CODE + 0xffe;
    for (bits, legal) in [
        (enc::addi(10, 0, 42), true),
        (r_type(0x53, 0, 0x02, 5, 6, 7), false), // fadd.h
        (0xffff_ffff, false),
    ] {
        exec.bus.write_u32(pc, bits);
        exec.bus.write_u32(pc + 4, enc::ebreak());
        let h = &mut exec.hart;
        h.pc = pc;
        h.x[10] = 0;
        h.csr.mstatus |= FS_INITIAL;
        h.csr.mcause = common::UNTOUCHED;
        h.csr.mtval = common::UNTOUCHED;
        h.flush_caches();
        run(h, &mut exec.bus, 4);
        let h = &exec.hart;
        if legal {
            assert_eq!((h.csr.mcause, h.csr.mepc), (cause::BREAKPOINT, pc + 4));
            assert_eq!(h.x[10], 42);
        } else {
            assert_eq!(h.csr.mcause, cause::ILLEGAL_INSTRUCTION, "{bits:#x}");
            assert_eq!(h.csr.mtval, bits as u64, "{bits:#x}");
            assert_eq!(h.csr.mepc, pc, "{bits:#x}");
        }
    }
}

/// Collects the first and the last encoding of every run of illegal
/// encodings, fed in sweep order.
#[derive(Default)]
struct RunEnds {
    ends: Vec<u32>,
    current: Option<(usize, u32)>,
}

impl RunEnds {
    fn push(&mut self, run: usize, is_illegal: bool, raw: u32) {
        if let Some((r, last)) = self.current {
            if r != run || !is_illegal {
                self.ends.push(last);
                self.current = None;
            }
        }
        if is_illegal {
            if self.current.is_none() {
                self.ends.push(raw);
            }
            self.current = Some((run, raw));
        }
    }

    fn finish(mut self) -> Vec<u32> {
        if let Some((_, last)) = self.current.take() {
            self.ends.push(last);
        }
        self.ends
    }
}

#[test]
fn illegal_encodings_found_by_the_sweeps_trap_when_executed() {
    let mut exec = Exec::new();
    let mut ends16 = RunEnds::default();
    for v in 0..=u16::MAX as u32 {
        if v & 3 != 3 {
            let key = ((v & 3) << 14) | (v >> 2);
            let run = SWEEP16.partition_point(|&(k, _)| k <= key) - 1;
            ends16.push(run, SWEEP16[run].1 == Op::Illegal, v);
        }
    }
    let ends16 = ends16.finish();
    let mut ends32 = RunEnds::default();
    for_each_sweep32(|key, raw| {
        let run = SWEEP32.partition_point(|&(k, _, _)| k <= key) - 1;
        ends32.push(run, SWEEP32[run].1 == Op::Illegal, raw);
    });
    let ends32 = ends32.finish();
    assert!(ends16.len() > 50, "only {} 16-bit samples", ends16.len());
    assert!(ends32.len() > 500, "only {} 32-bit samples", ends32.len());
    for bits in ends16 {
        assert_eq!(exec.run(bits, 2), illegal(bits), "{bits:#06x}");
    }
    for bits in ends32 {
        assert_eq!(exec.run(bits, 4), illegal(bits), "{bits:#010x}");
    }
}

fn is_fp(op: Op) -> bool {
    use Op::*;
    matches!(
        op,
        Flw | Fsw
            | Fld
            | Fsd
            | Fmadd
            | Fmsub
            | Fnmsub
            | Fnmadd
            | Fadd
            | Fsub
            | Fmul
            | Fdiv
            | Fsqrt
            | Fsgnj
            | Fsgnjn
            | Fsgnjx
            | Fmin
            | Fmax
            | FcvtFF
            | FcvtIF
            | FcvtFI
            | FmvXF
            | FmvFX
            | Feq
            | Flt
            | Fle
            | Fclass
    )
}

#[test]
fn fp_instructions_raise_illegal_instruction_when_mstatus_fs_is_off() {
    let mut exec = Exec::new();
    let fp: Vec<&Case> = CASES.iter().filter(|c| is_fp(c.op)).collect();
    assert!(fp.len() > 200);
    for c in fp {
        // With FS = Initial the instruction runs...
        assert_eq!(
            exec.run(c.bits, c.len),
            Outcome::Retired,
            "{} with FS on",
            c.asm
        );
        // ...with FS = Off it is illegal.
        let off = exec.run_with(c.bits, c.len, prv::M, |h| {
            h.csr.mstatus &= !csr::MSTATUS_FS;
        });
        assert_eq!(off, illegal(c.bits), "{} with FS off", c.asm);
    }
}

#[test]
fn fp_csr_access_raises_illegal_instruction_when_mstatus_fs_is_off() {
    let mut exec = Exec::new();
    for csr_num in [0x001, 0x002, 0x003] {
        let bits = enc::csrrs(5, csr_num, 0);
        assert_eq!(
            exec.run(bits, 4),
            Outcome::Retired,
            "csr {csr_num:#x} with FS on"
        );
        let off = exec.run_with(bits, 4, prv::M, |h| h.csr.mstatus &= !csr::MSTATUS_FS);
        assert_eq!(off, illegal(bits), "csr {csr_num:#x} with FS off");
    }
}

/// One reference case per rounding FP operation (operation, format and
/// integer type) whose rm field is `rm`.
fn one_case_per_rounding_op(rm: u8) -> Vec<&'static Case> {
    let mut seen: Vec<(Op, Option<Fmt>, Option<u8>)> = Vec::new();
    let mut out = Vec::new();
    for c in CASES.iter().filter(|c| rounds(c.op) && c.rm == Some(rm)) {
        // For conversions rs2 is the integer type; otherwise a register.
        let int_type = c.rs2.filter(|_| matches!(c.op, Op::FcvtIF | Op::FcvtFI));
        let kind = (c.op, c.fmt, int_type);
        if !seen.contains(&kind) {
            seen.push(kind);
            out.push(c);
        }
    }
    // Per format: 4 FMAs, 4 arithmetic ops, fsqrt, 4 conversions to and 4
    // from integers; plus fcvt.s.d and fcvt.d.s.
    assert_eq!(out.len(), 2 * (4 + 4 + 1 + 4 + 4) + 2, "rm = {rm}");
    out
}

#[test]
fn fp_ops_with_reserved_static_rounding_mode_raise_illegal_instruction() {
    let mut exec = Exec::new();
    for c in one_case_per_rounding_op(0) {
        for rm in [5u32, 6] {
            let bits = (c.bits & !(7 << 12)) | (rm << 12);
            assert_eq!(exec.run(bits, 4), illegal(bits), "{} with rm = {rm}", c.asm);
        }
    }
}

#[test]
fn fp_ops_with_dynamic_rounding_raise_illegal_instruction_when_frm_is_invalid() {
    let mut exec = Exec::new();
    for c in one_case_per_rounding_op(7) {
        for frm in 0..8u64 {
            let outcome = exec.run_with(c.bits, 4, prv::M, |h| h.csr.frm = frm);
            let want = if frm <= 4 {
                Outcome::Retired
            } else {
                illegal(c.bits)
            };
            assert_eq!(outcome, want, "{} with frm = {frm}", c.asm);
        }
    }
}

#[test]
fn fp_ops_without_a_rounding_mode_run_whatever_frm_holds() {
    let mut exec = Exec::new();
    for c in CASES.iter().filter(|c| is_fp(c.op) && !rounds(c.op)) {
        let outcome = exec.run_with(c.bits, c.len, prv::M, |h| h.csr.frm = 7);
        assert_eq!(outcome, Outcome::Retired, "{} with frm = 7", c.asm);
    }
}

// --------------------------------------- illegal because of privilege or CSR

const MRET: u32 = 0x3020_0073;
const SRET: u32 = 0x1020_0073;
const WFI: u32 = 0x1050_0073;

#[test]
fn mret_below_machine_mode_raises_illegal_instruction() {
    let mut exec = Exec::new();
    for p in [prv::S, prv::U] {
        assert_eq!(exec.run_with(MRET, 4, p, |_| {}), illegal(MRET), "prv {p}");
    }
}

#[test]
fn sret_in_user_mode_or_with_tsr_raises_illegal_instruction() {
    let mut exec = Exec::new();
    assert_eq!(exec.run_with(SRET, 4, prv::U, |_| {}), illegal(SRET));
    let tsr = exec.run_with(SRET, 4, prv::S, |h| h.csr.mstatus |= csr::MSTATUS_TSR);
    assert_eq!(tsr, illegal(SRET));
}

#[test]
fn wfi_in_user_mode_or_with_tw_raises_illegal_instruction() {
    let mut exec = Exec::new();
    assert_eq!(exec.run_with(WFI, 4, prv::U, |_| {}), illegal(WFI));
    let tw = exec.run_with(WFI, 4, prv::S, |h| h.csr.mstatus |= csr::MSTATUS_TW);
    assert_eq!(tw, illegal(WFI));
}

#[test]
fn sfence_vma_in_user_mode_or_with_tvm_raises_illegal_instruction() {
    let mut exec = Exec::new();
    let bits = enc::sfence_vma(0, 0);
    assert_eq!(exec.run_with(bits, 4, prv::U, |_| {}), illegal(bits));
    let tvm = exec.run_with(bits, 4, prv::S, |h| h.csr.mstatus |= csr::MSTATUS_TVM);
    assert_eq!(tvm, illegal(bits));
    assert_eq!(exec.run_with(bits, 4, prv::S, |_| {}), Outcome::Retired);
}

#[test]
fn csr_access_to_missing_read_only_or_higher_privilege_csr_raises_illegal_instruction() {
    let mut exec = Exec::new();
    // No CSR at 0x7c0 (custom read/write space).
    let missing = enc::csrrs(5, 0x7c0, 0);
    assert_eq!(exec.run(missing, 4), illegal(missing));
    // cycle (0xc00) is read-only: csrrw always writes.
    let write_ro = enc::csrrw(0, 0xc00, 5);
    assert_eq!(exec.run(write_ro, 4), illegal(write_ro));
    // ...but csrrs with rs1 = x0 only reads, and M-mode may read it.
    assert_eq!(exec.run(enc::csrrs(5, 0xc00, 0), 4), Outcome::Retired);
    // mstatus from S-mode.
    let mstatus = enc::csrrs(5, 0x300, 0);
    assert_eq!(exec.run_with(mstatus, 4, prv::S, |_| {}), illegal(mstatus));
}

// ----------------------------------------------------------------- encoders

#[test]
fn encoders_match_gnu_as() {
    let bits = |asm: &str| {
        CASES
            .iter()
            .find(|c| c.asm == asm)
            .unwrap_or_else(|| panic!("no case {asm:?}"))
            .bits
    };
    assert_eq!(enc::lui(5, 0x80000), bits("lui x5, 0x80000"));
    assert_eq!(enc::lui(31, 0xfffff), bits("lui x31, 0xfffff"));
    assert_eq!(enc::addi(5, 6, -2048), bits("addi x5, x6, -2048"));
    assert_eq!(enc::addi(5, 6, 2047), bits("addi x5, x6, 2047"));
    assert_eq!(enc::nop(), bits("addi x0, x0, 0"));
    assert_eq!(enc::ld(1, 31, 0), bits("ld x1, 0(x31)"));
    assert_eq!(enc::lw(31, 1, -1), bits("lw x31, -1(x1)"));
    assert_eq!(enc::lbu(5, 6, 1), bits("lbu x5, 1(x6)"));
    assert_eq!(enc::sd(7, 8, -2048), bits("sd x7, -2048(x8)"));
    assert_eq!(enc::sd(7, 8, 2047), bits("sd x7, 2047(x8)"));
    assert_eq!(enc::sd(7, 8, 31), bits("sd x7, 31(x8)"));
    assert_eq!(enc::sw(5, 6, -1), bits("sw x5, -1(x6)"));
    assert_eq!(enc::sb(31, 1, -2048), bits("sb x31, -2048(x1)"));
    assert_eq!(enc::jalr(1, 31, -2048), bits("jalr x1, -2048(x31)"));
    assert_eq!(enc::jalr(5, 6, 0), bits("jalr x5, 0(x6)"));
    assert_eq!(enc::amoadd_d(31, 1, 2), bits("amoadd.d x31, x1, (x2)"));
    assert_eq!(enc::csrrw(5, 0x300, 6), bits("csrrw x5, 0x300, x6"));
    assert_eq!(enc::csrrs(5, 0x001, 0), bits("csrrs x5, 0x001, x0"));
    assert_eq!(enc::csrrc(0, 0xc00, 31), bits("csrrc x0, 0xc00, x31"));
    assert_eq!(enc::sret(), bits("sret"));
    assert_eq!(enc::sfence_vma(5, 31), bits("sfence.vma x5, x31"));
    assert_eq!(enc::sfence_vma(0, 0), bits("sfence.vma x0, x0"));
    assert_eq!(enc::ebreak(), bits("ebreak"));
    assert_eq!(MRET, bits("mret"));
    assert_eq!(SRET, bits("sret"));
    assert_eq!(WFI, bits("wfi"));
}
