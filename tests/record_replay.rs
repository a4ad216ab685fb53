//! Record and replay, end to end: `rewind record` runs the default guest (or
//! a given configuration) while the test types into its console through a
//! pipe, one command at a time, each only after the previous one's output has
//! appeared; `rewind replay` must then give the same console bytes and the
//! same state hash without reading any input.
//!
//! - a shell session on one hart and on four (arithmetic, a file in /tmp,
//!   /proc/interrupts, /dev/urandom);
//! - disk and network traffic: an ext4 image on an overlay disk and a page
//!   fetched with busybox `wget` from an HTTP server on the host's loopback,
//!   which is stopped before the replay; and a `persist` disk, whose changed
//!   image replay refuses until the original bytes are back;
//! - recordings cut short at random points (a fixed-seed PRNG), inside the
//!   header, at a frame boundary and inside frames;
//! - corrupted recordings (magic, version, header, frame), for `replay` and
//!   `inspect`, and what `inspect` says about a good one;
//! - copies of a recording with one console input or one checkpoint
//!   register altered, which must be reported as divergence at the right
//!   instruction.
//!
//! Every run is killed after `LIMIT`: a hang is a failure. One recording of
//! the one-hart shell session is shared by the tests that read or damage a
//! recording.

use rewind_replay::format::{read_all, RecordingWriter};
use rewind_replay::{Event, Port};
use serde_json::Value;
use std::io::{ErrorKind, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

// One boot of the default guest takes 10-40 s on a busy 2-core machine;
// process::LIMIT (600 s) is how long a run may take before it counts as hung.
#[path = "common/process.rs"]
mod process;
use process::{path_arg, Finished, LIMIT, REWIND};
/// The longest a typed command may take to print its output and the next
/// prompt.
const STEP_LIMIT: Duration = Duration::from_secs(180);
/// The default guest's shell prompt (PS1 in crates/guest/src/init.rs).
const PROMPT: &str = "rewind:/# ";
/// Checkpoints in the shared recording: small, so that a divergence is found
/// within a few million instructions of where it starts.
const SHARED_CHECKPOINT_EVERY: u64 = 20_000_000;
/// The arithmetic the divergence test alters (one digit of it).
const PRODUCT: &str = "12345*6789";

// ---- Scratch files -----------------------------------------------------------

fn scratch(name: &str) -> PathBuf {
    process::scratch("record_replay", name)
}

fn require_tool(tool: &str, package: &str) {
    if let Err(e) = Command::new(tool)
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        panic!("`{tool}` cannot be run ({e}); run ./test.sh or install Debian's {package}");
    }
}

// ---- Running rewind with a watchdog and a typist ----------------------------

/// A command typed at the guest's shell, and what its output must contain
/// before the test types the next one (then the next prompt must follow).
struct Step {
    send: String,
    expect: String,
}

fn step(send: &str, expect: &str) -> Step {
    Step {
        send: format!("{send}\n"),
        expect: expect.to_string(),
    }
}

/// The child's stdout as it arrives, and whether it has ended.
#[derive(Default)]
struct Output {
    bytes: Vec<u8>,
    closed: bool,
}

type Shared = Arc<(Mutex<Output>, Condvar)>;

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Waits until stdout, from byte `from` on, contains `pattern`; returns the
/// offset just past it.
fn wait_for(
    shared: &Shared,
    from: usize,
    pattern: &str,
    deadline: Duration,
) -> Result<usize, String> {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    // host time of the test's own watchdog
    let started = std::time::Instant::now();
    let (lock, ready) = &**shared;
    let mut out = lock.lock().expect("the stdout reader never panics");
    loop {
        if let Some(at) = find(&out.bytes[from.min(out.bytes.len())..], pattern.as_bytes()) {
            return Ok(from + at + pattern.len());
        }
        if out.closed {
            return Err(format!(
                "the run ended before `{pattern}` appeared on its console"
            ));
        }
        let left = deadline.saturating_sub(started.elapsed());
        if left.is_zero() {
            return Err(format!(
                "`{pattern}` did not appear on the console within {} s",
                deadline.as_secs()
            ));
        }
        out = ready
            .wait_timeout(out, left)
            .expect("the stdout reader never panics")
            .0;
    }
}

