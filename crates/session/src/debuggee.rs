//! What a debugger asks of a machine over time, whatever drives it (a
//! replay, a restored snapshot, a live run): the interface the gdb server
//! stands on.

use rewind_hart::{DebugStop, Watch};
use rewind_machine::Machine;
use std::collections::BTreeSet;

/// Which way to go, and how far.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Motion {
    /// Forward until a breakpoint or watchpoint, the end, or an interrupt.
    Continue,
    /// Forward until `hart` has taken one step (other harts run meanwhile,
    /// as the machine interleaves them).
    Step { hart: usize },
    /// Backward to the last breakpoint or watchpoint hit before here; a
    /// watchpoint stops just before the instruction that made the access.
    ReverseContinue,
    /// Backward to just before `hart`'s previous step.
    ReverseStep { hart: usize },
}

/// Where a motion stopped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stop {
    /// A step finished on `hart`.
    Stepped { hart: usize },
    /// `hart` is about to execute the instruction at a breakpoint, or has
    /// just made (or, going backward, is about to make) a watched access.
    Hook { hart: usize, stop: DebugStop },
    /// The user interrupted the motion.
    Interrupted,
    /// Going backward reached the first state there is.
    HistoryStart,
    /// Going forward reached the last state there is (the end of a
    /// recording), which is not an end of the guest's.
    HistoryEnd,
    /// The machine stopped for good (power-off, a failure): `what` says
    /// how; forward motion stops here from now on.
    Ended { what: String, code: u8 },
}

/// Breakpoints and watchpoints, the same on every hart.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Hooks {
    pub breakpoints: BTreeSet<u64>,
    pub watches: Vec<Watch>,
}

impl Hooks {
    pub fn is_empty(&self) -> bool {
        self.breakpoints.is_empty() && self.watches.is_empty()
    }
}

/// A machine a debugger can move through time.
pub trait Debuggee {
    /// The machine as it is at the current position.
    fn machine(&self) -> &Machine;

    /// The machine, to change its registers or memory; Err says why it
    /// cannot be changed here (a replay must stay the recorded run).
    fn edit(&mut self) -> Result<&mut Machine, String>;

    /// The machine, for reads that need the bus (CSRs such as time). The
    /// caller must change nothing the guest can see.
    fn inspect(&mut self) -> &mut Machine;

    /// Replaces the breakpoints and watchpoints.
    fn set_hooks(&mut self, hooks: Hooks);

    /// Moves; `interrupted` is polled now and then while going forward and
    /// ends the motion when it returns true.
    fn resume(&mut self, motion: Motion, interrupted: &mut dyn FnMut() -> bool) -> Stop;

    /// Goes to `position` (see [`rewind_machine::Machine::position`]);
    /// Err says why not (beyond the end, before the start).
    fn seek(&mut self, position: u64) -> Result<(), String>;

    /// The first and, once known, the last position there is.
    fn bounds(&self) -> (u64, Option<u64>);

    /// A line about the session for `monitor info`.
    fn describe(&self) -> String;
}

/// The hart whose turn it is: the one that takes the machine's next step.
pub fn current_hart(machine: &Machine) -> usize {
    machine
        .cursor
        .map_or(0, |c| c.hart.min(machine.harts.len().saturating_sub(1)))
}
