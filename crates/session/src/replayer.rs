//! The inputs of a replay: a recording's events, handed to the machine at
//! the boundaries where the recorded run took them, with every checkpoint
//! compared on the way. A recording is hostile input: anything in it that
//! the machine cannot have done (an event it passed, a checkpoint where the
//! machine is elsewhere, a clock moved backwards or past the next deadline)
//! ends the replay as a divergence, never a panic.

use crate::console::{Command, Console};
use crate::drive::{Ending, Inputs};
use crate::recording::EventStream;
use crate::verify::{self, Checkpointer};
use rewind_machine::{Machine, StopReason};
use rewind_replay::{EndPhase, Event, Port};

/// The furthest a recording may move the clock: the bound every state a
/// machine can reach stays within (see rewind_machine's state checks).
const MAX_GUEST_NS: u64 = 1 << 62;

/// Drops the events `machine` has already taken.
fn skip_done(mut events: EventStream, machine: &Machine) -> Result<EventStream, Ending> {
    // A machine restored from a snapshot stopped inside a round has yet
    // to reach the boundary at that round's end. One restored at a
    // boundary (or just built, at boundary 0) has taken the inputs
    // delivered there, but not the checkpoint or the end that follow
    // (a snapshot is taken at the top of a boundary, before both).
    let (round, inside) = (machine.rounds, machine.inside_round());
    let done = |e: &Event| {
        let at = e.at().round;
        at < round
            || (at == round
                && !inside
                && !matches!(e, Event::Checkpoint { .. } | Event::End { .. }))
    };
    while events.front().map_err(Ending::Failed)?.is_some_and(done) {
        events.pop();
    }
    Ok(events)
}

/// Inputs from a recording.
pub struct Replayer {
    events: EventStream,
    /// None: the recorded checkpoints are passed over unchecked (a
    /// debugger's replays, which seek too often to hash RAM each time).
    checkpoints: Option<Checkpointer>,
    /// Checkpoints that matched.
    pub verified: u64,
    /// The replay reached the recorded end (rather than diverging or being
    /// stopped by the user).
    pub reached_end: bool,
    /// The recording is still being written (a live run's, replayed by its
    /// debugger): running out of events is not its end.
    open_ended: bool,
}

impl Replayer {
    /// Replays `events` into `machine`, which is at power-on or restored
    /// from a snapshot taken while the recording was made.
    pub fn new(
        events: EventStream,
        machine: &mut Machine,
        checkpoint_every: u64,
    ) -> Result<Replayer, Ending> {
        let events = skip_done(events, machine)?;
        Ok(Replayer {
            events,
            checkpoints: Some(Checkpointer::new(machine, checkpoint_every)),
            verified: 0,
            reached_end: false,
            open_ended: false,
        })
    }

    /// As [`Replayer::new`], but the recorded checkpoints are not compared
    /// (the final state hash still is): for a debugger, which rebuilds its
    /// replayer at every seek and cannot hash all of RAM each time.
    pub fn unverified(events: EventStream, machine: &Machine) -> Result<Replayer, Ending> {
        Ok(Replayer {
            events: skip_done(events, machine)?,
            checkpoints: None,
            verified: 0,
            reached_end: false,
            open_ended: false,
        })
    }

    /// Replays a recording that is still being written: past its last
    /// event, the recorded run went on with no input yet.
    pub fn open_ended(mut self) -> Replayer {
        self.open_ended = true;
        self
    }

    /// The next event, if any.
    fn front(&mut self) -> Result<Option<&Event>, Ending> {
        self.events.front().map_err(Ending::Failed)
    }

    /// The next event, if the machine takes it at this boundary.
    fn next_here(&mut self, machine: &Machine) -> Result<Option<&Event>, Ending> {
        let round = machine.rounds;
        Ok(self.front()?.filter(|e| e.at().round == round))
    }

    /// Checks that the machine is where the recording says it took the next
    /// event, and that it did not pass an event by.
    fn check_position(&mut self, machine: &Machine) -> Result<(), Ending> {
        let (round, icount) = (machine.rounds, machine.position());
        let Some(event) = self.front()? else {
            return Ok(());
        };
        let at = event.at();
        if at.round < round {
            return Err(Ending::Diverged(format!(
                "the recording has {} at position {}, which the replay passed (it is at position {icount})",
                event.kind(),
                at.icount
            )));
        }
        if at.round == round && at.icount != icount {
            return Err(Ending::Diverged(format!(
                "at round {} the recording was at position {} and the replay at {icount}",
                at.round, at.icount
            )));
        }
        Ok(())
    }

