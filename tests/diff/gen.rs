//! Random RV64GC + Zba/Zbb/Zbs instruction sequences for the differential
//! tests (tests/differential.rs).
//!
//! Assumptions, written down once (the harness in harness.S and the macros in
//! seq_macros.inc rely on the same ones):
//! - Every sequence starts from a state fully given by its initial-state
//!   table: x1..x31 (except x2 and x8), f0..f31, fcsr and a seed from which the
//!   harness fills the 1 KiB scratch region. Nothing else is read.
//! - x2 (sp) points at the start of the scratch region and x8 (s0) at its
//!   middle, which is a page boundary; generated code never writes them
//!   (c.addi16sp pairs restore sp before anything else can observe it).
//! - Every data access stays inside the scratch region: addresses are built
//!   as `(rs & mask) + x8 + small offset`, or as x8/sp plus a bounded offset.
//!   The only other stores rewrite the generated code itself, followed by
//!   fence.i (the `self_modify` item).
//! - Nothing whose result an implementation may choose is generated: no
//!   counters or time, no ID CSRs, no illegal or reserved encodings, no
//!   invalid rounding modes (frm stays in 0..=4), no writes of reserved fcsr
//!   bits, LR/SC only in constrained pairs on the same address, no traps.
//!   Misaligned loads and stores are generated: QEMU performs them, and so
//!   must Rewind (see its README).
//! - Control flow only moves forward, except for the `backward` pattern, which
//!   jumps back exactly once, and `self_modify`'s two calls of a slot: every
//!   sequence ends.
//!
//! A sequence is a pure function of (seed, class, index): see `sequence_rng`.

use std::fmt::Write as _;

/// splitmix64: small, fast and good enough to pick instructions.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value in 0..n (n > 0); the modulo bias is irrelevant here.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// A value in lo..=hi.
    pub fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo + 1) as u64) as i64
    }

    /// True with the given probability in percent.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }
}

/// The generator state of one sequence: a pure function of these three.
pub fn sequence_rng(seed: u64, class: Class, index: u64) -> Rng {
    let mut mixer = Rng::new(seed ^ (class.id() << 56));
    let a = mixer.next_u64();
    Rng::new(a ^ index.wrapping_mul(0xd6e8_feb8_6659_fd93))
}

/// Instruction mixes, one per test.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Integer,
    Fp,
    AtomicMemory,
    CompressedBranch,
    Mixed,
}

impl Class {
    pub fn id(self) -> u64 {
        match self {
            Class::Integer => 1,
            Class::Fp => 2,
            Class::AtomicMemory => 3,
            Class::CompressedBranch => 4,
            Class::Mixed => 5,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Class::Integer => "integer",
            Class::Fp => "fp",
            Class::AtomicMemory => "atomic_and_memory",
            Class::CompressedBranch => "compressed_and_branch",
            Class::Mixed => "mixed",
        }
    }

    /// Relative weights of the item kinds of this class.
    fn weights(self) -> &'static [(Kind, u32)] {
        use Kind::*;
        match self {
            Class::Integer => &[
                (Alu, 60),
                (AluEdge, 14),
                (Li, 5),
                (LuiAuipc, 5),
                (CsrScratch, 4),
                (Load, 4),
                (Store, 4),
                (BranchFwd, 4),
                (SelfModify, 1),
            ],
            Class::Fp => &[
                (FpOp, 62),
                (FpInject, 8),
                (FpCsr, 9),
                (FpMem, 8),
                (Alu, 6),
                (Li, 3),
                (BranchFwd, 2),
                (CompressedFp, 2),
            ],
            Class::AtomicMemory => &[
                (Load, 22),
                (Store, 20),
                (FpMem, 8),
                (Amo, 20),
                (LrSc, 9),
                (Fence, 3),
                (Alu, 12),
                (Li, 3),
                (Compressed, 3),
            ],
            Class::CompressedBranch => &[
                (Compressed, 38),
                (CompressedFp, 4),
                (Alu, 24),
                (BranchFwd, 10),
                (Jump, 6),
                (CBranch, 8),
                (Backward, 4),
                (Far, 2),
                (Li, 4),
                (PageStraddle, 2),
                (SelfModify, 3),
            ],
            Class::Mixed => &[
                (Alu, 20),
                (AluEdge, 5),
                (Li, 3),
                (LuiAuipc, 2),
                (CsrScratch, 1),
                (FpOp, 18),
                (FpInject, 3),
                (FpCsr, 3),
                (FpMem, 5),
                (Load, 7),
                (Store, 7),
                (Amo, 5),
                (LrSc, 2),
                (Fence, 1),
                (Compressed, 8),
                (CompressedFp, 2),
                (BranchFwd, 4),
                (Jump, 2),
                (CBranch, 2),
                (Backward, 1),
                (Far, 1),
                (PageStraddle, 1),
                (SelfModify, 1),
            ],
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Alu,
    AluEdge,
    Li,
    LuiAuipc,
    CsrScratch,
    FpOp,
    FpInject,
    FpCsr,
    FpMem,
    Load,
    Store,
    Amo,
    LrSc,
    Fence,
    Compressed,
    CompressedFp,
    BranchFwd,
    Jump,
    CBranch,
    Backward,
    Far,
    PageStraddle,
    SelfModify,
}

impl Kind {
    fn is_control_flow(self) -> bool {
        matches!(
            self,
            Kind::BranchFwd
                | Kind::Jump
                | Kind::CBranch
                | Kind::Backward
                | Kind::Far
                | Kind::PageStraddle
                | Kind::SelfModify
        )
    }

    /// Kinds that only appear at the top level of a sequence (large or
    /// layout-sensitive code).
    fn top_level_only(self) -> bool {
        matches!(self, Kind::Far | Kind::PageStraddle | Kind::SelfModify)
    }
}

/// Address of the scratch region (link.ld and harness.S put it there; its
/// middle, x8, is the page boundary 0x8100_0000).
pub const SCRATCH_ADDR: u64 = 0x80ff_fe00;

/// Words in the initial-state table (see seq_macros.inc).
pub const TABLE_WORDS: usize = 66;

/// One generated sequence.
pub struct Sequence {
    pub index: u64,
    /// seed, fcsr, f0..f31, extra, x1..x31.
    pub table: [u64; TABLE_WORDS],
    /// The generated items (an instruction or a small self-contained group,
    /// such as a branch with the code it skips), as assembly text.
    pub items: Vec<String>,
}

impl Sequence {
    pub fn body(&self) -> String {
        self.items.concat()
    }

    /// The same initial state with only the first `len` items, numbered
    /// `index` (for finding the first item after which outputs differ).
    /// Labels are renamed so that several prefixes fit in one program.
    pub fn prefix(&self, len: usize, index: u64) -> Sequence {
        let from = format!(".Ls{}_", self.index);
        let to = format!(".Ls{}p{}_", self.index, len);
        Sequence {
            index,
            table: self.table,
            items: self.items[..len]
                .iter()
                .map(|item| item.replace(&from, &to))
                .collect(),
        }
    }

