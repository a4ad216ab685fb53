//! The software TLB: architectural state, not a cache the guest cannot see.
//!
//! RISC-V lets a hart go on using a translation it has cached after the page
//! table entry behind it changes, until SFENCE.VMA (or a satp write) drops
//! it. So what this TLB holds decides what the guest reads and writes, and a
//! machine restored from a snapshot must hold the same entries as the one
//! that was saved, or a guest that rewrites a PTE without SFENCE.VMA sees
//! the old page in one run and the new page in the other. The TLB is
//! therefore saved with the hart ([`TlbState`]) and covered by the machine's
//! state hash, and its contents depend on architectural events only:
//!
//! - an entry is filled after every successful translation of an access to
//!   RAM (a page walk that passed its permission and PMP checks), and only
//!   then; accesses to devices are never cached;
//! - entries are dropped only by SFENCE.VMA, satp writes, PMP writes and
//!   changes of SUM or MXR, and replaced only by a fill of the same slot;
//!   SFENCE.VMA with an address drops just the entries its leaf PTE made
//!   (that page's, or all those of a superpage holding it), as the
//!   specification allows, so each entry remembers its leaf's level;
//! - the table is direct-mapped (one slot per virtual page number modulo
//!   [`TLB_SIZE`]), one table per privilege level the access is checked at
//!   and per access kind (read, write, execute).
//!
//! What is *not* architectural is whether an access through an entry may
//! take the fast path (a compare and an add): it may not while the page
//! holds decoded code (writes must reach the checked path that invalidates
//! blocks) or when PMP does not permit the whole page uniformly. Such an
//! entry is marked [`SLOW`]: its translation is still used, never walked
//! again, and the access is checked on the slow path. The mark depends on
//! the block cache, so it is neither saved nor hashed, and a restored entry
//! starts slow and turns fast on its first use where it may.
//!
//! The tables are large (a guest's working set of thousands of pages stays
//! in them, where 256 entries missed on every step of a random walk over
//! a few MiB), and Linux without ASIDs flushes them all at every address
//! space switch; so the TLB logs the slots it fills and a flush empties
//! just those, unless more were filled than the log holds.

use crate::hart::prv;
use crate::memory::PAGE_SIZE;
use serde::{Deserialize, Serialize};

/// Entries per table.
pub(crate) const TLB_SIZE: usize = 2048;
/// Fills logged between flushes before a flush empties every table.
const FILL_LOG: usize = 4096;

/// Bytes from a mode's table of reads to its table of writes (see
/// [`Tlb::data_tables`]).
pub(crate) const WRITE_TABLE_OFFSET: usize = std::mem::size_of::<[TlbEntry; TLB_SIZE]>();
const _: () = assert!(Access::Write.index() == Access::Read.index() + 1);
/// The privilege levels an access can be checked at, in table order.
const MODES: usize = 3;
/// Set in a tag: the entry's translation holds, but accesses through it
/// take the slow path (see the module comment). Virtual page numbers are at
/// most 52 bits, so the bit never belongs to one.
pub(crate) const SLOW: u64 = 1 << 63;
/// The tag of an empty entry. Even with [`SLOW`] masked off it matches no
/// virtual page number.
const INVALID: u64 = u64::MAX;

/// The kind of a memory access.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
    Execute,
}

impl Access {
    const ALL: [Access; 3] = [Access::Read, Access::Write, Access::Execute];

    const fn index(self) -> usize {
        match self {
            Access::Read => 0,
            Access::Write => 1,
            Access::Execute => 2,
        }
    }
}

/// `repr(C)`: translated code reads the tag at offset 0 and the RAM
/// offset at 8 (jit/translate.rs).
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct TlbEntry {
    /// Virtual page number, possibly with [`SLOW`]; or [`INVALID`].
    pub(crate) tag: u64,
    /// Offset of the page in RAM.
    pub(crate) ram_off: usize,
}

impl TlbEntry {
    /// The virtual page number this entry translates, if it holds one.
    fn vpn(&self) -> Option<u64> {
        (self.tag != INVALID).then_some(self.tag & !SLOW)
    }
}

const EMPTY: TlbEntry = TlbEntry {
    tag: INVALID,
    ram_off: 0,
};

