//! Execution of one decoded instruction: one arm per operation.
//!
//! `execute` returns `Ok(true)` when the block must end after this instruction
//! (control flow, CSR and privilege changes, device accesses, stores to code),
//! `Ok(false)` to continue, or the exception to take (the instruction then does
//! not retire, and no architectural state has changed).

use crate::bus::Bus;
use crate::csr::{self, ENVCFG_CBCFE, ENVCFG_CBIE, ENVCFG_CBZE};
use crate::decode::{Fmt, Inst, Op};
use crate::fpu::{self, FpResult};
use crate::hart::{cause, prv, Exception, Hart};
use crate::mmu::Access;

type Flow = Result<bool, Exception>;

#[inline(always)]
fn sext32(v: u64) -> u64 {
    v as i32 as i64 as u64
}

/// What a CSR instruction does to its CSR: whether it writes it, and with
/// what, given the old value.
pub(crate) struct CsrUpdate {
    op: Op,
    source: u64,
    pub(crate) writes: bool,
}

impl CsrUpdate {
    pub(crate) fn of(hart: &Hart, i: &Inst) -> Self {
        let immediate = matches!(i.op, Op::Csrrwi | Op::Csrrsi | Op::Csrrci);
        let source = if immediate { i.rs1 as u64 } else { hart.rs1(i) };
        CsrUpdate {
            op: i.op,
            source,
            writes: i.csr_writes(),
        }
    }

    pub(crate) fn new_value(&self, old: u64) -> u64 {
        match self.op {
            Op::Csrrw | Op::Csrrwi => self.source,
            Op::Csrrs | Op::Csrrsi => old | self.source,
            _ => old & !self.source,
        }
    }
}

impl Hart {
    #[inline(always)]
    fn rs1(&self, i: &Inst) -> u64 {
        self.x[(i.rs1 & 31) as usize]
    }
    #[inline(always)]
    fn rs2(&self, i: &Inst) -> u64 {
        self.x[(i.rs2 & 31) as usize]
    }
    #[inline(always)]
    fn set_rd(&mut self, i: &Inst, v: u64) {
        self.x[(i.rd & 31) as usize] = v;
        self.x[0] = 0;
    }
    #[inline(always)]
    fn next(&mut self, i: &Inst) {
        self.pc = self.pc.wrapping_add(i.len as u64);
    }
    /// Writes rd and advances pc: the common tail of ALU instructions.
    #[inline(always)]
    fn alu(&mut self, i: &Inst, v: u64) -> Flow {
        self.set_rd(i, v);
        self.next(i);
        Ok(false)
    }

    #[inline(always)]
    fn branch(&mut self, i: &Inst, taken: bool) -> Flow {
        if taken {
            self.pc = self.pc.wrapping_add(i.imm as u64);
        } else {
            self.next(i);
        }
        Ok(true)
    }

    #[inline(always)]
    fn load<B: Bus, const N: usize>(
        &mut self,
        bus: &mut B,
        i: &Inst,
    ) -> Result<[u8; N], Exception> {
        let addr = self.rs1(i).wrapping_add(i.imm as u64);
        self.read_mem::<B, N>(bus, addr, Access::Read)
    }

    #[inline(always)]
    fn store<B: Bus, const N: usize>(&mut self, bus: &mut B, i: &Inst, v: [u8; N]) -> Flow {
        let addr = self.rs1(i).wrapping_add(i.imm as u64);
        let end = self.write_mem::<B, N>(bus, addr, v)?;
        self.next(i);
        Ok(end)
    }