    /// A readable description of the initial state, for failure reports.
    pub fn describe_initial_state(&self) -> String {
        let mut s = format!(
            "scratch seed {:#018x}, fcsr {:#04x}\n",
            self.table[0], self.table[1]
        );
        let x = (1..32).map(|n| format!("x{n:02} {:016x}", self.table[34 + n]));
        let f = (0..32).map(|n| format!("f{n:02} {:016x}", self.table[2 + n]));
        let all: Vec<String> = x.chain(f).collect();
        for line in all.chunks(4) {
            s.push_str(&line.join("  "));
            s.push('\n');
        }
        s
    }
}

/// The assembly of one program that runs `sequences` in order.
pub fn program_source(macros_path: &str, sequences: &[Sequence]) -> String {
    let mut s = String::new();
    let _ = writeln!(s, ".include \"{macros_path}\"");
    s.push_str("    .text\n    .globl diff_run_sequences\ndiff_run_sequences:\n");
    for seq in sequences {
        let _ = writeln!(s, "    SEQ_BEGIN diff_init_{0}, {0}", seq.index);
        for item in &seq.items {
            s.push_str(item);
        }
        s.push_str("    SEQ_END\n");
    }
    s.push_str("    tail diff_all_done\n\n    .data\n    .balign 8\n");
    for seq in sequences {
        let _ = writeln!(s, "diff_init_{}:", seq.index);
        for chunk in seq.table.chunks(6) {
            let words: Vec<String> = chunk.iter().map(|w| format!("{w:#018x}")).collect();
            let _ = writeln!(s, "    .dword {}", words.join(", "));
        }
    }
    s
}

/// Generates sequence `index` of `class`.
pub fn generate(class: Class, seed: u64, index: u64) -> Sequence {
    let mut rng = sequence_rng(seed, class, index);
    let mut table = [0u64; TABLE_WORDS];
    table[0] = rng.next_u64() | 1;
    table[1] = (rng.below(5) << 5) | if rng.chance(40) { 0 } else { rng.below(32) };
    for word in table.iter_mut().skip(2).take(32) {
        *word = fp_init_value(&mut rng);
    }
    for word in table.iter_mut().skip(34) {
        *word = int_special(&mut rng);
    }
    // The harness prints registers that changed; x2 and x8 never do.
    table[34 + 2] = SCRATCH_ADDR;
    table[34 + 8] = SCRATCH_ADDR + 512;
    let mut g = Gen {
        rng,
        out: String::new(),
        class,
        index,
        labels: 0,
        reserved: Vec::new(),
    };
    let count = g.rng.range(20, 50) as usize;
    let mut items = Vec::with_capacity(count);
    for _ in 0..count {
        g.item(0, false);
        items.push(std::mem::take(&mut g.out));
    }
    Sequence {
        index,
        table,
        items,
    }
}

// ---------------------------------------------------------------------------
// Values

/// Integer values that exercise edge cases, and some plain random ones.
fn int_special(rng: &mut Rng) -> u64 {
    let k = rng.below(64);
    match rng.below(24) {
        0 => 0,
        1 => 1,
        2 => u64::MAX,
        3 => i64::MIN as u64,
        4 => i64::MAX as u64,
        5 => i32::MIN as i64 as u64,
        6 => i32::MAX as u64,
        7 => 0x8000_0000,
        8 => 0xffff_ffff,
        9 => 1 << k,
        10 => (1u64 << k).wrapping_sub(1),
        11 => (1u64 << k).wrapping_neg(),
        12 => rng.range(-16, 16) as u64,
        13 => rng.next_u64() as u32 as i32 as i64 as u64,
        14 => rng.next_u64() as u32 as u64,
        15 => rng.pick(&[
            0x8080_8080_8080_8080,
            0x0101_0101_0101_0101,
            0x00ff_00ff_00ff_00ff,
            0x0000_0000_0000_0080,
            0x0000_0000_0000_8000,
            0xffff_ffff_0000_0000,
            0x0000_0000_ffff_7fff,
            0x8000_0000_0000_0001,
            0x7fff_ffff_8000_0000,
            0xffff_ffff_7fff_ffff,
        ]),
        // Conversion ties and limits: 2^53+1, 2^24+1, 2^63-1024 and friends.
        16 => rng.pick(&[
            (1 << 53) + 1,
            (1 << 53) + 3,
            (1 << 24) + 1,
            (1 << 24) + 3,
            (1 << 63) - 1024,
            (1 << 63) - 512,
            (1 << 62) + (1 << 9),
            0xffff_ffff_ffff_f800,
            0x0000_0000_ffff_ff80,
            0x0000_0000_0100_0001,
        ]),
        17 => rng.range(-2048, 2047) as u64,
        _ => rng.next_u64(),
    }
}

const F64_ONE: u64 = 0x3ff0_0000_0000_0000;

/// Doubles: signed zeros, infinities, NaNs of both kinds, subnormals, limits,
/// halves (rounding ties for conversions), values that add to ties, and
/// random values of moderate and extreme exponents.
fn f64_special(rng: &mut Rng) -> u64 {
    let sign = if rng.chance(50) { 1u64 << 63 } else { 0 };
    match rng.below(16) {
        0 => sign,
        1 => sign | 0x7ff0_0000_0000_0000,
        2 => rng.pick(&[
            0x7ff8_0000_0000_0000,
            0xfff8_0000_0000_0000,
            0x7ff0_0000_0000_0001,
            0x7ff4_0000_0000_0000,
            0xfff0_0000_0000_0001,
            0x7ff8_dead_beef_0001,
            0x7fff_ffff_ffff_ffff,
        ]),
        3 => {
            sign | rng.pick(&[
                0x0000_0000_0000_0001,
                0x000f_ffff_ffff_ffff,
                0x0008_0000_0000_0000,
                0x0010_0000_0000_0000,
                0x7fef_ffff_ffff_ffff,
            ])
        }
        4 => sign | (rng.next_u64() & 0x000f_ffff_ffff_ffff),
        5 => {
            // Conversion boundaries and ties: 0.5, 1.5, 2.5, 2^52-0.5, 2^31,
            // 2^31-0.5, 2^32, 2^32-0.5, 2^63, 2^63-1024, 2^64, 1 +- ulp.
            sign | rng.pick(&[
                0x3fe0_0000_0000_0000,
                0x3ff8_0000_0000_0000,
                0x4004_0000_0000_0000,
                0x400c_0000_0000_0000,
                0x432f_ffff_ffff_ffff,
                0x41e0_0000_0000_0000,
                0x41df_ffff_ffe0_0000,
                0x41f0_0000_0000_0000,
                0x41ef_ffff_fff0_0000,
                0x43e0_0000_0000_0000,
                0x43df_ffff_ffff_ffff,
                0x43f0_0000_0000_0000,
                0x3ff0_0000_0000_0001,
                0x3fef_ffff_ffff_ffff,
                0x3fdf_ffff_ffff_ffff,
            ])
        }
        6 => {
            // Addends that make ties with 1.0 (2^-53, 3*2^-53, 2^-54), and
            // doubles that are ties when rounded to single precision.
            sign | rng.pick(&[
                0x3ca0_0000_0000_0000,
                0x3cb8_0000_0000_0000,
                0x3c90_0000_0000_0000,
                0x3ff0_0000_1000_0000,
                0x3ff0_0000_3000_0000,
                0x3ff0_0000_1000_0001,
                0x47ef_ffff_f000_0000,
                0x47ef_ffff_e000_0000,
                0x36a0_0000_0000_0000,
                0x3690_0000_0000_0000,
                0x36a8_0000_0000_0000,
                0x3810_0000_0000_0000,
            ])
        }
        7 => sign | F64_ONE,
        8 | 9 => {
            // Moderate exponents: mostly finite results with rounding.
            let exp = (1023 + rng.range(-70, 70)) as u64;
            sign | (exp << 52) | (rng.next_u64() & 0x000f_ffff_ffff_ffff)
        }
        10 => {
            // Exponents near the overflow and underflow limits.
            let exp = if rng.chance(50) {
                rng.range(1, 60)
            } else {
                rng.range(1990, 2046)
            } as u64;
            sign | (exp << 52) | (rng.next_u64() & 0x000f_ffff_ffff_ffff)
        }
        11 => {
            // Short mantissas: products and sums that are exact or tie.
            let exp = (1023 + rng.range(-10, 10)) as u64;
            sign | (exp << 52) | ((rng.next_u64() & 0xff) << 44)
        }
        _ => rng.next_u64(),
    }
}

/// Single-precision patterns (32 bits), same spirit as `f64_special`.
fn f32_special(rng: &mut Rng) -> u32 {
    let sign = if rng.chance(50) { 1u32 << 31 } else { 0 };
    match rng.below(14) {
        0 => sign,
        1 => sign | 0x7f80_0000,
        2 => rng.pick(&[
            0x7fc0_0000,
            0xffc0_0000,
            0x7f80_0001,
            0x7fa0_0000,
            0xff80_0001,
            0x7fc0_beef,
            0x7fff_ffff,
        ]),
        3 => {
            sign | rng.pick(&[
                0x0000_0001,
                0x007f_ffff,
                0x0040_0000,
                0x0080_0000,
                0x7f7f_ffff,
            ])
        }
        4 => sign | (rng.next_u64() as u32 & 0x007f_ffff),
        5 => {
            // 0.5, 1.5, 2.5, 2^23-0.5, 2^31, 2^32, 2^63, 2^64, 1 +- ulp, 2^24-1.
            sign | rng.pick(&[
                0x3f00_0000,
                0x3fc0_0000,
                0x4020_0000,
                0x4060_0000,
                0x4aff_ffff,
                0x4f00_0000,
                0x4f80_0000,
                0x5f00_0000,
                0x5f80_0000,
                0x3f80_0001,
                0x3f7f_ffff,
                0x4b7f_ffff,
                0x4eff_ffff,
                0x5eff_ffff,
            ])
        }
        6 => sign | rng.pick(&[0x3380_0000, 0x33c0_0000, 0x3300_0000]),
        7 => sign | 0x3f80_0000,
        8 | 9 => {
            let exp = (127 + rng.range(-30, 30)) as u32;
            sign | (exp << 23) | (rng.next_u64() as u32 & 0x007f_ffff)
        }
        10 => {
            let exp = if rng.chance(50) {
                rng.range(1, 20)
            } else {
                rng.range(230, 254)
            } as u32;
            sign | (exp << 23) | (rng.next_u64() as u32 & 0x007f_ffff)
        }
        11 => {
            let exp = (127 + rng.range(-6, 6)) as u32;
            sign | (exp << 23) | ((rng.next_u64() as u32 & 0xff) << 15)
        }
        _ => rng.next_u64() as u32,
    }
}

/// Initial value of an f register: a double, a NaN-boxed single, or a single
/// that is not properly NaN-boxed (which single-precision operations must read
/// as the canonical NaN).
fn fp_init_value(rng: &mut Rng) -> u64 {
    match rng.below(20) {
        0..=8 => f64_special(rng),
        9..=16 => 0xffff_ffff_0000_0000 | f32_special(rng) as u64,
        17 => f32_special(rng) as u64,
        18 => 0xffff_fffe_0000_0000 | f32_special(rng) as u64,
        _ => (rng.next_u64() & 0xffff_ffff_0000_0000) | f32_special(rng) as u64,
    }
}

// ---------------------------------------------------------------------------
// Instructions

const R_OPS: &[&str] = &[
    "add",
    "sub",
    "sll",
    "slt",
    "sltu",
    "xor",
    "srl",
    "sra",
    "or",
    "and",
    "addw",
    "subw",
    "sllw",
    "srlw",
    "sraw",
    "mul",
    "mulh",
    "mulhsu",
    "mulhu",
    "div",
    "divu",
    "rem",
    "remu",
    "mulw",
    "divw",
    "divuw",
    "remw",
    "remuw",
    "andn",
    "orn",
    "xnor",
    "max",
    "maxu",
    "min",
    "minu",
    "rol",
    "ror",
    "rolw",
    "rorw",
    "add.uw",
    "sh1add",
    "sh2add",
    "sh3add",
    "sh1add.uw",
    "sh2add.uw",
    "sh3add.uw",
    "bclr",
    "bext",
    "binv",
    "bset",
];
const M_OPS: &[&str] = &[
    "mul", "mulh", "mulhsu", "mulhu", "div", "divu", "rem", "remu", "mulw", "divw", "divuw",
    "remw", "remuw",
];
const I_OPS: &[&str] = &["addi", "slti", "sltiu", "xori", "ori", "andi", "addiw"];
const SHIFT64_OPS: &[&str] = &[
    "slli", "srli", "srai", "rori", "bclri", "bexti", "binvi", "bseti", "slli.uw",
];
const SHIFT32_OPS: &[&str] = &["slliw", "srliw", "sraiw", "roriw"];
const UNARY_OPS: &[&str] = &[
    "clz", "clzw", "ctz", "ctzw", "cpop", "cpopw", "sext.b", "sext.h", "zext.h", "orc.b", "rev8",
    "zext.w", "sext.w", "neg", "negw", "not", "seqz", "snez", "sltz", "sgtz", "mv",
];
/// Base-ISA register operations: what may run between an LR and its SC.
const BASE_R_OPS: &[&str] = &[
    "add", "sub", "sll", "slt", "sltu", "xor", "srl", "sra", "or", "and", "addw", "subw", "sllw",
    "srlw", "sraw",
];
const BRANCH_OPS: &[&str] = &[
    "beq", "bne", "blt", "bge", "bltu", "bgeu", "bgt", "ble", "bgtu", "bleu",
];
const BRANCHZ_OPS: &[&str] = &["beqz", "bnez", "blez", "bgez", "bltz", "bgtz"];
const AMO_OPS: &[&str] = &[
    "amoswap", "amoadd", "amoxor", "amoand", "amoor", "amomin", "amomax", "amominu", "amomaxu",
];
const ORDERINGS: &[&str] = &["", ".aq", ".rl", ".aqrl"];
/// Static rounding modes and dynamic (explicit `dyn` or no operand).
const ROUNDING: &[&str] = &["", ", rne", ", rtz", ", rdn", ", rup", ", rmm", ", dyn"];
/// Rounding-mode field values for `.insn` encodings (no 5 and 6: reserved).
const RM_FIELDS: &[u32] = &[0, 1, 2, 3, 4, 7];

/// Writable x registers: all but x0, x2 (sp) and x8 (s0).
const WRITABLE: &[u8] = &[
    1, 3, 4, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27,
    28, 29, 30, 31,
];

struct Gen {
    rng: Rng,
    out: String,
    class: Class,
    index: u64,
    labels: u32,
    /// Registers that the item being generated must not write (LR/SC address).
    reserved: Vec<u8>,
}

/// Nesting limit for branch bodies.
const MAX_DEPTH: u32 = 2;

impl Gen {
    fn line(&mut self, text: &str) {
        self.out.push_str("    ");
        self.out.push_str(text);
        self.out.push('\n');
    }

