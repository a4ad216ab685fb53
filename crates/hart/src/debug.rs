//! What a debugger asks of a hart: breakpoints, watchpoints, and reading or
//! writing guest memory the way the hart sees it, without the guest being
//! able to tell.
//!
//! None of this is guest state. Breakpoints are kept by the hart, never
//! written into guest memory, so a recording or snapshot is the same with or
//! without a debugger attached; a hart with hooks executes exactly what a
//! hart without them does, it only stops earlier:
//! - at a breakpoint, just before the instruction at that pc would execute
//!   (before fetching it), so nothing of it has happened;
//! - at a watchpoint, just after the instruction that made the access
//!   retired (a faulting access is not a hit: nothing was read or written).
//!
//! Watched accesses are caught on the slow memory path: while a hart has
//! watchpoints, its data TLB entries are marked slow (a mark that is not
//! architectural, see tlb.rs), so the fast path never sees them and costs
//! nothing more when nobody watches.

use crate::bus::Bus;
use crate::hart::{prv, Hart};
use crate::memory::{Ram, PAGE_SHIFT, PAGE_SIZE};
use crate::tlb::{tlb_slot, Access, Tlb, SLOW};
use std::collections::BTreeSet;

/// What kind of access a watchpoint stops on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WatchKind {
    Read,
    Write,
    /// Either.
    Access,
}

impl WatchKind {
    fn matches(self, write: bool) -> bool {
        match self {
            WatchKind::Read => !write,
            WatchKind::Write => write,
            WatchKind::Access => true,
        }
    }
}

/// Which addresses a watchpoint's range is in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Space {
    /// As the accessing hart translates them at the time of the access.
    Virtual,
    Physical,
}

/// A watched range of `len` bytes (at least one) at `start`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Watch {
    pub start: u64,
    pub len: u64,
    pub kind: WatchKind,
    pub space: Space,
}

impl Watch {
    fn overlaps(&self, addr: u64, len: u64) -> bool {
        let end = self.start.saturating_add(self.len.max(1));
        addr < end && addr.saturating_add(len) > self.start
    }
}

/// Why a hart with hooks stopped ([`crate::Exit::Debug`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DebugStop {
    /// The hart has taken the steps [`DebugHooks::stop_at_step`] named.
    Step,
    /// The hart is about to execute the instruction at `pc`.
    Breakpoint { pc: u64 },
    /// The instruction that just retired accessed `addr` (in the watch's
    /// space), which `watch` covers.
    Watch {
        watch: Watch,
        addr: u64,
        write: bool,
    },
}

/// A debugger's hooks on one hart.
#[derive(Clone, Debug, Default)]
pub struct DebugHooks {
    /// Virtual pcs, at any privilege.
    pub breakpoints: BTreeSet<u64>,
    pub watches: Vec<Watch>,
    /// A breakpoint does not stop the hart while its step count is this:
    /// the hart resumes from the breakpoint it stopped at.
    pub pass_at_step: Option<u64>,
    /// Stop the hart once it has taken this many steps, just before its
    /// next (single-stepping, and finding a hart's earlier step).
    pub stop_at_step: Option<u64>,
    pub(crate) hit: Option<DebugStop>,
}

impl Hart {
    /// Attaches (or, with None, removes) a debugger's hooks. Changes nothing
    /// the guest can see.
    pub fn set_debug(&mut self, hooks: Option<DebugHooks>) {
        let watching = hooks.as_ref().is_some_and(|h| !h.watches.is_empty());
        self.debug = hooks.map(Box::new);
        if watching {
            self.tlb.slow_data();
        }
    }

    /// The hooks attached, if any.
    pub fn debug(&self) -> Option<&DebugHooks> {
        self.debug.as_deref()
    }

    /// Why the hart last returned [`crate::Exit::Debug`], once.
    pub fn take_debug_stop(&mut self) -> Option<DebugStop> {
        self.debug.as_mut().and_then(|d| d.hit.take())
    }

    /// Steps taken since reset: instructions retired plus traps entered.
    /// Each changes the hart's state; nothing else it does (idle time in
    /// WFI) is a step.
    #[inline(always)]
    pub fn steps(&self) -> u64 {
        self.instret + self.traps
    }

    pub(crate) fn watching(&self) -> bool {
        self.debug.as_ref().is_some_and(|d| !d.watches.is_empty())
    }

