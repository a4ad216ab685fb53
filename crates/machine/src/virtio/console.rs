//! virtio-console (virtio 1.x §5.3): one port, `hvc0` in Linux, a second
//! console beside the UART.
//!
//! Assumptions, written down:
//! - Port 0 is the only port and a console port. Queue 0 receives and
//!   queue 1 transmits for it. VIRTIO_CONSOLE_F_MULTIPORT is offered (with
//!   `max_nr_ports` 1) only for its control queues, 2 (device to driver) and
//!   3 (driver to device): they are how the device learns when the guest can
//!   take input (see below). No SIZE, no EMERG_WRITE.
//! - Bytes the guest writes wait in `output` until the embedding program
//!   takes them, at most [`OUTPUT_LIMIT`] of them (the rest are dropped and
//!   counted). Input is offered at round boundaries only and fills receive
//!   buffers in order; what does not fit stays with the program.
//!
//! # When input may be written into the guest's buffers
//!
//! A buffer in the receive queue does not mean that the driver can keep what
//! is written into it. Linux's driver (drivers/char/virtio_console.c) fills
//! the receive queue before it has registered the port, and frees, unread,
//! whatever arrives in that window (`in_intr` finds no port and flushes the
//! queue); a port that is not open throws its input away
//! (`discard_port_data`). Once the console port is set up, it keeps input
//! that no program reads yet in the used buffers, for the first reader of
//! /dev/hvc0, and gives the buffers back only as input is read.
//!
//! So when the driver negotiates MULTIPORT, input waits with the embedding
//! program until the driver has said, with a VIRTIO_CONSOLE_PORT_OPEN control
//! message, that its side of port 0 is open (the specification obliges a
//! driver to send it in answer to VIRTIO_CONSOLE_CONSOLE_PORT). That is guest
//! state only, never host timing, so a replay delivers the same bytes at the
//! same instructions. Without MULTIPORT the device has no way to know, and
//! input goes into whatever receive buffers the driver offers.

use super::queue::{Reader, Writer};
use super::{DeviceError, QueueCtx};
use crate::state::{Saved, StateError};
use std::collections::VecDeque;

pub const ID: u32 = 3;
pub const QUEUE_SIZE: u16 = 128;
/// The control queues are small: they carry a few 8-byte messages (QEMU
/// sizes them the same).
pub const CONTROL_QUEUE_SIZE: u16 = 32;
pub const RX: usize = 0;
pub const TX: usize = 1;
pub const CONTROL_RX: usize = 2;
pub const CONTROL_TX: usize = 3;
pub const OUTPUT_LIMIT: usize = 1 << 20;

/// VIRTIO_CONSOLE_F_MULTIPORT: control queues and `max_nr_ports`.
pub const F_MULTIPORT: u64 = 1 << 1;

/// Control events (virtio 1.x §5.3.6.2), and the length of a control
/// message: le32 port id, le16 event, le16 value.
pub const DEVICE_READY: u16 = 0;
pub const DEVICE_ADD: u16 = 1;
pub const PORT_READY: u16 = 3;
pub const CONSOLE_PORT: u16 = 4;
pub const PORT_OPEN: u16 = 6;
pub const CONTROL_LEN: usize = 8;

/// Control messages waiting for a buffer in the control receive queue, at
/// most this many: each message the driver sends queues at most two, so only
/// a driver that sends many and never reads could reach it (the excess is
/// dropped).
const CONTROL_BACKLOG: usize = 16;

/// The only port.
const PORT: u32 = 0;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Console {
    /// Bytes the guest wrote that the host has not taken yet.
    pub output: Vec<u8>,
    pub output_dropped: u64,
    /// The driver said (VIRTIO_CONSOLE_PORT_OPEN) that port 0 is open on its
    /// side: with MULTIPORT, input is delivered only then.
    pub guest_open: bool,
    /// Control messages for the driver that wait for a control receive
    /// buffer, each (port id, event, value).
    pub control: VecDeque<(u32, u16, u16)>,
}