    fn label(&mut self) -> String {
        self.labels += 1;
        format!(".Ls{}_{}", self.index, self.labels)
    }

    fn place(&mut self, label: &str) {
        self.out.push_str(label);
        self.out.push_str(":\n");
    }

    /// A destination x register; x0 now and then for uncompressed instructions.
    fn xd(&mut self) -> u8 {
        if self.rng.chance(3) {
            return 0;
        }
        self.xw()
    }

    /// A writable x register other than x0.
    fn xw(&mut self) -> u8 {
        loop {
            let r = self.rng.pick(WRITABLE);
            if !self.reserved.contains(&r) {
                return r;
            }
        }
    }

    /// A source x register: any of them, x0 a little more often.
    fn xs(&mut self) -> u8 {
        if self.rng.chance(6) {
            0
        } else {
            self.rng.below(32) as u8
        }
    }

    /// A writable register of the compressed set (x9..x15; x8 is reserved).
    fn xcw(&mut self) -> u8 {
        loop {
            let r = self.rng.range(9, 15) as u8;
            if !self.reserved.contains(&r) {
                return r;
            }
        }
    }

    /// A source register of the compressed set (x8..x15).
    fn xcs(&mut self) -> u8 {
        self.rng.range(8, 15) as u8
    }

    fn f(&mut self) -> u8 {
        self.rng.below(32) as u8
    }

