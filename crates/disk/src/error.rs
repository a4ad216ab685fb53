//! The one error type of this crate: every variant is one sentence that names
//! the file and, where it helps, the byte offset at which something is wrong.

use std::io;
use std::path::PathBuf;

/// Why a disk could not be opened, read, written or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DiskError {
    /// A `--disk PATH[,ro][,persist]` argument that does not parse.
    #[error("bad --disk argument {arg:?}: {reason}")]
    Spec { arg: String, reason: String },

    /// The image file (or a backing file given by the user) cannot be opened.
    #[error("cannot open disk image {}: {source}", .path.display())]
    Open {
        path: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The operating system failed a read, write or flush.
    #[error("cannot {op} {}{}: {source}", .path.display(), at(.offset))]
    Io {
        path: PathBuf,
        op: &'static str,
        offset: Option<u64>,
        #[source]
        source: io::Error,
    },

    /// A qcow2 image whose metadata is inconsistent, truncated or hostile.
    #[error("{} is a damaged qcow2 image: {what} (at offset {offset:#x})", .path.display())]
    Damaged {
        path: PathBuf,
        offset: u64,
        what: String,
    },

    /// An image that uses a feature this crate deliberately does not read.
    #[error("{} uses {what}, which Rewind cannot read; convert it with `qemu-img convert -O raw` (or `-O qcow2` without that feature)", .path.display())]
    Unsupported { path: PathBuf, what: String },

    /// A backing file named by a qcow2 image cannot be opened.
    #[error("cannot open {}, the backing file of {}: {source}", .backing.display(), .image.display())]
    BackingOpen {
        image: PathBuf,
        backing: PathBuf,
        #[source]
        source: io::Error,
    },

    /// A backing chain that comes back to an image already in it.
    #[error("the backing chain of {} loops: {} is its own backing file, through {chain}", .image.display(), .backing.display())]
    BackingLoop {
        image: PathBuf,
        backing: PathBuf,
        chain: String,
    },

    /// A backing chain longer than [`crate::MAX_CHAIN_DEPTH`].
    #[error("the backing chain of {} is longer than {max} images", .image.display())]
    BackingTooDeep { image: PathBuf, max: usize },

    /// A guest access that does not lie within the disk.
    #[error("an access of {len} bytes at offset {offset:#x} goes past the end of {} ({size} bytes)", .path.display())]
    OutOfRange {
        path: PathBuf,
        offset: u64,
        len: u64,
        size: u64,
    },

    /// A write to a disk opened with `ro`.
    #[error("cannot write to {}: the disk is read-only", .path.display())]
    ReadOnly { path: PathBuf },

    /// `persist` asked for on a qcow2 image.
    #[error("cannot open {} with `persist`: writing into a qcow2 image in place is not supported; use a raw image or the default overlay", .path.display())]
    PersistQcow2 { path: PathBuf },

    /// A write through `persist` that would turn the raw image into something
    /// that is detected as another format the next time it is opened (a guest
    /// could use a forged qcow2 header to read host files as backing files).
    #[error("refusing a write to the first sector of {} that would make the raw image look like a qcow2 image", .path.display())]
    FormatForgery { path: PathBuf },

    /// Overlay operations on a disk opened with `persist`.
    #[error("{} has no overlay to save or load: it was opened with `persist`, so writes go straight to the image", .path.display())]
    NoOverlay { path: PathBuf },

    /// The host file that holds a disk's overlay cannot be created (a
    /// missing or unwritable overlay directory).
    #[error("cannot create the overlay of {} in {}: {source}", .disk.display(), .dir.display())]
    OverlayCreate {
        dir: PathBuf,
        disk: PathBuf,
        #[source]
        source: io::Error,
    },

    /// The host failed a read or write of an overlay's file (a full disk,
    /// an I/O error).
    #[error("cannot {op} the overlay file in {} at offset {offset:#x}: {source}", .dir.display())]
    OverlayIo {
        dir: PathBuf,
        op: &'static str,
        offset: u64,
        #[source]
        source: io::Error,
    },

    /// A saved overlay file that is truncated, corrupted or hostile.
    #[error("overlay file {} is damaged: {what} (at offset {offset:#x})", .path.display())]
    OverlayDamaged {
        path: PathBuf,
        offset: u64,
        what: String,
    },

    /// A saved overlay file made for another base image.
    #[error("overlay file {} was saved for a different base image than {}: {what}", .path.display(), .base.display())]
    OverlayMismatch {
        path: PathBuf,
        base: PathBuf,
        what: String,
    },
}

fn at(offset: &Option<u64>) -> String {
    match offset {
        Some(o) => format!(" at offset {o:#x}"),
        None => String::new(),
    }
}