impl Console {
    /// cols, rows (not offered), max_nr_ports = 1, emerg_wr (not offered).
    pub fn config(&self) -> Vec<u8> {
        let mut config = vec![0; 12];
        config[4..8].copy_from_slice(&1u32.to_le_bytes());
        config
    }

    /// A device reset: what the driver set up is forgotten; output the
    /// guest already wrote still goes to the host.
    pub fn reset(&mut self) {
        self.guest_open = false;
        self.control.clear();
    }

    pub fn notify(&mut self, queue: usize, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        match queue {
            TX => self.transmit(ctx),
            CONTROL_TX if ctx.negotiated(F_MULTIPORT) => {
                self.control_from_driver(ctx)?;
                self.control_to_driver(ctx)
            }
            CONTROL_RX if ctx.negotiated(F_MULTIPORT) => self.control_to_driver(ctx),
            _ => Ok(()),
        }
    }

    fn transmit(&mut self, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
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

    /// Handles the driver's control messages. A chain too short to hold a
    /// message is ignored, as are messages about other ports and events
    /// this device has no use for (QEMU does the same).
    fn control_from_driver(&mut self, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        while let Some(chain) = ctx.pop(CONTROL_TX)? {
            let mut message = [0u8; CONTROL_LEN];
            let got = Reader::new(&chain.readable).read(ctx.ram, &mut message);
            ctx.complete(CONTROL_TX, chain.head, 0)?;
            if got < CONTROL_LEN {
                continue;
            }
            let id = u32::from_le_bytes([message[0], message[1], message[2], message[3]]);
            let event = u16::from_le_bytes([message[4], message[5]]);
            let value = u16::from_le_bytes([message[6], message[7]]);
            match event {
                // The driver is ready for ports: here is the one.
                DEVICE_READY if value == 1 => self.send(PORT, DEVICE_ADD, 0),
                // The driver set port 0 up: it is a console, and the host
                // side is connected.
                PORT_READY if id == PORT && value == 1 => {
                    self.send(PORT, CONSOLE_PORT, 1);
                    self.send(PORT, PORT_OPEN, 1);
                }
                PORT_OPEN if id == PORT => self.guest_open = value != 0,
                _ => {}
            }
        }
        Ok(())
    }

    fn send(&mut self, id: u32, event: u16, value: u16) {
        if self.control.len() < CONTROL_BACKLOG {
            self.control.push_back((id, event, value));
        }
    }

    /// Writes waiting control messages into control receive buffers, one
    /// message per buffer, while there are buffers.
    fn control_to_driver(&mut self, ctx: &mut QueueCtx) -> Result<(), DeviceError> {
        while let Some(&(id, event, value)) = self.control.front() {
            let Some(chain) = ctx.pop(CONTROL_RX)? else {
                break;
            };
            if chain.writable_len() < CONTROL_LEN as u64 {
                return Err(DeviceError::Request(format!(
                    "a control receive buffer holds {} bytes, less than a control message ({CONTROL_LEN})",
                    chain.writable_len()
                )));
            }
            let mut message = [0u8; CONTROL_LEN];
            message[..4].copy_from_slice(&id.to_le_bytes());
            message[4..6].copy_from_slice(&event.to_le_bytes());
            message[6..].copy_from_slice(&value.to_le_bytes());
            let mut writer = Writer::new(&chain.writable);
            writer.write(ctx.ram, &message);
            ctx.complete(CONTROL_RX, chain.head, CONTROL_LEN as u32)?;
            self.control.pop_front();
        }
        Ok(())
    }

    /// Offers input; returns how many bytes the guest's buffers took. With
    /// MULTIPORT, none until the driver has opened port 0 (see the module
    /// documentation): the input waits, it is not lost.
    pub fn receive(&mut self, ctx: &mut QueueCtx, bytes: &[u8]) -> Result<usize, DeviceError> {
        if ctx.negotiated(F_MULTIPORT) && !self.guest_open {
            return Ok(0);
        }
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
    /// computed saturating, so a longer saved output only drops bytes. A
    /// longer control backlog only drains.
    fn check(&self, _part: &str, _state: &Console) -> Result<(), StateError> {
        Ok(())
    }

    fn apply(&mut self, state: Console) {
        *self = state;
    }
}