    fn imm12(&mut self) -> i64 {
        match self.rng.below(8) {
            0 => self.rng.pick(&[0, 1, -1, 2047, -2048, 0x7ff, -0x800 + 1]),
            1 | 2 => self.rng.range(-16, 16),
            _ => self.rng.range(-2048, 2047),
        }
    }

    fn shamt(&mut self, bits: i64) -> i64 {
        if self.rng.chance(30) {
            self.rng.pick(&[0, 1, bits / 2 - 1, bits / 2, bits - 1])
        } else {
            self.rng.range(0, bits - 1)
        }
    }

    fn rm(&mut self) -> &'static str {
        self.rng.pick(ROUNDING)
    }

    /// Generates one item: an instruction or a small self-contained group.
    fn item(&mut self, depth: u32, short: bool) {
        let weights = self.class.weights();
        let allowed = |k: Kind| {
            if short {
                matches!(
                    k,
                    Kind::Alu | Kind::Compressed | Kind::CompressedFp | Kind::FpOp
                )
            } else {
                (depth < MAX_DEPTH || !k.is_control_flow()) && (depth == 0 || !k.top_level_only())
            }
        };
        let total: u32 = weights
            .iter()
            .filter(|(k, _)| allowed(*k))
            .map(|(_, w)| w)
            .sum();
        let mut choice = self.rng.below(total as u64) as u32;
        let mut kind = Kind::Alu;
        for &(k, w) in weights.iter().filter(|(k, _)| allowed(*k)) {
            if choice < w {
                kind = k;
                break;
            }
            choice -= w;
        }
        match kind {
            Kind::Alu => self.alu(),
            Kind::AluEdge => self.alu_edge(),
            Kind::Li => {
                let rd = self.xw();
                let v = int_special(&mut self.rng);
                self.line(&format!("li x{rd}, {:#x}", v as i64));
            }
            Kind::LuiAuipc => {
                let op = self.rng.pick(&["lui", "auipc"]);
                let rd = self.xd();
                let imm = if self.rng.chance(30) {
                    self.rng.pick(&[0, 1, 0x7ffff, 0x80000, 0xfffff])
                } else {
                    self.rng.below(0x10_0000)
                };
                self.line(&format!("{op} x{rd}, {imm:#x}"));
            }
            Kind::CsrScratch => self.csr_scratch(),
            Kind::FpOp => self.fp_op(),
            Kind::FpInject => self.fp_inject(),
            Kind::FpCsr => self.fp_csr(),
            Kind::FpMem => self.fp_mem(),
            Kind::Load => self.load(),
            Kind::Store => self.store(),
            Kind::Amo => self.amo(),
            Kind::LrSc => self.lr_sc(),
            Kind::Fence => {
                let f = self.rng.pick(&[
                    "fence",
                    "fence rw, rw",
                    "fence r, r",
                    "fence w, w",
                    "fence iorw, iorw",
                    "fence.i",
                    "fence.tso",
                ]);
                self.line(f);
            }
            Kind::Compressed => self.compressed(),
            Kind::CompressedFp => self.compressed_fp(),
            Kind::BranchFwd => self.branch_forward(depth),
            Kind::Jump => self.jump(depth),
            Kind::CBranch => self.compressed_branch(depth),
            Kind::Backward => self.backward(depth),
            Kind::Far => self.far(),
            Kind::PageStraddle => self.page_straddle(),
            Kind::SelfModify => self.self_modify(),
        }
    }

    fn body(&mut self, depth: u32, short: bool, max: i64) {
        let n = self.rng.range(0, max);
        for _ in 0..n {
            self.item(depth + 1, short);
        }
    }

    // --- integer -----------------------------------------------------------

    fn alu(&mut self) {
        let rd = self.xd();
        match self.rng.below(10) {
            0..=4 => {
                let op = self.rng.pick(R_OPS);
                let (a, b) = (self.xs(), self.xs());
                self.line(&format!("{op} x{rd}, x{a}, x{b}"));
            }
            5 => {
                let op = self.rng.pick(I_OPS);
                let a = self.xs();
                let imm = self.imm12();
                self.line(&format!("{op} x{rd}, x{a}, {imm}"));
            }
            6 => {
                let op = self.rng.pick(SHIFT64_OPS);
                let a = self.xs();
                let sh = self.shamt(64);
                self.line(&format!("{op} x{rd}, x{a}, {sh}"));
            }
            7 => {
                let op = self.rng.pick(SHIFT32_OPS);
                let a = self.xs();
                let sh = self.shamt(32);
                self.line(&format!("{op} x{rd}, x{a}, {sh}"));
            }
            _ => {
                let op = self.rng.pick(UNARY_OPS);
                let a = self.xs();
                self.line(&format!("{op} x{rd}, x{a}"));
            }
        }
    }

    /// A base-ISA ALU instruction (allowed between LR and SC).
    fn base_alu(&mut self) {
        let rd = self.xd();
        let (a, b) = (self.xs(), self.xs());
        if self.rng.chance(50) {
            let op = self.rng.pick(BASE_R_OPS);
            self.line(&format!("{op} x{rd}, x{a}, x{b}"));
        } else {
            let op = self.rng.pick(I_OPS);
            let imm = self.imm12();
            self.line(&format!("{op} x{rd}, x{a}, {imm}"));
        }
    }

