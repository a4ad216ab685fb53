//! Floating point (F and D), bit-exact with the RISC-V unprivileged specification.
//!
//! Owned by the FPU work: see the module-level contract below. Every function is
//! pure: operands and results are raw register bits, and accrued exception flags
//! are returned rather than kept in global state.
//!
//! Contract used by `exec.rs`:
//! - Registers are 64-bit. A single-precision operand is valid only when NaN-boxed
//!   (upper 32 bits all ones); otherwise it reads as the canonical NaN.
//!   Single-precision results are always returned NaN-boxed.
//! - `rm` is an already-resolved static rounding mode 0..=4 (RNE, RTZ, RDN, RUP, RMM).
//! - Flags use the fflags layout: NV=16, DZ=8, OF=4, UF=2, NX=1.
//!
//! Implementation notes:
//! - Arithmetic, square root, fused multiply-add, comparisons and all conversions
//!   are done by Berkeley SoftFloat 3 built with its RISC-V specialization (the
//!   library Spike uses). That specialization already implements the RISC-V
//!   rules: every NaN result is the canonical NaN, tininess is detected after
//!   rounding, `fma(inf, 0, qNaN)` raises NV, and float-to-integer conversions
//!   saturate exactly as the ISA's conversion table says (NaN converts like
//!   +inf). SoftFloat's flag bits are numerically identical to `fflags`.
//! - SoftFloat keeps its rounding mode and exception flags in thread-local C
//!   globals. Every operation here clears the flags immediately before calling
//!   SoftFloat and reads them immediately after; the rounding-mode-dependent
//!   entry points of `softfloat_wrapper` write the rounding mode on every call
//!   (conversions to integer take it as an argument). No state therefore leaks
//!   from one call to the next, or between threads.
//! - `fmin`/`fmax` (IEEE 754-2019 minimumNumber/maximumNumber, with -0 < +0),
//!   `fclass`, sign injection and NaN-boxing are plain bit manipulation here.
//! - A `rm` outside 0..=4 (which the caller never passes) is treated as RNE;
//!   no function panics for any input.
//! - Cross-checked once, outside the test suite, against QEMU 7.2 running
//!   the real instructions bare-metal (about 900k vectors over every F/D
//!   operation, all five rounding modes, NaN-boxed and non-boxed singles):
//!   identical result bits and fflags throughout.

use softfloat_wrapper::{ExceptionFlags, Float, RoundingMode, F32, F64};

/// Floating-point format of an operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fmt {
    /// Single precision (binary32), NaN-boxed in a 64-bit register.
    S,
    /// Double precision (binary64).
    D,
}

/// Result bits (single results NaN-boxed) and the accrued fflags of one operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FpResult {
    /// Register bits of the result.
    pub bits: u64,
    /// Exception flags raised (fflags layout).
    pub flags: u8,
}

/// Invalid operation.
pub const NV: u8 = 16;
/// Divide by zero.
pub const DZ: u8 = 8;
/// Overflow.
pub const OF: u8 = 4;
/// Underflow.
pub const UF: u8 = 2;
/// Inexact.
pub const NX: u8 = 1;

/// All five fflags bits.
const ALL_FLAGS: u8 = NV | DZ | OF | UF | NX;

/// The canonical single-precision NaN.
const CANONICAL_NAN_S: u32 = 0x7fc0_0000;
/// The canonical double-precision NaN.
const CANONICAL_NAN_D: u64 = 0x7ff8_0000_0000_0000;
/// Upper half of a NaN-boxed single.
const BOX: u64 = 0xffff_ffff_0000_0000;

/// Bit layout of one format, for the operations done without SoftFloat.
struct Layout {
    sign: u64,
    exp: u64,
    frac: u64,
    quiet: u64,
    canonical_nan: u64,
}

const LAYOUT_S: Layout = Layout {
    sign: 0x8000_0000,
    exp: 0x7f80_0000,
    frac: 0x007f_ffff,
    quiet: 0x0040_0000,
    canonical_nan: CANONICAL_NAN_S as u64,
};

const LAYOUT_D: Layout = Layout {
    sign: 0x8000_0000_0000_0000,
    exp: 0x7ff0_0000_0000_0000,
    frac: 0x000f_ffff_ffff_ffff,
    quiet: 0x0008_0000_0000_0000,
    canonical_nan: CANONICAL_NAN_D,
};

impl Layout {
    fn of(fmt: Fmt) -> &'static Layout {
        match fmt {
            Fmt::S => &LAYOUT_S,
            Fmt::D => &LAYOUT_D,
        }
    }

    /// All bits of the format (sign, exponent and fraction).
    fn mask(&self) -> u64 {
        self.sign | self.exp | self.frac
    }

    fn is_nan(&self, x: u64) -> bool {
        x & self.exp == self.exp && x & self.frac != 0
    }

    fn is_snan(&self, x: u64) -> bool {
        self.is_nan(x) && x & self.quiet == 0
    }
}

/// NaN-box a 32-bit value (used by flw and fmv.w.x).
pub fn box_single(v: u32) -> u64 {
    BOX | u64::from(v)
}

/// Read a single-precision operand: the low 32 bits if properly NaN-boxed,
/// the canonical NaN otherwise.
fn unbox_single(v: u64) -> u32 {
    if v & BOX == BOX {
        v as u32
    } else {
        CANONICAL_NAN_S
    }
}

/// Read an operand of `fmt` as raw format bits (low 32 bits for S).
fn operand(fmt: Fmt, v: u64) -> u64 {
    match fmt {
        Fmt::S => u64::from(unbox_single(v)),
        Fmt::D => v,
    }
}

/// Turn raw format bits into register bits (NaN-box for S).
fn to_register(fmt: Fmt, v: u64) -> u64 {
    match fmt {
        Fmt::S => box_single(v as u32),
        Fmt::D => v,
    }
}

fn rounding(rm: u8) -> RoundingMode {
    match rm {
        1 => RoundingMode::TowardZero,
        2 => RoundingMode::TowardNegative,
        3 => RoundingMode::TowardPositive,
        4 => RoundingMode::TiesToAway,
        _ => RoundingMode::TiesToEven,
    }
}

/// Run one SoftFloat operation with cleared exception flags and return its
/// value together with the flags it raised.
fn with_flags<T>(op: impl FnOnce() -> T) -> (T, u8) {
    ExceptionFlags::from_bits(0).set();
    let value = op();
    let mut raised = ExceptionFlags::default();
    raised.get();
    (value, raised.to_bits() & ALL_FLAGS)
}

/// Single-precision operand as a SoftFloat value.
fn f32_operand(v: u64) -> F32 {
    F32::from_bits(unbox_single(v))
}

/// Double-precision operand as a SoftFloat value.
fn f64_operand(v: u64) -> F64 {
    F64::from_bits(v)
}

fn single_result((value, flags): (F32, u8)) -> FpResult {
    FpResult {
        bits: box_single(value.to_bits()),
        flags,
    }
}

fn double_result((value, flags): (F64, u8)) -> FpResult {
    FpResult {
        bits: value.to_bits(),
        flags,
    }
}

/// A two-operand arithmetic operation in either format.
fn binary(
    fmt: Fmt,
    a: u64,
    b: u64,
    rm: u8,
    op32: fn(&F32, F32, RoundingMode) -> F32,
    op64: fn(&F64, F64, RoundingMode) -> F64,
) -> FpResult {
    let rnd = rounding(rm);
    match fmt {
        Fmt::S => {
            let (x, y) = (f32_operand(a), f32_operand(b));
            single_result(with_flags(|| op32(&x, y, rnd)))
        }
        Fmt::D => {
            let (x, y) = (f64_operand(a), f64_operand(b));
            double_result(with_flags(|| op64(&x, y, rnd)))
        }
    }
}

/// fadd.{s,d}
pub fn add(fmt: Fmt, a: u64, b: u64, rm: u8) -> FpResult {
    binary(fmt, a, b, rm, |x, y, r| x.add(y, r), |x, y, r| x.add(y, r))
}

/// fsub.{s,d}
pub fn sub(fmt: Fmt, a: u64, b: u64, rm: u8) -> FpResult {
    binary(fmt, a, b, rm, |x, y, r| x.sub(y, r), |x, y, r| x.sub(y, r))
}

/// fmul.{s,d}
pub fn mul(fmt: Fmt, a: u64, b: u64, rm: u8) -> FpResult {
    binary(fmt, a, b, rm, |x, y, r| x.mul(y, r), |x, y, r| x.mul(y, r))
}

