//! Address translation (Sv39, Sv48, Sv57), PMP, the software TLB, and the
//! load/store paths built on them.
//!
//! The TLB (tlb.rs) holds, per 4 KiB virtual page, the offset of the
//! backing page inside guest RAM, so a fast hit is a tag compare and an add.
//! An entry is filled after the page walk, permission checks and A/D updates
//! of an access to RAM have passed; it is fast when PMP permits the whole
//! page and, for writes, the page holds no decoded code, so that stores to
//! code always reach the checked path that invalidates cached blocks. A slow
//! entry's translation is used all the same (only PMP is checked again):
//! what the TLB holds is architectural, and never depends on the block cache.
//!
//! Choices where the specification leaves room:
//! - A and D bits are updated by the hart during the walk (as QEMU does).
//! - Misaligned loads and stores are performed, never trapped, as on QEMU,
//!   where Linux expects them to work; an access that crosses a page is split
//!   into bytes, each translated, and a store checks every byte's page before
//!   writing any. Misaligned LR/SC/AMOs raise address-misaligned.
//! - SFENCE.VMA flushes the whole TLB whatever its arguments: always correct,
//!   and cheap at this TLB size.
//! - A store that crosses a page walks the page table for each byte without
//!   looking at the TLB or filling it.

use crate::bus::Bus;
use crate::csr;
use crate::hart::{cause, prv, Exception, Hart};
use crate::memory::{Ram, PAGE_SHIFT, PAGE_SIZE};
pub use crate::tlb::Access;
use crate::tlb::{tlb_slot, Tlb, TlbEntry, SLOW};

impl Access {
    fn page_fault(self) -> u64 {
        match self {
            Access::Read => cause::LOAD_PAGE_FAULT,
            Access::Write => cause::STORE_PAGE_FAULT,
            Access::Execute => cause::FETCH_PAGE_FAULT,
        }
    }
    fn access_fault(self) -> u64 {
        match self {
            Access::Read => cause::LOAD_ACCESS,
            Access::Write => cause::STORE_ACCESS,
            Access::Execute => cause::FETCH_ACCESS,
        }
    }
    pub(crate) fn pmp_bit(self) -> u8 {
        match self {
            Access::Read => 1,
            Access::Write => 2,
            Access::Execute => 4,
        }
    }
}

/// Where a translated access lands.
enum Target {
    Ram(usize),
    Mmio(u64),
}

impl Hart {
    /// The privilege data accesses are made at (MPRV applied).
    pub(crate) fn data_prv(&self) -> u8 {
        let status = self.csr.mstatus;
        if self.prv == prv::M && status & csr::MSTATUS_MPRV != 0 {
            ((status >> 11) & 3) as u8
        } else {
            self.prv
        }
    }

