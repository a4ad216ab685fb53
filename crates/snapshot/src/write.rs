//! Writing a snapshot, as a pipeline: this thread scans the pages in order
//! (zero test, hash, deduplication) and hands each full block of unique pages
//! to a queue as soon as it has one; helper threads compress blocks from the
//! queue meanwhile, and this thread joins them once the scan is done. The
//! scan is bound by memory bandwidth and compression by the CPU, so running
//! them side by side beats running each on all threads in turn: for a booted
//! 1 GiB guest on 2 cores, 84-93 ms against 95-109 ms (example `bench`, when
//! blocks were compressed with LZ4; zstd level 1 costs 5-10% more).
//!
//! Blocks are numbered in scan order and put back in that order, so the file
//! does not depend on the thread count or on which thread did what.

use std::collections::{BTreeMap, VecDeque};
use std::io::{self, BufWriter, Write};
use std::sync::{Condvar, Mutex, PoisonError};

use crate::codec::BlockCompressor;
use crate::format::{
    checksum, header_id, Header, SectionDesc, SnapshotId, FLAG_INCREMENTAL, MAX_COMPONENTS,
    MAX_COMPONENT_NAME_LEN, MAX_RAM_SIZE, METHOD_RAW, METHOD_ZSTD, OFF_ID, PAGES_PER_BLOCK,
    PAGE_SIZE, ZERO_REF,
};
use crate::pages::{is_zero, page_range, useful_threads};

/// Which pages of RAM a snapshot holds.
#[derive(Clone, Copy, Debug)]
pub enum Pages<'a> {
    /// A full snapshot: every non-zero page (the zero ones are implied).
    All,
    /// A full snapshot for a caller that knows which pages may be non-zero
    /// (e.g. every page written since power-on): only these are read, in
    /// any order, repeats allowed; the caller promises that all others are
    /// zero. Reading never-touched RAM costs a page fault per page, so this
    /// is much faster for a large, mostly untouched RAM.
    AllOf(&'a [usize]),
    /// An incremental snapshot on top of `parent`: exactly these pages, given
    /// as page indices (byte address / 4096) in any order, repeats allowed.
    /// The caller's dirty tracking decides; the crate does not compare RAM.
    Dirty {
        parent: SnapshotId,
        pages: &'a [usize],
    },
}

/// Writes snapshots; holds the one tunable, the number of threads.
#[derive(Clone, Debug)]
pub struct SnapshotWriter {
    threads: usize,
}

impl Default for SnapshotWriter {
    fn default() -> Self {
        Self::new()
    }
}

/// Writes a snapshot with the default number of threads; see
/// [`SnapshotWriter::write`].
pub fn write_snapshot<W: Write, S: AsRef<str>, B: AsRef<[u8]>>(
    out: W,
    components: &[(S, B)],
    ram: &[u8],
    pages: Pages<'_>,
) -> io::Result<SnapshotId> {
    SnapshotWriter::new().write(out, components, ram, pages)
}

/// What the pipeline produces.
struct Saved {
    /// Each page the snapshot lists, ascending, with its reference.
    entries: Vec<(u32, u32)>,
    /// The page that holds each unique page.
    uniques: Vec<u32>,
    /// The blocks of unique pages, in order.
    blocks: Vec<Block>,
}

/// A compressed block, or a note that it is stored raw (then its bytes are
/// written straight from RAM, saving a copy of incompressible pages).
enum Stored {
    Zstd(Vec<u8>),
    Raw,
}

struct Block {
    stored: Stored,
    len: u32,
    checksum: u128,
}

impl SnapshotWriter {
    pub fn new() -> Self {
        Self {
            threads: crate::default_threads(),
        }
    }

    /// Uses `threads` threads (at least one). The file's bytes do not depend
    /// on it.
    pub fn threads(mut self, threads: usize) -> Self {
        self.threads = threads.max(1);
        self
    }

