//! Writing a recording while a machine runs: its inputs as they are
//! delivered, a state checkpoint every N steps, and its end.
//!
//! Frames are written at every checkpoint and at least once a second of host
//! time, so a recording cut short by a crash or SIGKILL loses at most the
//! last second and replays up to its last complete frame. (Host time decides
//! only when bytes reach the file, never what the guest sees.)

use crate::drive::Ending;
use crate::verify::Checkpointer;
use crate::SessionError;
use rewind_machine::Machine;
use rewind_replay::format::RecordingWriter;
use rewind_replay::{EndPhase, Event, Header, Position};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Duration;

/// How often buffered events reach the file at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// Round boundaries between looks at the host's clock for that: a round is
/// 10 µs of guest time, and reading the clock at each one was 0.3% of a
/// recorded run.
const CLOCK_EVERY: u32 = 64;

/// What identifies a recording (and so the snapshots taken while it was
/// made): the BLAKE3 of its header.
pub fn header_hash(header: &Header) -> [u8; 32] {
    *blake3::hash(&serde_json::to_vec(header).expect("a header serializes")).as_bytes()
}

/// Writes a recording while the machine runs.
pub struct Recorder {
    writer: Option<RecordingWriter<BufWriter<File>>>,
    path: PathBuf,
    checkpoints: Checkpointer,
    #[allow(clippy::disallowed_types)] // when to write a frame; never guest-visible
    last_flush: std::time::Instant,
    /// Round boundaries since the clock was last read.
    unclocked: u32,
    events: u64,
    /// The first failure to write; the run goes on, the recording stops.
    error: Option<String>,
    /// Where the run ended and its final state hash.
    end: Option<(Position, [u8; 32])>,
    header_hash: [u8; 32],
}

impl Recorder {
    /// Creates the recording file at `path` and writes `header` (whose
    /// `packed` list names `images`, carried in the file in that order).
    pub fn create(
        path: PathBuf,
        header: &Header,
        images: &mut [&mut dyn std::io::Read],
        machine: &mut Machine,
    ) -> Result<Recorder, SessionError> {
        let fail = |e: std::io::Error| {
            SessionError::Message(format!(
                "cannot write the recording {}: {e}",
                path.display()
            ))
        };
        let file = File::create(&path).map_err(fail)?;
        let writer = RecordingWriter::create(
            BufWriter::new(file),
            rewind_machine::MODEL_VERSION,
            header,
            images,
        )
        .map_err(fail)?;
        Ok(Recorder {
            writer: Some(writer),
            checkpoints: Checkpointer::new(machine, header.checkpoint_every),
            path,
            #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
            last_flush: std::time::Instant::now(),
            unclocked: 0,
            events: 0,
            error: None,
            end: None,
            header_hash: header_hash(header),
        })
    }

    /// The file being written.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// Identifies this recording (see [`crate::snapshot::header_hash`]).
    pub fn header_hash(&self) -> [u8; 32] {
        self.header_hash
    }

    /// Where the machine is now.
    pub fn position(&self, machine: &Machine) -> Position {
        Position {
            round: machine.rounds,
            icount: machine.position(),
        }
    }

    /// Adds an event to the recording.
    pub fn push(&mut self, event: Event) {
        self.events += 1;
        if let Some(writer) = &mut self.writer {
            if let Err(e) = writer.push(event) {
                self.fail(e);
            }
        }
    }

    fn fail(&mut self, e: std::io::Error) {
        self.writer = None;
        let message = format!(
            "writing the recording {} failed, so it stops early (it replays up to its last complete frame): {e}",
            self.path.display()
        );
        eprintln!("\r\nrewind: {message}\r");
        self.error.get_or_insert(message);
    }

    /// Writes the buffered events to the file now, so that a reader of the
    /// file (a debugger replaying the past) sees every one.
    pub fn flush(&mut self) {
        #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
        let now = std::time::Instant::now();
        self.last_flush = now;
        if let Some(writer) = &mut self.writer {
            if let Err(e) = writer.flush_frame() {
                self.fail(e);
            }
        }
    }

    /// At every round boundary: a checkpoint when one is due, and the
    /// buffered events to the file when they have waited long enough.
    pub fn boundary(&mut self, machine: &mut Machine) {
        if self.checkpoints.due(machine) {
            let at = self.position(machine);
            let state = self.checkpoints.take(machine).checkpoint;
            self.push(Event::Checkpoint { at, state });
            self.flush();
        } else {
            self.unclocked += 1;
            if self.unclocked >= CLOCK_EVERY {
                self.unclocked = 0;
                if self.last_flush.elapsed() >= FLUSH_EVERY {
                    self.flush();
                }
            }
        }
    }

    /// The run ends: the last event, with the final state hash.
    pub fn end(&mut self, machine: &mut Machine, phase: EndPhase, ending: &Ending) {
        let at = self.position(machine);
        let state_hash = self.checkpoints.state_hash(machine);
        self.push(Event::End {
            at,
            phase,
            guest_ns: machine.guest_time_ns(),
            reason: ending.reason_and_code().0.to_string(),
            state_hash,
        });
        self.end = Some((at, state_hash));
        self.flush();
    }

    /// Finishes the file; returns the summary line (without the state
    /// hash) and the final state hash if the end was recorded, or what went
    /// wrong.
    pub fn close(mut self) -> Result<(String, Option<[u8; 32]>), String> {
        if let Some(writer) = self.writer.take() {
            match writer.finish() {
                Ok(mut out) => {
                    if let Err(e) = std::io::Write::flush(&mut out) {
                        self.fail(e);
                    }
                }
                Err(e) => self.fail(e),
            }
        }
        if let Some(error) = self.error {
            return Err(error);
        }
        let size = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
        let icount = self.end.as_ref().map_or(0, |(at, _)| at.icount);
        let summary = format!(
            "recorded {icount} steps and {} events in {} ({size} bytes)",
            self.events,
            self.path.display()
        );
        Ok((summary, self.end.map(|(_, hash)| hash)))
    }
}
