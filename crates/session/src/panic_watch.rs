//! Notices a Linux kernel panic in the console output.
//!
//! A panicked kernel never powers off by itself: it spins (or reboots, with
//! `panic=N`). So that `rewind` ends such a run with a failure instead of
//! waiting for ever, it watches for what only the kernel's panic path
//! prints, strictly in the kernel's format, each on a line of its own
//! (after an optional printk timestamp `[    1.234567] `):
//!
//! ```text
//! Kernel panic - not syncing: REASON
//! ... (the backtrace and the rest of the report)
//! ---[ end Kernel panic - not syncing: REASON ]---
//! ```
//!
//! and then for the silence that follows it (the kernel prints nothing more
//! while it spins): only once the guest has printed nothing else for
//! [`QUIET_NS`] of guest time is it a panic. A program that prints those
//! lines goes on printing (a shell prompt at least), which cancels them, so
//! no guest process can end the run by imitating the kernel. Only console
//! text and guest time are read, both guest state, so a replay ends where
//! the recorded run ended.

/// Guest time without output after the end line that confirms a panic.
pub const QUIET_NS: u64 = 50_000_000;
/// Longer lines are not the kernel's panic lines (its reasons are short).
const MAX_LINE: usize = 512;

const START: &str = "Kernel panic - not syncing: ";
const END_START: &str = "---[ end Kernel panic - not syncing: ";
const END_END: &str = " ]---";

#[derive(Default)]
pub struct PanicWatch {
    /// The current, incomplete line, if it may still be a panic line.
    line: Vec<u8>,
    /// The current line grew past MAX_LINE: ignored up to its end.
    overlong: bool,
    /// The reason of the last `Kernel panic - not syncing:` line.
    started: Option<String>,
    /// The end line, with the guest time it was complete at.
    ended: Option<(String, u64)>,
}

/// `line` without a printk timestamp prefix (`[    1.234567] `).
fn without_timestamp(line: &str) -> &str {
    let Some(rest) = line.strip_prefix('[') else {
        return line;
    };
    let Some((stamp, rest)) = rest.split_once("] ") else {
        return line;
    };
    let stamp = stamp.trim_start_matches(' ');
    let valid = stamp.split_once('.').is_some_and(|(s, us)| {
        !s.is_empty()
            && !us.is_empty()
            && s.bytes().all(|b| b.is_ascii_digit())
            && us.bytes().all(|b| b.is_ascii_digit())
    });
    if valid {
        rest
    } else {
        line
    }
}

impl PanicWatch {
    /// Feeds console output the guest wrote by guest time `now_ns`.
    pub fn feed(&mut self, bytes: &[u8], now_ns: u64) {
        for &b in bytes {
            if self.ended.is_some() && !b.is_ascii_whitespace() {
                // The kernel's panic path prints nothing after its end line.
                self.ended = None;
                self.started = None;
            }
            if b == b'\n' {
                if !self.overlong {
                    let line = String::from_utf8_lossy(&self.line).into_owned();
                    self.line_done(line.trim_end_matches('\r'), now_ns);
                }
                self.line.clear();
                self.overlong = false;
            } else if self.line.len() < MAX_LINE {
                self.line.push(b);
            } else {
                self.overlong = true;
            }
        }
    }

    fn line_done(&mut self, line: &str, now_ns: u64) {
        let line = without_timestamp(line);
        if let Some(reason) = line.strip_prefix(START) {
            self.started = Some(reason.to_string());
        } else if let Some(reason) = line
            .strip_prefix(END_START)
            .and_then(|r| r.strip_suffix(END_END))
        {
            if self.started.as_deref() == Some(reason) {
                self.ended = Some((line.to_string(), now_ns));
            }
        }
    }

    /// The end line of a kernel panic, once the guest has been silent
    /// after it for [`QUIET_NS`] by guest time `now_ns`.
    pub fn panicked(&self, now_ns: u64) -> Option<&str> {
        match &self.ended {
            Some((line, at)) if now_ns.saturating_sub(*at) >= QUIET_NS => Some(line),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{PanicWatch, QUIET_NS};

    const PANIC: &[u8] = b"[    0.78] Kernel panic - not syncing: VFS: Unable to mount root fs\r\n\
[    0.78] CPU: 0 PID: 1 Comm: swapper/0\r\n[    0.79] ---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\r\n";

    #[test]
    fn the_kernels_panic_report_followed_by_silence_is_a_panic() {
        let mut w = PanicWatch::default();
        // In pieces, as the console hands it over.
        let (a, b) = PANIC.split_at(100);
        w.feed(a, 1_000);
        w.feed(b, 2_000);
        assert_eq!(w.panicked(2_000), None, "not before the silence");
        assert_eq!(w.panicked(2_000 + QUIET_NS - 1), None);
        assert_eq!(
            w.panicked(2_000 + QUIET_NS),
            Some("---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---")
        );
        // Without timestamps too.
        let mut w = PanicWatch::default();
        w.feed(
            b"Kernel panic - not syncing: x\n---[ end Kernel panic - not syncing: x ]---\n",
            0,
        );
        assert!(w.panicked(QUIET_NS).is_some());
    }

    #[test]
    fn a_program_printing_the_kernels_lines_does_not_end_the_run() {
        // Whatever it prints next (a prompt) shows it was not the kernel.
        let mut w = PanicWatch::default();
        w.feed(PANIC, 0);
        w.feed(b"# ", 10);
        assert_eq!(w.panicked(10 * QUIET_NS), None);
        // Only the end line, with no start line before it.
        let mut w = PanicWatch::default();
        w.feed(b"---[ end Kernel panic - not syncing: x ]---\n", 0);
        assert_eq!(w.panicked(QUIET_NS), None);
        // The lines inside other text, or with another reason.
        let mut w = PanicWatch::default();
        w.feed(
            b"echo Kernel panic - not syncing: x\nsay ---[ end Kernel panic - not syncing: x ]---\n",
            0,
        );
        w.feed(
            b"Kernel panic - not syncing: x\n---[ end Kernel panic - not syncing: y ]---\n",
            0,
        );
        assert_eq!(w.panicked(QUIET_NS), None);
        // A bogus timestamp is not a timestamp.
        let mut w = PanicWatch::default();
        w.feed(
            b"[x.1] Kernel panic - not syncing: x\n[x.1] ---[ end Kernel panic - not syncing: x ]---\n",
            0,
        );
        assert_eq!(w.panicked(QUIET_NS), None);
    }

    #[test]
    fn ordinary_output_and_long_lines_do_not_trigger() {
        let mut w = PanicWatch::default();
        w.feed(
            b"Kernel panic - not syncing is a phrase\nend Kernel panic\n",
            0,
        );
        w.feed(&[b'x'; 10_000], 0);
        w.feed(b"\n", 0);
        assert_eq!(w.panicked(u64::MAX), None);
    }
}
