//! The board: RAM plus devices at QEMU `virt` addresses, seen by harts as a [`Bus`].

use crate::devices::clint::{self, Clint};
use crate::devices::finisher::{self, Finisher};
use crate::devices::plic::{self, Plic};
use crate::devices::rtc::{self, GoldfishRtc};
use crate::devices::uart::{self, Uart};
use crate::virtio::{self, Virtio};
use rewind_hart::{Bus, Ram};

pub const RAM_BASE: u64 = 0x8000_0000;

pub struct Board {
    pub ram: Ram,
    pub uart: Uart,
    pub clint: Clint,
    pub finisher: Finisher,
    pub plic: Plic,
    pub rtc: GoldfishRtc,
    /// The virtio-mmio slots (empty until the machine adds devices).
    pub virtio: Virtio,
    harts: usize,
}

impl Board {
    pub fn new(mem_size: u64, harts: usize, rtc_epoch_ns: u64) -> Self {
        Board {
            ram: Ram::new(RAM_BASE, mem_size),
            uart: Uart::new(),
            clint: Clint::new(harts),
            finisher: Finisher::default(),
            plic: Plic::new(harts),
            rtc: GoldfishRtc::new(rtc_epoch_ns),
            virtio: Virtio::default(),
            harts,
        }
    }
}

impl Board {
    /// Copies device interrupt lines into the PLIC.
    pub fn sync_interrupts(&mut self, clock: u64) {
        self.plic.set_level(uart::IRQ, self.uart.interrupt());
        self.plic.set_level(rtc::IRQ, self.rtc.interrupt(clock));
        for t in &self.virtio.slots {
            self.plic.set_level(t.irq(), t.interrupt());
        }
    }
}

fn within(paddr: u64, base: u64, size: u64) -> Option<u64> {
    paddr.checked_sub(base).filter(|&off| off < size)
}

impl Bus for Board {
    #[inline(always)]
    fn ram(&mut self) -> &mut Ram {
        &mut self.ram
    }

    fn mmio_read(&mut self, _hart: usize, clock: u64, paddr: u64, size: u8) -> Option<u64> {
        if let Some(off) = within(paddr, plic::BASE, plic::size(self.harts)) {
            self.sync_interrupts(clock);
            return self.plic.read(off, size);
        }
        if let Some(off) = within(paddr, uart::BASE, uart::SIZE) {
            let v = self.uart.read(off) as u64;
            self.sync_interrupts(clock);
            return Some(v);
        }
        if let Some(off) = within(paddr, clint::BASE, clint::SIZE) {
            return self.clint.read(clock, off, size);
        }
        if let Some(off) = within(paddr, finisher::BASE, finisher::SIZE) {
            return Some(self.finisher.read(off));
        }
        if let Some(off) = within(paddr, rtc::BASE, rtc::SIZE) {
            let v = self.rtc.read(clock, off, size);
            self.sync_interrupts(clock);
            return v;
        }
        if let Some(off) = within(paddr, virtio::BASE, Virtio::WINDOW) {
            return self.virtio.read(off, size);
        }
        None
    }

    fn mmio_write(&mut self, _hart: usize, clock: u64, paddr: u64, size: u8, value: u64) -> bool {
        if let Some(off) = within(paddr, plic::BASE, plic::size(self.harts)) {
            self.sync_interrupts(clock);
            return self.plic.write(off, size, value);
        }
        if let Some(off) = within(paddr, uart::BASE, uart::SIZE) {
            self.uart.write(off, value as u8);
            self.sync_interrupts(clock);
            return true;
        }
        if let Some(off) = within(paddr, clint::BASE, clint::SIZE) {
            return self.clint.write(clock, off, size, value);
        }
        if let Some(off) = within(paddr, finisher::BASE, finisher::SIZE) {
            self.finisher.write(off, size, value);
            return true;
        }
        if let Some(off) = within(paddr, rtc::BASE, rtc::SIZE) {
            let ok = self.rtc.write(clock, off, size, value);
            self.sync_interrupts(clock);
            return ok;
        }
        if let Some(off) = within(paddr, virtio::BASE, Virtio::WINDOW) {
            let ok = self.virtio.write(&mut self.ram, off, size, value);
            self.sync_interrupts(clock);
            return ok;
        }
        false
    }

    fn interrupt_lines(&mut self, hart: usize, clock: u64) -> u64 {
        self.sync_interrupts(clock);
        self.clint.lines(hart, clock) | self.plic.lines(hart)
    }

    fn next_event(&mut self, hart: usize, clock: u64) -> u64 {
        self.clint
            .next_event(hart, clock)
            .min(self.rtc.next_event(clock))
    }

    fn time(&self, clock: u64) -> u64 {
        self.clint.mtime(clock)
    }

    fn clock_at_time(&self, t: u64) -> u64 {
        self.clint.clock_at(t)
    }

    fn stop_requested(&self) -> bool {
        self.finisher.request.is_some()
    }
}
