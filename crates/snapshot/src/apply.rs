//! Restoring RAM from a checked snapshot.
//!
//! Two phases, each split between threads over disjoint parts of RAM (so no
//! locks and no unsafe code: each thread owns a `&mut` slice):
//! 1. the stored pages: each thread unpacks a contiguous run of blocks into
//!    the stretch of RAM that holds their pages, then copies duplicates;
//! 2. the zero pages: the pages a full snapshot does not list, and the pages
//!    an incremental one lists as zero. A full snapshot's absent pages are
//!    zeroed only if they are not zero already: reading is cheaper than
//!    writing, and leaves untouched (never faulted-in) memory untouched.

use std::ops::Range;

use crate::codec::{BlockDecompressor, Method};
use crate::error::SnapshotError;
use crate::format::{PAGE_SIZE, ZERO_REF};
use crate::pages::{is_zero, page_range, parallel, split, useful_threads};
use crate::read::{PageEntry, Snapshot};

/// A page to be copied from another after phase 1: (source, destination).
type PageCopy = (u32, u32);

/// How to restore RAM.
#[derive(Clone, Copy, Debug)]
pub struct ApplyOptions {
    /// Threads to use (at least one). The result does not depend on it.
    pub threads: usize,
    /// The caller promises that RAM is all zero, as a buffer just allocated
    /// with `vec![0; size]` is. A full snapshot then does not look at the
    /// pages it leaves out: reading never-touched memory costs a page fault
    /// per page (150 to 250 ms more for 1 GiB, measured), and maps it all.
    /// If RAM is not in fact zero, those pages keep their old content.
    pub ram_is_zeroed: bool,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions {
            threads: crate::default_threads(),
            ram_is_zeroed: false,
        }
    }
}

impl Snapshot {
    /// Writes this snapshot's pages into `ram`, which must be exactly
    /// [`Snapshot::ram_size`] bytes. A full snapshot sets all of RAM (pages it
    /// does not hold become zero); an incremental one sets only its pages, on
    /// top of RAM as its parent left it (see [`crate::SnapshotChain`]).
    ///
    /// Can fail only for a file made to pass every checksum yet holding
    /// blocks that do not decompress (`Malformed`), or if zstd cannot get
    /// the memory for its decompression context (`Io`); RAM is then partly
    /// written.
    pub fn apply_pages(&self, ram: &mut [u8]) -> Result<(), SnapshotError> {
        self.apply_pages_with(ram, ApplyOptions::default())
    }

    /// As [`Snapshot::apply_pages`], with options.
    pub fn apply_pages_with(
        &self,
        ram: &mut [u8],
        options: ApplyOptions,
    ) -> Result<(), SnapshotError> {
        if ram.len() as u64 != self.ram_size {
            return Err(SnapshotError::RamBufferMismatch {
                file: self.file.clone(),
                size: self.ram_size,
                buffer: ram.len() as u64,
            });
        }
        self.apply_stored(ram, options.threads)?;
        if self.is_incremental() || !options.ram_is_zeroed {
            self.apply_zero(ram, options.threads);
        }
        Ok(())
    }

    /// Phase 1. Block `b` holds unique pages `b*ppb..`, and unique pages are
    /// numbered in the order of the pages that first use them, so a run of
    /// blocks fills a contiguous stretch of RAM that no other run touches.
    fn apply_stored(&self, ram: &mut [u8], threads: usize) -> Result<(), SnapshotError> {
        let page_count = ram.len() / PAGE_SIZE;
        // 16 blocks (4 MiB of pages) per thread at least.
        let threads = useful_threads(threads, self.blocks.len(), 16);
        let mut jobs = Vec::with_capacity(threads);
        let mut rest = &mut *ram;
        let mut rest_start = 0;
        let shares: Vec<Range<usize>> = split(self.blocks.len(), threads).collect();
        for (i, blocks) in shares.iter().enumerate() {
            let end_page = match shares.get(i + 1) {
                Some(next) if next.start < self.blocks.len() => {
                    self.first_use[next.start * self.pages_per_block] as usize
                }
                _ => page_count,
            };
            let (region, tail) = rest.split_at_mut((end_page - rest_start) * PAGE_SIZE);
            jobs.push((blocks.clone(), rest_start..end_page, region));
            rest = tail;
            rest_start = end_page;
        }
        let results = parallel(jobs, |(blocks, pages, region)| {
            self.unpack(blocks, pages, region)
        });
        let mut copies = Vec::new();
        for r in results {
            copies.extend(r?);
        }
        // Duplicates of pages that another thread wrote.
        for (src, dst) in copies {
            ram.copy_within(page_range(src as usize), dst as usize * PAGE_SIZE);
        }
        Ok(())
    }

