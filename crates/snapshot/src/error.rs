//! What can be wrong with a snapshot file or a chain of them. Each message is
//! one sentence that names the file and, where there is one, the byte offset.

use std::io;
use std::path::PathBuf;

use crate::format::{SnapshotId, FORMAT_VERSION, OLDEST_FORMAT_VERSION};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("could not read {}: {source}", file.display())]
    Io {
        file: PathBuf,
        #[source]
        source: io::Error,
    },

    #[error("{} is not a Rewind snapshot (bad magic at byte 0)", file.display())]
    NotASnapshot { file: PathBuf },

    #[error(
        "{} has format version {found}, but this Rewind reads versions {OLDEST_FORMAT_VERSION} to {FORMAT_VERSION}",
        file.display()
    )]
    UnsupportedVersion { file: PathBuf, found: u32 },

    /// The file ends before a part its header promises.
    #[error("{} is cut short at byte {at} ({what} needs {missing} bytes more)", file.display())]
    Truncated {
        file: PathBuf,
        at: u64,
        what: &'static str,
        missing: u64,
    },

    #[error("{} has {extra} unexpected bytes after its end at byte {at}", file.display())]
    TrailingBytes { file: PathBuf, at: u64, extra: u64 },

    /// A checksum over bytes `start..end` (the header's id, a section's or a
    /// block's checksum) does not match them.
    #[error(
        "{} is damaged: the checksum of bytes {start}..{end} ({what}) does not match",
        file.display()
    )]
    ChecksumMismatch {
        file: PathBuf,
        start: u64,
        end: u64,
        what: String,
    },

    /// The checksums hold, but the content breaks a rule of the format: a
    /// file from a faulty writer, or made to pass the checksums.
    #[error("{} is damaged at byte {at}: {what}", file.display())]
    Malformed {
        file: PathBuf,
        at: u64,
        what: String,
    },

    #[error("{} is an incremental snapshot of {parent}; give its parent too", file.display())]
    MissingParent { file: PathBuf, parent: SnapshotId },

    #[error("{} is a full snapshot, not one stored on top of other RAM", file.display())]
    FullSnapshotOnBase { file: PathBuf },

    #[error(
        "{} is stored on top of the RAM {parent}, not on top of the RAM it is restored onto ({base})",
        file.display()
    )]
    WrongBase {
        file: PathBuf,
        parent: SnapshotId,
        base: SnapshotId,
    },

    #[error(
        "{} is an incremental snapshot of {parent}, but the snapshot given before it, {}, is {previous_id}",
        file.display(),
        previous_file.display()
    )]
    WrongParent {
        file: PathBuf,
        parent: SnapshotId,
        previous_file: PathBuf,
        previous_id: SnapshotId,
    },

    #[error(
        "{} is a full snapshot, so it cannot follow {} in a chain; give it first",
        file.display(),
        previous_file.display()
    )]
    FullSnapshotInChain {
        file: PathBuf,
        previous_file: PathBuf,
    },

    #[error(
        "{} holds {size} bytes of RAM, but {} holds {other_size}",
        file.display(),
        other_file.display()
    )]
    RamSizeMismatch {
        file: PathBuf,
        size: u64,
        other_file: PathBuf,
        other_size: u64,
    },

    #[error(
        "{} holds {size} bytes of RAM, but the RAM to restore it into has {buffer} bytes",
        file.display()
    )]
    RamBufferMismatch {
        file: PathBuf,
        size: u64,
        buffer: u64,
    },

    #[error("no snapshot files were given to restore")]
    EmptyChain,
}
