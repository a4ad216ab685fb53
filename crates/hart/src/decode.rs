//! Instruction decoding: raw bits to [`Inst`], separate from execution.
//!
//! Every 32-bit encoding of RV64IMAFDC, Zicsr, Zifencei, Zba, Zbb, Zbs, Zicbom,
//! Zicboz and the privileged instructions has exactly one arm here, and every
//! 16-bit (C) encoding is expanded to the operation of its 32-bit twin, so the
//! executor has one place per operation. Anything not recognised decodes to
//! [`Op::Illegal`], which the executor turns into an illegal-instruction trap
//! whose tval is the instruction bits.

/// An operation. Floating-point operations carry their format in [`Inst::fmt`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum Op {
    Illegal,
    // RV64I
    Lui,
    Auipc,
    Jal,
    Jalr,
    Beq,
    Bne,
    Blt,
    Bge,
    Bltu,
    Bgeu,
    Lb,
    Lh,
    Lw,
    Ld,
    Lbu,
    Lhu,
    Lwu,
    Sb,
    Sh,
    Sw,
    Sd,
    Addi,
    Slti,
    Sltiu,
    Xori,
    Ori,
    Andi,
    Slli,
    Srli,
    Srai,
    Add,
    Sub,
    Sll,
    Slt,
    Sltu,
    Xor,
    Srl,
    Sra,
    Or,
    And,
    Addiw,
    Slliw,
    Srliw,
    Sraiw,
    Addw,
    Subw,
    Sllw,
    Srlw,
    Sraw,
    Fence,
    /// PAUSE (Zihintpause): a FENCE that also asks the hart to stall.
    Pause,
    FenceI,
    Ecall,
    Ebreak,
    // Privileged
    Mret,
    Sret,
    Wfi,
    SfenceVma,
    // Zicsr (imm holds the CSR number; for the *i forms rs1 holds the zimm)
    Csrrw,
    Csrrs,
    Csrrc,
    Csrrwi,
    Csrrsi,
    Csrrci,
    // M
    Mul,
    Mulh,
    Mulhsu,
    Mulhu,
    Div,
    Divu,
    Rem,
    Remu,
    Mulw,
    Divw,
    Divuw,
    Remw,
    Remuw,
    // A (fmt: S = .w, D = .d)
    Lr,
    Sc,
    AmoSwap,
    AmoAdd,
    AmoXor,
    AmoAnd,
    AmoOr,
    AmoMin,
    AmoMax,
    AmoMinu,
    AmoMaxu,
    // F and D
    Flw,
    Fsw,
    Fld,
    Fsd,
    Fmadd,
    Fmsub,
    Fnmsub,
    Fnmadd,
    Fadd,
    Fsub,
    Fmul,
    Fdiv,
    Fsqrt,
    Fsgnj,
    Fsgnjn,
    Fsgnjx,
    Fmin,
    Fmax,
    /// fcvt.{s.d,d.s}: converts from the other format to `fmt`.
    FcvtFF,
    /// fcvt.{w,wu,l,lu}.fmt; `rs2` holds the integer type (0 w, 1 wu, 2 l, 3 lu).
    FcvtIF,
    /// fcvt.fmt.{w,wu,l,lu}; `rs2` holds the integer type.
    FcvtFI,
    FmvXF,
    FmvFX,
    Feq,
    Flt,
    Fle,
    Fclass,
    // Zba
    AddUw,
    Sh1add,
    Sh2add,
    Sh3add,
    Sh1addUw,
    Sh2addUw,
    Sh3addUw,
    SlliUw,
    // Zbb
    Andn,
    Orn,
    Xnor,
    Clz,
    Clzw,
    Ctz,
    Ctzw,
    Cpop,
    Cpopw,
    Max,
    Maxu,
    Min,
    Minu,
    SextB,
    SextH,
    ZextH,
    Rol,
    Rolw,
    Ror,
    Rori,
    Roriw,
    Rorw,
    OrcB,
    Rev8,
    // Zbs
    Bclr,
    Bclri,
    Bext,
    Bexti,
    Binv,
    Binvi,
    Bset,
    Bseti,
    // Zicbom / Zicboz
    CboClean,
    CboFlush,
    CboInval,
    CboZero,
}