/// Distinct superpages with entries in the TLB that it tracks; past this,
/// a flush of one address scans every table.
const SUPERPAGES: usize = 64;

/// The software TLB of one hart: [`MODES`] x 3 access kinds tables.
pub(crate) struct Tlb {
    tables: Box<[[TlbEntry; TLB_SIZE]; MODES * 3]>,
    /// The level of the leaf PTE behind each entry (0: a 4 KiB page),
    /// beside the tables so that translated code's entries stay 16 bytes.
    levels: Box<[[u8; TLB_SIZE]; MODES * 3]>,
    /// The superpages (level, virtual page number >> 9 * level) entries
    /// were filled from since the last full flush, or None when more than
    /// [`SUPERPAGES`] were. Only to spare a flush of one address a scan
    /// of every table when no superpage holds it: may list superpages no
    /// entry is left from, never misses one.
    superpages: Option<Vec<(u8, u64)>>,
    /// The entries filled since the last flush (table * TLB_SIZE + slot,
    /// repeats allowed), or None when more than [`FILL_LOG`] were: every
    /// valid entry is in it while it is Some.
    filled: Option<Vec<u32>>,
}

/// The table slot of `vaddr`, with its virtual page number.
#[inline(always)]
pub(crate) fn tlb_slot(vaddr: u64) -> (u64, usize) {
    let vpn = vaddr >> crate::memory::PAGE_SHIFT;
    (vpn, vpn as usize % TLB_SIZE)
}

impl Tlb {
    pub(crate) fn new() -> Self {
        Tlb {
            tables: Box::new([[EMPTY; TLB_SIZE]; MODES * 3]),
            levels: Box::new([[0; TLB_SIZE]; MODES * 3]),
            superpages: Some(Vec::new()),
            filled: Some(Vec::with_capacity(FILL_LOG)),
        }
    }

    /// Index of the tables for privilege `p`.
    pub(crate) fn mode_index(p: u8) -> usize {
        match p {
            prv::U => 0,
            prv::S => 1,
            _ => 2,
        }
    }

    /// The table of reads of privilege mode `mode`, which that of writes
    /// follows directly, [`WRITE_TABLE_OFFSET`] bytes on: translated code
    /// reaches both from one register.
    pub(crate) fn data_tables(&self, mode: usize) -> *const TlbEntry {
        self.tables[mode * 3 + Access::Read.index()].as_ptr()
    }

    /// A table, to look at or to change entries already there; new ones
    /// go in through [`Tlb::fill`].
    #[inline(always)]
    pub(crate) fn table(&mut self, mode: usize, access: Access) -> &mut [TlbEntry; TLB_SIZE] {
        &mut self.tables[mode * 3 + access.index()]
    }

    /// Puts `entry`, made from a leaf PTE at `level`, in `slot` of a table.
    pub(crate) fn fill(
        &mut self,
        mode: usize,
        access: Access,
        slot: usize,
        entry: TlbEntry,
        level: u8,
    ) {
        let table = mode * 3 + access.index();
        self.tables[table][slot] = entry;
        self.levels[table][slot] = level;
        if level > 0 {
            if let (Some(list), Some(vpn)) = (&mut self.superpages, entry.vpn()) {
                let superpage = (level, vpn >> (9 * level));
                if !list.contains(&superpage) {
                    if list.len() < SUPERPAGES {
                        list.push(superpage);
                    } else {
                        self.superpages = None;
                    }
                }
            }
        }
        if let Some(log) = &mut self.filled {
            if log.len() < FILL_LOG {
                log.push((table * TLB_SIZE + slot) as u32);
            } else {
                self.filled = None;
            }
        }
    }

