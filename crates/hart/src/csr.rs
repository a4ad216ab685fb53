//! Control and status registers: storage, access rules and side effects.
//!
//! WARL choices (each matches QEMU's `virt` rv64 hart so that software built
//! for it sees the same values):
//! - misa is read-only: RV64 IMAFDC with S and U.
//! - mtvec/stvec keep their old mode when written with a reserved mode (>= 2).
//! - mstatus.MPP keeps its old value when written with the reserved value 2.
//! - satp writes with an unsupported MODE are ignored entirely; ASIDLEN is 16.
//! - medeleg cannot delegate ecall from M-mode; mideleg can delegate SSIP,
//!   STIP and SEIP.
//! - 16 PMP entries with 4-byte granularity; hpm counters read as zero.

use crate::bus::{irq, Bus};
use crate::hart::{prv, Exception, Hart};

pub const MSTATUS_SIE: u64 = 1 << 1;
pub const MSTATUS_MIE: u64 = 1 << 3;
pub const MSTATUS_SPIE: u64 = 1 << 5;
pub const MSTATUS_MPIE: u64 = 1 << 7;
pub const MSTATUS_SPP: u64 = 1 << 8;
pub const MSTATUS_MPP: u64 = 3 << 11;
pub const MSTATUS_FS: u64 = 3 << 13;
pub const MSTATUS_MPRV: u64 = 1 << 17;
pub const MSTATUS_SUM: u64 = 1 << 18;
pub const MSTATUS_MXR: u64 = 1 << 19;
pub const MSTATUS_TVM: u64 = 1 << 20;
pub const MSTATUS_TW: u64 = 1 << 21;
pub const MSTATUS_TSR: u64 = 1 << 22;
pub const MSTATUS_UXL: u64 = 3 << 32;
pub const MSTATUS_SXL: u64 = 3 << 34;
pub const MSTATUS_SD: u64 = 1 << 63;

const MSTATUS_WRITABLE: u64 = MSTATUS_SIE
    | MSTATUS_MIE
    | MSTATUS_SPIE
    | MSTATUS_MPIE
    | MSTATUS_SPP
    | MSTATUS_MPP
    | MSTATUS_FS
    | MSTATUS_MPRV
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_TVM
    | MSTATUS_TW
    | MSTATUS_TSR;
const SSTATUS_VISIBLE: u64 = MSTATUS_SIE
    | MSTATUS_SPIE
    | MSTATUS_SPP
    | MSTATUS_FS
    | MSTATUS_SUM
    | MSTATUS_MXR
    | MSTATUS_UXL
    | MSTATUS_SD;
const SSTATUS_WRITABLE: u64 =
    MSTATUS_SIE | MSTATUS_SPIE | MSTATUS_SPP | MSTATUS_FS | MSTATUS_SUM | MSTATUS_MXR;

pub const MENVCFG_STCE: u64 = 1 << 63;
/// FIOM, CBIE, CBCFE and CBZE: the bits senvcfg and menvcfg share.
const ENVCFG_CBO_BITS: u64 = 0b1111_0001;
pub const ENVCFG_CBIE: u64 = 3 << 4;
pub const ENVCFG_CBCFE: u64 = 1 << 6;
pub const ENVCFG_CBZE: u64 = 1 << 7;

const MEDELEG_WRITABLE: u64 = 0xb3ff;
const MIDELEG_WRITABLE: u64 = irq::SSIP | irq::STIP | irq::SEIP;
const MIE_WRITABLE: u64 = irq::SSIP | irq::MSIP | irq::STIP | irq::MTIP | irq::SEIP | irq::MEIP;
/// The mip bits M-mode software may write (STIP only without Sstc).
const MIP_WRITABLE: u64 = irq::SSIP | irq::STIP | irq::SEIP;