    /// Translates `vaddr` for an access of kind `access` at privilege `p`,
    /// returning the physical address. Updates A/D bits.
    pub(crate) fn translate(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        access: Access,
        p: u8,
    ) -> Result<u64, Exception> {
        self.leaf_level = 0;
        let satp = self.csr.satp;
        let levels = match satp >> 60 {
            8 if p != prv::M => 3,
            9 if p != prv::M => 4,
            10 if p != prv::M => 5,
            _ => return Ok(vaddr),
        };
        let page_fault = Exception::new(access.page_fault(), vaddr);
        let va_bits = 12 + 9 * levels;
        // The address must be the sign extension of its low va_bits bits.
        let shift = 64 - va_bits;
        if (((vaddr << shift) as i64) >> shift) as u64 != vaddr {
            return Err(page_fault);
        }
        let mstatus = self.csr.mstatus;
        // Every PTE access below is checked against PMP as it is now.
        self.pmp.refresh(&self.csr);
        let mut table = (satp & ((1 << 44) - 1)) << PAGE_SHIFT;
        let mut level = levels - 1;
        loop {
            let vpn_i = (vaddr >> (12 + 9 * level)) & 0x1ff;
            let pte_addr = table + vpn_i * 8;
            // Page-table reads are checked by PMP as S-mode reads; a failure
            // is an access fault of the original access type.
            let access_fault = Exception::new(access.access_fault(), vaddr);
            if !self.pmp.check(pte_addr, 8, Access::Read, prv::S) {
                return Err(access_fault);
            }
            let off = ram.offset_of(pte_addr, 8).ok_or(access_fault)?;
            let mut pte = u64::from_le_bytes(ram.load::<8>(off));
            let (v, r, w, x) = (pte & 1, (pte >> 1) & 1, (pte >> 2) & 1, (pte >> 3) & 1);
            // Bits 63:54 are reserved (no Svpbmt or Svnapot here).
            if v == 0 || (r == 0 && w == 1) || pte >> 54 != 0 {
                return Err(page_fault);
            }
            if r == 0 && x == 0 {
                // A pointer: D, A and U are reserved on non-leaf entries.
                if level == 0 || pte & 0xd0 != 0 {
                    return Err(page_fault);
                }
                table = ((pte >> 10) & ((1 << 44) - 1)) << PAGE_SHIFT;
                level -= 1;
                continue;
            }
            // A leaf: check permissions.
            let user = (pte >> 4) & 1 == 1;
            match p {
                prv::U if !user => return Err(page_fault),
                prv::S
                    if user && (access == Access::Execute || mstatus & csr::MSTATUS_SUM == 0) =>
                {
                    return Err(page_fault)
                }
                _ => {}
            }
            let allowed = match access {
                Access::Read => r == 1 || (x == 1 && mstatus & csr::MSTATUS_MXR != 0),
                Access::Write => w == 1,
                Access::Execute => x == 1,
            };
            if !allowed {
                return Err(page_fault);
            }
            let ppn = (pte >> 10) & ((1 << 44) - 1);
            // A superpage's PPN must be aligned to its size.
            let low_mask = (1u64 << (9 * level)) - 1;
            if ppn & low_mask != 0 {
                return Err(page_fault);
            }
            let mut updated = pte | (1 << 6);
            if access == Access::Write {
                updated |= 1 << 7;
            }
            if updated != pte {
                if !self.pmp.check(pte_addr, 8, Access::Write, prv::S) {
                    return Err(access_fault);
                }
                pte = updated;
                ram.store_checked(off, &pte.to_le_bytes());
                self.walk_wrote_pte = true;
            }
            let page_off = vaddr & ((1 << (12 + 9 * level)) - 1);
            self.leaf_level = level as u8;
            return Ok(((ppn & !low_mask) << PAGE_SHIFT) | page_off);
        }
    }

    /// PMP for an access of `len` bytes at `paddr` within one page: None
    /// when it is refused, else whether PMP allows the whole page alike
    /// (so that a TLB entry for it may take the fast path). A page allowed
    /// allows every access within it (the first entry that overlaps the
    /// access is the first that overlaps the page, since that one covers
    /// it all), so this is one check, usually.
    fn pmp_check(&mut self, paddr: u64, len: u64, access: Access, p: u8) -> Option<bool> {
        let page = paddr & !(PAGE_SIZE - 1);
        self.pmp.refresh(&self.csr);
        if self.pmp.check(page, PAGE_SIZE, access, p) {
            Some(true)
        } else {
            self.pmp.check(paddr, len, access, p).then_some(false)
        }
    }

    /// PMP check of the physical range [paddr, paddr+len) at privilege `p`.
    pub(crate) fn pmp_allows(&mut self, paddr: u64, len: u64, access: Access, p: u8) -> bool {
        self.pmp.allows(&self.csr, paddr, len, access, p)
    }

