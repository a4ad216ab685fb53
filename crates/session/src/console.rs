//! What the session layer needs of the consoles a machine is attached to:
//! where the guest's output goes, where its input comes from, and the
//! user's commands (Ctrl-A x, s, h). The command line provides terminals,
//! files, sockets and pipes behind this; [`Silent`] has none.

use std::time::Duration;

/// A console port of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortId {
    /// The UART (ttyS0).
    Serial,
    /// The virtio console (hvc0).
    Hvc,
}

/// A command the user typed on a console (after Ctrl-A).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    Quit,
    Help,
    Snapshot,
}

/// The consoles of a running machine. Only output is required: the rest
/// defaults to a console nobody types on (no input, no commands, never
/// interrupted), which is what replays and tests want.
pub trait Console {
    /// Shows what the guest wrote on `port`.
    fn write(&mut self, port: PortId, bytes: &[u8]);
    /// Bytes written so far, on all ports.
    fn output_count(&self) -> u64;
    /// The user asked Rewind to stop (SIGINT, SIGTERM, SIGHUP).
    fn interrupted(&self) -> bool {
        false
    }
    /// Commands typed since the last look, without waiting.
    fn poll(&mut self) -> Vec<Command> {
        Vec::new()
    }
    /// Waits up to `timeout` for input or a command; returns the commands.
    fn wait(&mut self, _timeout: Duration) -> Vec<Command> {
        Vec::new()
    }
    /// Reads more of any input that comes from regular files (which is
    /// read as the guest takes it, so that it arrives deterministically).
    fn read_files(&mut self) {}
    /// Input is waiting for `port`.
    fn has_input(&self, _port: PortId) -> bool {
        false
    }
    /// Up to `max` bytes of input waiting for `port`, not consumed.
    fn peek(&self, _port: PortId, _max: usize) -> Vec<u8> {
        Vec::new()
    }
    /// Consumes `n` bytes of `port`'s input (that the guest took).
    fn consume(&mut self, _port: PortId, _n: usize) {}
    /// More input may still come from somewhere.
    fn may_produce(&self) -> bool {
        false
    }
    /// A person may be typing (a terminal or socket): idle time is paced
    /// in real time so that input can arrive.
    fn live(&self) -> bool {
        false
    }
}

/// No console: output is dropped and no input comes (a replay of the past
/// under a debugger, fuzz targets, tests).
#[derive(Default)]
pub struct Silent {
    written: u64,
}

impl Console for Silent {
    fn write(&mut self, _port: PortId, bytes: &[u8]) {
        self.written += bytes.len() as u64;
    }
    fn output_count(&self) -> u64 {
        self.written
    }
}