impl Op {
    /// The read-modify-write AMOs (not LR and SC).
    pub fn is_amo(self) -> bool {
        use Op::*;
        matches!(
            self,
            AmoSwap | AmoAdd | AmoXor | AmoAnd | AmoOr | AmoMin | AmoMax | AmoMinu | AmoMaxu
        )
    }

    /// The six CSR instructions.
    pub fn is_csr(self) -> bool {
        use Op::*;
        matches!(self, Csrrw | Csrrs | Csrrc | Csrrwi | Csrrsi | Csrrci)
    }
}

/// Floating-point (and atomic width) format.
pub use crate::fpu::Fmt;

/// A decoded instruction.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inst {
    pub op: Op,
    pub rd: u8,
    pub rs1: u8,
    pub rs2: u8,
    pub rs3: u8,
    /// Rounding mode field (FP), or aq/rl bits (atomics).
    pub rm: u8,
    pub fmt: Fmt,
    /// Length in bytes: 2 or 4.
    pub len: u8,
    /// Sign-extended immediate, shift amount, or CSR number.
    pub imm: i64,
    /// The instruction bits as fetched (16-bit instructions zero-extended).
    pub raw: u32,
}

impl Inst {
    fn new(op: Op, raw: u32, len: u8) -> Self {
        Inst {
            op,
            rd: 0,
            rs1: 0,
            rs2: 0,
            rs3: 0,
            rm: 0,
            fmt: Fmt::D,
            len,
            imm: 0,
            raw,
        }
    }

    /// An illegal instruction carrying its bits for tval.
    pub fn illegal(raw: u32, len: u8) -> Self {
        Self::new(Op::Illegal, raw, len)
    }

    /// A CSR instruction on fflags, frm or fcsr.
    pub(crate) fn is_fp_csr(&self) -> bool {
        self.op.is_csr() && crate::csr::is_fp_csr(self.imm as u16 & 0xfff)
    }

    /// Whether a CSR instruction writes its CSR: csrrs and csrrc with x0
    /// or a zero immediate do not (so they may read read-only CSRs).
    pub(crate) fn csr_writes(&self) -> bool {
        matches!(self.op, Op::Csrrw | Op::Csrrwi) || self.rs1 != 0
    }

    /// True for instructions after which a block must end: control flow, and
    /// anything that may change translation, privilege, interrupt enables or
    /// the instruction stream. CSR instructions on fflags, frm and fcsr do
    /// none of that, and libm runs them around many functions: they do not
    /// end blocks.
    pub fn ends_block(&self) -> bool {
        if self.op.is_csr() {
            return !self.is_fp_csr();
        }
        matches!(
            self.op,
            Op::Jal
                | Op::Jalr
                | Op::Beq
                | Op::Bne
                | Op::Blt
                | Op::Bge
                | Op::Bltu
                | Op::Bgeu
                | Op::Ecall
                | Op::Ebreak
                | Op::Mret
                | Op::Sret
                | Op::Wfi
                | Op::Pause
                | Op::SfenceVma
                | Op::FenceI
                | Op::Illegal
        )
    }
}

/// Length in bytes of the instruction whose low 16 bits are `low`.
pub fn inst_len(low: u16) -> u8 {
    if low & 3 == 3 {
        4
    } else {
        2
    }
}

/// Decodes one instruction; `raw` holds 32 bits, of which only the low 16 are
/// used for a compressed instruction.
pub fn decode(raw: u32) -> Inst {
    if raw & 3 == 3 {
        decode32(raw)
    } else {
        decode16(raw as u16)
    }
}

