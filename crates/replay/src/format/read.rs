//! Reading a recording, which is treated as hostile: every length is bounded
//! before it is trusted and every frame is checksummed before it is decoded.

use std::io::{self, Read};

use bincode::Options;

use super::{
    codec, FormatError, FORMAT_VERSION, FRAME_MAGIC, FRAME_PRELUDE_LEN, MAGIC, MAX_FRAME_LEN,
    MAX_HEADER_LEN, PREAMBLE_LEN,
};
use crate::{Event, Header, Position};

/// Reads a recording frame by frame.
pub struct RecordingReader<R: Read> {
    input: R,
    /// Bytes consumed so far: the offset in the file of the next byte.
    offset: u64,
    frames: u64,
    /// The position of the last event read, which the next may not precede.
    last: Option<Position>,
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
            frames: 0,
            last: None,
            done: false,
        };
        let header = reader.read_header()?;
        Ok((reader, header))
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
        if got < PREAMBLE_LEN {
            return Err(FormatError::PreambleCut {
                offset: self.offset,
            });
        }
        let version = field(&preamble, 8);
        if version != FORMAT_VERSION {
            return Err(FormatError::UnsupportedVersion { offset: 8, version });
        }
        let len = field(&preamble, 12);
        if len > MAX_HEADER_LEN {
            return Err(FormatError::HeaderTooLarge { offset: 12, len });
        }
        let body_at = self.offset;
        // Body and checksum; at most 1 MiB + 20 bytes, so nothing overflows.
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
        codec(u64::from(len))
            .deserialize(body)
            .map_err(|e| FormatError::HeaderUndecodable {
                offset: body_at,
                reason: e.to_string(),
            })
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

/// The little-endian u32 at `at` in a preamble or frame prelude (whose
/// fixed sizes keep `at + 4` in bounds).
fn field(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}
