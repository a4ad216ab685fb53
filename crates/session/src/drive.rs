//! The loop that runs a machine round by round with its consoles attached.
//!
//! It is the same loop for `run`, `record` and `replay`; what differs is
//! where inputs come from ([`Inputs`]): the host's consoles, network and
//! entropy (optionally written to a recording), or a recording. Everything
//! that reaches the guest from outside passes through an `Inputs` at a round
//! boundary, in the order this loop fixes, which is what makes a recording
//! replayable: replay calls the same hooks at the same boundaries.

use crate::console::{Command, Console, PortId};
use crate::panic_watch::PanicWatch;
use rewind_machine::{Machine, Round, StopReason};
use rewind_replay::EndPhase;

/// How a run ended, before it is turned into an exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    Stopped(StopReason),
    Panic(String),
    /// Ctrl-A x.
    Quit,
    /// SIGINT, SIGTERM or SIGHUP.
    Interrupted,
    /// Replay only: the replay left the recorded run; the phrase says where
    /// and how.
    Diverged(String),
    /// Replay only: a recording cut short was replayed to its last complete
    /// frame.
    RecordingCut,
    /// Rewind could not go on (e.g. a snapshot could not be written).
    Failed(String),
    /// The machine reached the position `--stop-at` asked for.
    StopAt,
    /// A debugger's breakpoint or watchpoint stopped a hart inside a
    /// round; driving the machine again goes on from there.
    Debug,
    /// The machine reached the position [`drive`] was asked to pause at;
    /// driving it again goes on from there. Nothing ended.
    Paused,
}

impl Ending {
    /// The name `--report` gives it, and the process exit status.
    pub fn reason_and_code(&self) -> (&'static str, u8) {
        match self {
            Ending::Stopped(StopReason::PowerOff) => ("poweroff", 0),
            // As QEMU's test finisher, the exit status is the guest's
            // code, but a failure never exits 0: a code whose low byte is
            // zero (256, say) exits 1.
            Ending::Stopped(StopReason::Fail(c)) => ("fail", (*c as u8).max(1)),
            Ending::Stopped(StopReason::Deadlock) => ("deadlock", 1),
            Ending::Stopped(StopReason::FirmwareTrap { .. }) => ("firmware-trap", 1),
            Ending::Panic(_) => ("kernel-panic", 1),
            Ending::Quit => ("quit", 0),
            Ending::Interrupted => ("interrupted", 130),
            Ending::Diverged(_) => ("diverged", 3),
            Ending::RecordingCut => ("recording-cut", 0),
            Ending::Failed(_) => ("failed", 1),
            Ending::StopAt => ("stop-at", 0),
            Ending::Debug => ("debug", 0),
            Ending::Paused => ("paused", 0),
        }
    }

    /// The sentence to print about it, if it deserves one.
    pub fn message(&self) -> Option<String> {
        match self {
            Ending::Stopped(StopReason::Deadlock) => Some(
                "the guest stopped: every hart waits for an interrupt that nothing can raise"
                    .to_string(),
            ),
            Ending::Stopped(StopReason::FirmwareTrap { hart, mcause, mepc, mtval }) => Some(format!(
                "hart {hart} trapped into M-mode, where the built-in firmware runs no code (mcause {mcause:#x}, mepc {mepc:#x}, mtval {mtval:#x})"
            )),
            Ending::Panic(line) => Some(format!("the guest kernel panicked: {line}")),
            Ending::Interrupted => Some("interrupted by a signal".to_string()),
            Ending::Diverged(what) => Some(format!("the replay diverged from the recording: {what}")),
            Ending::Failed(what) => Some(what.clone()),
            _ => None,
        }
    }
}

/// Where a machine's inputs come from, and what happens at each boundary.
pub trait Inputs {
    /// At the top of every boundary, before the next round: the state here
    /// includes everything delivered at the previous boundary.
    fn boundary(&mut self, machine: &mut Machine) -> Result<(), Ending>;

    /// After a round: the host side of network devices.
    fn after_round(&mut self, machine: &mut Machine);

    /// Hands the machine its inputs for this boundary; true if it took any.
    fn deliver(
        &mut self,
        machine: &mut Machine,
        consoles: &mut dyn Console,
    ) -> Result<bool, Ending>;

    /// Every hart is idle and nothing was delivered: moves the clock on,
    /// perhaps after waiting for input in real time (Ctrl-A commands typed
    /// meanwhile go to `commands`).
    fn idle(
        &mut self,
        machine: &mut Machine,
        consoles: &mut dyn Console,
        wake: u64,
        commands: &mut Vec<Command>,
    ) -> Result<(), Ending>;

    /// After the boundary's inputs and idle step.
    fn after_boundary(&mut self, machine: &mut Machine) -> Result<(), Ending>;

    /// The run ends with `ending` at `phase` of this boundary; returns how
    /// it really ends (replay may find that the recording disagrees).
    fn finish(&mut self, machine: &mut Machine, phase: EndPhase, ending: Ending) -> Ending;
}

/// What serves the user and other programs besides the consoles (the
/// command line's snapshots and control socket). Nothing a service does
/// changes what the guest sees.
pub trait Services {
    /// At the top of every boundary (snapshots that are due, requests);
    /// Err ends the run.
    fn boundary(&mut self, machine: &mut Machine, console: &dyn Console) -> Result<(), Ending>;

