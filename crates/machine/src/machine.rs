//! The machine: harts and board, stepped round-robin on one host thread.
//!
//! Time advances in rounds. In each round every hart runs until the shared
//! virtual clock reaches the end of the round (`QUANTUM` nanoseconds, i.e.
//! instructions, later), in hart order, so the interleaving of harts depends
//! only on the configuration. When every hart is idle the next round starts at
//! the earliest wake-up deadline instead (idle skipping).

use crate::board::{Board, RAM_BASE};
use crate::boot::{self, BootError, BootPlan, Firmware};
use crate::devices::clint::TIMEBASE_HZ;
use crate::devices::finisher::FinisherRequest;
use crate::fdt::{build_fdt, FdtConfig};
use crate::loader::{self, KernelImage, LoadError};
use crate::sbi::{self, HartState, SbiOutcome};
use crate::virtio::blk::BlockBackend;
use crate::virtio::{Virtio, VirtioConfig, SLOTS};
use rewind_hart::{Exit, Hart, WriteMark};
use std::sync::Arc;

/// Length of a round in virtual nanoseconds (= instructions per hart).
pub const QUANTUM: u64 = 10_000;

/// The ISA the hart implements, as the device tree advertises it.
pub const ISA: &str =
    "rv64imafdc_zicbom_zicboz_zicntr_zicsr_zifencei_zihintpause_zihpm_zba_zbb_zbs_sstc";

/// What a machine is built from. Together with the inputs delivered to it,
/// this determines everything the guest does.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub mem_size: u64,
    pub harts: usize,
    pub firmware: Firmware,
    pub kernel: Option<KernelImage>,
    pub initrd: Option<Arc<[u8]>>,
    pub bootargs: String,
    /// Wall-clock time the RTC shows at virtual time zero, in ns since 1970.
    pub rtc_epoch_ns: u64,
    /// Seeds guest entropy (the device tree's rng-seed and virtio-rng).
    pub seed: u64,
    /// The virtio devices besides disks.
    pub virtio: VirtioConfig,
}

/// What a round ended with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Round {
    /// At least one hart ran to the end of the round.
    Running,
    /// Every hart waits for an interrupt; the earliest wakes by itself at
    /// virtual time `wake` (u64::MAX: only input can wake it). The caller
    /// delivers input or calls [`Machine::skip_to`].
    Idle {
        wake: u64,
    },
    Stopped(StopReason),
    /// The machine reached the position [`Machine::run_round_until`] was
    /// given, inside the round; the next call goes on from exactly there.
    Paused,
    /// A debugger's hook stopped `hart` inside the round (see
    /// [`rewind_hart::Hart::take_debug_stop`]); the next call goes on from
    /// exactly there.
    Debug {
        hart: usize,
    },
}

/// Where a round stands when the machine stops inside it (see
/// [`Machine::run_round_until`]). Machine state: a machine restored while
/// paused must finish the round as the original would have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RoundCursor {
    /// The hart whose turn it is; harts before it have had theirs.
    pub hart: usize,
    /// Some hart has run to the end of the round (it is not all idle).
    pub busy: bool,
}

/// Why the machine stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// The guest powered off successfully.
    PowerOff,
    /// The guest reported failure with this code.
    Fail(u16),
    /// Every hart waits for an interrupt that nothing can raise.
    Deadlock,
    /// With the built-in SBI, a trap reached M-mode, where no firmware runs.
    FirmwareTrap {
        hart: usize,
        mcause: u64,
        mepc: u64,
        mtval: u64,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum MachineError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error(transparent)]
    Boot(#[from] BootError),
    #[error("cannot build the device tree: {0}")]
    Fdt(String),
    #[error("the machine would need {0} virtio devices (disks, network cards, hvc0 and the entropy source), but the board has {SLOTS} slots")]
    TooManyVirtio(usize),
}