    /// Operands set to edge values right before the operation: division by
    /// zero, signed overflow, shifts by 0/31/32/63, and so on.
    fn alu_edge(&mut self) {
        let a = self.xw();
        let b = self.xw();
        let va: i64 = self.rng.pick(&[
            i64::MIN,
            i64::MAX,
            i32::MIN as i64,
            i32::MAX as i64,
            -1,
            0,
            1,
            0x8000_0000,
            0xffff_ffff,
            i64::MIN + 1,
        ]);
        let vb: i64 = self
            .rng
            .pick(&[0, -1, 1, 0xffff_ffff, -0x1_0000_0000, 2, 31, 32, 63, 64]);
        self.line(&format!("li x{a}, {va:#x}"));
        self.line(&format!("li x{b}, {vb:#x}"));
        let op = if self.rng.chance(70) {
            self.rng.pick(M_OPS)
        } else {
            self.rng.pick(R_OPS)
        };
        let rd = self.xd();
        self.line(&format!("{op} x{rd}, x{a}, x{b}"));
    }

    fn csr_scratch(&mut self) {
        let rd = self.xd();
        if self.rng.chance(60) {
            let op = self.rng.pick(&["csrrw", "csrrs", "csrrc"]);
            let rs = self.xs();
            self.line(&format!("{op} x{rd}, mscratch, x{rs}"));
        } else {
            let op = self.rng.pick(&["csrrwi", "csrrsi", "csrrci"]);
            let imm = self.rng.below(32);
            self.line(&format!("{op} x{rd}, mscratch, {imm}"));
        }
    }

    // --- memory ------------------------------------------------------------

    /// An address expression for an access of `size` bytes inside the
    /// scratch region, emitting any set-up instructions. Misaligned accesses
    /// only when `misaligned` is true.
    fn address(&mut self, size: i64, misaligned: bool) -> String {
        let k = if misaligned {
            loop {
                let k = self.rng.range(0, 16 - size);
                if k % size != 0 {
                    break k;
                }
            }
        } else {
            self.rng.range(0, (16 - size) / size) * size
        };
        match self.rng.below(4) {
            0 => {
                // x8 = scratch + 512: offsets -512..=511 stay inside.
                let base = self.rng.range(-32, 30) * 16;
                format!("{}(x8)", base + k)
            }
            1 => {
                // sp = scratch: offsets 0..=1023.
                let base = self.rng.range(0, 63) * 16;
                format!("{}(x2)", base + k)
            }
            _ => {
                // (rs & 0x3f0) + x8 - 512 + k: anywhere in the region.
                let t = self.xw();
                let rs = self.xs();
                self.line(&format!("andi x{t}, x{rs}, 0x3f0"));
                self.line(&format!("add x{t}, x{t}, x8"));
                format!("{}(x{t})", k - 512)
            }
        }
    }

    fn load(&mut self) {
        let (op, size) = self.rng.pick(&[
            ("lb", 1),
            ("lbu", 1),
            ("lh", 2),
            ("lhu", 2),
            ("lw", 4),
            ("lwu", 4),
            ("ld", 8),
        ]);
        let mis = size > 1 && self.rng.chance(20);
        let addr = self.address(size, mis);
        let rd = self.xd();
        self.line(&format!("{op} x{rd}, {addr}"));
    }

    fn store(&mut self) {
        let (op, size) = self.rng.pick(&[("sb", 1), ("sh", 2), ("sw", 4), ("sd", 8)]);
        let mis = size > 1 && self.rng.chance(20);
        let addr = self.address(size, mis);
        let rs = self.xs();
        self.line(&format!("{op} x{rs}, {addr}"));
    }

    fn fp_mem(&mut self) {
        let (op, size) = self
            .rng
            .pick(&[("flw", 4), ("fld", 8), ("fsw", 4), ("fsd", 8)]);
        let mis = self.rng.chance(15);
        let addr = self.address(size, mis);
        let fr = self.f();
        self.line(&format!("{op} f{fr}, {addr}"));
    }

    /// An aligned address for an AMO or LR/SC in a fresh register; returns it.
    fn amo_address(&mut self, size: i64) -> u8 {
        let t = self.xw();
        let rs = self.xs();
        let mask = if size == 8 { 0x3f8 } else { 0x3fc };
        self.line(&format!("andi x{t}, x{rs}, {mask:#x}"));
        self.line(&format!("add x{t}, x{t}, x8"));
        self.line(&format!("addi x{t}, x{t}, -512"));
        t
    }

    fn amo(&mut self) {
        let (w, size) = self.rng.pick(&[("w", 4), ("d", 8)]);
        let t = self.amo_address(size);
        let op = self.rng.pick(AMO_OPS);
        let ord = self.rng.pick(ORDERINGS);
        let rd = self.xd();
        let rs2 = self.xs();
        self.line(&format!("{op}.{w}{ord} x{rd}, x{rs2}, (x{t})"));
    }

    /// LR then SC to the same address with only base ALU instructions between
    /// (a constrained LR/SC sequence, so the SC succeeds), and sometimes a
    /// second SC, which must fail since the first consumed the reservation.
    fn lr_sc(&mut self) {
        let (w, size) = self.rng.pick(&[("w", 4), ("d", 8)]);
        let t = self.amo_address(size);
        self.reserved.push(t);
        let ord = self.rng.pick(ORDERINGS);
        let rd = self.xw();
        self.line(&format!("lr.{w}{ord} x{rd}, (x{t})"));
        for _ in 0..self.rng.below(4) {
            self.base_alu();
        }
        let ord = self.rng.pick(ORDERINGS);
        let rd = self.xw();
        let rs2 = self.xs();
        self.line(&format!("sc.{w}{ord} x{rd}, x{rs2}, (x{t})"));
        if self.rng.chance(25) {
            let rd = self.xw();
            let rs2 = self.xs();
            self.line(&format!("sc.{w} x{rd}, x{rs2}, (x{t})"));
        }
        self.reserved.pop();
    }

    // --- floating point ----------------------------------------------------

