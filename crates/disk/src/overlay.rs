//! The copy-on-write overlay: the guest's writes, in 4 KiB blocks, over a
//! base image that is never changed; and the format of saved overlays.
//!
//! The blocks live in a sparse, unnamed host file (see `block_file.rs`),
//! block `i` at byte `i * 4096`; host memory holds only the set of written
//! block indices ([`BlockSet`]), never their data. Every held block has all
//! its 4096 bytes in the file (the bytes of the disk's last block past its
//! end are zero), so a held block always reads back whole.
//!
//! Saved overlay file (`--save-overlay`, and a disk's part of a snapshot),
//! all integers little-endian:
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
//! are zero; so one overlay has exactly one file. An incremental snapshot
//! stores the blocks written since its parent in the same format.

use std::io::{self, Read, Write};
use std::path::Path;

use crate::block_file::BlockFile;
use crate::block_set::BlockSet;
use crate::DiskError;

/// Overlay granularity in bytes.
pub const BLOCK_SIZE: usize = 4096;
/// The first bytes of an overlay file.
pub const OVERLAY_MAGIC: [u8; 8] = *b"RWDSKOVL";
/// The overlay file format version this crate writes and reads.
pub const OVERLAY_VERSION: u32 = 1;

const BS: u64 = BLOCK_SIZE as u64;
const HEADER_LEN: u64 = 64;
const RECORD_LEN: u64 = 8 + BS;
const CHECKSUM_LEN: u64 = 32;

/// Which base image an overlay belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseId {
    /// Virtual size in bytes.
    pub size: u64,
    /// BLAKE3 of the guest-visible content.
    pub hash: [u8; 32],
}

/// Written blocks, by block index (guest offset / [`BLOCK_SIZE`]), in a
/// host file.
#[derive(Debug)]
pub struct Overlay {
    data: BlockFile,
    held: BlockSet,
}

impl Overlay {
    /// An overlay with no blocks, whose file is in `dir`; `disk` names the
    /// disk it is for in errors.
    pub fn create_in(dir: &Path, disk: &Path) -> Result<Overlay, DiskError> {
        Ok(Overlay {
            data: BlockFile::create_in(dir, disk)?,
            held: BlockSet::new(),
        })
    }

    /// The directory its file is in.
    pub fn dir(&self) -> &Path {
        self.data.dir()
    }

    /// The number of blocks held.
    pub fn len(&self) -> u64 {
        self.held.len()
    }

    /// Whether no block has been written.
    pub fn is_empty(&self) -> bool {
        self.held.is_empty()
    }

    /// Whether block `index` is held.
    pub fn contains(&self, index: u64) -> bool {
        self.held.contains(index)
    }

    /// The held blocks' indices, in increasing order.
    pub fn blocks(&self) -> &BlockSet {
        &self.held
    }

    /// The first held block at or after `index`.
    pub fn next_block_from(&self, index: u64) -> Option<u64> {
        self.held.first_from(index)
    }

    /// Reads block `index` into `buf` ([`BLOCK_SIZE`] bytes) if it is held;
    /// returns whether it was.
    pub fn read_block(&self, index: u64, buf: &mut [u8]) -> Result<bool, DiskError> {
        debug_assert_eq!(buf.len(), BLOCK_SIZE);
        if !self.held.contains(index) {
            return Ok(false);
        }
        self.data.read_at(index * BS, buf)?;
        Ok(true)
    }

