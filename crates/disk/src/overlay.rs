//! The copy-on-write overlay: the guest's writes, in 4 KiB blocks, over a
//! base image that is never changed; and its file format.
//!
//! Overlay file, all integers little-endian:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 8 | magic `RWDSKOVL` |
//! | 8 | 4 | format version (1) |
//! | 12 | 4 | block size (4096) |
//! | 16 | 8 | base image virtual size in bytes |
//! | 24 | 32 | BLAKE3 of the base image's guest-visible content |
//! | 56 | 8 | block count N |
//! | 64 | N × 4104 | records: block index (u64), then the block's 4096 bytes |
//! | end − 32 | 32 | BLAKE3 of every byte before it |
//!
//! Records are in strictly increasing block order, every block lies within
//! the base size, and the bytes of the last block past the end of the disk
//! are zero; so one overlay has exactly one file.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::path::Path;

use crate::DiskError;

/// Overlay granularity in bytes.
pub const BLOCK_SIZE: usize = 4096;
/// The first bytes of an overlay file.
pub const OVERLAY_MAGIC: [u8; 8] = *b"RWDSKOVL";
/// The overlay file format version this crate writes and reads.
pub const OVERLAY_VERSION: u32 = 1;

const HEADER_LEN: u64 = 64;
const RECORD_LEN: u64 = 8 + BLOCK_SIZE as u64;
const CHECKSUM_LEN: u64 = 32;

/// Which base image an overlay belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseId {
    /// Virtual size in bytes.
    pub size: u64,
    /// BLAKE3 of the guest-visible content.
    pub hash: [u8; 32],
}

/// Written blocks, by block index (guest offset / [`BLOCK_SIZE`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Overlay {
    blocks: BTreeMap<u64, Box<[u8]>>,
}

impl Overlay {
    /// An overlay with no blocks.
    pub fn new() -> Overlay {
        Overlay::default()
    }

    /// The number of blocks held.
    pub fn len(&self) -> usize {
        self.blocks.len()
    }

    /// Whether no block has been written.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Block `index`'s bytes ([`BLOCK_SIZE`] of them), if written.
    pub fn get(&self, index: u64) -> Option<&[u8]> {
        self.blocks.get(&index).map(|b| &b[..])
    }

    /// Block `index`, for writing, if it is already held.
    pub(crate) fn get_mut(&mut self, index: u64) -> Option<&mut [u8]> {
        self.blocks.get_mut(&index).map(|b| &mut b[..])
    }

    /// Stores block `index` (exactly [`BLOCK_SIZE`] bytes).
    pub(crate) fn insert(&mut self, index: u64, block: Box<[u8]>) {
        debug_assert_eq!(block.len(), BLOCK_SIZE);
        self.blocks.insert(index, block);
    }

    /// The held blocks in increasing order.
    pub fn blocks(&self) -> impl Iterator<Item = (u64, &[u8])> {
        self.blocks.iter().map(|(&i, b)| (i, &b[..]))
    }

    /// The first held block at or after `index`.
    pub fn next_block_from(&self, index: u64) -> Option<u64> {
        self.blocks.range(index..).next().map(|(&i, _)| i)
    }

    /// Writes the overlay file for base `base` to `out`.
    pub fn write_to(&self, out: &mut dyn Write, base: &BaseId) -> io::Result<()> {
        let mut out = Hashing {
            inner: out,
            hasher: blake3::Hasher::new(),
        };
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(&OVERLAY_MAGIC);
        header.extend_from_slice(&OVERLAY_VERSION.to_le_bytes());
        header.extend_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
        header.extend_from_slice(&base.size.to_le_bytes());
        header.extend_from_slice(&base.hash);
        header.extend_from_slice(&(self.blocks.len() as u64).to_le_bytes());
        out.write_all(&header)?;
        for (index, block) in &self.blocks {
            out.write_all(&index.to_le_bytes())?;
            out.write_all(block)?;
        }
        let sum = out.hasher.finalize();
        out.inner.write_all(sum.as_bytes())
    }

