//! Zba, Zbb and Zbs in translated code.
//!
//! Linux's string functions use orc.b and the kernel's bit operations ctz,
//! rev8 and the shift-adds: left to the interpreter, each one ended the
//! translated code (a Linux boot left it about a million times for orc.b,
//! rev8 and ctz alone). Each is a few host instructions on rax and rcx,
//! the operands read and the result written as every integer instruction
//! here does. Where x86 differs from RISC-V it is said at the instruction:
//! bsf/bsr leave their destination undefined for a zero source (RISC-V
//! counts 64, or 32 for the W forms), and the W forms sign-extend their
//! 32-bit result. Shift and rotate counts in cl are taken modulo the
//! operand size on x86 as on RISC-V.

use super::Translator;
use crate::decode::{Inst, Op};
use dynasmrt::{dynasm, DynasmApi};

/// Whether the host has popcnt, which cpop and cpopw need (checked once;
/// every x86-64 CPU since 2008 has it, but the baseline does not promise it).
fn host_has_popcnt() -> bool {
    static POPCNT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *POPCNT.get_or_init(|| std::arch::is_x86_feature_detected!("popcnt"))
}

/// Whether [`Translator::bitmanip`] translates `op`.
pub(super) fn handles(op: Op) -> bool {
    use Op::*;
    match op {
        Cpop | Cpopw => host_has_popcnt(),
        AddUw | Sh1add | Sh2add | Sh3add | Sh1addUw | Sh2addUw | Sh3addUw | SlliUw | Andn | Orn
        | Xnor | Clz | Clzw | Ctz | Ctzw | Max | Maxu | Min | Minu | SextB | SextH | ZextH
        | Rol | Rolw | Ror | Rori | Roriw | Rorw | OrcB | Rev8 | Bclr | Bclri | Bext | Bexti
        | Binv | Binvi | Bset | Bseti => true,
        _ => false,
    }
}

/// Whether `op` has a second register operand (the others hold an
/// immediate, or part of their encoding, in the rs2 field).
fn reads_rs2(op: Op) -> bool {
    use Op::*;
    !matches!(
        op,
        SlliUw
            | Clz
            | Clzw
            | Ctz
            | Ctzw
            | Cpop
            | Cpopw
            | SextB
            | SextH
            | ZextH
            | Rori
            | Roriw
            | OrcB
            | Rev8
            | Bclri
            | Bexti
            | Binvi
            | Bseti
    )
}