    /// Compares the checkpoint the recording has here, if any.
    fn verify_checkpoint(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        self.check_position(machine)?;
        if !matches!(self.next_here(machine)?, Some(Event::Checkpoint { .. })) {
            return Ok(());
        }
        let Some(Event::Checkpoint { at, state }) = self.events.pop() else {
            return Err(Ending::Failed(
                "the recording's events changed as they were read".into(),
            ));
        };
        let Some(checkpoints) = &mut self.checkpoints else {
            return Ok(());
        };
        let taken = checkpoints.take(machine);
        if let Some(what) = verify::compare(&state, &taken, checkpoints) {
            return Err(Ending::Diverged(format!(
                "at position {} (guest time {} ns): {what}",
                at.icount, state.guest_ns
            )));
        }
        self.verified += 1;
        Ok(())
    }

    /// The recorded run ends at this boundary in `phase` (after this
    /// boundary's checkpoint, if it has one).
    fn ends_here(&mut self, machine: &Machine, phase: EndPhase) -> Result<bool, Ending> {
        let end_here = |e: &Event| matches!(e, Event::End { at, phase: p, .. } if at.round == machine.rounds && *p == phase);
        Ok(match self.front()? {
            Some(Event::Checkpoint { at, .. }) if at.round == machine.rounds => {
                // A round has one checkpoint at most (the reader makes sure),
                // so the end, if it is here, is the event after it.
                self.events
                    .peek_second()
                    .map_err(Ending::Failed)?
                    .is_some_and(end_here)
            }
            Some(e) => end_here(e),
            None => false,
        })
    }

    /// Ends the replay as the recording does here; `natural` is how the
    /// replayed machine itself ended, if it did.
    fn end_as_recorded(&mut self, machine: &mut Machine, natural: Option<Ending>) -> Ending {
        if let Err(diverged) = self.verify_checkpoint(machine) {
            return diverged;
        }
        let Some(Event::End {
            reason, state_hash, ..
        }) = self.events.pop()
        else {
            return Ending::Failed("the recording's events changed as they were read".into());
        };
        let recorded = match reason.as_str() {
            "quit" => Some(Ending::Quit),
            "interrupted" => Some(Ending::Interrupted),
            "deadlock" => Some(Ending::Stopped(StopReason::Deadlock)),
            "stop-at" => Some(Ending::StopAt),
            _ => None,
        };
        let ending = match (natural, recorded) {
            (Some(n), _) if n.reason_and_code().0 == reason => n,
            (None, Some(r)) => r,
            (Some(n), _) => {
                return Ending::Diverged(format!(
                    "at position {} the replay ended ({}) where the recording ended ({reason})",
                    machine.position(),
                    n.reason_and_code().0
                ))
            }
            (None, None) => {
                return Ending::Diverged(format!(
                    "the recorded run ended ({reason}) at position {}, but the replay goes on",
                    machine.position()
                ))
            }
        };
        if machine.state_hash() != state_hash {
            return Ending::Diverged(format!(
                "the final state at position {} differs from the recording's",
                machine.position()
            ));
        }
        self.reached_end = true;
        ending
    }

    /// Hands the machine the input event at the front, which is at this
    /// boundary; Some(what went wrong) if the machine could not take it all.
    fn deliver_one(&mut self, machine: &mut Machine) -> Result<Option<String>, Ending> {
        let Some(event) = self.events.pop() else {
            return Ok(None);
        };
        Ok(match event {
            Event::Console { at, port, bytes } => {
                let taken = match port {
                    Port::Serial => machine.push_console_input(&bytes),
                    Port::Hvc => machine.push_hvc_input(&bytes),
                };
                (taken != bytes.len()).then(|| {
                    format!(
                        "at position {}: the console took {taken} of the {} recorded bytes",
                        at.icount,
                        bytes.len()
                    )
                })
            }
            Event::Packet { at, device, frame } => {
                let ok = (device as usize) < machine.config.virtio.net_macs.len()
                    && machine.push_net_frame(device as usize, &frame);
                (!ok).then(|| {
                    format!(
                        "at position {}: network device {device} could not take the recorded frame",
                        at.icount
                    )
                })
            }
            Event::Entropy { at, bytes } => {
                let taken = machine.push_entropy(&bytes);
                (taken != bytes.len()).then(|| {
                    format!(
                        "at position {}: the entropy device took {taken} of the {} recorded bytes",
                        at.icount,
                        bytes.len()
                    )
                })
            }
            _ => Some("an event that is not an input was delivered".to_string()),
        })
    }
}