    /// Reads an overlay file of `len` bytes from `input`; `path` names it in
    /// errors. Checks everything but which base it belongs to, which it
    /// returns.
    pub fn read_from(
        path: &Path,
        input: &mut dyn Read,
        len: u64,
    ) -> Result<(BaseId, Overlay), DiskError> {
        let bad = |offset: u64, what: String| DiskError::OverlayDamaged {
            path: path.to_owned(),
            offset,
            what,
        };
        let mut hasher = blake3::Hasher::new();
        let mut read = |offset: u64, buf: &mut [u8], hash: bool| -> Result<(), DiskError> {
            input.read_exact(buf).map_err(|e| {
                if e.kind() == io::ErrorKind::UnexpectedEof {
                    bad(offset, "the file ends early".into())
                } else {
                    DiskError::Io {
                        path: path.to_owned(),
                        op: "read overlay file",
                        offset: Some(offset),
                        source: e,
                    }
                }
            })?;
            if hash {
                hasher.update(buf);
            }
            Ok(())
        };

        if len < HEADER_LEN + CHECKSUM_LEN {
            return Err(bad(
                0,
                format!(
                    "it is {len} bytes long, shorter than the {} bytes of an empty overlay",
                    HEADER_LEN + CHECKSUM_LEN
                ),
            ));
        }
        let mut h = [0u8; HEADER_LEN as usize];
        read(0, &mut h, true)?;
        let le32 = |at: usize| u32::from_le_bytes([h[at], h[at + 1], h[at + 2], h[at + 3]]);
        let le64 = |at: usize| {
            let mut v = [0u8; 8];
            v.copy_from_slice(&h[at..at + 8]);
            u64::from_le_bytes(v)
        };
        if h[..8] != OVERLAY_MAGIC {
            return Err(bad(0, "it does not start with the overlay magic".into()));
        }
        let version = le32(8);
        if version != OVERLAY_VERSION {
            return Err(bad(
                8,
                format!(
                    "its format version is {version}; this Rewind reads version {OVERLAY_VERSION}"
                ),
            ));
        }
        let block_size = le32(12);
        if block_size as usize != BLOCK_SIZE {
            return Err(bad(
                12,
                format!("its block size is {block_size} bytes, not {BLOCK_SIZE}"),
            ));
        }
        let mut hash = [0u8; 32];
        hash.copy_from_slice(&h[24..56]);
        let base = BaseId {
            size: le64(16),
            hash,
        };
        let count = le64(56);
        let base_blocks = base.size.div_ceil(BLOCK_SIZE as u64);
        if count > base_blocks {
            return Err(bad(
                56,
                format!(
                    "it holds {count} blocks but a base of {} bytes has only {base_blocks}",
                    base.size
                ),
            ));
        }
        let expected = count
            .checked_mul(RECORD_LEN)
            .and_then(|r| r.checked_add(HEADER_LEN + CHECKSUM_LEN));
        if expected != Some(len) {
            return Err(bad(
                56,
                format!("it says it holds {count} blocks, which does not match its length of {len} bytes"),
            ));
        }

        let tail_start = (base.size % BLOCK_SIZE as u64) as usize;
        let mut overlay = Overlay::new();
        let mut previous: Option<u64> = None;
        for i in 0..count {
            let at = HEADER_LEN + i * RECORD_LEN;
            let mut index = [0u8; 8];
            read(at, &mut index, true)?;
            let index = u64::from_le_bytes(index);
            if index >= base_blocks {
                return Err(bad(
                    at,
                    format!(
                        "block {index} lies past the end of the base ({} bytes)",
                        base.size
                    ),
                ));
            }
            if previous.is_some_and(|p| index <= p) {
                return Err(bad(at, "the blocks are not in increasing order".into()));
            }
            previous = Some(index);
            let mut block = vec![0u8; BLOCK_SIZE].into_boxed_slice();
            read(at + 8, &mut block, true)?;
            if index == base_blocks - 1
                && tail_start != 0
                && block[tail_start..].iter().any(|&b| b != 0)
            {
                return Err(bad(
                    at + 8,
                    "the last block has data past the end of the disk".into(),
                ));
            }
            overlay.insert(index, block);
        }
        let at = len - CHECKSUM_LEN;
        let mut sum = [0u8; 32];
        read(at, &mut sum, false)?;
        if *hasher.finalize().as_bytes() != sum {
            return Err(bad(at, "the checksum does not match the contents".into()));
        }
        Ok((base, overlay))
    }
}

