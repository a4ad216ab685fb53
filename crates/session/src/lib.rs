//! Rewind's session layer: a machine over time, with its inputs.
//!
//! The command line, the gdb server and the tests all drive machines
//! through it:
//! - [`drive`]: the loop that runs a machine round by round, handing it its
//!   inputs ([`Inputs`]) at round boundaries in one fixed order, which is
//!   what makes a run replayable; [`live`] takes inputs from the host (and
//!   logs them with a [`recorder`]), [`replayer`] from a recording
//!   ([`recording`]), comparing its checkpoints ([`verify`]);
//! - [`checkpoints`]: in-memory checkpoints that share unchanged pages, to
//!   seek to any position and run backwards;
//! - [`timeline`]: a recording or a live run as a [`Debuggee`], the
//!   interface the gdb server (crates/gdb) moves a machine through time by.
//!
//! - [`build`]: machines from boot files ([`images`]) and a shape, or
//!   from the configuration a recording or snapshot names, with the files
//!   it carries ([`packed`]); [`snapshot`] writes and restores snapshots.
//!
//! It knows recordings but no terminals or sockets: consoles come in as a
//! [`Console`], the command line's snapshots and control socket as
//! [`Services`].
//!
//! Positions are [`rewind_machine::Machine::position`]: the steps (retired
//! instructions and entered traps) all harts have taken, naming the state
//! just before the next step. Every interface counts in them.

pub mod build;
pub mod checkpoints;
pub mod console;
pub mod debuggee;
pub mod drive;
pub mod echo;
pub mod images;
pub mod live;
pub mod overlay_dir;
pub mod packed;
pub mod panic_watch;
pub mod recorder;
pub mod recording;
pub mod replayer;
pub mod size;
pub mod snapshot;
pub mod timeline;
pub mod verify;

pub use checkpoints::{Checkpoint, Checkpoints};
pub use console::{Command, Console, PortId, Silent};
pub use debuggee::{current_hart, Debuggee, Hooks, Motion, Stop};
pub use drive::{drive, Ending, Inputs, NoServices, Services};

/// Why the session layer could not do something, in one sentence (the
/// command line prints it as `rewind: <sentence>`).
#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error("{0}")]
    Message(String),
    #[error(transparent)]
    Load(#[from] rewind_machine::loader::LoadError),
    #[error(transparent)]
    Machine(#[from] rewind_machine::MachineError),
    #[error(transparent)]
    Guest(#[from] rewind_guest::GuestError),
    #[error(transparent)]
    Disk(#[from] rewind_disk::DiskError),
    #[error(transparent)]
    Net(#[from] rewind_net::NetError),
}

/// Bytes (a hash, say) as lowercase hex, as reports and component names
/// spell them.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
