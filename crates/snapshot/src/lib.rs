//! Rewind's snapshot files: the whole state of a machine in one file.
//!
//! This crate knows nothing about the machine. It stores named *components*
//! (opaque byte strings that the machine produces, one per hart or device) and
//! guest RAM as 4 KiB pages, deduplicated by content, compressed with LZ4, and
//! with zero pages left out. An *incremental* snapshot holds only the pages the
//! caller says were dirtied since its parent, and names that parent by id; the
//! crate never compares memory itself.
//!
//! ```text
//! write:   write_snapshot(out, components, ram, Pages::All)                       -> id
//!          write_snapshot(out, components, ram, Pages::Dirty { parent: id, pages })  -> id2
//! restore: SnapshotChain::open(&[full_file, incremental_file])?.apply_pages(ram)?
//!          then chain.head().component("uart") for each component
//! ```
//!
//! # File layout (version 1, every integer little-endian)
//!
//! ```text
//! offset size  header (176 bytes)
//!      0    8  magic "RWNDSNAP"
//!      8    4  format version = 1
//!     12    4  flags: bit 0 = incremental; the other bits must be zero
//!     16   32  id: BLAKE3 of header bytes 0..16 and 48..176 (everything but the id)
//!     48   32  parent id; all zero in a full snapshot
//!     80    8  RAM size in bytes: a non-zero multiple of the page size, at most 1 TiB
//!     88    4  page size = 4096
//!     92    4  pages per block, 1..=1024 (this writer uses 64)
//!     96   24  component table: u64 length, u128 XXH3-128 of its bytes
//!    120   24  page table:      u64 length, u128 XXH3-128 of its bytes
//!    144   24  block table:     u64 length, u128 XXH3-128 of its bytes
//!    168    8  page data:       u64 length (each block has its own checksum)
//!    176       the four sections follow back to back, in that order; the file
//!              ends exactly where the page data ends
//!
//! component table
//!      u32 count (at most 4096), then per component in the writer's order:
//!      u16 name length (1..=256), UTF-8 name (unique), u64 data length, data
//!
//! page table: which pages this snapshot holds
//!      u64 unique page count U, u64 run count, then per run:
//!      u64 first page index, u32 page count n >= 1, n x u32 page reference
//!      Runs ascend and never touch (a gap of at least one page between runs).
//!      A reference is a unique page number below U, or 0xFFFF_FFFF for a zero
//!      page (incremental snapshots only). Unique pages are numbered by their
//!      first use: scanning the table in page order, each reference is either
//!      one already seen or exactly the next number. So the first page that
//!      uses a unique page is where it is decompressed to, and every later use
//!      is a copy of that page.
//!
//! block table: ceil(U / pages per block) entries of 24 bytes
//!      u32 method (0 = stored raw, 1 = LZ4 block format), u32 stored length,
//!      u128 XXH3-128 of the stored bytes. Block b holds unique pages
//!      b*ppb .. min((b+1)*ppb, U), so it always unpacks to a known size; a raw
//!      block's stored length is exactly that size.
//!
//! page data: the stored bytes of every block, back to back.
//! ```
//!
//! A full snapshot lists every non-zero page and no zero page: a page it does
//! not list is zero. An incremental one lists every dirty page, zero or not.
//!
//! # Integrity and identity
//!
//! Every byte of the file is covered: the header by its id (a BLAKE3 of the
//! rest of the header), each section by the XXH3-128 stored in the header, each
//! block by the XXH3-128 in the block table. A damaged file is found before any
//! RAM is touched. XXH3 is not a cryptographic hash: the checksums catch
//! accidents (disk and transfer errors, truncation, the wrong file), not a
//! forger, who could as well write a whole valid file. They run at memory
//! speed, which matters when a snapshot holds hundreds of MiB of pages.
//!
//! Deduplication uses a 64-bit XXH3 of each page only to find candidates: a
//! page is stored as a copy of another only after comparing the two byte for
//! byte, so a hash collision (even one a guest arranges) costs space, never
//! correctness.
//!
//! # Determinism
//!
//! The same components, RAM and page selection always give the same bytes,
//! whatever the number of threads: blocks are formed from unique pages in page
//! order before any thread starts, and written in block order.

mod apply;
mod chain;
mod error;
mod format;
mod pages;
mod read;
mod write;

pub use apply::ApplyOptions;
pub use chain::SnapshotChain;
pub use error::SnapshotError;
pub use format::{
    SnapshotId, FORMAT_VERSION, MAX_COMPONENTS, MAX_COMPONENT_NAME_LEN, MAX_RAM_SIZE, PAGE_SIZE,
};
pub use read::Snapshot;
pub use write::{write_snapshot, Pages, SnapshotWriter};

#[doc(hidden)]
pub use format::reseal;

/// How many threads compression, verification and restoring use by default:
/// the host's cores, at most four (past that, memory bandwidth is the limit).
/// The thread count never changes a file's bytes or a restored RAM image.
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}