/// A writer that hashes what passes through it.
struct Hashing<'a> {
    inner: &'a mut dyn Write,
    hasher: blake3::Hasher,
}

impl Write for Hashing<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> (BaseId, Overlay) {
        let base = BaseId {
            size: 3 * BLOCK_SIZE as u64 + 100,
            hash: [9; 32],
        };
        let mut ov = Overlay::new();
        ov.insert(0, vec![1u8; BLOCK_SIZE].into_boxed_slice());
        let mut last = vec![0u8; BLOCK_SIZE];
        last[..100].fill(2);
        ov.insert(3, last.into_boxed_slice());
        (base, ov)
    }

    fn bytes(base: &BaseId, ov: &Overlay) -> Vec<u8> {
        let mut out = Vec::new();
        ov.write_to(&mut out, base).unwrap();
        out
    }

    fn parse(b: &[u8]) -> Result<(BaseId, Overlay), DiskError> {
        Overlay::read_from(Path::new("o.ovl"), &mut &b[..], b.len() as u64)
    }

    #[test]
    fn round_trips() {
        let (base, ov) = sample();
        let b = bytes(&base, &ov);
        assert_eq!(b.len() as u64, HEADER_LEN + 2 * RECORD_LEN + CHECKSUM_LEN);
        assert_eq!(parse(&b).unwrap(), (base, ov));
        let empty = bytes(&base, &Overlay::new());
        assert_eq!(parse(&empty).unwrap().1, Overlay::new());
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let (base, ov) = sample();
        let b = bytes(&base, &ov);
        for i in (0..b.len()).step_by(97).chain([b.len() - 1]) {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(parse(&c).is_err(), "flip at {i} went unnoticed");
        }
    }

    #[test]
    fn damage_is_named() {
        let (base, ov) = sample();
        let b = bytes(&base, &ov);
        let e = parse(&b[..b.len() - 1]).unwrap_err().to_string();
        assert!(e.contains("does not match its length"), "{e}");
        let e = parse(&b[..10]).unwrap_err().to_string();
        assert!(e.contains("shorter than"), "{e}");
        let mut c = b.clone();
        c[56..64].copy_from_slice(&u64::MAX.to_le_bytes());
        let e = parse(&c).unwrap_err().to_string();
        assert!(e.contains("holds 18446744073709551615 blocks"), "{e}");
        // A well-formed file whose record is out of range.
        let mut bad = Overlay::new();
        bad.insert(4, vec![0u8; BLOCK_SIZE].into_boxed_slice());
        let e = parse(&bytes(&base, &bad)).unwrap_err().to_string();
        assert!(
            e.contains("block 4 lies past the end") && e.contains("0x40"),
            "{e}"
        );
        let mut bad = Overlay::new();
        bad.insert(3, vec![5u8; BLOCK_SIZE].into_boxed_slice());
        let e = parse(&bytes(&base, &bad)).unwrap_err().to_string();
        assert!(e.contains("past the end of the disk"), "{e}");
        // A reader shorter than it claims.
        let e = Overlay::read_from(Path::new("o"), &mut &b[..100], b.len() as u64)
            .unwrap_err()
            .to_string();
        assert!(e.contains("ends early"), "{e}");
    }
}