    /// An access of `len` bytes within one page through a TLB entry that
    /// holds its translation but is marked slow: PMP is checked for this
    /// access, and the entry turns fast when nothing keeps it slow any more.
    /// The page table is not walked again: the hart keeps using the
    /// translation it cached, as it would on the fast path. None when the
    /// TLB does not translate `vaddr`.
    fn slow_hit<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        len: u64,
        access: Access,
        p: u8,
        mode: usize,
    ) -> Result<Option<usize>, Exception> {
        let (vpn, slot) = tlb_slot(vaddr);
        let e = self.tlb.table(mode, access)[slot];
        if e.tag & !SLOW != vpn {
            return Ok(None);
        }
        let ram = bus.ram();
        let off = e.ram_off + (vaddr & (PAGE_SIZE - 1)) as usize;
        let paddr = ram.base() + off as u64;
        let code = access == Access::Write && ram.is_code(e.ram_off);
        let Some(page_allowed) = self.pmp_check(paddr, len, access, p) else {
            return Err(Exception::new(access.access_fault(), vaddr));
        };
        let watched = access != Access::Execute && self.watching();
        if !code && !watched && page_allowed {
            self.tlb.table(mode, access)[slot].tag = vpn;
        }
        Ok(Some(off))
    }

    /// Translates and checks an access of `len` bytes that does not cross a
    /// page, filling the TLB when the page is RAM.
    fn resolve(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        len: u64,
        access: Access,
        p: u8,
        mode: usize,
    ) -> Result<Target, Exception> {
        let paddr = self.translate(ram, vaddr, access, p)?;
        let Some(page_allowed) = self.pmp_check(paddr, len, access, p) else {
            return Err(Exception::new(access.access_fault(), vaddr));
        };
        match ram.offset_of(paddr, len) {
            Some(off) => {
                let page_off = off & !(PAGE_SIZE as usize - 1);
                let watched = access != Access::Execute && self.watching();
                let code_write = access == Access::Write && ram.is_code(page_off);
                let fast = !code_write && !watched && page_allowed;
                let (vpn, slot) = tlb_slot(vaddr);
                let entry = TlbEntry {
                    tag: if fast { vpn } else { vpn | SLOW },
                    ram_off: page_off,
                };
                self.tlb.fill(mode, access, slot, entry, self.leaf_level);
                Ok(Target::Ram(off))
            }
            None => {
                if access == Access::Execute {
                    // Only RAM is executable on this board.
                    Err(Exception::new(access.access_fault(), vaddr))
                } else {
                    Ok(Target::Mmio(paddr))
                }
            }
        }
    }

    /// For translated code whose data access of `len` bytes at `vaddr`
    /// found no fast TLB entry: does what the interpreter's slow path would
    /// do first, the page walk and the TLB fill, and says whether that was
    /// all it would do before the access itself, so that the code may
    /// retry its fast path: the access stays on one page, the TLB held
    /// nothing for the page (a slow entry is `slow_hit`'s work), the walk
    /// wrote no PTE (an A/D update may have hit code, even the running
    /// block's), and the page is RAM that takes the fast path. Otherwise
    /// false, and what was done (a fill, an A/D update) is exactly the
    /// start of what the interpreter does when it redoes the access, which
    /// then finds the TLB filled, or walks again to the same fault, and
    /// ends where it would have alone.
    pub(crate) fn fill_for_translated(
        &mut self,
        ram: &mut Ram,
        vaddr: u64,
        len: u64,
        access: Access,
    ) -> bool {
        if (vaddr & (PAGE_SIZE - 1)) + len > PAGE_SIZE {
            return false;
        }
        let (p, mode) = (self.data_prv(), self.data_mode);
        let (vpn, slot) = tlb_slot(vaddr);
        if self.tlb.table(mode, access)[slot].tag & !SLOW == vpn {
            return false;
        }
        self.walk_wrote_pte = false;
        let filled = matches!(
            self.resolve(ram, vaddr, len, access, p, mode),
            Ok(Target::Ram(_))
        );
        filled && !self.walk_wrote_pte && self.tlb.table(mode, access)[slot].tag == vpn
    }

    /// Reads `N` bytes at `vaddr` as a load (or, with `access` Write, as the
    /// read half of an AMO).
    #[inline(always)]
    pub(crate) fn read_mem<B: Bus, const N: usize>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        access: Access,
    ) -> Result<[u8; N], Exception> {
        let (vpn, slot) = tlb_slot(vaddr);
        let e = self.tlb.table(self.data_mode, access)[slot];
        let in_page = (vaddr as usize & (PAGE_SIZE as usize - 1)) <= PAGE_SIZE as usize - N;
        if e.tag == vpn && in_page {
            let off = e.ram_off + (vaddr as usize & (PAGE_SIZE as usize - 1));
            return Ok(bus.ram().load::<N>(off));
        }
        self.read_slow::<B, N>(bus, vaddr, access)
    }

    #[inline(never)]
    fn read_slow<B: Bus, const N: usize>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        access: Access,
    ) -> Result<[u8; N], Exception> {
        let p = self.data_prv();
        let mode = self.data_mode;
        let mut out = [0u8; N];
        if (vaddr & (PAGE_SIZE - 1)) + N as u64 > PAGE_SIZE {
            for (i, byte) in out.iter_mut().enumerate() {
                let [b] = self.read_mem::<B, 1>(bus, vaddr.wrapping_add(i as u64), access)?;
                *byte = b;
            }
            return Ok(out);
        }
        let target = match self.slow_hit(bus, vaddr, N as u64, access, p, mode)? {
            Some(off) => Target::Ram(off),
            None => self.resolve(bus.ram(), vaddr, N as u64, access, p, mode)?,
        };
        let paddr = match target {
            Target::Ram(off) => {
                out = bus.ram().load::<N>(off);
                bus.ram().base() + off as u64
            }
            Target::Mmio(paddr) => {
                self.resample_lines();
                let v = bus
                    .mmio_read(self.id, self.clock(), paddr, N as u8)
                    .ok_or(Exception::new(access.access_fault(), vaddr))?;
                out.copy_from_slice(&v.to_le_bytes()[..N]);
                paddr
            }
        };
        if self.debug.is_some() {
            self.note_access(vaddr, paddr, N as u64, false);
        }
        Ok(out)
    }

    /// Writes `N` bytes at `vaddr`. Returns true when the store must end the
    /// current block (it touched code or a device).
    #[inline(always)]
    pub(crate) fn write_mem<B: Bus, const N: usize>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        value: [u8; N],
    ) -> Result<bool, Exception> {
        let (vpn, slot) = tlb_slot(vaddr);
        let e = self.tlb.table(self.data_mode, Access::Write)[slot];
        let in_page = (vaddr as usize & (PAGE_SIZE as usize - 1)) <= PAGE_SIZE as usize - N;
        if e.tag == vpn && in_page {
            let off = e.ram_off + (vaddr as usize & (PAGE_SIZE as usize - 1));
            bus.ram().store_fast::<N>(off, value);
            return Ok(false);
        }
        self.write_slow::<B, N>(bus, vaddr, value)
    }

    #[inline(never)]
    fn write_slow<B: Bus, const N: usize>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
        value: [u8; N],
    ) -> Result<bool, Exception> {
        let p = self.data_prv();
        let mode = self.data_mode;
        if (vaddr & (PAGE_SIZE - 1)) + N as u64 > PAGE_SIZE {
            // Check every byte before writing any, so a fault leaves memory unchanged.
            let mut targets = [0u64; N];
            for (i, t) in targets.iter_mut().enumerate() {
                let va = vaddr.wrapping_add(i as u64);
                let pa = self.translate(bus.ram(), va, Access::Write, p)?;
                if !self.pmp_allows(pa, 1, Access::Write, p) {
                    return Err(Exception::new(cause::STORE_ACCESS, va));
                }
                *t = pa;
            }
            let mut end_block = false;
            for (i, &pa) in targets.iter().enumerate() {
                end_block |= self.store_physical(bus, pa, &value[i..i + 1], vaddr)?;
                if self.debug.is_some() {
                    self.note_access(vaddr.wrapping_add(i as u64), pa, 1, true);
                }
            }
            return Ok(end_block);
        }
        let target = match self.slow_hit(bus, vaddr, N as u64, Access::Write, p, mode)? {
            Some(off) => Target::Ram(off),
            None => self.resolve(bus.ram(), vaddr, N as u64, Access::Write, p, mode)?,
        };
        let (end_block, paddr) = match target {
            Target::Ram(off) => (
                self.store_ram(bus, off, &value),
                bus.ram().base() + off as u64,
            ),
            Target::Mmio(paddr) => (self.store_physical(bus, paddr, &value, vaddr)?, paddr),
        };
        if self.debug.is_some() {
            self.note_access(vaddr, paddr, N as u64, true);
        }
        Ok(end_block)
    }

    /// A store to RAM through the checked path; true if it wrote into the
    /// page of the block being executed, which must then end (its decoded
    /// instructions may be stale). Stores to other code pages invalidate
    /// their blocks but do not end this one: where a block ends must not
    /// depend on which other pages happen to hold decoded code, or a
    /// restored machine (whose block cache starts empty) would split its
    /// blocks elsewhere.
    fn store_ram<B: Bus>(&mut self, bus: &mut B, off: usize, bytes: &[u8]) -> bool {
        let hit_code = bus.ram().store_checked(off, bytes);
        let page = self.block_page;
        hit_code && off < page.saturating_add(PAGE_SIZE as usize) && off + bytes.len() > page
    }

    fn store_physical<B: Bus>(
        &mut self,
        bus: &mut B,
        paddr: u64,
        bytes: &[u8],
        vaddr: u64,
    ) -> Result<bool, Exception> {
        if let Some(off) = bus.ram().offset_of(paddr, bytes.len() as u64) {
            return Ok(self.store_ram(bus, off, bytes));
        }
        let mut buf = [0u8; 8];
        buf[..bytes.len()].copy_from_slice(bytes);
        let value = u64::from_le_bytes(buf);
        self.resample_lines();
        if bus.mmio_write(self.id, self.clock(), paddr, bytes.len() as u8, value) {
            Ok(true)
        } else {
            Err(Exception::new(cause::STORE_ACCESS, vaddr))
        }
    }

    /// Translates `pc` for instruction fetch and returns its RAM offset.
    #[inline(always)]
    pub(crate) fn fetch_offset<B: Bus>(
        &mut self,
        bus: &mut B,
        pc: u64,
    ) -> Result<usize, Exception> {
        let (vpn, slot) = tlb_slot(pc);
        let mode = Tlb::mode_index(self.prv);
        let e = self.tlb.table(mode, Access::Execute)[slot];
        if e.tag == vpn {
            return Ok(e.ram_off + (pc as usize & (PAGE_SIZE as usize - 1)));
        }
        if let Some(off) = self.slow_hit(bus, pc, 2, Access::Execute, self.prv, mode)? {
            return Ok(off);
        }
        match self.resolve(bus.ram(), pc, 2, Access::Execute, self.prv, mode)? {
            Target::Ram(off) => Ok(off),
            Target::Mmio(_) => Err(Exception::new(cause::FETCH_ACCESS, pc)),
        }
    }

    /// Translates a whole aligned 64-byte cache block for cbo.zero and zeroes it.
    pub(crate) fn zero_block<B: Bus>(
        &mut self,
        bus: &mut B,
        vaddr: u64,
    ) -> Result<bool, Exception> {
        let base = vaddr & !63;
        let mut end_block = false;
        for chunk in 0..8 {
            end_block |= self.write_mem::<B, 8>(bus, base + chunk * 8, [0; 8])?;
        }
        Ok(end_block)
    }
}
