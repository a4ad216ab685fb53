//! The translating engine: hot blocks run as x86-64 code (see
//! translate.rs for what is translated and why the result is exact).
//!
//! A block is translated once the interpreter has run it [`HOT`] times,
//! so code that runs once (most of a boot's) costs no translation. The
//! translation lives beside the decoded block in the block cache and goes
//! with it (a store into its page, a restore), and with the code cache
//! when that fills up.

// Other hosts keep the types (the hart holds them) but never translate.
#![cfg_attr(not(target_arch = "x86_64"), allow(dead_code, unused_imports))]

#[cfg(target_arch = "x86_64")]
mod code_cache;
#[cfg(target_arch = "x86_64")]
mod helpers;
#[cfg(target_arch = "x86_64")]
mod translate;

#[cfg(not(target_arch = "x86_64"))]
#[path = "other_hosts.rs"]
mod translate;

use crate::bus::Bus;
use crate::decode::Inst;
use crate::hart::Hart;
use crate::tlb::Access;
#[cfg(target_arch = "x86_64")]
use code_cache::CodeCache;
pub(crate) use translate::JitContext;
use translate::{JumpEntry, NativeBlock, JUMP_CACHE};

/// Runs of a block by the interpreter before it is translated (unless
/// [`Hart::set_translation_threshold`] says otherwise).
pub(crate) const HOT: u16 = 8;
/// Bytes of translated code a hart keeps at most.
const CODE_CACHE_BYTES: usize = 32 << 20;

/// A block's translation: where its code is, how many of the block's
/// instructions it covers, and the code cache generation it belongs to.
#[derive(Clone, Copy)]
pub(crate) struct Native {
    entry: NativeBlock,
    /// Where blocks chaining to it jump.
    chain: usize,
    len: usize,
    generation: u32,
    /// The virtual address it was translated at: blocks are cached by
    /// physical address, and the code has pc-relative values built in, so
    /// the same page mapped elsewhere needs a translation of its own.
    pc: u64,
}

/// Where a cached block stands with the translator, as plain fields:
/// every one is valid as zero bytes (a block not run yet), which the
/// zeroed block cache relies on.
#[derive(Clone, Copy)]
#[repr(C)]
pub(crate) struct NativeState {
    /// Its translation's entry, None until translated.
    entry: Option<NativeBlock>,
    chain: usize,
    pc: u64,
    generation: u32,
    len: u8,
    /// Runs by the interpreter so far, or [`NEVER`].
    runs: u16,
}

/// `NativeState::runs` of a block whose first instruction is not
/// translated.
const NEVER: u16 = u16::MAX;

/// What `NativeState` says.
enum Stage {
    /// Run this many times by the interpreter so far.
    Cold(u16),
    /// Its first instruction is not translated.
    Never,
    Translated(Native),
}

impl NativeState {
    /// Not run yet (all zero).
    pub(crate) const NONE: NativeState = NativeState {
        entry: None,
        chain: 0,
        pc: 0,
        generation: 0,
        len: 0,
        runs: 0,
    };

    fn stage(&self) -> Stage {
        match self.entry {
            Some(entry) => Stage::Translated(Native {
                entry,
                chain: self.chain,
                len: self.len as usize,
                generation: self.generation,
                pc: self.pc,
            }),
            None if self.runs == NEVER => Stage::Never,
            None => Stage::Cold(self.runs),
        }
    }

    fn translated(native: &Native) -> Self {
        NativeState {
            entry: Some(native.entry),
            chain: native.chain,
            pc: native.pc,
            generation: native.generation,
            // A block has at most 64 instructions (block.rs).
            len: native.len as u8,
            runs: 0,
        }
    }
}

/// A hart's translator and its code.
/// An exit of a translated block that could chain to `pc` but found its
/// link cell empty: if the very next thing the hart does is run `pc`'s
/// translation, the cell gets it.
#[derive(Clone, Copy)]
struct PendingLink {
    cell: usize,
    pc: u64,
    /// The hart's steps, privilege and satp when the exit was taken:
    /// anything since (a trap, an instruction interpreted, a debugger
    /// changing the translation) and the link is not made, since the two
    /// blocks must be on one page under one translation.
    when: (u64, u8, u64),
    generation: u32,
}

