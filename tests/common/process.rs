//! What the end-to-end suites of `rewind` runs share (tests/record_replay.rs,
//! tests/snapshots.rs): a scratch directory per test, and a finished run
//! with what it printed, described in full when a test fails.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

/// The `rewind` binary under test.
pub const REWIND: &str = env!("CARGO_BIN_EXE_rewind");

/// A run that takes longer than this has hung.
pub const LIMIT: Duration = Duration::from_secs(600);

/// A fresh directory of this test's own under the target's tmp dir:
/// `suite/name`, emptied first.
pub fn scratch(suite: &str, name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(suite)
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)
        .unwrap_or_else(|e| panic!("cannot create {}: {e}", dir.display()));
    dir
}

/// A path as a command-line argument.
pub fn path_arg(path: &Path) -> String {
    path.display().to_string()
}

/// What a finished run printed, and how it ended.
pub struct Finished {
    pub command: String,
    /// None if it was killed: after LIMIT (it hung), by the test on purpose,
    /// or for `failure`.
    pub status: Option<ExitStatus>,
    pub stdout: Vec<u8>,
    pub stderr: String,
    /// Why the test gave up on the run, if it did.
    pub failure: Option<String>,
    pub wall: Duration,
}

fn tail(bytes: &[u8], n: usize) -> String {
    String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(n)..]).into_owned()
}

impl Finished {
    /// The command, how it ended and the end of its output, for a failure.
    pub fn describe(&self) -> String {
        let ending = match (&self.failure, self.status) {
            (Some(why), _) => format!("was killed: {why}"),
            (None, None) => format!(
                "was killed (it hung for {} s, or the test stopped it)",
                LIMIT.as_secs()
            ),
            (None, Some(s)) => format!("ended with {s} after {:.1} s", self.wall.as_secs_f64()),
        };
        format!(
            "{}\n{ending}\n--- stdout (last 3000 bytes) ---\n{}\n--- stderr (last 3000 bytes) ---\n{}",
            self.command,
            tail(&self.stdout, 3000),
            tail(self.stderr.as_bytes(), 3000)
        )
    }

    pub fn code(&self) -> Option<i32> {
        self.status.and_then(|s| s.code())
    }

    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// The stderr lines that say something.
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .collect()
    }
}