    /// The next position at which the machine must pause for a service,
    /// even inside a round (`--snapshot-at`).
    fn pause_at(&self) -> Option<u64>;

    /// The machine paused at a position a service asked for.
    fn paused(&mut self, machine: &mut Machine) -> Result<(), Ending>;

    /// A command the user typed, other than quit (which ends the run).
    fn command(&mut self, command: Command);
}

/// No services.
pub struct NoServices;

impl Services for NoServices {
    fn boundary(&mut self, _: &mut Machine, _: &dyn Console) -> Result<(), Ending> {
        Ok(())
    }
    fn pause_at(&self) -> Option<u64> {
        None
    }
    fn paused(&mut self, _: &mut Machine) -> Result<(), Ending> {
        Ok(())
    }
    fn command(&mut self, _: Command) {}
}

/// Watches both consoles' output for a kernel panic.
#[derive(Default)]
struct Watches {
    serial: PanicWatch,
    hvc: PanicWatch,
}

impl Watches {
    /// Hands what the guest wrote since the last call to the consoles;
    /// returns the panic line once a kernel panic is confirmed.
    fn forward(&mut self, machine: &mut Machine, consoles: &mut dyn Console) -> Option<String> {
        let now = machine.guest_time_ns();
        for id in [PortId::Serial, PortId::Hvc] {
            let (output, watch) = match id {
                PortId::Serial => (machine.take_console_output(), &mut self.serial),
                PortId::Hvc => (machine.take_hvc_output(), &mut self.hvc),
            };
            if !output.is_empty() {
                consoles.write(id, &output);
                watch.feed(&output, now);
            }
            if let Some(line) = watch.panicked(now) {
                return Some(line.to_string());
            }
        }
        None
    }
}

/// Runs the machine until it stops, the user quits, `inputs` ends it, or it
/// reaches position `stop_at` (which ends the run). At position `pause` it
/// returns [`Ending::Paused`] instead, ending nothing: a debugger's way to
/// drive a machine a stretch at a time.
pub fn drive(
    machine: &mut Machine,
    consoles: &mut dyn Console,
    inputs: &mut dyn Inputs,
    services: &mut dyn Services,
    stop_at: Option<u64>,
    pause: Option<u64>,
) -> Ending {
    let mut watches = Watches::default();
    loop {
        // A machine stopped inside a round (a snapshot taken at an exact
        // count, or restored from one) is not at a boundary: it finishes
        // the round before anything is delivered or checked.
        if !machine.inside_round() {
            // Services first, so that a snapshot taken here is at the same
            // point of the recording as the boundary's checkpoint would be.
            if let Err(ending) = services.boundary(machine, &*consoles) {
                return match ending {
                    Ending::Failed(_) => ending,
                    _ => inputs.finish(machine, EndPhase::AfterInput, ending),
                };
            }
            if let Err(ending) = inputs.boundary(machine) {
                return ending;
            }
        }
        let round = loop {
            let pause_at = [stop_at, services.pause_at(), pause]
                .into_iter()
                .flatten()
                .min();
            let round = machine.run_round_until(pause_at);
            if let Round::Debug { .. } = round {
                // The guest's output so far, then the debugger's turn.
                watches.forward(machine, consoles);
                return Ending::Debug;
            }
            if round != Round::Paused {
                break round;
            }
            // Exactly at a position someone asked for, which is always
            // inside a round (just before a step).
            let phase = EndPhase::InsideRound;
            if let Some(line) = watches.forward(machine, consoles) {
                return inputs.finish(machine, phase, Ending::Panic(line));
            }
            if stop_at.is_some_and(|at| machine.position() >= at) {
                return inputs.finish(machine, phase, Ending::StopAt);
            }
            if let Err(ending) = services.paused(machine) {
                return ending;
            }
            if pause.is_some_and(|at| machine.position() >= at) {
                return Ending::Paused;
            }
        };
        // Outputs first: what the guest did in this round.
        if let Some(line) = watches.forward(machine, consoles) {
            return inputs.finish(machine, EndPhase::BeforeInput, Ending::Panic(line));
        }
        inputs.after_round(machine);
        for warning in machine.take_warnings() {
            eprintln!("rewind: warning: {warning}");
        }
        if consoles.interrupted() {
            return inputs.finish(machine, EndPhase::BeforeInput, Ending::Interrupted);
        }
        let mut commands = consoles.poll();
        if let Round::Stopped(reason) = round {
            return inputs.finish(machine, EndPhase::BeforeInput, Ending::Stopped(reason));
        }
        // Inputs enter here, between rounds, and only here.
        let delivered = match inputs.deliver(machine, consoles) {
            Ok(delivered) => delivered,
            Err(ending) => return ending,
        };
        if let Round::Idle { wake } = round {
            if !delivered {
                if let Err(ending) = inputs.idle(machine, consoles, wake, &mut commands) {
                    return ending;
                }
            }
        }
        if let Err(ending) = inputs.after_boundary(machine) {
            return ending;
        }
        for command in commands {
            match command {
                Command::Quit => return inputs.finish(machine, EndPhase::AfterInput, Ending::Quit),
                other => services.command(other),
            }
        }
    }
}