/// Runs `rewind ARGS`. With `steps`, stdin is a pipe: after the default
/// guest's shell prompt appears the test types each step, waiting for its
/// output and the next prompt before the following one, then closes stdin.
/// Without, stdin is empty. The run is killed after LIMIT.
fn run(args: &[String], steps: Option<&[Step]>) -> Finished {
    let command = format!("rewind {}", args.join(" "));
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)]
    // host time of host processes, for messages only
    let started = std::time::Instant::now();
    let mut child = Command::new(REWIND)
        .args(args)
        .stdin(if steps.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command}: {e}"));
    let mut stderr_pipe = child.stderr.take().expect("stderr is piped");
    let stderr = thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = stderr_pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    });
    let shared: Shared = Arc::default();
    let mut stdout_pipe = child.stdout.take().expect("stdout is piped");
    let reader = {
        let shared = shared.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 8192];
            loop {
                let n = stdout_pipe.read(&mut buf).unwrap_or(0);
                let (lock, ready) = &*shared;
                let mut out = lock.lock().expect("no panics while locked");
                if n == 0 {
                    out.closed = true;
                } else {
                    out.bytes.extend_from_slice(&buf[..n]);
                }
                ready.notify_all();
                if n == 0 {
                    break;
                }
            }
        })
    };
    let mut failure = type_steps(&mut child, &shared, steps, started).err();
    // Now (or after a failure) the run must end by itself.
    let ended = failure.is_none()
        && wait_for_exit(&mut child, LIMIT.saturating_sub(started.elapsed())).is_some();
    if !ended {
        // Not waited for yet, so the pid is still this child's.
        let _ = child.kill();
        if failure.is_none() && steps.is_some() {
            failure = Some(format!("it did not end within {} s", LIMIT.as_secs()));
        }
    }
    let status = child.wait().expect("waiting for rewind");
    let _ = reader.join();
    let stdout = std::mem::take(&mut shared.0.lock().expect("reader is done").bytes);
    let finished = Finished {
        command,
        status: ended.then_some(status),
        stdout,
        stderr: stderr.join().unwrap_or_default(),
        failure,
        wall: started.elapsed(),
    };
    eprintln!(
        "record_replay: {} took {:.1} s",
        finished.command,
        finished.wall.as_secs_f64()
    );
    finished
}

#[allow(clippy::disallowed_types)] // the watchdog's host time
fn type_steps(
    child: &mut Child,
    shared: &Shared,
    steps: Option<&[Step]>,
    started: std::time::Instant,
) -> Result<(), String> {
    let Some(steps) = steps else {
        return Ok(());
    };
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let left = || LIMIT.saturating_sub(started.elapsed());
    let mut at = wait_for(shared, 0, rewind_guest::READY_MARKER, left())?;
    at = wait_for(shared, at, PROMPT, left())?;
    for (i, step) in steps.iter().enumerate() {
        stdin
            .write_all(step.send.as_bytes())
            .and_then(|()| stdin.flush())
            .map_err(|e| format!("cannot type `{}`: {e}", step.send.trim()))?;
        // A shell command takes seconds at most; a missing output fails
        // sooner than the whole run's limit.
        let limit = || STEP_LIMIT.min(left());
        if !step.expect.is_empty() {
            at = wait_for(shared, at, &step.expect, limit())
                .map_err(|e| format!("after typing `{}`: {e}", step.send.trim()))?;
        }
        if i + 1 < steps.len() {
            at = wait_for(shared, at, PROMPT, limit())
                .map_err(|e| format!("after typing `{}`: {e}", step.send.trim()))?;
        }
    }
    // Dropping stdin closes the guest's console input.
    Ok(())
}

/// Waits for the child to exit, at most `limit`.
fn wait_for_exit(child: &mut Child, limit: Duration) -> Option<ExitStatus> {
    #[allow(clippy::disallowed_types, clippy::disallowed_methods)] // the watchdog's host time
    let started = std::time::Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if started.elapsed() >= limit {
            return None;
        }
        thread::sleep(Duration::from_millis(50));
    }
}

fn read_report(path: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()
}

// ---- Record and replay ---------------------------------------------------------

/// A finished `rewind record` with its report.
struct Recorded {
    file: PathBuf,
    run: Finished,
    report: Value,
}

impl Recorded {
    fn state_hash(&self) -> &str {
        self.report["state_hash"].as_str().unwrap_or_default()
    }
}

