//! Notices a Linux kernel panic in the console output.
//!
//! A panicked kernel never powers off by itself: it spins (or reboots, with
//! `panic=N`). Linux always closes its panic report with a line starting
//! `---[ end Kernel panic`, so once that line is complete the run is over and
//! `rewind` exits with a failure instead of waiting forever. Only the console
//! text is read; the guest is not affected.

const END_MARKER: &[u8] = b"---[ end Kernel panic";

#[derive(Default)]
pub struct PanicWatch {
    /// The current, incomplete line (at most as long as the marker).
    line: Vec<u8>,
    /// The marker was seen at the start of the current line.
    in_end_line: bool,
    /// The whole end line (the panic reason) once complete.
    reason: Option<String>,
    end_line: Vec<u8>,
}

impl PanicWatch {
    /// Feeds console output; returns true once a complete panic report was seen.
    pub fn feed(&mut self, bytes: &[u8]) -> bool {
        for &b in bytes {
            if self.reason.is_some() {
                break;
            }
            if self.in_end_line {
                if b == b'\n' {
                    let text = String::from_utf8_lossy(&self.end_line).into_owned();
                    self.reason = Some(text);
                } else if self.end_line.len() < 512 {
                    self.end_line.push(b);
                }
                continue;
            }
            if b == b'\n' {
                self.line.clear();
                continue;
            }
            if self.line.len() < END_MARKER.len() {
                self.line.push(b);
            }
            // Kernel log lines may carry a "[    1.234] " prefix; look for the
            // marker anywhere in the first bytes of the line.
            if self.line.ends_with(END_MARKER) {
                self.in_end_line = true;
                self.end_line = END_MARKER.to_vec();
            } else if self.line.len() == END_MARKER.len() {
                // Keep a sliding window so prefixed lines still match.
                self.line.remove(0);
            }
        }
        self.reason.is_some()
    }

    /// The text of the end line, e.g. "---[ end Kernel panic - not syncing: ... ]---".
    pub fn reason(&self) -> Option<&str> {
        self.reason.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::PanicWatch;

    #[test]
    fn a_complete_end_line_with_a_timestamp_prefix_is_recognised() {
        let mut w = PanicWatch::default();
        assert!(
            !w.feed(b"[    0.78] Kernel panic - not syncing: VFS\n[    0.79] ---[ end Kernel pa")
        );
        assert!(!w.feed(b"nic - not syncing: VFS: Unable to mount root fs ]---"));
        assert!(w.feed(b"\r\nmore"));
        assert_eq!(
            w.reason(),
            Some("---[ end Kernel panic - not syncing: VFS: Unable to mount root fs ]---\r")
        );
    }

    #[test]
    fn ordinary_output_and_a_mention_of_panic_do_not_trigger() {
        let mut w = PanicWatch::default();
        assert!(!w.feed(b"Kernel panic - not syncing is a phrase\nend Kernel panic\n"));
        assert!(!w.feed(&[b'x'; 10_000]));
        assert_eq!(w.reason(), None);
    }
}