/// fdiv.{s,d}
pub fn div(fmt: Fmt, a: u64, b: u64, rm: u8) -> FpResult {
    binary(fmt, a, b, rm, |x, y, r| x.div(y, r), |x, y, r| x.div(y, r))
}

/// fsqrt.{s,d}
pub fn sqrt(fmt: Fmt, a: u64, rm: u8) -> FpResult {
    let rnd = rounding(rm);
    match fmt {
        Fmt::S => {
            let x = f32_operand(a);
            single_result(with_flags(|| x.sqrt(rnd)))
        }
        Fmt::D => {
            let x = f64_operand(a);
            double_result(with_flags(|| x.sqrt(rnd)))
        }
    }
}

/// Fused multiply-add family: computes (±(a*b)) ± c with one rounding.
/// fmadd: (false,false); fmsub: (false,true); fnmsub: (true,false); fnmadd: (true,true)
/// where the first bool negates the product and the second negates the addend.
///
/// Negating the product is done by flipping the sign of `a` (exact, and the
/// same as Spike); negating the addend flips the sign of `c`. Sign flips never
/// change whether an operand is a signalling NaN, and every NaN result is the
/// canonical NaN, so this is exactly the RISC-V definition.
pub fn fma(
    fmt: Fmt,
    a: u64,
    b: u64,
    c: u64,
    rm: u8,
    negate_product: bool,
    negate_addend: bool,
) -> FpResult {
    let rnd = rounding(rm);
    let l = Layout::of(fmt);
    let mut x = operand(fmt, a);
    let y = operand(fmt, b);
    let mut z = operand(fmt, c);
    if negate_product {
        x ^= l.sign;
    }
    if negate_addend {
        z ^= l.sign;
    }
    match fmt {
        Fmt::S => {
            let (x, y, z) = (
                F32::from_bits(x as u32),
                F32::from_bits(y as u32),
                F32::from_bits(z as u32),
            );
            single_result(with_flags(|| x.fused_mul_add(y, z, rnd)))
        }
        Fmt::D => {
            let (x, y, z) = (F64::from_bits(x), F64::from_bits(y), F64::from_bits(z));
            double_result(with_flags(|| x.fused_mul_add(y, z, rnd)))
        }
    }
}

/// Key that orders non-NaN values of a format numerically, with -0 < +0.
fn order_key(l: &Layout, x: u64) -> u64 {
    if x & l.sign != 0 {
        !x & l.mask()
    } else {
        x | l.sign
    }
}

/// fmin/fmax: IEEE 754-2019 minimumNumber/maximumNumber as RISC-V defines them.
fn min_max(fmt: Fmt, a: u64, b: u64, want_max: bool) -> FpResult {
    let l = Layout::of(fmt);
    let (x, y) = (operand(fmt, a), operand(fmt, b));
    let flags = if l.is_snan(x) || l.is_snan(y) { NV } else { 0 };
    let value = match (l.is_nan(x), l.is_nan(y)) {
        (true, true) => l.canonical_nan,
        (true, false) => y,
        (false, true) => x,
        (false, false) => {
            let x_smaller = order_key(l, x) < order_key(l, y);
            if x_smaller != want_max {
                x
            } else {
                y
            }
        }
    };
    FpResult {
        bits: to_register(fmt, value),
        flags,
    }
}

/// fmin.{s,d}: the smaller operand (-0 < +0). If exactly one operand is a NaN
/// the other is returned; if both are, the canonical NaN. NV if either is a
/// signalling NaN.
pub fn min(fmt: Fmt, a: u64, b: u64) -> FpResult {
    min_max(fmt, a, b, false)
}

/// fmax.{s,d}: as [`min`], for the larger operand.
pub fn max(fmt: Fmt, a: u64, b: u64) -> FpResult {
    min_max(fmt, a, b, true)
}

/// kind 0 = fsgnj, 1 = fsgnjn, 2 = fsgnjx. Never sets flags. (Note: for S with a non-boxed input, the input reads as canonical NaN.)
///
/// Any other `kind` (never passed by the decoder) behaves as fsgnjx.
pub fn sign_inject(fmt: Fmt, a: u64, b: u64, kind: u8) -> u64 {
    let l = Layout::of(fmt);
    let (x, y) = (operand(fmt, a), operand(fmt, b));
    let sign = match kind {
        0 => y & l.sign,
        1 => !y & l.sign,
        _ => (x ^ y) & l.sign,
    };
    to_register(fmt, (x & !l.sign) | sign)
}

/// A comparison in either format; SoftFloat's eq is quiet, lt/le signalling,
/// exactly as feq/flt/fle require.
fn compare(
    fmt: Fmt,
    a: u64,
    b: u64,
    op32: fn(&F32, F32) -> bool,
    op64: fn(&F64, F64) -> bool,
) -> (u64, u8) {
    let (result, flags) = match fmt {
        Fmt::S => {
            let (x, y) = (f32_operand(a), f32_operand(b));
            with_flags(|| op32(&x, y))
        }
        Fmt::D => {
            let (x, y) = (f64_operand(a), f64_operand(b));
            with_flags(|| op64(&x, y))
        }
    };
    (u64::from(result), flags)
}

/// Comparisons return (result 0/1, flags). feq is quiet (NV only for sNaN); flt/fle are signalling (NV for any NaN).
pub fn feq(fmt: Fmt, a: u64, b: u64) -> (u64, u8) {
    compare(fmt, a, b, |x, y| x.eq(y), |x, y| x.eq(y))
}

/// flt.{s,d}: signalling less-than (NV for any NaN operand, result 0).
pub fn flt(fmt: Fmt, a: u64, b: u64) -> (u64, u8) {
    compare(fmt, a, b, |x, y| x.lt(y), |x, y| x.lt(y))
}

/// fle.{s,d}: signalling less-or-equal (NV for any NaN operand, result 0).
pub fn fle(fmt: Fmt, a: u64, b: u64) -> (u64, u8) {
    compare(fmt, a, b, |x, y| x.le(y), |x, y| x.le(y))
}

/// fclass: the 10-bit mask.
///
/// Bit 0: -inf, 1: negative normal, 2: negative subnormal, 3: -0, 4: +0,
/// 5: positive subnormal, 6: positive normal, 7: +inf, 8: signalling NaN,
/// 9: quiet NaN. Exactly one bit is set.
pub fn classify(fmt: Fmt, a: u64) -> u64 {
    let l = Layout::of(fmt);
    let x = operand(fmt, a);
    let negative = x & l.sign != 0;
    let exp = x & l.exp;
    let frac = x & l.frac;
    let bit = if exp == l.exp {
        if frac == 0 {
            if negative {
                0
            } else {
                7
            }
        } else if x & l.quiet == 0 {
            8
        } else {
            9
        }
    } else if exp == 0 {
        match (frac == 0, negative) {
            (true, true) => 3,
            (true, false) => 4,
            (false, true) => 2,
            (false, false) => 5,
        }
    } else if negative {
        1
    } else {
        6
    };
    1 << bit
}

/// fcvt.{w,wu,l,lu}.{s,d}: `signed` and `bits64` pick the integer type. Result bits are the integer value as it goes into an x register (32-bit results sign-extended to 64 bits, including for wu). Out of range / NaN saturates per the RISC-V table with NV.
///
/// Saturation: NaN and too-large values give the largest integer of the
/// type; too-small values (including any negative value that does not round
/// to 0 for the unsigned types) give the smallest. Only NV is raised then, not
/// NX. In-range inexact conversions raise NX.
pub fn to_int(fmt: Fmt, a: u64, rm: u8, signed: bool, bits64: bool) -> FpResult {
    let rnd = rounding(rm);
    let (bits, flags) = match fmt {
        Fmt::S => {
            let x = f32_operand(a);
            with_flags(|| match (signed, bits64) {
                (true, false) => i64::from(x.to_i32(rnd, true)) as u64,
                (false, false) => i64::from(x.to_u32(rnd, true) as i32) as u64,
                (true, true) => x.to_i64(rnd, true) as u64,
                (false, true) => x.to_u64(rnd, true),
            })
        }
        Fmt::D => {
            let x = f64_operand(a);
            with_flags(|| match (signed, bits64) {
                (true, false) => i64::from(x.to_i32(rnd, true)) as u64,
                (false, false) => i64::from(x.to_u32(rnd, true) as i32) as u64,
                (true, true) => x.to_i64(rnd, true) as u64,
                (false, true) => x.to_u64(rnd, true),
            })
        }
    };
    FpResult { bits, flags }
}

