//! MMU tests, black-box through the hart: page tables are built by hand in
//! RAM, small programs run in S-, U- or M-mode (with MPRV), and every trap goes
//! to an M-mode handler whose mcause/mtval/mepc the tests inspect.
//!
//! Walks, permission and A/D faults, superpages, all three modes (Sv39, Sv48,
//! Sv57), SFENCE.VMA, satp WARL, PMP on data, fetch and page-table accesses,
//! and MPRV.

mod common;

use common::{enc, install_trap_handler, m_trap, new_hart, run, TestBus, Trap, RAM_BASE, TRAP_PA};
use rewind_hart::{cause, csr, prv, Hart};

// PTE bits.
const V: u64 = 1 << 0;
const R: u64 = 1 << 1;
const W: u64 = 1 << 2;
const X: u64 = 1 << 3;
const U: u64 = 1 << 4;
const A: u64 = 1 << 6;
const D: u64 = 1 << 7;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Sv39,
    Sv48,
    Sv57,
}

const MODES: [Mode; 3] = [Mode::Sv39, Mode::Sv48, Mode::Sv57];

impl Mode {
    fn levels(self) -> u32 {
        match self {
            Mode::Sv39 => 3,
            Mode::Sv48 => 4,
            Mode::Sv57 => 5,
        }
    }
    fn satp_mode(self) -> u64 {
        match self {
            Mode::Sv39 => 8,
            Mode::Sv48 => 9,
            Mode::Sv57 => 10,
        }
    }
    fn va_bits(self) -> u32 {
        12 + 9 * self.levels()
    }
    fn top(self) -> u32 {
        self.levels() - 1
    }
}

/// Bytes mapped by one leaf PTE at `level`.
fn page_size(level: u32) -> u64 {
    1 << (12 + 9 * level)
}

const RAM_SIZE: u64 = 8 << 20;
/// The physical page holding the program under test.
const CODE_PA: u64 = RAM_BASE + 0x1000;
/// The page after it, for instructions that straddle two pages.
const CODE2_PA: u64 = RAM_BASE + 0x2000;
/// Data pages: `data_pa(i)`.
const DATA_PA: u64 = RAM_BASE + 0x4_0000;
/// Page tables are allocated from here up to TABLES_END.
const TABLES_PA: u64 = RAM_BASE + 0x10_0000;
const TABLES_END: u64 = RAM_BASE + 0x20_0000;
/// A 2 MiB-aligned physical region for 2 MiB superpages.
const MEGA_PA: u64 = RAM_BASE + 0x20_0000;

/// Where the program runs (index 0 at every level above the last).
const CODE_VA: u64 = 0x1000;
/// A data page, canonical in every mode.
const DATA_VA: u64 = 0x4020_3000;

fn data_pa(i: u64) -> u64 {
    DATA_PA + i * 0x1000
}

/// The 64-bit value stored at physical address `pa` of a filled page: no two
/// doublewords of RAM share it.
fn marker(pa: u64) -> u64 {
    0x5a5a_0000_0000_0000 ^ pa
}

/// A hart, its RAM, and page tables built by hand.
struct Machine {
    hart: Hart,
    bus: TestBus,
    mode: Mode,
    root: u64,
    next_table: u64,
}

impl Machine {
    /// A machine whose PMP grants everything to S and U, with no mappings.
    fn new(mode: Mode) -> Self {
        let mut bus = TestBus::new(RAM_SIZE);
        install_trap_handler(&mut bus);
        let mut hart = new_hart(CODE_VA);
        // NAPOT entry over all of memory, R W X.
        hart.csr.pmpaddr[0] = u64::MAX >> 10;
        hart.csr.pmpcfg[0] = 0x1f;
        let mut m = Machine {
            hart,
            bus,
            mode,
            root: 0,
            next_table: TABLES_PA,
        };
        m.root = m.alloc_table();
        m
    }

    fn alloc_table(&mut self) -> u64 {
        let pa = self.next_table;
        assert!(pa < TABLES_END, "out of page-table pages");
        self.next_table += 0x1000;
        pa
    }

    fn satp(&self) -> u64 {
        (self.mode.satp_mode() << 60) | (self.root >> 12)
    }

    fn vpn(va: u64, level: u32) -> u64 {
        (va >> (12 + 9 * level)) & 0x1ff
    }

    /// Physical address of the PTE that maps `va` at `level`, creating the
    /// intermediate tables on the way.
    fn pte_addr_alloc(&mut self, va: u64, level: u32) -> u64 {
        let mut table = self.root;
        for l in (level + 1..self.mode.levels()).rev() {
            let addr = table + 8 * Self::vpn(va, l);
            let pte = self.bus.read_u64(addr);
            if pte & V == 0 {
                let next = self.alloc_table();
                self.bus.write_u64(addr, ((next >> 12) << 10) | V);
                table = next;
            } else {
                assert_eq!(
                    pte & (R | W | X),
                    0,
                    "{va:#x}: a leaf at level {l} is in the way"
                );
                table = (pte >> 10) << 12;
            }
        }
        table + 8 * Self::vpn(va, level)
    }

    /// Physical address of the PTE for `va` at `level` (which must exist).
    fn pte_addr(&self, va: u64, level: u32) -> u64 {
        let mut table = self.root;
        for l in (level + 1..self.mode.levels()).rev() {
            let pte = self.bus.read_u64(table + 8 * Self::vpn(va, l));
            assert_ne!(pte & V, 0, "{va:#x}: no table at level {l}");
            table = (pte >> 10) << 12;
        }
        table + 8 * Self::vpn(va, level)
    }

    fn pte(&self, va: u64, level: u32) -> u64 {
        self.bus.read_u64(self.pte_addr(va, level))
    }

    fn set_pte(&mut self, va: u64, level: u32, pte: u64) {
        let addr = self.pte_addr(va, level);
        self.bus.write_u64(addr, pte);
    }

    /// Maps the page of `size` given by `level` at `va` to `pa`: a leaf PTE
    /// with `flags` (V is added).
    fn map(&mut self, va: u64, pa: u64, level: u32, flags: u64) {
        let addr = self.pte_addr_alloc(va, level);
        self.bus.write_u64(addr, ((pa >> 12) << 10) | flags | V);
    }

    fn map_code(&mut self, flags: u64) {
        self.map(CODE_VA, CODE_PA, 0, flags);
    }

    /// Fills the physical page at `pa`: an ebreak at offset 0 (for fetches)
    /// and `marker(addr)` in every other doubleword.
    fn fill_page(&mut self, pa: u64) {
        self.bus.write_u64(pa, enc::ebreak() as u64);
        for off in (8..0x1000).step_by(8) {
            self.bus.write_u64(pa + off, marker(pa + off));
        }
    }

    /// Maps a 4 KiB data page at `va` to a fresh filled page `data_pa(i)`.
    fn map_data(&mut self, va: u64, i: u64, flags: u64) -> u64 {
        let pa = data_pa(i);
        self.fill_page(pa);
        self.map(va, pa, 0, flags);
        pa
    }

    fn program(&mut self, code: &[u32]) {
        self.bus.write_code(CODE_PA, code);
    }

    /// Prepares the hart to run at `pc` in privilege `p` with paging on.
    fn start(&mut self, p: u8, pc: u64) {
        let satp = self.satp();
        let h = &mut self.hart;
        h.csr.satp = satp;
        h.prv = p;
        h.pc = pc;
        h.flush_caches();
    }

    fn step(&mut self, n: u64) {
        run(&mut self.hart, &mut self.bus, n);
    }

    /// Runs at `pc` in privilege `p` until the program traps into M-mode.
    fn run_at(&mut self, p: u8, pc: u64) -> Trap {
        self.start(p, pc);
        self.step(100);
        assert_eq!(
            self.hart.prv,
            prv::M,
            "the program should end in a trap to M-mode"
        );
        assert_eq!(
            self.hart.pc, TRAP_PA,
            "the program should end in the trap handler"
        );
        m_trap(&self.hart)
    }

    /// `ld x10, 0(x11)` with x11 = `va`, in privilege `p`.
    fn load(&mut self, p: u8, va: u64) -> Trap {
        self.program(&[enc::ld(10, 11, 0), enc::ebreak()]);
        self.hart.x[10] = 0;
        self.hart.x[11] = va;
        self.run_at(p, CODE_VA)
    }

    /// `sd x12, 0(x11)` with x11 = `va`, x12 = `value`.
    fn store(&mut self, p: u8, va: u64, value: u64) -> Trap {
        self.program(&[enc::sd(12, 11, 0), enc::ebreak()]);
        self.hart.x[11] = va;
        self.hart.x[12] = value;
        self.run_at(p, CODE_VA)
    }