pub struct Machine {
    pub config: MachineConfig,
    pub plan: BootPlan,
    pub harts: Vec<Hart>,
    pub states: Vec<HartState>,
    pub board: Board,
    /// Virtual time at the start of the current round.
    pub round_start: u64,
    /// Number of resets the guest asked for.
    pub resets: u64,
    /// Rounds run since power-on; never restarts, so it names a round
    /// boundary exactly (inputs are recorded at round boundaries).
    pub rounds: u64,
    /// Steps the harts took before the last guest reset.
    pub steps_before_reset: u64,
    /// RAM's write mark just after the boot images were loaded: a page not
    /// written since holds what it held at power-on (see
    /// [`Machine::written_since_power_on`]).
    pub power_on_mark: WriteMark,
    /// Set while the machine is stopped inside a round; None at a round
    /// boundary, the only place where inputs are delivered.
    pub cursor: Option<RoundCursor>,
}

/// The part of [`Machine::fill_power_on`] for the RAM window that starts at
/// RAM offset `start` (a page boundary).
fn fill_window(loads: &[loader::Segment], window: &mut [u8], start: u64, keep: &[usize]) {
    let page_size = rewind_hart::PAGE_SIZE;
    let end = start + window.len() as u64;
    for seg in loads {
        // The plan was checked to fit in RAM when the machine was built.
        let seg_start = seg.paddr - RAM_BASE;
        let mut at = seg_start.max(start);
        let until = (seg_start + seg.data.len() as u64).min(end);
        while at < until {
            let page = (at / page_size) as usize;
            let page_end = ((page as u64 + 1) * page_size).min(until);
            if keep.binary_search(&page).is_err() {
                let from = (at - seg_start) as usize..(page_end - seg_start) as usize;
                window[(at - start) as usize..(page_end - start) as usize]
                    .copy_from_slice(&seg.data[from]);
            }
            at = page_end;
        }
    }
}

/// 32 bytes derived from the seed (splitmix64), for the guest's entropy pool.
fn seed_bytes(seed: u64) -> [u8; 32] {
    let mut state = seed;
    let mut out = [0u8; 32];
    for chunk in out.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out
}

impl Machine {
    /// A machine without disks.
    pub fn new(config: MachineConfig) -> Result<Self, MachineError> {
        Self::with_disks(config, Vec::new())
    }

    /// A machine whose virtio-blk devices are backed by `disks`, in order
    /// (the first is the guest's vda).
    pub fn with_disks(
        config: MachineConfig,
        disks: Vec<Box<dyn BlockBackend>>,
    ) -> Result<Self, MachineError> {
        let mut machine = Self::with_zero_ram(config, disks)?;
        loader::load_segments(
            "the boot images",
            &machine.plan.loads,
            &mut machine.board.ram,
        )?;
        // Loading counts as power-on, not as a write after it.
        machine.power_on_mark = machine.board.ram.mark();
        Ok(machine)
    }

