//! `rewind replay`: rebuilds the machine a recording names and runs it
//! again with the recorded inputs instead of the host's, delivered at the
//! same round boundaries. The guest's console output appears again; nothing
//! is read from the host. Every recorded checkpoint is compared with the
//! replay's own, and the run stops at the first that differs, naming what
//! differs.

use crate::checkpoint::{self, Checkpointer};
use crate::console::{Backend, Command, Consoles};
use crate::drive::{drive, Ending, Inputs, Services};
use crate::images::{self, Origin};
use crate::report::{hex, ReplayReport, Report};
use crate::run::{machine_config, DiskBackend, Shape};
use crate::CliError;
use rewind_machine::virtio::blk::BlockBackend;
use rewind_machine::virtio::rng::Entropy;
use rewind_machine::virtio::VirtioConfig;
use rewind_machine::{Machine, StopReason};
use rewind_replay::format::{read_all, Recording};
use rewind_replay::{EndPhase, EntropyRef, Event, Port, RecordedConfig};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The options of `rewind replay`.
pub struct ReplayArgs {
    pub recording: PathBuf,
    /// A snapshot taken while the recording was made: start there.
    pub from: Option<PathBuf>,
    pub report: Option<PathBuf>,
    pub serial: Backend,
    pub hvc: Backend,
    /// `--overlay-dir`.
    pub overlay_dir: Option<PathBuf>,
}

pub fn replay(args: ReplayArgs) -> Result<ExitCode, CliError> {
    #[allow(clippy::disallowed_types)] // wall time for the report only
    let started = std::time::Instant::now();
    let recording = read_all(&args.recording).map_err(|e| CliError::Message(e.to_string()))?;
    if let Some(offset) = recording.truncated_at {
        eprintln!(
            "rewind: the recording is cut short at byte {offset} of {}; replaying its complete part",
            recording.file_size
        );
    }
    let config = &recording.header.config;
    let overlay_dir = crate::overlay_dir::overlay_dir(args.overlay_dir.as_deref())?;
    let mut machine = match &args.from {
        None => build_machine(config, &[], Origin::Recording, &overlay_dir)?,
        Some(path) => from_snapshot(path, &recording, &overlay_dir)?,
    };
    let mut inputs = Replayer::new(&recording, &mut machine);
    let ending = {
        let hvc = config.hvc.then_some(&args.hvc);
        let mut consoles = Consoles::output_only(&args.serial, hvc).map_err(CliError::Message)?;
        drive(
            &mut machine,
            &mut consoles,
            &mut inputs,
            &mut Services::default(),
        )
    };
    let (reason, code) = ending.reason_and_code();
    // Reaching the recorded end compared the machine's hash with the
    // recorded one already; hashing all of RAM again is not needed.
    let state_hash = match inputs.end_hash {
        Some(hash) if inputs.reached_end => hash,
        _ => machine.state_hash(),
    };
    let matches = inputs
        .end_hash
        .map(|h| h == state_hash && inputs.reached_end);
    if let Some(path) = &args.report {
        let report = Report {
            exit_reason: reason,
            exit_code: code,
            instructions_retired: machine.instret(),
            guest_time_ns: machine.guest_time_ns(),
            wall_seconds: started.elapsed().as_secs_f64(),
            state_hash: hex(&state_hash),
            replay: Some(ReplayReport {
                recorded_state_hash: inputs.end_hash.map(|h| hex(&h)),
                state_hash_matches: matches,
                checkpoints_verified: inputs.verified,
                truncated_at: recording.truncated_at,
            }),
        };
        report.write(path).map_err(CliError::Message)?;
    }
    let icount = machine.icount();
    let verified = inputs.verified;
    let hash = hex(&state_hash);
    if inputs.reached_end {
        eprintln!(
            "\nrewind: replayed {icount} instructions to the recorded end ({reason}), {verified} checkpoints verified; state hash {hash} matches the recording"
        );
    } else if ending == Ending::RecordingCut {
        eprintln!(
            "\nrewind: replayed the recording's complete part: {icount} instructions, {verified} checkpoints verified; state hash {hash}"
        );
    } else if let Some(message) = ending.message() {
        eprintln!("\nrewind: {message}");
    }
    Ok(ExitCode::from(code))
}

/// A disk's overlay as a snapshot chain holds it: whole, as the last
/// snapshot that holds it whole saved it, then the blocks each later one
/// changed, in order; each with the file it is in.
#[derive(Clone, Debug)]
pub struct SavedOverlay<'a> {
    pub whole: (&'a Path, &'a [u8]),
    pub changes: Vec<(&'a Path, &'a [u8])>,
}

