//! The machine: harts and board, stepped round-robin on one host thread.
//!
//! Time advances in rounds. In each round every hart runs until the shared
//! virtual clock reaches the end of the round (`QUANTUM` nanoseconds, i.e.
//! instructions, later), in hart order, so the interleaving of harts depends
//! only on the configuration. When every hart is idle the next round starts at
//! the earliest wake-up deadline instead (idle skipping).

use crate::board::Board;
use crate::devices::finisher::FinisherRequest;
use crate::loader::{self, LoadError, Segment};
use rewind_hart::{Exit, Hart};

/// Length of a round in virtual nanoseconds (= instructions per hart).
pub const QUANTUM: u64 = 10_000;

/// What a machine is built from.
#[derive(Clone, Debug)]
pub struct MachineConfig {
    pub mem_size: u64,
    pub harts: usize,
    /// Name of the image, for error messages.
    pub image_name: String,
    pub segments: Vec<Segment>,
    pub entry: u64,
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
}

pub struct Machine {
    pub config: MachineConfig,
    pub harts: Vec<Hart>,
    pub board: Board,
    /// Virtual time at the start of the current round.
    pub round_start: u64,
    /// Number of resets the guest asked for.
    pub resets: u64,
}

impl Machine {
    pub fn new(config: MachineConfig) -> Result<Self, LoadError> {
        let mut board = Board::new(config.mem_size, config.harts);
        loader::load_segments(&config.image_name, &config.segments, &mut board.ram)?;
        let harts = Self::reset_harts(&config);
        Ok(Machine {
            config,
            harts,
            board,
            round_start: 0,
            resets: 0,
        })
    }

    fn reset_harts(config: &MachineConfig) -> Vec<Hart> {
        (0..config.harts)
            .map(|id| {
                let mut hart = Hart::new(id, config.entry);
                // As on QEMU `virt` without firmware: a0 = hart id.
                hart.x[10] = id as u64;
                hart
            })
            .collect()
    }

    /// Resets the machine to its initial state, as the test finisher's reset.
    fn reset(&mut self) {
        let mut board = Board::new(self.config.mem_size, self.config.harts);
        loader::load_segments(
            &self.config.image_name,
            &self.config.segments,
            &mut board.ram,
        )
        .expect("the image loaded before, into RAM of the same size");
        board.uart.output = std::mem::take(&mut self.board.uart.output);
        self.board = board;
        self.harts = Self::reset_harts(&self.config);
        self.round_start = 0;
        self.resets += 1;
    }

    /// Runs one round; returns why the machine stopped, if it did.
    pub fn run_round(&mut self) -> Option<StopReason> {
        let until = self.round_start.saturating_add(QUANTUM);
        let mut all_idle = true;
        let several = self.harts.len() > 1;
        for hart in &mut self.harts {
            let exit = hart.run(&mut self.board, until);
            if several {
                // Another hart runs next and may store to the reserved address.
                hart.clear_reservation();
            }
            match exit {
                Exit::Stop => return self.handle_finisher(),
                Exit::Limit => all_idle = false,
                Exit::Idle => {}
                // Only harts with host firmware produce these; none do yet.
                Exit::SupervisorCall | Exit::MachineTrap => {
                    return Some(StopReason::Deadlock);
                }
            }
        }
        self.round_start = until;
        if all_idle {
            let wake = self
                .harts
                .iter_mut()
                .map(|h| h.next_wake(&mut self.board))
                .min()
                .unwrap_or(u64::MAX);
            if wake == u64::MAX {
                return Some(StopReason::Deadlock);
            }
            if wake > self.round_start {
                self.round_start = wake;
                for hart in &mut self.harts {
                    hart.skip_idle_to(wake);
                }
            }
        }
        None
    }

    fn handle_finisher(&mut self) -> Option<StopReason> {
        match self.board.finisher.request.take() {
            Some(FinisherRequest::Pass) => Some(StopReason::PowerOff),
            Some(FinisherRequest::Fail(code)) => Some(StopReason::Fail(code)),
            Some(FinisherRequest::Reset) => {
                self.reset();
                None
            }
            None => None,
        }
    }

    /// Takes the bytes the guest wrote to the console since the last call.
    pub fn take_console_output(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.board.uart.output)
    }

    /// Instructions retired by each hart.
    pub fn instret(&self) -> Vec<u64> {
        self.harts.iter().map(|h| h.instret).collect()
    }
}
