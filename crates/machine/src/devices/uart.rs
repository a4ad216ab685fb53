//! NS16550A UART, as on QEMU `virt` (registers one byte apart).
//!
//! Transmission is instantaneous: a byte written to THR goes to `output` at
//! once and the transmitter is empty again. Received bytes wait in a 16-byte
//! FIFO; the machine pushes them in at points of its choosing, which is what
//! keeps input deterministic.
//!
//! A real UART loses what arrives while nobody listens: Linux resets the
//! FIFO when its driver starts, so console input typed (or piped) during
//! boot vanished, as it does on QEMU. This UART says when the guest is
//! listening ([`Uart::accepts_input`]): its receiver interrupt is enabled,
//! or it is polling (it looked at an empty receiver twice in a row, through
//! LSR or the SBI console, with no other register between). The host holds
//! input until then. Both conditions are guest state, so when input is
//! delivered depends on the guest alone.

use crate::state::{mismatch, Saved, StateError};
use std::collections::VecDeque;

pub const BASE: u64 = 0x1000_0000;
pub const SIZE: u64 = 0x100;
/// PLIC source number, as on QEMU `virt`.
pub const IRQ: u32 = 10;
const FIFO_SIZE: usize = 16;

const IER_RDI: u8 = 1;
const IER_THRI: u8 = 2;
const LCR_DLAB: u8 = 0x80;
const LSR_DR: u8 = 0x01;
const LSR_THRE: u8 = 0x20;
const LSR_TEMT: u8 = 0x40;
const IIR_NONE: u8 = 0x01;
const IIR_THRI: u8 = 0x02;
const IIR_RDI: u8 = 0x04;
const IIR_FIFO_ENABLED: u8 = 0xc0;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Uart {
    pub ier: u8,
    pub lcr: u8,
    pub mcr: u8,
    pub scr: u8,
    pub dll: u8,
    pub dlm: u8,
    pub fcr: u8,
    /// A transmitter-empty interrupt is pending (cleared by reading IIR).
    pub thr_pending: bool,
    pub rx: VecDeque<u8>,
    /// Bytes the guest transmitted and nobody has taken yet.
    pub output: Vec<u8>,
    /// Consecutive looks at an empty receiver with no other register
    /// accessed between them (counted up to 2): the guest is polling.
    pub empty_looks: u8,
}

/// Looks at an empty receiver that make a guest a poller.
const POLLING: u8 = 2;

impl Uart {
    pub fn new() -> Self {
        Uart::default()
    }

    /// Offers one received byte; false when the FIFO is full.
    pub fn push_input(&mut self, byte: u8) -> bool {
        if self.rx.len() >= FIFO_SIZE {
            return false;
        }
        self.rx.push_back(byte);
        true
    }

    pub fn rx_space(&self) -> usize {
        FIFO_SIZE - self.rx.len()
    }

    /// The guest is listening: input delivered now is not lost (see the
    /// module comment).
    pub fn accepts_input(&self) -> bool {
        self.ier & IER_RDI != 0 || self.empty_looks >= POLLING
    }

    /// The guest looked for input through the SBI console: a poller too.
    pub fn looked_for_input(&mut self) {
        if self.rx.is_empty() {
            self.empty_looks = POLLING;
        }
    }

    /// The interrupt line towards the PLIC.
    pub fn interrupt(&self) -> bool {
        self.interrupt_id() != IIR_NONE
    }

    fn interrupt_id(&self) -> u8 {
        if self.ier & IER_RDI != 0 && !self.rx.is_empty() {
            IIR_RDI
        } else if self.ier & IER_THRI != 0 && self.thr_pending {
            IIR_THRI
        } else {
            IIR_NONE
        }
    }

    pub fn read(&mut self, offset: u64) -> u8 {
        let dlab = self.lcr & LCR_DLAB != 0;
        self.empty_looks = match offset {
            5 if self.rx.is_empty() => (self.empty_looks + 1).min(POLLING),
            // Reading what arrived, or seeing that it did, is still polling.
            0 if !dlab => self.empty_looks,
            5 => self.empty_looks,
            _ => 0,
        };
        match offset {
            0 if dlab => self.dll,
            0 => self.rx.pop_front().unwrap_or(0),
            1 if dlab => self.dlm,
            1 => self.ier,
            2 => {
                let id = self.interrupt_id();
                if id == IIR_THRI {
                    self.thr_pending = false;
                }
                let fifo = if self.fcr & 1 != 0 {
                    IIR_FIFO_ENABLED
                } else {
                    0
                };
                id | fifo
            }
            3 => self.lcr,
            4 => self.mcr,
            5 => {
                let dr = if self.rx.is_empty() { 0 } else { LSR_DR };
                dr | LSR_THRE | LSR_TEMT
            }
            // MSR: report carrier detect, data set ready and clear to send.
            6 => 0xb0,
            7 => self.scr,
            _ => 0,
        }
    }

    pub fn write(&mut self, offset: u64, value: u8) {
        let dlab = self.lcr & LCR_DLAB != 0;
        self.empty_looks = 0;
        match offset {
            0 if dlab => self.dll = value,
            0 => {
                self.output.push(value);
                self.thr_pending = true;
            }
            1 if dlab => self.dlm = value,
            1 => {
                let was = self.ier;
                self.ier = value & 0x0f;
                if self.ier & IER_THRI != 0 && was & IER_THRI == 0 {
                    // The transmitter is always empty.
                    self.thr_pending = true;
                }
            }
            2 => {
                self.fcr = value;
                if value & 2 != 0 {
                    self.rx.clear();
                }
            }
            3 => self.lcr = value,
            4 => self.mcr = value,
            7 => self.scr = value,
            _ => {}
        }
    }
}

impl Saved for Uart {
    type State = Uart;

    fn saved(&self) -> Uart {
        self.clone()
    }

    /// The registers are bytes any value of which the code handles, but the
    /// receive FIFO must not be longer than a real one: the room left in it
    /// is computed by subtraction.
    fn check(&self, part: &str, state: &Uart) -> Result<(), StateError> {
        if state.rx.len() > FIFO_SIZE {
            return Err(mismatch(
                part,
                format!(
                    "its receive FIFO holds {} bytes, more than the {FIFO_SIZE} it has room for",
                    state.rx.len()
                ),
            ));
        }
        Ok(())
    }

    fn apply(&mut self, state: Uart) {
        *self = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guest_listens_once_its_receiver_interrupt_is_on() {
        let mut uart = Uart::new();
        assert!(!uart.accepts_input());
        uart.write(1, IER_RDI);
        assert!(uart.accepts_input());
        uart.write(1, 0);
        assert!(!uart.accepts_input());
    }

    /// A poller looks at LSR again and again; a driver printing reads LSR
    /// once before each byte it writes, which is not listening.
    #[test]
    fn two_looks_at_an_empty_receiver_in_a_row_are_polling() {
        let mut uart = Uart::new();
        uart.read(5);
        assert!(!uart.accepts_input());
        uart.write(0, b'x');
        uart.read(5);
        assert!(!uart.accepts_input(), "one look, then a byte written");
        uart.read(5);
        assert!(uart.accepts_input());
        // Reading what arrives keeps it a poller; anything else does not.
        uart.push_input(b'a');
        uart.read(5);
        uart.read(0);
        assert!(uart.accepts_input());
        uart.read(3);
        assert!(!uart.accepts_input());
        // The SBI console's reads are polling too.
        uart.looked_for_input();
        assert!(uart.accepts_input());
    }
}
