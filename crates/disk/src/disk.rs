//! A guest disk: a base image plus, unless `persist`, a copy-on-write overlay.
//!
//! - Default: the base image file is opened read-only and never changes;
//!   writes go to an [`Overlay`] of 4 KiB blocks in an unnamed sparse file
//!   in a host directory (`$TMPDIR` unless told otherwise; a partial-block
//!   write first copies the block from the base). The overlay can be saved
//!   to a file and loaded back onto the same base.
//! - `persist` (raw images only): the file is opened read-write and writes go
//!   straight into it; `flush` is `fsync`. A write that would give the file
//!   the qcow2 magic is refused, so a guest cannot turn its raw disk into a
//!   qcow2 image that names a host file as its backing file.
//! - `ro`: writes are refused.
//!
//! The guest-visible content is a pure function of the base image's bytes and
//! the writes: no host time, no randomness, no hash-map order.

use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use crate::block_set::BlockSet;
use crate::image::{Format, Image};
use crate::overlay::{read_overlay_file, BaseId, Overlay, BLOCK_SIZE};
use crate::qcow2;
use crate::source::{FileOpener, FileSource};
use crate::spec::DiskSpec;
use crate::DiskError;

const BS: u64 = BLOCK_SIZE as u64;
/// How much of the base `base_content_hash` reads at a time.
const HASH_CHUNK: usize = 1 << 20;

/// A guest disk.
pub struct Disk {
    path: PathBuf,
    base: Image,
    /// The image file, writable, when `persist`.
    writer: Option<File>,
    /// The guest's writes, unless `persist`.
    overlay: Option<Overlay>,
    read_only: bool,
    /// Blocks written since the last `take_written_blocks`.
    written: BlockSet,
    /// The base content hash, once computed (never set when `persist`: the
    /// base changes then).
    base_hash: OnceLock<[u8; 32]>,
}

impl std::fmt::Debug for Disk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Disk")
            .field("path", &self.path)
            .field("base", &self.base)
            .field("persist", &self.writer.is_some())
            .field("overlay_blocks", &self.overlay.as_ref().map(Overlay::len))
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

fn io_error(
    path: &Path,
    op: &'static str,
    offset: Option<u64>,
) -> impl FnOnce(std::io::Error) -> DiskError {
    let path = path.to_owned();
    move |source| DiskError::Io {
        path,
        op,
        offset,
        source,
    }
}

impl Disk {
    /// Opens the image `spec` names (raw or qcow2, by content) and its backing
    /// chain; its overlay's file goes in the host's temporary directory.
    pub fn open(spec: &DiskSpec) -> Result<Disk, DiskError> {
        Disk::open_in(spec, &std::env::temp_dir())
    }

    /// Opens the image `spec` names, with its overlay's file (unless
    /// `persist`) in `overlay_dir`.
    pub fn open_in(spec: &DiskSpec, overlay_dir: &Path) -> Result<Disk, DiskError> {
        let path = &spec.path;
        let file = if spec.persist {
            OpenOptions::new().read(true).write(true).open(path)
        } else {
            File::open(path)
        }
        .map_err(|source| DiskError::Open {
            path: path.clone(),
            source,
        })?;
        let writer = if spec.persist {
            Some(file.try_clone().map_err(|source| DiskError::Open {
                path: path.clone(),
                source,
            })?)
        } else {
            None
        };
        let src = FileSource::new(path, file)?;
        if spec.persist {
            let format = Format::detect(&src).map_err(io_error(path, "read", Some(0)))?;
            if format == Format::Qcow2 {
                return Err(DiskError::PersistQcow2 { path: path.clone() });
            }
        }
        let base = Image::from_source(path, Box::new(src), &mut FileOpener)?;
        let overlay = match writer {
            Some(_) => None,
            None => Some(Overlay::create_in(overlay_dir, path)?),
        };
        Ok(Disk {
            path: path.clone(),
            base,
            overlay,
            writer,
            read_only: spec.read_only,
            written: BlockSet::new(),
            base_hash: OnceLock::new(),
        })
    }