/// An empty jump cache entry: no RAM offset is all ones.
const EMPTY_JUMP: JumpEntry = JumpEntry {
    off: u64::MAX,
    pc: 0,
    generation: 0,
    chain: 0,
};

/// Link cells per code cache: two per block at most.
const CELLS: usize = 1 << 18;

/// Instructions kept for helpers per code cache (a call site takes more
/// than 32 bytes of code, so the code cache fills first).
const KEPT_INSTS: usize = CODE_CACHE_BYTES / 32;
/// Kept instructions are allocated in chunks of this many, never moved.
const KEPT_CHUNK: usize = 1 << 12;

/// The copies of decoded instructions that translated code hands to
/// helpers: in chunks that never move, emptied with the code cache.
#[derive(Default)]
struct KeptInsts {
    chunks: Vec<Vec<Inst>>,
    len: usize,
}

impl KeptInsts {
    fn keep(&mut self, inst: &Inst) -> Option<*const Inst> {
        if self.len == KEPT_INSTS {
            return None;
        }
        if self.chunks.last().is_none_or(|c| c.len() == KEPT_CHUNK) {
            self.chunks.push(Vec::with_capacity(KEPT_CHUNK));
        }
        let chunk = self.chunks.last_mut()?;
        // Within capacity: the chunk's buffer never moves.
        chunk.push(*inst);
        self.len += 1;
        chunk.last().map(|i| i as *const Inst)
    }

    fn clear(&mut self) {
        self.chunks.clear();
        self.len = 0;
    }
}

/// What a translation keeps beside its code, lent to the translator.
#[cfg(target_arch = "x86_64")]
struct Keeper<'a> {
    cells: &'a mut [u64],
    cells_used: &'a mut usize,
    insts: &'a mut KeptInsts,
}

#[cfg(target_arch = "x86_64")]
impl translate::Keep for Keeper<'_> {
    fn cell(&mut self) -> Option<*mut u64> {
        let cell = self.cells.get_mut(*self.cells_used)?;
        *self.cells_used += 1;
        Some(cell as *mut u64)
    }

    fn inst(&mut self, inst: &Inst) -> Option<*const Inst> {
        self.insts.keep(inst)
    }
}

#[cfg(target_arch = "x86_64")]
pub(crate) struct Jit {
    cache: CodeCache,
    /// Link cells: the chained entry of the block an exit goes to, or 0.
    /// Read by translated code; written here between runs. Never
    /// reallocated, as translated code holds their addresses.
    cells: Box<[u64]>,
    cells_used: usize,
    insts: KeptInsts,
    pending: Option<PendingLink>,
    /// The jump cache: translations by the RAM offset of their pc, for
    /// blocks that leave their page or jump to a register. Filled as the
    /// hart runs translations; reset with the code cache.
    jumps: Box<[JumpEntry]>,
    /// Runs by the interpreter before a block is translated.
    hot: u16,
    /// Instructions retired by translated code, for tests and benchmarks
    /// (never seen by the guest).
    retired: u64,
}

/// No translator on this host: there is never one.
#[cfg(not(target_arch = "x86_64"))]
pub(crate) enum Jit {}

#[cfg(not(target_arch = "x86_64"))]
impl Jit {
    pub(crate) fn new() -> Result<Jit, String> {
        Err("the translating engine emits x86-64 code; use --engine interp on this host".into())
    }
    pub(crate) fn holds(&self, _native: &Native) -> bool {
        match *self {}
    }
    pub(crate) fn clear(&mut self) {
        match *self {}
    }
    pub(crate) fn note_retired(&mut self, _n: u64) {
        match *self {}
    }
    pub(crate) fn hot(&self) -> u16 {
        match *self {}
    }
    pub(crate) fn set_hot(&mut self, _runs: u16) {
        match *self {}
    }
    pub(crate) fn retired(&self) -> u64 {
        match *self {}
    }
    pub(crate) fn translate(
        &mut self,
        _insts: &[Inst],
        _pc: u64,
        _second_page: Option<(usize, u32)>,
    ) -> Option<Native> {
        match *self {}
    }
}

#[cfg(target_arch = "x86_64")]
impl Jit {
    pub(crate) fn new() -> Result<Jit, String> {
        let cache = CodeCache::new(CODE_CACHE_BYTES)
            .map_err(|e| format!("cannot make the translator's code cache: {}", e.0))?;
        Ok(Jit {
            cache,
            cells: vec![0; CELLS].into_boxed_slice(),
            cells_used: 0,
            insts: KeptInsts::default(),
            pending: None,
            jumps: vec![EMPTY_JUMP; JUMP_CACHE].into_boxed_slice(),
            hot: HOT,
            retired: 0,
        })
    }