    /// Reads the bytes at guest offset `offset`, all in held blocks.
    pub(crate) fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.data.read_at(offset, buf)
    }

    /// Writes `data` at guest offset `offset` and holds the blocks it
    /// touches. A block not held before must be covered whole, or have had
    /// its other bytes stored with [`Overlay::insert_block`] first.
    pub(crate) fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        if data.is_empty() {
            return Ok(());
        }
        self.data.write_at(offset, data)?;
        // Only once the bytes are in the file: after a failed write the
        // block is still read from where it was before.
        let last = (offset + data.len() as u64 - 1) / BS;
        self.held.insert_range(offset / BS, last);
        Ok(())
    }

    /// Stores block `index` whole ([`BLOCK_SIZE`] bytes).
    pub(crate) fn insert_block(&mut self, index: u64, block: &[u8]) -> Result<(), DiskError> {
        debug_assert_eq!(block.len(), BLOCK_SIZE);
        self.data.write_at(index * BS, block)?;
        self.held.insert(index);
        Ok(())
    }

    /// Stops holding block `index`: it reads as the base again. (Its bytes
    /// stay in the file, unread, until it is held again.)
    pub(crate) fn remove_block(&mut self, index: u64) {
        self.held.remove(index);
    }

    /// Writes the overlay file of every held block, for base `base`, to
    /// `out`; `name` names `out` in errors.
    pub fn write_to(
        &self,
        out: &mut dyn Write,
        name: &Path,
        base: &BaseId,
    ) -> Result<(), DiskError> {
        self.write_blocks_to(out, name, base, &self.held)
    }

    /// Writes an overlay file of the held blocks among `blocks` (the ones
    /// written since some point, for an incremental snapshot).
    pub fn write_blocks_to(
        &self,
        out: &mut dyn Write,
        name: &Path,
        base: &BaseId,
        blocks: &BlockSet,
    ) -> Result<(), DiskError> {
        let failed = |source: io::Error| DiskError::Io {
            path: name.to_owned(),
            op: "write overlay file",
            offset: None,
            source,
        };
        let mut out = Hashing {
            inner: out,
            hasher: blake3::Hasher::new(),
        };
        let count = blocks.iter().filter(|&i| self.held.contains(i)).count() as u64;
        let mut header = Vec::with_capacity(HEADER_LEN as usize);
        header.extend_from_slice(&OVERLAY_MAGIC);
        header.extend_from_slice(&OVERLAY_VERSION.to_le_bytes());
        header.extend_from_slice(&(BLOCK_SIZE as u32).to_le_bytes());
        header.extend_from_slice(&base.size.to_le_bytes());
        header.extend_from_slice(&base.hash);
        header.extend_from_slice(&count.to_le_bytes());
        out.write_all(&header).map_err(failed)?;
        let mut block = vec![0u8; BLOCK_SIZE];
        for index in blocks {
            if self.read_block(index, &mut block)? {
                out.write_all(&index.to_le_bytes()).map_err(failed)?;
                out.write_all(&block).map_err(failed)?;
            }
        }
        let sum = out.hasher.finalize();
        out.inner.write_all(sum.as_bytes()).map_err(failed)
    }
}

/// What [`read_overlay_file`] calls with the base an overlay file names.
pub type AcceptBase<'a> = dyn FnMut(&BaseId) -> Result<(), DiskError> + 'a;
/// What [`read_overlay_file`] calls with each block: its index and bytes.
pub type TakeBlock<'a> = dyn FnMut(u64, &[u8]) -> Result<(), DiskError> + 'a;