    /// A disk over an already open image, writes going to an overlay in the
    /// host's temporary directory (for tests and in-memory images).
    pub fn from_image(base: Image, read_only: bool) -> Result<Disk, DiskError> {
        Disk::from_image_in(base, read_only, &std::env::temp_dir())
    }

    /// A disk over an already open image, writes going to an overlay in
    /// `overlay_dir`.
    pub fn from_image_in(
        base: Image,
        read_only: bool,
        overlay_dir: &Path,
    ) -> Result<Disk, DiskError> {
        let overlay = Overlay::create_in(overlay_dir, base.path())?;
        Ok(Disk {
            path: base.path().to_owned(),
            base,
            writer: None,
            overlay: Some(overlay),
            read_only,
            written: BlockSet::new(),
            base_hash: OnceLock::new(),
        })
    }

    /// The image file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The base image.
    pub fn image(&self) -> &Image {
        &self.base
    }

    /// The base image's format.
    pub fn format(&self) -> Format {
        self.base.format()
    }

    /// The virtual size in bytes.
    pub fn size(&self) -> u64 {
        self.base.size()
    }

    /// Whether writes are refused.
    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// Whether writes go into the image file (`persist`).
    pub fn persist(&self) -> bool {
        self.writer.is_some()
    }

    /// The overlay, unless `persist`.
    pub fn overlay(&self) -> Option<&Overlay> {
        self.overlay.as_ref()
    }

    fn check_range(&self, offset: u64, len: usize) -> Result<(), DiskError> {
        let size = self.size();
        let len = len as u64;
        if offset.checked_add(len).is_none_or(|end| end > size) {
            return Err(DiskError::OutOfRange {
                path: self.path.clone(),
                offset,
                len,
                size,
            });
        }
        Ok(())
    }

    /// Reads `buf.len()` bytes at `offset`; the range must lie within the disk.
    pub fn read_at(&mut self, offset: u64, buf: &mut [u8]) -> Result<(), DiskError> {
        self.check_range(offset, buf.len())?;
        let Some(overlay) = &self.overlay else {
            return self.base.read_at(offset, buf);
        };
        // The overlay's file holds each block at its guest offset, so a run
        // of held blocks is one read, and so is a run of base blocks.
        let mut pos = 0usize;
        while pos < buf.len() {
            let at = offset + pos as u64;
            let index = at / BS;
            if overlay.contains(index) {
                let mut next = index + 1;
                while next * BS < offset + buf.len() as u64 && overlay.contains(next) {
                    next += 1;
                }
                let end = ((next * BS - offset) as usize).min(buf.len());
                overlay.read_at(at, &mut buf[pos..end])?;
                pos = end;
            } else {
                // Everything up to the next overlay block comes from the base.
                let end = match overlay.next_block_from(index) {
                    Some(next) => ((next * BS - offset) as usize).min(buf.len()),
                    None => buf.len(),
                };
                self.base.read_at(at, &mut buf[pos..end])?;
                pos = end;
            }
        }
        Ok(())
    }