    /// As [`Machine::with_disks`], but with the boot images left out of RAM,
    /// which stays all zero: for a caller that is about to replace RAM
    /// (restoring a snapshot), so that it neither copies the images in nor
    /// has to zero them again. Everything else is as at power-on, and a
    /// guest reset loads the images as usual.
    pub fn with_zero_ram(
        config: MachineConfig,
        disks: Vec<Box<dyn BlockBackend>>,
    ) -> Result<Self, MachineError> {
        let virtio = Virtio::build(&config.virtio, disks, config.seed)
            .map_err(MachineError::TooManyVirtio)?;
        let virtio_mmio = virtio.fdt_entries();
        let mut fdt_error = None;
        let mut fdt = |initrd| {
            let cfg = FdtConfig {
                harts: config.harts,
                mem_base: RAM_BASE,
                mem_size: config.mem_size,
                timebase_hz: TIMEBASE_HZ,
                isa: ISA.to_string(),
                mmu_type: "riscv,sv57",
                bootargs: config.bootargs.clone(),
                initrd,
                stdout_path: "/soc/serial@10000000",
                virtio_mmio: virtio_mmio.clone(),
                rng_seed: Some(seed_bytes(config.seed)),
            };
            build_fdt(&cfg).unwrap_or_else(|e| {
                fdt_error = Some(e.to_string());
                Vec::new()
            })
        };
        let plan = boot::plan(
            config.mem_size,
            config.harts,
            &config.firmware,
            config.kernel.as_ref(),
            config.initrd.as_ref(),
            &mut fdt,
        )?;
        if let Some(e) = fdt_error {
            return Err(MachineError::Fdt(e));
        }
        let mut board = Board::new(config.mem_size, config.harts, config.rtc_epoch_ns);
        loader::check_segments("the boot images", &plan.loads, &board.ram)?;
        board.virtio = virtio;
        let (harts, states) = Self::reset_harts(&config, &plan);
        let power_on_mark = board.ram.mark();
        Ok(Machine {
            config,
            plan,
            harts,
            states,
            board,
            round_start: 0,
            resets: 0,
            rounds: 0,
            steps_before_reset: 0,
            power_on_mark,
            cursor: None,
        })
    }

    /// Pages written since power-on, ascending: every other page holds
    /// what the boot images put there (zero outside them), so a snapshot
    /// need not store it when the restoring machine rebuilds that from the
    /// same images. (A guest reset reloads the images; RAM's write history
    /// goes on, so the rule still holds after one.)
    pub fn written_since_power_on(&self) -> Vec<usize> {
        self.board.ram.written_since(self.power_on_mark)
    }

    /// Pages that may hold anything but zeros, ascending: those written
    /// since power-on and those the boot images fill. Every other page is
    /// zero, by the rule of [`Machine::written_since_power_on`], so code
    /// that must look at all of RAM (the replay checkpointer at start) can
    /// skip them without reading 512 MiB.
    pub fn pages_maybe_nonzero(&self) -> Vec<usize> {
        let page_size = rewind_hart::PAGE_SIZE;
        let mut pages = self.written_since_power_on();
        for seg in &self.plan.loads {
            // The plan was checked to fit in RAM when the machine was built.
            let start = seg.paddr - RAM_BASE;
            let end = start + seg.data.len() as u64;
            pages.extend((start / page_size..end.div_ceil(page_size)).map(|p| p as usize));
        }
        pages.sort_unstable();
        pages.dedup();
        pages
    }

