//! SiFive test finisher (QEMU `virt` "sifive,test0"): a guest writes a 32-bit
//! command to end the run.

use crate::state::{Saved, StateError};

/// What the guest asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum FinisherRequest {
    /// 0x5555: power off with success.
    Pass,
    /// 0x3333 | code << 16: power off with failure `code` (as QEMU, the
    /// process exit status is `code`).
    Fail(u16),
    /// 0x7777: reset the machine.
    Reset,
}

pub const BASE: u64 = 0x10_0000;
pub const SIZE: u64 = 0x1000;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finisher {
    pub request: Option<FinisherRequest>,
}

impl Finisher {
    pub fn read(&mut self, _offset: u64) -> u64 {
        0
    }

    /// Handles a write; other values are ignored, as on QEMU.
    pub fn write(&mut self, offset: u64, size: u8, value: u64) {
        if offset != 0 || size < 4 {
            return;
        }
        let value = value as u32;
        self.request = match value & 0xffff {
            0x5555 => Some(FinisherRequest::Pass),
            0x3333 => Some(FinisherRequest::Fail((value >> 16) as u16)),
            0x7777 => Some(FinisherRequest::Reset),
            _ => self.request,
        };
    }
}

impl Saved for Finisher {
    type State = Finisher;

    fn saved(&self) -> Finisher {
        self.clone()
    }

    /// Any request may be pending; none depends on the configuration.
    fn check(&self, _part: &str, _state: &Finisher) -> Result<(), StateError> {
        Ok(())
    }

    fn apply(&mut self, state: Finisher) {
        *self = state;
    }
}
