//! Goldfish RTC ("google,goldfish-rtc"), as on QEMU `virt` and as Linux's
//! `rtc-goldfish` driver uses it: a 64-bit count of nanoseconds since 1970
//! and one alarm.
//!
//! Assumptions, written down:
//! - Time is the virtual clock plus an epoch the caller gives (nanoseconds
//!   since 1970, from the machine configuration) plus an adjustment that a
//!   guest write to TIME_LOW or TIME_HIGH sets. Nothing here reads host time.
//! - All arithmetic on time wraps, as a 64-bit counter does.
//! - Registers are 32 bits wide and accessed with aligned 4-byte accesses
//!   only (QEMU refuses other sizes too); any other access faults. Reads of
//!   unknown or write-only registers return 0 and writes to them are ignored.
//! - Reading TIME_LOW latches the high half, which TIME_HIGH then returns, so
//!   that a LOW-then-HIGH read is consistent.
//! - Writing ALARM_LOW arms the alarm (ALARM_HIGH only stores the high
//!   half), as on QEMU. An armed alarm fires when the time reaches it (at
//!   once if it already has): it stops running and the interrupt becomes
//!   pending. The line is high while an interrupt is pending and enabled,
//!   until the guest writes CLEAR_INTERRUPT.
//! - A due alarm fires lazily: `interrupt` and `next_event` compute it from
//!   the clock they are given, and every register access first applies it.
//!   So the device's state is the same whenever the board looks at it, and a
//!   guest write that moves the time never un-fires an alarm that was due.

pub const BASE: u64 = 0x10_1000;
pub const SIZE: u64 = 0x1000;
/// PLIC source number, as on QEMU `virt`.
pub const IRQ: u32 = 11;

use crate::state::{Saved, StateError};

const TIME_LOW: u64 = 0x00;
const TIME_HIGH: u64 = 0x04;
const ALARM_LOW: u64 = 0x08;
const ALARM_HIGH: u64 = 0x0c;
const IRQ_ENABLED: u64 = 0x10;
const CLEAR_ALARM: u64 = 0x14;
const ALARM_STATUS: u64 = 0x18;
const CLEAR_INTERRUPT: u64 = 0x1c;

#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GoldfishRtc {
    /// Nanoseconds since 1970 at virtual clock 0, from the configuration.
    pub epoch_ns: u64,
    /// What guest writes to the time added (wrapping) to `epoch_ns`.
    pub adjust_ns: u64,
    /// The high half of the time, latched by the last read of TIME_LOW.
    pub time_high: u32,
    /// The alarm time, in nanoseconds since 1970.
    pub alarm_ns: u64,
    /// The alarm is armed and has not fired yet.
    pub alarm_running: bool,
    pub irq_enabled: bool,
    /// An alarm fired and the guest has not cleared the interrupt yet.
    pub irq_pending: bool,
}

impl GoldfishRtc {
    /// An RTC that reads `epoch_ns` nanoseconds since 1970 at virtual clock 0.
    pub fn new(epoch_ns: u64) -> Self {
        GoldfishRtc {
            epoch_ns,
            ..GoldfishRtc::default()
        }
    }

    /// The time, in nanoseconds since 1970, at virtual clock `clock_ns`.
    pub fn time(&self, clock_ns: u64) -> u64 {
        clock_ns
            .wrapping_add(self.epoch_ns)
            .wrapping_add(self.adjust_ns)
    }

    fn alarm_due(&self, clock_ns: u64) -> bool {
        self.alarm_running && self.time(clock_ns) >= self.alarm_ns
    }

    /// Fires the alarm if it is due at `clock_ns`.
    fn advance(&mut self, clock_ns: u64) {
        if self.alarm_due(clock_ns) {
            self.alarm_running = false;
            self.irq_pending = true;
        }
    }

    /// The interrupt line towards the PLIC at virtual clock `clock_ns`.
    pub fn interrupt(&self, clock_ns: u64) -> bool {
        self.irq_enabled && (self.irq_pending || self.alarm_due(clock_ns))
    }

    /// The virtual clock at which the interrupt line next rises, for idle
    /// skipping; u64::MAX if nothing will raise it (or it is already high).
    pub fn next_event(&self, clock_ns: u64) -> u64 {
        if !self.irq_enabled || !self.alarm_running || self.interrupt(clock_ns) {
            return u64::MAX;
        }
        let remaining = self.alarm_ns - self.time(clock_ns);
        clock_ns.saturating_add(remaining)
    }

