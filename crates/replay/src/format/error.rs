//! What can be wrong with a recording file, each said in one sentence that
//! names the byte where the problem is.

use std::io;
use std::path::PathBuf;

use super::{FORMAT_VERSION, MAX_FRAME_LEN, MAX_HEADER_LEN, PREAMBLE_LEN};
use crate::Position;

/// Why a recording cannot be read (or, for [`FormatError::Truncated`], where
/// its readable part ends).
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("cannot open recording {}: {source}", .path.display())]
    Open { path: PathBuf, source: io::Error },

    #[error("reading the recording failed at byte {offset}: {source}")]
    Io { offset: u64, source: io::Error },

    #[error("this is not a Rewind recording (bad magic at byte {offset})")]
    BadMagic { offset: u64 },

    #[error("the recording ends at byte {offset} inside its header (a recording starts with a {PREAMBLE_LEN}-byte preamble)")]
    PreambleCut { offset: u64 },

    #[error("the recording is in format {version}{}, but this Rewind reads format {FORMAT_VERSION} only: replay it with the Rewind that made it", .writer.as_ref().map(|w| format!(", written by Rewind {w}")).unwrap_or_default())]
    OtherFormat {
        version: u32,
        writer: Option<String>,
    },

    #[error("the packed image at byte {offset} is cut short (the file ends at byte {end})")]
    ImageCut { offset: u64, end: u64 },

    #[error("the packed image at byte {offset} is damaged: {reason}")]
    ImageDamaged { offset: u64, reason: String },

    #[error("the packed image at byte {offset} cannot be unpacked: {source}")]
    ImageSink { offset: u64, source: io::Error },

    #[error("the header length at byte {offset} is {len} bytes, more than the {} MiB a header may hold", MAX_HEADER_LEN >> 20)]
    HeaderTooLarge { offset: u64, len: u32 },

    #[error(
        "the recording ends at byte {offset} inside its header, which ends at byte {header_end}"
    )]
    HeaderCut { offset: u64, header_end: u64 },

    #[error("the header at byte {offset} is damaged (checksum mismatch)")]
    HeaderDamaged { offset: u64 },

    #[error("the header at byte {offset} does not decode: {reason}")]
    HeaderUndecodable { offset: u64, reason: String },

    /// The file ends inside the frame at `offset`, as when a run was killed
    /// while writing it: everything before `offset` is intact and replays.
    #[error("the recording is cut short: the frame at byte {offset} is incomplete (the file ends at byte {end}), so it replays only up to byte {offset}")]
    Truncated { offset: u64, end: u64 },

    #[error("the frame at byte {offset} does not start with the frame magic (the recording is damaged there)")]
    BadFrameMagic { offset: u64 },

    #[error("frame at byte {offset} declares {declared} {what} bytes, more than the {} MiB a frame may hold", MAX_FRAME_LEN >> 20)]
    FrameTooLarge {
        offset: u64,
        declared: u32,
        /// "compressed" or "uncompressed".
        what: &'static str,
    },

    #[error("frame at byte {offset} is damaged (checksum mismatch)")]
    FrameDamaged { offset: u64 },

    #[error("frame at byte {offset} does not decode: {reason}")]
    FrameUndecodable { offset: u64, reason: String },

    #[error("frame at byte {offset} is out of order: its event {index} is at round {} (instruction {}), before the round {} (instruction {}) of the event preceding it", .at.round, .at.icount, .previous.round, .previous.icount)]
    OutOfOrder {
        offset: u64,
        index: usize,
        at: Position,
        previous: Position,
    },

    #[error("frame at byte {offset} goes on after the end of the run: its event {index} follows the recording's end")]
    AfterEnd { offset: u64, index: usize },

    #[error("frame at byte {offset} has a second checkpoint at round {round}, where a recording has at most one")]
    TwoCheckpoints { offset: u64, round: u64 },

    #[error("the recording is longer than 2^64 bytes after byte {offset}")]
    Overflow { offset: u64 },
}

impl FormatError {
    /// True when the recording is merely cut short: the frames read before
    /// this error are complete and can be replayed.
    pub fn is_truncation(&self) -> bool {
        matches!(self, FormatError::Truncated { .. })
    }

    /// The byte of the file the error is about (none for a file that could
    /// not be opened).
    pub fn offset(&self) -> Option<u64> {
        match self {
            FormatError::Open { .. } => None,
            FormatError::OtherFormat { .. } => Some(8),
            FormatError::Io { offset, .. }
            | FormatError::BadMagic { offset }
            | FormatError::PreambleCut { offset }
            | FormatError::ImageCut { offset, .. }
            | FormatError::ImageDamaged { offset, .. }
            | FormatError::ImageSink { offset, .. }
            | FormatError::HeaderTooLarge { offset, .. }
            | FormatError::HeaderCut { offset, .. }
            | FormatError::HeaderDamaged { offset }
            | FormatError::HeaderUndecodable { offset, .. }
            | FormatError::Truncated { offset, .. }
            | FormatError::BadFrameMagic { offset }
            | FormatError::FrameTooLarge { offset, .. }
            | FormatError::FrameDamaged { offset }
            | FormatError::FrameUndecodable { offset, .. }
            | FormatError::OutOfOrder { offset, .. }
            | FormatError::AfterEnd { offset, .. }
            | FormatError::TwoCheckpoints { offset, .. }
            | FormatError::Overflow { offset } => Some(*offset),
        }
    }
}