    /// Writes one snapshot of `ram` (whose length must be a non-zero multiple
    /// of 4096, at most 1 TiB) and `components` (unique names of 1 to 256
    /// bytes, at most 4096 of them, stored in the given order) to `out`, and
    /// returns its id. Errors are `InvalidInput` for arguments that break
    /// those rules, or what `out` returns.
    pub fn write<W: Write, S: AsRef<str>, B: AsRef<[u8]>>(
        &self,
        out: W,
        components: &[(S, B)],
        ram: &[u8],
        pages: Pages<'_>,
    ) -> io::Result<SnapshotId> {
        let page_count = check_ram(ram)?;
        let component_table = encode_components(components)?;

        let sorted = |pages: &[usize]| -> io::Result<Vec<u32>> {
            let mut sorted = Vec::with_capacity(pages.len());
            for &p in pages {
                if p >= page_count {
                    return Err(invalid(format!(
                        "page {p} is past the end of RAM, which has {page_count} pages"
                    )));
                }
                // page_count <= 2^28, checked by check_ram.
                sorted.push(p as u32);
            }
            sorted.sort_unstable();
            sorted.dedup();
            Ok(sorted)
        };
        let listed; // the sorted list, kept alive for `list`
        let (flags, parent, list) = match pages {
            Pages::All => (0, SnapshotId([0; 32]), None),
            Pages::AllOf(pages) => {
                listed = sorted(pages)?;
                (0, SnapshotId([0; 32]), Some(&listed[..]))
            }
            Pages::Dirty { parent, pages } => {
                if parent.0 == [0; 32] {
                    // The format marks "no parent" with zeros.
                    return Err(invalid(
                        "an incremental snapshot needs its parent's id, not zeros".into(),
                    ));
                }
                listed = sorted(pages)?;
                (FLAG_INCREMENTAL, parent, Some(&listed[..]))
            }
        };
        // Only an incremental snapshot lists the pages that became zero.
        let keep_zero = flags & FLAG_INCREMENTAL != 0;

        let Saved {
            entries,
            uniques,
            blocks,
        } = self.scan_and_compress(ram, list, keep_zero)?;
        let page_table = encode_page_table(&entries, uniques.len());
        let block_pages = uniques.chunks(PAGES_PER_BLOCK as usize);

        let mut block_table = Vec::with_capacity(blocks.len() * 24);
        let mut block_data_len = 0u64;
        for b in &blocks {
            let method = match b.stored {
                Stored::Zstd(_) => METHOD_ZSTD,
                Stored::Raw => METHOD_RAW,
            };
            block_table.extend_from_slice(&method.to_le_bytes());
            block_table.extend_from_slice(&b.len.to_le_bytes());
            block_table.extend_from_slice(&b.checksum.to_le_bytes());
            block_data_len += u64::from(b.len);
        }

        let desc = |bytes: &[u8]| SectionDesc {
            len: bytes.len() as u64,
            checksum: checksum(bytes),
        };
        let header = Header {
            flags,
            id: SnapshotId([0; 32]),
            parent,
            ram_size: ram.len() as u64,
            page_size: PAGE_SIZE as u32,
            pages_per_block: PAGES_PER_BLOCK,
            sections: [
                desc(&component_table),
                desc(&page_table),
                desc(&block_table),
            ],
            block_data_len,
        };
        let mut header_bytes = header.encode();
        let id = header_id(&header_bytes);
        header_bytes[OFF_ID..OFF_ID + 32].copy_from_slice(&id.0);

        // Large writes pass straight through; the buffer gathers the pages of
        // raw blocks that are not contiguous in RAM.
        let mut out = BufWriter::with_capacity(1 << 20, out);
        out.write_all(&header_bytes)?;
        out.write_all(&component_table)?;
        out.write_all(&page_table)?;
        out.write_all(&block_table)?;
        for (block, pages) in blocks.iter().zip(block_pages) {
            match &block.stored {
                Stored::Zstd(bytes) => out.write_all(bytes)?,
                Stored::Raw => {
                    for &p in pages.iter() {
                        out.write_all(&ram[page_range(p as usize)])?;
                    }
                }
            }
        }
        out.flush()?;
        Ok(id)
    }