    /// A guest read; `None` means an access fault.
    pub fn read(&mut self, clock_ns: u64, offset: u64, size: u8) -> Option<u64> {
        if !valid(offset, size) {
            return None;
        }
        self.advance(clock_ns);
        let v: u32 = match offset {
            TIME_LOW => {
                let t = self.time(clock_ns);
                self.time_high = (t >> 32) as u32;
                t as u32
            }
            TIME_HIGH => self.time_high,
            ALARM_LOW => self.alarm_ns as u32,
            ALARM_HIGH => (self.alarm_ns >> 32) as u32,
            IRQ_ENABLED => self.irq_enabled as u32,
            ALARM_STATUS => self.alarm_running as u32,
            _ => 0,
        };
        Some(v as u64)
    }

    /// A guest write; `false` means an access fault.
    pub fn write(&mut self, clock_ns: u64, offset: u64, size: u8, value: u64) -> bool {
        if !valid(offset, size) {
            return false;
        }
        self.advance(clock_ns);
        let value = value as u32;
        match offset {
            TIME_LOW => self.set_time(clock_ns, with_low(self.time(clock_ns), value)),
            TIME_HIGH => self.set_time(clock_ns, with_high(self.time(clock_ns), value)),
            ALARM_LOW => {
                self.alarm_ns = with_low(self.alarm_ns, value);
                self.alarm_running = true;
                self.advance(clock_ns);
            }
            ALARM_HIGH => self.alarm_ns = with_high(self.alarm_ns, value),
            IRQ_ENABLED => self.irq_enabled = value & 1 != 0,
            CLEAR_ALARM => self.alarm_running = false,
            CLEAR_INTERRUPT => self.irq_pending = false,
            _ => {}
        }
        true
    }

    fn set_time(&mut self, clock_ns: u64, time_ns: u64) {
        self.adjust_ns = time_ns.wrapping_sub(clock_ns).wrapping_sub(self.epoch_ns);
    }
}

fn valid(offset: u64, size: u8) -> bool {
    size == 4 && offset < SIZE && offset.is_multiple_of(4)
}

fn with_low(v: u64, low: u32) -> u64 {
    (v & !0xffff_ffff) | low as u64
}

fn with_high(v: u64, high: u32) -> u64 {
    (v & 0xffff_ffff) | (high as u64) << 32
}

impl Saved for GoldfishRtc {
    type State = GoldfishRtc;

    fn saved(&self) -> GoldfishRtc {
        self.clone()
    }

    /// Every field is a time or a flag, and all time arithmetic wraps.
    fn check(&self, _part: &str, _state: &GoldfishRtc) -> Result<(), StateError> {
        Ok(())
    }

    fn apply(&mut self, state: GoldfishRtc) {
        *self = state;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPOCH: u64 = 1_700_000_000 * 1_000_000_000;

    fn rd(rtc: &mut GoldfishRtc, clock: u64, offset: u64) -> u32 {
        rtc.read(clock, offset, 4).expect("a valid access") as u32
    }

    fn wr(rtc: &mut GoldfishRtc, clock: u64, offset: u64, value: u32) {
        assert!(rtc.write(clock, offset, 4, value as u64));
    }

    /// Reads the time as Linux does: TIME_LOW, then TIME_HIGH.
    fn read_time(rtc: &mut GoldfishRtc, clock: u64) -> u64 {
        let low = rd(rtc, clock, TIME_LOW) as u64;
        let high = rd(rtc, clock, TIME_HIGH) as u64;
        high << 32 | low
    }

    /// Sets the alarm as Linux does: ALARM_HIGH, ALARM_LOW, IRQ_ENABLED.
    fn set_alarm(rtc: &mut GoldfishRtc, clock: u64, alarm: u64) {
        wr(rtc, clock, ALARM_HIGH, (alarm >> 32) as u32);
        wr(rtc, clock, ALARM_LOW, alarm as u32);
        wr(rtc, clock, IRQ_ENABLED, 1);
    }

    #[test]
    fn time_is_the_epoch_plus_the_virtual_clock() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        assert_eq!(read_time(&mut rtc, 0), EPOCH);
        assert_eq!(read_time(&mut rtc, 123_456_789), EPOCH + 123_456_789);
        assert_eq!(rtc.time(5), EPOCH + 5);
    }