/// `rewind record -o DIR/NAME.rec --checkpoint-every N --report ... EXTRA`,
/// typing `steps`; panics unless the guest powered off.
fn record(dir: &Path, name: &str, every: u64, extra: &[String], steps: &[Step]) -> Recorded {
    let file = dir.join(format!("{name}.rec"));
    let report_path = dir.join(format!("{name}.record.json"));
    let mut args = vec![
        "record".to_string(),
        "-o".into(),
        path_arg(&file),
        "--checkpoint-every".into(),
        every.to_string(),
        "--report".into(),
        path_arg(&report_path),
    ];
    args.extend_from_slice(extra);
    let run = run(&args, Some(steps));
    let report = read_report(&report_path);
    assert!(
        run.code() == Some(0)
            && report.as_ref().map(|r| r["exit_reason"].clone()) == Some("poweroff".into()),
        "{name}: the recorded run did not power off with exit status 0\n{}\n--- report ---\n{report:?}",
        run.describe()
    );
    assert!(
        run.stderr.contains("rewind: recorded ") && run.stderr.contains("state hash "),
        "{name}: `rewind record` did not print its summary\n{}",
        run.describe()
    );
    Recorded {
        file,
        run,
        report: report.expect("checked above"),
    }
}

/// `rewind replay FILE --report ...`, with its report if it wrote one.
fn replay(file: &Path, report_path: &Path) -> (Finished, Option<Value>) {
    let _ = std::fs::remove_file(report_path);
    let run = run(
        &[
            "replay".to_string(),
            path_arg(file),
            "--report".into(),
            path_arg(report_path),
        ],
        None,
    );
    let report = read_report(report_path);
    (run, report)
}

fn checkpoint_count(events: &[Event]) -> u64 {
    events
        .iter()
        .filter(|e| matches!(e, Event::Checkpoint { .. }))
        .count() as u64
}

/// Where two byte strings first differ, with some context, for a message.
fn first_difference(a: &[u8], b: &[u8]) -> String {
    let at = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    let context = |s: &[u8]| {
        String::from_utf8_lossy(&s[at.saturating_sub(200)..(at + 200).min(s.len())]).into_owned()
    };
    format!(
        "they differ from byte {at} (lengths {} and {}):\n--- recorded ---\n{}\n--- replayed ---\n{}",
        a.len(),
        b.len(),
        context(a),
        context(b)
    )
}

/// Replays `recorded` and checks that the replay gives the same console
/// bytes, the same state hash, and verifies every recorded checkpoint.
fn expect_identical_replay(recorded: &Recorded, what: &str) -> Finished {
    let report_path = recorded.file.with_extension("replay.json");
    let (run, report) = replay(&recorded.file, &report_path);
    let report =
        report.unwrap_or_else(|| panic!("{what}: the replay wrote no report\n{}", run.describe()));
    let context = || format!("{}\n--- replay report ---\n{report:#}", run.describe());
    assert_eq!(
        run.code(),
        Some(0),
        "{what}: the replay did not exit 0\n{}",
        context()
    );
    assert_eq!(
        report["exit_reason"],
        "poweroff",
        "{what}: the replay did not end as the recording did\n{}",
        context()
    );
    assert!(
        run.stdout == recorded.run.stdout,
        "{what}: the replay's console output is not the recorded run's: {}",
        first_difference(&recorded.run.stdout, &run.stdout)
    );
    assert_eq!(
        report["state_hash"].as_str(),
        Some(recorded.state_hash()),
        "{what}: the replay's state hash (report) is not the recorded run's\n{}",
        context()
    );
    let replayed = &report["replay"];
    assert_eq!(
        replayed["recorded_state_hash"].as_str(),
        Some(recorded.state_hash()),
        "{what}: the replay read another recorded state hash\n{}",
        context()
    );
    assert_eq!(
        replayed["state_hash_matches"],
        Value::Bool(true),
        "{what}: {}",
        context()
    );
    let recording = read_all(&recorded.file).expect("reading the recording");
    let checkpoints = checkpoint_count(&recording.events);
    assert!(
        checkpoints > 1,
        "{what}: the recording has only {checkpoints} checkpoints"
    );
    assert_eq!(
        replayed["checkpoints_verified"].as_u64(),
        Some(checkpoints),
        "{what}: the replay did not verify every recorded checkpoint\n{}",
        context()
    );
    assert!(
        run.stderr.contains("matches the recording"),
        "{what}: the replay did not say its state hash matches\n{}",
        context()
    );
    run
}

