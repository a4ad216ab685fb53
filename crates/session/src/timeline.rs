//! A run as a timeline a debugger moves through: the machine at some
//! position, in-memory checkpoints behind it, and a recording of its inputs
//! to go forward with. Going backward is restoring the nearest checkpoint
//! and replaying forward to the position wanted; reverse-continue replays
//! each span between checkpoints, latest first, noting every breakpoint and
//! watchpoint hit, until a span has one.
//!
//! The recording is a finished one (`rewind replay --gdb`), or one a live
//! run is writing (`run`, `record` and `restore` with `--gdb`): then the
//! timeline has a frontier, the furthest the machine went with the host's
//! inputs. Behind it the machine replays what was recorded, silently; at it,
//! the machine runs on with its consoles and the host's inputs, which the
//! recording keeps, so a live run can be debugged backward without having
//! been recorded on purpose.
//!
//! Every state the timeline stops in is a position (see
//! `Machine::position`): the machine just before its next step. A
//! watchpoint's hit, which happens after a step, is carried on to there.

use crate::console::{Console, Silent};
use crate::drive::{drive, Ending, NoServices, Services};
use crate::echo::Echo;
use crate::live::LiveInputs;
use crate::recording::{self, EventStream};
use crate::replayer::Replayer;
use crate::SessionError;
use crate::{current_hart, Checkpoints, Debuggee, Hooks, Motion, Stop};
use rewind_hart::{DebugHooks, DebugStop};
use rewind_machine::Machine;
use std::path::{Path, PathBuf};

/// Steps between the checkpoints taken on the way forward.
pub const DEFAULT_INTERVAL: u64 = 100_000_000;
/// Memory the checkpoints may use unless told.
pub const DEFAULT_CHECKPOINT_MEMORY: usize = 1 << 30;
/// How far back from where the user is a backward motion leaves a
/// checkpoint, so that the next one (reverse-stepi again) replays little.
const NEAR: u64 = 200_000;
/// Steps run between looks at whether the user interrupted (a few
/// milliseconds of a busy guest).
const POLL_EVERY: u64 = 2_000_000;

/// Which hooks a forward run attaches to the harts.
#[derive(Clone, Copy, Default)]
struct Attach {
    /// The user's breakpoints and watchpoints.
    user: bool,
    /// The hart that does not stop at a breakpoint where it stands.
    pass: Option<usize>,
    /// A hart and the step count it stops at.
    step: Option<(usize, u64)>,
    /// Leave a rolling checkpoint behind (see [`Timeline::roll_checkpoint`]):
    /// for the user's own forward motions, which may stop anywhere. (Seeks
    /// and backward motions leave a checkpoint near where they stop.)
    roll: bool,
}

/// How a forward run ended.
enum Run {
    /// At the position asked for.
    Reached,
    /// A hook stopped a hart (a watchpoint's hit carried on to the next
    /// position; `before` is the position just before the access).
    Hook {
        hart: usize,
        stop: DebugStop,
        before: u64,
    },
    Interrupted,
    /// The replay is over (the recording's end, or a divergence).
    Finished,
}

/// The live end of a timeline: the host's inputs (with the recorder they
/// are logged by), the consoles and the services of the run.
pub struct Live {
    pub inputs: LiveInputs,
    pub consoles: Box<dyn Console>,
    pub services: Box<dyn Services>,
    /// The furthest position the machine reached live.
    frontier: u64,
    /// The machine is at the frontier, not in the replayed past.
    at_frontier: bool,
    /// How the live run ended, if it did (at the frontier).
    pub ended: Option<Ending>,
}