    /// Names RAM at power-on: a BLAKE3 hash of every boot image segment
    /// with its address. Two machines with the same id start from the same
    /// RAM, so a snapshot stored relative to it restores only onto it.
    /// (About 8 ms for a 42 MB kernel and initrd: computed on demand.)
    pub fn power_on_id(&self) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"rewind power-on RAM, version 1");
        hasher.update(&self.config.mem_size.to_le_bytes());
        for seg in &self.plan.loads {
            hasher.update(&seg.paddr.to_le_bytes());
            hasher.update(&(seg.data.len() as u64).to_le_bytes());
            hasher.update(&seg.zero_fill.to_le_bytes());
            hasher.update(&seg.data);
        }
        *hasher.finalize().as_bytes()
    }

    /// Writes the power-on content of every page not in `keep` (ascending)
    /// into `ram`, a buffer of this machine's RAM size that is zero wherever
    /// it is not in `keep`: what a restore does for the pages a snapshot
    /// leaves to the boot images. Two threads, one per half of RAM: most of
    /// the cost is the first touch of each page.
    pub fn fill_power_on(&self, ram: &mut [u8], keep: &[usize]) {
        assert_eq!(
            ram.len() as u64,
            self.config.mem_size,
            "a buffer of this RAM's size"
        );
        let page = rewind_hart::PAGE_SIZE as usize;
        let half = ram.len() / page / 2 * page;
        let (low, high) = ram.split_at_mut(half);
        let loads = &self.plan.loads;
        std::thread::scope(|s| {
            s.spawn(|| fill_window(loads, high, half as u64, keep));
            fill_window(loads, low, 0, keep);
        });
    }

    fn fresh_board(config: &MachineConfig, plan: &BootPlan) -> Result<Board, LoadError> {
        let mut board = Board::new(config.mem_size, config.harts, config.rtc_epoch_ns);
        loader::load_segments("the boot images", &plan.loads, &mut board.ram)?;
        Ok(board)
    }

    fn reset_harts(config: &MachineConfig, plan: &BootPlan) -> (Vec<Hart>, Vec<HartState>) {
        let builtin = config.firmware == Firmware::Builtin;
        let mut harts = Vec::new();
        let mut states = Vec::new();
        for (id, start) in plan.harts.iter().enumerate() {
            let mut hart = Hart::new(id, start.pc);
            hart.prv = start.prv;
            hart.x[10] = start.a0;
            hart.x[11] = start.a1;
            hart.x[12] = start.a2;
            if builtin {
                prepare_for_supervisor(&mut hart);
            }
            harts.push(hart);
            states.push(if start.running {
                HartState::Started
            } else {
                HartState::Stopped
            });
        }
        (harts, states)
    }

    /// Resets the machine to its boot state (guest-requested reboot).
    fn reset(&mut self) {
        let mut board = Self::fresh_board(&self.config, &self.plan)
            .expect("the images loaded before, into RAM of the same size");
        board.uart.output = std::mem::take(&mut self.board.uart.output);
        // Devices keep their backends (disks) and what waits for the host;
        // their transports start over.
        board.virtio = std::mem::take(&mut self.board.virtio);
        board.virtio.reset();
        board.ram.continue_history(&self.board.ram);
        self.board = board;
        self.steps_before_reset += self.harts.iter().map(|h| h.steps()).sum::<u64>();
        let (mut harts, states) = Self::reset_harts(&self.config, &self.plan);
        for (old, new) in self.harts.iter_mut().zip(&mut harts) {
            old.hand_engine_to(new);
        }
        self.harts = harts;
        self.states = states;
        self.round_start = 0;
        self.resets += 1;
        self.cursor = None;
    }

    /// Runs one round.
    pub fn run_round(&mut self) -> Round {
        self.run_round_until(None)
    }

    /// Runs the rest of the current round, or a new one at a boundary, but
    /// pauses with [`Round::Paused`] at [position](Machine::position)
    /// `target`: once the harts have taken that many steps in all and one
    /// is about to take the next. A round begun at a boundary is counted
    /// even if the machine pauses before its first step. The next call
    /// (with a later target, or none) goes on exactly as if the machine had
    /// not stopped.
    pub fn run_round_until(&mut self, target: Option<u64>) -> Round {
        let mut cursor = match self.cursor.take() {
            Some(cursor) => cursor,
            None => {
                self.rounds += 1;
                RoundCursor {
                    hart: 0,
                    busy: false,
                }
            }
        };
        let until = self.round_start.saturating_add(QUANTUM);
        let several = self.harts.len() > 1;
        while cursor.hart < self.harts.len() {
            let id = cursor.hart;
            if self.states[id] == HartState::Stopped {
                self.harts[id].skip_idle_to(until);
                cursor.hart += 1;
                continue;
            }
            loop {
                // The steps this hart may take before the target.
                let max_steps = match target {
                    Some(t) => self.harts[id]
                        .steps()
                        .saturating_add(t.saturating_sub(self.position())),
                    None => u64::MAX,
                };
                let exit = self.harts[id].run_bounded(&mut self.board, until, max_steps);
                match exit {
                    Exit::Retired => {
                        self.cursor = Some(cursor);
                        return Round::Paused;
                    }
                    Exit::Debug => {
                        self.cursor = Some(cursor);
                        return Round::Debug { hart: id };
                    }
                    Exit::Limit => cursor.busy = true,
                    Exit::Idle => {}
                    Exit::Stop => return self.handle_finisher(),
                    Exit::SupervisorCall => {
                        match sbi::handle_call(
                            &mut self.harts,
                            &mut self.states,
                            id,
                            &mut self.board,
                        ) {
                            SbiOutcome::Continue => continue,
                            SbiOutcome::HartStopped => self.harts[id].skip_idle_to(until),
                            SbiOutcome::Shutdown => return Round::Stopped(StopReason::PowerOff),
                            SbiOutcome::Reboot => {
                                self.reset();
                                return Round::Running;
                            }
                        }
                    }
                    Exit::MachineTrap => {
                        let c = &self.harts[id].csr;
                        return Round::Stopped(StopReason::FirmwareTrap {
                            hart: id,
                            mcause: c.mcause,
                            mepc: c.mepc,
                            mtval: c.mtval,
                        });
                    }
                }
                break;
            }
            if several {
                // Another hart runs next and may store to the reserved address.
                self.harts[id].clear_reservation();
            }
            cursor.hart += 1;
        }
        self.round_start = until;
        if !cursor.busy {
            return Round::Idle {
                wake: self.next_wake(),
            };
        }
        Round::Running
    }

    /// True while the machine is stopped inside a round (see
    /// [`Machine::run_round_until`]), where no input may be delivered.
    pub fn inside_round(&self) -> bool {
        self.cursor.is_some()
    }

    /// When the earliest idle hart wakes by itself (u64::MAX: never).
    fn next_wake(&mut self) -> u64 {
        let mut wake = u64::MAX;
        for (hart, state) in self.harts.iter_mut().zip(&self.states) {
            if *state == HartState::Started {
                wake = wake.min(hart.next_wake(&mut self.board));
            }
        }
        wake
    }

    /// Advances idle time to `wake` (from [`Round::Idle`]); every hart is
    /// waiting, so nothing but the clock changes.
    pub fn skip_to(&mut self, wake: u64) {
        if wake > self.round_start && wake != u64::MAX {
            self.round_start = wake;
            for hart in &mut self.harts {
                hart.skip_idle_to(wake);
            }
        }
    }

    /// Passes `rounds` rounds at once in which every hart is idle and nothing
    /// can wake one (what [`Round::Idle`] with `wake: u64::MAX` says), as
    /// running them would: only the round count and the clock move. False,
    /// and nothing changes, if the clock would pass `max_ns`.
    pub fn skip_idle_rounds(&mut self, rounds: u64, max_ns: u64) -> bool {
        let Some(start) = rounds
            .checked_mul(QUANTUM)
            .and_then(|ns| self.round_start.checked_add(ns))
            .filter(|&start| start <= max_ns)
        else {
            return false;
        };
        if rounds == 0 || self.inside_round() {
            return rounds == 0;
        }
        self.rounds += rounds;
        self.round_start = start;
        let several = self.harts.len() > 1;
        for hart in &mut self.harts {
            hart.skip_idle_to(start);
            if several {
                hart.clear_reservation();
            }
        }
        true
    }

    /// Runs rounds until the machine stops, skipping idle time at once. For
    /// machines without interactive input.
    pub fn run_to_end(&mut self, mut on_output: impl FnMut(&[u8]) -> bool) -> Option<StopReason> {
        loop {
            let round = self.run_round();
            let out = self.take_console_output();
            if !out.is_empty() && !on_output(&out) {
                return None;
            }
            match round {
                Round::Running => {}
                Round::Idle { wake: u64::MAX } => return Some(StopReason::Deadlock),
                Round::Idle { wake } => self.skip_to(wake),
                Round::Stopped(reason) => return Some(reason),
                Round::Paused | Round::Debug { .. } => {
                    unreachable!("no target was given and no debugger is attached")
                }
            }
        }
    }

    fn handle_finisher(&mut self) -> Round {
        match self.board.finisher.request.take() {
            Some(FinisherRequest::Pass) => Round::Stopped(StopReason::PowerOff),
            Some(FinisherRequest::Fail(code)) => Round::Stopped(StopReason::Fail(code)),
            Some(FinisherRequest::Reset) => {
                self.reset();
                Round::Running
            }
            None => Round::Running,
        }
    }

    /// True when every running hart is idle in WFI: a good moment to wait for
    /// input instead of skipping ahead.
    pub fn all_waiting(&self) -> bool {
        self.harts
            .iter()
            .zip(&self.states)
            .all(|(h, s)| *s == HartState::Stopped || h.waiting)
    }

    /// Offers console input to the UART at this round boundary; returns how
    /// many bytes it took (the rest must wait for a later round).
    pub fn push_console_input(&mut self, bytes: &[u8]) -> usize {
        let mut taken = 0;
        for &b in bytes {
            if !self.board.uart.push_input(b) {
                break;
            }
            taken += 1;
        }
        self.after_input();
        taken
    }

    /// How many console bytes the UART can take now without losing them:
    /// none while the guest is not listening (see the UART's module
    /// comment), else the room in its receive FIFO.
    pub fn console_input_space(&self) -> usize {
        match self.board.uart.accepts_input() {
            true => self.board.uart.rx_space(),
            false => 0,
        }
    }

    /// Takes the bytes the guest wrote to the console since the last call.
    pub fn take_console_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.board.uart.output)
    }

    /// Makes the harts see interrupt lines changed by an input (or a
    /// restored state).
    pub(crate) fn after_input(&mut self) {
        self.board.sync_interrupts(self.round_start);
        for hart in &mut self.harts {
            hart.request_interrupt_resample();
        }
    }

    /// Offers a frame received from outside to network device `index` at
    /// this round boundary. True when the device took it (delivered, or
    /// dropped as a real card would); false when the guest has no receive
    /// buffer now and the frame should be offered again after a later round.
    pub fn push_net_frame(&mut self, index: usize, frame: &[u8]) -> bool {
        let taken = self
            .board
            .virtio
            .push_net_frame(&mut self.board.ram, index, frame);
        self.after_input();
        taken
    }

    /// Frames network device `index` sent since the last call.
    pub fn take_net_frames(&mut self, index: usize) -> Vec<Vec<u8>> {
        self.board.virtio.take_net_frames(index)
    }

    /// Offers input to the virtio console (hvc0) at this round boundary;
    /// returns how many bytes it took (the rest must wait).
    pub fn push_hvc_input(&mut self, bytes: &[u8]) -> usize {
        let taken = self.board.virtio.push_hvc_input(&mut self.board.ram, bytes);
        self.after_input();
        taken
    }

    /// Bytes the guest wrote to hvc0 since the last call.
    pub fn take_hvc_output(&mut self) -> Vec<u8> {
        self.board.virtio.take_hvc_output()
    }

    /// With host entropy: how many bytes the guest is waiting for.
    pub fn entropy_wanted(&mut self) -> usize {
        self.board.virtio.entropy_wanted(&mut self.board.ram)
    }

    /// With host entropy: delivers host bytes at this round boundary;
    /// returns how many the guest's requests took.
    pub fn push_entropy(&mut self, bytes: &[u8]) -> usize {
        let taken = self.board.virtio.push_entropy(&mut self.board.ram, bytes);
        self.after_input();
        taken
    }

    /// One-line problems devices found with what the guest asked of them.
    /// Runs every hart on `engine` from now on (see [`rewind_hart::Engine`]:
    /// nothing the guest can observe changes). Err: one sentence on why
    /// the host cannot (harts already moved keep the new engine, which
    /// changes nothing observable either).
    pub fn set_engine(&mut self, engine: rewind_hart::Engine) -> Result<(), String> {
        for hart in &mut self.harts {
            hart.set_engine(engine)?;
        }
        Ok(())
    }

    /// See [`rewind_hart::Hart::set_translation_threshold`].
    pub fn set_translation_threshold(&mut self, runs: u16) {
        for hart in &mut self.harts {
            hart.set_translation_threshold(runs);
        }
    }

    /// The engine the harts run.
    pub fn engine(&self) -> rewind_hart::Engine {
        self.harts.first().map(|h| h.engine()).unwrap_or_default()
    }

    pub fn take_warnings(&mut self) -> Vec<String> {
        self.board.virtio.take_warnings()
    }

    /// The backend of disk `index`, e.g. to save its overlay at exit.
    pub fn disk_mut(&mut self, index: usize) -> Option<&mut dyn BlockBackend> {
        self.board.virtio.disk_mut(index)
    }

    /// Instructions retired by each hart.
    pub fn instret(&self) -> Vec<u64> {
        self.harts.iter().map(|h| h.instret).collect()
    }

    /// Instructions each hart retired in translated code since its engine
    /// was set (all 0 under the interpreter): a host-side statistic, not
    /// state.
    pub fn translated_instructions(&self) -> Vec<u64> {
        self.harts.iter().map(|h| h.translated_steps()).collect()
    }

    /// Where the machine is in time: the steps all harts have taken since
    /// power-on, across resets. A step is an instruction retiring or a
    /// trap being entered; idle time and the machine's own work between
    /// rounds are not steps. Position N names one state: the machine after
    /// N steps, just before it takes the next (with any idle time, round
    /// end and inputs that come first behind it). [`Machine::run_round_until`]
    /// stops there, a debugger's breakpoint stops there, and `--stop-at`,
    /// `--snapshot-at` and seeking all count in positions.
    pub fn position(&self) -> u64 {
        self.steps_before_reset + self.harts.iter().map(|h| h.steps()).sum::<u64>()
    }

    /// Guest time in nanoseconds.
    pub fn guest_time_ns(&self) -> u64 {
        self.round_start
    }

    /// Every part of the guest-visible state besides the harts' registers
    /// and RAM, by name, in one fixed encoding: HSM states, each device,
    /// each hart's TLB, the clock. Replay checkpoints hash these one by one
    /// to name what differs.
    pub fn state_parts(&self) -> Vec<(String, Vec<u8>)> {
        use erased::Encode;
        let b = &self.board;
        let mut parts = vec![
            ("hart states (HSM)".to_string(), self.states.encode()),
            ("UART".to_string(), b.uart.encode()),
            ("CLINT".to_string(), b.clint.encode()),
            ("PLIC".to_string(), b.plic.encode()),
            ("RTC".to_string(), b.rtc.encode()),
            ("test finisher".to_string(), b.finisher.encode()),
        ];
        // Each hart's TLB: architectural, since a hart may keep using a
        // translation its page table no longer has (see rewind-hart's tlb.rs).
        for hart in &self.harts {
            parts.push((format!("hart {} TLB", hart.id), hart.tlb_state().encode()));
        }
        for slot in b.virtio.state() {
            let kind = match slot.device {
                crate::virtio::DeviceState::Blk(_) => "block",
                crate::virtio::DeviceState::Net(_) => "network",
                crate::virtio::DeviceState::Console(_) => "console",
                crate::virtio::DeviceState::Rng(_) => "entropy",
            };
            parts.push((format!("virtio slot {} ({kind})", slot.slot), slot.encode()));
        }
        parts.push(("clock".to_string(), self.round_start.encode()));
        parts.push(("place in the round".to_string(), self.cursor.encode()));
        parts
    }

    /// A hash of the whole guest-visible machine state: every hart's
    /// architectural state and TLB, HSM states, every device, the clock,
    /// and RAM.
    /// Two machines with equal hashes behave identically from here on.
    /// (Output already handed to the host is not state; what is queued is.)
    pub fn state_hash(&self) -> [u8; 32] {
        self.state_hash_with_ram(self.ram_digest())
    }

    /// [`Machine::state_hash`] from the digest of every RAM page, in order,
    /// which the caller keeps up to date (a recording's checkpoints do, and
    /// so spare its end a hash of every page the guest ever wrote).
    pub fn state_hash_from_pages(
        &self,
        digests: impl ExactSizeIterator<Item = crate::page_digest::Digest>,
    ) -> [u8; 32] {
        assert_eq!(digests.len(), self.board.ram.pages(), "a digest per page");
        self.state_hash_with_ram(Self::ram_digest_of(digests))
    }

    fn state_hash_with_ram(&self, ram_digest: [u8; 32]) -> [u8; 32] {
        use erased::Encode;
        let mut hasher = blake3::Hasher::new();
        let mut add = |bytes: &[u8]| {
            hasher.update(&(bytes.len() as u64).to_le_bytes());
            hasher.update(bytes);
        };
        let harts: Vec<_> = self.harts.iter().map(Hart::arch_state).collect();
        add(&harts.encode());
        for (_, bytes) in self.state_parts() {
            add(&bytes);
        }
        hasher.update(&ram_digest);
        *hasher.finalize().as_bytes()
    }

    /// A hash of RAM's content: of each page's BLAKE3 digest in order,
    /// which for pages known to be zero (not in
    /// [`Machine::pages_maybe_nonzero`]) is a constant, so that neither
    /// reading them nor faulting them in on the host costs anything. (One
    /// BLAKE3 of all 512 MiB took 120 ms at the end of every recording,
    /// plus the host faults of reading pages the guest never touched.)
    fn ram_digest(&self) -> [u8; 32] {
        let zero = crate::page_digest::zero_page();
        let listed = self.pages_maybe_nonzero();
        Self::ram_digest_of(crate::page_digest::with_fresh(
            &self.board.ram,
            &listed,
            move |_| zero,
        ))
    }

    /// The RAM part of the state hash from every page's digest, in order.
    fn ram_digest_of(digests: impl Iterator<Item = crate::page_digest::Digest>) -> [u8; 32] {
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"rewind RAM, page digests, version 1");
        for digest in digests {
            hasher.update(&digest);
        }
        *hasher.finalize().as_bytes()
    }
}

