//! PLIC (platform-level interrupt controller), laid out as on QEMU `virt`:
//! sources 1..=95 with priorities 0..=7, and two contexts per hart, 2h for
//! M-mode (MEIP) and 2h + 1 for S-mode (SEIP).
//!
//! Each source has a gateway that latches a request: while the device holds
//! its line high and the source is not claimed, the source becomes pending,
//! and it stays pending (even if the line drops) until a context claims it. A
//! claim returns the pending, enabled source of highest priority above the
//! context's threshold (lowest number on ties), clears its pending bit and
//! marks it claimed; completing it lets a still-high line request again.

use crate::state::{same_len, Saved, StateError};
use rewind_hart::bus::irq;

pub const BASE: u64 = 0x0c00_0000;
pub const SOURCES: usize = 96;
const WORDS: usize = SOURCES / 32;
const PRIORITY_MASK: u32 = 7;

const PENDING: u64 = 0x1000;
const ENABLE: u64 = 0x2000;
const ENABLE_STRIDE: u64 = 0x80;
const CONTEXT: u64 = 0x20_0000;
const CONTEXT_STRIDE: u64 = 0x1000;

/// The size of the register window for `harts` harts.
pub fn size(harts: usize) -> u64 {
    CONTEXT + CONTEXT_STRIDE * 2 * harts as u64
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Plic {
    pub priority: Vec<u32>,
    /// Line levels driven by devices, one bit per source.
    pub level: [u32; WORDS],
    pub pending: [u32; WORDS],
    pub claimed: [u32; WORDS],
    /// Per context, one bit per source.
    pub enable: Vec<[u32; WORDS]>,
    pub threshold: Vec<u32>,
}

impl Plic {
    pub fn new(harts: usize) -> Self {
        Plic {
            priority: vec![0; SOURCES],
            level: [0; WORDS],
            pending: [0; WORDS],
            claimed: [0; WORDS],
            enable: vec![[0; WORDS]; 2 * harts],
            threshold: vec![0; 2 * harts],
        }
    }

    /// A device sets the level of its line.
    pub fn set_level(&mut self, source: u32, high: bool) {
        let (w, bit) = (source as usize / 32, 1u32 << (source % 32));
        if source == 0 || w >= WORDS {
            return;
        }
        if high {
            self.level[w] |= bit;
            self.forward(w, bit);
        } else {
            self.level[w] &= !bit;
        }
    }

    /// The gateway forwards a high, unclaimed line as a pending request.
    fn forward(&mut self, w: usize, bit: u32) {
        if self.level[w] & bit != 0 && self.claimed[w] & bit == 0 {
            self.pending[w] |= bit;
        }
    }

    fn pending_word(&self, w: usize) -> u32 {
        self.pending[w]
    }

    /// The best claimable source for `context`, or 0.
    fn best(&self, context: usize) -> u32 {
        let mut best = 0;
        let mut best_priority = self.threshold[context];
        // Asked for every hart at every turn of the machine's loop: visit
        // only the set bits (usually none).
        for w in 0..WORDS {
            let mut candidates = self.pending_word(w) & self.enable[context][w];
            while candidates != 0 {
                let source = w * 32 + candidates.trailing_zeros() as usize;
                candidates &= candidates - 1;
                if self.priority[source] > best_priority {
                    best = source as u32;
                    best_priority = self.priority[source];
                }
            }
        }
        best
    }

    /// MEIP and SEIP for `hart`.
    pub fn lines(&self, hart: usize) -> u64 {
        let mut lines = 0;
        if self.best(2 * hart) != 0 {
            lines |= irq::MEIP;
        }
        if self.best(2 * hart + 1) != 0 {
            lines |= irq::SEIP;
        }
        lines
    }

    pub fn read(&mut self, offset: u64, size: u8) -> Option<u64> {
        if size != 4 || !offset.is_multiple_of(4) {
            return None;
        }
        let contexts = self.threshold.len() as u64;
        let v = if offset < PENDING {
            self.priority
                .get((offset / 4) as usize)
                .copied()
                .unwrap_or(0)
        } else if offset < ENABLE {
            let w = ((offset - PENDING) / 4) as usize;
            if w < WORDS {
                self.pending_word(w)
            } else {
                0
            }
        } else if offset < CONTEXT {
            let (context, w) = Self::enable_index(offset);
            if context < contexts as usize && w < WORDS {
                self.enable[context][w]
            } else {
                0
            }
        } else {
            let context = ((offset - CONTEXT) / CONTEXT_STRIDE) as usize;
            if context >= contexts as usize {
                return None;
            }
            match (offset - CONTEXT) % CONTEXT_STRIDE {
                0 => self.threshold[context],
                4 => {
                    let source = self.best(context);
                    if source != 0 {
                        let (w, bit) = (source as usize / 32, 1u32 << (source % 32));
                        self.pending[w] &= !bit;
                        self.claimed[w] |= bit;
                    }
                    source
                }
                _ => 0,
            }
        };
        Some(v as u64)
    }

    pub fn write(&mut self, offset: u64, size: u8, value: u64) -> bool {
        if size != 4 || !offset.is_multiple_of(4) {
            return false;
        }
        let value = value as u32;
        let contexts = self.threshold.len();
        if offset < PENDING {
            if let Some(p) = self.priority.get_mut((offset / 4) as usize) {
                if offset != 0 {
                    *p = value & PRIORITY_MASK;
                }
            }
        } else if offset < ENABLE {
            // Pending bits are read-only.
        } else if offset < CONTEXT {
            let (context, w) = Self::enable_index(offset);
            if context < contexts && w < WORDS {
                // Source 0 does not exist.
                let mask = if w == 0 { !1 } else { !0 };
                self.enable[context][w] = value & mask;
            }
        } else {
            let context = ((offset - CONTEXT) / CONTEXT_STRIDE) as usize;
            if context >= contexts {
                return false;
            }
            match (offset - CONTEXT) % CONTEXT_STRIDE {
                0 => self.threshold[context] = value & PRIORITY_MASK,
                4 => {
                    // Completion of a source this context has enabled.
                    let (w, bit) = (value as usize / 32, 1u32 << (value % 32));
                    if w < WORDS && self.enable[context][w] & bit != 0 {
                        self.claimed[w] &= !bit;
                        self.forward(w, bit);
                    }
                }
                _ => {}
            }
        }
        true
    }

    fn enable_index(offset: u64) -> (usize, usize) {
        let rel = offset - ENABLE;
        (
            (rel / ENABLE_STRIDE) as usize,
            ((rel % ENABLE_STRIDE) / 4) as usize,
        )
    }
}

impl Saved for Plic {
    type State = Plic;

    fn saved(&self) -> Plic {
        self.clone()
    }

    /// The vectors are indexed by source and by context (two per hart), so
    /// their lengths must be this machine's.
    fn check(&self, part: &str, state: &Plic) -> Result<(), StateError> {
        same_len(
            part,
            "priorities",
            state.priority.len(),
            self.priority.len(),
        )?;
        same_len(part, "contexts", state.enable.len(), self.enable.len())?;
        same_len(
            part,
            "thresholds",
            state.threshold.len(),
            self.threshold.len(),
        )
    }

    fn apply(&mut self, state: Plic) {
        *self = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context_reg(context: u64, reg: u64) -> u64 {
        CONTEXT + CONTEXT_STRIDE * context + reg
    }

    #[test]
    fn claim_returns_highest_priority_then_lowest_number_and_complete_releases() {
        let mut plic = Plic::new(1);
        for (source, prio) in [(3u64, 2u64), (5, 4), (7, 4)] {
            plic.write(4 * source, 4, prio);
            plic.set_level(source as u32, true);
        }
        plic.write(ENABLE, 4, (1 << 3) | (1 << 5) | (1 << 7));
        assert_eq!(plic.lines(0), irq::MEIP);
        assert_eq!(plic.read(context_reg(0, 4), 4), Some(5));
        assert_eq!(plic.read(context_reg(0, 4), 4), Some(7));
        assert_eq!(plic.read(context_reg(0, 4), 4), Some(3));
        assert_eq!(plic.read(context_reg(0, 4), 4), Some(0));
        assert_eq!(plic.lines(0), 0);
        plic.write(context_reg(0, 4), 4, 5);
        assert_eq!(
            plic.read(context_reg(0, 4), 4),
            Some(5),
            "still high after completion"
        );
    }

    #[test]
    fn threshold_masks_sources_at_or_below_it_and_s_context_drives_seip() {
        let mut plic = Plic::new(1);
        plic.write(4 * 10, 4, 1);
        plic.set_level(10, true);
        plic.write(ENABLE + ENABLE_STRIDE, 4, 1 << 10);
        assert_eq!(plic.lines(0), irq::SEIP);
        plic.write(context_reg(1, 0), 4, 1);
        assert_eq!(plic.lines(0), 0);
        plic.set_level(10, false);
        plic.write(context_reg(1, 0), 4, 0);
        assert_eq!(
            plic.lines(0),
            irq::SEIP,
            "the request stays latched after the line drops"
        );
        assert_eq!(plic.read(context_reg(1, 4), 4), Some(10));
        plic.write(context_reg(1, 4), 4, 10);
        assert_eq!(
            plic.lines(0),
            0,
            "a low line does not request again after completion"
        );
    }

    #[test]
    fn hostile_offsets_and_sizes_are_refused_without_panicking() {
        let mut plic = Plic::new(2);
        assert_eq!(plic.read(3, 4), None);
        assert_eq!(plic.read(0, 8), None);
        assert_eq!(plic.read(context_reg(9, 4), 4), None);
        assert!(!plic.write(context_reg(9, 0), 4, 1));
        assert!(plic.write(context_reg(0, 4), 4, u32::MAX as u64));
        assert!(plic.write(ENABLE + ENABLE_STRIDE * 3 + 0x7c, 4, 1));
    }
}