    fn fp_op(&mut self) {
        let fmt = self.rng.pick(&["s", "d"]);
        let (d, a, b, c) = (self.f(), self.f(), self.f(), self.f());
        match self.rng.below(15) {
            0..=2 => {
                let op = self.rng.pick(&["fadd", "fsub", "fmul", "fdiv"]);
                let rm = self.rm();
                self.line(&format!("{op}.{fmt} f{d}, f{a}, f{b}{rm}"));
            }
            3 => {
                let rm = self.rm();
                self.line(&format!("fsqrt.{fmt} f{d}, f{a}{rm}"));
            }
            4 => {
                let op = self.rng.pick(&["fmin", "fmax"]);
                self.line(&format!("{op}.{fmt} f{d}, f{a}, f{b}"));
            }
            5 => {
                let op = self.rng.pick(&["fsgnj", "fsgnjn", "fsgnjx"]);
                self.line(&format!("{op}.{fmt} f{d}, f{a}, f{b}"));
            }
            6 | 7 => {
                let op = self.rng.pick(&["fmadd", "fmsub", "fnmadd", "fnmsub"]);
                let rm = self.rm();
                self.line(&format!("{op}.{fmt} f{d}, f{a}, f{b}, f{c}{rm}"));
            }
            8 => {
                let op = self.rng.pick(&["feq", "flt", "fle"]);
                let rd = self.xd();
                self.line(&format!("{op}.{fmt} x{rd}, f{a}, f{b}"));
            }
            9 => {
                let rd = self.xd();
                self.line(&format!("fclass.{fmt} x{rd}, f{a}"));
            }
            10 => {
                let int = self.rng.pick(&["w", "wu", "l", "lu"]);
                let rd = self.xd();
                let rm = self.rm();
                self.line(&format!("fcvt.{int}.{fmt} x{rd}, f{a}{rm}"));
            }
            11 => {
                let (int, rs2) = self.rng.pick(&[("w", 0), ("wu", 1), ("l", 2), ("lu", 3)]);
                let rs = self.xs();
                if fmt == "d" && rs2 < 2 {
                    // Exact conversions: binutils 2.40 takes no rounding mode
                    // operand, but the field exists; encode it directly.
                    let rm = self.rng.pick(RM_FIELDS);
                    if self.rng.chance(30) {
                        self.line(&format!("fcvt.d.{int} f{d}, x{rs}"));
                    } else {
                        self.line(&format!(".insn r 0x53, {rm}, 0x69, f{d}, x{rs}, x{rs2}"));
                    }
                } else {
                    let rm = self.rm();
                    self.line(&format!("fcvt.{fmt}.{int} f{d}, x{rs}{rm}"));
                }
            }
            12 => {
                if self.rng.chance(50) {
                    let rm = self.rm();
                    self.line(&format!("fcvt.s.d f{d}, f{a}{rm}"));
                } else if self.rng.chance(30) {
                    self.line(&format!("fcvt.d.s f{d}, f{a}"));
                } else {
                    let rm = self.rng.pick(RM_FIELDS);
                    self.line(&format!(".insn r 0x53, {rm}, 0x21, f{d}, f{a}, x0"));
                }
            }
            13 => {
                let rd = self.xd();
                let op = if fmt == "s" { "fmv.x.w" } else { "fmv.x.d" };
                self.line(&format!("{op} x{rd}, f{a}"));
            }
            _ => {
                let rs = self.xs();
                let op = if fmt == "s" { "fmv.w.x" } else { "fmv.d.x" };
                self.line(&format!("{op} f{d}, x{rs}"));
            }
        }
    }

    /// Loads a special value into an f register in the middle of a sequence.
    fn fp_inject(&mut self) {
        let t = self.xw();
        let d = self.f();
        if self.rng.chance(50) {
            let v = f64_special(&mut self.rng);
            self.line(&format!("li x{t}, {:#x}", v as i64));
            self.line(&format!("fmv.d.x f{d}, x{t}"));
        } else {
            let v = f32_special(&mut self.rng);
            self.line(&format!("li x{t}, {:#x}", v as i32));
            self.line(&format!("fmv.w.x f{d}, x{t}"));
        }
    }

    /// Reads and writes of fflags, frm and fcsr. frm only ever receives 0..=4
    /// and reserved fcsr bits are never set.
    fn fp_csr(&mut self) {
        let rd = self.xd();
        match self.rng.below(12) {
            0 => self.line(&format!("frflags x{rd}")),
            1 => self.line(&format!("frrm x{rd}")),
            2 => self.line(&format!("frcsr x{rd}")),
            3 => {
                let imm = self.rng.below(32);
                let op = self.rng.pick(&["fsflagsi", "csrrsi", "csrrci"]);
                if op == "fsflagsi" {
                    self.line(&format!("fsflagsi x{rd}, {imm}"));
                } else {
                    self.line(&format!("{op} x{rd}, fflags, {imm}"));
                }
            }
            4 => {
                let imm = self.rng.below(5);
                self.line(&format!("fsrmi x{rd}, {imm}"));
            }
            5 => {
                let imm = self.rng.below(32);
                self.line(&format!("csrrci x{rd}, frm, {imm}"));
            }
            6 => {
                let (t, rs) = (self.xw(), self.xs());
                self.line(&format!("andi x{t}, x{rs}, 3"));
                self.line(&format!("fsrm x{rd}, x{t}"));
            }
            7 => {
                let (t, rs) = (self.xw(), self.xs());
                self.line(&format!("andi x{t}, x{rs}, 0x9f"));
                self.line(&format!("fscsr x{rd}, x{t}"));
            }
            8 => {
                let (t, rs) = (self.xw(), self.xs());
                let op = self.rng.pick(&["fsflags", "csrrs", "csrrw"]);
                self.line(&format!("andi x{t}, x{rs}, 31"));
                if op == "fsflags" {
                    self.line(&format!("fsflags x{rd}, x{t}"));
                } else {
                    self.line(&format!("{op} x{rd}, fflags, x{t}"));
                }
            }
            9 => {
                // Clearing bits keeps frm valid and reserved bits zero.
                let csr = self.rng.pick(&["fflags", "frm", "fcsr"]);
                let rs = self.xs();
                self.line(&format!("csrrc x{rd}, {csr}, x{rs}"));
            }
            _ => {
                // Reading a CSR with csrrs/csrrc x0 must not write it.
                let csr = self.rng.pick(&["fflags", "frm", "fcsr"]);
                let op = self.rng.pick(&["csrrs", "csrrc"]);
                self.line(&format!("{op} x{rd}, {csr}, x0"));
            }
        }
    }

    // --- compressed --------------------------------------------------------

    fn nonzero(&mut self, lo: i64, hi: i64) -> i64 {
        loop {
            let v = self.rng.range(lo, hi);
            if v != 0 {
                return v;
            }
        }
    }