/// fcvt.{s,d}.{w,wu,l,lu}: `v` is the x register value; for 32-bit sources only the low 32 bits are used (signed or unsigned).
pub fn from_int(fmt: Fmt, v: u64, rm: u8, signed: bool, bits64: bool) -> FpResult {
    let rnd = rounding(rm);
    let low = v as u32;
    match fmt {
        Fmt::S => single_result(with_flags(|| match (signed, bits64) {
            (true, false) => F32::from_i32(low as i32, rnd),
            (false, false) => F32::from_u32(low, rnd),
            (true, true) => F32::from_i64(v as i64, rnd),
            (false, true) => F32::from_u64(v, rnd),
        })),
        Fmt::D => double_result(with_flags(|| match (signed, bits64) {
            (true, false) => F64::from_i32(low as i32, rnd),
            (false, false) => F64::from_u32(low, rnd),
            (true, true) => F64::from_i64(v as i64, rnd),
            (false, true) => F64::from_u64(v, rnd),
        })),
    }
}

/// fcvt.s.d (from D to S) and fcvt.d.s (from S to D).
///
/// `from == to` is not a RISC-V instruction; it returns the operand as read
/// (a non-boxed single reads as the canonical NaN) with no flags.
pub fn convert(from: Fmt, to: Fmt, a: u64, rm: u8) -> FpResult {
    let rnd = rounding(rm);
    match (from, to) {
        (Fmt::D, Fmt::S) => {
            let x = f64_operand(a);
            single_result(with_flags(|| x.to_f32(rnd)))
        }
        (Fmt::S, Fmt::D) => {
            let x = f32_operand(a);
            double_result(with_flags(|| x.to_f64(rnd)))
        }
        (fmt, _) => FpResult {
            bits: to_register(fmt, operand(fmt, a)),
            flags: 0,
        },
    }
}

#[cfg(test)]
mod tests {
    //! Expected values are derived by hand from the RISC-V unprivileged ISA
    //! (F and D chapters) and IEEE 754, not by running this code. Inputs are
    //! written as bit patterns or as host literals that are exactly
    //! representable.

    use super::*;

    const RNE: u8 = 0;
    const RTZ: u8 = 1;
    const RDN: u8 = 2;
    const RUP: u8 = 3;
    const RMM: u8 = 4;
    const MODES: [u8; 5] = [RNE, RTZ, RDN, RUP, RMM];

    const CNAN_S: u64 = 0xffff_ffff_7fc0_0000;
    const CNAN_D: u64 = 0x7ff8_0000_0000_0000;
    /// Boxed single quiet NaN with a payload and the sign bit set.
    const QNAN_S: u64 = 0xffff_ffff_ffc0_1234;
    /// Boxed single signalling NaN.
    const SNAN_S: u64 = 0xffff_ffff_7f80_0001;
    /// Double quiet NaN with a payload and the sign bit set.
    const QNAN_D: u64 = 0xfff8_0000_0000_1234;
    /// Double signalling NaN.
    const SNAN_D: u64 = 0x7ff0_0000_0000_0001;

    const INF_S: u64 = 0xffff_ffff_7f80_0000;
    const NINF_S: u64 = 0xffff_ffff_ff80_0000;
    const INF_D: u64 = 0x7ff0_0000_0000_0000;
    const NINF_D: u64 = 0xfff0_0000_0000_0000;
    const MAX_D: u64 = 0x7fef_ffff_ffff_ffff;
    const NMAX_D: u64 = 0xffef_ffff_ffff_ffff;
    const PZERO_D: u64 = 0;
    const NZERO_D: u64 = 0x8000_0000_0000_0000;
    const PZERO_S: u64 = 0xffff_ffff_0000_0000;
    const NZERO_S: u64 = 0xffff_ffff_8000_0000;
    const ONE_D: u64 = 0x3ff0_0000_0000_0000;
    /// 1 + 2^-52, the double after 1.
    const ONE_UP_D: u64 = 0x3ff0_0000_0000_0001;
    const NONE_D: u64 = 0xbff0_0000_0000_0000;
    const NONE_UP_D: u64 = 0xbff0_0000_0000_0001;

    fn s(x: f32) -> u64 {
        box_single(x.to_bits())
    }

    fn d(x: f64) -> u64 {
        x.to_bits()
    }

    /// 2^e as a double, built from its bits (normal range only).
    fn pow2(e: i32) -> f64 {
        f64::from_bits(((1023 + e) as u64) << 52)
    }

    fn r(bits: u64, flags: u8) -> FpResult {
        FpResult { bits, flags }
    }

    /// Check one operation in all five rounding modes.
    fn each_mode(op: impl Fn(u8) -> FpResult, expected: [u64; 5], flags: u8) {
        for (rm, want) in MODES.into_iter().zip(expected) {
            assert_eq!(op(rm), r(want, flags), "rm = {rm}");
        }
    }

    #[test]
    fn box_single_sets_upper_bits() {
        assert_eq!(box_single(0x3f80_0000), 0xffff_ffff_3f80_0000);
        assert_eq!(box_single(0), 0xffff_ffff_0000_0000);
    }

    #[test]
    fn single_results_are_nan_boxed() {
        assert_eq!(
            add(Fmt::S, s(1.0), s(2.0), RNE),
            r(0xffff_ffff_4040_0000, 0)
        );
        assert_eq!(sqrt(Fmt::S, s(4.0), RNE), r(s(2.0), 0));
        assert_eq!(from_int(Fmt::S, 0, RNE, true, false), r(PZERO_S, 0));
    }

    #[test]
    fn every_nan_result_is_the_canonical_nan() {
        // NaN operands with payloads and sign bits never propagate.
        assert_eq!(add(Fmt::S, QNAN_S, s(1.0), RNE), r(CNAN_S, 0));
        assert_eq!(mul(Fmt::S, s(1.0), QNAN_S, RNE), r(CNAN_S, 0));
        assert_eq!(add(Fmt::D, QNAN_D, d(1.0), RNE), r(CNAN_D, 0));
        assert_eq!(div(Fmt::D, QNAN_D, QNAN_D, RNE), r(CNAN_D, 0));
        assert_eq!(add(Fmt::D, SNAN_D, d(1.0), RNE), r(CNAN_D, NV));
        assert_eq!(sub(Fmt::S, SNAN_S, QNAN_S, RNE), r(CNAN_S, NV));
        // Invalid operations generate the canonical NaN.
        assert_eq!(sub(Fmt::S, INF_S, INF_S, RNE), r(CNAN_S, NV));
        assert_eq!(add(Fmt::D, INF_D, NINF_D, RNE), r(CNAN_D, NV));
        assert_eq!(mul(Fmt::D, PZERO_D, NINF_D, RNE), r(CNAN_D, NV));
        assert_eq!(mul(Fmt::S, INF_S, NZERO_S, RNE), r(CNAN_S, NV));
        assert_eq!(div(Fmt::D, INF_D, NINF_D, RNE), r(CNAN_D, NV));
        assert_eq!(
            fma(Fmt::D, QNAN_D, d(1.0), d(1.0), RNE, true, true),
            r(CNAN_D, 0)
        );
        assert_eq!(sqrt(Fmt::S, QNAN_S, RNE), r(CNAN_S, 0));
    }

    #[test]
    fn signalling_nan_raises_nv_and_quiet_nan_does_not() {
        type BinaryOp = fn(Fmt, u64, u64, u8) -> FpResult;
        let ops: [BinaryOp; 4] = [add, sub, mul, div];
        for op in ops {
            assert_eq!(op(Fmt::S, SNAN_S, s(2.0), RNE), r(CNAN_S, NV));
            assert_eq!(op(Fmt::S, s(2.0), SNAN_S, RNE), r(CNAN_S, NV));
            assert_eq!(op(Fmt::S, QNAN_S, s(2.0), RNE), r(CNAN_S, 0));
            assert_eq!(op(Fmt::S, s(2.0), QNAN_S, RNE), r(CNAN_S, 0));
            assert_eq!(op(Fmt::D, SNAN_D, d(2.0), RNE), r(CNAN_D, NV));
            assert_eq!(op(Fmt::D, d(2.0), SNAN_D, RNE), r(CNAN_D, NV));
            assert_eq!(op(Fmt::D, QNAN_D, d(2.0), RNE), r(CNAN_D, 0));
            assert_eq!(op(Fmt::D, d(2.0), QNAN_D, RNE), r(CNAN_D, 0));
        }
        assert_eq!(sqrt(Fmt::D, SNAN_D, RNE), r(CNAN_D, NV));
        assert_eq!(sqrt(Fmt::D, QNAN_D, RNE), r(CNAN_D, 0));
        assert_eq!(
            fma(Fmt::S, s(1.0), s(1.0), SNAN_S, RNE, false, false),
            r(CNAN_S, NV)
        );
        assert_eq!(
            fma(Fmt::S, s(1.0), s(1.0), QNAN_S, RNE, false, false),
            r(CNAN_S, 0)
        );
    }