pub struct Timeline {
    machine: Machine,
    recording: PathBuf,
    /// Replays the recording behind the frontier (None until needed).
    replayer: Option<Replayer>,
    live: Option<Live>,
    checkpoints: Checkpoints,
    interval: u64,
    /// The first position (where the replay starts).
    start: u64,
    /// Where the recording ends, if it says.
    end: Option<u64>,
    /// How the replay ended, once it reached the end: nothing is after.
    finished: Option<Ending>,
    hooks: Hooks,
    /// The checkpoint that follows a forward motion (see
    /// [`Timeline::roll_checkpoint`]).
    rolling: Option<u64>,
    /// Where a replay's console output goes, shown once (none: dropped).
    echo: Option<Echo>,
}

/// Options of a debugged replay.
pub struct TimelineOptions {
    pub interval: u64,
    pub checkpoint_memory: usize,
}

impl Default for TimelineOptions {
    fn default() -> Self {
        TimelineOptions {
            interval: DEFAULT_INTERVAL,
            checkpoint_memory: DEFAULT_CHECKPOINT_MEMORY,
        }
    }
}

impl Timeline {
    /// The timeline of `recording` replayed in `machine`, which was built
    /// from its configuration (at power-on, or restored from a snapshot
    /// taken while it was made). `reader` has read the recording's
    /// `header` (and any packed images); `end` is where the recording ends,
    /// if it says.
    pub fn open(
        mut machine: Machine,
        recording: &Path,
        (reader, header): (recording::Reader, rewind_replay::Header),
        end: Option<u64>,
        options: TimelineOptions,
    ) -> Result<Timeline, SessionError> {
        // The first pass forward compares every recorded checkpoint, as a
        // plain replay does; replays of the past after a seek backward do
        // not (they would hash all of RAM at each restore), but they are
        // replays of a stretch this one checked.
        let replayer = Replayer::new(
            EventStream::new(reader),
            &mut machine,
            header.checkpoint_every,
        )
        .map_err(|e| SessionError::Message(e.message().unwrap_or_default()))?;
        let start = machine.position();
        let mut timeline = Timeline {
            machine,
            recording: recording.to_path_buf(),
            replayer: Some(replayer),
            live: None,
            checkpoints: Checkpoints::new(options.checkpoint_memory),
            interval: options.interval.max(1),
            start,
            end,
            finished: None,
            hooks: Hooks::default(),
            rolling: None,
            echo: None,
        };
        // The first state is the one just before the first step.
        match timeline.forward(Some(start), None, &mut || false, Attach::default()) {
            Run::Reached => {}
            _ => {
                return Err(SessionError::Message(format!(
                    "the recording {} ends before its machine takes a step",
                    recording.display()
                )))
            }
        }
        let here = timeline.machine.position();
        timeline
            .checkpoints
            .take(&mut timeline.machine, here)
            .map_err(SessionError::Message)?;
        Ok(timeline)
    }

    /// Shows a replay's console output on `console` as the machine first
    /// gets there, and not again when the past is replayed (see
    /// [`Echo`]). A live timeline shows its output live instead.
    pub fn show_output(&mut self, console: Box<dyn Console>) {
        self.echo = Some(Echo::new(console));
    }

    /// The timeline of a live run whose inputs `inputs.recorder` records.
    pub fn live(
        machine: Machine,
        inputs: LiveInputs,
        consoles: Box<dyn Console>,
        services: Box<dyn Services>,
        options: TimelineOptions,
    ) -> Result<Timeline, SessionError> {
        let Some(recorder) = &inputs.recorder else {
            return Err(SessionError::Message(
                "a live run is debugged only while it is recorded".to_string(),
            ));
        };
        let recording = recorder.path().to_path_buf();
        let start = machine.position();
        let mut timeline = Timeline {
            machine,
            recording,
            replayer: None,
            live: Some(Live {
                inputs,
                consoles,
                services,
                frontier: start,
                at_frontier: true,
                ended: None,
            }),
            checkpoints: Checkpoints::new(options.checkpoint_memory),
            interval: options.interval.max(1),
            start,
            end: None,
            finished: None,
            hooks: Hooks::default(),
            rolling: None,
            echo: None,
        };
        if let Run::Finished = timeline.forward(Some(start), None, &mut || false, Attach::default())
        {
            let ending = timeline.finished.clone().unwrap_or(Ending::Paused);
            return Err(SessionError::Message(format!(
                "the machine ended ({}) before its first step",
                ending.reason_and_code().0
            )));
        }
        timeline.start = timeline.machine.position();
        let here = timeline.start;
        timeline
            .checkpoints
            .take(&mut timeline.machine, here)
            .map_err(SessionError::Message)?;
        Ok(timeline)
    }