    /// `amoadd.d x10, x12, (x11)` with x11 = `va`, x12 = 1.
    fn amo(&mut self, p: u8, va: u64) -> Trap {
        self.program(&[enc::amoadd_d(10, 12, 11), enc::ebreak()]);
        self.hart.x[11] = va;
        self.hart.x[12] = 1;
        self.run_at(p, CODE_VA)
    }

    /// `jalr x0, 0(x11)` with x11 = `va`: executes whatever is at `va` (an
    /// ebreak in filled pages).
    fn fetch(&mut self, p: u8, va: u64) -> Trap {
        self.program(&[enc::jalr(0, 11, 0)]);
        self.hart.x[11] = va;
        self.run_at(p, CODE_VA)
    }

    /// Runs one access of `kind` at `va`.
    fn access(&mut self, kind: Kind, p: u8, va: u64) -> Trap {
        match kind {
            Kind::Load => self.load(p, va),
            Kind::Store => self.store(p, va, 0x0123_4567_89ab_cdef),
            Kind::Amo => self.amo(p, va),
            Kind::Fetch => self.fetch(p, va),
        }
    }
}

impl Machine {
    /// The program of `access(kind, ..)` for a load, store or AMO, run in
    /// M-mode at its physical address (MPRV is the caller's business).
    fn mprv_access(&mut self, kind: Kind, va: u64) -> Trap {
        let inst = match kind {
            Kind::Load => enc::ld(10, 11, 0),
            Kind::Store => enc::sd(12, 11, 0),
            Kind::Amo => enc::amoadd_d(10, 12, 11),
            Kind::Fetch => panic!("fetches are never translated in M-mode"),
        };
        self.program(&[inst, enc::ebreak()]);
        self.hart.x[11] = va;
        self.hart.x[12] = 1;
        self.run_at(prv::M, CODE_PA)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Load,
    Store,
    Amo,
    Fetch,
}

const KINDS: [Kind; 4] = [Kind::Load, Kind::Store, Kind::Amo, Kind::Fetch];

impl Kind {
    fn page_fault(self) -> u64 {
        match self {
            Kind::Load => cause::LOAD_PAGE_FAULT,
            Kind::Store | Kind::Amo => cause::STORE_PAGE_FAULT,
            Kind::Fetch => cause::FETCH_PAGE_FAULT,
        }
    }
    fn access_fault(self) -> u64 {
        match self {
            Kind::Load => cause::LOAD_ACCESS,
            Kind::Store | Kind::Amo => cause::STORE_ACCESS,
            Kind::Fetch => cause::FETCH_ACCESS,
        }
    }
    /// The pc of the instruction that makes the access (for a fetch, the
    /// fetched address itself).
    fn epc(self, va: u64) -> u64 {
        match self {
            Kind::Fetch => va,
            _ => CODE_VA,
        }
    }
    /// Where the program's ebreak is when the access succeeds.
    fn done_at(self, va: u64) -> u64 {
        match self {
            Kind::Fetch => va,
            _ => CODE_VA + 4,
        }
    }
}

/// The trap a faulting access of `kind` at `va` must produce.
fn page_fault(kind: Kind, va: u64) -> Trap {
    Trap {
        cause: kind.page_fault(),
        tval: va,
        epc: kind.epc(va),
    }
}

fn access_fault(kind: Kind, va: u64) -> Trap {
    Trap {
        cause: kind.access_fault(),
        tval: va,
        epc: kind.epc(va),
    }
}

/// Asserts that the program ran to its ebreak at `epc`.
#[track_caller]
fn assert_completed(trap: Trap, epc: u64, what: &str) {
    assert_eq!(
        (trap.cause, trap.epc),
        (cause::BREAKPOINT, epc),
        "{what}: expected the program to reach its ebreak at {epc:#x}, got {trap:x?}"
    );
}

/// Checks an access that must succeed, including its effect.
#[track_caller]
fn assert_access_works(m: &mut Machine, kind: Kind, p: u8, va: u64, pa: u64, what: &str) {
    let trap = m.access(kind, p, va);
    assert_completed(trap, kind.done_at(va), &format!("{what}: {kind:?}"));
    match kind {
        Kind::Load => assert_eq!(m.hart.x[10], marker(pa), "{what}: loaded value"),
        Kind::Store => assert_eq!(
            m.bus.read_u64(pa),
            0x0123_4567_89ab_cdef,
            "{what}: stored value"
        ),
        Kind::Amo => {
            assert_eq!(m.hart.x[10], marker(pa), "{what}: AMO old value");
            assert_eq!(m.bus.read_u64(pa), marker(pa) + 1, "{what}: AMO new value");
        }
        Kind::Fetch => {}
    }
}

// ------------------------------------------------------------- translation

#[test]
fn loads_stores_amos_and_fetches_translate_through_4k_pages_in_every_mode() {
    for mode in MODES {
        for kind in KINDS {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let pa = m.map_data(DATA_VA, 0, R | W | X);
            let off = if kind == Kind::Fetch { 0 } else { 0x7f8 };
            let what = format!("{mode:?}");
            assert_access_works(&mut m, kind, prv::S, DATA_VA + off, pa + off, &what);
        }
    }
}

#[test]
fn user_mode_accesses_user_pages_in_every_mode() {
    for mode in MODES {
        for kind in KINDS {
            let mut m = Machine::new(mode);
            m.map_code(R | X | U);
            let pa = m.map_data(DATA_VA, 0, R | W | X | U);
            let off = if kind == Kind::Fetch { 0 } else { 0x10 };
            let what = format!("{mode:?} U-mode");
            assert_access_works(&mut m, kind, prv::U, DATA_VA + off, pa + off, &what);
        }
    }
}

#[test]
fn distinct_virtual_pages_reach_their_own_physical_pages() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        // Neighbouring pages mapped out of order, and an alias.
        let vas = [
            DATA_VA,
            DATA_VA + 0x1000,
            DATA_VA + 0x2000,
            DATA_VA + 0x20_0000,
        ];
        let pas = [data_pa(3), data_pa(1), data_pa(2), data_pa(3)];
        for (i, (&va, &pa)) in vas.iter().zip(&pas).enumerate() {
            if i < 3 {
                m.fill_page(pa);
            }
            m.map(va, pa, 0, R | W);
        }
        for (&va, &pa) in vas.iter().zip(&pas) {
            assert_completed(m.load(prv::S, va + 0x18), CODE_VA + 4, "load");
            assert_eq!(m.hart.x[10], marker(pa + 0x18), "{mode:?} {va:#x}");
        }
    }
}

#[test]
fn upper_half_canonical_addresses_translate() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        // The highest page of the address space, and one just below the hole.
        let top: u64 = !0xfff;
        let low = (u64::MAX << (mode.va_bits() - 1)) | 0x20_3000;
        let pa_top = m.map_data(top, 0, R | W);
        let pa_low = m.map_data(low, 1, R | W);
        assert_completed(m.load(prv::S, top + 0xff8), CODE_VA + 4, "top page");
        assert_eq!(m.hart.x[10], marker(pa_top + 0xff8), "{mode:?} top page");
        assert_completed(
            m.load(prv::S, low + 8),
            CODE_VA + 4,
            "lowest upper-half page",
        );
        assert_eq!(
            m.hart.x[10],
            marker(pa_low + 8),
            "{mode:?} lowest upper-half page"
        );
    }
}

/// Superpage sizes below the root: 2 MiB, 1 GiB, 512 GiB, 256 TiB.
fn superpage_pa(level: u32) -> u64 {
    match level {
        1 => MEGA_PA,
        2 => RAM_BASE, // 0x8000_0000 is 1 GiB aligned.
        _ => 0,        // 512 GiB and 256 TiB pages at 0 cover all of RAM.
    }
}

/// A virtual address whose root index is 3 and lower indices 5, mapped by a
/// leaf at `level`.
fn superpage_va(mode: Mode, level: u32) -> u64 {
    let mut va = 3 << (12 + 9 * mode.top());
    for l in level..mode.top() {
        va |= 5 << (12 + 9 * l);
    }
    va
}

/// An offset into a page at `level` whose every VPN field below `level` is
/// non-zero, landing in RAM clear of the code and page tables.
fn superpage_offset(level: u32) -> u64 {
    match level {
        1 => 0x12_3458,
        2 => 0x45_6788,
        _ => RAM_BASE + 0x56_7890,
    }
}