    fn compressed(&mut self) {
        match self.rng.below(24) {
            0 => {
                let (rd, imm) = (self.xw(), self.nonzero(-32, 31));
                self.line(&format!("c.addi x{rd}, {imm}"));
            }
            1 => {
                let (rd, imm) = (self.xw(), self.rng.range(-32, 31));
                self.line(&format!("c.addiw x{rd}, {imm}"));
            }
            2 => {
                let (rd, imm) = (self.xw(), self.rng.range(-32, 31));
                self.line(&format!("c.li x{rd}, {imm}"));
            }
            3 => {
                let rd = self.xw();
                let imm = if self.rng.chance(50) {
                    self.rng.range(1, 31)
                } else {
                    self.rng.range(0xfffe0, 0xfffff)
                };
                self.line(&format!("c.lui x{rd}, {imm:#x}"));
            }
            4 => {
                let (rd, rs) = (self.xw(), self.rng.range(1, 31));
                self.line(&format!("c.mv x{rd}, x{rs}"));
            }
            5 => {
                let (rd, rs) = (self.xw(), self.rng.range(1, 31));
                self.line(&format!("c.add x{rd}, x{rs}"));
            }
            6 | 7 => {
                let op = self
                    .rng
                    .pick(&["c.sub", "c.and", "c.or", "c.xor", "c.addw", "c.subw"]);
                let (rd, rs) = (self.xcw(), self.xcs());
                self.line(&format!("{op} x{rd}, x{rs}"));
            }
            8 => {
                let (rd, sh) = (self.xw(), self.rng.range(1, 63));
                self.line(&format!("c.slli x{rd}, {sh}"));
            }
            9 => {
                let op = self.rng.pick(&["c.srli", "c.srai"]);
                let (rd, sh) = (self.xcw(), self.rng.range(1, 63));
                self.line(&format!("{op} x{rd}, {sh}"));
            }
            10 => {
                let (rd, imm) = (self.xcw(), self.rng.range(-32, 31));
                self.line(&format!("c.andi x{rd}, {imm}"));
            }
            11 => {
                let rd = self.xcw();
                let off = self.rng.range(0, 31) * 4;
                self.line(&format!("c.lw x{rd}, {off}(x8)"));
            }
            12 => {
                let rd = self.xcw();
                let off = self.rng.range(0, 31) * 8;
                self.line(&format!("c.ld x{rd}, {off}(x8)"));
            }
            13 => {
                let rs = self.xcs();
                let off = self.rng.range(0, 31) * 4;
                self.line(&format!("c.sw x{rs}, {off}(x8)"));
            }
            14 => {
                let rs = self.xcs();
                let off = self.rng.range(0, 31) * 8;
                self.line(&format!("c.sd x{rs}, {off}(x8)"));
            }
            15 => {
                let rd = self.xw();
                if self.rng.chance(50) {
                    let off = self.rng.range(0, 63) * 4;
                    self.line(&format!("c.lwsp x{rd}, {off}(sp)"));
                } else {
                    let off = self.rng.range(0, 63) * 8;
                    self.line(&format!("c.ldsp x{rd}, {off}(sp)"));
                }
            }
            16 => {
                let rs = self.rng.below(32);
                if self.rng.chance(50) {
                    let off = self.rng.range(0, 63) * 4;
                    self.line(&format!("c.swsp x{rs}, {off}(sp)"));
                } else {
                    let off = self.rng.range(0, 63) * 8;
                    self.line(&format!("c.sdsp x{rs}, {off}(sp)"));
                }
            }
            17 => {
                let rd = self.xcw();
                let imm = self.rng.range(1, 255) * 4;
                self.line(&format!("c.addi4spn x{rd}, sp, {imm}"));
            }
            18 => {
                // Move sp up inside the scratch region, use it, move it back.
                let up = self.rng.range(1, 31) * 16;
                self.line(&format!("c.addi16sp sp, {up}"));
                let room = (1024 - up - 8) / 8;
                for _ in 0..self.rng.range(1, 3) {
                    let off = self.rng.range(0, room.min(63)) * 8;
                    if self.rng.chance(50) {
                        let rd = self.xw();
                        self.line(&format!("c.ldsp x{rd}, {off}(sp)"));
                    } else {
                        let rs = self.rng.below(32);
                        self.line(&format!("c.sdsp x{rs}, {off}(sp)"));
                    }
                }
                if self.rng.chance(50) {
                    let rd = self.xcw();
                    self.line(&format!("c.addi4spn x{rd}, sp, 4"));
                }
                self.line(&format!("c.addi16sp sp, -{up}"));
            }
            19 => self.line("c.nop"),
            _ => {
                // Uncompressed mnemonics that the assembler compresses.
                let rd = self.xw();
                let rs = self.xcs();
                let imm = self.rng.range(-32, 31);
                let text = match self.rng.below(6) {
                    0 => format!("addi x{rd}, x{rd}, {imm}"),
                    1 => format!("addiw x{rd}, x{rd}, {imm}"),
                    2 => format!("li x{rd}, {imm}"),
                    3 => format!("mv x{rd}, x{}", self.rng.range(1, 31)),
                    4 => {
                        let rd = self.xcw();
                        let op = self.rng.pick(&["and", "or", "xor", "sub", "addw", "subw"]);
                        format!("{op} x{rd}, x{rd}, x{rs}")
                    }
                    _ => format!("ld x{}, {}(x8)", self.xcw(), self.rng.range(0, 31) * 8),
                };
                self.line(&text);
            }
        }
    }

    fn compressed_fp(&mut self) {
        match self.rng.below(4) {
            0 => {
                let (fr, off) = (self.rng.range(8, 15), self.rng.range(0, 31) * 8);
                self.line(&format!("c.fld f{fr}, {off}(x8)"));
            }
            1 => {
                let (fr, off) = (self.rng.range(8, 15), self.rng.range(0, 31) * 8);
                self.line(&format!("c.fsd f{fr}, {off}(x8)"));
            }
            2 => {
                let (fr, off) = (self.f(), self.rng.range(0, 63) * 8);
                self.line(&format!("c.fldsp f{fr}, {off}(sp)"));
            }
            _ => {
                let (fr, off) = (self.f(), self.rng.range(0, 63) * 8);
                self.line(&format!("c.fsdsp f{fr}, {off}(sp)"));
            }
        }
    }

    // --- control flow ------------------------------------------------------

    /// Source registers for a branch: sometimes equal (so beq/bge/bgeu are
    /// always taken and the others never) or x0.
    fn branch_operands(&mut self) -> (u8, u8) {
        let a = self.xs();
        let b = match self.rng.below(8) {
            0 => a,
            1 => 0,
            _ => self.xs(),
        };
        (a, b)
    }

    fn branch_forward(&mut self, depth: u32) {
        let l = self.label();
        if self.rng.chance(25) {
            let op = self.rng.pick(BRANCHZ_OPS);
            let a = self.xs();
            self.line(&format!("{op} x{a}, {l}"));
        } else {
            let op = self.rng.pick(BRANCH_OPS);
            let (a, b) = self.branch_operands();
            self.line(&format!("{op} x{a}, x{b}, {l}"));
        }
        self.body(depth, false, 5);
        self.place(&l);
    }

    /// jal and jalr forward over code that never runs (but is still valid).
    fn jump(&mut self, depth: u32) {
        let l = self.label();
        let rd = self.xd();
        match self.rng.below(4) {
            0 | 1 => self.line(&format!("jal x{rd}, {l}")),
            _ => {
                let t = self.xw();
                self.line(&format!("lla x{t}, {l}"));
                match self.rng.below(3) {
                    0 => self.line(&format!("jalr x{rd}, 0(x{t})")),
                    // The target's low bit is cleared.
                    1 => self.line(&format!("jalr x{rd}, 1(x{t})")),
                    _ => {
                        let k = self.rng.range(-64, 64);
                        self.line(&format!("addi x{t}, x{t}, {}", -k));
                        self.line(&format!("jalr x{rd}, {k}(x{t})"));
                    }
                }
            }
        }
        self.body(depth, false, 3);
        self.place(&l);
    }

    fn compressed_branch(&mut self, depth: u32) {
        let l = self.label();
        match self.rng.below(5) {
            0 | 1 => {
                let op = self.rng.pick(&["c.beqz", "c.bnez"]);
                let r = self.xcs();
                self.line(&format!("{op} x{r}, {l}"));
                self.body(depth, true, 4);
            }
            2 => {
                self.line(&format!("c.j {l}"));
                self.body(depth, true, 3);
            }
            _ => {
                let t = self.xw();
                self.line(&format!("lla x{t}, {l}"));
                let op = self.rng.pick(&["c.jr", "c.jalr"]);
                self.line(&format!("{op} x{t}"));
                self.body(depth, true, 3);
            }
        }
        self.place(&l);
    }