    /// A live timeline's machine at its frontier, with the live parts (and
    /// how the live run ended, if it did): the run goes on, or ends, from
    /// there without a debugger. Err if the frontier cannot be reached.
    pub fn into_frontier(mut self) -> Result<(Machine, Live), String> {
        let Some(live) = &self.live else {
            return Err("a replay has no live frontier".to_string());
        };
        if !live.at_frontier {
            let frontier = live.frontier;
            self.go_to(frontier, false)?;
        }
        let live = self.live.take().expect("checked above");
        Ok((self.machine, live))
    }

    pub fn machine(&self) -> &Machine {
        &self.machine
    }

    /// How the replay ended, if it reached its end.
    pub fn finished(&self) -> Option<&Ending> {
        self.finished.as_ref()
    }

    /// Attaches hooks to every hart (see [`Attach`]).
    fn attach(&mut self, attach: Attach) {
        for (id, hart) in self.machine.harts.iter_mut().enumerate() {
            let mut hooks = DebugHooks::default();
            if attach.user {
                hooks.breakpoints = self.hooks.breakpoints.clone();
                hooks.watches = self.hooks.watches.clone();
            }
            if attach.pass == Some(id) {
                hooks.pass_at_step = Some(hart.steps());
            }
            if let Some((_, steps)) = attach.step.filter(|(h, _)| *h == id) {
                hooks.stop_at_step = Some(steps);
            }
            let any = !hooks.breakpoints.is_empty()
                || !hooks.watches.is_empty()
                || hooks.stop_at_step.is_some();
            hart.set_debug(any.then_some(hooks));
        }
    }

    fn detach(&mut self) {
        for hart in &mut self.machine.harts {
            hart.set_debug(None);
        }
    }

    /// Runs the machine until `pause`: live at the frontier, else replaying
    /// the recording (up to the frontier at most).
    fn drive_to(&mut self, pause: u64) -> Ending {
        let machine = &mut self.machine;
        match &mut self.live {
            Some(live) if live.at_frontier => {
                if let Some(ended) = &live.ended {
                    return ended.clone();
                }
                let ending = drive(
                    machine,
                    live.consoles.as_mut(),
                    &mut live.inputs,
                    live.services.as_mut(),
                    None,
                    Some(pause),
                );
                live.frontier = machine.position();
                if !matches!(ending, Ending::Paused | Ending::Debug) {
                    live.ended = Some(ending.clone());
                }
                ending
            }
            live => {
                let pause = match live {
                    Some(live) => pause.min(live.frontier),
                    None => pause,
                };
                let Some(replayer) = &mut self.replayer else {
                    return Ending::Failed("the timeline has nothing to replay".to_string());
                };
                let mut silent = Silent::default();
                let console: &mut dyn Console = match &mut self.echo {
                    // The past behind a live frontier was shown live.
                    Some(echo) if live.is_none() => echo,
                    _ => &mut silent,
                };
                let ending = drive(
                    machine,
                    console,
                    replayer,
                    &mut NoServices,
                    None,
                    Some(pause),
                );
                if let Some(live) = live {
                    if ending == Ending::Paused && machine.position() == live.frontier {
                        live.at_frontier = true;
                    }
                }
                ending
            }
        }
    }