fn bits(x: u32, hi: u32, lo: u32) -> u32 {
    (x >> lo) & ((1u32 << (hi - lo + 1)) - 1)
}

fn sext(value: u64, width: u32) -> i64 {
    let shift = 64 - width;
    ((value << shift) as i64) >> shift
}

fn imm_i(raw: u32) -> i64 {
    (raw as i32 >> 20) as i64
}

fn imm_s(raw: u32) -> i64 {
    (((raw as i32 >> 20) & !0x1f) | bits(raw, 11, 7) as i32) as i64
}

fn imm_b(raw: u32) -> i64 {
    let v = (bits(raw, 31, 31) << 12)
        | (bits(raw, 7, 7) << 11)
        | (bits(raw, 30, 25) << 5)
        | (bits(raw, 11, 8) << 1);
    sext(v as u64, 13)
}

fn imm_u(raw: u32) -> i64 {
    (raw & 0xffff_f000) as i32 as i64
}

fn imm_j(raw: u32) -> i64 {
    let v = (bits(raw, 31, 31) << 20)
        | (bits(raw, 19, 12) << 12)
        | (bits(raw, 20, 20) << 11)
        | (bits(raw, 30, 21) << 1);
    sext(v as u64, 21)
}

fn r_type(op: Op, raw: u32) -> Inst {
    let mut i = Inst::new(op, raw, 4);
    i.rd = bits(raw, 11, 7) as u8;
    i.rs1 = bits(raw, 19, 15) as u8;
    i.rs2 = bits(raw, 24, 20) as u8;
    i.rs3 = bits(raw, 31, 27) as u8;
    i.rm = bits(raw, 14, 12) as u8;
    i
}

fn with_imm(mut i: Inst, imm: i64) -> Inst {
    i.imm = imm;
    i
}

fn decode32(raw: u32) -> Inst {
    let opcode = raw & 0x7f;
    let f3 = bits(raw, 14, 12);
    let f7 = bits(raw, 31, 25);
    let r = |op| r_type(op, raw);
    let illegal = Inst::illegal(raw, 4);
    match opcode {
        0x37 => with_imm(r(Op::Lui), imm_u(raw)),
        0x17 => with_imm(r(Op::Auipc), imm_u(raw)),
        0x6f => with_imm(r(Op::Jal), imm_j(raw)),
        0x67 if f3 == 0 => with_imm(r(Op::Jalr), imm_i(raw)),
        0x63 => {
            let op = match f3 {
                0 => Op::Beq,
                1 => Op::Bne,
                4 => Op::Blt,
                5 => Op::Bge,
                6 => Op::Bltu,
                7 => Op::Bgeu,
                _ => return illegal,
            };
            with_imm(r(op), imm_b(raw))
        }
        0x03 => {
            let op = match f3 {
                0 => Op::Lb,
                1 => Op::Lh,
                2 => Op::Lw,
                3 => Op::Ld,
                4 => Op::Lbu,
                5 => Op::Lhu,
                6 => Op::Lwu,
                _ => return illegal,
            };
            with_imm(r(op), imm_i(raw))
        }
        0x23 => {
            let op = match f3 {
                0 => Op::Sb,
                1 => Op::Sh,
                2 => Op::Sw,
                3 => Op::Sd,
                _ => return illegal,
            };
            with_imm(r(op), imm_s(raw))
        }
        0x13 => decode_op_imm(raw, f3),
        0x1b => decode_op_imm32(raw, f3),
        0x33 => decode_op(raw, f3, f7),
        0x3b => decode_op32(raw, f3, f7),
        0x0f => decode_misc_mem(raw, f3),
        0x73 => decode_system(raw, f3),
        0x2f => decode_amo(raw, f3),
        0x07 | 0x27 => {
            let op = match (opcode, f3) {
                (0x07, 2) => Op::Flw,
                (0x07, 3) => Op::Fld,
                (0x27, 2) => Op::Fsw,
                (0x27, 3) => Op::Fsd,
                _ => return illegal,
            };
            let imm = if opcode == 0x07 {
                imm_i(raw)
            } else {
                imm_s(raw)
            };
            with_imm(r(op), imm)
        }
        0x43 | 0x47 | 0x4b | 0x4f => {
            let fmt = match bits(raw, 26, 25) {
                0 => Fmt::S,
                1 => Fmt::D,
                _ => return illegal,
            };
            let op = match opcode {
                0x43 => Op::Fmadd,
                0x47 => Op::Fmsub,
                0x4b => Op::Fnmsub,
                _ => Op::Fnmadd,
            };
            let mut i = r(op);
            i.fmt = fmt;
            i
        }
        0x53 => decode_op_fp(raw, f3, f7),
        _ => illegal,
    }
}