    /// Executes one instruction at `self.pc`.
    #[inline(always)]
    pub(crate) fn execute<B: Bus>(&mut self, bus: &mut B, i: &Inst) -> Flow {
        let a = self.rs1(i);
        let b = self.rs2(i);
        let imm = i.imm as u64;
        match i.op {
            Op::Illegal => Err(Exception::illegal(i.raw)),
            Op::Lui => self.alu(i, imm),
            Op::Auipc => self.alu(i, self.pc.wrapping_add(imm)),
            Op::Jal => {
                let link = self.pc.wrapping_add(i.len as u64);
                self.pc = self.pc.wrapping_add(imm);
                self.set_rd(i, link);
                Ok(true)
            }
            Op::Jalr => {
                let link = self.pc.wrapping_add(i.len as u64);
                self.pc = a.wrapping_add(imm) & !1;
                self.set_rd(i, link);
                Ok(true)
            }
            Op::Beq => self.branch(i, a == b),
            Op::Bne => self.branch(i, a != b),
            Op::Blt => self.branch(i, (a as i64) < (b as i64)),
            Op::Bge => self.branch(i, (a as i64) >= (b as i64)),
            Op::Bltu => self.branch(i, a < b),
            Op::Bgeu => self.branch(i, a >= b),
            Op::Lb => {
                let v = self.load::<B, 1>(bus, i)?;
                self.alu(i, v[0] as i8 as u64)
            }
            Op::Lh => {
                let v = self.load::<B, 2>(bus, i)?;
                self.alu(i, i16::from_le_bytes(v) as u64)
            }
            Op::Lw => {
                let v = self.load::<B, 4>(bus, i)?;
                self.alu(i, i32::from_le_bytes(v) as u64)
            }
            Op::Ld => {
                let v = self.load::<B, 8>(bus, i)?;
                self.alu(i, u64::from_le_bytes(v))
            }
            Op::Lbu => {
                let v = self.load::<B, 1>(bus, i)?;
                self.alu(i, v[0] as u64)
            }
            Op::Lhu => {
                let v = self.load::<B, 2>(bus, i)?;
                self.alu(i, u16::from_le_bytes(v) as u64)
            }
            Op::Lwu => {
                let v = self.load::<B, 4>(bus, i)?;
                self.alu(i, u32::from_le_bytes(v) as u64)
            }
            Op::Sb => self.store::<B, 1>(bus, i, [b as u8]),
            Op::Sh => self.store::<B, 2>(bus, i, (b as u16).to_le_bytes()),
            Op::Sw => self.store::<B, 4>(bus, i, (b as u32).to_le_bytes()),
            Op::Sd => self.store::<B, 8>(bus, i, b.to_le_bytes()),
            Op::Addi => self.alu(i, a.wrapping_add(imm)),
            Op::Slti => self.alu(i, ((a as i64) < (imm as i64)) as u64),
            Op::Sltiu => self.alu(i, (a < imm) as u64),
            Op::Xori => self.alu(i, a ^ imm),
            Op::Ori => self.alu(i, a | imm),
            Op::Andi => self.alu(i, a & imm),
            Op::Slli => self.alu(i, a << (imm & 63)),
            Op::Srli => self.alu(i, a >> (imm & 63)),
            Op::Srai => self.alu(i, ((a as i64) >> (imm & 63)) as u64),
            Op::Add => self.alu(i, a.wrapping_add(b)),
            Op::Sub => self.alu(i, a.wrapping_sub(b)),
            Op::Sll => self.alu(i, a << (b & 63)),
            Op::Slt => self.alu(i, ((a as i64) < (b as i64)) as u64),
            Op::Sltu => self.alu(i, (a < b) as u64),
            Op::Xor => self.alu(i, a ^ b),
            Op::Srl => self.alu(i, a >> (b & 63)),
            Op::Sra => self.alu(i, ((a as i64) >> (b & 63)) as u64),
            Op::Or => self.alu(i, a | b),
            Op::And => self.alu(i, a & b),
            Op::Addiw => self.alu(i, sext32(a.wrapping_add(imm))),
            Op::Slliw => self.alu(i, sext32(((a as u32) << (imm & 31)) as u64)),
            Op::Srliw => self.alu(i, sext32(((a as u32) >> (imm & 31)) as u64)),
            Op::Sraiw => self.alu(i, ((a as i32) >> (imm & 31)) as i64 as u64),
            Op::Addw => self.alu(i, sext32(a.wrapping_add(b))),
            Op::Subw => self.alu(i, sext32(a.wrapping_sub(b))),
            Op::Sllw => self.alu(i, sext32(((a as u32) << (b & 31)) as u64)),
            Op::Srlw => self.alu(i, sext32(((a as u32) >> (b & 31)) as u64)),
            Op::Sraw => self.alu(i, ((a as i32) >> (b & 31)) as i64 as u64),
            Op::Fence => {
                self.next(i);
                Ok(false)
            }
            Op::Pause => {
                self.next(i);
                self.paused = true;
                Ok(true)
            }
            Op::FenceI => {
                // The block cache is kept coherent with stores, so ending the
                // block is all FENCE.I needs.
                self.next(i);
                Ok(true)
            }
            Op::Ecall => Err(Exception::new(cause::ECALL_FROM_U + self.prv as u64, 0)),
            Op::Ebreak => Err(Exception::new(cause::BREAKPOINT, self.pc)),
            Op::Mret => self.exec_mret(i),
            Op::Sret => self.exec_sret(i),
            Op::Wfi => self.exec_wfi(i),
            Op::SfenceVma => {
                self.sfence_vma(i)?;
                self.next(i);
                Ok(true)
            }
            Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci
                if i.is_fp_csr() =>
            {
                // The block goes on (see `Inst::ends_block`).
                self.exec_fp_csr(i)?;
                self.next(i);
                Ok(false)
            }
            Op::Csrrw | Op::Csrrs | Op::Csrrc | Op::Csrrwi | Op::Csrrsi | Op::Csrrci => {
                self.exec_csr(bus, i)
            }
            Op::Mul => self.alu(i, a.wrapping_mul(b)),
            Op::Mulh => self.alu(i, ((a as i64 as i128 * b as i64 as i128) >> 64) as u64),
            Op::Mulhsu => self.alu(i, ((a as i64 as i128 * b as u128 as i128) >> 64) as u64),
            Op::Mulhu => self.alu(i, ((a as u128 * b as u128) >> 64) as u64),
            Op::Div => {
                let (x, y) = (a as i64, b as i64);
                let q = if y == 0 { -1 } else { x.wrapping_div(y) };
                self.alu(i, q as u64)
            }
            Op::Divu => self.alu(i, a.checked_div(b).unwrap_or(u64::MAX)),
            Op::Rem => {
                let (x, y) = (a as i64, b as i64);
                let r = if y == 0 { x } else { x.wrapping_rem(y) };
                self.alu(i, r as u64)
            }
            Op::Remu => self.alu(i, if b == 0 { a } else { a % b }),
            Op::Mulw => self.alu(i, sext32(a.wrapping_mul(b))),
            Op::Divw => {
                let (x, y) = (a as i32, b as i32);
                let q = if y == 0 { -1 } else { x.wrapping_div(y) };
                self.alu(i, q as i64 as u64)
            }
            Op::Divuw => {
                let (x, y) = (a as u32, b as u32);
                self.alu(i, sext32(x.checked_div(y).unwrap_or(u32::MAX) as u64))
            }
            Op::Remw => {
                let (x, y) = (a as i32, b as i32);
                let r = if y == 0 { x } else { x.wrapping_rem(y) };
                self.alu(i, r as i64 as u64)
            }
            Op::Remuw => {
                let (x, y) = (a as u32, b as u32);
                self.alu(i, sext32(if y == 0 { x } else { x % y } as u64))
            }
            Op::Lr | Op::Sc => self.exec_lr_sc(bus, i),
            Op::AmoSwap
            | Op::AmoAdd
            | Op::AmoXor
            | Op::AmoAnd
            | Op::AmoOr
            | Op::AmoMin
            | Op::AmoMax
            | Op::AmoMinu
            | Op::AmoMaxu => self.exec_amo(bus, i),
            Op::Flw
            | Op::Fsw
            | Op::Fld
            | Op::Fsd
            | Op::Fmadd
            | Op::Fmsub
            | Op::Fnmsub
            | Op::Fnmadd
            | Op::Fadd
            | Op::Fsub
            | Op::Fmul
            | Op::Fdiv
            | Op::Fsqrt
            | Op::Fsgnj
            | Op::Fsgnjn
            | Op::Fsgnjx
            | Op::Fmin
            | Op::Fmax
            | Op::FcvtFF
            | Op::FcvtIF
            | Op::FcvtFI
            | Op::FmvXF
            | Op::FmvFX
            | Op::Feq
            | Op::Flt
            | Op::Fle
            | Op::Fclass => self.exec_fp(bus, i),
            Op::AddUw => self.alu(i, (a as u32 as u64).wrapping_add(b)),
            Op::Sh1add => self.alu(i, (a << 1).wrapping_add(b)),
            Op::Sh2add => self.alu(i, (a << 2).wrapping_add(b)),
            Op::Sh3add => self.alu(i, (a << 3).wrapping_add(b)),
            Op::Sh1addUw => self.alu(i, ((a as u32 as u64) << 1).wrapping_add(b)),
            Op::Sh2addUw => self.alu(i, ((a as u32 as u64) << 2).wrapping_add(b)),
            Op::Sh3addUw => self.alu(i, ((a as u32 as u64) << 3).wrapping_add(b)),
            Op::SlliUw => self.alu(i, (a as u32 as u64) << (imm & 63)),
            Op::Andn => self.alu(i, a & !b),
            Op::Orn => self.alu(i, a | !b),
            Op::Xnor => self.alu(i, !(a ^ b)),
            Op::Clz => self.alu(i, a.leading_zeros() as u64),
            Op::Clzw => self.alu(i, (a as u32).leading_zeros() as u64),
            Op::Ctz => self.alu(i, a.trailing_zeros() as u64),
            Op::Ctzw => self.alu(i, (a as u32).trailing_zeros() as u64),
            Op::Cpop => self.alu(i, a.count_ones() as u64),
            Op::Cpopw => self.alu(i, (a as u32).count_ones() as u64),
            Op::Max => self.alu(i, (a as i64).max(b as i64) as u64),
            Op::Maxu => self.alu(i, a.max(b)),
            Op::Min => self.alu(i, (a as i64).min(b as i64) as u64),
            Op::Minu => self.alu(i, a.min(b)),
            Op::SextB => self.alu(i, a as i8 as i64 as u64),
            Op::SextH => self.alu(i, a as i16 as i64 as u64),
            Op::ZextH => self.alu(i, a as u16 as u64),
            Op::Rol => self.alu(i, a.rotate_left((b & 63) as u32)),
            Op::Rolw => self.alu(i, sext32((a as u32).rotate_left((b & 31) as u32) as u64)),
            Op::Ror => self.alu(i, a.rotate_right((b & 63) as u32)),
            Op::Rori => self.alu(i, a.rotate_right((imm & 63) as u32)),
            Op::Roriw => self.alu(i, sext32((a as u32).rotate_right((imm & 31) as u32) as u64)),
            Op::Rorw => self.alu(i, sext32((a as u32).rotate_right((b & 31) as u32) as u64)),
            Op::OrcB => {
                let mut v = 0u64;
                for byte in 0..8 {
                    if (a >> (8 * byte)) & 0xff != 0 {
                        v |= 0xff << (8 * byte);
                    }
                }
                self.alu(i, v)
            }
            Op::Rev8 => self.alu(i, a.swap_bytes()),
            Op::Bclr => self.alu(i, a & !(1 << (b & 63))),
            Op::Bclri => self.alu(i, a & !(1 << (imm & 63))),
            Op::Bext => self.alu(i, (a >> (b & 63)) & 1),
            Op::Bexti => self.alu(i, (a >> (imm & 63)) & 1),
            Op::Binv => self.alu(i, a ^ (1 << (b & 63))),
            Op::Binvi => self.alu(i, a ^ (1 << (imm & 63))),
            Op::Bset => self.alu(i, a | (1 << (b & 63))),
            Op::Bseti => self.alu(i, a | (1 << (imm & 63))),
            Op::CboClean | Op::CboFlush | Op::CboInval | Op::CboZero => self.exec_cbo(bus, i),
        }
    }

