//! The decoded-block cache and the loop that executes blocks.
//!
//! A block is a run of decoded instructions that starts at some physical
//! address and ends at the first instruction that may change control flow,
//! privilege, translation or interrupt state (see `Inst::ends_block`), at the
//! end of its page, or after `MAX_BLOCK` instructions. Blocks are cached by the
//! RAM offset of their first instruction in a direct-mapped table and are valid
//! while their page's code generation is unchanged (see `memory.rs`).
//!
//! Nothing observable depends on where blocks start or end, nor on which
//! blocks are cached, so the cache may be dropped at any time (a restored
//! machine starts with it empty) and is not part of the machine's state:
//! - interrupts are sampled only where the architecture could change them;
//! - instruction counts are exact at every instruction;
//! - a block fetches its instructions through the translation that the TLB
//!   (architectural, see tlb.rs) held for its page when it started, and
//!   that entry stays until an instruction that ends the block flushes it,
//!   so starting a new block on the same page translates the same way;
//! - a block ends early only for reasons that do not depend on the cache:
//!   an instruction that ends blocks, the end of its page, `MAX_BLOCK`, the
//!   budget, a trap, or a store into its own page (which is code in every
//!   run that executes it, cached or just decoded).
//!
//! Which pages count as code changes only how stores are checked (see
//! memory.rs), never what they do.

use crate::bus::Bus;
use crate::decode::{decode, inst_len, Inst};
use crate::hart::Hart;
use crate::jit::NativeState;
use crate::memory::{Ram, PAGE_SHIFT, PAGE_SIZE};

/// Slots of the direct-mapped cache. A Linux boot runs blocks at a few
/// hundred thousand offsets; with 2^14 slots a quarter of the blocks built
/// were evictions (and each took its translation with it), with 2^18 the
/// boot ran 18% faster. Slots are zero until used, so untouched ones cost
/// no host memory.
const SLOTS: usize = 1 << 18;
/// `Hart::block_page` while no block runs: no store lands at this offset.
pub(crate) const NO_BLOCK: usize = usize::MAX;
const MAX_BLOCK: usize = 64;
/// Decoded instructions kept at most (16 bytes each): past this, the cache
/// starts over rather than grow.
const MAX_INSTS: usize = 1 << 20;

const _: () = assert!(MAX_BLOCK <= u8::MAX as usize && MAX_INSTS <= u32::MAX as usize);

/// A cache slot: one cache line, read by every block the hart runs, apart
/// from the decoded instructions, which only the interpreter and the
/// translator read. Every field is valid as zero bytes, an empty slot.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
pub(crate) struct Block {
    /// RAM offset of the first instruction plus one (offsets are even, so
    /// no block has tag 0), or 0 when empty.
    tag: usize,
    generation: u32,
    /// Where its instructions start in `BlockCache::insts`.
    first: u32,
    len: u8,
    /// Instructions its run in `BlockCache::insts` has room for: a block
    /// built again in this slot reuses the run when it fits.
    room: u8,
    /// For a block of one 32-bit instruction whose upper half lies on the
    /// next page (see `run_straddling`): that half's RAM page number plus
    /// one, and the page's code generation; 0 for any other block.
    second_page: u32,
    second_generation: u32,
    /// Its translation, when the hart runs the translating engine.
    pub(crate) native: NativeState,
}

pub(crate) struct BlockCache {
    pub(crate) slots: Box<[Block]>,
    /// The decoded instructions of every slot's block, one run each.
    insts: Vec<Inst>,
}

impl BlockCache {
    pub(crate) fn new() -> Self {
        let slots = Box::<[Block]>::new_zeroed_slice(SLOTS);
        // SAFETY: every field of `Block` (integers, and in `NativeState`
        // integers and an `Option` of a function pointer, whose zero bytes
        // are `None`) is valid as zero bytes: an empty slot.
        let slots = unsafe { slots.assume_init() };
        BlockCache {
            slots,
            // Never reallocated (the cache starts over first), so never
            // copied; the host maps its pages as they are first written.
            insts: Vec::with_capacity(MAX_INSTS),
        }
    }