fn decode_op_imm(raw: u32, f3: u32) -> Inst {
    let r = |op| with_imm(r_type(op, raw), imm_i(raw));
    let shamt = bits(raw, 25, 20) as i64;
    let f6 = bits(raw, 31, 26);
    let f12 = bits(raw, 31, 20);
    let shift = |op| with_imm(r_type(op, raw), shamt);
    match f3 {
        0 => r(Op::Addi),
        2 => r(Op::Slti),
        3 => r(Op::Sltiu),
        4 => r(Op::Xori),
        6 => r(Op::Ori),
        7 => r(Op::Andi),
        1 => match f6 {
            0b000000 => shift(Op::Slli),
            0b010010 => shift(Op::Bclri),
            0b011010 => shift(Op::Binvi),
            0b001010 => shift(Op::Bseti),
            0b011000 => match f12 {
                0x600 => r(Op::Clz),
                0x601 => r(Op::Ctz),
                0x602 => r(Op::Cpop),
                0x604 => r(Op::SextB),
                0x605 => r(Op::SextH),
                _ => Inst::illegal(raw, 4),
            },
            _ => Inst::illegal(raw, 4),
        },
        _ => match f6 {
            0b000000 => shift(Op::Srli),
            0b010000 => shift(Op::Srai),
            0b011000 => shift(Op::Rori),
            0b010010 => shift(Op::Bexti),
            _ if f12 == 0x287 => r(Op::OrcB),
            _ if f12 == 0x6b8 => r(Op::Rev8),
            _ => Inst::illegal(raw, 4),
        },
    }
}

fn decode_op_imm32(raw: u32, f3: u32) -> Inst {
    let f7 = bits(raw, 31, 25);
    let shamt5 = bits(raw, 24, 20) as i64;
    let shift = |op| with_imm(r_type(op, raw), shamt5);
    match (f3, f7) {
        (0, _) => with_imm(r_type(Op::Addiw, raw), imm_i(raw)),
        (1, 0) => shift(Op::Slliw),
        (1, _) if bits(raw, 31, 26) == 0b000010 => {
            with_imm(r_type(Op::SlliUw, raw), bits(raw, 25, 20) as i64)
        }
        (1, 0b0110000) => match bits(raw, 24, 20) {
            0 => r_type(Op::Clzw, raw),
            1 => r_type(Op::Ctzw, raw),
            2 => r_type(Op::Cpopw, raw),
            _ => Inst::illegal(raw, 4),
        },
        (5, 0) => shift(Op::Srliw),
        (5, 0b0100000) => shift(Op::Sraiw),
        (5, 0b0110000) => shift(Op::Roriw),
        _ => Inst::illegal(raw, 4),
    }
}