    #[test]
    fn non_boxed_single_reads_as_canonical_nan() {
        let unboxed_one = 0x0000_0000_3f80_0000;
        let partly_boxed_one = 0xffff_fffe_3f80_0000;
        // A non-boxed sNaN pattern still reads as the canonical (quiet) NaN.
        let unboxed_snan = 0x0000_0000_7f80_0001;
        for x in [unboxed_one, partly_boxed_one, unboxed_snan] {
            assert_eq!(add(Fmt::S, x, s(1.0), RNE), r(CNAN_S, 0));
            assert_eq!(mul(Fmt::S, s(1.0), x, RNE), r(CNAN_S, 0));
            assert_eq!(sqrt(Fmt::S, x, RNE), r(CNAN_S, 0));
            assert_eq!(
                fma(Fmt::S, s(1.0), s(1.0), x, RNE, false, false),
                r(CNAN_S, 0)
            );
            assert_eq!(classify(Fmt::S, x), 1 << 9);
            assert_eq!(feq(Fmt::S, x, x), (0, 0));
            assert_eq!(flt(Fmt::S, x, s(1.0)), (0, NV));
            assert_eq!(fle(Fmt::S, s(1.0), x), (0, NV));
            assert_eq!(min(Fmt::S, x, s(2.0)), r(s(2.0), 0));
            assert_eq!(max(Fmt::S, s(2.0), x), r(s(2.0), 0));
            assert_eq!(convert(Fmt::S, Fmt::D, x, RNE), r(CNAN_D, 0));
            assert_eq!(to_int(Fmt::S, x, RNE, true, false), r(0x7fff_ffff, NV));
            assert_eq!(to_int(Fmt::S, x, RNE, false, true), r(u64::MAX, NV));
            // Sign injection: the non-boxed operand is the canonical NaN,
            // whose sign is 0.
            assert_eq!(sign_inject(Fmt::S, x, s(-1.0), 0), 0xffff_ffff_ffc0_0000);
            assert_eq!(sign_inject(Fmt::S, s(-2.0), x, 0), s(2.0));
            assert_eq!(sign_inject(Fmt::S, s(-2.0), x, 1), s(-2.0));
            assert_eq!(sign_inject(Fmt::S, s(-2.0), x, 2), s(-2.0));
        }
    }

    #[test]
    fn add_rounds_a_tie_per_mode() {
        // 1 + 2^-53 lies exactly halfway between 1 and 1 + 2^-52.
        each_mode(
            |rm| add(Fmt::D, ONE_D, d(pow2(-53)), rm),
            [ONE_D, ONE_D, ONE_D, ONE_UP_D, ONE_UP_D],
            NX,
        );
        each_mode(
            |rm| add(Fmt::D, NONE_D, d(-pow2(-53)), rm),
            [NONE_D, NONE_D, NONE_UP_D, NONE_D, NONE_UP_D],
            NX,
        );
        // (1 + 2^-52) + 2^-53: a tie whose even neighbour is the larger one.
        let two_up = 0x3ff0_0000_0000_0002;
        each_mode(
            |rm| add(Fmt::D, ONE_UP_D, d(pow2(-53)), rm),
            [two_up, ONE_UP_D, ONE_UP_D, two_up, two_up],
            NX,
        );
        // Single: 1 + 2^-24 is halfway between 1 and 1 + 2^-23.
        each_mode(
            |rm| add(Fmt::S, s(1.0), box_single(0x3380_0000), rm),
            [
                s(1.0),
                s(1.0),
                s(1.0),
                box_single(0x3f80_0001),
                box_single(0x3f80_0001),
            ],
            NX,
        );
    }

    #[test]
    fn add_rounds_non_ties_per_mode() {
        // 1 + 0.75 ulp and 1 + 0.25 ulp.
        each_mode(
            |rm| add(Fmt::D, ONE_D, d(1.5 * pow2(-53)), rm),
            [ONE_UP_D, ONE_D, ONE_D, ONE_UP_D, ONE_UP_D],
            NX,
        );
        each_mode(
            |rm| add(Fmt::D, ONE_D, d(pow2(-54)), rm),
            [ONE_D, ONE_D, ONE_D, ONE_UP_D, ONE_D],
            NX,
        );
        each_mode(
            |rm| sub(Fmt::D, NONE_D, d(pow2(-54)), rm),
            [NONE_D, NONE_D, NONE_UP_D, NONE_D, NONE_D],
            NX,
        );
    }

    #[test]
    fn exact_zero_sum_is_negative_only_when_rounding_down() {
        for rm in MODES {
            let zero = if rm == RDN { NZERO_D } else { PZERO_D };
            assert_eq!(add(Fmt::D, ONE_D, NONE_D, rm), r(zero, 0));
            assert_eq!(sub(Fmt::D, ONE_D, ONE_D, rm), r(zero, 0));
            assert_eq!(add(Fmt::D, PZERO_D, NZERO_D, rm), r(zero, 0));
            // -0 + -0 is -0 in every mode.
            assert_eq!(add(Fmt::D, NZERO_D, NZERO_D, rm), r(NZERO_D, 0));
            let zero_s = if rm == RDN { NZERO_S } else { PZERO_S };
            assert_eq!(sub(Fmt::S, s(3.0), s(3.0), rm), r(zero_s, 0));
        }
    }

    #[test]
    fn overflow_result_depends_on_rounding_mode() {
        each_mode(
            |rm| mul(Fmt::D, MAX_D, d(2.0), rm),
            [INF_D, MAX_D, MAX_D, INF_D, INF_D],
            OF | NX,
        );
        each_mode(
            |rm| mul(Fmt::D, NMAX_D, d(2.0), rm),
            [NINF_D, NMAX_D, NINF_D, NMAX_D, NINF_D],
            OF | NX,
        );
        let max_s = box_single(0x7f7f_ffff);
        each_mode(
            |rm| add(Fmt::S, max_s, max_s, rm),
            [INF_S, max_s, max_s, INF_S, INF_S],
            OF | NX,
        );
        // Overflowing to infinity is not a division by zero and not invalid.
        assert_eq!(mul(Fmt::D, INF_D, d(2.0), RNE), r(INF_D, 0));
    }

    #[test]
    fn exact_subnormal_result_does_not_raise_underflow() {
        let min_normal = box_single(0x0080_0000);
        assert_eq!(
            mul(Fmt::S, min_normal, s(0.5), RNE),
            r(box_single(0x0040_0000), 0)
        );
        assert_eq!(
            div(Fmt::D, d(pow2(-1022)), d(4.0), RNE),
            r(0x0004_0000_0000_0000, 0)
        );
    }

    #[test]
    fn inexact_subnormal_result_raises_underflow() {
        // (2^-126 + 2^-149) / 2 is halfway between two subnormals.
        let x = box_single(0x0080_0001);
        each_mode(
            |rm| mul(Fmt::S, x, s(0.5), rm),
            [
                box_single(0x0040_0000),
                box_single(0x0040_0000),
                box_single(0x0040_0000),
                box_single(0x0040_0001),
                box_single(0x0040_0001),
            ],
            UF | NX,
        );
        // The smallest subnormal halved: a tie between 0 and 2^-149.
        let tiny = 0x0000_0000_0000_0001;
        for (rm, want) in [(RNE, 0), (RTZ, 0), (RDN, 0), (RUP, 1), (RMM, 1)] {
            assert_eq!(mul(Fmt::D, tiny, d(0.5), rm), r(want, UF | NX));
        }
    }

    #[test]
    fn tininess_is_detected_after_rounding() {
        // a = 18631 * 2^-14 and b = 1801 * 2^-137 (a subnormal), so
        // a * b = (2^25 - 1) * 2^-151 = 2^-126 - 2^-151 exactly.
        // With an unbounded exponent that rounds (RNE/RUP/RMM) to 2^-126, so
        // the result is not tiny and RISC-V raises no UF; rounding down keeps
        // it below 2^-126 and then UF is raised.
        let a = box_single(0x3f91_8e00);
        let b = box_single(0x0070_9000);
        let min_normal = box_single(0x0080_0000);
        let max_subnormal = box_single(0x007f_ffff);
        assert_eq!(mul(Fmt::S, a, b, RNE), r(min_normal, NX));
        assert_eq!(mul(Fmt::S, a, b, RUP), r(min_normal, NX));
        assert_eq!(mul(Fmt::S, a, b, RMM), r(min_normal, NX));
        assert_eq!(mul(Fmt::S, a, b, RTZ), r(max_subnormal, UF | NX));
        assert_eq!(mul(Fmt::S, a, b, RDN), r(max_subnormal, UF | NX));
        // The same value as a double, narrowed by fcvt.s.d.
        let v = 0x380f_ffff_f000_0000;
        assert_eq!(convert(Fmt::D, Fmt::S, v, RNE), r(min_normal, NX));
        assert_eq!(convert(Fmt::D, Fmt::S, v, RTZ), r(max_subnormal, UF | NX));
    }

