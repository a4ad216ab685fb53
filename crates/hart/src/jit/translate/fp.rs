//! F and D instructions in translated code.
//!
//! Loads and stores are written out (the TLB fast path of integer ones,
//! with the FS check and NaN boxing). The arithmetic is SoftFloat's, in a
//! helper (the interpreter's own code), except where the host's SSE gives
//! the same bits and flags without doubt, as QEMU's "hardfloat" does:
//! - the rounding mode is round-to-nearest-even (the host's, which Rust
//!   code never changes);
//! - a single's operands are properly NaN-boxed (an unboxed one is a NaN
//!   to RISC-V but not to the host);
//! - the result is normal and above the smallest normal: so no overflow,
//!   no underflow, whatever the side of rounding either detects tininess
//!   on (RISC-V after rounding, x86 before), and no NaN (0/0, the root of
//!   a negative). The operands need no check of their own: a NaN or an
//!   infinity among them makes the result a NaN or an infinity (or a zero,
//!   for a number divided by an infinity), which fails this check, and with the
//!   host's denormals-are-zero mode off (Rust never sets it) both machines
//!   round a result from subnormal operands the same way;
//! - fflags.NX is already set, so the one flag left that the operation
//!   could raise (inexact) changes nothing. Programs set it early and
//!   rarely clear it.
//!
//! Anything else goes to the helper, which then does it all again. The
//! helper calls sit after the block's body, out of the fast paths' way.
//!
//! Compares (feq, flt, fle) take the host's ordered compare when neither
//! operand is a NaN: then neither machine raises a flag. CSR instructions
//! on fflags, frm and fcsr are written out whole; they do not end blocks.
//!
//! Within a block, mstatus.FS is checked at the first FP instruction and
//! set to Dirty at the first that writes FP state ([`FpKnown`]).

use super::{helpers, RegMask, Translator};
use crate::csr::{addr, MSTATUS_FS};
use crate::decode::{Fmt, Inst, Op};
use crate::fpu::NX;
use crate::hart::Hart;
use dynasmrt::{dynasm, DynasmApi, DynasmLabelApi};
use std::mem::offset_of;

/// Where the fast path finds the hart's FP state, from the context (rbp),
/// which lives in the hart.
const CONTEXT: i32 = offset_of!(Hart, jit_context) as i32;
const F: i32 = offset_of!(Hart, f) as i32 - CONTEXT;
const CSRS: i32 = offset_of!(Hart, csr) as i32 - CONTEXT;
const FFLAGS: i32 = CSRS + offset_of!(crate::csr::Csrs, fflags) as i32;
const FRM: i32 = CSRS + offset_of!(crate::csr::Csrs, frm) as i32;
const MSTATUS: i32 = CSRS + offset_of!(crate::csr::Csrs, mstatus) as i32;

/// What the code emitted so far in a block has made sure of, on every
/// path that reaches the next instruction, so that later FP instructions
/// need not check or set it again. Nothing a block runs can undo either:
/// only CSR instructions on mstatus or sstatus clear FS, and they end
/// blocks.
#[derive(Clone, Copy, Default)]
pub(super) struct FpKnown {
    /// mstatus.FS is not Off.
    enabled: bool,
    /// mstatus.FS is Dirty.
    dirty: bool,
}