    /// Drops the entries made from the leaf PTE that maps `vaddr`
    /// (SFENCE.VMA with an address): the entries for its page, and if a
    /// superpage maps it, every entry from that superpage.
    pub(crate) fn flush_address(&mut self, vaddr: u64) {
        let (vpn, slot) = tlb_slot(vaddr);
        for table in self.tables.iter_mut() {
            if table[slot].vpn() == Some(vpn) {
                table[slot] = EMPTY;
            }
        }
        let in_superpage = |&(level, number): &(u8, u64)| vpn >> (9 * level) == number;
        if self
            .superpages
            .as_ref()
            .is_some_and(|list| !list.iter().any(in_superpage))
        {
            return;
        }
        for (table, levels) in self.tables.iter_mut().zip(self.levels.iter()) {
            for (e, &level) in table.iter_mut().zip(levels.iter()) {
                if level > 0
                    && e.vpn()
                        .is_some_and(|v| v >> (9 * level) == vpn >> (9 * level))
                {
                    *e = EMPTY;
                }
            }
        }
        if let Some(list) = &mut self.superpages {
            list.retain(|superpage| !in_superpage(superpage));
        }
    }

    /// Drops every entry (SFENCE.VMA, satp, PMP, SUM or MXR changes).
    pub(crate) fn flush_all(&mut self) {
        self.superpages = Some(Vec::new());
        match &mut self.filled {
            Some(log) => {
                for &at in log.iter() {
                    let at = at as usize;
                    self.tables[at / TLB_SIZE][at % TLB_SIZE] = EMPTY;
                }
                log.clear();
            }
            None => {
                for table in self.tables.iter_mut() {
                    *table = [EMPTY; TLB_SIZE];
                }
                self.filled = Some(Vec::with_capacity(FILL_LOG));
            }
        }
    }

    /// Sends every write through the slow path (a page became code
    /// somewhere); the translations stay.
    pub(crate) fn slow_writes(&mut self) {
        for mode in 0..MODES {
            for e in self.table(mode, Access::Write).iter_mut() {
                e.tag |= SLOW;
            }
        }
    }

    /// Sends every load and store through the slow path (a debugger
    /// watches memory); the translations stay.
    pub(crate) fn slow_data(&mut self) {
        self.slow_writes();
        for mode in 0..MODES {
            for e in self.table(mode, Access::Read).iter_mut() {
                e.tag |= SLOW;
            }
        }
    }

    /// The entry in `slot` of a table, for looking only.
    pub(crate) fn entry(&self, mode: usize, access: Access, slot: usize) -> TlbEntry {
        self.tables[mode * 3 + access.index()][slot]
    }

    /// Sends writes to the RAM page at `page_off` through the slow path.
    pub(crate) fn slow_writes_to(&mut self, page_off: usize) {
        for mode in 0..MODES {
            for e in self.table(mode, Access::Write).iter_mut() {
                if e.ram_off == page_off {
                    e.tag |= SLOW;
                }
            }
        }
    }

    /// The entries, for a snapshot: every valid one, in table and slot
    /// order, without the [`SLOW`] mark.
    pub(crate) fn state(&self) -> TlbState {
        let mut entries = Vec::new();
        for mode in 0..MODES {
            for access in Access::ALL {
                for (slot, e) in self.tables[mode * 3 + access.index()].iter().enumerate() {
                    if let Some(vpn) = e.vpn() {
                        entries.push(SavedEntry {
                            mode: mode as u8,
                            access: access.index() as u8,
                            vpn,
                            ram_off: e.ram_off as u64,
                            level: self.levels[mode * 3 + access.index()][slot],
                        });
                    }
                }
            }
        }
        TlbState { entries }
    }

    /// Replaces every entry with those of `state`, which
    /// [`TlbState::check`] accepted. They start slow (see the module comment).
    pub(crate) fn set_state(&mut self, state: &TlbState) {
        self.flush_all();
        for e in &state.entries {
            let (_, slot) = tlb_slot(e.vpn << crate::memory::PAGE_SHIFT);
            let access = Access::ALL[usize::from(e.access)];
            let entry = TlbEntry {
                tag: e.vpn | SLOW,
                ram_off: e.ram_off as usize,
            };
            self.fill(usize::from(e.mode), access, slot, entry, e.level);
        }
    }
}

/// The contents of a hart's TLB, as a snapshot stores them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlbState {
    /// Valid entries in table order (mode, then access kind, then slot).
    pub entries: Vec<SavedEntry>,
}

