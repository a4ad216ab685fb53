//! The recording file: how a [`Header`] and a stream of [`Event`]s are laid
//! out on disk, written as a run goes and read back by replay and `inspect`.
//!
//! # Layout
//!
//! All integers are little-endian.
//!
//! ```text
//! preamble
//!   0   8  magic b"RWNDREC\0"
//!   8   4  format version (2)
//!   12  4  machine model version (rewind_machine::MODEL_VERSION of the writer)
//!   16  4  header body length L (at most 1 MiB)
//!   20  4  CRC-32 of bytes 0..20
//! header
//!   24  L  header body: the bincode encoding of `Header`, whose first field
//!          is the writer's version string (u64 length, then UTF-8)
//!   24+L 4 CRC-32 of the header body
//! packed images (`Header::packed`, in that order; none unless packed)
//!   each: its stored bytes, a zstd stream of the image's content
//! frames, back to back until the end of the file, each:
//!   0   4  frame magic b"RWFR"
//!   4   4  compressed length C (at most 64 MiB)
//!   8   4  uncompressed length U (at most 64 MiB)
//!   12  4  CRC-32 of the compressed bytes
//!   16  4  CRC-32 of bytes 0..16 of the frame (its magic and lengths)
//!   20  C  zstd (level 3) of the bincode encoding of `Vec<Event>`, U bytes
//! ```
//!
//! "bincode" means bincode 1.3 with fixed-width little-endian integers and no
//! trailing bytes allowed; the private `codec` is the one place that says so.
//! That encoding of `Header` and `Event` is the on-disk contract, and it is
//! versioned twice: the format version covers the layout above and the
//! header; the machine model version covers everything the machine's
//! behaviour and state layouts decide (checkpoints hold hart state), so a
//! reader refuses a recording of another model before decoding any frame.
//! A reader of another format version still finds the writer's version
//! string at byte 24 (at byte 16 in format 1), to name it when it refuses.
//! Events are in non-decreasing [`Position`](crate::Position) order across
//! the whole file.
//!
//! The writer appends each frame with one `write_all` and nothing ever
//! rewrites earlier bytes, so a crash or a full disk leaves a file whose only
//! damage is an incomplete last frame. The reader reports that case as
//! [`FormatError::Truncated`], distinct from every other error, and all the
//! frames before it replay. A file cut exactly at a frame boundary looks
//! complete to this layer; a complete run ends with an [`Event::End`], which
//! [`Recording::end`] looks for.
//!
//! Every length read from the file is bounded before anything is allocated or
//! read for it, every offset is computed with checked arithmetic, and every
//! error names the byte offset where the problem is.

mod error;
mod read;
mod write;

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::Path;

use bincode::Options;

use crate::{Event, Header};

pub use error::FormatError;
pub use read::RecordingReader;
pub use write::RecordingWriter;

/// The first bytes of every recording.
pub const MAGIC: [u8; 8] = *b"RWNDREC\0";
/// The format version this code writes and the only one it reads.
pub const FORMAT_VERSION: u32 = 2;
/// Magic, format and model versions, header length and their checksum:
/// what precedes the header body.
pub const PREAMBLE_LEN: usize = 24;
/// The largest header body a reader accepts. Real headers are a few hundred
/// bytes; the bound keeps a hostile length from costing memory.
pub const MAX_HEADER_LEN: u32 = 1 << 20;
/// The first bytes of every frame; they let the reader tell a frame from
/// garbage before trusting the lengths that follow.
pub const FRAME_MAGIC: [u8; 4] = *b"RWFR";
/// Frame magic, two lengths and two checksums: what precedes a frame's data.
/// The lengths have a checksum of their own so that a damaged length is
/// reported as damage, not mistaken for a frame cut short by a crash.
pub const FRAME_PRELUDE_LEN: usize = 20;
/// The most images one recording may hold packed: firmware, kernel,
/// initrd, and a disk base and a starting overlay for each of the board's
/// virtio slots, with room to spare.
pub const MAX_PACKED_IMAGES: usize = 256;
/// The largest compressed or uncompressed frame a reader accepts.
pub const MAX_FRAME_LEN: u32 = 64 << 20;
/// The writer closes a frame once its events encode to this many bytes: small
/// enough that a crash loses little, large enough that zstd compresses well.
pub const FRAME_TARGET_LEN: u64 = 256 << 10;
/// zstd's default level: fast enough to keep up with a run, and recordings
/// are mostly small console inputs and checkpoints, where higher levels gain
/// little.
const ZSTD_LEVEL: i32 = 3;

