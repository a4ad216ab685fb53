//! `rewind replay`: rebuilds the machine a recording names and runs it
//! again with the recorded inputs instead of the host's, delivered at the
//! same round boundaries. The guest's console output appears again; nothing
//! is read from the host. Every recorded checkpoint is compared with the
//! replay's own, and the run stops at the first that differs, naming what
//! differs.

use crate::console::{Backend, Consoles};
use crate::report::{hex, ReplayReport, Report};
use crate::CliError;
use crate::EngineArgs;
use rewind_machine::Machine;
use rewind_replay::{Event, Header};
use rewind_session::build::build_machine;
use rewind_session::drive::{drive, Ending, NoServices};
use rewind_session::images::Origin;
use rewind_session::packed::Unpacked;
use rewind_session::recording::{self, EventStream, Scan};
use rewind_session::replayer::Replayer;
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
    /// `--stop-at`.
    pub stop_at: Option<u64>,
    /// `--overlay-dir`.
    pub overlay_dir: Option<PathBuf>,
    pub engine: EngineArgs,
}

/// A replay ready to run: the machine built (or restored), the recording
/// checked, the events ready to stream.
struct Prepared {
    machine: Machine,
    inputs: Replayer,
    scan: Scan,
    hvc: bool,
    stop_at: Option<u64>,
}

impl Prepared {
    /// The machine's disks keep their overlays in `overlay_dir`.
    fn new(
        recording: &Path,
        from: Option<&Path>,
        stop_at: Option<u64>,
        overlay_dir: &Path,
        engine: EngineArgs,
    ) -> Result<Prepared, CliError> {
        let (mut machine, scan, (reader, header)) =
            machine_for(recording, from, overlay_dir, engine)?;
        let config = &header.config;
        if let Some(at) = stop_at.filter(|&at| at < machine.position()) {
            return Err(CliError::Message(format!(
                "--stop-at {at} is before the snapshot the replay starts from, which was taken at position {}",
                machine.position()
            )));
        }
        let stop_at = replay_stop(&scan, stop_at);
        let inputs = Replayer::new(
            EventStream::new(reader),
            &mut machine,
            header.checkpoint_every,
        )
        .map_err(|ending| CliError::Message(ending.message().unwrap_or_default()))?;
        Ok(Prepared {
            machine,
            inputs,
            scan,
            hvc: config.hvc,
            stop_at,
        })
    }

    fn run(&mut self, consoles: &mut Consoles) -> Ending {
        drive(
            &mut self.machine,
            consoles,
            &mut self.inputs,
            &mut NoServices,
            self.stop_at,
            None,
        )
    }
}

/// The machine `recording` was made on, at power-on or restored from the
/// snapshot `from` taken while it was made (disks keep their overlays in
/// `overlay_dir`); what a first pass over the whole file found (a damaged
/// recording is refused before anything runs); and the recording opened
/// again, past its header and packed images, for its events.
pub(crate) fn machine_for(
    recording: &Path,
    from: Option<&Path>,
    overlay_dir: &Path,
    engine: EngineArgs,
) -> Result<(Machine, Scan, (recording::Reader, Header)), CliError> {
    let scan = recording::scan(recording, |_| {})?;
    rewind_session::build::check_config(&scan.header.config, Origin::Recording)?;
    let (mut reader, header) = recording::open(recording)?;
    let unpacked = Unpacked::from_recording(&mut reader, &header.config)?;
    let machine = match from {
        None => build_machine(
            &header.config,
            &[],
            Origin::Recording,
            &unpacked,
            overlay_dir,
        )?,
        Some(path) => from_snapshot(path, &header, &unpacked, overlay_dir)?,
    };
    let mut machine = machine;
    engine.apply(&mut machine)?;
    Ok((machine, scan, (reader, header)))
}

/// Replays `recording` (up to `stop_at`, if given) with no consoles,
/// printing nothing: how fuzz targets and tests drive a replay in-process.
/// Returns how it ended and the final state hash.
pub fn replay_silently(
    recording: &Path,
    stop_at: Option<u64>,
) -> Result<(Ending, [u8; 32]), CliError> {
    let overlay_dir = std::env::temp_dir();
    let mut prepared = Prepared::new(
        recording,
        None,
        stop_at,
        &overlay_dir,
        EngineArgs::default(),
    )?;
    let ending = prepared.run(&mut Consoles::none());
    Ok((ending, prepared.machine.state_hash()))
}

