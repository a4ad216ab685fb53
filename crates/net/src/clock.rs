//! The host monotonic clock, used only for host-side protocol timers.
//!
//! The workspace forbids `std::time::Instant` in crates that hold guest state. This crate holds
//! none: its clock drives smoltcp's TCP timers and NAT idle timeouts, whose only effect is on
//! which frames are offered to the guest and when, and every frame the guest receives is a
//! logged input. This module is the one place that reads host time.

/// Host monotonic time since the backend was created.
#[derive(Debug)]
pub(crate) struct HostClock {
    #[allow(clippy::disallowed_types)] // host-side timers only; see the module comment
    start: std::time::Instant,
}

impl HostClock {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)] // host-side timers only; see the module comment
    pub(crate) fn new() -> HostClock {
        HostClock {
            start: std::time::Instant::now(),
        }
    }

    /// The current time in microseconds since creation.
    pub(crate) fn now_us(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX)
    }
}