// ---- The shell session -------------------------------------------------------

/// Commands whose output depends on what is typed and on the guest's state,
/// then `poweroff -f`. Each expected string appears only in the output, not
/// in the echo of the command.
fn shell_session() -> Vec<Step> {
    vec![
        step(&format!("echo sq=$(({PRODUCT}))"), "sq=83810205"),
        step(
            "echo hi-$((40+2)) > /tmp/f; cat /tmp/f; echo n=$(wc -c < /tmp/f)",
            "n=6",
        ),
        step("cat /proc/interrupts; echo irq-$((1+1))", "irq-2"),
        step(
            "dd if=/dev/urandom bs=16 count=1 2>/dev/null | od -x; echo rnd-$((2*5))",
            "rnd-10",
        ),
        step("poweroff -f", ""),
    ]
}

fn check_shell_output(recorded: &Recorded, what: &str) {
    let stdout = recorded.run.stdout_text();
    for expected in ["hi-42", "CPU0", "reboot: Power down"] {
        assert!(
            stdout.contains(expected),
            "{what}: `{expected}` is not on the console\n{}",
            recorded.run.describe()
        );
    }
}

/// The one-hart shell session, recorded once per test process and shared.
fn shared_recording() -> &'static Recorded {
    static SHARED: OnceLock<Result<Recorded, String>> = OnceLock::new();
    let recorded = SHARED.get_or_init(|| {
        let dir = scratch("shared");
        std::panic::catch_unwind(|| {
            record(
                &dir,
                "shell",
                SHARED_CHECKPOINT_EVERY,
                &[],
                &shell_session(),
            )
        })
        .map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "recording the shared shell session failed".to_string())
        })
    });
    recorded
        .as_ref()
        .unwrap_or_else(|e| panic!("the shared recording could not be made: {e}"))
}

#[test]
fn replay_of_a_shell_session_typed_through_a_pipe_repeats_its_output_and_state() {
    let recorded = shared_recording();
    check_shell_output(recorded, "one hart");
    expect_identical_replay(recorded, "one hart");
}

#[test]
fn replay_of_a_shell_session_on_4_harts_repeats_its_output_and_state() {
    let dir = scratch("smp4");
    let recorded = record(
        &dir,
        "smp4",
        50_000_000,
        &["--smp".into(), "4".into()],
        &shell_session(),
    );
    check_shell_output(&recorded, "four harts");
    let harts = recorded.report["instructions_retired"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(
        harts, 4,
        "the report does not list 4 harts: {:#}",
        recorded.report
    );
    assert!(
        recorded.run.stdout_text().contains("CPU3"),
        "/proc/interrupts does not show 4 CPUs\n{}",
        recorded.run.describe()
    );
    expect_identical_replay(&recorded, "four harts");
}

// ---- Disks and network -------------------------------------------------------

/// An HTTP/1.0 server on 127.0.0.1 that serves `body` until stopped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<usize>,
}

impl Server {
    fn start(body: &'static str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("binding a loopback port");
        listener
            .set_nonblocking(true)
            .expect("a non-blocking listener");
        let port = listener.local_addr().expect("a local address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = thread::spawn(move || {
            let mut served = 0;
            while !stopped.load(Ordering::Relaxed) {
                let mut stream = match listener.accept() {
                    Ok((stream, _)) => stream,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        thread::sleep(Duration::from_millis(20));
                        continue;
                    }
                    Err(_) => continue,
                };
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
                let mut request = Vec::new();
                let mut buf = [0u8; 1024];
                while find(&request, b"\r\n\r\n").is_none() {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = write!(
                    stream,
                    "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                served += 1;
            }
            // The listener closes here: the port no longer answers.
            served
        });
        Server { port, stop, thread }
    }

    /// Stops the server and closes its port; returns the requests served.
    fn stop(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().expect("the server thread never panics")
    }
}