/// Serialization of state parts for hashing, in one fixed encoding.
mod erased {
    pub trait Encode {
        fn encode(&self) -> Vec<u8>;
    }
    impl<T: serde::Serialize> Encode for T {
        fn encode(&self) -> Vec<u8> {
            // bincode's default options: fixed-width little-endian integers,
            // so the bytes depend only on the values.
            bincode::serialize(self).expect("plain data always serializes")
        }
    }
}

/// The M-mode set-up the built-in firmware does before entering S-mode, as
/// OpenSBI would: delegate what the kernel handles, open PMP and counters,
/// and enable Sstc and the cache-block instructions for S-mode.
fn prepare_for_supervisor(hart: &mut Hart) {
    use rewind_hart::bus::irq;
    use rewind_hart::csr;
    hart.host_firmware = true;
    // Every exception the kernel handles: all but ecalls from S and M.
    hart.csr.medeleg = 0xb1ff;
    hart.csr.mideleg = irq::SSIP | irq::STIP | irq::SEIP;
    hart.csr.mcounteren = 0xffff_ffff;
    // As OpenSBI does: user mode may read cycle, time and instret (the vDSO's
    // clock_gettime uses rdtime; Linux only widens this with an SBI PMU).
    hart.csr.scounteren = 0b111;
    hart.csr.menvcfg =
        csr::MENVCFG_STCE | csr::ENVCFG_CBZE | csr::ENVCFG_CBCFE | (1 << 4/* CBIE: flush */);
    // One NAPOT entry covering all of memory, read-write-execute.
    hart.csr.pmpaddr[0] = (1 << 54) - 1;
    hart.csr.pmpcfg[0] = 0x1f;
}
