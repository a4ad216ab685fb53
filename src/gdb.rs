//! `--gdb ADDR`: a gdb server on the machine, before its first step.

use crate::console::{Backend, Consoles};
use crate::services::Services;
use crate::CliError;
use rewind_gdb::{GdbAddress, GdbListener};
use rewind_machine::Machine;
use rewind_replay::EndPhase;
use rewind_session::drive::{drive, Ending, Inputs};
use rewind_session::hex;
use rewind_session::live::LiveInputs;
use rewind_session::timeline::{Timeline, TimelineOptions, DEFAULT_INTERVAL};
use std::path::Path;
use std::process::ExitCode;

/// The debugger's options (run, record, replay and restore).
#[derive(clap::Args, Clone, Default)]
pub struct GdbArgs {
    /// Wait for gdb at ADDR before the first instruction: a port on
    /// 127.0.0.1 (1234), HOST:PORT, or unix:PATH. In gdb-multiarch:
    /// `target remote :1234`. Harts are threads; reverse execution works.
    #[arg(long, value_name = "ADDR", value_parser = parse_address)]
    pub gdb: Option<GdbAddress>,
    /// With --gdb: steps between the checkpoints kept in memory for going
    /// backward [default: 100000000].
    #[arg(long, value_name = "STEPS", requires = "gdb")]
    pub checkpoint_interval: Option<u64>,
    /// With --gdb: memory the checkpoints may use, e.g. 512M [default: 1G].
    #[arg(long, value_name = "SIZE", requires = "gdb", value_parser = parse_memory)]
    pub checkpoint_memory: Option<u64>,
}

fn parse_address(text: &str) -> Result<GdbAddress, String> {
    text.parse()
}

fn parse_memory(text: &str) -> Result<u64, String> {
    rewind_session::size::parse_mem_size(text)
}

impl GdbArgs {
    fn timeline_options(&self) -> TimelineOptions {
        let defaults = TimelineOptions::default();
        TimelineOptions {
            interval: self.checkpoint_interval.unwrap_or(DEFAULT_INTERVAL).max(1),
            checkpoint_memory: self
                .checkpoint_memory
                .map_or(defaults.checkpoint_memory, |m| m as usize),
        }
    }
}

/// Binds the address and says where gdb connects.
fn listen(address: &GdbAddress) -> Result<GdbListener, CliError> {
    let listener = GdbListener::bind(address)
        .map_err(|e| CliError::Message(format!("cannot listen for gdb on {address}: {e}")))?;
    eprintln!(
        "rewind: waiting for gdb on {address}; in gdb-multiarch: target remote {}",
        listener.target_remote()
    );
    Ok(listener)
}

/// What a live run under gdb left when gdb went: the machine and its
/// inputs, and how the run ended.
pub struct Debugged {
    pub machine: Machine,
    pub inputs: LiveInputs,
    pub ending: Ending,
}

/// `run`, `record` or `restore` with `--gdb`: the live run (whose inputs
/// `inputs.recorder` records) as a timeline gdb moves through. When gdb
/// detaches, the run goes on from its live end, without gdb; when gdb
/// kills it, it ends there.
pub fn debug_live(
    machine: Machine,
    inputs: LiveInputs,
    consoles: Consoles,
    services: Services,
    args: &GdbArgs,
    stop_at: Option<u64>,
) -> Result<Debugged, CliError> {
    let address = args.gdb.as_ref().expect("called with --gdb");
    let listener = listen(address)?;
    // The terminal is the guest's console (raw mode): a Ctrl-C while
    // waiting reaches Rewind as a signal, which ends the wait.
    let conn = listener
        .accept_unless(|| consoles.interrupted())
        .map_err(|e| CliError::Message(format!("gdb could not connect on {address}: {e}")))?
        .ok_or_else(|| CliError::Message("interrupted while waiting for gdb".to_string()))?;
    eprint!("rewind: gdb connected\r\n");
    let mut timeline = Timeline::live(
        machine,
        inputs,
        Box::new(consoles),
        Box::new(services),
        args.timeline_options(),
    )?;
    let gdb_ending = rewind_gdb::serve(&mut timeline, conn);
    eprint!(
        "rewind: gdb session ended ({}) at position {}\r\n",
        describe(&gdb_ending),
        timeline.machine().position()
    );
    let (mut machine, mut live) = timeline.into_frontier().map_err(CliError::Message)?;
    let ending = match (live.ended.take(), gdb_ending) {
        (Some(ended), _) => ended,
        (None, rewind_gdb::Ending::Killed) => {
            live.inputs
                .finish(&mut machine, EndPhase::InsideRound, Ending::Quit)
        }
        (None, _) => {
            eprint!("rewind: the run goes on without gdb\r\n");
            drive(
                &mut machine,
                live.consoles.as_mut(),
                &mut live.inputs,
                live.services.as_mut(),
                stop_at,
                None,
            )
        }
    };
    Ok(Debugged {
        machine,
        inputs: live.inputs,
        ending,
    })
}

fn describe(ending: &rewind_gdb::Ending) -> String {
    match ending {
        rewind_gdb::Ending::Detached => "detached".to_string(),
        rewind_gdb::Ending::Killed => "killed".to_string(),
        rewind_gdb::Ending::Disconnected(why) => format!("disconnected: {why}"),
    }
}

/// `rewind replay --gdb`: the recording as a timeline gdb moves through.
pub fn debug_replay(
    recording: &Path,
    from: Option<&Path>,
    overlay_dir: &Path,
    (serial, hvc): (&Backend, &Backend),
    engine: crate::EngineArgs,
    args: &GdbArgs,
) -> Result<ExitCode, CliError> {
    let address = args.gdb.as_ref().expect("called with --gdb");
    let (machine, scan, opened) = crate::replay::machine_for(recording, from, overlay_dir, engine)?;
    let end = match &scan.end {
        Some(rewind_replay::Event::End { at, .. }) => Some(at.icount),
        _ => None,
    };
    let hvc = opened.1.config.hvc.then_some(hvc);
    let consoles = Consoles::output_only(serial, hvc).map_err(CliError::Message)?;
    let mut timeline = Timeline::open(machine, recording, opened, end, args.timeline_options())?;
    timeline.show_output(Box::new(consoles));
    let listener = listen(address)?;
    let conn = listener
        .accept()
        .map_err(|e| CliError::Message(format!("gdb could not connect on {address}: {e}")))?;
    eprintln!("rewind: gdb connected");
    let ending = rewind_gdb::serve(&mut timeline, conn);
    let machine = timeline.machine();
    eprintln!(
        "rewind: gdb session ended ({}) at position {}; state hash {}",
        describe(&ending),
        machine.position(),
        hex(&machine.state_hash())
    );
    let code = match (&ending, timeline.finished()) {
        (rewind_gdb::Ending::Disconnected(_), _) => 1,
        (_, Some(finished)) => {
            if let Some(message) = finished.message() {
                eprintln!("rewind: {message}");
            }
            finished.reason_and_code().1
        }
        _ => 0,
    };
    Ok(ExitCode::from(code))
}