/// misa: MXL = 64, extensions A C D F I M S U.
pub const MISA: u64 = (2 << 62)
    | (1 << 0)
    | (1 << 2)
    | (1 << 3)
    | (1 << 5)
    | (1 << 8)
    | (1 << 12)
    | (1 << 18)
    | (1 << 20);

pub const PMP_ENTRIES: usize = 16;

/// CSR numbers.
pub mod addr {
    pub const FFLAGS: u16 = 0x001;
    pub const FRM: u16 = 0x002;
    pub const FCSR: u16 = 0x003;
    pub const CYCLE: u16 = 0xc00;
    pub const TIME: u16 = 0xc01;
    pub const INSTRET: u16 = 0xc02;
    pub const HPMCOUNTER3: u16 = 0xc03;
    pub const HPMCOUNTER31: u16 = 0xc1f;
    pub const SSTATUS: u16 = 0x100;
    pub const SIE: u16 = 0x104;
    pub const STVEC: u16 = 0x105;
    pub const SCOUNTEREN: u16 = 0x106;
    pub const SENVCFG: u16 = 0x10a;
    pub const SSCRATCH: u16 = 0x140;
    pub const SEPC: u16 = 0x141;
    pub const SCAUSE: u16 = 0x142;
    pub const STVAL: u16 = 0x143;
    pub const SIP: u16 = 0x144;
    pub const STIMECMP: u16 = 0x14d;
    pub const SATP: u16 = 0x180;
    pub const MVENDORID: u16 = 0xf11;
    pub const MARCHID: u16 = 0xf12;
    pub const MIMPID: u16 = 0xf13;
    pub const MHARTID: u16 = 0xf14;
    pub const MCONFIGPTR: u16 = 0xf15;
    pub const MSTATUS: u16 = 0x300;
    pub const MISA: u16 = 0x301;
    pub const MEDELEG: u16 = 0x302;
    pub const MIDELEG: u16 = 0x303;
    pub const MIE: u16 = 0x304;
    pub const MTVEC: u16 = 0x305;
    pub const MCOUNTEREN: u16 = 0x306;
    pub const MENVCFG: u16 = 0x30a;
    pub const MCOUNTINHIBIT: u16 = 0x320;
    pub const MHPMEVENT3: u16 = 0x323;
    pub const MHPMEVENT31: u16 = 0x33f;
    pub const MSCRATCH: u16 = 0x340;
    pub const MEPC: u16 = 0x341;
    pub const MCAUSE: u16 = 0x342;
    pub const MTVAL: u16 = 0x343;
    pub const MIP: u16 = 0x344;
    pub const PMPCFG0: u16 = 0x3a0;
    pub const PMPCFG15: u16 = 0x3af;
    pub const PMPADDR0: u16 = 0x3b0;
    pub const PMPADDR63: u16 = 0x3ef;
    pub const MCYCLE: u16 = 0xb00;
    pub const MINSTRET: u16 = 0xb02;
    pub const MHPMCOUNTER3: u16 = 0xb03;
    pub const MHPMCOUNTER31: u16 = 0xb1f;
}

/// Whether CSR `num` is one of the FP unit's: fflags, frm or fcsr.
pub(crate) fn is_fp_csr(num: u16) -> bool {
    matches!(num, addr::FFLAGS | addr::FRM | addr::FCSR)
}