fn decode_op(raw: u32, f3: u32, f7: u32) -> Inst {
    let op = match (f7, f3) {
        (0, 0) => Op::Add,
        (0x20, 0) => Op::Sub,
        (0, 1) => Op::Sll,
        (0, 2) => Op::Slt,
        (0, 3) => Op::Sltu,
        (0, 4) => Op::Xor,
        (0, 5) => Op::Srl,
        (0x20, 5) => Op::Sra,
        (0, 6) => Op::Or,
        (0, 7) => Op::And,
        (1, 0) => Op::Mul,
        (1, 1) => Op::Mulh,
        (1, 2) => Op::Mulhsu,
        (1, 3) => Op::Mulhu,
        (1, 4) => Op::Div,
        (1, 5) => Op::Divu,
        (1, 6) => Op::Rem,
        (1, 7) => Op::Remu,
        (0x10, 2) => Op::Sh1add,
        (0x10, 4) => Op::Sh2add,
        (0x10, 6) => Op::Sh3add,
        (0x20, 7) => Op::Andn,
        (0x20, 6) => Op::Orn,
        (0x20, 4) => Op::Xnor,
        (0x05, 6) => Op::Max,
        (0x05, 7) => Op::Maxu,
        (0x05, 4) => Op::Min,
        (0x05, 5) => Op::Minu,
        (0x30, 1) => Op::Rol,
        (0x30, 5) => Op::Ror,
        (0x24, 1) => Op::Bclr,
        (0x24, 5) => Op::Bext,
        (0x34, 1) => Op::Binv,
        (0x14, 1) => Op::Bset,
        _ => return Inst::illegal(raw, 4),
    };
    r_type(op, raw)
}

fn decode_op32(raw: u32, f3: u32, f7: u32) -> Inst {
    let op = match (f7, f3) {
        (0, 0) => Op::Addw,
        (0x20, 0) => Op::Subw,
        (0, 1) => Op::Sllw,
        (0, 5) => Op::Srlw,
        (0x20, 5) => Op::Sraw,
        (1, 0) => Op::Mulw,
        (1, 4) => Op::Divw,
        (1, 5) => Op::Divuw,
        (1, 6) => Op::Remw,
        (1, 7) => Op::Remuw,
        (0x04, 0) => Op::AddUw,
        (0x10, 2) => Op::Sh1addUw,
        (0x10, 4) => Op::Sh2addUw,
        (0x10, 6) => Op::Sh3addUw,
        (0x04, 4) if bits(raw, 24, 20) == 0 => Op::ZextH,
        (0x30, 1) => Op::Rolw,
        (0x30, 5) => Op::Rorw,
        _ => return Inst::illegal(raw, 4),
    };
    r_type(op, raw)
}

/// PAUSE: FENCE with pred = W, succ = 0, fm = 0, rs1 = rd = x0.
const PAUSE: u32 = 0x0100_000f;

fn decode_misc_mem(raw: u32, f3: u32) -> Inst {
    match f3 {
        // Every FENCE variant (including FENCE.TSO and PAUSE) orders memory,
        // which a single-threaded interpreter already does; PAUSE also
        // stalls the hart (see `Hart::run_bounded`).
        0 if raw == PAUSE => r_type(Op::Pause, raw),
        0 => r_type(Op::Fence, raw),
        1 => r_type(Op::FenceI, raw),
        2 if bits(raw, 11, 7) == 0 => {
            let op = match bits(raw, 31, 20) {
                0 => Op::CboInval,
                1 => Op::CboClean,
                2 => Op::CboFlush,
                4 => Op::CboZero,
                _ => return Inst::illegal(raw, 4),
            };
            r_type(op, raw)
        }
        _ => Inst::illegal(raw, 4),
    }
}