impl Translator<'_> {
    /// One Zba/Zbb/Zbs instruction (one that [`handles`] says yes to):
    /// rax = rs1, rcx = rs2, the result from rax into rd.
    pub(super) fn bitmanip(&mut self, i: &Inst) {
        let shamt = (i.imm & 63) as i8;
        self.load_rax(i.rs1);
        if reads_rs2(i.op) {
            self.load_rcx(i.rs2);
        }
        match i.op {
            // Zba. A 32-bit mov zero-extends into the whole register.
            Op::AddUw => dynasm!(self.ops ; .arch x64 ; mov eax, eax ; add rax, rcx),
            Op::Sh1add => dynasm!(self.ops ; .arch x64 ; lea rax, [rcx + rax * 2]),
            Op::Sh2add => dynasm!(self.ops ; .arch x64 ; lea rax, [rcx + rax * 4]),
            Op::Sh3add => dynasm!(self.ops ; .arch x64 ; lea rax, [rcx + rax * 8]),
            Op::Sh1addUw => dynasm!(self.ops ; .arch x64 ; mov eax, eax ; lea rax, [rcx + rax * 2]),
            Op::Sh2addUw => dynasm!(self.ops ; .arch x64 ; mov eax, eax ; lea rax, [rcx + rax * 4]),
            Op::Sh3addUw => dynasm!(self.ops ; .arch x64 ; mov eax, eax ; lea rax, [rcx + rax * 8]),
            Op::SlliUw => dynasm!(self.ops ; .arch x64 ; mov eax, eax ; shl rax, shamt),
            // Zbb: logic with a negated operand.
            Op::Andn => dynasm!(self.ops ; .arch x64 ; not rcx ; and rax, rcx),
            Op::Orn => dynasm!(self.ops ; .arch x64 ; not rcx ; or rax, rcx),
            Op::Xnor => dynasm!(self.ops ; .arch x64 ; xor rax, rcx ; not rax),
            // Counting zeros: bsr/bsf set ZF for a zero source, whose
            // result is then chosen by cmov. clz is 63 - (index of the
            // highest set bit), which for the index -1 of zero gives 64.
            Op::Clz => dynasm!(self.ops
                ; .arch x64
                ; mov rcx, -1
                ; bsr rax, rax
                ; cmovz rax, rcx
                ; neg rax
                ; add rax, 63
            ),
            Op::Clzw => dynasm!(self.ops
                ; .arch x64
                ; mov rcx, -1
                ; mov eax, eax
                ; bsr rax, rax
                ; cmovz rax, rcx
                ; neg rax
                ; add rax, 31
            ),
            Op::Ctz => dynasm!(self.ops
                ; .arch x64
                ; mov ecx, 64
                ; bsf rax, rax
                ; cmovz rax, rcx
            ),
            // Bit 32 set stops the count at 32 when the low word is zero.
            Op::Ctzw => dynasm!(self.ops ; .arch x64 ; bts rax, BYTE 32 ; bsf rax, rax),
            Op::Cpop => dynasm!(self.ops ; .arch x64 ; popcnt rax, rax),
            Op::Cpopw => dynasm!(self.ops ; .arch x64 ; popcnt eax, eax),
            Op::Max => dynasm!(self.ops ; .arch x64 ; cmp rax, rcx ; cmovl rax, rcx),
            Op::Maxu => dynasm!(self.ops ; .arch x64 ; cmp rax, rcx ; cmovb rax, rcx),
            Op::Min => dynasm!(self.ops ; .arch x64 ; cmp rax, rcx ; cmovg rax, rcx),
            Op::Minu => dynasm!(self.ops ; .arch x64 ; cmp rax, rcx ; cmova rax, rcx),
            Op::SextB => dynasm!(self.ops ; .arch x64 ; movsx rax, al),
            Op::SextH => dynasm!(self.ops ; .arch x64 ; movsx rax, ax),
            Op::ZextH => dynasm!(self.ops ; .arch x64 ; movzx eax, ax),
            Op::Rol => dynasm!(self.ops ; .arch x64 ; rol rax, cl),
            Op::Ror => dynasm!(self.ops ; .arch x64 ; ror rax, cl),
            Op::Rori => dynasm!(self.ops ; .arch x64 ; ror rax, shamt),
            Op::Rolw => dynasm!(self.ops ; .arch x64 ; rol eax, cl ; movsxd rax, eax),
            Op::Rorw => dynasm!(self.ops ; .arch x64 ; ror eax, cl ; movsxd rax, eax),
            Op::Roriw => dynasm!(self.ops ; .arch x64 ; ror eax, shamt & 31 ; movsxd rax, eax),
            // Bytes that are zero compare equal to zero (0xff), the others
            // not (0): the complement is orc.b.
            Op::OrcB => dynasm!(self.ops
                ; .arch x64
                ; movq xmm0, rax
                ; pxor xmm1, xmm1
                ; pcmpeqb xmm0, xmm1
                ; movq rax, xmm0
                ; not rax
            ),
            Op::Rev8 => dynasm!(self.ops ; .arch x64 ; bswap rax),
            // Zbs: the bit as a mask in rdx, its number in cl taken
            // modulo 64 by shl.
            Op::Bclr => dynasm!(self.ops
                ; .arch x64 ; mov edx, 1 ; shl rdx, cl ; not rdx ; and rax, rdx),
            Op::Binv => dynasm!(self.ops ; .arch x64 ; mov edx, 1 ; shl rdx, cl ; xor rax, rdx),
            Op::Bset => dynasm!(self.ops ; .arch x64 ; mov edx, 1 ; shl rdx, cl ; or rax, rdx),
            Op::Bclri => dynasm!(self.ops ; .arch x64 ; btr rax, BYTE shamt),
            Op::Binvi => dynasm!(self.ops ; .arch x64 ; btc rax, BYTE shamt),
            Op::Bseti => dynasm!(self.ops ; .arch x64 ; bts rax, BYTE shamt),
            Op::Bext => dynasm!(self.ops ; .arch x64 ; shr rax, cl ; and eax, 1),
            Op::Bexti => dynasm!(self.ops ; .arch x64 ; shr rax, shamt ; and eax, 1),
            _ => unreachable!("bitmanip::handles is false for {:?}", i.op),
        }
        self.store_rax(i.rd);
    }
}