    fn exec_mret(&mut self, i: &Inst) -> Flow {
        if self.prv != prv::M {
            return Err(Exception::illegal(i.raw));
        }
        let s = self.csr.mstatus;
        let mpp = ((s >> 11) & 3) as u8;
        let mpie = (s >> 7) & 1;
        let mut n = s & !(csr::MSTATUS_MIE | csr::MSTATUS_MPP);
        n |= mpie << 3;
        n |= csr::MSTATUS_MPIE;
        if mpp != prv::M {
            n &= !csr::MSTATUS_MPRV;
        }
        self.csr.mstatus = n;
        self.prv = mpp;
        self.pc = self.csr.mepc;
        self.reserved = crate::hart::NO_RESERVATION;
        self.refresh_modes();
        Ok(true)
    }

    fn exec_sret(&mut self, i: &Inst) -> Flow {
        let s = self.csr.mstatus;
        if self.prv == prv::U || (self.prv == prv::S && s & csr::MSTATUS_TSR != 0) {
            return Err(Exception::illegal(i.raw));
        }
        let spp = ((s >> 8) & 1) as u8;
        let spie = (s >> 5) & 1;
        let mut n = s & !(csr::MSTATUS_SIE | csr::MSTATUS_SPP | csr::MSTATUS_MPRV);
        n |= spie << 1;
        n |= csr::MSTATUS_SPIE;
        self.csr.mstatus = n;
        self.prv = spp;
        self.pc = self.csr.sepc;
        self.reserved = crate::hart::NO_RESERVATION;
        self.refresh_modes();
        Ok(true)
    }