    /// Whether `native` is still in the cache.
    pub(crate) fn holds(&self, native: &Native) -> bool {
        native.generation == self.cache.generation()
    }

    pub(crate) fn note_retired(&mut self, n: u64) {
        self.retired += n;
    }

    pub(crate) fn hot(&self) -> u16 {
        self.hot
    }

    pub(crate) fn set_hot(&mut self, runs: u16) {
        self.hot = runs;
    }

    pub(crate) fn retired(&self) -> u64 {
        self.retired
    }

    /// Translates the block `insts` starting at `pc`; None when its first
    /// instruction is not translated. `second_page` is the RAM page and
    /// code generation of the upper half of a block that is one
    /// instruction straddling two pages.
    pub(crate) fn translate(
        &mut self,
        insts: &[Inst],
        pc: u64,
        second_page: Option<(usize, u32)>,
    ) -> Option<Native> {
        if let Some(native) = self.try_translate(insts, pc, second_page) {
            return Some(native);
        }
        if insts.first().is_some_and(translate::translates) {
            // Out of code space or link cells: start again. Blocks
            // translated before are dropped (their generation no longer
            // matches) and come back when they run hot again.
            self.clear();
            return self.try_translate(insts, pc, second_page);
        }
        None
    }

    /// Drops every translation, link and jump cache entry.
    pub(crate) fn clear(&mut self) {
        self.cache.clear();
        self.cells.fill(0);
        self.cells_used = 0;
        self.insts.clear();
        self.pending = None;
        self.jumps.fill(EMPTY_JUMP);
    }

    /// Notes that `native`, fetched from RAM offset `off` on a page of code
    /// generation `generation`, is what the hart runs there now.
    fn note_jump_target(&mut self, native: &Native, off: usize, generation: u32) {
        let entry = JumpEntry {
            off: off as u64,
            pc: native.pc,
            generation: generation as u64,
            chain: native.chain as u64,
        };
        // Usually already there: leave its cache line clean.
        let slot = &mut self.jumps[(off >> 1) & (JUMP_CACHE - 1)];
        if *slot != entry {
            *slot = entry;
        }
    }

    fn try_translate(
        &mut self,
        insts: &[Inst],
        pc: u64,
        second_page: Option<(usize, u32)>,
    ) -> Option<Native> {
        let mut keeper = Keeper {
            cells: &mut self.cells,
            cells_used: &mut self.cells_used,
            insts: &mut self.insts,
        };
        let translation = translate::translate(insts, pc, second_page, &mut keeper)?;
        let entry = self.cache.add(&translation.code)?;
        let chain = entry + translation.chain_offset;
        // SAFETY: `entry` is the start of code just assembled by
        // `translate::translate` with the sysv64 signature of NativeBlock.
        let entry = unsafe { std::mem::transmute::<usize, NativeBlock>(entry) };
        Some(Native {
            entry,
            chain,
            len: translation.len,
            generation: self.cache.generation(),
            pc,
        })
    }

    /// Fills the link cell an exit found empty, if `native` (about to
    /// run) is where it went and nothing happened since (`steps`).
    fn link(&mut self, native: &Native, when: (u64, u8, u64)) {
        let Some(link) = self.pending.take() else {
            return;
        };
        if link.pc == native.pc && link.when == when && link.generation == native.generation {
            self.cells[link.cell] = native.chain as u64;
        }
    }

    /// Notes an exit that found its link cell (an address in `cells`)
    /// empty.
    fn note_unlinked(&mut self, cell: *mut u64, pc: u64, when: (u64, u8, u64)) {
        let index = (cell as usize - self.cells.as_ptr() as usize) / 8;
        self.pending = Some(PendingLink {
            cell: index,
            pc,
            when,
            generation: self.cache.generation(),
        });
    }
}

#[cfg(not(target_arch = "x86_64"))]
impl Hart {
    /// No translator on this host: the interpreter runs every block.
    pub(crate) fn run_native<B: Bus>(
        &mut self,
        _bus: &mut B,
        _block: (usize, usize),
        _insts: &[Inst],
        _budget: u64,
    ) -> usize {
        0
    }
}

