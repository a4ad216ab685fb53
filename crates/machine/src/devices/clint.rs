//! CLINT (SiFive-compatible core-local interruptor): msip, mtimecmp, mtime.
//!
//! mtime is derived from the virtual clock: it ticks at `TIMEBASE_HZ`, one
//! tick every `NS_PER_TICK` nanoseconds of virtual time, plus an offset that
//! a guest write to mtime sets. Nothing here reads host time.

use crate::state::{same_len, Saved, StateError};
use rewind_hart::bus::irq;

pub const BASE: u64 = 0x200_0000;
pub const SIZE: u64 = 0x1_0000;
/// The timebase advertised in the device tree (QEMU `virt` uses 10 MHz too).
pub const TIMEBASE_HZ: u64 = 10_000_000;
pub const NS_PER_TICK: u64 = 1_000_000_000 / TIMEBASE_HZ;

const MTIMECMP: u64 = 0x4000;
const MTIME: u64 = 0xbff8;

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Clint {
    pub msip: Vec<bool>,
    pub mtimecmp: Vec<u64>,
    /// mtime = clock / NS_PER_TICK + offset (wrapping).
    pub mtime_offset: u64,
}

impl Clint {
    pub fn new(harts: usize) -> Self {
        Clint {
            msip: vec![false; harts],
            mtimecmp: vec![u64::MAX; harts],
            mtime_offset: 0,
        }
    }

    pub fn mtime(&self, clock: u64) -> u64 {
        (clock / NS_PER_TICK).wrapping_add(self.mtime_offset)
    }

    /// The earliest clock at which mtime >= t (saturating at u64::MAX).
    pub fn clock_at(&self, t: u64) -> u64 {
        let ticks = t.wrapping_sub(self.mtime_offset);
        if ticks > u64::MAX / NS_PER_TICK {
            return u64::MAX;
        }
        ticks * NS_PER_TICK
    }

    pub fn lines(&self, hart: usize, clock: u64) -> u64 {
        let mut lines = 0;
        if self.msip.get(hart).copied().unwrap_or(false) {
            lines |= irq::MSIP;
        }
        if let Some(&cmp) = self.mtimecmp.get(hart) {
            if self.mtime(clock) >= cmp {
                lines |= irq::MTIP;
            }
        }
        lines
    }

    /// When the timer line of `hart` next rises, or u64::MAX.
    pub fn next_event(&self, hart: usize, clock: u64) -> u64 {
        match self.mtimecmp.get(hart) {
            Some(&cmp) if self.mtime(clock) < cmp => self.clock_at(cmp),
            _ => u64::MAX,
        }
    }

    pub fn read(&self, clock: u64, offset: u64, size: u8) -> Option<u64> {
        let (reg, shift) = self.locate(offset, size)?;
        let v = match reg {
            Reg::Msip(h) => self.msip[h] as u64,
            Reg::Mtimecmp(h) => self.mtimecmp[h],
            Reg::Mtime => self.mtime(clock),
        };
        Some(narrow(v >> shift, size))
    }

    pub fn write(&mut self, clock: u64, offset: u64, size: u8, value: u64) -> bool {
        let Some((reg, shift)) = self.locate(offset, size) else {
            return false;
        };
        let merge = |old: u64| {
            let mask = if size == 8 {
                u64::MAX
            } else {
                ((1u64 << (8 * size)) - 1) << shift
            };
            (old & !mask) | ((value << shift) & mask)
        };
        match reg {
            Reg::Msip(h) => self.msip[h] = value & 1 != 0,
            Reg::Mtimecmp(h) => self.mtimecmp[h] = merge(self.mtimecmp[h]),
            Reg::Mtime => {
                let new = merge(self.mtime(clock));
                self.mtime_offset = new.wrapping_sub(clock / NS_PER_TICK);
            }
        }
        true
    }

    /// Which register an access hits, and the bit shift of the access within it.
    fn locate(&self, offset: u64, size: u8) -> Option<(Reg, u64)> {
        let harts = self.msip.len() as u64;
        if offset < 4 * harts {
            return (offset.is_multiple_of(4) && size == 4)
                .then_some((Reg::Msip((offset / 4) as usize), 0));
        }
        let (reg, base) = if (MTIMECMP..MTIMECMP + 8 * harts).contains(&offset) {
            let h = (offset - MTIMECMP) / 8;
            (Reg::Mtimecmp(h as usize), MTIMECMP + 8 * h)
        } else if (MTIME..MTIME + 8).contains(&offset) {
            (Reg::Mtime, MTIME)
        } else {
            return None;
        };
        let within = offset - base;
        match (size, within) {
            (8, 0) | (4, 0) | (4, 4) => Some((reg, within * 8)),
            _ => None,
        }
    }
}

enum Reg {
    Msip(usize),
    Mtimecmp(usize),
    Mtime,
}

fn narrow(v: u64, size: u8) -> u64 {
    if size >= 8 {
        v
    } else {
        v & ((1u64 << (8 * size)) - 1)
    }
}

impl Saved for Clint {
    type State = Clint;

    fn saved(&self) -> Clint {
        self.clone()
    }

    /// The vectors are indexed by hart, so their lengths must be this
    /// machine's number of harts.
    fn check(&self, part: &str, state: &Clint) -> Result<(), StateError> {
        same_len(
            part,
            "software interrupt bits",
            state.msip.len(),
            self.msip.len(),
        )?;
        same_len(
            part,
            "timer compares",
            state.mtimecmp.len(),
            self.mtimecmp.len(),
        )
    }

    fn apply(&mut self, state: Clint) {
        *self = state;
    }
}