    fn exec_wfi(&mut self, i: &Inst) -> Flow {
        // U-mode WFI and S-mode WFI with TW set trap at once (QEMU does the same).
        if self.prv == prv::U || (self.prv == prv::S && self.csr.mstatus & csr::MSTATUS_TW != 0) {
            return Err(Exception::illegal(i.raw));
        }
        self.next(i);
        if !self.wfi_should_wake() {
            self.waiting = true;
        }
        Ok(true)
    }

    fn exec_csr<B: Bus>(&mut self, bus: &mut B, i: &Inst) -> Flow {
        self.csr_instruction(i, |clock| bus.time(clock))?;
        self.next(i);
        Ok(true)
    }

    /// A CSR instruction but for the pc, for translated code, on a CSR
    /// [`crate::jit`] lets it reach: one that is neither `time` nor a
    /// counter of the clock (translated code updates the clock only when
    /// it leaves) nor an interrupt-pending register.
    pub(crate) fn csr_instruction_translated(&mut self, i: &Inst) -> Result<(), Exception> {
        self.csr_instruction(i, |_| unreachable!("translated code never reads time"))
    }

    /// A CSR instruction but for the pc; `time` as for `csr_read_with`.
    fn csr_instruction(
        &mut self,
        i: &Inst,
        time: impl FnOnce(u64) -> u64,
    ) -> Result<(), Exception> {
        let num = i.imm as u16 & 0xfff;
        let update = CsrUpdate::of(self, i);
        let old = self.csr_read_with(num, i.raw, update.writes, time)?;
        if update.writes {
            let modified = self.csr_modified_value(num, old);
            let effects = self.csr_write(num, update.new_value(modified));
            if effects.flush_tlb {
                self.tlb.flush_all();
            }
            self.refresh_modes();
            // Enables, pending bits or stimecmp may have changed.
            self.resample_lines();
        }
        self.set_rd(i, old);
        Ok(())
    }