/// The bincode options of the header body and the frames, used by both the
/// writer and the reader. `limit` bounds the bytes an encoding may take, which
/// also keeps the decoder from believing a hostile length prefix.
fn codec(limit: u64) -> impl Options + Copy {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .reject_trailing_bytes()
        .with_limit(limit)
}

/// A whole recording, as [`read_all`] returns it.
#[derive(Clone, Debug, PartialEq)]
pub struct Recording {
    pub header: Header,
    /// The machine model version of the writer.
    pub model: u32,
    /// Every event of the complete frames, in order.
    pub events: Vec<Event>,
    /// The number of complete frames.
    pub frames: u64,
    /// When the file ends inside a frame: that frame's offset, which is also
    /// the length of the part that replays.
    pub truncated_at: Option<u64>,
    /// The size of the file in bytes.
    pub file_size: u64,
}

impl Recording {
    /// The [`Event::End`] that closes a complete run, if the recording has it.
    pub fn end(&self) -> Option<&Event> {
        self.events
            .last()
            .filter(|event| matches!(event, Event::End { .. }))
    }
}

/// Reads the recording at `path`. A file cut short inside a frame is not an
/// error: the result holds the frames before the cut and says where it is.
pub fn read_all(path: &Path) -> Result<Recording, FormatError> {
    let open_error = |source| FormatError::Open {
        path: path.to_owned(),
        source,
    };
    let file = File::open(path).map_err(open_error)?;
    let file_size = file.metadata().map_err(open_error)?.len();
    let mut recording = read_from(BufReader::new(file))?;
    recording.file_size = file_size;
    Ok(recording)
}

/// [`read_all`] for any reader; `file_size` is the number of bytes read.
pub fn read_from<R: Read>(input: R) -> Result<Recording, FormatError> {
    let (mut reader, header) = RecordingReader::open(input)?;
    let mut events = Vec::new();
    let truncated_at = loop {
        match reader.next_frame() {
            Ok(Some(frame)) => events.extend(frame),
            Ok(None) => break None,
            Err(FormatError::Truncated { offset, .. }) => break Some(offset),
            Err(e) => return Err(e),
        }
    };
    Ok(Recording {
        header,
        model: reader.model(),
        events,
        frames: reader.frames(),
        truncated_at,
        // The reader has consumed everything, the incomplete frame included.
        file_size: reader.offset(),
    })
}

/// Recomputes every checksum of a recording in place, as far as its
/// structure can be followed, so that a fuzzer's mutations reach the
/// decoders behind the checksums (and tests can make files that are well
/// sealed but wrong inside). Never panics; leaves what it cannot follow as
/// it is.
pub fn reseal(file: &mut [u8]) {
    let u32_at = |file: &[u8], at: usize| -> Option<u32> {
        Some(u32::from_le_bytes(file.get(at..at + 4)?.try_into().ok()?))
    };
    if file.len() < PREAMBLE_LEN {
        return;
    }
    let crc = crc32fast::hash(&file[..20]);
    file[20..24].copy_from_slice(&crc.to_le_bytes());
    let Some(len) = u32_at(file, 16).map(|l| l as usize) else {
        return;
    };
    let body = PREAMBLE_LEN..PREAMBLE_LEN + len;
    if body.end + 4 > file.len() {
        return;
    }
    let crc = crc32fast::hash(&file[body.clone()]);
    file[body.end..body.end + 4].copy_from_slice(&crc.to_le_bytes());
    let mut pos = body.end + 4;
    // The packed images lie between the header and the frames.
    let Ok(header) = codec(len as u64).deserialize::<Header>(&file[body]) else {
        return;
    };
    for image in &header.packed {
        let Some(end) = usize::try_from(image.stored)
            .ok()
            .and_then(|n| pos.checked_add(n))
        else {
            return;
        };
        pos = end;
    }
    while let Some(compressed_len) = u32_at(file, pos + 4) {
        let Some(end) = (pos + FRAME_PRELUDE_LEN).checked_add(compressed_len as usize) else {
            return;
        };
        if file.get(pos..pos + 4) != Some(&FRAME_MAGIC[..]) || end > file.len() {
            return;
        }
        let crc = crc32fast::hash(&file[pos + FRAME_PRELUDE_LEN..end]);
        file[pos + 12..pos + 16].copy_from_slice(&crc.to_le_bytes());
        let crc = crc32fast::hash(&file[pos..pos + 16]);
        file[pos + 16..pos + 20].copy_from_slice(&crc.to_le_bytes());
        pos = end;
    }
}
