//! Writing a recording as the run goes.

use std::io::{self, Write};

use bincode::Options;

use super::{
    codec, FORMAT_VERSION, FRAME_MAGIC, FRAME_PRELUDE_LEN, FRAME_TARGET_LEN, MAGIC, MAX_FRAME_LEN,
    MAX_HEADER_LEN, MAX_PACKED_IMAGES, PREAMBLE_LEN, ZSTD_LEVEL,
};
use crate::{Event, Header, Position};

/// The bytes bincode puts before the elements of a `Vec`: its length.
const VEC_LEN_PREFIX: u64 = 8;

/// Appends a recording to `out`: the header at once, then events in frames.
///
/// Events are buffered until [`flush_frame`](Self::flush_frame), or until
/// they reach [`FRAME_TARGET_LEN`](super::FRAME_TARGET_LEN) bytes; dropping
/// the writer without [`finish`](Self::finish) loses the buffered ones.
pub struct RecordingWriter<W: Write> {
    out: W,
    compressor: zstd::bulk::Compressor<'static>,
    events: Vec<Event>,
    /// The encoded size of `events`, without the `Vec`'s length prefix.
    encoded_len: u64,
    /// The position of the last event pushed, which the next may not precede.
    last: Option<Position>,
    written: u64,
    /// A write failed: the file may end in part of a frame, and anything
    /// appended after it would be unreadable, so nothing more is written.
    failed: bool,
}

impl<W: Write> RecordingWriter<W> {
    /// Writes the preamble (with the writer's machine `model` version) and
    /// `header` to `out`, then the images `header.packed` lists: `images`
    /// yields, for each in turn, exactly its stored bytes (as
    /// [`crate::packed::pack`] made them).
    pub fn create(
        mut out: W,
        model: u32,
        header: &Header,
        images: &mut [&mut dyn io::Read],
    ) -> io::Result<Self> {
        if images.len() != header.packed.len() || header.packed.len() > MAX_PACKED_IMAGES {
            return Err(invalid(format!(
                "the header lists {} packed images but {} were given (at most {MAX_PACKED_IMAGES})",
                header.packed.len(),
                images.len()
            )));
        }
        let body = codec(u64::from(MAX_HEADER_LEN))
            .serialize(header)
            .map_err(|e| invalid(format!("the recording header does not encode: {e}")))?;
        // The limit above keeps the body within the 1 MiB a reader accepts.
        let body_len = u32::try_from(body.len()).map_err(|_| invalid("header too large".into()))?;
        let mut bytes = Vec::with_capacity(PREAMBLE_LEN + body.len() + 4);
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes.extend_from_slice(&model.to_le_bytes());
        bytes.extend_from_slice(&body_len.to_le_bytes());
        let preamble_crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&preamble_crc.to_le_bytes());
        bytes.extend_from_slice(&body);
        bytes.extend_from_slice(&crc32fast::hash(&body).to_le_bytes());
        out.write_all(&bytes)?;
        let mut written = bytes.len() as u64;
        for (image, stored) in header.packed.iter().zip(images.iter_mut()) {
            let mut stored = <&mut dyn io::Read as io::Read>::take(&mut **stored, image.stored);
            let copied = io::copy(&mut stored, &mut out)?;
            if copied != image.stored {
                return Err(invalid(format!(
                    "a packed image gave {copied} stored bytes where its header says {}",
                    image.stored
                )));
            }
            written += copied;
        }
        out.flush()?;
        Ok(RecordingWriter {
            out,
            compressor: zstd::bulk::Compressor::new(ZSTD_LEVEL)?,
            events: Vec::new(),
            encoded_len: 0,
            last: None,
            written,
            failed: false,
        })
    }

    /// Buffers `event`, writing a frame if the buffer has grown large enough.
    ///
    /// Fails without buffering it if `event` precedes the last event pushed
    /// or is too large for any frame, which readers would reject.
    pub fn push(&mut self, event: Event) -> io::Result<()> {
        self.check_usable()?;
        let at = event.at();
        if let Some(last) = self.last.filter(|last| at < *last) {
            return Err(invalid(format!(
                "a recording's events must be in order, but an event at round {} comes after one at round {}",
                at.round, last.round
            )));
        }
        let room = u64::from(MAX_FRAME_LEN) - VEC_LEN_PREFIX;
        let len = codec(room)
            .serialized_size(&event)
            .map_err(|e| invalid(format!("a recording event does not encode: {e}")))?;
        if self.encoded_len + len > room {
            self.flush_frame()?;
        }
        self.events.push(event);
        self.encoded_len += len;
        self.last = Some(at);
        if self.encoded_len >= FRAME_TARGET_LEN {
            self.flush_frame()?;
        }
        Ok(())
    }

    /// Writes the buffered events as one frame, if there are any, and
    /// flushes `out`.
    pub fn flush_frame(&mut self) -> io::Result<()> {
        self.check_usable()?;
        if self.events.is_empty() {
            return Ok(());
        }
        let encoded = codec(u64::from(MAX_FRAME_LEN))
            .serialize(&self.events)
            .map_err(|e| invalid(format!("recording events do not encode: {e}")))?;
        let compressed = self.compressor.compress(&encoded)?;
        // Only an event of nearly 64 MiB gets here; `push` keeps the
        // encoding itself within the limit.
        let too_large = || invalid("a recording frame is larger than 64 MiB".into());
        let len = u32::try_from(encoded.len()).map_err(|_| too_large())?;
        let compressed_len = u32::try_from(compressed.len()).map_err(|_| too_large())?;
        if compressed_len > MAX_FRAME_LEN {
            return Err(too_large());
        }
        let mut frame = Vec::with_capacity(FRAME_PRELUDE_LEN + compressed.len());
        frame.extend_from_slice(&FRAME_MAGIC);
        frame.extend_from_slice(&compressed_len.to_le_bytes());
        frame.extend_from_slice(&len.to_le_bytes());
        frame.extend_from_slice(&crc32fast::hash(&compressed).to_le_bytes());
        let prelude_crc = crc32fast::hash(&frame);
        frame.extend_from_slice(&prelude_crc.to_le_bytes());
        frame.extend_from_slice(&compressed);
        // One write for the whole frame, so that a crash leaves at most this
        // frame incomplete, at the end of the file.
        if let Err(e) = self.out.write_all(&frame).and_then(|()| self.out.flush()) {
            self.failed = true;
            return Err(e);
        }
        self.written += frame.len() as u64;
        self.events.clear();
        self.encoded_len = 0;
        Ok(())
    }

    /// Events pushed but not yet written.
    pub fn buffered_events(&self) -> usize {
        self.events.len()
    }

    /// Bytes written to `out` so far: the size of the file.
    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// Writes the buffered events and returns `out`.
    pub fn finish(mut self) -> io::Result<W> {
        self.flush_frame()?;
        Ok(self.out)
    }

    fn check_usable(&self) -> io::Result<()> {
        if self.failed {
            return Err(io::Error::other(
                "an earlier write of this recording failed, so nothing more can be appended",
            ));
        }
        Ok(())
    }
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, message)
}
