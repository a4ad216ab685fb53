//! Files carried inside a recording or a snapshot (`rewind pack`, `record
//! --pack`), so that it replays or restores on a host that has none of
//! them: the firmware, kernel and initrd, each disk's base image (its
//! guest-visible content, as raw bytes) and any overlay a disk started
//! from. Each is stored once, compressed, and named by the BLAKE3 of its
//! content, which is how the configuration names it already; a file found
//! packed is taken from there before the host is looked at.
//!
//! A recording stores them between its header and its frames
//! (rewind_replay::format); a snapshot as components: `host:packed` lists
//! them, `host:image <blake3>` holds each one's stored bytes.

use crate::images::{self, Origin};
use crate::SessionError;
use rewind_replay::packed::{self, UnpackError};
use rewind_replay::{FirmwareRef, PackedImage, RecordedConfig, RecordingReader};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::sync::Arc;

/// The component of a snapshot that lists its packed images.
pub const PACKED_LIST: &str = "host:packed";

/// The component of a snapshot that holds the packed image `blake3`.
pub fn image_component(blake3: &[u8; 32]) -> String {
    format!("host:image {}", crate::hex(blake3))
}

/// Files unpacked from a recording or snapshot.
#[derive(Default)]
pub struct Unpacked {
    /// Boot files and overlays, by the BLAKE3 of their content.
    files: BTreeMap<[u8; 32], Arc<[u8]>>,
    /// Disk base images, in temporary files already removed from their
    /// directory (so nothing is left behind however the run ends).
    disks: BTreeMap<[u8; 32], File>,
}

impl Unpacked {
    /// Whether there is anything.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty() && self.disks.is_empty()
    }

    /// The boot file or overlay whose content hashes to `blake3`.
    pub fn file(&self, blake3: &[u8; 32]) -> Option<Arc<[u8]>> {
        self.files.get(blake3).cloned()
    }

    /// A handle on the disk base image whose content hashes to `blake3`.
    pub fn disk(&self, blake3: &[u8; 32]) -> Option<std::io::Result<File>> {
        self.disks.get(blake3).map(File::try_clone)
    }

    /// Reads the images that follow a recording's header, as `config`
    /// uses them: disk bases into temporary files, the rest into memory.
    pub fn from_recording<R: Read>(
        reader: &mut RecordingReader<R>,
        config: &RecordedConfig,
    ) -> Result<Unpacked, SessionError> {
        let mut unpacked = Unpacked::default();
        let disk_bases: Vec<[u8; 32]> = config.disks.iter().map(|d| d.base_blake3).collect();
        while let Some(image) = reader.pending_image() {
            let mut sink = Sink::for_image(&image, &disk_bases)?;
            reader
                .next_image(&mut sink)
                .map_err(|e| SessionError::Message(e.to_string()))?;
            unpacked.add(image, sink)?;
        }
        Ok(unpacked)
    }

    /// Unpacks the images a snapshot's components hold.
    pub fn from_snapshot(snapshot: &rewind_snapshot::Snapshot) -> Result<Unpacked, SessionError> {
        let mut unpacked = Unpacked::default();
        let Some(list) = snapshot.component(PACKED_LIST) else {
            return Ok(unpacked);
        };
        let damaged = |what: String| {
            SessionError::Message(format!(
                "the snapshot {} is damaged: {what}",
                snapshot.file().display()
            ))
        };
        let images: Vec<PackedImage> = serde_json::from_slice(list)
            .map_err(|e| damaged(format!("its list of packed images does not decode: {e}")))?;
        if images.len() > rewind_replay::format::MAX_PACKED_IMAGES {
            return Err(damaged(format!(
                "it lists {} packed images, more than a snapshot may hold",
                images.len()
            )));
        }
        let config: Option<RecordedConfig> = snapshot
            .component(crate::snapshot::CONFIG)
            .and_then(|c| serde_json::from_slice(c).ok());
        let disk_bases: Vec<[u8; 32]> = config
            .iter()
            .flat_map(|c| c.disks.iter().map(|d| d.base_blake3))
            .collect();
        for image in images {
            let name = image_component(&image.blake3);
            let stored = snapshot
                .component(&name)
                .ok_or_else(|| damaged(format!("it lists {name} but does not hold it")))?;
            let mut sink = Sink::for_image(&image, &disk_bases)?;
            if stored.len() as u64 != image.stored {
                return Err(damaged(format!(
                    "{name} holds {} bytes where its list says {}",
                    stored.len(),
                    image.stored
                )));
            }
            packed::unpack(&mut &stored[..], &image, &mut sink).map_err(|e| match e {
                UnpackError::Cut => damaged(format!("{name} is cut short")),
                UnpackError::Damaged(why) => damaged(format!("{name} is damaged: {why}")),
                UnpackError::Sink(e) => SessionError::Message(format!("cannot unpack {name}: {e}")),
            })?;
            unpacked.add(image, sink)?;
        }
        Ok(unpacked)
    }

    fn add(&mut self, image: PackedImage, sink: Sink) -> Result<(), SessionError> {
        match sink {
            Sink::Memory(bytes) => {
                self.files.insert(image.blake3, bytes.into());
            }
            Sink::Disk(file) => {
                let file = file.finish().map_err(|e| {
                    SessionError::Message(format!("cannot unpack a disk image: {e}"))
                })?;
                self.disks.insert(image.blake3, file);
            }
        }
        Ok(())
    }
}