    fn exec_lr_sc<B: Bus>(&mut self, bus: &mut B, i: &Inst) -> Flow {
        let addr = self.rs1(i);
        let size = if i.fmt == Fmt::S { 4 } else { 8 };
        if !addr.is_multiple_of(size) {
            let c = if i.op == Op::Lr {
                cause::LOAD_MISALIGNED
            } else {
                cause::STORE_MISALIGNED
            };
            return Err(Exception::new(c, addr));
        }
        if i.op == Op::Lr {
            let v = if size == 4 {
                i32::from_le_bytes(self.read_mem::<B, 4>(bus, addr, Access::Read)?) as u64
            } else {
                u64::from_le_bytes(self.read_mem::<B, 8>(bus, addr, Access::Read)?)
            };
            self.reserved = addr;
            return self.alu(i, v);
        }
        // SC: a failed SC makes no access at all.
        let reserved = self.reserved == addr;
        self.reserved = crate::hart::NO_RESERVATION;
        let mut end = false;
        if reserved {
            let v = self.rs2(i);
            end = if size == 4 {
                self.write_mem::<B, 4>(bus, addr, (v as u32).to_le_bytes())?
            } else {
                self.write_mem::<B, 8>(bus, addr, v.to_le_bytes())?
            };
        }
        self.set_rd(i, (!reserved) as u64);
        self.next(i);
        Ok(end)
    }