impl Inputs for Replayer {
    fn boundary(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        self.verify_checkpoint(machine)?;
        if self.front()?.is_none() && !self.open_ended {
            // A complete recording ends with its End event, which stops the
            // replay before this; without one, the recording was cut short.
            return Err(Ending::RecordingCut);
        }
        Ok(())
    }

    fn after_round(&mut self, machine: &mut Machine) {
        // What the guest sends goes nowhere: the recorded replies follow.
        for i in 0..machine.config.virtio.net_macs.len() {
            machine.take_net_frames(i);
        }
    }

    fn deliver(&mut self, machine: &mut Machine, _: &mut dyn Console) -> Result<bool, Ending> {
        self.check_position(machine)?;
        if self.ends_here(machine, EndPhase::BeforeInput)? {
            return Err(self.end_as_recorded(machine, None));
        }
        let mut delivered = false;
        while let Some(event) = self.next_here(machine)? {
            // Idle skips, checkpoints and the end have their own hooks.
            if !matches!(
                event,
                Event::Console { .. } | Event::Packet { .. } | Event::Entropy { .. }
            ) {
                break;
            }
            if let Some(what) = self.deliver_one(machine)? {
                return Err(Ending::Diverged(what));
            }
            delivered = true;
        }
        Ok(delivered)
    }

    fn idle(
        &mut self,
        machine: &mut Machine,
        _: &mut dyn Console,
        wake: u64,
        _: &mut Vec<Command>,
    ) -> Result<(), Ending> {
        let now = machine.guest_time_ns();
        if let Some(&Event::Skip { at, to_ns }) = self.next_here(machine)? {
            // A recorded run waited in real time, from now to at most the
            // next deadline.
            if to_ns <= now || to_ns > wake.min(MAX_GUEST_NS) {
                return Err(Ending::Diverged(format!(
                    "at position {} the recording moves the clock to {to_ns} ns, but the guest is at {now} ns and next wakes at {wake} ns",
                    at.icount
                )));
            }
            self.events.pop();
            machine.skip_to(to_ns);
        } else if wake != u64::MAX {
            machine.skip_to(wake);
        } else if self.ends_here(machine, EndPhase::AfterInput)? {
            return Err(self.end_as_recorded(machine, None));
        } else {
            // The recorded run waited for input with nothing else to wake
            // the guest: every round until the next event is idle, and only
            // the clock moves, so move it there at once.
            let next = self.front()?.map(|e| e.at().round);
            if let Some(next) = next.filter(|&r| r > machine.rounds + 1) {
                let rounds = next - machine.rounds - 1;
                if !machine.skip_idle_rounds(rounds, MAX_GUEST_NS) {
                    return Err(Ending::Diverged(format!(
                        "the recording's next event is {rounds} idle rounds away, past any time a machine reaches"
                    )));
                }
            }
        }
        Ok(())
    }

    fn after_boundary(&mut self, machine: &mut Machine) -> Result<(), Ending> {
        if self.ends_here(machine, EndPhase::AfterInput)? {
            return Err(self.end_as_recorded(machine, None));
        }
        Ok(())
    }

    fn finish(&mut self, machine: &mut Machine, phase: EndPhase, ending: Ending) -> Ending {
        match self.ends_here(machine, phase) {
            Ok(true) => return self.end_as_recorded(machine, Some(ending)),
            Ok(false) => {}
            Err(failed) => return failed,
        }
        if matches!(ending, Ending::Interrupted | Ending::Quit | Ending::StopAt) {
            // The user stopped the replay.
            return ending;
        }
        Ending::Diverged(format!(
            "the replay ended ({}) at position {}, but the recording goes on",
            ending.reason_and_code().0,
            machine.position()
        ))
    }
}
