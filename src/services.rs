//! What serves the user and other programs while a machine runs, besides
//! its consoles: snapshots (`--snapshot-at`, `--snapshot-every`, Ctrl-A s)
//! and the control socket, as the session layer's [`rewind_session::Services`].

use crate::console::{Command, HELP};
use crate::control::{self, Control, Request};
use rewind_machine::Machine;
use rewind_session::snapshot::{Snapshotter, Written};
use rewind_session::{Console, Ending};
use serde_json::json;
use std::io::Write;
use std::time::Duration;

/// What serves the user and other programs besides the consoles: snapshots
/// and the control socket. Neither changes what the guest sees.
#[derive(Default)]
pub struct Services {
    pub snapshots: Option<Snapshotter>,
    pub control: Option<Control>,
    /// Set by the control socket's pause, cleared by resume.
    paused: bool,
    /// A snapshot the user asked for with Ctrl-A s, taken at the next boundary.
    snapshot_asked: bool,
}

impl Services {
    pub fn new(snapshots: Option<Snapshotter>, control: Option<Control>) -> Self {
        Services {
            snapshots,
            control,
            ..Services::default()
        }
    }
}

impl rewind_session::Services for Services {
    /// Snapshots that are due, and requests from the control socket. Err:
    /// the run is to end (quit, a signal, a snapshot that could not be
    /// written).
    fn boundary(&mut self, machine: &mut Machine, consoles: &dyn Console) -> Result<(), Ending> {
        if let Some(snapshots) = &mut self.snapshots {
            match snapshots.boundary(machine) {
                Ok(written) => written.iter().for_each(announce),
                Err(e) => return Err(Ending::Failed(e)),
            }
            if std::mem::take(&mut self.snapshot_asked) {
                let path = snapshots.default_path(machine);
                match snapshots.full(machine, &path) {
                    Ok(w) => announce(&w),
                    Err(e) => eprint!("\r\nrewind: {e}\r\n"),
                }
            }
        }
        let Some(control) = &mut self.control else {
            return Ok(());
        };
        let mut requests = control.poll();
        loop {
            for pending in requests.drain(..) {
                let answer = match &pending.request {
                    Request::Status => json!({
                        "ok": true,
                        "state": if self.paused { "paused" } else { "running" },
                        "position": machine.position(),
                        "guest_ns": machine.guest_time_ns(),
                        "rounds": machine.rounds,
                        "instructions_retired": machine.instret(),
                    }),
                    Request::Pause => {
                        self.paused = true;
                        json!({"ok": true})
                    }
                    Request::Resume => {
                        self.paused = false;
                        json!({"ok": true})
                    }
                    Request::Snapshot { path } => match &mut self.snapshots {
                        Some(snapshots) => match snapshots.full(machine, path) {
                            Ok(w) => json!({
                                "ok": true,
                                "path": w.path,
                                "bytes": w.bytes,
                                "ms": w.millis,
                                "position": machine.position(),
                            }),
                            Err(e) => control::error(e),
                        },
                        None => control::error("this run cannot take snapshots".to_string()),
                    },
                    Request::Quit => {
                        pending.answer(json!({"ok": true}));
                        return Err(Ending::Quit);
                    }
                };
                pending.answer(answer);
            }
            if !self.paused {
                return Ok(());
            }
            if consoles.interrupted() {
                return Err(Ending::Interrupted);
            }
            // Paused: the guest and its clock stand still until a request.
            requests.extend(control.wait(Duration::from_millis(100)));
        }
    }

    /// `--snapshot-at`.
    fn pause_at(&self) -> Option<u64> {
        self.snapshots.as_ref().and_then(Snapshotter::pause_at)
    }

    fn paused(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        if let Some(snapshots) = &mut self.snapshots {
            match snapshots.paused(machine) {
                Ok(written) => written.iter().for_each(announce),
                Err(e) => return Err(Ending::Failed(e)),
            }
        }
        Ok(())
    }

    fn command(&mut self, command: Command) {
        match command {
            // The session layer ends the run itself.
            Command::Quit => {}
            Command::Snapshot if self.snapshots.is_some() => self.snapshot_asked = true,
            Command::Snapshot => eprint!("\r\nrewind: this run cannot take snapshots\r\n"),
            Command::Help => {
                let mut stdout = std::io::stdout().lock();
                let _ = stdout
                    .write_all(HELP.as_bytes())
                    .and_then(|()| stdout.flush());
            }
        }
    }
}

fn announce(w: &Written) {
    eprint!(
        "\r\nrewind: {} snapshot {} written ({} bytes, {:.1} ms)\r\n",
        if w.incremental { "incremental" } else { "full" },
        w.path.display(),
        w.bytes,
        w.millis
    );
}