    /// Runs the pipeline over every page of RAM (`list` = None: a full
    /// snapshot, which keeps only the non-zero pages) or over the listed pages
    /// (ascending; an incremental snapshot keeps them all).
    fn scan_and_compress(
        &self,
        ram: &[u8],
        list: Option<&[u32]>,
        keep_zero: bool,
    ) -> io::Result<Saved> {
        let count = list.map_or(ram.len() / PAGE_SIZE, <[u32]>::len);
        // A helper pays off only with a few blocks to take (a thread costs
        // tens of microseconds to start): 256 pages to scan at least.
        let helpers = useful_threads(self.threads, count, 256) - 1;
        let queue = BlockQueue::default();
        std::thread::scope(|s| {
            let helpers: Vec<_> = (0..helpers)
                .map(|_| s.spawn(|| compress_from(ram, &queue)))
                .collect();
            let (entries, uniques) = {
                // Closed however the scan ends, so that no helper waits forever.
                let _close = CloseOnDrop(&queue);
                scan(ram, list, keep_zero, &queue)
            };
            let mut blocks = compress_from(ram, &queue)?;
            for h in helpers {
                let done = h.join().unwrap_or_else(|p| std::panic::resume_unwind(p));
                blocks.extend(done?);
            }
            blocks.sort_unstable_by_key(|(b, _)| *b);
            // Each block of unique pages exactly once, in order: anything
            // else would write a file whose block table and data disagree,
            // which no reader accepts. Refuse rather than write it.
            let expected = uniques.len().div_ceil(PAGES_PER_BLOCK as usize);
            if blocks.len() != expected || blocks.iter().enumerate().any(|(i, (b, _))| i != *b) {
                return Err(io::Error::other(format!(
                    "internal error: {} blocks were compressed for {} unique pages; the snapshot is not written",
                    blocks.len(),
                    uniques.len()
                )));
            }
            Ok(Saved {
                entries,
                uniques,
                blocks: blocks.into_iter().map(|(_, block)| block).collect(),
            })
        })
    }
}

/// Blocks of unique pages waiting to be compressed: (block number, pages).
#[derive(Default)]
struct BlockQueue {
    state: Mutex<QueueState>,
    ready: Condvar,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<(usize, Vec<u32>)>,
    closed: bool,
}