/// The CSR file (state only; behaviour lives in `Hart` methods below).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Csrs {
    /// mstatus without SD, which is derived on read.
    pub mstatus: u64,
    pub medeleg: u64,
    pub mideleg: u64,
    pub mie: u64,
    /// Software-writable mip bits (SSIP, STIP, SEIP).
    pub mip_sw: u64,
    pub mtvec: u64,
    pub mscratch: u64,
    pub mepc: u64,
    pub mcause: u64,
    pub mtval: u64,
    pub mcounteren: u64,
    pub mcountinhibit: u64,
    pub menvcfg: u64,
    pub stvec: u64,
    pub sscratch: u64,
    pub sepc: u64,
    pub scause: u64,
    pub stval: u64,
    pub scounteren: u64,
    pub senvcfg: u64,
    pub satp: u64,
    pub stimecmp: u64,
    pub fflags: u64,
    pub frm: u64,
    pub pmpcfg: [u8; PMP_ENTRIES],
    pub pmpaddr: [u64; PMP_ENTRIES],
    /// mcycle = clock + offset (while not inhibited).
    pub mcycle_offset: u64,
    /// minstret = instret + offset (while not inhibited).
    pub minstret_offset: u64,
    /// The counter values frozen when mcountinhibit set CY / IR.
    pub mcycle_frozen: u64,
    pub minstret_frozen: u64,
    pub mhartid: u64,
}

impl Csrs {
    pub fn new(hartid: u64) -> Self {
        Csrs {
            mstatus: (2 << 32) | (2 << 34), // UXL = SXL = 64 bits
            medeleg: 0,
            mideleg: 0,
            mie: 0,
            mip_sw: 0,
            mtvec: 0,
            mscratch: 0,
            mepc: 0,
            mcause: 0,
            mtval: 0,
            mcounteren: 0,
            mcountinhibit: 0,
            menvcfg: 0,
            stvec: 0,
            sscratch: 0,
            sepc: 0,
            scause: 0,
            stval: 0,
            scounteren: 0,
            senvcfg: 0,
            satp: 0,
            stimecmp: u64::MAX,
            fflags: 0,
            frm: 0,
            pmpcfg: [0; PMP_ENTRIES],
            pmpaddr: [0; PMP_ENTRIES],
            mcycle_offset: 0,
            minstret_offset: 0,
            mcycle_frozen: 0,
            minstret_frozen: 0,
            mhartid: hartid,
        }
    }

    /// mstatus as software reads it, with SD derived from FS.
    pub fn mstatus_value(&self) -> u64 {
        let mut v = self.mstatus;
        if v & MSTATUS_FS == MSTATUS_FS {
            v |= MSTATUS_SD;
        }
        v
    }
}

/// What a CSR write changed beyond the register itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WriteEffects {
    pub flush_tlb: bool,
}

impl Hart {
    /// Checks privilege and read-only rules for accessing CSR `num`.
    fn csr_access_allowed(&self, num: u16, write: bool) -> bool {
        let min_prv = ((num >> 8) & 3) as u8;
        if self.prv < min_prv {
            return false;
        }
        if write && (num >> 10) & 3 == 3 {
            return false;
        }
        true
    }

    /// S/U access to the user counters is gated by mcounteren and scounteren.
    fn counter_enabled(&self, index: u16) -> bool {
        let bit = 1u64 << index;
        match self.prv {
            prv::M => true,
            prv::S => self.csr.mcounteren & bit != 0,
            _ => self.csr.mcounteren & bit != 0 && self.csr.scounteren & bit != 0,
        }
    }

    fn fp_enabled(&self) -> bool {
        self.csr.mstatus & MSTATUS_FS != 0
    }

    pub(crate) fn mark_fs_dirty(&mut self) {
        self.csr.mstatus |= MSTATUS_FS;
    }

    fn mcycle(&self) -> u64 {
        if self.csr.mcountinhibit & 1 != 0 {
            self.csr.mcycle_frozen
        } else {
            self.clock().wrapping_add(self.csr.mcycle_offset)
        }
    }

    fn minstret(&self) -> u64 {
        if self.csr.mcountinhibit & 4 != 0 {
            self.csr.minstret_frozen
        } else {
            self.instret.wrapping_add(self.csr.minstret_offset)
        }
    }

    /// The value of FP CSR `num` (fflags, frm or fcsr).
    fn fp_csr_value(&self, num: u16) -> u64 {
        let c = &self.csr;
        match num {
            addr::FFLAGS => c.fflags,
            addr::FRM => c.frm,
            _ => (c.frm << 5) | c.fflags,
        }
    }