fn make_ext4(from: &Path, image: &Path, size: &str) {
    require_tool("mke2fs", "e2fsprogs");
    let out = Command::new("mke2fs")
        .args(["-q", "-F", "-t", "ext4", "-d"])
        .arg(from)
        .arg(image)
        .arg(size)
        .output()
        .expect("running mke2fs");
    assert!(
        out.status.success(),
        "mke2fs failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn replay_of_disk_and_network_traffic_repeats_without_the_http_server() {
    const PAGE: &str = "a page from the host's loopback\n";
    let dir = scratch("disk_net");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).unwrap();
    std::fs::write(files.join("hello.txt"), "hello from the host\n").unwrap();
    let image = dir.join("vda.img");
    make_ext4(&files, &image, "16M");
    let image_before = std::fs::read(&image).unwrap();

    let server = Server::start(PAGE);
    let port = server.port;
    let steps = vec![
        step("mount /dev/vda /mnt && cat /mnt/hello.txt", "hello from the host"),
        step(
            "echo w-$((6*7)) > /mnt/w.txt && sync && cat /mnt/w.txt",
            "w-42",
        ),
        step(
            "ip link set eth0 up && udhcpc -i eth0 -n -q -t 5 -s /bin/true",
            "lease of 10.0.2.15 obtained",
        ),
        step(
            "ip addr add 10.0.2.15/24 dev eth0 && ip route add default via 10.0.2.2 && echo net-$((3*3))",
            "net-9",
        ),
        step(
            &format!("wget -q -O - http://10.0.2.2:{port}/page.txt; echo got-$((4*4))"),
            "got-16",
        ),
        step("poweroff -f", ""),
    ];
    let recorded = record(
        &dir,
        "disk_net",
        50_000_000,
        &[
            "--disk".into(),
            path_arg(&image),
            "--net".into(),
            "user".into(),
        ],
        &steps,
    );
    let served = server.stop();
    assert!(
        served >= 1,
        "the guest never reached the HTTP server\n{}",
        recorded.run.describe()
    );
    assert!(
        recorded.run.stdout_text().contains(PAGE.trim()),
        "the page is not on the console\n{}",
        recorded.run.describe()
    );
    assert!(
        std::fs::read(&image).unwrap() == image_before,
        "an overlay disk's image changed"
    );
    let recording = read_all(&recorded.file).expect("reading the recording");
    let frames = recording
        .events
        .iter()
        .filter(|e| matches!(e, Event::Packet { .. }))
        .count();
    assert!(frames > 0, "the recording holds no network frames");
    // The server is gone: whatever the guest receives comes from the recording.
    expect_identical_replay(&recorded, "disk and network");
}

#[test]
fn replay_refuses_a_persist_disk_that_changed_and_replays_once_it_is_restored() {
    let dir = scratch("persist");
    let image = dir.join("raw.img");
    let original: Vec<u8> = (0..(1u32 << 20)).map(|i| (i % 251) as u8).collect();
    std::fs::write(&image, &original).unwrap();
    let steps = vec![
        step(
            "echo persist-$((6*7)) | dd of=/dev/vda bs=512 seek=2 conv=fsync 2>/dev/null; echo wrote-$((2+3))",
            "wrote-5",
        ),
        step("poweroff -f", ""),
    ];
    let recorded = record(
        &dir,
        "persist",
        50_000_000,
        &["--disk".into(), format!("{},persist", image.display())],
        &steps,
    );
    let changed = std::fs::read(&image).unwrap();
    assert!(
        changed[1024..].starts_with(b"persist-42\n"),
        "the guest's write did not reach the persist image (bytes at 1024: {:?})\n{}",
        String::from_utf8_lossy(&changed[1024..1040]),
        recorded.run.describe()
    );

    let report_path = dir.join("refused.json");
    let (refused, _) = replay(&recorded.file, &report_path);
    let lines = refused.stderr_lines();
    assert!(
        refused.status.is_some()
            && refused.code() != Some(0)
            && lines.len() == 1
            && lines[0].starts_with("rewind: ")
            && lines[0].contains("persist")
            && !refused.stderr.contains("panicked"),
        "replaying over a changed persist image must be refused in one `rewind: ` line that mentions persist\n{}",
        refused.describe()
    );
    assert!(
        refused.stdout.is_empty(),
        "the refused replay ran the guest\n{}",
        refused.describe()
    );

    std::fs::write(&image, &original).unwrap();
    expect_identical_replay(&recorded, "persist disk restored");
    assert!(
        std::fs::read(&image).unwrap() == original,
        "the replay wrote into the persist image"
    );
}

// ---- Damaged recordings ------------------------------------------------------

