//! Rewind's session layer: a machine over time.
//!
//! This crate is where the drive loop, recorder, replayer and restore are
//! moving (from the command line, src/); what lives here so far is what the
//! debugger needs of time itself:
//! - [`checkpoints`]: in-memory checkpoints that share unchanged pages, to
//!   seek to any position and run backwards;
//! - [`debuggee`]: what a debugger asks of a machine over time, the
//!   interface the gdb server (crates/gdb) stands on.
//!
//! Positions are [`rewind_machine::Machine::position`]: the steps (retired
//! instructions and entered traps) all harts have taken, naming the state
//! just before the next step. Every interface counts in them.

pub mod checkpoints;
pub mod debuggee;

pub use checkpoints::{Checkpoint, Checkpoints};
pub use debuggee::{current_hart, Debuggee, Hooks, Motion, Stop};