    fn exec_amo<B: Bus>(&mut self, bus: &mut B, i: &Inst) -> Flow {
        let addr = self.rs1(i);
        let src = self.rs2(i);
        let word = i.fmt == Fmt::S;
        if !addr.is_multiple_of(if word { 4 } else { 8 }) {
            return Err(Exception::new(cause::STORE_MISALIGNED, addr));
        }
        // The read half is checked as a store: AMOs fault as stores.
        let old = if word {
            i32::from_le_bytes(self.read_mem::<B, 4>(bus, addr, Access::Write)?) as u64
        } else {
            u64::from_le_bytes(self.read_mem::<B, 8>(bus, addr, Access::Write)?)
        };
        let (x, y) = if word {
            (old as i32 as i64 as u64, src as i32 as i64 as u64)
        } else {
            (old, src)
        };
        let (xu, yu) = if word {
            (old as u32 as u64, src as u32 as u64)
        } else {
            (old, src)
        };
        let new = match i.op {
            Op::AmoSwap => y,
            Op::AmoAdd => x.wrapping_add(y),
            Op::AmoXor => x ^ y,
            Op::AmoAnd => x & y,
            Op::AmoOr => x | y,
            Op::AmoMin => (x as i64).min(y as i64) as u64,
            Op::AmoMax => (x as i64).max(y as i64) as u64,
            Op::AmoMinu => xu.min(yu),
            _ => xu.max(yu),
        };
        let end = if word {
            self.write_mem::<B, 4>(bus, addr, (new as u32).to_le_bytes())?
        } else {
            self.write_mem::<B, 8>(bus, addr, new.to_le_bytes())?
        };
        self.alu(i, x)?;
        Ok(end)
    }

    /// SFENCE.VMA but for the pc: illegal in U-mode, and in S-mode with
    /// mstatus.TVM; else the TLB entries of the address in rs1 go, or
    /// every entry with rs1 = x0. (The ASID in rs2 is not looked at: each
    /// flush covers every address space, which the specification allows.)
    pub(crate) fn sfence_vma(&mut self, i: &Inst) -> Result<(), Exception> {
        if self.prv == prv::U || (self.prv == prv::S && self.csr.mstatus & csr::MSTATUS_TVM != 0) {
            return Err(Exception::illegal(i.raw));
        }
        if i.rs1 == 0 {
            self.tlb.flush_all();
        } else {
            self.tlb.flush_address(self.x[i.rs1 as usize]);
        }
        Ok(())
    }

    /// Whether the hart's privilege may run cache-block instruction `op`
    /// (else it is illegal).
    fn cbo_allowed(&self, op: Op) -> bool {
        // Which envcfg field enables the instruction below M-mode.
        let (field, needed) = match op {
            Op::CboZero => (ENVCFG_CBZE, ENVCFG_CBZE),
            Op::CboInval => (ENVCFG_CBIE, 1 << 4),
            _ => (ENVCFG_CBCFE, ENVCFG_CBCFE),
        };
        let enabled = |cfg: u64| cfg & field != 0 && (cfg & field) & needed != 0;
        match self.prv {
            prv::M => true,
            prv::S => enabled(self.csr.menvcfg),
            _ => enabled(self.csr.menvcfg) && enabled(self.csr.senvcfg),
        }
    }

