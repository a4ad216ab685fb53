//! Reading a recording for `replay` and `inspect`, in memory bounded by one
//! frame however long the recording is.
//!
//! A recording is read twice. The first pass ([`Scan`]) checks every frame
//! (checksums, decoding, order, the format's rules) and keeps only what a
//! replay must know before it starts: the header, how the run ended, and
//! where the file is cut short, so that a damaged recording is refused
//! before anything runs. The second pass ([`EventStream`]) hands the events
//! to the replay one frame at a time.

use crate::SessionError;
use rewind_replay::format::RecordingReader;
use rewind_replay::{Event, FormatError, Header};
use std::collections::VecDeque;
use std::fs::File;
use std::io::BufReader;
use std::path::Path;

/// A recording file being read.
pub type Reader = RecordingReader<BufReader<File>>;

/// Opens `path` and reads its header, refusing a recording made by another
/// machine model before anything else is read.
pub fn open(path: &Path) -> Result<(Reader, Header), SessionError> {
    let file = File::open(path).map_err(|source| {
        SessionError::Message(
            FormatError::Open {
                path: path.to_owned(),
                source,
            }
            .to_string(),
        )
    })?;
    let (reader, header) = RecordingReader::open(BufReader::new(file)).map_err(message)?;
    check_model(reader.model(), &header.writer, "recording", "replay")?;
    Ok((reader, header))
}

/// Refuses a file whose machine model is not this Rewind's: it would
/// behave differently, which is no divergence of the guest's.
pub fn check_model(model: u32, writer: &str, noun: &str, verb: &str) -> Result<(), SessionError> {
    let ours = rewind_machine::MODEL_VERSION;
    if model == ours {
        return Ok(());
    }
    Err(SessionError::Message(format!(
        "the {noun} was made by Rewind {writer}, whose machine is model {model}; this Rewind ({}) runs machine model {ours}, which behaves differently, so it cannot {verb} it: use the Rewind that made it",
        env!("CARGO_PKG_VERSION")
    )))
}

fn message(e: FormatError) -> SessionError {
    SessionError::Message(e.to_string())
}

/// What the first pass over a recording found.
pub struct Scan {
    pub header: Header,
    /// The event that closes a complete run.
    pub end: Option<Event>,
    /// Where the file is cut short inside a frame: everything before
    /// replays.
    pub truncated_at: Option<u64>,
    pub file_size: u64,
    pub frames: u64,
}

/// Reads the whole recording at `path`, checking every frame and showing
/// each event to `each` (then dropping it).
pub fn scan(path: &Path, mut each: impl FnMut(&Event)) -> Result<Scan, SessionError> {
    let (mut reader, header) = open(path)?;
    let mut end = None;
    let truncated_at = loop {
        match reader.next_frame() {
            Ok(Some(events)) => {
                for event in &events {
                    each(event);
                }
                if let Some(last @ Event::End { .. }) = events.into_iter().last() {
                    end = Some(last);
                }
            }
            Ok(None) => break None,
            Err(FormatError::Truncated { offset, .. }) => break Some(offset),
            Err(e) => return Err(message(e)),
        }
    };
    Ok(Scan {
        header,
        end,
        truncated_at,
        file_size: reader.offset(),
        frames: reader.frames(),
    })
}

/// The events of a recording, read a frame at a time as the replay needs
/// them. The file was scanned before, so an error here means it changed
/// since: it ends the replay like damage found by the scan would have.
pub struct EventStream {
    reader: Reader,
    /// The rest of the frame read last.
    queue: VecDeque<Event>,
}

impl EventStream {
    /// The events after `reader`'s header and packed images.
    pub fn new(reader: Reader) -> EventStream {
        EventStream {
            reader,
            queue: VecDeque::new(),
        }
    }

    /// The next event, reading the next frame if the last one is used up.
    /// None at the end of the complete frames.
    pub fn front(&mut self) -> Result<Option<&Event>, String> {
        while self.queue.is_empty() {
            match self.reader.next_frame() {
                Ok(Some(events)) => self.queue.extend(events),
                Ok(None) | Err(FormatError::Truncated { .. }) => return Ok(None),
                Err(e) => return Err(format!("the recording changed while it was replayed: {e}")),
            }
        }
        Ok(self.queue.front())
    }

    /// The event after the front one.
    pub fn peek_second(&mut self) -> Result<Option<&Event>, String> {
        while self.queue.len() < 2 {
            match self.reader.next_frame() {
                Ok(Some(events)) => self.queue.extend(events),
                Ok(None) | Err(FormatError::Truncated { .. }) => break,
                Err(e) => return Err(format!("the recording changed while it was replayed: {e}")),
            }
        }
        Ok(self.queue.get(1))
    }

    /// Takes the event [`EventStream::front`] returned.
    pub fn pop(&mut self) -> Option<Event> {
        self.queue.pop_front()
    }
}
