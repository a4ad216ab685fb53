//! Inputs from the host: console bytes, frames from network backends, host
//! entropy, and real-time pacing of an idle guest; each one, when a
//! recording is being made, written to it as the machine takes it.

use crate::console::{Command, Console, PortId};
use crate::drive::{Ending, Inputs};
use crate::recorder::Recorder;
use rewind_machine::{Machine, StopReason};
use rewind_net::NetBackend;
use rewind_replay::{EndPhase, Event, Port};
use std::collections::VecDeque;
use std::fs::File;
use std::io::Read;
use std::time::Duration;

/// The longest real-time wait while the guest idles at an interactive console
/// (so signals and Ctrl-A are noticed promptly).
const MAX_IDLE_WAIT: Duration = Duration::from_millis(100);
/// The same with network devices, whose backends are polled, not waited on.
const NET_IDLE_WAIT: Duration = Duration::from_millis(1);

/// Frames from a backend kept while the guest has no receive buffer; more
/// are left in the backend (which drops what it cannot hold).
const NET_BACKLOG: usize = 256;

/// A network backend and the frames it produced that the guest has not
/// taken yet.
pub struct NetPort {
    pub backend: Box<dyn NetBackend>,
    pub backlog: VecDeque<Vec<u8>>,
}

/// Guest time without output or input, once every input has ended, after
/// which Rewind says how to end a run that the guest will not end.
const QUIET_NOTICE_NS: u64 = 10_000_000_000;

/// The host's inputs.
pub struct LiveInputs {
    pub nets: Vec<NetPort>,
    /// /dev/urandom with `--entropy host`.
    pub entropy: Option<File>,
    /// Set by `rewind record`.
    pub recorder: Option<Recorder>,
    /// Since when (guest ns, and the consoles' output count then) the guest
    /// has had no input and written nothing, while no more input can come.
    pub quiet_since: Option<(u64, u64)>,
    /// The notice about a guest that only idles was given.
    pub told_quiet: bool,
}

impl LiveInputs {
    pub fn new(nets: Vec<NetPort>, entropy: Option<File>, recorder: Option<Recorder>) -> Self {
        LiveInputs {
            nets,
            entropy,
            recorder,
            quiet_since: None,
            told_quiet: false,
        }
    }

    /// Every input has ended and the guest idles: once it has done only
    /// that for a while, say how to end the run (once), rather than let the
    /// idle clock spin on in silence.
    fn notice_quiet(&mut self, machine: &Machine, consoles: &dyn Console) {
        let now = (machine.guest_time_ns(), consoles.output_count());
        let since = match self.quiet_since {
            Some(since) if since.1 == now.1 => since,
            _ => {
                self.quiet_since = Some(now);
                now
            }
        };
        if !self.told_quiet && now.0.saturating_sub(since.0) >= QUIET_NOTICE_NS {
            self.told_quiet = true;
            eprint!(
                "\r\nrewind: every input has ended and the guest has only idled for {} s of its time; it runs on until it powers off: end the run with Ctrl-C (SIGINT){}\r\n",
                QUIET_NOTICE_NS / 1_000_000_000,
                if consoles.live() { " or Ctrl-A x" } else { ", or give --stop-at" }
            );
        }
    }
}

impl LiveInputs {
    fn log(&mut self, machine: &Machine, event: impl FnOnce(rewind_replay::Position) -> Event) {
        if let Some(recorder) = &mut self.recorder {
            recorder.push(event(recorder.position(machine)));
        }
    }
}

impl Inputs for LiveInputs {
    fn boundary(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        if let Some(recorder) = &mut self.recorder {
            recorder.boundary(machine);
        }
        Ok(())
    }

    fn after_round(&mut self, machine: &mut Machine) {
        for (i, net) in self.nets.iter_mut().enumerate() {
            for frame in machine.take_net_frames(i) {
                net.backend.send(&frame);
            }
            net.backend.poll();
            while net.backlog.len() < NET_BACKLOG {
                match net.backend.recv() {
                    Some(frame) => net.backlog.push_back(frame),
                    None => break,
                }
            }
        }
    }