impl BlockQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        // A panicking thread cannot leave the queue half-changed: every
        // change is a single push, pop or flag.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn push(&self, job: (usize, Vec<u32>)) {
        self.lock().jobs.push_back(job);
        self.ready.notify_one();
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }

    /// The next block, waiting for one; None once the queue is closed and
    /// empty.
    fn pop(&self) -> Option<(usize, Vec<u32>)> {
        let mut state = self.lock();
        loop {
            if let Some(job) = state.jobs.pop_front() {
                return Some(job);
            }
            if state.closed {
                return None;
            }
            state = self
                .ready
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct CloseOnDrop<'a>(&'a BlockQueue);

impl Drop for CloseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// Compresses blocks from the queue until it is closed and empty.
fn compress_from(ram: &[u8], queue: &BlockQueue) -> io::Result<Vec<(usize, Block)>> {
    let mut compressor = BlockCompressor::new()?;
    let mut gather = Vec::new();
    let mut done = Vec::new();
    while let Some((b, pages)) = queue.pop() {
        done.push((
            b,
            compress_block(ram, &pages, &mut compressor, &mut gather)?,
        ));
    }
    Ok(done)
}

/// Scans the pages in ascending order and queues each full block of unique
/// pages. Returns every kept page with its reference, and the unique pages.
fn scan(
    ram: &[u8],
    list: Option<&[u32]>,
    keep_zero: bool,
    queue: &BlockQueue,
) -> (Vec<(u32, u32)>, Vec<u32>) {
    let count = list.map_or(ram.len() / PAGE_SIZE, <[u32]>::len);
    let mut dedup = Dedup::default();
    let mut entries = Vec::new();
    let per_block = PAGES_PER_BLOCK as usize;
    for i in 0..count {
        let page = list.map_or(i as u32, |l| l[i]);
        let bytes = &ram[page_range(page as usize)];
        // The zero test and the hash read the page while it is in cache.
        if is_zero(bytes) {
            if keep_zero {
                entries.push((page, ZERO_REF));
            }
            continue;
        }
        let hash = xxhash_rust::xxh3::xxh3_64(bytes);
        let stored_before = dedup.uniques.len();
        let unique = dedup.add(ram, page, hash);
        entries.push((page, unique));
        // Only a page stored anew can complete a block: a page equal to the
        // last unique one refers to it, and must not queue its block again.
        let stored = dedup.uniques.len();
        if stored > stored_before && stored % per_block == 0 {
            let b = stored / per_block - 1;
            queue.push((b, dedup.uniques[b * per_block..].to_vec()));
        }
    }
    let stored = dedup.uniques.len();
    if stored % per_block != 0 {
        let b = stored / per_block;
        queue.push((b, dedup.uniques[b * per_block..].to_vec()));
    }
    (entries, dedup.uniques)
}

/// Deduplication in page order: each page's content is either one seen
/// before (then the page refers to it) or a new unique page, numbered in the
/// order of first use as the format requires.
///
/// Equal hashes only propose a match; the bytes decide, so a collision costs
/// space, never correctness. A page whose hash matches a different page is
/// compared with that first page only and otherwise stored on its own, so
/// crafted collisions cannot make the comparisons quadratic. The map is a
/// BTreeMap: no iteration order to leak, and no worst case a guest could
/// provoke by choosing page contents, as it could in a hash table.
#[derive(Default)]
struct Dedup {
    /// Hash -> the unique page first seen with it.
    first: BTreeMap<u64, u32>,
    /// The page that holds each unique page.
    uniques: Vec<u32>,
}

impl Dedup {
    /// The reference for `page`, whose content hashes to `hash`.
    fn add(&mut self, ram: &[u8], page: u32, hash: u64) -> u32 {
        let seen = self.first.get(&hash).copied();
        if let Some(unique) = seen {
            let first = self.uniques[unique as usize] as usize;
            if ram[page_range(first)] == ram[page_range(page as usize)] {
                return unique;
            }
        }
        // A unique page: at most 2^28 of them in RAM of at most 1 TiB.
        let unique = self.uniques.len() as u32;
        self.uniques.push(page);
        if seen.is_none() {
            self.first.insert(hash, unique);
        }
        unique
    }
}

/// The page count of `ram`, if its size is one a snapshot can hold.
fn check_ram(ram: &[u8]) -> io::Result<usize> {
    let size = ram.len() as u64;
    if size == 0 || !size.is_multiple_of(PAGE_SIZE as u64) || size > MAX_RAM_SIZE {
        return Err(invalid(format!(
            "RAM of {size} bytes cannot be saved: it must be a non-zero multiple of {PAGE_SIZE} bytes, at most {MAX_RAM_SIZE}"
        )));
    }
    Ok(ram.len() / PAGE_SIZE)
}

fn encode_components<S: AsRef<str>, B: AsRef<[u8]>>(components: &[(S, B)]) -> io::Result<Vec<u8>> {
    if components.len() > MAX_COMPONENTS {
        return Err(invalid(format!(
            "a snapshot holds at most {MAX_COMPONENTS} components, not {}",
            components.len()
        )));
    }
    let mut names: Vec<&str> = components.iter().map(|(n, _)| n.as_ref()).collect();
    names.sort_unstable();
    if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
        return Err(invalid(format!(
            "the component name {:?} is given twice",
            w[0]
        )));
    }
    let size: usize = components
        .iter()
        .map(|(n, d)| 2 + n.as_ref().len() + 8 + d.as_ref().len())
        .sum();
    let mut table = Vec::with_capacity(4 + size);
    table.extend_from_slice(&(components.len() as u32).to_le_bytes());
    for (name, data) in components {
        let (name, data) = (name.as_ref(), data.as_ref());
        if name.is_empty() || name.len() > MAX_COMPONENT_NAME_LEN {
            return Err(invalid(format!(
                "the component name {name:?} is {} bytes long, but names have 1 to {MAX_COMPONENT_NAME_LEN}",
                name.len()
            )));
        }
        table.extend_from_slice(&(name.len() as u16).to_le_bytes());
        table.extend_from_slice(name.as_bytes());
        table.extend_from_slice(&(data.len() as u64).to_le_bytes());
        table.extend_from_slice(data);
    }
    Ok(table)
}