    /// Replays forward to `target` (None: as far as the recording goes),
    /// stopping at hooks already attached; takes a checkpoint at every
    /// multiple of the interval passed, and at `also_checkpoint`.
    fn forward(
        &mut self,
        target: Option<u64>,
        also_checkpoint: Option<u64>,
        interrupted: &mut dyn FnMut() -> bool,
        hooks: Attach,
    ) -> Run {
        if self.finished.is_some() {
            return Run::Finished;
        }
        self.attach(hooks);
        let run = loop {
            let here = self.machine.position();
            let next_checkpoint = (here / self.interval + 1).saturating_mul(self.interval);
            let mut pause = next_checkpoint.min(here.saturating_add(POLL_EVERY));
            if let Some(t) = target {
                pause = pause.min(t.max(here));
            }
            if let Some(c) = also_checkpoint.filter(|&c| c > here) {
                pause = pause.min(c);
            }
            match self.drive_to(pause) {
                Ending::Paused => {
                    let here = self.machine.position();
                    if here.is_multiple_of(self.interval) || also_checkpoint == Some(here) {
                        self.take_checkpoint(here);
                    } else if hooks.roll && target != Some(here) {
                        self.roll_checkpoint(here);
                    }
                    if target.is_some_and(|t| here >= t) {
                        break Run::Reached;
                    }
                    if interrupted() {
                        break Run::Interrupted;
                    }
                }
                Ending::Debug => {
                    let Some((hart, stop)) = self
                        .machine
                        .harts
                        .iter_mut()
                        .enumerate()
                        .find_map(|(id, h)| h.take_debug_stop().map(|s| (id, s)))
                    else {
                        break Run::Finished;
                    };
                    let before = self.machine.position();
                    if let DebugStop::Watch { .. } = stop {
                        // Just after the access: carry on to the position.
                        let before = before - 1;
                        self.detach();
                        let carried = self.drive_to(before + 1);
                        if carried != Ending::Paused {
                            self.finished = Some(carried);
                        }
                        break Run::Hook { hart, stop, before };
                    }
                    break Run::Hook { hart, stop, before };
                }
                other => {
                    self.finished = Some(other);
                    break Run::Finished;
                }
            }
        };
        self.detach();
        run
    }

    /// Puts the machine in the state of the checkpoint at `position` and
    /// starts replaying the recording from there.
    fn restore(&mut self, position: u64) -> Result<(), String> {
        if let Some(recorder) = self.live.as_mut().and_then(|l| l.inputs.recorder.as_mut()) {
            // Everything up to the frontier, for the replay to read.
            recorder.flush();
        }
        self.checkpoints.restore(&mut self.machine, position)?;
        if let Some(echo) = &mut self.echo {
            echo.restored(position);
        }
        let (reader, _) = recording::open(&self.recording).map_err(|e| e.to_string())?;
        let replayer = Replayer::unverified(EventStream::new(reader), &self.machine)
            .map_err(|e| e.message().unwrap_or_default())?;
        self.replayer = Some(match self.live.as_mut() {
            Some(live) => {
                live.at_frontier = false;
                replayer.open_ended()
            }
            None => replayer,
        });
        self.finished = None;
        Ok(())
    }

    /// Goes to `position` from the best place: here if it is ahead,
    /// else the nearest checkpoint before it.
    fn go_to(&mut self, position: u64, leave_near: bool) -> Result<(), String> {
        let here = self.machine.position();
        let best = self
            .checkpoints
            .at_or_before(position)
            .map(|c| c.position());
        // Back, or forward past a checkpoint (which saves replaying the
        // stretch before it).
        if position < here || self.finished.is_some() || best.is_some_and(|b| b > here) {
            let from = best.ok_or_else(|| {
                format!(
                    "position {position} is before the replay's first, {}",
                    self.start
                )
            })?;
            self.restore(from)?;
        }
        let near = position.saturating_sub(NEAR);
        let also = (leave_near && near > self.machine.position()).then_some(near);
        match self.forward(Some(position), also, &mut || false, Attach::default()) {
            Run::Reached => Ok(()),
            _ if self.machine.position() == position => Ok(()),
            _ => Err(format!(
                "the {} ends at position {}, before {position}",
                if self.live.is_some() {
                    "run"
                } else {
                    "recording"
                },
                self.machine.position()
            )),
        }
    }