#[test]
fn every_superpage_size_of_every_mode_translates_with_its_offset() {
    for mode in MODES {
        for level in 1..mode.levels() {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let va = superpage_va(mode, level);
            let pa = superpage_pa(level);
            m.map(va, pa, level, R | W);
            let off = superpage_offset(level);
            assert!(off < page_size(level));
            let target = pa + off;
            assert!((RAM_BASE + 0x30_0000..RAM_BASE + RAM_SIZE).contains(&target));
            m.bus.write_u64(target, marker(target));
            m.bus.write_u64(target - 0x1000, marker(target - 0x1000));
            let what = format!("{mode:?} level-{level} superpage");
            assert_completed(m.load(prv::S, va + off), CODE_VA + 4, &what);
            assert_eq!(m.hart.x[10], marker(target), "{what}: load");
            assert_completed(m.load(prv::S, va + off - 0x1000), CODE_VA + 4, &what);
            assert_eq!(
                m.hart.x[10],
                marker(target - 0x1000),
                "{what}: load a page lower"
            );
            assert_completed(m.store(prv::S, va + off + 8, 0x77), CODE_VA + 4, &what);
            assert_eq!(m.bus.read_u64(target + 8), 0x77, "{what}: store");
        }
    }
}

#[test]
fn code_runs_from_a_superpage() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        // A 2 MiB executable page; jump to an ebreak in it.
        let va = superpage_va(mode, 1);
        m.map(va, MEGA_PA, 1, R | X);
        let off = 0x1_2344;
        m.bus.write_u32(MEGA_PA + off, enc::ebreak());
        assert_completed(m.fetch(prv::S, va + off), va + off, &format!("{mode:?}"));
    }
}

#[test]
fn misaligned_superpages_raise_page_faults() {
    for mode in MODES {
        for level in 1..mode.levels() {
            // A leaf whose PPN has a non-zero field below its level.
            for low_bit_level in 0..level {
                for kind in KINDS {
                    let mut m = Machine::new(mode);
                    m.map_code(R | X);
                    let va = superpage_va(mode, level);
                    let pa = superpage_pa(level) + page_size(low_bit_level);
                    m.map(va, pa, level, R | W | X);
                    let before = m.pte(va, level);
                    let target = va + 0x1000;
                    assert_eq!(
                        m.access(kind, prv::S, target),
                        page_fault(kind, target),
                        "{mode:?} level-{level} leaf with PPN[{low_bit_level}] != 0, {kind:?}"
                    );
                    assert_eq!(m.pte(va, level), before, "a faulting walk must not set A/D");
                }
            }
        }
    }
}

// ------------------------------------------------------- invalid PTEs

#[test]
fn invalid_leaf_pte_raises_page_fault_with_the_virtual_address() {
    for mode in MODES {
        for kind in KINDS {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map_data(DATA_VA, 0, R | W | X);
            let pte = m.pte(DATA_VA, 0);
            m.set_pte(DATA_VA, 0, pte & !V);
            let va = DATA_VA + if kind == Kind::Fetch { 0 } else { 0x28 };
            assert_eq!(
                m.access(kind, prv::S, va),
                page_fault(kind, va),
                "{mode:?} {kind:?}"
            );
        }
    }
}

#[test]
fn invalid_pointer_pte_at_any_level_raises_page_fault() {
    // From M-mode with MPRV (MPP = S), so that the program's own fetches do
    // not walk through the pointers shared with the data page's walk.
    for mode in MODES {
        for level in 1..mode.levels() {
            for kind in [Kind::Load, Kind::Store] {
                let mut m = Machine::new(mode);
                m.map_data(DATA_VA, 0, R | W);
                let pte = m.pte(DATA_VA, level);
                m.set_pte(DATA_VA, level, pte & !V);
                set_mprv(&mut m.hart, prv::S);
                let va = DATA_VA + 8;
                let want = Trap {
                    cause: kind.page_fault(),
                    tval: va,
                    epc: CODE_PA,
                };
                assert_eq!(
                    m.mprv_access(kind, va),
                    want,
                    "{mode:?} {kind:?} level {level}"
                );
            }
        }
    }
}

#[test]
fn pointer_pte_with_accessed_dirty_or_user_bit_raises_page_fault() {
    // "For non-leaf PTEs, the D, A, and U bits are reserved for future
    // standard use", and step 3 of the translation algorithm: "if any bits or
    // encodings that are reserved for future standard use are set within
    // pte, stop and raise a page-fault exception". (Spike and QEMU do.)
    // From M-mode with MPRV so that every pointer level can be tested.
    for mode in MODES {
        for level in 1..mode.levels() {
            for (name, bit) in [("A", A), ("D", D), ("U", U)] {
                let mut m = Machine::new(mode);
                m.map_data(DATA_VA, 0, R | W | U);
                let pte = m.pte(DATA_VA, level);
                m.set_pte(DATA_VA, level, pte | bit);
                set_mprv(&mut m.hart, prv::S);
                m.hart.csr.mstatus |= csr::MSTATUS_SUM;
                let va = DATA_VA + 8;
                let want = Trap {
                    cause: cause::LOAD_PAGE_FAULT,
                    tval: va,
                    epc: CODE_PA,
                };
                assert_eq!(
                    m.mprv_access(Kind::Load, va),
                    want,
                    "{mode:?}: {name} set in the level-{level} pointer PTE"
                );
            }
        }
    }
}

#[test]
fn pointer_pte_at_level_zero_raises_page_fault() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        // A "pointer" (R = W = X = 0) where a leaf must be: it points at a
        // table of valid leaves, which must not be used.
        let table = m.alloc_table();
        let leaf_pa = data_pa(0);
        m.fill_page(leaf_pa);
        for i in 0..512 {
            m.bus
                .write_u64(table + 8 * i, ((leaf_pa >> 12) << 10) | R | W | V);
        }
        let addr = m.pte_addr_alloc(DATA_VA, 0);
        m.bus.write_u64(addr, ((table >> 12) << 10) | V);
        let va = DATA_VA + 8;
        assert_eq!(m.load(prv::S, va), page_fault(Kind::Load, va), "{mode:?}");
    }
}

#[test]
fn write_without_read_is_reserved_and_raises_page_fault() {
    for mode in MODES {
        for flags in [W, W | X, W | U, W | X | U] {
            for kind in KINDS {
                let mut m = Machine::new(mode);
                m.map_code(R | X);
                m.map_data(DATA_VA, 0, flags);
                let va = DATA_VA + if kind == Kind::Fetch { 0 } else { 8 };
                m.hart.csr.mstatus |= csr::MSTATUS_SUM | csr::MSTATUS_MXR;
                assert_eq!(
                    m.access(kind, prv::S, va),
                    page_fault(kind, va),
                    "{mode:?} flags {flags:#x} {kind:?}"
                );
            }
        }
    }
}

#[test]
fn reserved_write_only_pointer_pte_raises_page_fault() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, R | W);
        let pte = m.pte(DATA_VA, 1);
        m.set_pte(DATA_VA, 1, pte | W);
        let va = DATA_VA + 8;
        assert_eq!(m.load(prv::S, va), page_fault(Kind::Load, va), "{mode:?}");
    }
}

#[test]
fn pte_with_reserved_high_bits_set_raises_page_fault() {
    // Bits 60:54 are reserved, 62:61 are PBMT (Svpbmt) and 63 is N (Svnapot),
    // none of which this hart implements: each must fault when set.
    for mode in MODES {
        for bit in 54..64 {
            for level in [0, 1] {
                let mut m = Machine::new(mode);
                m.map_code(R | X);
                m.map_data(DATA_VA, 0, R | W);
                let pte = m.pte(DATA_VA, level);
                m.set_pte(DATA_VA, level, pte | (1 << bit));
                let va = DATA_VA + 8;
                assert_eq!(
                    m.load(prv::S, va),
                    page_fault(Kind::Load, va),
                    "{mode:?} bit {bit} set in the level-{level} PTE"
                );
            }
        }
    }
}

// ---------------------------------------------------- outside of RAM

/// A physical address where nothing answers on the test bus.
const NOWHERE_PA: u64 = 0x1000_0000;

#[test]
fn page_table_outside_ram_raises_access_fault_of_the_original_access_type() {
    for mode in MODES {
        for level in 0..mode.levels() - 1 {
            for kind in [Kind::Load, Kind::Store, Kind::Amo] {
                let mut m = Machine::new(mode);
                m.map_data(DATA_VA, 0, R | W);
                // The pointer above `level` leads out of RAM.
                m.set_pte(DATA_VA, level + 1, ((NOWHERE_PA >> 12) << 10) | V);
                set_mprv(&mut m.hart, prv::S);
                let va = DATA_VA + 8;
                let want = Trap {
                    cause: kind.access_fault(),
                    tval: va,
                    epc: CODE_PA,
                };
                assert_eq!(
                    m.mprv_access(kind, va),
                    want,
                    "{mode:?} {kind:?} level {level}"
                );
            }
        }
    }
}