/// Reads an overlay file of `len` bytes from `input`; `path` names it in
/// errors. Checks everything, and hands over what it holds as it reads:
/// which base it was saved for to `accept_base` (before any block; an error
/// from it stops the read), then each block in increasing order to
/// `block`. Returns the base. A damaged file can be found out after some
/// blocks were handed over (its checksum is at the end): the caller reads
/// into something it can throw away.
pub fn read_overlay_file(
    path: &Path,
    input: &mut dyn Read,
    len: u64,
    accept_base: &mut AcceptBase<'_>,
    block: &mut TakeBlock<'_>,
) -> Result<BaseId, DiskError> {
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
            format!("its format version is {version}; this Rewind reads version {OVERLAY_VERSION}"),
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
    let base_blocks = base.size.div_ceil(BS);
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
            format!(
                "it says it holds {count} blocks, which does not match its length of {len} bytes"
            ),
        ));
    }
    accept_base(&base)?;

    let tail_start = (base.size % BS) as usize;
    let mut data = vec![0u8; BLOCK_SIZE];
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
        read(at + 8, &mut data, true)?;
        if index == base_blocks - 1 && tail_start != 0 && data[tail_start..].iter().any(|&b| b != 0)
        {
            return Err(bad(
                at + 8,
                "the last block has data past the end of the disk".into(),
            ));
        }
        block(index, &data)?;
    }
    let at = len - CHECKSUM_LEN;
    let mut sum = [0u8; 32];
    read(at, &mut sum, false)?;
    if *hasher.finalize().as_bytes() != sum {
        return Err(bad(at, "the checksum does not match the contents".into()));
    }
    Ok(base)
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

    fn empty(dir: &Path) -> Overlay {
        Overlay::create_in(dir, Path::new("test.img")).unwrap()
    }

    fn sample(dir: &Path) -> (BaseId, Overlay) {
        let base = BaseId {
            size: 3 * BS + 100,
            hash: [9; 32],
        };
        let mut ov = empty(dir);
        ov.insert_block(0, &[1u8; BLOCK_SIZE]).unwrap();
        let mut last = vec![0u8; BLOCK_SIZE];
        last[..100].fill(2);
        ov.insert_block(3, &last).unwrap();
        (base, ov)
    }

    /// Every held block with its bytes, in order.
    fn contents(ov: &Overlay) -> Vec<(u64, Vec<u8>)> {
        let mut buf = vec![0u8; BLOCK_SIZE];
        ov.blocks()
            .iter()
            .map(|i| {
                assert!(ov.read_block(i, &mut buf).unwrap());
                (i, buf.clone())
            })
            .collect()
    }

    fn bytes(base: &BaseId, ov: &Overlay) -> Vec<u8> {
        let mut out = Vec::new();
        ov.write_to(&mut out, Path::new("o"), base).unwrap();
        out
    }

    /// Reads an overlay file into a new overlay in `dir`.
    fn parse_in(dir: &Path, b: &[u8]) -> Result<(BaseId, Overlay), DiskError> {
        let mut ov = empty(dir);
        let base = read_overlay_file(
            Path::new("o.ovl"),
            &mut &b[..],
            b.len() as u64,
            &mut |_| Ok(()),
            &mut |i, block| ov.insert_block(i, block),
        )?;
        Ok((base, ov))
    }

    #[test]
    fn round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let (base, ov) = sample(dir.path());
        let b = bytes(&base, &ov);
        assert_eq!(b.len() as u64, HEADER_LEN + 2 * RECORD_LEN + CHECKSUM_LEN);
        let (read_base, read) = parse_in(dir.path(), &b).unwrap();
        assert_eq!(read_base, base);
        assert_eq!(contents(&read), contents(&ov));
        let empty_file = bytes(&base, &empty(dir.path()));
        assert!(parse_in(dir.path(), &empty_file).unwrap().1.is_empty());
    }

    #[test]
    fn a_file_of_some_blocks_holds_only_those() {
        let dir = tempfile::tempdir().unwrap();
        let (base, ov) = sample(dir.path());
        let mut out = Vec::new();
        let some: BlockSet = [2, 3].into_iter().collect(); // 2 is not held
        ov.write_blocks_to(&mut out, Path::new("o"), &base, &some)
            .unwrap();
        let (_, read) = parse_in(dir.path(), &out).unwrap();
        assert_eq!(contents(&read), contents(&ov)[1..]);
    }

    #[test]
    fn the_base_is_offered_before_any_block_and_can_be_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (base, ov) = sample(dir.path());
        let b = bytes(&base, &ov);
        let mut blocks = 0;
        let e = read_overlay_file(
            Path::new("o"),
            &mut &b[..],
            b.len() as u64,
            &mut |offered| {
                assert_eq!(*offered, base);
                Err(DiskError::ReadOnly {
                    path: "refused".into(),
                })
            },
            &mut |_, _| {
                blocks += 1;
                Ok(())
            },
        )
        .unwrap_err();
        assert!(matches!(e, DiskError::ReadOnly { .. }) && blocks == 0);
    }

    #[test]
    fn every_flipped_byte_is_caught() {
        let dir = tempfile::tempdir().unwrap();
        let (base, ov) = sample(dir.path());
        let b = bytes(&base, &ov);
        for i in (0..b.len()).step_by(97).chain([b.len() - 1]) {
            let mut c = b.clone();
            c[i] ^= 0x40;
            assert!(
                parse_in(dir.path(), &c).is_err(),
                "flip at {i} went unnoticed"
            );
        }
    }

    #[test]
    fn damage_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let parse = |b: &[u8]| parse_in(dir.path(), b).map(|(base, _)| base);
        let (base, ov) = sample(dir.path());
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
        let mut bad = empty(dir.path());
        bad.insert_block(4, &[0u8; BLOCK_SIZE]).unwrap();
        let e = parse(&bytes(&base, &bad)).unwrap_err().to_string();
        assert!(
            e.contains("block 4 lies past the end") && e.contains("0x40"),
            "{e}"
        );
        let mut bad = empty(dir.path());
        bad.insert_block(3, &[5u8; BLOCK_SIZE]).unwrap();
        let e = parse(&bytes(&base, &bad)).unwrap_err().to_string();
        assert!(e.contains("past the end of the disk"), "{e}");
        // A reader shorter than it claims.
        let e = read_overlay_file(
            Path::new("o"),
            &mut &b[..100],
            b.len() as u64,
            &mut |_| Ok(()),
            &mut |_, _| Ok(()),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("ends early"), "{e}");
    }

    #[test]
    fn blocks_live_in_a_sparse_file_that_rewrites_do_not_grow() {
        let dir = tempfile::tempdir().unwrap();
        let mut ov = empty(dir.path());
        // One block far out: the file is long but takes one block of space.
        let far = (1u64 << 30) / BS;
        ov.insert_block(far, &[7u8; BLOCK_SIZE]).unwrap();
        let (len, allocated) = (ov.data.len(), ov.data.allocated_bytes());
        assert_eq!(len, (far + 1) * BS);
        assert!(allocated <= 64 * 1024, "{allocated} bytes allocated");
        for byte in 0..4u8 {
            ov.write_at(far * BS + 10, &[byte; 100]).unwrap();
        }
        ov.insert_block(far, &[8u8; BLOCK_SIZE]).unwrap();
        assert_eq!(ov.data.len(), len);
        assert_eq!(ov.data.allocated_bytes(), allocated);
        assert_eq!(ov.len(), 1);
        let mut block = vec![0u8; BLOCK_SIZE];
        assert!(ov.read_block(far, &mut block).unwrap());
        assert_eq!(block, [8u8; BLOCK_SIZE]);
        assert!(!ov.read_block(0, &mut block).unwrap());
    }

    #[test]
    fn writes_hold_every_block_they_touch_in_increasing_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut ov = empty(dir.path());
        ov.write_at(9 * BS, &[1u8; 2 * BLOCK_SIZE]).unwrap();
        ov.insert_block(2, &[2u8; BLOCK_SIZE]).unwrap();
        ov.write_at(5 * BS, &[3u8; BLOCK_SIZE]).unwrap();
        ov.write_at(0, &[]).unwrap();
        assert_eq!(ov.blocks().iter().collect::<Vec<_>>(), [2, 5, 9, 10]);
        assert_eq!(ov.next_block_from(3), Some(5));
        assert_eq!(ov.next_block_from(11), None);
        let mut buf = vec![0u8; 3];
        ov.read_at(10 * BS - 1, &mut buf).unwrap();
        assert_eq!(buf, [1, 1, 1]);
    }

    /// Where the process's open files named in `dir` are (`/proc/self/fd`
    /// shows an unnamed file as `DIR/#INODE (deleted)` or `DIR/NAME
    /// (deleted)`).
    fn open_files_in(dir: &Path) -> usize {
        std::fs::read_dir("/proc/self/fd")
            .unwrap()
            .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
            .filter(|target| target.starts_with(dir))
            .count()
    }

    #[test]
    fn the_file_has_no_name_and_is_gone_with_the_overlay() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let mut ov = empty(&dir);
        ov.insert_block(3, &[1u8; BLOCK_SIZE]).unwrap();
        assert_eq!(ov.dir(), dir);
        assert_eq!(std::fs::read_dir(&dir).unwrap().count(), 0);
        assert_eq!(open_files_in(&dir), 1);
        drop(ov);
        assert_eq!(open_files_in(&dir), 0);
    }

    #[test]
    fn an_unusable_directory_is_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("missing");
        let e = Overlay::create_in(&missing, Path::new("vda.img"))
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            format!(
                "cannot create the overlay of vda.img in {}: No such file or directory (os error 2)",
                missing.display()
            )
        );
        let file = dir.path().join("file");
        std::fs::write(&file, b"").unwrap();
        let e = Overlay::create_in(&file, Path::new("vda.img"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("cannot create the overlay of vda.img in ") && !e.contains('\n'),
            "{e}"
        );
    }
}