fn decode_system(raw: u32, f3: u32) -> Inst {
    let csr = |op| with_imm(r_type(op, raw), bits(raw, 31, 20) as i64);
    match f3 {
        0 => {
            if bits(raw, 11, 7) != 0 {
                return Inst::illegal(raw, 4);
            }
            if bits(raw, 31, 25) == 0b0001001 {
                return r_type(Op::SfenceVma, raw);
            }
            if bits(raw, 19, 15) != 0 {
                return Inst::illegal(raw, 4);
            }
            let op = match bits(raw, 31, 20) {
                0x000 => Op::Ecall,
                0x001 => Op::Ebreak,
                0x102 => Op::Sret,
                0x302 => Op::Mret,
                0x105 => Op::Wfi,
                _ => return Inst::illegal(raw, 4),
            };
            r_type(op, raw)
        }
        1 => csr(Op::Csrrw),
        2 => csr(Op::Csrrs),
        3 => csr(Op::Csrrc),
        5 => csr(Op::Csrrwi),
        6 => csr(Op::Csrrsi),
        7 => csr(Op::Csrrci),
        _ => Inst::illegal(raw, 4),
    }
}

fn decode_amo(raw: u32, f3: u32) -> Inst {
    let fmt = match f3 {
        2 => Fmt::S,
        3 => Fmt::D,
        _ => return Inst::illegal(raw, 4),
    };
    let op = match bits(raw, 31, 27) {
        0b00010 if bits(raw, 24, 20) == 0 => Op::Lr,
        0b00011 => Op::Sc,
        0b00001 => Op::AmoSwap,
        0b00000 => Op::AmoAdd,
        0b00100 => Op::AmoXor,
        0b01100 => Op::AmoAnd,
        0b01000 => Op::AmoOr,
        0b10000 => Op::AmoMin,
        0b10100 => Op::AmoMax,
        0b11000 => Op::AmoMinu,
        0b11100 => Op::AmoMaxu,
        _ => return Inst::illegal(raw, 4),
    };
    let mut i = r_type(op, raw);
    i.fmt = fmt;
    i.rm = bits(raw, 26, 25) as u8;
    i
}

fn decode_op_fp(raw: u32, f3: u32, f7: u32) -> Inst {
    let fmt = match f7 & 3 {
        0 => Fmt::S,
        1 => Fmt::D,
        _ => return Inst::illegal(raw, 4),
    };
    let rs2 = bits(raw, 24, 20);
    let op = match f7 >> 2 {
        0b00000 => Op::Fadd,
        0b00001 => Op::Fsub,
        0b00010 => Op::Fmul,
        0b00011 => Op::Fdiv,
        0b01011 if rs2 == 0 => Op::Fsqrt,
        0b00100 => match f3 {
            0 => Op::Fsgnj,
            1 => Op::Fsgnjn,
            2 => Op::Fsgnjx,
            _ => return Inst::illegal(raw, 4),
        },
        0b00101 => match f3 {
            0 => Op::Fmin,
            1 => Op::Fmax,
            _ => return Inst::illegal(raw, 4),
        },
        // fcvt.s.d (fmt S, rs2 = 1) and fcvt.d.s (fmt D, rs2 = 0).
        0b01000 if (fmt == Fmt::S && rs2 == 1) || (fmt == Fmt::D && rs2 == 0) => Op::FcvtFF,
        0b11000 if rs2 < 4 => Op::FcvtIF,
        0b11010 if rs2 < 4 => Op::FcvtFI,
        0b11100 if rs2 == 0 && f3 == 0 => Op::FmvXF,
        0b11100 if rs2 == 0 && f3 == 1 => Op::Fclass,
        0b11110 if rs2 == 0 && f3 == 0 => Op::FmvFX,
        0b10100 => match f3 {
            2 => Op::Feq,
            1 => Op::Flt,
            0 => Op::Fle,
            _ => return Inst::illegal(raw, 4),
        },
        _ => return Inst::illegal(raw, 4),
    };
    let mut i = r_type(op, raw);
    i.fmt = fmt;
    i
}

// ---------------------------------------------------------------- compressed

fn c_reg(x: u16) -> u8 {
    8 + (x & 7) as u8
}

fn cb(x: u16, hi: u32, lo: u32) -> u32 {
    bits(x as u32, hi, lo)
}