    fn deliver(
        &mut self,
        machine: &mut Machine,
        consoles: &mut dyn Console,
    ) -> Result<bool, Ending> {
        consoles.read_files();
        let mut delivered = false;
        let space = machine.console_input_space();
        if space > 0 && consoles.has_input(PortId::Serial) {
            let bytes = consoles.peek(PortId::Serial, space);
            let taken = machine.push_console_input(&bytes);
            consoles.consume(PortId::Serial, taken);
            if taken > 0 {
                delivered = true;
                self.log(machine, |at| Event::Console {
                    at,
                    port: Port::Serial,
                    bytes: bytes[..taken].to_vec(),
                });
            }
        }
        if consoles.has_input(PortId::Hvc) {
            let bytes = consoles.peek(PortId::Hvc, 4096);
            let taken = machine.push_hvc_input(&bytes);
            consoles.consume(PortId::Hvc, taken);
            if taken > 0 {
                delivered = true;
                self.log(machine, |at| Event::Console {
                    at,
                    port: Port::Hvc,
                    bytes: bytes[..taken].to_vec(),
                });
            }
        }
        for i in 0..self.nets.len() {
            while let Some(frame) = self.nets[i].backlog.front() {
                if !machine.push_net_frame(i, frame) {
                    break;
                }
                let frame = self.nets[i].backlog.pop_front().expect("front exists");
                delivered = true;
                self.log(machine, |at| Event::Packet {
                    at,
                    device: i as u32,
                    frame,
                });
            }
        }
        if let Some(source) = &mut self.entropy {
            let wanted = machine.entropy_wanted();
            if wanted > 0 {
                let mut bytes = vec![0u8; wanted];
                if source.read_exact(&mut bytes).is_ok() {
                    let taken = machine.push_entropy(&bytes);
                    if taken > 0 {
                        delivered = true;
                        bytes.truncate(taken);
                        self.log(machine, |at| Event::Entropy { at, bytes });
                    }
                }
            }
        }
        if delivered {
            self.quiet_since = None;
        }
        Ok(delivered)
    }

    fn idle(
        &mut self,
        machine: &mut Machine,
        consoles: &mut dyn Console,
        wake: u64,
        commands: &mut Vec<Command>,
    ) -> Result<(), Ending> {
        let has_nets = !self.nets.is_empty();
        // Input still waiting could not be delivered (or this would not
        // be idle time): only a source that produces more as time passes
        // can change anything.
        let more_can_come = consoles.may_produce() || has_nets;
        let paced = consoles.live() || has_nets;
        if !more_can_come {
            self.notice_quiet(machine, consoles);
        } else {
            self.quiet_since = None;
        }
        if !more_can_come || (!paced && wake != u64::MAX) {
            // Nothing more can come (or it would not be paced anyway): jump
            // to the next deadline.
            if wake == u64::MAX {
                return Err(self.finish(
                    machine,
                    EndPhase::AfterInput,
                    Ending::Stopped(StopReason::Deadlock),
                ));
            }
            machine.skip_to(wake);
            return Ok(());
        }
        // Wait for input no longer than the guest would sleep, and let guest
        // time follow real time meanwhile, so an idle guest keeps real time
        // (its network timers too). How far the clock moves depends on the
        // host, so a recording logs it.
        let now = machine.guest_time_ns();
        let until_wake = Duration::from_nanos(wake.saturating_sub(now));
        let limit = if has_nets {
            NET_IDLE_WAIT
        } else {
            MAX_IDLE_WAIT
        };
        #[allow(clippy::disallowed_types, clippy::disallowed_methods)] // pacing only; see DESIGN.md
        let waiting = std::time::Instant::now();
        commands.extend(consoles.wait(until_wake.min(limit)));
        let waited = waiting.elapsed().min(until_wake);
        if wake != u64::MAX {
            let to_ns = now.saturating_add(waited.as_nanos() as u64);
            machine.skip_to(to_ns);
            if to_ns != wake {
                self.log(machine, |at| Event::Skip { at, to_ns });
            }
        }
        Ok(())
    }

    fn after_boundary(&mut self, _machine: &mut Machine) -> Result<(), Ending> {
        Ok(())
    }

    fn finish(&mut self, machine: &mut Machine, phase: EndPhase, ending: Ending) -> Ending {
        if let Some(recorder) = &mut self.recorder {
            recorder.end(machine, phase, &ending);
        }
        ending
    }
}