#[cfg(target_arch = "x86_64")]
impl Hart {
    /// Runs the translation of the block in cache slot `slot` (whose
    /// decoded instructions are `insts`), and the blocks it chains to,
    /// within `budget` instructions, translating it first if it has become
    /// hot. Returns how many of `insts` it retired, for the interpreter to
    /// go on from the next: 0 when nothing ran natively, `usize::MAX` when
    /// it left from another block (the interpreter has nothing to do in
    /// this one).
    pub(crate) fn run_native<B: Bus>(
        &mut self,
        bus: &mut B,
        (slot, off): (usize, usize),
        insts: &[Inst],
        budget: u64,
    ) -> usize {
        let second_page = self.second_page(slot);
        let Some(jit) = self.jit.as_deref_mut() else {
            return 0;
        };
        let steps = self.instret + self.traps;
        let (prv, satp) = (self.prv, self.csr.satp);
        let state = &mut self.blocks.slots[slot].native;
        let native = match state.stage() {
            Stage::Translated(native) if jit.holds(&native) && native.pc == self.pc => native,
            Stage::Never => {
                jit.pending = None;
                return 0;
            }
            Stage::Cold(runs) if runs < jit.hot() => {
                state.runs = runs + 1;
                jit.pending = None;
                return 0;
            }
            _ => match jit.translate(insts, self.pc, second_page) {
                Some(native) => {
                    *state = NativeState::translated(&native);
                    native
                }
                None => {
                    *state = NativeState {
                        runs: NEVER,
                        ..NativeState::NONE
                    };
                    jit.pending = None;
                    return 0;
                }
            },
        };
        if native.len as u64 > budget {
            // The budget ends inside: the interpreter stops exactly there.
            jit.pending = None;
            return 0;
        }
        jit.link(&native, (steps, prv, satp));
        jit.note_jump_target(&native, off, bus.ram().generation(off));
        let ram_state: *mut crate::memory::Ram = bus.ram();
        let (ram, written, epoch, generations) = bus.ram().fast_path_parts();
        let mode = self.data_mode;
        let tlb_data = self.tlb.data_tables(mode);
        let tlb_exec = self
            .tlb
            .table(crate::tlb::Tlb::mode_index(prv), Access::Execute)
            .as_ptr();
        let debugged = self.debug.is_some();
        let entry = native.entry;
        let jumps = jit.jumps.as_ptr();
        // Everything the code and its helpers reach of the hart goes
        // through this one pointer while it runs.
        let hart: *mut Hart = self;
        // SAFETY: `hart` is `self`, valid; the context is a plain field of
        // it, written before the code runs and read after.
        let context = unsafe { &mut *std::ptr::addr_of_mut!((*hart).jit_context) };
        *context = JitContext {
            ram,
            written,
            tlb_data,
            epoch,
            // With a debugger attached, one block at a time: the hart's
            // loop looks for breakpoints before each block, which a chain
            // would skip.
            budget: if debugged { native.len as u64 } else { budget },
            // SAFETY: as for `context`.
            exit_pc: unsafe { (*hart).pc },
            exit_before: 0,
            exit_cell: std::ptr::null_mut(),
            tlb_exec,
            generations,
            jumps,
            hart,
            ram_state,
        };
        let context: *mut JitContext = context;
        // SAFETY: the context points at this hart (through `hart`, which
        // nothing else uses while the code runs), the TLB tables of its
        // data privilege, and RAM's bytes and stamps; it lives in the hart,
        // where the code finds the x registers beside it; the translation
        // was held when `entry` was read from it (checked above), and the
        // code cache changes only through the hart's `Jit`, which the code
        // and its helpers never reach.
        let retired = unsafe { (entry)(context) };
        let JitContext {
            exit_pc,
            exit_cell,
            exit_before,
            ..
        } = self.jit_context;
        self.instret += retired;
        self.pc = exit_pc;
        if let Some(jit) = self.jit.as_deref_mut() {
            jit.note_retired(retired);
            if !exit_cell.is_null() {
                jit.note_unlinked(exit_cell, self.pc, (steps + retired, prv, satp));
            }
        }
        if exit_before == 0 {
            retired as usize
        } else {
            usize::MAX
        }
    }
}
