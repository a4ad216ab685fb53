//! Reading a recording, which is treated as hostile: every length is bounded
//! before it is trusted and every frame is checksummed before it is decoded.

use std::io::{self, Read};

use bincode::Options;

use super::{
    codec, FormatError, FORMAT_VERSION, FRAME_MAGIC, FRAME_PRELUDE_LEN, MAGIC, MAX_FRAME_LEN,
    MAX_HEADER_LEN, MAX_PACKED_IMAGES, PREAMBLE_LEN,
};
use crate::{Event, Header, PackedImage, Position};

/// Reads a recording: its header, then its packed images (if any), then
/// frame by frame.
pub struct RecordingReader<R: Read> {
    input: R,
    /// Bytes consumed so far: the offset in the file of the next byte.
    offset: u64,
    /// The machine model version of the writer.
    model: u32,
    /// The packed images not read yet, in file order.
    images: std::collections::VecDeque<PackedImage>,
    frames: u64,
    /// The position of the last event read, which the next may not precede.
    last: Option<Position>,
    /// The round of the last checkpoint read: a round has at most one.
    last_checkpoint: Option<u64>,
    /// An End was read: it is the last event of a recording.
    ended: bool,
    /// Set once `next_frame` returned the end or an error: the input is then
    /// at an unknown place inside a frame, so nothing more is read.
    done: bool,
}

impl<R: Read> RecordingReader<R> {
    /// Reads and checks the file header.
    pub fn open(input: R) -> Result<(Self, Header), FormatError> {
        let mut reader = RecordingReader {
            input,
            offset: 0,
            model: 0,
            images: Default::default(),
            frames: 0,
            last: None,
            last_checkpoint: None,
            ended: false,
            done: false,
        };
        let header = reader.read_header()?;
        reader.images = header.packed.iter().cloned().collect();
        Ok((reader, header))
    }

    /// The machine model version of the Rewind that wrote the recording
    /// (see the module documentation): a replay must refuse any other
    /// before it reads a frame.
    pub fn model(&self) -> u32 {
        self.model
    }

    /// The packed image [`RecordingReader::next_image`] reads next.
    pub fn pending_image(&self) -> Option<PackedImage> {
        self.images.front().copied()
    }

    /// Reads the next packed image into `sink`, checking its size and hash
    /// as it goes; returns which image it was. None when every image the
    /// header lists has been read.
    pub fn next_image(
        &mut self,
        sink: &mut dyn std::io::Write,
    ) -> Result<Option<PackedImage>, FormatError> {
        let Some(image) = self.images.pop_front() else {
            return Ok(None);
        };
        let at = self.offset;
        let mut stored = (&mut self.input).take(image.stored);
        let result = crate::packed::unpack(&mut stored, &image, sink);
        let consumed = image.stored - stored.limit();
        self.advance(consumed)?;
        match result {
            Ok(()) if consumed == image.stored => Ok(Some(image)),
            Ok(()) => Err(FormatError::ImageDamaged {
                offset: at,
                reason: format!(
                    "its {} stored bytes hold more than its content",
                    image.stored
                ),
            }),
            Err(crate::packed::UnpackError::Cut) => Err(FormatError::ImageCut {
                offset: at,
                end: self.offset,
            }),
            Err(crate::packed::UnpackError::Damaged(reason)) => {
                Err(FormatError::ImageDamaged { offset: at, reason })
            }
            Err(crate::packed::UnpackError::Sink(source)) => {
                Err(FormatError::ImageSink { offset: at, source })
            }
        }
    }

    /// Passes over the packed images not read yet without unpacking them.
    pub fn skip_images(&mut self) -> Result<(), FormatError> {
        while let Some(image) = self.images.pop_front() {
            let at = self.offset;
            let skipped = std::io::copy(&mut (&mut self.input).take(image.stored), &mut io::sink())
                .map_err(|source| self.io_error(0, source))?;
            self.advance(skipped)?;
            if skipped != image.stored {
                return Err(FormatError::ImageCut {
                    offset: at,
                    end: self.offset,
                });
            }
        }
        Ok(())
    }