    fn reverse_step(&mut self, hart: usize) -> Stop {
        let here = self.machine.position();
        let Some(steps) = self.machine.harts.get(hart).map(|h| h.steps()) else {
            return Stop::HistoryStart;
        };
        let Some(from) = steps
            .checked_sub(1)
            .and_then(|want| {
                self.checkpoints
                    .before_hart_step(hart, want, here.saturating_sub(1))
            })
            .map(|c| c.position())
        else {
            return Stop::HistoryStart;
        };
        if let Err(e) = self.restore(from) {
            eprintln!("rewind: {e}");
            return Stop::HistoryStart;
        }
        let near = here.saturating_sub(NEAR);
        let also = (near > from).then_some(near);
        let step = Attach {
            step: Some((hart, steps - 1)),
            ..Attach::default()
        };
        match self.forward(None, also, &mut || false, step) {
            Run::Hook { .. } => Stop::Stepped { hart },
            // The hart's step cannot be missed going forward; if it were,
            // say where the machine is.
            _ => Stop::HistoryStart,
        }
    }

    /// Backward to the last hook hit before here. The user may interrupt
    /// it; it then stops wherever its search was.
    fn reverse_continue(&mut self, interrupted: &mut dyn FnMut() -> bool) -> Stop {
        let here = self.machine.position();
        let mut upper = here;
        loop {
            let Some(from) = self.checkpoints.before(upper).map(|c| c.position()) else {
                if let Err(e) = self.go_to(self.start, false) {
                    eprintln!("rewind: {e}");
                }
                return Stop::HistoryStart;
            };
            if let Err(e) = self.restore(from) {
                eprintln!("rewind: {e}");
                return Stop::HistoryStart;
            }
            // Every hit in [from, upper), the last kept.
            let mut last = None;
            let mut pass = None;
            let scan = |pass| Attach {
                user: true,
                pass,
                step: None,
                roll: false,
            };
            loop {
                match self.forward(Some(upper), None, interrupted, scan(pass)) {
                    Run::Hook {
                        hart,
                        stop,
                        before: at,
                    } => {
                        if at < upper {
                            last = Some((at, hart, stop));
                        }
                        pass = Some(hart);
                    }
                    Run::Interrupted => return Stop::Interrupted,
                    Run::Reached | Run::Finished => break,
                }
            }
            if let Some((at, hart, stop)) = last {
                return match self.go_to(at, true) {
                    Ok(()) => Stop::Hook { hart, stop },
                    Err(e) => {
                        eprintln!("rewind: {e}");
                        Stop::HistoryStart
                    }
                };
            }
            upper = from;
        }
    }
}

impl Debuggee for Timeline {
    fn machine(&self) -> &Machine {
        &self.machine
    }

    fn edit(&mut self) -> Result<&mut Machine, String> {
        match &self.live {
            Some(live) if live.at_frontier && live.ended.is_none() => Ok(&mut self.machine),
            Some(_) => Err("the past must stay as it was recorded: registers and memory change only at the live end of the run".into()),
            None => Err("a replay must stay the recorded run: registers and memory cannot be changed".into()),
        }
    }

    fn inspect(&mut self) -> &mut Machine {
        &mut self.machine
    }

    fn set_hooks(&mut self, hooks: Hooks) {
        self.hooks = hooks;
    }