pub fn replay(args: ReplayArgs) -> Result<ExitCode, CliError> {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)] // wall time for the report only
    let started = std::time::Instant::now();
    let overlay_dir = rewind_session::overlay_dir::overlay_dir(args.overlay_dir.as_deref())?;
    let mut prepared = Prepared::new(
        &args.recording,
        args.from.as_deref(),
        args.stop_at,
        &overlay_dir,
        args.engine,
    )?;
    let ending = {
        let hvc = prepared.hvc.then_some(&args.hvc);
        let mut consoles = Consoles::output_only(&args.serial, hvc).map_err(CliError::Message)?;
        prepared.run(&mut consoles)
    };
    let Prepared {
        machine,
        inputs,
        scan,
        ..
    } = prepared;
    let end_hash = match &scan.end {
        Some(Event::End { state_hash, .. }) => Some(*state_hash),
        _ => None,
    };
    let (reason, code) = ending.reason_and_code();
    // Reaching the recorded end compared the machine's hash with the
    // recorded one already; hashing all of RAM again is not needed.
    let state_hash = match end_hash {
        Some(hash) if inputs.reached_end => hash,
        _ => machine.state_hash(),
    };
    // A replay the user stopped early has nothing to compare with the
    // recorded end.
    let stopped_early = !inputs.reached_end
        && matches!(ending, Ending::StopAt | Ending::Quit | Ending::Interrupted);
    let matches = end_hash
        .filter(|_| !stopped_early)
        .map(|h| h == state_hash && inputs.reached_end);
    if let Some(path) = &args.report {
        let report = Report {
            exit_reason: reason,
            exit_code: code,
            position: machine.position(),
            instructions_retired: machine.instret(),
            guest_time_ns: machine.guest_time_ns(),
            wall_seconds: started.elapsed().as_secs_f64(),
            state_hash: hex(&state_hash),
            seed: scan.header.config.seed,
            engine: machine.engine().name(),
            translated_instructions: machine.translated_instructions(),
            replay: Some(ReplayReport {
                recorded_state_hash: end_hash.map(|h| hex(&h)),
                state_hash_matches: matches,
                checkpoints_verified: inputs.verified,
                truncated_at: scan.truncated_at,
            }),
        };
        report.write(path).map_err(CliError::Message)?;
    }
    let icount = machine.position();
    let verified = inputs.verified;
    let hash = hex(&state_hash);
    if inputs.reached_end {
        eprintln!(
            "\nrewind: replayed to position {icount}, the recorded end ({reason}), {verified} checkpoints verified; state hash {hash} matches the recording"
        );
    } else if ending == Ending::StopAt {
        eprintln!("\nrewind: stopped at position {icount}, as --stop-at asked; state hash {hash}");
    } else if ending == Ending::RecordingCut {
        if let Some(offset) = scan.truncated_at {
            eprintln!(
                "\nrewind: the recording is cut short at byte {offset} of {}",
                scan.file_size
            );
        }
        eprintln!(
            "rewind: replayed the recording's complete part, to position {icount}, {verified} checkpoints verified; state hash {hash}"
        );
    } else if let Some(message) = ending.message() {
        eprintln!("\nrewind: {message}");
    }
    Ok(ExitCode::from(code))
}

/// Where a replay must stop, inside a round if need be: where the user
/// asks, or where the recorded run stopped (`record --stop-at`), whichever
/// comes first.
fn replay_stop(scan: &Scan, asked: Option<u64>) -> Option<u64> {
    let recorded = match &scan.end {
        Some(Event::End { at, reason, .. }) => {
            if let Some(asked) = asked.filter(|&asked| asked > at.icount) {
                eprintln!(
                    "rewind: the recording ends at position {}, before --stop-at {asked}",
                    at.icount
                );
            }
            (reason == Ending::StopAt.reason_and_code().0).then_some(at.icount)
        }
        _ => None,
    };
    [asked, recorded].into_iter().flatten().min()
}

/// The machine of a snapshot taken during this recording. Files the
/// recording carries serve the snapshot too; its disks keep their overlays
/// in `overlay_dir`.
pub(crate) fn from_snapshot(
    path: &Path,
    header: &Header,
    unpacked: &Unpacked,
    overlay_dir: &Path,
) -> Result<Machine, CliError> {
    let chain = rewind_session::snapshot::open_chain(path)?;
    let restored = rewind_session::snapshot::restore(&chain, unpacked, overlay_dir)?;
    let recording = rewind_session::snapshot::header_hash(header);
    match &restored.recording {
        Some(position) if position.header_blake3 == recording => Ok(restored.machine),
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