    /// Executes a CSR instruction on fflags, frm or fcsr ([`is_fp_csr`]),
    /// without advancing pc: what the interpreter runs for them in the
    /// middle of a block (translated code writes the same out,
    /// jit/translate/fp.rs). It does what `exec_csr` does, less what cannot
    /// apply to these three (no TLB flush, no mode or interrupt line
    /// changes); on an exception nothing has changed.
    pub(crate) fn exec_fp_csr(&mut self, i: &crate::decode::Inst) -> Result<(), Exception> {
        let num = i.imm as u16 & 0xfff;
        debug_assert!(is_fp_csr(num));
        let update = crate::exec::CsrUpdate::of(self, i);
        if !self.csr_access_allowed(num, update.writes) || !self.fp_enabled() {
            return Err(Exception::illegal(i.raw));
        }
        let old = self.fp_csr_value(num);
        if update.writes {
            let effects = self.csr_write(num, update.new_value(old));
            debug_assert!(!effects.flush_tlb);
        }
        self.x[(i.rd & 31) as usize] = old;
        self.x[0] = 0;
        Ok(())
    }

    /// The value csrrs and csrrc set or clear bits of, given `read`, what
    /// the instruction reads: that, except that mip's SEIP is its
    /// software-writable bit alone (privileged spec, mip). A read ORs the
    /// PLIC's line in; were that written back, firmware setting SSIP while
    /// the line was high would latch SEIP for good, which S-mode cannot
    /// clear: Linux then takes external interrupts forever.
    pub(crate) fn csr_modified_value(&self, num: u16, read: u64) -> u64 {
        if num == addr::MIP {
            (read & !irq::SEIP) | (self.csr.mip_sw & irq::SEIP)
        } else {
            read
        }
    }

    /// Reads CSR `num` as the instruction `raw` would; errors are illegal-instruction.
    pub(crate) fn csr_read<B: Bus>(
        &mut self,
        bus: &mut B,
        num: u16,
        raw: u32,
        will_write: bool,
    ) -> Result<u64, Exception> {
        self.csr_read_with(num, raw, will_write, |clock| bus.time(clock))
    }