#[test]
fn leaf_mapping_a_physical_address_without_memory_raises_access_fault() {
    for mode in MODES {
        for kind in KINDS {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map(DATA_VA, NOWHERE_PA, 0, R | W | X);
            let va = DATA_VA + if kind == Kind::Fetch { 0 } else { 8 };
            assert_eq!(
                m.access(kind, prv::S, va),
                access_fault(kind, va),
                "{mode:?} {kind:?}"
            );
        }
    }
}

// ------------------------------------------------------------ permissions

#[test]
fn store_and_amo_to_read_only_page_raise_store_page_fault() {
    for mode in MODES {
        for flags in [R, R | X] {
            for kind in [Kind::Store, Kind::Amo] {
                let mut m = Machine::new(mode);
                m.map_code(R | X);
                let pa = m.map_data(DATA_VA, 0, flags);
                let va = DATA_VA + 8;
                assert_eq!(
                    m.access(kind, prv::S, va),
                    page_fault(kind, va),
                    "{mode:?} {kind:?}"
                );
                assert_eq!(
                    m.bus.read_u64(pa + 8),
                    marker(pa + 8),
                    "memory must be unchanged"
                );
            }
            // The load works.
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let pa = m.map_data(DATA_VA, 0, flags);
            assert_access_works(
                &mut m,
                Kind::Load,
                prv::S,
                DATA_VA + 8,
                pa + 8,
                "read-only page",
            );
        }
    }
}

#[test]
fn fetch_from_non_executable_page_raises_fetch_page_fault() {
    for mode in MODES {
        for flags in [R, R | W] {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map_data(DATA_VA, 0, flags);
            assert_eq!(
                m.fetch(prv::S, DATA_VA),
                page_fault(Kind::Fetch, DATA_VA),
                "{mode:?} flags {flags:#x}"
            );
        }
    }
}

#[test]
fn load_from_execute_only_page_faults_without_mxr() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, X);
        let va = DATA_VA + 8;
        assert_eq!(m.load(prv::S, va), page_fault(Kind::Load, va), "{mode:?}");
        // Execution is fine.
        assert_completed(
            m.fetch(prv::S, DATA_VA),
            DATA_VA,
            "fetch from execute-only page",
        );
    }
}

#[test]
fn mxr_makes_execute_only_pages_readable_but_not_writable() {
    for mode in MODES {
        for p in [prv::S, prv::U] {
            let u = if p == prv::U { U } else { 0 };
            let mut m = Machine::new(mode);
            m.map_code(R | X | u);
            let pa = m.map_data(DATA_VA, 0, X | u);
            m.hart.csr.mstatus |= csr::MSTATUS_MXR;
            let what = format!("{mode:?} prv {p} with MXR");
            assert_access_works(&mut m, Kind::Load, p, DATA_VA + 8, pa + 8, &what);
            let va = DATA_VA + 8;
            assert_eq!(
                m.store(p, va, 1),
                page_fault(Kind::Store, va),
                "{what}: store"
            );
        }
    }
}

#[test]
fn supervisor_access_to_user_page_faults_without_sum() {
    for mode in MODES {
        for kind in [Kind::Load, Kind::Store, Kind::Amo] {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map_data(DATA_VA, 0, R | W | U);
            let va = DATA_VA + 8;
            assert_eq!(
                m.access(kind, prv::S, va),
                page_fault(kind, va),
                "{mode:?} {kind:?}"
            );
        }
    }
}

#[test]
fn sum_lets_supervisor_load_store_and_amo_to_user_pages() {
    for mode in MODES {
        for kind in [Kind::Load, Kind::Store, Kind::Amo] {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let pa = m.map_data(DATA_VA, 0, R | W | U);
            m.hart.csr.mstatus |= csr::MSTATUS_SUM;
            let what = format!("{mode:?} with SUM");
            assert_access_works(&mut m, kind, prv::S, DATA_VA + 8, pa + 8, &what);
        }
    }
}

#[test]
fn supervisor_never_executes_user_pages_even_with_sum() {
    for mode in MODES {
        for sum in [0, csr::MSTATUS_SUM] {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map_data(DATA_VA, 0, R | X | U);
            m.hart.csr.mstatus |= sum;
            assert_eq!(
                m.fetch(prv::S, DATA_VA),
                page_fault(Kind::Fetch, DATA_VA),
                "{mode:?} SUM = {}",
                sum != 0
            );
        }
    }
}

#[test]
fn user_mode_cannot_touch_supervisor_pages() {
    for mode in MODES {
        for kind in KINDS {
            let mut m = Machine::new(mode);
            m.map_code(R | X | U);
            m.map_data(DATA_VA, 0, R | W | X);
            // SUM and MXR do not help U-mode.
            m.hart.csr.mstatus |= csr::MSTATUS_SUM | csr::MSTATUS_MXR;
            let va = DATA_VA + if kind == Kind::Fetch { 0 } else { 8 };
            assert_eq!(
                m.access(kind, prv::U, va),
                page_fault(kind, va),
                "{mode:?} {kind:?}"
            );
        }
    }
}

#[test]
fn user_mode_cannot_run_code_from_a_supervisor_page() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.program(&[enc::ebreak()]);
        assert_eq!(
            m.run_at(prv::U, CODE_VA),
            page_fault(Kind::Fetch, CODE_VA),
            "{mode:?}"
        );
    }
}

// ------------------------------------------------------ canonical addresses

#[test]
fn non_canonical_virtual_addresses_raise_page_faults_in_every_mode() {
    for mode in MODES {
        let bits = mode.va_bits();
        for kind in KINDS {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            // Map both halves, so that any address whose upper bits were
            // ignored would translate.
            m.map_data(DATA_VA, 0, R | W | X);
            let upper = (u64::MAX << (bits - 1)) | DATA_VA;
            m.map_data(upper, 1, R | W | X);
            let low_bits = (1u64 << bits) - 1;
            let off = if kind == Kind::Fetch { 0 } else { 8 };
            let bad = [
                // Bits above the width set, top VA bit clear.
                DATA_VA | (1 << bits),
                DATA_VA | (1 << 63),
                (u64::MAX << bits) | DATA_VA,
                // Top VA bit set, bits above it clear (or partly clear).
                upper & low_bits,
                upper & !(1 << 63),
                upper & !(1 << bits),
            ];
            for va in bad {
                let va = va + off;
                assert_eq!(
                    m.access(kind, prv::S, va),
                    page_fault(kind, va),
                    "{mode:?} {kind:?} at {va:#x}"
                );
            }
        }
    }
}

#[test]
fn sv39_address_canonical_only_in_a_wider_mode_faults_in_sv39() {
    // 0x0000_0040_0000_0000 is canonical for Sv48 and Sv57 but not Sv39.
    let va = 0x0000_0040_0020_3008;
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        if mode != Mode::Sv39 {
            let pa = m.map_data(va & !0xfff, 0, R | W);
            assert_access_works(&mut m, Kind::Load, prv::S, va, pa + 8, &format!("{mode:?}"));
        } else {
            m.map_data((u64::MAX << 38) | (va & !0xfff), 0, R | W);
            assert_eq!(m.load(prv::S, va), page_fault(Kind::Load, va));
        }
    }
}

// ------------------------------------------------------------------- A / D

const DATA_FLAGS: u64 = R | W | X;

#[test]
fn load_sets_the_accessed_bit_but_not_the_dirty_bit() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, DATA_FLAGS);
        let before = m.pte(DATA_VA, 0);
        assert_completed(m.load(prv::S, DATA_VA + 8), CODE_VA + 4, "load");
        assert_eq!(m.pte(DATA_VA, 0), before | A, "{mode:?}");
    }
}

#[test]
fn store_to_clean_page_sets_accessed_and_dirty_bits() {
    for mode in MODES {
        for kind in [Kind::Store, Kind::Amo] {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map_data(DATA_VA, 0, DATA_FLAGS);
            let before = m.pte(DATA_VA, 0);
            assert_completed(m.access(kind, prv::S, DATA_VA + 8), CODE_VA + 4, "store");
            assert_eq!(m.pte(DATA_VA, 0), before | A | D, "{mode:?} {kind:?}");
        }
    }
}