/// Where an image being unpacked goes: a disk base (which may be large)
/// into a temporary file, anything else into memory.
enum Sink {
    Memory(Vec<u8>),
    Disk(SparseFile),
}

impl Sink {
    /// A sink for `image`; `disk_bases` are the hashes of the disk base
    /// images of the configuration.
    fn for_image(image: &PackedImage, disk_bases: &[[u8; 32]]) -> Result<Sink, SessionError> {
        if disk_bases.contains(&image.blake3) {
            let file = SparseFile::create().map_err(|e| {
                SessionError::Message(format!(
                    "cannot make a temporary file for a packed disk image: {e}"
                ))
            })?;
            Ok(Sink::Disk(file))
        } else {
            Ok(Sink::Memory(Vec::new()))
        }
    }
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Sink::Memory(bytes) => bytes.write(buf),
            Sink::Disk(file) => file.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A temporary file written front to back that leaves holes where the
/// content is zero: an unpacked disk costs only its written blocks.
struct SparseFile {
    file: File,
    len: u64,
}

impl SparseFile {
    fn create() -> std::io::Result<SparseFile> {
        Ok(SparseFile {
            file: anonymous_file()?,
            len: 0,
        })
    }

    fn finish(mut self) -> std::io::Result<File> {
        self.file.set_len(self.len)?;
        self.file.seek(SeekFrom::Start(0))?;
        Ok(self.file)
    }
}

impl Write for SparseFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.iter().all(|&b| b == 0) {
            self.file.seek(SeekFrom::Current(buf.len() as i64))?;
        } else {
            self.file.write_all(buf)?;
        }
        self.len += buf.len() as u64;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A new file in the temporary directory that has no name (so nothing is
/// left behind however Rewind exits): it lives as long as its handles.
pub fn anonymous_file() -> std::io::Result<File> {
    tempfile::tempfile()
}

/// The files a configuration names, each stored once: what `record
/// --pack` and `rewind pack` put into a file. `unpacked` holds those
/// already packed in the file being packed again.
pub struct ToPack {
    /// Each image with its stored bytes, in a temporary file.
    pub images: Vec<(PackedImage, File)>,
}

impl ToPack {
    /// Packs every file `config` names, found as a replay or restore would
    /// find it (checked against its hash).
    pub fn gather(
        config: &RecordedConfig,
        origin: Origin,
        unpacked: &Unpacked,
    ) -> Result<ToPack, SessionError> {
        let mut to_pack = ToPack { images: Vec::new() };
        let boot = images::from_recording(config, origin, unpacked)?;
        let mut files: Vec<Arc<[u8]>> = Vec::new();
        if let (FirmwareRef::Binary(_), Some(firmware)) = (&config.firmware, &boot.firmware) {
            files.push(firmware.bytes.clone());
        }
        files.push(boot.kernel.bytes.clone());
        if let Some(initrd) = &boot.initrd {
            files.push(initrd.bytes.clone());
        }
        for disk in &config.disks {
            if let Some(overlay) = &disk.overlay {
                files.push(images::checked_image("overlay", overlay, origin, unpacked)?.bytes);
            }
        }
        for bytes in files {
            to_pack.add(&mut &bytes[..])?;
        }
        for (n, recorded) in config.disks.iter().enumerate() {
            // Only read: its (empty) overlay may live in the default place.
            let overlay_dir = std::env::temp_dir();
            let disk = crate::build::open_disk(n, recorded, origin, unpacked, &overlay_dir)?;
            to_pack.add(&mut DiskContent { disk, at: 0 })?;
        }
        Ok(to_pack)
    }

    /// Packs one file, unless one with the same content is packed already.
    fn add(&mut self, content: &mut dyn Read) -> Result<(), SessionError> {
        let fail = |e: std::io::Error| SessionError::Message(format!("cannot pack a file: {e}"));
        let mut stored = anonymous_file().map_err(fail)?;
        let image =
            packed::pack(content, &mut std::io::BufWriter::new(&mut stored)).map_err(fail)?;
        if self.images.iter().all(|(i, _)| i.blake3 != image.blake3) {
            stored.seek(SeekFrom::Start(0)).map_err(fail)?;
            self.images.push((image, stored));
        }
        Ok(())
    }

    /// The images, as a header lists them.
    pub fn list(&self) -> Vec<PackedImage> {
        self.images.iter().map(|(image, _)| *image).collect()
    }

    /// Total bytes stored.
    pub fn stored_bytes(&self) -> u64 {
        self.images.iter().map(|(image, _)| image.stored).sum()
    }
}

/// The guest-visible content of a disk's base image, as a stream.
struct DiskContent {
    disk: rewind_disk::Disk,
    at: u64,
}

impl Read for DiskContent {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.disk.size() - self.at;
        let n = (buf.len() as u64).min(left).min(1 << 20) as usize;
        if n == 0 {
            return Ok(0);
        }
        self.disk
            .image()
            .read_at(self.at, &mut buf[..n])
            .map_err(std::io::Error::other)?;
        self.at += n as u64;
        Ok(n)
    }
}