    /// [`Hart::csr_read`] with `time` giving the `time` CSR at a clock:
    /// the only CSR a bus is needed for.
    pub(crate) fn csr_read_with(
        &mut self,
        num: u16,
        raw: u32,
        will_write: bool,
        time: impl FnOnce(u64) -> u64,
    ) -> Result<u64, Exception> {
        use addr::*;
        let illegal = Exception::illegal(raw);
        if !self.csr_access_allowed(num, will_write) {
            return Err(illegal);
        }
        let c = &self.csr;
        let v = match num {
            FFLAGS | FRM | FCSR => {
                if !self.fp_enabled() {
                    return Err(illegal);
                }
                self.fp_csr_value(num)
            }
            CYCLE | TIME | INSTRET | HPMCOUNTER3..=HPMCOUNTER31 => {
                if !self.counter_enabled(num - CYCLE) {
                    return Err(illegal);
                }
                match num {
                    CYCLE => self.mcycle(),
                    TIME => time(self.clock()),
                    INSTRET => self.minstret(),
                    _ => 0,
                }
            }
            SSTATUS => c.mstatus_value() & SSTATUS_VISIBLE,
            SIE => c.mie & c.mideleg,
            STVEC => c.stvec,
            SCOUNTEREN => c.scounteren,
            SENVCFG => c.senvcfg,
            SSCRATCH => c.sscratch,
            SEPC => c.sepc,
            SCAUSE => c.scause,
            STVAL => c.stval,
            SIP => self.mip() & c.mideleg,
            STIMECMP => {
                if self.prv == prv::S && (c.menvcfg & MENVCFG_STCE == 0 || c.mcounteren & 2 == 0) {
                    return Err(illegal);
                }
                c.stimecmp
            }
            SATP => {
                if self.prv == prv::S && c.mstatus & MSTATUS_TVM != 0 {
                    return Err(illegal);
                }
                c.satp
            }
            MVENDORID | MARCHID | MIMPID | MCONFIGPTR => 0,
            MHARTID => c.mhartid,
            MSTATUS => c.mstatus_value(),
            addr::MISA => self::MISA,
            MEDELEG => c.medeleg,
            MIDELEG => c.mideleg,
            MIE => c.mie,
            MTVEC => c.mtvec,
            MCOUNTEREN => c.mcounteren,
            MENVCFG => c.menvcfg,
            MCOUNTINHIBIT => c.mcountinhibit,
            MHPMEVENT3..=MHPMEVENT31 => 0,
            MSCRATCH => c.mscratch,
            MEPC => c.mepc,
            MCAUSE => c.mcause,
            MTVAL => c.mtval,
            MIP => self.mip(),
            PMPCFG0..=PMPCFG15 => {
                let n = (num - PMPCFG0) as usize;
                if n % 2 == 1 {
                    return Err(illegal);
                }
                if n * 4 >= PMP_ENTRIES {
                    0
                } else {
                    let bytes = &c.pmpcfg[n * 4..n * 4 + 8];
                    u64::from_le_bytes(bytes.try_into().expect("8 bytes"))
                }
            }
            PMPADDR0..=PMPADDR63 => {
                let n = (num - PMPADDR0) as usize;
                c.pmpaddr.get(n).copied().unwrap_or(0)
            }
            MCYCLE => self.mcycle(),
            MINSTRET => self.minstret(),
            MHPMCOUNTER3..=MHPMCOUNTER31 => 0,
            _ => return Err(illegal),
        };
        Ok(v)
    }