#[test]
fn store_after_load_sets_the_dirty_bit() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, DATA_FLAGS);
        let before = m.pte(DATA_VA, 0);
        // Both in one run, so the load's translation may be cached.
        m.program(&[enc::ld(10, 11, 8), enc::sd(12, 11, 16), enc::ebreak()]);
        m.hart.x[11] = DATA_VA;
        assert_completed(m.run_at(prv::S, CODE_VA), CODE_VA + 8, "load then store");
        assert_eq!(m.pte(DATA_VA, 0), before | A | D, "{mode:?}");
    }
}

#[test]
fn fetch_sets_the_accessed_bit_of_the_code_page() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, R | X);
        let before = m.pte(DATA_VA, 0);
        assert_completed(m.fetch(prv::S, DATA_VA), DATA_VA, "fetch");
        assert_eq!(m.pte(DATA_VA, 0), before | A, "{mode:?}");
        assert_eq!(
            m.pte(CODE_VA, 0) & (A | D),
            A,
            "{mode:?}: the program's own page"
        );
    }
}

#[test]
fn store_through_superpage_sets_dirty_bit_in_the_superpage_leaf() {
    for mode in MODES {
        for level in 1..mode.levels() {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let va = superpage_va(mode, level);
            m.map(va, superpage_pa(level), level, R | W);
            let before = m.pte(va, level);
            let off = superpage_offset(level);
            assert_completed(m.store(prv::S, va + off, 5), CODE_VA + 4, "store");
            assert_eq!(m.pte(va, level), before | A | D, "{mode:?} level {level}");
        }
    }
}

#[test]
fn walks_never_modify_pointer_ptes() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, DATA_FLAGS);
        let pointers: Vec<u64> = (1..mode.levels()).map(|l| m.pte(DATA_VA, l)).collect();
        assert_completed(m.store(prv::S, DATA_VA + 8, 1), CODE_VA + 4, "store");
        assert_completed(m.fetch(prv::S, DATA_VA), DATA_VA, "fetch");
        let after: Vec<u64> = (1..mode.levels()).map(|l| m.pte(DATA_VA, l)).collect();
        assert_eq!(after, pointers, "{mode:?}");
    }
}

#[test]
fn faulting_accesses_leave_accessed_and_dirty_bits_alone() {
    for mode in MODES {
        // Store to a read-only page; user access from S without SUM; load
        // from an execute-only page; fetch from a non-executable page.
        let cases = [
            (R, Kind::Store),
            (R | W | U, Kind::Load),
            (X, Kind::Load),
            (R | W, Kind::Fetch),
        ];
        for (flags, kind) in cases {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map_data(DATA_VA, 0, flags);
            let before = m.pte(DATA_VA, 0);
            let va = DATA_VA + if kind == Kind::Fetch { 0 } else { 8 };
            assert_eq!(m.access(kind, prv::S, va), page_fault(kind, va));
            assert_eq!(
                m.pte(DATA_VA, 0),
                before,
                "{mode:?} flags {flags:#x} {kind:?}"
            );
        }
    }
}

// ------------------------------------------------------------ SFENCE.VMA

/// Runs `ld x10, 0(x11)`, lets `change` edit the page tables, then runs
/// `sfence.vma` (with `fence`'s registers) and `ld x12, 0(x11)`.
fn load_change_fence_load(
    m: &mut Machine,
    va: u64,
    fence: u32,
    change: impl FnOnce(&mut Machine),
) -> Trap {
    m.program(&[enc::ld(10, 11, 0), fence, enc::ld(12, 11, 0), enc::ebreak()]);
    m.hart.x[11] = va;
    m.hart.x[10] = 0;
    m.hart.x[12] = 0;
    m.start(prv::S, CODE_VA);
    m.step(1);
    assert_eq!(
        m.hart.pc,
        CODE_VA + 4,
        "the first load should have run alone"
    );
    change(m);
    m.step(100);
    assert_eq!(m.hart.pc, TRAP_PA);
    m_trap(&m.hart)
}

#[test]
fn sfence_vma_makes_a_remapped_pte_visible() {
    for mode in MODES {
        for fence in [
            enc::sfence_vma(0, 0),
            enc::sfence_vma(11, 0),
            enc::sfence_vma(11, 13),
        ] {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let pa0 = m.map_data(DATA_VA, 0, R | W);
            let pa1 = data_pa(1);
            m.fill_page(pa1);
            let va = DATA_VA + 0x40;
            let trap = load_change_fence_load(&mut m, va, fence, |m| {
                m.map(DATA_VA, pa1, 0, R | W);
            });
            assert_completed(trap, CODE_VA + 12, "remap");
            assert_eq!(
                m.hart.x[10],
                marker(pa0 + 0x40),
                "{mode:?}: before the remap"
            );
            assert_eq!(
                m.hart.x[12],
                marker(pa1 + 0x40),
                "{mode:?} {fence:#x}: after the fence"
            );
        }
    }
}

#[test]
fn sfence_vma_makes_an_invalidated_pte_fault() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, R | W);
        let va = DATA_VA + 8;
        let trap = load_change_fence_load(&mut m, va, enc::sfence_vma(0, 0), |m| {
            let pte = m.pte(DATA_VA, 0);
            m.set_pte(DATA_VA, 0, pte & !V);
        });
        let want = Trap {
            cause: cause::LOAD_PAGE_FAULT,
            tval: va,
            epc: CODE_VA + 8,
        };
        assert_eq!(trap, want, "{mode:?}");
    }
}

#[test]
fn sfence_vma_makes_a_revoked_write_permission_fault() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, R | W);
        let va = DATA_VA + 8;
        m.program(&[
            enc::sd(12, 11, 0),
            enc::sfence_vma(0, 0),
            enc::sd(12, 11, 0),
            enc::ebreak(),
        ]);
        m.hart.x[11] = va;
        m.start(prv::S, CODE_VA);
        m.step(1);
        assert_eq!(m.hart.pc, CODE_VA + 4);
        let pte = m.pte(DATA_VA, 0);
        m.set_pte(DATA_VA, 0, pte & !W);
        m.step(100);
        let want = Trap {
            cause: cause::STORE_PAGE_FAULT,
            tval: va,
            epc: CODE_VA + 8,
        };
        assert_eq!(m_trap(&m.hart), want, "{mode:?}");
    }
}

// ------------------------------------------------- TLB and mode changes

const SSTATUS: u32 = 0x100;
const MSTATUS: u32 = 0x300;

/// Runs `ld x10, 0(x11); csrrc x0, csr, x5; ld x12, 0(x11); ebreak` in `p`
/// with x5 = `bits`: the second load must see the cleared bits.
fn load_clear_load(m: &mut Machine, p: u8, pc: u64, csr_num: u32, bits: u64, va: u64) -> Trap {
    m.program(&[
        enc::ld(10, 11, 0),
        enc::csrrc(0, csr_num, 5),
        enc::ld(12, 11, 0),
        enc::ebreak(),
    ]);
    m.hart.x[5] = bits;
    m.hart.x[10] = 0;
    m.hart.x[11] = va;
    m.hart.x[12] = 0;
    m.run_at(p, pc)
}

#[test]
fn clearing_sum_takes_effect_for_the_next_access() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        let pa = m.map_data(DATA_VA, 0, R | W | U);
        m.hart.csr.mstatus |= csr::MSTATUS_SUM;
        let va = DATA_VA + 8;
        let trap = load_clear_load(&mut m, prv::S, CODE_VA, SSTATUS, csr::MSTATUS_SUM, va);
        let want = Trap {
            cause: cause::LOAD_PAGE_FAULT,
            tval: va,
            epc: CODE_VA + 8,
        };
        assert_eq!(trap, want, "{mode:?}");
        assert_eq!(
            m.hart.x[10],
            marker(pa + 8),
            "{mode:?}: the load with SUM set"
        );
    }
}

#[test]
fn clearing_mxr_takes_effect_for_the_next_access() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        let pa = m.map_data(DATA_VA, 0, X);
        m.hart.csr.mstatus |= csr::MSTATUS_MXR;
        let va = DATA_VA + 8;
        let trap = load_clear_load(&mut m, prv::S, CODE_VA, SSTATUS, csr::MSTATUS_MXR, va);
        let want = Trap {
            cause: cause::LOAD_PAGE_FAULT,
            tval: va,
            epc: CODE_VA + 8,
        };
        assert_eq!(trap, want, "{mode:?}");
        assert_eq!(
            m.hart.x[10],
            marker(pa + 8),
            "{mode:?}: the load with MXR set"
        );
    }
}