    /// Unpacks `blocks` into `region` (RAM pages `pages`), then copies the
    /// duplicates whose source lies in the region; returns the others.
    fn unpack(
        &self,
        blocks: Range<usize>,
        pages: Range<usize>,
        region: &mut [u8],
    ) -> Result<Vec<PageCopy>, SnapshotError> {
        let at = |page: u32| (page as usize - pages.start) * PAGE_SIZE;
        let mut scratch = Vec::new();
        let mut decompressor = BlockDecompressor::default();
        for b in blocks {
            let block = &self.blocks[b];
            let first = b * self.pages_per_block;
            let end = (first + self.pages_per_block).min(self.first_use.len());
            let targets = &self.first_use[first..end];
            let len = targets.len() * PAGE_SIZE;
            let stored = &self.bytes[block.data.clone()];
            // first_use ascends, so equal spans mean adjacent pages.
            let contiguous =
                (targets[targets.len() - 1] - targets[0]) as usize == targets.len() - 1;
            let src: &[u8] = if block.method == Method::Raw {
                stored
            } else if contiguous {
                // Straight into RAM: no copy through a scratch buffer.
                let dst = &mut region[at(targets[0])..at(targets[0]) + len];
                self.decompress(&mut decompressor, b, stored, dst)?;
                continue;
            } else {
                scratch.resize(len, 0);
                self.decompress(&mut decompressor, b, stored, &mut scratch)?;
                &scratch
            };
            if contiguous {
                region[at(targets[0])..at(targets[0]) + len].copy_from_slice(src);
            } else {
                for (page, bytes) in targets.iter().zip(src.chunks_exact(PAGE_SIZE)) {
                    region[at(*page)..at(*page) + PAGE_SIZE].copy_from_slice(bytes);
                }
            }
        }
        let mut elsewhere = Vec::new();
        for e in self.entries_in(pages.clone()) {
            if e.unique == ZERO_REF {
                continue;
            }
            let src = self.first_use[e.unique as usize];
            if src == e.page {
                continue;
            }
            if pages.contains(&(src as usize)) {
                region.copy_within(at(src)..at(src) + PAGE_SIZE, at(e.page));
            } else {
                elsewhere.push((src, e.page));
            }
        }
        Ok(elsewhere)
    }

    /// Unpacks block `block` into `dst`, which is exactly its size.
    fn decompress(
        &self,
        decompressor: &mut BlockDecompressor,
        block: usize,
        stored: &[u8],
        dst: &mut [u8],
    ) -> Result<(), SnapshotError> {
        let method = self.blocks[block].method;
        match decompressor.unpack(method, stored, dst) {
            Ok(true) => Ok(()),
            Err(source) => Err(SnapshotError::Io {
                file: self.file.clone(),
                source,
            }),
            Ok(false) => Err(SnapshotError::Malformed {
                file: self.file.clone(),
                at: self.blocks[block].data.start as u64,
                what: format!(
                    "block {block} of its page data does not decompress to {} bytes",
                    dst.len()
                ),
            }),
        }
    }

    /// Phase 2, split evenly by pages: memory bandwidth is the cost here.
    fn apply_zero(&self, ram: &mut [u8], threads: usize) {
        let page_count = ram.len() / PAGE_SIZE;
        let work = if self.is_incremental() {
            self.entries.iter().filter(|e| e.unique == ZERO_REF).count()
        } else {
            page_count - self.entries.len()
        };
        // 4096 pages (16 MiB) per thread at least.
        let threads = useful_threads(threads, work, 4096);
        let mut jobs = Vec::with_capacity(threads);
        let mut rest = ram;
        for pages in split(page_count, threads) {
            let (region, tail) = rest.split_at_mut(pages.len() * PAGE_SIZE);
            jobs.push((pages, region));
            rest = tail;
        }
        parallel(jobs, |(pages, region)| {
            let mut zero = |page: usize| {
                let bytes = &mut region[page_range(page - pages.start)];
                if !is_zero(bytes) {
                    bytes.fill(0);
                }
            };
            let listed = self.entries_in(pages.clone());
            if self.is_incremental() {
                for e in listed.iter().filter(|e| e.unique == ZERO_REF) {
                    zero(e.page as usize);
                }
            } else {
                let mut next = pages.start;
                for e in listed {
                    (next..e.page as usize).for_each(&mut zero);
                    next = e.page as usize + 1;
                }
                (next..pages.end).for_each(&mut zero);
            }
        });
    }

    /// The entries for pages in `pages`.
    fn entries_in(&self, pages: Range<usize>) -> &[PageEntry] {
        let lo = self
            .entries
            .partition_point(|e| (e.page as usize) < pages.start);
        let hi = self
            .entries
            .partition_point(|e| (e.page as usize) < pages.end);
        &self.entries[lo..hi]
    }
}