/// The machine of a recording or snapshot, from files checked against its
/// hashes; disk `n` starts from the saved overlay `overlays[n]` if any, and
/// keeps its overlay in `overlay_dir`. A snapshot's machine starts with RAM
/// all zero, since the snapshot replaces it: loading the boot images would
/// be work undone at once.
pub fn build_machine(
    config: &RecordedConfig,
    overlays: &[Option<SavedOverlay<'_>>],
    origin: Origin,
    overlay_dir: &Path,
) -> Result<Machine, CliError> {
    check_recorded_mem(config, origin)?;
    let boot = images::from_recording(
        &config.firmware,
        &config.kernel,
        config.initrd.as_ref(),
        &config.bootargs,
        config.default_guest,
        origin,
    )?;
    let mut disks: Vec<Box<dyn BlockBackend>> = Vec::new();
    for (n, recorded) in config.disks.iter().enumerate() {
        let mut disk = open_disk(n, recorded, origin, overlay_dir)?;
        let failed = |e: rewind_disk::DiskError| CliError::Message(format!("disk {n}: {e}"));
        match overlays.get(n).and_then(Option::as_ref) {
            Some(saved) => {
                let (file, whole) = saved.whole;
                disk.read_overlay(&mut &whole[..], whole.len() as u64, file)
                    .map_err(failed)?;
                for &(file, changes) in &saved.changes {
                    disk.apply_overlay_changes(&mut &changes[..], changes.len() as u64, file)
                        .map_err(failed)?;
                }
            }
            None => {
                if let Some(r) = &recorded.overlay {
                    let bytes = crate::images::checked_image("overlay", r, origin)?.bytes;
                    disk.read_overlay(&mut &bytes[..], bytes.len() as u64, Path::new(&r.path))
                        .map_err(failed)?;
                }
            }
        }
        disks.push(Box::new(DiskBackend(disk)));
    }
    let shape = Shape {
        mem_size: config.mem_size,
        harts: config.harts as usize,
        rtc_epoch_ns: config.rtc_epoch_ns,
        seed: config.seed,
        virtio: VirtioConfig {
            rng: config.entropy.map(|e| match e {
                EntropyRef::Seeded => Entropy::Seeded,
                EntropyRef::Host => Entropy::Host,
            }),
            net_macs: config.nets.iter().map(|n| n.mac).collect(),
            hvc: config.hvc,
        },
    };
    let config = machine_config(&boot, shape)?;
    Ok(match origin {
        Origin::Recording => Machine::with_disks(config, disks)?,
        Origin::Snapshot => Machine::with_zero_ram(config, disks)?,
    })
}

/// Refuses a configuration whose RAM size `--mem` would not accept.
pub fn check_recorded_mem(config: &RecordedConfig, origin: Origin) -> Result<(), CliError> {
    crate::size::check_mem_size(config.mem_size).map_err(|why| {
        CliError::Message(format!(
            "the {}'s RAM size of {} bytes {why}",
            origin.noun(),
            config.mem_size
        ))
    })
}

/// The machine of a snapshot taken during this recording.
fn from_snapshot(
    path: &Path,
    recording: &Recording,
    overlay_dir: &Path,
) -> Result<Machine, CliError> {
    let chain = crate::snapshot::open_chain(path)?;
    let restored = crate::snapshot::restore(&chain, overlay_dir)?;
    let header = crate::snapshot::header_hash(&recording.header);
    match &restored.recording {
        Some(position) if position.header_blake3 == header => Ok(restored.machine),
        Some(_) => Err(CliError::Message(format!(
            "the snapshot {} was taken during another recording",
            path.display()
        ))),
        None => Err(CliError::Message(format!(
            "the snapshot {} was not taken during a recording, so replay cannot start from it",
            path.display()
        ))),
    }
}

/// Opens disk `n` of a recording over a fresh overlay in `overlay_dir` (a
/// replay never writes into an image), checking that its base is the one
/// recorded.
fn open_disk(
    n: usize,
    recorded: &rewind_replay::DiskRef,
    origin: Origin,
    overlay_dir: &Path,
) -> Result<rewind_disk::Disk, CliError> {
    let noun = origin.noun();
    let spec = rewind_disk::DiskSpec {
        path: PathBuf::from(&recorded.path),
        read_only: recorded.read_only,
        persist: false,
    };
    let mut disk = rewind_disk::Disk::open_in(&spec, overlay_dir)
        .map_err(|e| CliError::Message(format!("disk {n} of the {noun} cannot be opened: {e}")))?;
    if disk.size() != recorded.size || disk.base_content_hash()? != recorded.base_blake3 {
        let path = Path::new(&recorded.path).display();
        return Err(CliError::Message(if recorded.persist {
            format!(
                "disk {n} ({path}) was opened with persist and has changed since (the run wrote into it); restore the image the {noun} started from"
            )
        } else {
            format!("disk {n} ({path}) is not the image the {noun} was made with (its content hash differs)")
        }));
    }
    Ok(disk)
}

/// Inputs from a recording.
struct Replayer {
    events: VecDeque<Event>,
    checkpoints: Checkpointer,
    /// Checkpoints that matched.
    verified: u64,
    /// The state hash the recorded run ended with.
    end_hash: Option<[u8; 32]>,
    /// The replay reached the recorded end (rather than diverging or being
    /// stopped by the user).
    reached_end: bool,
}

impl Replayer {
    fn new(recording: &Recording, machine: &mut Machine) -> Self {
        // A machine restored from a snapshot has taken every event up to its
        // round already.
        let done = machine.rounds;
        let start = recording
            .events
            .iter()
            .position(|e| e.at().round > done)
            .unwrap_or(recording.events.len());
        Replayer {
            events: recording.events[start..].iter().cloned().collect(),
            checkpoints: Checkpointer::new(machine, recording.header.checkpoint_every),
            verified: 0,
            reached_end: false,
            end_hash: match recording.end() {
                Some(Event::End { state_hash, .. }) => Some(*state_hash),
                _ => None,
            },
        }
    }

    /// The next event, if the machine takes it at this boundary.
    fn next_here(&self, machine: &Machine) -> Option<&Event> {
        self.events
            .front()
            .filter(|e| e.at().round == machine.rounds)
    }

    /// Checks that the machine is where the recording says it took the next
    /// event, and that it did not pass an event by.
    fn check_position(&self, machine: &Machine) -> Result<(), Ending> {
        let Some(event) = self.events.front() else {
            return Ok(());
        };
        let at = event.at();
        let icount = machine.icount();
        if at.round < machine.rounds {
            return Err(Ending::Diverged(format!(
                "the recording has {} at instruction {}, which the replay passed (it is at instruction {icount})",
                event.kind(),
                at.icount
            )));
        }
        if at.round == machine.rounds && at.icount != icount {
            return Err(Ending::Diverged(format!(
                "at round {} the recording had retired {} instructions and the replay {icount}",
                at.round, at.icount
            )));
        }
        Ok(())
    }

    /// Compares the checkpoint the recording has here, if any.
    fn verify_checkpoint(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        self.check_position(machine)?;
        let Some(Event::Checkpoint { .. }) = self.next_here(machine) else {
            return Ok(());
        };
        let Some(Event::Checkpoint { at, state }) = self.events.pop_front() else {
            unreachable!("peeked a checkpoint");
        };
        let taken = self.checkpoints.take(machine);
        if let Some(what) = checkpoint::compare(&state, &taken, &self.checkpoints) {
            return Err(Ending::Diverged(format!(
                "at instruction {} (guest time {} ns): {what}",
                at.icount, state.guest_ns
            )));
        }
        self.verified += 1;
        Ok(())
    }

    /// The recorded run ends at this boundary in `phase` (after an optional
    /// final checkpoint).
    fn ends_here(&self, machine: &Machine, phase: EndPhase) -> bool {
        let mut here = self
            .events
            .iter()
            .take_while(|e| e.at().round == machine.rounds)
            .skip_while(|e| matches!(e, Event::Checkpoint { .. }));
        matches!(here.next(), Some(Event::End { phase: p, .. }) if *p == phase)
    }

    /// Ends the replay as the recording does here; `natural` is how the
    /// replayed machine itself ended, if it did.
    fn end_as_recorded(&mut self, machine: &mut Machine, natural: Option<Ending>) -> Ending {
        if let Err(diverged) = self.verify_checkpoint(machine) {
            return diverged;
        }
        let Some(Event::End {
            reason, state_hash, ..
        }) = self.events.pop_front()
        else {
            unreachable!("ends_here saw the end");
        };
        let recorded = match reason.as_str() {
            "quit" => Some(Ending::Quit),
            "interrupted" => Some(Ending::Interrupted),
            "deadlock" => Some(Ending::Stopped(StopReason::Deadlock)),
            _ => None,
        };
        let ending = match (natural, recorded) {
            (Some(n), _) if n.reason_and_code().0 == reason => n,
            (None, Some(r)) => r,
            (Some(n), _) => {
                return Ending::Diverged(format!(
                    "at instruction {} the replay ended ({}) where the recording ended ({reason})",
                    machine.icount(),
                    n.reason_and_code().0
                ))
            }
            (None, None) => {
                return Ending::Diverged(format!(
                    "the recorded run ended ({reason}) at instruction {}, but the replay goes on",
                    machine.icount()
                ))
            }
        };
        if machine.state_hash() != state_hash {
            return Ending::Diverged(format!(
                "the final state at instruction {} differs from the recording's",
                machine.icount()
            ));
        }
        self.reached_end = true;
        ending
    }
}

impl Inputs for Replayer {
    fn boundary(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        self.verify_checkpoint(machine)?;
        if self.events.is_empty() {
            // A complete recording ends with its End event, which stops the
            // replay before this; without one, the recording was cut short.
            return Err(Ending::RecordingCut);
        }
        Ok(())
    }

    fn after_round(&mut self, machine: &mut Machine) {
        // What the guest sends goes nowhere: the recorded replies follow.
        for i in 0..machine.config.virtio.net_macs.len() {
            machine.take_net_frames(i);
        }
    }

    fn deliver(&mut self, machine: &mut Machine, _: &mut Consoles) -> Result<bool, Ending> {
        self.check_position(machine)?;
        if self.ends_here(machine, EndPhase::BeforeInput) {
            return Err(self.end_as_recorded(machine, None));
        }
        let mut delivered = false;
        while let Some(event) = self.next_here(machine) {
            let (at, short) = match event {
                Event::Console { at, port, bytes } => {
                    let taken = match port {
                        Port::Serial => machine.push_console_input(bytes),
                        Port::Hvc => machine.push_hvc_input(bytes),
                    };
                    (
                        *at,
                        (taken != bytes.len()).then(|| {
                            format!(
                                "the console took {taken} of the {} recorded bytes",
                                bytes.len()
                            )
                        }),
                    )
                }
                Event::Packet { at, device, frame } => {
                    let ok = (*device as usize) < machine.config.virtio.net_macs.len()
                        && machine.push_net_frame(*device as usize, frame);
                    (
                        *at,
                        (!ok).then(|| {
                            format!("network device {device} could not take the recorded frame")
                        }),
                    )
                }
                Event::Entropy { at, bytes } => {
                    let taken = machine.push_entropy(bytes);
                    (
                        *at,
                        (taken != bytes.len()).then(|| {
                            format!(
                                "the entropy device took {taken} of the {} recorded bytes",
                                bytes.len()
                            )
                        }),
                    )
                }
                // Idle skips, checkpoints and the end have their own hooks.
                _ => break,
            };
            if let Some(what) = short {
                return Err(Ending::Diverged(format!(
                    "at instruction {}: {what}",
                    at.icount
                )));
            }
            self.events.pop_front();
            delivered = true;
        }
        Ok(delivered)
    }

    fn idle(
        &mut self,
        machine: &mut Machine,
        _: &mut Consoles,
        wake: u64,
        _: &mut Vec<Command>,
    ) -> Result<(), Ending> {
        if let Some(Event::Skip { to_ns, .. }) = self.next_here(machine) {
            let to_ns = *to_ns;
            self.events.pop_front();
            machine.skip_to(to_ns);
        } else if wake != u64::MAX {
            machine.skip_to(wake);
        } else if self.ends_here(machine, EndPhase::AfterInput) {
            return Err(self.end_as_recorded(machine, None));
        }
        // Otherwise the recorded run was waiting for input here.
        Ok(())
    }

    fn after_boundary(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        if self.ends_here(machine, EndPhase::AfterInput) {
            return Err(self.end_as_recorded(machine, None));
        }
        Ok(())
    }

    fn finish(&mut self, machine: &mut Machine, phase: EndPhase, ending: Ending) -> Ending {
        if self.ends_here(machine, phase) {
            return self.end_as_recorded(machine, Some(ending));
        }
        if ending == Ending::Interrupted || ending == Ending::Quit {
            // The user stopped the replay.
            return ending;
        }
        Ending::Diverged(format!(
            "the replay ended ({}) at instruction {}, but the recording goes on",
            ending.reason_and_code().0,
            machine.icount()
        ))
    }
}
