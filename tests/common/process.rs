//! What the end-to-end suites of `rewind` runs share (tests/record_replay.rs,
//! tests/snapshots.rs): a scratch directory per test, and a finished run
//! with what it printed, described in full when a test fails.

// Each suite that includes this module uses only part of it.
#![allow(dead_code)]

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

/// Runs `program ARGS` with `stdin` to its end and captures its output;
/// kills it if it has not ended after LIMIT.
pub fn run(program: &str, args: &[String], stdin: std::process::Stdio) -> Finished {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let command = format!("{program} {}", args.join(" "));
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    // host time of a host process, for the watchdog
    let started = std::time::Instant::now();
    let mut child = Command::new(program)
        .args(args)
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let mut out = child.stdout.take().expect("stdout is piped");
    let mut err = child.stderr.take().expect("stderr is piped");
    let stdout = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        // A read error only shortens the output shown in a failure message.
        let _ = out.read_to_end(&mut bytes);
        bytes
    });
    let stderr = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = err.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if started.elapsed() < LIMIT => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    Finished {
        command,
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        failure: None,
        wall: started.elapsed(),
    }
}