/// splitmix64: a fixed-seed generator, so that the cut points repeat.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `from..to`.
    fn range(&mut self, from: u64, to: u64) -> u64 {
        from + self.next() % (to - from)
    }
}

/// The layout of a recording file: where its header ends and where each
/// frame starts (see crates/replay/src/format.rs).
struct Layout {
    header_end: u64,
    frames: Vec<u64>,
    len: u64,
}

fn layout(bytes: &[u8]) -> Layout {
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as u64;
    let header_end = rewind_replay::format::PREAMBLE_LEN as u64 + u32_at(16) + 4;
    let mut frames = Vec::new();
    let mut at = header_end;
    while at < bytes.len() as u64 {
        assert_eq!(
            &bytes[at as usize..at as usize + 4],
            b"RWFR",
            "no frame at {at}"
        );
        frames.push(at);
        at += rewind_replay::format::FRAME_PRELUDE_LEN as u64 + u32_at(at as usize + 4);
    }
    assert_eq!(at, bytes.len() as u64, "the last frame overruns the file");
    Layout {
        header_end,
        frames,
        len: bytes.len() as u64,
    }
}

/// Panics unless `run` failed with one `rewind: ` line that contains
/// `expected`, and did not panic.
fn expect_one_sentence_error(run: &Finished, expected: &str, what: &str) {
    let lines = run.stderr_lines();
    assert!(
        run.status.is_some()
            && run.code() != Some(0)
            && lines.len() == 1
            && lines[0].starts_with("rewind: ")
            && lines[0].contains(expected)
            && !run.stderr.contains("panicked"),
        "{what}: expected a nonzero exit and one `rewind: ` line containing `{expected}`\n{}",
        run.describe()
    );
}

#[test]
fn a_recording_cut_short_replays_its_complete_frames_and_a_cut_header_is_an_error() {
    let recorded = shared_recording();
    let dir = scratch("cut");
    let bytes = std::fs::read(&recorded.file).unwrap();
    let file = layout(&bytes);
    assert!(file.frames.len() > 3, "too few frames to cut between");
    let mut rng = SplitMix64(0x5eed_0000_c075);
    let inside_frame = |rng: &mut SplitMix64| loop {
        let at = rng.range(file.header_end + 1, file.len);
        if !file.frames.contains(&at) {
            break at;
        }
    };
    let cuts = [
        rng.range(0, 16),
        rng.range(16, file.header_end),
        file.header_end,
        file.frames[rng.range(1, file.frames.len() as u64) as usize],
        inside_frame(&mut rng),
        inside_frame(&mut rng),
    ];
    for cut in cuts {
        let what = format!("the recording cut at byte {cut} of {}", file.len);
        let path = dir.join(format!("cut-{cut}.rec"));
        std::fs::write(&path, &bytes[..cut as usize]).unwrap();
        let report_path = dir.join(format!("cut-{cut}.json"));
        let (run, report) = replay(&path, &report_path);
        if cut < file.header_end {
            expect_one_sentence_error(&run, &format!("byte {cut}"), &what);
            continue;
        }
        let report = report
            .unwrap_or_else(|| panic!("{what}: the replay wrote no report\n{}", run.describe()));
        let context = || format!("{what}\n{}\n--- report ---\n{report:#}", run.describe());
        assert!(
            run.code() == Some(0) && report["exit_reason"] == "recording-cut",
            "{}",
            context()
        );
        assert!(!run.stderr.contains("panicked"), "{}", context());
        assert!(
            recorded.run.stdout.starts_with(&run.stdout),
            "{what}: the replay's output is not a prefix of the recorded run's: {}",
            first_difference(&recorded.run.stdout, &run.stdout)
        );
        let cut_recording = read_all(&path).expect("a cut recording reads");
        assert_eq!(
            report["replay"]["checkpoints_verified"].as_u64(),
            Some(checkpoint_count(&cut_recording.events)),
            "{}",
            context()
        );
        // Where the last complete frame ends, if the cut is inside a frame.
        let frame_start = file.frames.iter().rev().find(|&&f| f < cut).copied();
        match frame_start.filter(|_| !file.frames.contains(&cut)) {
            Some(start) => {
                assert_eq!(
                    report["replay"]["truncated_at"].as_u64(),
                    Some(start),
                    "{}",
                    context()
                );
                assert!(
                    run.stderr.contains(&format!(
                        "rewind: the recording is cut short at byte {start} of {cut}"
                    )),
                    "{}",
                    context()
                );
            }
            None => assert_eq!(
                report["replay"]["truncated_at"],
                Value::Null,
                "{}",
                context()
            ),
        }
    }
}

