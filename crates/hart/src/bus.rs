//! The hart's view of the machine around it.
//!
//! The hart knows nothing of devices: it sees RAM directly (for the fast path)
//! and everything else through this trait. All methods take the hart's virtual
//! clock so that devices derive time from it and never from the host.

use crate::memory::Ram;

/// Interrupt-pending bits of `mip` that devices drive.
pub mod irq {
    pub const SSIP: u64 = 1 << 1;
    pub const MSIP: u64 = 1 << 3;
    pub const STIP: u64 = 1 << 5;
    pub const MTIP: u64 = 1 << 7;
    pub const SEIP: u64 = 1 << 9;
    pub const MEIP: u64 = 1 << 11;
}

/// Everything outside the hart.
pub trait Bus {
    /// Guest RAM.
    fn ram(&mut self) -> &mut Ram;

    /// Reads `size` (1, 2, 4 or 8) bytes of device memory at `paddr`.
    /// `None` means no device answers there: an access fault.
    fn mmio_read(&mut self, hart: usize, clock: u64, paddr: u64, size: u8) -> Option<u64>;

    /// Writes device memory; `false` means an access fault.
    fn mmio_write(&mut self, hart: usize, clock: u64, paddr: u64, size: u8, value: u64) -> bool;

    /// The interrupt lines (bits of [`irq`]: MSIP, MTIP, SEIP, MEIP) that the
    /// devices raise for hart `hart` at virtual time `clock`.
    fn interrupt_lines(&mut self, hart: usize, clock: u64) -> u64;

    /// The earliest clock after `clock` at which `interrupt_lines` may change
    /// without this hart touching a device (e.g. a timer deadline), or
    /// `u64::MAX`.
    fn next_event(&mut self, hart: usize, clock: u64) -> u64;

    /// The value of the `time` CSR (and mtime) at virtual clock `clock`.
    fn time(&self, clock: u64) -> u64;

    /// The earliest clock at which `time(clock) >= t`.
    fn clock_at_time(&self, t: u64) -> u64;

    /// True when a device asked the hart to stop (e.g. the test finisher).
    fn stop_requested(&self) -> bool;
}
