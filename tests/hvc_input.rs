//! Input sent to the guest's virtio console (hvc0) reaches a Linux program
//! that reads /dev/hvc0: lines the host sent before the program existed
//! (while the guest was still booting, before its driver had set the port
//! up) and lines the host sent while the program waited for them. The run is
//! recorded, and the recording replays to the same state hash and the same
//! console output.

// A test harness runs on the host and may read its clock, environment and
// process id; none of it reaches a machine under test.
#![allow(clippy::disallowed_methods)]

// Host time here only bounds how long the test waits for the process.
#![allow(clippy::disallowed_types)]

#[path = "virtio/common.rs"]
mod common;

use common::*;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A Linux boot and script take well under a minute; this is for a loaded host.
const LIMIT: Duration = Duration::from_secs(600);

const EARLY: &str = "early one\nearly two\n";
const LATE: &str = "late one\nlate two\n";
/// What the guest prints once it reads /dev/hvc0 and waits for more.
const WAITING: &str = "hvc0 reader waits";

/// Waits (without opening /dev/hvc0: an open hands the waiting input to a
/// tty that would drop it at the close) until the driver has made port 0 a
/// console, which takes a few control messages after the module loads; then
/// reads four lines from one open of /dev/hvc0 and prints them, giving up
/// on a line after two minutes.
const SCRIPT: &str = r#"#!/bin/sh
set -e
mount -t debugfs none /sys/kernel/debug
port=/sys/kernel/debug/virtio-ports/vport0p0
tries=0
until grep -qs "is_console: yes" $port; do
    tries=$((tries + 1))
    [ $tries -lt 100 ] || { echo "hvc0 never became a console port"; exit 1; }
    sleep 0.1
done
echo "before the reader: $(grep bytes_received $port)"
exec 3</dev/hvc0
# A lost line fails the script (set -e) instead of waiting forever.
hear() { read -t 120 -r line <&3; echo "hvc0 said: $line"; }
hear
hear
echo "hvc0 reader waits"
hear
hear
"#;

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo")
        .arg(path)
        .status()
        .expect("running mkfifo");
    assert!(status.success(), "mkfifo {} failed", path.display());
}

/// The JSON report's state hash.
fn report_hash(path: &Path) -> String {
    let text = std::fs::read_to_string(path).expect("reading the report");
    let key = "\"state_hash\": \"";
    let start = text.find(key).expect("a state_hash in the report") + key.len();
    text[start..start + 64].to_string()
}

/// Records the run: EARLY is in hvc0's input pipe before Rewind starts,
/// LATE is written once the guest says it waits. Returns the serial output.
fn record(dir: &Path, recording: &Path, report: &Path) -> RunOutput {
    let pipe = dir.join("hvc");
    mkfifo(&dir.join("hvc.in"));
    mkfifo(&dir.join("hvc.out"));
    // Read-write, so that the open does not wait for Rewind and the bytes
    // wait in the pipe for it (Rewind opens it the same way).
    let mut input = OpenOptions::new()
        .read(true)
        .write(true)
        .open(dir.join("hvc.in"))
        .expect("opening hvc.in");
    input.write_all(EARLY.as_bytes()).unwrap();

    let mut args = vec![
        "record".to_string(),
        "-o".into(),
        recording.display().to_string(),
        "--report".into(),
        report.display().to_string(),
        "--hvc".into(),
        format!("pipe:{}", pipe.display()),
    ];
    args.extend(linux_args(dir, SCRIPT));
    let mut child = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting rewind");
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr_pipe.read_to_string(&mut s);
        s
    });
    // The serial console's output, chunk by chunk.
    let (tx, rx) = mpsc::channel();
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n) = stdout_pipe.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });

    let started = Instant::now();
    let mut stdout = Vec::new();
    let mut sent_late = false;
    let mut finished = false;
    while started.elapsed() < LIMIT {
        match rx.recv_timeout(Duration::from_millis(100)) {
            Ok(chunk) => stdout.extend(chunk),
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                finished = true;
                break;
            }
        }
        if !sent_late && String::from_utf8_lossy(&stdout).contains(WAITING) {
            input.write_all(LATE.as_bytes()).unwrap();
            sent_late = true;
        }
    }
    if !finished {
        let _ = child.kill();
    }
    let status = child.wait().expect("waiting for rewind");
    RunOutput {
        status: finished.then_some(status),
        stdout: String::from_utf8_lossy(&stdout).into_owned(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

#[test]
fn a_linux_program_reads_hvc0_input_sent_before_and_after_it_started() {
    let dir = scratch("hvc_input");
    let recording = dir.join("hvc.rwd");
    let recorded = dir.join("recorded.json");
    let run = record(&dir, &recording, &recorded);
    expect_script_passed(&run, "the hvc0 reading script");
    // The early lines waited in the driver's buffers for the reader: none
    // was dropped (Linux frees input that arrives before its port is set up).
    assert!(
        run.stdout.contains(&format!(
            "before the reader: bytes_received: {}",
            EARLY.len()
        )),
        "{}",
        run.describe()
    );
    let said: Vec<&str> = run
        .stdout
        .lines()
        .filter_map(|l| l.trim_end().strip_prefix("hvc0 said: "))
        .collect();
    assert_eq!(
        said,
        ["early one", "early two", "late one", "late two"],
        "{}",
        run.describe()
    );

    let replayed = dir.join("replayed.json");
    let replay = Command::new(env!("CARGO_BIN_EXE_rewind"))
        .arg("replay")
        .arg(&recording)
        .arg("--report")
        .arg(&replayed)
        .stdin(Stdio::null())
        .output()
        .expect("running rewind replay");
    let replay_out = String::from_utf8_lossy(&replay.stdout);
    assert!(
        replay.status.success(),
        "the replay failed: {}{}",
        replay_out,
        String::from_utf8_lossy(&replay.stderr)
    );
    assert_eq!(report_hash(&replayed), report_hash(&recorded));
    assert_eq!(
        replay_out.matches("hvc0 said: ").count(),
        4,
        "the replay's console output differs: {replay_out}"
    );
}
