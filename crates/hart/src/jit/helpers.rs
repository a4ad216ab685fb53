//! Functions translated code calls for instructions it does not write out:
//! each runs the interpreter's own code for one instruction, so its result
//! is the interpreter's by construction.

use crate::decode::{Inst, Op};
use crate::hart::Hart;
use crate::memory::Ram;
use crate::tlb::Access;

/// A helper: runs `inst` on the hart; returns 1 when it retired, 0 when it
/// would trap (then nothing has changed, and the code leaves before it).
/// It never advances pc: translated code knows where it is.
pub(crate) type Helper = unsafe extern "sysv64" fn(*mut Hart, *const Inst) -> u64;

/// Whether [`fp_arith`] runs `op`: every F and D instruction but loads
/// and stores.
pub(crate) fn fp_arith_handles(op: Op) -> bool {
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

/// The FP arithmetic, comparisons, conversions and moves.
///
/// # Safety
/// `hart` is the running hart, reachable through nothing else while the
/// translated code that calls this runs; `inst` is a decoded instruction
/// for which [`fp_arith_handles`] holds.
pub(crate) unsafe extern "sysv64" fn fp_arith(hart: *mut Hart, inst: *const Inst) -> u64 {
    // SAFETY: as the caller promises.
    let (hart, inst) = unsafe { (&mut *hart, &*inst) };
    hart.exec_fp_arith(inst).is_ok() as u64
}

/// The bit of [`fill_data_tlb`]'s `kind` that asks for the write table
/// (the low byte is the access size).
pub(crate) const FILL_WRITE: u64 = 1 << 8;

/// A data access of translated code that missed the TLB's fast path:
/// the page walk and fill the interpreter's slow path would start with
/// (`Hart::fill_for_translated`). Returns 1 when the code may retry its
/// fast path, which now hits; 0 when it must leave before the instruction
/// for the interpreter to make the access.
///
/// # Safety
/// `hart` is the running hart and `ram` its RAM, each reachable through
/// nothing else while the translated code that calls this runs (which
/// holds raw pointers into both but does not use them during the call).
pub(crate) unsafe extern "sysv64" fn fill_data_tlb(
    hart: *mut Hart,
    ram: *mut Ram,
    vaddr: u64,
    kind: u64,
) -> u64 {
    // SAFETY: as the caller promises.
    let (hart, ram) = unsafe { (&mut *hart, &mut *ram) };
    let access = if kind & FILL_WRITE != 0 {
        Access::Write
    } else {
        Access::Read
    };
    hart.fill_for_translated(ram, vaddr, kind & 0xff, access) as u64
}

/// SFENCE.VMA (translated code leaves right after it: the next block's
/// fetch must walk the page table again, as the hart's loop does).
///
/// # Safety
/// As for [`fp_arith`], with `inst` an SFENCE.VMA.
pub(crate) unsafe extern "sysv64" fn sfence_vma(hart: *mut Hart, inst: *const Inst) -> u64 {
    // SAFETY: as the caller promises.
    let (hart, inst) = unsafe { (&mut *hart, &*inst) };
    hart.sfence_vma(inst).is_ok() as u64
}

/// CBO.ZERO of the block at `vaddr` when it is allowed and hits the TLB's
/// fast path (`Hart::cbo_zero_fast`): 1 when done, 0 when the code must
/// leave before it for the interpreter (to trap, or to take the slow
/// path). Linux clears pages with it, 64 bytes at a time.
///
/// # Safety
/// As for [`fill_data_tlb`].
pub(crate) unsafe extern "sysv64" fn cbo_zero(hart: *mut Hart, ram: *mut Ram, vaddr: u64) -> u64 {
    // SAFETY: as the caller promises.
    let (hart, ram) = unsafe { (&mut *hart, &mut *ram) };
    hart.cbo_zero_fast(ram, vaddr) as u64
}

/// Whether [`csr`] runs `inst`: a CSR instruction on one of the trap
/// and translation CSRs, which Linux uses all the time (sstatus above all,
/// to mask interrupts). Reading them needs only the hart; not `time`, the
/// counters or the pending bits, which depend on the clock that
/// translated code brings up to date only when it leaves.
pub(crate) fn csr_handles(inst: &Inst) -> bool {
    use crate::csr::addr::*;
    inst.op.is_csr()
        && matches!(
            inst.imm as u16 & 0xfff,
            SSTATUS
                | SIE
                | STVEC
                | SSCRATCH
                | SEPC
                | SCAUSE
                | STVAL
                | SATP
                | MSTATUS
                | MIE
                | MTVEC
                | MSCRATCH
                | MEPC
                | MCAUSE
                | MTVAL
        )
}

/// The CSR instructions of [`csr_handles`]; translated code leaves right
/// after one, without chaining, for the hart's loop to take an interrupt
/// it enabled or to fetch through a translation it changed.
///
/// # Safety
/// As for [`fp_arith`], with [`csr_handles`] holding for `inst`.
pub(crate) unsafe extern "sysv64" fn csr(hart: *mut Hart, inst: *const Inst) -> u64 {
    // SAFETY: as the caller promises.
    let (hart, inst) = unsafe { (&mut *hart, &*inst) };
    hart.csr_instruction_translated(inst).is_ok() as u64
}
