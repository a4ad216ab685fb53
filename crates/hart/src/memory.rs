//! Guest RAM and the bookkeeping the decoded-block cache needs to stay exact.
//!
//! RAM is one contiguous byte vector at a fixed guest-physical base. Pages from
//! which instructions have been decoded are marked as *code pages*; a store to
//! a code page bumps that page's generation, which invalidates every cached
//! block decoded from it (in every hart, since they all check the generation).
//! Stores to code pages therefore never take the TLB fast path: write entries
//! for code pages are marked slow, and `code_epoch` tells harts to mark slow
//! the write entries they filled before a page became code. Code pages change
//! how a store is checked, never what it does: they are not machine state.

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
    /// Per page: the write epoch of its last store (see [`WriteMark`]).
    written: Vec<u32>,
    /// The current write epoch; stores stamp their page with it.
    epoch: u32,
    /// Where `take_dirty_pages` last looked.
    dirty_mark: WriteMark,
}

/// A point in RAM's write history: [`Ram::written_since`] lists the pages
/// stored to after it. Several observers (snapshots, replay checkpoints) can
/// each keep their own mark; a mark costs nothing on the store path, which
/// only stamps the page with the current epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteMark(u32);

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
            // Epoch 1 and up: loading images at power-on counts as writes
            // after the mark of a fresh RAM.
            written: vec![0; pages],
            epoch: 1,
            dirty_mark: WriteMark(1),
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

    /// What translated code needs to do `load` and `store_fast` itself:
    /// the bytes, the per-page write stamps and the current epoch, and to
    /// check that a block's code is unchanged, the code generations (see
    /// jit/translate.rs). The pointers are valid while RAM is not resized,
    /// which it never is.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn fast_path_parts(&mut self) -> (*mut u8, *mut u32, u32, *const u32) {
        (
            self.bytes.as_mut_ptr(),
            self.written.as_mut_ptr(),
            self.epoch,
            self.generation.as_ptr(),
        )
    }

    /// A store through the TLB fast path: the page is known not to be code.
    #[inline(always)]
    pub(crate) fn store_fast<const N: usize>(&mut self, off: usize, v: [u8; N]) {
        self.bytes[off..off + N].copy_from_slice(&v);
        self.written[off >> PAGE_SHIFT] = self.epoch;
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
        self.written[page] = self.epoch;
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

    /// Starts a new write epoch and returns its mark: pages stored to from
    /// now on are listed by [`Ram::written_since`] with it.
    pub fn mark(&mut self) -> WriteMark {
        self.epoch = self
            .epoch
            .checked_add(1)
            .expect("fewer than 2^32 marks per machine");
        WriteMark(self.epoch)
    }

    /// Indices of pages stored to since `mark` was taken, ascending.
    pub fn written_since(&self, mark: WriteMark) -> Vec<usize> {
        (0..self.written.len())
            .filter(|&p| self.written[p] >= mark.0)
            .collect()
    }

    /// Makes this RAM (of a machine rebuilt at reset) continue the write
    /// history of `old`: every page whose content differs from `old`'s
    /// counts as written now, so marks taken on `old` stay meaningful.
    pub fn continue_history(&mut self, old: &Ram) {
        assert_eq!(self.size(), old.size(), "a reset keeps the RAM size");
        self.epoch = old.epoch;
        self.dirty_mark = old.dirty_mark;
        let page = PAGE_SIZE as usize;
        for (p, stamp) in self.written.iter_mut().enumerate() {
            let range = p * page..(p + 1) * page;
            *stamp = if self.bytes[range.clone()] == old.bytes[range] {
                old.written[p]
            } else {
                old.epoch
            };
        }
    }

    /// Lets `fill` rewrite RAM at once (restoring a snapshot), touching only
    /// the pages listed in `touched` (others it may only zero if they were
    /// written before). No page is code afterwards, so no decoded block
    /// survives, and the touched pages count as written now. Pages written
    /// before this call are no longer reported by [`Ram::take_dirty_pages`].
    pub fn overwrite<R>(&mut self, touched: &[usize], fill: impl FnOnce(&mut [u8]) -> R) -> R {
        let result = fill(&mut self.bytes);
        self.after_overwrite(touched);
        result
    }

    /// As [`Ram::overwrite`], with the new contents made elsewhere (so that
    /// a restore can unpack pages while the machine is being built): `bytes`
    /// replaces RAM whole, and must be exactly as large. `touched` lists the
    /// pages that may differ from the RAM replaced.
    pub fn replace(&mut self, bytes: Vec<u8>, touched: &[usize]) {
        assert_eq!(
            bytes.len(),
            self.bytes.len(),
            "a restore keeps the RAM size"
        );
        self.bytes = bytes;
        self.after_overwrite(touched);
    }

    fn after_overwrite(&mut self, touched: &[usize]) {
        for page in 0..self.code.len() {
            if self.code[page] {
                self.code[page] = false;
                self.generation[page] = self.generation[page].wrapping_add(1);
            }
        }
        self.code_epoch += 1;
        let now = self.mark();
        for &page in touched {
            if let Some(stamp) = self.written.get_mut(page) {
                *stamp = now.0;
            }
        }
        self.dirty_mark = self.mark();
    }

    /// Pages stored to since this RAM was made, ascending. On a RAM only
    /// ever written through stores, every other page is zero; but pages that
    /// [`Ram::overwrite`] or [`Ram::replace`] filled without listing them as
    /// touched are not in it and need not be zero (a snapshot restore fills
    /// the boot images' pages that way).
    pub fn ever_written(&self) -> Vec<usize> {
        self.written_since(WriteMark(1))
    }

    /// The content of page `index` (counting from the start of RAM).
    pub fn page(&self, index: usize) -> &[u8] {
        let page = PAGE_SIZE as usize;
        &self.bytes[index * page..(index + 1) * page]
    }

    /// Number of pages.
    pub fn pages(&self) -> usize {
        self.written.len()
    }

    /// Indices of pages written since the last call, in ascending order.
    pub fn take_dirty_pages(&mut self) -> Vec<usize> {
        let pages = self.written_since(self.dirty_mark);
        self.dirty_mark = self.mark();
        pages
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: u64 = 0x8000_0000;
    const PAGE: usize = PAGE_SIZE as usize;

    #[test]
    fn marks_list_the_pages_written_after_them() {
        let mut ram = Ram::new(BASE, 8 * PAGE_SIZE);
        ram.write_bytes(BASE + PAGE_SIZE, &[1]).unwrap();
        assert_eq!(ram.ever_written(), [1]);
        let mark = ram.mark();
        // A store across a page boundary writes both pages.
        ram.write_bytes(BASE + 4 * PAGE_SIZE - 1, &[2, 3]).unwrap();
        assert_eq!(ram.written_since(mark), [3, 4]);
        assert_eq!(ram.ever_written(), [1, 3, 4]);
    }

    #[test]
    fn replacing_ram_stamps_the_touched_pages_and_drops_code() {
        let mut ram = Ram::new(BASE, 8 * PAGE_SIZE);
        let generation = ram.mark_code(2 * PAGE);
        let epoch = ram.code_epoch();
        let mark = ram.mark();
        let mut bytes = vec![0u8; 8 * PAGE];
        bytes[5 * PAGE] = 9;
        ram.replace(bytes, &[5]);
        assert_eq!(ram.page(5)[0], 9);
        assert_eq!(ram.written_since(mark), [5]);
        // The page was code: blocks decoded from it must not survive.
        assert!(!ram.is_code(2 * PAGE));
        assert_ne!(ram.generation(2 * PAGE), generation);
        assert!(ram.code_epoch() > epoch);
        // What was written before the restore is not reported as dirty after.
        assert!(ram.take_dirty_pages().is_empty());
    }

    #[test]
    #[should_panic(expected = "keeps the RAM size")]
    fn replacing_ram_with_another_size_is_a_bug() {
        let mut ram = Ram::new(BASE, 8 * PAGE_SIZE);
        ram.replace(vec![0; PAGE], &[]);
    }
}