/// The page table: the unique page count, then runs of consecutive pages.
fn encode_page_table(entries: &[(u32, u32)], unique_count: usize) -> Vec<u8> {
    let mut table = Vec::with_capacity(16 + entries.len() * 4);
    table.extend_from_slice(&(unique_count as u64).to_le_bytes());
    table.extend_from_slice(&0u64.to_le_bytes()); // run count, filled in below
    let mut runs = 0u64;
    for run in entries.chunk_by(|a, b| b.0 == a.0 + 1) {
        table.extend_from_slice(&u64::from(run[0].0).to_le_bytes());
        table.extend_from_slice(&(run.len() as u32).to_le_bytes());
        for (_, r) in run {
            table.extend_from_slice(&r.to_le_bytes());
        }
        runs += 1;
    }
    table[8..16].copy_from_slice(&runs.to_le_bytes());
    table
}

/// Compresses the unique pages `pages` as one zstd frame, or keeps them raw
/// if that does not make them smaller (random data). Pages that are adjacent
/// in RAM, the common case, are compressed in place; others are gathered.
fn compress_block(
    ram: &[u8],
    pages: &[u32],
    compressor: &mut BlockCompressor,
    gather: &mut Vec<u8>,
) -> io::Result<Block> {
    let first = pages[0] as usize;
    let contiguous = pages[pages.len() - 1] as usize - first == pages.len() - 1;
    let src: &[u8] = if contiguous {
        &ram[first * PAGE_SIZE..(first + pages.len()) * PAGE_SIZE]
    } else {
        gather.clear();
        for &p in pages {
            gather.extend_from_slice(&ram[page_range(p as usize)]);
        }
        gather
    };
    // A block is at most 1024 pages (4 MiB), so its length fits in a u32.
    Ok(match compressor.compress(src)? {
        Some(frame) => Block {
            stored: Stored::Zstd(frame.to_vec()),
            len: frame.len() as u32,
            checksum: checksum(frame),
        },
        None => Block {
            stored: Stored::Raw,
            len: src.len() as u32,
            checksum: checksum(src),
        },
    })
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ram_of(pages: &[u8]) -> Vec<u8> {
        pages.iter().flat_map(|&b| [b; PAGE_SIZE]).collect()
    }

    #[test]
    fn equal_hashes_of_different_pages_are_not_merged() {
        // Pages 0 and 2 are equal; 1 and 3 differ from them and each other.
        // All four claim one hash, as a deliberate collision would.
        let ram = ram_of(&[1, 2, 1, 3]);
        let mut dedup = Dedup::default();
        let refs: Vec<u32> = (0..4).map(|page| dedup.add(&ram, page, 42)).collect();
        assert_eq!(refs, vec![0, 1, 0, 2]);
        assert_eq!(dedup.uniques, vec![0, 1, 3]);
    }

    #[test]
    fn scan_queues_every_block_and_refers_zero_pages_as_zero() {
        // 130 pages: zero, then 129 distinct non-zero ones: blocks of 64, 64, 1.
        let mut ram = vec![0u8; 130 * PAGE_SIZE];
        for (i, page) in ram.chunks_mut(PAGE_SIZE).enumerate().skip(1) {
            page[..8].copy_from_slice(&(i as u64).to_le_bytes());
        }
        let queue = BlockQueue::default();
        let list: Vec<u32> = (0..130).collect();
        let (entries, uniques) = scan(&ram, Some(&list), true, &queue);
        assert_eq!(entries[0], (0, ZERO_REF));
        assert_eq!(entries[129], (129, 128));
        assert_eq!(uniques.len(), 129);
        queue.close();
        let jobs: Vec<(usize, usize)> = std::iter::from_fn(|| queue.pop())
            .map(|(b, pages)| (b, pages.len()))
            .collect();
        assert_eq!(jobs, vec![(0, 64), (1, 64), (2, 1)]);
    }
}