    /// The next frame's events; `Ok(None)` at the end of the file.
    ///
    /// A file that ends inside a frame yields [`FormatError::Truncated`]
    /// (see [`FormatError::is_truncation`]): the frames returned before it
    /// are complete. After the end or any error this returns `Ok(None)`.
    pub fn next_frame(&mut self) -> Result<Option<Vec<Event>>, FormatError> {
        if self.done {
            return Ok(None);
        }
        if !self.images.is_empty() {
            if let Err(e) = self.skip_images() {
                self.done = true;
                return Err(e);
            }
        }
        let result = self.read_frame();
        if !matches!(result, Ok(Some(_))) {
            self.done = true;
        }
        result
    }

    /// Bytes consumed so far. After a frame, this is the offset of the next.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Complete frames read so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    fn read_header(&mut self) -> Result<Header, FormatError> {
        let mut preamble = [0u8; PREAMBLE_LEN];
        let got = self.fill(&mut preamble)?;
        // Check the magic even in a short file, so that a short file of
        // another kind is not reported as a cut recording.
        let magic_got = got.min(MAGIC.len());
        if preamble[..magic_got] != MAGIC[..magic_got] {
            return Err(FormatError::BadMagic { offset: 0 });
        }
        if got >= 12 {
            let version = field(&preamble, 8);
            if version != FORMAT_VERSION {
                // Read on, as far as the writer's name, to say who wrote it.
                let mut start = preamble[..got].to_vec();
                if let Ok(rest) = self.read_up_to(WRITER_SEARCH_LEN) {
                    start.extend_from_slice(&rest);
                }
                return Err(FormatError::OtherFormat {
                    version,
                    writer: writer_of(&start, version),
                });
            }
        }
        if got < PREAMBLE_LEN {
            return Err(FormatError::PreambleCut {
                offset: self.offset,
            });
        }
        if crc32fast::hash(&preamble[..20]) != field(&preamble, 20) {
            return Err(FormatError::HeaderDamaged { offset: 0 });
        }
        self.model = field(&preamble, 12);
        let len = field(&preamble, 16);
        if len > MAX_HEADER_LEN {
            return Err(FormatError::HeaderTooLarge { offset: 16, len });
        }
        let body_at = self.offset;
        // Body and checksum; at most 1 MiB + 28 bytes, so nothing overflows.
        let want = u64::from(len) + 4;
        let header_end = body_at + want;
        let bytes = self.read_up_to(want)?;
        if bytes.len() as u64 != want {
            return Err(FormatError::HeaderCut {
                offset: self.offset,
                header_end,
            });
        }
        let Some((body, crc)) = bytes.split_last_chunk::<4>() else {
            return Err(FormatError::HeaderCut {
                offset: self.offset,
                header_end,
            });
        };
        if crc32fast::hash(body) != u32::from_le_bytes(*crc) {
            return Err(FormatError::HeaderDamaged { offset: body_at });
        }
        let header: Header = codec(u64::from(len)).deserialize(body).map_err(|e| {
            FormatError::HeaderUndecodable {
                offset: body_at,
                reason: e.to_string(),
            }
        })?;
        if header.packed.len() > MAX_PACKED_IMAGES {
            return Err(FormatError::HeaderUndecodable {
                offset: body_at,
                reason: format!(
                    "it lists {} packed images, more than the {MAX_PACKED_IMAGES} a recording may hold",
                    header.packed.len()
                ),
            });
        }
        Ok(header)
    }

    fn read_frame(&mut self) -> Result<Option<Vec<Event>>, FormatError> {
        let start = self.offset;
        let mut prelude = [0u8; FRAME_PRELUDE_LEN];
        let got = self.fill(&mut prelude)?;
        if got == 0 {
            return Ok(None);
        }
        let magic_got = got.min(FRAME_MAGIC.len());
        if prelude[..magic_got] != FRAME_MAGIC[..magic_got] {
            return Err(FormatError::BadFrameMagic { offset: start });
        }
        let truncated = |end| FormatError::Truncated { offset: start, end };
        if got < FRAME_PRELUDE_LEN {
            return Err(truncated(self.offset));
        }
        if crc32fast::hash(&prelude[..16]) != field(&prelude, 16) {
            return Err(FormatError::FrameDamaged { offset: start });
        }
        let compressed_len = field(&prelude, 4);
        let len = field(&prelude, 8);
        let crc = field(&prelude, 12);
        for (declared, what) in [(compressed_len, "compressed"), (len, "uncompressed")] {
            if declared > MAX_FRAME_LEN {
                return Err(FormatError::FrameTooLarge {
                    offset: start,
                    declared,
                    what,
                });
            }
        }
        let compressed = self.read_up_to(u64::from(compressed_len))?;
        if compressed.len() as u64 != u64::from(compressed_len) {
            return Err(truncated(self.offset));
        }
        if crc32fast::hash(&compressed) != crc {
            return Err(FormatError::FrameDamaged { offset: start });
        }
        let undecodable = |reason: String| FormatError::FrameUndecodable {
            offset: start,
            reason,
        };
        // The declared length bounds the output buffer: zstd fails rather
        // than write past it, however far the data would expand.
        let bytes = zstd::bulk::decompress(&compressed, len as usize).map_err(|e| {
            undecodable(format!(
                "its zstd data is bad or holds more than the {len} bytes it declares ({e})"
            ))
        })?;
        if bytes.len() != len as usize {
            return Err(undecodable(format!(
                "it decompresses to {} bytes, not the {len} it declares",
                bytes.len()
            )));
        }
        let events: Vec<Event> = codec(u64::from(len))
            .deserialize(&bytes)
            .map_err(|e| undecodable(format!("its events do not decode ({e})")))?;
        for (index, event) in events.iter().enumerate() {
            let at = event.at();
            if let Some(previous) = self.last.filter(|previous| at < *previous) {
                return Err(FormatError::OutOfOrder {
                    offset: start,
                    index,
                    at,
                    previous,
                });
            }
            if self.ended {
                return Err(FormatError::AfterEnd {
                    offset: start,
                    index,
                });
            }
            if let Event::Checkpoint { .. } = event {
                if self.last_checkpoint == Some(at.round) {
                    return Err(FormatError::TwoCheckpoints {
                        offset: start,
                        round: at.round,
                    });
                }
                self.last_checkpoint = Some(at.round);
            }
            self.ended = matches!(event, Event::End { .. });
            self.last = Some(at);
        }
        self.frames += 1;
        Ok(Some(events))
    }

    /// Reads until `buf` is full or the input ends; returns the bytes read.
    fn fill(&mut self, buf: &mut [u8]) -> Result<usize, FormatError> {
        let mut got = 0;
        while got < buf.len() {
            match self.input.read(&mut buf[got..]) {
                Ok(0) => break,
                Ok(n) => got += n.min(buf.len() - got),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(source) => return Err(self.io_error(got as u64, source)),
            }
        }
        self.advance(got as u64)?;
        Ok(got)
    }

    /// Reads `len` bytes, or fewer if the input ends first. The buffer grows
    /// with the data actually present, so a declared length costs nothing
    /// until the bytes are there.
    fn read_up_to(&mut self, len: u64) -> Result<Vec<u8>, FormatError> {
        let mut bytes = Vec::new();
        if let Err(source) = (&mut self.input).take(len).read_to_end(&mut bytes) {
            return Err(self.io_error(bytes.len() as u64, source));
        }
        self.advance(bytes.len() as u64)?;
        Ok(bytes)
    }

    fn advance(&mut self, n: u64) -> Result<(), FormatError> {
        self.offset = self.offset.checked_add(n).ok_or(FormatError::Overflow {
            offset: self.offset,
        })?;
        Ok(())
    }

    fn io_error(&self, read: u64, source: io::Error) -> FormatError {
        FormatError::Io {
            offset: self.offset.saturating_add(read),
            source,
        }
    }
}

/// How far into a file of another format version its writer's name may
/// be looked for: past any preamble, and a name of up to 64 bytes.
const WRITER_SEARCH_LEN: u64 = 128;

/// The writer's version string of a recording in format `version`, read
/// from its first bytes `start` where that format keeps it: the first field
/// of the header body (a u64 length and UTF-8), at byte 16 in format 1 and
/// at byte 24 from format 2 on. None if it is not there or not plausible.
pub(crate) fn writer_of(start: &[u8], version: u32) -> Option<String> {
    let at = if version == 1 { 16 } else { PREAMBLE_LEN };
    let len = u64::from_le_bytes(start.get(at..at + 8)?.try_into().ok()?);
    let len = usize::try_from(len)
        .ok()
        .filter(|&len| (1..=64).contains(&len))?;
    let text = std::str::from_utf8(start.get(at + 8..at + 8 + len)?).ok()?;
    let plausible = text
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || ".-+_".contains(c));
    plausible.then(|| text.to_string())
}

/// The little-endian u32 at `at` in a preamble or frame prelude (whose
/// fixed sizes keep `at + 4` in bounds).
fn field(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