    /// True (and the stop recorded) if a breakpoint stops the hart before
    /// the instruction at pc.
    pub(crate) fn breakpoint_here(&mut self) -> bool {
        let steps = self.steps();
        let pc = self.pc;
        let Some(d) = self.debug.as_mut() else {
            return false;
        };
        if d.pass_at_step == Some(steps) || !d.breakpoints.contains(&pc) {
            return false;
        }
        d.hit = Some(DebugStop::Breakpoint { pc });
        true
    }

    /// True (and the stop recorded) if the hart has taken the steps its
    /// hooks allow: it must stop before the next.
    #[inline(always)]
    pub(crate) fn step_limit_here(&mut self) -> bool {
        let steps = self.steps();
        match self.debug.as_mut() {
            Some(d) if d.stop_at_step.is_some_and(|s| steps >= s) => {
                d.hit = Some(DebugStop::Step);
                true
            }
            _ => false,
        }
    }

    /// Steps the hooks let the hart take before it must stop.
    pub(crate) fn steps_allowed(&self) -> u64 {
        match self.debug.as_ref().and_then(|d| d.stop_at_step) {
            Some(s) => s.saturating_sub(self.steps()),
            None => u64::MAX,
        }
    }

    /// Whether the block of `insts` starting at pc must run instruction by
    /// instruction under the hooks: when memory is watched, or a breakpoint
    /// lies inside it. Otherwise it runs at full speed (a step limit is
    /// kept by the block's budget), so that a breakpoint costs a range
    /// lookup per block, not a lookup per instruction.
    pub(crate) fn block_needs_hooks(&self, insts: &[crate::decode::Inst]) -> bool {
        let Some(d) = self.debug.as_deref() else {
            return false;
        };
        if !d.watches.is_empty() {
            return true;
        }
        if d.breakpoints.is_empty() {
            return false;
        }
        let bytes: u64 = insts.iter().map(|i| u64::from(i.len)).sum();
        match self.pc.checked_add(bytes) {
            Some(end) => d.breakpoints.range(self.pc..end).next().is_some(),
            None => true,
        }
    }

    /// True when the last instruction hit a watchpoint.
    pub(crate) fn debug_hit(&self) -> bool {
        self.debug.as_ref().is_some_and(|d| d.hit.is_some())
    }

    /// Forgets a hit of an instruction that then trapped: it did not access.
    pub(crate) fn drop_watch_hit(&mut self) {
        if let Some(d) = self.debug.as_mut() {
            if matches!(d.hit, Some(DebugStop::Watch { .. })) {
                d.hit = None;
            }
        }
    }

    /// Called by the slow memory path after an access of `len` bytes at
    /// `vaddr` (physical `paddr`) succeeded.
    pub(crate) fn note_access(&mut self, vaddr: u64, paddr: u64, len: u64, write: bool) {
        let Some(d) = self.debug.as_mut() else {
            return;
        };
        if d.hit.is_some() {
            return;
        }
        for w in &d.watches {
            let addr = match w.space {
                Space::Virtual => vaddr,
                Space::Physical => paddr,
            };
            if w.kind.matches(write) && w.overlaps(addr, len) {
                d.hit = Some(DebugStop::Watch {
                    watch: *w,
                    addr: addr.max(w.start),
                    write,
                });
                return;
            }
        }
    }
}

/// Reading and writing memory for a debugger.
impl Hart {
    /// The physical address `vaddr` has for this hart's data accesses now:
    /// the TLB's translation if it holds one (the hart would use it, even if
    /// the page table changed since), else a walk of the page table. Unlike
    /// an access, it changes nothing (no A/D bits, no TLB fill) and checks
    /// no permissions, so a debugger sees user and kernel pages alike.
    pub fn peek_translate(&self, ram: &Ram, vaddr: u64) -> Option<u64> {
        let p = self.data_prv();
        let levels = match self.csr.satp >> 60 {
            _ if p == prv::M => return Some(vaddr),
            8 => 3,
            9 => 4,
            10 => 5,
            _ => return Some(vaddr),
        };
        let (vpn, slot) = tlb_slot(vaddr);
        let mode = Tlb::mode_index(p);
        for access in [Access::Read, Access::Write, Access::Execute] {
            let e = self.tlb.entry(mode, access, slot);
            if e.tag & !SLOW == vpn {
                return Some(ram.base() + e.ram_off as u64 + (vaddr & (PAGE_SIZE - 1)));
            }
        }
        let va_bits = 12 + 9 * levels;
        let shift = 64 - va_bits;
        if (((vaddr << shift) as i64) >> shift) as u64 != vaddr {
            return None;
        }
        let mut table = (self.csr.satp & ((1 << 44) - 1)) << PAGE_SHIFT;
        let mut level = levels - 1;
        loop {
            let pte_addr = table + ((vaddr >> (12 + 9 * level)) & 0x1ff) * 8;
            let mut raw = [0u8; 8];
            ram.read_bytes(pte_addr, &mut raw)?;
            let pte = u64::from_le_bytes(raw);
            if pte & 1 == 0 {
                return None;
            }
            let ppn = (pte >> 10) & ((1 << 44) - 1);
            if pte & 0b1010 == 0 {
                if level == 0 {
                    return None;
                }
                table = ppn << PAGE_SHIFT;
                level -= 1;
                continue;
            }
            let low_mask = (1u64 << (9 * level)) - 1;
            let page_off = vaddr & ((1 << (12 + 9 * level)) - 1);
            return Some(((ppn & !low_mask) << PAGE_SHIFT) | page_off);
        }
    }