    /// CBO.ZERO of the block holding `vaddr` but for the pc, when it is
    /// allowed and the TLB's write table has a fast entry for the block's
    /// page: then `exec_cbo` would make its eight stores on the fast path,
    /// which this does at once. False, with nothing done, otherwise.
    pub(crate) fn cbo_zero_fast(&mut self, ram: &mut crate::memory::Ram, vaddr: u64) -> bool {
        if !self.cbo_allowed(Op::CboZero) {
            return false;
        }
        let base = vaddr & !63;
        let (vpn, slot) = crate::tlb::tlb_slot(base);
        let e = self.tlb.table(self.data_mode, Access::Write)[slot];
        if e.tag != vpn {
            return false;
        }
        let off = e.ram_off + (base as usize & (crate::memory::PAGE_SIZE as usize - 1));
        ram.store_fast::<64>(off, [0; 64]);
        true
    }

    fn exec_cbo<B: Bus>(&mut self, bus: &mut B, i: &Inst) -> Flow {
        let addr = self.rs1(i);
        if !self.cbo_allowed(i.op) {
            return Err(Exception::illegal(i.raw));
        }
        let end = if i.op == Op::CboZero {
            self.zero_block(bus, addr)?
        } else {
            // Caches are not modelled; the access is still checked like a
            // load, and a fault is reported as a store fault.
            self.read_mem::<B, 1>(bus, addr & !63, Access::Read)
                .map_err(|e| {
                    let c = match e.cause {
                        cause::LOAD_PAGE_FAULT => cause::STORE_PAGE_FAULT,
                        cause::LOAD_ACCESS => cause::STORE_ACCESS,
                        other => other,
                    };
                    Exception::new(c, addr)
                })?;
            false
        };
        self.next(i);
        Ok(end)
    }

    /// Resolves the rounding mode of an FP instruction (7 = dynamic).
    fn rounding_mode(&self, i: &Inst) -> Result<u8, Exception> {
        let rm = if i.rm == 7 { self.csr.frm as u8 } else { i.rm };
        if rm > 4 {
            return Err(Exception::illegal(i.raw));
        }
        Ok(rm)
    }

    fn set_fd(&mut self, i: &Inst, r: FpResult) {
        self.f[(i.rd & 31) as usize] = r.bits;
        self.csr.fflags |= r.flags as u64;
        self.mark_fs_dirty();
    }

    fn set_rd_fp_flags(&mut self, i: &Inst, v: u64, flags: u8) {
        self.set_rd(i, v);
        if flags != 0 {
            self.csr.fflags |= flags as u64;
            self.mark_fs_dirty();
        }
    }

    fn exec_fp<B: Bus>(&mut self, bus: &mut B, i: &Inst) -> Flow {
        if !matches!(i.op, Op::Flw | Op::Fld | Op::Fsw | Op::Fsd) {
            // Everything but loads and stores, which need the bus.
            self.exec_fp_arith(i)?;
            self.next(i);
            return Ok(false);
        }
        if self.csr.mstatus & csr::MSTATUS_FS == 0 {
            return Err(Exception::illegal(i.raw));
        }
        let plain = |bits| FpResult { bits, flags: 0 };
        let fb = self.f[(i.rs2 & 31) as usize];
        match i.op {
            Op::Flw => {
                let v = self.load::<B, 4>(bus, i)?;
                self.set_fd(i, plain(fpu::box_single(u32::from_le_bytes(v))));
            }
            Op::Fld => {
                let v = self.load::<B, 8>(bus, i)?;
                self.set_fd(i, plain(u64::from_le_bytes(v)));
            }
            Op::Fsw => return self.store::<B, 4>(bus, i, (fb as u32).to_le_bytes()),
            _ => return self.store::<B, 8>(bus, i, fb.to_le_bytes()),
        }
        self.next(i);
        Ok(false)
    }

