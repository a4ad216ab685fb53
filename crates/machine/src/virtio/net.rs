//! virtio-net (virtio 1.x §5.1): Ethernet frames between the guest and the
//! embedding program.
//!
//! Assumptions, written down:
//! - The device holds no host backend. Frames the guest transmits wait in
//!   `tx` until the program takes them (after each round); frames from
//!   outside are inputs, offered by the program at round boundaries only
//!   (see [`crate::Machine::push_net_frame`]). So the device is a pure
//!   function of guest actions and logged inputs.
//! - No offloads, no mergeable receive buffers, no control queue: queue 0 is
//!   receive, queue 1 transmit, and every packet carries the 12-byte
//!   `virtio_net_hdr` of VIRTIO_F_VERSION_1 with no flags and no GSO.
//! - A received frame goes whole into one chain after the header; a frame
//!   that does not fit the next chain is dropped (the chain stays available),
//!   as is any frame longer than [`MAX_FRAME`].
//! - The link is always up (VIRTIO_NET_F_STATUS with LINK_UP).

use super::queue::{Reader, Writer};
use super::{DeviceError, QueueCtx};
use crate::state::{Saved, StateError};
use std::collections::VecDeque;

pub const ID: u32 = 1;
pub const QUEUE_SIZE: u16 = 256;
pub const RX: usize = 0;
pub const TX: usize = 1;
pub const HEADER_LEN: usize = 12;
/// The longest frame either way (without GSO, Linux sends at most MTU + 14).
pub const MAX_FRAME: usize = 65535;
/// Transmitted frames kept for the host before new ones are dropped.
pub const TX_BACKLOG: usize = 256;

pub const F_MAC: u64 = 1 << 5;
pub const F_STATUS: u64 = 1 << 16;
const STATUS_LINK_UP: u16 = 1;

/// What became of a frame offered to the device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Written into a receive buffer.
    Delivered,
    /// Dropped (too long, no room in the buffer, or the driver is not ready).
    Dropped,
    /// No receive buffer is available now: offer it again later.
    NoBuffer,
}

#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Net {
    pub index: usize,
    pub mac: [u8; 6],
    /// Frames the guest sent that the host has not taken yet.
    pub tx: VecDeque<Vec<u8>>,
    /// Counters, for diagnostics.
    pub rx_dropped: u64,
    pub tx_dropped: u64,
}

/// QEMU's default MAC address, plus `index` in the last byte.
pub fn default_mac(index: usize) -> [u8; 6] {
    [
        0x52,
        0x54,
        0x00,
        0x12,
        0x34,
        0x56u8.wrapping_add(index as u8),
    ]
}

impl Net {
    pub fn new(index: usize, mac: [u8; 6]) -> Self {
        Net {
            index,
            mac,
            tx: VecDeque::new(),
            rx_dropped: 0,
            tx_dropped: 0,
        }
    }

    pub fn features(&self) -> u64 {
        F_MAC | F_STATUS
    }

    /// mac[6], status u16.
    pub fn config(&self) -> Vec<u8> {
        let mut c = self.mac.to_vec();
        c.extend_from_slice(&STATUS_LINK_UP.to_le_bytes());
        c
    }

    pub fn notify(&mut self, queue: usize, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        if queue != TX {
            // New receive buffers: frames are offered at round boundaries.
            return Ok(());
        }
        while let Some(chain) = ctx.pop(TX)? {
            let total = chain.readable_len();
            if total < HEADER_LEN as u64 {
                return Err(DeviceError::Request(format!(
                    "transmit chain {} has {total} device-readable bytes, fewer than the {HEADER_LEN}-byte header",
                    chain.head
                )));
            }
            let frame_len = total - HEADER_LEN as u64;
            if frame_len as usize > MAX_FRAME || self.tx.len() >= TX_BACKLOG {
                self.tx_dropped += 1;
            } else {
                let mut reader = Reader::new(&chain.readable);
                let mut header = [0u8; HEADER_LEN];
                reader.read(ctx.ram, &mut header);
                let mut frame = vec![0u8; frame_len as usize];
                reader.read(ctx.ram, &mut frame);
                self.tx.push_back(frame);
            }
            ctx.complete(TX, chain.head, 0)?;
        }
        Ok(())
    }

    /// Offers one received frame.
    pub fn receive(&mut self, ctx: &mut QueueCtx, frame: &[u8]) -> Result<Delivery, DeviceError> {
        if frame.len() > MAX_FRAME {
            self.rx_dropped += 1;
            return Ok(Delivery::Dropped);
        }
        let Some(chain) = ctx.pop(RX)? else {
            return Ok(Delivery::NoBuffer);
        };
        if chain.writable_len() < (HEADER_LEN + frame.len()) as u64 {
            ctx.unpop(RX);
            self.rx_dropped += 1;
            return Ok(Delivery::Dropped);
        }
        let mut header = [0u8; HEADER_LEN];
        // num_buffers: always one without mergeable receive buffers.
        header[10] = 1;
        let mut writer = Writer::new(&chain.writable);
        writer.write(ctx.ram, &header);
        writer.write(ctx.ram, frame);
        ctx.complete(RX, chain.head, writer.written() as u32)?;
        Ok(Delivery::Delivered)
    }
}

impl Saved for Net {
    type State = Net;

    fn saved(&self) -> Net {
        self.clone()
    }

    /// Any backlog and counts are handled: the backlog limit is tested with
    /// `>=`, so a longer saved backlog only drops frames until it drains.
    fn check(&self, _part: &str, _state: &Net) -> Result<(), StateError> {
        Ok(())
    }

    fn apply(&mut self, state: Net) {
        *self = state;
    }
}