/// An FP instruction's slow path, written after the block's body: the
/// helper, then back to the instruction's end.
pub(super) struct FpSlow {
    label: dynasmrt::DynamicLabel,
    done: dynasmrt::DynamicLabel,
    inst: Inst,
    pc: u64,
    retired: u32,
    /// The block-local registers changed before the instruction.
    dirty: RegMask,
}

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
        if matches!(i.op, Op::Feq | Op::Flt | Op::Fle) {
            self.fp_compare(i, pc, retired);
            return;
        }
        let fast = match i.op {
            Op::Fadd | Op::Fsub | Op::Fmul | Op::Fdiv | Op::Fsqrt => true,
            Op::Fmadd | Op::Fmsub | Op::Fnmsub | Op::Fnmadd => host_has_fma(),
            _ => false,
        };
        // A static rounding mode other than nearest-even never takes it.
        if !fast || !(i.rm == 0 || i.rm == 7) {
            self.call_helper(helpers::fp_arith, i, pc, retired);
            self.fp.enabled = true;
            return;
        }
        let (slow, done) = self.fp_slow_path(i, pc, retired);
        self.check_fp_enabled(slow);
        dynasm!(self.ops
            ; .arch x64
            ; test BYTE [rbp + FFLAGS], NX as i8
            ; jz =>slow
        );
        if i.rm == 7 {
            dynasm!(self.ops ; .arch x64 ; cmp QWORD [rbp + FRM], 0 ; jne =>slow);
        }
        let sources: &[u8] = match i.op {
            Op::Fsqrt => &[i.rs1],
            Op::Fmadd | Op::Fmsub | Op::Fnmsub | Op::Fnmadd => &[i.rs1, i.rs2, i.rs3],
            _ => &[i.rs1, i.rs2],
        };
        // The values go between the hart's f registers and SSE registers
        // directly, and the checks read copies: so a chain of dependent
        // operations waits only for the store of each result to forward to
        // the next load, while the checks run beside it.
        for (k, &r) in sources.iter().enumerate() {
            self.load_fp_operand(k, r, i.fmt, slow);
        }
        // A single's operation leaves bits 32-63 of xmm0 as they were: all
        // ones, as its first operand was NaN-boxed. So its result is too.
        match i.fmt {
            Fmt::D => self.host_op_double(i.op),
            Fmt::S => self.host_op_single(i.op),
        }
        dynasm!(self.ops ; .arch x64 ; movq rax, xmm0);
        self.check_result(i.fmt, slow);
        dynasm!(self.ops ; .arch x64 ; movq QWORD [rbp + F + 8 * (i.rd & 31) as i32], xmm0);
        self.mark_fs_dirty();
        dynasm!(self.ops ; .arch x64 ; =>done);
        // Both paths leave FS enabled and Dirty (the helper's result is
        // an f register too).
        self.fp.enabled = true;
    }

    /// feq, flt and fle: the host's ordered compare when neither operand is
    /// a NaN (nor, for singles, wrongly NaN-boxed), which raises no flag on
    /// either machine; the helper otherwise.
    fn fp_compare(&mut self, i: &Inst, pc: u64, retired: u32) {
        let (slow, done) = self.fp_slow_path(i, pc, retired);
        self.check_fp_enabled(slow);
        for (k, r) in [i.rs1, i.rs2].into_iter().enumerate() {
            self.load_fp_operand(k, r, i.fmt, slow);
        }
        match i.fmt {
            Fmt::D => dynasm!(self.ops ; .arch x64 ; ucomisd xmm0, xmm1),
            Fmt::S => dynasm!(self.ops ; .arch x64 ; ucomiss xmm0, xmm1),
        }
        // Unordered (a NaN) sets PF; else CF is "below" and ZF "equal".
        dynasm!(self.ops ; .arch x64 ; jp =>slow);
        match i.op {
            Op::Feq => dynasm!(self.ops ; .arch x64 ; sete al),
            Op::Flt => dynasm!(self.ops ; .arch x64 ; setb al),
            _ => dynasm!(self.ops ; .arch x64 ; setbe al),
        }
        dynasm!(self.ops ; .arch x64 ; movzx eax, al);
        self.store_rax(i.rd);
        dynasm!(self.ops ; .arch x64 ; =>done);
        // FS is enabled after either path; Dirty only if the helper raised
        // a flag.
        self.fp.enabled = true;
    }

    /// Labels for instruction `i`'s slow path (the helper), written after
    /// the block's body, and for the instruction's end, where the fast path
    /// binds it and the slow path goes back to.
    fn fp_slow_path(
        &mut self,
        i: &Inst,
        pc: u64,
        retired: u32,
    ) -> (dynasmrt::DynamicLabel, dynasmrt::DynamicLabel) {
        let label = self.ops.new_dynamic_label();
        let done = self.ops.new_dynamic_label();
        self.fp_slow.push(FpSlow {
            label,
            done,
            inst: *i,
            pc,
            retired,
            dirty: self.dirty,
        });
        (label, done)
    }

    /// Writes the slow paths of the block's FP instructions.
    pub(super) fn fp_slow_paths(&mut self) {
        let body_dirty = self.dirty;
        for slow in std::mem::take(&mut self.fp_slow) {
            dynasm!(self.ops ; .arch x64 ; =>slow.label);
            self.dirty = slow.dirty;
            self.call_helper(helpers::fp_arith, &slow.inst, slow.pc, slow.retired);
            dynasm!(self.ops ; .arch x64 ; jmp =>slow.done);
        }
        self.dirty = body_dirty;
    }

    /// CSR instructions on fflags, frm and fcsr (libm saves and restores
    /// the flags around many functions), as `Hart::exec_fp_csr` does them:
    /// these registers need only mstatus.FS (every privilege may read and
    /// write them), and a write sets FS to Dirty.
    pub(super) fn fp_csr(&mut self, i: &Inst, pc: u64, retired: u32) {
        let off = self.exit_label(pc, retired);
        self.check_fp_enabled(off);
        let num = i.imm as u16 & 0xfff;
        match num {
            addr::FFLAGS => dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rbp + FFLAGS]),
            addr::FRM => dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rbp + FRM]),
            _ => dynasm!(self.ops
                ; .arch x64
                ; mov rax, QWORD [rbp + FRM]
                ; shl rax, 5
                ; or rax, QWORD [rbp + FFLAGS]
            ),
        }
        if i.csr_writes() {
            if matches!(i.op, Op::Csrrwi | Op::Csrrsi | Op::Csrrci) {
                dynasm!(self.ops ; .arch x64 ; mov ecx, i.rs1 as i32);
            } else {
                self.load_rcx(i.rs1);
            }
            match i.op {
                Op::Csrrs | Op::Csrrsi => dynasm!(self.ops ; .arch x64 ; or rcx, rax),
                Op::Csrrc | Op::Csrrci => dynasm!(self.ops ; .arch x64 ; not rcx ; and rcx, rax),
                _ => {}
            }
            match num {
                addr::FFLAGS => dynasm!(self.ops
                    ; .arch x64
                    ; and ecx, 0x1f
                    ; mov QWORD [rbp + FFLAGS], rcx
                ),
                addr::FRM => dynasm!(self.ops
                    ; .arch x64
                    ; and ecx, 7
                    ; mov QWORD [rbp + FRM], rcx
                ),
                _ => dynasm!(self.ops
                    ; .arch x64
                    ; mov edx, ecx
                    ; and edx, 0x1f
                    ; mov QWORD [rbp + FFLAGS], rdx
                    ; shr ecx, 5
                    ; and ecx, 7
                    ; mov QWORD [rbp + FRM], rcx
                ),
            }
            self.mark_fs_dirty();
        }
        self.store_rax(i.rd);
        self.fp.enabled = true;
    }

    /// Sets mstatus.FS to Dirty, unless the block already has.
    fn mark_fs_dirty(&mut self) {
        if !self.fp.dirty {
            dynasm!(self.ops ; .arch x64 ; or QWORD [rbp + MSTATUS], MSTATUS_FS as i32);
            self.fp.dirty = true;
        }
    }

    /// xmm`k` = f[`r`], the operation's `k`th operand; for a single, goes
    /// to `slow` unless it is properly NaN-boxed (checked on the upper
    /// half in memory, beside the load).
    fn load_fp_operand(&mut self, k: usize, r: u8, fmt: Fmt, slow: dynasmrt::DynamicLabel) {
        let at = F + 8 * (r & 31) as i32;
        match k {
            0 => dynasm!(self.ops ; .arch x64 ; movq xmm0, QWORD [rbp + at]),
            1 => dynasm!(self.ops ; .arch x64 ; movq xmm1, QWORD [rbp + at]),
            _ => dynasm!(self.ops ; .arch x64 ; movq xmm2, QWORD [rbp + at]),
        }
        if fmt == Fmt::S {
            dynasm!(self.ops
                ; .arch x64
                ; cmp DWORD [rbp + at + 4], -1
                ; jne =>slow
            );
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
    /// checked at the block's first FP instruction: the block may run again
    /// after the kernel turned FP off).
    fn check_fp_enabled(&mut self, off: dynasmrt::DynamicLabel) {
        if !self.fp.enabled {
            dynasm!(self.ops
                ; .arch x64
                ; test QWORD [rbp + MSTATUS], MSTATUS_FS as i32
                ; jz =>off
            );
        }
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
        dynasm!(self.ops ; .arch x64 ; mov QWORD [rbp + F + target], rax);
        self.mark_fs_dirty();
        self.fp.enabled = true;
    }

    /// fsw and fsd: the low 32 or all 64 bits of the register, stored as
    /// [`Translator::store`] does.
    pub(super) fn fp_store(&mut self, i: &Inst, pc: u64, retired: u32) {
        let size = if i.op == Op::Fsw { 4 } else { 8 };
        let off = self.exit_label(pc, retired);
        self.check_fp_enabled(off);
        self.access_address(i, true, size, pc, retired);
        let source = 8 * (i.rs2 & 31) as i32;
        dynasm!(self.ops ; .arch x64 ; mov rax, QWORD [rbp + F + source]);
        if i.op == Op::Fsw {
            dynasm!(self.ops ; .arch x64 ; mov DWORD [r12 + rcx], eax);
        } else {
            dynasm!(self.ops ; .arch x64 ; mov QWORD [r12 + rcx], rax);
        }
        self.stamp_write();
        self.fp.enabled = true;
    }
}
