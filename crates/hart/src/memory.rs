//! Guest RAM and the bookkeeping the decoded-block cache needs to stay exact.
//!
//! RAM is one contiguous byte vector at a fixed guest-physical base. Pages from
//! which instructions have been decoded are marked as *code pages*; a store to
//! a code page bumps that page's generation, which invalidates every cached
//! block decoded from it (in every hart, since they all check the generation).
//! Stores to code pages therefore never take the TLB fast path: the TLB refuses
//! write entries for code pages, and `code_epoch` tells harts to drop write
//! entries they filled before a page became code.

/// Size of a page as the MMU and the code tracker see it.
pub const PAGE_SIZE: u64 = 4096;
pub const PAGE_SHIFT: u32 = 12;

/// Guest RAM.
pub struct Ram {
    base: u64,
    bytes: Vec<u8>,
    /// Per page: true while blocks decoded from it may be cached.
    code: Vec<bool>,
    /// Per page: generation, bumped on a store to a code page.
    generation: Vec<u32>,
    /// Bumped whenever any page becomes a code page.
    code_epoch: u64,
    /// Per page: set by every store; cleared by `take_dirty_pages` (snapshots).
    dirty: Vec<bool>,
}

impl Ram {
    /// Zero-filled RAM of `size` bytes (a multiple of the page size) at `base`.
    pub fn new(base: u64, size: u64) -> Self {
        let pages = size.div_ceil(PAGE_SIZE) as usize;
        Ram {
            base,
            bytes: vec![0; pages * PAGE_SIZE as usize],
            code: vec![false; pages],
            generation: vec![0; pages],
            code_epoch: 0,
            dirty: vec![false; pages],
        }
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    pub fn size(&self) -> u64 {
        self.bytes.len() as u64
    }

    /// The RAM contents.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// Offset into RAM of the physical range [paddr, paddr+len), if wholly inside.
    #[inline(always)]
    pub fn offset_of(&self, paddr: u64, len: u64) -> Option<usize> {
        let off = paddr.wrapping_sub(self.base);
        if off < self.size() && len <= self.size() - off {
            Some(off as usize)
        } else {
            None
        }
    }

    /// Copies `data` into RAM at physical address `paddr` (image loading);
    /// invalidates any code it overwrites.
    pub fn write_bytes(&mut self, paddr: u64, data: &[u8]) -> Option<()> {
        let off = self.offset_of(paddr, data.len() as u64)?;
        self.bytes[off..off + data.len()].copy_from_slice(data);
        let first = off >> PAGE_SHIFT;
        let last = (off + data.len().max(1) - 1) >> PAGE_SHIFT;
        for page in first..=last {
            self.note_store(page);
        }
        Some(())
    }

    /// Reads RAM at physical `paddr` into `out`.
    pub fn read_bytes(&self, paddr: u64, out: &mut [u8]) -> Option<()> {
        let off = self.offset_of(paddr, out.len() as u64)?;
        out.copy_from_slice(&self.bytes[off..off + out.len()]);
        Some(())
    }

    #[inline(always)]
    pub(crate) fn load<const N: usize>(&self, off: usize) -> [u8; N] {
        let mut v = [0u8; N];
        v.copy_from_slice(&self.bytes[off..off + N]);
        v
    }

    /// A store through the TLB fast path: the page is known not to be code.
    #[inline(always)]
    pub(crate) fn store_fast<const N: usize>(&mut self, off: usize, v: [u8; N]) {
        self.bytes[off..off + N].copy_from_slice(&v);
        self.dirty[off >> PAGE_SHIFT] = true;
    }

    /// A store through the slow path; returns true if it hit a code page.
    pub(crate) fn store_checked(&mut self, off: usize, v: &[u8]) -> bool {
        self.bytes[off..off + v.len()].copy_from_slice(v);
        let first = off >> PAGE_SHIFT;
        let last = (off + v.len() - 1) >> PAGE_SHIFT;
        let mut hit_code = false;
        for page in first..=last {
            hit_code |= self.note_store(page);
        }
        hit_code
    }

    fn note_store(&mut self, page: usize) -> bool {
        self.dirty[page] = true;
        if self.code[page] {
            self.code[page] = false;
            self.generation[page] = self.generation[page].wrapping_add(1);
            true
        } else {
            false
        }
    }

    /// Marks the page holding RAM offset `off` as code; returns its generation.
    pub(crate) fn mark_code(&mut self, off: usize) -> u32 {
        let page = off >> PAGE_SHIFT;
        if !self.code[page] {
            self.code[page] = true;
            self.code_epoch += 1;
        }
        self.generation[page]
    }

    #[inline(always)]
    pub(crate) fn is_code(&self, off: usize) -> bool {
        self.code[off >> PAGE_SHIFT]
    }

    #[inline(always)]
    pub(crate) fn generation(&self, off: usize) -> u32 {
        self.generation[off >> PAGE_SHIFT]
    }

    pub(crate) fn code_epoch(&self) -> u64 {
        self.code_epoch
    }

    /// Indices of pages written since the last call, in ascending order.
    pub fn take_dirty_pages(&mut self) -> Vec<usize> {
        let pages: Vec<usize> = (0..self.dirty.len()).filter(|&p| self.dirty[p]).collect();
        for &p in &pages {
            self.dirty[p] = false;
        }
        pages
    }
}