#[test]
fn clearing_mprv_takes_effect_for_the_next_access() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        // The same number is a virtual address mapped to page 1 and the
        // physical address of page 0.
        let va = data_pa(0);
        m.fill_page(data_pa(0));
        m.map_data(va, 1, R | W);
        set_mprv(&mut m.hart, prv::S);
        let trap = load_clear_load(&mut m, prv::M, CODE_PA, MSTATUS, csr::MSTATUS_MPRV, va + 8);
        assert_completed(trap, CODE_PA + 12, "MPRV program");
        assert_eq!(m.hart.x[10], marker(data_pa(1) + 8), "{mode:?}: with MPRV");
        assert_eq!(
            m.hart.x[12],
            marker(data_pa(0) + 8),
            "{mode:?}: without MPRV"
        );
    }
}

#[test]
fn user_mode_does_not_reuse_a_supervisor_translation() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        // U-mode code on the next page.
        let user_pc = CODE_VA + 0x1000;
        m.map(user_pc, CODE2_PA, 0, R | X | U);
        m.bus
            .write_code(CODE2_PA, &[enc::ld(12, 11, 0), enc::ebreak()]);
        m.map_data(DATA_VA, 0, R | W);
        // S-mode loads the supervisor page, then returns to U-mode, which
        // loads it too.
        m.program(&[enc::ld(10, 11, 0), enc::sret()]);
        let va = DATA_VA + 8;
        m.hart.x[11] = va;
        m.hart.csr.sepc = user_pc;
        m.hart.csr.mstatus &= !csr::MSTATUS_SPP;
        let want = Trap {
            cause: cause::LOAD_PAGE_FAULT,
            tval: va,
            epc: user_pc,
        };
        assert_eq!(m.run_at(prv::S, CODE_VA), want, "{mode:?}");
        assert_eq!(
            m.hart.x[10],
            marker(data_pa(0) + 8),
            "{mode:?}: the S-mode load"
        );
    }
}

#[test]
fn supervisor_mode_does_not_reuse_a_user_translation_without_sum() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        let user_pc = CODE_VA + 0x1000;
        m.map(user_pc, CODE2_PA, 0, R | X | U);
        // U-mode loads a user page, then ecalls into M-mode; the test
        // then runs S-mode code that loads the same page without SUM.
        m.bus
            .write_code(CODE2_PA, &[enc::ld(10, 11, 0), enc::ebreak()]);
        let pa = m.map_data(DATA_VA, 0, R | W | U);
        let va = DATA_VA + 8;
        m.hart.x[11] = va;
        m.start(prv::U, user_pc);
        m.step(100);
        assert_completed(m_trap(&m.hart), user_pc + 4, "U-mode load");
        assert_eq!(m.hart.x[10], marker(pa + 8));
        // Back to S-mode without flushing anything: through mret.
        m.program(&[enc::ld(12, 11, 0), enc::ebreak()]);
        m.bus.write_code(TRAP_PA + 0x100, &[0x3020_0073]); // mret
        m.hart.csr.mepc = CODE_VA;
        m.hart.csr.mstatus = (m.hart.csr.mstatus & !csr::MSTATUS_MPP) | (1 << 11);
        m.hart.pc = TRAP_PA + 0x100;
        m.step(100);
        let want = Trap {
            cause: cause::LOAD_PAGE_FAULT,
            tval: va,
            epc: CODE_VA,
        };
        assert_eq!(m_trap(&m.hart), want, "{mode:?}");
    }
}

// ------------------------------------------------------------------- satp

#[test]
fn satp_write_with_an_unsupported_mode_is_ignored() {
    let mut m = Machine::new(Mode::Sv39);
    let old = m.satp() | (0x1234 << 44);
    for mode in 0..16u64 {
        let value = (mode << 60) | (0xbeef << 44) | 0x8_0123;
        m.program(&[
            enc::csrrw(0, 0x180, 5),
            enc::csrrs(6, 0x180, 0),
            enc::ebreak(),
        ]);
        m.hart.x[5] = value;
        m.hart.x[6] = 0;
        m.start(prv::M, CODE_PA);
        m.hart.csr.satp = old;
        m.step(10);
        assert_completed(m_trap(&m.hart), CODE_PA + 8, "csr program");
        let want = if matches!(mode, 0 | 8 | 9 | 10) {
            value
        } else {
            old
        };
        assert_eq!(m.hart.x[6], want, "satp after writing mode {mode}");
    }
}

#[test]
fn machine_mode_ignores_satp() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        let pa = data_pa(0);
        m.fill_page(pa);
        m.program(&[enc::ld(10, 11, 0), enc::ebreak()]);
        m.hart.x[11] = pa + 8;
        assert_completed(m.run_at(prv::M, CODE_PA), CODE_PA + 4, "M-mode load");
        assert_eq!(m.hart.x[10], marker(pa + 8), "{mode:?}");
    }
}

// --------------------------------------------------------------------- PMP

/// pmpaddr of a NAPOT region of `size` (a power of two >= 8) at `base`.
fn napot(base: u64, size: u64) -> u64 {
    (base >> 2) | ((size >> 3) - 1)
}

const PMP_NAPOT: u8 = 0x18;
const PMP_R: u8 = 1;
const PMP_W: u8 = 2;
const PMP_X: u8 = 4;
const PMP_L: u8 = 0x80;

impl Machine {
    /// PMP entry 0 = NAPOT region [base, base+size) with `perms`; entry 1
    /// grants everything else.
    fn pmp_region(&mut self, base: u64, size: u64, perms: u8) {
        let c = &mut self.hart.csr;
        c.pmpaddr[0] = napot(base, size);
        c.pmpcfg[0] = PMP_NAPOT | perms;
        c.pmpaddr[1] = u64::MAX >> 10;
        c.pmpcfg[1] = PMP_NAPOT | PMP_R | PMP_W | PMP_X;
    }
}

#[test]
fn pmp_denied_data_access_raises_access_fault_with_the_virtual_address() {
    for mode in MODES {
        for kind in KINDS {
            // Deny exactly what the access needs; allow the rest.
            let perms = match kind {
                Kind::Load => PMP_W | PMP_X,
                Kind::Store | Kind::Amo => PMP_R | PMP_X,
                Kind::Fetch => PMP_R | PMP_W,
            };
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let pa = m.map_data(DATA_VA, 0, R | W | X);
            m.pmp_region(pa, 0x1000, perms);
            let va = DATA_VA + if kind == Kind::Fetch { 0 } else { 8 };
            assert_eq!(
                m.access(kind, prv::S, va),
                access_fault(kind, va),
                "{mode:?} {kind:?}"
            );
            assert_eq!(
                m.bus.read_u64(pa + 8),
                marker(pa + 8),
                "memory must be unchanged"
            );
            // Granting the permission makes the same access work.
            m.pmp_region(pa, 0x1000, PMP_R | PMP_W | PMP_X);
            assert_completed(
                m.access(kind, prv::S, va),
                kind.done_at(va),
                "with PMP granted",
            );
        }
    }
}

/// The physical page of the table that holds `va`'s PTE at `level`.
fn table_page(m: &Machine, va: u64, level: u32) -> u64 {
    m.pte_addr(va, level) & !0xfff
}

#[test]
fn pmp_denied_page_table_read_raises_access_fault_of_the_original_access_type() {
    for mode in MODES {
        for level in 0..mode.levels() {
            // Loads, stores and AMOs from M-mode with MPRV (MPP = S): the
            // fetches are untranslated, so the tables the data walk shares
            // with the program's can be denied too.
            for kind in [Kind::Load, Kind::Store, Kind::Amo] {
                let mut m = Machine::new(mode);
                m.map_data(DATA_VA, 0, R | W);
                let table = table_page(&m, DATA_VA, level);
                m.pmp_region(table, 0x1000, 0);
                set_mprv(&mut m.hart, prv::S);
                let va = DATA_VA + 8;
                let want = Trap {
                    cause: kind.access_fault(),
                    tval: va,
                    epc: CODE_PA,
                };
                assert_eq!(
                    m.mprv_access(kind, va),
                    want,
                    "{mode:?} {kind:?} with the level-{level} table denied"
                );
            }
            // Fetches from S-mode.
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            m.map_data(DATA_VA, 0, R | X);
            let table = table_page(&m, DATA_VA, level);
            m.pmp_region(table, 0x1000, 0);
            let shared = (0..mode.levels()).any(|l| table_page(&m, CODE_VA, l) == table);
            let want = if shared {
                // The program's own fetch walks through the denied table.
                access_fault(Kind::Fetch, CODE_VA)
            } else {
                access_fault(Kind::Fetch, DATA_VA)
            };
            assert_eq!(
                m.fetch(prv::S, DATA_VA),
                want,
                "{mode:?} fetch with the level-{level} table denied"
            );
        }
    }
}