    /// Writes `data` at `offset`; the range must lie within the disk.
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        if self.read_only {
            return Err(DiskError::ReadOnly {
                path: self.path.clone(),
            });
        }
        self.check_range(offset, data.len())?;
        if data.is_empty() {
            return Ok(());
        }
        let first = offset / BS;
        let last = (offset + data.len() as u64 - 1) / BS;
        if let Some(file) = &self.writer {
            self.refuse_format_forgery(offset, data)?;
            file.write_all_at(data, offset)
                .map_err(io_error(&self.path, "write", Some(offset)))?;
            self.written.insert_range(first, last);
            return Ok(());
        }
        let size = self.size();
        let Some(overlay) = &mut self.overlay else {
            return Ok(());
        };
        // Only the first and last blocks can be covered in part. One not
        // held yet gets the base's bytes first (the disk's last block, if
        // shorter than 4096 bytes, always does, so that every held block is
        // whole in the file); then all of `data` is one write.
        let end = offset + data.len() as u64;
        let edges: &[u64] = if first == last {
            &[first]
        } else {
            &[first, last]
        };
        for &index in edges {
            let start = index * BS;
            let whole = offset <= start && start + BS <= end;
            if whole || overlay.contains(index) {
                continue;
            }
            let mut block = vec![0u8; BLOCK_SIZE];
            let avail = (size - start).min(BS) as usize;
            self.base.read_at(start, &mut block[..avail])?;
            overlay.insert_block(index, &block)?;
        }
        let result = overlay.write_at(offset, data);
        // Even after a failure (a full host disk), which may have changed
        // some of the held blocks' bytes: a snapshot's changes must not miss
        // them.
        self.written.insert_range(first, last);
        result
    }

    /// Refuses a write that would make the raw file start with the qcow2
    /// magic (QEMU refuses the same for probed raw images).
    fn refuse_format_forgery(&self, offset: u64, data: &[u8]) -> Result<(), DiskError> {
        let magic_len = qcow2::MAGIC.len() as u64;
        if offset >= magic_len || self.size() < magic_len {
            return Ok(());
        }
        let mut head = [0u8; 4];
        self.base.read_at(0, &mut head)?;
        for (i, &b) in data.iter().enumerate() {
            let at = offset as usize + i;
            if at >= head.len() {
                break;
            }
            head[at] = b;
        }
        if head == qcow2::MAGIC {
            return Err(DiskError::FormatForgery {
                path: self.path.clone(),
            });
        }
        Ok(())
    }

    /// Makes written data durable: `fsync` when `persist`; nothing to do for
    /// an overlay, whose file is deleted at exit unless saved.
    pub fn flush(&mut self) -> Result<(), DiskError> {
        match &self.writer {
            Some(file) => file
                .sync_data()
                .map_err(io_error(&self.path, "flush", None)),
            None => Ok(()),
        }
    }

    /// BLAKE3 of the overlay's blocks (index and bytes, in order): with the
    /// base image's hash, the disk's whole guest-visible state. `None` when
    /// `persist`.
    pub fn overlay_hash(&self) -> Result<Option<[u8; 32]>, DiskError> {
        let Some(overlay) = &self.overlay else {
            return Ok(None);
        };
        let mut hasher = blake3::Hasher::new();
        let mut block = vec![0u8; BLOCK_SIZE];
        for index in overlay.blocks() {
            overlay.read_block(index, &mut block)?;
            hasher.update(&index.to_le_bytes());
            hasher.update(&block);
        }
        Ok(Some(*hasher.finalize().as_bytes()))
    }

    /// The blocks (index = offset / 4096) written, or replaced by loading an
    /// overlay, since the last [`Disk::take_written_blocks`].
    pub fn written_blocks(&self) -> &BlockSet {
        &self.written
    }

    /// The blocks written since the last call, forgetting them. A snapshot
    /// series takes them at each snapshot, whose successor stores only
    /// those: nothing else may take them while it runs.
    pub fn take_written_blocks(&mut self) -> BlockSet {
        std::mem::take(&mut self.written)
    }

    /// The overlay's copy of block `index` (offset / 4096), if it holds
    /// one: with the base, that is the block's whole state. `None` too when
    /// `persist`, which has no overlay.
    pub fn held_block(&self, index: u64) -> Result<Option<Vec<u8>>, DiskError> {
        let Some(overlay) = &self.overlay else {
            return Ok(None);
        };
        let mut block = vec![0u8; BLOCK_SIZE];
        Ok(overlay.read_block(index, &mut block)?.then_some(block))
    }

    /// Whether the disk's state can be put back ([`Disk::put_back_block`]):
    /// it has an overlay (not `persist`, whose writes go into the image).
    pub fn can_put_back(&self) -> bool {
        self.overlay.is_some()
    }

    /// Puts block `index` back in a state [`Disk::held_block`] gave
    /// earlier: held with `content` ([`BLOCK_SIZE`] bytes), or not held (the
    /// base shows through). For a debugger going back in time; the block
    /// counts as written for the next snapshot of a series. Refused when
    /// `persist` (see [`Disk::can_put_back`]).
    pub fn put_back_block(&mut self, index: u64, content: Option<&[u8]>) -> Result<(), DiskError> {
        let Some(overlay) = &mut self.overlay else {
            return Err(DiskError::NoOverlay {
                path: self.path.clone(),
            });
        };
        match content {
            Some(block) => overlay.insert_block(index, block)?,
            None => overlay.remove_block(index),
        }
        self.written.insert(index);
        Ok(())
    }

    /// BLAKE3 of the base image's guest-visible content (with `persist`, the
    /// file as it is now). Reads the whole image the first time.
    pub fn base_content_hash(&mut self) -> Result<[u8; 32], DiskError> {
        self.base_hash()
    }

    fn base_hash(&self) -> Result<[u8; 32], DiskError> {
        if let Some(hash) = self.base_hash.get() {
            return Ok(*hash);
        }
        let size = self.size();
        let mut hasher = blake3::Hasher::new();
        let mut buf = vec![0u8; HASH_CHUNK];
        let mut at = 0u64;
        while at < size {
            let n = (size - at).min(HASH_CHUNK as u64) as usize;
            self.base.read_at(at, &mut buf[..n])?;
            hasher.update(&buf[..n]);
            at += n as u64;
        }
        let hash = *hasher.finalize().as_bytes();
        if self.writer.is_none() {
            let _ = self.base_hash.set(hash);
        }
        Ok(hash)
    }

    fn no_overlay(&self) -> DiskError {
        DiskError::NoOverlay {
            path: self.path.clone(),
        }
    }

    fn base_id(&self) -> Result<BaseId, DiskError> {
        Ok(BaseId {
            size: self.size(),
            hash: self.base_hash()?,
        })
    }

    /// Writes the overlay file (see [`crate::overlay`]) to `out`.
    pub fn write_overlay(&self, out: &mut dyn Write, name: &Path) -> Result<(), DiskError> {
        let overlay = self.overlay.as_ref().ok_or_else(|| self.no_overlay())?;
        overlay.write_to(out, name, &self.base_id()?)
    }

    /// Writes an overlay file of the blocks written since the last
    /// [`Disk::take_written_blocks`] to `out`: what changed since then, for
    /// [`Disk::apply_overlay_changes`] to put on top of the overlay as it
    /// was then.
    pub fn write_overlay_changes(&self, out: &mut dyn Write, name: &Path) -> Result<(), DiskError> {
        let overlay = self.overlay.as_ref().ok_or_else(|| self.no_overlay())?;
        overlay.write_blocks_to(out, name, &self.base_id()?, &self.written)
    }

    /// Saves the overlay's blocks to `path` (through a temporary file beside
    /// it, renamed into place once complete and synced).
    pub fn save_overlay(&self, path: &Path) -> Result<(), DiskError> {
        if self.overlay.is_none() {
            return Err(self.no_overlay());
        }
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let result = (|| {
            let file = File::create(&tmp).map_err(io_error(&tmp, "create overlay file", None))?;
            let mut out = BufWriter::new(file);
            self.write_overlay(&mut out, &tmp)?;
            let file = out
                .into_inner()
                .map_err(|e| io_error(&tmp, "write overlay file", None)(e.into_error()))?;
            file.sync_all()
                .map_err(io_error(&tmp, "flush overlay file", None))?;
            std::fs::rename(&tmp, path).map_err(io_error(path, "replace overlay file", None))
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }

    /// Replaces the overlay with the one saved in `path`, which must have been
    /// saved for this base image (same size and content hash).
    pub fn load_overlay(&mut self, path: &Path) -> Result<(), DiskError> {
        if self.overlay.is_none() {
            return Err(self.no_overlay());
        }
        let file = File::open(path).map_err(io_error(path, "open overlay file", None))?;
        let len = file
            .metadata()
            .map_err(io_error(path, "open overlay file", None))?
            .len();
        self.read_overlay(&mut BufReader::new(file), len, path)
    }

    /// Replaces the overlay with one read from `input` (`len` bytes; `name`
    /// names it in errors).
    pub fn read_overlay(
        &mut self,
        input: &mut dyn Read,
        len: u64,
        name: &Path,
    ) -> Result<(), DiskError> {
        let Some(old) = &self.overlay else {
            return Err(self.no_overlay());
        };
        // Read into a new overlay, so that a damaged file changes nothing.
        let mut loaded = Overlay::create_in(old.dir(), &self.path)?;
        let expected = self.base_id()?;
        read_overlay_file(
            name,
            input,
            len,
            &mut |base| check_base(&self.path, name, &expected, base),
            &mut |index, block| loaded.insert_block(index, block),
        )?;
        self.written.extend_from(old.blocks());
        self.written.extend_from(loaded.blocks());
        self.overlay = Some(loaded);
        Ok(())
    }

    /// Puts the blocks of an overlay file made by
    /// [`Disk::write_overlay_changes`] (`len` bytes from `input`; `name`
    /// names it in errors) on top of the overlay. A damaged file is found
    /// out only at its end, when some of its blocks may have been applied:
    /// on an error, throw the disk away.
    pub fn apply_overlay_changes(
        &mut self,
        input: &mut dyn Read,
        len: u64,
        name: &Path,
    ) -> Result<(), DiskError> {
        if self.overlay.is_none() {
            return Err(self.no_overlay());
        }
        let expected = self.base_id()?;
        let (path, overlay, written) = (&self.path, &mut self.overlay, &mut self.written);
        let overlay = overlay.as_mut().expect("checked above");
        read_overlay_file(
            name,
            input,
            len,
            &mut |base| check_base(path, name, &expected, base),
            &mut |index, block| {
                written.insert(index);
                overlay.insert_block(index, block)
            },
        )?;
        Ok(())
    }
}

/// Refuses an overlay file `name` saved for another base than `expected`,
/// the base of disk `disk`.
fn check_base(disk: &Path, name: &Path, expected: &BaseId, base: &BaseId) -> Result<(), DiskError> {
    let mismatch = |what: String| DiskError::OverlayMismatch {
        path: name.to_owned(),
        base: disk.to_owned(),
        what,
    };
    if base.size != expected.size {
        return Err(mismatch(format!(
            "it was saved for a base of {} bytes, this one has {}",
            base.size, expected.size
        )));
    }
    if base.hash != expected.hash {
        return Err(mismatch(format!(
            "it was saved for a base whose content hash begins {}, this one's begins {}",
            hex(&base.hash[..8]),
            hex(&expected.hash[..8])
        )));
    }
    Ok(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NoBackingFiles;

    fn memory_disk(bytes: Vec<u8>) -> Disk {
        let image =
            Image::from_source(Path::new("mem.img"), Box::new(bytes), &mut NoBackingFiles).unwrap();
        Disk::from_image(image, false).unwrap()
    }

    fn memory_disk_in(bytes: Vec<u8>, overlay_dir: &Path) -> Disk {
        let image =
            Image::from_source(Path::new("mem.img"), Box::new(bytes), &mut NoBackingFiles).unwrap();
        Disk::from_image_in(image, false, overlay_dir).unwrap()
    }

    fn blocks(set: &BlockSet) -> Vec<u64> {
        set.iter().collect()
    }

    fn whole(disk: &mut Disk) -> Vec<u8> {
        let mut all = vec![0u8; disk.size() as usize];
        disk.read_at(0, &mut all).unwrap();
        all
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 4096) as u8).collect()
    }

    #[test]
    fn overlay_writes_are_visible_and_partial_blocks_keep_the_base() {
        let base = pattern(3 * BLOCK_SIZE + 1000);
        let mut disk = memory_disk(base.clone());
        let mut expect = base.clone();
        for (offset, len, byte) in [
            (10usize, 5usize, 0xaau8),
            (4000, 200, 0xbb),
            (8192, 4096, 0xcc),
            (12288 + 900, 100, 0xdd),
        ] {
            disk.write_at(offset as u64, &vec![byte; len]).unwrap();
            expect[offset..offset + len].fill(byte);
        }
        let mut all = vec![0u8; expect.len()];
        disk.read_at(0, &mut all).unwrap();
        assert_eq!(all, expect);
        // Unaligned reads crossing overlay and base blocks.
        for (offset, len) in [(3usize, 9000usize), (4095, 2), (5000, 8000), (12287, 1001)] {
            let mut part = vec![0u8; len];
            disk.read_at(offset as u64, &mut part).unwrap();
            assert_eq!(part, expect[offset..offset + len], "at {offset}+{len}");
        }
        let mut tmp = vec![0u8; 16];
        disk.image().read_at(0, &mut tmp).unwrap();
        assert_eq!(tmp, base[..16], "the base image is unchanged");
        assert_eq!(blocks(&disk.take_written_blocks()), [0, 1, 2, 3]);
        assert!(disk.take_written_blocks().is_empty());
        // The last block's bytes past the end stay zero.
        let mut last = vec![0u8; BLOCK_SIZE];
        assert!(disk.overlay().unwrap().read_block(3, &mut last).unwrap());
        assert!(last[1000..].iter().all(|&b| b == 0));
    }

    #[test]
    fn many_overlapping_writes_read_back_like_plain_memory() {
        // The disk against a Vec doing the same writes: unaligned ranges
        // that start, end and span held and unheld blocks, and rewrites.
        let size = 40 * BLOCK_SIZE + 123;
        let mut expect = pattern(size);
        let mut disk = memory_disk(expect.clone());
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = |bound: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % bound as u64) as usize
        };
        for round in 0..300 {
            let offset = next(size);
            let len = next((size - offset).min(3 * BLOCK_SIZE)) + 1;
            let data: Vec<u8> = (0..len).map(|i| (i + round) as u8 ^ 0x5a).collect();
            disk.write_at(offset as u64, &data).unwrap();
            expect[offset..offset + len].copy_from_slice(&data);
            if round % 25 == 0 {
                assert_eq!(whole(&mut disk), expect, "after write {round}");
            }
        }
        assert_eq!(whole(&mut disk), expect);
        for _ in 0..100 {
            let offset = next(size);
            let len = next(size - offset) + 1;
            let mut part = vec![0u8; len];
            disk.read_at(offset as u64, &mut part).unwrap();
            assert_eq!(part, expect[offset..offset + len], "at {offset}+{len}");
        }
    }

    #[test]
    fn the_overlay_file_is_in_the_directory_given_and_gone_with_the_disk() {
        let dir = tempfile::tempdir().unwrap();
        let dir = dir.path().canonicalize().unwrap();
        let open_in_dir = || {
            std::fs::read_dir("/proc/self/fd")
                .unwrap()
                .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
                .filter(|target| target.starts_with(&dir))
                .count()
        };
        let mut disk = memory_disk_in(pattern(3 * BLOCK_SIZE), &dir);
        disk.write_at(100, &[1; 5000]).unwrap();
        assert_eq!(disk.overlay().unwrap().dir(), dir);
        assert_eq!(open_in_dir(), 1, "the overlay's file is open in {dir:?}");
        assert_eq!(
            std::fs::read_dir(&dir).unwrap().count(),
            0,
            "the overlay's file has no name"
        );
        // Loading an overlay replaces the file with another in the same place.
        let mut saved = Vec::new();
        disk.write_overlay(&mut saved, Path::new("o")).unwrap();
        disk.read_overlay(&mut &saved[..], saved.len() as u64, Path::new("o"))
            .unwrap();
        assert_eq!(open_in_dir(), 1);
        drop(disk);
        assert_eq!(open_in_dir(), 0, "the overlay's file is closed");
    }

    #[test]
    fn a_missing_overlay_directory_is_one_sentence() {
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("vda.img");
        std::fs::write(&image, vec![0u8; 8192]).unwrap();
        let spec = DiskSpec::parse(image.to_str().unwrap()).unwrap();
        let missing = dir.path().join("no-such-dir");
        let e = Disk::open_in(&spec, &missing).unwrap_err().to_string();
        assert_eq!(
            e,
            format!(
                "cannot create the overlay of {} in {}: No such file or directory (os error 2)",
                image.display(),
                missing.display()
            )
        );
        // A persist disk has no overlay, so needs no directory.
        let spec = DiskSpec::parse(&format!("{},persist", image.display())).unwrap();
        assert!(Disk::open_in(&spec, &missing).unwrap().persist());
    }

    #[test]
    fn overlays_round_trip_through_a_saved_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut disk = memory_disk(pattern(50_000));
        disk.write_at(4096 * 3 + 7, &[3; 9000]).unwrap();
        disk.write_at(49_990, &[4; 10]).unwrap();
        let file = dir.path().join("vda.overlay");
        disk.save_overlay(&file).unwrap();
        let mut other = memory_disk(pattern(50_000));
        other.load_overlay(&file).unwrap();
        assert_eq!(whole(&mut other), whole(&mut disk));
        assert_eq!(
            blocks(other.overlay().unwrap().blocks()),
            blocks(disk.overlay().unwrap().blocks())
        );
        // A damaged file leaves the overlay as it was.
        let mut bytes = std::fs::read(&file).unwrap();
        bytes[64 + 8 + 100] ^= 1; // in the first block's data
        std::fs::write(&file, bytes).unwrap();
        other.write_at(0, &[9]).unwrap();
        let before = whole(&mut other);
        let e = other.load_overlay(&file).unwrap_err().to_string();
        assert!(e.contains("checksum"), "{e}");
        assert_eq!(whole(&mut other), before);
    }

    #[test]
    fn changes_since_a_point_rebuild_the_overlay_on_top_of_the_one_then() {
        let mut disk = memory_disk(pattern(64 * BLOCK_SIZE));
        disk.write_at(0, &[1; 10 * BLOCK_SIZE]).unwrap();
        let mut then = Vec::new();
        disk.write_overlay(&mut then, Path::new("then")).unwrap();
        disk.take_written_blocks();
        disk.write_at(5 * BLOCK_SIZE as u64 + 1, &[2; 10]).unwrap();
        disk.write_at(40 * BLOCK_SIZE as u64, &[3; BLOCK_SIZE])
            .unwrap();
        assert_eq!(blocks(disk.written_blocks()), [5, 40]);
        let mut changes = Vec::new();
        disk.write_overlay_changes(&mut changes, Path::new("changes"))
            .unwrap();
        assert!(
            changes.len() < then.len() / 4,
            "{} bytes of changes against {} of the whole overlay",
            changes.len(),
            then.len()
        );

        let mut rebuilt = memory_disk(pattern(64 * BLOCK_SIZE));
        rebuilt
            .read_overlay(&mut &then[..], then.len() as u64, Path::new("then"))
            .unwrap();
        rebuilt
            .apply_overlay_changes(&mut &changes[..], changes.len() as u64, Path::new("c"))
            .unwrap();
        assert_eq!(whole(&mut rebuilt), whole(&mut disk));
        assert_eq!(
            rebuilt.overlay_hash().unwrap(),
            disk.overlay_hash().unwrap()
        );

        // Changes made for another base are refused before any is applied.
        let mut other = memory_disk(pattern(64 * BLOCK_SIZE + 1));
        let e = other
            .apply_overlay_changes(&mut &changes[..], changes.len() as u64, Path::new("c"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("saved for a base of"), "{e}");
        assert!(other.overlay().unwrap().is_empty());
    }

    #[test]
    fn accesses_past_the_end_and_read_only_writes_are_errors() {
        let mut disk = memory_disk(vec![0u8; 8192]);
        let mut b = [0u8; 2];
        let e = disk.read_at(8191, &mut b).unwrap_err().to_string();
        assert_eq!(
            e,
            "an access of 2 bytes at offset 0x1fff goes past the end of mem.img (8192 bytes)"
        );
        assert!(disk.write_at(u64::MAX, &b).is_err());
        disk.read_at(8192, &mut []).unwrap();
        let image = Image::from_source(
            Path::new("r.img"),
            Box::new(vec![0u8; 512]),
            &mut NoBackingFiles,
        )
        .unwrap();
        let mut ro = Disk::from_image(image, true).unwrap();
        assert!(ro.read_only());
        let e = ro.write_at(0, &[1]).unwrap_err().to_string();
        assert!(e.contains("read-only"), "{e}");
    }

    #[test]
    fn overlays_round_trip_through_bytes_and_check_their_base() {
        let mut disk = memory_disk(pattern(20_000));
        disk.write_at(5000, &[1, 2, 3]).unwrap();
        disk.write_at(19_999, &[9]).unwrap();
        let mut saved = Vec::new();
        disk.write_overlay(&mut saved, Path::new("o")).unwrap();
        let mut other = memory_disk(pattern(20_000));
        other
            .read_overlay(&mut &saved[..], saved.len() as u64, Path::new("o"))
            .unwrap();
        let (mut a, mut b) = (vec![0u8; 20_000], vec![0u8; 20_000]);
        disk.read_at(0, &mut a).unwrap();
        other.read_at(0, &mut b).unwrap();
        assert_eq!(a, b);
        assert_eq!(blocks(&other.take_written_blocks()), [1, 4]);

        let mut changed = pattern(20_000);
        changed[7] ^= 1;
        let e = memory_disk(changed)
            .read_overlay(&mut &saved[..], saved.len() as u64, Path::new("o"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("content hash"), "{e}");
        let e = memory_disk(pattern(20_480))
            .read_overlay(&mut &saved[..], saved.len() as u64, Path::new("o"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("base of 20000 bytes"), "{e}");
    }

    #[test]
    fn disks_can_move_between_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Disk>();
        send_sync::<DiskError>();
    }

    #[test]
    fn the_overlay_hash_follows_the_writes() {
        let mut disk = memory_disk(pattern(10_000));
        let empty = disk.overlay_hash().unwrap();
        disk.write_at(5, &[1]).unwrap();
        let one = disk.overlay_hash().unwrap();
        assert_ne!(empty, one);
        disk.write_at(5, &[1]).unwrap();
        assert_eq!(disk.overlay_hash().unwrap(), one);
        disk.write_at(5, &[2]).unwrap();
        assert_ne!(disk.overlay_hash().unwrap(), one);
    }

    #[test]
    fn the_base_hash_is_of_the_guest_visible_content() {
        let bytes = pattern(3_000_000);
        let mut disk = memory_disk(bytes.clone());
        assert_eq!(
            disk.base_content_hash().unwrap(),
            *blake3::hash(&bytes).as_bytes()
        );
        disk.write_at(0, &[1]).unwrap();
        assert_eq!(
            disk.base_content_hash().unwrap(),
            *blake3::hash(&bytes).as_bytes()
        );
    }
}