/// `rewind inspect FILE`.
fn inspect(file: &Path) -> Finished {
    run(&["inspect".to_string(), path_arg(file)], None)
}

#[test]
fn corrupted_recordings_are_one_sentence_errors_naming_the_byte() {
    let recorded = shared_recording();
    let dir = scratch("corrupt");
    let bytes = std::fs::read(&recorded.file).unwrap();
    let file = layout(&bytes);
    let frame = file.frames[file.frames.len() / 2];
    let frame_len = file
        .frames
        .iter()
        .find(|&&f| f > frame)
        .map_or(file.len, |&f| f)
        - frame;
    let mut version = bytes.clone();
    version[8..12].copy_from_slice(&7u32.to_le_bytes());
    let flip = |at: u64| {
        let mut copy = bytes.clone();
        copy[at as usize] ^= 0x20;
        copy
    };
    let cases = [
        ("bad magic", flip(1), "byte 0".to_string()),
        ("an unknown format version", version, "format 7".to_string()),
        (
            "a flipped byte in the header body",
            flip(24 + (file.header_end - 28) / 2),
            "byte 24".to_string(),
        ),
        (
            "a flipped byte inside a frame",
            flip(frame + 16 + (frame_len - 16) / 2),
            format!("byte {frame}"),
        ),
        // Damage, not a recording cut short: the lengths have a checksum.
        (
            "a flipped byte in a frame's length",
            flip(frame + 6),
            format!("byte {frame}"),
        ),
    ];
    for (what, damaged, expected) in cases {
        let path = dir.join(format!("{}.rec", what.replace(' ', "-")));
        std::fs::write(&path, damaged).unwrap();
        let (run, _) = replay(&path, &dir.join("report.json"));
        expect_one_sentence_error(
            &run,
            &expected,
            &format!("replay of a recording with {what}"),
        );
        assert!(
            run.stdout.is_empty(),
            "{what}: the replay ran\n{}",
            run.describe()
        );
        let run = inspect(&path);
        expect_one_sentence_error(
            &run,
            &expected,
            &format!("inspect of a recording with {what}"),
        );
    }
}

#[test]
fn inspect_describes_the_configuration_length_and_events_of_a_recording() {
    let recorded = shared_recording();
    let run = inspect(&recorded.file);
    let stdout = run.stdout_text();
    let recording = read_all(&recorded.file).expect("reading the recording");
    let steps = recorded.report["position"].as_u64().unwrap_or_default();
    let expected = [
        recording.header.config.kernel.path.clone(),
        format!("{steps} steps"),
        "serial input".to_string(),
        "checkpoint".to_string(),
        "end".to_string(),
        format!("state hash {}", recorded.state_hash()),
    ];
    assert_eq!(run.code(), Some(0), "{}", run.describe());
    for text in expected {
        assert!(
            stdout.contains(&text),
            "`rewind inspect` does not say `{text}`\n{}",
            run.describe()
        );
    }
    let guest = rewind_guest::default_guest(&rewind_guest::default_cache_dir(), &mut |_| {})
        .expect("the default guest is cached");
    assert!(
        stdout.contains(&path_arg(&guest.kernel)),
        "`rewind inspect` does not name the default guest's kernel {}\n{}",
        guest.kernel.display(),
        run.describe()
    );
}

// ---- Divergence ----------------------------------------------------------------

/// Writes `events` under `header` to a new recording at `path`.
fn write_recording(path: &Path, header: &rewind_replay::Header, events: Vec<Event>) {
    let out = std::fs::File::create(path).expect("creating the altered recording");
    let mut writer = RecordingWriter::create(out, rewind_machine::MODEL_VERSION, header, &mut [])
        .expect("writing the header");
    for event in events {
        writer.push(event).expect("writing an event");
    }
    writer.finish().expect("finishing the recording");
}

/// The position a divergence message names: `at position N` (or `the
/// recording was at position N`).
fn diverged_at(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("the replay diverged from the recording: "))?;
    let after = ["at position "]
        .iter()
        .find_map(|key| line.find(key).map(|i| &line[i + key.len()..]))?;
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()
}