#[test]
fn pmp_read_only_page_table_turns_the_accessed_bit_update_into_an_access_fault() {
    for mode in MODES {
        for kind in [Kind::Load, Kind::Store] {
            let mut m = Machine::new(mode);
            m.map_code(R | X | A);
            m.map_data(DATA_VA, 0, R | W);
            let table = m.pte_addr(DATA_VA, 0) & !0xfff;
            assert_ne!(table, m.pte_addr(CODE_VA, 0) & !0xfff);
            m.pmp_region(table, 0x1000, PMP_R);
            let va = DATA_VA + 8;
            assert_eq!(
                m.access(kind, prv::S, va),
                access_fault(kind, va),
                "{mode:?} {kind:?}"
            );
            // With A and D already set there is nothing to write.
            let pte = m.pte(DATA_VA, 0);
            m.set_pte(DATA_VA, 0, pte | A | D);
            assert_completed(m.access(kind, prv::S, va), CODE_VA + 4, "A and D preset");
        }
    }
}

#[test]
fn supervisor_fetch_with_no_matching_pmp_entry_raises_access_fault() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.program(&[enc::ebreak()]);
        m.hart.csr.pmpcfg[0] = 0;
        // The first page-table read already fails.
        assert_eq!(
            m.run_at(prv::S, CODE_VA),
            access_fault(Kind::Fetch, CODE_VA),
            "{mode:?}"
        );
    }
}

#[test]
fn locked_pmp_entry_restricts_machine_mode_and_unlocked_does_not() {
    for locked in [false, true] {
        let mut m = Machine::new(Mode::Sv39);
        let pa = data_pa(0);
        m.fill_page(pa);
        m.pmp_region(pa, 0x1000, if locked { PMP_L } else { 0 });
        m.program(&[enc::ld(10, 11, 0), enc::ebreak()]);
        m.hart.x[11] = pa + 8;
        let trap = m.run_at(prv::M, CODE_PA);
        if locked {
            let want = Trap {
                cause: cause::LOAD_ACCESS,
                tval: pa + 8,
                epc: CODE_PA,
            };
            assert_eq!(trap, want, "locked entry");
        } else {
            assert_completed(trap, CODE_PA + 4, "unlocked entry");
            assert_eq!(m.hart.x[10], marker(pa + 8));
        }
    }
}

// -------------------------------------------------------------------- MPRV

/// Sets MPRV with MPP = `mpp`.
fn set_mprv(h: &mut Hart, mpp: u8) {
    h.csr.mstatus = (h.csr.mstatus & !csr::MSTATUS_MPP) | csr::MSTATUS_MPRV | ((mpp as u64) << 11);
}

#[test]
fn mprv_with_mpp_s_makes_machine_mode_loads_and_stores_translate() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        let pa = m.map_data(DATA_VA, 0, R | W);
        // The code runs at its physical address: fetches are not translated
        // (nothing maps CODE_PA as a virtual address).
        m.program(&[enc::ld(10, 11, 8), enc::sd(12, 11, 16), enc::ebreak()]);
        m.hart.x[11] = DATA_VA;
        m.hart.x[12] = 0x4242;
        set_mprv(&mut m.hart, prv::S);
        assert_completed(m.run_at(prv::M, CODE_PA), CODE_PA + 8, "MPRV program");
        assert_eq!(m.hart.x[10], marker(pa + 8), "{mode:?}: load through MPRV");
        assert_eq!(
            m.bus.read_u64(pa + 16),
            0x4242,
            "{mode:?}: store through MPRV"
        );
    }
}

#[test]
fn mprv_with_mpp_s_raises_page_faults_in_machine_mode() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_data(DATA_VA, 0, R);
        m.program(&[enc::sd(12, 11, 0), enc::ebreak()]);
        let va = DATA_VA + 8;
        m.hart.x[11] = va;
        set_mprv(&mut m.hart, prv::S);
        let want = Trap {
            cause: cause::STORE_PAGE_FAULT,
            tval: va,
            epc: CODE_PA,
        };
        assert_eq!(
            m.run_at(prv::M, CODE_PA),
            want,
            "{mode:?}: store to read-only page"
        );
        // And an unmapped address.
        m.program(&[enc::ld(10, 11, 0), enc::ebreak()]);
        let va = DATA_VA + 0x1000;
        m.hart.x[11] = va;
        set_mprv(&mut m.hart, prv::S);
        let want = Trap {
            cause: cause::LOAD_PAGE_FAULT,
            tval: va,
            epc: CODE_PA,
        };
        assert_eq!(m.run_at(prv::M, CODE_PA), want, "{mode:?}: unmapped page");
    }
}

#[test]
fn mprv_with_mpp_u_applies_user_permissions() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        let pa_user = m.map_data(DATA_VA, 0, R | W | U);
        m.map_data(DATA_VA + 0x1000, 1, R | W);
        m.program(&[enc::ld(10, 11, 0), enc::ebreak()]);
        m.hart.x[11] = DATA_VA + 8;
        set_mprv(&mut m.hart, prv::U);
        assert_completed(m.run_at(prv::M, CODE_PA), CODE_PA + 4, "user page");
        assert_eq!(m.hart.x[10], marker(pa_user + 8), "{mode:?}");
        let va = DATA_VA + 0x1008;
        m.hart.x[11] = va;
        set_mprv(&mut m.hart, prv::U);
        let want = Trap {
            cause: cause::LOAD_PAGE_FAULT,
            tval: va,
            epc: CODE_PA,
        };
        assert_eq!(m.run_at(prv::M, CODE_PA), want, "{mode:?}: supervisor page");
    }
}

#[test]
fn mprv_with_mpp_m_does_not_translate() {
    let mut m = Machine::new(Mode::Sv39);
    let pa = data_pa(0);
    m.fill_page(pa);
    m.program(&[enc::ld(10, 11, 0), enc::ebreak()]);
    m.hart.x[11] = pa + 8;
    set_mprv(&mut m.hart, prv::M);
    assert_completed(m.run_at(prv::M, CODE_PA), CODE_PA + 4, "MPP = M");
    assert_eq!(m.hart.x[10], marker(pa + 8));
}

// ------------------------------------------------------- crossing a page

#[test]
fn instruction_straddling_into_an_unmapped_page_faults_with_the_second_page_in_mtval() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        let pc = CODE_VA + 0xffe;
        let li = enc::addi(10, 0, 42).to_le_bytes();
        m.bus.write(CODE_PA + 0xffe, &li[..2]);
        m.bus.write(CODE2_PA, &li[2..]);
        m.bus.write_u32(CODE2_PA + 2, enc::ebreak());
        // Unmapped next page.
        let want = Trap {
            cause: cause::FETCH_PAGE_FAULT,
            tval: CODE_VA + 0x1000,
            epc: pc,
        };
        assert_eq!(m.run_at(prv::S, pc), want, "{mode:?}");
        // Mapped: the instruction runs.
        m.map(CODE_VA + 0x1000, CODE2_PA, 0, R | X);
        m.hart.x[10] = 0;
        assert_completed(m.run_at(prv::S, pc), CODE_VA + 0x1002, "straddling addi");
        assert_eq!(m.hart.x[10], 42, "{mode:?}");
    }
}

#[test]
fn page_crossing_store_into_an_unwritable_page_faults_and_writes_nothing() {
    for mode in MODES {
        for second in [0, R] {
            let mut m = Machine::new(mode);
            m.map_code(R | X);
            let pa0 = m.map_data(DATA_VA, 0, R | W);
            if second != 0 {
                m.map_data(DATA_VA + 0x1000, 1, second);
            }
            let va = DATA_VA + 0xffc;
            let trap = m.store(prv::S, va, u64::MAX);
            assert_eq!(
                (trap.cause, trap.epc),
                (cause::STORE_PAGE_FAULT, CODE_VA),
                "{mode:?}"
            );
            assert!(
                (DATA_VA + 0x1000..va + 8).contains(&trap.tval),
                "{mode:?}: tval {:#x} should be in the faulting page's part of the access",
                trap.tval
            );
            assert_eq!(
                m.bus.read_u64(pa0 + 0xff8),
                marker(pa0 + 0xff8),
                "first page written"
            );
        }
    }
}

