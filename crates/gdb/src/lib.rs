//! Rewind's gdb server: gdb-multiarch (or any gdb with RISC-V) attaches to
//! a machine over TCP or a Unix socket and debugs it, forward and backward,
//! through a [`rewind_session::Debuggee`].
//!
//! The protocol is gdbstub's; this crate maps it onto the session: harts
//! are threads (all-stop), registers and memory are read without side
//! effects, breakpoints and watchpoints are kept by the VMM, and reverse
//! execution is a session motion. See `monitor help` for the rest.

mod arch;
mod conn;
mod monitor;
mod target;

pub use conn::{GdbAddress, GdbConnection, GdbListener};
pub use monitor::HELP as MONITOR_HELP;

use gdbstub::common::Signal;
use gdbstub::conn::ConnectionExt;
use gdbstub::stub::run_blocking::{BlockingEventLoop, Event, WaitForStopReasonError};
use gdbstub::stub::{DisconnectReason, GdbStub, MultiThreadStopReason};
use gdbstub::target::ext::base::reverse_exec::ReplayLogPosition;
use gdbstub::target::ext::breakpoints::WatchKind as GdbWatchKind;
use rewind_hart::{DebugStop, WatchKind};
use rewind_session::{current_hart, Debuggee, Motion, Stop};
use target::{tid_of, GdbTarget};

/// How a gdb session ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ending {
    /// gdb detached (`detach`, or quit while attached): the machine may go on.
    Detached,
    /// gdb asked to kill the machine.
    Killed,
    /// The connection closed or failed.
    Disconnected(String),
}

/// Serves one gdb connection until it ends. (Any byte stream will do: a
/// fuzz target feeds it hostile packets.)
pub fn serve<C>(debuggee: &mut dyn Debuggee, conn: C) -> Ending
where
    C: ConnectionExt<Error = std::io::Error>,
{
    let mut target = GdbTarget::new(debuggee);
    let gdb = GdbStub::new(KillReply::new(conn));
    match gdb.run_blocking::<Loop<'_, KillReply<C>>>(&mut target) {
        Ok(DisconnectReason::Disconnect) => Ending::Detached,
        Ok(DisconnectReason::Kill) => Ending::Killed,
        Ok(DisconnectReason::TargetExited(_) | DisconnectReason::TargetTerminated(_)) => {
            Ending::Detached
        }
        Err(e) => Ending::Disconnected(e.to_string()),
    }
}

/// A connection that answers gdb's `vKill` with `OK` as it closes.
/// gdbstub (0.7), serving without extended mode, ends the session on a
/// kill request without a reply; gdb sends `vKill` when the stub supports
/// multiprocess, waits for its `OK`, and without it reports the connection
/// closed and exits with status 1, which breaks scripted sessions.
struct KillReply<C: ConnectionExt> {
    inner: C,
    /// The last bytes read, to spot the start of a `$vKill` packet.
    recent: [u8; 6],
    killed: bool,
}

impl<C: ConnectionExt> KillReply<C> {
    fn new(inner: C) -> Self {
        KillReply {
            inner,
            recent: [0; 6],
            killed: false,
        }
    }

    fn saw(&mut self, byte: u8) {
        self.recent.rotate_left(1);
        self.recent[5] = byte;
        self.killed |= &self.recent == b"$vKill";
    }
}

impl<C: ConnectionExt> Drop for KillReply<C> {
    fn drop(&mut self) {
        if self.killed {
            // The session is over whatever happens to these bytes.
            let _ = self.inner.write_all(b"$OK#9a");
            let _ = self.inner.flush();
        }
    }
}

impl<C: ConnectionExt> gdbstub::conn::Connection for KillReply<C> {
    type Error = C::Error;
    fn write(&mut self, byte: u8) -> Result<(), C::Error> {
        self.inner.write(byte)
    }
    fn write_all(&mut self, buf: &[u8]) -> Result<(), C::Error> {
        self.inner.write_all(buf)
    }
    fn flush(&mut self) -> Result<(), C::Error> {
        self.inner.flush()
    }
    fn on_session_start(&mut self) -> Result<(), C::Error> {
        self.inner.on_session_start()
    }
}

impl<C: ConnectionExt> ConnectionExt for KillReply<C> {
    fn read(&mut self) -> Result<u8, C::Error> {
        let byte = self.inner.read()?;
        self.saw(byte);
        Ok(byte)
    }
    fn peek(&mut self) -> Result<Option<u8>, C::Error> {
        self.inner.peek()
    }
}