    #[test]
    fn reading_time_low_latches_the_high_half() {
        // Just below a carry into the high half.
        let mut rtc = GoldfishRtc::new(0xffff_fff0);
        let low = rd(&mut rtc, 0, TIME_LOW);
        assert_eq!(low, 0xffff_fff0);
        // Time moves on past the carry; TIME_HIGH still gives the latched 0.
        assert_eq!(rd(&mut rtc, 0x100, TIME_HIGH), 0);
        // A new TIME_LOW read latches the new high half.
        assert_eq!(rd(&mut rtc, 0x100, TIME_LOW), 0xf0);
        assert_eq!(rd(&mut rtc, 0x100, TIME_HIGH), 1);
    }

    #[test]
    fn guest_writes_set_the_time_and_it_keeps_running() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        let new = 0x1234_5678_9abc_def0u64;
        // Linux writes TIME_HIGH first, then TIME_LOW.
        wr(&mut rtc, 1000, TIME_HIGH, (new >> 32) as u32);
        wr(&mut rtc, 1000, TIME_LOW, new as u32);
        assert_eq!(read_time(&mut rtc, 1000), new);
        assert_eq!(read_time(&mut rtc, 5000), new + 4000);
        // The epoch is unchanged: the write is kept as an adjustment.
        assert_eq!(rtc.epoch_ns, EPOCH);
    }

    #[test]
    fn time_high_write_keeps_the_low_half() {
        let mut rtc = GoldfishRtc::new(0x0000_0005_0000_0010);
        wr(&mut rtc, 0, TIME_HIGH, 7);
        assert_eq!(rtc.time(0), 0x0000_0007_0000_0010);
    }

    #[test]
    fn alarm_registers_read_back() {
        let mut rtc = GoldfishRtc::new(0);
        wr(&mut rtc, 0, ALARM_HIGH, 0xdead);
        wr(&mut rtc, 0, ALARM_LOW, 0xbeef_0000);
        assert_eq!(rd(&mut rtc, 0, ALARM_HIGH), 0xdead);
        assert_eq!(rd(&mut rtc, 0, ALARM_LOW), 0xbeef_0000);
        assert_eq!(rd(&mut rtc, 0, ALARM_STATUS), 1);
    }

    #[test]
    fn irq_enabled_reads_back_bit_zero() {
        let mut rtc = GoldfishRtc::new(0);
        assert_eq!(rd(&mut rtc, 0, IRQ_ENABLED), 0);
        wr(&mut rtc, 0, IRQ_ENABLED, 0xffff_ffff);
        assert_eq!(rd(&mut rtc, 0, IRQ_ENABLED), 1);
        wr(&mut rtc, 0, IRQ_ENABLED, 2);
        assert_eq!(rd(&mut rtc, 0, IRQ_ENABLED), 0);
    }

    #[test]
    fn alarm_fires_when_the_time_reaches_it() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        set_alarm(&mut rtc, 100, EPOCH + 1_000_000);
        assert!(!rtc.interrupt(100));
        assert!(!rtc.interrupt(999_999));
        assert_eq!(rd(&mut rtc, 999_999, ALARM_STATUS), 1);
        assert!(rtc.interrupt(1_000_000));
        // The line stays high until the guest clears it.
        assert!(rtc.interrupt(5_000_000));
        assert_eq!(rd(&mut rtc, 5_000_000, ALARM_STATUS), 0);
        wr(&mut rtc, 5_000_000, CLEAR_INTERRUPT, 1);
        assert!(!rtc.interrupt(5_000_000));
        assert!(!rtc.interrupt(u64::MAX - EPOCH));
    }

    #[test]
    fn next_event_is_the_clock_at_which_the_alarm_fires() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        assert_eq!(rtc.next_event(0), u64::MAX);
        set_alarm(&mut rtc, 100, EPOCH + 1_000_000);
        assert_eq!(rtc.next_event(100), 1_000_000);
        assert_eq!(rtc.next_event(999_999), 1_000_000);
        assert!(!rtc.interrupt(rtc.next_event(100) - 1));
        assert!(rtc.interrupt(rtc.next_event(100)));
        // Already high: nothing more will raise it.
        assert_eq!(rtc.next_event(1_000_000), u64::MAX);
    }

    #[test]
    fn next_event_follows_a_guest_change_of_time() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        set_alarm(&mut rtc, 0, EPOCH + 1_000_000);
        // The guest moves the time 300 µs forward at clock 100.
        let t = rtc.time(100) + 300_000;
        wr(&mut rtc, 100, TIME_HIGH, (t >> 32) as u32);
        wr(&mut rtc, 100, TIME_LOW, t as u32);
        assert_eq!(rtc.next_event(100), 700_000);
    }

    #[test]
    fn disabled_alarm_sets_status_but_not_the_line() {
        let mut rtc = GoldfishRtc::new(0);
        wr(&mut rtc, 0, ALARM_HIGH, 0);
        wr(&mut rtc, 0, ALARM_LOW, 500);
        assert_eq!(rtc.next_event(0), u64::MAX);
        assert!(!rtc.interrupt(1000));
        assert_eq!(rd(&mut rtc, 1000, ALARM_STATUS), 0);
        // Enabling afterwards exposes the interrupt that is pending.
        wr(&mut rtc, 1000, IRQ_ENABLED, 1);
        assert!(rtc.interrupt(1000));
    }

    #[test]
    fn alarm_in_the_past_fires_at_once() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        set_alarm(&mut rtc, 10, EPOCH);
        assert!(rtc.interrupt(10));
        assert_eq!(rd(&mut rtc, 10, ALARM_STATUS), 0);
        assert!(rtc.irq_pending);
    }

    #[test]
    fn clear_alarm_stops_it() {
        let mut rtc = GoldfishRtc::new(0);
        set_alarm(&mut rtc, 0, 1000);
        wr(&mut rtc, 10, CLEAR_ALARM, 1);
        assert_eq!(rd(&mut rtc, 10, ALARM_STATUS), 0);
        assert_eq!(rtc.next_event(10), u64::MAX);
        assert!(!rtc.interrupt(2000));
    }

    #[test]
    fn a_due_alarm_fires_before_a_time_write_moves_the_clock_back() {
        let mut rtc = GoldfishRtc::new(0);
        set_alarm(&mut rtc, 0, 1000);
        // At clock 2000 the alarm is due; the guest sets the time back to 0.
        wr(&mut rtc, 2000, TIME_HIGH, 0);
        wr(&mut rtc, 2000, TIME_LOW, 0);
        assert!(rtc.interrupt(2000));
        assert_eq!(rd(&mut rtc, 2000, ALARM_STATUS), 0);
    }

    #[test]
    fn write_only_and_unknown_registers_read_zero() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        for offset in [CLEAR_ALARM, CLEAR_INTERRUPT, 0x20, 0xffc] {
            assert_eq!(rtc.read(0, offset, 4), Some(0), "offset {offset:#x}");
        }
        assert!(rtc.write(0, 0x20, 4, 1));
        assert_eq!(rtc, GoldfishRtc::new(EPOCH));
    }

    #[test]
    fn other_access_sizes_and_misaligned_accesses_fault() {
        let mut rtc = GoldfishRtc::new(EPOCH);
        assert_eq!(rtc.read(0, TIME_LOW, 8), None);
        assert_eq!(rtc.read(0, TIME_LOW, 1), None);
        assert_eq!(rtc.read(0, 2, 4), None);
        assert_eq!(rtc.read(0, SIZE, 4), None);
        assert!(!rtc.write(0, TIME_LOW, 8, 0));
        assert!(!rtc.write(0, 1, 4, 0));
        assert_eq!(rtc, GoldfishRtc::new(EPOCH));
    }

    #[test]
    fn time_wraps_instead_of_panicking() {
        let mut rtc = GoldfishRtc::new(u64::MAX);
        assert_eq!(rtc.time(2), 1);
        wr(&mut rtc, u64::MAX, TIME_LOW, 0);
        assert_eq!(rtc.time(u64::MAX) as u32, 0);
        set_alarm(&mut rtc, u64::MAX, u64::MAX);
        assert_eq!(rtc.next_event(u64::MAX), u64::MAX);
    }
}
