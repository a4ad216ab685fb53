//! Inputs from the host: console bytes, frames from network backends, host
//! entropy, and real-time pacing of an idle guest; each one, when a
//! recording is being made, written to it as the machine takes it.

use crate::console::{Command, Consoles, PortId};
use crate::drive::{Ending, Inputs};
use crate::record::Recorder;
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

/// The host's inputs.
pub struct LiveInputs {
    pub nets: Vec<NetPort>,
    /// /dev/urandom with `--entropy host`.
    pub entropy: Option<File>,
    /// Set by `rewind record`.
    pub recorder: Option<Recorder>,
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

    fn deliver(&mut self, machine: &mut Machine, consoles: &mut Consoles) -> Result<bool, Ending> {
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
        Ok(delivered)
    }

    fn idle(
        &mut self,
        machine: &mut Machine,
        consoles: &mut Consoles,
        wake: u64,
        commands: &mut Vec<Command>,
    ) -> Result<(), Ending> {
        let has_nets = !self.nets.is_empty();
        let more_can_come = !consoles.exhausted() || has_nets;
        let paced = consoles.live() || has_nets;
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
        #[allow(clippy::disallowed_types)] // pacing only; see DESIGN.md
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