struct Loop<'a, C>(std::marker::PhantomData<(&'a (), C)>);

impl<'a, C: ConnectionExt<Error = std::io::Error>> BlockingEventLoop for Loop<'a, C> {
    type Target = GdbTarget<'a>;
    type Connection = C;
    type StopReason = MultiThreadStopReason<u64>;

    fn wait_for_stop_reason(
        target: &mut GdbTarget<'a>,
        conn: &mut C,
    ) -> Result<Event<MultiThreadStopReason<u64>>, WaitForStopReasonError<String, std::io::Error>>
    {
        let motion = target.pending.take().unwrap_or(Motion::Continue);
        let mut incoming = None;
        let stop = {
            let mut interrupted = || {
                if incoming.is_some() {
                    return true;
                }
                match conn.peek() {
                    Ok(Some(_)) => {
                        incoming = conn.read().ok();
                        incoming.is_some()
                    }
                    Ok(None) => false,
                    // A broken connection ends the motion; the next read
                    // reports it.
                    Err(_) => true,
                }
            };
            target.debuggee.resume(motion, &mut interrupted)
        };
        if let (Stop::Interrupted, Some(byte)) = (&stop, incoming) {
            return Ok(Event::IncomingData(byte));
        }
        if let Stop::Hook {
            stop: DebugStop::Watch { .. },
            ..
        } = stop
        {
            present_watch_as_gdb_expects(target.debuggee, motion);
        }
        Ok(Event::TargetStopped(stop_reason(target, stop)))
    }

    fn on_interrupt(
        target: &mut GdbTarget<'a>,
    ) -> Result<Option<MultiThreadStopReason<u64>>, String> {
        let hart = current_hart(target.debuggee.machine());
        Ok(Some(MultiThreadStopReason::SignalWithThread {
            tid: tid_of(hart),
            signal: Signal::SIGINT,
        }))
    }
}

/// gdb takes a RISC-V watchpoint to trigger before the access (its
/// `have_nonsteppable_watchpoint`), and steps over the accessing
/// instruction itself, forward or backward, to show old and new values.
/// The session stops right after the access going forward, and right
/// before it going backward; so gdb is shown the other side, and its own
/// step brings it where the session stopped.
fn present_watch_as_gdb_expects(debuggee: &mut dyn Debuggee, motion: Motion) {
    let here = debuggee.machine().position();
    let other_side = match motion {
        Motion::ReverseContinue | Motion::ReverseStep { .. } => here.checked_add(1),
        Motion::Continue | Motion::Step { .. } => here.checked_sub(1),
    };
    if let Some(position) = other_side {
        if let Err(e) = debuggee.seek(position) {
            eprintln!("rewind: cannot show the watchpoint's access to gdb: {e}");
        }
    }
}

/// What gdb is told about a stop.
fn stop_reason(target: &mut GdbTarget<'_>, stop: Stop) -> MultiThreadStopReason<u64> {
    let current = tid_of(current_hart(target.debuggee.machine()));
    match stop {
        Stop::Stepped { hart }
        | Stop::Hook {
            hart,
            stop: DebugStop::Step,
        } => MultiThreadStopReason::SignalWithThread {
            tid: tid_of(hart),
            signal: Signal::SIGTRAP,
        },
        Stop::Hook {
            hart,
            stop: DebugStop::Breakpoint { pc },
        } => {
            if target.sw_breakpoints.contains(&pc) {
                MultiThreadStopReason::SwBreak(tid_of(hart))
            } else {
                MultiThreadStopReason::HwBreak(tid_of(hart))
            }
        }
        Stop::Hook {
            hart,
            stop: DebugStop::Watch { watch, addr, write },
        } => MultiThreadStopReason::Watch {
            tid: tid_of(hart),
            kind: match (watch.kind, write) {
                (WatchKind::Access, _) => GdbWatchKind::ReadWrite,
                (_, true) => GdbWatchKind::Write,
                (_, false) => GdbWatchKind::Read,
            },
            addr,
        },
        Stop::Interrupted => MultiThreadStopReason::SignalWithThread {
            tid: current,
            signal: Signal::SIGINT,
        },
        Stop::HistoryStart => MultiThreadStopReason::ReplayLog {
            tid: Some(current),
            pos: ReplayLogPosition::Begin,
        },
        Stop::HistoryEnd | Stop::Ended { .. } => MultiThreadStopReason::ReplayLog {
            tid: Some(current),
            pos: ReplayLogPosition::End,
        },
    }
}