    /// Writes CSR `num` (access already checked by a `csr_read` with
    /// `will_write`, or by `csr_check_write`).
    pub(crate) fn csr_write(&mut self, num: u16, value: u64) -> WriteEffects {
        use addr::*;
        let mut fx = WriteEffects::default();
        let (clock, instret) = (self.clock(), self.instret);
        let (cycle_now, instret_now) = (self.mcycle(), self.minstret());
        let c = &mut self.csr;
        match num {
            FFLAGS => {
                c.fflags = value & 0x1f;
                c.mstatus |= MSTATUS_FS;
            }
            FRM => {
                c.frm = value & 7;
                c.mstatus |= MSTATUS_FS;
            }
            FCSR => {
                c.fflags = value & 0x1f;
                c.frm = (value >> 5) & 7;
                c.mstatus |= MSTATUS_FS;
            }
            SSTATUS => {
                let old = c.mstatus;
                c.mstatus = (old & !SSTATUS_WRITABLE) | (value & SSTATUS_WRITABLE);
                fx.flush_tlb = (old ^ c.mstatus) & (MSTATUS_SUM | MSTATUS_MXR) != 0;
            }
            SIE => c.mie = (c.mie & !c.mideleg) | (value & c.mideleg & MIE_WRITABLE),
            STVEC => c.stvec = legal_tvec(c.stvec, value),
            SCOUNTEREN => c.scounteren = value & 0xffff_ffff,
            SENVCFG => c.senvcfg = value & ENVCFG_CBO_BITS,
            SSCRATCH => c.sscratch = value,
            SEPC => c.sepc = value & !1,
            SCAUSE => c.scause = value,
            STVAL => c.stval = value,
            SIP => {
                let mask = irq::SSIP & c.mideleg;
                c.mip_sw = (c.mip_sw & !mask) | (value & mask);
            }
            STIMECMP => c.stimecmp = value,
            SATP => {
                let mode = value >> 60;
                if matches!(mode, 0 | 8 | 9 | 10) {
                    // ASIDLEN is 16 and PPN 44 bits: every other bit is kept.
                    c.satp = value;
                    fx.flush_tlb = true;
                }
            }
            MSTATUS => {
                let old = c.mstatus;
                let mut v = (old & !MSTATUS_WRITABLE) | (value & MSTATUS_WRITABLE);
                if (v >> 11) & 3 == 2 {
                    v = (v & !MSTATUS_MPP) | (old & MSTATUS_MPP);
                }
                c.mstatus = v;
                fx.flush_tlb = (old ^ v) & (MSTATUS_SUM | MSTATUS_MXR) != 0;
            }
            addr::MISA => {}
            MEDELEG => c.medeleg = value & MEDELEG_WRITABLE,
            MIDELEG => c.mideleg = value & MIDELEG_WRITABLE,
            MIE => c.mie = value & MIE_WRITABLE,
            MTVEC => c.mtvec = legal_tvec(c.mtvec, value),
            MCOUNTEREN => c.mcounteren = value & 0xffff_ffff,
            MENVCFG => {
                c.menvcfg = (value & ENVCFG_CBO_BITS) | (value & MENVCFG_STCE);
            }
            MCOUNTINHIBIT => {
                // Freeze or resume each counter at the value it had.
                c.mcycle_frozen = cycle_now;
                c.minstret_frozen = instret_now;
                c.mcycle_offset = cycle_now.wrapping_sub(clock);
                c.minstret_offset = instret_now.wrapping_sub(instret);
                c.mcountinhibit = value & !2 & 0xffff_ffff;
            }
            MHPMEVENT3..=MHPMEVENT31 | MHPMCOUNTER3..=MHPMCOUNTER31 => {}
            MSCRATCH => c.mscratch = value,
            MEPC => c.mepc = value & !1,
            MCAUSE => c.mcause = value,
            MTVAL => c.mtval = value,
            MIP => {
                // With Sstc enabled, STIP is read-only: it shows stimecmp.
                let writable = if c.menvcfg & MENVCFG_STCE != 0 {
                    MIP_WRITABLE & !irq::STIP
                } else {
                    MIP_WRITABLE
                };
                c.mip_sw = (c.mip_sw & !writable) | (value & writable);
            }
            PMPCFG0..=PMPCFG15 => {
                let first = ((num - PMPCFG0) as usize) * 4;
                for i in 0..8 {
                    let entry = first + i;
                    if entry < PMP_ENTRIES && c.pmpcfg[entry] & 0x80 == 0 {
                        // Bits 6:5 are reserved and read as zero.
                        c.pmpcfg[entry] = (value >> (8 * i)) as u8 & 0x9f;
                    }
                }
                fx.flush_tlb = true;
            }
            PMPADDR0..=PMPADDR63 => {
                let n = (num - PMPADDR0) as usize;
                if n < PMP_ENTRIES {
                    let locked = c.pmpcfg[n] & 0x80 != 0;
                    let next_locked_tor = n + 1 < PMP_ENTRIES
                        && c.pmpcfg[n + 1] & 0x80 != 0
                        && (c.pmpcfg[n + 1] >> 3) & 3 == 1;
                    if !locked && !next_locked_tor {
                        c.pmpaddr[n] = value & ((1 << 54) - 1);
                    }
                }
                fx.flush_tlb = true;
            }
            MCYCLE => {
                // The written value is what the next instruction reads.
                c.mcycle_frozen = value;
                c.mcycle_offset = value.wrapping_sub(clock + 1);
            }
            MINSTRET => {
                c.minstret_frozen = value;
                c.minstret_offset = value.wrapping_sub(instret + 1);
            }
            _ => {}
        }
        fx
    }
}

/// mtvec/stvec: modes 0 (direct) and 1 (vectored); a reserved mode keeps the old one.
fn legal_tvec(old: u64, value: u64) -> u64 {
    let mode = value & 3;
    if mode >= 2 {
        (value & !3) | (old & 3)
    } else {
        value
    }
}