/// Replays an altered recording; panics unless it diverges (exit status 3,
/// exit_reason "diverged"); returns the run, the instruction count it names
/// and the report.
fn expect_divergence(path: &Path, what: &str) -> (Finished, u64, Value) {
    let (run, report) = replay(path, &path.with_extension("json"));
    let report =
        report.unwrap_or_else(|| panic!("{what}: the replay wrote no report\n{}", run.describe()));
    assert!(
        run.code() == Some(3) && report["exit_reason"] == "diverged",
        "{what}: the replay must diverge (exit status 3, exit_reason diverged)\n{}\n--- report ---\n{report:#}",
        run.describe()
    );
    assert!(
        !run.stderr.contains("panicked"),
        "{what}\n{}",
        run.describe()
    );
    let at = diverged_at(&run.stderr).unwrap_or_else(|| {
        panic!(
            "{what}: the divergence message names no instruction count\n{}",
            run.describe()
        )
    });
    (run, at, report)
}

#[test]
fn an_altered_console_input_diverges_by_the_next_checkpoint() {
    let recorded = shared_recording();
    let dir = scratch("diverge_input");
    let mut recording = read_all(&recorded.file).expect("reading the recording");
    // Find the byte of PRODUCT's "3" in the serial input, and its event.
    let mut typed = Vec::new();
    let mut owner = Vec::new();
    for (i, event) in recording.events.iter().enumerate() {
        if let Event::Console {
            port: Port::Serial,
            bytes,
            ..
        } = event
        {
            typed.extend_from_slice(bytes);
            owner.extend(bytes.iter().enumerate().map(|(j, _)| (i, j)));
        }
    }
    let at = find(&typed, PRODUCT.as_bytes()).unwrap_or_else(|| {
        panic!(
            "`{PRODUCT}` is not in the recorded input {:?}",
            String::from_utf8_lossy(&typed)
        )
    }) + 2;
    let (index, offset) = owner[at];
    let altered_icount = match &mut recording.events[index] {
        Event::Console { at, bytes, .. } => {
            assert_eq!(bytes[offset], b'3');
            bytes[offset] = b'4';
            at.icount
        }
        _ => unreachable!("owner lists console events"),
    };
    let next_checkpoint = recording.events[index..]
        .iter()
        .find_map(|e| match e {
            Event::Checkpoint { at, .. } => Some(at.icount),
            _ => None,
        })
        .expect("a checkpoint after the altered input");
    assert!(
        index > 0 && index + 1 < recording.events.len(),
        "the altered event is not in the middle"
    );
    let path = dir.join("altered-input.rec");
    write_recording(&path, &recording.header, recording.events);
    let what = format!(
        "a recording whose input at position {altered_icount} is altered (next checkpoint at {next_checkpoint})"
    );
    let (run, named, _) = expect_divergence(&path, &what);
    assert!(
        named > altered_icount && named <= next_checkpoint,
        "{what}: the divergence is named at position {named}\n{}",
        run.describe()
    );
}

#[test]
fn an_altered_checkpoint_register_is_named_with_its_instruction_count() {
    let recorded = shared_recording();
    let dir = scratch("diverge_register");
    let mut recording = read_all(&recorded.file).expect("reading the recording");
    // The third checkpoint: early, so that the replay is short.
    let (index, icount) = recording
        .events
        .iter()
        .enumerate()
        .filter_map(|(i, e)| match e {
            Event::Checkpoint { at, .. } => Some((i, at.icount)),
            _ => None,
        })
        .nth(2)
        .expect("the recording has three checkpoints");
    if let Event::Checkpoint { state, .. } = &mut recording.events[index] {
        state.harts[0].x[10] ^= 0x5a5a_0000_0001;
    }
    let path = dir.join("altered-register.rec");
    write_recording(&path, &recording.header, recording.events);
    let what = format!("a recording whose checkpoint at position {icount} has another a0");
    let (run, named, report) = expect_divergence(&path, &what);
    assert!(
        run.stderr.contains("hart 0 register a0 (x10)") && named == icount,
        "{what}: the message must name hart 0 register a0 (x10) at position {icount}\n{}",
        run.describe()
    );
    assert_eq!(
        report["replay"]["checkpoints_verified"].as_u64(),
        Some(2),
        "{what}: the two checkpoints before it should have been verified\n{report:#}"
    );
}