    /// A taken-or-not backward branch that runs its target block at most once:
    ///   j L2; L1: <block>; j L3; L2: bCC a, b, L1; <fall-through block>; L3:
    fn backward(&mut self, depth: u32) {
        let (l1, l2, l3) = (self.label(), self.label(), self.label());
        // c.beqz/c.bnez reach only 256 bytes back: keep their block short.
        let compressed = self.rng.chance(25);
        if self.rng.chance(50) {
            self.line(&format!("j {l2}"));
        } else {
            self.line(&format!("c.j {l2}"));
        }
        self.place(&l1);
        self.body(depth, compressed, 3);
        self.line(&format!("j {l3}"));
        self.place(&l2);
        if compressed {
            let op = self.rng.pick(&["c.beqz", "c.bnez"]);
            let r = self.xcs();
            self.line(&format!("{op} x{r}, {l1}"));
        } else {
            let op = self.rng.pick(BRANCH_OPS);
            let (a, b) = self.branch_operands();
            self.line(&format!("{op} x{a}, x{b}, {l1}"));
        }
        self.body(depth, false, 2);
        self.place(&l3);
    }

    /// Branches and jumps with large offsets.
    fn far(&mut self) {
        let l = self.label();
        match self.rng.below(3) {
            0 => {
                // Up to ~3.6 KiB of nops: near the B-type limit.
                let op = self.rng.pick(BRANCH_OPS);
                let (a, b) = self.branch_operands();
                self.line(&format!("{op} x{a}, x{b}, {l}"));
                let n = self.rng.range(200, 900);
                self.line(&format!(".fill {n}, 4, 0x00000013"));
            }
            1 => {
                // c.beqz/c.bnez over up to ~240 bytes of c.nop.
                let op = self.rng.pick(&["c.beqz", "c.bnez"]);
                let r = self.xcs();
                self.line(&format!("{op} x{r}, {l}"));
                let n = self.rng.range(20, 120);
                self.line(&format!(".fill {n}, 2, 0x0001"));
            }
            _ => {
                // jal over a hole of zeros (never executed).
                let rd = self.xd();
                self.line(&format!("jal x{rd}, {l}"));
                let n = self.rng.range(1, 40) * 1024;
                self.line(&format!(".skip {n}"));
            }
        }
        self.place(&l);
    }
    /// A 4-byte instruction that straddles a page boundary, reached by a
    /// jump or by falling through from the last halfword of the page.
    fn page_straddle(&mut self) {
        let l = self.label();
        self.line(&format!("j {l}"));
        self.line(".balign 4096");
        if self.rng.chance(50) {
            self.line(".skip 4094");
            self.place(&l);
        } else {
            self.line(".skip 4092");
            self.place(&l);
            self.line("c.nop");
        }
        self.line(".option push");
        self.line(".option norvc");
        match self.rng.below(4) {
            0 => self.load(),
            1 => self.store(),
            2 => self.fp_op(),
            _ => self.alu(),
        }
        self.line(".option pop");
    }

    /// Code that rewrites an instruction, then runs it after fence.i: either
    /// a subroutine slot that already ran once (its decoded form is cached),
    /// or the instruction right after the fence.
    fn self_modify(&mut self) {
        let link = self.xw();
        self.reserved.push(link);
        let compressed = self.rng.chance(30);
        let (store, align) = if compressed { ("sh", 2) } else { ("sw", 4) };
        let (l1, l2) = (self.label(), self.label());
        let ptr = self.xw();
        self.reserved.push(ptr);
        let val = self.xw();
        self.reserved.pop();
        let encoding = self.patch_encoding(compressed);
        let original = |g: &mut Gen| {
            if compressed {
                let rd = g.xw();
                let imm = g.nonzero(-32, 31);
                g.line(&format!("c.addi x{rd}, {imm}"));
            } else {
                g.line(".option push");
                g.line(".option norvc");
                g.alu();
                g.line(".option pop");
            }
        };
        if self.rng.chance(50) {
            //     j L2; .balign; L1: <original>; jr link
            // L2: jal link, L1; <patch L1>; fence.i; jal link, L1
            self.line(&format!("j {l2}"));
            self.line(&format!(".balign {align}"));
            self.place(&l1);
            original(self);
            self.line(&format!("jr x{link}"));
            self.place(&l2);
            self.line(&format!("jal x{link}, {l1}"));
            self.line(&format!("lla x{ptr}, {l1}"));
            self.line(&format!("li x{val}, {encoding:#x}"));
            self.line(&format!("{store} x{val}, 0(x{ptr})"));
            self.line("fence.i");
            self.line(&format!("jal x{link}, {l1}"));
        } else {
            self.line(&format!("lla x{ptr}, {l1}"));
            self.line(&format!("li x{val}, {encoding:#x}"));
            self.line(&format!("{store} x{val}, 0(x{ptr})"));
            self.line("fence.i");
            self.line(&format!(".balign {align}"));
            self.place(&l1);
            original(self);
        }
        self.reserved.pop();
    }

    /// The machine code of a random ALU instruction that writes neither a
    /// reserved register nor x2/x8: 32 bits, or 16 (c.addi / c.li / c.slli).
    fn patch_encoding(&mut self, compressed: bool) -> u32 {
        let rd = self.xw() as u32;
        if compressed {
            let imm = self.nonzero(-32, 31) as u32;
            let (funct3, imm) = match self.rng.below(3) {
                0 => (0b000, imm),            // c.addi
                1 => (0b010, imm),            // c.li
                _ => (0b000, imm & 0x1f | 1), // c.addi, positive
            };
            return (funct3 << 13)
                | ((imm >> 5) & 1) << 12
                | (rd << 7)
                | ((imm & 0x1f) << 2)
                | 0b01;
        }
        let rs1 = self.xs() as u32;
        let rs2 = self.xs() as u32;
        match self.rng.below(4) {
            0 => {
                // addi, slti, sltiu, xori, ori, andi, addiw
                let (opcode, funct3) = self.rng.pick(&[
                    (0x13, 0),
                    (0x13, 2),
                    (0x13, 3),
                    (0x13, 4),
                    (0x13, 6),
                    (0x13, 7),
                    (0x1b, 0),
                ]);
                let imm = (self.imm12() as u32) & 0xfff;
                (imm << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
            }
            1 => {
                // slli, srli, srai
                let (funct3, high) = self.rng.pick(&[(1, 0), (5, 0), (5, 0x400)]);
                let shamt = self.rng.below(64) as u32;
                ((high | shamt) << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x13
            }
            2 => {
                // lui
                let imm = self.rng.below(0x10_0000) as u32;
                (imm << 12) | (rd << 7) | 0x37
            }
            _ => {
                // add sub sll slt sltu xor srl sra or and mul mulh div rem, addw
                let (opcode, funct7, funct3) = self.rng.pick(&[
                    (0x33, 0, 0),
                    (0x33, 0x20, 0),
                    (0x33, 0, 1),
                    (0x33, 0, 2),
                    (0x33, 0, 3),
                    (0x33, 0, 4),
                    (0x33, 0, 5),
                    (0x33, 0x20, 5),
                    (0x33, 0, 6),
                    (0x33, 0, 7),
                    (0x33, 1, 0),
                    (0x33, 1, 1),
                    (0x33, 1, 4),
                    (0x33, 1, 6),
                    (0x3b, 0, 0),
                ]);
                (funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | opcode
            }
        }
    }
}
