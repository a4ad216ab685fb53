//! F and D instructions in translated code.
//!
//! Loads and stores are written out (the TLB fast path of integer ones,
//! with the FS check and NaN boxing). The arithmetic is SoftFloat's, in a
//! helper (the interpreter's own code), except where the host's SSE gives
//! the same bits and flags without doubt, as QEMU's "hardfloat" does:
//! - the rounding mode is round-to-nearest-even (the host's, which Rust
//!   code never changes);
//! - every operand is zero or normal (and a single properly NaN-boxed):
//!   so no NaN propagation, no infinities, no invalid operation from
//!   them, no subnormal inputs;
//! - the result is normal and above the smallest normal: so no overflow,
//!   no underflow, whatever the side of rounding either detects tininess
//!   on (RISC-V after rounding, x86 before), and no NaN (0/0, the root of
//!   a negative);
//! - fflags.NX is already set, so the one flag left that the operation
//!   could raise (inexact) changes nothing. Programs set it early and
//!   rarely clear it.
//!
//! Anything else goes to the helper, which then does it all again.

use super::{helpers, JitContext, Translator};
use crate::csr::MSTATUS_FS;
use crate::decode::{Fmt, Inst, Op};
use crate::fpu::NX;
use crate::hart::Hart;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi};
use std::mem::offset_of;

/// Where the fast path finds the hart's FP state, from the hart pointer.
const F: i32 = offset_of!(Hart, f) as i32;
const FFLAGS: i32 = (offset_of!(Hart, csr) + offset_of!(crate::csr::Csrs, fflags)) as i32;
const FRM: i32 = (offset_of!(Hart, csr) + offset_of!(crate::csr::Csrs, frm)) as i32;
const MSTATUS: i32 = (offset_of!(Hart, csr) + offset_of!(crate::csr::Csrs, mstatus)) as i32;

/// Whether the host has the fused multiply-add that fmadd and its kin
/// need on the fast path (checked once).
fn host_has_fma() -> bool {
    static FMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *FMA.get_or_init(|| {
        std::arch::is_x86_feature_detected!("fma") && std::arch::is_x86_feature_detected!("avx")
    })
}