    #[test]
    fn division_by_zero_and_invalid_division() {
        assert_eq!(div(Fmt::D, ONE_D, PZERO_D, RNE), r(INF_D, DZ));
        assert_eq!(div(Fmt::D, NONE_D, PZERO_D, RNE), r(NINF_D, DZ));
        assert_eq!(div(Fmt::D, ONE_D, NZERO_D, RNE), r(NINF_D, DZ));
        assert_eq!(div(Fmt::S, s(1.0), PZERO_S, RTZ), r(INF_S, DZ));
        assert_eq!(div(Fmt::S, PZERO_S, PZERO_S, RNE), r(CNAN_S, NV));
        assert_eq!(div(Fmt::D, NZERO_D, PZERO_D, RNE), r(CNAN_D, NV));
        assert_eq!(div(Fmt::D, INF_D, INF_D, RNE), r(CNAN_D, NV));
        // An infinite dividend is not a division by zero.
        assert_eq!(div(Fmt::D, INF_D, PZERO_D, RNE), r(INF_D, 0));
        assert_eq!(div(Fmt::D, PZERO_D, INF_D, RNE), r(PZERO_D, 0));
        assert_eq!(div(Fmt::D, d(1.0), d(3.0), RNE).flags, NX);
    }

    #[test]
    fn sqrt_special_cases_and_rounding() {
        assert_eq!(sqrt(Fmt::D, NONE_D, RNE), r(CNAN_D, NV));
        assert_eq!(sqrt(Fmt::S, s(-1.0), RNE), r(CNAN_S, NV));
        assert_eq!(sqrt(Fmt::D, NINF_D, RNE), r(CNAN_D, NV));
        assert_eq!(sqrt(Fmt::D, 0x8000_0000_0000_0001, RNE), r(CNAN_D, NV));
        assert_eq!(sqrt(Fmt::D, NZERO_D, RNE), r(NZERO_D, 0));
        assert_eq!(sqrt(Fmt::S, NZERO_S, RNE), r(NZERO_S, 0));
        assert_eq!(sqrt(Fmt::D, INF_D, RNE), r(INF_D, 0));
        assert_eq!(sqrt(Fmt::D, d(4.0), RNE), r(d(2.0), 0));
        // sqrt(2) = 1.41421356237309504880..., between 0x3ff6a09e667f3bcc
        // (1.41421356237309492...) and 0x3ff6a09e667f3bcd (1.41421356237309514...),
        // nearer the upper one.
        let (lo, hi) = (0x3ff6_a09e_667f_3bcc, 0x3ff6_a09e_667f_3bcd);
        each_mode(|rm| sqrt(Fmt::D, d(2.0), rm), [hi, lo, lo, hi, hi], NX);
    }

    #[test]
    fn fma_inf_times_zero_plus_quiet_nan_raises_nv() {
        assert_eq!(
            fma(Fmt::D, INF_D, PZERO_D, QNAN_D, RNE, false, false),
            r(CNAN_D, NV)
        );
        assert_eq!(
            fma(Fmt::D, NZERO_D, INF_D, CNAN_D, RNE, true, true),
            r(CNAN_D, NV)
        );
        assert_eq!(
            fma(Fmt::S, INF_S, PZERO_S, QNAN_S, RNE, false, false),
            r(CNAN_S, NV)
        );
        assert_eq!(
            fma(Fmt::S, PZERO_S, NINF_S, SNAN_S, RNE, false, false),
            r(CNAN_S, NV)
        );
        // inf * 1 - inf is invalid too.
        assert_eq!(
            fma(Fmt::D, INF_D, ONE_D, INF_D, RNE, false, true),
            r(CNAN_D, NV)
        );
        // ... while inf * 1 + qNaN is just the canonical NaN.
        assert_eq!(
            fma(Fmt::D, INF_D, ONE_D, QNAN_D, RNE, false, false),
            r(CNAN_D, 0)
        );
    }

    #[test]
    fn fma_rounds_once_and_applies_negations() {
        // (1 + 2^-30)(1 - 2^-30) = 1 - 2^-60 exactly; a separate multiply
        // would round that to 1.
        let a = d(1.0 + pow2(-30));
        let b = d(1.0 - pow2(-30));
        let tiny = d(pow2(-60));
        let neg_tiny = d(-pow2(-60));
        assert_eq!(fma(Fmt::D, a, b, NONE_D, RNE, false, false), r(neg_tiny, 0));
        assert_eq!(fma(Fmt::D, a, b, ONE_D, RNE, false, true), r(neg_tiny, 0));
        assert_eq!(fma(Fmt::D, a, b, ONE_D, RNE, true, false), r(tiny, 0));
        assert_eq!(fma(Fmt::D, a, b, NONE_D, RNE, true, true), r(tiny, 0));
        // -(1 - 2^-60) - 1 = -2 + 2^-60, which rounds to -2 (or toward zero).
        assert_eq!(fma(Fmt::D, a, b, ONE_D, RNE, true, true), r(d(-2.0), NX));
        assert_eq!(
            fma(Fmt::D, a, b, ONE_D, RTZ, true, true),
            r(0xbfff_ffff_ffff_ffff, NX)
        );
        assert_eq!(mul(Fmt::D, a, b, RNE), r(ONE_D, NX));
        // Single: (1 + 2^-12)(1 - 2^-12) - 1 = -2^-24.
        let a = s(1.0 + 2f32.powi(-12));
        let b = s(1.0 - 2f32.powi(-12));
        assert_eq!(
            fma(Fmt::S, a, b, s(-1.0), RNE, false, false),
            r(s(-(2f32.powi(-24))), 0)
        );
    }

    #[test]
    fn fma_exact_zero_signs() {
        // +0*1 + -0 = +0 (RNE), -0 (RDN).
        assert_eq!(
            fma(Fmt::D, PZERO_D, ONE_D, NZERO_D, RNE, false, false),
            r(PZERO_D, 0)
        );
        assert_eq!(
            fma(Fmt::D, PZERO_D, ONE_D, NZERO_D, RDN, false, false),
            r(NZERO_D, 0)
        );
        // fnmadd: -(+0*1) - (+0) = -0 + -0 = -0 in every mode.
        for rm in MODES {
            assert_eq!(
                fma(Fmt::D, PZERO_D, ONE_D, PZERO_D, rm, true, true),
                r(NZERO_D, 0)
            );
            assert_eq!(
                fma(Fmt::S, PZERO_S, s(1.0), PZERO_S, rm, true, true),
                r(NZERO_S, 0)
            );
        }
        // fmsub: +0*1 - +0 = +0 except when rounding down.
        assert_eq!(
            fma(Fmt::D, PZERO_D, ONE_D, PZERO_D, RNE, false, true),
            r(PZERO_D, 0)
        );
        assert_eq!(
            fma(Fmt::D, PZERO_D, ONE_D, PZERO_D, RDN, false, true),
            r(NZERO_D, 0)
        );
        // x*y - x*y with a nonzero exact product: +0 except RDN.
        assert_eq!(
            fma(Fmt::D, d(3.0), d(5.0), d(15.0), RNE, false, true),
            r(PZERO_D, 0)
        );
        assert_eq!(
            fma(Fmt::D, d(3.0), d(5.0), d(15.0), RDN, false, true),
            r(NZERO_D, 0)
        );
    }

    #[test]
    fn fmin_fmax_order_negative_zero_below_positive_zero() {
        assert_eq!(min(Fmt::D, NZERO_D, PZERO_D), r(NZERO_D, 0));
        assert_eq!(min(Fmt::D, PZERO_D, NZERO_D), r(NZERO_D, 0));
        assert_eq!(max(Fmt::D, NZERO_D, PZERO_D), r(PZERO_D, 0));
        assert_eq!(max(Fmt::D, PZERO_D, NZERO_D), r(PZERO_D, 0));
        assert_eq!(min(Fmt::S, PZERO_S, NZERO_S), r(NZERO_S, 0));
        assert_eq!(max(Fmt::S, NZERO_S, PZERO_S), r(PZERO_S, 0));
    }