fn c_inst(op: Op, raw: u16, rd: u8, rs1: u8, rs2: u8, imm: i64) -> Inst {
    let mut i = Inst::new(op, raw as u32, 2);
    i.rd = rd;
    i.rs1 = rs1;
    i.rs2 = rs2;
    i.imm = imm;
    // Compressed FP arithmetic does not exist; loads and stores use D and
    // dynamic rounding is irrelevant.
    i.rm = 7;
    i
}

fn decode16(x: u16) -> Inst {
    let illegal = Inst::illegal(x as u32, 2);
    let f3 = cb(x, 15, 13);
    let rd_full = cb(x, 11, 7) as u8;
    let rs2_full = cb(x, 6, 2) as u8;
    let rdp = c_reg(x >> 2); // rd' / rs2' in bits 4:2
    let rs1p = c_reg(x >> 7); // rs1' / rd' in bits 9:7
                              // Offsets of the CL/CS formats.
    let off_w = ((cb(x, 12, 10) << 3) | (cb(x, 6, 6) << 2) | (cb(x, 5, 5) << 6)) as i64;
    let off_d = ((cb(x, 12, 10) << 3) | (cb(x, 6, 5) << 6)) as i64;
    let imm6 = sext(((cb(x, 12, 12) << 5) | cb(x, 6, 2)) as u64, 6);
    match (x & 3, f3) {
        (0, 0) => {
            let nzuimm = (cb(x, 12, 11) << 4)
                | (cb(x, 10, 7) << 6)
                | (cb(x, 6, 6) << 2)
                | (cb(x, 5, 5) << 3);
            if nzuimm == 0 {
                // Includes the all-zero instruction, which is defined illegal.
                return illegal;
            }
            c_inst(Op::Addi, x, rdp, 2, 0, nzuimm as i64)
        }
        (0, 1) => c_inst(Op::Fld, x, rdp, rs1p, 0, off_d),
        (0, 2) => c_inst(Op::Lw, x, rdp, rs1p, 0, off_w),
        (0, 3) => c_inst(Op::Ld, x, rdp, rs1p, 0, off_d),
        (0, 5) => c_inst(Op::Fsd, x, 0, rs1p, rdp, off_d),
        (0, 6) => c_inst(Op::Sw, x, 0, rs1p, rdp, off_w),
        (0, 7) => c_inst(Op::Sd, x, 0, rs1p, rdp, off_d),
        (1, 0) => c_inst(Op::Addi, x, rd_full, rd_full, 0, imm6),
        (1, 1) => {
            if rd_full == 0 {
                return illegal;
            }
            c_inst(Op::Addiw, x, rd_full, rd_full, 0, imm6)
        }
        (1, 2) => c_inst(Op::Addi, x, rd_full, 0, 0, imm6),
        (1, 3) => {
            if rd_full == 2 {
                let imm = (cb(x, 12, 12) << 9)
                    | (cb(x, 6, 6) << 4)
                    | (cb(x, 5, 5) << 6)
                    | (cb(x, 4, 3) << 7)
                    | (cb(x, 2, 2) << 5);
                if imm == 0 {
                    return illegal;
                }
                c_inst(Op::Addi, x, 2, 2, 0, sext(imm as u64, 10))
            } else {
                if imm6 == 0 {
                    return illegal;
                }
                c_inst(Op::Lui, x, rd_full, 0, 0, imm6 << 12)
            }
        }
        (1, 4) => {
            let shamt = ((cb(x, 12, 12) << 5) | cb(x, 6, 2)) as i64;
            match cb(x, 11, 10) {
                0 => c_inst(Op::Srli, x, rs1p, rs1p, 0, shamt),
                1 => c_inst(Op::Srai, x, rs1p, rs1p, 0, shamt),
                2 => c_inst(Op::Andi, x, rs1p, rs1p, 0, imm6),
                _ => {
                    let op = match (cb(x, 12, 12), cb(x, 6, 5)) {
                        (0, 0) => Op::Sub,
                        (0, 1) => Op::Xor,
                        (0, 2) => Op::Or,
                        (0, 3) => Op::And,
                        (1, 0) => Op::Subw,
                        (1, 1) => Op::Addw,
                        _ => return illegal,
                    };
                    c_inst(op, x, rs1p, rs1p, rdp, 0)
                }
            }
        }
        (1, 5) => {
            let imm = (cb(x, 12, 12) << 11)
                | (cb(x, 11, 11) << 4)
                | (cb(x, 10, 9) << 8)
                | (cb(x, 8, 8) << 10)
                | (cb(x, 7, 7) << 6)
                | (cb(x, 6, 6) << 7)
                | (cb(x, 5, 3) << 1)
                | (cb(x, 2, 2) << 5);
            c_inst(Op::Jal, x, 0, 0, 0, sext(imm as u64, 12))
        }
        (1, 6) | (1, 7) => {
            let imm = (cb(x, 12, 12) << 8)
                | (cb(x, 11, 10) << 3)
                | (cb(x, 6, 5) << 6)
                | (cb(x, 4, 3) << 1)
                | (cb(x, 2, 2) << 5);
            let op = if f3 == 6 { Op::Beq } else { Op::Bne };
            c_inst(op, x, 0, rs1p, 0, sext(imm as u64, 9))
        }
        (2, 0) => {
            let shamt = ((cb(x, 12, 12) << 5) | cb(x, 6, 2)) as i64;
            c_inst(Op::Slli, x, rd_full, rd_full, 0, shamt)
        }
        (2, 1) => {
            let off = (cb(x, 12, 12) << 5) | (cb(x, 6, 5) << 3) | (cb(x, 4, 2) << 6);
            c_inst(Op::Fld, x, rd_full, 2, 0, off as i64)
        }
        (2, 2) | (2, 3) => {
            if rd_full == 0 {
                return illegal;
            }
            if f3 == 2 {
                let off = (cb(x, 12, 12) << 5) | (cb(x, 6, 4) << 2) | (cb(x, 3, 2) << 6);
                c_inst(Op::Lw, x, rd_full, 2, 0, off as i64)
            } else {
                let off = (cb(x, 12, 12) << 5) | (cb(x, 6, 5) << 3) | (cb(x, 4, 2) << 6);
                c_inst(Op::Ld, x, rd_full, 2, 0, off as i64)
            }
        }
        (2, 4) => {
            let bit12 = cb(x, 12, 12);
            match (bit12, rd_full, rs2_full) {
                (0, 0, 0) => illegal,
                (0, rs1, 0) => c_inst(Op::Jalr, x, 0, rs1, 0, 0),
                (0, rd, rs2) => c_inst(Op::Add, x, rd, 0, rs2, 0),
                (1, 0, 0) => c_inst(Op::Ebreak, x, 0, 0, 0, 0),
                (1, rs1, 0) => c_inst(Op::Jalr, x, 1, rs1, 0, 0),
                (_, rd, rs2) => c_inst(Op::Add, x, rd, rd, rs2, 0),
            }
        }
        (2, 5) => {
            let off = (cb(x, 12, 10) << 3) | (cb(x, 9, 7) << 6);
            c_inst(Op::Fsd, x, 0, 2, rs2_full, off as i64)
        }
        (2, 6) => {
            let off = (cb(x, 12, 9) << 2) | (cb(x, 8, 7) << 6);
            c_inst(Op::Sw, x, 0, 2, rs2_full, off as i64)
        }
        (2, 7) => {
            let off = (cb(x, 12, 10) << 3) | (cb(x, 9, 7) << 6);
            c_inst(Op::Sd, x, 0, 2, rs2_full, off as i64)
        }
        _ => illegal,
    }
}