    /// Makes the block in `slot` the one at RAM offset `off` (of code
    /// generation `generation`) with instructions `insts`, not yet run;
    /// `second_page` as for [`Hart::second_page`]. Its instructions go in
    /// the slot's run when they fit, else at the end of the store (which
    /// starts over when full).
    fn put(
        &mut self,
        slot: usize,
        (off, generation): (usize, u32),
        insts: &[Inst],
        second_page: Option<(usize, u32)>,
    ) {
        let old = self.slots[slot];
        let (first, room) = if old.tag != 0 && insts.len() <= old.room as usize {
            (old.first as usize, old.room)
        } else {
            if self.insts.len() + insts.len() > MAX_INSTS {
                self.clear();
            }
            self.insts.extend_from_slice(insts);
            (self.insts.len() - insts.len(), insts.len() as u8)
        };
        self.insts[first..first + insts.len()].copy_from_slice(insts);
        let (second_page, second_generation) =
            second_page.map_or((0, 0), |(page, generation)| (page as u32 + 1, generation));
        self.slots[slot] = Block {
            tag: off + 1,
            generation,
            first: first as u32,
            len: insts.len() as u8,
            room,
            second_page,
            second_generation,
            native: NativeState::NONE,
        };
    }

    pub(crate) fn clear(&mut self) {
        // Every slot built since the last clear has instructions here.
        if self.insts.is_empty() {
            return;
        }
        self.slots.fill(Block::EMPTY);
        self.insts.clear();
    }
}

impl Block {
    const EMPTY: Block = Block {
        tag: 0,
        generation: 0,
        first: 0,
        len: 0,
        room: 0,
        second_page: 0,
        second_generation: 0,
        native: NativeState::NONE,
    };
}

impl Hart {
    /// Executes at most `budget` instructions starting at pc: one block.
    pub(crate) fn run_block<B: Bus>(&mut self, bus: &mut B, budget: u64) {
        let off = match self.fetch_offset(bus, self.pc) {
            Ok(off) => off,
            Err(e) => return self.enter_trap(e.cause, e.tval, false),
        };
        let page_left = PAGE_SIZE as usize - (off & (PAGE_SIZE as usize - 1));
        if page_left == 2 && inst_len(u16::from_le_bytes(bus.ram().load::<2>(off))) == 4 {
            return self.run_straddling(bus, off, budget);
        }
        let slot = (off >> 1) % SLOTS;
        let generation = bus.ram().generation(off);
        let cached = &self.blocks.slots[slot];
        if cached.tag != off + 1 || cached.generation != generation {
            self.build_block(bus, off, slot);
        }
        let block = self.blocks.slots[slot];
        // Out of the cache while it runs, since running needs the hart;
        // nothing it runs builds blocks.
        let all = std::mem::take(&mut self.blocks.insts);
        let insts = &all[block.first as usize..][..block.len as usize];
        let n = insts.len().min(budget.min(usize::MAX as u64) as usize);
        // Stores into this page end the block (see `store_ram`).
        self.block_page = off & !(PAGE_SIZE as usize - 1);
        if self.debug.is_some() && self.block_needs_hooks(&insts[..n]) {
            self.run_insts_debugged(bus, &insts[..n]);
        } else {
            // Translated code first, if any; the interpreter goes on from
            // where it left (after the block's end, it has nothing to do).
            let done = self.run_native(bus, (slot, off), insts, budget);
            for inst in insts[..n].iter().skip(done) {
                match self.execute(bus, inst) {
                    Ok(false) => self.instret += 1,
                    Ok(true) => {
                        self.instret += 1;
                        break;
                    }
                    Err(e) => {
                        self.enter_trap(e.cause, e.tval, false);
                        break;
                    }
                }
            }
        }
        self.blocks.insts = all;
        self.block_page = NO_BLOCK;
    }

    /// The loop of [`Hart::run_block`] with a debugger's hooks: it stops
    /// before an instruction at a breakpoint (the first one was checked by
    /// the caller) and after one that hit a watchpoint. Kept apart so that
    /// the loop without hooks pays nothing for them.
    #[inline(never)]
    fn run_insts_debugged<B: Bus>(&mut self, bus: &mut B, insts: &[Inst]) {
        for (i, inst) in insts.iter().enumerate() {
            if i > 0 && self.breakpoint_here() {
                break;
            }
            match self.execute(bus, inst) {
                Ok(end) => {
                    self.instret += 1;
                    if end || self.debug_hit() {
                        break;
                    }
                }
                Err(e) => {
                    self.drop_watch_hit();
                    self.enter_trap(e.cause, e.tval, false);
                    break;
                }
            }
        }
    }

