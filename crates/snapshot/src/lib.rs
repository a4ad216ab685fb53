//! Rewind's snapshot files: the whole state of a machine in one file.
//!
//! This crate knows nothing about the machine. It stores named *components*
//! (opaque byte strings that the machine produces, one per hart or device) and
//! guest RAM as 4 KiB pages, deduplicated by content, compressed with zstd, and
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
//! The first snapshot of a chain may itself be incremental, on top of RAM
//! that is in no file but that the caller rebuilds and names by an id of
//! its choosing (Rewind: a machine's power-on RAM, from its boot images);
//! [`SnapshotChain::on_base`] takes such a chain.
//!
//! # File layout (version 2, every integer little-endian)
//!
//! ```text
//! offset size  header (176 bytes)
//!      0    8  magic "RWNDSNAP"
//!      8    4  format version = 2 (1 for older files, see below)
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
//!      u32 method, u32 stored length, u128 XXH3-128 of the stored bytes.
//!      Block b holds unique pages b*ppb .. min((b+1)*ppb, U), so it always
//!      unpacks to a known size. Methods:
//!        0 = stored raw: the stored length is exactly that size;
//!        2 = zstd: exactly one standard zstd frame (RFC 8878; no legacy or
//!            skippable frames, no dictionary, window at most 4 MiB), of 1
//!            byte to one less than that size, that decompresses to exactly
//!            that size. The writer uses level 1, no checksum flag (the block
//!            table has a checksum), and stores a block raw when the frame
//!            would not be smaller.
//!
//! page data: the stored bytes of every block, back to back.
//! ```
//!
//! # Version 1
//!
//! Version 1 is the same layout with method 1 (the LZ4 block format, 1 byte
//! to one less than the block's size) in place of method 2. This crate
//! writes version 2 only and reads both. A file may use only the compressed
//! method of its version: method 2 in a version-1 file, or method 1 in a
//! version-2 file, is a damaged file. So each version has one encoding, and
//! LZ4 is needed only to restore old files.
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
//! order before any thread starts, each is compressed on its own (zstd at a
//! fixed level, one thread per block, no state kept between blocks), and
//! they are written in block order. The compressed bytes may change with the
//! zstd version, which Cargo.lock pins; what a file restores never does.

mod apply;
mod chain;
mod codec;
mod error;
mod file;
mod format;
mod pages;
mod read;
mod write;

pub use apply::ApplyOptions;
pub use chain::SnapshotChain;
pub use error::SnapshotError;
pub use file::read_file;
pub use format::{
    SnapshotId, FORMAT_VERSION, MAX_COMPONENTS, MAX_COMPONENT_NAME_LEN, MAX_RAM_SIZE,
    OLDEST_FORMAT_VERSION, PAGE_SIZE,
};
pub use read::Snapshot;
pub use write::{write_snapshot, Pages, SnapshotWriter};

#[doc(hidden)]
pub use format::reseal;

/// How many threads compression, verification and restoring use by default:
/// the host's cores, at most four (past that, memory bandwidth is the limit).
/// The thread count never changes a file's bytes or a restored RAM image.
#[allow(clippy::disallowed_methods)] // the count decides speed only; see above
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(4))
}
