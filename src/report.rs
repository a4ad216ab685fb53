//! The JSON report `rewind run|record|replay --report FILE` writes when the
//! machine stops.

use serde::Serialize;
use std::path::Path;

#[derive(Serialize)]
pub struct Report {
    /// poweroff, fail, kernel-panic, deadlock, firmware-trap, quit,
    /// interrupted, stop-at (and for replay: diverged, recording-cut).
    pub exit_reason: &'static str,
    /// The exit status of the `rewind` process.
    pub exit_code: u8,
    /// Where the machine stopped: the steps (instructions retired and
    /// traps entered) all harts took, the number `--stop-at`,
    /// `--snapshot-at` and the debugger's `monitor seek` take.
    pub position: u64,
    /// Instructions retired by each hart.
    pub instructions_retired: Vec<u64>,
    /// Virtual time at the stop, in nanoseconds.
    pub guest_time_ns: u64,
    /// Host time the run took, for information only: it never reaches the guest.
    pub wall_seconds: f64,
    /// BLAKE3 hash of the whole machine state (harts, RAM, devices), in hex.
    pub state_hash: String,
    /// The seed of every generator the guest can observe (`--seed`).
    pub seed: u64,
    /// The engine that ran guest code: `jit` or `interp` (`--engine`).
    pub engine: &'static str,
    /// Of `instructions_retired`, those each hart retired in translated
    /// code (all 0 under `interp`): where the translator's time went, for
    /// information only, like `wall_seconds`.
    pub translated_instructions: Vec<u64>,
    /// `rewind replay` only: how the replay compares with the recording.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replay: Option<ReplayReport>,
}

/// What `rewind replay --report` adds.
#[derive(Serialize)]
pub struct ReplayReport {
    /// The state hash the recorded run ended with (none for a recording cut
    /// short).
    pub recorded_state_hash: Option<String>,
    /// Whether the replay ended with the recorded state hash.
    pub state_hash_matches: Option<bool>,
    /// Recorded checkpoints the replay matched.
    pub checkpoints_verified: u64,
    /// Where a recording cut short ends (its complete part was replayed).
    pub truncated_at: Option<u64>,
}

impl Report {
    pub fn write(&self, path: &Path) -> Result<(), String> {
        let text = serde_json::to_string_pretty(self).expect("a report always serializes");
        std::fs::write(path, text + "\n")
            .map_err(|e| format!("cannot write the report {}: {e}", path.display()))
    }
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