    /// The FP operations that touch nothing but the hart's registers (all
    /// but loads and stores), without advancing pc: also what translated
    /// code calls for them (jit/helpers.rs). On an exception nothing has
    /// changed.
    pub(crate) fn exec_fp_arith(&mut self, i: &Inst) -> Result<(), Exception> {
        if self.csr.mstatus & csr::MSTATUS_FS == 0 {
            return Err(Exception::illegal(i.raw));
        }
        let fa = self.f[(i.rs1 & 31) as usize];
        let fb = self.f[(i.rs2 & 31) as usize];
        let fc = self.f[(i.rs3 & 31) as usize];
        let fmt = i.fmt;
        let plain = |bits| FpResult { bits, flags: 0 };
        match i.op {
            Op::Fmadd | Op::Fmsub | Op::Fnmsub | Op::Fnmadd => {
                let rm = self.rounding_mode(i)?;
                let (neg_product, neg_addend) = match i.op {
                    Op::Fmadd => (false, false),
                    Op::Fmsub => (false, true),
                    Op::Fnmsub => (true, false),
                    _ => (true, true),
                };
                let r = fpu::fma(fmt, fa, fb, fc, rm, neg_product, neg_addend);
                self.set_fd(i, r);
            }
            Op::Fadd | Op::Fsub | Op::Fmul | Op::Fdiv => {
                let rm = self.rounding_mode(i)?;
                let r = match i.op {
                    Op::Fadd => fpu::add(fmt, fa, fb, rm),
                    Op::Fsub => fpu::sub(fmt, fa, fb, rm),
                    Op::Fmul => fpu::mul(fmt, fa, fb, rm),
                    _ => fpu::div(fmt, fa, fb, rm),
                };
                self.set_fd(i, r);
            }
            Op::Fsqrt => {
                let rm = self.rounding_mode(i)?;
                self.set_fd(i, fpu::sqrt(fmt, fa, rm));
            }
            Op::Fsgnj | Op::Fsgnjn | Op::Fsgnjx => {
                let kind = match i.op {
                    Op::Fsgnj => 0,
                    Op::Fsgnjn => 1,
                    _ => 2,
                };
                self.set_fd(i, plain(fpu::sign_inject(fmt, fa, fb, kind)));
            }
            Op::Fmin => self.set_fd(i, fpu::min(fmt, fa, fb)),
            Op::Fmax => self.set_fd(i, fpu::max(fmt, fa, fb)),
            Op::FcvtFF => {
                let rm = self.rounding_mode(i)?;
                let from = if fmt == Fmt::S { Fmt::D } else { Fmt::S };
                self.set_fd(i, fpu::convert(from, fmt, fa, rm));
            }
            Op::FcvtIF => {
                let rm = self.rounding_mode(i)?;
                let r = fpu::to_int(fmt, fa, rm, i.rs2 & 1 == 0, i.rs2 >= 2);
                self.set_rd_fp_flags(i, r.bits, r.flags);
            }
            Op::FcvtFI => {
                let rm = self.rounding_mode(i)?;
                let v = self.rs1(i);
                self.set_fd(i, fpu::from_int(fmt, v, rm, i.rs2 & 1 == 0, i.rs2 >= 2));
            }
            Op::FmvXF => {
                let v = if fmt == Fmt::S { sext32(fa) } else { fa };
                self.set_rd(i, v);
            }
            Op::FmvFX => {
                let v = self.rs1(i);
                let bits = if fmt == Fmt::S {
                    fpu::box_single(v as u32)
                } else {
                    v
                };
                self.set_fd(i, plain(bits));
            }
            Op::Feq | Op::Flt | Op::Fle => {
                let (v, flags) = match i.op {
                    Op::Feq => fpu::feq(fmt, fa, fb),
                    Op::Flt => fpu::flt(fmt, fa, fb),
                    _ => fpu::fle(fmt, fa, fb),
                };
                self.set_rd_fp_flags(i, v, flags);
            }
            Op::Fclass => self.set_rd(i, fpu::classify(fmt, fa)),
            _ => unreachable!("exec_fp_arith called for {:?}", i.op),
        }
        Ok(())
    }
}