#[test]
fn page_crossing_load_from_an_unmapped_page_faults_in_the_second_page() {
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        m.map_data(DATA_VA, 0, R | W);
        let va = DATA_VA + 0xffa;
        let trap = m.load(prv::S, va);
        assert_eq!(
            (trap.cause, trap.epc),
            (cause::LOAD_PAGE_FAULT, CODE_VA),
            "{mode:?}"
        );
        assert!(
            (DATA_VA + 0x1000..va + 8).contains(&trap.tval),
            "{mode:?}: tval {:#x}",
            trap.tval
        );
        assert_eq!(m.hart.x[10], 0, "the load must not write rd");
    }
}

/// Where [`STRADDLING_LOOP`] starts: its fourth instruction, at 0x1ffe,
/// straddles CODE_VA's page and the next.
const STRADDLING_LOOP_VA: u64 = CODE_VA + 0xff2;

/// A loop of increments: x5, x6, x7, x28 (the straddling one), x29, then
/// back through x8.
fn straddling_loop() -> [u32; 6] {
    [
        enc::addi(5, 5, 1),
        enc::addi(6, 6, 1),
        enc::addi(7, 7, 1),
        enc::addi(28, 28, 1),
        enc::addi(29, 29, 1),
        enc::jalr(0, 8, 0),
    ]
}

/// A machine under Sv39 on `engine` (translating every block at its first
/// run), in S-mode at the start of [`straddling_loop`], whose upper page
/// is mapped to CODE2_PA.
fn straddling_machine(engine: rewind_hart::Engine) -> Machine {
    let bytes: Vec<u8> = straddling_loop()
        .iter()
        .flat_map(|i| i.to_le_bytes())
        .collect();
    let mut m = Machine::new(Mode::Sv39);
    m.hart.set_engine(engine).expect("the engine");
    m.hart.set_translation_threshold(0);
    m.map_code(R | X | A);
    m.map(CODE_VA + 0x1000, CODE2_PA, 0, R | X | A);
    m.bus.write(CODE_PA + 0xff2, &bytes[..14]);
    m.bus.write(CODE2_PA, &bytes[14..]);
    m.hart.x[8] = STRADDLING_LOOP_VA;
    m.start(prv::S, STRADDLING_LOOP_VA);
    m
}

#[test]
fn a_straddling_instruction_follows_its_upper_page_when_remapped_on_both_engines() {
    // A loop at 0x1ff2 whose fourth instruction (at 0x1ffe) straddles
    // CODE_VA's page and the next; the next page is then remapped to a copy
    // whose upper half of that instruction differs, and SFENCE.VMA runs.
    // Translated code that chained to the straddling instruction's old
    // translation must find its upper half moved and leave.
    let code = straddling_loop();
    let changed = enc::addi(28, 28, 3);
    assert_eq!(changed & 0xffff, code[3] & 0xffff);
    let bytes: Vec<u8> = code.iter().flat_map(|i| i.to_le_bytes()).collect();
    let mut copy = bytes[14..].to_vec();
    copy[..2].copy_from_slice(&((changed >> 16) as u16).to_le_bytes());
    let copy_pa = data_pa(5);
    let rounds = 40;
    for engine in [rewind_hart::Engine::Interp, rewind_hart::Engine::Jit] {
        let mut m = straddling_machine(engine);
        // The stub at CODE_VA: sfence.vma, then back to the loop.
        m.program(&[enc::sfence_vma(0, 0), enc::jalr(0, 8, 0)]);
        m.bus.write(copy_pa, &copy);
        let exit = m.hart.run_bounded(&mut m.bus, u64::MAX, 6 * rounds);
        assert_eq!(exit, rewind_hart::Exit::Retired, "{engine:?}");
        assert_eq!(m.hart.x[28], rounds, "{engine:?}");

        m.set_pte(CODE_VA + 0x1000, 0, ((copy_pa >> 12) << 10) | R | X | A | V);
        m.hart.pc = CODE_VA;
        let steps = m.hart.steps() + 2 + 6 * rounds;
        let exit = m.hart.run_bounded(&mut m.bus, u64::MAX, steps);
        assert_eq!(exit, rewind_hart::Exit::Retired, "{engine:?}");
        assert_eq!(
            (m.hart.x[5], m.hart.x[28], m.hart.prv),
            (2 * rounds, 4 * rounds, prv::S),
            "{engine:?}: after the remap, the copy's upper half"
        );
    }
}

#[test]
fn sfence_vma_with_an_address_drops_its_leaf_and_keeps_other_pages() {
    // Two 4 KiB pages and two 4 KiB pieces of one 2 MiB superpage are
    // loaded from (filling the TLB), all four remapped, then SFENCE.VMA
    // names one 4 KiB page and one address of the superpage: the named
    // page and the whole superpage show the new mappings, the other 4 KiB
    // page the old one, kept in the TLB.
    const MEGA_VA: u64 = 0x4060_0000;
    let new_mega_pa = MEGA_PA + 0x20_0000;
    for mode in MODES {
        let mut m = Machine::new(mode);
        m.map_code(R | X);
        let (a, b) = (DATA_VA, DATA_VA + 0x1000);
        let old_a = m.map_data(a, 0, R | W | A | D);
        let old_b = m.map_data(b, 1, R | W | A | D);
        let (new_a, new_b) = (data_pa(2), data_pa(3));
        m.fill_page(new_a);
        m.fill_page(new_b);
        m.map(MEGA_VA, MEGA_PA, 1, R | W | A | D);
        for pa in [MEGA_PA, MEGA_PA + 0x5000, new_mega_pa, new_mega_pa + 0x5000] {
            m.fill_page(pa);
        }
        let (c, d) = (MEGA_VA + 0x40, MEGA_VA + 0x5040);
        let loads = |rd| {
            [
                enc::ld(rd, 11, 0x40),
                enc::ld(rd + 1, 12, 0x40),
                enc::ld(rd + 2, 13, 0),
                enc::ld(rd + 3, 14, 0),
            ]
        };
        let mut code = loads(16).to_vec();
        code.extend([enc::sfence_vma(11, 0), enc::sfence_vma(13, 0)]);
        code.extend(loads(20));
        code.push(enc::ebreak());
        m.program(&code);
        (m.hart.x[11], m.hart.x[12], m.hart.x[13], m.hart.x[14]) = (a, b, c, d);
        m.start(prv::S, CODE_VA);
        m.step(4);
        m.map(a, new_a, 0, R | W | A | D);
        m.map(b, new_b, 0, R | W | A | D);
        m.map(MEGA_VA, new_mega_pa, 1, R | W | A | D);
        m.step(100);
        assert_eq!(m.hart.pc, TRAP_PA, "{mode:?}");
        let before = [old_a + 0x40, old_b + 0x40, MEGA_PA + 0x40, MEGA_PA + 0x5040];
        let after = [
            new_a + 0x40,
            old_b + 0x40,
            new_mega_pa + 0x40,
            new_mega_pa + 0x5040,
        ];
        for (k, pa) in before.iter().enumerate() {
            assert_eq!(m.hart.x[16 + k], marker(*pa), "{mode:?}: load {k} before");
        }
        for (k, pa) in after.iter().enumerate() {
            assert_eq!(m.hart.x[20 + k], marker(*pa), "{mode:?}: load {k} after");
        }
    }
}

#[test]
fn a_straddling_instruction_checks_which_page_its_upper_half_comes_through() {
    // The straddling loop of the test above runs translated; then the
    // upper page loses X, and an alias of it in the same TLB slot (still
    // executable, same physical page) is fetched from. Back in the loop,
    // the upper half's fetch must walk for its own page and fault, not
    // run through the alias's entry.
    let upper_va = CODE_VA + 0x1000;
    let alias_va = upper_va + 2048 * 0x1000;
    for engine in [rewind_hart::Engine::Interp, rewind_hart::Engine::Jit] {
        let mut m = straddling_machine(engine);
        m.map(alias_va, CODE2_PA, 0, R | X | A);
        let exit = m.hart.run_bounded(&mut m.bus, u64::MAX, 6 * 20);
        assert_eq!(exit, rewind_hart::Exit::Retired, "{engine:?}");

        m.set_pte(upper_va, 0, ((CODE2_PA >> 12) << 10) | R | A | V);
        // addi x29 and the jalr back, fetched through the alias.
        m.hart.pc = alias_va + 2;
        m.step(20);
        assert_eq!(
            (m.hart.prv, m_trap(&m.hart).cause, m_trap(&m.hart).tval),
            (prv::M, cause::FETCH_PAGE_FAULT, upper_va),
            "{engine:?}: the upper half's own page is not executable now"
        );
        assert_eq!(m_trap(&m.hart).epc, STRADDLING_LOOP_VA + 12, "{engine:?}");
    }
}
