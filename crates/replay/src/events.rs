//! What a recording holds after its header: the machine's external inputs,
//! each tagged with the position at which the machine took it, and periodic
//! checkpoints of its state.
//!
//! A position is a round boundary. Rounds are counted from power-on and never
//! restart (not even when the guest reboots), so a round number names one
//! boundary exactly; the instruction count beside it is what a user reads,
//! and replay also checks it, which catches divergence early.

use rewind_hart::ArchState;
use serde::{Deserialize, Serialize};

/// A round boundary of the machine.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Position {
    /// Rounds run since power-on.
    pub round: u64,
    /// Instructions retired by all harts since power-on.
    pub icount: u64,
}

/// Which console an input went to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Port {
    /// The UART (ttyS0).
    Serial,
    /// The virtio console (hvc0).
    Hvc,
}

/// How a recorded run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EndPhase {
    /// The run ended right after the round's output was handled, before any
    /// input was delivered at this boundary (the guest stopped, the kernel
    /// panicked, or a signal interrupted Rewind).
    BeforeInput,
    /// The run ended after this boundary's inputs and idle skip (the user
    /// quit with Ctrl-A x).
    AfterInput,
    /// The run ended inside the round that ends at this boundary, at the
    /// position's exact instruction count (`--stop-at`), before the round
    /// was over.
    InsideRound,
}

/// One entry of a recording.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Event {
    /// Console bytes the guest took at this boundary.
    Console {
        at: Position,
        port: Port,
        bytes: Vec<u8>,
    },
    /// A frame network device `device` took at this boundary.
    Packet {
        at: Position,
        device: u32,
        frame: Vec<u8>,
    },
    /// Host entropy the virtio-rng device took at this boundary.
    Entropy { at: Position, bytes: Vec<u8> },
    /// Every hart was idle and the clock moved to `to_ns` instead of the next
    /// deadline (real-time pacing while waiting for input).
    Skip { at: Position, to_ns: u64 },
    /// The machine's state at this boundary, for divergence checks.
    Checkpoint { at: Position, state: Checkpoint },
    /// The last entry of a complete recording.
    End {
        at: Position,
        phase: EndPhase,
        guest_ns: u64,
        /// What ended the run, as `rewind run --report` names it.
        reason: String,
        /// The machine's state hash (`Machine::state_hash`) at the end.
        state_hash: [u8; 32],
    },
}

impl Event {
    /// Where the machine took this event.
    pub fn at(&self) -> Position {
        match self {
            Event::Console { at, .. }
            | Event::Packet { at, .. }
            | Event::Entropy { at, .. }
            | Event::Skip { at, .. }
            | Event::Checkpoint { at, .. }
            | Event::End { at, .. } => *at,
        }
    }

    /// A short name of the event's kind, for `rewind inspect`.
    pub fn kind(&self) -> &'static str {
        match self {
            Event::Console {
                port: Port::Serial, ..
            } => "serial input",
            Event::Console {
                port: Port::Hvc, ..
            } => "hvc input",
            Event::Packet { .. } => "network frame",
            Event::Entropy { .. } => "host entropy",
            Event::Skip { .. } => "idle skip",
            Event::Checkpoint { .. } => "checkpoint",
            Event::End { .. } => "end",
        }
    }
}

impl Checkpoint {
    /// The pages written since the previous checkpoint with their hashes,
    /// or None if the lists are malformed (a damaged recording).
    pub fn pages(&self) -> Option<Vec<(u32, u32)>> {
        if self.page_steps.len() != self.page_hashes.len() {
            return None;
        }
        let mut page = 0u32;
        let mut out = Vec::with_capacity(self.page_steps.len());
        for (i, (&step, &hash)) in self.page_steps.iter().zip(&self.page_hashes).enumerate() {
            page = if i == 0 {
                step
            } else {
                page.checked_add(step)?
            };
            out.push((page, hash));
        }
        Some(out)
    }
}

/// The state of the machine at a checkpoint, detailed enough to name what
/// differs when a replay diverges, yet small: harts in full (they are a few
/// hundred bytes), devices and RAM as hashes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// Guest time in nanoseconds.
    pub guest_ns: u64,
    /// Every hart's architectural state.
    pub harts: Vec<ArchState>,
    /// Each other part of the machine (device, HSM states, clock) by name,
    /// with a 64-bit hash of its state.
    pub parts: Vec<(String, u64)>,
    /// The RAM pages written since the previous checkpoint, by index from
    /// the start of RAM, ascending, each stored as the difference from the
    /// one before (mostly small numbers, which zstd packs tightly).
    pub page_steps: Vec<u32>,
    /// A 32-bit hash of the content of each page in `page_steps`. 32 bits
    /// keep checkpoints small, and suffice to name a page that differs: a
    /// replay that diverged is caught by `ram`, the other hashes and the
    /// final state hash even when a page's hash collides.
    pub page_hashes: Vec<u32>,
    /// A 64-bit hash of all of RAM.
    pub ram: u64,
}