    #[test]
    fn fmin_fmax_with_one_nan_return_the_other_operand() {
        for (nan, flags) in [(SNAN_D, NV), (QNAN_D, 0)] {
            assert_eq!(min(Fmt::D, nan, d(1.0)), r(d(1.0), flags));
            assert_eq!(min(Fmt::D, d(1.0), nan), r(d(1.0), flags));
            assert_eq!(max(Fmt::D, nan, d(-1.0)), r(d(-1.0), flags));
            assert_eq!(max(Fmt::D, NINF_D, nan), r(NINF_D, flags));
        }
        for (nan, flags) in [(SNAN_S, NV), (QNAN_S, 0)] {
            assert_eq!(min(Fmt::S, nan, s(1.0)), r(s(1.0), flags));
            assert_eq!(max(Fmt::S, s(-3.0), nan), r(s(-3.0), flags));
        }
    }

    #[test]
    fn fmin_fmax_with_two_nans_return_canonical_nan() {
        assert_eq!(min(Fmt::D, QNAN_D, QNAN_D), r(CNAN_D, 0));
        assert_eq!(max(Fmt::D, QNAN_D, SNAN_D), r(CNAN_D, NV));
        assert_eq!(min(Fmt::D, SNAN_D, SNAN_D), r(CNAN_D, NV));
        assert_eq!(min(Fmt::S, QNAN_S, QNAN_S), r(CNAN_S, 0));
        assert_eq!(max(Fmt::S, SNAN_S, QNAN_S), r(CNAN_S, NV));
    }

    #[test]
    fn fmin_fmax_order_numbers() {
        let cases = [
            (d(-3.0), d(2.0)),
            (d(-3.0), d(-2.0)),
            (d(2.0), d(3.0)),
            (NINF_D, NMAX_D),
            (MAX_D, INF_D),
            (PZERO_D, 1),
            (0x8000_0000_0000_0001, NZERO_D),
            (d(1.0), d(1.0)),
        ];
        for (lo, hi) in cases {
            assert_eq!(min(Fmt::D, lo, hi), r(lo, 0));
            assert_eq!(min(Fmt::D, hi, lo), r(lo, 0));
            assert_eq!(max(Fmt::D, lo, hi), r(hi, 0));
            assert_eq!(max(Fmt::D, hi, lo), r(hi, 0));
        }
        assert_eq!(min(Fmt::S, s(-1.5), s(1.0)), r(s(-1.5), 0));
        assert_eq!(max(Fmt::S, s(-1.5), s(1.0)), r(s(1.0), 0));
        assert_eq!(max(Fmt::S, NINF_S, INF_S), r(INF_S, 0));
    }

    #[test]
    fn sign_injection_variants() {
        assert_eq!(sign_inject(Fmt::D, d(1.0), d(-2.0), 0), d(-1.0));
        assert_eq!(sign_inject(Fmt::D, d(-1.0), d(2.0), 0), d(1.0));
        assert_eq!(sign_inject(Fmt::D, d(1.0), d(-2.0), 1), d(1.0));
        assert_eq!(sign_inject(Fmt::D, d(1.0), d(2.0), 1), d(-1.0));
        assert_eq!(sign_inject(Fmt::D, d(-1.0), d(-2.0), 2), d(1.0));
        assert_eq!(sign_inject(Fmt::D, d(-1.0), d(2.0), 2), d(-1.0));
        assert_eq!(sign_inject(Fmt::S, s(1.0), s(-2.0), 0), s(-1.0));
        assert_eq!(sign_inject(Fmt::S, s(-1.0), s(-2.0), 1), s(1.0));
        assert_eq!(sign_inject(Fmt::S, s(-1.0), s(-2.0), 2), s(1.0));
        // NaNs are not canonicalized: the payload (and signalling-ness) stays.
        assert_eq!(
            sign_inject(Fmt::D, SNAN_D, SNAN_D, 1),
            0xfff0_0000_0000_0001
        );
        assert_eq!(
            sign_inject(Fmt::S, SNAN_S, s(-1.0), 0),
            0xffff_ffff_ff80_0001
        );
        assert_eq!(
            sign_inject(Fmt::S, QNAN_S, QNAN_S, 2),
            0xffff_ffff_7fc0_1234
        );
    }

    #[test]
    fn feq_is_quiet_and_flt_fle_are_signalling() {
        assert_eq!(feq(Fmt::D, d(1.0), d(1.0)), (1, 0));
        assert_eq!(feq(Fmt::D, d(1.0), d(2.0)), (0, 0));
        assert_eq!(feq(Fmt::D, NZERO_D, PZERO_D), (1, 0));
        assert_eq!(feq(Fmt::D, QNAN_D, d(1.0)), (0, 0));
        assert_eq!(feq(Fmt::D, QNAN_D, QNAN_D), (0, 0));
        assert_eq!(feq(Fmt::D, SNAN_D, d(1.0)), (0, NV));
        assert_eq!(feq(Fmt::S, s(1.0), SNAN_S), (0, NV));
        assert_eq!(feq(Fmt::S, QNAN_S, s(1.0)), (0, 0));

        assert_eq!(flt(Fmt::D, d(1.0), d(2.0)), (1, 0));
        assert_eq!(flt(Fmt::D, d(2.0), d(1.0)), (0, 0));
        assert_eq!(flt(Fmt::D, d(1.0), d(1.0)), (0, 0));
        assert_eq!(flt(Fmt::D, NZERO_D, PZERO_D), (0, 0));
        assert_eq!(flt(Fmt::D, NINF_D, INF_D), (1, 0));
        assert_eq!(flt(Fmt::D, QNAN_D, d(1.0)), (0, NV));
        assert_eq!(flt(Fmt::S, s(1.0), QNAN_S), (0, NV));
        assert_eq!(flt(Fmt::S, SNAN_S, s(1.0)), (0, NV));

        assert_eq!(fle(Fmt::D, d(1.0), d(1.0)), (1, 0));
        assert_eq!(fle(Fmt::D, d(2.0), d(1.0)), (0, 0));
        assert_eq!(fle(Fmt::D, NZERO_D, PZERO_D), (1, 0));
        assert_eq!(fle(Fmt::D, PZERO_D, NZERO_D), (1, 0));
        assert_eq!(fle(Fmt::D, QNAN_D, QNAN_D), (0, NV));
        assert_eq!(fle(Fmt::S, s(-1.0), s(1.0)), (1, 0));
        assert_eq!(fle(Fmt::S, QNAN_S, s(1.0)), (0, NV));
    }

    #[test]
    fn classify_every_class() {
        let singles: [(u32, u32); 14] = [
            (0xff80_0000, 0), // -inf
            (0xbf80_0000, 1), // -1
            (0xff7f_ffff, 1), // -max
            (0x8000_0001, 2), // -min subnormal
            (0x807f_ffff, 2), // -max subnormal
            (0x8000_0000, 3), // -0
            (0x0000_0000, 4), // +0
            (0x0000_0001, 5), // +min subnormal
            (0x0080_0000, 6), // +min normal
            (0x7f80_0000, 7), // +inf
            (0x7f80_0001, 8), // sNaN
            (0xffbf_ffff, 8), // negative sNaN
            (0x7fc0_0000, 9), // canonical qNaN
            (0xffc0_0001, 9), // negative qNaN
        ];
        for (bits, class) in singles {
            assert_eq!(classify(Fmt::S, box_single(bits)), 1 << class, "{bits:#x}");
        }
        let doubles: [(u64, u32); 14] = [
            (0xfff0_0000_0000_0000, 0),
            (0xbff0_0000_0000_0000, 1),
            (0x8010_0000_0000_0000, 1),
            (0x8000_0000_0000_0001, 2),
            (0x800f_ffff_ffff_ffff, 2),
            (0x8000_0000_0000_0000, 3),
            (0x0000_0000_0000_0000, 4),
            (0x0000_0000_0000_0001, 5),
            (0x7fef_ffff_ffff_ffff, 6),
            (0x7ff0_0000_0000_0000, 7),
            (0x7ff0_0000_0000_0001, 8),
            (0xfff7_ffff_ffff_ffff, 8),
            (0x7ff8_0000_0000_0000, 9),
            (0xffff_ffff_ffff_ffff, 9),
        ];
        for (bits, class) in doubles {
            assert_eq!(classify(Fmt::D, bits), 1 << class, "{bits:#x}");
        }
    }