/// One valid TLB entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavedEntry {
    /// The privilege level its table is for: 0 U, 1 S, 2 M.
    pub mode: u8,
    /// Its table's access kind: 0 read, 1 write, 2 execute.
    pub access: u8,
    /// The virtual page number it translates.
    pub vpn: u64,
    /// The RAM offset of the page it translates to.
    pub ram_off: u64,
    /// The level of the leaf PTE it was made from: 0 for a 4 KiB page, 1
    /// for 2 MiB, 2 for 1 GiB, 3 for 512 GiB.
    pub level: u8,
}

impl TlbState {
    /// Checks a state from a file against a hart with `ram_size` bytes of
    /// RAM: tables and slots that exist, one entry per slot, pages inside
    /// RAM. Returns one sentence saying what is wrong.
    pub fn check(&self, ram_size: u64) -> Result<(), String> {
        let max = MODES * 3 * TLB_SIZE;
        if self.entries.len() > max {
            return Err(format!(
                "its TLB holds {} entries, more than the {max} it has",
                self.entries.len()
            ));
        }
        let mut last: Option<(u8, u8, usize)> = None;
        for e in &self.entries {
            if usize::from(e.mode) >= MODES || e.access >= 3 {
                return Err(format!(
                    "its TLB has an entry in table {}/{}, which does not exist",
                    e.mode, e.access
                ));
            }
            if e.level > 3 {
                return Err(format!(
                    "its TLB has an entry for virtual page {:#x} from a page-table level {}, which does not exist",
                    e.vpn, e.level
                ));
            }
            if e.vpn >= 1 << 52 {
                return Err(format!(
                    "its TLB has an entry for virtual page {:#x}, beyond any address",
                    e.vpn
                ));
            }
            let in_ram = e
                .ram_off
                .checked_add(PAGE_SIZE)
                .is_some_and(|end| end <= ram_size);
            if !e.ram_off.is_multiple_of(PAGE_SIZE) || !in_ram {
                return Err(format!(
                    "its TLB maps virtual page {:#x} to RAM offset {:#x}, which is not a page of its {ram_size} bytes of RAM",
                    e.vpn, e.ram_off
                ));
            }
            let (_, slot) = tlb_slot(e.vpn << crate::memory::PAGE_SHIFT);
            let key = (e.mode, e.access, slot);
            if last.is_some_and(|last| key <= last) {
                return Err(format!(
                    "its TLB entries are not in table order, or two share slot {slot} of table {}/{}",
                    e.mode, e.access
                ));
            }
            last = Some(key);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill_some(tlb: &mut Tlb, n: usize) {
        for k in 0..n {
            let vpn = (k * 7 + 3) as u64;
            let access = Access::ALL[k % 3];
            let entry = TlbEntry {
                tag: vpn,
                ram_off: 0x1000 * (k % 64),
            };
            tlb.fill(k % MODES, access, vpn as usize % TLB_SIZE, entry, 0);
        }
    }

    #[test]
    fn a_flush_empties_every_table_whether_the_fill_log_held_or_not() {
        for fills in [1, 100, FILL_LOG - 1, FILL_LOG, FILL_LOG + 1, 3 * FILL_LOG] {
            let mut tlb = Tlb::new();
            fill_some(&mut tlb, fills);
            assert!(!tlb.state().entries.is_empty());
            tlb.flush_all();
            assert_eq!(tlb.state().entries, [], "after {fills} fills");
            // And again, after the log started over.
            fill_some(&mut tlb, fills);
            tlb.flush_all();
            assert_eq!(tlb.state().entries, [], "after {fills} more fills");
        }
    }

    #[test]
    fn state_round_trips_without_the_slow_mark() {
        let mut tlb = Tlb::new();
        tlb.table(1, Access::Read)[5] = TlbEntry {
            tag: 5,
            ram_off: 0x3000,
        };
        tlb.table(0, Access::Write)[7] = TlbEntry {
            tag: 7 + TLB_SIZE as u64,
            ram_off: 0x1000,
        };
        tlb.slow_writes();
        let state = tlb.state();
        assert_eq!(state.entries.len(), 2);
        assert!(state.entries.iter().all(|e| e.vpn < 1 << 52));
        state.check(1 << 20).unwrap();
        let mut other = Tlb::new();
        other.set_state(&state);
        assert_eq!(other.state(), state);
        // Restored entries start slow.
        assert_eq!(other.table(1, Access::Read)[5].tag, 5 | SLOW);
    }

    #[test]
    fn hostile_states_are_refused_in_one_sentence() {
        let good = SavedEntry {
            mode: 1,
            access: 0,
            vpn: 3,
            ram_off: 0x2000,
            level: 0,
        };
        let cases = [
            SavedEntry { mode: 3, ..good },
            SavedEntry { access: 3, ..good },
            SavedEntry {
                vpn: 1 << 52,
                ..good
            },
            SavedEntry {
                ram_off: 0x2001,
                ..good
            },
            SavedEntry {
                ram_off: 1 << 20,
                ..good
            },
            SavedEntry {
                ram_off: !0xfff,
                ..good
            },
            SavedEntry { level: 4, ..good },
        ];
        for bad in cases {
            let e = TlbState { entries: vec![bad] }.check(1 << 20).unwrap_err();
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        // Two entries for one slot.
        let twice = TlbState {
            entries: vec![
                good,
                SavedEntry {
                    vpn: 3 + TLB_SIZE as u64,
                    ..good
                },
            ],
        };
        assert!(twice.check(1 << 20).is_err());
        let many = TlbState {
            entries: vec![good; MODES * 3 * TLB_SIZE + 1],
        };
        assert!(many.check(1 << 20).is_err());
    }
}

#[cfg(test)]
mod flush_address_tests {
    use super::*;

    /// Fills the entry for `vpn` in every table, made from a leaf at
    /// `level`.
    fn fill_everywhere(tlb: &mut Tlb, vpn: u64, level: u8) {
        for mode in 0..MODES {
            for access in Access::ALL {
                let entry = TlbEntry {
                    tag: vpn,
                    ram_off: (vpn as usize % 64) << 12,
                };
                tlb.fill(mode, access, vpn as usize % TLB_SIZE, entry, level);
            }
        }
    }

    fn held(tlb: &Tlb) -> Vec<u64> {
        let mut vpns: Vec<u64> = tlb.state().entries.iter().map(|e| e.vpn).collect();
        vpns.sort();
        vpns.dedup();
        vpns
    }

    #[test]
    fn a_flush_of_one_address_drops_just_the_entries_of_its_leaf() {
        // With few superpages (listed) and with more than the list holds.
        for extra_superpages in [0u64, SUPERPAGES as u64 + 5] {
            let mut tlb = Tlb::new();
            // 4 KiB pages 0x10 and 0x11; pages 0x200 and 0x3ff of the
            // 2 MiB superpage 1 (vpns 0x200-0x3ff); page 0x400 of superpage 2.
            for vpn in [0x10, 0x11] {
                fill_everywhere(&mut tlb, vpn, 0);
            }
            for vpn in [0x200, 0x3ff, 0x400] {
                fill_everywhere(&mut tlb, vpn, 1);
            }
            // Each in a superpage of its own, in a slot of its own.
            let extra: Vec<u64> = (0..extra_superpages)
                .map(|k| 0x100_0000 + (k << 9) + 0x20 + k)
                .collect();
            for &vpn in &extra {
                fill_everywhere(&mut tlb, vpn, 1);
            }
            let with_extra = |mut v: Vec<u64>| {
                v.extend(&extra);
                v
            };
            tlb.flush_address(0x10 << 12 | 0x123);
            assert_eq!(held(&tlb), with_extra(vec![0x11, 0x200, 0x3ff, 0x400]));
            // An address of superpage 1 with no entry of its own page.
            tlb.flush_address(0x250 << 12);
            assert_eq!(held(&tlb), with_extra(vec![0x11, 0x400]));
            // An address nothing maps changes nothing.
            tlb.flush_address(0x7777 << 12);
            assert_eq!(held(&tlb), with_extra(vec![0x11, 0x400]));

            // Restored from its state, a TLB flushes alike.
            let mut restored = Tlb::new();
            restored.set_state(&tlb.state());
            for t in [&mut tlb, &mut restored] {
                t.flush_address(0x5ff << 12);
            }
            assert_eq!(held(&tlb), with_extra(vec![0x11]));
            assert_eq!(held(&restored), held(&tlb));
        }
    }
}