impl Translator<'_> {
    /// Every F/D instruction but loads and stores: the host's fast path
    /// where it applies, the helper otherwise.
    pub(super) fn fp_arith(&mut self, i: &Inst, pc: u64, retired: u32) {
        let fast = match i.op {
            Op::Fadd | Op::Fsub | Op::Fmul | Op::Fdiv | Op::Fsqrt => true,
            Op::Fmadd | Op::Fmsub | Op::Fnmsub | Op::Fnmadd => host_has_fma(),
            _ => false,
        };
        // A static rounding mode other than nearest-even never takes it.
        if !fast || !(i.rm == 0 || i.rm == 7) {
            self.call_helper(helpers::fp_arith, i, pc, retired);
            return;
        }
        let slow = self.ops.new_dynamic_label();
        let done = self.ops.new_dynamic_label();
        self.check_fp_enabled(slow);
        dynasm!(self.ops
            ; .arch x64
            ; test BYTE [rdx + FFLAGS], NX as i8
            ; jz =>slow
        );
        if i.rm == 7 {
            dynasm!(self.ops ; .arch x64 ; cmp QWORD [rdx + FRM], 0 ; jne =>slow);
        }
        let sources: &[u8] = match i.op {
            Op::Fsqrt => &[i.rs1],
            Op::Fmadd | Op::Fmsub | Op::Fnmsub | Op::Fnmadd => &[i.rs1, i.rs2, i.rs3],
            _ => &[i.rs1, i.rs2],
        };
        for (k, &r) in sources.iter().enumerate() {
            dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rdx + F + 8 * (r & 31) as i32]);
            self.check_operand(i.fmt, slow);
            match k {
                0 => dynasm!(self.ops ; .arch x64 ; movq xmm0, rax),
                1 => dynasm!(self.ops ; .arch x64 ; movq xmm1, rax),
                _ => dynasm!(self.ops ; .arch x64 ; movq xmm2, rax),
            }
        }
        match i.fmt {
            Fmt::D => self.host_op_double(i.op),
            Fmt::S => self.host_op_single(i.op),
        }
        dynasm!(self.ops ; .arch x64 ; movq rax, xmm0);
        self.check_result(i.fmt, slow);
        dynasm!(self.ops ; .arch x64 ; mov rdx, QWORD [rbp + offset_of!(JitContext, hart) as i32]);
        if i.fmt == Fmt::S {
            dynasm!(self.ops ; .arch x64 ; mov rcx, QWORD -1i64 << 32 ; or rax, rcx);
        }
        dynasm!(self.ops
            ; .arch x64
            ; mov QWORD [rdx + F + 8 * (i.rd & 31) as i32], rax
            ; or QWORD [rdx + MSTATUS], MSTATUS_FS as i32
            ; jmp =>done
            ; =>slow
        );
        self.call_helper(helpers::fp_arith, i, pc, retired);
        dynasm!(self.ops ; .arch x64 ; =>done);
    }

    /// Goes to `slow` unless the operand in rax is zero or normal (and,
    /// for a single, NaN-boxed). Clobbers rcx.
    fn check_operand(&mut self, fmt: Fmt, slow: dynasmrt::DynamicLabel) {
        match fmt {
            Fmt::D => dynasm!(self.ops
                ; .arch x64
                ; mov rcx, rax
                ; shl rcx, 1
                ; jz >zero
                ; shr rcx, 53
                // Biased exponents 1..=0x7fe are normal.
                ; dec ecx
                ; cmp ecx, 0x7fd
                ; ja =>slow
                ; zero:
            ),
            Fmt::S => dynasm!(self.ops
                ; .arch x64
                ; mov rcx, rax
                ; shr rcx, 32
                ; cmp ecx, -1
                ; jne =>slow
                ; mov ecx, eax
                ; shl ecx, 1
                ; jz >zero
                ; shr ecx, 24
                ; dec ecx
                ; cmp ecx, 0xfd
                ; ja =>slow
                ; zero:
            ),
        }
    }

    /// Goes to `slow` unless the result in rax is finite and its magnitude
    /// above the smallest normal. Clobbers rcx and rdx.
    fn check_result(&mut self, fmt: Fmt, slow: dynasmrt::DynamicLabel) {
        match fmt {
            Fmt::D => {
                // |r| << 1 in (MIN_NORMAL << 1, INFINITY << 1), unsigned.
                let low = (0x0010_0000_0000_0000u64 << 1) + 1;
                let span = (0x7ff0_0000_0000_0000u64 << 1) - low;
                dynasm!(self.ops
                    ; .arch x64
                    ; mov rcx, rax
                    ; shl rcx, 1
                    ; mov rdx, QWORD low as i64
                    ; sub rcx, rdx
                    ; mov rdx, QWORD span as i64
                    ; cmp rcx, rdx
                    ; jae =>slow
                );
            }
            Fmt::S => {
                let low = (0x0080_0000u32 << 1) + 1;
                let span = (0x7f80_0000u32 << 1) - low;
                dynasm!(self.ops
                    ; .arch x64
                    ; mov ecx, eax
                    ; shl ecx, 1
                    ; sub ecx, low as i32
                    ; cmp ecx, span as i32
                    ; jae =>slow
                );
            }
        }
    }

    /// xmm0 = the operation on xmm0, xmm1 (and xmm2), in doubles. RISC-V's
    /// fnmsub is -(a*b)+c, x86's vfnmadd; its fnmadd is x86's vfnmsub.
    fn host_op_double(&mut self, op: Op) {
        match op {
            Op::Fadd => dynasm!(self.ops ; .arch x64 ; addsd xmm0, xmm1),
            Op::Fsub => dynasm!(self.ops ; .arch x64 ; subsd xmm0, xmm1),
            Op::Fmul => dynasm!(self.ops ; .arch x64 ; mulsd xmm0, xmm1),
            Op::Fdiv => dynasm!(self.ops ; .arch x64 ; divsd xmm0, xmm1),
            Op::Fsqrt => dynasm!(self.ops ; .arch x64 ; sqrtsd xmm0, xmm0),
            Op::Fmadd => dynasm!(self.ops ; .arch x64 ; vfmadd213sd xmm0, xmm1, xmm2),
            Op::Fmsub => dynasm!(self.ops ; .arch x64 ; vfmsub213sd xmm0, xmm1, xmm2),
            Op::Fnmsub => dynasm!(self.ops ; .arch x64 ; vfnmadd213sd xmm0, xmm1, xmm2),
            Op::Fnmadd => dynasm!(self.ops ; .arch x64 ; vfnmsub213sd xmm0, xmm1, xmm2),
            _ => unreachable!("no host fast path for {op:?}"),
        }
    }

    /// [`Translator::host_op_double`] in singles.
    fn host_op_single(&mut self, op: Op) {
        match op {
            Op::Fadd => dynasm!(self.ops ; .arch x64 ; addss xmm0, xmm1),
            Op::Fsub => dynasm!(self.ops ; .arch x64 ; subss xmm0, xmm1),
            Op::Fmul => dynasm!(self.ops ; .arch x64 ; mulss xmm0, xmm1),
            Op::Fdiv => dynasm!(self.ops ; .arch x64 ; divss xmm0, xmm1),
            Op::Fsqrt => dynasm!(self.ops ; .arch x64 ; sqrtss xmm0, xmm0),
            Op::Fmadd => dynasm!(self.ops ; .arch x64 ; vfmadd213ss xmm0, xmm1, xmm2),
            Op::Fmsub => dynasm!(self.ops ; .arch x64 ; vfmsub213ss xmm0, xmm1, xmm2),
            Op::Fnmsub => dynasm!(self.ops ; .arch x64 ; vfnmadd213ss xmm0, xmm1, xmm2),
            Op::Fnmadd => dynasm!(self.ops ; .arch x64 ; vfnmsub213ss xmm0, xmm1, xmm2),
            _ => unreachable!("no host fast path for {op:?}"),
        }
    }

    /// Goes to `off` unless mstatus.FS lets FP instructions run (it is
    /// checked each time: the block may run again after the kernel turned
    /// FP off); rdx = the hart.
    fn check_fp_enabled(&mut self, off: dynasmrt::DynamicLabel) {
        dynasm!(self.ops
            ; .arch x64
            ; mov rdx, QWORD [rbp + offset_of!(JitContext, hart) as i32]
            ; test QWORD [rdx + MSTATUS], MSTATUS_FS as i32
            ; jz =>off
        );
    }

    /// flw and fld as `exec_fp` does them: the value NaN-boxed for flw,
    /// and mstatus.FS set to dirty.
    pub(super) fn fp_load(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = if i.op == Op::Flw { 4 } else { 8 };
        let off = self.exit_label(pc, retired);
        self.check_fp_enabled(off);
        self.access_address(i, false, size, pc, retired);
        if i.op == Op::Flw {
            dynasm!(self.ops
                ; .arch x64
                ; mov eax, DWORD [r12 + rcx]
                ; mov rdx, QWORD -1i64 << 32
                ; or rax, rdx
            );
        } else {
            dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [r12 + rcx]);
        }
        let target = 8 * (i.rd & 31) as i32;
        dynasm!(self.ops
            ; .arch x64
            ; mov rdx, QWORD [rbp + offset_of!(JitContext, hart) as i32]
            ; mov QWORD [rdx + F + target], rax
            ; or QWORD [rdx + MSTATUS], MSTATUS_FS as i32
        );
    }

    /// fsw and fsd: the low 32 or all 64 bits of the register, stored as
    /// [`Translator::store`] does.
    pub(super) fn fp_store(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = if i.op == Op::Fsw { 4 } else { 8 };
        let off = self.exit_label(pc, retired);
        self.check_fp_enabled(off);
        self.access_address(i, true, size, pc, retired);
        let source = 8 * (i.rs2 & 31) as i32;
        dynasm!(self.ops
            ; .arch x64
            ; mov rax, QWORD [rbp + offset_of!(JitContext, hart) as i32]
            ; mov rax, QWORD [rax + F + source]
        );
        if i.op == Op::Fsw {
            dynasm!(self.ops ; .arch x64 ; mov DWORD [r12 + rcx], eax);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov QWORD [r12 + rcx], rax);
        }
        self.stamp_write();
    }
}