    fn resume(&mut self, motion: Motion, interrupted: &mut dyn FnMut() -> bool) -> Stop {
        let stop = match motion {
            Motion::Continue | Motion::Step { .. } => {
                let pass = Some(current_hart(&self.machine));
                let step = match motion {
                    Motion::Step { hart } => {
                        self.machine.harts.get(hart).map(|h| (hart, h.steps() + 1))
                    }
                    _ => None,
                };
                let attach = Attach {
                    user: true,
                    pass,
                    step,
                    roll: true,
                };
                match self.forward(self.end, None, interrupted, attach) {
                    Run::Hook {
                        hart,
                        stop: DebugStop::Step,
                        ..
                    } => Stop::Stepped { hart },
                    Run::Hook { hart, stop, .. } => Stop::Hook { hart, stop },
                    Run::Interrupted => Stop::Interrupted,
                    Run::Reached => Stop::HistoryEnd,
                    Run::Finished => self.ended(),
                }
            }
            Motion::ReverseStep { hart } => self.reverse_step(hart),
            Motion::ReverseContinue => self.reverse_continue(interrupted),
        };
        self.checkpoint_here();
        stop
    }

    fn seek(&mut self, position: u64) -> Result<(), String> {
        if position < self.start {
            return Err(format!(
                "position {position} is before the replay's first, {}",
                self.start
            ));
        }
        if let Some(end) = self.end.filter(|&end| position > end) {
            return Err(format!("the recording ends at position {end}"));
        }
        self.go_to(position, true)?;
        self.checkpoint_here();
        Ok(())
    }

    fn bounds(&self) -> (u64, Option<u64>) {
        (self.start, self.end)
    }

    fn describe(&self) -> String {
        let end = match (&self.live, self.end) {
            (Some(live), _) => format!("live up to {}", live.frontier),
            (None, Some(e)) => format!("it ends at {e}"),
            (None, None) => "its end is not recorded (cut short)".to_string(),
        };
        let what = match self.live {
            Some(_) => "live run recorded in",
            None => "replay of",
        };
        format!(
            "{what} {}: positions from {}, {end}; at {}\n{} checkpoints in memory (about {} MiB)",
            self.recording.display(),
            self.start,
            self.machine.position(),
            self.checkpoints.len(),
            self.checkpoints.used() >> 20
        )
    }
}

impl Timeline {
    /// Checkpoints are densest where the user stops. (Not at the end: a
    /// machine past its recorded end must not be run on.)
    fn checkpoint_here(&mut self) {
        if self.finished.is_none() {
            let here = self.machine.position();
            if self.rolling == Some(here) {
                // Where the user stopped is kept.
                self.rolling = None;
            }
            self.take_checkpoint(here);
        }
    }

    /// A checkpoint that cannot be taken (a disk's overlay unreadable) is
    /// only missing: nothing changed, and going back replays from an
    /// earlier one.
    fn take_checkpoint(&mut self, here: u64) {
        if self.checkpoints.take(&mut self.machine, here).is_ok() {
            if let Some(echo) = &mut self.echo {
                echo.checkpoint_taken(here);
            }
        }
    }

    /// Going forward, one checkpoint follows the machine a few million
    /// steps behind (replacing the one before), so that wherever a motion
    /// stops, the first reverse-stepi replays little.
    fn roll_checkpoint(&mut self, here: u64) {
        if let Some(previous) = self.rolling.take() {
            self.checkpoints.drop_at(previous);
        }
        if !self.checkpoints.positions().any(|p| p == here) {
            self.take_checkpoint(here);
            self.rolling = Some(here);
        }
    }

    fn ended(&self) -> Stop {
        match &self.finished {
            Some(ending @ Ending::Stopped(_)) => {
                let (reason, code) = ending.reason_and_code();
                Stop::Ended {
                    what: reason.to_string(),
                    code,
                }
            }
            Some(Ending::Diverged(what)) => {
                eprintln!("rewind: the replay diverged from the recording: {what}");
                Stop::HistoryEnd
            }
            _ => Stop::HistoryEnd,
        }
    }
}