    #[test]
    fn to_int_rounds_halves_per_mode() {
        let m2 = (-2i64) as u64;
        let m3 = (-3i64) as u64;
        for (signed, bits64) in [(true, false), (true, true)] {
            each_mode(
                |rm| to_int(Fmt::S, s(2.5), rm, signed, bits64),
                [2, 2, 2, 3, 3],
                NX,
            );
            each_mode(
                |rm| to_int(Fmt::D, d(2.5), rm, signed, bits64),
                [2, 2, 2, 3, 3],
                NX,
            );
            each_mode(
                |rm| to_int(Fmt::S, s(-2.5), rm, signed, bits64),
                [m2, m2, m3, m2, m3],
                NX,
            );
            each_mode(
                |rm| to_int(Fmt::D, d(-2.5), rm, signed, bits64),
                [m2, m2, m3, m2, m3],
                NX,
            );
            each_mode(
                |rm| to_int(Fmt::D, d(3.5), rm, signed, bits64),
                [4, 3, 3, 4, 4],
                NX,
            );
            each_mode(
                |rm| to_int(Fmt::D, d(0.5), rm, signed, bits64),
                [0, 0, 0, 1, 1],
                NX,
            );
            each_mode(
                |rm| to_int(Fmt::D, d(-0.5), rm, signed, bits64),
                [0, 0, u64::MAX, 0, u64::MAX],
                NX,
            );
            each_mode(|rm| to_int(Fmt::S, s(7.0), rm, signed, bits64), [7; 5], 0);
        }
        each_mode(
            |rm| to_int(Fmt::S, s(2.5), rm, false, false),
            [2, 2, 2, 3, 3],
            NX,
        );
        each_mode(
            |rm| to_int(Fmt::D, d(2.5), rm, false, true),
            [2, 2, 2, 3, 3],
            NX,
        );
    }

    #[test]
    fn fcvt_w_s_saturates_with_nv() {
        let int_max = 0x7fff_ffff;
        let int_min = 0xffff_ffff_8000_0000;
        let w = |x: u64| to_int(Fmt::S, x, RTZ, true, false);
        assert_eq!(w(CNAN_S), r(int_max, NV));
        assert_eq!(w(QNAN_S), r(int_max, NV)); // a negative NaN still gives the maximum
        assert_eq!(w(SNAN_S), r(int_max, NV));
        assert_eq!(w(INF_S), r(int_max, NV));
        assert_eq!(w(NINF_S), r(int_min, NV));
        assert_eq!(w(s(2147483648.0)), r(int_max, NV)); // 2^31
        assert_eq!(w(s(3.0e9)), r(int_max, NV));
        assert_eq!(w(s(-3.0e9)), r(int_min, NV));
        assert_eq!(w(s(-2147483648.0)), r(int_min, 0)); // -2^31 fits
        assert_eq!(w(s(2147483520.0)), r(0x7fff_ff80, 0)); // largest single below 2^31
        for rm in MODES {
            assert_eq!(to_int(Fmt::S, INF_S, rm, true, false), r(int_max, NV));
        }
    }

    #[test]
    fn fcvt_wu_s_of_negative_values() {
        let wu = |x: u64, rm: u8| to_int(Fmt::S, x, rm, false, false);
        // -0.5 rounds to 0 in RTZ, RNE and RUP: only inexact.
        assert_eq!(wu(s(-0.5), RTZ), r(0, NX));
        assert_eq!(wu(s(-0.5), RNE), r(0, NX));
        assert_eq!(wu(s(-0.5), RUP), r(0, NX));
        // ... and to -1 in RDN and RMM: invalid, saturating to 0.
        assert_eq!(wu(s(-0.5), RDN), r(0, NV));
        assert_eq!(wu(s(-0.5), RMM), r(0, NV));
        assert_eq!(wu(s(-1.0), RTZ), r(0, NV));
        assert_eq!(wu(NINF_S, RTZ), r(0, NV));
        assert_eq!(wu(NZERO_S, RTZ), r(0, 0));
        // Upper saturation (2^32 - 1) is sign-extended like every 32-bit result.
        assert_eq!(wu(CNAN_S, RTZ), r(u64::MAX, NV));
        assert_eq!(wu(INF_S, RTZ), r(u64::MAX, NV));
        assert_eq!(wu(s(4294967296.0), RTZ), r(u64::MAX, NV));
        // 3e9 = 0xb2d05e00 fits in 32 unsigned bits and is sign-extended.
        assert_eq!(wu(s(3.0e9), RTZ), r(0xffff_ffff_b2d0_5e00, 0));
        assert_eq!(wu(s(1.0), RTZ), r(1, 0));
    }

    #[test]
    fn fcvt_w_d_result_is_sign_extended() {
        let w = |x: f64, rm: u8| to_int(Fmt::D, d(x), rm, true, false);
        let wu = |x: f64, rm: u8| to_int(Fmt::D, d(x), rm, false, false);
        assert_eq!(w(-1.0, RNE), r(u64::MAX, 0));
        assert_eq!(w(-5.0, RNE), r(0xffff_ffff_ffff_fffb, 0));
        assert_eq!(w(-2147483648.0, RNE), r(0xffff_ffff_8000_0000, 0));
        assert_eq!(w(2147483647.0, RNE), r(0x7fff_ffff, 0));
        assert_eq!(wu(4294967295.0, RNE), r(u64::MAX, 0));
        assert_eq!(wu(2147483648.0, RNE), r(0xffff_ffff_8000_0000, 0));
        assert_eq!(wu(4294967296.0, RNE), r(u64::MAX, NV));
        // Just outside the range, saturation depends on the rounded value.
        assert_eq!(w(-2147483648.5, RTZ), r(0xffff_ffff_8000_0000, NX));
        assert_eq!(w(-2147483648.5, RDN), r(0xffff_ffff_8000_0000, NV));
        assert_eq!(w(2147483647.5, RTZ), r(0x7fff_ffff, NX));
        assert_eq!(w(2147483647.5, RNE), r(0x7fff_ffff, NV));
        assert_eq!(wu(4294967295.5, RTZ), r(u64::MAX, NX));
        assert_eq!(wu(4294967295.5, RUP), r(u64::MAX, NV));
    }

    #[test]
    fn fcvt_to_64_bit_integers_saturate() {
        let l = |fmt, x, rm| to_int(fmt, x, rm, true, true);
        let lu = |fmt, x, rm| to_int(fmt, x, rm, false, true);
        assert_eq!(l(Fmt::S, CNAN_S, RNE), r(i64::MAX as u64, NV));
        assert_eq!(l(Fmt::S, NINF_S, RNE), r(i64::MIN as u64, NV));
        assert_eq!(l(Fmt::D, SNAN_D, RNE), r(i64::MAX as u64, NV));
        assert_eq!(l(Fmt::D, d(pow2(63)), RNE), r(i64::MAX as u64, NV));
        assert_eq!(l(Fmt::D, d(-pow2(63)), RNE), r(i64::MIN as u64, 0));
        assert_eq!(l(Fmt::D, d(-1.0), RNE), r(u64::MAX, 0));
        assert_eq!(lu(Fmt::S, CNAN_S, RNE), r(u64::MAX, NV));
        assert_eq!(lu(Fmt::S, NINF_S, RNE), r(0, NV));
        assert_eq!(lu(Fmt::D, d(-1.0), RNE), r(0, NV));
        assert_eq!(lu(Fmt::D, d(-0.25), RNE), r(0, NX));
        assert_eq!(lu(Fmt::D, d(pow2(64)), RNE), r(u64::MAX, NV));
        // 2^64 - 2^11, the largest double below 2^64.
        assert_eq!(
            lu(Fmt::D, 0x43ef_ffff_ffff_ffff, RNE),
            r(0xffff_ffff_ffff_f800, 0)
        );
    }

