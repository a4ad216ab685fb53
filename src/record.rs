//! `rewind record`: a run whose configuration and inputs are written to a
//! recording as the run goes, with a state checkpoint every N steps.
//!
//! Frames are written at every checkpoint and at least once a second of host
//! time, so a recording cut short by a crash or SIGKILL loses at most the
//! last second and replays up to its last complete frame. (Host time decides
//! only when bytes reach the file, never what the guest sees.)

use crate::checkpoint::Checkpointer;
use crate::drive::Ending;
use crate::images::{BootFiles, Image, Origin};
use crate::packed::{ToPack, Unpacked};
use crate::run::Shape;
use crate::{CliError, RunArgs};
use rewind_machine::virtio::rng::Entropy;
use rewind_machine::Machine;
use rewind_net::NetSpec;
use rewind_replay::format::RecordingWriter;
use rewind_replay::{
    DiskRef, EndPhase, EntropyRef, Event, Header, NetRef, Position, RecordedConfig,
};
use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::time::Duration;

/// How often buffered events reach the file at the latest.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// What `rewind record` adds to the options of `run`.
pub struct RecordOptions {
    pub output: PathBuf,
    pub checkpoint_every: u64,
    /// `--pack`: carry the files the machine is built from inside.
    pub pack: bool,
}

/// The configuration a recording names: the machine's shape, the boot files
/// and disks by content hash, the network devices.
pub fn recorded_config(
    args: &RunArgs,
    boot: &BootFiles,
    shape: &Shape,
    disks: &mut [rewind_disk::Disk],
) -> Result<RecordedConfig, CliError> {
    let mut disk_refs = Vec::new();
    for (n, (disk, spec)) in disks.iter_mut().zip(&args.disks).enumerate() {
        let overlay = match args.load_overlays.iter().rev().find(|(d, _)| *d == n) {
            Some((_, path)) => Some(Image::read("overlay", path)?.reference),
            None => None,
        };
        disk_refs.push(DiskRef {
            overlay,
            path: spec.path.display().to_string(),
            read_only: spec.read_only,
            persist: spec.persist,
            size: disk.size(),
            base_blake3: disk.base_content_hash()?,
        });
    }
    let nets = args
        .nets
        .iter()
        .zip(&shape.virtio.net_macs)
        .map(|(spec, mac)| NetRef {
            mac: *mac,
            backend: match spec {
                NetSpec::User(_) => "user".to_string(),
                NetSpec::Tap(name) => format!("tap={name}"),
            },
        })
        .collect();
    Ok(RecordedConfig {
        mem_size: shape.mem_size,
        harts: shape.harts as u32,
        firmware: boot.firmware_ref(),
        kernel: boot.kernel.reference.clone(),
        initrd: boot.initrd.as_ref().map(|i| i.reference.clone()),
        default_guest: boot.default_guest,
        bootargs: boot.bootargs.clone(),
        rtc_epoch_ns: shape.rtc_epoch_ns,
        seed: shape.seed,
        entropy: shape.virtio.rng.map(|e| match e {
            Entropy::Seeded => EntropyRef::Seeded,
            Entropy::Host => EntropyRef::Host,
        }),
        hvc: shape.virtio.hvc,
        nets,
        disks: disk_refs,
    })
}

/// Writes a recording while the machine runs.
pub struct Recorder {
    writer: Option<RecordingWriter<BufWriter<File>>>,
    path: PathBuf,
    checkpoints: Checkpointer,
    #[allow(clippy::disallowed_types)] // when to write a frame; never guest-visible
    last_flush: std::time::Instant,
    events: u64,
    /// The first failure to write; the run goes on, the recording stops.
    error: Option<String>,
    /// Where the run ended and its final state hash.
    end: Option<(Position, [u8; 32])>,
    header_hash: [u8; 32],
}

impl Recorder {
    /// Creates the recording file and writes its header.
    pub fn create(
        options: &RecordOptions,
        config: RecordedConfig,
        machine: &mut Machine,
    ) -> Result<Recorder, CliError> {
        let path = options.output.clone();
        let fail = |e: std::io::Error| {
            CliError::Message(format!(
                "cannot write the recording {}: {e}",
                path.display()
            ))
        };
        let to_pack = match options.pack {
            true => Some(ToPack::gather(
                &config,
                Origin::Recording,
                &Unpacked::default(),
            )?),
            false => None,
        };
        let file = File::create(&path).map_err(fail)?;
        let header = Header {
            writer: env!("CARGO_PKG_VERSION").to_string(),
            config,
            checkpoint_every: options.checkpoint_every,
            packed: to_pack.as_ref().map(ToPack::list).unwrap_or_default(),
        };
        let mut stored: Vec<&File> = to_pack
            .iter()
            .flat_map(|p| p.images.iter().map(|(_, file)| file))
            .collect();
        let mut images: Vec<&mut dyn std::io::Read> = stored
            .iter_mut()
            .map(|f| f as &mut dyn std::io::Read)
            .collect();
        let writer = RecordingWriter::create(
            BufWriter::new(file),
            rewind_machine::MODEL_VERSION,
            &header,
            &mut images,
        )
        .map_err(fail)?;
        let header_hash = crate::snapshot::header_hash(&header);
        Ok(Recorder {
            writer: Some(writer),
            checkpoints: Checkpointer::new(machine, options.checkpoint_every),
            path,
            #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
            last_flush: std::time::Instant::now(),
            events: 0,
            error: None,
            end: None,
            header_hash,
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
        } else if self.last_flush.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// The run ends: the last event, with the final state hash.
    pub fn end(&mut self, machine: &mut Machine, phase: EndPhase, ending: &Ending) {
        let at = self.position(machine);
        let state_hash = machine.state_hash();
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