    /// Marks the page holding RAM offset `off` as code, which blocks are
    /// decoded from; returns its code generation.
    fn mark_code(&mut self, ram: &mut Ram, off: usize) -> u32 {
        let epoch_before = ram.code_epoch();
        let generation = ram.mark_code(off);
        if ram.code_epoch() != epoch_before {
            // This page just became code: stores to it must take the checked path.
            self.tlb.slow_writes_to(off & !(PAGE_SIZE as usize - 1));
            self.code_epoch = ram.code_epoch();
        }
        generation
    }

    fn build_block<B: Bus>(&mut self, bus: &mut B, off: usize, slot: usize) {
        let ram = bus.ram();
        let generation = self.mark_code(ram, off);
        let page_end = (off | (PAGE_SIZE as usize - 1)) + 1;
        let mut decoded = [Inst::illegal(0, 2); MAX_BLOCK];
        let mut len = 0;
        let mut at = off;
        while len < MAX_BLOCK && at + 2 <= page_end {
            let low = u16::from_le_bytes(ram.load::<2>(at));
            let raw = if inst_len(low) == 4 {
                if at + 4 > page_end {
                    break;
                }
                u32::from_le_bytes(ram.load::<4>(at))
            } else {
                low as u32
            };
            let inst = decode(raw);
            at += inst.len as usize;
            decoded[len] = inst;
            len += 1;
            if inst.ends_block() {
                break;
            }
        }
        self.blocks
            .put(slot, (off, generation), &decoded[..len], None);
    }

    /// The page and code generation of the upper half of the straddling
    /// instruction that makes up the block in `slot`, if it is one.
    pub(crate) fn second_page(&self, slot: usize) -> Option<(usize, u32)> {
        let block = &self.blocks.slots[slot];
        let page = block.second_page.checked_sub(1)?;
        Some((page as usize, block.second_generation))
    }

    /// A 32-bit instruction whose halves lie on two pages: fetched through
    /// two translations, as every time it runs. With the translating engine
    /// it is also a block of its own in the cache, valid while both pages
    /// hold what they held (both are marked as code, so a store to either
    /// changes its generation) and the upper half comes from the same
    /// page; so a hot loop across a page boundary stays in translated code
    /// (a CRC loop in the CPU benchmark made 6 million trips through the
    /// hart's loop for it). Its translation checks the second page's fetch
    /// translation and generation itself, since blocks reach it without
    /// coming here (see translate.rs).
    fn run_straddling<B: Bus>(&mut self, bus: &mut B, off: usize, budget: u64) {
        let low = u16::from_le_bytes(bus.ram().load::<2>(off)) as u32;
        let high_off = match self.fetch_offset(bus, self.pc.wrapping_add(2)) {
            Ok(o) => o,
            Err(e) => return self.enter_trap(e.cause, e.tval, false),
        };
        let high = u16::from_le_bytes(bus.ram().load::<2>(high_off)) as u32;
        let inst = decode(low | (high << 16));
        if self.jit.is_some() && self.debug.is_none() {
            let slot = (off >> 1) % SLOTS;
            let ram = bus.ram();
            let second = (high_off >> PAGE_SHIFT, ram.generation(high_off));
            let cached = &self.blocks.slots[slot];
            if cached.tag != off + 1
                || cached.generation != ram.generation(off)
                || self.second_page(slot) != Some(second)
            {
                self.build_straddling(bus, off, high_off, slot, inst);
            }
            self.block_page = off & !(PAGE_SIZE as usize - 1);
            let done = self.run_native(bus, (slot, off), &[inst], budget);
            self.block_page = NO_BLOCK;
            if done > 0 {
                return;
            }
        }
        match self.execute(bus, &inst) {
            Ok(_) => self.instret += 1,
            Err(e) => {
                self.drop_watch_hit();
                self.enter_trap(e.cause, e.tval, false)
            }
        }
    }

    /// Caches the straddling instruction `inst` at RAM offsets `off` and
    /// `high_off` (its halves) as the block in `slot`.
    fn build_straddling<B: Bus>(
        &mut self,
        bus: &mut B,
        off: usize,
        high_off: usize,
        slot: usize,
        inst: Inst,
    ) {
        let ram = bus.ram();
        let generation = self.mark_code(ram, off);
        let second_generation = self.mark_code(ram, high_off);
        let second_page = (high_off >> PAGE_SHIFT, second_generation);
        self.blocks
            .put(slot, (off, generation), &[inst], Some(second_page));
    }
}
