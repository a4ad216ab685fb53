//! virtio-console (virtio 1.x §5.3): one port, `hvc0` in Linux, a second
//! console beside the UART.
//!
//! Assumptions, written down:
//! - No optional features (no MULTIPORT, no SIZE, no EMERG_WRITE): queue 0
//!   receives, queue 1 transmits.
//! - Bytes the guest writes wait in `output` until the embedding program
//!   takes them, at most [`OUTPUT_LIMIT`] of them (the rest are dropped and
//!   counted). Input is offered at round boundaries only and fills receive
//!   buffers in order; what does not fit stays with the program.

use super::queue::{Reader, Writer};
use super::{DeviceError, QueueCtx};
use crate::state::{Saved, StateError};

pub const ID: u32 = 3;
pub const QUEUE_SIZE: u16 = 128;
pub const RX: usize = 0;
pub const TX: usize = 1;
pub const OUTPUT_LIMIT: usize = 1 << 20;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Console {
    /// Bytes the guest wrote that the host has not taken yet.
    pub output: Vec<u8>,
    pub output_dropped: u64,
}

impl Console {
    /// cols, rows, max_nr_ports, emerg_wr: all zero (not offered).
    pub fn config(&self) -> Vec<u8> {
        vec![0; 12]
    }

    pub fn notify(&mut self, queue: usize, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        if queue != TX {
            return Ok(());
        }
        while let Some(chain) = ctx.pop(TX)? {
            let mut reader = Reader::new(&chain.readable);
            let len = chain.readable_len();
            let room = OUTPUT_LIMIT.saturating_sub(self.output.len()) as u64;
            let keep = len.min(room) as usize;
            let start = self.output.len();
            self.output.resize(start + keep, 0);
            reader.read(ctx.ram, &mut self.output[start..]);
            self.output_dropped += len - keep as u64;
            ctx.complete(TX, chain.head, 0)?;
        }
        Ok(())
    }

    /// Offers input; returns how many bytes the guest's buffers took.
    pub fn receive(&mut self, ctx: &mut QueueCtx, bytes: &[u8]) -> Result<usize, DeviceError> {
        let mut taken = 0;
        while taken < bytes.len() {
            let Some(chain) = ctx.pop(RX)? else {
                break;
            };
            let mut writer = Writer::new(&chain.writable);
            taken += writer.write(ctx.ram, &bytes[taken..]);
            ctx.complete(RX, chain.head, writer.written() as u32)?;
        }
        Ok(taken)
    }
}

impl Saved for Console {
    type State = Console;

    fn saved(&self) -> Console {
        self.clone()
    }

    /// Any pending output is handled: the room left under the limit is
    /// computed saturating, so a longer saved output only drops bytes.
    fn check(&self, _part: &str, _state: &Console) -> Result<(), StateError> {
        Ok(())
    }

    fn apply(&mut self, state: Console) {
        *self = state;
    }
}