    /// Reads guest RAM at `vaddr` as [`Hart::peek_translate`] maps it, page
    /// by page. Device memory is not read (reading it has effects). Returns
    /// how many bytes were read: fewer than asked where the range stops
    /// being mapped RAM.
    pub fn peek_virtual(&self, ram: &Ram, vaddr: u64, out: &mut [u8]) -> usize {
        let mut done = 0;
        while done < out.len() {
            let va = vaddr.wrapping_add(done as u64);
            let chunk = ((PAGE_SIZE - (va & (PAGE_SIZE - 1))) as usize).min(out.len() - done);
            let Some(pa) = self.peek_translate(ram, va) else {
                break;
            };
            if ram.read_bytes(pa, &mut out[done..done + chunk]).is_none() {
                break;
            }
            done += chunk;
        }
        done
    }

    /// Writes `data` into guest RAM at `vaddr` for a debugger, as the hart
    /// translates it, invalidating decoded code it overwrites. Returns the
    /// bytes written (fewer where the range stops being mapped RAM).
    pub fn poke_virtual<B: Bus>(&mut self, bus: &mut B, vaddr: u64, data: &[u8]) -> usize {
        let mut done = 0;
        while done < data.len() {
            let va = vaddr.wrapping_add(done as u64);
            let chunk = ((PAGE_SIZE - (va & (PAGE_SIZE - 1))) as usize).min(data.len() - done);
            let Some(pa) = self.peek_translate(bus.ram(), va) else {
                break;
            };
            let Some(off) = bus.ram().offset_of(pa, chunk as u64) else {
                break;
            };
            bus.ram().store_checked(off, &data[done..done + chunk]);
            done += chunk;
        }
        done
    }
}

/// CSRs for a debugger.
impl Hart {
    /// CSR `num` as M-mode software would read it now, whatever the
    /// hart's privilege or FS state; None for a CSR the hart does not have.
    /// Reading changes nothing.
    pub fn peek_csr<B: Bus>(&mut self, bus: &mut B, num: u16) -> Option<u64> {
        use crate::csr::addr;
        match num {
            addr::FFLAGS => return Some(self.csr.fflags),
            addr::FRM => return Some(self.csr.frm),
            addr::FCSR => return Some((self.csr.frm << 5) | self.csr.fflags),
            // The user counters read through their machine twins, which
            // no counter-enable bit hides.
            addr::CYCLE => return self.peek_csr(bus, addr::MCYCLE),
            addr::INSTRET => return self.peek_csr(bus, addr::MINSTRET),
            addr::TIME => return Some(bus.time(self.clock())),
            _ => {}
        }
        let prv = std::mem::replace(&mut self.prv, prv::M);
        let value = self.csr_read(bus, num, 0, false).ok();
        self.prv = prv;
        value
    }

    /// Writes CSR `num` as M-mode software would (read-only CSRs and
    /// fields keep their values); false for a CSR the hart does not have
    /// or cannot write.
    pub fn poke_csr<B: Bus>(&mut self, bus: &mut B, num: u16, value: u64) -> bool {
        if (num >> 10) & 3 == 3 || self.peek_csr(bus, num).is_none() {
            return false;
        }
        let effects = self.csr_write(num, value);
        if effects.flush_tlb {
            self.tlb.flush_all();
        }
        self.refresh_modes();
        self.resample_lines();
        true
    }

    /// Sets the privilege level (0 U, 1 S, 3 M); false for any other.
    pub fn poke_privilege(&mut self, level: u8) -> bool {
        if ![prv::U, prv::S, prv::M].contains(&level) {
            return false;
        }
        self.prv = level;
        self.refresh_modes();
        self.resample_lines();
        true
    }
}