    #[test]
    fn from_int_rounding_and_source_width() {
        // 2^24 + 1 is halfway between 2^24 and 2^24 + 2.
        each_mode(
            |rm| from_int(Fmt::S, 16_777_217, rm, true, false),
            [
                box_single(0x4b80_0000),
                box_single(0x4b80_0000),
                box_single(0x4b80_0000),
                box_single(0x4b80_0001),
                box_single(0x4b80_0001),
            ],
            NX,
        );
        let neg = (-16_777_217i64) as u64;
        assert_eq!(
            from_int(Fmt::S, neg, RDN, true, true),
            r(box_single(0xcb80_0001), NX)
        );
        assert_eq!(
            from_int(Fmt::S, neg, RUP, true, true),
            r(box_single(0xcb80_0000), NX)
        );
        // 32-bit sources use only the low 32 bits.
        assert_eq!(
            from_int(Fmt::S, 0x1234_5678_ffff_ffff, RNE, true, false),
            r(s(-1.0), 0)
        );
        assert_eq!(
            from_int(Fmt::D, 0x1_0000_0005, RNE, true, false),
            r(d(5.0), 0)
        );
        assert_eq!(
            from_int(Fmt::D, 0x8000_0000, RNE, false, false),
            r(0x41e0_0000_0000_0000, 0)
        );
        assert_eq!(
            from_int(Fmt::D, 0x8000_0000, RNE, true, false),
            r(0xc1e0_0000_0000_0000, 0)
        );
        // fcvt.s.wu of 2^32 - 1.
        assert_eq!(
            from_int(Fmt::S, u64::MAX, RNE, false, false),
            r(box_single(0x4f80_0000), NX)
        );
        assert_eq!(
            from_int(Fmt::S, u64::MAX, RTZ, false, false),
            r(box_single(0x4f7f_ffff), NX)
        );
        // 64-bit sources.
        assert_eq!(
            from_int(Fmt::D, i64::MIN as u64, RNE, true, true),
            r(0xc3e0_0000_0000_0000, 0)
        );
        assert_eq!(from_int(Fmt::D, u64::MAX, RNE, true, true), r(d(-1.0), 0));
        assert_eq!(
            from_int(Fmt::D, u64::MAX, RNE, false, true),
            r(0x43f0_0000_0000_0000, NX)
        );
        assert_eq!(
            from_int(Fmt::D, u64::MAX, RTZ, false, true),
            r(0x43ef_ffff_ffff_ffff, NX)
        );
        // Integer zero converts to +0 even when rounding down.
        assert_eq!(from_int(Fmt::D, 0, RDN, true, true), r(PZERO_D, 0));
        assert_eq!(from_int(Fmt::S, 0, RDN, false, false), r(PZERO_S, 0));
    }

    #[test]
    fn fcvt_s_d_overflow_and_underflow() {
        let max_s = box_single(0x7f7f_ffff);
        let nmax_s = box_single(0xff7f_ffff);
        each_mode(
            |rm| convert(Fmt::D, Fmt::S, d(1e300), rm),
            [INF_S, max_s, max_s, INF_S, INF_S],
            OF | NX,
        );
        each_mode(
            |rm| convert(Fmt::D, Fmt::S, d(-1e300), rm),
            [NINF_S, nmax_s, NINF_S, nmax_s, NINF_S],
            OF | NX,
        );
        let min_sub = box_single(1);
        each_mode(
            |rm| convert(Fmt::D, Fmt::S, d(1e-300), rm),
            [PZERO_S, PZERO_S, PZERO_S, min_sub, PZERO_S],
            UF | NX,
        );
        let nmin_sub = box_single(0x8000_0001);
        each_mode(
            |rm| convert(Fmt::D, Fmt::S, d(-1e-300), rm),
            [NZERO_S, NZERO_S, nmin_sub, NZERO_S, NZERO_S],
            UF | NX,
        );
        // Infinity converts exactly.
        assert_eq!(convert(Fmt::D, Fmt::S, NINF_D, RNE), r(NINF_S, 0));
    }

    #[test]
    fn fcvt_s_d_rounding_and_nans() {
        // 1 + 2^-24 is halfway between 1 and 1 + 2^-23.
        let up = box_single(0x3f80_0001);
        each_mode(
            |rm| convert(Fmt::D, Fmt::S, 0x3ff0_0000_1000_0000, rm),
            [s(1.0), s(1.0), s(1.0), up, up],
            NX,
        );
        assert_eq!(convert(Fmt::D, Fmt::S, SNAN_D, RNE), r(CNAN_S, NV));
        assert_eq!(convert(Fmt::D, Fmt::S, QNAN_D, RNE), r(CNAN_S, 0));
        assert_eq!(convert(Fmt::D, Fmt::S, d(1.5), RNE), r(s(1.5), 0));
    }

    #[test]
    fn fcvt_d_s_is_exact_and_canonicalizes_nans() {
        assert_eq!(convert(Fmt::S, Fmt::D, s(1.5), RNE), r(d(1.5), 0));
        assert_eq!(convert(Fmt::S, Fmt::D, NZERO_S, RNE), r(NZERO_D, 0));
        assert_eq!(convert(Fmt::S, Fmt::D, NINF_S, RNE), r(NINF_D, 0));
        // 2^-149, the smallest single subnormal, is a normal double.
        assert_eq!(
            convert(Fmt::S, Fmt::D, box_single(1), RNE),
            r(0x36a0_0000_0000_0000, 0)
        );
        assert_eq!(convert(Fmt::S, Fmt::D, SNAN_S, RNE), r(CNAN_D, NV));
        assert_eq!(convert(Fmt::S, Fmt::D, QNAN_S, RNE), r(CNAN_D, 0));
    }

    #[test]
    fn no_state_leaks_between_operations() {
        assert_eq!(div(Fmt::D, ONE_D, PZERO_D, RNE).flags, DZ);
        assert_eq!(add(Fmt::D, ONE_D, ONE_D, RNE), r(d(2.0), 0));
        assert_eq!(add(Fmt::D, ONE_D, d(pow2(-53)), RUP), r(ONE_UP_D, NX));
        assert_eq!(add(Fmt::D, ONE_D, d(pow2(-53)), RNE), r(ONE_D, NX));
        assert_eq!(sqrt(Fmt::D, NONE_D, RNE).flags, NV);
        assert_eq!(feq(Fmt::D, ONE_D, ONE_D), (1, 0));
        assert_eq!(to_int(Fmt::D, d(2.5), RUP, true, true), r(3, NX));
        assert_eq!(to_int(Fmt::D, d(2.5), RNE, true, true), r(2, NX));
        assert_eq!(convert(Fmt::D, Fmt::S, d(1e300), RTZ).flags, OF | NX);
        assert_eq!(convert(Fmt::S, Fmt::D, s(1.0), RNE), r(ONE_D, 0));
        // Flags are per thread: another thread starts clean too.
        std::thread::spawn(|| assert_eq!(add(Fmt::S, s(1.0), s(1.0), RNE), r(s(2.0), 0)))
            .join()
            .unwrap();
    }

    #[test]
    fn same_format_convert_returns_the_operand() {
        assert_eq!(convert(Fmt::D, Fmt::D, SNAN_D, RNE), r(SNAN_D, 0));
        assert_eq!(convert(Fmt::S, Fmt::S, 0x3f80_0000, RNE), r(CNAN_S, 0));
    }

    #[test]
    fn never_panics_on_any_input() {
        let mut values = vec![
            0,
            1,
            u64::MAX,
            CNAN_S,
            CNAN_D,
            QNAN_S,
            SNAN_S,
            QNAN_D,
            SNAN_D,
            INF_S,
            NINF_S,
            INF_D,
            NINF_D,
            MAX_D,
            NMAX_D,
            NZERO_D,
            NZERO_S,
            PZERO_S,
            ONE_D,
            0x3f80_0000,
        ];
        // A few pseudo-random patterns (xorshift), boxed and not.
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..40 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x);
            values.push(box_single(x as u32));
        }
        for fmt in [Fmt::S, Fmt::D] {
            for &a in &values {
                let _ = classify(fmt, a);
                for rm in 0..=7 {
                    let _ = sqrt(fmt, a, rm);
                    for signed in [false, true] {
                        for bits64 in [false, true] {
                            let _ = to_int(fmt, a, rm, signed, bits64);
                            let _ = from_int(fmt, a, rm, signed, bits64);
                        }
                    }
                    for to in [Fmt::S, Fmt::D] {
                        let _ = convert(fmt, to, a, rm);
                    }
                }
                for &b in values.iter().step_by(3) {
                    let _ = (min(fmt, a, b), max(fmt, a, b));
                    let _ = (feq(fmt, a, b), flt(fmt, a, b), fle(fmt, a, b));
                    for kind in 0..=3 {
                        let _ = sign_inject(fmt, a, b, kind);
                    }
                    for rm in [0, 3, 6] {
                        let _ = (add(fmt, a, b, rm), sub(fmt, a, b, rm));
                        let _ = (mul(fmt, a, b, rm), div(fmt, a, b, rm));
                        for c in [0, ONE_D, SNAN_S, u64::MAX] {
                            let _ = fma(fmt, a, b, c, rm, rm == 3, rm == 6);
                        }
                    }
                }
            }
        }
    }
}
